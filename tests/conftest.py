"""Test configuration. The whole suite runs on one device, chosen with the environment
variable JITGRAD_TEST_DEVICE (default "cpu"); tests take it from the `device` fixture."""

from __future__ import annotations

import os

import numpy as np
import pytest

DEVICE = os.environ.get("JITGRAD_TEST_DEVICE", "cpu")


@pytest.fixture
def device() -> str:
    return DEVICE


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh generator per test; its seed is printed when the test fails."""
    seed = int(np.random.SeedSequence().entropy % (2**32))
    print(f"rng seed: {seed}")
    return np.random.default_rng(seed)
