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
from .runtime import block_size, config, cuda

__all__ = ["sum_", "extreme"]
_kernels: dict = {}


def _sum_kernel(acc_type):
    key = ("sum", acc_type)
    k = _kernels.get(key)
    if k is not None:
        return k
    B = block_size()

    @cuda.jit
    def k(a, out, r, inner, scale):
        """out[o, j] = scale * sum over k of a[o, k, j]"""
        sh = cuda.shared.array(B, acc_type)
        t = cuda.threadIdx.x
        for o in range(cuda.blockIdx.x, out.size, cuda.gridDim.x):
            base = (o // inner) * r * inner + o % inner
            acc = acc_type(0)
            for q in range(t, r, B):
                acc += a[base + q * inner]
            sh[t] = acc
            cuda.syncthreads()
            s = B // 2
            while s > 0:
                if t < s:
                    sh[t] += sh[t + s]
                cuda.syncthreads()
                s //= 2
            if t == 0:
                out[o] = sh[0] * scale
            cuda.syncthreads()

    _kernels[key] = k
    return k


def sum_(a3: CudaArray, out_dtype, scale: float = 1.0) -> CudaArray:
    """Sum a contiguous (outer, r, inner) array over axis 1, times `scale`."""
    outer, r, inner = a3.shape
    out = empty((outer, inner), out_dtype)
    if out.size == 0:
        return out
    floating = a3.dtype.kind == "f"
    acc = numba.float64 if floating else numba.int64
    k = _sum_kernel(acc)
    g, _ = config(out.size * block_size())
    k[g, block_size()](a3.flat(), out.flat(), r, inner,
                       np.float64(scale) if floating else np.int64(scale))
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
        k[g, block_size()](a3.flat(), vals.flat(), idx.flat(), r, inner)
    return vals, idx
