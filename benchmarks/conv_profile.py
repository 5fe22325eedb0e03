"""Where a training step of the book's conv nets spends its time: per layer, forward and
backward, plus the optimizer update (``python -m benchmarks.conv_profile``).

Runs in this process with whatever BLAS thread count the environment set (the benchmark CLI
sets ``OPENBLAS_NUM_THREADS=1``; set it yourself when running this module directly). float32,
batch 100, Adam, random MNIST-shaped images. Each layer's time is the median over the timed
steps, so one slow step (another process on the core) does not move it.

``--device cuda`` profiles the same step on a GPU through CuPy: wall-clock time, with the
device synchronised before every clock reading (kernels run asynchronously otherwise).
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from typing import Any

import numpy as np


def build_net(name: str, rng: np.random.Generator) -> Any:
    from chainrule.layers import DeepConvNet, SimpleConvNet

    if name == "simple-cnn":
        return SimpleConvNet(weight_init_std="he", rng=rng, dtype=np.float32)
    if name == "deep-cnn":
        return DeepConvNet(rng=rng, dtype=np.float32)
    raise ValueError(f"unknown net {name!r}; choose simple-cnn or deep-cnn")


def profile_step(
    net: Any, x: np.ndarray, t: np.ndarray, steps: int, device: str = "cpu"
) -> dict[str, float]:
    """Median seconds per step of every layer's forward and backward and of the update."""
    from chainrule.backend import move_arrays, to_device
    from chainrule.config import using_config
    from chainrule.optim import Adam

    opt = Adam(lr=0.001)
    times: dict[str, list[float]] = defaultdict(list)
    if device == "cpu":
        # CPU time of this thread: the machine is shared, and wall time counts the other
        # processes' turns on the core (BLAS runs one thread here).
        clock = time.thread_time
    else:
        import cupy

        move_arrays(net, device)
        x, t = to_device(x, device), to_device(t, device)
        synchronize = cupy.cuda.Device().synchronize

        def clock() -> float:
            synchronize()
            return time.perf_counter()

    for step in range(steps + 1):
        xb = x[(step * 100) % len(x) :][:100].reshape(100, *net.input_dim)
        tb = t[(step * 100) % len(t) :][:100]
        layers = list(net.layers.items())
        with using_config("train", True):
            h = xb
            for name, layer in layers:
                t0 = clock()
                h = layer.forward(h)
                times[f"{name} forward"].append(clock() - t0)
            t0 = clock()
            net.last_layer.forward(h, tb)
            dout = net.last_layer.backward(1)
            times["loss fwd+bwd"].append(clock() - t0)
            for name, layer in reversed(layers):
                t0 = clock()
                dout = layer.backward(dout)
                times[f"{name} backward"].append(clock() - t0)
        grads = {key: getattr(net.layers[lay], attr) for key, lay, attr in net._grad_sources}
        t0 = clock()
        opt.update(net.params, grads)
        times["Adam update"].append(clock() - t0)
    # the first step warms up (allocations, BLAS buffers): left out
    return {k: float(np.median(v[1:])) for k, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.conv_profile")
    parser.add_argument("--nets", default="simple-cnn,deep-cnn")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = parser.parse_args(argv)
    if args.device == "cuda":
        from chainrule.backend import DeviceError, use_device

        try:  # no CuPy, or no GPU: say so instead of an ImportError from deep inside
            use_device("cuda")
        except DeviceError as exc:
            parser.error(f"--device cuda: {exc}")
        finally:
            use_device("cpu")  # profile_step moves the net itself
    rng = np.random.default_rng(0)
    x = rng.random((1000, 784), dtype=np.float32)
    t = rng.integers(0, 10, 1000)
    for name in args.nets.split(","):
        net = build_net(name, np.random.default_rng(1))
        prof = profile_step(net, x, t, args.steps, args.device)
        total = sum(prof.values())
        rate = f"{total * 1e3:.1f} ms per step of 100 ({100 / total:.0f} samples/s)"
        print(f"\n{name} ({args.device}): {rate}")
        for key, sec in sorted(prof.items(), key=lambda kv: -kv[1]):
            print(f"  {key:<22} {sec * 1e3:8.2f} ms  {100 * sec / total:5.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
