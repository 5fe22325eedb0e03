"""Gradient checking: compare backprop's gradients with central differences, in float64.

The numerical side perturbs one element at a time by ``±h`` and measures the change in a scalar
loss. The analytic side is backprop with a *random* upstream gradient (an all-ones ``dout``
hides transposition and broadcasting bugs). The comparison, per tensor, reports

* the largest absolute difference and where it is (the worst index);
* the relative error ``max|a - n| / max(max|a|, max|n|)`` — CS231n's
  ``|a - n| / max(|a|, |n|)`` taken at the tensor's scale, so tiny entries whose numerical
  value is pure round-off do not dominate — with CS231n's verdict band;
* the elements whose ``±h`` perturbation moved some ReLU/max/abs/clip input across its kink.
  There the numerical derivative averages the two sides and means nothing; those elements are
  listed and left out of the verdict, rather than showing up as a mysterious large error.

>>> import numpy as np
>>> from chainrule.layers import Sigmoid
>>> report = check_layer(Sigmoid(), np.linspace(-2, 2, 6))
>>> report.ok
True
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

#: CS231n's bands for the relative error: (upper bound, verdict).
BANDS = (
    (1e-7, "happy"),
    (1e-4, "ok only with kinks"),
    (1e-2, "uncomfortable"),
    (np.inf, "wrong"),
)


def verdict(rel_error: float) -> str:
    """CS231n's reading of a relative error."""
    for bound, word in BANDS:
        if rel_error <= bound:
            return word
    return "wrong"  # NaN


def _central_differences(
    x: np.ndarray, f: Callable[[], float], h: float, probe: Callable[[], Any] | None = None
) -> Iterator[tuple[tuple[int, ...], float, Any, Any]]:
    """Perturb each element of ``x`` in place by ``+h`` and ``-h`` (restoring it exactly, even
    if ``f`` raises) and yield ``(index, derivative, probe after +h, probe after -h)``."""
    # Index x itself (not x.reshape(-1), a copy when x is not contiguous, e.g. transposed).
    for index in np.ndindex(x.shape):
        saved = x[index]
        try:
            x[index] = saved + h
            f_plus = float(f())
            side_plus = probe() if probe else None
            x[index] = saved - h
            f_minus = float(f())
            side_minus = probe() if probe else None
        finally:
            x[index] = saved
        yield index, (f_plus - f_minus) / (2 * h), side_plus, side_minus


def numerical_gradient(f: Callable[[Any], float], x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Central-difference gradient of the scalar ``f(x)`` with respect to the array ``x``.

    ``x`` is perturbed in place one element at a time and restored exactly (its values are
    unchanged on return, even if ``f`` raises). ``f`` receives ``x`` (the book's ``f(W)``
    convention; it may ignore it and read ``x`` through a closure).

    >>> numerical_gradient(lambda x: float((x ** 2).sum()), np.array([1.0, -2.0])).round(6)
    array([ 2., -4.])
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"numerical_gradient: x must be a NumPy array, got {type(x).__name__}")
    if x.dtype != np.float64:
        # x is perturbed in place: an integer array cannot hold x + h, and float32 rounds
        # h = 1e-5 away (2.0027 for 2). A float64 copy would not be the array f reads.
        raise TypeError(
            f"numerical_gradient: x must be float64 (got {x.dtype}); convert the array f reads "
            "with x.astype(np.float64) first"
        )
    grad = np.zeros(x.shape, dtype=np.float64)
    for index, derivative, _, _ in _central_differences(x, lambda: f(x), h):
        grad[index] = derivative
    return grad


@dataclasses.dataclass
class TensorReport:
    """How one tensor's analytic gradient compares with the numerical one."""

    name: str
    shape: tuple[int, ...]
    max_abs_error: float
    rel_error: float
    worst_index: tuple[int, ...] | None
    analytic_at_worst: float
    numerical_at_worst: float
    #: (index of this tensor's element, [(probe name, unit index), ...]) for kink crossings.
    kink_crossings: list[tuple[tuple[int, ...], list[tuple[str, tuple[int, ...]]]]]
    rtol: float

    @property
    def verdict(self) -> str:
        return verdict(self.rel_error)

    @property
    def ok(self) -> bool:
        return bool(self.rel_error <= self.rtol)

    def line(self) -> str:
        where = "-" if self.worst_index is None else str(list(self.worst_index))
        kinks = f"{len(self.kink_crossings)} crossed a kink" if self.kink_crossings else ""
        return (
            f"{self.name:<12} {self.shape!s:<14} {self.max_abs_error:>10.3e} "
            f"{self.rel_error:>10.3e}  {self.verdict:<18} {where:<12} {kinks}"
        )


