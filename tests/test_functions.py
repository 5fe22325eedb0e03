"""Every op in chainrule.functions: forward against NumPy, gradients against central
differences (float64, random upstream gradient), dout and inputs never mutated, and
hypothesis properties (random shapes, linearity in dout, broadcasting, softmax shift)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

import chainrule
from chainrule import Function, Tensor, eval_mode, train_mode
from chainrule import functions as F
from chainrule.gradcheck import check_function

RTOL = 1e-7

# ----------------------------------------------------------------------------- input makers


def normal(rng: np.random.Generator, shape: tuple[int, ...], scale: float = 1.0) -> np.ndarray:
    return np.asarray(scale * rng.standard_normal(shape), dtype=np.float64)


def avoiding(
    rng: np.random.Generator,
    shape: tuple[int, ...],
    points: tuple[float, ...] = (0.0,),
    margin: float = 0.1,
    low: float = -2.0,
    high: float = 2.0,
) -> np.ndarray:
    """Uniform values in [low, high], none within ``margin`` of a kink in ``points``."""
    x = np.asarray(rng.uniform(low, high, shape), dtype=np.float64)
    for _ in range(100):
        bad = np.zeros(x.shape, dtype=bool)
        for p in points:
            bad |= np.abs(x - p) <= margin
        if not bad.any():
            return x
        x[bad] = rng.uniform(low, high, int(bad.sum()))
    raise AssertionError("could not draw values away from the kinks")


def positive(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return np.asarray(rng.uniform(0.5, 2.5, shape), dtype=np.float64)


def separated(
    rng: np.random.Generator, sx: tuple[int, ...], sy: tuple[int, ...], margin: float = 0.1
) -> tuple[np.ndarray, np.ndarray]:
    """x and y whose broadcast elements all differ by more than ``margin`` (no ties)."""
    for _ in range(1000):
        x, y = normal(rng, sx), normal(rng, sy)
        if np.all(np.abs(np.subtract(x, y)) > margin):
            return x, y
    raise AssertionError("could not draw separated inputs")


def distinct(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Values spaced at least 0.1 apart (no ties for max/min)."""
    n = int(np.prod(shape))
    return (rng.permutation(n) * 0.1 - 0.05 * n + rng.uniform(0, 0.01, n)).reshape(shape)


def one_hot(labels: np.ndarray, classes: int) -> np.ndarray:
    return np.eye(classes)[labels]


Maker = Callable[[np.random.Generator], tuple[Callable[..., Tensor], tuple[Any, ...]]]
CASES: list[Any] = []


def case(name: str) -> Callable[[Maker], Maker]:
    def register(make: Maker) -> Maker:
        CASES.append(pytest.param(make, id=name))
        return make

    return register


def add_case(name: str, make: Maker) -> None:
    CASES.append(pytest.param(make, id=name))


# ----------------------------------------------------------------------------- binary ops

BINARY_SHAPES = [
    ((), ()),
    ((4, 3), (4, 3)),
    ((2, 5), (2, 5)),
    ((3, 3), (3, 1)),
    ((3, 3), (3,)),
    ((3, 3), ()),
    ((3, 1), (3, 3)),
    ((), (2, 3)),
    ((2, 1, 3), (4, 1)),
]


def _binary(op: Callable[..., Tensor], sx: tuple, sy: tuple, kind: str) -> Maker:
    def make(rng: np.random.Generator) -> tuple[Callable[..., Tensor], tuple[Any, ...]]:
        if kind == "div":
            x = normal(rng, sx)
            y = avoiding(rng, sy, margin=0.5)
        elif kind == "gate":
            x, y = separated(rng, sx, sy)
        else:
            x, y = normal(rng, sx), normal(rng, sy)
        return op, (x, y)

    return make


def _where(sx: tuple, sy: tuple) -> Maker:
    def make(rng: np.random.Generator) -> tuple[Callable[..., Tensor], tuple[Any, ...]]:
        cond = rng.random(np.broadcast_shapes(sx, sy)) < 0.5
        return (lambda x, y: F.where(cond, x, y)), (normal(rng, sx), normal(rng, sy))

    return make


for _sx, _sy in BINARY_SHAPES:
    _tag = f"{_sx}+{_sy}"
    add_case(f"add{_tag}", _binary(F.add, _sx, _sy, "plain"))
    add_case(f"sub{_tag}", _binary(F.sub, _sx, _sy, "plain"))
    add_case(f"mul{_tag}", _binary(F.mul, _sx, _sy, "plain"))
    add_case(f"div{_tag}", _binary(F.div, _sx, _sy, "div"))
    add_case(f"maximum{_tag}", _binary(F.maximum, _sx, _sy, "gate"))
    add_case(f"minimum{_tag}", _binary(F.minimum, _sx, _sy, "gate"))
    add_case(f"where{_tag}", _where(_sx, _sy))

