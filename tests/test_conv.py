"""Convolution and pooling: im2col/col2im, Conv2d, MaxPool2d, AvgPool2d, the book's Convolution
and Pooling layers, SimpleConvNet and DeepConvNet.

Oracles: hand-worked numbers, a loop-per-output-pixel reference, central differences (float64,
kinks detected and excluded), the adjoint identity <im2col(x), c> == <x, col2im(c)>, and the
autograd engine running the same network as the book's layers.
"""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import chainrule.functions.conv as conv_module
import chainrule.layers.conv as conv_layers_module
import chainrule.layers.conv_nets as conv_nets_module
from chainrule import Tensor
from chainrule import functions as F
from chainrule.functions import (
    AvgPool2d,
    Conv2d,
    MaxPool2d,
    avg_pool2d,
    col2im,
    conv2d,
    conv_output_size,
    im2col,
    max_pool2d,
)
from chainrule.gradcheck import check_function, check_layer, compare, numerical_gradient
from chainrule.layers import Convolution, DeepConvNet, Pooling, SimpleConvNet
from chainrule.optim import SGD, Adam


def _pair(v):
    return v if isinstance(v, tuple) else (v, v)


# ----------------------------------------------------------------------------- references


def conv_reference(x, W, b, stride, pad):
    """One dot product per output pixel: slow, obviously right."""
    (sh, sw), (ph, pw) = _pair(stride), _pair(pad)
    n, _, h, w = x.shape
    fn, _, fh, fw = W.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh, ow = (h + 2 * ph - fh) // sh + 1, (w + 2 * pw - fw) // sw + 1
    out = np.zeros((n, fn, oh, ow))
    for i in range(oh):
        for j in range(ow):
            window = xp[:, :, i * sh : i * sh + fh, j * sw : j * sw + fw]
            out[:, :, i, j] = np.tensordot(window, W, axes=([1, 2, 3], [1, 2, 3]))
    return out if b is None else out + b.reshape(1, fn, 1, 1)


def pool_reference(x, kh, kw, stride, pad, reduce, fill):
    (sh, sw), (ph, pw) = _pair(stride), _pair(pad)
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    out = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            out[:, :, i, j] = reduce(xp[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw], (2, 3))
    return out


# (x shape, W shape, stride, pad): stride 1 and 2, pad 0 and 1, odd sizes, non-square inputs
# and kernels, batch of 1, C > 1, FN > 1, a kernel as large as the input, per-axis pairs.
CONV_CASES = [
    ((2, 3, 5, 5), (4, 3, 3, 3), 1, 0),
    ((2, 3, 5, 5), (4, 3, 3, 3), 1, 1),
    ((2, 2, 7, 7), (3, 2, 3, 3), 2, 0),
    ((2, 2, 7, 7), (3, 2, 3, 3), 2, 1),
    ((1, 1, 5, 7), (2, 1, 3, 2), 1, 0),
    ((3, 2, 6, 5), (1, 2, 2, 3), 2, 0),
    ((1, 3, 4, 4), (2, 3, 4, 4), 1, 0),
    ((2, 2, 5, 6), (2, 2, 3, 2), (1, 2), (1, 0)),
]
CASE_IDS = [f"x{c[0]}-W{c[1]}-s{c[2]}-p{c[3]}" for c in CONV_CASES]


# ----------------------------------------------------------------------------- im2col / col2im


def test_im2col_worked_example():
    x = np.arange(1, 13).reshape(1, 1, 3, 4)
    col = im2col(x, 2, 2)
    # Column p is the window at output position p; row k is kernel offset k = (i, j).
    assert_array_equal(
        col,
        [
            [1, 2, 3, 5, 6, 7],
            [2, 3, 4, 6, 7, 8],
            [5, 6, 7, 9, 10, 11],
            [6, 7, 8, 10, 11, 12],
        ],
    )
    # col2im adds every copy back: a column matrix of ones counts the windows per pixel.
    counts = col2im(np.ones((4, 6)), x.shape, 2, 2)[0, 0]
    assert_array_equal(counts, [[1, 2, 2, 1], [2, 4, 4, 2], [1, 2, 2, 1]])
    # ... so col2im is not the inverse of im2col: it multiplies by the counts.
    assert_array_equal(col2im(col.astype(float), x.shape, 2, 2), x * counts)


