"""Shape and data-movement primitives: joining and splitting (cat, stack, split, chunk,
unbind), rearranging (unflatten, repeat, tile, flip, roll, narrow, diagonal, tril, triu,
constant padding) and indexed reads and writes (gather, scatter, scatter_add, index_select,
index_add, masked_fill, take, one_hot).

Every index is checked here, before a kernel runs, and bad input raises torch's exception
text. split, chunk and unbind make one node with several outputs (``MultiOpNode``), as torch
does. Kernels are in ``kernels/movement.py``; derivative rows in the shape section of
``derivatives.py``.
"""

from __future__ import annotations

import numpy as np

from . import _dtype
from . import _ops
from . import _views as V
from . import derivatives as D
from .autograd import grad_mode
from .autograd.graph import OpNode, Rule, edge, record, saved_versions
from .tensor import Tensor, _wrap_dim

__all__ = ["cat", "concat", "concatenate", "stack", "split", "chunk", "unbind", "unflatten",
           "tile", "flip", "roll", "narrow", "gather", "scatter", "scatter_add",
           "index_select", "index_add", "index_fill", "masked_fill", "take", "tril", "triu",
           "diagonal", "constant_pad_nd", "index_put", "put"]

_wrap = Tensor._wrap


def _backend(data):
    return _ops.backend(data)


# --------------------------------------------------------------------------- multi-output node

class MultiOpNode(OpNode):
    """The node of a primitive with several outputs (split, chunk, unbind). Its rule's VJPs
    receive ``gs``, the list of the outputs' gradients (None where an output got none), in
    place of ``g``."""

    __slots__ = ("num_outputs",)

    def __init__(self, rule: Rule, next_functions: tuple, meta: tuple, saved: tuple,
                 versions: tuple, n: int):
        super().__init__(rule, next_functions, meta, saved, versions)
        self.num_outputs = n

    def apply(self, grads: list) -> list:
        saved = self.unpack()
        return [vjp(grads, *saved) if child is not None else None
                for (child, _), vjp in zip(self.next_functions, self.rule.vjps)]


def record_multi(rule: Rule, outs: list, inputs: tuple, saved: tuple = ()) -> tuple:
    """Attach one node of `rule` to all the fresh tensors `outs` if grad mode is on and an
    input requires grad; output i gets output_nr i."""
    if not grad_mode.state.enabled or not any(t._requires_grad for t in inputs):
        return tuple(outs)
    node = MultiOpNode(rule, tuple(edge(t) for t in inputs),
                       tuple((t._data.shape, t._data.dtype) for t in inputs), saved,
                       saved_versions(saved), len(outs))
    for i, o in enumerate(outs):
        o._grad_fn = node
        o._output_nr = i
        o._requires_grad = True
    return tuple(outs)


# --------------------------------------------------------------------------- argument helpers

def _int(v, what: str) -> int:
    if isinstance(v, Tensor):
        if v._data.ndim or v._data.dtype.kind not in "iu":
            raise RuntimeError(f"{what} must be an 0-dim integral Tensor.")
        return int(v._data)
    if isinstance(v, (bool, float)) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{what} must be an int, not {type(v).__name__}")
    return int(v)


def _ints(args, what: str) -> tuple:
    """f(1, 2), f((1, 2)) and f([1, 2]) as a tuple of ints."""
    if len(args) == 1 and isinstance(args[0], (tuple, list, Tensor, np.ndarray)):
        args = tuple(args[0]) if not isinstance(args[0], Tensor) else tuple(args[0].tolist())
    out = []
    for i, a in enumerate(args):
        if isinstance(a, (bool, float)) or not isinstance(a, (int, np.integer)):
            raise TypeError(f"{what} must be tuple of ints, but found element of type "
                            f"{type(a).__name__} at pos {i}")
        out.append(int(a))
    return tuple(out)


def _tensor_list(tensors, fn: str) -> list:
    if isinstance(tensors, Tensor):
        raise TypeError(f"{fn}(): argument 'tensors' (position 1) must be tuple of Tensors, "
                        "not Tensor")
    tensors = list(tensors)
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"expected Tensor as element {i} in argument 0, but got "
                            f"{type(t).__name__}")
    return tensors


def _common_dtype(tensors: list) -> np.dtype:
    dt = tensors[0].dtype
    for t in tensors[1:]:
        if t.dtype is not dt:
            dt = _dtype.promote_types(dt, t.dtype)
    return dt.np


def _index_arg(index, fn: str, pos: int = 3) -> np.ndarray:
    if not isinstance(index, Tensor):
        raise TypeError(f"{fn}(): argument 'index' (position {pos}) must be Tensor, not "
                        f"{type(index).__name__}")
    return index._data


def _zeros(shape: tuple, like: Tensor) -> Tensor:
    return _wrap(_backend(like._data).zeros(shape, like._data.dtype))


def _keep(idx: np.ndarray, index: Tensor | None):
    """What a node saves of an index: the user's index tensor when `idx` shares its memory,
    so that changing it in place before backward raises torch's error instead of moving the
    gradient; else the array itself."""
    if index is not None and np.may_share_memory(idx, index._data):
        return index
    return idx


def _arr(idx, flat: bool = False) -> np.ndarray:
    """A saved index as the C-contiguous int64 array the kernels take."""
    if isinstance(idx, Tensor):
        idx = _i64(idx._data)
    return idx.reshape(-1) if flat else idx


def _i64(idx):
    """Index data as a C-contiguous int64 array on its own device (itself if it is one)."""
    if idx.dtype == np.int64 and idx.flags.c_contiguous:
        return idx
    if isinstance(idx, np.ndarray):
        return np.ascontiguousarray(idx, dtype=np.int64)
    return idx.astype(np.int64)


def _on_device_of(h: np.ndarray, like):
    """Host array `h` moved to the device of `like` (itself when `like` is on the host)."""
    if isinstance(like, np.ndarray):
        return h
    return _backend(like).from_host(h)


def _check_index_device(x: Tensor, index) -> None:
    if isinstance(index, Tensor):
        _ops.check_same_device(x, index)


