"""Losses: cross_entropy, nll_loss, mse_loss, l1_loss, smooth_l1_loss, binary_cross_entropy,
binary_cross_entropy_with_logits, with torch.nn.functional's signatures and errors.

Each fused loss is one primitive: one forward kernel (``kernels/loss.py``) and one fused
backward kernel, which its VJP runs. Under ``create_graph=True`` a VJP builds the same
gradient from differentiable jitgrad ops instead (``_composite``), so gradients of gradients
are right while the fast path keeps one kernel per pass. Targets, shapes and dtypes are checked
here, before any kernel runs.
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import numpy as np

from .. import _device, _dtype
from .._device import host as _host  # targets and indices are validated on the host
from .. import _ops as O
from .. import _views as V
from .. import derivatives as D
from ..autograd import grad_mode
from ..autograd.graph import record
from ..tensor import Tensor

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "l1_loss",
    "mse_loss",
    "nll_loss",
    "smooth_l1_loss",
]

_wrap = Tensor._wrap


# --------------------------------------------------------------------------- shared helpers



def _dev(a: np.ndarray, like):
    """Host array `a` on the device of storage `like` (`a` itself on the CPU)."""
    return a if like.__class__ is np.ndarray else _device.move(a, _device.of(like))


def _contig(d, dt=None):
    """`d` as a C-contiguous array of dtype `dt` (its own by default): `d` itself when it is
    one already (np.ascontiguousarray on either device)."""
    if d.__class__ is np.ndarray:
        return np.ascontiguousarray(d, dtype=dt)
    if (dt is None or d.dtype == dt) and d.flags.c_contiguous:
        return d
    return d.astype(d.dtype if dt is None else dt)


def _reduction(reduction: str, size_average, reduce) -> str:
    """torch's reduction argument, legacy size_average/reduce included."""
    if size_average is not None or reduce is not None:
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = "mean" if size_average and reduce else ("sum" if reduce else "none")
        warnings.warn("size_average and reduce args will be deprecated, please use "
                      f"reduction='{reduction}' instead.", stacklevel=3)
    if reduction == "elementwise_mean":
        warnings.warn("reduction='elementwise_mean' is deprecated. Please use reduction='mean' "
                      "instead.", stacklevel=3)
        reduction = "mean"
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return reduction


def _composite() -> bool:
    """True when a VJP runs with grad mode on (create_graph=True): it must then build its
    gradient from differentiable ops rather than run a fused kernel outside the graph."""
    return grad_mode.state.enabled


def _tensor(v, name: str) -> Tensor:
    if not isinstance(v, Tensor):
        raise TypeError(f"{name} must be a Tensor, not {type(v).__name__}")
    return v


def _not_implemented(kernel: str, dt: np.dtype):
    return NotImplementedError(f'"{kernel}" not implemented for \'{O.torch_name(dt)}\'')


def _no_grad_for(fn: str, arg: str, t: Tensor | None) -> None:
    if t is not None and t._requires_grad and grad_mode.state.enabled:
        raise RuntimeError(f"The function '{fn}' is not differentiable with respect to argument "
                           f"'{arg}'. This input cannot have requires_grad True.")


def _size_warning(x: Tensor, y: Tensor) -> None:
    if x._data.shape != y._data.shape:
        warnings.warn(f"Using a target size ({y.size()}) that is different to the input size "
                      f"({x.size()}). This will likely lead to incorrect results due to "
                      "broadcasting. Please ensure they have the same size.", stacklevel=3)


def _reduce(per: np.ndarray, reduction: str, denom: float, dt, shape: tuple) -> np.ndarray:
    """Per-element float64 losses reduced as asked, in dtype `dt`."""
    if reduction == "none":
        return per.astype(dt).reshape(shape)
    if per.__class__ is not np.ndarray:  # on the device: one reduction kernel, no sync
        scale = 1.0
        K = O.backend(per)
        if reduction == "mean":  # (1 / 0: inf, as numpy's division gives it)
            scale = 1.0 / denom if denom != 0 else math.copysign(math.inf, denom)
            if denom != 0 and math.isinf(scale):  # (a subnormal denominator: sum, divide)
                total = K.sum_(per.reshape(1, per.size, 1), np.float64).reshape(1)
                return K.binary("div", total, np.array(denom), (1,)).astype(dt).reshape(())
        if dt == np.float32 or dt == np.float64:  # summed in float64, rounded once to dt
            return K.sum_(per.reshape(1, per.size, 1), dt, scale).reshape(())
        return K.sum_(per.reshape(1, per.size, 1), np.float64, scale).astype(dt).reshape(())
    total = np.sum(per, dtype=np.float64)
    if reduction == "mean":
        with np.errstate(divide="ignore", invalid="ignore"):
            total = np.float64(total) / np.float64(denom)
    return np.array(total, dtype=dt)


