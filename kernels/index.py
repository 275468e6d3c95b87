"""Gather and scatter kernels for indexing.

Indices reach these kernels only after the caller validated them against the indexed shape
(Numba does not check bounds).
"""

from __future__ import annotations

import numpy as np
from numba import njit

JIT = dict(cache=True, error_model="numpy", nogil=True)


@njit(**JIT)
def _scatter_add(out, idx, src):
    """out[idx[i]] += src[i]"""
    for i in range(idx.size):
        out[idx[i]] += src[i]


def scatter_add(size: int, idx: np.ndarray, src: np.ndarray) -> np.ndarray:
    """A zero buffer of `size` elements with src[i] added at flat position idx[i]."""
    out = np.zeros(size, dtype=src.dtype)
    if idx.size:
        _scatter_add(out, np.ascontiguousarray(idx, dtype=np.int64).reshape(-1),
                     np.ascontiguousarray(src).reshape(-1))
    return out


@njit(**JIT)
def _scatter_dim(g, idx, out):
    """out[o, idx[o, j], j] = g[o, j] (out starts zeroed)"""
    outer, inner = g.shape
    for o in range(outer):
        for j in range(inner):
            out[o, idx[o, j], j] = g[o, j]


@njit(**JIT)
def _gather_dim(x, idx, out):
    """out[o, j] = x[o, idx[o, j], j]"""
    outer, inner = out.shape
    for o in range(outer):
        for j in range(inner):
            out[o, j] = x[o, idx[o, j], j]


def scatter_dim(g2: np.ndarray, idx2: np.ndarray, r: int) -> np.ndarray:
    """Place g2[o, j] at row idx2[o, j] of a zero (outer, r, inner) block."""
    out = np.zeros((g2.shape[0], r, g2.shape[1]), dtype=g2.dtype)
    if g2.size:
        _scatter_dim(np.ascontiguousarray(g2), np.ascontiguousarray(idx2), out)
    return out


def gather_dim(x3: np.ndarray, idx2: np.ndarray) -> np.ndarray:
    """Pick x3[o, idx2[o, j], j] for every (o, j)."""
    out = np.empty(idx2.shape, dtype=x3.dtype)
    if out.size:
        _gather_dim(np.ascontiguousarray(x3), np.ascontiguousarray(idx2), out)
    return out
