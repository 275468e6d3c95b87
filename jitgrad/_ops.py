"""The op layer: each primitive's Python path.

A primitive checks its operands (shapes, dtypes, devices: the errors a user sees are raised
here, before any kernel runs), promotes dtypes, calls its kernel through the backend of the
operands' storage, and records a node whose rule lives in ``derivatives.py``.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from . import _device, _dtype
from . import derivatives as D
from .autograd import grad_mode
from .autograd.graph import OUTPUT, record, record_pair
from .kernels import cpu
from .kernels import elementwise as _elementwise
from .tensor import Tensor, _wrap_dim

_wrap = Tensor._wrap
_BACKENDS = {np.ndarray: cpu}
_TORCH_NAMES = {"float32": "Float", "float64": "Double", "int64": "Long", "int32": "Int",
                "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool"}
_CPP_NAMES = {"float32": "float", "float64": "double", "int64": "long int", "int32": "int",
              "int16": "short int", "int8": "signed char", "uint8": "unsigned char",
              "bool": "bool"}  # the element type names some of torch's messages use


def backend(data):
    """The kernel namespace for a tensor's storage."""
    return _BACKENDS[type(data)]


def backend2(ad, bd):
    """The kernel namespace for a pair of operands, where either may be a host 0-d constant
    (a Python number's operand) beside a device array."""
    return _BACKENDS[type(bd) if ad.__class__ is np.ndarray else type(ad)]


def torch_name(np_dtype) -> str:
    return _TORCH_NAMES[np.dtype(np_dtype).name]


# --------------------------------------------------------------------------- shapes

_bcache: dict = {}


def broadcast_shapes(sa: tuple, sb: tuple) -> tuple:
    """The broadcast of two shapes, with torch's error when they do not broadcast."""
    key = (sa, sb)
    r = _bcache.get(key)
    if r is None:
        na, nb = len(sa), len(sb)
        n = na if na > nb else nb
        out = []
        for i in range(n - 1, -1, -1):  # torch reports the rightmost mismatch
            a = sa[i - n + na] if i >= n - na else 1
            b = sb[i - n + nb] if i >= n - nb else 1
            if a != b and a != 1 and b != 1:
                raise RuntimeError(
                    f"The size of tensor a ({a}) must match the size of tensor b ({b}) at "
                    f"non-singleton dimension {i}")
            out.append(b if a == 1 else a)
        r = tuple(reversed(out))
        if len(_bcache) > 4096:
            _bcache.clear()
        _bcache[key] = r
    return r


def expandable(shape: tuple, target: tuple) -> bool:
    """Whether `shape` broadcasts to `target`."""
    if len(shape) > len(target):
        return False
    for s, t in zip(reversed(shape), reversed(target)):
        if s != t and s != 1:
            return False
    return True


def dims_of(dim, ndim: int) -> tuple:
    """Normalise an int or a sequence of ints to sorted, distinct, non-negative dims."""
    if isinstance(dim, (int, np.integer)):
        return (_wrap_dim(int(dim), ndim),)
    dims = [_wrap_dim(int(d), ndim) for d in dim]
    if len(set(dims)) != len(dims):
        d = next(d for d in dims if dims.count(d) > 1)
        raise RuntimeError(f"dim {d} appears multiple times in the list of dims")
    return tuple(sorted(dims))


# --------------------------------------------------------------------------- operands

def _scalar(v):
    """A Python number from a Python or numpy scalar; None if `v` is not a number."""
    if isinstance(v, (bool, int, float)):
        return v
    if isinstance(v, np.generic) and v.dtype.kind in "biuf":
        return v.item()
    return None


def operands(a, b):
    """Promote a pair of operands (tensors or numbers) to tensors of one dtype.

    Returns (ta, tb, ad, bd): the tensors taking part in the graph (numbers wrapped as 0-d
    tensors that need no grad) and their data converted to the common dtype.
    """
    if isinstance(a, Tensor):
        ad = a._data
        if isinstance(b, Tensor):
            bd = b._data
            if ad.__class__ is not bd.__class__:
                a, b, ad, bd = _same_device(a, b)
            if ad.dtype != bd.dtype:
                dt = _dtype.result_type(a, b).np
                if ad.dtype != dt:
                    ad = ad.astype(dt)
                if bd.dtype != dt:
                    bd = bd.astype(dt)
            return a, b, ad, bd
        s = _scalar(b)
        if s is None:
            raise TypeError(f"unsupported operand type: {type(b).__name__}")
        dt = _scalar_result(ad.dtype, s)
        if ad.dtype != dt:
            ad = ad.astype(dt)
        tb = constant(s, dt)
        return a, tb, ad, tb._data
    if not isinstance(b, Tensor):  # two numbers (where(mask, 1, 0)): a becomes a 0-d tensor
        s = _scalar(a)
        if s is None:
            raise TypeError(f"unsupported operand type: {type(a).__name__}")
        a = constant(s, np.dtype(np.bool_) if isinstance(s, bool) else
                     _dtype.get_default_dtype().np if isinstance(s, float) else
                     np.dtype(np.int64))
        return operands(a, b)
    tb, ta, bd, ad = operands(b, a)
    return ta, tb, ad, bd


