"""The book's Convolution and Pooling layers (chapter 7): stateful holders around the ops.

The math lives once, in :class:`chainrule.functions.Conv2d`, :class:`~chainrule.functions.
MaxPool2d` and :class:`~chainrule.functions.AvgPool2d`; these classes only keep the parameters
(``W``, ``b``) and, after ``backward``, their gradients (``dW``, ``db``), like
:class:`~chainrule.layers.Affine`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.functions.conv import AvgPool2d, Conv2d, MaxPool2d
from chainrule.layers.base import ParamLayer


class Convolution(ParamLayer):
    """``out = conv2d(x, W, b, stride, pad)`` for ``x`` (N, C, H, W), ``W`` (FN, C, FH, FW),
    ``b`` (FN,) or ``None``; ``out`` is (N, FN, OH, OW), ``OH = (H + 2*pad - FH) / stride + 1``.

    Holds references to ``W`` and ``b`` (an optimizer updating them in place is seen here).
    After ``backward``, ``dW`` and ``db`` (``None`` without a bias) hold the gradients.
    ``need_dx=False`` (a first layer: the images need no gradient) skips ``dx`` and returns
    ``None``. ``exact=False`` floors a fractional output size, as the book's layer does; by
    default it is an error. A scalar ``b`` (the book's ``apply_filter.py`` passes ``b=0``) is
    the same bias for every filter: it becomes an array of shape (FN,), and so is ``db``.

    **Backward:** ``dx = col2im(W2.T @ dout)``, ``dW = sum_n dout[n] @ col[n].T``,
    ``db = dout.sum(axis=(0, 2, 3))`` with ``col = im2col(x)``, ``W2 = W.reshape(FN, -1)``.

    >>> import numpy as np
    >>> layer = Convolution(np.ones((2, 3, 3, 3)), np.zeros(2), stride=1, pad=1)
    >>> layer.forward(np.ones((4, 3, 5, 5))).shape
    (4, 2, 5, 5)
    >>> layer.backward(np.ones((4, 2, 5, 5))).shape, layer.dW.shape, layer.db.shape
    ((4, 3, 5, 5), (2, 3, 3, 3), (2,))
    """

    def __init__(
        self,
        W: Any,
        b: Any,
        stride: Any = 1,
        pad: Any = 0,
        *,
        need_dx: bool = True,
        exact: bool = True,
    ):
        if b is not None and np.ndim(b) == 0 and np.ndim(W) == 4:
            b = np.full(np.shape(W)[0], b, dtype=np.result_type(W, np.float32))
        self.W, self.b = W, b
        self.stride, self.pad = stride, pad
        self.dW: Any = None
        self.db: Any = None
        self.op = Conv2d(stride, pad, exact=exact)
        self.need_dx = need_dx

    @property
    def need_dx(self) -> bool:
        """Does ``backward`` compute ``dx``? (False for a first layer: saves a GEMM and col2im.)"""
        return self.op.wants_grad(0)

    @need_dx.setter
    def need_dx(self, value: bool) -> None:
        self.op.needs_input_grad = None if value else (False, True, True)

    def forward(self, x: Any) -> Any:
        if self.b is None:
            return self.op.forward(x, self.W)
        return self.op.forward(x, self.W, self.b)

    def backward(self, dout: Any) -> Any:
        self.dW = self.db = None  # free the previous step's gradients first (as Affine does)
        if self.b is None:
            dx, self.dW = self.op.backward(dout)
        else:
            dx, self.dW, self.db = self.op.backward(dout)
        return dx


class Pooling:
    """The book's pooling layer: ``pool_h x pool_w`` windows moved by ``stride`` over each
    channel of ``x`` (N, C, H, W), taking the maximum (``mode='max'``, the book's) or the mean
    (``mode='avg'``). ``OH = (H + 2*pad - pool_h) / stride + 1``; ``exact=False`` floors it
    when it is fractional (the book's way), else that is an error.

    **Backward:** max — ``dout`` goes to each window's maximum, split equally among tied maxima;
    avg — ``dout / (pool_h * pool_w)`` to every entry of the window. See
    :class:`chainrule.functions.MaxPool2d` and :class:`~chainrule.functions.AvgPool2d`.

    >>> import numpy as np
    >>> pool = Pooling(2, 2, stride=2)
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> pool.forward(x)
    array([[[[ 5.,  7.],
             [13., 15.]]]])
    >>> pool.backward(np.ones((1, 1, 2, 2)))[0, 0]
    array([[0., 0., 0., 0.],
           [0., 1., 0., 1.],
           [0., 0., 0., 0.],
           [0., 1., 0., 1.]])
    """

    def __init__(
        self,
        pool_h: int,
        pool_w: int,
        stride: Any = 2,
        pad: Any = 0,
        mode: str = "max",
        *,
        exact: bool = True,
    ):
        if mode not in ("max", "avg"):
            raise ValueError(f"Pooling: mode must be 'max' or 'avg', got {mode!r}")
        self.pool_h, self.pool_w = pool_h, pool_w
        self.stride, self.pad, self.mode = stride, pad, mode
        pool = MaxPool2d if mode == "max" else AvgPool2d
        self.op = pool(pool_h, pool_w, stride, pad, exact=exact)

    def forward(self, x: Any) -> Any:
        return self.op.forward(x)

    def backward(self, dout: Any) -> Any:
        return self.op.backward(dout)

    def kink_state(self) -> Any:
        """Which entry of each window wins (max mode; empty for avg): for gradient checks."""
        if self.mode == "max":
            return self.op.kink_state()
        return np.zeros(0)
