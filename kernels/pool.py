"""Pooling kernels for the CPU.

Every kernel sees its input as contiguous planes (P, H, W), P = batch * channels, and runs the
planes in parallel (``prange``) from ``PARALLEL_MIN`` input elements on; a plane is written by
one thread only, so overlapping windows need no synchronisation.

* Max pooling returns the values and, per output, the flat index ``ih*W + iw`` of the maximum
  inside its plane (torch's convention). A NaN wins over any number; among equal values the
  first in the window wins. Its backward scatters the gradient to those indices (adding where
  windows overlap) and its double backward gathers from them.
* Average pooling (and adaptive average pooling) is given per axis as window tables: for output
  row oh the input rows [hs[oh], he[oh]) (already clipped to the input), and a divisor factor
  fh[oh]; likewise for columns. The divisor of output (oh, ow) is fh[oh] * fw[ow], or
  ``override`` when that is non-zero. Integer inputs divide with truncation, as torch does.

The window tables and the output sizes are computed and validated by the caller
(``jitgrad/nn/_conv.py``): these kernels do not check bounds.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["avg_pool2d", "avg_pool2d_backward", "gather_planes", "max_pool2d", "scatter_planes"]

JIT = dict(cache=True, error_model="numpy", nogil=True)
PARALLEL_MIN = 1 << 20  # input elements from which the prange variants pay (see kernels/conv.py)


# --------------------------------------------------------------------------- max pooling

@njit(inline="always")
def _max_plane(x, out, idx, p, kh, kw, sh, sw, ph, pw, dh, dw, lowest):
    H, W = x.shape[1], x.shape[2]
    OH, OW = out.shape[1], out.shape[2]
    for oh in range(OH):
        h0 = oh * sh - ph
        h1 = min(h0 + (kh - 1) * dh + 1, H)
        while h0 < 0:
            h0 += dh
        for ow in range(OW):
            w0 = ow * sw - pw
            w1 = min(w0 + (kw - 1) * dw + 1, W)
            while w0 < 0:
                w0 += dw
            best = lowest
            at = h0 * W + w0  # a window with no input pixel keeps `lowest` (torch: -inf)
            for ih in range(h0, h1, dh):
                for iw in range(w0, w1, dw):
                    v = x[p, ih, iw]
                    if v > best or v != v:  # noqa: PLR0124 - v != v: v is NaN
                        best = v
                        at = ih * W + iw
            out[p, oh, ow] = best
            idx[p, oh, ow] = at


@njit(**JIT)
def _max_pool(x, out, idx, kh, kw, sh, sw, ph, pw, dh, dw, lowest):
    """out[p, oh, ow] = max of x[p] over the window of (oh, ow); idx = its flat index"""
    for p in range(x.shape[0]):
        _max_plane(x, out, idx, p, kh, kw, sh, sw, ph, pw, dh, dw, lowest)


@njit(parallel=True, **JIT)
def _max_pool_par(x, out, idx, kh, kw, sh, sw, ph, pw, dh, dw, lowest):
    """out[p, oh, ow] = max of x[p] over the window of (oh, ow); idx = its flat index;
    planes in parallel"""
    for p in prange(x.shape[0]):
        _max_plane(x, out, idx, p, kh, kw, sh, sw, ph, pw, dh, dw, lowest)


def _lowest(dtype) -> np.generic:
    dtype = np.dtype(dtype)
    return dtype.type(-np.inf) if dtype.kind == "f" else np.iinfo(dtype).min


def max_pool2d(x3: np.ndarray, out_hw: tuple, kernel: tuple, stride: tuple, padding: tuple,
               dilation: tuple):
    """Max pooling of planes x3 (P, H, W): values (P, OH, OW) and int64 flat indices."""
    x3 = np.ascontiguousarray(x3)
    P = x3.shape[0]
    out = np.empty((P,) + tuple(out_hw), dtype=x3.dtype)
    idx = np.empty((P,) + tuple(out_hw), dtype=np.int64)
    if out.size:
        kern = _max_pool_par if x3.size >= PARALLEL_MIN and P > 1 else _max_pool
        kern(x3, out, idx, kernel[0], kernel[1], stride[0], stride[1], padding[0], padding[1],
             dilation[0], dilation[1], _lowest(x3.dtype))
    return out, idx


@njit(inline="always")
def _scatter_plane(g, idx, out, p):
    n = out.shape[1]
    for k in range(n):
        out[p, k] = 0
    for k in range(g.shape[1]):
        i = idx[p, k]
        if i >= 0 and i < n:  # an empty window's index points outside the plane
            out[p, i] += g[p, k]


@njit(**JIT)
def _scatter_planes(g, idx, out):
    """out[p, idx[p, k]] += g[p, k] (out starts zeroed)"""
    for p in range(g.shape[0]):
        _scatter_plane(g, idx, out, p)


@njit(parallel=True, **JIT)
def _scatter_planes_par(g, idx, out):
    """out[p, idx[p, k]] += g[p, k] (out starts zeroed); planes in parallel"""
    for p in prange(g.shape[0]):
        _scatter_plane(g, idx, out, p)


def scatter_planes(g2: np.ndarray, idx2: np.ndarray, n: int) -> np.ndarray:
    """(P, n) zeros with g2[p, k] added at idx2[p, k]: the backward of max pooling."""
    g2 = np.ascontiguousarray(g2)
    out = np.empty((g2.shape[0], n), dtype=g2.dtype)
    if out.size:
        kern = _scatter_planes_par if out.size >= PARALLEL_MIN and g2.shape[0] > 1 \
            else _scatter_planes
        kern(g2, idx2, out)
    return out


@njit(**JIT)
def _gather_planes(x, idx, out):
    """out[p, k] = x[p, idx[p, k]] (0 for an index outside the plane)"""
    n = x.shape[1]
    for p in range(out.shape[0]):
        for k in range(out.shape[1]):
            i = idx[p, k]
            out[p, k] = x[p, i] if i >= 0 and i < n else 0


def gather_planes(x2: np.ndarray, idx2: np.ndarray) -> np.ndarray:
    """x2[p, idx2[p, k]] for every (p, k): the double backward of max pooling."""
    out = np.empty(idx2.shape, dtype=x2.dtype)
    if out.size:
        _gather_planes(np.ascontiguousarray(x2), idx2, out)
    return out


# --------------------------------------------------------------------------- average pooling

@njit(inline="always")
def _avg_plane(x, out, p, hs, he, ws, we, fh, fw, override, zero):
    for oh in range(out.shape[1]):
        for ow in range(out.shape[2]):
            acc = zero
            for ih in range(hs[oh], he[oh]):
                for iw in range(ws[ow], we[ow]):
                    acc += x[p, ih, iw]
            d = override if override != 0 else fh[oh] * fw[ow]
            out[p, oh, ow] = acc / d  # an integer output truncates, as C++ division does


@njit(**JIT)
def _avg_pool(x, out, hs, he, ws, we, fh, fw, override, zero):
    """out[p, oh, ow] = sum of x[p, hs[oh]:he[oh], ws[ow]:we[ow]] / (fh[oh] * fw[ow] or
    override)"""
    for p in range(x.shape[0]):
        _avg_plane(x, out, p, hs, he, ws, we, fh, fw, override, zero)


@njit(parallel=True, **JIT)
def _avg_pool_par(x, out, hs, he, ws, we, fh, fw, override, zero):
    """out[p, oh, ow] = sum of x[p, hs[oh]:he[oh], ws[ow]:we[ow]] / (fh[oh] * fw[ow] or
    override); planes in parallel"""
    for p in prange(x.shape[0]):
        _avg_plane(x, out, p, hs, he, ws, we, fh, fw, override, zero)


@njit(inline="always")
def _avg_back_plane(g, gx, p, hs, he, ws, we, fh, fw, override):
    for ih in range(gx.shape[1]):
        for iw in range(gx.shape[2]):
            gx[p, ih, iw] = 0
    for oh in range(g.shape[1]):
        for ow in range(g.shape[2]):
            d = override if override != 0 else fh[oh] * fw[ow]
            v = g[p, oh, ow] / d
            for ih in range(hs[oh], he[oh]):
                for iw in range(ws[ow], we[ow]):
                    gx[p, ih, iw] += v


@njit(**JIT)
def _avg_pool_backward(g, gx, hs, he, ws, we, fh, fw, override):
    """gx[p, ih, iw] = sum over the windows (oh, ow) holding (ih, iw) of g[p, oh, ow] /
    divisor(oh, ow)"""
    for p in range(g.shape[0]):
        _avg_back_plane(g, gx, p, hs, he, ws, we, fh, fw, override)


@njit(parallel=True, **JIT)
def _avg_pool_backward_par(g, gx, hs, he, ws, we, fh, fw, override):
    """gx[p, ih, iw] = sum over the windows (oh, ow) holding (ih, iw) of g[p, oh, ow] /
    divisor(oh, ow); planes in parallel"""
    for p in prange(g.shape[0]):
        _avg_back_plane(g, gx, p, hs, he, ws, we, fh, fw, override)


def avg_pool2d(x3: np.ndarray, tables: tuple, override: int) -> np.ndarray:
    """Average pooling of planes x3 (P, H, W) over the windows of `tables`
    ((hs, he, fh), (ws, we, fw)); the divisor is `override` when it is non-zero."""
    x3 = np.ascontiguousarray(x3)
    (hs, he, fh), (ws, we, fw) = tables
    out = np.empty((x3.shape[0], hs.size, ws.size), dtype=x3.dtype)
    if out.size:
        zero = np.float64(0) if x3.dtype.kind == "f" else np.int64(0)
        kern = _avg_pool_par if x3.size >= PARALLEL_MIN and x3.shape[0] > 1 else _avg_pool
        kern(x3, out, hs, he, ws, we, fh, fw, np.int64(override), zero)
    return out


def avg_pool2d_backward(g3: np.ndarray, in_hw: tuple, tables: tuple, override: int
                        ) -> np.ndarray:
    """The gradient (P, H, W) of average pooling for the output gradient g3 (P, OH, OW)."""
    g3 = np.ascontiguousarray(g3)
    (hs, he, fh), (ws, we, fw) = tables
    gx = np.empty((g3.shape[0],) + tuple(in_hw), dtype=g3.dtype)
    if gx.size:
        kern = _avg_pool_backward_par if gx.size >= PARALLEL_MIN and g3.shape[0] > 1 \
            else _avg_pool_backward
        kern(g3, gx, hs, he, ws, we, fh, fw, np.int64(override))
    return gx
