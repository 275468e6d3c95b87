"""Sorting: sort, argsort, topk and msort. One kernel per device gives the stable order of
each row (``kernels/sort.py``, ``kernels/cuda/sort.py``); values are picked with gather,
and their gradient goes back to the picked positions (SortBackward0, TopkBackward0)."""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from . import _ops as O
from . import _shape_ops as S
from . import derivatives as D
from .autograd.graph import record
from .autograd.grad_mode import no_grad
from .tensor import Tensor, _wrap_dim

_wrap = Tensor._wrap

return_types_sort = namedtuple("sort", ["values", "indices"])
return_types_topk = namedtuple("topk", ["values", "indices"])


def _check(x, fn: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{fn}(): argument 'input' (position 1) must be Tensor, not "
                        f"{type(x).__name__}")
    if x._data.dtype.kind == "c":
        raise RuntimeError(f"{fn}(): complex tensors are not supported")


def _order(x: Tensor, d: int, descending: bool, k: int | None = None):
    """The positions along dim d that sort x (the first k of them when k is given), as a
    backend int64 array of x's shape (k along d)."""
    xd = x._data
    if xd.ndim == 0:
        return O.backend(xd).zeros((), np.int64)
    moved = np.moveaxis(xd, d, -1)
    C = moved.shape[-1]
    rows = int(np.prod(moved.shape[:-1], dtype=np.int64))
    x2 = (moved if moved.flags.c_contiguous else moved.copy()).reshape(rows, C)
    idx = O.backend(xd).argsort(x2, bool(descending))
    if k is not None:
        idx = idx[:, :k]
        idx = idx if idx.flags.c_contiguous else idx.copy()
        C = k
    idx = np.moveaxis(idx.reshape(moved.shape[:-1] + (C,)), -1, d)
    return idx if idx.flags.c_contiguous else idx.copy()


def _picked(x: Tensor, d: int, idx, rule) -> Tensor:
    with no_grad():
        values = S._gather(x, d, idx) if x._data.ndim else O.clone(x)
    return record(rule, values, (x,), (x._data.shape, d, idx))


def sort(input: Tensor, dim: int = -1, descending: bool = False,  # noqa: A002
         stable: bool = False, *, out=None):
    """(values, indices): input sorted along dim, ascending unless descending. Equal values
    keep their order (the sort is always stable); NaN counts as the largest value."""
    if out is not None:
        raise TypeError("sort(): out= is not supported")
    _check(input, "sort")
    d = _wrap_dim(int(dim), input._data.ndim)
    idx = _order(input, d, descending)
    return return_types_sort(_picked(input, d, idx, D.SORT), _wrap(idx))


def argsort(input: Tensor, dim: int = -1, descending: bool = False,  # noqa: A002
            stable: bool = False) -> Tensor:
    """The indices that sort input along dim (sort's second output)."""
    _check(input, "argsort")
    d = _wrap_dim(int(dim), input._data.ndim)
    return _wrap(_order(input, d, descending))


def msort(input: Tensor) -> Tensor:  # noqa: A002
    """input sorted along its first dim."""
    return sort(input, 0).values


def topk(input: Tensor, k: int, dim: int = -1, largest: bool = True,  # noqa: A002
         sorted: bool = True, *, out=None):  # noqa: A002
    """(values, indices) of the k largest (or smallest) elements along dim, in order."""
    if out is not None:
        raise TypeError("topk(): out= is not supported")
    _check(input, "topk")
    xd = input._data
    d = _wrap_dim(int(dim), xd.ndim)
    n = xd.shape[d] if xd.ndim else 1
    k = int(k)
    if not 0 <= k <= n:
        raise RuntimeError("selected index k out of range")
    idx = _order(input, d, largest, k)
    return return_types_topk(_picked(input, d, idx, D.TOPK), _wrap(idx))


__all__ = ["sort", "argsort", "msort", "topk"]

METHODS = {name: globals()[name] for name in __all__}
