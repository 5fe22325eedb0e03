"""Training throughput of the book's networks: chainrule against NumPy by hand and PyTorch.

Every *row* is one way of training the same network on the same batches with plain SGD:

* ``chainrule-layers``: the book's API, ``net.gradient(x, t)`` through
  :mod:`chainrule.layers`, then ``chainrule.optim.SGD(lr).update(net.params, grads)``;
* ``chainrule-autograd``: Tensors and :mod:`chainrule.functions` (or :mod:`chainrule.nn`
  modules when they exist), ``loss.backward(retain_graph=False)`` (the Trainer's walk), then
  ``SGD(lr, params=...).step()``;
* ``numpy-f64`` / ``numpy-f32``: a plain NumPy loop written here in the book's style, the
  reference for "what NumPy alone can do" (it skips the first layer's ``dx``, which nobody
  needs);
* ``pytorch``: ``torch.nn`` on the CPU with ``torch.optim.SGD``, when torch can be imported.

All rows start from the same initial weights (:func:`initial_weights`) and read the same
MNIST-shaped random data (:func:`make_data`), so they do the same arithmetic; the tests check
that the reference loop and chainrule's paths agree on the loss and every gradient.

This module imports NumPy at the top: import it only in a process whose BLAS thread count is
already set (the benchmark's worker subprocesses).
"""

from __future__ import annotations

import gc
import itertools
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: The rows, in table order. ``pytorch`` exists only where ``import torch`` works.
ROW_NAMES = ("chainrule-layers", "chainrule-autograd", "numpy-f64", "numpy-f32", "pytorch")
#: GPU rows (``--gpu``): chainrule on CuPy arrays, PyTorch on CUDA; only where a GPU is seen.
GPU_ROW_NAMES = ("chainrule-layers-cuda", "chainrule-autograd-cuda", "pytorch-cuda")

ROW_DESCRIPTIONS = {
    "chainrule-layers": "chainrule.layers (book API: net.gradient + SGD.update), float32",
    "chainrule-autograd": "chainrule Tensors + functions/nn, loss.backward + SGD.step, float32",
    "numpy-f64": "plain NumPy loop in the book's style, float64 (the book's default dtype)",
    "numpy-f32": "plain NumPy loop in the book's style, float32",
    "pytorch": "torch.nn + torch.optim.SGD on the CPU, float32",
    "chainrule-layers-cuda": "chainrule-layers on CuPy arrays (the GPU), float32",
    "chainrule-autograd-cuda": "chainrule-autograd on CuPy arrays (the GPU), float32",
    "pytorch-cuda": "pytorch on CUDA (the GPU), float32",
}


@dataclass(frozen=True)
class NetSpec:
    """One network of the issue: layer sizes, batch size, learning rate, weight init."""

    name: str
    sizes: tuple[int, ...]
    batch: int
    lr: float
    init: str  # "std:<float>" (the book's weight_init_std) or "he"
    default_steps: int

    @property
    def flops_per_step(self) -> int:
        return useful_flops(self.sizes, self.batch)


NETS = {
    # TwoLayerNet of chapter 5: 784-50-10, batch 100, lr 0.1, weights N(0, 0.01^2).
    "small": NetSpec("small", (784, 50, 10), batch=100, lr=0.1, init="std:0.01", default_steps=500),
    # A wider, deeper MLP where BLAS does most of the work. He init; lr 0.01 keeps random-label
    # training finite over long runs (lr does not change the cost of a step).
    "big": NetSpec("big", (784, 1024, 1024, 10), batch=256, lr=0.01, init="he", default_steps=12),
}


def memory_budget(spec: NetSpec, itemsize: int = 4) -> dict[str, int]:
    """Bytes a training step of ``spec`` needs at least, by kind (plain SGD: no state).

    ``parameters``: every ``W`` and ``b``; ``gradients``: one of each (every row materializes
    them before the update); ``optimizer_state``: 0 for SGD; ``activations``: every layer's
    output for one batch, before and after the ReLU (``N x hidden`` twice per hidden layer, then
    ``N x classes``). The memory probe compares a row's training memory with their sum.
    """
    params = sum(fan_in * fan_out + fan_out for fan_in, fan_out in itertools.pairwise(spec.sizes))
    activations = spec.batch * (2 * sum(spec.sizes[1:-1]) + spec.sizes[-1])
    return {
        "parameters": params * itemsize,
        "gradients": params * itemsize,
        "optimizer_state": 0,
        "activations": activations * itemsize,
    }


