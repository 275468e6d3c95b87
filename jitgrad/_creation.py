"""Tensor creation: from data, filled, ranges and random."""

from __future__ import annotations

import numpy as np

from . import _dtype
from . import _random
from ._device import chosen_default, default_or, host as _host, move, to_device
from .tensor import Tensor
from .kernels import settings

_wrap = Tensor._wrap


def _finish(data: np.ndarray, requires_grad: bool, device=None, capital: bool = True) -> Tensor:
    # Made on the host and copied over for CUDA (which draws from the CPU generator).
    data = move(data, default_or(device))
    t = _wrap(data)
    if requires_grad:
        if data.dtype.kind != "f":
            raise RuntimeError(
                "Only Tensors of floating point and complex dtype can require gradients"
                if capital else "only Tensors of floating point dtype can require gradients")
        t._requires_grad = True
    return t


def _filled(shape: tuple, dt, value, requires_grad: bool, device) -> Tensor:
    """A tensor of `shape` filled with `value` (None: left uninitialised) on `device`: on the
    GPU an allocation and a fill kernel, nothing copied over from the host (a copy would
    wait for every kernel queued before it)."""
    dev = default_or(device)
    if value is None and settings["deterministic"]:
        value = _uninitialized(dt)
    if dev.type != "cuda":
        a = (np.empty(shape, dtype=dt) if value is None else
             np.zeros(shape, dtype=dt) if value == 0 else  # lazily zeroed pages
             np.full(shape, value, dtype=dt))
        return _finish(a, requires_grad, dev)
    from . import cuda

    dt = np.dtype(dt)
    data = cuda._backend().empty(tuple(shape), dt)
    if value is not None and data.size:
        data.fill(dt.type(value))
    return _finish(data, requires_grad, dev)


def _uninitialized(dt):
    """What deterministic mode fills new memory with (None: nothing, when switched off)."""
    from .utils import deterministic

    if not deterministic.fill_uninitialized_memory:
        return None
    dt = np.dtype(dt)
    if dt.kind == "f":
        return np.nan
    return True if dt.kind == "b" else np.iinfo(dt).max


def _np_dtype(dtype, default=None) -> np.dtype:
    if dtype is None:
        return default if default is not None else _dtype.get_default_dtype().np
    return _dtype.to_dtype(dtype).np


# Keyword arguments torch's factories take beyond size, dtype and device: pin_memory (the
# factories that take **kw copy into page-locked memory when it is set), and those that change
# nothing here (strided CPU/CUDA memory only); anything else is a typo or unsupported, and
# raises as in torch.
_IGNORED_KW = {"layout", "pin_memory", "memory_format", "names"}


def _kw(fn: str, size: tuple, kw: dict) -> tuple:
    """size, taken from size= when not given positionally; unknown keywords raise."""
    if "size" in kw:
        if size:
            raise TypeError(f"{fn}() got multiple values for argument 'size'")
        v = kw.pop("size")
        size = (tuple(v),) if isinstance(v, (tuple, list)) else (v,)
    if kw.get("out") is not None:
        raise TypeError(f"{fn}(): out= is not supported")
    kw.pop("out", None)
    for k in kw:
        if k not in _IGNORED_KW:
            raise TypeError(f"{fn}() got an unexpected keyword argument '{k}'")
    return size


def _size(size) -> tuple:
    if len(size) == 1 and not isinstance(size[0], (int, np.integer)):
        size = tuple(size[0])
    out = []
    for s in size:
        if isinstance(s, Tensor):
            s = s.item()
        if not isinstance(s, (int, np.integer)):
            raise TypeError(f"size must contain ints, got {type(s).__name__}")
        if s < 0:
            raise RuntimeError(
                f"Trying to create tensor with negative dimension {s}: {list(size)}")
        out.append(int(s))
    return tuple(out)


def _is_python_data(data) -> bool:
    return isinstance(data, (list, tuple, bool, int, float))


def _plain(data):
    """Nested lists with tensors or numpy scalars inside, as plain Python values."""
    if isinstance(data, Tensor):
        return data._data.tolist()
    if isinstance(data, np.ndarray):
        return data.tolist()
    if isinstance(data, (list, tuple)):
        return [_plain(d) for d in data]
    if isinstance(data, np.generic):
        return data.item()
    return data