def device_error(d1, d2) -> RuntimeError:
    return RuntimeError(f"Expected all tensors to be on the same device, but found at least "
                        f"two devices, {d1} and {d2}!")


def check_same_device(*tensors) -> None:
    """Raise torch's error unless every tensor's storage is on one device."""
    cls = tensors[0]._data.__class__
    for t in tensors:
        if t._data.__class__ is not cls:
            raise device_error(tensors[0].device, t.device)


def _same_device(a, b) -> tuple:
    """Operands on two devices: a 0-d CPU tensor joins a CUDA one (torch treats it as a
    number: copied over when it needs a gradient, else passed to the kernel by value);
    anything else is torch's error."""
    if a._data.ndim == 0 and a._data.__class__ is np.ndarray:
        if a._requires_grad:
            a = to_device(a, b.device)
        return a, b, a._data, b._data
    if b._data.ndim == 0 and b._data.__class__ is np.ndarray:
        if b._requires_grad:
            b = to_device(b, a.device)
        return a, b, a._data, b._data
    raise device_error(a.device, b.device)


_constants: dict = {}


def constant(s, dt) -> Tensor:
    """A 0-d tensor holding the number `s` in dtype `dt`: the operand a Python number becomes.
    Shared between calls (its buffer is read-only), so ``x * 2`` allocates no operand."""
    key = (s.__class__, s, dt)
    t = _constants.get(key)
    if t is None:
        try:
            a = np.array(s, dtype=dt)
        except OverflowError:  # e.g. -1 with a uint8 tensor: torch wraps it around, so do we
            a = np.array(s).astype(dt)
        a.flags.writeable = False
        t = _wrap(a)
        if len(_constants) > 4096:
            _constants.clear()
        _constants[key] = t
    return t


def _scalar_result(dt: np.dtype, s) -> np.dtype:
    kind = dt.kind
    if kind == "f" or (kind in "iu" and not isinstance(s, float)) or isinstance(s, bool):
        return dt
    return _dtype.get_default_dtype().np if isinstance(s, float) else np.dtype(np.int64)


def as_tensor_operand(v, like: Tensor) -> Tensor:
    if isinstance(v, Tensor):
        return v
    s = _scalar(v)
    if s is None:
        raise TypeError(f"expected a Tensor or a number, got {type(v).__name__}")
    return _wrap(np.array(s, dtype=_scalar_result(like._data.dtype, s)))


def check_inplace(t: Tensor) -> None:
    """Refuse in-place changes that would corrupt the graph (see _inplace.py)."""
    from . import _inplace

    _inplace.check_inplace(t)


# --------------------------------------------------------------------------- elementwise

_FLAT = _elementwise.FLAT  # body name -> {dtype: serial flat kernel}, once compiled
_FLAT_ADD = _FLAT.setdefault("add", {})
_nd = np.ndarray
_empty = np.empty
_SMALL = _elementwise.PARALLEL_MIN
_grad_state = grad_mode.state


def _binary(kname: str, rule, a, b, save: bool = True):
    ta, tb, ad, bd = operands(a, b)
    shape = ad.shape if ad.shape == bd.shape else broadcast_shapes(ad.shape, bd.shape)
    out = _wrap(backend2(ad, bd).binary(kname, ad, bd, shape))
    return record(rule, out, (ta, tb), (ta, tb) if save else ())


def _arith(kname: str, rule, save: bool, alpha: bool):
    """The function of a binary arithmetic primitive (add, sub, mul, maximum, minimum).

    Its first lines are the common case in as little Python as possible: two CPU tensors of
    one dtype and one shape, small enough for the serial kernel, called straight through its
    flat kernel and recorded with ``record_pair``. Anything else, and the first call of a
    kernel, takes ``_binary``. With `alpha`, the function takes torch's ``alpha=``
    (``a + alpha * b``)."""

    def op(a, b, *, alpha=1):
        if alpha != 1:
            if not alpha_ok:
                raise TypeError(f"{kname}() got an unexpected keyword argument 'alpha'")
            if kname == "sub":
                _sub_check(a, b)
            b = mul(b, alpha)
        if isinstance(a, Tensor) and isinstance(b, Tensor):
            ad = a._data
            bd = b._data
            if ad.__class__ is _nd and bd.__class__ is _nd:
                dt = ad.dtype
                sa = ad.shape
                # (Layouts need no check: a strided 1-D operand gets its own specialisation
                # of the kernel, and reshape(-1) copies an n-D one that is not contiguous.)
                if dt is bd.dtype and sa == bd.shape and ad.size < _SMALL:
                    k = flat.get(dt)
                    if k is not None:
                        od = _empty(sa, dt)
                        if len(sa) == 1:
                            k(ad, bd, od)
                        else:
                            k(ad.reshape(-1), bd.reshape(-1), od.reshape(-1))
                        out = _wrap(od)
                        if _grad_state.enabled and (a._requires_grad or b._requires_grad):
                            m = (sa, dt)
                            record_pair(rule, out, a, b, save, (m, m))
                        return out
        if kname == "sub":
            _sub_check(a, b)
        return _binary(kname, rule, a, b, save)

    alpha_ok = alpha
    flat = _FLAT.setdefault(kname, {})
    op.__name__ = op.__qualname__ = kname
    return op


