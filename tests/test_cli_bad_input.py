"""Bad command lines end in one line on stderr, status 2, no traceback, no hang (issue #12).

Each case here was a traceback, a hang or a huge allocation before the CLI checked it: flags
out of range, files that are not regular files, crafted checkpoint metadata, an image whose
header claims 30000x30000 pixels, expressions the parser cannot evaluate.
"""

from __future__ import annotations

import copy
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest

import test_train_cli
from chainrule.cli import main
from chainrule.cli.budget import MAX_PARAMETERS, estimate
from chainrule.serialization import load_checkpoint, save_checkpoint
from test_train_cli import assert_one_line_error, run

# The tiny IDX files and a checkpoint trained on them, as in test_train_cli.py.
tiny = test_train_cli.tiny
trained = test_train_cli.trained


def error_of(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """The one stderr line of a command that must fail with status 2."""
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    out, err = capsys.readouterr()
    assert code == 2, (argv, out, err)
    assert_one_line_error(err)
    return err.strip()


# --------------------------------------------------------------------------------------------
# flags
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--seed", "-1"], "argument --seed: must be at least 0, got '-1'"),
        (["--seed", "1" + "0" * 30], "argument --seed: must be at most"),
        (["--seed", "x"], "argument --seed: expected an integer"),
        (["--gamma", "0"], "must be in (0, 1]"),
        (["--weight-decay", "-0.1"], "must be non-negative"),
        (["--init", "bogus"], "expected he, xavier or a positive weight std"),
        (["--model", "resnet"], "invalid choice: 'resnet'"),
        (["--activation", "gelu"], "invalid choice: 'gelu'"),
        (["--schedule", "linear"], "invalid choice: 'linear'"),
    ],
)
def test_bad_train_flags_are_one_line(capsys, argv, fragment):
    assert fragment in error_of(capsys, "train", *argv)


NUMBER_FLAGS = [
    "--hidden", "--init", "--weight-decay", "--dropout", "--lr", "--batch-size", "--epochs",
    "--iterations", "--step-epochs", "--gamma", "--seed", "--eval-subset",
    "--diagnostics-every", "--threads",
]  # fmt: skip
BAD_NUMBERS = ["-1", "nan", "inf", "-inf", "1e999", "abc", "", "1" + "0" * 400, "0x10", "1,,2"]


@pytest.mark.parametrize("flag", NUMBER_FLAGS)
def test_every_numeric_train_flag_refuses_bad_numbers_in_one_line(capsys, flag):
    for value in BAD_NUMBERS:
        if flag == "--seed" and value == "1" + "0" * 400:
            continue  # refused too (over 2**63 - 1), tested above with its own message
        err = error_of(capsys, "train", flag, value)
        assert f"argument {flag}:" in err, (flag, value, err)


def test_hidden_sizes_over_the_memory_budget_are_refused_before_allocating(capsys, tiny):
    # 784 x 100,000,000 float32 weights would be 292 GiB: refused before data is loaded.
    err = error_of(capsys, "train", "--hidden", "100000000", "--data-dir", str(tiny.root))
    assert "hidden 100000000" in err and "over the budget of 100,000,000" in err
    err = error_of(capsys, "train", "--model", "mlp", "--hidden", "20000,20000")
    assert "parameters" in err


def test_a_batch_over_the_activation_budget_is_refused(capsys):
    err = error_of(capsys, "train", "--model", "simple-cnn", "--batch-size", "60000")
    assert "a batch of 60000" in err and "activation values" in err


def test_estimate_counts_the_dense_chain_exactly():
    params, _ = estimate({"model": "mlp", "hidden": [30, 20], "input_size": 784})
    assert params == 785 * 30 + 31 * 20 + 21 * 10
    params, _ = estimate({"model": "two-layer", "hidden": [50], "input_size": 784})
    assert params == 785 * 50 + 51 * 10
    # A conv net's dense part starts from its flattened feature map (30 x 12 x 12 = 4320).
    params, _ = estimate({"model": "simple-cnn", "hidden": [100], "input_size": 784})
    assert params > 4320 * 100
    assert estimate({"model": "mlp", "hidden": [20000, 20000]})[0] > MAX_PARAMETERS


