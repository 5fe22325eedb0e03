"""Run the worked example `square_sum` (its code: src/chainrule/examples/square_sum.py).

Same as `chainrule demo square-sum`.
"""

from chainrule.examples.square_sum import run

if __name__ == "__main__":
    print(run())
