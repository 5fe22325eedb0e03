"""The book's layers (chapter 5 of *Deep Learning from Scratch*), usable by hand on arrays.

Every layer has ``forward`` and ``backward`` and caches what backward needs. The simple ones are
the autograd engine's own op classes under the names learners know, so the local derivative you
read here is the one :class:`chainrule.Tensor` uses::

    >>> from chainrule.layers import MulLayer
    >>> mul_apple, mul_tax = MulLayer(), MulLayer()
    >>> price = mul_tax.forward(mul_apple.forward(100, 2), 1.1)
    >>> dapple_price, dtax = mul_tax.backward(1)
    >>> dapple, dapple_num = mul_apple.backward(dapple_price)
    >>> round(price, 10), round(dapple, 10), round(dapple_num, 10), dtax
    (220.0, 2.2, 110.0, 200)

Layers with parameters (:class:`Affine`) hold references to the parameter arrays and store
their gradients as ``dW`` and ``db`` after ``backward``.
"""

from chainrule.functions.arithmetic import Add as AddLayer
from chainrule.functions.arithmetic import Mul as MulLayer
from chainrule.functions.elementwise import LeakyRelu, Relu, Sigmoid, Tanh
from chainrule.functions.elementwise import Maximum as MaxGate
from chainrule.functions.loss import IdentityWithLoss, Softmax, SoftmaxWithLoss
from chainrule.layers.affine import Affine
from chainrule.layers.batchnorm import BatchNormalization
from chainrule.layers.book_trainer import BookTrainer, shuffle_dataset, smooth_curve
from chainrule.layers.conv import Convolution, Pooling
from chainrule.layers.conv_nets import DeepConvNet, SimpleConvNet
from chainrule.layers.dropout import Dropout
from chainrule.layers.multi_layer_net import MultiLayerNet, MultiLayerNetExtend
from chainrule.layers.network import BookDropout, BookNetwork
from chainrule.layers.two_layer_net import TwoLayerNet

__all__ = [
    "AddLayer",
    "Affine",
    "BatchNormalization",
    "BookDropout",
    "BookNetwork",
    "Dropout",
    "IdentityWithLoss",
    "LeakyRelu",
    "MaxGate",
    "MulLayer",
    "MultiLayerNet",
    "MultiLayerNetExtend",
    "Relu",
    "Sigmoid",
    "Softmax",
    "SoftmaxWithLoss",
    "Tanh",
    "TwoLayerNet",
]
__all__ += ["Convolution", "DeepConvNet", "Pooling", "SimpleConvNet"]
__all__ += ["BookTrainer", "shuffle_dataset", "smooth_curve"]
