"""``chainrule train``, ``evaluate`` and ``predict`` on tiny IDX files written here.

The tiny files are laid out as the real ones (``<data-dir>/mnist/train-images-idx3-ubyte.gz``
and so on) and their checksums are pinned in place of the real ones for the duration of a
test, so the commands run exactly as on MNIST, in well under a second. Nothing touches the
network.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest

import chainrule.datasets.mnist as mnist_module
import fake_cupy  # tests/fake_cupy.py: the CuPy stand-in for the --device tests
from chainrule.cli import main
from chainrule.datasets import write_idx
from chainrule.datasets.mnist import MNIST, FileSpec
from chainrule.serialization import load_checkpoint

FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
N_TRAIN, N_TEST = 300, 100


def digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Ten fixed 28x28 "glyphs" (white strokes on black) plus noise, as uint8 images."""
    glyphs = np.zeros((10, 28, 28))
    for k in range(10):
        glyphs[k, 4 + 2 * k : 8 + 2 * k, 4:24] = 1.0  # a bar whose height gives the class
        glyphs[k, 4:24, 2 + 2 * k : 5 + 2 * k] = 0.8
    rng = np.random.default_rng(seed)
    t = rng.integers(0, 10, n).astype(np.uint8)
    x = glyphs[t] + rng.normal(0, 0.15, (n, 28, 28))
    return (np.clip(x, 0, 1) * 255).astype(np.uint8), t


@dataclasses.dataclass
class TinyMnist:
    root: Path  # pass as --data-dir: it holds mnist/
    test_images: np.ndarray
    test_labels: np.ndarray


@pytest.fixture
def tiny(tmp_path, monkeypatch) -> TinyMnist:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("CHAINRULE_OFFLINE", "1")
    monkeypatch.delenv("CHAINRULE_DATA", raising=False)

    def no_network(*args, **kwargs):
        raise AssertionError("a test tried to use the network")

    monkeypatch.setattr(mnist_module, "_download", no_network)
    monkeypatch.setattr(urllib.request, "urlopen", no_network)

    root = tmp_path / "data"
    folder = root / "mnist"
    folder.mkdir(parents=True)
    (x, t), (xt, tt) = digits(N_TRAIN, 1), digits(N_TEST, 2)
    arrays = {"train_images": x, "train_labels": t, "test_images": xt, "test_labels": tt}
    specs = {}
    for role, name in FILES.items():
        data = write_idx(folder / name, arrays[role]).read_bytes()
        raw = gzip.decompress(data)
        specs[role] = FileSpec(
            name,
            len(data),
            md5=hashlib.md5(data).hexdigest(),
            sha256=hashlib.sha256(data).hexdigest(),
            raw_md5=hashlib.md5(raw).hexdigest(),
            raw_sha256=hashlib.sha256(raw).hexdigest(),
        )
    monkeypatch.setitem(mnist_module._SPECS, "mnist", dataclasses.replace(MNIST, **specs))
    return TinyMnist(root, xt, tt)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def train(capsys, tiny: TinyMnist, *extra: str) -> tuple[int, str, str]:
    args = ["train", "--data-dir", str(tiny.root), "--batch-size", "50", "--no-progress"]
    return run(capsys, *args, *extra)


def assert_one_line_error(err: str, *fragments: str) -> None:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


# --------------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------------


def test_train_writes_checkpoint_history_and_plot(capsys, tiny, tmp_path):
    ckpt, hist, png = tmp_path / "run.ckpt", tmp_path / "h.json", tmp_path / "curves.png"
    code, out, err = train(
        capsys, tiny, "--iterations", "15", "--hidden", "32", "--init", "he",
        "--save", str(ckpt), "--history", str(hist), "--plot", str(png),
    )  # fmt: skip
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("model      two-layer 784-32-10 relu, init he (float32)")
    epoch_lines = [ln for ln in lines if ln.startswith("epoch")]
    assert len(epoch_lines) == 3  # 6 batches per epoch: after 6, 12 and 15 iterations
    assert epoch_lines[-1].startswith("epoch  2.50  iter 15")
    for row in ("test accuracy", "test loss", "training time", "wall time"):
        assert any(ln.strip().startswith(row) for ln in lines), row

    history = json.loads(hist.read_text())
    for key in ("train_loss", "train_acc", "test_loss", "test_acc", "seconds", "epoch"):
        assert len(history[key]) == 3, key
    assert history["iteration"] == [6, 12, 15]
    assert history["test_acc"][-1] > 0.5  # learnable glyphs
    assert png.read_bytes()[:4] == b"\x89PNG"

    _, meta = load_checkpoint(ckpt)
    assert meta["dataset"] == "mnist" and meta["model"]["hidden"] == [32]
    assert meta["position"]["iteration"] == 15
    assert meta["history"]["test_acc"] == history["test_acc"]


