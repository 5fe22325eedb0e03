"""Tests for chainrule.optim: update rules, calling styles, validation and checkpoints."""

from __future__ import annotations

import io
import math
import warnings

import numpy as np
import pytest

from chainrule.optim import (
    CHUNK,
    SGD,
    AdaGrad,
    Adam,
    AdamW,
    Momentum,
    Nesterov,
    Optimizer,
    RMSprop,
    optimizer_from_name,
)


class P:
    """A stand-in for a parameter: a .data array and a .grad that may be None."""

    def __init__(self, data: np.ndarray) -> None:
        self.data = data
        self.grad: np.ndarray | None = None


# Non-default hyperparameters, so that a rule ignoring one of them would be caught.
HYPER = {
    "sgd": dict(lr=0.05),
    "momentum": dict(lr=0.05, momentum=0.8),
    "nesterov": dict(lr=0.05, momentum=0.8),
    "adagrad": dict(lr=0.05, eps=1e-3),
    "rmsprop": dict(lr=0.05, decay_rate=0.9, eps=1e-3),
    "adam": dict(lr=0.05, beta1=0.8, beta2=0.95, eps=1e-3),
    "adamw": dict(lr=0.05, beta1=0.8, beta2=0.95, eps=1e-3, weight_decay=0.2),
}
NAMES = list(HYPER)


def make(name: str, **extra) -> Optimizer:
    return optimizer_from_name(name, **HYPER[name], **extra)


# ---------------------------------------------------------------- hand-unrolled references


def two_steps(name: str, W0: np.ndarray, g1: np.ndarray, g2: np.ndarray) -> np.ndarray:
    """Two updates written out from the formulas, without any in-place tricks."""
    h = HYPER[name]
    lr = h["lr"]
    if name == "sgd":
        W1 = W0 - lr * g1
        W2 = W1 - lr * g2
    elif name == "momentum":
        mu = h["momentum"]
        v1 = -lr * g1
        W1 = W0 + v1
        v2 = mu * v1 - lr * g2
        W2 = W1 + v2
    elif name == "nesterov":
        mu = h["momentum"]
        v1 = -lr * g1
        W1 = W0 + mu * v1 - lr * g1
        v2 = mu * v1 - lr * g2
        W2 = W1 + mu * mu * v1 - (1 + mu) * lr * g2  # mu^2 v_old - (1 + mu) lr g
        np.testing.assert_allclose(W2, W1 + mu * v2 - lr * g2, rtol=1e-12, atol=1e-15)
    elif name == "adagrad":
        eps = h["eps"]
        h1 = g1 * g1
        W1 = W0 - lr * g1 / (np.sqrt(h1) + eps)
        h2 = h1 + g2 * g2
        W2 = W1 - lr * g2 / (np.sqrt(h2) + eps)
    elif name == "rmsprop":
        rho, eps = h["decay_rate"], h["eps"]
        h1 = (1 - rho) * g1**2
        W1 = W0 - lr * g1 / (np.sqrt(h1) + eps)
        h2 = rho * h1 + (1 - rho) * g2**2
        W2 = W1 - lr * g2 / (np.sqrt(h2) + eps)
    else:  # adam, adamw
        b1, b2, eps = h["beta1"], h["beta2"], h["eps"]
        decay = 1 - lr * h["weight_decay"] if name == "adamw" else 1.0
        m1 = (1 - b1) * g1
        v1 = (1 - b2) * g1**2
        W1 = decay * W0 - lr * (m1 / (1 - b1)) / (np.sqrt(v1 / (1 - b2)) + eps)
        m2 = b1 * m1 + (1 - b1) * g2
        v2 = b2 * v1 + (1 - b2) * g2**2
        W2 = decay * W1 - lr * (m2 / (1 - b1**2)) / (np.sqrt(v2 / (1 - b2**2)) + eps)
    return W2