# The Tensor operators, including the reflected ones with a constant on the left.
add_case("op-radd", lambda rng: ((lambda x: 2.5 + x), (normal(rng, (2, 3)),)))
add_case("op-rsub", lambda rng: ((lambda x: 2.5 - x), (normal(rng, (2, 3)),)))
add_case("op-rdiv", lambda rng: ((lambda x: 2.5 / x), (avoiding(rng, (2, 3), margin=0.5),)))


@case("op-rmul-ndarray")
def _rmul(rng):
    c = normal(rng, (3,))  # drawn once: the function must be the same at every evaluation
    return (lambda x: c * x), (normal(rng, (2, 3)),)


@case("op-rmatmul-ndarray")
def _rmatmul(rng):
    c = normal(rng, (2, 3))
    return (lambda w: c @ w), (normal(rng, (3, 4)),)


add_case("op-neg", lambda rng: ((lambda x: -x), (normal(rng, (2, 3)),)))
add_case("op-mixed", lambda rng: ((lambda x, y: (x - y) * x / (y * y + 1.0)), (
    normal(rng, (3, 2)), normal(rng, (2,)))))  # fmt: skip

# ----------------------------------------------------------------------------- unary ops

UNARY_SHAPES = [(), (4, 3), (2, 5), (2, 3, 2)]
UNARY = {
    "exp": (F.exp, normal),
    "log": (F.log, positive),
    "sqrt": (F.sqrt, positive),
    "abs": (F.abs, avoiding),
    "sigmoid": (F.sigmoid, lambda rng, s: normal(rng, s, 2.0)),
    "relu": (F.relu, avoiding),
    "tanh": (F.tanh, normal),
    "leaky_relu": (F.leaky_relu, avoiding),
    "leaky_relu0.2": (lambda x: F.leaky_relu(x, 0.2), avoiding),
    "neg": (F.neg, normal),
    "pow2": (lambda x: F.pow(x, 2), normal),
    "pow3": (lambda x: x**3, normal),
    "pow0.5": (lambda x: x**0.5, positive),
    "pow-1.5": (lambda x: x**-1.5, positive),
    "clip": (lambda x: F.clip(x, -1.0, 1.0), lambda r, s: avoiding(r, s, (-1.0, 1.0))),
    "clip-low": (lambda x: F.clip(x, low=0.5), lambda r, s: avoiding(r, s, (0.5,))),
    "clip-high": (lambda x: F.clip(x, high=-0.5), lambda r, s: avoiding(r, s, (-0.5,))),
    "sum_to": (lambda x: F.sum_to(x, (1,) * (x.ndim - 1) + (x.shape[-1],)) if x.ndim else x * 1.0,
               normal),
    "broadcast_to": (lambda x: F.broadcast_to(x, (2, *x.shape)), normal),
}  # fmt: skip


def _unary(fn: Callable[..., Tensor], gen: Callable[..., np.ndarray], shape: tuple) -> Maker:
    return lambda rng: (fn, (gen(rng, shape),))


for _name, (_fn, _gen) in UNARY.items():
    for _shape in UNARY_SHAPES:
        add_case(f"{_name}{_shape}", _unary(_fn, _gen, _shape))

# ----------------------------------------------------------------------------- reductions

for _red in ("sum", "mean", "max", "min"):
    for _axis in (None, 0, 1, (0, 1), -1):
        for _keep in (False, True):
            add_case(
                f"{_red}-axis{_axis}-keep{_keep}",
                (lambda red, axis, keep: lambda rng: (
                    (lambda x: getattr(F, red)(x, axis, keep)), (distinct(rng, (3, 4)),)
                ))(_red, _axis, _keep),
            )  # fmt: skip
add_case("sum-3d-axis(0,2)", lambda rng: ((lambda x: x.sum((0, 2))), (normal(rng, (2, 3, 2)),)))
add_case("max-3d-axis(2,0)", lambda rng: ((lambda x: x.max((2, 0))), (distinct(rng, (2, 3, 2)),)))
add_case("mean-method", lambda rng: ((lambda x: x.mean(axis=1)), (normal(rng, (2, 5)),)))
add_case("min-scalar", lambda rng: ((lambda x: x.min()), (normal(rng, ()),)))

# ----------------------------------------------------------------------------- shape ops

add_case("reshape", lambda rng: ((lambda x: F.reshape(x, (3, 4))), (normal(rng, (2, 6)),)))
add_case("reshape-flat", lambda rng: ((lambda x: x.reshape(-1)), (normal(rng, (2, 3, 2)),)))
add_case("reshape-varargs", lambda rng: ((lambda x: x.reshape(3, 2, 2)), (normal(rng, (12,)),)))
add_case("transpose-T", lambda rng: ((lambda x: x.T), (normal(rng, (2, 3)),)))
for _axes in [(1, 0, 2), (2, 0, 1), (1, 2, 0), (-1, 0, 1), (0, -1, -2)]:
    add_case(
        f"transpose{_axes}",
        (lambda axes: lambda rng: ((lambda x: F.transpose(x, axes)), (normal(rng, (2, 3, 4)),)))(
            _axes
        ),
    )
