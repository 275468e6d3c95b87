"""More of torch's functions, written with existing ops: repeat_interleave, median and
nanmedian, nansum and nanmean, unique, tensor_split and hsplit/vsplit/dsplit, kron, rot90,
logspace. Gradients and devices are those of the ops used."""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from . import _creation as C
from . import _ops as O
from . import _views as V
from . import derivatives as D
from ._device import host
from .autograd.grad_mode import no_grad
from .autograd.graph import OUTPUT, record
from .tensor import Tensor, _wrap_dim

return_types_median = namedtuple("median", ["values", "indices"])


def _need(x, fn: str, arg: str = "input", pos: int = 1) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{fn}(): argument '{arg}' (position {pos}) must be Tensor, not "
                        f"{type(x).__name__}")


# --------------------------------------------------------------------------- repeats

def repeat_interleave(input, repeats=None, dim=None, *, output_size=None):  # noqa: A002
    """Each element (or slice along dim) repeated `repeats` times in place; with a tensor
    alone, the indices 0, 1, ... each repeated as often as it says."""
    from ._shape_ops import index_select

    if repeats is None:  # repeat_interleave(counts): indices repeated by counts
        _need(input, "repeat_interleave")
        counts = np.asarray(host(input._data)).astype(np.int64)
        if counts.ndim != 1:
            raise RuntimeError("repeats must be 0-dim or 1-dim tensor")
        if (counts < 0).any():
            raise RuntimeError("repeats can not be negative")
        return C.tensor(np.repeat(np.arange(counts.size), counts), device=input.device)
    _need(input, "repeat_interleave")
    x = input
    if dim is None:
        x, d = V.reshape(x, -1), 0
    else:
        d = _wrap_dim(int(dim), max(x.dim(), 1))
    if x.dim() == 0:
        x = V.reshape(x, 1)
    n = x.shape[d]
    if isinstance(repeats, Tensor):
        r = np.asarray(host(repeats._data)).astype(np.int64).reshape(-1)
        if r.size == 1:
            repeats = int(r[0])
        else:
            if r.size != n:
                raise RuntimeError("repeats must have the same size as input along dim, but "
                                   f"got repeats.size(0) = {r.size} and input.size({d}) = {n}")
            if (r < 0).any():
                raise RuntimeError("repeats can not be negative")
            idx = C.tensor(np.repeat(np.arange(n), r), device=x.device)
            return index_select(x, d, idx)
    r = int(repeats)
    if r < 0:
        raise RuntimeError("Repeats must be non-negative")
    shape = list(x.shape)
    y = V.unsqueeze(x, d + 1)
    y = V.expand(y, *shape[:d + 1], r, *shape[d + 1:])
    return V.reshape(y, *shape[:d], n * r, *shape[d + 1:])


# --------------------------------------------------------------------------- nan-aware

