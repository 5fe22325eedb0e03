"""Data-parallel training over MPI: ``mpiexec -n N chainrule train ...``.

Each of ``N`` processes (ranks) holds the same weights, computes the gradient of the mean loss
on its ``1/N`` shard of the global batch, and the shard gradients are averaged with one
in-place ``Allreduce`` per step before the identical update on every rank. Because the
gradient of a mean is the mean of the shards' gradients (equal shards), ``N`` processes
reproduce the single-process run up to the order of floating-point additions. Batch norm uses
the global batch's statistics (:mod:`~chainrule.distributed.syncbn`), evaluation is split and
summed, and rank 0 alone prints and writes files. See ``docs/distributed.md``.

Needs the ``distributed`` extra (``pip install 'chainrule[distributed]'``: mpi4py and MPICH);
this package imports mpi4py only when a run is distributed.

* :mod:`~chainrule.distributed.launch`: is this an MPI launch, and the communicator.
* :mod:`~chainrule.distributed.parallel`: :class:`DataParallel`, the trainer's hooks.
* :mod:`~chainrule.distributed.syncbn`: synchronized batch normalization.
* :mod:`~chainrule.distributed.watchdog`: a dead or hung rank aborts the job with a message.
"""

from __future__ import annotations

from chainrule.distributed.launch import (
    INSTALL_HINT,
    DistributedError,
    launched_size,
    require_mpi,
    world,
)
from chainrule.distributed.parallel import DEFAULT_TIMEOUT, DataParallel, shard_bounds
from chainrule.distributed.syncbn import sync_batchnorm
from chainrule.distributed.watchdog import Watchdog

__all__ = [
    "DEFAULT_TIMEOUT",
    "INSTALL_HINT",
    "DataParallel",
    "DistributedError",
    "Watchdog",
    "launched_size",
    "require_mpi",
    "shard_bounds",
    "sync_batchnorm",
    "world",
]
