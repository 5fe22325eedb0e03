"""chainrule check: the book's layers pass; each classic mistake gets its own diagnosis."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from chainrule.checking import Diagnosis, LayerReport, check_file, check_layer, checkable, main
from chainrule.checking.messages import EN, ZH, render
from chainrule.checking.specs import BOOK_NAMES, book_name

DATA = Path(__file__).parent / "data" / "check"
HAN = re.compile(r"[\u4e00-\u9fff]")


def codes(report: LayerReport, severity: str | None = None) -> set[str]:
    return {d.code for d in report.diagnoses if severity is None or d.severity == severity}


@pytest.fixture(scope="module")
def book() -> dict[str, LayerReport]:
    return {r.name: r for r in check_file(DATA / "book_layers.py")}


def test_every_book_layer_is_recognised_and_passes(book: dict[str, LayerReport]) -> None:
    for name in BOOK_NAMES:
        report = book[name]
        assert report.status == "PASS", str(report)
        assert report.recognised_as == name
        assert report.gradients and all(g.rel_error is not None for g in report.gradients)
        # float64 against central differences: the book's 1e-7 inside the log allows 1e-5
        assert report.worst() < (1e-5 if name == "SoftmaxWithLoss" else 1e-8), str(report)
    assert {g.name for g in book["Affine"].gradients} == {"dx", "dW", "db"}
    assert {g.name for g in book["BatchNormalization"].gradients} == {"dx", "dgamma", "dbeta"}
    assert {g.name for g in book["MulLayer"].gradients} == {"dx", "dy"}


def test_book_relu_passes_with_the_dout_warning(book: dict[str, LayerReport]) -> None:
    assert codes(book["Relu"]) == {"dout_mutated"}
    assert book["Relu"].ok
    assert not codes(book["Sigmoid"]) and not codes(book["Affine"])


def test_declared_and_guessed_layers(book: dict[str, LayerReport]) -> None:
    assert book["Square"].status == "PASS" and not book["Square"].diagnoses
    assert book["Scale"].status == "PASS"
    assert {g.name for g in book["Scale"].gradients} == {"dx", "dw"}  # found by its name
    assert codes(book["Tanh"]) == {"guessed_inputs"} and book["Tanh"].status == "PASS"


# file, the diagnosis it must get, the gradient it is about (None: the layer as a whole)
BUGS = [
    ("seed_add_multiplies", "forward_wrong_op", None),
    ("seed_relu_returns_zero", "forward_constant", None),
    ("seed_relu_returns_zero", "backward_constant", "dx"),
    ("seed_sigmoid_no_out", "state_missing", None),
    ("seed_softmax_self_x", "state_missing", None),
    ("seed_affine_no_return", "backward_none", None),
    ("mul_forward_no_return", "forward_none", None),
    ("affine_db_not_summed", "shape_batch_sum", "db"),
    ("affine_dW_transposed", "shape_transposed", "dW"),
    ("conv_db_not_summed", "shape_batch_sum", "db"),
    ("affine_dx_summed", "shape_summed_batch", "dx"),
    ("affine_db_missing", "param_grad_missing", "db"),
    ("softmax_no_batch_div", "grad_factor_batch_big", "dx"),
    ("softmax_double_div", "grad_factor_batch_small", "dx"),
    ("sigmoid_sign", "grad_sign", "dx"),
    ("sigmoid_half", "grad_mismatch", "dx"),
    ("sigmoid_wrong_forward", "forward_mismatch", None),
    ("relu_inverted_mask", "grad_mask_inverted", "dx"),
    ("mul_one_gradient", "wrong_count", None),
    ("mul_swapped", "grad_swapped", "dx"),
    ("dropout_other_rng", "forward_nondeterministic", None),
    ("backward_raises", "backward_raised", None),
    ("init_raises", "init_raised", None),
]


@pytest.mark.parametrize(("stem", "code", "grad"), BUGS, ids=[f"{s}-{c}" for s, c, _ in BUGS])
def test_each_bug_gets_its_diagnosis(stem: str, code: str, grad: str | None) -> None:
    (report,) = check_file(DATA / f"{stem}.py")
    assert report.status == "FAIL", str(report)
    found = [d for d in report.diagnoses if d.code == code]
    assert found, f"{stem}: expected {code}, got {codes(report)}\n{report}"
    assert found[0].severity == "error"
    assert found[0].gradient == grad
    for d in report.diagnoses:  # every message renders in both languages
        assert d.message("en") and HAN.search(d.message("zh"))


def test_seed_bugs_name_the_attribute() -> None:
    (sigmoid,) = check_file(DATA / "seed_sigmoid_no_out.py")
    d = next(d for d in sigmoid.diagnoses if d.code == "state_missing")
    assert d.args["attr"] == "out" and d.args["method"] == "backward" and d.args["how"] == "None"
    assert "self.out" in d.message()
    (softmax,) = check_file(DATA / "seed_softmax_self_x.py")
    d = next(d for d in softmax.diagnoses if d.code == "state_missing")
    # forward stores softmax(x) as self.x, then reads self.y, still None
    assert d.args["attr"] == "y" and "self.x" in d.args["stored"]


def test_a_wrong_forward_with_a_right_backward_says_so() -> None:
    (add,) = check_file(DATA / "seed_add_multiplies.py")
    assert codes(add, "note") == {"grad_matches_reference"}  # backward is right for x + y
    d = next(d for d in add.diagnoses if d.code == "forward_wrong_op")
    assert d.args["got_op"] == "x * y" and d.args["want_op"] == "x + y"


def test_shape_messages_say_expected_and_got() -> None:
    (report,) = check_file(DATA / "affine_db_not_summed.py")
    message = report.diagnoses[0].message()
    assert "(4, 2)" in message and "(2,)" in message and "sum over the batch axis" in message
    (report,) = check_file(DATA / "affine_dW_transposed.py")
    assert "transposed?" in report.diagnoses[0].message()


def test_factor_messages_ask_about_the_batch_size() -> None:
    for stem in ("softmax_no_batch_div", "softmax_double_div"):
        (report,) = check_file(DATA / f"{stem}.py")
        assert "divided by the batch size twice or not at all?" in report.diagnoses[0].message()
        assert "N = 4" in report.diagnoses[0].message()


def test_forward_that_changes_its_input_is_a_warning() -> None:
    (report,) = check_file(DATA / "relu_changes_input.py")
    assert report.status == "PASS"  # its gradient is right
    assert codes(report, "warning") == {"forward_mutates_input"}


def test_dout_never_all_ones_and_inputs_away_from_kinks() -> None:
    seen = {}

    class Relu:
        def forward(self, x):
            seen["x"] = x.copy()
            self.keep = x > 0
            return x * self.keep

        def backward(self, dout):
            seen["dout"] = dout.copy()
            return dout * self.keep

    report = check_layer(Relu)
    assert report.status == "PASS"
    assert np.abs(seen["x"]).min() >= 0.1  # no ±h step crosses the kink at 0
    assert np.unique(seen["dout"]).size == seen["dout"].size  # random, not ones


def test_kinks_crossed_are_excluded_not_failed() -> None:
    class Relu:
        check_as = "Relu"
        # an input right at the kink: the numerical gradient there is 0.5, not 0 or 1
        check_inputs = {"x": np.array([[0.0, 1.0], [-1.0, 2.0]])}  # noqa: RUF012

        def forward(self, x):
            self.keep = x > 0
            return x * self.keep

        def backward(self, dout):
            return dout * self.keep

    report = check_layer(Relu)
    assert report.status == "PASS", str(report)


def test_check_layer_takes_an_instance_and_the_decorator() -> None:
    @checkable(inputs={"x": (3, 2)}, init={"k": 3.0})
    class Times:
        def __init__(self, k):
            self.k = k

        def forward(self, x):
            return self.k * x

        def backward(self, dout):
            return 2.0 * dout  # should be self.k * dout

    report = check_layer(Times)
    assert report.status == "FAIL" and codes(report) == {"grad_factor"}
    assert report.diagnoses[0].args["factor"] == pytest.approx(2 / 3)
    assert check_layer(Times(2.0)).status == "PASS"  # an instance is used as it is


def test_names_the_book_knows() -> None:
    class ReLU: ...

    class batch_norm: ...

    class Thing:
        check_as = "Sigmoid"

    assert book_name(ReLU) == "Relu"
    assert book_name(batch_norm) == "BatchNormalization"
    assert book_name(Thing) == "Sigmoid"


def test_unknown_layer_is_skipped_not_failed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(DATA / "unknown_layer.py")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("SKIP  Scale") and "check_inputs" in out


# -- the command --------------------------------------------------------------------------


def test_command_text_output_and_status(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(DATA / "book_layers.py")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["PASS", "MulLayer", "dx", lines[0].split()[3]]
    assert sum(line.startswith("PASS ") for line in lines) == len(BOOK_NAMES) + 3
    assert main([str(DATA / "sigmoid_sign.py")]) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAIL  Sigmoid") and "error: dx has the wrong sign" in out


def test_command_json_parses(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(DATA / "affine_db_not_summed.py"), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False
    (layer,) = doc["layers"]
    assert layer["name"] == "Affine" and layer["status"] == "FAIL"
    assert layer["gradients"]["dW"]["rel_error"] < 1e-8
    assert layer["gradients"]["db"]["rel_error"] is None
    assert layer["diagnoses"][0]["code"] == "shape_batch_sum"
    assert main([str(DATA / "book_layers.py"), "--json", "--lang", "zh"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is True and len(doc["layers"]) == len(BOOK_NAMES) + 3


def test_command_in_chinese(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(DATA / "seed_sigmoid_no_out.py"), "--lang", "zh"]) == 1
    out = capsys.readouterr().out
    assert "错误：backward 用到了 self.out，但此时它仍然是 None" in out
    assert len(HAN.findall(out)) > 20


# A file with a syntax error is written by the test: ruff could not parse it in the tree.
SYNTAX_ERROR = """class Relu:
    def forward(self, x):
        return x

    def backward(self, dout)
        return dout
