"""Modules for convolutional networks: Conv2d, MaxPool2d, AvgPool2d, BatchNorm2d.

Each ``forward`` is one call into :mod:`chainrule.functions` (:func:`~chainrule.functions.
conv2d`, :func:`~chainrule.functions.max_pool2d`, :func:`~chainrule.functions.avg_pool2d`,
:func:`~chainrule.functions.batch_norm`), the ops the book's
:class:`~chainrule.layers.Convolution` and :class:`~chainrule.layers.Pooling` run too: the
forward and backward math is written there, once. These classes only hold the parameters
(``W`` (FN, C, FH, FW) and ``b`` (FN,), the book's layout) and the settings.
:class:`~chainrule.nn.Flatten` (``(N, C, H, W) -> (N, C*H*W)``) lives with the fully
connected modules.

>>> import numpy as np
>>> from chainrule import nn
>>> model = nn.Sequential(
...     nn.Conv2d(1, 4, 3, pad=1, rng=np.random.default_rng(0)), nn.BatchNorm2d(4), nn.ReLU(),
...     nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 4 * 4, 10, rng=np.random.default_rng(1)))
>>> model(np.ones((2, 1, 8, 8), dtype=np.float32)).shape
(2, 10)
>>> model[0]
Conv2d(1, 4, kernel_size=(3, 3), stride=(1, 1), pad=(1, 1))  # W (4, 1, 3, 3), b (4,): 40 parameters
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule import functions as F
from chainrule.nn.init import check_init, check_size, default_rng, init_std, normal
from chainrule.nn.layers import BatchNorm1d
from chainrule.nn.module import Module, Parameter
from chainrule.tensor import Tensor
from chainrule.validation import float_dtype


def _pair(owner: str, argname: str, value: Any, minimum: int) -> tuple[int, int]:
    """``value`` (an int, or an ``(for H, for W)`` pair) as a pair of ints ``>= minimum``."""
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    ok = len(pair) == 2 and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) and v >= minimum
        for v in pair
    )
    if not ok:
        kind = "positive integer" if minimum >= 1 else "non-negative integer"
        raise ValueError(
            f"{owner}: {argname} must be a {kind} or a pair (for H, for W) of them, got {value!r}"
        )
    return int(pair[0]), int(pair[1])


def _label(module: Module) -> str:
    """``Conv2d(3, 8, kernel_size=...)``: the module as its constructor, for error messages."""
    return f"{type(module).__name__}({module.extra_repr()})"


def _check_images(module: Module, x: Any, channels: int | None = None) -> None:
    """A clear error, naming ``module``, for input that is not an image batch (N, C, H, W)
    with ``channels`` channels."""
    shape = tuple(getattr(x, "shape", ()))
    if len(shape) != 4 or (channels is not None and shape[1] != channels):
        want = f"(N, {channels}, H, W)" if channels is not None else "(N, C, H, W)"
        raise ValueError(f"{_label(module)}: input must have shape {want}, got {shape}")


class Conv2d(Module):
    """2-D convolution (cross-correlation, the book's Convolution), via
    :func:`chainrule.functions.conv2d`::

        out[n, f, oh, ow] = b[f] + sum_{c,i,j} W[f, c, i, j] * xpad[n, c, oh*s + i, ow*s + j]

    Shapes: ``x`` (N, C, H, W) -> ``out`` (N, FN, OH, OW) with ``C = in_channels``,
    ``FN = out_channels``, ``OH = (H + 2*pad - FH) / stride + 1`` (a whole number, or an
    error naming the sizes). ``W`` has shape ``(FN, C, FH, FW)`` and ``b`` ``(FN,)`` — the
    book's ``Convolution`` layout (``b`` absent with ``bias=False``). ``kernel_size``,
    ``stride`` and ``pad`` (zero padding) are an int or an ``(for H, for W)`` pair.

    ``W`` is drawn from ``N(0, std**2)`` with ``std`` given by ``init`` (``'he'``,
    ``'xavier'`` or a number; :mod:`chainrule.nn.init`) for ``fan_in = C * FH * FW``; ``b``
    starts at zero. ``rng`` defaults to :func:`chainrule.nn.init.default_rng`.

    **Backward** (in the op, written once): with ``d = dout`` as a (FN, N*OH*OW) matrix and
    ``col = im2col(x)``: ``dW = d @ col.T``, ``db = d.sum(axis=1)``,
    ``dx = col2im(W.reshape(FN, -1).T @ d)``. Linear in every input: no kinks.

    >>> conv = Conv2d(3, 8, kernel_size=3, stride=2, pad=1, rng=np.random.default_rng(0))
    >>> print(conv)  # doctest: +NORMALIZE_WHITESPACE
    Conv2d(3, 8, kernel_size=(3, 3), stride=(2, 2), pad=(1, 1))
      # W (8, 3, 3, 3), b (8,): 224 parameters
    >>> conv.W.shape, conv.b.shape
    ((8, 3, 3, 3), (8,))
    >>> conv(np.ones((5, 3, 9, 9), dtype=np.float32)).shape
    (5, 8, 5, 5)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        pad: int | tuple[int, int] = 0,
        bias: bool = True,
        init: str | float = "he",
        rng: np.random.Generator | None = None,
        dtype: Any = np.float32,
    ):
        super().__init__()
        me = "Conv2d"
        self.in_channels = check_size(me, "in_channels", in_channels)
        self.out_channels = check_size(me, "out_channels", out_channels)
        self.kernel_size = _pair(me, "kernel_size", kernel_size, 1)
        self.stride = _pair(me, "stride", stride, 1)
        self.pad = _pair(me, "pad", pad, 0)
        init = check_init(me, "init", init)
        dtype = float_dtype(me, dtype)
        rng = default_rng() if rng is None else rng
        fh, fw = self.kernel_size
        shape = (self.out_channels, self.in_channels, fh, fw)
        std = init_std(init, self.in_channels * fh * fw)
        self.W = Parameter(normal(shape, std, rng, dtype), "W")
        self.b = Parameter(np.zeros(self.out_channels, dtype=dtype), "b") if bias else None

    def forward(self, x: Any) -> Tensor:
        _check_images(self, x, self.in_channels)
        return F.conv2d(x, self.W, self.b, self.stride, self.pad)

    def extra_repr(self) -> str:
        text = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, pad={self.pad}"
        )
        return text if self.b is not None else text + ", bias=False"


