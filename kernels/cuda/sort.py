"""CUDA kernel of the sort family (the launcher name and signature of ``kernels/sort.py``).

One thread sorts one row by insertion, which is stable and orders NaN after every number
(before every number when descending), as the CPU kernel and torch do. It costs C**2 / 2
steps for a row of C elements: meant for the rows jitgrad sorts in practice (class scores,
top-k), not for sorting millions of elements in one row.
"""

from __future__ import annotations

import numpy as np

from .array import CudaArray, empty
from .launch import launch
from .movement import _dev
from .runtime import config, cuda

__all__ = ["argsort"]

_KERNELS: dict = {}


def _kernel(descending: bool):
    k = _KERNELS.get(descending)
    if k is not None:
        return k

    @cuda.jit
    def rows(x, idx, R, C):
        for r in range(cuda.grid(1), R, cuda.gridsize(1)):
            base = r * C
            for j in range(C):
                idx[base + j] = j
            for j in range(1, C):
                v = x[base + j]
                i = j - 1
                while i >= 0:
                    u = x[base + idx[base + i]]
                    if descending:  # v first if larger, or NaN over a number
                        first = v > u or (v != v and u == u)
                    else:  # v first if smaller, or a number over NaN
                        first = v < u or (u != u and v == v)
                    if not first:
                        break
                    idx[base + i + 1] = idx[base + i]
                    i -= 1
                idx[base + i + 1] = j

    _KERNELS[descending] = rows
    return rows


def argsort(x2, descending: bool) -> CudaArray:
    """The int64 (R, C) positions that sort each row of x2 (R, C), stably."""
    out = empty(x2.shape, np.int64)
    if out.size:
        R, C = x2.shape
        xd = _dev(x2)
        g, b = config(R)
        launch(_kernel(bool(descending)), g, b, xd.reshape(-1).flat(), out.reshape(-1).flat(),
               R, C)
    return out


def ptx_checks() -> list:
    """(what, kernel, argument types) of every kernel here, for tests/cuda_ptx_check.py."""
    import numba

    from .runtime import vec as arr

    I64 = numba.int64
    checks = []
    for dt in (np.float32, np.float64, np.int64, np.int32, np.uint8, np.bool_):
        T = numba.from_dtype(np.dtype(dt))
        for desc in (False, True):
            checks.append((f"argsort {T} descending={desc}", _kernel(desc),
                           (arr(T), arr(I64), I64, I64)))
    return checks
