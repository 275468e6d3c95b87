"""Convolution kernels for the CPU: im2col and col2im around per-image GEMMs.

A convolution of x (N, C, H, W) with w (O, C/G, kh, kw) in G groups is computed chunk by chunk
of images. For a chunk of `nb` images, with K = C*kh*kw and L = OH*OW:

* ``im2col`` writes the column tensor ``cols`` (nb, K, L): row ``(c*kh + i)*kw + j`` of image
  n holds the input pixel that kernel tap (i, j) of channel c sees at each output position
  (zero where it falls into the padding). Rows are ordered by channel, so the rows of group g
  are the g-th block of K/G;
* the forward is ``w (G, O/G, K/G) @ cols (nb, G, K/G, L)``, written straight into the output
  (nb, O, L), then the bias is added;
* the input gradient is ``dcols = w^T @ g``, scattered back by ``col2im`` (the adjoint of
  im2col: every column entry is added to the pixel it was read from);
* the weight gradient is ``g @ cols^T``, summed over the images;
* the bias gradient sums g over images and positions.

Products go to BLAS through numpy (``kernels/matmul.py`` explains why). The batched layout
keeps each image's columns together (im2col and col2im stream through one 100-KiB block per
image instead of K rows strided by the whole batch, four to five times faster here) and gives
BLAS one small product per image (at the reference case these run as fast with one BLAS thread
as with two), so the pipeline keeps its speed on a busy machine, where every hand-off between
threads can cost a scheduler time slice. The column tensors and a contiguous copy of
a strided output gradient live in per-thread workspaces that are reused from call to call (a
fresh multi-megabyte buffer costs a page fault per 4 KiB on first touch, several times the cost
of filling it). Chunks keep a workspace under ``CHUNK_BYTES``; a single image that needs more
gets a buffer of its own, not kept.

The column kernels have ``prange`` variants over (image, channel) planes for column tensors of
``PARALLEL_MIN`` elements and more. Below that (the reference case, batch 32 x 3 channels x
32 x 32 with a 3x3 kernel, has 0.9 M) the serial loops take about 0.1 ms, and waking Numba's
OpenMP pool between BLAS calls costs more: on a loaded 2-core machine, much more.

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
PARALLEL_MIN = 1 << 21  # column-tensor elements from which the prange variants pay
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
def _im2col_plane(x, cols, t, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    n = t // C
    c = t % C
    for i in range(kh):
        for j in range(kw):
            r = (c * kh + i) * kw + j
            off = j * dw - pw
            for y in range(oh):
                iy = y * sh - ph + i * dh
                base = y * ow
                if iy < 0 or iy >= H:
                    for o in range(ow):
                        cols[n, r, base + o] = 0
                else:
                    # one bounds test per element: LLVM turns this loop into masked vector
                    # loads, where loops over a precomputed valid range stay scalar
                    for o in range(ow):
                        ix = o * sw + off
                        cols[n, r, base + o] = x[n, c, iy, ix] if ix >= 0 and ix < W else 0


@njit(**JIT)
def _im2col(x, cols, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    """cols[n, (c*kh + i)*kw + j, y*ow + o] = x[n, c, y*sh - ph + i*dh, o*sw - pw + j*dw],
    0 outside x"""
    for t in range(x.shape[0] * x.shape[1]):
        _im2col_plane(x, cols, t, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)


@njit(parallel=True, **JIT)
def _im2col_par(x, cols, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    """cols[n, (c*kh + i)*kw + j, y*ow + o] = x[n, c, y*sh - ph + i*dh, o*sw - pw + j*dw],
    0 outside x; (image, channel) planes in parallel"""
    for t in prange(x.shape[0] * x.shape[1]):
        _im2col_plane(x, cols, t, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)


@njit(inline="always")
def _col2im_plane(cols, gx, t, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    C, H, W = gx.shape[1], gx.shape[2], gx.shape[3]
    n = t // C
    c = t % C
    for y in range(H):
        for o in range(W):
            gx[n, c, y, o] = 0
    for i in range(kh):
        for j in range(kw):
            r = (c * kh + i) * kw + j
            off = j * dw - pw
            for y in range(oh):
                iy = y * sh - ph + i * dh
                if iy >= 0 and iy < H:
                    base = y * ow
                    for o in range(ow):
                        ix = o * sw + off
                        if ix >= 0 and ix < W:
                            gx[n, c, iy, ix] += cols[n, r, base + o]


@njit(**JIT)
def _col2im(cols, gx, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    """gx[n, c, y*sh - ph + i*dh, o*sw - pw + j*dw] += cols[n, (c*kh + i)*kw + j, y*ow + o]
    (the adjoint of im2col; gx starts zeroed)"""
    for t in range(gx.shape[0] * gx.shape[1]):
        _col2im_plane(cols, gx, t, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)


@njit(parallel=True, **JIT)
def _col2im_par(cols, gx, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    """gx[n, c, y*sh - ph + i*dh, o*sw - pw + j*dw] += cols[n, (c*kh + i)*kw + j, y*ow + o]
    (the adjoint of im2col; gx starts zeroed); (image, channel) planes in parallel"""
    for t in prange(gx.shape[0] * gx.shape[1]):
        _col2im_plane(cols, gx, t, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)


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


def _chunk(n: int, per_image: int) -> int:
    """Images per chunk: as many as keep a workspace of `per_image` bytes each under
    CHUNK_BYTES."""
    return max(1, min(n, CHUNK_BYTES // max(per_image, 1)))


def _im2col_into(xc: np.ndarray, cols: np.ndarray, geo: tuple) -> None:
    (_im2col_par if cols.size >= PARALLEL_MIN else _im2col)(xc, cols, *geo)


def _contiguous(g: np.ndarray) -> np.ndarray:
    """g itself when C-contiguous, else a copy in a workspace (a broadcast or strided
    gradient would send numpy's matmul to its slow non-BLAS loop)."""
    if g.flags.c_contiguous:
        return g
    c = _workspace(1, g.shape, g.dtype)
    np.copyto(c, g)
    return c


def conv_forward(x: np.ndarray, w: np.ndarray, b, stride, pad_lo, pad_hi, dilation,
                 groups: int) -> np.ndarray:
    """The convolution of x (N, C, *spatial) with w (O, C/groups, *kernel) plus bias b (O,) or
    None; 1 or 2 spatial axes."""
    geo = _geometry(x.shape, w.shape, stride, pad_lo, pad_hi, dilation)
    kh, kw, oh, ow = geo[0], geo[1], geo[8], geo[9]
    x4 = _as4(np.ascontiguousarray(x))
    N, C = x4.shape[:2]
    O, G = w.shape[0], groups
    K, L = C * kh * kw, oh * ow
    out = np.empty((N, O, L), dtype=x.dtype)
    out_shape = (N, O) + ((oh, ow) if x.ndim == 4 else (ow,))
    if out.size == 0:
        return out.reshape(out_shape)
    if K == 0:  # no input channels
        out[...] = 0
    else:
        wg = np.ascontiguousarray(w).reshape(G, O // G, K // G)
        nb = _chunk(N, K * L * x.dtype.itemsize)
        for n0 in range(0, N, nb):
            n1 = min(N, n0 + nb)
            cols = _workspace(0, (n1 - n0, K, L), x.dtype)
            _im2col_into(x4[n0:n1], cols, geo)
            np.matmul(wg, cols.reshape(n1 - n0, G, K // G, L),
                      out=out[n0:n1].reshape(n1 - n0, G, O // G, L))
    if b is not None:
        out += b.reshape(O, 1)
    return out.reshape(out_shape)


def conv_backward_input(g: np.ndarray, w: np.ndarray, x_shape: tuple, stride, pad_lo, pad_hi,
                        dilation, groups: int) -> np.ndarray:
    """The gradient of the convolution with respect to its input (shape `x_shape`), for the
    output gradient g: col2im(w^T @ g) (a transposed convolution)."""
    geo = _geometry(x_shape, w.shape, stride, pad_lo, pad_hi, dilation)
    kh, kw, oh, ow = geo[0], geo[1], geo[8], geo[9]
    x4_shape = x_shape if len(x_shape) == 4 else x_shape[:2] + (1,) + x_shape[2:]
    N, C = x4_shape[:2]
    O, G = w.shape[0], groups
    K, L = C * kh * kw, oh * ow
    gx = np.empty(x4_shape, dtype=g.dtype)
    if gx.size == 0:
        return gx.reshape(x_shape)
    if g.size == 0:
        gx[...] = 0
        return gx.reshape(x_shape)
    g3 = g.reshape(N, O, L) if g.flags.c_contiguous else g
    wt = np.ascontiguousarray(w).reshape(G, O // G, K // G).transpose(0, 2, 1)
    nb = _chunk(N, max(K, O) * L * g.dtype.itemsize)
    for n0 in range(0, N, nb):
        n1 = min(N, n0 + nb)
        gc = _contiguous(g3[n0:n1]).reshape(n1 - n0, G, O // G, L)
        dcols = _workspace(0, (n1 - n0, K, L), g.dtype)
        np.matmul(wt, gc, out=dcols.reshape(n1 - n0, G, K // G, L))
        (_col2im_par if dcols.size >= PARALLEL_MIN else _col2im)(dcols, gx[n0:n1], *geo)
    return gx.reshape(x_shape)


def conv_backward_weight(g: np.ndarray, x: np.ndarray, w_shape: tuple, stride, pad_lo, pad_hi,
                         dilation, groups: int) -> np.ndarray:
    """The gradient of the convolution with respect to its weight (shape `w_shape`), for the
    output gradient g and the input x: the sum over images of g @ im2col(x)^T."""
    geo = _geometry(x.shape, w_shape, stride, pad_lo, pad_hi, dilation)
    kh, kw, oh, ow = geo[0], geo[1], geo[8], geo[9]
    x4 = _as4(np.ascontiguousarray(x))
    N, C = x4.shape[:2]
    O, G = w_shape[0], groups
    K, L = C * kh * kw, oh * ow
    gw = np.zeros((G, O // G, K // G), dtype=g.dtype)
    if gw.size == 0 or g.size == 0:
        return gw.reshape(w_shape)
    g3 = g.reshape(N, O, L) if g.flags.c_contiguous else g
    nb = _chunk(N, max(K, O) * L * g.dtype.itemsize)
    for n0 in range(0, N, nb):
        n1 = min(N, n0 + nb)
        cols = _workspace(0, (n1 - n0, K, L), g.dtype)
        _im2col_into(x4[n0:n1], cols, geo)
        gc = _contiguous(g3[n0:n1]).reshape(n1 - n0, G, O // G, L)
        gw += np.matmul(gc, cols.reshape(n1 - n0, G, K // G, L).transpose(0, 1, 3, 2)).sum(0)
    return gw.reshape(w_shape)


def conv_backward_bias(g: np.ndarray) -> np.ndarray:
    """The gradient of the convolution with respect to its bias: g (N, O, *spatial), any
    strides, summed over every axis but O (one pass, no thread pool)."""
    return np.einsum("nol->o", g.reshape(g.shape[0], g.shape[1], -1))
