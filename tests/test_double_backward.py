"""Second derivatives: every op that claims ``differentiable_backward`` is checked with
``check_double_backward`` (a Hessian-vector product from the double-backward graph against
central differences of the first-order backward, float64, random upstreams), on inputs away
from kinks and ties. conv2d and the pools are checked in test_conv.py."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import chainrule
from chainrule import functions as F
from chainrule.function import Function
from chainrule.gradcheck import check_double_backward

_r = np.random.default_rng(7)


def normal(*shape):
    return _r.standard_normal(shape)


def away(*shape, low=0.3, high=1.5):
    """Values with |v| in [low, high] and random signs: away from 0 (kinks of relu/abs)."""
    return _r.uniform(low, high, shape) * _r.choice([-1.0, 1.0], shape)


def positive(*shape):
    return _r.uniform(0.5, 2.0, shape)


_state = F.BatchNormState(momentum=0.9)
_state_nchw = F.BatchNormState()
_state_eval = F.BatchNormState(3, running_mean=normal(3), running_var=positive(3))

# class name -> [(case id, fn, inputs)]: broadcasting, fan-out and 0-d values included.
CASES: dict[str, list[tuple[str, object, tuple]]] = {
    "Add": [("bcast", lambda x, y: x + y * x, (normal(2, 3), normal(3)))],
    "Sub": [("bcast", lambda x, y: (x - y) * (x - y), (normal(2, 1), normal(1, 3)))],
    "Mul": [("fan-out", lambda x, y: x * y * x, (normal(2, 3), normal(3)))],
    "Div": [("bcast", lambda x, y: x / y, (normal(2, 3), positive(3)))],
    "Neg": [("0-d", lambda x: -(x * x), (normal(),))],
    "Pow": [
        ("scalar c", lambda x: x**3.0, (positive(4),)),
        ("array c", lambda x: x ** np.array([1.5, 2.0, 0.0]), (positive(2, 1),)),
    ],
    "SumTo": [("", lambda x: F.sum_to(x * x, (1, 3)), (normal(2, 3),))],
    "BroadcastTo": [("", lambda x: F.broadcast_to(x, (2, 3)) ** 2.0, (normal(3),))],
    "Exp": [("", lambda x: F.exp(x), (normal(3, 2),))],
    "Log": [("", lambda x: F.log(x), (positive(4),))],
    "Sqrt": [("", lambda x: F.sqrt(x), (positive(4),))],
    "Abs": [("", lambda x: F.abs(x) * x, (away(5),))],
    "Sigmoid": [("", lambda x: F.sigmoid(x), (normal(2, 3),))],
    "Tanh": [("", lambda x: F.tanh(x), (normal(2, 3),))],
    "Relu": [("", lambda x: F.relu(x) * x, (away(6),))],
    "LeakyRelu": [("", lambda x: F.leaky_relu(x, 0.1) * x, (away(6),))],
    "Maximum": [("", lambda x, y: F.maximum(x, y) * x, (normal(5), normal(5) + 3 * away(5)))],
    "Minimum": [("", lambda x, y: F.minimum(x, y) * y, (normal(5), normal(5) + 3 * away(5)))],
    "Where": [("", lambda x, y: F.where(np.array([True, False, True]), x * x, y), (normal(3), normal(3)))],  # noqa: E501
    "Clip": [("", lambda x: F.clip(x, -1.0, 1.0) * x, (np.array([-2.0, -0.5, 0.2, 0.7, 3.0]),))],
    "Sum": [("axis", lambda x: F.sum(x * x, axis=1, keepdims=True) * x, (normal(2, 3),))],
    "Max": [("axis", lambda x: F.max(x, axis=0) ** 2.0, (normal(3, 4),))],
    "Min": [("", lambda x: F.min(x * x), (normal(5),))],
    "Reshape": [("", lambda x: F.reshape(x, (3, 2)) @ x, (normal(2, 3),))],
    "Transpose": [("", lambda x: F.transpose(x) @ x, (normal(2, 3),))],
    "GetItem": [
        ("repeated", lambda x: x[np.array([0, 0, 2])] ** 2.0, (normal(3, 2),)),
        ("slice", lambda x: x[1:, 0] * x[:-1, 1], (normal(3, 2),)),
    ],
    "ScatterAdd": [("", lambda x: F.ScatterAdd(np.array([1, 1, 0]), (3,))(x * x), (normal(3),))],
    "Concatenate": [("", lambda x, y: F.concatenate([x * y, y], axis=1) ** 2.0, (normal(2, 1), normal(2, 3)))],  # noqa: E501
    "Stack": [("", lambda x, y: F.stack([x, x * y], axis=1) ** 2.0, (normal(3), normal(3)))],
    "MatMul": [("", lambda x, w: F.matmul(x, w) * x.sum(), (normal(2, 3), normal(3, 4)))],
    "Linear": [("", lambda x, w, b: F.tanh(F.linear(x, w, b)), (normal(2, 3), normal(3, 4), normal(4)))],  # noqa: E501
    "Softmax": [("", lambda x: F.softmax(x), (normal(2, 4),))],
    "LogSoftmax": [("", lambda x: F.log_softmax(x), (normal(2, 4),)), ("1-d", F.log_softmax, (normal(3),))],  # noqa: E501
    "SoftmaxWithLoss": [
        ("labels", lambda x: F.softmax_cross_entropy(x, np.array([2, 0, 1])), (normal(3, 4),)),
        ("one-hot", lambda x: F.softmax_cross_entropy(x * x, np.eye(4)[[1, 3]]), (normal(2, 4),)),
        ("soft", lambda x: F.softmax_cross_entropy(x, np.array([0.25, 0.75])), (normal(2),)),
    ],
    "IdentityWithLoss": [("", lambda x, t: F.identity_with_loss(x * x, t), (normal(3, 2), normal(3, 2)))],  # noqa: E501
    "Dropout": [
        ("eval", lambda x: F.dropout(x, 0.5) * x, (normal(4),)),
        ("ratio 0", lambda x: F.dropout(x, 0.0) * x, (normal(4),)),
    ],
    "BatchNorm": [
        ("train", lambda x, g, b: F.batch_norm(x, g, b, _state, train=True) ** 2.0, (normal(4, 3), normal(3), normal(3))),  # noqa: E501
        ("train NCHW", lambda x, g, b: F.batch_norm(x, g, b, _state_nchw, train=True) ** 2.0, (normal(2, 2, 2, 3), normal(2), normal(2))),  # noqa: E501
        ("eval", lambda x, g, b: F.batch_norm(x, g, b, _state_eval, train=False) ** 2.0, (normal(4, 3), normal(3), normal(3))),  # noqa: E501
    ],
}  # fmt: skip

PARAMS = [
    pytest.param(fn, inputs, id=f"{name}-{case}" if case else name)
    for name, cases in CASES.items()
    for case, fn, inputs in cases
]


@pytest.mark.parametrize(("fn", "inputs"), PARAMS)
def test_second_derivatives_match_differences_of_the_backward(fn, inputs):
    with chainrule.eval_mode():  # dropout's cases; batch norm's pass train explicitly
        report = check_double_backward(fn, *[x.copy() for x in inputs], rtol=1e-6)
    assert report.ok


def test_every_op_claiming_double_backward_is_checked_here():
    claiming = {
        name
        for name, cls in vars(F).items()
        if inspect.isclass(cls)
        and issubclass(cls, Function)
        and cls.differentiable_backward
        and cls.__module__
        not in ("chainrule.functions.conv", "chainrule.functions.pool")  # test_conv*.py
    }
    assert claiming - set(CASES) == set()


def test_dropout_in_training_is_checked_with_its_fixed_mask():
    x0 = normal(6)
    drop = F.Dropout(0.5, rng=np.random.default_rng(3))

    def fn(x):
        drop.rng = np.random.default_rng(3)  # the same mask at every evaluation
        return drop(x) * x

    with chainrule.train_mode():
        assert check_double_backward(fn, x0).ok