add_case("transpose-method", lambda rng: ((lambda x: x.transpose(2, 0, 1)), (
    normal(rng, (2, 3, 4)),)))  # fmt: skip
GETITEM_INDICES = {
    "slice": (slice(1, None), slice(None, None, 2)),
    "int": 1,
    "int-array-repeats": np.array([0, 2, 0, 0, 3]),
    "pairs-repeats": (np.array([0, 1, 1, 1]), np.array([2, 0, 0, 0])),
    "bool-mask": np.array([True, False, True, True]),
    "ellipsis": (Ellipsis, 1),
    "negative": (-1, slice(None, -1)),
}
for _iname, _index in GETITEM_INDICES.items():
    add_case(
        f"get_item-{_iname}",
        (lambda index: lambda rng: ((lambda x: x[index]), (normal(rng, (4, 3)),)))(_index),
    )
add_case("get_item-tensor-index", lambda rng: (
    (lambda x: F.get_item(x, Tensor(np.array([1, 1, 0])))), (normal(rng, (3, 2)),)))  # fmt: skip
add_case("concatenate-axis0", lambda rng: ((lambda a, b, c: F.concatenate([a, b, c])), (
    normal(rng, (2, 3)), normal(rng, (1, 3)), normal(rng, (3, 3)))))  # fmt: skip
add_case("concatenate-axis1", lambda rng: ((lambda a, b: F.concatenate([a, b], axis=1)), (
    normal(rng, (2, 1)), normal(rng, (2, 3)))))  # fmt: skip
add_case("concatenate-axis-1", lambda rng: ((lambda a, b: F.concatenate((a, b), axis=-1)), (
    normal(rng, (2, 2, 1)), normal(rng, (2, 2, 2)))))  # fmt: skip
for _ax in (0, 1, -1):
    add_case(
        f"stack-axis{_ax}",
        (lambda ax: lambda rng: ((lambda a, b, c: F.stack([a, b, c], axis=ax)), (
            normal(rng, (2, 3)), normal(rng, (2, 3)), normal(rng, (2, 3)))))(_ax),
    )  # fmt: skip

# ----------------------------------------------------------------------------- linear algebra

for _sa, _sb in [((2, 3), (3, 4)), ((4, 2), (2, 3)), ((1, 3), (3, 1)), ((3, 1), (1, 3))]:
    add_case(
        f"matmul{_sa}@{_sb}",
        (lambda sa, sb: lambda rng: (F.matmul, (normal(rng, sa), normal(rng, sb))))(_sa, _sb),
    )
add_case("linear-nd", lambda rng: (F.linear, (
    normal(rng, (4, 2, 3)), normal(rng, (6, 5)), normal(rng, (5,)))))  # fmt: skip
add_case("linear-2d", lambda rng: (F.linear, (
    normal(rng, (3, 4)), normal(rng, (4, 2)), normal(rng, (2,)))))  # fmt: skip
add_case("linear-no-bias", lambda rng: (F.linear, (normal(rng, (3, 5)), normal(rng, (5, 2)))))
add_case("linear-one-sample", lambda rng: (F.linear, (
    normal(rng, (1, 4)), normal(rng, (4, 3)), normal(rng, (3,)))))  # fmt: skip

# ----------------------------------------------------------------------------- losses

for _s in [(3, 4), (5,), (1, 4), (2, 3, 4)]:
    add_case(f"softmax{_s}", (lambda s: lambda rng: (F.softmax, (normal(rng, s),)))(_s))
    add_case(f"log_softmax{_s}", (lambda s: lambda rng: (F.log_softmax, (normal(rng, s),)))(_s))


@case("softmax_cross_entropy-labels")
def _sce_labels(rng):
    t = np.array([0, 3, 1])
    return (lambda x: F.softmax_cross_entropy(x, t)), (normal(rng, (3, 4)),)


@case("softmax_cross_entropy-onehot")
def _sce_onehot(rng):
    t = one_hot(np.array([2, 0, 1, 2]), 3)
    return (lambda x: F.softmax_cross_entropy(x, t)), (normal(rng, (4, 3)),)


@case("softmax_cross_entropy-soft-targets")
def _sce_soft(rng):
    t = F.softmax(normal(rng, (2, 3))).data
    return (lambda x: F.softmax_cross_entropy(x, t)), (normal(rng, (2, 3)),)


@case("softmax_cross_entropy-one-sample")
def _sce_single(rng):
    return (lambda x: F.softmax_cross_entropy(x, np.array(2))), (normal(rng, (4,)),)


@case("softmax_cross_entropy-after-linear")
def _sce_linear(rng):
    t = np.array([1, 0])
    fn = lambda x, w, b: F.softmax_cross_entropy(F.linear(x, w, b), t)  # noqa: E731
    return fn, (normal(rng, (2, 3)), normal(rng, (3, 2)), normal(rng, (2,)))


@case("identity_with_loss")
def _iwl(rng):
    t = normal(rng, (3, 2))
    return (lambda x: F.identity_with_loss(x, t)), (normal(rng, (3, 2)),)


