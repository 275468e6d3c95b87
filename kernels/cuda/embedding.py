"""CUDA kernels of the embedding family (same launcher names and signatures as
``kernels/embedding.py``). Launchers listed in ``__all__`` replace the host-routed CPU kernel
of the same name.

The forward is a row gather, one thread per output element. The backward adds gradient rows
into the rows they were read from with atomic adds, one thread per gradient element (float
gradients only, as autograd produces), or in deterministic mode in the rows' order
(``ordered.py``), then divides by the index counts for ``scale_grad_by_freq``. Indices were
validated by the caller; host index arrays (the saved ones) are uploaded.
"""

from __future__ import annotations

import numpy as np

from .. import settings
from .array import CudaArray, empty, from_host
from .launch import launch
from .ordered import add_in_order
from .runtime import config, cuda

__all__ = ["embedding", "embedding_backward"]

_kernels: dict = {}


def _launch(k, n: int, *args) -> None:
    g, b = config(n)
    launch(k, g, b, *args)


def _ks():
    ks = _kernels.get("emb")
    if ks is not None:
        return ks

    @cuda.jit
    def gather(w, idx, D, out):
        """out[i, j] = w[idx[i], j]"""
        for e in range(cuda.grid(1), out.size, cuda.gridsize(1)):
            out[e] = w[idx[e // D] * D + e % D]

    @cuda.jit
    def add_rows(g, idx, D, skip, out):
        """out[idx[i], j] += g[i, j] for idx[i] != skip (atomic)"""
        for e in range(cuda.grid(1), g.size, cuda.gridsize(1)):
            r = idx[e // D]
            if r != skip:
                cuda.atomic.add(out, r * D + e % D, g[e])

    @cuda.jit
    def targets(idx, D, skip, dest):
        """dest[i * D + j]: where add_rows adds g[i, j] (-1: the padding row, skipped)"""
        for e in range(cuda.grid(1), dest.size, cuda.gridsize(1)):
            r = idx[e // D]
            dest[e] = -1 if r == skip else r * D + e % D

    @cuda.jit
    def count(idx, counts):
        """counts[r] = the number of times r occurs in idx"""
        for e in range(cuda.grid(1), idx.size, cuda.gridsize(1)):
            cuda.atomic.add(counts, idx[e], 1)

    @cuda.jit
    def scale(out, counts, D):
        """out[r, j] /= max(counts[r], 1)"""
        for e in range(cuda.grid(1), out.size, cuda.gridsize(1)):
            c = counts[e // D]
            out[e] = out[e] / (c if c > 1 else 1)

    ks = _kernels["emb"] = (gather, add_rows, count, scale, targets)
    return ks


def _idx(idx) -> CudaArray:
    if not isinstance(idx, CudaArray):
        return from_host(np.ascontiguousarray(idx).reshape(-1))
    return (idx if idx.flags.c_contiguous else idx.copy()).reshape(-1)


def embedding(w: CudaArray, idx) -> CudaArray:
    """Rows idx of w: shape idx.shape + (D,)."""
    D = w.shape[1]
    out = empty(tuple(idx.shape) + (D,), w.dtype)
    if out.size:
        w = w if w.flags.c_contiguous else w.copy()
        ix = _idx(idx)
        _launch(_ks()[0], out.size, w.reshape(-1).flat(), ix.flat(), D, out.reshape(-1).flat())
    return out


def embedding_backward(g: CudaArray, idx, num: int, padding_idx: int,
                       scale_by_freq: bool) -> CudaArray:
    """(num, D) zeros with row i of g (reshaped to (-1, D)) added to row idx[i]; the padding
    row gets nothing; with scale_by_freq each row is divided by its index count."""
    D = g.shape[-1]
    out = empty((num, D), g.dtype)
    out.fill(0)
    ix = _idx(idx)
    if ix.size and D:
        gathers, add_rows, count, scale, targets = _ks()
        g2 = (g if g.flags.c_contiguous else g.copy()).reshape(-1)
        if settings["deterministic"]:
            dest = empty((g2.size,), np.int64)
            _launch(targets, g2.size, ix.flat(), D, int(padding_idx), dest.flat())
            add_in_order(out.reshape(-1), dest, g2)
        else:
            _launch(add_rows, g2.size, g2.flat(), ix.flat(), D, int(padding_idx),
                    out.reshape(-1).flat())
        if scale_by_freq:
            counts = empty(num, np.int64)
            counts.fill(0)
            _launch(count, ix.size, ix.flat(), counts.flat())
            _launch(scale, out.size, out.reshape(-1).flat(), counts.flat(), D)
    return out


def ptx_checks() -> list:
    """(what, kernel, argument types) of every kernel here, as the launchers call them, for
    tests/cuda_ptx_check.py (compiled to PTX for a real GPU without one). Forward indices
    are int64 or int32; the backward's are the saved int64 ones."""
    import numba

    from .runtime import vec as arr

    I64 = numba.int64

    gather, add_rows, count, scale, targets = _ks()
    checks = [("embedding targets", targets, (arr(I64), I64, I64, arr(I64)))]
    for dt in (np.float32, np.float64):
        T = numba.from_dtype(np.dtype(dt))
        for it in (np.int64, np.int32):
            IT = numba.from_dtype(np.dtype(it))
            checks.append((f"embedding {T} {IT}", gather, (arr(T), arr(IT), I64, arr(T))))
        checks.append((f"embedding add_rows {T}", add_rows,
                       (arr(T), arr(I64), I64, I64, arr(T))))
        checks.append((f"embedding scale {T}", scale, (arr(T), arr(I64), I64)))
    checks.append(("embedding count", count, (arr(I64), arr(I64))))
    return checks
