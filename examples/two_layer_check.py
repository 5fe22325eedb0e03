"""Gradient check of the book's TwoLayerNet (784-50-10) on three MNIST images (book 5.7.3).

Backprop's gradients are compared with central differences; the mean absolute difference per
parameter is the book's figure (around 1e-10 or smaller). Without the MNIST files (see
``chainrule.datasets``) three random 784-pixel images stand in, and the table says so.
"""

import numpy as np

from chainrule.examples import Example
from chainrule.layers import TwoLayerNet


def _three_samples() -> tuple[np.ndarray, np.ndarray, str]:
    try:
        from chainrule.datasets import load_mnist

        (x_train, t_train), _ = load_mnist(
            normalize=True, one_hot_label=True, dtype=np.float64, download=False
        )
        return x_train[:3].astype(np.float64), t_train[:3].astype(np.float64), "MNIST"
    except Exception as e:  # no data here: say why and use stand-ins
        rng = np.random.default_rng(0)
        t = np.eye(10)[rng.integers(0, 10, 3)]
        return rng.random((3, 784)), t, f"random stand-in images ({type(e).__name__})"


def run() -> Example:
    x_batch, t_batch, source = _three_samples()
    network = TwoLayerNet(784, 50, 10, rng=np.random.default_rng(0))
    grad_numerical = network.numerical_gradient(x_batch, t_batch)
    grad_backprop = network.gradient(x_batch, t_batch)
    diffs = {
        key: float(np.mean(np.abs(grad_backprop[key] - grad_numerical[key])))
        for key in grad_numerical
    }
    return Example(
        f"TwoLayerNet gradient check: backprop vs numerical on 3 samples from {source}",
        forward={"loss": network.loss(x_batch, t_batch)},
        gradients={f"{k} mean |backprop - numerical|": v for k, v in diffs.items()},
    )


if __name__ == "__main__":
    print(run())
