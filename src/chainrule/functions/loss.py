"""Output layers and losses: softmax, log-softmax, softmax with cross-entropy, identity with
squared error.

Softmax subtracts each row's maximum before ``exp`` (the result is unchanged, overflow is
impossible); cross-entropy is taken from log-softmax, never ``log(softmax + 1e-7)``, so the loss
is exact, never negative, and its gradient is exactly ``(y - t) / batch_size``.
"""

from __future__ import annotations

from typing import Any

from chainrule.backend import get_array_module
from chainrule.function import Function
from chainrule.tensor import Tensor


def _log_softmax(x: Any) -> Any:
    xp = get_array_module(x)
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))


class Softmax(Function):
    """``out = exp(x) / sum(exp(x))`` along the last axis.

    **Backward:** ``dx = out * (dout - sum(dout * out, axis=-1))``.
    """

    differentiable_backward = True

    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        e = xp.exp(x - x.max(axis=-1, keepdims=True))
        self.out = e / e.sum(axis=-1, keepdims=True)
        return self.out

    def backward(self, dout: Any) -> Any:
        dot = (dout * self.out).sum(axis=-1, keepdims=True)
        return self.out * (dout - dot)


class LogSoftmax(Function):
    """``out = x - log(sum(exp(x)))`` along the last axis, computed stably.

    **Backward:** ``dx = dout - softmax(x) * sum(dout, axis=-1)``.
    """

    def forward(self, x: Any) -> Any:
        self.out = _log_softmax(x)
        return self.out

    def backward(self, dout: Any) -> Any:
        xp = get_array_module(self.out)
        return dout - xp.exp(self.out) * dout.sum(axis=-1, keepdims=True)


def check_targets(layer: str, x: Any, t: Any) -> tuple[Any, bool]:
    """Validate targets ``t`` for scores ``x`` of shape ``(N, C)`` or ``(C,)``.

    Returns ``(t, one_hot)``: class indices of shape ``(N,)`` (int) or a one-hot/probability
    matrix of shape ``(N, C)``. Raises ``ValueError`` naming ``layer`` for anything else.
    """
    xp = get_array_module(x)
    if x.ndim not in (1, 2):
        raise ValueError(f"{layer}: scores must have shape (N, C) or (C,), got {x.shape}")
    if x.shape[0] == 0 or x.shape[-1] == 0:
        raise ValueError(f"{layer}: empty batch (scores of shape {x.shape})")
    n, c = (1, x.shape[0]) if x.ndim == 1 else x.shape
    t = xp.asarray(t)
    if t.ndim == x.ndim:  # one-hot (or soft) targets: one row of C values per sample
        if t.shape != x.shape:
            if x.ndim == 2 and t.shape[0] != n:
                raise ValueError(
                    f"{layer}: batch size mismatch: scores {x.shape} but targets {t.shape}"
                )
            raise ValueError(
                f"{layer}: one-hot targets of shape {t.shape} have {t.shape[-1]} classes, "
                f"but the scores {x.shape} have {c}"
            )
        if t.dtype.kind not in "fiub":
            raise ValueError(f"{layer}: one-hot targets must be numeric, got dtype {t.dtype}")
        return t.reshape(n, c).astype(x.dtype, copy=False), True
    if t.ndim != x.ndim - 1:
        raise ValueError(
            f"{layer}: targets must be class indices of shape ({n},) or one-hot of shape "
            f"{x.shape}, got shape {t.shape}"
        )
    if t.size != n:
        raise ValueError(f"{layer}: batch size mismatch: scores {x.shape} but labels {t.shape}")
    t = t.reshape(n)
    if t.dtype.kind == "f":
        if not bool(xp.all(xp.isfinite(t) & (t == xp.round(t)))):
            raise ValueError(f"{layer}: class labels must be integers, got non-integer values")
    elif t.dtype.kind not in "iu":
        raise ValueError(f"{layer}: class labels must be integers, got dtype {t.dtype}")
    low, high = int(t.min()), int(t.max())
    if low < 0 or high >= c:
        bad = low if low < 0 else high
        where = int(xp.flatnonzero(t == bad)[0])
        raise ValueError(
            f"{layer}: label {bad} at index {where} is out of range for {c} classes "
            f"(labels must be in 0..{c - 1})"
        )
    return t.astype(xp.intp, copy=False), False


