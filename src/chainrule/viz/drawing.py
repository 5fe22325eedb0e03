"""What :func:`chainrule.viz.draw` returns: the picture's text (or bytes) that a notebook shows.

A :class:`Drawing` *is* the SVG, DOT or HTML text (a ``str``), so everything that took the text
before still works (``str(d)``, ``d.startswith("<svg")``, writing it to a file); in addition
Jupyter, VS Code and Colab show it as a picture (``_repr_svg_``) and ``d.save(path)`` writes it.
PNG drawings are :class:`PngDrawing` (``bytes``, shown through ``_repr_png_``).
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

__all__ = ["Drawing", "PngDrawing"]


class _Saveable:
    format: str
    graph: Any

    def save(self, path: str | os.PathLike[str]) -> Any:
        """Write the picture to ``path`` atomically; its suffix picks the format (``.svg``,
        ``.dot``, ``.html``, ``.png``), redrawing from the same graph when it differs.

        Returns the drawing itself, so a notebook cell ending in ``viz.draw(f).save(path)``
        both writes the file and shows the picture.
        """
        from chainrule.viz import format_for, save

        if format_for(path) != self.format and self.graph is not None:
            save(self.graph, path)
            return self
        from chainrule.serialization import atomic_write

        payload = self if isinstance(self, bytes) else str(self).encode("utf-8")
        with atomic_write(Path(path)) as fh:
            fh.write(bytes(payload))
        return self


class Drawing(_Saveable, str):
    """A drawing as text: SVG (shown as a picture in notebooks), DOT, or an HTML page."""

    def __new__(cls, text: str, format: str = "svg", graph: Any = None) -> Drawing:
        self = super().__new__(cls, text)
        self.format = format
        self.graph = graph
        return self

    def __str__(self) -> str:
        return str.__str__(self)

    def __repr__(self) -> str:
        nodes = "" if self.graph is None else f", {len(self.graph.nodes)} nodes"
        return f"<Drawing {self.format}{nodes}, {len(self)} characters>"

    def _repr_svg_(self) -> str | None:
        return str(self) if self.format == "svg" else None

    def _repr_html_(self) -> str | None:
        if self.format != "html":
            return None
        # The page runs its own script: give it a frame of its own inside the notebook.
        return (
            f'<iframe srcdoc="{html.escape(str(self), quote=True)}" '
            'style="width:100%;height:640px;border:1px solid #ccc"></iframe>'
        )


class PngDrawing(_Saveable, bytes):
    """A drawing as PNG bytes, shown as an image in notebooks."""

    def __new__(cls, data: bytes, graph: Any = None) -> PngDrawing:
        self = super().__new__(cls, data)
        self.format = "png"
        self.graph = graph
        return self

    def __repr__(self) -> str:
        return f"<PngDrawing {len(self)} bytes>"

    def _repr_png_(self) -> bytes:
        return bytes(self)
