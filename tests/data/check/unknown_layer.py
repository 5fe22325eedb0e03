# ruff: noqa
# A layer the checker cannot guess inputs for: it is skipped, not failed.
class Scale:
    def __init__(self, w):
        self.w = w

    def forward(self, x):
        return x * self.w

    def backward(self, dout):
        return dout * self.w
