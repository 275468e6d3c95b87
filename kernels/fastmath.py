"""Vectorizable float32 transcendentals for the elementwise kernels.

Numba compiles ``math.exp``, ``math.log`` and ``math.tanh`` to calls into libm (the PyPI
llvmlite has no SVML), and a call keeps a loop from vectorizing: tanh over 10M float32 runs
about 30 times slower than numpy's. The functions here are straight-line float32 code (range
reduction with integer bit operations, then a polynomial; special cases folded in with
selects) that LLVM vectorizes inside the kernels' loops.

Each function covers the whole float32 range: overflow and underflow, subnormal inputs and
results, +-inf, nan and -0. ``tests/test_fastmath.py`` measures the error in ulp against
float64 references, on dense sweeps, random bit patterns and special values, and asserts the
bounds below. The maxima beside them were measured over every 7th float32 bit pattern (614M
inputs), without and with FMA: polynomials are evaluated with ``llvm.fmuladd``, fused where
the CPU has FMA (25% faster here) and plain elsewhere, and the bounds hold both ways.

=========  =====  ===========  =========================================================
function   bound  max (FMA)    method
=========  =====  ===========  =========================================================
exp        1      0.95 (0.98)  k = rint(x / ln2), Cody-Waite r = x - k ln2, expm1 polynomial
expm1      1.5    1.43 (1.30)  same reduction, 2**k (expm1(r) + 1 - 2**-k) as musl sums it
exp2       1.5    1.22 (0.94)  k = rint(x), r = x - k exact, polynomial for 2**r - 1
log        1      0.82 (0.82)  x = m 2**k with m in [sqrt(1/2), sqrt(2)), musl's logf kernel
log1p      1      0.83 (0.83)  musl's log1pf: log(1 + x) corrected for 1 + x's rounding
log2       1      0.86 (0.86)  musl's log2f (the kernel's result split into hi and lo parts)
log10      1      0.83 (0.83)  musl's log10f
tanh       2      1.50 (1.50)  odd polynomial below 0.625, expm1(2x) / (expm1(2x) + 2) above
sigmoid    2.5    2.36 (2.36)  exp(-|x|) = 2**k (1 + em): one quotient of once-rounded terms
erf        1.5    1.43 (1.19)  x + x P(x**2) below 1, 1 - exp(-x**2 + S(x)) above
=========  =====  ===========  =========================================================

Polynomials were fitted (near-minimax, relative error) against mpmath; their own error is
below 0.01 ulp, so the error comes from float32 rounding. float64 kernels keep libm.

The bit operations live in small LLVM intrinsics (``_pow2``, ``_split``, ``_hi12``, and
``_fma`` for fmuladd): Numba's own integer arithmetic widens int32 to int64, which would
halve the vector width.

Every dispatcher and intrinsic here gets a UUID derived from this file's contents: Numba
pickles the kernels' closures, and with them these objects, into the key of its disk cache,
so the key is stable between processes and changes when this file does.
"""

from __future__ import annotations

import hashlib
import pathlib

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

_VERSION = hashlib.sha256(pathlib.Path(__file__).read_bytes()).hexdigest()[:16]
_I32 = ir.IntType(32)
_F32 = ir.FloatType()

f32 = np.float32


def _stable(obj, name: str):
    obj._set_uuid(f"jitgrad.kernels.fastmath:{name}:{_VERSION}")
    return obj


def _inline(fn):
    return _stable(njit(inline="always")(fn), fn.__name__)


# --------------------------------------------------------------------------- bit intrinsics

def _i32(v: int):
    return ir.Constant(_I32, v)


@intrinsic
def _pow2_impl(typingctx, k):
    sig = types.float32(types.float32)

    def codegen(context, builder, signature, args):
        e = builder.add(builder.fptosi(args[0], _I32), _i32(127))
        return builder.bitcast(builder.shl(e, _i32(23)), _F32)
    return sig, codegen


