"""Pointwise primitives: unary math, rounding, remainders, two-operand functions, the
activations of ``torch.nn.functional`` and the fused multiply-adds (see docs/architecture.md).

Each primitive validates its operands, promotes them as torch does, runs one kernel (bodies
in ``kernels/scalar.py``; float32 transcendentals from ``kernels/fastmath.py``) and records
its row of ``derivatives.py``. Where a backward is more than one multiplication it is a fused
primitive of its own (``sin_backward``, ``gelu_backward``, ...) with a row of its own, so
that it costs one pass over memory and stays differentiable.

`__all__` lists the names exported at jitgrad's top level, `METHODS` maps Tensor method
names to functions; ``jitgrad.nn.functional`` imports the activations.
"""

from __future__ import annotations

import numpy as np

from . import _dtype
from ._device import host as _host  # validation and index offsets read device data on the host
from . import _ops as O
from . import derivatives as D
from .autograd.graph import OUTPUT, record
from .tensor import Tensor

_wrap = Tensor._wrap


# --------------------------------------------------------------------------- helpers

def _tensor(x, fn: str, arg: str = "input", pos: int = 1) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{fn}(): argument '{arg}' (position {pos}) must be Tensor, not "
                        f"{type(x).__name__}")




def _not_implemented(kernel: str, dtype) -> NotImplementedError:
    return NotImplementedError(f'"{kernel}" not implemented for \'{O.torch_name(dtype)}\'')


def _floating(x: Tensor, kernel: str) -> np.ndarray:
    """x's data for an op that torch defines on floating-point tensors only."""
    d = x._data
    if d.dtype.kind != "f":
        raise _not_implemented(kernel, d.dtype)
    return d


def _unary(kname: str, rule, x: Tensor, fn: str, save_output: bool) -> Tensor:
    _tensor(x, fn)
    return O._unary_float(kname, rule, x, save_output)


def _shape(*arrays) -> tuple:
    shape = arrays[0].shape
    for a in arrays[1:]:
        if a.shape != shape:
            shape = O.broadcast_shapes(shape, a.shape)
    return shape


def _fused(kname: str, rule, g: Tensor, x: Tensor, *params) -> Tensor:
    """A fused backward primitive f(g, x), or f(g, x; p, q) with scalar parameters: one
    kernel, itself differentiable (its row gets g, x and the parameters)."""
    tg, tx, gd, xd = O.operands(g, x)
    K = O.backend(gd)
    shape = _shape(gd, xd)
    if params:
        out = _wrap(K.binary_p(kname, gd, xd, shape, *params))
    else:
        out = _wrap(K.binary(kname, gd, xd, shape))
    return record(rule, out, (tg, tx), (tg, tx) + params)


def zeros_grad(g: Tensor, *saved) -> Tensor:
    """The gradient of a step function (floor, round, ...): zero, as in torch."""
    return _wrap(O.backend(g._data).zeros(g._data.shape, g._data.dtype))


# --------------------------------------------------------------------------- unary math

def sin(x: Tensor) -> Tensor:
    return _unary("sin", D.SIN, x, "sin", False)


def cos(x: Tensor) -> Tensor:
    return _unary("cos", D.COS, x, "cos", False)


def tan(x: Tensor) -> Tensor:
    return _unary("tan", D.TAN, x, "tan", True)


def asin(x: Tensor) -> Tensor:
    return _unary("asin", D.ASIN, x, "asin", False)


def acos(x: Tensor) -> Tensor:
    return _unary("acos", D.ACOS, x, "acos", False)


def atan(x: Tensor) -> Tensor:
    return _unary("atan", D.ATAN, x, "atan", False)


def sinh(x: Tensor) -> Tensor:
    return _unary("sinh", D.SINH, x, "sinh", False)


def cosh(x: Tensor) -> Tensor:
    return _unary("cosh", D.COSH, x, "cosh", False)


def asinh(x: Tensor) -> Tensor:
    return _unary("asinh", D.ASINH, x, "asinh", False)


