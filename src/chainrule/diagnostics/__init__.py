"""Learner diagnostics: is the network learning well, layer by layer?

What the GUIs of other frameworks show, as numbers you can keep and pictures you can look at.
A :class:`Diagnostics` recorder works with the book-style models (a ``params`` dict and an
ordered ``layers`` dict: :class:`~chainrule.layers.TwoLayerNet`, ``MultiLayerNet``,
``SimpleConvNet``, ``DeepConvNet``) and with ``nn`` models (parameters by their dotted names,
``"layers.0.W"``; activations are the ``nn.ReLU``/``Sigmoid``/``Tanh``/``LeakyReLU`` modules,
by their dotted names), and records, at the steps it is asked to:

* per parameter: the **gradient norm** ``||g||``, the **weight norm** ``||W||`` and the
  **update/weight ratio** ``||ΔW|| / ||W||`` of the step just taken (``W`` before the
  update). CS231n's rule of thumb: about ``1e-3``; much lower and the learning rate is too
  small, much higher and it is too large.
* per ReLU layer, from the mini-batch of the step (the layer's ``keep`` after forward): the
  **dead fraction**, units that are zero for every sample of the batch (they pass no gradient
  to their weights), and the **active fraction**, entries that are positive. A unit is one
  output of the layer for one sample: a neuron of an affine layer, one position of one
  channel of a convolution.
* per activation layer (ReLU, sigmoid, tanh, leaky ReLU): a **histogram** of its output on a
  fixed probe batch, in inference mode, with fixed bins so that histograms of different times
  can be compared. ReLU outputs are binned on a log scale and their zeros counted apart.

All norms are L2 norms over the whole array, ``np.linalg.norm(a)``.

By hand, on a model and a batch::

    from chainrule.diagnostics import Diagnostics
    from chainrule.layers import TwoLayerNet
    from chainrule.optim import SGD

    net, opt, diag = TwoLayerNet(784, 50, 10), SGD(lr=0.1), Diagnostics()
    loss, grads = net.loss_and_grads(x_batch, t_batch)   # forward + backward
    before = {k: v.copy() for k, v in net.params.items()}
    opt.update(net.params, grads)
    diag.record(net, grads, before=before, x=x_batch)    # x: also take histograms
    diag.history["update_ratio/W1"]                      # [0.0123...]
    diag.to_json("diag/diagnostics.json")
    diag.plot("diag")                                    # grad_norms.png, update_ratios.png, ...

With a :class:`~chainrule.training.Trainer`, pass ``on_step=diag.on_step``: it records every
``every`` steps and at the last one (copying the parameters only on the step before a
recorded one, so the cost is a few array norms every ``every`` steps), and takes histograms
after the first step of the run, at the end of every epoch and at the last step.
``chainrule train --diagnostics DIR`` does this and writes the JSON and the pictures.

The recorded numbers are in :attr:`Diagnostics.history`, a dict of lists of equal length, one
entry per recorded step: ``iteration``, ``epoch``, ``lr`` and ``grad_norm/<param>``,
``weight_norm/<param>``, ``update_ratio/<param>``, ``dead_fraction/<layer>``,
``active_fraction/<layer>``. A value that is unknown (no copy of the parameters before the
update, a zero weight norm, a non-finite number) is ``None``. Histograms are in
:attr:`Diagnostics.histograms`, their bin edges in :attr:`Diagnostics.bins`.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.backend import to_numpy
from chainrule.diagnostics.plots import UPDATE_RATIO_GUIDE
from chainrule.serialization import atomic_write
from chainrule.tensor import Tensor

__all__ = ["FORMAT_NAME", "PLOT_FILES", "Diagnostics", "activation_layers", "model_params"]

FORMAT_NAME = "chainrule-diagnostics"
FORMAT_VERSION = 1
PLOT_FILES = ("grad_norms.png", "update_ratios.png", "dead_relu.png", "activations.png")


def _kinds() -> tuple[tuple[type, str], ...]:
    """(class, kind) of every activation, the book's layer and the ``nn`` module alike, from
    :data:`chainrule.activations.ACTIVATIONS` (which also holds each kind's histogram bins)."""
    from chainrule.activations import ACTIVATIONS

    return tuple(
        (cls, name) for name, act in ACTIVATIONS.items() for cls in (act.layer, act.module)
    )


def activation_layers(model: Any) -> list[tuple[str, Any, str]]:
    """``(name, layer, kind)`` of every activation layer of ``model``, in order.

    The book's networks: the layers of ``model.layers`` (``"Relu1"``, ...); ``nn`` models:
    every activation module, by its dotted name (``"layers.1"``). ``kind`` is the activation's
    name in :data:`chainrule.activations.ACTIVATIONS` (``"relu"``, ``"sigmoid"``, ``"tanh"``,
    ``"leaky_relu"``).
    """
    layers = getattr(model, "layers", None)
    if isinstance(layers, Mapping):
        named = [(str(name), layer) for name, layer in layers.items()]
    elif callable(getattr(model, "named_modules", None)):
        named = list(model.named_modules())
    else:
        return []
    kinds = _kinds()
    found = []
    for name, layer in named:
        kind = next((kind for cls, kind in kinds if isinstance(layer, cls)), None)
        if kind is not None:
            found.append((name, layer, kind))
    return found


def model_params(model: Any) -> dict[str, Any]:
    """Name -> array of every parameter: ``model.params``, or an ``nn`` model's
    ``named_parameters()`` (the arrays the optimizer updates)."""
    params = getattr(model, "params", None)
    if isinstance(params, Mapping):
        return dict(params)
    return {name: p.data for name, p in model.named_parameters()}


def _number(value: Any) -> float | None:
    """A JSON-able float, or None for a non-finite value."""
    value = float(value)
    return value if math.isfinite(value) else None


def _norm(a: Any) -> float:
    # A diverging run has huge or non-finite values: their norm is recorded as None, and
    # NumPy's overflow warnings are silenced by the callers (np.errstate).
    return float(np.linalg.norm(to_numpy(a)))  # on the host: a GPU array is copied over


_QUIET: dict[str, Any] = {"over": "ignore", "invalid": "ignore", "divide": "ignore"}


class Diagnostics:
    """Records gradient norms, update/weight ratios, dead ReLUs and activation histograms.

    Args:
        every: with :meth:`on_step`, record every ``every`` steps (and at the last step).
        probe_size: with :meth:`on_step`, histograms are taken on the first ``probe_size``
            samples of the trainer's evaluation set (the fixed training subset): the same
            samples every time.
        probe_batch_size: rows per forward pass when taking histograms.
    """

    def __init__(self, every: int = 50, *, probe_size: int = 500, probe_batch_size: int = 250):
        for name, value in (
            ("every", every),
            ("probe_size", probe_size),
            ("probe_batch_size", probe_batch_size),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"Diagnostics: {name} must be a positive integer, got {value!r}")
        self.every = int(every)
        self.probe_size = int(probe_size)
        self.probe_batch_size = int(probe_batch_size)
        self.history: dict[str, list[Any]] = {"iteration": [], "epoch": [], "lr": []}
        #: One entry per histogram time: ``iteration``, ``epoch`` and ``layers``, a dict of
        #: layer name to ``{"kind", "counts", "zeros", "total"}`` (counts per bin of
        #: :attr:`bins` ``[kind]``; ``zeros``: exact zeros, counted apart for ReLU only).
        self.histograms: list[dict[str, Any]] = []
        from chainrule.activations import ACTIVATIONS

        self.bins: dict[str, list[float]] = {k: list(a.bins) for k, a in ACTIVATIONS.items()}
        #: Seconds spent in :meth:`on_step` (recording, histograms and copies included).
        self.seconds = 0.0
        self._before: dict[str, np.ndarray] | None = None
        self._before_iteration: int | None = None
        self._probe: np.ndarray | None = None
        self._last_step: int | None = None
        self._outputs: dict[str, Any] = {}  # the last output of each watched nn activation
        self._watched: set[int] = set()

    # ---- recording

    def _append(self, key: str, value: Any) -> None:
        column = self.history.get(key)
        if column is None:  # a key first seen now: None for the earlier rows
            column = self.history[key] = [None] * (len(self.history["iteration"]) - 1)
        column.append(value)

    def record(
        self,
        model: Any,
        grads: Mapping[str, Any] | None = None,
        *,
        before: Mapping[str, Any] | None = None,
        iteration: int | None = None,
        epoch: float | None = None,
        lr: float | None = None,
        x: Any = None,
    ) -> None:
        """Record one row of :attr:`history` for ``model`` as it is now.

        Call it after ``model.loss_and_grads(x, t)`` (the ReLU layers then hold that batch's
        pattern) and, for update ratios, after the update with ``before``: copies of
        ``model.params`` taken just before it. ``grads``: the gradients of the step (gradient
        norms are left out without them). ``x``: also take activation histograms on this batch
        (:meth:`histogram`). ``iteration`` defaults to the number of rows recorded so far + 1.
        """
        with np.errstate(**_QUIET):
            self._record(model, grads, before, iteration, epoch, lr)
        if x is not None:
            self.histogram(model, x, iteration=iteration, epoch=epoch)

    def _record(
        self,
        model: Any,
        grads: Mapping[str, Any] | None,
        before: Mapping[str, Any] | None,
        iteration: int | None,
        epoch: float | None,
        lr: float | None,
    ) -> None:
        params = model_params(model)
        n = len(self.history["iteration"])
        if iteration is None:
            previous = self.history["iteration"][-1] if n else 0
            iteration = int(previous) + 1
        self.history["iteration"].append(int(iteration))
        self.history["epoch"].append(None if epoch is None else _number(epoch))
        self.history["lr"].append(None if lr is None else _number(lr))
        for key, value in params.items():
            grad = None if grads is None else grads.get(key)
            weight_norm = _norm(value)
            ratio = None
            if before is not None and key in before:
                old = to_numpy(before[key])
                old_norm = _norm(old)
                if old_norm > 0:
                    ratio = _number(_norm(np.subtract(to_numpy(value), old)) / old_norm)
            self._append(f"grad_norm/{key}", None if grad is None else _number(_norm(grad)))
            self._append(f"weight_norm/{key}", _number(weight_norm))
            self._append(f"update_ratio/{key}", ratio)
        for name, layer, kind in activation_layers(model):
            if kind != "relu":
                continue
            keep = getattr(layer, "keep", None)  # the book's Relu keeps its pattern
            if keep is None and name in self._outputs:  # an nn.ReLU's last output (watch)
                keep = to_numpy(self._outputs[name]) > 0
            if keep is None:
                continue
            keep = to_numpy(keep)
            units = keep.reshape(len(keep), -1) if keep.ndim > 1 else keep.reshape(-1, 1)
            self._append(f"dead_fraction/{name}", float(1.0 - units.any(axis=0).mean()))
            self._append(f"active_fraction/{name}", float(units.mean()))
        # Keys this row did not touch get None, so every list has one entry per row.
        for column in self.history.values():
            if len(column) < n + 1:
                column.append(None)

    def watch(self, model: Any) -> None:
        """Keep the last output of every ``nn`` ReLU module of ``model`` (no copy), so that
        :meth:`record` can count its dead units as it does with the book's ``Relu.keep``.

        :meth:`on_step` calls it by itself; call it before the forward pass when recording by
        hand. It wraps each module's ``forward`` (an instance attribute).
        """
        for name, layer, kind in activation_layers(model):
            is_module = callable(getattr(layer, "named_modules", None))
            if kind != "relu" or not is_module or id(layer) in self._watched:
                continue
            self._watched.add(id(layer))
            forward = layer.forward

            def forward_and_keep(*args: Any, _name: str = name, _f: Any = forward) -> Any:
                out = _f(*args)
                self._outputs[_name] = out.data if isinstance(out, Tensor) else out
                return out

            layer.forward = forward_and_keep

    def histogram(
        self, model: Any, x: Any, *, iteration: int | None = None, epoch: float | None = None
    ) -> dict[str, Any]:
        """Histograms of every activation layer's output for the batch ``x`` (inference mode).

        Runs ``model.predict`` on ``x`` in chunks; to see the outputs it wraps each activation
        layer's ``forward`` for the duration (an instance attribute, removed afterwards). The
        layers' saved state (ReLU ``keep``, ...) is that of ``x`` afterwards. NaN outputs count
        in ``total`` only. Appends the entry to :attr:`histograms` and returns it.
        """
        from chainrule.training import predict_scores

        found = activation_layers(model)
        edges_of = {kind: np.asarray(self.bins[kind], dtype=np.float64) for _, _, kind in found}
        counts = {name: np.zeros(len(edges_of[kind]) - 1, np.int64) for name, _, kind in found}
        zeros = dict.fromkeys(counts, 0)
        totals = dict.fromkeys(counts, 0)

        def watch(name: str, kind: str, forward: Callable[..., Any]) -> Callable[..., Any]:
            edges = edges_of[kind]

            def forward_and_count(*args: Any, **kwargs: Any) -> Any:
                out = forward(*args, **kwargs)
                values = to_numpy(out).astype(np.float64).reshape(-1)
                totals[name] += values.size
                if kind == "relu":
                    zeros[name] += int(np.count_nonzero(values == 0))
                    values = values[values > 0]
                else:
                    values = values[~np.isnan(values)]
                # Out-of-range values count in the end bins: np.histogram would drop them.
                values = np.clip(values, edges[0], edges[-1])
                counts[name] += np.histogram(values, bins=edges)[0]
                return out

            return forward_and_count

        patched = []
        try:
            for name, layer, kind in found:
                own = layer.__dict__.get("forward")
                layer.forward = watch(name, kind, layer.forward)
                patched.append((layer, own))
            with np.errstate(**_QUIET):
                for start in range(0, len(x), self.probe_batch_size):
                    predict_scores(model, x[start : start + self.probe_batch_size])
        finally:
            for layer, own in patched:
                if own is None:
                    del layer.forward
                else:
                    layer.forward = own
        entry = {
            "iteration": iteration,
            "epoch": None if epoch is None else _number(epoch),
            "layers": {
                name: {
                    "kind": kind,
                    "counts": counts[name].tolist(),
                    "zeros": int(zeros[name]),
                    "total": int(totals[name]),
                }
                for name, _, kind in found
            },
        }
        self.histograms.append(entry)
        return entry

    # ---- with a Trainer

    def due(self, iteration: int, total_iterations: int | None = None) -> bool:
        """Is step ``iteration`` (1-based) one that :meth:`on_step` records?"""
        return iteration % self.every == 0 or iteration == total_iterations

    def on_step(self, trainer: Any, iteration: int, grads: Mapping[str, Any]) -> None:
        """The :class:`~chainrule.training.Trainer` ``on_step`` callback (after each update).

        On a recorded step it records a row; on the step before one it copies the parameters
        (into buffers reused from one time to the next), which gives the update of the
        recorded step. Histograms on the probe batch after the first step of the run, at the
        end of every epoch and at the last step.
        """
        start = time.perf_counter()
        model, total = trainer.model, trainer.total_iterations
        first = self._last_step is None
        if first:
            self.watch(model)  # nn ReLUs: their outputs from the next step on
        self._last_step = iteration
        want_histogram = first or iteration % trainer.iters_per_epoch == 0 or iteration == total
        if want_histogram and self._probe is None:
            self._probe = np.asarray(trainer.x_eval[: self.probe_size])
        if self.due(iteration, total):
            before = self._before if self._before_iteration == iteration - 1 else None
            self.record(
                model,
                grads,
                before=before,
                iteration=iteration,
                epoch=trainer.epoch,
                lr=trainer.optimizer.lr,
                x=self._probe if want_histogram else None,
            )
        elif want_histogram:
            self.histogram(model, self._probe, iteration=iteration, epoch=trainer.epoch)
        if self.due(iteration + 1, total):
            params = model_params(model)
            if self._before is None or self._before.keys() != params.keys():
                self._before = {k: to_numpy(v).copy() for k, v in params.items()}
            else:
                for key, value in params.items():
                    np.copyto(self._before[key], to_numpy(value))
            self._before_iteration = iteration
        self.seconds += time.perf_counter() - start

    # ---- output

    def to_dict(self) -> dict[str, Any]:
        """Everything recorded, JSON-able."""
        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "every": self.every,
            "update_ratio_guide": UPDATE_RATIO_GUIDE,
            "history": self.history,
            "bins": self.bins,
            "histograms": self.histograms,
        }

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> Diagnostics:
        """A recorder holding what :meth:`to_json` wrote (to plot it again, for example)."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
            raise ValueError(f"{path}: not a chainrule diagnostics file")
        if data.get("version", 0) > FORMAT_VERSION:
            raise ValueError(f"{path}: diagnostics version {data['version']} is too new")
        diag = cls(every=int(data["every"]))
        diag.history = {k: list(v) for k, v in data["history"].items()}
        diag.histograms = list(data["histograms"])
        diag.bins = {k: list(v) for k, v in data["bins"].items()}
        return diag

    def to_json(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_dict` as JSON to ``path``, atomically (the folder must exist)."""
        target = Path(path)
        data = json.dumps(self.to_dict(), allow_nan=False, separators=(",", ":")).encode("utf-8")
        with atomic_write(target) as fh:
            fh.write(data + b"\n")
        return target

    def plot(self, directory: str | os.PathLike[str], *, title: str | None = None) -> list[Path]:
        """Draw the recorded numbers as PNGs in ``directory`` (created if missing).

        Writes ``grad_norms.png``, ``update_ratios.png`` (log scale, with the ``1e-3`` guide),
        ``dead_relu.png`` (only when the model has ReLU layers) and ``activations.png`` (only
        when histograms were taken), each atomically; returns the paths written.

        Raises:
            chainrule.plotting.MissingDependencyError: matplotlib is not installed.
            ValueError: nothing was recorded.
        """
        from chainrule.diagnostics import plots
        from chainrule.plotting import require_matplotlib

        require_matplotlib()
        if not self.history["iteration"]:
            raise ValueError("Diagnostics.plot: nothing was recorded")
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        written = [
            plots.plot_params(self, "grad_norm", folder / "grad_norms.png", title),
            plots.plot_params(self, "update_ratio", folder / "update_ratios.png", title),
        ]
        if any(k.startswith("dead_fraction/") for k in self.history):
            written.append(plots.plot_dead(self, folder / "dead_relu.png", title))
        if self.histograms and self.histograms[-1]["layers"]:
            written.append(plots.plot_activations(self, folder / "activations.png", title))
        return written
