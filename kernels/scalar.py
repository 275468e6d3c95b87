"""Scalar bodies of the elementwise primitives.

Each body is written once, as a factory ``make(T)`` that receives the Numba scalar type of the
operands and returns a plain function of scalars. The factory exists only to give constants the
operands' type: Numba widens ``float32 * 1.0`` to float64, which would halve the vector width
of every float32 kernel. The returned function is compiled inline into the CPU loops of
``elementwise.py`` and, later, into CUDA kernels from the same source.

Tables: ``UNARY``, ``BINARY`` and ``TERNARY`` map a primitive name to ``(make, doc)``, where
``doc`` names what the kernel computes element by element.
"""

from __future__ import annotations

import math


# --------------------------------------------------------------------------- unary

def _neg(T):
    def f(x):
        return -x
    return f


def _abs(T):
    zero = T(0)

    def f(x):
        return x if x >= zero else -x
    return f


def _exp(T):
    def f(x):
        return math.exp(x)
    return f


def _log(T):
    def f(x):
        return math.log(x) if x > 0 else (-math.inf if x == 0 else math.nan)
    return f


def _sqrt(T):
    def f(x):
        return math.sqrt(x) if x >= 0 else math.nan
    return f


def _tanh(T):
    def f(x):
        return math.tanh(x)
    return f


def _sigmoid(T):
    one = T(1)

    def f(x):
        # Two branches keep exp's argument non-positive: no overflow for large |x|.
        if x >= 0:
            return one / (one + math.exp(-x))
        e = math.exp(x)
        return e / (one + e)
    return f


def _relu(T):
    zero = T(0)

    def f(x):
        return x if x > zero else zero
    return f


def _sign(T):
    zero = T(0)
    one = T(1)

    def f(x):
        if x > zero:
            return one
        if x < zero:
            return -one
        return x  # keeps 0, -0 and nan
    return f


def _copy(T):
    def f(x):
        return x
    return f


def _logical_not(T):
    def f(x):
        return not x
    return f


UNARY = {
    "neg": (_neg, "out[i] = -a[i]"),
    "abs": (_abs, "out[i] = |a[i]|"),
    "exp": (_exp, "out[i] = exp(a[i])"),
    "log": (_log, "out[i] = log(a[i])"),
    "sqrt": (_sqrt, "out[i] = sqrt(a[i])"),
    "tanh": (_tanh, "out[i] = tanh(a[i])"),
    "sigmoid": (_sigmoid, "out[i] = 1 / (1 + exp(-a[i]))"),
    "relu": (_relu, "out[i] = max(a[i], 0)"),
    "sign": (_sign, "out[i] = sign(a[i])"),
    "copy": (_copy, "out[i] = a[i] (cast to out's dtype)"),
    "logical_not": (_logical_not, "out[i] = not a[i]"),
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
    def f(a, b):
        return a ** b
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
        return g if y > zero else zero
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
        if x < lo:
            return lo
        if x > hi:
            return hi
        return x
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
