"""Statistics over the timed repeats, and the markdown tables the benchmark prints.

Pure Python (no NumPy), so the parent process can summarise the workers' raw seconds.
"""

from __future__ import annotations

import statistics
from typing import Any

EPOCH_SAMPLES = 60_000


def summarise(result: dict[str, Any]) -> None:
    """Add samples/s, epoch time, GFLOP/s, % of peak and the ratio to PyTorch to every row.

    The ratio is taken pair by pair: ``row / pytorch`` in the same round (both were timed
    within seconds of each other), then the median over rounds.
    """
    peaks = result.get("peak_gflops", {})
    for row in result["rows"]:
        samples = row["steps"] * row["batch"]
        rates = [samples / s for s in row["seconds"]]
        gflops = [row["steps"] * row["flops_per_step"] / s / 1e9 for s in row["seconds"]]
        row["samples_per_s"] = rates
        row["samples_per_s_median"] = statistics.median(rates)
        row["samples_per_s_min"] = min(rates)
        row["samples_per_s_max"] = max(rates)
        row["epoch_seconds"] = EPOCH_SAMPLES / row["samples_per_s_median"]
        row["gflops"] = statistics.median(gflops)
        # each row against the gemm of the BLAS it runs on: PyTorch ships its own
        peak = peaks.get("torch float32" if row["row"] == "pytorch" else row["dtype"])
        row["percent_of_peak"] = 100.0 * row["gflops"] / peak if peak else None
        row["spread"] = max(rates) / min(rates)
        # CPU time is what the process itself used: time lost to other processes on a busy
        # machine does not count, so with one thread this is the steadier figure.
        cpu = [samples / s for s in row.get("cpu_seconds", []) if s > 0]
        row["samples_per_cpu_s_median"] = statistics.median(cpu) if cpu else None
    for row in result["rows"]:
        ref = next(
            (r for r in result["rows"] if r["net"] == row["net"] and r["row"] == "pytorch"), None
        )
        if ref is None:
            row["ratio_vs_pytorch"] = None
        else:
            pairs = zip(row["samples_per_s"], ref["samples_per_s"])
            row["ratio_vs_pytorch"] = statistics.median(a / b for a, b in pairs)


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
    return f"{mem['peak_rss_mb']:.0f} (+{mem['delta_rss_mb']:.0f})"


def markdown_table(result: dict[str, Any]) -> str:
    """One table for one thread setting, then its noise line and notes."""
    n = result["threads"]
    lines = [
        f"#### {n} thread{'s' if n != 1 else ''}",
        "",
        "| net | row | samples/s median | min | max | epoch s | peak RSS MB (+training) "
        "| GFLOP/s | % of peak | × PyTorch | samples/CPU-s |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in result["rows"]:
        ratio = row["ratio_vs_pytorch"]
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
                    "–" if ratio is None else f"{ratio:.2f}",
                    _fmt(row["samples_per_cpu_s_median"]),
                ]
            )
            + " |"
        )
    lines.append("")
    spreads = sorted((r["spread"], f"{r['net']} {r['row']}") for r in result["rows"])
    if spreads:
        median = statistics.median(s for s, _ in spreads)
        worst, where = spreads[-1]
        lines.append(
            f"Noise (max/min of samples/s over {len(result['rows'][0]['seconds'])} repeats): "
            f"median {100 * (median - 1):.1f}% across rows, worst {100 * (worst - 1):.1f}% "
            f"({where})."
        )
    peaks = result.get("peak_gflops", {})
    peak_text = ", ".join(f"{k} {v:.1f}" for k, v in peaks.items())
    lines += ["", f"Matmul peak GFLOP/s (best square gemm): {peak_text}."]
    notes = result.get("notes", [])
    if notes:
        lines += ["", "Notes:", ""] + [f"- {note}" for note in notes]
    return "\n".join(lines)


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