def useful_flops(sizes: Sequence[int], batch: int) -> int:
    """Floating-point operations of the matrix products one training step *needs*.

    ``2*M*N*K`` per product: per layer the forward ``x @ W`` and ``dW = x.T @ dout``, and
    ``dx = dout @ W.T`` for every layer but the first (the input needs no gradient). Bias adds,
    ReLU, softmax and the update are O(size) and left out.
    """
    total = 0
    for layer, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        products = 2 if layer == 0 else 3
        total += products * 2 * batch * fan_in * fan_out
    return total


# --------------------------------------------------------------------------- data and weights


def make_data(
    samples: int, dtype: Any = np.float32, seed: int = 0, features: int = 784, classes: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-shaped random data: ``x`` uniform in [0, 1) of shape (samples, 784), labels 0..9.

    Throughput does not depend on the pixel values, so real MNIST is not needed.
    """
    rng = np.random.default_rng(seed)
    x = rng.random((samples, features), dtype=np.float32).astype(dtype, copy=False)
    t = rng.integers(0, classes, size=samples).astype(np.intp)
    return x, t


def initial_weights(
    sizes: Sequence[int], init: str, seed: int = 1
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``[(W1, b1), (W2, b2), ...]`` in float64, ``W`` of shape (fan_in, fan_out), ``b`` zeros."""
    rng = np.random.default_rng(seed)
    weights = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        if init == "he":
            std = np.sqrt(2.0 / fan_in)
        elif init.startswith("std:"):
            std = float(init[4:])
        else:
            raise ValueError(f"unknown weight init {init!r}: use 'he' or 'std:<float>'")
        weights.append((std * rng.standard_normal((fan_in, fan_out)), np.zeros(fan_out)))
    return weights


def batches(x: np.ndarray, t: np.ndarray, batch: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Consecutive mini-batches as views of ``x`` and ``t`` (no copies, identical for all rows)."""
    count = len(x) // batch
    if count == 0:
        raise ValueError(f"the data pool ({len(x)} samples) is smaller than a batch ({batch})")
    return [(x[i * batch : (i + 1) * batch], t[i * batch : (i + 1) * batch]) for i in range(count)]


# --------------------------------------------------------------------------- (c) plain NumPy


def reference_gradient(
    params: Sequence[tuple[np.ndarray, np.ndarray]], x: np.ndarray, t: np.ndarray
) -> tuple[float, list[tuple[np.ndarray, np.ndarray]]]:
    """Loss and ``[(dW, db), ...]`` of an Affine-ReLU-...-Affine-SoftmaxWithLoss net, by hand.

    The book's chapter 5 written out for any depth: the forward pass keeps each layer's input,
    the backward pass walks back with ``dout``. The first layer's ``dx`` is not computed.
    """
    # forward: keep each Affine's input (for dW) and each ReLU's output (its mask is out > 0)
    inputs = []
    h = x
    last = len(params) - 1
    for i, (W, b) in enumerate(params):
        inputs.append(h)
        h = h @ W
        h += b  # h is a fresh array: adding in place saves a temporary
        if i < last:
            np.maximum(h, 0, out=h)
    # softmax with loss: subtract the row max, take cross-entropy from log-softmax
    n = len(t)
    shifted = h - h.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    total = exp.sum(axis=1, keepdims=True)
    rows = np.arange(n)
    loss = float(np.log(total[:, 0]).sum() - shifted[rows, t].sum()) / n
    # backward: dout = (y - t) / N, then each Affine (and ReLU) in reverse
    dout = exp / total
    dout[rows, t] -= 1
    dout /= n
    grads: list[tuple[np.ndarray, np.ndarray]] = []
    for i in range(last, -1, -1):
        W = params[i][0]
        grads.append((inputs[i].T @ dout, dout.sum(axis=0)))
        if i > 0:
            dout = dout @ W.T
            # ReLU backward as a multiply: boolean-mask assignment (`dout[mask] = 0`, the
            # book's spelling) is several times slower on random signs
            dout *= inputs[i] > 0
    grads.reverse()
    return loss, grads


def reference_sgd(
    params: Sequence[tuple[np.ndarray, np.ndarray]],
    grads: Sequence[tuple[np.ndarray, np.ndarray]],
    lr: float,
) -> None:
    """``W -= lr * dW`` in place, the book's SGD."""
    for (W, b), (dW, db) in zip(params, grads):
        W -= lr * dW
        b -= lr * db


# --------------------------------------------------------------------------- (a) book layers


class BookMLP:
    """The book's MultiLayerNet without its extras: Affine/Relu layers in an OrderedDict.

    Used for the big net when :class:`chainrule.layers.MultiLayerNet` is not available.
    ``params`` holds ``W1, b1, ...``; ``gradient`` walks the layers back like ``TwoLayerNet``.
    """

    def __init__(self, weights: Sequence[tuple[np.ndarray, np.ndarray]], dtype: Any):
        from chainrule.layers import Affine, Relu, SoftmaxWithLoss

        self.params: dict[str, np.ndarray] = {}
        self.layers: OrderedDict[str, Any] = OrderedDict()
        for i, (W, b) in enumerate(weights, start=1):
            self.params[f"W{i}"] = W.astype(dtype)
            self.params[f"b{i}"] = b.astype(dtype)
            self.layers[f"Affine{i}"] = Affine(self.params[f"W{i}"], self.params[f"b{i}"])
            if i < len(weights):
                self.layers[f"Relu{i}"] = Relu()
        self.last_layer = SoftmaxWithLoss()
        self.count = len(weights)

    def loss(self, x: Any, t: Any) -> Any:
        for layer in self.layers.values():
            x = layer.forward(x)
        return self.last_layer.forward(x, t)

    def gradient(self, x: Any, t: Any) -> dict[str, Any]:
        self.loss(x, t)
        dout = self.last_layer.backward(1)
        for layer in reversed(self.layers.values()):
            dout = layer.backward(dout)
        grads = {}
        for i in range(1, self.count + 1):
            affine = self.layers[f"Affine{i}"]
            grads[f"W{i}"], grads[f"b{i}"] = affine.dW, affine.db
        return grads


def _load_weights(params: dict[str, np.ndarray], weights: Sequence[tuple[Any, Any]]) -> None:
    """Copy ``weights`` into a book-style ``params`` dict in place (layers hold references)."""
    expected = {f"{p}{i}" for i in range(1, len(weights) + 1) for p in "Wb"}
    if set(params) != expected:
        raise ValueError(f"params has keys {sorted(params)}, expected {sorted(expected)}")
    for i, (W, b) in enumerate(weights, start=1):
        for key, value in ((f"W{i}", W), (f"b{i}", b)):
            if params[key].shape != value.shape:
                raise ValueError(f"{key} has shape {params[key].shape}, expected {value.shape}")
            params[key][...] = value


def build_layers_net(
    sizes: Sequence[int], weights: Sequence[tuple[np.ndarray, np.ndarray]], dtype: Any
) -> tuple[Any, str]:
    """A book-style net (``params``, ``gradient(x, t)``) holding ``weights``, and how it was made.

    Two layers: :class:`chainrule.layers.TwoLayerNet`. Deeper: ``chainrule.layers.MultiLayerNet``
    when it exists and accepts the book's arguments, else :class:`BookMLP` from the layers.
    """
    import chainrule.layers as layers

    if len(sizes) == 3:
        net = layers.TwoLayerNet(*sizes, dtype=dtype)
        _load_weights(net.params, weights)
        return net, "chainrule.layers.TwoLayerNet"
    multi = getattr(layers, "MultiLayerNet", None)
    why = "chainrule.layers.MultiLayerNet does not exist"
    if multi is not None:
        try:
            net = multi(
                sizes[0],
                list(sizes[1:-1]),
                sizes[-1],
                activation="relu",
                weight_init_std="he",
                dtype=dtype,
            )
            _load_weights(net.params, weights)
            if any(p.dtype != np.dtype(dtype) for p in net.params.values()):
                raise TypeError(f"parameters are not {np.dtype(dtype)}")
            return net, "chainrule.layers.MultiLayerNet"
        except Exception as exc:  # an API still in flux must not break the benchmark
            why = f"MultiLayerNet unusable ({type(exc).__name__}: {exc})"
    return BookMLP(weights, dtype), f"Affine/Relu/SoftmaxWithLoss OrderedDict ({why})"


# --------------------------------------------------------------------------- (b) autograd


class AutogradMLP:
    """The same net on the autograd engine, ``loss(x, t)`` recording the graph.

    With ``use_nn`` (default) it is :class:`chainrule.nn.MLP` when that exists and accepts the
    weights; otherwise ``linear``/``relu``/``softmax_cross_entropy`` from
    :mod:`chainrule.functions` on parameter Tensors. ``params`` lists the parameter Tensors
    ``[W1, b1, W2, b2, ...]`` either way; ``variant`` says which path was taken and why.
    """

    def __init__(
        self, weights: Sequence[tuple[np.ndarray, np.ndarray]], dtype: Any, use_nn: bool = True
    ):
        import chainrule.functions as F
        from chainrule import Tensor

        self.F = F
        self.model: Any = None
        self.variant = "chainrule.functions (nn not requested)"
        if use_nn:
            try:
                self.model, self.params = self._nn_model(weights, dtype)
                self.variant = "chainrule.nn.MLP"
                return
            except ImportError as exc:
                self.variant = f"chainrule.functions (chainrule.nn.MLP missing: {exc})"
            except Exception as exc:  # an API still in flux must not break the benchmark
                why = f"{type(exc).__name__}: {exc}"
                self.variant = f"chainrule.functions (chainrule.nn.MLP unusable: {why})"
        self.params = []
        for W, b in weights:
            self.params += [Tensor(W.astype(dtype)), Tensor(b.astype(dtype))]

    @staticmethod
    def _nn_model(
        weights: Sequence[tuple[np.ndarray, np.ndarray]], dtype: Any
    ) -> tuple[Any, list[Any]]:
        from chainrule.nn import MLP

        sizes = [weights[0][0].shape[0]] + [W.shape[1] for W, _ in weights]
        model = MLP(sizes, activation="relu", dtype=dtype)
        params = list(model.parameters())
        values = [v for pair in weights for v in pair]
        if [p.shape for p in params] != [v.shape for v in values]:
            raise ValueError(f"parameter shapes {[p.shape for p in params]} are not W1, b1, ...")
        for p, value in zip(params, values):
            if p.dtype != np.dtype(dtype):
                raise TypeError(f"parameters are {p.dtype}, not {np.dtype(dtype)}")
            p.data[...] = value  # in place: the modules hold these very arrays
        return model, params

    def loss(self, x: Any, t: Any) -> Any:
        F = self.F
        if self.model is not None:
            return F.softmax_cross_entropy(self.model(x), t)
        h = x
        last = len(self.params) // 2 - 1
        for i in range(last + 1):
            h = F.linear(h, self.params[2 * i], self.params[2 * i + 1])
            if i < last:
                h = F.relu(h)
        return F.softmax_cross_entropy(h, t)


# --------------------------------------------------------------------------- rows


@dataclass
class Row:
    """One way of training one net: ``run(steps)`` trains on the next ``steps`` batches."""

    net: str
    name: str
    dtype: str
    step: Callable[[np.ndarray, np.ndarray], Any]
    batches: list[tuple[Any, Any]]
    loss_to_float: Callable[[Any], float] = float
    notes: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)
    final_losses: list[float] = field(default_factory=list)
    cursor: int = 0

    def run(self, steps: int) -> float:
        loss = None
        for _ in range(steps):
            xb, tb = self.batches[self.cursor]
            loss = self.step(xb, tb)
            self.cursor = (self.cursor + 1) % len(self.batches)
        return self.loss_to_float(loss)


def cupy_gpu() -> tuple[bool, str]:
    """Whether the real CuPy imports and sees a GPU, and its version or the reason not."""
    try:
        import cupy

        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # not installed, or no driver
        return False, f"{type(exc).__name__}: {exc}"
    if count < 1 or getattr(cupy, "is_fake", False):
        return False, "CuPy sees no GPU"
    return True, cupy.__version__


def torch_cuda() -> tuple[bool, str]:
    """Whether PyTorch is installed with CUDA and sees a GPU."""
    ok, why = torch_available()
    if not ok:
        return False, why
    import torch

    if not torch.cuda.is_available():
        return False, f"torch {torch.__version__} sees no CUDA device"
    return True, f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}"


