"""What ``chainrule train`` prints and writes besides the checkpoint: header, results, files."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from chainrule import memory
from chainrule.cli.common import UserError


def _optimizer_text(optimizer: Any, base_lr: float) -> str:
    hyper = {**optimizer.hyperparameters(), "lr": base_lr}  # not a scheduled lr of a resume
    shown = (f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in hyper.items())
    return f"{type(optimizer).__name__}({', '.join(shown)})"  # variant="book" is a string


def print_header(trainer: Any, resumed_from: str | None) -> None:
    """Model, data, optimizer and run length, before the first step."""
    from chainrule.models import describe_model
    from chainrule.training import model_device

    cfg = trainer.model_config
    total, per = trainer.total_iterations, trainer.iters_per_epoch
    schedule = trainer.schedule.config() if trainer.schedule is not None else {"name": "none"}
    schedule_text = ", ".join(f"{k} {v}" for k, v in schedule.items() if k != "name")
    device = model_device(trainer.model)
    print(f"model      {describe_model(cfg)}" + ("" if device == "cpu" else f" on {device}"))
    print(
        f"data       {trainer.dataset}: {trainer.train_size} train, {len(trainer.x_test)} test "
        f"samples"
    )
    print(
        f"optimizer  {_optimizer_text(trainer.optimizer, trainer.base_lr)}, "
        f"schedule {schedule['name']}" + (f" ({schedule_text})" if schedule_text else "")
    )
    print(
        f"run        {total} iterations = {total / per:.4g} epochs of {per} batches of "
        f"{trainer.batch_size}, seed {trainer.seed}"
    )
    print(f"threads    {trainer.threads_note}")
    print(f"memory     {memory.status()}")
    if resumed_from is not None:
        print(f"resume     from {resumed_from} at iteration {trainer.iteration}")
    print(flush=True)


def print_results(trainer: Any, wall_seconds: float) -> None:
    """The final accuracies and losses and where the time went."""
    history = trainer.history
    if not history["test_acc"]:
        return
    n_test, n_eval = len(trainer.x_test), len(trainer.x_eval)
    test_acc, train_acc = history["test_acc"][-1], history["train_acc"][-1]
    subset = "" if n_eval == trainer.train_size else f" (fixed subset of {n_eval})"
    rows = [
        ("test accuracy", f"{100 * test_acc:.2f}%  ({round(test_acc * n_test)} / {n_test})"),
        ("test loss", f"{history['test_loss'][-1]:.4f}"),
        (
            "train accuracy",
            f"{100 * train_acc:.2f}%  ({round(train_acc * n_eval)} / {n_eval}){subset}",
        ),
        ("train loss", f"{history['train_loss'][-1]:.4f}"),
        ("iterations", f"{trainer.iteration}  ({trainer.epoch:.4g} epochs)"),
        (
            "training time",
            f"{trainer.elapsed():.1f} s  (steps {trainer.train_seconds:.1f} s, "
            f"evaluation {trainer.eval_seconds:.1f} s)",
        ),
        ("wall time", f"{wall_seconds:.1f} s  (this command, data loading included)"),
    ]
    print()
    print("results")
    for name, value in rows:
        print(f"  {name:<15} {value}")


def print_files(args: argparse.Namespace, written: list[Path], diagnostics: Any) -> None:
    """The files the run wrote, under the results."""
    for flag, path in (("checkpoint", args.save), ("history", args.history), ("plot", args.plot)):
        if path is not None:
            print(f"  {flag:<15} {path}")
    if written:
        names = ", ".join(p.name for p in written)
        print(f"  {'diagnostics':<15} {args.diagnostics}  ({names})")
        print(
            f"  {'':<15} recording took {diagnostics.seconds:.2f} s "
            f"(every {diagnostics.every} steps)"
        )


def run_title(trainer: Any) -> str:
    """``mnist: two-layer 784-50-10 ...``: the title of plots."""
    from chainrule.models import describe_model

    if trainer.model_config is None:
        return str(trainer.dataset)
    return f"{trainer.dataset}: {describe_model(trainer.model_config)}"


def write_diagnostics(diagnostics: Any, path: str, title: str) -> list[Path]:
    """The JSON and the pictures of ``--diagnostics DIR``, each written atomically."""
    folder = Path(path).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        written = [diagnostics.to_json(folder / "diagnostics.json")]
        written += diagnostics.plot(folder, title=title)
    except OSError as exc:
        raise UserError(
            f"--diagnostics {path}: cannot write {exc.filename or 'output'}: {exc.strerror or exc}"
        ) from None
    return written
