"""Mini-batches: a seeded permutation per epoch, cut into full batches; an exact position.

Every epoch draws a fresh permutation of the training set from ``np.random.default_rng(seed)``
and cuts it into ``floor(N / batch_size)`` batches of exactly ``batch_size`` samples, without
replacement; the ``N % batch_size`` samples left over are skipped for that epoch only. The
position is the generator's state before the current permutation was drawn plus the number of
its batches already used, so a resumed run draws exactly the batches it would have drawn.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from chainrule.backend import get_array_module

__all__ = ["BatchSampler", "decode_rng", "encode_rng"]


def encode_rng(rng: np.random.Generator) -> dict[str, Any]:
    """The bit generator's state as JSON: integers as decimal strings (PCG64's are 128-bit)."""

    def encode(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: encode(v) for k, v in value.items()}
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            return str(int(value))
        raise ValueError(f"cannot store the state of {type(rng.bit_generator).__name__} as JSON")

    state = rng.bit_generator.state
    return {
        "bit_generator": state["bit_generator"],
        "state": encode({k: v for k, v in state.items() if k != "bit_generator"}),
    }


def decode_rng(rng: np.random.Generator, data: Mapping[str, Any]) -> None:
    """Set ``rng``'s state from :func:`encode_rng`'s output (same bit generator class).

    Raises:
        ValueError: another bit generator, or a state that is not one (any malformed field).
    """

    def decode(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: decode(v) for k, v in value.items()}
        if not isinstance(value, str) or not value.isdigit():
            raise ValueError(f"generator state holds {value!r}, not a decimal integer")
        return int(value)

    kind = type(rng.bit_generator).__name__
    if not isinstance(data, Mapping) or data.get("bit_generator") != kind:
        found = data.get("bit_generator") if isinstance(data, Mapping) else data
        raise ValueError(f"generator state is for {found!r}, not {kind}")
    state = data.get("state")
    if not isinstance(state, Mapping):
        raise ValueError("generator state has no 'state' mapping")
    try:
        rng.bit_generator.state = {"bit_generator": kind, **decode(dict(state))}
    except (TypeError, KeyError, OverflowError) as exc:
        raise ValueError(f"invalid {kind} generator state ({exc!r})") from None


class BatchSampler:
    """Draws the indices of each training step; ``state()``/``restore()`` hold its position.

    >>> sampler = BatchSampler(size=5, batch_size=2, seed=0)  # 2 full batches an epoch
    >>> first = sampler.indices().copy(); sampler.advance()
    >>> sampler.state()["batches_done"], sampler.iters_per_epoch
    (1, 2)
    >>> again = BatchSampler(size=5, batch_size=2, seed=123)
    >>> again.restore(1, **sampler.state())  # after 1 step: the same next batch
    >>> bool((again.indices() == sampler.indices()).all())
    True
    """

    def __init__(self, size: int, batch_size: int, seed: int) -> None:
        self.size, self.batch_size = size, batch_size
        self.iters_per_epoch = size // batch_size
        self.rng = np.random.default_rng(seed)
        self.epoch_rng_state: dict[str, Any] | None = None
        self.perm: np.ndarray | None = None
        self.position = 0  # batches of ``perm`` already used

    def indices(self) -> np.ndarray:
        """The sample indices of the next batch (a view; the position is not advanced)."""
        if self.perm is None or self.position == self.iters_per_epoch:
            self.epoch_rng_state = encode_rng(self.rng)
            self.perm = self.rng.permutation(self.size)
            self.position = 0
        b = self.batch_size
        return self.perm[self.position * b : (self.position + 1) * b]

    def advance(self) -> None:
        """Count the batch of :meth:`indices` as used (after its update was applied)."""
        self.position += 1

    def end_of_epoch(self) -> bool:
        return self.position == self.iters_per_epoch

    def gather(self, x: Any, t: Any, xb: Any, tb: Any) -> None:
        """Copy the next batch of ``(x, t)`` into the reused buffers ``xb``, ``tb``."""
        idx = self.indices()
        xp = get_array_module(x)
        if xp is not np:
            idx = xp.asarray(idx)  # the order is drawn on the host, as on the CPU
        xp.take(x, idx, axis=0, out=xb)
        xp.take(t, idx, axis=0, out=tb)

    def state(self) -> dict[str, Any]:
        """JSON: the generator state before this epoch's permutation, and batches used."""
        return {
            "epoch_rng_state": self.epoch_rng_state,
            "batches_done": self.position if self.perm is not None else 0,
        }

    def restore(self, iteration: int, epoch_rng_state: Any, batches_done: Any) -> None:
        """Continue after ``iteration`` completed steps from a :meth:`state`.

        Raises:
            ValueError: a position that this sampler cannot have reached after ``iteration``
                steps (negative, beyond the epoch, or out of step with ``iteration``).
        """
        ipe = self.iters_per_epoch
        if epoch_rng_state is None:
            if iteration != 0 or batches_done != 0:
                raise ValueError(
                    f"position: no epoch generator state, but {iteration} steps were done"
                )
            self.perm, self.position, self.epoch_rng_state = None, 0, None
            return
        if isinstance(batches_done, bool) or not isinstance(batches_done, int):
            raise ValueError(f"position: batches_done is {batches_done!r}, not an integer")
        expected = iteration % ipe or ipe  # the end of an epoch draws the next one lazily
        if iteration == 0 or batches_done != expected:
            raise ValueError(
                f"position: {batches_done} batches done in this epoch does not fit iteration "
                f"{iteration} with {ipe} batches per epoch"
            )
        rng = np.random.default_rng()
        decode_rng(rng, epoch_rng_state)  # validates before anything changes
        self.rng.bit_generator.state = rng.bit_generator.state
        self.epoch_rng_state = epoch_rng_state
        self.perm = self.rng.permutation(self.size)
        self.position = batches_done