# --------------------------------------------------------------------------------------------
# files that are not regular files
# --------------------------------------------------------------------------------------------


@pytest.fixture
def odd_files(tmp_path: Path) -> dict[str, str]:
    folder = tmp_path / "folder.ckpt"
    folder.mkdir()
    files = {"folder": str(folder), "device": os.devnull}
    if hasattr(os, "mkfifo"):
        pipe = tmp_path / "pipe.ckpt"
        os.mkfifo(pipe)  # opening it for reading would block until a writer comes
        files["pipe"] = str(pipe)
    if Path("/dev/zero").exists():
        files["zero"] = "/dev/zero"
    return files


def test_checkpoints_that_are_not_regular_files(capsys, tiny, odd_files):
    for kind, path in odd_files.items():
        expected = "is a folder" if kind == "folder" else "not a regular file"
        for argv in (["evaluate", path], ["predict", path, "x.png"], ["train", "--resume", path]):
            err = error_of(
                capsys, *argv, *(["--data-dir", str(tiny.root)] * (argv[0] != "predict"))
            )
            assert expected in err and path in err, (kind, argv, err)


def test_images_that_are_not_regular_files(capsys, trained, odd_files):
    for kind, path in odd_files.items():
        expected = "is a folder" if kind == "folder" else "not a regular file"
        err = error_of(capsys, "predict", str(trained), path)
        assert f"image {path}" in err and expected in err


# --------------------------------------------------------------------------------------------
# crafted checkpoint metadata
# --------------------------------------------------------------------------------------------


def _narrow_output(arrays: dict[str, Any], meta: dict[str, Any]) -> None:
    meta["model"]["output_size"] = 3
    arrays["model/W2"] = arrays["model/W2"][:, :3].copy()
    arrays["model/b2"] = arrays["model/b2"][:3].copy()


CRAFTED = {
    "eval_batch_size": (
        lambda a, m: m["trainer"].update(eval_batch_size="abc"),
        "trainer.eval_batch_size is 'abc', expected a positive integer",
    ),
    "negative eval_batch_size": (
        lambda a, m: m["trainer"].update(eval_batch_size=-5),
        "trainer.eval_batch_size is -5",
    ),
    "trainer list": (lambda a, m: m.update(trainer=[1, 2]), "trainer is list, expected a dict"),
    "position": (lambda a, m: m.update(position="x"), "position is str, expected a dict"),
    "iteration": (lambda a, m: m["position"].update(iteration="x"), "position.iteration is 'x'"),
    "result": (lambda a, m: m.update(result=[0.5]), "result is list"),
    "test_acc": (lambda a, m: m["result"].update(test_acc="high"), "result.test_acc is 'high'"),
    "dataset": (lambda a, m: m.update(dataset=["mnist"]), "not a known dataset"),
    "hidden": (
        lambda a, m: m["model"].update(hidden=[2000000]),
        "(hidden 2000000) would have about",
    ),
    "output_size": (_narrow_output, "the model has 3 outputs, but mnist has 10 classes"),
    "model": (lambda a, m: m.update(model="two-layer"), "model is str, expected a dict"),
}


@pytest.mark.parametrize("case", list(CRAFTED))
def test_crafted_checkpoint_metadata_is_one_line(capsys, tiny, trained, tmp_path, case):
    arrays, meta = load_checkpoint(trained)
    arrays, meta = dict(arrays), copy.deepcopy(meta)
    craft, fragment = CRAFTED[case]
    craft(arrays, meta)
    path = tmp_path / "crafted.ckpt"
    save_checkpoint(path, arrays, meta)
    data = ["--data-dir", str(tiny.root)]
    for argv in (["evaluate", str(path), *data], ["train", "--resume", str(path), *data]):
        err = error_of(capsys, *argv)
        assert fragment in err and str(path) in err, (argv, err)


