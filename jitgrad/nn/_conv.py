"""Linear, convolution, pooling, embedding and dropout: torch.nn.functional's signatures, error
texts and grad_fn names over jitgrad's primitives.

Primitives (their derivative rows are in ``derivatives.py``, section "nn: linear, convolution,
..."):

* ``addmm(bias, a, b)``: the fused product-plus-bias that ``linear`` records, as torch does;
* ``convolution(x, w, b, p)`` (1-D and 2-D, ``p`` = stride, low and high padding, dilation,
  groups), and its two backward primitives ``conv_backward_input(g, w)`` and
  ``conv_backward_weight(g, x)``: each is bilinear, so the derivatives of each are the other
  two and the convolution itself, and gradients of any order work (``kernels/conv.py``);
* max pooling, its backward (a scatter to the argmax) and that one's backward (a gather);
* average pooling over per-axis window tables (``avg_pool2d`` and ``adaptive_avg_pool2d``
  share them) and its backward, each the other's derivative (``kernels/pool.py``);
* ``embedding`` (a row gather) and its backward (a row scatter-add, ``kernels/embedding.py``).

``dropout`` is ``input * mask / (1 - p)`` recorded as a multiplication, as on torch's CPU, with
the mask drawn from jitgrad's torch-compatible generator: after ``manual_seed(s)`` the masks
equal torch's.

Everything is validated here, before a kernel runs, with torch's messages: a failed call
leaves every tensor as it was.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import _dtype, _random
from .. import _ops as O
from .. import _views as V
from .. import derivatives as D
from .._ops import _CPP_NAMES, backend, torch_name
from ..autograd.graph import record
from ..tensor import Tensor
from ._loss import _dev, _host

__all__ = ["adaptive_avg_pool2d", "avg_pool2d", "conv1d", "conv2d", "dropout", "embedding",
           "linear", "max_pool2d", "max_pool2d_with_indices"]

_wrap = Tensor._wrap


def _tensor(v, fn: str, arg: str, pos: int) -> Tensor:
    if not isinstance(v, Tensor):
        raise TypeError(f"{fn}(): argument '{arg}' (position {pos}) must be Tensor, not "
                        f"{type(v).__name__}")
    return v


def _ints(v, fn: str, arg: str, pos: int, n: int) -> tuple:
    """torch's int[n] argument: an int (repeated n times) or a sequence of ints (kept as is)."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer, tuple, list)):
        raise TypeError(f"{fn}(): argument '{arg}' (position {pos}) must be tuple of ints, not "
                        f"{type(v).__name__}")
    if isinstance(v, (int, np.integer)):
        return (int(v),) * n
    for e in v:
        if isinstance(e, (bool, np.bool_)) or not isinstance(e, (int, np.integer)):
            raise TypeError(f"{fn}(): argument '{arg}' (position {pos}) must be tuple of ints, "
                            f"but found element of type {type(e).__name__} at pos {v.index(e)}")
    return tuple(int(e) for e in v)


def _tensor_type(dt: np.dtype) -> str:
    return f"torch.{torch_name(dt)}Tensor"


# --------------------------------------------------------------------------- linear

def _expand_error(shape: tuple, target: tuple) -> RuntimeError | None:
    """torch's error for expanding `shape` to `target`, or None when it expands."""
    if len(shape) > len(target):
        return RuntimeError(
            f"expand({_tensor_type(np.dtype(np.float32))}{{{list(shape)}}}, size="
            f"{list(target)}): the number of sizes provided ({len(target)}) must be greater or "
            f"equal to the number of dimensions in the tensor ({len(shape)})")
    for i in range(len(target) - 1, len(target) - len(shape) - 1, -1):
        s = shape[i - len(target) + len(shape)]
        if s != 1 and s != target[i]:
            return RuntimeError(
                f"The expanded size of the tensor ({target[i]}) must match the existing size "
                f"({s}) at non-singleton dimension {i}.  Target sizes: {list(target)}.  "
                f"Tensor sizes: {list(shape)}")
    return None


