"""The book's convolutional networks: SimpleConvNet (chapter 7) and DeepConvNet (chapter 8).

Both have the book's API — ``params`` (``W1``, ``b1``, ...), ``layers`` (an ordered dict of
book-style layers), ``last_layer`` (:class:`SoftmaxWithLoss`), ``predict``, ``loss``,
``accuracy(x, t, batch_size=100)``, ``numerical_gradient`` and ``gradient`` — so the same
optimizer loop and :class:`chainrule.training.Trainer` drive them as they drive
:class:`~chainrule.layers.TwoLayerNet`::

    grads = net.gradient(x_batch, t_batch)
    optimizer.update(net.params, grads)

Images may come as ``(N, C, H, W)`` or flattened, ``(N, C*H*W)`` (what ``load_mnist`` gives by
default); they are reshaped to ``input_dim``. The layers keep references to the arrays in
``params`` and never rebind them, so an optimizer that updates them in place is seen.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import numpy as np

from chainrule.config import using_config
from chainrule.functions.conv import conv_output_size
from chainrule.functions.elementwise import Relu
from chainrule.functions.loss import SoftmaxWithLoss, check_targets
from chainrule.functions.noise import Dropout
from chainrule.gradcheck import numerical_gradient
from chainrule.layers.affine import Affine
from chainrule.layers.conv import Convolution, Pooling
from chainrule.layers.network import BookDropout, BookNetwork
from chainrule.nn.init import check_init, check_size, default_rng, init_std, normal
from chainrule.validation import boolean, float_dtype, ratio

_CONV_KEYS = ("filter_num", "filter_size", "pad", "stride")


def _conv_param(owner: str, argname: str, given: Mapping[str, int] | None, default: dict) -> dict:
    """``given`` completed from ``default``; unknown keys and bad values are errors."""
    param = dict(default)
    if given is not None:
        unknown = sorted(set(given) - set(_CONV_KEYS))
        if unknown:
            raise ValueError(
                f"{owner}: {argname} has unknown keys {unknown}; valid keys are {list(_CONV_KEYS)}"
            )
        param.update(given)
    for key in _CONV_KEYS:
        value = param[key]
        low = 0 if key == "pad" else 1
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"{owner}: {argname}[{key!r}] must be an integer, got {value!r}")
        if value < low:
            raise ValueError(f"{owner}: {argname}[{key!r}] must be >= {low}, got {value!r}")
        param[key] = int(value)
    return param


def _input_dim(owner: str, input_dim: Any) -> tuple[int, int, int]:
    dims = tuple(input_dim) if isinstance(input_dim, (tuple, list)) else ()
    if len(dims) != 3:
        raise ValueError(f"{owner}: input_dim must be (C, H, W), got {input_dim!r}")
    c, h, w = (check_size(owner, f"input_dim[{i}]", d) for i, d in enumerate(dims))
    return c, h, w


def _conv_shape(owner: str, name: str, shape: tuple[int, int, int], p: dict) -> tuple[int, ...]:
    """(FN, OH, OW) after a convolution with parameters ``p`` on ``shape`` (C, H, W)."""
    _, h, w = shape
    try:
        oh = conv_output_size(h, p["filter_size"], p["stride"], p["pad"])
        ow = conv_output_size(w, p["filter_size"], p["stride"], p["pad"])
    except ValueError as exc:
        raise ValueError(
            f"{owner}: {name} does not fit its input (C, H, W) = {shape}: {exc}"
        ) from None
    return p["filter_num"], oh, ow


def _pool_shape(owner: str, name: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    """(C, OH, OW) after 2x2 max pooling with stride 2."""
    c, h, w = shape
    if h % 2 or w % 2:
        raise ValueError(
            f"{owner}: {name} (2x2, stride 2) needs an even height and width, but its input "
            f"(C, H, W) is {shape}: (H + 2*pad - pool_h) / stride + 1 = ({h} - 2) / 2 + 1 is "
            "not an integer; change the input size or the convolutions' pad"
        )
    return c, h // 2, w // 2


class _ConvNetBase(BookNetwork):
    """What both networks share: input reshaping, loss, accuracy, gradients by layer walk
    (and, from :class:`~chainrule.layers.network.BookNetwork`, the model protocol and
    ``save_params``/``load_params``)."""

    input_dim: tuple[int, int, int]
    params: dict[str, np.ndarray]
    layers: OrderedDict[str, Any]
    last_layer: SoftmaxWithLoss
    #: (parameter name, layer name, gradient attribute), in ``params`` order.
    _grad_sources: list[tuple[str, str, str]]

    @property
    def lastLayer(self) -> SoftmaxWithLoss:
        return self.last_layer

    def _images(self, x: Any) -> Any:
        """``x`` as (N, C, H, W): flattened (N, C*H*W) and single-channel (N, H, W) are
        reshaped; anything else that does not match ``input_dim`` is an error."""
        c, h, w = self.input_dim
        shape = getattr(x, "shape", None)
        if shape is not None:
            if len(shape) == 4 and shape[1:] == (c, h, w):
                return x
            if len(shape) == 2 and shape[1] == c * h * w:
                return x.reshape(shape[0], c, h, w)
            if len(shape) == 3 and c == 1 and shape[1:] == (h, w):
                return x.reshape(shape[0], 1, h, w)
        raise ValueError(
            f"{type(self).__name__}: input of shape {shape} does not match input_dim "
            f"{self.input_dim}: expected (N, {c}, {h}, {w}) or flattened (N, {c * h * w})"
        )

    def _forward(self, x: Any) -> Any:
        x = self._images(x)
        for layer in self.layers.values():
            x = layer.forward(x)
        return x

    def _loss(self, x: Any, t: Any) -> Any:
        return self.last_layer.forward(self._forward(x), t)

    def _accuracy(self, x: Any, t: Any, batch_size: int) -> float:
        me = f"{type(self).__name__}.accuracy"
        batch_size = check_size(me, "batch_size", batch_size)
        x = self._images(x)
        scores = np.concatenate(
            [self._forward(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
        )
        t, one_hot = check_targets(me, scores, t)
        labels = t.argmax(axis=1) if one_hot else t
        return float((scores.argmax(axis=1) == labels).mean())

    def _grads(self) -> dict[str, Any]:
        return {key: getattr(self.layers[layer], attr) for key, layer, attr in self._grad_sources}


class SimpleConvNet(_ConvNetBase):
    """The book's chapter-7 network:
    ``Conv1 -> Relu1 -> Pool1 -> Affine1 -> Relu2 -> Affine2``, then :class:`SoftmaxWithLoss`.

    ``conv_param``: ``filter_num`` (30), ``filter_size`` (5), ``pad`` (0), ``stride`` (1); keys
    left out take these defaults. The pooling is 2x2 max pooling with stride 2 (the
    convolution's output must have an even height and width). Parameters: ``W1`` (FN, C, FS, FS),
    ``b1`` (FN,), ``W2`` (FN * OH/2 * OW/2, hidden_size), ``b2``, ``W3`` (hidden_size,
    output_size), ``b3``. ``weight_init_std``: a standard deviation (the book's 0.01), or
    ``'he'`` / ``'xavier'`` for a per-layer scale from each layer's fan-in. ``rng`` draws the
    weights (when ``None``: :func:`chainrule.nn.init.default_rng`).

    >>> net = SimpleConvNet(input_dim=(1, 8, 8), hidden_size=5, output_size=3,
    ...                     conv_param={"filter_num": 2, "filter_size": 3},
    ...                     rng=np.random.default_rng(0))
    >>> list(net.layers)
    ['Conv1', 'Relu1', 'Pool1', 'Affine1', 'Relu2', 'Affine2']
    >>> {k: v.shape for k, v in net.params.items()}  # doctest: +NORMALIZE_WHITESPACE
    {'W1': (2, 1, 3, 3), 'b1': (2,), 'W2': (18, 5), 'b2': (5,), 'W3': (5, 3), 'b3': (3,)}
    >>> grads = net.gradient(np.ones((4, 64)), np.array([0, 1, 2, 0]))   # flattened images
    >>> all(grads[k].shape == v.shape for k, v in net.params.items())
    True
    """

    def __init__(
        self,
        input_dim: tuple[int, int, int] = (1, 28, 28),
        conv_param: Mapping[str, int] | None = None,
        hidden_size: int = 100,
        output_size: int = 10,
        weight_init_std: str | float = 0.01,
        *,
        rng: np.random.Generator | None = None,
        dtype: Any = np.float64,
    ):
        me = type(self).__name__
        self.input_dim = _input_dim(me, input_dim)
        p = _conv_param(
            me,
            "conv_param",
            conv_param,
            {"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1},
        )
        self.conv_param = p
        self.hidden_size = check_size(me, "hidden_size", hidden_size)
        self.output_size = check_size(me, "output_size", output_size)
        self.weight_init_std = check_init(me, "weight_init_std", weight_init_std)
        dtype = float_dtype(me, dtype)
        self.rng = default_rng() if rng is None else rng

        c, fs = self.input_dim[0], p["filter_size"]
        conv_out = _conv_shape(me, "the convolution", self.input_dim, p)
        pooled = _pool_shape(me, "the pooling", conv_out)
        flat = math.prod(pooled)
        shapes = {
            "W1": ((p["filter_num"], c, fs, fs), c * fs * fs),
            "W2": ((flat, self.hidden_size), flat),
            "W3": ((self.hidden_size, self.output_size), self.hidden_size),
        }
        self.params = {}
        for i, (key, (shape, fan_in)) in enumerate(shapes.items(), start=1):
            std = init_std(self.weight_init_std, fan_in)
            self.params[key] = normal(shape, std, self.rng, dtype)
            # a convolution has one bias per filter (FN, first axis), an affine one per output
            self.params[f"b{i}"] = np.zeros(shape[0] if len(shape) == 4 else shape[1], dtype)

        P = self.params
        self.layers = OrderedDict()
        # The input images need no gradient: Conv1 skips computing dx (a col2im and a GEMM).
        self.layers["Conv1"] = Convolution(P["W1"], P["b1"], p["stride"], p["pad"], need_dx=False)
        self.layers["Relu1"] = Relu()
        self.layers["Pool1"] = Pooling(pool_h=2, pool_w=2, stride=2)
        self.layers["Affine1"] = Affine(P["W2"], P["b2"], name="Affine1")
        self.layers["Relu2"] = Relu()
        self.layers["Affine2"] = Affine(P["W3"], P["b3"], name="Affine2")
        self.last_layer = SoftmaxWithLoss()
        self._grad_sources = [
            (f"{kind}{i}", layer, f"d{kind}")
            for i, layer in enumerate(("Conv1", "Affine1", "Affine2"), start=1)
            for kind in ("W", "b")
        ]

    def predict(self, x: Any) -> Any:
        """Scores (before softmax), (N, output_size), for images (N, C, H, W) or (N, C*H*W)."""
        return self._forward(x)

    def loss(self, x: Any, t: Any) -> Any:
        """Mean cross-entropy of the batch; ``t`` as labels ``(N,)`` or one-hot ``(N, C)``."""
        return self._loss(x, t)

    def accuracy(self, x: Any, t: Any, batch_size: int = 100) -> float:
        """Fraction of samples whose highest score is the target class (in chunks)."""
        return self._accuracy(x, t, batch_size)

    def numerical_gradient(self, x: Any, t: Any) -> dict[str, np.ndarray]:
        """Gradients of the loss by central differences (slow; for checking ``gradient``)."""
        return {
            key: numerical_gradient(lambda _: self.loss(x, t), p) for key, p in self.params.items()
        }

    def gradient(self, x: Any, t: Any) -> dict[str, Any]:
        """Gradients of the loss by backpropagation through the layers in reverse order."""
        self.loss(x, t)
        return self._backprop()

    def _train_loss(self, x: Any, t: Any) -> Any:
        return self.loss(x, t)


_DEEP_DEFAULTS = (
    {"filter_num": 16, "filter_size": 3, "pad": 1, "stride": 1},
    {"filter_num": 16, "filter_size": 3, "pad": 1, "stride": 1},
    {"filter_num": 32, "filter_size": 3, "pad": 1, "stride": 1},
    {"filter_num": 32, "filter_size": 3, "pad": 2, "stride": 1},
    {"filter_num": 64, "filter_size": 3, "pad": 1, "stride": 1},
    {"filter_num": 64, "filter_size": 3, "pad": 1, "stride": 1},
)


class DeepConvNet(_ConvNetBase):
    """The book's chapter-8 network (about 99% on MNIST)::

        Conv1 Relu1 Conv2 Relu2 Pool1  Conv3 Relu3 Conv4 Relu4 Pool2  Conv5 Relu5 Conv6 Relu6
        Pool3  Affine1 Relu7 Dropout1  Affine2 Dropout2  -> SoftmaxWithLoss

    3x3 convolutions with 16, 16, 32, 32 (pad 2), 64, 64 filters (``conv_param_1`` ..
    ``conv_param_6``, keys as in :class:`SimpleConvNet`, missing keys take these defaults),
    2x2 max pooling with stride 2, a hidden affine layer of ``hidden_size`` (50), and inverted
    dropout (:class:`chainrule.functions.Dropout`, ratio ``dropout_ratio``, 0.5). Weights use
    He initialization, ``std = sqrt(2 / fan_in)``, as in the book (``weight_init_std``:
    ``'xavier'`` or a standard deviation instead); ``rng`` draws them and the dropout masks
    (when ``None``: :func:`chainrule.nn.init.default_rng`). ``inverted_dropout=False`` gives
    the book's dropout (:class:`~chainrule.layers.network.BookDropout`: scaled at test time,
    not while training). Parameters
    ``W1 .. W8``, ``b1 .. b8`` (W1..W6 convolutions, W7 and W8 affine).

    Modes: ``predict``, ``loss``, ``accuracy`` and ``numerical_gradient`` run in evaluation
    mode by default (dropout off: deterministic); ``gradient`` runs in training mode (dropout
    on), which is what a training loop wants. Pass ``train_flg`` to choose.

    >>> net = DeepConvNet(rng=np.random.default_rng(0))
    >>> [v.shape for k, v in net.params.items() if k.startswith("W")]  # doctest: +ELLIPSIS
    [(16, 1, 3, 3), (16, 16, 3, 3), (32, 16, 3, 3), (32, 32, 3, 3), (64, 32, 3, 3), ...]
    >>> net.params["W7"].shape, net.params["W8"].shape
    ((1024, 50), (50, 10))
    """

    def __init__(
        self,
        input_dim: tuple[int, int, int] = (1, 28, 28),
        conv_param_1: Mapping[str, int] | None = None,
        conv_param_2: Mapping[str, int] | None = None,
        conv_param_3: Mapping[str, int] | None = None,
        conv_param_4: Mapping[str, int] | None = None,
        conv_param_5: Mapping[str, int] | None = None,
        conv_param_6: Mapping[str, int] | None = None,
        hidden_size: int = 50,
        output_size: int = 10,
        *,
        dropout_ratio: float = 0.5,
        weight_init_std: str | float = "he",
        inverted_dropout: bool = True,
        rng: np.random.Generator | None = None,
        dtype: Any = np.float64,
    ):
        me = type(self).__name__
        self.input_dim = _input_dim(me, input_dim)
        given = (conv_param_1, conv_param_2, conv_param_3, conv_param_4, conv_param_5, conv_param_6)
        self.conv_params = [
            _conv_param(me, f"conv_param_{i}", g, d)
            for i, (g, d) in enumerate(zip(given, _DEEP_DEFAULTS), start=1)
        ]
        self.hidden_size = check_size(me, "hidden_size", hidden_size)
        self.output_size = check_size(me, "output_size", output_size)
        self.dropout_ratio = ratio(me, "dropout_ratio", dropout_ratio)
        self.weight_init_std = check_init(me, "weight_init_std", weight_init_std)
        self.inverted_dropout = boolean(me, "inverted_dropout", inverted_dropout)
        self.rng = default_rng() if rng is None else rng
        self._build(float_dtype(me, dtype))

    def _build(self, dtype: np.dtype) -> None:
        """Draw the parameters and assemble ``layers`` (see the class docstring)."""
        me = type(self).__name__
        self.params = {}
        self.layers = OrderedDict()
        self._grad_sources = []

        def add_param(i: int, layer: str, shape: tuple[int, ...], fan_in: int) -> None:
            std = init_std(self.weight_init_std, fan_in)
            self.params[f"W{i}"] = normal(shape, std, self.rng, dtype)
            self.params[f"b{i}"] = np.zeros(shape[0] if len(shape) == 4 else shape[1], dtype)
            self._grad_sources += [(f"W{i}", layer, "dW"), (f"b{i}", layer, "db")]

        shape: tuple[int, ...] = self.input_dim
        for i, p in enumerate(self.conv_params, start=1):
            c, fs = shape[0], p["filter_size"]
            add_param(i, f"Conv{i}", (p["filter_num"], c, fs, fs), c * fs * fs)
            shape = _conv_shape(me, f"convolution {i}", shape, p)
            self.layers[f"Conv{i}"] = Convolution(
                self.params[f"W{i}"], self.params[f"b{i}"], p["stride"], p["pad"], need_dx=i > 1
            )
            self.layers[f"Relu{i}"] = Relu()
            if i % 2 == 0:
                shape = _pool_shape(me, f"pooling {i // 2}", shape)
                self.layers[f"Pool{i // 2}"] = Pooling(pool_h=2, pool_w=2, stride=2)
        flat = math.prod(shape)
        add_param(7, "Affine1", (flat, self.hidden_size), flat)
        self.layers["Affine1"] = Affine(self.params["W7"], self.params["b7"], name="Affine1")
        self.layers["Relu7"] = Relu()
        self.layers["Dropout1"] = self._dropout()
        add_param(8, "Affine2", (self.hidden_size, self.output_size), self.hidden_size)
        self.layers["Affine2"] = Affine(self.params["W8"], self.params["b8"], name="Affine2")
        self.layers["Dropout2"] = self._dropout()
        self.last_layer = SoftmaxWithLoss()

    def _dropout(self) -> Any:
        if self.inverted_dropout:
            return Dropout(self.dropout_ratio, rng=self.rng)
        return BookDropout(self.dropout_ratio, rng=self.rng)

    def predict(self, x: Any, train_flg: bool = False) -> Any:
        """Scores (before softmax); ``train_flg`` switches dropout on."""
        with using_config("train", bool(train_flg)):
            return self._forward(x)

    def loss(self, x: Any, t: Any, train_flg: bool = False) -> Any:
        """Mean cross-entropy of the batch (evaluation mode unless ``train_flg``)."""
        with using_config("train", bool(train_flg)):
            return self._loss(x, t)

    def accuracy(self, x: Any, t: Any, batch_size: int = 100) -> float:
        """Fraction of samples whose highest score (evaluation mode) is the target class."""
        with using_config("train", False):
            return self._accuracy(x, t, batch_size)

    def numerical_gradient(self, x: Any, t: Any, train_flg: bool = False) -> dict[str, np.ndarray]:
        """Gradients of the loss by central differences (very slow; for checking).

        Evaluation mode by default, so that every evaluation is the same function; compare
        with ``gradient(x, t, train_flg=False)``. (With dropout on, the masks are redrawn at
        each evaluation and the differences are noise.)
        """
        return {
            key: numerical_gradient(lambda _: self.loss(x, t, train_flg), p)
            for key, p in self.params.items()
        }

    def gradient(self, x: Any, t: Any, train_flg: bool = True) -> dict[str, Any]:
        """Gradients of the loss by backpropagation, in training mode (dropout on) by default."""
        self.loss(x, t, train_flg)
        return self._backprop()

    def _train_loss(self, x: Any, t: Any) -> Any:
        return self.loss(x, t, train_flg=True)
