"""CUDA kernels of the loss family (same launcher names and signatures as ``kernels/loss.py``).
Launchers listed in ``__all__`` replace the host-routed CPU kernel of the same name.

* cross-entropy over rows (R, C): one block of threads per row (grid-stride over rows); the
  row's max, its sum of exponentials and the target terms are tree reductions in shared
  memory, accumulated in float64 as on the CPU. The backward recomputes softmax from the saved
  log-sum-exp, one thread per element;
* nll: one thread per (n, d) position for the forward, the gradient scattered into zeros;
* per-element losses: one thread per element; a reduced forward writes each loss (float64)
  and sums them with the reduction kernel of ``reduce.py``, so the total stays on the device
  (a (1,) float64 array where the CPU returns a float);
* a gradient's factors (the incoming gradient over the 'mean' denominator): ``loss_scale``
  launches nothing, it hands the gradient kernels g and the divisor (a ``Scale``), and each
  of them works out g[i] / div (or g[0] / div) itself, in float64 as the CPU does.

Targets and other host arrays (validated by the op layer on the host) are uploaded here.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from typing import NamedTuple

from .array import CudaArray, empty, from_host
from .launch import launch
from .reduce import sum_, tree_sum
from .runtime import block_size, blocks, config, cuda

__all__ = ["loss_scale", "cross_entropy_index", "cross_entropy_index_grad",
           "cross_entropy_prob", "cross_entropy_prob_grad", "nll", "nll_grad", "pointwise_loss",
           "pointwise_loss_grad"]

_kernels: dict = {}
f64 = numba.float64


def _d(a) -> CudaArray:
    """A device array for a kernel operand: host arrays (targets, tables) are uploaded."""
    return a if isinstance(a, CudaArray) else from_host(np.ascontiguousarray(a))


@cuda.jit(device=True)
def _block_sum(sh, t, v, B):
    """The sum over the block of each thread's v (float64); every thread gets it."""
    sh[t] = v
    cuda.syncthreads()
    tree_sum(sh, t, B)
    r = sh[0]
    cuda.syncthreads()
    return r


@cuda.jit(device=True)
def _block_max(sh, t, v, B):
    """The max over the block of each thread's v (NaN ignored, as the CPU's lanes do)."""
    sh[t] = v
    cuda.syncthreads()
    s = B // 2
    while s > 0:
        if t < s and sh[t + s] > sh[t]:
            sh[t] = sh[t + s]
        cuda.syncthreads()
        s //= 2
    r = sh[0]
    cuda.syncthreads()
    return r


def _row_lse_fn(dtype):
    """The device function log(sum(exp(x[base:base+C]))) of one row (block-wide), shifted by
    its max; exponentials in x's precision, the sum in float64 (as on the CPU)."""
    key = ("row_lse", np.dtype(dtype))
    f = _kernels.get(key)
    if f is not None:
        return f
    T = numba.from_dtype(np.dtype(dtype))

    @cuda.jit(device=True)
    def row_lse(x, base, C, sh, t, B):
        m = -math.inf
        for c in range(t, C, B):
            v = x[base + c]
            if v > m:
                m = v
        m = _block_max(sh, t, m, B)
        mt = T(m)
        s = 0.0
        for c in range(t, C, B):
            s += math.exp(x[base + c] - mt)
        s = _block_sum(sh, t, s, B)
        return m + math.log(s)

    _kernels[key] = row_lse
    return row_lse


# --------------------------------------------------------------------------- cross-entropy