def problem(seed: int = 0, dtype=np.float64):
    """Two parameters of different shapes (kept away from 0 for relative tolerances)."""
    rng = np.random.default_rng(seed)
    params = {
        "W": rng.uniform(1.0, 2.0, (3, 4)).astype(dtype),
        "b": rng.uniform(1.0, 2.0, 4).astype(dtype),
    }
    grad_seq = [
        {k: rng.normal(size=v.shape).astype(dtype) for k, v in params.items()} for _ in range(5)
    ]
    return params, grad_seq


@pytest.mark.parametrize("name", NAMES)
def test_matches_hand_unrolled_two_steps(name):
    params, grad_seq = problem()
    start = {k: v.copy() for k, v in params.items()}
    opt = make(name)
    opt.update(params, grad_seq[0])
    opt.update(params, grad_seq[1])
    assert opt.t == 2
    for key in params:
        expected = two_steps(name, start[key], grad_seq[0][key], grad_seq[1][key])
        np.testing.assert_allclose(params[key], expected, rtol=1e-12)


def test_adamw_without_decay_is_adam():
    p1, grad_seq = problem()
    p2 = {k: v.copy() for k, v in p1.items()}
    adam, adamw = Adam(lr=0.01), AdamW(lr=0.01, weight_decay=0.0)
    for grads in grad_seq:
        adam.update(p1, grads)
        adamw.update(p2, grads)
    for key in p1:
        assert np.array_equal(p1[key], p2[key])


