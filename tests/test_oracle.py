"""An independent autodiff oracle: every op in ``chainrule.functions`` against PyTorch (CPU,
float64) — the forward value, the first derivatives under a random upstream gradient, and, for
ops that claim ``differentiable_backward``, Hessian-vector products by double backward. Random
shapes include broadcasting, fan-out (an input used twice) and 0-d values; inputs are kept away
from kinks (|x| >= 0.2 before relu/abs/clip) and ties (max, min, maximum). Then a few hundred
seeded random compositions of ops are compared the same way.

PyTorch is an optional test dependency (``pip install '.[oracle]'``); without it these tests
skip, visibly.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="the autodiff oracle needs PyTorch: pip install '.[oracle]'"
)
import torch.nn.functional as TF  # noqa: E402

import chainrule  # noqa: E402
from chainrule import Tensor  # noqa: E402
from chainrule import functions as F  # noqa: E402
from chainrule.function import Function  # noqa: E402

torch.set_num_threads(1)
RTOL, ATOL = 1e-9, 1e-11


# ----------------------------------------------------------------------------- the comparison
def _tensor_grads(xs: list[Tensor]) -> list[np.ndarray]:
    return [np.zeros(x.shape) if x.grad is None else np.asarray(x.grad, dtype=float) for x in xs]


def compare_with_torch(
    ours: Callable[..., Any],
    theirs: Callable[..., Any],
    inputs: list[np.ndarray],
    rng: np.random.Generator,
    second_order: bool = True,
    label: str = "",
) -> None:
    """Forward, first derivatives and Hessian-vector products of ``ours`` and ``theirs``."""
    xs = [Tensor(a.copy()) for a in inputs]
    y = ours(*xs)
    ts = [torch.tensor(a, requires_grad=True) for a in inputs]
    ty = theirs(*ts)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), RTOL, ATOL, err_msg=f"{label} forward")
    assert y.shape == tuple(ty.shape), label

    dout = rng.standard_normal(y.shape)
    y.backward(dout, create_graph=second_order)
    grads = [x.grad for x in xs]
    tgrads = torch.autograd.grad(
        ty, ts, torch.tensor(dout), create_graph=second_order, allow_unused=True
    )
    for i, (g, tg) in enumerate(zip(grads, tgrads)):
        expected = np.zeros(inputs[i].shape) if tg is None else tg.detach().numpy(force=True)
        got = np.zeros(inputs[i].shape) if g is None else np.asarray(g, dtype=float)
        np.testing.assert_allclose(got, expected, RTOL, ATOL, err_msg=f"{label} d/dx{i}")
    if not second_order:
        return

    vs = [rng.standard_normal(a.shape) for a in inputs]
    s: Any = 0.0
    for g, v in zip(grads, vs):
        if isinstance(g, Tensor):
            s = s + (g * v).sum()
    for x in xs:
        x.cleargrad()
    if isinstance(s, Tensor) and s.requires_grad:
        s.backward()
    ts_s = sum((tg * torch.tensor(v)).sum() for tg, v in zip(tgrads, vs) if tg is not None)
    if isinstance(ts_s, torch.Tensor) and ts_s.requires_grad:
        hvps = torch.autograd.grad(ts_s, ts, allow_unused=True)
    else:
        hvps = [None] * len(ts)
    for i, (x, h) in enumerate(zip(xs, hvps)):
        expected = np.zeros(inputs[i].shape) if h is None else h.detach().numpy(force=True)
        got = _tensor_grads([x])[0]
        np.testing.assert_allclose(got, expected, 1e-8, 1e-10, err_msg=f"{label} H v, x{i}")


# ----------------------------------------------------------------------------- inputs
def normal(rng, *shape):
    return rng.standard_normal(shape)


def away(rng, *shape):
    """|x| in [0.2, 2] with random signs: away from the kinks at 0."""
    return rng.uniform(0.2, 2.0, shape) * rng.choice([-1.0, 1.0], shape)


def positive(rng, *shape):
    return rng.uniform(0.3, 2.0, shape)


def _sum_to(t, shape):
    lead = t.ndim - len(shape)
    dims = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1)
    return t.sum(dim=dims, keepdim=True).reshape(shape) if dims else t


def _identity_loss_torch(x, t):
    n = x.shape[0] if x.ndim > 1 else 1
    return 0.5 * ((x - t) ** 2).sum() / n


_IDX = np.array([2, 0, 2, 1])
_SOFT = np.array([[0.2, 0.3, 0.5], [0.0, 1.0, 0.0]])
_T32 = np.random.default_rng(9).standard_normal((3, 2))


def tt(a: Any) -> Any:
    """A float64 torch tensor (torch.tensor of Python floats would be float32)."""
    return torch.tensor(a, dtype=torch.float64)


_MASK = np.array([[True, False, True], [False, False, True]])

# (class name, case id, ours, theirs, inputs(rng)); ours/theirs take the same inputs.
OPS: list[tuple[str, str, Callable, Callable, Callable]] = [
    (
        "Add",
        "bcast",
        lambda x, y: x + y,
        lambda x, y: x + y,
        lambda r: [normal(r, 2, 3), normal(r, 3)],
    ),
    (
        "Add",
        "0-d",
        lambda x, y: x + y * x,
        lambda x, y: x + y * x,
        lambda r: [normal(r), normal(r, 2)],
    ),
    (
        "Sub",
        "bcast",
        lambda x, y: (x - y) * x,
        lambda x, y: (x - y) * x,
        lambda r: [normal(r, 2, 1), normal(r, 1, 3)],
    ),
    (
        "Mul",
        "fan-out",
        lambda x, y: x * y * x,
        lambda x, y: x * y * x,
        lambda r: [normal(r, 4, 1), normal(r, 3)],
    ),
    (
        "Div",
        "bcast",
        lambda x, y: x / y,
        lambda x, y: x / y,
        lambda r: [normal(r, 2, 3), away(r, 2, 1)],
    ),
    ("Div", "0-d", lambda x, y: x / y / x, lambda x, y: x / y / x, lambda r: [away(r), away(r, 3)]),
    ("Neg", "", lambda x: -x * x, lambda x: -x * x, lambda r: [normal(r, 3)]),
    ("Pow", "scalar", lambda x: x**3.0, lambda x: x**3.0, lambda r: [normal(r, 2, 2)]),
    ("Pow", "fractional", lambda x: x**-1.5, lambda x: x**-1.5, lambda r: [positive(r, 3)]),
    (
        "Pow",
        "array c",
        lambda x: x ** np.array([0.5, 2.0, 3.0]),
        lambda x: x ** tt([0.5, 2.0, 3.0]),
        lambda r: [positive(r, 2, 1)],
    ),
    (
        "Pow",
        "0-d x",
        lambda x: x ** np.array([1.0, 2.0]),
        lambda x: x ** tt([1.0, 2.0]),
        lambda r: [positive(r)],
    ),
    (
        "SumTo",
        "",
        lambda x: F.sum_to(x * x, (1, 3)),
        lambda x: _sum_to(x * x, (1, 3)),
        lambda r: [normal(r, 2, 3)],
    ),
    (
        "BroadcastTo",
        "",
        lambda x: F.broadcast_to(x, (2, 3)) * x,
        lambda x: torch.broadcast_to(x, (2, 3)) * x,
        lambda r: [normal(r, 3)],
    ),
    ("Exp", "", F.exp, torch.exp, lambda r: [normal(r, 2, 3)]),
    ("Log", "", F.log, torch.log, lambda r: [positive(r, 4)]),
    ("Sqrt", "", F.sqrt, torch.sqrt, lambda r: [positive(r, 4)]),
    ("Abs", "", lambda x: F.abs(x) * x, lambda x: torch.abs(x) * x, lambda r: [away(r, 5)]),
    ("Sigmoid", "", F.sigmoid, torch.sigmoid, lambda r: [3 * normal(r, 2, 3)]),
    ("Tanh", "", F.tanh, torch.tanh, lambda r: [normal(r, 2, 3)]),
    ("Relu", "", lambda x: F.relu(x) * x, lambda x: torch.relu(x) * x, lambda r: [away(r, 6)]),
    (
        "LeakyRelu",
        "",
        lambda x: F.leaky_relu(x, 0.1) * x,
        lambda x: TF.leaky_relu(x, 0.1) * x,
        lambda r: [away(r, 6)],
    ),
    (
        "Maximum",
        "bcast",
        lambda x, y: F.maximum(x, y) * x,
        lambda x, y: torch.maximum(x, y) * x,
        lambda r: [away(r, 2, 3), away(r, 3) / 7],
    ),
    (
        "Minimum",
        "",
        lambda x, y: F.minimum(x, y) * y,
        lambda x, y: torch.minimum(x, y) * y,
        lambda r: [away(r, 4), away(r, 4) / 7],
    ),
    (
        "Where",
        "",
        lambda x, y: F.where(_MASK, x * x, y),
        lambda x, y: torch.where(torch.tensor(_MASK), x * x, y),
        lambda r: [normal(r, 2, 3), normal(r, 3)],
    ),
    (
        "Clip",
        "",
        lambda x: F.clip(x, -1.0, 1.0) * x,
        lambda x: torch.clamp(x, -1.0, 1.0) * x,
        lambda r: [np.array([-2.0, -0.5, 0.2, 0.7, 3.0])],
    ),
    ("Sum", "all", lambda x: F.sum(x * x), lambda x: (x * x).sum(), lambda r: [normal(r, 2, 3)]),
    (
        "Sum",
        "axis",
        lambda x: F.sum(x, axis=1, keepdims=True) * x,
        lambda x: x.sum(dim=1, keepdim=True) * x,
        lambda r: [normal(r, 2, 3)],
    ),
    (
        "Sum",
        "axes",
        lambda x: F.sum(x**2.0, axis=(0, 2)),
        lambda x: (x**2).sum(dim=(0, 2)),
        lambda r: [normal(r, 2, 3, 2)],
    ),
    (
        "Sum",
        "mean",
        lambda x: F.mean(x * x, axis=0),
        lambda x: (x * x).mean(dim=0),
        lambda r: [normal(r, 4, 2)],
    ),
    (
        "Max",
        "axis",
        lambda x: F.max(x, axis=0) ** 2.0,
        lambda x: torch.amax(x, dim=0) ** 2,
        lambda r: [normal(r, 3, 4)],
    ),
    ("Max", "all", lambda x: F.max(x * x), lambda x: torch.amax(x * x), lambda r: [normal(r, 5)]),
    (
        "Min",
        "keepdims",
        lambda x: F.min(x, axis=1, keepdims=True) * x,
        lambda x: torch.amin(x, dim=1, keepdim=True) * x,
        lambda r: [normal(r, 2, 4)],
    ),
    (
        "Reshape",
        "",
        lambda x: F.reshape(x, (3, 2)) @ x,
        lambda x: x.reshape(3, 2) @ x,
        lambda r: [normal(r, 2, 3)],
    ),
    ("Transpose", "", lambda x: F.transpose(x) @ x, lambda x: x.T @ x, lambda r: [normal(r, 2, 3)]),
    (
        "Transpose",
        "axes",
        lambda x: F.transpose(x, (2, 0, 1)) ** 2.0,
        lambda x: x.permute(2, 0, 1) ** 2,
        lambda r: [normal(r, 2, 3, 4)],
    ),
    (
        "GetItem",
        "repeated",
        lambda x: x[_IDX] ** 2.0,
        lambda x: x[torch.tensor(_IDX)] ** 2,
        lambda r: [normal(r, 3, 2)],
    ),
    (
        "GetItem",
        "slices",
        lambda x: x[1:, 0] * x[:-1, 1],
        lambda x: x[1:, 0] * x[:-1, 1],
        lambda r: [normal(r, 3, 2)],
    ),
    (
        "GetItem",
        "mask",
        lambda x: x[_MASK] ** 2.0,
        lambda x: x[torch.tensor(_MASK)] ** 2,
        lambda r: [normal(r, 2, 3)],
    ),
    (
        "ScatterAdd",
        "",
        lambda x: F.ScatterAdd(_IDX, (3,))(x * x),
        lambda x: torch.zeros(3, dtype=x.dtype).index_put(
            (torch.tensor(_IDX),), x * x, accumulate=True
        ),
        lambda r: [normal(r, 4)],
    ),
    (
        "Concatenate",
        "",
        lambda x, y: F.concatenate([x * y, y], axis=1) ** 2.0,
        lambda x, y: torch.cat([x * y, y], dim=1) ** 2,
        lambda r: [normal(r, 2, 1), normal(r, 2, 3)],
    ),
    (
        "Stack",
        "",
        lambda x, y: F.stack([x, x * y], axis=1) ** 2.0,
        lambda x, y: torch.stack([x, x * y], dim=1) ** 2,
        lambda r: [normal(r, 3), normal(r, 3)],
    ),
    (
        "MatMul",
        "",
        lambda x, w: F.matmul(x, w) * x.sum(),
        lambda x, w: (x @ w) * x.sum(),
        lambda r: [normal(r, 2, 3), normal(r, 3, 4)],
    ),
    (
        "Linear",
        "",
        lambda x, w, b: F.tanh(F.linear(x, w, b)),
        lambda x, w, b: torch.tanh(x.reshape(2, -1) @ w + b),
        lambda r: [normal(r, 2, 2, 2), normal(r, 4, 3), normal(r, 3)],
    ),
    ("Softmax", "", F.softmax, lambda x: torch.softmax(x, -1), lambda r: [normal(r, 2, 4)]),
    (
        "LogSoftmax",
        "",
        F.log_softmax,
        lambda x: torch.log_softmax(x, -1),
        lambda r: [normal(r, 2, 4)],
    ),
    (
        "LogSoftmax",
        "1-d",
        F.log_softmax,
        lambda x: torch.log_softmax(x, -1),
        lambda r: [normal(r, 5)],
    ),
    (
        "SoftmaxWithLoss",
        "labels",
        lambda x: F.softmax_cross_entropy(x, np.array([2, 0, 1])),
        lambda x: TF.cross_entropy(x, torch.tensor([2, 0, 1])),
        lambda r: [normal(r, 3, 4)],
    ),
    (
        "SoftmaxWithLoss",
        "soft",
        lambda x: F.softmax_cross_entropy(x * x, _SOFT),
        lambda x: TF.cross_entropy(x * x, tt(_SOFT)),
        lambda r: [normal(r, 2, 3)],
    ),
    (
        "SoftmaxWithLoss",
        "one sample",
        lambda x: F.softmax_cross_entropy(x, np.array(1)),
        lambda x: TF.cross_entropy(x, torch.tensor(1)),
        lambda r: [normal(r, 4)],
    ),
    (
        "IdentityWithLoss",
        "",
        lambda x: F.identity_with_loss(x * x, _T32),
        lambda x: _identity_loss_torch(x * x, tt(_T32)),
        lambda r: [normal(r, 3, 2)],
    ),
    (
        "IdentityWithLoss",
        "0-d",
        lambda x: F.identity_with_loss(x, np.array(0.5)),
        lambda x: _identity_loss_torch(x, tt(0.5)),
        lambda r: [normal(r)],
    ),
    (
        "IdentityWithLoss",
        "mse",
        lambda x, t: F.mean_squared_error(x, t),
        TF.mse_loss,
        lambda r: [normal(r, 3, 2), normal(r, 3, 2)],
    ),
    ("Dropout", "eval", lambda x: F.dropout(x, 0.5) * x, lambda x: x * x, lambda r: [normal(r, 4)]),
    (
        "Dropout",
        "ratio 0",
        lambda x: F.dropout(x, 0.0) * x,
        lambda x: x * x,
        lambda r: [normal(r, 4)],
    ),
]


def _bn_case(shape, train, momentum=0.9, eps=1e-5):
    """batch_norm against torch's, including the running statistics (per channel for 4-D)."""
    c = shape[1]

    def run(rng):
        x, g, b = normal(rng, *shape), normal(rng, c), normal(rng, c)
        mean0, var0 = normal(rng, c), positive(rng, c)
        state = F.BatchNormState(momentum=momentum, eps=eps, running_mean=mean0.copy(),
                                 running_var=var0.copy())  # fmt: skip
        tmean, tvar = torch.tensor(mean0), torch.tensor(var0)

        def ours(x, g, b):
            return F.batch_norm(x, g, b, state, train=train) ** 2.0

        def theirs(x, g, b):
            out = TF.batch_norm(
                x, tmean, tvar, g, b, training=train, momentum=1 - momentum, eps=eps
            )
            return out**2

        compare_with_torch(ours, theirs, [x, g, b], rng, label=f"batch_norm {shape} train={train}")
        return state, tmean, tvar, x

    return run


