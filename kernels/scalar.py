"""Scalar bodies of the elementwise primitives.

Each body is written once, as a factory ``make(T)`` that receives the Numba scalar type of the
operands and returns a plain function of scalars. The factory exists only to give constants the
operands' type: Numba widens ``float32 * 1.0`` to float64, which would halve the vector width
of every float32 kernel. The returned function is compiled inline into the CPU loops of
``elementwise.py`` and, later, into CUDA kernels from the same source.

Tables: ``UNARY``, ``BINARY`` and ``TERNARY`` map a primitive name to ``(make, doc)``, where
``doc`` names what the kernel computes element by element; ``UNARY_P``, ``BINARY_P`` and
``TERNARY_P`` do the same for bodies that also take two scalar parameters (the loops of
``pointwise.py``).

Transcendentals come from ``_fn(T, name)``: ``fastmath.py``'s vectorizable float32 functions,
or libm for float64 (Numba's ``math.exp`` is a scalar call that keeps a loop from
vectorizing, which float64 accuracy is worth and float32 speed is not).
"""

from __future__ import annotations

import contextlib
import math

import numba
import numpy as np
from numba import njit

from . import fastmath


def _helper(fn, name: str = ""):
    """A scalar function shared by several bodies, with a fixed identity (see
    ``elementwise._stable``: bodies close over it, and Numba pickles closures into the key
    of its disk cache)."""
    d = njit(inline="always")(fn)
    d._set_uuid(f"jitgrad.kernels.scalar:{name or fn.__name__}")
    return d


@_helper
def _sigmoid64(x):
    # Two branches keep exp's argument non-positive: no overflow for large |x|.
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@_helper
def _log64(x):
    return math.log(x) if x > 0 else (-math.inf if x == 0 else math.nan)


_LIBM = {
    "exp": _helper(lambda x: math.exp(x), "libm_exp"),
    "expm1": _helper(lambda x: math.expm1(x), "libm_expm1"),
    "exp2": _helper(lambda x: np.exp2(x), "libm_exp2"),
    "log": _log64,
    "log1p": _helper(lambda x: math.log1p(x), "libm_log1p"),
    "log2": _helper(lambda x: math.log2(x), "libm_log2"),
    "log10": _helper(lambda x: math.log10(x), "libm_log10"),
    "tanh": _helper(lambda x: math.tanh(x), "libm_tanh"),
    "sigmoid": _sigmoid64,
    "erf": _helper(lambda x: math.erf(x), "libm_erf"),
}


_TARGET = ["cpu"]  # which compiler the bodies being made are for (see ``target``)


@contextlib.contextmanager
def target(name: str):
    """Make bodies for target `name` ("cpu" or "cuda") inside this block: the bodies are the
    same source, but transcendentals and numpy's rounding functions come from the target's
    own math library (``cuda/mathfns.py`` for the GPU)."""
    old = _TARGET[0]
    _TARGET[0] = name
    try:
        yield
    finally:
        _TARGET[0] = old


def _fn(T, name: str):
    """The scalar function `name` for operands of type T: ``fastmath``'s vectorizable one for
    float32, libm's (correctly rounded or nearly) for float64; on the GPU, its math library."""
    if _TARGET[0] == "cuda":
        from .cuda import mathfns

        return mathfns.get(T, name)
    return getattr(fastmath, name) if T == numba.float32 else _LIBM[name]


def _np(T, name: str):
    """numpy's elementwise function `name` (rint, floor, fmod, ...) as the target compiles it."""
    if _TARGET[0] == "cuda":
        from .cuda import mathfns

        return mathfns.get(T, name)
    return getattr(np, name)


def _is_float(T) -> bool:
    return isinstance(T, numba.types.Float)


# --------------------------------------------------------------------------- unary

def _math(name: str):
    """The body of a transcendental: fastmath's vectorizable function for float32, libm's
    for float64 (see ``_fn``)."""
    def make(T):
        fn = _fn(T, name)

        def f(x):
            return fn(x)
        return f
    return make


def _neg(T):
    def f(x):
        return -x
    return f


