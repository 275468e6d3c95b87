"""Elementwise kernels for the CPU: one loop factory per arity, compiled per (body, dtype).

Launchers (``unary``, ``binary``, ``ternary``) take numpy arrays that already share a dtype
and whose shapes broadcast; they make the layout decisions in Python, then call a kernel that
sees only contiguous 1-D buffers:

* ``flat``: operands of the output's size, or of size 1 (a scalar operand), one plain loop;
* ``bcast``: the general broadcast, after adjacent dimensions are merged; rows of the last
  merged dimension run as plain loops with a per-operand step of 0 or 1.

Each comes in a serial and a ``prange`` variant; the latter is used from ``PARALLEL_MIN``
elements on (see the comment there).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from . import scalar

JIT = dict(cache=True, error_model="numpy", nogil=True)
# From this many elements on, kernels take their prange variant. Measured here: a parallel
# launch costs microseconds on an idle machine but stalls for a scheduler slice (~8 ms) when
# the other core is busy, while a serial pass over 2M float32 takes ~0.4 ms; so only sizes
# where that risk is small next to the work go parallel.
PARALLEL_MIN = 1 << 21

_NUMBA_TYPES = {
    np.dtype(np.bool_): numba.boolean,
    np.dtype(np.uint8): numba.uint8,
    np.dtype(np.int8): numba.int8,
    np.dtype(np.int16): numba.int16,
    np.dtype(np.int32): numba.int32,
    np.dtype(np.int64): numba.int64,
    np.dtype(np.float32): numba.float32,
    np.dtype(np.float64): numba.float64,
}

_kernels: dict = {}
_by_name: dict = {}  # ("u"/"b", name, dtype) -> loops: the launchers' fast lookup
# binary body name -> {dtype: its serial flat kernel}, kernel(a, b, out) over 1-D arrays of
# one size (or b of size 1); filled as launchers compile them. The op layer calls these directly for
# small same-shape operands, where the launcher's own Python would cost more than the loop.
FLAT: dict = {}


def _stable(dispatcher, key: str):
    """Give an inner dispatcher a fixed identity. Numba keys its disk cache of a closure on
    a pickle of the closure's cells; a dispatcher pickles with a UUID that is random per
    process unless set, so without this no cached kernel would ever be found again."""
    dispatcher._set_uuid(f"jitgrad.kernels:{key}")
    return dispatcher


def _body(table, name, dtype, key):
    make, _ = table[name]
    return _stable(njit(inline="always")(make(_NUMBA_TYPES[dtype])), "body:" + key)


# --------------------------------------------------------------------------- loop factories

def _unary_loops(f, doc, key):
    @njit(**JIT)
    def flat(a, out):
        for i in range(out.size):
            out[i] = f(a[i])

    @njit(parallel=True, **JIT)
    def flat_par(a, out):
        for i in prange(out.size):
            out[i] = f(a[i])

    flat.__doc__ = flat_par.__doc__ = doc
    return flat, flat_par


def _binary_loops(f, doc, key):
    @njit(inline="always")
    def run(a, b, out, lo, hi):
        if a.size == b.size and a.size == out.size:
            for i in range(lo, hi):
                out[i] = f(a[i], b[i])
        elif a.size == 1 and b.size == 1:  # two scalars broadcast to a larger output
            s = f(a[0], b[0])
            for i in range(lo, hi):
                out[i] = s
        elif b.size == 1:
            s = b[0]
            for i in range(lo, hi):
                out[i] = f(a[i], s)
        else:
            s = a[0]
            for i in range(lo, hi):
                out[i] = f(s, b[i])

    @njit(inline="always")
    def row(a, b, out, o, shape, sa, sb):
        # Offsets of row o (all dimensions but the last) in a, b and out.
        ia = 0
        ib = 0
        div = 1  # o is never reassigned: a prange index must not be (nor an alias of it)
        for d in range(shape.size - 2, -1, -1):
            k = (o // div) % shape[d]
            div *= shape[d]
            ia += k * sa[d]
            ib += k * sb[d]
        n = shape[shape.size - 1]
        da = sa[shape.size - 1]
        db = sb[shape.size - 1]
        # Slices, then indices from range(): Numba can prove those non-negative, so it adds no
        # wrap-around test per element and the loops vectorize (5x faster than a[ia + i]).
        ov = out[o * n:o * n + n]
        if da == 1 and db == 1:
            av = a[ia:ia + n]
            bv = b[ib:ib + n]
            for i in range(n):
                ov[i] = f(av[i], bv[i])
        elif da == 1:
            av = a[ia:ia + n]
            s = b[ib]
            for i in range(n):
                ov[i] = f(av[i], s)
        elif db == 1:
            bv = b[ib:ib + n]
            s = a[ia]
            for i in range(n):
                ov[i] = f(s, bv[i])
        else:
            s = f(a[ia], b[ib])
            for i in range(n):
                ov[i] = s

    _stable(run, "run:" + key)
    _stable(row, "row:" + key)

    @njit(**JIT)
    def flat(a, b, out):
        run(a, b, out, 0, out.size)

    @njit(parallel=True, **JIT)
    def flat_par(a, b, out):
        # One prange loop per case: a prange over chunks that each run `run` does not
        # vectorize (5x slower at 10M float32, even on one thread).
        n = out.size
        if a.size == n and b.size == n:
            for i in prange(n):
                out[i] = f(a[i], b[i])
        elif a.size == 1 and b.size == 1:
            s = f(a[0], b[0])
            for i in prange(n):
                out[i] = s
        elif b.size == 1:
            s = b[0]
            for i in prange(n):
                out[i] = f(a[i], s)
        else:
            s = a[0]
            for i in prange(n):
                out[i] = f(s, b[i])

    @njit(**JIT)
    def bcast(a, b, out, shape, sa, sb):
        rows = out.size // shape[shape.size - 1]
        for o in range(rows):
            row(a, b, out, o, shape, sa, sb)

    @njit(parallel=True, **JIT)
    def bcast_par(a, b, out, shape, sa, sb):
        rows = out.size // shape[shape.size - 1]
        for o in prange(rows):
            row(a, b, out, o, shape, sa, sb)

    for k in (flat, flat_par, bcast, bcast_par):
        k.__doc__ = doc
    return flat, flat_par, bcast, bcast_par


def _ternary_loops(f, doc, key):
    @njit(inline="always")
    def one(a, b, c, out, i, shape, sa, sb, sc):
        ia = 0
        ib = 0
        ic = 0
        div = 1
        for d in range(shape.size - 1, -1, -1):
            k = (i // div) % shape[d]
            div *= shape[d]
            ia += k * sa[d]
            ib += k * sb[d]
            ic += k * sc[d]
        out[i] = f(a[ia], b[ib], c[ic])

    _stable(one, "one:" + key)

    @njit(**JIT)
    def bcast(a, b, c, out, shape, sa, sb, sc):
        for i in range(out.size):
            one(a, b, c, out, i, shape, sa, sb, sc)

    @njit(parallel=True, **JIT)
    def bcast_par(a, b, c, out, shape, sa, sb, sc):
        for i in prange(out.size):
            one(a, b, c, out, i, shape, sa, sb, sc)

    bcast.__doc__ = bcast_par.__doc__ = doc
    return bcast, bcast_par


def _product_grads_loop(f, doc, key):
    @njit(**JIT)
    def product_grads(g, a, b, ga, gb):
        for i in range(g.size):
            ga[i] = f(g[i], b[i])
            gb[i] = f(g[i], a[i])

    product_grads.__doc__ = "ga = g * b and gb = g * a, one pass (mul's backward)"
    return product_grads


def product_grads_kernel(dtype):
    """The serial kernel(g, a, b, ga, gb) of mul's backward over 1-D operands of one size:
    both products in one call."""
    return _loops(scalar.BINARY, _product_grads_loop, "mul", dtype)


def _loops(table, factory, name, dtype):
    key = (id(table), factory, name, dtype)
    loops = _kernels.get(key)
    if loops is None:
        stable = f"{factory.__name__}:{name}:{dtype}"
        loops = factory(_body(table, name, dtype, stable), table[name][1], stable)
        _kernels[key] = loops
    return loops


# --------------------------------------------------------------------------- layout helpers

def compact(a: np.ndarray) -> np.ndarray:
    """Return `a` contiguous, keeping broadcast (stride-0) dimensions as size 1."""
    if a.flags.c_contiguous:
        return a
    if 0 in a.strides:
        a = a[tuple(slice(0, 1) if s == 0 else slice(None) for s in a.strides)]
    return np.require(a, requirements="C")


_merged_cache: dict = {}


def _merged(shape, operands):
    """Merge adjacent dims; return (shape, element strides per operand), strides 0 on
    broadcast dims. Operands are contiguous arrays right-aligned to `shape`. The result
    depends on the shapes alone, so it is cached (the arrays are only ever read)."""
    key = (shape,) + tuple(a.shape for a in operands)
    r = _merged_cache.get(key)
    if r is None:
        if len(_merged_cache) > 4096:
            _merged_cache.clear()
        r = _merged_cache[key] = _merge(shape, operands)
    return r


def _merge(shape, operands):
    nd = len(shape)
    strides = []
    for a in operands:
        ashape = (1,) * (nd - a.ndim) + a.shape
        st = [0] * nd
        acc = 1
        for d in range(nd - 1, -1, -1):
            if ashape[d] != 1:
                st[d] = acc
                acc *= ashape[d]
        strides.append(st)
    m_shape = []
    m_strides = [[] for _ in operands]
    for d in range(nd):
        n = shape[d]
        if n == 1:
            continue
        if m_shape and all(
            (s[d] == 0 and ms[-1] == 0) or (s[d] != 0 and ms[-1] == s[d] * n)
            for s, ms in zip(strides, m_strides)
        ):
            m_shape[-1] *= n
            for s, ms in zip(strides, m_strides):
                ms[-1] = s[d]
            continue
        m_shape.append(n)
        for s, ms in zip(strides, m_strides):
            ms.append(s[d])
    if not m_shape:
        m_shape = [1]
        m_strides = [[0] for _ in operands]
    return (np.array(m_shape, dtype=np.int64),
            [np.array(ms, dtype=np.int64) for ms in m_strides])


# --------------------------------------------------------------------------- fill

@njit(**JIT)
def _fill(out, value):
    """out[i] = value"""
    for i in range(out.size):
        out[i] = value


@njit(parallel=True, **JIT)
def _fill_par(out, value):
    """out[i] = value, in parallel"""
    for i in prange(out.size):
        out[i] = value


def fill(out: np.ndarray, value) -> np.ndarray:
    """Set every element of contiguous `out` to `value` (a scalar of out's dtype). The loop
    vectorizes: at 1 MiB it is about 1.6x numpy's ``fill``."""
    flat = out.reshape(-1)
    (_fill_par if out.size >= PARALLEL_MIN else _fill)(flat, value)
    return out


# --------------------------------------------------------------------------- launchers

def unary(name: str, a: np.ndarray, out_dtype=None) -> np.ndarray:
    """Apply unary body `name` to `a`; the result has `a`'s shape."""
    if not a.flags.c_contiguous:
        a = np.array(a, order="C")  # (ascontiguousarray would turn a 0-d array into 1-d)
    out = np.empty(a.shape, dtype=out_dtype or a.dtype)
    n = out.size
    if n == 0:
        return out
    loops = _by_name.get(("u", name, a.dtype))
    if loops is None:
        loops = _by_name[("u", name, a.dtype)] = _loops(scalar.UNARY, _unary_loops, name,
                                                        a.dtype)
    if a.ndim != 1:
        a = a.reshape(-1)
        o = out.reshape(-1)
    else:
        o = out
    (loops[1] if n >= PARALLEL_MIN else loops[0])(a, o)
    return out


def binary(name: str, a: np.ndarray, b: np.ndarray, shape: tuple, out_dtype=None,
           out: np.ndarray | None = None) -> np.ndarray:
    """Apply binary body `name` to `a` and `b`, broadcast to `shape`, into a new array or into
    `out` (contiguous, of `shape`; it may be `a` itself)."""
    if out is None:
        out = np.empty(shape, dtype=out_dtype or a.dtype)
    n = out.size
    if n == 0:
        return out
    loops = _by_name.get(("b", name, a.dtype))
    if loops is None:
        loops = _by_name[("b", name, a.dtype)] = _loops(scalar.BINARY, _binary_loops, name,
                                                        a.dtype)
        FLAT.setdefault(name, {})[a.dtype] = loops[0]
    flat, flat_par, bcast, bcast_par = loops
    par = n >= PARALLEL_MIN
    if a.flags.c_contiguous and b.flags.c_contiguous:
        # The common cases with as little Python as possible: equal shapes, or one operand
        # of the output's shape and the other a single element.
        sa = a.shape
        sb = b.shape
        if sa == sb or ((sa == shape or a.size == 1) and (sb == shape or b.size == 1)):
            o = out
            if a.ndim != 1:
                a = a.reshape(-1)
            if b.ndim != 1:
                b = b.reshape(-1)
            if o.ndim != 1:
                o = o.reshape(-1)
            (flat_par if par else flat)(a, b, o)
            return out
    a = compact(a)
    b = compact(b)
    if (a.size == n or a.size == 1) and (b.size == n or b.size == 1) and (
            a.size == 1 or b.size == 1 or a.shape == b.shape):
        (flat_par if par else flat)(a.reshape(-1), b.reshape(-1), out.reshape(-1))
    else:
        m_shape, (sa, sb) = _merged(shape, (a, b))
        (bcast_par if par else bcast)(a.reshape(-1), b.reshape(-1), out.reshape(-1),
                                      m_shape, sa, sb)
    return out


def ternary(name: str, a: np.ndarray, b: np.ndarray, c: np.ndarray, shape: tuple,
            out_dtype=None) -> np.ndarray:
    """Apply ternary body `name` to `a`, `b`, `c`, broadcast to `shape`. The body's typed
    constants follow `b`'s dtype (for `where`, `a` is the boolean condition)."""
    out = np.empty(shape, dtype=out_dtype or b.dtype)
    if out.size == 0:
        return out
    a, b, c = compact(a), compact(b), compact(c)
    bcast, bcast_par = _loops(scalar.TERNARY, _ternary_loops, name, b.dtype)
    m_shape, (sa, sb, sc) = _merged(shape, (a, b, c))
    (bcast_par if out.size >= PARALLEL_MIN else bcast)(
        a.reshape(-1), b.reshape(-1), c.reshape(-1), out.reshape(-1), m_shape, sa, sb, sc)
    return out