def _sub_check(a, b) -> None:
    """torch refuses a bool operand (tensor or Python bool) in a subtraction."""
    ab, bb = _is_bool(a), _is_bool(b)
    if ab and bb:
        raise RuntimeError(
            "Subtraction, the `-` operator, with two bool tensors is not supported. Use the "
            "`^` or `logical_xor()` operator instead.")
    if ab or bb:
        raise RuntimeError(
            "Subtraction, the `-` operator, with a bool tensor is not supported. If you are "
            "trying to invert a mask, use the `~` or `logical_not()` operator instead.")


# (A bool "sub" kernel is never compiled, since _sub_check refuses bool first, so sub's fast
# path cannot reach one.)
add = _arith("add", D.ADD, False, True)
sub = _arith("sub", D.SUB, False, True)
mul = _arith("mul", D.MUL, True, False)


def rsub(x: Tensor, s):
    """s - x for a number s."""
    _sub_check(s, x)
    tx, ts, xd, sd = operands(x, s)
    out = _wrap(backend(xd).binary("sub", sd, xd, xd.shape))
    return record(D.RSUB, out, (tx,))


def div(a, b, *, rounding_mode=None):
    if rounding_mode is not None:
        from ._pointwise import div_rounded

        return div_rounded(a, b, rounding_mode)
    ta, tb, ad, bd = operands(a, b)
    if ad.dtype.kind != "f":
        dt = _dtype.get_default_dtype().np
        ad, bd = ad.astype(dt), bd.astype(dt)
    shape = ad.shape if ad.shape == bd.shape else broadcast_shapes(ad.shape, bd.shape)
    out = _wrap(backend2(ad, bd).binary("div", ad, bd, shape))
    return record(D.DIV, out, (ta, tb), (ta, tb))


def rdiv(x: Tensor, s):
    """s / x for a number s, as torch computes it: reciprocal(x) * s."""
    return mul(reciprocal(x), s)


def _float_input(x: Tensor):
    """x's data, converted to the default float dtype if it is not floating point."""
    d = x._data
    if d.dtype.kind != "f":
        d = d.astype(_dtype.get_default_dtype().np)
    return d


def _unary_float(kname: str, rule, x: Tensor, save_output: bool):
    d = _float_input(x)
    out = _wrap(backend(d).unary(kname, d))
    return record(rule, out, (x,), (OUTPUT,) if save_output else (x,))


def exp(x: Tensor):
    return _unary_float("exp", D.EXP, x, True)


def log(x: Tensor):
    return _unary_float("log", D.LOG, x, False)


def sqrt(x: Tensor):
    return _unary_float("sqrt", D.SQRT, x, True)


def tanh(x: Tensor):
    return _unary_float("tanh", D.TANH, x, True)


def sigmoid(x: Tensor):
    return _unary_float("sigmoid", D.SIGMOID, x, True)


def reciprocal(x: Tensor):
    d = _float_input(x)
    one = np.ones((), dtype=d.dtype)
    out = _wrap(backend(d).binary("div", one, d, d.shape))
    return record(D.RECIPROCAL, out, (x,), (OUTPUT,))


def neg(x: Tensor):
    if x._data.dtype == np.bool_:
        raise RuntimeError(
            "Negation, the `-` operator, on a bool tensor is not supported. If you are trying "
            "to invert a mask, use the `~` or `logical_not()` operator instead.")
    out = _wrap(backend(x._data).unary("neg", x._data))
    return record(D.NEG, out, (x,))


def abs(x: Tensor):  # noqa: A001 - torch's name
    out = _wrap(backend(x._data).unary("abs", x._data))
    return record(D.ABS, out, (x,), (x,))


def sign(x: Tensor):
    out = _wrap(backend(x._data).unary("sign", x._data))
    return record(D.SIGN, out, (x,))


def relu(x: Tensor):
    out = _wrap(backend(x._data).unary("relu", x._data))
    return record(D.RELU, out, (x,), (OUTPUT,))