def _abs(T):
    zero = T(0)

    def f(x):
        return x if x >= zero else -x
    return f


def _sqrt(T):
    def f(x):
        return math.sqrt(x) if x >= 0 else math.nan
    return f


def _relu(T):
    zero = T(0)

    def f(x):
        return zero if x <= zero else x  # NaN stays NaN, as in torch
    return f


def _sign(T):
    zero = T(0)
    one = T(1)

    def f(x):
        if x > zero:
            return one
        if x < zero:
            return -one
        return zero  # 0 for 0, -0 and nan, as torch
    return f


def _copy(T):
    def f(x):
        return x
    return f


def _logical_not(T):
    def f(x):
        return not x
    return f


def _sin(T):
    def f(x):
        return math.sin(x)
    return f


def _cos(T):
    def f(x):
        return math.cos(x)
    return f


def _tan(T):
    def f(x):
        return math.tan(x)
    return f


def _libm1(name: str):
    """A body calling math.<name> (numba's libm call on the CPU, libdevice's on CUDA)."""
    fn = getattr(math, name)

    def make(T):
        def f(x):
            return fn(x)
        return f
    make.__name__ = f"_{name}"
    return make


def _rsqrt(T):
    one = T(1)

    def f(x):
        return one / math.sqrt(x)  # error_model="numpy": nan below 0, -inf at -0
    return f


def _square(T):
    def f(x):
        return x * x
    return f


def _rounding(name):
    """floor, ceil, trunc and round (half to even): one vector instruction each."""
    def make(T):
        np_fn = _np(T, name)

        def f(x):
            return np_fn(x)
        return f
    return make


def _gelu(T):
    erf = _fn(T, "erf")
    half = T(0.5)
    one = T(1)
    rsqrt2 = T(0.7071067811865476)

    def f(x):
        return x * half * (one + erf(x * rsqrt2))
    return f


def _gelu_tanh(T):
    # 0.5 x (1 + tanh(u)) = x sigmoid(2u): no cancellation for x << 0
    sigmoid = _fn(T, "sigmoid")
    two_beta = T(2 * 0.7978845608028654)  # 2 sqrt(2 / pi)
    kappa = T(0.044715)

    def f(x):
        return x * sigmoid(two_beta * (x + kappa * x * x * x))
    return f


def _silu(T):
    sigmoid = _fn(T, "sigmoid")

    def f(x):
        return x * sigmoid(x)
    return f


def _mish(T):
    # tanh(log1p(e)) = n / (n + 2) with n = e (e + 2), e = exp(x); it is 1 from x = 9 on
    exp = _fn(T, "exp")
    two = T(2)
    cap = T(20)

    def f(x):
        e = exp(min(x, cap))
        n = e * (e + two)
        return x * (n / (n + two))
    return f


