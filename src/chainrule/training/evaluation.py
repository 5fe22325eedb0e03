"""Inference and evaluation: scores in inference mode, mean cross-entropy and accuracy.

The loss is the one log-softmax of :mod:`chainrule.functions` (:class:`~chainrule.functions.
LogSoftmax`'s forward on plain arrays), so training, evaluation and ``chainrule predict`` share
one formula; labels are validated by the same :func:`~chainrule.functions.loss.check_targets`
the losses use, so a label out of range or of the wrong shape is named, never scored.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from chainrule.backend import device_of, to_device, to_numpy
from chainrule.functions.loss import LogSoftmax, check_targets
from chainrule.tensor import Tensor
from chainrule.training.threads import blas_threads, choose_threads

__all__ = ["evaluate", "model_device", "predict_scores"]


def _takes_train_flag(model: Any) -> bool:
    try:
        return "train_flg" in inspect.signature(model.predict).parameters
    except (TypeError, ValueError):
        return False


def model_device(model: Any) -> str:
    """Where ``model``'s parameters are: ``"cpu"`` or ``"cuda"`` (``params`` dict or ``nn``)."""
    params = getattr(model, "params", None)
    if isinstance(params, dict) and params:
        return device_of(next(iter(params.values())))
    parameters = getattr(model, "parameters", None)
    if callable(parameters):
        for p in parameters():
            return device_of(p.data)
    return "cpu"


def _scores(model: Any, x: Any, train_flag: bool) -> np.ndarray:
    scores = model.predict(x, train_flg=False) if train_flag else model.predict(x)
    # An nn model returns a Tensor. (Not getattr(scores, "data", scores): a CuPy array's .data
    # is its device memory pointer.)
    return to_numpy(scores.data if isinstance(scores, Tensor) else scores)


def predict_scores(model: Any, x: np.ndarray) -> np.ndarray:
    """``model.predict(x)`` in inference mode (dropout off, batch norm on running statistics).

    ``x`` may be on the host whatever the model's device; the scores come back as NumPy."""
    from chainrule.config import eval_mode, no_grad

    x = to_device(x, model_device(model))
    with eval_mode(), no_grad():
        return _scores(model, x, _takes_train_flag(model))


def _checked_labels(t: Any, n: int) -> np.ndarray:
    t = to_numpy(t)  # labels may be on the GPU: the comparison with the scores is on the host
    if not isinstance(t, np.ndarray) or t.ndim not in (1, 2):
        raise ValueError(
            f"evaluate: labels must be class indices (N,) or one-hot rows (N, C), got "
            f"{getattr(t, 'shape', type(t).__name__)}"
        )
    if len(t) != n:
        raise ValueError(f"evaluate: {n} samples but {len(t)} labels")
    return t


def evaluate(
    model: Any,
    x: np.ndarray,
    t: np.ndarray,
    *,
    batch_size: int = 1000,
    threads: int | str | None = "auto",
) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on ``(x, t)``, in chunks of ``batch_size``.

    Runs in inference mode. The loss is ``-log_softmax(scores)[label]`` per sample, summed in
    float64; the accuracy is an exact count divided by ``N``. One-hot rows count as the class
    of their largest entry. The same weights, data and ``batch_size`` always give the same two
    numbers. ``threads``: BLAS threads while evaluating, as for :class:`Trainer` (``"auto"``
    chooses from the matrix sizes, see :mod:`chainrule.training.threads`; None leaves BLAS
    as it is, which the trainer passes since it has set the count already).

    Raises:
        ValueError: empty data, a label count that differs from the sample count, or a label
            out of range for the model's classes (the message gives the label and its index).
    """
    n = len(x)
    if n == 0:
        raise ValueError("evaluate: empty data set")
    labels = _checked_labels(t, n)
    from chainrule.config import eval_mode, no_grad

    train_flag = _takes_train_flag(model)
    device = model_device(model)  # batches go there; the scores come back to the host
    log_softmax = LogSoftmax()
    loss_sum = 0.0
    correct = 0
    count, _ = choose_threads(threads, model, batch_size)
    quiet = np.errstate(over="ignore", invalid="ignore", divide="ignore")
    with blas_threads(count), eval_mode(), no_grad(), quiet:
        for start in range(0, n, batch_size):
            xb = to_device(x[start : start + batch_size], device)
            scores = _scores(model, xb, train_flag).reshape(len(xb), -1)
            tb, one_hot = check_targets("evaluate", scores, labels[start : start + batch_size])
            if one_hot:
                tb = tb.argmax(axis=1)
            correct += int(np.count_nonzero(scores.argmax(axis=1) == tb))
            picked = log_softmax.forward(scores)[np.arange(len(tb)), tb]
            loss_sum -= float(np.sum(picked, dtype=np.float64))
    return loss_sum / n, correct / n
