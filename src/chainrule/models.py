"""Build a network from a small validated config: the registry behind ``chainrule train``.

A :class:`ModelConfig` is built once per run by :func:`model_config` (every key checked, the
defaults filled in): a frozen dict, also read by attribute. It is the JSON a checkpoint
stores, and a model can be rebuilt from that alone::

    >>> cfg = model_config("two-layer", hidden=[50])
    >>> cfg["model"], cfg.input_size, cfg["hidden"], cfg.get("output_size"), cfg["dtype"]
    ('two-layer', 784, [50], 10, 'float32')
    >>> net = build_model(cfg, rng=0)
    >>> {k: v.shape for k, v in net.params.items()}
    {'W1': (784, 50), 'b1': (50,), 'W2': (50, 10), 'b2': (10,)}
    >>> model_config(**cfg.to_dict()) == cfg
    True

Keys (every one optional; :func:`model_config` fills in the defaults):

=================  ==========================================================================
``model``          a name of :data:`MODELS`: ``"two-layer"`` (the book's
                   :class:`~chainrule.layers.TwoLayerNet`, default), ``"mlp"``
                   (:class:`~chainrule.layers.MultiLayerNet`), ``"simple-cnn"``, ``"deep-cnn"``
``engine``         ``"layers"`` (the book's networks, default) or ``"autograd"`` (their
                   :mod:`chainrule.nn` twins: :class:`~chainrule.nn.MLP`, ...)
``input_size``     features per sample (784)
``hidden``         hidden layer sizes, a list of positive ints (default: the model's, e.g.
                   ``[50]`` for two-layer, ``[256, 128]`` for mlp)
``output_size``    number of classes (10)
``activation``     a name of :data:`chainrule.activations.ACTIVATIONS` (``"relu"`` default;
                   two-layer and the CNNs: relu only)
``init``           weight scale: ``"he"``, ``"xavier"`` or a positive std; default the model's
                   (He for two-layer, the activation's scheme for mlp, 0.01 for simple-cnn,
                   the book's); ``0.01`` for two-layer is the book's ch. 5 recipe
``weight_decay``   L2 penalty λ added to the loss (mlp only; default 0)
``batchnorm``      batch normalization after each hidden affine layer (mlp only)
``dropout``        dropout ratio after each hidden activation, in [0, 1) (mlp: default 0 = off;
                   deep-cnn: default 0.5, the book's)
``dtype``          ``"float32"`` (default, fast) or ``"float64"``
=================  ==========================================================================

To add a kind of model, write a ``check(values)`` that rejects options the kind does not
support and a builder per engine, ``build(cfg, rng)``, returning an object that meets the
model protocol (:class:`chainrule.layers.network.BookNetwork`, :class:`chainrule.nn.Module`),
then call :func:`register_model`. Extra config keys it needs go in ``extra_defaults``.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

import numpy as np

from chainrule import validation as V
from chainrule.activations import ACTIVATIONS
from chainrule.backend import current_device, move_arrays

__all__ = [
    "ENGINES",
    "MODELS",
    "ModelConfig",
    "ModelSpec",
    "as_config",
    "build_model",
    "describe_model",
    "init_rng",
    "model_config",
    "register_model",
]

ENGINES = ("layers", "autograd")
DTYPES = ("float32", "float64")
INITS = ("he", "xavier")

# Keys every kind accepts, with their defaults (None: the kind decides).
_COMMON_DEFAULTS: dict[str, Any] = {
    "model": "two-layer",
    "engine": "layers",
    "input_size": 784,
    "hidden": None,
    "output_size": 10,
    "activation": "relu",
    "init": None,
    "weight_decay": 0.0,
    "batchnorm": False,
    "dropout": 0.0,
    "dtype": "float32",
}

Builder = Callable[["ModelConfig", np.random.Generator], Any]


@dataclass(frozen=True)
class ModelSpec:
    """One kind of model: its defaults, how to check its options and how to build it.

    ``hidden``: the default hidden sizes; ``init``: the default initialization (``None``: the
    activation's scheme from :data:`chainrule.activations.ACTIVATIONS`); ``builders``: a
    builder per engine it supports (``engines`` lists them).
    """

    name: str
    builders: Mapping[str, Builder]
    check: Callable[[dict[str, Any]], None]
    help: str = ""
    hidden: tuple[int, ...] = (50,)
    init: str | float | None = "he"
    extra_defaults: Mapping[str, Any] = field(default_factory=dict)

    @property
    def engines(self) -> tuple[str, ...]:
        return tuple(self.builders)

    @property
    def build(self) -> Builder:
        """The builder of the book's network (engine ``"layers"``)."""
        return self.builders["layers"]


MODELS: dict[str, ModelSpec] = {}


def register_model(
    name: str,
    build: Builder | Mapping[str, Builder],
    check: Callable[[dict[str, Any]], None] | None = None,
    *,
    help: str = "",
    hidden: tuple[int, ...] | list[int] = (50,),
    init: str | float | None = "he",
    extra_defaults: Mapping[str, Any] | None = None,
) -> ModelSpec:
    """Add a kind of model to the registry under ``name`` (replacing one of that name).

    ``build``: one builder (the ``"layers"`` engine) or a dict engine -> builder.
    """
    builders = dict(build) if isinstance(build, Mapping) else {"layers": build}
    unknown = [e for e in builders if e not in ENGINES]
    if unknown:
        raise ValueError(f"register_model: unknown engine {unknown[0]!r}; engines are {ENGINES}")
    spec = ModelSpec(
        name,
        builders,
        check or (lambda values: None),
        help,
        tuple(V.positive_ints(f"register_model({name!r})", "hidden", hidden, minimum=1)),
        init,
        dict(extra_defaults or {}),
    )
    MODELS[name] = spec
    return spec


# --------------------------------------------------------------------------------------------
# the config
# --------------------------------------------------------------------------------------------


class ModelConfig(dict):
    """A complete, validated, frozen model config (build one with :func:`model_config`).

    A ``dict`` that refuses changes: it reads like one (``cfg["hidden"]``, ``cfg.get(...)``,
    ``json.dumps(cfg)``, ``==`` with a plain dict) and by attribute (``cfg.hidden``).
    ``cfg[key]`` and ``cfg.get(key)`` return copies of lists, so nothing can change it;
    :meth:`to_dict` is a plain, JSON-able copy and ``model_config(**cfg.to_dict()) == cfg``.
    """

    __slots__ = ()

    def __init__(self, values: Mapping[str, Any], _validated: bool = False):
        if not _validated:
            raise TypeError("ModelConfig: build one with chainrule.models.model_config(...)")
        super().__init__(values)

    def __getitem__(self, key: str) -> Any:
        return copy.copy(super().__getitem__(key))

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"ModelConfig has no key {name!r}") from None

    def _frozen(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("ModelConfig is frozen: make a new one with cfg.replace(...)")

    __setitem__ = __delitem__ = __setattr__ = __delattr__ = _frozen
    clear = pop = popitem = setdefault = update = __ior__ = _frozen  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:
        return (_from_dict, (self.to_dict(),))

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-able dict of every key (a copy)."""
        return copy.deepcopy(dict(self))

    def replace(self, **changes: Any) -> ModelConfig:
        """A new config with ``changes`` applied (validated again)."""
        return model_config(**{**self.to_dict(), **changes})

    def __repr__(self) -> str:
        return "ModelConfig(" + ", ".join(f"{k}={v!r}" for k, v in self.items()) + ")"


def _from_dict(values: dict[str, Any]) -> ModelConfig:
    return model_config(**values)


def _init(value: Any) -> str | float:
    if isinstance(value, str):
        return V.choice("model config", "init", value, INITS)
    std = V.number("model config", "init", value)
    if std <= 0:
        raise ValueError(f"model config: init (a weight std) must be positive, got {value!r}")
    return std


def _normalize_common(cfg: dict[str, Any], spec: ModelSpec) -> None:
    """Check the shared keys' types and ranges in place, converting to JSON-able values."""
    me = "model config"
    cfg["engine"] = V.choice(me, "engine", cfg["engine"], ENGINES)
    cfg["input_size"] = V.positive_int(me, "input_size", cfg["input_size"])
    cfg["output_size"] = V.positive_int(me, "output_size", cfg["output_size"])
    hidden = list(spec.hidden) if cfg["hidden"] is None else cfg["hidden"]
    if isinstance(hidden, (int, np.integer)) and not isinstance(hidden, bool):
        hidden = [hidden]
    if isinstance(hidden, (list, tuple)) and not hidden:
        raise ValueError(f"{me}: hidden must list at least one layer size")
    cfg["hidden"] = V.positive_ints(me, "hidden", hidden, minimum=1)
    if cfg["activation"] not in ACTIVATIONS:
        raise ValueError(
            f"{me}: unknown activation {cfg['activation']!r}; choose from {', '.join(ACTIVATIONS)}"
        )
    if cfg["init"] is None:
        cfg["init"] = ACTIVATIONS[cfg["activation"]].init if spec.init is None else spec.init
    cfg["init"] = _init(cfg["init"])
    decay = V.number(me, "weight_decay", cfg["weight_decay"])
    if decay < 0:
        raise ValueError(f"{me}: weight_decay must be non-negative, got {decay!r}")
    cfg["weight_decay"] = decay
    cfg["batchnorm"] = V.boolean(me, "batchnorm", cfg["batchnorm"])
    cfg["dropout"] = V.ratio(me, "dropout", cfg["dropout"])
    cfg["dtype"] = V.float_dtype(me, cfg["dtype"], DTYPES).name


def model_config(model: str = "two-layer", engine: str = "layers", **options: Any) -> ModelConfig:
    """Return the complete, validated :class:`ModelConfig` for ``model`` on ``engine``.

    The result has every key, in a fixed order, with JSON-able values, and the ``init`` the
    model will actually use. Passing a config's ``to_dict()`` again gives an equal config.

    Raises:
        ValueError: an unknown model, engine or key, a value of the wrong type or out of
            range, or an option the model does not support (``batchnorm`` for two-layer).
    """
    spec = MODELS.get(model)
    if spec is None:
        raise ValueError(f"unknown model {model!r}; choose from {', '.join(MODELS)}")
    defaults = {**_COMMON_DEFAULTS, **spec.extra_defaults}
    unknown = [key for key in options if key not in defaults]
    if unknown:
        raise ValueError(
            f"model config: unknown key {unknown[0]!r} for model {model!r}; "
            f"known keys: {', '.join(k for k in defaults if k != 'model')}"
        )
    cfg = {**defaults, **options, "model": model, "engine": engine}
    _normalize_common(cfg, spec)
    if cfg["engine"] not in spec.engines:
        raise ValueError(
            f"model config: {model} cannot be built on the {cfg['engine']!r} engine "
            f"(it supports {', '.join(spec.engines)})"
        )
    spec.check(cfg)
    return ModelConfig(cfg, _validated=True)


def as_config(config: Mapping[str, Any]) -> ModelConfig:
    """``config`` itself if it is a :class:`ModelConfig`, else validated from a plain dict
    (a checkpoint's, say; one without ``engine`` is a book network's)."""
    if isinstance(config, ModelConfig):
        return config
    if not isinstance(config, Mapping):
        raise ValueError(f"model config must be a dict, got {type(config).__name__}")
    return model_config(**config)


def init_rng(seed: int) -> np.random.Generator:
    """The generator :func:`build_model` draws initial weights from for a run's ``seed``.

    A child stream of ``SeedSequence(seed)``, independent of ``default_rng(seed)`` (which the
    trainer uses to shuffle), so initial weights and batch order do not share random numbers.
    """
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,)))