UNARY = {
    "neg": (_neg, "out[i] = -a[i]"),
    "abs": (_abs, "out[i] = |a[i]|"),
    "exp": (_math("exp"), "out[i] = exp(a[i])"),
    "log": (_math("log"), "out[i] = log(a[i])"),
    "sqrt": (_sqrt, "out[i] = sqrt(a[i])"),
    "tanh": (_math("tanh"), "out[i] = tanh(a[i])"),
    "sigmoid": (_math("sigmoid"), "out[i] = 1 / (1 + exp(-a[i]))"),
    "relu": (_relu, "out[i] = max(a[i], 0)"),
    "sign": (_sign, "out[i] = sign(a[i])"),
    "copy": (_copy, "out[i] = a[i] (cast to out's dtype)"),
    "logical_not": (_logical_not, "out[i] = not a[i]"),
    "sin": (_sin, "out[i] = sin(a[i])"),
    "cos": (_cos, "out[i] = cos(a[i])"),
    "tan": (_tan, "out[i] = tan(a[i])"),
    "asin": (_libm1("asin"), "out[i] = asin(a[i])"),
    "acos": (_libm1("acos"), "out[i] = acos(a[i])"),
    "atan": (_libm1("atan"), "out[i] = atan(a[i])"),
    "sinh": (_libm1("sinh"), "out[i] = sinh(a[i])"),
    "cosh": (_libm1("cosh"), "out[i] = cosh(a[i])"),
    "asinh": (_libm1("asinh"), "out[i] = asinh(a[i])"),
    "acosh": (_libm1("acosh"), "out[i] = acosh(a[i])"),
    "atanh": (_libm1("atanh"), "out[i] = atanh(a[i])"),
    "expm1": (_math("expm1"), "out[i] = exp(a[i]) - 1"),
    "exp2": (_math("exp2"), "out[i] = 2 ** a[i]"),
    "log1p": (_math("log1p"), "out[i] = log(1 + a[i])"),
    "log2": (_math("log2"), "out[i] = log2(a[i])"),
    "log10": (_math("log10"), "out[i] = log10(a[i])"),
    "erf": (_math("erf"), "out[i] = erf(a[i])"),
    "rsqrt": (_rsqrt, "out[i] = 1 / sqrt(a[i])"),
    "square": (_square, "out[i] = a[i] * a[i]"),
    "floor": (_rounding("floor"), "out[i] = floor(a[i])"),
    "ceil": (_rounding("ceil"), "out[i] = ceil(a[i])"),
    "trunc": (_rounding("trunc"), "out[i] = trunc(a[i])"),
    "round": (_rounding("rint"), "out[i] = a[i] rounded to the nearest integer, ties to even"),
    "gelu": (_gelu, "out[i] = a[i] * Phi(a[i]), Phi the standard normal cdf"),
    "gelu_tanh": (_gelu_tanh, "out[i] = a[i] * sigmoid(2 sqrt(2/pi) (a[i] + 0.044715 a[i]**3))"),
    "silu": (_silu, "out[i] = a[i] * sigmoid(a[i])"),
    "mish": (_mish, "out[i] = a[i] * tanh(log(1 + exp(a[i])))"),
}


# --------------------------------------------------------------------------- binary

def _add(T):
    def f(a, b):
        return a + b
    return f


def _sub(T):
    def f(a, b):
        return a - b
    return f


def _mul(T):
    def f(a, b):
        return a * b
    return f


def _div(T):
    def f(a, b):
        return a / b
    return f


def _pow(T):
    if _is_float(T) or T == numba.boolean:
        def f(a, b):
            return a ** b
        return f
    zero = T(0)
    one = T(1)

    def f(a, b):
        # Integer powers as torch computes them: a negative exponent gives 1 / a**-b
        # truncated (so 0 unless |a| == 1), where Python would give a float.
        if b >= zero:
            r = one
            x = a
            e = b
            while e:
                if e & one:
                    r = r * x
                x = x * x
                e = e >> one
            return r
        if a == one:
            return one
        if a == -one:
            return one if b & one == zero else -one
        return zero
    return f


def _maximum(T):
    def f(a, b):
        if a != a:
            return a
        return a if a >= b else b
    return f


def _minimum(T):
    def f(a, b):
        if a != a:
            return a
        return a if a <= b else b
    return f


def _fmod(T):
    """C's fmod: the remainder of a / b truncated, with a's sign."""
    if _is_float(T):
        fmod = _np(T, "fmod")

        def f(a, b):
            return fmod(a, b)
        return f
    zero = T(0)
    if not T.signed:
        def f(a, b):
            return a % b
        return f

    def f(a, b):
        if b == -1:  # a % -1 is 0; INT_MIN % -1 would trap
            return zero
        r = a % b  # Python's remainder: b's sign
        return r - b if r != zero and (r < zero) != (a < zero) else r
    return f


def _remainder(T):
    """Python's %: the remainder of a / b floored, with b's sign (torch.remainder)."""
    if _is_float(T):
        zero = T(0)
        fmod = _np(T, "fmod")

        def f(a, b):
            r = fmod(a, b)
            return r + b if r != zero and (b < zero) != (r < zero) else r
        return f
    zero = T(0)
    if not T.signed:
        def f(a, b):
            return a % b
        return f

    def f(a, b):
        return zero if b == -1 else a % b
    return f


