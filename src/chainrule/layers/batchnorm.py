"""The book's BatchNormalization layer: a holder of ``gamma``, ``beta`` and the running
statistics around :class:`chainrule.functions.BatchNorm`."""

from __future__ import annotations

from typing import Any

from chainrule.functions.normalization import BatchNorm, BatchNormState


class BatchNormalization:
    """``out = gamma * (x - mean) / sqrt(var + eps) + beta`` per feature (chapter 6).

    ``x`` is ``(N, D)`` (or ``(N, C, H, W)``: per channel when ``gamma`` has shape ``(C,)``,
    per activation as in the book when it has ``C*H*W`` entries). ``forward(x, train_flg)``
    normalizes with the batch's statistics when ``train_flg`` is true and updates the running
    ones; otherwise it uses the running statistics. After ``backward`` the gradients are in
    ``dgamma`` and ``dbeta``. The math is :class:`chainrule.functions.BatchNorm`'s.

    ``momentum`` is the weight of the old running value, as in the book. ``running_mean`` and
    ``running_var`` (allocated at the first forward pass when not given, mean 0 and variance 1)
    live in ``state``, a :class:`~chainrule.functions.BatchNormState`, and are updated in place,
    so a checkpoint can hold references to them. Deviations from the book: the running variance
    starts at 1 (not 0), and ``eps`` defaults to ``1e-5`` (the book: ``10e-7``).

    **Backward:** ``dx = (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) / sqrt(var + eps)``
    with ``dxhat = dout * gamma`` (training); ``dx = dxhat / sqrt(running_var + eps)``
    (evaluation). ``dgamma = sum(dout * xhat)``, ``dbeta = sum(dout)`` over the batch.

    >>> import numpy as np
    >>> bn = BatchNormalization(np.ones(2), np.zeros(2))
    >>> out = bn.forward(np.array([[1.0, 5.0], [3.0, 5.0]]))
    >>> out.round(3)
    array([[-1.,  0.],
           [ 1.,  0.]])
    >>> bn.backward(np.ones((2, 2))).round(3), bn.dgamma.round(3), bn.dbeta
    (array([[0., 0.],
           [0., 0.]]), array([0., 0.]), array([2., 2.]))
    """

    def __init__(
        self,
        gamma: Any,
        beta: Any,
        momentum: float = 0.9,
        running_mean: Any = None,
        running_var: Any = None,
        *,
        eps: float = 1e-5,
    ):
        self.gamma, self.beta = gamma, beta
        self.state = BatchNormState(
            momentum=momentum, eps=eps, running_mean=running_mean, running_var=running_var
        )
        self.dgamma: Any = None
        self.dbeta: Any = None
        self.op = BatchNorm(self.state)

    @property
    def momentum(self) -> float:
        return self.state.momentum

    @property
    def running_mean(self) -> Any:
        return self.state.running_mean

    @property
    def running_var(self) -> Any:
        return self.state.running_var

    def forward(self, x: Any, train_flg: bool = True) -> Any:
        self.op.train = bool(train_flg)
        return self.op.forward(x, self.gamma, self.beta)

    def backward(self, dout: Any) -> Any:
        dx, self.dgamma, self.dbeta = self.op.backward(dout)
        return dx
