"""Data-parallel training over MPI: 1 vs 2 ranks on this machine, and projected scaling.

``python -m benchmarks.distributed`` (needs ``pip install 'chainrule[distributed]'``) launches,
for each net and rank count, ``mpiexec -n N python -m benchmarks.distributed --worker NET``.
Every worker times ``steps`` data-parallel SGD steps of the global batch (after ``warmup``
untimed ones) with one BLAS thread: the shard's forward and backward (``compute``), the
gradient ``Allreduce`` (``allreduce``) and the update. Rank 0 reports JSON; the parent prints
the table, then projects the efficiency of 2-64 machines with the ring-allreduce model of
docs/distributed.md from the measured 1-rank compute time and each net's gradient bytes.

Nets: ``small`` (TwoLayerNet 784-50-10, batch 100), ``big`` (MLP 784-1024-1024-10, batch
256), ``conv`` (SimpleConvNet, batch 100). Data: random MNIST-shaped float32 arrays.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

#: name -> (model registry name, hidden sizes, global batch)
NETS: dict[str, tuple[str, list[int] | None, int]] = {
    "small": ("two-layer", [50], 100),
    "big": ("mlp", [1024, 1024], 256),
    "conv": ("simple-cnn", None, 100),
}
STEPS = {"small": 300, "big": 20, "conv": 20}
QUICK_STEPS = {"small": 5, "big": 2, "conv": 2}
MACHINES = (2, 4, 8, 16, 32, 64)
#: Network bandwidths in bit/s and the per-message latency of the ring's steps (TCP/Ethernet).
BANDWIDTHS = {"10 Gbit/s": 10e9, "100 Gbit/s": 100e9}
LATENCY_S = 50e-6


def ring_allreduce_seconds(nbytes: float, machines: int, bandwidth: float) -> float:
    """Time of one ring allreduce of ``nbytes`` over ``machines`` (bandwidth in bit/s).

    Reduce-scatter then allgather: ``2 (N-1)`` steps, each sending ``nbytes / N``:
    ``2 (N-1)/N * nbytes * 8 / bandwidth + 2 (N-1) * latency``.

    >>> round(ring_allreduce_seconds(1e6, 2, 10e9) * 1e6)  # 1 MB, 2 machines, 10 Gbit/s: us
    900
    """
    n = machines
    return 2 * (n - 1) / n * nbytes * 8 / bandwidth + 2 * (n - 1) * LATENCY_S


def efficiency(compute_s: float, nbytes: float, machines: int, bandwidth: float) -> float:
    """Speed-up over one machine divided by ``machines``, for a fixed global batch.

    Each machine computes ``1/N`` of the batch (``compute_s / N``), then the allreduce; the
    allreduce does not overlap the backward pass in chainrule.

    >>> efficiency(1.0, 0.0, 4, 10e9) > 0.99
    True
    """
    per_step = compute_s / machines + ring_allreduce_seconds(nbytes, machines, bandwidth)
    return compute_s / (machines * per_step)


# ---- the worker (one MPI rank)


def _model(net: str) -> tuple[Any, int]:
    from chainrule.models import build_model, model_config

    name, hidden, batch = NETS[net]
    options: dict[str, Any] = {"hidden": hidden} if hidden else {}
    config = model_config(name, input_size=784, output_size=10, **options)
    return build_model(config, rng=0), batch


def worker(net: str, steps: int, warmup: int) -> dict[str, Any]:
    import numpy as np

    from chainrule.distributed import DataParallel
    from chainrule.optim import SGD

    dp = DataParallel()
    model, batch = _model(net)
    dp.broadcast_state(model)
    rng = np.random.default_rng(1)
    x = rng.random((4 * batch, 784), dtype=np.float32)
    t = rng.integers(0, 10, len(x))
    optimizer = SGD(lr=0.01)
    for i in range(warmup + steps):
        if i == warmup:
            dp.comm.Barrier()
            dp.comm_seconds = dp.compute_seconds = 0.0
            start = time.perf_counter()
        rows = slice((i % 4) * batch, (i % 4 + 1) * batch)
        _, grads = dp.compute_grads(model, x[rows], t[rows])
        optimizer.update(model.params, grads)
    dp.comm.Barrier()
    wall = time.perf_counter() - start
    nbytes = sum(p.nbytes for p in model.params.values())
    return {
        "net": net, "ranks": dp.size, "batch": batch, "steps": steps, "grad_bytes": nbytes,
        "samples_per_s": steps * batch / wall, "step_ms": 1e3 * wall / steps,
        "compute_ms": 1e3 * dp.compute_seconds / steps,
        "allreduce_ms": 1e3 * dp.comm_seconds / steps,
    }  # fmt: skip


# ---- the parent


def _mpiexec() -> str:
    here = Path(sys.executable).parent / "mpiexec"
    return str(here) if here.exists() else "mpiexec"


def measure(net: str, ranks: int, steps: int, warmup: int) -> dict[str, Any]:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "src"), env.get("PYTHONPATH", "")])
    command = [sys.executable, "-m", "benchmarks.distributed", "--worker", net]
    command += ["--steps", str(steps), "--warmup", str(warmup)]
    done = subprocess.run(
        [_mpiexec(), "-n", str(ranks), *command],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=600,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"benchmark worker {net} x{ranks} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measured_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| net | ranks | batch/rank | samples/s | step ms | compute ms | allreduce ms "
        "| gradient KiB |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['net']} | {r['ranks']} | {r['batch'] // r['ranks']} | "
            f"{r['samples_per_s']:,.0f} | {r['step_ms']:.2f} | {r['compute_ms']:.2f} | "
            f"{r['allreduce_ms']:.3f} | {r['grad_bytes'] / 1024:,.0f} |"
        )
    return "\n".join(lines)


def projection_table(rows: list[dict[str, Any]]) -> str:
    header = " | ".join(str(n) for n in MACHINES)
    lines = [f"| net | network | {header} |", "|---|---|" + "--:|" * len(MACHINES)]
    for r in rows:
        if r["ranks"] != 1:
            continue
        compute = r["compute_ms"] / 1e3  # one machine's forward + backward of the batch
        for label, bandwidth in BANDWIDTHS.items():
            cells = " | ".join(
                f"{100 * efficiency(compute, r['grad_bytes'], n, bandwidth):.0f}%" for n in MACHINES
            )
            lines.append(f"| {r['net']} | {label} | {cells} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.distributed", description=__doc__)
    parser.add_argument("--nets", default=",".join(NETS), help="comma-separated: small,big,conv")
    parser.add_argument("--ranks", default="1,2", help="rank counts (default 1,2)")
    parser.add_argument("--steps", type=int, help="timed steps (default: small 300, big 20, ...)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="a smoke run: a few steps")
    parser.add_argument("--json", metavar="FILE", help="write the measurements as JSON")
    parser.add_argument("--worker", metavar="NET", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        result = worker(args.worker, args.steps, args.warmup)
        from mpi4py import MPI

        if MPI.COMM_WORLD.Get_rank() == 0:
            print(json.dumps(result), flush=True)
        return 0
    nets = [n for n in args.nets.split(",") if n]
    unknown = sorted(set(nets) - set(NETS))
    if unknown:
        parser.error(f"unknown net(s) {', '.join(unknown)}; choose from {', '.join(NETS)}")
    steps = QUICK_STEPS if args.quick else STEPS
    rows = [
        measure(net, int(ranks), args.steps or steps[net], 1 if args.quick else args.warmup)
        for net in nets
        for ranks in args.ranks.split(",")
    ]
    print(measured_table(rows), end="\n\n")
    print(f"Projected efficiency (ring allreduce, latency {LATENCY_S * 1e6:g} us per step):")
    print(projection_table(rows))
    if args.json is not None:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
