"""The worked examples in the repository's ``examples/`` folder run as plain scripts, print the
seeds' numbers, and are the very code ``chainrule demo`` runs (one copy of each)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import chainrule.examples

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"

# Numbers the seed notes print for each example (book 5.4, CS231n).
SEED_NUMBERS = {
    "apple.py": ["220", "2.2", "110", "200"],
    "apple_orange.py": ["715", "110", "2.2", "3.3", "165", "650"],
    "circuit.py": ["q  3", "f  -12", "x  -4", "y  -4", "z  3"],
    "square_sum.py": ["t  5", "z  25", "x  10", "y  10"],
    "sigmoid_neuron.py": ["0.7310585786", "-0.1966119332", "-0.3932238665", "0.3932238665"],
    "staged.py": ["+="],
    "two_layer_check.py": ["W1", "b2"],
}


@pytest.mark.parametrize("script", sorted(SEED_NUMBERS))
def test_example_script_runs_and_prints_the_seed_numbers(script: str) -> None:
    out = subprocess.run(
        [sys.executable, str(EXAMPLES_DIR / script)], capture_output=True, text=True, check=True
    ).stdout
    for number in SEED_NUMBERS[script]:
        assert number in out, f"{script} does not print {number}:\n{out}"


def test_demo_runs_the_files_in_the_examples_folder() -> None:
    # Installed from this checkout (editable) or as a copy (a wheel): either way the package
    # chainrule.examples holds exactly the files of examples/, byte for byte.
    installed = Path(chainrule.examples.__file__).resolve().parent
    names = {p.name for p in EXAMPLES_DIR.glob("*.py")}
    assert names - {"__init__.py"} == set(SEED_NUMBERS)
    assert {p.name for p in installed.glob("*.py")} == names
    for name in names:
        assert (installed / name).read_bytes() == (EXAMPLES_DIR / name).read_bytes(), name
