# ruff: noqa
# No class here has both forward and backward.
def relu(x):
    return x * (x > 0)
