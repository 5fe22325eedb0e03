"""Which array module (NumPy or CuPy) an array belongs to.

Ops never import NumPy's functions for array work directly when the array could live on a GPU:
they ask :func:`get_array_module` for the module that owns their inputs. CuPy is imported only
when an array from it is seen, so CPU-only installs never touch it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from types import ModuleType

import numpy as np


def get_array_module(*arrays: object) -> ModuleType:
    """Return ``cupy`` if any argument is a CuPy array, else ``numpy``."""
    for a in arrays:
        if type(a).__module__.partition(".")[0] == "cupy":
            import cupy  # only reached when a CuPy array already exists

            return cupy
    return np


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
