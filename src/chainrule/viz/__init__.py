"""See backprop: draw the computational graph that produced a tensor.

One box per op, one per leaf, laid out left to right like the book's figures. Each wire shows
the forward value (green) above it and the gradient that flowed back along it (red) below;
each op lists ``upstream × local = downstream`` for its inputs; a value used more than once
shows its gradients added up (``dx = a + b = s``, ``+=`` on the wires that were added).

>>> from chainrule import Tensor
>>> from chainrule.viz import draw
>>> x, y, z = Tensor(-2.0, name="x"), Tensor(5.0, name="y"), Tensor(-4.0, name="z")
>>> f = (x + y) * z
>>> f.backward()
>>> svg = draw(f)                      # an SVG document (str), no external program needed
>>> svg.startswith("<svg") and "-12" in svg
True
>>> svg                     # doctest: +ELLIPSIS
<Drawing svg, 5 nodes, ... characters>
>>> svg._repr_svg_() == str(svg)       # what a notebook shows: the picture itself
True
>>> print(draw(f, format="dot").splitlines()[0])
digraph chainrule {
>>> float(x.grad)                      # drawing replays backward but leaves .grad alone
-4.0

Formats: ``svg`` and ``dot`` (text), ``html`` (a self-contained page that steps through both
passes), ``png`` (bytes; needs CairoSVG or Graphviz's ``dot``). :func:`save` picks the format
from the file's suffix and writes atomically. What :func:`draw` returns is that text (or
bytes), and shows as a picture in Jupyter; ``lang="zh"`` writes its words in Chinese and
``direction="TB"`` lays a wide graph out top to bottom.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from chainrule.tensor import Tensor
from chainrule.viz.dot import to_dot
from chainrule.viz.drawing import Drawing, PngDrawing
from chainrule.viz.examples import CIRCUITS, MODELS, example_graph, model_graph, two_layer_graph
from chainrule.viz.graph import DIRECTIONS, WORDS, Edge, Graph, Node, build_graph, check_lang
from chainrule.viz.html import page_data, to_html
from chainrule.viz.layout import layout
from chainrule.viz.png import RendererNotFound, RenderError, to_png
from chainrule.viz.svg import to_svg

__all__ = [
    "CIRCUITS",
    "DIRECTIONS",
    "FORMATS",
    "MODELS",
    "SUFFIXES",
    "WORDS",
    "Drawing",
    "Edge",
    "Graph",
    "Node",
    "PngDrawing",
    "RenderError",
    "RendererNotFound",
    "build_graph",
    "draw",
    "example_graph",
    "format_for",
    "layout",
    "model_graph",
    "page_data",
    "save",
    "two_layer_graph",
]

FORMATS = ("svg", "dot", "html", "png")
#: file suffix -> format, for :func:`save`.
SUFFIXES = {".svg": "svg", ".dot": "dot", ".gv": "dot", ".html": "html", ".htm": "html",
            ".png": "png"}  # fmt: skip


def _graph(
    f: Tensor | Graph, dout: Any, title: str | None, lang: str | None, direction: str | None
) -> Graph:
    if isinstance(f, Graph):
        if title is not None:
            f.title = title
        if lang is not None:
            f.lang = check_lang(lang)
        if direction is not None:
            f.direction = direction
        return f
    return build_graph(f, dout=dout, title=title, lang=lang or "en", direction=direction or "LR")


def draw(
    f: Tensor | Graph,
    format: str = "svg",
    *,
    dout: Any = None,
    title: str | None = None,
    lang: str | None = None,
    direction: str | None = None,
) -> Drawing | PngDrawing:
    """A picture of the graph that produced ``f``: SVG, DOT or HTML text, or PNG bytes.

    The backward pass is replayed from ``f`` with seed ``dout`` (default 1, for a scalar ``f``)
    to show every gradient; the tensors' ``.grad`` are left as they were. ``f`` may also be a
    :class:`Graph` from :func:`build_graph`. The same graph always gives the same output.
    ``lang``: "en" (default) or "zh", the language of the words drawn; ``direction``: "LR"
    (default, inputs on the left) or "TB" (inputs on top). The result is a :class:`Drawing`
    (a ``str``) or, for PNG, a :class:`PngDrawing` (``bytes``): a notebook shows it as a
    picture, and ``.save(path)`` writes it.
    """
    if format not in FORMATS:
        raise ValueError(f"draw: unknown format {format!r}; choose from {', '.join(FORMATS)}")
    if direction is not None and direction not in DIRECTIONS:
        raise ValueError(
            f"draw: direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}"
        )
    graph = _graph(f, dout, title, lang, direction)
    if format == "png":
        return PngDrawing(to_png(graph), graph)
    render = {"svg": to_svg, "dot": to_dot, "html": to_html}[format]
    return Drawing(render(graph), format, graph)


def format_for(path: str | os.PathLike[str]) -> str:
    """The format that :func:`save` writes for ``path``'s suffix; ValueError if unknown."""
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(
            f"cannot tell the picture format from {os.fspath(path)!r}: use a file name ending "
            f"in {', '.join(SUFFIXES)}"
        )
    return SUFFIXES[suffix]


def save(
    f: Tensor | Graph,
    path: str | os.PathLike[str],
    *,
    dout: Any = None,
    title: str | None = None,
    lang: str | None = None,
    direction: str | None = None,
) -> Path:
    """Draw ``f`` into ``path`` in the format its suffix names, atomically; returns the path.

    The file is written to a temporary name beside ``path`` and renamed over it, so a reader
    never sees half a picture and a failure leaves any old file untouched.
    """
    from chainrule.serialization import atomic_write

    target = Path(path)
    data = draw(f, format_for(target), dout=dout, title=title, lang=lang, direction=direction)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_write(target) as fh:
        fh.write(payload)
    return target
