"""The derivative table: one row per primitive.

Vocabulary
----------
``defvjp(name, *vjps)`` makes the row of the primitive whose grad_fn is called ``name``. It
takes one VJP per input of the primitive, in input order; the engine calls a VJP only for an
input that needs a gradient. Each VJP is called as ``vjp(g, *saved)``:

* ``g`` is the gradient flowing into the primitive's output (the output's shape and dtype);
* ``saved`` is what the primitive's forward passed to ``record``, in that order: input tensors,
  the output (recorded as ``OUTPUT``, read back here as the result tensor, usually named
  ``ans``), and plain values such as dims, shapes and scalars.

A VJP returns the gradient of its input, or None for "no gradient". It may return a tensor
that still has the output's broadcast shape or another dtype: the engine sums it back to the
input's shape and casts it, in one place. VJPs are written with jitgrad ops, so with
``create_graph=True`` they record a graph themselves and gradients of gradients work. Where a
backward pass deserves one fused kernel (``tanh_backward``, ...), that kernel is a primitive of
its own with a row below.
"""

from __future__ import annotations

import math

import numpy as np

from . import _ops as O
from . import _views as V
from .autograd.graph import Rule
from .kernels import elementwise as _elementwise
from .tensor import Tensor

_wrap = Tensor._wrap


def defvjp(name: str, *vjps, fused=None) -> Rule:
    return Rule(name, vjps, fused)


# --------------------------------------------------------------------------- arithmetic

ADD = defvjp("AddBackward0", lambda g: g, lambda g: g, fused=lambda g, edges: [g, g])
SUB = defvjp("SubBackward0", lambda g: g, lambda g: O.neg(g))
RSUB = defvjp("RsubBackward1", lambda g: O.neg(g))
_PRODUCT_GRADS: dict = {}  # dtype -> kernels.elementwise.product_grads_kernel(dtype)
_FLAT_MUL = _elementwise.FLAT.setdefault("mul", {})


def _mul_fused(g, edges, a, b):
    """[g * b, g * a] (None for an input whose edge leads nowhere) for small CPU operands of
    g's shape and dtype, straight through the flat kernels; None when that does not apply."""
    gd = g._data
    ad = a._data
    bd = b._data
    sh = gd.shape
    dt = gd.dtype
    if ad.shape == sh and bd.shape == sh and ad.dtype is dt and bd.dtype is dt and \
            gd.__class__ is np.ndarray and ad.__class__ is np.ndarray and \
            bd.__class__ is np.ndarray and gd.size < O._SMALL:
        if len(sh) != 1:
            gd = gd.reshape(-1)
            ad = ad.reshape(-1)
            bd = bd.reshape(-1)
        if edges[0][0] is not None and edges[1][0] is not None:
            k = _PRODUCT_GRADS.get(dt)
            if k is None:
                if dt not in _FLAT_MUL:
                    return None  # (no mul kernel for this dtype has been built yet)
                k = _PRODUCT_GRADS[dt] = _elementwise.product_grads_kernel(dt)
            ga = np.empty(sh, dt)
            gb = np.empty(sh, dt)
            if len(sh) == 1:
                k(gd, ad, bd, ga, gb)
            else:
                k(gd, ad, bd, ga.reshape(-1), gb.reshape(-1))
            return [_wrap(ga), _wrap(gb)]
        k = _FLAT_MUL.get(dt)
        if k is not None:
            out = [None, None]
            i = 0 if edges[0][0] is not None else 1
            o = np.empty(sh, dt)
            k(gd, bd if i == 0 else ad, o if len(sh) == 1 else o.reshape(-1))
            out[i] = _wrap(o)
            return out
    return None


MUL = defvjp("MulBackward0",
             lambda g, a, b: O.mul(g, b),
             lambda g, a, b: O.mul(g, a),
             fused=_mul_fused)
DIV = defvjp("DivBackward0",
             lambda g, a, b: O.div(g, b),
             lambda g, a, b: O.neg(O.div(O.mul(g, a), O.mul(b, b))))
NEG = defvjp("NegBackward0", lambda g: O.neg(g))
RECIPROCAL = defvjp("ReciprocalBackward0",
                    lambda g, ans: O.neg(O.mul(g, O.mul(ans, ans))))


def _pow_scalar(g, x, p):
    if p == 0:
        return P.zeros_grad(g)
    return O.mul(g, O.mul(O.pow(x, p - 1), p))


def _pow_exponent(g, a, b, ans):
    # d/db a**b = a**b * log(a); torch defines it as 0 where a == 0 and b >= 0.
    r = O.mul(g, O.mul(ans, O.log(a)))
    return O.where(O.logical_and(O.eq(a, 0), O.ge(b, 0)), 0.0, r)


POW_SCALAR = defvjp("PowBackward0", _pow_scalar)
POW_TENSOR = defvjp("PowBackward1",  # 0 where b == 0, as in torch (0 ** -1 is inf)
                    lambda g, a, b, ans: O.where(O.eq(b, 0), 0.0, O.mul(
                        g, O.mul(b, O.pow(a, O.sub(b, 1))))),
                    _pow_exponent)


def _pow_base(g, s, ans):
    # d/dx s**x = s**x * log(s) for a number s; for s == 0, torch defines it as 0 where
    # x >= 0, that is where ans = 0 ** x is 0 or 1.
    log_s = math.log(s) if s > 0 else (float("-inf") if s == 0 else float("nan"))
    r = O.mul(g, O.mul(ans, log_s))
    return O.where(O.le(ans, 1), 0.0, r) if s == 0 else r


POW_BASE = defvjp("PowBackward2", _pow_base)
MAXIMUM = defvjp("MaximumBackward0",
                 lambda g, a, b: O.where(O.eq(a, b), O.div(g, 2), O.where(O.gt(a, b), g, 0.0)),
                 lambda g, a, b: O.where(O.eq(a, b), O.div(g, 2), O.where(O.lt(a, b), g, 0.0)))
MINIMUM = defvjp("MinimumBackward0",
                 lambda g, a, b: O.where(O.eq(a, b), O.div(g, 2), O.where(O.lt(a, b), g, 0.0)),
                 lambda g, a, b: O.where(O.eq(a, b), O.div(g, 2), O.where(O.gt(a, b), g, 0.0)))

# --------------------------------------------------------------------------- unary math

