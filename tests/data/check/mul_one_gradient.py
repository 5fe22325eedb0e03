# ruff: noqa
# MulLayer.backward returns only dx.
class MulLayer:
    def forward(self, x, y):
        self.x, self.y = x, y
        return x * y

    def backward(self, dout):
        return dout * self.y