"""


@pytest.mark.parametrize(
    ("stem", "code"),
    [
        ("raises_on_import", "load_raised"),
        ("syntax_error", "load_syntax"),
        ("no_layers", "no_layers"),
    ],
)
def test_files_that_cannot_be_checked(
    stem: str, code: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = DATA / f"{stem}.py"
    if stem == "syntax_error":
        path = tmp_path / "syntax_error.py"
        path.write_text(SYNTAX_ERROR)
    assert main([str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith(f"ERROR {stem}.py")
    assert "chainrule" not in captured.out.replace("chainrule check", "")  # no frame of ours
    assert captured.err == ""
    (report,) = check_file(path)
    assert report.status == "ERROR" and codes(report) == {code}
    if stem == "syntax_error":
        assert "line 5" in report.diagnoses[0].message() and "expected ':'" in captured.out


def test_learner_tracebacks_are_trimmed_to_the_learner_file() -> None:
    (report,) = check_file(DATA / "backward_raises.py")
    tb = report.diagnoses[0].traceback
    assert tb is not None and 'backward_raises.py", line 16, in backward' in tb
    assert "chainrule" not in tb and tb.rstrip().endswith("!= 3 (dim 0)")
    (report,) = check_file(DATA / "raises_on_import.py")
    tb = report.diagnoses[0].traceback
    assert "line 10, in <module>" in tb and "importlib" not in tb and "<frozen" not in tb


def test_missing_file_and_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "nope.py")]) == 1
    assert "cannot read" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main([str(DATA / "book_layers.py"), "--lang", "fr"])
    assert e.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_the_learner_file_runs_in_its_own_module(tmp_path: Path) -> None:
    (tmp_path / "helpers.py").write_text("def double(x):\n    return 2 * x\n")
    (tmp_path / "mine.py").write_text(
        "from helpers import double\n"
        "class Twice:\n"
        "    check_inputs = {'x': (2, 2)}\n"
        "    def forward(self, x):\n        return double(x)\n"
        "    def backward(self, dout):\n        return double(dout)\n"
        "if __name__ == '__main__':\n    raise SystemExit('the demo must not run')\n"
    )
    (report,) = check_file(tmp_path / "mine.py")  # its folder is importable, no demo
    assert report.status == "PASS"


def test_every_message_exists_in_both_languages() -> None:
    assert EN.keys() == ZH.keys()
    for code in ZH:
        assert HAN.search(ZH[code]), code
    with pytest.raises(ValueError, match="'en' or 'zh'"):
        render("forward_none", {}, "fr")
    assert Diagnosis("grad_sign", args={"grad": "dW"}).to_dict("zh")["message"].startswith("dW")


def test_loss_summed_over_the_batch_is_a_note_not_a_failure() -> None:
    class IdentityWithLoss:
        def forward(self, x, t):
            self.d = x - t
            return 0.5 * np.sum(self.d**2)  # the book's sum of squares: no / N

        def backward(self, dout=1):
            return self.d * dout

    report = check_layer(IdentityWithLoss)
    assert report.status == "PASS" and codes(report, "note") == {"forward_factor_batch"}

    class SoftmaxWithLoss:  # integer labels are fine too, and a backward without dout
        check_inputs = {"x": (4, 3), "t": np.array([0, 2, 1, 1])}  # noqa: RUF012

        def forward(self, x, t):
            e = np.exp(x - x.max(axis=1, keepdims=True))
            self.y, self.t = e / e.sum(axis=1, keepdims=True), t
            return -np.mean(np.log(self.y[np.arange(len(t)), t]))

        def backward(self):
            dx = self.y.copy()
            dx[np.arange(len(self.t)), self.t] -= 1
            return dx / len(self.t)

    report = check_layer(SoftmaxWithLoss)
    assert report.status == "PASS" and not report.diagnoses, str(report)


def test_a_layer_that_exits_or_returns_odd_things_is_reported() -> None:
    class Exits:
        check_inputs = {"x": (2, 2)}  # noqa: RUF012

        def forward(self, x):
            raise SystemExit(3)

        def backward(self, dout):
            return dout

    class Sigmoid:
        def forward(self, x):
            return "hello"

        def backward(self, dout):
            return "bye"

    report = check_layer(Exits)
    assert report.status == "FAIL" and codes(report) == {"forward_raised"}
    assert "SystemExit" in report.diagnoses[0].traceback
    assert codes(check_layer(Sigmoid)) == {"forward_constant", "backward_constant"}


def test_a_layer_that_never_returns_is_stopped(tmp_path: Path) -> None:
    path = tmp_path / "loop.py"
    path.write_text(
        "class Relu:\n"
        "    def forward(self, x):\n        while True:\n            pass\n"
        "    def backward(self, dout):\n        return dout\n"
    )
    (report,) = check_file(path, timeout=0.5)
    assert report.status == "FAIL" and codes(report) == {"timeout"}
    assert "line 3, in forward" in report.diagnoses[0].traceback
    assert "chainrule" not in report.diagnoses[0].traceback


def test_learner_prints_go_to_stderr_and_imports_are_forgotten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for i, folder in enumerate((tmp_path / "a", tmp_path / "b")):
        folder.mkdir()
        (folder / "layers.py").write_text(f"K = {i + 2}.0\nprint('loading layers')\n")
        (folder / "mine.py").write_text(
            "from layers import K\n"
            "class Times:\n"
            "    check_inputs = {'x': (2, 2)}\n"
            "    def forward(self, x):\n        print('forward!')\n        return K * x\n"
            f"    def backward(self, dout):\n        return {i + 2}.0 * dout\n"
        )
        assert main([str(folder / "mine.py"), "--json"]) == 0  # each folder's own K
        captured = capsys.readouterr()
        assert json.loads(captured.out)["ok"] is True
        assert "loading layers" in captured.err and "forward!" in captured.err


def test_a_base_class_is_skipped_and_float32_is_flagged() -> None:
    class Layer:
        def forward(self, x):
            raise NotImplementedError

        def backward(self, dout):
            raise NotImplementedError

    report = check_layer(Layer)
    assert report.status == "SKIP" and codes(report) == {"abstract", "guessed_inputs"}

    class Sigmoid:
        def forward(self, x):
            self.out = (1 / (1 + np.exp(-x))).astype(np.float32)
            return self.out

        def backward(self, dout):
            return dout * (1.0 - self.out) * self.out

    report = check_layer(Sigmoid)
    assert "low_precision" in codes(report, "warning")


def test_the_command_fits_a_subparser(capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from chainrule.checking import command

    parser = argparse.ArgumentParser(prog="chainrule")
    sub = parser.add_subparsers(dest="command")
    command.add_arguments(sub.add_parser("check")).set_defaults(func=command.run)
    args = parser.parse_args(["check", str(DATA / "mul_swapped.py"), "--lang", "zh"])
    assert args.func(args) == 1
    assert "顺序颠倒" in capsys.readouterr().out