EXP = defvjp("ExpBackward0", lambda g, ans: O.mul(g, ans))
LOG = defvjp("LogBackward0", lambda g, x: O.div(g, x))
SQRT = defvjp("SqrtBackward0", lambda g, ans: O.div(g, O.mul(ans, 2)))
ABS = defvjp("AbsBackward0", lambda g, x: O.mul(g, O.sign(x)))
SIGN = defvjp("SignBackward0", lambda g: P.zeros_grad(g))  # zeros, even where g is inf
def _from_output(kname: str):
    """The fused form of a backward f(g, y) of the forward's output y: its one kernel
    straight on the arrays (no graph is being recorded), when g matches y."""
    def fused(g, edges, ans):
        gd, yd = g._data, ans._data
        if gd.shape != yd.shape or gd.dtype is not yd.dtype or gd.__class__ is not yd.__class__:
            return None
        return [_wrap(O.backend(gd).binary(kname, gd, yd, gd.shape))]
    return fused


TANH = defvjp("TanhBackward0", lambda g, ans: O.tanh_backward(g, ans),
              fused=_from_output("tanh_backward"))
SIGMOID = defvjp("SigmoidBackward0", lambda g, ans: O.sigmoid_backward(g, ans),
                 fused=_from_output("sigmoid_backward"))
RELU = defvjp("ReluBackward0", lambda g, ans: O.relu_backward(g, ans),
              fused=_from_output("relu_backward"))
CLAMP = defvjp("ClampBackward1",
               lambda g, x, lo, hi: O.where(_in_range(x, lo, hi), g, 0.0))
def _clip(g, keep):
    return O.where(keep, g, 0.0)


CLAMP_TENSOR = defvjp(  # clamp(x, min=tensor, max=tensor)
    "ClampBackward0",
    lambda g, x, lo, hi: _clip(g, O.logical_and(O.ge(x, lo), O.le(x, hi))),
    lambda g, x, lo, hi: _clip(g, O.lt(x, lo)),
    lambda g, x, lo, hi: _clip(g, O.logical_and(O.ge(x, lo), O.gt(x, hi))))
CLAMP_MIN_TENSOR = defvjp("ClampMinBackward1", lambda g, x, lo: _clip(g, O.ge(x, lo)),
                          lambda g, x, lo: _clip(g, O.lt(x, lo)))
CLAMP_MAX_TENSOR = defvjp("ClampMaxBackward1", lambda g, x, hi: _clip(g, O.le(x, hi)),
                          lambda g, x, hi: _clip(g, O.gt(x, hi)))
CLAMP_MIN = defvjp("ClampMinBackward0", CLAMP.vjps[0])
CLAMP_MAX = defvjp("ClampMaxBackward0", CLAMP.vjps[0])
ADDMM_SCALED = defvjp(  # torch.addmm's beta * input + alpha * m1 @ m2 (linear: ADDMM below)
    "AddmmBackward0",
    lambda g, m1, m2, beta, alpha: O.mul(g, beta),
    lambda g, m1, m2, beta, alpha: O.mul(O.matmul(g, V.t(m2)), alpha),
    lambda g, m1, m2, beta, alpha: O.mul(O.matmul(V.t(m1), g), alpha))


def _in_range(x, lo, hi):
    if lo is None:
        return O.le(x, hi)
    if hi is None:
        return O.ge(x, lo)
    return O.logical_and(O.ge(x, lo), O.le(x, hi))


# Fused backward primitives and their own derivatives (for double backward).
TANH_BACKWARD = defvjp("TanhBackwardBackward0",
                       lambda gg, g, y: O.tanh_backward(gg, y),
                       lambda gg, g, y: O.mul(O.mul(gg, g), O.mul(y, -2.0)))
SIGMOID_BACKWARD = defvjp("SigmoidBackwardBackward0",
                          lambda gg, g, y: O.sigmoid_backward(gg, y),
                          lambda gg, g, y: O.mul(O.mul(gg, g), O.rsub(O.mul(y, 2.0), 1.0)))
RELU_BACKWARD = defvjp("ThresholdBackwardBackward0",
                       lambda gg, g, y: O.relu_backward(gg, y),
                       lambda gg, g, y: None)

WHERE = defvjp("WhereBackward0",
               lambda g, cond: O.where(cond, g, 0.0),
               lambda g, cond: O.where(cond, 0.0, g))

# --------------------------------------------------------------------------- reductions


def _unsqueeze_dims(g, dims, keepdim):
    if not keepdim:
        for d in dims:  # sorted ascending: each lands where it was reduced
            g = V.unsqueeze(g, d)
    return g


SUM = defvjp("SumBackward0", lambda g, shape: V.expand(g, shape))
SUM_DIM = defvjp("SumBackward1",
                 lambda g, shape, dims, keepdim: V.expand(_unsqueeze_dims(g, dims, keepdim),
                                                          shape))
def _mean_fused(g, edges, shape, n):
    # g / n spread over the input's shape as one stride-0 view: a single kernel call.
    gd = g._data
    q = O.backend(gd).binary("div", gd, np.array(n, dtype=gd.dtype), gd.shape)
    return [_wrap(V.broadcast_data(q, shape))]


MEAN = defvjp("MeanBackward0", lambda g, shape, n: V.expand(O.div(g, n), shape),
              fused=_mean_fused)
MEAN_DIM = defvjp("MeanBackward1",
                  lambda g, shape, dims, keepdim, n: V.expand(
                      _unsqueeze_dims(O.div(g, n), dims, keepdim), shape))


def _evenly(g, x, ans):
    # The gradient of max()/min() over all elements is shared among the tied extremes.
    mask = O.eq(x, ans)
    return O.where(mask, O.div(g, O.sum(mask)), 0.0)


MAX_ALL = defvjp("MaxBackward1", _evenly)
MIN_ALL = defvjp("MinBackward1", _evenly)
def _extreme_dim_backward(g, shape, dim, idx, keepdim):
    if shape == ():  # max/min over the one "dim" of a 0-d tensor: the value itself
        return g
    return O.scatter_dim(g, shape, dim, idx, keepdim)


MAX_DIM = defvjp("MaxBackward0", _extreme_dim_backward)
MIN_DIM = defvjp("MinBackward0", _extreme_dim_backward)
SCATTER_DIM = defvjp("ValueSelectingReductionBackwardBackward0",
                     lambda g, dim, idx, keepdim: O.gather_dim(g, dim, idx, keepdim))
GATHER_DIM = defvjp("GatherBackward0",
                    lambda g, shape, dim, idx, keepdim: O.scatter_dim(g, shape, dim, idx,
                                                                      keepdim))

# --------------------------------------------------------------------------- matmul


def _mm_a(g, a, b):
    if a.ndim == 1 and b.ndim == 1:
        return O.mul(g, b)
    if b.ndim == 1:
        return O.mul(V.unsqueeze(g, -1), b)
    if a.ndim == 1:
        return V.squeeze(O.matmul(b, V.unsqueeze(g, -1)), -1)
    return O.matmul(g, V.transpose(b, -1, -2))


