"""Datasets and checkpoints as the commands read them: every failure is a :class:`UserError`.

Also the ``chainrule data`` command, data on the user's terms::

    chainrule data [--dataset NAME] [--data-dir DIR]            where chainrule looks, what it finds
    chainrule data verify [--dataset NAME] [--data-dir DIR]     check every file's SHA-256
    chainrule data download [--dataset NAME] [--to DIR]         fetch the files ahead of time
"""

from __future__ import annotations

import argparse
import os
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


# --------------------------------------------------------------------------------------------
# chainrule data
# --------------------------------------------------------------------------------------------


def add_parser(sub: Any) -> None:
    data = sub.add_parser(
        "data",
        help="where the datasets are looked for; verify or download them",
        description=(
            "Show where chainrule looks for MNIST and Fashion-MNIST (--data-dir, then "
            "$CHAINRULE_DATA, then the user cache) and what it finds there; 'verify' checks "
            "every file's SHA-256; 'download' fetches the files ahead of time, into --to DIR "
            "(as DIR/mnist/..., ready for CHAINRULE_DATA=DIR) or the user cache."
        ),
    )
    data.add_argument("action", nargs="?", default="where", choices=("where", "verify", "download"))
    data.add_argument("--dataset", choices=(*DATASETS, "all"), default="all", help="default: all")
    data.add_argument("--data-dir", metavar="DIR", help="a folder to look in first")
    data.add_argument("--to", metavar="DIR", help="download into DIR/<dataset>/")
    data.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """``chainrule data``: 0 when every file is there (and verified), 1 otherwise."""
    from chainrule.datasets.mnist import ENV_DATA, ENV_OFFLINE, _offline, default_cache_dir

    names = DATASETS if args.dataset == "all" else (args.dataset,)
    if args.action == "download":
        return _download(names, args.to)
    if args.to:
        raise UserError("--to goes with 'download' only")
    env = os.environ.get(ENV_DATA)
    print("chainrule looks for each file in this order; the first verified copy is used:")
    print(f"  1. {'--data-dir':<18}{args.data_dir or '(not given)'}")
    print(f"  2. {'$' + ENV_DATA:<18}{env or '(not set)'}")
    print(f"  3. {'user cache':<18}{default_cache_dir()}")
    fate = f"not downloaded ({ENV_OFFLINE} is set)" if _offline() else "downloaded to the cache"
    print(f"Missing files are {fate}; 'chainrule data download --to DIR' fetches them first.")
    complete = all([_report(name, args.data_dir, args.action == "verify") for name in names])
    return 0 if complete else 1


def _report(name: str, data_dir: str | None, verify: bool) -> bool:
    from chainrule.datasets.inventory import inventory
    from chainrule.datasets.mnist import _SPECS

    spec = _SPECS[name]
    print(f"\n{spec.title}:")
    used: dict[str, Any] = {}
    for place in inventory(name, data_dir, verify=verify):
        state = ""
        if not place.exists:
            state = "  (not there)"
            if place.origin != "user cache" and place.directory.name != spec.key:
                state = "  <- NO SUCH FOLDER: loading stops here with an error"
        print(f"  {place.directory}  ({place.origin}){state}")
        for f in place.files:
            mark = {"found": "found", "verified": "ok, SHA-256 verified", "corrupt": "CORRUPT"}
            print(f"      {f.path.name:<28} {f.size:>11,} bytes  {mark[f.status]}")
            if f.status != "corrupt":
                used.setdefault(f.role, f)
    missing = [fspec.name for role, fspec in spec.files.items() if role not in used]
    if missing:
        print(f"  missing: {', '.join(missing)}")
    else:
        print("  all 4 files " + ("verified" if verify else "found ('data verify' checks them)"))
    return not missing


def _download(names: tuple[str, ...], to: str | None) -> int:
    from chainrule.datasets import DatasetError, ensure_dataset
    from chainrule.datasets.inventory import download_dataset
    from chainrule.datasets.mnist import ENV_DATA, default_cache_dir

    for name in names:
        try:
            if to is None:
                paths = ensure_dataset(name, download=True, download_to=None)
            else:
                paths = download_dataset(name, to)
        except DatasetError as exc:
            raise UserError(" ".join(str(exc).split())) from None
        folder = sorted({str(p.parent) for p in paths.values()})
        print(f"{name}: 4 files verified in {', '.join(folder)}")
    root = Path(to).expanduser() if to else default_cache_dir()
    print(f"use them with: {ENV_DATA}={root}  (or --data-dir {root})")
    return 0
