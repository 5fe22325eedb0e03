"""Max and average pooling over 2-D windows, on the convolution's memory layout.

The windows, padding and layout helpers are :mod:`chainrule.functions.conv`'s (see its
docstring for the batch-last layout the activations keep); this module holds the pooling ops
themselves, forward and backward side by side. ``chainrule.functions.conv`` re-exports them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.backend import get_array_module
from chainrule.function import Function
from chainrule.functions.conv import (
    _batch_last,
    _check_dout,
    _col2im_cols,
    _geometry,
    _im2col_cols,
    _pair,
    _tiles,
)
from chainrule.tensor import Tensor


class _Pool2d(Function):
    """Shared set-up of the pooling ops: window size, stride (default: the window), padding.

    Non-overlapping windows without padding (``stride`` = the window, the book's 2x2 pooling)
    take a fast path: the ``kh*kw`` strided views of :func:`_tiles`, combined elementwise, with
    no window array at all. Other windows go through im2col's window array ``(C, k, OH, OW, N)``
    (``k = kh*kw``) and col2im. Either way the output is batch-last in memory, like a conv's.
    """

    name = "pool2d"
    differentiable_backward = True

    def __init__(self, pool_h: int, pool_w: Any = None, stride: Any = None, pad: Any = 0, *,
                 exact: bool = True):  # fmt: skip
        pool_w = pool_h if pool_w is None else pool_w
        self.kh, self.kw = _pair(self.name, "pool size", (pool_h, pool_w), 1)
        window = (self.kh, self.kw)
        self.stride = window if stride is None else _pair(self.name, "stride", stride, 1)
        self.pad = _pair(self.name, "pad", pad, 0)
        self.exact = bool(exact)
        self.tiled = self.stride == window and self.pad == (0, 0)
        if self.name == "max_pool2d" and (self.pad[0] >= self.kh or self.pad[1] >= self.kw):
            raise ValueError(
                f"{self.name}: pad {pad} must be smaller than the pool size {window} "
                "(a window of padding only has no maximum)"
            )

    def _setup(self, x: Any) -> bool:
        """Check ``x`` and set ``x_shape`` and ``out_hw``; True when the fast path applies."""
        desc = f"pool {self.kh}x{self.kw}"
        shape, syms = x.shape, ("pool_h", "pool_w")
        _, _, self.out_hw = _geometry(self.name, shape, self.kh, self.kw, self.stride, self.pad,
                                      ksyms=syms, kernel_desc=desc, exact=self.exact)  # fmt: skip
        self.x_shape = tuple(shape)
        return self.tiled and x.dtype.kind == "f"

    def _windows(self, x: Any, fill: Any = 0) -> Any:
        """Windows of ``x`` as (C, kh*kw, OH, OW, N) (the general path), padded with ``fill``."""
        geometry = (self.stride, self.pad, self.out_hw)
        col = _im2col_cols(x, self.kh, self.kw, *geometry, fill=fill)
        return col.reshape(x.shape[1], self.kh * self.kw, *self.out_hw, x.shape[0])

    def _tiles(self, x: Any) -> list[Any]:
        return _tiles(x, self.kh, self.kw, self.out_hw)

    def _like_input(self, dtype: Any) -> Any:
        """An array for ``dx``, laid out in memory as the input was (batch last, say); zeroed
        only when some rows or columns are in no window (``exact=False``)."""
        xp = get_array_module(self.x)
        oh, ow = self.out_hw
        covered = (oh * self.kh, ow * self.kw) == self.x_shape[2:]
        return (xp.empty_like if covered else xp.zeros_like)(self.x, dtype=dtype)

    def _check_dout(self, dout: Any) -> None:
        _check_dout(self.name, dout, (*self.x_shape[:2], *self.out_hw))

    def _col2im(self, dcol: Any) -> Any:
        """The adjoint of :meth:`_windows`: dcol (C, k, OH, OW, N) (may be broadcast) -> dx."""
        c, n = self.x_shape[1], self.x_shape[0]
        dcol = dcol.reshape(c, self.kh, self.kw, *self.out_hw, n)
        return _col2im_cols(dcol, self.x_shape, self.stride, self.pad)

    def _gather(self, g: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def backward_on_graph(self, dout: Tensor) -> Tensor:
        return _PoolBackward(self)(dout)


class _PoolBackward(Function):
    """A pooling op's backward as an op of its own, for double backprop: ``dx = scatter(dout)``,
    linear in ``dout``, the pool's saved shares (max: the winners; avg: ``1/(kh*kw)`` each)
    held constant. **Backward:** its adjoint, ``gather(g)`` (each output's share-weighted sum
    of its window of ``g``), recorded as a ``_PoolBackward`` the other way round."""

    differentiable_backward = True

    def __init__(self, pool: _Pool2d, gather: bool = False):
        self.pool, self.gather = pool, gather

    def forward(self, a: Any) -> Any:
        return self.pool._gather(a) if self.gather else self.pool.backward(a)

    def backward(self, g: Any) -> Any:
        return self.pool.backward(g) if self.gather else self.pool._gather(g)

    def backward_on_graph(self, g: Tensor) -> Tensor:
        return _PoolBackward(self.pool, not self.gather)(g)


class MaxPool2d(_Pool2d):
    """Max pooling: ``out[n, c, oh, ow] = max`` of the ``pool_h x pool_w`` window at
    ``(oh*stride - pad, ow*stride - pad)`` of channel ``c``. ``x`` (N, C, H, W) ->
    (N, C, OH, OW), ``OH = (H + 2*pad - pool_h) / stride + 1``; ``stride`` defaults to the pool
    size (non-overlapping windows). Padding is ``-inf``, so it never wins; ``pad`` must be
    smaller than the pool size, so that every window holds at least one real pixel.
    ``exact=False`` floors a fractional output size (the book's way).

    **Backward:** ``dout`` goes to the window's maximum; where several entries tie for the
    maximum they **share it equally** (``dout / k`` each for a k-way tie) — the rule of
    :class:`chainrule.functions.Max` and :class:`~chainrule.functions.Maximum`, and for a
    two-way tie exactly the central difference. Overlapping windows add (``+=``) their shares.
    ``kink_state()`` is the share array, so a gradient check sees a perturbation that changes a
    winner. Double backprop: the backward is linear in ``dout`` (winners fixed).

    >>> import numpy as np
    >>> pool = MaxPool2d(2, 2)
    >>> x = np.array([[[[1.0, 3.0, 0.0, 2.0],
    ...                 [3.0, 2.0, 1.0, 1.0]]]])
    >>> pool.forward(x)
    array([[[[3., 2.]]]])
    >>> pool.backward(np.array([[[[1.0, 1.0]]]]))[0, 0]    # a 2-way tie, then a clear winner
    array([[0. , 0.5, 0. , 1. ],
           [0.5, 0. , 0. , 0. ]])
    """

    name = "max_pool2d"

    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        self.x, self.share = x, None
        if self._setup(x):  # non-overlapping: the maximum of kh*kw strided views
            tiles = self._tiles(x)
            out = tiles[0].copy(order="K") if len(tiles) == 1 else xp.maximum(*tiles[:2])
            for tile in tiles[2:]:
                xp.maximum(out, tile, out=out)
            self.out = out
            return out
        fill = -xp.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
        col = self._windows(x, fill)
        out = col.max(axis=1)  # (C, OH, OW, N)
        self.share = self._split(col == out[:, None], x.dtype)
        return out.transpose(3, 0, 1, 2)

    @staticmethod
    def _split(winners: Any, dtype: Any) -> Any:
        """Each window entry's share of ``dout``, from ``winners`` (C, k, OH, OW, N): 1 for the
        maximum, ``1/k`` each for a k-way tie, 0 elsewhere."""
        dtype = dtype if np.dtype(dtype).kind == "f" else np.float64
        share = winners.astype(dtype)
        counts = winners.sum(axis=1, keepdims=True)
        if bool((counts > 1).any()):  # ties: split dout equally among the tied maxima
            share /= counts.astype(dtype)
        return share

    def backward(self, dout: Any) -> Any:
        self._check_dout(dout)
        if self.share is not None:
            return self._col2im(self.share * _batch_last(dout)[:, None])
        # Fast path: which entries of each window equal its maximum (recomputed from x and out:
        # cheaper than storing it), as kh*kw boolean arrays; ties split dout equally (as in
        # _split): each winner gets dout / count. Then one write per window entry into dx.
        xp = get_array_module(dout)
        dtype = xp.result_type(dout.dtype, np.float32)
        winners = [xp.equal(x_tile, self.out) for x_tile in self._tiles(self.x)]
        count = winners[0].astype(dtype)  # laid out as out (and dx)
        for won in winners[1:]:
            count += won
        g = xp.divide(dout, count, out=count)
        dx = self._like_input(dtype)
        for won, dx_tile in zip(winners, self._tiles(dx)):
            xp.multiply(won, g, out=dx_tile)
        return dx

    def kink_state(self) -> Any:
        if self.share is None:
            xp = get_array_module(self.out)
            tiles = [_batch_last(tile == self.out) for tile in self._tiles(self.x)]
            return self._split(xp.stack(tiles, axis=1), self.x.dtype)
        return self.share

    def _gather(self, g: Any) -> Any:
        self._setup(g)
        return (self._windows(g) * self.kink_state()).sum(axis=1).transpose(3, 0, 1, 2)


class AvgPool2d(_Pool2d):
    """Average pooling: ``out[n, c, oh, ow] = mean`` of the ``pool_h x pool_w`` window.
    Shapes, stride, padding and ``exact`` as :class:`MaxPool2d`; padded zeros count in the mean
    (PyTorch's ``count_include_pad=True``).

    **Backward:** every entry of a window gets ``dout / (pool_h * pool_w)``; overlapping
    windows add (``+=``) their shares. No kinks. Linear, so double backprop is exact.

    >>> import numpy as np
    >>> pool = AvgPool2d(2)
    >>> pool.forward(np.array([[[[1.0, 3.0], [5.0, 7.0]]]]))
    array([[[[4.]]]])
    >>> pool.backward(np.array([[[[8.0]]]]))[0, 0]
    array([[2., 2.],
           [2., 2.]])
    """

    name = "avg_pool2d"

    def forward(self, x: Any) -> Any:
        self.x = x
        return self._gather(x)

    def _gather(self, g: Any) -> Any:
        """The mean of every window of ``g`` (the forward, and the adjoint of backward)."""
        if not self._setup(g):
            return self._windows(g).mean(axis=1).transpose(3, 0, 1, 2)
        tiles = self._tiles(g)
        out = tiles[0].copy(order="K")
        for tile in tiles[1:]:
            out += tile
        out /= self.kh * self.kw
        return out

    def backward(self, dout: Any) -> Any:
        self._check_dout(dout)
        share = dout / (self.kh * self.kw)
        if self.tiled and self.x.dtype.kind == "f":
            dx = self._like_input(share.dtype)
            for dx_tile in self._tiles(dx):
                dx_tile[...] = share
            return dx
        # A broadcast view: col2im reads it offset by offset, no (C, k, OH, OW, N) copy.
        c, n = self.x_shape[1], self.x_shape[0]
        shape = (c, self.kh * self.kw, *self.out_hw, n)
        return self._col2im(get_array_module(dout).broadcast_to(_batch_last(share)[:, None], shape))


def max_pool2d(x: Any, kernel: Any, stride: Any = None, pad: Any = 0, *,
               exact: bool = True) -> Tensor:  # fmt: skip
    """Max pooling with a ``kernel`` (int or (h, w)) window; ``stride`` defaults to ``kernel``.

    See :class:`MaxPool2d` (ties share the gradient equally).
    """
    kh, kw = _pair("max_pool2d", "kernel", kernel, 1)
    return MaxPool2d(kh, kw, stride, pad, exact=exact)(x)


def avg_pool2d(x: Any, kernel: Any, stride: Any = None, pad: Any = 0, *,
               exact: bool = True) -> Tensor:  # fmt: skip
    """Average pooling with a ``kernel`` (int or (h, w)) window; ``stride`` defaults to
    ``kernel``. See :class:`AvgPool2d`.
    """
    kh, kw = _pair("avg_pool2d", "kernel", kernel, 1)
    return AvgPool2d(kh, kw, stride, pad, exact=exact)(x)
