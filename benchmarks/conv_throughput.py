"""The convolution of the book's SimpleConvNet, forward and backward: chainrule against a plain
im2col written here in the book's style, and PyTorch's ``conv2d`` on the CPU.

Shapes: the first layer of SimpleConvNet on MNIST, batch 100 of 1x28x28 images, 30 filters of
5x5, stride 1, no padding, so the output is (100, 30, 24, 24). Every row is one *implementation*
(``chainrule``, ``im2col-ref``, ``pytorch``) running one *mode*:

* ``forward``: the forward pass as in training (it keeps what backward needs);
* ``fwd+bwd, no dx``: forward, then ``dW`` and ``db`` only. This is SimpleConvNet's ``Conv1``
  in every training step: the images need no gradient, so chainrule skips ``dx`` through
  ``needs_input_grad`` and PyTorch through ``requires_grad=False`` on the input;
* ``fwd+bwd``: forward, then ``dx``, ``dW`` and ``db``, as for a convolution deeper in a net.

Each mode is timed as a whole (backward cannot run without its forward); the benchmark's report
derives the backward alone as ``fwd+bwd - forward`` within each round.

All rows read the same float32 images (:func:`make_images`), start from the same filters
(:func:`initial_filters`) and take the same upstream gradient ``dout``; the tests check that the
reference and chainrule agree on the output and on every gradient.

Like :mod:`benchmarks.train_throughput`, this module imports NumPy at the top: import it only in
a process whose BLAS thread count is already set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks.train_throughput import Row, batches

#: Implementations, in table order. ``pytorch`` exists only where ``import torch`` works.
IMPLS = ("chainrule", "im2col-ref", "pytorch")
#: What one timed step does.
MODES = ("forward", "fwd+bwd, no dx", "fwd+bwd")

IMPL_DESCRIPTIONS = {
    "chainrule": "chainrule.functions.Conv2d (im2col batch-last, one GEMM per pass), float32",
    "im2col-ref": "plain NumPy written here in the book's style: a row per window, float32",
    "pytorch": "torch.nn.functional.conv2d + autograd on the CPU, float32",
}


@dataclass(frozen=True)
class ConvSpec:
    """One convolution layer: input (C, H, W), filters, stride and padding, batch size."""

    name: str
    in_shape: tuple[int, int, int]
    filters: int
    size: int
    batch: int
    stride: int = 1
    pad: int = 0

    @property
    def out_hw(self) -> tuple[int, int]:
        _, h, w = self.in_shape
        return (
            out_size(h, self.size, self.stride, self.pad),
            out_size(w, self.size, self.stride, self.pad),
        )

    @property
    def filter_shape(self) -> tuple[int, int, int, int]:
        return (self.filters, self.in_shape[0], self.size, self.size)

    def flops(self, mode: str) -> int:
        """Useful multiply-add work of ``mode``: ``2*N*FN*C*FH*FW*OH*OW`` per matrix product.

        One product for the forward, one for ``dW``, one more for ``dx``. The bias, im2col and
        col2im copies are O(size) and not counted.
        """
        oh, ow = self.out_hw
        c = self.in_shape[0]
        one = 2 * self.batch * self.filters * c * self.size * self.size * oh * ow
        return {"forward": 1, "fwd+bwd, no dx": 2, "fwd+bwd": 3}[mode] * one


#: SimpleConvNet's convolution on MNIST (the book's chapter 7 defaults).
SIMPLE_CONV = ConvSpec("conv", in_shape=(1, 28, 28), filters=30, size=5, batch=100)


def out_size(size: int, k: int, stride: int, pad: int) -> int:
    span = size + 2 * pad - k
    if span < 0 or span % stride:
        raise ValueError(
            f"({size} + 2*{pad} - {k}) / {stride} + 1 is not a positive whole number: "
            "change the stride or padding"
        )
    return span // stride + 1


def make_images(
    samples: int, in_shape: Sequence[int] = (1, 28, 28), dtype: Any = np.float32, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-shaped random images ``(samples, C, H, W)`` in [0, 1), and labels (unused here)."""
    rng = np.random.default_rng(seed)
    x = rng.random((samples, *in_shape), dtype=np.float32).astype(dtype, copy=False)
    return x, rng.integers(0, 10, size=samples).astype(np.intp)


