"""Reductions for CUDA over the same contiguous (outer, r, inner) blocks as the CPU
(``reduce.as_3d`` makes them for both): one block of threads per output element, each thread
striding over r, then a tree reduction in shared memory. Float sums accumulate in float64 as
on the CPU.
"""

from __future__ import annotations

import numba
import numpy as np

from ..reduce import as_3d, from_3d  # noqa: F401  (layout helpers shared with the CPU)
from .array import CudaArray, empty
from .launch import launch
from .runtime import block_size, blocks, config, cuda, max_threads

__all__ = ["sum_", "extreme"]
_kernels: dict = {}


def _sum_kernels(acc_type):
    """The two sum kernels for accumulator `acc_type`:

    rows: a is (outer, r) (inner == 1). Work item w = (o, c) sums the c-th chunk of row o
          with a block of threads (coalesced strides, then a tree in shared memory):
          out[w] = scale * sum a[o, c*chunk : (c+1)*chunk].
    cols: a is (outer, r, inner) with inner > 1. One thread per work item w = (c, o, j),
          neighbouring threads on neighbouring j, so each step of the loop over r reads
          contiguous memory: out[w] = scale * sum over the c-th chunk of q of a[o, q, j].
    With one chunk per lane they write the result; with several, a second call sums the
    float64 (int64) partials per lane. The chunking depends only on the shape, so the
    result is the same on every run."""
    key = ("sum", acc_type)
    k = _kernels.get(key)
    if k is not None:
        return k
    B = block_size()

    @cuda.jit
    def rows(a, out, r, chunk, nchunk, scale):
        sh = cuda.shared.array(B, acc_type)
        t = cuda.threadIdx.x
        for w in range(cuda.blockIdx.x, out.size, cuda.gridDim.x):
            o = w // nchunk
            lo = (w - o * nchunk) * chunk
            hi = min(r, lo + chunk)
            sh[t] = strided_sum(a, o * r + lo + t, B, max(hi - lo - t + B - 1, 0) // B,
                                acc_type(0))
            cuda.syncthreads()
            tree_sum(sh, t, B)
            if t == 0:
                out[w] = sh[0] * scale
            cuda.syncthreads()

    @cuda.jit
    def cols(a, out, r, inner, chunk, nchunk, scale):
        lanes = out.size // nchunk
        for w in range(cuda.grid(1), out.size, cuda.gridsize(1)):
            c = w // lanes
            lane = w - c * lanes
            o = lane // inner
            lo = c * chunk
            hi = min(r, lo + chunk)
            p = o * r * inner + (lane - o * inner) + lo * inner
            out[w] = strided_sum(a, p, inner, hi - lo, acc_type(0)) * scale

    k = _kernels[key] = (rows, cols)
    return k


@cuda.jit(device=True)
def strided_sum(a, p, step, n, zero):
    """sum of a[p + k * step] for k < n, from `zero` (its type is the accumulator's): four
    independent partial sums, so four loads are in flight at a time."""
    s0 = zero
    s1 = zero
    s2 = zero
    s3 = zero
    k = 0
    while k + 3 < n:
        s0 += a[p]
        s1 += a[p + step]
        s2 += a[p + 2 * step]
        s3 += a[p + 3 * step]
        p += 4 * step
        k += 4
    while k < n:
        s0 += a[p]
        p += step
        k += 1
    return (s0 + s1) + (s2 + s3)


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def sum_(a3: CudaArray, out_dtype, scale: float = 1.0) -> CudaArray:
    """Sum a contiguous (outer, r, inner) array over axis 1, times `scale`. A long axis with
    few outputs is split into chunks that blocks sum in parallel, then the partials."""
    outer, r, inner = a3.shape
    out = empty((outer, inner), out_dtype)
    if out.size == 0:
        return out
    floating = a3.dtype.kind == "f"
    acc = numba.float64 if floating else numba.int64
    acc_np = np.float64 if floating else np.int64
    sc = np.float64(scale) if floating else np.int64(scale)
    one = acc_np(1)
    rows, cols = _sum_kernels(acc)
    B = block_size()
    lanes = outer * inner
    busy = max_threads()
    if inner == 1:
        # enough rows to fill the card, or rows short enough for one block: one chunk each
        nchunk = 1 if lanes * B >= busy or r <= 8 * B else min(_ceil(busy, lanes * B),
                                                             _ceil(r, 8 * B))
        if nchunk == 1:
            launch(rows, blocks(lanes), B, a3.flat(), out.flat(), r, r, 1, sc)
            return out
        chunk = _ceil(r, nchunk)
        part = empty((lanes * nchunk,), acc_np)
        launch(rows, blocks(lanes * nchunk), B, a3.flat(), part.flat(), r, chunk, nchunk, one)
        launch(rows, blocks(lanes), B, part.flat(), out.flat(), nchunk, nchunk, 1, sc)
        return out
    # a quarter of the card's threads or short columns: one chunk each. Up to 128 rows on a
    # GPU (a bias gradient over a batch) one pass is quicker than a second launch; the
    # simulator's 4-thread blocks chunk almost every column, so CI runs both passes
    nchunk = (1 if lanes >= busy // 4 or r <= B // 2 else
              min(_ceil(busy, lanes), _ceil(r, 32), 1024))
    if nchunk == 1:
        launch(cols, *config(lanes), a3.flat(), out.flat(), r, inner, r, 1, sc)
        return out
    chunk = _ceil(r, nchunk)
    part = empty((nchunk * lanes,), acc_np)
    launch(cols, *config(nchunk * lanes), a3.flat(), part.flat(), r, inner, chunk, nchunk, one)
    launch(cols, *config(lanes), part.flat(), out.flat(), nchunk, lanes, nchunk, 1, sc)
    return out


