"""CS231n's 2-D neuron: f(w, x) = sigmoid(w0 x0 + w1 x1 + w2) with w=[2,-3,-3], x=[-1,-2].

Built from the elementary gates (*, +, negate, exp, +1, 1/x) so every local derivative shows
in the trace; the fused Sigmoid gives the same gradients via dout * (1 - s) * s.
"""

import numpy as np

from chainrule import Tensor, functions
from chainrule.examples import Example
from chainrule.explain import explain


def run() -> Example:
    w = [Tensor(2.0, name="w0"), Tensor(-3.0, name="w1"), Tensor(-3.0, name="w2")]
    x = [Tensor(-1.0, name="x0"), Tensor(-2.0, name="x1")]
    dot = w[0] * x[0] + w[1] * x[1] + w[2]
    dot.name = "dot"
    f = 1.0 / (1.0 + functions.exp(-dot))
    f.name = "f"
    f.backward()  # the gradients
    trace = explain(f)  # and the pass that produced them, node by node

    # The same neuron with the fused sigmoid gate: one local derivative, s * (1 - s).
    w_arr, x_arr = np.array([2.0, -3.0, -3.0]), np.array([-1.0, -2.0])
    s = float(functions.Sigmoid().forward(w_arr[0] * x_arr[0] + w_arr[1] * x_arr[1] + w_arr[2]))
    ddot = (1 - s) * s
    return Example(
        "sigmoid neuron: f = sigmoid(w0*x0 + w1*x1 + w2), w=[2,-3,-3], x=[-1,-2]",
        forward={"dot": dot.data, "f": f.data},
        gradients={t.name: t.grad for t in [*w, *x]},
        notes=[
            "",
            f"fused sigmoid gate: (1 - f) * f = {ddot:.6g}; dw = [x0, x1, 1] * that = "
            f"{np.array2string(np.array([x_arr[0], x_arr[1], 1.0]) * ddot, precision=6)}",
            "",
            "backward pass, node by node:",
            str(trace),
        ],
    )


if __name__ == "__main__":
    print(run())
