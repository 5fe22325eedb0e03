"""``chainrule train``: the trainer of a new run or of a resumed one, from the flags."""

from __future__ import annotations

import argparse
from typing import Any

from chainrule.cli import choices
from chainrule.cli.budget import check_model_size
from chainrule.cli.common import UserError, check_input_file, first_line
from chainrule.cli.data import check_classes, checked_meta, load_data

INPUT_SIZE = 28 * 28  # both datasets: 28x28 grayscale images, flattened
DEFAULT_ITERATIONS = 10_000  # the book's TwoLayerNet run: 16.67 epochs of 600 batches
# Training-set metrics on a fixed 10,000-sample subset: evaluating all 60,000 after every
# epoch would add about a third to the book's run. The test set is always evaluated in full.
DEFAULT_EVAL_SUBSET = 10_000


def run_length(args: argparse.Namespace) -> dict[str, Any]:
    """``epochs``/``iterations`` for the Trainer from ``--epochs``/``--iterations``."""
    if args.epochs is not None:
        return {"epochs": args.epochs, "iterations": None}
    if args.iterations is not None:
        return {"epochs": None, "iterations": args.iterations}
    return {"epochs": None, "iterations": None}


def _schedule_options(args: argparse.Namespace, name: str) -> dict[str, Any]:
    if name == "step":
        options: dict[str, Any] = {}
        if args.step_epochs is not None:
            options["step_epochs"] = args.step_epochs
        if args.gamma is not None:
            options["gamma"] = args.gamma
        return options
    if args.step_epochs is not None or args.gamma is not None:
        raise UserError("--step-epochs and --gamma need --schedule step")
    return {}


def model_options(args: argparse.Namespace, model_name: str, opt_name: str) -> dict[str, Any]:
    """The model config's options from the model flags (defaults from the registry)."""
    options: dict[str, Any] = {
        "hidden": args.hidden or choices.default_hidden(model_name),
        "output_size": choices.NUM_CLASSES,
        "dtype": args.dtype or "float32",
    }
    if args.activation is not None:
        options["activation"] = args.activation
    if args.init is not None:
        options["init"] = args.init
    if args.weight_decay is not None and opt_name != "adamw":
        options["weight_decay"] = args.weight_decay
    if args.batchnorm:
        options["batchnorm"] = True
    if args.dropout is not None:
        options["dropout"] = args.dropout
    if args.engine not in (None, "layers"):  # "layers" is every config's default
        options["engine"] = args.engine
    return options