def acosh(x: Tensor) -> Tensor:
    return _unary("acosh", D.ACOSH, x, "acosh", False)


def atanh(x: Tensor) -> Tensor:
    return _unary("atanh", D.ATANH, x, "atanh", False)


arcsin, arccos, arctan = asin, acos, atan
arcsinh, arccosh, arctanh = asinh, acosh, atanh


def log1p(x: Tensor) -> Tensor:
    return _unary("log1p", D.LOG1P, x, "log1p", False)


def expm1(x: Tensor) -> Tensor:
    return _unary("expm1", D.EXPM1, x, "expm1", True)


def log2(x: Tensor) -> Tensor:
    return _unary("log2", D.LOG2, x, "log2", False)


def log10(x: Tensor) -> Tensor:
    return _unary("log10", D.LOG10, x, "log10", False)


def exp2(x: Tensor) -> Tensor:
    return _unary("exp2", D.EXP2, x, "exp2", True)


def rsqrt(x: Tensor) -> Tensor:
    return _unary("rsqrt", D.RSQRT, x, "rsqrt", True)


def erf(x: Tensor) -> Tensor:
    return _unary("erf", D.ERF, x, "erf", False)


def square(x: Tensor) -> Tensor:
    """x ** 2, as torch computes it (a bool tensor gives int64; grad_fn PowBackward0)."""
    _tensor(x, "square")
    d = x._data
    if d.dtype == np.bool_:
        d = d.astype(np.int64)
    out = _wrap(O.backend(d).unary("square", d))
    return record(D.POW_SCALAR, out, (x,), (x, 2))


def sin_backward(g: Tensor, x: Tensor) -> Tensor:
    return _fused("sin_backward", D.SIN_BACKWARD, g, x)


def cos_backward(g: Tensor, x: Tensor) -> Tensor:
    return _fused("cos_backward", D.COS_BACKWARD, g, x)


def tan_backward(g: Tensor, y: Tensor) -> Tensor:
    return _fused("tan_backward", D.TAN_BACKWARD, g, y)


def log1p_backward(g: Tensor, x: Tensor) -> Tensor:
    return _fused("log1p_backward", D.LOG1P_BACKWARD, g, x)


def expm1_backward(g: Tensor, y: Tensor) -> Tensor:
    return _fused("expm1_backward", D.EXPM1_BACKWARD, g, y)


def log2_backward(g: Tensor, x: Tensor) -> Tensor:
    return _fused("log2_backward", D.LOG2_BACKWARD, g, x)


def log10_backward(g: Tensor, x: Tensor) -> Tensor:
    return _fused("log10_backward", D.LOG10_BACKWARD, g, x)


def exp2_backward(g: Tensor, y: Tensor) -> Tensor:
    return _fused("exp2_backward", D.EXP2_BACKWARD, g, y)


def rsqrt_backward(g: Tensor, y: Tensor) -> Tensor:
    return _fused("rsqrt_backward", D.RSQRT_BACKWARD, g, y)


def erf_backward(g: Tensor, x: Tensor) -> Tensor:
    return _fused("erf_backward", D.ERF_BACKWARD, g, x)


# --------------------------------------------------------------------------- rounding

def _rounding(kname: str, rule, x: Tensor, fn: str) -> Tensor:
    _tensor(x, fn)
    d = x._data
    if d.dtype == np.bool_:
        raise _not_implemented(f"{kname}_vml_cpu", d.dtype)
    if d.dtype.kind != "f":  # integers are their own floor, ceil, round and trunc
        return _wrap(O.backend(d).copy(d))
    out = _wrap(O.backend(d).unary(kname, d))
    return record(rule, out, (x,))


def floor(x: Tensor) -> Tensor:
    return _rounding("floor", D.FLOOR, x, "floor")


def ceil(x: Tensor) -> Tensor:
    return _rounding("ceil", D.CEIL, x, "ceil")


