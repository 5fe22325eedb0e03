# ruff: noqa
# A forward that zeroes its input in place (the gradient is right: a warning).
class Relu:
    def forward(self, x):
        self.mask = x <= 0
        x[self.mask] = 0
        return x

    def backward(self, dout):
        dx = dout.copy()
        dx[self.mask] = 0
        return dx
