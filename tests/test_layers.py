"""The book's layers used by hand: gradient checks, the seeds' golden numbers, the tie rule,
dout/inputs never mutated, and TwoLayerNet against the autograd engine."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from chainrule import Tensor
from chainrule import functions as F
from chainrule.gradcheck import check_layer
from chainrule.layers import (
    AddLayer,
    Affine,
    Convolution,
    IdentityWithLoss,
    LeakyRelu,
    MaxGate,
    MulLayer,
    Relu,
    Sigmoid,
    Softmax,
    SoftmaxWithLoss,
    Tanh,
    TwoLayerNet,
)

RTOL = 1e-7


def away_from_zero(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.uniform(0.1, 2.0, shape) * rng.choice([-1.0, 1.0], shape)


# ----------------------------------------------------------------------------- golden numbers


def test_buy_apple_golden_numbers():
    apple, apple_num, tax = 100, 2, 1.1
    mul_apple, mul_tax = MulLayer(), MulLayer()
    apple_price = mul_apple.forward(apple, apple_num)
    price = mul_tax.forward(apple_price, tax)
    dapple_price, dtax = mul_tax.backward(1)
    dapple, dapple_num = mul_apple.backward(dapple_price)
    assert price == pytest.approx(220)
    assert dapple == pytest.approx(2.2)
    assert dapple_num == pytest.approx(110)
    assert dtax == pytest.approx(200)


def test_buy_apple_orange_golden_numbers():
    apple, apple_num, orange, orange_num, tax = 100, 2, 150, 3, 1.1
    mul_apple, mul_orange, add_fruit, mul_tax = MulLayer(), MulLayer(), AddLayer(), MulLayer()
    apple_price = mul_apple.forward(apple, apple_num)
    orange_price = mul_orange.forward(orange, orange_num)
    all_price = add_fruit.forward(apple_price, orange_price)
    price = mul_tax.forward(all_price, tax)

    dall_price, dtax = mul_tax.backward(1)
    dapple_price, dorange_price = add_fruit.backward(dall_price)
    dorange, dorange_num = mul_orange.backward(dorange_price)
    dapple, dapple_num = mul_apple.backward(dapple_price)

    assert price == pytest.approx(715)
    assert dapple_num == pytest.approx(110)
    assert dapple == pytest.approx(2.2)
    assert dorange == pytest.approx(3.3)
    assert dorange_num == pytest.approx(165)
    assert dtax == pytest.approx(650)


def test_apple_orange_same_numbers_through_tensors():
    apple, apple_num = Tensor(100.0), Tensor(2.0)
    orange, orange_num, tax = Tensor(150.0), Tensor(3.0), Tensor(1.1)
    price = (apple * apple_num + orange * orange_num) * tax
    price.backward()
    assert price.item() == pytest.approx(715)
    grads = [t.grad.item() for t in (apple, apple_num, orange, orange_num, tax)]
    assert grads == pytest.approx([2.2, 110, 3.3, 165, 650])


# ----------------------------------------------------------------------------- gradient checks


def _check(layer: Any, *inputs: Any, rng: np.random.Generator) -> Any:
    report = check_layer(layer, *inputs, rng=rng, rtol=RTOL)
    assert report.ok
    for t in report.tensors:
        assert t.rel_error < RTOL, str(report)
        assert not t.kink_crossings, str(report)
    return report


def test_mul_layer_scalars_and_arrays(rng):
    report = _check(MulLayer(), 3.0, -2.0, rng=rng)
    assert [t.name for t in report.tensors] == ["x0", "x1"]
    _check(MulLayer(), rng.standard_normal((2, 3)), rng.standard_normal((2, 3)), rng=rng)
    _check(MulLayer(), rng.standard_normal((2, 3)), rng.standard_normal(3), rng=rng)


def test_add_layer_scalars_and_arrays(rng):
    _check(AddLayer(), 3.0, -2.0, rng=rng)
    _check(AddLayer(), rng.standard_normal((2, 3)), rng.standard_normal((2, 3)), rng=rng)
    _check(AddLayer(), rng.standard_normal((3, 3)), rng.standard_normal((3, 1)), rng=rng)


@pytest.mark.parametrize("layer_type", [Relu, Sigmoid, Tanh, LeakyRelu])
@pytest.mark.parametrize("shape", [(), (5,), (3, 4)])
def test_activation_layers(layer_type, shape, rng):
    _check(layer_type(), away_from_zero(rng, shape), rng=rng)


@pytest.mark.parametrize(
    ("x_shape", "w_shape"),
    [((1, 4), (4, 3)), ((5, 4), (4, 3)), ((3, 7), (7, 2)), ((2, 1, 4, 4), (16, 3))],
    ids=["one-sample", "batch", "non-square", "nd-input"],
)
def test_affine(x_shape, w_shape, rng):
    W, b = rng.standard_normal(w_shape), rng.standard_normal(w_shape[1])
    layer = Affine(W, b)
    report = _check(layer, rng.standard_normal(x_shape), rng=rng)
    assert [t.name for t in report.tensors] == ["x", "W", "b"]
    dx = layer.backward(np.ones((x_shape[0], w_shape[1])))
    assert dx.shape == x_shape
    assert layer.dW.shape == W.shape
    assert layer.db.shape == b.shape


def test_affine_sees_in_place_parameter_updates(rng):
    W, b = rng.standard_normal((3, 2)), np.zeros(2)
    layer = Affine(W, b)
    x = rng.standard_normal((4, 3))
    before = layer.forward(x)
    W *= 2.0
    b += 1.0
    assert_allclose(layer.forward(x), 2.0 * before + 1.0, rtol=1e-14)


@pytest.mark.parametrize("layer_of", [Affine, Convolution], ids=["Affine", "Convolution"])
def test_backward_lets_go_of_the_previous_gradients_first(layer_of, rng):
    # The last step's dW is dropped before the new one is computed: a training loop then never
    # holds two copies of the weight gradients (4 MiB more for a 1024x1024 float32 layer).
    import tracemalloc

    mib = 2**20
    if layer_of is Affine:
        layer = Affine(rng.standard_normal((512, 512)), np.zeros(512))  # dW: 2 MiB
        x = rng.standard_normal((4, 512))
    else:
        layer = Convolution(rng.standard_normal((512, 8, 8, 8)), np.zeros(512))  # dW: 2 MiB
        x = rng.standard_normal((1, 8, 8, 8))
    dout = np.ones_like(layer.forward(x))
    tracemalloc.start()
    try:
        layer.backward(dout)  # the first dW, traced
        start = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        layer.forward(x)
        layer.backward(dout)
        peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    assert peak < 1 * mib, f"old and new dW were alive together ({peak / mib:.1f} MiB more)"


@pytest.mark.parametrize("shape", [(3, 4), (4,), (1, 2)])
def test_softmax_layer(shape, rng):
    _check(Softmax(), rng.standard_normal(shape), rng=rng)


def test_softmax_with_loss_labels(rng):
    _check(SoftmaxWithLoss(), rng.standard_normal((4, 3)), np.array([0, 2, 1, 2]), rng=rng)


def test_softmax_with_loss_one_hot(rng):
    t = np.eye(3)[[0, 2, 1, 2]]
    _check(SoftmaxWithLoss(), rng.standard_normal((4, 3)), t, rng=rng)


def test_softmax_with_loss_single_sample(rng):
    x = rng.standard_normal(5)
    layer = SoftmaxWithLoss()
    _check(layer, x, np.array(3), rng=rng)
    layer.forward(x, 3)
    dx = layer.backward(1)
    assert dx.shape == (5,)
    y = np.exp(x) / np.exp(x).sum()
    assert_allclose(dx, y - np.eye(5)[3], rtol=1e-13, atol=1e-16)
    # One-hot for a single 1-D sample gives the same numbers.
    one_hot = SoftmaxWithLoss()
    assert one_hot.forward(x, np.eye(5)[3]) == pytest.approx(layer.forward(x, 3), rel=1e-15)
    assert_allclose(one_hot.backward(1), dx, rtol=1e-15)


@pytest.mark.parametrize("targets", ["labels", "one-hot"])
def test_softmax_with_loss_honours_dout(targets, rng):
    x = rng.standard_normal((4, 3))
    t = np.array([0, 2, 1, 1])
    layer = SoftmaxWithLoss()
    layer.forward(x, t if targets == "labels" else np.eye(3)[t])
    once = layer.backward(1).copy()
    assert_allclose(layer.backward(dout=2.5), 2.5 * once, rtol=1e-15)
    assert_allclose(layer.backward(), once, rtol=0)  # default dout is 1
    assert_allclose(layer.backward(np.array(-0.5)), -0.5 * once, rtol=1e-15)


def test_identity_with_loss(rng):
    x, t = rng.standard_normal((4, 2)), rng.standard_normal((4, 2))
    report = _check(IdentityWithLoss(), x, t, rng=rng)
    assert [r.name for r in report.tensors] == ["x0"]  # the target gets no gradient
    layer = IdentityWithLoss()
    assert layer.forward(x, t) == pytest.approx(0.5 * ((x - t) ** 2).sum() / 4, rel=1e-14)
    assert_allclose(layer.backward(3.0), 3.0 * (x - t) / 4, rtol=1e-15)


def test_max_gate_gradient_check(rng):
    x = rng.standard_normal((3, 4))
    y = x + rng.uniform(0.1, 1.0, (3, 4)) * rng.choice([-1.0, 1.0], (3, 4))
    _check(MaxGate(), x, y, rng=rng)
    _check(MaxGate(), 2.0, -1.0, rng=rng)


def test_max_gate_routes_dout_to_the_larger_input():
    gate = MaxGate()
    assert gate.forward(3.0, 5.0) == 5.0
    dx, dy = gate.backward(2.0)
    assert (float(dx), float(dy)) == (0.0, 2.0)


def test_max_gate_tie_splits_dout_equally():
    gate = MaxGate()
    assert gate.forward(4.0, 4.0) == 4.0
    dx, dy = gate.backward(3.0)
    assert (float(dx), float(dy)) == (1.5, 1.5)

    gate.forward(np.array([1.0, 2.0, 2.0]), np.array([1.0, 1.0, 3.0]))
    dx, dy = gate.backward(np.array([2.0, 2.0, 2.0]))
    assert_array_equal(dx, [1.0, 2.0, 0.0])
    assert_array_equal(dy, [1.0, 0.0, 2.0])


def test_max_gate_tie_is_reported_as_a_kink(rng):
    # At a tie the central difference straddles two branches; the check excludes it.
    report = check_layer(MaxGate(), np.array([1.0, 2.0]), np.array([1.0, 0.0]), rng=rng)
    assert report.ok
    assert [index for index, _ in report["x0"].kink_crossings] == [(0,)]


# ----------------------------------------------------------------------------- no mutation


def _frozen(a: Any) -> Any:
    if not isinstance(a, np.ndarray):
        return a
    a = a.copy()
    a.flags.writeable = False
    return a


LAYER_CASES = {
    "MulLayer": lambda rng: (MulLayer(), (rng.standard_normal((2, 3)), rng.standard_normal(3))),
    "AddLayer": lambda rng: (AddLayer(), (rng.standard_normal((2, 3)), rng.standard_normal(3))),
    "Relu": lambda rng: (Relu(), (rng.standard_normal((3, 4)),)),
    "LeakyRelu": lambda rng: (LeakyRelu(0.1), (rng.standard_normal((3, 4)),)),
    "Sigmoid": lambda rng: (Sigmoid(), (rng.standard_normal((3, 4)),)),
    "Tanh": lambda rng: (Tanh(), (rng.standard_normal((3, 4)),)),
    "Affine": lambda rng: (
        Affine(_frozen(rng.standard_normal((8, 3))), _frozen(rng.standard_normal(3))),
        (rng.standard_normal((2, 2, 4)),),
    ),
    "Softmax": lambda rng: (Softmax(), (rng.standard_normal((3, 4)),)),
    "SoftmaxWithLoss-labels": lambda rng: (
        SoftmaxWithLoss(), (rng.standard_normal((3, 4)), np.array([0, 3, 3]))),
    "SoftmaxWithLoss-one-hot": lambda rng: (
        SoftmaxWithLoss(), (rng.standard_normal((3, 4)), np.eye(4)[[0, 3, 3]])),
    "IdentityWithLoss": lambda rng: (
        IdentityWithLoss(), (rng.standard_normal((3, 2)), rng.standard_normal((3, 2)))),
    "MaxGate": lambda rng: (MaxGate(), (rng.standard_normal((3, 4)), rng.standard_normal(4))),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(LAYER_CASES))
def test_layer_backward_never_mutates_dout_or_inputs(name, rng):
    layer, inputs = LAYER_CASES[name](rng)
    frozen = tuple(_frozen(x) for x in inputs)
    out = np.asarray(layer.forward(*frozen))
    dout = _frozen(rng.standard_normal(out.shape))
    kept = dout.copy()
    first = layer.backward(dout)
    first = [np.array(g, copy=True) for g in (first if isinstance(first, tuple) else (first,))]
    second = layer.backward(dout)  # a layer that edited dout in place would differ now
    second = second if isinstance(second, tuple) else (second,)
    assert_array_equal(dout, kept)
    for a, b in zip(first, second):
        assert_array_equal(a, b)
    for x, original in zip(frozen, inputs):
        assert_array_equal(x, original)


def test_relu_backward_does_not_zero_callers_dout():
    # The book's Relu did `dout[self.mask] = 0`, silently editing the caller's array.
    relu = Relu()
    relu.forward(np.array([-1.0, 2.0, -3.0]))
    dout = np.array([5.0, 6.0, 7.0])
    assert_array_equal(relu.backward(dout), [0.0, 6.0, 0.0])
    assert_array_equal(dout, [5.0, 6.0, 7.0])


def test_two_layer_net_gradient_leaves_inputs_unchanged(rng):
    net = TwoLayerNet(6, 5, 3, rng=rng)
    x, t = _frozen(rng.standard_normal((4, 6))), _frozen(np.array([0, 1, 2, 1]))
    params = {k: v.copy() for k, v in net.params.items()}
    net.gradient(x, t)
    for k, v in net.params.items():
        assert_array_equal(v, params[k])


# ----------------------------------------------------------------------------- equivalence


def _by_layers(net: TwoLayerNet, x: np.ndarray, t: np.ndarray) -> tuple[float, np.ndarray, dict]:
    assert net.layers["Affine1"].need_dx is False  # skipped by default: nobody uses it
    net.gradient(x, t)
    assert net.layers["Affine1"].backward(np.ones((x.shape[0], 7))) is None
    net.layers["Affine1"].need_dx = True  # ask for the input's gradient to compare it
    loss = net.loss(x, t)
    grads = net.gradient(x, t)
    dout = net.last_layer.backward(1)
    for layer in reversed(net.layers.values()):
        dout = layer.backward(dout)
    return loss, dout, grads


@pytest.mark.parametrize("targets", ["labels", "one-hot"])
@pytest.mark.parametrize("x_shape", [(5, 6), (1, 6), (3, 2, 3)])
def test_two_layer_net_equals_autograd(targets, x_shape, rng):
    net = TwoLayerNet(6, 7, 4, weight_init_std=0.5, rng=rng)
    for b in ("b1", "b2"):  # non-zero biases, so a bias bug cannot hide
        net.params[b][...] = rng.standard_normal(net.params[b].shape)
    n = x_shape[0]
    x = rng.standard_normal(x_shape)
    labels = rng.integers(0, 4, n)
    t = labels if targets == "labels" else np.eye(4)[labels]

    loss, dx, grads = _by_layers(net, x, t)

    tx = Tensor(x.copy(), name="x")
    tp = {k: Tensor(v.copy(), name=k) for k, v in net.params.items()}
    hidden = F.relu(F.linear(tx, tp["W1"], tp["b1"]))
    scores = F.linear(hidden, tp["W2"], tp["b2"])
    tloss = F.softmax_cross_entropy(scores, t)
    tloss.backward()

    assert tloss.item() == pytest.approx(loss, rel=1e-12)
    assert_allclose(tx.grad, dx, rtol=1e-12)
    assert tx.grad.shape == x_shape
    for k in ("W1", "b1", "W2", "b2"):
        assert_allclose(tp[k].grad, grads[k], rtol=1e-12, err_msg=k)
        assert grads[k].shape == net.params[k].shape


def test_two_layer_net_api(rng):
    net = TwoLayerNet(4, 5, 3, rng=rng)
    assert net.lastLayer is net.last_layer
    assert list(net.layers) == ["Affine1", "Relu1", "Affine2"]
    x = rng.standard_normal((6, 4))
    scores = net.predict(x)
    assert scores.shape == (6, 3)
    best = scores.argmax(axis=1)
    assert net.accuracy(x, best) == 1.0
    assert net.accuracy(x, np.eye(3)[best]) == 1.0
    assert net.accuracy(x, (best + 1) % 3) == 0.0
    assert net.loss(x, best) > 0.0
    assert net.params["W1"].dtype == np.float64
    assert TwoLayerNet(4, 5, 3, dtype=np.float32).params["W2"].dtype == np.float32


def test_affine_without_bias_returns_dx_and_dw() -> None:
    from chainrule.gradcheck import check_layer
    from chainrule.layers import Affine

    rng = np.random.default_rng(3)
    layer = Affine(rng.standard_normal((4, 3)), None)
    report = check_layer(layer, rng.standard_normal((2, 4)), params={"W": "dW"})
    assert report.ok and layer.db is None


def test_two_layer_net_weights_follow_chainrule_seed() -> None:
    import chainrule
    from chainrule.layers import TwoLayerNet

    chainrule.seed(7)
    first = TwoLayerNet(5, 4, 3).params["W1"].copy()
    chainrule.seed(7)
    np.testing.assert_array_equal(TwoLayerNet(5, 4, 3).params["W1"], first)
    with pytest.raises(ValueError, match="TwoLayerNet: hidden_size must be a positive integer"):
        TwoLayerNet(5, True, 3)


def test_batch_normalization_on_a_batch_of_one_behaves_as_the_books_layer():
    from chainrule.layers import BatchNormalization

    gamma, beta = np.array([2.0, 3.0]), np.array([0.5, -1.0])
    layer = BatchNormalization(gamma, beta, momentum=0.9)
    out = layer.forward(np.array([[4.0, -7.0]]), train_flg=True)
    np.testing.assert_array_equal(out, [beta])  # xc = 0: the book's layer gives beta
    np.testing.assert_allclose(layer.running_mean, [0.4, -0.7])
    np.testing.assert_allclose(layer.running_var, [0.9, 0.9])  # batch variance 0 blended in
    dx = layer.backward(np.array([[1.0, -2.0]]))
    np.testing.assert_array_equal(dx, [[0.0, 0.0]])
    np.testing.assert_array_equal(layer.dgamma, [0.0, 0.0])
    np.testing.assert_array_equal(layer.dbeta, [1.0, -2.0])
