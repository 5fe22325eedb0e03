"""Code written for the book runs with chainrule's networks (issue #15 item 2)."""

# The book's scripts call np.random.seed: these tests do what they do.
# ruff: noqa: NPY002

from __future__ import annotations

import pickle
import zipfile

import numpy as np
import pytest

import chainrule
from chainrule import config
from chainrule.gradcheck import numerical_gradient
from chainrule.layers import (
    DeepConvNet,
    MultiLayerNet,
    MultiLayerNetExtend,
    SimpleConvNet,
    TwoLayerNet,
)
from chainrule.layers.network import BookDropout
from chainrule.nn import init


def _nets(seed):
    rng = np.random.default_rng(seed)
    small_conv = {"filter_num": 2, "filter_size": 3}
    return {
        "two": TwoLayerNet(16, 5, 3, rng=rng),
        "extend": MultiLayerNetExtend(16, [5, 4], 3, use_batchnorm=True, rng=rng),
        "simple": SimpleConvNet((1, 4, 4), small_conv, 5, 3, rng=rng),
        "deep": DeepConvNet((1, 12, 12), hidden_size=5, output_size=3, rng=rng),
    }


def _input(name):
    shape = (6, 1, 12, 12) if name == "deep" else (6, 16)
    return np.random.default_rng(1).standard_normal(shape)


@pytest.mark.parametrize("name", ["two", "extend", "simple", "deep"])
def test_save_params_and_load_params_restore_the_network(name, tmp_path):
    net, other = _nets(0)[name], _nets(1)[name]
    x, t = _input(name), np.array([0, 1, 2, 0, 1, 2])
    net.loss_and_grads(x, t)  # moves batch-norm running statistics away from their start
    path = tmp_path / "params.pkl"  # the book's file name: the content is still no pickle
    net.save_params(path)
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
    assert "manifest.json" in names and all(n.endswith(".npy") for n in names[1:])
    arrays = {k: id(v) for k, v in other.params.items()}
    other.load_params(path)
    assert {k: id(v) for k, v in other.params.items()} == arrays  # copied in place
    np.testing.assert_array_equal(other.predict(x), net.predict(x))
    for key, value in net.buffers.items():
        np.testing.assert_array_equal(other.buffers[key], value)


def test_load_params_refuses_another_network(tmp_path):
    path = tmp_path / "two.ckpt"
    TwoLayerNet(16, 5, 3).save_params(path)
    net = TwoLayerNet(16, 6, 3)
    before = net.params["W1"].copy()
    with pytest.raises(ValueError, match=r"params/W1 has shape \(16, 5\) in the file"):
        net.load_params(path)
    np.testing.assert_array_equal(net.params["W1"], before)  # nothing copied
    with pytest.raises(ValueError, match="missing params/W3"):
        MultiLayerNet(16, [5, 3], 3).load_params(path)


def test_load_params_reads_npz_and_refuses_pickles(tmp_path):
    net = SimpleConvNet((1, 4, 4), {"filter_num": 2, "filter_size": 3}, 5, 3)
    saved = {k: np.full_like(v, 0.5) for k, v in net.params.items()}
    np.savez(tmp_path / "params.npz", **saved)
    net.load_params(tmp_path / "params.npz")
    assert all((v == 0.5).all() for v in net.params.values())
    pickled = tmp_path / "params.pkl"
    pickled.write_bytes(pickle.dumps(saved))
    with pytest.raises(ValueError, match="never unpickles a file") as e:
        net.load_params(pickled)
    assert "np.savez('params.npz'" in str(e.value)
    (tmp_path / "junk.bin").write_bytes(b"not an archive")
    with pytest.raises(ValueError, match=r"not a chainrule checkpoint or \.npz file"):
        net.load_params(tmp_path / "junk.bin")
    with pytest.raises(FileNotFoundError):
        net.load_params(tmp_path / "absent.npz")


def test_multi_layer_net_extend_takes_the_books_keywords():
    net = MultiLayerNetExtend(
        input_size=784,
        hidden_size_list=[100, 100],
        output_size=10,
        activation="relu",
        weight_init_std="relu",
        weight_decay_lambda=0.1,
        use_dropout=True,
        dropout_ration=0.2,
        use_batchnorm=True,
    )
    assert isinstance(net, MultiLayerNet)
    assert net.dropout_ratio == 0.2 and net.use_batchnorm and net.weight_init_std == "he"
    assert list(net.layers)[:4] == ["Affine1", "BatchNorm1", "Relu1", "Dropout1"]
    assert MultiLayerNet(4, [3], 2, use_dropout=True, dropout_ration=0.3).dropout_ratio == 0.3
    with pytest.raises(ValueError, match="not both"):
        MultiLayerNet(4, [3], 2, dropout_ratio=0.1, dropout_ration=0.3)


