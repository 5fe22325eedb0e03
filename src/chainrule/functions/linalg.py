"""Matrix products: ``matmul`` and the affine map ``linear`` (the book's Affine layer's math).

The gradients are read off the shapes (CS231n: "dW must have W's shape"):
``dX = dY @ W.T`` and ``dW = X.T @ dY``; a bias broadcast over the batch gets the column sums.
"""

from __future__ import annotations

from typing import Any

from chainrule.function import Function
from chainrule.tensor import Tensor


def _check_2d(op: str, name: str, a: Any) -> None:
    if a.ndim != 2:
        raise ValueError(f"{op}: {name} must be 2-D, got shape {a.shape}")


class MatMul(Function):
    """``out = x @ w`` for 2-D ``x (N, D)`` and ``w (D, M)``.

    **Backward:** ``dx = dout @ w.T`` (N, D), ``dw = x.T @ dout`` (D, M).
    """

    differentiable_backward = True

    def forward(self, x: Any, w: Any) -> Any:
        _check_2d("matmul", "the left operand", x)
        _check_2d("matmul", "the right operand", w)
        if x.shape[1] != w.shape[0]:
            raise ValueError(
                f"matmul: shapes {x.shape} and {w.shape} do not align "
                f"({x.shape[1]} columns vs {w.shape[0]} rows)"
            )
        self.x, self.w = x, w
        return x @ w

    def backward(self, dout: Any) -> tuple[Any, Any]:
        dx = dout @ self.w.T if self.wants_grad(0) else None
        dw = self.x.T @ dout if self.wants_grad(1) else None
        return dx, dw


class Linear(Function):
    """The affine map ``out = x.reshape(N, -1) @ W + b`` over a batch (the book's Affine).

    ``x`` has shape ``(N, ...)``: every sample is flattened to ``D = W.shape[0]`` features, and
    ``dx`` comes back in ``x``'s own shape. ``b`` (shape ``(M,)``) may be ``None``.

    **Backward:** ``dx = (dout @ W.T).reshape(x.shape)``, ``dW = x2.T @ dout``,
    ``db = dout.sum(axis=0)``.

    >>> import numpy as np
    >>> op = Linear()
    >>> op.forward(np.ones((2, 3)), np.ones((3, 4)), np.zeros(4)).shape
    (2, 4)
    >>> [g.shape for g in op.backward(np.ones((2, 4)))]
    [(2, 3), (3, 4), (4,)]
    """

    differentiable_backward = True

    def __init__(self, name: str = "linear"):
        self.name = name

    def forward(self, x: Any, W: Any, b: Any = None) -> Any:
        _check_2d(self.name, "the weight W", W)
        if x.ndim == 0 or x.shape[0] == 0:
            raise ValueError(f"{self.name}: the input batch is empty (shape {x.shape})")
        features = x.size // x.shape[0]
        if features != W.shape[0]:
            raise ValueError(
                f"{self.name}: input of shape {x.shape} has {features} features per sample, "
                f"but W of shape {W.shape} expects {W.shape[0]}"
            )
        if b is not None and b.shape != (W.shape[1],):
            raise ValueError(
                f"{self.name}: bias b has shape {b.shape}, expected ({W.shape[1]},) to match "
                f"W of shape {W.shape}"
            )
        self.x, self.W, self.has_bias = x, W, b is not None
        out = x.reshape(x.shape[0], features) @ W
        if b is not None:
            out += b  # `out` is a fresh array: adding in place saves a temporary
        return out

    def backward(self, dout: Any) -> tuple[Any, ...]:
        x2 = self.x.reshape(self.x.shape[0], -1)
        # The first layer's dx (a gradient for the input images) is a whole matmul nobody uses.
        dx = (dout @ self.W.T).reshape(self.x.shape) if self.wants_grad(0) else None
        dW = x2.T @ dout
        if not self.has_bias:
            return dx, dW
        return dx, dW, dout.sum(axis=0)


def matmul(x: Any, w: Any) -> Tensor:
    return MatMul()(x, w)


def linear(x: Any, W: Any, b: Any = None) -> Tensor:
    """``x.reshape(N, -1) @ W + b`` (bias optional)."""
    return Linear()(x, W) if b is None else Linear()(x, W, b)