def _nonempty(shape: tuple) -> tuple:
    """torch treats a 0-d operand of gather/scatter as a 1-element 1-d one."""
    return shape if shape else (1,)


# --------------------------------------------------------------------------- cat, stack

def cat(tensors, dim: int = 0, *, out=None):
    if out is not None:
        raise NotImplementedError("cat(out=...) is not supported; assign the result instead")
    tensors = _tensor_list(tensors, "cat")
    if not tensors:
        raise ValueError("torch.cat(): expected a non-empty list of Tensors")
    for i, t in enumerate(tensors):
        if t._data.ndim == 0:
            raise RuntimeError(f"zero-dimensional tensor (at position {i}) cannot be "
                               "concatenated")
    _ops.check_same_device(*tensors)
    # 1-d tensors of size 0 are skipped, as in torch (a legacy rule for empty tensors).
    kept = [i for i, t in enumerate(tensors) if t._data.shape != (0,)]
    dt = _common_dtype(tensors)
    dim = _int(dim, "dim")
    if not kept:
        res = _wrap(_backend(tensors[0]._data).zeros((0,), dt))
        return record(D.cat_rule(len(tensors)), res, tuple(tensors),
                      (0, (None,) * len(tensors)))
    ref = tensors[kept[0]]._data.shape
    d = _wrap_dim(dim, len(ref))
    for i in kept:
        s = tensors[i]._data.shape
        if len(s) != len(ref):
            raise RuntimeError(f"Tensors must have same number of dimensions: got {len(ref)} "
                               f"and {len(s)}")
        for k in range(len(ref)):
            if k != d and s[k] != ref[k]:
                raise RuntimeError(
                    f"Sizes of tensors must match except in dimension {d}. Expected size "
                    f"{ref[k]} but got size {s[k]} for tensor number {i} in the list.")
    arrays = [tensors[i]._data for i in kept]
    res = _wrap(_backend(arrays[0]).cat(arrays, d, dt))
    bounds = [None] * len(tensors)  # each input's [start, stop) along d; None if skipped
    start = 0
    for i in kept:
        n = tensors[i]._data.shape[d]
        bounds[i] = (start, start + n)
        start += n
    return record(D.cat_rule(len(tensors)), res, tuple(tensors), (d, tuple(bounds)))


def concat(tensors, dim: int = 0, *, out=None):
    return cat(tensors, dim, out=out)


def concatenate(tensors, axis: int = 0, *, out=None):
    return cat(tensors, axis, out=out)


def stack(tensors, dim: int = 0, *, out=None):
    if out is not None:
        raise NotImplementedError("stack(out=...) is not supported; assign the result instead")
    tensors = _tensor_list(tensors, "stack")
    if not tensors:
        raise RuntimeError("stack expects a non-empty TensorList")
    _ops.check_same_device(*tensors)
    ref = tensors[0]._data.shape
    d = _wrap_dim(_int(dim, "dim"), len(ref) + 1)
    for i, t in enumerate(tensors):
        if t._data.shape != ref:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got "
                               f"{list(ref)} at entry 0 and {list(t._data.shape)} at entry {i}")
    arrays = [t._data for t in tensors]
    res = _wrap(_backend(arrays[0]).stack(arrays, d, _common_dtype(tensors)))
    return record(D.stack_rule(len(tensors)), res, tuple(tensors), (d,))


# --------------------------------------------------------------------------- split, chunk, unbind

def _pieces(x: Tensor, d: int, sizes: list) -> list:
    """Views of x's consecutive blocks of `sizes` along dim d."""
    data = x._data
    lead = (slice(None),) * d
    out, start = [], 0
    for n in sizes:
        a, b = start, start + n
        out.append(V._view(x, data[lead + (slice(a, b),)],
                           lambda t, a=a, b=b: V.slice_dim(t, d, a, b, None)))
        start = b
    return out


def _split_sizes(x: Tensor, d: int, split_size: int) -> list:
    n = x._data.shape[d]
    if split_size < 0:
        raise RuntimeError(f"split expects split_size be non-negative, but got "
                           f"split_size={split_size}")
    if split_size == 0 and n != 0:
        raise RuntimeError(f"split_size can only be 0 if dimension size is 0, but got "
                           f"dimension size of {n}")
    if split_size == 0 or n == 0:
        return [n]
    full, rest = divmod(n, split_size)
    return [split_size] * full + ([rest] if rest else [])


def split(tensor: Tensor, split_size_or_sections=None, dim: int = 0, *, split_size=None):
    """torch.split(x, split_size_or_sections, dim) and x.split(split_size, dim)."""
    x = tensor
    if split_size_or_sections is None:
        if split_size is None:
            raise TypeError("split() missing 1 required positional argument: 'split_size'")
        split_size_or_sections = split_size
    if x._data.ndim == 0:
        raise RuntimeError("split expects at least a 1-dimensional tensor")
    d = _wrap_dim(_int(dim, "dim"), x._data.ndim)
    if isinstance(split_size_or_sections, (int, np.integer, Tensor)):
        sizes = _split_sizes(x, d, _int(split_size_or_sections, "split_size"))
        rule = D.SPLIT
    else:
        sizes = list(_ints((split_size_or_sections,), "split_sizes"))
        n = x._data.shape[d]
        if any(s < 0 for s in sizes):
            raise RuntimeError("split_with_sizes expects split_sizes have only non-negative "
                               f"entries, but got split_sizes={sizes}")
        if sum(sizes) != n:
            raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {n} "
                               f"(input tensor's size at dimension {d}), but got "
                               f"split_sizes={sizes}")
        rule = D.SPLIT_WITH_SIZES
    return record_multi(rule, _pieces(x, d, sizes), (x,), (d, tuple(sizes), x._data.shape))


def split_with_sizes(x: Tensor, split_sizes, dim: int = 0):
    return split(x, list(split_sizes), dim)


def chunk(input: Tensor, chunks: int, dim: int = 0):  # noqa: A002 - torch's name
    x = input
    if x._data.ndim == 0:
        raise RuntimeError("chunk expects at least a 1-dimensional tensor")
    chunks = _int(chunks, "chunks")
    if chunks <= 0:
        raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
    d = _wrap_dim(_int(dim, "dim"), x._data.ndim)
    n = x._data.shape[d]
    size = (n + chunks - 1) // chunks
    if size == 0 and n == 0:  # torch: split_with_sizes into `chunks` empty pieces
        return split(x, [0] * chunks, d)
    return split(x, size, d)


