"""Normalisation: layer_norm and batch_norm, with torch.nn.functional's signatures and errors.

Each is one primitive with one fused forward kernel and one fused backward kernel
(``kernels/norm.py``) that computes the gradients of the input, the weight and the bias in one
pass; the VJPs of the three inputs share that result. Under ``create_graph=True`` the VJPs build
the same gradients from differentiable jitgrad ops instead, so double backward works.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import _ops as O
from .. import _views as V
from .. import derivatives as D
from ..autograd.graph import record
from ..tensor import Tensor
from ._loss import _absent, _composite, _contig, _Memo, _no_grad_for, _not_implemented, _tensor

__all__ = ["batch_norm", "layer_norm"]

_wrap = Tensor._wrap


def _param_dtypes(x: Tensor, params) -> None:
    """torch's CPU rule: parameters and running statistics share the input's dtype (a float32
    input names the dtype it expects)."""
    xd = x._data.dtype
    for p in params:
        if p is not None and p._data.dtype != xd:
            if xd == np.float32:
                raise RuntimeError("mixed dtype (CPU): expect parameter to have scalar type of "
                                   "Float")
            raise RuntimeError("mixed dtype (CPU): all inputs must share same datatype.")


def _lead_sum(t: Tensor, n: int) -> Tensor:
    """t summed over its first n dims (none: t itself)."""
    return O.sum(t, tuple(range(n))) if n else t


# --------------------------------------------------------------------------- layer norm

class _LayerNorm(NamedTuple):
    ns: tuple
    eps: float
    mean: np.ndarray
    rstd: np.ndarray
    memo: _Memo


def layer_norm(input: Tensor, normalized_shape, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    x = _tensor(input, "input")
    O.check_same_device(*(v for v in (x, weight, bias) if v is not None))
    if isinstance(normalized_shape, (int, np.integer)):
        raise TypeError("layer_norm(): argument 'normalized_shape' (position 2) must be tuple of "
                        f"ints, not {type(normalized_shape).__name__}")
    ns = tuple(int(s) for s in normalized_shape)
    if not ns:
        raise RuntimeError("Expected normalized_shape to be at least 1-dimensional, i.e., "
                           "containing at least one element, but got normalized_shape = []")
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and p._data.shape != ns:
            raise RuntimeError(f"Expected {name} to be of same shape as normalized_shape, but got "
                               f"{name} of shape {list(p._data.shape)} and normalized_shape = "
                               f"{list(ns)}")
    xd = x._data
    k = len(ns)
    if xd.ndim < k or xd.shape[xd.ndim - k:] != ns:
        raise RuntimeError(f"Given normalized_shape={list(ns)}, expected input with shape "
                           f"[*, {', '.join(map(str, ns))}], but got input of size"
                           f"{list(xd.shape)}")
    if xd.dtype.kind != "f":
        raise _not_implemented("LayerNormKernelImpl", xd.dtype)
    _param_dtypes(x, (weight, bias))
    K = int(np.prod(ns, dtype=np.int64))
    M = int(np.prod(xd.shape[:xd.ndim - k], dtype=np.int64))
    x2 = _contig(xd).reshape(M, K)
    wd = None if weight is None else _contig(weight._data).reshape(K)
    bd = None if bias is None else _contig(bias._data).reshape(K)
    y, mean, rstd = O.backend(xd).layer_norm(x2, wd, bd, float(eps), xd.shape)
    st = _LayerNorm(ns, float(eps), mean, rstd, _Memo())
    inputs = (x, weight if weight is not None else _absent(),
              bias if bias is not None else _absent())
    return record(D.LAYER_NORM, _wrap(y), inputs, (x, weight, bias, st))


def _layer_norm_fused(g: Tensor, x: Tensor, w, b, st: _LayerNorm) -> tuple:
    hit = st.memo.get(g)
    if hit is not None:
        return hit
    xd = x._data
    K = int(np.prod(st.ns, dtype=np.int64))
    x2 = _contig(xd).reshape(-1, K)
    g2 = _contig(g._data, xd.dtype).reshape(-1, K)
    wd = None if w is None else _contig(w._data).reshape(K)
    want_wb = any(p is not None and p._requires_grad for p in (w, b))
    dx, dw, db = O.backend(xd).layer_norm_grad(g2, x2, st.mean, st.rstd, wd,
                                               x._requires_grad, want_wb, xd.shape)
    res = (None if dx is None else _wrap(dx),
           None if dw is None else _wrap(dw.astype(xd.dtype).reshape(st.ns)),
           None if db is None else _wrap(db.astype(xd.dtype).reshape(st.ns)))
    return st.memo.put(g, res)


def _layer_norm_graph(g: Tensor, x: Tensor, w, st: _LayerNorm, which: int) -> Tensor:
    """Gradient `which` (0 input, 1 weight, 2 bias) from differentiable ops."""
    nd, k = x._data.ndim, len(st.ns)
    lead = nd - k
    if which == 2:
        return _lead_sum(g, lead)
    dims = tuple(range(lead, nd))
    xc = O.sub(x, O.mean(x, dims, keepdim=True))
    rstd = O.pow(O.add(O.mean(O.mul(xc, xc), dims, keepdim=True), st.eps), -0.5)
    xh = O.mul(xc, rstd)
    if which == 1:
        return _lead_sum(O.mul(g, xh), lead)
    gw = O.mul(g, w) if w is not None else g
    inner = O.sub(O.sub(gw, O.mean(gw, dims, keepdim=True)),
                  O.mul(xh, O.mean(O.mul(gw, xh), dims, keepdim=True)))
    return O.mul(rstd, inner)


def layer_norm_grad(which: int, g: Tensor, x: Tensor, w, b, st: _LayerNorm) -> Tensor:
    if _composite():
        return _layer_norm_graph(g, x, w, st, which)
    return _layer_norm_fused(g, x, w, b, st)[which]


# --------------------------------------------------------------------------- batch norm

class _BatchNorm(NamedTuple):
    """batch: whether batch statistics normalised the input (else the running ones);
    mean, invstd: the per-channel statistics used (float64); M = N * D values per channel."""
    batch: bool
    mean: np.ndarray
    invstd: np.ndarray
    eps: float
    M: int
    memo: _Memo


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    x = _tensor(input, "input")
    if momentum is None:
        raise TypeError("batch_norm(): argument 'momentum' (position 7) must be float, not "
                        "NoneType")
    O.check_same_device(*(v for v in (x, running_mean, running_var, weight, bias)
                          if v is not None))
    xd = x._data
    shape = xd.shape
    if training:
        size = shape[0] * int(np.prod(shape[2:], dtype=np.int64))
        if size == 1:
            raise ValueError("Expected more than 1 value per channel when training, got input "
                             f"size {x.size()}")
    C = shape[1] if xd.ndim > 1 else 0
    for name, p in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        if p is not None and p._data.size != C:
            raise RuntimeError(f"{name} should contain {C} elements not {p._data.size}")
        if p is not None and p._data.ndim != 1:
            raise RuntimeError(f"TensorAccessor expected 1 dims but tensor has {p._data.ndim}")
    if not training and (running_mean is None or running_var is None):
        raise RuntimeError("running_mean must be defined in evaluation mode")
    if xd.dtype.kind != "f":
        raise _not_implemented("batch_norm", xd.dtype)
    _param_dtypes(x, (weight, bias, running_mean, running_var))
    _no_grad_for("native_batch_norm", "running_mean", running_mean)
    _no_grad_for("native_batch_norm", "running_var", running_var)

    N = shape[0]
    Dn = int(np.prod(shape[2:], dtype=np.int64))
    M = N * Dn
    x3 = _contig(xd).reshape(N, C, Dn)
    batch = training or running_mean is None
    running = None if batch else (running_mean._data, running_var._data)
    y, mean, var = O.backend(xd).batch_norm(
        x3, None if weight is None else weight._data, None if bias is None else bias._data,
        float(eps), running, shape)
    if mean.__class__ is not np.ndarray:
        return _batch_norm_device(x, y, mean, var, running_mean, running_var, weight, bias,
                                  training, momentum, float(eps), batch, M)
    if training and M:  # torch leaves the running statistics alone on empty input
        _update(running_mean, mean, momentum)
        with np.errstate(divide="ignore", invalid="ignore"):
            _update(running_var, var * M / (M - 1) if M > 1 else var * np.nan, momentum)
    invstd = 1.0 / np.sqrt(var + eps)
    st = _BatchNorm(batch, mean, invstd, float(eps), M, _Memo())
    inputs = (x, weight if weight is not None else _absent(),
              bias if bias is not None else _absent())
    return record(D.BATCH_NORM, _wrap(y), inputs, (x, weight, bias, st))


def _batch_norm_device(x, y, mean, var, running_mean, running_var, weight, bias, training,
                       momentum, eps, batch, M) -> Tensor:
    """batch_norm's bookkeeping after the kernel for statistics on a device: the running
    statistics' update and invstd with the backend's elementwise kernels (no host copy)."""
    K = O.backend(mean)
    f64 = np.float64

    def lin(a, b, c, d_):  # a*b + c*d_ for arrays a, c and host numbers b, d_
        return K.binary("add", K.binary("mul", a, f64(b), a.shape),
                        K.binary("mul", c, f64(d_), c.shape), a.shape)

    if training and M:
        for stat, value in ((running_mean, mean), (running_var, var)):
            if stat is None:
                continue
            if value is var:
                value = K.binary("div", K.binary("mul", var, f64(M), var.shape), f64(M - 1),
                                 var.shape) if M > 1 else K.binary("mul", var, f64(np.nan),
                                                                    var.shape)
            d = stat._data
            d[...] = lin(value, momentum, K.cast(d, f64), 1.0 - momentum)
    invstd = K.binary("div", f64(1.0), K.unary("sqrt", K.binary("add", var, f64(eps),
                                                                  var.shape)), var.shape)
    st = _BatchNorm(batch, mean, invstd, eps, M, _Memo())
    inputs = (x, weight if weight is not None else _absent(),
              bias if bias is not None else _absent())
    return record(D.BATCH_NORM, _wrap(y), inputs, (x, weight, bias, st))


def _update(stat: Tensor | None, value: np.ndarray, momentum: float) -> None:
    """running = (1 - momentum) * running + momentum * value, in place as torch does."""
    if stat is None:
        return
    d = stat._data
    d[...] = (momentum * value + (1.0 - momentum) * d.astype(np.float64)).astype(d.dtype)


def _batch_norm_fused(g: Tensor, x: Tensor, w, b, st: _BatchNorm) -> tuple:
    hit = st.memo.get(g)
    if hit is not None:
        return hit
    xd = x._data
    N, C = xd.shape[0], xd.shape[1]
    x3 = _contig(xd).reshape(N, C, -1)
    g3 = _contig(g._data, xd.dtype).reshape(N, C, -1)
    dx, dw, db = O.backend(xd).batch_norm_grad(g3, x3, st.mean, st.invstd,
                                               None if w is None else w._data, st.batch,
                                               x._requires_grad, xd.shape)
    res = (None if dx is None else _wrap(dx), _wrap(dw.astype(xd.dtype)),
           _wrap(db.astype(xd.dtype)))
    return st.memo.put(g, res)


def _batch_norm_graph(g: Tensor, x: Tensor, w, st: _BatchNorm, which: int) -> Tensor:
    """Gradient `which` (0 input, 1 weight, 2 bias) from differentiable ops."""
    xd = x._data
    C = xd.shape[1]
    dims = (0,) + tuple(range(2, xd.ndim))
    cshape = (1, C) + (1,) * (xd.ndim - 2)
    if which == 2:
        return O.sum(g, dims)
    if st.batch:
        xc = O.sub(x, O.mean(x, dims, keepdim=True))
        rstd = O.pow(O.add(O.mean(O.mul(xc, xc), dims, keepdim=True), st.eps), -0.5)
    else:
        xc = O.sub(x, _wrap(st.mean.reshape(cshape).astype(xd.dtype)))
        rstd = _wrap(st.invstd.reshape(cshape).astype(xd.dtype))
    xh = O.mul(xc, rstd)
    if which == 1:
        return O.sum(O.mul(g, xh), dims)
    gw = O.mul(g, V.reshape(w, cshape)) if w is not None else g
    if not st.batch:
        return O.mul(gw, rstd)
    inner = O.sub(O.sub(gw, O.mean(gw, dims, keepdim=True)),
                  O.mul(xh, O.mean(O.mul(gw, xh), dims, keepdim=True)))
    return O.mul(rstd, inner)


def batch_norm_grad(which: int, g: Tensor, x: Tensor, w, b, st: _BatchNorm) -> Tensor:
    if _composite():
        return _batch_norm_graph(g, x, w, st, which)
    return _batch_norm_fused(g, x, w, b, st)[which]
