"""Matrix products for the CPU.

Products of floating-point matrices go to the BLAS that numpy links (OpenBLAS or MKL): a
hand-written loop nest reaches about a tenth of its throughput, and Numba's own `np.dot`
binding would need SciPy at run time. Shape checks and the 1-D/batched conventions are made by
the caller; here both operands are at least 2-D and their batch dimensions broadcast.
"""

from __future__ import annotations

import numpy as np


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(..., n, k) @ (..., k, m) -> (..., n, m), batch dimensions broadcast."""
    return np.matmul(a, b)
