"""The Trainer, the model registry and the training-curve plot, on small synthetic data.

One test marked ``slow`` trains on the real MNIST files from ``../shared/data`` (or
``$CHAINRULE_DATA``) and is skipped, visibly, when they are absent.
"""

from __future__ import annotations

import io
import json
import math
import re
import sys

import numpy as np
import pytest

from chainrule.models import build_model, describe_model, init_rng, model_config
from chainrule.optim import SGD, Adam, optimizer_from_name
from chainrule.serialization import CheckpointError, load_checkpoint
from chainrule.training import (
    HISTORY_KEYS,
    CosineSchedule,
    StepSchedule,
    Trainer,
    TrainingDiverged,
    decode_rng,
    encode_rng,
    evaluate,
    load_model_state,
    make_schedule,
    save_history,
)

FEATURES, CLASSES = 20, 4


def blobs(n: int, seed: int, *, features: int = FEATURES, classes: int = CLASSES):
    """Gaussian clusters around fixed class centres: learnable, but not in one step."""
    centres = np.random.default_rng(99).normal(0.0, 1.0, (classes, features))
    rng = np.random.default_rng(seed)
    t = rng.integers(0, classes, n)
    x = centres[t] + rng.normal(0.0, 1.0, (n, features))
    return x.astype(np.float32), t.astype(np.int64)


@pytest.fixture(scope="module")
def data():
    (x, t), (xt, tt) = blobs(500, 1), blobs(200, 2)
    return x, t, xt, tt


def small_config(model: str = "two-layer", **options):
    hidden = options.pop("hidden", [16] if model == "two-layer" else [16, 12])
    if model == "two-layer":
        options.setdefault("init", "he")  # learns these blobs faster than the book's 0.01
    return model_config(model, input_size=FEATURES, hidden=hidden, output_size=CLASSES, **options)


def make_trainer(data, config=None, optimizer=None, seed=0, model=None, **options):
    config = config or small_config()
    options.setdefault("batch_size", 50)
    options.setdefault("progress", "none")
    if "epochs" not in options and "iterations" not in options:
        options["epochs"] = 2
    model = model if model is not None else build_model(config, rng=seed)
    optimizer = optimizer or SGD(lr=0.1)
    return Trainer(model, optimizer, *data, seed=seed, model_config=config, **options)


def params_of(trainer) -> dict[str, np.ndarray]:
    return {k: v.copy() for k, v in trainer.model.params.items()}


