"""Learner diagnostics: the numbers against NumPy, the Trainer hook, the pictures, the CLI."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import sys
import urllib.request

import numpy as np
import pytest

import chainrule.datasets.mnist as mnist_module
from chainrule import nn
from chainrule.cli import main
from chainrule.datasets import write_idx
from chainrule.datasets.mnist import MNIST, FileSpec
from chainrule.diagnostics import PLOT_FILES, Diagnostics, activation_layers
from chainrule.layers import MultiLayerNet, TwoLayerNet
from chainrule.optim import SGD, Adam
from chainrule.training import Trainer, TrainingDiverged

FEATURES, CLASSES = 12, 3


def blobs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    centres = np.random.default_rng(7).normal(0.0, 2.0, (CLASSES, FEATURES))
    rng = np.random.default_rng(seed)
    t = rng.integers(0, CLASSES, n)
    return centres[t] + rng.normal(0.0, 1.0, (n, FEATURES)), t


@pytest.fixture(scope="module")
def data():
    (x, t), (xt, tt) = blobs(200, 1), blobs(60, 2)
    return x, t, xt, tt


def two_layer(dtype=np.float64) -> TwoLayerNet:
    return TwoLayerNet(FEATURES, 10, CLASSES, 0.3, rng=np.random.default_rng(0), dtype=dtype)


def row(diag: Diagnostics, key: str, i: int = -1):
    return diag.history[key][i]


# --------------------------------------------------------------------------------------------
# the numbers, by hand on a model and a batch
# --------------------------------------------------------------------------------------------


def test_gradient_norms_and_the_sgd_update_ratio(data):
    x, t = data[0][:40], data[1][:40]
    net, lr = two_layer(), 0.05
    grads = net.gradient(x, t)
    before = {k: v.copy() for k, v in net.params.items()}
    SGD(lr=lr).update(net.params, grads)
    diag = Diagnostics()
    diag.record(net, grads, before=before, iteration=7, epoch=0.5, lr=lr)

    assert diag.history["iteration"] == [7] and diag.history["epoch"] == [0.5]
    for key in ("W1", "b1", "W2", "b2"):
        assert row(diag, f"grad_norm/{key}") == float(np.linalg.norm(grads[key]))
        assert row(diag, f"weight_norm/{key}") == float(np.linalg.norm(net.params[key]))
    for key in ("W1", "W2"):  # b starts at zero: no ratio for it on the first step
        expected = lr * np.linalg.norm(grads[key]) / np.linalg.norm(before[key])
        assert row(diag, f"update_ratio/{key}") == pytest.approx(expected, rel=1e-12)
    assert row(diag, "update_ratio/b1") is None and row(diag, "update_ratio/b2") is None

    # A second step: now the biases have a norm, and every list has one entry per row.
    grads = net.gradient(x, t)
    before = {k: v.copy() for k, v in net.params.items()}
    SGD(lr=lr).update(net.params, grads)
    diag.record(net, grads, before=before)
    expected = lr * np.linalg.norm(grads["b1"]) / np.linalg.norm(before["b1"])
    assert row(diag, "update_ratio/b1") == pytest.approx(expected, rel=1e-12)
    assert diag.history["iteration"] == [7, 8] and diag.history["epoch"] == [0.5, None]
    assert {len(v) for v in diag.history.values()} == {2}


def test_without_grads_or_before_the_values_are_none(data):
    net = two_layer()
    net.loss(data[0][:10], data[1][:10])
    diag = Diagnostics()
    diag.record(net)
    assert row(diag, "grad_norm/W1") is None and row(diag, "update_ratio/W1") is None
    assert row(diag, "weight_norm/W1") == float(np.linalg.norm(net.params["W1"]))


def test_dead_relu_units_are_found_when_a_bias_is_hugely_negative(data):
    rng = np.random.default_rng(0)
    x, t = rng.normal(size=(50, FEATURES)), rng.integers(0, CLASSES, 50)  # centred inputs
    net = MultiLayerNet(FEATURES, [8, 6], CLASSES, rng=rng)
    diag = Diagnostics()
    net.gradient(x, t)
    diag.record(net)
    assert row(diag, "dead_fraction/Relu1") == 0.0  # each unit fires for some samples
    net.params["b1"][:3] = -1e6  # three of the eight units can never fire
    net.gradient(x, t)
    diag.record(net)
    assert row(diag, "dead_fraction/Relu1") == 3 / 8
    keep = net.layers["Relu1"].keep
    assert row(diag, "active_fraction/Relu1") == float(keep.mean()) <= 5 / 8
    net.params["b1"][:] = -1e6  # the whole layer is dead, and so is the one after it
    net.gradient(x, t)
    diag.record(net)
    assert row(diag, "dead_fraction/Relu1") == 1.0 and row(diag, "active_fraction/Relu1") == 0.0
    relu2 = net.layers["Relu2"].keep
    assert row(diag, "dead_fraction/Relu2") == float(1 - relu2.any(axis=0).mean())


def test_histograms_count_every_output_and_leave_the_layers_as_they_were(data):
    x = data[0][:30]
    for net in (
        two_layer(),
        MultiLayerNet(FEATURES, [9, 7], CLASSES, activation="tanh", rng=np.random.default_rng(0)),
        MultiLayerNet(FEATURES, [5], CLASSES, activation="sigmoid", use_batchnorm=True),
    ):
        scores = net.predict(x)
        diag = Diagnostics(probe_batch_size=7)  # several chunks
        entry = diag.histogram(net, x, iteration=3)
        assert diag.histograms == [entry] and entry["iteration"] == 3
        assert list(entry["layers"]) == [name for name, _, _ in activation_layers(net)]
        for name, layer, kind in activation_layers(net):
            h = entry["layers"][name]
            assert h["kind"] == kind and len(h["counts"]) == len(diag.bins[kind]) - 1
            assert h["total"] == len(x) * net.params[f"b{name[-1]}"].size
            assert sum(h["counts"]) + h["zeros"] == h["total"]
            assert "forward" not in vars(layer)  # the wrapper is gone
        np.testing.assert_array_equal(net.predict(x), scores)
    # ReLU: zeros counted apart, the positive outputs binned on the log scale.
    net = two_layer()
    hidden = np.maximum(x @ net.params["W1"] + net.params["b1"], 0)
    h = Diagnostics().histogram(net, x)["layers"]["Relu1"]
    assert h["zeros"] == int(np.count_nonzero(hidden == 0))
    edges = Diagnostics().bins["relu"]
    positive = np.clip(hidden[hidden > 0], edges[0], edges[-1])
    assert h["counts"] == np.histogram(positive, bins=edges)[0].tolist()


# --------------------------------------------------------------------------------------------
# with a Trainer
# --------------------------------------------------------------------------------------------


def test_trainer_hook_records_on_schedule_with_exact_update_ratios(data):
    net, lr = two_layer(), 0.1
    diag = Diagnostics(every=4, probe_size=50)
    snapshots = {}

    def on_step(trainer, iteration, grads):
        diag.on_step(trainer, iteration, grads)
        snapshots[iteration] = {k: v.copy() for k, v in trainer.model.params.items()}

    trainer = Trainer(
        net, SGD(lr=lr), *data, batch_size=20, iterations=25, progress="none", on_step=on_step
    )
    trainer.fit()  # 10 steps an epoch
    assert diag.history["iteration"] == [4, 8, 12, 16, 20, 24, 25]
    assert diag.history["epoch"] == pytest.approx([i / 10 for i in (4, 8, 12, 16, 20, 24, 25)])
    assert diag.history["lr"] == [lr] * 7
    for i, it in enumerate(diag.history["iteration"]):
        old, new = snapshots[it - 1], snapshots[it]
        for key in ("W1", "W2", "b2"):
            ratio = np.linalg.norm(new[key] - old[key]) / np.linalg.norm(old[key])
            assert row(diag, f"update_ratio/{key}", i) == pytest.approx(ratio, rel=1e-12)
            sgd = lr * row(diag, f"grad_norm/{key}", i) / np.linalg.norm(old[key])
            assert row(diag, f"update_ratio/{key}", i) == pytest.approx(sgd, rel=1e-9)
    # Histograms after the first step, at the end of each epoch and at the last step.
    assert [h["iteration"] for h in diag.histograms] == [1, 10, 20, 25]
    assert diag.histograms[0]["layers"]["Relu1"]["total"] == 50 * 10
    assert diag.seconds > 0


def test_diagnostics_do_not_change_the_training(data):
    def train(with_diagnostics: bool):
        net = MultiLayerNet(
            FEATURES, [10, 8], CLASSES, use_batchnorm=True, use_dropout=True,
            dropout_ratio=0.2, rng=np.random.default_rng(3),
        )  # fmt: skip
        diag = Diagnostics(every=3, probe_size=40)
        trainer = Trainer(
            net, Adam(lr=0.01), *data, batch_size=20, iterations=23, progress="none",
            on_step=diag.on_step if with_diagnostics else None,
        )  # fmt: skip
        trainer.fit()
        return net, trainer, diag

    plain, plain_trainer, _ = train(False)
    watched, watched_trainer, diag = train(True)
    for key, value in plain.params.items():
        np.testing.assert_array_equal(watched.params[key], value, err_msg=key)
    for key, value in plain.buffers.items():
        np.testing.assert_array_equal(watched.buffers[key], value, err_msg=key)
    assert watched_trainer.history["test_loss"] == plain_trainer.history["test_loss"]
    assert "grad_norm/gamma1" in diag.history and "dead_fraction/Relu2" in diag.history


def test_a_diverging_run_keeps_what_was_recorded(data):
    diag = Diagnostics(every=1)
    trainer = Trainer(
        two_layer(), SGD(lr=1e30), *data, batch_size=20, iterations=50, progress="none",
        on_step=diag.on_step,
    )  # fmt: skip
    with pytest.raises(TrainingDiverged):
        trainer.fit()
    assert diag.history["iteration"]  # the steps before the failure
    text = json.dumps(diag.to_dict(), allow_nan=False)  # non-finite numbers became None
    assert "grad_norm/W1" in text


# --------------------------------------------------------------------------------------------
# JSON and pictures
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def recorded(data) -> Diagnostics:
    net = MultiLayerNet(FEATURES, [16, 12, 8], CLASSES, rng=np.random.default_rng(0))
    diag = Diagnostics(every=2, probe_size=60)
    Trainer(
        net, SGD(lr=0.1), *data, batch_size=20, iterations=30, progress="none",
        on_step=diag.on_step,
    ).fit()  # fmt: skip
    return diag


def test_to_json_round_trips_atomically(recorded, tmp_path):
    path = recorded.to_json(tmp_path / "d.json")
    loaded = json.loads(path.read_text())
    assert loaded["format"] == "chainrule-diagnostics" and loaded["every"] == 2
    assert loaded["history"] == recorded.history
    assert loaded["histograms"] == recorded.histograms
    assert [p.name for p in tmp_path.iterdir()] == ["d.json"]  # no temp file left
    again = Diagnostics.from_json(path)
    assert again.to_dict() == recorded.to_dict()
    (tmp_path / "other.json").write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match="not a chainrule diagnostics file"):
        Diagnostics.from_json(tmp_path / "other.json")


def _image(path):
    from matplotlib.image import imread

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return imread(path)[..., :3]  # RGB in [0, 1]


def _pixels_near(image, rgb, tol=0.08) -> int:
    return int(np.count_nonzero(np.abs(image - np.array(rgb) / 255).max(axis=-1) < tol))


def test_pictures_show_what_they_should(recorded, tmp_path):
    written = recorded.plot(tmp_path / "pics", title="blobs: mlp 12-16-12-8-3")
    assert [p.name for p in written] == list(PLOT_FILES)
    assert sorted(p.name for p in (tmp_path / "pics").iterdir()) == sorted(PLOT_FILES)
    blue, orange, green = (31, 119, 180), (255, 127, 14), (44, 160, 44)  # C0, C1, C2
    for path in written:
        image = _image(path)
        height, width, _ = image.shape
        assert width >= 800 and height >= 400, path.name
        ink = np.count_nonzero(image.mean(axis=-1) < 0.9)
        assert ink > 0.01 * height * width, f"{path.name} looks blank"

    # Line plots: one color per layer (W1/b1 blue, W2/b2 orange, ...), lines not dots.
    for name in ("grad_norms.png", "update_ratios.png", "dead_relu.png"):
        image = _image(tmp_path / "pics" / name)
        for color in (blue, orange, green):
            assert _pixels_near(image, color) > 200, (name, color)

    # The 1e-3 guide: a dotted dark line across the plot, unlike the solid spines and grid.
    image = _image(tmp_path / "pics" / "update_ratios.png")
    dark_rows = (image.mean(axis=-1) < 0.35).mean(axis=1)
    assert np.count_nonzero((dark_rows > 0.25) & (dark_rows < 0.75)) >= 1

    # Histograms: one panel per ReLU layer, each with the early (dark purple) and late
    # (yellow) viridis colors.
    image = _image(tmp_path / "pics" / "activations.png")
    height, width, _ = image.shape
    assert width > 1.5 * height  # three panels side by side
    for third in range(3):
        panel = image[:, third * width // 3 : (third + 1) * width // 3]
        assert _pixels_near(panel, (68, 1, 84), tol=0.15) > 50, third  # viridis(0)
        assert _pixels_near(panel, (253, 231, 37), tol=0.15) > 50, third  # viridis(1)


def test_plot_errors(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="nothing was recorded"):
        Diagnostics().plot(tmp_path)
    from chainrule.plotting import MissingDependencyError

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(MissingDependencyError, match=r"chainrule\[plot\]"):
        Diagnostics().plot(tmp_path)
    with pytest.raises(ValueError, match="every must be a positive integer"):
        Diagnostics(every=0)


# --------------------------------------------------------------------------------------------
# chainrule train --diagnostics DIR
# --------------------------------------------------------------------------------------------


@pytest.fixture
def tiny_mnist(tmp_path, monkeypatch):
    """A 200-sample MNIST look-alike in IDX files, its checksums pinned for the test."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("CHAINRULE_OFFLINE", "1")
    monkeypatch.delenv("CHAINRULE_DATA", raising=False)

    def offline(*args, **kwargs):
        raise AssertionError("no test may use the network")

    monkeypatch.setattr(mnist_module, "_download", offline)
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    rng = np.random.default_rng(5)
    strokes = np.zeros((10, 28, 28))
    for k in range(10):
        strokes[k, 3 + 2 * k : 6 + 2 * k, 5:23] = 1.0  # a bar at a height that is the label
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    specs = {}
    for role, name, n in (
        ("train", "train-%s-idx%d-ubyte.gz", 200),
        ("test", "t10k-%s-idx%d-ubyte.gz", 50),
    ):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = np.clip(strokes[labels] + rng.normal(0, 0.2, (n, 28, 28)), 0, 1)
        for kind, dims, array in (
            ("images", 3, (images * 255).astype(np.uint8)),
            ("labels", 1, labels),
        ):
            file_name = name % (kind, dims)
            packed = write_idx(folder / file_name, array).read_bytes()
            raw = gzip.decompress(packed)
            specs[f"{role}_{kind}"] = FileSpec(
                file_name,
                len(packed),
                md5=hashlib.md5(packed).hexdigest(),
                sha256=hashlib.sha256(packed).hexdigest(),
                raw_md5=hashlib.md5(raw).hexdigest(),
                raw_sha256=hashlib.sha256(raw).hexdigest(),
            )
    monkeypatch.setitem(mnist_module._SPECS, "mnist", dataclasses.replace(MNIST, **specs))
    return tmp_path / "data"


