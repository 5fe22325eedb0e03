"""The small net's training step after its speed-ups gives the very same numbers and errors.

SoftmaxWithLoss picks the log-softmax entries at the labels by flat index instead of building
the full matrix, subtracts 1 at the labels instead of building ``eye(C)[t]``, and takes the row
maximum of few classes down the columns of a transposed copy; ``check_finite`` first tries a
sum of squares; ``check_targets`` checks the label range with one reduction. Each must agree
bit for bit with the plain formulas, and bad input must still fail the same way.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from chainrule.functions.checks import check_finite
from chainrule.functions.loss import SoftmaxWithLoss, _row_max, check_targets


def _plain(x: np.ndarray, t: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Loss, y and dx by the textbook formulas: the full log-softmax matrix and eye(C)[t]."""
    n, c = x.shape
    shifted = x - x.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    total = e.sum(axis=-1, keepdims=True)
    logp = shifted - np.log(total)
    loss = 0.0 - logp[np.arange(n), t].sum() / n
    y = e / total
    return loss, y, (y - np.eye(c, dtype=x.dtype)[t]) * (1 / n)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("n", "c"), [(1, 2), (100, 10), (7, 32), (5, 33), (3, 200)])
def test_softmax_with_loss_is_bit_for_bit_the_plain_formula(dtype, n, c) -> None:
    rng = np.random.default_rng(n * 1000 + c)
    for scale in (0.1, 1.0, 30.0):
        x = (rng.standard_normal((n, c)) * scale).astype(dtype)
        t = rng.integers(0, c, n)
        layer = SoftmaxWithLoss()
        loss = layer.forward(x, t)
        want_loss, want_y, want_dx = _plain(x, t)
        assert loss == want_loss and np.asarray(loss).dtype == np.asarray(want_loss).dtype
        np.testing.assert_array_equal(layer.y, want_y)
        dx = layer.backward(1)
        assert dx.dtype == want_dx.dtype
        np.testing.assert_array_equal(dx, want_dx)
        np.testing.assert_array_equal(layer.y, want_y)  # backward left y alone


@pytest.mark.parametrize("c", [1, 2, 10, 32, 33, 100])
def test_row_max_is_exact(c: int) -> None:
    x = np.random.default_rng(c).standard_normal((17, c)).astype(np.float32)
    got = _row_max(x)
    assert got.shape == (17, 1)
    np.testing.assert_array_equal(got, x.max(axis=1, keepdims=True))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_check_finite_still_finds_every_non_finite_value(bad: float) -> None:
    x = np.zeros((4, 3), dtype=np.float32)
    x[2, 1] = bad
    with pytest.raises(FloatingPointError, match=r"S: 1 of 12 scores are NaN or inf .*\[2, 1\]"):
        check_finite("S", "scores", x)


def test_check_finite_passes_huge_finite_values_quietly() -> None:
    # Their sum of squares overflows to inf: the exact test decides, and it must not warn.
    x = np.full((3, 4), 3e38, dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_finite("S", "scores", x)
        check_finite("S", "scores", np.array([1e300, -1e300]))


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64])
def test_negative_labels_are_still_out_of_range(dtype) -> None:
    x = np.zeros((4, 10))
    t = np.array([0, 3, -1, 9], dtype=dtype)
    with pytest.raises(ValueError, match=r"L: label -1 at index 2 is out of range for 10"):
        check_targets("L", x, t)
    t = np.array([0, 10, 3, 9], dtype=dtype)
    with pytest.raises(ValueError, match=r"L: label 10 at index 1 is out of range for 10"):
        check_targets("L", x, t)
    labels, one_hot = check_targets("L", x, np.array([0, 9, 5, 5], dtype=dtype))
    assert not one_hot and labels.dtype == np.intp


def test_negative_float_labels_are_out_of_range() -> None:
    with pytest.raises(ValueError, match=r"L: label -2 at index 0 is out of range"):
        check_targets("L", np.zeros((2, 5)), np.array([-2.0, 3.0]))
