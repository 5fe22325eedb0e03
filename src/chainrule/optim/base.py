"""The optimizers' shared machinery: hyperparameter checks, the calling styles, the update loop
(validation, non-finite check, hooks, state allocation, slicing of big parameters) and
checkpoints. A rule (:mod:`chainrule.optim.rules`) only writes :meth:`Optimizer._update`
for one parameter.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from typing import Any

import numpy as np

from chainrule.backend import device_of, get_array_module

from .checks import (
    NonFiniteGradient,
    check_item,
    collect,
    is_number,
    load_slots,
    require_finite,
    scalar_like,
    split_first,
)

#: Parameters with more elements than this are updated in slices of this many elements, each
#: through the same small scratch array (256 KiB in float32: it stays in the CPU's L2 cache).
#: The arithmetic is element-wise, so the result is bit for bit the same as in one piece.
CHUNK = 1 << 16

#: What ``params`` may be: parameter-like objects (``.data`` array and ``.grad``) as a list,
#: a generator (``model.parameters()``), ``(name, parameter)`` pairs or a dict, or a dict
#: of name -> ndarray (a book network's ``params``: then ``step(grads)``).
Params = Iterable[Any] | Mapping[Any, Any]
#: A hook: ``hook(params, grads)`` with dicts key -> array; it may replace entries of
#: ``grads`` (never write into the arrays: they belong to the caller).
Hook = Callable[[dict[str, Any], dict[str, Any]], None]

__all__ = ["CHUNK", "Hook", "NonFiniteGradient", "Optimizer", "Params"]


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
        if not is_number(value):
            raise TypeError(f"{where} must be a real number, got {value!r}")
        number = float(value)
        problem = self.check(number) if math.isfinite(number) else "must be finite"
        if problem is not None:
            raise ValueError(f"{where} {problem}, got {value!r}")
        obj.__dict__[self.name] = number


class _Choice:
    """A string option (such as Adam's ``variant``), one of ``choices``; the first is default."""

    def __init__(self, *choices: str) -> None:
        self.choices = choices
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        return self if obj is None else obj.__dict__.get(self.name, self.choices[0])

    def __set__(self, obj: Any, value: Any) -> None:
        if value not in self.choices:
            raise ValueError(
                f"{type(obj).__name__}: {self.name} must be one of {list(self.choices)}, "
                f"got {value!r}"
            )
        obj.__dict__[self.name] = value


# --------------------------------------------------------------------------- base class


class Optimizer:
    """Shared machinery: the calling styles, validation, hooks, state and checkpoints.

    A subclass lists its hyperparameters in ``hyper_names`` (each a :class:`_Hyper`
    class attribute), string options in ``option_names`` (each a :class:`_Choice`), the
    names of its per-parameter state arrays in ``slot_names``, and implements
    :meth:`_update` for one parameter.

    Attributes:
        t: number of steps taken so far, the ``t`` of the formulas. Every call to
            :meth:`update` or :meth:`step` counts once, whichever parameters it touched.
        state: ``{key: {slot: ndarray}}``, allocated at a key's first update.
        hooks: callables run on the gradients before every update (:meth:`add_hook`).
        check_finite: refuse a gradient holding NaN or inf (:class:`NonFiniteGradient`,
            nothing updated). One reduction per gradient; a caller that checks already
            (the trainer) may set it to False.
    """

    #: The learning rate :func:`~chainrule.optim.optimizer_from_name` (and so the CLI) uses
    #: when none is given: tuned for training the MNIST nets.
    default_lr: float = 0.01
    #: The constructor's default ``lr``: the book's (``SGD()`` is ``SGD(lr=0.01)``, as the
    #: book's chapter 6 scripts expect).
    book_lr: float = 0.01
    hyper_names: tuple[str, ...] = ("lr",)
    option_names: tuple[str, ...] = ()
    slot_names: tuple[str, ...] = ()
    check_finite: bool = True
    #: ``_update`` works element by element and changes ``p`` and the state slots in place,
    #: so a parameter of more than :data:`CHUNK` elements may go through it in flat slices.
    #: Every rule in this package sets it. A subclass that writes its own ``_update`` gets
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
        params_or_lr: Params | float | None = None,
        /,
        *,
        params: Params | None = None,
        **hyper: Any,
    ) -> None:
        me = type(self).__name__
        params, lr = split_first(me, params_or_lr, params, hyper.get("lr"), self.hyper_names)
        hyper["lr"] = self.book_lr if lr is None else lr
        for name in (*self.hyper_names, *self.option_names):
            setattr(self, name, hyper[name])
        self.t = 0
        self.state: dict[str, dict[str, np.ndarray]] = {}
        self.hooks: list[Hook] = []
        self._scratch: dict[tuple[tuple[int, ...], np.dtype, str], Any] = {}
        # key -> (parameter type, (dtype, shape, gradient dtype and shape), state slots,
        # scratch) of the last update that passed the full check; see _apply.
        self._checked: dict[str, tuple[Any, tuple[Any, ...], dict[str, np.ndarray], Any]] = {}
        self._params: list[tuple[str, Any]] | None = None
        self._arrays = False  # params given as a dict of arrays: step(grads)
        if params is not None:
            self._params, self._arrays = collect(me, params)

    # ---- the calling styles

    def update(self, params: MutableMapping[Any, Any], grads: Mapping[Any, Any]) -> None:
        """The book's interface: update every ``params[key]`` from ``grads[key]``.

        Arrays are updated **in place** (the book's layers hold the very same arrays), so a
        list that keeps ``params["W"]`` from step to step keeps one array, which ends up
        holding the last value: store ``params["W"].copy()``. A Python float or NumPy scalar
        cannot change in place: its dict entry is replaced by the new value (of its type).
        """
        try:
            same = params.keys() == grads.keys()
        except AttributeError:
            raise TypeError(
                f"{type(self).__name__}.update(params, grads) takes two dicts keyed alike, got "
                f"{type(params).__name__} and {type(grads).__name__}"
            ) from None
        if not same:
            me = type(self).__name__
            no_grad = [k for k in params if k not in grads]
            no_param = [k for k in grads if k not in params]
            parts = []
            if no_grad:
                parts.append(f"params has no gradient for {no_grad}")
            if no_param:
                parts.append(f"grads has keys with no parameter: {no_param}")
            raise ValueError(f"{me}: params and grads must have the same keys; " + "; ".join(parts))
        keys = list(params)
        new = self._apply([(k if type(k) is str else str(k), params[k], grads[k]) for k in keys])
        for i, value in new:  # scalars, rebound in the dict
            params[keys[i]] = value

    def step(self, grads: Mapping[Any, Any] | None = None) -> None:
        """PyTorch's interface: update each parameter given at construction from its
        ``.grad``, skipping ``None``s; for a dict of arrays, from ``grads`` (keyed alike)."""
        me = type(self).__name__
        attached = self._require_params("step")
        if self._arrays:
            if grads is None:
                raise TypeError(
                    f"{me}.step() needs grads: these parameters are arrays, which carry no "
                    ".grad; call step(grads) with a dict keyed like params"
                )
            self.update(dict(attached), grads)
            return
        if grads is not None:
            raise TypeError(
                f"{me}.step(grads) is for parameters given as arrays; these carry .grad"
            )
        items = [(key, p.data, p.grad) for key, p in attached]
        self._apply([item for item in items if item[2] is not None])

    def zero_grad(self) -> None:
        """Set ``.grad = None`` on each parameter given at construction (arrays: nothing)."""
        for _, p in self._require_params("zero_grad"):
            if not self._arrays:
                p.grad = None

    def add_hook(self, hook: Hook) -> Hook:
        """Run ``hook(params, grads)`` before every update, after the checks (as DeZero's
        ``add_hook``); see :mod:`chainrule.optim.hooks`. Hooks are not part of
        :meth:`state_dict`: add them again after a resume. Returns ``hook``."""
        if not callable(hook):
            raise TypeError(f"{type(self).__name__}: a hook must be callable, got {hook!r}")
        self.hooks.append(hook)
        return hook

    def _require_params(self, method: str) -> list[tuple[str, Any]]:
        if self._params is None:
            raise RuntimeError(
                f"{type(self).__name__}.{method}() needs parameters: construct it with "
                "params=..., or call update(params, grads) instead"
            )
        return self._params

    # ---- the update loop

    def _apply(self, items: list[tuple[str, Any, Any]]) -> list[tuple[int, Any]]:
        """Check every ``(key, param, grad)``, then update them all; return ``(index, new
        value)`` for each scalar parameter (it cannot change in place).

        Everything is checked before anything changes, so a bad gradient leaves all
        parameters, the state and ``t`` untouched. The full check (:meth:`_check`) runs
        the first time a key is seen; it records what it accepted in ``_checked``. A
        later step whose parameter has the same type, dtype and shape, whose gradient is
        an ndarray of that dtype and shape, and whose state slots are the same dict, would
        pass the full check again, so it only makes those O(1) comparisons. Anything else
        (another shape or dtype, a list for a gradient, state replaced by
        :meth:`load_state_dict`) goes through the full check again.
        """
        checked = self._checked
        state = self.state
        todo: list[tuple[Any, ...]] = []
        scalars: list[tuple[int, Any, Any]] = []
        for i, (key, param, grad) in enumerate(items):
            seen = checked.get(key)
            if (
                seen is not None
                and type(param) is seen[0]
                and type(grad) is seen[0]
                and (param.dtype, param.shape, grad.dtype, grad.shape) == seen[1]
                and state.get(key) is seen[2]
            ):
                todo.append((key, param, grad, seen[2], seen[3]))
            else:
                array, grad = check_item(type(self).__name__, key, param, grad, self.state)
                if array is not param:
                    scalars.append((i, array, param))
                todo.append((key, array, grad, None, None))
        if self.check_finite:
            require_finite(type(self).__name__, todo)
        if self.hooks:
            todo = self._run_hooks(todo)
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
                spec = (param.dtype, param.shape, grad.dtype, grad.shape)
                checked[key] = (type(param), spec, slots, work)
            if work.size == param.size:
                update(param, grad, slots, work)
            else:
                self._update_big(param, grad, slots, work)
        return [(i, scalar_like(array, original)) for i, array, original in scalars]

    def _update_big(self, param: Any, grad: Any, slots: dict[str, Any], work: Any) -> None:
        """:meth:`_update` for a parameter of more than :data:`CHUNK` elements."""
        update = self._update
        if param.flags.c_contiguous and all(b.flags.c_contiguous for b in slots.values()):
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

    def _run_hooks(self, todo: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """``todo`` with the gradients the hooks left in the ``grads`` dict they were given."""
        params = {entry[0]: entry[1] for entry in todo}
        grads = {entry[0]: entry[2] for entry in todo}
        for hook in self.hooks:
            hook(params, grads)
        for key, param, *_ in todo:
            grad = grads.get(key)
            if getattr(grad, "shape", None) != param.shape:
                raise ValueError(
                    f"{type(self).__name__}: after hook(s) {self.hooks}, the gradient for "
                    f"{key!r} is {type(grad).__name__} of shape {getattr(grad, 'shape', None)}, "
                    f"not an array of the parameter's shape {param.shape}"
                )
        return [(key, param, grads[key], *rest) for key, param, _, *rest in todo]

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

    def hyperparameters(self) -> dict[str, Any]:
        """The float hyperparameters, and each string option that is not its default."""
        found: dict[str, Any] = {name: getattr(self, name) for name in self.hyper_names}
        for name in self.option_names:
            value = getattr(self, name)
            if value != getattr(type(self), name).choices[0]:
                found[name] = value
        return found

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

        Raises ``ValueError`` if it belongs to another optimizer class, a hyperparameter or
        slot is unknown or missing, or a slot's shape differs from its parameter's (checked
        here for the parameters given at construction, otherwise at the first update). A
        failed load changes nothing.
        """
        me = type(self).__name__
        if state.get("name") != me:
            raise ValueError(f"{me}: cannot load a state saved by {state.get('name')!r}")
        hyper = dict(state["hyper"])
        required = set(self.hyper_names)
        if not required <= hyper.keys() <= required | set(self.option_names):
            raise ValueError(
                f"{me}: state hyperparameters {sorted(hyper)} "
                f"do not match {sorted(self.hyper_names)}"
            )
        step = state["step"]
        if isinstance(step, bool) or int(step) != step or step < 0:
            raise ValueError(f"{me}: state step must be a non-negative integer, got {step!r}")
        for name in self.option_names:  # a missing option was at its default when saved
            hyper.setdefault(name, getattr(type(self), name).choices[0])
        probe = object.__new__(type(self))  # validate every value before setting any
        for name, value in hyper.items():
            setattr(probe, name, value)
        new_state = load_slots(me, state["slots"], self.slot_names, self._params, self._arrays)
        for name, value in hyper.items():
            setattr(self, name, value)
        self.t = int(step)
        self.state = new_state
        self._checked.clear()  # the next update checks the loaded slots against the params
