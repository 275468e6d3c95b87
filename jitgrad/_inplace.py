"""In-place operations with torch's safety rules.

An in-place op is its out-of-place primitive whose result is written back into the tensor's
storage (so views of it see the change), followed by three pieces of bookkeeping:

* the storage's version counter goes up, so a backward that needs a value saved before the
  change raises torch's "modified by an inplace operation" error instead of using it;
* the tensor's history is rebased onto the primitive's node, so gradients still flow through
  what it was before;
* for a view, the base's history is rebased onto a ``CopySlices`` node (the gradient reaching
  the base passes to its old self outside the view, and to the new values inside it), and the
  view's own history is replayed from the base.

A value the primitive saved from the tensor itself is first replaced by a copy of the old
value, so the rule differentiates what was really computed.
"""

from __future__ import annotations

import numpy as np

try:
    from numpy.lib.array_utils import byte_bounds
except ImportError:  # numpy < 2
    byte_bounds = np.byte_bounds

from . import _creation
from . import _ops
from . import derivatives as D
from .autograd import grad_mode
from .autograd.graph import Node, OpNode, _SavedOutput, edge, record
from .tensor import Tensor

_wrap = Tensor._wrap


def bump(t: Tensor) -> None:
    """Count one in-place change of t's storage (shared with its views)."""
    v = t._ver
    if v is None:
        v = t._ver = [0]
    v[0] += 1


def check_inplace(t: Tensor) -> None:
    """Refuse in-place changes of leaves that require grad (and of their views)."""
    if not grad_mode.state.enabled:
        return
    if t._requires_grad and t._grad_fn is None and t._base is None:
        raise RuntimeError(
            "a leaf Variable that requires grad is being used in an in-place operation.")
    base = t._base
    if base is not None and base._requires_grad and base._grad_fn is None:
        raise RuntimeError(
            "a view of a leaf Variable that requires grad is being used in an in-place "
            "operation.")


def _writable(t: Tensor) -> None:
    if not t._data.flags.writeable:
        raise RuntimeError(
            "unsupported operation: more than one element of the written-to tensor refers to a "
            "single memory location. Please clone() the tensor before performing the "
            "operation.")


_OVERLAP = ("unsupported operation: some elements of the input tensor and the written-to "
            "tensor refer to a single memory location. Please clone() the tensor before "
            "performing the operation.")


def _dense_span(a):
    """(first byte, byte after the last) of a storage array whose elements are dense in
    memory in some order of its dims ("non-overlapping and dense", as torch checks), else
    None: torch checks overlap only between such layouts."""
    shape, strides = a.shape, a.strides
    isz = a.dtype.itemsize
    if a.__class__ is np.ndarray:
        if a.flags.c_contiguous:
            start = byte_bounds(a)[0]
            return start, start + a.size * isz
        start = byte_bounds(a)[0]
    else:
        start = a._offset
        if a._c:
            return start, start + a.size * isz
    acc = isz
    for st, n in sorted((st, n) for st, n in zip(strides, shape) if n != 1):
        if st != acc:
            return None
        acc *= n
    return start, start + a.size * isz


def _no_partial_overlap(t: Tensor, args, kwargs=None) -> None:
    """Refuse an elementwise in-place write into t from a tensor whose memory t partly
    shares, as torch does: the result would depend on the order elements are written in
    (the CPU's loop and the GPU's threads once disagreed). The same elements in the same
    layout (t.add_(t)) are fine; so are layouts torch does not check either (not dense)."""
    d = t._data
    for a in (*args, *kwargs.values()) if kwargs else args:
        if not isinstance(a, Tensor):
            continue
        s = a._data
        if s is d or s.__class__ is not d.__class__ or not s.size or not d.size:
            continue
        if d.__class__ is np.ndarray:
            if (d.base is None and s.base is None) or not np.may_share_memory(d, s):
                continue
        elif s._block is not d._block:
            continue
        ds, ss = _dense_span(d), _dense_span(s)
        if ds is None or ss is None:
            continue
        if ds[0] < ss[1] and ss[0] < ds[1] and not (
                ds == ss and d.strides == s.strides and d.shape == s.shape):
            raise RuntimeError(_OVERLAP)


def _needs_graph(t: Tensor, args, kwargs) -> bool:
    if not grad_mode.state.enabled:
        return False
    if t._requires_grad:
        return True
    return any(isinstance(a, Tensor) and a._requires_grad
               for a in (*args, *kwargs.values()))


