"""CUDA kernels of the index family (same launcher names and signatures as
``kernels/index.py``). Launchers listed in ``__all__`` replace the host-routed CPU kernel of
the same name. (The plane gather/scatter of max pooling's backward is in ``pool.py``.)

One thread per source element in grid-stride loops; accumulation uses atomic adds (dtypes
without one accumulate in int64 and are converted back), or in deterministic mode adds in
the sources' order (``ordered.py``). Index arrays may be host numpy arrays (uploaded) or
CudaArrays.
"""

from __future__ import annotations

from .. import settings
from .array import CudaArray, empty
from .launch import launch
from .movement import _dev, _from_work, _idx, _work_dtype, _zeros
from .ordered import add_in_order
from .runtime import config, cuda

__all__ = ["gather_dim", "scatter_add", "scatter_dim"]


@cuda.jit
def _scatter_add_k(out, idx, src):
    """out[idx[i]] += src[i]"""
    for i in range(cuda.grid(1), idx.size, cuda.gridsize(1)):
        cuda.atomic.add(out, idx[i], src[i])


def scatter_add(size: int, idx, src) -> CudaArray:
    """A zero buffer of `size` elements with src[i] added at flat position idx[i]."""
    dt = src.dtype
    wdt = _work_dtype(dt)
    out = _zeros((size,), wdt)
    if idx.size:
        idx = _idx(idx).reshape(-1)
        src = _dev(src, wdt).reshape(-1)
        if settings["deterministic"]:
            add_in_order(out, idx, src)
        else:
            g, b = config(idx.size)
            launch(_scatter_add_k, g, b, out.flat(), idx.flat(), src.flat())
    return _from_work(out, dt)


@cuda.jit
def _scatter_dim_k(g, idx, out, r, inner):
    """out[o, idx[o, j], j] = g[o, j] (out starts zeroed)"""
    for t in range(cuda.grid(1), g.size, cuda.gridsize(1)):
        j = t % inner
        o = t // inner
        out[(o * r + idx[t]) * inner + j] = g[t]


@cuda.jit
def _gather_dim_k(x, idx, out, r, inner):
    """out[o, j] = x[o, idx[o, j], j]"""
    for t in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        j = t % inner
        o = t // inner
        out[t] = x[(o * r + idx[t]) * inner + j]


def scatter_dim(g2, idx2, r: int) -> CudaArray:
    """Place g2[o, j] at row idx2[o, j] of a zero (outer, r, inner) block."""
    out = _zeros((g2.shape[0], r, g2.shape[1]), g2.dtype)
    if g2.size:
        gd = _dev(g2)
        gr, b = config(gd.size)
        launch(_scatter_dim_k, gr, b, gd.flat(), _idx(idx2).flat(), out.flat(), r, g2.shape[1])
    return out


def gather_dim(x3, idx2) -> CudaArray:
    """Pick x3[o, idx2[o, j], j] for every (o, j)."""
    out = empty(idx2.shape, x3.dtype)
    if out.size:
        xd = _dev(x3)
        g, b = config(out.size)
        launch(_gather_dim_k, g, b, xd.flat(), _idx(idx2).flat(), out.flat(), x3.shape[1],
               x3.shape[2])
    return out


def ptx_checks() -> list:
    """(what, kernel, argument types) of every kernel here, as the launchers call them, for
    tests/cuda_ptx_check.py (compiled to PTX for a real GPU without one)."""
    import numba
    import numpy as np

    from .runtime import vec as arr

    I64 = numba.int64

    checks = []
    for dt in (np.float32, np.float64, np.int64):  # the atomic accumulation dtypes
        T = numba.from_dtype(np.dtype(dt))
        checks.append((f"scatter_add {T}", _scatter_add_k, (arr(T), arr(I64), arr(T))))
    for dt in (np.float32, np.float64, np.int64):
        T = numba.from_dtype(np.dtype(dt))
        checks.append((f"scatter_dim {T}", _scatter_dim_k,
                       (arr(T), arr(I64), arr(T), I64, I64)))
        checks.append((f"gather_dim {T}", _gather_dim_k, (arr(T), arr(I64), arr(T), I64, I64)))
    return checks
