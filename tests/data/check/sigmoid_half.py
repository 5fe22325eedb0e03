# ruff: noqa
# Forgot (1 - out): a wrong local derivative that is no constant factor.
import numpy as np


class Sigmoid:
    def forward(self, x):
        self.out = 1 / (1 + np.exp(-x))
        return self.out

    def backward(self, dout):
        return dout * self.out