def trunc(x: Tensor) -> Tensor:
    return _rounding("trunc", D.TRUNC, x, "trunc")


def round(x: Tensor, *, decimals: int | None = None) -> Tensor:  # noqa: A001 - torch's name
    """Round half to even; with `decimals`, to that many decimal places (negative: tens,
    hundreds, ...), computed as torch does it: rint(x * 10**d) / 10**d."""
    if decimals is None:
        return _rounding("round", D.ROUND, x, "round")
    _tensor(x, "round")
    d = x._data
    if d.dtype.kind != "f":
        raise _not_implemented("round_vml_cpu" if decimals == 0 else "round_cpu", d.dtype)
    if decimals == 0:
        out = _wrap(O.backend(d).unary("round", d))
    else:
        scale = 10.0 ** abs(int(decimals))
        out = _wrap(O.backend(d).unary_p("round_decimals", d, scale, decimals < 0))
    return record(D.ROUND_DECIMALS, out, (x,))


fix = trunc


# --------------------------------------------------------------------------- remainders

def _remainder_operands(kernel: str, a, b):
    ta, tb, ad, bd = O.operands(a, b)
    if ad.dtype == np.bool_:
        raise _not_implemented(kernel, ad.dtype)
    if ad.dtype.kind in "iu" and not _host(bd).all():
        raise RuntimeError("ZeroDivisionError")
    return ta, tb, ad, bd


def fmod(x: Tensor, other) -> Tensor:
    """The remainder of x / other rounded toward zero: x's sign (C's fmod)."""
    _tensor(x, "fmod")
    ta, tb, ad, bd = _remainder_operands("fmod_cpu", x, other)
    out = _wrap(O.backend(ad).binary("fmod", ad, bd, _shape(ad, bd)))
    if isinstance(other, Tensor):
        return record(D.FMOD_TENSOR, out, (ta, tb), (ta, tb))
    return record(D.FMOD_SCALAR, out, (ta,))


def remainder(x, other) -> Tensor:
    """The remainder of x / other rounded toward -inf: other's sign (Python's %)."""
    if not isinstance(x, Tensor):
        _tensor(other, "remainder", "other", 2)
        ta, tb, ad, bd = _remainder_operands("remainder_cpu", x, other)
        out = _wrap(O.backend(bd).binary("remainder", ad, bd, _shape(ad, bd)))
        return record(D.REMAINDER_SCALAR_SELF, out, (tb,))
    ta, tb, ad, bd = _remainder_operands("remainder_cpu", x, other)
    out = _wrap(O.backend(ad).binary("remainder", ad, bd, _shape(ad, bd)))
    if isinstance(other, Tensor):
        return record(D.REMAINDER_TENSOR, out, (ta, tb), (ta, tb))
    return record(D.REMAINDER_SCALAR, out, (ta,))


def div_rounded(a, b, rounding_mode: str) -> Tensor:
    """a / b rounded toward -inf ("floor", Python's //) or toward zero ("trunc"), in the
    operands' promoted dtype: integers stay integers. Its gradient is zero, as torch's."""
    if rounding_mode not in ("floor", "trunc"):
        raise RuntimeError("div expected rounding_mode to be one of None, 'trunc', or 'floor' "
                           f"but found '{rounding_mode}'")
    kernel = "div_" + rounding_mode
    ta, tb, ad, bd = _remainder_operands(kernel + "_cpu", a, b)
    out = _wrap(O.backend2(ad, bd).binary(kernel, ad, bd, _shape(ad, bd)))
    return record(D.DIV_ROUNDED, out, (ta, tb))


def floor_divide(input, other) -> Tensor:
    """input // other, rounded toward -inf (torch.floor_divide; not differentiable)."""
    if not isinstance(input, Tensor):
        _tensor(other, "floor_divide", "other", 2)
    ta, tb, ad, bd = _remainder_operands("div_floor_cpu", input, other)
    out = _wrap(O.backend2(ad, bd).binary("div_floor", ad, bd, _shape(ad, bd)))
    return record(D.FLOOR_DIVIDE, out, (ta, tb))


