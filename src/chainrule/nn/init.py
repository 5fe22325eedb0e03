"""Weight initialization: the scale of the first random weights (chapter 6).

* ``"he"`` (alias ``"relu"``): standard deviation ``sqrt(2 / fan_in)``, for ReLU networks
  (He et al., 2015);
* ``"xavier"`` (alias ``"sigmoid"``): ``sqrt(1 / fan_in)``, for sigmoid and tanh (the book's
  simplified Xavier/Glorot);
* a number: that standard deviation (the book's ``weight_init_std=0.01``).

``fan_in`` is the number of inputs of each unit (the previous layer's size).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

_SCHEMES = {"he": 2.0, "relu": 2.0, "xavier": 1.0, "sigmoid": 1.0}


def check_size(owner: str, argname: str, value: Any) -> int:
    """``value`` as an ``int`` if it is a positive integer; else a ``ValueError`` naming it."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{owner}: {argname} must be a positive integer, got {value!r}")
    return int(value)


def check_sizes(owner: str, argname: str, values: Any, minimum: int = 0) -> list[int]:
    """``values`` (a list, tuple or 1-D array of positive integers) as a list of ``int``."""
    listed = None
    if not isinstance(values, (str, bytes)):
        try:
            listed = list(values)
        except TypeError:
            pass
    if listed is None or len(listed) < minimum:
        at_least = f"at least {minimum} " if minimum else ""
        raise ValueError(
            f"{owner}: {argname} must be a list of {at_least}positive integers, got {values!r}"
        )
    return [check_size(owner, f"{argname}[{i}]", n) for i, n in enumerate(listed)]


def check_init(owner: str, argname: str, init: Any) -> str | float:
    """Validate an initialization scheme name or standard deviation; return it normalized."""
    if isinstance(init, str):
        key = init.lower()
        if key not in _SCHEMES:
            raise ValueError(
                f"{owner}: {argname} must be 'he', 'xavier' (or 'relu', 'sigmoid') or a "
                f"non-negative standard deviation, got {init!r}"
            )
        return key
    if (
        isinstance(init, (bool, np.bool_))
        or not isinstance(init, (int, float, np.integer, np.floating))
        or not math.isfinite(init)
        or init < 0
    ):
        raise ValueError(
            f"{owner}: {argname} must be 'he', 'xavier' or a non-negative finite standard "
            f"deviation, got {init!r}"
        )
    return float(init)


def init_std(init: str | float, fan_in: int) -> float:
    """The standard deviation that ``init`` (checked by :func:`check_init`) gives for ``fan_in``.

    >>> init_std("he", 50), init_std("xavier", 4), init_std(0.01, 784)
    (0.2, 0.5, 0.01)
    """
    if isinstance(init, str):
        return math.sqrt(_SCHEMES[init.lower()] / fan_in)
    return float(init)


def normal(
    shape: tuple[int, ...], std: float, rng: np.random.Generator, dtype: Any = np.float32
) -> np.ndarray:
    """Weights drawn from ``N(0, std**2)`` with ``rng``, in ``dtype``."""
    return (std * rng.standard_normal(shape)).astype(dtype, copy=False)