@pytest.mark.parametrize(
    ("ours", "theirs", "make"),
    [pytest.param(o, t, m, id=f"{n}-{c}" if c else n) for n, c, o, t, m in OPS],
)
def test_op_matches_torch(ours, theirs, make):
    rng = np.random.default_rng(0)
    with chainrule.eval_mode():  # dropout's cases; nothing else here depends on the mode
        for trial in range(3):
            compare_with_torch(ours, theirs, make(rng), rng, label=f"trial {trial}")


@pytest.mark.parametrize("shape", [(5, 3), (2, 3, 2, 2)])
@pytest.mark.parametrize("train", [True, False])
def test_batch_norm_matches_torch(shape, train):
    rng = np.random.default_rng(1)
    state, tmean, tvar, x = _bn_case(shape, train)(rng)
    # BatchNormState's docstring: momentum is the weight of the old value (PyTorch's
    # momentum=0.1 is 0.9 here); the running mean then follows PyTorch's exactly.
    np.testing.assert_allclose(state.running_mean, tmean.numpy(), RTOL, ATOL)
    if train:
        # ... while the running variance averages the *biased* batch variance (the book's
        # layer), where PyTorch blends in the unbiased one: they differ by exactly that.
        n = x.size // shape[1]
        axes = (0,) if x.ndim == 2 else (0, 2, 3)
        unbiased = x.var(axis=axes, ddof=1)
        np.testing.assert_allclose(state.running_var, tvar.numpy() - 0.1 * unbiased / n, RTOL)
    else:
        np.testing.assert_allclose(state.running_var, tvar.numpy(), RTOL)