def _scale(g: Tensor, reduction: str, denom: float, n: int, like):
    """The float64 factor each of the n rows' (elements') loss gradient is multiplied by: g
    itself ('none'), g ('sum') or g / denom ('mean'), as the loss's backend (that of its
    storage `like`) gives it to its gradient kernels (on the GPU: worked out inside them,
    without a launch or a read-back). A gradient on another device (a 0-d CPU tensor for a
    CUDA loss, which torch accepts) is moved to the loss's first."""
    gd = g._data
    if gd.__class__ is not like.__class__:
        gd = _dev(np.ascontiguousarray(_host(gd)), like)
    K = O.backend(like)
    if reduction == "none":
        return K.loss_scale(_contig(gd).reshape(-1), 1.0, n)
    return K.loss_scale(gd, denom if reduction == "mean" else 1.0, n)


def _scale_tensor(g: Tensor, reduction: str, denom: float, shape: tuple) -> Tensor:
    """_scale as a jitgrad tensor of `shape` (reduction 'none') or 0-d, in the graph of g."""
    if reduction == "none":
        return V.reshape(g, shape)
    return O.div(g, float(denom)) if reduction == "mean" else g


class _Memo:
    """Gradients a fused backward kernel computed for several inputs at once, kept for the
    other inputs' VJPs of the same backward call (recognised by the incoming gradient)."""

    __slots__ = ("g", "grads")

    def __init__(self):
        self.g = None
        self.grads = None

    def get(self, g):
        return self.grads if self.g is g else None

    def put(self, g, grads):
        self.g, self.grads = g, grads
        return grads


# --------------------------------------------------------------------------- class-index targets

class _Classes(NamedTuple):
    """What a class-index loss saves: layout (N, C, D) with D the product of the extra dims,
    validated int64 targets (N*D,), class weights (C,), ignore_index, label smoothing, and the
    per-row log-sum-exp (cross-entropy only)."""
    N: int
    C: int
    D: int
    tgt: np.ndarray
    w: np.ndarray
    ii: int
    eps: float
    reduction: str
    denom: float
    lse: np.ndarray | None
    tk: object = None  # the targets the kernels read: tgt, or their copy on the GPU


def _kernel_targets(td, t: np.ndarray):
    """The validated targets as the kernels take them: the host copy `t` on the CPU; on the
    GPU the target tensor's own storage as contiguous int64, so nothing is copied back over
    (a host-to-device copy waits for every kernel queued before it)."""
    return t if td.__class__ is np.ndarray else _contig(td, np.dtype(np.int64)).reshape(-1)


def _fmt(shape) -> str:
    return str(list(shape))


def _check_classes(x: Tensor, target: Tensor, weight: Tensor | None, ii: int,
                   prob_weight_msg: bool = False) -> tuple:
    """torch's checks of nll_loss_nd. Returns (N, C, D, int64 targets (N*D,))."""
    xd, td = x._data, target._data
    nd = xd.ndim
    if nd < 1:
        raise ValueError(f"Expected 1 or more dimensions (got {nd})")
    if nd != 1 and (td.ndim == 0 or xd.shape[0] != td.shape[0]):
        got = td.shape[0] if td.ndim else 0
        raise ValueError(f"Expected input batch_size ({xd.shape[0]}) to match target "
                         f"batch_size ({got}).")
    C = xd.shape[1] if nd > 1 else xd.shape[0]
    if nd <= 2:
        if td.ndim > 1:
            raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
        if nd == 1 and td.ndim == 1 and td.shape[0] != 1:
            raise ValueError("For 1D input, 1D target must have size 1, but got target size: "
                             f"{td.shape[0]}")
    elif nd == 4 and td.ndim != 3:
        raise RuntimeError("only batches of spatial targets supported (3D tensors) but got "
                               f"targets of dimension: {td.ndim}")
    if weight is not None and (weight._data.ndim != 1 or weight._data.size != C):
        raise RuntimeError(f"weight tensor should be defined either for all {C} classes or no "
                           f"classes but got weight tensor of shape: {_fmt(weight._data.shape)}")
    if nd == 4 and (td.shape[0] != xd.shape[0] or td.shape[1:] != xd.shape[2:]):
        raise RuntimeError(f"size mismatch (got input: {_fmt(xd.shape)} , target: "
                           f"{_fmt(td.shape)}")
    if nd == 3 or nd > 4:
        want = (xd.shape[0],) + xd.shape[2:]
        if td.shape != want:
            raise RuntimeError(f"Expected target size {_fmt(want)}, got {_fmt(td.shape)}")
    if td.dtype not in (np.int64, np.uint8):
        raise RuntimeError("expected target dtype to be Long or Byte, but got "
                           f"{O.torch_name(td.dtype)}")
    if weight is not None and weight._data.dtype != xd.dtype:
        raise RuntimeError(f"expected scalar type {O.torch_name(xd.dtype)} but found "
                           f"{O.torch_name(weight._data.dtype)}")
    t = np.ascontiguousarray(_host(td), dtype=np.int64).reshape(-1)  # validated on the host
    if t.size and (t.min() < 0 or t.max() >= C):  # (ignore_index may lie outside [0, C))
        bad = (t != ii) & ((t < 0) | (t >= C))
        if bad.any():
            raise IndexError(f"Target {t[np.argmax(bad)]} is out of bounds.")
    N = xd.shape[0] if nd > 1 else 1
    Dn = int(np.prod(xd.shape[2:], dtype=np.int64)) if nd > 2 else 1
    return N, C, Dn, t


