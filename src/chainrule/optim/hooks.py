"""Gradient hooks for :meth:`Optimizer.add_hook <chainrule.optim.base.Optimizer.add_hook>`,
as DeZero's ``WeightDecay`` and ``ClipGrad``: each is called as ``hook(params, grads)``
before every update, with dicts key -> array, and replaces entries of ``grads``
(it never writes into the arrays: they belong to the caller).

>>> from chainrule.optim import SGD
>>> opt = SGD(lr=0.1)
>>> _ = opt.add_hook(WeightDecay(0.5))
>>> params = {"W": np.array([2.0])}
>>> opt.update(params, {"W": np.array([0.0])})
>>> params["W"]  # the gradient became 0 + 0.5 * 2
array([1.9])
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["ClipGradNorm", "WeightDecay"]


def _non_negative(owner: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{owner}: {name} must be a real number, got {value!r}")
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{owner}: {name} must be finite and non-negative, got {value!r}")
    return float(value)


class WeightDecay:
    """L2 weight decay through the gradient: :math:`g \\leftarrow g + \\lambda W`.

    This is the gradient of :math:`\\frac{\\lambda}{2} \\|W\\|^2` added to the loss (the
    book's ``weight_decay_lambda``). With an adaptive rule (Adam) it is rescaled with the
    gradient; :class:`~chainrule.optim.AdamW` decays the weights directly instead.
    """

    def __init__(self, rate: float) -> None:
        self.rate = _non_negative("WeightDecay", "rate", rate)

    def __call__(self, params: dict[str, Any], grads: dict[str, Any]) -> None:
        for key, p in params.items():
            grads[key] = grads[key] + self.rate * p

    def __repr__(self) -> str:
        return f"WeightDecay({self.rate!r})"


class ClipGradNorm:
    """Scale all gradients together so that their global L2 norm is at most ``max_norm``.

    :math:`g \\leftarrow g \\cdot \\min(1, c / \\|(g_1, g_2, \\dots)\\|)`, the norm taken over
    every gradient of the step at once (as ``torch.nn.utils.clip_grad_norm_``), so the
    direction of the step is kept.
    """

    def __init__(self, max_norm: float) -> None:
        self.max_norm = _non_negative("ClipGradNorm", "max_norm", max_norm)

    def __call__(self, params: dict[str, Any], grads: dict[str, Any]) -> None:
        total = math.sqrt(sum(float((g * g).sum()) for g in grads.values()))
        if total > self.max_norm:
            scale = self.max_norm / total
            for key, g in grads.items():
                grads[key] = g * scale

    def __repr__(self) -> str:
        return f"ClipGradNorm({self.max_norm!r})"
