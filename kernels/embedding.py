"""Embedding kernels for the CPU: the row gather of the forward is numpy's ``take``; its
backward adds gradient rows into the rows they were read from.

Indices reach these kernels only after the caller checked them against the number of rows.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["embedding", "embedding_backward"]

JIT = dict(cache=True, error_model="numpy", nogil=True)


@njit(**JIT)
def _add_rows(g, idx, out, skip):
    """out[idx[i], :] += g[i, :] for every i with idx[i] != skip (out starts zeroed)"""
    D = g.shape[1]
    for i in range(idx.size):
        r = idx[i]
        if r != skip:
            for j in range(D):
                out[r, j] += g[i, j]


def embedding(w: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Rows idx of w: shape idx.shape + (D,)."""
    return np.take(w, idx.reshape(-1), axis=0).reshape(idx.shape + w.shape[1:])


def embedding_backward(g: np.ndarray, idx: np.ndarray, num: int, padding_idx: int,
                       scale_by_freq: bool) -> np.ndarray:
    """(num, D) zeros with row i of g (reshaped to (-1, D)) added to row idx[i]; rows
    equal to padding_idx get nothing; with scale_by_freq each contribution is divided by the
    number of times its index occurs."""
    D = g.shape[-1]
    flat = np.ascontiguousarray(idx, dtype=np.int64).reshape(-1)
    out = np.zeros((num, D), dtype=g.dtype)
    if flat.size and D:
        _add_rows(np.ascontiguousarray(g).reshape(-1, D), flat, out, padding_idx)
        if scale_by_freq:
            counts = np.bincount(flat, minlength=num)
            out /= np.maximum(counts, 1).astype(g.dtype)[:, None]
    return out
