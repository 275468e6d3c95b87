"""Op-table rows of the nn family "linear, convolution, pooling, embedding, dropout"
(jitgrad/nn/_conv.py).

``tests/test_ops.py`` runs each row: forward against the numpy references below, gradients
against central differences (float64), double backward, and values, grad_fn names and
gradients against torch. The references are written independently of the kernels: the
convolution sums one einsum per kernel tap over strided slices of the padded input (no im2col,
no GEMM), pooling loops over output positions, and the dropout mask is replayed from numpy's
own MT19937 seeded as torch seeds its generator.

Index tensors of embedding are constants of the row; dropout rows seed the generator inside
the row, so that every call (and torch) draws the same mask.
"""

from __future__ import annotations

import math

import numpy as np

from op_table import F32, F64, I64, OpRow, Sampler, values_indices

R = OpRow
NUMERIC = (F32, F64, I64)


def _f(m):
    return m.nn.functional


def _n(v, n: int) -> tuple:
    return (v,) * n if isinstance(v, int) else tuple(v)


# --------------------------------------------------------------------------- references

def conv_ref(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """Convolution by definition: for each kernel tap, the strided slice of the padded input
    that tap sees, contracted with that tap's weights (per group)."""
    nd = w.ndim - 2
    unbatched = x.ndim == nd + 1
    if unbatched:
        x = x[None]
    s, d, ks = _n(stride, nd), _n(dilation, nd), w.shape[2:]
    if padding == "same":
        pads = [(t // 2, t - t // 2) for t in (dd * (k - 1) for dd, k in zip(d, ks))]
    elif padding == "valid":
        pads = [(0, 0)] * nd
    else:
        pads = [(p, p) for p in _n(padding, nd)]
    xp = np.pad(x, [(0, 0), (0, 0)] + pads)
    osz = [(xp.shape[2 + i] - d[i] * (ks[i] - 1) - 1) // s[i] + 1 for i in range(nd)]
    n, c, o = x.shape[0], x.shape[1], w.shape[0]
    cg, og = c // groups, o // groups
    out = np.zeros((n, o, *osz), dtype=np.result_type(x, w))
    for tap in np.ndindex(*ks):
        sl = tuple(slice(t * dd, t * dd + ss * (m - 1) + 1, ss)
                   for t, dd, ss, m in zip(tap, d, s, osz))
        patch = xp[(slice(None), slice(None)) + sl]
        for g in range(groups):
            wt = w[(slice(g * og, (g + 1) * og), slice(None)) + tap]
            out[:, g * og:(g + 1) * og] += np.einsum("nc...,oc->no...",
                                                     patch[:, g * cg:(g + 1) * cg], wt)
    if b is not None:
        out += b.reshape((1, o) + (1,) * nd)
    return out[0] if unbatched else out


def _pool_size(n, k, s, p, d, ceil_mode):
    out = (n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def max_pool_ref(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """(values, flat indices) by looping over output positions and window taps."""
    (kh, kw), (ph, pw), (dh, dw) = _n(kernel_size, 2), _n(padding, 2), _n(dilation, 2)
    sh, sw = _n(stride, 2) if stride is not None else (kh, kw)
    H, W = x.shape[-2:]
    OH, OW = _pool_size(H, kh, sh, ph, dh, ceil_mode), _pool_size(W, kw, sw, pw, dw, ceil_mode)
    vals = np.empty(x.shape[:-2] + (OH, OW), dtype=x.dtype)
    idx = np.empty(vals.shape, dtype=np.int64)
    for oh in range(OH):
        for ow in range(OW):
            cand, at = [], []
            for i in range(kh):
                for j in range(kw):
                    ih, iw = oh * sh - ph + i * dh, ow * sw - pw + j * dw
                    if 0 <= ih < H and 0 <= iw < W:
                        cand.append(x[..., ih, iw])
                        at.append(ih * W + iw)
            cand = np.stack(cand)
            best = np.argmax(cand, axis=0)  # the first of equal maxima
            vals[..., oh, ow] = np.take_along_axis(cand, best[None], 0)[0]
            idx[..., oh, ow] = np.array(at)[best]
    return vals, idx


def avg_pool_ref(x, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
    """Average pooling by torch's definition, one output position at a time."""
    (kh, kw), (ph, pw) = _n(kernel_size, 2), _n(padding, 2)
    sh, sw = _n(stride, 2) if stride is not None else (kh, kw)
    H, W = x.shape[-2:]
    OH, OW = _pool_size(H, kh, sh, ph, 1, ceil_mode), _pool_size(W, kw, sw, pw, 1, ceil_mode)
    out = np.empty(x.shape[:-2] + (OH, OW), dtype=x.dtype)
    for oh in range(OH):
        for ow in range(OW):
            h0, w0 = oh * sh - ph, ow * sw - pw
            h1, w1 = min(h0 + kh, H + ph), min(w0 + kw, W + pw)
            pool = (h1 - h0) * (w1 - w0)
            h0, w0, h1, w1 = max(h0, 0), max(w0, 0), min(h1, H), min(w1, W)
            total = x[..., h0:h1, w0:w1].sum(axis=(-1, -2))
            div = divisor_override or (pool if count_include_pad else (h1 - h0) * (w1 - w0))
            out[..., oh, ow] = np.trunc(total / div) if x.dtype.kind in "iu" else total / div
    return out


def adaptive_avg_ref(x, size):
    """Adaptive average pooling: output o averages input [floor(o*n/m), ceil((o+1)*n/m))."""
    H, W = x.shape[-2:]
    OH, OW = (H if size[0] is None else size[0]), (W if size[1] is None else size[1])
    out = np.empty(x.shape[:-2] + (OH, OW), dtype=x.dtype)
    for oh in range(OH):
        h0, h1 = math.floor(oh * H / OH), math.ceil((oh + 1) * H / OH)
        for ow in range(OW):
            w0, w1 = math.floor(ow * W / OW), math.ceil((ow + 1) * W / OW)
            out[..., oh, ow] = x[..., h0:h1, w0:w1].mean(axis=(-1, -2))
    return out


def torch_mask(seed: int, shape: tuple, keep: float) -> np.ndarray:
    """``torch.manual_seed(seed); torch.empty(shape).bernoulli_(keep)`` replayed with numpy:
    torch's CPU generator is MT19937 seeded by init_genrand (numpy's legacy seeding); each
    element takes a 64-bit draw (two words, high first) and compares its low 53 bits, as a
    uniform in [0, 1), with keep."""
    bits = np.random.MT19937()
    bits._legacy_seeding(seed)
    n = math.prod(shape)
    words = bits.random_raw(2 * n).astype(np.uint64)
    r = (words[0::2] << np.uint64(32)) | words[1::2]
    u = (r & np.uint64((1 << 53) - 1)).astype(np.float64) * 2.0 ** -53
    return (u < keep).reshape(shape)


def dropout_ref(x, p, seed):
    keep = torch_mask(seed, x.shape, 1 - p)
    return np.where(keep, x / (1 - p), 0.0).astype(x.dtype)


# --------------------------------------------------------------------------- constants

IDX = [[1, 2, 1], [0, 9, 1]]  # embedding indices, with repeats (gradients add up)


def _idx(m, w, dtype=None):
    return m.tensor(IDX, device=w.device, dtype=dtype)


def _seeded_dropout(m, x, p, seed=7, **kw):
    m.manual_seed(seed)
    return _f(m).dropout(x, p, **kw)


MAXPOOL_IN = Sampler(distinct=True)  # no ties inside a window: the argmax is unambiguous
# Convolutions sum dozens of products: inputs in [-1, 1] keep float32's rounding in those sums
# (which jitgrad's BLAS and torch's kernels order differently) within the torch check's
# tolerance.
UNIT = Sampler(-1.0, 1.0)

# --------------------------------------------------------------------------- rows

ROWS: list[OpRow] = [
    # ------------------------------------------------------------------ linear
    R("linear_2d_bias", lambda m, x, w, b: _f(m).linear(x, w, b),
      lambda x, w, b: x @ w.T + b, [((3, 4), (5, 4), (5,))], dtypes=NUMERIC),
    R("linear_nd_bias", lambda m, x, w, b: _f(m).linear(x, w, b),
      lambda x, w, b: x @ w.T + b, [((2, 3, 4), (5, 4), (5,)), ((4,), (5, 4), (5,)),
                                    ((2, 1, 2, 4), (5, 4), (5,))]),
    R("linear_no_bias", lambda m, x, w: _f(m).linear(x, w), lambda x, w: x @ w.T,
      [((3, 4), (5, 4)), ((2, 3, 4), (5, 4)), ((4,), (5, 4)), ((3, 4), (4,))],
      dtypes=NUMERIC),
    R("linear_strided_bias", lambda m, x, w, b: _f(m).linear(x.transpose(0, 1), w, b),
      lambda x, w, b: x.transpose(1, 0, 2) @ w.T + b, [((3, 2, 4), (5, 4), (5,))]),
    R("linear_bias_2d", lambda m, x, w, b: _f(m).linear(x, w, b), lambda x, w, b: x @ w.T + b,
      [((3, 4), (5, 4), (3, 5)), ((3, 4), (5, 4), ())]),

    # ------------------------------------------------------------------ convolution
    R("conv2d", lambda m, x, w, b: _f(m).conv2d(x, w, b, padding=1),
      lambda x, w, b: conv_ref(x, w, b, padding=1),
      [((2, 3, 5, 6), (4, 3, 3, 3), (4,))], UNIT, dtypes=NUMERIC),
    R("conv2d_geometry", lambda m, x, w, b: _f(m).conv2d(x, w, b, stride=(2, 1), padding=(1, 2),
                                                         dilation=(1, 2), groups=2),
      lambda x, w, b: conv_ref(x, w, b, (2, 1), (1, 2), (1, 2), 2),
      [((1, 4, 7, 6), (6, 2, 3, 2), (6,))], UNIT),
    R("conv2d_depthwise_no_bias", lambda m, x, w: _f(m).conv2d(x, w, stride=2, groups=3),
      lambda x, w: conv_ref(x, w, None, 2, 0, 1, 3), [((1, 3, 6, 5), (6, 1, 2, 2))], UNIT),
    R("conv2d_same_even", lambda m, x, w, b: _f(m).conv2d(x, w, b, padding="same"),
      lambda x, w, b: conv_ref(x, w, b, padding="same"), [((2, 2, 5, 4), (3, 2, 2, 3), (3,))],
      UNIT),
    R("conv2d_same_dilated", lambda m, x, w: _f(m).conv2d(x, w, padding="same", dilation=2),
      lambda x, w: conv_ref(x, w, padding="same", dilation=2), [((1, 2, 6, 5), (2, 2, 3, 2))],
      UNIT),
    R("conv2d_valid", lambda m, x, w, b: _f(m).conv2d(x, w, b, padding="valid"),
      lambda x, w, b: conv_ref(x, w, b, padding="valid"), [((2, 2, 4, 5), (3, 2, 2, 2), (3,))],
      UNIT),
    R("conv2d_unbatched", lambda m, x, w, b: _f(m).conv2d(x, w, b, padding=(0, 1)),
      lambda x, w, b: conv_ref(x, w, b, padding=(0, 1)), [((3, 4, 4), (2, 3, 3, 3), (2,))],
      UNIT),
    R("conv1d", lambda m, x, w, b: _f(m).conv1d(x, w, b, stride=2, padding=1, dilation=2,
                                                groups=2),
      lambda x, w, b: conv_ref(x, w, b, 2, 1, 2, 2), [((2, 4, 9), (6, 2, 3), (6,))], UNIT,
      dtypes=NUMERIC),
    R("conv1d_same_unbatched", lambda m, x, w: _f(m).conv1d(x, w, padding="same"),
      lambda x, w: conv_ref(x, w, padding="same"), [((3, 7), (2, 3, 4)), ((2, 3, 7), (2, 3, 4))],
      UNIT),

    # ------------------------------------------------------------------ pooling
    R("max_pool2d", lambda m, x: _f(m).max_pool2d(x, 2), lambda x: max_pool_ref(x, 2)[0],
      [((2, 3, 4, 5),), ((3, 5, 4),)], MAXPOOL_IN, dtypes=NUMERIC),
    R("max_pool2d_indices",
      lambda m, x: _f(m).max_pool2d(x, (3, 2), stride=(2, 1), padding=1, dilation=(1, 2),
                                    ceil_mode=True, return_indices=True),
      lambda x: max_pool_ref(x, (3, 2), (2, 1), 1, (1, 2), True),
      [((2, 2, 6, 7),)], MAXPOOL_IN, dtypes=NUMERIC, out_dtype=values_indices),
    R("max_pool2d_overlap", lambda m, x: _f(m).max_pool2d(x, 3, stride=1, padding=1),
      lambda x: max_pool_ref(x, 3, 1, 1)[0], [((1, 2, 4, 4),)], MAXPOOL_IN),
    R("avg_pool2d", lambda m, x: _f(m).avg_pool2d(x, 2), lambda x: avg_pool_ref(x, 2),
      [((2, 3, 4, 5),), ((3, 5, 4),)], dtypes=NUMERIC),
    R("avg_pool2d_padded",
      lambda m, x: _f(m).avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True),
      lambda x: avg_pool_ref(x, 3, 2, 1, True), [((2, 2, 6, 7),)], dtypes=NUMERIC),
    R("avg_pool2d_exclude_pad",
      lambda m, x: _f(m).avg_pool2d(x, (3, 2), stride=(2, 1), padding=(1, 1), ceil_mode=True,
                                    count_include_pad=False),
      lambda x: avg_pool_ref(x, (3, 2), (2, 1), (1, 1), True, False), [((2, 2, 6, 5),)]),
    R("avg_pool2d_divisor", lambda m, x: _f(m).avg_pool2d(x, 2, 1, 1, divisor_override=3),
      lambda x: avg_pool_ref(x, 2, 1, 1, divisor_override=3), [((1, 2, 3, 4),)],
      dtypes=NUMERIC),
    R("adaptive_avg_pool2d", lambda m, x: _f(m).adaptive_avg_pool2d(x, (3, 2)),
      lambda x: adaptive_avg_ref(x, (3, 2)), [((2, 3, 5, 7),), ((3, 4, 4),)]),
    R("adaptive_avg_pool2d_grow", lambda m, x: _f(m).adaptive_avg_pool2d(x, (None, 5)),
      lambda x: adaptive_avg_ref(x, (None, 5)), [((1, 2, 3, 3),)]),
    R("adaptive_avg_pool2d_global", lambda m, x: _f(m).adaptive_avg_pool2d(x, 1),
      lambda x: x.mean(axis=(-1, -2), keepdims=True), [((2, 3, 4, 5),)]),

    # ------------------------------------------------------------------ embedding
    R("embedding", lambda m, w: _f(m).embedding(_idx(m, w), w), lambda w: w[np.array(IDX)],
      [((10, 3),)], dtypes=NUMERIC),
    # the next two change the gradient on purpose (no finite-difference check); torch checks it
    R("embedding_padding_idx", lambda m, w: _f(m).embedding(_idx(m, w, m.int32), w,
                                                            padding_idx=-9),
      lambda w: w[np.array(IDX)], [((10, 3),)], numeric=False),
    R("embedding_scale_grad_by_freq",
      lambda m, w: _f(m).embedding(_idx(m, w), w, padding_idx=0, scale_grad_by_freq=True),
      lambda w: w[np.array(IDX)], [((10, 3),)], numeric=False),

    # ------------------------------------------------------------------ dropout
    R("dropout", lambda m, x: _seeded_dropout(m, x, 0.4), lambda x: dropout_ref(x, 0.4, 7),
      [((4, 5),), ((3, 1, 4),)]),
    R("dropout_eval", lambda m, x: _seeded_dropout(m, x, 0.4, training=False),
      lambda x: x, [((4, 5),)]),
    R("dropout_p0", lambda m, x: _seeded_dropout(m, x, 0.0), lambda x: x, [((4, 5),)]),
    R("dropout_p1", lambda m, x: _seeded_dropout(m, x, 1.0), lambda x: x * 0, [((4, 5),)]),
]