def nansum(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:  # noqa: A002
    """sum, with NaNs counted as zero."""
    from ._composite import isnan

    _need(input, "nansum")
    x = O.where(isnan(input), 0, input) if input.dtype.is_floating_point else input
    return O.sum(x, dim, keepdim, dtype=dtype) if dtype is not None else O.sum(x, dim, keepdim)


def nanmean(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:  # noqa: A002
    """mean over the elements that are not NaN."""
    from ._composite import isnan

    _need(input, "nanmean")
    if not input.dtype.is_floating_point:
        raise RuntimeError("nanmean(): expected input to have floating point or complex dtype "
                           f"but got {O.torch_name(input._data.dtype)}")
    x = O.to_dtype(input, dtype) if dtype is not None else input
    with no_grad():
        count = O.sum(O.logical_not(isnan(x)), dim, keepdim)
    return O.div(nansum(x, dim, keepdim), count)


def _median(x: Tensor, dim, keepdim: bool, ignore_nan: bool, fn: str):
    from ._composite import isnan
    from ._shape_ops import _gather
    from ._sorting import sort

    _need(x, fn)
    if dim is None:
        if x.numel() == 0:  # torch's median of nothing is NaN
            return C.full((), np.nan, dtype=x.dtype, device=x.device)
        with no_grad():
            values, _ = _median(V.reshape(x, -1), 0, False, ignore_nan, fn)
        # the gradient is shared evenly by every element equal to the median, as in torch
        return record(D.MEDIAN_ALL, values, (x,), (x, OUTPUT))
    d = _wrap_dim(int(dim), max(x.dim(), 1))
    if x.dim() == 0:
        x = V.reshape(x, 1)
    n = x.shape[d]
    if n == 0:
        raise IndexError(f"{fn}(): Expected reduction dim {d} to have non-zero size.")
    s, idx = sort(x, d)
    with no_grad():
        nans = O.sum(isnan(x), d, True) if x.dtype.is_floating_point else None
    if nans is None:
        pos = C.full(tuple(1 if i == d else m for i, m in enumerate(x.shape)), (n - 1) // 2,
                     dtype=C._dtype.int64, device=x.device)
    elif ignore_nan:  # the lower median of the numbers; NaN (position 0) if there are none
        pos = O.clamp(O.div(O.sub(O.sub(n, nans), 1), 2, rounding_mode="floor"), min=0)
    else:  # NaN wherever there is one: the first NaN in sorted order
        pos = O.where(O.gt(nans, 0), O.sub(n, nans), (n - 1) // 2)
    pos = pos._data.astype(np.int64) if pos.dtype != C._dtype.int64 else pos._data
    values = _gather(s, d, pos)
    indices = Tensor._wrap(np.take_along_axis(idx._data, pos, d)
                           if isinstance(idx._data, np.ndarray) else
                           _gather(idx, d, pos)._data)
    if not keepdim:
        values, indices = V.squeeze(values, d), V.squeeze(indices, d)
    return return_types_median(values, indices)


def median(input: Tensor, dim=None, keepdim: bool = False):  # noqa: A002
    """The lower median (of everything, or (values, indices) along dim); NaN if any is NaN."""
    return _median(input, dim, keepdim, False, "median")


return_types_nanmedian = namedtuple("nanmedian", ["values", "indices"])


def nanmedian(input: Tensor, dim=None, keepdim: bool = False):  # noqa: A002
    """median over the elements that are not NaN."""
    out = _median(input, dim, keepdim, True, "nanmedian")
    return return_types_nanmedian(*out) if isinstance(out, tuple) else out


# --------------------------------------------------------------------------- unique

def unique(input: Tensor, sorted: bool = True, return_inverse: bool = False,  # noqa: A002
           return_counts: bool = False, dim=None):
    """The distinct values (sorted), optionally with each element's position among them and
    how often each occurs. The result's size depends on the values: a CUDA input is read
    back to the host."""
    _need(input, "unique")
    h = np.asarray(host(input._data))
    if dim is None:
        vals, inv, counts = np.unique(h.reshape(-1), return_inverse=True, return_counts=True)
        inv = inv.reshape(h.shape)
    else:
        d = _wrap_dim(int(dim), max(h.ndim, 1))
        vals, inv, counts = np.unique(h, return_inverse=True, return_counts=True, axis=d)
        inv = inv.reshape(-1)
    dev = input.device
    out = [C.tensor(vals, device=dev)]
    if return_inverse:
        out.append(C.tensor(inv.astype(np.int64), device=dev))
    if return_counts:
        out.append(C.tensor(counts.astype(np.int64), device=dev))
    return out[0] if len(out) == 1 else tuple(out)


# --------------------------------------------------------------------------- splits

def tensor_split(input: Tensor, indices_or_sections, dim: int = 0):  # noqa: A002
    """Views of input along dim: n nearly equal parts (the first size % n one longer), or
    the pieces between the given indices."""
    from ._shape_ops import narrow

    _need(input, "tensor_split")
    if input.dim() == 0:
        raise RuntimeError("tensor_split expected at least a 1-dimensional tensor, but got a "
                           "tensor with 0 dims")
    d = _wrap_dim(int(dim), input.dim())
    n = input.shape[d]
    ios = indices_or_sections
    if isinstance(ios, Tensor):
        if ios.dim() > 1:
            raise RuntimeError("tensor_split expected tensor_indices_or_sections to be a "
                               "zero-dimensional or one-dimensional tensor, but got a tensor "
                               f"with {ios.dim()} dims")
        ios = np.asarray(host(ios._data)).tolist()
    if isinstance(ios, (int, np.integer)):
        k = int(ios)
        if k <= 0:
            raise RuntimeError(f"number of sections must be larger than 0, got {k}")
        sizes = [n // k + (1 if i < n % k else 0) for i in range(k)]
        bounds = np.concatenate([[0], np.cumsum(sizes)]).tolist()
    else:
        cuts = [int(i) for i in ios]
        bounds = [0] + cuts + [n]
    out = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        a = min(max(a if a >= 0 else a + n, 0), n)
        b = min(max(b if b >= 0 else b + n, 0), n)
        out.append(narrow(input, d, a, max(b - a, 0)))
    return tuple(out)


def _split_along(input: Tensor, ios, dim: int, fn: str, min_dims: int):
    _need(input, fn)
    if input.dim() < min_dims:
        raise RuntimeError(f"torch.{fn} requires a tensor with at least {min_dims} dimension, "
                           f"but got a tensor with {input.dim()} dimensions!")
    if isinstance(ios, (int, np.integer)):
        size = input.shape[dim]
        if ios == 0 or size % int(ios):
            raise RuntimeError(f"torch.{fn} attempted to split along dimension {dim}, but the "
                               f"size of the dimension {size} is not divisible by the "
                               f"split_size {ios}!")
    return tensor_split(input, ios, dim)


def hsplit(input: Tensor, indices_or_sections):  # noqa: A002
    return _split_along(input, indices_or_sections, 1 if input.dim() > 1 else 0, "hsplit", 1)


def vsplit(input: Tensor, indices_or_sections):  # noqa: A002
    return _split_along(input, indices_or_sections, 0, "vsplit", 2)


def dsplit(input: Tensor, indices_or_sections):  # noqa: A002
    return _split_along(input, indices_or_sections, 2, "dsplit", 3)


# --------------------------------------------------------------------------- products, grids

def kron(input: Tensor, other: Tensor) -> Tensor:  # noqa: A002
    """The Kronecker product: every element of input times the whole of other."""
    _need(input, "kron")
    _need(other, "kron", "other", 2)
    n = max(input.dim(), other.dim())
    a = V.reshape(input, *([1] * (n - input.dim()) + list(input.shape)))
    b = V.reshape(other, *([1] * (n - other.dim()) + list(other.shape)))
    sa, sb = list(a.shape), list(b.shape)
    inter_a, inter_b = [], []
    for i in range(n):
        inter_a += [sa[i], 1]
        inter_b += [1, sb[i]]
    prod = O.mul(V.reshape(a, *inter_a), V.reshape(b, *inter_b))
    return V.reshape(prod, *[sa[i] * sb[i] for i in range(n)])


def rot90(input: Tensor, k: int = 1, dims=(0, 1)) -> Tensor:  # noqa: A002
    """input rotated by k quarter turns in the plane of dims, from the first dim toward the
    second."""
    from ._shape_ops import flip

    _need(input, "rot90")
    dims = list(dims)
    if len(dims) != 2:
        raise RuntimeError(f"expected total rotation dims == 2, but got dims = {len(dims)}")
    n = input.dim()
    if n < 2:
        raise RuntimeError(f"expected total dims >= 2, but got total dims = {n}")
    d0, d1 = (_wrap_dim(int(d), n) for d in dims)
    if d0 == d1:
        raise RuntimeError(f"expected rotation dims to be different, but got dim0 = {d0} and "
                           f"dim1 = {d1}")
    k %= 4
    if k == 1:
        return V.transpose(flip(input, d1), d0, d1)
    if k == 2:
        return flip(input, (d0, d1))
    if k == 3:
        return V.transpose(flip(input, d0), d0, d1)
    return O.clone(input)


def logspace(start, end, steps: int, base: float = 10.0, *, dtype=None, device=None,
             requires_grad: bool = False) -> Tensor:
    """steps values from base**start to base**end, evenly spaced in the exponent."""
    exps = C.linspace(start, end, steps, dtype=C._dtype.float64, device="cpu")
    vals = np.power(np.float64(base), np.asarray(exps._data))
    dt = C._np_dtype(dtype)
    return C.tensor(vals.astype(dt), device=device, requires_grad=requires_grad)


# --------------------------------------------------------------------------- small functions

return_types_aminmax = namedtuple("aminmax", ["min", "max"])


def _float(x: Tensor) -> Tensor:
    return x if x.dtype.is_floating_point else O.to_dtype(x, C._dtype.get_default_dtype())


def _with_mean(stat, input: Tensor, dim, unbiased, keepdim: bool, correction) -> tuple:
    from ._ops import mean

    if dim is None and keepdim:
        dim = tuple(range(input.dim()))
    return (stat(input, dim, unbiased, keepdim, correction=correction),
            mean(input, dim, keepdim) if dim is not None else mean(input))


def std_mean(input: Tensor, dim=None, unbiased=None, keepdim: bool = False, *,  # noqa: A002
             correction=None) -> tuple:
    from ._reductions import std

    return _with_mean(std, input, dim, unbiased, keepdim, correction)


def var_mean(input: Tensor, dim=None, unbiased=None, keepdim: bool = False, *,  # noqa: A002
             correction=None) -> tuple:
    from ._reductions import var

    return _with_mean(var, input, dim, unbiased, keepdim, correction)


def aminmax(input: Tensor, *, dim=None, keepdim: bool = False):  # noqa: A002
    """(min, max) over dim (or everything)."""
    from ._reductions import amax, amin

    d = () if dim is None else dim
    return return_types_aminmax(amin(input, d, keepdim), amax(input, d, keepdim))


def deg2rad(input: Tensor) -> Tensor:  # noqa: A002
    return O.mul(_float(input), np.pi / 180.0)


def rad2deg(input: Tensor) -> Tensor:  # noqa: A002
    return O.mul(_float(input), 180.0 / np.pi)


def frac(input: Tensor) -> Tensor:  # noqa: A002
    """input minus its integer part (keeping input's sign)."""
    from ._pointwise import _not_implemented, trunc

    if not input.dtype.is_floating_point:
        raise _not_implemented("frac_cpu", input._data.dtype)
    with no_grad():
        t = trunc(input)
    return O.sub(input, t)


def _nan_aware(a: Tensor, b: Tensor, keep_a) -> Tensor:
    """a where keep_a(a, b) holds or b is NaN (ties go to a, as torch's gradient does), else b;
    b where a is NaN."""
    from ._composite import isnan

    _need(a, "fmax")
    _need(b, "fmax", "other", 2)
    with no_grad():
        take_a = O.logical_and(O.logical_not(isnan(a)),
                               O.logical_or(isnan(b), keep_a(a, b)))
    return O.where(take_a, a, b)


def fmax(input: Tensor, other: Tensor) -> Tensor:  # noqa: A002
    """maximum, ignoring a NaN where the other value is a number."""
    return _nan_aware(input, other, O.ge)


def fmin(input: Tensor, other: Tensor) -> Tensor:  # noqa: A002
    """minimum, ignoring a NaN where the other value is a number."""
    return _nan_aware(input, other, O.le)


def float_power(input, exponent) -> Tensor:  # noqa: A002
    """input ** exponent in float64."""
    f64 = C._dtype.float64
    a = O.to_dtype(input, f64) if isinstance(input, Tensor) else float(input)
    b = O.to_dtype(exponent, f64) if isinstance(exponent, Tensor) else float(exponent)
    return O.pow(a, b)


def hypot(input: Tensor, other: Tensor) -> Tensor:  # noqa: A002
    """sqrt(input**2 + other**2)."""
    return O.sqrt(O.add(O.mul(input, input), O.mul(other, other)))


def xlogy(input, other) -> Tensor:  # noqa: A002
    """input * log(other), 0 where input is 0 (unless other is NaN)."""
    from ._composite import isnan

    if not isinstance(input, Tensor) and not isinstance(other, Tensor):
        raise TypeError("xlogy(): expected a Tensor among the arguments")
    dev = (input if isinstance(input, Tensor) else other).device  # a number joins a tensor
    x = input if isinstance(input, Tensor) else C.tensor(float(input), device=dev)
    y = other if isinstance(other, Tensor) else C.tensor(float(other), dtype=x.dtype if
                                                         x.dtype.is_floating_point else None,
                                                         device=dev)
    with no_grad():
        zero = O.logical_and(O.eq(x, 0), O.logical_not(isnan(y)))
        ones = O.where(zero, 1.0, _float(y))  # log(1) = 0 where the result is pinned to 0,
    return O.where(zero, 0.0, O.mul(_float(x), O.log(O.where(zero, ones, y))))  # grads too


def signbit(input: Tensor) -> Tensor:  # noqa: A002
    """Whether the sign bit is set (True for -0.0)."""
    with no_grad():
        if not input.dtype.is_floating_point:
            return O.lt(input, 0)
        return O.logical_or(O.lt(input, 0), O.logical_and(O.eq(input, 0),
                                                          O.lt(O.reciprocal(input), 0)))


def copysign(input, other) -> Tensor:  # noqa: A002
    """|input| with other's sign (bit)."""
    _need(input, "copysign")
    x = _float(input)
    neg = signbit(other) if isinstance(other, Tensor) else C.tensor(bool(np.signbit(other)),
                                                                    device=x.device)
    a = O.abs(x)
    return O.where(neg, O.neg(a), a)


def sgn(input: Tensor) -> Tensor:  # noqa: A002
    return O.sign(input)


def heaviside(input: Tensor, values: Tensor) -> Tensor:  # noqa: A002
    """0 below zero, 1 above, `values` at zero."""
    _need(input, "heaviside")
    _need(values, "heaviside", "values", 2)
    if input.dtype != values.dtype:
        raise RuntimeError("heaviside is not yet implemented for tensors with different "
                           "dtypes.")
    with no_grad():
        step = O.to_dtype(O.gt(input, 0), input.dtype)
        return O.where(O.eq(input, 0), values, step)


def inner(input: Tensor, other: Tensor) -> Tensor:  # noqa: A002
    """Sums of products over the last dims (a dot product for vectors)."""
    from ._einsum import tensordot

    _need(input, "inner")
    _need(other, "inner", "other", 2)
    if input.dim() == 0 or other.dim() == 0:
        return O.mul(input, other)
    if input.shape[-1] != other.shape[-1]:
        raise RuntimeError(f"inner() the last dimension must match on both input tensors but "
                           f"got shapes {list(input.shape)} and {list(other.shape)}")
    return tensordot(input, other, ([-1], [-1]))


def vdot(input: Tensor, other: Tensor) -> Tensor:  # noqa: A002
    from ._methods import dot

    return dot(input, other)


def cdist(x1: Tensor, x2: Tensor, p: float = 2.0, compute_mode=None) -> Tensor:
    """The p-norm distance between each row of x1 and each row of x2 (batched)."""
    from ._reductions import norm

    _need(x1, "cdist", "x1")
    _need(x2, "cdist", "x2", 2)
    if x1.dim() < 2 or x2.dim() < 2:
        raise RuntimeError(f"cdist only supports at least 2D tensors, X1 got: {x1.dim()}D")
    if p < 0:
        raise RuntimeError("cdist only supports non-negative p values")
    if x1.shape[-1] != x2.shape[-1]:
        raise RuntimeError(f"X1 and X2 must have the same number of columns. X1: "
                           f"{x1.shape[-1]} X2: {x2.shape[-1]}")
    diff = O.sub(V.unsqueeze(x1, -2), V.unsqueeze(x2, -3))
    return norm(diff, p, -1)


def dist(input: Tensor, other: Tensor, p: float = 2) -> Tensor:  # noqa: A002
    from ._reductions import norm

    return norm(O.sub(input, other), p)


def _beta_alpha(input: Tensor, prod: Tensor, beta, alpha) -> Tensor:
    """beta * input + alpha * prod; input is not read when beta is 0 (its NaNs do not
    spread), as in torch's baddbmm/addmv/addr."""
    if alpha != 1:
        prod = O.mul(prod, alpha)
    if beta == 0:
        return prod
    return O.add(prod, input if beta == 1 else O.mul(input, beta))


def baddbmm(input: Tensor, batch1: Tensor, batch2: Tensor, *, beta=1, alpha=1) -> Tensor:  # noqa: A002
    """beta * input + alpha * batch1 @ batch2 (input not read when beta is 0)."""
    for t, name, pos in ((input, "input", 1), (batch1, "batch1", 2), (batch2, "batch2", 3)):
        _need(t, "baddbmm", name, pos)
    for t, name in ((batch1, "batch1"), (batch2, "batch2")):
        if t.dim() != 3:
            raise RuntimeError(f"{name} must be a 3D tensor")
    prod = O.matmul(batch1, batch2)
    return _beta_alpha(input, prod, beta, alpha)


def addmv(input: Tensor, mat: Tensor, vec: Tensor, *, beta=1, alpha=1) -> Tensor:  # noqa: A002
    """beta * input + alpha * mat @ vec."""
    for t, name, pos in ((input, "input", 1), (mat, "mat", 2), (vec, "vec", 3)):
        _need(t, "addmv", name, pos)
    if mat.dim() != 2 or vec.dim() != 1 or input.dim() > 1:
        raise RuntimeError(f"vector + matrix @ vector expected, got {input.dim()}, "
                           f"{mat.dim()}, {vec.dim()}")
    prod = O.matmul(mat, vec)
    return _beta_alpha(input, prod, beta, alpha)


def addr(input: Tensor, vec1: Tensor, vec2: Tensor, *, beta=1, alpha=1) -> Tensor:  # noqa: A002
    from ._composite import outer

    prod = outer(vec1, vec2)
    return _beta_alpha(input, prod, beta, alpha)


def column_stack(tensors) -> Tensor:
    """The tensors as columns: 0-d and 1-d ones become (n, 1), then joined along dim 1."""
    from ._shape_ops import cat

    return cat([V.reshape(t, -1, 1) if t.dim() < 2 else t for t in tensors], 1)


def dstack(tensors) -> Tensor:
    """The tensors, made at least 3-D ((n,) -> (1, n, 1), (m, n) -> (m, n, 1)), joined along
    dim 2."""
    from ._shape_ops import cat

    def at3(t):
        if t.dim() == 0:
            return V.reshape(t, 1, 1, 1)
        if t.dim() == 1:
            return V.reshape(t, 1, -1, 1)
        if t.dim() == 2:
            return V.unsqueeze(t, -1)
        return t
    return cat([at3(t) for t in tensors], 2)


def cartesian_prod(*tensors) -> Tensor:
    """Every combination of one element from each 1-D tensor, as rows."""
    from ._composite import meshgrid
    from ._shape_ops import stack

    for i, t in enumerate(tensors):
        _need(t, "cartesian_prod", "tensors", i + 1)
        if t.dim() != 1:
            raise RuntimeError(f"Expect a 1D vector, but got shape {list(t.shape)}")
    if len(tensors) == 1:
        return tensors[0]
    grids = meshgrid(*tensors, indexing="ij")
    return stack([V.reshape(g, -1) for g in grids], 1)


def block_diag(*tensors) -> Tensor:
    """The tensors (0-d as 1 x 1, 1-D as one row) along the diagonal of a zero matrix."""
    from ._shape_ops import constant_pad_nd

    for i, t in enumerate(tensors):
        _need(t, "block_diag", "tensors", i + 1)
    mats = [V.reshape(t, 1, 1) if t.dim() == 0 else V.reshape(t, 1, -1) if t.dim() == 1 else t
            for t in tensors]
    for t in mats:
        if t.dim() != 2:
            raise RuntimeError("torch.block_diag: Input tensors must have 2 or fewer dimensions. "
                               f"Input {mats.index(t)} has {t.dim()} dimensions")
    rows = sum(t.shape[0] for t in mats)
    cols = sum(t.shape[1] for t in mats)
    out, r, c = None, 0, 0
    for t in mats:
        h, w = t.shape
        padded = constant_pad_nd(t, [c, cols - c - w, r, rows - r - h])
        out = padded if out is None else O.add(out, padded)
        r, c = r + h, c + w
    return out if out is not None else C.zeros(1, 0)


def quantile(input: Tensor, q, dim=None, keepdim: bool = False, *,  # noqa: A002
             interpolation: str = "linear") -> Tensor:
    """The q-th quantiles (q a number or a 1-D tensor in [0, 1]) along dim or of everything,
    interpolated between the two nearest sorted values as `interpolation` says."""
    from ._shape_ops import _gather
    from ._sorting import sort

    if interpolation not in ("linear", "lower", "higher", "midpoint", "nearest"):
        raise RuntimeError("quantile() interpolation must be one of linear, lower, higher, "
                           f"midpoint or nearest, but got {interpolation}")
    qs = np.atleast_1d(np.asarray(host(q._data) if isinstance(q, Tensor) else q,
                                  dtype=np.float64))
    if ((qs < 0) | (qs > 1)).any():
        if isinstance(q, Tensor):
            raise RuntimeError("quantile() q values must be in the range [0, 1]")
        raise RuntimeError(f"quantile() q must be in the range [0, 1] but got {q}")
    from ._composite import isnan

    x = V.reshape(input, -1) if dim is None else input
    d = 0 if dim is None else _wrap_dim(int(dim), max(x.dim(), 1))
    n = x.shape[d]
    if n == 0:
        raise RuntimeError("quantile() input tensor must be non-empty")
    s, _ = sort(x, d)
    with no_grad():  # a NaN anywhere along dim makes every quantile there NaN, as in torch
        has_nan = O.gt(O.sum(isnan(x), d, True), 0)
    outs = []
    for qv in qs:
        pos = qv * (n - 1)
        lo, hi = int(np.floor(pos)), int(np.ceil(pos))
        if interpolation == "lower":
            hi = lo
        elif interpolation == "higher":
            lo = hi
        elif interpolation == "nearest":
            lo = hi = int(np.round(pos))  # half to even, as torch
        shape = tuple(1 if i == d else m for i, m in enumerate(s.shape))

        def at(k):
            idx = C.full(shape, k, dtype=C._dtype.int64, device=x.device)._data
            return _gather(s, d, idx)
        a, b = at(lo), at(hi)
        if interpolation == "midpoint" and lo != hi:
            v = O.add(a, O.mul(O.sub(b, a), 0.5))
        elif interpolation == "linear" and lo != hi:
            v = O.add(a, O.mul(O.sub(b, a), pos - lo))
        else:
            v = a
        v = O.where(has_nan, np.nan, v)
        if dim is None:
            v = V.reshape(v, (1,) * input.dim() if keepdim else ())
        elif not keepdim:
            v = V.squeeze(v, d)
        outs.append(v)
    if isinstance(q, Tensor) and q.dim() == 1 or isinstance(q, (list, tuple)):
        from ._shape_ops import stack

        return stack(outs, 0)
    return outs[0]


__all__ = ["repeat_interleave", "nansum", "nanmean", "median", "nanmedian", "unique",
           "tensor_split", "hsplit", "vsplit", "dsplit", "kron", "rot90", "logspace",
           "std_mean", "var_mean", "aminmax", "deg2rad", "rad2deg", "frac", "fmax", "fmin",
           "float_power", "hypot", "xlogy", "signbit", "copysign", "sgn", "heaviside", "inner",
           "vdot", "cdist", "dist", "baddbmm", "addmv", "addr", "column_stack", "dstack",
           "cartesian_prod", "block_diag", "quantile"]

_FUNCTIONS_ONLY = {"logspace", "std_mean", "var_mean", "column_stack", "dstack",
                   "cartesian_prod", "block_diag", "cdist"}
METHODS = {name: globals()[name] for name in __all__ if name not in _FUNCTIONS_ONLY}