def build_model(
    config: Mapping[str, Any],
    *,
    rng: np.random.Generator | int | None = None,
    device: str | None = None,
) -> Any:
    """Build the model described by ``config`` (a :class:`ModelConfig` or a plain dict).

    ``rng``: a generator or an integer seed (passed to :func:`init_rng`) for the initial
    weights (and, for models with dropout, the masks); ``None`` draws fresh entropy.
    ``device``: ``"cpu"`` or ``"cuda"``; default :func:`chainrule.current_device`. The weights
    are drawn on the host, so a seed gives the same network on either device.

    Raises:
        ValueError: an invalid config (the message names the key).
        chainrule.backend.DeviceError: ``"cuda"`` without CuPy or a GPU.
    """
    cfg = as_config(config)
    if rng is None:
        rng = np.random.default_rng()
    elif not isinstance(rng, np.random.Generator):
        rng = init_rng(int(rng))
    model = MODELS[cfg["model"]].builders[cfg["engine"]](cfg, rng)
    device = current_device() if device is None else device
    return model if device == "cpu" else move_arrays(model, device)


def describe_model(config: Mapping[str, Any]) -> str:
    """A one-line summary such as ``mlp 784-256-128-10 relu, batchnorm (float32)``."""
    cfg = as_config(config)
    sizes = "-".join(str(n) for n in [cfg["input_size"], *cfg["hidden"], cfg["output_size"]])
    parts = [f"{cfg['model']} {sizes} {cfg['activation']}"]
    if cfg["batchnorm"]:
        parts.append("batchnorm")
    if cfg["dropout"]:
        parts.append(f"dropout {cfg['dropout']:g}")
    if cfg["weight_decay"]:
        parts.append(f"weight decay {cfg['weight_decay']:g}")
    init = cfg["init"]
    parts.append(f"init {init if isinstance(init, str) else format(init, 'g')}")
    engine = "" if cfg["engine"] == "layers" else ", autograd"
    return ", ".join(parts) + f" ({cfg['dtype']}{engine})"


