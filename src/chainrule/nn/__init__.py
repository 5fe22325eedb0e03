"""Neural-network modules on the autograd engine: :class:`Module` and :class:`Parameter`, and
the layers of fully connected networks.

>>> import numpy as np
>>> from chainrule import nn, functions as F
>>> from chainrule.optim import Adam
>>> model = nn.MLP([4, 16, 3], rng=np.random.default_rng(0))
>>> opt = Adam(lr=1e-2, params=model.parameters())
>>> x, t = np.ones((8, 4), dtype=np.float32), np.zeros(8, dtype=int)
>>> loss = F.softmax_cross_entropy(model(x), t)
>>> loss.backward(); opt.step(); opt.zero_grad()

In a training loop, ``loss.backward(retain_graph=False)`` frees the graph as the walk goes
(a lower memory peak; what :meth:`Module.loss_and_grads` and the ``Trainer`` do); the default
keeps it for a second ``backward``, :func:`chainrule.explain.explain` and the pictures.

Modules compute nothing themselves: each ``forward`` calls :mod:`chainrule.functions`, where
the forward and backward of every op are written once and shared with the book's layers.
"""

from chainrule.nn import init
from chainrule.nn.conv import AvgPool2d, BatchNorm2d, Conv2d, MaxPool2d
from chainrule.nn.conv_nets import DeepConvNet, SimpleConvNet
from chainrule.nn.layers import (
    BatchNorm1d,
    Dropout,
    Flatten,
    LeakyReLU,
    Linear,
    ReLU,
    Sigmoid,
    Tanh,
)
from chainrule.nn.mlp import MLP
from chainrule.nn.module import Module, Parameter, Sequential

__all__ = [
    "MLP",
    "AvgPool2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv2d",
    "DeepConvNet",
    "Dropout",
    "Flatten",
    "LeakyReLU",
    "Linear",
    "MaxPool2d",
    "Module",
    "Parameter",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "SimpleConvNet",
    "Tanh",
    "init",
]
