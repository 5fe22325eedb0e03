"""Convolution and pooling on image batches (N, C, H, W), built on im2col / col2im.

A convolution is many small dot products: every filter against every window of the image.
:func:`im2col` ("image to columns") copies each window into one column of a matrix, so that all
those dot products become a single matrix product (GEMM) — the one operation BLAS does fast.
:func:`col2im` walks the same windows the other way and *adds* each column back onto the pixels
it came from: it is the adjoint (the transpose) of im2col, not its inverse, because a pixel that
sits in several overlapping windows receives the gradient of every one of them. See
``docs/im2col.md`` for the worked example.

Memory layout (chosen by measurement, see :class:`Conv2d`): ``im2col`` returns a matrix of shape
``(C*kh*kw, OH*OW*N)``, CS231n's layout. Row ``c*kh*kw + i*kw + j`` is kernel offset
``(c, i, j)`` — the order of ``W.reshape(FN, -1)`` — and column ``(oh*OW + ow)*N + n`` is the
window at output position ``(oh, ow)`` of image ``n``. With the image index varying fastest,
each kernel offset's copy is a block of long contiguous runs (whole rows of the batch), and the
convolution of the whole batch is **one** GEMM, ``W.reshape(FN, -1) @ col``. The book stacks
windows as rows instead, image by image: ``(N*OH*OW, C*kh*kw)``, which is
``col.reshape(K, OH*OW, N).transpose(2, 1, 0).reshape(-1, K)`` here (``K = C*kh*kw``).

Output size, per spatial dimension: ``OH = (H + 2*pad - FH) / stride + 1``. It must be a whole
number — these functions raise ``ValueError`` rather than silently dropping the last rows or
columns.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.backend import get_array_module
from chainrule.function import Function
from chainrule.tensor import Tensor

# --------------------------------------------------------------------------- argument checks


def _pair(op: str, name: str, value: Any, minimum: int) -> tuple[int, int]:
    """``value`` as ``(for height, for width)``: an int used for both, or a pair of ints."""
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2 or not all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= minimum for v in pair
    ):
        raise ValueError(
            f"{op}: {name} must be an integer >= {minimum} or a pair of them, got {value!r}"
        )
    return int(pair[0]), int(pair[1])


def _check_4d(op: str, name: str, shape: tuple[int, ...], layout: str) -> None:
    if len(shape) != 4:
        raise ValueError(f"{op}: {name} must be 4-D {layout}, got shape {tuple(shape)}")


def _output_size(
    op: str, size: int, k: int, stride: int, pad: int, sym: tuple[str, str], where: str
) -> int:
    """``(size + 2*pad - k) / stride + 1``, or a ValueError that shows the arithmetic."""
    dim, ksym = sym
    span = size + 2 * pad - k
    if span < 0:
        raise ValueError(
            f"{op}: the window is larger than the padded input: {ksym}={k} > "
            f"{dim} + 2*pad = {size} + 2*{pad} = {size + 2 * pad} ({where})"
        )
    if span % stride:
        raise ValueError(
            f"{op}: output size ({dim} + 2*pad - {ksym}) / stride + 1 = "
            f"({size} + 2*{pad} - {k}) / {stride} + 1 = {span / stride + 1:g} is not an integer "
            f"({where}); change pad or stride so that it divides evenly"
        )
    return span // stride + 1


def conv_output_size(input_size: int, filter_size: int, stride: int = 1, pad: int = 0) -> int:
    """The book's ``conv_output_size``: ``(input_size + 2*pad - filter_size) / stride + 1``.

    Raises ``ValueError`` when that is not a positive whole number.

    >>> conv_output_size(28, 5), conv_output_size(28, 3, pad=1), conv_output_size(7, 3, stride=2)
    (24, 28, 3)
    """
    stride = _pair("conv_output_size", "stride", stride, 1)[0]
    pad = _pair("conv_output_size", "pad", pad, 0)[0]
    filter_size = _pair("conv_output_size", "filter_size", filter_size, 1)[0]
    where = f"input size {input_size}, filter size {filter_size}"
    return _output_size(
        "conv_output_size", input_size, filter_size, stride, pad, ("H", "FH"), where
    )


# --------------------------------------------------------------------------- im2col / col2im


def _im2col_cols(
    x: Any, kh: int, kw: int, stride: tuple[int, int], pad: tuple[int, int], out_hw: tuple[int, int]
) -> Any:
    """Windows of ``x`` (N, C, H, W) as a 6-D array ``(C, kh, kw, OH, OW, N)`` (batch last).

    ``col[c, i, j, oh, ow, n] = xpad[n, c, oh*sh + i, ow*sw + j]``. One copy moves the batch
    axis last (and adds the zero padding); then there is one strided copy per kernel offset
    ``(i, j)``, each moving whole (C, OH, OW, N) blocks whose innermost runs are ``OW*N`` (stride
    1) or ``N`` values long. The Python loop is kh*kw long, never over pixels or images.
    """
    xp = get_array_module(x)
    n, c, h, w = x.shape
    (sh, sw), (ph, pw), (oh, ow) = stride, pad, out_hw
    img = xp.zeros((c, h + 2 * ph, w + 2 * pw, n), dtype=x.dtype)
    img[:, ph : ph + h, pw : pw + w, :] = x.transpose(1, 2, 3, 0)
    col = xp.empty((c, kh, kw, oh, ow, n), dtype=x.dtype)
    for i in range(kh):
        rows = slice(i, i + sh * (oh - 1) + 1, sh)
        for j in range(kw):
            col[:, i, j] = img[:, rows, j : j + sw * (ow - 1) + 1 : sw, :]
    return col


def _col2im_cols(
    col: Any, x_shape: tuple[int, ...], stride: tuple[int, int], pad: tuple[int, int]
) -> Any:
    """The adjoint of :func:`_im2col_cols`: add every window entry of ``col``
    (C, kh, kw, OH, OW, N) back onto the pixel it was read from; returns ``x_shape`` (N, C, H, W).

    ``+=`` is the point: with overlapping windows one pixel was read several times, and the
    chain rule sums the gradients of all its uses.
    """
    xp = get_array_module(col)
    n, c, h, w = x_shape
    _, kh, kw, oh, ow, _ = col.shape
    (sh, sw), (ph, pw) = stride, pad
    img = xp.zeros((c, h + 2 * ph, w + 2 * pw, n), dtype=col.dtype)
    for i in range(kh):
        rows = slice(i, i + sh * (oh - 1) + 1, sh)
        for j in range(kw):
            img[:, rows, j : j + sw * (ow - 1) + 1 : sw, :] += col[:, i, j]
    # Gradient that landed on the padding belongs to no input pixel: drop it. Back to NCHW.
    return xp.ascontiguousarray(img[:, ph : ph + h, pw : pw + w, :].transpose(3, 0, 1, 2))


def _pool_windows(
    x: Any,
    kh: int,
    kw: int,
    stride: tuple[int, int],
    pad: tuple[int, int],
    out_hw: tuple[int, int],
    fill: Any,
) -> Any:
    """Windows of ``x`` (N, C, H, W) as ``(N, C, kh, kw, OH, OW)``, padded with ``fill``.

    Pooling keeps the NCHW order (measured faster for it than the batch-last layout of the
    convolution: pooling does so little arithmetic that moving the batch axis does not pay).
    """
    xp = get_array_module(x)
    n, c, h, w = x.shape
    (sh, sw), (ph, pw), (oh, ow) = stride, pad, out_hw
    if ph or pw:
        img = xp.full((n, c, h + 2 * ph, w + 2 * pw), fill, dtype=x.dtype)
        img[:, :, ph : ph + h, pw : pw + w] = x
    else:
        img = x
    col = xp.empty((n, c, kh, kw, oh, ow), dtype=x.dtype)
    for i in range(kh):
        rows = slice(i, i + sh * (oh - 1) + 1, sh)
        for j in range(kw):
            col[:, :, i, j] = img[:, :, rows, j : j + sw * (ow - 1) + 1 : sw]
    return col


def _pool_unwindows(
    col: Any, x_shape: tuple[int, ...], stride: tuple[int, int], pad: tuple[int, int]
) -> Any:
    """The adjoint of :func:`_pool_windows` (``col`` may be a broadcast view)."""
    xp = get_array_module(col)
    n, c, h, w = x_shape
    _, _, kh, kw, oh, ow = col.shape
    (sh, sw), (ph, pw) = stride, pad
    img = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=col.dtype)
    for i in range(kh):
        rows = slice(i, i + sh * (oh - 1) + 1, sh)
        for j in range(kw):
            img[:, :, rows, j : j + sw * (ow - 1) + 1 : sw] += col[:, :, i, j]
    if ph or pw:
        img = xp.ascontiguousarray(img[:, :, ph : ph + h, pw : pw + w])
    return img


def _geometry(
    op: str,
    x_shape: tuple[int, ...],
    kh: int,
    kw: int,
    stride: Any,
    pad: Any,
    ksyms: tuple[str, str] = ("FH", "FW"),
    kernel_desc: str | None = None,
) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """Validated ``(stride pair, pad pair, (OH, OW))`` for windows of ``kh x kw`` on ``x``."""
    _check_4d(op, "the input x", x_shape, "(N, C, H, W)")
    sh, sw = _pair(op, "stride", stride, 1)
    ph, pw = _pair(op, "pad", pad, 0)
    where = f"input x {tuple(x_shape)}, {kernel_desc or f'window {kh}x{kw}'}, stride {stride}, "
    where += f"pad {pad}"
    oh = _output_size(op, x_shape[2], kh, sh, ph, ("H", ksyms[0]), where)
    ow = _output_size(op, x_shape[3], kw, sw, pw, ("W", ksyms[1]), where)
    return (sh, sw), (ph, pw), (oh, ow)


def im2col(x: Any, kh: int, kw: int, stride: Any = 1, pad: Any = 0) -> Any:
    """Unfold the ``kh x kw`` windows of ``x`` (N, C, H, W) into the columns of a matrix of
    shape ``(C*kh*kw, OH*OW*N)``.

    Column ``(oh*OW + ow)*N + n`` is the window of image ``n`` whose top-left corner is at
    ``(oh*stride - pad, ow*stride - pad)``, flattened in ``(c, i, j)`` order — the order of
    ``W.reshape(FN, -1)``, so the convolution of the whole batch is
    ``W.reshape(FN, -1) @ col``. Zero padding. ``stride`` and ``pad`` are an int or an
    ``(for H, for W)`` pair.

    Worked example: one 3x4 image, 2x2 windows, stride 1, so ``OH, OW = 2, 3``:

    >>> import numpy as np
    >>> x = np.arange(1, 13).reshape(1, 1, 3, 4)
    >>> x[0, 0]
    array([[ 1,  2,  3,  4],
           [ 5,  6,  7,  8],
           [ 9, 10, 11, 12]])
    >>> im2col(x, 2, 2)           # column p = window p; row = offset (0,0) (0,1) (1,0) (1,1)
    array([[ 1,  2,  3,  5,  6,  7],
           [ 2,  3,  4,  6,  7,  8],
           [ 5,  6,  7,  9, 10, 11],
           [ 6,  7,  8, 10, 11, 12]])

    Pixel 6 appears four times (it lies in four windows), pixel 1 once. See :func:`col2im`.
    """
    kh, kw = _pair("im2col", "kernel size", (kh, kw), 1)
    stride2, pad2, (oh, ow) = _geometry("im2col", x.shape, kh, kw, stride, pad, ("kh", "kw"))
    n, c = x.shape[:2]
    return _im2col_cols(x, kh, kw, stride2, pad2, (oh, ow)).reshape(c * kh * kw, oh * ow * n)


def col2im(
    col: Any, x_shape: tuple[int, ...], kh: int, kw: int, stride: Any = 1, pad: Any = 0
) -> Any:
    """The adjoint of :func:`im2col`: sum every column entry back onto the pixel it came from.

    ``col`` has shape ``(C*kh*kw, OH*OW*N)``; the result has ``x_shape`` (N, C, H, W). This is
    the backward pass of im2col: ``<im2col(x), c> == <x, col2im(c)>`` for all ``x`` and ``c``.
    It is *not* an inverse: a pixel read by several overlapping windows gets the sum (``+=``) of
    all their entries — exactly the chain rule's rule for a value used more than once.

    With the 3x4 image of :func:`im2col`, a column matrix of ones counts the windows that
    cover each pixel, and ``col2im(im2col(x))`` is ``x`` times those counts, not ``x``:

    >>> import numpy as np
    >>> col2im(np.ones((4, 6)), (1, 1, 3, 4), 2, 2)[0, 0]
    array([[1., 2., 2., 1.],
           [2., 4., 4., 2.],
           [1., 2., 2., 1.]])
    >>> x = np.arange(1.0, 13.0).reshape(1, 1, 3, 4)
    >>> col2im(im2col(x, 2, 2), x.shape, 2, 2)[0, 0]
    array([[ 1.,  4.,  6.,  4.],
           [10., 24., 28., 16.],
           [ 9., 20., 22., 12.]])

    Had col2im assigned (``=``) instead of adding, pixel 6 would keep the gradient of only the
    last window that wrote it, and three quarters of its gradient would be lost.
    """
    x_shape = tuple(int(d) for d in x_shape)
    kh, kw = _pair("col2im", "kernel size", (kh, kw), 1)
    stride2, pad2, (oh, ow) = _geometry("col2im", x_shape, kh, kw, stride, pad, ("kh", "kw"))
    n, c = x_shape[:2]
    expected = (c * kh * kw, oh * ow * n)
    if tuple(col.shape) != expected:
        raise ValueError(
            f"col2im: col has shape {tuple(col.shape)}, but x_shape {x_shape} with a {kh}x{kw} "
            f"window, stride {stride}, pad {pad} needs (C*kh*kw, OH*OW*N) = {expected}"
        )
    return _col2im_cols(col.reshape(c, kh, kw, oh, ow, n), x_shape, stride2, pad2)


# --------------------------------------------------------------------------- convolution


class Conv2d(Function):
    """2-D convolution (cross-correlation, as in every deep-learning library and the book).

    ``forward(x, W, b=None)`` with ``x`` (N, C, H, W), ``W`` (FN, C, FH, FW), ``b`` (FN,) or
    ``None``; the output is (N, FN, OH, OW) with ``OH = (H + 2*pad - FH) / stride + 1``::

        out[n, f, oh, ow] = b[f] + sum_{c,i,j} W[f, c, i, j] * xpad[n, c, oh*s + i, ow*s + j]

    that is, one matrix product for the whole batch: ``W2 @ col + b`` with
    ``W2 = W.reshape(FN, -1)`` and ``col = im2col(x)`` (C*FH*FW, OH*OW*N).

    **Backward:** with ``d`` = ``dout`` as a (FN, OH*OW*N) matrix: ``dW = d @ col.T``,
    ``db = d.sum(axis=1)``, ``dx = col2im(W2.T @ d)`` — the matrix product's two gradients,
    then im2col's adjoint. Linear in each input: no kinks. Returns ``(dx, dW, db)``, or
    ``(dx, dW)`` when there is no bias.

    ``stride`` and ``pad`` (zero padding) are an int or an ``(for H, for W)`` pair. Keeps the
    input dtype (float32 in, float32 out). Saves ``col`` for backward: ``FH*FW`` times the
    input's size (with stride 1).

    Layout: three GEMMs (forward, ``dW``, ``dx``), each one call for the whole batch. The price
    is moving the batch axis last and back (the output and ``dout``, once each); measured
    against a per-image ``(N, K, P)`` layout, that is slightly slower for one input channel
    (the book's 1x28x28 MNIST net) and up to twice as fast for the many-channel, small-image
    layers of deep networks, where per-image GEMMs are too small to run fast.

    >>> import numpy as np
    >>> x = np.arange(1.0, 13.0).reshape(1, 1, 3, 4)
    >>> conv = Conv2d()
    >>> conv.forward(x, np.ones((1, 1, 2, 2)), np.array([0.5]))[0, 0]   # 2x2 window sums
    array([[14.5, 18.5, 22.5],
           [30.5, 34.5, 38.5]])
    >>> dx, dW, db = conv.backward(np.ones((1, 1, 2, 3)))
    >>> dx[0, 0]                                   # how many windows saw each pixel
    array([[1., 2., 2., 1.],
           [2., 4., 4., 2.],
           [1., 2., 2., 1.]])
    >>> dW[0, 0], db
    (array([[24., 30.],
           [48., 54.]]), array([6.]))
    """

    def __init__(self, stride: Any = 1, pad: Any = 0):
        self.stride = _pair("conv2d", "stride", stride, 1)
        self.pad = _pair("conv2d", "pad", pad, 0)

    def forward(self, x: Any, W: Any, b: Any = None) -> Any:
        op = "conv2d"
        _check_4d(op, "the input x", x.shape, "(N, C, H, W)")
        _check_4d(op, "the filters W", W.shape, "(FN, C, FH, FW)")
        n, c = x.shape[:2]
        fn, wc, fh, fw = W.shape
        if wc != c:
            raise ValueError(
                f"{op}: x of shape {tuple(x.shape)} has {c} channels but the filters W of shape "
                f"{tuple(W.shape)} expect {wc} (W is (FN, C, FH, FW))"
            )
        if b is not None and tuple(b.shape) != (fn,):
            raise ValueError(
                f"{op}: bias b has shape {tuple(b.shape)}, expected ({fn},) for W of shape "
                f"{tuple(W.shape)}"
            )
        stride, pad, (oh, ow) = _geometry(
            op,
            x.shape,
            fh,
            fw,
            self.stride,
            self.pad,
            kernel_desc=f"filters W {tuple(W.shape)}",
        )
        xp = get_array_module(x, W)
        col = _im2col_cols(x, fh, fw, stride, pad, (oh, ow)).reshape(c * fh * fw, -1)
        out = W.reshape(fn, -1) @ col  # (FN, OH*OW*N): one GEMM for the whole batch
        if b is not None:
            out += b.reshape(fn, 1)  # a fresh array: in place saves a temporary
        self.col, self.W, self.x_shape, self.has_bias = col, W, tuple(x.shape), b is not None
        self.out_hw = (oh, ow)
        # Columns are (oh, ow, n): move the batch axis first, contiguous for the next layer.
        return xp.ascontiguousarray(out.reshape(fn, oh, ow, n).transpose(3, 0, 1, 2))

    def backward(self, dout: Any) -> tuple[Any, ...]:
        xp = get_array_module(dout, self.col)
        n, c, _, _ = self.x_shape
        fn, _, fh, fw = self.W.shape
        oh, ow = self.out_hw
        if tuple(dout.shape) != (n, fn, oh, ow):
            raise ValueError(
                f"conv2d backward: dout has shape {tuple(dout.shape)}, expected the output "
                f"shape {(n, fn, oh, ow)}"
            )
        # dout as the (FN, OH*OW*N) matrix the forward GEMM produced (one transposing copy).
        d = xp.ascontiguousarray(dout.transpose(1, 2, 3, 0)).reshape(fn, -1)
        dW = (d @ self.col.T).reshape(self.W.shape)  # BLAS reads col.T in place
        dx = None
        if self.wants_grad(0):  # the first layer's input (the images) needs no gradient
            dcol = self.W.reshape(fn, -1).T @ d  # (K, OH*OW*N)
            dcol = dcol.reshape(c, fh, fw, oh, ow, n)
            dx = _col2im_cols(dcol, self.x_shape, self.stride, self.pad)
        if not self.has_bias:
            return dx, dW
        return dx, dW, d.sum(axis=1)


# --------------------------------------------------------------------------- pooling


class _Pool2d(Function):
    """Shared set-up of the pooling ops: window size, stride (default: the window), padding."""

    name = "pool2d"

    def __init__(self, pool_h: int, pool_w: int | None = None, stride: Any = None, pad: Any = 0):
        self.kh, self.kw = _pair(
            self.name, "pool size", (pool_h, pool_h if pool_w is None else pool_w), 1
        )
        self.stride = (
            (self.kh, self.kw) if stride is None else _pair(self.name, "stride", stride, 1)
        )
        self.pad = _pair(self.name, "pad", pad, 0)

    def _windows(self, x: Any, fill: Any) -> Any:
        """Windows of ``x`` as (N, C, kh*kw, OH, OW); sets ``x_shape`` and ``out_hw``."""
        _, _, (oh, ow) = _geometry(
            self.name,
            x.shape,
            self.kh,
            self.kw,
            self.stride,
            self.pad,
            ksyms=("pool_h", "pool_w"),
            kernel_desc=f"pool {self.kh}x{self.kw}",
        )
        self.x_shape, self.out_hw = tuple(x.shape), (oh, ow)
        n, c = x.shape[:2]
        col = _pool_windows(x, self.kh, self.kw, self.stride, self.pad, (oh, ow), fill)
        return col.reshape(n, c, self.kh * self.kw, oh, ow)

    def _check_dout(self, dout: Any) -> None:
        expected = (*self.x_shape[:2], *self.out_hw)
        if tuple(dout.shape) != expected:
            raise ValueError(
                f"{self.name} backward: dout has shape {tuple(dout.shape)}, expected the output "
                f"shape {expected}"
            )

    def _col2im(self, dcol: Any) -> Any:
        n, c = self.x_shape[:2]
        dcol = dcol.reshape(n, c, self.kh, self.kw, *self.out_hw)
        return _pool_unwindows(dcol, self.x_shape, self.stride, self.pad)


class MaxPool2d(_Pool2d):
    """Max pooling: ``out[n, c, oh, ow] = max`` of the ``pool_h x pool_w`` window at
    ``(oh*stride - pad, ow*stride - pad)`` of channel ``c``. ``x`` (N, C, H, W) ->
    (N, C, OH, OW), ``OH = (H + 2*pad - pool_h) / stride + 1``; ``stride`` defaults to the pool
    size (non-overlapping windows). Padding is ``-inf``, so it never wins; ``pad`` must be
    smaller than the pool size, so that every window holds at least one real pixel.

    **Backward:** ``dout`` goes to the window's maximum; where several entries tie for the
    maximum they **share it equally** (``dout / k`` each for a k-way tie) — the rule of
    :class:`chainrule.functions.Max` and :class:`~chainrule.functions.Maximum`, and for a
    two-way tie exactly the central difference. Overlapping windows add (``+=``) their shares.
    ``kink_state()`` is the share array, so a gradient check sees a perturbation that changes a
    winner.

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

    def __init__(self, pool_h: int, pool_w: int | None = None, stride: Any = None, pad: Any = 0):
        super().__init__(pool_h, pool_w, stride, pad)
        if self.pad[0] >= self.kh or self.pad[1] >= self.kw:
            raise ValueError(
                f"{self.name}: pad {pad} must be smaller than the pool size "
                f"{(self.kh, self.kw)} (a window of padding only has no maximum)"
            )

    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        fill = -xp.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
        col = self._windows(x, fill)
        out = col.max(axis=2)
        winners = col == out[:, :, None]
        dtype = x.dtype if x.dtype.kind == "f" else np.float64
        share = winners.astype(dtype)
        counts = winners.sum(axis=2, keepdims=True)
        if bool((counts > 1).any()):  # ties: split dout equally among the tied maxima
            share /= counts.astype(dtype)
        self.share = share
        return out

    def backward(self, dout: Any) -> Any:
        self._check_dout(dout)
        return self._col2im(self.share * dout[:, :, None])

    def kink_state(self) -> Any:
        return self.share


class AvgPool2d(_Pool2d):
    """Average pooling: ``out[n, c, oh, ow] = mean`` of the ``pool_h x pool_w`` window.
    Shapes, stride and padding as :class:`MaxPool2d`; padded zeros count in the mean (PyTorch's
    ``count_include_pad=True``).

    **Backward:** every entry of a window gets ``dout / (pool_h * pool_w)``; overlapping
    windows add (``+=``) their shares. No kinks.

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
        return self._windows(x, 0).mean(axis=2)

    def backward(self, dout: Any) -> Any:
        self._check_dout(dout)
        n, c = self.x_shape[:2]
        share = dout[:, :, None] / (self.kh * self.kw)
        # A broadcast view: the adjoint reads it offset by offset, no (N, C, k, OH, OW) copy.
        dcol = get_array_module(dout).broadcast_to(
            share.reshape(n, c, 1, 1, *self.out_hw), (n, c, self.kh, self.kw, *self.out_hw)
        )
        return _pool_unwindows(dcol, self.x_shape, self.stride, self.pad)


# --------------------------------------------------------------------------- lowercase API


def conv2d(x: Any, W: Any, b: Any = None, stride: Any = 1, pad: Any = 0) -> Tensor:
    """2-D convolution of ``x`` (N, C, H, W) with filters ``W`` (FN, C, FH, FW), bias optional.

    See :class:`Conv2d`.
    """
    op = Conv2d(stride, pad)
    return op(x, W) if b is None else op(x, W, b)


def _kernel(op: str, kernel: Any) -> tuple[int, int]:
    return _pair(op, "kernel", kernel, 1)


def max_pool2d(x: Any, kernel: Any, stride: Any = None, pad: Any = 0) -> Tensor:
    """Max pooling with a ``kernel`` (int or (h, w)) window; ``stride`` defaults to ``kernel``.

    See :class:`MaxPool2d` (ties share the gradient equally).
    """
    kh, kw = _kernel("max_pool2d", kernel)
    return MaxPool2d(kh, kw, stride, pad)(x)


def avg_pool2d(x: Any, kernel: Any, stride: Any = None, pad: Any = 0) -> Tensor:
    """Average pooling with a ``kernel`` (int or (h, w)) window; ``stride`` defaults to
    ``kernel``. See :class:`AvgPool2d`.
    """
    kh, kw = _kernel("avg_pool2d", kernel)
    return AvgPool2d(kh, kw, stride, pad)(x)
