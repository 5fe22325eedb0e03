"""Statistics over the timed repeats, and the markdown tables the benchmark prints.

Pure Python (no NumPy), so the parent process can summarise the workers' raw seconds.
"""

from __future__ import annotations

import statistics
from typing import Any

EPOCH_SAMPLES = 60_000


def impl_of(row: dict[str, Any]) -> str:
    """The implementation a row runs: ``impl`` for conv rows, else the row's name."""
    return row.get("impl", row["row"])


def _partner(rows: list[dict[str, Any]], row: dict[str, Any], impl: str) -> dict[str, Any] | None:
    """The row of implementation ``impl`` doing the same work as ``row`` (same net and mode)."""
    return next(
        (
            r
            for r in rows
            if r["net"] == row["net"] and r.get("mode") == row.get("mode") and impl_of(r) == impl
        ),
        None,
    )


def _peak_name(row: dict[str, Any]) -> str:
    impl = impl_of(row)
    if impl == "pytorch-cuda":
        return "torch cuda float32"
    if impl.endswith("-cuda"):
        return "cuda float32"
    return "torch float32" if impl == "pytorch" else row["dtype"]


def _pytorch_of(row: dict[str, Any]) -> str:
    """The PyTorch row a row is compared with: on the GPU for GPU rows, else on the CPU."""
    return "pytorch-cuda" if impl_of(row).endswith("-cuda") else "pytorch"


def _paired_ratio(mine: list[float], theirs: list[float]) -> float | None:
    """Median over rounds of ``theirs / mine`` (times), i.e. how many times faster ``mine`` is."""
    pairs = [b / a for a, b in zip(mine, theirs) if a > 0 and b > 0]
    return statistics.median(pairs) if pairs else None


def summarise(result: dict[str, Any]) -> None:
    """Add samples/s, epoch time, GFLOP/s, % of peak and the ratio to PyTorch to every row.

    The ratio is taken pair by pair: ``row / pytorch`` in the same round (both were timed
    within seconds of each other), then the median over rounds. Conv rows (they have a
    ``mode``) are paired with PyTorch and the im2col reference in the same mode, and
    ``result["conv_backward"]`` gets the backward alone, ``fwd+bwd - forward`` per round.
    """
    peaks = result.get("peak_gflops", {})
    for row in result["rows"]:
        samples = row["steps"] * row["batch"]
        row["ms_per_step"] = [1000.0 * s / row["steps"] for s in row["seconds"]]
        rates = [samples / s for s in row["seconds"]]
        gflops = [row["steps"] * row["flops_per_step"] / s / 1e9 for s in row["seconds"]]
        row["samples_per_s"] = rates
        row["samples_per_s_median"] = statistics.median(rates)
        row["samples_per_s_min"] = min(rates)
        row["samples_per_s_max"] = max(rates)
        row["epoch_seconds"] = EPOCH_SAMPLES / row["samples_per_s_median"]
        row["gflops"] = statistics.median(gflops)
        # each row against the gemm of the BLAS it runs on: PyTorch ships its own, and a GPU
        # row is measured against a matmul on that GPU (CuPy's, or torch's for pytorch-cuda)
        peak = peaks.get(_peak_name(row))
        row["percent_of_peak"] = 100.0 * row["gflops"] / peak if peak else None
        row["spread"] = max(rates) / min(rates)
        # CPU time is what the process itself used: time lost to other processes on a busy
        # machine does not count, so with one thread this is the steadier figure.
        cpu = [samples / s for s in row.get("cpu_seconds", []) if s > 0]
        row["samples_per_cpu_s_median"] = statistics.median(cpu) if cpu else None
    for row in result["rows"]:
        ref = _partner(result["rows"], row, _pytorch_of(row))
        if ref is None:
            row["ratio_vs_pytorch"] = row["cpu_ratio_vs_pytorch"] = None
        else:
            pairs = zip(row["samples_per_s"], ref["samples_per_s"])
            row["ratio_vs_pytorch"] = statistics.median(a / b for a, b in pairs)
            # the same on CPU seconds: on a shared machine, time lost waiting for a core
            # does not count (one BLAS thread: CPU time is the work done)
            mine, theirs = row.get("cpu_seconds", []), ref.get("cpu_seconds", [])
            row["cpu_ratio_vs_pytorch"] = _paired_ratio(mine, theirs) if mine and theirs else None
        if "mode" in row:
            ref = _partner(result["rows"], row, "im2col-ref")
            row["ratio_vs_reference"] = (
                None if ref is None else _paired_ratio(row["ms_per_step"], ref["ms_per_step"])
            )
    result["conv_backward"] = _conv_backward(result["rows"])


