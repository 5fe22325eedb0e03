"""chainrule.models: the frozen ModelConfig, the registry, both engines."""

from __future__ import annotations

import copy
import json
import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chainrule import models, nn
from chainrule.activations import ACTIVATIONS
from chainrule.layers import DeepConvNet, MultiLayerNet, TwoLayerNet
from chainrule.models import MODELS, ModelConfig, build_model, init_rng, model_config


def test_config_reads_like_a_dict_and_by_attribute():
    cfg = model_config("mlp", hidden=[8, 4], activation="tanh", input_size=12, output_size=3)
    assert cfg["hidden"] == [8, 4] and cfg.hidden == [8, 4] and cfg.get("dropout") == 0.0
    assert cfg.get("nope", 7) == 7 and "engine" in cfg and len(cfg) == len(cfg.to_dict())
    assert cfg.init == "xavier"  # the activation's scheme
    with pytest.raises(AttributeError, match="no key 'nope'"):
        _ = cfg.nope


def test_config_is_frozen():
    cfg = model_config(hidden=[20])
    for change in (
        lambda: setattr(cfg, "hidden", [3]),
        lambda: cfg.__setitem__("hidden", [3]),
        lambda: cfg.update(hidden=[3]),
        lambda: cfg.pop("hidden"),
        lambda: cfg.setdefault("extra", 1),
        cfg.clear,
    ):
        with pytest.raises(TypeError, match="frozen"):
            change()
    cfg["hidden"].append(5)  # a copy
    cfg.get("hidden").append(5)
    cfg.to_dict()["hidden"].append(5)
    assert cfg["hidden"] == [20]
    with pytest.raises(TypeError, match="model_config"):
        ModelConfig({"model": "two-layer"})


def test_config_round_trips_through_json_pickle_and_copy():
    cfg = model_config("deep-cnn", engine="layers", input_size=144, hidden=[6], dropout=0.25)
    text = json.dumps(cfg)
    assert json.loads(text) == cfg.to_dict()
    again = model_config(**json.loads(text))
    assert again == cfg and isinstance(again, ModelConfig)
    assert pickle.loads(pickle.dumps(cfg)) == cfg and copy.deepcopy(cfg) == cfg
    assert cfg == cfg.to_dict()  # equal to its plain dict
    assert cfg.replace(dropout=0.0)["dropout"] == 0.0 and cfg["dropout"] == 0.25


def test_config_is_validated_once(monkeypatch):
    cfg = model_config("mlp", input_size=6, hidden=[5], output_size=3)
    calls = []
    original = models._normalize_common
    monkeypatch.setattr(models, "_normalize_common", lambda c, s: calls.append(1) or original(c, s))
    build_model(cfg, rng=0)
    models.describe_model(cfg)
    assert calls == []
    build_model(cfg.to_dict(), rng=0)  # a plain dict (a checkpoint's) is checked
    assert calls == [1]


def test_registry_carries_defaults_and_engines():
    assert list(MODELS) == ["two-layer", "mlp", "simple-cnn", "deep-cnn"]
    assert MODELS["mlp"].hidden == (256, 128) and MODELS["two-layer"].hidden == (50,)
    assert MODELS["simple-cnn"].init == 0.01 and MODELS["mlp"].init is None
    assert all(spec.engines == ("layers", "autograd") for spec in MODELS.values())
    assert model_config("mlp")["hidden"] == [256, 128]
    assert model_config("simple-cnn")["hidden"] == [100]


def test_a_new_model_registers_with_its_defaults():
    def build(cfg, rng):
        return TwoLayerNet(cfg.input_size, cfg.hidden[0], cfg.output_size, rng=rng)

    try:
        spec = models.register_model("tiny", build, help="test", hidden=[3], init=0.5)
        assert spec.engines == ("layers",)
        cfg = model_config("tiny", input_size=4, output_size=2)
        assert cfg.hidden == [3] and cfg.init == 0.5
        assert build_model(cfg, rng=0).params["W1"].shape == (4, 3)
        with pytest.raises(ValueError, match="cannot be built on the 'autograd' engine"):
            model_config("tiny", engine="autograd")
        with pytest.raises(ValueError, match="unknown engine 'jax'"):
            models.register_model("tiny2", {"jax": build})
    finally:
        MODELS.pop("tiny", None)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"engine": "torch"}, "engine must be one of layers, autograd"),
        ({"hidden": []}, "at least one"),
        ({"init": "lecun"}, "init must be one of he, xavier"),
        ({"dtype": "int8"}, "dtype must be 'float32' or 'float64'"),
        ({"dropout": -0.5}, "dropout must be in [0, 1)"),
    ],
)
def test_config_errors_name_the_key(options, message):
    with pytest.raises(ValueError) as e:
        model_config("mlp", **options)
    assert message in str(e.value)


