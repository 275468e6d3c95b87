"""Op-table rows of the pointwise family (jitgrad/_pointwise.py), plus rows that pin down
``pow`` for every combination of tensor and number, base and exponent. ``tests/test_ops.py``
runs each row: forward against numpy, gradients against central differences and against
torch, double backward.

Domains: positive inputs for the log family and rsqrt, log1p above -1, tan away from its
poles, floor/ceil/round/trunc/fmod/remainder away from their jumps, hardtanh/leaky_relu/elu/
relu6 away from their kinks, denominators away from 0."""

from __future__ import annotations

import math

import numpy as np

from op_table import (ALL, AWAY, BOOL, CLAMPED, DENOM, F32, F64, FLOATS, GRID, I64, NUMERIC,
                      POSITIVE, UNARY, OpRow, Sampler, _nograd, fixed, floating)

R = OpRow
BINARY3 = [((2, 3), (2, 3)), ((2, 1, 3), (4, 1)), ((), (3,))]
TERNARY = [((2, 3), (2, 3), (2, 3)), ((2, 1, 3), (4, 1), (3,)), ((), (3,), ())]


def _f64(fn):
    """A numpy reference on float64 copies of its inputs (bools and ints included); 1 / 0 is
    inf without a warning."""
    def ref(*xs):
        with np.errstate(divide="ignore"):
            return fn(*(np.asarray(x, dtype=np.float64) for x in xs))
    return ref


def _by_kind(floats, ints):
    """One sampler for float inputs, another for integer and bool inputs."""
    return lambda rng, shape, dt: (floats if dt.kind == "f" else ints)(rng, shape, dt)


def _signed(lo: float, hi: float):
    """Floats with |x| uniform in [lo, hi] and a random sign."""
    def draw(rng, shape, dt):
        x = rng.uniform(lo, hi, shape) * rng.choice([-1.0, 1.0], shape)
        return np.asarray(x, dtype=dt)
    return draw


def _near(points, spread: float):
    """Floats within `spread` of randomly chosen `points`."""
    def draw(rng, shape, dt):
        x = rng.choice(np.asarray(points, dtype=np.float64), shape)
        return np.asarray(x + rng.uniform(-spread, spread, shape), dtype=dt)
    return draw


_erf = np.vectorize(math.erf, otypes=[np.float64])
_sigmoid = _f64(lambda x: 1 / (1 + np.exp(-x)))
# Away from the jumps of floor, ceil, trunc and round (integers and half-integers).
STEPS = _by_kind(Sampler(-3.0, 3.0, avoid=np.arange(-6, 7) / 2), GRID)
# Decimal places: x * 100 (or x / 10) away from half-integers, where rounding jumps.
CENTS = _near(np.arange(-300, 301) / 100, 0.003)
TENS = _near(np.arange(-30, 31) * 10.0, 3.0)
# Remainders: |quotient| in [2.2, 2.8] (nonzero, away from integers), every sign pairing.
DIVIDENDS = _by_kind(_signed(2.3, 2.7), Sampler(-5, 5))
DIVISORS = _by_kind(_signed(0.95, 1.05), Sampler(-3, 3, away=0.5))
QUOTIENT = _by_kind(Sampler(-2.9, 2.9, away=0.15, avoid=(-1.5, 1.5)), Sampler(-5, 5))
ACT = Sampler(-4.0, 4.0)  # smooth activations: both tails and the bend
INSIDE_UNIT = Sampler(-0.85, 0.85)  # asin, acos, atanh: away from the poles of the slopes at +-1


def _square_dtype(dts: tuple):
    return I64 if dts[0] == BOOL else dts[0]


def _softplus(x, beta=1.0, threshold=20.0):
    return np.where(x * beta > threshold, x, np.log1p(np.exp(x * beta)) / beta)


def _gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def _lerp(a, b, w):
    return np.where(np.abs(w) < 0.5, a + w * (b - a), b - (b - a) * (1 - w))


def _remainder(a, b):
    return a - b * np.floor(a / b) if a.dtype.kind == "f" else np.remainder(a, b)


def _div_trunc(a, b):
    if a.dtype.kind == "f":
        return np.trunc(a / b)
    q = np.abs(a) // np.abs(b)  # C's integer division: the quotient's magnitude floored
    return np.where((a < 0) != (b < 0), -q, q).astype(np.result_type(a, b))


