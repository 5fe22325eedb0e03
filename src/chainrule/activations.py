"""The activation functions, in one table: everything the library needs to know about each.

:data:`ACTIVATIONS` maps a name (``relu``, ``sigmoid``, ``tanh``, ``leaky_relu``) to an
:class:`Activation` record holding

* ``layer``: the book's layer class (``Relu``, ... of :mod:`chainrule.layers`; ``forward`` /
  ``backward`` on arrays) — the very op class the autograd engine runs;
* ``function``: the functional op on tensors (:func:`chainrule.functions.relu`, ...);
* ``module``: the :mod:`chainrule.nn` module class (``nn.ReLU``, ...);
* ``init``: the weight initialization it suits, ``"he"`` (std ``sqrt(2 / fan_in)``) or
  ``"xavier"`` (``sqrt(1 / fan_in)``), the names of :mod:`chainrule.nn.init`;
* ``bins``: fixed histogram bin edges for its outputs (:mod:`chainrule.diagnostics`), so that
  histograms taken at different times compare. ReLU outputs span decades (0.01 at the book's
  initialization, tens after training): log-spaced edges, 8 per decade, with zeros counted
  apart by the diagnostics.

Adding an activation here makes it available to :class:`~chainrule.layers.MultiLayerNet`,
:class:`~chainrule.nn.MLP`, the model configs and the command line at once.

>>> ACTIVATIONS["tanh"].init, ACTIVATIONS["relu"].module.__name__
('xavier', 'ReLU')
>>> activation("Sigmoid").layer.__name__
'Sigmoid'
>>> list(ACTIVATIONS)
['relu', 'sigmoid', 'tanh', 'leaky_relu']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from chainrule.functions import elementwise as E
from chainrule.nn import layers as nn_layers
from chainrule.validation import choice

__all__ = ["ACTIVATIONS", "Activation", "activation"]


@dataclass(frozen=True)
class Activation:
    """One activation function as each part of the library sees it (see the module docstring).

    ``layer_name`` is the prefix of its layers in a book network (``Relu1``, ``Sigmoid2``).
    """

    name: str
    layer: type
    function: Callable[..., Any]
    module: type
    init: str
    bins: tuple[float, ...]

    @property
    def layer_name(self) -> str:
        return self.layer.__name__

    def bin_edges(self) -> np.ndarray:
        """The histogram bin edges as a float64 array."""
        return np.asarray(self.bins, dtype=np.float64)


def _edges(space: Callable[..., np.ndarray], *args: float) -> tuple[float, ...]:
    return tuple(float(v) for v in space(*args))


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation("relu", E.Relu, E.relu, nn_layers.ReLU, "he", _edges(np.logspace, -4, 2, 49)),
        Activation(
            "sigmoid",
            E.Sigmoid,
            E.sigmoid,
            nn_layers.Sigmoid,
            "xavier",
            _edges(np.linspace, 0, 1, 41),
        ),
        Activation(
            "tanh", E.Tanh, E.tanh, nn_layers.Tanh, "xavier", _edges(np.linspace, -1, 1, 41)
        ),
        Activation(
            "leaky_relu",
            E.LeakyRelu,
            E.leaky_relu,
            nn_layers.LeakyReLU,
            "he",
            _edges(np.linspace, -5, 5, 41),
        ),
    )
}


def activation(name: str, owner: str = "activation") -> Activation:
    """The record for ``name`` (any case); a ``ValueError`` naming ``owner`` and the choices
    otherwise."""
    return ACTIVATIONS[choice(owner, "activation", name, ACTIVATIONS)]
