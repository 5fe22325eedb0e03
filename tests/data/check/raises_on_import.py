# ruff: noqa
# Raises while being imported.
import numpy as np


def load_weights():
    return np.load("weights_that_do_not_exist.npy")


W = load_weights()


class Relu:
    def forward(self, x):
        return x

    def backward(self, dout):
        return dout
