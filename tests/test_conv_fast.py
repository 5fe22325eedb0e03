"""The fast convolution and pooling paths, double backprop through them, and the book's
floored output sizes (``exact=False``).

Oracles: the book-style reference im2col of the benchmark (one row per window, written
independently), the general pooling path (every window copied out) for the strided-tile fast
path, central differences in float64 for first and second derivatives, and dtype checks on
every array a float32 step makes.
"""

from __future__ import annotations

import types
from typing import Any

import numpy as np
import pytest
from benchmarks.conv_throughput import reference_col2im, reference_im2col
from numpy.testing import assert_allclose, assert_array_equal

import chainrule.functions.conv as conv_module
from chainrule import Tensor
from chainrule import functions as F
from chainrule.functions import AvgPool2d, Conv2d, MaxPool2d, conv_output_size
from chainrule.gradcheck import check_double_backward, numerical_gradient
from chainrule.layers import Convolution, Pooling


@pytest.fixture
def rng():
    return np.random.default_rng(20261130)


def _batch_last(shape, rng, dtype=np.float64):
    """An (N, C, H, W) array whose memory is (C, H, W, N): what the ops hand on."""
    n, c, h, w = shape
    return rng.standard_normal((c, h, w, n)).astype(dtype).transpose(3, 0, 1, 2)


# ----------------------------------------------------------------------------- im2col


@pytest.mark.parametrize("layout", ["nchw", "batch-last"])
@pytest.mark.parametrize(
    ("x_shape", "k", "stride", "pad"),
    [
        ((2, 3, 7, 6), 3, 1, 0),
        ((3, 2, 8, 8), 3, 1, 1),
        ((2, 1, 9, 9), 3, 2, 1),
        ((2, 2, 6, 6), 5, 1, 2),
    ],
)
def test_im2col_matches_the_books_rows_in_any_memory_layout(rng, layout, x_shape, k, stride, pad):
    x = rng.standard_normal(x_shape) if layout == "nchw" else _batch_last(x_shape, rng)
    n, c = x_shape[:2]
    col = conv_module.im2col(x, k, k, stride, pad)  # (C*k*k, OH*OW*N)
    rows = reference_im2col(np.ascontiguousarray(x), k, k, stride, pad)  # (N*OH*OW, C*k*k)
    kk = c * k * k
    assert_array_equal(col.reshape(kk, -1, n).transpose(2, 1, 0).reshape(-1, kk), rows)
    dcol = rng.standard_normal(col.shape)
    dx = conv_module.col2im(dcol, x.shape, k, k, stride, pad)
    book = dcol.reshape(kk, -1, n).transpose(2, 1, 0).reshape(-1, kk)
    assert_allclose(dx, reference_col2im(book, x.shape, k, k, stride, pad), rtol=1e-12)


def test_conv_output_is_a_batch_last_view_and_the_next_layer_reads_it_without_a_copy(rng):
    x = rng.standard_normal((4, 3, 8, 8)).astype(np.float32)
    conv1, conv2 = Conv2d(pad=1), Conv2d(pad=1)
    h = conv1.forward(x, rng.standard_normal((5, 3, 3, 3)).astype(np.float32))
    assert h.shape == (4, 5, 8, 8)
    assert h.transpose(1, 2, 3, 0).flags.c_contiguous  # (C, H, W, N) in memory: no transpose
    out = conv2.forward(h, rng.standard_normal((2, 5, 3, 3)).astype(np.float32))
    dx, _ = conv2.backward(np.ones_like(out))
    assert dx.shape == h.shape  # a (N, C, H, W) gradient, batch last in memory as well
    assert dx.strides[0] == dx.itemsize  # the batch index varies fastest
    ref = Conv2d(pad=1).forward(np.ascontiguousarray(h), conv2.W)
    assert_allclose(out, ref, rtol=1e-6)


