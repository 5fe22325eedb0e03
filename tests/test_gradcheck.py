"""chainrule.gradcheck: the numerical gradient, failure reports with numbers, kink handling,
float64 enforcement, and the book's TwoLayerNet numerical-vs-backprop check."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from chainrule import functions as F
from chainrule.function import Function
from chainrule.gradcheck import (
    GradientCheckError,
    check_double_backward,
    check_function,
    check_layer,
    compare,
    numerical_gradient,
    verdict,
)
from chainrule.layers import Affine, Relu, Sigmoid, TwoLayerNet


def test_numerical_gradient_matches_analytic_and_restores_x(rng):
    x = rng.standard_normal((3, 4))
    before = x.copy()
    grad = numerical_gradient(lambda a: float((a**2).sum()), x)
    assert_array_equal(x, before)  # bit for bit
    assert grad.shape == x.shape and grad.dtype == np.float64
    assert_allclose(grad, 2 * x, rtol=1e-8)


def test_numerical_gradient_restores_x_when_f_raises():
    x = np.array([1.0, 2.0, 3.0])
    calls = []

    def f(a: np.ndarray) -> float:
        calls.append(a.copy())
        if len(calls) == 4:
            raise ArithmeticError("boom")
        return float(a.sum())

    with pytest.raises(ArithmeticError):
        numerical_gradient(f, x)
    assert_array_equal(x, [1.0, 2.0, 3.0])
    assert calls[0][0] != 1.0  # it really was perturbed in place


def test_numerical_gradient_rejects_what_it_cannot_perturb():
    with pytest.raises(TypeError, match="NumPy array"):
        numerical_gradient(lambda a: 0.0, [1.0, 2.0])


@pytest.mark.parametrize("x", [np.array([2.0, 1.0], np.float32), np.array([2, 1])])
def test_numerical_gradient_refuses_arrays_it_would_get_wrong(x):
    # It perturbs x in place: float32 rounds h away (2.0027 for 2), ints cannot hold x + h.
    with pytest.raises(TypeError, match="float64"):
        numerical_gradient(lambda a: float((a**2).sum()), x)


def test_numerical_gradient_of_a_non_contiguous_view():
    base = np.arange(12.0).reshape(3, 4)
    view = base.T[::2]  # strided: perturbing it must reach `base`
    before = base.copy()
    grad = numerical_gradient(lambda a: float((base**2).sum()), view)
    assert_allclose(grad, 2 * view, rtol=1e-8)
    assert_array_equal(base, before)


@pytest.mark.parametrize(
    ("rel", "word"),
    [(1e-9, "happy"), (1e-7, "happy"), (1e-5, "ok only with kinks"), (1e-3, "uncomfortable"),
     (0.5, "wrong"), (float("nan"), "wrong")],
)  # fmt: skip
def test_verdict_bands(rel, word):
    assert verdict(rel) == word


class BuggySigmoid(Sigmoid):
    """Forgets the (1 - out) factor: a classic slip."""

    def backward(self, dout):
        return dout * self.out


def test_wrong_backward_raises_with_diagnostics(rng):
    with pytest.raises(GradientCheckError) as info:
        check_layer(BuggySigmoid(), rng.standard_normal((3, 4)), rng=rng)
    message = str(info.value)
    assert "gradient check failed for x" in message
    assert "rel error" in message and "max |a-n|" in message
    assert "wrong" in message
    report = info.value.report
    assert not report.ok
    assert report["x"].verdict == "wrong"
    assert report["x"].rel_error > 1e-2
    assert report["x"].worst_index is not None
    assert report["x"].analytic_at_worst != pytest.approx(report["x"].numerical_at_worst)
    with pytest.raises(KeyError):
        report["W"]


class BuggyAffine(Affine):
    """db summed over the wrong axis' worth of samples: only the bias gradient is wrong."""

    def backward(self, dout):
        dx = super().backward(dout)
        self.db = self.db * 0.5
        return dx


