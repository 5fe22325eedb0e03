"""Top-to-bottom layout (``direction="TB"``): inputs on top, the output at the bottom.

For wide graphs (a long chain of ops is wider than a screen when laid out left to right).
The steps are those of :mod:`chainrule.viz.layout` turned by a quarter: layers become rows,
the order within a row and the horizontal positions come from the same barycenter sweeps and
isotonic fits (an item's extent along its row is its box's width), and wires run down with
one bend per gap. Each wire's value (green) and gradient (red) stand right of its last,
vertical stretch, just above the input port it feeds on the box's top edge.
"""

from __future__ import annotations

from itertools import pairwise

from chainrule.viz.graph import Graph
from chainrule.viz.layout import (
    LABEL_PAD,
    LINE,
    MARGIN,
    MIN_BOX_W,
    PAD_X,
    PAD_Y,
    TITLE_LINE,
    Box,
    Layout,
    Route,
    _chains,
    _f,
    _Grid,
    _header,
    _initial_columns,
    _Item,
    _layers,
    _relax,
    box_lines,
    edge_labels,
    line_width,
    spans_width,
)

CURVE_H = 30.0  # vertical room for a wire's bend between rows
LABELS_H = 2 * LINE + 8.0  # a value line and a gradient line beside the last stretch


def layout_tb(graph: Graph) -> Layout:
    """Positions of every box and route of every wire, in pixels, inputs on top."""
    layer = _layers(graph)
    nrows = max(layer.values(), default=0) + 1
    labels = {e.id: edge_labels(e.name, e.value, e.grad, e.accumulated) for e in graph.edges}
    grid = _grid_tb(graph, layer, labels)
    grid.columns = _initial_columns(graph, grid, nrows)
    _relax(grid, nrows)  # here "centre" is each item's x, along its row
    header = _header(graph)
    top = MARGIN + sum(TITLE_LINE if cls == "title" else LINE for cls, _ in header) + 14.0
    row_y, row_h = _rows(grid, top, nrows)
    _place_tb(grid, row_y, row_h)
    routes = []
    for e in graph.edges:
        routes.append(_route_tb(grid, row_y, row_h, e.id, e.target, e.port, labels[e.id]))
    boxes = grid.boxes
    output = None
    bottom = max((b.y + b.h for b in boxes.values()), default=top)
    if graph.root in boxes:
        root = boxes[graph.root]
        value, grad = edge_labels(graph.output_name, graph.output_value, graph.seed, False)
        x, y0 = root.x + root.w / 2, root.y + root.h
        y1 = y0 + LABELS_H + 2 * LABEL_PAD
        output = Route("out", f"M{_f(x)},{_f(y0)} V{_f(y1)}", x + 6.0, (y0 + y1) / 2 + 4.0,
                       value, grad)  # fmt: skip
        bottom = y1
    right = [x + 6.0 + max(spans_width(v), spans_width(g) if g else 0.0)
             for x, v, g in _label_spots(routes, output)]  # fmt: skip
    width = max([b.x + b.w for b in boxes.values()] + right + [0.0])
    width = max(width, MARGIN + max((line_width(ln) for ln in header), default=0.0)) + MARGIN
    return Layout(round(width, 1), round(bottom + MARGIN + 6.0, 1), header, boxes, routes, output)


def _label_spots(routes: list[Route], output: Route | None) -> list[tuple[float, list, list]]:
    every = [*routes, output] if output is not None else routes
    return [(r.label_x - 6.0, r.value, r.grad) for r in every]


def _grid_tb(graph: Graph, layer: dict[str, int], labels: dict) -> _Grid:
    """Items whose extent along their row is the box's width; ports along the top edge,
    spaced so that the labels of neighbouring wires do not overlap."""
    items: dict[str, _Item] = {}
    boxes: dict[str, Box] = {}
    for n in graph.nodes:
        lines = box_lines(graph, n)
        ins = graph.inputs_of(n.id)
        room = [max(spans_width(s) for s in labels[e.id] if s) + 6.0 + LABEL_PAD for e in ins]
        w = max(MIN_BOX_W, max(line_width(ln) for ln in lines) + 2 * PAD_X, sum(room))
        h = 2 * PAD_Y + TITLE_LINE + LINE * (len(lines) - 1)
        box = Box(n.id, n.kind, 0.0, 0.0, w, h, lines)
        starts = [sum(room[:i]) + (w - sum(room)) / 2 for i in range(len(ins))]
        box.ports = [s + min(r / 2, LABEL_PAD) for s, r in zip(starts, room)]  # from the left
        boxes[n.id] = box
        items[n.id] = _Item(n.id, layer[n.id], w, h, nports=max(len(ins), 1), box=box)
    return _Grid(items, boxes, _chains(graph, layer, items))


def _rows(grid: _Grid, top: float, nrows: int) -> tuple[list[float], list[float]]:
    """Each row's top y and height; between rows, room for a bend and the wires' labels."""
    row_h = [0.0] * nrows
    for it in grid.items.values():
        if it.box is not None:
            row_h[it.layer] = max(row_h[it.layer], it.box.h)
    row_y, y = [], top
    for L in range(nrows):
        if L:
            y += CURVE_H + LABELS_H + 2 * LABEL_PAD
        row_y.append(y)
        y += max(row_h[L], 8.0)
    return row_y, row_h


def _place_tb(grid: _Grid, row_y: list[float], row_h: list[float]) -> None:
    items, centre = grid.items, grid.centre
    leftmost = min((centre[i] - items[i].h / 2 for i in items), default=0.0)
    for iid in centre:
        centre[iid] = round(centre[iid] + MARGIN - leftmost, 1)
    for iid, it in items.items():
        box = it.box
        if box is not None:
            box.x = round(centre[iid] - box.w / 2, 1)
            box.y = round(row_y[it.layer] + (row_h[it.layer] - box.h) / 2, 1)
            box.ports = [round(centre[iid] + p, 1) for p in box.ports]  # _relax made them offsets


def _route_tb(
    grid: _Grid,
    row_y: list[float],
    row_h: list[float],
    edge_id: str,
    target: str,
    port: int,
    labels: tuple[list, list],
) -> Route:
    """A wire down from the source's bottom edge, one bend per gap, into ``port`` on top."""
    boxes, items, chain = grid.boxes, grid.items, grid.chains[edge_id]
    src = boxes[chain[0]]
    x0 = src.x + src.w / 2
    bottom_of = lambda iid: row_y[items[iid].layer] + row_h[items[iid].layer]  # noqa: E731
    d = [f"M{_f(x0)},{_f(src.y + src.h)}", f"V{_f(bottom_of(chain[0]))}"]
    label_x = wire_y = 0.0
    for a, b in pairwise(chain):
        L = items[b].layer
        x1 = boxes[b].ports[port] if b == target else grid.centre[b]
        y0, y1 = bottom_of(a), row_y[L] - LABELS_H - LABEL_PAD
        if abs(x1 - x0) < 0.05:
            d.append(f"V{_f(y1)}")
        else:
            mid = (y0 + y1) / 2
            d.append(f"C{_f(x0)},{_f(mid)} {_f(x1)},{_f(mid)} {_f(x1)},{_f(y1)}")
        if b == target:
            d.append(f"V{_f(boxes[b].y)}")
            label_x, wire_y = x1 + 6.0, (y1 + boxes[b].y) / 2 + 4.0
        else:
            d.append(f"V{_f(bottom_of(b))}")
        x0 = x1
    return Route(edge_id, " ".join(d), label_x, wire_y, *labels)