# --------------------------------------------------------------------------------------------
# fully connected: the two-layer net of chapter 5 and the multi-layer net of chapter 6
# --------------------------------------------------------------------------------------------


def _check_two_layer(cfg: dict[str, Any]) -> None:
    problems = []
    if len(cfg["hidden"]) != 1:
        problems.append(f"exactly one hidden layer (got hidden={cfg['hidden']})")
    if cfg["activation"] != "relu":
        problems.append(f"relu only (got activation={cfg['activation']!r})")
    if cfg["weight_decay"]:
        problems.append("no weight_decay")
    if cfg["batchnorm"]:
        problems.append("no batchnorm")
    if cfg["dropout"]:
        problems.append("no dropout")
    if problems:
        raise ValueError(
            "model config: two-layer supports " + "; ".join(problems) + " — use model 'mlp'"
        )


def _build_two_layer(cfg: ModelConfig, rng: np.random.Generator) -> Any:
    from chainrule.layers import TwoLayerNet

    return TwoLayerNet(
        cfg.input_size,
        cfg.hidden[0],
        cfg.output_size,
        weight_init_std=cfg.init,
        rng=rng,
        dtype=np.dtype(cfg.dtype),
    )


def _build_mlp(cfg: ModelConfig, rng: np.random.Generator) -> Any:
    from chainrule.layers import MultiLayerNet

    return MultiLayerNet(
        cfg.input_size,
        cfg.hidden,
        cfg.output_size,
        activation=cfg.activation,
        weight_init_std=cfg.init,
        weight_decay_lambda=cfg.weight_decay,
        use_batchnorm=cfg.batchnorm,
        use_dropout=cfg.dropout > 0,
        dropout_ratio=cfg.dropout if cfg.dropout > 0 else 0.5,
        rng=rng,
        dtype=np.dtype(cfg.dtype),
    )


