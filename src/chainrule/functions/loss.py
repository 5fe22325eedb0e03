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
from chainrule.functions.checks import check_finite
from chainrule.tensor import Tensor


def _exp(a: Any) -> Any:
    """``exp`` of an array, or of a Tensor as a recorded op (backward recorded for create_graph)."""
    if isinstance(a, Tensor):
        from chainrule.functions.elementwise import exp

        return exp(a)
    return get_array_module(a).exp(a)


def _row_max(a: Any) -> Any:
    """``a.max(axis=1, keepdims=True)`` of a 2-D array. NumPy reduces a few classes per row
    slowly (one short inner loop per row); for up to 32 classes it is faster (1.5x for MNIST's
    10) to take the maximum down the columns of the transposed copy, and just as exact."""
    if a.shape[1] <= 32:
        return a.T.copy().max(axis=0)[:, None]
    return a.max(axis=1, keepdims=True)


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

    **Backward:** ``dx = dout - softmax(x) * sum(dout, axis=-1)``, with
    ``softmax(x) = exp(out)``.

    >>> import numpy as np
    >>> LogSoftmax().forward(np.log(np.array([1.0, 3.0])))
    array([-1.38629436, -0.28768207])
    """

    differentiable_backward = True

    def forward(self, x: Any) -> Any:
        self.out = _log_softmax(x)
        return self.out

    def backward(self, dout: Any) -> Any:
        return dout - _exp(self.out) * dout.sum(axis=-1, keepdims=True)


def check_targets(layer: str, x: Any, t: Any) -> tuple[Any, bool]:
    """Validate targets ``t`` for scores ``x`` of shape ``(N, C)`` or ``(C,)``.

    Returns ``(t, one_hot)``: class indices of shape ``(N,)`` (int) or a one-hot/probability
    matrix of shape ``(N, C)``. Raises ``ValueError`` naming ``layer`` for anything else.
    """
    xp = get_array_module(x)
    if not hasattr(x, "dtype") or x.dtype.kind != "f":
        raise TypeError(
            f"{layer}: scores must be a real floating-point array, got "
            f"{getattr(x, 'dtype', type(x).__name__)}"
        )
    if x.ndim not in (1, 2):
        raise ValueError(f"{layer}: scores must have shape (N, C) or (C,), got {x.shape}")
    if x.shape[0] == 0 or x.shape[-1] == 0:
        raise ValueError(f"{layer}: empty batch (scores of shape {x.shape})")
    n, c = (1, x.shape[0]) if x.ndim == 1 else x.shape
    t = xp.asarray(t)
    if x.ndim == 2 and t.shape == (n, 1) and c > 1:
        t = t.reshape(n)  # labels as a column (N, 1)
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
        t = t.reshape(n, c).astype(x.dtype, copy=False)
        _check_distribution(layer, t)
        return t, True
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
    if not _in_range(t, c):
        low, high = int(t.min()), int(t.max())
        bad = low if low < 0 else high
        where = int(xp.flatnonzero(t == bad)[0])
        raise ValueError(
            f"{layer}: label {bad} at index {where} is out of range for {c} classes "
            f"(labels must be in 0..{c - 1})"
        )
    return t.astype(xp.intp, copy=False), False


def _in_range(t: Any, c: int) -> bool:
    """Are all labels ``t`` (integer-valued) in ``0..c-1``? Integer labels take one
    reduction: viewed as unsigned integers of their size, negative ones are above ``c``."""
    if t.dtype.kind == "i":
        return int(t.view(f"u{t.itemsize}").max()) < c
    return int(t.min()) >= 0 and int(t.max()) < c


def _check_distribution(layer: str, t: Any) -> None:
    """One-hot/soft target rows must be probability distributions (else the backward
    ``y - t`` is not the derivative of the forward ``-sum(t * log y)``)."""
    xp = get_array_module(t)
    check_finite(layer, "target values", t)
    if bool((t < 0).any()):
        row = int(xp.argwhere(t < 0)[0][0])
        raise ValueError(f"{layer}: one-hot targets must not be negative (row {row})")
    sums = t.sum(axis=1)
    off = xp.abs(sums - 1) > 1e-6 * t.shape[1]
    if bool(off.any()):
        row = int(xp.flatnonzero(off)[0])
        raise ValueError(
            f"{layer}: one-hot target rows must sum to 1; row {row} sums to {float(sums[row])}"
        )


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

    differentiable_backward = True

    def forward(self, x: Any, t: Any) -> Any:
        t, one_hot = check_targets(type(self).__name__, x, t)
        check_finite(type(self).__name__, "scores", x)
        self.x, self.x_shape = x, x.shape
        xp = get_array_module(x)
        n = len(t)
        scores = x.reshape(n, -1)
        shifted = scores - _row_max(scores)
        e = xp.exp(shifted)  # one exp serves both the loss (log-softmax) and y (softmax)
        total = e.sum(axis=-1, keepdims=True)
        self.t, self.one_hot = t, one_hot
        self.y = e / total
        # `0.0 - s` rather than `-s`: a perfect prediction gives +0.0, never -0.0.
        if one_hot:
            self.loss = 0.0 - (t * (shifted - xp.log(total))).sum() / n
        else:
            # log-softmax only where the labels point: log p[i, t_i] = shifted[i, t_i] -
            # log(total_i), the very entries (and rounding) of the full matrix, without it.
            # (i, t_i) as flat indices i * C + t_i: 1-D fancy indexing is about 3x faster.
            self.picked = xp.arange(0, shifted.size, shifted.shape[1]) + t
            picked = shifted.reshape(-1)[self.picked]
            self.loss = 0.0 - (picked - xp.log(total[:, 0])).sum() / n
        return self.loss

    def backward(self, dout: Any = 1) -> Any:
        n, c = self.y.shape
        if isinstance(self.x, Tensor):
            # On the graph (create_graph): softmax is recomputed as a recorded op.
            y = _exp(log_softmax(self.x.reshape(self.y.shape)))
            xp = get_array_module(self.y)
            t = self.t if self.one_hot else xp.eye(c, dtype=self.y.dtype)[self.t]
            return ((y - t) * (dout / n)).reshape(self.x_shape)
        if self.one_hot:
            diff = self.y - self.t
        else:  # y - one_hot(t), without building the one-hot matrix
            diff = self.y.copy()
            diff.reshape(-1)[self.picked] -= 1
        return (diff * (dout / n)).reshape(self.x_shape)


class IdentityWithLoss(Function):
    """Identity output with the squared error for regression: ``0.5 * sum((x - t)**2) / N``.

    ``x`` and ``t`` have the same shape ``(N, ...)`` (a 0-d or 1-D ``x`` is one sample).

    **Backward:** ``dx = dout * (x - t) / N`` — the same "output minus target" as
    :class:`SoftmaxWithLoss`, which is why these pairings are chosen.
    """

    differentiable_backward = True

    def forward(self, x: Any, t: Any) -> Any:
        xp = get_array_module(x)
        t = xp.asarray(t)
        name = type(self).__name__
        if t.shape != x.shape:
            raise ValueError(f"{name}: targets of shape {t.shape} do not match outputs {x.shape}")
        if x.size == 0:
            raise ValueError(f"{name}: empty batch (outputs of shape {x.shape})")
        check_finite(name, "outputs", x)
        check_finite(name, "targets", t)
        self.x, self.t = x, t
        self.n = x.shape[0] if x.ndim > 1 else 1
        self.diff = x - t
        self.loss = 0.5 * (self.diff * self.diff).sum() / self.n
        return self.loss

    def backward(self, dout: Any = 1) -> Any:
        diff = self.x - self.t if isinstance(self.x, Tensor) else self.diff  # on the graph
        return diff * (dout / self.n)


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