def train(capsys, data_dir, *extra: str) -> tuple[int, str, str]:
    argv = ["train", "--data-dir", str(data_dir), "--batch-size", "20", "--no-progress"]
    code = main([*argv, "--hidden", "16", "--init", "he", *extra])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(err: str, *fragments: str) -> None:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def test_train_diagnostics_writes_the_json_and_the_pictures(capsys, tiny_mnist, tmp_path):
    folder = tmp_path / "out" / "diag"  # made, parents included
    code, out, err = train(
        capsys, tiny_mnist, "--iterations", "15", "--diagnostics", str(folder),
        "--diagnostics-every", "5",
    )  # fmt: skip
    assert code == 0, err
    assert sorted(p.name for p in folder.iterdir()) == sorted(["diagnostics.json", *PLOT_FILES])
    saved = json.loads((folder / "diagnostics.json").read_text())
    history = saved["history"]
    assert history["iteration"] == [5, 10, 15] and saved["every"] == 5
    assert all(v is not None and v > 0 for v in history["update_ratio/W1"])
    assert [h["iteration"] for h in saved["histograms"]] == [1, 10, 15]  # 10 steps an epoch
    for name in PLOT_FILES:
        image = _image(folder / name)
        assert image.shape[1] >= 800 and image.std() > 0.05, name
    assert "diagnostics" in out and "grad_norms.png" in out


