"""The ``chainrule`` command: argparse subcommands that call library functions.

Every subcommand is a small function ``cmd_NAME(args) -> int``; user errors (bad flags, missing
files, bad values) print one line to stderr and return a non-zero status, never a traceback.

    chainrule demo [NAME ...]                     the seeds' worked examples
    chainrule train [--model mlp ...] [--save C]  train on MNIST / Fashion-MNIST (see --help)
    chainrule evaluate CKPT [--json]              test accuracy and loss of a checkpoint
    chainrule predict CKPT IMAGE [--invert]       class probabilities of one image
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from chainrule import __version__


class UserError(Exception):
    """A problem with what the user asked for: reported in one line, exit status 2."""


class _ArgumentParser(argparse.ArgumentParser):
    """Reports a bad command line in one line (no usage block), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def cmd_demo(args: argparse.Namespace) -> int:
    from chainrule.examples import EXAMPLES, run

    names = args.names or list(EXAMPLES)
    unknown = [n for n in names if n not in EXAMPLES]
    if unknown:
        raise UserError(f"unknown example {unknown[0]!r}; choose from {', '.join(EXAMPLES)}")
    for i, name in enumerate(names):
        if i:
            print()
        print(run(name), flush=True)
    return 0


# --------------------------------------------------------------------------------------------
# train / evaluate / predict: helpers
# --------------------------------------------------------------------------------------------

_OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw")
# The book's rates: SGD 0.1 for TwoLayerNet (chapter 5); chapter 6's comparison uses 0.01
# for Momentum/AdaGrad and 0.001 for Adam; RMSprop and AdamW follow Adam.
_DEFAULT_LR = {
    "sgd": 0.1,
    "momentum": 0.01,
    "nesterov": 0.01,
    "adagrad": 0.01,
    "rmsprop": 0.001,
    "adam": 0.001,
    "adamw": 0.001,
}
_DEFAULT_HIDDEN = {"two-layer": [50], "mlp": [256, 128], "simple-cnn": [100], "deep-cnn": [50]}
_DEFAULT_ITERATIONS = 10_000  # the book's TwoLayerNet run: 16.67 epochs of 600 batches
_DATASETS = ("mnist", "fashion-mnist")
_NUM_CLASSES = 10
# Training-set metrics on a fixed 10,000-sample subset: evaluating all 60,000 after every
# epoch would add about a third to the book's run. The test set is always evaluated in full.
_DEFAULT_EVAL_SUBSET = 10_000


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be finite, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
    return value


def _non_negative_float(text: str) -> float:
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be non-negative, got {text!r}")
    return value


def _ratio(text: str) -> float:
    value = _number(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text!r}")
    return value


def _gamma(text: str) -> float:
    value = _number(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text!r}")
    return value


def _sizes(text: str) -> list[int]:
    parts = [p.strip() for p in text.split(",")]
    try:
        sizes = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive integers such as 256,128, got {text!r}"
        ) from None
    if not sizes or any(n <= 0 for n in sizes):
        raise argparse.ArgumentTypeError(f"layer sizes must be positive, got {text!r}")
    return sizes


def _init(text: str) -> str | float:
    if text.lower() in ("he", "xavier"):
        return text.lower()
    try:
        return _positive_float(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected he, xavier or a positive weight std such as 0.01, got {text!r}"
        ) from None


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _check_output_path(flag: str, path: str) -> None:
    parent = Path(path).expanduser().resolve().parent
    if not parent.is_dir():
        raise UserError(f"{flag} {path}: the folder {parent} does not exist")
    if Path(path).is_dir():
        raise UserError(f"{flag} {path}: is a folder, expected a file name")


