"""Softmax, log-softmax and logsumexp kernels for the CPU, forward and backward: each one
kernel that reads its operands once from memory.

Operands are contiguous (outer, r, inner) blocks normalised or reduced along the middle axis,
in one of two layouts:

* ``rows`` (inner == 1): a unit is one row of r contiguous elements, which stays in L1 while
  the kernel makes its passes over it (maximum, exponentials, sum, scaling);
* ``cols`` (inner > 1): a unit is one outer index and a block of up to ``_LANES`` inner
  lanes; every loop runs over contiguous lanes, so it vectorizes.

Every unit subtracts its maximum before exponentiating (no overflow: torch's results for rows
such as [1000, 0, -1000] and nan for rows of -inf) and sums in float64. float32 kernels use
the vectorizable ``fastmath.exp`` when that module is present (libm's ``exp`` is a scalar call,
ten times slower here); float64 kernels use libm. Row maxima and sums are separate small
kernels (``_row_max``, ``_row_sum``, ``_row_dot``): a max reduction vectorizes only over
independent lanes, a float64 sum only when it may reassociate, and that permission must not
reach the exponential's range reduction. From ``PARALLEL_MIN`` elements on, units run in
parallel (``prange``) in chunks that share their scratch buffers.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange
from numba.extending import overload

try:
    from . import fastmath as _fastmath
except ImportError:  # pragma: no cover - libm alone is correct, only slower
    _fastmath = None

JIT = dict(cache=True, error_model="numpy", nogil=True)
# A dict, not a set: these options are pickled into the kernels' cache keys, and a set's
# order changes from one process to the next.
REASSOC = {"reassoc": True, "nsz": True, "contract": True}
PARALLEL_MIN = 1 << 21  # see kernels/elementwise.py
_LANES = 256  # inner lanes per unit of the cols layout
_MAX_LANES = 16  # independent running maxima in a row: what lets a max reduction vectorize
_CHUNKS = 64  # parallel chunks of units (each allocates its scratch once)


def _stable(dispatcher, key: str):
    """A fixed identity for a dispatcher held in a kernel's closure, so that Numba's disk
    cache finds the kernel again (see ``elementwise._stable``)."""
    dispatcher._set_uuid(f"jitgrad.kernels.softmax:{key}")
    return dispatcher


# --------------------------------------------------------------------------- row reductions

@njit(**JIT)
def _row_max(a, lanes):
    """max_k a[k] over independent lanes (nan is skipped; all -inf or nan gives -inf)"""
    n = a.size
    L = _MAX_LANES
    for q in range(L):
        lanes[q] = -np.inf
    body = n - n % L
    for k0 in range(0, body, L):
        for q in range(L):
            v = a[k0 + q]
            b = lanes[q]
            lanes[q] = v if v > b else b
    m = lanes[0]
    for q in range(1, L):
        m = lanes[q] if lanes[q] > m else m
    for k in range(body, n):
        v = a[k]
        m = v if v > m else m
    return m


@njit(fastmath=REASSOC, **JIT)
def _row_sum(a):
    """sum_k a[k] in float64"""
    s = 0.0
    for k in range(a.size):
        s += a[k]
    return s


@njit(fastmath=REASSOC, **JIT)
def _row_dot(a, b):
    """sum_k a[k] * b[k] in float64"""
    s = 0.0
    for k in range(a.size):
        s += np.float64(a[k]) * b[k]
    return s


for _f in (_row_max, _row_sum, _row_dot):  # the kernels' closures refer to them
    _stable(_f, _f.__name__)


def _like(v, ref):
    """v converted to the scalar type of `ref` (a float64 row sum applied to float32 data
    would otherwise widen the whole loop to float64 and halve its vector width)."""
    return v


@overload(_like)
def _like_impl(v, ref):
    ty = ref

    def impl(v, ref):
        return ty(v)
    return impl


def _chunk(n_units: int) -> int:
    return max(1, -(-n_units // _CHUNKS))


# --------------------------------------------------------------------------- kernel factory

def _build(exp, key: str) -> dict:
    """The kernels of one float dtype, exponentiating with `exp` (an inline dispatcher)."""

    @njit(inline="always")
    def softmax_rows(x, out, log, lo, hi):
        lanes = np.empty(_MAX_LANES, dtype=x.dtype)
        for i in range(lo, hi):
            xr = x[i]
            orow = out[i]
            m = _row_max(xr, lanes)
            for k in range(xr.size):
                orow[k] = exp(xr[k] - m)
            s = _row_sum(orow)
            if log:  # (x - m) - log(s), as torch: no rounding of m + log(s) to float32
                ls = _like(math.log(s), xr[0])
                for k in range(xr.size):
                    orow[k] = (xr[k] - m) - ls
            else:
                inv = _like(1.0 / s, xr[0])
                for k in range(xr.size):
                    orow[k] = orow[k] * inv

    @njit(inline="always")
    def softmax_cols(x, out, log, lo, hi):
        outer, r, inner = x.shape
        nb = (inner + _LANES - 1) // _LANES
        m = np.empty(_LANES, dtype=x.dtype)
        s = np.empty(_LANES, dtype=np.float64)
        c = np.empty(_LANES, dtype=x.dtype)  # per-lane constants in the data's precision
        for u in range(lo, hi):
            o = u // nb
            j0 = (u % nb) * _LANES
            j1 = min(inner, j0 + _LANES)
            w = j1 - j0
            for j in range(w):
                m[j] = -np.inf
                s[j] = 0.0
            for k in range(r):  # (1-d views: indices that Numba knows are >= 0 vectorize)
                xr = x[o, k, j0:j1]
                for j in range(w):
                    v = xr[j]
                    m[j] = v if v > m[j] else m[j]
            for k in range(r):
                xr = x[o, k, j0:j1]
                orow = out[o, k, j0:j1]
                for j in range(w):
                    orow[j] = exp(xr[j] - m[j])
                for j in range(w):
                    s[j] += orow[j]
            if log:
                for j in range(w):
                    c[j] = math.log(s[j])
                for k in range(r):
                    xr = x[o, k, j0:j1]
                    orow = out[o, k, j0:j1]
                    for j in range(w):
                        orow[j] = (xr[j] - m[j]) - c[j]
            else:
                for j in range(w):
                    c[j] = 1.0 / s[j]
                for k in range(r):
                    orow = out[o, k, j0:j1]
                    for j in range(w):
                        orow[j] = orow[j] * c[j]

    @njit(inline="always")
    def backward_rows(g, y, out, log, lo, hi):
        for i in range(lo, hi):
            gr = g[i]
            yr = y[i]
            orow = out[i]
            if log:
                s = _like(_row_sum(gr), yr[0])
                for k in range(yr.size):
                    orow[k] = gr[k] - exp(yr[k]) * s
            else:
                s = _like(_row_dot(gr, yr), yr[0])
                for k in range(yr.size):
                    orow[k] = yr[k] * (gr[k] - s)

    @njit(inline="always")
    def backward_cols(g, y, out, log, lo, hi):
        outer, r, inner = y.shape
        nb = (inner + _LANES - 1) // _LANES
        s = np.empty(_LANES, dtype=np.float64)
        c = np.empty(_LANES, dtype=y.dtype)
        for u in range(lo, hi):
            o = u // nb
            j0 = (u % nb) * _LANES
            j1 = min(inner, j0 + _LANES)
            w = j1 - j0
            for j in range(w):
                s[j] = 0.0
            for k in range(r):
                gr = g[o, k, j0:j1]
                yr = y[o, k, j0:j1]
                if log:
                    for j in range(w):
                        s[j] += gr[j]
                else:
                    for j in range(w):
                        s[j] += np.float64(gr[j]) * yr[j]
            for j in range(w):
                c[j] = s[j]
            for k in range(r):
                gr = g[o, k, j0:j1]
                yr = y[o, k, j0:j1]
                orow = out[o, k, j0:j1]
                if log:
                    for j in range(w):
                        orow[j] = gr[j] - exp(yr[j]) * c[j]
                else:
                    for j in range(w):
                        orow[j] = yr[j] * (gr[j] - c[j])

    for name, f in (("softmax_rows", softmax_rows), ("softmax_cols", softmax_cols),
                    ("backward_rows", backward_rows), ("backward_cols", backward_cols)):
        _stable(f, f"{name}:{key}")

    @njit(**JIT)
    def rows(x, out, log):
        """out[i, :] = softmax(x[i, :]) (log_softmax when log), shifted by the row's max"""
        softmax_rows(x, out, log, 0, x.shape[0])

    @njit(parallel=True, **JIT)
    def rows_par(x, out, log, chunk):
        """softmax (log_softmax) of each row x[i, :], chunks of rows in parallel"""
        n = x.shape[0]
        for c in prange((n + chunk - 1) // chunk):
            softmax_rows(x, out, log, c * chunk, min(n, (c + 1) * chunk))

    @njit(**JIT)
    def cols(x, out, log, units):
        """out[o, k, j] = softmax (log_softmax) of x[o, :, j] at k"""
        softmax_cols(x, out, log, 0, units)

    @njit(parallel=True, **JIT)
    def cols_par(x, out, log, units, chunk):
        """softmax (log_softmax) of x[o, :, j] at k, chunks of lane blocks in parallel"""
        for c in prange((units + chunk - 1) // chunk):
            softmax_cols(x, out, log, c * chunk, min(units, (c + 1) * chunk))

    @njit(**JIT)
    def backward_rows_k(g, y, out, log):
        """out[i, k] = y[i, k] * (g[i, k] - g[i, :].y[i, :]) (log: g - exp(y) * sum(g[i, :]))"""
        backward_rows(g, y, out, log, 0, y.shape[0])

    @njit(parallel=True, **JIT)
    def backward_rows_par(g, y, out, log, chunk):
        """softmax (log_softmax) backward of each row, chunks of rows in parallel"""
        n = y.shape[0]
        for c in prange((n + chunk - 1) // chunk):
            backward_rows(g, y, out, log, c * chunk, min(n, (c + 1) * chunk))

    @njit(**JIT)
    def backward_cols_k(g, y, out, log, units):
        """softmax (log_softmax) backward along k of lanes (o, j)"""
        backward_cols(g, y, out, log, 0, units)

    @njit(parallel=True, **JIT)
    def backward_cols_par(g, y, out, log, units, chunk):
        """softmax (log_softmax) backward along k of lanes (o, j), chunks in parallel"""
        for c in prange((units + chunk - 1) // chunk):
            backward_cols(g, y, out, log, c * chunk, min(units, (c + 1) * chunk))

    @njit(**JIT)
    def logsumexp3(x, out):
        """out[o, j] = m + log(sum_k exp(x[o, k, j] - m)), m = max_k x[o, k, j] or 0 if inf"""
        outer, r, inner = x.shape
        if inner == 1:
            x2 = x.reshape((outer, r))
            lanes = np.empty(_MAX_LANES, dtype=x.dtype)
            e = np.empty(r, dtype=x.dtype)
            for o in range(outer):
                row = x2[o]
                mo = _row_max(row, lanes)
                if math.isinf(mo):
                    mo = 0
                for k in range(r):
                    e[k] = exp(row[k] - mo)
                out[o, 0] = math.log(_row_sum(e)) + mo
            return
        m = np.empty(inner, dtype=x.dtype)
        s = np.empty(inner, dtype=np.float64)
        for o in range(outer):
            for j in range(inner):
                m[j] = -np.inf
                s[j] = 0.0
            for k in range(r):
                for j in range(inner):
                    v = x[o, k, j]
                    m[j] = v if v > m[j] else m[j]
            for j in range(inner):
                if math.isinf(m[j]):
                    m[j] = 0
            for k in range(r):
                for j in range(inner):
                    s[j] += exp(x[o, k, j] - m[j])
            for j in range(inner):
                out[o, j] = math.log(s[j]) + m[j]

    @njit(**JIT)
    def logsumexp_backward3(g, x, res, out):
        """out[o, k, j] = g[o, j] * exp(x[o, k, j] - res[o, j])"""
        outer, r, inner = x.shape
        if inner == 1:
            x2 = x.reshape((outer, r))
            o2 = out.reshape((outer, r))
            for o in range(outer):
                row = x2[o]
                orow = o2[o]
                gv = g[o, 0]
                rv = res[o, 0]
                for k in range(r):
                    orow[k] = gv * exp(row[k] - rv)
            return
        for o in range(outer):
            for k in range(r):
                for j in range(inner):
                    out[o, k, j] = g[o, j] * exp(x[o, k, j] - res[o, j])

    return dict(rows=rows, rows_par=rows_par, cols=cols, cols_par=cols_par,
                backward_rows=backward_rows_k, backward_rows_par=backward_rows_par,
                backward_cols=backward_cols_k, backward_cols_par=backward_cols_par,
                logsumexp=logsumexp3, logsumexp_backward=logsumexp_backward3)


def _libm_exp(x):
    return math.exp(x)


_EXP = {np.dtype(np.float64): (_stable(njit(inline="always")(_libm_exp), "libm_exp"), "f64")}
_EXP[np.dtype(np.float32)] = ((_fastmath.exp, "f32_fastmath") if _fastmath is not None
                              else (_EXP[np.dtype(np.float64)][0], "f32"))
_kernels: dict = {}


def _k(dtype: np.dtype) -> dict:
    ks = _kernels.get(dtype)
    if ks is None:
        ks = _kernels[dtype] = _build(*_EXP[dtype])
    return ks


# --------------------------------------------------------------------------- launchers

def _block(a: np.ndarray, dim: int) -> np.ndarray:
    a = np.ascontiguousarray(a)
    if a.ndim == 0:
        return a.reshape(1, 1, 1)
    outer = int(np.prod(a.shape[:dim], dtype=np.int64))
    inner = int(np.prod(a.shape[dim + 1:], dtype=np.int64))
    return a.reshape(outer, a.shape[dim], inner)


def _col_units(b: np.ndarray) -> int:
    return b.shape[0] * ((b.shape[2] + _LANES - 1) // _LANES)


def softmax(x: np.ndarray, dim: int, log: bool) -> np.ndarray:
    """softmax (or, with `log`, log_softmax) of float array `x` along `dim`."""
    out = np.empty(x.shape, dtype=x.dtype)
    if out.size == 0:
        return out
    ks = _k(x.dtype)
    xb, ob = _block(x, dim), _block(out, dim)
    par = x.size >= PARALLEL_MIN
    if xb.shape[2] == 1:
        rows = xb.shape[0], xb.shape[1]
        x2, o2 = xb.reshape(rows), ob.reshape(rows)
        if par and rows[0] > 1:
            ks["rows_par"](x2, o2, log, _chunk(rows[0]))
        else:
            ks["rows"](x2, o2, log)
    else:
        units = _col_units(xb)
        if par and units > 1:
            ks["cols_par"](xb, ob, log, units, _chunk(units))
        else:
            ks["cols"](xb, ob, log, units)
    return out


def softmax_backward(g: np.ndarray, y: np.ndarray, dim: int, log: bool) -> np.ndarray:
    """The gradient of softmax (log_softmax with `log`) along `dim` for output y and output
    gradient g (same shape and dtype)."""
    out = np.empty(y.shape, dtype=y.dtype)
    if out.size == 0:
        return out
    ks = _k(y.dtype)
    gb, yb, ob = _block(g, dim), _block(y, dim), _block(out, dim)
    par = y.size >= PARALLEL_MIN
    if yb.shape[2] == 1:
        rows = yb.shape[0], yb.shape[1]
        g2, y2, o2 = gb.reshape(rows), yb.reshape(rows), ob.reshape(rows)
        if par and rows[0] > 1:
            ks["backward_rows_par"](g2, y2, o2, log, _chunk(rows[0]))
        else:
            ks["backward_rows"](g2, y2, o2, log)
    else:
        units = _col_units(yb)
        if par and units > 1:
            ks["backward_cols_par"](gb, yb, ob, log, units, _chunk(units))
        else:
            ks["backward_cols"](gb, yb, ob, log, units)
    return out


def logsumexp(x3: np.ndarray) -> np.ndarray:
    """log(sum(exp(x))) of a contiguous float (outer, r, inner) block over axis 1."""
    out = np.empty((x3.shape[0], x3.shape[2]), dtype=x3.dtype)
    if out.size == 0:
        return out
    if x3.shape[1] == 0:
        out[...] = -np.inf
        return out
    _k(x3.dtype)["logsumexp"](x3, out)
    return out


def logsumexp_backward(g: np.ndarray, x3: np.ndarray, res: np.ndarray) -> np.ndarray:
    """g * exp(x - logsumexp(x)) on a float (outer, r, inner) block; g and res have the
    reduced shape."""
    out = np.empty(x3.shape, dtype=x3.dtype)
    if out.size:
        lanes = x3.shape[0], x3.shape[2]
        _k(x3.dtype)["logsumexp_backward"](
            np.ascontiguousarray(g, dtype=x3.dtype).reshape(lanes), x3,
            np.ascontiguousarray(res, dtype=x3.dtype).reshape(lanes), out)
    return out