def test_conv_keeps_no_window_array_and_reuses_its_workspace(rng, monkeypatch):
    """With KEEP_WINDOWS off only x is saved for backward; the window blocks come from a
    per-thread workspace that the next call reuses, and reusing it changes no result."""
    monkeypatch.setattr(conv_module, "KEEP_WINDOWS", False)
    W, b = rng.standard_normal((4, 2, 3, 3)), rng.standard_normal(4)
    layer = Convolution(W, b, pad=1)
    x1, x2 = rng.standard_normal((3, 2, 5, 5)), rng.standard_normal((3, 2, 5, 5))
    out1 = layer.forward(x1).copy()
    saved = [v for v in vars(layer.op).values() if isinstance(v, np.ndarray)]
    assert max(a.size for a in saved) <= max(x1.size, W.size)  # no (C*9, OH*OW*N) array
    workspace = dict(conv_module._WORKSPACE.pools[np.ndarray])
    out2 = layer.forward(x2)
    after = conv_module._WORKSPACE.pools[np.ndarray]
    assert all(after[key] is array for key, array in workspace.items())  # reused, not new
    assert_allclose(layer.forward(x1), out1, rtol=1e-12)
    assert not np.allclose(out1, out2)
    dout = rng.standard_normal(out1.shape)
    dx1 = layer.backward(dout).copy()
    fresh = Convolution(W, b, pad=1)
    fresh.forward(x1)
    assert_allclose(dx1, fresh.backward(dout), rtol=1e-12)
    assert_allclose(layer.dW, fresh.dW, rtol=1e-12)


def test_each_array_type_and_gpu_has_its_own_workspace():
    """Two array modules both named "cupy" (the stand-in and the real CuPy, in one test run)
    never share scratch arrays, and neither do two GPUs: a pool per array type and device."""

    class DeviceArray:
        def __init__(self, n: int, dtype: Any) -> None:
            self.a = np.empty(n, dtype)
            self.size = n

        def __getitem__(self, index: Any) -> Any:
            return self.a[index]

    def module(device: list[int]) -> Any:
        cuda = types.SimpleNamespace(get_device_id=lambda: device[0])
        return types.SimpleNamespace(__name__="cupy", ndarray=DeviceArray, cuda=cuda,
                                     empty=lambda n, dtype: DeviceArray(n, dtype))  # fmt: skip

    device = [0]
    first, other = module(device), module([0])
    other.ndarray = type("OtherArray", (DeviceArray,), {})
    other.empty = lambda n, dtype: other.ndarray(n, dtype)
    a = conv_module._scratch("t", (4,), first, np.float64)
    assert conv_module._scratch("t", (4,), first, np.float64).base is a.base  # reused
    b = conv_module._scratch("t", (4,), other, np.float64)
    assert b.base is not a.base  # the other "cupy" got its own array
    device[0] = 1
    assert conv_module._scratch("t", (4,), first, np.float64).base is not a.base  # GPU 1
    assert type(conv_module._scratch("t", (4,), np, np.float64)) is np.ndarray


def test_a_gpu_convolution_is_one_block():
    assert len(conv_module._blocks(28, 403_200)) == 28  # NumPy: a block per row at this size
    assert conv_module._blocks(28, 403_200, xp=types.SimpleNamespace()) == [(0, 28)]


