"""Is this process one rank of an MPI job, and the communicator when it is.

A launcher tells its processes how many they are through environment variables: MPICH's
Hydra ``mpiexec`` sets ``PMI_SIZE``, Open MPI's ``OMPI_COMM_WORLD_SIZE``, PMIx launchers
``PMIX_SIZE``... and Slurm's ``srun`` ``SLURM_STEP_NUM_TASKS``. :func:`launched_size` reads
them without importing MPI, so a plain ``chainrule train`` never needs the ``distributed``
extra; :func:`world` imports :mod:`mpi4py` only when a run is distributed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

__all__ = ["INSTALL_HINT", "DistributedError", "launched_size", "require_mpi", "world"]

INSTALL_HINT = "pip install 'chainrule[distributed]'"

# The variables each launcher sets to the number of processes it started, in order of trust.
SIZE_VARIABLES = (
    "OMPI_COMM_WORLD_SIZE",  # Open MPI's mpiexec/mpirun
    "PMI_SIZE",  # MPICH (Hydra), Intel MPI, MVAPICH
    "PMIX_SIZE",  # PMIx launchers (prte, Open MPI 5)
    "MV2_COMM_WORLD_SIZE",  # MVAPICH2
    "SLURM_STEP_NUM_TASKS",  # srun (a job step; not set by sbatch for the batch script)
)


class DistributedError(RuntimeError):
    """A distributed run cannot start or cannot go on (the message says why, in one line)."""


def launched_size(environ: Mapping[str, str] | None = None) -> int:
    """How many processes the launcher started (1 when none did).

    >>> launched_size({"PMI_SIZE": "4", "PMI_RANK": "1"})
    4
    >>> launched_size({})
    1
    """
    env = os.environ if environ is None else environ
    for name in SIZE_VARIABLES:
        value = env.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return 1


def require_mpi() -> Any:
    """The :mod:`mpi4py` ``MPI`` module, or a one-line :class:`DistributedError` naming the
    install command when the ``distributed`` extra is missing."""
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise DistributedError(
            f"distributed training needs mpi4py and an MPI library ({exc}); install them "
            f"with: {INSTALL_HINT}"
        ) from None
    return MPI


def world(expected: int | None = None) -> Any:
    """``MPI.COMM_WORLD``, checked against the size the launcher announced.

    Raises:
        DistributedError: no mpi4py, or MPI sees fewer processes than the launcher started
            (mpi4py was built against another MPI than the ``mpiexec`` used).
    """
    comm = require_mpi().COMM_WORLD
    expected = launched_size() if expected is None else expected
    if expected > 1 and comm.Get_size() != expected:
        raise DistributedError(
            f"the launcher started {expected} processes but MPI sees {comm.Get_size()}: "
            "launch with the mpiexec of the MPI that mpi4py uses (python -m mpi4py "
            "--mpi-library shows it)"
        )
    return comm
