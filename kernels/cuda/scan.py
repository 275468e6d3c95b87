"""CUDA kernels of the scan family (same launcher names and signatures as ``kernels/scan.py``):
running sums and products, the running product's backward, the linear recurrence and shift.
Launchers listed in ``__all__`` replace the host-routed CPU kernel of the same name.

Operands are contiguous (outer, r, inner) blocks scanned along the middle axis. One thread
per lane (o, j) runs the lane's chain sequentially (as the CPU does, float64 accumulators for
floats, int64 for integers); lanes run in parallel.
"""

from __future__ import annotations

import numba
import numpy as np

from .array import CudaArray, empty
from .launch import launch
from .runtime import config, cuda

__all__ = ["cumsum", "cumprod", "cumprod_backward", "linrec", "shift"]
_kernels: dict = {}


def _get(key, make):
    k = _kernels.get(key)
    if k is None:
        k = _kernels[key] = make()
    return k


def _acc(dtype):
    return numba.float64 if np.dtype(dtype).kind == "f" else numba.int64


def _geom(a: CudaArray, dim: int) -> tuple:
    """(outer, r, inner) of `a` around `dim` (a 0-d array: (1, 1, 1))."""
    if a.ndim == 0:
        return 1, 1, 1
    outer = 1
    for n in a.shape[:dim]:
        outer *= n
    inner = 1
    for n in a.shape[dim + 1:]:
        inner *= n
    return outer, a.shape[dim], inner


def _flat(a: CudaArray, dtype=None):
    if dtype is not None and a.dtype != np.dtype(dtype):
        a = a.astype(dtype)
    elif not a.flags.c_contiguous:
        a = a.copy()
    return a.flat()