@case("identity_with_loss-1d")
def _iwl_1d(rng):
    t = normal(rng, (4,))
    return (lambda x: F.identity_with_loss(x, t)), (normal(rng, (4,)),)


@case("mean_squared_error")
def _mse(rng):
    return F.mean_squared_error, (normal(rng, (3, 2)), normal(rng, (3, 2)))


@case("mean_squared_error-broadcast-target")
def _mse_b(rng):
    return F.mean_squared_error, (normal(rng, (3, 2)), normal(rng, (2,)))


# ----------------------------------------------------------------------------- dropout


@case("dropout-train-fixed-rng")
def _dropout_train(rng):
    # A fresh generator per call: every evaluation of the numerical check draws the same mask,
    # so the function being differentiated is one fixed linear map.
    def fn(x):
        with train_mode():
            return F.Dropout(0.3, rng=np.random.default_rng(0))(x)

    return fn, (normal(rng, (4, 5)),)


@case("dropout-train-global-seed")
def _dropout_seed(rng):
    def fn(x):
        chainrule.seed(7)
        with train_mode():
            return F.dropout(x, 0.5) * 2.0

    return fn, (normal(rng, (3, 4)),)


# ----------------------------------------------------------------------------- composites


@case("composite-fanout")
def _fanout(rng):
    return (lambda x: x * x + F.exp(x) * F.sigmoid(x) - x / 3.0), (normal(rng, (2, 3)),)


@case("composite-mlp")
def _mlp(rng):
    def fn(x, w1, w2):
        return F.tanh(F.matmul(F.sigmoid(F.matmul(x, w1)), w2)).sum(axis=1) ** 2

    return fn, (normal(rng, (3, 4)), normal(rng, (4, 5)), normal(rng, (5, 2)))


# ============================================================================= the tests