def test_defaults():
    assert SGD().hyperparameters() == {"lr": 0.01}
    assert Momentum().hyperparameters() == {"lr": 0.01, "momentum": 0.9}
    assert Nesterov().hyperparameters() == {"lr": 0.01, "momentum": 0.9}
    assert AdaGrad().hyperparameters() == {"lr": 0.01, "eps": 1e-7}
    assert RMSprop().hyperparameters() == {"lr": 0.01, "decay_rate": 0.99, "eps": 1e-7}
    assert Adam().hyperparameters() == {"lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-7}
    assert AdamW().hyperparameters()["weight_decay"] == 0.01
    assert repr(Momentum(lr=0.1)) == "Momentum(lr=0.1, momentum=0.9)"


# ---------------------------------------------------------------- calling styles


@pytest.mark.parametrize("name", NAMES)
def test_both_styles_give_identical_results(name):
    book, grad_seq = problem()
    as_list = [P(v.copy()) for v in book.values()]
    as_dict = {k: P(v.copy()) for k, v in book.items()}
    opt_book, opt_list, opt_dict = (
        make(name),
        make(name, params=as_list),
        make(name, params=as_dict),
    )
    for grads in grad_seq:
        opt_book.update(book, grads)
        for p, g in zip(as_list, grads.values(), strict=True):
            p.grad = g
        for key, p in as_dict.items():
            p.grad = grads[key]
        opt_list.step()
        opt_dict.step()
        opt_list.zero_grad()
        opt_dict.zero_grad()
    for i, key in enumerate(book):
        assert np.array_equal(as_list[i].data, book[key])
        assert np.array_equal(as_dict[key].data, book[key])
    assert set(opt_list.state) == {"0", "1"}
    assert set(opt_dict.state) == {"W", "b"}


@pytest.mark.parametrize("name", NAMES)
def test_updates_in_place_without_reallocating_state(name):
    params, grad_seq = problem()
    arrays = dict(params)
    before = {k: v.copy() for k, v in params.items()}
    opt = make(name)
    opt.update(params, grad_seq[0])
    buffers = {key: dict(slots) for key, slots in opt.state.items()}
    scratch = dict(opt._scratch)  # one work array per (shape, dtype), shared by parameters
    assert len(scratch) == 2
    for grads in grad_seq[1:]:
        opt.update(params, grads)
    assert opt._scratch.keys() == scratch.keys() and all(
        opt._scratch[k] is w for k, w in scratch.items()
    )
    for key in params:
        assert params[key] is arrays[key]
        assert not np.array_equal(params[key], before[key])
        assert list(opt.state[key]) == list(opt.slot_names)
        for slot, buf in buffers[key].items():
            assert opt.state[key][slot] is buf
            assert buf.shape == params[key].shape and buf.dtype == params[key].dtype


@pytest.mark.parametrize("name", NAMES)
def test_big_parameters_go_through_in_chunks_with_the_same_result(name):
    # A parameter of more than CHUNK elements is updated slice by slice through one small
    # scratch array; the rules are element-wise, so the result must be bit for bit the same as
    # with a whole-size scratch, and the hand-unrolled formulas must still hold.
    rng = np.random.default_rng(7)
    shape = (3, CHUNK // 2 + 5)  # 1.5 chunks and a bit: a full slice, then a partial one
    W0 = rng.normal(size=shape)
    g1, g2 = rng.normal(size=shape), rng.normal(size=shape)
    chunked = {"W": W0.copy()}
    opt = make(name)
    opt.update(chunked, {"W": g1})
    opt.update(chunked, {"W": g2})
    np.testing.assert_allclose(chunked["W"], two_steps(name, W0, g1, g2), rtol=1e-12, atol=1e-15)
    assert [w.size for w in opt._scratch.values()] == [CHUNK]  # not a copy of W
    # Bit for bit: the same rule on slices of W, each small enough for one piece.
    whole = {f"W{i}": W0.reshape(-1)[i : i + CHUNK].copy() for i in range(0, W0.size, CHUNK)}
    ref = make(name)
    for g in (g1, g2):
        ref.update(whole, {f"W{i}": g.reshape(-1)[i : i + CHUNK] for i in range(0, g.size, CHUNK)})
    assert np.array_equal(np.concatenate(list(whole.values())).reshape(shape), chunked["W"])


def test_a_custom_rule_that_is_not_elementwise_sees_the_whole_parameter():
    class NormalizedSGD(Optimizer):
        """W -= lr * g / |g|: the norm needs all of g at once."""

        def _update(self, p, g, s, w):
            assert p.shape == g.shape == w.shape == (3, CHUNK)
            np.multiply(g, self.lr / np.linalg.norm(g), out=w)
            p -= w

    rng = np.random.default_rng(9)
    W0, g = rng.normal(size=(3, CHUNK)), rng.normal(size=(3, CHUNK))
    params = {"W": W0.copy()}
    NormalizedSGD(params=None, lr=0.5).update(params, {"W": g})
    np.testing.assert_allclose(params["W"], W0 - 0.5 * g / np.linalg.norm(g), rtol=1e-12)


def test_a_subclass_with_its_own_rule_is_not_sliced_unless_it_says_so():
    class ReplacingMomentum(Momentum):
        """Replaces its velocity array instead of updating it in place: needs the whole one."""

        def _update(self, p, g, s, w):
            s["v"] = self.momentum * s["v"] - self.lr * g
            p += s["v"]

    assert not ReplacingMomentum.elementwise and Momentum.elementwise and AdamW.elementwise
    W = {"W": np.zeros(CHUNK + 10)}
    opt = ReplacingMomentum(lr=1.0, momentum=0.5)
    for _ in range(2):
        opt.update(W, {"W": np.ones(CHUNK + 10)})
    assert_all = np.full(CHUNK + 10, -2.5)  # v1 = -1, v2 = -1.5: W = -2.5 everywhere
    assert np.array_equal(W["W"], assert_all)


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_big_strided_and_transposed_operands_are_updated_correctly(name):
    rng = np.random.default_rng(8)
    base = rng.normal(size=(2 * CHUNK + 6,))
    W = base[::2]  # a strided view as the parameter: updated in place, the gaps untouched
    W0, gaps = W.copy(), base[1::2].copy()
    g = rng.normal(size=(2 * W.size,))[::2]  # a non-contiguous gradient
    opt = make(name)
    opt.update({"W": W}, {"W": g})
    opt.update({"W": W}, {"W": g})
    np.testing.assert_allclose(W, two_steps(name, W0, g, g), rtol=1e-12, atol=1e-15)
    assert np.array_equal(base[1::2], gaps)


@pytest.mark.parametrize("name", NAMES)
def test_step_updates_data_in_place(name):
    params, grad_seq = problem()
    ps = [P(v) for v in params.values()]
    opt = make(name, params=ps)
    for p, g in zip(ps, grad_seq[0].values(), strict=True):
        p.grad = g
    opt.step()
    for p, array, start in zip(ps, params.values(), problem()[0].values(), strict=True):
        assert p.data is array
        assert not np.array_equal(array, start)
    opt.zero_grad()
    assert all(p.grad is None for p in ps)


@pytest.mark.parametrize("name", NAMES)
def test_float32_stays_float32(name):
    p32, grad_seq = problem(dtype=np.float32)
    p64 = {k: v.astype(np.float64) for k, v in p32.items()}
    opt32 = optimizer_from_name(name, **{k: np.float64(v) for k, v in HYPER[name].items()})
    opt64 = make(name)
    for grads in grad_seq:
        opt32.update(p32, grads)
        opt64.update(p64, {k: g.astype(np.float64) for k, g in grads.items()})
    for key in p32:
        assert p32[key].dtype == np.float32
        assert all(buf.dtype == np.float32 for buf in opt32.state.get(key, {}).values())
        np.testing.assert_allclose(p32[key], p64[key], rtol=1e-5)
    # A float64 gradient for a float32 parameter does not upcast it either.
    opt32.update(p32, {k: g.astype(np.float64) for k, g in grad_seq[0].items()})
    assert all(v.dtype == np.float32 for v in p32.values())


def test_none_grads_are_skipped():
    a, b = P(np.ones(3)), P(np.ones(2))
    opt = Adam(lr=0.1, params=[a, b])
    a.grad = np.ones(3)
    opt.step()
    assert np.array_equal(b.data, np.ones(2))
    assert set(opt.state) == {"0"}
    assert np.all(a.data < 1)


def test_lr_change_takes_effect():
    W = np.zeros(2)
    opt = SGD(lr=0.1)
    opt.update({"W": W}, {"W": np.ones(2)})
    opt.lr = 0.5
    opt.update({"W": W}, {"W": np.ones(2)})
    np.testing.assert_allclose(W, -0.6, rtol=1e-12)


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("cls", "kwargs", "message"),
    [
        (SGD, {"lr": 0}, "SGD: lr must be positive, got 0"),
        (Adam, {"lr": -1e-3}, "Adam: lr must be positive, got -0.001"),
        (SGD, {"lr": math.nan}, "SGD: lr must be finite, got nan"),
        (Momentum, {"momentum": 1.0}, r"Momentum: momentum must be in \[0, 1\), got 1.0"),
        (Nesterov, {"momentum": -0.1}, r"Nesterov: momentum must be in \[0, 1\), got -0.1"),
        (Adam, {"beta1": 1}, r"Adam: beta1 must be in \[0, 1\), got 1"),
        (AdamW, {"beta2": 1.5}, r"AdamW: beta2 must be in \[0, 1\), got 1.5"),
        (RMSprop, {"decay_rate": 1.0}, r"RMSprop: decay_rate must be in \[0, 1\), got 1.0"),
        (AdaGrad, {"eps": -1e-7}, "AdaGrad: eps must be non-negative, got -1e-07"),
        (AdamW, {"weight_decay": -0.01}, "AdamW: weight_decay must be non-negative, got -0.01"),
    ],
)
def test_bad_hyperparameters(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(**kwargs)


def test_bad_hyperparameter_types_and_late_changes():
    with pytest.raises(TypeError, match="SGD: lr must be a real number"):
        SGD(lr="0.1")
    opt = Adam()
    with pytest.raises(ValueError, match=r"Adam: lr must be positive, got 0\.0"):
        opt.lr = 0.0
    assert opt.lr == 0.001
    opt.lr = np.float32(0.5)
    assert type(opt.lr) is float


def test_grad_shape_mismatch_names_key_and_shapes():
    W, b = np.ones((3, 4)), np.ones(4)
    opt = Momentum()
    with pytest.raises(ValueError, match=r"gradient for 'W' has shape \(4, 3\).*shape \(3, 4\)"):
        opt.update({"b": b, "W": W}, {"b": np.ones(4), "W": np.ones((4, 3))})
    # Nothing changed: not the parameter checked first, not the state, not the step count.
    assert np.array_equal(b, np.ones(4)) and opt.state == {} and opt.t == 0

    ps = [P(np.ones(2)), P(np.ones((2, 2)))]
    ps[0].grad, ps[1].grad = np.ones(2), np.ones(2)
    with pytest.raises(ValueError, match=r"Momentum: gradient for '1' has shape \(2,\)"):
        Momentum(params=ps).step()


@pytest.mark.parametrize("name", NAMES)
def test_checks_still_run_after_the_first_steps(name):
    """Later steps take a cheap path; anything that would fail the full check still fails it,
    and a failed step still changes nothing."""
    params, grad_seq = problem()
    opt = make(name)
    opt.update(params, grad_seq[0])
    opt.update(params, grad_seq[1])

    def unchanged(before_params, before_state, t):
        assert opt.t == t
        for key in params:
            assert np.array_equal(params[key], before_params[key])
            for slot, buf in opt.state[key].items():
                assert np.array_equal(buf, before_state[key][slot])

    snapshot = (
        {k: v.copy() for k, v in params.items()},
        {k: {s: b.copy() for s, b in slots.items()} for k, slots in opt.state.items()},
        opt.t,
    )
    me = type(opt).__name__
    bad = dict(grad_seq[2], W=np.ones((4, 3)))  # W is checked after b: b must stay unchanged
    with pytest.raises(ValueError, match=rf"{me}: gradient for 'W' has shape \(4, 3\).*\(3, 4\)"):
        opt.update({"b": params["b"], "W": params["W"]}, {"b": bad["b"], "W": bad["W"]})
    unchanged(*snapshot)

    # The parameter array itself reshaped in place: caught, naming both shapes.
    def set_shape(array, shape):
        with warnings.catch_warnings():  # NumPy may come to deprecate setting .shape
            warnings.simplefilter("ignore", DeprecationWarning)
            array.shape = shape

    set_shape(params["W"], (4, 3))
    with pytest.raises(ValueError, match=r"gradient for 'W' has shape \(3, 4\).*\(4, 3\)"):
        opt.update(params, grad_seq[2])
    set_shape(params["W"], (3, 4))
    unchanged(*snapshot)

    # Another array under the same key: an integer one is refused ...
    with pytest.raises(TypeError, match="parameter 'W' must be floating point"):
        opt.update({"W": np.ones((3, 4), dtype=int), "b": params["b"]}, grad_seq[2])
    with pytest.raises(TypeError, match="parameter 'W' must be an ndarray"):
        opt.update({"W": [[1.0] * 4] * 3, "b": params["b"]}, grad_seq[2])
    unchanged(*snapshot)
    with pytest.raises(ValueError, match="params has no gradient"):
        opt.update(params, {"W": grad_seq[2]["W"]})
    unchanged(*snapshot)

    # ... and a gradient that is not an ndarray still goes through np.asarray.
    grads = {k: g.tolist() for k, g in grad_seq[2].items()}
    reference = {k: v.copy() for k, v in params.items()}
    twin = make(name)
    twin.load_state_dict(opt.state_dict())
    opt.update(params, grads)
    twin.update(reference, grad_seq[2])
    for key in params:
        assert np.array_equal(params[key], reference[key])


def test_replaced_state_is_checked_again():
    W = np.ones(4)
    opt = Momentum()
    opt.update({"W": W}, {"W": np.ones(4)})
    opt.update({"W": W}, {"W": np.ones(4)})
    opt.state = {}  # dropped by hand: allocated afresh, not read from a stale cache
    opt.update({"W": W}, {"W": np.ones(4)})
    assert np.array_equal(opt.state["W"]["v"], np.full(4, -0.01))
    saved = {"name": "Momentum", "hyper": opt.hyperparameters(), "step": 2}
    opt.load_state_dict({**saved, "slots": {"v/W": np.ones(5)}})
    with pytest.raises(ValueError, match=r"state slot 'v/W' has shape \(5,\)"):
        opt.update({"W": W}, {"W": np.ones(4)})


def test_hyperparameters_read_as_plain_attributes():
    opt = SGD(lr=0.5)
    assert opt.lr == 0.5 and "lr" in vars(opt)
    assert SGD.lr.name == "lr"  # the validating descriptor, on the class
    with pytest.raises(ValueError, match="SGD: lr must be positive"):
        opt.lr = -1.0
    assert opt.lr == 0.5


def test_key_mismatch():
    opt = SGD()
    with pytest.raises(ValueError, match=r"params has no gradient for \['b'\]"):
        opt.update({"W": np.ones(2), "b": np.ones(2)}, {"W": np.ones(2)})
    with pytest.raises(ValueError, match=r"grads has keys with no parameter: \['c'\]"):
        opt.update({"W": np.ones(2)}, {"W": np.ones(2), "c": np.ones(2)})


def test_bad_params():
    with pytest.raises(TypeError, match=r"Adam: params\['0'\] is not parameter-like"):
        Adam(params=[np.ones(2)])
    with pytest.raises(TypeError, match="not an ndarray"):
        Adam(params=np.ones(2))
    with pytest.raises(ValueError, match="Adam: params is empty"):
        Adam(params=[])
    p = P(np.ones(2))
    with pytest.raises(ValueError, match=r"params\['1'\] is the same object as params\['0'\]"):
        Adam(params=[p, p])
    with pytest.raises(TypeError, match="must be floating point"):
        SGD().update({"W": np.ones(2, dtype=int)}, {"W": np.ones(2)})
    with pytest.raises(RuntimeError, match=r"SGD.step\(\) needs parameters"):
        SGD().step()
    with pytest.raises(RuntimeError, match=r"SGD.zero_grad\(\) needs parameters"):
        SGD().zero_grad()


# ---------------------------------------------------------------- checkpoints


def through_file(state: dict) -> dict:
    """Save the arrays with np.savez and rebuild the state from what comes back."""
    buffer = io.BytesIO()
    np.savez(buffer, **state["slots"])
    buffer.seek(0)
    with np.load(buffer) as loaded:
        slots = {name: loaded[name] for name in loaded.files}
    return {
        "name": str(state["name"]),
        "hyper": {k: float(v) for k, v in state["hyper"].items()},
        "step": int(state["step"]),
        "slots": slots,
    }


@pytest.mark.parametrize("style", ["book", "params"])
@pytest.mark.parametrize("name", NAMES)
def test_resume_is_bit_identical(name, style):
    start, grad_seq = problem()

    def fresh(arrays):
        if style == "book":
            return make(name)
        return make(name, params=[P(a) for a in arrays.values()])

    def run(opt, arrays, grads_list):
        for grads in grads_list:
            if style == "book":
                opt.update(arrays, grads)
            else:
                for (_, p), g in zip(opt._params, grads.values(), strict=True):
                    p.grad = g
                opt.step()

    straight = {k: v.copy() for k, v in start.items()}
    run(fresh(straight), straight, grad_seq)

    first = {k: v.copy() for k, v in start.items()}
    opt = fresh(first)
    run(opt, first, grad_seq[:2])
    saved = through_file(opt.state_dict())
    at_two = {k: v.copy() for k, v in first.items()}
    run(opt, first, grad_seq[2:3])  # later steps must not leak into the snapshot

    resumed = fresh(at_two)
    resumed.load_state_dict(saved)
    run(resumed, at_two, grad_seq[2:])
    assert resumed.t == 5
    for key in start:
        assert np.array_equal(at_two[key], straight[key])
    assert not np.array_equal(at_two["W"], first["W"])


def test_state_dict_layout():
    opt = Adam(lr=0.01)
    opt.update({"W": np.ones((2, 3)), "b": np.ones(3)}, {"W": np.ones((2, 3)), "b": np.ones(3)})
    state = opt.state_dict()
    assert state["name"] == "Adam"
    assert state["hyper"] == {"lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-7}
    assert state["step"] == 1
    assert set(state["slots"]) == {"m/W", "v/W", "m/b", "v/b"}
    assert state["slots"]["m/W"] is not opt.state["W"]["m"]


def test_load_rejects_other_class():
    state = Adam().state_dict()
    with pytest.raises(ValueError, match="AdamW: cannot load a state saved by 'Adam'"):
        AdamW().load_state_dict(state)


def test_load_rejects_bad_slots():
    opt = Adam(params={"W": P(np.ones((2, 3)))})
    state = {
        "name": "Adam",
        "hyper": Adam().hyperparameters(),
        "step": 1,
        "slots": {"m/W": np.zeros((3, 2)), "v/W": np.zeros((2, 3))},
    }
    with pytest.raises(ValueError, match=r"state slot 'm/W' has shape \(3, 2\)"):
        opt.load_state_dict(state)
    state["slots"] = {"m/W": np.zeros((2, 3))}
    with pytest.raises(ValueError, match="state slot 'v/W' is missing"):
        opt.load_state_dict(state)
    state["slots"] = {"m/W": np.zeros((2, 3)), "v/W": np.zeros((2, 3)), "h/W": np.zeros((2, 3))}
    with pytest.raises(ValueError, match="unknown state slot 'h/W'"):
        opt.load_state_dict(state)
    state["slots"] = {"m/X": np.zeros((2, 3)), "v/X": np.zeros((2, 3))}
    with pytest.raises(ValueError, match="state slot 'm/X' names no parameter"):
        opt.load_state_dict(state)
    state["slots"] = {}
    state["hyper"] = {"lr": 0.1}
    with pytest.raises(ValueError, match="hyperparameters"):
        opt.load_state_dict(state)
    assert opt.lr == 0.001 and opt.t == 0  # failed loads change nothing

    # Without attached parameters the shape is checked at the first update.
    book = Momentum()
    book.load_state_dict(
        {
            "name": "Momentum",
            "hyper": book.hyperparameters(),
            "step": 3,
            "slots": {"v/W": np.zeros(5)},
        }
    )
    with pytest.raises(ValueError, match=r"state slot 'v/W' has shape \(5,\)"):
        book.update({"W": np.ones(4)}, {"W": np.ones(4)})


def test_load_casts_state_to_param_dtype():
    W = np.ones(3, dtype=np.float32)
    opt = Momentum()
    opt.load_state_dict(
        {
            "name": "Momentum",
            "hyper": opt.hyperparameters(),
            "step": 1,
            "slots": {"v/W": np.ones(3)},
        }
    )
    opt.update({"W": W}, {"W": np.ones(3, dtype=np.float32)})
    assert W.dtype == np.float32 and opt.state["W"]["v"].dtype == np.float32


# ---------------------------------------------------------------- names and convergence


def test_optimizer_from_name():
    classes = [SGD, Momentum, Nesterov, AdaGrad, RMSprop, Adam, AdamW]
    for name, cls in zip(NAMES, classes, strict=True):
        assert type(optimizer_from_name(name)) is cls
    opt = optimizer_from_name(" AdamW ", lr=0.5, weight_decay=0.0)
    assert opt.lr == 0.5 and opt.weight_decay == 0.0
    with pytest.raises(
        ValueError,
        match="unknown optimizer 'lbfgs'; valid names: sgd, momentum, nesterov, adagrad, "
        "rmsprop, adam, adamw",
    ):
        optimizer_from_name("lbfgs")


QUADRATIC_LR = {
    "sgd": 0.1,
    "momentum": 0.05,
    "nesterov": 0.05,
    "adagrad": 0.5,
    "rmsprop": 0.05,
    "adam": 0.1,
    "adamw": 0.1,
}


@pytest.mark.parametrize("name", NAMES)
def test_decreases_a_quadratic(name):
    # f(W) = 0.5 * sum(a * (W - c)^2), an ill-conditioned bowl; grad = a * (W - c).
    a = np.array([1.0, 3.0, 0.5, 2.0])
    c = np.array([0.5, -1.0, 2.0, 0.0])
    W = np.zeros(4)

    def loss():
        return 0.5 * np.sum(a * (W - c) ** 2)

    start = loss()
    opt = optimizer_from_name(name, lr=QUADRATIC_LR[name])
    for _ in range(100):
        opt.update({"W": W}, {"W": a * (W - c)})
    assert loss() < 1e-3 * start
