"""Convolution and pooling on image batches (N, C, H, W), built on im2col / col2im.

A convolution is many small dot products: every filter against every window of the image.
:func:`im2col` ("image to columns") copies each window into one column of a matrix, so that all
those dot products become a single matrix product (GEMM) — the one operation BLAS does fast.
:func:`col2im` walks the same windows the other way and *adds* each column back onto the pixels
it came from: it is the adjoint (the transpose) of im2col, not its inverse, because a pixel that
sits in several overlapping windows receives the gradient of every one of them. See
``docs/im2col.md`` for the worked example.

Memory layout (chosen by measurement, see docs/benchmarks.md): ``im2col`` returns a matrix of
shape ``(C*kh*kw, OH*OW*N)``, CS231n's layout. Row ``c*kh*kw + i*kw + j`` is kernel offset
``(c, i, j)`` — the order of ``W.reshape(FN, -1)`` — and column ``(oh*OW + ow)*N + n`` is the
window at output position ``(oh, ow)`` of image ``n``. With the image index varying fastest,
each kernel offset's copy is a block of long contiguous runs (whole rows of the batch), and the
convolution of the whole batch is **one** GEMM, ``W.reshape(FN, -1) @ col``, whose product is
``(FN, OH, OW, N)`` in memory. The ops hand it on *as it is*: an ``(N, FN, OH, OW)`` array
whose memory is in ``(C, H, W, N)`` order (a transposed view, no copy). NumPy's elementwise ops
keep that order, pooling keeps it, and the next convolution's im2col wants exactly it — so a
stack of conv/ReLU/pool layers never transposes an activation. Only the first convolution
(images come as (N, C, H, W)) and the first affine layer (a reshape) copy once.

Output size, per spatial dimension: ``OH = (H + 2*pad - FH) / stride + 1``. By default it must
be a whole number — these functions raise ``ValueError`` rather than silently dropping the last
rows or columns. ``exact=False`` floors it instead, as the book does (the rows and columns no
window reaches are left out and get a zero gradient).
"""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np

from chainrule.backend import get_array_module
from chainrule.function import Function
from chainrule.tensor import Tensor

Pair = tuple[int, int]  # (for height, for width)

#: Keep each convolution's window array (``col``) from forward to backward for ``dW``, at
#: ``FH*FW`` times the input's memory per layer (110 MB for the book's DeepConvNet, whose
#: peak training memory is then 4.7x its parameters, gradients, optimizer state and
#: activations instead of 1.2x). Off by default: since ``dx`` is computed as a convolution
#: (see :func:`_conv_dx`), rebuilding ``col`` in backward, a block of output rows at a time
#: in cache, is as fast as reading the stored one back from memory. See docs/im2col.md.
KEEP_WINDOWS = False

# --------------------------------------------------------------------------- argument checks


def _pair(op: str, name: str, value: Any, minimum: int) -> Pair:
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


def _output_size(op: str, size: int, k: int, stride: int, pad: int, sym: tuple[str, str],
                 where: str, exact: bool = True) -> int:  # fmt: skip
    """``(size + 2*pad - k) / stride + 1`` (floored when not ``exact``), or a ValueError that
    shows the arithmetic."""
    dim, ksym = sym
    span = size + 2 * pad - k
    if span < 0:
        raise ValueError(
            f"{op}: the window is larger than the padded input: {ksym}={k} > "
            f"{dim} + 2*pad = {size} + 2*{pad} = {size + 2 * pad} ({where})"
        )
    if span % stride and exact:
        raise ValueError(
            f"{op}: output size ({dim} + 2*pad - {ksym}) / stride + 1 = "
            f"({size} + 2*{pad} - {k}) / {stride} + 1 = {span / stride + 1:g} is not an integer "
            f"({where}); change pad or stride so that it divides evenly, or pass exact=False "
            "to floor it as the book does"
        )
    return span // stride + 1


