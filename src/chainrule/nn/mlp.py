"""MLP: a fully connected network assembled from nn modules (the ``nn`` twin of
:class:`chainrule.layers.MultiLayerNet`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from chainrule.config import get_rng
from chainrule.nn.init import check_init, check_sizes
from chainrule.nn.layers import BatchNorm1d, Dropout, LeakyReLU, Linear, ReLU, Sigmoid, Tanh
from chainrule.nn.module import Module, Sequential

_ACTIVATIONS: dict[str, type[Module]] = {
    "relu": ReLU,
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "leaky_relu": LeakyReLU,
}


class MLP(Sequential):
    """``Linear -> [BatchNorm1d] -> activation -> [Dropout]`` for each hidden layer, then a last
    ``Linear`` producing scores (apply :func:`chainrule.functions.softmax_cross_entropy`).

    ``sizes`` is ``[input, hidden..., output]`` (at least two sizes). ``activation``:
    ``'relu'``, ``'sigmoid'``, ``'tanh'`` or ``'leaky_relu'``; ``dropout``: the drop
    probability (0 adds no Dropout modules); ``init``: ``'he'``, ``'xavier'`` or a standard
    deviation. ``rng`` draws the weights and the dropout masks.

    >>> model = MLP([4, 8, 3], batchnorm=True, rng=np.random.default_rng(0))
    >>> [name for name, _ in model.named_parameters()]
    ['0.W', '0.b', '1.gamma', '1.beta', '3.W', '3.b']
    >>> model(np.ones((2, 4), dtype=np.float32)).shape
    (2, 3)
    """

    def __init__(
        self,
        sizes: Iterable[int],
        activation: str = "relu",
        batchnorm: bool = False,
        dropout: float = 0.0,
        init: str | float = "he",
        rng: np.random.Generator | None = None,
        dtype: Any = np.float32,
    ):
        sizes = check_sizes("MLP", "sizes", sizes, minimum=2)
        if not isinstance(activation, str) or activation.lower() not in _ACTIVATIONS:
            raise ValueError(
                f"MLP: activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}"
            )
        if (
            isinstance(dropout, (bool, np.bool_))
            or not isinstance(dropout, (int, float, np.integer, np.floating))
            or not (0 <= dropout < 1)
        ):
            raise ValueError(f"MLP: dropout must be in [0, 1), got {dropout!r}")
        init = check_init("MLP", "init", init)
        rng = get_rng() if rng is None else rng
        act = _ACTIVATIONS[activation.lower()]
        modules: list[Module] = []
        for i in range(1, len(sizes)):
            modules.append(Linear(sizes[i - 1], sizes[i], init=init, rng=rng, dtype=dtype))
            if i == len(sizes) - 1:
                break
            if batchnorm:
                modules.append(BatchNorm1d(sizes[i], dtype=dtype))
            modules.append(act())
            if dropout:
                modules.append(Dropout(dropout, rng=rng))
        super().__init__(*modules)
        self.sizes = sizes
