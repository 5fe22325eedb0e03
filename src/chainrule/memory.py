"""Keep freed memory for the next training step (the C allocator's settings, set once).

A training step allocates the same arrays every time: activations, masks, gradients, each a
few megabytes. The autograd engine frees them all when ``backward`` has used the graph, and
glibc's ``malloc`` then hands the top of its heap back to the operating system (its trim
threshold is 128 KiB to 64 MiB, adjusted as it goes). The next step asks for the memory again,
and the kernel supplies it one 4 KiB page fault at a time, each page zeroed. Measured on the
book's DeepConvNet (batch 100, float32, 1 thread, a 2-core virtual machine): 9,991 page faults
per autograd step, and 203 ms per step against 132 ms when the memory is kept (0 faults).

:func:`keep_freed_memory` asks glibc to keep up to :data:`KEEP_BYTES` of freed memory at the
top of its heap and to serve arrays of up to :data:`MMAP_BYTES` from the heap, so that the
next step reuses the pages it already has. :mod:`chainrule` calls it once, on import.

The price is memory. The process keeps its peak until it exits (up to :data:`KEEP_BYTES`) or
calls :func:`release_freed_memory`, and arrays served from one heap fragment it, so the peak
itself can rise: DeepConvNet's training peak over the process baseline went from 45 to about
60 MB (layers) and from 63 to 67 MB (autograd); the 784-1024-1024-10 MLP's did not move.
Set the environment variable ``CHAINRULE_KEEP_FREED_MEMORY=0`` before importing chainrule to
leave the allocator alone. On other C libraries (macOS, Windows, musl) it does nothing.

>>> status().startswith("freed memory ")
True
"""

from __future__ import annotations

import ctypes
import os

__all__ = ["KEEP_BYTES", "MMAP_BYTES", "keep_freed_memory", "release_freed_memory", "status"]

#: Freed memory at the top of the heap that glibc keeps instead of returning (M_TRIM_THRESHOLD).
KEEP_BYTES = 1 << 30
#: Arrays up to this size come from the heap, larger ones from fresh pages (M_MMAP_THRESHOLD).
MMAP_BYTES = 1 << 26

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers
_STATUS = "freed memory returned to the system (keep_freed_memory() was not called)"


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory for reuse (see the module docstring). True when it is
    kept; False where the C library is not glibc or ``CHAINRULE_KEEP_FREED_MEMORY=0``."""
    global _STATUS
    if os.environ.get("CHAINRULE_KEEP_FREED_MEMORY", "1").strip() == "0":
        _STATUS = "freed memory returned to the system (CHAINRULE_KEEP_FREED_MEMORY=0)"
        return False
    if not _glibc():
        _STATUS = "freed memory returned to the system (the C library is not glibc)"
        return False
    try:
        libc = ctypes.CDLL(None)  # the process's own C library
        done = libc.mallopt(_M_TRIM_THRESHOLD, KEEP_BYTES) and libc.mallopt(
            _M_MMAP_THRESHOLD, MMAP_BYTES
        )
    except (OSError, AttributeError):
        done = 0
    _STATUS = (
        f"freed memory kept for the next step (glibc, up to {KEEP_BYTES >> 20} MiB)"
        if done
        else "freed memory returned to the system (glibc refused the settings)"
    )
    return bool(done)


def release_freed_memory() -> bool:
    """Hand the memory glibc keeps for reuse back to the operating system now (``malloc_trim``;
    after training, say, in a notebook that goes on with other work). True if glibc returned
    some; False where there was none or the C library is not glibc."""
    if not _glibc():
        return False
    try:
        return bool(ctypes.CDLL(None).malloc_trim(0))
    except (OSError, AttributeError):
        return False


def _glibc() -> bool:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc")  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):  # no confstr, or not this name: not glibc
        return False


def status() -> str:
    """What :func:`keep_freed_memory` did, in words (the training header prints it)."""
    return _STATUS
