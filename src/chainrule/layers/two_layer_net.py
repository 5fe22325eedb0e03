"""The book's TwoLayerNet: Affine -> Relu -> Affine -> SoftmaxWithLoss, from an ordered dict."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from chainrule.functions.elementwise import Relu
from chainrule.functions.loss import SoftmaxWithLoss, check_targets
from chainrule.gradcheck import numerical_gradient
from chainrule.layers.affine import Affine
from chainrule.layers.network import BookNetwork
from chainrule.nn.init import check_init, check_size, default_rng, init_std, normal
from chainrule.validation import float_dtype


def _weights(
    shape: tuple[int, int], init: str | float, rng: np.random.Generator, dtype: Any
) -> Any:
    """``N(0, std**2)`` weights. For ``'he'``/``'xavier'`` the unit normal is cast first and
    scaled in ``dtype``: the rounding ``chainrule train`` has always used, so its seeded runs
    (docs/results.md) keep their numbers bit for bit."""
    if not isinstance(init, str):
        return normal(shape, init, rng, dtype)
    w = normal(shape, 1.0, rng, dtype)
    w *= w.dtype.type(init_std(init, shape[0]))
    return w


class TwoLayerNet(BookNetwork):
    """A two-layer network with the book's API.

    ``params`` holds ``W1 (input, hidden)``, ``b1``, ``W2 (hidden, output)``, ``b2``; ``layers``
    is the ordered dict ``Affine1 -> Relu1 -> Affine2``; ``last_layer`` is
    :class:`SoftmaxWithLoss` (``lastLayer`` is the book's spelling, kept as an alias).
    ``gradient`` walks the layers in reverse — backpropagation by hand — and
    ``numerical_gradient`` does the same job slowly, for checking it. It meets the
    trainable-model protocol (:class:`~chainrule.layers.network.BookNetwork`:
    ``loss_and_grads``, ``buffers``, ``save_params``/``load_params``).

    ``weight_init_std``: a standard deviation, or ``'he'`` / ``'xavier'`` (or an activation
    name, ``'relu'``) for ``sqrt(2 / fan_in)`` / ``sqrt(1 / fan_in)`` per layer. The defaults
    are the book's chapter-5 recipe, ``0.01`` in float64; ``chainrule train`` (the ``two-layer``
    model of :mod:`chainrule.models`) builds it in float32 with He initialization instead,
    which is faster and ends slightly higher (docs/results.md). Weights are drawn from ``rng``;
    when ``None``, from :func:`chainrule.nn.init.default_rng` (the :func:`chainrule.seed`
    generator, or else NumPy's global state, so ``np.random.seed`` reproduces them as in the
    book).

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
        weight_init_std: str | float = 0.01,
        *,
        rng: np.random.Generator | None = None,
        dtype: Any = np.float64,
    ):
        me = type(self).__name__
        input_size = check_size(me, "input_size", input_size)
        hidden_size = check_size(me, "hidden_size", hidden_size)
        output_size = check_size(me, "output_size", output_size)
        self.weight_init_std = init = check_init(me, "weight_init_std", weight_init_std)
        dtype = float_dtype(me, dtype)
        rng = default_rng() if rng is None else rng
        self.params = {
            "W1": _weights((input_size, hidden_size), init, rng, dtype),
            "b1": np.zeros(hidden_size, dtype=dtype),
            "W2": _weights((hidden_size, output_size), init, rng, dtype),
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
        return self._backprop()

    def _train_loss(self, x: Any, t: Any) -> Any:
        return self.loss(x, t)

    def _grads(self) -> dict[str, Any]:
        a1, a2 = self.layers["Affine1"], self.layers["Affine2"]
        return {"W1": a1.dW, "b1": a1.db, "W2": a2.dW, "b2": a2.db}
