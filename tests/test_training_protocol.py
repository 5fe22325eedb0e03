"""The trainer against the model protocol alone, the divergence guard and the thread policy.

``SoftmaxRegression`` below implements the trainable-model protocol (``params``, ``buffers``,
``loss_and_grads``, ``predict``, ``engine``, ``rng``) in a few lines of NumPy and nothing else:
no ``gradient``, no ``last_layer``. Whatever the trainer needs beyond the protocol would fail
here.
"""

from __future__ import annotations

import numpy as np
import pytest

from chainrule.optim import SGD, Adam
from chainrule.serialization import CheckpointError, load_checkpoint
from chainrule.training import DivergenceGuard, Trainer, TrainingDiverged, evaluate
from chainrule.training.threads import AUTO_WORK, choose_threads
from test_training import blobs


class SoftmaxRegression:
    """``scores = x @ W + b`` with softmax cross-entropy, float64, and a noisy "dropout" rng."""

    engine = "autograd"

    def __init__(self, features: int = 20, classes: int = 4, seed: int = 0) -> None:
        init = np.random.default_rng(seed)
        self.params = {
            "W": init.normal(0.0, 0.1, (features, classes)),
            "b": np.zeros(classes),
        }
        self.buffers = {"seen": np.zeros(1)}
        self.rng = np.random.default_rng(seed + 1)

    def predict(self, x):
        return x @ self.params["W"] + self.params["b"]

    def loss_and_grads(self, x, t):
        keep = self.rng.random(x.shape) > 0.1  # the generator the trainer must checkpoint
        xd = x * keep
        scores = xd @ self.params["W"] + self.params["b"]
        shifted = scores - scores.max(axis=1, keepdims=True)
        logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        n = len(t)
        loss = -logp[np.arange(n), t].mean()
        dscores = np.exp(logp)
        dscores[np.arange(n), t] -= 1
        dscores /= n
        self.buffers["seen"] += n
        return loss, {"W": xd.T @ dscores, "b": dscores.sum(axis=0)}


@pytest.fixture(scope="module")
def data():
    (x, t), (xt, tt) = blobs(500, 1), blobs(200, 2)
    return x.astype(np.float64), t, xt.astype(np.float64), tt


def trainer_for(data, model=None, optimizer=None, **options):
    options.setdefault("batch_size", 50)
    options.setdefault("progress", "none")
    if "epochs" not in options and "iterations" not in options:
        options["epochs"] = 2
    model = model if model is not None else SoftmaxRegression()
    return Trainer(model, optimizer or SGD(lr=0.5), *data, **options)


def snapshot(model) -> dict[str, np.ndarray]:
    return {k: v.copy() for k, v in {**model.params, **model.buffers}.items()}


# --------------------------------------------------------------------------------------------
# the protocol
# --------------------------------------------------------------------------------------------


def test_a_protocol_model_trains(data):
    trainer = trainer_for(data, epochs=4)
    history = trainer.fit()
    assert history["test_acc"][-1] > 0.8
    assert history["test_loss"][-1] < history["test_loss"][0]
    assert trainer.model.buffers["seen"][0] == 4 * 10 * 50


def test_checkpoint_records_the_engine_and_resumes_bit_identically(data, tmp_path):
    straight = trainer_for(data, optimizer=Adam(lr=0.05), epochs=3)
    straight.fit()

    ckpt = tmp_path / "run.ckpt"
    first = trainer_for(data, optimizer=Adam(lr=0.05), epochs=3, checkpoint=ckpt)
    first.on_epoch = lambda tr, rec: tr.iteration < 15  # stop after the second evaluation
    first.set_length(epochs=3)
    first.eval_every = 5
    first.fit()
    _, meta = load_checkpoint(ckpt)
    assert meta["engine"] == "autograd" and meta["position"]["iteration"] == 15

    resumed = trainer_for(data, optimizer=Adam(lr=0.05), epochs=3)
    resumed.restore(ckpt)
    resumed.eval_every = "epoch"
    resumed.fit()
    got, want = snapshot(resumed.model), snapshot(straight.model)
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    assert resumed.model.rng.random() == straight.model.rng.random()