def cupy_peak_gflops(size: int = 4096, tries: int = 5) -> float:
    """Best GFLOP/s of a float32 CuPy matmul (cuBLAS) on the GPU."""
    import cupy

    a = cupy.random.default_rng(0).random((size, size), dtype=cupy.float32)
    b = cupy.random.default_rng(1).random((size, size), dtype=cupy.float32)
    out = cupy.empty((size, size), dtype=cupy.float32)
    cupy.matmul(a, b, out=out)
    cupy.cuda.Device().synchronize()
    best = float("inf")
    for _ in range(tries):
        start = time.perf_counter()
        cupy.matmul(a, b, out=out)
        cupy.cuda.Device().synchronize()
        best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 / best / 1e9


def torch_available() -> tuple[bool, str]:
    """Whether ``import torch`` works, and its version or the reason it does not."""
    try:
        import torch
    except Exception as exc:  # ImportError, or a broken install
        return False, f"{type(exc).__name__}: {exc}"
    return True, torch.__version__


def build_row(
    spec: NetSpec, name: str, x: np.ndarray, t: np.ndarray, threads: int, seed: int = 1
) -> Row:
    """Set up row ``name`` for net ``spec`` on data ``(x, t)`` (float32 pool, int labels).

    A ``-cuda`` row is the CPU row of that name with its model, optimizer and data on the GPU.
    Its steps only queue kernels; :meth:`Row.run` ends with ``float(loss)``, which waits for
    them, so a timed run covers all the work.
    """
    weights = initial_weights(spec.sizes, spec.init, seed)
    base, on_gpu = name.removesuffix("-cuda"), name.endswith("-cuda")
    if base == "pytorch":
        row = _torch_row(spec, weights, x, t, threads, "cuda" if on_gpu else "cpu")
        row.name = name
        return row
    if base in ("chainrule-layers", "chainrule-autograd"):
        from chainrule.backend import move_arrays, to_device
        from chainrule.optim import SGD

        device = "cuda" if on_gpu else "cpu"
        xs, ts = to_device(x.astype(np.float32, copy=False), device), to_device(t, device)
        data = batches(xs, ts, spec.batch)
        notes = ["on the GPU through CuPy"] if on_gpu else []

    if base == "chainrule-layers":
        net, how = build_layers_net(spec.sizes, weights, np.float32)
        move_arrays(net, device)
        opt = SGD(spec.lr)
        opt.check_finite = False  # like PyTorch's loop (the Trainer's guard makes this check)

        def step(xb: Any, tb: Any) -> Any:
            grads = net.gradient(xb, tb)
            opt.update(net.params, grads)
            return net.last_layer.loss

        return Row(spec.name, name, "float32", step, data, notes=[f"net: {how}", *notes])

    if base == "chainrule-autograd":
        model = AutogradMLP(weights, np.float32)
        move_arrays(model.params, device)  # the Parameters the model's modules hold
        opt = SGD(spec.lr, params=model.params)
        opt.check_finite = False  # like PyTorch's loop (the Trainer's guard makes this check)

        def step(xb: Any, tb: Any) -> Any:
            opt.zero_grad()  # first: last step's gradients are not kept through this forward
            loss = model.loss(xb, tb)
            loss.backward(retain_graph=False)  # the Trainer's walk: frees as it goes
            opt.step()
            return loss.data

        return Row(
            spec.name, name, "float32", step, data, notes=[f"model: {model.variant}", *notes]
        )

    if name in ("numpy-f64", "numpy-f32"):
        dtype = np.float64 if name == "numpy-f64" else np.float32
        params = [(W.astype(dtype), b.astype(dtype)) for W, b in weights]
        lr = spec.lr

        def step(xb: Any, tb: Any) -> Any:
            loss, grads = reference_gradient(params, xb, tb)
            reference_sgd(params, grads, lr)
            return loss

        data = batches(x.astype(dtype, copy=False), t, spec.batch)
        return Row(spec.name, name, np.dtype(dtype).name, step, data)

    raise ValueError(f"unknown row {name!r}; rows are {', '.join(ROW_NAMES)}")