def _ce_index_kernels(dtype):
    key = ("ce_index", np.dtype(dtype))
    ks = _kernels.get(key)
    if ks is not None:
        return ks
    B = block_size()
    T = numba.from_dtype(np.dtype(dtype))
    _row_lse = _row_lse_fn(dtype)

    @cuda.jit
    def fwd(x, R, C, tgt, w, ii, eps, lse, loss, wt):
        """per row r: lse, the (smoothed, weighted) loss and the target's weight"""
        sh = cuda.shared.array(B, f64)
        t = cuda.threadIdx.x
        for r in range(cuda.blockIdx.x, R, cuda.gridDim.x):
            base = r * C
            lr = _row_lse(x, base, C, sh, t, B)
            tg = tgt[r]
            sm = 0.0
            if eps != 0.0 and tg != ii:
                for c in range(t, C, B):
                    sm += f64(w[c]) * (x[base + c] - lr)
                sm = _block_sum(sh, t, sm, B)
            if t == 0:
                lse[r] = lr
                if tg == ii:
                    loss[r] = 0.0
                    wt[r] = 0.0
                else:
                    wr = f64(w[tg])
                    v = -wr * (x[base + tg] - lr)
                    if eps != 0.0:
                        v = (1.0 - eps) * v - eps / C * sm
                    loss[r] = v
                    wt[r] = wr

    @cuda.jit
    def bwd(x, R, C, lse, sg, sk, sdiv, tgt, w, wsum, ii, eps, out):
        """out[r,c] = s * (a[r]*softmax(x[r])[c] - q[r,c]), s = sg[r*sk] / sdiv (see
        kernels/loss.py)"""
        for i in range(cuda.grid(1), R * C, cuda.gridsize(1)):
            r = i // C
            c = i % C
            tg = tgt[r]
            if tg == ii:
                out[i] = 0
                continue
            s = f64(sg[r * sk]) / sdiv
            a = (1.0 - eps) * f64(w[tg])
            if eps != 0.0:
                a += eps / C * wsum[0]
            lr = T(lse[r])  # (lse's rounding to T made up for in float64, as on the CPU)
            sa = T(s * a * math.exp(f64(lr) - lse[r]))
            v = sa * math.exp(x[i] - lr)
            if eps != 0.0:
                v = v - T(s * eps / C) * w[c]
            if c == tg:
                v = v - T(s * (1.0 - eps) * f64(w[tg]))
            out[i] = v

    ks = _kernels[key] = (fwd, bwd)
    return ks


class Scale(NamedTuple):
    """The n factors a loss gradient's rows (elements) are multiplied by, g[i * step] / div,
    for the gradient kernels to work out: g flat and contiguous, step 0 for one factor for
    all (a reduced loss's one-element gradient) or 1 for one per row (reduction 'none')."""
    g: CudaArray
    step: int
    div: float


def loss_scale(g: CudaArray, div: float, n: int) -> Scale:
    """The float64 factors g / div (g: a reduced loss's one-element gradient, or a
    contiguous gradient of n elements), as the gradient launchers here take them: nothing
    is launched and nothing read back."""
    g = g.reshape(-1)
    if g.size != 1 and g.size != n:
        raise ValueError(f"loss_scale: a gradient of {g.size} elements for {n} factors")
    return Scale(g, int(g.size != 1), float(div))


def _wsum(w: CudaArray) -> CudaArray:
    """sum(w) in float64, a (1,) device array."""
    return sum_(w.reshape(1, w.size, 1), np.float64).reshape(1)


def cross_entropy_index(x: CudaArray, tgt, w: CudaArray, ii: int, eps: float):
    """Rows of logits x (R, C), class indices tgt (R,), class weights w (C,): (lse, loss, wt),
    float64 (R,) each (see kernels/loss.py)."""
    R, C = x.shape
    lse, loss, wt = empty(R, np.float64), empty(R, np.float64), empty(R, np.float64)
    if R:
        fwd, _ = _ce_index_kernels(x.dtype)
        td = _d(tgt)  # operands stay referenced until the launch is queued (allocator reuse)
        launch(fwd, blocks(R), block_size(), x.flat(), R, C, td.flat(), w.flat(), int(ii),
               float(eps), lse.flat(), loss.flat(), wt.flat())
    return lse, loss, wt


def cross_entropy_index_grad(x, lse, scale, tgt, w, ii, eps, shape=None) -> CudaArray:
    """The gradient of cross_entropy_index's losses, row r scaled by its factor: a fresh array of
    `shape` (x's by default; the same elements in row order)."""
    R, C = x.shape
    out = empty(x.shape if shape is None else shape, x.dtype)
    if out.size:
        _, bwd = _ce_index_kernels(x.dtype)
        g, b = config(out.size)
        ops = (_d(lse), _d(tgt), _wsum(w) if eps else w)  # (w: not read)
        launch(bwd, g, b, x.flat(), R, C, ops[0].flat(), scale.g.flat(), scale.step, scale.div,
               ops[1].flat(), w.flat(), ops[2].flat(), int(ii), float(eps), out.flat())
    return out