@dataclasses.dataclass
class GradCheckReport:
    """The comparison for every tensor; ``str()`` prints it as a table."""

    tensors: list[TensorReport]

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.tensors)

    def __getitem__(self, name: str) -> TensorReport:
        for t in self.tensors:
            if t.name == name:
                return t
        raise KeyError(name)

    def __str__(self) -> str:
        head = (
            f"{'tensor':<12} {'shape':<14} {'max |a-n|':>10} {'rel error':>10}  "
            f"{'verdict':<18} {'worst at':<12} kinks"
        )
        lines = [head, "-" * len(head)] + [t.line() for t in self.tensors]
        for t in self.tensors:
            for index, units in t.kink_crossings[:5]:
                shown = ", ".join(f"{probe}{list(u)}" for probe, u in units[:4])
                more = f" and {len(units) - 4} more" if len(units) > 4 else ""
                lines.append(
                    f"  {t.name}{list(index)} ±h moved {shown}{more} across a kink: "
                    "numerical gradient invalid there, excluded"
                )
            if len(t.kink_crossings) > 5:
                lines.append(f"  ... {len(t.kink_crossings) - 5} more elements of {t.name}")
        return "\n".join(lines)


class GradientCheckError(AssertionError):
    """Backprop disagrees with the numerical gradient; ``report`` holds the numbers."""

    def __init__(self, report: GradCheckReport):
        self.report = report
        bad = ", ".join(t.name for t in report.tensors if not t.ok)
        super().__init__(f"gradient check failed for {bad}:\n{report}")


KinkProbe = Callable[[], Sequence[tuple[str, Any]]]


def _kink_crossings(
    before: Sequence[tuple[str, Any]], after: Sequence[tuple[str, Any]]
) -> list[tuple[str, tuple[int, ...]]]:
    units: list[tuple[str, tuple[int, ...]]] = []
    for (name, a), (_, b) in zip(before, after):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape:
            continue
        for idx in np.argwhere(a != b):  # argwhere, unlike nonzero, accepts 0-d states
            units.append((name, tuple(int(i) for i in idx)))
    return units


def compare(
    f: Callable[[], float],
    params: Mapping[str, np.ndarray],
    grads: Mapping[str, Any],
    *,
    h: float = 1e-5,
    rtol: float = 1e-7,
    kink_probe: KinkProbe | None = None,
    raise_on_failure: bool = True,
) -> GradCheckReport:
    """Compare analytic ``grads`` with central differences of ``f()`` for each of ``params``.

    ``f`` recomputes the scalar loss from the arrays in ``params``, which are perturbed in
    place. ``kink_probe`` (optional) returns ``[(name, state_array), ...]`` describing which side
    of each kink every unit is on after the latest ``f()``; an element whose ``+h`` and ``-h``
    evaluations disagree there crossed a kink and is excluded from the comparison.
    """
    reports = []
    for name, x in params.items():
        if not isinstance(x, np.ndarray) or x.dtype != np.float64:
            dtype = getattr(x, "dtype", type(x).__name__)
            raise TypeError(
                f"gradient check: {name!r} must be a float64 NumPy array (got {dtype}); "
                "float32 round-off swamps the comparison"
            )
        if name not in grads or grads[name] is None:
            raise ValueError(f"gradient check: no analytic gradient given for {name!r}")
        analytic = np.asarray(grads[name], dtype=np.float64)
        if analytic.shape != x.shape:
            raise ValueError(
                f"gradient check: gradient of {name!r} has shape {analytic.shape}, "
                f"but the tensor has shape {x.shape}"
            )
        numerical, crossings = np.zeros(x.shape), []
        valid = np.ones(x.shape, dtype=bool)
        for index, derivative, side_plus, side_minus in _central_differences(x, f, h, kink_probe):
            numerical[index] = derivative
            units = _kink_crossings(side_plus, side_minus) if kink_probe else []
            if units:
                crossings.append((tuple(int(j) for j in index), units))
                valid[index] = False
        diff = np.where(valid, np.abs(analytic - numerical), 0.0)
        scale = max(
            np.abs(analytic[valid]).max(initial=0.0), np.abs(numerical[valid]).max(initial=0.0)
        )
        max_abs = float(diff.max(initial=0.0))
        rel = max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else np.inf)
        worst = (
            tuple(int(j) for j in np.unravel_index(int(diff.argmax()), x.shape)) if x.size else None
        )
        reports.append(
            TensorReport(
                name=name,
                shape=x.shape,
                max_abs_error=max_abs,
                rel_error=float(rel),
                worst_index=worst,
                analytic_at_worst=float(analytic[worst]) if worst is not None else 0.0,
                numerical_at_worst=float(numerical[worst]) if worst is not None else 0.0,
                kink_crossings=crossings,
                rtol=rtol,
            )
        )
    report = GradCheckReport(reports)
    if raise_on_failure and not report.ok:
        raise GradientCheckError(report)
    return report


