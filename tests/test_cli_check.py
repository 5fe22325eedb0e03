"""``chainrule check FILE``: the command line of :mod:`chainrule.checking`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from chainrule.cli import main

DATA = Path(__file__).parent / "data" / "check"


def test_check_passes_the_books_layers_and_prints_json(capsys):
    assert main(["check", str(DATA / "book_layers.py"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and report["layers"]


def test_check_names_the_seed_bug_in_english_and_chinese(capsys):
    assert main(["check", str(DATA / "seed_add_multiplies.py")]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "AddLayer" in out and "x + y" in out
    assert main(["check", str(DATA / "seed_add_multiplies.py"), "--lang", "zh"]) == 1
    out = capsys.readouterr().out
    assert any("\u4e00" <= ch <= "\u9fff" for ch in out)  # Chinese sentences


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--lang", "fr", "x.py"], "invalid choice: 'fr'"),
        (["--timeout", "0", "x.py"], "must be positive"),
        (["--seed", "-1", "x.py"], "must be at least 0"),
        ([], "the following arguments are required: FILE"),
    ],
)
def test_check_bad_flags_are_one_line(capsys, argv, fragment):
    with pytest.raises(SystemExit) as e:
        main(["check", *argv])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and fragment in err


def test_check_from_a_process(tmp_path):
    missing = tmp_path / "nope.py"
    done = subprocess.run(
        [sys.executable, "-m", "chainrule", "check", str(missing)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr + done.stdout
