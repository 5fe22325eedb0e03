"""The memory budget of the commands: sizes from flags or checkpoints are checked before use.

A flag (``--hidden 100000000``) or a crafted checkpoint (``"hidden": [2000000]``) would
otherwise make NumPy try to allocate hundreds of GiB, or page the machine to a halt. The
budget, checked before anything is allocated:

* at most :data:`MAX_PARAMETERS` parameters (100 million: 400 MB of float32 weights; training
  keeps gradients and optimizer state beside them, up to 4x that with Adam);
* at most :data:`MAX_ACTIVATIONS` values in the activations of one batch (batch size x the
  widths of the layers; 200 million: 800 MB of float32).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from chainrule.cli.common import UserError

MAX_PARAMETERS = 100_000_000
MAX_ACTIVATIONS = 200_000_000


def _plain(config: Any) -> dict[str, Any]:
    return dict(config.to_dict() if hasattr(config, "to_dict") else config)


def _features(config: Mapping[str, Any]) -> tuple[int, int]:
    """(inputs of the first hidden layer, parameters outside the dense chain).

    Measured on the same model with every hidden size 1 (a few kilobytes): its widest 2-D
    weight is the dense chain's input (784 for an MLP on MNIST, the flattened feature map of
    a conv net), and what its parameters hold beyond its own dense chain (convolutions) does
    not grow with the hidden sizes.
    """
    from chainrule.models import as_config, build_model

    options = _plain(config)
    ones = [1] * len(options.get("hidden") or [1])
    small = build_model(as_config({**options, "hidden": ones}), rng=0)
    shapes = [tuple(p.shape) for p in small.params.values()]
    widest = max((max(s) for s in shapes if len(s) == 2), default=1)
    total = sum(_product(s) for s in shapes)
    return widest, total - _dense([widest, *ones, int(options.get("output_size", 10))])


def _dense(sizes: list[int]) -> int:
    """Weights and biases of affine layers ``sizes[0] -> sizes[1] -> ...``."""
    return sum((a + 1) * b for a, b in itertools.pairwise(sizes))


def _product(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def estimate(config: Mapping[str, Any]) -> tuple[int, int]:
    """(parameters, activation values per sample) of the model ``config`` describes."""
    cfg = _plain(config)
    hidden = [int(h) for h in cfg.get("hidden") or []]
    features, others = _features(cfg)
    sizes = [features, *hidden, int(cfg.get("output_size", 10))]
    dense = _dense(sizes)
    # Each layer's output, its gradient and a saved copy or two; a conv net's feature maps
    # (and their im2col columns) come on top of the dense chain.
    conv = features if features > int(cfg.get("input_size", 784)) else 0
    per_sample = 4 * (sum(sizes[1:]) + conv)
    return dense + max(others, 0), per_sample


def check_model_size(config: Mapping[str, Any], batch_size: int, what: str) -> None:
    """Refuse a model or batch over the budget; ``what`` names the model (``the model``)."""
    parameters, per_sample = estimate(config)
    hidden = ",".join(str(h) for h in _plain(config).get("hidden") or [])
    if parameters > MAX_PARAMETERS:
        raise UserError(
            f"{what} (hidden {hidden}) would have about {parameters:,} parameters, over the "
            f"budget of {MAX_PARAMETERS:,}; choose smaller hidden sizes"
        )
    if batch_size * per_sample > MAX_ACTIVATIONS:
        raise UserError(
            f"a batch of {batch_size} through {what} (hidden {hidden}) needs about "
            f"{batch_size * per_sample:,} activation values, over the budget of "
            f"{MAX_ACTIVATIONS:,}; choose a smaller batch or smaller hidden sizes"
        )