def _denom(wt, t: np.ndarray, ii: int, weight) -> float:
    """The 'mean' denominator: the sum of the targets' weights (without class weights, the
    count of targets not ignored: no read-back from a device)."""
    if weight is None and wt.__class__ is not np.ndarray:
        return float(np.count_nonzero(t != ii))
    return float(np.sum(_host(wt)))


def _rows(d: np.ndarray, N: int, C: int, D: int) -> np.ndarray:
    """Logits (N, C, *) as contiguous rows (N*D, C): the class dimension moved last."""
    if D == 1:
        return _contig(d).reshape(N, C)
    return _contig(np.moveaxis(d.reshape(N, C, D), 1, 2)).reshape(N * D, C)


def _unrows(r: np.ndarray, shape: tuple, N: int, C: int, D: int) -> np.ndarray:
    """The inverse of _rows, into a fresh array of the input's shape (D > 1; for D == 1 the
    launchers write that shape directly). Fresh, not a view: the engine can adopt it."""
    out = O.backend(r).empty(shape, r.dtype)
    out.reshape(N, C, D)[...] = np.moveaxis(r.reshape(N, D, C), 2, 1)
    return out


_UNIT_WEIGHTS: dict = {}  # (storage type, C, dtype) -> ones, kept for devices (read only)


def _weights(weight: Tensor | None, C: int, dt, like) -> np.ndarray:
    """Class weights (C,) in dtype dt on the device of storage `like` (ones for none; on a
    device made once per class count, as kernels only read them)."""
    if weight is None:
        if like.__class__ is np.ndarray:
            return np.ones(C, dtype=dt)
        key = (like.__class__, C, np.dtype(dt))
        w = _UNIT_WEIGHTS.get(key)
        if w is None:
            if len(_UNIT_WEIGHTS) >= 64:
                _UNIT_WEIGHTS.clear()
            w = _UNIT_WEIGHTS[key] = O.backend(like).full((C,), 1, dt)
        return w
    return _contig(weight._data, dt)


def _out_shape(xshape: tuple) -> tuple:
    return (xshape[0],) + xshape[2:] if len(xshape) > 1 else ()


def _absent() -> Tensor:
    """Stands for a missing optional tensor among a primitive's inputs: needs no gradient."""
    return _wrap(np.zeros(()))


def _class_rule(nd: int, eps: float, fused):
    if eps > 0:
        return fused[2]
    return fused[0] if nd <= 2 else fused[1]


def _finish_classes(out: np.ndarray, x: Tensor, rule, st: _Classes, inputs: tuple,
                    saved: tuple) -> Tensor:
    """Record the primitive; for 'none' over (N, C, d1, ...) with more or fewer than two d's,
    torch computes (N, 1, D) and views it: the result's grad_fn is then ViewBackward0."""
    xshape = x._data.shape
    nd = len(xshape)
    view = st.reduction == "none" and (nd == 3 or nd > 4) and st.eps == 0.0
    if view:
        out = out.reshape(st.N, 1, st.D)
    res = record(rule, _wrap(out), inputs, saved)
    if view:
        res = V.view(res, _out_shape(xshape))
    return res


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
             ignore_index: int = -100, reduce=None, reduction: str = "mean") -> Tensor:
    x, target = _tensor(input, "input"), _tensor(target, "target")
    reduction = _reduction(reduction, size_average, reduce)
    O.check_same_device(*(v for v in (x, target, weight) if v is not None))
    N, C, Dn, t = _check_classes(x, target, weight, ignore_index)
    xd = x._data
    if xd.dtype.kind != "f":
        raise _not_implemented("nll_loss_out_frame", xd.dtype)
    _no_grad_for("nll_loss_forward", "weight", weight)
    w = _weights(weight, C, xd.dtype, xd)
    x3 = _contig(xd).reshape(N, C, Dn)
    tk = _kernel_targets(target._data, t)
    loss, wt = O.backend(xd).nll(x3, tk.reshape(N, Dn), w, ignore_index)
    st = _Classes(N, C, Dn, t, w, ignore_index, 0.0, reduction, _denom(wt, t, ignore_index, weight),
                  None, tk)
    out = _reduce(loss.reshape(-1), reduction, st.denom, xd.dtype, _out_shape(xd.shape))
    rule = _class_rule(xd.ndim, 0.0, (D.NLL_LOSS, D.NLL_LOSS2D, None))
    return _finish_classes(out, x, rule, st, (x,), (x, st))