def _fused_backward(kname: str, rule, g: Tensor, y: Tensor):
    """A fused backward primitive f(g, y): one kernel, itself differentiable."""
    ta, tb, gd, yd = operands(g, y)
    shape = gd.shape if gd.shape == yd.shape else broadcast_shapes(gd.shape, yd.shape)
    out = _wrap(backend2(gd, yd).binary(kname, gd, yd, shape))
    return record(rule, out, (ta, tb), (ta, tb))


def tanh_backward(g: Tensor, y: Tensor):
    return _fused_backward("tanh_backward", D.TANH_BACKWARD, g, y)


def sigmoid_backward(g: Tensor, y: Tensor):
    return _fused_backward("sigmoid_backward", D.SIGMOID_BACKWARD, g, y)


def relu_backward(g: Tensor, y: Tensor):
    return _fused_backward("relu_backward", D.RELU_BACKWARD, g, y)


# Exponents that torch computes with other kernels (x ** 0.5 is sqrt: -0 at -0, nan at -inf).
_POW_KERNELS = {1: None, 2: "square", 0.5: "sqrt", -0.5: "rsqrt"}


def _pow_check(d) -> None:
    if d.dtype == np.bool_:
        raise NotImplementedError('"pow" not implemented for \'Bool\'')


def pow(a, b):  # noqa: A001 - torch's name
    if isinstance(a, Tensor) and not isinstance(b, Tensor):
        s = _scalar(b)
        if s is None:
            raise TypeError(f"pow(): unsupported exponent type {type(b).__name__}")
        d = a._data
        dt = _scalar_result(d.dtype, s)  # promotes as torch does: bool ** 2 is int64
        if d.dtype != dt:
            d = d.astype(dt)
        if d.dtype.kind in "iu" and s < 0:
            raise RuntimeError("Integers to negative integer powers are not allowed.")
        K = backend(d)
        if d.dtype == np.bool_ and s in (0, 1):  # torch fills or copies: no bool kernel
            out = _wrap(K.full(d.shape, True, d.dtype) if s == 0 else K.copy(d))
            return record(D.POW_SCALAR, out, (a,), (a, s))
        _pow_check(d)
        if d.dtype.kind == "f" and s in _POW_KERNELS:  # torch's exact special cases
            kname = _POW_KERNELS[s]
            out = _wrap(K.copy(d) if kname is None else K.unary(kname, d))
        elif d.dtype.kind == "f" and s == -1:
            out = _wrap(K.binary("div", np.ones((), dtype=d.dtype), d, d.shape))
        else:
            out = _wrap(K.binary("pow", d, np.array(s, dtype=d.dtype), d.shape))
        return record(D.POW_SCALAR, out, (a,), (a, s))
    if not isinstance(a, Tensor):
        s = _scalar(a)
        if s is None:
            raise TypeError(f"pow(): unsupported base type {type(a).__name__}")
        _, tb, sd, bd = operands(s, b)
        _pow_check(bd)
        out = _wrap(backend(bd).binary("pow", sd, bd, bd.shape))
        return record(D.POW_BASE, out, (tb,), (s, OUTPUT))
    ta, tb, ad, bd = operands(a, b)
    _pow_check(ad)
    shape = ad.shape if ad.shape == bd.shape else broadcast_shapes(ad.shape, bd.shape)
    out = _wrap(backend2(ad, bd).binary("pow", ad, bd, shape))
    return record(D.POW_TENSOR, out, (ta, tb), (ta, tb, OUTPUT))


def _compare(kname: str, a, b):
    _, _, ad, bd = operands(a, b)
    shape = ad.shape if ad.shape == bd.shape else broadcast_shapes(ad.shape, bd.shape)
    return _wrap(backend2(ad, bd).binary(kname, ad, bd, shape, out_dtype=np.bool_))


def eq(a, b):
    return _compare("eq", a, b)


def ne(a, b):
    return _compare("ne", a, b)


def lt(a, b):
    return _compare("lt", a, b)


def le(a, b):
    return _compare("le", a, b)


def gt(a, b):
    return _compare("gt", a, b)


def ge(a, b):
    return _compare("ge", a, b)


def _logical(kname: str, a, b):
    _, _, ad, bd = operands(a, b)
    if ad.dtype != np.bool_:
        ad, bd = ad.astype(np.bool_), bd.astype(np.bool_)
    shape = ad.shape if ad.shape == bd.shape else broadcast_shapes(ad.shape, bd.shape)
    return _wrap(backend2(ad, bd).binary(kname, ad, bd, shape, out_dtype=np.bool_))


def logical_and(a, b):
    return _logical("logical_and", a, b)


def logical_or(a, b):
    return _logical("logical_or", a, b)


def logical_not(x: Tensor):
    d = x._data.astype(np.bool_) if x._data.dtype != np.bool_ else x._data
    return _wrap(backend(d).unary("logical_not", d))


