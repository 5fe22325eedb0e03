"""Naming the mistake: from a wrong shape, a wrong forward or a wrong gradient to a sentence.

Each function looks at the learner's result and the expected one and returns
:class:`~chainrule.checking.report.Diagnosis` objects (or ``None`` when nothing fits). They are
pure: no learner code runs here.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from typing import Any

import numpy as np

from chainrule.checking.report import Diagnosis

#: Two arrays are "the same" up to this relative tolerance when naming a mistake.
SAME = 1e-4


def _close(a: Any, b: Any, tol: float = SAME) -> bool:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        return False
    scale = max(np.abs(a).max(initial=0.0), np.abs(b).max(initial=0.0))
    return bool(np.abs(a - b).max(initial=0.0) <= tol * max(scale, 1e-12))


def factor_of(a: np.ndarray, n: np.ndarray) -> float | None:
    """``c`` when ``a`` is ``c * n`` for one constant ``c`` (least squares, then checked)."""
    nn = float((n * n).sum())
    if nn == 0:
        return None
    c = float((a * n).sum()) / nn
    return c if _close(a, c * n) else None


def shape_diagnosis(
    grad: str, param: str, got: tuple, expected: tuple, batch: int | None
) -> Diagnosis:
    """Why ``grad`` has shape ``got`` where ``param`` has shape ``expected``."""
    args = {"grad": grad, "param": param, "got": str(got), "expected": str(expected)}
    if len(got) > len(expected) and got[len(got) - len(expected) :] == expected:
        code = "shape_batch_sum"  # extra leading axes: the batch (and positions) not summed
    elif batch is not None and expected[:1] == (batch,) and got == expected[1:]:
        code = "shape_summed_batch"
    elif len(got) >= 2 and got == expected[::-1]:
        code = "shape_transposed"
    elif int(np.prod(got)) == int(np.prod(expected)):
        code = "shape_reshape"
    else:
        code = "shape_wrong"
    return Diagnosis(code, args=args, gradient=grad)


def factor_diagnosis(grad: str, c: float, batch: int | None) -> Diagnosis:
    if abs(c + 1) < 1e-3:
        return Diagnosis("grad_sign", args={"grad": grad}, gradient=grad)
    if batch and batch > 1 and abs(c - batch) < 1e-3 * batch:
        return Diagnosis(
            "grad_factor_batch_big", args={"grad": grad, "factor": c, "n": batch}, gradient=grad
        )
    if batch and batch > 1 and abs(c * batch - 1) < 1e-3:
        return Diagnosis(
            "grad_factor_batch_small",
            args={"grad": grad, "inverse": 1 / c, "n": batch},
            gradient=grad,
        )
    return Diagnosis("grad_factor", args={"grad": grad, "factor": c}, gradient=grad)


def value_diagnosis(
    grad: str, a: np.ndarray, n: np.ndarray, valid: np.ndarray, rel: float, batch: int | None
) -> Diagnosis:
    """Name the difference between analytic ``a`` and numerical ``n`` (same shape), looking
    only at ``valid`` elements (those no ±h step moved across a kink)."""
    av, nv = np.where(valid, a, 0.0), np.where(valid, n, 0.0)
    scale = max(np.abs(av).max(initial=0.0), np.abs(nv).max(initial=0.0))
    if np.abs(av).max(initial=0.0) == 0:
        return Diagnosis("grad_zero", args={"grad": grad}, gradient=grad)
    c = factor_of(av, nv)
    if c is not None:
        return factor_diagnosis(grad, c, batch)
    tiny = 1e-9 * scale
    za, zn = np.abs(av) <= tiny, np.abs(nv) <= tiny
    if zn[valid].any() and (~zn[valid]).any() and np.array_equal(za[valid], ~zn[valid]):
        return Diagnosis("grad_mask_inverted", args={"grad": grad}, gradient=grad)
    if a.ndim == 2 and a.shape[0] == a.shape[1] and _close(av, nv.T):
        return Diagnosis("grad_transposed", args={"grad": grad}, gradient=grad)
    worst = np.unravel_index(int(np.abs(av - nv).argmax()), a.shape)
    return Diagnosis(
        "grad_mismatch",
        args={
            "grad": grad,
            "rel": rel,
            "index": str(list(int(i) for i in worst)),
            "a": float(a[worst]),
            "n": float(n[worst]),
        },
        gradient=grad,
    )


def swapped_pairs(
    analytic: dict[str, np.ndarray], numerical: dict[str, np.ndarray]
) -> list[tuple[str, str]]:
    """Pairs of input gradients that match each other's numerical gradient."""
    names = list(analytic)
    pairs = []
    for i, g in enumerate(names):
        for h in names[i + 1 :]:
            if (
                not _close(analytic[g], numerical[g])
                and _close(analytic[g], numerical[h])
                and _close(analytic[h], numerical[g])
            ):
                pairs.append((g, h))
    return pairs