ROWS: list[OpRow] = [
    # ------------------------------------------------------------------ unary math
    R("sin", lambda m, x: m.sin(x), _f64(np.sin), UNARY, dtypes=ALL, out_dtype=floating),
    R("cos", lambda m, x: x.cos(), _f64(np.cos), UNARY, dtypes=NUMERIC, out_dtype=floating),
    R("tan", lambda m, x: m.tan(x), np.tan, UNARY, Sampler(-1.2, 1.2), dtypes=NUMERIC,
      out_dtype=floating),
    R("asin", lambda m, x: m.asin(x), np.arcsin, UNARY, INSIDE_UNIT),
    R("arccos_method", lambda m, x: x.arccos(), np.arccos, UNARY, INSIDE_UNIT),
    R("atan", lambda m, x: m.atan(x), _f64(np.arctan), UNARY, dtypes=ALL, out_dtype=floating),
    R("sinh", lambda m, x: x.sinh(), _f64(np.sinh), UNARY, dtypes=NUMERIC, out_dtype=floating),
    R("cosh", lambda m, x: m.cosh(x), _f64(np.cosh), UNARY, dtypes=NUMERIC,
      out_dtype=floating),
    R("asinh", lambda m, x: m.arcsinh(x), _f64(np.arcsinh), UNARY, dtypes=NUMERIC,
      out_dtype=floating),
    R("acosh", lambda m, x: x.acosh(), np.arccosh, UNARY, Sampler(1.2, 4.0)),
    R("atanh", lambda m, x: m.atanh(x), np.arctanh, UNARY, INSIDE_UNIT),
    R("asin_int", lambda m, x: m.asin(x), _f64(np.arcsin), UNARY, Sampler(-1, 1),
      dtypes=(I64, BOOL), out_dtype=floating, **_nograd()),
    R("log1p", lambda m, x: x.log1p(), np.log1p, UNARY, Sampler(-0.6, 3.0), dtypes=NUMERIC,
      out_dtype=floating),
    R("expm1", lambda m, x: m.expm1(x), np.expm1, UNARY, dtypes=NUMERIC, out_dtype=floating),
    R("log2", lambda m, x: m.log2(x), np.log2, UNARY, POSITIVE, dtypes=NUMERIC,
      out_dtype=floating),
    R("log10", lambda m, x: x.log10(), np.log10, UNARY, POSITIVE, dtypes=NUMERIC,
      out_dtype=floating),
    R("exp2", lambda m, x: x.exp2(), _f64(np.exp2), UNARY, dtypes=ALL, out_dtype=floating),
    R("rsqrt", lambda m, x: m.rsqrt(x), lambda x: 1 / np.sqrt(x), UNARY, POSITIVE,
      dtypes=NUMERIC, out_dtype=floating),
    R("erf", lambda m, x: x.erf(), _f64(_erf), UNARY, Sampler(-2.5, 2.5), dtypes=NUMERIC,
      out_dtype=floating),  # both of float32 erf's branches (|x| < 1 and above)
    R("square", lambda m, x: m.square(x), lambda x: np.square(x.astype(_square_dtype(
        (x.dtype,)))), UNARY, dtypes=ALL, out_dtype=_square_dtype),
    R("sign_bool", lambda m, x: x.sign(), lambda x: x, UNARY, dtypes=(BOOL,),
      out_dtype=fixed(BOOL), **_nograd()),
    R("reciprocal_bool", lambda m, x: m.reciprocal(x), _f64(lambda x: 1 / x), UNARY,
      dtypes=(BOOL,), out_dtype=fixed(F32), **_nograd()),

    # ------------------------------------------------------------------ rounding
    R("floor", lambda m, x: m.floor(x), np.floor, UNARY, STEPS, dtypes=NUMERIC),
    R("ceil", lambda m, x: x.ceil(), np.ceil, UNARY, STEPS, dtypes=NUMERIC),
    R("trunc", lambda m, x: m.trunc(x), np.trunc, UNARY, STEPS, dtypes=NUMERIC),
    R("fix", lambda m, x: x.fix(), np.trunc, UNARY, STEPS),
    R("round", lambda m, x: m.round(x), np.round, UNARY, STEPS, dtypes=NUMERIC),
    R("round_half_even", lambda m, x: x.round(), np.round, UNARY,
      _near([-2.5, -0.5, 0.5, 1.5], 0.0), numeric=False, gradgrad=False),  # ties, on the jumps
    R("round_decimals", lambda m, x: m.round(x, decimals=2), lambda x: np.round(x, 2), UNARY,
      CENTS),
    R("round_decimals_negative", lambda m, x: x.round(decimals=-1), lambda x: np.round(x, -1),
      UNARY, TENS),

    # ------------------------------------------------------------------ remainders
    R("fmod", lambda m, x, y: m.fmod(x, y), np.fmod, BINARY3, (DIVIDENDS, DIVISORS),
      dtypes=NUMERIC),
    R("fmod_scalar", lambda m, x: x.fmod(1.5), lambda x: np.fmod(x, 1.5), UNARY, QUOTIENT,
      dtypes=NUMERIC, out_dtype=floating),
    R("fmod_int_scalar", lambda m, x: m.fmod(x, -3), lambda x: np.fmod(x, -3), UNARY,
      Sampler(-7, 7), dtypes=(I64, BOOL), out_dtype=fixed(I64), **_nograd()),
    R("remainder", lambda m, x, y: m.remainder(x, y), _remainder, BINARY3,
      (DIVIDENDS, DIVISORS), dtypes=NUMERIC),
    R("remainder_scalar", lambda m, x: x.remainder(-1.5), lambda x: _remainder(x, -1.5),
      UNARY, QUOTIENT, dtypes=NUMERIC, out_dtype=floating),
    R("remainder_int_scalar", lambda m, x: m.remainder(x, 3), lambda x: np.remainder(x, 3),
      UNARY, Sampler(-7, 7), dtypes=(I64,), **_nograd()),
    R("remainder_scalar_self", lambda m, x: m.remainder(2.5, x),
      lambda x: _remainder(np.float64(2.5), x), UNARY, DIVISORS, dtypes=NUMERIC,
      out_dtype=floating, **_nograd()),  # torch has no derivative for it

    # ------------------------------------------------------------------ rounded division
    R("div_floor", lambda m, x, y: m.div(x, y, rounding_mode="floor"), np.floor_divide,
      BINARY3, (DIVIDENDS, DIVISORS), dtypes=NUMERIC),
    R("div_trunc", lambda m, x, y: x.div(y, rounding_mode="trunc"), _div_trunc, BINARY3,
      (DIVIDENDS, DIVISORS), dtypes=NUMERIC),
    R("div_floor_scalar", lambda m, x: m.div(x, -1.5, rounding_mode="floor"),
      lambda x: np.floor_divide(x, -1.5), UNARY, QUOTIENT, dtypes=NUMERIC, out_dtype=floating),
    R("div_trunc_int_scalar", lambda m, x: m.div(x, -3, rounding_mode="trunc"),
      lambda x: _div_trunc(x, np.int64(-3)), UNARY, Sampler(-7, 7), dtypes=(I64,),
      **_nograd()),
    R("floordiv_operator", lambda m, x, y: x // y, np.floor_divide, BINARY3,
      (DIVIDENDS, DIVISORS), dtypes=NUMERIC, **_nograd()),  # torch has no derivative for it
    R("rfloordiv_operator", lambda m, x: 2.5 // x, lambda x: np.floor_divide(2.5, x), UNARY,
      DIVISORS, dtypes=NUMERIC, out_dtype=floating, **_nograd()),
    R("floor_divide_int", lambda m, x, y: m.floor_divide(x, y), np.floor_divide, BINARY3,
      (Sampler(-9, 9), Sampler(-4, 4, away=0.5)), dtypes=[(I64, I64)], **_nograd()),
    R("mod_operator", lambda m, x, y: x % y, _remainder, BINARY3, (DIVIDENDS, DIVISORS),
      dtypes=NUMERIC),
    R("rmod_operator", lambda m, x: 7 % x, lambda x: _remainder(np.int64(7), x), UNARY,
      DIVISORS, dtypes=(I64,), **_nograd()),

    # ------------------------------------------------------------------ two operands
    R("atan2", lambda m, x, y: m.atan2(x, y), _f64(np.arctan2), BINARY3, (Sampler(), DENOM),
      dtypes=NUMERIC, out_dtype=floating),
    R("arctan2_method", lambda m, x, y: x.arctan2(y), np.arctan2, BINARY3[:1], (DENOM, DENOM)),
    R("atan2_f32_f64", lambda m, x, y: m.atan2(x, y), np.arctan2, BINARY3[:2], (DENOM, DENOM),
      dtypes=[(F32, F64)], out_dtype=fixed(F64)),
    R("logaddexp", lambda m, x, y: m.logaddexp(x, y), np.logaddexp, BINARY3,
      Sampler(-4.0, 4.0)),
    R("logaddexp_i64_f32", lambda m, x, y: x.logaddexp(y), np.logaddexp, BINARY3[:1],
      dtypes=[(I64, F32)], out_dtype=fixed(F32), **_nograd()),

    # ------------------------------------------------------------------ multiply-adds
    R("lerp_scalar", lambda m, x, y: m.lerp(x, y, 0.3), lambda x, y: _lerp(x, y, 0.3),
      BINARY3),
    R("lerp_scalar_upper", lambda m, x, y: x.lerp(y, 0.8), lambda x, y: _lerp(x, y, 0.8),
      BINARY3[:2]),
    R("lerp_tensor", lambda m, x, y, w: m.lerp(x, y, w), _lerp, TERNARY,
      (Sampler(), Sampler(), Sampler(-0.5, 1.5, avoid=(-0.5, 0.5)))),
    R("addcmul", lambda m, x, y, z: m.addcmul(x, y, z, value=0.5),
      lambda x, y, z: x + 0.5 * y * z, TERNARY, dtypes=FLOATS),
    R("addcmul_int", lambda m, x, y, z: x.addcmul(y, z, value=2), lambda x, y, z: x + 2 * y * z,
      TERNARY[:2], dtypes=(I64,), **_nograd()),
    R("addcmul_mixed", lambda m, x, y, z: x.addcmul(y, z), lambda x, y, z: x + y * z,
      TERNARY[:1], dtypes=[(I64, F32, I64), (F32, F64, F32)],
      out_dtype=lambda dts: F64 if F64 in dts else F32, **_nograd()),
    R("addcdiv", lambda m, x, y, z: m.addcdiv(x, y, z, value=-0.5),
      lambda x, y, z: x - 0.5 * y / z, TERNARY, (Sampler(), Sampler(), DENOM)),
    R("addcdiv_default", lambda m, x, y, z: x.addcdiv(y, z), lambda x, y, z: x + y / z,
      TERNARY[:1], (Sampler(), Sampler(), DENOM), dtypes=[(I64, F32, I64)],
      out_dtype=fixed(F32), **_nograd()),

    # ------------------------------------------------------------------ activations
    R("softplus", lambda m, x: m.nn.functional.softplus(x), _softplus, UNARY, ACT),
    R("softplus_beta", lambda m, x: m.nn.functional.softplus(x, beta=2, threshold=1),
      lambda x: _softplus(x, 2, 1), UNARY, Sampler(avoid=(0.5,))),
    R("elu", lambda m, x: m.nn.functional.elu(x), lambda x: np.where(x > 0, x, np.expm1(x)),
      UNARY, AWAY),
    R("elu_alpha", lambda m, x: m.nn.functional.elu(x, alpha=0.5),
      lambda x: np.where(x > 0, x, 0.5 * np.expm1(x)), UNARY, AWAY),
    R("leaky_relu", lambda m, x: m.nn.functional.leaky_relu(x),
      lambda x: np.where(x > 0, x, 0.01 * x), UNARY, AWAY),
    R("leaky_relu_slope", lambda m, x: m.nn.functional.leaky_relu(x, 0.2),
      lambda x: np.where(x > 0, x, 0.2 * x), UNARY, AWAY),
    R("gelu", lambda m, x: m.nn.functional.gelu(x),
      lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2))), UNARY, ACT),
    R("gelu_tanh", lambda m, x: m.nn.functional.gelu(x, approximate="tanh"), _gelu_tanh,
      UNARY, ACT),
    R("silu", lambda m, x: m.nn.functional.silu(x), lambda x: x * _sigmoid(x), UNARY, ACT),
    R("mish", lambda m, x: m.nn.functional.mish(x),
      lambda x: x * np.tanh(np.log1p(np.exp(x))), UNARY, ACT),
    R("hardtanh", lambda m, x: m.nn.functional.hardtanh(x), lambda x: np.clip(x, -1, 1),
      UNARY, CLAMPED, dtypes=NUMERIC),
    R("hardtanh_bounds", lambda m, x: m.nn.functional.hardtanh(x, -0.5, 2.0),
      lambda x: np.clip(x, -0.5, 2.0), UNARY, Sampler(-3.0, 3.0, avoid=(-0.5, 2.0))),
    R("relu6", lambda m, x: m.nn.functional.relu6(x), lambda x: np.clip(x, 0, 6), UNARY,
      Sampler(-2.0, 8.0, avoid=(0.0, 6.0))),

    # ------------------------------------------------------------------ pow, every combination
    R("pow_negative_base_int_exponent", lambda m, x: x ** 3, lambda x: x ** 3, UNARY,
      dtypes=NUMERIC),
    R("pow_negative_base_negative_exponent", lambda m, x: m.pow(x, -2), lambda x: x ** -2.0,
      UNARY, DENOM),
    R("pow_tensor_integral_exponent", lambda m, x, y: x ** y, np.power, BINARY3,
      (Sampler(), Sampler(-3, 3, grid=True)), numeric=False, gradgrad=False),  # d/dy: nan at x < 0
    R("pow_zero_to_zero", lambda m, x, y: m.pow(x, y), np.power, BINARY3,
      (Sampler(-2, 2, grid=True), Sampler(0, 3, grid=True)), numeric=False, gradgrad=False),
    R("pow_int_tensor_tensor", lambda m, x, y: x ** y, lambda x, y: _int_pow(x, y), BINARY3,
      (Sampler(-3, 3), Sampler(-3, 4)), dtypes=(I64,), **_nograd()),
    R("pow_mixed_dtypes", lambda m, x, y: x ** y, _f64(np.power), BINARY3[:2],
      (Sampler(0.5, 2.0, grid=False), Sampler(-2, 2)),
      dtypes=[(I64, F32), (F32, I64), (BOOL, F64), (F64, BOOL)],
      out_dtype=lambda dts: F64 if F64 in dts else F32, **_nograd()),
    R("pow_bool_int_scalar", lambda m, x: x ** 2, lambda x: x.astype(np.int64) ** 2, UNARY,
      dtypes=(BOOL,), out_dtype=fixed(I64), **_nograd()),
    R("pow_bool_true_false", lambda m, x: (x ** True, x ** False),
      lambda x: (x, np.ones_like(x)), UNARY, dtypes=(BOOL,), out_dtype=fixed((BOOL, BOOL)),
      **_nograd()),  # a bool tensor to a bool power: copied or filled, no kernel
    R("pow_int_float_scalar", lambda m, x: x ** 0.5, _f64(np.sqrt), UNARY, Sampler(0, 4),
      dtypes=(I64, BOOL), out_dtype=fixed(F32), **_nograd()),
    R("pow_scalar_base_zero", lambda m, x: 0 ** x, lambda x: 0.0 ** x, UNARY,
      Sampler(0, 3, grid=True), numeric=False, gradgrad=False),
    R("pow_scalar_base_negative", lambda m, x: (-2) ** x, lambda x: (-2.0) ** x, UNARY,
      Sampler(-3, 3, grid=True), numeric=False, gradgrad=False),
    R("pow_scalar_base_int_tensor", lambda m, x: 3 ** x, lambda x: 3 ** x, UNARY,
      Sampler(0, 5), dtypes=(I64,), **_nograd()),
    R("pow_scalar_base_float_int_tensor", lambda m, x: 1.5 ** x, lambda x: 1.5 ** x, UNARY,
      Sampler(-3, 3), dtypes=(I64, BOOL), out_dtype=fixed(F32), **_nograd()),
    R("pow_scalar_half", lambda m, x: x ** 0.5, np.sqrt, UNARY, POSITIVE),
    R("pow_scalar_minus_half", lambda m, x: x ** -0.5, lambda x: x ** -0.5, UNARY, POSITIVE),
    R("pow_scalar_one", lambda m, x: x ** 1, lambda x: x, UNARY, dtypes=NUMERIC),
]


def _int_pow(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Integer powers as torch defines them: a negative exponent truncates 1 / x**-y."""
    x, y = np.broadcast_arrays(x, y)
    out = np.zeros(x.shape, dtype=np.int64)
    for i in np.ndindex(x.shape):
        a, b = int(x[i]), int(y[i])
        out[i] = a ** b if b >= 0 else (1 if a == 1 else (-1) ** b if a == -1 else 0)
    return out
