"""Batch normalization (Ioffe & Szegedy, 2015): normalize each feature over the batch, then
scale by ``gamma`` and shift by ``beta``.

The running statistics used in evaluation live in a :class:`BatchNormState`, an object owned by
whoever owns ``gamma`` and ``beta`` (the book's :class:`~chainrule.layers.BatchNormalization`,
:class:`~chainrule.nn.BatchNorm1d`, :class:`~chainrule.layers.MultiLayerNet`). Each forward
pass in training mode updates it *in place*, so arrays handed out as checkpoint buffers stay
the arrays the layer reads. The math below is the one both the book's layer and the ``nn``
module run.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.backend import get_array_module
from chainrule.config import Config
from chainrule.function import Function
from chainrule.functions.elementwise import sqrt
from chainrule.tensor import Tensor


class BatchNormState:
    """Running mean and variance of one batch-norm layer, with its ``momentum`` and ``eps``.

    ``momentum`` follows the book: the weight of the *old* running value,
    ``running = momentum * running + (1 - momentum) * batch_stat`` (PyTorch's ``momentum=0.1``
    is ``0.9`` here). The running variance averages the biased batch variance, as the book's
    layer does. ``eps`` is added to the variance before the square root (the book writes
    ``10e-7``, i.e. ``1e-6``; pass ``eps=1e-6`` to reproduce its numbers exactly).

    With ``num_features`` the statistics are allocated at once (mean 0, variance 1); without it
    they are allocated at the first forward pass from the input's feature count and dtype.
    Given ``running_mean``/``running_var`` arrays are used (and updated) in place.

    >>> state = BatchNormState(3)
    >>> state.running_mean, state.running_var
    (array([0., 0., 0.]), array([1., 1., 1.]))
    """

    def __init__(
        self,
        num_features: int | None = None,
        momentum: float = 0.9,
        eps: float = 1e-5,
        running_mean: Any = None,
        running_var: Any = None,
        *,
        dtype: Any = np.float64,
    ):
        if isinstance(momentum, bool) or not 0.0 <= float(momentum) <= 1.0:
            raise ValueError(f"BatchNorm: momentum must be in [0, 1], got {momentum!r}")
        if isinstance(eps, bool) or not float(eps) > 0.0 or not np.isfinite(eps):
            raise ValueError(f"BatchNorm: eps must be a positive number, got {eps!r}")
        self.momentum = float(momentum)
        self.eps = float(eps)
        self.running_mean = _check_stat("running_mean", running_mean)
        self.running_var = _check_stat("running_var", running_var)
        if num_features is not None:
            self.allocate(num_features, np.dtype(dtype), np)

    def allocate(self, num_features: int, dtype: Any, xp: Any = np) -> None:
        """Create missing statistics for ``num_features`` features; check existing ones."""
        if self.running_mean is None:
            self.running_mean = xp.zeros(num_features, dtype=dtype)
        if self.running_var is None:
            self.running_var = xp.ones(num_features, dtype=dtype)
        for name in ("running_mean", "running_var"):
            stat = getattr(self, name)
            if stat.shape != (num_features,):
                raise ValueError(
                    f"BatchNorm: {name} has shape {stat.shape}, but the input has "
                    f"{num_features} features (expected ({num_features},))"
                )

    def update(self, mean: Any, var: Any) -> None:
        """Blend a batch's mean and (biased) variance into the running statistics, in place."""
        for stat, batch in ((self.running_mean, mean), (self.running_var, var)):
            stat *= self.momentum
            stat += (1.0 - self.momentum) * batch

    def reset(self) -> None:
        """Forget the statistics: mean 0, variance 1 (in place)."""
        if self.running_mean is not None:
            self.running_mean[...] = 0
        if self.running_var is not None:
            self.running_var[...] = 1

    def __repr__(self) -> str:
        size = None if self.running_mean is None else self.running_mean.shape[0]
        return f"BatchNormState(num_features={size}, momentum={self.momentum}, eps={self.eps})"


def _check_stat(name: str, value: Any) -> Any:
    if value is None:
        return None
    if not hasattr(value, "dtype") or value.dtype.kind != "f" or value.ndim != 1:
        raise ValueError(
            f"BatchNorm: {name} must be a 1-D floating-point array (it is updated in place), "
            f"got {getattr(value, 'dtype', type(value).__name__)} of shape {np.shape(value)}"
        )
    return value