def _ce_prob_kernels(dtype):
    key = ("ce_prob", np.dtype(dtype))
    ks = _kernels.get(key)
    if ks is not None:
        return ks
    B = block_size()
    T = numba.from_dtype(np.dtype(dtype))
    _row_lse = _row_lse_fn(dtype)

    @cuda.jit
    def fwd(x, p, R, C, w, eps, lse, loss):
        """lse[r]; loss[r] = -sum_c w[c]*((1-eps)*p[r,c] + eps/C)*(x[r,c]-lse[r])"""
        sh = cuda.shared.array(B, f64)
        t = cuda.threadIdx.x
        u = eps / C
        for r in range(cuda.blockIdx.x, R, cuda.gridDim.x):
            base = r * C
            lr = _row_lse(x, base, C, sh, t, B)
            v = 0.0
            for c in range(t, C, B):
                v += f64(w[c]) * ((1.0 - eps) * p[base + c] + u) * (x[base + c] - lr)
            v = _block_sum(sh, t, v, B)
            if t == 0:
                lse[r] = lr
                loss[r] = -v

    @cuda.jit
    def bwd(x, p, R, C, lse, sg, sk, sdiv, w, eps, out):
        """out[r,c] = s*(a[r]*softmax(x[r])[c] - w[c]*((1-eps)*p[r,c] + eps/C)), a[r] the
        sum over c of the subtracted term and s = sg[r*sk] / sdiv; one block per row"""
        sh = cuda.shared.array(B, f64)
        t = cuda.threadIdx.x
        u = eps / C
        for r in range(cuda.blockIdx.x, R, cuda.gridDim.x):
            base = r * C
            a = 0.0
            for c in range(t, C, B):
                a += f64(w[c]) * ((1.0 - eps) * p[base + c] + u)
            a = _block_sum(sh, t, a, B)
            s = f64(sg[r * sk]) / sdiv
            lr = T(lse[r])
            sa = T(s * a * math.exp(f64(lr) - lse[r]))
            s1 = T(s * (1.0 - eps))
            s2 = T(s * u)
            for c in range(t, C, B):
                out[base + c] = sa * math.exp(x[base + c] - lr) - w[c] * (s1 * p[base + c] + s2)

    ks = _kernels[key] = (fwd, bwd)
    return ks


def cross_entropy_prob(x: CudaArray, p: CudaArray, w: CudaArray, eps: float):
    """Rows of logits x (R, C) against class probabilities p (R, C): (lse, loss) float64."""
    R, C = x.shape
    lse, loss = empty(R, np.float64), empty(R, np.float64)
    if R and C:
        fwd, _ = _ce_prob_kernels(x.dtype)
        pd = _d(p)
        launch(fwd, blocks(R), block_size(), x.flat(), pd.flat(), R, C, w.flat(), float(eps),
               lse.flat(), loss.flat())
    elif R:
        lse.fill(-np.inf)
        loss.fill(0.0)
    return lse, loss


def cross_entropy_prob_grad(x, lse, scale: Scale, p, w, eps, shape=None) -> CudaArray:
    """The gradient wrt x of cross_entropy_prob's losses, row r scaled by its factor."""
    R, C = x.shape
    out = empty(x.shape if shape is None else shape, x.dtype)
    if out.size:
        _, bwd = _ce_prob_kernels(x.dtype)
        ops = (_d(p), _d(lse))
        launch(bwd, blocks(R), block_size(), x.flat(), ops[0].flat(), R, C, ops[1].flat(),
               scale.g.flat(), scale.step, scale.div, w.flat(), float(eps), out.flat())
    return out


# --------------------------------------------------------------------------- nll