def bitwise_and(a, b):
    if _is_bool(a) and _is_bool(b):
        return logical_and(a, b)
    raise TypeError("& is supported on bool tensors only")


def bitwise_or(a, b):
    if _is_bool(a) and _is_bool(b):
        return logical_or(a, b)
    raise TypeError("| is supported on bool tensors only")


def logical_xor(a, b):
    """Exactly one of a and b true (each taken as bool): their bool values differ."""
    return _logical("ne", a, b)


def bitwise_xor(a, b):
    if _is_bool(a) and _is_bool(b):
        return logical_xor(a, b)
    raise TypeError("^ is supported on bool tensors only")


def positive(x: Tensor):
    """x itself (unary +); torch refuses it for bool tensors."""
    if x._data.dtype == np.bool_:
        raise RuntimeError("The `+` operator, on a bool tensor is not supported.")
    return x


def bitwise_not(x: Tensor):
    if x._data.dtype != np.bool_:
        raise TypeError("~ is supported on bool tensors only")
    return logical_not(x)


def _is_bool(v) -> bool:
    return isinstance(v, bool) or (isinstance(v, Tensor) and v._data.dtype == np.bool_)


maximum = _arith("maximum", D.MAXIMUM, True, False)
minimum = _arith("minimum", D.MINIMUM, True, False)


_NO_ARG = object()


def where(cond: Tensor, a=_NO_ARG, b=_NO_ARG):
    if a is _NO_ARG and b is _NO_ARG:  # where(condition): nonzero(condition, as_tuple=True)
        from ._composite import nonzero

        return nonzero(cond, as_tuple=True)
    if a is _NO_ARG or b is _NO_ARG:
        raise TypeError("where() takes a condition alone, or a condition, input and other")
    if not isinstance(cond, Tensor) or cond._data.dtype != np.bool_:
        got = torch_name(cond._data.dtype) if isinstance(cond, Tensor) else type(cond).__name__
        raise RuntimeError(
            f"where expected condition to be a boolean tensor, but got a tensor with dtype {got}")
    ta, tb, ad, bd = operands(a, b)
    K = backend(cond._data)
    for t, d in ((ta, ad), (tb, bd)):  # (a number's 0-d host operand goes anywhere)
        if d.__class__ is not cond._data.__class__ and (d.ndim or t._requires_grad):
            raise device_error(cond.device, t.device)
    shape = broadcast_shapes(cond._data.shape, broadcast_shapes(ad.shape, bd.shape))
    out = _wrap(K.ternary("where", cond._data, ad, bd, shape))
    return record(D.WHERE, out, (ta, tb), (cond,))


def clamp(x: Tensor, min=None, max=None, *, _rule=None):  # noqa: A002 - torch's names
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        # min(max(x, lo), hi) by the maximum/minimum kernels; the gradient is torch's
        # (x's where lo <= x <= hi, a bound's where it clipped), not maximum's tie split
        with grad_mode.no_grad():
            out = x
            if min is not None:
                out = maximum(out, min)
            if max is not None:
                out = minimum(out, max)
        bounds = tuple(b if isinstance(b, Tensor) or b is None else
                       as_tensor_operand(b, x) for b in (min, max))
        if bounds[0] is not None and bounds[1] is not None:
            return record(D.CLAMP_TENSOR, out, (x, *bounds), (x, *bounds))
        if bounds[0] is not None:
            return record(D.CLAMP_MIN_TENSOR, out, (x, bounds[0]), (x, bounds[0]))
        return record(D.CLAMP_MAX_TENSOR, out, (x, bounds[1]), (x, bounds[1]))
    d = x._data
    if d.dtype.kind != "f" and any(isinstance(v, float) for v in (min, max)):
        d = d.astype(_dtype.get_default_dtype().np)
    if d.dtype.kind == "f":
        lo = -np.inf if min is None else min
        hi = np.inf if max is None else max
    else:
        info = np.iinfo(d.dtype) if d.dtype.kind in "iu" else None
        lo = (info.min if info else 0) if min is None else min
        hi = (info.max if info else 1) if max is None else max
    lo_a, hi_a = np.array(lo, dtype=d.dtype), np.array(hi, dtype=d.dtype)
    out = _wrap(backend(d).ternary("clamp", d, lo_a, hi_a, d.shape))
    return record(_rule or D.CLAMP, out, (x,), (x, min, max))


def accumulate(existing: Tensor, g: Tensor) -> Tensor:
    """existing + g where the engine owns `existing`: summed into its buffer."""
    ed = existing._data
    gd = g._data
    if gd.dtype != ed.dtype or not expandable(gd.shape, ed.shape) or not ed.flags.c_contiguous \
            or not ed.flags.writeable:
        return add(existing, g)
    backend(ed).binary("add", ed, gd, ed.shape, out=ed)
    return existing


