"""The Tensor: an n-d array on a device plus its place in the autograd graph.

The arithmetic methods (``__add__``, ``sum``, ``matmul``, ...) are attached by ``_methods.py``
from the op layer; this file holds the state and the graph-facing API.
"""

from __future__ import annotations

import warnings
import weakref

import numpy as np

from . import _dtype
from . import _device
from ._device import CPU
from . import autograd as _autograd
from .autograd import graph
from .autograd.graph import refresh_view
from .autograd import grad_mode

_NON_LEAF_GRAD = (
    "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its .grad "
    "attribute won't be populated during autograd.backward(). If you indeed want the .grad "
    "field to be populated for a non-leaf Tensor, use .retain_grad() on the non-leaf Tensor. "
    "If you access the non-leaf Tensor by mistake, make sure you access the leaf Tensor "
    "instead. See github.com/pytorch/pytorch/pull/30531 for more information."
)


class Size(tuple):
    """A tensor's shape: a tuple that prints like torch's."""

    def __repr__(self) -> str:
        return f"jitgrad.Size({list(self)})"

    def numel(self) -> int:
        n = 1
        for s in self:
            n *= s
        return n


def _float_only(dt) -> None:
    if not dt.is_floating_point:
        raise RuntimeError("only Tensors of floating point dtype can require gradients")


