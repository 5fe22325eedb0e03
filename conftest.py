"""Shared fixtures for the tests and the doctests of every module (hence at the root):
deterministic seeding, a NumPy generator, hypothesis profiles, and no network."""

from __future__ import annotations

import os

# Before NumPy is imported anywhere: one BLAS thread keeps small matmuls fast and timings stable.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# No test touches the network: data comes from CHAINRULE_DATA or the tests' own files.
os.environ.setdefault("CHAINRULE_OFFLINE", "1")

import numpy as np
import pytest
from hypothesis import settings

import chainrule

settings.register_profile("ci", derandomize=True, deadline=None, max_examples=30)
settings.register_profile("dev", deadline=None, max_examples=30)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(autouse=True)
def _seed_chainrule() -> None:
    """Every test starts from the same library RNG state (dropout, default initializers)."""
    chainrule.seed(0)


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh, seeded NumPy generator for test data."""
    return np.random.default_rng(1234)
