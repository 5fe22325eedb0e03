"""Training throughput of the book's convolutional networks (``--nets simple-cnn,deep-cnn``):
chainrule's book layers, the same network on the autograd engine, and PyTorch on the CPU.

* ``simple-cnn``: :class:`chainrule.layers.SimpleConvNet` (chapter 7: conv 30x5x5, ReLU, 2x2
  max pool, affine 100, ReLU, affine 10), He init;
* ``deep-cnn``: :class:`chainrule.layers.DeepConvNet` (chapter 8: six 3x3 convs, three pools,
  affine 50, dropout 0.5 twice).

Every row trains float32 with Adam (lr 0.001), batch 100, on the same random MNIST-shaped
images, from the same initial weights (the book net's, built from one seed and copied):

* ``chainrule-layers``: ``net.gradient(x, t)`` then ``Adam.update(net.params, grads)``;
* ``chainrule-autograd``: the autograd twin, :class:`chainrule.nn.SimpleConvNet` /
  :class:`chainrule.nn.DeepConvNet` with the book net's weights loaded, then
  ``loss.backward(retain_graph=False)`` (the Trainer's walk, freeing the graph as it goes) and
  ``Adam.step()`` (where the twins are missing: the book net's layers replayed as
  :mod:`chainrule.functions` ops on its own parameters, :class:`AutogradConvNet`);
* ``pytorch``: ``torch.nn`` built layer by layer from the book net (weights copied),
  ``torch.optim.Adam``.

Like :mod:`benchmarks.train_throughput`, this module imports NumPy at the top: import it only
in a process whose BLAS thread count is already set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks.train_throughput import Row, batches, torch_step

ROWS = ("chainrule-layers", "chainrule-autograd", "pytorch")
GPU_ROWS = tuple(f"{row}-cuda" for row in ROWS)  # the same rows with model and data on the GPU
LR = 0.001


@dataclass(frozen=True)
class ConvNetSpec:
    """One of the book's conv nets, and the batch it trains on."""

    name: str
    batch: int = 100
    in_shape: tuple[int, int, int] = (1, 28, 28)

    def build(self, seed: int = 1) -> Any:
        """The book network in float32, weights from ``seed``."""
        from chainrule.layers import DeepConvNet, SimpleConvNet

        rng = np.random.default_rng(seed)
        if self.name == "simple-cnn":
            return SimpleConvNet(weight_init_std="he", rng=rng, dtype=np.float32)
        return DeepConvNet(rng=rng, dtype=np.float32)

    def shapes(self) -> list[tuple[str, Any, tuple[int, ...]]]:
        """``(layer name, layer, output shape for one image)`` through the net, in order."""
        from chainrule.config import using_config

        net = self.build()
        h = np.zeros((1, *self.in_shape), np.float32)
        out = []
        with using_config("train", False):
            for name, layer in net.layers.items():
                h = layer.forward(h)
                out.append((name, layer, h.shape[1:]))
        return out

    @property
    def flops_per_step(self) -> int:
        """The matrix products one training step needs: per conv ``2*N*FN*C*FH*FW*OH*OW`` and
        per affine ``2*N*in*out``, three times (forward, ``dW``, ``dx``) except the first
        layer's ``dx``. Pooling, ReLU, bias, softmax, im2col and the update are left out."""
        from chainrule.layers import Affine, Convolution

        total, first = 0, True
        for _, layer, shape in self.shapes():
            if isinstance(layer, Convolution):
                fn, c, fh, fw = layer.W.shape
                one = 2 * fn * c * fh * fw * shape[1] * shape[2]
            elif isinstance(layer, Affine):
                one = 2 * layer.W.shape[0] * layer.W.shape[1]
            else:
                continue
            total += (2 if first else 3) * one * self.batch
            first = False
        return total


NETS = {"simple-cnn": ConvNetSpec("simple-cnn"), "deep-cnn": ConvNetSpec("deep-cnn")}


def memory_budget(spec: ConvNetSpec, itemsize: int = 4) -> dict[str, int]:
    """Bytes a training step needs at least: parameters, their gradients, Adam's two moments,
    and one batch's activations (every layer's output: conv, ReLU, pool, affine, dropout)."""
    net = spec.build()
    params = sum(p.size for p in net.params.values())
    activations = sum(int(np.prod(shape)) for _, _, shape in spec.shapes()) * spec.batch
    return {
        "parameters": params * itemsize,
        "gradients": params * itemsize,
        "optimizer_state": 2 * params * itemsize,
        "activations": activations * itemsize,
    }


def autograd_twin(spec: ConvNetSpec, net: Any) -> tuple[Any, str]:
    """The autograd engine's version of the book ``net`` (same weights), and what it is."""
    import chainrule.functions as F

    try:
        from chainrule import nn

        cls = nn.SimpleConvNet if spec.name == "simple-cnn" else nn.DeepConvNet
        twin = cls(rng=np.random.default_rng(0), dtype=np.float32)
        twin.load_state_dict(net.params)
    except Exception as exc:  # missing or in flux: the replay below does the same work
        return AutogradConvNet(net), f"chainrule.functions replay (nn twin unusable: {exc})"

    class Twin:
        parameters = twin.parameters

        @staticmethod
        def loss(x: Any, t: Any) -> Any:
            return F.softmax_cross_entropy(twin(x), t)

    return Twin(), f"chainrule.nn.{type(twin).__name__}"


