"""Bad input fails early with a message that says which layer, which shapes and what to do."""

from __future__ import annotations

import re

import numpy as np
import pytest

from chainrule import Tensor
from chainrule import functions as F
from chainrule.function import BackwardBeforeForwardError
from chainrule.layers import (
    Affine,
    IdentityWithLoss,
    MulLayer,
    Relu,
    Sigmoid,
    SoftmaxWithLoss,
    TwoLayerNet,
)


def shape_re(shape: tuple[int, ...]) -> str:
    return re.escape(str(shape))


# ----------------------------------------------------------------------------- Affine / linear


def test_affine_feature_mismatch_names_layer_and_both_shapes():
    layer = Affine(np.ones((4, 3)), np.zeros(3))
    with pytest.raises(ValueError, match=r"Affine") as info:
        layer.forward(np.ones((2, 5)))
    message = str(info.value)
    assert "(2, 5)" in message and "(4, 3)" in message


def test_affine_nd_input_feature_mismatch():
    layer = Affine(np.ones((16, 3)), np.zeros(3), name="Affine1")
    with pytest.raises(ValueError, match=r"Affine1.*\(2, 1, 3, 3\).*9 features.*\(16, 3\)"):
        layer.forward(np.ones((2, 1, 3, 3)))


@pytest.mark.parametrize("bias_shape", [(4,), (2, 3), (1, 3), (3, 1)])
def test_affine_bias_of_wrong_shape_is_named(bias_shape):
    layer = Affine(np.ones((4, 3)), np.zeros(bias_shape))
    with pytest.raises(ValueError, match=r"bias.*" + shape_re(bias_shape) + r".*\(3,\)"):
        layer.forward(np.ones((2, 4)))


def test_linear_weight_must_be_2d():
    with pytest.raises(ValueError, match=r"weight W must be 2-D.*\(4,\)"):
        F.linear(np.ones((2, 4)), np.ones(4))


def test_empty_batch():
    with pytest.raises(ValueError, match="empty"):
        Affine(np.ones((4, 3)), np.zeros(3)).forward(np.ones((0, 4)))
    with pytest.raises(ValueError, match="empty batch"):
        SoftmaxWithLoss().forward(np.ones((0, 3)), np.array([], dtype=int))
    with pytest.raises(ValueError, match="empty batch"):
        IdentityWithLoss().forward(np.ones((0, 3)), np.ones((0, 3)))
    with pytest.raises(ValueError, match="empty"):
        F.max(Tensor(np.ones((0,))))


def test_matmul_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 5\)"):
        F.matmul(Tensor(np.ones((2, 3))), Tensor(np.ones((4, 5))))
    with pytest.raises(ValueError, match=r"left operand must be 2-D.*\(3,\)"):
        F.matmul(np.ones(3), np.ones((3, 2)))


# ----------------------------------------------------------------------------- targets


def test_label_out_of_range():
    with pytest.raises(ValueError, match=r"SoftmaxWithLoss: label 3 at index 1.*3 classes"):
        SoftmaxWithLoss().forward(np.zeros((2, 3)), np.array([0, 3]))


def test_negative_label():
    with pytest.raises(ValueError, match=r"label -1 at index 0 is out of range.*0\.\.2"):
        SoftmaxWithLoss().forward(np.zeros((2, 3)), np.array([-1, 0]))


@pytest.mark.parametrize("bad", [0.5, np.nan, np.inf, -np.inf])
def test_non_integer_float_labels(bad):
    with pytest.raises(ValueError, match="labels must be integers"):
        SoftmaxWithLoss().forward(np.zeros((2, 3)), np.array([1.0, bad]))


def test_integer_valued_float_labels_are_accepted():
    loss = SoftmaxWithLoss().forward(np.zeros((2, 4)), np.array([1.0, 3.0]))
    assert loss == pytest.approx(np.log(4))


def test_non_numeric_labels():
    with pytest.raises(ValueError, match="labels must be integers"):
        SoftmaxWithLoss().forward(np.zeros((2, 3)), np.array(["a", "b"]))


def test_one_hot_with_wrong_class_count():
    with pytest.raises(ValueError, match=r"one-hot.*\(2, 4\).*4 classes.*\(2, 3\).*3"):
        SoftmaxWithLoss().forward(np.zeros((2, 3)), np.eye(4)[[0, 1]])


