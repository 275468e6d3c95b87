"""Fused optimizer updates for the CPU: for each optimizer, one kernel reads a parameter, its
gradient and its state buffers once and writes the parameter and the state in place.

Each kernel replays torch's single-tensor (``foreach=False``) update of one parameter,
operation by operation and in the parameter's dtype: the float64 hyperparameters are first
rounded to that dtype, as torch's kernels do with Python scalars, so trajectories agree with
torch's to rounding. The launchers take flat, contiguous arrays of one dtype that the caller
has validated (Numba checks no bounds), and switch to the ``prange`` variant from
``PARALLEL_MIN`` elements on.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

JIT = {"cache": True, "error_model": "numpy", "nogil": True}
PARALLEL_MIN = 1 << 21  # see kernels/elementwise.py


# --------------------------------------------------------------------------- element updates
# torch's CPU kernels compute ``add(x, alpha=a)``, ``addcmul``, ``lerp`` with a fused
# multiply-add (checked bit for bit against torch 2.13); ``_fma`` is one, since its own
# "contract" flag lets LLVM fuse its product and sum, and nothing else.

@njit(fastmath={"contract"})
def _fma(a, b, c):
    """a * b + c, rounded once."""
    return a * b + c


@njit(inline="always")
def _lerp(start, end, w, w_minus_one):
    """torch's lerp(start, end, w): fma(w, end - start, start), or fma(w - 1, end - start,
    end) when |w| >= 0.5."""
    diff = end - start
    if abs(w) < 0.5:
        return _fma(w, diff, start)
    return _fma(w_minus_one, diff, end)


# The element updates take and return scalars: the loops below do every load and store, so
# no array reaches an inlined helper (which would cost a reference-count pair per element).

@njit(inline="always")
def _sgd_elem(p, d, b, neg_lr, wd, mom, one_minus_damp, use_wd, use_mom, nesterov, first):
    if use_wd:
        d = _fma(p, wd, d)                             # grad.add(param, alpha=wd)
    if use_mom:
        # buf = d on the first step, then buf.mul_(momentum).add_(d, alpha=1 - dampening)
        b = d if first else _fma(d, one_minus_damp, b * mom)
        d = _fma(b, mom, d) if nesterov else b         # grad.add(buf, alpha=momentum)
    return _fma(d, neg_lr, p), b                       # param.add_(grad, alpha=-lr)


@njit(inline="always")
def _adam_elem(p, d, m, v, mx, decay, wd, w1, w1m, beta2, one_minus_beta2, bc2_sqrt, eps,
               neg_step, use_wd, decoupled, amsgrad):
    if use_wd:
        if decoupled:
            p = p * decay                              # param.mul_(1 - lr * wd)
        else:
            d = _fma(p, wd, d)                         # grad.add(param, alpha=wd)
    m = _lerp(m, d, w1, w1m)                           # exp_avg.lerp_(grad, 1 - beta1)
    v = _fma(one_minus_beta2 * d, d, v * beta2)        # .mul_(b2).addcmul_(g, g, 1 - b2)
    s = v
    if amsgrad:
        if v > mx or np.isnan(v):                      # torch.maximum propagates NaN
            mx = v
        s = mx
    den = np.sqrt(s) / bc2_sqrt + eps
    return p + neg_step * m / den, m, v, mx            # addcdiv_(m, den, value=-step_size)


@njit(inline="always")
def _rmsprop_elem(p, d, sq, ga, b, neg_lr, wd, alpha, one_minus_alpha, oma_minus_one, eps,
                  mom, use_wd, centered, use_mom):
    if use_wd:
        d = _fma(p, wd, d)
    sq = _fma(one_minus_alpha * d, d, sq * alpha)      # .mul_(a).addcmul_(g, g, 1 - a)
    s = sq
    if centered:
        ga = _lerp(ga, d, one_minus_alpha, oma_minus_one)
        s = _fma(-ga, ga, s)                           # addcmul(ga, ga, value=-1)
    avg = np.sqrt(s) + eps
    if use_mom:
        b = b * mom + d / avg                          # .mul_(m).addcdiv_(g, avg)
        p = _fma(b, neg_lr, p)                         # param.add_(buf, alpha=-lr)
    else:
        p = p + neg_lr * d / avg                       # param.addcdiv_(g, avg, value=-lr)
    return p, sq, ga, b


@njit(inline="always")
def _adagrad_elem(p, d, s, neg_clr, wd, eps, use_wd):
    if use_wd:
        d = _fma(p, wd, d)
    s = _fma(d, d, s)                                  # sum.addcmul_(g, g, value=1)
    return p + neg_clr * d / (np.sqrt(s) + eps), s


# --------------------------------------------------------------------------- kernels

@njit(**JIT)
def _sgd(p, g, buf, lr, wd, mom, damp, maximize, nesterov, first):
    """p[i] -= lr * d[i], d = g[i] (+ wd*p[i]), through the momentum buffer when mom != 0"""
    T = p.dtype.type
    neg_lr, wd_, mom_, omd = -T(lr), T(wd), T(mom), T(1.0 - damp)
    use_wd, use_mom = wd != 0, mom != 0
    read_buf = use_mom and not first
    for i in range(p.size):
        d = -g[i] if maximize else g[i]
        b = buf[i] if read_buf else d
        p[i], b = _sgd_elem(p[i], d, b, neg_lr, wd_, mom_, omd, use_wd, use_mom, nesterov,
                            first)
        if use_mom:
            buf[i] = b


@njit(parallel=True, **JIT)
def _sgd_par(p, g, buf, lr, wd, mom, damp, maximize, nesterov, first):
    """p[i] -= lr * d[i], d = g[i] (+ wd*p[i]), through the momentum buffer; in parallel"""
    T = p.dtype.type
    neg_lr, wd_, mom_, omd = -T(lr), T(wd), T(mom), T(1.0 - damp)
    use_wd, use_mom = wd != 0, mom != 0
    read_buf = use_mom and not first
    for i in prange(p.size):
        d = -g[i] if maximize else g[i]
        b = buf[i] if read_buf else d
        p[i], b = _sgd_elem(p[i], d, b, neg_lr, wd_, mom_, omd, use_wd, use_mom, nesterov,
                            first)
        if use_mom:
            buf[i] = b


@njit(**JIT)
def _adam(p, g, m, v, vmax, lr, beta1, beta2, eps, wd, step_size, bc2_sqrt, maximize,
          decoupled, amsgrad):
    """p[i] -= step_size * m[i] / (sqrt(v[i]) / bc2_sqrt + eps), after m[i], v[i] (vmax[i])"""
    T = p.dtype.type
    w1 = T(1.0 - beta1)
    decay, wd_, w1m, b2, omb2 = T(1.0 - lr * wd), T(wd), w1 - T(1.0), T(beta2), T(1.0 - beta2)
    bc2s, eps_, neg_step = T(bc2_sqrt), T(eps), -T(step_size)
    use_wd = wd != 0
    for i in range(p.size):
        d = -g[i] if maximize else g[i]
        mx = vmax[i] if amsgrad else d
        p[i], m[i], v[i], mx = _adam_elem(p[i], d, m[i], v[i], mx, decay, wd_, w1, w1m, b2,
                                          omb2, bc2s, eps_, neg_step, use_wd, decoupled,
                                          amsgrad)
        if amsgrad:
            vmax[i] = mx


@njit(parallel=True, **JIT)
def _adam_par(p, g, m, v, vmax, lr, beta1, beta2, eps, wd, step_size, bc2_sqrt, maximize,
              decoupled, amsgrad):
    """the Adam/AdamW update of p[i], m[i], v[i] (and vmax[i]); in parallel"""
    T = p.dtype.type
    w1 = T(1.0 - beta1)
    decay, wd_, w1m, b2, omb2 = T(1.0 - lr * wd), T(wd), w1 - T(1.0), T(beta2), T(1.0 - beta2)
    bc2s, eps_, neg_step = T(bc2_sqrt), T(eps), -T(step_size)
    use_wd = wd != 0
    for i in prange(p.size):
        d = -g[i] if maximize else g[i]
        mx = vmax[i] if amsgrad else d
        p[i], m[i], v[i], mx = _adam_elem(p[i], d, m[i], v[i], mx, decay, wd_, w1, w1m, b2,
                                          omb2, bc2s, eps_, neg_step, use_wd, decoupled,
                                          amsgrad)
        if amsgrad:
            vmax[i] = mx


@njit(**JIT)
def _rmsprop(p, g, sq, gavg, buf, lr, alpha, eps, wd, mom, maximize, centered):
    """p[i] -= lr * g[i] / (sqrt(sq[i] (- gavg[i]^2)) + eps), through buf[i] if mom > 0"""
    T = p.dtype.type
    oma = T(1.0 - alpha)
    neg_lr, wd_, alpha_, omam1, eps_, mom_ = -T(lr), T(wd), T(alpha), oma - T(1.0), T(eps), \
        T(mom)
    use_wd, use_mom = wd != 0, mom > 0
    for i in range(p.size):
        d = -g[i] if maximize else g[i]
        ga = gavg[i] if centered else d
        b = buf[i] if use_mom else d
        p[i], sq[i], ga, b = _rmsprop_elem(p[i], d, sq[i], ga, b, neg_lr, wd_, alpha_, oma,
                                           omam1, eps_, mom_, use_wd, centered, use_mom)
        if centered:
            gavg[i] = ga
        if use_mom:
            buf[i] = b


@njit(parallel=True, **JIT)
def _rmsprop_par(p, g, sq, gavg, buf, lr, alpha, eps, wd, mom, maximize, centered):
    """the RMSprop update of p[i], sq[i] (gavg[i], buf[i]); in parallel"""
    T = p.dtype.type
    oma = T(1.0 - alpha)
    neg_lr, wd_, alpha_, omam1, eps_, mom_ = -T(lr), T(wd), T(alpha), oma - T(1.0), T(eps), \
        T(mom)
    use_wd, use_mom = wd != 0, mom > 0
    for i in prange(p.size):
        d = -g[i] if maximize else g[i]
        ga = gavg[i] if centered else d
        b = buf[i] if use_mom else d
        p[i], sq[i], ga, b = _rmsprop_elem(p[i], d, sq[i], ga, b, neg_lr, wd_, alpha_, oma,
                                           omam1, eps_, mom_, use_wd, centered, use_mom)
        if centered:
            gavg[i] = ga
        if use_mom:
            buf[i] = b


@njit(**JIT)
def _adagrad(p, g, acc, clr, wd, eps, maximize):
    """acc[i] += g[i]^2; p[i] -= clr * g[i] / (sqrt(acc[i]) + eps)"""
    T = p.dtype.type
    neg_clr, wd_, eps_ = -T(clr), T(wd), T(eps)
    use_wd = wd != 0
    for i in range(p.size):
        d = -g[i] if maximize else g[i]
        p[i], acc[i] = _adagrad_elem(p[i], d, acc[i], neg_clr, wd_, eps_, use_wd)


@njit(parallel=True, **JIT)
def _adagrad_par(p, g, acc, clr, wd, eps, maximize):
    """acc[i] += g[i]^2; p[i] -= clr * g[i] / (sqrt(acc[i]) + eps); in parallel"""
    T = p.dtype.type
    neg_clr, wd_, eps_ = -T(clr), T(wd), T(eps)
    use_wd = wd != 0
    for i in prange(p.size):
        d = -g[i] if maximize else g[i]
        p[i], acc[i] = _adagrad_elem(p[i], d, acc[i], neg_clr, wd_, eps_, use_wd)


# --------------------------------------------------------------------------- launchers

def _pick(serial, parallel, n: int):
    return parallel if n >= PARALLEL_MIN else serial


def sgd_step(p: np.ndarray, g: np.ndarray, buf: np.ndarray, *, lr: float, weight_decay: float,
             momentum: float, dampening: float, nesterov: bool, maximize: bool,
             first: bool) -> None:
    """One SGD update of flat `p` in place; `buf` (the momentum buffer, written on the
    `first` step) is unused when momentum is 0."""
    _pick(_sgd, _sgd_par, p.size)(p, g, buf, float(lr), float(weight_decay), float(momentum),
                                  float(dampening), bool(maximize), bool(nesterov),
                                  bool(first))


def adam_step(p: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, vmax: np.ndarray, *,
              lr: float, beta1: float, beta2: float, eps: float, weight_decay: float,
              step: float, maximize: bool, decoupled: bool, amsgrad: bool) -> None:
    """One Adam (AdamW when `decoupled`) update of flat `p` and its moments, in place, at
    `step` (already counted); `vmax` is unused without amsgrad."""
    bias_correction1 = 1 - beta1 ** step
    bias_correction2 = 1 - beta2 ** step
    step_size = lr / bias_correction1
    _pick(_adam, _adam_par, p.size)(
        p, g, m, v, vmax, float(lr), float(beta1), float(beta2), float(eps),
        float(weight_decay), float(step_size), float(bias_correction2 ** 0.5), bool(maximize),
        bool(decoupled), bool(amsgrad))


def rmsprop_step(p: np.ndarray, g: np.ndarray, sq: np.ndarray, gavg: np.ndarray,
                 buf: np.ndarray, *, lr: float, alpha: float, eps: float, weight_decay: float,
                 momentum: float, centered: bool, maximize: bool) -> None:
    """One RMSprop update of flat `p` and its state, in place (`gavg` unused unless
    centered, `buf` unless momentum > 0)."""
    _pick(_rmsprop, _rmsprop_par, p.size)(
        p, g, sq, gavg, buf, float(lr), float(alpha), float(eps), float(weight_decay),
        float(momentum), bool(maximize), bool(centered))


def adagrad_step(p: np.ndarray, g: np.ndarray, acc: np.ndarray, *, lr: float, lr_decay: float,
                 weight_decay: float, eps: float, step: float, maximize: bool) -> None:
    """One Adagrad update of flat `p` and its sum of squares, in place, at `step`."""
    clr = lr / (1 + (step - 1) * lr_decay)
    _pick(_adagrad, _adagrad_par, p.size)(p, g, acc, float(clr), float(weight_decay),
                                          float(eps), bool(maximize))


_STEPS = {"sgd": sgd_step, "adam": adam_step, "rmsprop": rmsprop_step,
          "adagrad": adagrad_step}


def optimizer_steps(kind: str, updates: list, **hyper) -> None:
    """The `kind` update ("sgd", "adam", "rmsprop", "adagrad") of every (arrays, own) in
    `updates`: arrays as the one-parameter launcher takes them, `own` the keyword arguments
    of that parameter alone (its step, or SGD's `first`)."""
    step = _STEPS[kind]
    for arrays, own in updates:
        step(*arrays, **hyper, **own)