def _fresh_inputs(inputs: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(np.array(x, copy=True) if isinstance(x, np.ndarray) else x for x in inputs)


@pytest.mark.parametrize("make", CASES)
def test_gradient_matches_central_differences(make: Maker, rng: np.random.Generator) -> None:
    fn, inputs = make(rng)
    report = check_function(fn, *inputs, rng=rng, rtol=RTOL)
    assert report.ok
    assert len(report.tensors) == len(inputs)
    for t in report.tensors:
        assert t.rel_error < RTOL, str(report)
        assert not t.kink_crossings, f"inputs were meant to stay away from kinks:\n{report}"


def _graph_nodes(y: Tensor) -> list[Function]:
    nodes, stack, seen = [], [y.creator], set()
    while stack:
        f = stack.pop()
        if f is None or id(f) in seen:
            continue
        seen.add(id(f))
        nodes.append(f)
        stack.extend(x.creator for x in f.inputs if isinstance(x, Tensor))
    return nodes


def _read_only(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.flags.writeable = False
    return a


@pytest.mark.parametrize("make", CASES)
def test_backward_never_mutates_dout_or_inputs(make: Maker, rng: np.random.Generator) -> None:
    fn, inputs = make(rng)
    # Read-only arrays make any in-place write fail loudly; the copies catch anything else.
    frozen = tuple(_read_only(x) if isinstance(x, np.ndarray) else x for x in inputs)
    y = fn(*(Tensor(x) for x in frozen))
    nodes = _graph_nodes(y)
    assert nodes, "every case builds at least one node"
    for node in nodes:
        out = node.output()
        dout = _read_only(rng.standard_normal(out.shape))
        kept = dout.copy()
        node.backward(dout)
        assert_array_equal(dout, kept, err_msg=f"{type(node).__name__}.backward changed dout")
    dout = _read_only(rng.standard_normal(y.shape))
    kept = dout.copy()
    y.backward(dout)
    assert_array_equal(dout, kept)
    for x, original in zip(frozen, inputs):
        if isinstance(x, np.ndarray):
            assert_array_equal(x, original)


# ----------------------------------------------------------------------------- forward oracle

NUMPY_BINARY = {
    "add": (F.add, np.add),
    "sub": (F.sub, np.subtract),
    "mul": (F.mul, np.multiply),
    "div": (F.div, np.divide),
    "maximum": (F.maximum, np.maximum),
    "minimum": (F.minimum, np.minimum),
}


@pytest.mark.parametrize("name", sorted(NUMPY_BINARY))
@pytest.mark.parametrize(("sx", "sy"), BINARY_SHAPES)
def test_binary_forward_matches_numpy(name, sx, sy, rng):
    ours, ref = NUMPY_BINARY[name]
    x, y = normal(rng, sx), avoiding(rng, sy, margin=0.5)
    out = ours(Tensor(x), Tensor(y))
    assert out.shape == np.broadcast_shapes(sx, sy)
    assert_array_equal(out.data, ref(x, y))


NUMPY_UNARY = {
    "exp": (F.exp, np.exp),
    "log": (F.log, np.log),
    "sqrt": (F.sqrt, np.sqrt),
    "abs": (F.abs, np.abs),
    "tanh": (F.tanh, np.tanh),
    "relu": (F.relu, lambda x: np.maximum(x, 0.0)),
    "leaky_relu": (F.leaky_relu, lambda x: np.where(x > 0, x, 0.01 * x)),
    "neg": (F.neg, np.negative),
    "sigmoid": (F.sigmoid, lambda x: 1 / (1 + np.exp(-x))),
    "clip": (lambda x: F.clip(x, -0.5, 0.7), lambda x: np.clip(x, -0.5, 0.7)),
}


@pytest.mark.parametrize("name", sorted(NUMPY_UNARY))
def test_unary_forward_matches_numpy(name, rng):
    ours, ref = NUMPY_UNARY[name]
    x = positive(rng, (3, 4)) if name in ("log", "sqrt") else normal(rng, (3, 4))
    assert_allclose(ours(Tensor(x)).data, ref(x), rtol=1e-15, atol=0)


@pytest.mark.parametrize("axis", [None, 0, 1, (0, 1), -1])
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("name", ["sum", "mean", "max", "min"])
def test_reductions_match_numpy(name, axis, keepdims, rng):
    x = normal(rng, (3, 4))
    out = getattr(F, name)(Tensor(x), axis, keepdims)
    ref = getattr(np, name)(x, axis=axis, keepdims=keepdims)
    assert out.shape == np.shape(ref)
    assert_allclose(out.data, ref, rtol=1e-15)


def test_softmax_rows_are_distributions(rng):
    y = F.softmax(Tensor(normal(rng, (4, 5), 3.0))).data
    assert np.all(y > 0)
    assert_allclose(y.sum(axis=1), 1.0, rtol=1e-15)
    assert_allclose(F.log_softmax(Tensor(np.log(y))).data, np.log(y), atol=1e-14)


def test_matmul_and_linear_forward(rng):
    x, w, b = normal(rng, (4, 2, 3)), normal(rng, (6, 5)), normal(rng, (5,))
    assert_allclose(F.linear(x, w, b).data, x.reshape(4, 6) @ w + b, rtol=1e-14)
    assert_allclose(F.linear(x, w).data, x.reshape(4, 6) @ w, rtol=1e-14)
    assert_allclose((Tensor(x[0]) @ Tensor(w[:3])).data, x[0] @ w[:3], rtol=1e-14)


# ----------------------------------------------------------------------------- specific rules


def test_get_item_repeated_indices_accumulate():
    x = Tensor(np.arange(4.0))
    y = x[np.array([0, 0, 2, 0])]
    y.backward(np.array([1.0, 10.0, 100.0, 1000.0]))
    assert_array_equal(x.grad, [1011.0, 0.0, 100.0, 0.0])


def test_maximum_tie_splits_dout_equally():
    x, y = Tensor(np.array([1.0, 2.0, 3.0])), Tensor(np.array([1.0, 5.0, 0.0]))
    F.maximum(x, y).backward(np.array([4.0, 4.0, 4.0]))
    assert_array_equal(x.grad, [2.0, 0.0, 4.0])
    assert_array_equal(y.grad, [2.0, 4.0, 0.0])
    x.cleargrad()
    y.cleargrad()
    F.minimum(x, y).backward(np.array([4.0, 4.0, 4.0]))
    assert_array_equal(x.grad, [2.0, 4.0, 0.0])
    assert_array_equal(y.grad, [2.0, 0.0, 4.0])


def test_max_reduction_tie_shares_dout():
    x = Tensor(np.array([[3.0, 1.0, 3.0], [0.0, 2.0, 1.0]]))
    x.max(axis=1).backward(np.array([6.0, 5.0]))
    assert_array_equal(x.grad, [[3.0, 0.0, 3.0], [0.0, 5.0, 0.0]])


def test_relu_and_abs_kink_conventions():
    x = Tensor(np.array([-1.0, 0.0, 2.0]))
    F.relu(x).backward(np.ones(3))
    assert_array_equal(x.grad, [0.0, 0.0, 1.0])
    x.cleargrad()
    F.abs(x).backward(np.ones(3))
    assert_array_equal(x.grad, [-1.0, 0.0, 1.0])


def test_clip_bounds_pass_gradient():
    x = Tensor(np.array([-2.0, -1.0, 0.0, 1.0, 2.0]))
    F.clip(x, -1.0, 1.0).backward(np.ones(5))
    assert_array_equal(x.grad, [0.0, 1.0, 1.0, 1.0, 0.0])


def test_dropout_mask_and_scale_in_train_mode():
    x = Tensor(np.ones((50, 40)))
    with train_mode():
        y = F.Dropout(0.3, rng=np.random.default_rng(0))(x)
    kept = y.data != 0
    assert 0.6 < kept.mean() < 0.8
    assert_allclose(y.data[kept], 1 / 0.7, rtol=1e-15)
    y.backward(np.full(y.shape, 2.0))
    assert_allclose(x.grad, np.where(kept, 2 / 0.7, 0.0), rtol=1e-15)


def test_dropout_is_identity_in_eval_mode(rng):
    x = normal(rng, (3, 4))
    with eval_mode():
        assert_array_equal(F.dropout(Tensor(x), 0.5).data, x)
        report = check_function(lambda t: F.dropout(t, 0.9), x, rng=rng)
    assert report["x0"].rel_error < RTOL


def test_dropout_float32_stays_float32():
    y = F.Dropout(0.5, rng=np.random.default_rng(0))(Tensor(np.ones(8, dtype=np.float32)))
    assert y.dtype == np.float32


def test_log_softmax_equals_log_of_softmax(rng):
    x = normal(rng, (3, 5), 4.0)
    a, b = Tensor(x), Tensor(x)
    fused, composed = F.log_softmax(a), F.log(F.softmax(b))
    assert_allclose(fused.data, composed.data, rtol=1e-13)
    dout = normal(rng, (3, 5))
    fused.backward(dout)
    composed.backward(dout)
    assert_allclose(a.grad, b.grad, rtol=1e-10, atol=1e-14)


def test_fused_cross_entropy_equals_composed(rng):
    x, t = normal(rng, (4, 3)), np.array([0, 2, 1, 1])
    a, b = Tensor(x), Tensor(x)
    fused = F.softmax_cross_entropy(a, t)
    composed = -(F.log_softmax(b) * one_hot(t, 3)).sum() / 4.0
    assert_allclose(fused.data, composed.data, rtol=1e-14)
    fused.backward()
    composed.backward()
    assert_allclose(a.grad, b.grad, rtol=1e-12, atol=1e-16)


# ============================================================================= hypothesis

finite = st.floats(-3, 3, allow_nan=False, allow_subnormal=False).filter(lambda v: abs(v) > 1e-3)
small_shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3)


def f64(shape: Any) -> st.SearchStrategy[np.ndarray]:
    return hnp.arrays(np.float64, shape, elements=finite)


HYPO_UNARY = {
    "exp": F.exp,
    "tanh": F.tanh,
    "sigmoid": F.sigmoid,
    "relu": F.relu,
    "abs": F.abs,
    "sum": lambda x: x.sum(),
    "softmax": lambda x: F.softmax(x) if x.ndim else x * 1.0,
}


@pytest.mark.parametrize("name", sorted(HYPO_UNARY))
@given(x=f64(small_shapes))
def test_property_unary_gradcheck_random_shapes(name, x):
    report = check_function(HYPO_UNARY[name], x)
    assert report.ok, str(report)


@pytest.mark.parametrize("name", ["add", "sub", "mul", "div"])
@given(data=st.data(), shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, max_side=3))
def test_property_binary_gradcheck_and_grad_shapes(name, data, shapes):
    sx, sy = shapes.input_shapes
    x = data.draw(f64(sx))
    y = data.draw(hnp.arrays(np.float64, sy, elements=st.floats(0.5, 3)))
    op = getattr(F, name)
    report = check_function(op, x, y)
    assert report.ok, str(report)
    tx, ty = Tensor(x), Tensor(y)
    out = op(tx, ty)
    assert out.shape == shapes.result_shape
    dout = np.ones(out.shape)
    out.backward(dout)
    assert tx.grad.shape == sx
    assert ty.grad.shape == sy
    if name == "add":  # every element of dout reaches each input exactly once
        assert np.sum(tx.grad) == pytest.approx(dout.sum())
        assert np.sum(ty.grad) == pytest.approx(dout.sum())


