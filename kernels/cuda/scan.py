"""CUDA kernels of the scan family (same launcher names and signatures as ``kernels/scan.py``):
running sums and products, the running product's backward, the linear recurrence and shift.
Launchers listed in ``__all__`` replace the host-routed CPU kernel of the same name.

Operands are contiguous (outer, r, inner) blocks scanned along the middle axis, with float64
accumulators for floats and int64 for integers (as on the CPU). With lanes (o, j) enough to
fill the card, or short ones, one thread per lane runs the lane's chain. Otherwise running
sums, products and the linear recurrence scan in three steps: each thread folds one chunk of
a lane into its total (the recurrence's chunk is the affine map y -> A*y + B), the chunks'
totals are scanned (by the same function: recursively while they are many), and each thread
scans its chunk again from the running value before it. The split depends only on the shape
and the device, so results repeat exactly; they may differ from the CPU's sequential chain
in the last bits of float sums.
"""

from __future__ import annotations

import numba
import numpy as np

from .array import CudaArray, empty
from .elementwise import binary
from .launch import launch
from .reduce import chunk_span
from .runtime import config, cuda, max_threads

__all__ = ["cumsum", "cumprod", "cumprod_backward", "linrec", "shift"]
_kernels: dict = {}


def _get(key, make):
    k = _kernels.get(key)
    if k is None:
        k = _kernels[key] = make()
    return k


def _acc(dtype):
    return numba.float64 if np.dtype(dtype).kind == "f" else numba.int64


def _geom(a: CudaArray, dim: int) -> tuple:
    """(outer, r, inner) of `a` around `dim` (a 0-d array: (1, 1, 1))."""
    if a.ndim == 0:
        return 1, 1, 1
    outer = 1
    for n in a.shape[:dim]:
        outer *= n
    inner = 1
    for n in a.shape[dim + 1:]:
        inner *= n
    return outer, a.shape[dim], inner


def _contiguous(a: CudaArray, dtype=None) -> CudaArray:
    """`a` (cast to `dtype`) as a C-contiguous array. (Hold it while a launch uses its
    ``flat()``: under the simulator a kernel view does not keep its memory.)"""
    if dtype is not None and a.dtype != np.dtype(dtype):
        return a.astype(dtype)
    return a if a.flags.c_contiguous else a.copy()


