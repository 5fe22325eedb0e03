"""The book's fully connected MultiLayerNet (chapter 6), with its extensions: weight decay,
batch normalization and dropout in one class; :class:`MultiLayerNetExtend` is the book's name
and keyword spelling for the same network."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import numpy as np

from chainrule.activations import activation as find_activation
from chainrule.functions.loss import SoftmaxWithLoss, check_targets
from chainrule.gradcheck import numerical_gradient
from chainrule.layers.affine import Affine
from chainrule.layers.batchnorm import BatchNormalization
from chainrule.layers.dropout import Dropout
from chainrule.layers.network import BookDropout, BookNetwork
from chainrule.nn.init import check_init, check_size, check_sizes, default_rng, init_std, normal
from chainrule.validation import boolean, float_dtype, nonnegative_float, positive_float, ratio


class MultiLayerNet(BookNetwork):
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

    ``activation``: a name of :data:`chainrule.activations.ACTIVATIONS` (``'relu'``,
    ``'sigmoid'``, ``'tanh'``, ``'leaky_relu'``). ``weight_init_std``: ``'he'`` (``'relu'``),
    ``'xavier'`` (``'sigmoid'``) or a standard deviation (see :mod:`chainrule.nn.init`).
    ``weight_decay_lambda``: the L2 penalty ``0.5 * lambda * sum(W**2)`` over the weights (not
    biases, gammas or betas) is added to the loss, and ``lambda * W`` to each ``dW``. Dropout
    is inverted (see :class:`~chainrule.layers.Dropout`); its masks come from ``rng``, which
    also draws the initial weights (when ``None``: :func:`chainrule.nn.init.default_rng`,
    which follows :func:`chainrule.seed`, else ``np.random.seed`` as the book's networks do).
    ``dropout_ration`` is the book's spelling of ``dropout_ratio`` (give one of them).

    Switches for the book's variants, which change its chapter-6 figures a little:
    ``batchnorm_eps`` (default ``1e-5``, PyTorch's; the book's ``BatchNormalization`` uses
    ``1e-6``) and ``inverted_dropout`` (default ``True``; ``False`` gives the book's
    :class:`~chainrule.layers.network.BookDropout`, which scales at test time instead of at
    training time).

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
        dropout_ratio: float | None = None,
        *,
        dropout_ration: float | None = None,
        batchnorm_eps: float = 1e-5,
        inverted_dropout: bool = True,
        rng: np.random.Generator | None = None,
        dtype: Any = np.float64,
    ):
        me = type(self).__name__
        self.input_size = check_size(me, "input_size", input_size)
        self.output_size = check_size(me, "output_size", output_size)
        self.hidden_size_list = check_sizes(me, "hidden_size_list", hidden_size_list)
        self.activation = find_activation(activation, me).name
        self.weight_init_std = check_init(me, "weight_init_std", weight_init_std)
        self.weight_decay_lambda = nonnegative_float(me, "weight_decay_lambda", weight_decay_lambda)
        if dropout_ratio is not None and dropout_ration is not None:
            raise ValueError(
                f"{me}: give dropout_ratio or its book spelling dropout_ration, not both"
            )
        given = dropout_ration if dropout_ratio is None else dropout_ratio
        self.dropout_ratio = ratio(me, "dropout_ratio", 0.5 if given is None else given)
        self.batchnorm_eps = positive_float(me, "batchnorm_eps", batchnorm_eps)
        self.inverted_dropout = boolean(me, "inverted_dropout", inverted_dropout)
        self.use_batchnorm = bool(use_batchnorm)
        self.use_dropout = bool(use_dropout)
        self.hidden_layer_num = len(self.hidden_size_list)
        self.rng = default_rng() if rng is None else rng
        self._build(float_dtype(me, dtype))

    def _build(self, dtype: np.dtype) -> None:
        """Draw the parameters and assemble ``layers`` (see the class docstring)."""
        sizes = [self.input_size, *self.hidden_size_list, self.output_size]
        self.params: dict[str, np.ndarray] = {}
        self.layers: OrderedDict[str, Any] = OrderedDict()
        act = find_activation(self.activation)
        dropout_cls = Dropout if self.inverted_dropout else BookDropout
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
                    eps=self.batchnorm_eps,
                )
            self.layers[f"{act.layer_name}{i}"] = act.layer()
            if self.use_dropout:
                self.layers[f"Dropout{i}"] = dropout_cls(self.dropout_ratio, rng=self.rng)
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
        return self._backprop()

    def _train_loss(self, x: Any, t: Any) -> Any:
        return self.loss(x, t, train_flg=True)

    def _grads(self) -> dict[str, np.ndarray]:
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


class MultiLayerNetExtend(MultiLayerNet):
    """The book's ``MultiLayerNetExtend`` (chapter 6): :class:`MultiLayerNet` with the book's
    argument order and spellings, ``weight_init_std='relu'`` and ``dropout_ration``::

        MultiLayerNetExtend(input_size, hidden_size_list, output_size, activation='relu',
                            weight_init_std='relu', weight_decay_lambda=0, use_dropout=False,
                            dropout_ration=0.5, use_batchnorm=False)

    The book's variants are switches (chainrule's own defaults otherwise; see
    :class:`MultiLayerNet`): ``batchnorm_eps=1e-6`` and ``inverted_dropout=False``.

    >>> net = MultiLayerNetExtend(4, [5], 3, use_dropout=True, dropout_ration=0.2,
    ...                           rng=np.random.default_rng(0))
    >>> list(net.layers), net.dropout_ratio
    (['Affine1', 'Relu1', 'Dropout1', 'Affine2'], 0.2)
    """

    def __init__(
        self,
        input_size: int,
        hidden_size_list: Iterable[int],
        output_size: int,
        activation: str = "relu",
        weight_init_std: str | float = "relu",
        weight_decay_lambda: float = 0,
        use_dropout: bool = False,
        dropout_ration: float = 0.5,
        use_batchnorm: bool = False,
        **options: Any,
    ):
        if "dropout_ratio" in options:  # chainrule's spelling wins over the book's default
            dropout_ration = options.pop("dropout_ratio")
        super().__init__(
            input_size,
            hidden_size_list,
            output_size,
            activation,
            weight_init_std,
            weight_decay_lambda,
            use_batchnorm=use_batchnorm,
            use_dropout=use_dropout,
            dropout_ration=dropout_ration,
            **options,
        )
