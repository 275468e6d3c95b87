"""CUDA kernels of the pool family (same launcher names and signatures as ``kernels/pool.py``).
Launchers listed in ``__all__`` replace the host-routed CPU kernel of the same name.

Inputs are contiguous planes (P, H, W), as on the CPU. Max pooling, its double backward (a
gather) and average pooling run one thread per output element; the average pooling backward
runs one thread per input pixel, summing the windows that hold it (no atomics). The max
pooling backward adds each output's gradient at its argmax, where overlapping windows may
send several: integer atomics count the outputs pointing at each pixel and find the first,
which then adds them all in the outputs' order (the CPU's sums, bit for bit). The window
tables of average pooling come from the host and are uploaded.
"""

from __future__ import annotations

import numpy as np

from .array import CudaArray, empty, from_host
from .launch import launch
from .runtime import config, cuda

__all__ = ["avg_pool2d", "avg_pool2d_backward", "gather_planes", "max_pool2d", "scatter_planes"]

_kernels: dict = {}


def _launch(k, n: int, *args) -> None:
    g, b = config(n)
    launch(k, g, b, *args)


def _contig(a: CudaArray) -> CudaArray:
    return a if a.flags.c_contiguous else a.copy()


def _pool_kernels():
    ks = _kernels.get("pool")
    if ks is not None:
        return ks

    @cuda.jit
    def max_pool(x, out, idx, H, W, OH, OW, kh, kw, sh, sw, ph, pw, dh, dw, lowest):
        """out[p, oh, ow] = max of x[p] over the window of (oh, ow); idx = its flat index
        (NaN wins; the first of equal values wins)"""
        for e in range(cuda.grid(1), out.size, cuda.gridsize(1)):
            ow_ = e % OW
            oh_ = (e // OW) % OH
            p = e // (OW * OH)
            h0 = oh_ * sh - ph
            h1 = min(h0 + (kh - 1) * dh + 1, H)
            while h0 < 0:
                h0 += dh
            w0 = ow_ * sw - pw
            w1 = min(w0 + (kw - 1) * dw + 1, W)
            while w0 < 0:
                w0 += dw
            best = lowest
            at = h0 * W + w0
            base = p * H * W
            for ih in range(h0, h1, dh):
                for iw in range(w0, w1, dw):
                    v = x[base + ih * W + iw]
                    if v > best or v != v:
                        best = v
                        at = ih * W + iw
            out[e] = best
            idx[e] = at

    @cuda.jit
    def scatter_init(out, count, first, K):
        """out = 0, count = 0, first = K (past every output) for each target element"""
        for e in range(cuda.grid(1), out.size, cuda.gridsize(1)):
            out[e] = 0
            count[e] = 0
            first[e] = K

    @cuda.jit
    def scatter_claim(idx, count, first, K, n):
        """for each target: how many outputs of its plane point at it, and the first one
        (integer atomics: the same result in any order)"""
        for e in range(cuda.grid(1), idx.size, cuda.gridsize(1)):
            i = idx[e]
            if i >= 0 and i < n:
                p = e // K
                cuda.atomic.add(count, p * n + i, 1)
                cuda.atomic.min(first, p * n + i, e - p * K)

    @cuda.jit
    def scatter_sum(g, idx, out, count, first, K, n):
        """the first output pointing at a target adds the gradients of all that do, in the
        outputs' order, from 0 (the CPU's sums, bit for bit); the others do nothing"""
        for e in range(cuda.grid(1), idx.size, cuda.gridsize(1)):
            i = idx[e]
            if i >= 0 and i < n:
                p = e // K
                t = p * n + i
                k = e - p * K
                if first[t] == k:
                    acc = out[t]  # (the zero, in g's dtype)
                    acc += g[e]
                    left = count[t] - 1
                    k2 = k + 1
                    while left > 0 and k2 < K:
                        if idx[p * K + k2] == i:
                            acc += g[p * K + k2]
                            left -= 1
                        k2 += 1
                    out[t] = acc

    @cuda.jit
    def gather(x, idx, out, K, n):
        """out[p, k] = x[p, idx[p, k]] (0 outside the plane)"""
        for e in range(cuda.grid(1), out.size, cuda.gridsize(1)):
            i = idx[e]
            out[e] = x[(e // K) * n + i] if i >= 0 and i < n else 0

    @cuda.jit
    def avg_pool(x, out, H, W, OH, OW, hs, he, ws, we, fh, fw, override, zero):
        """out[p, oh, ow] = sum of x[p, hs:he, ws:we] / (fh[oh]*fw[ow] or override)"""
        for e in range(cuda.grid(1), out.size, cuda.gridsize(1)):
            ow_ = e % OW
            oh_ = (e // OW) % OH
            base = (e // (OW * OH)) * H * W
            acc = zero
            for ih in range(hs[oh_], he[oh_]):
                for iw in range(ws[ow_], we[ow_]):
                    acc += x[base + ih * W + iw]
            d = override if override != 0 else fh[oh_] * fw[ow_]
            out[e] = acc / d

    @cuda.jit
    def avg_back(g, gx, H, W, OH, OW, hs, he, ws, we, fh, fw, override, zero):
        """gx[p, ih, iw] = sum over the windows (oh, ow) holding (ih, iw) of
        g[p, oh, ow] / divisor, one thread per input pixel"""
        for e in range(cuda.grid(1), gx.size, cuda.gridsize(1)):
            iw = e % W
            ih = (e // W) % H
            base = (e // (W * H)) * OH * OW
            acc = zero
            for oh_ in range(OH):
                if hs[oh_] <= ih and ih < he[oh_]:
                    for ow_ in range(OW):
                        if ws[ow_] <= iw and iw < we[ow_]:
                            d = override if override != 0 else fh[oh_] * fw[ow_]
                            acc += g[base + oh_ * OW + ow_] / d
            gx[e] = acc

    scatter = (scatter_init, scatter_claim, scatter_sum)
    ks = _kernels["pool"] = (max_pool, scatter, gather, avg_pool, avg_back)
    return ks


def _zero(dtype):
    """The accumulator's zero: float64 for floats (as on the CPU), int64 for integers."""
    return np.float64(0) if np.dtype(dtype).kind == "f" else np.int64(0)


def _lowest(dtype):
    dtype = np.dtype(dtype)
    return dtype.type(-np.inf) if dtype.kind == "f" else np.iinfo(dtype).min


def max_pool2d(x3: CudaArray, out_hw: tuple, kernel: tuple, stride: tuple, padding: tuple,
               dilation: tuple):
    """Max pooling of planes x3 (P, H, W): values (P, OH, OW) and int64 flat indices."""
    x3 = _contig(x3)
    P, H, W = x3.shape
    OH, OW = out_hw
    out = empty((P, OH, OW), x3.dtype)
    idx = empty((P, OH, OW), np.int64)
    if out.size:
        _launch(_pool_kernels()[0], out.size, x3.reshape(-1).flat(), out.reshape(-1).flat(),
                idx.reshape(-1).flat(), H, W, OH, OW, kernel[0], kernel[1], stride[0],
                stride[1], padding[0], padding[1], dilation[0], dilation[1],
                _lowest(x3.dtype))
    return out, idx


def scatter_planes(g2: CudaArray, idx2: CudaArray, n: int) -> CudaArray:
    """(P, n) zeros with g2[p, k] added at idx2[p, k]: the backward of max pooling."""
    g2, idx2 = _contig(g2), _contig(idx2)
    P, K = g2.shape
    out = empty((P, n), g2.dtype)
    if K >= 1 << 31:  # output positions are counted in int32
        raise ValueError(f"max pooling's backward takes planes of fewer than 2**31 outputs, "
                         f"not {K}")
    if out.size:
        init, claim, add = _pool_kernels()[1]
        count = empty((P * n,), np.int32)
        first = empty((P * n,), np.int32)
        gf, idf, of = g2.reshape(-1).flat(), idx2.reshape(-1).flat(), out.reshape(-1).flat()
        cf, ff = count.flat(), first.flat()
        _launch(init, P * n, of, cf, ff, K)
        if g2.size:
            _launch(claim, P * K, idf, cf, ff, K, n)
            _launch(add, P * K, gf, idf, of, cf, ff, K, n)
    return out


def gather_planes(x2: CudaArray, idx2: CudaArray) -> CudaArray:
    """x2[p, idx2[p, k]] for every (p, k): the double backward of max pooling."""
    x2, idx2 = _contig(x2), _contig(idx2)
    out = empty(idx2.shape, x2.dtype)
    if out.size:
        _launch(_pool_kernels()[2], out.size, x2.reshape(-1).flat(), idx2.reshape(-1).flat(),
                out.reshape(-1).flat(), idx2.shape[1], x2.shape[1])
    return out


def _tables(tables: tuple) -> list:
    """The six window tables on the device (int64)."""
    (hs, he, fh), (ws, we, fw) = tables
    return [a if isinstance(a, CudaArray) else from_host(np.ascontiguousarray(a, np.int64))
            for a in (hs, he, ws, we, fh, fw)]


def avg_pool2d(x3: CudaArray, tables: tuple, override: int) -> CudaArray:
    """Average pooling of planes x3 (P, H, W) over the windows of `tables`."""
    x3 = _contig(x3)
    P, H, W = x3.shape
    OH, OW = tables[0][0].size, tables[1][0].size
    out = empty((P, OH, OW), x3.dtype)
    if out.size:
        t = _tables(tables)
        zero = _zero(x3.dtype)
        _launch(_pool_kernels()[3], out.size, x3.reshape(-1).flat(), out.reshape(-1).flat(),
                H, W, OH, OW, *[a.flat() for a in t], np.int64(override), zero)
    return out


def avg_pool2d_backward(g3: CudaArray, in_hw: tuple, tables: tuple, override: int
                        ) -> CudaArray:
    """The gradient (P, H, W) of average pooling for the output gradient g3 (P, OH, OW)."""
    g3 = _contig(g3)
    P, OH, OW = g3.shape
    H, W = in_hw
    gx = empty((P, H, W), g3.dtype)
    if gx.size:
        t = _tables(tables)
        _launch(_pool_kernels()[4], gx.size, g3.reshape(-1).flat(), gx.reshape(-1).flat(),
                H, W, OH, OW, *[a.flat() for a in t], np.int64(override), _zero(g3.dtype))
    return gx


def ptx_checks() -> list:
    """(what, kernel, argument types) of every kernel here, as the launchers call them, for
    tests/cuda_ptx_check.py (compiled to PTX for a real GPU without one)."""
    import numba

    from .runtime import vec as arr

    I64 = numba.int64

    def scalar_type(v):  # a numpy scalar keeps its dtype; a Python int is int64
        return numba.from_dtype(v.dtype) if isinstance(v, np.generic) else I64

    max_pool, scatter, gather, avg_pool, avg_back = _pool_kernels()
    tables = (arr(I64),) * 6
    checks = []
    for dt in (np.float32, np.float64, np.int64, np.int32, np.int16, np.int8, np.uint8):
        T = numba.from_dtype(np.dtype(dt))  # (max pooling takes every dtype but bool)
        checks.append((f"max_pool {T}", max_pool,
                       (arr(T), arr(T), arr(I64)) + (I64,) * 12
                       + (scalar_type(_lowest(dt)),)))
    for dt in (np.float32, np.float64, np.int64, np.int32):
        T = numba.from_dtype(np.dtype(dt))
        init, claim, add = scatter
        I32 = numba.int32
        checks.append((f"scatter_planes init {T}", init, (arr(T), arr(I32), arr(I32), I64)))
        checks.append((f"scatter_planes add {T}", add,
                       (arr(T), arr(I64), arr(T), arr(I32), arr(I32), I64, I64)))
    checks.append(("scatter_planes claim", scatter[1],
                   (arr(I64), arr(numba.int32), arr(numba.int32), I64, I64)))
    for dt in (np.float32, np.float64, np.int64, np.int32):
        T = numba.from_dtype(np.dtype(dt))
        checks.append((f"gather_planes {T}", gather, (arr(T), arr(I64), arr(T), I64, I64)))
        Z = scalar_type(_zero(dt))
        checks.append((f"avg_pool {T}", avg_pool,
                       (arr(T), arr(T)) + (I64,) * 4 + tables + (I64, Z)))
        checks.append((f"avg_pool_backward {T}", avg_back,
                       (arr(T), arr(T)) + (I64,) * 4 + tables + (I64, Z)))
    return checks
