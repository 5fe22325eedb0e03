"""Shape operations: reshape, transpose, indexing, concatenate and stack.

None of them changes a value, so their backward passes only move gradients back to where each
value came from; indexing with repeated integer indices accumulates (``+=``), because the same
element was used more than once.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.backend import get_array_module
from chainrule.function import Function
from chainrule.tensor import Tensor


class Reshape(Function):
    """``out = x.reshape(shape)``.

    **Backward:** ``dx = dout.reshape(x.shape)``.
    """

    differentiable_backward = True

    def __init__(self, shape: tuple[int, ...]):
        self.shape = tuple(shape)

    def forward(self, x: Any) -> Any:
        self.x_shape = x.shape
        try:
            return x.reshape(self.shape)
        except ValueError:
            raise ValueError(
                f"reshape: cannot reshape an array of shape {x.shape} (size {x.size}) "
                f"into shape {self.shape}"
            ) from None

    def backward(self, dout: Any) -> Any:
        return reshape(dout, self.x_shape)


class Transpose(Function):
    """``out = x.transpose(axes)`` (``axes=None`` reverses them, like ``.T``).

    **Backward:** ``dx = dout.transpose(inverse permutation)``.
    """

    differentiable_backward = True

    def __init__(self, axes: tuple[int, ...] | None = None):
        self.axes = None if axes is None else tuple(axes)

    def forward(self, x: Any) -> Any:
        return x.transpose(self.axes)

    def backward(self, dout: Any) -> Any:
        if self.axes is None:
            return transpose(dout)
        # Normalise negative axes first: argsort of (1, 0, -1) is not the inverse of it.
        return transpose(
            dout, tuple(int(a) for a in np.argsort([a % dout.ndim for a in self.axes]))
        )


class GetItem(Function):
    """``out = x[index]`` (basic slicing and integer/boolean array indexing).

    **Backward:** ``dx = scatter_add(dout, index, x.shape)``: a zero array of ``x``'s shape with
    ``dout`` added at ``index``; repeated integer indices accumulate (``np.add.at``).

    >>> GetItem(1).forward(np.array([5.0, 6.0]))
    np.float64(6.0)
    """

    differentiable_backward = True

    def __init__(self, index: Any):
        self.index = index

    def forward(self, x: Any) -> Any:
        self.x_shape, self.dtype = x.shape, x.dtype
        try:
            return x[self.index]
        except IndexError as exc:
            raise IndexError(
                f"get_item: index {self.index!r} into shape {x.shape}: {exc}"
            ) from None

    def backward(self, dout: Any) -> Any:
        return _apply(ScatterAdd(self.index, self.x_shape), dout)


class ScatterAdd(Function):
    """``out = zeros(shape)`` with ``x`` added at ``index`` (the gradient of :class:`GetItem`).

    **Backward:** ``dx = dout[index]`` — the derivative of a scatter is a gather.
    """

    differentiable_backward = True

    def __init__(self, index: Any, shape: tuple[int, ...]):
        self.index, self.shape = index, shape

    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        out = xp.zeros(self.shape, dtype=x.dtype)
        xp.add.at(out, self.index, x)
        return out

    def backward(self, dout: Any) -> Any:
        return _apply(GetItem(self.index), dout)


def _apply(f: Function, a: Any) -> Any:
    """``f`` applied to a Tensor as a recorded op (create_graph), or by hand to an array."""
    return f(a) if isinstance(a, Tensor) else f.forward(a)


class Concatenate(Function):
    """``out = concatenate(xs, axis)``.

    **Backward:** ``dout`` is cut back into the pieces along ``axis``.
    """

    differentiable_backward = True

    def __init__(self, axis: int = 0):
        self.axis = axis

    def forward(self, *xs: Any) -> Any:
        xp = get_array_module(*xs)
        self.sizes = [x.shape[self.axis] for x in xs]
        try:
            return xp.concatenate(xs, axis=self.axis)
        except ValueError:
            shapes = ", ".join(str(x.shape) for x in xs)
            raise ValueError(
                f"concatenate: shapes {shapes} do not match outside axis {self.axis}"
            ) from None

    def backward(self, dout: Any) -> tuple[Any, ...]:
        pieces, start = [], 0
        for n in self.sizes:
            index = [slice(None)] * dout.ndim
            index[self.axis] = slice(start, start + n)
            pieces.append(dout[tuple(index)])
            start += n
        return tuple(pieces)


class Stack(Function):
    """``out = stack(xs, axis)`` — a new axis.

    **Backward:** ``dx_i = dout`` taken at position ``i`` of the new axis.
    """

    differentiable_backward = True

    def __init__(self, axis: int = 0):
        self.axis = axis

    def forward(self, *xs: Any) -> Any:
        xp = get_array_module(*xs)
        shapes = {x.shape for x in xs}
        if len(shapes) != 1:
            raise ValueError(f"stack: all inputs need one shape, got {sorted(shapes)}")
        self.count = len(xs)
        return xp.stack(xs, axis=self.axis)

    def backward(self, dout: Any) -> tuple[Any, ...]:
        axis = self.axis % dout.ndim
        return tuple(dout[(slice(None),) * axis + (i,)] for i in range(self.count))


def reshape(x: Any, shape: tuple[int, ...]) -> Any:
    """Reshape (arrays in, arrays out; Tensors in, Tensors out)."""
    shape = tuple(shape)
    if isinstance(x, Tensor):
        return x if x.shape == shape else Reshape(shape)(x)
    return get_array_module(x).reshape(x, shape)


def transpose(x: Any, axes: tuple[int, ...] | None = None) -> Any:
    """Transpose (arrays in, arrays out; Tensors in, Tensors out)."""
    if isinstance(x, Tensor):
        return Transpose(axes)(x)
    return x.transpose(axes)


def get_item(x: Any, index: Any) -> Tensor:
    if isinstance(index, Tensor):
        index = index.data
    elif isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return GetItem(index)(x)


def concatenate(xs: Any, axis: int = 0) -> Tensor:
    return Concatenate(axis)(*xs)


def stack(xs: Any, axis: int = 0) -> Tensor:
    return Stack(axis)(*xs)
