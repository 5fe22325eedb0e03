"""SVG text for a laid-out graph: no renderer, no external program, just strings.

Colours follow CS231n's circuit diagrams: forward values green, gradients red. Every element
carries classes and ``data-*`` attributes (``node op``/``node leaf``, ``edge``, ``data-node``,
``data-source``, ``data-target``) so a page can step through the passes, and presentation
attributes for the colours so the file looks the same in any viewer.
"""

from __future__ import annotations

import re

from chainrule.viz.graph import Graph
from chainrule.viz.layout import (
    FONT,
    LINE,
    MARGIN,
    TITLE_FONT,
    TITLE_LINE,
    Layout,
    Line,
    Route,
    Span,
    _f,
    layout,
    line_width,
)
from chainrule.viz.layout_tb import layout_tb

VALUE = "#1b7f2a"  # green: forward values
GRAD = "#c62828"  # red: gradients
LOCAL = "#5e35b1"  # local derivatives
INK = "#222222"
MUTED = "#666666"
WIRE = "#555555"
OP_FILL = "#ffffff"
LEAF_FILL = "#eef3fb"
FONT_FAMILY = "DejaVu Sans Mono, Menlo, Consolas, monospace"
_COLOURS = {"value": VALUE, "grad": GRAD, "local": LOCAL, "name": MUTED, "op": MUTED}

# XML 1.0 forbids most control characters even when escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def esc(text: str) -> str:
    """Text safe inside an XML element or a double-quoted attribute."""
    text = _NOT_XML.sub("\ufffd", text)
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def _tspans(spans: list[Span]) -> str:
    out = []
    for text, cls in spans:
        colour = _COLOURS.get(cls)
        fill = f' fill="{colour}"' if colour else ""
        out.append(f'<tspan class="{cls}"{fill}>{esc(text)}</tspan>')
    return "".join(out)


def _text_line(x: float, y: float, line: Line, centre: bool = True) -> str:
    """One line of classed spans, left-aligned at ``x`` or centred on it.

    Centring is done here from the monospace width rather than with ``text-anchor``, which
    some renderers (CairoSVG) apply to each span separately.
    """
    cls, spans = line
    big = cls == "title"
    size = TITLE_FONT if big else FONT
    weight = ' font-weight="bold"' if big else ""
    fill = INK if big else MUTED
    if centre:
        x -= line_width(line) / 2
    return (
        f'<text class="line {cls}" x="{_f(x)}" y="{_f(y)}" '
        f'font-size="{size:g}"{weight} fill="{fill}">{_tspans(spans)}</text>'
    )


def _route(r: Route, cls: str, attrs: str) -> list[str]:
    out = [f'<g class="{cls}" id="{esc(r.edge_id)}"{attrs}>']
    out.append(
        f'<path class="wire" d="{r.path}" fill="none" stroke="{WIRE}" stroke-width="1.4" '
        'marker-end="url(#cr-arrow)"/>'
    )
    out.append(_text_line(r.label_x, r.wire_y - 5, ("value", r.value), centre=False))
    if r.grad:
        out.append(_text_line(r.label_x, r.wire_y + 14, ("grad", r.grad), centre=False))
    out.append("</g>")
    return out


def to_svg(graph: Graph, lay: Layout | None = None) -> str:
    """The whole drawing as one standalone SVG document (a string)."""
    if lay is None:
        lay = layout_tb(graph) if graph.direction == "TB" else layout(graph)
    title = graph.caption
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chainrule-graph" '
        f'width="{_f(lay.width)}" height="{_f(lay.height)}" '
        f'viewBox="0 0 {_f(lay.width)} {_f(lay.height)}" font-family="{FONT_FAMILY}" '
        f'xml:space="preserve" role="img" aria-label="{esc(title)}">',
        f"<title>{esc(title)}</title>",
        "<defs>",
        # userSpaceOnUse: the head keeps its size when a highlighted wire gets thicker.
        '<marker id="cr-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="10" '
        'markerHeight="10" markerUnits="userSpaceOnUse" orient="auto">'
        f'<path d="M0,0 L10,5 L0,10 z" fill="{WIRE}"/></marker>',
        "</defs>",
        f'<rect class="background" x="0" y="0" width="{_f(lay.width)}" '
        f'height="{_f(lay.height)}" fill="#ffffff"/>',
    ]

    y = MARGIN
    out.append('<g class="header">')
    for line in lay.header:
        y += TITLE_LINE if line[0] == "title" else LINE
        out.append(_text_line(MARGIN, y - 5, line, centre=False))
    out.append("</g>")

    out.append('<g class="edges">')
    edges = {e.id: e for e in graph.edges}
    for r in lay.routes:
        e = edges[r.edge_id]
        attrs = (
            f' data-source="{e.source}" data-target="{e.target}" data-port="{e.port}"'
            f' data-name="{esc(e.name)}"'
        )
        out += _route(r, "edge", attrs)
    if lay.output is not None:
        out += _route(lay.output, "edge output", f' data-source="{graph.root}" data-target=""')
    out.append("</g>")

    out.append('<g class="nodes">')
    for n in graph.nodes:
        box = lay.boxes[n.id]
        leaf = n.kind == "leaf"
        out.append(
            f'<g class="node {n.kind}" id="{n.id}" data-node="{n.id}" data-name="{esc(n.name)}" '
            f'data-op="{esc(n.op)}">'
        )
        out.append(
            f'<rect class="box" x="{_f(box.x)}" y="{_f(box.y)}" width="{_f(box.w)}" '
            f'height="{_f(box.h)}" rx="{12 if leaf else 4}" '
            f'fill="{LEAF_FILL if leaf else OP_FILL}" stroke="{INK}" stroke-width="1.2"/>'
        )
        content = TITLE_LINE + LINE * (len(box.lines) - 1)
        ty = box.y + (box.h - content) / 2
        cx = box.x + box.w / 2
        for k, line in enumerate(box.lines):
            ty += TITLE_LINE if k == 0 else LINE
            out.append(_text_line(cx, ty - (6 if k == 0 else 4), line))
        out.append("</g>")
    out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"
