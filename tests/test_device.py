"""The GPU code paths, checked on any machine through a stand-in for CuPy (tests/fake_cupy.py).

The stand-in keeps arrays in host memory but, like CuPy, refuses to mix them with NumPy arrays
and refuses implicit conversions, so a NumPy array leaking into device work fails here the way
it would on a GPU. Because it computes with NumPy, every result must equal the CPU run's bit for
bit. The tests at the end need the real CuPy and a GPU, and skip visibly without them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import chainrule
from chainrule import backend
from chainrule import functions as F

sys.path.insert(0, str(Path(__file__).parent))
import fake_cupy


@pytest.fixture
def fake_gpu():
    with fake_cupy.installed() as module:
        yield module


def on_device(a) -> bool:
    return type(a).__module__ == "cupy"


# --------------------------------------------------------------------------- the device API


def test_cpu_is_the_default_and_cuda_needs_cupy(monkeypatch):
    assert chainrule.current_device() == "cpu"
    monkeypatch.setitem(sys.modules, "cupy", None)  # `import cupy` raises ImportError
    with pytest.raises(backend.DeviceError, match="needs CuPy, which is not installed"):
        chainrule.use_device("cuda")
    assert chainrule.current_device() == "cpu"
    with pytest.raises(ValueError, match="unknown device 'tpu'; choose 'cpu' or 'cuda'"):
        chainrule.use_device("tpu")


def test_a_gpu_must_be_visible(fake_gpu, monkeypatch):
    monkeypatch.setattr(fake_gpu.cuda.runtime, "getDeviceCount", lambda: 0)
    with pytest.raises(backend.DeviceError, match="sees no GPU"):
        chainrule.use_device("cuda")


def test_moving_arrays_there_and_back(fake_gpu):
    a = np.arange(6.0).reshape(2, 3)
    d = chainrule.to_device(a, "cuda")
    assert on_device(d) and backend.device_of(d) == "cuda"
    assert chainrule.to_device(d, "cuda") is d
    back = chainrule.to_numpy(d)
    assert type(back) is np.ndarray and np.array_equal(back, a)
    chainrule.use_device("gpu")
    assert chainrule.current_device() == "cuda"
    assert on_device(chainrule.to_device(a))
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.asarray(d)  # the stand-in is as strict as CuPy


def test_move_arrays_keeps_shared_arrays_shared(fake_gpu):
    from chainrule.layers import TwoLayerNet

    net = TwoLayerNet(4, 3, 2, rng=np.random.default_rng(0))
    backend.move_arrays(net, "cuda")
    assert all(on_device(v) for v in net.params.values())
    assert net.layers["Affine1"].W is net.params["W1"]  # still the very same array
    assert net.layers["Affine2"].b is net.params["b2"]
    backend.move_arrays(net, "cpu")
    assert all(type(v) is np.ndarray for v in net.params.values())
    assert net.layers["Affine1"].W is net.params["W1"]


# --------------------------------------------------------------------------- same results


def _autograd_steps(device: str, optimizer: str) -> list[np.ndarray]:
    from chainrule.nn import MLP
    from chainrule.optim import optimizer_from_name

    rng = np.random.default_rng(3)
    x, t = rng.random((16, 6)), rng.integers(0, 3, 16)
    model = MLP([6, 5, 3], activation="relu", dtype=np.float64, rng=np.random.default_rng(1))
    backend.move_arrays(model, device)
    params = list(model.parameters())
    opt = optimizer_from_name(optimizer, lr=0.1, params=params)
    xd, td = chainrule.to_device(x, device), chainrule.to_device(t, device)
    for _ in range(3):
        opt.zero_grad()
        loss = F.softmax_cross_entropy(model(xd), td)
        loss.backward()
        opt.step()
        if device == "cuda":  # everything stayed there: parameters, gradients, state, loss
            assert on_device(loss.data)
            assert all(on_device(p.data) and on_device(p.grad) for p in params)
            assert all(on_device(b) for slots in opt.state.values() for b in slots.values())
    return [chainrule.to_numpy(p.data) for p in params]


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_autograd_training_on_the_device_matches_the_cpu(fake_gpu, optimizer):
    cpu = _autograd_steps("cpu", optimizer)
    gpu = _autograd_steps("cuda", optimizer)
    for a, b in zip(cpu, gpu, strict=True):
        assert np.array_equal(a, b)


BOOK_NETS = {
    "two-layer": dict(input_size=12, hidden=[5], output_size=3),
    "mlp-bn-dropout": dict(
        model="mlp", input_size=12, hidden=[6, 5], output_size=3, batchnorm=True, dropout=0.3,
        weight_decay=0.01,
    ),
    "mlp-tanh": dict(model="mlp", input_size=12, hidden=[4], output_size=3, activation="tanh"),
    "simple-cnn": dict(model="simple-cnn", input_size=144, hidden=[6], output_size=3),
    "deep-cnn": dict(model="deep-cnn", input_size=144, hidden=[6], output_size=3),
}  # fmt: skip


def _book_gradient(device: str, options: dict) -> tuple[float, dict, float]:
    from chainrule.models import build_model, model_config

    options = dict(options)
    cfg = model_config(options.pop("model", "two-layer"), dtype="float64", **options)
    net = build_model(cfg, rng=0)
    backend.move_arrays(net, device)
    rng = np.random.default_rng(5)
    shape = (8, 1, 12, 12) if "cnn" in cfg["model"] else (8, 12)
    x, t = rng.random(shape), rng.integers(0, 3, 8)
    x, t = chainrule.to_device(x, device), chainrule.to_device(t, device)
    if hasattr(net, "layers"):
        for layer in net.layers.values():  # the same dropout masks in both runs
            if hasattr(layer, "rng"):
                layer.rng = np.random.default_rng(7)
    grads = net.gradient(x, t)
    if device == "cuda":
        assert all(on_device(g) for g in grads.values())
    loss = float(net.loss(x, t))
    return loss, {k: chainrule.to_numpy(g) for k, g in grads.items()}, net.accuracy(x, t)


@pytest.mark.parametrize("name", list(BOOK_NETS))
def test_book_networks_on_the_device_match_the_cpu(fake_gpu, name):
    loss_cpu, grads_cpu, acc_cpu = _book_gradient("cpu", BOOK_NETS[name])
    loss_gpu, grads_gpu, acc_gpu = _book_gradient("cuda", BOOK_NETS[name])
    assert loss_gpu == loss_cpu and acc_gpu == acc_cpu
    assert grads_gpu.keys() == grads_cpu.keys()
    for key in grads_cpu:
        assert np.array_equal(grads_gpu[key], grads_cpu[key]), key


def _trained(device: str, tmp_path: Path, model: str) -> tuple[dict, dict, np.ndarray]:
    """Train on (fake) ``device``, save, reload into a fresh model there; what came out."""
    from chainrule.models import build_model, model_config
    from chainrule.optim import Adam
    from chainrule.serialization import load_checkpoint
    from chainrule.training import Trainer, load_model_state, predict_scores

    rng = np.random.default_rng(11)
    centres = rng.normal(0.0, 1.0, (3, 10))
    t = rng.integers(0, 3, 240)
    x = (centres[t] + rng.normal(0.0, 1.0, (240, 10))).astype(np.float32)
    extra = {"batchnorm": True, "dropout": 0.2} if model == "mlp" else {}
    cfg = model_config(model, input_size=10, hidden=[8] * (2 if model == "mlp" else 1),
                       output_size=3, **extra)  # fmt: skip
    net = build_model(cfg, rng=0)
    backend.move_arrays(net, device)
    ckpt = tmp_path / f"{device}.ckpt"
    data = (x[:200], t[:200], x[200:], t[200:])
    options = dict(batch_size=20, epochs=2, seed=0, progress="none", checkpoint=ckpt)
    trainer = Trainer(net, Adam(lr=0.01), *data, model_config=cfg, **options)
    history = trainer.fit()
    if device == "cuda":
        assert all(on_device(v) for v in net.params.values())
    arrays, _ = load_checkpoint(ckpt)  # written from the device: plain NumPy in the file
    fresh = build_model(cfg, rng=1)
    backend.move_arrays(fresh, device)
    load_model_state(fresh, arrays)  # and back onto the device
    params = {k: chainrule.to_numpy(v) for k, v in fresh.params.items()}
    scores = predict_scores(fresh, x[200:])  # host data in, NumPy scores out
    assert type(scores) is np.ndarray
    return history, params, scores


@pytest.mark.parametrize("model", ["two-layer", "mlp"])
def test_trainer_on_the_device_matches_the_cpu(fake_gpu, tmp_path, model):
    hist_cpu, params_cpu, scores_cpu = _trained("cpu", tmp_path, model)
    hist_gpu, params_gpu, scores_gpu = _trained("cuda", tmp_path, model)
    assert np.array_equal(scores_gpu, scores_cpu)
    for key in ("train_loss", "train_acc", "test_loss", "test_acc"):
        assert hist_gpu[key] == hist_cpu[key], key
    for key in params_cpu:
        assert np.array_equal(params_gpu[key], params_cpu[key]), key


def test_mixing_devices_in_an_op_names_the_op_and_the_devices(fake_gpu):
    from chainrule import Tensor

    x = Tensor(np.ones((2, 3)))
    W = Tensor(chainrule.to_device(np.ones((3, 4)), "cuda"))
    with pytest.raises(TypeError, match=r"linear: inputs are on different devices "
                       r"\(input 0 on cpu, input 1 on cuda\)"):  # fmt: skip
        F.linear(x, W)


def test_module_to_and_build_model_on_the_current_device(fake_gpu):
    from chainrule.models import build_model, model_config
    from chainrule.nn import MLP

    model = MLP([4, 3, 2], batchnorm=True).to("cuda")
    assert all(on_device(p.data) for p in model.parameters())
    buffers = dict(model.named_buffers())
    assert buffers and all(on_device(b) for b in buffers.values())
    x = chainrule.to_device(np.random.default_rng(0).random((5, 4)), "cuda")
    before = {k: chainrule.to_numpy(b) for k, b in buffers.items()}
    model(x)  # training mode: the running statistics move, in place, on the device
    after = dict(model.named_buffers())
    assert all(after[k] is buffers[k] for k in buffers)
    assert any(not np.array_equal(chainrule.to_numpy(after[k]), before[k]) for k in before)
    with chainrule.eval_mode():
        assert on_device(model(x).data)
    chainrule.use_device("cuda")
    net = build_model(model_config("mlp", input_size=4, hidden=[3], output_size=2), rng=0)
    assert all(on_device(v) for v in net.params.values())
    assert on_device(net.layers["Affine1"].W) and net.layers["Affine1"].W is net.params["W1"]
    assert type(build_model(model_config(), rng=0, device="cpu").params["W1"]) is np.ndarray


def test_cpu_work_never_imports_cupy():
    import subprocess

    code = (
        "import sys, numpy as np, chainrule\n"
        "from chainrule.models import build_model, model_config\n"
        "from chainrule.optim import SGD\n"
        "net = build_model(model_config('mlp', input_size=6, hidden=[4], output_size=3), rng=0)\n"
        "x, t = np.ones((5, 6), np.float32), np.arange(5) % 3\n"
        "SGD(0.1).update(net.params, net.gradient(x, t))\n"
        "assert 'cupy' not in sys.modules, 'cupy was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# --------------------------------------------------------------------------- a real GPU


def _real_cupy():
    cupy = pytest.importorskip("cupy", reason="CuPy is not installed: no GPU tests here")
    if getattr(cupy, "is_fake", False):
        pytest.skip("only the CuPy stand-in is loaded")
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            pytest.skip("CuPy sees no GPU")
    except Exception as exc:  # no driver
        pytest.skip(f"CuPy cannot reach a GPU: {exc}")
    return cupy


@pytest.mark.parametrize("name", list(BOOK_NETS))
def test_real_gpu_gradients_match_the_cpu(name):
    _real_cupy()
    try:
        loss_cpu, grads_cpu, acc_cpu = _book_gradient("cpu", BOOK_NETS[name])
        loss_gpu, grads_gpu, acc_gpu = _book_gradient("cuda", BOOK_NETS[name])
    finally:
        backend.use_device("cpu")
    # float64 on both; the GPU sums in another order, so equal to rounding, not bit for bit.
    assert loss_gpu == pytest.approx(loss_cpu, rel=1e-10)
    assert acc_gpu == acc_cpu
    for key in grads_cpu:
        np.testing.assert_allclose(grads_gpu[key], grads_cpu[key], rtol=1e-8, atol=1e-12)


def test_real_gpu_autograd_and_trainer(tmp_path):
    _real_cupy()
    try:
        for a, b in zip(_autograd_steps("cpu", "adam"), _autograd_steps("cuda", "adam")):
            np.testing.assert_allclose(b, a, rtol=1e-8, atol=1e-12)
        hist_cpu, params_cpu, scores_cpu = _trained("cpu", tmp_path, "mlp")
        hist_gpu, params_gpu, scores_gpu = _trained("cuda", tmp_path, "mlp")
    finally:
        backend.use_device("cpu")
    # float32 and a different summation order: the runs drift apart a little, no more.
    np.testing.assert_allclose(hist_gpu["train_loss"], hist_cpu["train_loss"], rtol=1e-3)
    for key in params_cpu:
        if key.startswith("b") and f"gamma{key[1:]}" in params_cpu:
            # A bias that feeds batch norm has a zero gradient (the batch mean is subtracted
            # right after it) plus rounding noise, which Adam scales up to steps of about lr:
            # seen on an H200, the two runs' b1 differ by 2e-3. Both must stay that small.
            steps, lr = 2 * 200 // 20, 0.01
            assert np.abs(params_gpu[key]).max() <= steps * lr, key
            continue
        np.testing.assert_allclose(params_gpu[key], params_cpu[key], rtol=1e-2, atol=1e-3)
    np.testing.assert_allclose(scores_gpu, scores_cpu, rtol=1e-2, atol=1e-2)


def test_a_nan_gradient_on_the_device_names_the_parameter(fake_gpu):
    from chainrule.models import build_model, model_config
    from chainrule.optim import SGD
    from chainrule.training import Trainer, TrainingDiverged

    net = build_model(model_config(input_size=6, hidden=[4], output_size=3), rng=0)
    backend.move_arrays(net, "cuda")
    loss_and_grads = net.loss_and_grads

    def poisoned(x, t):  # the gradient of b2 turns NaN at the third step
        loss, grads = loss_and_grads(x, t)
        grads = dict(grads)
        poisoned.calls += 1
        if poisoned.calls == 3:
            grads["b2"] = grads["b2"] * np.nan
        return loss, grads

    poisoned.calls = 0
    net.loss_and_grads = poisoned
    rng = np.random.default_rng(0)
    x, t = rng.random((40, 6)).astype(np.float32), rng.integers(0, 3, 40)
    trainer = Trainer(net, SGD(lr=0.1), x, t, x, t, batch_size=10, epochs=2, progress="none")
    with pytest.raises(TrainingDiverged) as e:
        trainer.fit()
    assert (e.value.iteration, e.value.culprit) == (3, "b2")
    assert "3 NaN" in str(e.value)


def test_device_labels_and_state_dicts_come_back_to_the_host(fake_gpu):
    from chainrule.nn import MLP
    from chainrule.training import evaluate

    model = MLP([4, 3, 2], batchnorm=True)
    state = model.state_dict()  # on the host
    model.to("cuda")
    model.load_state_dict(state)  # host arrays into device ones
    assert all(on_device(v) for v in model.state_dict().values())
    from chainrule.models import build_model, model_config

    net = build_model(model_config(input_size=4, hidden=[3], output_size=2), rng=0)
    backend.move_arrays(net, "cuda")
    x = np.random.default_rng(0).random((6, 4))
    t = chainrule.to_device(np.array([0, 1, 0, 1, 1, 0]), "cuda")
    loss, acc = evaluate(net, x, t)  # device labels are fine too
    assert 0.0 <= acc <= 1.0 and np.isfinite(loss)
    assert "fake_cupy" not in repr(chainrule.Tensor(chainrule.to_device(x, "cuda")))
