"""The picture's model: the graph that produced a tensor, with every value and gradient.

:func:`build_graph` walks the creator links back from the output (iteratively), then *replays*
the backward pass through :func:`chainrule.explain.explain` to learn, for every edge, the
upstream gradient, the local derivative and the downstream gradient, and where gradients were
added (``+=``) at a fork. The replay seeds ``dout`` (1 for a scalar) and leaves every ``.grad``
in the graph exactly as it found it, so drawing after ``f.backward()`` changes nothing.

Everything here is plain data (strings and NumPy arrays) in a deterministic order: nodes are
numbered in the order a depth-first walk from the output first *finishes* them (inputs before
the node that consumes them, first input first), which is also the forward order shown.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from typing import Any

import numpy as np

from chainrule.explain import Trace, explain
from chainrule.function import Function
from chainrule.tensor import Tensor

# Book-style gate symbols; other ops show their class name.
_SYMBOLS = {
    "Add": "+",
    "Sub": "−",
    "Mul": "×",
    "Div": "÷",
    "Neg": "neg",
    "Exp": "exp",
    "Log": "log",
    "Sqrt": "sqrt",
    "Abs": "abs",
    "Sigmoid": "σ",
    "Tanh": "tanh",
    "Relu": "ReLU",
    "Maximum": "max",
    "Minimum": "min",
    "MatMul": "matmul",
}
_COMMUTATIVE = {"Add", "Mul"}
_INFIX = {"Add": "+", "Sub": "−", "Mul": "×", "Div": "/"}
SMALL = 6  # arrays with at most this many elements show their values

#: The words a picture writes, per language (``lang=`` of :func:`chainrule.viz.draw`).
WORDS = {
    "en": {
        "graph_of": "computational graph of {name}",
        "values": "values (forward)",
        "gradients": "gradients d{name}/d· (backward, from {seed})",
        "at_each_op": "   at each op: ",
        "upstream": "upstream",
        "local": "local",
        "downstream": "downstream",
        "no_gradient": "no gradient",
        "sum_of": "sum of {n}",
    },
    "zh": {
        "graph_of": "{name} 的计算图",
        "values": "数值（正向）",
        "gradients": "梯度 d{name}/d·（反向，从 {seed} 开始）",
        "at_each_op": "   每个节点：",
        "upstream": "上游梯度",
        "local": "局部导数",
        "downstream": "下游梯度",
        "no_gradient": "无梯度",
        "sum_of": "{n} 项之和",
    },
}


DIRECTIONS = ("LR", "TB")


def check_lang(lang: str) -> str:
    """``lang`` if the pictures speak it; ValueError naming the choices otherwise."""
    if lang not in WORDS:
        raise ValueError(f"draw: unknown lang {lang!r}; choose from {', '.join(WORDS)}")
    return lang


@dataclasses.dataclass
class Node:
    """A box: an op (with the tensor it produced) or a leaf tensor."""

    id: str
    kind: str  # "op" or "leaf"
    name: str  # the tensor's name (the op's output, or the leaf)
    title: str  # what the box says in large type: the gate symbol or the leaf's name
    op: str  # the op's class name ("" for leaves), as in the explain table
    value: Any  # the tensor's data (NumPy)
    grad: Any = None  # the total gradient of the output with respect to this tensor
    requires_grad: bool = True
    upstream: Any = None  # op: the gradient that arrived from its consumers (dout)
    parts: list[Any] = dataclasses.field(default_factory=list)  # gradients summed, in order
    constants: list[tuple[int, Any]] = dataclasses.field(default_factory=list)
    step: int | None = None  # op: its row in the explain trace (1-based)


@dataclasses.dataclass
class Edge:
    """A wire carrying ``source``'s value into input ``port`` of op ``target``."""

    id: str
    source: str
    target: str
    port: int  # position among the target's tensor inputs (wires top to bottom)
    name: str  # the tensor's name
    value: Any
    grad: Any = None  # the gradient the target sent back along this wire (downstream)
    local: Any = None  # d(target output)/d(this input), for scalars
    accumulated: bool = False  # added (+=) to a gradient that had already arrived