def conv_output_size(input_size: int, filter_size: int, stride: int = 1, pad: int = 0, *,
                     exact: bool = True) -> int:  # fmt: skip
    """The book's ``conv_output_size``: ``(input_size + 2*pad - filter_size) / stride + 1``.

    Raises ``ValueError`` when that is not a positive whole number, unless ``exact=False``,
    which floors it (the book's ``//``).

    >>> conv_output_size(28, 5), conv_output_size(28, 3, pad=1), conv_output_size(7, 3, stride=2)
    (24, 28, 3)
    >>> conv_output_size(28, 5, stride=2, exact=False)       # (28 - 5) / 2 + 1 = 12.5
    12
    """
    stride = _pair("conv_output_size", "stride", stride, 1)[0]
    pad = _pair("conv_output_size", "pad", pad, 0)[0]
    filter_size = _pair("conv_output_size", "filter_size", filter_size, 1)[0]
    where = f"input size {input_size}, filter size {filter_size}"
    sym = ("H", "FH")
    return _output_size("conv_output_size", input_size, filter_size, stride, pad, sym, where, exact)


# --------------------------------------------------------------------------- im2col / col2im


def _batch_last(x: Any) -> Any:
    """(N, C, H, W) -> (C, H, W, N), a view. Free when ``x`` came from these ops."""
    return x.transpose(1, 2, 3, 0)


def _spans(i: int, j: int, stride: Pair, out_hw: Pair) -> tuple[slice, ...]:
    """Rows and columns read by kernel offset ``(i, j)`` over all ``OH x OW`` windows."""
    (sh, sw), (oh, ow) = stride, out_hw
    return slice(i, i + sh * (oh - 1) + 1, sh), slice(j, j + sw * (ow - 1) + 1, sw)


_WORKSPACE = threading.local()


def _scratch(key: str, shape: tuple[int, ...], xp: Any, dtype: Any) -> Any:
    """A temporary array that never leaves the function that asked for it (a window block,
    ``dcol``, a padded image, pooling's counts), carved out of one per-thread flat array per
    ``(key, dtype)`` that grows to the largest request. Fresh arrays of several MB cost a page
    fault per 4 KiB, about as long as filling them; reused, they also stay in cache."""
    n = math.prod(shape)
    # One pool per array type and GPU: an array of one device never serves another (nor a
    # stand-in's, tests/fake_cupy.py, the real CuPy's: both are called "cupy").
    place = xp.ndarray if xp is np else (xp.ndarray, xp.cuda.get_device_id())
    pools: dict[Any, dict] = vars(_WORKSPACE).setdefault("pools", {})  # this thread's
    pool = pools.setdefault(place, {})
    flat = pool.get((key, np.dtype(dtype).str))
    if flat is None or flat.size < n:
        flat = pool[(key, np.dtype(dtype).str)] = xp.empty(n, dtype=dtype)
    return flat[:n].reshape(shape)


def _padded(x: Any, pad: Pair, fill: Any = 0, key: str | None = None) -> Any:
    """``x`` (N, C, H, W) as a batch-last padded image (C, H + 2*ph, W + 2*pw, N): at most one
    copy (none when ``x`` is batch-last in memory and unpadded). ``key``: in the workspace."""
    xp = get_array_module(x)
    (n, c, h, w), (ph, pw) = x.shape, pad
    if not (ph or pw):
        return xp.ascontiguousarray(_batch_last(x))
    shape = (c, h + 2 * ph, w + 2 * pw, n)
    if key is None:
        img = xp.full(shape, fill, dtype=x.dtype)
    else:  # a reused array: only its border needs zeros
        img = _scratch(key, shape, xp, x.dtype)
        img[:, :ph] = img[:, ph + h :] = img[:, :, :pw] = img[:, :, pw + w :] = fill
    img[:, ph : ph + h, pw : pw + w, :] = _batch_last(x)
    return img


def _windows(img: Any, kh: int, kw: int, stride: Pair, out_hw: Pair) -> Any:
    """Every ``kh x kw`` window of the padded batch-last ``img`` (C, H', W', N) as a strided
    *view* of shape ``(C, kh, kw, OH, OW, N)``: ``[c, i, j, r, q, n]`` is
    ``img[c, r*sh + i, q*sw + j, n]``. No copy: moving one kernel offset is moving one pixel,
    moving one window is moving ``stride`` pixels. Copying (a block of) it is im2col; the copy's
    innermost runs are ``OW*N`` (stride 1) or ``N`` long."""
    (sh, sw), (oh, ow) = stride, out_hw
    s_c, s_h, s_w, s_n = img.strides
    shape = (img.shape[0], kh, kw, oh, ow, img.shape[3])
    strides = (s_c, s_h, s_w, s_h * sh, s_w * sw, s_n)
    return get_array_module(img).lib.stride_tricks.as_strided(img, shape, strides)