def new_trainer(args: argparse.Namespace, progress: str) -> Any:
    """A Trainer for a fresh run; the config is checked before any data is loaded."""
    from chainrule.models import build_model, model_config
    from chainrule.optim import optimizer_from_name
    from chainrule.training import Trainer, make_schedule

    model_name = args.model or "two-layer"
    opt_name = args.optimizer or "sgd"
    dataset = args.dataset or "mnist"
    seed = 0 if args.seed is None else args.seed
    options = model_options(args, model_name, opt_name)
    try:  # the run's one config, validated before any data is loaded
        config = model_config(model_name, input_size=INPUT_SIZE, **options)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    check_model_size(config, args.batch_size or 100, "the model")
    schedule_name = args.schedule or "none"
    schedule = make_schedule(schedule_name, **_schedule_options(args, schedule_name))

    (x, t), (xt, tt) = load_data(dataset, args.data_dir, options["dtype"])
    if x.shape[1] != INPUT_SIZE:
        raise UserError(f"{dataset} has {x.shape[1]} features per sample, not {INPUT_SIZE}")
    model = build_model(config, rng=seed)
    lr = args.lr if args.lr is not None else choices.default_lr(opt_name)
    opt_options: dict[str, Any] = {"lr": lr}
    if opt_name == "adamw" and args.weight_decay is not None:
        opt_options["weight_decay"] = args.weight_decay  # AdamW's own, decoupled decay
    optimizer = optimizer_from_name(opt_name, **opt_options)
    length = run_length(args)
    if length["epochs"] is None and length["iterations"] is None:
        length["iterations"] = DEFAULT_ITERATIONS
    try:
        return Trainer(
            model,
            optimizer,
            x,
            t,
            xt,
            tt,
            batch_size=args.batch_size or 100,
            seed=seed,
            schedule=schedule,
            eval_subset=DEFAULT_EVAL_SUBSET if args.eval_subset is None else args.eval_subset,
            progress=progress,
            checkpoint=args.save,
            model_config=config,
            dataset=dataset,
            **length,
        )
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _resume_checks(args: argparse.Namespace, meta: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(flag, value given, value saved) for every flag a resumed run must not change."""
    config = meta.get("model") or {}
    trainer = meta.get("trainer") or {}
    optimizer = meta.get("optimizer") or {}
    opt_name = str(optimizer.get("name", "")).lower()
    decay = optimizer.get("hyper", {}).get("weight_decay") if opt_name == "adamw" else None
    schedule = (trainer.get("schedule") or {"name": "none"}).copy()
    return [
        ("--model", args.model, config.get("model")),
        ("--hidden", args.hidden, config.get("hidden")),
        ("--activation", args.activation, config.get("activation")),
        ("--init", args.init, config.get("init")),
        (
            "--weight-decay",
            args.weight_decay,
            config.get("weight_decay") if decay is None else decay,
        ),
        ("--batchnorm", True if args.batchnorm else None, config.get("batchnorm")),
        ("--dropout", args.dropout, config.get("dropout")),
        ("--dtype", args.dtype, config.get("dtype")),
        ("--engine", args.engine, config.get("engine", "layers")),
        ("--dataset", args.dataset, meta.get("dataset")),
        ("--optimizer", args.optimizer, opt_name),
        ("--lr", args.lr, trainer.get("base_lr")),
        ("--batch-size", args.batch_size, trainer.get("batch_size")),
        ("--seed", args.seed, trainer.get("seed")),
        ("--schedule", args.schedule, schedule.get("name")),
        ("--step-epochs", args.step_epochs, schedule.get("step_epochs")),
        ("--gamma", args.gamma, schedule.get("gamma")),
        ("--eval-subset", args.eval_subset, trainer.get("eval_subset")),
    ]


def check_resume_flags(args: argparse.Namespace, meta: dict[str, Any]) -> None:
    """A resumed run keeps the checkpoint's settings; flags that contradict them are errors."""
    for flag, given, saved in _resume_checks(args, meta):
        if given is not None and given != saved:
            raise UserError(
                f"{flag} {given} differs from the checkpoint's {saved!r}: a resumed run keeps "
                "the checkpoint's settings (only --epochs/--iterations, --save, --plot, "
                "--history, --diagnostics, --data-dir and --no-progress may change)"
            )


def _check_saved_model(path: str, meta: dict[str, Any]) -> None:
    """The checkpoint's model config is valid and its model fits the memory budget."""
    from chainrule.models import as_config

    if not meta["model"]:
        raise UserError(f"checkpoint {path} records no model config; it cannot be rebuilt")
    try:
        config = as_config(meta["model"])
    except (ValueError, TypeError) as exc:
        raise UserError(f"checkpoint {path}: {first_line(exc)}") from None
    check_model_size(config, meta["trainer"].get("batch_size", 1), f"the model of {path}")
    check_classes(path, config, meta.get("dataset"))


def resume_trainer(args: argparse.Namespace, progress: str) -> Any:
    """The Trainer of the run saved in ``--resume``, after checking the flags against it."""
    from chainrule.serialization import CheckpointError, inspect_checkpoint
    from chainrule.training import Trainer

    check_input_file("checkpoint", args.resume)
    try:
        meta = inspect_checkpoint(args.resume).get("meta", {})
    except FileNotFoundError:
        raise UserError(f"checkpoint not found: {args.resume}") from None
    except (CheckpointError, OSError) as exc:
        raise UserError(first_line(exc)) from None
    if not isinstance(meta, dict) or meta.get("kind") != "chainrule-training":
        raise UserError(f"{args.resume} is not a training checkpoint written by chainrule train")
    meta = checked_meta(args.resume, meta)
    check_resume_flags(args, meta)
    _check_saved_model(args.resume, meta)
    dataset = meta.get("dataset")
    if dataset is None:
        raise UserError(f"checkpoint {args.resume} records no dataset")
    (x, t), (xt, tt) = load_data(dataset, args.data_dir, meta["model"]["dtype"])
    try:
        return Trainer.from_checkpoint(
            args.resume, x, t, xt, tt, progress=progress, checkpoint=args.save, **run_length(args)
        )
    except (CheckpointError, ValueError) as exc:
        raise UserError(first_line(exc)) from None
