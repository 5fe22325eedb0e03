"""Left-to-right layered layout of a :class:`~chainrule.viz.graph.Graph`, pure Python.

The steps are the classic ones for drawing a computational graph (Sugiyama's), kept small:

1. **Layers** — an op sits one column right of its furthest input (longest path from the
   leaves); a leaf sits just left of its first consumer, like ``tax`` in the book's apple
   figure.
2. **Long wires** get a waypoint in every column they cross, so they run between boxes.
3. **Order within a column** — start from the depth-first order, then a few barycenter sweeps
   (each box moves toward the mean position of its neighbours, ties kept in the old order);
   the order with the fewest crossings wins.
4. **Vertical positions** — each box is pulled toward its neighbours' ports, keeping the
   column's order and a minimum gap (an exact isotonic fit per column, several sweeps).
5. **Routes** — horizontal wires with one cubic bend per gap; each wire's value and gradient
   labels sit on its straight last stretch, just before the input port they feed.

Everything is arithmetic on the graph's own order, so the same graph gives the same picture.
"""

from __future__ import annotations

import dataclasses
from itertools import pairwise
from typing import Any

from chainrule.viz.graph import WORDS, Graph, Node, fmt_shape, fmt_value, is_scalar, text_width

# Sizes in pixels. Text is monospace, so widths follow from character counts.
FONT = 12.0
TITLE_FONT = 15.0
CHAR = 0.61  # advance of a monospace glyph, in ems (DejaVu Sans Mono: 0.602)
LINE = 16.0
TITLE_LINE = 22.0
PAD_X = 10.0
PAD_Y = 7.0
PORT_GAP = 44.0  # vertical room per input port: a value line above the wire, a gradient below
NODE_GAP = 22.0
DUMMY_H = 10.0
CURVE_W = 56.0
LABEL_PAD = 10.0
MARGIN = 20.0
MIN_BOX_W = 56.0

Span = tuple[str, str]  # (text, class): classes value, grad, local, name, op, title, sub
Line = tuple[str, list[Span]]  # (line class, spans)


@dataclasses.dataclass
class Box:
    id: str
    kind: str
    x: float
    y: float
    w: float
    h: float
    lines: list[Line]
    ports: list[float] = dataclasses.field(default_factory=list)  # y of each input port

    @property
    def out_y(self) -> float:
        return self.y + self.h / 2


@dataclasses.dataclass
class Route:
    edge_id: str
    path: str  # SVG path data
    label_x: float  # left end of the labels
    wire_y: float  # the labels' wire: value above it, gradient below
    value: list[Span]
    grad: list[Span]


@dataclasses.dataclass
class Layout:
    width: float
    height: float
    header: list[Line]
    boxes: dict[str, Box]
    routes: list[Route]
    output: Route | None


def px(n: float) -> float:
    """Width in pixels of ``n`` character cells at the label font size."""
    return n * CHAR * FONT


def spans_width(spans: list[Span], font: float = FONT) -> float:
    return sum(text_width(t) for t, _ in spans) * CHAR * font


def line_width(line: Line) -> float:
    cls, spans = line
    return spans_width(spans, TITLE_FONT if cls == "title" else FONT)


# ------------------------------------------------------------------------------ what boxes say
def _num(a: Any) -> str:
    return fmt_value(a)


def _brief(a: Any) -> str:
    """A scalar's value; an array's shape (products of arrays are not elementwise)."""
    if a is None:
        return "-"
    if is_scalar(a):
        return fmt_value(a)
    return fmt_shape(a.shape)


def merge_spans(name: str, parts: list[Any], total: Any, sum_of: str = "sum of {n}") -> list[Span]:
    """``dx = a + b = s``: where gradients from several consumers are added (``+=``)."""
    spans: list[Span] = [(f"d{name} = ", "name")]
    if len(parts) > 1:
        if all(is_scalar(p) for p in parts):
            spans.append((" + ".join(_num(p) for p in parts), "grad"))
        else:
            spans.append((sum_of.format(n=len(parts)), "name"))
        spans.append((" = ", "op"))
    spans.append((_num(total), "grad"))
    return spans


