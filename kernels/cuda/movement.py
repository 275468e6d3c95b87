"""CUDA kernels of the movement family (same launcher names and signatures as
``kernels/movement.py``). Launchers listed in ``__all__`` replace the host-routed CPU kernel
of the same name.

One thread per output (or source) element, in grid-stride loops. Operands are strided views
(``CudaArray.strided()``: a 1-D base, the element index of element (0, ..., 0) and element
strides), so slices and transposes are read in place. Index arrays may arrive as host numpy
arrays (they are uploaded) or CudaArrays (made int64 and contiguous on the device).
Accumulating writes (scatter "add", index_add, put_add) use atomic adds; dtypes without a
hardware atomic add (bool, small integers) accumulate in int64 and are converted back, as the
CPU kernels do for bool. In deterministic mode these, and scatter's writes, list each
source's destination and value instead and add (write) them in the sources' order
(``ordered.py``). The block copies (cat, stack, flip, roll, repeat, pad, diagonal's
backward) are strided assignments between views (``CudaArray.__setitem__``).
"""

from __future__ import annotations

import numpy as np
from numba import int64 as _i64

from .. import settings
from .array import CudaArray, empty, from_host
from .elementwise import copy_strided, offset
from .launch import launch
from .ordered import add_in_order
from .runtime import config, cuda

__all__ = ["cat", "diagonal", "diagonal_backward", "flip", "gather", "index_add", "index_fill",
           "index_range", "index_select", "one_hot", "pad", "put_add", "repeat", "roll", "scatter",
           "stack", "take", "tri"]

# dtypes accumulated with a native atomic add (cuda.atomic.add); int32 is left out because
# alpha * src of int32 operands types as int64 in Numba
_ATOMIC = {np.dtype(t) for t in (np.float32, np.float64, np.int64, np.uint64)}


# --------------------------------------------------------------------------- helpers

def _zeros(shape, dtype) -> CudaArray:
    out = empty(shape, dtype)
    out.fill(0)
    return out


def _dev(a, dtype=None) -> CudaArray:
    """`a` (host array or CudaArray) as a C-contiguous CudaArray, in `dtype` if given."""
    if not isinstance(a, CudaArray):
        return from_host(np.ascontiguousarray(a, dtype=dtype))
    if dtype is not None and a.dtype != np.dtype(dtype):
        return copy_strided(a, dtype)
    return a if a.flags.c_contiguous else a.copy()


def _idx(a) -> CudaArray:
    """An index array as a C-contiguous int64 CudaArray."""
    return _dev(a, np.int64)


def _work_dtype(dt) -> np.dtype:
    """The dtype atomic accumulation runs in for arrays of dtype `dt`."""
    dt = np.dtype(dt)
    return dt if dt in _ATOMIC else np.dtype(np.int64)


def _from_work(work: CudaArray, dt) -> CudaArray:
    return work if work.dtype == np.dtype(dt) else copy_strided(work, dt)


@cuda.jit(device=True)
def _replaced(i, shape, strides, start, dim, k):
    """Offset of flat element i of `shape` with its coordinate along dim replaced by k."""
    off = start
    for d in range(len(shape) - 1, -1, -1):
        n = shape[d]
        c = i % n
        i //= n
        if d == dim:
            c = k
        off += c * strides[d]
    return off


@cuda.jit(device=True)
def _selected(i, shape, strides, start, dim, idx):
    """Offset of flat element i of `shape` with its coordinate c along dim read as idx[c]."""
    off = start
    for d in range(len(shape) - 1, -1, -1):
        n = shape[d]
        c = i % n
        i //= n
        if d == dim:
            c = idx[c]
        off += c * strides[d]
    return off


# --------------------------------------------------------------------------- index checks

@cuda.jit
def _range_k(a, res):
    """res[0] = min(res[0], a[...]), res[1] = max(res[1], a[...])"""
    i0 = cuda.grid(1)
    if i0 < a.size:
        lo = _i64(a[i0])
        hi = lo
        for i in range(i0 + cuda.gridsize(1), a.size, cuda.gridsize(1)):
            v = _i64(a[i])
            lo = min(lo, v)
            hi = max(hi, v)
        cuda.atomic.min(res, 0, lo)
        cuda.atomic.max(res, 1, hi)