def assert_same_arrays(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == b[key].dtype, key
        assert np.array_equal(a[key], b[key]), f"{key} differs"


# --------------------------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------------------------


def test_model_config_defaults_are_the_books():
    # The book's network, optimizer and schedule; the weight scale is He (the book's advice for
    # ReLU in ch. 6) rather than ch. 5's 0.01, which stays one option away.
    cfg = model_config()
    assert cfg == {
        "model": "two-layer",
        "engine": "layers",
        "input_size": 784,
        "hidden": [50],
        "output_size": 10,
        "activation": "relu",
        "init": "he",
        "weight_decay": 0.0,
        "batchnorm": False,
        "dropout": 0.0,
        "dtype": "float32",
    }
    assert model_config(**{k: v for k, v in cfg.items() if k != "model"}) == cfg
    assert json.loads(json.dumps(cfg)) == cfg
    mlp = model_config("mlp", hidden=[8, 8], activation="tanh")
    assert mlp["init"] == "xavier"
    assert model_config("mlp")["init"] == "he"
    assert model_config(init=0.01)["init"] == 0.01


def test_deep_cnn_dropout_defaults_to_the_books_and_zero_turns_it_off():
    assert model_config("deep-cnn")["dropout"] == 0.5
    assert model_config("deep-cnn", dropout=0.25)["dropout"] == 0.25
    cfg = model_config("deep-cnn", input_size=144, hidden=[6], output_size=3, dropout=0)
    assert cfg["dropout"] == 0.0
    net = build_model(cfg, rng=0)
    x = np.random.default_rng(1).random((2, 1, 12, 12)).astype(np.float32)
    # No dropout: training-mode scores are the evaluation-mode ones.
    assert np.array_equal(net.predict(x, train_flg=True), net.predict(x, train_flg=False))
    with_dropout = build_model({**cfg, "dropout": 0.5}, rng=0)
    assert not np.array_equal(
        with_dropout.predict(x, train_flg=True), with_dropout.predict(x, train_flg=False)
    )


@pytest.mark.parametrize(
    ("model", "options", "message"),
    [
        ("cnn9", {}, "unknown model 'cnn9'"),
        ("two-layer", {"hiden": [3]}, "unknown key 'hiden'"),
        ("two-layer", {"hidden": [3, 4]}, "exactly one hidden layer"),
        ("two-layer", {"batchnorm": True}, "no batchnorm"),
        ("two-layer", {"dropout": 0.5}, "use model 'mlp'"),
        ("two-layer", {"activation": "tanh"}, "relu only"),
        ("mlp", {"hidden": []}, "at least one"),
        ("mlp", {"hidden": [4, 0]}, "hidden[1] must be a positive integer"),
        ("mlp", {"input_size": 2.5}, "input_size must be a positive integer"),
        ("mlp", {"activation": "gelu"}, "unknown activation 'gelu'"),
        ("mlp", {"init": "lecun"}, "init must be"),
        ("mlp", {"init": -1.0}, "must be positive"),
        ("mlp", {"dropout": 1.0}, "dropout must be in [0, 1)"),
        ("mlp", {"weight_decay": -0.1}, "weight_decay must be non-negative"),
        ("mlp", {"dtype": "float16"}, "dtype must be"),
        ("mlp", {"batchnorm": "yes"}, "batchnorm must be true or false"),
    ],
)
def test_model_config_errors(model, options, message):
    with pytest.raises(ValueError) as e:
        model_config(model, **options)
    assert message in str(e.value)


def test_build_model_two_layer_dtype_and_init():
    net = build_model(small_config(init=0.01), rng=3)
    assert {k: v.dtype for k, v in net.params.items()} == dict.fromkeys(
        ("W1", "b1", "W2", "b2"), np.float32
    )
    assert 0.005 < net.params["W1"].std() < 0.015  # the book's 0.01
    he = build_model(small_config(init="he", hidden=[400], dtype="float64"), rng=3)
    assert he.params["W1"].dtype == np.float64
    assert he.params["W1"].std() == pytest.approx(math.sqrt(2 / FEATURES), rel=0.05)
    assert he.params["W2"].std() == pytest.approx(math.sqrt(2 / 400), rel=0.1)
    # Same seed, same weights; the init stream is not the shuffling stream.
    again = build_model(small_config(init=0.01), rng=init_rng(3))
    assert_same_arrays(net.params, again.params)
    assert "two-layer 20-16-4 relu" in describe_model(small_config())


def test_build_model_mlp():
    cfg = small_config("mlp", batchnorm=True, dropout=0.2, weight_decay=0.01)
    net = build_model(cfg, rng=0)
    assert sorted(net.params) == sorted(
        ["W1", "b1", "W2", "b2", "W3", "b3", "gamma1", "beta1", "gamma2", "beta2"]
    )
    assert net.params["W1"].shape == (FEATURES, 16) and net.params["W3"].shape == (12, CLASSES)
    assert set(net.buffers) == {"running_mean1", "running_var1", "running_mean2", "running_var2"}
    assert all(p.dtype == np.float32 for p in net.params.values())
    assert "batchnorm, dropout 0.2, weight decay 0.01" in describe_model(cfg)


# --------------------------------------------------------------------------------------------
# schedules
# --------------------------------------------------------------------------------------------


def test_schedules():
    step = StepSchedule(step_epochs=2, gamma=0.5)
    assert [step.factor(i, 10, 100) for i in (0, 19, 20, 39, 40)] == [1, 1, 0.5, 0.5, 0.25]
    cos = CosineSchedule()
    assert cos.factor(0, 10, 100) == 1.0
    assert cos.factor(50, 10, 100) == pytest.approx(0.5)
    assert 0 < cos.factor(99, 10, 100) < 0.001
    assert make_schedule("none") is None and make_schedule(None) is None
    assert make_schedule(step.config()) == step
    assert make_schedule({"name": "cosine", "min_factor": 0.1}) == CosineSchedule(0.1)
    for bad, message in [("linear", "unknown schedule"), ({"name": "step", "gamma": 2}, "gamma")]:
        with pytest.raises(ValueError, match=message):
            make_schedule(bad)


def test_schedule_sets_the_learning_rate(data):
    trainer = make_trainer(data, epochs=4, schedule=StepSchedule(step_epochs=1, gamma=0.5))
    trainer.fit()
    assert trainer.history["lr"] == [0.1, 0.05, 0.025, 0.0125]
    cosine = make_trainer(data, epochs=2, schedule="cosine")
    cosine.fit()
    lr = cosine.history["lr"]  # at the last step of each epoch: 10 steps per epoch
    assert lr[0] == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi * 9 / 20)))
    assert lr[1] == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi * 19 / 20)))


