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
# A dict, not a set: a set's order, and with it Numba's cache key, can change between processes.
REASSOC = {"reassoc": True, "nsz": True, "contract": True}
PARALLEL_MIN = 1 << 21  # see kernels/elementwise.py
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
        a = a if a.flags.c_contiguous else a.copy()
        outer = 1
        for d in range(dims[0]):
            outer *= a.shape[d]
        inner = 1
        for d in range(dims[-1] + 1, nd):
            inner *= a.shape[d]
        return a.reshape(outer, r, inner), kept_shape
    t = a.transpose(kept + dims).copy()  # (numpy or CUDA storage alike)
    outer = 1
    for n in kept_shape:
        outer *= n
    return t.reshape(outer, r, 1), kept_shape


# ==== Reductions family: products, moments, norms, any/all and the fused backward kernels
# ==== of the value-selecting reductions. Same (outer, r, inner) blocks as above; float
# ==== accumulators are float64.

import math  # noqa: E402


def from_3d(b3: np.ndarray, shape: tuple, dims: tuple) -> np.ndarray:
    """Undo `as_3d` for a full-size result: the (outer, r, inner) block `b3` back in the
    layout of an array of `shape` reduced over `dims`."""
    nd = len(shape)
    if not dims or dims[-1] - dims[0] + 1 == len(dims):
        return b3.reshape(shape)
    kept = tuple(d for d in range(nd) if d not in dims)
    perm = kept + dims
    t = b3.reshape(tuple(shape[d] for d in perm))
    return t.transpose(tuple(int(i) for i in np.argsort(perm))).copy()


# Each kernel has a row path for inner == 1 (the block viewed as (outer, r) rows: loops over
# 1-d rows vectorize where loops over the size-1 inner axis cannot) and a lane path for
# inner > 1 (loops over contiguous inner lanes).

@njit(fastmath=REASSOC, **JIT)
def _prod3(a, out, one):
    """out[o, j] = prod_k a[o, k, j]"""
    outer, r, inner = a.shape
    if inner == 1:
        a2 = a.reshape((outer, r))
        for o in range(outer):
            row = a2[o]
            acc = one
            for k in range(r):
                acc *= row[k]
            out[o, 0] = acc
        return
    acc_row = np.empty(inner, dtype=type(one))
    for o in range(outer):
        acc_row[:] = one
        for k in range(r):
            for j in range(inner):
                acc_row[j] *= a[o, k, j]
        for j in range(inner):
            out[o, j] = acc_row[j]


@njit(**JIT)
def _prod_backward3(g, x, out):
    """out[o, k, j] = g[o, j] * prod_{i != k} x[o, i, j] (prefix times suffix products)"""
    outer, r, inner = x.shape
    if inner == 1:
        x2 = x.reshape((outer, r))
        o2 = out.reshape((outer, r))
        for o in range(outer):
            row = x2[o]
            orow = o2[o]
            run = 1.0
            for k in range(r):
                orow[k] = run
                run *= row[k]
            run = np.float64(g[o, 0])
            for k in range(r - 1, -1, -1):
                orow[k] = orow[k] * run
                run *= row[k]
        return
    run_row = np.empty(inner, dtype=np.float64)
    for o in range(outer):
        run_row[:] = 1.0
        for k in range(r):
            for j in range(inner):
                out[o, k, j] = run_row[j]
                run_row[j] *= x[o, k, j]
        for j in range(inner):
            run_row[j] = g[o, j]
        for k in range(r - 1, -1, -1):
            for j in range(inner):
                out[o, k, j] = out[o, k, j] * run_row[j]
                run_row[j] *= x[o, k, j]


