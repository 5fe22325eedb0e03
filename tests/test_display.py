"""What a notebook shows: drawings, explain tables, tensors and training curves (issue #13)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from chainrule import Tensor, viz
from chainrule.viz import Drawing


def circuit() -> Tensor:
    x, y, z = Tensor(-2.0, name="x"), Tensor(5.0, name="y"), Tensor(-4.0, name="z")
    q = x + y
    q.name = "q"
    f = q * z
    f.name = "f"
    return f


def test_draw_returns_text_that_a_notebook_shows_as_svg() -> None:
    d = viz.draw(circuit())
    assert isinstance(d, Drawing) and isinstance(d, str)
    assert str(d) == d and type(str(d)) is str
    assert d._repr_svg_() == str(d)
    ET.fromstring(d)  # well-formed, as before
    assert d._repr_html_() is None  # the SVG wins; no duplicate HTML rendering
    assert repr(d).startswith("<Drawing svg, 5 nodes")


def test_dot_and_html_drawings() -> None:
    dot = viz.draw(circuit(), format="dot")
    assert dot.startswith("digraph") and dot._repr_svg_() is None
    page = viz.draw(circuit(), format="html")
    frame = page._repr_html_()
    assert frame is not None and frame.startswith("<iframe srcdoc=")
    assert "&lt;!DOCTYPE html&gt;" in frame  # the page is quoted inside the attribute


def test_drawing_saves_in_the_format_the_suffix_names(tmp_path: Path) -> None:
    d = viz.draw(circuit())
    assert d.save(tmp_path / "f.svg") is d  # a notebook cell ending in .save() shows it
    assert (tmp_path / "f.svg").read_text(encoding="utf-8") == str(d)
    d.save(tmp_path / "f.dot")  # redrawn from the same graph
    assert (tmp_path / "f.dot").read_text(encoding="utf-8") == viz.draw(circuit(), format="dot")
    with pytest.raises(ValueError, match="cannot tell the picture format"):
        d.save(tmp_path / "f.jpg")


def test_chinese_words_in_the_picture() -> None:
    en, zh = viz.draw(circuit()), viz.draw(circuit(), lang="zh")
    assert "upstream" in en and "上游梯度" not in en
    assert "上游梯度" in zh and "局部导数" in zh and "upstream" not in zh
    assert "f 的计算图" in zh
    x = Tensor(np.ones(3), name="x")
    g = (x * x).sum()  # arrays: the box names how many gradients were added
    assert "2 项之和" in viz.draw(g, lang="zh") and "sum of 2" in viz.draw(g)
    with pytest.raises(ValueError, match="unknown lang 'de'"):
        viz.draw(circuit(), lang="de")


def test_direction_reaches_the_dot_file() -> None:
    assert "rankdir=TB" in viz.draw(circuit(), format="dot", direction="TB")
    assert "rankdir=LR" in viz.draw(circuit(), format="dot")
    with pytest.raises(ValueError, match="direction must be one of LR, TB"):
        viz.draw(circuit(), direction="BT")


def test_tensor_repr_shows_value_grad_and_creator() -> None:
    f = circuit()
    x = f.creator.inputs[0].creator.inputs[0]
    assert repr(x) == "Tensor(-2., name='x')"
    f.backward()
    assert repr(x) == "Tensor(-2., name='x', grad=-4.)"
    assert repr(f) == "Tensor(-12., name='f', creator=Mul)"
    assert repr(x.grad) == "array(-4.)"  # not np.float64(-4.0)


def test_history_figure_is_a_png_for_notebooks(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="history_figure needs matplotlib")
    from chainrule.plotting import HistoryFigure, history_figure

    history = {
        "epoch": [1.0, 2.0, 3.0],
        "train_loss": [0.9, 0.5, 0.3],
        "test_loss": [1.0, 0.6, 0.4],
        "train_acc": [0.7, 0.85, 0.9],
        "test_acc": [0.68, 0.8, 0.88],
        "lr": [0.1, 0.1, 0.1],
    }
    fig = history_figure(history, title="run 1")
    assert isinstance(fig, HistoryFigure)
    png = fig._repr_png_()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000
    assert [ax.get_ylabel() for ax in fig.figure.axes] == ["loss (cross-entropy)", "accuracy"]
    assert fig.figure.axes[0].lines[0].get_ydata().tolist() == [0.9, 0.5, 0.3]
    assert fig.save(tmp_path / "h.png") is fig
    assert (tmp_path / "h.png").read_bytes() == png
    with pytest.raises(ValueError, match="history_figure: 'test_acc' has 2 values"):
        history_figure({**history, "test_acc": [0.1, 0.2]})


def test_history_figure_from_a_real_fit() -> None:
    pytest.importorskip("matplotlib", reason="history_figure needs matplotlib")
    from chainrule.layers import TwoLayerNet
    from chainrule.optim import SGD
    from chainrule.plotting import history_figure
    from chainrule.training import Trainer

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4))
    t = (x[:, 0] > 0).astype(int)
    net = TwoLayerNet(4, 8, 2)
    trainer = Trainer(net, SGD(lr=0.1), x, t, x, t, epochs=2, batch_size=20, progress=False)
    history = trainer.fit()
    assert isinstance(history, dict) and len(history["epoch"]) >= 2  # dict access unchanged
    fig = history_figure(history)
    assert fig.figure.axes[1].lines[0].get_ydata().tolist() == history["train_acc"]


def test_progress_bar_comes_from_tqdm_auto() -> None:
    pytest.importorskip("tqdm", reason="progress bars need tqdm")
    import tqdm.auto

    from chainrule.training.progress import Progress

    assert Progress("bar", None).tqdm is tqdm.auto.tqdm


def test_top_to_bottom_layout_puts_inputs_above() -> None:
    from chainrule.viz.examples import example_graph
    from chainrule.viz.layout_tb import layout_tb

    f, title = example_graph("sigmoid-neuron")[:2]
    graph = viz.build_graph(f, title=title, direction="TB")
    lay = layout_tb(graph)
    for e in graph.edges:
        src, dst = lay.boxes[e.source], lay.boxes[e.target]
        assert dst.y > src.y + src.h  # every wire runs downward
        route = next(r for r in lay.routes if r.edge_id == e.id)
        assert route.path.endswith(f"V{dst.y:g}")  # ...into the target's top edge
        assert dst.x <= dst.ports[e.port] <= dst.x + dst.w
    for n in graph.nodes:  # neighbouring ports leave room for their labels
        ports = lay.boxes[n.id].ports
        assert all(b - a >= 40 for a, b in pairwise(ports))
    wide, tall = viz.draw(f, title=title), viz.draw(f, title=title, direction="TB")
    assert wide.graph.direction == "LR" and tall.graph.direction == "TB"
    w_lr = float(ET.fromstring(wide).get("width"))
    w_tb, h_tb = float(ET.fromstring(tall).get("width")), float(ET.fromstring(tall).get("height"))
    assert w_tb < w_lr / 2 and h_tb > w_tb  # the wide neuron becomes a tall picture
    assert tall == viz.draw(f, title=title, direction="TB")  # deterministic
    assert "<svg" in viz.draw(f, format="html", direction="TB")