def test_a_huge_eval_batch_size_is_bounded_by_the_test_set(capsys, tiny, trained, tmp_path):
    arrays, meta = load_checkpoint(trained)
    meta = copy.deepcopy(meta)
    meta["trainer"]["eval_batch_size"] = 10**12
    path = tmp_path / "big_batch.ckpt"
    save_checkpoint(path, arrays, meta)
    code, out, err = run(capsys, "evaluate", str(path), "--data-dir", str(tiny.root))
    assert code == 0, err
    assert "(the same)" in out


# --------------------------------------------------------------------------------------------
# images
# --------------------------------------------------------------------------------------------


def png_header(width: int, height: int, payload: bytes = b"\0" * 64) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` grayscale pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(payload))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("side", "fragment"), [(30000, "900000000 pixels"), (5000, "5000x5000 pixels")]
)
def test_an_image_header_claiming_huge_dimensions_is_refused(
    capsys, trained, tmp_path, side, fragment
):
    pytest.importorskip("PIL", reason="predict reads images with Pillow")
    png = tmp_path / "huge.png"
    png.write_bytes(png_header(side, side))
    err = error_of(capsys, "predict", str(trained), str(png))
    assert f"image {png} is" in err and "over the" in err and fragment in err


def test_a_truncated_image_is_one_line(capsys, trained, tmp_path):
    pytest.importorskip("PIL", reason="predict reads images with Pillow")
    png = tmp_path / "short.png"
    png.write_bytes(png_header(28, 28, b"\0" * 10))
    assert "cannot read" in error_of(capsys, "predict", str(trained), str(png))


# --------------------------------------------------------------------------------------------
# graph
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("x + 1" + "0" * 400, "bad expression"),
        ("x + (-8) ** 0.5", "bad expression"),
        ("x + max(3)", "bad expression"),
        ("(" * 3000 + "x" + ")" * 3000, "bad expression"),
    ],
)
def test_graph_expressions_the_parser_cannot_evaluate(capsys, expression, fragment):
    err = error_of(capsys, "graph", expression, "--set", "x=1")
    assert err.startswith("chainrule graph: error:") and fragment in err


def test_graph_quiet_without_output_is_an_error(capsys):
    assert "-o FILE" in error_of(capsys, "graph", "x + 1", "--set", "x=1", "-q")


# --------------------------------------------------------------------------------------------
# anything else: one line naming the command, the traceback on request
# --------------------------------------------------------------------------------------------


def test_an_unexpected_exception_is_one_line_naming_the_command(capsys, monkeypatch):
    import chainrule.examples as examples

    def broken(name: str) -> Any:
        raise KeyError("a bug")

    monkeypatch.setattr(examples, "run", broken)
    assert main(["demo", "apple"]) == 1
    err = capsys.readouterr().err
    assert_one_line_error(err, "chainrule demo: internal error: KeyError", "CHAINRULE_DEBUG=1")
    monkeypatch.setenv("CHAINRULE_DEBUG", "1")
    with pytest.raises(KeyError):
        main(["demo", "apple"])


def test_bad_command_lines_in_a_real_process(tmp_path):
    pipe = tmp_path / "pipe"
    argvs = [["train", "--seed", "-1"], ["graph", "x + max(3)", "--set", "x=1"]]
    if hasattr(os, "mkfifo"):
        os.mkfifo(pipe)
        argvs.append(["evaluate", str(pipe)])
    for argv in argvs:
        done = subprocess.run(
            [sys.executable, "-m", "chainrule", *argv], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 2, (argv, done.stderr)
        assert_one_line_error(done.stderr, "error")
