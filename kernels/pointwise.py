"""Elementwise kernels whose bodies take scalar parameters: ``f(x, p, q)``, ``f(a, b, p, q)``
and ``f(a, b, c, p, q)`` (tables ``UNARY_P``, ``BINARY_P``, ``TERNARY_P`` in ``scalar.py``).

The parameters (a slope, bounds, a weight, ``value=``) arrive as arguments of the operands'
dtype, so one compiled kernel serves every value. The loops are flat: a binary loop reads
each operand at full size or as a scalar (size 1), a ternary loop reads all three at full
size; an operand broadcast any other way is materialised first. That keeps the loops short
and covers the cases that matter for speed: an activation, its backward under a full or a
scalar gradient, an optimizer's same-shape update.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from . import elementwise as ew
from . import scalar
from .elementwise import JIT, _body, compact

_kernels: dict = {}


def _unary_p_loops(f, doc, key):
    @njit(**JIT)
    def flat(a, out, p, q):
        for i in range(out.size):
            out[i] = f(a[i], p, q)

    @njit(parallel=True, **JIT)
    def flat_par(a, out, p, q):
        for i in prange(out.size):
            out[i] = f(a[i], p, q)

    flat.__doc__ = flat_par.__doc__ = doc
    return flat, flat_par


def _binary_p_loops(f, doc, key):
    @njit(**JIT)
    def flat(a, b, out, p, q):
        n = out.size
        if a.size == n and b.size == n:
            for i in range(n):
                out[i] = f(a[i], b[i], p, q)
        elif a.size == 1 and b.size == 1:
            s = f(a[0], b[0], p, q)
            for i in range(n):
                out[i] = s
        elif b.size == 1:
            s = b[0]
            for i in range(n):
                out[i] = f(a[i], s, p, q)
        else:
            s = a[0]
            for i in range(n):
                out[i] = f(s, b[i], p, q)

    @njit(parallel=True, **JIT)
    def flat_par(a, b, out, p, q):
        # One prange loop per case (a prange over chunks would not vectorize)
        n = out.size
        if a.size == n and b.size == n:
            for i in prange(n):
                out[i] = f(a[i], b[i], p, q)
        elif a.size == 1 and b.size == 1:
            s = f(a[0], b[0], p, q)
            for i in prange(n):
                out[i] = s
        elif b.size == 1:
            s = b[0]
            for i in prange(n):
                out[i] = f(a[i], s, p, q)
        else:
            s = a[0]
            for i in prange(n):
                out[i] = f(s, b[i], p, q)

    flat.__doc__ = flat_par.__doc__ = doc
    return flat, flat_par


def _ternary_p_loops(f, doc, key):
    @njit(**JIT)
    def flat(a, b, c, out, p, q):
        for i in range(out.size):
            out[i] = f(a[i], b[i], c[i], p, q)

    @njit(parallel=True, **JIT)
    def flat_par(a, b, c, out, p, q):
        for i in prange(out.size):
            out[i] = f(a[i], b[i], c[i], p, q)

    flat.__doc__ = flat_par.__doc__ = doc
    return flat, flat_par


def _loops(table, factory, name, dtype):
    key = (factory, name, dtype)
    loops = _kernels.get(key)
    if loops is None:
        stable = f"{factory.__name__}:{name}:{dtype}"
        loops = factory(_body(table, name, dtype, stable), table[name][1], stable)
        _kernels[key] = loops
    return loops


def _flat(v: np.ndarray, shape: tuple, n: int) -> np.ndarray:
    """Operand `v` (compact, broadcastable to `shape` of `n` elements) as a flat loop reads
    it: as is when it has n elements or one, else materialised at full size."""
    if v.size != n and v.size != 1:
        v = np.ascontiguousarray(np.broadcast_to(v, shape))
    return v.reshape(-1)


def _params(dtype, p, q) -> tuple:
    """The parameters as scalars of the operands' dtype: one compiled kernel per dtype."""
    t = np.dtype(dtype).type
    return t(p), t(q)


# --------------------------------------------------------------------------- launchers

def unary_p(name: str, a: np.ndarray, p=0, q=0, out_dtype=None) -> np.ndarray:
    """Apply body `name` with parameters `p`, `q` to `a`."""
    a = np.require(a, requirements="C")
    out = np.empty(a.shape, dtype=out_dtype or a.dtype)
    if out.size:
        flat, flat_par = _loops(scalar.UNARY_P, _unary_p_loops, name, a.dtype)
        (flat_par if out.size >= ew.PARALLEL_MIN else flat)(
            a.reshape(-1), out.reshape(-1), *_params(a.dtype, p, q))
    return out


def binary_p(name: str, a: np.ndarray, b: np.ndarray, shape: tuple, p=0, q=0,
             out_dtype=None) -> np.ndarray:
    """Apply body `name` with parameters `p`, `q` to `a` and `b`, broadcast to `shape`."""
    out = np.empty(shape, dtype=out_dtype or a.dtype)
    n = out.size
    if n:
        a, b = _flat(compact(a), shape, n), _flat(compact(b), shape, n)
        flat, flat_par = _loops(scalar.BINARY_P, _binary_p_loops, name, a.dtype)
        (flat_par if n >= ew.PARALLEL_MIN else flat)(a, b, out.reshape(-1),
                                                     *_params(a.dtype, p, q))
    return out


def ternary_p(name: str, a: np.ndarray, b: np.ndarray, c: np.ndarray, shape: tuple, p=0,
              q=0, out_dtype=None) -> np.ndarray:
    """Apply body `name` with parameters `p`, `q` to `a`, `b`, `c`, broadcast to `shape`
    (operands that are not of `shape` are materialised)."""
    out = np.empty(shape, dtype=out_dtype or a.dtype)
    n = out.size
    if n:
        a, b, c = (np.ascontiguousarray(np.broadcast_to(v, shape)).reshape(-1)
                   for v in (a, b, c))
        flat, flat_par = _loops(scalar.TERNARY_P, _ternary_p_loops, name, a.dtype)
        (flat_par if n >= ew.PARALLEL_MIN else flat)(a, b, c, out.reshape(-1),
                                                     *_params(a.dtype, p, q))
    return out
