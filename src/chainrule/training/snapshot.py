"""Snapshots: a trainer's whole state as checkpoint arrays + meta, and back, exactly.

A training checkpoint (``kind = "chainrule-training"``) holds ``model/<name>`` (parameters),
``buffers/<name>`` (batch-norm running statistics), ``optim/<slot>/<name>`` (optimizer state)
arrays, and a meta with the model config, the model's engine (``"layers"``/``"autograd"``),
the optimizer's name, hyperparameters and step, the trainer's settings, the position (steps
done, the batch order's generator state and the batches used of the current epoch, other
generators such as dropout's), the history and the last result. Restoring checks all of it
against the trainer, its model and optimizer (names, shapes, dtypes, positions) before anything
changes, and raises :class:`~chainrule.serialization.CheckpointError` for every mismatch.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.backend import device_of, get_array_module, to_device
from chainrule.optim.schedules import make_schedule
from chainrule.serialization import CheckpointError, load_checkpoint
from chainrule.training.batching import BatchSampler, decode_rng, encode_rng
from chainrule.training.history import HISTORY_KEYS, checked_history
from chainrule.training.protocol import model_buffers, model_engine

__all__ = ["CHECKPOINT_KIND", "CHECKPOINT_VERSION", "load_model_state", "restore", "state"]

CHECKPOINT_KIND = "chainrule-training"
CHECKPOINT_VERSION = 1
# What a corrupted or crafted meta can raise while it is read; all become CheckpointError.
META_ERRORS = (ValueError, KeyError, TypeError, AttributeError, IndexError, OverflowError)


def _check_array(kind: str, key: str, saved: Any, array: Any) -> None:
    if not isinstance(array, get_array_module(array).ndarray):
        raise ValueError(f"{kind} {key!r} of the model is not an array")
    if saved.shape != array.shape:
        raise ValueError(
            f"{kind} {key!r}: the checkpoint has shape {saved.shape} but the model has "
            f"shape {array.shape}"
        )
    if saved.dtype != array.dtype:
        raise ValueError(
            f"{kind} {key!r}: the checkpoint has dtype {saved.dtype} but the model has "
            f"{array.dtype} (values are never cast silently)"
        )


def _copy_into(kind: str, current: Mapping[str, Any], saved: Mapping[str, np.ndarray]) -> None:
    """Check names, shapes and dtypes, then copy ``saved`` into ``current``'s arrays in place."""
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
        _check_array(kind, key, saved[key], array)
    # Only after every check, so a mismatch leaves the model untouched. In place: the layers
    # hold references to these arrays.
    for key, array in current.items():
        array[...] = to_device(saved[key], device_of(array))  # the file's arrays are on the host


def load_model_state(model: Any, arrays: Mapping[str, np.ndarray]) -> None:
    """Copy ``model/<name>`` and ``buffers/<name>`` arrays of a checkpoint into ``model``.

    Raises:
        ValueError: a parameter or buffer is missing on either side, or shapes or dtypes
            differ (the message names the parameter and both). The model is unchanged then.
    """
    params = {k[len("model/") :]: v for k, v in arrays.items() if k.startswith("model/")}
    buffers = {k[len("buffers/") :]: v for k, v in arrays.items() if k.startswith("buffers/")}
    _copy_into("parameter", model.params, params)
    _copy_into("buffer", model_buffers(model), buffers)


def _trainer_settings(trainer: Any) -> dict[str, Any]:
    return {
        "batch_size": trainer.batch_size,
        "train_size": trainer.train_size,
        "iters_per_epoch": trainer.iters_per_epoch,
        "total_iterations": trainer.total_iterations,
        "seed": trainer.seed,
        "base_lr": trainer.base_lr,
        "schedule": trainer.schedule.config() if trainer.schedule is not None else None,
        "eval_every": trainer.eval_every,
        "eval_subset": trainer.eval_subset,
        "eval_batch_size": trainer.eval_batch_size,
        "threads": trainer.threads,
    }


