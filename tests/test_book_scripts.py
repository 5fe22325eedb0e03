"""The call patterns of the book's chapter 5-8 scripts, each in a few lines (issue #15 item 2).

Each test makes the calls one of the book's scripts makes (named in the test) on chainrule's
classes, as a learner's copy of the script would after ``from common.trainer import Trainer``
etc. were pointed at chainrule; docs/results.md lists which scripts run unchanged.
"""

# The book's scripts seed and draw with the global NumPy generator: these tests do as they do.
# ruff: noqa: NPY002

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from chainrule import config
from chainrule.layers import (
    BookTrainer,
    Convolution,
    MultiLayerNet,
    MultiLayerNetExtend,
    SimpleConvNet,
    TwoLayerNet,
    shuffle_dataset,
    smooth_curve,
)
from chainrule.nn import init
from chainrule.optim import SGD, Adam


def _blobs(n=60, d=6, classes=3):
    """Separable toy data: class k's points sit around 3 * e_k."""
    t = np.arange(n) % classes
    x = np.random.randn(n, d) * 0.3
    x[np.arange(n), t] += 3.0
    return x, t


def test_trainer_with_the_books_arguments_trains_and_fills_its_lists():
    # ch06/overfit_dropout.py, ch07/train_convnet.py: Trainer(network, x, t, x, t, epochs=...,
    # mini_batch_size=..., optimizer='sgd', optimizer_param={'lr': ...}, verbose=...).
    np.random.seed(0)
    x, t = _blobs()
    net = MultiLayerNetExtend(6, [8, 8], 3, use_dropout=True, dropout_ration=0.2)
    trainer = BookTrainer(
        net,
        x,
        t,
        x[:30],
        t[:30],
        epochs=20,
        mini_batch_size=20,
        optimizer="sgd",
        optimizer_param={"lr": 0.1},
        verbose=False,
    )
    final = trainer.train()
    # 60 samples / 20 per batch = 3 steps per epoch, 20 epochs; one accuracy per epoch.
    assert trainer.max_iter == 60 and len(trainer.train_loss_list) == 60
    assert len(trainer.train_acc_list) == len(trainer.test_acc_list) == 20
    assert trainer.train_loss_list[-1] < trainer.train_loss_list[0]
    assert final > 0.9


def test_trainer_builds_the_named_optimizer_with_its_params():
    # ch08/train_deepnet.py: optimizer='Adam', optimizer_param={'lr': 0.001}; the book's
    # default is SGD with lr 0.01.
    x, t = _blobs(12)
    net = TwoLayerNet(6, 4, 3)
    adam = BookTrainer(net, x, t, x, t, optimizer="Adam", optimizer_param={"lr": 0.001})
    assert isinstance(adam.optimizer, Adam) and adam.optimizer.lr == 0.001
    default = BookTrainer(net, x, t, x, t)
    assert isinstance(default.optimizer, SGD) and default.optimizer.lr == 0.01
    with pytest.raises(ValueError, match="unknown optimizer 'adamax'"):
        BookTrainer(net, x, t, x, t, optimizer="adamax")


def test_trainer_evaluates_the_first_samples_and_prints_the_books_lines(capsys):
    # evaluate_sample_num_per_epoch=1000 in ch07/train_convnet.py: accuracy on the first
    # 1000 samples of each set, every epoch; verbose prints the book's lines.
    np.random.seed(1)
    x, t = _blobs(40)
    net = TwoLayerNet(6, 5, 3)
    calls = []
    accuracy = net.accuracy
    net.accuracy = lambda xs, ts: calls.append(len(xs)) or accuracy(xs, ts)
    BookTrainer(
        net, x, t, x, t, epochs=1, mini_batch_size=20, evaluate_sample_num_per_epoch=7
    ).train()
    assert calls == [7, 7, 40]  # one epoch's two evaluations, then the whole test set
    out = capsys.readouterr().out
    assert "train loss:" in out and "=== epoch:1, train acc:" in out
    assert "Final Test Accuracy" in out


def test_trainer_is_reproducible_under_np_random_seed(monkeypatch):
    # The book's scripts call np.random.seed(...) at the top; the run then repeats exactly.
    # (The suite seeds chainrule for every test; a learner's script has not.)
    monkeypatch.setattr(config, "_rng", init._UNSEEDED)

    def run():
        np.random.seed(3)
        x, t = _blobs(30)
        trainer = BookTrainer(
            TwoLayerNet(6, 5, 3), x, t, x, t, epochs=2, mini_batch_size=10, verbose=False
        )
        trainer.train()
        return trainer.train_loss_list

    assert run() == run()


def test_trainer_refuses_mismatched_sets():
    x, t = _blobs(12)
    with pytest.raises(ValueError, match="12 training samples but 11 labels"):
        BookTrainer(TwoLayerNet(6, 4, 3), x, t[:11], x, t)


