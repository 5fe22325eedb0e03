"""The shape of the ``chainrule.cli`` package: what ``--help`` imports, where choices come from."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

import chainrule
import test_train_cli
from chainrule import models, optim
from chainrule.cli import build_parser, choices, main

tiny = test_train_cli.tiny  # the tiny IDX files of test_train_cli.py

CLI_DIR = Path(chainrule.__file__).parent / "cli"
VIZ_DIR = Path(chainrule.__file__).parent / "viz"
HEAVY = ("chainrule.viz", "chainrule.expr", "chainrule.explain")


def imported_modules(*argv: str) -> list[str]:
    """The modules ``python -X importtime -m chainrule ARGV`` imports, from its report."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(CLI_DIR.parents[1]), *sys.path]))
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "chainrule", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    names = []
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            names.append(line.rsplit("|", 1)[1].strip())
    assert "chainrule.cli" in names, "the importtime report was not parsed"
    return names


@pytest.mark.parametrize("command", ["train", "evaluate", "predict", "demo"])
def test_help_imports_no_viz_expr_or_explain(command):
    names = imported_modules(command, "--help")
    loaded = [n for n in names if n.startswith(HEAVY)]
    assert loaded == [], f"chainrule {command} --help imported {loaded}"


def test_the_graph_command_still_imports_viz_when_it_runs():
    names = imported_modules("graph", "x * y", "--set", "x=2", "y=3")
    assert "chainrule.viz" in names and "chainrule.expr" in names


def _module_level_imports(path: Path) -> set[str]:
    """Modules a file imports at module level (function bodies are lazy imports)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_no_import_cycle_between_cli_and_viz():
    for path in sorted(CLI_DIR.glob("*.py")):
        eager = _module_level_imports(path)
        assert not [m for m in eager if m.startswith(HEAVY)], path.name
    for path in sorted(VIZ_DIR.glob("*.py")):
        if path.name == "cli.py":  # the old name of cli/graph.py, an alias kept for imports
            assert len(path.read_text().splitlines()) < 10
            continue
        source = path.read_text()
        assert "chainrule.cli" not in source, f"viz/{path.name} imports the CLI"


# --------------------------------------------------------------------------------------------
# choices come from the registries
# --------------------------------------------------------------------------------------------


def _parse_train(*argv: str):
    return build_parser().parse_args(["train", *argv])


def test_model_choices_and_defaults_are_the_registry(monkeypatch):
    spec = models.MODELS["mlp"]
    assert list(choices.models()) == list(models.MODELS)
    monkeypatch.setitem(models.MODELS, "tiny-mlp", spec)  # registered after import
    assert _parse_train("--model", "tiny-mlp").model == "tiny-mlp"
    assert choices.default_hidden("tiny-mlp") == choices.default_hidden("mlp")
    with pytest.raises(SystemExit):
        _parse_train("--model", "no-such-model")


def test_a_registered_model_trains_from_the_command_line(monkeypatch, capsys, tiny):
    monkeypatch.setitem(models.MODELS, "my-net", models.MODELS["two-layer"])
    code = main(
        ["train", "--model", "my-net", "--data-dir", str(tiny.root), "--batch-size", "50",
         "--iterations", "3", "--no-progress", "--hidden", "8"]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "test accuracy" in out


def test_optimizer_choices_and_default_lr_are_the_registry(monkeypatch):
    registry = choices.optimizers()
    assert {"sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"} <= set(registry)
    expected = {"sgd": 0.1, "momentum": 0.01, "adagrad": 0.01, "adam": 0.001, "adamw": 0.001}
    for name, lr in expected.items():
        assert choices.default_lr(name) == lr, name

    class Lion(optim.SGD):
        default_lr = 3e-4

    monkeypatch.setitem(registry, "lion", Lion)
    assert _parse_train("--optimizer", "lion").optimizer == "lion"
    assert choices.default_lr("lion") == 3e-4
    assert "3e-04 lion" in choices.lr_help() or "0.0003 lion" in choices.lr_help()


def test_activation_and_schedule_choices():
    assert set(choices.activations()) >= {"relu", "sigmoid", "tanh"}
    assert choices.schedules()[0] == "none" and {"step", "cosine"} <= set(choices.schedules())
    for name in choices.activations():
        assert _parse_train("--activation", name).activation == name
    for name in choices.schedules():
        assert _parse_train("--schedule", name).schedule == name


def test_help_lists_the_registry(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for name in models.MODELS:
        assert name in out
    assert "50 for two-layer" in out and "256,128 for mlp" in out
    assert "0.1 sgd" in out


# --------------------------------------------------------------------------------------------
# the shared argparse types
# --------------------------------------------------------------------------------------------


def test_benchmarks_use_the_shared_types():
    from chainrule.cli import args

    source = (Path(__file__).parents[1] / "benchmarks" / "__main__.py").read_text()
    assert "from chainrule.cli.args import" in source or "from chainrule.cli import args" in source
    assert "def _positive(" not in source and "def _non_negative(" not in source
    parse = args.int_list("threads")
    assert parse("1,2") == [1, 2]
    with pytest.raises(Exception, match="at least 1"):
        parse("0")


def test_old_import_paths_still_work():
    from chainrule.cli import UserError, entry_point
    from chainrule.cli.graph import add_parser, run
    from chainrule.viz.cli import add_graph_parser, cmd_graph

    assert add_graph_parser is add_parser and cmd_graph is run
    assert callable(entry_point) and issubclass(UserError, Exception)