def torch_step(model: Any, opt: Any) -> Callable[[Any, Any], Any]:
    """PyTorch's training step for ``model`` and optimizer ``opt``: zero the gradients,
    cross-entropy, backward, update; returns the loss (a tensor: reading it would wait)."""
    import torch

    cross_entropy = torch.nn.functional.cross_entropy

    def step(xb: Any, tb: Any) -> Any:
        opt.zero_grad(set_to_none=True)
        loss = cross_entropy(model(xb), tb)
        loss.backward()
        opt.step()
        return loss

    return step


def _torch_row(
    spec: NetSpec,
    weights: Sequence[tuple[np.ndarray, np.ndarray]],
    x: np.ndarray,
    t: np.ndarray,
    threads: int,
    device: str = "cpu",
) -> Row:
    import torch

    torch.set_num_threads(threads)
    layers: list[Any] = []
    for i, (W, b) in enumerate(weights):
        linear = torch.nn.Linear(*W.shape)
        with torch.no_grad():
            # torch keeps weight as (fan_out, fan_in): the transpose of the book's W
            linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T, dtype=np.float32)))
            linear.bias.copy_(torch.from_numpy(b.astype(np.float32)))
        layers.append(linear)
        if i < len(weights) - 1:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers).to(device)
    step = torch_step(model, torch.optim.SGD(model.parameters(), lr=spec.lr))

    xs = torch.from_numpy(x.astype(np.float32, copy=False)).to(device)
    ts = torch.from_numpy(t.astype(np.int64)).to(device)
    data = batches(xs, ts, spec.batch)  # type: ignore[arg-type]  (tensors slice like arrays)
    n = torch.get_num_threads()
    notes = [f"torch {torch.__version__}, {n} thread{'' if n == 1 else 's'}"]
    return Row(spec.name, "pytorch", "float32", step, data, lambda v: float(v.item()), notes)


