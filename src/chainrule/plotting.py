"""Training curves: loss and accuracy per epoch, train and test, as a PNG.

Needs matplotlib (``pip install 'chainrule[plot]'``); the rest of chainrule does not. The
figure is drawn with matplotlib's object API on an Agg canvas, so no GUI backend is touched
and pyplot's global state is left alone.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from chainrule.serialization import atomic_write

__all__ = ["MissingDependencyError", "plot_history", "require_matplotlib"]

INSTALL_HINT = "install chainrule[plot] (pip install 'chainrule[plot]') or matplotlib"


class MissingDependencyError(ImportError):
    """An optional dependency is not installed; the message says what to install."""


def require_matplotlib() -> None:
    """Raise :class:`MissingDependencyError` if matplotlib cannot be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(f"plotting needs matplotlib: {INSTALL_HINT}") from exc


def _series(history: Mapping[str, Sequence[Any]], key: str) -> list[float]:
    values = history.get(key)
    if values is None:
        raise ValueError(f"plot_history: history has no {key!r} list")
    return [float(v) for v in values]


def plot_history(
    history: Mapping[str, Sequence[Any]],
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
) -> Path:
    """Draw loss and accuracy against epochs (train and test) and write a PNG to ``path``.

    ``history`` is :attr:`chainrule.training.Trainer.history` (or the JSON written by
    ``chainrule train --history``): lists ``epoch``, ``train_loss``, ``test_loss``,
    ``train_acc`` and ``test_acc`` of equal length. The file is written atomically: a
    temporary file beside ``path`` is moved over it only once the PNG is complete.

    Raises:
        MissingDependencyError: matplotlib is not installed.
        ValueError: a list is missing, empty, or the lists differ in length.
    """
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    epochs = _series(history, "epoch")
    curves = {k: _series(history, k) for k in ("train_loss", "test_loss", "train_acc", "test_acc")}
    if not epochs:
        raise ValueError("plot_history: the history is empty")
    for key, values in curves.items():
        if len(values) != len(epochs):
            raise ValueError(
                f"plot_history: {key!r} has {len(values)} values but 'epoch' has {len(epochs)}"
            )

    fig = Figure(figsize=(10, 4), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    loss_ax, acc_ax = fig.subplots(1, 2)
    marker = "o" if len(epochs) <= 30 else None
    for ax, kind, label in ((loss_ax, "loss", "loss (cross-entropy)"), (acc_ax, "acc", "accuracy")):
        ax.plot(epochs, curves[f"train_{kind}"], marker=marker, label="train")
        ax.plot(epochs, curves[f"test_{kind}"], marker=marker, linestyle="--", label="test")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)

    target = Path(path)
    with atomic_write(target) as fh:
        fig.savefig(fh, format="png")
    return target
