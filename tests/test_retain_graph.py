"""``backward(retain_graph=False)``: the training loop's walk that frees the graph as it goes.

The default keeps the graph (a second ``backward`` adds to ``.grad``; ``explain`` and the
pictures read it afterwards). A freeing walk must give the very same gradients, let each value
go as soon as no gradient below it needs it (so backward's memory peak stays near the forward
pass's), and say clearly when a freed graph is used again.
"""

from __future__ import annotations

import gc
import tracemalloc
import weakref

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from chainrule import Tensor, nn
from chainrule import functions as F
from chainrule.explain import explain
from chainrule.function import GraphFreedError


def _net(rng: np.random.Generator) -> tuple[list[Tensor], Tensor, np.ndarray]:
    """Parameters, an input batch and labels of a small net with a fork (h used twice)."""
    W1 = Tensor(rng.standard_normal((6, 5)), name="W1")
    W2 = Tensor(rng.standard_normal((5, 3)), name="W2")
    x = Tensor(rng.standard_normal((4, 6)), name="x")
    return [W1, W2], x, rng.integers(0, 3, 4)


def _loss(params: list[Tensor], x: Tensor, t: np.ndarray) -> Tensor:
    W1, W2 = params
    h = F.tanh(x @ W1)
    return F.softmax_cross_entropy((h * h + h) @ W2, t)


def test_a_freeing_walk_gives_the_same_gradients_bit_for_bit(rng):
    params, x, t = _net(rng)
    _loss(params, x, t).backward()
    kept = [p.grad.copy() for p in (*params, x)]
    for p in (*params, x):
        p.cleargrad()
    _loss(params, x, t).backward(retain_graph=False)
    for want, p in zip(kept, (*params, x)):
        assert_array_equal(p.grad, want)


def test_values_die_during_a_freeing_walk_and_live_on_by_default(rng):
    params, x, t = _net(rng)
    for retain, alive in ((True, True), (False, False)):
        h = F.tanh(x @ params[0])
        probe = weakref.ref(h)
        loss = F.softmax_cross_entropy(h @ params[1], t)
        del h  # only the graph holds the hidden value now
        loss.backward(retain_graph=retain)
        gc.collect()
        assert (probe() is not None) is alive
        assert params[0].grad is not None
        for p in params:
            p.cleargrad()


def test_a_value_the_user_holds_keeps_its_data_and_retained_grad(rng):
    params, x, t = _net(rng)
    h = F.tanh(x @ params[0])
    loss = F.softmax_cross_entropy(h @ params[1], t)
    loss.backward(retain_grad=True, retain_graph=False)
    assert h.grad is not None and h.grad.shape == h.shape
    assert np.isfinite(h.data).all()


def test_a_freeing_walk_hands_the_values_back_as_it_goes():
    # A chain of 12 ops on 0.8 MB values. NumPy's allocations are deterministic, and traced.
    x = Tensor(np.random.default_rng(0).standard_normal((200, 500)))

    def walk(retain: bool) -> tuple[int, int, int]:
        """(held after forward, backward's rise above that, held after backward)."""
        tracemalloc.start()
        try:
            h = x
            for _ in range(12):
                h = F.tanh(h) * 0.5
            loss = F.sum(h)
            del h
            forward = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            loss.backward(retain_graph=retain)
            after, peak = tracemalloc.get_traced_memory()
            return forward, peak - forward, after
        finally:
            tracemalloc.stop()
            x.cleargrad()

    kept, freed = walk(True), walk(False)
    value = x.data.nbytes
    assert kept[0] == pytest.approx(freed[0], rel=0.01) and kept[0] > 20 * value
    assert kept[2] > kept[0]  # everything still held, and x.grad besides
    assert freed[2] < 2 * value  # only x.grad is left while `loss` lives
    assert freed[1] < kept[1]  # backward climbs less above the forward pass's level
    assert freed[1] <= 3 * value, freed


def test_walking_a_freed_graph_again_says_so(rng):
    params, x, t = _net(rng)
    loss = _loss(params, x, t)
    loss.backward(retain_graph=False)
    with pytest.raises(GraphFreedError, match=r"SoftmaxWithLoss: this graph was freed by backward"):
        loss.backward()
    with pytest.raises(GraphFreedError, match="retain_graph"):
        explain(loss)


def test_a_freed_graph_cannot_be_drawn(rng):
    from chainrule.viz import draw

    params, x, t = _net(rng)
    loss = _loss(params, x, t)
    loss.backward(retain_graph=False)
    with pytest.raises(GraphFreedError, match="run the forward pass again"):
        draw(loss, "dot")


def test_the_default_still_accumulates_over_a_second_backward(rng):
    params, x, t = _net(rng)
    loss = _loss(params, x, t)
    loss.backward()
    once = params[0].grad.copy()
    loss.backward()
    np.testing.assert_allclose(params[0].grad, 2 * once, rtol=1e-12)


def test_create_graph_keeps_the_graph_whatever_retain_graph_says():
    x = Tensor(np.array([1.5, -0.5]))
    y = F.sum(x * x * x)
    y.backward(create_graph=True, retain_graph=False)
    gx = x.grad
    x.cleargrad()
    F.sum(gx).backward()  # d/dx sum(3 x^2) = 6 x
    np.testing.assert_allclose(x.grad, 6 * x.data)


def test_module_training_step_frees_its_graph_and_matches_a_kept_one(rng):
    model = nn.MLP([6, 5, 3], activation="relu", dtype=np.float64)
    x, t = rng.standard_normal((8, 6)), rng.integers(0, 3, 8)
    loss, grads = model.loss_and_grads(x, t)
    model.zero_grad()
    kept = F.softmax_cross_entropy(model(x), t)
    kept.backward()
    assert loss == pytest.approx(float(kept.data), rel=1e-15)
    for name, p in model.named_parameters():
        assert_array_equal(grads[name], p.grad)


def test_the_training_loop_step_walks_with_a_freeing_backward(rng):
    model = nn.MLP([6, 5, 3], activation="relu", dtype=np.float64)
    losses: list[Tensor] = []

    def loss_fn(scores: Tensor, t: np.ndarray) -> Tensor:
        losses.append(F.softmax_cross_entropy(scores, t))
        return losses[-1]

    model.loss_fn = loss_fn
    model.loss_and_grads(rng.standard_normal((8, 6)), rng.integers(0, 3, 8))
    with pytest.raises(GraphFreedError):
        losses[0].creator.inputs


def test_an_op_object_called_again_after_a_freeing_walk_keeps_its_settings():
    # An op built once and called every step (its __init__ settings: the slope) must survive
    # the release of the node its previous call became.
    leaky = F.LeakyRelu(0.2)
    x = Tensor(np.array([-1.0, 2.0]))
    for _ in range(2):
        y = leaky(x)
        F.sum(y).backward(retain_graph=False)
        np.testing.assert_allclose(y.data, [-0.2, 2.0])
        np.testing.assert_allclose(x.grad, [0.2, 1.0])
        x.cleargrad()
    with pytest.raises(GraphFreedError):
        y.creator.inputs
    assert leaky.slope == 0.2