def _mm_b_like_b(g, a, b):
    """a^T g for a 2-D b, computed in b's layout: when b is a transposed view (a linear
    layer's weight.t()), as (g^T a)^T, so that the gradient reaching the weight through the
    transpose is contiguous and becomes its .grad without a copy."""
    bd = b._data
    if bd.strides[0] < bd.strides[1]:
        return V.t(O.matmul(V.t(g), a))
    return O.matmul(V.t(a), g)


def _mm_b(g, a, b):
    if a.ndim == 1 and b.ndim == 1:
        return O.mul(g, a)
    if a.ndim == 1:
        return O.mul(V.unsqueeze(a, -1), V.unsqueeze(g, -2))
    if b.ndim == 1:
        return V.squeeze(O.matmul(V.transpose(a, -1, -2), V.unsqueeze(g, -1)), -1)
    if a.ndim == 2 and b.ndim == 2:
        return _mm_b_like_b(g, a, b)
    return O.matmul(V.transpose(a, -1, -2), g)


MM = defvjp("MmBackward0", _mm_a, _mm_b)
MV = defvjp("MvBackward0", _mm_a, _mm_b)
DOT = defvjp("DotBackward0", _mm_a, _mm_b)
BMM = defvjp("BmmBackward0", _mm_a, _mm_b)
# Pass-through nodes that give matmul's result torch's grad_fn name (see _ops.matmul).
MATMUL_SQUEEZE = defvjp("SqueezeBackward4", lambda g: g)
MATMUL_TRANSPOSE = defvjp("TransposeBackward0", lambda g: g)

# --------------------------------------------------------------------------- copies, casts

CLONE = defvjp("CloneBackward0", lambda g: g)
TO_COPY = defvjp("ToCopyBackward0", lambda g: g)  # the engine casts g back to the input dtype
TO_DEVICE = defvjp("ToCopyBackward0", lambda g, src: O.to_device(g, src))
ALIAS = defvjp("AliasBackward0", lambda g: g)

# --------------------------------------------------------------------------- views

VIEW = defvjp("ViewBackward0", lambda g, shape: V.reshape(g, shape))
UNSAFE_VIEW = defvjp("UnsafeViewBackward0", lambda g, shape: V.reshape(g, shape))
TRANSPOSE = defvjp("TransposeBackward0", lambda g, d0, d1: V.transpose(g, d0, d1))
T = defvjp("TBackward0", lambda g: V.t(g),
           fused=lambda g, edges: [_wrap(g._data.T)])  # (no graph: no view to track)
PERMUTE = defvjp("PermuteBackward0",
                 lambda g, dims: V.permute(g, tuple(sorted(range(len(dims)),
                                                           key=dims.__getitem__))))
UNSQUEEZE = defvjp("UnsqueezeBackward0", lambda g, d: V.squeeze(g, d))
SQUEEZE = defvjp("SqueezeBackward0", lambda g, shape: V.reshape(g, shape))
SQUEEZE_DIM = defvjp("SqueezeBackward1", lambda g, shape: V.reshape(g, shape))
SQUEEZE_DIMS = defvjp("SqueezeBackward2", lambda g, shape: V.reshape(g, shape))
EXPAND = defvjp("ExpandBackward0", lambda g: g)  # the engine sums g back to the input shape

# --------------------------------------------------------------------------- indexing

SELECT = defvjp("SelectBackward0",
                lambda g, shape, dim, i: V.select_backward(g, shape, dim, i))
SELECT_BACKWARD = defvjp("SelectBackwardBackward0",
                         lambda g, dim, i: V.select(g, dim, i))
SLICE = defvjp("SliceBackward0", lambda g, shape, key: V.slice_backward(g, shape, key))
SLICE_BACKWARD = defvjp("SliceBackwardBackward0", lambda g, key: _slice_again(g, key))


def _slice_again(g, key):
    s = key[-1]
    return V.slice_dim(g, len(key) - 1, s.start, s.stop, s.step)


INDEX = defvjp("IndexBackward0", lambda g, shape, parts: V.index_backward(g, shape, parts))
INDEX_BACKWARD = defvjp("IndexPutBackward0", lambda g, parts: V.index(g, parts))


# ==== Families added after the core. Each family keeps its rows in its own section below,
# ==== between its banner and the next one.

# ---- pointwise family (jitgrad/_pointwise.py) ----
# Backward passes of more than one multiplication are fused primitives (P.*_backward) with
# rows of their own further down; their second derivatives are written in ops again.

from . import _pointwise as P  # noqa: E402 - the family's ops use this table too

SIN = defvjp("SinBackward0", lambda g, x: P.sin_backward(g, x))
COS = defvjp("CosBackward0", lambda g, x: P.cos_backward(g, x))
TAN = defvjp("TanBackward0", lambda g, ans: P.tan_backward(g, ans))
# The inverse and hyperbolic functions' derivatives, written with ops (so they differentiate
# again): 1/sqrt(1 - x^2), -1/sqrt(1 - x^2), 1/(1 + x^2), cosh, sinh, 1/sqrt(x^2 + 1),
# 1/sqrt(x^2 - 1), 1/(1 - x^2).
ASIN = defvjp("AsinBackward0", lambda g, x: O.mul(g, P.rsqrt(O.rsub(O.mul(x, x), 1))))
ACOS = defvjp("AcosBackward0",
              lambda g, x: O.neg(O.mul(g, P.rsqrt(O.rsub(O.mul(x, x), 1)))))
