"""Elementwise kernels for CUDA, compiled from the scalar bodies of ``kernels/scalar.py`` (the
same source as the CPU loops), plus the data-movement kernels under ``CudaArray``: strided
copy and cast, assignment, gather and scatter by element offsets.

Layout decisions are made in Python before a launch, as on the CPU. Kernels come in two
shapes: ``flat`` (contiguous operands of the output's size, or of size 1, or host scalars
passed by value) and ``strided`` (any operand layout: each operand is a 1-D base view, the
index of its element (0, ..., 0) and its element strides, with 0 on broadcast dimensions,
after adjacent dimensions are merged). All loops are grid-stride loops.

Where every operand of a flat unary or binary kernel (of VEC_MIN elements or more) is of
the output's size and dtype and starts on a 16-byte boundary (the host checks), a ``vec``
variant moves 16 bytes per memory access (``vector.py``): 4 float32 or 2 float64 per load
and store, several loads in flight per thread, the last elements that do not fill a group
one by one.
"""

from __future__ import annotations

import numpy as np

from .. import scalar, settings
from ..elementwise import _NUMBA_TYPES
from .array import CudaArray, empty, from_host
from . import vector
from .launch import launch
from .runtime import SIM, address, config, cuda

_kernels: dict = {}


@cuda.jit(device=True)
def offset(i, shape, strides, start):
    """Element index, in an operand's base view, of the output's flat element i."""
    off = start
    for d in range(len(shape) - 1, -1, -1):
        n = shape[d]
        off += (i % n) * strides[d]
        i //= n
    return off


def body(table, name: str, dtype):
    """The CUDA device function of scalar body `name` for operands of `dtype`."""
    key = ("body", id(table), name, np.dtype(dtype))
    f = _kernels.get(key)
    if f is None:
        make, _ = table[name]
        with scalar.target("cuda"):
            f = cuda.jit(device=True)(make(_NUMBA_TYPES[np.dtype(dtype)]))
        _kernels[key] = f
    return f


def _map_kernel(f):
    """out[i] = f(a[i]) over contiguous operands. Each thread reads four elements a grid
    apart before it writes any, so four loads are in flight per thread (one leaves the
    memory system idle between them); reads before writes also keep out is a (in place)
    right."""
    @cuda.jit
    def flat(a, out):
        n = out.size
        s = cuda.gridsize(1)
        i = cuda.grid(1)
        while i + 3 * s < n:
            v0 = a[i]
            v1 = a[i + s]
            v2 = a[i + 2 * s]
            v3 = a[i + 3 * s]
            out[i] = f(v0)
            out[i + s] = f(v1)
            out[i + 2 * s] = f(v2)
            out[i + 3 * s] = f(v3)
            i += 4 * s
        while i < n:
            out[i] = f(a[i])
            i += s

    return flat


def _tuple_map(f, VL: int, arity: int):
    """The device function applying f to each lane of VL-tuples (one per operand), for VL
    4 or 2."""
    if VL not in (2, 4):
        raise ValueError(f"no 16-byte elementwise kernel for groups of {VL}")
    if arity == 1:
        if VL == 4:
            def fmap(v):
                return (f(v[0]), f(v[1]), f(v[2]), f(v[3]))
        else:
            def fmap(v):
                return (f(v[0]), f(v[1]))
    elif VL == 4:
        def fmap(v, w):
            return (f(v[0], w[0]), f(v[1], w[1]), f(v[2], w[2]), f(v[3], w[3]))
    else:
        def fmap(v, w):
            return (f(v[0], w[0]), f(v[1], w[1]))
    return cuda.jit(device=True)(fmap)


