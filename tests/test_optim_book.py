"""Code written for the book runs as the book promises (scalar parameters, the book's Adam),
non-finite gradients are refused where they enter, and hooks act on the gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest

from chainrule.optim import (
    OPTIMIZERS,
    SGD,
    AdaGrad,
    Adam,
    AdamW,
    ClipGradNorm,
    Momentum,
    NonFiniteGradient,
    WeightDecay,
    optimizer_from_name,
)

# ---------------------------------------------------------------- optimizer_compare_naive


def df(x: float, y: float) -> tuple[float, float]:
    """Gradient of the book's f(x, y) = x**2 / 20 + y**2."""
    return x / 10.0, 2.0 * y


def book_trajectory(name: str, steps: int = 30) -> list[tuple[float, float]]:
    """The book's update rules (common/optimizer.py) written out on two floats."""
    x, y = -7.0, 2.0
    v, h, m = [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]
    history = []
    for t in range(1, steps + 1):
        history.append((x, y))
        pos, g = [x, y], df(x, y)
        for i in range(2):
            if name == "SGD":
                pos[i] -= 0.95 * g[i]
            elif name == "Momentum":
                v[i] = 0.9 * v[i] - 0.1 * g[i]
                pos[i] += v[i]
            elif name == "AdaGrad":
                h[i] += g[i] * g[i]
                pos[i] -= 1.5 * g[i] / (math.sqrt(h[i]) + 1e-7)
            else:  # the book's Adam, lr = 0.3
                lr_t = 0.3 * math.sqrt(1.0 - 0.999**t) / (1.0 - 0.9**t)
                m[i] += (1 - 0.9) * (g[i] - m[i])
                h[i] += (1 - 0.999) * (g[i] ** 2 - h[i])
                pos[i] -= lr_t * m[i] / (math.sqrt(h[i]) + 1e-7)
        x, y = pos
    return history


BOOK = {
    "SGD": lambda: SGD(lr=0.95),
    "Momentum": lambda: Momentum(lr=0.1),
    "AdaGrad": lambda: AdaGrad(lr=1.5),
    "Adam": lambda: Adam(lr=0.3, variant="book"),
}


@pytest.mark.parametrize("name", list(BOOK))
def test_optimizer_compare_naive_runs_unchanged_on_python_floats(name):
    # The book's ch06/optimizer_compare_naive.py, verbatim apart from the imports.
    optimizer = BOOK[name]()
    params, grads = {}, {}
    params["x"], params["y"] = -7.0, 2.0
    grads["x"], grads["y"] = 0, 0
    x_history, y_history = [], []
    for _ in range(30):
        x_history.append(params["x"])
        y_history.append(params["y"])
        grads["x"], grads["y"] = df(params["x"], params["y"])
        optimizer.update(params, grads)

    assert type(params["x"]) is float and type(params["y"]) is float  # floats stay floats
    expected = book_trajectory(name)
    np.testing.assert_allclose(x_history, [p[0] for p in expected], rtol=1e-12)
    np.testing.assert_allclose(y_history, [p[1] for p in expected], rtol=1e-12, atol=1e-300)
    assert len(set(x_history)) == 30  # a history of floats is never rewritten


def test_pytorchs_adam_is_not_the_books_on_the_same_script():
    params = {"x": -7.0, "y": 2.0}
    opt = Adam(lr=0.3)
    for _ in range(30):
        opt.update(params, dict(zip("xy", df(params["x"], params["y"]), strict=True)))
    x_book, _ = book_trajectory("Adam", 31)[-1]
    assert params["x"] != pytest.approx(x_book, rel=1e-9)  # eps enters differently
    assert params["x"] == pytest.approx(x_book, rel=1e-3)  # ... and matters little


def test_arrays_are_updated_in_place_so_a_history_must_copy_them():
    # Documented in Optimizer.update: an array parameter (0-d too) changes in place, so a list
    # that appends params["x"] holds one array several times, showing the last value.
    for name, cls in OPTIMIZERS.items():
        params = {"x": np.array(-7.0)}
        kept, copied = [], []
        opt = cls(lr=0.1)
        for _ in range(3):
            kept.append(params["x"])
            copied.append(params["x"].copy())
            opt.update(params, {"x": params["x"] / 10.0})
        assert all(a is params["x"] for a in kept), name
        assert [float(a) for a in kept] == [float(params["x"])] * 3, name
        assert len({float(a) for a in copied}) == 3 and copied[0] == -7.0, name


def test_numpy_scalars_keep_their_type_and_dtype():
    params = {"a": np.float32(1.5), "b": np.float64(2.0), "n": 3}
    opt = Momentum(lr=0.5, momentum=0.5)
    for _ in range(2):
        opt.update(params, {"a": 1.0, "b": np.float64(1.0), "n": 1})
    assert type(params["a"]) is np.float32 and params["a"] == np.float32(1.5 - 0.5 - 0.75)
    assert type(params["b"]) is np.float64 and params["b"] == 2.0 - 1.25
    assert type(params["n"]) is float and params["n"] == 3 - 1.25  # an int becomes a float
    assert opt.state["a"]["v"].dtype == np.float32 and opt.state["a"]["v"].shape == ()


