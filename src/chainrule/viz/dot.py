"""Graphviz DOT text for a graph: for ``dot -Tpng``, ``dot -Tpdf`` or any DOT viewer.

Only text is produced here; nothing needs Graphviz unless you render the file. The same
content as the SVG: one box per op, leaves as rounded boxes, values (green) and gradients (red)
on the wires, and ``upstream × local = downstream`` inside each op.
"""

from __future__ import annotations

from chainrule.viz.graph import Graph
from chainrule.viz.layout import Line, Span, box_lines, edge_labels
from chainrule.viz.svg import _COLOURS, FONT_FAMILY, LEAF_FILL, esc


def _html(spans: list[Span]) -> str:
    out = []
    for text, cls in spans:
        colour = _COLOURS.get(cls)
        body = esc(text)
        if cls == "title":
            body = f"<B>{body}</B>"
        out.append(f'<FONT COLOR="{colour}">{body}</FONT>' if colour else body)
    return "".join(out)


def _label(lines: list[Line] | list[list[Span]]) -> str:
    rows = [_html(ln[1] if isinstance(ln, tuple) else ln) for ln in lines]
    return "<" + '<BR ALIGN="CENTER"/>'.join(r for r in rows if r) + ">"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(graph: Graph) -> str:
    """The graph as a DOT ``digraph``, laid out left to right (or top to bottom: "TB")."""
    title = graph.caption
    out = [
        "digraph chainrule {",
        f"  graph [rankdir={graph.direction}, label={_quote(title)}, labelloc=t, "
        f"fontname={_quote(FONT_FAMILY)}, nodesep=0.4, ranksep=0.6];",
        f'  node [shape=box, fontname={_quote(FONT_FAMILY)}, fontsize=11, color="#222222"];',
        f'  edge [fontname={_quote(FONT_FAMILY)}, fontsize=10, color="#555555"];',
    ]
    for n in graph.nodes:
        style = f'style="rounded,filled", fillcolor="{LEAF_FILL}"' if n.kind == "leaf" else ""
        sep = ", " if style else ""
        out.append(f"  {n.id} [label={_label(box_lines(graph, n))}{sep}{style}];")
    for e in graph.edges:
        value, grad = edge_labels(e.name, e.value, e.grad, e.accumulated)
        out.append(f"  {e.source} -> {e.target} [label={_label([value, grad])}];")
    value, grad = edge_labels(graph.output_name, graph.output_value, graph.seed, False)
    out.append('  output [shape=point, width=0.05, label=""];')
    out.append(f"  {graph.root} -> output [label={_label([value, grad])}];")
    out.append("}")
    return "\n".join(out) + "\n"
