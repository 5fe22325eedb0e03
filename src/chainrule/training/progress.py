"""Progress output: a tqdm bar over all iterations and/or one printed line per evaluation.

The bar comes from ``tqdm.auto``, so a notebook shows a widget and a terminal a text bar;
without tqdm (an optional dependency) only the lines are printed.
"""

from __future__ import annotations

import sys
from typing import IO, Any

__all__ = ["Progress"]

_MODES = (True, False, "auto", "bar", "lines", "none")


def _in_notebook() -> bool:
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return type(shell).__name__ == "ZMQInteractiveShell"


class Progress:
    """``mode``: ``"auto"`` (a bar on a terminal or in a notebook, plus lines), ``"bar"``/True,
    ``"lines"``, ``"none"``/False; ``stream`` defaults to ``sys.stdout``."""

    def __init__(self, mode: Any, stream: IO[str] | None) -> None:
        if mode not in _MODES:
            raise ValueError(
                f"Trainer: progress must be 'auto', 'bar', 'lines', 'none', True or False, "
                f"got {mode!r}"
            )
        self.stream = stream if stream is not None else sys.stdout
        self.lines = mode not in (False, "none")
        want_bar = mode in (True, "bar") or (
            mode == "auto"
            and (
                (hasattr(self.stream, "isatty") and self.stream.isatty())
                or (stream is None and _in_notebook())
            )
        )
        self.tqdm = None
        if want_bar:
            try:
                from tqdm.auto import tqdm
            except ImportError:  # optional dependency: fall back to lines
                tqdm = None
            self.tqdm = tqdm
        self.bar: Any = None

    def start(self, total: int, initial: int) -> None:
        if self.tqdm is not None:
            self.bar = self.tqdm(
                total=total,
                initial=initial,
                unit="it",
                file=self.stream,
                dynamic_ncols=True,
                leave=False,
                mininterval=0.25,
            )

    def step(self, loss: float, epoch: int) -> None:
        if self.bar is not None:
            self.bar.update(1)
            if self.bar.n % 20 == 0:
                self.bar.set_postfix_str(f"epoch {epoch} loss {loss:.4f}", refresh=False)

    def line(self, text: str) -> None:
        if not self.lines:
            return
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
