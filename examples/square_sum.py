"""z = (x + y)^2 as two nodes, t = x + y and z = t^2 (book 5.2): dz/dx = 2t * 1."""

from chainrule import Tensor
from chainrule.examples import Example
from chainrule.explain import explain


def run(x: float = 3.0, y: float = 2.0) -> Example:
    x_t, y_t = Tensor(x, name="x"), Tensor(y, name="y")
    t = x_t + y_t
    t.name = "t"
    z = t**2
    z.name = "z"
    z.backward()  # the gradients
    trace = explain(z)  # and the pass that produced them, node by node
    return Example(
        f"z = (x + y)^2 at x={x:g}, y={y:g}",
        forward={"t": t.data, "z": z.data},
        gradients={"x": x_t.grad, "y": y_t.grad},
        notes=["", "backward pass, node by node:", str(trace)],
    )


if __name__ == "__main__":
    print(run())
