"""Global switches: whether operations record a graph, and train/eval mode.

Everything that changes how the library behaves globally lives here, so there is one place to
look. Use the context managers rather than assigning the attributes by hand: they restore the
previous value even when the block raises.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np


class Config:
    """Process-wide settings read by :class:`chainrule.function.Function` and some layers.

    ``enable_backprop``: record the computational graph (creator links) for ``backward()``.
    ``train``: training mode (dropout active, batch norm uses batch statistics).
    """

    enable_backprop: bool = True
    train: bool = True


@contextlib.contextmanager
def using_config(name: str, value: bool) -> Iterator[None]:
    """Temporarily set ``Config.<name>`` to ``value``."""
    if not hasattr(Config, name):
        raise AttributeError(f"chainrule.Config has no setting {name!r}")
    old = getattr(Config, name)
    setattr(Config, name, value)
    try:
        yield
    finally:
        setattr(Config, name, old)


def no_grad() -> contextlib.AbstractContextManager[None]:
    """Build no graph inside the block: forward only, nothing kept for ``backward``.

    >>> from chainrule import Tensor, no_grad
    >>> with no_grad():
    ...     y = Tensor(2.0) * 3.0
    >>> y.creator is None
    True
    """
    return using_config("enable_backprop", False)


def eval_mode() -> contextlib.AbstractContextManager[None]:
    """Evaluation mode inside the block (dropout off, batch norm uses running statistics)."""
    return using_config("train", False)


def train_mode() -> contextlib.AbstractContextManager[None]:
    """Training mode inside the block."""
    return using_config("train", True)


_rng = np.random.default_rng()


def seed(value: int | None) -> None:
    """Seed the generator used by random layers (dropout) and default initializers."""
    global _rng
    _rng = np.random.default_rng(value)


def get_rng() -> np.random.Generator:
    """The generator used by random layers (dropout) and default weight initializers."""
    return _rng