def state(trainer: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays and meta of a checkpoint of ``trainer``'s current state."""
    arrays: dict[str, np.ndarray] = {}
    for key, value in trainer.model.params.items():
        arrays[f"model/{key}"] = value
    for key, value in model_buffers(trainer.model).items():
        arrays[f"buffers/{key}"] = value
    opt = trainer.optimizer.state_dict()
    for key, value in opt["slots"].items():
        arrays[f"optim/{key}"] = value
    last = {k: v[-1] for k, v in trainer.history.items() if v}
    meta = {
        "kind": CHECKPOINT_KIND,
        "version": CHECKPOINT_VERSION,
        "engine": model_engine(trainer.model),
        "model": trainer.model_config,
        "dataset": trainer.dataset,
        "optimizer": {"name": opt["name"], "hyper": opt["hyper"], "step": opt["step"]},
        "trainer": _trainer_settings(trainer),
        "position": {
            "iteration": trainer.iteration,
            "epoch": trainer.epoch,
            **trainer.sampler.state(),
            "rngs": {name: encode_rng(rng) for name, rng in trainer.rngs.items()},
            "seconds": trainer.elapsed(),
            "train_seconds": trainer.train_seconds,
            "eval_seconds": trainer.eval_seconds,
        },
        "result": {
            key: last.get(key)
            for key in ("iteration", "test_loss", "test_acc", "train_loss", "train_acc")
        },
        "history": trainer.history,
        "extra": trainer.meta,
    }
    return arrays, meta


def check_kind(meta: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` unless ``meta`` is a training checkpoint this version reads."""
    if meta.get("kind") != CHECKPOINT_KIND:
        raise ValueError("not a training checkpoint (written by something else)")
    version = meta.get("version", 0)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"invalid training checkpoint version {version!r}")
    if version > CHECKPOINT_VERSION:
        raise ValueError(
            f"training checkpoint version {version} is newer than this chainrule "
            f"supports ({CHECKPOINT_VERSION})"
        )


def _number(section: str, key: str, value: Any, *, integer: bool = False) -> Any:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value < 0:
        what = "a non-negative integer" if integer else "a non-negative number"
        raise ValueError(f"{section} {key} is {value!r}, not {what}")
    return value


def _section(meta: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = meta[key]
    if not isinstance(value, Mapping):
        raise ValueError(f"its {key!r} entry is a {type(value).__name__}, not a mapping")
    return value


def _check_fit(trainer: Any, meta: Mapping[str, Any]) -> None:
    """Everything about ``meta`` that must agree with ``trainer`` (nothing changes)."""
    check_kind(meta)
    engine = meta.get("engine", "layers")
    if engine != model_engine(trainer.model):
        raise ValueError(
            f"it holds a {engine!r} model, this trainer's model is {model_engine(trainer.model)!r}"
        )
    settings, position = _section(meta, "trainer"), _section(meta, "position")
    if settings["train_size"] != trainer.train_size:
        raise ValueError(
            f"it was trained on {settings['train_size']} samples, this training set has "
            f"{trainer.train_size}"
        )
    if settings["batch_size"] != trainer.batch_size:
        raise ValueError(
            f"it was trained with batch size {settings['batch_size']}, not {trainer.batch_size}"
        )
    iteration = _number("position", "iteration", position["iteration"], integer=True)
    for key in ("seconds", "train_seconds", "eval_seconds"):
        _number("position", key, position[key])
    probe = BatchSampler(trainer.train_size, trainer.batch_size, 0)
    probe.restore(iteration, position["epoch_rng_state"], position["batches_done"])
    for name, saved in _section(position, "rngs").items():
        if name not in trainer.rngs:
            raise ValueError(f"it holds the state of generator {name!r}, unknown here")
        decode_rng(np.random.Generator(type(trainer.rngs[name].bit_generator)()), saved)
    make_schedule(settings["schedule"])
    float(settings["base_lr"])
    int(settings["seed"])


def _optimizer_state(trainer: Any, arrays: Mapping[str, Any], meta: Mapping[str, Any]) -> dict:
    opt = _section(meta, "optimizer")
    slots = {k[len("optim/") :]: v for k, v in arrays.items() if k.startswith("optim/")}
    mine = type(trainer.optimizer).__name__
    if opt["name"] != mine:
        raise ValueError(f"it was trained with {opt['name']}, not {mine}")
    params = trainer.model.params
    for slot_key, value in slots.items():
        key = slot_key.partition("/")[2]
        if key not in params:
            raise ValueError(f"optimizer state {slot_key!r} names no parameter of the model")
        _check_array("optimizer state", slot_key, value, params[key])
    return {**opt, "slots": slots}


def restore(trainer: Any, path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load the checkpoint at ``path`` into ``trainer`` (see :meth:`Trainer.restore`)."""
    target = Path(path)
    arrays, meta = load_checkpoint(target)
    try:
        _check_fit(trainer, meta)
        history = checked_history(meta["history"])
        opt_state = _optimizer_state(trainer, arrays, meta)
        load_model_state(trainer.model, arrays)
        trainer.optimizer.load_state_dict(opt_state)
    except META_ERRORS as exc:
        detail = f"missing entry {exc}" if isinstance(exc, KeyError) else str(exc)
        raise CheckpointError(f"cannot resume from {target}: {detail}") from exc
    _apply(trainer, meta, history)
    return meta


def _apply(trainer: Any, meta: Mapping[str, Any], history: dict[str, list[Any]]) -> None:
    """Set the trainer's settings and position from a checked ``meta``."""
    settings, position = meta["trainer"], meta["position"]
    trainer.base_lr = float(settings["base_lr"])
    trainer.schedule = make_schedule(settings["schedule"])
    trainer.seed = int(settings["seed"])
    trainer.iteration = int(position["iteration"])
    trainer.sampler.restore(
        trainer.iteration, position["epoch_rng_state"], position["batches_done"]
    )
    for name, saved in position["rngs"].items():
        decode_rng(trainer.rngs[name], saved)
    trainer.restore_clock(
        float(position["seconds"]),
        float(position["train_seconds"]),
        float(position["eval_seconds"]),
    )
    trainer.history = {key: history[key] for key in HISTORY_KEYS}
    if trainer.model_config is None:
        trainer.model_config = meta.get("model")
    if trainer.dataset is None:
        trainer.dataset = meta.get("dataset")


def _checked_settings(saved: Mapping[str, Any]) -> dict[str, Any]:
    """The Trainer settings of a checkpoint, each checked for its type and range."""
    settings = {}
    for key in ("batch_size", "eval_batch_size", "total_iterations", "seed"):
        settings[key] = _number("trainer", key, saved[key], integer=True)
        if key != "seed" and settings[key] == 0:
            raise ValueError(f"trainer {key} is 0, not a positive integer")
    every, subset = saved["eval_every"], saved["eval_subset"]
    if every != "epoch":
        settings["eval_every"] = _number("trainer", "eval_every", every, integer=True)
    if subset is not None:
        settings["eval_subset"] = _number("trainer", "eval_subset", subset, integer=True)
    settings.update(eval_every=every, eval_subset=subset, schedule=saved["schedule"])
    return settings


def rebuild(target: Path, meta: Mapping[str, Any]) -> tuple[Any, Any, dict[str, Any]]:
    """The model, optimizer and :class:`Trainer` settings a checkpoint's meta describes.

    Raises:
        CheckpointError: not a training checkpoint, no model config, or a meta that does not
            describe a model and optimizer this chainrule can build.
    """
    from chainrule.models import build_model
    from chainrule.optim import optimizer_from_name

    try:
        check_kind(meta)
        if not isinstance(meta.get("model"), Mapping) or not meta["model"]:
            raise ValueError("it records no model config, so the model cannot be rebuilt")
        model = build_model(meta["model"], rng=0)
        opt = meta["optimizer"]
        optimizer = optimizer_from_name(opt["name"], **opt["hyper"])
        saved = _section(meta, "trainer")
        threads = saved.get("threads")
        settings = _checked_settings(saved)
    except (*META_ERRORS, ImportError) as exc:
        detail = f"missing entry {exc}" if isinstance(exc, KeyError) else str(exc)
        raise CheckpointError(f"cannot resume from {target}: {detail}") from exc
    settings.update(
        threads=threads if isinstance(threads, int) and not isinstance(threads, bool) else "auto",
        model_config=meta["model"],
        dataset=meta.get("dataset"),
        meta=meta.get("extra") or {},
    )
    return model, optimizer, settings