def _vector_kernel(f, VL: int, arity: int):
    """out = f(a) (or f(a, b)) over contiguous operands of out's size and dtype, each on a
    16-byte boundary: groups of VL elements are read and written 16 bytes at a time, four
    groups in flight per thread (two per operand for two operands); the n % VL elements past
    the last group one per thread."""
    load, put = vector.loader(VL), vector.putter(VL)
    fmap = _tuple_map(f, VL, arity)

    if arity == 1:
        @cuda.jit
        def vec(a, out):
            n = out.size
            ng = n // VL
            s = cuda.gridsize(1)
            i = cuda.grid(1)
            while i + 3 * s < ng:
                v0 = load(a, i * VL)
                v1 = load(a, (i + s) * VL)
                v2 = load(a, (i + 2 * s) * VL)
                v3 = load(a, (i + 3 * s) * VL)
                put(out, i * VL, fmap(v0))
                put(out, (i + s) * VL, fmap(v1))
                put(out, (i + 2 * s) * VL, fmap(v2))
                put(out, (i + 3 * s) * VL, fmap(v3))
                i += 4 * s
            while i < ng:
                put(out, i * VL, fmap(load(a, i * VL)))
                i += s
            t = ng * VL + cuda.grid(1)
            if t < n:
                out[t] = f(a[t])
        return vec

    @cuda.jit
    def vec2(a, b, out):
        n = out.size
        ng = n // VL
        s = cuda.gridsize(1)
        i = cuda.grid(1)
        while i + s < ng:
            x0 = load(a, i * VL)
            y0 = load(b, i * VL)
            x1 = load(a, (i + s) * VL)
            y1 = load(b, (i + s) * VL)
            put(out, i * VL, fmap(x0, y0))
            put(out, (i + s) * VL, fmap(x1, y1))
            i += 2 * s
        if i < ng:
            put(out, i * VL, fmap(load(a, i * VL), load(b, i * VL)))
        t = ng * VL + cuda.grid(1)
        if t < n:
            out[t] = f(a[t], b[t])
    return vec2


def vector_kernel(arity: int, name: str, dtype, table=None):
    """The 16-byte variant of body `name`'s flat kernel for operands of `dtype`."""
    dt = np.dtype(dtype)
    key = ("vec", arity, name, dt, id(table))
    k = _kernels.get(key)
    if k is None:
        table = table or _FACTORIES[arity][0]
        k = _kernels[key] = _vector_kernel(body(table, name, dt), vector.width(dt.itemsize),
                                           arity)
    return k


# Outputs from this many elements on take the vector variant. Below, a kernel's time is its
# launch's, whichever variant runs, and the host's check would only add to it; the
# simulator takes it at any size, so CI runs it on tiny shapes.
VEC_MIN = 0 if SIM else 1 << 16


def _vector_ok(out, *ops) -> int:
    """VL (elements per 16 bytes) when a flat kernel's operands can be moved 16 bytes at a
    time: all of out's size and dtype (a kernel view each), each starting on a 16-byte
    boundary; else 0."""
    n = out.shape[0]
    if n < VEC_MIN:
        return 0
    dt = out.dtype
    isz = dt.itemsize
    if isz != 4 and isz != 8:  # 4- and 8-byte types (smaller ones stay per element)
        return 0
    VL = 16 // isz
    if n < VL or address(out) & 15:
        return 0
    for v in ops:
        if v.dtype != dt or v.shape[0] != n or address(v) & 15:
            return 0
    return VL


def _unary_kernels(f):
    flat = _map_kernel(f)

    @cuda.jit
    def strided(a, a0, sa, shape, out):
        for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
            out[i] = f(a[offset(i, shape, sa, a0)])

    return flat, strided


def _binary_kernels(f):
    @cuda.jit
    def flat(a, b, out, ka, kb):
        # ka, kb: 1 for an operand of the output's size, 0 for a single element; two
        # elements per step of each thread, read before written (see _map_kernel)
        n = out.size
        s = cuda.gridsize(1)
        i = cuda.grid(1)
        while i + s < n:
            x0 = a[i * ka]
            y0 = b[i * kb]
            x1 = a[(i + s) * ka]
            y1 = b[(i + s) * kb]
            out[i] = f(x0, y0)
            out[i + s] = f(x1, y1)
            i += 2 * s
        if i < n:
            out[i] = f(a[i * ka], b[i * kb])

    @cuda.jit
    def flat_as(a, s, out, ka):
        for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
            out[i] = f(a[i * ka], s)

    @cuda.jit
    def flat_sa(s, b, out, kb):
        for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
            out[i] = f(s, b[i * kb])

    @cuda.jit
    def strided(a, a0, sa, b, b0, sb, shape, out):
        for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
            out[i] = f(a[offset(i, shape, sa, a0)], b[offset(i, shape, sb, b0)])

    return flat, flat_as, flat_sa, strided


