"""Data-movement kernels for the CPU: gather and scatter along a dim, index_select/index_add,
take and its backward, tril/triu, one_hot, and the block copies of cat, stack, flip, roll,
repeat and constant padding.

Indices reach the kernels only after the op layer validated them (Numba does not check
bounds). The gather/scatter kernels walk the index tensor's shape; the other operands are
strided views described by element strides, so slices of the input are never copied. Block
copies (cat, flip, pad, ...) are numpy strided copies, which run at memory speed; a GPU
backend provides the same launcher names for its own storage.

The kernels are serial: they are bound by memory traffic, which a second core raises by a
quarter at most here (PERF-NOTES: copies at 24 GB/s on one thread, 30 on two), and prange
variants measured slower than these at 1M-16M elements on the 2-core machine.
"""

from __future__ import annotations

import numpy as np
from numba import njit

JIT = dict(cache=True, error_model="numpy", nogil=True)


# --------------------------------------------------------------------------- layout helpers

def _buffer(a: np.ndarray) -> tuple:
    """(buf, strides): a 1-D array that starts at a's first element and covers all of a's
    elements, and a's element strides into it. No copy unless a's strides are negative or
    a is read-only (a read-only array would compile a second kernel signature)."""
    it = a.itemsize
    if any(s < 0 or s % it for s in a.strides) or not a.flags.writeable:
        a = np.array(a, order="C")
    span = 1 + sum((n - 1) * (s // it) for n, s in zip(a.shape, a.strides)) if a.size else 0
    buf = np.lib.stride_tricks.as_strided(a, shape=(span,), strides=(it,))
    return buf, [s // it for s in a.strides]


def _merge(shape: tuple, dim: int, strides: list) -> tuple:
    """Merge adjacent dims other than `dim` where every operand's strides allow it and drop
    size-1 dims other than `dim`. Returns (shape, dim, strides) as int64 arrays; `strides`
    holds one stride list per operand, all describing arrays of `shape`."""
    m_shape: list = []
    m_strides: list = [[] for _ in strides]
    m_dim = -1
    for d, n in enumerate(shape):
        if d == dim:
            m_dim = len(m_shape)
        elif n == 1:
            continue
        elif m_shape and len(m_shape) - 1 != m_dim and all(
                ms[-1] == s[d] * n for s, ms in zip(strides, m_strides)):
            m_shape[-1] *= n
            for s, ms in zip(strides, m_strides):
                ms[-1] = s[d]
            continue
        m_shape.append(n)
        for s, ms in zip(strides, m_strides):
            ms.append(s[d])
    return (np.array(m_shape, dtype=np.int64), m_dim,
            [np.array(ms, dtype=np.int64) for ms in m_strides])


# --------------------------------------------------------------------------- index checks

@njit(**JIT)
def _index_range(a):
    """(min_i a[i], max_i a[i])"""
    lo = a[0]
    hi = a[0]
    for i in range(1, a.size):
        v = a[i]
        lo = min(lo, v)
        hi = max(hi, v)
    return lo, hi


def index_range(idx: np.ndarray) -> tuple:
    """The smallest and largest of a non-empty integer index array, as Python ints."""
    lo, hi = _index_range(np.require(idx, requirements="C").reshape(-1))
    return int(lo), int(hi)


# --------------------------------------------------------------------------- gather / scatter

@njit(inline="always")
def _row_base(r, shape, dim, s):
    """Offset, in strides `s`, of row r (all dims but the last) with the dim coordinate 0."""
    base = 0
    for d in range(shape.size - 2, -1, -1):
        k = r % shape[d]
        r //= shape[d]
        if d != dim:
            base += k * s[d]
    return base


@njit(**JIT)
def _gather(x, xs, idx, out, shape, dim):
    """out[i] = x[i's position with its coordinate along dim replaced by idx[i]]"""
    nd = shape.size
    n = shape[nd - 1]
    last = xs[nd - 1]
    sd = xs[dim]
    for r in range(out.size // n):
        base = _row_base(r, shape, dim, xs)
        b = r * n
        if dim == nd - 1:
            for j in range(n):
                out[b + j] = x[base + idx[b + j] * last]
        else:
            for j in range(n):
                out[b + j] = x[base + idx[b + j] * sd + j * last]


@njit(**JIT)
def _scatter(out, os, idx, src, ss, shape, dim, mode):
    """out[i's position with its dim coordinate replaced by idx[i]] = src[i] (mode 0) or
    += src[i] (mode 1); i runs over idx's shape"""
    nd = shape.size
    n = shape[nd - 1]
    o_last = os[nd - 1]
    s_last = ss[nd - 1]
    od = os[dim]
    for r in range(idx.size // n):
        ob = _row_base(r, shape, dim, os)
        sb = _row_base(r, shape, -1, ss)
        b = r * n
        for j in range(n):
            k = idx[b + j]
            p = ob + k * od if dim == nd - 1 else ob + k * od + j * o_last
            if mode == 0:
                out[p] = src[sb + j * s_last]
            else:
                out[p] += src[sb + j * s_last]


@njit(**JIT)
def _scatter_value(out, os, idx, value, shape, dim):
    """out[i's position with its dim coordinate replaced by idx[i]] = value"""
    nd = shape.size
    n = shape[nd - 1]
    o_last = os[nd - 1]
    od = os[dim]
    for r in range(idx.size // n):
        ob = _row_base(r, shape, dim, os)
        b = r * n
        for j in range(n):
            k = idx[b + j]
            out[ob + k * od if dim == nd - 1 else ob + k * od + j * o_last] = value


def _view_to(a: np.ndarray, shape: tuple) -> np.ndarray:
    """The leading block of `a` of `shape` (a view): a[:shape[0], :shape[1], ...]."""
    return a[tuple(slice(0, n) for n in shape)]


def gather(x: np.ndarray, dim: int, idx: np.ndarray) -> np.ndarray:
    """out[..., j, ...] = x[..., idx[..., j, ...], ...] along `dim`; idx is int64, has x's
    ndim, and its values and extents were checked against x."""
    out = np.empty(idx.shape, dtype=x.dtype)
    if out.size == 0:
        return out
    xv = _view_to(x, idx.shape[:dim] + (x.shape[dim],) + idx.shape[dim + 1:])
    xb, xs = _buffer(xv)
    idx = np.ascontiguousarray(idx)
    shape, mdim, (ms,) = _merge(idx.shape, dim, [xs])
    _gather(xb, ms, idx.reshape(-1), out.reshape(-1), shape, mdim)
    return out


def scatter(x: np.ndarray, dim: int, idx: np.ndarray, src, mode: str) -> np.ndarray:
    """A copy of x with src (an array at least idx's size in every dim, or a 0-d value)
    written (mode "set") or added (mode "add") at positions idx along `dim`."""
    out = np.array(x, order="C")
    if idx.size == 0:
        return out
    bool_add = mode == "add" and out.dtype == np.bool_
    if bool_add:  # bool addition is logical or: add as integers, then compare with 0
        out = out.astype(np.int64)
        src = src.astype(np.int64)
    ov = _view_to(out, idx.shape[:dim] + (out.shape[dim],) + idx.shape[dim + 1:])
    ob, os = _buffer(ov)
    idx = np.ascontiguousarray(idx)
    if np.ndim(src) == 0:
        shape, mdim, (mos,) = _merge(idx.shape, dim, [os])
        _scatter_value(ob, mos, idx.reshape(-1), np.asarray(src, dtype=out.dtype)[()],
                       shape, mdim)
    else:
        sb, ss = _buffer(_view_to(src, idx.shape))
        shape, mdim, (mos, mss) = _merge(idx.shape, dim, [os, ss])
        _scatter(ob, mos, idx.reshape(-1), sb, mss, shape, mdim, 0 if mode == "set" else 1)
    return out != 0 if bool_add else out


# --------------------------------------------------------------------------- index_select / add

@njit(**JIT)
def _index_select(x, idx, out):
    """out[o, j, i] = x[o, idx[j], i]"""
    outer, k, inner = out.shape
    for o in range(outer):
        if inner == 1:  # selecting along the last dim: one element per index
            for j in range(k):
                out[o, j, 0] = x[o, idx[j], 0]
            continue
        for j in range(k):
            r = idx[j]
            for i in range(inner):
                out[o, j, i] = x[o, r, i]


@njit(**JIT)
def _index_add(out, idx, src, alpha):
    """out[o, idx[j], i] += alpha * src[o, j, i]"""
    outer, k, inner = src.shape
    for o in range(outer):
        for j in range(k):
            r = idx[j]
            for i in range(inner):
                out[o, r, i] += alpha * src[o, j, i]


@njit(**JIT)
def _index_fill(out, idx, value):
    """out[o, idx[j], i] = value"""
    outer, _, inner = out.shape
    for o in range(outer):
        for j in range(idx.size):
            r = idx[j]
            for i in range(inner):
                out[o, r, i] = value


def _as3(a: np.ndarray, dim: int) -> np.ndarray:
    shape = a.shape
    outer = int(np.prod(shape[:dim], dtype=np.int64))
    inner = int(np.prod(shape[dim + 1:], dtype=np.int64))
    return np.ascontiguousarray(a).reshape(outer, shape[dim], inner)


def index_select(x: np.ndarray, dim: int, idx: np.ndarray) -> np.ndarray:
    """x's slices idx[0], idx[1], ... along `dim` (idx: validated, non-negative int64)."""
    shape = x.shape[:dim] + (idx.size,) + x.shape[dim + 1:]
    out = np.empty(shape, dtype=x.dtype)
    if out.size:
        x3 = _as3(x, dim)
        o3 = out.reshape(x3.shape[0], idx.size, x3.shape[2])
        _index_select(x3, np.ascontiguousarray(idx, dtype=np.int64), o3)
    return out


def index_add(x: np.ndarray, dim: int, idx: np.ndarray, src: np.ndarray, alpha) -> np.ndarray:
    """A copy of x with alpha * src's slices added at slices idx along `dim`."""
    out = np.array(x, order="C")
    if idx.size == 0 or src.size == 0:
        return out
    work = out.astype(np.int64) if out.dtype == np.bool_ else out
    s3 = _as3(src.astype(work.dtype, copy=False), dim)
    o3 = work.reshape(s3.shape[0], x.shape[dim], s3.shape[2])
    _index_add(o3, np.ascontiguousarray(idx, dtype=np.int64), s3, work.dtype.type(alpha))
    return work != 0 if out.dtype == np.bool_ else out


def index_fill(x: np.ndarray, dim: int, idx: np.ndarray, value) -> np.ndarray:
    """A copy of x with its slices idx (non-negative int64) along `dim` set to `value`."""
    out = np.array(x, order="C")
    if idx.size and out.size:
        _index_fill(_as3(out, dim), idx, out.dtype.type(value))
    return out


# --------------------------------------------------------------------------- take / put

@njit(**JIT)
def _take(x, idx, out):
    """out[i] = x[idx[i]], negative idx[i] counting from the end"""
    n = x.size
    for i in range(out.size):
        k = idx[i]
        out[i] = x[k + n if k < 0 else k]


@njit(**JIT)
def _put_add(out, idx, src):
    """out[idx[i]] += src[i], negative idx[i] counting from the end"""
    n = out.size
    for i in range(idx.size):
        k = idx[i]
        out[k + n if k < 0 else k] += src[i]


def take(x: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """x's elements, in row-major order, at flat positions idx (in [-numel, numel))."""
    out = np.empty(idx.shape, dtype=x.dtype)
    if out.size:
        _take(np.ascontiguousarray(x).reshape(-1), np.ascontiguousarray(idx).reshape(-1),
              out.reshape(-1))
    return out


def put_add(shape: tuple, idx: np.ndarray, src: np.ndarray) -> np.ndarray:
    """Zeros of `shape` with src[i] added at flat position idx[i] (the backward of take)."""
    out = np.zeros(shape, dtype=src.dtype)
    if idx.size:
        _put_add(out.reshape(-1), np.ascontiguousarray(idx).reshape(-1),
                 np.ascontiguousarray(src).reshape(-1))
    return out


# --------------------------------------------------------------------------- tril / triu

@njit(**JIT)
def _tri(x, out, k, lower, zero):
    """out[b, i, j] = x[b, i, j] where j - i <= k (lower) or j - i >= k (upper), else 0"""
    batch, m, n = x.shape
    for b in range(batch):
        for i in range(m):
            for j in range(n):
                keep = (j - i <= k) if lower else (j - i >= k)
                out[b, i, j] = x[b, i, j] if keep else zero


def tri(x: np.ndarray, k: int, lower: bool) -> np.ndarray:
    """tril (lower) or triu of the last two dims of x, diagonal k."""
    out = np.empty(x.shape, dtype=x.dtype)
    if out.size:
        m, n = x.shape[-2:]
        x3 = np.ascontiguousarray(x).reshape(-1, m, n)
        k = max(min(k, n), -m - 1)  # beyond these every element is kept or every one dropped
        _tri(x3, out.reshape(x3.shape), k, lower, x.dtype.type(0))
    return out


# --------------------------------------------------------------------------- one_hot

@njit(**JIT)
def _one_hot(idx, out, c):
    """out[i * c + idx[i]] = 1 (out starts zeroed)"""
    for i in range(idx.size):
        out[i * c + idx[i]] = 1


def one_hot(idx: np.ndarray, num_classes: int) -> np.ndarray:
    """int64 one-hot rows of `num_classes` for int64 class indices in [0, num_classes)."""
    out = np.zeros(idx.shape + (num_classes,), dtype=np.int64)
    if idx.size:
        _one_hot(np.ascontiguousarray(idx).reshape(-1), out.reshape(-1), num_classes)
    return out


# --------------------------------------------------------------------------- block copies

def cat(arrays: list, dim: int, dtype) -> np.ndarray:
    """The arrays (equal shapes but along `dim`) joined along `dim`, converted to `dtype`."""
    shape = list(arrays[0].shape)
    shape[dim] = sum(a.shape[dim] for a in arrays)
    out = np.empty(shape, dtype=dtype)
    lead = (slice(None),) * dim
    start = 0
    for a in arrays:
        n = a.shape[dim]
        if n:
            out[lead + (slice(start, start + n),)] = a
        start += n
    return out


def stack(arrays: list, dim: int, dtype) -> np.ndarray:
    """The arrays (one shape) stacked along a new dim `dim`, converted to `dtype`."""
    shape = arrays[0].shape
    out = np.empty(shape[:dim] + (len(arrays),) + shape[dim:], dtype=dtype)
    lead = (slice(None),) * dim
    for i, a in enumerate(arrays):
        out[lead + (i,)] = a
    return out


def flip(x: np.ndarray, dims: tuple) -> np.ndarray:
    """A contiguous copy of x reversed along `dims`."""
    return np.array(np.flip(x, dims) if dims else x, order="C")


def roll(x: np.ndarray, shifts: tuple, dims) -> np.ndarray:
    """x rolled by shifts[i] along dims[i] (dims None: rolled as one flat sequence)."""
    return np.require(np.roll(x, shifts[0] if dims is None else shifts, dims), requirements="C")


def repeat(x: np.ndarray, reps: tuple) -> np.ndarray:
    """x (ones prepended to its shape up to len(reps) dims) tiled reps[i] times along dim i."""
    shape = (1,) * (len(reps) - x.ndim) + x.shape
    return np.require(np.tile(x.reshape(shape), reps), requirements="C")


def pad(x: np.ndarray, pads: list, value) -> np.ndarray:
    """x with pads[d] = (before, after) elements of `value` added along dim d; negative
    amounts remove elements (the op layer checked that no size goes below 0)."""
    shape = tuple(n + lo + hi for n, (lo, hi) in zip(x.shape, pads))
    out = np.full(shape, value, dtype=x.dtype)
    src, dst = [], []
    for n, (lo, hi) in zip(x.shape, pads):
        s0, s1 = max(-lo, 0), n - max(-hi, 0)
        if s1 <= s0:
            return out
        src.append(slice(s0, s1))
        dst.append(slice(max(lo, 0), max(lo, 0) + s1 - s0))
    out[tuple(dst)] = x[tuple(src)]
    return out


def diagonal(x: np.ndarray, offset: int, dim1: int, dim2: int) -> np.ndarray:
    """A view of x's diagonal `offset` in the plane (dim1, dim2), as the last dim."""
    n1, n2 = x.shape[dim1], x.shape[dim2]
    r0, c0 = (0, offset) if offset >= 0 else (-offset, 0)
    length = max(min(n1 - r0, n2 - c0), 0)
    rest = [d for d in range(x.ndim) if d not in (dim1, dim2)]
    shape = tuple(x.shape[d] for d in rest) + (length,)
    strides = tuple(x.strides[d] for d in rest) + (x.strides[dim1] + x.strides[dim2],)
    if length == 0:
        return np.empty(shape, dtype=x.dtype)
    key = [slice(None)] * x.ndim
    key[dim1], key[dim2] = slice(r0, None), slice(c0, None)
    return np.lib.stride_tricks.as_strided(x[tuple(key)], shape, strides)


def diagonal_backward(g: np.ndarray, shape: tuple, offset: int, dim1: int,
                      dim2: int) -> np.ndarray:
    """Zeros of `shape` with g written on the diagonal (offset, dim1, dim2)."""
    out = np.zeros(shape, dtype=g.dtype)
    if g.size:
        diagonal(out, offset, dim1, dim2)[...] = g
    return out
