"""``nn`` models (the autograd engine) through the Trainer, checkpoints, resume and evaluate:
the same promises as the book's networks."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule import nn
from chainrule.models import build_model, model_config
from chainrule.optim import SGD, Adam
from chainrule.serialization import CheckpointError, load_checkpoint
from chainrule.training import Trainer, evaluate, load_model_state
from test_training import blobs

FEATURES, CLASSES = 20, 4


@pytest.fixture(scope="module")
def data():
    (x, t), (xt, tt) = blobs(500, 1), blobs(200, 2)
    return x, t, xt, tt


def mlp(seed: int = 0) -> nn.MLP:
    return nn.MLP(
        [FEATURES, 16, 12, CLASSES], batchnorm=True, dropout=0.2, rng=np.random.default_rng(seed)
    )


def state_of(model) -> dict[str, np.ndarray]:
    return {k: np.array(v, copy=True) for k, v in {**model.params, **model.buffers}.items()}


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == b[key].dtype, key
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_nn_mlp_with_pytorch_style_adam_trains(data):
    model = mlp()
    trainer = Trainer(
        model, Adam(model.parameters(), lr=1e-2), *data, batch_size=50, epochs=4, progress="none"
    )
    history = trainer.fit()
    assert history["test_acc"][-1] > 0.8 and history["test_loss"][-1] < history["test_loss"][0]
    assert "model" in trainer.rngs  # the dropout generator is checkpointed


def test_nn_mlp_resumes_bit_identically(data, tmp_path):
    def new_trainer(**options):
        model = mlp()
        return Trainer(
            model, Adam(model.parameters(), lr=1e-2), *data, batch_size=50, epochs=3,
            progress="none", **options,
        )  # fmt: skip

    straight = new_trainer()
    straight.fit()

    ckpt = tmp_path / "nn.ckpt"
    first = new_trainer(checkpoint=ckpt, eval_every=7, on_epoch=lambda tr, rec: tr.iteration < 14)
    first.fit()
    arrays, meta = load_checkpoint(ckpt)
    assert meta["engine"] == "autograd" and meta["position"]["iteration"] == 14
    assert "buffers/1.running_mean" in arrays and "model/0.W" in arrays

    resumed = new_trainer()
    resumed.restore(ckpt)
    resumed.fit()
    assert_same(state_of(resumed.model), state_of(straight.model))
    assert resumed.model.rng.random() == straight.model.rng.random()


def test_registry_nn_model_from_checkpoint_and_evaluate(data, tmp_path):
    cfg = model_config(
        "mlp", engine="autograd", input_size=FEATURES, hidden=[16, 12], output_size=CLASSES,
        dropout=0.1, dtype="float32",
    )  # fmt: skip
    ckpt = tmp_path / "registry.ckpt"
    model = build_model(cfg, rng=0)
    trainer = Trainer(
        model, SGD(lr=0.1), *data, batch_size=50, iterations=25, progress="none",
        model_config=cfg, checkpoint=ckpt, dataset="blobs",
    )  # fmt: skip
    trainer.fit()

    # evaluate-style reload: rebuild from the config, load the weights, same numbers.
    arrays, meta = load_checkpoint(ckpt)
    assert meta["engine"] == "autograd" and meta["model"]["engine"] == "autograd"
    rebuilt = build_model(meta["model"], rng=123)
    load_model_state(rebuilt, arrays)
    xt, tt = data[2], data[3]
    assert evaluate(rebuilt, xt, tt) == (meta["result"]["test_loss"], meta["result"]["test_acc"])

    # Trainer.from_checkpoint: the same model class and engine, ready to go on.
    again = Trainer.from_checkpoint(ckpt, *data, iterations=40, progress="none")
    assert type(again.model) is type(model) and again.iteration == 25
    assert again.threads == meta["trainer"]["threads"] == trainer.threads  # the same count
    again.fit()
    assert again.iteration == 40


def test_a_book_net_refuses_an_nn_checkpoint(data, tmp_path):
    model = mlp()
    trainer = Trainer(model, SGD(lr=0.1), *data, batch_size=50, iterations=3, progress="none")
    trainer.fit()
    trainer.save(tmp_path / "nn.ckpt")
    cfg = model_config(
        "mlp", input_size=FEATURES, hidden=[16, 12], output_size=CLASSES, batchnorm=True
    )
    book = Trainer(
        build_model(cfg, rng=0), SGD(lr=0.1), *data, batch_size=50, iterations=3, progress="none"
    )
    with pytest.raises(CheckpointError, match=r"'autograd' model, this trainer's model is"):
        book.restore(tmp_path / "nn.ckpt")
    with pytest.raises(ValueError, match=r"'0\.W' of the model is not in the checkpoint"):
        load_model_state(mlp(), {"model/W1": np.zeros(3)})


def test_autograd_simple_cnn_short_run_resumes(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 100)).astype(np.float32)  # 10x10 images, flat as MNIST's
    t = (x[:, :50].mean(axis=1) > 0).astype(np.int64)  # learnable from the pixels
    data = (x, t, x[:20], t[:20])
    cfg = model_config("simple-cnn", engine="autograd", input_size=100, hidden=[20], output_size=2)

    def new_trainer(**options):
        return Trainer(
            build_model(cfg, rng=0), Adam(lr=1e-3), *data, batch_size=10, iterations=12,
            progress="none", model_config=cfg, **options,
        )  # fmt: skip

    straight = new_trainer()
    straight.fit()
    first = new_trainer(checkpoint=tmp_path / "cnn.ckpt", eval_every=5)
    first.on_epoch = lambda tr, rec: tr.iteration < 5
    first.fit()
    resumed = Trainer.from_checkpoint(tmp_path / "cnn.ckpt", *data, progress="none")
    resumed.fit()
    assert_same(state_of(resumed.model), state_of(straight.model))