def initial_filters(spec: ConvSpec, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Filters ``W`` (He scale), bias ``b`` and an upstream gradient ``dout``, all float64."""
    rng = np.random.default_rng(seed)
    fan_in = spec.in_shape[0] * spec.size * spec.size
    W = np.sqrt(2.0 / fan_in) * rng.standard_normal(spec.filter_shape)
    b = 0.1 * rng.standard_normal(spec.filters)
    dout = rng.standard_normal((spec.batch, spec.filters, *spec.out_hw)) / spec.batch
    return W, b, dout


# --------------------------------------------------------------------------- the reference


def reference_im2col(x: np.ndarray, fh: int, fw: int, stride: int = 1, pad: int = 0) -> np.ndarray:
    """The book's im2col: one *row* per window, shape ``(N*OH*OW, C*FH*FW)``.

    Rows run image by image, then over the output positions; a row holds the window's pixels in
    ``(c, i, j)`` order, the order of ``W.reshape(FN, -1)``. Built as the book builds it: a
    ``(N, C, FH, FW, OH, OW)`` array filled by one strided copy per filter offset ``(i, j)``,
    then transposed into rows. Unlike the book (which allocates float64 whatever the input), it
    keeps the input's dtype, so float32 is compared with float32.
    """
    n, c, h, w = x.shape
    oh, ow = out_size(h, fh, stride, pad), out_size(w, fw, stride, pad)
    img = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad))) if pad else x
    windows = np.empty((n, c, fh, fw, oh, ow), dtype=x.dtype)
    for i in range(fh):
        rows = slice(i, i + stride * oh, stride)  # offset i of every window: rows i, i+stride, ...
        for j in range(fw):
            windows[:, :, i, j] = img[:, :, rows, j : j + stride * ow : stride]
    return windows.transpose(0, 4, 5, 1, 2, 3).reshape(n * oh * ow, c * fh * fw)


def reference_col2im(
    col: np.ndarray, x_shape: Sequence[int], fh: int, fw: int, stride: int = 1, pad: int = 0
) -> np.ndarray:
    """The book's col2im: add every entry of ``col`` (N*OH*OW, C*FH*FW) back onto its pixel.

    Overlapping windows add up (``+=``). Returns the unpadded part of the padded image, a view,
    as the book does.
    """
    n, c, h, w = x_shape
    oh, ow = out_size(h, fh, stride, pad), out_size(w, fw, stride, pad)
    windows = col.reshape(n, oh, ow, c, fh, fw).transpose(0, 3, 4, 5, 1, 2)
    img = np.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=col.dtype)
    for i in range(fh):
        rows = slice(i, i + stride * oh, stride)
        for j in range(fw):
            img[:, :, rows, j : j + stride * ow : stride] += windows[:, :, i, j]
    return img[:, :, pad : pad + h, pad : pad + w]


class ReferenceConv:
    """The book's Convolution layer on :func:`reference_im2col`: ``col @ W.reshape(FN, -1).T``.

    ``forward`` returns the book's ``(N, FN, OH, OW)`` transposed view of the product; backward
    computes ``db``, ``dW`` and, when ``need_dx``, ``dx`` through :func:`reference_col2im`.
    """

    def __init__(self, W: np.ndarray, b: np.ndarray, stride: int = 1, pad: int = 0,
                 need_dx: bool = True):  # fmt: skip
        self.W, self.b, self.stride, self.pad, self.need_dx = W, b, stride, pad, need_dx
        self.dW: np.ndarray | None = None
        self.db: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        fn, _, fh, fw = self.W.shape
        n, _, h, w = x.shape
        oh, ow = out_size(h, fh, self.stride, self.pad), out_size(w, fw, self.stride, self.pad)
        col = reference_im2col(x, fh, fw, self.stride, self.pad)
        col_W = self.W.reshape(fn, -1).T
        out = col @ col_W + self.b  # (N*OH*OW, FN)
        self.x_shape, self.col, self.col_W = x.shape, col, col_W
        return out.reshape(n, oh, ow, fn).transpose(0, 3, 1, 2)

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        fn, c, fh, fw = self.W.shape
        dout = dout.transpose(0, 2, 3, 1).reshape(-1, fn)  # (N*OH*OW, FN), a copy
        self.db = dout.sum(axis=0)
        self.dW = (self.col.T @ dout).T.reshape(fn, c, fh, fw)
        if not self.need_dx:
            return None
        dcol = dout @ self.col_W.T
        return reference_col2im(dcol, self.x_shape, fh, fw, self.stride, self.pad)


# --------------------------------------------------------------------------- rows


def row_name(impl: str, mode: str) -> str:
    return f"{impl} {mode}"


def build_conv_row(
    spec: ConvSpec, impl: str, mode: str, x: np.ndarray, t: np.ndarray, threads: int, seed: int = 1
) -> Row:
    """Row ``impl`` in ``mode`` on images ``x`` (float32 pool, (samples, C, H, W)).

    The row's ``name`` is ``"<impl> <mode>"``; ``step`` returns a float (the sum of the output's
    first image, or of ``dW``) so that nothing is optimised away and the loss column stays
    finite.
    """
    if mode not in MODES:
        raise ValueError(f"unknown conv mode {mode!r}; modes are {', '.join(MODES)}")
    W64, b64, dout64 = initial_filters(spec, seed)
    W, b, dout = (a.astype(np.float32) for a in (W64, b64, dout64))
    backward = mode != "forward"
    need_dx = mode == "fwd+bwd"
    data = batches(x.astype(np.float32, copy=False), t, spec.batch)
    name = row_name(impl, mode)

    if impl == "chainrule":
        from chainrule.functions.conv import Conv2d

        op = Conv2d(spec.stride, spec.pad)
        # what Function.__call__ sets on the graph, and SimpleConvNet's Conv1 by hand
        op.needs_input_grad = None if need_dx else (False, True, True)

        def step(xb: Any, tb: Any) -> Any:
            out = op.forward(xb, W, b)
            if not backward:
                return float(out[0, 0, 0, 0])
            _, dW, _ = op.backward(dout)
            return float(dW[0, 0, 0, 0])

        return Row(spec.name, name, "float32", step, data, notes=[IMPL_DESCRIPTIONS[impl]])

    if impl == "im2col-ref":
        layer = ReferenceConv(W, b, spec.stride, spec.pad, need_dx=need_dx)

        def step(xb: Any, tb: Any) -> Any:
            out = layer.forward(xb)
            if not backward:
                return float(out[0, 0, 0, 0])
            layer.backward(dout)
            return float(layer.dW[0, 0, 0, 0])  # type: ignore[index]

        return Row(spec.name, name, "float32", step, data, notes=[IMPL_DESCRIPTIONS[impl]])

    if impl == "pytorch":
        return _torch_row(spec, mode, W, b, dout, x, t, threads)
    raise ValueError(f"unknown conv implementation {impl!r}; choose from {', '.join(IMPLS)}")


def _torch_row(
    spec: ConvSpec,
    mode: str,
    W: np.ndarray,
    b: np.ndarray,
    dout: np.ndarray,
    x: np.ndarray,
    t: np.ndarray,
    threads: int,
) -> Row:
    import torch

    torch.set_num_threads(threads)
    conv2d = torch.nn.functional.conv2d
    weight = torch.from_numpy(W.copy()).requires_grad_(True)
    bias = torch.from_numpy(b.copy()).requires_grad_(True)
    grad_out = torch.from_numpy(dout)
    backward = mode != "forward"
    need_dx = mode == "fwd+bwd"
    stride, pad = spec.stride, spec.pad

    def step(xb: Any, tb: Any) -> Any:
        weight.grad = bias.grad = None  # as zero_grad(set_to_none=True): fresh gradients
        if need_dx:
            xb = xb.detach().requires_grad_(True)
        out = conv2d(xb, weight, bias, stride=stride, padding=pad)
        if not backward:
            return float(out.detach()[0, 0, 0, 0])
        out.backward(grad_out)
        return float(weight.grad[0, 0, 0, 0])  # type: ignore[index]

    xs = torch.from_numpy(x.astype(np.float32, copy=False))
    data = batches(xs, torch.from_numpy(t), spec.batch)  # type: ignore[arg-type]
    n = torch.get_num_threads()
    notes = [f"torch {torch.__version__}, {n} thread{'' if n == 1 else 's'}"]
    return Row(spec.name, row_name("pytorch", mode), "float32", step, data, notes=notes)


def build_conv_rows(
    spec: ConvSpec, x: np.ndarray, t: np.ndarray, threads: int, with_torch: bool
) -> list[Row]:
    """Every implementation in every mode (PyTorch only ``with_torch``), in table order."""
    impls = [impl for impl in IMPLS if impl != "pytorch" or with_torch]
    return [build_conv_row(spec, impl, mode, x, t, threads) for impl in impls for mode in MODES]


def split_name(name: str) -> tuple[str, str]:
    """``"chainrule fwd+bwd, no dx"`` -> ``("chainrule", "fwd+bwd, no dx")``."""
    impl, _, mode = name.partition(" ")
    if impl not in IMPLS or mode not in MODES:
        raise ValueError(f"not a conv row name: {name!r}")
    return impl, mode