def nll_grad(g: Tensor, x: Tensor, st: _Classes) -> Tensor:
    """d nll_loss / d input: -w[t] * scale at each target's position, 0 elsewhere (x is saved
    as torch saves it, for its shape; the gradient does not depend on its values)."""
    N, C, Dn = st.N, st.C, st.D
    shape = x._data.shape
    if _composite():
        w = _host(st.w)
        dense = np.zeros((N, C, Dn), dtype=w.dtype)
        keep = st.tgt != st.ii
        n, d = np.divmod(np.arange(N * Dn)[keep], Dn)
        dense[n, st.tgt[keep], d] = -w[st.tgt[keep]]
        s = _scale_tensor(g, st.reduction, st.denom, (N, 1, Dn))
        return V.reshape(O.mul(s, _wrap(_dev(dense, x._data))), shape)
    s = _scale(g, st.reduction, st.denom, N * Dn, st.w)
    return _wrap(O.backend(st.w).nll_grad(s, st.tk.reshape(N, Dn), st.w, st.ii, (N, C, Dn),
                                          st.w.dtype, shape))


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                  size_average=None, ignore_index: int = -100, reduce=None,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    x, target = _tensor(input, "input"), _tensor(target, "target")
    reduction = _reduction(reduction, size_average, reduce)
    O.check_same_device(*(v for v in (x, target, weight) if v is not None))
    xd, td = x._data, target._data
    if xd.shape == td.shape:
        return _cross_entropy_prob(x, target, weight, ignore_index, reduction,
                                   label_smoothing)
    eps = float(label_smoothing)
    if eps > 1.0:
        raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {eps:g}")
    eps = max(eps, 0.0)  # torch ignores a negative label_smoothing for class indices
    if xd.dtype.kind != "f":
        impl = "log_softmax_lastdim_kernel_impl" if xd.ndim <= 2 else "softmax_kernel_impl"
        raise _not_implemented(impl, xd.dtype)
    N, C, Dn, t = _check_classes(x, target, weight, ignore_index)
    _no_grad_for("nll_loss_forward", "weight", weight)
    w = _weights(weight, C, xd.dtype, xd)
    rows = _rows(xd, N, C, Dn)
    tk = _kernel_targets(td, t)
    lse, loss, wt = O.backend(xd).cross_entropy_index(rows, tk, w, ignore_index, eps)
    st = _Classes(N, C, Dn, t, w, ignore_index, eps, reduction,
                  _denom(wt, t, ignore_index, weight), lse, tk)
    out = _reduce(loss, reduction, st.denom, xd.dtype, _out_shape(xd.shape))
    rule = _class_rule(xd.ndim, eps, (D.CROSS_ENTROPY, D.CROSS_ENTROPY2D,
                                      D.CROSS_ENTROPY_SMOOTH))
    return _finish_classes(out, x, rule, st, (x,), (x, st))


def _softmax3(x3: Tensor):
    """(softmax, log_softmax) over dim 1 of x3, from differentiable ops (max shift held
    constant: it cancels)."""
    d = _host(x3._data)
    m = np.max(d, axis=1, keepdims=True) if d.size else d[:, :1]
    m = np.where(np.isfinite(m), m, 0)
    z = O.sub(x3, _wrap(_dev(m.astype(d.dtype), x3._data)))
    e = O.exp(z)
    s = O.sum(e, 1, keepdim=True)
    return O.div(e, s), O.sub(z, O.log(s))


def _class_targets(st: _Classes) -> tuple:
    """Dense (N, C, D) q and (N, 1, D) a of the class-index cross-entropy gradient
    scale * (a * softmax - q)."""
    N, C, Dn, eps = st.N, st.C, st.D, st.eps
    keep = (st.tgt != st.ii).reshape(N, 1, Dn)
    q = np.broadcast_to((eps / C * _host(st.w).astype(np.float64))[None, :, None],
                        (N, C, Dn)).copy()
    n, d = np.divmod(np.arange(N * Dn), Dn)
    tt = np.where(st.tgt == st.ii, 0, st.tgt)
    q[n, tt, d] += (1.0 - eps) * _host(st.w)[tt]
    q = np.where(keep, q, 0.0)
    return q, q.sum(1, keepdims=True)


