"""Gradient clipping: ``clip_grad_norm_``, ``clip_grad_value_``, ``get_total_norm``."""

from __future__ import annotations

import math

import numpy as np

from ... import _inplace
from ...tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_", "clip_grads_with_norm_", "get_total_norm"]


def _tensors(tensors) -> list[Tensor]:
    if isinstance(tensors, Tensor):
        return [tensors]
    return list(tensors)


def _grads(parameters) -> list[Tensor]:
    return [p.grad for p in _tensors(parameters) if p.grad is not None]


def _on_host(d) -> bool:
    return d.__class__ is np.ndarray


def _device_norm(d, p: float) -> float:
    """_vector_norm of device storage `d`: reduced on the device in float64, one number
    copied back."""
    from ...autograd import grad_mode

    if d.size == 0:
        return 0.0
    with grad_mode.no_grad():
        a = Tensor._wrap(d).double().abs()
        if p == math.inf:
            r = a.max()
        elif p == -math.inf:
            r = a.min()
        elif p == 0:
            r = (a != 0).sum()
        elif p == 1:
            r = a.sum()
        elif p == 2:
            r = (a * a).sum().sqrt()
        else:
            r = (a ** p).sum() ** (1.0 / p)
    return float(r.item())


def _vector_norm(a: np.ndarray, p: float) -> float:
    if not _on_host(a):
        return _device_norm(a, p)
    a = np.abs(a.astype(np.float64, copy=False))
    if a.size == 0:
        return 0.0
    if p == math.inf:
        return float(a.max())
    if p == -math.inf:
        return float(a.min())
    if p == 0:
        return float(np.count_nonzero(a))
    if p == 1:
        return float(a.sum())
    if p == 2:
        return float(np.sqrt(np.dot(a.ravel(), a.ravel())))
    return float((a ** p).sum() ** (1.0 / p))


def get_total_norm(tensors, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                   foreach=None) -> Tensor:
    """The `norm_type`-norm of all the tensors together, as a 0-d tensor."""
    tensors = _tensors(tensors)
    norm_type = float(norm_type)
    if not tensors:
        return Tensor._wrap(np.array(0.0, dtype=np.float32))
    norms = np.array([_vector_norm(t._data, norm_type) for t in tensors])
    total = _vector_norm(norms, norm_type)
    dt = np.result_type(*(t._data.dtype for t in tensors))
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is "
            "non-finite, so it cannot be clipped. To disable this error and scale the "
            "gradients by the non-finite norm anyway, set `error_if_nonfinite=False`")
    if _on_host(tensors[0]._data):
        return Tensor._wrap(np.array(total, dtype=dt))
    from ..._ops import backend

    return Tensor._wrap(backend(tensors[0]._data).full((), total, dt))  # on the grads' device


def clip_grads_with_norm_(parameters, max_norm: float, total_norm: Tensor,
                          foreach=None) -> None:
    """Scale the gradients by ``min(1, max_norm / (total_norm + 1e-6))``, in place."""
    grads = _grads(parameters)
    if not grads:
        return
    norm = total_norm._data if isinstance(total_norm, Tensor) else np.asarray(total_norm)
    if not _on_host(norm):
        norm = norm.get()
    dt = norm.dtype if norm.dtype.kind == "f" else np.dtype(np.float32)
    coef = dt.type(max_norm) / (norm.astype(dt) + dt.type(1e-6))
    coef = min(coef, dt.type(1.0)) if not np.isnan(coef) else coef
    for g in grads:
        _inplace._writable(g)
        d = g._data
        if _on_host(d):
            d *= d.dtype.type(coef)
        else:
            from ..._ops import backend

            d[...] = backend(d).binary("mul", d, np.asarray(coef, dtype=d.dtype), d.shape)
        _inplace.bump(g)


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach=None) -> Tensor:
    """Rescale the gradients in place so that their total norm is at most `max_norm`;
    returns the total norm before clipping."""
    parameters = _tensors(parameters)
    grads = _grads(parameters)
    total = get_total_norm(grads, norm_type, error_if_nonfinite)
    clip_grads_with_norm_(parameters, max_norm, total)
    return total


def clip_grad_value_(parameters, clip_value: float, foreach=None) -> None:
    """Clamp every gradient element into [-clip_value, clip_value], in place."""
    clip_value = float(clip_value)
    for g in _grads(parameters):
        _inplace._writable(g)
        d = g._data
        if _on_host(d):
            np.clip(d, -clip_value, clip_value, out=d)
        else:
            from ...autograd import grad_mode

            with grad_mode.no_grad():
                d[...] = Tensor._wrap(d).clamp(-clip_value, clip_value)._data
        _inplace.bump(g)
