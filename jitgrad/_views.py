"""Shape and indexing primitives. Views share their input's storage; their backward rules
(in ``derivatives.py``) move the gradient back to the input's layout."""

from __future__ import annotations

import numpy as np

from . import _ops
from ._device import host as _host  # (index data is validated on the host)
from . import derivatives as D
from .autograd.graph import record
from .tensor import Tensor, _wrap_dim

_wrap = Tensor._wrap


def _view(x: Tensor, v: np.ndarray, fn) -> Tensor:
    """A tensor over `v`, a view of x's storage: it shares x's version counter and knows its
    base and how to replay itself (`fn`) on another tensor, which in-place ops need."""
    out = _wrap(v)
    ver = x._ver
    if ver is None:
        ver = x._ver = [0]
    out._ver = ver
    out._gver = ver[0]
    prev = x._view_fn
    if prev is None:
        out._base = x
        out._view_fn = fn
    else:
        out._base = x._base
        out._view_fn = lambda t: fn(prev(t))
    return out


def _shape_arg(shape) -> tuple:
    """Accept f(2, 3), f((2, 3)), f([2, 3]) and f(Size)."""
    if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
        shape = tuple(shape[0])
    try:
        return tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError(f"shape must be a sequence of ints, got {shape!r}") from None


def _infer(shape: tuple, numel: int) -> tuple:
    if shape.count(-1) > 1:
        raise RuntimeError("only one dimension can be inferred")
    known = 1
    for i, s in enumerate(shape):
        if s != -1:
            if s < 0:
                raise RuntimeError(
                    f"invalid shape dimension {s} at index {i} of shape {list(shape)}")
            known *= s
    if -1 in shape:
        if known == 0 or numel % known:
            raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
        shape = tuple(numel // known if s == -1 else s for s in shape)
    elif known != numel:
        raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
    return shape


def _view_data(d: np.ndarray, shape: tuple):
    """`d` reshaped without a copy, or None when its strides do not allow that."""
    if d.flags.c_contiguous:
        return d.reshape(shape)
    try:
        return np.reshape(d, shape, copy=False)
    except (ValueError, TypeError):
        return None


def reshape(x: Tensor, *shape):
    shape = _infer(_shape_arg(shape), x._data.size)
    d = x._data
    if d.shape == shape:
        return x if not x._requires_grad else _record_view(x, d, shape)
    v = _view_data(d, shape)
    if v is None:  # as torch: a contiguous clone, then an _unsafe_view of it
        c = _ops.clone(x)
        return record(D.UNSAFE_VIEW, _wrap(c._data.reshape(shape)), (c,), (d.shape,))
    return _record_view(x, v, shape)


def _record_view(x: Tensor, v: np.ndarray, shape: tuple):
    shape = v.shape
    return record(D.VIEW, _view(x, v, lambda t: view(t, shape)), (x,), (x._data.shape,))


def view(x: Tensor, *shape):
    if len(shape) == 1 and not isinstance(shape[0], (int, np.integer, tuple, list)) and \
            not hasattr(shape[0], "__len__"):
        raise TypeError("view(dtype) is not supported; use .to(dtype)")
    shape = _infer(_shape_arg(shape), x._data.size)
    v = _view_data(x._data, shape)
    if v is None:
        raise RuntimeError(
            "view size is not compatible with input tensor's size and stride (at least one "
            "dimension spans across two contiguous subspaces). Use .reshape(...) instead.")
    return _record_view(x, v, shape)


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1):
    nd = x._data.ndim
    s = _wrap_dim(start_dim, nd)
    e = _wrap_dim(end_dim, nd)
    if s > e:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    if nd == 0:
        return reshape(x, 1)
    if s == e:  # torch returns the tensor itself
        return x
    shape = x._data.shape
    return reshape(x, shape[:s] + (-1,) + shape[e + 1:]) if x._data.size else \
        reshape(x, shape[:s] + (int(np.prod(shape[s:e + 1])),) + shape[e + 1:])