@pytest.mark.parametrize("keep", [True, False])
def test_row_blocks_give_the_same_result_as_one_block(rng, monkeypatch, keep):
    """Many small row blocks (a large image) against one block of all rows, with the window
    array kept (KEEP_WINDOWS, the default) or rebuilt in backward."""
    monkeypatch.setattr(conv_module, "KEEP_WINDOWS", keep)
    x, W = rng.standard_normal((2, 3, 9, 7)), rng.standard_normal((4, 3, 3, 3))
    dout = rng.standard_normal((2, 4, 5, 3))
    results = []
    for rows in (1, 2, 100):
        monkeypatch.setattr(
            conv_module,
            "_blocks",
            lambda oh, per_row, xp, r=rows: [(s, min(oh, s + r)) for s in range(0, oh, r)],
        )
        op = Conv2d(stride=(2, 2), pad=(1, 0))
        results.append((op.forward(x, W).copy(), *(a.copy() for a in op.backward(dout))))
    for got in results[:2]:
        for a, b in zip(got, results[2]):
            assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    monkeypatch.setattr(conv_module, "KEEP_WINDOWS", not keep)  # the other mode: the same
    op = Conv2d(stride=(2, 2), pad=(1, 0))
    other = (op.forward(x, W), *op.backward(dout))
    for a, b in zip(other, results[2]):
        assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_need_dx_false_skips_dx(rng):
    layer = Convolution(rng.standard_normal((2, 1, 3, 3)), np.zeros(2), need_dx=False)
    out = layer.forward(rng.standard_normal((2, 1, 5, 5)))
    assert layer.backward(np.ones_like(out)) is None
    assert layer.dW.shape == (2, 1, 3, 3) and not layer.need_dx
    layer.need_dx = True
    layer.forward(rng.standard_normal((2, 1, 5, 5)))
    assert layer.backward(np.ones_like(out)).shape == (2, 1, 5, 5)


# ----------------------------------------------------------------------------- pooling