# --------------------------------------------------------------------------- two operands

def _float_pair(x: Tensor, other, fn: str, kernel: str | None = None):
    """Both tensors, promoted together; integers become the default float dtype, or raise
    torch's error where `kernel` names one that has no integer version."""
    _tensor(x, fn)
    _tensor(other, fn, "other", 2)
    ta, tb, ad, bd = O.operands(x, other)
    if ad.dtype.kind != "f":
        if kernel is not None:
            raise _not_implemented(kernel, ad.dtype)
        dt = _dtype.get_default_dtype().np
        ad, bd = ad.astype(dt), bd.astype(dt)
    return ta, tb, ad, bd


def atan2(x: Tensor, other: Tensor) -> Tensor:
    ta, tb, ad, bd = _float_pair(x, other, "atan2")
    out = _wrap(O.backend(ad).binary("atan2", ad, bd, _shape(ad, bd)))
    return record(D.ATAN2, out, (ta, tb), (ta, tb))


arctan2 = atan2


def atan2_backward(g: Tensor, a: Tensor, b: Tensor, sign: int) -> Tensor:
    """sign * g * b / (a**2 + b**2): d atan2(a, b) / da for sign 1; called as
    (g, b, a, -1) it is d atan2(a, b) / db."""
    ts, gd, ad, bd = _promoted(g, a, b)
    out = _wrap(O.backend(gd).ternary_p("atan2_backward", gd, ad, bd, _shape(gd, ad, bd), sign))
    return record(D.ATAN2_BACKWARD, out, ts, ts + (sign,))


def logaddexp(x: Tensor, other: Tensor) -> Tensor:
    ta, tb, ad, bd = _float_pair(x, other, "logaddexp", "logaddexp_cpu")
    out = _wrap(O.backend(ad).binary("logaddexp", ad, bd, _shape(ad, bd)))
    return record(D.LOGADDEXP, out, (ta, tb), (ta, tb))