def _castable(res: np.ndarray, t: Tensor) -> None:
    if res.dtype != t._data.dtype and not np.can_cast(res.dtype, t._data.dtype, "same_kind"):
        raise RuntimeError(f"result type {_ops.torch_name(res.dtype)} can't be cast to the "
                           f"desired output type {_ops.torch_name(t._data.dtype)}")
    if res.shape != t._data.shape:
        raise RuntimeError(f"output with shape {list(t._data.shape)} doesn't match the "
                           f"broadcast shape {list(res.shape)}")


def apply(t: Tensor, op, *args, **kwargs) -> Tensor:
    """t.op_(*args): run out-of-place `op`, write the result into t, keep the graph right."""
    check_inplace(t)
    _writable(t)
    if not _needs_graph(t, args, kwargs):
        with grad_mode.no_grad():
            res = op(t, *args, **kwargs)
        _castable(res._data, t)
        t._data[...] = res._data
        bump(t)
        return t
    res = op(t, *args, **kwargs)
    _castable(res._data, t)
    node = res._grad_fn
    if isinstance(node, OpNode) and node._saved:
        _keep_old_value(node, t)
    t._data[...] = res._data
    bump(t)
    if isinstance(node, OpNode) and node._saved:
        _output_lives_in(node, t)
    if t._base is None:
        t._grad_fn = res._grad_fn
        t._output_nr = res._output_nr
        t._requires_grad = res._requires_grad
    else:
        _rebase_view(t, res)
    return t


def _keep_old_value(node: OpNode, t: Tensor) -> None:
    """If `node` saved t itself, save a copy of t's current value instead: t is about to
    be overwritten."""
    if not any(s is t for s in node._saved):
        return
    old = _wrap(t._data.copy(), t._grad_fn, t._output_nr)
    old._requires_grad = t._requires_grad
    node._saved = tuple(old if s is t else s for s in node._saved)
    node._versions = tuple(0 if s is t else v for s, v in zip(node._saved, node._versions))


def _output_lives_in(node: OpNode, t: Tensor) -> None:
    """The result the node saved now lives in t's storage: point the saved value there, at
    t's new version, so a later in-place change of t is caught (and the copy is freed)."""
    saved = []
    versions = list(node._versions)
    for i, s in enumerate(node._saved):
        if type(s) is _SavedOutput:
            s = _SavedOutput(t._data, s.nr, t._ver)
            versions[i] = t._ver[0]
        saved.append(s)
    node._saved = tuple(saved)
    node._versions = tuple(versions)


class CopySlices(Node):
    """The node of a base whose view was changed in place: the gradient reaching the base
    goes to its old self outside the view and to the view's new values inside it."""

    __slots__ = ("view_fn", "shape")

    def __init__(self, base: Tensor, res: Tensor, view_fn):
        super().__init__((edge(base), edge(res)),
                         ((base._data.shape, base._data.dtype), (res._data.shape,
                                                                 res._data.dtype)))
        self.view_fn = view_fn
        self.shape = base._data.shape

    def name(self) -> str:
        return "CopySlices"

    def apply(self, grads: list) -> list:
        g = grads[0]
        out = [None, None]
        if self.next_functions[0][0] is not None:
            mask = _creation.ones(self.shape, dtype=g.dtype, device=g.device)
            with grad_mode.no_grad():
                self.view_fn(mask)._data[...] = 0
            out[0] = _ops.mul(g, mask)
        if self.next_functions[1][0] is not None:
            out[1] = self.view_fn(g)
        return out


def _rebase_view(view: Tensor, res: Tensor) -> None:
    base = view._base
    node = CopySlices(base, res, view._view_fn)
    base._grad_fn = node
    base._output_nr = 0
    base._requires_grad = True
    replay = view._view_fn(base)
    view._grad_fn = replay._grad_fn
    view._output_nr = replay._output_nr
    view._requires_grad = True
    view._gver = view._ver[0]


# --------------------------------------------------------------------------- primitives

def overwrite(t: Tensor, src) -> Tensor:
    """The out-of-place form of t.copy_(src): src broadcast to t's shape, in t's dtype."""
    src = _ops.as_tensor_operand(src, t)
    d = src._data
    if not _ops.expandable(d.shape, t._data.shape):
        raise RuntimeError(
            f"The size of tensor a ({t._data.shape[-1] if t._data.ndim else 1}) must match the "
            f"size of tensor b ({d.shape[-1] if d.ndim else 1}) at non-singleton dimension "
            f"{max(t._data.ndim - 1, 0)}")
    out = _ops.backend(t._data).empty(t._data.shape, t._data.dtype)
    if isinstance(out, np.ndarray) and not isinstance(d, np.ndarray):
        d = d.get()  # copy_ from another device: the values come over
    out[...] = d
    return record(D.COPY, _wrap(out), (t, src))


