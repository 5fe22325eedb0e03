"""Learning-rate schedules: a factor on the base learning rate before every step.

The trainer multiplies its base ``lr`` by ``schedule.factor(iteration, iters_per_epoch,
total_iterations)`` and sets it on the optimizer before each step; a schedule's
:meth:`Schedule.config` is what a checkpoint records, and :func:`make_schedule` turns it back.

>>> s = make_schedule("step", step_epochs=2, gamma=0.5)
>>> [s.factor(i, 10, 100) for i in (0, 19, 20, 40)]
[1.0, 1.0, 0.5, 0.25]
>>> make_schedule(s.config()) == s
True
>>> sorted(SCHEDULES)
['cosine', 'step']
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["SCHEDULES", "CosineSchedule", "Schedule", "StepSchedule", "make_schedule"]


class Schedule:
    """Multiplies the base learning rate by ``factor(iteration, ...)`` before every step."""

    name = "none"

    def factor(self, iteration: int, iters_per_epoch: int, total_iterations: int) -> float:
        """The factor for the step that starts after ``iteration`` completed steps."""
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """A JSON-able description that :func:`make_schedule` turns back into this schedule."""
        raise NotImplementedError


@dataclass(frozen=True)
class StepSchedule(Schedule):
    """Step decay: ``lr = base_lr * gamma ** (completed_epochs // step_epochs)``."""

    step_epochs: int = 5
    gamma: float = 0.1
    name = "step"

    def __post_init__(self) -> None:
        if isinstance(self.step_epochs, bool) or int(self.step_epochs) != self.step_epochs:
            raise ValueError(
                f"step schedule: step_epochs must be an integer, got {self.step_epochs!r}"
            )
        if self.step_epochs <= 0:
            raise ValueError(f"step schedule: step_epochs must be positive, got {self.step_epochs}")
        if not (math.isfinite(self.gamma) and 0 < self.gamma <= 1):
            raise ValueError(f"step schedule: gamma must be in (0, 1], got {self.gamma!r}")

    def factor(self, iteration: int, iters_per_epoch: int, total_iterations: int) -> float:
        return self.gamma ** ((iteration // iters_per_epoch) // self.step_epochs)

    def config(self) -> dict[str, Any]:
        return {"name": "step", "step_epochs": int(self.step_epochs), "gamma": float(self.gamma)}


@dataclass(frozen=True)
class CosineSchedule(Schedule):
    """Cosine annealing over the whole run, from ``base_lr`` down towards ``min_factor * base_lr``.

    ``lr = base_lr * (m + (1 - m) * (1 + cos(pi * iteration / total_iterations)) / 2)``,
    so the first step uses ``base_lr`` and the last one a little more than ``m * base_lr``.
    """

    min_factor: float = 0.0
    name = "cosine"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.min_factor) and 0 <= self.min_factor <= 1):
            raise ValueError(
                f"cosine schedule: min_factor must be in [0, 1], got {self.min_factor!r}"
            )

    def factor(self, iteration: int, iters_per_epoch: int, total_iterations: int) -> float:
        cos = 0.5 * (1.0 + math.cos(math.pi * min(iteration, total_iterations) / total_iterations))
        return self.min_factor + (1.0 - self.min_factor) * cos

    def config(self) -> dict[str, Any]:
        return {"name": "cosine", "min_factor": float(self.min_factor)}


#: name -> schedule class; ``"none"`` (no schedule) is accepted by :func:`make_schedule` too.
SCHEDULES: dict[str, type[Schedule]] = {"step": StepSchedule, "cosine": CosineSchedule}


def make_schedule(
    spec: str | Mapping[str, Any] | Schedule | None, **options: Any
) -> Schedule | None:
    """A schedule from a name (``"none"``, ``"step"``, ``"cosine"``), a config dict or itself."""
    if spec is None or isinstance(spec, Schedule):
        if options:
            raise ValueError("schedule options given without a schedule name")
        return spec
    if isinstance(spec, Mapping):
        options = {**{k: v for k, v in spec.items() if k != "name"}, **options}
        spec = spec.get("name", "none")
    if spec == "none":
        return None
    if spec not in SCHEDULES:
        raise ValueError(f"unknown schedule {spec!r}; choose from none, {', '.join(SCHEDULES)}")
    try:
        return SCHEDULES[spec](**options)
    except TypeError as exc:
        raise ValueError(f"{spec} schedule: {exc}") from None