def test_dropout_in_training_matches_torch_with_the_same_mask():
    rng = np.random.default_rng(2)
    x0 = normal(rng, 3, 4)
    op = F.Dropout(0.3, rng=np.random.default_rng(5))
    with chainrule.train_mode():
        op.forward(x0)
        mask = torch.tensor(op.scale)  # the kept units, scaled by 1 / (1 - ratio)

        def ours(x):
            op.rng = np.random.default_rng(5)
            return op(x) * x

        compare_with_torch(ours, lambda x: x * mask * x, [x0], rng)


# ----------------------------------------------------------------------------- conv and pools
def _second(cls: type) -> bool:
    return bool(cls.differentiable_backward)


@pytest.mark.parametrize(("stride", "pad"), [(1, 0), (2, 1)])
def test_conv2d_matches_torch(stride, pad):
    rng = np.random.default_rng(3)
    for bias in (True, False):
        inputs = [normal(rng, 2, 3, 5, 5), normal(rng, 4, 3, 3, 3)] + (
            [normal(rng, 4)] if bias else []
        )
        compare_with_torch(
            lambda *a: F.conv2d(*a, stride=stride, pad=pad),
            lambda *a: TF.conv2d(*a, stride=stride, padding=pad),
            inputs,
            rng,
            second_order=_second(F.Conv2d),
        )


