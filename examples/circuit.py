"""CS231n's first circuit: f(x, y, z) = (x + y) z at x=-2, y=5, z=-4."""

from chainrule import Tensor
from chainrule.examples import Example
from chainrule.explain import explain


def run() -> Example:
    x, y, z = Tensor(-2.0, name="x"), Tensor(5.0, name="y"), Tensor(-4.0, name="z")
    q = x + y
    q.name = "q"
    f = q * z
    f.name = "f"
    f.backward()  # the gradients
    trace = explain(f)  # and the pass that produced them, node by node
    return Example(
        "circuit: f = (x + y) * z at x=-2, y=5, z=-4",
        forward={"q": q.data, "f": f.data},
        gradients={"x": x.grad, "y": y.grad, "z": z.grad},
        notes=["", "backward pass, node by node:", str(trace)],
    )


if __name__ == "__main__":
    print(run())
