"""``Parameter`` and ``Buffer``: tensors that a Module registers when they are assigned to it."""

from __future__ import annotations

from .._creation import empty
from ..tensor import Tensor

__all__ = ["Buffer", "Parameter"]


def _share(cls, data: Tensor | None, requires_grad: bool):
    """A `cls` instance sharing `data`'s storage and version counter, outside the graph."""
    if data is None:
        data = empty(0)
    if not isinstance(data, Tensor):
        raise TypeError(f"{cls.__name__} expects a Tensor as data, got {type(data).__name__}")
    t = object.__new__(cls)
    t._data = data._data
    t._requires_grad = False
    t._grad = None
    t._grad_fn = None
    t._output_nr = 0
    t._acc = None
    t._hooks = None
    t._post_acc_hooks = None
    v = data._ver
    if v is None:
        v = data._ver = [0]
    t._ver = v
    t._base = None
    t._view_fn = None
    if requires_grad:
        t.requires_grad_(True)  # torch's error for integer data
    return t


class Parameter(Tensor):
    """A tensor that is a module parameter: assigned as a Module attribute, it is registered
    and appears in ``parameters()``. It shares the storage of the tensor it is made from,
    and requires grad unless told otherwise (even under ``no_grad``)."""

    def __new__(cls, data: Tensor | None = None, requires_grad: bool = True):
        return _share(cls, data, requires_grad)

    def __init__(self, data: Tensor | None = None, requires_grad: bool = True):
        pass  # everything happened in __new__ (Tensor.__init__ is the legacy constructor)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    __str__ = __repr__

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        result = type(self)(Tensor._wrap(self._data.copy()), self._requires_grad)
        memo[id(self)] = result
        return result

    def __reduce_ex__(self, proto):
        return (_rebuild_parameter, (type(self), self._data, self._requires_grad))


class Buffer(Tensor):
    """A tensor to register as a module buffer: ``self.stats = nn.Buffer(t)`` is
    ``self.register_buffer("stats", t, persistent)``."""

    def __new__(cls, data: Tensor | None = None, *, persistent: bool = True):
        t = _share(cls, data, False)
        if data is not None and data._requires_grad and data._grad_fn is None:
            t._requires_grad = True
        t.persistent = persistent
        return t

    def __init__(self, data: Tensor | None = None, *, persistent: bool = True):
        pass

    def __reduce_ex__(self, proto):
        return (_rebuild_buffer, (self._data, self._requires_grad, self.persistent))


def _rebuild_parameter(cls, data, requires_grad: bool):
    return cls(Tensor._wrap(data), requires_grad)


def _rebuild_buffer(data, requires_grad: bool, persistent: bool):
    b = Buffer(Tensor._wrap(data), persistent=persistent)
    b._requires_grad = requires_grad
    return b