def _add_windows(col: Any, img: Any, stride: Pair, ow: int, rows: Pair) -> None:
    """The adjoint of im2col (copying :func:`_windows`): add every entry of ``col`` back onto
    the pixel of ``img`` it was read from. ``+=`` is the point: a pixel read by several
    overlapping windows gets the gradient of every one of them (the chain rule's sum over a
    value's uses)."""
    (r0, r1), kh, kw = rows, col.shape[1], col.shape[2]
    for i in range(kh):
        for j in range(kw):
            rs, cs = _spans(i + r0 * stride[0], j, stride, (r1 - r0, ow))
            img[:, rs, cs, :] += col[:, i, j]


def _im2col_cols(x: Any, kh: int, kw: int, stride: Pair, pad: Pair, out_hw: Pair,
                 fill: Any = 0) -> Any:  # fmt: skip
    """All windows of ``x`` (N, C, H, W) as ``(C, kh, kw, OH, OW, N)`` (batch last), padded
    with ``fill`` (pooling pads max with ``-inf``)."""
    return get_array_module(x).ascontiguousarray(
        _windows(_padded(x, pad, fill), kh, kw, stride, out_hw)
    )


def _col2im_cols(col: Any, x_shape: tuple[int, ...], stride: Pair, pad: Pair) -> Any:
    """The adjoint of :func:`_im2col_cols`: ``col`` (C, kh, kw, OH, OW, N) summed back onto an
    (N, C, H, W) array (batch last in memory, like the ops' outputs)."""
    xp = get_array_module(col)
    (n, c, h, w), (ph, pw), (oh, ow) = x_shape, pad, col.shape[3:5]
    img = xp.zeros((c, h + 2 * ph, w + 2 * pw, n), dtype=col.dtype)
    _add_windows(col, img, stride, ow, (0, oh))
    # Gradient that landed on the padding belongs to no input pixel: drop it (a view).
    return img[:, ph : ph + h, pw : pw + w, :].transpose(3, 0, 1, 2)


def _tiles(x: Any, kh: int, kw: int, out_hw: Pair) -> list[Any]:
    """Non-overlapping ``kh x kw`` windows (stride = window, no padding) as ``kh*kw`` strided
    views ``x[:, :, i::kh, j::kw]``, each (N, C, OH, OW): view ``(i, j)`` holds entry ``(i, j)``
    of every window. Pooling over them is ``kh*kw - 1`` elementwise ops, no copy of ``x``."""
    return [x[:, :, rs, cs] for i in range(kh) for j in range(kw) for rs, cs in
            [_spans(i, j, (kh, kw), out_hw)]]  # fmt: skip


def _geometry(op: str, x_shape: tuple[int, ...], kh: int, kw: int, stride: Any, pad: Any,
              ksyms: tuple[str, str] = ("FH", "FW"), kernel_desc: str | None = None,
              exact: bool = True) -> tuple[Pair, Pair, Pair]:  # fmt: skip
    """Validated ``(stride pair, pad pair, (OH, OW))`` for windows of ``kh x kw`` on ``x``."""
    _check_4d(op, "the input x", x_shape, "(N, C, H, W)")
    sh, sw = _pair(op, "stride", stride, 1)
    ph, pw = _pair(op, "pad", pad, 0)
    where = f"input x {tuple(x_shape)}, {kernel_desc or f'window {kh}x{kw}'}, stride {stride}, "
    where += f"pad {pad}"
    oh = _output_size(op, x_shape[2], kh, sh, ph, ("H", ksyms[0]), where, exact)
    ow = _output_size(op, x_shape[3], kw, sw, pw, ("W", ksyms[1]), where, exact)
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


def col2im(col: Any, x_shape: tuple[int, ...], kh: int, kw: int, stride: Any = 1,
           pad: Any = 0) -> Any:  # fmt: skip
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


def _check_dout(op: str, dout: Any, expected: tuple) -> None:
    if tuple(dout.shape) != expected:
        raise ValueError(
            f"{op} backward: dout has shape {tuple(dout.shape)}, expected the output shape "
            f"{expected}"
        )


