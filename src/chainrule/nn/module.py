"""Parameter, Module and Sequential: the bookkeeping of models built on the autograd engine.

A :class:`Module` finds its parameters and submodules by watching attribute assignment
(``self.W = Parameter(...)``, ``self.fc1 = Linear(...)``), in the order they were assigned.
It owns no math: ``forward`` calls the functions of :mod:`chainrule.functions`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from chainrule.backend import device_of, to_device
from chainrule.config import Config, eval_mode, no_grad, train_mode, using_config
from chainrule.tensor import Tensor


class Parameter(Tensor):
    """A Tensor that a :class:`Module` registers as one of its trainable parameters.

    It wraps ``data`` without copying (an optimizer updates ``data`` in place) and always
    requires a gradient, so ``data`` must be floating-point.

    >>> import numpy as np
    >>> Parameter(np.zeros(2), name="b")
    Parameter([0. 0.], name='b')
    """

    __slots__ = ()

    def __init__(self, data: Any, name: str | None = None):
        super().__init__(data, name=name, requires_grad=True)

    def __repr__(self) -> str:
        return "Parameter" + super().__repr__()[len("Tensor") :]


class Module:
    """Base class of layers and models.

    Subclasses call ``super().__init__()`` first, assign :class:`Parameter` s and submodules as
    attributes, optionally :meth:`register_buffer` non-trainable arrays (running statistics),
    and implement ``forward``. Calling the module runs ``forward``.

    Train/eval: :meth:`train` and :meth:`eval` set ``training`` on the module and all its
    submodules. A call runs in training mode (dropout active, batch statistics) only if the
    module is training *and* :attr:`chainrule.Config.train` is true, so both ``model.eval()``
    and ``with chainrule.eval_mode():`` switch to evaluation.

    Names: a parameter ``W`` of the submodule assigned as ``fc1`` is ``"fc1.W"`` in
    :meth:`named_parameters` and :meth:`state_dict`.

    The trainable-model protocol (shared with the book's networks, so the trainer, checkpoints
    and the command line take either): :attr:`params`, :attr:`buffers`,
    :meth:`loss_and_grads`, :meth:`predict` and ``engine = "autograd"``. The loss is softmax
    cross-entropy on the module's output unless the module defines ``loss_fn(scores, t)``;
    a ``weight_decay`` attribute (λ) adds ``0.5 * λ * sum(W**2)`` over the weight matrices
    and kernels (parameters of two or more dimensions; not biases or batch-norm scales).
    """

    training: bool
    engine = "autograd"
    # Set in __init__ through object.__setattr__ (this class's __setattr__ needs them first).
    _parameters: dict[str, Parameter]
    _modules: dict[str, Module]
    _buffers: dict[str, Any]

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "training", True)

    def __setattr__(self, name: str, value: Any) -> None:
        registries: tuple[Any, Any] = (
            self.__dict__.get("_parameters"),
            self.__dict__.get("_modules"),
        )
        if registries[0] is None:
            raise RuntimeError(
                f"{type(self).__name__}: call super().__init__() before assigning attributes"
            )
        params, modules = registries
        params.pop(name, None)
        modules.pop(name, None)
        if isinstance(value, Parameter):
            params[name] = value
        elif isinstance(value, Module):
            modules[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        object.__delattr__(self, name)

    def register_buffer(self, name: str, array: Any) -> None:
        """Record ``array`` (kept and updated in place by the module) as state, not trained."""
        if not hasattr(array, "shape") or not hasattr(array, "dtype"):
            raise TypeError(
                f"{type(self).__name__}.register_buffer: {name!r} must be an array, "
                f"got {type(array).__name__}"
            )
        self._buffers[name] = array

    # ------------------------------------------------------------------ calling
    def forward(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__}.forward is not implemented")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # The mode inside is ``Config.train and self.training``: it differs from the mode
        # outside only for a module in eval mode called in training mode.
        if self.training or not Config.train:
            return self.forward(*args, **kwargs)
        with using_config("train", False):
            return self.forward(*args, **kwargs)

    def to(self, device: str) -> Module:
        """Move every parameter and buffer to ``device`` (``"cpu"`` or ``"cuda"``), in place.

        Arrays shared between modules stay shared. Returns the module.
        """
        from chainrule.backend import move_arrays

        return move_arrays(self, device)

    def train(self, mode: bool = True) -> Module:
        """Set training mode (``mode=False``: evaluation) here and in every submodule."""
        for _, module in self.named_modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self) -> Module:
        """Set evaluation mode here and in every submodule."""
        return self.train(False)

    # ------------------------------------------------------------------ traversal
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """``(name, module)`` for this module (name ``prefix``) and all submodules, depth first."""
        seen: set[int] = set()
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [(f"{name}.{k}" if name else k, m) for k, m in module._modules.items()]
            stack.extend(reversed(children))

    def children(self) -> Iterator[Module]:
        """The direct submodules, in assignment order."""
        yield from self._modules.values()

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """``(dotted name, parameter)`` in assignment order, each shared parameter once."""
        seen: set[int] = set()
        for prefix, module in self.named_modules():
            for name, p in module._parameters.items():
                if id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{prefix}.{name}" if prefix else name), p

    def parameters(self) -> list[Parameter]:
        """The parameters, in assignment order (what an optimizer's ``params`` takes)."""
        return [p for _, p in self.named_parameters()]

    def named_buffers(self) -> Iterator[tuple[str, Any]]:
        """``(dotted name, array)`` for every registered buffer."""
        for prefix, module in self.named_modules():
            for name, array in module._buffers.items():
                yield (f"{prefix}.{name}" if prefix else name), array

    def zero_grad(self) -> None:
        """Forget every parameter's gradient (``grad = None``)."""
        for p in self.parameters():
            p.grad = None

    # ------------------------------------------------------------------ model protocol
    @property
    def params(self) -> dict[str, Any]:
        """Parameter arrays by dotted name: each ``Parameter.data`` itself (not a copy), so an
        optimizer updating them in place trains the module."""
        return {name: p.data for name, p in self.named_parameters()}

    @property
    def buffers(self) -> dict[str, Any]:
        """Registered buffers (batch-norm running statistics) by dotted name; ``{}`` if none."""
        return dict(self.named_buffers())

    def loss_and_grads(self, x: Any, t: Any) -> tuple[float, dict[str, Any]]:
        """One forward and backward pass on a batch in training mode (modules switched to
        evaluation with :meth:`eval` stay so).

        Returns ``(loss, grads)``: the loss (plus the weight-decay term) as a ``float`` and
        each parameter's gradient keyed like :attr:`params`. Gradients are cleared first, so
        they never accumulate across calls. ``t``: class indices ``(N,)`` or ``(N, 1)``, or
        one-hot rows.
        """
        from chainrule.functions import softmax_cross_entropy

        self.zero_grad()
        loss_fn = getattr(self, "loss_fn", None) or softmax_cross_entropy
        with train_mode(), using_config("enable_backprop", True):
            loss = loss_fn(self(x), t)
            loss.backward(retain_graph=False)  # freed as it goes: a lower memory peak
        value = float(loss.data)
        grads = {}
        decay = float(getattr(self, "weight_decay", 0.0) or 0.0)
        for name, p in self.named_parameters():
            grad = p.grad if p.grad is not None else p.data * 0
            if decay and p.data.ndim >= 2:
                value += 0.5 * decay * float((p.data * p.data).sum())
                grad += decay * p.data
            grads[name] = p.grad = grad
        return value, grads

    def predict(self, x: Any) -> Any:
        """Class scores (the output array) in evaluation mode (dropout off, running batch-norm
        statistics), building no graph."""
        with no_grad(), eval_mode():
            out = self(x)
        return out.data if isinstance(out, Tensor) else out

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, np.ndarray]:
        """A snapshot: copies of every parameter's data and every buffer, by dotted name."""
        state = {name: p.data.copy() for name, p in self.named_parameters()}
        state.update((name, array.copy()) for name, array in self.named_buffers())
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Copy ``state``'s arrays into the parameters and buffers, in place.

        Every key must match exactly and every shape agree; otherwise nothing is copied and a
        ``ValueError`` names the keys (and both shapes).
        """
        me = type(self).__name__
        targets: dict[str, Any] = dict(self.named_parameters())
        targets = {name: p.data for name, p in targets.items()}
        targets.update(self.named_buffers())
        missing = [k for k in targets if k not in state]
        unexpected = [k for k in state if k not in targets]
        problems = []
        if missing:
            problems.append(f"missing keys {missing}")
        if unexpected:
            problems.append(f"unexpected keys {unexpected}")
        values = {}
        for name, target in targets.items():
            if name not in state:
                continue
            value = state[name]
            value = value.data if isinstance(value, Tensor) else value
            if not hasattr(value, "shape"):
                value = np.asarray(value)
            if value.shape != target.shape:
                problems.append(
                    f"{name!r} has shape {value.shape} in the state but {target.shape} in the model"
                )
            values[name] = value
        if problems:
            raise ValueError(f"{me}.load_state_dict: " + "; ".join(problems))
        for name, value in values.items():
            targets[name][...] = to_device(value, device_of(targets[name]))  # host state, GPU model

    # ------------------------------------------------------------------ printing
    def extra_repr(self) -> str:
        """The arguments shown between the parentheses of ``repr``."""
        return ""

    def num_parameters(self) -> int:
        """The number of trainable values (each shared parameter counted once)."""
        return sum(int(p.data.size) for _, p in self.named_parameters())

    def __repr__(self) -> str:
        """A tree like PyTorch's; a module's own parameters are listed with their shapes and
        every module that holds parameters shows how many (``#``)."""
        own = ", ".join(f"{k} {tuple(p.shape)}" for k, p in self._parameters.items())
        count = self.num_parameters()
        note = f"  # {own}: {count:,} parameters" if own else ""
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not self._modules:
            return head + ")" + note
        lines = [f"({name}): " + repr(m).replace("\n", "\n  ") for name, m in self._modules.items()]
        total = f"  # {count:,} parameters" if count else ""
        return head + "\n  " + "\n  ".join(lines) + "\n)" + total


class Sequential(Module):
    """Modules applied one after another; the ``i``-th is named ``"i"``.

    >>> from chainrule.nn import Linear, ReLU
    >>> model = Sequential(Linear(3, 4), ReLU(), Linear(4, 2))
    >>> [name for name, _ in model.named_parameters()]
    ['0.W', '0.b', '2.W', '2.b']
    """

    def __init__(self, *modules: Module):
        super().__init__()
        for i, module in enumerate(modules):
            if not isinstance(module, Module):
                raise TypeError(
                    f"Sequential: argument {i} must be a Module, got {type(module).__name__}"
                )
            setattr(self, str(i), module)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, index: int | slice) -> Module:
        modules = list(self._modules.values())
        if isinstance(index, slice):
            return Sequential(*modules[index])  # the same module objects, not copies
        return modules[index]

    def forward(self, x: Any) -> Any:
        for module in self._modules.values():
            x = module(x)
        return x