def _div_floor(T):
    """Python's //: a / b rounded toward -inf, as torch.div(rounding_mode="floor") computes it
    (for floats, from fmod, so a quotient that rounds up to an integer is not floored a step
    too far)."""
    zero = T(0)
    if _is_float(T):
        one, half = T(1), T(0.5)
        fmod, floor = _np(T, "fmod"), _np(T, "floor")

        def f(a, b):
            if b == zero:
                return a / b
            m = fmod(a, b)
            d = (a - m) / b
            if m != zero and (b < zero) != (m < zero):
                d -= one
            if d == zero:
                return zero * (a / b)  # a zero with the quotient's sign
            q = floor(d)
            return q + one if d - q > half else q
        return f
    if not T.signed:
        def f(a, b):
            return a // b
        return f

    def f(a, b):
        return zero - a if b == -1 else a // b  # INT_MIN // -1 wraps instead of trapping
    return f


def _div_trunc(T):
    """a / b rounded toward zero (torch.div(rounding_mode="trunc"), C's integer division)."""
    zero = T(0)
    if _is_float(T):
        trunc = _np(T, "trunc")

        def f(a, b):
            return trunc(a / b)
        return f
    if not T.signed:
        def f(a, b):
            return a // b
        return f
    one = T(1)

    def f(a, b):
        if b == -1:
            return zero - a
        q = a // b  # floored; one step up when inexact with the operands' signs differing
        return q + one if q * b != a and (a < zero) != (b < zero) else q
    return f


def _atan2(T):
    def f(a, b):
        return math.atan2(a, b)
    return f


def _logaddexp(T):
    exp = _fn(T, "exp")
    log1p = _fn(T, "log1p")

    def f(a, b):
        if a == b and (a - b) != (a - b):  # both inf of one sign: a, not nan
            return a
        m = a if a > b else b
        return m + log1p(exp(-abs(a - b)))
    return f


def _cmp(op):
    def make(T):
        if op == "eq":
            def f(a, b):
                return a == b
        elif op == "ne":
            def f(a, b):
                return a != b
        elif op == "lt":
            def f(a, b):
                return a < b
        elif op == "le":
            def f(a, b):
                return a <= b
        elif op == "gt":
            def f(a, b):
                return a > b
        else:
            def f(a, b):
                return a >= b
        return f
    return make


def _logical_and(T):
    def f(a, b):
        return a and b
    return f


def _logical_or(T):
    def f(a, b):
        return a or b
    return f


# Fused backward bodies: the gradient of a primitive as one pass over memory.

def _tanh_backward(T):
    one = T(1)

    def f(g, y):
        return g * (one - y * y)
    return f


def _sigmoid_backward(T):
    one = T(1)

    def f(g, y):
        return g * y * (one - y)
    return f


def _relu_backward(T):
    zero = T(0)

    def f(g, y):
        return zero if y <= zero else g  # a NaN output passes g on, as in torch
    return f


def _abs_backward(T):
    zero = T(0)

    def f(g, x):
        if x > zero:
            return g
        if x < zero:
            return -g
        return zero
    return f


def _sqrt_backward(T):
    half = T(0.5)

    def f(g, y):
        return g * half / y
    return f


def _sin_backward(T):
    def f(g, x):
        return g * math.cos(x)
    return f


def _cos_backward(T):
    def f(g, x):
        return g * -math.sin(x)
    return f


def _tan_backward(T):
    one = T(1)

    def f(g, y):
        return g * (one + y * y)
    return f


def _log1p_backward(T):
    one = T(1)

    def f(g, x):
        return g / (one + x)
    return f


def _expm1_backward(T):
    one = T(1)

    def f(g, y):
        return g * (y + one)
    return f


def _log_base_backward(ln_base):
    def make(T):
        c = T(ln_base)

        def f(g, x):
            return g / (x * c)
        return f
    return make


def _exp2_backward(T):
    ln2 = T(math.log(2.0))

    def f(g, y):
        return g * y * ln2
    return f


def _rsqrt_backward(T):
    c = T(-0.5)

    def f(g, y):
        return c * g * (y * y * y)
    return f


