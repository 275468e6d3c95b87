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

from . import _ops as O
from . import _views as V
from .autograd.graph import Rule


def defvjp(name: str, *vjps) -> Rule:
    return Rule(name, vjps)


# --------------------------------------------------------------------------- arithmetic

ADD = defvjp("AddBackward0", lambda g: g, lambda g: g)
SUB = defvjp("SubBackward0", lambda g: g, lambda g: O.neg(g))
RSUB = defvjp("RsubBackward1", lambda g: O.neg(g))
MUL = defvjp("MulBackward0",
             lambda g, a, b: O.mul(g, b),
             lambda g, a, b: O.mul(g, a))
DIV = defvjp("DivBackward0",
             lambda g, a, b: O.div(g, b),
             lambda g, a, b: O.neg(O.div(O.mul(g, a), O.mul(b, b))))
NEG = defvjp("NegBackward0", lambda g: O.neg(g))
RECIPROCAL = defvjp("ReciprocalBackward0",
                    lambda g, ans: O.neg(O.mul(g, O.mul(ans, ans))))


def _pow_scalar(g, x, p):
    if p == 0:
        return O.mul(g, 0)
    return O.mul(g, O.mul(O.pow(x, p - 1), p))


def _pow_exponent(g, a, b, ans):
    # d/db a**b = a**b * log(a); torch defines it as 0 where a == 0 and b >= 0.
    r = O.mul(g, O.mul(ans, O.log(a)))
    return O.where(O.logical_and(O.eq(a, 0), O.ge(b, 0)), O.mul(r, 0), r)


POW_SCALAR = defvjp("PowBackward0", _pow_scalar)
POW_TENSOR = defvjp("PowBackward1",
                    lambda g, a, b, ans: O.mul(g, O.mul(b, O.pow(a, O.sub(b, 1)))),
                    _pow_exponent)


def _pow_base(g, s, ans):
    # d/dx s**x = s**x * log(s) for a number s
    log_s = math.log(s) if s > 0 else (float("-inf") if s == 0 else float("nan"))
    return O.mul(g, O.mul(ans, log_s))


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
SIGN = defvjp("SignBackward0", lambda g: O.mul(g, 0))
TANH = defvjp("TanhBackward0", lambda g, ans: O.tanh_backward(g, ans))
SIGMOID = defvjp("SigmoidBackward0", lambda g, ans: O.sigmoid_backward(g, ans))
RELU = defvjp("ReluBackward0", lambda g, ans: O.relu_backward(g, ans))
CLAMP = defvjp("ClampBackward1",
               lambda g, x, lo, hi: O.where(_in_range(x, lo, hi), g, 0.0))


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
MEAN = defvjp("MeanBackward0", lambda g, shape, n: V.expand(O.div(g, n), shape))
MEAN_DIM = defvjp("MeanBackward1",
                  lambda g, shape, dims, keepdim, n: V.expand(
                      _unsqueeze_dims(O.div(g, n), dims, keepdim), shape))


def _evenly(g, x, ans):
    # The gradient of max()/min() over all elements is shared among the tied extremes.
    mask = O.eq(x, ans)
    return O.where(mask, O.div(g, O.sum(mask)), 0.0)


MAX_ALL = defvjp("MaxBackward1", _evenly)
MIN_ALL = defvjp("MinBackward1", _evenly)
MAX_DIM = defvjp("MaxBackward0",
                 lambda g, shape, dim, idx, keepdim: O.scatter_dim(g, shape, dim, idx, keepdim))
MIN_DIM = defvjp("MinBackward0",
                 lambda g, shape, dim, idx, keepdim: O.scatter_dim(g, shape, dim, idx, keepdim))
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


def _mm_b(g, a, b):
    if a.ndim == 1 and b.ndim == 1:
        return O.mul(g, a)
    if a.ndim == 1:
        return O.mul(V.unsqueeze(a, -1), V.unsqueeze(g, -2))
    if b.ndim == 1:
        return V.squeeze(O.matmul(V.transpose(a, -1, -2), V.unsqueeze(g, -1)), -1)
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
ALIAS = defvjp("AliasBackward0", lambda g: g)

# --------------------------------------------------------------------------- views

VIEW = defvjp("ViewBackward0", lambda g, shape: V.reshape(g, shape))
UNSAFE_VIEW = defvjp("UnsafeViewBackward0", lambda g, shape: V.reshape(g, shape))
TRANSPOSE = defvjp("TransposeBackward0", lambda g, d0, d1: V.transpose(g, d0, d1))
T = defvjp("TBackward0", lambda g: V.t(g))
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

# ---- reductions and softmax family (jitgrad/_reductions.py) ----

# ---- shape and data movement family (jitgrad/_shape_ops.py) ----

# ---- nn: linear, convolution, pooling, embedding, dropout (jitgrad/nn/_conv.py) ----

# ---- nn: normalisation and losses (jitgrad/nn/_loss.py) ----

# ---- in-place operations (jitgrad/_inplace.py) ----
COPY = defvjp("CopyBackwards", lambda g: O.mul(g, 0), lambda g: g)
FILL = defvjp("FillBackward0", lambda g: O.mul(g, 0))
FILL_TENSOR = defvjp("FillBackward1", lambda g: O.mul(g, 0), lambda g: O.sum(g))
ZERO = defvjp("ZeroBackward0", lambda g: O.mul(g, 0))


def _put_self(g, parts):
    from . import _inplace

    return O.mul(g, _inplace.mask_of(g._data.shape, parts, g._data.dtype))


COPY_SLICES = defvjp("CopySlices", _put_self, lambda g, parts: V.getitem(g, parts))
INDEX_PUT = defvjp("IndexPutBackward0", _put_self, lambda g, parts: V.getitem(g, parts))