def unbind(input: Tensor, dim: int = 0):  # noqa: A002 - torch's name
    x = input
    if x._data.ndim == 0:
        raise IndexError("Dimension specified as 0 but tensor has no dimensions")
    d = _wrap_dim(_int(dim, "dim"), x._data.ndim)
    data = x._data
    lead = (slice(None),) * d
    piece = data.shape[:d] + data.shape[d + 1:]
    outs = [V._view(x, data[lead + (slice(i, i + 1),)].reshape(piece),  # a view even when 0-d
                    lambda t, i=i: V.select(t, d, i))
            for i in range(data.shape[d])]
    return record_multi(D.UNBIND, outs, (x,), (d, data.shape))


def split_backward(gs: list, dim: int, sizes: tuple, shape: tuple) -> Tensor:
    """The gradient of split's input: the outputs' gradients joined, zeros where none came."""
    like = next(g for g in gs if g is not None)
    parts = [g if g is not None else _zeros(shape[:dim] + (n,) + shape[dim + 1:], like)
             for g, n in zip(gs, sizes)]
    return cat(parts, dim)


def unbind_backward(gs: list, dim: int, shape: tuple) -> Tensor:
    like = next(g for g in gs if g is not None)
    piece = shape[:dim] + shape[dim + 1:]
    return stack([g if g is not None else _zeros(piece, like) for g in gs], dim)


# --------------------------------------------------------------------------- views: unflatten,
# narrow, diagonal

def unflatten(input: Tensor, dim: int, sizes):  # noqa: A002 - torch's name
    x = input
    d = _wrap_dim(_int(dim, "dim"), x._data.ndim)
    sizes = _ints((sizes,), "sizes")
    if not sizes:
        raise RuntimeError("unflatten: sizes must be non-empty")
    if x._data.ndim == 0:
        raise RuntimeError("unflatten got an unexpected error:\ndimension specified as 0 but "
                           "tensor has no dimensions")
    n = x._data.shape[d]
    try:
        inferred = V._infer(sizes, n)
    except RuntimeError as e:
        if "is invalid for input of size" in str(e):
            raise RuntimeError(f"unflatten: Provided sizes {list(sizes)} don't multiply up to "
                               f"the size of dim {d} ({n}) in the input tensor") from None
        raise RuntimeError(f"unflatten got an unexpected error:\n{e}") from None
    shape = x._data.shape
    return V.view(x, shape[:d] + inferred + shape[d + 1:])


def narrow(input: Tensor, dim: int, start, length):  # noqa: A002 - torch's name
    x = input
    if x._data.ndim == 0:
        raise RuntimeError("narrow() cannot be applied to a 0-dim tensor.")
    d = _wrap_dim(_int(dim, "dim"), x._data.ndim)
    start = _int(start, "start")
    length = _int(length, "length")
    _narrow_check(x._data.shape[d], start, length)
    start = start + x._data.shape[d] if start < 0 else start
    return V.slice_dim(x, d, start, start + length, None)


def _narrow_check(n: int, start: int, length: int) -> None:
    if length < 0:
        raise RuntimeError("narrow(): length must be non-negative.")
    if not -n <= start <= n:
        raise IndexError(f"start out of range (expected to be in range of [{-n}, {n}], but "
                         f"got {start})")
    if start < 0:
        start += n
    if start > n - length:
        raise RuntimeError(f"start ({start}) + length ({length}) exceeds dimension size "
                           f"({n}).")


def diagonal(input: Tensor, offset: int = 0, dim1: int = 0, dim2: int = 1):  # noqa: A002
    x = input
    nd = x._data.ndim
    d1, d2 = _wrap_dim(_int(dim1, "dim1"), nd), _wrap_dim(_int(dim2, "dim2"), nd)
    if d1 == d2:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    offset = _int(offset, "offset")
    return _diagonal(x, offset, d1, d2)


def _diagonal(x: Tensor, offset: int, d1: int, d2: int) -> Tensor:
    out = V._view(x, _backend(x._data).diagonal(x._data, offset, d1, d2),
                  lambda t: _diagonal(t, offset, d1, d2))
    return record(D.DIAGONAL, out, (x,), (x._data.shape, offset, d1, d2))


def diagonal_backward(g: Tensor, shape: tuple, offset: int, d1: int, d2: int) -> Tensor:
    out = _wrap(_backend(g._data).diagonal_backward(g._data, shape, offset, d1, d2))
    return record(D.DIAGONAL_BACKWARD, out, (g,), (offset, d1, d2))


# --------------------------------------------------------------------------- copies: repeat,
# tile, flip, roll, tril, triu, pad

def repeat(x: Tensor, *sizes):
    if not sizes:
        raise TypeError('repeat() missing 1 required positional arguments: "repeats"')
    reps = _ints(sizes, "repeats")
    d = x._data
    if len(reps) < d.ndim:
        raise RuntimeError("Number of dimensions of repeat dims can not be smaller than number "
                           "of dimensions of tensor")
    padded = (1,) * (len(reps) - d.ndim) + d.shape
    target = [n * r for n, r in zip(padded, reps)]
    for n in target:
        if n < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {n}: "
                               f"{target}")
    out = _wrap(_backend(d).repeat(d, reps))
    return record(D.REPEAT, out, (x,), (d.shape, reps))


def repeat_backward(g: Tensor, shape: tuple, reps: tuple) -> Tensor:
    """Sum the repeated blocks of g back onto one block of `shape`."""
    padded = (1,) * (len(reps) - len(shape)) + tuple(shape)
    split_shape: list = []
    axes = []  # the axes of the repeat counts, where a count is not 1
    for r, n in zip(reps, padded):
        if r != 1:
            axes.append(len(split_shape))
            split_shape.append(r)
        split_shape.append(n)
    if axes:
        g = _ops.sum(V.reshape(g, tuple(split_shape)), tuple(axes))
    return V.reshape(g, shape)


