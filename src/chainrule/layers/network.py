"""What the book's networks share: the trainable-model protocol and ``save_params``.

:class:`BookNetwork` is mixed into :class:`~chainrule.layers.TwoLayerNet`,
:class:`~chainrule.layers.MultiLayerNet`, :class:`~chainrule.layers.SimpleConvNet` and
:class:`~chainrule.layers.DeepConvNet`. It gives them the protocol every trainable model of
chainrule meets (the :mod:`chainrule.nn` modules meet it too), so that the trainer,
checkpoints, evaluation, diagnostics and the command line treat both engines alike:

* ``params``: name -> the live array an optimizer updates in place (``W1``, ``b1``, ...);
* ``buffers``: non-trainable state a checkpoint keeps (batch-norm running statistics; ``{}``);
* ``loss_and_grads(x, t) -> (loss, grads)``: one forward and backward pass in training mode
  (dropout on, batch statistics), the loss including any weight-decay term, ``grads`` keyed
  like ``params``;
* ``predict(x)``: class scores in inference mode;
* ``engine = "layers"``.

A network implements two hooks: ``_train_loss(x, t)`` (the training-mode forward pass ending
in ``last_layer``, returning the loss) and ``_grads()`` (collect the gradients the layers hold
after the backward walk). Labels may be class indices ``(N,)``, one-hot rows ``(N, C)`` or, as
some datasets store them, a column ``(N, 1)`` (:func:`chainrule.functions.loss.check_targets`).
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from chainrule.backend import device_of, to_device, to_numpy
from chainrule.config import Config
from chainrule.layers.dropout import Dropout

__all__ = ["BookDropout", "BookNetwork"]


class BookDropout(Dropout):
    """The book's (non-inverted) dropout: ``out = x * mask`` in training and
    ``out = x * (1 - dropout_ratio)`` in evaluation. It is chainrule's inverted
    :class:`~chainrule.layers.Dropout` times the constant ``1 - dropout_ratio`` (the same masks
    are drawn); the networks' ``inverted_dropout=False`` switch uses it to reproduce the
    book's figures. ``train_flg=None`` follows :attr:`chainrule.Config.train`.

    **Backward:** ``dx = dout * mask`` (training), ``dout * (1 - dropout_ratio)`` (evaluation).

    >>> import numpy as np
    >>> layer = BookDropout(0.25, rng=np.random.default_rng(0))
    >>> layer.forward(np.ones(3), train_flg=False)
    array([0.75, 0.75, 0.75])
    >>> sorted(set(layer.forward(np.ones(8)).tolist()))
    [0.0, 1.0]
    """

    def forward(self, x: Any, train_flg: bool | None = None) -> Any:
        out = super().forward(x, Config.train if train_flg is None else train_flg)
        return out * out.dtype.type(1.0 - self.dropout_ratio)

    def backward(self, dout: Any) -> Any:
        dx = super().backward(dout)
        return dx * dx.dtype.type(1.0 - self.dropout_ratio)


class BookNetwork:
    """Mixin: the trainable-model protocol and ``save_params``/``load_params`` for a network
    built from the book's layers (``params``, ``layers``, ``last_layer``)."""

    engine = "layers"
    params: dict[str, Any]
    layers: Any
    last_layer: Any

    @property
    def buffers(self) -> dict[str, Any]:
        """Non-trainable state a checkpoint must keep; none here."""
        return {}

    # ------------------------------------------------------------------ hooks
    def _train_loss(self, x: Any, t: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__}._train_loss is not implemented")

    def _grads(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__}._grads is not implemented")

    def _backprop(self) -> dict[str, Any]:
        """Walk the layers in reverse from the loss (``dout = 1``); return the gradients."""
        dout = self.last_layer.backward(1)
        for layer in reversed(self.layers.values()):
            dout = layer.backward(dout)
        return self._grads()

    # ------------------------------------------------------------------ protocol
    def loss_and_grads(self, x: Any, t: Any) -> tuple[float, dict[str, Any]]:
        """One forward and backward pass on a batch in training mode.

        Returns ``(loss, grads)``: the mean cross-entropy (plus the weight-decay term, if
        any) as a ``float`` and the gradients keyed like ``params``.
        """
        loss = self._train_loss(x, t)
        return float(loss), self._backprop()

    # ------------------------------------------------------------------ files
    def save_params(self, file_name: str | os.PathLike[str] = "params.ckpt") -> None:
        """Save ``params`` and ``buffers`` to ``file_name`` (the book's method, a safe file).

        The file is a chainrule checkpoint (:mod:`chainrule.serialization`): a ZIP holding
        one ``.npy`` array per parameter (``params/W1``, ...) and per buffer
        (``buffers/running_mean1``, ...), a JSON manifest with their shapes, dtypes and
        SHA-256 digests, and the class name. Nothing in it is pickled, and
        :meth:`load_params` never unpickles; the write is atomic.
        """
        from chainrule.serialization import save_checkpoint

        arrays = {f"params/{k}": to_numpy(v) for k, v in self.params.items()}
        arrays.update((f"buffers/{k}", to_numpy(v)) for k, v in self.buffers.items())
        meta = {"class": type(self).__name__, "engine": self.engine}
        save_checkpoint(file_name, arrays, meta, require_finite=False)

    def load_params(self, file_name: str | os.PathLike[str] = "params.ckpt") -> None:
        """Copy saved arrays into ``params`` and ``buffers``, in place (the layers keep seeing
        them).

        The file is one written by :meth:`save_params` or a NumPy ``.npz`` archive whose names
        are the parameter names (``W1``, ``b1``, ...; ``params/W1`` works too). It must hold
        exactly this network's names and shapes; otherwise nothing is copied and a
        ``ValueError`` says what differs. Nothing is ever unpickled: a pickle (the book's own
        ``params.pkl``) is refused with the one-line conversion to ``.npz`` to run on a file
        you trust.
        """
        arrays = _read_arrays(type(self).__name__, file_name)
        targets = {f"params/{k}": v for k, v in self.params.items()}
        targets.update((f"buffers/{k}", v) for k, v in self.buffers.items())
        arrays = {_qualified(k, targets): v for k, v in arrays.items()}
        problems = [f"missing {k}" for k in targets if k not in arrays]
        problems += [f"unexpected {k}" for k in arrays if k not in targets]
        problems += [
            f"{k} has shape {arrays[k].shape} in the file but {v.shape} in the network"
            for k, v in targets.items()
            if k in arrays and arrays[k].shape != v.shape
        ]
        if problems:
            raise ValueError(
                f"{type(self).__name__}.load_params({os.fspath(file_name)!r}): "
                + "; ".join(problems)
            )
        for key, target in targets.items():
            target[...] = to_device(arrays[key], device_of(target))