def _ternary_kernels(f):
    @cuda.jit
    def flat_ss(a, s, t, out, ka):
        for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
            out[i] = f(a[i * ka], s, t)

    @cuda.jit
    def strided(a, a0, sa, b, b0, sb, c, c0, sc, shape, out):
        for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
            out[i] = f(a[offset(i, shape, sa, a0)], b[offset(i, shape, sb, b0)],
                       c[offset(i, shape, sc, c0)])

    return flat_ss, strided


_FACTORIES = {1: (scalar.UNARY, _unary_kernels), 2: (scalar.BINARY, _binary_kernels),
              3: (scalar.TERNARY, _ternary_kernels)}


def kernels(arity: int, name: str, dtype, table=None, factory=None):
    key = (arity, name, np.dtype(dtype), id(table))
    ks = _kernels.get(key)
    if ks is None:
        dt, df = _FACTORIES[arity]
        table = table or dt
        ks = _kernels[key] = (factory or df)(body(table, name, dtype))
    return ks


# --------------------------------------------------------------------------- layout

def _strides_for(a, shape: tuple) -> tuple:
    """(base, start, element strides right-aligned to `shape`, 0 on broadcast dims)."""
    base, start, st = a.strided()
    lead = len(shape) - a.ndim
    full = [0] * lead
    for n, s in zip(a.shape, st):
        full.append(s if n != 1 else 0)
    return base, start, full


def merge(shape: tuple, strides: list) -> tuple:
    """Merge adjacent dims that every operand walks contiguously; drop size-1 dims.
    Returns (shape, [strides per operand]) as tuples of ints."""
    m_shape: list = []
    m_st: list = [[] for _ in strides]
    for d, n in enumerate(shape):
        if n == 1:
            continue
        if m_shape and all(ms[-1] == s[d] * n for s, ms in zip(strides, m_st)):
            m_shape[-1] *= n
            for s, ms in zip(strides, m_st):
                ms[-1] = s[d]
            continue
        m_shape.append(n)
        for s, ms in zip(strides, m_st):
            ms.append(s[d])
    if not m_shape:
        return (1,), [(0,) for _ in strides]
    return tuple(m_shape), [tuple(ms) for ms in m_st]


def _is_host(v) -> bool:
    return not isinstance(v, CudaArray)


def _host_scalar(v, dtype):
    return np.asarray(v, dtype=dtype).reshape(())[()]


def _dense(a: CudaArray, n: int) -> bool:
    """Whether `a` can be read as a flat operand for an output of n elements."""
    return a.size == 1 or (a.size == n and a.flags.c_contiguous)


# --------------------------------------------------------------------------- launchers