@dataclasses.dataclass
class Graph:
    """Nodes (forward order), edges, the output, and the backward trace."""

    nodes: list[Node]
    edges: list[Edge]
    root: str  # id of the node that produced the output
    output_name: str
    output_value: Any
    seed: Any  # the gradient the backward pass started from (None: no backward pass)
    trace: Trace
    title: str = ""
    forward_order: list[str] = dataclasses.field(default_factory=list)
    backward_order: list[str] = dataclasses.field(default_factory=list)
    lang: str = "en"  # the language of the words drawn (see WORDS)
    direction: str = "LR"  # "LR": inputs on the left; "TB": inputs on top

    def __post_init__(self) -> None:
        self._index = {n.id: n for n in self.nodes}
        self._in: dict[str, list[Edge]] = {n.id: [] for n in self.nodes}
        self._out: dict[str, list[Edge]] = {n.id: [] for n in self.nodes}
        for e in self.edges:
            self._in[e.target].append(e)
            self._out[e.source].append(e)

    def node(self, node_id: str) -> Node:
        return self._index[node_id]

    def inputs_of(self, node_id: str) -> list[Edge]:
        """The wires into ``node_id``, in port order."""
        return self._in[node_id]

    def outputs_of(self, node_id: str) -> list[Edge]:
        """The wires out of ``node_id``, in the order of their consumers."""
        return self._out[node_id]

    @property
    def has_gradients(self) -> bool:
        return self.seed is not None

    def word(self, key: str, **fields: Any) -> str:
        """A phrase of the picture in the graph's language, filled in."""
        return WORDS[self.lang][key].format(**fields)

    @property
    def caption(self) -> str:
        """The title, or "computational graph of f" in the graph's language."""
        return self.title or self.word("graph_of", name=self.output_name)


# ------------------------------------------------------------------------------ formatting
def as_array(a: Any) -> Any:
    if isinstance(a, Tensor):
        a = a.data
    if a is None:
        return None
    if not isinstance(a, np.ndarray):
        a = np.asarray(a.get() if hasattr(a, "get") else a)  # CuPy arrays come to the host
    return a


def fmt_number(x: Any, digits: int = 4) -> str:
    """A number in ``digits`` significant figures, without ``-0`` or a trailing ``.0``."""
    x = float(x)
    if x == 0:
        return "0"
    text = f"{x:.{digits}g}"
    return text.replace("e+0", "e").replace("e-0", "e-").replace("e+", "e")


def fmt_shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def fmt_value(a: Any, digits: int = 4) -> str:
    """A scalar as a number; an array as its shape and its values (small) or range (large)."""
    arr = as_array(a)
    if arr is None:
        return "-"
    if arr.ndim == 0:
        return fmt_number(arr.item(), digits) if arr.dtype.kind in "biuf" else str(arr.item())
    shape = fmt_shape(arr.shape)
    if arr.size == 0:
        return f"{shape} empty"
    if arr.dtype.kind not in "biuf":
        return f"{shape} {arr.dtype}"
    if arr.size <= SMALL:
        return f"{shape} {_nested(arr, digits - 1)}"
    lo, hi = float(arr.min()), float(arr.max())
    return f"{shape} ∈ [{fmt_number(lo, 3)}, {fmt_number(hi, 3)}]"


def _nested(arr: np.ndarray, digits: int) -> str:
    if arr.ndim == 0:
        return fmt_number(arr.item(), digits)
    return "[" + ", ".join(_nested(a, digits) for a in arr) + "]"


def is_scalar(a: Any) -> bool:
    arr = as_array(a)
    return arr is not None and arr.size == 1


def text_width(text: str) -> float:
    """Width of ``text`` in character cells of a monospace font (wide CJK glyphs count 2)."""
    return float(sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text))


def op_title(f: Function) -> str:
    """The gate's label: its own name if it was given one, else a symbol with any constants.

    ``x + 1`` gives ``+1`` and ``1 / x`` gives ``1/x`` as in CS231n's circuits; ``x ** 2``
    gives ``**2``; other ops with constant inputs list them: ``max(·, 0)``.
    """
    own = vars(f).get("name")
    cls = type(f).__name__
    if isinstance(own, str) and own and own != cls.lower():
        return own
    if cls == "Pow":
        return f"**{_fmt_constant(vars(f).get('c'))}"
    symbol = _SYMBOLS.get(cls, cls)
    inputs = getattr(f, "inputs", ())
    consts = [(i, x) for i, x in enumerate(inputs) if not isinstance(x, Tensor)]
    if not consts:
        return symbol
    if cls in _INFIX and len(inputs) == 2 and len(consts) == 1:
        i, c = consts[0]
        text = _fmt_constant(c)
        if i == 1 or cls in _COMMUTATIVE:
            return f"{symbol}{text}"
        return f"{text}{_INFIX[cls]}x"
    args = ", ".join("·" if isinstance(x, Tensor) else _fmt_constant(x) for x in inputs)
    return f"{symbol}({args})"


