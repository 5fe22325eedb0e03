"""The node of a computational graph, and the one place where graph bookkeeping happens.

A :class:`Function` has the same contract as the book's layers:

* ``forward(*arrays)`` computes the output from NumPy arrays (or Python numbers) and keeps on
  ``self`` whatever ``backward`` will need;
* ``backward(dout)`` returns ``dout x local derivative`` for each input, in input order
  (a single value when there is one input).

So every op is usable by hand, exactly like ``MulLayer`` in the apple example::

    >>> from chainrule.functions import Mul
    >>> mul = Mul()
    >>> mul.forward(100, 2)
    200
    >>> mul.backward(1.1)
    (2.2, 110.00000000000001)

Calling the function instead (``Mul()(x, y)``) on :class:`~chainrule.tensor.Tensor` inputs runs
the same ``forward`` and, in :meth:`Function.__call__`, links the output to this node so that
``Tensor.backward`` can walk the graph back. Op classes contain only math; they never touch
``Tensor``, ``creator`` or generations.

Higher-order derivatives: a backward formula written with operators and methods that NumPy
arrays and Tensors share (``*``, ``@``, ``.T``, ``.sum``, ``.reshape`` ...) can be *re-run on
Tensors*. ``__call__`` records which array objects ``forward`` received and returned; with
``create_graph=True`` the engine calls :meth:`Function.backward_on_graph`, which puts the
corresponding Tensors in the saved attributes that hold those very objects, for the duration of
the very same ``backward``. (Two inputs that share one array, as in ``x.detach() / x``, reach
``forward`` as distinct views, so each saved value is unambiguous.) The local derivative is thus
written once and serves first-order backprop on raw arrays (fast) and double backprop on Tensors
(recorded). Ops whose backward is not written that way leave ``differentiable_backward = False``
and say so when asked for a second derivative.
"""

from __future__ import annotations

import weakref
from typing import Any

from chainrule.config import Config
from chainrule.tensor import Tensor

# Attributes of a Function that are graph bookkeeping, never saved values to swap.
_BOOKKEEPING = frozenset({"inputs", "output", "generation", "_ids", "needs_input_grad"})


class Function:
    """Base class of every differentiable operation (and of the book's simple layers).

    Subclasses implement ``forward(*xs)`` and ``backward(dout)``. Only one output per node.
    Inputs beyond the gradients that ``backward`` returns (labels, say) are constants.
    """

    #: ``backward`` uses only operations shared by arrays and Tensors, so it can be recorded.
    differentiable_backward: bool = False

    #: Which inputs need a gradient (``None``: all). Set per call on the graph; a layer used by
    #: hand may set it so ``backward`` skips work whose result nobody uses.
    needs_input_grad: tuple[bool, ...] | None = None

    def wants_grad(self, i: int) -> bool:
        """Should ``backward`` compute the gradient of input ``i``?"""
        return self.needs_input_grad is None or self.needs_input_grad[i]

    inputs: tuple[Any, ...]
    output: weakref.ref[Tensor]
    generation: int

    def forward(self, *xs: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__}.forward is not implemented")

    def backward(self, dout: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__}.backward is not implemented")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # The one validation path: a raw NumPy/Python error inside an op's forward or backward
        # is re-raised naming the op and its inputs (chainrule.functions.checks.rephrase).
        super().__init_subclass__(**kwargs)
        from chainrule.functions.checks import name_errors  # importable while ops are defined

        name_errors(cls)

    def __call__(self, *inputs: Any) -> Tensor:
        # One pass over the inputs: the arrays for forward, which inputs want a gradient, and
        # the latest generation among those (plain loops: this runs once per op call).
        xs, wanted, generation = [], [], -1
        for x in inputs:
            tensor = isinstance(x, Tensor)
            xs.append(x.data if tensor else x)
            wanted.append(tensor and x.requires_grad)
            generation = max(generation, x.generation) if wanted[-1] else generation
        if len(xs) > 1 and len(set(map(id, xs))) < len(xs):  # one array twice: distinct views
            xs = _distinct(xs)
        settings = len(vars(self))  # what the op held before forward (__init__'s): kept by release
        raw = self.forward(*xs)
        # A result needs a gradient only when it is linked to an input that does (below):
        # under no_grad(), or from constants, it is a plain leaf.
        y = Tensor(raw, requires_grad=False)
        if Config.enable_backprop and generation >= 0:
            if self.differentiable_backward:  # what forward saved is found by these
                self._ids = (*map(id, xs), id(raw))
            self.needs_input_grad, self.inputs, self.generation = tuple(wanted), inputs, generation
            # A weak link to the output: the graph is kept alive from the loss backwards
            # (outputs own their creators, creators own their inputs), never in a cycle.
            self.output, self._settings = weakref.ref(y), settings
            y.creator, y.generation, y.requires_grad = self, generation + 1, True
        return y

    def backward_on_graph(self, dout: Tensor) -> Any:
        """Run ``backward`` on Tensors so that the backward pass is itself a graph."""
        if not self.differentiable_backward:
            raise NotImplementedError(
                f"{type(self).__name__}: second-order gradients (create_graph=True) are not "
                "supported through this op"
            )
        values = (*self.inputs, self.output())
        where = {ident: values[i] for i, ident in reversed(list(enumerate(self._ids)))}
        saved = dict(vars(self))
        try:
            for key, value in saved.items():
                if key not in _BOOKKEEPING and isinstance(where.get(id(value)), Tensor):
                    setattr(self, key, where[id(value)])
            return self.backward(dout)
        finally:
            vars(self).update(saved)

    def release(self) -> None:
        """Forget what ``forward`` saved and the inputs: ``backward(retain_graph=False)`` is
        done with this node. Its settings (what ``__init__`` set, which come first in its
        ``__dict__``) and its generation stay, so the op object can still be called again."""
        self.__dict__ = dict(list(vars(self).items())[: self._settings], generation=self.generation)

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails: a value that forward saves is missing, which
        # means backward (or kink_state) ran before forward. Say so instead of AttributeError.
        freed = "generation" in vars(self) and "inputs" not in vars(self)  # by release()
        if name.startswith("__") or (name in _BOOKKEEPING and not freed):
            raise AttributeError(name)
        from chainrule.functions.checks import label_of  # a layer's own name, else the class

        if freed:
            raise GraphFreedError(
                f"{label_of(self)}: this graph was freed by backward(retain_graph=False); run "
                "the forward pass again for a new one (or keep the graph: retain_graph=True)"
            )

        raise BackwardBeforeForwardError(
            f"{label_of(self)}: backward() was called before forward() (nothing saved yet: "
            f"missing {name!r})"
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


def _distinct(xs: list[Any]) -> list[Any]:
    """``xs`` with any array that appears twice replaced, the second time, by a view of it."""
    seen: set[int] = set()
    for i, x in enumerate(xs):
        if id(x) in seen and hasattr(x, "view"):
            xs[i] = x.view()
        seen.add(id(xs[i]))
    return xs


class DeviceMismatchError(TypeError):
    """An op got arrays from the CPU and the GPU at once."""


class GraphFreedError(RuntimeError):
    """A graph that ``backward(retain_graph=False)`` freed was walked, explained or drawn."""


class BackwardBeforeForwardError(RuntimeError, AttributeError):
    """``backward`` was called on a layer or op whose ``forward`` has not run."""