def transpose(x: Tensor, dim0: int, dim1: int):
    nd = x._data.ndim
    d0, d1 = _wrap_dim(dim0, nd), _wrap_dim(dim1, nd)
    v = np.swapaxes(x._data, d0, d1) if nd else x._data
    return record(D.TRANSPOSE, _view(x, v, lambda t: transpose(t, d0, d1)), (x,), (d0, d1))


def t(x: Tensor):
    nd = x._data.ndim
    if nd > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {nd}D")
    return record(D.T, _view(x, x._data.T, t), (x,))


def permute(x: Tensor, *dims):
    dims = _shape_arg(dims)
    nd = x._data.ndim
    if len(dims) != nd:
        raise RuntimeError(
            "permute(sparse_coo): number of dimensions in the tensor input does not match the "
            f"length of the desired ordering of dimensions i.e. input.dim() = {nd} is not equal "
            f"to len(dims) = {len(dims)}")
    dims = tuple(_wrap_dim(d, nd) for d in dims)
    if len(set(dims)) != nd:
        raise RuntimeError("permute(): duplicate dims are not allowed.")
    return record(D.PERMUTE, _view(x, x._data.transpose(dims), lambda t: permute(t, dims)),
                  (x,), (dims,))


def T(x: Tensor):
    return permute(x, tuple(range(x._data.ndim - 1, -1, -1)))


def mT(x: Tensor):
    if x._data.ndim < 2:
        raise RuntimeError("tensor.mT is only supported on matrices or batches of matrices. "
                           f"Got {x._data.ndim}-D tensor.")
    return transpose(x, -2, -1)


def unsqueeze(x: Tensor, dim: int):
    nd = x._data.ndim
    d = _wrap_dim(dim, nd + 1)
    return record(D.UNSQUEEZE, _view(x, np.expand_dims(x._data, d), lambda t: unsqueeze(t, d)),
                  (x,), (d,))


def squeeze(x: Tensor, dim=None):
    d = x._data
    if dim is None:
        v = d.reshape(tuple(n for n in d.shape if n != 1))
        return record(D.SQUEEZE, _view(x, v, squeeze), (x,), (d.shape,))
    dims = _ops.dims_of(dim, d.ndim) if d.ndim else ()
    v = d.reshape(tuple(n for i, n in enumerate(d.shape) if not (i in dims and n == 1)))
    rule = D.SQUEEZE_DIM if isinstance(dim, (int, np.integer)) else D.SQUEEZE_DIMS
    return record(rule, _view(x, v, lambda t: squeeze(t, dim)), (x,), (d.shape,))


def expand(x: Tensor, *sizes):
    sizes = _shape_arg(sizes)
    d = x._data
    nd, ns = d.ndim, len(sizes)
    if ns < nd:
        tname = ("CPUBoolType" if d.dtype == np.bool_
                 else f"torch.{_ops.torch_name(d.dtype)}Tensor")
        raise RuntimeError(
            f"expand({tname}{{{list(d.shape)}}}, size={list(sizes)}): the number of "
            f"sizes provided ({ns}) must be greater or equal to the number of dimensions in the "
            f"tensor ({nd})")
    target = list(sizes)
    for i in range(ns - 1, -1, -1):  # torch reports the rightmost bad size
        j = i - (ns - nd)
        if j < 0:
            if sizes[i] < 0:
                raise RuntimeError(
                    f"The expanded size of the tensor ({sizes[i]}) isn't allowed in a leading, "
                    f"non-existing dimension {i}")
            continue
        if sizes[i] == -1:
            target[i] = d.shape[j]
        elif d.shape[j] != 1 and d.shape[j] != sizes[i]:
            raise RuntimeError(
                f"The expanded size of the tensor ({sizes[i]}) must match the existing size "
                f"({d.shape[j]}) at non-singleton dimension {i}.  Target sizes: {list(sizes)}.  "
                f"Tensor sizes: {list(d.shape)}")
    target = tuple(target)
    return record(D.EXPAND, _view(x, broadcast_data(d, target), lambda t: expand(t, target)),
                  (x,), ())