@intrinsic
def _split_impl(typingctx, x):
    sig = types.UniTuple(types.float32, 2)(types.float32)

    def codegen(context, builder, signature, args):
        # musl's reduction: adding 1 - sqrt(1/2) to the bits moves the exponent's step to
        # m = sqrt(1/2), so that m lands in [sqrt(1/2), sqrt(2)).
        i = builder.add(builder.bitcast(args[0], _I32), _i32(0x3F800000 - 0x3F3504F3))
        k = builder.sub(builder.ashr(i, _i32(23)), _i32(127))
        m = builder.add(builder.and_(i, _i32(0x007FFFFF)), _i32(0x3F3504F3))
        f = builder.fsub(builder.bitcast(m, _F32), ir.Constant(_F32, 1.0))
        return context.make_tuple(builder, signature.return_type,
                                  (f, builder.sitofp(k, _F32)))
    return sig, codegen


@intrinsic
def _hi12_impl(typingctx, x):
    sig = types.float32(types.float32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(builder.and_(builder.bitcast(args[0], _I32), _i32(-4096)), _F32)
    return sig, codegen


@intrinsic
def _fma_impl(typingctx, a, b, c):
    sig = types.float32(types.float32, types.float32, types.float32)

    def codegen(context, builder, signature, args):
        fmuladd = builder.module.declare_intrinsic("llvm.fmuladd", [_F32],
                                                   ir.FunctionType(_F32, [_F32] * 3))
        return builder.call(fmuladd, args)
    return sig, codegen


_fma = _stable(_fma_impl, "fma")  # a * b + c, fused where the CPU has FMA
_pow2 = _stable(_pow2_impl, "pow2")  # 2**k for an integral float32 k in [-126, 127]
_split = _stable(_split_impl, "split")  # (m - 1, k) for a positive normal x = m * 2**k
_hi12 = _stable(_hi12_impl, "hi12")  # x with the low 12 bits of its mantissa cleared


# --------------------------------------------------------------------------- constants

_LOG2E = f32(1.4426950408889634)
_LN2_HI = f32(0.693145751953125)  # 15 bits: k * _LN2_HI is exact for |k| < 512
_LN2_LO = f32(1.4286067653301870e-06)
_FLT_MIN = f32(1.1754943508222875e-38)
_INF = f32(np.inf)
_NAN = f32(np.nan)
_ZERO = f32(0.0)
_HALF = f32(0.5)
_ONE = f32(1.0)
_TWO = f32(2.0)

# expm1(r) = r + r**2 (1/2 + r P(r)) for |r| <= ln2 / 2
_P0, _P1, _P2, _P3, _P4 = (f32(0.1666666567325592), f32(0.041666481643915176),
                           f32(0.0083334194496274), f32(0.001393327722325921),
                           f32(0.00019824114860966802))
# 2**r = 1 + r Q(r) for |r| <= 1/2
_Q0, _Q1, _Q2, _Q3, _Q4, _Q5 = (f32(0.6931471824645996), f32(0.24022647738456726),
                                f32(0.055503323674201965), f32(0.00961843691766262),
                                f32(0.0013398875016719103), f32(0.00015353360504377633))
# musl's logf kernel
_LG1, _LG2, _LG3, _LG4 = (f32(0.66666662693), f32(0.40000972152), f32(0.28498786688),
                          f32(0.24279078841))
_LOG_LN2_HI = f32(6.9313812256e-01)
_LOG_LN2_LO = f32(9.0580006145e-06)
_IVLN2_HI = f32(1.4428710938e+00)
_IVLN2_LO = f32(-1.7605285393e-04)
_IVLN10_HI = f32(4.3432617188e-01)
_IVLN10_LO = f32(-3.1689971365e-05)
_LOG10_2_HI = f32(3.0102920532e-01)
_LOG10_2_LO = f32(7.9034151668e-07)
# tanh(x) = x + x**3 T(x**2) for |x| < 0.625
_T0, _T1, _T2, _T3, _T4 = (f32(-0.3333328068256378), f32(0.13331441581249237),
                           f32(-0.05373971164226532), f32(0.020639078691601753),
                           f32(-0.005704978480935097))
# erf(x) = x + x E(x**2) for |x| < 1 (E(0) = 2 / sqrt(pi) - 1)
_E0, _E1, _E2, _E3, _E4, _E5, _E6 = (
    f32(0.12837916709551257), f32(-0.3761262595653534), f32(0.11283600330352783),
    f32(-0.026854444295167923), f32(0.005189535208046436), f32(-0.0008020841050893068),
    f32(7.889119297033176e-05))
# log(erfc(x)) = -x**2 + S(t), t = (x - 2.5) / 1.5, for 1 <= x <= 4
_S0, _S1, _S2, _S3, _S4, _S5, _S6, _S7, _S8 = (
    f32(-1.556815266609192), f32(-0.5290210247039795), f32(0.1262393742799759),
    f32(-0.03664739429950714), f32(0.010960725136101246), f32(-0.0031906897202134132),
    f32(0.0008822599775157869), f32(-0.0002272721758345142), f32(4.100161459064111e-05))


# --------------------------------------------------------------------------- kernels

@_inline
def _expm1_poly(r):
    p = _fma(_fma(_fma(_fma(_P4, r, _P3), r, _P2), r, _P1), r, _P0)
    return _fma(r * r, _fma(r, p, _HALF), r)


@_inline
def _exp_reduce(x):
    """(expm1(r), k) with x = k ln2 + r, |r| <= ln2 / 2, for |x| < 2**22."""
    k = np.rint(x * _LOG2E)
    r = _fma(-k, _LN2_LO, x - k * _LN2_HI)
    return _expm1_poly(r), k


@_inline
def _scale(p, k):
    """p * 2**k for an integral k in [-252, 254], rounded once."""
    k1 = np.rint(k * _HALF)
    return p * _pow2(k1) * _pow2(k - k1)


@_inline
def _log_kernel(f, k, c):
    """log((1 + f) 2**k) + c for f in [sqrt(1/2) - 1, sqrt(2) - 1) (musl's logf)."""
    s = f / (_TWO + f)
    z = s * s
    w = z * z
    t1 = w * _fma(w, _LG4, _LG2)
    t2 = z * _fma(w, _LG3, _LG1)
    hfsq = _HALF * f * f
    r = _fma(s, hfsq + t2 + t1, _fma(k, _LOG_LN2_LO, c)) - hfsq + f
    return _fma(k, _LOG_LN2_HI, r)


@_inline
def _log_parts(f):
    """(hi, lo) with hi + lo = log(1 + f) and hi holding 12 bits, for log2 and log10."""
    s = f / (_TWO + f)
    z = s * s
    w = z * z
    t1 = w * _fma(w, _LG4, _LG2)
    t2 = z * _fma(w, _LG3, _LG1)
    hfsq = _HALF * f * f
    hi = _hi12(f - hfsq)
    lo = _fma(s, hfsq + t2 + t1, f - hi - hfsq)
    return hi, lo


@_inline
def _positive_split(x):
    """(f, k) with x = (1 + f) 2**k for a positive finite x, subnormals included."""
    tiny = x < _FLT_MIN
    f, k = _split(x * f32(33554432.0) if tiny else x)  # 2**25 makes a subnormal normal
    return f, (k - f32(25.0) if tiny else k)


@_inline
def _log_special(x, res):
    """log-family results at x <= 0, +inf and nan; `res` elsewhere."""
    if x > _ZERO:
        return res if x < _INF else x
    if x == _ZERO:
        return -_INF
    return _NAN if x < _ZERO else x


@_inline
def exp(x):
    xc = min(max(x, f32(-104.0)), f32(89.0))  # beyond these, exp is 0 or inf
    em, k = _exp_reduce(xc)
    res = _scale(_ONE + em, k)
    return res if x == x else x


@_inline
def expm1(x):
    xc = min(max(x, f32(-30.0)), f32(89.0))  # below -30, expm1 rounds to -1
    em, k = _exp_reduce(xc)
    # expm1(x) = 2**k (em + 1 - 2**-k), summed in the order that rounds least (musl)
    kk = min(k, f32(64.0))
    t = _pow2(-kk)
    y = (_ONE - t) + em if k < f32(23.0) else (em - t) + _ONE
    res = y * _pow2(kk) * _pow2(k - kk)
    return res if x == x and x != _ZERO else x  # keeps -0


@_inline
def exp2(x):
    xc = min(max(x, f32(-151.0)), f32(129.0))
    k = np.rint(xc)
    r = xc - k  # exact
    q = _fma(_fma(_fma(_fma(_fma(_Q5, r, _Q4), r, _Q3), r, _Q2), r, _Q1), r, _Q0)
    res = _scale(_fma(r, q, _ONE), k)
    return res if x == x else x


@_inline
def log(x):
    f, k = _positive_split(x)
    return _log_special(x, _log_kernel(f, k, _ZERO))


@_inline
def log1p(x):
    u = _ONE + x
    fu, k = _split(u)
    # 1 + x was rounded: c = log(1 + x) - log(u), to first order
    c = (_ONE - (u - x) if k >= _TWO else x - (u - _ONE)) / u
    c = c if k < f32(25.0) else _ZERO
    near = k == _ZERO  # u in [sqrt(1/2), sqrt(2)): log1p(x) from x itself
    res = _log_kernel(x if near else fu, k, _ZERO if near else c)
    if x > f32(-1.0):
        if abs(x) < f32(5.9604645e-08):  # 2**-24: log1p(x) rounds to x (and keeps -0)
            return x
        return res if x < _INF else x
    if x == f32(-1.0):
        return -_INF
    return _NAN if x < f32(-1.0) else x


@_inline
def log2(x):
    f, k = _positive_split(x)
    hi, lo = _log_parts(f)
    res = _fma(hi, _IVLN2_HI, _fma(lo, _IVLN2_HI, (lo + hi) * _IVLN2_LO)) + k
    return _log_special(x, res)


@_inline
def log10(x):
    f, k = _positive_split(x)
    hi, lo = _log_parts(f)
    res = _fma(lo + hi, _IVLN10_LO, k * _LOG10_2_LO)
    res = _fma(k, _LOG10_2_HI, _fma(hi, _IVLN10_HI, _fma(lo, _IVLN10_HI, res)))
    return _log_special(x, res)


@_inline
def tanh(x):
    a = abs(x)
    z = x * x
    small = _fma(x, z * _fma(_fma(_fma(_fma(_T4, z, _T3), z, _T2), z, _T1), z, _T0), x)
    # tanh(a) = expm1(2a) / (expm1(2a) + 2); past a = 9, tanh rounds to 1
    em, k = _exp_reduce(_TWO * min(a, f32(9.0)))
    s = _pow2(k)
    e = _fma(s, em, s - _ONE)
    large = e / (e + _TWO)
    large = large if x >= _ZERO else -large
    res = small if a < f32(0.625) else large
    return res if a >= f32(2.44140625e-04) else x  # below 2**-12 tanh(x) rounds to x


@_inline
def sigmoid(x):
    # With e = exp(-|x|) = 2**k (1 + em): 1 / (1 + e) for x >= 0 and e / (1 + e) for x < 0,
    # each written as one quotient of terms that round once, so nothing cancels.
    em, k = _exp_reduce(max(-abs(x), f32(-104.0)))
    kk = max(k, f32(-64.0))  # past |x| = 44, 2**-k would overflow, and e / (1 + e) = e
    s = _pow2(kk)
    pos = x >= _ZERO
    res = ((_ONE if pos else _ONE + em)
           / (_fma(s, em, _ONE + s) if pos else (_pow2(-kk) + _ONE) + em))
    res = res if pos or k >= f32(-64.0) else _scale(_ONE + em, k)
    return res if x == x else x


@_inline
def erf(x):
    a = abs(x)
    z = x * x
    e = _fma(_fma(_fma(_fma(_fma(_fma(_E6, z, _E5), z, _E4), z, _E3), z, _E2), z, _E1), z, _E0)
    small = _fma(x, e, x)
    # erf(a) = 1 - erfc(a), erfc(a) = exp(-a**2 + S(a)); past a = 4, erf rounds to 1
    b = min(a, f32(4.0))
    t = (b - f32(2.5)) * f32(0.6666666865348816)
    s = _fma(_fma(_fma(_fma(_S8, t, _S7), t, _S6), t, _S5), t, _S4)
    s = _fma(_fma(_fma(_fma(s, t, _S3), t, _S2), t, _S1), t, _S0)
    em, k = _exp_reduce(_fma(-b, b, s))
    large = _ONE - _scale(_ONE + em, k)
    large = large if x >= _ZERO else -large
    res = small if a < _ONE else large
    return res if x == x else x
