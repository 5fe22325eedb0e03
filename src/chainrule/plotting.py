"""Training curves: loss and accuracy per epoch, train and test, as a PNG or a notebook picture.

Needs matplotlib (``pip install 'chainrule[plot]'``); the rest of chainrule does not. The
figure is drawn with matplotlib's object API on an Agg canvas, so no GUI backend is touched
and pyplot's global state is left alone.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from chainrule.serialization import atomic_write

__all__ = [
    "HistoryFigure",
    "MissingDependencyError",
    "history_figure",
    "plot_history",
    "require_matplotlib",
]

INSTALL_HINT = "install chainrule[plot] (pip install 'chainrule[plot]') or matplotlib"


class MissingDependencyError(ImportError):
    """An optional dependency is not installed; the message says what to install."""


def require_matplotlib() -> None:
    """Raise :class:`MissingDependencyError` if matplotlib cannot be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(f"plotting needs matplotlib: {INSTALL_HINT}") from exc


def _series(history: Mapping[str, Sequence[Any]], key: str, who: str) -> list[float]:
    values = history.get(key)
    if values is None:
        raise ValueError(f"{who}: history has no {key!r} list")
    return [float(v) for v in values]


def _figure(history: Mapping[str, Sequence[Any]], title: str | None, who: str) -> Any:
    """The two-panel matplotlib Figure (loss, accuracy) on an Agg canvas."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    epochs = _series(history, "epoch", who)
    curves = {
        k: _series(history, k, who) for k in ("train_loss", "test_loss", "train_acc", "test_acc")
    }
    if not epochs:
        raise ValueError(f"{who}: the history is empty")
    for key, values in curves.items():
        if len(values) != len(epochs):
            raise ValueError(
                f"{who}: {key!r} has {len(values)} values but 'epoch' has {len(epochs)}"
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
    return fig


class HistoryFigure:
    """Training curves that a notebook shows as a picture (``_repr_png_``).

    ``figure`` is the matplotlib :class:`~matplotlib.figure.Figure` (restyle it freely);
    ``png()`` gives the PNG bytes and ``save(path)`` writes them atomically.
    """

    def __init__(self, figure: Any) -> None:
        self.figure = figure

    def png(self) -> bytes:
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png")
        return buffer.getvalue()

    def _repr_png_(self) -> bytes:
        return self.png()

    def __repr__(self) -> str:
        return f"<HistoryFigure: {len(self.figure.axes)} panels>"

    def save(self, path: str | os.PathLike[str]) -> HistoryFigure:
        """Write the PNG to ``path`` atomically; returns the figure (a notebook shows it)."""
        data = self.png()
        with atomic_write(Path(path)) as fh:
            fh.write(data)
        return self


def history_figure(
    history: Mapping[str, Sequence[Any]], *, title: str | None = None
) -> HistoryFigure:
    """Loss and accuracy against epochs (train and test), shown as a picture in a notebook.

    ``history`` is what :meth:`chainrule.training.Trainer.fit` returns (or the JSON written
    by ``chainrule train --history``). In a notebook, ``history_figure(trainer.fit())`` as the
    last line of a cell shows the curves.

    >>> h = dict(epoch=[1, 2], train_loss=[0.5, 0.3], test_loss=[0.6, 0.4],
    ...          train_acc=[0.8, 0.9], test_acc=[0.78, 0.88])
    >>> fig = history_figure(h)
    >>> fig._repr_png_()[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
    True

    Raises:
        MissingDependencyError: matplotlib is not installed.
        ValueError: a list is missing, empty, or the lists differ in length.
    """
    return HistoryFigure(_figure(history, title, "history_figure"))


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
    :func:`history_figure` gives the same picture for a notebook.

    Raises:
        MissingDependencyError: matplotlib is not installed.
        ValueError: a list is missing, empty, or the lists differ in length.
    """
    target = Path(path)
    HistoryFigure(_figure(history, title, "plot_history")).save(target)
    return target