ATAN = defvjp("AtanBackward0", lambda g, x: O.div(g, O.add(O.mul(x, x), 1)))
SINH = defvjp("SinhBackward0", lambda g, x: O.mul(g, P.cosh(x)))
COSH = defvjp("CoshBackward0", lambda g, x: O.mul(g, P.sinh(x)))
ASINH = defvjp("AsinhBackward0", lambda g, x: O.mul(g, P.rsqrt(O.add(O.mul(x, x), 1))))
ACOSH = defvjp("AcoshBackward0", lambda g, x: O.mul(g, P.rsqrt(O.sub(O.mul(x, x), 1))))
ATANH = defvjp("AtanhBackward0", lambda g, x: O.div(g, O.rsub(O.mul(x, x), 1)))
LOG1P = defvjp("Log1PBackward0", lambda g, x: P.log1p_backward(g, x))
EXPM1 = defvjp("Expm1Backward0", lambda g, ans: P.expm1_backward(g, ans))
LOG2 = defvjp("Log2Backward0", lambda g, x: P.log2_backward(g, x))
LOG10 = defvjp("Log10Backward0", lambda g, x: P.log10_backward(g, x))
EXP2 = defvjp("Exp2Backward0", lambda g, ans: P.exp2_backward(g, ans))
RSQRT = defvjp("RsqrtBackward0", lambda g, ans: P.rsqrt_backward(g, ans))
ERF = defvjp("ErfBackward0", lambda g, x: P.erf_backward(g, x))
# Step functions: zero gradient, as in torch (also where the step is).
FLOOR = defvjp("FloorBackward0", P.zeros_grad)
CEIL = defvjp("CeilBackward0", P.zeros_grad)
ROUND = defvjp("RoundBackward0", P.zeros_grad)
ROUND_DECIMALS = defvjp("RoundBackward1", P.zeros_grad)
TRUNC = defvjp("TruncBackward0", P.zeros_grad)
FMOD_SCALAR = defvjp("FmodBackward0", lambda g: g)
FMOD_TENSOR = defvjp("FmodBackward1", lambda g, a, b: g,
                     lambda g, a, b: O.neg(O.mul(g, P.trunc(O.div(a, b)))))
REMAINDER_SCALAR = defvjp("RemainderBackward0", lambda g: g)
REMAINDER_TENSOR = defvjp("RemainderBackward1", lambda g, a, b: g,
                          lambda g, a, b: O.neg(O.mul(g, P.floor(O.div(a, b)))))


def _remainder_not_implemented(g):
    raise RuntimeError("derivative for aten::remainder is not implemented")


REMAINDER_SCALAR_SELF = defvjp("torch::autograd::NotImplemented", _remainder_not_implemented)
DIV_ROUNDED = defvjp("DivBackward2", P.zeros_grad, P.zeros_grad)


def _floor_divide_not_implemented(g, *saved):
    raise RuntimeError("derivative for aten::floor_divide is not implemented")


FLOOR_DIVIDE = defvjp("torch::autograd::NotImplemented", _floor_divide_not_implemented,
                      _floor_divide_not_implemented)
ATAN2 = defvjp("Atan2Backward0",
               lambda g, a, b: P.atan2_backward(g, a, b, 1),
               lambda g, a, b: P.atan2_backward(g, b, a, -1))
LOGADDEXP = defvjp("LogaddexpBackward0",
                   lambda g, a, b: P.logaddexp_backward(g, a, b),
                   lambda g, a, b: P.logaddexp_backward(g, b, a))
LERP_SCALAR = defvjp("LerpBackward0", lambda g, w: O.mul(g, 1 - w), lambda g, w: O.mul(g, w))
LERP_TENSOR = defvjp("LerpBackward1",
                     lambda g, a, b, w: O.mul(g, O.rsub(w, 1)),
                     lambda g, a, b, w: O.mul(g, w),
                     lambda g, a, b, w: O.mul(g, O.sub(b, a)))
ADDCMUL = defvjp("AddcmulBackward0",
                 lambda g, t1, t2, v: g,
                 lambda g, t1, t2, v: O.mul(g, O.mul(t2, v)),
                 lambda g, t1, t2, v: O.mul(g, O.mul(t1, v)))
ADDCDIV = defvjp("AddcdivBackward0",
                 lambda g, t1, t2, v: g,
                 lambda g, t1, t2, v: O.mul(g, O.div(v, t2)),
                 lambda g, t1, t2, v: O.neg(O.div(O.mul(O.mul(g, v), t1), O.mul(t2, t2))))
SOFTPLUS = defvjp("SoftplusBackward0",
                  lambda g, x, beta, th: P.softplus_backward(g, x, beta, th))
ELU = defvjp("EluBackward0", lambda g, x, alpha: P.elu_backward(g, x, alpha))
LEAKY_RELU = defvjp("LeakyReluBackward0", lambda g, x, s: P.leaky_relu_backward(g, x, s))
HARDTANH = defvjp("HardtanhBackward0", lambda g, x, lo, hi: P.hardtanh_backward(g, x, lo, hi))
GELU = defvjp("GeluBackward0", lambda g, x, approximate: P.gelu_backward(g, x, approximate))
SILU = defvjp("SiluBackward0", lambda g, x: P.silu_backward(g, x))
MISH = defvjp("MishBackward0", lambda g, x: P.mish_backward(g, x))


# Fused backward primitives, h(g, x) = g f'(x): dh/dg is h itself at gg, dh/dx = gg g f''(x).

def _ggg(gg, g, *factors):
    r = O.mul(gg, g)
    for f in factors:
        r = O.mul(r, f)
    return r


SIN_BACKWARD = defvjp("SinBackwardBackward0",
                      lambda gg, g, x: P.sin_backward(gg, x),
                      lambda gg, g, x: O.neg(_ggg(gg, g, P.sin(x))))
COS_BACKWARD = defvjp("CosBackwardBackward0",
                      lambda gg, g, x: P.cos_backward(gg, x),
                      lambda gg, g, x: O.neg(_ggg(gg, g, P.cos(x))))
TAN_BACKWARD = defvjp("TanBackwardBackward0",  # h(g, y) = g (1 + y**2), y = tan(x)
                      lambda gg, g, y: P.tan_backward(gg, y),
                      lambda gg, g, y: _ggg(gg, g, y, 2.0))
LOG1P_BACKWARD = defvjp("Log1PBackwardBackward0",
                        lambda gg, g, x: P.log1p_backward(gg, x),
                        lambda gg, g, x: O.neg(P.log1p_backward(P.log1p_backward(
                            O.mul(gg, g), x), x)))
EXPM1_BACKWARD = defvjp("Expm1BackwardBackward0",  # h(g, y) = g (y + 1), y = expm1(x)
                        lambda gg, g, y: P.expm1_backward(gg, y),
                        lambda gg, g, y: O.mul(gg, g))
LOG2_BACKWARD = defvjp("Log2BackwardBackward0",
                       lambda gg, g, x: P.log2_backward(gg, x),
                       lambda gg, g, x: O.neg(O.div(P.log2_backward(O.mul(gg, g), x), x)))
LOG10_BACKWARD = defvjp("Log10BackwardBackward0",
                        lambda gg, g, x: P.log10_backward(gg, x),
                        lambda gg, g, x: O.neg(O.div(P.log10_backward(O.mul(gg, g), x), x)))
EXP2_BACKWARD = defvjp("Exp2BackwardBackward0",  # h(g, y) = g y ln 2, y = exp2(x)
                       lambda gg, g, y: P.exp2_backward(gg, y),
                       lambda gg, g, y: _ggg(gg, g, math.log(2.0)))
