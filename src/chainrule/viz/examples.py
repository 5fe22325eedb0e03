"""The seeds' worked examples and the book's TwoLayerNet, rebuilt as Tensor graphs to draw.

The apple examples in :mod:`chainrule.examples` call the layers by hand on plain numbers, so
they leave no graph behind; here every example is written in the expression language of
:mod:`chainrule.expr` (one named stage per node of the book's or CS231n's figure) and built
with Tensors. The numbers are the examples' own: ``apple`` gives ``price = 220`` and
``dapple = 2.2``, ``dapple_num = 110``, ``dtax = 200``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.examples import EXAMPLES
from chainrule.expr import parse
from chainrule.functions import Linear, Relu, SoftmaxWithLoss
from chainrule.tensor import Tensor

#: name -> (title, expression, values), for every example that is a small circuit.
CIRCUITS: dict[str, tuple[str, str, dict[str, float]]] = {
    "apple": (
        "apple: 2 apples at 100 with 10% tax (book 5.4)",
        "apple_price = apple * apple_num; price = apple_price * tax",
        {"apple": 100, "apple_num": 2, "tax": 1.1},
    ),
    "apple-orange": (
        "apple and orange: 2 apples at 100, 3 oranges at 150, 10% tax (book 5.4.2)",
        "apple_price = apple * apple_num; orange_price = orange * orange_num; "
        "all_price = apple_price + orange_price; price = all_price * tax",
        {"apple": 100, "apple_num": 2, "orange": 150, "orange_num": 3, "tax": 1.1},
    ),
    "square-sum": (
        "z = (x + y)^2 as t = x + y, z = t^2 (book 5.2)",
        "t = x + y; z = t ** 2",
        {"x": 3, "y": 2},
    ),
    "circuit": (
        "circuit: f = (x + y) * z at x=-2, y=5, z=-4 (CS231n)",
        "q = x + y; f = q * z",
        {"x": -2, "y": 5, "z": -4},
    ),
    "sigmoid-neuron": (
        "sigmoid neuron: f = 1 / (1 + exp(-(w0*x0 + w1*x1 + w2))) (CS231n)",
        "dot = w0 * x0 + w1 * x1 + w2; f = 1 / (1 + exp(-dot))",
        {"w0": 2, "x0": -1, "w1": -3, "x1": -2, "w2": -3},
    ),
    "staged": (
        "staged: f = (x + sigmoid(y)) / (sigmoid(x) + (x + y)^2) at x=3, y=-4 (CS231n)",
        "sigy = sigmoid(y); num = x + sigy; sigx = sigmoid(x); xpy = x + y; "
        "xpysqr = xpy ** 2; den = sigx + xpysqr; invden = 1 / den; f = num * invden",
        {"x": 3, "y": -4},
    ),
}

#: Models that ``chainrule graph --model NAME`` draws.
MODELS = ("two-layer",)


def two_layer_graph(
    x: Any, t: Any, params: dict[str, Any], name: str = "loss"
) -> tuple[Tensor, dict[str, Tensor]]:
    """The book's TwoLayerNet as an autograd graph: Affine1 -> Relu1 -> Affine2 -> loss.

    ``params`` holds ``W1 b1 W2 b2`` (arrays); returns the loss Tensor and the named Tensors
    (their ``.grad`` are the book's ``grads`` after ``loss.backward()``).
    """
    xt = Tensor(x, name="x", requires_grad=False)  # data: a constant, as in training
    tt = Tensor(np.asarray(t), name="t", requires_grad=False)
    ps = {k: Tensor(np.asarray(v, dtype=np.float64), name=k) for k, v in params.items()}
    a1 = Linear(name="Affine1")(xt, ps["W1"], ps["b1"])
    relu = Relu()
    relu.name = "Relu1"  # type: ignore[attr-defined]  # the book's layer name, on the box
    z1 = relu(a1)
    a2 = Linear(name="Affine2")(z1, ps["W2"], ps["b2"])
    loss = SoftmaxWithLoss()(a2, tt)
    for tensor, label in ((a1, "a1"), (z1, "z1"), (a2, "a2"), (loss, name)):
        tensor.name = label
    return loss, {"x": xt, "t": tt, **ps, "a1": a1, "z1": z1, "a2": a2, "loss": loss}


def model_graph(name: str) -> tuple[Tensor, str]:
    """A small model to draw: ``two-layer`` is TwoLayerNet(4, 5, 3) on a batch of 3."""
    if name != "two-layer":
        raise KeyError(f"no model {name!r}; choose from {', '.join(MODELS)}")
    rng = np.random.default_rng(0)
    params = {
        "W1": 0.5 * rng.standard_normal((4, 5)),
        "b1": 0.1 * rng.standard_normal(5),
        "W2": 0.5 * rng.standard_normal((5, 3)),
        "b2": 0.1 * rng.standard_normal(3),
    }
    x = rng.standard_normal((3, 4))
    t = np.array([0, 2, 1])
    loss, _ = two_layer_graph(x, t, params)
    return (
        loss,
        "TwoLayerNet (4-5-3) on a batch of 3: Affine1 -> Relu1 -> Affine2 -> SoftmaxWithLoss",
    )


def example_graph(name: str) -> tuple[Tensor, str]:
    """The example called ``name`` (any of :data:`chainrule.examples.EXAMPLES`) as a graph."""
    if name not in EXAMPLES:
        raise KeyError(f"no example {name!r}; choose from {', '.join(EXAMPLES)}")
    if name in CIRCUITS:
        title, source, values = CIRCUITS[name]
        return parse(source).build(values), title
    if name == "two-layer-check":
        from chainrule.examples.two_layer_check import _three_samples
        from chainrule.layers import TwoLayerNet

        # The example's own network and samples, so the loss is the example's loss.
        x, t, source = _three_samples()
        net = TwoLayerNet(784, 50, 10, rng=np.random.default_rng(0))
        loss, _ = two_layer_graph(x, t, net.params)
        return loss, f"TwoLayerNet (784-50-10) on 3 samples from {source}"
    raise KeyError(f"example {name!r} has no drawing yet")  # pragma: no cover - new examples
