"""Functions made of other ops: floating-point tests (isnan, isinf, isfinite, isclose,
allclose, equal), the Tensor.new_* factories, and shape helpers (broadcast_to, movedim,
outer, addmm, hstack, vstack). They add no primitive, so their gradients, devices and
kernels are those of the ops they are written with."""

from __future__ import annotations

import numpy as np

from . import _creation as C
from . import _ops as O
from . import _views as V
from . import derivatives as D
from .autograd.grad_mode import no_grad
from .autograd.graph import record
from .tensor import Tensor


def _need_tensor(x, fn: str, arg: str = "input", pos: int = 1) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{fn}(): argument '{arg}' (position {pos}) must be Tensor, not "
                        f"{type(x).__name__}")


# --------------------------------------------------------------------------- float tests

def isnan(input: Tensor) -> Tensor:
    """Where input is NaN (never, for integers and bools)."""
    _need_tensor(input, "isnan")
    return O.ne(input, input)


def isinf(input: Tensor) -> Tensor:
    """Where input is +inf or -inf."""
    _need_tensor(input, "isinf")
    if input.dtype.is_floating_point:
        with no_grad():
            return O.eq(O.abs(input), np.inf)
    return O.ne(input, input)


def isfinite(input: Tensor) -> Tensor:
    """Where input is neither NaN nor infinite (everywhere, for integers and bools)."""
    _need_tensor(input, "isfinite")
    if input.dtype.is_floating_point:
        with no_grad():
            return O.eq(O.sub(input, input), 0)  # inf - inf and nan - nan are nan
    return O.eq(input, input)


def isclose(input: Tensor, other: Tensor, rtol: float = 1e-05, atol: float = 1e-08,
            equal_nan: bool = False) -> Tensor:
    """|input - other| <= atol + rtol * |other| elementwise, with equal infinities close and
    NaNs close to each other only if equal_nan."""
    _need_tensor(input, "isclose")
    _need_tensor(other, "isclose", "other", 2)
    if input.dtype != other.dtype:
        raise RuntimeError(f"{O.torch_name(input._data.dtype)} did not match "
                           f"{O.torch_name(other._data.dtype)}")
    if rtol < 0:
        raise RuntimeError(f"rtol must be greater than or equal to zero, but got {rtol}")
    if atol < 0:
        raise RuntimeError(f"atol must be greater than or equal to zero, but got {atol}")
    with no_grad():
        close = O.eq(input, other)
        if input.dtype == C._dtype.bool_:
            return close
        a, b = input, other
        if not a.dtype.is_floating_point:
            a, b = O.to_dtype(a, C._dtype.float64), O.to_dtype(b, C._dtype.float64)
        near = O.le(O.abs(O.sub(a, b)), O.add(O.mul(O.abs(b), rtol), atol))
        close = O.logical_or(close, O.logical_and(near, isfinite(O.sub(a, b))))
        if equal_nan:
            close = O.logical_or(close, O.logical_and(isnan(a), isnan(b)))
    return close


def allclose(input: Tensor, other: Tensor, rtol: float = 1e-05, atol: float = 1e-08,
             equal_nan: bool = False) -> bool:
    """Whether isclose holds everywhere (a Python bool)."""
    return bool(isclose(input, other, rtol, atol, equal_nan).all().item())


def equal(input: Tensor, other: Tensor) -> bool:
    """Whether both have the same shape and the same values (a Python bool)."""
    _need_tensor(input, "equal")
    _need_tensor(other, "equal", "other", 2)
    O.check_same_device(input, other)
    if tuple(input.shape) != tuple(other.shape):
        return False
    with no_grad():
        return bool(O.eq(input, other).all().item())


# --------------------------------------------------------------------------- new_* factories

def _size_arg(size: tuple, kw: dict) -> tuple:
    """The size given positionally or as size= (torch accepts both)."""
    if "size" in kw:
        if size:
            raise TypeError("size was given both positionally and as size=")
        size = kw.pop("size")
        size = tuple(size) if isinstance(size, (tuple, list)) else (size,)
    return size


