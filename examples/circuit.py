"""Run the worked example `circuit` (its code: src/chainrule/examples/circuit.py).

Same as `chainrule demo circuit`.
"""

from chainrule.examples.circuit import run

if __name__ == "__main__":
    print(run())
