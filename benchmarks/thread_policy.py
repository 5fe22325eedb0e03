"""The Python API against the command line, with one core busy: does the thread policy hold?

Issue #16: with one core of a 2-core machine busy, 3,000 steps of ``Trainer`` on
``TwoLayerNet`` in plain Python took 8.7 s against 2.6 s for ``chainrule train --iterations
3000``, because only the CLI limited BLAS to one thread. Now ``Trainer(threads="auto")`` picks
the count itself. This script runs, each in a fresh process and with a busy-loop process
occupying one core the whole time:

* ``cli``: ``python -m chainrule train --iterations N --no-progress`` (its default ``--threads
  1``);
* ``trainer-auto``: the same run in plain Python, ``Trainer(...)`` with the default
  ``threads="auto"``;
* ``trainer-all``: the same with ``threads=None``, BLAS left at all cores (what plain Python
  did before the policy).

No ``OPENBLAS_NUM_THREADS`` or similar is passed to the children, as for a user who sets
nothing. The reported time is the training loop's (``training time`` of the CLI's summary,
``Trainer.elapsed()``), so data loading does not count. Run::

    python -m benchmarks.thread_policy [--iterations 3000] [--rounds 3] [--data-dir DIR]

Target (issue #16): ``trainer-auto`` within 1.3x of ``cli``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

_TRAINER = """
import sys, time
from chainrule.datasets import load_mnist
from chainrule.models import build_model, model_config
from chainrule.optim import optimizer_from_name
from chainrule.training import Trainer

iterations, threads, data_dir = int(sys.argv[1]), sys.argv[2], sys.argv[3] or None
threads = None if threads == "none" else threads
(x, t), (xt, tt) = load_mnist(data_dir=data_dir)
cfg = model_config("two-layer", input_size=784)
trainer = Trainer(
    build_model(cfg, rng=0), optimizer_from_name("sgd"), x, t, xt, tt, iterations=iterations,
    eval_subset=10_000, progress="none", model_config=cfg, threads=threads,
)
trainer.fit()
print(f"threads {trainer.threads_note}")
print(f"training time {trainer.elapsed():.3f} s")
"""

_BUSY = "while True:\n    pass\n"
_ENV_DROP = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _ENV_DROP}
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    return env


def _seconds(output: str) -> float:
    match = re.search(r"training time\s+([0-9.]+) s", output)
    if match is None:
        raise RuntimeError(f"no training time in the output:\n{output}")
    return float(match.group(1))


def run_once(kind: str, iterations: int, data_dir: str) -> float:
    """Seconds of one run of ``kind`` (``cli``, ``trainer-auto``, ``trainer-all``)."""
    if kind == "cli":
        command = [sys.executable, "-m", "chainrule", "train", "--iterations", str(iterations)]
        command += ["--no-progress", "--eval-subset", "10000"]
        command += ["--data-dir", data_dir] if data_dir else []
    else:
        threads = "auto" if kind == "trainer-auto" else "none"
        command = [sys.executable, "-c", _TRAINER, str(iterations), threads, data_dir]
    done = subprocess.run(command, capture_output=True, text=True, env=_env(), check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} failed:\n{done.stdout}\n{done.stderr}")
    return _seconds(done.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.thread_policy")
    parser.add_argument("--iterations", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data-dir", default=os.environ.get("CHAINRULE_DATA", ""))
    parser.add_argument("--no-busy", action="store_true", help="leave every core idle")
    args = parser.parse_args(argv)
    kinds = ("cli", "trainer-auto", "trainer-all")
    times: dict[str, list[float]] = {k: [] for k in kinds}
    busy = None if args.no_busy else subprocess.Popen([sys.executable, "-c", _BUSY])
    try:
        time.sleep(0.5)
        for _ in range(args.rounds):  # interleaved, so drifts hit every kind alike
            for kind in kinds:
                times[kind].append(run_once(kind, args.iterations, args.data_dir))
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = "idle" if args.no_busy else "1 core busy"
    print(f"{args.iterations} steps of the default two-layer MNIST run, {cores} cores, {load}")
    best_cli = min(times["cli"])
    for kind in kinds:
        best = min(times[kind])
        runs = ", ".join(f"{t:.2f}" for t in times[kind])
        print(f"  {kind:<13} best {best:6.2f} s  ({best / best_cli:4.2f}x cli)  runs: {runs}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