# --------------------------------------------------------------------------- timing


def interleaved_timing(
    rows: Sequence[Row],
    steps: dict[str, int],
    repeats: int,
    warmup: int,
    gap: float = 0.0,
    progress: Callable[[str], None] | None = None,
    each_round: Callable[[], None] | None = None,
) -> None:
    """Time every row ``repeats`` times, one of each per round, in a rotating order.

    Round ``r`` starts at row ``r mod len(rows)``, so a burst of machine noise hits different
    rows in different rounds and each row's median sees the same conditions as the others'.
    ``warmup`` untimed rounds come first. Wall-clock seconds land in ``row.seconds``, the
    process's CPU seconds (all its threads) in ``row.cpu_seconds``. ``gap`` seconds of
    sleep before each timed run let BLAS/OpenMP worker threads that spin after a call go idle.
    ``each_round`` (the matmul peak, say) runs at the start of every timed round, so it too
    is sampled across the whole run.
    """
    for _ in range(warmup):
        for row in rows:
            row.run(steps[row.net])
    # Everything alive now (modules, weights, data; torch's many objects) moves to the
    # permanent generation: a garbage collection that fires inside a timed run then costs
    # what that row allocated, not a sweep over the whole process.
    gc.collect()
    gc.freeze()
    n = len(rows)
    for r in range(repeats):
        if each_round is not None:
            each_round()
        order = [rows[(r + i) % n] for i in range(n)]
        for row in order:
            gc.collect()  # start each run with no garbage left by the one before
            if gap:
                time.sleep(gap)
            start, cpu_start = time.perf_counter(), time.process_time()
            loss = row.run(steps[row.net])
            row.seconds.append(time.perf_counter() - start)
            row.cpu_seconds.append(time.process_time() - cpu_start)
            row.final_losses.append(loss)
        if progress is not None:
            progress(f"round {r + 1}/{repeats} done")
    gc.unfreeze()