def _fmt_constant(c: Any) -> str:
    arr = as_array(c)
    if arr is None:
        return "None"
    if arr.size == 1 and arr.dtype.kind in "biuf":
        return fmt_number(arr.item())
    return fmt_value(arr, 3)


# ------------------------------------------------------------------------------ the walk
def _collect(root: Tensor) -> tuple[list[Tensor], dict[int, list[Any]]]:
    """Tensors in depth-first finishing order (inputs first), and each op output's inputs."""
    order: list[Tensor] = []
    inputs: dict[int, list[Any]] = {}
    seen: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        t, expanded = stack.pop()
        if expanded:
            order.append(t)
            continue
        if id(t) in seen:
            continue
        seen.add(id(t))
        stack.append((t, True))
        if t.creator is not None:
            ins = list(t.creator.inputs)
            inputs[id(t)] = ins
            for x in reversed(ins):
                if isinstance(x, Tensor) and id(x) not in seen:
                    stack.append((x, False))
    return order, inputs


def _replay_backward(tensors: list[Tensor], root: Tensor, dout: Any) -> tuple[Trace, dict, Any]:
    """Run backward with the explain hook; put every ``.grad`` back as it was."""
    saved = [t.grad for t in tensors]
    for t in tensors:
        t.grad = None
    try:
        trace = explain(root, dout, retain_grad=True)
        grads = {id(t): as_array(t.grad) for t in tensors}
    finally:
        for t, g in zip(tensors, saved):
            t.grad = g
    return trace, grads, grads.get(id(root))


def build_graph(
    f: Tensor,
    *,
    dout: Any = None,
    title: str | None = None,
    lang: str = "en",
    direction: str = "LR",
) -> Graph:
    """The graph that produced ``f``, with the values and the gradients of one backward pass.

    ``dout`` is the seed gradient (default 1, which needs a single-element ``f``). When ``f``
    needs no gradient (built under ``no_grad()``, or from integers) only values are shown.
    ``lang`` ("en" or "zh") is the language of the words drawn; ``direction`` is "LR" (inputs
    on the left, like the book) or "TB" (inputs on top: narrower pictures of wide graphs).
    """
    if not isinstance(f, Tensor):
        raise TypeError(f"draw: expected the Tensor to draw, got {type(f).__name__}")
    check_lang(lang)
    if direction not in DIRECTIONS:
        raise ValueError(
            f"draw: direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}"
        )
    tensors, inputs = _collect(f)
    if f.requires_grad:
        trace, grads, seed = _replay_backward(tensors, f, dout)
    else:
        trace, grads, seed = Trace(), {}, None
    trace.lang = lang  # the table the CLI prints speaks the picture's language
    by_function = {id(step.function): step for step in trace}
    name_of = _namer(trace, tensors)
    nodes = _nodes(tensors, inputs, grads, by_function, name_of)
    node_of = {id(t): n for t, n in zip(tensors, nodes)}
    edges = _edges(tensors, inputs, node_of, by_function)
    _mark_forks(nodes, edges)
    root = node_of[id(f)]
    graph = Graph(
        nodes=nodes,
        edges=edges,
        root=root.id,
        output_name=root.name,
        output_value=root.value,
        seed=seed,
        trace=trace,
        title=title if title is not None else "",
        lang=lang,
        direction=direction,
    )
    graph.forward_order = [n.id for n in nodes]
    graph.backward_order = _backward_order(graph)
    return graph


def _namer(trace: Trace, tensors: list[Tensor]) -> Any:
    """``name_of(t)``: the trace's names, so the picture, the page and the table agree."""
    names: dict[int, str] = {}
    for step in trace:
        fn = step.function
        out = fn.output()
        if out is not None:
            names[id(out)] = step.output
        grad_inputs = [x for x in fn.inputs if isinstance(x, Tensor) and x.requires_grad]
        for x, e in zip(grad_inputs, step.edges):
            names.setdefault(id(x), e.name)
    used = set(names.values()) | {t.name for t in tensors if t.name}
    counts: dict[str, int] = {}

    def name_of(t: Tensor) -> str:
        if t.name:
            return t.name
        if id(t) not in names:
            prefix = "t" if t.creator is None else type(t.creator).__name__.lower()
            while True:
                counts[prefix] = counts.get(prefix, 0) + 1
                candidate = f"{prefix}{counts[prefix]}"
                if candidate not in used:
                    break
            used.add(candidate)
            names[id(t)] = candidate
        return names[id(t)]

    return name_of