def unary(name: str, a: CudaArray, out_dtype=None, table=None, factory=None) -> CudaArray:
    out = empty(a.shape, out_dtype or a.dtype)
    n = out.size
    if n == 0:
        return out
    flat, strided = kernels(1, name, a.dtype, table, factory)[:2]
    g, b = config(n)
    if a.flags.c_contiguous:
        x, o = a.flat(), out.flat()
        VL = _vector_ok(o, x) if factory is None else 0
        if VL:
            launch(vector_kernel(1, name, a.dtype, table), *config(n // VL), x, o)
        else:
            launch(flat, g, b, x, o)
    else:
        base, start, st = _strides_for(a, a.shape)
        shape, (st,) = merge(a.shape, [st])
        launch(strided, g, b, base, start, st, shape, out.flat())
    return out


def binary(name: str, a, b, shape: tuple, out_dtype=None, out: CudaArray | None = None,
           table=None, factory=None) -> CudaArray:
    """Apply binary body `name` to `a` and `b` (CudaArrays, or host 0-d arrays passed by
    value) broadcast to `shape`, into a new array or into `out` (contiguous, of `shape`)."""
    dt = a.dtype
    if out is None:
        out = empty(shape, out_dtype or dt)
    n = out.size
    if n == 0:
        return out
    flat, flat_as, flat_sa, strided = kernels(2, name, dt, table, factory)
    g, bl = config(n)
    ha, hb = _is_host(a), _is_host(b)
    if ha and hb:
        a = from_host(a)
        ha = False
    o = out.flat()
    if hb and _dense(a, n):
        launch(flat_as, g, bl, a.flat(), _host_scalar(b, dt), o, int(a.size != 1))
    elif ha and _dense(b, n):
        launch(flat_sa, g, bl, _host_scalar(a, dt), b.flat(), o, int(b.size != 1))
    elif not ha and not hb and _dense(a, n) and _dense(b, n) and (
            a.size == 1 or b.size == 1 or a.shape == b.shape):
        x, y = a.flat(), b.flat()
        VL = _vector_ok(o, x, y) if factory is None else 0
        if VL:
            launch(vector_kernel(2, name, dt, table), *config(n // VL), x, y, o)
        else:
            launch(flat, g, bl, x, y, o, int(a.size != 1), int(b.size != 1))
    else:
        if ha:
            a = from_host(a)
        if hb:
            b = from_host(b)
        A, a0, sa = _strides_for(a, shape)
        B, b0, sb = _strides_for(b, shape)
        m, (sa, sb) = merge(shape, [sa, sb])
        launch(strided, g, bl, A, a0, sa, B, b0, sb, m, o)
    return out


def ternary(name: str, a, b, c, shape: tuple, out_dtype=None, table=None,
            factory=None) -> CudaArray:
    """Apply ternary body `name`; constants follow `b`'s dtype (for `where`, `a` is the
    condition)."""
    dt = b.dtype
    out = empty(shape, out_dtype or dt)
    n = out.size
    if n == 0:
        return out
    flat_ss, strided = kernels(3, name, dt, table, factory)[:2]
    g, bl = config(n)
    if not _is_host(a) and _is_host(b) and _is_host(c) and _dense(a, n):
        launch(flat_ss, g, bl, a.flat(), _host_scalar(b, dt), _host_scalar(c, dt), out.flat(),
               int(a.size != 1))
        return out
    ops = [from_host(v) if _is_host(v) else v for v in (a, b, c)]
    parts = [_strides_for(v, shape) for v in ops]
    m, sts = merge(shape, [p[2] for p in parts])
    launch(strided, g, bl, parts[0][0], parts[0][1], sts[0], parts[1][0], parts[1][1], sts[1],
           parts[2][0], parts[2][1], sts[2], m, out.flat())
    return out


# --------------------------------------------------------------------------- data movement

def _convert(src_dtype, dst_dtype):
    key = ("convert", np.dtype(src_dtype), np.dtype(dst_dtype))
    f = _kernels.get(key)
    if f is None:
        if np.dtype(dst_dtype) == np.bool_:
            def conv(x):
                return x != 0
        else:
            def conv(x):
                return x
        f = _kernels[key] = cuda.jit(device=True)(conv)
    return f


def _copy_kernels(conv):
    flat = _map_kernel(conv)  # out[i] = a[i], converted to out's dtype

    @cuda.jit
    def strided(a, a0, sa, shape, out, o0, so, n):
        """out[at i] = a[at i] over n elements of `shape`, both laid out by strides"""
        for i in range(cuda.grid(1), n, cuda.gridsize(1)):
            out[offset(i, shape, so, o0)] = conv(a[offset(i, shape, sa, a0)])

    @cuda.jit
    def fill(out, o0, so, shape, v, n):
        """out[at i] = v"""
        for i in range(cuda.grid(1), n, cuda.gridsize(1)):
            out[offset(i, shape, so, o0)] = conv(v)

    @cuda.jit
    def gather(a, a0, offs, out):
        """out[i] = a[a0 + offs[i]]"""
        for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
            out[i] = conv(a[a0 + offs[i]])

    @cuda.jit
    def scatter(out, o0, offs, v, kv):
        """out[o0 + offs[i]] = v[i] (v[0] when kv is 0)"""
        for i in range(cuda.grid(1), offs.size, cuda.gridsize(1)):
            out[o0 + offs[i]] = conv(v[i * kv])

    return flat, strided, fill, gather, scatter


def _copiers(src_dtype, dst_dtype):
    key = ("copy", np.dtype(src_dtype), np.dtype(dst_dtype))
    ks = _kernels.get(key)
    if ks is None:
        ks = _kernels[key] = _copy_kernels(_convert(src_dtype, dst_dtype))
    return ks


def _vector_copier(dtype):
    dt = np.dtype(dtype)
    key = ("vec copy", dt)
    k = _kernels.get(key)
    if k is None:
        k = _kernels[key] = _vector_kernel(_convert(dt, dt), vector.width(dt.itemsize), 1)
    return k


def copy_strided(a: CudaArray, dtype) -> CudaArray:
    """A contiguous copy of `a` in `dtype`."""
    out = empty(a.shape, dtype)
    n = out.size
    if n == 0:
        return out
    flat, strided = _copiers(a.dtype, out.dtype)[:2]
    g, b = config(n)
    if a.flags.c_contiguous:
        x, o = a.flat(), out.flat()
        VL = _vector_ok(o, x)
        if VL:  # a plain copy, 16 bytes at a time
            launch(_vector_copier(a.dtype), *config(n // VL), x, o)
        else:
            launch(flat, g, b, x, o)
        return out
    A, a0, sa = _strides_for(a, a.shape)
    so = list(s // out.itemsize for s in out.strides)
    m, (sa, so) = merge(a.shape, [sa, so])
    launch(strided, g, b, A, a0, sa, m, out.flat(), 0, so, n)
    return out


def assign(dst: CudaArray, value) -> None:
    """dst[...] = value (a CudaArray broadcast to dst's shape, or host data), in place."""
    n = dst.size
    if n == 0:
        return
    g, b = config(n)
    D, d0, sd = _strides_for(dst, dst.shape)
    if not isinstance(value, CudaArray):
        v = np.asarray(value)
        if v.size == 1:
            src_dt = v.dtype if v.dtype.kind in "biuf" else dst.dtype
            fill = _copiers(src_dt, dst.dtype)[2]
            m, (sd,) = merge(dst.shape, [sd])
            launch(fill, g, b, D, d0, sd, m, v.reshape(())[()], n)
            return
        value = from_host(v)
    src = value.broadcast_to(dst.shape) if value.shape != dst.shape else value
    if _np_overlap(dst, src):
        src = src.copy()
    strided = _copiers(src.dtype, dst.dtype)[1]
    S, s0, ss = _strides_for(src, dst.shape)
    m, (ss, sd) = merge(dst.shape, [ss, sd])
    launch(strided, g, b, S, s0, ss, m, D, d0, sd, n)


def _np_overlap(a: CudaArray, b: CudaArray) -> bool:
    return a._block is b._block and a.size > 1 and b.size > 1


def gather_offsets(a: CudaArray, offs: np.ndarray) -> CudaArray:
    """out[i] = a's element at offset offs[i] (element strides from a's element 0)."""
    out = empty(offs.shape, a.dtype)
    if out.size == 0:
        return out
    A, a0, _ = a.strided()
    gather = _copiers(a.dtype, a.dtype)[3]
    g, b = config(out.size)
    launch(gather, g, b, A, a0, from_host(offs.astype(np.int64)).flat(), out.flat())
    return out


def scatter_offsets(a: CudaArray, offs: np.ndarray, value) -> None:
    """a's element at offset offs[i] = value (broadcast to offs' shape). An offset named
    several times gets one of its values, or in deterministic mode its last, as on the
    CPU."""
    if offs.size == 0:
        return
    if not isinstance(value, CudaArray):
        value = from_host(np.asarray(value))
    if value.shape != offs.shape:
        value = value.broadcast_to(offs.shape) if value.size != 1 else value.reshape(1)
    if value.size != 1 or not value.flags.c_contiguous:
        value = value.copy() if value.size != 1 else value
    if value.size != 1 and settings["deterministic"]:
        flat = offs.reshape(-1)
        _, last = np.unique(flat[::-1], return_index=True)
        if last.size < flat.size:  # repeated offsets: keep each one's last write only
            keep = np.sort(flat.size - 1 - last)
            offs = flat[keep]
            value = gather_offsets(value.reshape(-1), keep)
    A, a0, _ = a.strided()
    scatter = _copiers(value.dtype, a.dtype)[4]
    g, b = config(offs.size)
    launch(scatter, g, b, A, a0, from_host(offs.astype(np.int64)).flat(), value.flat(),
           int(value.size != 1))