def test_im2col_with_stride_and_padding_by_hand():
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    col = im2col(x, 2, 2, stride=2, pad=1)  # 4x4 padded image, four 2x2 windows
    assert col.shape == (4, 4)
    # window (0,0) is [[0,0],[0,1]], (0,1) [[0,0],[2,0]], (1,0) [[0,3],[0,0]], (1,1) [[4,0],[0,0]]
    assert_array_equal(col.T, [[0, 0, 0, 1], [0, 0, 2, 0], [0, 3, 0, 0], [4, 0, 0, 0]])
    # Non-overlapping windows: here col2im *is* the inverse (each pixel read exactly once).
    assert_array_equal(col2im(col, x.shape, 2, 2, stride=2, pad=1), x)


def test_im2col_column_order_and_the_books_layout(rng):
    # Rows: kernel offsets (c, i, j); columns: (oh, ow, n), the image index fastest.
    x = rng.standard_normal((3, 2, 5, 4))
    col = im2col(x, 2, 3, stride=1, pad=1)  # OH, OW = 6, 4
    for n, c, i, j, oh, ow in [(0, 0, 0, 0, 0, 0), (2, 1, 1, 2, 5, 3), (1, 1, 0, 1, 2, 1)]:
        xpad = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
        assert col[c * 6 + i * 3 + j, (oh * 4 + ow) * 3 + n] == xpad[n, c, oh + i, ow + j]
    # The book's (N*OH*OW, C*kh*kw): one row per window, image by image.
    book = col.reshape(12, 24, 3).transpose(2, 1, 0).reshape(-1, 12)
    assert_array_equal(book[1 * 24 + 2 * 4 + 1], col[:, (2 * 4 + 1) * 3 + 1])


@pytest.mark.parametrize(("x_shape", "w_shape", "stride", "pad"), CONV_CASES, ids=CASE_IDS)
def test_col2im_is_the_adjoint_of_im2col(rng, x_shape, w_shape, stride, pad):
    kh, kw = w_shape[2:]
    x = rng.standard_normal(x_shape)
    col = im2col(x, kh, kw, stride, pad)
    c = rng.standard_normal(col.shape)
    lhs = float((col * c).sum())
    rhs = float((x * col2im(c, x_shape, kh, kw, stride, pad)).sum())
    assert lhs == pytest.approx(rhs, rel=1e-12, abs=1e-12)


def test_im2col_and_col2im_keep_the_dtype(rng):
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    col = im2col(x, 3, 3, 1, 1)
    assert col.dtype == np.float32
    assert col2im(col, x.shape, 3, 3, 1, 1).dtype == np.float32


# ----------------------------------------------------------------------------- convolution


@pytest.mark.parametrize(("x_shape", "w_shape", "stride", "pad"), CONV_CASES, ids=CASE_IDS)
def test_conv2d_forward_matches_reference(rng, x_shape, w_shape, stride, pad):
    x, W = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    assert_allclose(Conv2d(stride, pad).forward(x, W, b), conv_reference(x, W, b, stride, pad))
    assert_allclose(Conv2d(stride, pad).forward(x, W), conv_reference(x, W, None, stride, pad))


@pytest.mark.parametrize(("x_shape", "w_shape", "stride", "pad"), CONV_CASES, ids=CASE_IDS)
def test_convolution_layer_gradients(rng, x_shape, w_shape, stride, pad):
    x, W = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    report = check_layer(Convolution(W, b, stride, pad), x, rng=rng)
    assert [t.name for t in report.tensors] == ["x", "W", "b"]


