"""The trainable-model protocol on both engines: params, buffers, loss_and_grads, predict."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule import nn
from chainrule.functions import softmax_cross_entropy
from chainrule.layers import DeepConvNet, MultiLayerNet, SimpleConvNet, TwoLayerNet


def _batch(n=6, d=5, c=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.integers(0, c, n)


def _mlp_from(net, **kw):
    """An nn.MLP holding copies of a book net's W1, b1, ... (float64)."""
    sizes = [net.params["W1"].shape[0]] + [
        net.params[f"W{i}"].shape[1] for i in range(1, len(net.params) + 1) if f"W{i}" in net.params
    ]
    mlp = nn.MLP(sizes, dtype=np.float64, rng=np.random.default_rng(99), **kw)
    for name, p in mlp.named_parameters():
        index, kind = name.split(".")
        # the i-th Linear is the book's Affine{i}; a BatchNorm1d follows the Linear it normalizes
        layer = sum(1 for m in list(mlp)[: int(index) + 1] if isinstance(m, nn.Linear))
        p.data[...] = net.params[f"{kind}{layer}"]
    return mlp


def _assert_same(book, mlp, x, t):
    loss_b, grads_b = book.loss_and_grads(x, t)
    loss_m, grads_m = mlp.loss_and_grads(x, t)
    assert isinstance(loss_b, float) and isinstance(loss_m, float)
    assert loss_m == pytest.approx(loss_b, rel=1e-12)
    assert list(grads_m) == list(mlp.params)
    assert list(grads_b) == list(book.params)
    for (name_m, g_m), (name_b, g_b) in zip(grads_m.items(), grads_b.items()):
        np.testing.assert_allclose(g_m, g_b, rtol=1e-10, atol=1e-13, err_msg=f"{name_m}/{name_b}")


def test_mlp_and_two_layer_net_agree_through_the_protocol():
    x, t = _batch()
    book = TwoLayerNet(5, 4, 3, weight_init_std=0.5, rng=np.random.default_rng(1))
    mlp = _mlp_from(book)
    _assert_same(book, mlp, x, t)
    np.testing.assert_allclose(mlp.predict(x), book.predict(x), rtol=1e-12)


def test_mlp_and_multi_layer_net_agree_with_batchnorm_and_weight_decay():
    x, t = _batch(n=8, seed=2)
    book = MultiLayerNet(
        5, [4, 6], 3, use_batchnorm=True, weight_decay_lambda=0.3, rng=np.random.default_rng(3)
    )
    mlp = _mlp_from(book, batchnorm=True)
    mlp.weight_decay = 0.3
    _assert_same(book, mlp, x, t)
    # the running statistics moved the same way, and are the protocol's buffers
    for i, name in ((1, "1"), (2, "4")):
        np.testing.assert_allclose(
            mlp.buffers[f"{name}.running_mean"], book.buffers[f"running_mean{i}"]
        )
    np.testing.assert_allclose(mlp.predict(x), book.predict(x), rtol=1e-10)


def test_module_params_are_the_live_parameter_arrays():
    mlp = nn.MLP([3, 4, 2], rng=np.random.default_rng(0))
    for (name, array), (pname, p) in zip(mlp.params.items(), mlp.named_parameters()):
        assert name == pname and array is p.data
    assert mlp.engine == "autograd" and TwoLayerNet.engine == "layers"
    assert mlp.buffers == {} and TwoLayerNet(3, 4, 2).buffers == {}


def test_module_gradients_do_not_accumulate_across_calls():
    x, t = _batch()
    mlp = nn.MLP([5, 7, 3], dtype=np.float64, rng=np.random.default_rng(0))
    _, first = mlp.loss_and_grads(x, t)
    first = {k: v.copy() for k, v in first.items()}
    _, second = mlp.loss_and_grads(x, t)
    for k in first:
        np.testing.assert_array_equal(second[k], first[k])


def test_module_predict_is_eval_mode_without_a_graph():
    x, _ = _batch()
    mlp = nn.MLP([5, 7, 3], dropout=0.5, dtype=np.float64, rng=np.random.default_rng(0))
    out1, out2 = mlp.predict(x), mlp.predict(x)
    assert isinstance(out1, np.ndarray)
    np.testing.assert_array_equal(out1, out2)  # dropout off
    assert mlp.training  # the module's own mode is left alone


def test_module_loss_fn_replaces_the_default_loss():
    x, t = _batch()

    class Doubled(nn.MLP):
        def loss_fn(self, scores, t):
            return softmax_cross_entropy(scores, t) * 2.0

    plain = nn.MLP([5, 4, 3], dtype=np.float64, rng=np.random.default_rng(5))
    doubled = Doubled([5, 4, 3], dtype=np.float64, rng=np.random.default_rng(5))
    (lp, gp), (ld, gd) = plain.loss_and_grads(x, t), doubled.loss_and_grads(x, t)
    assert ld == pytest.approx(2 * lp)
    np.testing.assert_allclose(gd["0.W"], 2 * gp["0.W"])


@pytest.mark.parametrize("engine", ["layers", "autograd"])
def test_label_columns_are_accepted(engine):
    x, t = _batch()
    model = (
        TwoLayerNet(5, 4, 3, rng=np.random.default_rng(0))
        if engine == "layers"
        else nn.MLP([5, 4, 3], dtype=np.float64, rng=np.random.default_rng(0))
    )
    loss, _ = model.loss_and_grads(x, t)
    loss_column, _ = model.loss_and_grads(x, t.reshape(-1, 1))
    assert loss_column == loss


def test_conv_nets_meet_the_protocol():
    rng = np.random.default_rng(0)
    x, t = rng.standard_normal((3, 1, 8, 8)), np.array([0, 1, 2])
    simple = SimpleConvNet((1, 8, 8), {"filter_num": 2, "filter_size": 3}, 4, 3, rng=rng)
    loss, grads = simple.loss_and_grads(x, t)
    assert loss == pytest.approx(float(simple.loss(x, t)))
    assert list(grads) == list(simple.params)
    deep = DeepConvNet(hidden_size=5, rng=np.random.default_rng(1), dropout_ratio=0.0)
    images, labels = rng.standard_normal((2, 784)), np.array([3, 4])
    loss, grads = deep.loss_and_grads(images, labels)
    assert loss == pytest.approx(float(deep.loss(images, labels)))
    assert [g.shape for g in grads.values()] == [p.shape for p in deep.params.values()]


def test_module_repr_shows_shapes_and_parameter_counts():
    text = repr(nn.MLP([784, 50, 10], rng=np.random.default_rng(0)))
    assert "(0): Linear(784, 50, bias=True)  # W (784, 50), b (50,): 39,250 parameters" in text
    assert text.endswith(")  # 39,760 parameters")
    assert repr(nn.ReLU()) == "ReLU()"


@pytest.mark.parametrize("name", ["SimpleConvNet", "DeepConvNet"])
def test_conv_twins_agree_through_the_protocol(name):
    import chainrule.layers as book_layers

    kw = {"input_dim": (1, 12, 12), "hidden_size": 6, "output_size": 3, "dtype": np.float64}
    if name == "DeepConvNet":
        kw["dropout_ratio"] = 0.0  # dropout masks aside, the two must agree exactly
    book = getattr(book_layers, name)(**kw, rng=np.random.default_rng(4))
    twin = getattr(nn, name)(**kw, rng=np.random.default_rng(5))
    for key, value in book.params.items():
        twin.params[key][...] = value
    rng = np.random.default_rng(6)
    x, t = rng.standard_normal((3, 1, 12, 12)), np.array([0, 2, 1])
    _assert_same(book, twin, x, t)