def _build_nn_mlp(cfg: ModelConfig, rng: np.random.Generator) -> Any:
    """The :class:`chainrule.nn.MLP` twin of two-layer and mlp (same sizes, init, draws)."""
    from chainrule.nn import MLP

    return MLP(
        [cfg.input_size, *cfg.hidden, cfg.output_size],
        activation=cfg.activation,
        batchnorm=cfg.batchnorm,
        dropout=cfg.dropout,
        init=cfg.init,
        rng=rng,
        dtype=np.dtype(cfg.dtype),
        weight_decay=cfg.weight_decay,
    )


# He (two-layer's default) is the scale the book itself recommends for ReLU (ch. 6), not
# ch. 5's 0.01: over seeds 0-9 it ends 10,000 iterations at 96.91-97.24% (mean 97.06%) against
# 96.84-97.15% (mean 97.00%) for 0.01 (docs/results.md). `init=0.01` is the book's.
register_model(
    "two-layer",
    {"layers": _build_two_layer, "autograd": _build_nn_mlp},
    _check_two_layer,
    help="the book's TwoLayerNet: Affine-ReLU-Affine-Softmax (chapter 5)",
    hidden=(50,),
    init="he",
)
register_model(
    "mlp",
    {"layers": _build_mlp, "autograd": _build_nn_mlp},
    help="the book's MultiLayerNet: (Affine-[BatchNorm]-act-[Dropout]) x n, Affine-Softmax",
    hidden=(256, 128),
    init=None,  # the activation's: He for relu, Xavier for sigmoid and tanh
)