class BatchNorm(Function):
    """``out = gamma * xhat + beta`` with ``xhat = (x - mean) / sqrt(var + eps)``.

    ``x`` is ``(N, D)`` with ``gamma`` and ``beta`` of shape ``(D,)``; or ``(N, C, ...)`` (an
    image batch ``(N, C, H, W)``, say), normalized per channel over the batch and all spatial
    positions when ``gamma`` has shape ``(C,)``, or per activation — the book's way, flattening
    each sample — when ``gamma`` has one entry per value of a sample.

    In training mode (``train=True``, or ``train=None`` and :attr:`chainrule.Config.train`)
    ``mean`` and ``var`` are the batch's own (biased) statistics, and ``state`` (a
    :class:`BatchNormState`) is updated with them; in evaluation mode they are ``state``'s
    running statistics, constants. A batch of one in training mode behaves as the book's layer:
    ``xhat = 0``, so ``out = beta`` and ``dx = 0`` (PyTorch raises there instead).

    **Backward:** ``dbeta = sum(dout)``, ``dgamma = sum(dout * xhat)`` over the batch; with
    batch statistics (every ``x`` moves the mean and variance)
    ``dx = (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) / sqrt(var + eps)`` where
    ``dxhat = dout * gamma``; with running statistics ``dx = dxhat / sqrt(var + eps)``.

    >>> state = BatchNormState()
    >>> bn = BatchNorm(state, train=True)
    >>> bn.forward(np.array([[1.0], [3.0]]), np.ones(1), np.zeros(1)).round(4)
    array([[-1.],
           [ 1.]])
    >>> state.running_mean, state.running_var
    (array([0.2]), array([1.]))
    """

    differentiable_backward = True

    def __init__(self, state: BatchNormState, train: bool | None = None):
        if not isinstance(state, BatchNormState):
            raise TypeError(
                f"BatchNorm: state must be a BatchNormState, got {type(state).__name__}"
            )
        self.state = state
        self.train = train

    # -- the layout: everything is computed on a 2-D (samples, features) view. Written with
    #    operations arrays and Tensors share, so double backward can rerun it on the graph.
    def _to_2d(self, x: Any) -> Any:
        if self.per_channel:
            axes = (0, *range(2, x.ndim), 1)  # channels last
            return x.transpose(axes).reshape(-1, x.shape[1])
        return x.reshape(x.shape[0], -1)

    def _from_2d(self, y: Any) -> Any:
        if self.per_channel:
            n, c, *rest = self.x_shape
            return y.reshape(n, *rest, c).transpose((0, len(rest) + 1, *range(1, len(rest) + 1)))
        return y.reshape(self.x_shape)

    def _normalize(self, x2: Any) -> tuple[Any, Any, Any, Any]:
        """``(xhat, 1 / std, mean, var)`` of the 2-D view (arrays, or Tensors on the graph)."""
        if self.batch_stats:
            mean = x2.mean(axis=0)
            xc = x2 - mean
            var = (xc * xc).mean(axis=0)
        else:
            # Cast so a float32 batch stays float32 even if the statistics are float64.
            mean = self.state.running_mean.astype(x2.dtype, copy=False)
            var = self.state.running_var.astype(x2.dtype, copy=False)
            xc = x2 - mean
        inv_std = (
            1.0 / sqrt(var + self.state.eps)
            if isinstance(var, Tensor)
            else 1.0 / get_array_module(var).sqrt(var + self.state.eps)
        )
        return xc * inv_std, inv_std, mean, var

    def _check(self, x: Any, gamma: Any, beta: Any) -> None:
        if x.ndim < 2:
            raise ValueError(
                f"BatchNorm: input must have shape (N, D) or (N, C, H, W), got {x.shape}"
            )
        if gamma.ndim != 1:
            raise ValueError(f"BatchNorm: gamma must be 1-D, got shape {gamma.shape}")
        if beta.shape != gamma.shape:
            raise ValueError(
                f"BatchNorm: beta has shape {beta.shape} but gamma has shape {gamma.shape}"
            )
        if x.shape[0] == 0:
            raise ValueError(f"BatchNorm: the input batch is empty (shape {x.shape})")
        features = x.size // x.shape[0]
        if x.ndim > 2 and gamma.shape[0] == x.shape[1]:
            self.per_channel = True
        elif gamma.shape[0] == features:
            self.per_channel = False
        else:
            expected = f"({x.shape[1]},)" if x.ndim == 2 else f"({x.shape[1]},) or ({features},)"
            raise ValueError(
                f"BatchNorm: gamma has shape {gamma.shape}, but an input of shape {x.shape} "
                f"needs {expected}"
            )

    def forward(self, x: Any, gamma: Any, beta: Any) -> Any:
        xp = get_array_module(x)
        self._check(x, gamma, beta)
        self.x_shape = x.shape
        x2 = self._to_2d(x)
        state = self.state
        state.allocate(x2.shape[1], x2.dtype, xp)
        self.batch_stats = Config.train if self.train is None else bool(self.train)
        # A batch of one in training mode: as the book's layer, xhat = 0 (out = beta) and
        # dx = 0; the running variance blends in the batch's variance, 0.
        self.xhat, self.inv_std, mean, var = self._normalize(x2)
        if self.batch_stats:
            state.update(mean, var)
        self.x, self.gamma = x, gamma
        return self._from_2d(self.xhat * gamma + beta)

    def backward(self, dout: Any) -> tuple[Any, Any, Any]:
        if isinstance(self.x, Tensor):  # on the graph (create_graph): xhat as recorded ops
            self.xhat, self.inv_std, _, _ = self._normalize(self._to_2d(self.x))
        dout2 = self._to_2d(dout)
        dbeta = dout2.sum(axis=0)
        dgamma = (dout2 * self.xhat).sum(axis=0)
        dxhat = dout2 * self.gamma
        if self.batch_stats:
            # The mean and variance depend on every sample: the two correction terms are the
            # paths through them (CS231n's compact form of the staged batch-norm backward).
            dx = (
                dxhat - dxhat.mean(axis=0) - self.xhat * (dxhat * self.xhat).mean(axis=0)
            ) * self.inv_std
        else:
            dx = dxhat * self.inv_std
        return self._from_2d(dx), dgamma, dbeta


def batch_norm(
    x: Any, gamma: Any, beta: Any, state: BatchNormState, train: bool | None = None
) -> Tensor:
    """Batch normalization with running statistics in ``state`` (see :class:`BatchNorm`)."""
    return BatchNorm(state, train)(x, gamma, beta)