def test_batch_size_mismatch():
    with pytest.raises(ValueError, match=r"batch size mismatch.*\(3, 4\).*\(2,\)"):
        SoftmaxWithLoss().forward(np.zeros((3, 4)), np.array([0, 1]))
    with pytest.raises(ValueError, match=r"batch size mismatch.*\(3, 4\).*\(2, 4\)"):
        SoftmaxWithLoss().forward(np.zeros((3, 4)), np.eye(4)[[0, 1]])
    with pytest.raises(ValueError, match=r"targets.*\(3, 2\).*\(3, 1\)"):
        IdentityWithLoss().forward(np.zeros((3, 1)), np.zeros((3, 2)))


def test_targets_of_wrong_rank():
    with pytest.raises(ValueError, match=r"class indices of shape \(2,\).*\(2, 3, 1\)"):
        SoftmaxWithLoss().forward(np.zeros((2, 3)), np.zeros((2, 3, 1), dtype=int))
    with pytest.raises(ValueError, match=r"scores must have shape \(N, C\)"):
        SoftmaxWithLoss().forward(np.zeros((2, 3, 4)), np.zeros(2, dtype=int))


def test_softmax_cross_entropy_through_tensors_validates_too():
    with pytest.raises(ValueError, match="out of range"):
        F.softmax_cross_entropy(Tensor(np.zeros((2, 3))), np.array([0, 5]))


def test_two_layer_net_accuracy_validates_targets(rng):
    net = TwoLayerNet(4, 3, 2, rng=rng)
    with pytest.raises(ValueError, match=r"TwoLayerNet\.accuracy"):
        net.accuracy(np.ones((2, 4)), np.array([0, 2]))


@pytest.mark.parametrize(
    "kwargs",
    [dict(input_size=0, hidden_size=3, output_size=2),
     dict(input_size=4, hidden_size=2.5, output_size=2),
     dict(input_size=4, hidden_size=3, output_size=-1)],
)  # fmt: skip
def test_two_layer_net_sizes(kwargs):
    with pytest.raises(ValueError, match="positive integer"):
        TwoLayerNet(**kwargs)


# ----------------------------------------------------------------------------- order of calls


@pytest.mark.parametrize(
    ("layer", "name"),
    [(Relu(), "Relu"), (Sigmoid(), "Sigmoid"), (MulLayer(), "Mul"),
     (SoftmaxWithLoss(), "SoftmaxWithLoss"), (IdentityWithLoss(), "IdentityWithLoss")],
)  # fmt: skip
def test_backward_before_forward(layer, name):
    with pytest.raises(BackwardBeforeForwardError, match=rf"^{name}: backward\(\) .*before"):
        layer.backward(np.ones(3))


def test_backward_before_forward_names_the_affine_layer():
    with pytest.raises(BackwardBeforeForwardError, match=r"^Affine2: backward\(\)"):
        Affine(np.ones((3, 2)), np.zeros(2), name="Affine2").backward(np.ones((1, 2)))
    with pytest.raises(BackwardBeforeForwardError, match=r"^Affine1:"):
        TwoLayerNet(4, 3, 2).layers["Affine1"].backward(np.ones((1, 3)))


def test_backward_before_forward_is_also_an_attribute_error():
    # hasattr() and getattr(default) keep working on a fresh layer.
    assert not hasattr(Relu(), "mask")
    assert getattr(Sigmoid(), "out", None) is None


# ----------------------------------------------------------------------------- other ops


def test_pow_with_tensor_exponent():
    with pytest.raises(TypeError, match="exponent must be a constant"):
        Tensor(2.0) ** Tensor(3.0)
    with pytest.raises(TypeError, match="exp\\(c \\* log\\(x\\)\\)"):
        F.pow(Tensor(2.0), Tensor(3.0))


def test_reshape_mismatch():
    with pytest.raises(ValueError, match=r"\(2, 3\).*size 6.*\(4, 2\)"):
        F.reshape(Tensor(np.ones((2, 3))), (4, 2))


def test_concatenate_and_stack_mismatch():
    with pytest.raises(ValueError, match=r"concatenate: shapes \(2, 3\), \(2, 4\)"):
        F.concatenate([Tensor(np.ones((2, 3))), Tensor(np.ones((2, 4)))])
    with pytest.raises(ValueError, match=r"stack: all inputs need one shape"):
        F.stack([Tensor(np.ones((2, 3))), Tensor(np.ones((3, 2)))])


def test_axis_out_of_range():
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        F.sum(Tensor(np.ones((2, 3))), axis=2)


def test_dropout_ratio_range():
    for ratio in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError, match=r"ratio must be in \[0, 1\)"):
            F.Dropout(ratio)


def test_backward_dout_shape_mismatch():
    y = Tensor(np.ones((2, 2))) * 3.0
    with pytest.raises(ValueError, match=r"dout has shape \(2, 3\).*\(2, 2\)"):
        y.backward(np.ones((2, 3)))
