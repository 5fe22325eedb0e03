"""Where the tests find the real MNIST files: one helper for every test module.

``$CHAINRULE_DATA`` first (a folder holding ``mnist/`` or the files themselves), then
``shared/data`` beside the repository (``../shared/data``, the verified copies the project
keeps for machines without internet).  Tests that need the files call :func:`real_data_root`
or :func:`load_real_mnist`, which skip visibly, naming both places, when the files are absent.

:class:`Tiny` writes four tiny IDX files and a :class:`DatasetSpec` pinning their checksums,
for tests that must not need the real ones.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from chainrule.datasets import write_idx
from chainrule.datasets.mnist import DatasetSpec, FileSpec

# --------------------------------------------------------------------------------------------
# tiny stand-ins, written here
# --------------------------------------------------------------------------------------------

FILE_NAMES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
MIRRORS = ("https://mirror-a.invalid/mnist/", "https://mirror-b.invalid/mnist/")


class Tiny:
    """Four tiny IDX files (5 train, 3 test images) and a DatasetSpec pinning them."""

    def __init__(self, root: Path, key: str, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.arrays = {
            "train_images": rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8),
            "train_labels": np.array([0, 9, 3, 3, 7], dtype=np.uint8),
            "test_images": rng.integers(0, 256, size=(3, 28, 28), dtype=np.uint8),
            "test_labels": np.array([1, 0, 9], dtype=np.uint8),
        }
        self.arrays["train_images"][0, 0, 0] = 255
        self.arrays["train_images"][0, 0, 1] = 0
        self.source = root / f"source-{key}"
        self.source.mkdir()
        self.contents: dict[str, bytes] = {}
        specs = {}
        for role, name in FILE_NAMES.items():
            path = write_idx(self.source / name, self.arrays[role])
            data = path.read_bytes()
            raw = gzip.decompress(data)
            self.contents[name] = data
            specs[role] = FileSpec(
                name,
                len(data),
                md5=hashlib.md5(data).hexdigest(),
                sha256=hashlib.sha256(data).hexdigest(),
                raw_md5=hashlib.md5(raw).hexdigest(),
                raw_sha256=hashlib.sha256(raw).hexdigest(),
            )
        self.spec = DatasetSpec(key=key, title=f"Tiny {key}", mirrors=MIRRORS, **specs)

    def put(self, directory: Path, roles=tuple(FILE_NAMES), *, raw: bool = False) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        for role in roles:
            name = FILE_NAMES[role]
            if raw:
                (directory / name.removesuffix(".gz")).write_bytes(
                    gzip.decompress(self.contents[name])
                )
            else:
                shutil.copyfile(self.source / name, directory / name)
        return directory


# --------------------------------------------------------------------------------------------
# the real files
# --------------------------------------------------------------------------------------------

#: The verified copies beside the repository (``<repo>/../shared/data``).
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def candidate_roots() -> list[Path]:
    """The folders looked in, in order: ``$CHAINRULE_DATA`` (when set), then ``SHARED_DATA``."""
    env = os.environ.get("CHAINRULE_DATA")
    return ([Path(env).expanduser()] if env else []) + [SHARED_DATA]


def find_root(*datasets: str) -> Path | None:
    """The first root holding ``<dataset>/<the four files>`` for every dataset named."""
    for root in candidate_roots():
        if all((root / name / f).is_file() for name in datasets for f in FILE_NAMES.values()):
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