@pytest.mark.parametrize(("x_shape", "w_shape", "stride", "pad"), CONV_CASES, ids=CASE_IDS)
def test_conv2d_autograd_gradients(rng, x_shape, w_shape, stride, pad):
    x, W = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    check_function(lambda x, W, b: conv2d(x, W, b, stride=stride, pad=pad), x, W, b, rng=rng)


def test_conv_without_bias(rng):
    x, W = rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((2, 3, 3, 3))
    layer = Convolution(W, None, stride=1, pad=1)
    report = check_layer(layer, x, params={"W": "dW"}, rng=rng)
    assert [t.name for t in report.tensors] == ["x", "W"]
    assert layer.db is None
    check_function(lambda x, W: conv2d(x, W, pad=1), x, W, rng=rng)
    op = Conv2d(pad=1)
    op.forward(x, W)
    assert len(op.backward(np.ones((2, 2, 6, 5)))) == 2


def test_conv_backward_by_hand():
    x = np.arange(1.0, 13.0).reshape(1, 1, 3, 4)
    op = Conv2d()
    out = op.forward(x, np.ones((1, 1, 2, 2)), np.array([0.5]))
    assert_array_equal(out[0, 0], [[14.5, 18.5, 22.5], [30.5, 34.5, 38.5]])
    dx, dW, db = op.backward(np.ones((1, 1, 2, 3)))
    assert_array_equal(dx[0, 0], [[1, 2, 2, 1], [2, 4, 4, 2], [1, 2, 2, 1]])
    assert_array_equal(dW[0, 0], [[24, 30], [48, 54]])  # sums of the pixels each offset saw
    assert_array_equal(db, [6.0])


def test_conv_keeps_float32(rng):
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    W = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = np.zeros(4, dtype=np.float32)
    op = Conv2d(1, 1)
    out = op.forward(x, W, b)
    assert out.dtype == np.float32
    grads = op.backward(np.ones_like(out))
    assert [g.dtype for g in grads] == [np.float32] * 3
    assert_allclose(out, conv_reference(x, W, b, 1, 1), rtol=1e-4, atol=1e-5)


def test_backward_never_mutates_dout_or_inputs(rng):
    x = rng.standard_normal((2, 2, 6, 6))
    W, b = rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3)
    for op, args in (
        (Conv2d(1, 1), (x, W, b)),
        (MaxPool2d(2, 2), (x,)),
        (MaxPool2d(3, 3, stride=1, pad=1), (x,)),
        (AvgPool2d(2, 2), (x,)),
    ):
        saved = [a.copy() for a in args]
        out = op.forward(*args)
        dout = rng.standard_normal(out.shape)
        kept = dout.copy()
        op.backward(dout)
        assert_array_equal(dout, kept)
        for a, s in zip(args, saved):
            assert_array_equal(a, s)


def test_layer_holds_references_to_its_parameters(rng):
    W, b = rng.standard_normal((2, 1, 3, 3)), np.zeros(2)
    layer = Convolution(W, b)
    x = rng.standard_normal((1, 1, 4, 4))
    before = layer.forward(x)
    W *= 2.0  # an optimizer updating in place
    assert_allclose(layer.forward(x), 2.0 * before)


# ----------------------------------------------------------------------------- pooling

# (x shape, (pool_h, pool_w), stride, pad): the book's 2x2/2, overlapping windows, padding,
# non-square windows and strides.
POOL_CASES = [
    ((2, 3, 4, 4), (2, 2), 2, 0),
    ((1, 2, 5, 5), (3, 3), 1, 0),
    ((2, 2, 5, 5), (3, 3), 2, 1),
    ((2, 3, 6, 7), (2, 3), 2, 0),
    ((1, 1, 6, 5), (2, 3), (2, 1), (0, 1)),
]
POOL_IDS = [f"x{c[0]}-k{c[1]}-s{c[2]}-p{c[3]}" for c in POOL_CASES]