@pytest.mark.parametrize("name", ["maximum", "minimum"])
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, max_side=3), seed=st.integers(0, 9))
def test_property_gate_grad_shapes_conserve_dout(name, shapes, seed):
    rng = np.random.default_rng(seed)
    sx, sy = shapes.input_shapes
    tx, ty = Tensor(rng.integers(-2, 3, sx).astype(float)), Tensor(rng.integers(-2, 3, sy) * 1.0)
    out = getattr(F, name)(tx, ty)
    dout = rng.standard_normal(out.shape)
    out.backward(dout)
    assert tx.grad.shape == sx
    assert ty.grad.shape == sy
    # Ties split dout, so the gate hands on exactly what it received.
    assert np.sum(tx.grad) + np.sum(ty.grad) == pytest.approx(np.sum(dout), abs=1e-12)


def _by_hand(name: str, rng: np.random.Generator, n: int) -> tuple[Function, tuple]:
    x = rng.standard_normal((n, 3))
    ops: dict[str, tuple[Function, tuple]] = {
        "Mul": (F.Mul(), (x, rng.standard_normal(3))),
        "Add": (F.Add(), (x, rng.standard_normal((n, 1)))),
        "Div": (F.Div(), (x, rng.uniform(1, 2, (n, 3)))),
        "Sigmoid": (F.Sigmoid(), (x,)),
        "Relu": (F.Relu(), (x,)),
        "Tanh": (F.Tanh(), (x,)),
        "Softmax": (F.Softmax(), (x,)),
        "LogSoftmax": (F.LogSoftmax(), (x,)),
        "Linear": (F.Linear(), (x, rng.standard_normal((3, 2)), rng.standard_normal(2))),
        "MatMul": (F.MatMul(), (x, rng.standard_normal((3, 4)))),
        "Sum": (F.Sum(axis=0), (x,)),
        "Max": (F.Max(axis=1), (x,)),
        "Transpose": (F.Transpose((1, 0)), (x,)),
        "GetItem": (F.GetItem(np.array([0, 0, 1])), (x,)),
        "Maximum": (F.Maximum(), (x, rng.standard_normal(3))),
    }
    return ops[name]


