"""Training loop: mini-batches, evaluation, history, learning-rate schedules, checkpoints.

The :class:`Trainer` drives any model with the book's interface (``params``,
``gradient(x, t)`` returning a dict of gradients keyed like ``params``, ``predict(x)``) and
any :mod:`chainrule.optim` optimizer::

    trainer = Trainer(net, SGD(lr=0.1), x_train, t_train, x_test, t_test, iterations=10_000)
    history = trainer.fit()

Batches. Every epoch draws a fresh permutation of the training set from
``np.random.default_rng(seed)`` and cuts it into ``floor(N / batch_size)`` mini-batches of
exactly ``batch_size`` samples, without replacement; the ``N % batch_size`` samples left at the
end of a permutation are skipped *for that epoch only* (each epoch's permutation differs), so
every step averages the same number of samples. An epoch is therefore
``iters_per_epoch = N // batch_size`` steps (600 for MNIST with batch 100), and
``iterations=10_000`` is 16.67 epochs.

Evaluation. After every epoch, and after the last step when the run ends mid-epoch (or every
``eval_every`` steps when that is an int), the model is evaluated in inference mode on the
full test set and on the training set (all of it, or a fixed subset of ``eval_subset`` samples
chosen independently of the seed), in chunks of ``eval_batch_size`` rows. Loss is the mean
cross-entropy of the softmax of ``predict(x)`` (without any weight-decay term); accuracy the
fraction of argmax hits. Each evaluation appends one entry to every list of :attr:`history`:
``epoch`` (``iteration / iters_per_epoch``; 16.67 for a partial last epoch), ``iteration``,
``train_loss``, ``train_acc``, ``test_loss``, ``test_acc``, ``batch_loss`` (mean mini-batch loss
since the previous entry, in training mode), ``lr`` (at the last step) and ``seconds`` (time
since training started, summed over resumed runs).

Determinism. The same model weights, optimizer, data and ``seed`` give bit-identical weights.
A run resumed from a checkpoint continues exactly as if it had never stopped: the checkpoint
holds the parameters, buffers, optimizer state, the shuffling generator's state at the start
of the current epoch and the position in its permutation.

Divergence. The loss and every gradient are checked after each step's backward pass and before
the update; on a NaN or infinity :class:`TrainingDiverged` is raised naming the iteration and
the culprit, the parameters keep their values from before that step, and no checkpoint is
written (the last good one stays). NumPy's floating-point warnings are silenced inside a step
and during evaluation because the trainer checks the results itself.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

from chainrule.backend import device_of, get_array_module, to_device, to_numpy
from chainrule.optim.schedules import CosineSchedule, Schedule, StepSchedule, make_schedule
from chainrule.serialization import CheckpointError, atomic_write, load_checkpoint, save_checkpoint

__all__ = [
    "HISTORY_KEYS",
    "CosineSchedule",
    "Schedule",
    "StepSchedule",
    "Trainer",
    "TrainingDiverged",
    "evaluate",
    "load_model_state",
    "make_schedule",
    "predict_scores",
    "save_history",
]

CHECKPOINT_KIND = "chainrule-training"
CHECKPOINT_VERSION = 1
HISTORY_KEYS = (
    "epoch",
    "iteration",
    "train_loss",
    "train_acc",
    "test_loss",
    "test_acc",
    "batch_loss",
    "lr",
    "seconds",
)
# The fixed training subset for evaluation does not depend on the run's seed, so runs with
# different seeds report numbers on the same samples.
_SUBSET_SEED = 20_240_601


class TrainingDiverged(RuntimeError):
    """The loss or a gradient became NaN or infinite; training stopped before the update.

    Attributes: ``iteration`` (1-based number of the step that failed), ``epoch`` (1-based),
    ``culprit`` (``"loss"`` or the parameter's name), ``checkpoint`` (the last good checkpoint
    file, or None).
    """

    def __init__(
        self, message: str, *, iteration: int, epoch: int, culprit: str, checkpoint: Path | None
    ) -> None:
        super().__init__(message)
        self.iteration = iteration
        self.epoch = epoch
        self.culprit = culprit
        self.checkpoint = checkpoint


# --------------------------------------------------------------------------------------------
# inference and evaluation
# --------------------------------------------------------------------------------------------


def _takes_train_flag(model: Any) -> bool:
    try:
        return "train_flg" in inspect.signature(model.predict).parameters
    except (TypeError, ValueError):
        return False


def model_device(model: Any) -> str:
    """Where ``model``'s parameters are: ``"cpu"`` or ``"cuda"`` (``params`` dict or ``nn``)."""
    params = getattr(model, "params", None)
    if isinstance(params, dict) and params:
        return device_of(next(iter(params.values())))
    parameters = getattr(model, "parameters", None)
    if callable(parameters):
        for p in parameters():
            return device_of(p.data)
    return "cpu"


