"""Which array module (NumPy or CuPy) an array belongs to.

Ops never import NumPy's functions for array work directly when the array could live on a GPU:
they ask :func:`get_array_module` for the module that owns their inputs. CuPy is imported only
when an array from it is seen, so CPU-only installs never touch it.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np


def get_array_module(*arrays: object) -> ModuleType:
    """Return ``cupy`` if any argument is a CuPy array, else ``numpy``."""
    for a in arrays:
        if type(a).__module__.partition(".")[0] == "cupy":
            import cupy  # only reached when a CuPy array already exists

            return cupy
    return np
