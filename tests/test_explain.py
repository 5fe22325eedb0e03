"""explain(): the trace it returns, and that it never adds to a gradient (issue #13, item 2)."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule import Tensor
from chainrule.explain import HEADERS, explain


def circuit() -> tuple[Tensor, Tensor, Tensor, Tensor]:
    x, y, z = Tensor(-2.0, name="x"), Tensor(5.0, name="y"), Tensor(-4.0, name="z")
    return (x + y) * z, x, y, z


def grads(*ts: Tensor) -> list[float | None]:
    return [None if t.grad is None else float(t.grad) for t in ts]


def test_explain_after_backward_leaves_gradients_alone() -> None:
    f, x, y, z = circuit()
    f.backward()
    assert grads(x, y, z) == [-4.0, -4.0, 3.0]
    for _ in range(3):  # used to give -8, then -12
        trace = explain(f)
        assert grads(x, y, z) == [-4.0, -4.0, 3.0]
        assert [e.downstream for e in trace[1].edges] == [-4.0, -4.0]


def test_explain_without_backward_gives_one_pass_and_repeats_add_nothing() -> None:
    f, x, y, z = circuit()
    explain(f)
    assert grads(x, y, z) == [-4.0, -4.0, 3.0]
    explain(f)
    assert grads(x, y, z) == [-4.0, -4.0, 3.0]


def test_explain_keeps_gradients_other_passes_left() -> None:
    # x.grad from another output's backward stays exactly as it was (the same array too).
    f, x, y, _ = circuit()
    g = x * 3.0
    g.backward()
    before = x.grad
    trace = explain(f)
    assert x.grad is before and float(x.grad) == 3.0
    assert float(y.grad) == -4.0  # y had none: it gets this pass's gradient
    assert str(trace).count("+=") == 0  # a gradient already held is not a fork


def test_intermediate_gradients_are_not_left_behind() -> None:
    f, *_ = circuit()
    q = f.creator.inputs[0]
    explain(f)
    assert q.grad is None
    explain(f, retain_grad=True)
    assert float(q.grad) == -4.0


@pytest.mark.parametrize("backward_first", [False, True])
def test_plus_equals_marks_exactly_the_forks(backward_first: bool) -> None:
    x, y = Tensor(3.0, name="x"), Tensor(2.0, name="y")
    a = x * y
    a.name = "a"
    f = a + x  # x forks: into the Mul and into the Add
    f.name = "f"
    if backward_first:
        f.backward()
    trace = explain(f)
    marked = [(s.output, e.name) for s in trace for e in s.edges if e.accumulated]
    assert marked == [("a", "x")]
    assert float(x.grad) == 3.0  # 1 (from f = a + x) + y (from a = x * y)
    assert float(y.grad) == 3.0
    text = str(trace)
    assert text.count("+=") == 1


def test_chinese_table_aligns_wide_characters() -> None:
    f, *_ = circuit()
    text = str(explain(f, lang="zh"))
    header, first = text.splitlines()[:2]
    assert header.split() == list(HEADERS["zh"])
    # "输出" takes 4 terminal columns: the row's "mul1" starts under it.
    col = header.index("输出")
    width = sum(2 if ord(c) > 0x2E80 else 1 for c in header[:col])
    assert first[width:].startswith("mul1")


def test_html_table_for_notebooks() -> None:
    x = Tensor(2.0, name="x")
    f = x * x
    f.name = "f"
    html = explain(f)._repr_html_()
    assert html.startswith("<table") and html.count("<tr") == 3  # head + two inputs
    assert "<th>downstream</th>" in html
    assert ">+=</b> 2" in html  # the second arrival at x is a fork
    assert "<th>下游梯度</th>" in explain(f, lang="zh")._repr_html_()


def test_html_escapes_names() -> None:
    x = Tensor(np.ones(2), name="<x>")
    f = (x * 2.0).sum()
    assert "&lt;x&gt;" in explain(f)._repr_html_()


def test_unknown_language_is_named() -> None:
    f, *_ = circuit()
    with pytest.raises(ValueError, match=r"unknown lang 'fr'.*en, zh"):
        explain(f, lang="fr")
