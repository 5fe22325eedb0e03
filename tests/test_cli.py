"""The command line, run in-process through ``main([...])``."""

from __future__ import annotations

import pytest

from chainrule.cli import main


def test_demo_all_prints_every_seed_number(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "apple", "apple-orange", "circuit", "staged", "sigmoid-neuron"]) == 0
    out = capsys.readouterr().out
    for expected in ["220", "2.2", "110", "200", "715", "3.3", "165", "650", "-12", "-4"]:
        assert f" {expected}\n" in out or f" {expected} " in out, expected
    assert "+= " in out  # the staged example shows accumulation at forks


def test_demo_square_sum(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "square-sum"]) == 0
    out = capsys.readouterr().out
    assert "z  25" in out and "x  10" in out


def test_demo_unknown_name_is_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "pear"]) == 2
    err = capsys.readouterr().err
    assert "unknown example 'pear'" in err and "apple" in err
    assert "Traceback" not in err


def test_python_dash_m_entry_point() -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "chainrule", "demo", "apple"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "price        220" in done.stdout


def test_bad_flag_exits_non_zero() -> None:
    with pytest.raises(SystemExit) as e:
        main(["demo", "--no-such-flag"])
    assert e.value.code == 2


def test_blas_threads_limits_inside_the_block() -> None:
    threadpoolctl = pytest.importorskip("threadpoolctl")  # in the dev and all extras
    from chainrule.training.threads import blas_threads

    with blas_threads(1) as limited:
        assert limited
        blas = [p for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
        assert blas and all(p["num_threads"] == 1 for p in blas)
    with blas_threads(None) as limited:
        assert limited


def test_train_rejects_zero_threads(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["train", "--threads", "0"])
    assert e.value.code == 2
    assert "--threads" in capsys.readouterr().err
