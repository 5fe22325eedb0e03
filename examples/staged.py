"""CS231n's staged backprop: f(x, y) = (x + sigmoid(y)) / (sigmoid(x) + (x + y)^2) at (3, -4).

The forward pass is cut into small stages (sigy, num, sigx, xpy, xpysqr, den, invden); x and y
are each used more than once, so their gradients are *accumulated* (+=) — the trace below marks
every place where that happens.
"""

from chainrule import Tensor, functions
from chainrule.examples import Example
from chainrule.explain import explain


def run(x0: float = 3.0, y0: float = -4.0) -> Example:
    x, y = Tensor(x0, name="x"), Tensor(y0, name="y")
    sigy = functions.sigmoid(y)  # (1) sigmoid in the numerator
    num = x + sigy  # (2) numerator
    sigx = functions.sigmoid(x)  # (3) sigmoid in the denominator
    xpy = x + y  # (4)
    xpysqr = xpy**2  # (5)
    den = sigx + xpysqr  # (6) denominator
    invden = 1.0 / den  # (7)
    f = num * invden  # (8) done
    for t, n in [
        (sigy, "sigy"), (num, "num"), (sigx, "sigx"), (xpy, "xpy"),
        (xpysqr, "xpysqr"), (den, "den"), (invden, "invden"), (f, "f"),
    ]:  # fmt: skip
        t.name = n
    f.backward()  # the gradients
    trace = explain(f)  # and the pass that produced them, node by node
    return Example(
        f"staged: f = (x + sigmoid(y)) / (sigmoid(x) + (x + y)^2) at x={x0:g}, y={y0:g}",
        forward={"num": num.data, "den": den.data, "f": f.data},
        gradients={"x": x.grad, "y": y.grad},
        notes=["", "backward pass, node by node (+= marks accumulation at a fork):", str(trace)],
    )


if __name__ == "__main__":
    print(run())
