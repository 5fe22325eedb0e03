"""MLP: a fully connected network assembled from nn modules (the ``nn`` twin of
:class:`chainrule.layers.MultiLayerNet`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from chainrule.nn.init import check_init, check_sizes, default_rng
from chainrule.nn.layers import BatchNorm1d, Dropout, Linear
from chainrule.nn.module import Module, Sequential
from chainrule.validation import nonnegative_float, ratio


class MLP(Sequential):
    """``Linear -> [BatchNorm1d] -> activation -> [Dropout]`` for each hidden layer, then a last
    ``Linear`` producing scores (the protocol's :meth:`~Module.loss_and_grads` applies softmax
    cross-entropy).

    ``sizes`` is ``[input, hidden..., output]`` (at least two sizes). ``activation``: a name of
    :data:`chainrule.activations.ACTIVATIONS` (``'relu'``, ``'sigmoid'``, ``'tanh'``,
    ``'leaky_relu'``); ``dropout``: the drop probability (0 adds no Dropout modules); ``init``:
    ``'he'``, ``'xavier'`` or a standard deviation (default: the scheme the activation suits);
    ``weight_decay``: λ of the L2 term ``0.5 * λ * sum(W**2)`` that ``loss_and_grads`` adds.
    ``rng`` draws the weights and the dropout masks (default:
    :func:`chainrule.nn.init.default_rng`). With the same ``rng`` the weights equal those of
    :class:`~chainrule.layers.MultiLayerNet` of the same sizes and init.

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
        init: str | float | None = None,
        rng: np.random.Generator | None = None,
        dtype: Any = np.float32,
        weight_decay: float = 0.0,
    ):
        from chainrule.activations import activation as find_activation

        sizes = check_sizes("MLP", "sizes", sizes, minimum=2)
        act = find_activation(activation, "MLP")
        dropout = ratio("MLP", "dropout", dropout)
        init = check_init("MLP", "init", act.init if init is None else init)
        decay = nonnegative_float("MLP", "weight_decay", weight_decay)
        rng = default_rng() if rng is None else rng
        modules: list[Module] = []
        for i in range(1, len(sizes)):
            modules.append(Linear(sizes[i - 1], sizes[i], init=init, rng=rng, dtype=dtype))
            if i == len(sizes) - 1:
                break
            if batchnorm:
                modules.append(BatchNorm1d(sizes[i], dtype=dtype))
            modules.append(act.module())
            if dropout:
                modules.append(Dropout(dropout, rng=rng))
        super().__init__(*modules)
        self.sizes = sizes
        self.activation = act.name
        self._options = {"batchnorm": bool(batchnorm), "dropout": dropout, "init": init}
        self._options["dtype"] = np.dtype(dtype).name
        self.weight_decay = decay
        self.rng = rng  # the dropout masks' generator (a trainer checkpoints its state)

    def model_config(self) -> dict[str, Any]:
        """The registry config (``chainrule.models``) that builds this network's twin."""
        return {
            "model": "mlp",
            "engine": "autograd",
            "input_size": self.sizes[0],
            "hidden": list(self.sizes[1:-1]),
            "output_size": self.sizes[-1],
            "activation": self.activation,
            "weight_decay": self.weight_decay,
            **self._options,
        }

    def extra_repr(self) -> str:
        return f"weight_decay={self.weight_decay:g}" if self.weight_decay else ""
