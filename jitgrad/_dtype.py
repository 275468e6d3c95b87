"""dtypes: torch's names over numpy's storage types, and torch's type promotion."""

from __future__ import annotations

import numpy as np


class dtype:
    """A tensor element type (``jitgrad.float32``, ...)."""

    __slots__ = ("name", "np", "is_floating_point", "is_signed", "itemsize", "_rank")

    def __init__(self, name: str, np_type, rank: int):
        self.name = name
        self.np = np.dtype(np_type)
        self.is_floating_point = self.np.kind == "f"
        self.is_signed = self.np.kind in "fi"
        self.itemsize = self.np.itemsize
        self._rank = rank

    def __repr__(self) -> str:
        return f"jitgrad.{self.name}"

    def __reduce__(self):
        return (_by_name, (self.name,))

    @property
    def is_complex(self) -> bool:
        return False


bool_ = dtype("bool", np.bool_, 0)
uint8 = dtype("uint8", np.uint8, 1)
int8 = dtype("int8", np.int8, 1)
int16 = dtype("int16", np.int16, 2)
int32 = dtype("int32", np.int32, 3)
int64 = dtype("int64", np.int64, 4)
float32 = dtype("float32", np.float32, 6)
float64 = dtype("float64", np.float64, 7)

ALL = (bool_, uint8, int8, int16, int32, int64, float32, float64)
_BY_NAME = {d.name: d for d in ALL}
_BY_NAME.update(float=float32, double=float64, long=int64, int=int32, short=int16,
                bool=bool_, half=None)
FROM_NP = {d.np: d for d in ALL}

_default = [float32]


def _by_name(name: str) -> dtype:
    return _BY_NAME[name]


def get_default_dtype() -> dtype:
    return _default[0]


def set_default_dtype(d: dtype) -> None:
    if d not in (float32, float64):
        raise TypeError(f"only floating-point types are supported as the default type, got {d}")
    _default[0] = d


def to_dtype(d) -> dtype:
    """Accept a jitgrad dtype, a numpy dtype or type, or a Python type."""
    if isinstance(d, dtype):
        return d
    if d is float:
        return _default[0]
    if d is int:
        return int64
    if d is bool:
        return bool_
    try:
        return FROM_NP[np.dtype(d)]
    except (TypeError, KeyError):
        raise TypeError(f"unsupported dtype {d!r}; jitgrad supports "
                        + ", ".join(x.name for x in ALL)) from None


def _category(d: dtype) -> int:
    return 2 if d.is_floating_point else (0 if d is bool_ else 1)


def promote_types(a: dtype, b: dtype) -> dtype:
    """torch.promote_types: the smallest type both operands convert to without losing kind."""
    if a is b:
        return a
    ca, cb = _category(a), _category(b)
    if ca != cb:
        return a if ca > cb else b  # an integer meets a float: the float wins, as in torch
    return FROM_NP[np.promote_types(a.np, b.np)]


def scalar_dtype(v) -> dtype:
    """The dtype a Python number takes part in promotion with (torch's wrapped numbers)."""
    if isinstance(v, bool):
        return bool_
    if isinstance(v, int):
        return int64
    return _default[0]


def result_type(*operands) -> dtype:
    """torch.result_type over tensors and Python scalars: dimensioned tensors take precedence
    over 0-d tensors, which take precedence over Python numbers, unless a lower group has a
    higher category (bool < integer < floating)."""
    from .tensor import Tensor

    groups = [None, None, None]  # dimensioned tensors, 0-d tensors, Python numbers
    for o in operands:
        if isinstance(o, Tensor):
            d = o.dtype
            g = 0 if o._data.ndim else 1
        else:
            d = scalar_dtype(o)
            g = 2
        groups[g] = d if groups[g] is None else promote_types(groups[g], d)
    return _combine(groups[0], _combine(groups[1], groups[2]))


def _combine(higher, lower):
    if higher is None:
        return lower
    if lower is None or higher.is_floating_point:
        return higher
    if higher is bool_ or lower.is_floating_point:
        return promote_types(higher, lower)
    return higher