def _infer_np(data) -> np.dtype:
    """torch's rule: each element has a type (a Python float the default float, an int
    int64, a bool bool, a tensor or numpy value its dtype), and the types promote."""
    found = set()

    def walk(d):
        if isinstance(d, (list, tuple, range)):
            for e in d:
                walk(e)
        elif isinstance(d, (np.ndarray, np.generic)):  # before float: np.float64 is a float
            found.add(_dtype.to_dtype(d.dtype))
        elif isinstance(d, bool):
            found.add(_dtype.bool_)
        elif isinstance(d, int):
            found.add(_dtype.int64)
        elif isinstance(d, float):
            found.add(_dtype.get_default_dtype())
        elif isinstance(d, Tensor):
            found.add(d.dtype)
        else:
            raise RuntimeError(f"Could not infer dtype of {type(d).__name__}")

    walk(data)
    if not found:
        return _dtype.get_default_dtype().np
    out = None
    for d in found:
        out = d if out is None else _dtype.promote_types(out, d)
    return out.np


def _check_ragged(data, dim: int = 0, kind: str = "f") -> None:
    if not isinstance(data, list) or not data:
        return
    first = data[0]
    n = len(first) if isinstance(first, list) else None
    for e in data:
        m = len(e) if isinstance(e, list) else None
        if m != n:
            if m is None:  # a number where the first element had a sequence
                raise TypeError("not a sequence")
            if n is None:  # a sequence where a number belongs: torch's conversion error
                raise TypeError("must be real number, not list" if kind == "f"
                                else "'list' object cannot be interpreted as an integer")
            raise ValueError(f"expected sequence of length {n} at dim {dim + 1} (got {m})")
    for e in data:
        _check_ragged(e, dim + 1, kind)


def tensor(data, dtype=None, device=None, requires_grad: bool = False,
           pin_memory: bool = False) -> Tensor:
    """A new tensor holding a copy of `data` (nested lists, numbers, arrays or tensors)."""
    if isinstance(data, Tensor):
        arr = data._data.astype(_np_dtype(dtype, data._data.dtype), copy=True)
        if device is None:  # the default device when one was chosen, as in torch
            device = chosen_default() or data.device
        return _pinned(_finish(arr, requires_grad, device), pin_memory)
    elif isinstance(data, np.ndarray):
        arr = np.array(data, dtype=_np_dtype(dtype, data.dtype), copy=True)
        _dtype.to_dtype(arr.dtype)
    else:
        dt = _np_dtype(dtype, _infer_np(data))
        plain = _plain(data)
        _check_ragged(plain, kind=dt.kind)
        arr = np.array(plain, dtype=dt)
    return _pinned(_finish(np.require(arr, requirements="C"), requires_grad, device,
                           capital=True), pin_memory)


def _pinned(t: Tensor, pin: bool) -> Tensor:
    """t, or (pin_memory=True) its copy in page-locked memory: a fresh leaf like t."""
    if not pin:
        return t
    from ._ops import pin_memory

    p = pin_memory(t.detach())
    p._requires_grad = t._requires_grad
    return p


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """`data` as a tensor without a copy where it can: a tensor of the asked dtype on the
    asked (or default) device is itself, a numpy array on the CPU shares its memory."""
    if isinstance(data, Tensor):
        want = data.device if device is None and chosen_default() is None else \
            default_or(device)
        if dtype is None or data.dtype is _dtype.to_dtype(dtype):
            if want == data.device:
                return data
            return data.to(want)
        return data.to(device=want, dtype=dtype)
    if isinstance(data, np.ndarray) and (dtype is None or data.dtype == _np_dtype(dtype)) \
            and default_or(device).type == "cpu":
        return from_numpy(data)  # shares the array's memory
    return tensor(data, dtype=dtype, device=device)


