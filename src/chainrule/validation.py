"""Checks of the values handed to constructors and configs: one helper per kind of value.

Each helper returns the value normalized (``int``, ``float``, lower-case name, ``np.dtype``) or
raises a ``ValueError`` whose message starts with the owner (the class, function or config
that received it) and names the argument and the bad value::

    >>> positive_int("Linear", "in_features", 3)
    3
    >>> ratio("Dropout", "p", 1.0)
    Traceback (most recent call last):
        ...
    ValueError: Dropout: p must be in [0, 1), got 1.0
    >>> choice("MLP", "activation", "ReLU", ("relu", "tanh"))
    'relu'

Argument *parsing* for the command line lives in ``chainrule.cli``; values inside the library
(configs, layers, networks) are checked here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = [
    "boolean",
    "choice",
    "float_dtype",
    "nonnegative_float",
    "number",
    "positive_float",
    "positive_int",
    "positive_ints",
    "ratio",
]

_INTS = (int, np.integer)
_NUMBERS = (int, float, np.integer, np.floating)


def _is_bool(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_))


def positive_int(owner: str, name: str, value: Any) -> int:
    """``value`` as an ``int`` if it is an integer >= 1 (``True`` is not an integer here)."""
    if _is_bool(value) or not isinstance(value, _INTS) or value < 1:
        raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")
    return int(value)


def positive_ints(owner: str, name: str, values: Any, minimum: int = 0) -> list[int]:
    """``values`` (a list, tuple or 1-D array of at least ``minimum`` positive integers) as a
    list of ``int``."""
    listed = None
    if not isinstance(values, (str, bytes)):
        try:
            listed = list(values)
        except TypeError:
            pass
    if listed is None or len(listed) < max(minimum, 0):
        at_least = f"at least {minimum} " if minimum else ""
        raise ValueError(
            f"{owner}: {name} must be a list of {at_least}positive integers, got {values!r}"
        )
    return [positive_int(owner, f"{name}[{i}]", n) for i, n in enumerate(listed)]


def number(owner: str, name: str, value: Any) -> float:
    """``value`` as a finite ``float`` (ints and NumPy scalars accepted, booleans not)."""
    if _is_bool(value) or not isinstance(value, _NUMBERS) or not math.isfinite(value):
        raise ValueError(f"{owner}: {name} must be a finite number, got {value!r}")
    return float(value)


def positive_float(owner: str, name: str, value: Any) -> float:
    """``value`` as a finite ``float`` > 0."""
    if _is_bool(value) or not isinstance(value, _NUMBERS) or not (0 < value < math.inf):
        raise ValueError(f"{owner}: {name} must be a finite positive number, got {value!r}")
    return float(value)


def nonnegative_float(owner: str, name: str, value: Any) -> float:
    """``value`` as a finite ``float`` >= 0."""
    if _is_bool(value) or not isinstance(value, _NUMBERS) or not (0 <= value < math.inf):
        raise ValueError(f"{owner}: {name} must be a finite non-negative number, got {value!r}")
    return float(value)


def ratio(owner: str, name: str, value: Any) -> float:
    """``value`` as a ``float`` in ``[0, 1)``: a dropout ratio (1 would drop everything)."""
    if _is_bool(value) or not isinstance(value, _NUMBERS) or not (0 <= value < 1):
        raise ValueError(f"{owner}: {name} must be in [0, 1), got {value!r}")
    return float(value)


def boolean(owner: str, name: str, value: Any) -> bool:
    """``value`` as a ``bool`` if it is one (Python or NumPy); ``0``/``1`` are not accepted."""
    if not _is_bool(value):
        raise ValueError(f"{owner}: {name} must be true or false, got {value!r}")
    return bool(value)


def choice(owner: str, name: str, value: Any, options: Iterable[str]) -> str:
    """``value`` lower-cased if it is one of ``options`` (a registry's keys, say)."""
    options = list(options)
    key = value.lower() if isinstance(value, str) else None
    if key not in options:
        raise ValueError(f"{owner}: {name} must be one of {', '.join(options)}; got {value!r}")
    return key


def float_dtype(owner: str, dtype: Any, allowed: Iterable[str] | None = None) -> np.dtype:
    """``dtype`` as a floating-point ``np.dtype`` (limited to the names in ``allowed``)."""
    try:
        result = np.dtype(dtype)
    except TypeError:
        result = None
    allowed = None if allowed is None else list(allowed)
    ok = result is not None and result.kind == "f"
    if ok and allowed is not None:
        ok = result.name in allowed
    if not ok:
        kinds = " or ".join(repr(a) for a in allowed) if allowed else "a floating-point type"
        raise ValueError(f"{owner}: dtype must be {kinds}, got {dtype!r}")
    return result
