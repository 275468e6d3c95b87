"""CUDA kernels of the conv family (same launcher names and signatures as ``kernels/conv.py``).
Launchers listed in ``__all__`` replace the host-routed CPU kernel of the same name.

The same im2col / GEMM / col2im pipeline as the CPU (``kernels/conv.py`` explains the
layout), with the GEMMs on the tiled CUDA kernel of ``matmul.py``:

* ``im2col``: one thread per column-tensor element (image, row (c*kh + i)*kw + j, position);
* forward: per group, ``w_g (O/G, K/G) @ cols_g (nb, K/G, L)`` (the weight broadcast over
  the images costs no copy), then the bias;
* input gradient: per group ``dcols_g = w_g^T @ g_g``, then ``col2im`` as a gather: one thread
  per input pixel sums the column entries that read it (no atomics, deterministic);
* weight gradient: per group ``g_g @ cols_g^T`` per image, summed over the images by the
  reduction kernel (float64 accumulation for floats);
* bias gradient: two reductions (images, then positions).

Images are processed in chunks that keep a column tensor under ``CHUNK_BYTES``.
"""

from __future__ import annotations

import numpy as np

from ..conv import _geometry
from .array import CudaArray, empty
from .elementwise import binary
from .launch import launch
from .matmul import matmul
from .reduce import sum_
from .runtime import config, cuda

__all__ = ["conv_backward_bias", "conv_backward_input", "conv_backward_weight",
           "conv_forward"]

CHUNK_BYTES = 1 << 28
_kernels: dict = {}