def test_a_checkpoint_of_another_engine_is_refused(data, tmp_path):
    trainer = trainer_for(data, iterations=3)
    trainer.fit()
    trainer.save(tmp_path / "a.ckpt")

    class LayersTwin(SoftmaxRegression):
        engine = "layers"

    other = trainer_for(data, model=LayersTwin(), iterations=3)
    before = snapshot(other.model)
    with pytest.raises(CheckpointError, match=r"'autograd' model.*'layers'"):
        other.restore(tmp_path / "a.ckpt")
    assert all(np.array_equal(before[k], v) for k, v in snapshot(other.model).items())


def test_a_model_without_the_protocol_is_named(data):
    class NotAModel:
        def __init__(self):
            self.params = {"w": np.zeros(3)}

        def predict(self, x):
            return x

    with pytest.raises(TypeError, match="NotAModel has no loss_and_grads"):
        trainer_for(data, model=NotAModel()).fit()


# --------------------------------------------------------------------------------------------
# the divergence guard
# --------------------------------------------------------------------------------------------


def test_an_exploding_but_finite_loss_stops_the_run(data, tmp_path):
    # Softmax regression with lr 1e6: the weights grow by ~1e6 a step, the loss to ~1e7 and
    # beyond, and nothing ever becomes NaN (log-softmax is stable).
    ckpt = tmp_path / "c.ckpt"
    trainer = trainer_for(data, optimizer=SGD(lr=1e6), batch_size=10, epochs=5, checkpoint=ckpt)
    with pytest.raises(TrainingDiverged) as e:
        trainer.fit()
    err = e.value
    message = str(err)
    assert "the loss exploded: its mean over the last 20 steps" in message
    assert f"iteration {err.iteration} (epoch {err.epoch})" in message and err.culprit == "loss"
    assert err.iteration == trainer.iteration == 20  # as soon as 20 steps are averaged
    assert all(np.isfinite(v).all() for v in trainer.model.params.values())
    assert not ckpt.exists()  # stopped before the first evaluation: nothing saved


def test_no_false_alarm_on_a_normal_run(data):
    trainer = trainer_for(data, optimizer=SGD(lr=2.0), epochs=10)
    trainer.fit()  # a large but sane learning rate: the loss falls, nothing is raised
    assert trainer.guard.recent_mean() < trainer.guard.first_loss
    assert trainer.history["batch_loss"][-1] < trainer.guard.first_loss


class Blowup(SoftmaxRegression):
    """Finite gradients; predict gives inf scores once ``bad_after`` steps were taken."""

    def __init__(self, bad_after: int, grad_scale: float = 1.0) -> None:
        super().__init__()
        self.bad_after, self.grad_scale, self.steps = bad_after, grad_scale, 0

    def loss_and_grads(self, x, t):
        self.steps += 1
        loss, grads = super().loss_and_grads(x, t)
        return loss, {k: g * self.grad_scale for k, g in grads.items()}

    def predict(self, x):
        scores = super().predict(x)
        if self.steps >= self.bad_after:
            scores = scores.copy()
            scores[:, 0] = np.inf
        return scores


def test_evaluation_overflow_names_the_step_just_taken(data):
    # Evaluation runs after step 10 (one epoch); the fault is in step 10's weights, so the
    # message says iteration 10 (it used to say 11, a step never taken).
    trainer = trainer_for(data, model=Blowup(bad_after=10))
    with pytest.raises(TrainingDiverged, match=r"iteration 10 \(epoch 1\)") as e:
        trainer.fit()
    assert e.value.iteration == trainer.iteration == 10


def test_weights_beyond_the_limit_stop_the_run_naming_the_parameter(data):
    model = Blowup(bad_after=10**9, grad_scale=1e12)  # finite, huge gradients
    trainer = trainer_for(data, model=model, optimizer=SGD(lr=1.0), eval_every=3)
    with pytest.raises(TrainingDiverged) as e:
        trainer.fit()
    assert e.value.culprit in ("W", "b") and e.value.iteration == 3
    assert "max |w| = " in str(e.value) and f"> {DivergenceGuard.weight_limit:g}" in str(e.value)