def predict_scores(model: Any, x: np.ndarray) -> np.ndarray:
    """``model.predict(x)`` in inference mode (dropout off, batch norm on running statistics).

    ``x`` may be on the host whatever the model's device; the scores come back as NumPy."""
    from chainrule.config import eval_mode, no_grad

    x = to_device(x, model_device(model))
    with eval_mode(), no_grad():
        if _takes_train_flag(model):
            return to_numpy(model.predict(x, train_flg=False))
        return to_numpy(model.predict(x))


def _labels(t: np.ndarray) -> np.ndarray:
    """Class indices from labels ``(N,)`` or one-hot rows ``(N, C)``."""
    t = to_numpy(t)  # labels may be on the GPU: the comparison with the scores is on the host
    return t.argmax(axis=1) if t.ndim == 2 else t


def evaluate(
    model: Any, x: np.ndarray, t: np.ndarray, *, batch_size: int = 1000
) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on ``(x, t)``, in chunks of ``batch_size``.

    Runs in inference mode. The loss is computed from a stable log-softmax of the scores, per
    sample, and summed in float64; the accuracy is an exact count divided by ``N``. The same
    weights, data and ``batch_size`` always give the same two numbers.
    """
    labels = _labels(t)
    n = len(x)
    if n == 0:
        raise ValueError("evaluate: empty data set")
    if len(labels) != n:
        raise ValueError(f"evaluate: {n} samples but {len(labels)} labels")
    from chainrule.config import eval_mode, no_grad

    train_flag = _takes_train_flag(model)
    device = model_device(model)  # batches go there; the scores come back to the host
    loss_sum = 0.0
    correct = 0
    with eval_mode(), no_grad(), np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for start in range(0, n, batch_size):
            xb, tb = x[start : start + batch_size], labels[start : start + batch_size]
            xb = to_device(xb, device)
            scores = model.predict(xb, train_flg=False) if train_flag else model.predict(xb)
            scores = to_numpy(scores).reshape(len(xb), -1)
            correct += int(np.count_nonzero(scores.argmax(axis=1) == tb))
            # -log softmax(s)[t] = log(sum(exp(s - max))) - (s[t] - max)
            shifted = scores - scores.max(axis=1, keepdims=True)
            lse = np.log(np.exp(shifted).sum(axis=1))
            picked = shifted[np.arange(len(tb)), tb]
            loss_sum += float(np.sum(lse - picked, dtype=np.float64))
    return loss_sum / n, correct / n


# --------------------------------------------------------------------------------------------
# checkpoint helpers
# --------------------------------------------------------------------------------------------


def _encode_rng(rng: np.random.Generator) -> dict[str, Any]:
    """The bit generator's state as JSON: integers as decimal strings (PCG64's are 128-bit)."""

    def encode(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: encode(v) for k, v in value.items()}
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            return str(int(value))
        raise ValueError(f"cannot store the state of {type(rng.bit_generator).__name__} as JSON")

    state = rng.bit_generator.state
    return {
        "bit_generator": state["bit_generator"],
        "state": encode({k: v for k, v in state.items() if k != "bit_generator"}),
    }


def _decode_rng(rng: np.random.Generator, data: Mapping[str, Any]) -> None:
    """Set ``rng``'s state from :func:`_encode_rng`'s output (same bit generator class)."""

    def decode(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: decode(v) for k, v in value.items()}
        return int(value)

    kind = type(rng.bit_generator).__name__
    if data.get("bit_generator") != kind:
        raise ValueError(f"generator state is for {data.get('bit_generator')!r}, not {kind}")
    rng.bit_generator.state = {"bit_generator": kind, **decode(dict(data["state"]))}


def _model_buffers(model: Any) -> dict[str, np.ndarray]:
    buffers = getattr(model, "buffers", None) or {}
    return {k: v for k, v in buffers.items() if v is not None}


def _copy_into(kind: str, current: Mapping[str, Any], saved: Mapping[str, np.ndarray]) -> None:
    """Check names and shapes, then copy ``saved`` into ``current``'s arrays in place."""
    missing = [k for k in current if k not in saved]
    extra = [k for k in saved if k not in current]
    if missing:
        raise ValueError(
            f"{kind} {missing[0]!r} of the model is not in the checkpoint "
            f"(it holds {', '.join(saved) or 'none'})"
        )
    if extra:
        raise ValueError(
            f"the checkpoint has {kind} {extra[0]!r} that the model does not have "
            f"(the model has {', '.join(current) or 'none'})"
        )
    for key, array in current.items():
        if not isinstance(array, get_array_module(array).ndarray):
            raise ValueError(f"{kind} {key!r} of the model is not an array")
        if saved[key].shape != array.shape:
            raise ValueError(
                f"{kind} {key!r}: the checkpoint has shape {saved[key].shape} but the model has "
                f"shape {array.shape}"
            )
    # Only after every check, so a mismatch leaves the model untouched. In place: the layers
    # hold references to these arrays.
    for key, array in current.items():
        array[...] = to_device(saved[key], device_of(array))  # the file's arrays are on the host