class _Pool2d(Module):
    """Settings shared by the pooling modules: window, stride (default: the window), pad."""

    def __init__(
        self,
        kernel: int | tuple[int, int],
        stride: int | tuple[int, int] | None = None,
        pad: int | tuple[int, int] = 0,
    ):
        super().__init__()
        me = type(self).__name__
        self.kernel = _pair(me, "kernel", kernel, 1)
        self.stride = self.kernel if stride is None else _pair(me, "stride", stride, 1)
        self.pad = _pair(me, "pad", pad, 0)

    def extra_repr(self) -> str:
        return f"kernel={self.kernel}, stride={self.stride}, pad={self.pad}"


class MaxPool2d(_Pool2d):
    """Max pooling (the book's Pooling), via :func:`chainrule.functions.max_pool2d`:
    ``out[n, c, oh, ow]`` is the maximum of the ``kernel`` window at
    ``(oh*stride - pad, ow*stride - pad)`` of channel ``c``.

    Shapes: ``x`` (N, C, H, W) -> (N, C, OH, OW), ``OH = (H + 2*pad - KH) / stride + 1``;
    ``stride`` defaults to the window (non-overlapping windows). Padding is ``-inf`` (it never
    wins), so ``pad`` must be smaller than the window. No parameters.

    **Backward:** ``dout`` goes to each window's maximum; tied maxima share it equally
    (overlapping windows add their shares). The kink is where two entries of a window tie.

    >>> pool = MaxPool2d(2)
    >>> pool
    MaxPool2d(kernel=(2, 2), stride=(2, 2), pad=(0, 0))
    >>> pool(np.arange(16.0).reshape(1, 1, 4, 4)).data
    array([[[[ 5.,  7.],
             [13., 15.]]]])
    """

    def __init__(
        self,
        kernel: int | tuple[int, int],
        stride: int | tuple[int, int] | None = None,
        pad: int | tuple[int, int] = 0,
    ):
        super().__init__(kernel, stride, pad)
        if self.pad[0] >= self.kernel[0] or self.pad[1] >= self.kernel[1]:
            raise ValueError(
                f"MaxPool2d: pad {self.pad} must be smaller than the window {self.kernel} "
                "(a window of padding only has no maximum)"
            )

    def forward(self, x: Any) -> Tensor:
        _check_images(self, x)
        return F.max_pool2d(x, self.kernel, self.stride, self.pad)


class AvgPool2d(_Pool2d):
    """Average pooling, via :func:`chainrule.functions.avg_pool2d`: ``out[n, c, oh, ow]`` is
    the mean of the ``kernel`` window; padded zeros count in the mean. Shapes, stride and
    padding as :class:`MaxPool2d`. No parameters.

    **Backward:** every entry of a window gets ``dout / (KH * KW)``; overlapping windows add.
    No kinks.

    >>> AvgPool2d(2)(np.array([[[[1.0, 3.0], [5.0, 7.0]]]])).data
    array([[[[4.]]]])
    """

    def forward(self, x: Any) -> Tensor:
        _check_images(self, x)
        return F.avg_pool2d(x, self.kernel, self.stride, self.pad)


class BatchNorm2d(BatchNorm1d):
    """Batch normalization of each of ``num_features`` channels over the batch and all
    positions (N, H, W), via :func:`chainrule.functions.batch_norm`::

        out[n, c, h, w] = gamma[c] * (x[n, c, h, w] - mean[c]) / sqrt(var[c] + eps) + beta[c]

    Shapes: ``x`` (N, C, H, W) -> the same, ``C = num_features``. Parameters ``gamma`` (C,),
    ones, and ``beta`` (C,), zeros; buffers ``running_mean`` (zeros) and ``running_var`` (ones),
    held by ``state`` (a :class:`~chainrule.functions.BatchNormState`).

    Training mode: ``mean``/``var`` are the batch's own (biased) statistics over N*H*W values
    per channel, and the running statistics are updated in place; evaluation mode
    (``model.eval()`` or :func:`chainrule.eval_mode`): the running statistics, untouched.
    ``momentum`` is the book's: the weight of the *old* running value (PyTorch's
    ``momentum=0.1`` is ``0.9`` here).

    **Backward** (in the op): ``dbeta = sum(dout)``, ``dgamma = sum(dout * xhat)`` per channel;
    with batch statistics ``dx = (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) /
    sqrt(var + eps)`` where ``dxhat = dout * gamma``; in evaluation ``dx = dxhat / sqrt(var +
    eps)``.

    >>> bn = BatchNorm2d(2, dtype=np.float64)
    >>> x = np.arange(16.0).reshape(2, 2, 2, 2)
    >>> y = bn(x).data
    >>> y.mean(axis=(0, 2, 3)).round(12), y.var(axis=(0, 2, 3)).round(4)
    (array([0., 0.]), array([1., 1.]))
    >>> bn.running_mean          # 0.9 * 0 + 0.1 * (batch mean of each channel)
    array([0.55, 0.95])
    """

    def forward(self, x: Any) -> Tensor:
        _check_images(self, x, self.num_features)
        return F.batch_norm(x, self.gamma, self.beta, self.state)
