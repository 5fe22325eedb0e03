"""The optimizers' shared machinery: hyperparameter checks, the two calling styles, the
update loop (validation, state allocation, slicing of big parameters) and checkpoints.

A rule (:mod:`chainrule.optim.rules`) only writes :meth:`Optimizer._update` for one parameter.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from chainrule.backend import device_of, get_array_module, to_device, to_numpy

#: Parameters with more elements than this are updated in slices of this many elements, each
#: through the same small scratch array (256 KiB in float32: it stays in the CPU's L2 cache).
#: The arithmetic is element-wise, so the result is bit for bit the same as in one piece.
CHUNK = 1 << 16

__all__ = ["CHUNK", "Optimizer"]


# --------------------------------------------------------------------------- hyperparameters


def _check_positive(value: float) -> str | None:
    return None if value > 0 else "must be positive"


def _check_non_negative(value: float) -> str | None:
    return None if value >= 0 else "must be non-negative"


def _check_unit(value: float) -> str | None:
    return None if 0 <= value < 1 else "must be in [0, 1)"


class _Hyper:
    """A float hyperparameter, validated whenever it is set (a scheduler may set ``lr``).

    It defines ``__set__`` but no ``__get__``: setting goes through the check, while
    reading finds the value in the instance ``__dict__`` like any plain attribute, with
    no Python call (the update rules read their hyperparameters every step). On the
    class, ``SGD.lr`` is this descriptor.
    """

    def __init__(self, check: Callable[[float], str | None]) -> None:
        self.check = check
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __set__(self, obj: Any, value: Any) -> None:
        where = f"{type(obj).__name__}: {self.name}"
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(f"{where} must be a real number, got {value!r}")
        number = float(value)
        problem = self.check(number) if math.isfinite(number) else "must be finite"
        if problem is not None:
            raise ValueError(f"{where} {problem}, got {value!r}")
        obj.__dict__[self.name] = number


# --------------------------------------------------------------------------- base class


class Optimizer:
    """Shared machinery: the two calling styles, validation, state and checkpoints.

    A subclass lists its hyperparameters in ``hyper_names`` (each a :class:`_Hyper`
    class attribute), the names of its per-parameter state arrays in ``slot_names``,
    and implements :meth:`_update` for one parameter.

    Attributes:
        t: number of steps taken so far, the ``t`` of the formulas. Every call to
            :meth:`update` or :meth:`step` counts once, whichever parameters it touched.
        state: ``{key: {slot: ndarray}}``, allocated at a key's first update.
    """

    #: The learning rate :func:`~chainrule.optim.optimizer_from_name` (and so the CLI) uses
    #: when none is given: tuned for training the MNIST nets. The constructor's own default
    #: ``lr`` is the book's (``SGD()`` is ``SGD(lr=0.01)``, as chapter 6's scripts expect).
    default_lr: float = 0.01
    hyper_names: tuple[str, ...] = ("lr",)
    slot_names: tuple[str, ...] = ()
    #: ``_update`` works element by element and changes ``p`` and the state slots in place,
    #: so a parameter of more than :data:`CHUNK` elements may go through it in flat slices.
    #: Every rule in this module sets it. A subclass that writes its own ``_update`` gets
    #: False unless it says True itself (see ``__init_subclass__``).
    elementwise: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A new rule inherits "elementwise" only if it keeps its parent's _update: a rule that
        # takes a norm, or replaces a slot array instead of updating it, must see everything.
        if "_update" in cls.__dict__ and "elementwise" not in cls.__dict__:
            cls.elementwise = False

    lr = _Hyper(_check_positive)

    def __init__(
        self,
        params: Iterable[Any] | Mapping[str, Any] | None = None,
        **hyper: float,
    ) -> None:
        for name in self.hyper_names:
            setattr(self, name, hyper[name])
        self.t = 0
        self.state: dict[str, dict[str, np.ndarray]] = {}
        self._scratch: dict[tuple[tuple[int, ...], np.dtype, str], Any] = {}
        # key -> (parameter type, (dtype, shape, gradient shape), state slots, scratch) of
        # the last update that passed the full check; see _apply.
        self._checked: dict[str, tuple[type, tuple[Any, ...], dict[str, np.ndarray], Any]] = {}
        self._params: list[tuple[str, Any]] | None = None
        if params is not None:
            self._params = self._collect(params)

    # ---- construction helpers

    def _collect(self, params: Iterable[Any] | Mapping[str, Any]) -> list[tuple[str, Any]]:
        me = type(self).__name__
        if isinstance(params, np.ndarray):
            raise TypeError(
                f"{me}: params must be parameter-like objects (with .data and .grad), "
                "not an ndarray; for dicts of arrays use update(params, grads)"
            )
        if isinstance(params, Mapping):
            items = [(str(name), p) for name, p in params.items()]
        else:
            items = [(str(i), p) for i, p in enumerate(params)]
        if not items:
            raise ValueError(f"{me}: params is empty")
        seen: dict[int, str] = {}
        for key, p in items:
            data = getattr(p, "data", None)
            if not hasattr(p, "grad") or not isinstance(data, get_array_module(data).ndarray):
                raise TypeError(
                    f"{me}: params[{key!r}] is not parameter-like: it needs a .data ndarray "
                    f"and a .grad attribute, got {type(p).__name__}"
                )
            if id(p) in seen:
                raise ValueError(
                    f"{me}: params[{key!r}] is the same object as params[{seen[id(p)]!r}]"
                )
            seen[id(p)] = key
        return items

    # ---- the two calling styles

    def update(self, params: Mapping[str, np.ndarray], grads: Mapping[str, np.ndarray]) -> None:
        """The book's interface: update every ``params[key]`` in place from ``grads[key]``."""
        if params.keys() != grads.keys():
            me = type(self).__name__
            no_grad = [k for k in params if k not in grads]
            no_param = [k for k in grads if k not in params]
            parts = []
            if no_grad:
                parts.append(f"params has no gradient for {no_grad}")
            if no_param:
                parts.append(f"grads has keys with no parameter: {no_param}")
            raise ValueError(f"{me}: params and grads must have the same keys; " + "; ".join(parts))
        self._apply(
            [(key if type(key) is str else str(key), params[key], grads[key]) for key in params]
        )

    def step(self) -> None:
        """Update each parameter given at construction from its ``.grad``; skip ``None``s."""
        items = [(key, p.data, p.grad) for key, p in self._require_params("step")]
        self._apply([item for item in items if item[2] is not None])

    def zero_grad(self) -> None:
        """Set ``.grad = None`` on each parameter given at construction."""
        for _, p in self._require_params("zero_grad"):
            p.grad = None

    def _require_params(self, method: str) -> list[tuple[str, Any]]:
        if self._params is None:
            raise RuntimeError(
                f"{type(self).__name__}.{method}() needs parameters: construct it with "
                "params=..., or call update(params, grads) instead"
            )
        return self._params

    # ---- the update loop

    def _apply(self, items: list[tuple[str, Any, Any]]) -> None:
        """Check every ``(key, param, grad)``, then update them all.

        Everything is checked before anything changes, so a bad gradient leaves all
        parameters, the state and ``t`` untouched. The full check (:meth:`_check`) runs
        the first time a key is seen; it records what it accepted in ``_checked``. A
        later step whose parameter has the same type, dtype and shape, whose gradient is
        an ndarray of that shape, and whose state slots are the same dict, would pass
        the full check again, so it only makes those O(1) comparisons. Anything else
        (another shape or dtype, a list for a gradient, state replaced by
        :meth:`load_state_dict`) goes through the full check again.
        """
        checked = self._checked
        state = self.state
        todo: list[tuple[str, Any, Any, Any, Any]] = []
        for key, param, grad in items:
            seen = checked.get(key)
            if (
                seen is not None
                and type(param) is seen[0]
                and type(grad) is seen[0]
                and (param.dtype, param.shape, grad.shape) == seen[1]
                and state.get(key) is seen[2]
            ):
                todo.append((key, param, grad, seen[2], seen[3]))
            else:
                todo.append((key, param, self._check(key, param, grad), None, None))
        self.t += 1
        update = self._update
        for key, param, grad, slots, work in todo:
            if slots is None:  # passed the full check: allocate, then remember it
                slots = state.get(key)
                if slots is None:
                    xp = get_array_module(param)
                    slots = state[key] = {
                        name: xp.zeros(param.shape, dtype=param.dtype) for name in self.slot_names
                    }
                work = self._work(param)
                checked[key] = (type(param), (param.dtype, param.shape, grad.shape), slots, work)
            if work.size == param.size:
                update(param, grad, slots, work)
            elif param.flags.c_contiguous and all(b.flags.c_contiguous for b in slots.values()):
                # A big parameter goes through in slices of CHUNK elements, so the scratch
                # stays small (and in cache) instead of one more copy of the weights.
                flat_p, flat_g = param.reshape(-1), grad.reshape(-1)
                flat_s = {name: buf.reshape(-1) for name, buf in slots.items()}
                for start in range(0, param.size, CHUNK):
                    part = slice(start, start + CHUNK)
                    piece = {name: buf[part] for name, buf in flat_s.items()}
                    p_part = flat_p[part]
                    update(p_part, flat_g[part], piece, work[: p_part.size])
            else:  # a strided view as parameter: a whole-size temporary this once
                update(param, grad, slots, get_array_module(param).empty_like(param))

    def _check(self, key: str, param: Any, grad: Any) -> np.ndarray:
        me = type(self).__name__
        xp = get_array_module(param)
        if not isinstance(param, xp.ndarray):
            raise TypeError(
                f"{me}: parameter {key!r} must be an ndarray, got {type(param).__name__}"
            )
        if not np.issubdtype(param.dtype, np.floating):
            raise TypeError(f"{me}: parameter {key!r} must be floating point, got {param.dtype}")
        if device_of(grad) != device_of(param):
            raise ValueError(
                f"{me}: gradient for {key!r} is on {device_of(grad)} but the parameter is on "
                f"{device_of(param)}"
            )
        grad = xp.asarray(grad)
        if grad.shape != param.shape:
            raise ValueError(
                f"{me}: gradient for {key!r} has shape {grad.shape} "
                f"but the parameter has shape {param.shape}"
            )
        slots = self.state.get(key)
        if slots is not None:
            for name, buf in slots.items():
                if buf.shape != param.shape:
                    raise ValueError(
                        f"{me}: state slot '{name}/{key}' has shape {buf.shape} "
                        f"but the parameter has shape {param.shape}"
                    )
                if buf.dtype != param.dtype:  # e.g. float64 state loaded for float32 params
                    slots[name] = buf = buf.astype(param.dtype)
                if device_of(buf) != device_of(param):  # state loaded from a file: on the host
                    slots[name] = to_device(buf, device_of(param))
        return grad

    def _work(self, param: np.ndarray) -> np.ndarray:
        """Scratch for ``param``'s update: an array of its shape if it has at most
        :data:`CHUNK` elements (or the rule is not :attr:`elementwise`), else a flat one of
        ``CHUNK`` elements that its update walks through slice by slice. Shared by all
        parameters of that shape and dtype, so the scratch stays small however large the
        network is."""
        # On a GPU the whole array in one kernel per operation beats slices (no cache to fit).
        small = param.size <= CHUNK or not self.elementwise or device_of(param) != "cpu"
        shape = param.shape if small else (CHUNK,)
        spec = (shape, param.dtype, device_of(param))
        buf = self._scratch.get(spec)
        if buf is None:
            buf = self._scratch[spec] = get_array_module(param).empty(shape, dtype=param.dtype)
        return buf

    def _update(
        self, p: np.ndarray, g: np.ndarray, s: dict[str, np.ndarray], w: np.ndarray
    ) -> None:
        """Update parameter ``p`` in place from gradient ``g``, state ``s`` and scratch ``w``."""
        raise NotImplementedError

    # ---- introspection and checkpoints

    def hyperparameters(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in self.hyper_names}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({args})"

    def state_dict(self) -> dict[str, Any]:
        """A snapshot: ``{"name", "hyper", "step", "slots": {"slot/key": ndarray}}``.

        The arrays are copies, so later steps do not change the snapshot.
        """
        return {
            "name": type(self).__name__,
            "hyper": self.hyperparameters(),
            "step": self.t,
            "slots": {
                f"{name}/{key}": buf.copy()
                for key, slots in self.state.items()
                for name, buf in slots.items()
            },
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict` snapshot (the arrays are copied in).

        Raises ``ValueError`` if it belongs to another optimizer class, a
        hyperparameter or slot is unknown or missing, or a slot's shape differs
        from its parameter's (checked here when the optimizer holds parameters,
        otherwise at the first :meth:`update`).
        """
        me = type(self).__name__
        if state.get("name") != me:
            raise ValueError(f"{me}: cannot load a state saved by {state.get('name')!r}")
        hyper = dict(state["hyper"])
        if hyper.keys() != set(self.hyper_names):
            raise ValueError(
                f"{me}: state hyperparameters {sorted(hyper)} "
                f"do not match {sorted(self.hyper_names)}"
            )
        step = state["step"]
        if isinstance(step, bool) or int(step) != step or step < 0:
            raise ValueError(f"{me}: state step must be a non-negative integer, got {step!r}")

        params = dict(self._params) if self._params is not None else None
        new_state: dict[str, dict[str, np.ndarray]] = {}
        for slot_key, array in state["slots"].items():
            name, sep, key = slot_key.partition("/")
            if not sep or name not in self.slot_names:
                raise ValueError(
                    f"{me}: unknown state slot {slot_key!r}; slots are named "
                    f"'<slot>/<key>' with <slot> in {list(self.slot_names)}"
                )
            buf = np.array(to_numpy(array), copy=True)  # to the parameter's device at use
            if params is not None:
                if key not in params:
                    raise ValueError(f"{me}: state slot {slot_key!r} names no parameter")
                data = params[key].data
                if buf.shape != data.shape:
                    raise ValueError(
                        f"{me}: state slot {slot_key!r} has shape {buf.shape} "
                        f"but the parameter has shape {data.shape}"
                    )
                buf = buf.astype(data.dtype, copy=False)
            new_state.setdefault(key, {})[name] = buf
        for key, slots in new_state.items():
            missing = [name for name in self.slot_names if name not in slots]
            if missing:
                raise ValueError(f"{me}: state slot '{missing[0]}/{key}' is missing")

        for name in self.hyper_names:
            setattr(self, name, hyper[name])
        self.t = int(step)
        self.state = new_state
        self._checked.clear()  # the next update checks the loaded slots against the params