def _qualified(name: str, targets: Mapping[str, Any]) -> str:
    """``W1`` -> ``params/W1`` (or ``buffers/...``) when that is what the network holds."""
    for kind in ("params", "buffers"):
        if f"{kind}/{name}" in targets:
            return f"{kind}/{name}"
    return name


def _read_arrays(owner: str, file_name: str | os.PathLike[str]) -> dict[str, Any]:
    """The named arrays of a chainrule checkpoint or an ``.npz`` file, never unpickling."""
    from chainrule.serialization import load_checkpoint

    path = os.fspath(file_name)
    with open(path, "rb") as f:
        head = f.read(2)
    if head[:1] == b"\x80":  # the pickle protocol marker
        raise ValueError(
            f"{owner}.load_params({path!r}): this is a Python pickle (the book's format); "
            "chainrule never unpickles a file, since unpickling can run any code. If you trust "
            'it, convert it once: python -c "import pickle, numpy as np; '
            f"np.savez('params.npz', **pickle.load(open({path!r}, 'rb')))\" and load "
            "params.npz"
        )
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            is_checkpoint = "manifest.json" in zf.namelist()
        if is_checkpoint:
            return load_checkpoint(path)[0]
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise ValueError(
            f"{owner}.load_params({path!r}): not a chainrule checkpoint or .npz file ({exc})"
        ) from None