def load_model_state(model: Any, arrays: Mapping[str, np.ndarray]) -> None:
    """Copy ``model/<name>`` and ``buffers/<name>`` arrays of a checkpoint into ``model``.

    Raises:
        ValueError: a parameter or buffer is missing on either side, or shapes differ (the
            message names the parameter and both shapes). The model is unchanged then.
    """
    params = {k[len("model/") :]: v for k, v in arrays.items() if k.startswith("model/")}
    buffers = {k[len("buffers/") :]: v for k, v in arrays.items() if k.startswith("buffers/")}
    _copy_into("parameter", model.params, params)
    _copy_into("buffer", _model_buffers(model), buffers)


def save_history(history: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``history`` as JSON (one list per key), atomically."""
    target = Path(path)
    data = json.dumps(dict(history), indent=1, allow_nan=False).encode("utf-8") + b"\n"
    with atomic_write(target) as fh:
        fh.write(data)
    return target


# --------------------------------------------------------------------------------------------
# the trainer
# --------------------------------------------------------------------------------------------


def _all_finite(arrays: list[Any]) -> bool:
    xp = get_array_module(*arrays)
    if xp is np:
        return all(_finite(a) for a in arrays)
    # On a GPU, reading a result back waits for the device: one wait for all the arrays.
    return bool(xp.stack([xp.isfinite(a).all() for a in arrays]).all())


def _finite(array: np.ndarray) -> bool:
    # Measured: isfinite + all (SIMD) beats a float64 sum by 4x on a 784x256 float32 gradient,
    # about 0.06 ms, so checking every gradient every step costs ~1% of an MLP step.
    return bool(np.isfinite(array).all())


def _describe_bad(array: np.ndarray) -> str:
    nan = int(np.count_nonzero(np.isnan(array)))
    inf = int(np.count_nonzero(np.isinf(array)))
    return f"{nan} NaN and {inf} infinite of {array.size} values"


def _check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"Trainer: {name} must be a positive integer, got {value!r}")
    return int(value)


class _Progress:
    """Output: a tqdm bar over all iterations and/or one printed line per evaluation."""

    def __init__(self, mode: Any, stream: IO[str] | None) -> None:
        if mode not in (True, False, "auto", "bar", "lines", "none"):
            raise ValueError(
                f"Trainer: progress must be 'auto', 'bar', 'lines', 'none', True or False, "
                f"got {mode!r}"
            )
        self.stream = stream if stream is not None else sys.stdout
        self.lines = mode not in (False, "none")
        want_bar = mode in (True, "bar") or (
            mode == "auto" and hasattr(self.stream, "isatty") and self.stream.isatty()
        )
        self.tqdm = None
        if want_bar:
            try:
                from tqdm import tqdm
            except ImportError:  # optional dependency: fall back to lines
                tqdm = None
            self.tqdm = tqdm
        self.bar: Any = None

    def start(self, total: int, initial: int) -> None:
        if self.tqdm is not None:
            self.bar = self.tqdm(
                total=total,
                initial=initial,
                unit="it",
                file=self.stream,
                dynamic_ncols=True,
                leave=False,
                mininterval=0.25,
            )

    def step(self, loss: float, epoch: int) -> None:
        if self.bar is not None:
            self.bar.update(1)
            if self.bar.n % 20 == 0:
                self.bar.set_postfix_str(f"epoch {epoch} loss {loss:.4f}", refresh=False)

    def line(self, text: str) -> None:
        if not self.lines:
            return
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class Trainer:
    """Train ``model`` with ``optimizer`` on ``(x_train, t_train)``, evaluating on both sets.

    Args:
        model: ``params`` (dict of arrays, updated in place), ``gradient(x, t)`` -> dict of
            gradients, ``predict(x[, train_flg])``; optionally a ``buffers`` dict (batch-norm
            running statistics, checkpointed) and a ``last_layer.loss`` (the mini-batch loss
            of the latest ``gradient`` call; otherwise ``loss(x, t)`` is called for it).
        optimizer: a :class:`chainrule.optim.Optimizer`; its ``lr`` at construction is the base
            learning rate that ``schedule`` scales.
        x_train, t_train, x_test, t_test: arrays; labels as class indices or one-hot rows.
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
        progress: ``"auto"`` (a tqdm bar when tqdm is installed and ``stream`` is a terminal,
            plus one line per evaluation), ``"bar"``/True, ``"lines"``, ``"none"``/False.
        stream: where progress goes (default ``sys.stdout``).
        checkpoint: a file written (atomically) after every evaluation and at the end.
        on_epoch: ``on_epoch(trainer, record)`` after every evaluation (``record``: the new
            history entry as a dict); returning ``False`` stops training after it.
        on_step: ``on_step(trainer, iteration, grads)`` after every step's update, before any
            evaluation (the layers still hold that step's forward pass; ``grads`` are the
            step's gradients); its return value is ignored. For example
            :meth:`chainrule.diagnostics.Diagnostics.on_step`.
        model_config, dataset: stored in checkpoints so that a model can be rebuilt and
            evaluated from the file alone (see :mod:`chainrule.models`).
        rngs: more generators to checkpoint and restore by name (for example the one a
            model's dropout draws from). A ``Generator`` found as ``model.rng`` or
            ``model._rng`` is included automatically as ``"model"``.
        meta: more JSON-able data to store in checkpoints, under ``"extra"``.
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
    ) -> None:
        self.model = model
        self.optimizer = optimizer
        if len(x_train) != len(t_train):
            raise ValueError(f"Trainer: {len(x_train)} training samples but {len(t_train)} labels")
        if len(x_test) != len(t_test):
            raise ValueError(f"Trainer: {len(x_test)} test samples but {len(t_test)} labels")
        if len(x_test) == 0:
            raise ValueError("Trainer: the test set is empty")
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

        if eval_every != "epoch":
            eval_every = _check_positive_int("eval_every", eval_every)
        self.eval_every = eval_every
        self.eval_batch_size = _check_positive_int("eval_batch_size", eval_batch_size)
        if eval_subset is not None:
            eval_subset = _check_positive_int("eval_subset", eval_subset)
        self.eval_subset = eval_subset
        if eval_subset is not None and eval_subset < self.train_size:
            pick = np.random.default_rng(_SUBSET_SEED).choice(
                self.train_size, eval_subset, replace=False
            )
            pick.sort()
            self.x_eval, self.t_eval = x_train[pick], t_train[pick]
        else:
            self.x_eval, self.t_eval = x_train, t_train

        self.schedule = make_schedule(schedule)
        self.base_lr = float(optimizer.lr)
        self.seed = int(seed)
        self.rng = np.random.default_rng(self.seed)
        self.rngs: dict[str, np.random.Generator] = {}
        for attr in ("rng", "_rng"):
            found = getattr(model, attr, None)
            if isinstance(found, np.random.Generator):
                self.rngs["model"] = found
                break
        self.rngs.update(rngs or {})

        self._progress = _Progress(progress, stream)
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self.on_epoch = on_epoch
        self.on_step = on_step
        self.model_config = dict(model_config) if model_config is not None else None
        self.dataset = dataset
        self.meta = dict(meta or {})
        self._run_start: float | None = None

        # Position: completed steps, the generator state before this epoch's permutation was
        # drawn, and the number of batches of that permutation already used.
        self.iteration = 0
        self._epoch_rng_state: dict[str, Any] | None = None
        self._perm: np.ndarray | None = None
        self._position = 0
        self.history: dict[str, list[Any]] = {key: [] for key in HISTORY_KEYS}
        self.train_seconds = 0.0  # time in steps (forward, backward, update)
        self.eval_seconds = 0.0
        self._elapsed_before = 0.0  # seconds of earlier runs this one resumes
        self._last_saved: Path | None = None
        self._batch_loss_sum = 0.0
        self._batch_loss_count = 0

    # ---- the length of the run

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

    @property
    def last_checkpoint(self) -> Path | None:
        """The file this trainer last wrote a checkpoint to in this process, if any."""
        return self._last_saved

    @property
    def epoch(self) -> float:
        """Epochs completed so far, fractional within an epoch."""
        return self.iteration / self.iters_per_epoch

    # ---- training

    def _mini_batch_loss(self, xb: np.ndarray, tb: np.ndarray) -> float:
        last = getattr(self.model, "last_layer", None)
        loss = getattr(last, "loss", None)
        if loss is None:
            loss = self.model.loss(xb, tb)
        return float(loss)

    def _diverged(
        self, culprit: str, detail: str, *, after_update: bool = False
    ) -> TrainingDiverged:
        # Before an update the failing step is the next one; after it, the one just taken.
        step = self.iteration if after_update else self.iteration + 1
        epoch = (step - 1) // self.iters_per_epoch + 1
        if culprit == "loss":
            what = "the loss"
        elif after_update:
            what = f"parameter {culprit!r} after the update"
        else:
            what = f"the gradient of {culprit!r}"
        if after_update:
            kept = "; the parameters hold the non-finite values of this step"
        else:
            kept = "; the parameters keep their values from before this step"
        if self._last_saved is not None:
            kept += f"; the last good checkpoint {self._last_saved} is unchanged"
        elif self.checkpoint is not None:
            kept += f"; nothing was written to {self.checkpoint}"
        lr = float(self.optimizer.lr)
        return TrainingDiverged(
            f"training diverged at iteration {step} (epoch {epoch}): {what} is not finite "
            f"({detail}) with lr {lr:g}{kept}. Try a smaller learning rate.",
            iteration=step,
            epoch=epoch,
            culprit=culprit,
            checkpoint=self._last_saved,
        )

    def fit(self) -> dict[str, list[Any]]:
        """Train until ``total_iterations`` steps are done; return :attr:`history`.

        Raises:
            TrainingDiverged: a non-finite loss or gradient (nothing is updated or saved).
        """
        model, optimizer = self.model, self.optimizer
        params = model.params
        n, batch = self.train_size, self.batch_size
        # The training set goes where the model is, once; batches are gathered there into
        # reused buffers (take writes into them: no new arrays per step).
        device = model_device(model)
        x_train, t_train = to_device(self.x_train, device), to_device(self.t_train, device)
        xp = get_array_module(x_train)
        xb = xp.empty((batch, *x_train.shape[1:]), dtype=x_train.dtype)
        tb = xp.empty((batch, *t_train.shape[1:]), dtype=t_train.dtype)
        self._progress.start(self.total_iterations, self.iteration)
        start = time.perf_counter()
        self._run_start = start
        try:
            while self.iteration < self.total_iterations:
                t0 = time.perf_counter()
                if self._perm is None or self._position == self.iters_per_epoch:
                    self._epoch_rng_state = _encode_rng(self.rng)
                    self._perm = self.rng.permutation(n)
                    self._position = 0
                idx = self._perm[self._position * batch : (self._position + 1) * batch]
                if xp is not np:
                    idx = xp.asarray(idx)  # the order is drawn on the host, as on the CPU
                xp.take(x_train, idx, axis=0, out=xb)
                xp.take(t_train, idx, axis=0, out=tb)
                if self.schedule is not None:
                    optimizer.lr = self.base_lr * self.schedule.factor(
                        self.iteration, self.iters_per_epoch, self.total_iterations
                    )
                with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                    grads = model.gradient(xb, tb)
                    loss = self._mini_batch_loss(xb, tb)
                if not math.isfinite(loss):
                    raise self._diverged("loss", f"loss = {loss}")
                if not _all_finite(list(grads.values())):
                    key, grad = next((k, g) for k, g in grads.items() if not _finite(g))
                    raise self._diverged(key, _describe_bad(grad))
                optimizer.update(params, grads)
                self.iteration += 1
                self._position += 1
                self._batch_loss_sum += loss
                self._batch_loss_count += 1
                self.train_seconds += time.perf_counter() - t0
                self._progress.step(loss, self.iteration // self.iters_per_epoch + 1)
                if self.on_step is not None:
                    self.on_step(self, self.iteration, grads)
                del grads  # so the next step's backward is the only one holding gradients

                if self._due_for_evaluation():
                    record = self._evaluate_and_record()
                    if self.checkpoint is not None:
                        self.save(self.checkpoint)
                    if self.on_epoch is not None and self.on_epoch(self, record) is False:
                        break
        finally:
            self._progress.close()
            self._elapsed_before += time.perf_counter() - start
            self._run_start = None
        return self.history

    def _due_for_evaluation(self) -> bool:
        if self.iteration == self.total_iterations:
            return True
        if self.eval_every == "epoch":
            return self._position == self.iters_per_epoch
        return self.iteration % self.eval_every == 0

    def elapsed(self) -> float:
        """Seconds spent in :meth:`fit` so far, summed over resumed runs."""
        running = self._run_start
        now = time.perf_counter() - running if running is not None else 0.0
        return self._elapsed_before + now

    def _evaluate_and_record(self) -> dict[str, Any]:
        self._check_params_finite()
        t0 = time.perf_counter()
        train_loss, train_acc = evaluate(
            self.model, self.x_eval, self.t_eval, batch_size=self.eval_batch_size
        )
        test_loss, test_acc = evaluate(
            self.model, self.x_test, self.t_test, batch_size=self.eval_batch_size
        )
        self.eval_seconds += time.perf_counter() - t0
        if not (math.isfinite(train_loss) and math.isfinite(test_loss)):
            raise self._diverged("loss", "the evaluation loss overflowed")
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
        for key in HISTORY_KEYS:
            self.history[key].append(record[key])
        self._progress.line(self.format_record(record))
        return record

    def _check_params_finite(self) -> None:
        # The gradients were finite, but an update can still overflow (float32 tops out at
        # 3.4e38); catch that before evaluating or saving.
        for key, value in self.model.params.items():
            if not _finite(value):
                raise self._diverged(key, _describe_bad(value), after_update=True)

    def format_record(self, record: Mapping[str, Any]) -> str:
        """One line per evaluation, as printed during training."""
        epoch = record["epoch"]
        epoch_text = f"{epoch:g}" if float(epoch).is_integer() else f"{epoch:.2f}"
        width = len(str(self.total_iterations))
        return (
            f"epoch {epoch_text:>5}  iter {record['iteration']:>{width}}  "
            f"batch loss {record['batch_loss']:.4f} | "
            f"train loss {record['train_loss']:.4f} acc {100 * record['train_acc']:6.2f}% | "
            f"test loss {record['test_loss']:.4f} acc {100 * record['test_acc']:6.2f}% | "
            f"lr {record['lr']:.3g} | {record['seconds']:.1f}s"
        )

    # ---- checkpoints

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """The arrays and meta of a checkpoint of the current state."""
        arrays: dict[str, np.ndarray] = {}
        for key, value in self.model.params.items():
            arrays[f"model/{key}"] = value
        for key, value in _model_buffers(self.model).items():
            arrays[f"buffers/{key}"] = value
        opt = self.optimizer.state_dict()
        for key, value in opt["slots"].items():
            arrays[f"optim/{key}"] = value
        history_last = {k: v[-1] for k, v in self.history.items() if v}
        meta = {
            "kind": CHECKPOINT_KIND,
            "version": CHECKPOINT_VERSION,
            "model": self.model_config,
            "dataset": self.dataset,
            "optimizer": {"name": opt["name"], "hyper": opt["hyper"], "step": opt["step"]},
            "trainer": {
                "batch_size": self.batch_size,
                "train_size": self.train_size,
                "iters_per_epoch": self.iters_per_epoch,
                "total_iterations": self.total_iterations,
                "seed": self.seed,
                "base_lr": self.base_lr,
                "schedule": self.schedule.config() if self.schedule is not None else None,
                "eval_every": self.eval_every,
                "eval_subset": self.eval_subset,
                "eval_batch_size": self.eval_batch_size,
            },
            "position": {
                "iteration": self.iteration,
                "epoch": self.epoch,
                "epoch_rng_state": self._epoch_rng_state,
                "batches_done": self._position if self._perm is not None else 0,
                "rngs": {name: _encode_rng(rng) for name, rng in self.rngs.items()},
                "seconds": self.elapsed(),
                "train_seconds": self.train_seconds,
                "eval_seconds": self.eval_seconds,
            },
            "result": {
                "iteration": history_last.get("iteration"),
                "test_loss": history_last.get("test_loss"),
                "test_acc": history_last.get("test_acc"),
                "train_loss": history_last.get("train_loss"),
                "train_acc": history_last.get("train_acc"),
            },
            "history": self.history,
            "extra": self.meta,
        }
        return arrays, meta

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write a checkpoint of the current state to ``path`` (atomically; finite values only)."""
        self._check_params_finite()
        arrays, meta = self.state()
        target = save_checkpoint(path, arrays, meta)
        self._last_saved = target
        return target

    def restore(self, path: str | os.PathLike[str]) -> dict[str, Any]:
        """Load a checkpoint written by :meth:`save` into this trainer, its model and optimizer.

        The trainer must have been built with a model of the same shapes, the same optimizer
        class, the same training set size and batch size. Afterwards :meth:`fit` continues the
        run; ``total_iterations`` stays what this trainer was built with (see
        :meth:`set_length`). Returns the checkpoint's meta.

        Raises:
            FileNotFoundError: no such file.
            CheckpointError: the file is corrupted, not a training checkpoint, or does not fit
                (the message names the file and, for a shape mismatch, the parameter and both
                shapes). Nothing is changed then.
        """
        target = Path(path)
        arrays, meta = load_checkpoint(target)
        try:
            self._restore(arrays, meta)
        except (ValueError, KeyError, TypeError) as exc:
            detail = f"missing entry {exc}" if isinstance(exc, KeyError) else str(exc)
            raise CheckpointError(f"cannot resume from {target}: {detail}") from exc
        self._last_saved = None
        return meta

    def _restore(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        if meta.get("kind") != CHECKPOINT_KIND:
            raise ValueError("not a training checkpoint (written by something else)")
        if meta.get("version", 0) > CHECKPOINT_VERSION:
            raise ValueError(
                f"training checkpoint version {meta['version']} is newer than this chainrule "
                f"supports ({CHECKPOINT_VERSION})"
            )
        trainer, position = meta["trainer"], meta["position"]
        if trainer["train_size"] != self.train_size:
            raise ValueError(
                f"it was trained on {trainer['train_size']} samples, this training set has "
                f"{self.train_size}"
            )
        if trainer["batch_size"] != self.batch_size:
            raise ValueError(
                f"it was trained with batch size {trainer['batch_size']}, not {self.batch_size}"
            )
        missing_rngs = [name for name in position["rngs"] if name not in self.rngs]
        if missing_rngs:
            raise ValueError(f"it holds the state of generator {missing_rngs[0]!r}, unknown here")

        # Check everything that can fail before changing anything.
        opt_state = {
            **meta["optimizer"],
            "slots": {k[len("optim/") :]: v for k, v in arrays.items() if k.startswith("optim/")},
        }
        mine = type(self.optimizer).__name__
        if opt_state["name"] != mine:
            raise ValueError(f"it was trained with {opt_state['name']}, not {mine}")
        for slot_key, value in opt_state["slots"].items():
            key = slot_key.partition("/")[2]
            param = self.model.params.get(key)
            if param is not None and value.shape != param.shape:
                raise ValueError(
                    f"optimizer state {slot_key!r} has shape {value.shape} but parameter "
                    f"{key!r} has shape {param.shape}"
                )
        load_model_state(self.model, arrays)
        self.optimizer.load_state_dict(opt_state)

        self.base_lr = float(trainer["base_lr"])
        self.schedule = make_schedule(trainer["schedule"])
        self.seed = int(trainer["seed"])
        self.iteration = int(position["iteration"])
        if position["epoch_rng_state"] is None:
            self._perm, self._position, self._epoch_rng_state = None, 0, None
        else:
            _decode_rng(self.rng, position["epoch_rng_state"])
            self._epoch_rng_state = position["epoch_rng_state"]
            self._perm = self.rng.permutation(self.train_size)
            self._position = int(position["batches_done"])
        for name, state in position["rngs"].items():
            _decode_rng(self.rngs[name], state)
        self._elapsed_before = float(position["seconds"])
        self.train_seconds = float(position["train_seconds"])
        self.eval_seconds = float(position["eval_seconds"])
        self.history = {key: list(meta["history"].get(key, [])) for key in HISTORY_KEYS}
        self._batch_loss_sum, self._batch_loss_count = 0.0, 0
        if self.model_config is None:
            self.model_config = meta.get("model")
        if self.dataset is None:
            self.dataset = meta.get("dataset")

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
        from chainrule.models import build_model
        from chainrule.optim import optimizer_from_name

        target = Path(path)
        _, meta = load_checkpoint(target)
        try:
            if meta.get("kind") != CHECKPOINT_KIND:
                raise ValueError("not a training checkpoint (written by something else)")
            if not meta.get("model"):
                raise ValueError("it records no model config, so the model cannot be rebuilt")
            model = build_model(meta["model"], rng=0)
            opt = meta["optimizer"]
            optimizer = optimizer_from_name(opt["name"], **opt["hyper"])
            trainer_meta = meta["trainer"]
        except (ValueError, KeyError, TypeError) as exc:
            detail = f"missing entry {exc}" if isinstance(exc, KeyError) else str(exc)
            raise CheckpointError(f"cannot resume from {target}: {detail}") from exc
        if epochs is None and iterations is None:
            iterations = int(trainer_meta["total_iterations"])
        settings = {
            "batch_size": trainer_meta["batch_size"],
            "seed": trainer_meta["seed"],
            "schedule": trainer_meta["schedule"],
            "eval_every": trainer_meta["eval_every"],
            "eval_subset": trainer_meta["eval_subset"],
            "eval_batch_size": trainer_meta["eval_batch_size"],
            "model_config": meta["model"],
            "dataset": meta.get("dataset"),
            "meta": meta.get("extra") or {},
        }
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
