"""Explain mode: the backward pass as an ordered table, one row per node.

Each row shows what the chain rule did at that node: the upstream gradient that arrived, the
local derivative of the op, and the downstream gradient it sent to each input — marking with
``+=`` the inputs whose gradient was *added* to one that had already arrived (a value used more
than once, a fork). For scalars it reads like the book's apple tables; for arrays it shows
shapes and norms. ``print()`` gives a text table; a notebook shows an HTML table.

>>> from chainrule import Tensor
>>> from chainrule.explain import explain
>>> x, y, z = Tensor(-2.0, name="x"), Tensor(5.0, name="y"), Tensor(-4.0, name="z")
>>> q = x + y; q.name = "q"
>>> f = q * z; f.name = "f"
>>> print(explain(f))  # doctest: +NORMALIZE_WHITESPACE
step  op   output  upstream  input  local  downstream
1     Mul  f       1         q      -4     -4
                             z      3      3
2     Add  q       -4        x      1      -4
                             y      1      -4
>>> float(x.grad)                      # explain filled the gradients that were missing ...
-4.0
>>> _ = explain(f); float(x.grad)      # ... and never adds to one that is there
-4.0
"""

from __future__ import annotations

import dataclasses
import html
import unicodedata
from typing import Any

import numpy as np

from chainrule.function import Function
from chainrule.tensor import Tensor

#: The table's column names, per language (``lang=`` of :func:`explain`).
HEADERS = {
    "en": ("step", "op", "output", "upstream", "input", "local", "downstream"),
    "zh": ("步骤", "运算", "输出", "上游梯度", "输入", "局部导数", "下游梯度"),
}


@dataclasses.dataclass
class Edge:
    """One input of a node in the trace."""

    name: str
    local: Any  # d(output)/d(input) for scalars, else None
    downstream: Any  # the gradient sent to this input
    accumulated: bool  # True when it was added (+=) to an earlier gradient


@dataclasses.dataclass
class Step:
    """One node of the backward pass, in the order it ran."""

    index: int
    op: str
    output: str
    upstream: Any
    edges: list[Edge]
    function: Function


def _value(a: Any) -> Any:
    return a.data if isinstance(a, Tensor) else a


def _fmt(a: Any) -> str:
    a = _value(a)
    if a is None:
        return "-"
    arr = np.asarray(a)
    if arr.size == 1:
        return f"{arr.item():.6g}"
    return f"{arr.shape} |{np.linalg.norm(arr):.4g}|"


def _width(text: str) -> int:
    """Columns ``text`` takes in a terminal: wide (CJK) characters count two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _check_lang(lang: str) -> str:
    if lang not in HEADERS:
        raise ValueError(f"explain: unknown lang {lang!r}; choose from {', '.join(HEADERS)}")
    return lang


class Trace(list[Step]):
    """The ordered steps of one backward pass; ``str()`` renders the table, and a notebook
    shows it as HTML. ``lang`` ("en" or "zh") names the columns."""

    lang = "en"

    def table(self) -> list[list[str]]:
        rows = [list(HEADERS[self.lang])]
        for s in self:
            for k, e in enumerate(s.edges):
                lead = [str(s.index), s.op, s.output, _fmt(s.upstream)] if k == 0 else [""] * 4
                down = ("+= " if e.accumulated else "") + _fmt(e.downstream)
                rows.append([*lead, e.name, _fmt(e.local), down])
        return rows

    def __str__(self) -> str:
        rows = self.table()
        widths = [max(_width(r[i]) for r in rows) for i in range(len(rows[0]))]
        return "\n".join(
            "  ".join(c + " " * (w - _width(c)) for c, w in zip(r, widths)).rstrip() for r in rows
        )

    def _repr_html_(self) -> str:
        """The table for Jupyter: one ``<tbody>`` per step, ``+=`` (a fork) in bold red."""
        head, *rows = self.table()
        cells = "".join(f"<th>{html.escape(h)}</th>" for h in head)
        body = []
        for row in rows:
            tds = []
            for i, c in enumerate(row):
                text = html.escape(c)
                if i == 6 and c.startswith("+= "):
                    text = f'<b style="color:#c0392b">+=</b> {html.escape(c[3:])}'
                tds.append(f"<td>{text}</td>")
            top = ' style="border-top:1px solid #999"' if row[0] else ""
            body.append(f"<tr{top}>{''.join(tds)}</tr>")
        return (
            '<table class="chainrule-explain" style="font-family:monospace">'
            f"<thead><tr>{cells}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        )


def _namer() -> Any:
    names: dict[int, str] = {}
    counts: dict[str, int] = {}

    def name(t: Any, prefix: str) -> str:
        if isinstance(t, Tensor) and t.name:
            return t.name
        key = id(t)
        if key not in names:
            counts[prefix] = counts.get(prefix, 0) + 1
            names[key] = f"{prefix}{counts[prefix]}"
        return names[key]

    return name


def graph_tensors(y: Tensor) -> list[Tensor]:
    """Every tensor of the graph that produced ``y`` (``y`` included), each once."""
    found: dict[int, Tensor] = {id(y): y}
    stack = [y]
    while stack:
        t = stack.pop()
        if t.creator is not None:
            for x in t.creator.inputs:
                if isinstance(x, Tensor) and id(x) not in found:
                    found[id(x)] = x
                    stack.append(x)
    return list(found.values())


def explain(y: Tensor, dout: Any = None, retain_grad: bool = False, *, lang: str = "en") -> Trace:
    """Run the backward pass from ``y`` (seed ``dout``, default 1) and return its trace.

    Explaining never *adds* to a gradient: the pass runs on cleared gradients, so ``+=`` marks
    exactly the forks of this graph; afterwards a tensor that already held a ``.grad`` (say
    ``y.backward()`` ran first) has it back unchanged, and one that held none gets this pass's
    gradient, as ``y.backward()`` would give it. Calling it twice, before or after
    ``backward()``, leaves the same gradients as one pass.

    Unnamed tensors get names: leaves ``t1, t2, ...``, intermediates after their op
    (``mul1``, ``add1``). Constants (plain numbers, labels) are left out. ``lang="zh"``
    names the columns in Chinese.
    """
    trace = Trace()
    trace.lang = _check_lang(lang)
    name = _namer()

    def on_node(f: Function, dy: Any, dxs: tuple[Any, ...], accumulated: tuple[bool, ...]) -> None:
        out = f.output()
        edges = []
        for x, dx, acc in zip(f.inputs, dxs, accumulated):
            if not isinstance(x, Tensor) or not x.requires_grad:
                continue  # constants (numbers, labels) receive no gradient
            label = name(x, "t" if x.creator is None else type(x.creator).__name__.lower())
            local = None
            dy_v, dx_v = np.asarray(_value(dy)), _value(dx)
            if dx_v is not None and dy_v.size == 1 and np.size(dx_v) == 1 and dy_v.item() != 0:
                local = np.asarray(dx_v).item() / dy_v.item()
            edges.append(Edge(label, local, dx, acc))
        trace.append(
            Step(
                index=len(trace) + 1,
                op=type(f).__name__,
                output=name(out, type(f).__name__.lower()),
                upstream=dy,
                edges=edges,
                function=f,
            )
        )

    tensors = graph_tensors(y)
    saved = [t.grad for t in tensors]
    for t in tensors:
        t.grad = None
    try:
        y.backward(dout, retain_grad=retain_grad, on_node=on_node)
    finally:
        for t, g in zip(tensors, saved):
            if g is not None:
                t.grad = g
    return trace