@pytest.mark.parametrize(
    "name",
    ["Mul", "Add", "Div", "Sigmoid", "Relu", "Tanh", "Softmax", "LogSoftmax", "Linear",
     "MatMul", "Sum", "Max", "Transpose", "GetItem", "Maximum"],
)  # fmt: skip
@given(
    seed=st.integers(0, 2**16),
    n=st.integers(2, 4),
    a=st.floats(-5, 5, allow_subnormal=False),
    b=st.floats(-5, 5, allow_subnormal=False),
)
def test_property_backward_is_linear_in_dout(name, seed, n, a, b):
    rng = np.random.default_rng(seed)
    op, inputs = _by_hand(name, rng, n)
    out = np.asarray(op.forward(*inputs))
    d1, d2 = rng.standard_normal(out.shape), rng.standard_normal(out.shape)

    def grads(d: np.ndarray) -> list[np.ndarray]:
        g = op.backward(d)
        return [np.array(v, copy=True) for v in (g if isinstance(g, tuple) else (g,))]

    mixed = grads(a * d1 + b * d2)
    for got, g1, g2 in zip(mixed, grads(d1), grads(d2)):
        assert_allclose(got, a * g1 + b * g2, rtol=1e-9, atol=1e-12)


@given(
    x=hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, max_side=5),
                 elements=st.floats(-20, 20)),
    shift=st.floats(-500, 500),
)  # fmt: skip
def test_property_softmax_invariant_to_row_constant(x, shift):
    c = shift + np.arange(x.shape[0])[:, None]  # a different constant for each row
    assert_allclose(F.softmax(Tensor(x + c)).data, F.softmax(Tensor(x)).data, atol=1e-12)
    assert_allclose(
        F.log_softmax(Tensor(x + c)).data, F.log_softmax(Tensor(x)).data, rtol=1e-9, atol=1e-9
    )


# ----------------------------------------------------------------------------- bad input
# Each case raised a raw NumPy/Python error naming no op, or passed silently (issue 12).
def _affine():
    from chainrule.layers import Affine

    return Affine(np.ones((3, 2)), np.zeros(2))


@pytest.mark.parametrize(
    ("call", "kind", "pattern"),
    [
        (lambda: _affine().forward(None), TypeError, r"Affine: input 0 is None; expected numbers"),
        (lambda: _affine().forward(np.array([["a", "b", "c"]])), TypeError, r"Affine: input 0 is <U1 array of shape \(1, 3\)"),  # noqa: E501
        (lambda: _affine().forward(np.array([[1, 2, None]], dtype=object)), TypeError, r"Affine: input 0 is object array"),  # noqa: E501
        (lambda: __import__("chainrule.layers", fromlist=["Tanh"]).Tanh().forward(np.array(["a"])), TypeError, r"Tanh: input 0 is <U1 array"),  # noqa: E501
        (lambda: __import__("chainrule.layers", fromlist=["Sigmoid"]).Sigmoid().forward(np.array([True, False])), TypeError, r"Sigmoid: input 0 is bool array of shape \(2,\)"),  # noqa: E501
        (lambda: Tensor(np.ones((2, 2))) @ "ab", TypeError, r"MatMul: input 1 is str 'ab'"),
        (lambda: F.relu(None), TypeError, r"Relu: input 0 is None"),
        (lambda: F.sum(Tensor(np.ones(3)), axis=5), ValueError, r"Sum: axis 5 is out of range .* float64 array of shape \(3,\)"),  # noqa: E501
        (lambda: Tensor(np.ones(3))[10], IndexError, r"get_item: index 10 into shape \(3,\)"),
        (lambda: Tensor(np.ones(3)) + Tensor(np.ones(4)), ValueError, r"Add: operands could not be broadcast .* shape \(3,\), float64 array of shape \(4,\)"),  # noqa: E501
        (lambda: Tensor(np.ones(2)) + "a", TypeError, r"Add: input 1 is str 'a'"),
        (lambda: F.Dropout(0.5, rng="seed"), TypeError, r"Dropout: rng must be a numpy.random.Generator"),  # noqa: E501
        (lambda: Tensor(None), TypeError, r"Tensor: data must be numbers, got object"),
        (lambda: Tensor(np.array(["a"])), TypeError, r"Tensor: data must be numbers"),
    ],
)  # fmt: skip
def test_bad_input_names_the_op_and_what_was_wrong(call, kind, pattern):
    with pytest.raises(kind, match=pattern):
        call()