def test_bad_scalar_parameters_and_gradients_are_named():
    opt = SGD(lr=0.1)
    with pytest.raises(TypeError, match=r"SGD: parameter 'x' must be an ndarray or a real number"):
        opt.update({"x": "1.0"}, {"x": 1.0})
    with pytest.raises(TypeError, match=r"SGD: gradient for 'x' must be real numbers, got complex"):
        opt.update({"x": 1.0}, {"x": 1j})
    with pytest.raises(TypeError, match=r"SGD: gradient for 'x' is not an array"):
        opt.update({"x": np.ones(2)}, {"x": [1.0, [2.0]]})


# ---------------------------------------------------------------- the book's Adam


def test_adam_book_variant_is_the_books_formula_on_arrays():
    rng = np.random.default_rng(4)
    b1, b2, eps, lr = 0.8, 0.95, 1e-3, 0.05
    W = rng.normal(size=(3, 4))
    ours = {"W": W.copy()}
    opt = Adam(lr=lr, beta1=b1, beta2=b2, eps=eps, variant="book")
    m, v, ref = np.zeros_like(W), np.zeros_like(W), W.copy()
    for t in range(1, 8):
        g = rng.normal(size=W.shape) * 10.0 ** rng.integers(-3, 2)
        opt.update(ours, {"W": g})
        lr_t = lr * np.sqrt(1.0 - b2**t) / (1.0 - b1**t)
        m += (1 - b1) * (g - m)
        v += (1 - b2) * (g**2 - v)
        ref -= lr_t * m / (np.sqrt(v) + eps)
    np.testing.assert_allclose(ours["W"], ref, rtol=1e-12, atol=1e-15)
    pytorch = {"W": W.copy()}
    other = Adam(lr=lr, beta1=b1, beta2=b2, eps=eps)
    for _ in range(1, 8):
        other.update(pytorch, {"W": rng.normal(size=W.shape)})
    assert not np.allclose(pytorch["W"], ours["W"])


def test_the_books_adam_is_pytorchs_with_eps_over_root_of_the_correction():
    # As Adam's docstring says: eps / sqrt(1 - beta2**t) in PyTorch's formula gives the book's.
    rng = np.random.default_rng(6)
    book, torchlike = {"W": rng.normal(size=5)}, {}
    torchlike["W"] = book["W"].copy()
    opt_book, opt_torch = Adam(lr=0.1, eps=1e-2, variant="book"), Adam(lr=0.1, eps=1e-2)
    for t in range(1, 6):
        g = rng.normal(size=5) * 1e-2
        opt_torch.eps = 1e-2 / math.sqrt(1 - 0.999**t)
        opt_book.update(book, {"W": g})
        opt_torch.update(torchlike, {"W": g})
        np.testing.assert_allclose(book["W"], torchlike["W"], rtol=1e-13)


def test_adam_variant_is_validated_saved_and_restored():
    with pytest.raises(ValueError, match=r"Adam: variant must be one of \['pytorch', 'book'\]"):
        Adam(variant="keras")
    with pytest.raises(TypeError):
        AdamW(variant="book")  # the book has no AdamW
    with pytest.raises(ValueError, match=r"AdamW: variant must be one of \['pytorch'\]"):
        AdamW().variant = "book"
    book = optimizer_from_name("adam", variant="book")
    assert book.variant == "book" and Adam().variant == "pytorch" == AdamW().variant
    assert "variant" not in Adam().hyperparameters()  # the default is not spelled out
    book.update({"W": np.ones(2)}, {"W": np.ones(2)})
    state = book.state_dict()
    assert state["hyper"]["variant"] == "book"
    rebuilt = optimizer_from_name(state["name"], **state["hyper"])  # as Trainer.resume does
    rebuilt.load_state_dict(state)
    assert rebuilt.variant == "book" and rebuilt.t == 1
    old = {**state, "hyper": {k: v for k, v in state["hyper"].items() if k != "variant"}}
    rebuilt.load_state_dict(old)  # saved before the option existed: PyTorch's formula
    assert rebuilt.variant == "pytorch"
    bad = {**state, "hyper": {**state["hyper"], "lr": 0.5, "variant": "keras"}}
    with pytest.raises(ValueError, match="variant must be one of"):
        rebuilt.load_state_dict(bad)
    assert rebuilt.lr == 0.001 and rebuilt.variant == "pytorch"  # a failed load changes nothing