def _nll_kernels(dtype):
    key = ("nll", np.dtype(dtype))
    ks = _kernels.get(key)
    if ks is not None:
        return ks
    T = numba.from_dtype(np.dtype(dtype))

    @cuda.jit
    def fwd(x, C, D, tgt, w, ii, loss, wt):
        """loss[n,d] = -w[t]*x[n,t,d], wt[n,d] = w[t]; both 0 where t == ii"""
        for i in range(cuda.grid(1), loss.size, cuda.gridsize(1)):
            tg = tgt[i]
            if tg == ii:
                loss[i] = 0.0
                wt[i] = 0.0
            else:
                wr = f64(w[tg])
                loss[i] = -wr * x[((i // D) * C + tg) * D + i % D]
                wt[i] = wr

    @cuda.jit
    def bwd(sg, sk, sdiv, C, D, tgt, w, ii, out):
        """out[n,t,d] = -s*w[t], s = sg[i*sk] / sdiv for i = n*D + d (out zeroed before)"""
        for i in range(cuda.grid(1), tgt.size, cuda.gridsize(1)):
            tg = tgt[i]
            if tg != ii:
                s = f64(sg[i * sk]) / sdiv
                out[((i // D) * C + tg) * D + i % D] = T(-s * f64(w[tg]))

    ks = _kernels[key] = (fwd, bwd)
    return ks


def nll(x3: CudaArray, tgt2, w: CudaArray, ii: int):
    """x3 (N, C, D), tgt2 (N, D) validated: (loss, wt), float64 (N, D)."""
    N, C, D = x3.shape
    loss, wt = empty((N, D), np.float64), empty((N, D), np.float64)
    if loss.size:
        fwd, _ = _nll_kernels(x3.dtype)
        g, b = config(loss.size)
        td = _d(tgt2)
        launch(fwd, g, b, x3.flat(), C, D, td.flat(), w.flat(), int(ii), loss.flat(), wt.flat())
    return loss, wt


def nll_grad(scale: Scale, tgt2, w, ii: int, shape3: tuple, dtype, shape: tuple) -> CudaArray:
    """Zeros of `shape` (viewed as shape3 = (N, C, D)) with -s*w[t] at each target, s the
    position's factor."""
    out = empty(shape, dtype)
    out.fill(0)
    n = shape3[0] * shape3[2]
    if n and out.size:
        _, bwd = _nll_kernels(dtype)
        _, C, D = shape3
        g, b = config(n)
        ops = (_d(tgt2), _d(w))
        launch(bwd, g, b, scale.g.flat(), scale.step, scale.div, C, D, ops[0].flat(),
               ops[1].flat(), int(ii), out.flat())
    return out


# --------------------------------------------------------------------------- per-element losses

def _pointwise_kernels(name: str, dtype):
    key = ("pointwise", name, np.dtype(dtype))
    ks = _kernels.get(key)
    if ks is not None:
        return ks
    T = numba.from_dtype(np.dtype(dtype))
    kind = ("mse", "smooth_l1", "bce", "bce_logits").index(name)

    @cuda.jit(device=True)
    def loss(xi, yi, i, w, pw, beta):
        one = T(1)
        if kind == 0:
            d = xi - yi
            return d * d
        if kind == 1:
            b = T(beta)
            half = T(0.5)
            d = xi - yi
            d = d if d >= 0 else -d
            return half * d * d / b if d < b else d - half * b
        if kind == 2:
            lo = T(-100)
            # log(0) is -inf on a GPU but raises in the simulator: clamp first, as torch
            a = math.log(xi) if xi > 0 else lo
            b2 = math.log1p(-xi) if xi < one else lo
            v = (yi - one) * (b2 if b2 > lo else lo) - yi * (a if a > lo else lo)
            return v * w[i] if w.size else v
        zero = T(0)
        ax = xi if xi >= zero else -xi
        sp = math.log1p(math.exp(-ax)) + (-xi if xi < zero else zero)
        lw = one + (pw[i] - one) * yi if pw.size else one
        v = (one - yi) * xi + lw * sp
        return v * w[i] if w.size else v

    @cuda.jit(device=True)
    def grad(xi, yi, gi, i, w, pw, beta):
        one = T(1)
        if kind == 0:
            return (xi - yi) * gi * T(2)
        if kind == 1:
            b = T(beta)
            d = xi - yi
            v = -one if d < -b else (one if d > b else d / b)
            return v * gi
        if kind == 2:
            tiny = T(1e-12)
            den = (one - xi) * xi
            v = (xi - yi) / (den if den > tiny else tiny) * gi
            return v * w[i] if w.size else v
        zero = T(0)
        if xi >= zero:
            sg = one / (one + math.exp(-xi))
        else:
            e = math.exp(xi)
            sg = e / (one + e)
        if pw.size:
            v = sg * (one + (pw[i] - one) * yi) - pw[i] * yi
        else:
            v = sg - yi
        v = v * gi
        return v * w[i] if w.size else v

    @cuda.jit
    def fwd(x, y, w, pw, beta, out):
        """out[i] = loss(x[i], y[i]) (in out's dtype: x's, or float64 for a sum)"""
        for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
            out[i] = loss(x[i], y[i], i, w, pw, beta)

    @cuda.jit
    def bwd(x, y, w, pw, beta, g, kg, gdiv, out):
        """out[i] = d loss / d x[i] times g[i] / gdiv (g[0] when kg is 0), that factor
        rounded to x's dtype (as on the CPU)"""
        for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
            out[i] = grad(x[i], y[i], T(f64(g[i * kg]) / gdiv), i, w, pw, beta)

    ks = _kernels[key] = (fwd, bwd)
    return ks


def _extras(name: str, extra: tuple, dtype) -> tuple:
    """(w, pw, beta) from the op layer's `extra` tuple, w and pw as CudaArrays (empty for
    none): the caller keeps them referenced until its launch."""
    none = empty(0, dtype)
    if name == "smooth_l1":
        return none, none, float(extra[0])
    if name == "bce":
        return _d(extra[0]), none, 0.0
    if name == "bce_logits":
        return _d(extra[0]), _d(extra[1]), 0.0
    return none, none, 0.0


def pointwise_loss(name: str, x: CudaArray, y: CudaArray, extra: tuple, total: bool):
    """Per-element loss `name` of flat contiguous x and y: with `total`, their float64 sum as
    a (1,) device array, else the losses in x's dtype and shape."""
    out = empty(x.size if total else x.shape, np.float64 if total else x.dtype)
    if x.size:
        fwd, _ = _pointwise_kernels(name, x.dtype)
        g, b = config(x.size)
        w, pw, beta = _extras(name, extra, x.dtype)
        launch(fwd, g, b, x.reshape(-1).flat(), y.reshape(-1).flat(), w.flat(), pw.flat(), beta,
               out.reshape(-1).flat())
    if not total:
        return out
    if x.size == 0:
        res = empty(1, np.float64)
        res.fill(0.0)
        return res
    res = sum_(out.reshape(1, x.size, 1), np.float64).reshape(1)
    return res


def pointwise_loss_grad(name: str, x: CudaArray, y: CudaArray, extra: tuple, g) -> CudaArray:
    """The gradient wrt x of loss `name`, times g: one value or one per element (an array in
    x's dtype), or loss_scale's factors (a reduced loss's gradient over its divisor)."""
    out = empty(x.shape, x.dtype)
    if x.size:
        if g.__class__ is not Scale:
            gd = _d(g)
            g = Scale((gd if gd.flags.c_contiguous else gd.copy()).reshape(-1),
                      int(gd.size != 1), 1.0)
        _, bwd = _pointwise_kernels(name, x.dtype)
        gb, b = config(x.size)
        w, pw, beta = _extras(name, extra, x.dtype)
        launch(bwd, gb, b, x.reshape(-1).flat(), y.reshape(-1).flat(), w.flat(), pw.flat(), beta,
               g.g.flat(), g.step, g.div, out.reshape(-1).flat())
    return out


def ptx_checks() -> list:
    """(what, kernel, argument types) of every kernel here, as the launchers call them, for
    tests/cuda_ptx_check.py (compiled to PTX for a real GPU without one). Targets are
    int64; lse and per-row results float64; logits, class weights and the incoming
    gradient one float dtype."""
    from .runtime import vec as arr

    I64 = numba.int64

    A64, AI = arr(f64), arr(I64)
    checks = []
    for dt in (np.float32, np.float64):
        T = numba.from_dtype(np.dtype(dt))
        AT = arr(T)
        fwd, bwd = _ce_index_kernels(dt)
        checks.append((f"cross_entropy_index {T}", fwd,
                       (AT, I64, I64, AI, AT, I64, f64, A64, A64, A64)))
        for W in (A64, AT):  # with label smoothing sum(w), else w itself (not read)
            checks.append((f"cross_entropy_index_grad {T} {W}", bwd,
                           (AT, I64, I64, A64, AT, I64, f64, AI, AT, W, I64, f64, AT)))
        fwd, bwd = _ce_prob_kernels(dt)
        checks.append((f"cross_entropy_prob {T}", fwd, (AT, AT, I64, I64, AT, f64, A64, A64)))
        checks.append((f"cross_entropy_prob_grad {T}", bwd,
                       (AT, AT, I64, I64, A64, AT, I64, f64, AT, f64, AT)))
        fwd, bwd = _nll_kernels(dt)
        checks.append((f"nll {T}", fwd, (AT, I64, I64, AI, AT, I64, A64, A64)))
        checks.append((f"nll_grad {T}", bwd, (AT, I64, f64, I64, I64, AI, AT, I64, AT)))
        for name in ("mse", "smooth_l1", "bce", "bce_logits"):
            fwd, bwd = _pointwise_kernels(name, dt)
            for total in (False, True):
                checks.append((f"pointwise_loss {name} {T} total={total}", fwd,
                               (AT, AT, AT, AT, f64, A64 if total else AT)))
            checks.append((f"pointwise_loss_grad {name} {T}", bwd,
                           (AT, AT, AT, AT, f64, AT, I64, f64, AT)))
    return checks
