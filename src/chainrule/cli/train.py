"""``chainrule train``: train a network on MNIST or Fashion-MNIST and report the results.

The choices of ``--model``, ``--optimizer``, ``--activation`` and ``--schedule`` and the
defaults of ``--hidden`` and ``--lr`` come from the library's registries
(:mod:`chainrule.cli.choices`); the run itself is built in :mod:`chainrule.cli.train_setup`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from chainrule.cli import args as types
from chainrule.cli import choices
from chainrule.cli.common import (
    UserError,
    add_device_flag,
    check_output_folder,
    check_output_path,
    require_plotting,
)

# Longest runs the flags accept: a billion steps is weeks of the book's network; longer
# is a typo (and would only overflow the progress line's columns).
MAX_ITERATIONS = 10**9
MAX_EPOCHS = 10**6
# Counts of samples or units (batch size, evaluation subset, a layer's width): beyond this
# no dataset or memory budget can follow, so the flag says so before anything is loaded.
MAX_COUNT = 10**8
MAX_THREADS = 4096
COUNT = types.at_most(types.positive_int, MAX_COUNT)

_DESCRIPTION = (
    "Train a network with mini-batch gradient descent, evaluating on the test and training "
    "sets after every epoch. Defaults are the book's chapter 5 run: TwoLayerNet 784-50-10, "
    "SGD lr 0.1, batch 100, 10,000 iterations (16.67 epochs)."
)
_EPILOG = (
    "An epoch is floor(N / batch size) mini-batches drawn without replacement from a fresh "
    "permutation. With --resume, the model, optimizer, batch size, seed, schedule and dataset "
    "come from the checkpoint and the run continues exactly where it stopped; "
    "--epochs/--iterations give the new total length."
)


def _add_model_flags(train: Any) -> None:
    model = train.add_argument_group("model")
    model.add_argument(
        "--model",
        choices=types.LazyChoices(choices.models),
        metavar="NAME",
        help="one of %(choices)s (default: two-layer)",
    )
    hidden = model.add_argument(
        "--hidden",
        type=types.at_most_each(types.sizes, MAX_COUNT),
        metavar="N[,N...]",
        help="hidden layer sizes (default: %(defaults)s)",
    )
    hidden.defaults = types.LazyText(choices.hidden_help)
    model.add_argument(
        "--activation",
        choices=types.LazyChoices(choices.activations),
        metavar="NAME",
        help="one of %(choices)s (default: relu)",
    )
    init = model.add_argument(
        "--init",
        type=types.init,
        metavar="he|xavier|STD",
        help="initial weight scale (default: %(defaults)s; --init 0.01 is the book's "
        "two-layer recipe)",
    )
    init.defaults = types.LazyText(choices.init_help)
    model.add_argument(
        "--weight-decay",
        type=types.non_negative_float,
        metavar="LAMBDA",
        help="L2 penalty (mlp), or AdamW's decoupled decay with --optimizer adamw",
    )
    model.add_argument("--batchnorm", action="store_true", help="batch normalization (mlp)")
    model.add_argument(
        "--dropout",
        type=types.ratio,
        metavar="RATIO",
        help="dropout ratio (mlp: default 0 = off; deep-cnn: default 0.5)",
    )
    model.add_argument(
        "--dtype",
        choices=types.LazyChoices(choices.dtypes),
        metavar="NAME",
        help="one of %(choices)s (default: float32)",
    )
    model.add_argument(
        "--engine",
        choices=types.LazyChoices(choices.engines),
        metavar="NAME",
        help="layers (the book's networks, default) or autograd (the same network built from "
        "chainrule.nn modules on the Tensor engine); checkpoints record it",
    )


def _add_optimization_flags(train: Any) -> None:
    opt = train.add_argument_group("optimization")
    opt.add_argument(
        "--optimizer",
        choices=types.LazyChoices(choices.optimizers),
        metavar="NAME",
        help="one of %(choices)s (default: sgd)",
    )
    lr = opt.add_argument(
        "--lr", type=types.positive_float, help="learning rate (default: %(defaults)s)"
    )
    lr.defaults = types.LazyText(choices.lr_help)
    opt.add_argument("--batch-size", type=COUNT, metavar="N", help="default: 100")
    length = opt.add_mutually_exclusive_group()
    length.add_argument(
        "--epochs",
        type=types.at_most(types.positive_float, MAX_EPOCHS),
        metavar="N",
        help="length in epochs",
    )
    length.add_argument(
        "--iterations",
        type=types.at_most(types.positive_int, MAX_ITERATIONS),
        metavar="N",
        help="length in steps (default: 10000)",
    )
    opt.add_argument(
        "--schedule",
        choices=types.LazyChoices(choices.schedules),
        metavar="NAME",
        help="learning-rate schedule, one of %(choices)s: step (x gamma every --step-epochs) "
        "or cosine over the run",
    )
    opt.add_argument(
        "--step-epochs",
        type=types.at_most(types.positive_int, MAX_EPOCHS),
        metavar="K",
        help="step schedule period (default: 5)",
    )
    opt.add_argument("--gamma", type=types.factor, help="step schedule factor (default: 0.1)")
    opt.add_argument(
        "--seed", type=types.seed, help="seed of the initial weights and batch order (0)"
    )


def _add_file_flags(train: Any) -> None:
    data = train.add_argument_group("data and files")
    data.add_argument("--dataset", choices=choices.DATASETS, help="default: mnist")
    data.add_argument("--data-dir", metavar="DIR", help="folder with the IDX files (or a parent)")
    data.add_argument(
        "--eval-subset",
        type=COUNT,
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
        type=types.at_most(types.positive_int, MAX_ITERATIONS),
        metavar="N",
        help="record diagnostics every N steps (default: 50)",
    )
    data.add_argument(
        "--no-progress", action="store_true", help="no progress bar: one line per epoch only"
    )
    data.add_argument(
        "--threads",
        type=types.auto_or(types.at_most(types.positive_int, MAX_THREADS)),
        default="auto",
        metavar="N|auto",
        help="BLAS threads (default auto: 1 for the small products of these nets, more cores "
        "only for big ones; see chainrule.training.threads; needs threadpoolctl)",
    )
    add_device_flag(data)


def add_parser(sub: Any) -> None:
    train = sub.add_parser(
        "train",
        help="train a network on MNIST or Fashion-MNIST",
        description=_DESCRIPTION,
        epilog=_EPILOG,
    )
    _add_model_flags(train)
    _add_optimization_flags(train)
    _add_file_flags(train)
    train.add_argument(
        "--distributed",
        action="store_true",
        help="data-parallel over MPI (implied when launched by mpiexec/srun with more than one "
        "process): --batch-size is the global batch, split evenly among the processes; rank 0 "
        "prints and writes the files (needs: pip install 'chainrule[distributed]')",
    )
    train.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from chainrule.training.threads import blas_threads

    parallel = _data_parallel(args)
    # An explicit count holds for the whole command; "auto" is the Trainer's choice (it limits
    # BLAS itself during training and evaluation, and the header says what it chose).
    explicit = None if args.threads == "auto" else args.threads
    with blas_threads(explicit) as limited, _root_prints(parallel):
        if explicit is not None and not limited:
            print(
                f"chainrule train: note: cannot set BLAS threads to {args.threads} without "
                "threadpoolctl (pip install threadpoolctl, or set OPENBLAS_NUM_THREADS)",
                file=sys.stderr,
            )
        if parallel is None:
            return _train(args, None)
        try:
            return _train(args, parallel)
        except Exception as exc:  # one rank alone failing must not leave the others waiting
            user = isinstance(exc, UserError)
            what = "error" if user else f"internal error: {type(exc).__name__}"
            print(
                f"chainrule train: {what} (rank {parallel.rank} of {parallel.size}; aborting "
                f"the job): {' '.join(str(exc).split())}",
                file=sys.stderr,
                flush=True,
            )
            parallel.comm.Abort(2 if user else 1)
            raise  # not reached: Abort ends the process


def _data_parallel(args: argparse.Namespace) -> Any:
    """A DataParallel when launched by MPI with several processes or with --distributed."""
    from chainrule.distributed import DataParallel, DistributedError, launched_size

    if not args.distributed and launched_size() == 1:
        return None
    try:
        parallel = DataParallel()
    except DistributedError as exc:
        raise UserError(str(exc)) from None
    batch = args.batch_size or 100
    if args.resume is None and batch % parallel.size:
        raise UserError(
            f"--batch-size {batch} does not divide among {parallel.size} processes: pass a "
            f"multiple of {parallel.size} (each process gets batch size / {parallel.size} rows)"
        )
    return parallel


@contextlib.contextmanager
def _root_prints(parallel: Any) -> Iterator[None]:
    """Only rank 0 prints to stdout (progress, header, results); errors still go to stderr."""
    if parallel is None or parallel.is_root:
        yield
        return
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        yield


def _diagnostics_recorder(args: argparse.Namespace) -> Any:
    """The Diagnostics of ``--diagnostics DIR`` (None without it), its output checked first."""
    if args.diagnostics is None:
        if args.diagnostics_every is not None:
            raise UserError("--diagnostics-every needs --diagnostics DIR")
        return None
    from chainrule.diagnostics import Diagnostics

    require_plotting("--diagnostics")
    check_output_folder("--diagnostics", args.diagnostics)
    every = 50 if args.diagnostics_every is None else args.diagnostics_every
    return Diagnostics(every=every)


def _fit(trainer: Any, args: argparse.Namespace, diagnostics: Any) -> None:
    """``trainer.fit()`` with divergence and checkpoint failures as one-line errors."""
    from chainrule.cli.train_report import run_title, write_diagnostics
    from chainrule.serialization import CheckpointError
    from chainrule.training import TrainingDiverged

    try:
        trainer.fit()
        if trainer.checkpoint is not None and trainer.last_checkpoint is None:
            trainer.save(trainer.checkpoint)  # a resumed run that had nothing left to do
    except TrainingDiverged as exc:
        message = str(exc)
        if diagnostics is not None and diagnostics.history["iteration"]:
            # What led up to a divergence is what the diagnostics are for: keep them.
            write_diagnostics(diagnostics, args.diagnostics, run_title(trainer))
            message += f" Diagnostics of the steps before it: {args.diagnostics}"
        raise UserError(message) from None
    except (CheckpointError, OSError) as exc:
        from chainrule.cli.common import first_line

        raise UserError(f"cannot write the checkpoint: {first_line(exc)}") from None


def _write_outputs(trainer: Any, args: argparse.Namespace, diagnostics: Any) -> list[Path]:
    """``--history``, ``--plot`` and ``--diagnostics`` files; returns the diagnostics files."""
    from chainrule.cli.train_report import run_title, write_diagnostics
    from chainrule.training import save_history

    try:
        if args.history is not None:
            save_history(trainer.history, args.history)
        if args.plot is not None:
            from chainrule.plotting import plot_history

            plot_history(trainer.history, args.plot, title=run_title(trainer))
    except OSError as exc:
        raise UserError(f"cannot write {exc.filename or 'output'}: {exc.strerror or exc}") from None
    if diagnostics is not None and diagnostics.history["iteration"]:
        return write_diagnostics(diagnostics, args.diagnostics, run_title(trainer))
    return []


def _train(args: argparse.Namespace, parallel: Any) -> int:
    from chainrule.cli.train_report import print_files, print_header, print_results
    from chainrule.cli.train_setup import new_trainer, resume_trainer

    wall_start = time.perf_counter()
    if args.plot is not None:
        require_plotting()
    for flag, path in (("--save", args.save), ("--history", args.history), ("--plot", args.plot)):
        if path is not None:
            check_output_path(flag, path)
    diagnostics = _diagnostics_recorder(args)
    progress = "lines" if args.no_progress else "auto"
    if args.resume is not None:
        trainer = resume_trainer(args, progress)
    else:
        trainer = new_trainer(args, progress)
    if parallel is not None:
        from chainrule.distributed import DistributedError

        try:
            parallel.attach(trainer)
        except DistributedError as exc:
            raise UserError(str(exc)) from None
        if not parallel.is_root:  # rank 0 alone writes the outputs
            args.history = args.plot = None
            diagnostics = None
        share = trainer.batch_size // parallel.size
        noun = "process" if parallel.size == 1 else "processes"
        print(f"data-parallel: {parallel.size} {noun}, {share} samples each per step")
    if diagnostics is not None:
        trainer.on_step = diagnostics.on_step
    print_header(trainer, args.resume)
    if trainer.iteration >= trainer.total_iterations:
        print(
            f"nothing to train: the checkpoint is at iteration {trainer.iteration}; pass a "
            "larger --epochs or --iterations to continue"
        )
    _fit(trainer, args, diagnostics)
    written = _write_outputs(trainer, args, diagnostics)
    print_results(trainer, time.perf_counter() - wall_start)
    print_files(args, written, diagnostics)
    return 0
