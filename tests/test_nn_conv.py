"""The nn conv modules (Conv2d, MaxPool2d, AvgPool2d, BatchNorm2d) and the autograd twins of
the book's SimpleConvNet and DeepConvNet.

Oracles: central differences (float64, random upstream gradient, kinks detected and
excluded), the book's layers and networks run on the same weights and batch, hand-computed
batch statistics, and real MNIST for a short training run.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import chainrule
from chainrule import Tensor, layers, nn
from chainrule import functions as F
from chainrule.gradcheck import compare
from chainrule.optim import Adam
from chainrule.training import Trainer

sys.path.insert(0, str(Path(__file__).parent))
import fake_cupy


def f64(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape)


def kink_probe(output: list) -> list:
    """The kink states (max-pool winners, ReLU signs) of every op in the last graph."""
    states, stack, seen = [], [output[0].creator], set()
    while stack:
        fn = stack.pop()
        if fn is None or id(fn) in seen:
            continue
        seen.add(id(fn))
        if hasattr(type(fn), "kink_state"):
            states.append((f"{type(fn).__name__}@{fn.generation}", np.array(fn.kink_state())))
        stack.extend(getattr(x, "creator", None) for x in fn.inputs)
    return states


def check_module(module: nn.Module, x: np.ndarray, rng: np.random.Generator) -> None:
    """Central differences of ``sum(module(x) * dout)`` (random ``dout``) against autograd, for
    the input and every parameter, in float64."""
    last: list = []

    def run() -> Tensor:
        xt = Tensor(x)
        last[:] = [module(xt), xt]
        return last[0]

    y = run()
    dout = rng.standard_normal(y.shape)
    module.zero_grad()
    y.backward(dout)
    named = dict(module.named_parameters())
    arrays = {"x": x, **{k: p.data for k, p in named.items()}}
    grads = {"x": last[1].grad, **{k: p.grad for k, p in named.items()}}

    def f() -> float:
        return float((run().data * dout).sum())

    compare(f, arrays, grads, kink_probe=lambda: kink_probe(last))


# ----------------------------------------------------------------------------- modules


@pytest.mark.parametrize(
    "kernel, stride, pad, bias",
    [(3, 1, 0, True), (3, 1, 1, False), ((2, 3), (2, 1), (1, 0), True), (1, 1, 0, True)],
)
def test_conv2d_gradient_check(rng, kernel, stride, pad, bias):
    conv = nn.Conv2d(2, 3, kernel, stride, pad, bias=bias, rng=rng, dtype=np.float64)
    if bias:
        conv.b.data[...] = rng.standard_normal(3)
    check_module(conv, f64(rng, 2, 2, 6, 6), rng)


@pytest.mark.parametrize(
    "pool, shape",
    [
        (nn.MaxPool2d(2), (2, 3, 4, 6)),
        (nn.MaxPool2d(3, stride=2, pad=1), (2, 3, 5, 7)),  # overlapping windows, padding
        (nn.AvgPool2d(2), (2, 3, 4, 6)),
        (nn.AvgPool2d((2, 3), stride=1, pad=1), (2, 3, 5, 6)),
    ],
)
def test_pool_gradient_check(rng, pool, shape):
    check_module(pool, f64(rng, *shape), rng)


@pytest.mark.parametrize("train", [True, False])
def test_batchnorm2d_gradient_check(rng, train):
    bn = nn.BatchNorm2d(3, momentum=0.5, dtype=np.float64)
    bn.gamma.data[...] = rng.normal(1.0, 0.3, 3)
    bn.beta.data[...] = rng.standard_normal(3)
    bn.running_mean[...] = rng.standard_normal(3)
    bn.running_var[...] = rng.uniform(0.5, 2.0, 3)
    bn.train(train)
    check_module(bn, f64(rng, 4, 3, 2, 3), rng)


def test_conv_and_pool_run_the_book_layers_ops(rng):
    conv = nn.Conv2d(2, 4, 3, stride=1, pad=1, rng=rng, dtype=np.float64)
    conv.b.data[...] = rng.standard_normal(4)
    book = layers.Convolution(conv.W.data.copy(), conv.b.data.copy(), stride=1, pad=1)
    pool, book_pool = nn.MaxPool2d(2), layers.Pooling(2, 2, stride=2)
    x = f64(rng, 3, 2, 6, 6)
    xt = Tensor(x)
    y = pool(conv(xt))
    expected = book_pool.forward(book.forward(x))
    assert_array_equal(y.data, expected)
    dout = rng.standard_normal(y.shape)
    y.backward(dout)
    assert_array_equal(xt.grad, book.backward(book_pool.backward(dout)))
    assert_array_equal(conv.W.grad, book.dW)
    assert_array_equal(conv.b.grad, book.db)
    assert_array_equal(nn.AvgPool2d(2)(x).data, layers.Pooling(2, 2, mode="avg").forward(x))


def test_conv2d_init_shapes_and_dtype():
    chainrule.seed(5)
    a = nn.Conv2d(8, 16, 3)
    chainrule.seed(5)
    b = nn.Conv2d(8, 16, 3)
    assert_array_equal(a.W.data, b.W.data)  # the default rng follows chainrule.seed
    assert a.W.shape == (16, 8, 3, 3) and a.b.shape == (16,)
    assert a.W.dtype == np.float32 and a.b.dtype == np.float32
    assert not a.b.data.any()
    assert a.W.data.std() == pytest.approx(np.sqrt(2 / 72), rel=0.05)  # He: fan_in C*FH*FW
    x = nn.Conv2d(8, 16, (3, 5), init="xavier", rng=np.random.default_rng(0))
    assert x.W.shape == (16, 8, 3, 5)
    assert x.W.data.std() == pytest.approx(np.sqrt(1 / 120), rel=0.05)
    assert nn.Conv2d(1, 2, 2, init=0.5, bias=False).b is None
    assert [k for k, _ in nn.Conv2d(1, 2, 2, bias=False).named_parameters()] == ["W"]
    out = nn.Conv2d(3, 2, 2)(np.ones((1, 3, 4, 4), dtype=np.float32))
    assert out.dtype == np.float32 and out.shape == (1, 2, 3, 3)


def test_reprs():
    assert repr(nn.Conv2d(1, 16, 3, pad=1)) == (
        "Conv2d(1, 16, kernel_size=(3, 3), stride=(1, 1), pad=(1, 1))"
        "  # W (16, 1, 3, 3), b (16,): 160 parameters"
    )
    assert repr(nn.Conv2d(3, 4, (1, 2), stride=(2, 1), bias=False)) == (
        "Conv2d(3, 4, kernel_size=(1, 2), stride=(2, 1), pad=(0, 0), bias=False)"
        "  # W (4, 3, 1, 2): 24 parameters"
    )
    assert repr(nn.MaxPool2d(3, 2, 1)) == "MaxPool2d(kernel=(3, 3), stride=(2, 2), pad=(1, 1))"
    assert repr(nn.AvgPool2d((2, 1))) == "AvgPool2d(kernel=(2, 1), stride=(2, 1), pad=(0, 0))"
    assert repr(nn.BatchNorm2d(8)) == (
        "BatchNorm2d(8, momentum=0.9, eps=1e-05)  # gamma (8,), beta (8,): 16 parameters"
    )
    text = repr(nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.MaxPool2d(2)))
    assert "(0): Conv2d(1, 2, kernel_size=(3, 3)" in text and "(1): BatchNorm2d(2," in text
    assert "(Conv1): Conv2d(1, 16, kernel_size=(3, 3)" in repr(nn.DeepConvNet())
    assert "(Pool1): MaxPool2d(kernel=(2, 2)" in repr(nn.SimpleConvNet())
    book = nn.DeepConvNet(inverted_dropout=False, dropout_ratio=0.25)
    assert "(Dropout2): BookDropout(p=0.25)" in repr(book)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: nn.Conv2d(0, 2, 3), "Conv2d: in_channels must be a positive integer, got 0"),
        (lambda: nn.Conv2d(1, 2.5, 3), "Conv2d: out_channels must be a positive integer"),
        (lambda: nn.Conv2d(1, 2, (3, 0)), "Conv2d: kernel_size must be a positive integer"),
        (lambda: nn.Conv2d(1, 2, 3, stride=0), "Conv2d: stride must be a positive integer"),
        (lambda: nn.Conv2d(1, 2, 3, pad=-1), "Conv2d: pad must be a non-negative integer"),
        (lambda: nn.Conv2d(1, 2, 3, pad=(1, 1, 1)), "Conv2d: pad must be"),
        (lambda: nn.Conv2d(1, 2, True), "Conv2d: kernel_size must be"),
        (lambda: nn.Conv2d(1, 2, 3, init="gauss"), "Conv2d: init must be 'he', 'xavier'"),
        (lambda: nn.Conv2d(1, 2, 3, dtype=np.int32), "Conv2d: dtype must be a floating-point"),
        (lambda: nn.MaxPool2d(0), "MaxPool2d: kernel must be a positive integer"),
        (lambda: nn.MaxPool2d(2, pad=2), "MaxPool2d: pad (2, 2) must be smaller than the window"),
        (lambda: nn.AvgPool2d(2, stride="1"), "AvgPool2d: stride must be"),
        (lambda: nn.BatchNorm2d(-3), "BatchNorm2d: num_features must be a positive integer"),
        (lambda: nn.BatchNorm2d(3, momentum=2.0), "momentum must be in [0, 1]"),
        (lambda: nn.SimpleConvNet((1, 28)), "SimpleConvNet: input_dim must be (C, H, W)"),
        (lambda: nn.SimpleConvNet(conv_param={"size": 3}), "SimpleConvNet: conv_param has unknown"),
        (lambda: nn.SimpleConvNet(conv_param={"filter_size": 4}), "SimpleConvNet: the pooling"),
        (lambda: nn.SimpleConvNet(weight_init_std=-1), "SimpleConvNet: weight_init_std must be"),
        (lambda: nn.SimpleConvNet(dtype=int), "SimpleConvNet: dtype must be a floating-point"),
        (lambda: nn.DeepConvNet(hidden_size=0), "DeepConvNet: hidden_size must be a positive"),
        (lambda: nn.DeepConvNet(dropout_ratio=1.0), "DeepConvNet: dropout_ratio must be in [0, 1)"),
        (lambda: nn.DeepConvNet((1, 5, 5)), "DeepConvNet: pooling 1 (2x2, stride 2) needs an even"),
    ],
)
def test_bad_arguments_are_named(make, message):
    with pytest.raises(ValueError) as info:
        make()
    assert message in str(info.value)


@pytest.mark.parametrize(
    "module, shape, message",
    [
        (nn.Conv2d(3, 2, 3), (2, 1, 5, 5),
         "Conv2d(3, 2, kernel_size=(3, 3), stride=(1, 1), pad=(0, 0)): "
         "input must have shape (N, 3, H, W), got (2, 1, 5, 5)"),
        (nn.Conv2d(3, 2, 3), (3, 5, 5), "got (3, 5, 5)"),
        (nn.Conv2d(1, 2, 3, stride=2), (1, 1, 6, 6),
         "conv2d: output size (H + 2*pad - FH) / stride + 1"),
        (nn.MaxPool2d(2), (4, 4),
         "MaxPool2d(kernel=(2, 2), stride=(2, 2), pad=(0, 0)): input must have shape (N, C, H, W)"),
        (nn.AvgPool2d(2), (1, 1, 3, 3), "avg_pool2d: output size"),
        (nn.BatchNorm2d(4), (2, 3, 2, 2),
         "BatchNorm2d(4, momentum=0.9, eps=1e-05): input must have shape (N, 4, H, W)"),
        (nn.SimpleConvNet(), (2, 1, 27, 28),
         "SimpleConvNet: input of shape (2, 1, 27, 28) does not match input_dim (1, 28, 28)"),
    ],
)  # fmt: skip
def test_bad_input_is_named(module, shape, message):
    with pytest.raises(ValueError) as info:
        module(np.zeros(shape, dtype=np.float32))
    assert message in str(info.value)


def test_batchnorm2d_normalizes_each_channel_and_switches_modes(rng):
    bn = nn.BatchNorm2d(3, momentum=0.8, dtype=np.float64)
    bn.gamma.data[...] = [1.0, 2.0, 0.5]
    bn.beta.data[...] = [0.0, -1.0, 3.0]
    x = rng.normal(2.0, 3.0, (5, 3, 4, 2))
    mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    expected = (x - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5)
    expected = expected * bn.gamma.data[:, None, None] + bn.beta.data[:, None, None]
    assert_allclose(bn(x).data, expected, rtol=1e-12, atol=1e-12)  # training: batch statistics
    assert_allclose(bn.running_mean, 0.2 * mean, rtol=1e-12)
    assert_allclose(bn.running_var, 0.8 + 0.2 * var, rtol=1e-12)
    assert dict(bn.named_buffers()) == {
        "running_mean": bn.running_mean,
        "running_var": bn.running_var,
    }

    stats = bn.running_mean.copy(), bn.running_var.copy()
    x2 = rng.standard_normal((2, 3, 4, 2))
    by_running = (x2 - stats[0][:, None, None]) / np.sqrt(stats[1][:, None, None] + 1e-5)
    by_running = by_running * bn.gamma.data[:, None, None] + bn.beta.data[:, None, None]
    bn.eval()
    assert_allclose(bn(x2).data, by_running, rtol=1e-12)  # evaluation: running statistics
    assert_array_equal(bn.running_mean, stats[0])  # ... left as they were
    bn.train()
    with chainrule.eval_mode():
        assert_allclose(bn(x2).data, by_running, rtol=1e-12)
    assert_array_equal(bn.running_var, stats[1])
    bn(x2)
    assert not np.array_equal(bn.running_var, stats[1])
    one = bn(rng.standard_normal((1, 3, 1, 1)))  # one value per channel: the book's layer
    assert_allclose(one.data.ravel(), bn.beta.data)  # normalizes it to 0, so out = beta


def test_batchnorm2d_is_the_book_layer_per_channel(rng):
    # The book's BatchNormalization per channel is the same op: identical numbers.
    bn = nn.BatchNorm2d(2, dtype=np.float64)
    bn.gamma.data[...] = rng.normal(1.0, 0.2, 2)
    book = layers.BatchNormalization(bn.gamma.data.copy(), bn.beta.data.copy())
    x, dout = f64(rng, 3, 2, 3, 3), f64(rng, 3, 2, 3, 3)
    xt = Tensor(x)
    y = bn(xt)
    y.backward(dout)
    assert_array_equal(y.data, book.forward(x))
    assert_array_equal(xt.grad, book.backward(dout))
    assert_array_equal(bn.gamma.grad, book.dgamma)
    assert_array_equal(bn.running_var, book.running_var)


def test_state_dict_round_trip_with_buffers(rng):
    def make(seed: int) -> nn.Sequential:
        r = np.random.default_rng(seed)
        return nn.Sequential(
            nn.Conv2d(1, 3, 3, pad=1, rng=r), nn.BatchNorm2d(3), nn.ReLU(), nn.AvgPool2d(2),
            nn.Flatten(), nn.Linear(12, 2, rng=r),
        )  # fmt: skip

    a, b = make(0), make(1)
    x = rng.standard_normal((4, 1, 4, 4)).astype(np.float32)
    a(x)  # moves the running statistics away from (0, 1)
    state = a.state_dict()
    assert list(state) == ["0.W", "0.b", "1.gamma", "1.beta", "5.W", "5.b",
                           "1.running_mean", "1.running_var"]  # fmt: skip
    b.load_state_dict(state)
    a.eval(), b.eval()
    assert_array_equal(a(x).data, b(x).data)
    state["1.running_var"][...] = 7.0  # a snapshot: copies, not the live arrays
    assert not (a[1].running_var == 7.0).any()


# ----------------------------------------------------------------------------- the twins


def tiny_simple(cls, seed=0, **kw):
    conv = {"filter_num": 3, "filter_size": 3, "pad": 1}
    rng = np.random.default_rng(seed)
    return cls((2, 8, 8), conv, 5, 4, weight_init_std=0.3, rng=rng, **kw)


def tiny_deep(cls, seed=0, dropout_ratio=0.5, **kw):
    small = [{"filter_num": n} for n in (2, 2, 3, 3, 4, 4)]
    return cls((1, 12, 12), *small, hidden_size=6, output_size=3, dropout_ratio=dropout_ratio,
               rng=np.random.default_rng(seed), **kw)  # fmt: skip


def twin_loss_and_grads(twin: nn.Module, x, t) -> tuple[float, dict[str, np.ndarray]]:
    twin.zero_grad()
    loss = F.softmax_cross_entropy(twin(x), t)
    loss.backward()
    return float(loss.data), {k: p.grad for k, p in twin.named_parameters()}


def assert_same_grads(grads: dict, book_grads: dict) -> None:
    assert list(grads) == list(book_grads)
    for key, g in book_grads.items():
        assert_allclose(grads[key], g, rtol=1e-12, atol=1e-14 * np.abs(g).max(), err_msg=key)


@pytest.mark.parametrize("make, name", [(tiny_simple, "SimpleConvNet"), (tiny_deep, "DeepConvNet")])
def test_same_arguments_same_seed_same_weights(make, name):
    book, twin = make(getattr(layers, name)), make(getattr(nn, name))
    assert [k for k, _ in twin.named_parameters()] == list(book.params)
    for key, p in twin.named_parameters():
        assert p.dtype == book.params[key].dtype == np.float64
        assert_array_equal(p.data, book.params[key], err_msg=key)


def test_simple_conv_net_twin_same_loss_and_gradients(rng):
    book, twin = tiny_simple(layers.SimpleConvNet, seed=1), tiny_simple(nn.SimpleConvNet, seed=2)
    twin.load_state_dict(book.params)  # one line: the book's params keys are the twin's names
    for p in book.params.values():  # non-zero biases, so their gradients mean something
        p += 0.05 * rng.standard_normal(p.shape)
    twin.load_state_dict(book.params)
    x, t = rng.standard_normal((5, 2, 8, 8)), np.array([0, 3, 1, 2, 1])
    loss, grads = twin_loss_and_grads(twin, x, t)
    book_grads = book.gradient(x, t)
    assert loss == pytest.approx(float(book.last_layer.loss), rel=1e-12)
    assert_same_grads(grads, book_grads)
    # flattened images and one-hot labels, as the book's network takes them
    loss_flat, _ = twin_loss_and_grads(twin, x.reshape(5, -1), np.eye(4)[t])
    assert loss_flat == pytest.approx(loss, rel=1e-14)


def test_simple_conv_net_twin_gradient_check(rng):
    twin = tiny_simple(nn.SimpleConvNet)
    for _, p in twin.named_parameters():
        p.data += 0.05 * rng.standard_normal(p.shape)
    x, t = rng.standard_normal((3, 2, 8, 8)), np.array([0, 3, 1])
    last: list = []

    def f() -> float:
        last[:] = [F.softmax_cross_entropy(twin(x), t)]
        return float(last[0].data)

    _, grads = twin_loss_and_grads(twin, x, t)
    params = {k: p.data for k, p in twin.named_parameters()}
    compare(f, params, grads, kink_probe=lambda: kink_probe(last))


@pytest.mark.parametrize(
    "options",
    [
        {"dropout_ratio": 0.0},
        {"dropout_ratio": 0.5},
        {"dropout_ratio": 0.3, "inverted_dropout": False, "weight_init_std": "xavier"},
    ],
)
def test_deep_conv_net_twin_same_loss_and_gradients_with_identical_masks(rng, options):
    book = tiny_deep(layers.DeepConvNet, seed=1, **options)
    twin = tiny_deep(nn.DeepConvNet, seed=2, **options)
    for p in book.params.values():
        p += 0.05 * rng.standard_normal(p.shape)
    twin.load_state_dict(book.params)
    x, t = rng.standard_normal((4, 1, 12, 12)), np.array([0, 2, 1, 1])
    # The same masks: both networks draw them from their own rng, Dropout1 then Dropout2.
    masks_state = np.random.default_rng(99).bit_generator.state
    book.rng.bit_generator.state = twin.rng.bit_generator.state = masks_state
    book_grads = book.gradient(x, t)  # training mode: dropout on
    loss, grads = twin_loss_and_grads(twin, x, t)
    assert loss == pytest.approx(float(book.last_layer.loss), rel=1e-12)
    assert_same_grads(grads, book_grads)
    assert book.rng.bit_generator.state == twin.rng.bit_generator.state  # as many draws
    if options["dropout_ratio"]:  # the masks did act: a different draw gives a different loss
        assert twin_loss_and_grads(twin, x, t)[0] != pytest.approx(loss, rel=1e-6)
    # evaluation: no masks (the book's dropout scales by 1 - ratio instead)
    assert_allclose(twin.predict(x), book.predict(x), rtol=1e-12)


def test_twins_speak_the_model_protocol_with_the_books_keys(rng):
    book = tiny_deep(layers.DeepConvNet, seed=1, dropout_ratio=0.4)
    twin = tiny_deep(nn.DeepConvNet, seed=1, dropout_ratio=0.4)
    assert twin.engine == "autograd" and book.engine == "layers"
    assert list(twin.params) == list(book.params) and twin.buffers == {}
    assert all(twin.params[k] is getattr(twin, f"Conv{k[1]}").W.data for k in ("W1", "W6"))
    x, t = rng.standard_normal((4, 1, 12, 12)), np.array([[0], [2], [1], [1]])  # (N, 1) labels
    state = np.random.default_rng(5).bit_generator.state
    book.rng.bit_generator.state = twin.rng.bit_generator.state = state
    loss, grads = twin.loss_and_grads(x, t)
    book_loss, book_grads = book.loss_and_grads(x, t)
    assert loss == pytest.approx(book_loss, rel=1e-12)
    assert_same_grads(grads, book_grads)
    twin.weight_decay = 0.1  # the protocol's L2 term counts the kernels and weight matrices
    twin.rng.bit_generator.state = state
    decayed, _ = twin.loss_and_grads(x, t)
    l2 = sum((W**2).sum() for k, W in twin.params.items() if k.startswith("W"))
    assert decayed == pytest.approx(loss + 0.05 * l2, rel=1e-12)


def test_default_rng_follows_chainrule_seed_as_the_books():
    chainrule.seed(7)
    twin = nn.SimpleConvNet(conv_param={"filter_num": 2}, hidden_size=3)
    chainrule.seed(7)
    book = layers.SimpleConvNet(conv_param={"filter_num": 2}, hidden_size=3)
    for key, p in twin.named_parameters():
        assert_array_equal(p.data, book.params[key], err_msg=key)


def test_deep_conv_net_twin_train_and_eval(rng):
    book, twin = tiny_deep(layers.DeepConvNet), tiny_deep(nn.DeepConvNet)
    x = rng.standard_normal((4, 1, 12, 12))
    assert twin.training
    assert not np.array_equal(twin(x).data, twin(x).data)  # training: fresh masks each call
    twin.eval()
    assert not twin.Dropout1.training and not twin.Conv1.training
    assert_array_equal(twin(x).data, twin(x).data)
    assert_allclose(twin(x).data, book.predict(x), rtol=1e-12)  # book: eval by default
    twin.train()
    with chainrule.eval_mode():
        assert_allclose(twin(x).data, book.predict(x), rtol=1e-12)
    state = twin.rng.bit_generator.state
    twin.eval()(x)
    assert twin.rng.bit_generator.state == state  # evaluation draws no masks


def test_twin_state_dict_round_trip_and_book_names():
    a, b = tiny_deep(nn.DeepConvNet, seed=0), tiny_deep(nn.DeepConvNet, seed=1)
    state = a.state_dict()
    assert list(state) == [f"{p}{i}" for i in range(1, 9) for p in ("W", "b")]
    assert state["W1"].shape == (2, 1, 3, 3) and state["W7"].shape == (16, 6)
    b.load_state_dict(state)
    for (ka, pa), (kb, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert ka == kb
        assert_array_equal(pa.data, pb.data)
    assert a.Conv1.W is dict(a.named_parameters())["W1"]  # the layer's own parameter
    with pytest.raises(ValueError, match=r"missing keys \['b8'\]"):
        b.load_state_dict({k: v for k, v in state.items() if k != "b8"})
    # The reverse direction: twin weights into a book network.
    book = tiny_deep(layers.DeepConvNet, seed=3)
    for key, value in a.state_dict().items():
        book.params[key][...] = value
    x = np.random.default_rng(0).standard_normal((2, 1, 12, 12))
    assert_allclose(a.eval()(x).data, book.predict(x), rtol=1e-12)


def test_twins_default_to_the_books_architecture():
    simple = nn.SimpleConvNet(rng=np.random.default_rng(0))
    shapes = {k: p.shape for k, p in simple.named_parameters()}
    assert shapes == {"W1": (30, 1, 5, 5), "b1": (30,), "W2": (4320, 100), "b2": (100,),
                      "W3": (100, 10), "b3": (10,)}  # fmt: skip
    assert list(simple._modules) == ["Conv1", "Relu1", "Pool1", "Flatten",
                                     "Affine1", "Relu2", "Affine2"]  # fmt: skip
    deep = nn.DeepConvNet(rng=np.random.default_rng(0))
    names = [n for n in deep._modules if n != "Flatten"]
    assert names == list(layers.DeepConvNet(rng=np.random.default_rng(0)).layers)
    assert deep(np.zeros((2, 784))).shape == (2, 10)
    f32 = nn.SimpleConvNet(dtype=np.float32)
    assert all(p.dtype == np.float32 for p in f32.parameters())
    scores = f32(np.zeros((2, 784), dtype=np.float32))
    assert scores.dtype == np.float32
    F.softmax_cross_entropy(scores, np.array([1, 2])).backward()
    assert all(p.grad.dtype == np.float32 for p in f32.parameters())


@pytest.mark.parametrize("kind", ["deep", "bn"])
def test_on_a_device_the_modules_compute_what_they_compute_on_the_cpu(rng, kind):
    # The CuPy stand-in: device arrays that refuse to mix with NumPy, so a host array left in a
    # module (or created by it) fails here as it would on a GPU.
    def make() -> nn.Module:
        if kind == "deep":
            return tiny_deep(nn.DeepConvNet, seed=3, dropout_ratio=0.3, inverted_dropout=False)
        f = {"rng": np.random.default_rng(3), "dtype": np.float64}
        return nn.Sequential(
            nn.Conv2d(1, 3, 3, pad=1, **f), nn.BatchNorm2d(3, dtype=np.float64), nn.ReLU(),
            nn.AvgPool2d(2), nn.Conv2d(3, 2, 2, **f), nn.MaxPool2d(3, stride=1, pad=1),
            nn.Flatten(), nn.Linear(8, 3, **f),
        )  # fmt: skip

    x, t = rng.standard_normal((4, 1, 12, 12)), np.array([0, 2, 1, 1])
    if kind == "bn":
        x = x[:, :, :6, :6]
    cpu = make()  # the same seeds: the same weights and dropout masks
    loss_cpu, grads_cpu = cpu.loss_and_grads(x, t)
    with fake_cupy.installed():
        gpu = make().to("cuda")
        loss_gpu, grads_gpu = gpu.loss_and_grads(chainrule.to_device(x, "cuda"), t)
        assert all(type(g).__module__ == "cupy" for g in grads_gpu.values())
        grads_gpu = {k: chainrule.to_numpy(g) for k, g in grads_gpu.items()}
        buffers = {k: chainrule.to_numpy(b) for k, b in gpu.buffers.items()}
        scores = chainrule.to_numpy(gpu.predict(chainrule.to_device(x, "cuda")))
    assert loss_gpu == loss_cpu
    for key, g in grads_cpu.items():
        assert_array_equal(grads_gpu[key], g, err_msg=key)
    for key, b in cpu.buffers.items():
        assert_array_equal(buffers[key], b, err_msg=key)
    assert_array_equal(scores, cpu.predict(x))


def load_mnist_or_skip():
    from mnist_data import load_real_mnist  # $CHAINRULE_DATA, then ../shared/data; or skip

    return load_real_mnist(flatten=True)


@pytest.mark.slow
def test_simple_conv_net_twin_learns_an_mnist_slice(rng):
    (x_train, t_train), (x_test, t_test) = load_mnist_or_skip()
    x, t = x_train[:1000], t_train[:1000]  # flattened (N, 784) float32
    x_val, t_val = x_test[:500], t_test[:500]
    model = nn.SimpleConvNet(hidden_size=50, rng=rng, dtype=np.float32)
    opt = Adam(lr=0.002, params=model.parameters())

    def val_loss() -> float:
        with chainrule.no_grad(), chainrule.eval_mode():
            return float(F.softmax_cross_entropy(model(x_val), t_val).data)

    before = val_loss()
    for _ in range(60):
        idx = rng.choice(len(x), 50, replace=False)
        F.softmax_cross_entropy(model(x[idx]), t[idx]).backward()
        opt.step()
        opt.zero_grad()
    after = val_loss()
    assert after < 0.5 * before, (before, after)
    with chainrule.no_grad():
        accuracy = float((model.eval()(x_val).data.argmax(axis=1) == t_val).mean())
    assert accuracy > 0.7


@pytest.mark.slow
def test_simple_conv_net_twin_trains_saves_and_resumes_bit_identically(tmp_path):
    (x_train, t_train), (x_test, t_test) = load_mnist_or_skip()
    data = x_train[:500], t_train[:500], x_test[:100], t_test[:100]

    def trainer(iterations: int) -> Trainer:
        model = nn.SimpleConvNet(
            conv_param={"filter_num": 8}, hidden_size=20, rng=np.random.default_rng(0),
            dtype=np.float32,
        )  # fmt: skip
        opt = Adam(model.parameters(), lr=1e-3)  # PyTorch's order
        return Trainer(model, opt, *data, iterations=iterations, batch_size=25, progress=False)

    whole = trainer(12)
    whole.fit()
    half = trainer(6)
    half.fit()
    half.save(tmp_path / "half.npz")
    resumed = trainer(12)
    resumed.restore(tmp_path / "half.npz")
    resumed.fit()
    assert list(resumed.model.params) == ["W1", "b1", "W2", "b2", "W3", "b3"]
    for key, value in whole.model.params.items():
        assert_array_equal(resumed.model.params[key], value, err_msg=key)
    assert not np.array_equal(half.model.params["W1"], whole.model.params["W1"])