RSQRT_BACKWARD = defvjp("RsqrtBackwardBackward0",  # h(g, y) = -g y**3 / 2, y = rsqrt(x)
                        lambda gg, g, y: P.rsqrt_backward(gg, y),
                        lambda gg, g, y: _ggg(gg, g, P.square(y), -1.5))
ERF_BACKWARD = defvjp("ErfBackwardBackward0",
                      lambda gg, g, x: P.erf_backward(gg, x),
                      lambda gg, g, x: P.erf_backward(_ggg(gg, g, x, -2.0), x))


def _softplus_gg(gg, g, x, beta, threshold):
    s = O.sigmoid(O.mul(x, beta))
    r = _ggg(gg, g, O.mul(s, O.rsub(s, 1.0)), beta)
    return O.where(O.gt(O.mul(x, beta), threshold), 0.0, r)


def _elu_gg(gg, g, x, alpha):
    return O.where(O.le(x, 0.0), P.elu_backward(O.mul(gg, g), x, alpha), 0.0)


def _gelu_gg(gg, g, x, approximate):
    if approximate == "none":  # f'' = phi(x) (2 - x**2)
        pdf = O.mul(O.exp(O.mul(P.square(x), -0.5)), 1 / math.sqrt(2 * math.pi))
        return _ggg(gg, g, pdf, O.rsub(P.square(x), 2.0))
    # f = x (1 + t) / 2, t = tanh(u): f'' = (1 - t**2) (u' + x (u'' - 2 t u'**2) / 2)
    beta, kappa = math.sqrt(2 / math.pi), 0.044715
    x2 = P.square(x)
    t = O.tanh(O.mul(O.add(x, O.mul(O.mul(x2, x), kappa)), beta))
    du = O.mul(O.add(O.mul(x2, 3 * kappa), 1.0), beta)
    d2u = O.mul(x, 6 * beta * kappa)
    inner = O.add(du, O.mul(O.mul(x, 0.5), O.sub(d2u, O.mul(O.mul(t, P.square(du)), 2.0))))
    return _ggg(gg, g, O.rsub(P.square(t), 1.0), inner)


def _silu_gg(gg, g, x):  # f'' = s (1 - s) (2 + x (1 - 2 s)), s = sigmoid(x)
    s = O.sigmoid(x)
    return _ggg(gg, g, O.mul(s, O.rsub(s, 1.0)),
                O.add(O.mul(x, O.rsub(O.mul(s, 2.0), 1.0)), 2.0))


def _mish_gg(gg, g, x):  # f'' = (1 - T**2) s (2 + x (1 - s - 2 T s)), T = tanh(softplus(x))
    s = O.sigmoid(x)
    t = O.tanh(P.softplus(x))
    inner = O.add(O.mul(x, O.sub(O.rsub(s, 1.0), O.mul(O.mul(t, s), 2.0))), 2.0)
    return _ggg(gg, g, O.rsub(P.square(t), 1.0), s, inner)


def _atan2_gg_a(gg, g, a, b, sign):  # h = sign g b / r, r = a**2 + b**2: dh/da
    r = O.add(P.square(a), P.square(b))
    return O.div(_ggg(gg, g, a, b, -2.0 * sign), P.square(r))


def _atan2_gg_b(gg, g, a, b, sign):  # dh/db = sign g (a**2 - b**2) / r**2
    r = O.add(P.square(a), P.square(b))
    return O.div(_ggg(gg, g, O.sub(P.square(a), P.square(b)), float(sign)), P.square(r))


def _logaddexp_gg(gg, g, a, b):  # h = g sigmoid(a - b): dh/da = gg g s (1 - s) = -dh/db
    s = O.sigmoid(O.sub(a, b))
    return _ggg(gg, g, O.mul(s, O.rsub(s, 1.0)))


SOFTPLUS_BACKWARD = defvjp("SoftplusBackwardBackward0",
                           lambda gg, g, x, beta, th: P.softplus_backward(gg, x, beta, th),
                           _softplus_gg)
ELU_BACKWARD = defvjp("EluBackwardBackward0",
                      lambda gg, g, x, alpha: P.elu_backward(gg, x, alpha), _elu_gg)
LEAKY_RELU_BACKWARD = defvjp("LeakyReluBackwardBackward0",
                             lambda gg, g, x, s: P.leaky_relu_backward(gg, x, s),
                             lambda gg, g, x, s: None)
HARDTANH_BACKWARD = defvjp("HardtanhBackwardBackward0",
                           lambda gg, g, x, lo, hi: P.hardtanh_backward(gg, x, lo, hi),
                           lambda gg, g, x, lo, hi: None)
GELU_BACKWARD = defvjp("GeluBackwardBackward0",
                       lambda gg, g, x, approximate: P.gelu_backward(gg, x, approximate),
                       _gelu_gg)
SILU_BACKWARD = defvjp("SiluBackwardBackward0",
                       lambda gg, g, x: P.silu_backward(gg, x), _silu_gg)
MISH_BACKWARD = defvjp("MishBackwardBackward0",
                       lambda gg, g, x: P.mish_backward(gg, x), _mish_gg)
ATAN2_BACKWARD = defvjp("Atan2BackwardBackward0",
                        lambda gg, g, a, b, sign: P.atan2_backward(gg, a, b, sign),
                        _atan2_gg_a, _atan2_gg_b)
LOGADDEXP_BACKWARD = defvjp("LogaddexpBackwardBackward0",
                            lambda gg, g, a, b: P.logaddexp_backward(gg, a, b),
                            _logaddexp_gg,
                            lambda gg, g, a, b: O.neg(_logaddexp_gg(gg, g, a, b)))

# ---- reductions and softmax family (jitgrad/_reductions.py) ----
# Fused backward kernels are primitives with rows of their own (the *Backward*Backward0 rows
# and torch's SoftmaxBackwardDataBackward0); prod and cumprod are differentiated without
# dividing by the input, their second derivatives through `shift` and the linear recurrence
# `linrec`, whose own rows use only those two again.

from . import _reductions as R  # noqa: E402 - the family's ops use this table too

PROD = defvjp("ProdBackward0", lambda g, x: R.prod_backward(g, x, None))
PROD_DIM = defvjp("ProdBackward1", lambda g, x, dim: R.prod_backward(g, x, dim))
PROD_BACKWARD = defvjp("ProdBackwardBackward0", R.prod_backward_vjp_g, R.prod_backward_vjp_x)
VAR = defvjp("VarBackward0", R.var_vjp)
STD = defvjp("StdBackward0", R.std_vjp)
VAR_BACKWARD = defvjp("VarBackwardBackward0", R.var_backward_vjp_g,
                      lambda gg, g, x, dims, scale: R.var_backward(g, gg, dims, scale))
