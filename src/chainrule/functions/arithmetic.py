"""Arithmetic gates: add, subtract, multiply, divide, negate, power, and broadcasting.

The add gate passes ``dout`` through unchanged; the multiply gate swaps its inputs ("the
gradient on x is y times dout"). When NumPy broadcast an input in forward, the gradient is summed
back to that input's shape (:func:`sum_to`), as the batched Affine layer does for its bias.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.backend import get_array_module
from chainrule.function import Function
from chainrule.functions.checks import ieee
from chainrule.tensor import Tensor


def _shape(x: Any) -> tuple[int, ...]:
    return np.shape(x) if not hasattr(x, "shape") else x.shape


def _sum_to_array(x: Any, shape: tuple[int, ...]) -> Any:
    if _shape(x) == shape:
        return x
    ndim = len(shape)
    lead = x.ndim - ndim
    axes = tuple(range(lead)) + tuple(i + lead for i, n in enumerate(shape) if n == 1)
    y = x.sum(axis=axes, keepdims=True)
    return y.reshape(shape) if lead else y


class SumTo(Function):
    """Sum ``x`` down to ``shape`` (undoing broadcasting).

    **Backward:** ``dx = broadcast_to(dout, x.shape)``.
    """

    differentiable_backward = True

    def __init__(self, shape: tuple[int, ...]):
        self.shape = tuple(shape)

    def forward(self, x: Any) -> Any:
        self.x_shape = _shape(x)
        return _sum_to_array(x, self.shape)

    def backward(self, dout: Any) -> Any:
        return broadcast_to(dout, self.x_shape)


class BroadcastTo(Function):
    """Broadcast ``x`` to ``shape`` (a read-only view).

    **Backward:** ``dx = sum_to(dout, x.shape)`` — every copy sends its gradient back.
    """

    differentiable_backward = True

    def __init__(self, shape: tuple[int, ...]):
        self.shape = tuple(shape)

    def forward(self, x: Any) -> Any:
        self.x_shape = _shape(x)
        return get_array_module(x).broadcast_to(x, self.shape)

    def backward(self, dout: Any) -> Any:
        return sum_to(dout, self.x_shape)


def sum_to(x: Any, shape: tuple[int, ...]) -> Any:
    """Sum over the broadcast axes so the result has ``shape`` (arrays in, arrays out)."""
    shape = tuple(shape)
    if isinstance(x, Tensor):
        return x if x.shape == shape else SumTo(shape)(x)
    return _sum_to_array(x, shape)


def broadcast_to(x: Any, shape: tuple[int, ...]) -> Any:
    """Broadcast to ``shape`` (arrays in, arrays out; Tensors in, Tensors out)."""
    shape = tuple(shape)
    if isinstance(x, Tensor):
        return x if x.shape == shape else BroadcastTo(shape)(x)
    if _shape(x) == shape:
        return x
    return get_array_module(x).broadcast_to(x, shape)


class Add(Function):
    """``out = x + y`` (the add gate; the book's ``AddLayer``).

    **Backward:** ``dx = dout``, ``dy = dout`` (each summed back to its input's shape).

    >>> Add().forward(2.0, 3.0)
    5.0
    """

    differentiable_backward = True

    def forward(self, x: Any, y: Any) -> Any:
        self.x_shape, self.y_shape = _shape(x), _shape(y)
        return x + y

    def backward(self, dout: Any) -> tuple[Any, Any]:
        return sum_to(dout, self.x_shape), sum_to(dout, self.y_shape)


class Sub(Function):
    """``out = x - y``.

    **Backward:** ``dx = dout``, ``dy = -dout``.
    """

    differentiable_backward = True

    def forward(self, x: Any, y: Any) -> Any:
        self.x_shape, self.y_shape = _shape(x), _shape(y)
        return x - y

    def backward(self, dout: Any) -> tuple[Any, Any]:
        return sum_to(dout, self.x_shape), sum_to(-dout, self.y_shape)


class Mul(Function):
    """``out = x * y`` (the multiply gate; the book's ``MulLayer``).

    **Backward:** ``dx = dout * y``, ``dy = dout * x`` — the inputs swap places.

    >>> m = Mul(); m.forward(100, 2)
    200
    >>> m.backward(1)
    (2, 100)
    """

    differentiable_backward = True

    def forward(self, x: Any, y: Any) -> Any:
        self.x, self.y = x, y
        return x * y

    def backward(self, dout: Any) -> tuple[Any, Any]:
        return sum_to(dout * self.y, _shape(self.x)), sum_to(dout * self.x, _shape(self.y))


class Div(Function):
    """``out = x / y``.

    **Backward:** ``dx = dout / y``, ``dy = -dout * x / y**2``.
    """

    differentiable_backward = True

    def forward(self, x: Any, y: Any) -> Any:
        self.x, self.y = x, y
        return x / y

    def backward(self, dout: Any) -> tuple[Any, Any]:
        dx = dout / self.y
        dy = -dx * self.x / self.y
        return sum_to(dx, _shape(self.x)), sum_to(dy, _shape(self.y))


class Neg(Function):
    """``out = -x``.

    **Backward:** ``dx = -dout``.
    """

    differentiable_backward = True

    def forward(self, x: Any) -> Any:
        return -x

    def backward(self, dout: Any) -> Any:
        return -dout


class Pow(Function):
    """``out = x ** c`` for a constant exponent ``c`` (a number or an array that may broadcast).

    **Backward:** ``dx = dout * c * x ** (c - 1)``, summed back to ``x``'s shape; where
    ``c == 0`` the derivative is 0, also at ``x == 0`` (not ``0 * inf``).

    >>> p = Pow(3); p.forward(2.0), p.backward(1.0)
    (8.0, 12.0)
    """

    differentiable_backward = True

    def __init__(self, c: Any):
        self.c = c

    def forward(self, x: Any) -> Any:
        self.x = x
        return ieee("pow", lambda a: a**self.c, x)  # (-8) ** 0.5 = nan, 0 ** -1 = inf

    def backward(self, dout: Any) -> Any:
        exponent = self.c - 1 + (self.c == 0)  # x ** 0 = 1 where c == 0: 0 * 1, not 0 * inf
        return sum_to(dout * self.c * self.x**exponent, _shape(self.x))


def add(x: Any, y: Any) -> Tensor:
    return Add()(x, y)


def sub(x: Any, y: Any) -> Tensor:
    return Sub()(x, y)


def mul(x: Any, y: Any) -> Tensor:
    return Mul()(x, y)


def div(x: Any, y: Any) -> Tensor:
    return Div()(x, y)


def neg(x: Any) -> Tensor:
    return Neg()(x)


def pow(x: Any, c: Any) -> Tensor:
    """``x ** c`` with a constant exponent ``c``."""
    if isinstance(c, Tensor):
        raise TypeError(
            "pow: the exponent must be a constant number or array, not a Tensor; write "
            "exp(c * log(x)) for a learned exponent"
        )
    return Pow(c)(x)
