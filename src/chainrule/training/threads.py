"""The BLAS thread policy of training and evaluation.

``Trainer(threads="auto")`` (the default) picks the number of BLAS threads from the sizes of
the matrix products, before the first step, never from timings: BLAS splits its sums
differently with another thread count, so the count changes the last bits of the results, and
a choice made by a stopwatch would make two runs of the same seed differ. The rule: the largest
product of a step multiplies a ``(batch, fan_in)`` by a ``(fan_in, fan_out)`` matrix, about
``batch_size * W.size`` multiply-adds for a weight matrix ``W``; a convolution with filters
``(FN, C, FH, FW)`` multiplies them by one block of windows at a time, about
``FN * conv.BLOCK_VALUES`` (2**19) multiply-adds however large the image (DeepConvNet's biggest:
~34 M; measured on the 2-core machine, 2 threads made its step 0.87x as fast, SimpleConvNet's
1.07x, and both about 3x slower with the other core busy). Below :data:`AUTO_WORK` (2**26, ~67 M,
about a millisecond on one core) extra threads cost more in synchronisation than they save,
and on a machine whose other cores are busy they wait for those cores: measured on a 2-core
machine with one core busy, 3,000 steps of the book's MNIST net took 8.7 s with all threads
against 2.6 s with one (issue #16).
So those runs use one thread; bigger ones use every available core, at most 4. A model on
the GPU gets one thread: BLAS then only does the CPU's small share of the work.

``threads=n`` forces ``n``; ``threads=None`` leaves BLAS as it is. Without threadpoolctl
(``pip install threadpoolctl``) the count cannot be set: :attr:`Trainer.threads` is then None
and :attr:`Trainer.threads_note` says why.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Iterator
from typing import Any

__all__ = ["AUTO_WORK", "MAX_AUTO_THREADS", "blas_threads", "choose_threads"]

AUTO_WORK = 2**26
MAX_AUTO_THREADS = 4


def available_cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _params(model: Any) -> list[Any]:
    """The model's parameter arrays (``params``: a book network's and an ``nn`` model's)."""
    return list(getattr(model, "params", {}).values())


def largest_product(model: Any, batch_size: int) -> int:
    """Multiply-adds of the largest single matrix product of one training step (see above)."""
    from chainrule.functions.conv import BLOCK_VALUES

    work = [
        p.shape[0] * BLOCK_VALUES if getattr(p, "ndim", 0) == 4 else batch_size * int(p.size)
        for p in _params(model)
        if hasattr(p, "size")
    ]
    return max(work, default=0)


def choose_threads(threads: Any, model: Any, batch_size: int) -> tuple[int | None, str]:
    """``(count, note)``: the BLAS threads to use (None: leave BLAS alone) and why.

    Raises:
        ValueError: ``threads`` is not ``"auto"``, None or a positive integer.
    """
    if threads is None:
        return None, "BLAS default (not limited)"
    if threads != "auto" and (
        isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
    ):
        raise ValueError(
            f"Trainer: threads must be 'auto', None or a positive integer, got {threads!r}"
        )
    if importlib.util.find_spec("threadpoolctl") is None:
        return None, "not limited: threadpoolctl is not installed (pip install threadpoolctl)"
    if threads != "auto":
        return threads, f"{threads} (chosen by the caller)"
    from chainrule.training.evaluation import model_device  # which imports this module

    if model_device(model) == "cuda":
        return 1, "1 (auto: the model is on the GPU; BLAS only does the CPU's share)"
    work = largest_product(model, batch_size)
    if work < AUTO_WORK:
        return 1, f"1 (auto: products of ~{work / 1e6:.3g} M multiply-adds are too small to split)"
    count = min(available_cores(), MAX_AUTO_THREADS)
    return count, f"{count} (auto: products of ~{work / 1e6:.3g} M multiply-adds)"


@contextlib.contextmanager
def blas_threads(n: int | None) -> Iterator[bool]:
    """Limit BLAS (OpenBLAS, MKL ...) to ``n`` threads inside the block; yields whether it could.

    The book's networks multiply small matrices, where extra BLAS threads cost more in
    synchronisation than they save — on a busy 2-core machine, 2 threads ran the default
    ``chainrule train`` >10x slower than 1. Uses threadpoolctl when installed (the ``all``
    extra); without it, set ``OPENBLAS_NUM_THREADS`` before starting Python instead.
    ``n=None`` leaves the setting alone.
    """
    if n is None:
        yield True
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield False
        return
    with threadpool_limits(limits=n, user_api="blas"):
        yield True
