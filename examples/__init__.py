"""The seeds' worked examples, each a short script a learner can read top to bottom and run.

This folder is the repository's top-level ``examples/``; ``setup.py`` installs it as the
package ``chainrule.examples`` so that ``chainrule demo`` runs the very same code.

Every module defines ``run() -> Example``: the forward values and every gradient, which
``chainrule demo NAME`` prints as a table and the tests compare with the seeds' numbers.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

#: name -> module, in the order the chapter meets them.
EXAMPLES = {
    "apple": "chainrule.examples.apple",
    "apple-orange": "chainrule.examples.apple_orange",
    "square-sum": "chainrule.examples.square_sum",
    "circuit": "chainrule.examples.circuit",
    "sigmoid-neuron": "chainrule.examples.sigmoid_neuron",
    "staged": "chainrule.examples.staged",
    "two-layer-check": "chainrule.examples.two_layer_check",
}


@dataclasses.dataclass
class Example:
    """What an example computed: forward values, gradients, and optional notes."""

    title: str
    forward: dict[str, Any]
    gradients: dict[str, Any]
    notes: list[str] = dataclasses.field(default_factory=list)

    def __str__(self) -> str:
        lines = [self.title, "=" * len(self.title), "forward"]
        width = max(len(k) for k in [*self.forward, *self.gradients, ""]) + 2
        lines += [f"  {k:<{width}}{_fmt(v)}" for k, v in self.forward.items()]
        lines.append("backward (gradient of the output with respect to ...)")
        lines += [f"  {k:<{width}}{_fmt(v)}" for k, v in self.gradients.items()]
        lines += self.notes
        return "\n".join(lines)


def _fmt(v: Any) -> str:
    if isinstance(v, str):
        return v
    try:
        return f"{float(v):.10g}"
    except (TypeError, ValueError):
        import numpy as np

        return np.array2string(np.asarray(v), precision=6)


def run(name: str) -> Example:
    """Run the example called ``name`` (see :data:`EXAMPLES`)."""
    if name not in EXAMPLES:
        raise KeyError(f"no example {name!r}; choose from {', '.join(EXAMPLES)}")
    return importlib.import_module(EXAMPLES[name]).run()