def index_range(idx) -> tuple:
    """The smallest and largest of a non-empty integer index array, as Python ints."""
    if not isinstance(idx, CudaArray):
        from .. import movement

        return movement.index_range(idx)
    a = _dev(idx)
    res = from_host(np.array([np.iinfo(np.int64).max, np.iinfo(np.int64).min],
                             dtype=np.int64))
    g, b = config(a.size)
    launch(_range_k, g, b, a.flat(), res.flat())
    lo, hi = res.get()
    return int(lo), int(hi)


# --------------------------------------------------------------------------- gather / scatter

@cuda.jit
def _gather_k(x, x0, xs, idx, out, shape, dim):
    """out[i] = x[i's position in `shape` with its dim coordinate replaced by idx[i]]"""
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        out[i] = x[_replaced(i, shape, xs, x0, dim, idx[i])]


@cuda.jit
def _scatter_set_k(out, os, idx, src, s0, ss, shape, dim):
    """out[i's position with its dim coordinate replaced by idx[i]] = src[at i]"""
    for i in range(cuda.grid(1), idx.size, cuda.gridsize(1)):
        out[_replaced(i, shape, os, 0, dim, idx[i])] = src[offset(i, shape, ss, s0)]


@cuda.jit
def _scatter_add_k(out, os, idx, src, s0, ss, shape, dim):
    """out[i's position with its dim coordinate replaced by idx[i]] += src[at i]"""
    for i in range(cuda.grid(1), idx.size, cuda.gridsize(1)):
        cuda.atomic.add(out, _replaced(i, shape, os, 0, dim, idx[i]),
                        src[offset(i, shape, ss, s0)])


@cuda.jit
def _scatter_targets_k(dest, vals, os, idx, src, s0, ss, shape, dim):
    """dest[i], vals[i]: where _scatter_add_k (_scatter_set_k) adds (writes) what"""
    for i in range(cuda.grid(1), idx.size, cuda.gridsize(1)):
        dest[i] = _replaced(i, shape, os, 0, dim, idx[i])
        vals[i] = src[offset(i, shape, ss, s0)]


@cuda.jit
def _scatter_value_k(out, os, idx, value, shape, dim):
    """out[i's position with its dim coordinate replaced by idx[i]] = value"""
    for i in range(cuda.grid(1), idx.size, cuda.gridsize(1)):
        out[_replaced(i, shape, os, 0, dim, idx[i])] = value


def gather(x: CudaArray, dim: int, idx) -> CudaArray:
    """out[..., j, ...] = x[..., idx[..., j, ...], ...] along `dim`; idx is int64, has x's
    ndim, and its values and extents were checked against x."""
    out = empty(idx.shape, x.dtype)
    if out.size == 0:
        return out
    idx = _idx(idx)
    X, x0, xs = x.strided()
    g, b = config(out.size)
    launch(_gather_k, g, b, X, x0, xs, idx.flat(), out.flat(), idx.shape, dim)
    return out


