"""Synchronized batch normalization: batch statistics of the global batch, not of a shard.

In training mode batch norm normalizes with the mean and variance of the batch it sees. A
rank sees only its shard, so its statistics (and the correction terms of the backward pass,
``mean(dxhat)`` and ``mean(dxhat * xhat)``) would be the shard's: a different function from
the single-process run's. While :func:`sync_batchnorm` is active, every
:class:`chainrule.functions.BatchNorm` in training mode (the book's ``BatchNormalization`` and
the ``nn`` modules both run it) sums these four per-feature quantities over all ranks with an
allreduce, so every rank normalizes with the global batch's statistics, the running statistics
stay identical on every rank, and the backward pass is the full batch's.

The shards must be equal (the data-parallel trainer enforces it): the backward pass of each
rank starts from the gradient of its shard's mean loss, ``N`` times the global loss's, and the
scale is the same on every rank only when the shards are. Double backward (``create_graph``)
is not synchronized; it falls back to the shard's statistics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from chainrule.backend import get_array_module
from chainrule.functions.normalization import BatchNorm
from chainrule.tensor import Tensor

__all__ = ["sync_batchnorm"]

Reduce = Callable[[np.ndarray], np.ndarray]


def _sync_normalize(reduce: Reduce, size: int, original: Any) -> Any:
    def normalize(self: BatchNorm, x2: Any) -> tuple[Any, Any, Any, Any]:
        if not self.batch_stats or isinstance(x2, Tensor):
            return original(self, x2)
        xp = get_array_module(x2)
        n = x2.shape[0] * size
        mean = (reduce(x2.sum(axis=0, dtype=np.float64)) / n).astype(x2.dtype)
        xc = x2 - mean
        var = (reduce((xc * xc).sum(axis=0, dtype=np.float64)) / n).astype(x2.dtype)
        inv_std = 1.0 / xp.sqrt(var + self.state.eps)
        return xc * inv_std, inv_std, mean, var

    return normalize


def _sync_backward(reduce: Reduce, size: int, original: Any) -> Any:
    def backward(self: BatchNorm, dout: Any) -> tuple[Any, Any, Any]:
        if not self.batch_stats or isinstance(self.x, Tensor):
            return original(self, dout)
        xp = get_array_module(dout)
        dout2 = self._to_2d(dout)
        dbeta = dout2.sum(axis=0)
        dgamma = (dout2 * self.xhat).sum(axis=0)
        dxhat = dout2 * self.gamma
        local = xp.concatenate(
            [dxhat.sum(axis=0, dtype=np.float64), (dxhat * self.xhat).sum(axis=0, dtype=np.float64)]
        )
        sums = reduce(local) / (dout2.shape[0] * size)
        d = dout2.shape[1]
        mean_dxhat, mean_dxhat_xhat = sums[:d].astype(dout2.dtype), sums[d:].astype(dout2.dtype)
        dx = (dxhat - mean_dxhat - self.xhat * mean_dxhat_xhat) * self.inv_std
        return self._from_2d(dx), dgamma, dbeta

    return backward


@contextmanager
def sync_batchnorm(reduce: Reduce, size: int) -> Iterator[None]:
    """Within the block, batch norm in training mode uses statistics summed by ``reduce``.

    ``reduce(array)`` returns the elementwise sum of ``array`` over the ``size`` ranks (an
    allreduce). With one rank and ``reduce`` the identity the results are the plain layer's
    up to rounding:

    >>> from chainrule.functions.normalization import BatchNormState
    >>> x = np.array([[1.0], [3.0]])
    >>> with sync_batchnorm(lambda a: a, 1):
    ...     BatchNorm(BatchNormState(), train=True).forward(x, np.ones(1), np.zeros(1)).round(4)
    array([[-1.],
           [ 1.]])
    """
    normalize, backward = BatchNorm._normalize, BatchNorm.backward
    BatchNorm._normalize = _sync_normalize(reduce, size, normalize)  # type: ignore[method-assign]
    BatchNorm.backward = _sync_backward(reduce, size, backward)  # type: ignore[method-assign]
    try:
        yield
    finally:
        BatchNorm._normalize = normalize  # type: ignore[method-assign]
        BatchNorm.backward = backward  # type: ignore[method-assign]
