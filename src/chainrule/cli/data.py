"""Datasets and checkpoints as the commands read them: every failure is a :class:`UserError`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chainrule.cli.choices import DATASETS
from chainrule.cli.common import UserError, check_input_file, first_line


def load_data(name: str, data_dir: str | None, dtype: str) -> Any:
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
        return load_checkpoint(path)
    except FileNotFoundError:
        raise UserError(f"checkpoint not found: {path}") from None
    except CheckpointError as exc:
        raise UserError(first_line(exc)) from None
    except OSError as exc:
        raise UserError(f"cannot read checkpoint {path}: {exc}") from None


def model_from_checkpoint(
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
        raise UserError(f"checkpoint {path}: {first_line(exc)}") from None
    return model, config
