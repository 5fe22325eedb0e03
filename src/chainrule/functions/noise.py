"""Inverted dropout: drop units at random in training, pass everything through in evaluation."""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.backend import get_array_module
from chainrule.config import Config, get_rng
from chainrule.function import Function
from chainrule.tensor import Tensor


class Dropout(Function):
    """Inverted dropout: ``out = x * mask / (1 - ratio)`` in training, ``out = x`` in eval.

    Each unit is kept with probability ``1 - ratio``; scaling the kept ones by
    ``1 / (1 - ratio)`` keeps the expected activation unchanged, so evaluation needs no scaling.

    **Backward:** ``dx = dout * mask / (1 - ratio)`` (``dout`` unchanged in eval mode).
    """

    differentiable_backward = True

    def __init__(self, ratio: float = 0.5, rng: np.random.Generator | None = None):
        if not 0.0 <= ratio < 1.0:
            raise ValueError(f"Dropout: ratio must be in [0, 1), got {ratio}")
        if rng is not None and not isinstance(rng, np.random.Generator):
            raise TypeError(
                f"Dropout: rng must be a numpy.random.Generator or None, got {rng!r}; "
                "use np.random.default_rng(seed)"
            )
        self.ratio = ratio
        self.rng = rng

    def forward(self, x: Any) -> Any:
        if not Config.train or self.ratio == 0.0:
            self.scale = None
            return x
        rng = self.rng if self.rng is not None else get_rng()
        keep = rng.random(x.shape, dtype=np.float32 if x.dtype == np.float32 else np.float64)
        # The mask comes from NumPy's generator whatever the device, so a seed gives the same
        # masks on the CPU and the GPU; on a GPU it is copied there.
        xp = get_array_module(x)
        mask = keep >= self.ratio if xp is np else xp.asarray(keep >= self.ratio)
        self.scale = mask * x.dtype.type(1.0 / (1.0 - self.ratio))
        return x * self.scale

    def backward(self, dout: Any) -> Any:
        return dout if self.scale is None else dout * self.scale


def dropout(x: Any, ratio: float = 0.5) -> Tensor:
    return Dropout(ratio)(x)