def test_affine_backward_with_a_dout_of_the_wrong_width():
    layer = _affine()
    layer.forward(np.ones((4, 3)))
    with pytest.raises(
        ValueError, match=r"Affine.backward: .* got dout float64 array of shape \(4, 5\)"
    ):
        layer.backward(np.ones((4, 5)))


def test_errors_an_op_raises_itself_pass_through_unchanged():
    with pytest.raises(ValueError, match=r"^matmul: shapes \(2, 3\) and \(2, 3\) do not align"):
        Tensor(np.ones((2, 3))) @ Tensor(np.ones((2, 3)))


@pytest.mark.parametrize(
    ("fn", "x", "expected"),
    [(F.log, 0.0, -np.inf), (F.log, -1.0, np.nan), (F.sqrt, -1.0, np.nan), (F.exp, 1000.0, np.inf)],
)
def test_outside_the_domain_ieee_values_with_a_warning_naming_the_op(fn, x, expected):
    from chainrule.functions.checks import NonFiniteWarning

    name = fn.__name__
    with pytest.warns(
        NonFiniteWarning, match=rf"^{name}: 1 finite input value\(s\) gave inf or NaN"
    ):
        y = fn(Tensor(np.array([x, 1.0])))
    assert_array_equal(y.data[:1], [expected])


def test_a_callers_errstate_is_honoured_outside_the_domain():
    with np.errstate(all="raise"), pytest.raises(FloatingPointError):
        F.log(Tensor(np.array([-1.0])))
    with np.errstate(all="ignore"):
        assert np.isnan(F.sqrt(Tensor(np.array([-1.0]))).data[0])  # no warning: pytest errors


def test_non_finite_inputs_stay_quiet_in_elementwise_ops():
    # NaN in, NaN out: reported where it enters a loss, not at every op on the way.
    y = F.exp(Tensor(np.array([np.nan, 1.0])))
    assert np.isnan(y.data[0])


@pytest.mark.parametrize(
    ("loss", "x", "t", "pattern"),
    [
        (F.softmax_cross_entropy, [[np.nan, 1.0]], [0], r"SoftmaxWithLoss: 1 of 2 scores are NaN or inf .*\[0, 0\]"),  # noqa: E501
        (F.softmax_cross_entropy, [[1.0, np.inf]], [0], r"SoftmaxWithLoss: 1 of 2 scores are NaN or inf"),  # noqa: E501
        (F.identity_with_loss, [np.nan, 1.0], [0.0, 1.0], r"IdentityWithLoss: 1 of 2 outputs are NaN"),  # noqa: E501
        (F.identity_with_loss, [0.0, 1.0], [0.0, np.inf], r"IdentityWithLoss: 1 of 2 targets are NaN"),  # noqa: E501
        (F.softmax_cross_entropy, [[0.0, 1.0]], [[-1.0, 2.0]], r"SoftmaxWithLoss: one-hot targets must not be negative"),  # noqa: E501
        (F.softmax_cross_entropy, [[0.0, 1.0]], [[0.5, 0.2]], r"SoftmaxWithLoss: one-hot target rows must sum to 1; row 0 sums to 0.7"),  # noqa: E501
        (F.softmax_cross_entropy, [[0.0, 1.0], [1.0, 0.0]], [[0.0, 1.0], [0.0, 0.0]], r"row 1 sums to 0.0"),  # noqa: E501
    ],
)  # fmt: skip
def test_losses_refuse_non_finite_values_and_targets_that_are_not_distributions(
    loss, x, t, pattern
):
    with pytest.raises((FloatingPointError, ValueError), match=pattern):
        loss(Tensor(np.array(x)), np.array(t))


def test_softmax_with_loss_refuses_complex_scores():
    from chainrule.layers import SoftmaxWithLoss

    with pytest.raises(
        TypeError,
        match="SoftmaxWithLoss: scores must be a real floating-point array, got complex128",
    ):
        SoftmaxWithLoss().forward(np.array([[0.0, 1.0j]]), np.array([1]))


def test_softmax_with_loss_accepts_labels_as_a_column():
    from chainrule.layers import SoftmaxWithLoss

    x = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, -1.0]])
    column, flat = SoftmaxWithLoss(), SoftmaxWithLoss()
    assert column.forward(x, np.array([[2], [0]])) == flat.forward(x, np.array([2, 0]))
    assert_array_equal(column.backward(), flat.backward())


def test_zero_d_gradients_are_arrays_that_print_as_numbers():
    x, y, z = Tensor(-2.0), Tensor(5.0), Tensor(-4.0)
    ((x + y) * z).backward()
    assert isinstance(x.grad, np.ndarray) and x.grad.shape == () and x.grad.flags.writeable
    assert str(x.grad) == "-4.0" and float(x.grad) == -4.0
    assert float(Tensor(3.0)) == 3.0
