"""Run the worked example `apple` (its code: src/chainrule/examples/apple.py).

Same as `chainrule demo apple`.
"""

from chainrule.examples.apple import run

if __name__ == "__main__":
    print(run())
