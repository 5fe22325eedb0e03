"""Drawing computational graphs: the model (values, gradients, merges), the SVG and DOT text,
the HTML page's data, saving by suffix, the layout's geometry, and ``chainrule graph``."""

from __future__ import annotations

import argparse
import doctest
import itertools
import json
import re
import sys
import types
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose

from chainrule import Tensor, no_grad
from chainrule.cli import UserError
from chainrule.examples import EXAMPLES
from chainrule.examples import run as run_example
from chainrule.expr import parse
from chainrule.layers import TwoLayerNet
from chainrule.viz import (
    CIRCUITS,
    RendererNotFound,
    RenderError,
    build_graph,
    draw,
    example_graph,
    format_for,
    layout,
    model_graph,
    page_data,
    save,
    two_layer_graph,
)
from chainrule.viz.cli import add_graph_parser, cmd_graph, parse_values
from chainrule.viz.layout import FONT, spans_width

SVG = "{http://www.w3.org/2000/svg}"


def circuit() -> tuple[Tensor, Tensor, Tensor, Tensor]:
    x, y, z = Tensor(-2.0, name="x"), Tensor(5.0, name="y"), Tensor(-4.0, name="z")
    q = x + y
    q.name = "q"
    f = q * z
    f.name = "f"
    return f, x, y, z


def staged() -> Tensor:
    return example_graph("staged")[0]


