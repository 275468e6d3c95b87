"""Scan kernels for the CPU: running sums and products along one dimension, their backward,
and the first-order linear recurrence that makes their derivatives closed under
differentiation.

Every scan sees its operands as contiguous (outer, r, inner) blocks and runs along the middle
axis, forwards or (``reverse``) backwards. With inner > 1 the innermost loop runs over a
contiguous row of `inner` independent lanes, so it vectorizes; with inner == 1 a row is one
sequential chain. Float scans accumulate in float64, as torch's CPU kernels do. Launchers take
and return arrays of the caller's shape; shapes and the dim are validated by the caller.
"""

from __future__ import annotations

import numpy as np
from numba import njit

JIT = dict(cache=True, error_model="numpy", nogil=True)


def _acc_zero(dtype: np.dtype):
    """The accumulator's zero for `dtype`: float64 for floats, int64 for integers."""
    return np.float64(0) if dtype.kind == "f" else np.int64(0)


def _block(a: np.ndarray, dim: int) -> np.ndarray:
    """`a` as a contiguous (outer, r, inner) block with `dim` in the middle."""
    a = np.ascontiguousarray(a)
    if a.ndim == 0:
        return a.reshape(1, 1, 1)
    outer = int(np.prod(a.shape[:dim], dtype=np.int64))
    inner = int(np.prod(a.shape[dim + 1:], dtype=np.int64))
    return a.reshape(outer, a.shape[dim], inner)


# --------------------------------------------------------------------------- kernels

@njit(**JIT)
def _cumsum3(a, out, zero, reverse):
    """out[o, k, j] = sum of a[o, i, j] over i <= k (i >= k when reverse)"""
    outer, r, inner = a.shape
    if inner == 1:
        for o in range(outer):
            acc = zero
            for t in range(r):
                k = r - 1 - t if reverse else t
                acc += a[o, k, 0]
                out[o, k, 0] = acc
        return
    acc_row = np.empty(inner, dtype=type(zero))
    for o in range(outer):
        acc_row[:] = zero
        for t in range(r):
            k = r - 1 - t if reverse else t
            for j in range(inner):
                acc_row[j] += a[o, k, j]
                out[o, k, j] = acc_row[j]


@njit(**JIT)
def _cumprod3(a, out, one, reverse):
    """out[o, k, j] = product of a[o, i, j] over i <= k (i >= k when reverse)"""
    outer, r, inner = a.shape
    if inner == 1:
        for o in range(outer):
            acc = one
            for t in range(r):
                k = r - 1 - t if reverse else t
                acc *= a[o, k, 0]
                out[o, k, 0] = acc
        return
    acc_row = np.empty(inner, dtype=type(one))
    for o in range(outer):
        acc_row[:] = one
        for t in range(r):
            k = r - 1 - t if reverse else t
            for j in range(inner):
                acc_row[j] *= a[o, k, j]
                out[o, k, j] = acc_row[j]


@njit(**JIT)
def _linrec3(a, b, out, zero, reverse):
    """out[o, k, j] = a[o, k, j] * out[o, k - 1, j] + b[o, k, j] (k + 1 when reverse), from 0"""
    outer, r, inner = a.shape
    acc_row = np.empty(inner, dtype=type(zero))
    for o in range(outer):
        acc_row[:] = zero
        for t in range(r):
            k = r - 1 - t if reverse else t
            for j in range(inner):
                acc_row[j] = a[o, k, j] * acc_row[j] + b[o, k, j]
                out[o, k, j] = acc_row[j]


@njit(**JIT)
def _cumprod_backward3(g, x, y, out, zero, reverse):
    """out[o, k, j] = sum_{m >= k} g[o, m, j] * prod_{i <= m, i != k} x[o, i, j] (mirrored)"""
    # Without division: out[k] = y[k - 1] * s[k], with s[k] = g[k] + x[k + 1] * s[k + 1].
    outer, r, inner = x.shape
    s = np.empty(inner, dtype=type(zero))
    for o in range(outer):
        s[:] = zero
        for t in range(r - 1, -1, -1):  # t counts along the scan's own direction
            k = r - 1 - t if reverse else t
            if t < r - 1:
                kn = k - 1 if reverse else k + 1
                for j in range(inner):
                    s[j] = s[j] * x[o, kn, j] + g[o, k, j]
            else:
                for j in range(inner):
                    s[j] = g[o, k, j]
            if t > 0:
                kp = k + 1 if reverse else k - 1
                for j in range(inner):
                    out[o, k, j] = s[j] * y[o, kp, j]
            else:
                for j in range(inner):
                    out[o, k, j] = s[j]


# --------------------------------------------------------------------------- launchers

def cumsum(a: np.ndarray, dim: int, out_dtype, reverse: bool = False) -> np.ndarray:
    """Running sums of `a` along `dim`, in `out_dtype` (the caller casts `a` to it)."""
    out = np.empty(a.shape, dtype=out_dtype)
    if out.size:
        _cumsum3(_block(a, dim), _block(out, dim), _acc_zero(out.dtype), reverse)
    return out


def cumprod(a: np.ndarray, dim: int, out_dtype, reverse: bool = False) -> np.ndarray:
    """Running products of `a` along `dim`, in `out_dtype`."""
    out = np.empty(a.shape, dtype=out_dtype)
    if out.size:
        one = np.float64(1) if out.dtype.kind == "f" else np.int64(1)
        _cumprod3(_block(a, dim), _block(out, dim), one, reverse)
    return out


def cumprod_backward(g: np.ndarray, x: np.ndarray, y: np.ndarray, dim: int,
                     reverse: bool = False) -> np.ndarray:
    """The gradient of cumprod(x, dim) = y for the output gradient g (all of x's shape),
    exact where x has zeros."""
    out = np.empty(x.shape, dtype=x.dtype)
    if out.size:
        _cumprod_backward3(_block(g, dim), _block(x, dim), _block(y, dim), _block(out, dim),
                           _acc_zero(x.dtype), reverse)
    return out


def linrec(a: np.ndarray, b: np.ndarray, dim: int, reverse: bool = False) -> np.ndarray:
    """y[k] = a[k] * y[k - 1] + b[k] along `dim` from y = 0 (y[k + 1] when reverse); a and b
    share a shape and a float dtype."""
    out = np.empty(a.shape, dtype=a.dtype)
    if out.size:
        _linrec3(_block(a, dim), _block(b, dim), _block(out, dim), _acc_zero(a.dtype), reverse)
    return out


def shift(a: np.ndarray, dim: int, by: int, fill) -> np.ndarray:
    """`a` moved by one position along `dim` (by = +1: towards higher indices), the vacated
    slot set to `fill` and the element pushed out dropped."""
    out = np.empty(a.shape, dtype=a.dtype)
    if out.size == 0:
        return out
    if a.ndim == 0:
        out[()] = fill
        return out
    n = a.shape[dim]
    head = (slice(None),) * dim
    if by > 0:
        out[head + (slice(1, n),)] = a[head + (slice(0, n - 1),)]
        out[head + (slice(0, 1),)] = fill
    else:
        out[head + (slice(0, n - 1),)] = a[head + (slice(1, n),)]
        out[head + (slice(n - 1, n),)] = fill
    return out