def test_shuffle_dataset_keeps_pairs_together():
    # ch06/hyperparameter_optimization.py: x_train, t_train = shuffle_dataset(x_train, t_train)
    np.random.seed(0)
    x = np.arange(20.0).reshape(10, 2)
    t = np.arange(10)
    xs, ts = shuffle_dataset(x, t)
    assert not np.array_equal(ts, t)
    assert sorted(ts.tolist()) == list(range(10))
    np.testing.assert_array_equal(xs, x[ts])
    with pytest.raises(ValueError, match="10 samples but 9 labels"):
        shuffle_dataset(x, t[:9])


def test_smooth_curve_keeps_the_length_and_smooths_noise():
    # ch06/optimizer_compare_mnist.py: plt.plot(x, smooth_curve(train_loss[key]))
    rng = np.random.default_rng(0)
    curve = np.linspace(2.0, 0.5, 200) + rng.normal(0, 0.2, 200)
    smooth = smooth_curve(curve)
    assert smooth.shape == curve.shape
    assert np.diff(smooth).std() < np.diff(curve).std() / 3
    # a straight line stays straight away from the mirrored ends
    line = np.linspace(0.0, 1.0, 50)
    np.testing.assert_allclose(smooth_curve(line)[10:-10], line[10:-10], atol=1e-12)
    with pytest.raises(ValueError, match="at least 11 points"):
        smooth_curve([1.0, 2.0])


def test_convolution_with_a_scalar_bias_as_apply_filter_builds_it():
    # ch07/apply_filter.py: Convolution(w, b=0) with one filter w of shape (1, 1, 5, 5).
    rng = np.random.default_rng(0)
    w = rng.normal(size=(1, 1, 5, 5))
    img = rng.random((1, 1, 12, 12))
    out = Convolution(w, 0).forward(img)
    with_array = Convolution(w, np.zeros(1)).forward(img)
    np.testing.assert_array_equal(out, with_array)
    layer = Convolution(np.ones((3, 1, 2, 2)), 0.5)
    y = layer.forward(np.zeros((2, 1, 4, 4)))
    np.testing.assert_array_equal(y, np.full((2, 3, 3, 3), 0.5))
    layer.backward(np.ones_like(y))
    np.testing.assert_array_equal(layer.db, np.full(3, 18.0))  # 2 images x 3 x 3 positions


def test_the_books_optimizer_compare_loop_on_multi_layer_net():
    # ch06/optimizer_compare_mnist.py / weight_init_compare.py: for each optimizer,
    # grads = net.gradient(x, t); opt.update(net.params, grads); loss = net.loss(x, t).
    np.random.seed(0)
    x, t = _blobs(40)
    for opt in (SGD(), Adam(), Adam(variant="book")):
        net = MultiLayerNet(input_size=6, hidden_size_list=[10, 10], output_size=3)
        first = net.loss(x, t)
        for _ in range(30):
            opt.update(net.params, net.gradient(x, t))
        assert net.loss(x, t) < first


def test_simple_conv_net_saves_and_loads_as_train_convnet_then_visualize_filter_do(tmp_path):
    # ch07/train_convnet.py: network.save_params("params.pkl"); ch07/visualize_filter.py:
    # a new SimpleConvNet(), network.load_params("params.pkl").
    conv = {"filter_num": 3, "filter_size": 5, "pad": 0, "stride": 1}
    a = SimpleConvNet(input_dim=(1, 10, 10), conv_param=conv, hidden_size=4, output_size=3)
    b = SimpleConvNet(input_dim=(1, 10, 10), conv_param=conv, hidden_size=4, output_size=3)
    os.chdir(tmp_path)
    a.save_params("params.pkl")
    b.load_params("params.pkl")
    for key, value in a.params.items():
        np.testing.assert_array_equal(b.params[key], value)
    assert Path("params.pkl").read_bytes()[:2] == b"PK"  # a ZIP of .npy arrays, not a pickle


def test_load_mnist_takes_the_books_positional_and_keyword_arguments():
    # ch07/train_convnet.py: load_mnist(flatten=False); ch05: load_mnist(normalize=True,
    # one_hot_label=True); the book's order is (normalize, flatten, one_hot_label).
    from chainrule.datasets import load_mnist

    root = Path(os.environ.get("CHAINRULE_DATA", "/nonexistent"))
    if not (root / "mnist").is_dir():
        pytest.skip("real MNIST not available (set CHAINRULE_DATA to the shared data folder)")
    (x, t), (xt, tt) = load_mnist(True, False, True)
    assert x.shape == (60000, 1, 28, 28) and t.shape == (60000, 10)
    assert xt.shape == (10000, 1, 28, 28) and tt.shape == (10000, 10)
    assert 0.0 <= x.min() and x.max() <= 1.0
    (x2, t2), _ = load_mnist(normalize=False, flatten=True, one_hot_label=False)
    assert x2.shape == (60000, 784) and x2.dtype == np.uint8 and t2.shape == (60000,)
    np.testing.assert_array_equal(t.argmax(axis=1), t2)