def test_the_guard_thresholds_are_tunable(data):
    trainer = trainer_for(data, optimizer=SGD(lr=2.0), epochs=1)
    trainer.guard.loss_floor, trainer.guard.loss_factor, trainer.guard.patience = 0.0, 0.0, 1
    with pytest.raises(TrainingDiverged, match=r"iteration 1 .*last 1 steps"):
        trainer.fit()


# --------------------------------------------------------------------------------------------
# the thread policy
# --------------------------------------------------------------------------------------------


def test_auto_threads_follow_the_matrix_sizes():
    pytest.importorskip("threadpoolctl", reason="threads are only set with threadpoolctl")
    small = SoftmaxRegression(784, 50)
    assert choose_threads("auto", small, 100)[0] == 1
    big = SoftmaxRegression(4096, 4096)
    count, note = choose_threads("auto", big, 100)
    assert 100 * 4096 * 4096 >= AUTO_WORK and count >= 1 and "auto" in note
    assert choose_threads(3, small, 100) == (3, "3 (chosen by the caller)")
    assert choose_threads(None, small, 100)[0] is None
    for bad in (0, -1, 1.5, "many", True):
        with pytest.raises(ValueError, match="threads must be"):
            choose_threads(bad, small, 100)


def test_a_convolution_counts_one_block_of_windows_and_a_gpu_model_one_thread():
    pytest.importorskip("threadpoolctl", reason="threads are only set with threadpoolctl")
    from chainrule.functions.conv import BLOCK_VALUES
    from chainrule.layers import DeepConvNet, TwoLayerNet
    from chainrule.training.threads import largest_product

    net = DeepConvNet(rng=np.random.default_rng(0))
    # conv 6's 64 filters times a block of windows, more than its affine's 1024*50*100
    assert largest_product(net, 100) == 64 * BLOCK_VALUES > 100 * 1024 * 50
    count, note = choose_threads("auto", net, 100)
    assert count == 1 and f"~{64 * BLOCK_VALUES / 1e6:.3g} M" in note
    wide = SoftmaxRegression(4, 3)
    wide.params["W"] = np.zeros((256, 3, 3, 3))  # 256 filters: 134 M multiply-adds a block
    assert choose_threads("auto", wide, 100)[1].endswith("multiply-adds)")  # split
    import fake_cupy
    from chainrule.backend import move_arrays

    with fake_cupy.installed():
        small = move_arrays(TwoLayerNet(784, 50, 10, rng=np.random.default_rng(0)), "cuda")
        count, note = choose_threads("auto", small, 100)
        assert count == 1 and "the model is on the GPU" in note


def test_fit_runs_with_the_chosen_blas_threads_and_records_them(data, tmp_path):
    threadpoolctl = pytest.importorskip("threadpoolctl", reason="needs threadpoolctl")
    seen = []

    def blas_threads(trainer, iteration, grads):
        seen.extend(info["num_threads"] for info in threadpoolctl.threadpool_info())

    trainer = trainer_for(data, iterations=2, on_step=blas_threads, checkpoint=tmp_path / "t")
    assert trainer.threads == 1 and trainer.threads_note.startswith("1 (auto")
    trainer.fit()
    assert seen and set(seen) == {1}
    assert load_checkpoint(tmp_path / "t")[1]["trainer"]["threads"] == 1


def test_without_threadpoolctl_the_count_is_not_set(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "threadpoolctl" else real(name),
    )
    count, note = choose_threads("auto", SoftmaxRegression(), 100)
    assert count is None and "threadpoolctl is not installed" in note


# --------------------------------------------------------------------------------------------
# evaluate: one log-softmax, labels checked
# --------------------------------------------------------------------------------------------


