"""Matrix products for the CPU.

Products of floating-point matrices go to the BLAS that numpy links (OpenBLAS or MKL): a
hand-written loop nest reaches about a tenth of its throughput, and Numba's own `np.dot`
binding would need SciPy at run time. Shape checks are made by the caller; operands follow
np.matmul's conventions (1-D operands, broadcast batch dimensions).
"""

from __future__ import annotations

import ctypes
import glob
import os

import numpy as np

# Below this many multiply-adds a product runs on one BLAS thread: measured here, a second
# OpenBLAS thread does not speed up the products of an MLP step (128x784 @ 784x256 and
# smaller) and slows them down badly whenever the other core is busy.
SINGLE_THREAD_BELOW = 1 << 26

_threads: list = []  # [(get, set)] of numpy's OpenBLAS thread count, or [None]


def _blas_threads():
    """numpy's OpenBLAS thread-count functions, when numpy bundles an OpenBLAS that has
    them (its scipy-openblas build), else None."""
    if not _threads:
        ctl = None
        libdir = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs")
        for path in glob.glob(os.path.join(libdir, "*openblas*")):
            try:
                lib = ctypes.CDLL(path)
                get, put = (lib.scipy_openblas_get_num_threads64_,
                            lib.scipy_openblas_set_num_threads64_)
            except (OSError, AttributeError):
                continue
            get.restype = ctypes.c_int
            put.argtypes = [ctypes.c_int]
            ctl = (get, put)
            break
        _threads.append(ctl)
    return _threads[0]


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(..., n, k) @ (..., k, m) -> (..., n, m), batch dimensions broadcast."""
    # multiply-adds: batch x n x k x m, the batch being the larger operand's (1-D operands
    # count as one row or one column)
    m = b.shape[-1] if b.ndim > 1 else 1
    n = a.shape[-2] if a.ndim > 1 else 1
    if max(a.size * m, b.size * n) < SINGLE_THREAD_BELOW:
        ctl = _blas_threads()
        if ctl is not None:
            threads = ctl[0]()
            if threads > 1:
                ctl[1](1)
                try:
                    return np.matmul(a, b)
                finally:
                    ctl[1](threads)
    return np.matmul(a, b)


def addmm(bias: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """bias + a @ b for matrices a and b, bias broadcastable to the product."""
    out = matmul(a, b)
    out += bias
    return out