def _nodes(
    tensors: list[Tensor],
    inputs: dict[int, list[Any]],
    grads: dict[int, Any],
    by_function: dict[int, Any],
    name_of: Any,
) -> list[Node]:
    """One box per tensor, in forward order, with its value, gradient and trace step."""
    nodes: list[Node] = []
    for i, t in enumerate(tensors):
        fn = t.creator
        node = Node(
            id=f"n{i}",
            kind="leaf" if fn is None else "op",
            name=name_of(t),
            title=name_of(t) if fn is None else op_title(fn),
            op="" if fn is None else type(fn).__name__,
            value=as_array(t.data),
            grad=grads.get(id(t)),
            requires_grad=t.requires_grad,
        )
        if fn is not None:
            node.constants = [
                (k, x) for k, x in enumerate(inputs[id(t)]) if not isinstance(x, Tensor)
            ]
            step = by_function.get(id(fn))
            if step is not None:
                node.step = step.index
                node.upstream = as_array(step.upstream)
        nodes.append(node)
    return nodes


def _edges(
    tensors: list[Tensor],
    inputs: dict[int, list[Any]],
    node_of: dict[int, Node],
    by_function: dict[int, Any],
) -> list[Edge]:
    """One wire per tensor input of each op, with the gradient the op sent back along it."""
    edges: list[Edge] = []
    for t in tensors:
        if t.creator is None:
            continue
        step = by_function.get(id(t.creator))
        trace_edges = iter(step.edges) if step is not None else iter(())
        port = 0
        for x in inputs[id(t)]:
            if not isinstance(x, Tensor):
                continue
            edge = Edge(
                id=f"e{len(edges)}",
                source=node_of[id(x)].id,
                target=node_of[id(t)].id,
                port=port,
                name=node_of[id(x)].name,
                value=as_array(x.data),
            )
            te = next(trace_edges, None) if x.requires_grad else None
            if te is not None:  # None: no backward pass, or no gradient for this input
                edge.grad = as_array(te.downstream)
                edge.local = te.local
            edges.append(edge)
            port += 1
    return edges


def _mark_forks(nodes: list[Node], edges: list[Edge]) -> None:
    """The gradient parts summed into each tensor's .grad, in the order the engine added them
    (step by step, inputs in order). Every part after the first was added with `+=`; this is
    worked out here rather than read from the trace, so `x * x` is marked too."""
    step_of = {n.id: n.step or 0 for n in nodes}
    arrivals = sorted(
        (e for e in edges if e.grad is not None), key=lambda e: (step_of[e.target], e.port)
    )
    parts: dict[str, list[Any]] = {}
    for e in arrivals:
        e.accumulated = e.source in parts
        parts.setdefault(e.source, []).append(e.grad)
    for node in nodes:
        node.parts = parts.get(node.id, [])


def _backward_order(graph: Graph) -> list[str]:
    """Ops in the order backward ran them; each leaf right after its last gradient arrived."""
    if not graph.has_gradients:
        return []
    ops = sorted((n for n in graph.nodes if n.step is not None), key=lambda n: n.step or 0)
    last_consumer: dict[str, int] = {}
    for e in graph.edges:
        step = graph.node(e.target).step or 0
        last_consumer[e.source] = max(last_consumer.get(e.source, 0), step)
    leaves_after: dict[int, list[str]] = {}
    for n in graph.nodes:
        if n.kind == "leaf":
            leaves_after.setdefault(last_consumer.get(n.id, 0), []).append(n.id)
    order = list(leaves_after.get(0, []))  # a lone leaf (nothing to walk back through)
    for op in ops:
        order.append(op.id)
        order.extend(leaves_after.get(op.step or 0, []))
    # Ops the backward pass never reached (no input needs a gradient) close the walk.
    seen = set(order)
    order.extend(n.id for n in graph.nodes if n.id not in seen)
    return order