@pytest.mark.parametrize(
    ("kernel", "stride", "pad"), [(2, None, 0), (3, 1, 1), (3, 3, 0), (2, 1, 1)]
)
def test_pools_match_torch(kernel, stride, pad):
    rng = np.random.default_rng(4)
    x = [rng.permutation(2 * 2 * 6 * 6).reshape(2, 2, 6, 6) / 10.0 - 3.0]  # no ties
    compare_with_torch(
        lambda a: F.max_pool2d(a, kernel, stride, pad) ** 2.0,
        lambda a: TF.max_pool2d(a, kernel, stride, pad) ** 2,
        x,
        rng,
        second_order=_second(F.MaxPool2d),
    )
    compare_with_torch(
        lambda a: F.avg_pool2d(a, kernel, stride, pad) ** 2.0,
        lambda a: TF.avg_pool2d(a, kernel, stride, pad) ** 2,
        x,
        rng,
        second_order=_second(F.AvgPool2d),
    )


def test_every_op_is_covered():
    ops = {
        name
        for name, cls in vars(F).items()
        if inspect.isclass(cls)
        and issubclass(cls, Function)
        and cls.__module__
        not in ("chainrule.functions.conv", "chainrule.functions.pool")  # public fns
    }
    covered = {name for name, *_ in OPS} | {"BatchNorm"}
    assert ops - covered == set()