def _load_data(name: str, data_dir: str | None, dtype: str) -> Any:
    """``(x_train, t_train), (x_test, t_test)`` of a dataset, flattened and in [0, 1]."""
    from chainrule.datasets import DatasetError, load_fashion_mnist, load_mnist

    if data_dir is not None and not Path(data_dir).expanduser().is_dir():
        raise UserError(f"--data-dir {data_dir}: no such folder")
    loader = {"mnist": load_mnist, "fashion-mnist": load_fashion_mnist}.get(name)
    if loader is None:
        raise UserError(f"unknown dataset {name!r}; choose from {', '.join(_DATASETS)}")
    try:
        return loader(normalize=True, flatten=True, data_dir=data_dir, dtype=dtype)
    except DatasetError as exc:
        lines = str(exc).strip().splitlines()
        message = lines[0]
        if len(lines) > 1:  # files missing: the full text lists every place; keep it short
            download = next((ln.strip() for ln in lines if ln.startswith("Download")), "")
            message += (
                f" ({download.rstrip('.:')}); pass --data-dir DIR (a folder holding the IDX "
                f"files or a parent with {name}/ in it) or set CHAINRULE_DATA"
            )
        raise UserError(message) from None
    except OSError as exc:
        raise UserError(f"cannot read the {name} files: {exc}") from None