def test_train_diagnostics_errors(capsys, tiny_mnist, tmp_path, monkeypatch):
    a_file = tmp_path / "taken"
    a_file.write_text("not a folder")
    for bad in (a_file, a_file / "below"):
        code, out, err = train(capsys, tiny_mnist, "--iterations", "2", "--diagnostics", str(bad))
        assert code == 2 and "model" not in out  # refused before loading anything
        assert_one_line_error(err, "--diagnostics", "is a file, expected a folder")

    code, _, err = train(capsys, tiny_mnist, "--iterations", "2", "--diagnostics-every", "3")
    assert code == 2
    assert_one_line_error(err, "--diagnostics-every needs --diagnostics DIR")

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, _, err = train(capsys, tiny_mnist, "--diagnostics", str(tmp_path / "d"))
    assert code == 2
    assert_one_line_error(err, "--diagnostics", "chainrule[plot]")
    assert not (tmp_path / "d").exists()


def test_train_diagnostics_are_written_when_training_diverges(capsys, tiny_mnist, tmp_path):
    folder = tmp_path / "diag"
    code, _, err = train(
        capsys, tiny_mnist, "--iterations", "30", "--lr", "1e30", "--diagnostics", str(folder),
        "--diagnostics-every", "1",
    )  # fmt: skip
    assert code == 2
    assert_one_line_error(err, "diverged", f"Diagnostics of the steps before it: {folder}")
    saved = json.loads((folder / "diagnostics.json").read_text())
    assert saved["history"]["iteration"][0] == 1