class SoftmaxWithLoss(Function):
    """Softmax followed by the mean cross-entropy over the batch (the book's last layer).

    ``forward(x, t)``: scores ``x`` of shape ``(N, C)`` (or one sample ``(C,)``); targets ``t``
    as class indices ``(N,)`` or one-hot ``(N, C)``. Returns
    ``loss = -sum(t * log_softmax(x)) / N`` (a float, never negative).

    **Backward:** ``dx = dout * (y - t) / N`` where ``y = softmax(x)`` (saved as ``self.y``).

    >>> import numpy as np
    >>> layer = SoftmaxWithLoss()
    >>> round(float(layer.forward(np.array([[0.0, 0.0]]), np.array([1]))), 6)
    0.693147
    >>> layer.backward()
    array([[ 0.5, -0.5]])
    """

    def forward(self, x: Any, t: Any) -> Any:
        t, one_hot = check_targets(type(self).__name__, x, t)
        self.x_shape = x.shape
        xp = get_array_module(x)
        scores = x.reshape(len(t), -1)
        shifted = scores - scores.max(axis=-1, keepdims=True)
        e = xp.exp(shifted)  # one exp serves both the loss (log-softmax) and y (softmax)
        total = e.sum(axis=-1, keepdims=True)
        logp = shifted - xp.log(total)
        n = logp.shape[0]
        self.t, self.one_hot = t, one_hot
        self.y = e / total
        # `0.0 - s` rather than `-s`: a perfect prediction gives +0.0, never -0.0.
        if one_hot:
            self.loss = 0.0 - (t * logp).sum() / n
        else:
            self.loss = 0.0 - logp[xp.arange(n), t].sum() / n
        return self.loss

    def backward(self, dout: Any = 1) -> Any:
        n = self.y.shape[0]
        if self.one_hot:
            dx = self.y - self.t
        else:
            dx = self.y.copy()
            dx[get_array_module(dx).arange(n), self.t] -= 1
        dx *= dout / n
        return dx.reshape(self.x_shape)


class IdentityWithLoss(Function):
    """Identity output with the squared error for regression: ``0.5 * sum((x - t)**2) / N``.

    ``x`` and ``t`` have the same shape ``(N, ...)`` (a 0-d or 1-D ``x`` is one sample).

    **Backward:** ``dx = dout * (x - t) / N`` — the same "output minus target" as
    :class:`SoftmaxWithLoss`, which is why these pairings are chosen.
    """

    def forward(self, x: Any, t: Any) -> Any:
        xp = get_array_module(x)
        t = xp.asarray(t)
        name = type(self).__name__
        if t.shape != x.shape:
            raise ValueError(f"{name}: targets of shape {t.shape} do not match outputs {x.shape}")
        if x.size == 0:
            raise ValueError(f"{name}: empty batch (outputs of shape {x.shape})")
        self.n = x.shape[0] if x.ndim > 1 else 1
        self.diff = x - t
        self.loss = 0.5 * (self.diff * self.diff).sum() / self.n
        return self.loss

    def backward(self, dout: Any = 1) -> Any:
        return self.diff * (dout / self.n)


def softmax(x: Any) -> Tensor:
    return Softmax()(x)


def log_softmax(x: Any) -> Tensor:
    return LogSoftmax()(x)


def softmax_cross_entropy(x: Any, t: Any) -> Tensor:
    """Mean cross-entropy of ``softmax(x)`` against labels or one-hot ``t`` (fused)."""
    return SoftmaxWithLoss()(x, t)


def identity_with_loss(x: Any, t: Any) -> Tensor:
    """``0.5 * sum((x - t)**2) / N`` (the book's regression output layer)."""
    return IdentityWithLoss()(x, t)


def mean_squared_error(x: Any, t: Any) -> Tensor:
    """``mean((x - t)**2)`` over all elements, composed of existing ops."""
    diff = x - t
    return (diff * diff).mean()
