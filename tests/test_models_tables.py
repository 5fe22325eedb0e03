"""The one-source tables and helpers: chainrule.activations and chainrule.validation."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule import nn, validation
from chainrule.activations import ACTIVATIONS, activation
from chainrule.layers import MultiLayerNet
from chainrule.models import model_config
from chainrule.nn.init import GAINS, check_init


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_each_activation_is_the_same_function_on_every_engine(name):
    record = ACTIVATIONS[name]
    x = np.random.default_rng(0).standard_normal((3, 4))
    x[np.abs(x) < 1e-3] = 0.5  # away from the kink
    by_layer = record.layer().forward(x)
    by_function = record.function(x).data
    by_module = record.module()(x).data
    np.testing.assert_allclose(by_function, by_layer, rtol=1e-15)
    np.testing.assert_allclose(by_module, by_layer, rtol=1e-15)
    assert record.init in GAINS and check_init("t", "init", name) == record.init
    edges = record.bin_edges()
    assert edges.dtype == np.float64 and len(edges) > 10 and np.all(np.diff(edges) > 0)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_every_activation_builds_in_every_network(name):
    book = MultiLayerNet(4, [3], 2, activation=name, rng=np.random.default_rng(0))
    assert f"{ACTIVATIONS[name].layer_name}1" in book.layers
    twin = nn.MLP([4, 3, 2], activation=name, rng=np.random.default_rng(0))
    assert isinstance(twin[1], ACTIVATIONS[name].module)
    assert model_config("mlp", activation=name)["init"] == ACTIVATIONS[name].init


def test_unknown_activation_names_the_owner_and_choices():
    with pytest.raises(ValueError, match="MLP: activation must be one of relu, sigmoid, tanh"):
        nn.MLP([2, 2], activation="gelu")
    with pytest.raises(ValueError, match="MultiLayerNet: activation must be one of"):
        MultiLayerNet(2, [2], 2, activation="swish")
    assert activation("TANH").name == "tanh"


@pytest.mark.parametrize(
    ("helper", "value", "message"),
    [
        (validation.positive_int, 0, "n must be a positive integer, got 0"),
        (validation.positive_int, True, "n must be a positive integer, got True"),
        (validation.positive_int, 2.0, "n must be a positive integer, got 2.0"),
        (validation.ratio, 1, "n must be in [0, 1), got 1"),
        (validation.ratio, -0.1, "n must be in [0, 1), got -0.1"),
        (validation.ratio, False, "n must be in [0, 1), got False"),
        (validation.positive_float, 0.0, "n must be a finite positive number"),
        (validation.positive_float, float("inf"), "n must be a finite positive number"),
        (validation.nonnegative_float, -1, "n must be a finite non-negative number"),
        (validation.number, float("nan"), "n must be a finite number"),
        (validation.boolean, 1, "n must be true or false, got 1"),
    ],
)
def test_validation_helpers_name_owner_argument_and_value(helper, value, message):
    with pytest.raises(ValueError) as e:
        helper("Owner", "n", value)
    assert str(e.value).startswith(f"Owner: {message}")


def test_validation_helpers_normalize():
    assert validation.positive_int("o", "n", np.int64(3)) == 3
    assert validation.positive_ints("o", "sizes", np.array([3, 4])) == [3, 4]
    with pytest.raises(ValueError, match=r"sizes\[1\] must be a positive integer"):
        validation.positive_ints("o", "sizes", [3, 0])
    with pytest.raises(ValueError, match="list of at least 2 positive integers"):
        validation.positive_ints("o", "sizes", [3], minimum=2)
    assert validation.ratio("o", "p", np.float32(0.5)) == 0.5
    assert validation.choice("o", "kind", "He", ("he", "xavier")) == "he"
    assert validation.float_dtype("o", "float32") == np.float32
    with pytest.raises(ValueError, match="dtype must be 'float64'"):
        validation.float_dtype("o", np.float32, ("float64",))
    with pytest.raises(ValueError, match="dtype must be a floating-point type"):
        validation.float_dtype("o", "int8")
