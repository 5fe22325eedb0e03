"""Run the worked example `two_layer_check` (its code: src/chainrule/examples/two_layer_check.py).

Same as `chainrule demo two-layer-check`.
"""

from chainrule.examples.two_layer_check import run

if __name__ == "__main__":
    print(run())