def cross_entropy_grad(g: Tensor, x: Tensor, st: _Classes) -> Tensor:
    """d cross_entropy / d input: scale * (a * softmax(x) - q), see kernels/loss.py."""
    N, C, Dn = st.N, st.C, st.D
    xd = x._data
    if _composite():
        q, a = _class_targets(st)
        dt = xd.dtype
        p, _ = _softmax3(V.reshape(x, (N, C, Dn)))
        s = _scale_tensor(g, st.reduction, st.denom, (N, 1, Dn))
        r = O.mul(s, O.sub(O.mul(p, _wrap(_dev(a.astype(dt), xd))),
                           _wrap(_dev(q.astype(dt), xd))))
        return V.reshape(r, xd.shape)
    s = _scale(g, st.reduction, st.denom, N * Dn, xd)
    rows = _rows(xd, N, C, Dn)
    gr = O.backend(xd).cross_entropy_index_grad(rows, st.lse, s, st.tk, st.w, st.ii, st.eps,
                                                xd.shape if Dn == 1 else None)
    return _wrap(gr if Dn == 1 else _unrows(gr, xd.shape, N, C, Dn))


# --------------------------------------------------------------------------- probability targets

class _Probs(NamedTuple):
    N: int
    C: int
    D: int
    w: np.ndarray
    eps: float
    reduction: str
    denom: float
    lse: np.ndarray


def _cross_entropy_prob(x: Tensor, target: Tensor, weight, ignore_index, reduction, ls):
    xd, td = x._data, target._data
    if td.dtype.kind != "f":
        raise RuntimeError("Expected floating point type for target with class probabilities, "
                           f"got {O.torch_name(td.dtype)}")
    if ignore_index >= 0:
        raise RuntimeError("ignore_index is not supported for floating point target")
    nd = xd.ndim
    if nd == 0:
        raise RuntimeError("Expected 1 or more dimensions (got 0)")
    C = xd.shape[1] if nd > 1 else xd.shape[0]
    if weight is not None and (weight._data.ndim != 1 or weight._data.size != C):
        raise RuntimeError(f"cross_entropy: weight tensor should be defined either for all {C} "
                           "classes or no classes but got weight tensor of shape: "
                           f"{_fmt(weight._data.shape)}")
    eps = float(ls)
    if eps > 1.0:
        raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {eps:g}")
    eps = max(eps, 0.0)
    dt = _dtype.result_type(x, target).np
    if dt.kind != "f":
        raise _not_implemented("log_softmax_lastdim_kernel_impl", xd.dtype)
    if weight is not None:
        dt = np.result_type(dt, weight._data.dtype)
    N = xd.shape[0] if nd > 1 else 1
    Dn = int(np.prod(xd.shape[2:], dtype=np.int64)) if nd > 2 else 1
    w = _weights(weight, C, dt, xd)
    xr = _rows(xd.astype(dt, copy=False), N, C, Dn)
    pr = _rows(td.astype(dt, copy=False), N, C, Dn)
    lse, loss = O.backend(xd).cross_entropy_prob(xr, pr, w, eps)
    st = _Probs(N, C, Dn, w, eps, reduction, float(N * Dn), lse)
    out = _reduce(loss, reduction, st.denom, dt, _out_shape(xd.shape))
    rule = D.CROSS_ENTROPY_PROB_MEAN if reduction == "mean" else D.CROSS_ENTROPY_PROB
    inputs = (x, target, weight if weight is not None else _absent())
    return record(rule, _wrap(out), inputs, (x, target, weight, st))


def _prob_parts(x: Tensor, t: Tensor, w: Tensor | None, st: _Probs):
    """(softmax, log_softmax, smoothed target, q) over (N, C, D) from differentiable ops, q
    the weighted smoothed target."""
    N, C, Dn = st.N, st.C, st.D
    p, lp = _softmax3(V.reshape(x, (N, C, Dn)))
    wb = _wrap(st.w.reshape(1, C, 1)) if w is None else V.reshape(w, (1, C, 1))
    ts = O.add(O.mul(V.reshape(t, (N, C, Dn)), 1.0 - st.eps), st.eps / C)
    return p, lp, ts, O.mul(wb, ts)


def cross_entropy_prob_grad_input(g: Tensor, x: Tensor, t: Tensor, w, st: _Probs) -> Tensor:
    N, C, Dn = st.N, st.C, st.D
    xd = x._data
    if _composite():
        p, _, _, q = _prob_parts(x, t, w, st)
        s = _scale_tensor(g, st.reduction, st.denom, (N, 1, Dn))
        r = O.mul(s, O.sub(O.mul(p, O.sum(q, 1, keepdim=True)), q))
        return V.reshape(r, xd.shape)
    dt = st.w.dtype
    s = _scale(g, st.reduction, st.denom, N * Dn, xd)
    xr = _rows(xd.astype(dt, copy=False), N, C, Dn)
    pr = _rows(t._data.astype(dt, copy=False), N, C, Dn)
    gr = O.backend(xd).cross_entropy_prob_grad(xr, st.lse, s, pr, st.w, st.eps,
                                               xd.shape if Dn == 1 else None)
    return _wrap(gr if Dn == 1 else _unrows(gr, xd.shape, N, C, Dn))