def _scan_kernel(acc_type, product: bool):
    @cuda.jit
    def k(a, out, r, inner, lanes, reverse):
        """out[o, k, j] = sum (product) of a[o, i, j] over i <= k (i >= k when reverse)"""
        for o in range(cuda.grid(1), lanes, cuda.gridsize(1)):
            base = (o // inner) * r * inner + o % inner
            acc = acc_type(1) if product else acc_type(0)
            for t in range(r):
                kk = r - 1 - t if reverse else t
                i = base + kk * inner
                if product:
                    acc *= a[i]
                else:
                    acc += a[i]
                out[i] = acc
    return k


def _scan(a: CudaArray, dim: int, out_dtype, reverse: bool, product: bool) -> CudaArray:
    out = empty(a.shape, out_dtype)
    if out.size:
        outer, r, inner = _geom(a, dim)
        n = outer * inner
        acc = _acc(out.dtype)
        k = _get(("scan", acc, product), lambda: _scan_kernel(acc, product))
        g, b = config(n)
        launch(k, g, b, _flat(a), out.flat(), r, inner, n, bool(reverse))
    return out


def cumsum(a: CudaArray, dim: int, out_dtype, reverse: bool = False) -> CudaArray:
    """Running sums of `a` along `dim`, in `out_dtype`."""
    return _scan(a, dim, out_dtype, reverse, False)


def cumprod(a: CudaArray, dim: int, out_dtype, reverse: bool = False) -> CudaArray:
    """Running products of `a` along `dim`, in `out_dtype`."""
    return _scan(a, dim, out_dtype, reverse, True)


def _cumprod_backward_kernel(acc_type):
    @cuda.jit
    def k(g, x, y, out, r, inner, lanes, reverse):
        """out[k] = y[k - 1] * s[k], s[k] = g[k] + x[k + 1] * s[k + 1] (mirrored)"""
        for o in range(cuda.grid(1), lanes, cuda.gridsize(1)):
            base = (o // inner) * r * inner + o % inner
            s = acc_type(0)
            for t in range(r - 1, -1, -1):
                kk = r - 1 - t if reverse else t
                i = base + kk * inner
                if t < r - 1:
                    kn = kk - 1 if reverse else kk + 1
                    s = s * x[base + kn * inner] + g[i]
                else:
                    s = acc_type(g[i])
                if t > 0:
                    kp = kk + 1 if reverse else kk - 1
                    out[i] = s * y[base + kp * inner]
                else:
                    out[i] = s
    return k


def cumprod_backward(g, x: CudaArray, y: CudaArray, dim: int,
                     reverse: bool = False) -> CudaArray:
    """The gradient of cumprod(x, dim) = y for the output gradient g, without division."""
    out = empty(x.shape, x.dtype)
    if out.size:
        outer, r, inner = _geom(x, dim)
        n = outer * inner
        acc = _acc(x.dtype)
        k = _get(("cumprod_backward", acc), lambda: _cumprod_backward_kernel(acc))
        gb, b = config(n)
        launch(k, gb, b, _full(g, x), _flat(x), _flat(y, x.dtype), out.flat(), r, inner, n,
               bool(reverse))
    return out


def _full(g, like: CudaArray):
    """g (CudaArray or host value broadcastable to like's shape) as a contiguous 1-D view."""
    if not isinstance(g, CudaArray):
        from .array import from_host

        g = from_host(np.broadcast_to(np.asarray(g, dtype=like.dtype), like.shape).copy())
    if g.shape != like.shape:
        g = g.broadcast_to(like.shape)
    return _flat(g, like.dtype)


def _linrec_kernel(acc_type):
    @cuda.jit
    def k(a, b, out, r, inner, lanes, reverse):
        """out[k] = a[k] * out[k - 1] + b[k] (k + 1 when reverse), from 0"""
        for o in range(cuda.grid(1), lanes, cuda.gridsize(1)):
            base = (o // inner) * r * inner + o % inner
            acc = acc_type(0)
            for t in range(r):
                kk = r - 1 - t if reverse else t
                i = base + kk * inner
                acc = a[i] * acc + b[i]
                out[i] = acc
    return k


def linrec(a: CudaArray, b, dim: int, reverse: bool = False) -> CudaArray:
    """y[k] = a[k] * y[k - 1] + b[k] along `dim` from y = 0 (y[k + 1] when reverse)."""
    out = empty(a.shape, a.dtype)
    if out.size:
        outer, r, inner = _geom(a, dim)
        n = outer * inner
        acc = _acc(a.dtype)
        k = _get(("linrec", acc), lambda: _linrec_kernel(acc))
        g, bl = config(n)
        launch(k, g, bl, _flat(a), _full(b, a), out.flat(), r, inner, n, bool(reverse))
    return out


def shift(a: CudaArray, dim: int, by: int, fill) -> CudaArray:
    """`a` moved by one position along `dim` (by = +1: towards higher indices), the vacated
    slot set to `fill` and the element pushed out dropped."""
    out = empty(a.shape, a.dtype)
    if out.size == 0:
        return out
    if a.ndim == 0:
        out.fill(fill)
        return out
    n = a.shape[dim]
    head = (slice(None),) * dim
    if by > 0:
        if n > 1:
            out[head + (slice(1, n),)] = a[head + (slice(0, n - 1),)]
        out[head + (slice(0, 1),)] = fill
    else:
        if n > 1:
            out[head + (slice(0, n - 1),)] = a[head + (slice(1, n),)]
        out[head + (slice(n - 1, n),)] = fill
    return out


def ptx_checks() -> list:
    """(what, kernel, argument types) of every kernel here, as the launchers call them, for
    tests/cuda_ptx_check.py (compiled to PTX for a real GPU without one)."""
    from .runtime import vec as arr

    I64, B1 = numba.int64, numba.boolean

    checks = []
    # cumsum / cumprod: operand and output in one dtype (integers and bools scan as int64)
    for dt in (np.float32, np.float64, np.int64):
        T, acc = numba.from_dtype(np.dtype(dt)), _acc(dt)
        for product in (False, True):
            checks.append((f"scan {T} product={product}", _scan_kernel(acc, product),
                           (arr(T), arr(T), I64, I64, I64, B1)))
    for dt in (np.float32, np.float64):
        T, acc = numba.from_dtype(np.dtype(dt)), _acc(dt)
        checks.append((f"cumprod_backward {T}", _cumprod_backward_kernel(acc),
                       (arr(T), arr(T), arr(T), arr(T), I64, I64, I64, B1)))
        checks.append((f"linrec {T}", _linrec_kernel(acc),
                       (arr(T), arr(T), arr(T), I64, I64, I64, B1)))
    return checks
