"""Test configuration. The whole suite runs on one device, chosen with the environment
variable JITGRAD_TEST_DEVICE (default "cpu"); tests take it from the `device` fixture.

On "cuda", files that test only host-side code (formatting, random streams, packaging, the
CPU's own kernels, ...) are not collected again, and hypothesis has no per-example deadline
(a first call compiles). Under numba-cuda's simulator (NUMBA_ENABLE_CUDASIM=1, how CI
exercises every CUDA kernel without a GPU) kernels run as Python, one thread per CUDA thread,
so the run is cut further: the op table takes each row's first shape case and hypothesis
draws few examples."""

from __future__ import annotations

import os

import numpy as np
import pytest

DEVICE = os.environ.get("JITGRAD_TEST_DEVICE", "cpu")
CUDASIM = DEVICE == "cuda" and os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"

if DEVICE == "cuda":
    from hypothesis import settings

    # A first call on a GPU compiles its kernels (a second or more): no per-example deadline.
    settings.register_profile("cuda", max_examples=5 if CUDASIM else 100, deadline=None)
    settings.load_profile("cuda")
    # Host-only subjects, identical on every device (they run in the CPU pass).
    collect_ignore = ["test_format.py", "test_random.py", "test_seed.py", "test_docs.py",
                      "test_packaging.py", "test_bench.py", "test_fastmath.py",
                      "test_kernels.py", "test_serialization.py", "test_data.py",
                      "test_train_digits.py"]


@pytest.fixture
def device() -> str:
    return DEVICE


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh generator per test; its seed is printed when the test fails."""
    seed = int(np.random.SeedSequence().entropy % (2**32))
    print(f"rng seed: {seed}")
    return np.random.default_rng(seed)
