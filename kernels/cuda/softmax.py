"""CUDA kernels of the softmax family (same launcher names and signatures as
``kernels/softmax.py``): softmax and log_softmax forward and backward, logsumexp and its
backward. Launchers listed in ``__all__`` replace the host-routed CPU kernel of the same name.

Operands are contiguous (outer, r, inner) blocks normalised or reduced along the middle axis.
One block of threads per lane (o, j): each thread strides over k, then tree reductions in
shared memory give the lane's maximum and its float64 sum; a last pass writes the results.
The exponential runs in the data's precision after the max is subtracted, as on the CPU.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from . import reduce as _r
from .array import CudaArray, empty
from .launch import launch
from .runtime import block_size, cuda

__all__ = ["softmax", "softmax_backward", "logsumexp", "logsumexp_backward"]
_kernels: dict = {}


def _get(key, make):
    k = _kernels.get(key)
    if k is None:
        k = _kernels[key] = make()
    return k


def _block3(a: CudaArray, dim: int):
    """(contiguous copy or view of a, its (outer, r, inner) shape)."""
    if not a.flags.c_contiguous:
        a = a.copy()
    if a.ndim == 0:
        return a, (1, 1, 1)
    outer = 1
    for n in a.shape[:dim]:
        outer *= n
    inner = 1
    for n in a.shape[dim + 1:]:
        inner *= n
    return a, (outer, a.shape[dim], inner)


@cuda.jit(device=True)
def _tree_max(sh, t, B):
    """max of sh[0:B] into sh[0] (nan skipped: -inf start, v > m)"""
    s = B // 2
    while s > 0:
        if t < s:
            v = sh[t + s]
            if v > sh[t]:
                sh[t] = v
        cuda.syncthreads()
        s //= 2


def _softmax_kernel(dtype):
    B = block_size()
    T = numba.from_dtype(np.dtype(dtype))

    @cuda.jit
    def k(x, out, r, inner, lanes, log):
        """out[o, k, j] = softmax (log_softmax) of x[o, :, j] at k"""
        shm = cuda.shared.array(B, T)
        shs = cuda.shared.array(B, numba.float64)
        t = cuda.threadIdx.x
        for o in range(cuda.blockIdx.x, lanes, cuda.gridDim.x):
            base = (o // inner) * r * inner + o % inner
            m = T(-math.inf)
            for q in range(t, r, B):
                v = x[base + q * inner]
                if v > m:
                    m = v
            shm[t] = m
            cuda.syncthreads()
            _tree_max(shm, t, B)
            m = shm[0]
            acc = numba.float64(0)
            for q in range(t, r, B):
                i = base + q * inner
                e = T(math.exp(T(x[i] - m)))
                if not log:
                    out[i] = e
                acc += e
            shs[t] = acc
            cuda.syncthreads()
            _r.tree_sum(shs, t, B)
            s = shs[0]
            if log:
                ls = T(math.log(s))
                for q in range(t, r, B):
                    i = base + q * inner
                    out[i] = T(x[i] - m) - ls
            else:
                inv = T(1.0 / s)
                for q in range(t, r, B):
                    i = base + q * inner
                    out[i] = out[i] * inv
            cuda.syncthreads()
    return k


def softmax(x: CudaArray, dim: int, log: bool) -> CudaArray:
    """softmax (or, with `log`, log_softmax) of float array `x` along `dim`."""
    out = empty(x.shape, x.dtype)
    if out.size == 0:
        return out
    xc, (outer, r, inner) = _block3(x, dim)
    n = outer * inner
    k = _get(("softmax", x.dtype), lambda: _softmax_kernel(x.dtype))
    _r._launch(k, n, xc.flat(), out.flat(), r, inner, n, bool(log))
    return out


def _backward_kernel(dtype):
    B = block_size()
    T = numba.from_dtype(np.dtype(dtype))

    @cuda.jit
    def k(g, y, out, r, inner, lanes, log):
        """out = y * (g - sum(g * y)) along k (log: g - exp(y) * sum(g))"""
        shs = cuda.shared.array(B, numba.float64)
        t = cuda.threadIdx.x
        for o in range(cuda.blockIdx.x, lanes, cuda.gridDim.x):
            base = (o // inner) * r * inner + o % inner
            acc = numba.float64(0)
            for q in range(t, r, B):
                i = base + q * inner
                if log:
                    acc += g[i]
                else:
                    acc += numba.float64(g[i]) * y[i]
            shs[t] = acc
            cuda.syncthreads()
            _r.tree_sum(shs, t, B)
            c = T(shs[0])
            for q in range(t, r, B):
                i = base + q * inner
                if log:
                    out[i] = g[i] - T(math.exp(y[i])) * c
                else:
                    out[i] = y[i] * (g[i] - c)
            cuda.syncthreads()
    return k


def softmax_backward(g: CudaArray, y: CudaArray, dim: int, log: bool) -> CudaArray:
    """The gradient of softmax (log_softmax with `log`) along `dim` for output y and output
    gradient g (same shape and dtype)."""
    out = empty(y.shape, y.dtype)
    if out.size == 0:
        return out
    if not isinstance(g, CudaArray):
        g = _r.from_host(np.broadcast_to(np.asarray(g, dtype=y.dtype), y.shape).copy())
    if g.dtype != y.dtype:
        g = g.astype(y.dtype)
    gc, _ = _block3(g, dim)
    yc, (outer, r, inner) = _block3(y, dim)
    n = outer * inner
    k = _get(("softmax_backward", y.dtype), lambda: _backward_kernel(y.dtype))
    _r._launch(k, n, gc.flat(), yc.flat(), out.flat(), r, inner, n, bool(log))
    return out


def _logsumexp_kernel(dtype):
    B = block_size()
    T = numba.from_dtype(np.dtype(dtype))

    @cuda.jit
    def k(x, out, r, inner):
        """out[o, j] = m + log(sum_k exp(x[o, k, j] - m)), m = max_k x or 0 if infinite"""
        shm = cuda.shared.array(B, T)
        shs = cuda.shared.array(B, numba.float64)
        t = cuda.threadIdx.x
        for o in range(cuda.blockIdx.x, out.size, cuda.gridDim.x):
            base = (o // inner) * r * inner + o % inner
            m = T(-math.inf)
            for q in range(t, r, B):
                v = x[base + q * inner]
                if v > m:
                    m = v
            shm[t] = m
            cuda.syncthreads()
            _tree_max(shm, t, B)
            m = shm[0]
            if math.isinf(m):
                m = T(0)
            acc = numba.float64(0)
            for q in range(t, r, B):
                acc += T(math.exp(T(x[base + q * inner] - m)))
            shs[t] = acc
            cuda.syncthreads()
            _r.tree_sum(shs, t, B)
            if t == 0:
                s = shs[0]  # 0 for a row of -inf: log would raise in the simulator
                out[o] = (math.log(s) if s > 0 else -math.inf) + m
            cuda.syncthreads()
    return k


def logsumexp(x3: CudaArray) -> CudaArray:
    """log(sum(exp(x))) of a contiguous float (outer, r, inner) block over axis 1."""
    outer, r, inner = x3.shape
    out = empty((outer, inner), x3.dtype)
    if out.size == 0:
        return out
    if r == 0:
        out.fill(-np.inf)
        return out
    k = _get(("logsumexp", x3.dtype), lambda: _logsumexp_kernel(x3.dtype))
    _r._launch(k, out.size, x3.flat(), out.flat(), r, inner)
    return out


def _logsumexp_backward_kernel(dtype):
    T = numba.from_dtype(np.dtype(dtype))

    @cuda.jit
    def k(g, x, res, out, r, inner):
        """out[o, k, j] = g[o, j] * exp(x[o, k, j] - res[o, j])"""
        for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
            o = (i // (r * inner)) * inner + i % inner
            out[i] = g[o] * T(math.exp(T(x[i] - res[o])))
    return k


def logsumexp_backward(g, x3: CudaArray, res) -> CudaArray:
    """g * exp(x - logsumexp(x)) on a float (outer, r, inner) block; g and res have the
    reduced shape."""
    outer, r, inner = x3.shape
    out = empty(x3.shape, x3.dtype)
    if out.size:
        n = outer * inner
        k = _get(("logsumexp_backward", x3.dtype),
                 lambda: _logsumexp_backward_kernel(x3.dtype))
        from .runtime import config

        gr, bl = config(out.size)
        gl, rl = _r.lanes_of(g, x3.dtype, n), _r.lanes_of(res, x3.dtype, n)
        launch(k, gr, bl, gl.flat(), x3.flat(), rl.flat(), out.flat(), r, inner)
    return out


def ptx_checks() -> list:
    """(what, kernel, argument types) of every kernel here, as the launchers call them, for
    tests/cuda_ptx_check.py (compiled to PTX for a real GPU without one)."""
    from .runtime import vec as arr

    I64, B1 = numba.int64, numba.boolean

    checks = []
    for dt in (np.float32, np.float64):
        T = numba.from_dtype(np.dtype(dt))
        checks.append((f"softmax {T}", _softmax_kernel(dt),
                       (arr(T), arr(T), I64, I64, I64, B1)))
        checks.append((f"softmax_backward {T}", _backward_kernel(dt),
                       (arr(T), arr(T), arr(T), I64, I64, I64, B1)))
        checks.append((f"logsumexp {T}", _logsumexp_kernel(dt), (arr(T), arr(T), I64, I64)))
        checks.append((f"logsumexp_backward {T}", _logsumexp_backward_kernel(dt),
                       (arr(T), arr(T), arr(T), arr(T), I64, I64)))
    return checks
