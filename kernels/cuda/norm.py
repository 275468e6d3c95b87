"""CUDA kernels of the norm family (same launcher names and signatures as ``kernels/norm.py``).
Launchers listed in ``__all__`` replace the host-routed CPU kernel of the same name.

* layer norm over contiguous rows (M, K): one block per row (grid-stride over rows), the
  row's mean, variance (two passes) and the backward's two sums as float64 tree reductions
  in shared memory; the weight and bias gradients sum columns, one thread per column;
* batch norm over (N, C, D): one block per channel for the statistics and the backward's
  sums (float64), a thread per channel for the per-channel coefficients, then one thread per
  element for ``out = p[c]*a + q[c]*b + r[c]`` (the forward and the input gradient).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .array import CudaArray, empty
from .elementwise import binary
from .launch import launch
from .loss import _block_sum
from .runtime import block_size, blocks, config, cuda

__all__ = ["batch_norm", "batch_norm_grad", "layer_norm", "layer_norm_grad"]

_kernels: dict = {}
f64 = numba.float64


# --------------------------------------------------------------------------- layer norm

def _ln_kernels(dtype):
    key = ("ln", np.dtype(dtype))
    ks = _kernels.get(key)
    if ks is not None:
        return ks
    B = block_size()
    T = numba.from_dtype(np.dtype(dtype))

    @cuda.jit
    def fwd(x, M, K, w, b, eps, y, mean, rstd):
        """y[r,k] = (x[r,k] - mean[r]) * rstd[r] * w[k] + b[k] (w, b of size 0: none)"""
        sh = cuda.shared.array(B, f64)
        t = cuda.threadIdx.x
        for r in range(cuda.blockIdx.x, M, cuda.gridDim.x):
            base = r * K
            s = 0.0
            for k in range(t, K, B):
                s += x[base + k]
            mu = _block_sum(sh, t, s, B) / K
            v = 0.0
            for k in range(t, K, B):
                d = x[base + k] - mu
                v += d * d
            rs = 1.0 / math.sqrt(_block_sum(sh, t, v, B) / K + eps)
            if t == 0:
                mean[r] = mu
                rstd[r] = rs
            m = T(mu)
            a = T(rs)
            for k in range(t, K, B):
                o = (x[base + k] - m) * a
                if w.size:
                    o = o * w[k]
                if b.size:
                    o = o + b[k]
                y[base + k] = o

    @cuda.jit
    def bwd_x(g, x, M, K, mean, rstd, w, dx):
        """dx[r,k] = rstd*(gw - mean_k(gw) - xh*mean_k(gw*xh)), gw = g*w"""
        sh = cuda.shared.array(B, f64)
        t = cuda.threadIdx.x
        for r in range(cuda.blockIdx.x, M, cuda.gridDim.x):
            base = r * K
            m = T(mean[r])
            rs = T(rstd[r])
            A = 0.0
            Bs = 0.0
            for k in range(t, K, B):
                xh = (x[base + k] - m) * rs
                gw = g[base + k] * w[k] if w.size else g[base + k]
                A += gw
                Bs += gw * xh
            A = _block_sum(sh, t, A, B)
            Bs = _block_sum(sh, t, Bs, B)
            a = T(A / K)
            c = T(Bs / K)
            for k in range(t, K, B):
                xh = (x[base + k] - m) * rs
                gw = g[base + k] * w[k] if w.size else g[base + k]
                dx[base + k] = rs * (gw - a - xh * c)

    @cuda.jit
    def bwd_wb(g, x, M, K, mean, rstd, dw, db):
        """dw[k] = sum_r g*xh, db[k] = sum_r g (float64), one block per column"""
        sh = cuda.shared.array(B, f64)
        t = cuda.threadIdx.x
        for k in range(cuda.blockIdx.x, K, cuda.gridDim.x):
            sw = 0.0
            sb = 0.0
            for r in range(t, M, B):
                gv = g[r * K + k]
                sw += gv * ((x[r * K + k] - T(mean[r])) * T(rstd[r]))
                sb += gv
            sw = _block_sum(sh, t, sw, B)
            sb = _block_sum(sh, t, sb, B)
            if t == 0:
                dw[k] = sw
                db[k] = sb

    ks = _kernels[key] = (fwd, bwd_x, bwd_wb)
    return ks


def _opt(a, dtype) -> CudaArray:
    return empty(0, dtype) if a is None else a


def layer_norm(x2: CudaArray, w, b, eps: float, shape=None):
    """Normalise the rows of contiguous x2 (M, K): (y of `shape`, mean, rstd float64 (M,))."""
    M, K = x2.shape
    yo = empty(x2.shape if shape is None else shape, x2.dtype)
    mean, rstd = empty(M, np.float64), empty(M, np.float64)
    if yo.size:
        fwd = _ln_kernels(x2.dtype)[0]
        wd, bd = _opt(w, x2.dtype), _opt(b, x2.dtype)
        launch(fwd, blocks(M), block_size(), x2.flat(), M, K, wd.flat(), bd.flat(), float(eps),
               yo.reshape(-1).flat(), mean.flat(), rstd.flat())
    elif M:
        mean.fill(np.nan)
        rstd.fill(np.nan)
    return yo, mean, rstd


def layer_norm_grad(g2, x2, mean, rstd, w, want_x: bool, want_wb: bool, shape=None):
    """Gradients of layer_norm wrt x2 (or None), w and b (float64 sums, or None)."""
    M, K = x2.shape
    _, bwd_x, bwd_wb = _ln_kernels(x2.dtype)
    g2 = g2 if g2.flags.c_contiguous else g2.copy()
    dx = dw = db = None
    if want_x:
        dx = empty(x2.shape if shape is None else shape, x2.dtype)
        if dx.size:
            wd = _opt(w, x2.dtype)
            launch(bwd_x, blocks(M), block_size(), g2.flat(), x2.flat(), M, K, mean.flat(),
                   rstd.flat(), wd.flat(), dx.reshape(-1).flat())
    if want_wb:
        dw, db = empty(K, np.float64), empty(K, np.float64)
        if K:
            launch(bwd_wb, blocks(K), block_size(), g2.flat(), x2.flat(), M, K, mean.flat(),
                   rstd.flat(), dw.flat(), db.flat())
    return dx, dw, db


# --------------------------------------------------------------------------- batch norm

def _bn_kernels(dtype):
    key = ("bn", np.dtype(dtype))
    ks = _kernels.get(key)
    if ks is not None:
        return ks
    B = block_size()
    T = numba.from_dtype(np.dtype(dtype))

    @cuda.jit
    def chan_sums(a, b, N, C, D, ca, cb, s1, s2, two_pass):
        """per channel c: s1 = sum a; s2 = sum (a - ca)*(b - cb) (float64), over n and d;
        with two_pass, ca = s1 / (N*D) (a's mean) is computed first and written to ca"""
        sh = cuda.shared.array(B, f64)
        t = cuda.threadIdx.x
        MD = N * D
        for c in range(cuda.blockIdx.x, C, cuda.gridDim.x):
            acc = 0.0
            for j in range(t, MD, B):
                acc += a[((j // D) * C + c) * D + j % D]
            acc = _block_sum(sh, t, acc, B)
            if two_pass:
                mu = acc / MD
                if t == 0:
                    ca[c] = mu
            else:
                mu = ca[c]
            cbc = mu if two_pass else cb[c]
            acc2 = 0.0
            for j in range(t, MD, B):
                i = ((j // D) * C + c) * D + j % D
                acc2 += (a[i] - mu) * (b[i] - cbc)
            acc2 = _block_sum(sh, t, acc2, B)
            if t == 0:
                s1[c] = acc
                s2[c] = acc2

    @cuda.jit
    def fwd_coef(mean, var, w, bias, eps, p, r):
        """p = w / sqrt(var + eps), r = b - mean*p, in the data's dtype"""
        for c in range(cuda.grid(1), mean.size, cuda.gridsize(1)):
            sc = 1.0 / math.sqrt(var[c] + eps)
            if w.size:
                sc *= w[c]
            sf = -mean[c] * sc
            if bias.size:
                sf += bias[c]
            p[c] = T(sc)
            r[c] = T(sf)

    @cuda.jit
    def bwd_coef(mean, invstd, w, s1, s2, M, batch, p, q, r, dw, db):
        """dw, db from the sums; dx = p*g + q*x + r coefficients (see kernels/norm.py)"""
        for c in range(cuda.grid(1), mean.size, cuda.gridsize(1)):
            db[c] = s1[c]
            dw[c] = s2[c] * invstd[c]
            pc = invstd[c] * (f64(w[c]) if w.size else 1.0)
            qc = 0.0
            rc = 0.0
            if batch:
                qc = -pc * invstd[c] * invstd[c] * s2[c] / M
                rc = -pc * s1[c] / M - qc * mean[c]
            p[c] = T(pc)
            q[c] = T(qc)
            r[c] = T(rc)

    @cuda.jit
    def apply(a, b, C, D, p, q, r, out):
        """out[n,c,d] = p[c]*a[n,c,d] + q[c]*b[n,c,d] + r[c]"""
        for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
            c = (i // D) % C
            out[i] = p[c] * a[i] + q[c] * b[i] + r[c]

    ks = _kernels[key] = (chan_sums, fwd_coef, bwd_coef, apply)
    return ks


def batch_norm(x3: CudaArray, w, b, eps: float, running, shape=None):
    """Normalise contiguous x3 (N, C, D) per channel: (y of `shape`, mean, biased var), the
    statistics float64 (C,): the batch's, or `running` = (mean, var) when given."""
    N, C, D = x3.shape
    dt = x3.dtype
    yo = empty(x3.shape if shape is None else shape, dt)
    chan_sums, fwd_coef, _, apply = _bn_kernels(dt)
    if running is None:
        mean, var = empty(C, np.float64), empty(C, np.float64)
    else:
        mean, var = running[0].astype(np.float64), running[1].astype(np.float64)
    if x3.size == 0:
        if running is None:
            mean.fill(np.nan)
            var.fill(np.nan)
        return yo, mean, var
    if running is None:
        s1, unused = empty(C, np.float64), empty(1, np.float64)  # (no written operand twice:
        # the simulator copies each argument back after the launch)
        launch(chan_sums, blocks(C), block_size(), x3.flat(), x3.flat(), N, C, D, mean.flat(),
               unused.flat(), s1.flat(), var.flat(), 1)
        var = binary("div", var, np.float64(N * D), var.shape)  # the sums of squares / M
    p, r = empty(C, dt), empty(C, dt)
    wd, bd = _opt(w, dt), _opt(b, dt)
    wd = wd if wd.flags.c_contiguous else wd.copy()
    bd = bd if bd.flags.c_contiguous else bd.copy()
    gc, bc = config(C)
    launch(fwd_coef, gc, bc, mean.flat(), var.flat(), wd.flat(), bd.flat(), float(eps), p.flat(),
           r.flat())
    q = empty(C, dt)
    q.fill(0)
    g, bl = config(x3.size)
    launch(apply, g, bl, x3.flat(), x3.flat(), C, D, p.flat(), q.flat(), r.flat(),
           yo.reshape(-1).flat())
    return yo, mean, var


def batch_norm_grad(g3, x3, mean, invstd, w, batch: bool, want_x: bool, shape=None):
    """Gradients of batch_norm: (dx or None, dw, db), dw and db float64 (C,)."""
    N, C, D = x3.shape
    dt = x3.dtype
    chan_sums, _, bwd_coef, apply = _bn_kernels(dt)
    g3 = g3 if g3.flags.c_contiguous else g3.copy()
    dw, db = empty(C, np.float64), empty(C, np.float64)
    dx = empty(x3.shape if shape is None else shape, dt) if want_x else None
    if x3.size == 0:
        dw.fill(0.0)
        db.fill(0.0)
        return dx, dw, db
    zeros = empty(C, np.float64)
    zeros.fill(0.0)
    s1, s2 = empty(C, np.float64), empty(C, np.float64)
    launch(chan_sums, blocks(C), block_size(), g3.flat(), x3.flat(), N, C, D, zeros.flat(),
           mean.flat(), s1.flat(), s2.flat(), 0)
    p, q, r = empty(C, dt), empty(C, dt), empty(C, dt)
    wd = _opt(w, dt)
    wd = wd if wd.flags.c_contiguous else wd.copy()
    gc, bc = config(C)
    launch(bwd_coef, gc, bc, mean.flat(), invstd.flat(), wd.flat(), s1.flat(), s2.flat(), N * D,
           int(batch), p.flat(), q.flat(), r.flat(), dw.flat(), db.flat())
    if want_x:
        g, bl = config(x3.size)
        launch(apply, g, bl, g3.flat(), x3.flat(), C, D, p.flat(), q.flat(), r.flat(),
               dx.reshape(-1).flat())
    return dx, dw, db


def ptx_checks() -> list:
    """(what, kernel, argument types) of every kernel here, as the launchers call them, for
    tests/cuda_ptx_check.py (compiled to PTX for a real GPU without one). Statistics and
    the weight and bias gradients are float64; the rest is in the data's dtype."""
    from .runtime import vec as arr

    I64 = numba.int64

    A64 = arr(f64)
    checks = []
    for dt in (np.float32, np.float64):
        T = numba.from_dtype(np.dtype(dt))
        AT = arr(T)
        fwd, bwd_x, bwd_wb = _ln_kernels(dt)
        checks.append((f"layer_norm {T}", fwd, (AT, I64, I64, AT, AT, f64, AT, A64, A64)))
        checks.append((f"layer_norm bwd_x {T}", bwd_x, (AT, AT, I64, I64, A64, A64, AT, AT)))
        checks.append((f"layer_norm bwd_wb {T}", bwd_wb,
                       (AT, AT, I64, I64, A64, A64, A64, A64)))
        chan_sums, fwd_coef, bwd_coef, apply = _bn_kernels(dt)
        checks.append((f"batch_norm chan_sums {T}", chan_sums,
                       (AT, AT, I64, I64, I64, A64, A64, A64, A64, I64)))
        checks.append((f"batch_norm fwd_coef {T}", fwd_coef, (A64, A64, AT, AT, f64, AT, AT)))
        checks.append((f"batch_norm bwd_coef {T}", bwd_coef,
                       (A64, A64, AT, A64, A64, I64, I64, AT, AT, AT, A64, A64)))
        checks.append((f"batch_norm apply {T}", apply, (AT, AT, I64, I64, AT, AT, AT, AT)))
    return checks