def test_report_names_the_wrong_tensor_only(rng):
    layer = BuggyAffine(rng.standard_normal((4, 3)), rng.standard_normal(3))
    with pytest.raises(GradientCheckError, match="failed for b:") as info:
        check_layer(layer, rng.standard_normal((5, 4)), rng=rng)
    report = info.value.report
    assert [t.name for t in report.tensors] == ["x", "W", "b"]
    assert report["x"].ok and report["W"].ok and not report["b"].ok
    assert report["x"].verdict == "happy"
    assert report["b"].verdict == "wrong"
    table = str(report).splitlines()
    assert table[0].split()[:2] == ["tensor", "shape"]
    assert any(line.startswith("b ") and "wrong" in line for line in table)


def test_no_raise_returns_failing_report(rng):
    report = check_layer(BuggySigmoid(), rng.standard_normal(5), rng=rng, raise_on_failure=False)
    assert not report.ok


def test_transposed_weight_in_backward_is_caught(rng):
    # dx = dout @ w instead of dout @ w.T: same shapes for a square w, wrong numbers.
    class SwappedMatMul(F.MatMul):
        def backward(self, dout):
            _, dw = super().backward(dout)
            return dout @ self.w, dw

    w = rng.standard_normal((3, 3))
    with pytest.raises(GradientCheckError, match="failed for x0:"):
        check_layer(SwappedMatMul(), rng.standard_normal((2, 3)), w, rng=rng)


def test_relu_kink_within_h_is_detected_and_excluded():
    x = np.array([0.5, -1.0, 3e-6, 2.0, -4e-6])
    report = check_function(F.relu, x)
    assert report.ok
    crossings = report["x0"].kink_crossings
    assert [index for index, _ in crossings] == [(2,), (4,)]
    probe_name, unit = crossings[0][1][0]
    assert probe_name.startswith("Relu") and unit == (2,)
    assert "across a kink" in str(report) and "excluded" in str(report)


def test_kink_excluded_for_book_layer_too():
    report = check_layer(Relu(), np.array([[1.0, -2e-6], [0.3, -0.7]]))
    assert report.ok
    assert [index for index, _ in report["x"].kink_crossings] == [(0, 1)]


def test_without_the_kink_probe_the_same_input_fails():
    x = np.array([0.5, -1.0, 3e-6, 2.0])
    dout = np.array([1.0, -2.0, 0.7, 3.0])
    relu = Relu()
    relu.forward(x)
    analytic = {"x": relu.backward(dout)}
    report = compare(
        lambda: float((relu.forward(x) * dout).sum()), {"x": x}, analytic, raise_on_failure=False
    )
    assert not report.ok  # the numerical derivative at the kink is about half of dout
    assert report["x"].worst_index == (2,)


def test_kink_in_a_deeper_node_is_traced_back(rng):
    # The kink sits in a relu after a matmul; perturbing W moves the relu input across 0.
    x = np.array([[1.0, 2.0]])
    W = np.array([[1.0, 2e-6], [0.5, -1e-6]])  # unit 1 input: 1 * 2e-6 + 2 * -1e-6 = 0
    report = check_function(lambda x, W: F.relu(x @ W), x, W, rng=rng)
    assert report.ok
    assert [index for index, _ in report["x1"].kink_crossings] == [(0, 1), (1, 1)]
    assert [index for index, _ in report["x0"].kink_crossings] == [(0, 0), (0, 1)]


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_low_precision_inputs_are_refused(dtype, rng):
    x = rng.standard_normal((2, 3)).astype(dtype)
    with pytest.raises(TypeError, match="float64"):
        check_function(F.exp, x)
    with pytest.raises(TypeError, match="float64"):
        check_layer(Sigmoid(), x)


def test_compare_validates_its_arguments():
    x = np.ones(3)
    with pytest.raises(ValueError, match="no analytic gradient"):
        compare(lambda: 0.0, {"x": x}, {})
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        compare(lambda: 0.0, {"x": x}, {"x": np.ones(2)})


