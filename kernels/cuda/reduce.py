"""Reductions for CUDA over the same contiguous (outer, r, inner) blocks as the CPU
(``reduce.as_3d`` makes them for both), with float64 accumulators for floats as on the CPU.

Two layouts: a last axis (inner == 1) gives each output a block of threads (strided,
coalesced reads, then a tree in shared memory); an inner axis gives each output a thread,
neighbouring threads on neighbouring columns. A long axis with few outputs is cut into
chunks reduced in parallel, then a second launch combines each output's partials
(``chunks``). Sums have kernels of their own; every other reduction is a ``Fold``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .. import reduce as _cpu_reduce
from ..reduce import as_3d, from_3d  # noqa: F401  (layout helpers shared with the CPU)
from .array import CudaArray, empty, from_host
from .elementwise import binary
from .launch import launch
from .runtime import block_size, blocks, config, cuda, max_threads

__all__ = ["sum_", "extreme", "prod", "prod_backward", "moments", "var_backward", "vector_norm",
           "any_all", "amax", "extreme_backward"]
_kernels: dict = {}


def _sum_kernels(acc_type):
    """The two sum kernels for accumulator `acc_type`:

    rows: a is (outer, r) (inner == 1). Work item w = (o, c) sums the c-th chunk of row o
          with a block of threads (coalesced strides, then a tree in shared memory):
          out[w] = scale * sum a[o, c*chunk : (c+1)*chunk].
    cols: a is (outer, r, inner) with inner > 1. One thread per work item w = (c, o, j),
          neighbouring threads on neighbouring j, so each step of the loop over r reads
          contiguous memory: out[w] = scale * sum over the c-th chunk of q of a[o, q, j].
    With one chunk per lane they write the result; with several, a second call sums the
    float64 (int64) partials per lane. The chunking depends only on the shape, so the
    result is the same on every run."""
    key = ("sum", acc_type)
    k = _kernels.get(key)
    if k is not None:
        return k
    B = block_size()

    @cuda.jit
    def rows(a, out, r, chunk, nchunk, scale):
        sh = cuda.shared.array(B, acc_type)
        t = cuda.threadIdx.x
        for w in range(cuda.blockIdx.x, out.size, cuda.gridDim.x):
            o = w // nchunk
            lo = (w - o * nchunk) * chunk
            hi = min(r, lo + chunk)
            sh[t] = strided_sum(a, o * r + lo + t, B, max(hi - lo - t + B - 1, 0) // B,
                                acc_type(0))
            cuda.syncthreads()
            tree_sum(sh, t, B)
            if t == 0:
                out[w] = sh[0] * scale
            cuda.syncthreads()

    @cuda.jit
    def cols(a, out, r, inner, chunk, nchunk, scale):
        lanes = out.size // nchunk
        for w in range(cuda.grid(1), out.size, cuda.gridsize(1)):
            base, lo, hi, _ = chunk_span(w, lanes, r, inner, chunk)
            out[w] = strided_sum(a, base + lo * inner, inner, hi - lo, acc_type(0)) * scale

    k = _kernels[key] = (rows, cols)
    return k


@cuda.jit(device=True)
def chunk_span(w, lanes, r, inner, chunk):
    """Work item w = (chunk c, lane) of a pass over an (outer, r, inner) block in chunks of
    `chunk` positions, lanes numbered (o, j): (index of the lane's first element, the
    chunk's first and end positions, the lane)."""
    c = w // lanes
    lane = w - c * lanes
    o = lane // inner
    lo = c * chunk
    return o * r * inner + (lane - o * inner), lo, min(r, lo + chunk), lane


@cuda.jit(device=True)
def strided_sum(a, p, step, n, zero):
    """sum of a[p + k * step] for k < n, from `zero` (its type is the accumulator's): four
    independent partial sums, so four loads are in flight at a time."""
    s0 = zero
    s1 = zero
    s2 = zero
    s3 = zero
    k = 0
    while k + 3 < n:
        s0 += a[p]
        s1 += a[p + step]
        s2 += a[p + 2 * step]
        s3 += a[p + 3 * step]
        p += 4 * step
        k += 4
    while k < n:
        s0 += a[p]
        p += step
        k += 1
    return (s0 + s1) + (s2 + s3)


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def chunks(outer: int, r: int, inner: int) -> tuple:
    """(nchunk, chunk): how a reduction of an (outer, r, inner) block splits its axis. A long
    axis with few outputs is cut into chunks of `chunk` that blocks (rows, inner == 1) or
    threads (columns) reduce in parallel; a second launch then combines each lane's
    partials. The split depends only on the shape and the device, so results are the same
    on every run."""
    lanes = outer * inner
    B = block_size()
    busy = max_threads()
    if inner == 1:
        # enough rows to fill the card, or rows short enough for one block: one chunk each
        n = 1 if lanes * B >= busy or r <= 8 * B else min(_ceil(busy, lanes * B),
                                                        _ceil(r, 8 * B))
    else:
        # a quarter of the card's threads or short columns: one chunk each. Up to 128 rows
        # on a GPU (a bias gradient over a batch) one pass is quicker than a second launch;
        # the simulator's 4-thread blocks chunk almost every column, so CI runs both passes
        n = (1 if lanes >= busy // 4 or r <= B // 2 else
             min(_ceil(busy, lanes), _ceil(r, 32), 1024))
    if n == 1:
        return 1, r
    chunk = _ceil(r, n)
    return _ceil(r, chunk), chunk  # no empty last chunk


_sum_plans: dict = {}


def _sum_plan(outer: int, r: int, inner: int, floating: bool) -> tuple:
    """(kernel, grid, block, nchunk, chunk, accumulator dtype) of a sum over the middle axis
    of an (outer, r, inner) block: the same for every call of one shape (a training loop's
    bias gradients), so worked out once."""
    key = (outer, r, inner, floating)
    p = _sum_plans.get(key)
    if p is None:
        rows, cols = _sum_kernels(numba.float64 if floating else numba.int64)
        B = block_size()
        nchunk, chunk = chunks(outer, r, inner)
        work = outer * inner * nchunk
        k, (g, b) = (rows, (blocks(work), B)) if inner == 1 else (cols, config(work))
        if len(_sum_plans) >= 1024:
            _sum_plans.clear()
        p = _sum_plans[key] = (k, g, b, nchunk, chunk, np.float64 if floating else np.int64)
    return p


def sum_(a3: CudaArray, out_dtype, scale: float = 1.0) -> CudaArray:
    """Sum a contiguous (outer, r, inner) array over axis 1, times `scale` (a long axis with
    few outputs in chunks, then their partials: see ``chunks``)."""
    outer, r, inner = a3.shape
    out = empty((outer, inner), out_dtype)
    if out.size == 0:
        return out
    floating = a3.dtype.kind == "f"
    k, g, b, nchunk, chunk, acc_np = _sum_plan(outer, r, inner, floating)
    sc = np.float64(scale) if floating else np.int64(scale)
    if nchunk == 1:
        if inner == 1:
            launch(k, g, b, a3.flat(), out.flat(), r, r, 1, sc)
        else:
            launch(k, g, b, a3.flat(), out.flat(), r, inner, r, 1, sc)
        return out
    lanes = outer * inner
    part = empty((lanes * nchunk,), acc_np)
    one = acc_np(1)
    if inner == 1:
        launch(k, g, b, a3.flat(), part.flat(), r, chunk, nchunk, one)
        launch(k, blocks(lanes), b, part.flat(), out.flat(), nchunk, nchunk, 1, sc)
    else:
        launch(k, g, b, a3.flat(), part.flat(), r, inner, chunk, nchunk, one)
        launch(k, *config(lanes), part.flat(), out.flat(), nchunk, lanes, nchunk, 1, sc)
    return out


_F64 = numba.float64


def _get(key, make):
    k = _kernels.get(key)
    if k is None:
        k = _kernels[key] = make()
    return k


def _launch(k, lanes: int, *args) -> None:
    """Launch block-per-lane kernel `k` over `lanes` lanes."""
    B = block_size()
    g, _ = config(lanes * B)
    launch(k, g, B, *args)


def _host(fn, *args):
    """Run the CPU kernel on host copies (degenerate shapes only: empty reductions)."""
    from . import _to_device, _to_host

    return _to_device(fn(*_to_host(args, [])))


def lanes_of(g, dtype, n: int) -> CudaArray:
    """A reduced-shape operand (CudaArray or host number/array) as a contiguous 1-D device
    array of `dtype` and n elements. (Hold it while a launch uses its ``flat()``: under the
    simulator a kernel view does not keep its memory.)"""
    if not isinstance(g, CudaArray):
        g = from_host(np.broadcast_to(np.asarray(g, dtype=dtype), (n,)).copy())
    if g.dtype != dtype:
        g = g.astype(dtype)
    elif not g.flags.c_contiguous:
        g = g.copy()
    if g.size != n:
        g = g.reshape(-1).broadcast_to((n,)).copy()
    return g.reshape(n) if g.ndim != 1 else g


@cuda.jit(device=True)
def tree_sum(sh, t, B):
    """Sum of sh[0:B] into sh[0] (B a power of two); every thread may read sh[0] after."""
    s = B // 2
    while s > 0:
        if t < s:
            sh[t] += sh[t + s]
        cuda.syncthreads()
        s //= 2


# ----------------------------------------------------------------------------- folds
# Every other reduction is a fold: a state (x, y) starts from init(first element, the lane's
# center, ik, fk), takes each element with step(x, y, v, q, ...) (q: its position along the
# axis), combines with another state through merge (associative: the tree and the second
# pass use it) and becomes the result through finish. One pair of kernel skeletons (rows
# and columns, chunked like the sums: see ``chunks``) runs every fold.

class Fold:
    """A reduction as device functions over a state (x, y): x of type tx(T) for elements of
    type T, y of type ty. `has_y`: y is a second result (the extreme's index), kept in the
    partials and written out; otherwise y is a constant of the lane (its center) or
    unused."""

    def __init__(self, name, init, step, merge, finish, tx, ty, has_y=False):
        self.name, self.init, self.step, self.merge, self.finish = name, init, step, merge, finish
        self.tx, self.ty, self.has_y = tx, ty, has_y


@cuda.jit(device=True)
def _same(x, y, ik, fk):
    return x, y


@cuda.jit(device=True)
def _better(v, i, b, j, want_max):
    """Whether (v, i) beats (b, j): nan wins, then the larger (smaller) value, then the
    first index."""
    if b != b:
        return v != v and i < j
    if v != v:
        return True
    if v == b:
        return i < j
    return v > b if want_max else v < b


@cuda.jit(device=True)
def _ext_init(seed, c, ik, fk):
    return seed, -1  # index -1: nothing seen yet


@cuda.jit(device=True)
def _ext_step(x, y, v, q, ik, fk):
    if y < 0 or _better(v, q, x, y, ik != 0):
        return v, q
    return x, y


@cuda.jit(device=True)
def _ext_merge(x, y, x2, y2, ik, fk):
    if y2 >= 0 and (y < 0 or _better(x2, y2, x, y, ik != 0)):
        return x2, y2
    return x, y


EXTREME = Fold("extreme", _ext_init, _ext_step, _ext_merge, _same, lambda T: T, numba.int64,
               has_y=True)


@cuda.jit(device=True)
def _prod_init(seed, c, ik, fk):
    return 1, 0


@cuda.jit(device=True)
def _prod_step(x, y, v, q, ik, fk):
    return x * v, y


@cuda.jit(device=True)
def _prod_merge(x, y, x2, y2, ik, fk):
    return x * x2, y


PROD = Fold("prod", _prod_init, _prod_step, _prod_merge, _same,
            lambda T: numba.float64 if isinstance(T, numba.types.Float) else numba.int64,
            numba.int64)


@cuda.jit(device=True)
def _anyall_init(seed, c, ik, fk):
    return ik, 0  # all: 1 until a zero; any: 0 until a non-zero


@cuda.jit(device=True)
def _anyall_step(x, y, v, q, ik, fk):
    if (v != 0) != (ik != 0):
        return 1 - ik, y
    return x, y


@cuda.jit(device=True)
def _anyall_merge(x, y, x2, y2, ik, fk):
    if x2 != ik:
        return x2, y
    return x, y


@cuda.jit(device=True)
def _anyall_finish(x, y, ik, fk):
    return x != 0, y


ANY_ALL = Fold("any_all", _anyall_init, _anyall_step, _anyall_merge, _anyall_finish,
               lambda T: numba.int64, numba.int64)

NORM_ZERO, NORM_ONE, NORM_TWO, NORM_INF, NORM_NEG_INF, NORM_P = (
    _cpu_reduce.NORM_ZERO, _cpu_reduce.NORM_ONE, _cpu_reduce.NORM_TWO, _cpu_reduce.NORM_INF,
    _cpu_reduce.NORM_NEG_INF, _cpu_reduce.NORM_P)
# the running max (NORM_INF) or min of |a|, nan sticking: the CPU's body, for the device
_extreme_abs = cuda.jit(device=True)(_cpu_reduce._extreme_abs.py_func)


@cuda.jit(device=True)
def _norm_init(seed, c, ik, fk):
    if ik == NORM_INF or ik == NORM_NEG_INF:
        return abs(_F64(seed)), 0
    return _F64(0), 0


@cuda.jit(device=True)
def _norm_step(x, y, v, q, ik, fk):
    a = abs(_F64(v))
    if ik == NORM_INF or ik == NORM_NEG_INF:
        return _extreme_abs(a, x, ik), y
    if ik == NORM_ZERO:
        return x + (1.0 if a != 0 else 0.0), y
    if ik == NORM_ONE:
        return x + a, y
    if ik == NORM_TWO:
        return x + a * a, y
    return x + a ** fk, y


@cuda.jit(device=True)
def _norm_merge(x, y, x2, y2, ik, fk):
    if ik == NORM_INF or ik == NORM_NEG_INF:
        return _extreme_abs(x2, x, ik), y
    return x + x2, y


@cuda.jit(device=True)
def _norm_finish(x, y, ik, fk):
    if ik == NORM_TWO:
        return math.sqrt(x), y
    if ik == NORM_P:
        return x ** (1.0 / fk), y
    return x, y


NORM = Fold("norm", _norm_init, _norm_step, _norm_merge, _norm_finish,
            lambda T: numba.float64, numba.int64)


@cuda.jit(device=True)
def _centered_init(seed, c, ik, fk):
    return _F64(0), _F64(c)  # y: the lane's center


@cuda.jit(device=True)
def _sq_dev_step(x, y, v, q, ik, fk):
    d = _F64(v) - y
    return x + d * d, y


@cuda.jit(device=True)
def _add_merge(x, y, x2, y2, ik, fk):
    return x + x2, y


@cuda.jit(device=True)
def _moments_finish(x, y, ik, fk):
    v = x / fk
    return (math.sqrt(v) if ik else v), y


# the sum of squared deviations from the lane's mean (the center), over dof = fk
MOMENTS = Fold("moments", _centered_init, _sq_dev_step, _add_merge, _moments_finish,
               lambda T: numba.float64, numba.float64)


@cuda.jit(device=True)
def _count_step(x, y, v, q, ik, fk):
    return x + (1.0 if _F64(v) == y else 0.0), y


# how many elements equal the lane's center (its extreme: the ties that share a gradient)
COUNT_EQUAL = Fold("count_equal", _centered_init, _count_step, _add_merge, _same,
                   lambda T: numba.float64, numba.float64)


def _fold_kernels(op: Fold, T, part: bool, final: bool):
    """(rows, cols) kernels of fold `op` over arrays of numba type T: elements (part False)
    or partial states (part True: x in `a`, y in `ay`); writing finished results (final)
    or partial states."""
    key = ("fold", op.name, T, part, final)
    k = _kernels.get(key)
    if k is not None:
        return k
    B = block_size()
    TX, TY = op.tx(T), op.ty
    init, step, merge, finish = op.init, op.step, op.merge, op.finish

    # load(a, ay, i): what one position holds (an element, or a partial state);
    # take(v, vy, q, x, y, ...): (x, y) with it taken (step, or merge for partials)
    if part and op.has_y:
        @cuda.jit(device=True)
        def load(a, ay, i):
            return a[i], ay[i]
    else:
        @cuda.jit(device=True)
        def load(a, ay, i):
            return a[i], 0

    if not part:
        @cuda.jit(device=True)
        def take(v, vy, q, x, y, ik, fk):
            return step(x, y, v, q, ik, fk)
    elif op.has_y:
        @cuda.jit(device=True)
        def take(v, vy, q, x, y, ik, fk):
            return merge(x, y, v, vy, ik, fk)
    else:
        @cuda.jit(device=True)
        def take(v, vy, q, x, y, ik, fk):
            return merge(x, y, v, y, ik, fk)

    if final and op.has_y:
        @cuda.jit(device=True)
        def put(px, py, w, x, y, ik, fk):
            fx, fy = finish(x, y, ik, fk)
            px[w] = fx
            py[w] = fy
    elif final:
        @cuda.jit(device=True)
        def put(px, py, w, x, y, ik, fk):
            px[w] = finish(x, y, ik, fk)[0]
    elif op.has_y:
        @cuda.jit(device=True)
        def put(px, py, w, x, y, ik, fk):
            px[w] = x
            py[w] = y
    else:
        @cuda.jit(device=True)
        def put(px, py, w, x, y, ik, fk):
            px[w] = x

    @cuda.jit(device=True)
    def sweep(a, ay, base, q, hi, dq, stride, x, y, ik, fk):
        """(x, y) with positions q, q + dq, ... below hi (element base + q * stride) taken:
        four interleaved states, so that four loads are in flight, merged at the end"""
        x1, y1, x2, y2, x3, y3 = x, y, x, y, x, y  # (init's state merges as an identity)
        d = dq * stride
        while q + 3 * dq < hi:
            i = base + q * stride
            v0, w0 = load(a, ay, i)  # the four loads first: no branch of take between them
            v1, w1 = load(a, ay, i + d)
            v2, w2 = load(a, ay, i + 2 * d)
            v3, w3 = load(a, ay, i + 3 * d)
            x, y = take(v0, w0, q, x, y, ik, fk)
            x1, y1 = take(v1, w1, q + dq, x1, y1, ik, fk)
            x2, y2 = take(v2, w2, q + 2 * dq, x2, y2, ik, fk)
            x3, y3 = take(v3, w3, q + 3 * dq, x3, y3, ik, fk)
            q += 4 * dq
        while q < hi:
            v0, w0 = load(a, ay, base + q * stride)
            x, y = take(v0, w0, q, x, y, ik, fk)
            q += dq
        x, y = merge(x, y, x1, y1, ik, fk)
        x2, y2 = merge(x2, y2, x3, y3, ik, fk)
        return merge(x, y, x2, y2, ik, fk)

    @cuda.jit
    def rows(a, ay, px, py, center, r, chunk, nchunk, ik, fk):
        """work item w = (lane o, chunk): a block folds a[o, chunk], then a tree"""
        shx = cuda.shared.array(B, TX)
        shy = cuda.shared.array(B, TY)
        t = cuda.threadIdx.x
        nc = center.size
        for w in range(cuda.blockIdx.x, px.size, cuda.gridDim.x):
            o = w // nchunk
            lo = (w - o * nchunk) * chunk
            hi = min(r, lo + chunk)
            base = o * r
            x0, y0 = init(a[base], center[o % nc], ik, fk)
            x, y = sweep(a, ay, base, lo + t, hi, B, 1, TX(x0), TY(y0), ik, fk)
            shx[t] = x
            shy[t] = y
            cuda.syncthreads()
            s = B // 2
            while s > 0:
                if t < s:
                    x, y = merge(shx[t], shy[t], shx[t + s], shy[t + s], ik, fk)
                    shx[t] = x
                    shy[t] = y
                cuda.syncthreads()
                s //= 2
            if t == 0:
                put(px, py, w, shx[0], shy[0], ik, fk)
            cuda.syncthreads()

    @cuda.jit
    def cols(a, ay, px, py, center, r, inner, chunk, nchunk, ik, fk):
        """work item w = (chunk, lane): a thread folds its lane's chunk, neighbouring
        threads on neighbouring columns (coalesced)"""
        lanes = px.size // nchunk
        nc = center.size
        for w in range(cuda.grid(1), px.size, cuda.gridsize(1)):
            base, lo, hi, lane = chunk_span(w, lanes, r, inner, chunk)
            x0, y0 = init(a[base], center[lane % nc], ik, fk)
            x, y = sweep(a, ay, base, lo, hi, 1, inner, TX(x0), TY(y0), ik, fk)
            put(px, py, w, x, y, ik, fk)

    k = _kernels[key] = (rows, cols)
    return k


def fold(op: Fold, a3: CudaArray, out_dtype, ik: int = 0, fk: float = 0.0,
         center: CudaArray | None = None):
    """Fold `op` over axis 1 of a contiguous (outer, r, inner) array with r >= 1: (result,
    second result or None), each of shape (outer, inner). `center`: a float64 value per
    lane (``lanes_of``) that init receives."""
    outer, r, inner = a3.shape
    if r == 0:
        raise ValueError(f"a fold ({op.name}) over an empty axis: shape {a3.shape}")
    out = empty((outer, inner), out_dtype)
    out_y = empty((outer, inner), np.dtype(np.int64)) if op.has_y else None
    if out.size == 0:
        return out, out_y
    lanes = outer * inner
    T = numba.from_dtype(a3.dtype)
    a = a3.flat()
    c = center.flat() if center is not None else a  # a dummy for folds without centers
    ik, fk = np.int64(ik), np.float64(fk)
    B = block_size()
    nchunk, chunk = chunks(outer, r, inner)

    def go(part, final, src, src_y, dst, dst_y, T, r, i, chunk, nchunk):
        rows, cols = _fold_kernels(op, T, part, final)
        if i == 1:
            launch(rows, blocks(dst.size), B, src, src_y, dst, dst_y, c, r, chunk, nchunk,
                   ik, fk)
        else:
            launch(cols, *config(dst.size), src, src_y, dst, dst_y, c, r, i, chunk, nchunk,
                   ik, fk)

    # Unused arrays (y where the fold has none) are stood in for by the source, which no
    # kernel writes: the simulator copies each argument in and out, so an output passed
    # twice would be overwritten by its unchanged second copy.
    fo = out.flat()
    if nchunk == 1:
        go(False, True, a, a, fo, out_y.flat() if op.has_y else a, T, r, inner, r, 1)
        return out, out_y
    TX = op.tx(T)
    # (the partials' arrays stay referenced: a kernel view does not hold its memory)
    part_x = empty((lanes * nchunk,), numba.np.numpy_support.as_dtype(TX))
    part_y = empty((lanes * nchunk,), np.dtype(np.int64)) if op.has_y else None
    px = part_x.flat()
    py = part_y.flat() if op.has_y else a
    go(False, False, a, a, px, py, T, r, inner, chunk, nchunk)
    # the partials: (lanes, nchunk) after rows, (nchunk, lanes) after columns
    if not op.has_y:
        py = px
    fy = out_y.flat() if op.has_y else px
    if inner == 1:
        go(True, True, px, py, fo, fy, TX, nchunk, 1, nchunk, 1)
    else:
        go(True, True, px, py, fo, fy, TX, nchunk, lanes, nchunk, 1)
    return out, out_y


def extreme(a3: CudaArray, want_max: bool):
    """Max or min of a contiguous (outer, r, inner) array over axis 1, with int64 indices
    (the first of ties; nan wins)."""
    return fold(EXTREME, a3, a3.dtype, int(bool(want_max)))


def _prod_backward_kernel():
    @cuda.jit
    def k(g, x, out, r, inner, lanes):
        """out[o, k, j] = g[o, j] * prod_{i != k} x[o, i, j]: one thread per lane, prefix
        products forwards then suffix products backwards (no division). (Long lanes take
        chunked running products instead: see prod_backward.)"""
        for o in range(cuda.grid(1), lanes, cuda.gridsize(1)):
            base = (o // inner) * r * inner + o % inner
            run = _F64(1)
            for q in range(r):
                i = base + q * inner
                out[i] = run
                run *= x[i]
            run = _F64(g[o])
            for q in range(r - 1, -1, -1):
                i = base + q * inner
                out[i] = out[i] * run
                run *= x[i]
    return k


def prod_backward(g, x3: CudaArray) -> CudaArray:
    """g times the product of all other elements along axis 1 of a float block."""
    outer, r, inner = x3.shape
    out = empty(x3.shape, x3.dtype)
    if out.size:
        n = outer * inner
        from . import scan

        if scan._plan(n, r)[0] > 1:  # long lanes: the products before and after each element
            before = scan.shift(scan.cumprod(x3, 1, x3.dtype), 1, 1, 1)
            after = scan.shift(scan.cumprod(x3, 1, x3.dtype, reverse=True), 1, -1, 1)
            others = binary("mul", before, after, x3.shape)
            gl = lanes_of(g, x3.dtype, n).reshape(outer, 1, inner)
            return binary("mul", others, gl, x3.shape, out=out)
        k = _get(("prod_backward",), _prod_backward_kernel)
        gr, bl = config(n)
        gl = lanes_of(g, x3.dtype, n)
        launch(k, gr, bl, gl.flat(), x3.flat(), out.flat(), r, inner, n)
    return out



def _filled(shape, dtype, value) -> CudaArray:
    out = empty(shape, dtype)
    if out.size:
        out.fill(value)
    return out


def amax(a3: CudaArray, want_max: bool) -> CudaArray:
    """Max (or min) of an (outer, r, inner) block over axis 1, r >= 1; nan propagates."""
    src = a3.astype(np.uint8) if a3.dtype == np.bool_ else a3  # compare bools as uint8
    vals, _ = extreme(src, want_max)
    return vals if vals.dtype == a3.dtype else vals.astype(a3.dtype)


def any_all(a3: CudaArray, want_all: bool, out_dtype) -> CudaArray:
    """all (or any) of the non-zero tests of an (outer, r, inner) block over axis 1."""
    if a3.shape[1] == 0:
        return _filled((a3.shape[0], a3.shape[2]), out_dtype, bool(want_all))
    out, _ = fold(ANY_ALL, a3, np.bool_, int(bool(want_all)))
    return out if out.dtype == np.dtype(out_dtype) else out.astype(out_dtype)


def prod(a3: CudaArray, out_dtype) -> CudaArray:
    """Product of a contiguous (outer, r, inner) array over axis 1, in `out_dtype` (float
    products accumulate in float64, integer ones in int64)."""
    if a3.shape[1] == 0:
        return _filled((a3.shape[0], a3.shape[2]), out_dtype, 1)
    return fold(PROD, a3, out_dtype)[0]


_NORM_KINDS = {0.0: NORM_ZERO, 1.0: NORM_ONE, 2.0: NORM_TWO, math.inf: NORM_INF,
               -math.inf: NORM_NEG_INF}


def vector_norm(a3: CudaArray, p: float) -> CudaArray:
    """The vector p-norm of a float (outer, r, inner) block over axis 1."""
    if a3.shape[1] == 0:
        return _host(_cpu_reduce.vector_norm, a3, p)
    return fold(NORM, a3, a3.dtype, _NORM_KINDS.get(p, NORM_P), p)[0]


def _lane_means(x3: CudaArray) -> CudaArray:
    """The float64 mean of each lane of an (outer, r, inner) block (r >= 1), flat: the sum
    divided by r, as on the CPU (a product with 1/r can miss by a bit, and then a constant
    lane's variance is not 0)."""
    outer, r, inner = x3.shape
    sums = sum_(x3, np.float64, 1.0).reshape(outer * inner)
    return binary("div", sums, np.asarray(np.float64(r)), sums.shape)


def moments(a3: CudaArray, correction: float, take_sqrt: bool) -> CudaArray:
    """var (std with `take_sqrt`) of a float (outer, r, inner) block over axis 1, divided by
    max(0, r - correction): the lanes' means first, then the squared deviations from them."""
    outer, r, inner = a3.shape
    if r == 0:
        return _host(_cpu_reduce.moments, a3, correction, take_sqrt)
    if outer * inner == 0:
        return empty((outer, inner), a3.dtype)
    return fold(MOMENTS, a3, a3.dtype, int(bool(take_sqrt)), max(0.0, r - correction),
                center=_lane_means(a3))[0]


def _spread_kernel():
    @cuda.jit
    def k(g, x, c, cnt, out, r, inner, mode, scale):
        """out[o, q, j] from lane (o, j)'s g, c and cnt. mode 0: g / cnt where x == c, else
        0 (an extreme's gradient, shared among its ties); mode 1: scale * g * (x - c)."""
        rin = r * inner
        for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
            o = i // rin
            lane = o * inner + (i - o * rin) % inner
            if mode == 0:
                share = g[lane] / cnt[lane]
                out[i] = share if x[i] == c[lane] else 0.0 * share
            else:
                out[i] = scale * g[lane] * (x[i] - c[lane])
    return k


def _spread(g, x3: CudaArray, c, cnt, mode: int, scale: float) -> CudaArray:
    outer, r, inner = x3.shape
    out = empty(x3.shape, x3.dtype)
    if out.size:
        n = outer * inner
        k = _get(("spread",), _spread_kernel)
        gl = lanes_of(g, x3.dtype, n)
        launch(k, *config(out.size), gl.flat(), x3.flat(), c.flat(), cnt.flat(), out.flat(),
               r, inner, np.int64(mode), np.float64(scale))
    return out


def extreme_backward(g, x3: CudaArray, v) -> CudaArray:
    """g shared evenly among the positions where a float block equals its extreme v along
    axis 1 (g and v have the reduced shape)."""
    outer, _, inner = x3.shape
    if x3.size == 0:
        return empty(x3.shape, x3.dtype)
    c = lanes_of(v, np.float64, outer * inner)
    cnt = fold(COUNT_EQUAL, x3, np.float64, center=c)[0].reshape(outer * inner)
    return _spread(g, x3, c, cnt, 0, 1.0)


def var_backward(g, x3: CudaArray, scale: float) -> CudaArray:
    """scale * g * (x - mean(x)) over axis 1 of a float (outer, r, inner) block."""
    if x3.size == 0:
        return empty(x3.shape, x3.dtype)
    c = _lane_means(x3)
    return _spread(g, x3, c, c, 1, scale)


def ptx_checks() -> list:
    """(what, kernel, argument types) of the folds, the backward kernels and the extreme
    (``_sum_kernels`` is checked by tests/cuda_ptx_check.py itself), as the launchers call
    them: compiled to PTX for a real GPU without one."""
    from .runtime import vec as arr

    I64, F64, B1 = numba.int64, numba.float64, numba.boolean
    floats = (numba.float32, numba.float64)
    ints = (numba.uint8, numba.int8, numba.int16, numba.int32, numba.int64)
    checks = []

    def folds(op, T, out, centered=False):
        TX = op.tx(T)
        for part, final in ((False, True), (False, False), (True, True)):
            S = TX if part else T
            rows, cols = _fold_kernels(op, S, part, final)
            dst = out if final else TX
            # as fold() passes them: the source stands in for unused y arrays, the elements
            # for an unused center
            y = arr(I64) if op.has_y else arr(S)
            c = arr(F64) if centered else arr(T)
            ay = arr(I64) if part and op.has_y else arr(S)
            tail = (I64, F64)
            what = f"{op.name} {T} {'part' if part else 'elements'}->{'out' if final else 'part'}"
            checks.append((what + " rows", rows,
                           (arr(S), ay, arr(dst), y, c, I64, I64, I64) + tail))
            checks.append((what + " cols", cols,
                           (arr(S), ay, arr(dst), y, c, I64, I64, I64, I64) + tail))

    for T in (numba.uint8,) + ints[1:] + floats:  # max/min and arg: bools compared as uint8
        folds(EXTREME, T, T)
    for T in floats + (I64,):  # prod: integers and bools multiply in int64 (the op layer)
        folds(PROD, T, T)
    for T in (B1,) + ints + floats:
        folds(ANY_ALL, T, B1)
    for T in floats:
        folds(NORM, T, T)
        folds(MOMENTS, T, T, centered=True)
        folds(COUNT_EQUAL, T, F64, centered=True)
        checks.append((f"prod_backward {T}", _prod_backward_kernel(),
                       (arr(T), arr(T), arr(T), I64, I64, I64)))
        checks.append((f"spread {T}", _spread_kernel(),
                       (arr(T), arr(T), arr(F64), arr(F64), arr(T), I64, I64, I64, F64)))
    return checks