@pytest.mark.parametrize("name", ["two", "extend", "simple", "deep"])
def test_label_columns_work_everywhere(name):
    net = _nets(0)[name]
    x, t = _input(name), np.array([0, 1, 2, 0, 1, 2])
    column = t.reshape(-1, 1)
    assert float(net.loss(x, column)) == float(net.loss(x, t))
    assert net.accuracy(x, column) == net.accuracy(x, t)
    grads = net.gradient(x, column)
    assert set(grads) == set(net.params)


def test_numpy_global_seed_reproduces_the_weights(monkeypatch):
    # The suite seeds chainrule for every test; a learner's script has not.
    monkeypatch.setattr(config, "_rng", init._UNSEEDED)
    np.random.seed(0)
    a = TwoLayerNet(8, 4, 3)
    m1 = MultiLayerNetExtend(8, [4], 3, use_dropout=True)
    np.random.seed(0)
    b = TwoLayerNet(8, 4, 3)
    m2 = MultiLayerNetExtend(8, [4], 3, use_dropout=True)
    np.testing.assert_array_equal(a.params["W1"], b.params["W1"])
    np.testing.assert_array_equal(m1.params["W2"], m2.params["W2"])
    x = np.ones((5, 8))
    np.testing.assert_array_equal(m1.predict(x, train_flg=True), m2.predict(x, train_flg=True))
    c = TwoLayerNet(8, 4, 3)  # the global state moved on
    assert not np.array_equal(a.params["W1"], c.params["W1"])
    # chainrule.seed and rng= take precedence over NumPy's global state
    chainrule.seed(3)
    np.random.seed(0)
    d = TwoLayerNet(8, 4, 3)
    chainrule.seed(3)
    np.random.seed(1)
    e = TwoLayerNet(8, 4, 3)
    np.testing.assert_array_equal(d.params["W1"], e.params["W1"])
    f = TwoLayerNet(8, 4, 3, rng=np.random.default_rng(9))
    g = TwoLayerNet(8, 4, 3, rng=np.random.default_rng(9))
    np.testing.assert_array_equal(f.params["W1"], g.params["W1"])


def test_batchnorm_eps_switch():
    assert MultiLayerNet(4, [3], 2, use_batchnorm=True).layers["BatchNorm1"].state.eps == 1e-5
    book = MultiLayerNetExtend(4, [3], 2, use_batchnorm=True, batchnorm_eps=1e-6)
    assert book.layers["BatchNorm1"].state.eps == 1e-6
    with pytest.raises(ValueError, match="batchnorm_eps must be a finite positive number"):
        MultiLayerNet(4, [3], 2, batchnorm_eps=0)


def test_books_dropout_scales_at_test_time():
    x = np.random.default_rng(0).standard_normal((50, 6))
    ours = MultiLayerNet(6, [40], 3, use_dropout=True, rng=np.random.default_rng(4))
    book = MultiLayerNet(
        6, [40], 3, use_dropout=True, inverted_dropout=False, rng=np.random.default_rng(4)
    )
    assert type(book.layers["Dropout1"]) is BookDropout
    # evaluation: the book's network sees the hidden units times (1 - ratio)
    h = ours.layers["Relu1"].forward(ours.layers["Affine1"].forward(x))
    np.testing.assert_allclose(
        book.layers["Dropout1"].forward(h, train_flg=False), 0.5 * h, rtol=1e-15
    )
    # training: the same mask; kept units unscaled
    out_ours = ours.layers["Dropout1"].forward(h)
    out_book = book.layers["Dropout1"].forward(h)
    np.testing.assert_allclose(out_book, 0.5 * out_ours, rtol=1e-15)
    assert set(np.unique(out_book[h > 0] / h[h > 0]).round(12)) <= {0.0, 1.0}


def test_books_dropout_gradient_matches_numerical():
    layer = BookDropout(0.3, rng=np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((4, 5))
    dout = np.random.default_rng(2).standard_normal((4, 5))
    layer.forward(x)
    mask = layer.mask.copy()

    def f(_):
        return float((x * mask * dout).sum())  # the book's train-mode forward with that mask

    np.testing.assert_allclose(layer.backward(dout), numerical_gradient(f, x), rtol=1e-7)
    layer.forward(x, train_flg=False)
    np.testing.assert_allclose(layer.backward(dout), 0.7 * dout, rtol=1e-15)


def test_deep_conv_net_books_dropout_switch():
    x = np.random.default_rng(0).standard_normal((2, 1, 12, 12))
    kw = {"input_dim": (1, 12, 12), "hidden_size": 6, "output_size": 3}
    ours = DeepConvNet(**kw, rng=np.random.default_rng(2))
    book = DeepConvNet(**kw, inverted_dropout=False, rng=np.random.default_rng(2))
    assert isinstance(book.layers["Dropout1"], BookDropout)
    # evaluation: two dropout layers, each scaling by 1 - 0.5
    np.testing.assert_allclose(book.predict(x), 0.25 * ours.predict(x), rtol=1e-12, atol=1e-15)
    loss, grads = book.loss_and_grads(x, np.array([0, 2]))
    assert np.isfinite(loss) and set(grads) == set(book.params)
