"""Tensor methods and operators, bound to the op layer's functions."""

from __future__ import annotations

import numpy as np

from . import _dtype
from . import _ops as O
from . import _pointwise as P
from . import _views as V
from ._device import device as _device_cls
from ._device import CPU, to_device
from .autograd import grad_mode
from .tensor import Tensor


def _matrix_check(name: str, a: Tensor, b: Tensor, na: int, nb: int) -> None:
    if a._data.ndim != na:
        raise RuntimeError(f"{name}: self must be a {na}D tensor, got {a._data.ndim}D")
    if b._data.ndim != nb:
        raise RuntimeError(f"{name}: argument must be a {nb}D tensor, got {b._data.ndim}D")


def mm(a: Tensor, b: Tensor) -> Tensor:
    _matrix_check("mm", a, b, 2, 2)
    return O.matmul(a, b)


def bmm(a: Tensor, b: Tensor) -> Tensor:
    _matrix_check("bmm", a, b, 3, 3)
    if a._data.shape[0] != b._data.shape[0]:
        raise RuntimeError(f"bmm: batch sizes differ: {list(a._data.shape)} and "
                           f"{list(b._data.shape)}")
    return O.matmul(a, b, _bmm=True)


def mv(a: Tensor, v: Tensor) -> Tensor:
    _matrix_check("mv", a, v, 2, 1)
    return O.matmul(a, v)


def dot(a: Tensor, b: Tensor) -> Tensor:
    if a._data.ndim != 1 or b._data.ndim != 1:
        raise RuntimeError(f"1D tensors expected, but got {a._data.ndim}D and "
                           f"{b._data.ndim}D tensors")
    return O.matmul(a, b)


def _parse_to(args, kwargs):
    dtype = kwargs.pop("dtype", None)
    dev = kwargs.pop("device", None)
    if isinstance(dev, (int, np.integer)) and not isinstance(dev, bool):
        dev = _device_cls("cuda", int(dev))
    copy = kwargs.pop("copy", False)
    kwargs.pop("non_blocking", None)
    if kwargs:
        raise TypeError(f"to() got unexpected keyword arguments {sorted(kwargs)}")
    for a in args:
        if isinstance(a, Tensor):
            dtype, dev = a.dtype, a.device
        elif isinstance(a, (_dtype.dtype, type)) or (
                isinstance(a, np.dtype)):
            dtype = a
        elif isinstance(a, (str, _device_cls)):
            dev = a
        elif isinstance(a, bool):
            copy = a
        elif isinstance(a, (int, np.integer)):  # a GPU's index, as in torch
            dev = _device_cls("cuda", int(a))
        else:
            raise TypeError(f"to() received an invalid argument {a!r}")
    return dtype, dev, copy


def to(x: Tensor, *args, **kwargs) -> Tensor:
    dtype, dev, copy = _parse_to(args, dict(kwargs))
    if dev is not None:
        dev = to_device(dev)
        if dev != x.device:
            x = O.to_device(x, dev)
            copy = False  # already a new tensor
    if dtype is None:
        return O.clone(x) if copy else x
    return O.to_dtype(x, dtype, copy)


def _where_method(self: Tensor, condition: Tensor, other) -> Tensor:
    return O.where(condition, self, other)


