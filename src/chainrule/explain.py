"""Explain mode: the backward pass as an ordered table, one row per node.

Each row shows what the chain rule did at that node: the upstream gradient that arrived, the
local derivative of the op, and the downstream gradient it sent to each input — marking with
``+=`` the inputs whose gradient was *added* to one that had already arrived (a value used more
than once). For scalars it reads like the book's apple tables; for arrays it shows shapes and
norms.

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
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from chainrule.function import Function
from chainrule.tensor import Tensor


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


class Trace(list[Step]):
    """The ordered steps of one backward pass; ``str()`` renders the table."""

    def table(self) -> list[list[str]]:
        rows = [["step", "op", "output", "upstream", "input", "local", "downstream"]]
        for s in self:
            for k, e in enumerate(s.edges):
                lead = [str(s.index), s.op, s.output, _fmt(s.upstream)] if k == 0 else [""] * 4
                down = ("+= " if e.accumulated else "") + _fmt(e.downstream)
                rows.append([*lead, e.name, _fmt(e.local), down])
        return rows

    def __str__(self) -> str:
        rows = self.table()
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


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


def explain(y: Tensor, dout: Any = None, retain_grad: bool = False) -> Trace:
    """Run ``y.backward(dout)`` and return the trace of what each node did.

    Unnamed tensors get names: leaves ``t1, t2, ...``, intermediates after their op
    (``mul1``, ``add1``). Constants (plain numbers, labels) are left out.
    """
    trace = Trace()
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

    y.backward(dout, retain_grad=retain_grad, on_node=on_node)
    return trace
