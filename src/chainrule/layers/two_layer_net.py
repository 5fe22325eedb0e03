"""The book's TwoLayerNet: Affine -> Relu -> Affine -> SoftmaxWithLoss, from an ordered dict."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from chainrule.config import get_rng
from chainrule.functions.elementwise import Relu
from chainrule.functions.loss import SoftmaxWithLoss, check_targets
from chainrule.gradcheck import numerical_gradient
from chainrule.layers.affine import Affine
from chainrule.nn.init import check_size


class TwoLayerNet:
    """A two-layer network with the book's API.

    ``params`` holds ``W1 (input, hidden)``, ``b1``, ``W2 (hidden, output)``, ``b2``; ``layers``
    is the ordered dict ``Affine1 -> Relu1 -> Affine2``; ``last_layer`` is
    :class:`SoftmaxWithLoss` (``lastLayer`` is the book's spelling, kept as an alias).
    ``gradient`` walks the layers in reverse — backpropagation by hand — and
    ``numerical_gradient`` does the same job slowly, for checking it. Weights are drawn from
    ``rng`` (default: the generator seeded by :func:`chainrule.seed`).

    >>> import numpy as np
    >>> net = TwoLayerNet(4, 5, 3, rng=np.random.default_rng(0))
    >>> x, t = np.ones((2, 4)), np.array([0, 2])
    >>> sorted(net.gradient(x, t))
    ['W1', 'W2', 'b1', 'b2']
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        output_size: int,
        weight_init_std: float = 0.01,
        *,
        rng: np.random.Generator | None = None,
        dtype: Any = np.float64,
    ):
        input_size = check_size("TwoLayerNet", "input_size", input_size)
        hidden_size = check_size("TwoLayerNet", "hidden_size", hidden_size)
        output_size = check_size("TwoLayerNet", "output_size", output_size)
        rng = get_rng() if rng is None else rng
        self.params = {
            "W1": (weight_init_std * rng.standard_normal((input_size, hidden_size))).astype(dtype),
            "b1": np.zeros(hidden_size, dtype=dtype),
            "W2": (weight_init_std * rng.standard_normal((hidden_size, output_size))).astype(dtype),
            "b2": np.zeros(output_size, dtype=dtype),
        }
        self.layers: OrderedDict[str, Any] = OrderedDict()
        # Nobody uses the gradient of the input images: Affine1 skips computing dx.
        self.layers["Affine1"] = Affine(
            self.params["W1"], self.params["b1"], name="Affine1", need_dx=False
        )
        self.layers["Relu1"] = Relu()
        self.layers["Affine2"] = Affine(self.params["W2"], self.params["b2"], name="Affine2")
        self.last_layer = SoftmaxWithLoss()

    @property
    def lastLayer(self) -> SoftmaxWithLoss:
        return self.last_layer

    def predict(self, x: Any) -> Any:
        """Scores (before softmax) for a batch ``x`` of shape ``(N, input_size)``."""
        for layer in self.layers.values():
            x = layer.forward(x)
        return x

    def loss(self, x: Any, t: Any) -> float:
        """Mean cross-entropy of the batch; ``t`` as labels ``(N,)`` or one-hot ``(N, C)``."""
        return self.last_layer.forward(self.predict(x), t)

    def accuracy(self, x: Any, t: Any) -> float:
        """Fraction of samples whose highest score is the target class."""
        y = self.predict(x)
        t, one_hot = check_targets("TwoLayerNet.accuracy", y, t)
        labels = t.argmax(axis=1) if one_hot else t
        return float((y.argmax(axis=-1).reshape(-1) == labels).mean())

    def numerical_gradient(self, x: Any, t: Any) -> dict[str, Any]:
        """Gradients of the loss by central differences (slow; for checking ``gradient``)."""
        return {
            key: numerical_gradient(lambda _: self.loss(x, t), self.params[key])
            for key in ("W1", "b1", "W2", "b2")
        }

    def gradient(self, x: Any, t: Any) -> dict[str, Any]:
        """Gradients of the loss by backpropagation through the layers in reverse order."""
        self.loss(x, t)
        dout = self.last_layer.backward(1)
        for layer in reversed(self.layers.values()):
            dout = layer.backward(dout)
        a1, a2 = self.layers["Affine1"], self.layers["Affine2"]
        return {"W1": a1.dW, "b1": a1.db, "W2": a2.dW, "b2": a2.db}