def test_evaluate_matches_the_log_softmax_of_the_scores(data):
    model = SoftmaxRegression()
    x, t = data[2], data[3]
    scores = model.predict(x)
    logp = scores - np.log(np.exp(scores - scores.max(1, keepdims=True)).sum(1, keepdims=True))
    logp -= scores.max(1, keepdims=True)
    want = -logp[np.arange(len(t)), t].mean()
    loss, acc = evaluate(model, x, t, batch_size=64)
    assert loss == pytest.approx(want, rel=1e-12)
    assert acc == np.mean(scores.argmax(1) == t)
    assert evaluate(model, x, np.eye(4)[t], batch_size=64) == (loss, acc)  # one-hot rows


@pytest.mark.parametrize(
    ("labels", "match"),
    [
        (lambda t: np.where(np.arange(len(t)) == 5, 4, t), r"label 4 at index 5 is out of range"),
        (lambda t: np.where(np.arange(len(t)) == 3, -1, t), r"label -1 at index 3"),
        (lambda t: t + 0.5, "must be integers"),
        (lambda t: np.eye(3)[t % 3], r"one-hot targets of shape \(64, 3\) have 3 classes"),
        (lambda t: t[:-1], "200 samples but 199 labels"),
        (lambda t: t.astype(str), "dtype <U"),
    ],
)
def test_evaluate_names_bad_labels(data, labels, match):
    with pytest.raises(ValueError, match=match):
        evaluate(SoftmaxRegression(), data[2], labels(data[3]), batch_size=64)


def test_evaluate_picks_its_blas_threads_too(data):
    threadpoolctl = pytest.importorskip("threadpoolctl", reason="needs threadpoolctl")
    seen = []

    class Watched(SoftmaxRegression):
        def predict(self, x):
            seen.extend(info["num_threads"] for info in threadpoolctl.threadpool_info())
            return super().predict(x)

    model = Watched()
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        auto = evaluate(model, data[2], data[3], batch_size=64)
        assert set(seen) == {1}  # "auto": small products, one thread
        seen.clear()
        outer = [info["num_threads"] for info in threadpoolctl.threadpool_info()]
        forced = evaluate(model, data[2], data[3], batch_size=64, threads=None)
        assert seen[: len(outer)] == outer  # None: BLAS left as the caller set it
    assert auto == pytest.approx(forced, rel=1e-12)


def test_a_loss_refusing_non_finite_scores_is_a_divergence(data):
    class Refusing(SoftmaxRegression):
        def loss_and_grads(self, x, t):
            raise FloatingPointError("SoftmaxWithLoss: 3 of 200 scores are NaN or inf")

    trainer = trainer_for(data, model=Refusing())
    with pytest.raises(TrainingDiverged, match=r"iteration 1 \(epoch 1\): the loss is not") as e:
        trainer.fit()
    assert "3 of 200 scores are NaN" in str(e.value) and e.value.__cause__ is None
    assert trainer.iteration == 0


# --------------------------------------------------------------------------------------------
# progress
# --------------------------------------------------------------------------------------------


def test_progress_bars_come_from_tqdm_auto_and_show_in_notebooks(monkeypatch):
    import io
    import sys
    import types

    pytest.importorskip("tqdm", reason="the bar needs tqdm")
    from chainrule.training.progress import Progress

    assert Progress("auto", io.StringIO()).tqdm is None  # not a terminal: lines only
    assert Progress("bar", io.StringIO()).tqdm.__module__.startswith("tqdm")

    class ZMQInteractiveShell:  # what IPython's get_ipython() returns in a Jupyter kernel
        config: dict = {}  # noqa: RUF012 - the shape tqdm.auto inspects

    fake = types.ModuleType("IPython")
    fake.get_ipython = ZMQInteractiveShell  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", fake)
    monkeypatch.setattr(sys, "stdout", io.StringIO())  # not a terminal either
    assert Progress("auto", None).tqdm is not None  # stdout in a notebook: a bar
    assert Progress("auto", io.StringIO()).tqdm is None  # an explicit stream: its own rule
