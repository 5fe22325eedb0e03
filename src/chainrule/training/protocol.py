"""The trainable-model protocol as the trainer sees it (see ``CONTRACTS.md`` / docs/design.md).

A model offers ``params`` (name -> the live arrays the optimizer updates), ``buffers``
(non-trainable state to checkpoint, ``{}`` when none), ``loss_and_grads(x, t) -> (loss,
grads)`` (one forward + backward in training mode, grads keyed like ``params``), ``predict(x)``
(class scores in inference mode), ``engine`` (``"layers"`` or ``"autograd"``) and optionally
``rng`` (the generator its dropout draws from). The book's networks and ``nn.Module`` models
both implement it; the trainer calls nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["loss_and_grads", "model_buffers", "model_engine", "model_rngs"]


def loss_and_grads(model: Any, x: Any, t: Any) -> tuple[float, dict[str, Any]]:
    """``model.loss_and_grads(x, t)`` with the loss as a Python float.

    Raises:
        TypeError: the model does not implement the protocol (the message says what it lacks).
    """
    method = getattr(model, "loss_and_grads", None)
    if method is None:
        raise TypeError(
            f"Trainer: {type(model).__name__} has no loss_and_grads(x, t); a model needs "
            "params, loss_and_grads and predict (see chainrule.training.protocol)"
        )
    loss, grads = method(x, t)
    return float(loss), grads


def model_buffers(model: Any) -> dict[str, Any]:
    """``model.buffers`` without ``None`` entries (``{}`` when the model has none)."""
    buffers = getattr(model, "buffers", None)
    if not isinstance(buffers, Mapping):
        return {}
    return {k: v for k, v in buffers.items() if v is not None}


def model_engine(model: Any) -> str:
    """``model.engine``; a model without the attribute counts as the book's ``"layers"``."""
    engine = getattr(model, "engine", "layers")
    return engine if isinstance(engine, str) else "layers"


def model_rngs(model: Any) -> dict[str, np.random.Generator]:
    """``{"model": generator}`` for a ``Generator`` at ``model.rng`` (or ``model._rng``)."""
    for attr in ("rng", "_rng"):
        candidate = getattr(model, attr, None)
        if isinstance(candidate, np.random.Generator):
            return {"model": candidate}
    return {}