def _erf_backward(T):
    exp = _fn(T, "exp")
    c = T(2 / math.sqrt(math.pi))

    def f(g, x):
        return g * c * exp(-(x * x))
    return f


def _gelu_backward(T):
    erf = _fn(T, "erf")
    exp = _fn(T, "exp")
    half = T(0.5)
    one = T(1)
    rsqrt2 = T(0.7071067811865476)
    rsqrt2pi = T(0.3989422804014327)  # 1 / sqrt(2 pi)

    def f(g, x):
        cdf = half * (one + erf(x * rsqrt2))
        pdf = exp(-half * x * x) * rsqrt2pi
        return g * (cdf + x * pdf)
    return f


def _gelu_tanh_backward(T):
    tanh = _fn(T, "tanh")
    half = T(0.5)
    one = T(1)
    beta = T(0.7978845608028654)  # sqrt(2 / pi)
    kappa = T(0.044715)
    kappa3 = T(3 * 0.044715)

    def f(g, x):
        x2 = x * x
        t = tanh(beta * (x + kappa * x2 * x))
        return g * (half * (one + t) + half * x * (one - t * t) * beta * (one + kappa3 * x2))
    return f


def _silu_backward(T):
    sigmoid = _fn(T, "sigmoid")
    one = T(1)

    def f(g, x):
        s = sigmoid(x)
        return g * s * (one + x * (one - s))
    return f


def _mish_backward(T):
    # With e = exp(x), n = e (e + 2): tanh(softplus(x)) = n / (n + 2),
    # 1 - tanh(softplus(x))**2 = 4 (n + 1) / (n + 2)**2 and sigmoid(x) = e / (1 + e).
    exp = _fn(T, "exp")
    one = T(1)
    two = T(2)
    four = T(4)
    cap = T(20)

    def f(g, x):
        e = exp(min(x, cap))
        n = e * (e + two)
        d = n + two
        dy = n / d + x * (e / (one + e)) * (four * (n + one) / (d * d))
        return g if x > cap else g * dy  # past 20, mish'(x) rounds to 1
    return f


