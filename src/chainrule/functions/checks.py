"""Bad input to an op, said in the op's words: the one validation path of the engine.

Every :class:`~chainrule.function.Function` subclass has its ``forward`` and ``backward``
wrapped (in ``Function.__init_subclass__``) so that a raw NumPy or Python error from inside —
``'NoneType' object has no attribute 'ndim'``, ``ufunc 'tanh' not supported``, ``operands could
not be broadcast`` — comes out as an error of the same kind that names the op and describes
every input (its type, dtype and shape), via :func:`rephrase`. The wrapper costs nothing on the
success path (only the ``except`` branch calls in here), and the ops stay math-only. Errors an
op raises itself (they start with its name) pass through unchanged.

Non-finite values are IEEE arithmetic's answer inside the graph — ``log(0) = -inf``,
``sqrt(-1) = nan``, ``exp(1000) = inf`` — with a :class:`NonFiniteWarning` naming the op when
finite inputs give a non-finite result (:func:`ieee`, used by ``exp``, ``log``, ``sqrt`` and
``pow``); where they would do harm unnoticed, at a loss, they are an error
(:func:`check_finite`). ``+ - * /`` are NumPy's own (``1 / 0 = inf`` with NumPy's warning): they
sit on every hot path, and IEEE is the right answer there.
"""

from __future__ import annotations

import functools
import math
import re
import warnings
from typing import Any

import numpy as np

from chainrule.backend import device_of, get_array_module


def name_errors(cls: type) -> None:
    """Wrap ``cls.forward``/``cls.backward`` (those it defines) so that errors name the op."""
    for name in ("forward", "backward"):
        if name in vars(cls):
            setattr(cls, name, _naming_errors(vars(cls)[name]))


def _naming_errors(method: Any) -> Any:
    @functools.wraps(method)
    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except (TypeError, ValueError, IndexError, AttributeError) as exc:
            new = rephrase(self, method.__name__, (*args, *kwargs.values()), exc)
            if new is exc:
                raise
            raise new from None

    return run


class NonFiniteWarning(RuntimeWarning):
    """An op turned finite inputs into inf or NaN (``log(0)``, ``sqrt(-1)``, ``exp(1000)``)."""


def label_of(f: Any) -> str:
    """The name errors use for an op or layer: its own ``name`` (``Affine1``), else its class."""
    name = f.__dict__.get("name") if hasattr(f, "__dict__") else None
    return name if isinstance(name, str) else type(f).__name__


def describe(value: Any) -> str:
    """``value`` in a few words: ``float64 array (3, 4)``, ``None``, ``str 'ab'``."""
    data = getattr(value, "data", value) if type(value).__name__ == "Tensor" else value
    if data is None:
        return "None"
    if hasattr(data, "dtype") and hasattr(data, "shape"):
        kind = "Tensor" if data is not value else "array"
        return f"{data.dtype} {kind} of shape {tuple(data.shape)}"
    return f"{type(data).__name__} {data!r}"[:60]


def _numeric(value: Any) -> bool:
    data = getattr(value, "data", value) if type(value).__name__ == "Tensor" else value
    dtype = getattr(data, "dtype", None)
    if dtype is not None:
        return dtype.kind in "iufc"
    return isinstance(value, (int, float, complex)) and not isinstance(value, bool)


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def rephrase(f: Any, method: str, args: tuple[Any, ...], exc: BaseException) -> BaseException:
    """The error to raise for ``exc`` from ``f.<method>(*args)``: ``exc`` itself when chainrule
    raised it (already named), else a new one naming the op, what it was given and why."""
    from chainrule.function import BackwardBeforeForwardError, DeviceMismatchError

    label = label_of(f)
    names = {label, type(f).__name__, type(f).__name__.lower(), _snake(type(f).__name__)}
    prefix = str(exc).split(":", 1)[0]
    if getattr(exc, "chainrule_named", False) or prefix in names:
        return exc
    if isinstance(exc, (BackwardBeforeForwardError, DeviceMismatchError)):
        return exc
    places = [(i, device_of(a)) for i, a in enumerate(args) if getattr(a, "ndim", 0) > 0]
    if len({device for _, device in places}) > 1:  # CuPy's own error does not name the op
        where = ", ".join(f"input {i} on {device}" for i, device in places)
        return DeviceMismatchError(
            f"{label}: inputs are on different devices ({where}); move them to one with "
            "chainrule.to_device, and models with model.to(...) or backend.move_arrays"
        )
    what = "dout" if method == "backward" else "input"
    given = ", ".join(describe(a) for a in args) or "nothing"
    bad = [i for i, a in enumerate(args) if not _numeric(a)]
    if bad and method == "forward":
        i = bad[0]
        message = (
            f"{label}: input {i} is {describe(args[i])}; expected numbers (a Tensor, a NumPy "
            f"array of an int, float or complex dtype, or a Python number) — given {given}"
        )
    elif method == "backward":
        message = f"{label}.backward: {exc} — got dout {given}; it must match forward's output"
    else:
        message = f"{label}: {exc} — given {what}s {given}"
    kind = next((k for k in (IndexError, ValueError, TypeError) if isinstance(exc, k)), TypeError)
    new = kind(message)
    new.chainrule_named = True  # type: ignore[union-attr]
    return new


def ieee(op: str, fn: Any, x: Any) -> Any:
    """``fn(x)`` with IEEE's inf/NaN where ``x`` is outside the domain, and a
    :class:`NonFiniteWarning` naming ``op`` instead of NumPy's anonymous RuntimeWarning.
    A caller's ``np.errstate`` is honoured: ``"raise"`` raises NumPy's ``FloatingPointError``,
    all ``"ignore"`` stays quiet."""
    mode = np.geterr()
    modes = {mode["divide"], mode["invalid"], mode["over"]}
    if "raise" in modes:
        return fn(x)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out = fn(x)
    if modes != {"ignore"}:
        warn_non_finite(op, x, out)
    return out


def warn_non_finite(op: str, x: Any, out: Any) -> None:
    """Warn, naming ``op``, when finite ``x`` gave a non-finite ``out`` (IEEE's answer)."""
    xp = get_array_module(out)
    out = xp.asarray(out)
    x = xp.broadcast_to(xp.asarray(x), out.shape)  # pow's exponent may broadcast x
    made = ~xp.isfinite(out) & xp.isfinite(x)
    if bool(made.any()):
        first = tuple(xp.argwhere(made)[0])
        warnings.warn(
            f"{op}: {int(made.sum())} finite input value(s) gave inf or NaN (first: "
            f"{op}({x[first].item()!r}) = {out[first].item()!r}); kept as IEEE arithmetic's "
            "answer",
            NonFiniteWarning,
            stacklevel=4,
        )


def check_finite(layer: str, what: str, a: Any) -> None:
    """Raise ``FloatingPointError`` naming ``layer`` if ``a`` holds NaN or inf."""
    # A sum of squares is finite only if every value is (a NaN or an inf makes it NaN or
    # inf): one BLAS call, no temporary, no warning. When it is not finite (a NaN, an inf, or
    # squares too large for the dtype), the exact test below decides.
    if type(a) is np.ndarray and a.dtype.kind == "f" and math.isfinite(np.vdot(a, a)):
        return
    xp = get_array_module(a)
    bad = ~xp.isfinite(a)
    if bool(bad.any()):
        where = tuple(int(i) for i in xp.argwhere(bad)[0])
        raise FloatingPointError(
            f"{layer}: {int(bad.sum())} of {a.size} {what} are NaN or inf (first at index "
            f"{list(where)}: {a[where]!r}); they entered here, upstream of the loss"
        )