def scatter(x: CudaArray, dim: int, idx, src, mode: str) -> CudaArray:
    """A copy of x with src (an array at least idx's size in every dim, or a 0-d value)
    written (mode "set") or added (mode "add") at positions idx along `dim`. Writes of one
    position by several indices (mode "set") land in an unspecified order, as in torch."""
    dt = x.dtype
    add = mode == "add" and isinstance(src, CudaArray) and src.ndim
    out = copy_strided(x, _work_dtype(dt) if add else dt)
    if idx.size == 0:
        return _from_work(out, dt)
    idx = _idx(idx)
    os = tuple(s // out.itemsize for s in out.strides)
    g, b = config(idx.size)
    if not isinstance(src, CudaArray) or src.ndim == 0:
        v = src.get() if isinstance(src, CudaArray) else src
        launch(_scatter_value_k, g, b, out.flat(), os, idx.flat(), np.asarray(v, dtype=dt)[()],
               idx.shape, dim)
        return out
    if add and src.dtype != out.dtype:
        src = copy_strided(src, out.dtype)
    S, s0, ss = src.strided()
    if settings["deterministic"]:
        dest, vals = empty((idx.size,), np.int64), empty((idx.size,), out.dtype)
        launch(_scatter_targets_k, g, b, dest.flat(), vals.flat(), os, idx.flat(), S, s0, ss,
               idx.shape, dim)
        add_in_order(out, dest, vals, replace=not add)
        return _from_work(out, dt)
    kern = _scatter_add_k if add else _scatter_set_k
    launch(kern, g, b, out.flat(), os, idx.flat(), S, s0, ss, idx.shape, dim)
    return _from_work(out, dt)


# --------------------------------------------------------------------------- index_select / add

@cuda.jit
def _index_select_k(x, x0, xs, idx, out, shape, dim):
    """out[o, j, i] = x[o, idx[j], i] (shape: out's shape, dim: the selected dim)"""
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        out[i] = x[_selected(i, shape, xs, x0, dim, idx)]


@cuda.jit
def _index_add_k(out, os, idx, src, s0, ss, shape, dim, alpha, n):
    """out[o, idx[j], i] += alpha * src[o, j, i] (shape: src's shape)"""
    for i in range(cuda.grid(1), n, cuda.gridsize(1)):
        cuda.atomic.add(out, _selected(i, shape, os, 0, dim, idx),
                        alpha * src[offset(i, shape, ss, s0)])


@cuda.jit
def _index_add_targets_k(dest, vals, os, idx, src, s0, ss, shape, dim, alpha, n):
    """dest[i], vals[i]: where _index_add_k adds what"""
    for i in range(cuda.grid(1), n, cuda.gridsize(1)):
        dest[i] = _selected(i, shape, os, 0, dim, idx)
        vals[i] = alpha * src[offset(i, shape, ss, s0)]


@cuda.jit
def _index_fill_k(out, idx, value, k, n, inner):
    """out[o, idx[j], i] = value over (outer, k, inner), out of shape (outer, n, inner)"""
    total = out.size // n * k
    for t in range(cuda.grid(1), total, cuda.gridsize(1)):
        i = t % inner
        r = t // inner
        j = r % k
        o = r // k
        out[(o * n + idx[j]) * inner + i] = value


def index_select(x: CudaArray, dim: int, idx) -> CudaArray:
    """x's slices idx[0], idx[1], ... along `dim` (idx: validated, non-negative int64)."""
    shape = x.shape[:dim] + (idx.size,) + x.shape[dim + 1:]
    out = empty(shape, x.dtype)
    if out.size:
        idx = _idx(idx).reshape(-1)
        X, x0, xs = x.strided()
        g, b = config(out.size)
        launch(_index_select_k, g, b, X, x0, xs, idx.flat(), out.flat(), shape, dim)
    return out


def index_add(x: CudaArray, dim: int, idx, src: CudaArray, alpha) -> CudaArray:
    """A copy of x with alpha * src's slices added at slices idx along `dim`."""
    dt = x.dtype
    if idx.size == 0 or src.size == 0:
        return x.copy()
    wdt = _work_dtype(dt)
    out = copy_strided(x, wdt)
    if src.dtype != wdt:
        src = copy_strided(src, wdt)
    idx = _idx(idx).reshape(-1)
    os = tuple(s // out.itemsize for s in out.strides)
    S, s0, ss = src.strided()
    g, b = config(src.size)
    if settings["deterministic"]:
        dest, vals = empty((src.size,), np.int64), empty((src.size,), wdt)
        launch(_index_add_targets_k, g, b, dest.flat(), vals.flat(), os, idx.flat(), S, s0, ss,
               src.shape, dim, wdt.type(alpha), src.size)
        add_in_order(out, dest, vals)
        return _from_work(out, dt)
    launch(_index_add_k, g, b, out.flat(), os, idx.flat(), S, s0, ss, src.shape, dim,
           wdt.type(alpha), src.size)
    return _from_work(out, dt)


def index_fill(x: CudaArray, dim: int, idx, value) -> CudaArray:
    """A copy of x with its slices idx (non-negative int64) along `dim` set to `value`."""
    out = x.copy()
    if idx.size and out.size:
        idx = _idx(idx).reshape(-1)
        n = x.shape[dim]
        inner = 1
        for s in x.shape[dim + 1:]:
            inner *= s
        g, b = config(out.size // n * idx.size)
        launch(_index_fill_k, g, b, out.flat(), idx.flat(), x.dtype.type(value), idx.size, n, inner)
    return out


# --------------------------------------------------------------------------- take / put

@cuda.jit
def _take_k(x, x0, xs, shape, n, idx, out):
    """out[i] = x's element at flat position idx[i] (negative: from the end)"""
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        k = idx[i]
        if k < 0:
            k += n
        out[i] = x[offset(k, shape, xs, x0)]


@cuda.jit
def _put_add_k(out, idx, src):
    """out[idx[i]] += src[i] (negative idx[i]: from the end)"""
    n = out.size
    for i in range(cuda.grid(1), idx.size, cuda.gridsize(1)):
        k = idx[i]
        if k < 0:
            k += n
        cuda.atomic.add(out, k, src[i])


@cuda.jit
def _put_targets_k(dest, idx, n):
    """dest[i]: where _put_add_k adds src[i]"""
    for i in range(cuda.grid(1), idx.size, cuda.gridsize(1)):
        k = idx[i]
        dest[i] = k + n if k < 0 else k


def take(x: CudaArray, idx) -> CudaArray:
    """x's elements, in row-major order, at flat positions idx (in [-numel, numel))."""
    out = empty(idx.shape, x.dtype)
    if out.size:
        if x.ndim == 0:
            x = x.reshape(1)
        idx = _idx(idx)
        X, x0, xs = x.strided()
        g, b = config(out.size)
        launch(_take_k, g, b, X, x0, xs, x.shape, x.size, idx.flat(), out.flat())
    return out


def put_add(shape: tuple, idx, src: CudaArray) -> CudaArray:
    """Zeros of `shape` with src[i] added at flat position idx[i] (the backward of take)."""
    dt = src.dtype
    wdt = _work_dtype(dt)
    out = _zeros(shape, wdt)
    if idx.size:
        idx = _idx(idx)
        src = _dev(src, wdt)
        g, b = config(idx.size)
        if settings["deterministic"]:
            dest = empty((idx.size,), np.int64)
            launch(_put_targets_k, g, b, dest.flat(), idx.flat(), out.size)
            add_in_order(out, dest, src)
        else:
            launch(_put_add_k, g, b, out.flat(), idx.flat(), src.flat())
    return _from_work(out, dt)


# --------------------------------------------------------------------------- tril / triu

@cuda.jit
def _tri_k(x, x0, xs, shape, out, k, lower, zero):
    """out[..., i, j] = x[..., i, j] where j - i <= k (lower) or j - i >= k (upper), else 0"""
    nd = len(shape)
    n = shape[nd - 1]
    m = shape[nd - 2]
    for t in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        j = t % n
        i = (t // n) % m
        keep = (j - i <= k) if lower else (j - i >= k)
        out[t] = x[offset(t, shape, xs, x0)] if keep else zero


def tri(x: CudaArray, k: int, lower: bool) -> CudaArray:
    """tril (lower) or triu of the last two dims of x, diagonal k."""
    out = empty(x.shape, x.dtype)
    if out.size:
        m, n = x.shape[-2:]
        k = max(min(k, n), -m - 1)  # beyond these every element is kept or every one dropped
        X, x0, xs = x.strided()
        g, b = config(out.size)
        launch(_tri_k, g, b, X, x0, xs, x.shape, out.flat(), k, lower, x.dtype.type(0))
    return out


# --------------------------------------------------------------------------- one_hot

@cuda.jit
def _one_hot_k(idx, out, c):
    """out[i * c + idx[i]] = 1 (out starts zeroed)"""
    for i in range(cuda.grid(1), idx.size, cuda.gridsize(1)):
        out[i * c + idx[i]] = 1


def one_hot(idx, num_classes: int) -> CudaArray:
    """int64 one-hot rows of `num_classes` for int64 class indices in [0, num_classes)."""
    out = _zeros(tuple(idx.shape) + (num_classes,), np.int64)
    if idx.size:
        idx = _idx(idx)
        g, b = config(idx.size)
        launch(_one_hot_k, g, b, idx.flat(), out.flat(), num_classes)
    return out


# --------------------------------------------------------------------------- block copies

def cat(arrays: list, dim: int, dtype) -> CudaArray:
    """The arrays (equal shapes but along `dim`) joined along `dim`, converted to `dtype`."""
    shape = list(arrays[0].shape)
    shape[dim] = sum(a.shape[dim] for a in arrays)
    out = empty(tuple(shape), dtype)
    lead = (slice(None),) * dim
    start = 0
    for a in arrays:
        n = a.shape[dim]
        if n and a.size:
            out[lead + (slice(start, start + n),)] = a
        start += n
    return out


def stack(arrays: list, dim: int, dtype) -> CudaArray:
    """The arrays (one shape) stacked along a new dim `dim`, converted to `dtype`."""
    shape = tuple(arrays[0].shape)
    out = empty(shape[:dim] + (len(arrays),) + shape[dim:], dtype)
    lead = (slice(None),) * dim
    for i, a in enumerate(arrays):
        out[lead + (i,)] = a
    return out


def flip(x: CudaArray, dims: tuple) -> CudaArray:
    """A contiguous copy of x reversed along `dims`."""
    if not dims or x.size == 0:
        return x.copy()
    off = x._offset
    strides = list(x.strides)
    for d in dims:
        off += (x.shape[d] - 1) * strides[d]
        strides[d] = -strides[d]
    return x._as(x.shape, tuple(strides), off).copy()


def roll(x: CudaArray, shifts: tuple, dims) -> CudaArray:
    """x rolled by shifts[i] along dims[i] (dims None: rolled as one flat sequence)."""
    if dims is None:
        return roll(x.reshape(-1), (shifts[0],), (0,)).reshape(x.shape)
    cur = x
    for s, d in zip(shifts, dims):
        n = cur.shape[d]
        if n == 0 or cur.size == 0 or s % n == 0:
            continue
        s %= n
        out = empty(cur.shape, cur.dtype)
        lead = (slice(None),) * d
        out[lead + (slice(s, None),)] = cur[lead + (slice(0, n - s),)]
        out[lead + (slice(0, s),)] = cur[lead + (slice(n - s, n),)]
        cur = out
    return cur if cur is not x else x.copy()


def repeat(x: CudaArray, reps: tuple) -> CudaArray:
    """x (ones prepended to its shape up to len(reps) dims) tiled reps[i] times along dim i."""
    shape = (1,) * (len(reps) - x.ndim) + tuple(x.shape)
    out = empty(tuple(r * n for r, n in zip(reps, shape)), x.dtype)
    if out.size == 0:
        return out
    xv = x.reshape(shape)
    split, src_st = [], []
    for r, n, s in zip(reps, shape, xv.strides):
        split += [r, n]
        src_st += [0, s]
    src = xv._as(tuple(split), tuple(src_st))
    out.reshape(tuple(split))[...] = src
    return out


def pad(x: CudaArray, pads: list, value) -> CudaArray:
    """x with pads[d] = (before, after) elements of `value` added along dim d; negative
    amounts remove elements (the op layer checked that no size goes below 0)."""
    shape = tuple(n + lo + hi for n, (lo, hi) in zip(x.shape, pads))
    out = empty(shape, x.dtype)
    out.fill(np.asarray(value).astype(x.dtype)[()])
    src, dst = [], []
    for n, (lo, hi) in zip(x.shape, pads):
        s0, s1 = max(-lo, 0), n - max(-hi, 0)
        if s1 <= s0:
            return out
        src.append(slice(s0, s1))
        dst.append(slice(max(lo, 0), max(lo, 0) + s1 - s0))
    if out.size:
        out[tuple(dst)] = x[tuple(src)]
    return out


def diagonal(x: CudaArray, offset: int, dim1: int, dim2: int) -> CudaArray:
    """A view of x's diagonal `offset` in the plane (dim1, dim2), as the last dim."""
    n1, n2 = x.shape[dim1], x.shape[dim2]
    r0, c0 = (0, offset) if offset >= 0 else (-offset, 0)
    length = max(min(n1 - r0, n2 - c0), 0)
    rest = [d for d in range(x.ndim) if d not in (dim1, dim2)]
    shape = tuple(x.shape[d] for d in rest) + (length,)
    strides = tuple(x.strides[d] for d in rest) + (x.strides[dim1] + x.strides[dim2],)
    if length == 0:
        return empty(shape, x.dtype)
    key = [slice(None)] * x.ndim
    key[dim1], key[dim2] = slice(r0, None), slice(c0, None)
    return x[tuple(key)]._as(shape, strides)


def diagonal_backward(g: CudaArray, shape: tuple, offset: int, dim1: int,
                      dim2: int) -> CudaArray:
    """Zeros of `shape` with g written on the diagonal (offset, dim1, dim2)."""
    out = _zeros(shape, g.dtype)
    if g.size:
        diagonal(out, offset, dim1, dim2)[...] = g
    return out


def ptx_checks() -> list:
    """(what, kernel, argument types) of every kernel here, as the launchers call them, for
    tests/cuda_ptx_check.py (compiled to PTX for a real GPU without one). Strided operands
    are ``strided()``'s 1-D base, start and element strides; shapes are tuples of ints."""
    import numba
    from numba import types

    from .runtime import vec as arr

    I64, B1 = numba.int64, numba.boolean

    def tup(n):
        return types.UniTuple(I64, n)

    checks = []
    for dt in (np.int64, np.int32):
        T = numba.from_dtype(np.dtype(dt))
        checks.append((f"index_range {T}", _range_k, (arr(T), arr(I64))))
    data = (np.float32, np.float64, np.int64, np.int32, np.bool_)
    for dt in data:
        T = numba.from_dtype(np.dtype(dt))
        for nd in (1, 2, 3):
            checks.append((f"gather {T} {nd}d", _gather_k,
                           (arr(T), I64, tup(nd), arr(I64), arr(T), tup(nd), I64)))
        checks.append((f"scatter set {T}", _scatter_set_k,
                       (arr(T), tup(2), arr(I64), arr(T), I64, tup(2), tup(2), I64)))
        checks.append((f"scatter targets {T}", _scatter_targets_k,  # deterministic mode
                       (arr(I64), arr(T), tup(2), arr(I64), arr(T), I64, tup(2), tup(2), I64)))
        checks.append((f"scatter value {T}", _scatter_value_k,
                       (arr(T), tup(2), arr(I64), T, tup(2), I64)))
        checks.append((f"index_select {T}", _index_select_k,
                       (arr(T), I64, tup(2), arr(I64), arr(T), tup(2), I64)))
        checks.append((f"index_fill {T}", _index_fill_k, (arr(T), arr(I64), T, I64, I64, I64)))
        for nd in (1, 2):
            checks.append((f"take {T} {nd}d", _take_k,
                           (arr(T), I64, tup(nd), tup(nd), I64, arr(I64), arr(T))))
        for nd in (2, 3):
            checks.append((f"tri {T} {nd}d", _tri_k,
                           (arr(T), I64, tup(nd), tup(nd), arr(T), I64, B1, T)))
    for dt in sorted({_work_dtype(d) for d in data} | {np.dtype(np.float32)}, key=str):
        T = numba.from_dtype(dt)  # the atomic accumulation dtypes
        checks.append((f"scatter add {T}", _scatter_add_k,
                       (arr(T), tup(2), arr(I64), arr(T), I64, tup(2), tup(2), I64)))
        checks.append((f"index_add {T}", _index_add_k,
                       (arr(T), tup(2), arr(I64), arr(T), I64, tup(2), tup(2), I64, T, I64)))
        checks.append((f"put_add {T}", _put_add_k, (arr(T), arr(I64), arr(T))))
        checks.append((f"index_add targets {T}", _index_add_targets_k,
                       (arr(I64), arr(T), tup(2), arr(I64), arr(T), I64, tup(2), tup(2), I64, T,
                        I64)))
    checks.append(("put targets", _put_targets_k, (arr(I64), arr(I64), I64)))
    checks.append(("one_hot", _one_hot_k, (arr(I64), arr(I64), I64)))
    return checks