def _like(self: Tensor, dtype, device) -> dict:
    return dict(dtype=self.dtype if dtype is None else dtype,
                device=self.device if device is None else device)


def new_zeros(self: Tensor, *size, dtype=None, device=None, requires_grad: bool = False,
              **kw) -> Tensor:
    size = _size_arg(size, kw)
    return C.zeros(*size, requires_grad=requires_grad, **_like(self, dtype, device))


def new_ones(self: Tensor, *size, dtype=None, device=None, requires_grad: bool = False,
             **kw) -> Tensor:
    size = _size_arg(size, kw)
    return C.ones(*size, requires_grad=requires_grad, **_like(self, dtype, device))


def new_empty(self: Tensor, *size, dtype=None, device=None, requires_grad: bool = False,
              **kw) -> Tensor:
    size = _size_arg(size, kw)
    return C.empty(*size, requires_grad=requires_grad, **_like(self, dtype, device))


def new_full(self: Tensor, size, fill_value, *, dtype=None, device=None,
             requires_grad: bool = False, **_) -> Tensor:
    return C.full(size, fill_value, requires_grad=requires_grad, **_like(self, dtype, device))


def new_tensor(self: Tensor, data, dtype=None, device=None, requires_grad: bool = False,
               **_) -> Tensor:
    """A new leaf holding a copy of data, in self's dtype and on self's device by default."""
    if isinstance(data, Tensor):
        data = data.detach().cpu().numpy()
    return C.tensor(data, requires_grad=requires_grad, **_like(self, dtype, device))


# --------------------------------------------------------------------------- shapes

def broadcast_to(input: Tensor, size) -> Tensor:
    """input expanded to `size` (a view; -1 keeps a dim), as Tensor.expand."""
    _need_tensor(input, "broadcast_to")
    return V.expand(input, *tuple(size))


def _dims(v, what: str) -> tuple:
    return (int(v),) if isinstance(v, (int, np.integer)) else tuple(int(d) for d in v)


