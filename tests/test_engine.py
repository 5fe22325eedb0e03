"""The autograd engine: the seeds' Tensor examples, graph shapes (fan-out, diamond,
generations), deep chains, no_grad, retained and accumulated gradients, higher-order
derivatives, memory (no cycles), and Tensor/ndarray interplay."""

from __future__ import annotations

import gc
import math
import sys
import weakref

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import chainrule
from chainrule import Tensor, no_grad
from chainrule import functions as F
from chainrule.gradcheck import numerical_gradient

# ----------------------------------------------------------------------------- seeds' examples


def test_add_then_multiply_circuit():
    x, y, z = Tensor(-2.0), Tensor(5.0), Tensor(-4.0)
    f = (x + y) * z
    f.backward()
    assert f.item() == -12.0
    assert (x.grad, y.grad, z.grad) == (-4.0, -4.0, 3.0)


def test_sigmoid_neuron():
    w = [Tensor(2.0), Tensor(-3.0), Tensor(-3.0)]
    x = [Tensor(-1.0), Tensor(-2.0)]
    f = F.sigmoid(w[0] * x[0] + w[1] * x[1] + w[2])
    f.backward()

    dot = 2.0 * -1.0 + -3.0 * -2.0 + -3.0
    s = 1.0 / (1.0 + math.exp(-dot))
    ddot = (1 - s) * s
    assert f.item() == pytest.approx(s, rel=1e-15)
    assert [t.grad.item() for t in w] == pytest.approx(
        [-1.0 * ddot, -2.0 * ddot, 1.0 * ddot], rel=1e-14
    )
    assert [t.grad.item() for t in x] == pytest.approx([2.0 * ddot, -3.0 * ddot], rel=1e-14)
    # The rounded numbers quoted in CS231n.
    assert f.item() == pytest.approx(0.7311, abs=1e-4)
    assert [t.grad.item() for t in w] == pytest.approx([-0.1966, -0.3932, 0.1966], abs=1e-4)
    assert [t.grad.item() for t in x] == pytest.approx([0.3932, -0.5898], abs=1e-4)


def _staged_by_hand(x: float, y: float) -> tuple[float, float, float]:
    """CS231n's staged computation, backpropagated by hand with `+=` where values fork."""
    sigy = 1.0 / (1 + math.exp(-y))
    num = x + sigy
    sigx = 1.0 / (1 + math.exp(-x))
    xpy = x + y
    xpysqr = xpy**2
    den = sigx + xpysqr
    invden = 1.0 / den
    f = num * invden

    dnum = invden
    dinvden = num
    dden = (-1.0 / (den**2)) * dinvden
    dsigx = 1 * dden
    dxpysqr = 1 * dden
    dxpy = (2 * xpy) * dxpysqr
    dx = 1 * dxpy
    dy = 1 * dxpy
    dx += ((1 - sigx) * sigx) * dsigx
    dx += 1 * dnum
    dsigy = 1 * dnum
    dy += ((1 - sigy) * sigy) * dsigy
    return f, dx, dy


def test_staged_computation_matches_hand_backprop_and_numerics():
    x, y = Tensor(3.0), Tensor(-4.0)
    f = (x + F.sigmoid(y)) / (F.sigmoid(x) + (x + y) ** 2)
    f.backward()

    f_ref, dx_ref, dy_ref = _staged_by_hand(3.0, -4.0)
    assert f.item() == pytest.approx(f_ref, rel=1e-14)
    assert x.grad.item() == pytest.approx(dx_ref, rel=1e-13)
    assert y.grad.item() == pytest.approx(dy_ref, rel=1e-13)

    h = 1e-6
    num_dx = (_staged_by_hand(3.0 + h, -4.0)[0] - _staged_by_hand(3.0 - h, -4.0)[0]) / (2 * h)
    num_dy = (_staged_by_hand(3.0, -4.0 + h)[0] - _staged_by_hand(3.0, -4.0 - h)[0]) / (2 * h)
    assert x.grad.item() == pytest.approx(num_dx, rel=1e-7)
    assert y.grad.item() == pytest.approx(num_dy, rel=1e-7)


def test_square_of_sum():
    x, y = Tensor(3.0), Tensor(-1.5)
    z = (x + y) ** 2
    z.backward()
    assert z.item() == 2.25
    assert x.grad == 3.0
    assert y.grad == 3.0


# ----------------------------------------------------------------------------- graph shapes