# ---------------------------------------------------------------- non-finite gradients


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_a_non_finite_gradient_is_refused_naming_its_parameter(name, bad):
    params = {"W": np.ones((2, 3)), "b": np.ones(3)}
    opt = OPTIMIZERS[name](lr=0.1)
    opt.update(params, {"W": np.ones((2, 3)), "b": np.ones(3)})
    before = {k: v.copy() for k, v in params.items()}
    state = {k: {s: b.copy() for s, b in slots.items()} for k, slots in opt.state.items()}
    g_b = np.ones(3)
    g_b[1] = bad
    with pytest.raises(NonFiniteGradient, match=r"the gradient for 'b' is not finite") as info:
        opt.update(params, {"W": np.ones((2, 3)), "b": g_b})
    assert info.value.key == "b" and (info.value.nan, info.value.inf) == (
        (1, 0) if np.isnan(bad) else (0, 1)
    )
    assert opt.t == 1
    for key in params:  # nothing changed, not even W, which comes first
        assert np.array_equal(params[key], before[key])
        for slot, buf in opt.state[key].items():
            assert np.array_equal(buf, state[key][slot])


def test_huge_finite_gradients_pass_and_the_check_can_be_switched_off():
    params = {"W": np.zeros(4, dtype=np.float32)}
    big = np.full(4, 1e30, dtype=np.float32)  # its squares overflow float32: still finite
    SGD(lr=1e-30).update(params, {"W": big})
    np.testing.assert_allclose(params["W"], -1.0, rtol=1e-6)
    opt = SGD(lr=0.1)
    opt.check_finite = False  # the trainer checks gradients itself
    opt.update(params, {"W": np.full(4, np.nan, dtype=np.float32)})
    assert np.isnan(params["W"]).all()


def test_step_refuses_a_non_finite_grad_too():
    class P:
        def __init__(self, data):
            self.data, self.grad = data, None

    p = P(np.ones(2))
    p.grad = np.array([0.0, np.nan])
    with pytest.raises(NonFiniteGradient, match=r"Adam: the gradient for '0'.*1 NaN"):
        Adam([p]).step()
    assert np.array_equal(p.data, np.ones(2))


# ---------------------------------------------------------------- hooks


def test_weight_decay_hook_adds_rate_times_w_to_the_gradient():
    rng = np.random.default_rng(2)
    W0, grads = rng.normal(size=(3, 2)), [rng.normal(size=(3, 2)) for _ in range(3)]
    hooked, by_hand = {"W": W0.copy()}, {"W": W0.copy()}
    opt, ref = Momentum(lr=0.1), Momentum(lr=0.1)
    assert opt.add_hook(WeightDecay(0.01)) is opt.hooks[0]
    for g in grads:
        given = g.copy()
        opt.update(hooked, {"W": g})
        assert np.array_equal(g, given)  # the caller's gradient array is not written into
        ref.update(by_hand, {"W": g + 0.01 * by_hand["W"]})
    assert np.array_equal(hooked["W"], by_hand["W"])


def test_clip_grad_norm_scales_all_gradients_together():
    params = {"W": np.zeros(2), "b": np.zeros(1)}
    opt = SGD(lr=1.0)
    opt.add_hook(ClipGradNorm(1.0))
    opt.update(params, {"W": np.array([3.0, 0.0]), "b": np.array([4.0])})  # norm 5
    np.testing.assert_allclose(params["W"], [-0.6, 0.0], rtol=1e-15)
    np.testing.assert_allclose(params["b"], [-0.8], rtol=1e-15)
    opt.update(params, {"W": np.array([0.3, 0.0]), "b": np.array([0.4])})  # norm 0.5: kept
    np.testing.assert_allclose(params["W"], [-0.9, 0.0], rtol=1e-15)


def test_bad_hooks_are_named():
    opt = SGD(lr=0.1)
    with pytest.raises(TypeError, match="SGD: a hook must be callable"):
        opt.add_hook(0.01)
    with pytest.raises(ValueError, match="WeightDecay: rate must be finite and non-negative"):
        WeightDecay(-1.0)

    def truncate(params, grads):
        grads["W"] = grads["W"][:1]

    opt.add_hook(truncate)
    W = np.ones(2)
    with pytest.raises(ValueError, match=r"the gradient for 'W' is ndarray of shape \(1,\)"):
        opt.update({"W": W}, {"W": np.ones(2)})
    assert np.array_equal(W, np.ones(2)) and opt.t == 0


def test_the_books_adam_survives_a_trainer_checkpoint(tmp_path):
    from chainrule.layers import TwoLayerNet
    from chainrule.training import Trainer

    rng = np.random.default_rng(0)
    x, t = rng.normal(size=(200, 6)).astype(np.float32), rng.integers(0, 3, 200)

    def trainer(opt, epochs):
        net = TwoLayerNet(6, 8, 3, rng=np.random.default_rng(1), dtype=np.float32)
        return Trainer(net, opt, x, t, x, t, epochs=epochs, batch_size=50, progress="none")

    straight = trainer(Adam(lr=0.01, variant="book"), 2)
    straight.fit()
    first = trainer(Adam(lr=0.01, variant="book"), 1)
    first.fit()
    first.save(tmp_path / "run.ckpt")
    resumed = trainer(Adam(lr=0.01), 2)  # PyTorch's variant until the checkpoint says otherwise
    resumed.restore(tmp_path / "run.ckpt")
    assert resumed.optimizer.variant == "book"
    resumed.fit()
    for key, value in straight.model.params.items():
        assert np.array_equal(resumed.model.params[key], value), key
