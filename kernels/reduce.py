"""Reduction kernels for the CPU.

Every reduction sees its input as a contiguous (outer, r, inner) block and reduces the middle
axis; the launcher in Python brings any set of reduced dimensions into that form (a view when
they are adjacent, one transposing copy otherwise). Float sums accumulate in float64 and are
allowed to reassociate, so the inner loops vectorize.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

JIT = dict(cache=True, error_model="numpy", nogil=True)
REASSOC = {"reassoc", "nsz", "contract"}
PARALLEL_MIN = 1 << 17
_CHUNK = 1 << 15


@njit(fastmath=REASSOC, **JIT)
def _sum3(a, out, zero, scale):
    """out[o, j] = scale * sum_k a[o, k, j]"""
    outer, r, inner = a.shape
    if inner == 1:
        for o in range(outer):
            acc = zero
            for k in range(r):
                acc += a[o, k, 0]
            out[o, 0] = acc * scale
    else:
        row = np.empty(inner, dtype=type(zero))
        for o in range(outer):
            row[:] = zero
            for k in range(r):
                for j in range(inner):
                    row[j] += a[o, k, j]
            for j in range(inner):
                out[o, j] = row[j] * scale


@njit(parallel=True, fastmath=REASSOC, **JIT)
def _sum3_par(a, out, zero, scale):
    """out[o, j] = scale * sum_k a[o, k, j], rows in parallel"""
    outer, r, inner = a.shape
    for o in prange(outer):
        for j in range(inner):
            acc = zero
            for k in range(r):
                acc += a[o, k, j]
            out[o, j] = acc * scale


@njit(parallel=True, fastmath=REASSOC, **JIT)
def _sum_flat_par(a, zero):
    """sum_i a[i], in parallel chunks"""
    n = a.size
    nchunks = (n + _CHUNK - 1) // _CHUNK
    partial = np.zeros(nchunks, dtype=type(zero))
    for c in prange(nchunks):
        acc = zero
        for i in range(c * _CHUNK, min(n, (c + 1) * _CHUNK)):
            acc += a[i]
        partial[c] = acc
    total = zero
    for c in range(nchunks):
        total += partial[c]
    return total


def sum_(a3: np.ndarray, out_dtype, scale: float = 1.0) -> np.ndarray:
    """Sum a contiguous (outer, r, inner) array over axis 1; `scale` multiplies the result
    (1/r gives the mean)."""
    outer, r, inner = a3.shape
    floating = a3.dtype.kind == "f"
    zero = np.float64(0) if floating else np.int64(0)
    sc = np.float64(scale) if floating else np.int64(scale)
    out = np.empty((outer, inner), dtype=out_dtype)
    if out.size == 0:
        return out
    if a3.size >= PARALLEL_MIN:
        if outer == 1 and inner == 1:
            out[0, 0] = _sum_flat_par(a3.reshape(-1), zero) * sc
            return out
        if outer > 1 and inner == 1:
            _sum3_par(a3, out, zero, sc)
            return out
    _sum3(a3, out, zero, sc)
    return out


@njit(**JIT)
def _extreme3(a, vals, idx, want_max):
    """vals[o, j], idx[o, j] = max (or min) of a[o, :, j] and its first index; nan wins"""
    outer, r, inner = a.shape
    for o in range(outer):
        for j in range(inner):
            vals[o, j] = a[o, 0, j]
            idx[o, j] = 0
        for k in range(1, r):
            for j in range(inner):
                v = a[o, k, j]
                b = vals[o, j]
                if b != b:
                    continue
                if v != v or (v > b if want_max else v < b):
                    vals[o, j] = v
                    idx[o, j] = k


def extreme(a3: np.ndarray, want_max: bool):
    """Max or min of a contiguous (outer, r, inner) array over axis 1, with int64 indices."""
    outer, r, inner = a3.shape
    vals = np.empty((outer, inner), dtype=a3.dtype)
    idx = np.empty((outer, inner), dtype=np.int64)
    if vals.size:
        _extreme3(a3, vals, idx, want_max)
    return vals, idx


def as_3d(a: np.ndarray, dims: tuple) -> tuple:
    """View or copy `a` as a contiguous (outer, r, inner) block with the sorted, distinct
    `dims` in the middle. Returns (block, kept_shape)."""
    nd = a.ndim
    kept = tuple(d for d in range(nd) if d not in dims)
    kept_shape = tuple(a.shape[d] for d in kept)
    r = 1
    for d in dims:
        r *= a.shape[d]
    if dims and dims[-1] - dims[0] + 1 == len(dims):  # adjacent: a view of contiguous data
        a = np.ascontiguousarray(a)
        outer = 1
        for d in range(dims[0]):
            outer *= a.shape[d]
        inner = 1
        for d in range(dims[-1] + 1, nd):
            inner *= a.shape[d]
        return a.reshape(outer, r, inner), kept_shape
    t = np.ascontiguousarray(a.transpose(kept + dims))
    outer = 1
    for n in kept_shape:
        outer *= n
    return t.reshape(outer, r, 1), kept_shape
