"""Element-wise functions and activations: exp, log, sqrt, abs, sigmoid, ReLU, tanh, leaky ReLU,
the max/min gates, where and clip.

Kinks (ReLU at 0, abs at 0, the max gate at a tie, clip at its bounds) follow one rule each,
stated in the class docstring. Gradient checks near a kink are unreliable: see
:mod:`chainrule.gradcheck`, which detects inputs within ``h`` of one. Classes with a kink expose
``kink_state()``: an array that takes a different value on each side of the kink (after
``forward``), so a gradient check can tell when a perturbation crossed one.

Outside their domain ``log``, ``sqrt`` and ``exp`` give IEEE arithmetic's answer — ``log(0) =
-inf``, ``log(-1) = sqrt(-1) = nan``, ``exp(1000) = inf`` — as PyTorch does, with a
:class:`~chainrule.functions.checks.NonFiniteWarning` that names the op (a mask may want
``-inf``; a loss never gets it silently: the losses refuse non-finite input).
"""

from __future__ import annotations

from typing import Any

from chainrule.backend import get_array_module
from chainrule.function import Function
from chainrule.functions.arithmetic import _shape, sum_to
from chainrule.functions.checks import ieee
from chainrule.tensor import Tensor


class Exp(Function):
    """``out = exp(x)``.

    **Backward:** ``dx = dout * out``.
    """

    differentiable_backward = True

    def forward(self, x: Any) -> Any:
        self.out = ieee("exp", get_array_module(x).exp, x)
        return self.out

    def backward(self, dout: Any) -> Any:
        return dout * self.out


class Log(Function):
    """``out = log(x)`` (natural logarithm), for ``x > 0``.

    **Backward:** ``dx = dout / x``.
    """

    differentiable_backward = True

    def forward(self, x: Any) -> Any:
        self.x = x
        return ieee("log", get_array_module(x).log, x)

    def backward(self, dout: Any) -> Any:
        return dout / self.x


class Sqrt(Function):
    """``out = sqrt(x)``, for ``x > 0``.

    **Backward:** ``dx = dout / (2 * out)``.
    """

    differentiable_backward = True

    def forward(self, x: Any) -> Any:
        self.out = ieee("sqrt", get_array_module(x).sqrt, x)
        return self.out

    def backward(self, dout: Any) -> Any:
        return dout / (2 * self.out)


class Abs(Function):
    """``out = |x|``.

    **Backward:** ``dx = dout * sign(x)``; at the kink ``x = 0`` the gradient is 0.
    """

    differentiable_backward = True

    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        self.sign = xp.sign(x)
        return xp.abs(x)

    def backward(self, dout: Any) -> Any:
        return dout * self.sign

    def kink_state(self) -> Any:
        return self.sign


class Sigmoid(Function):
    """``out = 1 / (1 + exp(-x))``, computed without overflow for any finite ``x``.

    **Backward:** ``dx = dout * out * (1 - out)``.

    >>> float(Sigmoid().forward(0.0))
    0.5
    """

    differentiable_backward = True

    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        # exp(-|x|) is in (0, 1]: it can underflow to 0 but never overflow, and picking the
        # algebraically equal form per sign keeps full relative precision in both tails.
        z = xp.exp(-xp.abs(x))
        self.out = xp.where(x >= 0, 1 / (1 + z), z / (1 + z))
        return self.out

    def backward(self, dout: Any) -> Any:
        return dout * (1 - self.out) * self.out


class Tanh(Function):
    """``out = tanh(x)``.

    **Backward:** ``dx = dout * (1 - out**2)``.
    """

    differentiable_backward = True

    def forward(self, x: Any) -> Any:
        self.out = get_array_module(x).tanh(x)
        return self.out

    def backward(self, dout: Any) -> Any:
        return dout * (1 - self.out * self.out)


class Relu(Function):
    """``out = max(x, 0)`` (the book's ``Relu``; ``mask`` marks ``x <= 0``).

    **Backward:** ``dx = dout`` where ``x > 0``, else 0. At the kink ``x = 0`` the gradient is
    0 (the subgradient the book uses). ``dout`` is never modified.

    >>> import numpy as np
    >>> r = Relu(); r.forward(np.array([-1.0, 0.0, 2.0]))
    array([0., 0., 2.])
    >>> r.backward(np.array([5.0, 5.0, 5.0]))
    array([0., 0., 5.])
    """

    differentiable_backward = True

    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        self.keep = xp.asarray(x) > 0  # where the gradient passes; the book's mask is ~keep
        return xp.maximum(x, 0)

    def backward(self, dout: Any) -> Any:
        return dout * self.keep

    @property
    def mask(self) -> Any:
        """The book's ``mask``: ``True`` where ``x <= 0`` (the gradient stops there)."""
        return ~self.keep

    def kink_state(self) -> Any:
        return self.keep


