# ruff: noqa
# Dropout drawing from a generator that np.random.seed does not control.
import numpy as np

_rng = np.random.default_rng()


class Dropout:
    def __init__(self, dropout_ratio=0.5):
        self.dropout_ratio = dropout_ratio

    def forward(self, x, train_flg=True):
        self.mask = _rng.random(x.shape) > self.dropout_ratio
        return x * self.mask

    def backward(self, dout):
        return dout * self.mask
