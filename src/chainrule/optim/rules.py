"""The update rules of chapter 6 of the book, plus AdamW: one short class each.

Each class lists its hyperparameters and state slots and writes ``_update`` for one parameter
with in-place ufuncs through the scratch array ``w`` (see :mod:`chainrule.optim.base`). Every
constructor takes the book's order, ``Adam(lr=1e-3)`` or ``Adam(1e-3)``, then
``update(params, grads)``, and PyTorch's, ``Adam(model.parameters(), lr=1e-3)`` (or
``Adam(model.parameters(), 1e-3)``), then ``step()``/``zero_grad()``. ``lr=None`` is the
book's default for the rule (:attr:`~chainrule.optim.base.Optimizer.book_lr`).

The PyTorch equivalences claimed below are tested against ``torch.optim`` in float64
(``tests/test_optim_torch.py``); pass PyTorch's ``eps`` to compare (our defaults are the
book's ``1e-7``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .base import Optimizer, Params, _check_non_negative, _check_unit, _Choice, _Hyper

__all__ = [
    "OPTIMIZERS",
    "SGD",
    "AdaGrad",
    "Adam",
    "AdamW",
    "Momentum",
    "Nesterov",
    "RMSprop",
    "optimizer_from_name",
]

First = Params | float | None  # params (PyTorch's order) or lr (the book's)


class SGD(Optimizer):
    """Stochastic gradient descent: :math:`W \\leftarrow W - \\eta \\, g`.

    Equals PyTorch's ``SGD(params, lr)``.

    >>> params, grads = {"W": np.array([1.0, 2.0])}, {"W": np.array([0.5, -1.0])}
    >>> SGD(0.1).update(params, grads)
    >>> params["W"]
    array([0.95, 2.1 ])
    """

    elementwise = True
    default_lr = 0.1
    book_lr = 0.01

    def __init__(
        self,
        params_or_lr: First = None,
        /,
        lr: float | None = None,
        *,
        params: Params | None = None,
    ) -> None:
        super().__init__(params_or_lr, params=params, lr=lr)

    def _update(self, p, g, s, w):
        # Through the scratch array rather than ``p -= self.lr * g``: no allocation, and
        # measured no slower on the small net's shapes (benchmarks/optim_update.py).
        np.multiply(g, self.lr, out=w)  # w = lr * g
        p -= w  # W -= lr * g


class Momentum(Optimizer):
    """SGD with momentum (the book's form: the velocity includes the learning rate).

    .. math::
        v \\leftarrow \\mu v - \\eta g, \\qquad W \\leftarrow W + v

    While ``lr`` is constant this equals PyTorch's ``SGD(params, lr, momentum=mu)``, whose
    buffer is :math:`-v / \\eta` (after a change of ``lr`` the two differ: here the old
    velocity keeps the old rate).

    >>> params = {"W": np.array([1.0])}
    >>> opt = Momentum(lr=0.1, momentum=0.5)
    >>> for _ in range(2):
    ...     opt.update(params, {"W": np.array([1.0])})
    >>> params["W"]  # v = -0.1, then -0.15
    array([0.75])
    """

    elementwise = True
    default_lr = 0.01
    book_lr = 0.01
    hyper_names = ("lr", "momentum")
    slot_names = ("v",)
    momentum = _Hyper(_check_unit)

    def __init__(
        self,
        params_or_lr: First = None,
        /,
        lr: float | None = None,
        momentum: float = 0.9,
        *,
        params: Params | None = None,
    ) -> None:
        super().__init__(params_or_lr, params=params, lr=lr, momentum=momentum)

    def _update(self, p, g, s, w):
        v = s["v"]
        v *= self.momentum
        np.multiply(g, self.lr, out=w)
        v -= w  # v = mu * v - lr * g
        p += v  # W += v


class Nesterov(Optimizer):
    """Nesterov's accelerated gradient, in the form that needs only the gradient at W.

    .. math::
        v \\leftarrow \\mu v - \\eta g, \\qquad W \\leftarrow W + \\mu v - \\eta g

    (with the new ``v``), which is :math:`W + \\mu^2 v_{old} - (1 + \\mu)\\eta g`.
    Note: the book's listing adds :math:`\\mu^2` times the *updated* velocity
    instead of the old one; this class uses the old one, as in Bengio et al. (2013),
    and so equals PyTorch's ``SGD(params, lr, momentum=mu, nesterov=True)`` while ``lr`` is
    constant (PyTorch writes it with the buffer :math:`b = -v / \\eta`:
    :math:`b \\leftarrow \\mu b + g`, :math:`W \\leftarrow W - \\eta (g + \\mu b)`).

    >>> params = {"W": np.array([1.0])}
    >>> Nesterov(lr=0.1, momentum=0.5).update(params, {"W": np.array([1.0])})
    >>> params["W"]  # v = -0.1; W += 0.5 * v - 0.1
    array([0.85])
    """

    elementwise = True
    default_lr = 0.01
    book_lr = 0.01
    hyper_names = ("lr", "momentum")
    slot_names = ("v",)
    momentum = _Hyper(_check_unit)

    def __init__(
        self,
        params_or_lr: First = None,
        /,
        lr: float | None = None,
        momentum: float = 0.9,
        *,
        params: Params | None = None,
    ) -> None:
        super().__init__(params_or_lr, params=params, lr=lr, momentum=momentum)

    def _update(self, p, g, s, w):
        v = s["v"]
        v *= self.momentum
        np.multiply(g, self.lr, out=w)
        v -= w  # v = mu * v - lr * g
        p -= w
        np.multiply(v, self.momentum, out=w)
        p += w  # W += mu * v - lr * g


class AdaGrad(Optimizer):
    """AdaGrad: a per-element learning rate that shrinks with the summed squared gradients.

    .. math::
        h \\leftarrow h + g \\odot g, \\qquad
        W \\leftarrow W - \\eta \\, \\frac{g}{\\sqrt{h} + \\epsilon}

    ``eps`` is added outside the root, as in the book and in PyTorch: this equals PyTorch's
    ``Adagrad(params, lr, eps=eps)`` (``lr_decay=0``, ``initial_accumulator_value=0``).
    ``eps`` defaults to the book's ``1e-7`` (PyTorch: ``1e-10``).

    >>> params = {"W": np.array([1.0])}
    >>> AdaGrad(lr=0.1, eps=0.0).update(params, {"W": np.array([4.0])})
    >>> params["W"]  # 1 - 0.1 * 4 / sqrt(16)
    array([0.9])
    """

    elementwise = True
    default_lr = 0.01
    book_lr = 0.01
    hyper_names = ("lr", "eps")
    slot_names = ("h",)
    eps = _Hyper(_check_non_negative)

    def __init__(
        self,
        params_or_lr: First = None,
        /,
        lr: float | None = None,
        eps: float = 1e-7,
        *,
        params: Params | None = None,
    ) -> None:
        super().__init__(params_or_lr, params=params, lr=lr, eps=eps)

    def _update(self, p, g, s, w):
        h = s["h"]
        np.multiply(g, g, out=w)
        h += w  # h += g * g
        np.sqrt(h, out=w)
        w += self.eps
        np.divide(g, w, out=w)
        w *= self.lr
        p -= w  # W -= lr * g / (sqrt(h) + eps)


class RMSprop(Optimizer):
    """RMSprop: AdaGrad with an exponential moving average in place of the sum.

    .. math::
        h \\leftarrow \\rho h + (1 - \\rho) \\, g \\odot g, \\qquad
        W \\leftarrow W - \\eta \\, \\frac{g}{\\sqrt{h} + \\epsilon}

    ``decay_rate`` is :math:`\\rho`. Equals PyTorch's ``RMSprop(params, lr, alpha=rho,
    eps=eps)`` (not centered, no momentum). ``eps`` defaults to the book's ``1e-7``
    (PyTorch: ``1e-8``).

    >>> params = {"W": np.array([1.0])}
    >>> RMSprop(lr=0.1, decay_rate=0.75, eps=0.0).update(params, {"W": np.array([2.0])})
    >>> params["W"]  # h = 0.25 * 4 = 1: W = 1 - 0.1 * 2 / 1
    array([0.8])
    """

    elementwise = True
    default_lr = 0.001
    book_lr = 0.01
    hyper_names = ("lr", "decay_rate", "eps")
    slot_names = ("h",)
    decay_rate = _Hyper(_check_unit)
    eps = _Hyper(_check_non_negative)

    def __init__(
        self,
        params_or_lr: First = None,
        /,
        lr: float | None = None,
        decay_rate: float = 0.99,
        eps: float = 1e-7,
        *,
        params: Params | None = None,
    ) -> None:
        super().__init__(params_or_lr, params=params, lr=lr, decay_rate=decay_rate, eps=eps)

    def _update(self, p, g, s, w):
        h = s["h"]
        h *= self.decay_rate
        np.multiply(g, g, out=w)
        w *= 1.0 - self.decay_rate
        h += w  # h = rho * h + (1 - rho) * g * g
        np.sqrt(h, out=w)
        w += self.eps
        np.divide(g, w, out=w)
        w *= self.lr
        p -= w  # W -= lr * g / (sqrt(h) + eps)


class Adam(Optimizer):
    """Adam (Kingma & Ba, Algorithm 1), with bias-corrected moment estimates.

    .. math::
        m \\leftarrow \\beta_1 m + (1 - \\beta_1) g, \\qquad
        v \\leftarrow \\beta_2 v + (1 - \\beta_2) g \\odot g,

        \\hat m = m / (1 - \\beta_1^t), \\qquad \\hat v = v / (1 - \\beta_2^t), \\qquad
        W \\leftarrow W - \\eta \\, \\frac{\\hat m}{\\sqrt{\\hat v} + \\epsilon}

    ``variant="pytorch"`` (the default) is this formula, PyTorch's ``Adam(params, lr,
    betas=(beta1, beta2), eps=eps)``. ``variant="book"`` is the book's ``Adam``
    (``common/optimizer.py``): it folds both corrections into the learning rate and adds
    ``eps`` to the uncorrected root,

    .. math::
        \\eta_t = \\eta \\sqrt{1 - \\beta_2^t} / (1 - \\beta_1^t), \\qquad
        W \\leftarrow W - \\eta_t \\, \\frac{m}{\\sqrt{v} + \\epsilon},

    which is the formula above with :math:`\\epsilon / \\sqrt{1 - \\beta_2^t}` in place of
    :math:`\\epsilon`: a larger epsilon in the first steps (31.6 times at :math:`t = 1` with
    :math:`\\beta_2 = 0.999`), so where :math:`v` is tiny the book's early steps are smaller.
    Use it to reproduce the book's figures. ``eps`` defaults to the book's ``1e-7``
    (PyTorch: ``1e-8``). ``t`` counts steps of the whole optimizer.

    >>> params = {"W": np.array([1.0])}
    >>> Adam(lr=0.1, eps=0.0).update(params, {"W": np.array([3.0])})
    >>> params["W"]  # the first step has size lr whatever the gradient
    array([0.9])
    >>> Adam(lr=0.1, variant="book")
    Adam(lr=0.1, beta1=0.9, beta2=0.999, eps=1e-07, variant='book')
    """

    elementwise = True
    default_lr = 0.001
    book_lr = 0.001
    hyper_names: tuple[str, ...] = ("lr", "beta1", "beta2", "eps")
    option_names: tuple[str, ...] = ("variant",)
    slot_names = ("m", "v")
    beta1 = _Hyper(_check_unit)
    beta2 = _Hyper(_check_unit)
    eps = _Hyper(_check_non_negative)
    variant = _Choice("pytorch", "book")

    def __init__(
        self,
        params_or_lr: First = None,
        /,
        lr: float | None = None,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-7,
        *,
        params: Params | None = None,
        variant: str = "pytorch",
    ) -> None:
        hyper = {"lr": lr, "beta1": beta1, "beta2": beta2, "eps": eps, "variant": variant}
        super().__init__(params_or_lr, params=params, **hyper)

    def _update(self, p, g, s, w):
        m, v = s["m"], s["v"]
        m *= self.beta1
        np.multiply(g, 1.0 - self.beta1, out=w)
        m += w  # m = beta1 * m + (1 - beta1) * g
        v *= self.beta2
        np.multiply(g, g, out=w)
        w *= 1.0 - self.beta2
        v += w  # v = beta2 * v + (1 - beta2) * g * g
        correction1 = 1.0 - self.beta1**self.t
        correction2 = 1.0 - self.beta2**self.t
        np.sqrt(v, out=w)
        if self.variant == "book":
            w += self.eps  # w = sqrt(v) + eps
            np.divide(m, w, out=w)
            w *= self.lr * math.sqrt(correction2) / correction1
        else:
            w /= math.sqrt(correction2)
            w += self.eps  # w = sqrt(v_hat) + eps
            np.divide(m, w, out=w)
            w *= self.lr / correction1
        p -= w  # W -= lr * m_hat / (sqrt(v_hat) + eps), or the book's lr_t * m / (sqrt(v) + eps)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter).

    .. math::
        W \\leftarrow W (1 - \\eta \\lambda), \\quad \\text{then the Adam step on } g

    The decay acts on the weights directly rather than through the gradient, so it
    is not rescaled by Adam's :math:`1 / \\sqrt{\\hat v}`. As in PyTorch the decay is
    multiplied by the learning rate: this equals PyTorch's ``AdamW(params, lr,
    betas=(beta1, beta2), eps=eps, weight_decay=wd)``. ``weight_decay`` is :math:`\\lambda`.
    The book has no AdamW, so it has no ``variant``.

    >>> params = {"W": np.array([1.0])}
    >>> AdamW(lr=0.1, eps=0.0, weight_decay=0.5).update(params, {"W": np.array([3.0])})
    >>> params["W"]  # 1 * (1 - 0.05) - 0.1
    array([0.85])
    """

    elementwise = True
    default_lr = 0.001
    book_lr = 0.001
    hyper_names = ("lr", "beta1", "beta2", "eps", "weight_decay")
    option_names = ()
    weight_decay = _Hyper(_check_non_negative)
    variant = _Choice("pytorch")

    def __init__(
        self,
        params_or_lr: First = None,
        /,
        lr: float | None = None,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-7,
        weight_decay: float = 0.01,
        *,
        params: Params | None = None,
    ) -> None:
        hyper = {"lr": lr, "beta1": beta1, "beta2": beta2, "eps": eps, "weight_decay": weight_decay}
        Optimizer.__init__(self, params_or_lr, params=params, **hyper)

    def _update(self, p, g, s, w):
        p *= 1.0 - self.lr * self.weight_decay  # W = W * (1 - lr * wd)
        super()._update(p, g, s, w)