def svg_tree(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def classed(root: ET.Element, tag: str, cls: str) -> list[ET.Element]:
    return [
        el for el in root.iter(SVG + tag) if cls in (el.get("class") or "").split()
    ]  # fmt: skip


def texts(el: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in el.iter(SVG + "text")]


def svg_lines(svg: str) -> list[str]:
    """Every text line of the drawing, as a viewer shows it."""
    return texts(svg_tree(svg))


# ----------------------------------------------------------------------------- the model


def test_graph_model_of_the_circuit() -> None:
    f, *_ = circuit()
    g = build_graph(f)
    assert [(n.kind, n.name) for n in g.nodes] == [
        ("leaf", "x"), ("leaf", "y"), ("op", "q"), ("leaf", "z"), ("op", "f"),
    ]  # fmt: skip
    assert [n.title for n in g.nodes] == ["x", "y", "+", "z", "×"]
    assert g.root == "n4" and g.output_name == "f" and float(g.output_value) == -12.0
    grads = {n.name: float(n.grad) for n in g.nodes}
    assert grads == {"x": -4.0, "y": -4.0, "q": -4.0, "z": 3.0, "f": 1.0}
    edges = {(e.name, g.node(e.target).name): (float(e.grad), e.local) for e in g.edges}
    assert edges == {
        ("x", "q"): (-4.0, 1.0), ("y", "q"): (-4.0, 1.0),
        ("q", "f"): (-4.0, -4.0), ("z", "f"): (3.0, 3.0),
    }  # fmt: skip
    assert g.forward_order == ["n0", "n1", "n2", "n3", "n4"]
    assert g.backward_order == ["n4", "n3", "n2", "n0", "n1"]  # z done after Mul, x, y after Add


def test_drawing_leaves_every_grad_as_it_was() -> None:
    f, x, y, z = circuit()
    draw(f)  # no backward before: the replay must not leave gradients behind
    assert x.grad is None and y.grad is None and z.grad is None and f.grad is None
    f.backward()
    before = (float(x.grad), float(y.grad), float(z.grad))
    svg = draw(f)
    assert (float(x.grad), float(y.grad), float(z.grad)) == before
    assert f.grad is None  # intermediate gradients were freed by backward, and stay freed
    assert ">-4<" in svg and ">3<" in svg


def test_fan_out_shows_the_sum_and_the_plus_equals() -> None:
    g = build_graph(staged())
    x = next(n for n in g.nodes if n.name == "x")
    assert len(x.parts) == 3
    assert_allclose(sum(float(p) for p in x.parts), float(x.grad))
    assert_allclose(float(x.grad), 2.0595697955721652)
    assert sum(e.accumulated for e in g.edges) == 3  # x twice, y once (see the explain table)
    lines = svg_lines(draw(g))
    assert "dx = 0.5121 + -0.03576 + 1.583 = 2.06" in lines
    assert "dy = 0.009046 + 1.583 = 1.592" in lines
    assert "+= 1.583" in lines and "x: 1.583 × 1 = 1.583" in lines


def test_same_tensor_twice_in_one_op_merges() -> None:
    x = Tensor(3.0, name="x")
    f = x * x
    g = build_graph(f)
    leaf = g.node("n0")
    assert [float(p) for p in leaf.parts] == [3.0, 3.0] and float(leaf.grad) == 6.0
    assert len(g.edges) == 2 and {e.port for e in g.edges} == {0, 1}
    assert [e.accumulated for e in g.edges] == [False, True]  # the second 3 is added: +=
    assert "dx = 3 + 3 = 6" in svg_lines(draw(g))


def test_constants_fold_into_the_gate_label() -> None:
    f = example_graph("sigmoid-neuron")[0]
    titles = [n.title for n in build_graph(f).nodes if n.kind == "op"]
    assert titles == ["×", "×", "+", "+", "neg", "exp", "+1", "1/x"]
    g = build_graph(parse("x ** 2 - 1 + maximum(x, 0) / 2 + (3 - x)").build({"x": 2.0}))
    ops = {n.title for n in g.nodes if n.kind == "op"}
    assert {"**2", "−1", "max(·, 0)", "÷2", "3−x"} <= ops


def test_values_only_when_nothing_needs_a_gradient() -> None:
    with no_grad():
        f = Tensor(2.0, name="a") * Tensor(3.0, name="b")
    g = build_graph(f)
    assert not g.has_gradients and len(g.nodes) == 1 and g.nodes[0].kind == "leaf"
    svg = draw(f)
    assert not classed(svg_tree(svg), "text", "grad")
    f = Tensor(np.array([1, 2]), name="labels")  # integers never need gradients
    assert not build_graph(f).has_gradients


def test_a_lone_leaf_draws() -> None:
    x = Tensor(1.5, name="x")
    g = build_graph(x)
    assert [n.kind for n in g.nodes] == ["leaf"] and float(g.seed) == 1.0
    assert g.backward_order == ["n0"]
    assert len(classed(svg_tree(draw(x)), "g", "node")) == 1


def test_array_summaries_small_and_large() -> None:
    w = Tensor(np.arange(6.0).reshape(2, 3), name="w")
    big = Tensor(np.linspace(-1, 1, 20), name="big")
    f = (w * 2.0).sum() + (big * big).sum()
    lines = svg_lines(draw(f))
    assert "(2, 3) [[0, 1, 2], [3, 4, 5]]" in lines
    assert "(20,) ∈ [-1, 1]" in lines


def test_non_scalar_output_needs_a_seed() -> None:
    x = Tensor(np.array([1.0, 2.0]), name="x")
    y = x * 3.0
    with pytest.raises(ValueError, match="seed gradient"):
        draw(y)
    g = build_graph(y, dout=np.array([1.0, 0.5]))
    assert_allclose(g.node("n0").grad, [3.0, 1.5])


def test_unnamed_tensors_get_the_explain_tables_names() -> None:
    a, b = Tensor(2.0), Tensor(3.0)
    f = a * b + a
    g = build_graph(f)
    names = [n.name for n in g.nodes]
    trace_names = {s.output for s in g.trace} | {e.name for s in g.trace for e in s.edges}
    assert set(names) == trace_names
    assert len(set(names)) == len(names)


def test_doctests() -> None:
    import chainrule.viz

    result = doctest.testmod(chainrule.viz)
    assert result.attempted > 0 and result.failed == 0


def test_draw_rejects_what_it_cannot_draw() -> None:
    with pytest.raises(TypeError, match="Tensor"):
        draw(3.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown format 'jpg'"):
        draw(circuit()[0], format="jpg")


# ----------------------------------------------------------------------------- SVG


def test_svg_structure_of_the_circuit() -> None:
    f, *_ = circuit()
    svg = draw(f)
    root = svg_tree(svg)
    assert root.tag == SVG + "svg"
    nodes = classed(root, "g", "node")
    assert len(nodes) == 5  # 2 ops + 3 leaves
    assert len(classed(root, "g", "op")) == 2 and len(classed(root, "g", "leaf")) == 3
    assert len(classed(root, "g", "edge")) == 5  # 4 wires + the output
    titles = {texts(n)[0] for n in nodes}
    assert titles == {"x", "y", "z", "+", "×"}
    labels = [t for el in classed(root, "g", "edge") for t in texts(el)]
    for expected in ["x = -2", "y = 5", "z = -4", "q = 3", "f = -12"]:
        assert expected in labels
    grads = ["".join(el.itertext()) for el in classed(root, "text", "grad")]
    for expected in ["-4", "3", "1", "dx = -4", "dz = 3"]:
        assert expected in grads
    products = ["".join(el.itertext()) for el in classed(root, "text", "product")]
    assert products == ["x: -4 × 1 = -4", "y: -4 × 1 = -4", "q: 1 × -4 = -4", "z: 1 × 3 = 3"]


def test_svg_colours_values_green_gradients_red() -> None:
    root = svg_tree(draw(circuit()[0]))
    value_fills = {el.get("fill") for el in classed(root, "tspan", "value")}
    grad_fills = {el.get("fill") for el in classed(root, "tspan", "grad")}
    assert value_fills == {"#1b7f2a"} and grad_fills == {"#c62828"}


def test_svg_is_deterministic() -> None:
    assert draw(circuit()[0]) == draw(circuit()[0])
    assert draw(staged()) == draw(staged())
    g = build_graph(staged())
    assert draw(g) == draw(g)


def test_svg_escapes_names() -> None:
    a = Tensor(1.0, name='<a & "b">')
    f = a * 2.0
    svg = draw(f)
    root = svg_tree(svg)  # still well-formed XML
    assert '<a & "b">' in texts(classed(root, "g", "leaf")[0])


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_every_example_draws_with_the_examples_numbers(name: str) -> None:
    f, title = example_graph(name)
    g = build_graph(f, title=title)
    svg = draw(g)
    root = svg_tree(svg)
    assert len(classed(root, "g", "node")) == len(g.nodes)
    assert len(g.nodes) == len({id(n) for n in g.nodes})
    if name in CIRCUITS:
        ex = run_example(name)
        by_name = {n.name: n for n in g.nodes}
        for key, value in ex.forward.items():
            assert_allclose(float(by_name[key].value), float(value), rtol=1e-12, err_msg=key)
        for key, value in ex.gradients.items():
            assert_allclose(float(by_name[key].grad), float(value), rtol=1e-12, err_msg=key)


def test_apple_numbers_are_the_books() -> None:
    g = build_graph(example_graph("apple")[0])
    by_name = {n.name: n for n in g.nodes}
    assert round(float(by_name["price"].value), 10) == 220.0
    assert round(float(by_name["apple"].grad), 10) == 2.2
    assert round(float(by_name["apple_num"].grad), 10) == 110.0
    assert float(by_name["tax"].grad) == 200.0
    lines = svg_lines(draw(g))
    for text in ["price = 220", "dapple = 2.2", "dapple_num = 110", "dtax = 200"]:
        assert text in lines


def test_two_layer_model_graph_matches_the_layers_by_hand() -> None:
    f, title = model_graph("two-layer")
    g = build_graph(f, title=title)
    ops = [n for n in g.nodes if n.kind == "op"]
    leaves = [n for n in g.nodes if n.kind == "leaf"]
    assert [n.title for n in ops] == ["Affine1", "Relu1", "Affine2", "SoftmaxWithLoss"]
    assert sorted(n.name for n in leaves) == ["W1", "W2", "b1", "b2", "t", "x"]
    text = " ".join(svg_lines(draw(g)))
    for shape in ["(3, 4)", "(4, 5)", "(5,)", "(3, 5)", "(5, 3)", "(3, 3)", "(3,)"]:
        assert shape in text
    assert "W1: (3, 5) × ∂a1/∂W1 = (4, 5)" in text
    # The same network by hand, with the book's layers: the same loss and gradients.
    by_name = {n.name: n for n in g.nodes}
    params = {k: by_name[k].value for k in ["W1", "b1", "W2", "b2"]}
    net = TwoLayerNet(4, 5, 3)
    for k, v in params.items():
        net.params[k][...] = v
    x, t = by_name["x"].value, by_name["t"].value
    assert_allclose(float(by_name["loss"].value), net.loss(x, t), rtol=1e-12)
    grads = net.gradient(x, t)
    for k in params:
        assert_allclose(by_name[k].grad, grads[k], rtol=1e-10, atol=1e-14, err_msg=k)
    assert by_name["x"].grad is None and by_name["t"].grad is None


def test_two_layer_graph_helper_returns_named_tensors() -> None:
    rng = np.random.default_rng(0)
    params = {"W1": rng.random((2, 3)), "b1": np.zeros(3), "W2": rng.random((3, 2)),
              "b2": np.zeros(2)}  # fmt: skip
    loss, named = two_layer_graph(rng.random((4, 2)), np.array([0, 1, 1, 0]), params)
    assert named["loss"] is loss and named["a1"].name == "a1"
    assert loss.creator.inputs[0] is named["a2"]


def test_unknown_example_or_model() -> None:
    with pytest.raises(KeyError, match="pear"):
        example_graph("pear")
    with pytest.raises(KeyError, match="three-layer"):
        model_graph("three-layer")


# ----------------------------------------------------------------------------- layout geometry


def _rects(g_or_tensor) -> tuple[list, list]:
    g = g_or_tensor if not isinstance(g_or_tensor, Tensor) else build_graph(g_or_tensor)
    lay = layout(g)
    boxes = [(b.x, b.y, b.x + b.w, b.y + b.h, b.id) for b in lay.boxes.values()]
    labels = []
    for r in [*lay.routes, *([lay.output] if lay.output else [])]:
        w = max(spans_width(r.value), spans_width(r.grad) if r.grad else 0.0)
        top = r.wire_y - 5 - FONT
        bottom = r.wire_y + (14 + 3 if r.grad else -2)
        labels.append((r.label_x, top, r.label_x + w, bottom, r.edge_id))
    return boxes, labels


def _overlap(a: tuple, b: tuple) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


DRAWINGS = {
    **{name: (lambda name=name: example_graph(name)[0]) for name in CIRCUITS},
    "two-layer": lambda: model_graph("two-layer")[0],
    "fan-out": lambda: parse("q = x * y; r = q + x; s = r * q; t = s + y * x; t * q").build(
        {"x": 1.5, "y": -2.0}
    ),
    "wide": lambda: parse(" + ".join(f"a{i} * b{i}" for i in range(8))).build(
        {f"{c}{i}": float(i + 1) for i in range(8) for c in "ab"}
    ),
    "square": lambda: parse("x * x * x").build({"x": 2.0}),
}


@pytest.mark.parametrize("name", list(DRAWINGS))
def test_layout_nothing_overlaps(name: str) -> None:
    boxes, labels = _rects(DRAWINGS[name]())
    for a, b in itertools.combinations(boxes, 2):
        assert not _overlap(a, b), (a, b)
    for a, b in itertools.combinations(labels, 2):
        assert not _overlap(a, b), (a, b)
    for lab in labels:
        for box in boxes:
            assert not _overlap(lab, box), (lab, box)


def test_layout_flows_left_to_right() -> None:
    g = build_graph(staged())
    lay = layout(g)
    for e in g.edges:
        assert lay.boxes[e.source].x + lay.boxes[e.source].w < lay.boxes[e.target].x
    root = lay.boxes[g.root]
    assert all(b.x <= root.x for b in lay.boxes.values())


def test_a_long_chain_draws_quickly() -> None:
    x = Tensor(0.5, name="x")
    y = x
    for _ in range(300):
        y = y * 1.001 + 0.0
    svg = draw(y)
    assert len(classed(svg_tree(svg), "g", "node")) == 601


# ----------------------------------------------------------------------------- DOT


def test_dot_text() -> None:
    f, *_ = circuit()
    dot = draw(f, format="dot")
    assert dot.startswith("digraph chainrule {") and dot.rstrip().endswith("}")
    assert "rankdir=LR" in dot
    node_lines = re.findall(r"^  (n\d+) \[label=", dot, re.M)
    assert node_lines == ["n0", "n1", "n2", "n3", "n4"]
    assert len(re.findall(r"^  n\d+ -> n\d+ ", dot, re.M)) == 4
    assert "n4 -> output" in dot
    assert '<FONT COLOR="#1b7f2a">-2</FONT>' in dot  # x's value, green
    assert '<FONT COLOR="#c62828">-4</FONT>' in dot  # its gradient, red
    labels = dot.replace(" -> ", " ")
    assert labels.count("<") == labels.count(">")  # balanced HTML-like labels
    assert draw(f, format="dot") == dot


def test_dot_escapes_names() -> None:
    f = Tensor(1.0, name="a<b") * 2.0
    dot = draw(f, format="dot")
    assert "a&lt;b" in dot and "a<b" not in dot


# ----------------------------------------------------------------------------- HTML


def _page_json(html: str) -> dict:
    m = re.search(
        r'<script type="application/json" id="chainrule-steps">(.*?)</script>', html, re.S
    )
    assert m is not None
    return json.loads(m.group(1))


def test_html_page_is_self_contained() -> None:
    html = draw(staged(), format="html")
    assert html.startswith("<!DOCTYPE html>") and html.count("<svg") == 1
    assert "<script src" not in html and "<link" not in html
    assert not re.search(r"(src|href)=\"(https?:)?//", html)
    # The only URL is the SVG namespace, which is a name, not a request.
    assert set(re.findall(r"https?://[^\s\"']+", html)) == {"http://www.w3.org/2000/svg"}
    data = _page_json(html)
    assert data["steps"] and data["backwardStart"] == len(data["forward"])


def test_html_steps_visit_every_node_once_per_pass() -> None:
    g = build_graph(staged())
    data = page_data(g)
    ids = [n.id for n in g.nodes]
    fwd = [s["node"] for s in data["steps"] if s["phase"] == "forward"]
    bwd = [s["node"] for s in data["steps"] if s["phase"] == "backward"]
    assert sorted(fwd) == sorted(ids) and sorted(bwd) == sorted(ids)
    # forward: inputs before consumers; backward: consumers before inputs
    for e in g.edges:
        assert fwd.index(e.source) < fwd.index(e.target)
        assert bwd.index(e.target) < bwd.index(e.source)


def test_html_json_cannot_close_the_script_block() -> None:
    f = Tensor(1.0, name="</script><b>") * 2.0
    html = draw(f, format="html")
    data = _page_json(html)
    assert any("</script><b>" in json.dumps(s) for s in data["steps"])
    assert html.count("</script>") == 2


def test_html_panel_numbers_for_the_circuit() -> None:
    data = page_data(build_graph(circuit()[0]))
    shown = {p["q"]: p["t"] for s in data["steps"] for row in s["rows"] for p in row if "q" in p}
    assert shown["value:q"] == "3" and shown["value:f"] == "-12"
    assert shown["upstream:q"] == "-4" and shown["local:f/z"] == "3"
    assert shown["down:q/x"] == "-4" and shown["grad:x"] == "-4" and shown["grad:z"] == "3"


# ----------------------------------------------------------------------------- saving


@pytest.mark.parametrize(
    ("suffix", "start"),
    [(".svg", b"<svg"), (".dot", b"digraph"), (".gv", b"digraph"), (".html", b"<!DOCTYPE"),
     (".HTM", b"<!DOCTYPE")],
)  # fmt: skip
def test_save_picks_the_format_by_suffix(tmp_path: Path, suffix: str, start: bytes) -> None:
    path = tmp_path / f"circuit{suffix}"
    assert save(circuit()[0], path) == path
    assert path.read_bytes().startswith(start)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temp file left


def test_save_replaces_atomically_and_keeps_the_old_file_on_failure(tmp_path: Path) -> None:
    path = tmp_path / "g.svg"
    path.write_text("old")
    with pytest.raises(ValueError, match="seed gradient"):
        save(Tensor(np.ones(2)) * 2.0, path)
    assert path.read_text() == "old"
    save(circuit()[0], path)
    assert path.read_text().startswith("<svg")
    assert len(list(tmp_path.iterdir())) == 1


def test_save_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\.svg"):
        save(circuit()[0], tmp_path / "g.jpg")
    with pytest.raises(ValueError):
        format_for("picture")


def _no_renderers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cairosvg", None)  # import fails
    monkeypatch.setattr("chainrule.viz.png.shutil.which", lambda name: None)


def test_png_without_a_renderer_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_renderers(monkeypatch)
    with pytest.raises(RendererNotFound, match=r"pip install cairosvg.*dot"):
        save(circuit()[0], tmp_path / "g.png")
    assert not list(tmp_path.iterdir())


def test_png_through_cairosvg_when_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = {}

    def svg2png(bytestring: bytes, scale: float) -> bytes:
        seen["svg"] = bytestring
        return b"\x89PNG fake"

    monkeypatch.setitem(sys.modules, "cairosvg", types.SimpleNamespace(svg2png=svg2png))
    save(circuit()[0], tmp_path / "g.png")
    assert (tmp_path / "g.png").read_bytes() == b"\x89PNG fake"
    assert seen["svg"].startswith(b"<svg")


def _fake_dot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str) -> None:
    dot = tmp_path / "dot"
    dot.write_text("#!/bin/sh\n" + script)
    dot.chmod(0o755)
    monkeypatch.setitem(sys.modules, "cairosvg", None)
    monkeypatch.setattr("chainrule.viz.png.shutil.which", lambda name: str(dot))


@pytest.mark.skipif(sys.platform == "win32", reason="a shell script stands in for dot")
def test_png_through_graphviz_dot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_dot(tmp_path, monkeypatch, "cat > \"$0.in\"; printf '\\211PNG fake'\n")
    out = tmp_path / "g.png"
    save(circuit()[0], out)
    assert out.read_bytes() == b"\x89PNG fake"
    assert (tmp_path / "dot.in").read_text().startswith("digraph chainrule {")


@pytest.mark.skipif(sys.platform == "win32", reason="a shell script stands in for dot")
def test_png_when_dot_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_dot(tmp_path, monkeypatch, "echo 'Error: syntax' >&2; exit 1\n")
    with pytest.raises(RenderError, match="dot -Tpng failed: Error: syntax"):
        draw(circuit()[0], format="png")
    with pytest.raises(UserError, match="dot -Tpng failed"):
        _run(["graph", "--example", "apple", "-q", "-o", str(tmp_path / "a.png")])


# ----------------------------------------------------------------------------- the command


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chainrule")
    sub = parser.add_subparsers(dest="command")
    add_graph_parser(sub)
    return parser


def _run(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    return args.func(args)


def test_cmd_graph_expression_to_svg(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "circuit.svg"
    args = _parser().parse_args(
        ["graph", "(x + y) * z", "--set", "x=-2", "y=5", "z=-4", "-o", str(out)]
    )
    assert args.func is cmd_graph
    assert cmd_graph(args) == 0
    printed = capsys.readouterr().out
    assert "f = (x + y) * z at x=-2, y=5, z=-4" in printed
    assert "step  op   output  upstream" in printed and "Mul" in printed
    assert f"wrote {out}" in printed
    root = svg_tree(out.read_text(encoding="utf-8"))
    assert len(classed(root, "g", "node")) == 5


def test_cmd_graph_html_and_dot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["graph", "q = x + y; q * z", "--set", "x=-2", "y=5", "z=-4", "-o",
                 str(tmp_path / "c.html")]) == 0  # fmt: skip
    html = (tmp_path / "c.html").read_text(encoding="utf-8")
    assert _page_json(html)["output"] == "f"
    assert capsys.readouterr().out.startswith("q = x + y; q * z at x=-2, y=5, z=-4\n")
    assert _run(["graph", "--example", "apple", "-q", "-o", str(tmp_path / "a.dot")]) == 0
    assert (tmp_path / "a.dot").read_text().startswith("digraph")
    assert capsys.readouterr().out == ""  # --quiet


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_cmd_graph_every_example(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / f"{name}.svg"
    assert _run(["graph", "--example", name, "-o", str(out)]) == 0
    assert out.read_text().startswith("<svg")
    assert "step" in capsys.readouterr().out


def test_cmd_graph_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["graph", "--model", "two-layer", "-o", str(tmp_path / "m.html")]) == 0
    out = capsys.readouterr().out
    assert "SoftmaxWithLoss" in out and "Linear" in out
    assert "Affine1" in (tmp_path / "m.html").read_text()


def test_cmd_graph_direction_and_language(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["graph", "q = x + y; f = q * z", "--set", "x=-2", "y=5", "z=-4"]
    assert _run([*argv, "--direction", "TB", "--lang", "zh", "-o", str(tmp_path / "f.svg")]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1].split() == [
        "步骤",
        "运算",
        "输出",
        "上游梯度",
        "输入",
        "局部导数",
        "下游梯度",
    ]
    svg = (tmp_path / "f.svg").read_text(encoding="utf-8")
    assert "上游梯度" in svg
    root = svg_tree(svg)
    assert float(root.get("height")) > float(root.get("width")) / 2  # a column, not a row
    assert _run([*argv, "--direction", "TB", "-o", str(tmp_path / "f.dot"), "-q"]) == 0
    assert "rankdir=TB" in (tmp_path / "f.dot").read_text(encoding="utf-8")


def test_cmd_graph_prints_without_writing(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["graph", "x * y", "--set", "x=2", "y=3"]) == 0
    out = capsys.readouterr().out
    assert "wrote" not in out and "Mul" in out


def test_cmd_graph_array_values(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["graph", "x * y", "--set", "x=1,2", "y=3"]) == 0
    assert "starts from ones" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["graph", "(x + y) * z", "--set", "x=-2"], "no value for y, z (add --set y=... z=...)"),
        (["graph", "x + ", "--set", "x=1"], "bad expression: column 4: invalid syntax at the end"),
        (["graph", "os.system(1)"], "attribute access 'os.system'"),
        (["graph", "x", "--set", "x=1", "w=2"], "--set w: not a variable"),
        (["graph", "x", "--set", "x"], "--set expects NAME=VALUE, got 'x'"),
        (["graph", "x", "--set", "x=one"], "--set x: 'one' is not a number"),
        (["graph", "x", "--set", "x=1", "x=2"], "--set gives x twice"),
        (["graph", "x", "--set", "x=inf"], "not finite"),
        (["graph", "log(x)", "--set", "x=-1"], "not finite at these values"),
        (["graph"], "give exactly one of"),
        (["graph", "x", "--example", "apple"], "give exactly one of"),
        (["graph", "--example", "apple", "--set", "x=1"], "--set gives values"),
        (["graph", "--example", "apple", "-o", "a.jpg"], "cannot tell the picture format"),
    ],
)
def test_cmd_graph_user_errors_are_one_line(argv: list[str], message: str) -> None:
    with pytest.raises(UserError) as info:
        _run(argv)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_cmd_graph_png_without_renderer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _no_renderers(monkeypatch)
    with pytest.raises(UserError, match="cairosvg"):
        _run(["graph", "--example", "apple", "-q", "-o", str(tmp_path / "a.png")])


def test_cmd_graph_unwritable_path(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="cannot write"):
        _run(["graph", "--example", "apple", "-q", "-o", str(tmp_path / "missing" / "a.svg")])


def test_parse_values() -> None:
    values = parse_values(["x=-2", "w=1,2.5"])
    assert values["x"] == -2.0
    assert_allclose(values["w"], [1.0, 2.5])