class Tensor:
    """An n-dimensional array that records the operations applied to it."""

    # _ver: the version counter ([n]) shared by a storage and its views, made on first need
    # (None means version 0); _base / _view_fn: for a view, the tensor owning the storage and
    # a function replaying the view on another tensor (in-place ops on views need both).
    # _gver (views only): the counter's value when the view's history was recorded; when the
    # base changes in place after that, the history is replayed from the base on next use.
    __slots__ = ("_data", "_requires_grad", "_grad", "_grad_fn", "_output_nr", "_acc",
                 "_hooks", "_post_acc_hooks", "_ver", "_base", "_view_fn", "_gver",
                 "__weakref__")
    __array_priority__ = 1000  # numpy defers `ndarray op Tensor` to the Tensor

    def __init__(self, *args, **kwargs):
        # Tensor(data) or Tensor(*sizes), as torch's legacy constructor.
        from . import _creation

        # (on the CPU whatever the default device, as torch's legacy constructor)
        if len(args) == 1 and not isinstance(args[0], int):
            t = _creation.tensor(args[0], dtype=_dtype.get_default_dtype()
                                 if _creation._is_python_data(args[0]) else None,
                                 device=kwargs.get("device", "cpu"))
        else:
            t = _creation.empty(*args, **{"device": "cpu", **kwargs})
        self._data = t._data
        self._requires_grad = False
        self._grad = None
        self._grad_fn = None
        self._output_nr = 0
        self._acc = None
        self._hooks = None
        self._post_acc_hooks = None
        self._ver = None
        self._base = None
        self._view_fn = None
        self._gver = None

    @staticmethod
    def _wrap(data, grad_fn=None, output_nr: int = 0) -> "Tensor":
        """A tensor around array `data` (no copy); with `grad_fn`, a non-leaf output of it."""
        t = _new(Tensor)
        t._data = data
        t._requires_grad = grad_fn is not None
        t._grad = None
        t._grad_fn = grad_fn
        t._output_nr = output_nr
        t._acc = None
        t._hooks = None
        t._post_acc_hooks = None
        t._ver = None
        t._base = None
        t._view_fn = None
        t._gver = None
        return t

    # ------------------------------------------------------------------ metadata
    @property
    def shape(self) -> Size:
        return Size(self._data.shape)

    def size(self, dim: int | None = None):
        if dim is None:
            return Size(self._data.shape)
        return self._data.shape[_wrap_dim(dim, self._data.ndim)]

    @property
    def dtype(self) -> _dtype.dtype:
        return _dtype.FROM_NP[self._data.dtype]

    @property
    def device(self):
        return CPU if self._data.__class__ is np.ndarray else _device.CUDA

    @property
    def is_cuda(self) -> bool:
        return self._data.__class__ is not np.ndarray

    def get_device(self) -> int:
        return -1 if self._data.__class__ is np.ndarray else 0

    @property
    def ndim(self) -> int:
        return self._data.ndim

    def dim(self) -> int:
        return self._data.ndim

    def ndimension(self) -> int:
        return self._data.ndim

    def numel(self) -> int:
        return self._data.size

    def nelement(self) -> int:
        return self._data.size

    def element_size(self) -> int:
        return self._data.itemsize

    @property
    def itemsize(self) -> int:
        return self._data.itemsize

    @property
    def nbytes(self) -> int:
        return self._data.size * self._data.itemsize

    def is_floating_point(self) -> bool:
        return self._data.dtype.kind == "f"

    def is_complex(self) -> bool:
        return False  # jitgrad has no complex dtypes

    def is_contiguous(self) -> bool:
        return self._data.flags.c_contiguous

    def stride(self, dim: int | None = None):
        st = tuple(s // self._data.itemsize for s in self._data.strides)
        return st if dim is None else st[_wrap_dim(dim, self._data.ndim)]

    def data_ptr(self) -> int:
        d = self._data
        if d.__class__ is np.ndarray:
            return d.__array_interface__["data"][0]
        return d.__cuda_array_interface__["data"][0]

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __hash__(self) -> int:
        return id(self)

    # ------------------------------------------------------------------ values
    def item(self):
        if self._data.size != 1:
            raise RuntimeError(
                f"a Tensor with {self._data.size} elements cannot be converted to Scalar")
        return self._data.reshape(-1)[0].item()

    def tolist(self):
        return self._data.tolist()

    def numpy(self, *, force: bool = False) -> np.ndarray:
        if self._data.__class__ is not np.ndarray:
            if not force:
                raise TypeError(
                    "can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu() to "
                    "copy the tensor to host memory first.")
            return self._data.get()
        if self._requires_grad and not force:
            raise RuntimeError(
                "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() "
                "instead.")
        return self._data

    def __array__(self, dtype=None, copy=None):
        a = self._data
        if a.__class__ is not np.ndarray:
            a.__array__()  # raises torch's error: a CUDA tensor is not silently copied
        return a if dtype is None else a.astype(dtype)

    def __bool__(self) -> bool:
        if self._data.size != 1:
            raise RuntimeError(
                f"Boolean value of Tensor with more than one value is ambiguous")
        return bool(self._data.reshape(-1)[0])

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self._data.dtype.kind not in "iub" or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an "
                            "index")
        return int(self.item())

    def __iter__(self):
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._data.shape[0]))

    def __repr__(self) -> str:
        from ._format import format_tensor

        fn = self._grad_fn
        return format_tensor(_device.host(self._data), device=self.device,
                             requires_grad=self._requires_grad and fn is None,
                             grad_fn_name=fn.name() if fn is not None else None,
                             default_float=_dtype.get_default_dtype().np)

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        if self._data.ndim == 0:
            return self.item().__format__(spec)
        return repr(self).__format__(spec)

    def __reduce_ex__(self, proto):
        return (_rebuild, (self._data, self._requires_grad))

    def __deepcopy__(self, memo):
        if not self.is_leaf:
            raise RuntimeError("Only Tensors created explicitly by the user (graph leaves) "
                               "support the deepcopy protocol at the moment.")
        t = Tensor._wrap(self._data.copy())
        t._requires_grad = self._requires_grad
        if self._grad is not None:
            t._grad = self._grad.__deepcopy__(memo)
        memo[id(self)] = t
        return t

    # ------------------------------------------------------------------ autograd state
    @property
    def requires_grad(self) -> bool:
        if self._base is not None and self._ver[0] != self._gver:
            refresh_view(self)
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        if self._grad_fn is not None:
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables." if value else
                "you can only change requires_grad flags of leaf variables. If you want to use "
                "a computed variable in a subgraph that doesn't require differentiation use "
                "var_no_grad = var.detach().")
        if value and not self.dtype.is_floating_point:
            raise RuntimeError("only Tensors of floating point and complex dtype can require "
                               "gradients")
        self._requires_grad = bool(value)

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if requires_grad:
            if self._grad_fn is not None:
                return self  # a non-leaf already requires grad: a no-op, as in torch
            _float_only(self.dtype)
        self.requires_grad = requires_grad
        return self

    @property
    def _version(self) -> int:
        """How many in-place changes this tensor's storage has seen."""
        v = self._ver
        return 0 if v is None else v[0]

    @property
    def _is_view(self) -> bool:
        return self._base is not None

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def grad_fn(self):
        if self._base is not None and self._ver[0] != self._gver:
            refresh_view(self)
        return self._grad_fn

    @property
    def output_nr(self) -> int:
        return self._output_nr

    @property
    def grad(self):
        if self._grad_fn is not None and not self.retains_grad:
            warnings.warn(_NON_LEAF_GRAD, UserWarning, stacklevel=2)
        return self._grad

    @grad.setter
    def grad(self, value) -> None:
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(f"assigned grad expected to be a Tensor or None but got grad "
                                f"of type {type(value).__name__}")
            if value._data.shape != self._data.shape:
                raise RuntimeError(
                    f"attempting to assign a gradient of size '{list(value._data.shape)}' to a "
                    f"tensor of size '{list(self._data.shape)}'. Please ensure that the "
                    "gradient and the tensor are the same size")
            if value._data.dtype != self._data.dtype:
                raise RuntimeError("assigned grad has data of a different type")
        self._grad = value

    @property
    def retains_grad(self) -> bool:
        fn = self._grad_fn
        retains = None if fn is None or fn._hk is None else fn._hk._retains
        return bool(retains) and self._output_nr in retains

    def retain_grad(self) -> None:
        """Keep this non-leaf tensor's gradient in ``.grad`` during backward."""
        if not self._requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        fn = self._grad_fn
        if fn is None:
            return  # leaves keep their gradient anyway
        hk = graph._hooks_of(fn)
        if hk._retains is None:
            hk._retains = {}
        hk._retains[self._output_nr] = weakref.ref(self)

    def register_hook(self, hook) -> graph.RemovableHandle:
        """``hook(grad)`` runs when this tensor's gradient is computed; a returned tensor
        replaces the gradient."""
        if not self._requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        fn = self._grad_fn
        if fn is None:
            return graph._add_hook(self, "_hooks", hook)
        return graph._add_hook(graph._hooks_of(fn), "_tensor_hooks", (self._output_nr, hook))

    def register_post_accumulate_grad_hook(self, hook) -> graph.RemovableHandle:
        """``hook(tensor)`` runs after a leaf's ``.grad`` was updated."""
        if self._grad_fn is not None:
            raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf "
                               "tensors")
        if not self._requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        return graph._add_hook(self, "_post_acc_hooks", hook)

    def backward(self, gradient=None, retain_graph=None, create_graph: bool = False,
                 inputs=None) -> None:
        """Accumulate d(self)/d(leaf) into the ``.grad`` of the leaves (or of `inputs`)."""
        _autograd.backward(self, gradient, retain_graph=retain_graph, create_graph=create_graph,
                 inputs=inputs)

    def detach(self) -> "Tensor":
        """A tensor sharing this one's data (and its version counter), outside the graph."""
        t = Tensor._wrap(self._data)
        v = self._ver
        if v is None:
            v = self._ver = [0]
        t._ver = v
        return t

    def detach_(self) -> "Tensor":
        self._grad_fn = None
        self._output_nr = 0
        self._requires_grad = False
        return self

    @property
    def data(self) -> "Tensor":
        return Tensor._wrap(self._data)

    @data.setter
    def data(self, value: "Tensor") -> None:
        if not isinstance(value, Tensor):
            raise TypeError(f"data must be a Tensor, got {type(value).__name__}")
        self._data = value._data


_new = object.__new__


def _rebuild(data, requires_grad):
    t = Tensor._wrap(data)
    t._requires_grad = requires_grad
    return t


def _wrap_dim(dim: int, ndim: int) -> int:
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(
            f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})")
    return dim + n if dim < 0 else dim