def filled(t: Tensor, value) -> Tensor:
    """The out-of-place form of t.fill_(value)."""
    if isinstance(value, Tensor):
        if value._data.ndim:
            raise RuntimeError("fill_ only supports 0-dimension value tensor but got tensor with "
                               f"{value._data.ndim} dimensions.")
        v = value._data
        out = _ops.backend(t._data).empty(t._data.shape, t._data.dtype)
        out[...] = v if v.__class__ is out.__class__ else v.item()
        return record(D.FILL_TENSOR, _wrap(out), (t, value))
    return record(D.FILL, _wrap(_ops.backend(t._data).full(t._data.shape, value,
                                                            t._data.dtype)), (t,))


def _drawn(t: Tensor, values: np.ndarray, rule) -> Tensor:
    """Random values drawn on the host (torch's generator stream) as t's replacement."""
    out = _creation.tensor(values, device=t.device)
    return record(rule, _wrap(out._data), (t,))


def _float_for(t: Tensor, kernel: str) -> np.dtype:
    dt = t._data.dtype
    if dt.kind != "f":
        raise RuntimeError(f'"{kernel}" not implemented for \'{_ops.torch_name(dt)}\'')
    return dt


def uniformed(t: Tensor, a: float = 0.0, b: float = 1.0, *, generator=None) -> Tensor:
    """The out-of-place form of t.uniform_(a, b): values drawn from U(a, b)."""
    from . import _random

    dt = _float_for(t, "check_uniform_bounds")
    if a > b:
        raise RuntimeError(f"uniform_ expects to return a [from, to) range, but found "
                           f"from={a} > to={b}")
    return _drawn(t, _random.uniform(t._data.shape, dt, a, b, generator=generator), D.UNIFORM)


def normaled(t: Tensor, mean: float = 0.0, std: float = 1.0, *, generator=None) -> Tensor:
    """The out-of-place form of t.normal_(mean, std): values drawn from N(mean, std^2)."""
    from . import _random

    dt = _float_for(t, "normal_kernel_cpu")
    if std < 0:
        raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
    return _drawn(t, _random.normal(t._data.shape, dt, mean, std, generator=generator),
                  D.NORMAL)


def zeroed(t: Tensor) -> Tensor:
    """The out-of-place form of t.zero_()."""
    return record(D.ZERO, _wrap(_ops.backend(t._data).zeros(t._data.shape, t._data.dtype)),
                  (t,))


def index_put(x: Tensor, parts: tuple, value) -> Tensor:
    """x with x[parts] replaced by value: the out-of-place form of ``x[key] = value``."""
    from . import _views

    v = _ops.as_tensor_operand(value, x)
    out = _wrap(x._data.copy())
    _views.assign(out, parts, v)
    rule = D.INDEX_PUT if _views._is_advanced(parts) else D.COPY_SLICES
    return record(rule, out, (x, v), (parts,))


def setitem(x: Tensor, key, value) -> None:
    """x[key] = value. Outside the graph it writes the values; inside, it is an in-place
    index_put (CopySlices), so gradients flow to x's old values and to `value`."""
    from . import _views

    if grad_mode.state.enabled and x._requires_grad and x._grad_fn is None:
        raise RuntimeError(  # torch's words: x[key] is a view of x
            "a view of a leaf Variable that requires grad is being used in an in-place "
            "operation.")
    check_inplace(x)
    _writable(x)
    parts = _views._normalize_key(key, x._data.shape)
    if _needs_graph(x, (value,), {}):
        apply(x, index_put, parts, value)
        return
    _views.assign(x, parts, value)
    bump(x)


def mask_of(shape: tuple, parts: tuple, dtype, like: Tensor | None = None) -> Tensor:
    """Ones of `shape` with zeros at x[parts], on the device of `like` (the host if None)."""
    if like is None:
        m = np.ones(shape, dtype=dtype)
    else:
        m = _ops.backend(like._data).full(shape, 1, dtype)
    m[parts] = 0
    return _wrap(m)


# --------------------------------------------------------------------------- methods

def method(op, elementwise: bool = True):
    """The in-place method t.op_(...) for out-of-place function `op`; an elementwise one
    refuses sources that partly share t's memory, as torch does."""

    if elementwise:
        def inplace(self: Tensor, *args, **kwargs) -> Tensor:
            _no_partial_overlap(self, args, kwargs)
            return apply(self, op, *args, **kwargs)
    else:
        def inplace(self: Tensor, *args, **kwargs) -> Tensor:
            return apply(self, op, *args, **kwargs)

    inplace.__name__ = getattr(op, "__name__", "op") + "_"
    return inplace