def cross_entropy_prob_grad_target(g: Tensor, x: Tensor, t: Tensor, w, st: _Probs) -> Tensor:
    """-scale * (1 - eps) * w * log_softmax(x)"""
    N, C, Dn = st.N, st.C, st.D
    _, lp, _, _ = _prob_parts(x, t, w, st)
    wb = _wrap(st.w.reshape(1, C, 1)) if w is None else V.reshape(w, (1, C, 1))
    s = _scale_tensor(g, st.reduction, st.denom, (N, 1, Dn))
    r = O.mul(O.mul(s, -(1.0 - st.eps)), O.mul(lp, wb))
    return V.reshape(r, x._data.shape)


def cross_entropy_prob_grad_weight(g: Tensor, x: Tensor, t: Tensor, w, st: _Probs) -> Tensor:
    """-sum over batch and extra dims of scale * smoothed target * log_softmax(x)"""
    N, Dn = st.N, st.D
    _, lp, ts, _ = _prob_parts(x, t, w, st)
    s = _scale_tensor(g, st.reduction, st.denom, (N, 1, Dn))
    return O.neg(O.sum(O.mul(s, O.mul(ts, lp)), (0, 2)))


# --------------------------------------------------------------------------- per-element losses

class _Pointwise(NamedTuple):
    """What a per-element loss saves: its kernel name, broadcast shape, dtype, extra kernel
    operands (weights flattened to the shape, beta), reduction, element count and a memo."""
    name: str
    shape: tuple
    dt: np.dtype
    extra: tuple
    reduction: str
    n: int
    memo: _Memo


def _flat(d: np.ndarray, shape: tuple, dt) -> np.ndarray:
    return _contig(np.broadcast_to(d.astype(dt, copy=False), shape)).reshape(-1)


def _pointwise(name: str, rule, x: Tensor, y: Tensor, shape: tuple, dt, extra: tuple,
               reduction: str) -> Tensor:
    O.check_same_device(x, y)
    xf, yf = _flat(x._data, shape, dt), _flat(y._data, shape, dt)
    n = xf.size
    K = O.backend(xf)
    if reduction == "none":
        out = K.pointwise_loss(name, xf, yf, extra, False).reshape(shape)
    else:
        total = K.pointwise_loss(name, xf, yf, extra, True)
        # a float from the CPU kernel; a device array (1,) of float64 from a GPU kernel
        per = total if hasattr(total, "shape") and total.__class__ is not np.ndarray \
            and total.ndim else _dev(np.array([float(total)]), xf)
        out = _reduce(per, reduction, n, dt, ())
    st = _Pointwise(name, shape, np.dtype(dt), extra, reduction, n, _Memo())
    return record(rule, _wrap(out), (x, y), (x, y, st))


def _pw_scale(g: Tensor, st: _Pointwise):
    """The factor a per-element loss's gradient is multiplied by, in its dtype: g itself
    ('none'), or g ('sum') or g / n ('mean') as one value; on the device, the reduced
    loss's g and divisor as loss_scale gives them (the kernel divides)."""
    gd = g._data
    if st.reduction == "none":
        return _contig(gd, st.dt)
    if gd.__class__ is not np.ndarray:  # on the device: divided inside the kernel
        return O.backend(gd).loss_scale(_contig(gd, st.dt), float(st.n)
                                        if st.reduction == "mean" else 1.0, 1)
    v = float(gd)
    if st.reduction == "mean":
        with np.errstate(divide="ignore", invalid="ignore"):
            v = np.float64(v) / np.float64(st.n)
    return np.array([v], dtype=st.dt)


def _pw_fused(g: Tensor, x: Tensor, y: Tensor, st: _Pointwise) -> np.ndarray:
    """The fused backward kernel's gradient wrt x at the broadcast shape, computed once per
    backward call."""
    hit = st.memo.get(g)
    if hit is None:
        xf, yf = _flat(x._data, st.shape, st.dt), _flat(y._data, st.shape, st.dt)
        gx = O.backend(xf).pointwise_loss_grad(st.name, xf, yf, st.extra, _pw_scale(g, st))
        gx.shape = st.shape  # in place: a fresh array (not a view) that the engine can adopt
        hit = st.memo.put(g, gx)
    return hit


def _pw_s(g: Tensor, st: _Pointwise) -> Tensor:
    if st.reduction == "none":
        return g
    return O.div(g, float(st.n)) if st.reduction == "mean" else g


def _w(st: _Pointwise, i: int):
    """Extra operand i (a flat weight) as a constant tensor of the loss's shape, or 1.0."""
    e = st.extra[i]
    return _wrap(e.reshape(st.shape)) if e.size else 1.0