def test_init_is_chosen_in_the_constructor():
    cfg = model_config(input_size=20, hidden=[16], output_size=4, init="he")
    built = build_model(cfg, rng=5)
    direct = TwoLayerNet(20, 16, 4, weight_init_std="he", rng=init_rng(5), dtype=np.float32)
    for key in built.params:
        np.testing.assert_array_equal(built.params[key], direct.params[key])
    deep = build_model(model_config("deep-cnn", input_size=144, hidden=[6], init=0.01), rng=0)
    assert isinstance(deep, DeepConvNet) and deep.weight_init_std == 0.01
    assert 0.005 < deep.params["W1"].std() < 0.015


@pytest.mark.parametrize("model", ["two-layer", "mlp"])
def test_autograd_engine_builds_the_nn_twin_with_the_same_weights(model):
    options = {"hidden": [6, 5]} if model == "mlp" else {"hidden": [6]}
    layers_cfg = model_config(model, input_size=7, output_size=3, dtype="float64", **options)
    twin_cfg = layers_cfg.replace(engine="autograd")
    book, twin = build_model(layers_cfg, rng=2), build_model(twin_cfg, rng=2)
    assert isinstance(twin, nn.MLP) and twin.engine == "autograd"
    book_weights = [v for k, v in book.params.items() if k.startswith("W")]
    twin_weights = [v for k, v in twin.params.items() if k.endswith(".W")]
    for a, b in zip(book_weights, twin_weights, strict=True):
        np.testing.assert_array_equal(a, b)
    x, t = np.random.default_rng(0).standard_normal((4, 7)), np.array([0, 1, 2, 1])
    assert twin.loss_and_grads(x, t)[0] == pytest.approx(book.loss_and_grads(x, t)[0], rel=1e-12)
    assert "autograd" in models.describe_model(twin_cfg)


def test_autograd_mlp_options_become_modules():
    cfg = model_config(
        "mlp",
        engine="autograd",
        input_size=6,
        hidden=[5, 4],
        output_size=3,
        batchnorm=True,
        dropout=0.3,
        weight_decay=0.01,
    )
    twin = build_model(cfg, rng=0)
    kinds = [type(m).__name__ for m in twin]
    assert kinds.count("BatchNorm1d") == 2 and kinds.count("Dropout") == 2
    assert twin.weight_decay == 0.01
    book = build_model(cfg.replace(engine="layers"), rng=0)
    assert isinstance(book, MultiLayerNet) and book.use_dropout and book.use_batchnorm


@pytest.mark.parametrize("model", ["simple-cnn", "deep-cnn"])
def test_autograd_conv_nets_are_built_or_refused_clearly(model):
    cfg = model_config(model, engine="autograd", input_size=144, hidden=[6], output_size=3)
    name = "SimpleConvNet" if model == "simple-cnn" else "DeepConvNet"
    if not hasattr(nn, name):
        with pytest.raises(ValueError, match=f"chainrule.nn.{name} is missing"):
            build_model(cfg, rng=0)
        return
    cfg = cfg.replace(dtype="float64")
    twin = build_model(cfg, rng=0)
    book = build_model(cfg.replace(engine="layers"), rng=0)
    assert twin.engine == "autograd" and list(twin.params) == list(book.params)
    for key, value in book.params.items():  # the same draws from the same seed
        np.testing.assert_array_equal(twin.params[key], value, err_msg=key)
    x = np.random.default_rng(1).standard_normal((2, 144))
    np.testing.assert_allclose(twin.predict(x), book.predict(x), rtol=1e-10)


@given(
    hidden=st.lists(st.integers(1, 512), min_size=1, max_size=4),
    activation=st.sampled_from(sorted(ACTIVATIONS)),
    init=st.one_of(st.none(), st.sampled_from(["he", "xavier", "HE"]), st.floats(1e-4, 1.0)),
    dropout=st.floats(0.0, 0.99),
    weight_decay=st.floats(0.0, 1.0),
    batchnorm=st.booleans(),
    engine=st.sampled_from(["layers", "autograd"]),
    dtype=st.sampled_from(["float32", "float64", np.float32]),
)
def test_any_valid_mlp_config_round_trips(
    hidden, activation, init, dropout, weight_decay, batchnorm, engine, dtype
):
    cfg = model_config(
        "mlp", engine=engine, hidden=hidden, activation=activation, init=init,
        dropout=dropout, weight_decay=weight_decay, batchnorm=batchnorm, dtype=dtype,
    )  # fmt: skip
    assert model_config(**json.loads(json.dumps(cfg))) == cfg
    assert cfg.init in ("he", "xavier") or isinstance(cfg.init, float)
    assert cfg.dtype in ("float32", "float64") and cfg.hidden == hidden
