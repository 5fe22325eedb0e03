"""Tests for the book's chapter-6 layers: BatchNormalization, Dropout and MultiLayerNet."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from chainrule.function import BackwardBeforeForwardError
from chainrule.functions import BatchNorm, BatchNormState
from chainrule.gradcheck import check_layer, compare
from chainrule.layers import BatchNormalization, Dropout, MultiLayerNet, TwoLayerNet


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def reference_batchnorm(x, gamma, beta, dout, eps):
    """The book's staged batch-norm forward and backward, written out step by step."""
    mu = x.mean(axis=0)
    xc = x - mu
    var = np.mean(xc**2, axis=0)
    std = np.sqrt(var + eps)
    xn = xc / std
    out = gamma * xn + beta
    dbeta = dout.sum(axis=0)
    dgamma = np.sum(xn * dout, axis=0)
    dxn = gamma * dout
    dxc = dxn / std
    dstd = -np.sum((dxn * xc) / (std * std), axis=0)
    dvar = 0.5 * dstd / std
    dxc = dxc + (2.0 / x.shape[0]) * xc * dvar
    dmu = np.sum(dxc, axis=0)
    dx = dxc - dmu / x.shape[0]
    return out, dx, dgamma, dbeta


# ---------------------------------------------------------------- BatchNormalization


def test_batchnorm_matches_the_staged_reference(rng):
    x = rng.normal(2.0, 3.0, (7, 4))
    gamma, beta = rng.normal(size=4), rng.normal(size=4)
    dout = rng.standard_normal((7, 4))
    layer = BatchNormalization(gamma, beta)
    out = layer.forward(x)
    dx = layer.backward(dout)
    ref_out, ref_dx, ref_dgamma, ref_dbeta = reference_batchnorm(x, gamma, beta, dout, 1e-5)
    np.testing.assert_allclose(out, ref_out, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(layer.dgamma, ref_dgamma, rtol=1e-12)
    np.testing.assert_allclose(layer.dbeta, ref_dbeta, rtol=1e-12)


def test_batchnorm_normalizes_each_feature(rng):
    x = rng.normal(5.0, 10.0, (50, 3))
    out = BatchNormalization(np.ones(3), np.zeros(3)).forward(x)
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=0), 1.0, rtol=1e-6)


@pytest.mark.parametrize("n", [3, 8])  # (n = 2 is degenerate: xhat = ±1 whatever x is)
def test_batchnorm_gradient_check_train(rng, n):
    layer = BatchNormalization(rng.normal(size=4), rng.normal(size=4))
    check_layer(layer, rng.normal(1.0, 2.0, (n, 4)), params={"gamma": "dgamma", "beta": "dbeta"})


def test_batchnorm_gradient_check_eval(rng):
    state_mean, state_var = rng.normal(size=3), rng.uniform(0.5, 2.0, 3)
    layer = BatchNormalization(
        rng.normal(size=3), rng.normal(size=3), running_mean=state_mean, running_var=state_var
    )
    x = rng.normal(size=(4, 3))
    layer.forward(x, train_flg=False)
    dout = rng.standard_normal((4, 3))
    dx = layer.backward(dout)
    np.testing.assert_allclose(dx, dout * layer.gamma / np.sqrt(state_var + 1e-5), rtol=1e-12)

    def f() -> float:
        return float((layer.forward(x, train_flg=False) * dout).sum())

    compare(
        f,
        {"x": x, "gamma": layer.gamma, "beta": layer.beta},
        {
            "x": dx,
            "gamma": layer.dgamma,
            "beta": layer.dbeta,
        },
    )


def test_batchnorm_gradient_check_images_per_activation(rng):
    # The book's way for (N, C, H, W): one gamma per value of a sample.
    layer = BatchNormalization(rng.normal(size=12), rng.normal(size=12))
    check_layer(layer, rng.normal(size=(3, 3, 2, 2)), params={"gamma": "dgamma", "beta": "dbeta"})


