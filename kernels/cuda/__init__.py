"""The CUDA backend: the launchers the op layer calls for tensors whose storage is a
``CudaArray``, under the same names as ``kernels/cpu.py``.

Importing this package imports numba-cuda (``jitgrad.cuda`` does it on first use of the
device). Each family's native kernels live in a module of this package. A launcher of the
CPU namespace that has no CUDA kernel yet is *host-routed*: its operands are copied to the
host, the CPU kernel runs, and the results are copied back (``HOST_ROUTED`` lists those
names; ``docs/cuda.md`` says which they are). Results are the CPU's, only slower.
"""

from __future__ import annotations

import types as _types

import numpy as np

from .. import cpu as _cpu
from . import runtime  # noqa: F401  (jitgrad.cuda reaches the runtime through here)
from .array import CudaArray, empty, from_host
from .conv import *  # noqa: F401,F403,E402
from .elementwise import binary, copy_strided, ternary, unary  # noqa: F401
from .embedding import *  # noqa: F401,F403,E402
from .index import *  # noqa: F401,F403,E402
from .loss import *  # noqa: F401,F403,E402
from .matmul import addmm, matmul  # noqa: F401
from .movement import *  # noqa: F401,F403,E402
from .norm import *  # noqa: F401,F403,E402
from .optim import *  # noqa: F401,F403,E402
from .pointwise import *  # noqa: F401,F403,E402
from .pool import *  # noqa: F401,F403,E402

# Each family module exports its native launchers in __all__ (one line per family).
from .reduce import *  # noqa: F401,F403,E402
from .reduce import as_3d, extreme, from_3d, sum_  # noqa: F401
from .scan import *  # noqa: F401,F403,E402
from .softmax import *  # noqa: F401,F403,E402
from .sort import *  # noqa: F401,F403,E402

storage = CudaArray


def zeros(shape, dtype) -> CudaArray:
    out = empty(shape, dtype)
    out.fill(0)
    return out


def full(shape, value, dtype) -> CudaArray:
    out = empty(shape, dtype)
    out.fill(np.asarray(value).astype(dtype) if np.dtype(dtype) != np.bool_ else bool(value))
    return out


def fill(out: CudaArray, value) -> CudaArray:
    """Set every element of `out` to `value`."""
    out.fill(value)
    return out


def cast(a: CudaArray, dtype) -> CudaArray:
    """A copy of `a` converted to `dtype`."""
    return copy_strided(a, dtype)


def copy(a: CudaArray) -> CudaArray:
    """A contiguous copy of `a`."""
    return copy_strided(a, a.dtype)


# --------------------------------------------------------------------------- host routing

def _to_host(v, seen: list):
    if isinstance(v, CudaArray):
        h = v.get()
        seen.append((v, h, h.copy() if v.flags.writeable and v.flags.c_contiguous else None))
        return h
    if isinstance(v, (list, tuple)):
        return type(v)(_to_host(x, seen) for x in v)
    return v


def _to_device(v):
    if isinstance(v, np.ndarray):
        return from_host(v)
    if isinstance(v, tuple) and not hasattr(v, "_fields"):
        return tuple(_to_device(x) for x in v)
    if isinstance(v, list):
        return [_to_device(x) for x in v]
    return v


def _host_routed(name: str, fn):
    def launcher(*args, **kwargs):
        seen: list = []
        hargs = _to_host(args, seen)
        hkw = {k: _to_host(v, seen) for k, v in kwargs.items()}
        res = fn(*hargs, **hkw)
        for dev, host, before in seen:  # operands the CPU kernel wrote into
            if before is not None and not np.array_equal(host, before, equal_nan=True):
                dev[...] = from_host(host)
        return _to_device(res)

    launcher.__name__ = name
    launcher.__doc__ = f"{name} on CUDA storage, through the CPU kernel (host-routed)."
    return launcher


_LAYOUT_ONLY = {"storage", "as_3d", "from_3d"}
HOST_ROUTED = sorted(  # (a family module named like a launcher, e.g. softmax, does not count)
    n for n in dir(_cpu)
    if not n.startswith("_") and callable(getattr(_cpu, n))
    and (n not in globals() or isinstance(globals()[n], _types.ModuleType))
    and n not in _LAYOUT_ONLY and not isinstance(getattr(_cpu, n), type))
for _n in HOST_ROUTED:
    globals()[_n] = _host_routed(_n, getattr(_cpu, _n))