def pointwise_grad_input(g: Tensor, x: Tensor, y: Tensor, st: _Pointwise):
    if _composite():
        return _pointwise_composite(g, x, y, st, 0)
    return _wrap(_pw_fused(g, x, y, st))


def pointwise_grad_target(g: Tensor, x: Tensor, y: Tensor, st: _Pointwise):
    if _composite() or st.name in ("bce", "bce_logits"):
        return _pointwise_composite(g, x, y, st, 1)
    gx = _pw_fused(g, x, y, st)  # mse, smooth L1: functions of x - y
    if gx.__class__ is np.ndarray:
        return _wrap(np.asarray(-gx))
    return _wrap(O.backend(gx).unary("neg", gx))


def _pointwise_composite(g: Tensor, x: Tensor, y: Tensor, st: _Pointwise, which: int):
    """The gradient of loss st.name wrt x (which=0) or y (which=1) from differentiable ops."""
    s = _pw_s(g, st)
    name = st.name
    if name == "mse":
        r = O.mul(O.sub(x, y), 2.0)
    elif name == "smooth_l1":
        beta = st.extra[0]
        d = O.sub(x, y)
        r = O.clamp(O.div(d, beta), min=-1.0, max=1.0)  # d/beta where |d| < beta, else sign(d)
    elif name == "bce":
        w = _w(st, 0)
        if which == 0:
            den = O.clamp(O.mul(O.rsub(x, 1.0), x), min=1e-12)
            return O.mul(O.mul(s, w), O.div(O.sub(x, y), den))
        return O.mul(O.mul(s, w), O.sub(O.log(O.rsub(x, 1.0)), O.log(x)))
    else:  # bce_logits
        w, pw = _w(st, 0), _w(st, 1)
        if not isinstance(pw, Tensor):  # no pos_weight: sigmoid(x) - y and -x
            if which == 0:
                return O.mul(O.mul(s, w), O.sub(O.sigmoid(x), y))
            return O.mul(O.mul(s, w), O.neg(x))
        if which == 0:
            lw = O.add(O.mul(O.sub(pw, 1.0), y), 1.0)
            return O.mul(O.mul(s, w), O.sub(O.mul(O.sigmoid(x), lw), O.mul(pw, y)))
        # d/dy = -x + (pw - 1) * softplus(-x), softplus(-x) = relu(-x) + log1p(exp(-|x|))
        sp = O.add(O.relu(O.neg(x)), O.log(O.add(O.exp(O.neg(O.abs(x))), 1.0)))
        return O.mul(O.mul(s, w), O.sub(O.mul(O.sub(pw, 1.0), sp), x))
    r = O.mul(s, r)
    return r if which == 0 else O.neg(r)


def _float_pair(x: Tensor, y: Tensor, kernel: str):
    dt = _dtype.result_type(x, y).np
    if dt.kind != "f":
        raise _not_implemented(kernel, dt)
    return dt


def mse_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
             reduction: str = "mean", weight: Tensor | None = None) -> Tensor:
    x, y = _tensor(input, "input"), _tensor(target, "target")
    _size_warning(x, y)
    if weight is not None:
        return _weighted(O.pow(O.sub(x, y), 2), x, weight,
                         _legacy(reduction, size_average, reduce))
    reduction = _reduction(reduction, size_average, reduce)
    shape = O.broadcast_shapes(x._data.shape, y._data.shape)
    dt = _float_pair(x, y, "mse_cpu")
    return _pointwise("mse", D.MSE_LOSS, x, y, shape, dt, (), reduction)


def _legacy(reduction, size_average, reduce) -> str:
    if size_average is not None or reduce is not None:
        return _reduction(reduction, size_average, reduce)
    return reduction


def _weighted(per: Tensor, x: Tensor, weight: Tensor, reduction: str) -> Tensor:
    """torch's weighted mse/l1: per-element losses times weight, mean over the weights' sum."""
    if weight._data.shape != x._data.shape:
        raise ValueError("Weights and input must have the same size.")
    r = O.mul(per, weight)
    if reduction == "none":
        return r
    if reduction == "sum":
        return O.sum(r)
    if reduction == "mean":
        return O.div(O.sum(r), O.sum(weight))
    raise ValueError(f"Invalid reduction mode: {reduction}. Expected one of 'none', 'mean', "
                     "'sum'.")


def l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
            reduction: str = "mean", weight: Tensor | None = None) -> Tensor:
    x, y = _tensor(input, "input"), _tensor(target, "target")
    _size_warning(x, y)
    if weight is not None:
        return _weighted(O.abs(O.sub(x, y)), x, weight, _legacy(reduction, size_average, reduce))
    return _l1(x, y, _reduction(reduction, size_average, reduce))