class AutogradConvNet:
    """The book net's layers replayed as autograd ops on Tensors holding its parameters."""

    def parameters(self) -> list[Any]:
        return list(self.tensors.values())

    def __init__(self, net: Any):
        from chainrule import Tensor

        self.net = net
        self.tensors = {key: Tensor(value) for key, value in net.params.items()}
        owner = {layer: [] for _, layer, _ in net._grad_sources}
        for key, layer, _ in net._grad_sources:
            owner[layer].append(self.tensors[key])
        self.owner = owner

    def loss(self, x: Any, t: Any) -> Any:
        import chainrule.functions as F
        from chainrule.layers import Affine, Convolution, Pooling

        h = x.reshape(len(x), *self.net.input_dim)
        for name, layer in self.net.layers.items():
            if isinstance(layer, Convolution):
                h = F.conv2d(h, *self.owner[name], stride=layer.stride, pad=layer.pad)
            elif isinstance(layer, Pooling):
                h = F.max_pool2d(h, (layer.pool_h, layer.pool_w), layer.stride, layer.pad)
            elif isinstance(layer, Affine):
                h = F.linear(F.reshape(h, (h.shape[0], -1)), *self.owner[name])
            elif type(layer).__name__ == "Relu":
                h = F.relu(h)
            elif type(layer).__name__ == "Dropout":
                h = F.dropout(h, layer.ratio)
            else:
                raise TypeError(f"no autograd twin for layer {name} ({type(layer).__name__})")
        return F.softmax_cross_entropy(h, t)


def _torch_model(net: Any) -> Any:
    """``torch.nn.Sequential`` of the book net's layers, with its weights copied."""
    import torch

    from chainrule.layers import Affine, Convolution, Pooling

    nn, modules, flat = torch.nn, [], False

    def load(module: Any, W: np.ndarray, b: np.ndarray) -> Any:
        with torch.no_grad():
            module.weight.copy_(torch.from_numpy(np.ascontiguousarray(W, np.float32)))
            module.bias.copy_(torch.from_numpy(b.astype(np.float32)))
        return module

    for layer in net.layers.values():
        if isinstance(layer, Convolution):
            fn, c, fh, fw = layer.W.shape
            conv = nn.Conv2d(c, fn, (fh, fw), stride=layer.stride, padding=layer.pad)
            modules.append(load(conv, layer.W, layer.b))
        elif isinstance(layer, Pooling):
            modules.append(nn.MaxPool2d((layer.pool_h, layer.pool_w), layer.stride, layer.pad))
        elif isinstance(layer, Affine):
            if not flat:
                modules.append(nn.Flatten())
                flat = True
            modules.append(load(nn.Linear(*layer.W.shape), layer.W.T, layer.b))
        elif type(layer).__name__ == "Relu":
            modules.append(nn.ReLU())
        elif type(layer).__name__ == "Dropout":
            modules.append(nn.Dropout(layer.ratio))
    return nn.Sequential(*modules)


def build_row(spec: ConvNetSpec, name: str, x: np.ndarray, t: np.ndarray, threads: int) -> Row:
    """Row ``name`` training ``spec`` on ``(x, t)`` (float32 pool, flattened images)."""
    from chainrule.config import using_config
    from chainrule.optim import Adam

    base, on_gpu = name.removesuffix("-cuda"), name.endswith("-cuda")
    device = "cuda" if on_gpu else "cpu"
    net = spec.build()
    if base == "pytorch":
        row = _torch_row(spec, net, x, t, threads, device)
        row.name = name
        return row
    from chainrule.backend import move_arrays, to_device

    move_arrays(net, device)
    data = batches(to_device(x.astype(np.float32, copy=False), device), to_device(t, device),
                   spec.batch)  # fmt: skip
    where = ", on the GPU through CuPy" if on_gpu else ""
    if base == "chainrule-layers":
        opt = Adam(lr=LR)

        def step(xb: Any, tb: Any) -> Any:
            grads = net.gradient(xb, tb)  # training mode (DeepConvNet's dropout on)
            opt.update(net.params, grads)
            return net.last_layer.loss

        notes = [f"book layers, Adam.update{where}"]
        return Row(spec.name, name, "float32", step, data, notes=notes)
    if base == "chainrule-autograd":
        model, note = autograd_twin(spec, net)
        move_arrays(model.parameters(), device)
        opt = Adam(lr=LR, params=model.parameters())

        def step(xb: Any, tb: Any) -> Any:
            opt.zero_grad()
            with using_config("train", True):
                loss = model.loss(xb, tb)
            loss.backward(retain_graph=False)  # the Trainer's walk: frees as it goes
            opt.step()
            return loss.data

        return Row(spec.name, name, "float32", step, data, notes=[f"{note}, Adam.step{where}"])
    raise ValueError(f"unknown conv-net row {name!r}; rows are {', '.join(ROWS)}")


def _torch_row(
    spec: ConvNetSpec, net: Any, x: np.ndarray, t: np.ndarray, threads: int, device: str = "cpu"
) -> Row:
    import torch

    torch.set_num_threads(threads)
    model = _torch_model(net).to(device).train()
    step = torch_step(model, torch.optim.Adam(model.parameters(), lr=LR))

    xs = torch.from_numpy(x.astype(np.float32, copy=False).reshape(-1, *spec.in_shape))
    ts = torch.from_numpy(t.astype(np.int64))
    data = batches(xs.to(device), ts.to(device), spec.batch)  # type: ignore[arg-type]
    n = torch.get_num_threads()
    notes = [f"torch {torch.__version__}, {n} thread{'' if n == 1 else 's'}, Adam"]
    return Row(spec.name, "pytorch", "float32", step, data, lambda v: float(v.item()), notes)
