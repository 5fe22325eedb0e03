"""The optimizer and schedule registries: one table each, read by the CLI and the trainer."""

from __future__ import annotations

import pytest

import chainrule.optim as optim
import chainrule.training as training
from chainrule.optim import OPTIMIZERS, SCHEDULES, Optimizer, optimizer_from_name
from chainrule.optim.schedules import CosineSchedule, Schedule, StepSchedule, make_schedule

# The learning rates `chainrule train` has always used when --lr is not given.
CLI_DEFAULT_LR = {
    "sgd": 0.1,
    "momentum": 0.01,
    "nesterov": 0.01,
    "adagrad": 0.01,
    "rmsprop": 0.001,
    "adam": 0.001,
    "adamw": 0.001,
}


def test_registry_lists_every_rule_once_with_its_default_lr():
    assert list(OPTIMIZERS) == list(CLI_DEFAULT_LR)
    assert len(set(OPTIMIZERS.values())) == len(OPTIMIZERS)
    for name, cls in OPTIMIZERS.items():
        assert issubclass(cls, Optimizer)
        assert cls.default_lr == CLI_DEFAULT_LR[name], name
        assert getattr(optim, cls.__name__) is cls  # importable from chainrule.optim


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizer_from_name_uses_the_default_lr_unless_told(name):
    assert optimizer_from_name(name).lr == OPTIMIZERS[name].default_lr
    assert optimizer_from_name(name, lr=None).lr == OPTIMIZERS[name].default_lr
    assert optimizer_from_name(name.upper(), lr=0.25).lr == 0.25


def test_the_constructor_keeps_the_books_default_lr():
    # The book's chapter 6 scripts build SGD() and RMSprop() and rely on lr=0.01.
    assert OPTIMIZERS["sgd"]().lr == 0.01
    assert OPTIMIZERS["rmsprop"]().lr == 0.01


def test_schedules_registry_and_the_training_reexports():
    assert SCHEDULES == {"step": StepSchedule, "cosine": CosineSchedule}
    assert all(issubclass(cls, Schedule) and cls.name == key for key, cls in SCHEDULES.items())
    for name in ("Schedule", "StepSchedule", "CosineSchedule", "make_schedule"):
        assert getattr(training, name) is getattr(optim.schedules, name)
        assert getattr(optim, name) is getattr(optim.schedules, name)
    assert make_schedule("cosine", min_factor=0.5) == CosineSchedule(0.5)
    with pytest.raises(ValueError, match="unknown schedule 'linear'; choose from none, step,"):
        make_schedule("linear")