def add_into(dst: Tensor, src: Tensor) -> None:
    """dst += src, in dst's buffer (gradient accumulation into ``.grad``)."""
    dd = dst._data
    sd = src._data
    if dd.__class__ is np.ndarray and sd.__class__ is np.ndarray and dd.dtype is sd.dtype:
        sh = dd.shape
        if sh == sd.shape and dd.size < _SMALL and dd.flags.writeable:
            k = _FLAT_ADD.get(dd.dtype)
            if k is not None:  # as _binary's fast path
                if len(sh) == 1:
                    k(dd, sd, dd)
                    return
                if dd.flags.c_contiguous:
                    d = dd.reshape(-1)
                    k(d, sd.reshape(-1), d)
                    return
    if sd.dtype != dd.dtype:
        sd = sd.astype(dd.dtype)
    if dd.flags.c_contiguous and dd.flags.writeable:
        backend(dd).binary("add", dd, sd, dd.shape, out=dd)
    else:
        dst._data = backend(dd).binary("add", dd, sd, dd.shape)


# --------------------------------------------------------------------------- reductions

def _reduce_dims(x: Tensor, dim) -> tuple:
    nd = x._data.ndim
    if dim is None or (not isinstance(dim, (int, np.integer)) and len(dim) == 0):
        return tuple(range(nd))
    dims = dims_of(dim, nd)
    return dims if nd else ()  # a 0-d tensor accepts dim 0 or -1 and has nothing to reduce


def _sum_data(d: np.ndarray, dims: tuple, keepdim: bool, out_dtype, scale=1.0) -> np.ndarray:
    K = backend(d)
    broadcast = bool(dims) and d.dtype == out_dtype and d.dtype.kind == "f" and d.size > 0
    if broadcast:
        st = d.strides
        for i in dims:
            if st[i] != 0:
                broadcast = False
                break
    if broadcast:
        # Every reduced dim is a broadcast (an expanded gradient, as mean's backward makes):
        # the sum is one slice times the count, with no pass over the expanded elements.
        n = 1
        index = [slice(None)] * d.ndim
        kept = list(d.shape)
        for i in dims:
            n *= d.shape[i]
            index[i] = slice(0, 1)
            kept[i] = None
        one = d[tuple(index)]
        r = K.binary("mul", one, np.array(n * scale, dtype=d.dtype), one.shape)
        if keepdim:
            return r
        kept_shape = tuple(s for s in kept if s is not None)
    else:
        a3, kept_shape = K.as_3d(d, dims)
        r = K.sum_(a3, out_dtype, scale)
    if keepdim:
        return r.reshape(tuple(1 if i in dims else n for i, n in enumerate(d.shape)))
    return r.reshape(kept_shape)


def sum(x: Tensor, dim=None, keepdim: bool = False, *, dtype=None):  # noqa: A001
    d = x._data
    if dtype is not None:
        d = d.astype(_dtype.to_dtype(dtype).np)
    # integers sum as int64 unless a dtype is asked for
    out_dtype = d.dtype if d.dtype.kind == "f" or dtype is not None else np.dtype(np.int64)
    dims = _reduce_dims(x, dim)
    out = _wrap(_sum_data(d, dims, keepdim, out_dtype))
    if dim is None:
        return record(D.SUM, out, (x,), (x._data.shape,))
    return record(D.SUM_DIM, out, (x,), (x._data.shape, dims, keepdim))


def mean(x: Tensor, dim=None, keepdim: bool = False, *, dtype=None):
    d = x._data
    if dtype is not None:
        d = d.astype(_dtype.to_dtype(dtype).np)
    if d.dtype.kind != "f":
        raise RuntimeError(
            "mean(): could not infer output dtype. Input dtype must be either a floating point "
            f"or complex dtype. Got: {torch_name(d.dtype)}")
    dims = _reduce_dims(x, dim)
    n = 1
    for i in dims:
        n *= d.shape[i]
    out = _wrap(_sum_data(d, dims, keepdim, d.dtype, 1.0 / n if n else np.nan))
    if dim is None:
        return record(D.MEAN, out, (x,), (x._data.shape, n))
    return record(D.MEAN_DIM, out, (x,), (x._data.shape, dims, keepdim, n))


return_types_max = namedtuple("max", ["values", "indices"])
return_types_min = namedtuple("min", ["values", "indices"])