def _col_kernels():
    ks = _kernels.get("cols")
    if ks is not None:
        return ks

    @cuda.jit
    def im2col(x, cols, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
        """cols[n, (c*kh + i)*kw + j, y*ow + o] = x[n, c, y*sh - ph + i*dh, o*sw - pw + j*dw],
        0 outside x"""
        L = oh * ow
        K = C * kh * kw
        for e in range(cuda.grid(1), cols.size, cuda.gridsize(1)):
            n = e // (K * L)
            rem = e % (K * L)
            r = rem // L
            p = rem % L
            c = r // (kh * kw)
            i = (r // kw) % kh
            j = r % kw
            iy = (p // ow) * sh - ph + i * dh
            ix = (p % ow) * sw - pw + j * dw
            if iy >= 0 and iy < H and ix >= 0 and ix < W:
                cols[e] = x[((n * C + c) * H + iy) * W + ix]
            else:
                cols[e] = 0

    @cuda.jit
    def col2im(cols, gx, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, zero):
        """gx[n, c, iy, ix] = sum of the column entries read from that pixel (the adjoint of
        im2col), one thread per pixel"""
        L = oh * ow
        K = C * kh * kw
        for e in range(cuda.grid(1), gx.size, cuda.gridsize(1)):
            ix = e % W
            iy = (e // W) % H
            c = (e // (W * H)) % C
            n = e // (W * H * C)
            acc = zero
            for i in range(kh):
                ty = iy + ph - i * dh
                if ty < 0 or ty % sh != 0:
                    continue
                y = ty // sh
                if y >= oh:
                    continue
                for j in range(kw):
                    tx = ix + pw - j * dw
                    if tx < 0 or tx % sw != 0:
                        continue
                    o = tx // sw
                    if o >= ow:
                        continue
                    acc += cols[(n * K + (c * kh + i) * kw + j) * L + y * ow + o]
            gx[e] = acc

    ks = _kernels["cols"] = (im2col, col2im)
    return ks


def _launch(k, n: int, *args) -> None:
    g, b = config(n)
    launch(k, g, b, *args)


def _contig(a: CudaArray) -> CudaArray:
    return a if a.flags.c_contiguous else a.copy()


def _as4_shape(shape: tuple) -> tuple:
    return shape if len(shape) == 4 else shape[:2] + (1,) + shape[2:]


def _chunk(n: int, per_image: int) -> int:
    return max(1, min(n, CHUNK_BYTES // max(per_image, 1)))


def _im2col(x4: CudaArray, n0: int, n1: int, geo: tuple) -> CudaArray:
    kh, kw, sh, sw, ph, pw, dh, dw, oh, ow = geo
    _, C, H, W = x4.shape
    cols = empty((n1 - n0, C * kh * kw, oh * ow), x4.dtype)
    if cols.size:
        xs = x4[n0:n1]
        _launch(_col_kernels()[0], cols.size, xs.flat(), cols.reshape(-1).flat(), C, H, W, *geo)
    return cols


def conv_forward(x: CudaArray, w: CudaArray, b, stride, pad_lo, pad_hi, dilation,
                 groups: int) -> CudaArray:
    """The convolution of x (N, C, *spatial) with w (O, C/groups, *kernel) plus bias b (O,) or
    None; 1 or 2 spatial axes."""
    geo = _geometry(x.shape, w.shape, stride, pad_lo, pad_hi, dilation)
    kh, kw, oh, ow = geo[0], geo[1], geo[8], geo[9]
    x4 = _contig(x).reshape(_as4_shape(x.shape))
    N, C = x4.shape[:2]
    O, G = w.shape[0], groups
    K, L = C * kh * kw, oh * ow
    Og, Kg = O // G, K // G
    out_shape = (N, O) + ((oh, ow) if x.ndim == 4 else (ow,))
    out = empty((N, O, L), x.dtype)
    if out.size == 0:
        return out.reshape(out_shape)
    if K == 0:
        out.fill(0)
    else:
        wg = _contig(w).reshape(G, Og, Kg)
        nb = _chunk(N, K * L * x.dtype.itemsize)
        for n0 in range(0, N, nb):
            n1 = min(N, n0 + nb)
            cols = _im2col(x4, n0, n1, geo)
            if G == 1 and nb == N:
                out = matmul(wg[0], cols)
                continue
            for gi in range(G):
                out[n0:n1, gi * Og:(gi + 1) * Og] = matmul(wg[gi], cols[:, gi * Kg:(gi + 1) * Kg])
    if b is not None:
        binary("add", out, b.reshape(1, O, 1), out.shape, out=out)
    return out.reshape(out_shape)


def conv_backward_input(g: CudaArray, w: CudaArray, x_shape: tuple, stride, pad_lo, pad_hi,
                        dilation, groups: int) -> CudaArray:
    """The gradient of the convolution with respect to its input: col2im(w^T @ g)."""
    geo = _geometry(x_shape, w.shape, stride, pad_lo, pad_hi, dilation)
    kh, kw, oh, ow = geo[0], geo[1], geo[8], geo[9]
    x4_shape = _as4_shape(tuple(x_shape))
    N, C, H, W = x4_shape
    O, G = w.shape[0], groups
    K, L = C * kh * kw, oh * ow
    Og, Kg = O // G, K // G
    gx = empty(x4_shape, g.dtype)
    if gx.size == 0:
        return gx.reshape(x_shape)
    if g.size == 0:
        gx.fill(0)
        return gx.reshape(x_shape)
    g3 = g.reshape(N, O, L)
    wg = _contig(w).reshape(G, Og, Kg)
    nb = _chunk(N, max(K, O) * L * g.dtype.itemsize)
    col2im = _col_kernels()[1]
    for n0 in range(0, N, nb):
        n1 = min(N, n0 + nb)
        if G == 1:
            dcols = matmul(wg[0].T, g3[n0:n1])
        else:
            dcols = empty((n1 - n0, K, L), g.dtype)
            for gi in range(G):
                dcols[:, gi * Kg:(gi + 1) * Kg] = matmul(wg[gi].T,
                                                         g3[n0:n1, gi * Og:(gi + 1) * Og])
        dst = gx[n0:n1]
        _launch(col2im, dst.size, dcols.reshape(-1).flat(), dst.reshape(-1).flat(), C, H, W,
                *geo, g.dtype.type(0))
    return gx.reshape(x_shape)


def conv_backward_weight(g: CudaArray, x: CudaArray, w_shape: tuple, stride, pad_lo, pad_hi,
                         dilation, groups: int) -> CudaArray:
    """The gradient of the convolution with respect to its weight: the sum over images of
    g @ im2col(x)^T."""
    geo = _geometry(x.shape, w_shape, stride, pad_lo, pad_hi, dilation)
    kh, kw, oh, ow = geo[0], geo[1], geo[8], geo[9]
    x4 = _contig(x).reshape(_as4_shape(x.shape))
    N, C = x4.shape[:2]
    O, G = w_shape[0], groups
    K, L = C * kh * kw, oh * ow
    Og, Kg = O // G, K // G
    gw = empty((G, Og, Kg), g.dtype)
    if gw.size == 0 or g.size == 0:
        gw.fill(0)
        return gw.reshape(w_shape)
    g3 = g.reshape(N, O, L)
    nb = _chunk(N, max(K, O) * L * g.dtype.itemsize)
    parts = []
    for n0 in range(0, N, nb):
        n1 = min(N, n0 + nb)
        cols = _im2col(x4, n0, n1, geo)
        per = empty((n1 - n0, G, Og, Kg), g.dtype)  # per image and group
        for gi in range(G):
            per[:, gi] = matmul(g3[n0:n1, gi * Og:(gi + 1) * Og],
                                cols[:, gi * Kg:(gi + 1) * Kg].swapaxes(1, 2))
        parts.append(sum_(per.reshape(1, n1 - n0, G * Og * Kg), g.dtype))
    total = parts[0]
    for p in parts[1:]:
        total = binary("add", total, p, total.shape)
    return total.reshape(w_shape)


def conv_backward_bias(g: CudaArray) -> CudaArray:
    """The gradient of the convolution with respect to its bias: g (N, O, *spatial) summed
    over every axis but O."""
    N, O = g.shape[0], g.shape[1]
    g3 = _contig(g).reshape(N, O, -1)
    S = g3.shape[2]
    acc = np.float64 if g.dtype.kind == "f" else np.int64
    first = sum_(g3.reshape(1, N, O * S), acc)  # over the images: (1, O*S)
    return sum_(first.reshape(O, S, 1), g.dtype).reshape(O)


def ptx_checks() -> list:
    """(what, kernel, argument types) of every kernel here, as the launchers call them, for
    tests/cuda_ptx_check.py (compiled to PTX for a real GPU without one)."""
    import numba

    from .runtime import vec as arr

    I64 = numba.int64

    im2col, col2im = _col_kernels()
    geo = (I64,) * 13  # C, H, W and the ten of _geometry
    checks = []
    for dt in (np.float32, np.float64):
        T = numba.from_dtype(np.dtype(dt))
        checks.append((f"im2col {T}", im2col, (arr(T), arr(T)) + geo))
        checks.append((f"col2im {T}", col2im, (arr(T), arr(T)) + geo + (T,)))
    return checks
