"""The book's Dropout layer around :class:`chainrule.functions.Dropout` (inverted dropout)."""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.config import using_config
from chainrule.functions.noise import Dropout as DropoutOp


class Dropout:
    """Drop each unit with probability ``dropout_ratio`` while training (chapter 6).

    ``forward(x, train_flg=True)``: in training ``out = x * mask / (1 - dropout_ratio)``;
    otherwise ``out = x``.

    This is *inverted* dropout: the kept units are scaled up while training, so evaluation
    passes ``x`` through unchanged. The book's layer scales the other way, returning
    ``x * (1 - dropout_ratio)`` in evaluation; both give the next layer the same expected
    input, but the numbers differ by that factor. ``rng`` (a ``numpy.random.Generator``; the
    library's :func:`chainrule.seed`-able generator when ``None``) draws the masks.

    **Backward:** ``dx = dout * mask / (1 - dropout_ratio)`` (``dout`` after an evaluation
    forward).

    >>> import numpy as np
    >>> layer = Dropout(0.5, rng=np.random.default_rng(0))
    >>> out = layer.forward(np.ones(6))
    >>> sorted(set(out.tolist())) == [0.0, 2.0] and bool((out == 2.0).any())
    True
    >>> layer.forward(np.ones(3), train_flg=False)
    array([1., 1., 1.])
    """

    def __init__(self, dropout_ratio: float = 0.5, *, rng: np.random.Generator | None = None):
        self.op = DropoutOp(dropout_ratio, rng)

    @property
    def dropout_ratio(self) -> float:
        return self.op.ratio

    @property
    def rng(self) -> np.random.Generator | None:
        return self.op.rng

    @rng.setter
    def rng(self, value: np.random.Generator | None) -> None:
        self.op.rng = value

    @property
    def mask(self) -> Any:
        """Which units the last training forward kept (``None`` after an evaluation one)."""
        scale = getattr(self.op, "scale", None)
        return None if scale is None else scale != 0

    def forward(self, x: Any, train_flg: bool = True) -> Any:
        with using_config("train", bool(train_flg)):
            return self.op.forward(x)

    def backward(self, dout: Any) -> Any:
        return self.op.backward(dout)