def _extreme(x: Tensor, dim, keepdim: bool, want_max: bool, name: str):
    d = x._data
    K = backend(d)
    if dim is None:
        if d.size == 0:
            raise RuntimeError(
                f"{name}(): Expected reduction dim to be specified for input.numel() == 0. "
                "Specify the reduction dim with the 'dim' argument.")
        flat = d if d.flags.c_contiguous else d.copy()
        vals, _ = K.extreme(flat.reshape(1, d.size, 1), want_max)
        out = _wrap(vals.reshape(()))
        return record(D.MAX_ALL if want_max else D.MIN_ALL, out, (x,), (x, OUTPUT))
    if not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{name}(): dim must be an int, got {type(dim).__name__}")
    dm = _wrap_dim(int(dim), d.ndim)
    if d.ndim and d.shape[dm] == 0:
        raise IndexError(
            f"{name}(): Expected reduction dim {dm} to have non-zero size.")
    a3, kept_shape = K.as_3d(d, (dm,) if d.ndim else ())
    vals, idx = K.extreme(a3, want_max)
    shape = (tuple(1 if i == dm else n for i, n in enumerate(d.shape)) if keepdim
             else kept_shape)
    values = _wrap(vals.reshape(shape))
    indices = _wrap(idx.reshape(shape))
    record(D.MAX_DIM if want_max else D.MIN_DIM, values, (x,),
           (d.shape, dm, idx, keepdim))
    return (return_types_max if want_max else return_types_min)(values, indices)


def max(x: Tensor, dim=None, keepdim: bool = False):  # noqa: A001
    if isinstance(dim, Tensor):
        return maximum(x, dim)
    return _extreme(x, dim, keepdim, True, "max")


def min(x: Tensor, dim=None, keepdim: bool = False):  # noqa: A001
    if isinstance(dim, Tensor):
        return minimum(x, dim)
    return _extreme(x, dim, keepdim, False, "min")


def scatter_dim(g: Tensor, shape: tuple, dim: int, idx: np.ndarray, keepdim: bool):
    """Zeros of `shape` with g placed, along `dim`, at the positions `idx` (the backward of
    max/min over a dim)."""
    gd = g._data
    K = backend(gd)
    outer = int(np.prod(shape[:dim], dtype=np.int64))
    inner = int(np.prod(shape[dim + 1:], dtype=np.int64))
    res = K.scatter_dim(gd.reshape(outer, inner), idx.reshape(outer, inner), shape[dim])
    out = _wrap(res.reshape(shape))
    return record(D.SCATTER_DIM, out, (g,), (dim, idx, keepdim))


def gather_dim(x: Tensor, dim: int, idx: np.ndarray, keepdim: bool):
    """x's elements at positions `idx` along `dim` (the backward of scatter_dim)."""
    d = x._data
    K = backend(d)
    shape = d.shape
    outer = int(np.prod(shape[:dim], dtype=np.int64))
    inner = int(np.prod(shape[dim + 1:], dtype=np.int64))
    res = K.gather_dim((d if d.flags.c_contiguous else d.copy()).reshape(outer, shape[dim], inner),
                       idx.reshape(outer, inner))
    kept = tuple(1 if i == dim else n for i, n in enumerate(shape))
    if not keepdim:
        kept = kept[:dim] + kept[dim + 1:]
    out = _wrap(res.reshape(kept))
    return record(D.GATHER_DIM, out, (x,), (shape, dim, idx, keepdim))


def sum_to(g: Tensor, shape: tuple) -> Tensor:
    """Sum `g` down to `shape` (which broadcasts to g's shape): undoes a broadcast."""
    gs = g._data.shape
    lead = len(gs) - len(shape)
    dims = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and gs[lead + i] != 1)
    if not dims:
        return g
    d = g._data
    if not _grad_state.enabled:
        # No graph to record: sum the data directly (a gradient expanded over the summed
        # dims, as a mean's or a sum's backward makes, takes _sum_data's one-slice shortcut).
        out_dtype = d.dtype if d.dtype.kind == "f" else np.dtype(np.int64)
        return _wrap(_sum_data(d, dims, True, out_dtype).reshape(shape))
    r = sum(g, dims, keepdim=True)
    if lead:
        from . import _views

        r = _views.reshape(r, shape)
    return r


# --------------------------------------------------------------------------- matmul