def tile(input: Tensor, *args, dims=None):  # noqa: A002 - torch's name
    """torch.tile(x, dims), x.tile(*dims) and x.tile(dims=...)."""
    x = input
    reps = _ints(args if dims is None else (dims,), "dims")
    nd = x._data.ndim
    if len(reps) < nd:
        reps = (1,) * (nd - len(reps)) + reps
    return repeat(x, reps)


def flip(input: Tensor, *args, dims=None):  # noqa: A002 - torch's name
    """torch.flip(x, dims), x.flip(*dims) and x.flip(dims=...)."""
    x = input
    dims = _ints(args if dims is None else (dims,), "dims")
    nd = x._data.ndim
    dims = _ops.dims_of(dims, nd) if dims else ()
    return _flip(x, dims if nd else ())


def _flip(x: Tensor, dims: tuple) -> Tensor:
    out = _wrap(_backend(x._data).flip(x._data, dims))
    return record(D.FLIP, out, (x,), (dims,))


def roll(input: Tensor, shifts, dims=None):  # noqa: A002 - torch's name
    x = input
    shifts = _ints((shifts,), "shifts") if not isinstance(shifts, (int, np.integer)) \
        else (int(shifts),)
    if dims is not None:
        dims = _ints((dims,), "dims") if not isinstance(dims, (int, np.integer)) \
            else (int(dims),)
    if not shifts:
        raise RuntimeError("`shifts` required")
    nd_dims = 0 if dims is None else len(dims)
    if (dims is None and len(shifts) != 1) or (dims is not None and len(dims) != len(shifts)):
        raise RuntimeError(f"shifts and dimensions must align. shifts: {len(shifts)}, "
                           f"dims:{nd_dims}")
    nd = x._data.ndim
    if dims is not None:
        if nd == 0:
            raise IndexError(f"Dimension specified as {dims[0]} but tensor has no dimensions")
        dims = tuple(_wrap_dim(d, nd) for d in dims)
    return _roll(x, shifts, dims)


def _roll(x: Tensor, shifts: tuple, dims) -> Tensor:
    out = _wrap(_backend(x._data).roll(x._data, shifts, dims))
    return record(D.ROLL, out, (x,), (shifts, dims))


def _tri_check(x: Tensor, name: str) -> None:
    if x._data.ndim < 2:
        raise RuntimeError(f"{name}: input tensor must have at least 2 dimensions")


def tril(input: Tensor, diagonal: int = 0):  # noqa: A002 - torch's names
    _tri_check(input, "tril")
    return _tri(input, _int(diagonal, "diagonal"), True)


def triu(input: Tensor, diagonal: int = 0):  # noqa: A002 - torch's names
    _tri_check(input, "triu")
    return _tri(input, _int(diagonal, "diagonal"), False)


def _tri(x: Tensor, k: int, lower: bool) -> Tensor:
    out = _wrap(_backend(x._data).tri(x._data, k, lower))
    return record(D.TRIL if lower else D.TRIU, out, (x,), (k,))