def distinct_values(rng, shape):
    """Random values with no ties (and gaps far larger than the check's h)."""
    return rng.permutation(np.arange(np.prod(shape), dtype=float)).reshape(shape) * 0.1 - 1.0


@pytest.mark.parametrize(("x_shape", "kernel", "stride", "pad"), POOL_CASES, ids=POOL_IDS)
def test_max_pool_forward_and_gradients(rng, x_shape, kernel, stride, pad):
    x = distinct_values(rng, x_shape)
    op = MaxPool2d(*kernel, stride=stride, pad=pad)
    assert_array_equal(op.forward(x), pool_reference(x, *kernel, stride, pad, np.max, -np.inf))
    report = check_layer(op, x, rng=rng)
    assert not report["x"].kink_crossings
    check_function(lambda x: max_pool2d(x, kernel, stride, pad), x, rng=rng)
    check_layer(Pooling(*kernel, stride=stride, pad=pad), x, rng=rng)


@pytest.mark.parametrize(("x_shape", "kernel", "stride", "pad"), POOL_CASES, ids=POOL_IDS)
def test_avg_pool_forward_and_gradients(rng, x_shape, kernel, stride, pad):
    x = rng.standard_normal(x_shape)
    op = AvgPool2d(*kernel, stride=stride, pad=pad)
    assert_allclose(op.forward(x), pool_reference(x, *kernel, stride, pad, np.mean, 0.0))
    check_layer(op, x, rng=rng)
    check_function(lambda x: avg_pool2d(x, kernel, stride, pad), x, rng=rng)
    check_layer(Pooling(*kernel, stride=stride, pad=pad, mode="avg"), x, rng=rng)


def test_max_pool_ties_share_the_gradient_equally():
    x = np.array(
        [
            [
                [
                    [1.0, 3.0, 5.0, 5.0],
                    [3.0, 2.0, 5.0, 5.0],
                ]
            ]
        ]
    )
    op = MaxPool2d(2, 2)
    assert_array_equal(op.forward(x), [[[[3.0, 5.0]]]])
    dx = op.backward(np.array([[[[2.0, 4.0]]]]))
    # Two-way tie: dout / 2 each; four-way tie: dout / 4 each. The total is conserved.
    assert_array_equal(dx[0, 0], [[0.0, 1.0, 1.0, 1.0], [1.0, 0.0, 1.0, 1.0]])
    assert dx.sum() == 6.0
    # The same rule as the engine's max reduction over the window.
    for window, share in ((x[0, 0, :, :2], [[0, 0.5], [0.5, 0]]), (x[0, 0, :, 2:], 0.25)):
        t = Tensor(window.copy())
        F.max(t).backward()
        assert_array_equal(t.grad, np.broadcast_to(share, (2, 2)))


def test_max_pool_two_way_tie_matches_central_difference():
    # Perturbing a tied maximum by +h raises the max by h, by -h leaves it: (h - 0) / 2h = 1/2,
    # exactly the equal share. The gradient check flags the tie as a kink crossing.
    x = np.array([[[[1.0, 3.0], [3.0, 2.0]]]])
    op = MaxPool2d(2)
    op.forward(x)
    assert_array_equal(op.backward(np.ones((1, 1, 1, 1)))[0, 0], [[0, 0.5], [0.5, 0]])
    report = check_layer(op, x)
    crossed = [index for index, _ in report["x"].kink_crossings]
    assert sorted(crossed) == [(0, 0, 0, 1), (0, 0, 1, 0)]
    assert report.ok
    g = numerical_gradient(lambda _: float(MaxPool2d(2).forward(x).sum()), x)
    assert_allclose(g[0, 0], [[0, 0.5], [0.5, 0]], atol=1e-9)


def test_max_pool_padding_never_wins():
    x = -np.ones((1, 1, 2, 2)) - np.arange(4.0).reshape(1, 1, 2, 2)  # all negative
    out = MaxPool2d(2, 2, stride=2, pad=1).forward(x)
    assert_array_equal(out[0, 0], [[-1, -2], [-3, -4]])


