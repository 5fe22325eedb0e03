"""Apples and oranges (book 5.4.2): two MulLayers feed an AddLayer, then the tax MulLayer."""

from chainrule.examples import Example
from chainrule.layers import AddLayer, MulLayer


def run() -> Example:
    apple, apple_num = 100, 2
    orange, orange_num = 150, 3
    tax = 1.1
    mul_apple_layer, mul_orange_layer = MulLayer(), MulLayer()
    add_apple_orange_layer, mul_tax_layer = AddLayer(), MulLayer()

    # forward
    apple_price = mul_apple_layer.forward(apple, apple_num)  # (1)
    orange_price = mul_orange_layer.forward(orange, orange_num)  # (2)
    all_price = add_apple_orange_layer.forward(apple_price, orange_price)  # (3)
    price = mul_tax_layer.forward(all_price, tax)  # (4)

    # backward, in the reverse order: (4) (3) (2) (1)
    dprice = 1
    dall_price, dtax = mul_tax_layer.backward(dprice)  # (4)
    dapple_price, dorange_price = add_apple_orange_layer.backward(dall_price)  # (3)
    dorange, dorange_num = mul_orange_layer.backward(dorange_price)  # (2)
    dapple, dapple_num = mul_apple_layer.backward(dapple_price)  # (1)

    return Example(
        "apple and orange: 2 apples at 100, 3 oranges at 150, 10% tax",
        forward={"all_price": all_price, "price": price},
        gradients={
            "apple_num": dapple_num,
            "apple": dapple,
            "orange": dorange,
            "orange_num": dorange_num,
            "tax": dtax,
        },
    )


if __name__ == "__main__":
    print(run())