def constant_pad_nd(input: Tensor, pad, value=0):  # noqa: A002 - torch's name
    x = input
    pad = _ints((pad,), "pad")
    if len(pad) % 2:
        raise RuntimeError("Padding length must be divisible by 2")
    nd = x._data.ndim
    if len(pad) // 2 > nd:
        raise RuntimeError("Padding length should be less than or equal to two times the input "
                           f"dimension but got padding length {len(pad)} and input of "
                           f"dimension {nd}")
    # pad lists (before, after) pairs from the last dim backwards
    pairs = [(0, 0)] * nd
    for k in range(len(pad) // 2):
        pairs[nd - 1 - k] = (pad[2 * k], pad[2 * k + 1])
    for d in range(nd):  # negative amounts crop: torch narrows, leading dims first
        lo, hi = pairs[d]
        n = x._data.shape[d]
        if lo < 0:
            _narrow_check(n, -lo, n + lo)
            n += lo
        if hi < 0:
            _narrow_check(n, 0, n + hi)
    s = _ops._scalar(value) if value is not None else 0
    if s is None:
        raise TypeError(f"pad(): argument 'value' must be a number, not {type(value).__name__}")
    out = _wrap(_backend(x._data).pad(x._data, pairs, s))
    return record(D.CONSTANT_PAD, out, (x,), (pad,))


def pad(input: Tensor, pad, mode: str = "constant", value=None):  # noqa: A002
    """torch.nn.functional.pad; only mode="constant" is available."""
    if mode != "constant":
        if mode in ("reflect", "replicate", "circular"):
            raise NotImplementedError(f"pad(mode={mode!r}) is not available in jitgrad yet; "
                                      "only mode='constant' is")
        raise NotImplementedError(f"Unrecognised padding mode {mode}")
    return constant_pad_nd(input, pad, 0 if value is None else value)


# --------------------------------------------------------------------------- gather, scatter

def _check_index_dtype(idx: np.ndarray, fn: str) -> None:
    if idx.size and idx.dtype not in (np.int64, np.int32):
        raise RuntimeError(f"{fn}(): Expected dtype int32/int64 for index")


def _first_bad(idx: np.ndarray, lo: int, hi: int):
    """The first value of idx (row-major) outside [lo, hi), or None."""
    if not idx.size:
        return None
    mn, mx = _backend(idx).index_range(idx)
    if lo <= mn and mx < hi:
        return None
    flat = V._host(idx).reshape(-1)
    return int(flat[np.flatnonzero((flat < lo) | (flat >= hi))[0]])


def _check_bounds(idx: np.ndarray, n: int, dim: int) -> None:
    """Every index in [0, n): else torch's error naming the first bad one."""
    v = _first_bad(idx, 0, n)
    if v is not None:
        raise RuntimeError(f"index {v} is out of bounds for dimension {dim} with size {n}")


def gather(input: Tensor, dim: int, index: Tensor, *, sparse_grad: bool = False):  # noqa: A002
    x = input
    idx = _index_arg(index, "gather")
    _check_index_device(x, index)
    if idx.dtype not in (np.int64, np.int32):
        raise RuntimeError("gather(): Expected dtype int32/int64 for index")
    xs = _nonempty(x._data.shape)
    d = _wrap_dim(_int(dim, "dim"), x._data.ndim)
    if idx.size:
        ishape = _nonempty(idx.shape)
        if len(ishape) != len(xs):
            raise RuntimeError("Index tensor must have the same number of dimensions as input "
                               "tensor")
        for k in range(len(xs)):
            if k != d and ishape[k] > xs[k]:
                raise RuntimeError(
                    f"Size does not match at dimension {k} expected index {list(idx.shape)} "
                    f"to be no larger than self {list(x._data.shape)} apart from dimension {d}")
        _check_bounds(idx, xs[d], d)
    return _gather(x, d, _i64(idx), index)


def _gather(x: Tensor, d: int, idx: np.ndarray, keep: Tensor | None = None) -> Tensor:
    """gather on a validated int64 index (also the backward of scatter's src). `keep`: the
    user's index tensor, saved in place of `idx` (see _arr)."""
    xd = x._data
    if idx.size:
        res = _backend(xd).gather(xd.reshape(_nonempty(xd.shape)), d,
                                  idx.reshape(_nonempty(idx.shape))).reshape(idx.shape)
    else:
        res = _backend(xd).zeros(idx.shape, xd.dtype)
    return record(D.GATHER, _wrap(res), (x,), (xd.shape, d, _keep(idx, keep)))


def _scatter_check(x: Tensor, d: int, idx: np.ndarray, src: Tensor | None, fn: str) -> None:
    _check_index_dtype(idx, fn)
    if src is not None and src._data.dtype != x._data.dtype:
        raise RuntimeError(f"{fn}(): Expected self.dtype to be equal to src.dtype")
    if not idx.size:
        return
    xs, ishape = _nonempty(x._data.shape), _nonempty(idx.shape)
    if len(ishape) != len(xs):
        raise RuntimeError("Index tensor must have the same number of dimensions as self "
                           "tensor")
    wrong = any(k != d and ishape[k] > xs[k] for k in range(len(xs)))
    if src is not None:
        ss = _nonempty(src._data.shape)
        if not wrong:
            for k in range(len(xs)):
                if src._data.ndim == 0:  # a 0-d src has size 1 in every dim
                    ss = (1,) * len(xs)
                elif k >= len(ss):
                    _wrap_dim(k, len(ss))  # raises torch's IndexError
                if ishape[k] > ss[k]:
                    wrong = True
                    break
        if len(_nonempty(src._data.shape)) != len(ishape):
            raise RuntimeError("Index tensor must have the same number of dimensions as src "
                               "tensor")
        if wrong:
            raise RuntimeError(
                f"Expected index {list(idx.shape)} to be no larger than self "
                f"{list(x._data.shape)} apart from dimension {d} and to be no larger size than "
                f"src {list(src._data.shape)}")
    elif wrong:
        raise RuntimeError(f"Expected index {list(idx.shape)} to be no larger than self "
                           f"{list(x._data.shape)} apart from dimension {d}")
    _check_bounds(idx, xs[d], d)


def scatter(input: Tensor, dim: int, index: Tensor, src=None, value=None, *,  # noqa: A002
            reduce=None):
    x = input
    if reduce is not None:
        raise NotImplementedError("scatter(reduce=...) is not available in jitgrad yet; use "
                                  "scatter_add for reduce='add'")
    if src is None and value is None:
        raise TypeError("scatter() missing 1 required argument: 'src' or 'value'")
    if src is None:
        src = value
    idx = _index_arg(index, "scatter")
    _check_index_device(x, index)
    d = _wrap_dim(_int(dim, "dim"), x._data.ndim)
    if isinstance(src, Tensor):
        _scatter_check(x, d, idx, src, "scatter")
        _ops.check_same_device(x, src)
        return _scatter_src(x, d, _i64(idx), src, index)
    s = _ops._scalar(src)
    if s is None:
        raise TypeError(f"scatter(): argument 'value' must be a Number or Tensor, not "
                        f"{type(src).__name__}")
    _scatter_check(x, d, idx, None, "scatter")
    return _scatter_value(x, d, _i64(idx), s, index)


def _scatter_src(x: Tensor, d: int, idx: np.ndarray, src: Tensor,
                 keep: Tensor | None = None) -> Tensor:
    xd = x._data
    res = _backend(xd).scatter(xd.reshape(_nonempty(xd.shape)), d,
                               idx.reshape(_nonempty(idx.shape)),
                               src._data.reshape(_nonempty(src._data.shape)), "set")
    return record(D.SCATTER, _wrap(res.reshape(xd.shape)), (x, src),
                  (d, _keep(idx, keep), src._data.shape))


def _scatter_value(x: Tensor, d: int, idx: np.ndarray, value,
                   keep: Tensor | None = None) -> Tensor:
    xd = x._data
    res = _backend(xd).scatter(xd.reshape(_nonempty(xd.shape)), d,
                               idx.reshape(_nonempty(idx.shape)), value, "set")
    return record(D.SCATTER_VALUE, _wrap(res.reshape(xd.shape)), (x,), (d, _keep(idx, keep)))


def scatter_add(input: Tensor, dim: int, index: Tensor, src: Tensor):  # noqa: A002
    x = input
    idx = _index_arg(index, "scatter_add")
    if not isinstance(src, Tensor):
        raise TypeError(f"scatter_add(): argument 'src' (position 4) must be Tensor, not "
                        f"{type(src).__name__}")
    _ops.check_same_device(x, index, src)
    d = _wrap_dim(_int(dim, "dim"), x._data.ndim)
    _scatter_check(x, d, idx, src, "scatter")
    return _scatter_add(x, d, _i64(idx), src, index)


def _scatter_add(x: Tensor, d: int, idx: np.ndarray, src: Tensor,
                 keep: Tensor | None = None) -> Tensor:
    """scatter_add on a validated int64 index (also the backward of gather)."""
    xd = x._data
    res = _backend(xd).scatter(xd.reshape(_nonempty(xd.shape)), d,
                               idx.reshape(_nonempty(idx.shape)),
                               src._data.reshape(_nonempty(src._data.shape)), "add")
    return record(D.SCATTER_ADD, _wrap(res.reshape(xd.shape)), (x, src),
                  (d, _keep(idx, keep), src._data.shape))


def gather_backward(g: Tensor, shape: tuple, d: int, idx: np.ndarray) -> Tensor:
    return _scatter_add(_zeros(shape, g), d, idx, g)


def scatter_src_backward(g: Tensor, d: int, idx: np.ndarray, src_shape: tuple) -> Tensor:
    """The gradient of scatter's src: g at the written positions, zeros where src reaches
    beyond the index."""
    r = _gather(g, d, idx)
    if idx.shape != src_shape and idx.size:
        pads = []
        for i, s in zip(reversed(idx.shape), reversed(src_shape)):
            pads += [0, s - i]
        r = constant_pad_nd(r, pads)
    elif idx.shape != src_shape:
        r = _zeros(src_shape, g)
    return r


# --------------------------------------------------------------------------- index_select,
# index_add, take, masked_fill

def index_select(input: Tensor, dim: int, index: Tensor):  # noqa: A002 - torch's name
    x = input
    idx = _index_arg(index, "index_select")
    _check_index_device(x, index)
    nd = x._data.ndim
    d = _wrap_dim(_int(dim, "dim"), nd)
    if idx.ndim > 1:
        raise IndexError("index_select(): Index is supposed to be a vector")
    if nd == 0 and idx.size != 1:
        raise RuntimeError(f"index_select(): Index to scalar can have only 1 value, got "
                           f"{idx.size} value(s)")
    if idx.dtype not in (np.int64, np.int32):
        raise RuntimeError("index_select(): Expected dtype int32 or int64 for index")
    n = x._data.shape[d] if nd else 1
    v = _first_bad(idx, 0, n)
    if v is not None:
        if nd > 1 and x._data.size == 0 and n == 0:
            raise RuntimeError("index_select(): self indexing axis dim should be positive")
        if nd > 1 and d == 1:  # torch's dim-1 fast path words it differently
            raise RuntimeError(f"INDICES element is out of DATA bounds, id={v} axis_dim={n}")
        raise IndexError("index out of range in self")
    return _index_select(x, d, _i64(idx).reshape(-1), index)


def _index_select(x: Tensor, d: int, idx: np.ndarray, keep: Tensor | None = None) -> Tensor:
    """index_select on a validated 1-d int64 index (also the backward of index_add)."""
    xd = x._data
    if xd.ndim == 0:
        res = xd.copy()
    else:
        res = _backend(xd).index_select(xd, d, idx)
    return record(D.INDEX_SELECT, _wrap(res), (x,), (xd.shape, d, _keep(idx, keep)))


def index_add(input: Tensor, dim: int, index: Tensor, source: Tensor, *,  # noqa: A002
              alpha=1):
    x = input
    idx = _index_arg(index, "index_add")
    if not isinstance(source, Tensor):
        raise TypeError(f"index_add(): argument 'source' (position 4) must be Tensor, not "
                        f"{type(source).__name__}")
    _ops.check_same_device(x, index, source)
    nd = x._data.ndim
    d = _wrap_dim(_int(dim, "dim"), nd)
    src = source._data
    if idx.ndim > 1:
        raise IndexError(f"index_add_(): Index is supposed to be a vector, but got dim: "
                         f"{idx.ndim} with type: {_ops.torch_name(idx.dtype)} and size: "
                         f"{list(idx.shape)}")
    if idx.dtype not in (np.int64, np.int32):
        raise RuntimeError(f"index_add_(): Expected dtype int32/int64 for index but got: "
                           f"{_ops.torch_name(idx.dtype)}")
    if src.dtype != x._data.dtype:
        raise RuntimeError(f"index_add_(): self ({_ops.torch_name(x._data.dtype)}) and source "
                           f"({_ops.torch_name(src.dtype)}) must have the same scalar type")
    if not (d == 0 or d < src.ndim):
        raise RuntimeError(f"index_add_(): Indexing dim {d} is out of bounds of the source "
                           f"tensor with dim {src.ndim}")
    src_n = src.shape[d] if src.ndim else 1
    if idx.size != src_n:
        raise RuntimeError(f"index_add_(): Number of indices ({idx.size}) should be equal to "
                           f"source.size(dim): ({src_n}), for dim: {d}")
    xs, ss = list(x._data.shape), list(src.shape)
    if src.ndim and nd:
        del xs[d], ss[d]
    if xs != ss:
        raise RuntimeError("source tensor shape must match self tensor shape, excluding the "
                           f"specified dimension. Got self.shape = {list(x._data.shape)} "
                           f"source.shape = {list(src.shape)}")
    _check_bounds(idx, x._data.shape[d] if nd else 1, d)
    s = _ops._scalar(alpha)
    if s is None:
        raise TypeError(f"index_add(): argument 'alpha' must be Number, not "
                        f"{type(alpha).__name__}")
    return _index_add(x, d, _i64(idx).reshape(-1), source, s, index)


def _index_add(x: Tensor, d: int, idx: np.ndarray, source: Tensor, alpha,
               keep: Tensor | None = None) -> Tensor:
    """index_add on a validated 1-d int64 index (also the backward of index_select)."""
    xd, sd = x._data, source._data
    if xd.ndim == 0 or sd.ndim == 0:
        res = _backend(xd).index_add(xd.reshape(_nonempty(xd.shape)), d, idx,
                                     sd.reshape(_nonempty(sd.shape)), alpha).reshape(xd.shape)
    else:
        res = _backend(xd).index_add(xd, d, idx, sd, alpha)
    return record(D.INDEX_ADD, _wrap(res), (x, source), (d, _keep(idx, keep), alpha, sd.shape))


def index_add_source_backward(g: Tensor, d: int, idx: np.ndarray, alpha,
                              src_shape: tuple) -> Tensor:
    r = _index_select(g, d, idx) if g._data.ndim else g
    if len(src_shape) != r._data.ndim:
        r = V.reshape(r, src_shape)
    return r if alpha == 1 else _ops.mul(r, alpha)


def index_fill(input: Tensor, dim: int, index: Tensor, value):  # noqa: A002
    x = input
    idx = _index_arg(index, "index_fill")
    _check_index_device(x, index)
    nd = x._data.ndim
    d = _wrap_dim(_int(dim, "dim"), nd)
    if idx.dtype != np.int64:
        raise IndexError("index_fill_(): Expected dtype int64 for index.")
    if idx.ndim > 1:
        raise RuntimeError("Index has to be a vector/scalar")
    if isinstance(value, Tensor):
        if value._data.ndim:
            raise RuntimeError(f"index_fill_ only supports a 0-dimensional value tensor, but "
                               f"got tensor with {value._data.ndim} dimension(s).")
        v = value._data.astype(x._data.dtype).item()
    else:
        v = _ops._scalar(value)
        if v is None:
            raise TypeError(f"index_fill(): argument 'value' must be Number or Tensor, not "
                            f"{type(value).__name__}")
    n = x._data.shape[d] if nd else 1
    idx = idx.reshape(-1)
    b = _first_bad(idx, -n, n)
    if b is not None:
        raise IndexError(f"index {b} is out of bounds for dimension {d} with size {n}")
    if idx.size and _backend(idx).index_range(idx)[0] < 0:
        h = V._host(idx)
        idx = _on_device_of(np.where(h < 0, h + n, h), idx)
    idx = _i64(idx)
    if isinstance(value, Tensor):
        return _index_fill(x, d, idx, v, value)
    return _index_fill(x, d, idx, v)


def _index_fill(x: Tensor, d: int, idx: np.ndarray, v, value: Tensor | None = None) -> Tensor:
    xd = x._data
    res = _backend(xd).index_fill(xd.reshape(_nonempty(xd.shape)), d, idx, v)
    out = _wrap(res.reshape(xd.shape))
    if value is None:
        return record(D.INDEX_FILL, out, (x,), (d, idx))
    return record(D.INDEX_FILL_TENSOR, out, (x, value), (d, idx))


def index_fill_value_backward(g: Tensor, d: int, idx: np.ndarray) -> Tensor:
    """The gradient of index_fill's value: the sum of g over the filled slices (each once)."""
    if not g._data.ndim:
        return _ops.sum(g)
    return _ops.sum(_index_select(g, d, _on_device_of(np.unique(V._host(idx)), idx)))


def take(input: Tensor, index: Tensor):  # noqa: A002 - torch's name
    x = input
    idx = _index_arg(index, "take", 2)
    _check_index_device(x, index)
    if idx.dtype != np.int64:
        raise RuntimeError(f"take(): Expected a long tensor for index, but got "
                           f"{_ops.torch_name(idx.dtype)}")
    n = x._data.size
    if idx.size:
        if n == 0:
            raise IndexError("take(): tried to take from an empty tensor")
        v = _first_bad(idx, -n, n)
        if v is not None:
            raise IndexError(f"out of range: tried to access index {v} on a tensor of {n} "
                             "elements.")
    return _take(x, V._contiguous(idx), index)


def _take(x: Tensor, idx: np.ndarray, keep: Tensor | None = None) -> Tensor:
    out = _wrap(_backend(x._data).take(x._data, idx))
    return record(D.TAKE, out, (x,), (x._data.shape, _keep(idx, keep)))


def take_backward(g: Tensor, shape: tuple, idx: np.ndarray) -> Tensor:
    """Zeros of `shape` with g added at flat positions idx (torch's put_ with accumulate)."""
    out = _wrap(_backend(g._data).put_add(shape, idx, g._data))
    return record(D.TAKE_BACKWARD, out, (g,), (idx,))


def _put_source(x: Tensor, t, what: str, pos: int, fn: str, mismatch: str) -> Tensor:
    """What index_put or put writes into x: a tensor on x's device, of x's dtype (else
    `mismatch`, formatted with both dtypes' names, as the error)."""
    if not isinstance(t, Tensor):
        raise TypeError(f"{fn}(): argument '{what}' (position {pos}) must be Tensor, not "
                        f"{type(t).__name__}")
    _ops.check_same_device(x, t)
    if t._data.dtype != x._data.dtype:
        raise RuntimeError(mismatch.format(dst=_ops.torch_name(x._data.dtype),
                                           src=_ops.torch_name(t._data.dtype)))
    return t


def index_put(input: Tensor, indices, values: Tensor,  # noqa: A002 - torch's name
              accumulate: bool = False) -> Tensor:
    """x with x[indices] = values, or with accumulate, values added there (a position that
    indices name several times gets every value added)."""
    x = input
    if not isinstance(indices, (tuple, list)):
        raise TypeError("index_put(): argument 'indices' (position 1) must be tuple of "
                        f"Tensors, not {type(indices).__name__}")
    for k, t in enumerate(indices):
        if not isinstance(t, Tensor):
            raise TypeError(f"expected Tensor as element {k} in argument 0, but got "
                            f"{type(t).__name__}")
        _check_index_device(x, t)
    if not isinstance(accumulate, bool):
        raise TypeError("index_put(): argument 'accumulate' must be bool, not "
                        f"{type(accumulate).__name__}")
    if len(indices) > x._data.ndim:
        raise IndexError(f"too many indices for tensor of dimension {x._data.ndim} "
                         f"(got {len(indices)})")
    values = _put_source(x, values, "values", 2, "index_put",
                         "Index put requires the source and destination dtypes match, got "
                         "{dst} for the destination and {src} for the source.")
    from . import _inplace

    parts = V._normalize_key(tuple(indices), x._data.shape)
    target = np.broadcast_to(np.zeros((), np.int8), x._data.shape)[parts].shape
    if values._data.shape != target:
        try:
            if np.broadcast_shapes(values._data.shape, target) != target:
                raise ValueError
        except ValueError:
            raise RuntimeError(
                f"shape mismatch: value tensor of shape {list(values._data.shape)} cannot be "
                f"broadcast to indexing result of shape {list(target)}") from None
        values = V.expand(values, target)
    if not accumulate:
        return _inplace.index_put(x, parts, values)
    with grad_mode.no_grad():
        out = _ops.add(x, V.index_backward(values, x._data.shape, parts))
    return record(D.INDEX_PUT_ACCUMULATE, _wrap(out._data), (x, values), (parts,))


def put(input: Tensor, index: Tensor, source: Tensor,  # noqa: A002 - torch's name
        accumulate: bool = False) -> Tensor:
    """x with source's elements written (accumulate: added) at flat positions index
    (negative: from the end), x read as if flattened."""
    x = input
    idx = _index_arg(index, "put_", 1)
    _check_index_device(x, index)
    if not isinstance(accumulate, bool):
        raise TypeError("put(): argument 'accumulate' must be bool, not "
                        f"{type(accumulate).__name__}")
    source = _put_source(x, source, "source", 2, "put_",
                         "put_(): self and source expected to have the same dtype, but got "
                         "self.dtype = {dst} and source.dtype = {src}")
    if idx.dtype != np.int64:
        raise RuntimeError(f"put_(): Expected a long tensor for index, but got "
                           f"{_ops.torch_name(idx.dtype)}")
    if source._data.size != idx.size:
        raise IndexError("put_(): Expected source and index to have the same number of "
                         f"elements, but got source.numel() = {source._data.size}, "
                         f"index.numel() = {idx.size}")
    n = x._data.size
    if n == 0 and idx.size:
        raise IndexError("put_(): Tried to put elements into an empty tensor")
    v = _first_bad(idx, -n, n)
    if v is not None:
        raise IndexError(f"out of range: tried to access index {v} on a tensor of {n} "
                         "elements.")
    return _put(x, _keep(V._contiguous(idx), index), source, accumulate)


def _put(x: Tensor, idx, source: Tensor, accumulate: bool) -> Tensor:
    """put on a validated int64 index (array, or the user's index tensor)."""
    flat_idx = _arr(idx, flat=True)
    n = x._data.size
    with grad_mode.no_grad():
        src = V.reshape(source, (-1,))
        if accumulate:
            out = _ops.add(x, V.reshape(take_backward(src, (n,), flat_idx), x._data.shape))
        else:
            out = V.reshape(index_put(V.reshape(x, (-1,)), (_wrap(flat_idx),), src),
                            x._data.shape)  # (index_put writes into a copy)
    return record(D.PUT, _wrap(out._data), (x, source), (idx, accumulate, source._data.shape))


def put_backward_self(g: Tensor, idx, accumulate: bool) -> Tensor:
    """put's gradient for x: g, with zeros where a write replaced x's value."""
    if accumulate:
        return g
    zeros = _ops.mul(_take(g, _arr(idx, flat=True)), 0)
    return _put(g, idx, zeros, False)


def put_backward_source(g: Tensor, idx, accumulate: bool, shape: tuple) -> Tensor:
    """put's gradient for source: g at the positions source went to."""
    return V.reshape(_take(g, _arr(idx, flat=True)), shape)


def masked_fill(input: Tensor, mask: Tensor, value):  # noqa: A002 - torch's name
    x = input
    if not isinstance(mask, Tensor):
        raise TypeError(f"masked_fill(): argument 'mask' (position 1) must be Tensor, not "
                        f"{type(mask).__name__}")
    md = mask._data
    if md.ndim:
        _ops.check_same_device(x, mask)
    if md.dtype != np.bool_:
        raise RuntimeError(f"masked_fill_ only supports boolean masks, but got mask with dtype "
                           f"{_ops._CPP_NAMES[md.dtype.name]}")
    xd = x._data
    if isinstance(value, Tensor):
        if value._data.ndim:
            raise RuntimeError(f"masked_fill_ only supports a 0-dimensional value tensor, but "
                               f"got tensor with {value._data.ndim} dimension(s).")
        v = value._data.astype(xd.dtype)
    else:
        s = _ops._scalar(value)
        if s is None:
            raise TypeError(f"masked_fill(): argument 'value' must be Number or Tensor, not "
                            f"{type(value).__name__}")
        if xd.dtype.kind in "iu" and not isinstance(s, bool):
            info = np.iinfo(xd.dtype)
            if not (np.isfinite(s) and info.min <= s <= info.max):
                raise RuntimeError(f"value cannot be converted to type {xd.dtype.name}_t "
                                   "without overflow")
        v = np.array(s).astype(xd.dtype)
    shape = _ops.broadcast_shapes(md.shape, xd.shape)
    out = _wrap(_backend(xd).ternary("where", md, v, xd, shape))
    if isinstance(value, Tensor):
        return record(D.MASKED_FILL_TENSOR, out, (x, value), (mask,))
    return record(D.MASKED_FILL, out, (x,), (mask,))


# --------------------------------------------------------------------------- one_hot

def one_hot(tensor: Tensor, num_classes: int = -1):
    """torch.nn.functional.one_hot: int64 rows with a 1 at each class index."""
    d = tensor._data
    if d.dtype != np.int64:
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    num_classes = _int(num_classes, "num_classes")
    if d.size == 0:
        if num_classes <= 0:
            raise RuntimeError("Can not infer total number of classes from empty tensor.")
        return _wrap(_backend(d).zeros(d.shape + (num_classes,), np.int64))
    lo, hi = _backend(d).index_range(d)
    if lo < 0:
        raise RuntimeError("Class values must be non-negative.")
    if num_classes == -1:
        num_classes = hi + 1
    elif num_classes <= hi:
        raise RuntimeError("Class values must be smaller than num_classes.")
    return _wrap(_backend(d).one_hot(d, num_classes))


# --------------------------------------------------------------------------- Tensor methods

METHODS: dict = {
    "split": split, "split_with_sizes": split_with_sizes, "chunk": chunk, "unbind": unbind,
    "unflatten": unflatten, "repeat": repeat, "tile": tile, "flip": flip, "roll": roll,
    "narrow": narrow, "diagonal": diagonal, "tril": tril, "triu": triu,
    "gather": gather, "scatter": scatter, "scatter_add": scatter_add,
    "index_select": index_select, "index_add": index_add, "index_fill": index_fill,
    "masked_fill": masked_fill,
    "take": take, "index_put": index_put, "put": put,
}
