"""What to feed each layer: the book's layers by name, or what a class declares.

A :class:`Spec` gives the constructor arguments, the inputs of ``forward`` (in order), which of
them get a gradient from ``backward``, and for the book's layers a reference: chainrule's own
layer of that name, whose forward the learner's is compared with.

**Declaring your own layer.** A class that is not one of the book's says what it needs with
class attributes (or the :func:`checkable` decorator, which sets them)::

    class Square:
        check_inputs = {"x": (4, 3)}      # forward's arguments, in order: a shape (random
                                          # normal values) or an array (used as given)
        check_init = {}                   # constructor keyword arguments (shapes become
                                          # random arrays too; other values pass as they are)
        check_grads = ("x",)              # optional: the inputs backward returns gradients
                                          # for, in order (default: all float inputs)
        check_loss = False                # optional: True when forward returns a scalar loss
                                          # (backward is then called with dout = 1)

        def forward(self, x): ...
        def backward(self, dout): ...

``check_as = "Relu"`` checks a class under another name as that book layer. Parameters with a
gradient are found by name: an array attribute ``W`` with a gradient attribute ``dW`` set by
``backward`` (``gamma``/``dgamma`` ...).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

#: Reference: (layer instance, inputs, the learner's output) -> chainrule's output.
Reference = Callable[[Any, dict[str, Any], Any], Any]


@dataclasses.dataclass
class Spec:
    init_args: tuple[Any, ...]
    inputs: dict[str, Any]
    grads: tuple[str, ...]
    init_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    forward_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    params: dict[str, str] | None = None
    book_name: str | None = None
    reference: Reference | None = None
    #: {description: f(inputs)} of wrong operations worth naming (AddLayer that multiplies).
    wrong_ops: dict[str, Callable[[dict[str, Any]], Any]] = dataclasses.field(default_factory=dict)
    want_op: str = ""
    loss: bool = False
    #: Tolerances. The book's cross-entropy adds 1e-7 inside the log, which moves its exact
    #: gradient by about 1e-7 / y: 1e-5 leaves room for that and still catches any real bug.
    rtol: float = 1e-6
    forward_rtol: float = 1e-6
    #: Forward factors that are a convention, not a bug (IdentityWithLoss summed over N).
    forward_factor_ok: tuple[float, ...] = ()
    #: Makes a chainrule layer that sees the same inputs; its kink_state() marks kink crossings.
    probe: Callable[[], Any] | None = None
    guessed: bool = False


def _away_from_zero(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    x = rng.standard_normal(shape)
    return np.sign(x) * (0.1 + np.abs(x))  # |x| >= 0.1: no ±h step crosses ReLU's kink


def _distinct(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    # values 0.05 apart: no ±h step changes which entry of a pooling window is the largest
    n = int(np.prod(shape))
    return ((rng.permutation(n) - n / 2) * 0.05).reshape(shape)


def _elementwise(
    name: str, rng: np.random.Generator, chain_cls: Any, x: np.ndarray, kinked: bool
) -> Spec:
    return Spec(
        (),
        {"x": x},
        ("x",),
        book_name=name,
        reference=lambda layer, inp, out: chain_cls().forward(inp["x"]),
        probe=chain_cls if kinked else None,
    )


def _binary(name: str, rng: np.random.Generator) -> Spec:
    x, y = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    add = name == "AddLayer"
    return Spec(
        (),
        {"x": x, "y": y},
        ("x", "y"),
        book_name=name,
        reference=lambda layer, i, out: i["x"] + i["y"] if add else i["x"] * i["y"],
        wrong_ops={"x * y": lambda i: i["x"] * i["y"]}
        if add
        else {"x + y": lambda i: i["x"] + i["y"]},
        want_op="x + y" if add else "x * y",
    )


def _affine(rng: np.random.Generator) -> Spec:
    from chainrule.layers import Affine

    W, b = rng.standard_normal((3, 2)), rng.standard_normal(2)

    def ref(layer: Any, inp: dict[str, Any], out: Any) -> Any:
        W2, b2 = getattr(layer, "W", W), getattr(layer, "b", b)
        return Affine(np.array(W2), np.array(b2)).forward(inp["x"])

    return Spec(
        (W, b),
        {"x": rng.standard_normal((4, 3))},
        ("x",),
        params={"W": "dW", "b": "db"},
        book_name="Affine",
        reference=ref,
    )


def _loss(name: str, rng: np.random.Generator) -> Spec:
    from chainrule.layers import IdentityWithLoss, SoftmaxWithLoss

    x = rng.standard_normal((4, 3))
    softmax = name == "SoftmaxWithLoss"
    t = np.eye(3)[rng.integers(0, 3, 4)] if softmax else rng.standard_normal((4, 3))
    chain_cls = SoftmaxWithLoss if softmax else IdentityWithLoss
    return Spec(
        (),
        {"x": x, "t": t},
        ("x",),
        book_name=name,
        reference=lambda layer, inp, out: chain_cls().forward(inp["x"], inp["t"]),
        loss=True,
        rtol=1e-5 if softmax else 1e-6,
        forward_rtol=1e-5,
        forward_factor_ok=() if softmax else (4.0,),
    )


def _convolution(rng: np.random.Generator) -> Spec:
    from chainrule.layers import Convolution

    W, b = rng.standard_normal((2, 3, 3, 3)), rng.standard_normal(2)

    def ref(layer: Any, inp: dict[str, Any], out: Any) -> Any:
        W2, b2 = np.array(getattr(layer, "W", W)), np.array(getattr(layer, "b", b))
        return Convolution(W2, b2, 1, 1).forward(inp["x"])

    return Spec(
        (W, b, 1, 1),
        {"x": rng.standard_normal((2, 3, 5, 5))},
        ("x",),
        params={"W": "dW", "b": "db"},
        book_name="Convolution",
        reference=ref,
    )


def _pooling(rng: np.random.Generator) -> Spec:
    from chainrule.layers import Pooling

    return Spec(
        (2, 2, 2, 0),
        {"x": _distinct(rng, (2, 2, 4, 4))},
        ("x",),
        book_name="Pooling",
        reference=lambda layer, inp, out: Pooling(2, 2, 2, 0).forward(inp["x"]),
        probe=lambda: Pooling(2, 2, 2, 0),
    )


def _batchnorm(rng: np.random.Generator) -> Spec:
    from chainrule.layers import BatchNormalization

    gamma, beta = 1 + 0.1 * rng.standard_normal(4), rng.standard_normal(4)

    def ref(layer: Any, inp: dict[str, Any], out: Any) -> Any:
        g, b = np.array(getattr(layer, "gamma", gamma)), np.array(getattr(layer, "beta", beta))
        return BatchNormalization(g, b).forward(inp["x"], True)

    return Spec(
        (gamma, beta),
        {"x": 1 + 2 * rng.standard_normal((5, 4))},
        ("x",),
        forward_kwargs={"train_flg": True},
        params={"gamma": "dgamma", "beta": "dbeta"},
        book_name="BatchNormalization",
        reference=ref,
        forward_rtol=1e-4,  # eps: the book's 1e-6 against chainrule's 1e-5
    )


def _dropout(rng: np.random.Generator) -> Spec:
    def ref(layer: Any, inp: dict[str, Any], out: Any) -> Any:
        # The book keeps x where not dropped; inverted dropout also divides by 1 - ratio.
        x = inp["x"]
        kept = np.asarray(out) != 0 if np.shape(out) == x.shape else np.ones(x.shape, bool)
        book = np.where(kept, x, 0.0)
        return book if np.allclose(out, book) else book / 0.5

    return Spec(
        (0.5,),
        {"x": _away_from_zero(rng, (4, 5))},
        ("x",),
        forward_kwargs={"train_flg": True},
        book_name="Dropout",
        reference=ref,
    )


def _book_specs() -> dict[str, Callable[[np.random.Generator], Spec]]:
    from chainrule.layers import Relu, Sigmoid

    return {
        "MulLayer": lambda rng: _binary("MulLayer", rng),
        "AddLayer": lambda rng: _binary("AddLayer", rng),
        "Relu": lambda rng: _elementwise("Relu", rng, Relu, _away_from_zero(rng, (4, 3)), True),
        "Sigmoid": lambda rng: _elementwise(
            "Sigmoid", rng, Sigmoid, rng.standard_normal((4, 3)), False
        ),
        "Affine": _affine,
        "SoftmaxWithLoss": lambda rng: _loss("SoftmaxWithLoss", rng),
        "IdentityWithLoss": lambda rng: _loss("IdentityWithLoss", rng),
        "Convolution": _convolution,
        "Pooling": _pooling,
        "BatchNormalization": _batchnorm,
        "Dropout": _dropout,
    }


#: Other spellings learners use, lower-cased without underscores.
ALIASES = {
    "relulayer": "Relu",
    "sigmoidlayer": "Sigmoid",
    "affinelayer": "Affine",
    "softmaxloss": "SoftmaxWithLoss",
    "softmaxcrossentropy": "SoftmaxWithLoss",
    "identitywithsquaredloss": "IdentityWithLoss",
    "squaredloss": "IdentityWithLoss",
    "meansquaredloss": "IdentityWithLoss",
    "conv": "Convolution",
    "conv2d": "Convolution",
    "maxpooling": "Pooling",
    "batchnorm": "BatchNormalization",
}

BOOK_NAMES = tuple(_book_specs())


def book_name(cls: type) -> str | None:
    """The book layer ``cls`` is (``ReLU`` and ``Relu`` alike; ``check_as`` wins)."""
    name = getattr(cls, "check_as", None) or cls.__name__
    key = name.lower().replace("_", "")
    for book in BOOK_NAMES:
        if book.lower() == key:
            return book
    return ALIASES.get(key)


def _value(v: Any, rng: np.random.Generator) -> Any:
    if isinstance(v, tuple) and all(isinstance(n, int) for n in v):
        return rng.standard_normal(v)
    if isinstance(v, np.ndarray):
        return v.copy()
    return v


def declared_spec(cls: type, rng: np.random.Generator) -> Spec | None:
    """The spec from ``check_inputs``/``check_init``/``check_grads``/``check_loss``."""
    inputs = getattr(cls, "check_inputs", None)
    if inputs is None:
        return None
    inputs = {k: _value(v, rng) for k, v in dict(inputs).items()}
    init = {k: _value(v, rng) for k, v in dict(getattr(cls, "check_init", None) or {}).items()}
    grads = getattr(cls, "check_grads", None)
    if grads is None:
        grads = tuple(
            k for k, v in inputs.items() if isinstance(v, np.ndarray) and v.dtype.kind == "f"
        )
    return Spec(
        (), inputs, tuple(grads), init_kwargs=init, loss=bool(getattr(cls, "check_loss", False))
    )


def guessed_spec(cls: type, rng: np.random.Generator) -> Spec | None:
    """For an undeclared class whose constructor needs nothing: each required argument of
    ``forward`` gets a random (4, 3) array."""
    try:
        init = inspect.signature(cls)
        fwd = inspect.signature(getattr(cls, "forward"))  # noqa: B009 - not every type has it
    except (TypeError, ValueError):
        return None
    if any(_required(p) for p in init.parameters.values()):
        return None
    names = [p.name for p in list(fwd.parameters.values())[1:] if _required(p)]
    if not names:
        return None
    inputs = {n: rng.standard_normal((4, 3)) for n in names}
    return Spec((), inputs, tuple(names), guessed=True)


def _required(p: inspect.Parameter) -> bool:
    return p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)


def spec_for(cls: type, rng: np.random.Generator) -> Spec | None:
    """The book's layer of that name (on the declared inputs, if any), else the declared
    inputs, else a guess; ``None`` when nothing fits."""
    declared = declared_spec(cls, rng)
    name = book_name(cls)
    if name is None:
        return declared if declared is not None else guessed_spec(cls, rng)
    spec = _book_specs()[name](rng)
    if declared is not None:  # a book layer on inputs of the learner's choosing
        spec.inputs = declared.inputs
        if getattr(cls, "check_init", None) is not None:
            spec.init_args, spec.init_kwargs = (), declared.init_kwargs
    return spec


def checkable(
    inputs: dict[str, Any],
    init: dict[str, Any] | None = None,
    grads: tuple[str, ...] | None = None,
    loss: bool = False,
) -> Callable[[type], type]:
    """Class decorator declaring what ``chainrule check`` feeds a layer.

    >>> @checkable(inputs={"x": (4, 3)})
    ... class Square:
    ...     def forward(self, x):
    ...         self.x = x
    ...         return x * x
    ...     def backward(self, dout):
    ...         return 2 * self.x * dout
    >>> Square.check_inputs
    {'x': (4, 3)}
    """

    def mark(cls: type) -> type:
        cls.check_inputs = dict(inputs)  # type: ignore[attr-defined]
        cls.check_init = dict(init or {})  # type: ignore[attr-defined]
        if grads is not None:
            cls.check_grads = tuple(grads)  # type: ignore[attr-defined]
        cls.check_loss = loss  # type: ignore[attr-defined]
        return cls

    return mark