def _as_matrix(dout: Any) -> Any:
    """``dout`` (N, FN, OH, OW) as the (FN, OH*OW*N) matrix the forward GEMM produced: no copy
    when it is batch-last in memory, as the ops' outputs (and their gradients) are."""
    xp = get_array_module(dout)
    return xp.ascontiguousarray(_batch_last(dout)).reshape(dout.shape[1], -1)


def _from_matrix(out: Any, n: int, out_hw: Pair) -> Any:
    """The (FN, OH*OW*N) product as an (N, FN, OH, OW) array: a view, batch last in memory."""
    return out.reshape(out.shape[0], *out_hw, n).transpose(3, 0, 1, 2)


#: Values in one block of the window array on the CPU (2 MB of float32): see :func:`_blocks`.
BLOCK_VALUES = 2**19


def _blocks(oh: int, per_row: int, xp: Any = np) -> list[Pair]:
    """Output rows ``[r0, r1)`` in blocks whose window array holds about :data:`BLOCK_VALUES`:
    written by im2col and read by the GEMM while still in cache, never the whole ``col``.
    On a GPU (``xp`` not NumPy) one block: every block costs kernel launches, and a GPU has
    the memory for the whole window array and no cache worth fitting it in."""
    step = max(1, BLOCK_VALUES // per_row) if xp is np else oh
    return [(r, min(oh, r + step)) for r in range(0, oh, step)]


def _conv_forward(x: Any, W: Any, stride: Pair, pad: Pair, out_hw: Pair, col: Any = None) -> Any:
    """``W2 @ im2col(x)`` (FN, OH*OW*N), ``W2 = W.reshape(FN, -1)``: ``col`` when given, else
    one row block of windows at a time."""
    if col is not None:
        return W.reshape(W.shape[0], -1) @ col
    xp, (fn, c, fh, fw), (oh, ow), n = get_array_module(x, W), W.shape, out_hw, x.shape[0]
    windows, W2 = _windows(_padded(x, pad, key="img"), fh, fw, stride, out_hw), W.reshape(fn, -1)
    out = xp.empty((fn, oh * ow * n), dtype=xp.result_type(x, W))
    for r0, r1 in _blocks(oh, c * fh * fw * ow * n, xp):
        col = _scratch("col", (c, fh, fw, r1 - r0, ow, n), xp, x.dtype)
        col[...] = windows[:, :, :, r0:r1]  # im2col of this block: the one copy
        xp.matmul(W2, col.reshape(c * fh * fw, -1), out=out[:, r0 * ow * n : r1 * ow * n])
    return out


def _conv_grads(d: Any, x: Any, W: Any, w_shape: Any, geometry: tuple) -> Any:
    """``(dx, dW)`` of a convolution for ``d`` = ``dout`` as a (FN, OH*OW*N) matrix:
    ``dW = d @ im2col(x).T`` (a correlation of ``x`` with ``dout``, one row block at a time
    with im2col redone in backward: the window array is never stored) and
    ``dx = col2im(W2.T @ d)`` (a transposed convolution of ``dout``, see :func:`_conv_dx`).
    ``geometry`` is ``(x_shape, stride, pad, out_hw)``. ``x=None``: no ``dW``; ``W=None``: no
    ``dx``."""
    (n, c, _, _), stride, (ph, pw), (oh, ow) = geometry
    xp, (_, _, fh, fw), k = get_array_module(d), w_shape, c * w_shape[2] * w_shape[3]
    # dx first: its temporaries (a copy of W the size of dW) are gone before dW is made
    dx = None if W is None else _conv_dx(d, W, geometry)
    if x is None:
        return dx, None
    dW: Any = None
    windows = _windows(_padded(x, (ph, pw), key="img"), fh, fw, stride, (oh, ow))
    for r0, r1 in _blocks(oh, k * ow * n, xp):
        col = _scratch("col", (c, fh, fw, r1 - r0, ow, n), xp, x.dtype)
        col[...] = windows[:, :, :, r0:r1]  # im2col of this block, built again
        part = d[:, r0 * ow * n : r1 * ow * n] @ col.reshape(k, -1).T
        dW = part if r0 == 0 else xp.add(dW, part, out=dW)  # no zeros, no second copy
    return dx, dW.reshape(w_shape)


def _conv_dx(d: Any, W: Any, geometry: tuple) -> Any:
    """``dx = col2im(W2.T @ d)``: every window's share ``W2.T @ d`` added back onto the pixels
    it was read from — the transposed convolution of ``dout`` (``d`` as in :func:`_conv_grads`).

    With stride 1 the same sum is an ordinary convolution, computed as one: ``dx[c, y, x]``
    collects ``W[f, c, i, j] * dout[f, y + pad - i, x + pad - j]``, which is ``dout`` padded by
    ``FH - 1 - pad`` and correlated with the filters turned 180 degrees and their ``C`` and
    ``FN`` axes swapped. That is one wide GEMM over windows of ``dout`` built in cache, instead
    of a narrow GEMM (``K = FN``) and ``FH*FW`` scattered adds. Strided convolutions (and a
    ``pad`` wider than the filter) take the col2im path."""
    (n, c, h, w), stride, (ph, pw), (oh, ow) = geometry
    xp, (fn, _, fh, fw) = get_array_module(d, W), W.shape
    if stride == (1, 1) and ph < fh and pw < fw:
        flipped = xp.ascontiguousarray(W[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
        dout = _from_matrix(d, n, (oh, ow))
        out = _conv_forward(dout, flipped, (1, 1), (fh - 1 - ph, fw - 1 - pw), (h, w))
        return _from_matrix(out, n, (h, w))
    k = c * fh * fw
    dx = xp.zeros((c, h + 2 * ph, w + 2 * pw, n), dtype=xp.result_type(d, W))
    for r0, r1 in _blocks(oh, k * ow * n, xp):
        block = d[:, r0 * ow * n : r1 * ow * n]
        dcol = _scratch("dcol", (k, block.shape[1]), xp, dx.dtype)
        xp.matmul(W.reshape(fn, -1).T, block, out=dcol)
        _add_windows(dcol.reshape(c, fh, fw, r1 - r0, ow, n), dx, stride, ow, (r0, r1))
    # gradient on the padding belongs to no pixel: dropped (a batch-last view)
    return dx[:, ph : ph + h, pw : pw + w, :].transpose(3, 0, 1, 2)


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
    ``(dx, dW)`` when there is no bias; ``dx`` is ``None`` when input 0 needs no gradient
    (``needs_input_grad``: the images of a first layer). Double backprop (``create_graph``)
    records ``dx`` as a transposed convolution of ``dout`` and ``dW`` as a correlation of
    ``x`` and ``dout``, two ops whose own gradients are these same three formulas.

    ``stride`` and ``pad`` (zero padding) are an int or an ``(for H, for W)`` pair;
    ``exact=False`` floors a fractional output size (the book's way). Keeps the input dtype
    (float32 in, float32 out). Saves only ``x`` for backward and rebuilds ``col`` there, a
    block of output rows at a time (``KEEP_WINDOWS = True`` keeps the whole ``col`` instead,
    ``FH*FW`` times the input's size). The output is batch-last in memory (see the module
    docstring).

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

    differentiable_backward = True

    def __init__(self, stride: Any = 1, pad: Any = 0, *, exact: bool = True):
        self.stride = _pair("conv2d", "stride", stride, 1)
        self.pad = _pair("conv2d", "pad", pad, 0)
        self.exact = bool(exact)

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
        desc = f"filters W {tuple(W.shape)}"
        _, _, out_hw = _geometry(
            op, x.shape, fh, fw, self.stride, self.pad, kernel_desc=desc, exact=self.exact
        )
        geo = (self.stride, self.pad, out_hw)  # KEEP_WINDOWS: one im2col, kept for dW
        self.col = _im2col_cols(x, fh, fw, *geo).reshape(c * fh * fw, -1) if KEEP_WINDOWS else None
        out = _conv_forward(x, W, *geo, self.col)
        if b is not None:
            out += b.reshape(fn, 1)  # in place: the product is a fresh array
        self.x, self.W, self.has_bias, self.out_hw = x, W, b is not None, out_hw
        self.x_shape = tuple(x.shape)
        self.geometry = (self.x_shape, self.stride, self.pad, out_hw)
        return _from_matrix(out, n, out_hw)

    def backward(self, dout: Any) -> tuple[Any, ...]:
        n, fn = self.x_shape[0], self.W.shape[0]
        _check_dout("conv2d", dout, (n, fn, *self.out_hw))
        d = _as_matrix(dout)
        W = self.W if self.wants_grad(0) else None  # the images of a first layer: no dx
        keep = self.col is not None
        dx, dW = _conv_grads(d, None if keep else self.x, W, self.W.shape, self.geometry)
        if keep:
            # BLAS reads col.T in place (col is an array whenever keep is true)
            dW = (d @ self.col.T).reshape(self.W.shape)  # type: ignore[union-attr]
        return (dx, dW, d.sum(axis=1)) if self.has_bias else (dx, dW)

    def backward_on_graph(self, dout: Tensor) -> tuple[Any, ...]:
        from chainrule.functions.reduction import sum as sum_

        x, W = self.inputs[:2]
        dx = _ConvDx(*self.geometry)(dout, W) if self.wants_grad(0) else None
        dW = _ConvDW(*self.geometry, self.W.shape[2:])(x, dout)
        return (dx, dW, sum_(dout, axis=(0, 2, 3))) if self.has_bias else (dx, dW)


class _ConvGradient(Function):
    """The geometry a convolution's gradient ops share: input shape, stride, pad, output size."""

    differentiable_backward = True

    def __init__(self, x_shape: Any, stride: Any, pad: Any, out_hw: Any, kernel: Any = None):
        self.x_shape, self.stride, self.pad, self.out_hw = x_shape, stride, pad, out_hw
        self.geometry, self.kernel = (x_shape, stride, pad, out_hw), kernel

    def _conv2d(self, x: Any, W: Any) -> Tensor:
        return Conv2d(self.stride, self.pad, exact=False)(x, W)


class _ConvDx(_ConvGradient):
    """``dx = col2im(W2.T @ d)`` of ``(dout, W)``: a transposed convolution, Conv2d's input
    gradient as an op of its own (for double backprop). **Backward** (upstream ``g``, shaped
    like ``x``): ``d dout = conv2d(g, W)``, ``dW = _ConvDW(g, dout)``."""

    def forward(self, dout: Any, W: Any) -> Any:
        self.d, self.W = _as_matrix(dout), W
        return _conv_grads(self.d, None, W, W.shape, self.geometry)[0]

    def backward(self, g: Any) -> tuple[Any, Any]:
        out = _conv_forward(g, self.W, self.stride, self.pad, self.out_hw)
        dW = _conv_grads(self.d, g, None, self.W.shape, self.geometry)[1]
        return _from_matrix(out, self.x_shape[0], self.out_hw), dW

    def backward_on_graph(self, g: Tensor) -> tuple[Any, Any]:
        dout, W = self.inputs
        return self._conv2d(g, W), _ConvDW(*self.geometry, self.W.shape[2:])(g, dout)


class _ConvDW(_ConvGradient):
    """``dW = d @ im2col(x).T`` of ``(x, dout)``: Conv2d's filter gradient as an op of its own.
    **Backward** (upstream ``gW``, shaped like ``W``): ``dx = _ConvDx(dout, gW)``,
    ``d dout = conv2d(x, gW)``."""

    def forward(self, x: Any, dout: Any) -> Any:
        self.x, self.d = x, _as_matrix(dout)
        w_shape = (self.d.shape[0], x.shape[1], *self.kernel)
        return _conv_grads(self.d, x, None, w_shape, self.geometry)[1]

    def backward(self, gW: Any) -> tuple[Any, Any]:
        dx = _conv_grads(self.d, None, gW, gW.shape, self.geometry)[0]
        out = _conv_forward(self.x, gW, self.stride, self.pad, self.out_hw)
        return dx, _from_matrix(out, self.x_shape[0], self.out_hw)

    def backward_on_graph(self, gW: Tensor) -> tuple[Any, Any]:
        x, dout = self.inputs
        return _ConvDx(*self.geometry)(dout, gW), self._conv2d(x, gW)


# --------------------------------------------------------------------------- lowercase API


def conv2d(
    x: Any, W: Any, b: Any = None, stride: Any = 1, pad: Any = 0, *, exact: bool = True
) -> Tensor:
    """2-D convolution of ``x`` (N, C, H, W) with filters ``W`` (FN, C, FH, FW), bias optional.

    See :class:`Conv2d` (``exact=False`` floors a fractional output size).
    """
    op = Conv2d(stride, pad, exact=exact)
    return op(x, W) if b is None else op(x, W, b)


# Pooling lives in pool.py (its own file, for the size budget); it is part of this module's API.
from chainrule.functions.pool import AvgPool2d, MaxPool2d, avg_pool2d, max_pool2d  # noqa: E402, F401
