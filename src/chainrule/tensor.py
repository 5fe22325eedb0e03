"""Tensor: an array that remembers which Function made it, and walks the graph back.

>>> from chainrule import Tensor
>>> x, y, z = Tensor(-2.0), Tensor(5.0), Tensor(-4.0)
>>> f = (x + y) * z
>>> f.backward()
>>> float(x.grad), float(y.grad), float(z.grad)
(-4.0, -4.0, 3.0)
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from chainrule.backend import get_array_module, to_numpy
from chainrule.config import Config

if TYPE_CHECKING:
    from chainrule.function import Function


def _as_data(value: Any) -> Any:
    """Wrap ``value`` as an array; Python numbers become float64 so they can carry gradients."""
    if isinstance(value, np.ndarray) or get_array_module(value) is not np:
        return value
    if isinstance(value, bool):
        return np.asarray(value)
    if isinstance(value, (int, float)):
        return np.asarray(value, dtype=np.float64)
    return np.asarray(value)


class Tensor:
    """An array with a gradient and a link to the :class:`Function` that created it.

    ``data`` is the NumPy (or CuPy) array; ``grad`` is filled by :meth:`backward` (an array of
    ``data``'s shape, or a Tensor when ``create_graph=True``); ``creator`` is the node that
    produced this value (``None`` for leaves). Python numbers become float64. Floating tensors
    require gradients by default; integer and boolean tensors (labels, masks) never do.
    """

    __slots__ = ("__weakref__", "creator", "data", "generation", "grad", "name", "requires_grad")

    # Make ``ndarray op Tensor`` defer to Tensor's reflected operators instead of NumPy
    # broadcasting over a 0-d object array.
    __array_ufunc__ = None

    def __init__(self, data: Any, name: str | None = None, requires_grad: bool | None = None):
        if type(data) is not np.ndarray:  # (an op's ndarray result goes straight through)
            data = _as_data(data.data if isinstance(data, Tensor) else data)
        kind = data.dtype.kind
        if kind not in "biufc":
            raise TypeError(f"Tensor: data must be numbers, got {data.dtype} from {data!r:.40}")
        floating = kind in "fc"
        if requires_grad is None:
            requires_grad = floating
        elif requires_grad and not floating:
            raise TypeError(
                f"Tensor{'' if name is None else ' ' + repr(name)}: only floating-point tensors "
                f"can require gradients, got dtype {data.dtype}"
            )
        self.data: Any = data  # a NumPy or CuPy array
        self.name = name
        self.grad: Any = None
        self.creator: Function | None = None
        self.generation = 0
        self.requires_grad = requires_grad

    # ---------------------------------------------------------------- array-like behaviour
    @property
    def shape(self) -> tuple[int, ...]:
        return cast("tuple[int, ...]", self.data.shape)

    @property
    def ndim(self) -> int:
        return cast(int, self.data.ndim)

    @property
    def size(self) -> int:
        return cast(int, self.data.size)

    @property
    def dtype(self) -> np.dtype:
        return cast(np.dtype, self.data.dtype)

    def __len__(self) -> int:
        return len(self.data)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        a = np.asarray(self.data) if dtype is None else np.asarray(self.data, dtype=dtype)
        return a.copy() if copy else a

    def numpy(self) -> np.ndarray:
        """The data as a NumPy array (copied from the GPU if needed)."""
        return to_numpy(self.data)

    def item(self) -> float:
        return cast(float, self.data.item())

    def __float__(self) -> float:
        return float(self.data)

    def __repr__(self) -> str:
        body = np.array2string(to_numpy(self.data), prefix="Tensor(").replace("\n", "\n ")
        extra = "" if self.name is None else f", name={self.name!r}"
        if self.grad is not None:  # the gradient backward() left here, shown like the value
            extra += f", grad={np.array2string(to_numpy(_raw(self.grad)), prefix='  ')}"
        if self.creator is not None:
            extra += f", creator={type(self.creator).__name__}"
        return f"Tensor({body}{extra})"

    # ---------------------------------------------------------------- the backward walk
    def backward(
        self,
        dout: Any = None,
        retain_grad: bool = False,
        create_graph: bool = False,
        *,
        retain_graph: bool = True,
        on_node: Callable[[Function, Any, tuple[Any, ...], tuple[bool, ...]], None] | None = None,
    ) -> None:
        """Backpropagate from this tensor through the graph that produced it.

        ``dout`` is the upstream gradient (default 1, allowed only for a single-element tensor).
        Gradients accumulate (``+=``) into ``.grad`` of every leaf that needs one, across calls
        too (call :meth:`cleargrad` between independent passes). Intermediate gradients are
        freed as soon as used, unless ``retain_grad``: then they accumulate on ``.grad`` as well.
        With ``create_graph`` the backward pass is recorded too, so the resulting ``.grad``
        Tensors can be differentiated again.

        ``retain_graph=False`` (a training loop's choice) frees the graph as the walk goes: each
        node forgets what its forward saved and its inputs as soon as its own backward has run,
        so every value is released once no gradient below it needs it, and backward's memory
        peak stays near the forward pass's. The graph can then not be walked, explained or
        drawn again (that raises :class:`~chainrule.function.GraphFreedError`). The default
        keeps it, for a second ``backward`` (which adds to ``.grad``), ``explain`` and pictures;
        ``create_graph=True`` keeps it too, whatever ``retain_graph`` says.

        ``on_node(f, dout, dxs, forked)`` is called after each node's backward, with its
        upstream gradient, the gradients it passed down, and for each input whether they were
        added (``+=``) to a gradient that had already arrived in this pass (a fork);
        :mod:`chainrule.explain` uses it.
        """
        # 0. Seed: dout (default 1) flows into this tensor.
        seed = self._seed(dout, create_graph)
        grads = _GradFlow(seed, retain_grad)
        grads.arrive(self, seed)
        # 1. Order: a max-heap on generation, so each node runs after every node that consumes
        #    its output (all contributions to its upstream gradient have arrived).
        f = self.creator
        heap: list[tuple[int, int, Function]] = [] if f is None else [(-f.generation, 0, f)]
        queued = {id(f): f}  # functions already in the heap (each runs once), held to the end
        free = not (retain_graph or create_graph)
        # 2. Walk back: downstream = upstream x local derivative (inside each op's backward);
        #    `+=` where a value fans out to several consumers.
        # (as using_config("enable_backprop", create_graph), without its per-call overhead)
        backprop, Config.enable_backprop = Config.enable_backprop, create_graph
        try:
            while heap:
                f = heapq.heappop(heap)[2]
                inputs, dy = f.inputs, grads.take(f)  # GraphFreedError if an earlier walk freed f
                dxs = f.backward_on_graph(dy) if create_graph else f.backward(dy)
                dxs = dxs if isinstance(dxs, tuple) else (dxs,)
                forked, x, dx = [], None, None
                for x, dx in zip(inputs, dxs):
                    wanted = dx is not None and isinstance(x, Tensor) and x.requires_grad
                    forked.append(wanted and grads.arrive(x, dx))
                    g = x.creator if wanted else None
                    if g is not None and id(g) not in queued:
                        queued[id(g)] = g
                        heapq.heappush(heap, (-g.generation, len(queued), g))
                if on_node is not None:
                    on_node(f, dy, dxs, tuple(forked))
                if free:  # its inputs may now die, unless something else (the user) holds them
                    f.release()
                del inputs, dy, dxs, x, dx  # this node's values must not outlive its turn
        finally:
            Config.enable_backprop = backprop

    def _seed(self, dout: Any, create_graph: bool) -> Any:
        """The upstream gradient the walk starts from, checked against this tensor."""
        if not self.requires_grad:
            raise RuntimeError(
                "backward(): this tensor does not require gradients (it is not floating-point, "
                "or it was computed under no_grad() from tensors that need none)"
            )
        xp = get_array_module(self.data)
        if dout is None:
            if self.size != 1:
                raise ValueError(
                    f"backward(): a seed gradient `dout` is needed for a non-scalar tensor of "
                    f"shape {self.shape}; pass dout with that shape (e.g. ones)"
                )
            dout = xp.ones(self.data.shape, dtype=self.data.dtype)
        else:
            dout = dout.data if isinstance(dout, Tensor) else xp.asarray(dout, dtype=self.dtype)
            if dout.shape != self.shape:
                raise ValueError(
                    f"backward(): dout has shape {dout.shape} but the tensor has shape {self.shape}"
                )
        return Tensor(dout, requires_grad=False) if create_graph else dout

    def cleargrad(self) -> None:
        """Forget the accumulated gradient."""
        self.grad = None

    def detach(self) -> Tensor:
        """The same data as a new leaf, cut from the graph (shares memory)."""
        return Tensor(self.data, name=self.name, requires_grad=False)

    # ---------------------------------------------------------------- operators
    def __add__(self, other: Any) -> Tensor:
        return F.add(self, other)

    def __radd__(self, other: Any) -> Tensor:
        return F.add(other, self)

    def __sub__(self, other: Any) -> Tensor:
        return F.sub(self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return F.sub(other, self)

    def __mul__(self, other: Any) -> Tensor:
        return F.mul(self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return F.mul(other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return F.div(self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return F.div(other, self)

    def __neg__(self) -> Tensor:
        return F.neg(self)

    def __pos__(self) -> Tensor:
        return self

    def __pow__(self, exponent: Any) -> Tensor:
        return F.pow(self, exponent)

    def __matmul__(self, other: Any) -> Tensor:
        return F.matmul(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return F.matmul(other, self)

    def __getitem__(self, index: Any) -> Tensor:
        return F.get_item(self, index)

    # Comparisons give plain boolean arrays: they have no gradient.
    def __lt__(self, other: Any) -> Any:
        return self.data < _raw(other)

    def __le__(self, other: Any) -> Any:
        return self.data <= _raw(other)

    def __gt__(self, other: Any) -> Any:
        return self.data > _raw(other)

    def __ge__(self, other: Any) -> Any:
        return self.data >= _raw(other)

    # ---------------------------------------------------------------- methods
    @property
    def T(self) -> Tensor:
        return cast(Tensor, F.transpose(self))

    def transpose(self, *axes: Any) -> Tensor:
        order: Any = axes
        if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
            order = axes[0]
        return cast(Tensor, F.transpose(self, order or None))

    def reshape(self, *shape: Any) -> Tensor:
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return cast(Tensor, F.reshape(self, shape))

    def sum(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return F.sum(self, axis, keepdims)

    def mean(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return F.mean(self, axis, keepdims)

    def max(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return F.max(self, axis, keepdims)

    def min(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return F.min(self, axis, keepdims)

    def exp(self) -> Tensor:
        return F.exp(self)

    def log(self) -> Tensor:
        return F.log(self)

    def astype(self, dtype: Any) -> Tensor:
        """A new leaf holding the data in ``dtype`` (not part of the graph)."""
        return Tensor(self.data.astype(dtype), name=self.name)


class _GradFlow:
    """The memory policy of one backward pass: where gradients wait, and who may own them.

    * The gradient flowing into an intermediate value waits here (``flow``, keyed by the
      value's creator, which the walk holds even when a freeing walk lets the value go), apart
      from the value's ``.grad``, until that creator runs; then it is freed, or with
      ``retain_grad`` added to ``.grad``. So a retained ``.grad`` never leaks into a later pass.
    * A gradient stored on ``.grad`` is the user's to keep and modify: never a read-only or
      broadcast view, never the seed, another stored gradient or one still flowing (an op's
      backward may return its ``dout``, or the same array for two inputs); those are copied.
    """

    def __init__(self, seed: Any, retain_grad: bool):
        self.flow: dict[int, Any] = {}
        self.stored: dict[int, Any] = {id(seed): seed}  # kept alive so the ids stay unique
        self.leaves_reached: set[int] = set()
        self.retain_grad = retain_grad

    def arrive(self, x: Tensor, dx: Any) -> bool:
        """Add ``dx`` to what flows into ``x``; True if some had already arrived (a fork)."""
        f = x.creator
        if f is not None:
            forked = id(f) in self.flow
            self.flow[id(f)] = self.flow[id(f)] + dx if forked else dx
            return forked
        forked = id(x) in self.leaves_reached
        self.leaves_reached.add(id(x))
        self.store(x, dx)
        return forked

    def take(self, f: Function) -> Any:
        """The gradient that flowed into ``f``'s output, leaving this pass (``f`` runs now)."""
        dy = self.flow.pop(id(f))
        y = f.output() if self.retain_grad else None  # None too if no one holds it any more
        if y is not None:
            self.store(y, dy)
        return dy

    def store(self, x: Tensor, dx: Any) -> None:
        if x.grad is not None:
            dx = x.grad + dx  # a new array: never writes into one the user holds
        elif self.held(dx):
            dx = dx.copy()
        if isinstance(dx, np.generic):  # NumPy's 0-d results are scalars: keep an array
            dx = np.asarray(dx)
        self.stored[id(dx)] = x.grad = dx

    def held(self, dx: Any) -> bool:
        """Is ``dx`` a view, or an array that the seed, a ``.grad`` or the flow holds?"""
        flags = getattr(dx, "flags", None)  # None for Tensors (create_graph) and scalars
        return flags is not None and (
            not flags.owndata
            or not getattr(flags, "writeable", True)
            or id(dx) in self.stored
            or id(dx) in map(id, self.flow.values())
        )


def _raw(x: Any) -> Any:
    return x.data if isinstance(x, Tensor) else x


def as_tensor(x: Any) -> Tensor:
    """``x`` itself if it is a Tensor, else a new leaf Tensor wrapping it."""
    return x if isinstance(x, Tensor) else Tensor(x)


# The ops module imports this one; importing it last keeps the cycle harmless.
from chainrule import functions as F  # noqa: E402