def _read_checkpoint(path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    from chainrule.serialization import CheckpointError, load_checkpoint

    try:
        return load_checkpoint(path)
    except FileNotFoundError:
        raise UserError(f"checkpoint not found: {path}") from None
    except CheckpointError as exc:
        raise UserError(_first_line(exc)) from None
    except OSError as exc:
        raise UserError(f"cannot read checkpoint {path}: {exc}") from None


def _model_from_checkpoint(
    path: str, arrays: dict[str, Any], meta: dict[str, Any]
) -> tuple[Any, dict[str, Any]]:
    """Rebuild the model a checkpoint describes and load its weights."""
    from chainrule.models import build_model, model_config
    from chainrule.training import load_model_state

    config = meta.get("model")
    if not isinstance(config, dict):
        raise UserError(f"checkpoint {path} records no model config; it cannot be rebuilt")
    try:
        options = dict(config)
        config = model_config(options.pop("model", "two-layer"), **options)
        model = build_model(config, rng=0)
        load_model_state(model, arrays)
    except (ValueError, TypeError, ImportError) as exc:
        raise UserError(f"checkpoint {path}: {_first_line(exc)}") from None
    return model, config


def _require_plotting(flag: str = "--plot") -> None:
    from chainrule.plotting import MissingDependencyError, require_matplotlib

    try:
        require_matplotlib()
    except MissingDependencyError as exc:
        raise UserError(f"{flag}: {exc}") from None


def _check_output_folder(flag: str, path: str) -> None:
    """``path`` is a folder or can be made one: neither it nor a parent is a file."""
    folder = Path(path).expanduser()
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            if not candidate.is_dir():
                what = "is a file" if candidate == folder else f"{candidate} is a file"
                raise UserError(f"{flag} {path}: {what}, expected a folder")
            return


def _write_diagnostics(diagnostics: Any, path: str, title: str) -> list[Path]:
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


# --------------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------------


def _length(args: argparse.Namespace) -> dict[str, Any]:
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


def _new_trainer(args: argparse.Namespace, progress: str) -> Any:
    from chainrule.models import build_model, model_config
    from chainrule.optim import optimizer_from_name
    from chainrule.training import Trainer, make_schedule

    model_name = args.model or "two-layer"
    opt_name = args.optimizer or "sgd"
    dtype = args.dtype or "float32"
    dataset = args.dataset or "mnist"
    seed = 0 if args.seed is None else args.seed

    options: dict[str, Any] = {
        "hidden": args.hidden or _DEFAULT_HIDDEN[model_name],
        "output_size": _NUM_CLASSES,
        "dtype": dtype,
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
    try:
        model_config(model_name, input_size=784, **options)  # fail fast, before loading data
    except ValueError as exc:
        raise UserError(str(exc)) from None
    schedule_name = args.schedule or "none"
    schedule = make_schedule(schedule_name, **_schedule_options(args, schedule_name))

    (x, t), (xt, tt) = _load_data(dataset, args.data_dir, dtype)
    config = model_config(model_name, input_size=int(x.shape[1]), **options)
    model = build_model(config, rng=seed)
    opt_options: dict[str, Any] = {"lr": args.lr if args.lr is not None else _DEFAULT_LR[opt_name]}
    if opt_name == "adamw" and args.weight_decay is not None:
        opt_options["weight_decay"] = args.weight_decay  # AdamW's own, decoupled decay
    optimizer = optimizer_from_name(opt_name, **opt_options)
    length = _length(args)
    if length["epochs"] is None and length["iterations"] is None:
        length["iterations"] = _DEFAULT_ITERATIONS
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
            eval_subset=_DEFAULT_EVAL_SUBSET if args.eval_subset is None else args.eval_subset,
            progress=progress,
            checkpoint=args.save,
            model_config=config,
            dataset=dataset,
            **length,
        )
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _check_resume_flags(args: argparse.Namespace, meta: dict[str, Any]) -> None:
    """A resumed run keeps the checkpoint's settings; flags that contradict them are errors."""
    config = meta.get("model") or {}
    trainer = meta.get("trainer") or {}
    optimizer = meta.get("optimizer") or {}
    opt_name = str(optimizer.get("name", "")).lower()
    decay = optimizer.get("hyper", {}).get("weight_decay") if opt_name == "adamw" else None
    schedule = (trainer.get("schedule") or {"name": "none"}).copy()
    checks = [
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
    for flag, given, saved in checks:
        if given is not None and given != saved:
            raise UserError(
                f"{flag} {given} differs from the checkpoint's {saved!r}: a resumed run keeps "
                "the checkpoint's settings (only --epochs/--iterations, --save, --plot, "
                "--history, --diagnostics, --data-dir and --no-progress may change)"
            )


def _resume_trainer(args: argparse.Namespace, progress: str) -> Any:
    from chainrule.serialization import CheckpointError, inspect_checkpoint
    from chainrule.training import Trainer

    try:
        meta = inspect_checkpoint(args.resume).get("meta", {})
    except FileNotFoundError:
        raise UserError(f"checkpoint not found: {args.resume}") from None
    except (CheckpointError, OSError) as exc:
        raise UserError(_first_line(exc)) from None
    if meta.get("kind") != "chainrule-training" or not isinstance(meta.get("model"), dict):
        raise UserError(f"{args.resume} is not a training checkpoint written by chainrule train")
    _check_resume_flags(args, meta)
    dataset = meta.get("dataset")
    if dataset not in _DATASETS:
        raise UserError(f"checkpoint {args.resume} was trained on {dataset!r}, not a known dataset")
    (x, t), (xt, tt) = _load_data(dataset, args.data_dir, meta["model"]["dtype"])
    try:
        return Trainer.from_checkpoint(
            args.resume, x, t, xt, tt, progress=progress, checkpoint=args.save, **_length(args)
        )
    except (CheckpointError, ValueError) as exc:
        raise UserError(_first_line(exc)) from None


def _optimizer_text(optimizer: Any, base_lr: float) -> str:
    hyper = {**optimizer.hyperparameters(), "lr": base_lr}  # not a scheduled lr of a resume
    return f"{type(optimizer).__name__}({', '.join(f'{k}={v:g}' for k, v in hyper.items())})"


def _print_header(trainer: Any, resumed_from: str | None) -> None:
    from chainrule.models import describe_model

    cfg = trainer.model_config
    total, per = trainer.total_iterations, trainer.iters_per_epoch
    schedule = trainer.schedule.config() if trainer.schedule is not None else {"name": "none"}
    schedule_text = ", ".join(f"{k} {v}" for k, v in schedule.items() if k != "name")
    from chainrule.training import model_device

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
    if resumed_from is not None:
        print(f"resume     from {resumed_from} at iteration {trainer.iteration}")
    print(flush=True)


def _print_results(trainer: Any, wall_seconds: float) -> None:
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


def cmd_train(args: argparse.Namespace) -> int:
    from chainrule.backend import blas_threads

    with blas_threads(args.threads) as limited:
        if not limited:
            print(
                f"chainrule train: note: cannot set BLAS threads to {args.threads} without "
                "threadpoolctl (pip install threadpoolctl, or set OPENBLAS_NUM_THREADS)",
                file=sys.stderr,
            )
        return _train(args)


def _train(args: argparse.Namespace) -> int:
    from chainrule.serialization import CheckpointError
    from chainrule.training import TrainingDiverged, save_history

    wall_start = time.perf_counter()
    if args.plot is not None:
        _require_plotting()
    for flag, path in (("--save", args.save), ("--history", args.history), ("--plot", args.plot)):
        if path is not None:
            _check_output_path(flag, path)
    diagnostics = None
    if args.diagnostics is not None:
        from chainrule.diagnostics import Diagnostics

        _require_plotting("--diagnostics")
        _check_output_folder("--diagnostics", args.diagnostics)
        every = 50 if args.diagnostics_every is None else args.diagnostics_every
        diagnostics = Diagnostics(every=every)
    elif args.diagnostics_every is not None:
        raise UserError("--diagnostics-every needs --diagnostics DIR")
    progress = "lines" if args.no_progress else "auto"
    if args.resume is not None:
        trainer = _resume_trainer(args, progress)
    else:
        trainer = _new_trainer(args, progress)
    if diagnostics is not None:
        trainer.on_step = diagnostics.on_step
    _print_header(trainer, args.resume)
    if trainer.iteration >= trainer.total_iterations:
        print(
            f"nothing to train: the checkpoint is at iteration {trainer.iteration}; pass a "
            "larger --epochs or --iterations to continue"
        )
    try:
        trainer.fit()
        if trainer.checkpoint is not None and trainer.last_checkpoint is None:
            trainer.save(trainer.checkpoint)  # a resumed run that had nothing left to do
    except TrainingDiverged as exc:
        message = str(exc)
        if diagnostics is not None and diagnostics.history["iteration"]:
            # What led up to a divergence is what the diagnostics are for: keep them.
            _write_diagnostics(diagnostics, args.diagnostics, _run_title(trainer))
            message += f" Diagnostics of the steps before it: {args.diagnostics}"
        raise UserError(message) from None
    except (CheckpointError, OSError) as exc:
        raise UserError(f"cannot write the checkpoint: {_first_line(exc)}") from None
    try:
        if args.history is not None:
            save_history(trainer.history, args.history)
        if args.plot is not None:
            from chainrule.plotting import plot_history

            plot_history(trainer.history, args.plot, title=_run_title(trainer))
    except OSError as exc:
        raise UserError(f"cannot write {exc.filename or 'output'}: {exc.strerror or exc}") from None
    written = []
    if diagnostics is not None and diagnostics.history["iteration"]:
        written = _write_diagnostics(diagnostics, args.diagnostics, _run_title(trainer))
    _print_results(trainer, time.perf_counter() - wall_start)
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
    return 0


def _run_title(trainer: Any) -> str:
    from chainrule.models import describe_model

    if trainer.model_config is None:
        return str(trainer.dataset)
    return f"{trainer.dataset}: {describe_model(trainer.model_config)}"


# --------------------------------------------------------------------------------------------
# evaluate
# --------------------------------------------------------------------------------------------


def cmd_evaluate(args: argparse.Namespace) -> int:
    from chainrule.training import evaluate

    arrays, meta = _read_checkpoint(args.checkpoint)
    model, config = _model_from_checkpoint(args.checkpoint, arrays, meta)
    dataset = args.dataset or meta.get("dataset")
    if dataset is None:
        raise UserError(f"checkpoint {args.checkpoint} records no dataset; pass --dataset")
    (_, _), (x_test, t_test) = _load_data(dataset, args.data_dir, config["dtype"])
    batch_size = int((meta.get("trainer") or {}).get("eval_batch_size", 1000))
    try:
        loss, acc = evaluate(model, x_test, t_test, batch_size=batch_size)
    except ValueError as exc:
        raise UserError(f"cannot evaluate {args.checkpoint} on {dataset}: {exc}") from None
    n = len(x_test)
    recorded = (meta.get("result") or {}).get("test_acc")
    iteration = (meta.get("position") or {}).get("iteration")
    if args.json:
        print(
            json.dumps(
                {
                    "test_accuracy": acc,
                    "test_loss": loss,
                    "correct": round(acc * n),
                    "samples": n,
                    "dataset": dataset,
                    "iteration": iteration,
                    "checkpoint": str(args.checkpoint),
                }
            )
        )
        return 0
    from chainrule.models import describe_model

    print(f"checkpoint     {args.checkpoint}  (iteration {iteration})")
    print(f"model          {describe_model(config)}")
    print(f"test accuracy  {100 * acc:.2f}%  ({round(acc * n)} / {n}, {dataset})")
    print(f"test loss      {loss:.4f}")
    if recorded is not None and dataset == meta.get("dataset"):
        same = "the same" if recorded == acc else "DIFFERENT"
        print(f"recorded       {100 * recorded:.2f}% at training time ({same})")
    return 0


# --------------------------------------------------------------------------------------------
# predict
# --------------------------------------------------------------------------------------------


def _read_image(path: str, side: int, invert: bool) -> Any:
    """A grayscale image as floats in [0, 1], resized to ``side`` x ``side``."""
    import numpy as np

    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise UserError(
            "predict needs Pillow to read images: pip install pillow (it comes with "
            "chainrule[plot])"
        ) from None
    try:
        with Image.open(path) as image:
            gray = image.convert("L")
            original = gray.size
            if gray.size != (side, side):
                gray = gray.resize((side, side), Image.Resampling.LANCZOS)
            pixels = np.asarray(gray, dtype=np.float64) / 255.0
    except FileNotFoundError:
        raise UserError(f"image not found: {path}") from None
    except UnidentifiedImageError:
        raise UserError(f"cannot read {path}: not an image file Pillow knows") from None
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc}") from None
    if invert:
        pixels = 1.0 - pixels
    return pixels, original


def cmd_predict(args: argparse.Namespace) -> int:
    import numpy as np

    from chainrule.datasets import FASHION_MNIST_CLASSES
    from chainrule.training import predict_scores

    arrays, meta = _read_checkpoint(args.checkpoint)
    model, config = _model_from_checkpoint(args.checkpoint, arrays, meta)
    side = math.isqrt(config["input_size"])
    if side * side != config["input_size"]:
        raise UserError(
            f"the model takes {config['input_size']} inputs, not a square image; cannot predict"
        )
    pixels, original = _read_image(args.image, side, args.invert)
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    if float(border.mean()) > 0.5:
        print(
            "chainrule predict: note: the image has a light background; MNIST digits are "
            "light on black" + ("" if args.invert else ": pass --invert for dark ink on paper"),
            file=sys.stderr,
        )
    x = pixels.reshape(1, -1).astype(config["dtype"])
    scores = predict_scores(model, x).reshape(-1).astype(np.float64)
    exp = np.exp(scores - scores.max())
    probs = exp / exp.sum()
    top = int(probs.argmax())
    dataset = meta.get("dataset")
    names = list(FASHION_MNIST_CLASSES) if dataset == "fashion-mnist" else None

    def label(k: int) -> str:
        return f"{k} ({names[k]})" if names and k < len(names) else str(k)

    if args.json:
        print(
            json.dumps(
                {
                    "prediction": top,
                    "label": label(top),
                    "probabilities": [float(p) for p in probs],
                    "image": str(args.image),
                }
            )
        )
        return 0
    size = f"{original[0]}x{original[1]}"
    resized = "" if original == (side, side) else f", resized to {side}x{side}"
    print(
        f"image       {args.image} ({size} grayscale{resized}{', inverted' if args.invert else ''})"
    )
    print(f"checkpoint  {args.checkpoint} ({dataset})")
    print()
    width = max(5, *(len(label(k)) for k in range(len(probs))))
    print(f"{'class':<{width}}  probability")
    for k, p in enumerate(probs):
        mark = "  <- prediction" if k == top else ""
        print(f"{label(k):<{width}}  {p:11.6f}{mark}")
    print()
    print(f"prediction: {label(top)}  ({100 * probs[top]:.2f}%)")
    return 0


# --------------------------------------------------------------------------------------------
# parsers
# --------------------------------------------------------------------------------------------


def _add_train_parser(sub: Any) -> None:
    train = sub.add_parser(
        "train",
        help="train a network on MNIST or Fashion-MNIST",
        description=(
            "Train a network with mini-batch gradient descent, evaluating on the test and "
            "training sets after every epoch. Defaults are the book's chapter 5 run: "
            "TwoLayerNet 784-50-10, SGD lr 0.1, batch 100, 10,000 iterations (16.67 epochs)."
        ),
        epilog=(
            "An epoch is floor(N / batch size) mini-batches drawn without replacement from a "
            "fresh permutation. With --resume, the model, optimizer, batch size, seed, schedule "
            "and dataset come from the checkpoint and the run continues exactly where it "
            "stopped; --epochs/--iterations give the new total length."
        ),
    )
    model = train.add_argument_group("model")
    model.add_argument("--model", choices=tuple(_DEFAULT_HIDDEN), help="default: two-layer")
    model.add_argument(
        "--hidden",
        type=_sizes,
        metavar="N[,N...]",
        help="hidden layer sizes (default: 50 for two-layer, 256,128 for mlp, 100 for "
        "simple-cnn, 50 for deep-cnn)",
    )
    model.add_argument("--activation", choices=("relu", "sigmoid", "tanh"), help="default: relu")
    model.add_argument(
        "--init",
        type=_init,
        metavar="he|xavier|STD",
        help="initial weight scale (default: he for relu, xavier otherwise, 0.01 for "
        "simple-cnn; --init 0.01 is the book's two-layer recipe)",
    )
    model.add_argument(
        "--weight-decay",
        type=_non_negative_float,
        metavar="LAMBDA",
        help="L2 penalty (mlp), or AdamW's decoupled decay with --optimizer adamw",
    )
    model.add_argument("--batchnorm", action="store_true", help="batch normalization (mlp)")
    model.add_argument(
        "--dropout",
        type=_ratio,
        metavar="RATIO",
        help="dropout ratio (mlp: default 0 = off; deep-cnn: default 0.5)",
    )
    model.add_argument("--dtype", choices=("float32", "float64"), help="default: float32")

    opt = train.add_argument_group("optimization")
    opt.add_argument("--optimizer", choices=_OPTIMIZERS, help="default: sgd")
    opt.add_argument(
        "--lr",
        type=_positive_float,
        help="learning rate (default: 0.1 sgd, 0.01 momentum/nesterov/adagrad, "
        "0.001 rmsprop/adam/adamw)",
    )
    opt.add_argument("--batch-size", type=_positive_int, metavar="N", help="default: 100")
    length = opt.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=_positive_float, metavar="N", help="length in epochs")
    length.add_argument(
        "--iterations", type=_positive_int, metavar="N", help="length in steps (default: 10000)"
    )
    opt.add_argument(
        "--schedule",
        choices=("none", "step", "cosine"),
        help="learning-rate schedule: step (x gamma every --step-epochs) or cosine over the run",
    )
    opt.add_argument(
        "--step-epochs", type=_positive_int, metavar="K", help="step schedule period (default: 5)"
    )
    opt.add_argument("--gamma", type=_gamma, help="step schedule factor (default: 0.1)")
    opt.add_argument("--seed", type=int, help="seed of the initial weights and batch order (0)")

    data = train.add_argument_group("data and files")
    data.add_argument("--dataset", choices=_DATASETS, help="default: mnist")
    data.add_argument("--data-dir", metavar="DIR", help="folder with the IDX files (or a parent)")
    data.add_argument(
        "--eval-subset",
        type=_positive_int,
        metavar="N",
        help="training-set metrics on a fixed subset of N samples, the same for every seed "
        "(default: 10000; N >= the training set size means all of it)",
    )
    data.add_argument("--save", metavar="CKPT", help="write a checkpoint after every epoch")
    data.add_argument("--resume", metavar="CKPT", help="continue the run saved in CKPT")
    data.add_argument("--plot", metavar="PNG", help="write loss and accuracy curves (matplotlib)")
    data.add_argument("--history", metavar="JSON", help="write the per-epoch history as JSON")
    data.add_argument(
        "--diagnostics",
        metavar="DIR",
        help="write learner diagnostics to DIR (created if missing): diagnostics.json with "
        "per-layer gradient norms, update/weight ratios and dead-ReLU fractions, and PNG "
        "plots of them and of activation histograms (matplotlib)",
    )
    data.add_argument(
        "--diagnostics-every",
        type=_positive_int,
        metavar="N",
        help="record diagnostics every N steps (default: 50)",
    )
    data.add_argument(
        "--no-progress", action="store_true", help="no progress bar: one line per epoch only"
    )
    data.add_argument(
        "--threads",
        type=_positive_int,
        default=1,
        metavar="N",
        help="BLAS threads (default 1: faster for these small matrices; needs threadpoolctl)",
    )
    _add_device_flag(data)
    train.set_defaults(func=cmd_train)


