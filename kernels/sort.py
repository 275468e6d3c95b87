"""Sorting kernels: the stable order of each row of a 2-D block.

Rows are sorted with Numba's merge sort (stable; NaN after every number, as torch orders
it). Descending order keeps equal elements in their original order too: the row is sorted
reversed, and the result read backwards.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

JIT = dict(cache=True, error_model="numpy", nogil=True)


def _rows(x, out, descending):
    R, C = x.shape
    for r in prange(R):
        if descending:
            o = np.argsort(x[r, ::-1], kind="mergesort")
            for j in range(C):
                out[r, j] = C - 1 - o[C - 1 - j]
        else:
            out[r, :] = np.argsort(x[r], kind="mergesort")


_argsort_serial = njit(**JIT)(_rows)
_argsort_parallel = njit(parallel=True, **JIT)(_rows)


def argsort(x2: np.ndarray, descending: bool) -> np.ndarray:
    """The int64 (R, C) positions that sort each row of x2 (R, C), stably."""
    out = np.empty(x2.shape, dtype=np.int64)
    if x2.size:
        k = _argsort_parallel if x2.shape[0] > 1 and x2.size >= 1 << 16 else _argsort_serial
        k(np.ascontiguousarray(x2), out, bool(descending))
    return out