def test_fan_out_accumulates():
    x = Tensor(3.0)
    y = x + x
    y.backward()
    assert x.grad == 2.0

    x = Tensor(np.array([1.0, -2.0]))
    (x * x).backward(np.ones(2))
    assert_array_equal(x.grad, [2.0, -4.0])


def test_diamond_graph():
    x = Tensor(1.5)
    a = F.exp(x)
    b = x * 3.0
    y = a * b  # y = 3 x e^x
    y.backward()
    assert x.grad.item() == pytest.approx(3 * math.exp(1.5) * (1 + 1.5), rel=1e-14)


def test_generation_order():
    x = Tensor(2.0)
    a = x**2
    y = a**2 + a**2
    y.backward()
    assert y.item() == 32.0
    assert x.grad.item() == 64.0
    assert (x.generation, a.generation, y.generation) == (0, 1, 3)


def test_branches_of_different_depth_meet_correctly():
    # A long branch and a short one from the same value: a depth-first walk would pass a
    # partial gradient on to `a` before the long branch arrives.
    x = Tensor(0.5)
    a = F.tanh(x)
    long = a
    for _ in range(5):
        long = long * 1.5
    y = long + a
    y.backward()
    t = math.tanh(0.5)
    assert x.grad.item() == pytest.approx((1.5**5 + 1) * (1 - t * t), rel=1e-14)


def test_deep_chain_has_no_recursion_limit():
    n = 100_000
    assert n > sys.getrecursionlimit()
    x = Tensor(1.0)
    y = x
    for _ in range(n):
        y = y + 1.0
    y.backward()
    assert y.item() == n + 1
    assert x.grad == 1.0
    del y  # freeing the chain must not overflow the C stack either


def test_deep_chain_of_multiplies_gives_exact_power():
    x = Tensor(1.0)
    y = x
    for _ in range(10_000):
        y = -y
    y.backward()
    assert x.grad == 1.0


# ----------------------------------------------------------------------------- modes


def test_no_grad_builds_no_graph():
    x = Tensor(np.array([1.0, 2.0]))
    with no_grad():
        y = F.exp(x) * 3.0
        assert chainrule.Config.enable_backprop is False
    assert chainrule.Config.enable_backprop is True
    assert y.creator is None
    assert y.requires_grad is False
    assert_allclose(y.data, 3 * np.exp([1.0, 2.0]))
    with pytest.raises(RuntimeError, match="does not require gradients"):
        y.sum().backward()
    z = F.exp(x) * 3.0  # recording again after the block
    assert z.creator is not None and z.requires_grad


def test_no_grad_restores_setting_after_exception():
    with pytest.raises(KeyError), no_grad():
        raise KeyError("boom")
    assert chainrule.Config.enable_backprop is True


def test_ops_on_constants_do_not_require_grad():
    c = Tensor(np.array([1.0, 2.0]), requires_grad=False)
    y = c * 2.0
    assert y.creator is None and not y.requires_grad
    x = Tensor(np.array([3.0, 4.0]))
    z = (y * x).sum()
    z.backward()
    assert_array_equal(x.grad, [2.0, 4.0])
    assert c.grad is None and y.grad is None


def test_intermediate_grads_freed_by_default_and_kept_on_request():
    x = Tensor(2.0)
    a = x * 3.0
    y = a * a
    y.backward()
    assert a.grad is None and y.grad is None
    assert x.grad == 36.0  # y = 9 x**2

    x.cleargrad()
    y.backward(retain_grad=True)
    assert a.grad == 12.0
    assert y.grad == 1.0
    assert x.grad == 36.0