NORM = defvjp("LinalgVectorNormBackward0", R.norm_vjp)
LOGSUMEXP = defvjp("LogsumexpBackward0",
                   lambda g, x, ans, dims: R.logsumexp_backward(g, x, ans, dims))
LOGSUMEXP_BACKWARD = defvjp("LogsumexpBackwardBackward0",
                            R.logsumexp_backward_vjp_g,
                            lambda gg, g, x, res, ans, dims: O.mul(gg, ans),
                            R.logsumexp_backward_vjp_res)
AMAX = defvjp("AmaxBackward0", lambda g, x, ans, dims: R.extreme_backward(g, x, ans, dims))
AMIN = defvjp("AminBackward0", lambda g, x, ans, dims: R.extreme_backward(g, x, ans, dims))
EXTREME_BACKWARD = defvjp("ExtremeBackwardBackward0", R.extreme_backward_vjp)
CUMSUM = defvjp("CumsumBackward0",
                lambda g, dim, reverse: R._cumsum(g, dim, not reverse))
CUMPROD = defvjp("CumprodBackward0",
                 lambda g, x, ans, dim, reverse: R.cumprod_backward(g, x, ans, dim, reverse))
CUMPROD_BACKWARD = defvjp("CumprodBackwardBackward0", R.cumprod_backward_vjp_g,
                          R.cumprod_backward_vjp_x, R.cumprod_backward_vjp_y)
LINREC = defvjp("LinearRecurrenceBackward0", R.linrec_vjp_a,
                lambda g, a, ans, dim, reverse: R.linrec_adjoint(a, g, dim, reverse))
SHIFT = defvjp("ShiftBackward0", lambda g, dim, by: R.shift(g, dim, -by, 0.0))
SOFTMAX = defvjp("SoftmaxBackward0",
                 lambda g, ans, dim: R.softmax_backward_data(g, ans, dim, False))
LOG_SOFTMAX = defvjp("LogSoftmaxBackward0",
                     lambda g, ans, dim: R.softmax_backward_data(g, ans, dim, True))
SOFTMAX_BACKWARD_DATA = defvjp(
    "SoftmaxBackwardDataBackward0",
    lambda gg, g, y, dim: R.softmax_backward_data(gg, y, dim, False),
    lambda gg, g, y, dim: O.sub(
        O.mul(gg, O.sub(g, O.sum(O.mul(g, y), dim, keepdim=True))),
        O.mul(g, O.sum(O.mul(gg, y), dim, keepdim=True))))
LOG_SOFTMAX_BACKWARD_DATA = defvjp(
    "LogSoftmaxBackwardDataBackward0",
    lambda gg, g, y, dim: O.sub(gg, O.sum(O.mul(gg, O.exp(y)), dim, keepdim=True)),
    lambda gg, g, y, dim: O.neg(O.mul(O.mul(gg, O.exp(y)), O.sum(g, dim, keepdim=True))))

# ---- shape and data movement family (jitgrad/_shape_ops.py) ----
# cat and stack take any number of inputs: their rows are made per arity (cat_rule(n)).
# split, chunk and unbind have several outputs: their VJPs get `gs`, the list of the outputs'
# gradients (None where an output got none), in place of `g`. Saved indices are validated
# int64 arrays, or the user's index tensor where the array shares its memory (S._arr turns
# either into the array; a saved tensor makes an in-place change of the index raise).

from . import _shape_ops as S  # noqa: E402 - the family's ops use this table too

_arity_rules: dict = {}


def _per_arity(name: str, n: int, piece) -> Rule:
    r = _arity_rules.get((name, n))
    if r is None:
        r = _arity_rules[(name, n)] = defvjp(
            name, *((lambda g, *saved, i=i: piece(i, g, *saved)) for i in range(n)))
    return r


def _cat_piece(i, g, dim, bounds):
    b = bounds[i]
    if b is None:  # a 1-d empty input that cat skipped
        return S._zeros((0,), g)
    return V.slice_dim(g, dim, b[0], b[1], None)


def cat_rule(n: int) -> Rule:
    return _per_arity("CatBackward0", n, _cat_piece)


def stack_rule(n: int) -> Rule:
    return _per_arity("StackBackward0", n, lambda i, g, dim: V.select(g, dim, i))


SPLIT = defvjp("SplitBackward0", lambda gs, *saved: S.split_backward(gs, *saved))
SPLIT_WITH_SIZES = defvjp("SplitWithSizesBackward0",
                          lambda gs, *saved: S.split_backward(gs, *saved))
UNBIND = defvjp("UnbindBackward0", lambda gs, dim, shape: S.unbind_backward(gs, dim, shape))
REPEAT = defvjp("RepeatBackward0", lambda g, shape, reps: S.repeat_backward(g, shape, reps))
FLIP = defvjp("FlipBackward0", lambda g, dims: S._flip(g, dims))
ROLL = defvjp("RollBackward0",
              lambda g, shifts, dims: S._roll(g, tuple(-s for s in shifts), dims))
TRIL = defvjp("TrilBackward0", lambda g, k: S._tri(g, k, True))
TRIU = defvjp("TriuBackward0", lambda g, k: S._tri(g, k, False))
DIAGONAL = defvjp("DiagonalBackward0",
                  lambda g, shape, offset, d1, d2: S.diagonal_backward(g, shape, offset, d1, d2))
DIAGONAL_BACKWARD = defvjp("DiagonalBackwardBackward0",
                           lambda g, offset, d1, d2: S._diagonal(g, offset, d1, d2))
CONSTANT_PAD = defvjp("ConstantPadNdBackward0",
                      lambda g, pad: S.constant_pad_nd(g, tuple(-p for p in pad)))
def _zeros_on(g, shape):
    from . import _creation

    return _creation.zeros(*shape, dtype=g.dtype, device=g.device)


def _masked_select_backward(g, shape, parts):
    from . import _inplace

    return _inplace.index_put(_zeros_on(g, shape), parts, g)  # engine sums to input's shape


def _nan_to_num_backward(g, x):
    if not x.dtype.is_floating_point:
        return g
    from . import _composite

    return O.where(_composite.isfinite(x), g, 0.0)  # replaced elements get no gradient


def _trace_backward(g, shape):
    from . import _creation

    n, m = shape
    return O.mul(_creation.eye(n, m, dtype=g.dtype, device=g.device), g)


def _median_all_backward(g, x, ans):
    """g shared evenly by the elements equal to the median (NaNs when it is NaN)."""
    from . import _composite

    hit = O.logical_or(O.eq(x, ans), O.logical_and(_composite.isnan(x), _composite.isnan(ans)))
    return O.div(O.where(hit, g, 0.0), O.sum(hit))