def from_numpy(a: np.ndarray) -> Tensor:
    """A tensor sharing memory with numpy array `a`."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(a).__name__})")
    try:
        _dtype.to_dtype(a.dtype)
    except TypeError:
        raise TypeError(f"can't convert np.ndarray of type numpy.{a.dtype}. The only supported "
                        "types are: float64, float32, int64, int32, int16, int8, uint8, and "
                        "bool.") from None
    if a.__class__ is not np.ndarray:  # a memmap or other subclass: the same memory, as a
        a = a.view(np.ndarray)  # plain array (storage arrays are told apart by class)
    return _wrap(a)


def empty(*size, dtype=None, device=None, requires_grad: bool = False, **kw) -> Tensor:
    size = _kw("empty", size, kw)
    return _pinned(_filled(_size(size), _np_dtype(dtype), None, requires_grad, device),
                   kw.get("pin_memory", False))


def zeros(*size, dtype=None, device=None, requires_grad: bool = False, **kw) -> Tensor:
    size = _kw("zeros", size, kw)
    return _pinned(_filled(_size(size), _np_dtype(dtype), 0, requires_grad, device),
                   kw.get("pin_memory", False))


def ones(*size, dtype=None, device=None, requires_grad: bool = False, **kw) -> Tensor:
    size = _kw("ones", size, kw)
    return _pinned(_filled(_size(size), _np_dtype(dtype), 1, requires_grad, device),
                   kw.get("pin_memory", False))


def _fill_dtype(value) -> np.dtype:
    if isinstance(value, bool):
        return np.dtype(np.bool_)
    if isinstance(value, (int, np.integer)):
        return np.dtype(np.int64)
    return _dtype.get_default_dtype().np


def full(size, fill_value, dtype=None, device=None, requires_grad: bool = False,
         pin_memory: bool = False, **_) -> Tensor:
    if isinstance(fill_value, Tensor):
        fill_value = fill_value.item()
    dt = _np_dtype(dtype, _fill_dtype(fill_value))
    return _pinned(_filled(_size((size,)), dt, fill_value, requires_grad, device), pin_memory)


def _like(t: Tensor, dtype):
    return t._data.shape, (t._data.dtype if dtype is None else _np_dtype(dtype))


def _like_device(t: Tensor, device):
    return t.device if device is None else device


def empty_like(t: Tensor, dtype=None, device=None, requires_grad: bool = False, **_) -> Tensor:
    shape, dt = _like(t, dtype)
    return _filled(shape, dt, None, requires_grad, _like_device(t, device))


def zeros_like(t: Tensor, dtype=None, device=None, requires_grad: bool = False, **_) -> Tensor:
    shape, dt = _like(t, dtype)
    return _filled(shape, dt, 0, requires_grad, _like_device(t, device))


def ones_like(t: Tensor, dtype=None, device=None, requires_grad: bool = False, **_) -> Tensor:
    shape, dt = _like(t, dtype)
    return _filled(shape, dt, 1, requires_grad, _like_device(t, device))


def full_like(t: Tensor, fill_value, dtype=None, device=None, requires_grad: bool = False,
              **_) -> Tensor:
    shape, dt = _like(t, dtype)
    return _filled(shape, dt, fill_value, requires_grad, _like_device(t, device))


def _zeros_meta(meta) -> Tensor:
    """Zeros for an output described by (shape, dtype, device)."""
    shape, dt, dev = meta
    return _wrap(move(np.zeros(shape, dtype=dt), dev))


def arange(start, end=None, step=1, *, dtype=None, device=None,
           requires_grad: bool = False) -> Tensor:
    if end is None:
        start, end = 0, start
    vals = [v.item() if isinstance(v, Tensor) else v for v in (start, end, step)]
    start, end, step = vals
    if step == 0:
        raise RuntimeError("step must be nonzero")
    if (end - start) * step < 0:
        raise RuntimeError("upper bound and lower bound inconsistent with step sign")
    integral = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in vals)
    dt = _np_dtype(dtype, np.dtype(np.int64) if integral else None)
    n = int(np.ceil((end - start) / step))
    data = (start + np.arange(n, dtype=np.float64) * step) if not integral else (
        start + np.arange(n, dtype=np.int64) * step)
    return _finish(data.astype(dt), requires_grad, device)


def linspace(start, end, steps: int, *, dtype=None, device=None,
             requires_grad: bool = False) -> Tensor:
    if steps < 0:
        raise RuntimeError("number of steps must be non-negative")
    dt = _np_dtype(dtype)
    compute = dt if dt.kind == "f" else np.dtype(np.float64)
    s, e = compute.type(start), compute.type(end)
    if steps <= 1:
        data = np.full(steps, s, dtype=compute)
    else:
        # Symmetric fill: the first half counts up from start, the second half down from end.
        step = (e - s) / compute.type(steps - 1)
        i = np.arange(steps)
        half = steps // 2
        data = np.where(i < half, s + step * i.astype(compute),
                        e - step * (steps - 1 - i).astype(compute)).astype(compute)
    return _finish(data.astype(dt), requires_grad, device)


def eye(n: int, m: int | None = None, *, dtype=None, device=None,
        requires_grad: bool = False) -> Tensor:
    if n < 0 or (m is not None and m < 0):
        raise RuntimeError(f"n must be greater or equal to 0, got {n if n < 0 else m}")
    return _finish(np.eye(n, m, dtype=_np_dtype(dtype)), requires_grad, device)


# --------------------------------------------------------------------------- random

manual_seed = _random.manual_seed
seed = _random.seed
initial_seed = _random.initial_seed
Generator = _random.Generator


def get_rng_state() -> Tensor:
    """The default generator's state, as torch's uint8 tensor of 5056 bytes."""
    return Tensor._wrap(_random.get_rng_state())


def set_rng_state(new_state) -> None:
    """Restore a state from ``get_rng_state`` (a uint8 tensor, array or bytes)."""
    if isinstance(new_state, Tensor):
        new_state = _host(new_state._data)
    _random.set_rng_state(new_state)


def rand(*size, generator=None, dtype=None, device=None, requires_grad: bool = False,
         **kw) -> Tensor:
    size = _kw("rand", size, kw)
    dt = _np_dtype(dtype)
    return _pinned(_finish(_random.uniform(_size(size), dt, generator=generator),
                           requires_grad, device), kw.get("pin_memory", False))


def randn(*size, generator=None, dtype=None, device=None, requires_grad: bool = False,
          **kw) -> Tensor:
    size = _kw("randn", size, kw)
    dt = _np_dtype(dtype)
    return _pinned(_finish(_random.normal(_size(size), dt, generator=generator),
                           requires_grad, device), kw.get("pin_memory", False))


def randint(low, high=None, size=None, *, generator=None, dtype=None, device=None,
            requires_grad: bool = False) -> Tensor:
    if size is None:  # randint(high, size)
        low, high, size = 0, low, high
    if size is None:
        raise TypeError("randint() missing required argument 'size'")
    if high <= low:
        raise RuntimeError(
            f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}")
    dt = _np_dtype(dtype, np.dtype(np.int64))
    return _finish(_random.randint(low, high, _size((size,)), dt, generator=generator),
                   requires_grad, device)


def randperm(n: int, *, generator=None, dtype=None, device=None,
             requires_grad: bool = False) -> Tensor:
    dt = _np_dtype(dtype, np.dtype(np.int64))
    return _finish(_random.randperm(n, dt, generator=generator), requires_grad, device)


def rand_like(t: Tensor, dtype=None, **kw) -> Tensor:
    shape, dt = _like(t, dtype)
    kw["device"] = _like_device(t, kw.get("device"))
    return rand(shape, dtype=_dtype.FROM_NP[dt], **kw)


def randn_like(t: Tensor, dtype=None, **kw) -> Tensor:
    shape, dt = _like(t, dtype)
    kw["device"] = _like_device(t, kw.get("device"))
    return randn(shape, dtype=_dtype.FROM_NP[dt], **kw)


def randint_like(t: Tensor, low, high=None, dtype=None, **kw) -> Tensor:
    shape, dt = _like(t, dtype)
    if high is None:  # randint_like(t, high)
        low, high = 0, low
    kw["device"] = _like_device(t, kw.get("device"))
    return randint(low, high, shape, dtype=_dtype.FROM_NP[dt], **kw)
