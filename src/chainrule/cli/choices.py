"""The CLI's choices, read from the library's registries: one small function per registry.

Registering a model (:func:`chainrule.models.register_model`) or an optimizer (an entry in
:data:`chainrule.optim.OPTIMIZERS`) makes it a valid ``chainrule train`` choice, with its
default hidden sizes or learning rate, and no edit here. The registries are imported when a
choice is first needed (parsing or printing help), never when the parser is built.
"""

from __future__ import annotations

from typing import Any

#: The datasets ``chainrule.datasets`` can load by name.
DATASETS = ("mnist", "fashion-mnist")
#: The book's classes: digits 0-9 (MNIST) and ten kinds of clothing (Fashion-MNIST).
NUM_CLASSES = 10


def models() -> dict[str, Any]:
    """The model registry: name -> :class:`chainrule.models.ModelSpec`."""
    from chainrule.models import MODELS

    return MODELS


def optimizers() -> dict[str, Any]:
    """The optimizer registry: name -> class (with its ``default_lr``)."""
    from chainrule.optim import OPTIMIZERS

    return OPTIMIZERS


def activations() -> dict[str, Any]:
    """The activation table: name -> record (book layer, op, nn module, init gain, bins)."""
    from chainrule.activations import ACTIVATIONS

    return ACTIVATIONS


def engines() -> tuple[str, ...]:
    """The engines a model can be built on: the book's layers or the autograd modules."""
    from chainrule.models import ENGINES

    return ENGINES


def dtypes() -> tuple[str, ...]:
    """The floating-point types a model can be built in."""
    from chainrule.models import DTYPES

    return DTYPES


def schedules() -> tuple[str, ...]:
    """The learning-rate schedule names, ``none`` (a constant rate) first."""
    from chainrule.optim.schedules import SCHEDULES

    return ("none", *SCHEDULES)


def default_hidden(model: str) -> list[int]:
    """The hidden layer sizes ``model`` gets when ``--hidden`` is not given."""
    return list(models()[model].hidden)


def default_lr(optimizer: str) -> float:
    """The learning rate ``optimizer`` gets when ``--lr`` is not given."""
    return float(optimizers()[optimizer].default_lr)


def hidden_help() -> str:
    """``50 for two-layer, 256,128 for mlp, ...`` for ``--hidden``'s help."""
    return ", ".join(f"{','.join(map(str, default_hidden(name)))} for {name}" for name in models())


def lr_help() -> str:
    """``0.1 sgd, 0.01 momentum/nesterov/adagrad, ...`` for ``--lr``'s help."""
    by_rate: dict[float, list[str]] = {}
    for name in optimizers():
        by_rate.setdefault(default_lr(name), []).append(name)
    return ", ".join(f"{rate:g} {'/'.join(names)}" for rate, names in by_rate.items())


def init_help() -> str:
    """``he for two-layer, ...; the activation's: he for relu, ...`` for ``--init``'s help."""
    by_scheme: dict[str, list[str]] = {}
    for name, record in activations().items():
        by_scheme.setdefault(str(record.init), []).append(name)
    parts = []
    for name, spec in models().items():
        scheme = "the activation's" if spec.init is None else str(spec.init)
        parts.append(f"{scheme} for {name}")
    schemes = ", ".join(f"{scheme} for {'/'.join(names)}" for scheme, names in by_scheme.items())
    return f"{', '.join(parts)}; the activation's: {schemes}"