def _extreme_kernel(dtype, want_max: bool):
    key = ("extreme", np.dtype(dtype), want_max)
    k = _kernels.get(key)
    if k is not None:
        return k
    B = block_size()
    T = numba.from_dtype(np.dtype(dtype))

    @cuda.jit(device=True)
    def better(v, i, b, j):
        """Whether (v, i) beats (b, j): nan wins, then the larger (smaller) value, then the
        first index."""
        if b != b:
            return v != v and i < j
        if v != v:
            return True
        if v == b:
            return i < j
        return v > b if want_max else v < b

    @cuda.jit
    def k(a, vals, idx, r, inner):
        """vals[o, j], idx[o, j] = max (min) of a[o, :, j] and its first index; nan wins"""
        sv = cuda.shared.array(B, T)
        si = cuda.shared.array(B, numba.int64)
        t = cuda.threadIdx.x
        for o in range(cuda.blockIdx.x, vals.size, cuda.gridDim.x):
            base = (o // inner) * r * inner + o % inner
            bv = a[base]
            bi = -1  # -1: this thread has seen nothing yet
            for q in range(t, r, B):
                v = a[base + q * inner]
                if bi < 0 or better(v, q, bv, bi):
                    bv = v
                    bi = q
            sv[t] = bv
            si[t] = bi
            cuda.syncthreads()
            s = B // 2
            while s > 0:
                if t < s and si[t + s] >= 0 and (
                        si[t] < 0 or better(sv[t + s], si[t + s], sv[t], si[t])):
                    sv[t] = sv[t + s]
                    si[t] = si[t + s]
                cuda.syncthreads()
                s //= 2
            if t == 0:
                vals[o] = sv[0]
                idx[o] = si[0]
            cuda.syncthreads()

    _kernels[key] = k
    return k


def extreme(a3: CudaArray, want_max: bool):
    """Max or min of a contiguous (outer, r, inner) array over axis 1, with int64 indices."""
    outer, r, inner = a3.shape
    vals = empty((outer, inner), a3.dtype)
    idx = empty((outer, inner), np.int64)
    if vals.size:
        k = _extreme_kernel(a3.dtype, want_max)
        g, _ = config(vals.size * block_size())
        launch(k, g, block_size(), a3.flat(), vals.flat(), idx.flat(), r, inner)
    return vals, idx


# ==== The rest of the reductions family: products, moments, norms, any/all, amax and the
# ==== fused backward kernels of the value-selecting reductions. Same (outer, r, inner)
# ==== blocks; one block of threads per output lane (o, j); float accumulators float64.

import math  # noqa: E402

from .. import reduce as _cpu_reduce  # noqa: E402
from .array import from_host  # noqa: E402

__all__ += ["prod", "prod_backward", "moments", "var_backward", "vector_norm", "any_all",
            "amax", "extreme_backward"]

_F64 = numba.float64


def _get(key, make):
    k = _kernels.get(key)
    if k is None:
        k = _kernels[key] = make()
    return k


def _launch(k, lanes: int, *args) -> None:
    B = block_size()
    g, _ = config(lanes * B)
    launch(k, g, B, *args)


def _host(fn, *args):
    """Run the CPU kernel on host copies (degenerate shapes only: empty reductions)."""
    from . import _to_device, _to_host

    return _to_device(fn(*_to_host(args, [])))


def lanes_of(g, dtype, n: int):
    """A reduced-shape operand (CudaArray or host number/array) as a contiguous 1-D device
    array of `dtype` and n elements."""
    if not isinstance(g, CudaArray):
        g = from_host(np.broadcast_to(np.asarray(g, dtype=dtype), (n,)).copy())
    if g.dtype != dtype:
        g = g.astype(dtype)
    elif not g.flags.c_contiguous:
        g = g.copy()
    if g.size != n:
        g = g.reshape(-1).broadcast_to((n,)).copy()
    return g.reshape(n).flat() if g.ndim != 1 else g.flat()


@cuda.jit(device=True)
def tree_sum(sh, t, B):
    """Sum of sh[0:B] into sh[0] (B a power of two); every thread may read sh[0] after."""
    s = B // 2
    while s > 0:
        if t < s:
            sh[t] += sh[t + s]
        cuda.syncthreads()
        s //= 2


@cuda.jit(device=True)
def tree_max_nan(sh, t, B, want_max):
    """Max (min) of sh[0:B] into sh[0]; nan propagates."""
    s = B // 2
    while s > 0:
        if t < s:
            b = sh[t]
            v = sh[t + s]
            if b == b and (v != v or (v > b if want_max else v < b)):
                sh[t] = v
        cuda.syncthreads()
        s //= 2


def _prod_kernel(acc_type):
    B = block_size()

    @cuda.jit
    def k(a, out, r, inner):
        """out[o, j] = prod over k of a[o, k, j]"""
        sh = cuda.shared.array(B, acc_type)
        t = cuda.threadIdx.x
        for o in range(cuda.blockIdx.x, out.size, cuda.gridDim.x):
            base = (o // inner) * r * inner + o % inner
            acc = acc_type(1)
            for q in range(t, r, B):
                acc *= a[base + q * inner]
            sh[t] = acc
            cuda.syncthreads()
            s = B // 2
            while s > 0:
                if t < s:
                    sh[t] *= sh[t + s]
                cuda.syncthreads()
                s //= 2
            if t == 0:
                out[o] = sh[0]
            cuda.syncthreads()
    return k


def prod(a3: CudaArray, out_dtype) -> CudaArray:
    """Product of a contiguous (outer, r, inner) array over axis 1, in `out_dtype`."""
    outer, r, inner = a3.shape
    out = empty((outer, inner), out_dtype)
    if out.size:
        acc = numba.float64 if a3.dtype.kind == "f" else numba.int64
        k = _get(("prod", acc), lambda: _prod_kernel(acc))
        _launch(k, out.size, a3.flat(), out.flat(), r, inner)
    return out


def _prod_backward_kernel():
    @cuda.jit
    def k(g, x, out, r, inner, lanes):
        """out[o, k, j] = g[o, j] * prod_{i != k} x[o, i, j]: one thread per lane, prefix
        products forwards then suffix products backwards (no division)."""
        for o in range(cuda.grid(1), lanes, cuda.gridsize(1)):
            base = (o // inner) * r * inner + o % inner
            run = _F64(1)
            for q in range(r):
                i = base + q * inner
                out[i] = run
                run *= x[i]
            run = _F64(g[o])
            for q in range(r - 1, -1, -1):
                i = base + q * inner
                out[i] = out[i] * run
                run *= x[i]
    return k


def prod_backward(g, x3: CudaArray) -> CudaArray:
    """g times the product of all other elements along axis 1 of a float block."""
    outer, r, inner = x3.shape
    out = empty(x3.shape, x3.dtype)
    if out.size:
        n = outer * inner
        k = _get(("prod_backward",), _prod_backward_kernel)
        gr, bl = config(n)
        launch(k, gr, bl, lanes_of(g, x3.dtype, n), x3.flat(), out.flat(), r, inner, n)
    return out


def _moments_kernel():
    B = block_size()

    @cuda.jit
    def k(a, out, r, inner, dof, take_sqrt):
        """out[o, j] = sum_k (a[o, k, j] - mean)^2 / dof (two passes), or its square root"""
        sh = cuda.shared.array(B, numba.float64)
        t = cuda.threadIdx.x
        for o in range(cuda.blockIdx.x, out.size, cuda.gridDim.x):
            base = (o // inner) * r * inner + o % inner
            acc = _F64(0)
            for q in range(t, r, B):
                acc += a[base + q * inner]
            sh[t] = acc
            cuda.syncthreads()
            tree_sum(sh, t, B)
            mean = sh[0] / r
            cuda.syncthreads()
            acc = _F64(0)
            for q in range(t, r, B):
                d = a[base + q * inner] - mean
                acc += d * d
            sh[t] = acc
            cuda.syncthreads()
            tree_sum(sh, t, B)
            if t == 0:
                v = sh[0] / dof
                out[o] = math.sqrt(v) if take_sqrt else v
            cuda.syncthreads()
    return k


def moments(a3: CudaArray, correction: float, take_sqrt: bool) -> CudaArray:
    """var (std with `take_sqrt`) of a float (outer, r, inner) block over axis 1, divided by
    max(0, r - correction)."""
    outer, r, inner = a3.shape
    if r == 0:
        return _host(_cpu_reduce.moments, a3, correction, take_sqrt)
    out = empty((outer, inner), a3.dtype)
    if out.size:
        k = _get(("moments",), _moments_kernel)
        _launch(k, out.size, a3.flat(), out.flat(), r, inner,
                np.float64(max(0.0, r - correction)), bool(take_sqrt))
    return out


def _var_backward_kernel():
    B = block_size()

    @cuda.jit
    def k(g, x, out, r, inner, scale, lanes):
        """out[o, k, j] = scale * g[o, j] * (x[o, k, j] - mean_k x[o, k, j])"""
        sh = cuda.shared.array(B, numba.float64)
        t = cuda.threadIdx.x
        for o in range(cuda.blockIdx.x, lanes, cuda.gridDim.x):
            base = (o // inner) * r * inner + o % inner
            acc = _F64(0)
            for q in range(t, r, B):
                acc += x[base + q * inner]
            sh[t] = acc
            cuda.syncthreads()
            tree_sum(sh, t, B)
            mean = sh[0] / r
            c = scale * g[o]
            for q in range(t, r, B):
                i = base + q * inner
                out[i] = c * (x[i] - mean)
            cuda.syncthreads()
    return k


def var_backward(g, x3: CudaArray, scale: float) -> CudaArray:
    """scale * g * (x - mean(x)) over axis 1 of a float (outer, r, inner) block."""
    outer, r, inner = x3.shape
    out = empty(x3.shape, x3.dtype)
    if out.size:
        n = outer * inner
        k = _get(("var_backward",), _var_backward_kernel)
        _launch(k, n, lanes_of(g, x3.dtype, n), x3.flat(), out.flat(), r, inner,
                np.float64(scale), n)
    return out


NORM_ZERO, NORM_ONE, NORM_TWO, NORM_INF, NORM_NEG_INF, NORM_P = range(6)


@cuda.jit(device=True)
def _extreme_abs(v, b, kind):
    """The running max (NORM_INF) or min of |a|; nan sticks."""
    if b != b:
        return b
    if v != v or (v > b if kind == NORM_INF else v < b):
        return v
    return b


def _norm_kernel():
    B = block_size()

    @cuda.jit
    def k(a, out, r, inner, kind, p):
        """out[o, j] = ||a[o, :, j]||_p"""
        sh = cuda.shared.array(B, numba.float64)
        t = cuda.threadIdx.x
        extreme = kind == NORM_INF or kind == NORM_NEG_INF
        for o in range(cuda.blockIdx.x, out.size, cuda.gridDim.x):
            base = (o // inner) * r * inner + o % inner
            if extreme:
                acc = abs(_F64(a[base]))
                for q in range(t, r, B):
                    acc = _extreme_abs(abs(_F64(a[base + q * inner])), acc, kind)
            else:
                acc = _F64(0)
                for q in range(t, r, B):
                    v = abs(_F64(a[base + q * inner]))
                    if kind == NORM_ZERO:
                        acc += 1.0 if v != 0 else 0.0
                    elif kind == NORM_ONE:
                        acc += v
                    elif kind == NORM_TWO:
                        acc += v * v
                    else:
                        acc += v ** p
            sh[t] = acc
            cuda.syncthreads()
            s = B // 2
            while s > 0:
                if t < s:
                    if extreme:
                        sh[t] = _extreme_abs(sh[t + s], sh[t], kind)
                    else:
                        sh[t] += sh[t + s]
                cuda.syncthreads()
                s //= 2
            if t == 0:
                v = sh[0]
                if kind == NORM_TWO:
                    v = math.sqrt(v)
                elif kind == NORM_P:
                    v = v ** (1.0 / p)
                out[o] = v
            cuda.syncthreads()
    return k


_NORM_KINDS = {0.0: NORM_ZERO, 1.0: NORM_ONE, 2.0: NORM_TWO, math.inf: NORM_INF,
               -math.inf: NORM_NEG_INF}


def vector_norm(a3: CudaArray, p: float) -> CudaArray:
    """The vector p-norm of a float (outer, r, inner) block over axis 1."""
    outer, r, inner = a3.shape
    if r == 0:
        return _host(_cpu_reduce.vector_norm, a3, p)
    out = empty((outer, inner), a3.dtype)
    if out.size:
        k = _get(("norm",), _norm_kernel)
        _launch(k, out.size, a3.flat(), out.flat(), r, inner,
                _NORM_KINDS.get(p, NORM_P), np.float64(p))
    return out


def _any_all_kernel():
    B = block_size()

    @cuda.jit
    def k(a, out, r, inner, want_all):
        """out[o, j] = all (or any) of a[o, k, j] != 0 over k"""
        sh = cuda.shared.array(B, numba.int32)
        t = cuda.threadIdx.x
        for o in range(cuda.blockIdx.x, out.size, cuda.gridDim.x):
            base = (o // inner) * r * inner + o % inner
            acc = 1 if want_all else 0
            for q in range(t, r, B):
                nz = a[base + q * inner] != 0
                if nz != want_all:
                    acc = 0 if want_all else 1
                    break
            sh[t] = acc
            cuda.syncthreads()
            s = B // 2
            while s > 0:
                if t < s:
                    if want_all:
                        sh[t] = sh[t] & sh[t + s]
                    else:
                        sh[t] = sh[t] | sh[t + s]
                cuda.syncthreads()
                s //= 2
            if t == 0:
                out[o] = sh[0] != 0
            cuda.syncthreads()
    return k


def any_all(a3: CudaArray, want_all: bool, out_dtype) -> CudaArray:
    """all (or any) of the non-zero tests of an (outer, r, inner) block over axis 1."""
    outer, r, inner = a3.shape
    out = empty((outer, inner), np.bool_)
    if out.size:
        k = _get(("any_all",), _any_all_kernel)
        _launch(k, out.size, a3.flat(), out.flat(), r, inner, bool(want_all))
    return out if out.dtype == np.dtype(out_dtype) else out.astype(out_dtype)


def _amax_kernel(dtype):
    B = block_size()
    T = numba.from_dtype(np.dtype(dtype))

    @cuda.jit
    def k(a, out, r, inner, want_max):
        """out[o, j] = max (or min) over k of a[o, k, j]; nan propagates (r >= 1)"""
        sh = cuda.shared.array(B, T)
        t = cuda.threadIdx.x
        for o in range(cuda.blockIdx.x, out.size, cuda.gridDim.x):
            base = (o // inner) * r * inner + o % inner
            m = a[base]
            for q in range(t, r, B):
                v = a[base + q * inner]
                if m == m and (v != v or (v > m if want_max else v < m)):
                    m = v
            sh[t] = m
            cuda.syncthreads()
            tree_max_nan(sh, t, B, want_max)
            if t == 0:
                out[o] = sh[0]
            cuda.syncthreads()
    return k


def amax(a3: CudaArray, want_max: bool) -> CudaArray:
    """Max (or min) of an (outer, r, inner) block over axis 1, r >= 1; nan propagates."""
    outer, r, inner = a3.shape
    out = empty((outer, inner), a3.dtype)
    if out.size:
        src = a3
        if a3.dtype == np.bool_:  # compare bools as uint8
            src = a3.astype(np.uint8)
        k = _get(("amax", src.dtype), lambda: _amax_kernel(src.dtype))
        o = out if src.dtype == out.dtype else empty((outer, inner), src.dtype)
        _launch(k, out.size, src.flat(), o.flat(), r, inner, bool(want_max))
        if o is not out:
            out = o.astype(np.bool_)
    return out


def _extreme_backward_kernel():
    B = block_size()

    @cuda.jit
    def k(g, x, v, out, r, inner, lanes):
        """out[o, k, j] = g[o, j] / #{k: x == v[o, j]} where x[o, k, j] == v[o, j], else 0"""
        sh = cuda.shared.array(B, numba.float64)
        t = cuda.threadIdx.x
        for o in range(cuda.blockIdx.x, lanes, cuda.gridDim.x):
            base = (o // inner) * r * inner + o % inner
            m = v[o]
            acc = _F64(0)
            for q in range(t, r, B):
                if x[base + q * inner] == m:
                    acc += 1.0
            sh[t] = acc
            cuda.syncthreads()
            tree_sum(sh, t, B)
            share = g[o] / sh[0]
            for q in range(t, r, B):
                i = base + q * inner
                out[i] = share if x[i] == m else 0.0 * share
            cuda.syncthreads()
    return k


def extreme_backward(g, x3: CudaArray, v) -> CudaArray:
    """g shared evenly among the positions where a float block equals its extreme v along
    axis 1 (g and v have the reduced shape)."""
    outer, r, inner = x3.shape
    out = empty(x3.shape, x3.dtype)
    if out.size:
        n = outer * inner
        k = _get(("extreme_backward",), _extreme_backward_kernel)
        _launch(k, n, lanes_of(g, x3.dtype, n), x3.flat(), lanes_of(v, x3.dtype, n),
                out.flat(), r, inner, n)
    return out


def ptx_checks() -> list:
    """(what, kernel, argument types) of the kernels of this second part (``_sum_kernel`` and
    ``_extreme_kernel`` are checked by tests/cuda_ptx_check.py itself), as the launchers call
    them: compiled to PTX for a real GPU without one."""
    from .runtime import vec as arr

    I64, F64, B1 = numba.int64, numba.float64, numba.boolean

    floats = (np.float32, np.float64)
    ints = (np.uint8, np.int8, np.int16, np.int32, np.int64)
    checks = []
    # prod: integers and bools multiply in int64 (the op layer casts), out in the same dtype
    for dt in floats + (np.int64,):
        T = numba.from_dtype(np.dtype(dt))
        acc = numba.float64 if np.dtype(dt).kind == "f" else numba.int64
        checks.append((f"prod {T}", _prod_kernel(acc), (arr(T), arr(T), I64, I64)))
    for dt in floats:
        T = numba.from_dtype(np.dtype(dt))
        checks.append((f"prod_backward {T}", _prod_backward_kernel(),
                       (arr(T), arr(T), arr(T), I64, I64, I64)))
        checks.append((f"moments {T}", _moments_kernel(), (arr(T), arr(T), I64, I64, F64, B1)))
        checks.append((f"var_backward {T}", _var_backward_kernel(),
                       (arr(T), arr(T), arr(T), I64, I64, F64, I64)))
        checks.append((f"vector_norm {T}", _norm_kernel(), (arr(T), arr(T), I64, I64, I64, F64)))
        checks.append((f"extreme_backward {T}", _extreme_backward_kernel(),
                       (arr(T), arr(T), arr(T), arr(T), I64, I64, I64)))
    for dt in (np.bool_,) + ints + floats:
        T = numba.from_dtype(np.dtype(dt))
        checks.append((f"any_all {T}", _any_all_kernel(), (arr(T), arr(B1), I64, I64, B1)))
    for dt in ints + floats:  # (bools are compared as uint8)
        T = numba.from_dtype(np.dtype(dt))
        checks.append((f"amax {T}", _amax_kernel(dt), (arr(T), arr(T), I64, I64, B1)))
    return checks