MEDIAN_ALL = defvjp("MedianBackward0", _median_all_backward)
MASKED_SELECT = defvjp("MaskedSelectBackward0", _masked_select_backward)
NAN_TO_NUM = defvjp("NanToNumBackward0", _nan_to_num_backward)
TRACE = defvjp("TraceBackward0", _trace_backward)
DIAG_COPY = defvjp("DiagonalBackward0_copy",
                   lambda g, shape, k: S.diagonal_backward(g, shape, k, 0, 1))
DIAG_EMBED = defvjp("DiagEmbedBackward0", lambda g, k: S._diagonal(g, k, 0, 1))


def _picked_backward(g, shape, d, idx):
    """The gradient of values picked along dim d at positions idx (sort, topk)."""
    return g if shape == () else S.gather_backward(g, shape, d, idx)


SORT = defvjp("SortBackward0", _picked_backward)
TOPK = defvjp("TopkBackward0", _picked_backward)
GATHER = defvjp("GatherBackward0",
                lambda g, shape, dim, idx: S.gather_backward(g, shape, dim, S._arr(idx)))
SCATTER = defvjp("ScatterBackward0",
                 lambda g, dim, idx, src_shape: S._scatter_value(g, dim, S._arr(idx), 0),
                 lambda g, dim, idx, src_shape: S.scatter_src_backward(g, dim, S._arr(idx),
                                                                       src_shape))
SCATTER_VALUE = defvjp("ScatterBackward1",
                       lambda g, dim, idx: S._scatter_value(g, dim, S._arr(idx), 0))
SCATTER_ADD = defvjp("ScatterAddBackward0",
                     lambda g, dim, idx, src_shape: g,
                     lambda g, dim, idx, src_shape: S.scatter_src_backward(g, dim, S._arr(idx),
                                                                           src_shape))
INDEX_SELECT = defvjp("IndexSelectBackward0",
                      lambda g, shape, dim, idx: S._index_add(S._zeros(shape, g), dim,
                                                              S._arr(idx, True), g, 1))
INDEX_ADD = defvjp("IndexAddBackward0",
                   lambda g, dim, idx, alpha, src_shape: g,
                   lambda g, dim, idx, alpha, src_shape: S.index_add_source_backward(
                       g, dim, S._arr(idx, True), alpha, src_shape))
INDEX_FILL = defvjp("IndexFillBackward0", lambda g, dim, idx: S._index_fill(g, dim, idx, 0))
INDEX_FILL_TENSOR = defvjp("IndexFillBackward1",
                           lambda g, dim, idx: S._index_fill(g, dim, idx, 0),
                           lambda g, dim, idx: S.index_fill_value_backward(g, dim, idx))
TAKE = defvjp("TakeBackward0", lambda g, shape, idx: S.take_backward(g, shape, S._arr(idx)))
TAKE_BACKWARD = defvjp("PutBackward0", lambda g, idx: S._take(g, idx))
PUT = defvjp("PutBackward0", lambda g, idx, accumulate, shape:
             S.put_backward_self(g, idx, accumulate), S.put_backward_source)
MASKED_FILL = defvjp("MaskedFillBackward0", lambda g, mask: S.masked_fill(g, mask, 0))
MASKED_FILL_TENSOR = defvjp("MaskedFillBackward1",
                            lambda g, mask: S.masked_fill(g, mask, 0),
                            lambda g, mask: O.sum(O.where(mask, g, 0.0)))

# ---- nn: linear, convolution, pooling, embedding, dropout (jitgrad/nn/_conv.py) ----
# The primitives live in jitgrad/nn/_conv.py, which imports this module: the VJPs reach them
# through _nnconv(), a late import. `p` is a convolution's ConvParams, `pool` an average
# pooling's windows. A convolution is bilinear in (input, weight), and so are its two backward
# primitives: the derivatives of each are the other two and the convolution itself. Pooling
# backwards and their own backwards are pairs of adjoint linear maps. dropout records a
# multiplication (MulBackward0), as torch does on the CPU.


def _nnconv():
    from .nn import _conv

    return _conv


def _addmm_fused(g, edges, a, b, bias_shape):
    """A linear layer's gradients straight from the arrays (no graph is being recorded):
    the products as _mm_b_like_b lays them out, without the tensor views and the checks
    that the forward already made, and a bias of one row's shape summed over g's rows (any
    other bias shape: g, which the engine sums down)."""
    gd, ad, bd = g._data, a._data, b._data
    if gd.ndim != 2 or gd.dtype is not ad.dtype or bd.dtype is not ad.dtype or \
            gd.__class__ is not ad.__class__ or bd.__class__ is not ad.__class__:
        return None
    K = O.backend(gd)
    gbias = ga = gb = None
    if edges[0][0] is not None:
        gbias = g
        M, N = gd.shape
        if (bias_shape == (N,) or bias_shape == (1, N)) and gd.dtype.kind == "f" and \
                gd.flags.c_contiguous:
            gbias = _wrap(K.sum_(gd.reshape(1, M, N), gd.dtype).reshape(bias_shape))
    if edges[1][0] is not None:
        ga = _wrap(K.matmul(gd, bd.T))
    if edges[2][0] is not None:
        gb = _wrap(K.matmul(gd.T, ad).T if bd.strides[0] < bd.strides[1] else
                   K.matmul(ad.T, gd))
    return [gbias, ga, gb]


ADDMM = defvjp("AddmmBackward0",
               lambda g, a, b, bias_shape: g,  # the engine sums g down to the bias's shape
               lambda g, a, b, bias_shape: O.matmul(g, V.t(b)),
               lambda g, a, b, bias_shape: _mm_b_like_b(g, a, b), fused=_addmm_fused)
CONVOLUTION = defvjp("ConvolutionBackward0",
                     lambda g, x, w, p: _nnconv().conv_backward_input(g, w, x.shape, p),
                     lambda g, x, w, p: _nnconv().conv_backward_weight(g, x, w.shape, p),
                     lambda g, x, w, p: _nnconv().conv_backward_bias(g))
CONVOLUTION_BACKWARD_INPUT = defvjp(  # gx = conv_backward_input(g, w)
    "ConvolutionBackwardBackward0",
    lambda gg, g, w, p: _nnconv().convolution(gg, w, None, p),
    lambda gg, g, w, p: _nnconv().conv_backward_weight(g, gg, w.shape, p))
