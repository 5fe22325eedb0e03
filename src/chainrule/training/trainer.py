"""The training loop: sample a batch, ``loss_and_grads``, update, then the triggered extensions.

The extensions (each in its own module) are the divergence guard (:mod:`.guard`), evaluation
and history (:mod:`.evaluation`, :mod:`.history`), progress (:mod:`.progress`), snapshots
(:mod:`.snapshot`, with the lock of :mod:`.lock`) and the user's ``on_step``/``on_epoch``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

from chainrule.backend import get_array_module, to_device
from chainrule.models import config_of
from chainrule.optim.schedules import Schedule, make_schedule
from chainrule.serialization import load_checkpoint, save_checkpoint
from chainrule.training import snapshot
from chainrule.training.batching import BatchSampler
from chainrule.training.evaluation import evaluate, model_device
from chainrule.training.guard import DivergenceGuard, check_data, update_unchecked
from chainrule.training.history import append_record, format_record, new_history
from chainrule.training.lock import CheckpointLock
from chainrule.training.progress import Progress
from chainrule.training.protocol import loss_and_grads, model_rngs
from chainrule.training.threads import blas_threads, choose_threads

__all__ = ["Trainer"]

# The fixed training subset for evaluation does not depend on the run's seed, so runs with
# different seeds report numbers on the same samples.
_SUBSET_SEED = 20_240_601


def _check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"Trainer: {name} must be a positive integer, got {value!r}")
    return int(value)


def _check_sets(x_train: Any, t_train: Any, x_test: Any, t_test: Any) -> None:
    if len(x_train) != len(t_train):
        raise ValueError(f"Trainer: {len(x_train)} training samples but {len(t_train)} labels")
    if len(x_test) != len(t_test):
        raise ValueError(f"Trainer: {len(x_test)} test samples but {len(t_test)} labels")
    if len(x_test) == 0:
        raise ValueError("Trainer: the test set is empty")
    check_data("training set", x_train)
    check_data("test set", x_test)


def _eval_subset(x: Any, t: Any, size: int | None) -> tuple[Any, Any]:
    """A fixed subset of ``size`` training samples (all of them when None or larger)."""
    if size is None or size >= len(x):
        return x, t
    pick = np.random.default_rng(_SUBSET_SEED).choice(len(x), size, replace=False)
    pick.sort()
    return x[pick], t[pick]


class Trainer:
    """Train ``model`` with ``optimizer`` on ``(x_train, t_train)``, evaluating on both sets.

    Args:
        model: any model of the trainable-model protocol (:mod:`chainrule.training.protocol`):
            the book's networks and ``nn.Module`` models.
        optimizer: a :class:`chainrule.optim.Optimizer`; its ``lr`` at construction is the base
            learning rate that ``schedule`` scales.
        x_train, t_train, x_test, t_test: arrays; labels as class indices or one-hot rows.
            Inputs holding NaN or infinity are refused, naming the set and the sample.
        batch_size: samples per step (at most ``len(x_train)``).
        epochs, iterations: the length of the run, exactly one of them (an epoch is
            ``len(x_train) // batch_size`` steps; ``epochs`` may be fractional).
        seed: seeds ``np.random.default_rng(seed)``, the generator of the batch order.
        eval_every: ``"epoch"`` or a number of steps between evaluations (the end of the run
            is always evaluated).
        eval_subset: evaluate training metrics on a fixed subset of this many samples (the
            same subset whatever the seed); None for the whole training set.
        eval_batch_size: rows per forward pass during evaluation.
        schedule: None, ``"step"``, ``"cosine"``, a config dict or a :class:`Schedule`.
        progress: ``"auto"`` (a tqdm bar on a terminal or in a notebook, plus one line per
            evaluation), ``"bar"``/True, ``"lines"``, ``"none"``/False.
        stream: where progress goes (default ``sys.stdout``).
        checkpoint: a file written (atomically) after every evaluation and at the end. While
            :meth:`fit` runs, a lock file beside it keeps other processes from writing it.
        on_epoch: ``on_epoch(trainer, record)`` after every evaluation (``record``: the new
            history entry as a dict); returning ``False`` stops training after it.
        on_step: ``on_step(trainer, iteration, grads)`` after every step's update, before any
            evaluation; its return value is ignored (e.g. ``Diagnostics.on_step``).
        model_config, dataset: stored in checkpoints so that a model can be rebuilt and
            evaluated from the file alone (see :mod:`chainrule.models`).
        rngs: more generators to checkpoint and restore by name. A ``Generator`` found as
            ``model.rng`` or ``model._rng`` is included automatically as ``"model"``.
        meta: more JSON-able data to store in checkpoints, under ``"extra"``.
        threads: BLAS threads during :meth:`fit`: ``"auto"`` (chosen from the matrix sizes,
            see :mod:`chainrule.training.threads`), a count, or None (leave BLAS alone).
            :attr:`threads` holds the count used, :attr:`threads_note` why.
    """

    def __init__(
        self,
        model: Any,
        optimizer: Any,
        x_train: np.ndarray,
        t_train: np.ndarray,
        x_test: np.ndarray,
        t_test: np.ndarray,
        *,
        batch_size: int = 100,
        epochs: float | None = None,
        iterations: int | None = None,
        seed: int = 0,
        eval_every: int | str = "epoch",
        eval_subset: int | None = None,
        eval_batch_size: int = 1000,
        schedule: str | Mapping[str, Any] | Schedule | None = None,
        progress: bool | str = "auto",
        stream: IO[str] | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        on_epoch: Callable[[Trainer, dict[str, Any]], bool | None] | None = None,
        on_step: Callable[[Trainer, int, dict[str, Any]], Any] | None = None,
        model_config: Mapping[str, Any] | None = None,
        dataset: str | None = None,
        rngs: Mapping[str, np.random.Generator] | None = None,
        meta: Mapping[str, Any] | None = None,
        threads: int | str | None = "auto",
    ) -> None:
        self.model, self.optimizer = model, optimizer
        _check_sets(x_train, t_train, x_test, t_test)
        self.x_train, self.t_train = x_train, t_train
        self.x_test, self.t_test = x_test, t_test
        self.train_size = len(x_train)
        self.batch_size = _check_positive_int("batch_size", batch_size)
        if self.batch_size > self.train_size:
            raise ValueError(
                f"Trainer: batch_size {batch_size} is larger than the training set "
                f"({self.train_size} samples)"
            )
        self.iters_per_epoch = self.train_size // self.batch_size
        self.total_iterations = self._total(epochs, iterations)
        self._set_evaluation(eval_every, eval_subset, eval_batch_size)
        self.schedule = make_schedule(schedule)
        self.base_lr = float(optimizer.lr)
        self.seed = int(seed)
        self.sampler = BatchSampler(self.train_size, self.batch_size, self.seed)
        self.rngs = {**model_rngs(model), **(rngs or {})}
        self.threads, self.threads_note = choose_threads(threads, model, self.batch_size)
        self._progress = Progress(progress, stream)
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self.on_epoch, self.on_step = on_epoch, on_step
        self.model_config = dict(model_config or config_of(model) or {}) or None
        self.dataset = dataset
        self.meta = dict(meta or {})
        self.guard = DivergenceGuard()
        self.iteration = 0  # completed steps
        self.history: dict[str, list[Any]] = new_history()
        self.restore_clock(0.0, 0.0, 0.0)
        self._last_saved: Path | None = None
        self._batch_loss_sum, self._batch_loss_count = 0.0, 0

    def _set_evaluation(self, eval_every: Any, eval_subset: Any, eval_batch_size: Any) -> None:
        if eval_every != "epoch":
            eval_every = _check_positive_int("eval_every", eval_every)
        self.eval_every = eval_every
        self.eval_batch_size = _check_positive_int("eval_batch_size", eval_batch_size)
        if eval_subset is not None:
            eval_subset = _check_positive_int("eval_subset", eval_subset)
        self.eval_subset = eval_subset
        self.x_eval, self.t_eval = _eval_subset(self.x_train, self.t_train, eval_subset)

    # ---- the length of the run and the clock

    def _total(self, epochs: float | None, iterations: int | None) -> int:
        if (epochs is None) == (iterations is None):
            raise ValueError("Trainer: give exactly one of epochs and iterations")
        if iterations is not None:
            return _check_positive_int("iterations", iterations)
        if isinstance(epochs, bool) or not isinstance(epochs, (int, float, np.number)):
            raise ValueError(f"Trainer: epochs must be a positive number, got {epochs!r}")
        if not (math.isfinite(epochs) and epochs > 0):
            raise ValueError(f"Trainer: epochs must be a positive number, got {epochs!r}")
        return max(1, round(epochs * self.iters_per_epoch))

    def set_length(self, *, epochs: float | None = None, iterations: int | None = None) -> None:
        """Change the run's total length (e.g. to train a resumed run for longer)."""
        self.total_iterations = self._total(epochs, iterations)

    def restore_clock(self, seconds: float, train_seconds: float, eval_seconds: float) -> None:
        """Set the time already spent (``seconds`` in all, in steps, in evaluation)."""
        self._elapsed_before = seconds  # seconds of earlier runs this one resumes
        self.train_seconds = train_seconds  # time in steps (forward, backward, update)
        self.eval_seconds = eval_seconds
        self._run_start: float | None = None

    def elapsed(self) -> float:
        """Seconds spent in :meth:`fit` so far, summed over resumed runs."""
        running = self._run_start
        now = time.perf_counter() - running if running is not None else 0.0
        return self._elapsed_before + now

    @property
    def last_checkpoint(self) -> Path | None:
        """The file this trainer last wrote a checkpoint to in this process, if any."""
        return self._last_saved

    @property
    def epoch(self) -> float:
        """Epochs completed so far, fractional within an epoch."""
        return self.iteration / self.iters_per_epoch

    # ---- training

    def fit(self) -> dict[str, list[Any]]:
        """Train until ``total_iterations`` steps are done; return :attr:`history`.

        Raises:
            TrainingDiverged: a non-finite or exploding loss, gradient or weight (a non-finite
                one is never applied nor saved).
            CheckpointError: another running process holds ``checkpoint``.
        """
        # The training set goes where the model is, once; batches are gathered there into
        # reused buffers (take writes into them: no new arrays per step).
        device = model_device(self.model)
        x_train, t_train = to_device(self.x_train, device), to_device(self.t_train, device)
        xp = get_array_module(x_train)
        xb = xp.empty((self.batch_size, *x_train.shape[1:]), dtype=x_train.dtype)
        tb = xp.empty((self.batch_size, *t_train.shape[1:]), dtype=t_train.dtype)
        self._params = self.model.params  # one dict for the run (an nn model builds it)
        lock = CheckpointLock(self.checkpoint) if self.checkpoint is not None else None
        self._progress.start(self.total_iterations, self.iteration)
        self._run_start = time.perf_counter()
        try:
            if lock is not None:
                lock.acquire()
            with blas_threads(self.threads):
                self._loop(x_train, t_train, xb, tb)
        finally:
            if lock is not None:
                lock.release()
            self._progress.close()
            self._elapsed_before = self.elapsed()
            self._run_start = None
        return self.history

    def _loop(self, x_train: Any, t_train: Any, xb: Any, tb: Any) -> None:
        while self.iteration < self.total_iterations:
            grads = self._step(x_train, t_train, xb, tb)
            if self.on_step is not None:
                self.on_step(self, self.iteration, grads)
            del grads  # so the next step's backward is the only one holding gradients
            if self._due_for_evaluation():
                record = self._evaluate_and_record()
                if self.checkpoint is not None:
                    self.save(self.checkpoint)
                if self.on_epoch is not None and self.on_epoch(self, record) is False:
                    break

    def _step(self, x_train: Any, t_train: Any, xb: Any, tb: Any) -> dict[str, Any]:
        """One step: gather a batch, loss and gradients, check them, update."""
        t0 = time.perf_counter()
        self.sampler.gather(x_train, t_train, xb, tb)
        if self.schedule is not None:
            self.optimizer.lr = self.base_lr * self.schedule.factor(
                self.iteration, self.iters_per_epoch, self.total_iterations
            )
        try:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                loss, grads = self.compute_grads(xb, tb)
            fault = self.guard.check_step(loss, grads)
        except FloatingPointError as exc:  # the loss refuses non-finite scores where they enter
            fault = ("loss", f"is not finite ({exc})")
        if fault is not None:
            raise self.guard.diverged(self, *fault, step=self.iteration + 1, after_update=False)
        update_unchecked(self.optimizer, self._params, grads)
        self.iteration += 1
        self.sampler.advance()
        self._batch_loss_sum += loss
        self._batch_loss_count += 1
        self.train_seconds += time.perf_counter() - t0
        self._progress.step(loss, self.iteration // self.iters_per_epoch + 1)
        exploded = self.guard.check_explosion(loss)
        if exploded is not None:
            step = self.iteration
            raise self.guard.diverged(self, "loss", exploded, step=step, after_update=True)
        return grads

    # ---- the two hooks a data-parallel run replaces (see chainrule.distributed)

    def compute_grads(self, x: Any, t: Any) -> tuple[float, dict[str, Any]]:
        """Loss and gradients of the model on the batch ``(x, t)`` (one forward + backward)."""
        return loss_and_grads(self.model, x, t)

    def evaluate_on(self, x: Any, t: Any) -> tuple[float, float]:
        """Mean cross-entropy and accuracy of the model on ``(x, t)`` (inference mode)."""
        # BLAS threads: fit's count holds (threads=None)
        return evaluate(self.model, x, t, batch_size=self.eval_batch_size, threads=None)

    def _due_for_evaluation(self) -> bool:
        if self.iteration == self.total_iterations:
            return True
        if self.eval_every == "epoch":
            return self.sampler.end_of_epoch()
        return self.iteration % self.eval_every == 0

    def _evaluate_and_record(self) -> dict[str, Any]:
        self._check_params()
        t0 = time.perf_counter()
        train_loss, train_acc = self.evaluate_on(self.x_eval, self.t_eval)
        test_loss, test_acc = self.evaluate_on(self.x_test, self.t_test)
        self.eval_seconds += time.perf_counter() - t0
        if not (math.isfinite(train_loss) and math.isfinite(test_loss)):
            problem = "overflowed in the evaluation after this step"
            raise self.guard.diverged(self, "loss", problem, step=self.iteration, after_update=True)
        mean_batch = self._batch_loss_sum / max(self._batch_loss_count, 1)
        self._batch_loss_sum, self._batch_loss_count = 0.0, 0
        record = {
            "epoch": self.epoch,
            "iteration": self.iteration,
            "train_loss": train_loss,
            "train_acc": train_acc,
            "test_loss": test_loss,
            "test_acc": test_acc,
            "batch_loss": mean_batch,
            "lr": float(self.optimizer.lr),
            "seconds": self.elapsed(),
        }
        append_record(self.history, record)
        self._progress.line(self.format_record(record))
        return record

    def _check_params(self) -> None:
        # The gradients were finite, but an update can still overflow (float32 tops out at
        # 3.4e38) or blow the weights up; catch that before evaluating or saving.
        fault = self.guard.check_params(self.model.params)
        if fault is not None:
            raise self.guard.diverged(self, *fault, step=self.iteration, after_update=True)

    def format_record(self, record: Mapping[str, Any]) -> str:
        """One line per evaluation, as printed during training."""
        return format_record(record, self.total_iterations)

    # ---- checkpoints (see chainrule.training.snapshot)

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """The arrays and meta of a checkpoint of the current state."""
        return snapshot.state(self)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write a checkpoint of the current state to ``path`` (atomically; finite values only).

        Raises:
            TrainingDiverged: a parameter is non-finite or exploded (nothing is written).
            CheckpointError: another running process holds ``path`` (its lock file).
        """
        self._check_params()
        arrays, meta = self.state()
        with CheckpointLock(path).held():
            target = save_checkpoint(path, arrays, meta)
        self._last_saved = target
        return target

    def restore(self, path: str | os.PathLike[str]) -> dict[str, Any]:
        """Load a checkpoint written by :meth:`save` into this trainer, its model and optimizer.

        The trainer must have been built with a model of the same engine, names, shapes and
        dtypes, the same optimizer class, training set size and batch size. Afterwards
        :meth:`fit` continues the run exactly; ``total_iterations`` stays what this trainer
        was built with (see :meth:`set_length`). Returns the checkpoint's meta.

        Raises:
            FileNotFoundError: no such file.
            CheckpointError: the file is corrupted, not a training checkpoint, or does not fit
                (the message names the file and what differs). Nothing is changed then.
        """
        meta = snapshot.restore(self, path)
        self._last_saved = None
        self._batch_loss_sum, self._batch_loss_count = 0.0, 0
        return meta

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike[str],
        x_train: np.ndarray,
        t_train: np.ndarray,
        x_test: np.ndarray,
        t_test: np.ndarray,
        *,
        epochs: float | None = None,
        iterations: int | None = None,
        **options: Any,
    ) -> Trainer:
        """Rebuild model, optimizer and trainer from a checkpoint, ready to :meth:`fit` on.

        The model comes from the checkpoint's model config (:func:`chainrule.models.build_model`),
        the optimizer from its name and hyperparameters; batch size, seed, schedule and
        evaluation settings from the checkpoint. The run's length is ``epochs``/``iterations``
        when given, else the checkpoint's. ``options`` are other :class:`Trainer` arguments
        (``progress``, ``checkpoint``, ``on_epoch``, ...).
        """
        target = Path(path)
        _, meta = load_checkpoint(target)
        model, optimizer, settings = snapshot.rebuild(target, meta)
        if epochs is None and iterations is None:
            iterations = settings.pop("total_iterations")
        settings.pop("total_iterations", None)
        settings.update(options)
        trainer = cls(
            model,
            optimizer,
            x_train,
            t_train,
            x_test,
            t_test,
            epochs=epochs,
            iterations=iterations,
            **settings,
        )
        trainer.restore(target)
        return trainer