# --------------------------------------------------------------------------------------------
# the training loop
# --------------------------------------------------------------------------------------------


def test_loss_falls_and_history_has_one_entry_per_epoch(data):
    trainer = make_trainer(data, epochs=5)
    history = trainer.fit()
    assert list(history) == list(HISTORY_KEYS)
    assert history["epoch"] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert history["iteration"] == [10, 20, 30, 40, 50]
    assert all(len(v) == 5 for v in history.values())
    assert history["train_loss"][-1] < 0.5 * history["train_loss"][0]
    assert history["test_loss"][-1] < history["test_loss"][0]
    assert history["test_acc"][-1] > 0.85
    assert history["seconds"] == sorted(history["seconds"])
    loss, acc = evaluate(trainer.model, data[2], data[3])
    assert (loss, acc) == (history["test_loss"][-1], history["test_acc"][-1])


def test_epoch_is_floor_n_over_batch_and_a_partial_last_epoch_is_evaluated(data):
    trainer = make_trainer(data, batch_size=64, iterations=17)
    assert trainer.iters_per_epoch == 500 // 64 == 7
    history = trainer.fit()
    assert history["iteration"] == [7, 14, 17]
    assert history["epoch"] == [1.0, 2.0, 17 / 7]
    with pytest.raises(ValueError, match="exactly one of epochs and iterations"):
        make_trainer(data, epochs=1, iterations=3)
    with pytest.raises(ValueError, match="larger than the training set"):
        make_trainer(data, batch_size=501)
    every = make_trainer(data, iterations=25, eval_every=4)
    assert every.fit()["iteration"] == [4, 8, 12, 16, 20, 24, 25]


class Recorder:
    """A do-nothing model that records which samples each batch held (feature 0 = index)."""

    def __init__(self) -> None:
        self.params = {"w": np.zeros(3, dtype=np.float32)}
        self.batches: list[np.ndarray] = []

    def loss_and_grads(self, x, t):
        self.batches.append(x[:, 0].astype(int).copy())
        return 0.0, {"w": np.zeros(3, dtype=np.float32)}

    def predict(self, x):
        return np.zeros((len(x), 3), dtype=np.float32)


