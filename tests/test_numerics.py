"""Numerical promises: sigmoid and softmax never overflow or warn, cross-entropy is exact and
never negative, and its gradient is (softmax - one_hot) / N to float64 precision.

Every test runs with overflow, invalid operations and division by zero raised as errors
(underflow to 0 is fine: it is the correct rounded answer)."""

from __future__ import annotations

import math
from decimal import Decimal, localcontext

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from chainrule import Tensor
from chainrule import functions as F
from chainrule.layers import Sigmoid, SoftmaxWithLoss

EPS = np.finfo(np.float64).eps


@pytest.fixture(autouse=True)
def _strict_floating_point():
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        yield


def exact_sigmoid(x: float) -> float:
    """1 / (1 + e^-x) with 50 significant digits, rounded once to float64."""
    with localcontext() as ctx:
        ctx.prec = 50
        return float(1 / (1 + (-Decimal(x)).exp()))


def test_strict_mode_is_active():
    # The naive formula overflows at -1000: this proves the errstate above is in force.
    with pytest.raises(FloatingPointError):
        1 / (1 + np.exp(-np.array([-1000.0])))


@pytest.mark.parametrize(
    ("x", "expected"),
    [(1000.0, 1.0), (-1000.0, 0.0), (1e308, 1.0), (-1e308, 0.0), (710.0, 1.0), (-746.0, 0.0)],
)
def test_sigmoid_saturates_without_overflow(x, expected):
    out = Sigmoid().forward(np.array([x]))
    assert out.dtype == np.float64
    assert out[0] == expected
    t = Tensor(np.array([x]))
    y = F.sigmoid(t)
    y.backward(np.ones(1))
    assert y.data[0] == expected
    assert t.grad[0] == 0.0


@pytest.mark.parametrize("x", [1e30, -1e30, 1e4, -1e4, 88.0, -104.0])
def test_sigmoid_float32_extremes(x):
    a = np.array([x], dtype=np.float32)
    out = Sigmoid().forward(a)
    assert out.dtype == np.float32
    assert np.isfinite(out).all()
    if abs(x) >= 1e4:
        assert out[0] == (1.0 if x > 0 else 0.0)
    else:
        assert out[0] == pytest.approx(exact_sigmoid(x), rel=1e-6, abs=1e-44)


def test_sigmoid_agrees_with_exact_values_to_a_few_ulp():
    xs = np.concatenate([np.linspace(-40, 40, 801), [-30.0, -1e-8, 0.0, 1e-8, 36.0, 37.0]])
    ours = Sigmoid().forward(xs)
    exact = np.array([exact_sigmoid(float(x)) for x in xs])
    rel = np.abs(ours - exact) / exact
    assert rel.max() <= 4 * EPS, f"worst at x={xs[rel.argmax()]}: {rel.max():.2e}"


def test_sigmoid_left_tail_keeps_relative_precision():
    x = -30.0
    ours = float(Sigmoid().forward(np.array([x]))[0])
    reference = 1 / (1 + math.exp(30))
    assert abs(ours - reference) / reference < 1e-12
    # 1 - sigmoid(30) loses everything in that tail; sigmoid(-30) must not.
    assert abs((1 - exact_sigmoid(30.0)) - reference) / reference > 1e-4


def test_sigmoid_scalar_input():
    assert float(Sigmoid().forward(0.0)) == 0.5
    assert float(Sigmoid().forward(-800.0)) == 0.0


def test_tanh_and_exp_of_moderate_values():
    x = np.array([-500.0, 500.0])
    assert_array_equal(F.tanh(Tensor(x)).data, [-1.0, 1.0])
    assert F.exp(Tensor(np.array([-1000.0]))).data[0] == 0.0


# ----------------------------------------------------------------------------- softmax


def test_softmax_of_huge_equal_scores():
    assert_array_equal(F.softmax(Tensor(np.array([1000.0, 1000.0]))).data, [0.5, 0.5])
    assert_array_equal(F.softmax(Tensor(np.array([[1e308, 1e308]]))).data, [[0.5, 0.5]])


def test_softmax_of_widely_separated_scores():
    y = F.softmax(Tensor(np.array([-1000.0, 0.0]))).data
    assert_array_equal(y, [0.0, 1.0])
    logp = F.log_softmax(Tensor(np.array([-1000.0, 0.0]))).data
    assert_array_equal(logp, [-1000.0, 0.0])


