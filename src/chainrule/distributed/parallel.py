"""Synchronous data parallelism for :class:`chainrule.training.Trainer`, over MPI.

Every rank holds the same weights and draws the same global batch (the trainer's seeded
order); rank ``r`` of ``N`` computes loss and gradients on rows ``[r*B/N, (r+1)*B/N)`` of it,
the gradients are summed in one flat buffer by an in-place ``Allreduce`` and divided by ``N``,
and every rank applies the identical update. :meth:`DataParallel.attach` plugs this into a
trainer through its two hooks, ``compute_grads`` and ``evaluate_on``.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

import numpy as np

from chainrule.backend import to_numpy
from chainrule.distributed.launch import DistributedError, require_mpi, world
from chainrule.distributed.syncbn import sync_batchnorm
from chainrule.distributed.watchdog import Watchdog
from chainrule.training.evaluation import evaluate
from chainrule.training.protocol import loss_and_grads, model_buffers

__all__ = ["DEFAULT_TIMEOUT", "DataParallel"]

# Seconds a rank waits in one collective before it declares another rank dead. Generous:
# rank 0 writes checkpoints and plots while the others wait in the next step's allreduce.
# The environment variable CHAINRULE_MPI_TIMEOUT overrides it (seconds; 0 disables it).
DEFAULT_TIMEOUT = 600.0


def _timeout_from_environment() -> float | None:
    text = os.environ.get("CHAINRULE_MPI_TIMEOUT", "").strip()
    if not text:
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (value >= 0 and np.isfinite(value)):
        raise DistributedError(
            f"CHAINRULE_MPI_TIMEOUT={text!r}: give seconds (a number >= 0; 0 disables the watchdog)"
        )
    return value or None


def shard_bounds(batch: int, size: int, rank: int) -> tuple[int, int]:
    """Rows ``[start, stop)`` of a global batch of ``batch`` rows that ``rank`` of ``size`` gets.

    >>> shard_bounds(100, 4, 1)
    (25, 50)
    """
    if batch % size:
        raise DistributedError(
            f"the global batch size {batch} does not divide among {size} processes; pass a "
            f"multiple of {size} (each process gets batch size / {size} rows)"
        )
    step = batch // size
    return rank * step, (rank + 1) * step


class DataParallel:
    """Data-parallel training of one :class:`~chainrule.training.Trainer` per MPI rank.

    Usage (the same script on every rank, e.g. ``mpiexec -n 2 python train.py``)::

        dp = DataParallel()                     # MPI.COMM_WORLD
        trainer = Trainer(model, SGD(lr=0.1), x, t, xt, tt, batch_size=100,
                          checkpoint="run.ckpt", progress="lines" if dp.is_root else "none")
        dp.attach(trainer)                      # before fit (and after restore, if resuming)
        trainer.fit()                           # rank 0 alone writes run.ckpt

    ``batch_size`` stays the *global* batch: it must be a multiple of the number of ranks.
    Both engines work (the book's networks and ``nn`` models): only the trainable-model
    protocol is used. Batch norm uses the global batch's statistics (:mod:`.syncbn`).

    Args:
        comm: an mpi4py communicator (default ``MPI.COMM_WORLD``).
        timeout: seconds one collective may take before the job is aborted with a message
            (None: wait forever); ``"env"``: ``CHAINRULE_MPI_TIMEOUT`` if set, else 600.

    Attributes:
        comm_seconds, compute_seconds: time in gradient allreduces and in the shard's forward
            and backward passes (including batch norm's small allreduces), summed over steps.
    """

    def __init__(self, comm: Any = None, *, timeout: float | str | None = "env") -> None:
        self.comm = world() if comm is None else comm
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        if timeout == "env":
            timeout = _timeout_from_environment()
        self.watchdog = Watchdog(self.comm, timeout)  # type: ignore[arg-type]
        self.comm_seconds = self.compute_seconds = 0.0
        self._buffers: dict[Any, np.ndarray] = {}
        self._sum = require_mpi().SUM

    @property
    def is_root(self) -> bool:
        """Rank 0: the one that prints and writes files."""
        return self.rank == 0

    # ---- collectives

    def allreduce_(self, buffer: np.ndarray, what: str) -> np.ndarray:
        """Sum ``buffer`` over all ranks, in place (under the watchdog); returns it."""
        with self.watchdog.guard(what):
            self.comm.Allreduce(require_mpi().IN_PLACE, buffer, op=self._sum)
        return buffer

    def _sum_copy(self, array: np.ndarray) -> np.ndarray:
        out = np.ascontiguousarray(to_numpy(array), dtype=np.float64).copy()
        return self.allreduce_(out, "batch-norm allreduce")

    def broadcast_state(self, model: Any) -> None:
        """Copy rank 0's parameters and buffers into every rank's model, in place."""
        for name, array in {**model.params, **model_buffers(model)}.items():
            if not isinstance(array, np.ndarray) or not array.flags.c_contiguous:
                raise DistributedError(
                    f"parameter {name!r} is not a contiguous NumPy array; data-parallel "
                    "training runs on the CPU"
                )
            with self.watchdog.guard(f"broadcast of {name!r}"):
                self.comm.Bcast(array, root=0)

    def _reseed_dropout(self, trainer: Any) -> None:
        # Dropout masks: each rank draws its shard's masks from its own stream (rank 0 keeps
        # the model's). Identical streams would give every shard the same mask pattern.
        rng = trainer.rngs.get("model")
        if rng is not None and self.rank > 0:
            seed = np.random.SeedSequence([trainer.seed, self.rank])
            rng.bit_generator.state = type(rng.bit_generator)(seed).state

    # ---- the trainer's hooks

    def attach(self, trainer: Any) -> Any:
        """Make ``trainer`` data-parallel; returns it. Call on every rank, before ``fit``.

        Broadcasts rank 0's weights, splits every step's batch, reduces the evaluation, and
        leaves checkpoints to rank 0 (``trainer.checkpoint`` is None on the others).

        Raises:
            DistributedError: the batch size is not a multiple of the number of ranks.
        """
        shard_bounds(trainer.batch_size, self.size, self.rank)  # checks it divides
        self.broadcast_state(trainer.model)
        self._reseed_dropout(trainer)
        if not self.is_root:
            trainer.checkpoint = None
        trainer.compute_grads = lambda x, t: self.compute_grads(trainer.model, x, t)
        trainer.evaluate_on = lambda x, t: self.evaluate_on(trainer, x, t)
        trainer.meta["distributed"] = {"processes": self.size}
        return trainer

    def compute_grads(self, model: Any, x: Any, t: Any) -> tuple[float, dict[str, Any]]:
        """Loss and gradients of the global batch ``(x, t)``: this rank's shard, allreduced."""
        start, stop = shard_bounds(len(x), self.size, self.rank)
        t0 = time.perf_counter()
        try:
            with sync_batchnorm(self._sum_copy, self.size):
                loss, grads = loss_and_grads(model, x[start:stop], t[start:stop])
        except FloatingPointError:
            # Non-finite scores in this shard: the other ranks are already waiting in the
            # allreduce, so send a NaN loss there; every rank's divergence guard then stops.
            loss, grads = math.nan, {k: np.zeros_like(p) for k, p in model.params.items()}
        t1 = time.perf_counter()
        averaged = self._average(grads, loss)
        self.compute_seconds += t1 - t0
        self.comm_seconds += time.perf_counter() - t1
        return averaged

    def _average(self, grads: dict[str, Any], loss: float) -> tuple[float, dict[str, Any]]:
        """One flat buffer: every gradient, then the loss; one in-place Allreduce; / N."""
        dtype = np.result_type(*(g.dtype for g in grads.values()))
        sizes = [g.size for g in grads.values()]
        key = (dtype.str, tuple(sizes))
        flat = self._buffers.get(key)
        if flat is None:
            flat = self._buffers[key] = np.empty(sum(sizes) + 1, dtype=dtype)
        offset = 0
        for g, n in zip(grads.values(), sizes):
            flat[offset : offset + n] = to_numpy(g).reshape(-1)
            offset += n
        flat[-1] = loss
        self.allreduce_(flat, "gradient allreduce")
        flat *= 1.0 / self.size
        out, offset = {}, 0
        for (name, g), n in zip(grads.items(), sizes):
            out[name] = flat[offset : offset + n].reshape(g.shape)
            offset += n
        return float(flat[-1]), out

    def evaluate_on(self, trainer: Any, x: Any, t: Any) -> tuple[float, float]:
        """Loss and accuracy on the whole ``(x, t)``: each rank evaluates a slice, summed."""
        bounds = np.linspace(0, len(x), self.size + 1).astype(int)
        start, stop = bounds[self.rank], bounds[self.rank + 1]
        totals = np.zeros(3)
        if stop > start:
            loss, acc = evaluate(
                trainer.model, x[start:stop], t[start:stop],
                batch_size=trainer.eval_batch_size, threads=None,
            )  # fmt: skip
            n = stop - start
            totals[:] = loss * n, round(acc * n), n
        self.allreduce_(totals, "evaluation allreduce")
        return totals[0] / totals[2], totals[1] / totals[2]
