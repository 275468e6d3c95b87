"""CUDA kernels of the optim family (same launcher names and signatures as ``kernels/optim.py``):
fused optimizer updates, one grid-stride kernel per optimizer that reads a parameter, its
gradient and its state once and writes the parameter and the state in place on the device.

The element updates replay ``kernels/optim.py``'s (torch's single-tensor update, operation by
operation, in the parameter's dtype): the hyperparameters are rounded to that dtype on the
host, exactly as the CPU kernels round them, and passed by value; ``cuda.fma`` is the fused
multiply-add torch's kernels use. On a GPU ``math.sqrt`` and ``math.isnan`` compile to
libdevice; in the simulator numpy's functions keep float32 arithmetic in float32.
"""

from __future__ import annotations

import math

import numpy as np

from .array import CudaArray, empty
from .launch import launch
from .runtime import SIM, config, cuda

__all__ = ["sgd_step", "sgd_steps", "adam_step", "rmsprop_step", "adagrad_step"]

if SIM:
    _sqrt, _isnan = np.sqrt, np.isnan
else:
    _sqrt, _isnan = math.sqrt, math.isnan


# --------------------------------------------------------------------------- element updates

@cuda.jit(device=True)
def _lerp(start, end, w, w_minus_one):
    """torch's lerp(start, end, w): fma(w, end - start, start), or fma(w - 1, end - start,
    end) when |w| >= 0.5."""
    diff = end - start
    if abs(w) < 0.5:
        return cuda.fma(w, diff, start)
    return cuda.fma(w_minus_one, diff, end)


@cuda.jit(device=True)
def _sgd_at(p, g, buf, i, neg_lr, wd, mom, one_minus_damp, use_wd, use_mom, nesterov, first,
            maximize):
    """p[i] -= lr * d[i], d = g[i] (+ wd*p[i]), through the momentum buffer when mom != 0"""
    x = p[i]
    d = -g[i] if maximize else g[i]
    if use_wd:
        d = cuda.fma(x, wd, d)                      # grad.add(param, alpha=wd)
    if use_mom:
        # buf = d on the first step, then buf.mul_(momentum).add_(d, alpha=1 - dampening)
        b = d if first else cuda.fma(d, one_minus_damp, buf[i] * mom)
        buf[i] = b
        d = cuda.fma(b, mom, d) if nesterov else b  # grad.add(buf, alpha=momentum)
    p[i] = cuda.fma(d, neg_lr, x)                   # param.add_(grad, alpha=-lr)


@cuda.jit
def _sgd(p, g, buf, neg_lr, wd, mom, one_minus_damp, use_wd, use_mom, nesterov, first,
         maximize):
    for i in range(cuda.grid(1), p.size, cuda.gridsize(1)):
        _sgd_at(p, g, buf, i, neg_lr, wd, mom, one_minus_damp, use_wd, use_mom, nesterov,
                first, maximize)


# A multi-tensor launch updates up to MULTI parameters: tuples of MULTI arrays (padded with
# empty ones) and the running ends of their element ranges, so one kernel per dtype serves
# any number of parameters.
MULTI = 8


@cuda.jit
def _sgd_multi(ps, gs, bufs, ends, neg_lr, wd, mom, one_minus_damp, use_wd, use_mom, nesterov,
               first, maximize):
    for e in range(cuda.grid(1), ends[MULTI - 1], cuda.gridsize(1)):
        j = 0
        while e >= ends[j]:
            j += 1
        i = e - ends[j - 1] if j > 0 else e
        _sgd_at(ps[j], gs[j], bufs[j], i, neg_lr, wd, mom, one_minus_damp, use_wd, use_mom,
                nesterov, first, maximize)


@cuda.jit
def _adam(p, g, m, v, vmax, decay, wd, w1, w1m, beta2, one_minus_beta2, bc2_sqrt, eps,
          neg_step, use_wd, decoupled, amsgrad, maximize):
    """p[i] -= step_size * m[i] / (sqrt(v[i]) / bc2_sqrt + eps), after m[i], v[i] (vmax[i])"""
    for i in range(cuda.grid(1), p.size, cuda.gridsize(1)):
        x = p[i]
        d = -g[i] if maximize else g[i]
        if use_wd:
            if decoupled:
                x = x * decay                           # param.mul_(1 - lr * wd)
            else:
                d = cuda.fma(x, wd, d)                  # grad.add(param, alpha=wd)
        mi = _lerp(m[i], d, w1, w1m)                    # exp_avg.lerp_(grad, 1 - beta1)
        vi = cuda.fma(one_minus_beta2 * d, d, v[i] * beta2)  # .mul_(b2).addcmul_(g, g, 1-b2)
        m[i] = mi
        v[i] = vi
        s = vi
        if amsgrad:
            mx = vmax[i]
            if vi > mx or _isnan(vi):                   # torch.maximum propagates NaN
                mx = vi
            vmax[i] = mx
            s = mx
        den = _sqrt(s) / bc2_sqrt + eps
        p[i] = x + neg_step * mi / den                  # addcdiv_(m, den, value=-step_size)