def box_lines(graph: Graph, node: Node) -> list[Line]:
    """The text of a box, line by line, as classed spans."""
    lines: list[Line] = [("title", [(node.title, "title")])]
    if node.kind == "leaf":
        lines.append(("value", [(_num(node.value), "value")]))
        if graph.has_gradients:
            if node.requires_grad and node.grad is not None:
                merged = merge_spans(node.name, node.parts, node.grad, WORDS[graph.lang]["sum_of"])
                lines.append(("grad", merged))
            else:
                lines.append(("grad", [(graph.word("no_gradient"), "name")]))
        return lines
    op = "" if node.title == node.op else f"{node.op} "
    lines.append(("sub", [(f"{op}→ {node.name}", "name")]))
    if not graph.has_gradients:
        return lines
    if len(node.parts) > 1:
        merged = merge_spans(node.name, node.parts, node.upstream, WORDS[graph.lang]["sum_of"])
        lines.append(("merge", merged))
    for e in graph.inputs_of(node.id):
        if e.grad is None:
            continue
        local = (
            fmt_value(e.local) if e.local is not None else f"∂{node.name}/∂{e.name}"
        )  # fmt: skip
        lines.append(
            (
                "product",
                [
                    (f"{e.name}: ", "name"),
                    (_brief(node.upstream), "grad"),
                    (" × ", "op"),
                    (local, "local"),
                    (" = ", "op"),
                    (_brief(e.grad), "grad"),  # the wire shows `+=` where it was added
                ],
            )
        )
    return lines


def edge_labels(
    name: str, value: Any, grad: Any, accumulated: bool
) -> tuple[list[Span], list[Span]]:
    value_spans: list[Span] = [(f"{name} = ", "name"), (_num(value), "value")]
    if grad is None:
        return value_spans, []
    return value_spans, [(("+= " if accumulated else "") + _num(grad), "grad")]


# ------------------------------------------------------------------------------ layout
@dataclasses.dataclass
class _Item:
    """A box or a waypoint of a long wire, in one column."""

    id: str
    layer: int
    h: float
    w: float = 0.0
    dummy: bool = False
    up: list[tuple[str, int]] = dataclasses.field(default_factory=list)  # (item, my port)
    down: list[tuple[str, int]] = dataclasses.field(default_factory=list)  # (item, its port)
    nports: int = 1
    box: Box | None = None


def _layers(graph: Graph) -> dict[str, int]:
    layer: dict[str, int] = {}
    for n in graph.nodes:  # inputs come before their consumers
        ins = graph.inputs_of(n.id)
        layer[n.id] = 1 + max((layer[e.source] for e in ins), default=-1) if ins else 0

    def follows(source: str, target: str) -> bool:
        """A leaf feeding only ``target`` moves with it (it is placed last, below)."""
        return graph.node(source).kind == "leaf" and all(
            e.target == target for e in graph.outputs_of(source)
        )

    # An op whose consumers are all further right moves next to them when that shortens the
    # wires overall (``x * x`` feeding the last of a long sum), consumers first.
    for n in reversed(graph.nodes):
        outs = graph.outputs_of(n.id)
        if n.kind != "op" or not outs:
            continue
        to = min(layer[e.target] for e in outs) - 1
        if to <= layer[n.id]:
            continue
        # Each wire out gets shorter by the shift, each wire in longer (unless its leaf follows).
        longer = sum(1 for e in graph.inputs_of(n.id) if not follows(e.source, n.id))
        if len(outs) > longer:
            layer[n.id] = to
    for n in graph.nodes:
        outs = graph.outputs_of(n.id)
        if n.kind == "leaf" and outs:
            layer[n.id] = min(layer[e.target] for e in outs) - 1
    return layer


def _positions(order: list[list[str]]) -> dict[str, int]:
    return {iid: i for col in order for i, iid in enumerate(col)}


def _crossings(order: list[list[str]], items: dict[str, _Item]) -> int:
    """Pairs of wires that cross between adjacent columns (ports ordered top to bottom)."""
    pos = _positions(order)
    total = 0
    for upper in order[:-1]:
        segs = sorted((pos[u], pos[v], port) for u in upper for v, port in items[u].down)
        for i, (a, va, pa) in enumerate(segs):
            for b, vb, pb in segs[i + 1 :]:
                if a < b and (va, pa) > (vb, pb):
                    total += 1
    return total


