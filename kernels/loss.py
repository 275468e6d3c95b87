"""Fused loss kernels for the CPU.

Cross-entropy runs on rows: logits as a contiguous (R, C) block, one row per prediction (the
launcher moves the class dimension last). The forward pass reads each row three times while it
sits in L1 (max, sum of exponentials, target terms) and keeps only log-sum-exp per row; the
backward pass recomputes softmax from it, so no (R, C) intermediate exists beside the input
and the gradient. Sums accumulate in float64; the inner loops stay in the input's precision.

Per-element losses (mse, smooth L1, binary cross-entropy with and without logits) take flat
contiguous operands of one shape; the forward pass either writes every element's loss or
returns their float64 sum, the backward pass writes the gradient for the input.

Helpers: ``fexp`` is a vectorizable exp (the PyPI llvmlite has no SVML, so ``math.exp`` in a
loop is a scalar libm call, see PERF-NOTES): Cephes' range reduction plus a polynomial
(float32) or a Pade approximant (float64), with 2**n built from its bits. Relative error about
6e-8 (float32) and 2e-15 (float64); results below the smallest normal number flush to 0; nan
stays nan; arguments must be <= 88 (float32) or 709 (float64). ``cast(v, like)`` converts v
to the scalar type of ``like``.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic, overload

__all__ = ["loss_scale", "cross_entropy_index", "cross_entropy_index_grad",
           "cross_entropy_prob", "cross_entropy_prob_grad", "nll", "nll_grad", "pointwise_loss",
           "pointwise_loss_grad"]

JIT = {"cache": True, "error_model": "numpy", "nogil": True}
FAST = {"reassoc": True, "nsz": True, "contract": True}  # lets float64 sums vectorize; nan and inf keep meaning
PARALLEL_MIN = 1 << 21  # see kernels/elementwise.py
LANES = 16  # independent running maxima per row: a max reduction vectorizes only this way

@intrinsic
def _f32_from_bits(typingctx, i):
    if not isinstance(i, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        v = args[0]
        if v.type.width > 32:
            v = builder.trunc(v, ir.IntType(32))
        return builder.bitcast(v, ir.FloatType())
    return types.float32(i), codegen


@intrinsic
def _f64_from_bits(typingctx, i):
    if not isinstance(i, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        v = args[0]
        if v.type.width < 64:
            v = builder.sext(v, ir.IntType(64))
        return builder.bitcast(v, ir.DoubleType())
    return types.float64(i), codegen


def fexp(x):
    """exp(x), vectorizable (see the module docstring)."""
    return math.exp(x)


def cast(v, like):
    """v converted to the scalar type of `like`."""
    return v


def _exp32(x):
    f = types.float32
    y = max(x, f(-87.33))
    n = math.floor(y * f(1.44269504088896341) + f(0.5))
    r = y - n * f(0.693359375) + n * f(2.12194440e-4)
    z = r * r
    p = (((((f(1.9875691500e-4) * r + f(1.3981999507e-3)) * r + f(8.3334519073e-3)) * r
           + f(4.1665795894e-2)) * r + f(1.6666665459e-1)) * r + f(5.0000001201e-1)) * z \
        + r + f(1.0)
    e = p * _f32_from_bits((types.int64(n) + 127) << 23)
    return e if x >= f(-87.33) else (f(0) if x == x else x)


def _exp64(x):
    y = max(x, -708.39)
    n = math.floor(y * 1.4426950408889634 + 0.5)
    r = y - n * 6.93145751953125e-1 - n * 1.42860682030941723212e-6
    rr = r * r
    p = r * ((1.26177193074810590878e-4 * rr + 3.02994407707441961300e-2) * rr
             + 9.99999999999999999910e-1)
    q = ((3.00198505138664455042e-6 * rr + 2.52448340349684104192e-3) * rr
         + 2.27265548208155028766e-1) * rr + 2.00000000000000000009e0
    e = (1.0 + 2.0 * (p / (q - p))) * _f64_from_bits((types.int64(n) + 1023) << 52)
    return e if x >= -708.39 else (0.0 if x == x else x)


@overload(fexp)
def _fexp_impl(x):
    if x == types.float32:
        return _exp32
    if x == types.float64:
        return _exp64
    return None


@overload(cast)
def _cast_impl(v, like):
    ty = like

    def impl(v, like):
        return ty(v)
    return impl


# --------------------------------------------------------------------------- cross-entropy rows

@njit(inline="always")
def _row_lse(xr, lanes):
    """log(sum(exp(xr))) of one row, shifted by its max; a float64."""
    C = xr.size
    L = lanes.size
    for k in range(L):
        lanes[k] = -np.inf
    body = C - C % L
    for c0 in range(0, body, L):
        for k in range(L):
            v = xr[c0 + k]
            a = lanes[k]
            lanes[k] = v if v > a else a
    m = lanes[0]
    for k in range(1, L):
        m = lanes[k] if lanes[k] > m else m
    for c in range(body, C):
        m = xr[c] if xr[c] > m else m
    s = 0.0
    for c in range(C):
        s += fexp(xr[c] - m)
    return m + math.log(s)


@njit(inline="always")
def _ce_index_rows(x, tgt, w, wsum, ii, eps, lse, loss, wt, lo, hi):
    C = x.shape[1]
    lanes = np.empty(LANES, dtype=x.dtype)
    for r in range(lo, hi):
        xr = x[r]
        lr = _row_lse(xr, lanes)
        lse[r] = lr
        t = tgt[r]
        if t == ii:
            loss[r] = 0.0
            wt[r] = 0.0
            continue
        wr = np.float64(w[t])
        v = -wr * (xr[t] - lr)
        if eps != 0.0:
            sm = 0.0
            for c in range(C):
                sm += np.float64(w[c]) * (xr[c] - lr)
            v = (1.0 - eps) * v - eps / C * sm
        loss[r] = v
        wt[r] = wr


@njit(fastmath=FAST, **JIT)
def ce_index_forward(x, tgt, w, wsum, ii, eps, lse, loss, wt):
    """lse[r] = logsumexp(x[r]); loss[r] = (1-eps)*(-w[t]*(x[r,t]-lse[r]))
    - eps/C*sum_c w[c]*(x[r,c]-lse[r]), t = tgt[r]; wt[r] = w[t]; both 0 where t == ii"""
    _ce_index_rows(x, tgt, w, wsum, ii, eps, lse, loss, wt, 0, x.shape[0])


@njit(parallel=True, fastmath=FAST, **JIT)
def ce_index_forward_par(x, tgt, w, wsum, ii, eps, lse, loss, wt, chunk):
    """ce_index_forward, chunks of rows in parallel"""
    R = x.shape[0]
    for k in prange((R + chunk - 1) // chunk):
        _ce_index_rows(x, tgt, w, wsum, ii, eps, lse, loss, wt, k * chunk,
                       min(R, (k + 1) * chunk))


@njit(inline="always")
def _ce_index_grad_rows(x, lse, scale, tgt, w, wsum, ii, eps, out, lo, hi):
    C = x.shape[1]
    for r in range(lo, hi):
        xr = x[r]
        orow = out[r]
        t = tgt[r]
        if t == ii:
            for c in range(C):
                orow[c] = 0
            continue
        s = scale[r]
        a = (1.0 - eps) * np.float64(w[t])
        if eps != 0.0:
            a += eps / C * wsum
        # lse rounded to x's dtype loses digits at large logits (its float32 ulp is 1e-3 near
        # 1e4): exp(x - lse) is taken as exp(x - lr) * exp(lr - lse), the second factor in
        # float64 and folded into the row's scale
        lr = cast(lse[r], xr[0])
        sa = cast(s * a * math.exp(np.float64(lr) - lse[r]), xr[0])
        if eps != 0.0:
            sb = cast(s * eps / C, xr[0])
            for c in range(C):
                orow[c] = sa * fexp(xr[c] - lr) - sb * w[c]
        else:
            for c in range(C):
                orow[c] = sa * fexp(xr[c] - lr)
        orow[t] -= cast(s * (1.0 - eps) * np.float64(w[t]), xr[0])


@njit(fastmath=FAST, **JIT)
def ce_index_backward(x, lse, scale, tgt, w, wsum, ii, eps, out):
    """out[r,c] = scale[r] * (a[r]*softmax(x[r])[c] - q[r,c]) with q[r,c] = (1-eps)*w[t]*[c==t]
    + eps/C*w[c] and a[r] = sum_c q[r,c], t = tgt[r]; 0 where t == ii"""
    _ce_index_grad_rows(x, lse, scale, tgt, w, wsum, ii, eps, out, 0, x.shape[0])


@njit(parallel=True, fastmath=FAST, **JIT)
def ce_index_backward_par(x, lse, scale, tgt, w, wsum, ii, eps, out, chunk):
    """ce_index_backward, chunks of rows in parallel"""
    R = x.shape[0]
    for k in prange((R + chunk - 1) // chunk):
        _ce_index_grad_rows(x, lse, scale, tgt, w, wsum, ii, eps, out, k * chunk,
                            min(R, (k + 1) * chunk))


@njit(inline="always")
def _ce_prob_rows(x, p, w, eps, lse, loss, lo, hi):
    C = x.shape[1]
    lanes = np.empty(LANES, dtype=x.dtype)
    u = eps / C
    for r in range(lo, hi):
        xr = x[r]
        pr = p[r]
        lr = _row_lse(xr, lanes)
        lse[r] = lr
        v = 0.0
        for c in range(C):
            v += np.float64(w[c]) * ((1.0 - eps) * pr[c] + u) * (xr[c] - lr)
        loss[r] = -v


@njit(fastmath=FAST, **JIT)
def ce_prob_forward(x, p, w, eps, lse, loss):
    """lse[r] = logsumexp(x[r]); loss[r] = -sum_c w[c]*((1-eps)*p[r,c] + eps/C)*(x[r,c]-lse[r])"""
    _ce_prob_rows(x, p, w, eps, lse, loss, 0, x.shape[0])


@njit(parallel=True, fastmath=FAST, **JIT)
def ce_prob_forward_par(x, p, w, eps, lse, loss, chunk):
    """ce_prob_forward, chunks of rows in parallel"""
    R = x.shape[0]
    for k in prange((R + chunk - 1) // chunk):
        _ce_prob_rows(x, p, w, eps, lse, loss, k * chunk, min(R, (k + 1) * chunk))


@njit(inline="always")
def _ce_prob_grad_rows(x, lse, scale, p, w, eps, out, lo, hi):
    C = x.shape[1]
    u = eps / C
    for r in range(lo, hi):
        xr = x[r]
        pr = p[r]
        orow = out[r]
        s = scale[r]
        a = 0.0
        for c in range(C):
            a += np.float64(w[c]) * ((1.0 - eps) * pr[c] + u)
        lr = cast(lse[r], xr[0])  # (the rounding of lse made up for, as in the index rows)
        sa = cast(s * a * math.exp(np.float64(lr) - lse[r]), xr[0])
        s1 = cast(s * (1.0 - eps), xr[0])
        s2 = cast(s * u, xr[0])
        for c in range(C):
            orow[c] = sa * fexp(xr[c] - lr) - w[c] * (s1 * pr[c] + s2)


@njit(fastmath=FAST, **JIT)
def ce_prob_backward(x, lse, scale, p, w, eps, out):
    """out[r,c] = scale[r] * (a[r]*softmax(x[r])[c] - q[r,c]) with q[r,c] =
    w[c]*((1-eps)*p[r,c] + eps/C) and a[r] = sum_c q[r,c]"""
    _ce_prob_grad_rows(x, lse, scale, p, w, eps, out, 0, x.shape[0])


@njit(parallel=True, fastmath=FAST, **JIT)
def ce_prob_backward_par(x, lse, scale, p, w, eps, out, chunk):
    """ce_prob_backward, chunks of rows in parallel"""
    R = x.shape[0]
    for k in prange((R + chunk - 1) // chunk):
        _ce_prob_grad_rows(x, lse, scale, p, w, eps, out, k * chunk, min(R, (k + 1) * chunk))


# --------------------------------------------------------------------------- nll

@njit(**JIT)
def nll_forward(x, tgt, w, ii, loss, wt):
    """loss[n,d] = -w[t]*x[n,t,d] and wt[n,d] = w[t], t = tgt[n,d]; both 0 where t == ii"""
    N, _, D = x.shape
    for n in range(N):
        for d in range(D):
            t = tgt[n, d]
            if t == ii:
                loss[n, d] = 0.0
                wt[n, d] = 0.0
            else:
                wr = np.float64(w[t])
                loss[n, d] = -wr * x[n, t, d]
                wt[n, d] = wr


@njit(**JIT)
def nll_backward(scale, tgt, w, ii, out):
    """out[n,tgt[n,d],d] = -scale[n,d]*w[tgt[n,d]] (out starts zeroed; skipped where t == ii)"""
    N, _, D = out.shape
    for n in range(N):
        for d in range(D):
            t = tgt[n, d]
            if t != ii:
                out[n, t, d] = cast(-scale[n, d] * np.float64(w[t]), out[0, 0, 0])


# --------------------------------------------------------------------------- per-element losses
# Each forward returns the float64 sum of the losses when `total`, else writes them to `out`.
# Optional per-element weights come as an array of the operands' size, or of size 0 for none.

@njit(fastmath=FAST, **JIT)
def mse_forward(x, y, out, total):
    """out[i] = (x[i] - y[i])**2"""
    acc = 0.0
    for i in range(x.size):
        d = x[i] - y[i]
        if total:
            acc += d * d
        else:
            out[i] = d * d
    return acc


@njit(fastmath=FAST, **JIT)
def mse_backward(x, y, g, out):
    """out[i] = 2*(x[i] - y[i])*g[i] (g of size 1 broadcasts)"""
    two = cast(2, x[0])
    if g.size == 1:
        s = g[0] * two
        for i in range(x.size):
            out[i] = (x[i] - y[i]) * s
    else:
        for i in range(x.size):
            out[i] = (x[i] - y[i]) * g[i] * two


@njit(fastmath=FAST, **JIT)
def smooth_l1_forward(x, y, beta, out, total):
    """out[i] = 0.5*d*d/beta if |d| < beta else |d| - 0.5*beta, d = x[i] - y[i]"""
    b = cast(beta, x[0])
    half = cast(0.5, x[0])
    acc = 0.0
    for i in range(x.size):
        d = x[i] - y[i]
        d = d if d >= 0 else -d
        v = half * d * d / b if d < b else d - half * b
        if total:
            acc += v
        else:
            out[i] = v
    return acc


@njit(fastmath=FAST, **JIT)
def smooth_l1_backward(x, y, beta, g, out):
    """out[i] = g[i] * (d/beta if |d| <= beta else sign(d)), d = x[i] - y[i]"""
    b = cast(beta, x[0])
    one = cast(1, x[0])
    for i in range(x.size):
        d = x[i] - y[i]
        v = -one if d < -b else (one if d > b else d / b)
        out[i] = v * (g[0] if g.size == 1 else g[i])


@njit(**JIT)
def bce_forward(x, y, w, out, total):
    """out[i] = -w[i]*(y[i]*max(log(x[i]), -100) + (1-y[i])*max(log(1-x[i]), -100))"""
    lo = cast(-100, x[0])
    one = cast(1, x[0])
    acc = 0.0
    for i in range(x.size):
        a = math.log(x[i])
        b = math.log1p(-x[i])
        v = (y[i] - one) * (b if b > lo else lo) - y[i] * (a if a > lo else lo)
        if w.size:
            v = v * w[i]
        if total:
            acc += v
        else:
            out[i] = v
    return acc


@njit(**JIT)
def bce_backward(x, y, w, g, out):
    """out[i] = g[i]*w[i]*(x[i] - y[i]) / max((1 - x[i])*x[i], 1e-12)"""
    one = cast(1, x[0])
    tiny = cast(1e-12, x[0])
    for i in range(x.size):
        den = (one - x[i]) * x[i]
        v = (x[i] - y[i]) / (den if den > tiny else tiny) * (g[0] if g.size == 1 else g[i])
        out[i] = v * w[i] if w.size else v


@njit(**JIT)
def bce_logits_forward(x, y, w, pw, out, total):
    """out[i] = w[i]*((1-y)*x + (1 + (pw[i]-1)*y)*softplus(-x)), x = x[i], y = y[i],
    softplus(-x) = log1p(exp(-|x|)) + max(-x, 0)"""
    one = cast(1, x[0])
    zero = cast(0, x[0])
    acc = 0.0
    for i in range(x.size):
        xi = x[i]
        yi = y[i]
        ax = xi if xi >= zero else -xi
        sp = math.log1p(math.exp(-ax)) + (-xi if xi < zero else zero)
        lw = one + (pw[i] - one) * yi if pw.size else one
        v = (one - yi) * xi + lw * sp
        if w.size:
            v = v * w[i]
        if total:
            acc += v
        else:
            out[i] = v
    return acc


@njit(**JIT)
def bce_logits_backward(x, y, w, pw, g, out):
    """out[i] = g[i]*w[i]*(sigmoid(x[i])*(1 + (pw[i]-1)*y[i]) - pw[i]*y[i])"""
    one = cast(1, x[0])
    zero = cast(0, x[0])
    for i in range(x.size):
        xi = x[i]
        yi = y[i]
        if xi >= zero:
            sg = one / (one + math.exp(-xi))
        else:
            e = math.exp(xi)
            sg = e / (one + e)
        if pw.size:
            v = sg * (one + (pw[i] - one) * yi) - pw[i] * yi
        else:
            v = sg - yi
        v = v * (g[0] if g.size == 1 else g[i])
        out[i] = v * w[i] if w.size else v


# --------------------------------------------------------------------------- launchers

def _chunk(C: int) -> int:
    return max(1, (1 << 15) // max(C, 1))


def loss_scale(g: np.ndarray, div: float, n: int) -> np.ndarray:
    """The n float64 factors g / div that the loss gradients take, one per row (element):
    g is a reduced loss's one-element gradient (one factor for all) or a contiguous
    gradient of n elements (reduction 'none')."""
    g = g.reshape(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        if g.size == 1:
            return np.full(n, np.float64(g[0]) / np.float64(div))
        return g.astype(np.float64) / np.float64(div)


def cross_entropy_index(x: np.ndarray, tgt: np.ndarray, w: np.ndarray, ii: int, eps: float):
    """Rows of logits x (R, C), class indices tgt (R,) (validated: in [0, C) or ii), class
    weights w (C,) in x's dtype. Returns (lse, loss, wt), float64 arrays of R elements: each
    row's log-sum-exp, its (smoothed, weighted) loss and its target's weight."""
    R = x.shape[0]
    lse, loss, wt = np.empty(R), np.empty(R), np.empty(R)
    wsum = float(np.sum(w, dtype=np.float64))
    if R:
        if x.size >= PARALLEL_MIN:
            ce_index_forward_par(x, tgt, w, wsum, ii, eps, lse, loss, wt, _chunk(x.shape[1]))
        else:
            ce_index_forward(x, tgt, w, wsum, ii, eps, lse, loss, wt)
    return lse, loss, wt


def cross_entropy_index_grad(x, lse, scale, tgt, w, ii, eps, shape=None) -> np.ndarray:
    """The gradient of cross_entropy_index's losses, each row's scaled by scale[r]: a fresh
    array of `shape` (x's by default; the same elements in row order)."""
    out = np.empty(x.shape if shape is None else shape, dtype=x.dtype)
    o = out.reshape(x.shape)
    wsum = float(np.sum(w, dtype=np.float64))
    if out.size:
        if x.size >= PARALLEL_MIN:
            ce_index_backward_par(x, lse, scale, tgt, w, wsum, ii, eps, o, _chunk(x.shape[1]))
        else:
            ce_index_backward(x, lse, scale, tgt, w, wsum, ii, eps, o)
    return out


def cross_entropy_prob(x: np.ndarray, p: np.ndarray, w: np.ndarray, eps: float):
    """Rows of logits x (R, C) against class probabilities p (R, C), class weights w (C,).
    Returns (lse, loss), float64 arrays of R elements."""
    R = x.shape[0]
    lse, loss = np.empty(R), np.empty(R)
    if R and x.shape[1]:
        if x.size >= PARALLEL_MIN:
            ce_prob_forward_par(x, p, w, eps, lse, loss, _chunk(x.shape[1]))
        else:
            ce_prob_forward(x, p, w, eps, lse, loss)
    elif R:
        lse[:], loss[:] = -np.inf, 0.0
    return lse, loss


def cross_entropy_prob_grad(x, lse, scale, p, w, eps, shape=None) -> np.ndarray:
    """The gradient wrt x of cross_entropy_prob's losses, each row's scaled by scale[r]: a
    fresh array of `shape` (x's by default)."""
    out = np.empty(x.shape if shape is None else shape, dtype=x.dtype)
    o = out.reshape(x.shape)
    if out.size:
        if x.size >= PARALLEL_MIN:
            ce_prob_backward_par(x, lse, scale, p, w, eps, o, _chunk(x.shape[1]))
        else:
            ce_prob_backward(x, lse, scale, p, w, eps, o)
    return out


def nll(x3: np.ndarray, tgt2: np.ndarray, w: np.ndarray, ii: int):
    """x3 (N, C, D), tgt2 (N, D) validated. Returns (loss, wt), float64 arrays (N, D)."""
    N, _, D = x3.shape
    loss, wt = np.empty((N, D)), np.empty((N, D))
    if loss.size:
        nll_forward(x3, tgt2, w, ii, loss, wt)
    return loss, wt


def nll_grad(scale: np.ndarray, tgt2: np.ndarray, w: np.ndarray, ii: int, shape3: tuple,
             dtype, shape: tuple) -> np.ndarray:
    """The gradient of nll's losses scaled by `scale` (loss_scale's N*D factors): zeros of
    `shape` (the input's, viewed as shape3 = (N, C, D)) with -scale*w[t] at each target."""
    out = np.zeros(shape, dtype=dtype)
    if scale.size and out.size:
        nll_backward(scale.reshape(shape3[0], shape3[2]), tgt2, w, ii, out.reshape(shape3))
    return out


_POINTWISE = {
    "mse": (mse_forward, mse_backward),
    "smooth_l1": (smooth_l1_forward, smooth_l1_backward),
    "bce": (bce_forward, bce_backward),
    "bce_logits": (bce_logits_forward, bce_logits_backward),
}


def pointwise_loss(name: str, x: np.ndarray, y: np.ndarray, extra: tuple, total: bool):
    """Per-element loss `name` of flat contiguous x and y (and `extra` operands: weights as
    flat arrays or empty ones, beta). Returns the float64 sum when `total`, else the losses
    in x's dtype and shape."""
    fwd = _POINTWISE[name][0]
    out = np.empty(0 if total else x.shape, dtype=x.dtype)
    if x.size == 0:
        return 0.0 if total else out
    s = fwd(x.reshape(-1), y.reshape(-1), *extra, out.reshape(-1), total)
    return s if total else out


def pointwise_loss_grad(name: str, x: np.ndarray, y: np.ndarray, extra: tuple,
                        g: np.ndarray) -> np.ndarray:
    """The gradient wrt x of loss `name`, times g (one value, or one per element): a fresh
    array of x's shape."""
    bwd = _POINTWISE[name][1]
    out = np.empty(x.shape, dtype=x.dtype)
    if x.size:
        bwd(x.reshape(-1), y.reshape(-1), *extra, np.ascontiguousarray(g).reshape(-1),
            out.reshape(-1))
    return out
