"""Modules for fully connected networks: Linear, activations, Dropout, BatchNorm1d, Flatten.

Each ``forward`` is one call into :mod:`chainrule.functions`, where the forward and backward
math is written (once, shared with the book's layers in :mod:`chainrule.layers`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule import functions as F
from chainrule.functions.normalization import BatchNormState
from chainrule.nn.init import check_init, check_size, default_rng, init_std, normal
from chainrule.nn.module import Module, Parameter
from chainrule.tensor import Tensor
from chainrule.validation import float_dtype as _float_dtype
from chainrule.validation import ratio


class Linear(Module):
    """The affine map ``y = x.reshape(N, -1) @ W + b`` (the book's Affine), via
    :func:`chainrule.functions.linear`.

    ``W`` has shape ``(in_features, out_features)`` — the book's layout, ``x @ W`` — and ``b``
    ``(out_features,)`` (absent with ``bias=False``). ``W`` is drawn from ``N(0, std**2)`` with
    ``std`` given by ``init`` (``'he'``, ``'xavier'`` or a number; :mod:`chainrule.nn.init`);
    ``b`` starts at zero. ``rng`` defaults to :func:`chainrule.nn.init.default_rng`.

    >>> layer = Linear(3, 2, rng=np.random.default_rng(0))
    >>> layer(np.ones((5, 3))).shape, layer.W.shape, layer.b.shape
    ((5, 2), (3, 2), (2,))
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        init: str | float = "he",
        rng: np.random.Generator | None = None,
        dtype: Any = np.float32,
    ):
        super().__init__()
        self.in_features = check_size("Linear", "in_features", in_features)
        self.out_features = check_size("Linear", "out_features", out_features)
        init = check_init("Linear", "init", init)
        dtype = _float_dtype("Linear", dtype)
        rng = default_rng() if rng is None else rng
        std = init_std(init, self.in_features)
        self.W = Parameter(normal((self.in_features, self.out_features), std, rng, dtype), "W")
        self.b = Parameter(np.zeros(self.out_features, dtype=dtype), "b") if bias else None

    def forward(self, x: Any) -> Tensor:
        return F.linear(x, self.W, self.b)

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, bias={self.b is not None}"


class ReLU(Module):
    """``max(x, 0)`` (:func:`chainrule.functions.relu`)."""

    def forward(self, x: Any) -> Tensor:
        return F.relu(x)


class Sigmoid(Module):
    """``1 / (1 + exp(-x))`` (:func:`chainrule.functions.sigmoid`)."""

    def forward(self, x: Any) -> Tensor:
        return F.sigmoid(x)


class Tanh(Module):
    """``tanh(x)`` (:func:`chainrule.functions.tanh`)."""

    def forward(self, x: Any) -> Tensor:
        return F.tanh(x)


class LeakyReLU(Module):
    """``x`` where ``x > 0``, else ``slope * x`` (:func:`chainrule.functions.leaky_relu`)."""

    def __init__(self, slope: float = 0.01):
        super().__init__()
        self.slope = float(slope)

    def forward(self, x: Any) -> Tensor:
        return F.leaky_relu(x, self.slope)

    def extra_repr(self) -> str:
        return f"slope={self.slope}"


class Dropout(Module):
    """Inverted dropout with drop probability ``p`` in training; identity in evaluation
    (:class:`chainrule.functions.Dropout`). ``rng`` draws the masks (default: the library's
    generator)."""

    def __init__(self, p: float = 0.5, rng: np.random.Generator | None = None):
        super().__init__()
        self.p = ratio("Dropout", "p", p)
        self.rng = rng

    def forward(self, x: Any) -> Tensor:
        return F.Dropout(self.p, self.rng)(x)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class BatchNorm1d(Module):
    """Batch normalization of ``num_features`` features (:func:`chainrule.functions.batch_norm`).

    Parameters ``gamma`` (ones) and ``beta`` (zeros); buffers ``running_mean`` (zeros) and
    ``running_var`` (ones), held by ``state`` (a :class:`~chainrule.functions.BatchNormState`)
    and updated in place by each training-mode call. ``momentum`` is the book's: the weight of
    the old running value (PyTorch's ``momentum=0.1`` is ``0.9`` here). Input ``(N, D)``, or
    ``(N, C, L)`` normalized per channel.
    """

    def __init__(
        self, num_features: int, momentum: float = 0.9, eps: float = 1e-5, dtype: Any = np.float32
    ):
        super().__init__()
        me = type(self).__name__  # BatchNorm2d shares this set-up
        n = self.num_features = check_size(me, "num_features", num_features)
        dtype = _float_dtype(me, dtype)
        self.gamma = Parameter(np.ones(n, dtype=dtype), "gamma")
        self.beta = Parameter(np.zeros(n, dtype=dtype), "beta")
        self.state = BatchNormState(n, momentum=momentum, eps=eps, dtype=dtype)
        self.register_buffer("running_mean", self.state.running_mean)
        self.register_buffer("running_var", self.state.running_var)

    @property
    def running_mean(self) -> np.ndarray:
        return self.state.running_mean

    @property
    def running_var(self) -> np.ndarray:
        return self.state.running_var

    def forward(self, x: Any) -> Tensor:
        return F.batch_norm(x, self.gamma, self.beta, self.state)

    def extra_repr(self) -> str:
        return f"{self.num_features}, momentum={self.state.momentum}, eps={self.state.eps}"


class Flatten(Module):
    """``x.reshape(N, -1)``: each sample as one row (:class:`chainrule.functions.Reshape`)."""

    def forward(self, x: Any) -> Tensor:
        return F.Reshape((x.shape[0], -1))(x)
