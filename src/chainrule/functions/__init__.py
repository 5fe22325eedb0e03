"""Differentiable operations: each a :class:`~chainrule.function.Function` class (usable by
hand on arrays, with ``forward``/``backward`` side by side) and a lowercase function that applies
it to Tensors and records the graph.

==============  ===================================================================
module          contents
==============  ===================================================================
arithmetic      Add, Sub, Mul, Div, Neg, Pow, SumTo, BroadcastTo
elementwise     Exp, Log, Sqrt, Abs, Sigmoid, Tanh, Relu, LeakyRelu, Maximum,
                Minimum, Where, Clip
reduction       Sum, Max, Min (and ``mean``)
shape           Reshape, Transpose, GetItem, ScatterAdd, Concatenate, Stack
linalg          MatMul, Linear
loss            Softmax, LogSoftmax, SoftmaxWithLoss, IdentityWithLoss
noise           Dropout
normalization   BatchNorm (running statistics in a BatchNormState)
conv            Conv2d, MaxPool2d, AvgPool2d (and im2col, col2im, conv_output_size)
==============  ===================================================================
"""

from chainrule.functions.arithmetic import (
    Add,
    BroadcastTo,
    Div,
    Mul,
    Neg,
    Pow,
    Sub,
    SumTo,
    add,
    broadcast_to,
    div,
    mul,
    neg,
    pow,
    sub,
    sum_to,
)
from chainrule.functions.conv import (
    AvgPool2d,
    Conv2d,
    MaxPool2d,
    avg_pool2d,
    col2im,
    conv2d,
    conv_output_size,
    im2col,
    max_pool2d,
)
from chainrule.functions.elementwise import (
    Abs,
    Clip,
    Exp,
    LeakyRelu,
    Log,
    Maximum,
    Minimum,
    Relu,
    Sigmoid,
    Sqrt,
    Tanh,
    Where,
    abs,
    clip,
    exp,
    leaky_relu,
    log,
    maximum,
    minimum,
    relu,
    sigmoid,
    sqrt,
    tanh,
    where,
)
from chainrule.functions.linalg import Linear, MatMul, linear, matmul
from chainrule.functions.loss import (
    IdentityWithLoss,
    LogSoftmax,
    Softmax,
    SoftmaxWithLoss,
    identity_with_loss,
    log_softmax,
    mean_squared_error,
    softmax,
    softmax_cross_entropy,
)
from chainrule.functions.noise import Dropout, dropout
from chainrule.functions.normalization import BatchNorm, BatchNormState, batch_norm
from chainrule.functions.reduction import Max, Min, Sum, max, mean, min, sum
from chainrule.functions.shape import (
    Concatenate,
    GetItem,
    Reshape,
    ScatterAdd,
    Stack,
    Transpose,
    concatenate,
    get_item,
    reshape,
    stack,
    transpose,
)

__all__ = [
    "Abs", "Add", "BroadcastTo", "Clip", "Concatenate", "Div", "Dropout", "Exp", "GetItem",
    "IdentityWithLoss", "LeakyRelu", "Linear", "Log", "LogSoftmax", "MatMul", "Max", "Maximum",
    "Min", "Minimum", "Mul", "Neg", "Pow", "Relu", "Reshape", "Sigmoid", "Softmax",
    "SoftmaxWithLoss", "Sqrt", "Stack", "Sub", "Sum", "SumTo", "Tanh", "Transpose", "Where",
    "abs", "add", "broadcast_to", "clip", "concatenate", "div", "dropout", "exp", "get_item",
    "identity_with_loss", "leaky_relu", "linear", "log", "log_softmax", "matmul", "max",
    "maximum", "mean", "mean_squared_error", "min", "minimum", "mul", "neg", "pow", "relu",
    "reshape", "sigmoid", "softmax", "softmax_cross_entropy", "sqrt", "stack", "sub", "sum",
    "sum_to", "tanh", "transpose", "where",
]  # fmt: skip
__all__ += ["BatchNorm", "BatchNormState", "ScatterAdd", "batch_norm"]
__all__ += [
    "AvgPool2d", "Conv2d", "MaxPool2d", "avg_pool2d", "col2im", "conv2d", "conv_output_size",
    "im2col", "max_pool2d",
]  # fmt: skip