CONVOLUTION_BACKWARD_WEIGHT = defvjp(  # gw = conv_backward_weight(g, x)
    "ConvolutionBackwardBackward0",
    lambda gg, g, x, p: _nnconv().convolution(x, gg, None, p),
    lambda gg, g, x, p: _nnconv().conv_backward_input(g, gg, x.shape, p))
CONVOLUTION_BACKWARD_BIAS = defvjp(  # gb = g summed over all axes but the channels
    "ConvolutionBackwardBackward0",
    lambda gg, shape: V.expand(V.reshape(gg, (1, shape[1]) + (1,) * (len(shape) - 2)), shape))
MAX_POOL2D = defvjp("MaxPool2DWithIndicesBackward0",
                    lambda g, shape, idx: _nnconv().max_pool2d_backward(g, shape, idx))
MAX_POOL2D_BACKWARD = defvjp(
    "MaxPool2DWithIndicesBackwardBackward0",
    lambda gg, out_shape, shape, idx: _nnconv().max_pool2d_gather(gg, out_shape, shape, idx))
MAX_POOL2D_GATHER = defvjp("GatherBackward0",
                           lambda g, shape, idx: _nnconv().max_pool2d_backward(g, shape, idx))
AVG_POOL2D = defvjp("AvgPool2DBackward0",
                    lambda g, shape, pool: _nnconv().window_avg_backward(g, shape, pool))
AVG_POOL2D_BACKWARD = defvjp("AvgPool2DBackwardBackward0",
                             lambda gg, pool: _nnconv().window_avg(gg, pool))
ADAPTIVE_AVG_POOL2D = defvjp("AdaptiveAvgPool2DBackward0",
                             lambda g, shape, pool: _nnconv().window_avg_backward(g, shape, pool))
ADAPTIVE_AVG_POOL2D_BACKWARD = defvjp("AdaptiveAvgPool2DBackwardBackward0",
                                      lambda gg, pool: _nnconv().window_avg(gg, pool))
EMBEDDING = defvjp("EmbeddingBackward0",
                   lambda g, idx, num, pad, freq: _nnconv().embedding_backward(g, idx, num, pad,
                                                                              freq))
EMBEDDING_BACKWARD = defvjp(
    "EmbeddingDenseBackwardBackward0",
    lambda gg, idx, num, pad, freq: _nnconv().embedding_double_backward(gg, idx, num, pad, freq))

# ---- nn: normalisation and losses (jitgrad/nn/_loss.py) ----
# Fused primitives: one forward kernel, one fused backward kernel (kernels/loss.py, norm.py).
# A VJP here runs the fused backward kernel, outside any graph; under create_graph=True it
# builds the same gradient from differentiable jitgrad ops instead (the `*_graph` and
# composite paths in jitgrad/nn/_loss.py and _norm.py), so double backward is exact. The
# VJPs live beside their launchers, which import this module: hence the late imports.
# Class weights (but those of probability targets), pos_weight and running statistics get
# no gradient: torch refuses them.


def _nn(module: str, fn: str, *args):
    found = []  # the function, looked up on first use

    def vjp(g, *saved):
        if not found:
            from importlib import import_module

            found.append(getattr(import_module(f"jitgrad.nn.{module}"), fn))
        return found[0](*args, g, *saved)
    return vjp


NLL_LOSS = defvjp("NllLossBackward0", _nn("_loss", "nll_grad"))
NLL_LOSS2D = defvjp("NllLoss2DBackward0", _nn("_loss", "nll_grad"))
# cross_entropy with class indices: log_softmax and nll_loss fused; torch's result is the
# nll node (or, with label_smoothing, the add of the two terms)
CROSS_ENTROPY = defvjp("NllLossBackward0", _nn("_loss", "cross_entropy_grad"))
CROSS_ENTROPY2D = defvjp("NllLoss2DBackward0", _nn("_loss", "cross_entropy_grad"))
CROSS_ENTROPY_SMOOTH = defvjp("AddBackward0", _nn("_loss", "cross_entropy_grad"))
# cross_entropy with class probabilities: torch's last op is the mean's division or a negation
_CE_PROB_VJPS = tuple(_nn("_loss", f"cross_entropy_prob_grad_{w}")
                      for w in ("input", "target", "weight"))
CROSS_ENTROPY_PROB_MEAN = defvjp("DivBackward1", *_CE_PROB_VJPS)
CROSS_ENTROPY_PROB = defvjp("NegBackward0", *_CE_PROB_VJPS)
MSE_LOSS = defvjp("MseLossBackward0", _nn("_loss", "pointwise_grad_input"),
                  _nn("_loss", "pointwise_grad_target"))
SMOOTH_L1_LOSS = defvjp("SmoothL1LossBackward0", _nn("_loss", "pointwise_grad_input"),
                        _nn("_loss", "pointwise_grad_target"))
BINARY_CROSS_ENTROPY = defvjp("BinaryCrossEntropyBackward0",
                              _nn("_loss", "pointwise_grad_input"),
                              _nn("_loss", "pointwise_grad_target"))
BCE_WITH_LOGITS = defvjp("BinaryCrossEntropyWithLogitsBackward0",
                         _nn("_loss", "pointwise_grad_input"),
                         _nn("_loss", "pointwise_grad_target"))
LAYER_NORM = defvjp("NativeLayerNormBackward0", *(_nn("_norm", "layer_norm_grad", i)
                                                  for i in range(3)))
BATCH_NORM = defvjp("NativeBatchNormBackward0", *(_nn("_norm", "batch_norm_grad", i)
                                                  for i in range(3)))

# ---- in-place operations (jitgrad/_inplace.py) ----
COPY = defvjp("CopyBackwards", lambda g: O.mul(g, 0), lambda g: g)
FILL = defvjp("FillBackward0", lambda g: O.mul(g, 0))
FILL_TENSOR = defvjp("FillBackward1", lambda g: O.mul(g, 0), lambda g: O.sum(g))
ZERO = defvjp("ZeroBackward0", lambda g: O.mul(g, 0))
UNIFORM = defvjp("UniformBackward0", lambda g: O.mul(g, 0))
NORMAL = defvjp("NormalBackward0", lambda g: O.mul(g, 0))


def _put_self(g, parts):
    from . import _inplace

    return O.mul(g, _inplace.mask_of(g._data.shape, parts, g._data.dtype, like=g))


COPY_SLICES = defvjp("CopySlices", _put_self, lambda g, parts: V.getitem(g, parts))
INDEX_PUT = defvjp("IndexPutBackward0", _put_self, lambda g, parts: V.getitem(g, parts))
INDEX_PUT_ACCUMULATE = defvjp("IndexPutBackward0", lambda g, parts: g,
                              lambda g, parts: V.index(g, parts))