def logaddexp_backward(g: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """g / (1 + exp(b - a)): d logaddexp(a, b) / da (and / db with a and b swapped)."""
    ts, gd, ad, bd = _promoted(g, a, b)
    out = _wrap(O.backend(gd).ternary_p("logaddexp_backward", gd, ad, bd, _shape(gd, ad, bd)))
    return record(D.LOGADDEXP_BACKWARD, out, ts, ts)


def _promoted(*operands):
    """Tensors (numbers wrapped) and their data in their common dtype."""
    dt = _dtype.result_type(*operands).np
    ts = tuple(o if isinstance(o, Tensor) else _wrap(np.array(o, dtype=dt)) for o in operands)
    return (ts,) + tuple(t._data if t._data.dtype == dt else t._data.astype(dt) for t in ts)


# --------------------------------------------------------------------------- multiply-adds

def _same_dtype(x: Tensor, t: Tensor, what: str) -> None:
    if t._data.dtype != x._data.dtype:
        raise RuntimeError(f"expected dtype {O._CPP_NAMES[x._data.dtype.name]} for `{what}` "
                           f"but got dtype {O._CPP_NAMES[t._data.dtype.name]}")


def lerp(x: Tensor, end: Tensor, weight) -> Tensor:
    """x + weight * (end - x), in torch's form that is exact at both ends."""
    _tensor(x, "lerp")
    _tensor(end, "lerp", "end", 2)
    _same_dtype(x, end, "end")
    xd, ed = x._data, end._data
    if isinstance(weight, Tensor):
        _same_dtype(x, weight, "weight")
        if xd.dtype.kind != "f":
            raise _not_implemented("lerp_kernel_tensor", xd.dtype)
        wd = weight._data
        out = _wrap(O.backend(xd).ternary_p("lerp", xd, ed, wd, _shape(xd, ed, wd)))
        return record(D.LERP_TENSOR, out, (x, end, weight), (x, end, weight))
    w = O._scalar(weight)
    if w is None:
        raise TypeError(f"lerp(): argument 'weight' must be Tensor or Number, not "
                        f"{type(weight).__name__}")
    if xd.dtype.kind != "f":
        raise _not_implemented("lerp_kernel_scalar", xd.dtype)
    out = _wrap(O.backend(xd).binary_p("lerp", xd, ed, _shape(xd, ed), w))
    return record(D.LERP_SCALAR, out, (x, end), (w,))


def _addc(kname: str, rule, x: Tensor, t1: Tensor, t2: Tensor, value) -> Tensor:
    _tensor(x, kname)
    _tensor(t1, kname, "tensor1", 2)
    _tensor(t2, kname, "tensor2", 3)
    if kname == "addcdiv" and t1._data.dtype.kind in "biu" and t2._data.dtype.kind in "biu":
        raise RuntimeError(
            "Integer division with addcdiv is no longer supported, and in a future  release "
            "addcdiv will perform a true division of tensor1 and tensor2. The historic addcdiv "
            "behavior can be implemented as (input + value * torch.trunc(tensor1 / tensor2))"
            ".to(input.dtype) for integer inputs and as (input + value * tensor1 / tensor2) for "
            "float inputs. The future addcdiv behavior is just the latter implementation: "
            "(input + value * tensor1 / tensor2), for all dtypes.")
    v = O._scalar(value)
    if v is None:
        raise TypeError(f"{kname}(): argument 'value' must be Number, not "
                        f"{type(value).__name__}")
    (tx, ta, tb), xd, ad, bd = _promoted(x, t1, t2)
    if xd.dtype == np.bool_:
        raise _not_implemented(f"{kname}_cpu_out", xd.dtype)
    if xd.dtype.kind in "iu":
        v = int(v)  # torch converts value to the result's dtype
    out = _wrap(O.backend(xd).ternary_p(kname, xd, ad, bd, _shape(xd, ad, bd), v))
    return record(rule, out, (tx, ta, tb), (ta, tb, v))


def addcmul(x: Tensor, tensor1: Tensor, tensor2: Tensor, *, value=1) -> Tensor:
    """x + value * tensor1 * tensor2."""
    return _addc("addcmul", D.ADDCMUL, x, tensor1, tensor2, value)


def addcdiv(x: Tensor, tensor1: Tensor, tensor2: Tensor, *, value=1) -> Tensor:
    """x + value * tensor1 / tensor2."""
    return _addc("addcdiv", D.ADDCDIV, x, tensor1, tensor2, value)


# --------------------------------------------------------------------------- activations

def _inplace(op, x: Tensor, *args) -> Tensor:
    from . import _inplace as I

    return I.apply(x, op, *args)


def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta x)) / beta, and x itself where beta x > threshold."""
    _tensor(x, "softplus")
    d = _floating(x, "softplus_cpu")
    out = _wrap(O.backend(d).unary_p("softplus", d, beta, threshold))
    return record(D.SOFTPLUS, out, (x,), (x, beta, threshold))


def softplus_backward(g: Tensor, x: Tensor, beta: float, threshold: float) -> Tensor:
    return _fused("softplus_backward", D.SOFTPLUS_BACKWARD, g, x, beta, threshold)


def elu(x: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x for x > 0, alpha (exp(x) - 1) otherwise."""
    if inplace:
        return _inplace(elu, x, alpha)
    _tensor(x, "elu")
    d = _floating(x, "elu_cpu")
    out = _wrap(O.backend(d).unary_p("elu", d, alpha))
    return record(D.ELU, out, (x,), (x, alpha))


def elu_backward(g: Tensor, x: Tensor, alpha: float) -> Tensor:
    return _fused("elu_backward", D.ELU_BACKWARD, g, x, alpha)


