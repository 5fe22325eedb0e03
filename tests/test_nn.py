"""Tests for chainrule.nn (Module, Parameter, layers, MLP) and the batch_norm function."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import chainrule
from chainrule import Tensor, eval_mode, nn
from chainrule import functions as F
from chainrule.gradcheck import check_function, compare
from chainrule.layers import BatchNormalization, MultiLayerNet, TwoLayerNet
from chainrule.optim import SGD, Adam


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(2024)


# ---------------------------------------------------------------- batch_norm on Tensors


def test_batch_norm_autograd_gradient_check(rng):
    state = F.BatchNormState()
    x, gamma, beta = rng.normal(1.0, 2.0, (5, 3)), rng.normal(size=3), rng.normal(size=3)
    check_function(lambda x, g, b: F.batch_norm(x, g, b, state, train=True), x, gamma, beta)


def test_batch_norm_eval_gradient_check(rng):
    state = F.BatchNormState(3)
    state.running_mean[...] = rng.normal(size=3)
    state.running_var[...] = rng.uniform(0.5, 2.0, 3)
    x, gamma, beta = rng.normal(size=(4, 3)), rng.normal(size=3), rng.normal(size=3)
    check_function(lambda x, g, b: F.batch_norm(x, g, b, state, train=False), x, gamma, beta)
    with eval_mode():  # train=None follows chainrule.Config.train
        y = F.batch_norm(x, gamma, beta, state)
    expected = gamma * (x - state.running_mean) / np.sqrt(state.running_var + 1e-5) + beta
    np.testing.assert_allclose(y.data, expected, rtol=1e-12)


@pytest.mark.parametrize("train", [True, False])
def test_batch_norm_per_channel_images(rng, train):
    state = F.BatchNormState(2)
    x = rng.normal(2.0, 3.0, (3, 2, 3, 2))
    gamma, beta = rng.normal(size=2), rng.normal(size=2)
    check_function(lambda x, g, b: F.batch_norm(x, g, b, state, train=train), x, gamma, beta)
    y = F.batch_norm(x, gamma, beta, F.BatchNormState(), train=True).data
    axes = (0, 2, 3)
    xhat = (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(x.var(axis=axes, keepdims=True) + 1e-5)
    np.testing.assert_allclose(y, gamma[:, None, None] * xhat + beta[:, None, None], rtol=1e-12)


def test_book_layer_and_autograd_share_the_math(rng):
    x, gamma, beta = rng.normal(size=(6, 4)), rng.normal(size=4), rng.normal(size=4)
    dout = rng.standard_normal((6, 4))
    layer = BatchNormalization(gamma, beta)
    out = layer.forward(x)
    dx = layer.backward(dout)
    xt, gt, bt = Tensor(x), Tensor(gamma), Tensor(beta)
    y = F.batch_norm(xt, gt, bt, F.BatchNormState())
    y.backward(dout)
    np.testing.assert_array_equal(y.data, out)
    np.testing.assert_array_equal(xt.grad, dx)
    np.testing.assert_array_equal(gt.grad, layer.dgamma)
    np.testing.assert_array_equal(bt.grad, layer.dbeta)


def test_batch_norm_records_its_backward_for_second_order():
    # Double backprop through batch norm (checked numerically in test_double_backward.py).
    x = Tensor(np.random.default_rng(0).normal(size=(3, 2)))
    y = F.batch_norm(x, Tensor(np.ones(2)), Tensor(np.zeros(2)), F.BatchNormState())
    (y * y * y).sum().backward(create_graph=True)
    assert isinstance(x.grad, Tensor) and x.grad.creator is not None


# ---------------------------------------------------------------- Parameter and Module


class Affine2(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(3, 4, rng=np.random.default_rng(0), dtype=np.float64)
        self.scale = nn.Parameter(np.ones(4))
        self.act = nn.Tanh()
        self.fc2 = nn.Linear(4, 2, rng=np.random.default_rng(1), dtype=np.float64)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x) * self.scale))


def test_parameter():
    data = np.zeros(3)
    p = nn.Parameter(data, name="w")
    assert isinstance(p, Tensor) and p.requires_grad and p.data is data
    assert repr(p) == "Parameter([0. 0. 0.], name='w')"
    with pytest.raises(TypeError, match="floating"):
        nn.Parameter(np.arange(3))


def test_registration_in_assignment_order():
    m = Affine2()
    names = [name for name, _ in m.named_parameters()]
    assert names == ["scale", "fc1.W", "fc1.b", "fc2.W", "fc2.b"]
    assert m.parameters()[0] is m.scale
    assert list(m.children()) == [m.fc1, m.act, m.fc2]
    assert [name for name, _ in m.named_modules()] == ["", "fc1", "act", "fc2"]
    m.scale = None  # rebinding to a non-parameter unregisters it
    assert "scale" not in dict(m.named_parameters())
    m.extra = nn.Parameter(np.zeros(1))
    del m.extra
    assert "extra" not in dict(m.named_parameters())


def test_shared_parameters_listed_once():
    a = nn.Linear(2, 2)
    model = nn.Sequential(a, nn.ReLU(), a)
    assert len(model.parameters()) == 2
    Adam(params=model.parameters())  # the optimizer rejects duplicates: there are none


def test_forgetting_super_init_is_explained():
    class Bad(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(np.zeros(1))

    with pytest.raises(RuntimeError, match=r"super\(\).__init__\(\)"):
        Bad()


def test_zero_grad_and_backward(rng):
    m = Affine2()
    F.softmax_cross_entropy(m(rng.normal(size=(5, 3))), np.array([0, 1, 1, 0, 1])).backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())


def test_train_eval_flags(rng):
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), nn.BatchNorm1d(4))
    x = rng.normal(size=(8, 4)).astype(np.float32)
    assert model.training and all(m.training for _, m in model.named_modules())
    assert model.eval() is model
    assert not any(m.training for _, m in model.named_modules())
    running = model[2].running_mean.copy()
    a, b = model(x).data, model(x).data
    np.testing.assert_array_equal(a, b)  # no dropout, running statistics
    np.testing.assert_array_equal(model[2].running_mean, running)
    model.train()
    assert model[1](x).data.tolist() != x.tolist()
    model(x)
    assert not np.array_equal(model[2].running_mean, running)
    with eval_mode():  # the global switch also turns evaluation on
        np.testing.assert_array_equal(model[1](x).data, x)
    assert chainrule.Config.train


def test_state_dict_round_trip(rng):
    model = nn.MLP([3, 5, 2], batchnorm=True, rng=np.random.default_rng(0), dtype=np.float64)
    model(rng.normal(size=(6, 3)))  # move the running statistics
    state = model.state_dict()
    assert list(state) == [
        "0.W", "0.b", "1.gamma", "1.beta", "3.W", "3.b", "1.running_mean", "1.running_var",
    ]  # fmt: skip
    assert state["0.W"] is not model[0].W.data  # a snapshot
    np.testing.assert_array_equal(state["1.running_mean"], model[1].running_mean)

    other = nn.MLP([3, 5, 2], batchnorm=True, rng=np.random.default_rng(1), dtype=np.float64)
    W, rm = other[0].W.data, other[1].running_mean
    other.load_state_dict(state)
    assert other[0].W.data is W and other[1].running_mean is rm  # copied in place
    assert other[1].state.running_mean is rm
    x = rng.normal(size=(4, 3))
    model.eval(), other.eval()
    np.testing.assert_array_equal(other(x).data, model(x).data)


def test_load_state_dict_errors_name_keys_and_shapes():
    model = nn.MLP([3, 5, 2], batchnorm=True, rng=np.random.default_rng(0))
    state = model.state_dict()
    W = model[0].W.data.copy()

    bad = dict(state, **{"0.W": np.zeros((5, 3))})
    bad["3.b"] = np.ones(2)
    with pytest.raises(ValueError, match=r"'0.W' has shape \(5, 3\) in the state but \(3, 5\)"):
        model.load_state_dict(bad)
    np.testing.assert_array_equal(model[0].W.data, W)  # nothing was copied
    assert not model[3].b.data.any()

    missing = {k: v for k, v in state.items() if k != "1.running_var"}
    with pytest.raises(ValueError, match=r"missing keys \['1.running_var'\]"):
        model.load_state_dict(missing)
    with pytest.raises(ValueError, match=r"unexpected keys \['extra'\]"):
        model.load_state_dict(dict(state, extra=np.zeros(1)))


# ---------------------------------------------------------------- layers


def test_linear(rng):
    layer = nn.Linear(6, 3, rng=rng)
    assert layer.W.dtype == np.float32 and layer.W.shape == (6, 3) and not layer.b.data.any()
    x = rng.normal(size=(4, 2, 3)).astype(np.float32)
    np.testing.assert_allclose(layer(x).data, x.reshape(4, 6) @ layer.W.data, rtol=1e-6)
    assert [n for n, _ in nn.Linear(2, 2, bias=False).named_parameters()] == ["W"]
    assert repr(layer) == "Linear(6, 3, bias=True)  # W (6, 3), b (3,): 21 parameters"


@pytest.mark.parametrize(
    ("init", "std"), [("he", 0.05), ("xavier", np.sqrt(0.5) * 0.05), (0.1, 0.1)]
)
def test_linear_init(init, std):
    layer = nn.Linear(800, 400, init=init, rng=np.random.default_rng(0))
    assert abs(layer.W.data.std() / std - 1) < 0.01


def test_linear_default_rng_follows_chainrule_seed():
    chainrule.seed(5)
    a = nn.Linear(3, 3).W.data
    chainrule.seed(5)
    np.testing.assert_array_equal(nn.Linear(3, 3).W.data, a)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: nn.Linear(0, 3), "in_features must be a positive integer, got 0"),
        (lambda: nn.Linear(3, 2.0), "out_features must be a positive integer"),
        (lambda: nn.Linear(3, 2, init="glorot"), "init must be"),
        (lambda: nn.Linear(3, 2, dtype=np.int64), "dtype must be a floating-point type"),
        (lambda: nn.Dropout(1.0), "p must be in"),
        (lambda: nn.BatchNorm1d(-1), "num_features must be a positive integer"),
        (lambda: nn.MLP([3]), "sizes must be a list of at least 2 positive integers"),
        (lambda: nn.MLP([3, 0, 2]), r"sizes\[1\] must be a positive integer"),
        (lambda: nn.MLP([3, 2], activation="gelu"), "activation must be one of"),
        (lambda: nn.MLP([3, 2], dropout=-0.1), "dropout must be in"),
        (lambda: nn.MLP([3, 2], init=-1), "init must be"),
    ],
)
def test_validation(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_sequential_indexing():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    assert len(model) == 3 and list(model)[1] is model[1] and model[-1] is model[2]
    tail = model[1:]
    assert isinstance(tail, nn.Sequential) and tail[1] is model[2]
    assert tail.parameters() == model[2].parameters()


def test_sequential_rejects_non_modules():
    with pytest.raises(TypeError, match="argument 1 must be a Module"):
        nn.Sequential(nn.ReLU(), F.relu)


@pytest.mark.parametrize(
    ("module", "fn"),
    [
        (nn.ReLU(), F.relu),
        (nn.Sigmoid(), F.sigmoid),
        (nn.Tanh(), F.tanh),
        (nn.LeakyReLU(0.2), lambda x: F.leaky_relu(x, 0.2)),
    ],
)
def test_activations_call_the_functions(rng, module, fn):
    x = rng.normal(size=(3, 4))
    np.testing.assert_array_equal(module(x).data, fn(x).data)


def test_flatten_and_dropout_gradients(rng):
    x = Tensor(rng.normal(size=(2, 3, 2, 2)))
    y = nn.Flatten()(x)
    assert y.shape == (2, 12)
    y.backward(np.arange(24.0).reshape(2, 12))
    np.testing.assert_array_equal(x.grad, np.arange(24.0).reshape(2, 3, 2, 2))

    drop = nn.Dropout(0.5, rng=np.random.default_rng(0))
    x = Tensor(np.ones((4, 50)))
    y = drop(x)
    y.backward(np.ones((4, 50)))
    np.testing.assert_array_equal(x.grad, y.data)  # dx = mask / (1 - p), like the output
    assert set(np.unique(y.data)) == {0.0, 2.0}


def test_batchnorm1d_matches_book_layer(rng):
    bn = nn.BatchNorm1d(4, momentum=0.8, dtype=np.float64)
    bn.gamma.data[...] = rng.normal(size=4)
    book = BatchNormalization(bn.gamma.data.copy(), bn.beta.data.copy(), momentum=0.8)
    x, dout = rng.normal(size=(5, 4)), rng.standard_normal((5, 4))
    xt = Tensor(x)
    y = bn(xt)
    y.backward(dout)
    np.testing.assert_array_equal(y.data, book.forward(x))
    np.testing.assert_array_equal(xt.grad, book.backward(dout))
    np.testing.assert_array_equal(bn.gamma.grad, book.dgamma)
    np.testing.assert_array_equal(bn.running_var, book.running_var)
    assert dict(bn.named_buffers()) == {
        "running_mean": bn.running_mean,
        "running_var": bn.running_var,
    }


# ---------------------------------------------------------------- MLP and equivalences


def test_mlp_structure():
    model = nn.MLP([4, 8, 8, 3], activation="tanh", batchnorm=True, dropout=0.2)
    kinds = [type(m).__name__ for m in model]
    assert kinds == [
        "Linear", "BatchNorm1d", "Tanh", "Dropout",
        "Linear", "BatchNorm1d", "Tanh", "Dropout",
        "Linear",
    ]  # fmt: skip
    assert len(model) == 9 and model[-1].W.shape == (8, 3)
    assert "(1): BatchNorm1d(8, momentum=0.9, eps=1e-05)" in repr(model)


def test_same_loss_and_gradients_as_two_layer_net(rng):
    net = TwoLayerNet(5, 6, 3, weight_init_std=0.3, rng=np.random.default_rng(0))
    model = nn.Sequential(
        nn.Linear(5, 6, dtype=np.float64), nn.ReLU(), nn.Linear(6, 3, dtype=np.float64)
    )
    model[0].W.data[...], model[0].b.data[...] = net.params["W1"], net.params["b1"]
    model[2].W.data[...], model[2].b.data[...] = net.params["W2"], net.params["b2"]
    x, t = rng.normal(size=(7, 5)), rng.integers(0, 3, 7)
    loss = F.softmax_cross_entropy(model(x), t)
    loss.backward()
    np.testing.assert_allclose(loss.data, net.loss(x, t), rtol=1e-12)
    grads = net.gradient(x, t)
    for p, key in zip(model.parameters(), ("W1", "b1", "W2", "b2")):
        np.testing.assert_allclose(p.grad, grads[key], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_same_as_multi_layer_net_with_batchnorm(rng, dropout):
    kwargs = dict(activation="sigmoid", rng=np.random.default_rng(3))
    net = MultiLayerNet(
        5,
        [6, 4],
        3,
        use_batchnorm=True,
        use_dropout=bool(dropout),
        dropout_ratio=dropout or 0.5,
        **kwargs,
    )
    model = nn.MLP([5, 6, 4, 3], batchnorm=True, dropout=dropout, dtype=np.float64, **kwargs)
    # The same weights in both: parameters pair up in order; BatchNorm1d i+1 is module 1 + i*step.
    state = dict(zip([name for name, _ in model.named_parameters()], net.params.values()))
    step = 4 if dropout else 3
    for i in range(2):
        for stat in ("running_mean", "running_var"):
            state[f"{1 + i * step}.{stat}"] = net.buffers[f"{stat}{i + 1}"]
    model.load_state_dict(state)
    drops = [m for m in model if isinstance(m, nn.Dropout)]
    book_drops = [layer for layer in net.layers.values() if type(layer).__name__ == "Dropout"]
    for i, (d, b) in enumerate(zip(drops, book_drops)):
        d.rng, b.rng = np.random.default_rng(i), np.random.default_rng(i)
    x, t = rng.normal(size=(6, 5)), rng.integers(0, 3, 6)
    loss = F.softmax_cross_entropy(model(x), t)
    loss.backward()
    for i, (d, b) in enumerate(zip(drops, book_drops)):
        d.rng, b.rng = np.random.default_rng(i), np.random.default_rng(i)
    grads = net.gradient(x, t)
    np.testing.assert_allclose(loss.data, net.last_layer.loss, rtol=1e-12)
    for p, key in zip(model.parameters(), net.params):
        np.testing.assert_allclose(p.grad, grads[key], rtol=1e-10, atol=1e-15, err_msg=key)
    for name, array in model.named_buffers():
        i = int(name.split(".")[0]) // step + 1
        np.testing.assert_allclose(array, net.buffers[f"{name.split('.')[1]}{i}"], rtol=1e-12)
    model.eval()
    np.testing.assert_allclose(model(x).data, net.predict(x), rtol=1e-12)


@pytest.mark.parametrize("activation", ["tanh", "leaky_relu"])
def test_mlp_gradient_check(rng, activation):
    model = nn.MLP(
        [4, 5, 3],
        activation=activation,
        batchnorm=True,
        dtype=np.float64,
        rng=np.random.default_rng(4),
    )
    model[0].b.data[...] = rng.normal(size=5)
    model[1].gamma.data[...] = rng.normal(1.0, 0.3, 5)
    x, t = rng.normal(size=(6, 4)), rng.integers(0, 3, 6)

    def f() -> float:
        return float(F.softmax_cross_entropy(model(x), t).data)

    F.softmax_cross_entropy(model(x), t).backward()
    named = dict(model.named_parameters())
    checked = {k: p.data for k, p in named.items() if k != "0.b"}
    compare(f, checked, {k: p.grad for k, p in named.items()})
    # The bias right before batch norm has a zero gradient: the mean subtraction removes it.
    assert np.abs(named["0.b"].grad).max() < 1e-14


# ---------------------------------------------------------------- training


def test_adam_step_end_to_end(rng):
    model = nn.MLP([4, 16, 3], batchnorm=True, dropout=0.1, rng=np.random.default_rng(5))
    opt = Adam(lr=0.01, params=model.parameters())
    x = rng.normal(size=(32, 4)).astype(np.float32)
    t = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0)
    before = [p.data.copy() for p in model.parameters()]
    ids = [id(p.data) for p in model.parameters()]
    losses = []
    for _ in range(30):
        loss = F.softmax_cross_entropy(model(x), t)
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(float(loss.data))
    assert all(p.grad is None for p in model.parameters())
    assert [id(p.data) for p in model.parameters()] == ids  # updated in place
    assert all(p.dtype == np.float32 for p in model.parameters())
    assert all(not np.array_equal(p.data, b) for p, b in zip(model.parameters(), before))
    assert losses[-1] < 0.6 * losses[0]


def test_no_graph_leaks_after_a_training_step(rng):
    model = nn.MLP([4, 8, 3], batchnorm=True, dropout=0.2, rng=np.random.default_rng(6))
    opt = SGD(lr=0.1, params=model.parameters())
    x, t = rng.normal(size=(5, 4)).astype(np.float32), np.array([0, 1, 2, 0, 1])
    gc.collect()
    gc.disable()  # freed by reference counting alone: the graph has no cycles
    try:
        hidden = model[0](x)
        node = weakref.ref(hidden.creator)
        h = weakref.ref(hidden)
        loss = F.softmax_cross_entropy(model[1:](hidden), t)
        del hidden
        loss.backward()
        opt.step()
        opt.zero_grad()
        assert h() is not None  # still part of the graph held by the loss
        del loss
        assert h() is None and node() is None
    finally:
        gc.enable()
