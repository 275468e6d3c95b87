"""Convolution kernels for the CPU: im2col and col2im around one GEMM.

A convolution of x (N, C, H, W) with w (O, C/G, kh, kw) in G groups is computed chunk by chunk
of images. For a chunk of `nb` images:

* ``im2col`` writes the column matrix ``cols`` (C*kh*kw, nb*L), L = OH*OW: row
  ``(c*kh + i)*kw + j`` holds the input pixel that kernel tap (i, j) of channel c sees at every
  output position of every image of the chunk (zero where it falls into the padding);
* the forward is one GEMM per group, ``w (G, O/G, K/G) @ cols (G, K/G, nb*L)``, then a copy
  that moves the image axis in front and adds the bias;
* the weight gradient is ``g2 (G, O/G, nb*L) @ cols^T``, summed over chunks, with g2 the
  output gradient with its channel axis in front;
* the input gradient is ``dcols = w^T @ g2``, scattered back by ``col2im`` (the adjoint of
  im2col: every column entry is added to the pixel it was read from).

Products go to BLAS through numpy (``kernels/matmul.py`` explains why). The column matrix,
``g2`` and the GEMM results that are not returned live in per-thread workspaces that are reused
from call to call: a fresh multi-megabyte buffer costs a page fault per 4 KiB on first touch,
which here is several times the cost of filling it. Chunks keep a workspace under
``CHUNK_BYTES`` (a single image that needs more gets a buffer of its own, not kept).

Padding is given as (low, high) per spatial axis, so 'same' padding of an even kernel needs no
padded copy. A 1-D convolution runs as a 2-D one of height 1. Shapes, strides and dtypes are
validated by the caller (``jitgrad/nn/_conv.py``): these kernels do not check bounds.
"""

from __future__ import annotations

import threading

import numpy as np
from numba import njit, prange

__all__ = ["conv_backward_bias", "conv_backward_input", "conv_backward_weight",
           "conv_forward"]

JIT = dict(cache=True, error_model="numpy", nogil=True)
PARALLEL_MIN = 1 << 17  # column-matrix elements from which the prange variants pay
CHUNK_BYTES = 1 << 24  # workspace bytes per chunk of images (at least one image)


# --------------------------------------------------------------------------- workspaces

_tls = threading.local()


def _workspace(slot: int, shape: tuple, dtype) -> np.ndarray:
    """A scratch array of `shape`, reused by later calls on this thread: never hand it out."""
    dtype = np.dtype(dtype)
    n = 1
    for s in shape:
        n *= s
    nbytes = n * dtype.itemsize
    bufs = getattr(_tls, "bufs", None)
    if bufs is None:
        bufs = _tls.bufs = [None, None]
    buf = bufs[slot]
    if buf is None or buf.nbytes < nbytes:
        buf = np.empty(max(nbytes, 1), dtype=np.uint8)
        if nbytes <= CHUNK_BYTES:
            bufs[slot] = buf
    return buf[:nbytes].view(dtype).reshape(shape)


# --------------------------------------------------------------------------- kernels

@njit(inline="always")
def _valid(n_in, n_out, off, step):
    """The range [lo, hi) of output positions o whose input position o*step + off lies in
    [0, n_in)."""
    lo = 0 if off >= 0 else (step - 1 - off) // step
    hi = (n_in - off + step - 1) // step if n_in > off else 0
    hi = min(hi, n_out)
    lo = min(lo, hi)
    return lo, hi


