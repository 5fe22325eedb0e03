"""Buying apples (book 5.4): price = apple * apple_num * tax, backprop through two MulLayers."""

from chainrule.examples import Example
from chainrule.layers import MulLayer


def run() -> Example:
    apple, apple_num, tax = 100, 2, 1.1
    mul_apple_layer, mul_tax_layer = MulLayer(), MulLayer()

    # forward
    apple_price = mul_apple_layer.forward(apple, apple_num)
    price = mul_tax_layer.forward(apple_price, tax)

    # backward: start from dprice = 1, each layer returns upstream x local derivative
    dprice = 1
    dapple_price, dtax = mul_tax_layer.backward(dprice)
    dapple, dapple_num = mul_apple_layer.backward(dapple_price)

    return Example(
        "apple: 2 apples at 100 with 10% tax",
        forward={"apple_price": apple_price, "price": price},
        gradients={"apple": dapple, "apple_num": dapple_num, "tax": dtax},
    )


if __name__ == "__main__":
    print(run())