BINARY = {
    "add": (_add, "out[i] = a[i] + b[i]"),
    "sub": (_sub, "out[i] = a[i] - b[i]"),
    "mul": (_mul, "out[i] = a[i] * b[i]"),
    "div": (_div, "out[i] = a[i] / b[i]"),
    "pow": (_pow, "out[i] = a[i] ** b[i]"),
    "maximum": (_maximum, "out[i] = max(a[i], b[i]), nan propagating"),
    "minimum": (_minimum, "out[i] = min(a[i], b[i]), nan propagating"),
    "eq": (_cmp("eq"), "out[i] = a[i] == b[i]"),
    "ne": (_cmp("ne"), "out[i] = a[i] != b[i]"),
    "lt": (_cmp("lt"), "out[i] = a[i] < b[i]"),
    "le": (_cmp("le"), "out[i] = a[i] <= b[i]"),
    "gt": (_cmp("gt"), "out[i] = a[i] > b[i]"),
    "ge": (_cmp("ge"), "out[i] = a[i] >= b[i]"),
    "logical_and": (_logical_and, "out[i] = a[i] and b[i]"),
    "logical_or": (_logical_or, "out[i] = a[i] or b[i]"),
    "tanh_backward": (_tanh_backward, "out[i] = g[i] * (1 - y[i]**2), y = tanh(x)"),
    "sigmoid_backward": (_sigmoid_backward, "out[i] = g[i] * y[i] * (1 - y[i]), y = sigmoid(x)"),
    "relu_backward": (_relu_backward, "out[i] = g[i] if y[i] > 0 else 0, y = relu(x)"),
    "abs_backward": (_abs_backward, "out[i] = g[i] * sign(x[i])"),
    "sqrt_backward": (_sqrt_backward, "out[i] = g[i] / (2 * y[i]), y = sqrt(x)"),
    "fmod": (_fmod, "out[i] = a[i] - b[i] * trunc(a[i] / b[i]), exactly"),
    "remainder": (_remainder, "out[i] = a[i] - b[i] * floor(a[i] / b[i]), exactly"),
    "div_floor": (_div_floor, "out[i] = floor(a[i] / b[i]), exactly (Python's //)"),
    "div_trunc": (_div_trunc, "out[i] = trunc(a[i] / b[i])"),
    "atan2": (_atan2, "out[i] = atan2(a[i], b[i])"),
    "logaddexp": (_logaddexp, "out[i] = log(exp(a[i]) + exp(b[i]))"),
    "sin_backward": (_sin_backward, "out[i] = g[i] * cos(x[i])"),
    "cos_backward": (_cos_backward, "out[i] = -g[i] * sin(x[i])"),
    "tan_backward": (_tan_backward, "out[i] = g[i] * (1 + y[i]**2), y = tan(x)"),
    "log1p_backward": (_log1p_backward, "out[i] = g[i] / (1 + x[i])"),
    "expm1_backward": (_expm1_backward, "out[i] = g[i] * (y[i] + 1), y = expm1(x)"),
    "log2_backward": (_log_base_backward(math.log(2.0)), "out[i] = g[i] / (x[i] * ln 2)"),
    "log10_backward": (_log_base_backward(math.log(10.0)), "out[i] = g[i] / (x[i] * ln 10)"),
    "exp2_backward": (_exp2_backward, "out[i] = g[i] * y[i] * ln 2, y = exp2(x)"),
    "rsqrt_backward": (_rsqrt_backward, "out[i] = -g[i] * y[i]**3 / 2, y = rsqrt(x)"),
    "erf_backward": (_erf_backward, "out[i] = g[i] * 2 / sqrt(pi) * exp(-x[i]**2)"),
    "gelu_backward": (_gelu_backward, "out[i] = g[i] * (Phi(x[i]) + x[i] * phi(x[i]))"),
    "gelu_tanh_backward": (_gelu_tanh_backward, "out[i] = g[i] * gelu_tanh'(x[i])"),
    "silu_backward": (_silu_backward, "out[i] = g[i] * s (1 + x[i] (1 - s)), s = sigmoid(x)"),
    "mish_backward": (_mish_backward, "out[i] = g[i] * mish'(x[i])"),
}


# --------------------------------------------------------------------------- ternary

def _where(T):
    def f(c, a, b):
        return a if c else b
    return f


def _clamp(T):
    def f(x, lo, hi):
        if x != x:
            return x
        v = lo if x < lo else x
        return hi if v > hi else v  # min(max(x, lo), hi): hi wherever lo > hi, as in torch
    return f


def _pow_backward(T):
    zero = T(0)
    one = T(1)

    def f(g, x, p):
        # d/dx x**p = p * x**(p-1); torch defines it as 0 where p == 0.
        if p == zero:
            return zero
        return g * p * x ** (p - one)
    return f


TERNARY = {
    "where": (_where, "out[i] = a[i] if c[i] else b[i]"),
    "clamp": (_clamp, "out[i] = min(max(x[i], lo[i]), hi[i]), nan propagating"),
    "pow_backward": (_pow_backward, "out[i] = g[i] * p[i] * x[i] ** (p[i] - 1), 0 where p == 0"),
}


# --------------------------------------------------------------------------- with parameters
# Bodies of kernels/pointwise.py: the last two arguments, p and q, are scalar parameters of the
# operands' type (unused ones are passed as 0).

def _softplus(T):
    exp = _fn(T, "exp")
    log1p = _fn(T, "log1p")

    def f(x, beta, threshold):
        z = x * beta
        return x if z > threshold else log1p(exp(z)) / beta
    return f


def _elu(T):
    expm1 = _fn(T, "expm1")
    zero = T(0)

    def f(x, alpha, unused):
        return x if x > zero else expm1(x) * alpha
    return f


def _leaky_relu(T):
    zero = T(0)

    def f(x, slope, unused):
        return x if x > zero else x * slope
    return f


def _hardtanh(T):
    def f(x, lo, hi):
        if x < lo:
            return lo
        if x > hi:
            return hi
        return x  # nan included
    return f