@njit(fastmath=REASSOC, **JIT)
def _moments3(a, out, dof, take_sqrt):
    """out[o, j] = sum_k (a[o, k, j] - mean_k a[o, k, j])^2 / dof, or its square root"""
    # Two passes (mean, then squared deviations): no cancellation.
    outer, r, inner = a.shape
    if inner == 1:
        a2 = a.reshape((outer, r))
        for o in range(outer):
            row = a2[o]
            s = 0.0
            for k in range(r):
                s += row[k]
            mean = s / r
            ss = 0.0
            for k in range(r):
                d = row[k] - mean
                ss += d * d
            v = ss / dof
            out[o, 0] = math.sqrt(v) if take_sqrt else v
        return
    mean_row = np.empty(inner, dtype=np.float64)
    acc_row = np.empty(inner, dtype=np.float64)
    for o in range(outer):
        mean_row[:] = 0.0
        acc_row[:] = 0.0
        for k in range(r):
            for j in range(inner):
                mean_row[j] += a[o, k, j]
        for j in range(inner):
            mean_row[j] /= r
        for k in range(r):
            for j in range(inner):
                d = a[o, k, j] - mean_row[j]
                acc_row[j] += d * d
        for j in range(inner):
            v = acc_row[j] / dof
            out[o, j] = math.sqrt(v) if take_sqrt else v


@njit(fastmath=REASSOC, **JIT)
def _var_backward3(g, x, out, scale):
    """out[o, k, j] = scale * g[o, j] * (x[o, k, j] - mean_k x[o, k, j])"""
    outer, r, inner = x.shape
    if inner == 1:
        x2 = x.reshape((outer, r))
        o2 = out.reshape((outer, r))
        for o in range(outer):
            row = x2[o]
            orow = o2[o]
            s = 0.0
            for k in range(r):
                s += row[k]
            mean = s / r
            c = scale * g[o, 0]
            for k in range(r):
                orow[k] = c * (row[k] - mean)
        return
    mean_row = np.empty(inner, dtype=np.float64)
    for o in range(outer):
        mean_row[:] = 0.0
        for k in range(r):
            for j in range(inner):
                mean_row[j] += x[o, k, j]
        for j in range(inner):
            mean_row[j] /= r
        for k in range(r):
            for j in range(inner):
                out[o, k, j] = scale * g[o, j] * (x[o, k, j] - mean_row[j])


NORM_ZERO, NORM_ONE, NORM_TWO, NORM_INF, NORM_NEG_INF, NORM_P = range(6)


@njit(**JIT)
def _extreme_abs(v, b, kind):
    """The running max (NORM_INF) or min of |a| with v = |a[k]| and b so far; nan sticks."""
    if b != b:
        return b
    if v != v or (v > b if kind == NORM_INF else v < b):
        return v
    return b


@njit(fastmath=REASSOC, **JIT)
def _norm_sum(a, kind, p):
    """sum_k f(|a[k]|) for the sum-type norms: 1 if non-zero, |a|, a^2 or |a|^p"""
    s = 0.0
    if kind == NORM_ZERO:
        for k in range(a.size):
            s += 1.0 if a[k] != 0 else 0.0
    elif kind == NORM_ONE:
        for k in range(a.size):
            s += abs(a[k])
    elif kind == NORM_TWO:
        for k in range(a.size):
            v = np.float64(a[k])
            s += v * v
    else:
        for k in range(a.size):
            s += abs(np.float64(a[k])) ** p
    return s


@njit(**JIT)
def _norm3(a, out, kind, p):
    """out[o, j] = ||a[o, :, j]||_p: #non-zeros, sum |a|, 2-norm, max |a|, min |a|, p-norm"""
    outer, r, inner = a.shape
    extreme = kind == NORM_INF or kind == NORM_NEG_INF
    if inner == 1:
        a2 = a.reshape((outer, r))
        for o in range(outer):
            row = a2[o]
            if extreme:
                acc = abs(np.float64(row[0]))
                for k in range(1, r):
                    acc = _extreme_abs(abs(np.float64(row[k])), acc, kind)
            else:
                acc = _norm_sum(row, kind, p)
            if kind == NORM_TWO:
                acc = math.sqrt(acc)
            elif kind == NORM_P:
                acc = acc ** (1.0 / p)
            out[o, 0] = acc
        return
    acc_row = np.empty(inner, dtype=np.float64)
    for o in range(outer):
        if extreme:
            for j in range(inner):
                acc_row[j] = abs(np.float64(a[o, 0, j]))
            for k in range(1, r):
                for j in range(inner):
                    acc_row[j] = _extreme_abs(abs(np.float64(a[o, k, j])), acc_row[j], kind)
        else:
            acc_row[:] = 0.0
            for k in range(r):
                for j in range(inner):
                    v = abs(np.float64(a[o, k, j]))
                    if kind == NORM_ZERO:
                        acc_row[j] += 1.0 if v != 0 else 0.0
                    elif kind == NORM_ONE:
                        acc_row[j] += v
                    elif kind == NORM_TWO:
                        acc_row[j] += v * v
                    else:
                        acc_row[j] += v ** p
        for j in range(inner):
            v = acc_row[j]
            if kind == NORM_TWO:
                v = math.sqrt(v)
            elif kind == NORM_P:
                v = v ** (1.0 / p)
            out[o, j] = v


