"""CUDA kernels of the sort family (the launcher name and signature of ``kernels/sort.py``).

Rows are sorted stably, NaN after every number (before every number when descending), as
the CPU kernel and torch do. Two algorithms:

- Short rows (fewer than ``BITONIC_MIN`` elements, or 64 for a single row): one thread
  sorts one row by insertion, C**2 / 2 steps for a row of C, in one launch (class scores,
  top-k over a batch).
- Long rows: a bitonic network over (value, position) pairs, the row padded to a power of
  two P with positions past its end that sort last. Ties are broken by position, so the
  order is a strict total one and the network's result is the stable order.
  log2(P) * (log2(P) + 1) / 2 launches, each comparing every pair once (one thread a pair).
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


BITONIC_MIN = 512  # rows at least this long take the bitonic network


@cuda.jit(device=True)
def _before(ka, ia, kb, ib, C, descending):
    """Whether (value ka, position ia) sorts strictly before (kb, ib): positions C and up
    (padding) last, then NaN last (first when descending), then the values, then the
    positions."""
    if ib >= C:
        return ia < ib
    if ia >= C:
        return False
    an = ka != ka
    bn = kb != kb
    if an or bn:
        if an and bn:
            return ia < ib
        return an if descending else bn
    if ka == kb:
        return ia < ib
    return ka > kb if descending else ka < kb


def _bitonic_kernels(descending: bool):
    key = ("bitonic", descending)
    ks = _KERNELS.get(key)
    if ks is not None:
        return ks

    @cuda.jit
    def load(x, keys, idx, R, C, P):
        """keys[r, i] = x[r, i] and idx[r, i] = i, the padding (i >= C) a copy of x[r, 0]"""
        for w in range(cuda.grid(1), R * P, cuda.gridsize(1)):
            r = w // P
            i = w - r * P
            keys[w] = x[r * C + (i if i < C else 0)]
            idx[w] = i

    @cuda.jit
    def step(keys, idx, R, C, P, k, j):
        """one column of the network: pairs (i, i + j), i without bit j, in the order of
        the bitonic run of length k they sit in"""
        half = P // 2
        for w in range(cuda.grid(1), R * half, cuda.gridsize(1)):
            r = w // half
            t = w - r * half
            i = (t // j) * 2 * j + t % j
            a = r * P + i
            b = a + j
            ka, ia, kb, ib = keys[a], idx[a], keys[b], idx[b]
            if (i & k) == 0:
                swap = _before(kb, ib, ka, ia, C, descending)
            else:
                swap = _before(ka, ia, kb, ib, C, descending)
            if swap:
                keys[a] = kb
                keys[b] = ka
                idx[a] = ib
                idx[b] = ia

    @cuda.jit
    def front(idx, out, R, C, P):
        """out[r, :] = idx[r, :C]"""
        for w in range(cuda.grid(1), R * C, cuda.gridsize(1)):
            r = w // C
            out[w] = idx[r * P + (w - r * C)]

    ks = _KERNELS[key] = (load, step, front)
    return ks


def _bitonic(xd: CudaArray, out: CudaArray, descending: bool) -> None:
    R, C = xd.shape
    P = 1 << (C - 1).bit_length()
    load, step, front = _bitonic_kernels(bool(descending))
    keys = empty((R * P,), xd.dtype)
    idx = empty((R * P,), np.int64)
    kv, iv = keys.flat(), idx.flat()
    launch(load, *config(R * P), xd.reshape(-1).flat(), kv, iv, R, C, P)
    g, b = config(R * P // 2)
    k = 2
    while k <= P:
        j = k // 2
        while j >= 1:
            launch(step, g, b, kv, iv, R, C, P, k, j)
            j //= 2
        k *= 2
    launch(front, *config(R * C), iv, out.reshape(-1).flat(), R, C, P)


def argsort(x2, descending: bool) -> CudaArray:
    """The int64 (R, C) positions that sort each row of x2 (R, C), stably."""
    out = empty(x2.shape, np.int64)
    if out.size:
        R, C = x2.shape
        xd = _dev(x2)
        if C >= BITONIC_MIN or (R == 1 and C > 64):  # (one row: one thread for insertion)
            _bitonic(xd, out, descending)
            return out
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
            load, step, front = _bitonic_kernels(desc)
            checks.append((f"bitonic load {T}", load, (arr(T), arr(T), arr(I64), I64, I64, I64)))
            checks.append((f"bitonic step {T} descending={desc}", step,
                           (arr(T), arr(I64), I64, I64, I64, I64, I64)))
    checks.append(("bitonic front", _bitonic_kernels(False)[2],
                   (arr(I64), arr(I64), I64, I64, I64)))
    return checks
