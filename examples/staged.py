"""Run the worked example `staged` (its code: src/chainrule/examples/staged.py).

Same as `chainrule demo staged`.
"""

from chainrule.examples.staged import run

if __name__ == "__main__":
    print(run())
