"""Datasets: IDX file reading/writing and the MNIST / Fashion-MNIST loaders.

Loading MNIST (from ``CHAINRULE_DATA``, the cache, or a verified download)::

    from chainrule.datasets import load_mnist
    (x_train, t_train), (x_test, t_test) = load_mnist(normalize=True, flatten=True)

See :mod:`chainrule.datasets.mnist` for where the files are looked for and how to supply them.
"""

from .idx import DatasetError, parse_idx, read_idx, write_idx
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
    "ensure_dataset",
    "load_fashion_mnist",
    "load_mnist",
    "parse_idx",
    "read_idx",
    "write_idx",
]