def test_softmax_float32_does_not_overflow():
    x = np.array([[100.0, 0.0, -100.0], [3e38, 3e38, 0.0]], dtype=np.float32)
    y = F.softmax(Tensor(x)).data
    assert y.dtype == np.float32
    assert_allclose(y.sum(axis=1), 1.0, rtol=1e-6)
    assert_array_equal(y[1], np.array([0.5, 0.5, 0.0], dtype=np.float32))


# ----------------------------------------------------------------------------- cross-entropy


def test_cross_entropy_of_perfect_prediction_is_exactly_zero():
    for t in (np.array([1]), np.array([[0.0, 1.0]])):
        loss = SoftmaxWithLoss().forward(np.array([[0.0, 800.0]]), t)
        assert loss == 0.0
        assert math.copysign(1.0, loss) == 1.0  # +0.0, not -0.0: never negative
    assert SoftmaxWithLoss().forward(np.array([[0.0, 800.0]]), np.array([0])) == 800.0


def test_cross_entropy_with_saturated_wrong_class_stays_finite():
    layer = SoftmaxWithLoss()
    loss = layer.forward(np.array([[1e6, -1e6, 0.0]]), np.array([1]))
    assert loss == 2e6
    assert_array_equal(layer.backward(1), [[1.0, -1.0, 0.0]])


def _reference_loss(x: np.ndarray, t: np.ndarray) -> float:
    total = []
    for row, label in zip(x.tolist(), t.tolist()):
        m = max(row)
        lse = m + math.log(math.fsum(math.exp(v - m) for v in row))
        total.append(lse - row[label])
    return math.fsum(total) / len(total)


def test_cross_entropy_matches_math_reference(rng):
    x = 5.0 * rng.standard_normal((6, 4))
    t = rng.integers(0, 4, 6)
    loss = SoftmaxWithLoss().forward(x, t)
    assert loss == pytest.approx(_reference_loss(x, t), rel=1e-14)
    loss_one_hot = SoftmaxWithLoss().forward(x, np.eye(4)[t])
    assert loss_one_hot == pytest.approx(loss, rel=1e-14)


@given(
    scale=st.floats(0.0, 1e4),
    seed=st.integers(0, 2**16),
    one_hot=st.booleans(),
)
def test_cross_entropy_is_never_negative(scale, seed, one_hot):
    rng = np.random.default_rng(seed)
    x = scale * rng.standard_normal((3, 5))
    labels = rng.integers(0, 5, 3)
    loss = SoftmaxWithLoss().forward(x, np.eye(5)[labels] if one_hot else labels)
    assert loss >= 0.0
    assert math.copysign(1.0, loss) == 1.0
    assert np.isfinite(loss)


def test_cross_entropy_gradient_is_softmax_minus_one_hot_over_n(rng):
    x = 3.0 * rng.standard_normal((5, 4))
    t = rng.integers(0, 4, 5)
    layer = SoftmaxWithLoss()
    layer.forward(x, t)
    dx = layer.backward(1)
    expected = np.empty_like(x)
    for i, row in enumerate(x.tolist()):
        m = max(row)
        lse = m + math.log(math.fsum(math.exp(v - m) for v in row))
        expected[i] = [math.exp(v - lse) for v in row]
    expected[np.arange(5), t] -= 1.0
    expected /= 5
    assert_allclose(dx, expected, rtol=1e-13, atol=2 * EPS)
    assert_allclose(dx.sum(axis=1), 0.0, atol=4 * EPS)  # each row of the gradient sums to 0
    # The same through the autograd engine.
    tx = Tensor(x)
    F.softmax_cross_entropy(tx, t).backward()
    assert_array_equal(tx.grad, dx)


def test_cross_entropy_float32(rng):
    x = rng.standard_normal((4, 3)).astype(np.float32)
    layer = SoftmaxWithLoss()
    loss = layer.forward(x, np.array([0, 1, 2, 0]))
    assert loss.dtype == np.float32
    assert layer.backward(1).dtype == np.float32
    assert loss == pytest.approx(_reference_loss(x.astype(np.float64), np.array([0, 1, 2, 0])),
                                 rel=1e-6)  # fmt: skip
