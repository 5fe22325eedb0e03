"""Reductions: sum, mean, max and min over axes.

Sum sends ``dout`` back to every element it added; max and min send it to the winner only —
the max gate applied along an axis — splitting it equally between tied winners.
"""

from __future__ import annotations

from typing import Any

from chainrule.function import Function
from chainrule.functions.arithmetic import broadcast_to
from chainrule.functions.shape import reshape
from chainrule.tensor import Tensor


def _normalize_axis(axis: Any, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"axis {a} is out of range for an array of {ndim} dimensions")
    return tuple(sorted(a % ndim for a in axes))


def _kept_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


class Sum(Function):
    """``out = x.sum(axis, keepdims)``.

    **Backward:** ``dx = broadcast_to(dout, x.shape)`` — every summed element gets ``dout``.
    """

    differentiable_backward = True

    def __init__(self, axis: Any = None, keepdims: bool = False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x: Any) -> Any:
        self.x_shape = x.shape
        self.axes = _normalize_axis(self.axis, x.ndim)
        return x.sum(axis=self.axes, keepdims=self.keepdims)

    def backward(self, dout: Any) -> Any:
        return broadcast_to(reshape(dout, _kept_shape(self.x_shape, self.axes)), self.x_shape)


class Max(Function):
    """``out = x.max(axis, keepdims)``.

    **Backward:** ``dout`` goes to the maximal element(s); tied maxima share it equally.
    """

    differentiable_backward = True

    def __init__(self, axis: Any = None, keepdims: bool = False):
        self.axis, self.keepdims = axis, keepdims

    def _reduce(self, x: Any, axes: tuple[int, ...]) -> Any:
        return x.max(axis=axes, keepdims=True)

    def forward(self, x: Any) -> Any:
        if x.size == 0:
            raise ValueError(f"{type(self).__name__.lower()}: the input is empty")
        self.x_shape = x.shape
        self.axes = _normalize_axis(self.axis, x.ndim)
        best = self._reduce(x, self.axes)
        winners = x == best
        self.share = winners / winners.sum(axis=self.axes, keepdims=True)
        self.share = self.share.astype(x.dtype, copy=False)
        return (
            best
            if self.keepdims
            else best.reshape([n for i, n in enumerate(x.shape) if i not in self.axes])
        )

    def backward(self, dout: Any) -> Any:
        return reshape(dout, _kept_shape(self.x_shape, self.axes)) * self.share

    def kink_state(self) -> Any:
        return self.share


class Min(Max):
    """``out = x.min(axis, keepdims)``.

    **Backward:** ``dout`` goes to the minimal element(s); tied minima share it equally.
    """

    def _reduce(self, x: Any, axes: tuple[int, ...]) -> Any:
        return x.min(axis=axes, keepdims=True)


def sum(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    return Sum(axis, keepdims)(x)


def mean(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Mean over ``axis``: the sum scaled by ``1 / count`` (no derivative of its own)."""
    shape = x.shape
    count = 1
    for a in _normalize_axis(axis, len(shape)):
        count *= shape[a]
    return sum(x, axis, keepdims) * (1.0 / count)


def max(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    return Max(axis, keepdims)(x)


def min(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    return Min(axis, keepdims)(x)