def _layer_probe(layers: Sequence[Any]) -> KinkProbe | None:
    kinked = [
        (type(l).__name__ + str(i), l)
        for i, l in enumerate(layers)
        if hasattr(type(l), "kink_state")
    ]
    if not kinked:
        return None
    return lambda: [(name, np.array(l.kink_state(), copy=True)) for name, l in kinked]


def check_layer(
    layer: Any,
    *inputs: np.ndarray,
    params: Mapping[str, str] | None = None,
    rng: np.random.Generator | None = None,
    h: float = 1e-5,
    rtol: float = 1e-7,
    raise_on_failure: bool = True,
) -> GradCheckReport:
    """Check a book-style layer's ``backward`` against central differences.

    The scalar checked is ``sum(forward(*inputs) * dout)`` for a fixed random ``dout``, so the
    analytic gradients are exactly ``backward(dout)``. ``params`` maps names of attributes that
    hold parameters to the attributes that receive their gradients (``{"W": "dW", "b": "db"}``
    for :class:`~chainrule.layers.Affine`; found automatically when the layer has ``dW``).
    Inputs must be float64 arrays; integer inputs (labels) are passed through unchecked.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    if params is None:
        params = {"W": "dW", "b": "db"} if hasattr(layer, "dW") else {}
    inputs = tuple(
        np.array(x, dtype=np.float64) if isinstance(x, (float, int, list)) else x for x in inputs
    )
    out = np.asarray(layer.forward(*inputs))
    dout = rng.standard_normal(out.shape)
    dxs = layer.backward(dout if out.ndim else float(dout))
    if not isinstance(dxs, tuple):
        dxs = (dxs,)
    arrays: dict[str, np.ndarray] = {}
    grads: dict[str, Any] = {}
    for i, (x, dx) in enumerate(zip(inputs, dxs)):
        if isinstance(x, np.ndarray) and x.dtype.kind == "f":
            arrays[f"x{i}" if len(inputs) > 1 else "x"] = x
            grads[f"x{i}" if len(inputs) > 1 else "x"] = dx
    for attr, grad_attr in params.items():
        arrays[attr] = getattr(layer, attr)
        grads[attr] = getattr(layer, grad_attr)

    def f() -> float:
        return float((np.asarray(layer.forward(*inputs)) * dout).sum())

    try:
        return compare(
            f,
            arrays,
            grads,
            h=h,
            rtol=rtol,
            kink_probe=_layer_probe([layer]),
            raise_on_failure=raise_on_failure,
        )
    finally:
        layer.forward(*inputs)  # leave the layer's cache as the caller's inputs made it


def check_function(
    fn: Callable[..., Any],
    *inputs: np.ndarray,
    rng: np.random.Generator | None = None,
    h: float = 1e-5,
    rtol: float = 1e-7,
    raise_on_failure: bool = True,
) -> GradCheckReport:
    """Check the autograd gradients of ``fn(*tensors)`` against central differences.

    Each float64 array in ``inputs`` becomes a Tensor; the scalar checked is
    ``sum(fn(*tensors) * dout)`` for a fixed random ``dout``. Kinks are found by walking the
    graph for ops that have ``kink_state``.
    """
    from chainrule.tensor import Tensor

    rng = np.random.default_rng(0) if rng is None else rng
    arrays = {
        f"x{i}": x
        for i, x in enumerate(inputs)
        if isinstance(x, np.ndarray) and x.dtype.kind == "f"
    }
    last_graph: list[Any] = []

    def run() -> Tensor:
        ts = [Tensor(x) if isinstance(x, np.ndarray) and x.dtype.kind == "f" else x for x in inputs]
        y = fn(*ts)
        last_graph[:] = [ts, y]
        return y

    y = run()
    dout = rng.standard_normal(y.shape)
    y.backward(dout)
    grads = {f"x{i}": t.grad for i, t in enumerate(last_graph[0]) if f"x{i}" in arrays}

    def f() -> float:
        return float((np.asarray(run().data) * dout).sum())

    def probe() -> list[tuple[str, Any]]:
        states, stack, seen = [], [last_graph[1].creator], set()
        while stack:
            fnode = stack.pop()
            if fnode is None or id(fnode) in seen:
                continue
            seen.add(id(fnode))
            if hasattr(type(fnode), "kink_state"):
                states.append(
                    (
                        f"{type(fnode).__name__}@{fnode.generation}",
                        np.array(fnode.kink_state(), copy=True),
                    )
                )
            stack.extend(getattr(x, "creator", None) for x in fnode.inputs)
        return states

    return compare(
        f, arrays, grads, h=h, rtol=rtol, kink_probe=probe, raise_on_failure=raise_on_failure
    )


def check_double_backward(
    fn: Callable[..., Any],
    *inputs: np.ndarray,
    rng: np.random.Generator | None = None,
    h: float = 1e-5,
    rtol: float = 1e-6,
    raise_on_failure: bool = True,
) -> GradCheckReport:
    """Check second derivatives: the double-backward graph against differences of the backward.

    With a fixed random upstream ``dout`` and fixed random second upstreams ``ddx`` (one per
    float input), the scalar ``s(x) = sum_i sum(grad_i(x) * ddx_i)`` — where ``grad_i`` is the
    first-order gradient of ``sum(fn(*x) * dout)`` — is differentiated twice over:

    * analytically, by ``backward(create_graph=True)`` and a backward through that graph
      (a Hessian-vector product ``H @ ddx``);
    * numerically, by central differences of ``s`` computed with plain first-order backprop.

    Inputs must be float64 and away from kinks (the check has no kink probe). ``rtol`` is looser
    than first order's ``1e-7``: the numerical side differentiates a computed gradient.

    >>> check_double_backward(lambda x: x * x * x, np.array([0.5, -1.5])).ok
    True
    """
    from chainrule.tensor import Tensor

    rng = np.random.default_rng(0) if rng is None else rng
    floating = [isinstance(x, np.ndarray) and x.dtype == np.float64 for x in inputs]
    if not any(floating):
        raise TypeError("check_double_backward: at least one input must be a float64 array")
    arrays = {f"x{i}": x for i, x in enumerate(inputs) if floating[i]}

    def first_order(create_graph: bool) -> tuple[list[Any], list[Any]]:
        ts: list[Any] = [Tensor(x) if ok else x for x, ok in zip(inputs, floating)]
        y = fn(*ts)
        y.backward(dout, create_graph=create_graph)
        return ts, [t.grad if ok else None for t, ok in zip(ts, floating)]

    ts0 = [Tensor(x) if ok else x for x, ok in zip(inputs, floating)]
    dout = rng.standard_normal(fn(*ts0).shape)
    ddxs = [rng.standard_normal(np.shape(x)) if ok else None for x, ok in zip(inputs, floating)]

    ts, grads = first_order(create_graph=True)
    s: Any = 0.0
    for g, ddx in zip(grads, ddxs):
        if isinstance(g, Tensor):
            s = s + (g * ddx).sum()
    second: dict[str, Any] = {name: np.zeros(x.shape) for name, x in arrays.items()}
    if isinstance(s, Tensor) and s.requires_grad:
        for t in ts:
            if isinstance(t, Tensor):
                t.cleargrad()
        s.backward()
        for i, t in enumerate(ts):
            if floating[i] and t.grad is not None:
                second[f"x{i}"] = np.asarray(
                    t.grad.data if isinstance(t.grad, Tensor) else t.grad, dtype=np.float64
                )

    def f() -> float:
        _, gs = first_order(create_graph=False)
        return float(sum(float((g * ddx).sum()) for g, ddx in zip(gs, ddxs) if g is not None))

    return compare(f, arrays, second, h=h, rtol=rtol, raise_on_failure=raise_on_failure)