def matmul(a: Tensor, b: Tensor, *, _bmm: bool = False):
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        raise TypeError("matmul(): both arguments must be tensors")
    ad, bd = a._data, b._data
    na, nb = ad.ndim, bd.ndim
    if na == 0 or nb == 0:
        raise RuntimeError(f"both arguments to matmul need to be at least 1D, but they are "
                           f"{na}D and {nb}D")
    if ad.__class__ is not bd.__class__:
        raise device_error(a.device, b.device)
    if ad.dtype != bd.dtype:
        raise RuntimeError(f"expected m1 and m2 to have the same dtype, but got: "
                           f"{_CPP_NAMES[ad.dtype.name]} != {_CPP_NAMES[bd.dtype.name]}")
    ka = ad.shape[-1]
    kb = bd.shape[-2] if nb > 1 else bd.shape[0]
    # Shape errors read as torch's, which depend on how it dispatches: mv/mm when both are at
    # most 2-D or when a's leading dims fold into rows without a copy, else a batched mm.
    fold = na >= 3 and nb <= 2 and all(
        ad.strides[i] == ad.strides[i + 1] * ad.shape[i + 1] for i in range(na - 2))
    rows = int(np.prod(ad.shape[:-1], dtype=np.int64))
    if na == 1 and nb == 1:
        if ka != kb:
            raise RuntimeError(
                f"inconsistent tensor size, expected tensor [{ka}] and src [{kb}] to have the "
                f"same number of elements, but got {ka} and {kb} elements respectively")
        name = D.DOT
    elif ka != kb and nb == 1 and (na == 2 or fold):
        raise RuntimeError(f"size mismatch, got input ({rows}), mat ({rows}x{ka}), vec ({kb})")
    elif ka != kb and (na <= 2 and nb <= 2 or fold):
        sb = "x".join(map(str, bd.shape[-2:]))
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({rows}x{ka} and {sb})")
    elif na == 2 and nb == 2:
        name = D.MM
    elif na == 2 and nb == 1:
        name = D.MV
    else:
        batch = broadcast_shapes(ad.shape[:-2], bd.shape[:-2] if nb > 1 else ())
        if ka != kb:
            n = int(np.prod(batch, dtype=np.int64))
            raise RuntimeError(f"Expected size for first two dimensions of batch2 tensor to be: "
                               f"[{n}, {ka}] but got: [{n}, {kb}].")
        name = D.BMM
    r = backend(ad).matmul(ad, bd)
    out = _wrap(np.asarray(r) if isinstance(r, np.generic) else r)  # numpy's 1-D @ 1-D
    out = record(name, out, (a, b), (a, b))
    if name is D.BMM and not _bmm and out._grad_fn is not None:
        out = _torch_last_step(out, a, na, nb)
    return out


def _torch_last_step(out: Tensor, a: Tensor, na: int, nb: int) -> Tensor:
    """torch computes a product of operands other than 1-D or 2-D through views around mm, mv
    or bmm, and names the result's grad_fn after the last view; jitgrad computes it in one
    primitive and adds a pass-through node of that name."""
    shape = out._data.shape
    if na == 1 and nb == 2:
        rule = D.MATMUL_SQUEEZE  # a.unsqueeze(0).mm(b).squeeze_(0)
    elif na == 2 and a._requires_grad:  # (b.mT folded).mm(a.t()) viewed, .mT.contiguous()
        rule = D.MATMUL_TRANSPOSE if 1 in shape[-2:] else D.CLONE
    else:
        rule = D.UNSAFE_VIEW  # _unsafe_view of the folded mm/mv or of bmm
    return record(rule, _wrap(out._data), (out,), (shape,) if rule is D.UNSAFE_VIEW else ())


# --------------------------------------------------------------------------- copies and casts

def clone(x: Tensor):
    out = _wrap(backend(x._data).copy(x._data))
    return record(D.CLONE, out, (x,))


def pin_memory(x: Tensor, device=None):
    """x copied into page-locked host memory, which the GPU driver copies to and from the
    device directly (x itself when it is already there); differentiable like clone. Each
    call allocates page-locked memory afresh, which is slow: pin buffers that are reused."""
    if x._data.__class__ is not np.ndarray:
        raise RuntimeError(f"cannot pin a CUDA tensor ({x.dtype}): only dense CPU tensors can "
                           "be pinned")
    from . import cuda

    R = cuda._backend().runtime  # raises when there is no GPU to pin memory for
    if R.is_pinned(x._data):
        return x
    return record(D.CLONE, _wrap(R.pinned_copy(x._data)), (x,))


def is_pinned(x: Tensor, device=None) -> bool:
    """Whether x lives in page-locked host memory (see pin_memory)."""
    if x._data.__class__ is not np.ndarray:
        return False
    from . import cuda

    K = cuda._state.get("backend")  # (nothing can be pinned before the backend loads)
    return K is not None and K.runtime.is_pinned(x._data)


def contiguous(x: Tensor):
    if x._data.flags.c_contiguous:
        return x
    return clone(x)


def to_device(x: Tensor, dev):
    """x copied to device `dev` (x itself when it is already there); differentiable."""
    src = x.device
    if src == dev:
        return x
    out = _wrap(_device.move(x._data, dev))
    return record(D.TO_DEVICE, out, (x,), (src,))


def to_dtype(x: Tensor, dt, copy: bool = False):
    """x converted to dtype `dt` (x itself when it already has it, unless `copy`)."""
    dt = _dtype.to_dtype(dt)
    d = x._data
    if d.dtype == dt.np:
        return clone(x) if copy else x
    out = _wrap(backend(d).cast(d, dt.np))
    if not dt.is_floating_point:
        return out  # integer results are not differentiable
    return record(D.TO_COPY, out, (x,))
