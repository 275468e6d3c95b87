"""User-defined primitives: subclass ``Function`` with static ``forward`` and ``backward``.

The ctx a user's forward receives *is* the graph node (as in torch): what it saves is freed
by the engine after backward, and its class is named ``<Function>Backward``.
"""

from __future__ import annotations

import functools

from . import grad_mode
from .graph import FREED, Node, _SavedOutput, edge, saved_versions, unpack_saved


class FunctionCtx:
    """The ``ctx`` methods available to ``forward`` and ``backward``."""

    def save_for_backward(self, *tensors) -> None:
        from ..tensor import Tensor

        for t in tensors:
            if t is not None and not isinstance(t, Tensor):
                raise TypeError("save_for_backward can only save variables, but argument "
                                f"{tensors.index(t)} is of type {type(t).__name__}")
        self._to_save = tensors

    def save_for_forward(self, *tensors) -> None:
        self._to_save_fwd = tensors

    def mark_dirty(self, *tensors) -> None:
        self._dirty = tensors

    def mark_non_differentiable(self, *tensors) -> None:
        self._non_diff = tensors

    def set_materialize_grads(self, value: bool) -> None:
        self._materialize = bool(value)

    @property
    def saved_tensors(self) -> tuple:
        saved = self._saved
        if saved is None:
            raise RuntimeError(FREED)
        return unpack_saved(self, saved, self._saved_versions)


class BackwardCFunction(Node, FunctionCtx):
    """The node of one call of a user Function; it is also that call's ctx."""

    _fn: type = None  # the Function subclass

    def __init__(self):
        super().__init__((), ())
        self._to_save = ()
        self._saved = ()
        self._saved_versions = ()
        self._dirty = ()
        self._non_diff = ()
        self._materialize = True
        self._out_meta = ()
        self._arg_is_tensor = ()
        self.needs_input_grad = ()

    @property
    def num_outputs(self) -> int:
        return len(self._out_meta)

    def apply(self, grads: list) -> tuple:
        from .. import _creation

        if self._materialize:
            grads = [_creation._zeros_meta(meta) if g is None else g
                     for g, meta in zip(grads, self._out_meta)]
        res = self._fn.backward(self, *grads)
        if not isinstance(res, tuple):
            res = (res,)
        n = len(self._arg_is_tensor)
        if len(res) != n:
            if len(res) > n and all(r is None for r in res[n:]):
                res = res[:n]
            else:
                raise RuntimeError(f"function {self.name()} returned an incorrect number of "
                                   f"gradients (expected {n}, got {len(res)})")
        out = []
        for i, (r, is_tensor) in enumerate(zip(res, self._arg_is_tensor)):
            if is_tensor:
                out.append(r)
            elif r is not None:
                raise RuntimeError(
                    f"function {self.name()} returned a gradient different than None at "
                    f"position {i + 1}, but the corresponding forward input was not a Variable")
        return out

    def release(self) -> None:
        if self._saved:
            self._saved = None


class _FunctionMeta(type):
    """Gives each Function subclass its own node class, named like torch's."""

    def __init__(cls, name, bases, attrs):
        backward_cls = type(name + "Backward", (BackwardCFunction,), {"_fn": cls})
        cls._backward_cls = backward_cls
        super().__init__(name, bases, attrs)


