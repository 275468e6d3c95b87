"""Reductions, scans and softmax (see docs/architecture.md for how a primitive is built).

Public: prod, var, std, norm, logsumexp, amax, amin, argmax, argmin, any, all, cumsum,
cumprod, softmax, log_softmax (``__all__``, and Tensor methods through ``METHODS``). Their
backward passes are fused primitives of their own (``prod_backward``, ``var_backward``,
``logsumexp_backward``, ``extreme_backward``, ``cumprod_backward``,
``softmax_backward_data``), each with a row in ``derivatives.py`` so that gradients of
gradients work. Products and running products are differentiated without dividing by the
input, so zeros get torch's exact gradients; their second derivatives bottom out in two small
primitives, ``shift`` and the linear recurrence ``linrec``, whose own derivatives are written
in the same two (a closed set).

Reduced dims are normalised by ``_ops._reduce_dims`` (sorted, distinct, wrapped; ``None`` or
``()`` is every dim), and the kernels see a contiguous (outer, r, inner) block with the
reduced dims in the middle (``kernels/reduce.as_3d``).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from . import _ops as O
from . import _views as V
from . import derivatives as D
from .autograd.graph import OUTPUT, record
from .tensor import Tensor, _wrap_dim

__all__ = ["prod", "var", "std", "norm", "logsumexp", "amax", "amin", "argmax", "argmin",
           "any", "all", "cumsum", "cumprod", "softmax", "log_softmax"]

_wrap = Tensor._wrap


# --------------------------------------------------------------------------- helpers

def _kept(shape: tuple, dims: tuple, keepdim: bool) -> tuple:
    """The shape of a reduction of `shape` over `dims`."""
    if keepdim:
        return tuple(1 if i in dims else n for i, n in enumerate(shape))
    return tuple(n for i, n in enumerate(shape) if i not in dims)


def _numel(shape: tuple, dims: tuple) -> int:
    n = 1
    for d in dims:
        n *= shape[d]
    return n


def _dim_int(name: str, dim) -> None:
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
        raise TypeError(f"{name}(): argument 'dim' must be int, not {type(dim).__name__}")


def _contig(d):
    """`d` itself when C-contiguous, else a contiguous copy (numpy or CUDA storage)."""
    return d if d.flags.c_contiguous else d.copy()


def _flat3(d):
    """`d` as a contiguous (1, size, 1) block."""
    return _contig(d).reshape(1, d.size, 1)


def _block(d: np.ndarray, dim: int) -> np.ndarray:
    """`d` as a contiguous (outer, r, inner) block around `dim` (a 0-d array: (1, 1, 1))."""
    return O.backend(d).as_3d(d, (dim,) if d.ndim else ())[0]


def _as_keepdim(t: Tensor, shape: tuple, dims: tuple) -> Tensor:
    """A reduced tensor (keepdim or not) viewed with the reduced dims kept as size 1, so that
    it broadcasts against the input of `shape`."""
    return V.reshape(t, _kept(shape, dims, True)) if t._data.ndim != len(shape) else t


def _unspecified(dim) -> bool:
    """dim=None or an empty sequence: torch's "no dim given" for most reductions."""
    return dim is None or (not isinstance(dim, (int, np.integer)) and len(dim) == 0)


def _float_only(x: Tensor, what: str) -> None:
    if x._data.dtype.kind != "f":
        raise RuntimeError(what)


# --------------------------------------------------------------------------- prod