def _round_decimals(T):
    zero = T(0)
    rint = _np(T, "rint")

    def f(x, scale, negative):
        # torch's order of operations: x / 10**-d rounded, times 10**-d, for d < 0
        if negative != zero:
            return rint(x / scale) * scale
        return rint(x * scale) / scale
    return f


UNARY_P = {
    "softplus": (_softplus, "out[i] = a[i] if beta a[i] > threshold else "
                            "log(1 + exp(beta a[i])) / beta"),
    "elu": (_elu, "out[i] = a[i] if a[i] > 0 else alpha (exp(a[i]) - 1)"),
    "leaky_relu": (_leaky_relu, "out[i] = a[i] if a[i] > 0 else slope a[i]"),
    "hardtanh": (_hardtanh, "out[i] = min(max(a[i], lo), hi), nan propagating"),
    "round_decimals": (_round_decimals, "out[i] = a[i] rounded to a decimal place, ties to even"),
}


def _softplus_backward(T):
    sigmoid = _fn(T, "sigmoid")

    def f(g, x, beta, threshold):
        z = x * beta
        return g if z > threshold else g * sigmoid(z)
    return f


def _elu_backward(T):
    exp = _fn(T, "exp")
    zero = T(0)

    def f(g, x, alpha, unused):
        return g * alpha * exp(x) if x <= zero else g
    return f


def _leaky_relu_backward(T):
    zero = T(0)

    def f(g, x, slope, unused):
        return g if x > zero else g * slope
    return f


def _hardtanh_backward(T):
    zero = T(0)

    def f(g, x, lo, hi):
        return zero if x <= lo or x >= hi else g
    return f


def _lerp_scalar(T):
    # torch's lerp: a + w (b - a) for |w| < 1/2, else b - (b - a) (1 - w), exact at w = 1
    half = T(0.5)
    one = T(1)

    def f(a, b, w, unused):
        return a + w * (b - a) if abs(w) < half else b - (b - a) * (one - w)
    return f


BINARY_P = {
    "softplus_backward": (_softplus_backward, "out[i] = g[i] * sigmoid(beta x[i]), or g[i] "
                                              "above the threshold"),
    "elu_backward": (_elu_backward, "out[i] = g[i] * alpha exp(x[i]) if x[i] <= 0 else g[i]"),
    "leaky_relu_backward": (_leaky_relu_backward,
                            "out[i] = g[i] if x[i] > 0 else slope g[i]"),
    "hardtanh_backward": (_hardtanh_backward, "out[i] = g[i] if lo < x[i] < hi else 0"),
    "lerp": (_lerp_scalar, "out[i] = a[i] + w (b[i] - a[i])"),
}


def _lerp_tensor(T):
    half = T(0.5)
    one = T(1)

    def f(a, b, w, p, q):
        return a + w * (b - a) if abs(w) < half else b - (b - a) * (one - w)
    return f


def _addcmul(T):
    def f(x, t1, t2, value, unused):
        return x + value * t1 * t2
    return f


def _addcdiv(T):
    def f(x, t1, t2, value, unused):
        return x + value * t1 / t2
    return f


def _logaddexp_backward(T):
    exp = _fn(T, "exp")
    one = T(1)

    def f(g, a, b, p, q):
        return g / (one + exp(b - a))
    return f


def _atan2_backward(T):
    one = T(1)

    def f(g, a, b, sign, unused):
        return sign * g * b * (one / (a * a + b * b))
    return f


TERNARY_P = {
    "lerp": (_lerp_tensor, "out[i] = a[i] + w[i] (b[i] - a[i])"),
    "addcmul": (_addcmul, "out[i] = x[i] + value * t1[i] * t2[i]"),
    "addcdiv": (_addcdiv, "out[i] = x[i] + value * t1[i] / t2[i]"),
    "logaddexp_backward": (_logaddexp_backward, "out[i] = g[i] / (1 + exp(b[i] - a[i]))"),
    "atan2_backward": (_atan2_backward, "out[i] = sign * g[i] * b[i] / (a[i]**2 + b[i]**2)"),
}