class Function(metaclass=_FunctionMeta):
    """Base class of user-defined differentiable operations."""

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("You must implement the forward function for custom "
                                  "autograd.Function.")

    @staticmethod
    def setup_context(ctx, inputs, output):
        raise NotImplementedError("setup_context is not implemented.")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("You must implement either the backward or vjp method for "
                                  "your custom autograd.Function to use it with backward "
                                  "mode AD.")

    vjp = backward

    @classmethod
    def apply(cls, *args, **kwargs):
        from ..tensor import Tensor

        ctx = cls._backward_cls()
        is_tensor = tuple(isinstance(a, Tensor) for a in args)
        ctx._arg_is_tensor = is_tensor
        ctx.needs_input_grad = tuple(t and a._requires_grad for a, t in zip(args, is_tensor))
        separate = cls.setup_context is not Function.setup_context
        with grad_mode.no_grad():
            if separate:
                raw = cls.forward(*args, **kwargs)
            else:
                raw = cls.forward(ctx, *args, **kwargs)
        if separate:
            cls.setup_context(ctx, args, raw)
        single = not isinstance(raw, tuple)
        outputs = (raw,) if single else raw
        tensor_inputs = [a for a, t in zip(args, is_tensor) if t]
        record = grad_mode.state.enabled and any(ctx.needs_input_grad)
        if not record:
            ctx._saved = tuple(ctx._to_save)
            ctx._saved_versions = saved_versions(ctx._saved)
            return raw
        dirty = {id(t) for t in ctx._dirty}
        non_diff = {id(t) for t in ctx._non_diff}
        for t in ctx._dirty:
            if t._grad_fn is None and t._requires_grad:
                raise RuntimeError("a leaf Variable that requires grad has been used in an "
                                   "in-place operation.")
        ctx.next_functions = tuple(edge(a) for a in tensor_inputs)
        ctx._meta = tuple((a._data.shape, a._data.dtype) for a in tensor_inputs)
        wrapped = []
        meta = []
        inputs_by_id = {id(a) for a in tensor_inputs}
        for o in outputs:
            if not isinstance(o, Tensor):
                wrapped.append(o)
                continue
            nr = len(meta)
            meta.append((o._data.shape, o._data.dtype, o.device))
            if id(o) in dirty:
                out = o
            elif id(o) in inputs_by_id:
                out = Tensor._wrap(o._data)  # an input returned as is: a new alias
            else:
                out = o
            if id(o) in non_diff or not o.is_floating_point():
                out._grad_fn = None
                out._requires_grad = False
            else:
                out._grad_fn = ctx
                out._output_nr = nr
                out._requires_grad = True
            wrapped.append(out)
        ctx._out_meta = tuple(meta)
        # Outputs are saved as data, so ctx -> output -> ctx makes no cycle.
        out_ids = {id(o): i for i, o in enumerate(o for o in outputs if isinstance(o, Tensor))}
        ctx._saved_versions = saved_versions(ctx._to_save)
        saved = []
        for s in ctx._to_save:
            if s is not None and id(s) in out_ids:
                if s._ver is None:
                    s._ver = [0]
                s = _SavedOutput(s._data, out_ids[id(s)], s._ver)
            saved.append(s)
        ctx._saved = tuple(saved)
        ctx._to_save = ()
        return wrapped[0] if single else tuple(wrapped)


class _DelayedError(Node):
    """Stands where a once_differentiable backward was recorded; differentiating it fails."""

    __slots__ = ()

    def apply(self, grads):
        raise RuntimeError("trying to differentiate twice a function that was marked with "
                           "@once_differentiable")


def once_differentiable(fn):
    """Mark a Function's backward as not differentiable itself: it runs under no_grad, and a
    second differentiation through it raises."""

    @functools.wraps(fn)
    def wrapper(ctx, *args):
        from ..tensor import Tensor

        with grad_mode.no_grad():
            outputs = fn(ctx, *args)
        if not grad_mode.state.enabled:
            return outputs
        needs = [a for a in args if isinstance(a, Tensor) and a._requires_grad]
        if not needs:
            return outputs
        node = _DelayedError(tuple(edge(a) for a in needs),
                             tuple((a._data.shape, a._data.dtype) for a in needs))
        single = not isinstance(outputs, tuple)
        res = []
        for o in ((outputs,) if single else outputs):
            if isinstance(o, Tensor) and o.is_floating_point():
                o = Tensor._wrap(o._data, node, 0)
            res.append(o)
        return res[0] if single else tuple(res)

    return wrapper