def _scan_kernel(acc_type, product: bool):
    @cuda.jit
    def k(a, out, r, inner, lanes, reverse):
        """out[o, k, j] = sum (product) of a[o, i, j] over i <= k (i >= k when reverse)"""
        for o in range(cuda.grid(1), lanes, cuda.gridsize(1)):
            base = (o // inner) * r * inner + o % inner
            acc = acc_type(1) if product else acc_type(0)
            for t in range(r):
                kk = r - 1 - t if reverse else t
                i = base + kk * inner
                if product:
                    acc *= a[i]
                else:
                    acc += a[i]
                out[i] = acc
    return k


SUM, PROD, LINREC = 0, 1, 2
MIN_CHUNK = 16  # elements per thread, at least, when a lane is split into chunks


def _plan(lanes: int, r: int) -> tuple:
    """(nchunk, chunk) for scanning `lanes` lanes of length r: (1, r) when one thread per
    lane fills a quarter of the card or a lane is short."""
    busy = max_threads()
    if lanes >= busy // 4 or r <= 4 * MIN_CHUNK:
        return 1, r
    n = min(-(-busy // lanes), -(-r // MIN_CHUNK))
    chunk = -(-r // n)
    return -(-r // chunk), chunk


def _chunk_kernels(acc_type, mode: int):
    """(totals, rescan) of running sums (mode SUM), products (PROD) or the linear recurrence
    (LINREC) over chunks of `chunk` positions in scan order; work item w = (chunk c, lane),
    neighbouring threads on neighbouring lanes."""
    unit = acc_type(1) if mode == PROD else acc_type(0)  # the running value's start

    @cuda.jit(device=True)
    def take(acc, a, b, i):
        if mode == SUM:
            return acc + a[i]
        if mode == PROD:
            return acc * a[i]
        return a[i] * acc + b[i]

    @cuda.jit
    def totals(a, b, ta, tb, r, inner, chunk, nchunk, reverse):
        """tb[c, lane]: the chunk's sum or product, or with ta[c, lane] its map A*y + B"""
        lanes = tb.size // nchunk
        for w in range(cuda.grid(1), tb.size, cuda.gridsize(1)):
            base, lo, hi, _ = chunk_span(w, lanes, r, inner, chunk)
            A = acc_type(1)
            B = unit
            for t in range(lo, hi):
                i = base + (r - 1 - t if reverse else t) * inner
                if mode == LINREC:
                    A *= a[i]
                B = take(B, a, b, i)
            tb[w] = B
            if mode == LINREC:
                ta[w] = A

    @cuda.jit
    def rescan(a, b, carry, out, r, inner, chunk, nchunk, reverse):
        """out over chunk c of a lane, from the running value carry[c - 1, lane]"""
        lanes = carry.size // nchunk
        for w in range(cuda.grid(1), carry.size, cuda.gridsize(1)):
            base, lo, hi, _ = chunk_span(w, lanes, r, inner, chunk)
            acc = unit if lo == 0 else acc_type(carry[w - lanes])
            for t in range(lo, hi):
                i = base + (r - 1 - t if reverse else t) * inner
                acc = take(acc, a, b, i)
                out[i] = acc

    return totals, rescan


def _run(mode: int, a, b, out, outer: int, r: int, inner: int, reverse: bool) -> None:
    """Scan the contiguous (outer, r, inner) arrays a (and b, for LINREC) into out."""
    lanes = outer * inner
    acc = _acc(out.dtype)
    nchunk, chunk = _plan(lanes, r)
    g, bl = config(lanes)
    if nchunk == 1:
        if mode == LINREC:
            k = _get(("linrec", acc), lambda: _linrec_kernel(acc))
            launch(k, g, bl, a.flat(), b.flat(), out.flat(), r, inner, lanes, bool(reverse))
        else:
            k = _get(("scan", acc, mode == PROD),
                     lambda: _scan_kernel(acc, mode == PROD))
            launch(k, g, bl, a.flat(), out.flat(), r, inner, lanes, bool(reverse))
        return
    totals, rescan = _get(("chunks", acc, mode), lambda: _chunk_kernels(acc, mode))
    acc_np = numba.np.numpy_support.as_dtype(acc)
    n = nchunk * lanes
    tb = empty((n,), acc_np)
    ta = empty((n,), acc_np) if mode == LINREC else tb  # (unused unless LINREC)
    bb = b if mode == LINREC else a  # (a stands in for b: read by no kernel)
    g, bl = config(n)
    launch(totals, g, bl, a.flat(), bb.flat(), ta.flat(), tb.flat(), r, inner, chunk, nchunk,
           bool(reverse))
    # the running values after each chunk: the same scan over the (nchunk, lanes) totals
    carry = empty((n,), acc_np)
    _run(mode, ta, tb, carry, 1, nchunk, lanes, False)
    launch(rescan, g, bl, a.flat(), bb.flat(), carry.flat(), out.flat(), r, inner, chunk,
           nchunk, bool(reverse))


def _scan(a: CudaArray, dim: int, out_dtype, reverse: bool, mode: int) -> CudaArray:
    out = empty(a.shape, out_dtype)
    if out.size:
        src = _contiguous(a)
        _run(mode, src, src, out, *_geom(a, dim), reverse)
    return out


def cumsum(a: CudaArray, dim: int, out_dtype, reverse: bool = False) -> CudaArray:
    """Running sums of `a` along `dim`, in `out_dtype`."""
    return _scan(a, dim, out_dtype, reverse, SUM)


def cumprod(a: CudaArray, dim: int, out_dtype, reverse: bool = False) -> CudaArray:
    """Running products of `a` along `dim`, in `out_dtype`."""
    return _scan(a, dim, out_dtype, reverse, PROD)


def _cumprod_backward_kernel(acc_type):
    @cuda.jit
    def k(g, x, y, out, r, inner, lanes, reverse):
        """out[k] = y[k - 1] * s[k], s[k] = g[k] + x[k + 1] * s[k + 1] (mirrored)"""
        for o in range(cuda.grid(1), lanes, cuda.gridsize(1)):
            base = (o // inner) * r * inner + o % inner
            s = acc_type(0)
            for t in range(r - 1, -1, -1):
                kk = r - 1 - t if reverse else t
                i = base + kk * inner
                if t < r - 1:
                    kn = kk - 1 if reverse else kk + 1
                    s = s * x[base + kn * inner] + g[i]
                else:
                    s = acc_type(g[i])
                if t > 0:
                    kp = kk + 1 if reverse else kk - 1
                    out[i] = s * y[base + kp * inner]
                else:
                    out[i] = s
    return k


def cumprod_backward(g, x: CudaArray, y: CudaArray, dim: int,
                     reverse: bool = False) -> CudaArray:
    """The gradient of cumprod(x, dim) = y for the output gradient g, without division."""
    out = empty(x.shape, x.dtype)
    if out.size:
        outer, r, inner = _geom(x, dim)
        n = outer * inner
        if _plan(n, r)[0] > 1:  # long lanes: s is a linear recurrence, scanned in chunks
            gf = _full(g, x)
            # s[k] = g[k] + x[k + 1] * s[k + 1] (mirrored when reverse); out[k] = s[k] * y[k - 1]
            s = linrec(shift(x, dim, 1 if reverse else -1, 0), gf, dim, not reverse)
            yc = _contiguous(y, x.dtype)
            return binary("mul", s, shift(yc, dim, -1 if reverse else 1, 1), x.shape, out=out)
        acc = _acc(x.dtype)
        k = _get(("cumprod_backward", acc), lambda: _cumprod_backward_kernel(acc))
        gb, b = config(n)
        gf, xc, yc = _full(g, x), _contiguous(x), _contiguous(y, x.dtype)
        launch(k, gb, b, gf.flat(), xc.flat(), yc.flat(), out.flat(), r, inner, n,
               bool(reverse))
    return out


def _full(g, like: CudaArray) -> CudaArray:
    """g (CudaArray or host value broadcastable to like's shape) as a contiguous array of
    like's shape and dtype."""
    if not isinstance(g, CudaArray):
        from .array import from_host

        g = from_host(np.broadcast_to(np.asarray(g, dtype=like.dtype), like.shape).copy())
    if g.shape != like.shape:
        g = g.broadcast_to(like.shape)
    return _contiguous(g, like.dtype)


def _linrec_kernel(acc_type):
    @cuda.jit
    def k(a, b, out, r, inner, lanes, reverse):
        """out[k] = a[k] * out[k - 1] + b[k] (k + 1 when reverse), from 0"""
        for o in range(cuda.grid(1), lanes, cuda.gridsize(1)):
            base = (o // inner) * r * inner + o % inner
            acc = acc_type(0)
            for t in range(r):
                kk = r - 1 - t if reverse else t
                i = base + kk * inner
                acc = a[i] * acc + b[i]
                out[i] = acc
    return k


def linrec(a: CudaArray, b, dim: int, reverse: bool = False) -> CudaArray:
    """y[k] = a[k] * y[k - 1] + b[k] along `dim` from y = 0 (y[k + 1] when reverse)."""
    out = empty(a.shape, a.dtype)
    if out.size:
        src = _contiguous(a)
        bb = _full(b, a)
        _run(LINREC, src, bb, out, *_geom(a, dim), reverse)
    return out


def shift(a: CudaArray, dim: int, by: int, fill) -> CudaArray:
    """`a` moved by one position along `dim` (by = +1: towards higher indices), the vacated
    slot set to `fill` and the element pushed out dropped."""
    out = empty(a.shape, a.dtype)
    if out.size == 0:
        return out
    if a.ndim == 0:
        out.fill(fill)
        return out
    n = a.shape[dim]
    head = (slice(None),) * dim
    if by > 0:
        if n > 1:
            out[head + (slice(1, n),)] = a[head + (slice(0, n - 1),)]
        out[head + (slice(0, 1),)] = fill
    else:
        if n > 1:
            out[head + (slice(0, n - 1),)] = a[head + (slice(1, n),)]
        out[head + (slice(n - 1, n),)] = fill
    return out


def ptx_checks() -> list:
    """(what, kernel, argument types) of every kernel here, as the launchers call them, for
    tests/cuda_ptx_check.py (compiled to PTX for a real GPU without one)."""
    from .runtime import vec as arr

    I64, B1 = numba.int64, numba.boolean

    checks = []
    # cumsum / cumprod: operand and output in one dtype (integers and bools scan as int64)
    for dt in (np.float32, np.float64, np.int64):
        T, acc = numba.from_dtype(np.dtype(dt)), _acc(dt)
        for product in (False, True):
            checks.append((f"scan {T} product={product}", _scan_kernel(acc, product),
                           (arr(T), arr(T), I64, I64, I64, B1)))
    # the chunked scans: elements of T (or the totals, in acc, one level down) into T
    for dt in (np.float32, np.float64, np.int64):
        T0, acc = numba.from_dtype(np.dtype(dt)), _acc(dt)
        for mode in (SUM, PROD, LINREC) if dt != np.int64 else (SUM, PROD):
            totals, rescan = _chunk_kernels(acc, mode)
            for T in sorted({T0, acc}, key=str):  # (a fixed order: the PTX check shards it)
                checks.append((f"scan totals {T} mode={mode}", totals,
                               (arr(T), arr(T), arr(acc), arr(acc), I64, I64, I64, I64, B1)))
                checks.append((f"scan rescan {T} mode={mode}", rescan,
                               (arr(T), arr(T), arr(acc), arr(T), I64, I64, I64, I64, B1)))
    for dt in (np.float32, np.float64):
        T, acc = numba.from_dtype(np.dtype(dt)), _acc(dt)
        checks.append((f"cumprod_backward {T}", _cumprod_backward_kernel(acc),
                       (arr(T), arr(T), arr(T), arr(T), I64, I64, I64, B1)))
        checks.append((f"linrec {T}", _linrec_kernel(acc),
                       (arr(T), arr(T), arr(T), I64, I64, I64, B1)))
    return checks