def test_evaluate_reproduces_the_training_result_exactly(capsys, tiny, tmp_path):
    ckpt, hist = tmp_path / "run.ckpt", tmp_path / "h.json"
    code, _, err = train(
        capsys, tiny, "--model", "mlp", "--hidden", "24,16", "--optimizer", "adam",
        "--batchnorm", "--dropout", "0.1", "--epochs", "2",
        "--save", str(ckpt), "--history", str(hist),
    )  # fmt: skip
    assert code == 0, err
    history = json.loads(hist.read_text())

    code, out, err = run(capsys, "evaluate", str(ckpt), "--json", "--data-dir", str(tiny.root))
    assert code == 0, err
    result = json.loads(out)  # exactly one JSON object, nothing else
    assert result["test_accuracy"] == history["test_acc"][-1]
    assert result["test_loss"] == history["test_loss"][-1]
    assert result["samples"] == N_TEST

    code, out, _ = run(capsys, "evaluate", str(ckpt), "--data-dir", str(tiny.root))
    assert code == 0
    assert f"{100 * history['test_acc'][-1]:.2f}%" in out and "(the same)" in out


def test_resume_from_the_command_line_matches_an_uninterrupted_run(capsys, tiny, tmp_path):
    full, part = tmp_path / "full.ckpt", tmp_path / "part.ckpt"
    common = ("--optimizer", "momentum", "--schedule", "step", "--step-epochs", "1")
    assert train(capsys, tiny, *common, "--iterations", "16", "--save", str(full))[0] == 0
    assert train(capsys, tiny, *common, "--iterations", "9", "--save", str(part))[0] == 0
    code, out, err = train(
        capsys, tiny, "--resume", str(part), "--iterations", "16", "--save", str(part)
    )
    assert code == 0, err
    assert "resume     from" in out and "at iteration 9" in out
    a, meta_a = load_checkpoint(full)
    b, meta_b = load_checkpoint(part)
    assert a.keys() == b.keys()
    for key in a:
        assert np.array_equal(a[key], b[key]), key
    # The interrupted run also evaluated where it stopped (iteration 9): one extra entry.
    assert meta_b["history"]["iteration"] == [6, 9, 12, 16]
    assert meta_a["history"]["iteration"] == [6, 12, 16]
    for key in ("test_acc", "test_loss", "train_loss", "lr"):
        kept = [v for i, v in enumerate(meta_b["history"][key]) if i != 1]
        assert kept == meta_a["history"][key], key

    # Settings that the checkpoint fixes cannot be changed on resume.
    code, _, err = train(capsys, tiny, "--resume", str(part), "--lr", "0.5")
    assert code == 2
    assert_one_line_error(err, "--lr 0.5 differs from the checkpoint's 0.01")


# --------------------------------------------------------------------------------------------
# predict
# --------------------------------------------------------------------------------------------


@pytest.fixture
def trained(capsys, tiny, tmp_path) -> Path:
    ckpt = tmp_path / "net.ckpt"
    code, _, err = train(capsys, tiny, "--epochs", "4", "--init", "he", "--save", str(ckpt))
    assert code == 0, err
    return ckpt