def _order(layers: list[list[str]], items: dict[str, _Item], sweeps: int = 6) -> list[list[str]]:
    """Barycenter sweeps down and up; the order with the fewest crossings seen wins."""
    order = [list(col) for col in layers]
    best, best_score = [list(col) for col in order], _crossings(order, items)
    for _ in range(sweeps):
        if best_score == 0:
            break
        for down in (True, False):
            pos = _positions(order)
            columns = range(1, len(order)) if down else range(len(order) - 2, -1, -1)
            for L in columns:
                keys: dict[str, tuple[float, int]] = {}
                for i, iid in enumerate(order[L]):
                    it = items[iid]
                    if down and it.up:
                        ks = [float(pos[u]) for u, _ in it.up]
                    elif not down and it.down:
                        # Within a target, a wire into a higher port sorts higher.
                        ks = [pos[v] + (p + 1) / (items[v].nports + 1) - 0.5 for v, p in it.down]
                    else:
                        ks = [float(i)]
                    keys[iid] = (sum(ks) / len(ks), i)
                order[L].sort(key=keys.__getitem__)
                pos.update((iid, i) for i, iid in enumerate(order[L]))
            score = _crossings(order, items)
            if score < best_score:
                best, best_score = [list(col) for col in order], score
    return best


def _isotonic(targets: list[float]) -> list[float]:
    """Least-squares nondecreasing fit (pool adjacent violators)."""
    blocks: list[list[float]] = []  # [mean, count]
    for t in targets:
        blocks.append([t, 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, c2 = blocks.pop()
            m1, c1 = blocks.pop()
            blocks.append([(m1 * c1 + m2 * c2) / (c1 + c2), c1 + c2])
    out: list[float] = []
    for mean, count in blocks:
        out.extend([mean] * int(count))
    return out


def _place_column(
    col: list[str], items: dict[str, _Item], centre: dict[str, float], want: dict
) -> None:
    """Move the column's items as close to ``want`` as their order and gaps allow."""
    offsets = [0.0]
    for a, b in pairwise(col):
        gap = NODE_GAP if not (items[a].dummy or items[b].dummy) else NODE_GAP / 2
        offsets.append(offsets[-1] + (items[a].h + items[b].h) / 2 + gap)
    fitted = _isotonic([want.get(iid, centre[iid]) - off for iid, off in zip(col, offsets)])
    for iid, z, off in zip(col, fitted, offsets):
        centre[iid] = z + off


@dataclasses.dataclass
class _Grid:
    """The layered drawing under construction: items in ordered columns, and where they go."""

    items: dict[str, _Item]
    boxes: dict[str, Box]
    chains: dict[str, list[str]]  # edge id -> its items: source, waypoints, target
    columns: list[list[str]] = dataclasses.field(default_factory=list)
    col_x: list[float] = dataclasses.field(default_factory=list)
    col_w: list[float] = dataclasses.field(default_factory=list)
    zone: list[float] = dataclasses.field(default_factory=list)  # label room before a column
    centre: dict[str, float] = dataclasses.field(default_factory=dict)  # vertical centres

    def right(self, iid: str) -> float:
        L = self.items[iid].layer
        return self.col_x[L] + self.col_w[L]


def layout(graph: Graph) -> Layout:
    """Positions of every box and route of every wire, in pixels."""
    layer = _layers(graph)
    nlayers = max(layer.values(), default=0) + 1
    grid = _grid(graph, layer)
    grid.columns = _initial_columns(graph, grid, nlayers)
    labels = _columns_x(graph, grid, layer, nlayers)
    _relax(grid, nlayers)
    header = _header(graph)
    top = MARGIN + sum(TITLE_LINE if cls == "title" else LINE for cls, _ in header) + 14.0
    _place(grid, top)
    routes = [_route(grid, e.id, e.source, e.target, e.port, labels[e.id]) for e in graph.edges]
    boxes = grid.boxes
    output = None
    width = max((b.x + b.w for b in boxes.values()), default=0.0)
    if graph.root in boxes:
        root = boxes[graph.root]
        value, grad = edge_labels(graph.output_name, graph.output_value, graph.seed, False)
        label_w = max(spans_width(value), spans_width(grad) if grad else 0.0)
        x0, x1 = root.x + root.w, root.x + root.w + label_w + 2 * LABEL_PAD + 24.0
        output = Route("out", f"M{_f(x0)},{_f(root.out_y)} H{_f(x1)}", x0 + LABEL_PAD, root.out_y,
                       value, grad)  # fmt: skip
        width = max(width, x1)
    width = max(width, MARGIN + max((line_width(ln) for ln in header), default=0.0)) + MARGIN
    bottom = max((b.y + b.h for b in boxes.values()), default=top)
    height = bottom + MARGIN + 6.0
    return Layout(round(width, 1), round(height, 1), header, boxes, routes, output)


def _grid(graph: Graph, layer: dict[str, int]) -> _Grid:
    """A box per node (sized by its text); long wires as chains with a waypoint per column."""
    items: dict[str, _Item] = {}
    boxes: dict[str, Box] = {}
    for n in graph.nodes:
        lines = box_lines(graph, n)
        nports = len(graph.inputs_of(n.id))
        w = max(MIN_BOX_W, max(line_width(ln) for ln in lines) + 2 * PAD_X)
        h = 2 * PAD_Y + TITLE_LINE + LINE * (len(lines) - 1)
        h = max(h, PORT_GAP * nports)
        box = Box(n.id, n.kind, 0.0, 0.0, w, h, lines)
        box.ports = [h * (i + 0.5) / nports for i in range(nports)]  # relative for now
        boxes[n.id] = box
        items[n.id] = _Item(n.id, layer[n.id], h, w, nports=max(nports, 1), box=box)
    return _Grid(items, boxes, _chains(graph, layer, items))


def _chains(graph: Graph, layer: dict[str, int], items: dict[str, _Item]) -> dict[str, list[str]]:
    """Each wire as a chain of items: its source, a waypoint in every layer it crosses, its
    target; the items learn their neighbours (and the port a wire enters by)."""
    chains: dict[str, list[str]] = {}
    for e in graph.edges:
        chain = chains[e.id] = [e.source]
        for L in range(layer[e.source] + 1, layer[e.target]):
            d = f"{e.id}.{L}"
            items[d] = _Item(d, L, DUMMY_H, dummy=True)
            chain.append(d)
        chain.append(e.target)
        for a, b in pairwise(chain):
            port = e.port if b == e.target else 0
            items[a].down.append((b, port))
            items[b].up.append((a, port))
    return chains


def _initial_columns(graph: Graph, grid: _Grid, nlayers: int) -> list[list[str]]:
    """Depth-first finishing order, waypoints next to the box they lead to; then sweeps."""
    rank: dict[str, float] = {n.id: i for i, n in enumerate(graph.nodes)}
    for e in graph.edges:
        for k, d in enumerate(grid.chains[e.id][1:-1]):
            rank[d] = rank[e.target] - 0.5 + 0.001 * (e.port + k)
    columns: list[list[str]] = [[] for _ in range(nlayers)]
    for iid in sorted(grid.items, key=lambda i: (rank[i], i)):
        columns[grid.items[iid].layer].append(iid)
    return _order(columns, grid.items)


def _columns_x(
    graph: Graph, grid: _Grid, layer: dict[str, int], nlayers: int
) -> dict[str, tuple[list[Span], list[Span]]]:
    """Column widths and x, with gaps wide enough for the labels that end in them."""
    grid.col_w = [max((grid.items[i].w for i in col), default=0.0) for col in grid.columns]
    labels: dict[str, tuple[list[Span], list[Span]]] = {}
    grid.zone = [0.0] * nlayers
    for e in graph.edges:
        labels[e.id] = edge_labels(e.name, e.value, e.grad, e.accumulated)
        w = max(spans_width(s) for s in labels[e.id] if s) if labels[e.id][0] else 0.0
        grid.zone[layer[e.target]] = max(grid.zone[layer[e.target]], w)
    grid.col_x = [0.0] * nlayers
    x = MARGIN
    for L in range(nlayers):
        if L:
            x += CURVE_W + grid.zone[L] + 2 * LABEL_PAD
        grid.col_x[L] = x
        x += max(grid.col_w[L], 8.0)
    return labels


def _relax(grid: _Grid, nlayers: int) -> None:
    """Vertical centres: stack each column, then pull toward the neighbours' ports."""
    items, centre = grid.items, grid.centre
    for col in grid.columns:
        y = 0.0
        for iid in col:
            centre[iid] = y + items[iid].h / 2
            y += items[iid].h + NODE_GAP
    for box in grid.boxes.values():
        box.ports = [p - box.h / 2 for p in box.ports]  # offsets from the centre, for now

    def port_y(iid: str, port: int) -> float:
        it = items[iid]
        return centre[iid] + (it.box.ports[port] if it.box is not None and it.box.ports else 0.0)

    for sweep in range(8):
        rng = range(nlayers) if sweep % 2 == 0 else range(nlayers - 1, -1, -1)
        for L in rng:
            want: dict[str, float] = {}
            for iid in grid.columns[L]:
                it = items[iid]
                pulls = [centre[u] - port_y(iid, p) + centre[iid] for u, p in it.up]
                pulls += [port_y(v, p) for v, p in it.down]
                if pulls:
                    want[iid] = sum(pulls) / len(pulls)
            _place_column(grid.columns[L], items, centre, want)


def _place(grid: _Grid, top: float) -> None:
    """Absolute coordinates below the header, rounded to a tenth of a pixel."""
    items, centre = grid.items, grid.centre
    lowest = min((centre[i] - items[i].h / 2 for i in items), default=0.0)
    shift = top - lowest
    for iid in centre:
        centre[iid] = round(centre[iid] + shift, 1)
    for L, col in enumerate(grid.columns):
        for iid in col:
            box = items[iid].box
            if box is not None:
                box.x = round(grid.col_x[L] + (grid.col_w[L] - box.w) / 2, 1)
                box.y = round(centre[iid] - box.h / 2, 1)
                box.ports = [round(centre[iid] + p, 1) for p in box.ports]


def _route(
    grid: _Grid,
    edge_id: str,
    source: str,
    target: str,
    port: int,
    labels: tuple[list[Span], list[Span]],
) -> Route:
    """A wire: horizontal runs with one cubic bend per gap; labels on its last stretch."""
    boxes, items = grid.boxes, grid.items
    src = boxes[source]
    y0 = src.out_y
    d = [f"M{_f(src.x + src.w)},{_f(y0)}", f"H{_f(grid.right(source))}"]
    label_x = 0.0
    wire_y = y0
    for a, b in pairwise(grid.chains[edge_id]):
        L = items[b].layer
        y1 = boxes[b].ports[port] if b == target else grid.centre[b]
        x0 = grid.right(a)
        x1 = grid.col_x[L] - grid.zone[L] - 2 * LABEL_PAD
        if abs(y1 - y0) < 0.05:
            d.append(f"H{_f(x1)}")
        else:
            mid = (x0 + x1) / 2
            d.append(f"C{_f(mid)},{_f(y0)} {_f(mid)},{_f(y1)} {_f(x1)},{_f(y1)}")
        if b == target:
            d.append(f"H{_f(boxes[b].x)}")
            label_x, wire_y = x1 + LABEL_PAD, y1
        else:
            d.append(f"H{_f(grid.right(b))}")
        y0 = y1
    return Route(edge_id, " ".join(d), label_x, wire_y, *labels)


def _header(graph: Graph) -> list[Line]:
    lines: list[Line] = []
    if graph.title:
        lines.append(("title", [(graph.title, "title")]))
    legend: list[Span] = [(graph.word("values"), "value")]
    if graph.has_gradients:
        seed = fmt_value(graph.seed)
        legend += [
            ("   ", "op"),
            (graph.word("gradients", name=graph.output_name, seed=seed), "grad"),
            (graph.word("at_each_op"), "name"),
            (graph.word("upstream"), "grad"),
            (" × ", "op"),
            (graph.word("local"), "local"),
            (" = ", "op"),
            (graph.word("downstream"), "grad"),
        ]
    lines.append(("legend", legend))
    return lines


def _f(v: float) -> str:
    """A coordinate with one decimal, without a trailing ``.0``."""
    text = f"{v:.1f}"
    if text.endswith(".0"):
        text = text[:-2]
    return "0" if text == "-0" else text
