"""CUDA kernels of the pointwise family (same launcher names and signatures as
``kernels/pointwise.py``): the bodies of ``scalar.UNARY_P``, ``BINARY_P`` and ``TERNARY_P``,
which take two scalar parameters ``p``, ``q`` after their operands.

The bodies, their device-function compilation and the kernel cache are
``kernels/cuda/elementwise.py``'s (``kernels(arity, name, dtype, table=, factory=)``); the
factories here only add the two parameters, passed by value in the operands' dtype (one
compiled kernel per dtype, as on the CPU). Each family has a ``flat`` kernel (operands
contiguous of the output's size, or of one element) and a ``strided`` one (any layout,
broadcasting by zero strides, adjacent dimensions merged), so no operand is materialised.
Host operands (0-d numpy arrays) are uploaded as one-element arrays.
"""

from __future__ import annotations

import numpy as np

from .. import scalar
from .array import CudaArray, empty, from_host
from .elementwise import _dense, _strides_for, kernels, merge, offset
from .launch import launch
from .runtime import config, cuda

__all__ = ["unary_p", "binary_p", "ternary_p"]


# --------------------------------------------------------------------------- factories

def _unary_p_kernels(f):
    @cuda.jit
    def flat(a, out, ka, p, q):
        for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
            out[i] = f(a[i * ka], p, q)

    @cuda.jit
    def strided(a, a0, sa, shape, out, p, q):
        for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
            out[i] = f(a[offset(i, shape, sa, a0)], p, q)

    return flat, strided


def _binary_p_kernels(f):
    @cuda.jit
    def flat(a, b, out, ka, kb, p, q):
        # ka, kb: 1 for an operand of the output's size, 0 for a single element
        for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
            out[i] = f(a[i * ka], b[i * kb], p, q)

    @cuda.jit
    def strided(a, a0, sa, b, b0, sb, shape, out, p, q):
        for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
            out[i] = f(a[offset(i, shape, sa, a0)], b[offset(i, shape, sb, b0)], p, q)

    return flat, strided


def _ternary_p_kernels(f):
    @cuda.jit
    def flat(a, b, c, out, ka, kb, kc, p, q):
        for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
            out[i] = f(a[i * ka], b[i * kb], c[i * kc], p, q)

    @cuda.jit
    def strided(a, a0, sa, b, b0, sb, c, c0, sc, shape, out, p, q):
        for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
            out[i] = f(a[offset(i, shape, sa, a0)], b[offset(i, shape, sb, b0)],
                       c[offset(i, shape, sc, c0)], p, q)

    return flat, strided


# --------------------------------------------------------------------------- helpers

def _params(dtype, p, q) -> tuple:
    """The parameters as scalars of the operands' dtype (as ``kernels/pointwise.py``)."""
    t = np.dtype(dtype).type
    return t(p), t(q)


def _device(v, dtype) -> CudaArray:
    """Operand `v` on the device in `dtype` (a host scalar is uploaded)."""
    if not isinstance(v, CudaArray):
        return from_host(np.asarray(v, dtype=dtype))
    return v if v.dtype == dtype else v.astype(dtype)


def _launch(arity: int, table, factory, name: str, ops: list, shape: tuple, p, q,
            out_dtype) -> CudaArray:
    dt = ops[0].dtype
    out = empty(shape, out_dtype or dt)
    n = out.size
    if n == 0:
        return out
    flat, strided = kernels(arity, name, dt, table, factory)
    pq = _params(dt, p, q)
    g, bl = config(n)
    if all(_dense(v, n) for v in ops):  # (an operand of n elements is in output order)
        launch(flat, g, bl, *[v.flat() for v in ops], out.flat(),
               *[int(v.size != 1) for v in ops], *pq)
        return out
    parts = [_strides_for(v, shape) for v in ops]
    m, sts = merge(shape, [pt[2] for pt in parts])
    args = []
    for (base, start, _), st in zip(parts, sts):
        args += [base, start, st]
    launch(strided, g, bl, *args, m, out.flat(), *pq)
    return out


# --------------------------------------------------------------------------- launchers

def unary_p(name: str, a, p=0, q=0, out_dtype=None) -> CudaArray:
    """Apply body `name` with parameters `p`, `q` to `a`."""
    a = _device(a, a.dtype)
    return _launch(1, scalar.UNARY_P, _unary_p_kernels, name, [a], a.shape, p, q, out_dtype)


def binary_p(name: str, a, b, shape: tuple, p=0, q=0, out_dtype=None) -> CudaArray:
    """Apply body `name` with parameters `p`, `q` to `a` and `b`, broadcast to `shape`."""
    dt = a.dtype
    ops = [_device(a, dt), _device(b, dt)]
    return _launch(2, scalar.BINARY_P, _binary_p_kernels, name, ops, tuple(shape), p, q,
                   out_dtype)


def ternary_p(name: str, a, b, c, shape: tuple, p=0, q=0, out_dtype=None) -> CudaArray:
    """Apply body `name` with parameters `p`, `q` to `a`, `b`, `c`, broadcast to `shape`."""
    dt = a.dtype
    ops = [_device(a, dt), _device(b, dt), _device(c, dt)]
    return _launch(3, scalar.TERNARY_P, _ternary_p_kernels, name, ops, tuple(shape), p, q,
                   out_dtype)


def ptx_checks() -> list:
    """(what, kernel, argument types) of every kernel here, as the launchers call them, for
    tests/cuda_ptx_check.py (compiled to PTX for a real GPU without one): flat operands of
    the operands' dtype with int strides, strided ones as (base, start, strides) over a
    merged 2-d shape, the parameters p, q scalars of the operands' dtype."""
    import numba
    from numba import types

    from .runtime import vec as arr

    I64 = numba.int64

    def tup(n):
        return types.UniTuple(I64, n)

    floats = (np.float32, np.float64)
    ints = (np.int64, np.int32)  # (bodies the op layer also runs on integer tensors)
    int_ok = {"hardtanh", "addcmul"}
    checks = []
    for arity, table, factory in ((1, scalar.UNARY_P, _unary_p_kernels),
                                  (2, scalar.BINARY_P, _binary_p_kernels),
                                  (3, scalar.TERNARY_P, _ternary_p_kernels)):
        for name in table:
            for dt in floats + (ints if name in int_ok else ()):
                T = numba.from_dtype(np.dtype(dt))
                flat, strided = kernels(arity, name, dt, table, factory)
                checks.append((f"{name} {T} flat", flat,
                               (arr(T),) * (arity + 1) + (I64,) * arity + (T, T)))
                checks.append((f"{name} {T} strided", strided,
                               (arr(T), I64, tup(2)) * arity + (tup(2), arr(T), T, T)))
    return checks