@pytest.mark.parametrize(("n", "batch"), [(60, 10), (65, 10)])
def test_each_epoch_draws_batches_without_replacement(n, batch):
    x = np.arange(n, dtype=np.float32).reshape(n, 1)
    t = np.zeros(n, dtype=np.int64)
    model = Recorder()
    Trainer(model, SGD(), x, t, x, t, batch_size=batch, epochs=3, progress="none").fit()
    per_epoch = n // batch
    assert len(model.batches) == 3 * per_epoch
    epochs = [
        np.concatenate(model.batches[i : i + per_epoch]) for i in range(0, 3 * per_epoch, per_epoch)
    ]
    for seen in epochs:
        assert len(seen) == per_epoch * batch == len(set(seen.tolist()))  # no repeats
    assert not np.array_equal(epochs[0], epochs[1])  # a fresh permutation each epoch
    if n % batch == 0:
        assert all(sorted(seen.tolist()) == list(range(n)) for seen in epochs)


def test_train_subset_is_fixed_and_independent_of_the_seed(data):
    a = make_trainer(data, eval_subset=100, seed=0)
    b = make_trainer(data, eval_subset=100, seed=5)
    assert len(a.x_eval) == 100
    assert np.array_equal(a.x_eval, b.x_eval)
    assert make_trainer(data, eval_subset=10_000).x_eval is data[0]


def test_same_seed_gives_bit_identical_weights(data):
    runs = [
        make_trainer(data, config=small_config("mlp"), optimizer=Adam(), seed=s) for s in (7, 7, 8)
    ]
    for trainer in runs:
        trainer.fit()
    assert_same_arrays(params_of(runs[0]), params_of(runs[1]))
    assert runs[0].history["test_loss"] == runs[1].history["test_loss"]
    assert not np.array_equal(runs[0].model.params["W1"], runs[2].model.params["W1"])


def test_progress_modes(data):
    lines = io.StringIO()
    make_trainer(data, progress="lines", stream=lines).fit()
    text = lines.getvalue().splitlines()
    assert len(text) == 2 and text[0].startswith("epoch     1  iter 10")
    assert "test loss" in text[0] and "acc" in text[0]
    auto = io.StringIO()  # not a terminal: no bar, the same plain lines
    make_trainer(data, progress="auto", stream=auto).fit()

    def without_times(text):
        return re.sub(r"[0-9.]+s$", "", text, flags=re.M)

    assert without_times(auto.getvalue()) == without_times(lines.getvalue())
    quiet = io.StringIO()
    make_trainer(data, progress="none", stream=quiet).fit()
    assert quiet.getvalue() == ""
    pytest.importorskip("tqdm")
    bar = io.StringIO()
    make_trainer(data, progress="bar", stream=bar).fit()
    assert "epoch     2  iter 20" in bar.getvalue()
    with pytest.raises(ValueError, match="progress must be"):
        make_trainer(data, progress="loud")