@cuda.jit
def _rmsprop(p, g, sq, gavg, buf, neg_lr, wd, alpha, one_minus_alpha, oma_minus_one, eps, mom,
             use_wd, centered, use_mom, maximize):
    """p[i] -= lr * g[i] / (sqrt(sq[i] (- gavg[i]^2)) + eps), through buf[i] if mom > 0"""
    for i in range(cuda.grid(1), p.size, cuda.gridsize(1)):
        x = p[i]
        d = -g[i] if maximize else g[i]
        if use_wd:
            d = cuda.fma(x, wd, d)
        s = cuda.fma(one_minus_alpha * d, d, sq[i] * alpha)  # .mul_(a).addcmul_(g, g, 1 - a)
        sq[i] = s
        if centered:
            ga = _lerp(gavg[i], d, one_minus_alpha, oma_minus_one)
            gavg[i] = ga
            s = cuda.fma(-ga, ga, s)                    # addcmul(ga, ga, value=-1)
        avg = _sqrt(s) + eps
        if use_mom:
            b = buf[i] * mom + d / avg                  # .mul_(m).addcdiv_(g, avg)
            buf[i] = b
            p[i] = cuda.fma(b, neg_lr, x)               # param.add_(buf, alpha=-lr)
        else:
            p[i] = x + neg_lr * d / avg                 # param.addcdiv_(g, avg, value=-lr)


@cuda.jit
def _adagrad(p, g, acc, neg_clr, wd, eps, use_wd, maximize):
    """acc[i] += g[i]^2; p[i] -= clr * g[i] / (sqrt(acc[i]) + eps)"""
    for i in range(cuda.grid(1), p.size, cuda.gridsize(1)):
        x = p[i]
        d = -g[i] if maximize else g[i]
        if use_wd:
            d = cuda.fma(x, wd, d)
        s = cuda.fma(d, d, acc[i])                      # sum.addcmul_(g, g, value=1)
        acc[i] = s
        p[i] = x + neg_clr * d / (_sqrt(s) + eps)


# --------------------------------------------------------------------------- launchers

def _kv(a: CudaArray):
    """The kernel view of flat, contiguous `a` (a state buffer may be empty: unused)."""
    return a.flat()


def _run(kernel, p: CudaArray, *args) -> None:
    n = p.size
    if n == 0:
        return
    g, b = config(n)
    launch(kernel, g, b, *args)


def sgd_step(p: CudaArray, g: CudaArray, buf: CudaArray, *, lr: float, weight_decay: float,
             momentum: float, dampening: float, nesterov: bool, maximize: bool,
             first: bool) -> None:
    """One SGD update of flat `p` in place; `buf` (the momentum buffer, written on the
    `first` step) is unused when momentum is 0."""
    T = p.dtype.type
    use_mom = momentum != 0
    _run(_sgd, p, p.flat(), g.flat(), _kv(buf), -T(lr), T(weight_decay), T(momentum),
         T(1.0 - dampening), weight_decay != 0, use_mom, bool(nesterov), bool(first),
         bool(maximize))


_PAD: dict = {}  # dtype -> the empty array that pads a multi-tensor launch's tuples


def _chunks(arrays: list, pad_dtype):
    """The kernel views of `arrays` (lists of flat arrays, one list per operand) in groups
    of MULTI: (tuples per operand, running element ends), padded with empty arrays."""
    pad = _PAD.get(pad_dtype)
    if pad is None:
        pad = _PAD[pad_dtype] = empty((0,), pad_dtype)
    n = len(arrays[0])
    for lo in range(0, n, MULTI):
        hi = min(n, lo + MULTI)
        ends = []
        total = 0
        for p in arrays[0][lo:hi]:
            total += p.size
            ends.append(total)
        ends += [total] * (MULTI - len(ends))
        views = tuple(tuple([a.flat() for a in ops[lo:hi]] + [pad.flat()] * (MULTI - hi + lo))
                      for ops in arrays)
        yield views, tuple(ends), total