def movedim(input: Tensor, source, destination) -> Tensor:
    """input with the dims in `source` moved to the positions in `destination` (a view)."""
    _need_tensor(input, "movedim")
    n = input.dim()
    src, dst = _dims(source, "source"), _dims(destination, "destination")
    if len(src) != len(dst):
        raise RuntimeError(f"movedim: Invalid source or destination dims: source ({list(src)} "
                           f"dims) should contain the same number of dims as destination "
                           f"({list(dst)} dims)")

    def norm(d: int) -> int:
        if not -max(n, 1) <= d < max(n, 1):
            raise IndexError(f"Dimension out of range (expected to be in range of "
                             f"[{-max(n, 1)}, {max(n, 1) - 1}], but got {d})")
        return d % max(n, 1)

    src, dst = tuple(map(norm, src)), tuple(map(norm, dst))
    for name, ds in (("source", src), ("destination", dst)):
        if len(set(ds)) != len(ds):
            raise RuntimeError(f"movedim: repeated dim in `{name}` ({list(ds)})")
    order = [d for d in range(n) if d not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return V.permute(input, *order) if n else input


moveaxis = movedim


def outer(input: Tensor, vec2: Tensor) -> Tensor:
    """The outer product of two 1-D tensors."""
    _need_tensor(input, "outer")
    _need_tensor(vec2, "outer", "vec2", 2)
    for t, name in ((input, "self"), (vec2, "vec2")):
        if t.dim() != 1:
            raise RuntimeError(f"outer: Expected 1-D argument {name}, but got {t.dim()}-D")
    return O.mul(V.unsqueeze(input, 1), V.unsqueeze(vec2, 0))


ger = outer


def addmm(input: Tensor, mat1: Tensor, mat2: Tensor, *, beta=1, alpha=1) -> Tensor:
    """beta * input + alpha * (mat1 @ mat2); input is not read when beta is 0."""
    for t, name, pos in ((input, "input", 1), (mat1, "mat1", 2), (mat2, "mat2", 3)):
        _need_tensor(t, "addmm", name, pos)
    for t, name in ((mat1, "mat1"), (mat2, "mat2")):
        if t.dim() != 2:
            raise RuntimeError(f"{name} must be a matrix, got {t.dim()}-D tensor")
    with no_grad():
        out = O.matmul(mat1, mat2)
        if O.broadcast_shapes(tuple(input.shape), tuple(out.shape)) != tuple(out.shape):
            raise RuntimeError(f"The expanded size of the tensor ({out.shape[-1]}) must "
                               f"match the existing size ({input.shape[-1]}) at non-singleton "
                               "dimension 1")
        if alpha != 1:
            out = O.mul(out, alpha)
        if beta != 0:  # with beta 0, input only gives the shape: its NaNs do not spread
            out = O.add(out, input if beta == 1 else O.mul(input, beta))
    return record(D.ADDMM_SCALED, out, (input, mat1, mat2), (mat1, mat2, beta, alpha))


def _atleast(t: Tensor, n: int) -> Tensor:
    while t.dim() < n:
        t = V.unsqueeze(t, 0)
    return t


def hstack(tensors) -> Tensor:
    """Tensors joined column-wise: along dim 1, or dim 0 for 1-D ones."""
    from ._shape_ops import cat

    ts = [_atleast(t, 1) for t in tensors]
    return cat(ts, 0 if ts and ts[0].dim() == 1 else 1)


def vstack(tensors) -> Tensor:
    """Tensors joined row-wise, 1-D ones taken as rows."""
    from ._shape_ops import cat

    return cat([_atleast(t, 2) for t in tensors], 0)


row_stack = vstack


def clamp_min(input: Tensor, min) -> Tensor:
    return O.clamp(input, min=min, _rule=D.CLAMP_MIN)


def clamp_max(input: Tensor, max) -> Tensor:
    return O.clamp(input, max=max, _rule=D.CLAMP_MAX)


# --------------------------------------------------------------------------- selections

def nonzero(input: Tensor, *, as_tuple: bool = False):  # noqa: A002
    """The indices of input's nonzero elements: an (n, ndim) int64 tensor, or one 1-D tensor
    per dim with as_tuple. Its size depends on the values, so a CUDA input is read back to
    the host first (as torch synchronises too)."""
    _need_tensor(input, "nonzero")
    from ._device import host

    h = np.asarray(host(input._data))
    dev = input.device
    if not h.ndim:  # a 0-d input counts as one element, with no coordinates
        hit = np.zeros(int(bool(h)), dtype=np.int64)
        if as_tuple:
            return (C.tensor(hit, device=dev),)
        return C.tensor(np.zeros((hit.size, 0), dtype=np.int64), device=dev)
    idx = np.argwhere(h).astype(np.int64)
    if as_tuple:
        return tuple(C.tensor(np.ascontiguousarray(c), device=dev) for c in idx.T)
    return C.tensor(idx, device=dev)


def argwhere(input: Tensor) -> Tensor:  # noqa: A002
    return nonzero(input)


def count_nonzero(input: Tensor, dim=None) -> Tensor:  # noqa: A002
    """How many elements are nonzero (over dim, or all)."""
    _need_tensor(input, "count_nonzero")
    with no_grad():
        return O.sum(O.ne(input, 0), dim)


def masked_select(input: Tensor, mask: Tensor) -> Tensor:  # noqa: A002
    """The elements of input where mask (broadcast together) is True, as a 1-D tensor."""
    _need_tensor(input, "masked_select")
    _need_tensor(mask, "masked_select", "mask", 2)
    if mask.dtype != C._dtype.bool_:
        raise RuntimeError("masked_select: expected BoolTensor for mask")
    shape = O.broadcast_shapes(tuple(input.shape), tuple(mask.shape))
    V.check_index_device(input, mask)
    with no_grad():
        x = V.expand(input, *shape) if tuple(input.shape) != shape else input
        m = V.expand(mask, *shape) if tuple(mask.shape) != shape else mask
        parts = V._normalize_key(m, shape)  # (the mask as the indexing layer keeps it)
        out = V.index(x, parts)
    return record(D.MASKED_SELECT, out, (input,), (shape, parts))


def nan_to_num(input: Tensor, nan: float = 0.0, posinf=None, neginf=None) -> Tensor:  # noqa: A002
    """input with NaN, +inf and -inf replaced (by default with 0 and the dtype's largest and
    lowest finite values)."""
    _need_tensor(input, "nan_to_num")
    if not input.dtype.is_floating_point:
        with no_grad():
            out = O.clone(input)
        return record(D.NAN_TO_NUM, out, (input,), (input,))
    info = np.finfo(input._data.dtype)
    hi = float(info.max) if posinf is None else posinf
    lo = float(info.min) if neginf is None else neginf
    with no_grad():
        out = O.where(isnan(input), nan, input)
        out = O.where(O.eq(input, np.inf), hi, out)
        out = O.where(O.eq(input, -np.inf), lo, out)
        out = O.to_dtype(out, input.dtype) if out.dtype != input.dtype else out
    return record(D.NAN_TO_NUM, out, (input,), (input,))


def diff(input: Tensor, n: int = 1, dim: int = -1, prepend=None, append=None) -> Tensor:  # noqa: A002
    """The n-th forward difference along dim, after prepend and append are joined on."""
    from ._shape_ops import cat, narrow

    _need_tensor(input, "diff")
    if input.dim() == 0:
        raise RuntimeError("diff expects input to be at least one-dimensional")
    if n < 0:
        raise RuntimeError(f"order must be non-negative but got {n}")
    x = input
    if prepend is not None or append is not None:
        x = cat([t for t in (prepend, x, append) if t is not None], dim)
    for _ in range(n):
        length = x.shape[dim]
        if length == 0:
            break
        a, b = narrow(x, dim, 1, length - 1), narrow(x, dim, 0, length - 1)
        x = O.ne(a, b) if x.dtype == C._dtype.bool_ else O.sub(a, b)
    return x


def fliplr(input: Tensor) -> Tensor:  # noqa: A002
    from ._shape_ops import flip

    if input.dim() < 2:
        raise RuntimeError("Input must be >= 2-d.")
    return flip(input, 1)


def flipud(input: Tensor) -> Tensor:  # noqa: A002
    from ._shape_ops import flip

    if input.dim() < 1:
        raise RuntimeError("Input must be >= 1-d.")
    return flip(input, 0)


def trace(input: Tensor) -> Tensor:  # noqa: A002
    """The sum of the main diagonal of a matrix."""
    _need_tensor(input, "trace")
    if input.dim() != 2:
        raise RuntimeError(f"trace: expected a matrix, but got tensor with dim {input.dim()}")
    with no_grad():
        out = O.sum(input.diagonal())
    return record(D.TRACE, out, (input,), (tuple(input.shape),))


def diag(input: Tensor, diagonal: int = 0) -> Tensor:  # noqa: A002
    """The k-th diagonal of a matrix, or a square matrix with a vector on its k-th diagonal."""
    from ._shape_ops import _diagonal, constant_pad_nd

    _need_tensor(input, "diag")
    k = int(diagonal)
    if input.dim() == 2:
        with no_grad():
            out = O.clone(_diagonal(input, k, 0, 1))
        return record(D.DIAG_COPY, out, (input,), (tuple(input.shape), k))
    if input.dim() != 1:
        raise RuntimeError("diag(): Supports 1D or 2D tensors. Got " + f"{input.dim()}D")
    n = input.shape[0]
    with no_grad():
        m = O.mul(C.eye(n, dtype=input.dtype, device=input.device), V.unsqueeze(input, 0))
        if k:
            a = abs(k)
            m = constant_pad_nd(m, [a, 0, 0, a] if k > 0 else [0, a, a, 0])
    return record(D.DIAG_EMBED, m, (input,), (k,))


def meshgrid(*tensors, indexing: str | None = None):
    """Coordinate grids: tensor i varies along dim i ("ij") or with the first two swapped
    ("xy")."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing is None:
        indexing = "ij"
    if indexing not in ("ij", "xy"):
        raise RuntimeError(f"torch.meshgrid: indexing must be one of \"xy\" or \"ij\", but "
                           f"received: {indexing}")
    for i, t in enumerate(tensors):
        _need_tensor(t, "meshgrid", "tensors", i + 1)
        if t.dim() > 1:
            raise RuntimeError("torch.meshgrid: Expected 0D or 1D tensor in the tensor list "
                               f"but got: {t}")
        if t.dtype != tensors[0].dtype:
            raise RuntimeError("meshgrid expects all tensors to have the same dtype")
    ts = [V.reshape(t, -1) for t in tensors]
    swap = indexing == "xy" and len(ts) >= 2  # "xy": the "ij" grids of (y, x, ...), the first
    if swap:                                  # two of them handed back swapped
        ts[0], ts[1] = ts[1], ts[0]
    shape = tuple(t.shape[0] for t in ts)
    out = []
    for i, t in enumerate(ts):
        view = [1] * len(ts)
        view[i] = shape[i]
        out.append(V.expand(V.reshape(t, *view), *shape))
    if swap:
        out[0], out[1] = out[1], out[0]
    return tuple(out)


def select(input: Tensor, dim: int, index: int) -> Tensor:  # noqa: A002
    """The slice of input at `index` along dim, that dim removed (a view)."""
    _need_tensor(input, "select")
    n = input.dim()
    if n == 0:
        raise IndexError("select() cannot be applied to a 0-dim tensor.")
    d = int(dim)
    if not -n <= d < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], "
                         f"but got {d})")
    d %= n
    size = input.shape[d]
    if not -size <= int(index) < size:
        raise IndexError(f"select(): index {index} out of range for tensor of size "
                         f"{list(input.shape)} at dimension {d}")
    return input[(slice(None),) * d + (int(index),)]


def broadcast_tensors(*tensors):
    """The tensors expanded to their common shape (views)."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    shape = ()
    for i, t in enumerate(tensors):
        _need_tensor(t, "broadcast_tensors", "tensors", i + 1)
        shape = O.broadcast_shapes(shape, tuple(t.shape))
    return tuple(t if tuple(t.shape) == shape else V.expand(t, *shape) for t in tensors)


__all__ = ["nonzero", "argwhere", "count_nonzero", "masked_select", "nan_to_num", "diff",
           "fliplr", "flipud", "trace", "diag", "meshgrid", "broadcast_tensors", "select",
           "isnan", "isinf", "isfinite", "isclose", "allclose", "equal", "broadcast_to",
           "movedim", "moveaxis", "outer", "ger", "addmm", "hstack", "vstack", "row_stack",
           "clamp_min", "clamp_max"]

METHODS = {
    "isnan": isnan, "isinf": isinf, "isfinite": isfinite, "isclose": isclose,
    "allclose": allclose, "equal": equal, "broadcast_to": broadcast_to, "movedim": movedim,
    "moveaxis": moveaxis, "swapdims": V.transpose, "outer": outer, "ger": outer,
    "addmm": addmm, "clamp_min": clamp_min, "clamp_max": clamp_max, "new_zeros": new_zeros, "new_ones": new_ones, "new_empty": new_empty,
    "new_full": new_full, "new_tensor": new_tensor, "nonzero": nonzero, "argwhere": argwhere,
    "count_nonzero": count_nonzero, "masked_select": masked_select, "nan_to_num": nan_to_num,
    "diff": diff, "fliplr": fliplr, "flipud": flipud, "trace": trace, "diag": diag,
    "select": select,
}
