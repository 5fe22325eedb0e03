"""Run the worked example `sigmoid_neuron` (its code: src/chainrule/examples/sigmoid_neuron.py).

Same as `chainrule demo sigmoid-neuron`.
"""

from chainrule.examples.sigmoid_neuron import run

if __name__ == "__main__":
    print(run())