@njit(inline="always")
def _im2col_plane(x, cols, t, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    n = t // C
    c = t % C
    L = oh * ow
    for i in range(kh):
        for j in range(kw):
            r = (c * kh + i) * kw + j
            off = j * dw - pw
            lo, hi = _valid(W, ow, off, sw)
            for y in range(oh):
                iy = y * sh - ph + i * dh
                base = n * L + y * ow
                if iy < 0 or iy >= H:
                    for o in range(ow):
                        cols[r, base + o] = 0
                else:
                    for o in range(lo):
                        cols[r, base + o] = 0
                    for o in range(lo, hi):
                        cols[r, base + o] = x[n, c, iy, o * sw + off]
                    for o in range(hi, ow):
                        cols[r, base + o] = 0


@njit(**JIT)
def _im2col(x, cols, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    """cols[(c*kh + i)*kw + j, n*L + y*ow + o] = x[n, c, y*sh - ph + i*dh, o*sw - pw + j*dw],
    0 outside x"""
    for t in range(x.shape[0] * x.shape[1]):
        _im2col_plane(x, cols, t, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)


@njit(parallel=True, **JIT)
def _im2col_par(x, cols, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    """cols[(c*kh + i)*kw + j, n*L + y*ow + o] = x[n, c, y*sh - ph + i*dh, o*sw - pw + j*dw],
    0 outside x; (image, channel) planes in parallel"""
    for t in prange(x.shape[0] * x.shape[1]):
        _im2col_plane(x, cols, t, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)


@njit(inline="always")
def _col2im_plane(cols, gx, t, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    C, H, W = gx.shape[1], gx.shape[2], gx.shape[3]
    n = t // C
    c = t % C
    L = oh * ow
    for y in range(H):
        for o in range(W):
            gx[n, c, y, o] = 0
    for i in range(kh):
        for j in range(kw):
            r = (c * kh + i) * kw + j
            off = j * dw - pw
            lo, hi = _valid(W, ow, off, sw)
            for y in range(oh):
                iy = y * sh - ph + i * dh
                if iy >= 0 and iy < H:
                    base = n * L + y * ow
                    for o in range(lo, hi):
                        gx[n, c, iy, o * sw + off] += cols[r, base + o]


@njit(**JIT)
def _col2im(cols, gx, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    """gx[n, c, y*sh - ph + i*dh, o*sw - pw + j*dw] += cols[(c*kh + i)*kw + j, n*L + y*ow + o]
    (the adjoint of im2col; gx starts zeroed)"""
    for t in range(gx.shape[0] * gx.shape[1]):
        _col2im_plane(cols, gx, t, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)


@njit(parallel=True, **JIT)
def _col2im_par(cols, gx, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    """gx[n, c, y*sh - ph + i*dh, o*sw - pw + j*dw] += cols[(c*kh + i)*kw + j, n*L + y*ow + o]
    (the adjoint of im2col; gx starts zeroed); (image, channel) planes in parallel"""
    for t in prange(gx.shape[0] * gx.shape[1]):
        _col2im_plane(cols, gx, t, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)


@njit(inline="always")
def _to_images_row(y2, b, out, t):
    O, L = out.shape[1], out.shape[2]
    n = t // O
    o = t % O
    bo = b[o]
    base = n * L
    for k in range(L):
        out[n, o, k] = y2[o, base + k] + bo


@njit(**JIT)
def _to_images(y2, b, out):
    """out[n, o, k] = y2[o, n*L + k] + b[o]"""
    for t in range(out.shape[0] * out.shape[1]):
        _to_images_row(y2, b, out, t)


@njit(parallel=True, **JIT)
def _to_images_par(y2, b, out):
    """out[n, o, k] = y2[o, n*L + k] + b[o]; rows in parallel"""
    for t in prange(out.shape[0] * out.shape[1]):
        _to_images_row(y2, b, out, t)


# --------------------------------------------------------------------------- launchers

def out_size(n_in: int, k: int, stride: int, pad_lo: int, pad_hi: int, dilation: int) -> int:
    """The output length of one spatial axis."""
    return (n_in + pad_lo + pad_hi - dilation * (k - 1) - 1) // stride + 1


def _as4(a: np.ndarray) -> np.ndarray:
    """A 1-D convolution's (N, C, L) array seen as (N, C, 1, L)."""
    return a.reshape(a.shape[:2] + (1,) + a.shape[2:]) if a.ndim == 3 else a


def _geometry(x_shape: tuple, w_shape: tuple, stride, pad_lo, pad_hi, dilation):
    """(kh, kw, sh, sw, ph, pw, dh, dw, oh, ow) of a 2-D (or, as height 1, 1-D) convolution."""
    if len(x_shape) == 3:
        stride, dilation = (1,) + tuple(stride), (1,) + tuple(dilation)
        pad_lo, pad_hi = (0,) + tuple(pad_lo), (0,) + tuple(pad_hi)
        w_shape = w_shape[:2] + (1,) + w_shape[2:]
        x_shape = x_shape[:2] + (1,) + x_shape[2:]
    kh, kw = w_shape[2], w_shape[3]
    oh = out_size(x_shape[2], kh, stride[0], pad_lo[0], pad_hi[0], dilation[0])
    ow = out_size(x_shape[3], kw, stride[1], pad_lo[1], pad_hi[1], dilation[1])
    return (kh, kw, stride[0], stride[1], pad_lo[0], pad_lo[1], dilation[0], dilation[1],
            oh, ow)


def _chunk(n: int, rows: int, L: int, itemsize: int) -> int:
    """Images per chunk: as many as keep a (rows, nb*L) workspace under CHUNK_BYTES."""
    per_image = max(rows * L * itemsize, 1)
    return max(1, min(n, CHUNK_BYTES // per_image))


def _im2col_into(xc: np.ndarray, cols: np.ndarray, geo: tuple) -> None:
    (_im2col_par if cols.size >= PARALLEL_MIN else _im2col)(xc, cols, *geo)


def _channels_first(g4: np.ndarray) -> np.ndarray:
    """g (nb, O, oh, ow), any strides (a broadcast gradient too), copied into a workspace as
    (O, nb*oh*ow)."""
    nb, O, oh, ow = g4.shape
    g2 = _workspace(1, (O, nb * oh * ow), g4.dtype)
    np.copyto(g2.reshape(O, nb, oh, ow), g4.transpose(1, 0, 2, 3))
    return g2


def conv_forward(x: np.ndarray, w: np.ndarray, b, stride, pad_lo, pad_hi, dilation,
                 groups: int) -> np.ndarray:
    """The convolution of x (N, C, *spatial) with w (O, C/groups, *kernel) plus bias b (O,) or
    None; 1 or 2 spatial axes."""
    geo = _geometry(x.shape, w.shape, stride, pad_lo, pad_hi, dilation)
    kh, kw, oh, ow = geo[0], geo[1], geo[8], geo[9]
    x4 = _as4(np.ascontiguousarray(x))
    N, C = x4.shape[:2]
    O = w.shape[0]
    G = groups
    K = C * kh * kw
    L = oh * ow
    out_shape = (N, O) + ((oh, ow) if x.ndim == 4 else (ow,))
    out = np.empty((N, O, L), dtype=x.dtype)
    if out.size == 0:
        return out.reshape(out_shape)
    if K == 0:  # no input channels: the bias alone
        out[...] = 0 if b is None else b.reshape(O, 1)
        return out.reshape(out_shape)
    wg = np.ascontiguousarray(w).reshape(G, O // G, K // G)
    bias = np.zeros(O, dtype=x.dtype) if b is None else np.ascontiguousarray(b)
    nb = _chunk(N, max(K, O), L, x.dtype.itemsize)
    for n0 in range(0, N, nb):
        n1 = min(N, n0 + nb)
        cols = _workspace(0, (K, (n1 - n0) * L), x.dtype)
        _im2col_into(x4[n0:n1], cols, geo)
        y2 = _workspace(1, (O, (n1 - n0) * L), x.dtype)
        np.matmul(wg, cols.reshape(G, K // G, -1), out=y2.reshape(G, O // G, -1))
        (_to_images_par if y2.size >= PARALLEL_MIN else _to_images)(y2, bias, out[n0:n1])
    return out.reshape(out_shape)


def conv_backward_input(g: np.ndarray, w: np.ndarray, x_shape: tuple, stride, pad_lo, pad_hi,
                        dilation, groups: int) -> np.ndarray:
    """The gradient of the convolution with respect to its input (shape `x_shape`), for the
    output gradient g: col2im(w^T @ g) (a transposed convolution)."""
    geo = _geometry(x_shape, w.shape, stride, pad_lo, pad_hi, dilation)
    kh, kw, oh, ow = geo[0], geo[1], geo[8], geo[9]
    x4_shape = x_shape if len(x_shape) == 4 else x_shape[:2] + (1,) + x_shape[2:]
    N, C = x4_shape[:2]
    O = w.shape[0]
    G = groups
    K = C * kh * kw
    L = oh * ow
    gx = np.empty(x4_shape, dtype=g.dtype)
    if gx.size == 0:
        return gx.reshape(x_shape)
    if g.size == 0:
        gx[...] = 0
        return gx.reshape(x_shape)
    g4 = _as4(g)
    wt = np.ascontiguousarray(w).reshape(G, O // G, K // G).transpose(0, 2, 1)
    nb = _chunk(N, max(K, O), L, g.dtype.itemsize)
    for n0 in range(0, N, nb):
        n1 = min(N, n0 + nb)
        g2 = _channels_first(g4[n0:n1])
        dcols = _workspace(0, (K, (n1 - n0) * L), g.dtype)
        np.matmul(wt, g2.reshape(G, O // G, -1), out=dcols.reshape(G, K // G, -1))
        (_col2im_par if dcols.size >= PARALLEL_MIN else _col2im)(dcols, gx[n0:n1], *geo)
    return gx.reshape(x_shape)


def conv_backward_weight(g: np.ndarray, x: np.ndarray, w_shape: tuple, stride, pad_lo, pad_hi,
                         dilation, groups: int) -> np.ndarray:
    """The gradient of the convolution with respect to its weight (shape `w_shape`), for the
    output gradient g and the input x: g @ im2col(x)^T."""
    geo = _geometry(x.shape, w_shape, stride, pad_lo, pad_hi, dilation)
    kh, kw, oh, ow = geo[0], geo[1], geo[8], geo[9]
    x4 = _as4(np.ascontiguousarray(x))
    N, C = x4.shape[:2]
    O = w_shape[0]
    G = groups
    K = C * kh * kw
    L = oh * ow
    if O * K == 0 or g.size == 0:
        return np.zeros(w_shape, dtype=g.dtype)
    g4 = _as4(g)
    nb = _chunk(N, max(K, O), L, g.dtype.itemsize)
    for n0 in range(0, N, nb):
        n1 = min(N, n0 + nb)
        cols = _workspace(0, (K, (n1 - n0) * L), g.dtype)
        _im2col_into(x4[n0:n1], cols, geo)
        g2 = _channels_first(g4[n0:n1])
        part = np.matmul(g2.reshape(G, O // G, -1),
                         cols.reshape(G, K // G, -1).transpose(0, 2, 1))
        if n0 == 0:
            gw = part
        else:
            gw += part
    return gw.reshape(w_shape)


def conv_backward_bias(g: np.ndarray) -> np.ndarray:
    """The gradient of the convolution with respect to its bias: g (N, O, *spatial), any
    strides, summed over every axis but O (one pass, no thread pool)."""
    return np.einsum("nol->o", g.reshape(g.shape[0], g.shape[1], -1))