def test_compare_handles_non_contiguous_parameters(rng):
    base = rng.standard_normal((4, 3))
    W = base.T  # a transposed view: x.reshape(-1) would be a copy and perturb nothing
    report = compare(lambda: float((W**3).sum()), {"W": W}, {"W": 3 * W**2})
    assert report.ok and report["W"].rel_error < 1e-8
    assert_array_equal(W, base.T)


def test_check_layer_leaves_layer_and_inputs_as_the_caller_made_them(rng):
    x = rng.standard_normal((3, 4))
    W, b = rng.standard_normal((4, 2)), rng.standard_normal(2)
    saved = x.copy(), W.copy(), b.copy()
    layer = Affine(W, b)
    check_layer(layer, x, rng=rng)
    for a, s in zip((x, W, b), saved):
        assert_array_equal(a, s)
    dout = rng.standard_normal((3, 2))
    assert_allclose(layer.backward(dout), dout @ W.T, rtol=1e-14)
    assert_allclose(layer.dW, x.T @ dout, rtol=1e-14)


# ----------------------------------------------------------------------------- TwoLayerNet


def test_two_layer_net_numerical_matches_backprop(rng):
    net = TwoLayerNet(784, 10, 10, weight_init_std=0.1, rng=rng)
    for b in ("b1", "b2"):
        net.params[b][...] = 0.1 * rng.standard_normal(net.params[b].shape)
    x = rng.random((3, 784))
    t = np.array([3, 7, 1])

    numeric = net.numerical_gradient(x, t)
    backprop = net.gradient(x, t)
    for key in ("W1", "b1", "W2", "b2"):
        assert numeric[key].shape == backprop[key].shape
        diff = np.mean(np.abs(numeric[key] - backprop[key]))
        assert diff < 1e-9, f"{key}: mean |numerical - backprop| = {diff:.3e}"

    # The same through compare(), with the ReLU's mask as the kink probe.
    relu = net.layers["Relu1"]
    report = compare(
        lambda: net.loss(x, t),
        net.params,
        backprop,
        kink_probe=lambda: [("Relu1", relu.kink_state().copy())],
    )
    assert report.ok
    assert {r.name for r in report.tensors} == {"W1", "b1", "W2", "b2"}
    assert all(r.rel_error < 1e-7 for r in report.tensors), str(report)


def test_check_double_backward_passes_for_correct_second_derivatives(rng):
    report = check_double_backward(
        lambda x, w: F.tanh(x @ w) * x.sum(),
        rng.standard_normal((2, 3)),
        rng.standard_normal((3, 3)),
    )
    assert report.ok and [t.name for t in report.tensors] == ["x0", "x1"]
    assert max(t.rel_error for t in report.tensors) < 1e-8


def test_check_double_backward_of_a_linear_function_is_zero_and_passes(rng):
    # grad does not depend on x: the second derivative is exactly zero on both sides.
    report = check_double_backward(lambda x: 3.0 * x + 1.0, rng.standard_normal(4))
    assert report["x0"].max_abs_error < 1e-9


class _CubeWithFrozenSquare(Function):
    """x ** 3 whose backward reads a saved x * x: right first order, no second order."""

    differentiable_backward = True

    def forward(self, x):
        self.x2 = x * x
        return x * self.x2

    def backward(self, dout):
        return 3.0 * dout * self.x2


def test_check_double_backward_catches_a_backward_that_is_not_differentiated(rng):
    x = rng.uniform(0.5, 1.5, 3)
    check_function(lambda t: _CubeWithFrozenSquare()(t), x)  # first order is right
    with pytest.raises(GradientCheckError, match="x0"):
        check_double_backward(lambda t: _CubeWithFrozenSquare()(t), x)


def test_check_double_backward_refuses_inputs_without_floats():
    with pytest.raises(TypeError, match="float64"):
        check_double_backward(lambda x: x, np.array([1, 2]))