def _l1(x: Tensor, y: Tensor, reduction: str) -> Tensor:
    # torch computes l1_loss from abs and mean/sum too: the same grad_fn names result.
    r = O.abs(O.sub(x, y))
    if reduction == "none":
        return r
    return O.mean(r) if reduction == "mean" else O.sum(r)


def smooth_l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                   reduction: str = "mean", beta: float = 1.0) -> Tensor:
    x, y = _tensor(input, "input"), _tensor(target, "target")
    _size_warning(x, y)
    reduction = _reduction(reduction, size_average, reduce)
    if beta == 0.0:
        return _l1(x, y, reduction)
    if beta < 0:
        raise RuntimeError("smooth_l1_loss does not support negative values for beta.")
    shape = O.broadcast_shapes(x._data.shape, y._data.shape)
    dt = _float_pair(x, y, "smooth_l1_cpu")
    return _pointwise("smooth_l1", D.SMOOTH_L1_LOSS, x, y, shape, dt, (float(beta),),
                      reduction)


def _empty(dt, like) -> np.ndarray:
    """An empty operand (no weights) on the device of storage `like`."""
    return np.empty(0, dtype=dt) if like.__class__ is np.ndarray else \
        O.backend(like).empty((0,), dt)


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                         size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    x, y = _tensor(input, "input"), _tensor(target, "target")
    reduction = _reduction(reduction, size_average, reduce)
    xd, yd = x._data, y._data
    if yd.shape != xd.shape:
        raise ValueError(f"Using a target size ({y.size()}) that is different to the input size "
                         f"({x.size()}) is deprecated. Please ensure they have the same size.")
    shape = xd.shape
    if weight is not None and not O.expandable(weight._data.shape, shape):
        ws = weight._data.shape
        bad = next(i for i in range(1, len(ws) + 1) if ws[-i] != 1 and (
            i > len(shape) or ws[-i] != shape[-i]))
        raise RuntimeError(f"Attempting to broadcast a dimension of length {ws[-bad]} at "
                           f"-{bad}! Mismatching argument at index 1 had {weight.size()}; but "
                           f"expected shape should be broadcastable to {_fmt(shape)}")
    if xd.dtype.kind != "f":
        raise _not_implemented("binary_cross_entropy", xd.dtype)
    if yd.dtype != xd.dtype:
        raise RuntimeError(f"Found dtype {O.torch_name(yd.dtype)} but expected "
                           f"{O.torch_name(xd.dtype)}")
    xh, yh = _host(xd), _host(yd)
    if not np.all((xh >= 0) & (xh <= 1)):
        raise RuntimeError("all elements of input should be between 0 and 1")
    if not np.all((yh >= 0) & (yh <= 1)):
        raise RuntimeError("all elements of target should be between 0 and 1")
    _no_grad_for("binary_cross_entropy", "weight", weight)
    w = _empty(xd.dtype, xd) if weight is None else _flat(weight._data, shape, xd.dtype)
    return _pointwise("bce", D.BINARY_CROSS_ENTROPY, x, y, shape, xd.dtype, (w,), reduction)


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor,
                                     weight: Tensor | None = None, size_average=None,
                                     reduce=None, reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    x, y = _tensor(input, "input"), _tensor(target, "target")
    reduction = _reduction(reduction, size_average, reduce)
    xd, yd = x._data, y._data
    if yd.shape != xd.shape:
        raise ValueError(f"Target size ({y.size()}) must be the same as input size ({x.size()})")
    shape = xd.shape
    # torch multiplies by pos_weight and weight: their broadcast errors, in that order
    for a, b in ((pos_weight, None), (None, weight)):
        t = a if a is not None else b
        if t is None:
            continue
        ts = t._data.shape
        O.broadcast_shapes(ts, shape) if a is not None else O.broadcast_shapes(shape, ts)
        if not O.expandable(ts, shape):
            raise RuntimeError(f"output with shape {_fmt(shape)} doesn't match the broadcast "
                               f"shape {_fmt(O.broadcast_shapes(ts, shape))}")
    dt = _dtype.result_type(x, y).np
    if dt.kind != "f":
        raise _not_implemented("binary_cross_entropy_with_logits", dt)
    if yd.dtype.kind != "f":
        raise RuntimeError(f"result type {O.torch_name(dt)} can't be cast to the desired output "
                           f"type {O.torch_name(yd.dtype)}")
    _no_grad_for("binary_cross_entropy_with_logits", "weight", weight)
    _no_grad_for("binary_cross_entropy_with_logits", "pos_weight", pos_weight)
    w = _empty(dt, xd) if weight is None else _flat(weight._data, shape, dt)
    pw = _empty(dt, xd) if pos_weight is None else _flat(pos_weight._data, shape, dt)
    return _pointwise("bce_logits", D.BCE_WITH_LOGITS, x, y, shape, dt, (w, pw), reduction)