# --------------------------------------------------------------------------------------------
# the convolutional networks of chapters 7 and 8
# --------------------------------------------------------------------------------------------


def _image_dim(cfg: Mapping[str, Any]) -> tuple[int, int, int]:
    side = math.isqrt(cfg["input_size"])
    if side * side != cfg["input_size"]:
        raise ValueError(
            f"model config: {cfg['model']} needs square 1-channel images; input_size "
            f"{cfg['input_size']} is not a square number"
        )
    return (1, side, side)


def _check_cnn(cfg: dict[str, Any]) -> None:
    _image_dim(cfg)
    problems = []
    if len(cfg["hidden"]) != 1:
        problems.append(f"exactly one hidden affine size (got hidden={cfg['hidden']})")
    if cfg["activation"] != "relu":
        problems.append(f"relu only (got activation={cfg['activation']!r})")
    if cfg["batchnorm"] or cfg["weight_decay"]:
        problems.append("no batchnorm or weight_decay")
    if cfg["model"] == "simple-cnn" and cfg["dropout"]:
        problems.append("no dropout")
    if problems:
        raise ValueError(f"model config: {cfg['model']} supports " + "; ".join(problems))


def _conv_net(cfg: ModelConfig, rng: np.random.Generator, engine: str) -> Any:
    """The book's SimpleConvNet/DeepConvNet or, on the autograd engine, its nn twin."""
    where = importlib.import_module("chainrule.layers" if engine == "layers" else "chainrule.nn")
    name = "SimpleConvNet" if cfg.model == "simple-cnn" else "DeepConvNet"
    cls = getattr(where, name, None)
    if cls is None:
        raise ValueError(
            f"model config: {cfg.model} is not available on the autograd engine in this "
            f"version (chainrule.nn.{name} is missing); use engine='layers'"
        )
    options: dict[str, Any] = {"weight_init_std": cfg.init}
    if cfg.model == "deep-cnn":
        options["dropout_ratio"] = cfg.dropout
    if "weight_init_std" not in inspect.signature(cls).parameters:
        if cfg.init != "he":  # a network that always uses He initialization
            raise ValueError(
                f"model config: {cfg.model} on the {engine} engine uses He initialization "
                f"only; got init={cfg.init!r}"
            )
        del options["weight_init_std"]
    return cls(
        _image_dim(cfg),
        hidden_size=cfg.hidden[0],
        output_size=cfg.output_size,
        rng=rng,
        dtype=np.dtype(cfg.dtype),
        **options,
    )


def _conv_builders() -> dict[str, Builder]:
    return {
        "layers": lambda cfg, rng: _conv_net(cfg, rng, "layers"),
        "autograd": lambda cfg, rng: _conv_net(cfg, rng, "autograd"),
    }


register_model(
    "simple-cnn",
    _conv_builders(),
    _check_cnn,
    help="the book's SimpleConvNet: Conv(30 5x5)-ReLU-Pool-Affine(100)-ReLU-Affine (chapter 7)",
    hidden=(100,),
    init=0.01,  # the book's
)
register_model(
    "deep-cnn",
    _conv_builders(),
    _check_cnn,
    help="the book's DeepConvNet: six 3x3 convs, three pools, Affine(50), dropout (chapter 8)",
    hidden=(50,),
    init="he",  # DeepConvNet's own He initialization
    extra_defaults={"dropout": 0.5},  # the book's ratio; dropout 0 turns both layers off
)