def test_backward_frees_each_intermediate_gradient_once_its_node_has_run():
    # A chain of 12 element-wise ops on 1 MiB arrays. Each intermediate gradient is needed only
    # until its own node has run, so the backward pass holds a few of them at a time; if they
    # were kept to the end, its memory would peak at 12 MiB of gradients.
    import tracemalloc

    mib = 2**20
    x = Tensor(np.ones(mib // 8))
    y = x
    for _ in range(12):
        y = y * 1.5
    dout = np.ones(y.shape)
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        y.backward(dout)
        peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    assert_allclose(x.grad, 1.5**12)
    assert peak < 4 * mib, f"backward peaked at {peak / mib:.1f} MiB"


def test_a_leaf_gradient_never_shares_memory_with_the_seed_or_another_gradient():
    x, w = Tensor(np.array([1.0, 2.0])), Tensor(np.array([3.0, 4.0]))
    a = w * 2.0
    y = a + x  # add passes its upstream gradient on unchanged, to both inputs
    dout = np.array([1.0, -1.0])
    y.backward(dout)
    assert_array_equal(x.grad, dout)
    assert_array_equal(w.grad, 2 * dout)
    assert not np.shares_memory(x.grad, dout)
    x.grad[0] = 99.0  # the user's gradient to change: the seed array stays as it was
    assert_array_equal(dout, [1.0, -1.0])

    p, q = Tensor(np.array([1.0])), Tensor(np.array([2.0]))
    s = p + q
    s.backward(np.array([5.0]))
    assert not np.shares_memory(p.grad, q.grad)


def test_a_leaf_gradient_is_not_changed_by_an_op_that_writes_into_its_dout():
    from chainrule.function import Function

    class BookRelu(Function):
        """The book's ReLU backward, which zeroes ``dout`` in place (chainrule's never does)."""

        def forward(self, x):
            self.mask = x <= 0
            return np.maximum(x, 0)

        def backward(self, dout):
            dout[self.mask] = 0
            return dout

    a, b = Tensor(np.array([1.0, -1.0, 2.0])), Tensor(np.array([-3.0, 4.0, -5.0]))
    y = BookRelu()(b)  # an intermediate ...
    ((y + a) * 3.0).backward(np.ones(3))  # ... that add hands the same array as leaf `a`
    assert_array_equal(a.grad, [3.0, 3.0, 3.0])
    assert_array_equal(b.grad, [0.0, 3.0, 0.0])


def test_backward_twice_accumulates_unless_cleared():
    x = Tensor(np.array([1.0, 2.0]))
    y = (x * x).sum()
    y.backward()
    y.backward()
    assert_array_equal(x.grad, [4.0, 8.0])
    x.cleargrad()
    assert x.grad is None
    y.backward()
    assert_array_equal(x.grad, [2.0, 4.0])


def test_backward_with_explicit_dout():
    x = Tensor(np.array([[1.0, 2.0], [3.0, 4.0]]))
    y = x * 2.0
    dout = np.array([[1.0, -1.0], [0.5, 2.0]])
    y.backward(dout)
    assert_array_equal(x.grad, 2 * dout)
    x.cleargrad()
    y.backward(Tensor(dout))
    assert_array_equal(x.grad, 2 * dout)


def test_backward_on_a_leaf_sets_its_grad():
    x = Tensor(5.0)
    x.backward()
    assert x.grad == 1.0


# ----------------------------------------------------------------------------- higher order


def test_second_derivative():
    x = Tensor(2.0)
    y = x**4 - 2 * x**2
    y.backward(create_graph=True)
    gx = x.grad
    assert isinstance(gx, Tensor)
    assert gx.item() == 24.0
    x.cleargrad()
    gx.backward()
    assert x.grad.item() == 44.0


def test_newtons_method_converges_to_one():
    x = Tensor(2.0)
    iterations = 0
    while abs(x.item() - 1.0) > 1e-12 and iterations < 10:
        y = x**4 - 2 * x**2
        x.cleargrad()
        y.backward(create_graph=True)
        gx = x.grad
        x.cleargrad()
        gx.backward()
        gx2 = x.grad
        x = Tensor(x.data - gx.data / gx2.data)
        iterations += 1
    assert x.item() == pytest.approx(1.0, abs=1e-12)
    assert iterations <= 10


def test_double_backprop():
    x = Tensor(2.0)
    y = x**2
    y.backward(create_graph=True)
    gx = x.grad
    x.cleargrad()
    z = gx**3 + y
    z.backward()
    assert x.grad.item() == 100.0


def test_second_derivative_through_sigmoid_tanh_and_matmul(rng):
    # d/dx of sum(g(x)) where g = d/dx sum(tanh(sigmoid(x @ W))): check it numerically.
    W = rng.standard_normal((3, 2))
    x0 = rng.standard_normal((2, 3))

    def grad_sum(x_arr: np.ndarray) -> Tensor:
        x = Tensor(x_arr)
        y = F.tanh(F.sigmoid(x @ Tensor(W))).sum()
        y.backward(create_graph=True)
        return x, x.grad

    x, gx = grad_sum(x0.copy())
    x.cleargrad()
    gx.sum().backward()
    numeric = numerical_gradient(lambda a: grad_sum(a)[1].data.sum(), x0.copy())
    assert_allclose(x.grad, numeric, rtol=1e-6, atol=1e-9)


class _FirstOrderOnly(chainrule.Function):
    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, dout):
        return 2.0 * dout * self.x


def test_create_graph_through_first_order_only_op_raises():
    x = Tensor(np.array([[1.0, 2.0], [0.5, -1.0]]))
    _FirstOrderOnly()(x).sum().backward()
    assert_array_equal(x.grad, 2 * x.data)
    with pytest.raises(NotImplementedError, match="_FirstOrderOnly: second-order"):
        _FirstOrderOnly()(x).sum().backward(create_graph=True)


# ----------------------------------------------------------------------------- memory


def test_graph_is_freed_by_reference_counting_alone(rng):
    W1, b1 = Tensor(rng.standard_normal((4, 5))), Tensor(np.zeros(5))
    W2, b2 = Tensor(rng.standard_normal((5, 3))), Tensor(np.zeros(3))
    x, t = rng.standard_normal((6, 4)), rng.integers(0, 3, 6)

    def step() -> tuple[Tensor, weakref.ref, weakref.ref]:
        hidden = F.relu(F.linear(x, W1, b1))
        loss = F.softmax_cross_entropy(F.linear(hidden, W2, b2), t)
        loss.backward()
        for p in (W1, b1, W2, b2):  # a training-like update
            p.data -= 0.1 * p.grad
            p.cleargrad()
        return loss, weakref.ref(hidden), weakref.ref(hidden.creator)

    gc.collect()
    gc.disable()
    try:
        loss, hidden_ref, relu_ref = step()
        assert hidden_ref() is not None and relu_ref() is not None  # kept alive by the loss
        del loss
        assert hidden_ref() is None, "the intermediate tensor outlived the loss: a cycle"
        assert relu_ref() is None, "the Function node outlived the loss: a cycle"
    finally:
        gc.enable()
    assert W1.creator is None and W1.grad is None


def test_output_does_not_keep_consumers_alive():
    x = Tensor(1.0)
    y = F.exp(x)
    z = y * 2.0
    z_creator = weakref.ref(z.creator)
    gc.disable()
    try:
        del z
        assert z_creator() is None
        assert y.creator is not None  # y's own history is still there
    finally:
        gc.enable()


# ----------------------------------------------------------------------------- Tensor basics


def test_numpy_interop():
    t = Tensor(np.array([[1.0, 2.0], [3.0, 4.0]]))
    a = np.asarray(t)
    assert isinstance(a, np.ndarray)
    assert_array_equal(a, [[1.0, 2.0], [3.0, 4.0]])
    assert np.asarray(t, dtype=np.float32).dtype == np.float32
    assert_array_equal(t.numpy(), a)
    assert t.shape == (2, 2) and t.ndim == 2 and t.size == 4 and len(t) == 2
    assert t.dtype == np.float64
    assert "Tensor(" in repr(t)


@pytest.mark.parametrize(
    ("expr", "dleft", "dright"),
    [
        (lambda a, t: a + t, lambda a, t: np.ones(2), lambda a, t: np.ones(2)),
        (lambda a, t: a - t, lambda a, t: np.ones(2), lambda a, t: -np.ones(2)),
        (lambda a, t: a * t, lambda a, t: t, lambda a, t: a),
        (lambda a, t: a / t, lambda a, t: 1 / t, lambda a, t: -a / t**2),
    ],
    ids=["add", "sub", "mul", "div"],
)
def test_ndarray_and_tensor_in_either_order(expr, dleft, dright):
    a, b = np.array([2.0, -3.0]), np.array([0.5, 4.0])
    t = Tensor(b.copy())
    left = expr(a, t)  # ndarray op Tensor: must defer to Tensor, not broadcast object arrays
    assert isinstance(left, Tensor)
    left.backward(np.ones(2))
    assert_allclose(t.grad, dright(a, b))
    t2 = Tensor(b.copy())
    right = expr(t2, a)
    assert isinstance(right, Tensor)
    right.backward(np.ones(2))
    assert_allclose(t2.grad, dleft(b, a))
    assert_allclose(left.data, expr(a, b))


def test_ndarray_matmul_tensor():
    a, w = np.array([[1.0, 2.0]]), Tensor(np.array([[3.0], [4.0]]))
    y = a @ w
    assert isinstance(y, Tensor) and y.item() == 11.0
    y.backward()
    assert_array_equal(w.grad, [[1.0], [2.0]])


def test_detach():
    x = Tensor(np.array([1.0, 2.0]))
    y = x * 3.0
    d = y.detach()
    assert d.creator is None and d.requires_grad is False
    assert np.shares_memory(d.data, y.data)
    z = (d * x).sum()  # the detached factor is a constant: dz/dx = d
    z.backward()
    assert_array_equal(x.grad, [3.0, 6.0])


def test_integer_tensors_cannot_require_grad():
    assert Tensor(np.arange(3)).requires_grad is False
    assert Tensor(np.array([True])).requires_grad is False
    assert Tensor(1.0).requires_grad is True
    assert Tensor(1).dtype == np.float64  # Python numbers become float64
    with pytest.raises(TypeError, match="floating-point"):
        Tensor(np.arange(3), name="labels", requires_grad=True)


def test_backward_needs_dout_for_non_scalar():
    y = Tensor(np.ones((2, 3))) * 2.0
    with pytest.raises(ValueError, match=r"shape \(2, 3\)"):
        y.backward()
    with pytest.raises(ValueError, match=r"\(3,\).*\(2, 3\)"):
        y.backward(np.ones(3))


def test_backward_on_a_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require gradients"):
        Tensor(np.arange(3)).backward(np.ones(3))


def test_comparisons_give_plain_arrays():
    t = Tensor(np.array([1.0, 2.0, 3.0]))
    assert_array_equal(t > 1.5, [False, True, True])
    assert_array_equal(t <= Tensor(np.array([1.0, 1.0, 5.0])), [True, False, True])


def test_float32_graph_keeps_float32(rng):
    x = Tensor(rng.standard_normal((3, 4)).astype(np.float32))
    W = Tensor(rng.standard_normal((4, 2)).astype(np.float32))
    loss = F.softmax_cross_entropy(F.linear(x, W), np.array([0, 1, 1]))
    assert loss.dtype == np.float32
    loss.backward()
    assert x.grad.dtype == np.float32 and W.grad.dtype == np.float32


def test_leaf_grads_are_writable_and_never_shared() -> None:
    a, b = Tensor(np.ones(3)), Tensor(np.ones(3))
    c = Tensor(np.ones((2, 3)))
    ((a + b).sum() + c.sum()).backward()
    for t in (a, b, c):
        assert t.grad.flags.writeable
    assert not np.shares_memory(a.grad, b.grad)
    a.grad *= 2  # the user's own array: modifying it touches nothing else
    np.testing.assert_array_equal(b.grad, np.ones(3))
    np.testing.assert_array_equal(c.grad, np.ones((2, 3)))


# ----------------------------------------------------------------------------- issue 12 bugs
# Each of these failed before the fix (found by comparing with PyTorch's autograd).


def _second_derivative(fn, x0):
    """d2/dx2 of fn at the scalar x0, via create_graph."""
    x = Tensor(np.array(x0))
    fn(x).backward(create_graph=True)
    g = x.grad
    x.cleargrad()
    if g.requires_grad:  # else the first derivative is a constant
        g.backward()
    return 0.0 if x.grad is None else float(x.grad)


def test_a_retained_intermediate_grad_does_not_leak_into_the_next_backward():
    x = Tensor(np.array(1.0))
    y = x * 3.0
    z = y * 1.0
    z.backward(retain_grad=True)
    assert float(x.grad) == 3.0 and float(y.grad) == 1.0
    z.backward()
    assert float(x.grad) == 6.0  # was 9.0: the second pass added into y's retained grad
    assert float(y.grad) == 1.0  # not retained this time: left as the first pass kept it


def test_retained_intermediate_grads_accumulate_like_leaves():
    x = Tensor(np.array(1.0))
    y = x * 3.0
    z = y * 2.0
    z.backward(retain_grad=True)
    z.backward(retain_grad=True)
    assert float(y.grad) == 4.0 and float(x.grad) == 12.0  # as PyTorch's retain_grad()


def test_create_graph_with_retain_grad_gives_the_right_second_derivative():
    x = Tensor(np.array(0.5))
    y = F.exp(x)
    y.backward(create_graph=True, retain_grad=True)
    g = x.grad
    x.cleargrad()
    g.backward()
    assert_allclose(float(x.grad), math.exp(0.5), rtol=1e-15)  # was 2 * e**0.5


def test_create_graph_through_a_value_used_twice():
    # (x + 1) * (x + 1) raised AttributeError: 'Tensor' object has no attribute 'copy'
    assert _second_derivative(lambda x: (x + 1) * (x + 1), 2.0) == 2.0
    x = Tensor(np.array(2.0))
    ((x + 1) * (x + 1)).backward(create_graph=True, retain_grad=True)
    assert float(x.grad) == 6.0


def test_pow_with_a_broadcasting_array_exponent_sums_back_to_x():
    x = Tensor(np.array(2.0))
    (x ** np.array([1.0, 2.0])).sum().backward()
    assert x.grad.shape == () and float(x.grad) == 5.0  # was [1., 4.]
    x = Tensor(np.array([[1.5], [2.0]]))
    (x ** np.array([1.0, 2.0, 3.0])).backward(np.ones((2, 3)))
    assert_allclose(x.grad, [[1 + 3.0 + 3 * 2.25], [1 + 4.0 + 12.0]])


@pytest.mark.parametrize(
    ("fn", "expected"),
    [
        (lambda x: x.detach() / x, 0.5),  # 2 c / x**3 with c = x = 2
        (lambda x: x * x.data, 0.0),
        (lambda x: x * Tensor(x.data), 0.0),  # two Tensors on one array
        (lambda x: Tensor(x.data) / x, 0.5),
        (lambda x: F.dropout(x, 0.0) * x, 2.0),
        (lambda x: F.dropout(x, 0.0) / x.detach() * F.dropout(x, 0.0), 1.0),
    ],
)
def test_second_order_when_two_inputs_share_one_array(fn, expected):
    assert _second_derivative(fn, 2.0) == expected


def test_second_order_through_eval_mode_dropout():
    with chainrule.eval_mode():
        assert _second_derivative(lambda x: F.dropout(x, 0.5) * x, 3.0) == 2.0
        assert _second_derivative(lambda x: x.detach() * F.dropout(x, 0.5) ** 2, 3.0) == 6.0


def test_pow_gradient_with_exponent_zero_is_zero_at_zero():
    x = Tensor(np.array([0.0, 1.0]))
    (x**0).sum().backward()
    assert_array_equal(x.grad, [0.0, 0.0])  # was [nan, 0.]
    x = Tensor(np.array([0.0, 2.0]))
    (x ** np.array([0.0, 3.0])).backward(np.ones(2))
    assert_array_equal(x.grad, [0.0, 12.0])


def test_backward_on_a_leaf_twice_accumulates():
    x = Tensor(np.array([1.0, 2.0]))
    seed = np.array([0.5, -1.0])
    x.backward(seed)
    x.backward(seed)
    assert_array_equal(x.grad, [1.0, -2.0])  # was overwritten: [0.5, -1.0]
    assert_array_equal(seed, [0.5, -1.0])
    x.grad[0] = 7.0
    assert seed[0] == 0.5  # the leaf's grad is its own array, not the caller's seed


def test_retained_intermediate_grads_are_writable_arrays_of_their_own():
    x = Tensor(np.ones(3))
    b = F.broadcast_to(x.sum(), (3,))  # Sum's backward broadcasts a 0-d dout: a read-only view
    y = b * 2.0
    s = x + F.sum(y)  # y's grad: Sum's broadcast view
    s.backward(np.ones(3), retain_grad=True)
    for t in (y, b, s):
        assert t.grad.flags.writeable and t.grad.flags.owndata, t
    t_grads = [id(t.grad) for t in (x, y, b, s)]
    assert len(set(t_grads)) == 4
    y.grad[0] = 99.0
    assert_array_equal(x.grad, [19.0, 19.0, 19.0])  # 1 + 3 * 2 * 3


def test_explain_hook_marks_plus_equals_only_at_forks():
    x = Tensor(np.array(2.0))
    y = Tensor(np.array(3.0))
    f = x * y
    f.backward()  # a first pass: x.grad exists before the second
    marks = []
    f.backward(on_node=lambda fn, dy, dxs, forked: marks.append(forked))
    assert marks == [(False, False)]  # no fork: nothing is `+=` in this pass
    marks.clear()
    (x * x).backward(on_node=lambda fn, dy, dxs, forked: marks.append(forked))
    assert marks == [(False, True)]


def test_accumulated_zero_d_gradients_stay_arrays():
    x = Tensor(2.0)
    y = x * x
    y.backward(retain_grad=True)
    y.backward(retain_grad=True)
    for g in (x.grad, y.grad):
        assert isinstance(g, np.ndarray) and g.shape == ()
    assert float(x.grad) == 8.0 and float(y.grad) == 2.0
