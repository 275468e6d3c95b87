"""Accumulation in the sources' order, for deterministic mode
(``jitgrad.use_deterministic_algorithms``).

``add_in_order(out, dest, vals)`` is ``out[dest[i]] += vals[i]`` for every i, as the CPU's
loop does it: each destination takes its sources in increasing i, starting from its current
value, so float sums come out bit for bit the same on every run and on both devices. The
sources are sorted by destination (stably, ``sort.argsort``); then the first source of each
destination's run adds the whole run. With ``replace`` the run's last value is written
instead (a scatter whose later writes win). Negative destinations are skipped.
"""

from __future__ import annotations

from .array import CudaArray
from .launch import launch
from .runtime import config, cuda

__all__: list = []  # (a helper of the accumulating families, not a launcher)


@cuda.jit
def _runs(dest, vals, order, out, replace):
    """the first source (in sorted order) of each destination's run folds the run into out"""
    n = order.size
    for s in range(cuda.grid(1), n, cuda.gridsize(1)):
        t = dest[order[s]]
        if t < 0 or (s > 0 and dest[order[s - 1]] == t):
            continue
        e = s
        if replace:
            while e + 1 < n and dest[order[e + 1]] == t:
                e += 1
            out[t] = vals[order[e]]
        else:
            acc = out[t]
            while e < n and dest[order[e]] == t:
                acc += vals[order[e]]
                e += 1
            out[t] = acc


def add_in_order(out: CudaArray, dest: CudaArray, vals: CudaArray, replace: bool = False):
    """out (contiguous) with vals[i] added (or, with replace, written) at flat position
    dest[i] (int64, contiguous, vals' size; negative: skipped), each position taking its
    sources in order."""
    from .sort import argsort  # (sort.py reads movement.py, which reads this module)

    n = dest.size
    if n == 0:
        return
    order = argsort(dest.reshape(1, n), False)
    launch(_runs, *config(n), dest.flat(), vals.flat(), order.flat(), out.flat(),
           bool(replace))


def ptx_checks() -> list:
    """(what, kernel, argument types) of the kernel here, as the launchers call it."""
    import numba

    from .runtime import vec as arr

    I64 = numba.int64
    return [(f"ordered runs {T}", _runs, (arr(I64), arr(T), arr(I64), arr(T), numba.boolean))
            for T in (numba.float32, numba.float64, numba.int64, numba.uint64, numba.bool_,
                      numba.int32, numba.int16, numba.int8, numba.uint8)]
