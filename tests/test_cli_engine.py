"""``chainrule train --engine autograd``: the registry's networks on the Tensor engine."""

from __future__ import annotations

import json

import numpy as np
import pytest

import test_train_cli
from chainrule.serialization import load_checkpoint
from test_train_cli import assert_one_line_error, run, train

tiny = test_train_cli.tiny  # the tiny IDX files of test_train_cli.py


@pytest.mark.parametrize(
    ("model", "iterations"), [("two-layer", 12), ("mlp", 12), ("simple-cnn", 3)]
)
def test_autograd_engine_trains_saves_evaluates_and_predicts(
    capsys, tiny, tmp_path, model, iterations
):
    ckpt, hist = tmp_path / "ag.ckpt", tmp_path / "ag.json"
    code, out, err = train(
        capsys, tiny, "--engine", "autograd", "--model", model, "--hidden", "16",
        "--iterations", str(iterations), "--save", str(ckpt), "--history", str(hist),
    )  # fmt: skip
    assert code == 0, err
    assert "autograd" in out.splitlines()[0]
    _, meta = load_checkpoint(ckpt)
    assert meta["model"]["engine"] == "autograd"
    history = json.loads(hist.read_text())

    code, out, err = run(capsys, "evaluate", str(ckpt), "--json", "--data-dir", str(tiny.root))
    assert code == 0, err
    assert json.loads(out)["test_accuracy"] == history["test_acc"][-1]

    from PIL import Image

    png = tmp_path / "digit.png"
    Image.fromarray(tiny.test_images[0], mode="L").save(png)
    code, out, err = run(capsys, "predict", str(ckpt), str(png), "--json")
    assert code == 0, err
    assert sum(json.loads(out)["probabilities"]) == pytest.approx(1.0)

    code, _, err = train(capsys, tiny, "--resume", str(ckpt), "--engine", "layers")
    assert code == 2
    assert_one_line_error(err, "--engine layers differs from the checkpoint's 'autograd'")


def test_both_engines_learn_the_same_from_the_same_seed(capsys, tiny, tmp_path):
    histories = {}
    for engine in ("layers", "autograd"):
        path = tmp_path / f"{engine}.json"
        code, _, err = train(
            capsys, tiny, "--engine", engine, "--hidden", "16", "--iterations", "12",
            "--history", str(path),
        )  # fmt: skip
        assert code == 0, err
        histories[engine] = json.loads(path.read_text())
    for key in ("train_loss", "test_loss", "test_acc"):
        np.testing.assert_allclose(
            histories["autograd"][key], histories["layers"][key], rtol=1e-4, err_msg=key
        )