def sgd_steps(updates: list, *, lr: float, weight_decay: float, momentum: float,
              dampening: float, nesterov: bool, maximize: bool) -> None:
    """sgd_step for each (p, g, buf, first) of `updates` (flat arrays, one dtype per
    parameter): parameters of one dtype and `first` share launches, MULTI at a time."""
    groups: dict = {}
    for p, g, buf, first in updates:
        if p.size:
            groups.setdefault((p.dtype, bool(first)), []).append((p, g, buf))
    use_mom = momentum != 0
    for (dt, first), us in groups.items():
        T = dt.type
        if len(us) == 1:
            p, g, buf = us[0]
            sgd_step(p, g, buf, lr=lr, weight_decay=weight_decay, momentum=momentum,
                     dampening=dampening, nesterov=nesterov, maximize=maximize, first=first)
            continue
        hyper = (-T(lr), T(weight_decay), T(momentum), T(1.0 - dampening), weight_decay != 0,
                 use_mom, bool(nesterov), first, bool(maximize))
        for (ps, gs, bufs), ends, total in _chunks([[u[k] for u in us] for k in range(3)], dt):
            launch(_sgd_multi, *config(total), ps, gs, bufs, ends, *hyper)


def adam_step(p: CudaArray, g: CudaArray, m: CudaArray, v: CudaArray, vmax: CudaArray, *,
              lr: float, beta1: float, beta2: float, eps: float, weight_decay: float,
              step: float, maximize: bool, decoupled: bool, amsgrad: bool) -> None:
    """One Adam (AdamW when `decoupled`) update of flat `p` and its moments, in place, at
    `step` (already counted); `vmax` is unused without amsgrad."""
    T = p.dtype.type
    bias_correction1 = 1 - beta1 ** step
    bias_correction2 = 1 - beta2 ** step
    step_size = lr / bias_correction1
    w1 = T(1.0 - beta1)
    _run(_adam, p, p.flat(), g.flat(), m.flat(), v.flat(), _kv(vmax),
         T(1.0 - lr * weight_decay), T(weight_decay), w1, w1 - T(1.0), T(beta2),
         T(1.0 - beta2), T(float(bias_correction2 ** 0.5)), T(eps), -T(step_size),
         weight_decay != 0, bool(decoupled), bool(amsgrad), bool(maximize))


def rmsprop_step(p: CudaArray, g: CudaArray, sq: CudaArray, gavg: CudaArray,
                 buf: CudaArray, *, lr: float, alpha: float, eps: float, weight_decay: float,
                 momentum: float, centered: bool, maximize: bool) -> None:
    """One RMSprop update of flat `p` and its state, in place (`gavg` unused unless
    centered, `buf` unless momentum > 0)."""
    T = p.dtype.type
    oma = T(1.0 - alpha)
    _run(_rmsprop, p, p.flat(), g.flat(), sq.flat(), _kv(gavg), _kv(buf), -T(lr),
         T(weight_decay), T(alpha), oma, oma - T(1.0), T(eps), T(momentum),
         weight_decay != 0, bool(centered), momentum > 0, bool(maximize))


def adagrad_step(p: CudaArray, g: CudaArray, acc: CudaArray, *, lr: float, lr_decay: float,
                 weight_decay: float, eps: float, step: float, maximize: bool) -> None:
    """One Adagrad update of flat `p` and its sum of squares, in place, at `step`."""
    T = p.dtype.type
    clr = lr / (1 + (step - 1) * lr_decay)
    _run(_adagrad, p, p.flat(), g.flat(), acc.flat(), -T(clr), T(weight_decay), T(eps),
         weight_decay != 0, bool(maximize))


def ptx_checks() -> list:
    """(what, kernel, argument types) of every kernel here, as the launchers call them, for
    tests/cuda_ptx_check.py (compiled to PTX for a real GPU without one): arrays and
    hyperparameters in the parameter's dtype, flags bool."""
    import numba
    from numba import types

    B1 = numba.boolean
    checks = []
    for dt in (np.float32, np.float64):
        T = numba.from_dtype(np.dtype(dt))
        AT = types.Array(T, 1, "C")
        checks.append((f"sgd {T}", _sgd, (AT,) * 3 + (T,) * 4 + (B1,) * 5))
        tup = types.UniTuple(AT, MULTI)
        checks.append((f"sgd multi-tensor {T}", _sgd_multi,
                       (tup,) * 3 + (types.UniTuple(numba.int64, MULTI),) + (T,) * 4
                       + (B1,) * 5))
        checks.append((f"adam {T}", _adam, (AT,) * 5 + (T,) * 9 + (B1,) * 4))
        checks.append((f"rmsprop {T}", _rmsprop, (AT,) * 5 + (T,) * 7 + (B1,) * 4))
        checks.append((f"adagrad {T}", _adagrad, (AT,) * 3 + (T,) * 3 + (B1,) * 2))
    return checks
