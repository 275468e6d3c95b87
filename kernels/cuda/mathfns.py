"""Scalar math for the CUDA bodies: what ``scalar._fn`` and ``scalar._np`` return while bodies
are made for the GPU (``scalar.target("cuda")``).

On a GPU these are device functions over CUDA's libdevice (``math.exp`` on a float32 compiles
to ``__nv_expf``, ...). In the simulator kernels run as Python, so the CPU's float64 libm
helpers and numpy's functions serve as they are.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .. import scalar
from .runtime import SIM, cuda

_cache: dict = {}


def _make_gpu(T, name: str):
    from numba.cuda import libdevice

    f32 = T == numba.float32
    one = T(1) if isinstance(T, numba.types.Float) else 1.0
    simple = {
        "exp": lambda x: math.exp(x),
        "expm1": lambda x: math.expm1(x),
        "log": lambda x: math.log(x),
        "log1p": lambda x: math.log1p(x),
        "log2": lambda x: math.log2(x),
        "log10": lambda x: math.log10(x),
        "tanh": lambda x: math.tanh(x),
        "erf": lambda x: math.erf(x),
        "floor": lambda x: math.floor(x),
        "ceil": lambda x: math.ceil(x),
        "trunc": lambda x: math.trunc(x),
        "fmod": lambda a, b: math.fmod(a, b),
        "exp2": (lambda x: libdevice.exp2f(x)) if f32 else (lambda x: libdevice.exp2(x)),
        "rint": (lambda x: libdevice.rintf(x)) if f32 else (lambda x: libdevice.rint(x)),
    }
    if name == "sigmoid":
        def sigmoid(x):
            # exp's argument stays non-positive: no overflow for large |x|
            if x >= 0:
                return one / (one + math.exp(-x))
            e = math.exp(x)
            return e / (one + e)
        return cuda.jit(device=True)(sigmoid)
    return cuda.jit(device=True)(simple[name])


def _make_sim(T, name: str):
    if name in ("floor", "ceil", "trunc", "fmod", "rint", "exp2"):
        return getattr(np, name)
    return scalar._LIBM[name]


def get(T, name: str):
    """The target's scalar function `name` for operands of numba type T."""
    key = (T, name)
    f = _cache.get(key)
    if f is None:
        f = _cache[key] = (_make_sim if SIM else _make_gpu)(T, name)
    return f
