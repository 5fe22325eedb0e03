"""The CLI's choices, read from the library's registries: one small function per registry.

Registering a model (:func:`chainrule.models.register_model`) or an optimizer makes it a valid
``chainrule train`` choice with no edit here. The registries are imported when a choice is
first needed (parsing or printing help), never when the parser is built.
"""

from __future__ import annotations

from typing import Any

#: The datasets ``chainrule.datasets`` can load by name.
DATASETS = ("mnist", "fashion-mnist")
#: The book's classes: digits 0-9 (MNIST) and ten kinds of clothing (Fashion-MNIST).
NUM_CLASSES = 10

# Used only while a model spec carries no default sizes of its own.
_FALLBACK_HIDDEN = {"two-layer": [50], "mlp": [256, 128], "simple-cnn": [100], "deep-cnn": [50]}
# Used only while an optimizer class carries no ``default_lr`` of its own: the book's rates.
_FALLBACK_LR = {"sgd": 0.1, "momentum": 0.01, "nesterov": 0.01, "adagrad": 0.01}


def models() -> dict[str, Any]:
    """The model registry: name -> spec (``help``, default hidden sizes)."""
    from chainrule.models import MODELS

    return MODELS


def optimizers() -> dict[str, Any]:
    """The optimizer registry: name -> class (with its ``default_lr``)."""
    import chainrule.optim as optim

    return getattr(optim, "OPTIMIZERS", None) or optim._BY_NAME


def activations() -> tuple[str, ...]:
    """The activation names a model accepts (the one activation table)."""
    try:
        from chainrule.activations import ACTIVATIONS  # type: ignore[import-not-found]
    except ImportError:
        from chainrule.models import ACTIVATIONS
    return tuple(ACTIVATIONS)


def engines() -> tuple[str, ...]:
    """The engines a model can be built on: the book's layers or the autograd modules."""
    from chainrule import models as m

    return tuple(getattr(m, "ENGINES", ("layers", "autograd")))


def schedules() -> tuple[str, ...]:
    """The learning-rate schedule names, ``none`` first."""
    try:
        from chainrule.optim.schedules import SCHEDULES  # type: ignore[import-not-found]
    except ImportError:
        return ("none", "step", "cosine")
    return ("none", *(name for name in SCHEDULES if name != "none"))


def default_hidden(model: str) -> list[int]:
    """The hidden layer sizes ``model`` gets when ``--hidden`` is not given."""
    spec = models()[model]
    hidden = getattr(spec, "hidden", None)
    if hidden is None:
        hidden = spec.extra_defaults.get("hidden", _FALLBACK_HIDDEN.get(spec.name, [50]))
    return list(hidden)


def default_lr(optimizer: str) -> float:
    """The learning rate ``optimizer`` gets when ``--lr`` is not given."""
    cls = optimizers()[optimizer]
    lr = getattr(cls, "default_lr", None)
    return float(lr if lr is not None else _FALLBACK_LR.get(optimizer, 0.001))


def hidden_help() -> str:
    """``50 for two-layer, 256,128 for mlp, ...`` for ``--hidden``'s help."""
    return ", ".join(f"{','.join(map(str, default_hidden(name)))} for {name}" for name in models())


def lr_help() -> str:
    """``0.1 sgd, 0.01 momentum/nesterov/adagrad, ...`` for ``--lr``'s help."""
    by_rate: dict[float, list[str]] = {}
    for name in optimizers():
        by_rate.setdefault(default_lr(name), []).append(name)
    return ", ".join(f"{rate:g} {'/'.join(names)}" for rate, names in by_rate.items())
