"""``python -m benchmarks``: training throughput of the book's networks, chainrule vs references,
and (``--nets conv``) the forward and backward of SimpleConvNet's convolution.

The parent process measures nothing itself. For each thread count it starts a *worker*
subprocess with ``OPENBLAS_NUM_THREADS``/``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` set (BLAS reads
them when NumPy loads, so they cannot be changed inside a running process); the worker times
all rows interleaved and reports raw seconds as JSON. Then, per row, a fresh *memory probe*
subprocess builds only that row and trains a few steps, and reports its peak RSS
(``resource.getrusage``, process-wide, hence one process per row). The parent prints the tables
and writes everything to ``--json``.

See docs/benchmarks.md for what the rows and columns mean.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import machine, report
from chainrule.cli.args import (
    int_list,
    name_list,
    non_negative_float,
    non_negative_int,
    positive_int,
)

ROOT = Path(__file__).resolve().parent.parent
MLP_NETS = ("small", "big")
#: The book's conv nets, trained end to end (benchmarks/convnet_throughput.py).
CONVNET_NAMES = ("simple-cnn", "deep-cnn")
#: ``conv`` is SimpleConvNet's convolution (benchmarks/conv_throughput.py). Neither it nor the
#: conv nets are in the default run: ``--nets conv`` or ``--nets simple-cnn,deep-cnn``.
NET_NAMES = (*MLP_NETS, "conv", *CONVNET_NAMES)
ROW_NAMES = ("chainrule-layers", "chainrule-autograd", "numpy-f64", "numpy-f32", "pytorch")
GPU_ROW_NAMES = ("chainrule-layers-cuda", "chainrule-autograd-cuda", "pytorch-cuda")

# What --quick changes (a smoke run for tests: seconds, not minutes).
QUICK = {"repeats": 2, "warmup": 1, "pool": 1024,
         "steps": {"small": 3, "big": 1, "conv": 1, "simple-cnn": 1, "deep-cnn": 1},
         "peak_size": 256, "peak_tries": 2, "memory_steps": 1, "gap": 0.0}  # fmt: skip
FULL = {"repeats": 5, "warmup": 1, "pool": 8192,
        "steps": {"small": 500, "big": 12, "conv": 20, "simple-cnn": 30, "deep-cnn": 6},
        "peak_size": 2048, "peak_tries": 5, "memory_steps": 3, "gap": 0.15}  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Training throughput (samples/s), epoch time, peak memory and GFLOP/s of "
        "the book's networks: chainrule's layers and autograd paths against a plain NumPy loop "
        "and PyTorch on the CPU, timed interleaved in one process per thread count.",
    )
    parser.add_argument(
        "--threads", type=int_list("thread counts"), default=[1, 2], metavar="N[,N...]",
        help="BLAS/OpenMP thread counts, one worker process each (default: 1,2)",
    )  # fmt: skip
    parser.add_argument("--repeats", type=positive_int, help="timed rounds (default 5; quick 2)")
    parser.add_argument(
        "--warmup", type=non_negative_int, help="untimed rounds first (default 1; quick 1)"
    )
    parser.add_argument(
        "--steps", type=positive_int,
        help="training steps per timed run, for every net (default: small 500, big 12, "
        "conv 20, simple-cnn 30, deep-cnn 6; quick: 3, 1, 1, 1, 1)",
    )  # fmt: skip
    parser.add_argument(
        "--nets", type=name_list("nets", NET_NAMES), default=list(MLP_NETS), metavar="NET[,NET]",
        help="small (784-50-10, batch 100), big (784-1024-1024-10, batch 256), conv "
        "(SimpleConvNet's convolution: batch 100 of 1x28x28, 30 filters 5x5, forward and "
        "backward), simple-cnn and deep-cnn (the book's SimpleConvNet and DeepConvNet trained "
        "with Adam, batch 100: rows chainrule-layers, chainrule-autograd, pytorch); only "
        "small,big by default",
    )  # fmt: skip
    parser.add_argument(
        "--rows", type=name_list("rows", ROW_NAMES + GPU_ROW_NAMES), default=list(ROW_NAMES),
        metavar="ROW[,ROW...]",
        help=f"which implementations to time (default all CPU rows: {', '.join(ROW_NAMES)}); "
        "the conv rows are chainrule, im2col-ref and pytorch (dropped when pytorch is left out)",
    )  # fmt: skip
    parser.add_argument(
        "--gpu", action="store_true",
        help=f"add the GPU rows ({', '.join(GPU_ROW_NAMES)}) for the small, big, simple-cnn and "
        "deep-cnn nets; a row whose GPU library is missing is left out with a note",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write all results here")
    parser.add_argument("--quick", action="store_true", help="a tiny run (for tests)")
    parser.add_argument(
        "--no-memory", action="store_true", help="skip the per-row peak-memory subprocesses"
    )
    parser.add_argument(
        "--gap", type=non_negative_float, metavar="SECONDS",
        help="sleep before each timed run so spinning BLAS/OpenMP threads of the previous row "
        "go idle (default 0.15; quick 0)",
    )  # fmt: skip
    parser.add_argument(
        "--unset-coretype", action="store_true",
        help="remove OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE from the workers' environment",
    )  # fmt: skip
    # Internal: the worker and memory-probe modes the parent starts.
    parser.add_argument("--_worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--_memory", metavar="NET:ROW", help=argparse.SUPPRESS)
    parser.add_argument("--threads-one", type=positive_int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--_out", type=Path, help=argparse.SUPPRESS)
    return parser


def settings(args: argparse.Namespace) -> dict[str, Any]:
    """The effective settings: --quick or full defaults, overridden by explicit options."""
    base = dict(QUICK if args.quick else FULL)
    steps = dict(base["steps"])
    if args.steps is not None:
        steps = dict.fromkeys(steps, args.steps)
    return {
        **base,
        "repeats": base["repeats"] if args.repeats is None else args.repeats,
        "warmup": base["warmup"] if args.warmup is None else args.warmup,
        "steps": {net: steps[net] for net in args.nets},
        "nets": list(args.nets),
        "rows": list(args.rows) + [r for r in GPU_ROW_NAMES if args.gpu and r not in args.rows],
        "threads": list(args.threads),
        "gap": base["gap"] if args.gap is None else args.gap,
        "quick": args.quick,
        "unset_coretype": args.unset_coretype,
    }


# --------------------------------------------------------------------------- subprocesses


def worker_env(threads: int, unset_coretype: bool) -> dict[str, str]:
    env = dict(os.environ)
    for name in machine.THREAD_VARS:
        env[name] = str(threads)
    if unset_coretype:
        for name in machine.OPENBLAS_TUNING_VARS:
            env.pop(name, None)
    # The children import `benchmarks` and `chainrule` from this checkout, wherever they run.
    paths = [str(ROOT), str(ROOT / "src")]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def _child(args: argparse.Namespace, threads: int, extra: list[str]) -> dict[str, Any]:
    """Run ``python -m benchmarks <extra>`` with ``threads`` BLAS threads; return its JSON."""
    with tempfile.TemporaryDirectory(prefix="chainrule-bench-") as tmp:
        out = Path(tmp) / "result.json"
        command = [sys.executable, "-m", "benchmarks", "--threads-one", str(threads)]
        command += ["--_out", str(out), "--nets", ",".join(args.nets)]
        command += ["--rows", ",".join(args.rows)]
        if args.gpu:
            command.append("--gpu")
        for flag in ("repeats", "warmup", "steps", "gap"):
            if getattr(args, flag) is not None:
                command += [f"--{flag}", str(getattr(args, flag))]
        if args.quick:
            command.append("--quick")
        command += extra
        env = worker_env(threads, args.unset_coretype)
        if extra[0] == "--_memory":
            # glibc keeps freed blocks below its mmap threshold (which grows to 32 MiB as big
            # arrays are freed) in the heap, still resident: RSS would then count memory that
            # is free. With a 64 KiB threshold every array of that size or more is mapped and
            # unmapped on its own, so the peak RSS is what was live at the peak.
            env.setdefault("MALLOC_MMAP_THRESHOLD_", str(64 * 1024))
        done = subprocess.run(command, env=env, cwd=ROOT, check=False)
        if done.returncode != 0:
            raise SystemExit(f"benchmark subprocess failed ({done.returncode}): {command}")
        return json.loads(out.read_text(encoding="utf-8"))


def _log(message: str) -> None:
    print(f"[benchmarks] {message}", file=sys.stderr, flush=True)


def worker_main(args: argparse.Namespace) -> None:
    """Time every (net, row) interleaved in this process; write raw seconds to ``--_out``."""
    cfg = settings(args)
    threads = args.threads_one
    from benchmarks import train_throughput as tt  # imports NumPy: thread vars are set now

    notes = []
    has_torch, torch_version = tt.torch_available() if "pytorch" in cfg["rows"] else (False, "")
    if "pytorch" in cfg["rows"] and not has_torch:
        notes.append(f"no PyTorch row: `import torch` failed ({torch_version})")
    if has_torch:
        import torch

        torch.set_num_threads(threads)
    gpu_missing = _gpu_rows_missing(cfg["rows"], notes)
    x, t = tt.make_data(cfg["pool"])
    rows = []
    for net in cfg["nets"]:
        if net == "conv":
            from benchmarks import conv_throughput as ct

            images = x.reshape(-1, *ct.SIMPLE_CONV.in_shape)  # the same pool, as images
            conv_rows = ct.build_conv_rows(ct.SIMPLE_CONV, images, t, threads, has_torch)
            for impl in ct.IMPLS:
                first = next((r for r in conv_rows if ct.split_name(r.name)[0] == impl), None)
                notes += [f"conv {impl}: {note}" for note in (first.notes if first else [])]
            rows += conv_rows
            continue
        if net in CONVNET_NAMES:
            from benchmarks import convnet_throughput as cn

            for name in cfg["rows"]:
                if name in gpu_missing or (name == "pytorch" and not has_torch):
                    continue
                if name in cn.ROWS or name in cn.GPU_ROWS:
                    rows.append(cn.build_row(cn.NETS[net], name, x, t, threads))
                    notes += [f"{net} {name}: {note}" for note in rows[-1].notes]
            continue
        spec = tt.NETS[net]
        for name in cfg["rows"]:
            if name == "pytorch" and not has_torch:
                continue
            if name in gpu_missing:
                continue
            rows.append(tt.build_row(spec, name, x, t, threads))
            notes += [f"{net} {name}: {note}" for note in rows[-1].notes]
    # The matmul peak: best of a few gemms now, then one more of each per timed round (the
    # best over the whole run, so a burst of load from elsewhere cannot lower it).
    size = cfg["peak_size"]
    gemms = {"float32": lambda tries: tt.peak_gflops("float32", size, tries)}
    gemms["float64"] = lambda tries: tt.peak_gflops("float64", size, tries)
    if has_torch:
        gemms["torch float32"] = lambda tries: tt.torch_peak_gflops(size, tries)
    if any(r.name.endswith("-cuda") and not r.name.startswith("pytorch") for r in rows):
        gemms["cuda float32"] = lambda tries: tt.cupy_peak_gflops(4096, tries)
    if any(r.name == "pytorch-cuda" for r in rows):
        gemms["torch cuda float32"] = lambda tries: tt.torch_peak_gflops(4096, tries, "cuda")
    _log(f"{threads} thread(s): measuring the matmul peak")
    peaks = {name: gemm(cfg["peak_tries"]) for name, gemm in gemms.items()}

    def sample_peaks() -> None:
        for name, gemm in gemms.items():
            peaks[name] = max(peaks[name], gemm(1))

    _log(f"{threads} thread(s): timing {len(rows)} rows x {cfg['repeats']} rounds")
    tt.interleaved_timing(
        rows,
        cfg["steps"],
        cfg["repeats"],
        cfg["warmup"],
        gap=cfg["gap"],
        progress=lambda msg: _log(f"{threads} thread(s): {msg}"),
        each_round=sample_peaks,
    )
    nonfinite = [f"{r.net} {r.name}" for r in rows if not all(map(_finite, r.final_losses))]
    if nonfinite:
        notes.append(f"non-finite loss in {', '.join(nonfinite)}: timings may be unrepresentative")
    result = {
        "threads": threads,
        "torch": torch_version if has_torch else None,
        "blas": machine.blas_info(),
        "env": {k: os.environ.get(k) for k in machine.THREAD_VARS + machine.OPENBLAS_TUNING_VARS},
        "peak_gflops": peaks,
        "notes": notes,
        "rows": [_row_record(r, cfg) for r in rows],
    }
    args._out.write_text(json.dumps(result, indent=1), encoding="utf-8")


def _row_record(row: Any, cfg: dict[str, Any]) -> dict[str, Any]:
    """The raw timings of one worker row, with what the report needs to interpret them."""
    record = {
        "net": row.net,
        "row": row.name,
        "dtype": row.dtype,
        "steps": cfg["steps"][row.net],
        "seconds": row.seconds,
        "cpu_seconds": row.cpu_seconds,
        "final_losses": row.final_losses,
    }
    if row.net == "conv":
        from benchmarks import conv_throughput as ct

        impl, mode = ct.split_name(row.name)
        spec = ct.SIMPLE_CONV
        record.update(impl=impl, mode=mode, batch=spec.batch, flops_per_step=spec.flops(mode))
    elif row.net in CONVNET_NAMES:
        from benchmarks import convnet_throughput as cn

        convnet = cn.NETS[row.net]
        record.update(batch=convnet.batch, flops_per_step=convnet.flops_per_step)
    else:
        from benchmarks import train_throughput as tt

        spec = tt.NETS[row.net]
        record.update(batch=spec.batch, flops_per_step=spec.flops_per_step)
    return record


def _gpu_rows_missing(rows: list[str], notes: list[str]) -> set[str]:
    """The GPU rows asked for that cannot run here (a note says why)."""
    from benchmarks import train_throughput as tt

    missing: set[str] = set()
    wanted = [r for r in rows if r.endswith("-cuda")]
    if any(not r.startswith("pytorch") for r in wanted):
        ok, why = tt.cupy_gpu()
        if not ok:
            missing |= {r for r in wanted if not r.startswith("pytorch")}
            notes.append(f"no chainrule GPU rows: {why}")
    if "pytorch-cuda" in wanted:
        ok, why = tt.torch_cuda()
        if not ok:
            missing.add("pytorch-cuda")
            notes.append(f"no pytorch-cuda row: {why}")
    return missing


def _finite(value: float) -> bool:
    return value == value and abs(value) != float("inf")


def memory_main(args: argparse.Namespace) -> None:
    """Build one row in this fresh process, train a few steps, report its peak RSS."""
    import gc
    import resource

    cfg = settings(args)
    net, _, name = args._memory.partition(":")

    def rss_mb(field: str = "VmHWM") -> float:
        """Resident MiB now (``VmRSS``) or at the high-water mark (``VmHWM``)."""
        try:  # Linux
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024  # kB
        except OSError:
            pass
        # Elsewhere only the high-water mark: ru_maxrss (bytes on macOS, KiB on Linux)
        scale = 1 if sys.platform == "darwin" else 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20

    def forget_peak() -> bool:
        # Linux: writing 5 to clear_refs resets the high-water mark to the current RSS, so
        # the row's setup (the benchmark's float64 copies of the initial weights, say) does
        # not count as training. Elsewhere the peak also covers the setup.
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            return False
        return True

    import numpy as np

    import chainrule.layers
    import chainrule.optim  # noqa: F401  (both loaded before the baseline, as in every row)
    from benchmarks import train_throughput as tt

    if net == "conv":
        from benchmarks import conv_throughput as ct

        impl, mode = ct.split_name(name)
    else:
        impl = name
    if impl == "pytorch":
        import torch

        torch.set_num_threads(args.threads_one)
    # The pool is made in the row's own dtype, so the baseline holds it and the row adds none.
    dtype = np.float64 if name == "numpy-f64" else np.float32
    x, t = tt.make_data(cfg["pool"], dtype)
    if net in MLP_NETS:
        # BLAS allocates its work buffers at its first large product: a cost of the process,
        # like the imports, so it goes into the baseline too.
        spec = tt.NETS[net]
        a = np.ones((spec.batch, max(spec.sizes)), dtype)
        for _ in range(2):
            a @ a.T
            a.T @ a
        del a
    # chainrule keeps freed memory for reuse (chainrule.memory): what making the pool and
    # setting up the row freed is handed back before each measurement, so neither counts.
    from chainrule.memory import release_freed_memory

    gc.collect()
    release_freed_memory()
    baseline = rss_mb("VmRSS")  # now, not the high-water mark left by making the pool
    if net == "conv":
        images = x.reshape(-1, *ct.SIMPLE_CONV.in_shape)  # a view of the same pool
        row = ct.build_conv_row(ct.SIMPLE_CONV, impl, mode, images, t, args.threads_one)
    elif net in CONVNET_NAMES:
        from benchmarks import convnet_throughput as cn

        row = cn.build_row(cn.NETS[net], name, x, t, args.threads_one)
        budget = cn.memory_budget(cn.NETS[net], np.dtype(dtype).itemsize)
    else:
        row = tt.build_row(tt.NETS[net], name, x, t, args.threads_one)
    gc.collect()
    release_freed_memory()
    setup_only = forget_peak()
    row.run(cfg["memory_steps"])
    peak = rss_mb()
    out = {
        "peak_rss_mb": peak,
        "baseline_rss_mb": baseline,
        "delta_rss_mb": peak - baseline,
        "peak_excludes_setup": setup_only,
    }
    if net in MLP_NETS:
        budget = tt.memory_budget(tt.NETS[net], np.dtype(dtype).itemsize)
    if net != "conv":
        out["budget_mb"] = {kind: size / 2**20 for kind, size in budget.items()}
        out["budget_ratio"] = (peak - baseline) / (sum(budget.values()) / 2**20)
    args._out.write_text(json.dumps(out), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args._worker:
        worker_main(args)
        return 0
    if args._memory:
        memory_main(args)
        return 0
    cfg = settings(args)
    host = machine.host_info()
    _log(f"{host['cpu']}, {host['usable_cpus']} usable CPUs, load {host['load_average_1_5_15']}")
    tuning = {k: host["env"][k] for k in machine.OPENBLAS_TUNING_VARS if host["env"][k]}
    if tuning:
        action = "removed in workers" if args.unset_coretype else "kept; --unset-coretype drops"
        _log(f"OpenBLAS tuning variables set: {tuning} ({action})")
    results = []
    for threads in cfg["threads"]:
        _log(f"worker with {threads} thread(s)")
        result = _child(args, threads, ["--_worker"])
        if not args.no_memory:
            for row in result["rows"]:
                where = f"{row['net']}:{row['row']}"
                if row["row"].endswith("-cuda"):
                    row["memory"] = {"skipped": "a GPU row: host RSS does not see GPU memory"}
                    continue
                _log(f"{threads} thread(s): peak memory of {where} (fresh process)")
                row["memory"] = _child(args, threads, ["--_memory", where])
        report.summarise(result)
        results.append(result)
    text = "\n\n".join(
        [report.header(host, results, cfg)] + [report.markdown_table(r) for r in results]
    )
    print(text)
    if args.json is not None:
        payload = {"machine": host, "config": cfg, "results": results, "markdown": text}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=1), encoding="utf-8")
        _log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