def forward_diagnosis(
    spec: Any, out: Any, want: Any, inputs: dict[str, Any], batch: int | None
) -> Diagnosis | None:
    """Compare the learner's forward output with chainrule's (``want``)."""
    ref = spec.book_name
    got, want = np.asarray(out, dtype=float), np.asarray(want, dtype=float)
    if got.shape != want.shape:
        return Diagnosis(
            "forward_shape", args={"got": str(got.shape), "expected": str(want.shape), "ref": ref}
        )
    if _close(got, want, spec.forward_rtol):
        return None
    for desc, wrong in spec.wrong_ops.items():
        if _close(got, wrong(inputs)):
            return Diagnosis(
                "forward_wrong_op", args={"got_op": desc, "want_op": spec.want_op, "ref": ref}
            )
    c = factor_of(got, want)
    if c is not None and abs(c + 1) < 1e-3:
        return Diagnosis("forward_sign", args={"ref": ref})
    if c is not None and batch and any(abs(c - f) < 1e-3 for f in spec.forward_factor_ok):
        return Diagnosis("forward_factor_batch", severity="note", args={"ref": ref, "n": batch})
    if c is not None:
        return Diagnosis("forward_factor", args={"ref": ref, "factor": c})
    worst = np.unravel_index(int(np.abs(got - want).argmax()), got.shape) if got.ndim else ()
    return Diagnosis(
        "forward_mismatch",
        args={
            "ref": ref,
            "err": float(np.abs(got - want).max()),
            "index": str(list(int(i) for i in worst)),
            "got": float(got[worst]),
            "want": float(want[worst]),
        },
    )


def _self_attributes(method: Any, stored: bool) -> list[str]:
    """The ``self.NAME`` a method reads (``stored=False``) or assigns (``stored=True``), in
    order of appearance; empty when its source is not available."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(method)))
    except (OSError, TypeError, SyntaxError):
        return []
    found: list[str] = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "self"
            and isinstance(node.ctx, ast.Store if stored else ast.Load)
            and node.attr not in found
        ):
            found.append(node.attr)
    return sorted(found, key=lambda a: _first_line(tree, a))


def _first_line(tree: ast.AST, attr: str) -> int:
    lines = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr == attr]
    return min(lines, default=0)


def missing_state(instance: Any, method_name: str, exc: BaseException) -> Diagnosis | None:
    """When ``method_name`` raised because some ``self.attr`` it reads is ``None`` or was never
    set, say which, and what forward does store."""
    if not isinstance(exc, (AttributeError, TypeError)):
        return None
    cls = type(instance)
    state = vars(instance)
    reads = _self_attributes(getattr(cls, method_name), stored=False)
    if not reads:  # no source to read (typed at a prompt): go by the exception
        if isinstance(exc, AttributeError) and getattr(exc, "obj", None) is instance:
            reads = [str(exc.name)]
        elif "NoneType" in str(exc):
            nones = [k for k, v in state.items() if v is None]
            reads = nones if len(nones) == 1 else []
    for attr in reads:
        if hasattr(cls, attr):  # a method, property or class constant
            continue
        how = "missing" if attr not in state else ("None" if state[attr] is None else "")
        if how:
            stored = _self_attributes(cls.forward, stored=True)
            return Diagnosis(
                "state_missing",
                args={
                    "method": method_name,
                    "attr": attr,
                    "how": how,
                    "stored": ", ".join(f"self.{a}" for a in stored),
                },
            )
    return None