# ----------------------------------------------------------------------------- compositions
_UNARY: list[tuple[str, Callable, Callable, Callable[[np.ndarray], bool]]] = [
    (
        "exp",
        lambda a: F.exp(a * 0.5),
        lambda a: torch.exp(a * 0.5),
        lambda v: bool(np.abs(v).max() < 20),
    ),
    ("log", F.log, torch.log, lambda v: bool(v.min() > 0.2)),
    ("sqrt", F.sqrt, torch.sqrt, lambda v: bool(v.min() > 0.2)),
    ("tanh", F.tanh, torch.tanh, lambda v: True),
    ("sigmoid", F.sigmoid, torch.sigmoid, lambda v: True),
    ("relu", F.relu, torch.relu, lambda v: bool(np.abs(v).min() > 1e-3)),
    ("abs", F.abs, torch.abs, lambda v: bool(np.abs(v).min() > 1e-3)),
    ("square", lambda a: a * a, lambda a: a * a, lambda v: bool(np.abs(v).max() < 1e3)),
    ("cube", lambda a: a**3.0, lambda a: a**3, lambda v: bool(np.abs(v).max() < 50)),
    ("neg", lambda a: -a, lambda a: -a, lambda v: True),
    ("softmax", F.softmax, lambda a: torch.softmax(a, -1), lambda v: v.ndim > 0),
    ("log_softmax", F.log_softmax, lambda a: torch.log_softmax(a, -1), lambda v: v.ndim > 0),
    (
        "sum_keep",
        lambda a: a.sum(axis=-1, keepdims=True),
        lambda a: a.sum(-1, keepdim=True),
        lambda v: v.ndim > 0,
    ),
    ("mean0", lambda a: a.mean(axis=0), lambda a: a.mean(0), lambda v: v.ndim > 1),
    (
        "max_keep",
        lambda a: a.max(axis=-1, keepdims=True),
        lambda a: torch.amax(a, -1, keepdim=True),
        lambda v: v.ndim > 0 and _no_ties(v),
    ),
    ("transpose", lambda a: a.T, lambda a: a.T, lambda v: v.ndim == 2),
    ("first_row", lambda a: a[0], lambda a: a[0], lambda v: v.ndim > 1),
]
_BINARY: list[tuple[str, Callable, Callable]] = [
    ("add", lambda a, b: a + b, lambda a, b: a + b),
    ("sub", lambda a, b: a - b, lambda a, b: a - b),
    ("mul", lambda a, b: a * b, lambda a, b: a * b),
    ("div", lambda a, b: a / b, lambda a, b: a / b),
    ("maximum", F.maximum, torch.maximum),
    ("matmul", lambda a, b: a @ b, lambda a, b: a @ b),
]


