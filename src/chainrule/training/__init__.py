"""Training: the loop and its extensions, evaluation, checkpoint state, history, schedules.

The :class:`Trainer` drives any model of the trainable-model protocol (the book's networks and
``nn.Module`` models: ``params``, ``buffers``, ``loss_and_grads(x, t)``, ``predict(x)``,
``engine``; see :mod:`chainrule.training.protocol`) with any :mod:`chainrule.optim`
optimizer::

    trainer = Trainer(net, SGD(lr=0.1), x_train, t_train, x_test, t_test, iterations=10_000)
    history = trainer.fit()

The loop (:mod:`~chainrule.training.trainer`) is short, in the spirit of Chainer's trainer:
sample a batch, ``loss_and_grads``, update, then run what is due. Each concern is one module:

* :mod:`~chainrule.training.batching`: the seeded batch order and its exact position. An epoch
  is ``N // batch_size`` steps of full batches (600 for MNIST with batch 100), each epoch a
  fresh permutation; ``iterations=10_000`` is 16.67 epochs.
* :mod:`~chainrule.training.evaluation`: after every epoch (and after the last step, or every
  ``eval_every`` steps) the model is evaluated in inference mode on the test set and on the
  training set (or a fixed subset of ``eval_subset`` samples, the same whatever the seed):
  mean cross-entropy from log-softmax (without weight decay) and accuracy.
* :mod:`~chainrule.training.history`: each evaluation appends ``epoch``, ``iteration``,
  ``train_loss``, ``train_acc``, ``test_loss``, ``test_acc``, ``batch_loss`` (mean mini-batch
  loss since the previous entry, in training mode), ``lr`` and ``seconds`` to :attr:`history`.
* :mod:`~chainrule.training.guard`: non-finite losses and gradients stop the run before the
  update; exploding losses and weights stop it too; NaN in the data is named as a data fault.
* :mod:`~chainrule.training.snapshot` and :mod:`~chainrule.training.lock`: checkpoints of the
  whole state (parameters, buffers, optimizer state, generators, position, history), restored
  bit-identically; one writing process per checkpoint file.
* :mod:`~chainrule.training.progress`: a tqdm bar (a widget in notebooks) and/or lines.
* :mod:`~chainrule.training.threads`: the BLAS thread count, chosen from the matrix sizes.

Determinism: the same model weights, optimizer, data, ``seed`` and thread count give
bit-identical weights, and a run resumed from a checkpoint continues exactly as if it had
never stopped.
"""

from __future__ import annotations

from chainrule.optim.schedules import (
    SCHEDULES,
    CosineSchedule,
    Schedule,
    StepSchedule,
    make_schedule,
)
from chainrule.training.batching import decode_rng, encode_rng
from chainrule.training.evaluation import evaluate, model_device, predict_scores
from chainrule.training.guard import DivergenceGuard, TrainingDiverged
from chainrule.training.history import HISTORY_KEYS, save_history
from chainrule.training.snapshot import CHECKPOINT_KIND, CHECKPOINT_VERSION, load_model_state
from chainrule.training.trainer import Trainer

__all__ = [
    "CHECKPOINT_KIND",
    "CHECKPOINT_VERSION",
    "HISTORY_KEYS",
    "SCHEDULES",
    "CosineSchedule",
    "DivergenceGuard",
    "Schedule",
    "StepSchedule",
    "Trainer",
    "TrainingDiverged",
    "decode_rng",
    "encode_rng",
    "evaluate",
    "load_model_state",
    "make_schedule",
    "model_device",
    "predict_scores",
    "save_history",
]