def peak_gflops(dtype: Any, size: int = 2048, tries: int = 5) -> float:
    """Best GFLOP/s of ``a @ b`` for square ``size`` matrices of ``dtype`` (BLAS gemm)."""
    rng = np.random.default_rng(0)
    a = rng.random((size, size)).astype(dtype)
    b = rng.random((size, size)).astype(dtype)
    out = np.empty((size, size), dtype=dtype)
    np.matmul(a, b, out=out)  # warm the BLAS threads and caches
    best = float("inf")
    for _ in range(tries):
        start = time.perf_counter()
        np.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 / best / 1e9


def torch_peak_gflops(size: int = 2048, tries: int = 5, device: str = "cpu") -> float:
    """Best GFLOP/s of a float32 ``torch.mm`` (its own BLAS, e.g. MKL or OpenBLAS; or cuBLAS)."""
    import torch

    gen = torch.Generator().manual_seed(0)
    a = torch.rand(size, size, generator=gen).to(device)
    b = torch.rand(size, size, generator=gen).to(device)
    out = torch.empty(size, size, device=device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    torch.mm(a, b, out=out)
    sync()
    best = float("inf")
    for _ in range(tries):
        start = time.perf_counter()
        torch.mm(a, b, out=out)
        sync()
        best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 / best / 1e9