def _binary_fast(kname: str, op):
    """add_/sub_/mul_/div_: outside the graph, the kernel writes straight into the tensor."""

    def inplace(self: Tensor, other, *args, **kwargs) -> Tensor:
        _no_partial_overlap(self, (other,))
        if (args or kwargs or not isinstance(self._data, np.ndarray)
                or _needs_graph(self, (other,), {})):
            return apply(self, op, other, *args, **kwargs)
        check_inplace(self)
        _writable(self)
        if kname == "sub":
            _ops._sub_check(self, other)
        _, _, sd, od = _ops.operands(self, other)
        d = self._data
        if (sd.dtype != d.dtype or not d.flags.c_contiguous
                or (kname == "div" and d.dtype.kind != "f")
                or not _ops.expandable(od.shape, d.shape)):
            return apply(self, op, other)
        _ops.backend(d).binary(kname, d, od, d.shape, out=d)
        bump(self)
        return self

    inplace.__name__ = f"{kname}_"
    return inplace


def methods() -> dict:
    from . import _composite, _extras, _pointwise, _shape_ops

    table = {
        "add_": _binary_fast("add", _ops.add), "sub_": _binary_fast("sub", _ops.sub),
        "mul_": _binary_fast("mul", _ops.mul), "div_": _binary_fast("div", _ops.div),
        "__iadd__": _binary_fast("add", _ops.add), "__isub__": _binary_fast("sub", _ops.sub),
        "__imul__": _binary_fast("mul", _ops.mul),
        "__itruediv__": _binary_fast("div", _ops.div),
        "pow_": method(_ops.pow), "clamp_": method(_ops.clamp), "clip_": method(_ops.clamp),
        "clamp_min_": method(_composite.clamp_min), "clamp_max_": method(_composite.clamp_max),
        "neg_": method(_ops.neg), "abs_": method(_ops.abs), "exp_": method(_ops.exp),
        "log_": method(_ops.log), "sqrt_": method(_ops.sqrt), "tanh_": method(_ops.tanh),
        "sigmoid_": method(_ops.sigmoid), "relu_": method(_ops.relu),
        "sign_": method(_ops.sign), "reciprocal_": method(_ops.reciprocal),
        "copy_": method(overwrite), "fill_": method(filled, False),
        "zero_": method(zeroed, False), "uniform_": method(uniformed, False),
        "normal_": method(normaled, False),
        "nan_to_num_": method(_composite.nan_to_num), "xlogy_": method(_extras.xlogy),
        "frac_": method(_extras.frac),
        "__ipow__": method(_ops.pow), "__imod__": method(_pointwise.remainder),
        "__ifloordiv__": method(_pointwise.floor_divide),
        "__iand__": method(_ops.bitwise_and), "__ior__": method(_ops.bitwise_or),
        "__ixor__": method(_ops.bitwise_xor), "logical_xor_": method(_ops.logical_xor),
        "logical_and_": method(_ops.logical_and), "logical_or_": method(_ops.logical_or),
        "logical_not_": method(_ops.logical_not),
        "__setitem__": setitem,
    }
    # In-place forms of the families' ops: x.name_(...) for every out-of-place x.name(...).
    for family in (_pointwise, _shape_ops):
        for name, fn in family.METHODS.items():
            if not name.startswith("_") and not name.endswith("_") and \
                    name + "_" not in table and name in _INPLACE_FAMILY_NAMES:
                table[name + "_"] = method(fn, name not in _NOT_ELEMENTWISE)
    return table


# in-place forms that write a region or read a value, not elementwise over their sources
_NOT_ELEMENTWISE = {"masked_fill", "index_add", "scatter", "scatter_add", "index_fill", "tril",
                    "triu", "index_put", "put"}


_INPLACE_FAMILY_NAMES = {
    "sin", "cos", "tan", "log1p", "expm1", "log2", "log10", "exp2", "rsqrt", "square",
    "floor", "ceil", "round", "trunc", "fmod", "remainder", "floor_divide", "atan2", "erf",
    "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "arcsin", "arccos",
    "arctan", "arcsinh", "arccosh", "arctanh", "lerp", "addcmul",
    "addcdiv", "masked_fill", "index_add", "scatter", "scatter_add", "index_fill", "tril",
    "triu", "hardtanh", "leaky_relu", "elu", "silu", "mish", "logaddexp", "index_put", "put",
}