def prod(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:  # noqa: A002
    x = input if dtype is None else O.to_dtype(input, dtype)
    d = x._data
    if d.dtype.kind != "f":
        d = d.astype(np.int64)  # torch multiplies integers and bools in int64
    K = O.backend(d)
    if dim is None:
        out = _wrap(K.prod(_flat3(d), d.dtype).reshape(()))
        return record(D.PROD, out, (x,), (x,))
    _dim_int("prod", dim)
    dm = _wrap_dim(int(dim), d.ndim)
    dims = (dm,) if d.ndim else ()
    res = K.prod(_block(d, dm), d.dtype)
    out = _wrap(res.reshape(_kept(d.shape, dims, keepdim)))
    return record(D.PROD_DIM, out, (x,), (x, dm))


def prod_backward(g: Tensor, x: Tensor, dim) -> Tensor:
    """g (prod's output gradient) times the product of the other elements along `dim` (all
    elements when None): exact where x has zeros."""
    xd = x._data
    gd = g._data
    x3 = _flat3(xd) if dim is None else _block(xd, dim)
    out = _wrap(O.backend(xd).prod_backward(gd, x3).reshape(xd.shape))
    return record(D.PROD_BACKWARD, out, (g, x), (g, x, dim))


def _exclusive_products(x: Tensor, dim: int) -> tuple:
    """(E, F): the products of the elements before and after each position along `dim`,
    as differentiable ops (the second derivative of prod)."""
    E = _cumprod(shift(x, dim, 1, 1.0), dim, False)
    F = _cumprod(shift(x, dim, -1, 1.0), dim, True)
    return E, F


def prod_backward_vjp_x(gg: Tensor, g: Tensor, x: Tensor, dim) -> Tensor:
    """The gradient of <gg, prod_backward(g, x, dim)> with respect to x."""
    shape = x._data.shape
    if dim is None:
        if x._data.ndim == 0:
            return None  # prod_backward of a 0-d tensor is g itself
        return V.reshape(prod_backward_vjp_x(V.reshape(gg, -1), V.reshape(g, 1),
                                             V.reshape(x, -1), 0), shape)
    if x._data.ndim == 0:
        return None
    h = O.mul(gg, _as_keepdim(g, shape, (dim,)))
    E, F = _exclusive_products(x, dim)
    dE = cumprod_backward(O.mul(h, F), shift(x, dim, 1, 1.0), E, dim, False)
    dF = cumprod_backward(O.mul(h, E), shift(x, dim, -1, 1.0), F, dim, True)
    return O.add(shift(dE, dim, -1, 0.0), shift(dF, dim, 1, 0.0))


def prod_backward_vjp_g(gg: Tensor, g: Tensor, x: Tensor, dim) -> Tensor:
    """The gradient of <gg, prod_backward(g, x, dim)> with respect to g."""
    ones = _wrap(O.backend(x._data).full(g._data.shape, 1, x._data.dtype))
    others = prod_backward(ones, x, dim)
    dims = None if dim is None else (dim,)
    s = O.sum(O.mul(gg, others), dims)
    return V.reshape(s, g._data.shape)


# --------------------------------------------------------------------------- var and std

def _correction(name: str, unbiased, correction) -> float:
    if unbiased is not None and correction is not None:
        raise TypeError(f"{name}() received an invalid combination of arguments: 'unbiased' "
                        "and 'correction' cannot both be given")
    if unbiased is not None and not isinstance(unbiased, (bool, np.bool_)):
        raise TypeError(
            f"{name}(): argument 'unbiased' must be bool, not {type(unbiased).__name__}")
    if correction is not None:
        return correction
    return 0 if unbiased is False else 1


def _moments(x: Tensor, dim, unbiased, keepdim: bool, correction, take_sqrt: bool):
    name = "std" if take_sqrt else "var"
    if isinstance(dim, (bool, np.bool_)):  # x.var(False): the legacy positional `unbiased`
        dim, unbiased = None, dim
    c = _correction(name, unbiased, correction)
    _float_only(x, "std and var only support floating point and complex dtypes")
    d = x._data
    dims = O._reduce_dims(x, dim)
    n = _numel(d.shape, dims)
    if n - c <= 0:
        warnings.warn(
            f"{name}(): degrees of freedom is <= 0. Correction should be strictly less than "
            "the reduction factor (input numel divided by output numel).", UserWarning,
            stacklevel=3)
    K = O.backend(d)
    a3, _ = K.as_3d(d, dims)
    out = _wrap(K.moments(a3, float(c), take_sqrt).reshape(_kept(d.shape, dims, keepdim)))
    full = dim is None or d.ndim == 0
    if take_sqrt:
        return record(D.STD, out, (x,), (x, OUTPUT, dims, c, full))
    return record(D.VAR, out, (x,), (x, dims, c, full))


def var(input: Tensor, dim=None, unbiased=None, keepdim: bool = False, *,  # noqa: A002
        correction=None) -> Tensor:
    return _moments(input, dim, unbiased, keepdim, correction, False)


def std(input: Tensor, dim=None, unbiased=None, keepdim: bool = False, *,  # noqa: A002
        correction=None) -> Tensor:
    return _moments(input, dim, unbiased, keepdim, correction, True)


def var_backward(g: Tensor, x: Tensor, dims: tuple, scale: float) -> Tensor:
    """scale * g * (x - mean(x over dims)), g of the reduced shape."""
    xd = x._data
    K = O.backend(xd)
    x3, _ = K.as_3d(xd, dims)
    res = K.from_3d(K.var_backward(g._data, x3, scale), xd.shape, dims)
    return record(D.VAR_BACKWARD, _wrap(res), (g, x), (g, x, dims, scale))


def var_vjp(g: Tensor, x: Tensor, dims: tuple, correction: float, full: bool) -> Tensor:
    dof = _numel(x._data.shape, dims) - correction
    if full and dof <= 0:
        # torch: 2 / dof is infinite; the gradient is nan where x equals its mean, else inf
        xd = x._data
        dev = O.eq(x, O.mean(x))
        K = O.backend(xd)
        inf = _wrap(K.full(xd.shape, np.inf, xd.dtype))
        nan = _wrap(K.full(xd.shape, np.nan, xd.dtype))
        return O.mul(g, O.where(dev, nan, inf))
    scale = 2.0 / dof if dof != 0 else math.inf
    return var_backward(g, x, dims, scale)


def std_vjp(g: Tensor, x: Tensor, ans: Tensor, dims: tuple, correction: float,
            full: bool) -> Tensor:
    gv = O.where(O.ne(ans, 0), O.div(g, O.mul(ans, 2.0)), 0.0)
    return var_vjp(gv, x, dims, correction, full)


def var_backward_vjp_g(gg: Tensor, g: Tensor, x: Tensor, dims: tuple, scale: float):
    dev = O.sub(x, O.mean(x, dims, keepdim=True))
    s = O.mul(O.sum(O.mul(gg, dev), dims, keepdim=True), scale)
    return V.reshape(s, g._data.shape)


# --------------------------------------------------------------------------- norm

_NORM_NAMES = {math.inf: "inf", -math.inf: "-inf"}


def norm(input: Tensor, p="fro", dim=None, keepdim: bool = False,  # noqa: A002
         dtype=None) -> Tensor:
    x = input
    if isinstance(p, str):
        if p == "nuc":
            raise NotImplementedError("norm(p='nuc') (the nuclear norm) is not available in "
                                      "jitgrad; use p=2 or 'fro'")
        if p != "fro":
            raise RuntimeError(f"linalg.matrix_norm: Order {p} not supported.")
        if dim is not None and not isinstance(dim, (int, np.integer)) and len(dim) > 2:
            raise RuntimeError("linalg.matrix_norm: dim must be a 2-tuple. Got "
                               + " ".join(str(int(d)) for d in dim))
        p = 2.0
    p = 2.0 if p is None else float(p)
    if x._data.dtype.kind != "f":
        raise RuntimeError("linalg.vector_norm: Expected a floating point or complex tensor "
                           f"as input. Got {O.torch_name(x._data.dtype)}")
    if dtype is not None:
        x = O.to_dtype(x, dtype)
    d = x._data
    dims = O._reduce_dims(x, dim)
    if math.isinf(p):
        if _unspecified(dim) and d.size == 0:
            raise RuntimeError(
                f"linalg.vector_norm cannot compute the {_NORM_NAMES[p]} norm on an empty "
                "tensor because the operation does not have an identity")
        for i in dims:
            if d.shape[i] == 0:
                raise RuntimeError(
                    f"linalg.vector_norm cannot compute the {_NORM_NAMES[p]} norm on the "
                    f"dimension {i}because this dimension is empty and the operation does not "
                    "have an identity")
    K = O.backend(d)
    a3, _ = K.as_3d(d, dims)
    out = _wrap(K.vector_norm(a3, p).reshape(_kept(d.shape, dims, keepdim)))
    return record(D.NORM, out, (x,), (x, OUTPUT, p, dims))


def norm_vjp(g: Tensor, x: Tensor, ans: Tensor, p: float, dims: tuple):
    """torch's linalg_vector_norm_backward, in jitgrad ops (so it is differentiable)."""
    shape = x._data.shape
    g = _as_keepdim(g, shape, dims)
    n = _as_keepdim(ans, shape, dims)
    if p == 0:
        return None
    if p == 1:
        return O.mul(O.sign(x), g)
    if p == 2:
        return O.mul(x, O.where(O.ne(n, 0), O.div(g, n), 0.0))
    if math.isinf(p):
        ax = O.abs(x)
        mask = O.logical_or(O.eq(ax, n), O.ne(ax, ax))
        count = O.sum(mask, dims, keepdim=True)
        return O.mul(O.sign(x), O.mul(O.div(g, count), mask))
    if p < 1:
        scaled = O.mul(O.sign(x), O.where(O.ne(x, 0), O.pow(O.abs(x), p - 1), 0.0))
        return O.mul(O.mul(scaled, g), O.pow(n, 1 - p))
    scaled = (O.mul(O.sign(x), O.pow(O.abs(x), p - 1)) if p < 2
              else O.mul(x, O.pow(O.abs(x), p - 2)))
    return O.mul(scaled, O.where(O.ne(n, 0), O.div(g, O.pow(n, p - 1)), 0.0))


# --------------------------------------------------------------------------- logsumexp

def logsumexp(input: Tensor, dim, keepdim: bool = False) -> Tensor:  # noqa: A002
    x = input
    if dim is None:
        raise TypeError("logsumexp(): argument 'dim' must be tuple of ints, not NoneType")
    d = O._float_input(x)
    dims = O._reduce_dims(x, dim)
    K = O.backend(d)
    a3, _ = K.as_3d(d, dims)
    out = _wrap(K.logsumexp(a3).reshape(_kept(d.shape, dims, keepdim)))
    return record(D.LOGSUMEXP, out, (x,), (x, OUTPUT, dims))


def logsumexp_backward(g: Tensor, x: Tensor, res: Tensor, dims: tuple) -> Tensor:
    """g * exp(x - res) with g and res (logsumexp's output) of the reduced shape."""
    xd = x._data
    K = O.backend(xd)
    x3, _ = K.as_3d(xd, dims)
    out = K.from_3d(K.logsumexp_backward(g._data, x3, res._data), xd.shape, dims)
    return record(D.LOGSUMEXP_BACKWARD, _wrap(out), (g, x, res), (g, x, res, OUTPUT, dims))


def logsumexp_backward_vjp_g(gg, g, x, res, ans, dims):
    shape = x._data.shape
    w = O.exp(O.sub(x, _as_keepdim(res, shape, dims)))
    return V.reshape(O.sum(O.mul(gg, w), dims), g._data.shape)


def logsumexp_backward_vjp_res(gg, g, x, res, ans, dims):
    return V.reshape(O.neg(O.sum(O.mul(gg, ans), dims)), res._data.shape)


# --------------------------------------------------------------------------- amax, amin

def _extreme_dims(x: Tensor, dim, name: str) -> tuple:
    d = x._data
    dims = O._reduce_dims(x, dim)
    if d.size == 0:
        if _unspecified(dim):
            raise RuntimeError(
                f"{name}(): Expected reduction dim to be specified for input.numel() == 0. "
                "Specify the reduction dim with the 'dim' argument.")
        for i in dims:
            if d.shape[i] == 0:
                raise IndexError(f"{name}(): Expected reduction dim {i} to have non-zero size.")
    return dims


def _amax_amin(x: Tensor, dim, keepdim: bool, want_max: bool) -> Tensor:
    name = "amax" if want_max else "amin"
    dims = _extreme_dims(x, dim, name)
    d = x._data
    K = O.backend(d)
    a3, _ = K.as_3d(d, dims)
    out = _wrap(K.amax(a3, want_max).reshape(_kept(d.shape, dims, keepdim)))
    return record(D.AMAX if want_max else D.AMIN, out, (x,), (x, OUTPUT, dims))


def amax(input: Tensor, dim=(), keepdim: bool = False) -> Tensor:  # noqa: A002
    return _amax_amin(input, dim, keepdim, True)


def amin(input: Tensor, dim=(), keepdim: bool = False) -> Tensor:  # noqa: A002
    return _amax_amin(input, dim, keepdim, False)


def extreme_backward(g: Tensor, x: Tensor, v: Tensor, dims: tuple) -> Tensor:
    """g shared evenly among the positions where x equals its extreme v over `dims` (x and v
    are constants here: the mask they define is piecewise constant)."""
    xd = x._data
    K = O.backend(xd)
    x3, _ = K.as_3d(xd, dims)
    out = K.from_3d(K.extreme_backward(g._data, x3, v._data), xd.shape, dims)
    return record(D.EXTREME_BACKWARD, _wrap(out), (g,), (g, x, v, dims))


def extreme_backward_vjp(gg: Tensor, g: Tensor, x: Tensor, v: Tensor, dims: tuple):
    shape = x._data.shape
    mask = O.eq(x.detach(), _as_keepdim(v.detach(), shape, dims))
    picked = O.sum(O.where(mask, gg, 0.0), dims, keepdim=True)
    return V.reshape(O.div(picked, O.sum(mask, dims, keepdim=True)), g._data.shape)


# --------------------------------------------------------------------------- argmax, argmin

def _arg_extreme(x: Tensor, dim, keepdim: bool, want_max: bool) -> Tensor:
    name = "argmax" if want_max else "argmin"
    d = x._data
    if d.dtype == np.bool_:
        raise RuntimeError(f"{name}(): does not support bool input")
    K = O.backend(d)
    if dim is None:
        if d.size == 0:
            raise IndexError(
                f"{name}(): Expected reduction dim to be specified for input.numel() == 0.")
        _, idx = K.extreme(_flat3(d), want_max)
        return _wrap(idx.reshape((1,) * d.ndim if keepdim else ()))
    _dim_int(name, dim)
    dm = _wrap_dim(int(dim), d.ndim)
    dims = (dm,) if d.ndim else ()
    if d.ndim and d.shape[dm] == 0:
        raise IndexError(f"{name}(): Expected reduction dim {dm} to have non-zero size.")
    _, idx = K.extreme(_block(d, dm), want_max)
    return _wrap(idx.reshape(_kept(d.shape, dims, keepdim)))


def argmax(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A002
    return _arg_extreme(input, dim, keepdim, True)


def argmin(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A002
    return _arg_extreme(input, dim, keepdim, False)


# --------------------------------------------------------------------------- any, all

def _any_all(x: Tensor, dim, keepdim: bool, want_all: bool) -> Tensor:
    d = x._data
    out_dtype = np.uint8 if d.dtype == np.uint8 else np.bool_  # as torch
    K = O.backend(d)
    if _unspecified(dim) and dim is not None:  # torch reduces nothing for dim=()
        return _wrap(K.binary("ne", d, np.zeros((), d.dtype), d.shape, out_dtype=np.bool_)
                     .astype(out_dtype, copy=False))
    dims = O._reduce_dims(x, dim)
    a3, _ = K.as_3d(d, dims)
    return _wrap(K.any_all(a3, want_all, out_dtype).reshape(_kept(d.shape, dims, keepdim)))


def any(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001,A002
    return _any_all(input, dim, keepdim, False)


def all(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001,A002
    return _any_all(input, dim, keepdim, True)


# --------------------------------------------------------------------------- scans

def _scan_input(x: Tensor, dtype) -> Tensor:
    if dtype is not None:
        x = O.to_dtype(x, dtype)
    if x._data.dtype.kind != "f" and x._data.dtype != np.int64:
        x = _wrap(x._data.astype(np.int64))  # torch scans integers and bools in int64
    return x


def cumsum(input: Tensor, dim, *, dtype=None) -> Tensor:  # noqa: A002
    x = _scan_input(input, dtype)
    return _cumsum(x, _wrap_dim(dim, x._data.ndim), False)


def _cumsum(x: Tensor, dim: int, reverse: bool) -> Tensor:
    d = x._data
    out = _wrap(O.backend(d).cumsum(d, dim, d.dtype, reverse))
    return record(D.CUMSUM, out, (x,), (dim, reverse))


def cumprod(input: Tensor, dim, *, dtype=None) -> Tensor:  # noqa: A002
    x = _scan_input(input, dtype)
    return _cumprod(x, _wrap_dim(dim, x._data.ndim), False)


def _cumprod(x: Tensor, dim: int, reverse: bool) -> Tensor:
    d = x._data
    out = _wrap(O.backend(d).cumprod(d, dim, d.dtype, reverse))
    return record(D.CUMPROD, out, (x,), (x, OUTPUT, dim, reverse))


def cumprod_backward(g: Tensor, x: Tensor, y: Tensor, dim: int, reverse: bool) -> Tensor:
    """The gradient of y = cumprod(x, dim) (running from the end when `reverse`) for the
    output gradient g, computed without division."""
    xd = x._data
    out = O.backend(xd).cumprod_backward(g._data, xd, y._data, dim, reverse)
    return record(D.CUMPROD_BACKWARD, _wrap(out), (g, x, y), (g, x, y, dim, reverse))


def _cumprod_backward_parts(g: Tensor, x: Tensor, y: Tensor, dim: int, reverse: bool):
    """cumprod_backward(g, x, y) = shift(y, s, 1) * L with L = linrec(shift(x, -s, 0), g)
    running against the scan (s = +1 forwards): the pieces its own derivatives need."""
    s = -1 if reverse else 1
    a = shift(x, dim, -s, 0.0)
    return s, a, linrec(a, g, dim, not reverse)


def cumprod_backward_vjp_g(gg, g, x, y, dim, reverse):
    s, a, _ = _cumprod_backward_parts(g, x, y, dim, reverse)
    return linrec_adjoint(a, O.mul(gg, shift(y, dim, s, 1.0)), dim, not reverse)


def cumprod_backward_vjp_x(gg, g, x, y, dim, reverse):
    s, a, L = _cumprod_backward_parts(g, x, y, dim, reverse)
    da = linrec_vjp_a(O.mul(gg, shift(y, dim, s, 1.0)), a, L, dim, not reverse)
    return shift(da, dim, s, 0.0)  # a = shift(x, -s): its adjoint moves back by +s


def cumprod_backward_vjp_y(gg, g, x, y, dim, reverse):
    s, a, L = _cumprod_backward_parts(g, x, y, dim, reverse)
    return shift(O.mul(gg, L), dim, -s, 0.0)


def linrec(a: Tensor, b: Tensor, dim: int, reverse: bool) -> Tensor:
    """y[k] = a[k] * y[k - 1] + b[k] along `dim`, from y = 0 (y[k + 1] when `reverse`)."""
    ad, bd = a._data, b._data
    if bd.dtype != ad.dtype:
        bd = bd.astype(ad.dtype)
    if bd.shape != ad.shape:
        bd = np.broadcast_to(bd, ad.shape)
    out = _wrap(O.backend(ad).linrec(ad, bd, dim, reverse))
    return record(D.LINREC, out, (a, b), (a, OUTPUT, dim, reverse))


def linrec_adjoint(a: Tensor, g: Tensor, dim: int, reverse: bool) -> Tensor:
    """The gradient of linrec(a, b, dim, reverse) with respect to b, for output gradient g:
    the recurrence run the other way with coefficients moved by one."""
    s = -1 if reverse else 1
    return linrec(shift(a, dim, -s, 0.0), g, dim, not reverse)


def linrec_vjp_a(g, a, y, dim, reverse):
    s = -1 if reverse else 1
    return O.mul(linrec_adjoint(a, g, dim, reverse), shift(y, dim, s, 0.0))


def shift(x: Tensor, dim: int, by: int, fill: float) -> Tensor:
    """x moved by one position along `dim` (by = +1: towards higher indices), the vacated
    slot filled with `fill`."""
    out = _wrap(O.backend(x._data).shift(x._data, dim, by, fill))
    return record(D.SHIFT, out, (x,), (dim, by))


# --------------------------------------------------------------------------- softmax

def _softmax(x: Tensor, dim, dtype, log: bool) -> Tensor:
    name = "log_softmax" if log else "softmax"
    if dim is None:
        raise TypeError(f"{name}(): argument 'dim' (position 2) must be int, not NoneType")
    _dim_int(name, dim)
    dm = _wrap_dim(int(dim), x._data.ndim)
    if dtype is not None:
        x = O.to_dtype(x, dtype)
    d = x._data
    if d.dtype.kind != "f":
        last = "_lastdim" if dm == max(d.ndim - 1, 0) else ""
        raise NotImplementedError(f'"{name}{last}_kernel_impl" not implemented for '
                                  f"'{O.torch_name(d.dtype)}'")
    out = _wrap(O.backend(d).softmax(d, dm, log))
    return record(D.LOG_SOFTMAX if log else D.SOFTMAX, out, (x,), (OUTPUT, dm))


def softmax(input: Tensor, dim, dtype=None) -> Tensor:  # noqa: A002
    return _softmax(input, dim, dtype, False)


def log_softmax(input: Tensor, dim, dtype=None) -> Tensor:  # noqa: A002
    return _softmax(input, dim, dtype, True)


def softmax_backward_data(g: Tensor, y: Tensor, dim: int, log: bool) -> Tensor:
    """The gradient of y = softmax(x, dim) (log_softmax with `log`) for output gradient g."""
    yd = y._data
    gd = g._data
    if gd.dtype != yd.dtype:
        gd = gd.astype(yd.dtype)
    if gd.shape != yd.shape:
        gd = np.broadcast_to(gd, yd.shape)
    out = _wrap(O.backend(yd).softmax_backward(gd, yd, dim, log))
    rule = D.LOG_SOFTMAX_BACKWARD_DATA if log else D.SOFTMAX_BACKWARD_DATA
    return record(rule, out, (g, y), (g, y, dim))


def _implicit_dim(name: str, ndim: int) -> int:
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call "
                  "to include dim=X as an argument.", UserWarning, stacklevel=3)
    return 0 if ndim in (0, 1, 3) else 1


def functional_softmax(input: Tensor, dim=None, _stacklevel: int = 3,  # noqa: A002
                       dtype=None) -> Tensor:
    """torch.nn.functional.softmax: dim may be left out (torch's deprecated implicit dim)."""
    if dim is None:
        dim = _implicit_dim("softmax", input._data.ndim)
    return _softmax(input, dim, dtype, False)


def functional_log_softmax(input: Tensor, dim=None, _stacklevel: int = 3,  # noqa: A002
                           dtype=None) -> Tensor:
    """torch.nn.functional.log_softmax: dim may be left out (torch's deprecated implicit
    dim)."""
    if dim is None:
        dim = _implicit_dim("log_softmax", input._data.ndim)
    return _softmax(input, dim, dtype, True)


METHODS: dict = {
    "prod": prod, "var": var, "std": std, "norm": norm, "logsumexp": logsumexp,
    "amax": amax, "amin": amin, "argmax": argmax, "argmin": argmin, "any": any, "all": all,
    "cumsum": cumsum, "cumprod": cumprod, "softmax": softmax, "log_softmax": log_softmax,
}