def leaky_relu(x: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x for x > 0, negative_slope x otherwise."""
    if inplace:
        return _inplace(leaky_relu, x, negative_slope)
    _tensor(x, "leaky_relu")
    d = _floating(x, "leaky_relu_cpu")
    out = _wrap(O.backend(d).unary_p("leaky_relu", d, negative_slope))
    return record(D.LEAKY_RELU, out, (x,), (x, negative_slope))


def leaky_relu_backward(g: Tensor, x: Tensor, negative_slope: float) -> Tensor:
    return _fused("leaky_relu_backward", D.LEAKY_RELU_BACKWARD, g, x, negative_slope)


def hardtanh(x: Tensor, min_val: float = -1.0, max_val: float = 1.0,
             inplace: bool = False) -> Tensor:
    """x clamped to [min_val, max_val]."""
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")
    if inplace:
        return _inplace(hardtanh, x, min_val, max_val)
    _tensor(x, "hardtanh")
    d = x._data
    if d.dtype == np.bool_:
        raise RuntimeError("Bool inputs not supported for hardtanh")
    out = _wrap(O.backend(d).unary_p("hardtanh", d, min_val, max_val))
    return record(D.HARDTANH, out, (x,), (x, min_val, max_val))


def hardtanh_backward(g: Tensor, x: Tensor, min_val: float, max_val: float) -> Tensor:
    return _fused("hardtanh_backward", D.HARDTANH_BACKWARD, g, x, min_val, max_val)


def relu6(x: Tensor, inplace: bool = False) -> Tensor:
    return hardtanh(x, 0.0, 6.0, inplace)


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """x Phi(x) (Phi the standard normal cdf); with approximate='tanh',
    0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x**3)))."""
    if approximate not in ("none", "tanh"):
        raise RuntimeError("approximate argument must be either none or tanh.")
    _tensor(x, "gelu")
    d = _floating(x, "GeluKernelImpl")
    out = _wrap(O.backend(d).unary("gelu" if approximate == "none" else "gelu_tanh", d))
    return record(D.GELU, out, (x,), (x, approximate))


def gelu_backward(g: Tensor, x: Tensor, approximate: str) -> Tensor:
    kname = "gelu_backward" if approximate == "none" else "gelu_tanh_backward"
    tg, tx, gd, xd = O.operands(g, x)
    out = _wrap(O.backend(gd).binary(kname, gd, xd, _shape(gd, xd)))
    return record(D.GELU_BACKWARD, out, (tg, tx), (tg, tx, approximate))


def silu(x: Tensor, inplace: bool = False) -> Tensor:
    """x sigmoid(x)."""
    if inplace:
        return _inplace(silu, x)
    _tensor(x, "silu")
    d = _floating(x, "silu_cpu")
    out = _wrap(O.backend(d).unary("silu", d))
    return record(D.SILU, out, (x,), (x,))


def silu_backward(g: Tensor, x: Tensor) -> Tensor:
    return _fused("silu_backward", D.SILU_BACKWARD, g, x)


def mish(x: Tensor, inplace: bool = False) -> Tensor:
    """x tanh(softplus(x))."""
    if inplace:
        return _inplace(mish, x)
    _tensor(x, "mish")
    d = _floating(x, "mish_cpu")
    out = _wrap(O.backend(d).unary("mish", d))
    return record(D.MISH, out, (x,), (x,))


def mish_backward(g: Tensor, x: Tensor) -> Tensor:
    return _fused("mish_backward", D.MISH_BACKWARD, g, x)


# --------------------------------------------------------------------------- exports

__all__ = ["sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh",
           "atanh", "arcsin", "arccos", "arctan", "arcsinh", "arccosh", "arctanh", "log1p", "expm1", "log2", "log10", "exp2", "rsqrt", "erf",
           "square", "floor", "ceil", "round", "trunc", "fix", "fmod", "remainder",
           "floor_divide", "atan2",
           "arctan2", "logaddexp", "lerp", "addcmul", "addcdiv"]

METHODS: dict = {name: globals()[name] for name in __all__}
