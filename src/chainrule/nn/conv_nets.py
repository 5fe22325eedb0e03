"""The book's convolutional networks built from ``nn`` modules: autograd twins of
:class:`chainrule.layers.SimpleConvNet` (chapter 7) and :class:`chainrule.layers.DeepConvNet`
(chapter 8).

A twin takes the book class's constructor arguments, has the book's layers under the book's
names (``twin.Conv1``, ``twin.Pool1``, ``twin.Affine1`` ... as ``net.layers["Conv1"]`` ...),
and lists its parameters under the book's ``params`` keys (``W1``, ``b1``, ...), so one line
moves weights between the engines::

    twin.load_state_dict(book_net.params)

Built with the same arguments and an equally seeded ``rng`` the two draw the same weights, and
from the same weights they compute the same loss and gradients (the same ops run underneath):
``F.softmax_cross_entropy(twin(x), t).backward()`` leaves in ``twin.W1.grad`` ... what
``book_net.gradient(x, t)`` returns. Images come as ``(N, C, H, W)`` or flattened
``(N, C*H*W)``, as the book's networks take them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from chainrule.layers.conv_nets import (
    _DEEP_DEFAULTS,
    _conv_param,
    _conv_shape,
    _ConvNetBase,
    _input_dim,
    _pool_shape,
)
from chainrule.nn.conv import Conv2d, MaxPool2d
from chainrule.nn.init import check_init, check_size, default_rng
from chainrule.nn.layers import Dropout, Flatten, Linear, ReLU
from chainrule.nn.module import Module, Parameter
from chainrule.tensor import Tensor
from chainrule.validation import boolean, float_dtype, ratio


class _BookTwin(Module):
    """Layers applied in the order they were assigned, each under its book name; parameters
    named by the book's ``params`` keys.

    ``_book_keys`` maps a layer name to its parameter number: the layer ``Conv1`` with key 1
    holds ``W1`` and ``b1``. :meth:`named_parameters` reports those keys instead of dotted
    names (``"W1"``, not ``"Conv1.W"``), and with it ``parameters``, ``state_dict`` and
    ``load_state_dict``.
    """

    input_dim: tuple[int, int, int]
    _book_keys: dict[str, int]

    # The book's input handling, shared: (N, C, H, W), (N, C*H*W), or (N, H, W) for C = 1.
    _images = _ConvNetBase._images

    def _add(self, name: str, module: Module, key: int | None = None) -> None:
        setattr(self, name, module)
        if key is not None:
            self._book_keys[name] = key

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """``(book key, parameter)``: ``("W1", Conv1.W)``, ``("b1", Conv1.b)``, ..."""
        for name, p in super().named_parameters():
            layer, _, attr = name.rpartition(".")
            key = self._book_keys.get(layer)
            yield (f"{attr}{key}" if key is not None else name), p

    def forward(self, x: Any) -> Tensor:
        x = self._images(x)
        for module in self._modules.values():
            x = module(x)
        return x


class BookDropout(Dropout):
    """The book's (non-inverted) dropout as a module: ``out = x * mask`` in training and
    ``out = x * (1 - p)`` in evaluation; the twin of :class:`chainrule.layers.network.
    BookDropout`. It is :class:`~chainrule.nn.Dropout` (the same masks drawn) times the
    constant ``1 - p``: two ops, no derivative written here.

    **Backward:** ``dx = dout * mask`` (training), ``dout * (1 - p)`` (evaluation).

    >>> drop = BookDropout(0.25, rng=np.random.default_rng(0))
    >>> drop.eval()(np.ones(3)).data
    array([0.75, 0.75, 0.75])
    >>> sorted(set(drop.train()(np.ones(8)).data.tolist()))
    [0.0, 1.0]
    """

    def forward(self, x: Any) -> Tensor:
        out = super().forward(x)
        return out * out.dtype.type(1.0 - self.p)


class SimpleConvNet(_BookTwin):
    """The book's chapter-7 network from ``nn`` modules (the twin of
    :class:`chainrule.layers.SimpleConvNet`)::

        Conv1 -> Relu1 -> Pool1 -> Flatten -> Affine1 -> Relu2 -> Affine2

    with :class:`~chainrule.nn.Conv2d`, :class:`~chainrule.nn.MaxPool2d` (2x2, stride 2) and
    :class:`~chainrule.nn.Linear`; the output is the scores (N, output_size), to be fed to
    :func:`chainrule.functions.softmax_cross_entropy`.

    Arguments as the book class: ``input_dim`` (C, H, W); ``conv_param`` with ``filter_num``
    (30), ``filter_size`` (5), ``pad`` (0), ``stride`` (1); ``hidden_size``; ``output_size``;
    ``weight_init_std`` (a standard deviation, the book's 0.01, or ``'he'``/``'xavier'``);
    ``rng`` (draws the weights; when ``None``: :func:`chainrule.nn.init.default_rng`);
    ``dtype`` (float64 like the book's, so the same arguments build the same network; pass
    ``np.float32`` to train fast).

    Parameters ``W1`` (FN, C, FS, FS), ``b1`` (FN,), ``W2`` (FN*OH/2*OW/2, hidden_size),
    ``b2``, ``W3`` (hidden_size, output_size), ``b3`` — the book's ``params`` keys.

    **Backward:** nothing written here: ``loss.backward()`` runs the ops' derivatives
    (conv2d, max_pool2d, relu, linear) that the book's layers run.

    >>> net = SimpleConvNet(input_dim=(1, 8, 8), hidden_size=5, output_size=3,
    ...                     conv_param={"filter_num": 2, "filter_size": 3},
    ...                     rng=np.random.default_rng(0))
    >>> {k: p.shape for k, p in net.named_parameters()}  # doctest: +NORMALIZE_WHITESPACE
    {'W1': (2, 1, 3, 3), 'b1': (2,), 'W2': (18, 5), 'b2': (5,), 'W3': (5, 3), 'b3': (3,)}
    >>> net(np.ones((4, 64))).shape                                  # flattened images
    (4, 3)
    >>> from chainrule import layers
    >>> book = layers.SimpleConvNet(input_dim=(1, 8, 8), hidden_size=5, output_size=3,
    ...                             conv_param={"filter_num": 2, "filter_size": 3},
    ...                             rng=np.random.default_rng(0))
    >>> all((p.data == book.params[k]).all() for k, p in net.named_parameters())
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
        super().__init__()
        self._book_keys = {}
        me = type(self).__name__
        self.input_dim = _input_dim(me, input_dim)
        default = {"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1}
        p = self.conv_param = _conv_param(me, "conv_param", conv_param, default)
        self.hidden_size = check_size(me, "hidden_size", hidden_size)
        self.output_size = check_size(me, "output_size", output_size)
        init = self.weight_init_std = check_init(me, "weight_init_std", weight_init_std)
        self.rng = default_rng() if rng is None else rng
        common = {"init": init, "rng": self.rng, "dtype": dtype}

        dtype = float_dtype(me, dtype)
        conv_out = _conv_shape(me, "the convolution", self.input_dim, p)
        flat = math.prod(_pool_shape(me, "the pooling", conv_out))
        c, fn, fs = self.input_dim[0], p["filter_num"], p["filter_size"]
        self._add("Conv1", Conv2d(c, fn, fs, p["stride"], p["pad"], **common), key=1)
        self._add("Relu1", ReLU())
        self._add("Pool1", MaxPool2d(2, 2))
        self._add("Flatten", Flatten())
        self._add("Affine1", Linear(flat, self.hidden_size, **common), key=2)
        self._add("Relu2", ReLU())
        self._add("Affine2", Linear(self.hidden_size, self.output_size, **common), key=3)


class DeepConvNet(_BookTwin):
    """The book's chapter-8 network from ``nn`` modules (the twin of
    :class:`chainrule.layers.DeepConvNet`)::

        Conv1 Relu1 Conv2 Relu2 Pool1  Conv3 Relu3 Conv4 Relu4 Pool2  Conv5 Relu5 Conv6 Relu6
        Pool3  Flatten  Affine1 Relu7 Dropout1  Affine2 Dropout2

    3x3 convolutions with 16, 16, 32, 32 (pad 2), 64, 64 filters (``conv_param_1`` ..
    ``conv_param_6``, keys as in :class:`SimpleConvNet`, missing keys take these defaults),
    2x2 max pooling with stride 2, a hidden layer of ``hidden_size`` (50), and inverted dropout
    with ratio ``dropout_ratio`` (0.5) in training mode only (``model.train()`` /
    ``model.eval()``); ``inverted_dropout=False`` gives the book's dropout instead
    (:class:`BookDropout`, scaled at test time). He initialization unless ``weight_init_std``
    says otherwise (``'xavier'`` or a standard deviation); ``rng`` draws the weights and the
    dropout masks (when ``None``: :func:`chainrule.nn.init.default_rng`); ``dtype`` float64
    like the book's (the same arguments build the same network).

    Parameters ``W1 .. W8``, ``b1 .. b8`` (W1..W6 the convolutions' (FN, C, 3, 3), W7 and W8
    the affine layers'), the book's ``params`` keys.

    **Backward:** nothing written here; the ops' derivatives run, as in the book's layers.

    >>> net = DeepConvNet(rng=np.random.default_rng(0))
    >>> [tuple(p.shape) for k, p in net.named_parameters() if k.startswith("W")][-3:]
    [(64, 64, 3, 3), (1024, 50), (50, 10)]
    >>> net.Pool3, net.Dropout2
    (MaxPool2d(kernel=(2, 2), stride=(2, 2), pad=(0, 0)), Dropout(p=0.5))
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
        super().__init__()
        self._book_keys = {}
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
        dtype = float_dtype(me, dtype)
        self.rng = default_rng() if rng is None else rng
        common = {"init": self.weight_init_std, "rng": self.rng, "dtype": dtype}
        drop = Dropout if self.inverted_dropout else BookDropout

        shape: tuple[int, ...] = self.input_dim
        for i, p in enumerate(self.conv_params, start=1):
            fn, fs = p["filter_num"], p["filter_size"]
            conv = Conv2d(shape[0], fn, fs, p["stride"], p["pad"], **common)
            shape = _conv_shape(me, f"convolution {i}", shape, p)
            self._add(f"Conv{i}", conv, key=i)
            self._add(f"Relu{i}", ReLU())
            if i % 2 == 0:
                shape = _pool_shape(me, f"pooling {i // 2}", shape)
                self._add(f"Pool{i // 2}", MaxPool2d(2, 2))
        self._add("Flatten", Flatten())
        self._add("Affine1", Linear(math.prod(shape), self.hidden_size, **common), key=7)
        self._add("Relu7", ReLU())
        self._add("Dropout1", drop(self.dropout_ratio, rng=self.rng))
        self._add("Affine2", Linear(self.hidden_size, self.output_size, **common), key=8)
        self._add("Dropout2", drop(self.dropout_ratio, rng=self.rng))
