"""Issue "One model, one training loop", acceptance: an ``nn.MLP`` built by hand, with the
optimizer in PyTorch's order, trains through the Trainer on real MNIST, saves, resumes bit for
bit, and ``chainrule evaluate`` rebuilds it from the checkpoint alone and reproduces its
accuracy. (Skips visibly without the MNIST files.)"""

from __future__ import annotations

import json

import numpy as np
import pytest

from chainrule import nn
from chainrule.cli import main
from chainrule.optim import Adam
from chainrule.serialization import load_checkpoint
from chainrule.training import Trainer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mnist():
    from chainrule.datasets import DatasetError, load_mnist

    try:
        (x, t), (xt, tt) = load_mnist(normalize=True, download=False, dtype=np.float32)
    except (DatasetError, OSError) as exc:
        pytest.skip(f"MNIST files not found (set CHAINRULE_DATA): {exc}")
    return x[:3000], t[:3000], xt, tt


def new_trainer(data, **options):
    model = nn.MLP([784, 64, 10], rng=np.random.default_rng(0))
    optimizer = Adam(model.parameters(), lr=1e-3)
    return Trainer(model, optimizer, *data, batch_size=100, epochs=2, progress="none", **options)


def test_hand_built_nn_mlp_trains_saves_resumes_and_evaluates(mnist, tmp_path, capsys):
    straight = new_trainer(mnist)
    history = straight.fit()
    assert history["test_acc"][-1] > 0.8  # 60 Adam steps on 3,000 digits: 84.8% here

    first = new_trainer(mnist, checkpoint=tmp_path / "half.ckpt")
    first.set_length(epochs=1)
    first.fit()
    resumed = Trainer.from_checkpoint(tmp_path / "half.ckpt", *mnist, epochs=2, progress="none")
    resumed.fit()
    for key, value in straight.model.params.items():
        np.testing.assert_array_equal(resumed.model.params[key], value, err_msg=key)

    resumed.save(tmp_path / "done.ckpt")
    _, meta = load_checkpoint(tmp_path / "done.ckpt")
    assert meta["model"]["engine"] == "autograd" and meta["model"]["hidden"] == [64]
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "done.ckpt"), "--dataset", "mnist", "--json"]) == 0

    result = json.loads(capsys.readouterr().out)
    assert result["test_accuracy"] == pytest.approx(history["test_acc"][-1], abs=1e-12)
    assert result["test_loss"] == pytest.approx(history["test_loss"][-1], rel=1e-6)