def _add_evaluate_parser(sub: Any) -> None:
    evaluate = sub.add_parser(
        "evaluate",
        help="test accuracy and loss of a checkpoint",
        description="Rebuild the model of a checkpoint and evaluate it on its dataset's test set.",
    )
    evaluate.add_argument("checkpoint", metavar="CKPT")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.add_argument("--data-dir", metavar="DIR", help="folder with the IDX files")
    evaluate.add_argument(
        "--dataset", choices=_DATASETS, help="test set to use (default: the checkpoint's)"
    )
    _add_device_flag(evaluate)
    evaluate.set_defaults(func=cmd_evaluate)


def _add_predict_parser(sub: Any) -> None:
    predict = sub.add_parser(
        "predict",
        help="class probabilities of one image",
        description=(
            "Classify a grayscale image (PNG, or anything Pillow reads) with a checkpoint. "
            "Images that are not 28x28 are resized. MNIST digits are white on black: pass "
            "--invert for dark ink on a light background."
        ),
    )
    predict.add_argument("checkpoint", metavar="CKPT")
    predict.add_argument("image", metavar="IMAGE")
    predict.add_argument("--invert", action="store_true", help="use 1 - pixel (dark on light)")
    predict.add_argument("--json", action="store_true", help="print one JSON object")
    _add_device_flag(predict)
    predict.set_defaults(func=cmd_predict)


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(
        prog="chainrule",
        description="Backpropagation through computational graphs, from the book to MNIST.",
    )
    parser.add_argument("--version", action="version", version=f"chainrule {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    from chainrule.examples import EXAMPLES

    demo = sub.add_parser(
        "demo",
        help="run the seeds' worked examples and print their numbers",
        description="Run worked examples: " + ", ".join(EXAMPLES) + " (default: all).",
    )
    demo.add_argument("names", nargs="*", metavar="NAME", help="example to run")
    demo.set_defaults(func=cmd_demo)
    _add_train_parser(sub)
    _add_evaluate_parser(sub)
    _add_predict_parser(sub)

    from chainrule.viz.cli import add_graph_parser

    add_graph_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from chainrule.backend import current_device, use_device

    device_before = current_device()
    try:
        _use_device(getattr(args, "device", None))
        return int(args.func(args))
    except UserError as e:
        print(f"chainrule {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"chainrule {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        use_device(device_before)  # main() called from Python leaves the process as it was


def _use_device(device: str | None) -> None:
    """``--device``: build models there (CuPy is imported only for ``cuda``)."""
    from chainrule.backend import DeviceError, use_device

    try:
        use_device(device or "cpu")
    except DeviceError as exc:
        raise UserError(str(exc)) from None


def _add_device_flag(parser: Any) -> None:
    parser.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        help="where the model runs: cpu (NumPy, default) or cuda (an NVIDIA GPU through CuPy)",
    )


def entry_point() -> None:
    """Console-script entry: exit with :func:`main`'s status."""
    sys.exit(main())
