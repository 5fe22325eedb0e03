"""Datasets and checkpoints as the commands read them: every failure is a :class:`UserError`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chainrule.cli.budget import check_model_size
from chainrule.cli.choices import DATASETS, NUM_CLASSES
from chainrule.cli.common import UserError, check_input_file, first_line

#: Samples in the test set of each dataset (MNIST and Fashion-MNIST alike).
TEST_SAMPLES = 10_000
# The parts of a checkpoint's metadata the commands read, and what each must be.
_SECTIONS = ("model", "trainer", "position", "result", "optimizer", "history")


def load_data(name: str, data_dir: str | None, dtype: Any) -> Any:
    """``(x_train, t_train), (x_test, t_test)`` of a dataset, flattened and in [0, 1]."""
    from chainrule.datasets import DatasetError, load_fashion_mnist, load_mnist

    if data_dir is not None and not Path(data_dir).expanduser().is_dir():
        raise UserError(f"--data-dir {data_dir}: no such folder")
    loader = {"mnist": load_mnist, "fashion-mnist": load_fashion_mnist}.get(name)
    if loader is None:
        raise UserError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
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


def read_checkpoint(path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The arrays and metadata of a checkpoint file."""
    from chainrule.serialization import CheckpointError, load_checkpoint

    check_input_file("checkpoint", path)
    try:
        arrays, meta = load_checkpoint(path)
    except FileNotFoundError:
        raise UserError(f"checkpoint not found: {path}") from None
    except CheckpointError as exc:
        raise UserError(first_line(exc)) from None
    except OSError as exc:
        raise UserError(f"cannot read checkpoint {path}: {exc}") from None
    return arrays, checked_meta(path, meta)


def checked_meta(path: str, meta: Any) -> dict[str, Any]:
    """A checkpoint's metadata with the fields the commands read checked for their types.

    The sections are JSON objects (absent ones become ``{}``), the dataset a known name,
    the batch sizes positive integers, ``iteration`` an integer and ``test_acc`` a
    number; anything else names the file and the field.
    """
    if not isinstance(meta, dict):
        raise UserError(f"checkpoint {path}: its metadata is not a JSON object")
    checked = dict(meta)
    for key in _SECTIONS:
        value = meta.get(key)
        if value is not None and not isinstance(value, dict):
            raise UserError(f"checkpoint {path}: {key} is {type(value).__name__}, expected a dict")
        checked[key] = value or {}
    dataset = meta.get("dataset")
    if dataset is not None and (not isinstance(dataset, str) or dataset not in DATASETS):
        raise UserError(f"checkpoint {path} was trained on {dataset!r}, not a known dataset")
    _check_int(path, "trainer.batch_size", checked["trainer"].get("batch_size"), 1)
    _check_int(path, "trainer.eval_batch_size", checked["trainer"].get("eval_batch_size"), 1)
    _check_int(path, "position.iteration", checked["position"].get("iteration"), 0)
    acc = checked["result"].get("test_acc")
    if acc is not None and (isinstance(acc, bool) or not isinstance(acc, int | float)):
        raise UserError(f"checkpoint {path}: result.test_acc is {acc!r}, expected a number")
    return checked


def _check_int(path: str, name: str, value: Any, least: int) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        expected = "a positive integer" if least == 1 else "a non-negative integer"
        raise UserError(f"checkpoint {path}: {name} is {value!r}, expected {expected}")


def model_from_checkpoint(
    path: str, arrays: dict[str, Any], meta: dict[str, Any], batch_size: int = 1
) -> tuple[Any, dict[str, Any]]:
    """Rebuild the model a checkpoint describes (within the memory budget); load its weights."""
    from chainrule.models import as_config, build_model
    from chainrule.training import load_model_state

    config = meta.get("model")
    if not isinstance(config, dict) or not config:
        raise UserError(
            f"checkpoint {path} records no model config, so its model cannot be rebuilt (a "
            "Trainer given model_config=models.model_config(...) records one)"
        )
    try:
        config = as_config(config)
        check_model_size(config, batch_size, f"the model of checkpoint {path}")
        model = build_model(config, rng=0)
        load_model_state(model, arrays)
    except (ValueError, TypeError, ImportError) as exc:
        raise UserError(f"checkpoint {path}: {first_line(exc)}") from None
    return model, config


def check_classes(path: str, config: Any, dataset: str | None) -> None:
    """The model of checkpoint ``path`` has one output per class of ``dataset``."""
    if config["output_size"] != NUM_CLASSES:
        raise UserError(
            f"checkpoint {path}: the model has {config['output_size']} outputs, but {dataset} "
            f"has {NUM_CLASSES} classes"
        )