def broadcast_data(d, target: tuple):
    """np.broadcast_to(d, target), read-only; for a contiguous host array it is built directly
    (stride 0 on the broadcast dims), without numpy's general Python path."""
    if d.__class__ is np.ndarray and d.flags.c_contiguous and d.size:
        lead = len(target) - d.ndim
        strides = [0] * lead
        for n, st in zip(d.shape, d.strides):
            strides.append(0 if n == 1 else st)
        for n, t in zip(d.shape, target[lead:]):
            if n != t and n != 1:
                raise ValueError(f"cannot broadcast {d.shape} to {target}")
        v = np.ndarray(target, d.dtype, buffer=d, strides=tuple(strides))
        v.flags.writeable = False
        return v
    return np.broadcast_to(d, target)


def expand_as(x: Tensor, other: Tensor):
    return expand(x, other._data.shape)


# --------------------------------------------------------------------------- basic indexing

def select(x: Tensor, dim: int, index: int):
    d = x._data
    if d.ndim == 0:
        raise IndexError("select() cannot be applied to a 0-dim tensor.")
    dm = _wrap_dim(dim, d.ndim)
    n = d.shape[dm]
    if not -n <= index < n:
        raise IndexError(f"index {index} is out of bounds for dimension {dm} with size {n}")
    i = index + n if index < 0 else index
    # Slicing then dropping the axis keeps a view even when the result is 0-d.
    v = d[(slice(None),) * dm + (slice(i, i + 1),)].reshape(d.shape[:dm] + d.shape[dm + 1:])
    return record(D.SELECT, _view(x, v, lambda t: select(t, dm, i)), (x,), (d.shape, dm, i))


def slice_dim(x: Tensor, dim: int, start, stop, step):
    d = x._data
    if step is not None and step <= 0:
        raise ValueError("step must be greater than zero")
    key = (slice(None),) * dim + (slice(start, stop, step),)
    return record(D.SLICE, _view(x, d[key], lambda t: slice_dim(t, dim, start, stop, step)),
                  (x,), (d.shape, key))


def select_backward(g: Tensor, shape: tuple, dim: int, index: int):
    out = _ops.backend(g._data).zeros(shape, g._data.dtype)
    out[(slice(None),) * dim + (index,)] = g._data
    return record(D.SELECT_BACKWARD, _wrap(out), (g,), (dim, index))


def slice_backward(g: Tensor, shape: tuple, key: tuple):
    out = _ops.backend(g._data).zeros(shape, g._data.dtype)
    out[key] = g._data
    return record(D.SLICE_BACKWARD, _wrap(out), (g,), (key,))


# --------------------------------------------------------------------------- advanced indexing

# Index arrays are validated, and their offsets computed, on the host; the data they index
# stays on its device.


def _contiguous(a):
    """`a`, or a C-contiguous copy of it on its device."""
    return a if a.flags.c_contiguous else a.copy()


def check_index_device(x: Tensor, key) -> None:
    """torch's error for an index tensor on a device other than the CPU and x's device."""
    parts = key if isinstance(key, tuple) else (key,)
    cls = x._data.__class__
    for p in parts:
        if isinstance(p, Tensor) and p._data.__class__ is not cls and \
                p._data.__class__ is not np.ndarray:
            raise RuntimeError(f"indices should be either on cpu or on the same device as the "
                               f"indexed tensor ({x.device})")

