"""A deadline on every collective: a rank that died or hangs ends the job with a message.

MPI's collectives wait for every rank. When one dies, a launcher such as Hydra's ``mpiexec``
usually tears the job down; when one hangs (or a launcher does not clean up), the others would
wait forever. :class:`Watchdog` arms a deadline before each collective and disarms it after;
a daemon thread that finds a deadline passed prints which collective on which rank waited, then
calls ``comm.Abort``, which ends every process of the job.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["Watchdog"]


class Watchdog:
    """Abort ``comm`` when a collective takes longer than ``timeout`` seconds.

    ``timeout=None`` disables it. The check runs every ``min(1, timeout / 4)`` seconds in a
    daemon thread started at the first :meth:`guard`.
    """

    def __init__(self, comm: Any, timeout: float | None) -> None:
        if timeout is not None and not timeout > 0:
            raise ValueError(f"Watchdog: timeout must be a positive number, got {timeout!r}")
        self.comm, self.timeout = comm, timeout
        self._deadline: float | None = None
        self._what = ""
        self._thread: threading.Thread | None = None

    @contextmanager
    def guard(self, what: str) -> Iterator[None]:
        """Arm the deadline around one collective (``what`` names it in the message)."""
        if self.timeout is None:
            yield
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch, daemon=True, name="mpi-watchdog")
            self._thread.start()
        self._what = what
        self._deadline = time.monotonic() + self.timeout
        try:
            yield
        finally:
            self._deadline = None

    def _watch(self) -> None:
        assert self.timeout is not None
        period = min(1.0, self.timeout / 4)
        while True:
            time.sleep(period)
            deadline = self._deadline
            if deadline is not None and time.monotonic() > deadline:
                rank, size = self.comm.Get_rank(), self.comm.Get_size()
                print(
                    f"chainrule: rank {rank} of {size} waited more than {self.timeout:g} s "
                    f"in the {self._what}: another rank died or hangs; aborting the job",
                    file=sys.stderr,
                    flush=True,
                )
                self.comm.Abort(3)
                return
