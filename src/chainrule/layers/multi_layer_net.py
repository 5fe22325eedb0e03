"""The book's fully connected MultiLayerNet (chapter 6), with its extensions: weight decay,
batch normalization and dropout (the book's ``MultiLayerNetExtend``) in one class."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import numpy as np

from chainrule.config import get_rng
from chainrule.functions.elementwise import Relu, Sigmoid, Tanh
from chainrule.functions.loss import SoftmaxWithLoss, check_targets
from chainrule.gradcheck import numerical_gradient
from chainrule.layers.affine import Affine
from chainrule.layers.batchnorm import BatchNormalization
from chainrule.layers.dropout import Dropout
from chainrule.nn.init import check_init, check_size, check_sizes, init_std, normal

_ACTIVATIONS = {"relu": ("Relu", Relu), "sigmoid": ("Sigmoid", Sigmoid), "tanh": ("Tanh", Tanh)}


class MultiLayerNet:
    """A fully connected network with the book's API.

    Layers (an ordered dict, ``layers``), for each hidden layer ``i = 1 .. L-1``:
    ``Affine{i} -> [BatchNorm{i}] -> Relu{i} | Sigmoid{i} | Tanh{i} -> [Dropout{i}]``, then
    ``Affine{L}``; ``last_layer`` is :class:`SoftmaxWithLoss`.

    ``params`` holds ``W1, b1, ..., WL, bL`` and, with batch normalization, ``gamma{i}`` and
    ``beta{i}`` of each hidden layer. ``buffers`` holds the batch-norm running statistics
    ``running_mean{i}`` and ``running_var{i}`` (empty without batch normalization). The layers
    keep references to all of these arrays and never rebind them, so an optimizer that updates
    ``params`` in place is seen by the layers, and **``params`` plus ``buffers`` are a complete
    checkpoint**: restore one by copying the saved arrays into them (``arr[...] = saved``).

    ``weight_init_std``: ``'he'`` (``'relu'``), ``'xavier'`` (``'sigmoid'``) or a standard
    deviation (see :mod:`chainrule.nn.init`). ``weight_decay_lambda``: the L2 penalty
    ``0.5 * lambda * sum(W**2)`` over the weights (not biases, gammas or betas) is added to the
    loss, and ``lambda * W`` to each ``dW``. Dropout is inverted (see
    :class:`~chainrule.layers.Dropout`); its masks come from ``rng``, which also draws the
    initial weights (the library's :func:`chainrule.seed`-able generator when ``None``).

    >>> net = MultiLayerNet(4, [5, 5], 3, use_batchnorm=True, rng=np.random.default_rng(0))
    >>> list(net.layers)  # doctest: +NORMALIZE_WHITESPACE
    ['Affine1', 'BatchNorm1', 'Relu1', 'Affine2', 'BatchNorm2', 'Relu2', 'Affine3']
    >>> sorted(net.params), sorted(net.buffers)  # doctest: +NORMALIZE_WHITESPACE
    (['W1', 'W2', 'W3', 'b1', 'b2', 'b3', 'beta1', 'beta2', 'gamma1', 'gamma2'],
     ['running_mean1', 'running_mean2', 'running_var1', 'running_var2'])
    """

    def __init__(
        self,
        input_size: int,
        hidden_size_list: Iterable[int],
        output_size: int,
        activation: str = "relu",
        weight_init_std: str | float = "he",
        weight_decay_lambda: float = 0,
        use_batchnorm: bool = False,
        use_dropout: bool = False,
        dropout_ratio: float = 0.5,
        *,
        rng: np.random.Generator | None = None,
        dtype: Any = np.float64,
    ):
        me = type(self).__name__
        self.input_size = check_size(me, "input_size", input_size)
        self.output_size = check_size(me, "output_size", output_size)
        self.hidden_size_list = check_sizes(me, "hidden_size_list", hidden_size_list)
        if not isinstance(activation, str) or activation.lower() not in _ACTIVATIONS:
            raise ValueError(
                f"{me}: activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}"
            )
        self.activation = activation.lower()
        self.weight_init_std = check_init(me, "weight_init_std", weight_init_std)
        if (
            isinstance(weight_decay_lambda, bool)
            or not isinstance(weight_decay_lambda, (int, float, np.integer, np.floating))
            or not np.isfinite(weight_decay_lambda)
            or weight_decay_lambda < 0
        ):
            raise ValueError(
                f"{me}: weight_decay_lambda must be a non-negative number, "
                f"got {weight_decay_lambda!r}"
            )
        self.weight_decay_lambda = float(weight_decay_lambda)
        if isinstance(dropout_ratio, (bool, np.bool_)) or not (
            isinstance(dropout_ratio, (int, float, np.integer, np.floating))
            and 0 <= dropout_ratio < 1
        ):
            raise ValueError(f"{me}: dropout_ratio must be in [0, 1), got {dropout_ratio!r}")
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise ValueError(f"{me}: dtype must be a floating-point type, got {dtype}")
        self.use_batchnorm = bool(use_batchnorm)
        self.use_dropout = bool(use_dropout)
        self.dropout_ratio = float(dropout_ratio)
        self.hidden_layer_num = len(self.hidden_size_list)
        self.rng = get_rng() if rng is None else rng

        sizes = [self.input_size, *self.hidden_size_list, self.output_size]
        self.params: dict[str, np.ndarray] = {}
        self.layers: OrderedDict[str, Any] = OrderedDict()
        act_name, act_cls = _ACTIVATIONS[self.activation]
        for i in range(1, len(sizes)):
            std = init_std(self.weight_init_std, sizes[i - 1])
            W = self.params[f"W{i}"] = normal((sizes[i - 1], sizes[i]), std, self.rng, dtype)
            b = self.params[f"b{i}"] = np.zeros(sizes[i], dtype=dtype)
            # The input images need no gradient: the first Affine skips computing dx.
            self.layers[f"Affine{i}"] = Affine(W, b, name=f"Affine{i}", need_dx=i > 1)
            if i == len(sizes) - 1:
                break
            if self.use_batchnorm:
                gamma = self.params[f"gamma{i}"] = np.ones(sizes[i], dtype=dtype)
                beta = self.params[f"beta{i}"] = np.zeros(sizes[i], dtype=dtype)
                self.layers[f"BatchNorm{i}"] = BatchNormalization(
                    gamma,
                    beta,
                    running_mean=np.zeros(sizes[i], dtype=dtype),
                    running_var=np.ones(sizes[i], dtype=dtype),
                )
            self.layers[f"{act_name}{i}"] = act_cls()
            if self.use_dropout:
                self.layers[f"Dropout{i}"] = Dropout(self.dropout_ratio, rng=self.rng)
        self.last_layer = SoftmaxWithLoss()

    @property
    def lastLayer(self) -> SoftmaxWithLoss:
        return self.last_layer

    @property
    def buffers(self) -> dict[str, np.ndarray]:
        """The batch-norm running statistics by name (``running_mean1``, ``running_var1``, ...):
        the very arrays the layers read and update in place."""
        out: dict[str, np.ndarray] = {}
        for i in range(1, self.hidden_layer_num + 1):
            layer = self.layers.get(f"BatchNorm{i}")
            if layer is not None:
                out[f"running_mean{i}"] = layer.running_mean
                out[f"running_var{i}"] = layer.running_var
        return out

    def predict(self, x: Any, train_flg: bool = False) -> Any:
        """Scores (before softmax); ``train_flg`` switches dropout and batch statistics on."""
        for layer in self.layers.values():
            if isinstance(layer, (BatchNormalization, Dropout)):
                x = layer.forward(x, train_flg)
            else:
                x = layer.forward(x)
        return x

    def loss(self, x: Any, t: Any, train_flg: bool = False) -> Any:
        """Mean cross-entropy plus the weight-decay penalty ``0.5 * lambda * sum(W**2)``."""
        loss = self.last_layer.forward(self.predict(x, train_flg), t)
        if self.weight_decay_lambda:
            for i in range(1, self.hidden_layer_num + 2):
                W = self.params[f"W{i}"]
                loss = loss + 0.5 * self.weight_decay_lambda * (W * W).sum()
        return loss

    def accuracy(self, x: Any, t: Any) -> float:
        """Fraction of samples whose highest score (evaluation mode) is the target class."""
        y = self.predict(x, train_flg=False)
        t, one_hot = check_targets(f"{type(self).__name__}.accuracy", y, t)
        labels = t.argmax(axis=1) if one_hot else t
        return float((y.argmax(axis=-1).reshape(-1) == labels).mean())

    def numerical_gradient(self, x: Any, t: Any) -> dict[str, np.ndarray]:
        """Gradients of the training-mode loss by central differences (slow; for checking).

        The running statistics are restored afterwards (every evaluation would otherwise
        update them). With dropout the masks are redrawn at each evaluation, so the result is
        only meaningful if the masks are made reproducible (reseed each layer's ``rng``).
        """
        saved = {k: v.copy() for k, v in self.buffers.items()}
        try:
            return {
                key: numerical_gradient(lambda _: self.loss(x, t, train_flg=True), p)
                for key, p in self.params.items()
            }
        finally:
            for k, v in self.buffers.items():
                v[...] = saved[k]

    def gradient(self, x: Any, t: Any) -> dict[str, np.ndarray]:
        """Gradients of the training-mode loss by backpropagation, weight decay included."""
        self.loss(x, t, train_flg=True)
        dout = self.last_layer.backward(1)
        for layer in reversed(self.layers.values()):
            dout = layer.backward(dout)
        grads: dict[str, np.ndarray] = {}
        for i in range(1, self.hidden_layer_num + 2):
            affine = self.layers[f"Affine{i}"]
            grads[f"W{i}"] = affine.dW
            if self.weight_decay_lambda:
                grads[f"W{i}"] = affine.dW + self.weight_decay_lambda * affine.W
            grads[f"b{i}"] = affine.db
            if self.use_batchnorm and i <= self.hidden_layer_num:
                bn = self.layers[f"BatchNorm{i}"]
                grads[f"gamma{i}"] = bn.dgamma
                grads[f"beta{i}"] = bn.dbeta
        return grads