def _index_part(v):
    """Convert one entry of an index to int, slice, None, Ellipsis or a numpy index array."""
    if v is None or v is Ellipsis or isinstance(v, slice):
        return v
    if isinstance(v, bool):
        return np.array(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, Tensor):
        a = _host(v._data)
        if a.dtype.kind == "f":
            raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
        if a.dtype == np.uint8:
            a = a.astype(np.bool_)
        if a.ndim == 0 and a.dtype.kind in "iu":
            return int(a)
        return a
    if isinstance(v, (list, tuple)):
        a = np.array(v)
        if a.size == 0:  # x[[]]: no positions (numpy reads [] as float)
            return a.astype(np.int64)
        if a.dtype.kind == "f" or a.dtype == object:
            raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
        return a
    if isinstance(v, np.ndarray):
        return v
    raise IndexError(
        "only integers, slices (`:`), ellipsis (`...`), None and long or byte Variables are "
        "valid indices (got " + type(v).__name__ + ")")


def _normalize_key(key, shape: tuple) -> tuple:
    """The index as a tuple, Ellipsis expanded, every entry validated against `shape`.
    Raises IndexError with torch's messages for anything out of range."""
    if not shape and not isinstance(key, bool):  # a lone int or slice on a 0-d tensor
        if isinstance(key, (int, np.integer)):
            raise IndexError("invalid index of a 0-dim tensor. Use `tensor.item()` in Python or "
                             "`tensor.item<T>()` in C++ to convert a 0-dim tensor to a number")
        if isinstance(key, slice):
            raise IndexError("slice() cannot be applied to a 0-dim tensor.")
    if not isinstance(key, tuple):
        key = (key,)
    parts = [_index_part(k) for k in key]
    consumed = 0
    for p in parts:
        if p is None or p is Ellipsis:
            continue
        consumed += p.ndim if isinstance(p, np.ndarray) and p.dtype == np.bool_ else 1
    nd = len(shape)
    if consumed > nd:
        raise IndexError(f"too many indices for tensor of dimension {nd}")
    ellipses = [i for i, p in enumerate(parts) if p is Ellipsis]
    if len(ellipses) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if ellipses:
        i = ellipses[0]
        parts[i:i + 1] = [slice(None)] * (nd - consumed)
    else:
        parts += [slice(None)] * (nd - consumed)
    dim = 0
    for p in parts:
        if p is None:
            continue
        if isinstance(p, int):
            n = shape[dim]
            if not -n <= p < n:
                raise IndexError(f"index {p} is out of bounds for dimension {dim} with size {n}")
            dim += 1
        elif isinstance(p, slice):
            if p.step is not None and p.step <= 0:
                raise ValueError("step must be greater than zero")
            dim += 1
        elif p.dtype == np.bool_:
            for k in range(p.ndim):
                if p.shape[k] != shape[dim + k]:
                    raise IndexError(
                        f"The shape of the mask {list(p.shape)} at index {k} does not match the "
                        f"shape of the indexed tensor {list(shape)} at index {dim + k}")
            dim += p.ndim
        else:
            n = shape[dim]
            if p.size:
                lo, hi = int(p.min()), int(p.max())
                bad = hi if hi >= n else (lo if lo < -n else None)
                if bad is not None:
                    raise IndexError(
                        f"index {bad} is out of bounds for dimension {dim} with size {n}")
            dim += 1
    return tuple(parts)


def _is_advanced(parts: tuple) -> bool:
    return any(isinstance(p, np.ndarray) for p in parts)


def _ints_first(parts: tuple):
    """For an advanced index with integers: (basic, rest), the integers (with the slices and
    Nones) as a basic index, then the advanced index of what is left. torch applies integers
    as select() first; numpy would count them among the advanced indices, which places the
    result's dims differently (x[0, :, [1, 2]] is (3, 2) in torch, (2, 3) in numpy). None
    when the index needs no split."""
    if not _is_advanced(parts) or not any(isinstance(p, int) for p in parts):
        return None
    basic, rest = [], []
    for p in parts:
        if isinstance(p, np.ndarray):
            basic += [slice(None)] * (p.ndim if p.dtype == np.bool_ else 1)
            rest.append(p)
        elif not isinstance(p, int):
            basic.append(p)
            rest.append(slice(None))
        else:
            basic.append(p)
    return tuple(basic), tuple(rest)


