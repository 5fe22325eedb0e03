"""Optimizers take PyTorch's order and the book's: every way gives the same updates, and the
ambiguous ways are refused with a TypeError that says what to write instead."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule import functions as F
from chainrule import nn
from chainrule.optim import OPTIMIZERS, SGD, Adam, Momentum, optimizer_from_name

# Non-default hyperparameters other than lr, so that a constructor dropping one is caught.
EXTRA = {
    "sgd": {},
    "momentum": {"momentum": 0.8},
    "nesterov": {"momentum": 0.7},
    "adagrad": {"eps": 1e-3},
    "rmsprop": {"decay_rate": 0.9, "eps": 1e-3},
    "adam": {"beta1": 0.8, "beta2": 0.95, "eps": 1e-3},
    "adamw": {"beta1": 0.8, "beta2": 0.95, "eps": 1e-3, "weight_decay": 0.2},
}
LR = 0.05
STEPS = 4


class P:
    """A stand-in for a parameter: a .data array and a .grad that may be None."""

    def __init__(self, data: np.ndarray) -> None:
        self.data = data
        self.grad: np.ndarray | None = None


def problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    start = {"W": rng.normal(size=(3, 4)), "b": rng.normal(size=4), "s": rng.normal(size=())}
    grads = [{k: rng.normal(size=v.shape) for k, v in start.items()} for _ in range(STEPS)]
    return start, grads


def run_book(opt, arrays, grad_seq):
    for grads in grad_seq:
        opt.update(arrays, grads)


def run_torch(opt, ps, grad_seq):
    for grads in grad_seq:
        opt.zero_grad()
        for p, g in zip(ps, grads.values(), strict=True):
            p.grad = g
        opt.step()


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_every_calling_style_makes_the_same_updates(name):
    cls, extra = OPTIMIZERS[name], EXTRA[name]
    start, grad_seq = problem()

    def fresh_arrays():
        return {k: v.copy() for k, v in start.items()}

    reference = fresh_arrays()
    run_book(cls(lr=LR, **extra), reference, grad_seq)  # the book's keywords

    results = {}
    arrays = fresh_arrays()
    run_book(cls(LR, **extra), arrays, grad_seq)  # the book's positional lr: Adam(1e-3)
    results["book, lr positional"] = arrays

    for style in ("list", "generator", "named pairs", "dict", "lr first, params="):
        ps = [P(v) for v in fresh_arrays().values()]
        if style == "list":
            opt = cls(ps, lr=LR, **extra)  # Adam(model.parameters(), lr=1e-3)
        elif style == "generator":
            opt = cls((p for p in ps), LR, **extra)  # PyTorch's positional lr
        elif style == "named pairs":
            opt = cls(zip(start, ps, strict=True), lr=LR, **extra)  # model.named_parameters()
        elif style == "dict":
            opt = cls(dict(zip(start, ps, strict=True)), lr=LR, **extra)
        else:
            opt = cls(LR, params=ps, **extra)  # the older keyword form
        run_torch(opt, ps, grad_seq)
        assert all(p.grad is not None for p in ps)  # the last step's stay until zeroed
        opt.zero_grad()
        assert all(p.grad is None for p in ps)
        results[style] = dict(zip(start, (p.data for p in ps), strict=True))
        named = style in ("named pairs", "dict")
        assert set(opt.state) == (set(start) if named else {"0", "1", "2"})

    arrays = fresh_arrays()
    opt = cls(arrays, lr=LR, **extra)  # a book network's params dict, PyTorch's order
    for grads in grad_seq:
        opt.step(grads)
    opt.zero_grad()  # arrays carry no gradient: nothing to clear, no error
    results["dict of arrays + step(grads)"] = arrays

    arrays = fresh_arrays()
    run_book(optimizer_from_name(name, None, lr=LR, **extra), arrays, grad_seq)
    results["optimizer_from_name"] = arrays

    for style, got in results.items():
        for key in start:
            assert np.array_equal(got[key], reference[key]), (style, key)
    assert not np.array_equal(reference["W"], start["W"])


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_lr_none_is_the_books_default_and_positional_hyperparameters_follow_pytorch(name):
    cls = OPTIMIZERS[name]
    assert cls().lr == cls(lr=None).lr == cls.book_lr
    ps = [P(np.ones(2))]
    extra = EXTRA[name]
    opt = cls(ps, LR, *extra.values())  # PyTorch's order, all positional
    assert opt.hyperparameters() == {"lr": LR, **extra}


def test_ambiguous_calls_are_type_errors_that_say_what_to_write():
    with pytest.raises(TypeError, match=r"Momentum: ambiguous call: the first argument 0\.01 is "
                       r"a number.*lr=0\.9.*Momentum\(lr=\.\.\., momentum=\.\.\.\)"):  # fmt: skip
        Momentum(0.01, 0.9)  # the book's lr, momentum positionally: lr twice
    with pytest.raises(TypeError, match=r"SGD: ambiguous call.*lr=0\.2 is given as well"):
        SGD(0.1, lr=0.2)
    ps = [P(np.ones(2))]
    with pytest.raises(TypeError, match="SGD: params given twice"):
        SGD(ps, params=ps)
    with pytest.raises(TypeError, match=r"SGD: params must be parameters.*or a learning rate"):
        SGD("0.1")
    with pytest.raises(TypeError, match=r"Adam: params must be parameters.*got bool"):
        Adam(True)
    with pytest.raises(TypeError, match=r"params\['0'\] is not parameter-like.*dict of name"):
        Adam([np.ones(2)])  # a list of arrays holds no gradients
    with pytest.raises(TypeError, match=r"SGD: lr must be a real number, got '0\.1'"):
        SGD(ps, "0.1")


def test_step_with_and_without_grads_is_checked_against_what_params_are():
    arrays = {"W": np.ones(3)}
    opt = SGD(arrays, lr=0.5)
    with pytest.raises(TypeError, match=r"SGD.step\(\) needs grads: these parameters are arrays"):
        opt.step()
    with pytest.raises(ValueError, match=r"params has no gradient for \['W'\]"):
        opt.step({"b": np.ones(3)})
    opt.step({"W": np.ones(3)})
    assert np.array_equal(arrays["W"], np.full(3, 0.5))
    with pytest.raises(TypeError, match=r"SGD.update\(params, grads\) takes two dicts.*list"):
        opt.update([np.ones(3)], [np.ones(3)])
    ps = [P(np.ones(3))]
    with pytest.raises(TypeError, match=r"SGD.step\(grads\) is for parameters given as arrays"):
        SGD(ps, lr=0.5).step({"0": np.ones(3)})


def test_a_positional_parameter_list_still_resumes_state_saved_by_name():
    # The trainer drives Adam(model.parameters()) through update(model.params, grads): its
    # state is keyed by name, which the positional list does not know; loading it back into a
    # fresh Adam(model.parameters()) must work, and continue bit for bit.
    start, grad_seq = problem(3)
    straight = {k: v.copy() for k, v in start.items()}
    run_book(Adam([P(v) for v in straight.values()], lr=LR), straight, grad_seq)

    first = {k: v.copy() for k, v in start.items()}
    opt = Adam([P(v) for v in first.values()], lr=LR)
    run_book(opt, first, grad_seq[:2])
    resumed = Adam([P(v) for v in first.values()], lr=LR)
    resumed.load_state_dict(opt.state_dict())
    run_book(resumed, first, grad_seq[2:])
    for key in start:
        assert np.array_equal(first[key], straight[key])
    # By name, a wrong shape is still caught at load when the parameters are named.
    named = Adam({"W": P(np.ones((4, 3)))}, lr=LR)
    state = opt.state_dict()
    state["slots"] = {k: v for k, v in state["slots"].items() if k.endswith("/W")}
    with pytest.raises(ValueError, match=r"state slot 'm/W' has shape \(3, 4\)"):
        named.load_state_dict(state)


def test_an_nn_model_trains_with_pytorchs_order():
    rng = np.random.default_rng(0)
    model = nn.MLP([4, 16, 3], rng=np.random.default_rng(1))
    opt = Adam(model.parameters(), lr=1e-2)
    x = rng.normal(size=(32, 4)).astype(np.float32)
    t = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = F.softmax_cross_entropy(model(x), t)
        loss.backward()
        opt.step()
        losses.append(float(loss.data))
    assert losses[-1] < 0.6 * losses[0]
    assert opt.t == 30 and len(opt.state) == len(model.parameters())
