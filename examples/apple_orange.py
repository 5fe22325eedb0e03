"""Run the worked example `apple_orange` (its code: src/chainrule/examples/apple_orange.py).

Same as `chainrule demo apple-orange`.
"""

from chainrule.examples.apple_orange import run

if __name__ == "__main__":
    print(run())