# --------------------------------------------------------------------------------------------
# nn models
# --------------------------------------------------------------------------------------------


def test_nn_activations_are_found_by_their_dotted_names():
    model = nn.MLP([FEATURES, 8, 6, CLASSES], activation="tanh", rng=np.random.default_rng(0))
    assert [(name, kind) for name, _, kind in activation_layers(model)] == [
        ("1", "tanh"),
        ("3", "tanh"),
    ]
    relu = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Sequential(nn.LeakyReLU(), nn.Sigmoid()))
    assert [(n, k) for n, _, k in activation_layers(relu)] == [
        ("1", "relu"),
        ("2.0", "leaky_relu"),
        ("2.1", "sigmoid"),
    ]


def test_nn_dead_relus_and_names_by_hand(data):
    rng = np.random.default_rng(0)
    x, t = rng.normal(size=(50, FEATURES)), rng.integers(0, CLASSES, 50)
    model = nn.MLP([FEATURES, 8, CLASSES], rng=rng, dtype=np.float64)
    diag = Diagnostics()
    diag.watch(model)
    model.params["0.b"][:3] = -1e6  # three of eight units never fire
    _, grads = model.loss_and_grads(x, t)
    diag.record(model, grads)
    hidden = x @ model.params["0.W"] + model.params["0.b"]
    assert row(diag, "dead_fraction/1") == 3 / 8
    assert row(diag, "active_fraction/1") == float((hidden > 0).mean())
    assert row(diag, "grad_norm/0.W") == pytest.approx(np.linalg.norm(grads["0.W"]), rel=1e-12)
    entry = diag.histogram(model, x)
    assert entry["layers"]["1"]["total"] == 50 * 8 and entry["layers"]["1"]["zeros"] >= 3 * 50
    assert "forward" in vars(model[1])  # still watched; the histogram's wrapper is gone


def test_nn_model_through_the_trainer_hook(data, tmp_path):
    x, t, xt, tt = data
    model = nn.MLP([FEATURES, 10, CLASSES], rng=np.random.default_rng(1), dtype=np.float64)
    diag = Diagnostics(every=4, probe_size=50)
    trainer = Trainer(
        model, SGD(lr=0.1), x, t, xt, tt, batch_size=20, iterations=12, progress="none",
        on_step=diag.on_step,
    )  # fmt: skip
    trainer.fit()
    assert diag.history["iteration"] == [4, 8, 12]
    for key in ("0.W", "0.b", "2.W", "2.b"):
        assert all(v is not None and v > 0 for v in diag.history[f"update_ratio/{key}"])
    assert all(0 <= v <= 1 for v in diag.history["dead_fraction/1"])
    assert [h["iteration"] for h in diag.histograms] == [1, 10, 12]
    assert diag.plot(tmp_path)  # the pictures draw from dotted names too