class LeakyRelu(Function):
    """``out = x`` where ``x > 0``, else ``slope * x``.

    **Backward:** ``dx = dout`` where ``x > 0``, else ``slope * dout`` (slope at ``x = 0``).
    """

    differentiable_backward = True

    def __init__(self, slope: float = 0.01):
        self.slope = slope

    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        self.local = xp.where(x > 0, 1.0, self.slope).astype(x.dtype, copy=False)
        return x * self.local

    def backward(self, dout: Any) -> Any:
        return dout * self.local

    def kink_state(self) -> Any:
        return self.local


class Maximum(Function):
    """The max gate: ``out = max(x, y)`` element-wise (broadcasting).

    **Backward:** the gradient goes to the larger input; at a tie ``x == y`` it is split
    equally (``dout / 2`` each), which conserves the total gradient and matches the central
    difference.

    >>> g = Maximum(); float(g.forward(3.0, 5.0))
    5.0
    >>> [float(d) for d in g.backward(2.0)]
    [0.0, 2.0]
    """

    differentiable_backward = True

    def _wins(self, x: Any, y: Any) -> Any:
        return x > y

    def forward(self, x: Any, y: Any) -> Any:
        xp = get_array_module(x, y)
        self.x_shape, self.y_shape = _shape(x), _shape(y)
        self.diff = xp.asarray(x) - y
        wins = self._wins(x, y)
        # x's share of dout: 1 where it wins, 1/2 at a tie, 0 where it loses.
        self.share = (wins + 0.5 * (self.diff == 0)).astype(self.diff.dtype, copy=False)
        return xp.where(wins, x, y)

    def backward(self, dout: Any) -> tuple[Any, Any]:
        dx = dout * self.share
        return sum_to(dx, self.x_shape), sum_to(dout - dx, self.y_shape)

    def kink_state(self) -> Any:
        return self.share


class Minimum(Maximum):
    """The min gate: ``out = min(x, y)``; the gradient goes to the smaller input.

    **Backward:** as :class:`Maximum` with the comparison reversed (ties split equally).
    """

    def _wins(self, x: Any, y: Any) -> Any:
        return x < y


class Where(Function):
    """``out = where(condition, x, y)`` with a constant boolean ``condition``.

    **Backward:** ``dx = dout`` where the condition holds, ``dy = dout`` elsewhere.
    """

    differentiable_backward = True

    def __init__(self, condition: Any):
        self.condition = condition.data if isinstance(condition, Tensor) else condition

    def forward(self, x: Any, y: Any) -> Any:
        xp = get_array_module(x, y)
        self.x_shape, self.y_shape = _shape(x), _shape(y)
        self.condition = xp.asarray(self.condition, dtype=bool)
        return xp.where(self.condition, x, y)

    def backward(self, dout: Any) -> tuple[Any, Any]:
        dx = dout * self.condition
        return sum_to(dx, self.x_shape), sum_to(dout - dx, self.y_shape)


class Clip(Function):
    """``out = clip(x, low, high)``.

    **Backward:** ``dx = dout`` where ``low <= x <= high``, else 0 (the bounds pass gradient).
    """

    differentiable_backward = True

    def __init__(self, low: float | None, high: float | None):
        self.low, self.high = low, high

    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        inside = xp.ones(_shape(x), dtype=bool)
        if self.low is not None:
            inside &= x >= self.low
        if self.high is not None:
            inside &= x <= self.high
        self.inside = inside
        return xp.clip(x, self.low, self.high)

    def backward(self, dout: Any) -> Any:
        return dout * self.inside

    def kink_state(self) -> Any:
        return self.inside


def exp(x: Any) -> Tensor:
    return Exp()(x)


def log(x: Any) -> Tensor:
    return Log()(x)


def sqrt(x: Any) -> Tensor:
    return Sqrt()(x)


def abs(x: Any) -> Tensor:
    return Abs()(x)


def sigmoid(x: Any) -> Tensor:
    return Sigmoid()(x)


def tanh(x: Any) -> Tensor:
    return Tanh()(x)


def relu(x: Any) -> Tensor:
    return Relu()(x)


def leaky_relu(x: Any, slope: float = 0.01) -> Tensor:
    return LeakyRelu(slope)(x)


def maximum(x: Any, y: Any) -> Tensor:
    return Maximum()(x, y)


def minimum(x: Any, y: Any) -> Tensor:
    return Minimum()(x, y)


def where(condition: Any, x: Any, y: Any) -> Tensor:
    return Where(condition)(x, y)


def clip(x: Any, low: float | None = None, high: float | None = None) -> Tensor:
    return Clip(low, high)(x)
