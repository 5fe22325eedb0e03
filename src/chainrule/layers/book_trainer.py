"""The book's ``common.trainer.Trainer`` and ``common.util`` helpers, for code written for the book.

:class:`BookTrainer` runs the book's loop with the book's arguments, so a chapter 6-8 script
that does ``Trainer(network, x_train, t_train, x_test, t_test, epochs=..., mini_batch_size=...,
optimizer='Adam', optimizer_param={'lr': 0.001}, evaluate_sample_num_per_epoch=1000)`` and
reads ``trainer.test_acc_list`` runs unchanged with ``BookTrainer`` in place of ``Trainer``.
It is deliberately thin: batches drawn with replacement, as in the book, from ``rng`` (when
``None``, :func:`chainrule.nn.init.default_rng`: the :func:`chainrule.seed` generator, or else
one seeded from NumPy's global state, so ``np.random.seed`` at the top of a script reproduces
the run as in the book; the batches are not the book's own draws), no checkpoints, no
divergence guard, no schedules. For those, use :class:`chainrule.training.Trainer`, which
takes the optimizer first and ``batch_size``.

:func:`shuffle_dataset` and :func:`smooth_curve` are the book's two ``common.util`` helpers
that its chapter 6 scripts import (``im2col``/``col2im`` are in :mod:`chainrule.functions.conv`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from chainrule.nn.init import default_rng
from chainrule.optim import OPTIMIZERS, Optimizer

__all__ = ["BookTrainer", "shuffle_dataset", "smooth_curve"]


class BookTrainer:
    """The book's trainer: ``max_iter = int(epochs * max(N / mini_batch_size, 1))`` steps of
    sample, ``network.gradient``, ``optimizer.update(network.params, grads)``,
    ``network.loss`` (after the update, as the book computes it).

    ``optimizer``: a name of :data:`chainrule.optim.OPTIMIZERS` (case-insensitive: ``'SGD'``,
    ``'Momentum'``, ``'Nesterov'``, ``'AdaGrad'``, ``'RMSprop'``, ``'Adam'``, ...) built with
    ``optimizer_param`` (the book's default ``{'lr': 0.01}``), or an optimizer instance.
    Every epoch (at steps ``0, iter_per_epoch, ...``) appends the accuracy on the first
    ``evaluate_sample_num_per_epoch`` samples of each set (all of them when ``None``) to
    ``train_acc_list`` and ``test_acc_list``; ``train_loss_list`` gets every step's loss.
    ``verbose`` prints the book's lines. :meth:`train` ends with the accuracy on the whole
    test set and returns it (the book's returns ``None``).

    >>> import numpy as np
    >>> from chainrule.layers import TwoLayerNet
    >>> np.random.seed(0)
    >>> x, t = np.random.rand(20, 4), np.random.randint(0, 3, 20)
    >>> net = TwoLayerNet(4, 5, 3)
    >>> trainer = BookTrainer(net, x, t, x, t, epochs=2, mini_batch_size=10,
    ...                       optimizer='Adam', optimizer_param={'lr': 0.01}, verbose=False)
    >>> acc = trainer.train()
    >>> len(trainer.train_loss_list), len(trainer.test_acc_list), 0 <= acc <= 1
    (4, 2, True)
    """

    def __init__(
        self,
        network: Any,
        x_train: Any,
        t_train: Any,
        x_test: Any,
        t_test: Any,
        epochs: float = 20,
        mini_batch_size: int = 100,
        optimizer: str | Optimizer = "SGD",
        optimizer_param: Mapping[str, Any] | None = None,
        evaluate_sample_num_per_epoch: int | None = None,
        verbose: bool = True,
        *,
        rng: np.random.Generator | None = None,
    ) -> None:
        self.network, self.verbose = network, verbose
        self.x_train, self.t_train, self.x_test, self.t_test = x_train, t_train, x_test, t_test
        if len(x_train) != len(t_train) or len(x_test) != len(t_test):
            raise ValueError(
                f"BookTrainer: {len(x_train)} training samples but {len(t_train)} labels, "
                f"{len(x_test)} test samples but {len(t_test)} labels"
            )
        self.epochs, self.batch_size = epochs, int(mini_batch_size)
        if self.batch_size <= 0:
            raise ValueError(
                f"BookTrainer: mini_batch_size must be positive, got {mini_batch_size}"
            )
        self.evaluate_sample_num_per_epoch = evaluate_sample_num_per_epoch
        self.optimizer = _make_optimizer(optimizer, optimizer_param)
        self.rng = default_rng() if rng is None else rng
        self.train_size = len(x_train)
        self.iter_per_epoch = max(self.train_size / self.batch_size, 1)
        self.max_iter = int(epochs * self.iter_per_epoch)
        self.current_iter = 0
        self.current_epoch = 0
        self.train_loss_list: list[float] = []
        self.train_acc_list: list[float] = []
        self.test_acc_list: list[float] = []

    def train_step(self) -> None:
        """One step; at an epoch boundary, also the two accuracies."""
        mask = self.rng.choice(self.train_size, self.batch_size)
        x_batch, t_batch = self.x_train[mask], self.t_train[mask]
        grads = self.network.gradient(x_batch, t_batch)
        self.optimizer.update(self.network.params, grads)
        loss = float(self.network.loss(x_batch, t_batch))
        self.train_loss_list.append(loss)
        if self.verbose:
            print(f"train loss:{loss}")
        if self.current_iter % self.iter_per_epoch == 0:
            self.current_epoch += 1
            n = self.evaluate_sample_num_per_epoch
            train_acc = float(self.network.accuracy(self.x_train[:n], self.t_train[:n]))
            test_acc = float(self.network.accuracy(self.x_test[:n], self.t_test[:n]))
            self.train_acc_list.append(train_acc)
            self.test_acc_list.append(test_acc)
            if self.verbose:
                print(
                    f"=== epoch:{self.current_epoch}, train acc:{train_acc}, "
                    f"test acc:{test_acc} ==="
                )
        self.current_iter += 1

    def train(self) -> float:
        """Run every step, then print (if ``verbose``) and return the final test accuracy."""
        for _ in range(self.max_iter):
            self.train_step()
        test_acc = float(self.network.accuracy(self.x_test, self.t_test))
        if self.verbose:
            print("=============== Final Test Accuracy ===============")
            print(f"test acc:{test_acc}")
        return test_acc


def _make_optimizer(optimizer: str | Optimizer, param: Mapping[str, Any] | None) -> Optimizer:
    if isinstance(optimizer, Optimizer):
        if param:
            raise ValueError("BookTrainer: optimizer_param goes with an optimizer name only")
        return optimizer
    cls = OPTIMIZERS.get(optimizer.lower()) if isinstance(optimizer, str) else None
    if cls is None:
        raise ValueError(
            f"BookTrainer: unknown optimizer {optimizer!r}; names: {', '.join(OPTIMIZERS)}"
        )
    return cls(**({"lr": 0.01} if param is None else dict(param)))


def shuffle_dataset(x: Any, t: Any, rng: np.random.Generator | None = None) -> tuple[Any, Any]:
    """``x`` and ``t`` in one random order, drawn from ``rng`` (when ``None``,
    :func:`chainrule.nn.init.default_rng`, which ``np.random.seed`` controls as in the book).

    >>> x, t = shuffle_dataset(np.arange(6).reshape(3, 2), np.arange(3))
    >>> sorted(t.tolist()), bool((x[:, 0] == 2 * t).all())
    ([0, 1, 2], True)
    """
    if len(x) != len(t):
        raise ValueError(f"shuffle_dataset: {len(x)} samples but {len(t)} labels")
    order = (default_rng() if rng is None else rng).permutation(len(x))
    return x[order], t[order]


def smooth_curve(x: Any) -> np.ndarray:
    """The book's smoothing of a loss curve: a normalised Kaiser window (length 11, beta 2)
    over the curve mirrored at both ends; the result has ``len(x)`` points (at least 11).

    >>> smooth_curve(np.ones(20)).round(6).tolist() == [1.0] * 20
    True
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or len(x) < 11:
        raise ValueError(f"smooth_curve: needs a 1-D curve of at least 11 points, got {x.shape}")
    window_len = 11
    s = np.r_[x[window_len - 1 : 0 : -1], x, x[-1:-window_len:-1]]
    w = np.kaiser(window_len, 2)
    y = np.convolve(w / w.sum(), s, mode="valid")
    return y[5 : len(y) - 5]