def test_training_works_without_tqdm(data, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm now raises ImportError
    out = io.StringIO()
    make_trainer(data, progress="bar", stream=out).fit()
    assert out.getvalue().count("\n") == 2


def test_one_hot_labels(data):
    x, t, xt, tt = data
    eye = np.eye(CLASSES, dtype=np.float32)
    a = make_trainer((x, eye[t], xt, eye[tt]))
    b = make_trainer(data)
    a.fit()
    b.fit()
    assert a.history["test_acc"] == b.history["test_acc"]


def test_evaluate_is_exact_and_batch_size_independent_for_accuracy(data):
    model = build_model(small_config(dtype="float64"), rng=0)
    x, t = data[2].astype(np.float64), data[3]
    loss, acc = evaluate(model, x, t, batch_size=7)
    scores = model.predict(x)
    logp = scores - scores.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    assert loss == pytest.approx(-logp[np.arange(len(t)), t].mean(), rel=1e-12)
    assert acc == np.count_nonzero(scores.argmax(1) == t) / len(t)
    assert evaluate(model, x, t, batch_size=1000)[1] == acc


# --------------------------------------------------------------------------------------------
# checkpoints and resuming
# --------------------------------------------------------------------------------------------


def optimizer_state(trainer) -> dict[str, np.ndarray]:
    return trainer.optimizer.state_dict()["slots"]


@pytest.mark.parametrize(
    ("model", "options"),
    [
        ("two-layer", {}),
        ("mlp", {"batchnorm": True, "dropout": 0.3, "weight_decay": 1e-3}),
    ],
)
def test_resume_gives_exactly_the_uninterrupted_weights(data, tmp_path, model, options):
    config = small_config(model, **options)

    full = make_trainer(data, config, Adam(lr=0.01), epochs=2, seed=3)
    full.fit()

    first = make_trainer(data, config, Adam(lr=0.01), epochs=1, seed=3)
    first.fit()
    ckpt = first.save(tmp_path / "run.ckpt")

    # Fresh objects, as in a new process: other initial weights, other seed, other lr.
    second = make_trainer(data, config, Adam(lr=0.5), epochs=2, seed=99)
    meta = second.restore(ckpt)
    assert meta["position"]["iteration"] == 10 and second.iteration == 10
    assert second.optimizer.lr == 0.01 and second.optimizer.t == 10
    second.fit()

    assert_same_arrays(params_of(second), params_of(full))
    assert_same_arrays(optimizer_state(second), optimizer_state(full))
    if model == "mlp":
        assert_same_arrays(second.model.buffers, full.model.buffers)
    for key in HISTORY_KEYS:
        if key != "seconds":
            assert second.history[key] == full.history[key], key


def test_resume_mid_epoch_with_a_schedule_via_from_checkpoint(data, tmp_path):
    config = small_config("mlp", dropout=0.25)
    options = dict(iterations=33, schedule="cosine", eval_every=7)
    full = make_trainer(data, config, SGD(lr=0.2), **options)
    full.fit()

    ckpt = tmp_path / "run.ckpt"

    def stop_at_14(trainer, record):
        return record["iteration"] < 14

    part = make_trainer(data, config, SGD(lr=0.2), checkpoint=ckpt, on_epoch=stop_at_14, **options)
    part.fit()
    assert part.iteration == 14 and part.history["iteration"] == [7, 14]
    _, meta = load_checkpoint(ckpt)
    assert meta["position"]["batches_done"] == 4  # 14 = 10 + 4 of the second epoch

    resumed = Trainer.from_checkpoint(ckpt, *data, progress="none")
    assert resumed.total_iterations == 33 and resumed.batch_size == 50
    resumed.fit()
    assert_same_arrays(params_of(resumed), params_of(full))
    assert resumed.history["test_acc"] == full.history["test_acc"]
    assert resumed.history["iteration"] == full.history["iteration"]


def test_checkpoint_contents(data, tmp_path):
    ckpt = tmp_path / "c.ckpt"
    trainer = make_trainer(
        data, optimizer=optimizer_from_name("momentum", lr=0.05), checkpoint=ckpt, dataset="blobs"
    )
    trainer.fit()
    arrays, meta = load_checkpoint(ckpt)
    assert sorted(arrays) == sorted(
        [f"model/{k}" for k in ("W1", "b1", "W2", "b2")]
        + [f"optim/v/{k}" for k in ("W1", "b1", "W2", "b2")]
    )
    assert meta["kind"] == "chainrule-training" and meta["version"] == 1
    assert meta["model"] == small_config() and meta["dataset"] == "blobs"
    assert meta["optimizer"] == {
        "name": "Momentum",
        "hyper": {"lr": 0.05, "momentum": 0.9},
        "step": 20,
    }
    assert meta["trainer"]["batch_size"] == 50 and meta["trainer"]["seed"] == 0
    assert meta["position"]["iteration"] == 20 and meta["position"]["epoch"] == 2.0
    state = meta["position"]["epoch_rng_state"]
    assert state["bit_generator"] == "PCG64" and isinstance(state["state"]["state"]["state"], str)
    assert meta["result"]["test_acc"] == trainer.history["test_acc"][-1]
    assert meta["history"] == json.loads(json.dumps(trainer.history))


def test_rng_state_round_trip():
    a = np.random.default_rng(5)
    a.random(3)
    saved = json.loads(json.dumps(encode_rng(a)))
    expected = a.random(4)
    b = np.random.default_rng(0)
    decode_rng(b, saved)
    assert np.array_equal(b.random(4), expected)
    with pytest.raises(ValueError, match="MT19937"):
        decode_rng(np.random.Generator(np.random.MT19937(0)), saved)


def test_loading_other_shapes_names_the_parameter_and_both_shapes(data, tmp_path):
    trainer = make_trainer(data)
    ckpt = trainer.save(tmp_path / "a.ckpt")
    other = make_trainer(data, small_config(hidden=[8]))
    before = params_of(other)
    with pytest.raises(CheckpointError) as e:
        other.restore(ckpt)
    message = str(e.value)
    assert str(ckpt) in message and "'W1'" in message
    assert "(20, 16)" in message and "(20, 8)" in message
    assert_same_arrays(params_of(other), before)  # nothing was loaded

    arrays, _ = load_checkpoint(ckpt)
    mlp = build_model(small_config("mlp"), rng=0)
    with pytest.raises(ValueError, match="'W3' of the model is not in the checkpoint"):
        load_model_state(mlp, arrays)


def test_resume_refuses_another_batch_size_or_optimizer(data, tmp_path):
    ckpt = make_trainer(data).save(tmp_path / "a.ckpt")
    with pytest.raises(CheckpointError, match="batch size 50, not 25"):
        make_trainer(data, batch_size=25).restore(ckpt)
    with pytest.raises(CheckpointError, match="trained with SGD, not Adam"):
        make_trainer(data, optimizer=Adam()).restore(ckpt)
    (tmp_path / "junk.ckpt").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(CheckpointError, match=r"junk\.ckpt"):
        make_trainer(data).restore(tmp_path / "junk.ckpt")


# --------------------------------------------------------------------------------------------
# divergence
# --------------------------------------------------------------------------------------------


def test_huge_learning_rate_stops_with_a_clear_error(data, tmp_path):
    trainer = make_trainer(data, optimizer=SGD(lr=1e30), epochs=3, checkpoint=tmp_path / "c.ckpt")
    with pytest.raises(TrainingDiverged) as e:
        trainer.fit()
    assert e.value.iteration <= 3
    assert f"iteration {e.value.iteration}" in str(e.value) and "not finite" in str(e.value)
    assert "lr 1e+30" in str(e.value)
    assert not (tmp_path / "c.ckpt").exists()  # nothing non-finite was ever written
    assert all(np.isfinite(p).all() for p in trainer.model.params.values())


class Poisoned:
    """Wraps a model; the gradient of one parameter turns NaN at one iteration."""

    def __init__(self, model, key: str, at: int) -> None:
        self.model, self.key, self.at, self.calls = model, key, at, 0
        self.params = model.params

    def loss_and_grads(self, x, t):
        self.calls += 1
        loss, grads = self.model.loss_and_grads(x, t)
        grads = dict(grads)
        if self.calls == self.at:
            grads[self.key] = grads[self.key].copy()
            grads[self.key][0] = np.nan
        return loss, grads

    def predict(self, x):
        return self.model.predict(x)


def test_nan_gradient_names_iteration_and_parameter_and_keeps_the_last_checkpoint(data, tmp_path):
    ckpt = tmp_path / "run.ckpt"
    model = Poisoned(build_model(small_config(), rng=0), "b2", at=15)
    snapshots = []
    trainer = Trainer(
        model,
        SGD(lr=0.1),
        *data,
        batch_size=50,
        epochs=3,
        progress="none",
        checkpoint=ckpt,
        on_epoch=lambda tr, rec: snapshots.append(params_of(tr)),
    )
    with pytest.raises(TrainingDiverged) as e:
        trainer.fit()
    err = e.value
    assert (err.iteration, err.epoch, err.culprit, err.checkpoint) == (15, 2, "b2", ckpt)
    message = str(err)
    assert "iteration 15 (epoch 2)" in message and "gradient of 'b2'" in message
    assert "1 NaN" in message and str(ckpt) in message
    # The checkpoint is the one written after epoch 1, untouched since.
    arrays, meta = load_checkpoint(ckpt)
    assert meta["position"]["iteration"] == 10
    assert_same_arrays(
        {k[6:]: v for k, v in arrays.items() if k.startswith("model/")}, snapshots[0]
    )
    # Step 15 was not applied: 14 steps were (steps 11-14 after the snapshot).
    assert trainer.iteration == 14 and trainer.optimizer.t == 14


class NanLoss:
    """A protocol model whose mini-batch loss is NaN from the first step."""

    engine = "layers"

    def __init__(self, model) -> None:
        self.model, self.params = model, model.params

    def loss_and_grads(self, x, t):
        _, grads = self.model.loss_and_grads(x, t)
        return float("nan"), grads

    def predict(self, x):
        return self.model.predict(x)


def test_nan_loss_is_reported_as_the_loss(data):
    trainer = make_trainer(data, model=NanLoss(build_model(small_config(), rng=0)))
    with pytest.raises(TrainingDiverged, match=r"iteration 1 \(epoch 1\): the loss is not finite"):
        trainer.fit()
    assert trainer.iteration == 0


@pytest.mark.parametrize("where", ["training", "test"])
def test_nan_in_the_data_is_a_data_fault_not_a_divergence(data, where):
    x, t, xt, tt = (a.copy() for a in data)
    bad = x if where == "training" else xt
    bad[17, 3] = np.nan
    bad[40, 0] = np.inf
    with pytest.raises(ValueError, match=rf"{where} set sample 17 has NaN \(2 of") as e:
        make_trainer((x, t, xt, tt))
    assert "learning rate" not in str(e.value) and not isinstance(e.value, TrainingDiverged)


# --------------------------------------------------------------------------------------------
# history file and plot
# --------------------------------------------------------------------------------------------


def test_history_json(data, tmp_path):
    trainer = make_trainer(data)
    trainer.fit()
    path = save_history(trainer.history, tmp_path / "h.json")
    loaded = json.loads(path.read_text())
    assert list(loaded) == list(HISTORY_KEYS)
    for key in ("train_loss", "train_acc", "test_loss", "test_acc", "seconds"):
        assert len(loaded[key]) == 2 and all(isinstance(v, float) for v in loaded[key])
    assert loaded == trainer.history
    assert [p.name for p in tmp_path.iterdir()] == ["h.json"]  # no temp file left


def test_plot_history_writes_a_png(data, tmp_path):
    from chainrule.plotting import plot_history

    trainer = make_trainer(data)
    trainer.fit()
    path = plot_history(trainer.history, tmp_path / "curves.png", title="blobs")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 5000
    assert [p.name for p in tmp_path.iterdir()] == ["curves.png"]
    with pytest.raises(ValueError, match="'test_acc' has 1 values"):
        plot_history({**trainer.history, "test_acc": [0.5]}, tmp_path / "x.png")


def test_plot_without_matplotlib_says_what_to_install(tmp_path, monkeypatch):
    from chainrule.plotting import MissingDependencyError, plot_history

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(MissingDependencyError, match=r"chainrule\[plot\]"):
        plot_history({"epoch": [1]}, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


# --------------------------------------------------------------------------------------------
# real MNIST
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_two_layer_net_on_real_mnist_one_epoch():
    from chainrule.datasets import load_mnist
    from mnist_data import real_data_root  # $CHAINRULE_DATA, then ../shared/data; or skip

    root = real_data_root("mnist")

    (x, t), (xt, tt) = load_mnist(data_dir=root, download=False)
    config = model_config("two-layer")
    trainer = Trainer(
        build_model(config, rng=0), SGD(lr=0.1), x, t, xt, tt, epochs=1, progress="none"
    )
    history = trainer.fit()
    assert history["test_acc"][-1] > 0.9
