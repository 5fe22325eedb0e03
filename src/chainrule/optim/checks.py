"""What an optimizer is given, checked: its first argument (params or lr), its parameters,
each ``(key, param, grad)`` of a step, gradients with NaN or inf, and saved state slots.
Every error names the optimizer and the parameter's key.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from chainrule.backend import device_of, get_array_module, to_device, to_numpy

__all__ = ["NonFiniteGradient"]


class NonFiniteGradient(ValueError):
    """A gradient given to an optimizer holds NaN or infinity; nothing was updated.

    Attributes: ``key`` (the parameter's name or position), ``nan`` and ``inf`` (counts).
    """

    def __init__(self, message: str, *, key: str, nan: int, inf: int) -> None:
        super().__init__(message)
        self.key, self.nan, self.inf = key, nan, inf


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def split_first(me: str, first: Any, params: Any, lr: Any, hyper_names: Iterable[str]) -> Any:
    """``(params, lr)`` from the first positional argument: a number is the book's ``lr``
    (``SGD(0.1)``), anything else PyTorch's ``params`` (``SGD(model.parameters(), 0.1)``)."""
    if first is None:
        return params, lr
    if is_number(first):
        if lr is not None:
            book = ", ".join(f"{name}=..." for name in hyper_names)
            raise TypeError(
                f"{me}: ambiguous call: the first argument {first!r} is a number, so it is the "
                f"learning rate (the book's order, where only lr may come positionally), but "
                f"lr={lr!r} is given as well; write {me}({book}) or PyTorch's "
                f"{me}(params, lr, ...)"
            )
        return params, first
    if params is not None:
        raise TypeError(f"{me}: params given twice, as the first argument and as params=")
    return first, lr


def collect(me: str, params: Any) -> tuple[list[tuple[str, Any]], bool]:
    """``([(key, parameter-like or array)], arrays?)`` from what ``params`` may be."""
    if isinstance(params, (str, bytes)) or not isinstance(params, Iterable):
        raise TypeError(
            f"{me}: params must be parameters (a list, a generator such as model.parameters(), "
            f"or a dict), or a learning rate (a number); got {type(params).__name__}"
        )
    if isinstance(params, get_array_module(params).ndarray):
        raise TypeError(
            f"{me}: params must be parameter-like objects (with .data and .grad), "
            "not an ndarray; for dicts of arrays use update(params, grads)"
        )
    if isinstance(params, Mapping):
        items = [(str(name), p) for name, p in params.items()]
    else:
        items = [
            (p[0], p[1]) if type(p) is tuple and len(p) == 2 and type(p[0]) is str else (str(i), p)
            for i, p in enumerate(params)
        ]
    if not items:
        raise ValueError(f"{me}: params is empty")
    arrays = isinstance(params, Mapping) and all(
        isinstance(p, get_array_module(p).ndarray) for _, p in items
    )
    seen: dict[int, str] = {}
    for key, p in items:
        data = getattr(p, "data", None)
        if not arrays and (
            not hasattr(p, "grad") or not isinstance(data, get_array_module(data).ndarray)
        ):
            hint = " (a dict of name -> array works too, with step(grads))"
            raise TypeError(
                f"{me}: params[{key!r}] is not parameter-like: it needs a .data ndarray "
                f"and a .grad attribute, got {type(p).__name__}{hint}"
            )
        if id(p) in seen:
            raise ValueError(f"{me}: params[{key!r}] is the same object as params[{seen[id(p)]!r}]")
        seen[id(p)] = key
    return items, arrays


def require_finite(me: str, todo: list[tuple[Any, ...]]) -> None:
    """Raise :class:`NonFiniteGradient` naming the first gradient in ``todo`` with NaN/inf.

    A sum of squares is finite only if every term is, so one dot product per gradient (BLAS:
    about as fast as one pass of the update's arithmetic, and faster than ``sum``) and a
    single conversion to a Python float (one device sync on a GPU) clear the usual case;
    only a non-finite total, which an overflow of finite squares can also give, looks closer.
    """
    total = 0.0
    with np.errstate(over="ignore", invalid="ignore"):  # huge finite squares may overflow
        for entry in todo:
            flat = entry[2].reshape(-1)  # a view of a contiguous gradient
            total += flat.dot(flat)
    if math.isfinite(total):
        return
    for key, _, grad, *_ in todo:
        xp = get_array_module(grad)
        nan, inf = int(xp.isnan(grad).sum()), int(xp.isinf(grad).sum())
        if nan or inf:
            raise NonFiniteGradient(
                f"{me}: the gradient for {key!r} is not finite ({nan} NaN and {inf} infinite "
                f"of {grad.size} values); no parameter was updated (a smaller learning rate "
                "often helps; set check_finite = False to skip this check)",
                key=key,
                nan=nan,
                inf=inf,
            )


def scalar_like(array: np.ndarray, original: Any) -> Any:
    """The new value of a scalar parameter, of the type it came as (a float stays a float)."""
    value = array[()]
    return float(value) if type(original) in (int, float) else value


def check_item(
    me: str, key: str, param: Any, grad: Any, state: dict[str, dict[str, Any]]
) -> tuple[Any, Any]:
    """The full check of one ``(key, param, grad)`` for optimizer ``me``: ``(param as an
    array, grad as an array)``, with the key's state slots moved to its dtype and device."""
    if is_number(param):  # a Python or NumPy scalar: updated as a 0-d array copy
        param = np.array(param, dtype=param.dtype if isinstance(param, np.floating) else float)
    xp = get_array_module(param)
    if not isinstance(param, xp.ndarray):
        raise TypeError(
            f"{me}: parameter {key!r} must be an ndarray or a real number, "
            f"got {type(param).__name__}"
        )
    if not np.issubdtype(param.dtype, np.floating):
        raise TypeError(f"{me}: parameter {key!r} must be floating point, got {param.dtype}")
    if device_of(grad) != device_of(param):
        raise ValueError(
            f"{me}: gradient for {key!r} is on {device_of(grad)} but the parameter is on "
            f"{device_of(param)}"
        )
    try:
        grad = xp.asarray(grad)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{me}: gradient for {key!r} is not an array: {exc}") from None
    if grad.dtype.kind in "iu":
        grad = grad.astype(param.dtype)
    elif grad.dtype.kind != "f":
        raise TypeError(f"{me}: gradient for {key!r} must be real numbers, got {grad.dtype}")
    if grad.shape != param.shape:
        raise ValueError(
            f"{me}: gradient for {key!r} has shape {grad.shape} "
            f"but the parameter has shape {param.shape}"
        )
    for name, buf in state.get(key, {}).items():
        if buf.shape != param.shape:
            raise ValueError(
                f"{me}: state slot '{name}/{key}' has shape {buf.shape} "
                f"but the parameter has shape {param.shape}"
            )
        if buf.dtype != param.dtype:  # e.g. float64 state loaded for float32 params
            state[key][name] = buf = buf.astype(param.dtype)
        if device_of(buf) != device_of(param):  # state loaded from a file: on the host
            state[key][name] = to_device(buf, device_of(param))
    return param, grad


def load_slots(
    me: str,
    slots: Mapping[str, Any],
    slot_names: tuple[str, ...],
    attached: list[tuple[str, Any]] | None,
    arrays: bool,
) -> dict[str, dict[str, np.ndarray]]:
    """``{key: {slot: array}}`` from ``{"slot/key": array}``, checked against the
    parameters given at construction where they name the key (a positional list of
    parameters does not name the keys that ``update`` by name uses)."""
    named = attached is not None and (
        arrays or any(key != str(i) for i, (key, _) in enumerate(attached))
    )
    params = dict(attached or ())
    new_state: dict[str, dict[str, np.ndarray]] = {}
    for slot_key, array in slots.items():
        name, sep, key = slot_key.partition("/")
        if not sep or name not in slot_names:
            raise ValueError(
                f"{me}: unknown state slot {slot_key!r}; slots are named "
                f"'<slot>/<key>' with <slot> in {list(slot_names)}"
            )
        buf = np.array(to_numpy(array), copy=True)  # to the parameter's device at use
        if named and key not in params:
            raise ValueError(f"{me}: state slot {slot_key!r} names no parameter")
        if key in params:
            data = params[key] if arrays else params[key].data
            if buf.shape != data.shape:
                raise ValueError(
                    f"{me}: state slot {slot_key!r} has shape {buf.shape} "
                    f"but the parameter has shape {data.shape}"
                )
            buf = buf.astype(data.dtype, copy=False)
        new_state.setdefault(key, {})[name] = buf
    for key, found in new_state.items():
        missing = [name for name in slot_names if name not in found]
        if missing:
            raise ValueError(f"{me}: state slot '{missing[0]}/{key}' is missing")
    return new_state
