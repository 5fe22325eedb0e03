"""The pictures of :class:`~chainrule.diagnostics.Diagnostics`: gradient norms, update ratios,
dead ReLUs and activation histograms (matplotlib's object API on an Agg canvas, as in
:mod:`chainrule.plotting`)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from chainrule.serialization import atomic_write

if TYPE_CHECKING:
    from chainrule.diagnostics import Diagnostics

__all__ = ["plot_activations", "plot_dead", "plot_params"]

#: CS231n's rule of thumb for the update/weight ratio.
UPDATE_RATIO_GUIDE = 1e-3


def _figure(size: tuple[float, float]) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: Path) -> Path:
    with atomic_write(path) as fh:
        fig.savefig(fh, format="png")
    return path


def _headings(fig: Any, heading: str, title: str | None) -> None:
    """What the picture shows, and under it the run it comes from."""
    fig.suptitle(heading + (f"\n{title}" if title else ""), fontsize=11)


def _epoch_text(epoch: float | None) -> str:
    if epoch is None or epoch < 0.01:
        return ""
    text = f"{epoch:.2f}".rstrip("0").rstrip(".")  # 2.00 -> 2, 3.50 -> 3.5
    return f" (epoch {text})"


# Line style by the kind of parameter, color by its layer.
_STYLES = {"W": "-", "b": "--", "gamma": "-.", "beta": ":"}


def _layer_index(name: str) -> str:
    """``W2`` -> ``2``, ``gamma1`` -> ``1``, ``layers.0.W`` -> ``layers.0``: parameters of one
    layer share a color."""
    if "." in name:
        return name.rpartition(".")[0]
    match = re.search(r"(\d+)$", name)
    return match.group(1) if match else name


def _kind(name: str) -> str:
    """``W2`` -> ``W``, ``layers.0.gamma`` -> ``gamma``: the line style."""
    return name.rpartition(".")[2].rstrip("0123456789")


def _series(values: Sequence[Any]) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def _iteration_axis(ax: Any, diag: Diagnostics) -> None:
    ax.set_xlabel("iteration")
    ax.grid(True, which="major", alpha=0.3)
    epochs = [e for e in diag.history["epoch"] if e is not None]
    iters = diag.history["iteration"]
    if epochs and iters and epochs[-1] > 0 and len(epochs) == len(iters):
        per_epoch = iters[-1] / epochs[-1]
        top = ax.secondary_xaxis(
            "top", functions=(lambda i: i / per_epoch, lambda e: e * per_epoch)
        )
        top.set_xlabel("epoch")


def plot_params(diag: Diagnostics, what: str, path: Path, title: str | None) -> Path:
    iters = np.array(diag.history["iteration"], dtype=np.float64)
    keys = [k for k in diag.history if k.startswith(f"{what}/")]
    colors: dict[str, Any] = {}
    fig = _figure((9, 5))
    ax = fig.subplots()
    marker = "o" if len(iters) <= 30 else None
    drawn = 0
    for key in keys:
        name = key.partition("/")[2]
        values = _series(diag.history[key])
        values[values <= 0] = np.nan  # nothing to show on a log scale
        group = _layer_index(name)
        color = colors.setdefault(group, f"C{len(colors) % 10}")
        style = _STYLES.get(_kind(name), "--")
        if np.isfinite(values).any():
            ax.plot(iters, values, style, color=color, marker=marker, markersize=3, label=name)
            drawn += 1
    ax.set_yscale("log")
    if what == "update_ratio":
        guide = UPDATE_RATIO_GUIDE
        ax.axhline(
            guide, color="black", linewidth=1.2, linestyle=":", zorder=1, label="1e-3 (CS231n)"
        )
        ax.set_ylabel("||ΔW|| / ||W||  (update of one step)")
        heading = "update/weight ratio per parameter"
    else:
        ax.set_ylabel("||dL/dW||  (L2 norm of the mini-batch gradient)")
        heading = "gradient norm per parameter"
    if not drawn:
        ax.text(0.5, 0.5, "no values recorded", transform=ax.transAxes, ha="center")
    _iteration_axis(ax, diag)
    if drawn:
        # Outside, on the right: inside, a dozen entries would hide lines.
        ax.legend(
            fontsize=8, ncol=2 if drawn > 16 else 1, loc="upper left", bbox_to_anchor=(1.01, 1)
        )
    _headings(fig, heading + " (W solid, b dashed, gamma dash-dot, beta dotted)", title)
    return _save(fig, path)


def plot_dead(diag: Diagnostics, path: Path, title: str | None) -> Path:
    iters = np.array(diag.history["iteration"], dtype=np.float64)
    names = [k.partition("/")[2] for k in diag.history if k.startswith("dead_fraction/")]
    fig = _figure((9, 5))
    ax = fig.subplots()
    marker = "o" if len(iters) <= 30 else None
    for i, name in enumerate(names):
        color = f"C{i % 10}"
        dead = 100 * _series(diag.history[f"dead_fraction/{name}"])
        active = 100 * _series(diag.history[f"active_fraction/{name}"])
        ax.plot(iters, dead, "-", color=color, marker=marker, markersize=3, label=f"{name} dead")
        ax.plot(iters, active, "--", color=color, label=f"{name} active")
    ax.set_ylim(-2, 102)
    ax.set_ylabel("% of units")
    _iteration_axis(ax, diag)
    ax.legend(fontsize=8, loc="best")
    _headings(
        fig,
        "ReLU units: dead (zero for every sample of the batch, solid) and active (> 0, dashed)",
        title,
    )
    return _save(fig, path)


def _pick(n: int, most: int) -> list[int]:
    """At most ``most`` indices of ``range(n)``, evenly spread, first and last included."""
    if n <= most:
        return list(range(n))
    return sorted({round(i * (n - 1) / (most - 1)) for i in range(most)})


def plot_activations(diag: Diagnostics, path: Path, title: str | None) -> Path:
    from matplotlib import colormaps
    from matplotlib.ticker import NullLocator

    layers = list(diag.histograms[-1]["layers"])
    shots = [diag.histograms[i] for i in _pick(len(diag.histograms), 8)]
    cols = min(len(layers), 3)
    rows = math.ceil(len(layers) / cols)
    width = 9.0 if cols == 1 else 5.0 * cols
    fig = _figure((width, (5.0 if rows == 1 and cols == 1 else 3.9) * rows + 0.4))
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).reshape(-1)
    cmap = colormaps["viridis"]
    for ax, name in zip(axes, layers, strict=False):
        kind = diag.histograms[-1]["layers"][name]["kind"]
        edges = np.asarray(diag.bins[kind])
        for j, shot in enumerate(shots):
            data = shot["layers"].get(name)
            if data is None or not data["total"]:
                continue
            share = 100 * np.asarray(data["counts"], dtype=np.float64) / data["total"]
            when = f"iter {shot['iteration']}{_epoch_text(shot.get('epoch'))}"
            if kind == "relu":
                when += f": {100 * data['zeros'] / data['total']:.0f}% zeros"
            color = cmap(j / max(len(shots) - 1, 1))
            ax.stairs(share, edges, color=color, linewidth=1.4, label=when)
        if kind == "relu":
            ax.set_xscale("log")
            # Decades are enough to read; minor ticks on three log axes double the drawing time.
            ax.xaxis.set_minor_locator(NullLocator())
            low, high = edges[0], edges[-1]
            ax.set_xlabel(
                f"output > 0, log scale (zeros counted apart; < {low:.0e} and > {high:.0e} "
                "in the end bins)"
            )
        else:
            ax.set_xlabel("output (values outside the range in the end bins)")
        ax.set_ylabel("% of outputs per bin")
        ax.set_title(f"{name} ({kind})")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    for ax in axes[len(layers) :]:
        ax.set_visible(False)
    _headings(
        fig, "activation histograms on a fixed probe batch (inference mode), early to late", title
    )
    return _save(fig, path)
