"""Where the tests find the real MNIST files: one helper for every test module.

``$CHAINRULE_DATA`` first (a folder holding ``mnist/`` or the files themselves), then
``shared/data`` beside the repository (``../shared/data``, the verified copies the project
keeps for machines without internet).  Tests that need the files call :func:`real_data_root`
or :func:`load_real_mnist`, which skip visibly, naming both places, when the files are absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

#: The verified copies beside the repository (``<repo>/../shared/data``).
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def candidate_roots() -> list[Path]:
    """The folders looked in, in order: ``$CHAINRULE_DATA`` (when set), then ``SHARED_DATA``."""
    env = os.environ.get("CHAINRULE_DATA")
    return ([Path(env).expanduser()] if env else []) + [SHARED_DATA]


def find_root(*datasets: str) -> Path | None:
    """The first root holding ``<dataset>/<the four files>`` for every dataset named."""
    for root in candidate_roots():
        if all((root / name / f).is_file() for name in datasets for f in _FILES):
            return root
    return None


def real_data_root(*datasets: str) -> Path:
    """The root holding the real files of ``datasets`` (default MNIST); skips when absent."""
    datasets = datasets or ("mnist",)
    root = find_root(*datasets)
    if root is None:
        where = " or ".join(str(r) for r in candidate_roots())
        pytest.skip(f"real {', '.join(datasets)} files not found in {where} (set CHAINRULE_DATA)")
    return root


def load_real_mnist(**kwargs):
    """``load_mnist(data_dir=<the real files>, download=False, **kwargs)``, or skip."""
    from chainrule.datasets import load_mnist

    return load_mnist(data_dir=real_data_root("mnist"), download=False, **kwargs)
