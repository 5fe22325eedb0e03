# ruff: noqa
# Seed note 003: the ReLU whose forward and backward return 0.
class ReLU:
    def __init__(self):
        self.mask = None

    def forward(self, x):
        out = x.copy()
        self.mask = x <= 0
        out[self.mask] = 0
        return 0

    def backward(self, dout):
        dout[self.mask] = 0
        dx = dout
        return 0