@njit(**JIT)
def _any_all3(a, out, want_all):
    """out[o, j] = all (or any) of a[o, k, j] != 0 over k"""
    outer, r, inner = a.shape
    if inner == 1:
        a2 = a.reshape((outer, r))
        for o in range(outer):
            row = a2[o]
            res = want_all
            for k in range(r):
                if (row[k] != 0) != want_all:  # the first element that decides
                    res = not want_all
                    break
            out[o, 0] = res
        return
    for o in range(outer):
        for j in range(inner):
            out[o, j] = want_all
        for k in range(r):
            for j in range(inner):
                nz = a[o, k, j] != 0
                out[o, j] = (out[o, j] and nz) if want_all else (out[o, j] or nz)


_MAX_LANES = 16  # independent running extremes in a row: what lets the reduction vectorize


@njit(**JIT)
def _amax3(a, out, want_max):
    """out[o, j] = max (or min) over k of a[o, k, j]; nan propagates (r >= 1)"""
    outer, r, inner = a.shape
    if inner == 1:
        a2 = a.reshape((outer, r))
        lanes = np.empty(_MAX_LANES, dtype=a.dtype)
        body = r - r % _MAX_LANES
        for o in range(outer):
            row = a2[o]
            for q in range(_MAX_LANES):
                lanes[q] = row[0]
            for k0 in range(0, body, _MAX_LANES):
                for q in range(_MAX_LANES):
                    v = row[k0 + q]
                    b = lanes[q]
                    take = v != v or (v > b if want_max else v < b)
                    lanes[q] = v if take and b == b else b
            m = lanes[0]
            for q in range(1, _MAX_LANES):
                v = lanes[q]
                take = v != v or (v > m if want_max else v < m)
                m = v if take and m == m else m
            for k in range(body, r):
                v = row[k]
                take = v != v or (v > m if want_max else v < m)
                m = v if take and m == m else m
            out[o, 0] = m
        return
    for o in range(outer):
        for j in range(inner):
            out[o, j] = a[o, 0, j]
        for k in range(1, r):
            for j in range(inner):
                v = a[o, k, j]
                b = out[o, j]
                take = v != v or (v > b if want_max else v < b)
                out[o, j] = v if take and b == b else b


@njit(fastmath=REASSOC, **JIT)
def _extreme_backward3(g, x, v, out):
    """out[o, k, j] = g[o, j] / #{k: x[o, k, j] == v[o, j]} * (x[o, k, j] == v[o, j])"""
    outer, r, inner = x.shape
    if inner == 1:
        x2 = x.reshape((outer, r))
        o2 = out.reshape((outer, r))
        for o in range(outer):
            row = x2[o]
            orow = o2[o]
            m = v[o, 0]
            cnt = 0.0
            for k in range(r):
                cnt += 1.0 if row[k] == m else 0.0
            share = g[o, 0] / cnt
            for k in range(r):
                orow[k] = share if row[k] == m else 0.0 * share
        return
    cnt_row = np.empty(inner, dtype=np.float64)
    for o in range(outer):
        cnt_row[:] = 0.0
        for k in range(r):
            for j in range(inner):
                if x[o, k, j] == v[o, j]:
                    cnt_row[j] += 1.0
        for j in range(inner):
            cnt_row[j] = g[o, j] / cnt_row[j]
        for k in range(r):
            for j in range(inner):
                out[o, k, j] = cnt_row[j] if x[o, k, j] == v[o, j] else 0.0 * cnt_row[j]


