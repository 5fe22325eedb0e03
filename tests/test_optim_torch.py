"""PyTorch as the oracle for the optimizers' docstring claims of equivalence (float64, several
steps, random parameters and gradients of several shapes, 0-d included)."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule.optim import SGD, AdaGrad, Adam, AdamW, Momentum, Nesterov, RMSprop

torch = pytest.importorskip(
    "torch", reason="PyTorch is the oracle for the optimizers' equivalence claims: not installed"
)

SHAPES = [(3, 4), (5,), ()]
STEPS = 6

# (ours, PyTorch's) with the same non-default hyperparameters, as each docstring states them.
CASES = {
    "SGD": (lambda: SGD(lr=0.07), lambda ps: torch.optim.SGD(ps, lr=0.07)),
    "Momentum": (
        lambda: Momentum(lr=0.07, momentum=0.8),
        lambda ps: torch.optim.SGD(ps, lr=0.07, momentum=0.8),
    ),
    "Nesterov": (
        lambda: Nesterov(lr=0.07, momentum=0.8),
        lambda ps: torch.optim.SGD(ps, lr=0.07, momentum=0.8, nesterov=True),
    ),
    "AdaGrad": (
        lambda: AdaGrad(lr=0.07, eps=1e-3),
        lambda ps: torch.optim.Adagrad(ps, lr=0.07, eps=1e-3),
    ),
    "RMSprop": (
        lambda: RMSprop(lr=0.07, decay_rate=0.9, eps=1e-3),
        lambda ps: torch.optim.RMSprop(ps, lr=0.07, alpha=0.9, eps=1e-3),
    ),
    "Adam": (
        lambda: Adam(lr=0.07, beta1=0.8, beta2=0.95, eps=1e-3),
        lambda ps: torch.optim.Adam(ps, lr=0.07, betas=(0.8, 0.95), eps=1e-3),
    ),
    "AdamW": (
        lambda: AdamW(lr=0.07, beta1=0.8, beta2=0.95, eps=1e-3, weight_decay=0.3),
        lambda ps: torch.optim.AdamW(ps, lr=0.07, betas=(0.8, 0.95), eps=1e-3, weight_decay=0.3),
    ),
}


def trajectories(name: str, seed: int, lrs: list[float] | None = None):
    """Parameters after each step, ours and PyTorch's, from the same start and gradients."""
    rng = np.random.default_rng(seed)
    start = [rng.normal(size=s) for s in SHAPES]
    ours = {str(i): a.copy() for i, a in enumerate(start)}
    theirs = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in start]
    make_ours, make_theirs = CASES[name]
    opt, ref = make_ours(), make_theirs(theirs)
    out = []
    for step in range(STEPS):
        # gradients of different sizes step to step, so the adaptive rules' state matters
        grads = [rng.normal(size=s) * 10.0 ** rng.uniform(-2, 1) for s in SHAPES]
        if lrs is not None:
            opt.lr = lrs[step]
            for group in ref.param_groups:
                group["lr"] = lrs[step]
        opt.update(ours, {str(i): g for i, g in enumerate(grads)})
        for p, g in zip(theirs, grads, strict=True):
            p.grad = torch.tensor(g, dtype=torch.float64)
        ref.step()
        out.append(
            (
                [ours[str(i)].copy() for i in range(len(SHAPES))],
                [p.detach().numpy().copy() for p in theirs],
            )
        )
    return out


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name", list(CASES))
def test_equals_pytorch_while_lr_is_constant(name, seed):
    for step, (mine, ref) in enumerate(trajectories(name, seed)):
        for i, (a, b) in enumerate(zip(mine, ref, strict=True)):
            np.testing.assert_allclose(
                a, b, rtol=1e-11, atol=1e-13, err_msg=f"{name}, step {step + 1}, parameter {i}"
            )


@pytest.mark.parametrize("name", ["Momentum", "Nesterov"])
def test_momentum_rules_differ_from_pytorch_once_lr_changes(name):
    # The docstrings limit the claim to a constant lr: our velocity holds lr * gradient, so
    # an old velocity keeps its old rate, while PyTorch scales its whole buffer by the new lr.
    lrs = [0.07, 0.07, 0.01, 0.01, 0.01, 0.01]
    steps = trajectories(name, 0, lrs)
    for mine, ref in steps[:2]:
        np.testing.assert_allclose(mine[0], ref[0], rtol=1e-11)
    mine, ref = steps[2]
    assert not np.allclose(mine[0], ref[0], rtol=1e-6)


@pytest.mark.parametrize("name", ["AdaGrad", "RMSprop", "Adam", "AdamW"])
def test_adaptive_rules_follow_a_changed_lr_as_pytorch_does(name):
    # Their state holds no lr, so the equivalence survives a schedule.
    lrs = [0.07, 0.05, 0.01, 0.02, 0.01, 0.005]
    for step, (mine, ref) in enumerate(trajectories(name, 1, lrs)):
        for a, b in zip(mine, ref, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-13, err_msg=f"step {step + 1}")