# --------------------------------------------------------------------------- lookup by name

#: name -> class, in the order a CLI lists them; each class carries its ``default_lr``.
OPTIMIZERS: dict[str, type[Optimizer]] = {
    "sgd": SGD,
    "momentum": Momentum,
    "nesterov": Nesterov,
    "adagrad": AdaGrad,
    "rmsprop": RMSprop,
    "adam": Adam,
    "adamw": AdamW,
}


def optimizer_from_name(name: str, params: Params | None = None, **kwargs: Any) -> Optimizer:
    """Build an optimizer from its lowercase name (case-insensitive), e.g. for a CLI.

    ``kwargs`` go to the constructor (``lr=...``, ...); without ``lr`` the class's
    :attr:`~chainrule.optim.base.Optimizer.default_lr` is used.

    >>> optimizer_from_name("adam")
    Adam(lr=0.001, beta1=0.9, beta2=0.999, eps=1e-07)
    >>> optimizer_from_name("SGD").lr
    0.1
    """
    cls = OPTIMIZERS.get(name.strip().lower()) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f"unknown optimizer {name!r}; valid names: {', '.join(OPTIMIZERS)}")
    if kwargs.get("lr") is None:
        kwargs["lr"] = cls.default_lr
    return cls(params=params, **kwargs)