def prod(a3: np.ndarray, out_dtype) -> np.ndarray:
    """Product of a contiguous (outer, r, inner) array over axis 1, in `out_dtype`."""
    out = np.empty((a3.shape[0], a3.shape[2]), dtype=out_dtype)
    if out.size:
        one = np.float64(1) if a3.dtype.kind == "f" else np.int64(1)
        _prod3(a3, out, one)
    return out


def _lanes(g: np.ndarray, x3: np.ndarray) -> np.ndarray:
    """A reduced-shape operand as a contiguous (outer, inner) array of x3's dtype."""
    return np.ascontiguousarray(g, dtype=x3.dtype).reshape(x3.shape[0], x3.shape[2])


def prod_backward(g: np.ndarray, x3: np.ndarray) -> np.ndarray:
    """g times the product of all other elements along axis 1 of a float (outer, r, inner)
    block; g has the reduced shape."""
    out = np.empty(x3.shape, dtype=x3.dtype)
    if out.size:
        _prod_backward3(_lanes(g, x3), x3, out)
    return out


def moments(a3: np.ndarray, correction: float, take_sqrt: bool) -> np.ndarray:
    """var (std with `take_sqrt`) of a float (outer, r, inner) block over axis 1, divided by
    max(0, r - correction) as torch does."""
    out = np.empty((a3.shape[0], a3.shape[2]), dtype=a3.dtype)
    if out.size:
        _moments3(a3, out, np.float64(max(0.0, a3.shape[1] - correction)), take_sqrt)
    return out


def var_backward(g: np.ndarray, x3: np.ndarray, scale: float) -> np.ndarray:
    """scale * g * (x - mean(x)) over axis 1 of a float (outer, r, inner) block."""
    out = np.empty(x3.shape, dtype=x3.dtype)
    if out.size:
        _var_backward3(_lanes(g, x3), x3, out, np.float64(scale))
    return out


_NORM_KINDS = {0.0: NORM_ZERO, 1.0: NORM_ONE, 2.0: NORM_TWO, math.inf: NORM_INF,
               -math.inf: NORM_NEG_INF}


def vector_norm(a3: np.ndarray, p: float) -> np.ndarray:
    """The vector p-norm of a float (outer, r, inner) block over axis 1."""
    out = np.empty((a3.shape[0], a3.shape[2]), dtype=a3.dtype)
    if out.size:
        _norm3(a3, out, _NORM_KINDS.get(p, NORM_P), np.float64(p))
    return out


def any_all(a3: np.ndarray, want_all: bool, out_dtype) -> np.ndarray:
    """all (or any) of the non-zero tests of an (outer, r, inner) block over axis 1."""
    out = np.empty((a3.shape[0], a3.shape[2]), dtype=np.bool_)
    if out.size:
        _any_all3(a3, out, want_all)
    return out if out.dtype == out_dtype else out.astype(out_dtype)


def amax(a3: np.ndarray, want_max: bool) -> np.ndarray:
    """Max (or min) of an (outer, r, inner) block over axis 1, r >= 1; nan propagates."""
    out = np.empty((a3.shape[0], a3.shape[2]), dtype=a3.dtype)
    if out.size:
        _amax3(a3, out, want_max)
    return out


def extreme_backward(g: np.ndarray, x3: np.ndarray, v: np.ndarray) -> np.ndarray:
    """g shared evenly among the positions where a float (outer, r, inner) block equals its
    extreme v along axis 1 (g and v have the reduced shape)."""
    out = np.empty(x3.shape, dtype=x3.dtype)
    if out.size:
        _extreme_backward3(_lanes(g, x3), x3, _lanes(v, x3), out)
    return out