class _General(MaxPool2d):
    """The same op with the fast path switched off: every window copied out (the reference)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.tiled = False


class _GeneralAvg(AvgPool2d):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.tiled = False


@pytest.mark.parametrize("layout", ["nchw", "batch-last"])
@pytest.mark.parametrize(
    ("x_shape", "k"), [((3, 2, 6, 8), 2), ((2, 3, 9, 6), 3), ((2, 2, 4, 6), (2, 3))]
)
@pytest.mark.parametrize(("fast", "general"), [(MaxPool2d, _General), (AvgPool2d, _GeneralAvg)])
def test_pooling_by_tiles_matches_the_general_windows(rng, layout, x_shape, k, fast, general):
    kh, kw = k if isinstance(k, tuple) else (k, k)
    x = rng.standard_normal(x_shape) if layout == "nchw" else _batch_last(x_shape, rng)
    x = np.round(x, 1)  # ties, which the two paths must split alike
    x[0, 0] = 0.0  # a window of all ties
    a, b = fast(kh, kw), general(kh, kw)
    assert a.tiled and not b.tiled
    assert_array_equal(a.forward(x), b.forward(x))
    dout = rng.standard_normal(a.forward(x).shape)
    assert_allclose(a.backward(dout), b.backward(dout), rtol=1e-12)
    if fast is MaxPool2d:
        assert_allclose(a.kink_state(), b.kink_state(), rtol=1e-12)


def test_max_pool_fast_path_gradient_is_the_central_difference(rng):
    x = rng.standard_normal((2, 3, 4, 6))
    pool = MaxPool2d(2)
    dout = rng.standard_normal((2, 3, 2, 3))
    pool.forward(x)
    dx = pool.backward(dout)
    num = numerical_gradient(lambda _: float((MaxPool2d(2).forward(x) * dout).sum()), x)
    assert_allclose(dx, num, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("op", [MaxPool2d, AvgPool2d])
def test_float32_pooling_and_conv_make_no_float64(rng, op):
    vars(conv_module._WORKSPACE).clear()  # forget earlier float64 tests' temporaries
    x = _batch_last((4, 3, 8, 8), rng, np.float32)
    pool = op(2)
    out = pool.forward(x)
    assert out.dtype == np.float32
    assert pool.backward(np.ones_like(out)).dtype == np.float32
    conv = Conv2d(pad=1)
    W, b = (a.astype(np.float32) for a in (rng.standard_normal((5, 3, 3, 3)), np.ones(5)))
    out = conv.forward(x, W, b)
    assert out.dtype == np.float32
    assert all(a.dtype == np.float32 for a in conv.backward(np.ones_like(out)))
    # and no temporary was float64 either
    dtypes = {key[1] for pool in conv_module._WORKSPACE.pools.values() for key in pool}
    assert dtypes <= {np.dtype(np.float32).str}


# ----------------------------------------------------------------------------- exact=False


def test_fractional_output_size_is_an_error_by_default_and_floored_on_request(rng):
    assert conv_output_size(28, 5, stride=2, exact=False) == 12
    with pytest.raises(ValueError, match=r"12\.5 is not an integer.*exact=False"):
        conv_output_size(28, 5, stride=2)
    x = rng.standard_normal((2, 1, 7, 8))
    W, b = rng.standard_normal((3, 1, 3, 3)), rng.standard_normal(3)
    with pytest.raises(ValueError, match="exact=False"):
        Convolution(W, b, stride=2).forward(x)
    layer = Convolution(W, b, stride=2, exact=False)
    out = layer.forward(x)
    assert out.shape == (2, 3, 3, 3)  # (7 - 3) // 2 + 1 = 3, (8 - 3) // 2 + 1 = 3
    # floor = the exact convolution of the input cut to the rows and columns windows reach
    assert_allclose(out, Conv2d(stride=2).forward(x[:, :, :7, :7], W, b), rtol=1e-12)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    assert_array_equal(dx[:, :, :, 7], 0.0)  # column 7 is in no window: no gradient
    num = numerical_gradient(
        lambda _: float((Conv2d(2, exact=False).forward(x, W, b) * dout).sum()), x
    )
    assert_allclose(dx, num, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_pooling_floors_like_the_book(rng, mode):
    x = rng.standard_normal((2, 3, 5, 7))
    with pytest.raises(ValueError, match="exact=False"):
        Pooling(2, 2, stride=2, mode=mode).forward(x)
    pool = Pooling(2, 2, stride=2, mode=mode, exact=False)
    out = pool.forward(x)
    assert out.shape == (2, 3, 2, 3)
    exact = Pooling(2, 2, stride=2, mode=mode)
    assert_allclose(out, exact.forward(x[:, :, :4, :6]), rtol=1e-12)
    dx = pool.backward(np.ones_like(out))
    assert_array_equal(dx[:, :, 4, :], 0.0)
    assert_array_equal(dx[:, :, :, 6], 0.0)
    f = F.max_pool2d if mode == "max" else F.avg_pool2d
    assert f(Tensor(x), 2, exact=False).shape == (2, 3, 2, 3)


# ----------------------------------------------------------------------------- double backprop


def _double_backward_check(f, arrays, rng, rtol=1e-7):
    """Second derivatives of ``f`` (Tensors -> Tensor) against central differences.

    With random ``r`` and ``v_i``: ``H = sum_i <v_i, d<r, f>/d a_i>`` differentiated by the
    engine (``create_graph=True`` then ``backward``) and numerically (first-order gradients
    at perturbed inputs). ``r`` is a Tensor too, so the gradient with respect to the upstream
    gradient is checked as well.
    """
    out_shape = f(*[Tensor(a) for a in arrays]).shape
    r = rng.standard_normal(out_shape)
    vs = [rng.standard_normal(a.shape) for a in arrays]
    everything = [*arrays, r]

    def first_order(values):
        ts = [Tensor(v) for v in values]
        F.sum(f(*ts[:-1]) * ts[-1]).backward()
        return [t.grad for t in ts[:-1]]

    def h_value():
        return float(sum((g * v).sum() for g, v in zip(first_order(everything), vs)))

    ts = [Tensor(a) for a in everything]
    F.sum(f(*ts[:-1]) * ts[-1]).backward(create_graph=True)
    grads = [t.grad for t in ts[:-1]]
    H = sum(F.sum(g * v) for g, v in zip(grads, vs))
    for t in ts:
        t.cleargrad()
    H.backward()
    for t, a in zip(ts, everything):
        num = numerical_gradient(lambda _: h_value(), a)
        got = np.zeros_like(a) if t.grad is None else t.grad.data
        assert_allclose(got, num, rtol=rtol, atol=1e-8)


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "stride", "pad"),
    [((2, 2, 5, 5), (3, 2, 3, 3), 1, 1), ((2, 1, 7, 6), (2, 1, 3, 2), 2, (1, 0))],
)
def test_conv2d_double_backward(rng, x_shape, w_shape, stride, pad):
    x, W, b = (
        rng.standard_normal(x_shape),
        rng.standard_normal(w_shape),
        rng.standard_normal(w_shape[0]),
    )
    check_double_backward(lambda x, W, b: F.conv2d(x, W, b, stride, pad), x, W, b, rng=rng)
    # and the derivative with respect to the upstream gradient as well
    _double_backward_check(lambda x, W, b: F.conv2d(x, W, b, stride, pad), [x, W, b], rng)


def test_conv2d_third_order_through_the_gradient_ops(rng):
    """The gradient ops' own double backward (what a third derivative walks through)."""
    x, W = rng.standard_normal((2, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3))
    geometry = ((2, 2, 5, 5), (1, 1), (1, 1), (5, 5))
    dout = rng.standard_normal((2, 3, 5, 5))
    _double_backward_check(lambda d, W: conv_module._ConvDx(*geometry)(d, W), [dout, W], rng)
    _double_backward_check(
        lambda x, d: conv_module._ConvDW(*geometry, (3, 3))(x, d), [x, dout], rng
    )