def getitem(x: Tensor, key):
    check_index_device(x, key)
    parts = _normalize_key(key, x._data.shape)
    split = _ints_first(parts)
    if split is not None:
        return getitem(getitem(x, split[0]), split[1])
    if _is_advanced(parts):
        d = x._data
        out = _wrap(_contiguous(d[parts]))
        return record(D.INDEX, out, (x,), (d.shape, parts))
    # Basic indexing: a chain of views, one node per step as torch records it.
    out = x
    dim = 0
    for p in parts:
        if p is None:
            out = unsqueeze(out, dim)
            dim += 1
        elif isinstance(p, int):
            out = select(out, dim, p)
        else:
            if p != slice(None):
                n = out._data.shape[dim]
                if p.indices(n) != (0, n, 1):
                    out = slice_dim(out, dim, p.start, p.stop, p.step)
            dim += 1
    if out is x:  # x[:] or x[...]: still a new tensor, as in torch
        out = record(D.ALIAS, _view(x, x._data[...], lambda t: getitem(t, ...)), (x,), ())
    return out


def index_backward(g: Tensor, shape: tuple, parts: tuple):
    """Zeros of `shape` with g added at the indexed positions; repeats accumulate."""
    n = int(np.prod(shape, dtype=np.int64))
    lin = np.arange(n, dtype=np.int64).reshape(shape)[parts]
    out = _ops.backend(g._data).scatter_add(n, lin, g._data)
    return record(D.INDEX_BACKWARD, _wrap(out.reshape(shape)), (g,), (parts,))


def index(x: Tensor, parts: tuple):
    """x[parts] for an already normalised advanced index (used by backward rules)."""
    return record(D.INDEX, _wrap(_contiguous(x._data[parts])), (x,),
                  (x._data.shape, parts))


def assign(x: Tensor, parts: tuple, value) -> None:
    """Write `value` into x[parts] (a normalised index), with torch's shape rules. This only
    moves data: ``_inplace.setitem`` decides about the graph and the version counter."""
    if isinstance(value, Tensor):
        v = value._data
    else:
        s = _ops._scalar(value)
        if s is None:
            raise TypeError(f"can't assign a {type(value).__name__} to a tensor")
        v = s
    data = x._data
    split = _ints_first(parts)
    if split is not None:  # torch's placement of the result's dims (see _ints_first)
        data = data[split[0]]
        parts = _normalize_key(split[1], data.shape)
    target_shape = np.broadcast_to(np.empty((), np.bool_), data.shape)[parts].shape
    vshape = np.shape(v)
    if vshape and not _ops.expandable(tuple(d for d in vshape), target_shape):
        # numpy also accepts a value with extra leading 1s; torch names both shapes
        stripped = tuple(vshape)
        while stripped and stripped[0] == 1 and len(stripped) > len(target_shape):
            stripped = stripped[1:]
        if not _ops.expandable(stripped, target_shape):
            if not _is_advanced(parts):
                # torch expands the value, less its leading 1s, onto the view: its error
                while stripped and stripped[0] == 1:
                    stripped = stripped[1:]
                expand(_wrap(np.reshape(v, stripped)), target_shape)
            raise RuntimeError(
                f"shape mismatch: value tensor of shape {list(vshape)} cannot be broadcast to "
                f"indexing result of shape {list(target_shape)}")
        v = np.reshape(v, stripped)
    if not data.flags.writeable:
        raise RuntimeError(
            "unsupported operation: the tensor is an expanded view whose elements share memory; "
            "clone() it before assigning")
    if isinstance(data, np.ndarray) and hasattr(v, "__cuda_array_interface__"):
        v = v.get()  # a device value written into a host tensor: copied over, as copy_ does
    data[parts] = v