def addmm(bias: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """bias + a @ b for matrices a and b, bias broadcast to the product (torch.addmm)."""
    bd, ad, md = bias._data, a._data, b._data
    if bd.dtype != md.dtype:
        raise RuntimeError(f"self and mat2 must have the same dtype, but got "
                           f"{torch_name(bd.dtype)} and {torch_name(md.dtype)}")
    if ad.dtype != md.dtype:
        raise RuntimeError(f"mat1 and mat2 must have the same dtype, but got "
                           f"{torch_name(ad.dtype)} and {torch_name(md.dtype)}")
    for name, d in (("mat1", ad), ("mat2", md)):
        if d.ndim != 2:
            raise RuntimeError(f"{name} must be a matrix, got {d.ndim}-D tensor")
    if ad.shape[1] != md.shape[0]:
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({ad.shape[0]}x"
                           f"{ad.shape[1]} and {md.shape[0]}x{md.shape[1]})")
    err = _expand_error(bd.shape, (ad.shape[0], md.shape[1]))
    if err is not None:
        raise err
    O.check_same_device(bias, a, b)
    out = backend(ad).addmm(bd, ad, md)
    return record(D.ADDMM, _wrap(out), (bias, a, b), (a, b, bd.shape))


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """input @ weight.T + bias, for any leading dimensions of input (torch's dispatch: addmm
    for 2-D input, or contiguous input folded to 2-D, with a bias; matmul otherwise)."""
    x = _tensor(input, "linear", "input", 1)
    w = _tensor(weight, "linear", "weight", 2)
    if bias is not None:
        _tensor(bias, "linear", "bias", 3)
    nx, nw = x._data.ndim, w._data.ndim
    if nx == 0 or nw == 0:
        raise RuntimeError(f"both arguments to linear need to be at least 1D, but they are "
                           f"{nx}D and {nw}D")
    if bias is not None and (nx == 2 or x._data.flags.c_contiguous and
                             (nx == 3 or bias._data.ndim == 1)):
        wt = V.t(w)
        if nx == 2:
            return addmm(bias, x, wt)
        k = x._data.shape[-1]
        rows = int(np.prod(x._data.shape[:-1], dtype=np.int64))
        out = addmm(bias, V.reshape(x, rows, k), wt)
        return V.view(out, x._data.shape[:-1] + (out._data.shape[1],))
    out = O.matmul(x, V.t(w))
    if bias is None:
        return out
    # torch adds the bias in place: the product keeps its shape and dtype.
    od, bd = out._data, bias._data
    shape = O.broadcast_shapes(od.shape, bd.shape)
    if shape != od.shape:
        raise RuntimeError(f"output with shape {list(od.shape)} doesn't match the broadcast "
                           f"shape {list(shape)}")
    if bd.dtype != od.dtype:
        rt = _dtype.result_type(out, bias).np
        if rt.kind == "f" and od.dtype.kind != "f" or rt.kind != "b" and od.dtype.kind == "b":
            raise RuntimeError(f"result type {torch_name(rt)} can't be cast to the desired "
                               f"output type {torch_name(od.dtype)}")
        bias = O.to_dtype(bias, _dtype.to_dtype(od.dtype))
    return O.add(out, bias)


# --------------------------------------------------------------------------- convolution

class ConvParams(NamedTuple):
    """A convolution's geometry, per spatial axis; padding is (low, high) so that 'same'
    padding of an even kernel needs no padded copy."""

    stride: tuple
    pad_lo: tuple
    pad_hi: tuple
    dilation: tuple
    groups: int


def _expand_param(v: tuple, name: str, dim: int) -> tuple:
    if len(v) == 1:
        return v * dim
    if len(v) != dim:
        raise RuntimeError(f"expected {name} to be a single integer value or a list of {dim} "
                           f"values to match the convolution dimensions, but got {name}="
                           f"{list(v)}")
    return v


def _check_conv_shapes(x: np.ndarray, w: np.ndarray, b, groups: int, padded: tuple,
                       dilation: tuple) -> None:
    """torch's check_shape_forward, after the parameters' own checks."""
    ws = list(w.shape)
    if w.ndim != x.ndim:
        raise RuntimeError(f"Expected {w.ndim}-dimensional input for {w.ndim}-dimensional "
                           f"weight {ws}, but got {x.ndim}-dimensional input of size "
                           f"{list(x.shape)} instead")
    if ws[0] < groups:
        raise RuntimeError(f"Given groups={groups}, expected weight to be at least {groups} at "
                           f"dimension 0, but got weight of size {ws} instead")
    if ws[0] % groups:
        raise RuntimeError(f"Given groups={groups}, expected weight to be divisible by {groups} "
                           f"at dimension 0, but got weight of size [{ws}] instead")
    if x.shape[1] != ws[1] * groups:
        raise RuntimeError(f"Given groups={groups}, weight of size {ws}, expected input"
                           f"{list(x.shape)} to have {ws[1] * groups} channels, but got "
                           f"{x.shape[1]} channels instead")
    if b is not None and (b.ndim != 1 or b.shape[0] != ws[0]):
        raise RuntimeError(f"Given weight of size {ws}, expected bias to be 1-dimensional with "
                           f"{ws[0]} elements, but got bias of size {list(b.shape)} instead")
    kernel = [d * (k - 1) + 1 for d, k in zip(dilation, ws[2:])]
    if any(p < k for p, k in zip(padded, kernel)):
        raise RuntimeError(
            f"Calculated padded input size per channel: ({' x '.join(map(str, padded))}). "
            f"Kernel size: ({' x '.join(map(str, kernel))}). Kernel size can't be greater than "
            "actual input size")
    if any(k <= 0 for k in ws[2:]):
        raise RuntimeError(f"Given weight of size {ws}, expected every kernel size to be "
                           "positive")


def _conv(fn: str, nd: int, input, weight, bias, stride, padding, dilation, groups) -> Tensor:
    x = _tensor(input, fn, "input", 1)
    w = _tensor(weight, fn, "weight", 2)
    b = None if bias is None else _tensor(bias, fn, "bias", 3)
    stride = _ints(stride, fn, "stride", 4, nd)
    dilation = _ints(dilation, fn, "dilation", 6, nd)
    if not isinstance(padding, str):
        padding = _ints(padding, fn, "padding", 5, nd)
    if isinstance(groups, (bool, np.bool_)) or not isinstance(groups, (int, np.integer)):
        raise TypeError(f"{fn}(): argument 'groups' (position 7) must be int, not "
                        f"{type(groups).__name__}")
    O.check_same_device(*(v for v in (x, w, b) if v is not None))
    xd, wd = x._data, w._data
    if b is not None and b._data.dtype != xd.dtype:
        raise RuntimeError(f"Input type ({_CPP_NAMES[xd.dtype.name]}) and bias type "
                           f"({_CPP_NAMES[b._data.dtype.name]}) should be the same")
    if xd.ndim not in (nd + 1, nd + 2):
        raise RuntimeError(f"Expected {nd + 1}D (unbatched) or {nd + 2}D (batched) input to "
                           f"{fn}, but got input of size: {list(xd.shape)}")
    batched = xd.ndim == nd + 2
    xb = xd if batched else xd[None]
    dim = wd.ndim - 2
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise RuntimeError(f"Invalid padding string: '{padding}'")
        if padding == "same":
            for name, v in (("dilation", dilation), ("stride", stride)):
                if len(v) != 1 and len(v) != dim:
                    raise RuntimeError(f"{name} cannot broadcast to {dim} dimensions")
            if any(s != 1 for s in stride):
                raise RuntimeError("padding='same' is not supported for strided convolutions")
    if dim <= 0:
        raise RuntimeError("weight should have at least three dimensions")
    if groups <= 0:
        raise RuntimeError("non-positive groups is not supported")
    if padding == "same":
        if wd.ndim != xb.ndim:  # checked before the expansions on torch's 'same' path
            raise RuntimeError(f"Expected {wd.ndim}-dimensional input for {wd.ndim}-dimensional "
                               f"weight{list(wd.shape)}, but got {xb.ndim}-dimensional input of "
                               f"size {list(xb.shape)} instead")
        dil = _expand_param(dilation, "dilation", dim)
        total = [d * (k - 1) for d, k in zip(dil, wd.shape[2:])]
        pad_lo = tuple(t // 2 for t in total)
        pad_hi = tuple(t - t // 2 for t in total)
    stride = _expand_param(stride, "stride", dim)
    if not isinstance(padding, str):
        pad_lo = pad_hi = _expand_param(padding, "padding", dim)
    elif padding == "valid":
        pad_lo = pad_hi = (0,) * dim
    dilation = _expand_param(dilation, "dilation", dim)
    if any(p < 0 for p in pad_lo):
        raise RuntimeError("negative padding is not supported")
    if any(s <= 0 for s in stride):
        raise RuntimeError("non-positive stride is not supported")
    if any(d < 0 for d in dilation):
        raise RuntimeError("dilation should be greater than zero")
    padded = tuple(n + lo + hi for n, lo, hi in zip(xb.shape[2:], pad_lo, pad_hi))
    _check_conv_shapes(xb, wd, None if b is None else b._data, groups, padded, dilation)
    if wd.dtype != xd.dtype:
        if xd.dtype == np.float32:
            raise RuntimeError(f"Input type ({_tensor_type(xd.dtype)}) and weight type "
                               f"({_tensor_type(wd.dtype)}) should be the same or input should "
                               "be a MKLDNN tensor and weight is a dense tensor")
        raise RuntimeError(f"expected scalar type {torch_name(xd.dtype)} but found "
                           f"{torch_name(wd.dtype)}")
    if any(d == 0 for d in dilation):
        raise RuntimeError("non-positive dilation is not supported")
    if xd.dtype == np.bool_:
        raise NotImplementedError("\"slow_conv2d_cpu\" not implemented for 'Bool'")
    p = ConvParams(stride, pad_lo, pad_hi, dilation, int(groups))
    if batched:
        return convolution(x, w, b, p)
    return V.squeeze(convolution(V.unsqueeze(x, 0), w, b, p), 0)


def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:
    """1-D convolution of input (N, C, L) or (C, L) with weight (O, C/groups, k)."""
    return _conv("conv1d", 1, input, weight, bias, stride, padding, dilation, groups)


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:
    """2-D convolution of input (N, C, H, W) or (C, H, W) with weight (O, C/groups, kh, kw);
    padding is an int, a pair, 'valid' or 'same'."""
    return _conv("conv2d", 2, input, weight, bias, stride, padding, dilation, groups)


def convolution(x: Tensor, w: Tensor, b: Tensor | None, p: ConvParams) -> Tensor:
    """The convolution primitive on validated operands (batched input, 1 or 2 spatial axes)."""
    xd = x._data
    out = _wrap(backend(xd).conv_forward(xd, w._data, None if b is None else b._data, *p))
    return record(D.CONVOLUTION, out, (x, w) if b is None else (x, w, b), (x, w, p))


def conv_backward_input(g: Tensor, w: Tensor, x_shape: tuple, p: ConvParams) -> Tensor:
    """The input gradient of a convolution for output gradient g: a transposed convolution."""
    gd = g._data
    out = _wrap(backend(gd).conv_backward_input(gd, w._data, x_shape, *p))
    return record(D.CONVOLUTION_BACKWARD_INPUT, out, (g, w), (g, w, p))


def conv_backward_weight(g: Tensor, x: Tensor, w_shape: tuple, p: ConvParams) -> Tensor:
    """The weight gradient of a convolution for output gradient g and input x."""
    gd = g._data
    out = _wrap(backend(gd).conv_backward_weight(gd, x._data, w_shape, *p))
    return record(D.CONVOLUTION_BACKWARD_WEIGHT, out, (g, x), (g, x, p))


def conv_backward_bias(g: Tensor) -> Tensor:
    """The bias gradient of a convolution: g summed over all axes but the channels."""
    gd = g._data
    out = _wrap(backend(gd).conv_backward_bias(gd))
    return record(D.CONVOLUTION_BACKWARD_BIAS, out, (g,), (gd.shape,))


# --------------------------------------------------------------------------- pooling

def _pool_output(n: int, k: int, pad: int, stride: int, dilation: int, ceil_mode: bool) -> int:
    """torch's pooling_output_shape, with its checks."""
    if stride == 0:
        raise RuntimeError("stride should not be zero")
    if pad < 0:
        raise RuntimeError(f"pad must be non-negative, but got pad: {pad}")
    if pad > ((k - 1) * dilation + 1) // 2:
        raise RuntimeError(f"pad should be at most half of effective kernel size, but got "
                           f"pad={pad}, kernel_size={k} and dilation={dilation}")
    out = (n + 2 * pad - dilation * (k - 1) - 1 + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= n + pad:
        out -= 1  # the last window must start inside the input or its left padding
    return out


def _pool_shape_check(shape: tuple, kernel, stride, pad, dilation, out_hw) -> None:
    """torch's pool2d_shape_check."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, pad, dilation
    if kh <= 0 or kw <= 0:
        raise RuntimeError(f"kernel size should be greater than zero, but got kH: {kh} kW: {kw}")
    if sh <= 0 or sw <= 0:
        raise RuntimeError(f"stride should be greater than zero, but got dH: {sh} dW: {sw}")
    if dh <= 0 or dw <= 0:
        raise RuntimeError(f"dilation should be greater than zero, but got dilationH: {dh} "
                           f"dilationW: {dw}")
    nd = len(shape)
    valid = nd >= 3 and shape[1] != 0 and shape[2] != 0
    if not (nd == 3 and shape[0] != 0 and valid or nd == 4 and valid and shape[3] != 0):
        raise RuntimeError("Expected 3D or 4D (batch mode) tensor with optional 0 dim batch size "
                           f"for input, but got:{list(shape)}")
    if kw // 2 < pw or kh // 2 < ph:
        raise RuntimeError(f"pad should be smaller than or equal to half of kernel size, but got "
                           f"padW = {pw}, padH = {ph}, kW = {kw}, kH = {kh}")
    oh, ow = out_hw
    if oh < 1 or ow < 1:
        c, h, w = shape[-3:]
        raise RuntimeError(f"Given input size: ({c}x{h}x{w}). Calculated output size: "
                           f"({c}x{oh}x{ow}). Output size is too small")


def _pool_args(fn: str, kernel_size, stride, padding, dilation=1) -> tuple:
    k = _ints(kernel_size, fn, "kernel_size", 2, 2)
    s = () if stride is None else _ints(stride, fn, "stride", 3, 2)
    p = _ints(padding, fn, "padding", 4, 2)
    d = _ints(dilation, fn, "dilation", 5, 2)
    if len(k) not in (1, 2):
        raise RuntimeError(f"{fn}: kernel_size must either be a single int, or a tuple of two "
                           "ints")
    if len(s) not in (0, 1, 2):
        raise RuntimeError(f"{fn}: stride must either be omitted, a single int, or a tuple of "
                           "two ints")
    if len(p) not in (1, 2):
        raise RuntimeError(f"{fn}: padding must either be a single int, or a tuple of two ints")
    if len(d) not in (1, 2):
        raise RuntimeError(f"{fn}: dilation must be either a single int, or a tuple of two ints")
    k = k * 2 if len(k) == 1 else k
    s = k if not s else (s * 2 if len(s) == 1 else s)
    p = p * 2 if len(p) == 1 else p
    d = d * 2 if len(d) == 1 else d
    return k, s, p, d


def _planes(d: np.ndarray) -> np.ndarray:
    """A (..., H, W) array seen as (P, H, W)."""
    return d.reshape((-1,) + d.shape[-2:])


def max_pool2d_with_indices(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode: bool = False, return_indices: bool = True):
    """Max pooling over (N, C, H, W) or (C, H, W): the maxima and their flat indices in each
    (H, W) plane."""
    x = _tensor(input, "max_pool2d", "input", 1)
    k, s, p, d = _pool_args("max_pool2d", kernel_size, stride, padding, dilation)
    xd = x._data
    if xd.ndim not in (3, 4):
        raise RuntimeError("non-empty 3D or 4D (batch mode) tensor expected for input")
    H, W = xd.shape[-2:]
    out_hw = (_pool_output(H, k[0], p[0], s[0], d[0], ceil_mode),
              _pool_output(W, k[1], p[1], s[1], d[1], ceil_mode))
    _pool_shape_check(xd.shape, k, s, p, d, out_hw)
    if xd.dtype == np.bool_:
        raise NotImplementedError("\"max_pool2d\" not implemented for 'Bool'")
    vals, idx = backend(xd).max_pool2d(_planes(xd), out_hw, k, s, p, d)
    shape = xd.shape[:-2] + out_hw
    out = record(D.MAX_POOL2D, _wrap(vals.reshape(shape)), (x,), (xd.shape, idx))
    if not return_indices:
        return out
    return out, _wrap(idx.reshape(shape).copy())  # the saved indices stay the kernel's


def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False, return_indices: bool = False):
    """Max pooling; with return_indices, also the flat index of each maximum in its plane."""
    return max_pool2d_with_indices(input, kernel_size, stride, padding, dilation, ceil_mode,
                                   return_indices)


def max_pool2d_backward(g: Tensor, in_shape: tuple, idx: np.ndarray) -> Tensor:
    """The gradient of max pooling: g added at the maxima, zeros elsewhere."""
    gd = g._data
    H, W = in_shape[-2:]
    res = backend(gd).scatter_planes(gd.reshape(idx.shape[0], -1),
                                     idx.reshape(idx.shape[0], -1), H * W)
    return record(D.MAX_POOL2D_BACKWARD, _wrap(res.reshape(in_shape)), (g,),
                  (gd.shape, in_shape, idx))


def max_pool2d_gather(x: Tensor, out_shape: tuple, in_shape: tuple, idx: np.ndarray) -> Tensor:
    """x's elements at the maxima (the backward of max_pool2d_backward)."""
    xd = x._data
    res = backend(xd).gather_planes(xd.reshape(idx.shape[0], -1), idx.reshape(idx.shape[0], -1))
    return record(D.MAX_POOL2D_GATHER, _wrap(res.reshape(out_shape)), (x,), (in_shape, idx))


def _avg_tables(n: int, k: int, s: int, p: int, n_out: int, count_include_pad: bool):
    """One axis of avg_pool2d: clipped window starts and ends, and divisor factors."""
    start = np.arange(n_out, dtype=np.int64) * s - p
    end = np.minimum(start + k, n + p)
    pool = end - start
    start, end = np.maximum(start, 0), np.minimum(end, n)
    return start, end, (pool if count_include_pad else end - start)


def _adaptive_tables(n: int, n_out: int):
    """One axis of adaptive_avg_pool2d: windows [floor(o*n/n_out), ceil((o+1)*n/n_out))."""
    o = np.arange(n_out, dtype=np.int64)
    start = (o * n) // n_out
    end = ((o + 1) * n + n_out - 1) // n_out
    return start, end, end - start


class _Pooling(NamedTuple):
    """An average pooling's windows (per-axis tables), divisor override and derivative rows."""

    tables: tuple
    override: int
    rule: object
    backward_rule: object


def window_avg(x: Tensor, pool: _Pooling) -> Tensor:
    """Average pooling with the windows of `pool` (also the backward of window_avg_backward)."""
    xd = x._data
    res = backend(xd).avg_pool2d(_planes(xd), pool.tables, pool.override)
    shape = xd.shape[:-2] + res.shape[1:]
    return record(pool.rule, _wrap(res.reshape(shape)), (x,), (xd.shape, pool))


def window_avg_backward(g: Tensor, in_shape: tuple, pool: _Pooling) -> Tensor:
    """The gradient of average pooling: each output's gradient spread over its window."""
    gd = g._data
    res = backend(gd).avg_pool2d_backward(_planes(gd), in_shape[-2:], pool.tables,
                                          pool.override)
    return record(pool.backward_rule, _wrap(res.reshape(in_shape)), (g,), (pool,))


def avg_pool2d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override=None) -> Tensor:
    """Average pooling over (N, C, H, W) or (C, H, W)."""
    x = _tensor(input, "avg_pool2d", "input", 1)
    k, s, p, _ = _pool_args("avg_pool2d", kernel_size, stride, padding)
    if divisor_override is not None and divisor_override == 0:
        raise RuntimeError("divisor must be not zero")
    xd = x._data
    if xd.ndim < 3:
        nd = xd.ndim
        if nd == 0:
            raise IndexError("dimension specified as -3 but tensor has no dimensions")
        raise IndexError(f"Dimension out of range (expected to be in range of [{-nd}, {nd - 1}], "
                         "but got -3)")
    H, W = xd.shape[-2:]
    out_hw = (_pool_output(H, k[0], p[0], s[0], 1, ceil_mode),
              _pool_output(W, k[1], p[1], s[1], 1, ceil_mode))
    _pool_shape_check(xd.shape, k, s, p, (1, 1), out_hw)
    if xd.dtype == np.bool_:
        raise NotImplementedError("\"avg_pool2d\" not implemented for 'Bool'")
    tables = (_avg_tables(H, k[0], s[0], p[0], out_hw[0], count_include_pad),
              _avg_tables(W, k[1], s[1], p[1], out_hw[1], count_include_pad))
    override = 0 if divisor_override is None else int(divisor_override)
    return window_avg(x, _Pooling(tables, override, D.AVG_POOL2D, D.AVG_POOL2D_BACKWARD))


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    """Average pooling to a fixed output size (None keeps the input's size on that axis)."""
    x = _tensor(input, "adaptive_avg_pool2d", "input", 1)
    xd = x._data
    if isinstance(output_size, (int, np.integer)) and not isinstance(output_size, bool):
        size = (int(output_size),) * 2
    else:
        try:
            n = len(output_size)
        except TypeError:
            raise TypeError(f"object of type '{type(output_size).__name__}' has no len()") \
                from None
        if xd.ndim <= n:
            raise ValueError(f"Input dimension should be at least {n + 1}")
        size = tuple(xd.shape[xd.ndim - n + i] if v is None else int(v)
                     for i, v in enumerate(output_size))
    if len(size) != 2:
        raise RuntimeError("adaptive_avg_pool2d: output_size must be 2")
    if size[0] < 0 or size[1] < 0:
        raise RuntimeError("adaptive_avg_pool2d: elements of output_size must be greater than or "
                           f"equal to 0 but received {{{size[0]}, {size[1]}}}")
    if size == (1, 1):  # torch computes this case as a mean
        return O.mean(x, (-1, -2), keepdim=True)
    if xd.ndim not in (3, 4):
        raise RuntimeError(f"adaptive_avg_pool2d(): Expected 3D or 4D tensor, but got "
                           f"{list(xd.shape)}")
    for i in (-2, -1):
        if xd.shape[i] <= 0:
            raise RuntimeError(
                "adaptive_avg_pool2d(): Expected input to have non-zero size for non-batch "
                f"dimensions, but input has sizes {list(xd.shape)} with dimension "
                f"{i + xd.ndim} being empty")
    if xd.dtype.kind != "f":
        raise NotImplementedError(f"\"adaptive_avg_pool2d\" not implemented for "
                                  f"'{torch_name(xd.dtype)}'")
    tables = (_adaptive_tables(xd.shape[-2], size[0]), _adaptive_tables(xd.shape[-1], size[1]))
    return window_avg(x, _Pooling(tables, 0, D.ADAPTIVE_AVG_POOL2D,
                                   D.ADAPTIVE_AVG_POOL2D_BACKWARD))


# --------------------------------------------------------------------------- embedding

def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None,
              max_norm: float | None = None, norm_type: float = 2.0,
              scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """Rows of weight (num_embeddings, D) picked by the integer indices in input; the row
    padding_idx gets no gradient."""
    idx = _tensor(input, "embedding", "indices", 2)
    w = _tensor(weight, "embedding", "weight", 1)
    wd, idd = w._data, idx._data
    if padding_idx is not None:
        num = wd.shape[0] if wd.ndim else 0
        if padding_idx > 0 and not padding_idx < num or padding_idx < 0 and \
                not padding_idx >= -num:
            raise AssertionError("Padding_idx must be within num_embeddings")
        if padding_idx < 0:
            padding_idx += num
    if max_norm is not None:  # torch renormalises before its own checks
        raise NotImplementedError(
            "embedding(max_norm=...) is not supported: it renormalises rows of weight in "
            "place; renormalise them yourself under no_grad() before the call")
    if sparse:
        raise NotImplementedError("embedding(sparse=True) is not supported: jitgrad has no "
                                  "sparse gradients")
    if wd.ndim != 2:
        raise RuntimeError("'weight' must be 2-D")
    if idd.dtype not in (np.int64, np.int32):
        got = "CPUBoolType" if idd.dtype == np.bool_ else _tensor_type(idd.dtype)
        raise RuntimeError("Expected tensor for argument #1 'indices' to have one of the "
                           f"following scalar types: Long, Int; but got {got} instead (while "
                           "checking arguments for embedding)")
    O.check_same_device(w, idx)
    ih = _host(idd)  # validated on the host
    if ih.size and (ih.min() < 0 or ih.max() >= wd.shape[0]):
        raise IndexError("index out of range in self")
    out = _wrap(backend(wd).embedding(wd, idd))
    pad = -1 if padding_idx is None else int(padding_idx)
    saved = (np.array(ih, dtype=np.int64), wd.shape[0], pad, bool(scale_grad_by_freq))
    return record(D.EMBEDDING, out, (w,), saved)


def embedding_backward(g: Tensor, idx: np.ndarray, num: int, padding_idx: int,
                       scale_grad_by_freq: bool) -> Tensor:
    """The gradient of embedding: rows of g added into the rows they were read from."""
    gd = g._data
    res = backend(gd).embedding_backward(gd, idx, num, padding_idx, scale_grad_by_freq)
    return record(D.EMBEDDING_BACKWARD, _wrap(res), (g,),
                  (idx, num, padding_idx, scale_grad_by_freq))


def embedding_double_backward(gg: Tensor, idx: np.ndarray, num: int, padding_idx: int,
                              scale_grad_by_freq: bool) -> Tensor:
    """The backward of embedding_backward: rows of gg gathered again, the padding row's
    contributions dropped and, with scale_grad_by_freq, divided by the index counts."""
    out = record(D.EMBEDDING, _wrap(backend(gg._data).embedding(gg._data, idx)), (gg,),
                 (idx, num, padding_idx, scale_grad_by_freq))
    if padding_idx < 0 and not scale_grad_by_freq:
        return out
    scale = np.ones(idx.shape, dtype=gg._data.dtype)
    if scale_grad_by_freq:
        scale /= np.bincount(idx.reshape(-1), minlength=num)[idx]
    scale[idx == padding_idx] = 0
    return O.mul(out, _wrap(_dev(scale[..., None], gg._data)))


# --------------------------------------------------------------------------- dropout

def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False
            ) -> Tensor:
    """Zero each element with probability p and scale the rest by 1/(1-p) (identity when not
    training). The mask is torch's: ``bernoulli_(1 - p)`` from the default generator."""
    x = _tensor(input, "dropout", "input", 1)
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    xd = x._data
    if p == 0 or not training or xd.size == 0:
        return x
    if p == 1:
        noise = np.zeros((), dtype=xd.dtype)
    else:
        # torch: noise.bernoulli_(1 - p).div_(1 - p), in the input's dtype
        noise = _random.bernoulli(1.0 - p, xd.shape, dtype=xd.dtype)
        if xd.dtype.kind != "f":
            raise RuntimeError(f"result type Float can't be cast to the desired output type "
                               f"{torch_name(xd.dtype)}")
        noise /= xd.dtype.type(1.0 - p)
    noise = _wrap(_dev(noise, xd) if noise.ndim else noise)
    return x.mul_(noise) if inplace else O.mul(x, noise)