@pytest.mark.parametrize(
    ("pool", "x_shape", "kernel", "stride", "pad"),
    [
        (F.max_pool2d, (2, 2, 4, 6), 2, None, 0),  # the fast path
        (F.max_pool2d, (2, 2, 5, 5), 3, 2, 1),  # overlapping, padded
        (F.avg_pool2d, (2, 2, 4, 6), 2, None, 0),
        (F.avg_pool2d, (2, 2, 5, 5), 3, 2, 1),
    ],
)
def test_pooling_double_backward(rng, pool, x_shape, kernel, stride, pad):
    x = rng.standard_normal(x_shape)  # distinct values: no ties, no kink within h

    def f(x):
        return pool(x * x, kernel, stride, pad)  # x*x: a second derivative through the pool

    check_double_backward(f, x, rng=rng)


# ------------------------------------------------------------- dx of a stride-1 convolution


@pytest.mark.parametrize(
    ("kernel", "pad"), [((3, 3), 0), ((3, 3), 1), ((3, 3), 2), ((5, 3), (2, 1)), ((2, 2), 1)]
)
def test_a_stride_1_input_gradient_is_the_col2im_sum(kernel, pad, rng):
    # Conv2d computes dx of a stride-1 convolution as a convolution of dout with the flipped
    # filters; it must equal the textbook col2im(W2.T @ dout) of the reference im2col.
    x = _batch_last((3, 4, 7, 6), rng)
    W = rng.standard_normal((5, 4, *kernel))
    op = Conv2d(1, pad)
    out = op.forward(x, W)
    dout = rng.standard_normal(out.shape)
    dx = op.backward(dout)[0]
    fn = out.shape[1]
    d = dout.transpose(1, 2, 3, 0).reshape(fn, -1)  # (FN, OH*OW*N), the GEMM's layout
    ph, pw = (pad, pad) if isinstance(pad, int) else pad
    dcol = W.reshape(fn, -1).T @ d  # (C*FH*FW, OH*OW*N)
    expected = F.col2im(dcol, x.shape, *kernel, 1, (ph, pw))
    assert_allclose(dx, expected, rtol=1e-12, atol=1e-12)


def test_a_pad_as_wide_as_the_filter_takes_the_col2im_path(rng):
    # pad >= FH: the flipped-filter convolution would need a negative pad; col2im is used
    x = _batch_last((2, 2, 4, 4), rng)
    W = rng.standard_normal((3, 2, 2, 2))
    gx = numerical_gradient(lambda v: float(np.sum(Conv2d(1, 2).forward(v, W) ** 2)), x.copy())
    op = Conv2d(1, 2)
    out = op.forward(x, W)
    assert_allclose(op.backward(2 * out)[0], gx, rtol=1e-7, atol=1e-9)
