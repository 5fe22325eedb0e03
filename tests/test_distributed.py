"""Data-parallel training over MPI (``chainrule.distributed``): ``mpiexec -n 2`` reproduces
the single-process run.

The MPI tests launch ``mpiexec -n 2`` on tiny IDX files written here (the checksums are
pinned for them inside the launched processes by :data:`RUNNER`) and skip visibly when
mpi4py or an ``mpiexec`` is missing (``pip install 'chainrule[distributed]'``). Tolerance:
the 2-process run sums the shard gradients in another order than the 1-process run sums the
batch's, so float32 values may differ by a few units in the last place per step; after the
18 steps run here, history values agree to a relative 1e-4 (measured: 1e-8 to 7e-8 for
TwoLayerNet and for the batch-norm nets; without synchronized batch norm the batch-norm nets
are off by 4e-2).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from chainrule.distributed import DistributedError, launched_size, shard_bounds
from chainrule.distributed.launch import require_mpi

RTOL = 1e-4
N_TRAIN, N_TEST = 240, 80

# Run in each launched process: pins the tiny files' checksums, then the command line (or,
# with "script", a Python file).
RUNNER = textwrap.dedent(
    """
    import dataclasses, gzip, hashlib, os, runpy, sys
    from pathlib import Path
    import chainrule.datasets.mnist as m
    folder = Path(os.environ["TINY_MNIST"]) / "mnist"
    specs = {}
    for role, name in {"train_images": "train-images-idx3-ubyte.gz",
                       "train_labels": "train-labels-idx1-ubyte.gz",
                       "test_images": "t10k-images-idx3-ubyte.gz",
                       "test_labels": "t10k-labels-idx1-ubyte.gz"}.items():
        data = (folder / name).read_bytes(); raw = gzip.decompress(data)
        specs[role] = m.FileSpec(name, len(data), md5=hashlib.md5(data).hexdigest(),
            sha256=hashlib.sha256(data).hexdigest(), raw_md5=hashlib.md5(raw).hexdigest(),
            raw_sha256=hashlib.sha256(raw).hexdigest())
    m._SPECS["mnist"] = dataclasses.replace(m.MNIST, **specs)
    if sys.argv[1] == "script":
        sys.argv = sys.argv[2:]
        runpy.run_path(sys.argv[0], run_name="__main__")
    else:
        from chainrule.cli import main
        sys.exit(main(sys.argv[1:]))
    """
)


def _mpiexec() -> str:
    pytest.importorskip(
        "mpi4py", reason="the distributed extra: pip install 'chainrule[distributed]'"
    )
    here = Path(sys.executable).parent / "mpiexec"
    found = str(here) if here.exists() else shutil.which("mpiexec")
    if found is None:
        pytest.skip("no mpiexec (pip install 'chainrule[distributed]' brings MPICH's)")
    return found


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """Tiny MNIST-shaped IDX files: ten bar glyphs plus noise."""
    from chainrule.datasets import write_idx

    root = tmp_path_factory.mktemp("tiny")
    (root / "mnist").mkdir()
    glyphs = np.zeros((10, 28, 28))
    for k in range(10):
        glyphs[k, 4 + 2 * k : 8 + 2 * k, 4:24] = 1.0
    for prefix, n, seed in (("train", N_TRAIN, 1), ("t10k", N_TEST, 2)):
        rng = np.random.default_rng(seed)
        t = rng.integers(0, 10, n).astype(np.uint8)
        x = np.clip(glyphs[t] + rng.normal(0, 0.3, (n, 28, 28)), 0, 1)
        write_idx(root / "mnist" / f"{prefix}-images-idx3-ubyte.gz", (x * 255).astype(np.uint8))
        write_idx(root / "mnist" / f"{prefix}-labels-idx1-ubyte.gz", t)
    (root / "runner.py").write_text(RUNNER)
    return root


def launch(tiny: Path, n: int, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """``chainrule`` (or ``script FILE``) in ``n`` processes (``n == 1``: no mpiexec)."""
    env = {**os.environ, "TINY_MNIST": str(tiny), "CHAINRULE_OFFLINE": "1"}
    env["OPENBLAS_NUM_THREADS"] = "1"
    env.pop("CHAINRULE_DATA", None)
    # Open MPI's mpiexec refuses to start as root (a container's user; seen on a GPU machine)
    # unless told to; MPICH's ignores these.
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    # The processes run this interpreter, so they import the chainrule these tests import.
    command = [sys.executable, str(tiny / "runner.py"), *argv]
    if n > 1:
        command = [_mpiexec(), "-n", str(n), *command]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env=env, cwd=tiny
    )


def train(tiny: Path, n: int, out: Path, *flags: str) -> dict:
    """``chainrule train`` on the tiny set in ``n`` processes; returns the history."""
    history = out / f"history-{n}.json"
    args = ["train", "--data-dir", str(tiny), "--batch-size", "40", "--no-progress"]
    done = launch(tiny, n, *args, "--history", str(history), "--eval-subset", "240", *flags)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(history.read_text())


def assert_same_history(one: dict, two: dict) -> None:
    assert one["iteration"] == two["iteration"]
    for key in ("train_loss", "train_acc", "test_loss", "test_acc", "batch_loss", "lr"):
        np.testing.assert_allclose(two[key], one[key], rtol=RTOL, err_msg=key)


# ---- without MPI


def test_launch_is_detected_from_the_launchers_variables():
    assert launched_size({"OMPI_COMM_WORLD_SIZE": "8"}) == 8
    assert launched_size({"PMI_SIZE": "2", "PMI_RANK": "0"}) == 2
    assert launched_size({"SLURM_STEP_NUM_TASKS": "16"}) == 16
    assert launched_size({"SLURM_NTASKS": "16"}) == 1  # sbatch's batch script: no step yet
    assert launched_size({"PMI_SIZE": "junk"}) == 1


def test_a_batch_that_does_not_divide_is_refused():
    assert shard_bounds(100, 4, 3) == (75, 100)
    with pytest.raises(DistributedError, match="batch size 100 does not divide among 3"):
        shard_bounds(100, 3, 0)


def test_without_mpi4py_a_one_line_error_names_the_install_command(monkeypatch, capsys):
    from chainrule.cli import main

    monkeypatch.setitem(sys.modules, "mpi4py", None)  # as if not installed
    with pytest.raises(DistributedError, match=r"pip install 'chainrule\[distributed\]'"):
        require_mpi()
    assert main(["train", "--distributed", "--iterations", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'chainrule[distributed]'" in err


# ---- mpiexec -n 2


def test_two_processes_reproduce_the_two_layer_run_and_its_checkpoint(tiny, tmp_path):
    one = train(tiny, 1, tmp_path, "--iterations", "18")
    ckpt = tmp_path / "two.ckpt"
    two = train(tiny, 2, tmp_path, "--iterations", "18", "--save", str(ckpt))
    assert_same_history(one, two)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "history-1.json",
        "history-2.json",
        "two.ckpt",
    ]  # one checkpoint, no lock file left
    done = launch(tiny, 1, "evaluate", str(ckpt), "--json", "--data-dir", str(tiny))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    np.testing.assert_allclose(report["test_loss"], two["test_loss"][-1], rtol=1e-6)
    assert report["test_accuracy"] == pytest.approx(two["test_acc"][-1])


def test_a_resumed_two_process_run_continues_the_one_process_run(tiny, tmp_path):
    one = train(tiny, 1, tmp_path, "--iterations", "18", "--optimizer", "adam")
    half = tmp_path / "half.ckpt"
    train(tiny, 2, tmp_path, "--iterations", "12", "--optimizer", "adam", "--save", str(half))
    rest = train(tiny, 2, tmp_path, "--resume", str(half), "--iterations", "18")
    assert_same_history(one, rest)


@pytest.mark.parametrize("engine", ["autograd", "layers"])
def test_batch_norm_statistics_are_the_global_batchs(tiny, tmp_path, engine):
    flags = ("--model", "mlp", "--hidden", "32,32", "--batchnorm", "--iterations", "18")
    one = train(tiny, 1, tmp_path, *flags, "--engine", engine)
    two = train(tiny, 2, tmp_path, *flags, "--engine", engine)
    assert_same_history(one, two)


KILLER = textwrap.dedent(
    """
    import os, signal, sys, time
    import numpy as np
    from chainrule.distributed import DataParallel
    from chainrule.layers import TwoLayerNet
    from chainrule.optim import SGD
    from chainrule.training import Trainer

    rng = np.random.default_rng(0)
    x, t = rng.normal(size=(400, 20)), rng.integers(0, 3, 400)
    dp = DataParallel(timeout=float(sys.argv[2]))

    def on_step(trainer, step, grads):
        if step == 3 and dp.rank == 1:
            if sys.argv[1] == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(600)  # hangs: rank 0 waits in the next allreduce

    net = TwoLayerNet(20, 10, 3, rng=np.random.default_rng(0))
    trainer = Trainer(net, SGD(lr=0.1), x, t, x, t, batch_size=20, iterations=10_000,
                      progress="none", on_step=on_step)
    dp.attach(trainer).fit()
    """
)


@pytest.mark.parametrize("how", ["kill", "hang"])
def test_a_dead_or_hung_rank_ends_the_job_with_a_message(tiny, tmp_path, how):
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    done = launch(tiny, 2, "script", str(script), how, "2", timeout=45)
    assert done.returncode != 0
    output = done.stdout + done.stderr
    if how == "hang":  # the watchdog's message
        assert "rank 0 of 2 waited more than 2 s in the gradient allreduce" in output
        assert "another rank died or hangs; aborting the job" in output
    else:  # the launcher's (MPICH's Hydra; Open MPI's, seen on a GPU machine) or ours
        launcher = ("BAD TERMINATION", "exited on signal 9")
        assert any(m in output for m in launcher) or "aborting the job" in output, output


def test_the_watchdog_timeout_comes_from_the_environment(monkeypatch):
    from chainrule.distributed.parallel import _timeout_from_environment

    monkeypatch.setenv("CHAINRULE_MPI_TIMEOUT", "2.5")
    assert _timeout_from_environment() == 2.5
    monkeypatch.setenv("CHAINRULE_MPI_TIMEOUT", "0")
    assert _timeout_from_environment() is None
    monkeypatch.setenv("CHAINRULE_MPI_TIMEOUT", "soon")
    with pytest.raises(DistributedError, match="CHAINRULE_MPI_TIMEOUT='soon'"):
        _timeout_from_environment()


def test_the_ring_allreduce_model_of_the_benchmark():
    root = str(Path(__file__).resolve().parents[1])
    if root not in sys.path:
        sys.path.insert(0, root)
    from benchmarks.distributed import LATENCY_S, efficiency, ring_allreduce_seconds

    # Two machines: each sends half the buffer twice (reduce-scatter, allgather).
    expected = 1e6 * 8 / 10e9 + 2 * LATENCY_S
    assert ring_allreduce_seconds(1e6, 2, 10e9) == pytest.approx(expected)
    # Many machines: the bytes term tends to twice the buffer; latency grows with N.
    many = ring_allreduce_seconds(1e6, 1000, 10e9)
    assert many == pytest.approx(2 * 0.999 * 8e-4 + 1998 * LATENCY_S)
    # The small net (40k float32 parameters, ~1 ms a step) stops scaling; a big one less so.
    assert efficiency(1e-3, 159_040, 64, 10e9) < 0.05
    assert efficiency(0.15, 7_454_760, 8, 100e9) > 0.8


def test_a_batch_that_does_not_divide_among_the_processes_is_a_one_line_error(tiny):
    args = ["train", "--data-dir", str(tiny), "--batch-size", "45", "--iterations", "2"]
    done = launch(tiny, 2, *args)
    assert done.returncode != 0
    expected = "--batch-size 45 does not divide among 2 processes: pass a multiple of 2"
    assert expected in done.stderr
    assert "Traceback" not in done.stderr
