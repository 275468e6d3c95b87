"""CUDA kernels of the optim family (same launcher names and signatures as ``kernels/optim.py``):
fused optimizer updates, one grid-stride kernel per optimizer that reads a parameter, its
gradient and its state once and writes the parameter and the state in place on the device.
``optimizer_steps`` updates many parameters with few launches: up to MULTI parameters per
launch, each on its own row of blocks (``blockIdx.y``), their arrays passed as tuples.

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

__all__ = ["sgd_step", "adam_step", "rmsprop_step", "adagrad_step", "optimizer_steps"]

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
def _sgd_at(i, p, g, buf, neg_lr, wd, mom, one_minus_damp, use_wd, use_mom, nesterov, first,
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


@cuda.jit(device=True)
def _adam_at(i, p, g, m, v, vmax, decay, wd, w1, w1m, beta2, one_minus_beta2, bc2_sqrt, eps,
             neg_step, use_wd, decoupled, amsgrad, maximize):
    """p[i] -= step_size * m[i] / (sqrt(v[i]) / bc2_sqrt + eps), after m[i], v[i] (vmax[i])"""
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


@cuda.jit(device=True)
def _rmsprop_at(i, p, g, sq, gavg, buf, neg_lr, wd, alpha, one_minus_alpha, oma_minus_one, eps,
                mom, use_wd, centered, use_mom, maximize):
    """p[i] -= lr * g[i] / (sqrt(sq[i] (- gavg[i]^2)) + eps), through buf[i] if mom > 0"""
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


@cuda.jit(device=True)
def _adagrad_at(i, p, g, acc, neg_clr, wd, eps, use_wd, maximize):
    """acc[i] += g[i]^2; p[i] -= clr * g[i] / (sqrt(acc[i]) + eps)"""
    x = p[i]
    d = -g[i] if maximize else g[i]
    if use_wd:
        d = cuda.fma(x, wd, d)
    s = cuda.fma(d, d, acc[i])                      # sum.addcmul_(g, g, value=1)
    acc[i] = s
    p[i] = x + neg_clr * d / (_sqrt(s) + eps)


# --------------------------------------------------------------------------- kernels

# A multi-tensor launch updates up to MULTI parameters: each operand is a tuple of MULTI
# arrays (padded with empty ones), parameter j is updated by the blocks with blockIdx.y == j,
# so one kernel per optimizer and dtype serves any number of parameters.
MULTI = 8


def _kernels(name: str, at, n_arrays: int):
    """(one-parameter kernel, multi-tensor kernel) around element update `at`, which takes
    the element index, `n_arrays` arrays (the parameter first) and the hyperparameters."""
    if n_arrays == 3:
        def one(a, b, c, h):
            for i in range(cuda.grid(1), a.size, cuda.gridsize(1)):
                at(i, a, b, c, *h)

        def multi(a, b, c, h):
            j = cuda.blockIdx.y
            p, q, r = a[j], b[j], c[j]
            for i in range(cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x, p.size,
                           cuda.gridDim.x * cuda.blockDim.x):
                at(i, p, q, r, *h)
    else:  # five
        def one(a, b, c, d, e, h):
            for i in range(cuda.grid(1), a.size, cuda.gridsize(1)):
                at(i, a, b, c, d, e, *h)

        def multi(a, b, c, d, e, h):
            j = cuda.blockIdx.y
            p, q, r, s, t = a[j], b[j], c[j], d[j], e[j]
            for i in range(cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x, p.size,
                           cuda.gridDim.x * cuda.blockDim.x):
                at(i, p, q, r, s, t, *h)
    one.__name__ = one.__qualname__ = name  # how profiles name them
    multi.__name__ = multi.__qualname__ = name + "_multi"
    return cuda.jit(one), cuda.jit(multi)


_sgd, _sgd_multi = _kernels("sgd", _sgd_at, 3)
_adam, _adam_multi = _kernels("adam", _adam_at, 5)
_rmsprop, _rmsprop_multi = _kernels("rmsprop", _rmsprop_at, 5)
_adagrad, _adagrad_multi = _kernels("adagrad", _adagrad_at, 3)


# --------------------------------------------------------------------------- hyperparameters
# Each optimizer's kernel arguments after its arrays, rounded to the parameter's dtype T on
# the host exactly as the CPU kernels round them.

def _sgd_hyper(T, *, lr: float, weight_decay: float, momentum: float, dampening: float,
               nesterov: bool, maximize: bool, first: bool) -> tuple:
    return (-T(lr), T(weight_decay), T(momentum), T(1.0 - dampening), weight_decay != 0,
            momentum != 0, bool(nesterov), bool(first), bool(maximize))


def _adam_hyper(T, *, lr: float, beta1: float, beta2: float, eps: float, weight_decay: float,
                step: float, maximize: bool, decoupled: bool, amsgrad: bool) -> tuple:
    bias_correction1 = 1 - beta1 ** step
    bias_correction2 = 1 - beta2 ** step
    step_size = lr / bias_correction1
    w1 = T(1.0 - beta1)
    return (T(1.0 - lr * weight_decay), T(weight_decay), w1, w1 - T(1.0), T(beta2),
            T(1.0 - beta2), T(float(bias_correction2 ** 0.5)), T(eps), -T(step_size),
            weight_decay != 0, bool(decoupled), bool(amsgrad), bool(maximize))


def _rmsprop_hyper(T, *, lr: float, alpha: float, eps: float, weight_decay: float,
                   momentum: float, centered: bool, maximize: bool) -> tuple:
    oma = T(1.0 - alpha)
    return (-T(lr), T(weight_decay), T(alpha), oma, oma - T(1.0), T(eps), T(momentum),
            weight_decay != 0, bool(centered), momentum > 0, bool(maximize))


def _adagrad_hyper(T, *, lr: float, lr_decay: float, weight_decay: float, eps: float,
                   step: float, maximize: bool) -> tuple:
    clr = lr / (1 + (step - 1) * lr_decay)
    return (-T(clr), T(weight_decay), T(eps), weight_decay != 0, bool(maximize))


_KINDS = {"sgd": (_sgd, _sgd_multi, _sgd_hyper),
          "adam": (_adam, _adam_multi, _adam_hyper),
          "rmsprop": (_rmsprop, _rmsprop_multi, _rmsprop_hyper),
          "adagrad": (_adagrad, _adagrad_multi, _adagrad_hyper)}


# --------------------------------------------------------------------------- launchers

def _one(kind: str, arrays: tuple, hyper: dict) -> None:
    """Update one parameter (arrays: flat, the parameter first; a state buffer may be empty:
    unused)."""
    p = arrays[0]
    if p.size == 0:
        return
    one, _, make = _KINDS[kind]
    launch(one, *config(p.size), *[a.flat() for a in arrays], make(p.dtype.type, **hyper))


def sgd_step(p: CudaArray, g: CudaArray, buf: CudaArray, **hyper) -> None:
    """One SGD update of flat `p` in place; `buf` (the momentum buffer, written on the
    `first` step) is unused when momentum is 0."""
    _one("sgd", (p, g, buf), hyper)


def adam_step(p: CudaArray, g: CudaArray, m: CudaArray, v: CudaArray, vmax: CudaArray,
              **hyper) -> None:
    """One Adam (AdamW when `decoupled`) update of flat `p` and its moments, in place, at
    `step` (already counted); `vmax` is unused without amsgrad."""
    _one("adam", (p, g, m, v, vmax), hyper)


def rmsprop_step(p: CudaArray, g: CudaArray, sq: CudaArray, gavg: CudaArray,
                 buf: CudaArray, **hyper) -> None:
    """One RMSprop update of flat `p` and its state, in place (`gavg` unused unless
    centered, `buf` unless momentum > 0)."""
    _one("rmsprop", (p, g, sq, gavg, buf), hyper)


def adagrad_step(p: CudaArray, g: CudaArray, acc: CudaArray, **hyper) -> None:
    """One Adagrad update of flat `p` and its sum of squares, in place, at `step`."""
    _one("adagrad", (p, g, acc), hyper)


_PAD: dict = {}  # dtype -> the empty array that pads a multi-tensor launch's tuples


def optimizer_steps(kind: str, updates: list, **hyper) -> None:
    """The `kind` update ("sgd", "adam", "rmsprop", "adagrad") of every (arrays, own) in
    `updates`: arrays as the one-parameter launcher takes them, `own` the keyword arguments
    of that parameter alone (its step, or SGD's `first`). Parameters of one dtype and the
    same own arguments share launches, MULTI at a time."""
    groups: dict = {}
    for arrays, own in updates:
        if arrays[0].size:
            key = (arrays[0].dtype, tuple(sorted(own.items())))
            groups.setdefault(key, []).append(arrays)
    _, multi, make = _KINDS[kind]
    for (dt, own), group in groups.items():
        kw = dict(hyper, **dict(own))
        if len(group) == 1:
            _one(kind, group[0], kw)
            continue
        h = make(dt.type, **kw)
        pad = _PAD.get(dt)
        if pad is None:
            pad = _PAD[dt] = empty((0,), dt)
        pv = pad.flat()
        for lo in range(0, len(group), MULTI):
            part = group[lo:lo + MULTI]
            fill = [pv] * (MULTI - len(part))
            ops = tuple(tuple([arrays[k].flat() for arrays in part] + fill)
                        for k in range(len(part[0])))
            g, b = config(max(arrays[0].size for arrays in part))
            launch(multi, (g, MULTI), b, *ops, h)


def ptx_checks() -> list:
    """(what, kernel, argument types) of every kernel here, as the launchers call them, for
    tests/cuda_ptx_check.py (compiled to PTX for a real GPU without one): arrays and
    hyperparameters in the parameter's dtype, flags bool; the multi-tensor kernels take
    tuples of MULTI arrays."""
    import numba
    from numba import types

    B1 = numba.boolean
    checks = []
    for dt in (np.float32, np.float64):
        T = numba.from_dtype(np.dtype(dt))
        AT = types.Array(T, 1, "C")
        tup = types.UniTuple(AT, MULTI)
        for name, n, hyper in (("sgd", 3, (T,) * 4 + (B1,) * 5),
                               ("adam", 5, (T,) * 9 + (B1,) * 4),
                               ("rmsprop", 5, (T,) * 7 + (B1,) * 4),
                               ("adagrad", 3, (T,) * 3 + (B1,) * 2)):
            one, multi, _ = _KINDS[name]
            h = types.Tuple(hyper)
            checks.append((f"{name} {T}", one, (AT,) * n + (h,)))
            checks.append((f"{name} multi-tensor {T}", multi, (tup,) * n + (h,)))
    return checks
