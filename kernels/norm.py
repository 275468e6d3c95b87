"""Fused normalisation kernels for the CPU: layer norm over rows, batch norm over channels.

Layer norm sees its input as contiguous rows (M, K), one row per normalised slice; batch norm
sees (N, C, D), channel c made of the N blocks x[:, c, :]. Statistics and gradient sums
accumulate in float64 (two passes for the variance); elementwise work stays in the input's
precision. Parallel variants split rows (layer norm) or the batch dimension (batch norm) into
chunks, each with its own float64 partial sums, which the launcher adds up.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import njit, prange

from .loss import cast

__all__ = ["batch_norm", "batch_norm_grad", "layer_norm", "layer_norm_grad"]

JIT = {"cache": True, "error_model": "numpy", "nogil": True}
FAST = {"reassoc": True, "nsz": True, "contract": True}
PARALLEL_MIN = 1 << 21  # see kernels/elementwise.py


# --------------------------------------------------------------------------- layer norm

@njit(inline="always")
def _ln_rows(x, w, b, eps, y, mean, rstd, lo, hi):
    K = x.shape[1]
    for r in range(lo, hi):
        xr = x[r]
        yr = y[r]
        s = 0.0
        for k in range(K):
            s += xr[k]
        mu = s / K
        v = 0.0
        for k in range(K):
            d = xr[k] - mu
            v += d * d
        rs = 1.0 / math.sqrt(v / K + eps)
        mean[r] = mu
        rstd[r] = rs
        m = cast(mu, xr[0])
        a = cast(rs, xr[0])
        if w.size and b.size:
            for k in range(K):
                yr[k] = (xr[k] - m) * a * w[k] + b[k]
        elif w.size:
            for k in range(K):
                yr[k] = (xr[k] - m) * a * w[k]
        elif b.size:
            for k in range(K):
                yr[k] = (xr[k] - m) * a + b[k]
        else:
            for k in range(K):
                yr[k] = (xr[k] - m) * a


@njit(fastmath=FAST, **JIT)
def layer_norm_forward(x, w, b, eps, y, mean, rstd):
    """y[r,k] = (x[r,k] - mean[r]) * rstd[r] * w[k] + b[k], rstd = 1/sqrt(var + eps) (biased
    variance of row r); w, b of size 0 mean none"""
    _ln_rows(x, w, b, eps, y, mean, rstd, 0, x.shape[0])


@njit(parallel=True, fastmath=FAST, **JIT)
def layer_norm_forward_par(x, w, b, eps, y, mean, rstd, chunk):
    """layer_norm_forward, chunks of rows in parallel"""
    M = x.shape[0]
    for p in prange((M + chunk - 1) // chunk):
        _ln_rows(x, w, b, eps, y, mean, rstd, p * chunk, min(M, (p + 1) * chunk))


@njit(inline="always")
def _ln_grad_rows(g, x, mean, rstd, w, dx, dw, db, lo, hi):
    K = x.shape[1]
    for r in range(lo, hi):
        xr = x[r]
        gr = g[r]
        m = cast(mean[r], xr[0])
        rs = cast(rstd[r], xr[0])
        A = 0.0
        B = 0.0
        for k in range(K):
            xh = (xr[k] - m) * rs
            gw = gr[k] * w[k] if w.size else gr[k]
            A += gw
            B += gw * xh
        if dw.size:
            for k in range(K):
                dw[k] += gr[k] * ((xr[k] - m) * rs)
                db[k] += gr[k]
        if dx.size:
            dxr = dx[r]
            a = cast(A / K, xr[0])
            c = cast(B / K, xr[0])
            for k in range(K):
                xh = (xr[k] - m) * rs
                gw = gr[k] * w[k] if w.size else gr[k]
                dxr[k] = rs * (gw - a - xh * c)


@njit(fastmath=FAST, **JIT)
def layer_norm_backward(g, x, mean, rstd, w, dx, dw, db):
    """dx[r,k] = rstd[r]*(gw - mean_k(gw) - xh*mean_k(gw*xh)), gw = g*w, xh the normalised
    x; dw[k] += sum_r g*xh, db[k] += sum_r g (float64); dx or dw of size 0: not wanted"""
    _ln_grad_rows(g, x, mean, rstd, w, dx, dw, db, 0, x.shape[0])


@njit(parallel=True, fastmath=FAST, **JIT)
def layer_norm_backward_par(g, x, mean, rstd, w, dx, dwp, dbp, chunk):
    """layer_norm_backward, chunks of rows in parallel, chunk p summing into dwp[p], dbp[p]"""
    M = x.shape[0]
    for p in prange((M + chunk - 1) // chunk):
        _ln_grad_rows(g, x, mean, rstd, w, dx, dwp[p], dbp[p], p * chunk,
                      min(M, (p + 1) * chunk))


# --------------------------------------------------------------------------- batch norm

@njit(inline="always")
def _chan_sums(a, b, ca, cb, s1, s2, lo, hi):
    N, C, D = a.shape
    if D == 1:  # (N, C): channels along the contiguous axis
        a2 = a.reshape((N, C))
        b2 = b.reshape((N, C))
        for n in range(lo, hi):
            for c in range(C):
                u = a2[n, c]
                s1[c] += u
                s2[c] += (u - ca[c]) * (b2[n, c] - cb[c])
    else:
        for n in range(lo, hi):
            for c in range(C):
                t1 = 0.0
                t2 = 0.0
                cac = ca[c]
                cbc = cb[c]
                for d in range(D):
                    u = a[n, c, d]
                    t1 += u
                    t2 += (u - cac) * (b[n, c, d] - cbc)
                s1[c] += t1
                s2[c] += t2


@njit(inline="always")
def _chan_affine(a, b, p, q, r, out, lo, hi):
    N, C, D = a.shape
    if D == 1:
        a2 = a.reshape((N, C))
        b2 = b.reshape((N, C))
        o2 = out.reshape((N, C))
        for n in range(lo, hi):
            for c in range(C):
                o2[n, c] = p[c] * a2[n, c] + q[c] * b2[n, c] + r[c]
    else:
        for n in range(lo, hi):
            for c in range(C):
                pc = p[c]
                qc = q[c]
                rc = r[c]
                for d in range(D):
                    out[n, c, d] = pc * a[n, c, d] + qc * b[n, c, d] + rc


@njit(inline="always")
def _chan_total(a, b, ca, cb, chunk, P):
    """Per-channel float64 sum(a) and sum((a - ca)*(b - cb)) over the batch: chunks of it
    (in parallel when the caller is compiled parallel) into partial rows, then added."""
    N, C, _ = a.shape
    s1p = np.zeros((P, C))
    s2p = np.zeros((P, C))
    for p in prange(P):
        _chan_sums(a, b, ca, cb, s1p[p], s2p[p], p * chunk, min(N, (p + 1) * chunk))
    s1 = np.zeros(C)
    s2 = np.zeros(C)
    for p in range(P):
        for c in range(C):
            s1[c] += s1p[p, c]
            s2[c] += s2p[p, c]
    return s1, s2


@njit(inline="always")
def _chan_apply(a, b, p, q, r, out, chunk, P):
    N = a.shape[0]
    pt = np.empty(p.size, dtype=out.dtype)
    qt = np.empty(p.size, dtype=out.dtype)
    rt = np.empty(p.size, dtype=out.dtype)
    for c in range(p.size):
        pt[c] = p[c]
        qt[c] = q[c]
        rt[c] = r[c]
    for k in prange(P):
        _chan_affine(a, b, pt, qt, rt, out, k * chunk, min(N, (k + 1) * chunk))


@njit(inline="always")
def _bn_forward(x, w, b, eps, batch, mean, var, y, chunk, P):
    N, C, D = x.shape
    M = N * D
    zeros = np.zeros(C)
    if batch:
        s1, _ = _chan_total(x, x, zeros, zeros, chunk, P)
        for c in range(C):
            mean[c] = s1[c] / M
        _, s2 = _chan_total(x, x, mean, mean, chunk, P)
        for c in range(C):
            var[c] = s2[c] / M
    scale = np.empty(C)
    shift = np.empty(C)
    for c in range(C):
        scale[c] = 1.0 / math.sqrt(var[c] + eps)
        if w.size:
            scale[c] *= w[c]
        shift[c] = -mean[c] * scale[c]
        if b.size:
            shift[c] += b[c]
    _chan_apply(x, x, scale, zeros, shift, y, chunk, P)


@njit(fastmath=FAST, **JIT)
def batch_norm_forward(x, w, b, eps, batch, mean, var, y, chunk, P):
    """y[n,c,d] = (x[n,c,d] - mean[c]) / sqrt(var[c] + eps) * w[c] + b[c]; with `batch`,
    mean and (biased) var are first computed over n, d (float64, two passes) and written out,
    else they are the given running statistics; w, b of size 0 mean none"""
    _bn_forward(x, w, b, eps, batch, mean, var, y, chunk, P)


@njit(parallel=True, fastmath=FAST, **JIT)
def batch_norm_forward_par(x, w, b, eps, batch, mean, var, y, chunk, P):
    """batch_norm_forward, P chunks of the batch in parallel"""
    _bn_forward(x, w, b, eps, batch, mean, var, y, chunk, P)


@njit(inline="always")
def _bn_backward(g, x, mean, invstd, w, batch, want_x, dx, dw, db, chunk, P):
    N, C, D = x.shape
    M = N * D
    zeros = np.zeros(C)
    s1, s2 = _chan_total(g, x, zeros, mean, chunk, P)  # sum(g), sum(g * (x - mean))
    for c in range(C):
        db[c] = s1[c]
        dw[c] = s2[c] * invstd[c]
    if want_x:
        p = np.empty(C)
        q = np.zeros(C)
        r = np.zeros(C)
        for c in range(C):
            p[c] = invstd[c] * (w[c] if w.size else 1.0)
            if batch:
                q[c] = -p[c] * invstd[c] * invstd[c] * s2[c] / M
                r[c] = -p[c] * s1[c] / M - q[c] * mean[c]
        _chan_apply(g, x, p, q, r, dx, chunk, P)


@njit(fastmath=FAST, **JIT)
def batch_norm_backward(g, x, mean, invstd, w, batch, want_x, dx, dw, db, chunk, P):
    """db[c] = sum g, dw[c] = sum g*xh (xh the normalised x), over n, d (float64); with
    want_x, dx = w*invstd*(g - db/M - xh*dw/M) for batch statistics, w*invstd*g for running
    ones (M = N*D)"""
    _bn_backward(g, x, mean, invstd, w, batch, want_x, dx, dw, db, chunk, P)


@njit(parallel=True, fastmath=FAST, **JIT)
def batch_norm_backward_par(g, x, mean, invstd, w, batch, want_x, dx, dw, db, chunk, P):
    """batch_norm_backward, P chunks of the batch in parallel"""
    _bn_backward(g, x, mean, invstd, w, batch, want_x, dx, dw, db, chunk, P)


# --------------------------------------------------------------------------- launchers

def _chunks(rows: int, per_row: int) -> tuple:
    """(chunk, count): about 2**15 elements per chunk, at least one chunk per thread."""
    nt = numba.get_num_threads()
    chunk = max(1, min((1 << 15) // max(per_row, 1), -(-rows // nt)))
    return chunk, -(-rows // chunk)


def layer_norm(x2: np.ndarray, w: np.ndarray | None, b: np.ndarray | None, eps: float,
               shape=None):
    """Normalise the rows of contiguous x2 (M, K); w, b (K,) or None. Returns (y, mean, rstd):
    y a fresh array of `shape` (x2's by default), the statistics float64 (M,)."""
    M, K = x2.shape
    yo = np.empty(x2.shape if shape is None else shape, dtype=x2.dtype)
    y = yo.reshape(x2.shape)
    mean, rstd = np.empty(M), np.empty(M)
    none = np.empty(0, dtype=x2.dtype)
    w = none if w is None else w
    b = none if b is None else b
    if y.size:
        if y.size >= PARALLEL_MIN:
            layer_norm_forward_par(x2, w, b, eps, y, mean, rstd, _chunks(M, K)[0])
        else:
            layer_norm_forward(x2, w, b, eps, y, mean, rstd)
    elif M:
        mean[:], rstd[:] = np.nan, np.nan
    return yo, mean, rstd


def layer_norm_grad(g2, x2, mean, rstd, w, want_x: bool, want_wb: bool, shape=None):
    """Gradients of layer_norm wrt x2 (None unless want_x; a fresh array of `shape`, x2's by
    default) and wrt w and b (float64 sums, None unless want_wb)."""
    M, K = x2.shape
    dxo = np.empty((x2.shape if shape is None else shape) if want_x else 0, dtype=x2.dtype)
    dx = dxo.reshape(x2.shape) if want_x else dxo
    w = np.empty(0, dtype=x2.dtype) if w is None else w
    kk = K if want_wb else 0
    if x2.size >= PARALLEL_MIN:
        chunk, n = _chunks(M, K)
        dwp, dbp = np.zeros((n, kk)), np.zeros((n, kk))
        layer_norm_backward_par(g2, x2, mean, rstd, w, dx, dwp, dbp, chunk)
        dw, db = dwp.sum(0), dbp.sum(0)
    else:
        dw, db = np.zeros(kk), np.zeros(kk)
        if x2.size:
            layer_norm_backward(g2, x2, mean, rstd, w, dx, dw, db)
    return (dxo if want_x else None), (dw if want_wb else None), (db if want_wb else None)


def _batch_split(N: int, per: int, size: int) -> tuple:
    """(chunk, P, parallel) for a batch of N blocks of `per` elements."""
    if size >= PARALLEL_MIN and N > 1:
        chunk, P = _chunks(N, per)
        return chunk, P, True
    return max(N, 1), 1, False


def batch_norm(x3: np.ndarray, w, b, eps: float, running: tuple | None, shape=None):
    """Normalise contiguous x3 (N, C, D) per channel; w, b (C,) or None. With `running`
    = (mean, var) those statistics are used, else the batch's. Returns (y, mean, var): y a
    fresh array of `shape` (x3's by default), mean and biased var float64 (C,)."""
    N, C, D = x3.shape
    yo = np.empty(x3.shape if shape is None else shape, dtype=x3.dtype)
    none = np.empty(0, dtype=x3.dtype)
    w = none if w is None else np.ascontiguousarray(w)
    b = none if b is None else np.ascontiguousarray(b)
    if running is None:
        mean, var = np.empty(C), np.empty(C)
    else:
        mean = np.array(running[0], dtype=np.float64)
        var = np.array(running[1], dtype=np.float64)
    if x3.size == 0:
        if running is None:
            mean[:], var[:] = np.nan, np.nan
        return yo, mean, var
    chunk, P, par = _batch_split(N, C * D, x3.size)
    (batch_norm_forward_par if par else batch_norm_forward)(
        x3, w, b, eps, running is None, mean, var, yo.reshape(x3.shape), chunk, P)
    return yo, mean, var


def batch_norm_grad(g3, x3, mean, invstd, w, batch: bool, want_x: bool, shape=None):
    """Gradients of batch_norm: (dx or None, dw, db), dx a fresh array of `shape` (x3's by
    default), dw and db float64 (C,)."""
    N, C, D = x3.shape
    dxo = np.empty((x3.shape if shape is None else shape) if want_x else 0, dtype=x3.dtype)
    dx = dxo.reshape(x3.shape) if want_x else dxo
    w = np.empty(0, dtype=x3.dtype) if w is None else np.ascontiguousarray(w)
    dw, db = np.zeros(C), np.zeros(C)
    if x3.size:
        chunk, P, par = _batch_split(N, C * D, x3.size)
        (batch_norm_backward_par if par else batch_norm_backward)(
            g3, x3, mean, invstd, w, batch, want_x, dx, dw, db, chunk, P)
    return (dxo if want_x else None), dw, db