METHODS = {
    "__add__": O.add, "__radd__": O.add, "add": O.add,
    "__sub__": O.sub, "__rsub__": O.rsub, "sub": O.sub, "subtract": O.sub,
    "__mul__": O.mul, "__rmul__": O.mul, "mul": O.mul, "multiply": O.mul,
    "__truediv__": O.div, "__rtruediv__": O.rdiv, "div": O.div, "divide": O.div,
    "true_divide": O.div,
    "__pow__": O.pow, "__rpow__": lambda x, base: O.pow(base, x), "pow": O.pow,
    "__neg__": O.neg, "neg": O.neg, "negative": O.neg,
    "__pos__": O.positive, "positive": O.positive,
    "__mod__": P.remainder, "__rmod__": lambda x, s: P.remainder(s, x),
    "__floordiv__": P.floor_divide, "__rfloordiv__": lambda x, s: P.floor_divide(s, x),
    "__abs__": O.abs, "abs": O.abs,
    "__matmul__": O.matmul, "__rmatmul__": lambda b, a: O.matmul(a, b), "matmul": O.matmul,
    "mm": mm, "bmm": bmm, "mv": mv, "dot": dot,
    "__eq__": lambda a, b: False if b is None else O.eq(a, b),  # t == None is False
    "__ne__": lambda a, b: True if b is None else O.ne(a, b), "__lt__": O.lt, "__le__": O.le, "__gt__": O.gt,
    "__ge__": O.ge, "eq": O.eq, "ne": O.ne, "lt": O.lt, "le": O.le, "gt": O.gt, "ge": O.ge,
    "__and__": O.bitwise_and, "__rand__": O.bitwise_and, "__or__": O.bitwise_or,
    "__ror__": O.bitwise_or, "__xor__": O.bitwise_xor, "__rxor__": O.bitwise_xor,
    "__invert__": O.bitwise_not,
    "logical_and": O.logical_and, "logical_or": O.logical_or, "logical_not": O.logical_not,
    "logical_xor": O.logical_xor,
    "exp": O.exp, "log": O.log, "sqrt": O.sqrt, "tanh": O.tanh, "sigmoid": O.sigmoid,
    "relu": O.relu, "sign": O.sign, "reciprocal": O.reciprocal,
    "clamp": O.clamp, "clip": O.clamp,
    "maximum": O.maximum, "minimum": O.minimum, "where": _where_method,
    "sum": O.sum, "mean": O.mean, "max": O.max, "min": O.min,
    "reshape": V.reshape, "view": V.view, "flatten": V.flatten,
    "view_as": lambda x, o: V.view(x, o._data.shape),
    "reshape_as": lambda x, o: V.reshape(x, o._data.shape),
    "transpose": V.transpose, "swapaxes": V.transpose, "t": V.t, "permute": V.permute,
    "unsqueeze": V.unsqueeze, "squeeze": V.squeeze, "expand": V.expand,
    "expand_as": V.expand_as,
    "__getitem__": V.getitem,
    "clone": lambda x, memory_format=None: O.clone(x), "contiguous": O.contiguous,
    "to": to,
    "float": lambda x: O.to_dtype(x, _dtype.float32),
    "double": lambda x: O.to_dtype(x, _dtype.float64),
    "long": lambda x: O.to_dtype(x, _dtype.int64),
    "int": lambda x: O.to_dtype(x, _dtype.int32),
    "bool": lambda x: O.to_dtype(x, _dtype.bool_),
    "type_as": lambda x, o: O.to_dtype(x, o.dtype),
    "cpu": lambda x, memory_format=None: O.to_device(x, CPU),
    "cuda": lambda x, device=None, non_blocking=False, memory_format=None: to(
        x, "cuda" if device is None else
        _device_cls("cuda", int(device)) if isinstance(device, (int, np.integer)) else device),
    "record_stream": lambda x, stream: None,  # one queue: its memory is never reused early
    "pin_memory": O.pin_memory, "is_pinned": O.is_pinned,
}

PROPERTIES = {"T": V.T, "mT": V.mT}


def install() -> None:
    from . import _composite, _extras, _inplace, _pointwise, _reductions, _shape_ops, _sorting

    for family in (METHODS, _pointwise.METHODS, _reductions.METHODS, _shape_ops.METHODS,
                   _composite.METHODS, _sorting.METHODS, _extras.METHODS, _inplace.methods()):
        for name, fn in family.items():
            setattr(Tensor, name, fn)
    for name, fn in PROPERTIES.items():
        setattr(Tensor, name, property(fn))
