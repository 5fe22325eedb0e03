"""The training history: one list per key, one entry per evaluation; saved as JSON."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from chainrule.serialization import atomic_write

__all__ = [
    "HISTORY_KEYS",
    "append_record",
    "checked_history",
    "format_record",
    "new_history",
    "save_history",
]

HISTORY_KEYS = (
    "epoch",
    "iteration",
    "train_loss",
    "train_acc",
    "test_loss",
    "test_acc",
    "batch_loss",
    "lr",
    "seconds",
)


def new_history() -> dict[str, list[Any]]:
    """An empty history: every key of :data:`HISTORY_KEYS` with an empty list."""
    return {key: [] for key in HISTORY_KEYS}


def append_record(history: dict[str, list[Any]], record: Mapping[str, Any]) -> None:
    """Append one evaluation's ``record`` (a dict with every history key) to ``history``."""
    for key in HISTORY_KEYS:
        history[key].append(record[key])


def checked_history(saved: Any) -> dict[str, list[Any]]:
    """A history read from a checkpoint, validated: a dict of equally long lists of numbers.

    Raises:
        ValueError: not a dict, a value that is not a list of finite-or-not numbers, or lists
            of different lengths.
    """
    if not isinstance(saved, Mapping):
        raise ValueError(f"its history is a {type(saved).__name__}, not a mapping of lists")
    history = new_history()
    for key in HISTORY_KEYS:
        values = saved.get(key, [])
        if not isinstance(values, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
        ):
            raise ValueError(f"its history entry {key!r} is not a list of numbers")
        history[key] = list(values)
    if len({len(v) for v in history.values()}) > 1:
        raise ValueError("its history lists have different lengths")
    return history


def format_record(record: Mapping[str, Any], total_iterations: int) -> str:
    """One line per evaluation, as printed during training.

    >>> record = dict(epoch=1.0, iteration=600, batch_loss=0.41, train_loss=0.3, train_acc=0.91,
    ...               test_loss=0.29, test_acc=0.915, lr=0.1, seconds=2.5)
    >>> for part in format_record(record, 10_000).split(" | "):
    ...     print(part)
    epoch     1  iter   600  batch loss 0.4100
    train loss 0.3000 acc  91.00%
    test loss 0.2900 acc  91.50%
    lr 0.1
    2.5s
    """
    epoch = record["epoch"]
    epoch_text = f"{epoch:g}" if float(epoch).is_integer() else f"{epoch:.2f}"
    width = len(str(total_iterations))
    return (
        f"epoch {epoch_text:>5}  iter {record['iteration']:>{width}}  "
        f"batch loss {record['batch_loss']:.4f} | "
        f"train loss {record['train_loss']:.4f} acc {100 * record['train_acc']:6.2f}% | "
        f"test loss {record['test_loss']:.4f} acc {100 * record['test_acc']:6.2f}% | "
        f"lr {record['lr']:.3g} | {record['seconds']:.1f}s"
    )


def save_history(history: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``history`` as JSON (one list per key), atomically."""
    target = Path(path)
    data = json.dumps(dict(history), indent=1, allow_nan=False).encode("utf-8") + b"\n"
    with atomic_write(target) as fh:
        fh.write(data)
    return target