def test_batchnorm_running_statistics(rng):
    x = rng.normal(3.0, 2.0, (10, 2))
    layer = BatchNormalization(np.ones(2), np.zeros(2), momentum=0.8)
    assert layer.running_mean is None  # allocated at the first forward, as in the book
    layer.forward(x)
    mean, var = layer.running_mean, layer.running_var
    np.testing.assert_allclose(mean, 0.2 * x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(var, 0.8 + 0.2 * x.var(axis=0), rtol=1e-12)
    layer.forward(x)
    assert layer.running_mean is mean and layer.running_var is var  # updated in place
    np.testing.assert_allclose(mean, (0.8 * 0.2 + 0.2) * x.mean(axis=0), rtol=1e-12)

    out = layer.forward(x, train_flg=False)
    np.testing.assert_allclose(out, (x - mean) / np.sqrt(var + 1e-5), rtol=1e-12)
    np.testing.assert_array_equal(layer.running_mean, mean)  # evaluation leaves them alone


def test_batchnorm_uses_given_running_arrays(rng):
    rm, rv = np.zeros(3), np.ones(3)
    layer = BatchNormalization(np.ones(3), np.zeros(3), 0.5, rm, rv)
    layer.forward(rng.normal(size=(4, 3)))
    assert layer.running_mean is rm and layer.running_var is rv
    assert not np.all(rm == 0)
    assert layer.momentum == 0.5


def test_batchnorm_float32_stays_float32(rng):
    layer = BatchNormalization(np.ones(3, np.float32), np.zeros(3, np.float32))
    x = rng.normal(size=(4, 3)).astype(np.float32)
    assert layer.forward(x).dtype == np.float32
    assert layer.backward(np.ones((4, 3), np.float32)).dtype == np.float32
    layer.state.running_mean = layer.state.running_mean.astype(np.float64)
    assert layer.forward(x, train_flg=False).dtype == np.float32


def test_batchnorm_backward_never_mutates_dout(rng):
    layer = BatchNormalization(rng.normal(size=3), rng.normal(size=3))
    layer.forward(rng.normal(size=(4, 3)))
    dout = rng.standard_normal((4, 3))
    saved = dout.copy()
    layer.backward(dout)
    np.testing.assert_array_equal(dout, saved)


def test_batchnorm_errors(rng):
    layer = BatchNormalization(np.ones(3), np.zeros(3))
    with pytest.raises(BackwardBeforeForwardError, match="before forward"):
        layer.backward(np.ones((2, 3)))
    # A single sample in training mode normalizes to 0 (out = beta), as the book's layer does.
    assert_array_equal(layer.forward(np.array([[1.0, -2.0, 5.0]])), np.zeros((1, 3)))
    layer.forward(np.ones((1, 3)), train_flg=False)  # a single sample is fine in evaluation
    with pytest.raises(ValueError, match=r"gamma has shape \(3,\).*\(2, 4\)"):
        layer.forward(np.ones((2, 4)))
    with pytest.raises(ValueError, match="must have shape"):
        layer.forward(np.ones(3))
    with pytest.raises(ValueError, match="empty"):
        layer.forward(np.ones((0, 3)))
    with pytest.raises(ValueError, match="momentum"):
        BatchNormalization(np.ones(3), np.zeros(3), momentum=1.5)
    with pytest.raises(ValueError, match="running_mean has shape"):
        BatchNormalization(np.ones(3), np.zeros(3), running_mean=np.zeros(2)).forward(
            np.ones((2, 3))
        )
    with pytest.raises(ValueError, match="running_var must be a 1-D floating"):
        BatchNormState(running_var=np.ones(3, dtype=int))
    with pytest.raises(TypeError, match="BatchNormState"):
        BatchNorm(state=None)


# ---------------------------------------------------------------- Dropout


def test_dropout_is_inverted(rng):
    layer = Dropout(0.25, rng=np.random.default_rng(0))
    x = rng.normal(size=(200, 10))
    out = layer.forward(x)
    mask = layer.mask
    assert mask.dtype == bool and 0.65 < mask.mean() < 0.85
    np.testing.assert_allclose(out, x * mask / 0.75, rtol=1e-15)
    dout = rng.standard_normal(x.shape)
    np.testing.assert_allclose(layer.backward(dout), dout * mask / 0.75, rtol=1e-15)
    # Evaluation passes x through unscaled (the book's non-inverted layer scales by 0.75 here).
    np.testing.assert_array_equal(layer.forward(x, train_flg=False), x)
    assert layer.mask is None
    np.testing.assert_array_equal(layer.backward(dout), dout)


def test_dropout_gradient_check_with_a_fixed_mask(rng):
    layer = Dropout(0.5)

    class Reseeded:
        def forward(self, x):
            layer.rng = np.random.default_rng(7)  # the same mask at every evaluation
            return layer.forward(x)

        def backward(self, dout):
            return layer.backward(dout)

    check_layer(Reseeded(), rng.normal(size=(4, 5)))


def test_dropout_reproducible_and_validated():
    a = Dropout(0.5, rng=np.random.default_rng(3)).forward(np.ones(50))
    b = Dropout(0.5, rng=np.random.default_rng(3)).forward(np.ones(50))
    np.testing.assert_array_equal(a, b)
    assert Dropout().dropout_ratio == 0.5
    assert Dropout().mask is None
    with pytest.raises(ValueError, match="ratio"):
        Dropout(1.0)


# ---------------------------------------------------------------- MultiLayerNet


def kink_probe(net: MultiLayerNet):
    def probe():
        return [
            (name, np.array(layer.kink_state(), copy=True))
            for name, layer in net.layers.items()
            if hasattr(type(layer), "kink_state")
        ]

    return probe


def reseed_dropout(net: MultiLayerNet, seed: int) -> None:
    for i, layer in enumerate(layer for layer in net.layers.values() if isinstance(layer, Dropout)):
        layer.rng = np.random.default_rng(seed + i)


def biases_before_batchnorm(net: MultiLayerNet) -> list[str]:
    """Biases whose gradient is exactly zero: batch norm subtracts the batch mean right after."""
    return [f"b{i}" for i in range(1, net.hidden_layer_num + 1)] if net.use_batchnorm else []


def check_net(net: MultiLayerNet, x, t, seed: int = 0) -> None:
    """Backprop against central differences of the training-mode loss, over every param."""
    reseed_dropout(net, seed)
    grads = net.gradient(x, t)
    assert list(grads) == list(net.params)

    def f() -> float:
        reseed_dropout(net, seed)
        return float(net.loss(x, t, train_flg=True))

    zero = biases_before_batchnorm(net)
    checked = {k: v for k, v in net.params.items() if k not in zero}
    report = compare(f, checked, grads, kink_probe=kink_probe(net))
    assert report.ok
    # A relative error means nothing for a gradient that is zero: there both sides must be
    # round-off (analytic) and central-difference noise (numerical).
    if zero:
        report = compare(
            f, {k: net.params[k] for k in zero}, grads, rtol=np.inf, kink_probe=kink_probe(net)
        )
        for key in zero:
            assert np.abs(grads[key]).max() < 1e-14, key
            assert report[key].max_abs_error < 1e-9, key


@pytest.fixture
def batch(rng):
    return rng.normal(size=(6, 5)), rng.integers(0, 3, 6)


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_gradient_check_activations(batch, activation):
    net = MultiLayerNet(5, [4, 4], 3, activation=activation, rng=np.random.default_rng(0))
    check_net(net, *batch)


def test_gradient_check_weight_decay(batch):
    net = MultiLayerNet(5, [4], 3, weight_decay_lambda=0.3, rng=np.random.default_rng(1))
    check_net(net, *batch)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_gradient_check_batchnorm(batch, activation):
    net = MultiLayerNet(
        5, [4, 4], 3, activation=activation, use_batchnorm=True, rng=np.random.default_rng(2)
    )
    for key in net.params:  # move gamma and beta away from 1 and 0
        if key.startswith(("gamma", "beta")):
            net.params[key] += np.random.default_rng(3).normal(0, 0.5, net.params[key].shape)
    check_net(net, *batch)


def test_gradient_check_dropout(batch):
    net = MultiLayerNet(
        5, [6, 6], 3, use_dropout=True, dropout_ratio=0.3, rng=np.random.default_rng(4)
    )
    check_net(net, *batch, seed=11)


def test_gradient_check_everything(batch):
    net = MultiLayerNet(
        5,
        [4, 4],
        3,
        activation="sigmoid",
        weight_init_std="xavier",
        weight_decay_lambda=0.1,
        use_batchnorm=True,
        use_dropout=True,
        dropout_ratio=0.2,
        rng=np.random.default_rng(5),
    )
    check_net(net, *batch, seed=3)


def test_numerical_gradient_method_and_buffers_restored(batch):
    net = MultiLayerNet(
        5,
        [3],
        3,
        activation="tanh",
        use_batchnorm=True,
        weight_decay_lambda=0.05,
        rng=np.random.default_rng(6),
    )
    grads = net.gradient(*batch)
    before = {k: v.copy() for k, v in net.buffers.items()}
    numerical = net.numerical_gradient(*batch)
    for k, v in net.buffers.items():
        np.testing.assert_array_equal(v, before[k])
    for key in net.params:
        error = np.abs(grads[key] - numerical[key]).max()
        if key in biases_before_batchnorm(net):
            assert error < 1e-9, key
        else:
            assert error <= 1e-7 * np.abs(numerical[key]).max(), key


def test_same_as_two_layer_net(batch):
    two = TwoLayerNet(5, 4, 3, weight_init_std=0.5, rng=np.random.default_rng(7))
    multi = MultiLayerNet(5, [4], 3, weight_init_std=0.5, rng=np.random.default_rng(7))
    for key in two.params:
        np.testing.assert_array_equal(multi.params[key], two.params[key])
    np.testing.assert_allclose(multi.loss(*batch), two.loss(*batch), rtol=1e-12)
    g2, gm = two.gradient(*batch), multi.gradient(*batch)
    for key in g2:
        np.testing.assert_allclose(gm[key], g2[key], rtol=1e-12)
    assert multi.accuracy(*batch) == two.accuracy(*batch)
    assert getattr(two, "buffers", {}) == {}


def test_layer_names_and_params():
    net = MultiLayerNet(4, [5, 6], 3, activation="tanh", use_batchnorm=True, use_dropout=True)
    assert list(net.layers) == [
        "Affine1", "BatchNorm1", "Tanh1", "Dropout1",
        "Affine2", "BatchNorm2", "Tanh2", "Dropout2",
        "Affine3",
    ]  # fmt: skip
    assert list(net.params) == [
        "W1", "b1", "gamma1", "beta1", "W2", "b2", "gamma2", "beta2", "W3", "b3",
    ]  # fmt: skip
    assert [net.params[k].shape for k in ("W1", "W2", "W3", "gamma2")] == [
        (4, 5), (5, 6), (6, 3), (6,),
    ]  # fmt: skip
    assert list(net.buffers) == ["running_mean1", "running_var1", "running_mean2", "running_var2"]
    assert net.layers["Affine2"].W is net.params["W2"]
    assert net.layers["BatchNorm1"].gamma is net.params["gamma1"]
    assert net.lastLayer is net.last_layer
    plain = MultiLayerNet(4, [], 3)
    assert list(plain.layers) == ["Affine1"] and plain.buffers == {}


@pytest.mark.parametrize(
    ("init", "std"),
    [
        ("he", np.sqrt(2 / 400)),
        ("relu", np.sqrt(2 / 400)),
        ("xavier", np.sqrt(1 / 400)),
        ("Sigmoid", np.sqrt(1 / 400)),
        (0.01, 0.01),
    ],
)
def test_weight_init(init, std):
    net = MultiLayerNet(400, [300], 2, weight_init_std=init, rng=np.random.default_rng(0))
    assert abs(net.params["W1"].std() / std - 1) < 0.02
    assert not net.params["b1"].any()


def test_weight_decay_in_loss(batch):
    plain = MultiLayerNet(5, [4], 3, rng=np.random.default_rng(8))
    decayed = MultiLayerNet(5, [4], 3, weight_decay_lambda=0.2, rng=np.random.default_rng(8))
    penalty = 0.1 * sum((plain.params[k] ** 2).sum() for k in ("W1", "W2"))
    np.testing.assert_allclose(decayed.loss(*batch), plain.loss(*batch) + penalty, rtol=1e-12)
    g, gd = plain.gradient(*batch), decayed.gradient(*batch)
    np.testing.assert_allclose(gd["W1"], g["W1"] + 0.2 * plain.params["W1"], rtol=1e-12)
    np.testing.assert_array_equal(gd["b1"], g["b1"])


def test_train_flg_controls_batchnorm_and_dropout(batch):
    x, _ = batch
    net = MultiLayerNet(
        5, [8], 3, use_batchnorm=True, use_dropout=True, rng=np.random.default_rng(9)
    )
    before = {k: v.copy() for k, v in net.buffers.items()}
    a, b = net.predict(x), net.predict(x)
    np.testing.assert_array_equal(a, b)  # evaluation is deterministic
    for k, v in net.buffers.items():
        np.testing.assert_array_equal(v, before[k])  # ... and leaves the statistics alone
    net.predict(x, train_flg=True)
    assert not np.array_equal(net.buffers["running_mean1"], before["running_mean1"])
    assert not np.array_equal(net.predict(x, train_flg=True), net.predict(x, train_flg=True))


def test_checkpoint_in_place_round_trip(batch):
    """What a trainer does: save params and buffers, keep training, copy them back in place."""
    x, t = batch
    net = MultiLayerNet(5, [8, 8], 3, use_batchnorm=True, rng=np.random.default_rng(10))
    net.predict(x, train_flg=True)
    saved = {k: v.copy() for k, v in {**net.params, **getattr(net, "buffers", {})}.items()}
    scores = net.predict(x)
    for _ in range(3):  # plain SGD, in place
        grads = net.gradient(x, t)
        for k in net.params:
            net.params[k] -= 0.1 * grads[k]
    assert not np.allclose(net.predict(x), scores)
    for d in (net.params, net.buffers):
        for k, arr in d.items():
            arr[...] = saved[k]
    np.testing.assert_array_equal(net.predict(x), scores)


def test_accuracy(batch):
    x, _ = batch
    net = MultiLayerNet(5, [4], 3, rng=np.random.default_rng(11))
    labels = net.predict(x).argmax(axis=1)
    assert net.accuracy(x, labels) == 1.0
    assert net.accuracy(x, np.eye(3)[labels]) == 1.0
    assert net.accuracy(x, (labels + 1) % 3) == 0.0


def test_float32(batch):
    x, t = batch
    net = MultiLayerNet(
        5, [4], 3, use_batchnorm=True, dtype=np.float32, rng=np.random.default_rng(12)
    )
    assert {v.dtype for v in (*net.params.values(), *net.buffers.values())} == {
        np.dtype(np.float32)
    }
    grads = net.gradient(x.astype(np.float32), t)
    assert {g.dtype for g in grads.values()} == {np.dtype(np.float32)}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(input_size=0), "input_size must be a positive integer"),
        (dict(input_size=2.5), "input_size must be a positive integer"),
        (dict(input_size=True), "input_size must be a positive integer"),
        (dict(output_size="3"), "output_size must be a positive integer"),
        (dict(hidden_size_list=[3, 0]), r"hidden_size_list\[1\] must be a positive integer"),
        (dict(hidden_size_list=7), "hidden_size_list must be a list"),
        (dict(activation="softplus"), "activation must be one of"),
        (dict(weight_init_std="glorot"), "weight_init_std must be"),
        (dict(weight_init_std=-1.0), "weight_init_std must be"),
        (dict(weight_decay_lambda=-0.1), "weight_decay_lambda must be"),
        (dict(dropout_ratio=1.0), "dropout_ratio must be in"),
        (dict(dtype=np.int32), "dtype must be a floating-point type"),
    ],
)
def test_argument_validation(kwargs, message):
    args = dict(input_size=4, hidden_size_list=[3], output_size=2) | kwargs
    with pytest.raises(ValueError, match=message):
        MultiLayerNet(**args)


def test_accepts_numpy_integers():
    net = MultiLayerNet(np.int64(4), np.array([3, 5]), 2, dropout_ratio=np.float32(0.5))
    assert net.params["W2"].shape == (3, 5) and net.hidden_size_list == [3, 5]
