"""Weight initialization: the scale of the first random weights (chapter 6), and where the
random numbers come from.

* ``"he"``: standard deviation ``sqrt(2 / fan_in)``, for ReLU networks (He et al., 2015);
* ``"xavier"``: ``sqrt(1 / fan_in)``, for sigmoid and tanh (the book's simplified
  Xavier/Glorot);
* an activation's name (``"relu"``, ``"sigmoid"``, ``"tanh"``, ``"leaky_relu"``, as the book's
  ``weight_init_std='relu'``): the scheme that activation suits, from
  :data:`chainrule.activations.ACTIVATIONS`;
* a number: that standard deviation (the book's ``weight_init_std=0.01``).

``fan_in`` is the number of inputs of each unit (the previous layer's size).

Random numbers: a constructor given ``rng=None`` draws from :func:`default_rng`. After
:func:`chainrule.seed` that is the library's seeded generator; before it, a fresh generator
seeded from NumPy's global (legacy) state, so ``np.random.seed(0)`` in a learner's script makes
the weights reproducible as the book's ``np.random.randn`` weights are::

    np.random.seed(0); a = TwoLayerNet(784, 50, 10)
    np.random.seed(0); b = TwoLayerNet(784, 50, 10)   # the same weights as a

(The draw from NumPy's global state happens only while :func:`chainrule.seed` has not been
called; an explicit ``rng=`` always wins.)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from chainrule.config import get_rng
from chainrule.validation import positive_int as check_size
from chainrule.validation import positive_ints as check_sizes

__all__ = ["GAINS", "check_init", "check_size", "check_sizes", "default_rng", "init_std", "normal"]

#: Variance gain of each scheme: ``std = sqrt(gain / fan_in)``.
GAINS = {"he": 2.0, "xavier": 1.0}

# The library's generator as it is before any chainrule.seed() call (which replaces it).
_UNSEEDED = get_rng()


def default_rng() -> np.random.Generator:
    """The generator for a constructor given ``rng=None`` (see the module docstring).

    :func:`chainrule.seed` was called: the library's generator. Otherwise a new generator
    seeded with a number drawn from NumPy's global state (``np.random.randint``), which
    ``np.random.seed`` controls, as it controls the book's ``np.random.randn`` weights.
    """
    rng = get_rng()
    if rng is not _UNSEEDED:
        return rng
    # The legacy global state on purpose: np.random.seed must reach it, as in the book.
    return np.random.default_rng(np.random.randint(0, 2**31 - 1))  # noqa: NPY002


def check_init(owner: str, argname: str, init: Any) -> str | float:
    """Validate an initialization: ``'he'``, ``'xavier'``, an activation name (its scheme) or
    a non-negative standard deviation; return ``'he'``, ``'xavier'`` or a ``float``.

    >>> check_init("MLP", "init", "Sigmoid"), check_init("MLP", "init", 0.01)
    ('xavier', 0.01)
    """
    if isinstance(init, str):
        from chainrule.activations import ACTIVATIONS  # the table imports the nn modules

        key = init.lower()
        if key in ACTIVATIONS:
            key = ACTIVATIONS[key].init
        if key not in GAINS:
            raise ValueError(
                f"{owner}: {argname} must be 'he', 'xavier', an activation name "
                f"({', '.join(ACTIVATIONS)}) or a non-negative standard deviation, got {init!r}"
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
    scheme = check_init("init_std", "init", init) if isinstance(init, str) else init
    if isinstance(scheme, str):
        return math.sqrt(GAINS[scheme] / fan_in)
    return float(scheme)


def normal(
    shape: tuple[int, ...], std: float, rng: np.random.Generator, dtype: Any = np.float32
) -> np.ndarray:
    """Weights drawn from ``N(0, std**2)`` with ``rng``, in ``dtype``."""
    return (std * rng.standard_normal(shape)).astype(dtype, copy=False)
