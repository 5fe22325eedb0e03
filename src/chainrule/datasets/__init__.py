"""Datasets: IDX file reading/writing and the MNIST / Fashion-MNIST loaders.

Loading MNIST (from ``CHAINRULE_DATA``, the cache, or a verified download)::

    from chainrule.datasets import load_mnist
    (x_train, t_train), (x_test, t_test) = load_mnist(normalize=True, flatten=True)

See :mod:`chainrule.datasets.mnist` for where the files are looked for and how to supply them,
:mod:`chainrule.datasets.inventory` to list, verify or download them ahead of time, and
:mod:`chainrule.datasets.digits` (:func:`mnist_like`) to prepare a photo or drawing of a digit
as MNIST's digits were made.
"""

from .digits import mnist_like
from .idx import DatasetError, parse_idx, read_idx, write_idx
from .inventory import download_dataset, inventory
from .mnist import (
    FASHION_MNIST_CLASSES,
    default_cache_dir,
    ensure_dataset,
    load_fashion_mnist,
    load_mnist,
)

__all__ = [
    "FASHION_MNIST_CLASSES",
    "DatasetError",
    "default_cache_dir",
    "download_dataset",
    "ensure_dataset",
    "inventory",
    "load_fashion_mnist",
    "load_mnist",
    "mnist_like",
    "parse_idx",
    "read_idx",
    "write_idx",
]
