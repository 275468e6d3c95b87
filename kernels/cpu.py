"""The CPU backend: the launchers the op layer calls for tensors whose storage is a numpy
array. A GPU backend exposes the same names for its own storage type."""

from __future__ import annotations

import numpy as np

from .elementwise import binary, ternary, unary  # noqa: F401
from .index import gather_dim, scatter_add, scatter_dim  # noqa: F401
from .matmul import matmul  # noqa: F401
from .reduce import as_3d, extreme, sum_  # noqa: F401

storage = np.ndarray


def empty(shape, dtype) -> np.ndarray:
    return np.empty(shape, dtype=dtype)


def zeros(shape, dtype) -> np.ndarray:
    return np.zeros(shape, dtype=dtype)


def full(shape, value, dtype) -> np.ndarray:
    return np.full(shape, value, dtype=dtype)


def cast(a: np.ndarray, dtype) -> np.ndarray:
    """A copy of `a` converted to `dtype`."""
    return a.astype(dtype)


def copy(a: np.ndarray) -> np.ndarray:
    """A contiguous copy of `a`."""
    return np.array(a, order="C", copy=True)

# ---- kernel families added after the core: one import line each ----
