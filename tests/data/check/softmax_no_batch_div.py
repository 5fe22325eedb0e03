# ruff: noqa
# backward forgets to divide by the batch size.
import numpy as np


class SoftmaxWithLoss:
    def forward(self, x, t):
        self.t = t
        x = x - x.max(axis=1, keepdims=True)
        self.y = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
        return -np.sum(t * np.log(self.y)) / x.shape[0]

    def backward(self, dout=1):
        return self.y - self.t