def test_pooling_layer_modes():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    assert_array_equal(Pooling(2, 2).forward(x)[0, 0], [[5, 7], [13, 15]])
    assert_array_equal(Pooling(2, 2, mode="avg").forward(x)[0, 0], [[2.5, 4.5], [10.5, 12.5]])
    with pytest.raises(ValueError, match="mode must be 'max' or 'avg'"):
        Pooling(2, 2, mode="min")


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("call", "pattern"),
    [
        (lambda: conv2d(np.ones((3, 5, 5)), np.ones((2, 3, 3, 3))), r"conv2d: the input x .*4-D"),
        (lambda: conv2d(np.ones((1, 3, 5, 5)), np.ones((2, 3, 3))), r"conv2d: the filters W"),
        (
            lambda: conv2d(np.ones((2, 3, 5, 5)), np.ones((4, 2, 3, 3))),
            r"conv2d: x of shape \(2, 3, 5, 5\) has 3 channels but the filters W of shape "
            r"\(4, 2, 3, 3\) expect 2",
        ),
        (
            lambda: conv2d(np.ones((1, 1, 6, 6)), np.ones((1, 1, 3, 3)), stride=2),
            r"conv2d: output size \(H \+ 2\*pad - FH\) / stride \+ 1 = \(6 \+ 2\*0 - 3\) / 2 "
            r"\+ 1 = 2\.5 is not an integer \(input x \(1, 1, 6, 6\), filters W \(1, 1, 3, 3\)",
        ),
        (
            lambda: conv2d(np.ones((1, 1, 3, 3)), np.ones((1, 1, 5, 5))),
            r"conv2d: the window is larger than the padded input: FH=5 > H \+ 2\*pad",
        ),
        (
            lambda: conv2d(np.ones((1, 1, 4, 4)), np.ones((2, 1, 3, 3)), np.ones(3)),
            r"conv2d: bias b has shape \(3,\), expected \(2,\)",
        ),
        (lambda: Conv2d(stride=0), r"conv2d: stride must be an integer >= 1"),
        (lambda: Conv2d(pad=-1), r"conv2d: pad must be an integer >= 0"),
        (
            lambda: max_pool2d(np.ones((1, 1, 5, 5)), 2),
            r"max_pool2d: output size \(H \+ 2\*pad - pool_h\) / stride \+ 1 = "
            r"\(5 \+ 2\*0 - 2\) / 2 \+ 1 = 2\.5",
        ),
        (lambda: max_pool2d(np.ones((5, 5)), 2), r"max_pool2d: the input x .*got shape \(5, 5\)"),
        (lambda: MaxPool2d(2, 2, pad=2), r"max_pool2d: pad 2 must be smaller than the pool"),
        (
            lambda: avg_pool2d(np.ones((1, 1, 4, 6)), (3, 2)),
            r"avg_pool2d: output size \(H \+ 2\*pad - pool_h\) / stride \+ 1 = "
            r"\(4 \+ 2\*0 - 3\) / 3 \+ 1",
        ),
        (lambda: im2col(np.ones((2, 3, 4)), 2, 2), r"im2col: the input x must be 4-D"),
        (
            lambda: col2im(np.ones((4, 5)), (1, 1, 3, 4), 2, 2),
            r"col2im: col has shape \(4, 5\), .* needs \(C\*kh\*kw, OH\*OW\*N\) = \(4, 6\)",
        ),
        (lambda: conv_output_size(6, 3, stride=2), r"\(6 \+ 2\*0 - 3\) / 2 \+ 1 = 2\.5"),
    ],
)
def test_bad_shapes_raise_clear_errors(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


def test_backward_rejects_a_dout_of_the_wrong_shape():
    op = Conv2d()
    op.forward(np.ones((1, 1, 4, 4)), np.ones((2, 1, 3, 3)))
    with pytest.raises(ValueError, match=r"conv2d backward: dout has shape \(1, 2, 3, 3\)"):
        op.backward(np.ones((1, 2, 3, 3)))
    pool = MaxPool2d(2)
    pool.forward(np.ones((1, 1, 4, 4)))
    with pytest.raises(ValueError, match=r"max_pool2d backward: .*expected .*\(1, 1, 2, 2\)"):
        pool.backward(np.ones((1, 1, 3, 3)))


def test_networks_reject_bad_configurations():
    with pytest.raises(ValueError, match=r"SimpleConvNet: the pooling .* even height"):
        SimpleConvNet(input_dim=(1, 9, 9), conv_param={"filter_size": 3})
    with pytest.raises(ValueError, match=r"SimpleConvNet: the convolution does not fit"):
        SimpleConvNet(input_dim=(1, 6, 6), conv_param={"filter_size": 3, "stride": 2})
    with pytest.raises(ValueError, match=r"unknown keys \['filter_nums'\]"):
        SimpleConvNet(conv_param={"filter_nums": 3})
    with pytest.raises(ValueError, match=r"DeepConvNet: pooling 3 .* even"):
        DeepConvNet(input_dim=(1, 8, 8))
    net = SimpleConvNet(input_dim=(1, 8, 8), conv_param={"filter_size": 3}, hidden_size=4)
    with pytest.raises(ValueError, match=r"SimpleConvNet: input of shape \(2, 63\) does not"):
        net.predict(np.ones((2, 63)))


# ----------------------------------------------------------------------------- networks


def tiny_simple_net(rng, dtype=np.float64):
    return SimpleConvNet(
        input_dim=(2, 8, 8),
        conv_param={"filter_num": 3, "filter_size": 3, "pad": 1, "stride": 1},
        hidden_size=5,
        output_size=4,
        weight_init_std=0.3,
        rng=rng,
        dtype=dtype,
    )


def kink_probe(layers):
    kinked = [(name, layer) for name, layer in layers.items() if hasattr(layer, "kink_state")]
    return lambda: [(name, np.array(layer.kink_state(), copy=True)) for name, layer in kinked]


def test_simple_conv_net_gradient_check(rng):
    net = tiny_simple_net(rng)
    x, t = rng.standard_normal((3, 2, 8, 8)), np.array([0, 3, 1])
    grads = {k: v.copy() for k, v in net.gradient(x, t).items()}
    assert list(grads) == ["W1", "b1", "W2", "b2", "W3", "b3"]
    compare(lambda: net.loss(x, t), net.params, grads, kink_probe=kink_probe(net.layers))
    # The book's numerical_gradient agrees too (no kink bookkeeping there).
    numerical = net.numerical_gradient(x, t)
    for key in grads:
        scale = np.abs(grads[key]).max()
        assert np.abs(grads[key] - numerical[key]).max() <= 1e-6 * scale, key


def test_simple_conv_net_layers_match_autograd(rng):
    net = tiny_simple_net(rng)
    x, t = rng.standard_normal((4, 2, 8, 8)), np.array([0, 3, 1, 2])
    loss = net.loss(x, t)
    grads = net.gradient(x, t)

    P = {k: Tensor(v.copy()) for k, v in net.params.items()}
    h = F.relu(conv2d(Tensor(x), P["W1"], P["b1"], stride=1, pad=1))
    h = max_pool2d(h, 2)
    h = F.relu(F.linear(h, P["W2"], P["b2"]))
    y = F.softmax_cross_entropy(F.linear(h, P["W3"], P["b3"]), t)
    y.backward()
    assert float(y.data) == pytest.approx(float(loss), rel=1e-12)
    for key, g in grads.items():
        assert_allclose(P[key].grad, g, rtol=1e-10, atol=1e-14, err_msg=key)


def test_simple_conv_net_accepts_flat_images_and_one_hot_labels(rng):
    net = tiny_simple_net(rng)
    x, t = rng.standard_normal((7, 2, 8, 8)), rng.integers(0, 4, 7)
    scores = net.predict(x)
    assert scores.shape == (7, 4)
    assert_array_equal(net.predict(x.reshape(7, -1)), scores)
    expected = float((scores.argmax(axis=1) == t).mean())
    assert net.accuracy(x, t) == expected
    assert net.accuracy(x.reshape(7, -1), np.eye(4)[t], batch_size=3) == expected
    assert net.loss(x.reshape(7, -1), t) == pytest.approx(float(net.loss(x, t)))


def test_simple_conv_net_defaults_are_the_books(rng):
    net = SimpleConvNet(rng=rng)
    shapes = {k: v.shape for k, v in net.params.items()}
    assert shapes == {
        "W1": (30, 1, 5, 5),
        "b1": (30,),
        "W2": (4320, 100),
        "b2": (100,),
        "W3": (100, 10),
        "b3": (10,),
    }
    assert net.params["W1"].std() == pytest.approx(0.01, rel=0.1)
    assert net.lastLayer is net.last_layer
    f32 = SimpleConvNet(rng=rng, dtype=np.float32)
    assert all(v.dtype == np.float32 for v in f32.params.values())
    grads = f32.gradient(np.zeros((2, 784), dtype=np.float32), np.array([1, 2]))
    assert all(g.dtype == np.float32 for g in grads.values())


def test_deep_conv_net_is_the_books(rng):
    net = DeepConvNet(rng=rng)
    assert list(net.layers) == [
        "Conv1", "Relu1", "Conv2", "Relu2", "Pool1",
        "Conv3", "Relu3", "Conv4", "Relu4", "Pool2",
        "Conv5", "Relu5", "Conv6", "Relu6", "Pool3",
        "Affine1", "Relu7", "Dropout1", "Affine2", "Dropout2",
    ]  # fmt: skip
    fan_in = [9, 144, 144, 288, 288, 576, 1024, 50]
    for i, n in enumerate(fan_in, start=1):
        W = net.params[f"W{i}"]
        assert W.std() == pytest.approx(np.sqrt(2.0 / n), rel=0.15), f"W{i}"
    assert net.params["W4"].shape == (32, 32, 3, 3)
    assert net.params["W7"].shape == (1024, 50)
    assert net.predict(np.zeros((2, 784))).shape == (2, 10)


def tiny_deep_net(rng, dropout_ratio=0.5):
    small = [{"filter_num": n} for n in (2, 2, 3, 3, 4, 4)]
    return DeepConvNet((1, 12, 12), *small, hidden_size=6, output_size=3,
                       dropout_ratio=dropout_ratio, rng=rng)  # fmt: skip


def test_deep_conv_net_gradient_check_in_eval_mode(rng):
    net = tiny_deep_net(rng)
    x, t = rng.standard_normal((2, 1, 12, 12)), np.array([0, 2])
    grads = {k: v.copy() for k, v in net.gradient(x, t, train_flg=False).items()}
    assert list(grads) == [f"{p}{i}" for i in range(1, 9) for p in ("W", "b")]
    compare(lambda: net.loss(x, t), net.params, grads, kink_probe=kink_probe(net.layers))


def test_deep_conv_net_trains_with_dropout_and_evaluates_without(rng):
    net = tiny_deep_net(rng)
    x, t = rng.standard_normal((4, 1, 12, 12)), np.array([0, 2, 1, 1])
    # predict / loss / accuracy: evaluation mode, deterministic.
    assert_array_equal(net.predict(x), net.predict(x))
    assert float(net.loss(x, t)) == float(net.loss(x, t))
    # gradient: training mode, so dropout draws masks (two calls differ) ...
    g1 = {k: v.copy() for k, v in net.gradient(x, t).items()}
    assert net.layers["Dropout1"].scale is not None
    g2 = net.gradient(x, t)
    assert not np.array_equal(g1["W8"], g2["W8"])

    # ... and, with the masks held fixed, it is the gradient of the training-mode loss.
    def same_masks():
        net.layers["Dropout1"].rng = np.random.default_rng(5)
        net.layers["Dropout2"].rng = np.random.default_rng(6)

    same_masks()
    grads = {k: v.copy() for k, v in net.gradient(x, t).items()}

    def train_loss():
        same_masks()
        return net.loss(x, t, train_flg=True)

    assert float(train_loss()) != float(net.loss(x, t))
    last = {k: net.params[k] for k in ("W7", "b7", "W8", "b8")}
    compare(train_loss, last, grads, kink_probe=kink_probe(net.layers))


# ----------------------------------------------------------------------------- training


def bars(rng, n, size=8):
    """Images with a horizontal bar (class 0), a vertical bar (1) or a diagonal (2), in noise."""
    t = rng.integers(0, 3, n)
    x = 0.3 * rng.standard_normal((n, 1, size, size))
    where = rng.integers(1, size - 1, n)
    for k in range(n):
        if t[k] == 0:
            x[k, 0, where[k], :] += 1.0
        elif t[k] == 1:
            x[k, 0, :, where[k]] += 1.0
        else:
            x[k, 0] += np.eye(size)[:, :: 1 if where[k] % 2 else -1]
    return x.astype(np.float32), t


def train(net, optimizer, x, t, steps, batch, rng):
    for _ in range(steps):
        idx = rng.choice(len(x), batch, replace=False)
        optimizer.update(net.params, net.gradient(x[idx], t[idx]))


def test_tiny_cnn_learns_bars_with_sgd(rng):
    x, t = bars(rng, 200)
    net = SimpleConvNet(
        (1, 8, 8),
        {"filter_num": 4, "filter_size": 3, "pad": 1},
        hidden_size=16,
        output_size=3,
        weight_init_std="he",
        rng=rng,
        dtype=np.float32,
    )
    before = float(net.loss(x, t))
    train(net, SGD(lr=0.3), x, t, steps=40, batch=20, rng=rng)
    after = float(net.loss(x, t))
    assert after < 0.5 * before, (before, after)
    assert net.accuracy(x, t) > 0.8


def test_tiny_deep_cnn_learns_bars_with_adam(rng):
    x, t = bars(rng, 200, size=12)
    small = [{"filter_num": n} for n in (4, 4, 8, 8, 8, 8)]
    net = DeepConvNet((1, 12, 12), *small, hidden_size=16, output_size=3, dropout_ratio=0.1,
                      rng=rng, dtype=np.float32)  # fmt: skip
    before = float(net.loss(x, t))
    train(net, Adam(lr=0.005), x, t, steps=60, batch=20, rng=rng)
    after = float(net.loss(x, t))
    assert after < 0.5 * before, (before, after)


def load_mnist_or_skip():
    from mnist_data import load_real_mnist  # $CHAINRULE_DATA, then ../shared/data; or skip

    return load_real_mnist(flatten=True)


@pytest.mark.slow
def test_simple_conv_net_learns_an_mnist_slice(rng):
    (x_train, t_train), (x_test, t_test) = load_mnist_or_skip()
    x, t = x_train[:1000], t_train[:1000]  # flattened (N, 784) float32, as the trainer gives
    x_val, t_val = x_test[:500], t_test[:500]
    net = SimpleConvNet(rng=rng, dtype=np.float32, hidden_size=50)
    before = float(net.loss(x_val, t_val))
    train(net, Adam(lr=0.002), x, t, steps=60, batch=50, rng=rng)
    after = float(net.loss(x_val, t_val))
    assert after < 0.5 * before, (before, after)
    assert net.accuracy(x_val, t_val) > 0.7


# ----------------------------------------------------------------------------- docstrings


@pytest.mark.parametrize("module", [conv_module, conv_layers_module, conv_nets_module])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0