def test_predict_prints_probabilities_and_the_top_class(capsys, tiny, trained, tmp_path):
    from PIL import Image

    k = int(np.flatnonzero(tiny.test_labels == 3)[0])
    png = tmp_path / "three.png"
    Image.fromarray(tiny.test_images[k], mode="L").save(png)

    code, out, err = run(capsys, "predict", str(trained), str(png))
    assert code == 0, err
    rows = [ln for ln in out.splitlines() if ln[:5].strip().isdigit()]
    assert len(rows) == 10
    assert "prediction: 3" in out and "<- prediction" in rows[3]
    assert err == ""

    code, out, _ = run(capsys, "predict", str(trained), str(png), "--json")
    result = json.loads(out)
    assert result["prediction"] == 3 and len(result["probabilities"]) == 10
    assert sum(result["probabilities"]) == pytest.approx(1.0)

    # Dark ink on white paper, twice the size: --invert --raw (invert and resize only, no
    # MNIST-style crop and centring: these fake "digits" are bars whose position is the class)
    # gives the same class.
    big = tmp_path / "paper.png"
    Image.fromarray(255 - tiny.test_images[k], mode="L").resize((56, 56)).save(big)
    code, out, err = run(capsys, "predict", str(trained), str(big), "--invert", "--raw", "--json")
    assert code == 0 and json.loads(out)["prediction"] == 3
    code, out, err = run(capsys, "predict", str(trained), str(big))
    assert code == 0 and "pass --invert" in err


def test_predict_errors(capsys, trained, tmp_path):
    code, _, err = run(capsys, "predict", str(trained), str(tmp_path / "none.png"))
    assert code == 2
    assert_one_line_error(err, "image not found")
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    code, _, err = run(capsys, "predict", str(trained), str(text))
    assert code == 2
    assert_one_line_error(err, "cannot read", "notes.png")


# --------------------------------------------------------------------------------------------
# errors: one line on stderr, non-zero status, no traceback
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--lr", "-1"], "argument --lr: must be positive, got '-1'"),
        (["--lr", "0"], "must be positive"),
        (["--lr", "nan"], "must be finite"),
        (["--batch-size", "0"], "argument --batch-size: must be a positive integer"),
        (["--iterations", "-5"], "must be a positive integer"),
        (["--epochs", "2", "--iterations", "5"], "not allowed with argument"),
        (["--hidden", "50,x"], "comma-separated positive integers"),
        (["--dropout", "1.5"], "must be in [0, 1)"),
        (["--optimizer", "lbfgs"], "invalid choice: 'lbfgs'"),
    ],
)
def test_bad_flags(capsys, argv, fragment):
    with pytest.raises(SystemExit) as e:
        main(["train", *argv])
    assert e.value.code == 2
    assert_one_line_error(capsys.readouterr().err, "chainrule train: error:", fragment)


def test_missing_data(capsys, tiny, tmp_path):
    code, _, err = train(capsys, tiny, "--data-dir", str(tmp_path / "nowhere"))
    assert code == 2
    assert_one_line_error(err, "--data-dir", "no such folder")
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = train(capsys, tiny, "--data-dir", str(empty), "--dataset", "fashion-mnist")
    assert code == 2
    assert_one_line_error(err, "Fashion-MNIST", "not found", "--data-dir")


def test_option_the_model_does_not_support(capsys, tiny):
    code, _, err = train(capsys, tiny, "--batchnorm")
    assert code == 2
    assert_one_line_error(err, "two-layer supports", "no batchnorm", "mlp")


def test_divergence_is_one_line_and_writes_no_checkpoint(capsys, tiny, tmp_path):
    ckpt = tmp_path / "run.ckpt"
    code, _, err = train(capsys, tiny, "--lr", "1e30", "--iterations", "20", "--save", str(ckpt))
    assert code == 2
    assert_one_line_error(err, "training diverged at iteration", "not finite")
    assert not ckpt.exists()


def test_unreadable_checkpoints(capsys, tiny, trained, tmp_path):
    data = bytearray(trained.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(bytes(data))
    truncated = tmp_path / "short.ckpt"
    truncated.write_bytes(trained.read_bytes()[:100])
    for path in (bad, truncated):
        for argv in (["evaluate", str(path)], ["predict", str(path), "x.png"]):
            code, _, err = run(
                capsys, *argv, *(["--data-dir", str(tiny.root)] * (argv[0] == "evaluate"))
            )
            assert code == 2
            assert_one_line_error(err, str(path))
        code, _, err = train(capsys, tiny, "--resume", str(path))
        assert code == 2
        assert_one_line_error(err, str(path))
    code, _, err = run(capsys, "evaluate", str(tmp_path / "missing.ckpt"))
    assert code == 2
    assert_one_line_error(err, "checkpoint not found")


def test_process_exit_status_and_stderr(tmp_path):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"garbage")
    for argv in (["train", "--lr", "-1"], ["evaluate", str(bad)]):
        done = subprocess.run(
            [sys.executable, "-m", "chainrule", *argv], capture_output=True, text=True
        )
        assert done.returncode == 2
        assert_one_line_error(done.stderr, "error")
        assert done.stdout == ""