def _no_ties(v: np.ndarray) -> bool:
    s = np.sort(v, axis=-1)
    return v.shape[-1] < 2 or bool(np.diff(s, axis=-1).min() > 1e-6)


def _random_graph(rng: np.random.Generator) -> tuple[Callable, Callable, list[np.ndarray]]:
    """A random composition, built by choosing ops whose inputs are in their safe domain."""
    n, m = rng.integers(1, 4), rng.integers(1, 4)
    shapes = [(n, m), (m,), (), (m, n), (1, m)]
    inputs = [normal(rng, *shapes[i]) for i in rng.choice(len(shapes), rng.integers(1, 4))]
    steps: list[tuple[str, int, int]] = []  # (op, operand, operand) over the growing pool
    pool = [a for a in inputs]
    for _ in range(rng.integers(2, 7)):
        if rng.random() < 0.5:
            i = int(rng.integers(len(pool)))
            ok = [k for k, (*_, safe) in enumerate(_UNARY) if safe(pool[i])]
            k = int(rng.choice(ok))
            value = _run_unary(k, pool[i])
            steps.append(("u", k, i))
        else:
            i, j = (int(v) for v in rng.integers(len(pool), size=2))  # i == j: fan-out
            k = int(rng.integers(len(_BINARY)))
            value = _run_binary(k, pool[i], pool[j])
            if value is None:
                continue
            steps.append(("b", k, i * 1000 + j))
        pool.append(value)

    def build(lib: str) -> Callable:
        def fn(*xs):
            vals = list(xs)
            for kind, k, ij in steps:
                if kind == "u":
                    f = _UNARY[k][1 if lib == "ours" else 2]
                    vals.append(f(vals[ij]))
                else:
                    f = _BINARY[k][1 if lib == "ours" else 2]
                    vals.append(f(vals[ij // 1000], vals[ij % 1000]))
            return vals[-1]

        return fn

    return build("ours"), build("theirs"), inputs


def _run_unary(k: int, v: np.ndarray) -> np.ndarray:
    return np.asarray(_UNARY[k][1](Tensor(v)).data)


def _run_binary(k: int, a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    name = _BINARY[k][0]
    try:
        np.broadcast_shapes(a.shape, b.shape) if name != "matmul" else None
    except ValueError:
        return None
    if name == "matmul" and (a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]):
        return None
    if name == "div" and np.abs(b).min() < 0.2:
        return None
    if name == "maximum" and np.abs(a - b).min() < 1e-3:
        return None
    out = np.asarray(_BINARY[k][1](Tensor(a), Tensor(b)).data)
    return out if np.abs(out).max() < 1e4 else None


@pytest.mark.parametrize("block", range(10))
def test_random_compositions_match_torch(block):
    for seed in range(block * 30, block * 30 + 30):  # 300 graphs in all, each seeded
        rng = np.random.default_rng(seed)
        ours, theirs, inputs = _random_graph(rng)
        compare_with_torch(ours, theirs, inputs, rng, label=f"graph seed {seed}")