def _conv_backward(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per implementation: backward alone (``fwd+bwd`` minus ``forward`` of the same round).

    A round where noise makes the difference non-positive is left out of that median.
    """
    conv = [r for r in rows if "mode" in r]
    impls = list(dict.fromkeys(impl_of(r) for r in conv))
    per_round: dict[tuple[str, str], list[float]] = {}
    for impl in impls:
        forward = next((r for r in conv if impl_of(r) == impl and r["mode"] == "forward"), None)
        for mode, label in (("fwd+bwd, no dx", "no dx"), ("fwd+bwd", "with dx")):
            both = next((r for r in conv if impl_of(r) == impl and r["mode"] == mode), None)
            if forward is None or both is None:
                continue
            per_round[impl, label] = [
                b - f for b, f in zip(both["ms_per_step"], forward["ms_per_step"])
            ]
    out = []
    for (impl, label), diffs in per_round.items():
        positive = [d for d in diffs if d > 0]
        torch = per_round.get(("pytorch", label))
        ref = per_round.get(("im2col-ref", label))
        out.append(
            {
                "impl": impl,
                "backward": label,
                "ms_median": statistics.median(positive) if positive else None,
                "ratio_vs_pytorch": None if torch is None else _paired_ratio(diffs, torch),
                "ratio_vs_reference": None if ref is None else _paired_ratio(diffs, ref),
            }
        )
    return out


def _fmt(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def _memory(row: dict[str, Any]) -> str:
    mem = row.get("memory")
    if not mem:
        return "–"
    if "error" in mem:
        return "failed"
    if "skipped" in mem:
        return "–"
    text = f"{mem['peak_rss_mb']:.0f} (+{mem['delta_rss_mb']:.1f})"
    if "budget_ratio" in mem:
        text += f" {mem['budget_ratio']:.2f}×"
    return text


def _noise_line(rows: list[dict[str, Any]]) -> str:
    spreads = sorted((r["spread"], f"{r['net']} {r['row']}") for r in rows)
    median = statistics.median(s for s, _ in spreads)
    worst, where = spreads[-1]
    return (
        f"Noise (max/min of samples/s over {len(rows[0]['seconds'])} repeats): "
        f"median {100 * (median - 1):.1f}% across rows, worst {100 * (worst - 1):.1f}% "
        f"({where})."
    )


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def markdown_table(result: dict[str, Any]) -> str:
    """The tables for one thread setting (training nets, then the convolution), noise, notes."""
    n = result["threads"]
    lines = [f"#### {n} thread{'s' if n != 1 else ''}", ""]
    mlp = [r for r in result["rows"] if "mode" not in r]
    conv = [r for r in result["rows"] if "mode" in r]
    if mlp:
        lines += [*_mlp_table(mlp), "", _noise_line(mlp), ""]
        lines += _convnet_targets(mlp)
    if conv:
        lines += [*conv_table(result), "", _noise_line(conv), ""]
    peaks = result.get("peak_gflops", {})
    peak_text = ", ".join(f"{k} {v:.1f}" for k, v in peaks.items())
    lines += [f"Matmul peak GFLOP/s (best square gemm): {peak_text}."]
    notes = result.get("notes", [])
    if notes:
        lines += ["", "Notes:", ""] + [f"- {note}" for note in notes]
    return "\n".join(lines)


def _mlp_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| net | row | samples/s median | min | max | epoch s | peak RSS MB (+training, × budget) "
        "| GFLOP/s | % of peak | × PyTorch | samples/CPU-s | × PyTorch (CPU-s) |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in rows:
        lines.append(
            "| "
            + " | ".join(
                [
                    row["net"],
                    row["row"],
                    _fmt(row["samples_per_s_median"]),
                    _fmt(row["samples_per_s_min"]),
                    _fmt(row["samples_per_s_max"]),
                    _fmt(row["epoch_seconds"], 2),
                    _memory(row),
                    _fmt(row["gflops"], 1),
                    _fmt(row["percent_of_peak"], 0),
                    _ratio(row["ratio_vs_pytorch"]),
                    _fmt(row["samples_per_cpu_s_median"]),
                    _ratio(row.get("cpu_ratio_vs_pytorch")),
                ]
            )
            + " |"
        )
    return lines


#: Issue #16's targets for the conv nets: chainrule-layers samples/s over PyTorch's.
CONVNET_TARGETS = {"simple-cnn": 1.3, "deep-cnn": 1.0}


def _convnet_targets(rows: list[dict[str, Any]]) -> list[str]:
    """One line per conv net and chainrule row: its ratio to PyTorch against the target,
    by wall clock and by CPU time (the two differ on a busy machine)."""
    lines = []
    for row in rows:
        target = CONVNET_TARGETS.get(row["net"])
        wall, cpu = row.get("ratio_vs_pytorch"), row.get("cpu_ratio_vs_pytorch")
        if target is None or wall is None or not row["row"].startswith("chainrule"):
            continue
        met = "met" if min(wall, cpu or wall) >= target else "not met"
        lines.append(
            f"- {row['net']} {row['row']}: {wall:.2f}× PyTorch's samples/s (wall), "
            f"{_ratio(cpu)}× (CPU time); target {target:.1f}× ({met})"
        )
    return [*lines, ""] if lines else []


def conv_table(result: dict[str, Any]) -> list[str]:
    """The convolution's rows (per implementation and mode), then the backward alone, then
    the issue's target: chainrule's forward+backward within 2x of PyTorch's."""
    conv = [r for r in result["rows"] if "mode" in r]
    lines = [
        "Convolution of SimpleConvNet (batch 100, 1x28x28, 30 filters 5x5, float32):",
        "",
        "| impl | mode | ms/batch median | min | max | images/s | GFLOP/s | % of peak "
        "| peak RSS MB (+run) | × PyTorch | × im2col-ref |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in conv:
        ms = row["ms_per_step"]
        lines.append(
            "| "
            + " | ".join(
                [
                    impl_of(row),
                    row["mode"],
                    _fmt(statistics.median(ms), 2),
                    _fmt(min(ms), 2),
                    _fmt(max(ms), 2),
                    _fmt(row["samples_per_s_median"]),
                    _fmt(row["gflops"], 1),
                    _fmt(row["percent_of_peak"], 0),
                    _memory(row),
                    _ratio(row["ratio_vs_pytorch"]),
                    _ratio(row.get("ratio_vs_reference")),
                ]
            )
            + " |"
        )
    backward = result.get("conv_backward") or []
    if backward:
        lines += [
            "",
            "Backward alone (fwd+bwd minus forward, per round):",
            "",
            "| impl | backward | ms/batch median | × PyTorch | × im2col-ref |",
            "|---|---|--:|--:|--:|",
        ]
        for entry in backward:
            lines.append(
                f"| {entry['impl']} | {entry['backward']} | {_fmt(entry['ms_median'], 2)} | "
                f"{_ratio(entry['ratio_vs_pytorch'])} | {_ratio(entry['ratio_vs_reference'])} |"
            )
    target = [
        r for r in conv if impl_of(r) == "chainrule" and r["mode"] in ("fwd+bwd, no dx", "fwd+bwd")
    ]
    verdicts = []
    for row in target:
        ratio = row["ratio_vs_pytorch"]
        if ratio is not None:
            verdict = "met" if ratio >= 0.5 else "NOT met"
            verdicts.append(f"{row['mode']}: {ratio:.2f}× PyTorch's speed ({verdict})")
    if verdicts:
        lines += [
            "",
            "Target (within 2× of PyTorch, i.e. × PyTorch ≥ 0.50): " + "; ".join(verdicts) + ".",
        ]
    return lines


def header(machine: dict[str, Any], results: list[dict[str, Any]], config: dict[str, Any]) -> str:
    """The machine, library versions, BLAS kernel and the settings of the run."""
    first = results[0] if results else {}
    blas = first.get("blas", {})
    lines = [
        f"- CPU: {machine['cpu']} ({machine['usable_cpus']} usable of "
        f"{machine['logical_cpus']} logical CPUs); load average at start "
        f"{machine['load_average_1_5_15']}",
        f"- Python {machine['python']}, NumPy {blas.get('numpy')} "
        f"(BLAS: {blas.get('numpy_blas')}), PyTorch {first.get('torch') or 'not installed'}",
    ]
    env = machine["env"]
    tuning = ", ".join(f"{k}={env.get(k)!r}" for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"))
    unset = " (removed in the workers by --unset-coretype)" if config.get("unset_coretype") else ""
    lines.append(f"- Environment: {tuning}{unset}")
    for result in results:
        pools = result.get("blas", {}).get("threadpools")
        if pools is None:
            pools_text = result.get("blas", {}).get("threadpools_note", "unknown")
        else:
            pools_text = "; ".join(
                " ".join(str(p[k]) for k in ("internal_api", "version") if p.get(k))
                + f" {p.get('num_threads')} thread{'' if p.get('num_threads') == 1 else 's'}"
                + (f", kernel {p['architecture']}" if p.get("architecture") else "")
                for p in pools
            )
        n = result["threads"]
        lines.append(
            f"- Worker with {n} thread{'' if n == 1 else 's'}: threadpoolctl sees {pools_text}"
        )
    lines.append(
        f"- Settings: repeats {config['repeats']}, warmup rounds {config['warmup']}, "
        f"steps per timed run {config['steps']}, batches cycled over a pool of "
        f"{config['pool']} samples"
    )
    return "\n".join(lines)
