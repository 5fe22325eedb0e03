"""The book's Affine layer: a stateful holder of ``W`` and ``b`` around :class:`Linear`."""

from __future__ import annotations

from typing import Any

from chainrule.functions.linalg import Linear
from chainrule.layers.base import ParamLayer


class Affine(ParamLayer):
    """``out = x.reshape(N, -1) @ W + b`` for a batch ``x`` of shape ``(N, ...)``.

    Holds references to ``W`` (D, M) and ``b`` (M,) or ``None`` — an optimizer that updates
    them in place is seen here. After ``backward``, ``dW`` and ``db`` hold the gradients and
    the returned ``dx`` has ``x``'s shape. The math is :class:`chainrule.functions.Linear`'s.

    **Backward:** ``dx = dout @ W.T``, ``dW = x.T @ dout``, ``db = dout.sum(axis=0)``.

    >>> import numpy as np
    >>> layer = Affine(np.ones((4, 2)), np.zeros(2))
    >>> layer.forward(np.ones((3, 2, 2))).shape
    (3, 2)
    >>> layer.backward(np.ones((3, 2))).shape, layer.dW.shape, layer.db.shape
    ((3, 2, 2), (4, 2), (2,))
    """

    def __init__(self, W: Any, b: Any, name: str = "Affine", *, need_dx: bool = True):
        self.W, self.b = W, b
        self.dW: Any = None
        self.db: Any = None
        self.op = Linear(name)
        self.need_dx = need_dx

    def forward(self, x: Any) -> Any:
        return self.op.forward(x, self.W, self.b)

    def backward(self, dout: Any) -> Any:
        # Let go of the previous step's gradients first: otherwise old and new dW are both
        # alive while the new one is computed (for a 1024x1024 layer, 4 MB more at the peak).
        self.dW = self.db = None
        dx, self.dW, *db = self.op.backward(dout)
        self.db = db[0] if db else None
        return dx