# --------------------------------------------------------------------------------------------
# --device
# --------------------------------------------------------------------------------------------


def test_device_cuda_without_cupy_is_a_one_line_error(capsys, tiny, monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # `import cupy` fails, as on a CPU machine
    code, _, err = train(capsys, tiny, "--iterations", "2", "--device", "cuda")
    assert code == 2
    assert_one_line_error(err, "chainrule train: error: device 'cuda' needs CuPy")


def test_train_evaluate_predict_on_the_device_give_the_cpu_numbers(capsys, tiny, tmp_path):
    # Through tests/fake_cupy.py, a stand-in as strict as CuPy that computes with NumPy, so
    # the device run must report exactly the CPU run's numbers.
    png = tmp_path / "digit.png"
    from PIL import Image

    Image.fromarray(tiny.test_images[0]).save(png)
    results = {}
    with fake_cupy.installed():
        for device in ("cpu", "cuda"):
            ckpt, hist = tmp_path / f"{device}.ckpt", tmp_path / f"{device}.json"
            diag = tmp_path / f"{device}-diagnostics"
            code, out, err = train(
                capsys, tiny, "--iterations", "12", "--model", "mlp", "--hidden", "16",
                "--batchnorm", "--device", device, "--save", str(ckpt), "--history", str(hist),
                "--diagnostics", str(diag), "--diagnostics-every", "3",
            )  # fmt: skip
            assert code == 0, err
            assert ("on cuda" in out.splitlines()[0]) == (device == "cuda")
            code, out, err = run(capsys, "evaluate", str(ckpt), "--json", "--data-dir",
                                 str(tiny.root), "--device", device)  # fmt: skip
            assert code == 0, err
            evaluation = json.loads(out)
            code, out, err = run(capsys, "predict", str(ckpt), str(png), "--json",
                                 "--device", device)  # fmt: skip
            assert code == 0, err
            diagnostics = json.loads((diag / "diagnostics.json").read_text())
            assert diagnostics["history"]["iteration"] == [3, 6, 9, 12]
            results[device] = (json.loads(hist.read_text()), evaluation, json.loads(out))
            results[device + " diagnostics"] = diagnostics
    (h_cpu, e_cpu, p_cpu), (h_gpu, e_gpu, p_gpu) = results["cpu"], results["cuda"]
    for key in ("train_loss", "train_acc", "test_loss", "test_acc"):
        assert h_gpu[key] == h_cpu[key], key
    assert e_gpu["test_accuracy"] == e_cpu["test_accuracy"] == h_cpu["test_acc"][-1]
    assert p_gpu == p_cpu
    assert results["cuda diagnostics"] == results["cpu diagnostics"]


@pytest.mark.parametrize(
    "model_args",
    [("--model", "mlp", "--hidden", "16", "--dropout", "0.3"), ("--model", "simple-cnn")],
    ids=["mlp-dropout", "simple-cnn"],
)
def test_resume_on_the_device_gives_the_cpu_run(capsys, tiny, tmp_path, model_args):
    histories = {}
    with fake_cupy.installed():
        for device in ("cpu", "cuda"):
            first, second = tmp_path / f"{device}-1.ckpt", tmp_path / f"{device}-2.ckpt"
            hist = tmp_path / f"{device}.json"
            code, _, err = train(capsys, tiny, "--iterations", "6", *model_args, "--optimizer",
                                 "adam", "--device", device, "--save", str(first))  # fmt: skip
            assert code == 0, err
            code, _, err = train(capsys, tiny, "--resume", str(first), "--iterations", "12",
                                 "--device", device, "--save", str(second), "--history",
                                 str(hist), "--plot", str(tmp_path / f"{device}.png"))  # fmt: skip
            assert code == 0, err
            histories[device] = json.loads(hist.read_text())
    for key in ("train_loss", "test_loss", "test_acc"):
        if "simple-cnn" in model_args:
            # the GPU convolves in one block, the CPU in blocks of rows (functions/conv.py
            # _blocks): dW sums in another order, so float32 runs agree to rounding
            assert histories["cuda"][key] == pytest.approx(histories["cpu"][key], rel=1e-6), key
        else:
            assert histories["cuda"][key] == histories["cpu"][key], key
