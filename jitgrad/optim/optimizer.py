"""``Optimizer``: parameter groups with per-group options, per-parameter state, torch's
state-dict layout and step hooks. Subclasses implement ``step``; each parameter's update is
one fused kernel (``kernels/optim.py``), reached through the storage's backend, which gets a
group's updates together (``_gather`` checks them all first, ``_apply`` hands them over)."""

from __future__ import annotations

import functools
from collections import OrderedDict, defaultdict
from collections.abc import Callable
from copy import deepcopy
from itertools import chain
from typing import Any

import numpy as np

from .. import _device, _dtype, _inplace
from .._ops import backend
from ..autograd import grad_mode
from ..nn.modules.module import typename
from ..tensor import Tensor
from ..utils.hooks import RemovableHandle

__all__ = ["Optimizer", "required"]


class _RequiredParameter:
    """Singleton class representing a required parameter for an Optimizer."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()


def _get_scalar_dtype() -> _dtype.dtype:
    """The dtype of the 'step' counters: float64 under a float64 default dtype, else float32."""
    return _dtype.float64 if _dtype.get_default_dtype() is _dtype.float64 else _dtype.float32


def _to_scalar(x) -> float:
    return float(x.item()) if isinstance(x, Tensor) else float(x)


def _hooked(step: Callable) -> Callable:
    """Wrap a subclass's ``step``: run it under no_grad, between the step hooks."""

    @functools.wraps(step)
    def wrapper(self, *args, **kwargs):
        if self.__dict__.get("_in_step"):  # a subclass's step calling super().step()
            return step(self, *args, **kwargs)
        self._in_step = True
        try:
            for hook in tuple(self._optimizer_step_pre_hooks.values()):
                result = hook(self, args, kwargs)
                if result is not None:
                    if isinstance(result, tuple) and len(result) == 2:
                        args, kwargs = result
                    else:
                        raise RuntimeError(f"{step} must return None or a tuple of "
                                           f"(new_args, new_kwargs), but got {result}.")
            with grad_mode.no_grad():
                out = step(self, *args, **kwargs)
            for hook in tuple(self._optimizer_step_post_hooks.values()):
                hook(self, args, kwargs)
            return out
        finally:
            self._in_step = False

    return wrapper


class Optimizer:
    """Base class for all optimizers.

    ``params`` is an iterable of tensors, of (name, tensor) pairs, or of dicts (parameter
    groups: ``{"params": [...], "lr": ...}``) whose options override ``defaults``.
    """

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "step" in cls.__dict__:
            cls.step = _hooked(cls.__dict__["step"])

    def __init__(self, params, defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        self._optimizer_step_pre_hooks: OrderedDict = OrderedDict()
        self._optimizer_step_post_hooks: OrderedDict = OrderedDict()
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            "Tensors or dicts, but got " + typename(params))
        self.state: defaultdict = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for param_group in param_groups:
            self.add_param_group(param_group)

    def __getstate__(self) -> dict[str, Any]:
        return {"defaults": self.defaults, "state": self.state,
                "param_groups": self.param_groups}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("_optimizer_step_pre_hooks", OrderedDict())
        self.__dict__.setdefault("_optimizer_step_post_hooks", OrderedDict())
        self.defaults.setdefault("differentiable", False)

    def __repr__(self) -> str:
        s = self.__class__.__name__ + " ("
        for i, group in enumerate(self.param_groups):
            s += f"\nParameter Group {i}\n"
            for key in sorted(group.keys()):
                if key != "params":
                    s += f"    {key}: {group[key]}\n"
        return s + ")"

    # ------------------------------------------------------------------ groups
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters, with options that default to ``self.defaults``."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group)}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            param_group["params"] = [params]
        elif isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, "
                            "but the ordering of tensors in sets will change between runs. "
                            "Please use a list instead.")
        else:
            param_group["params"] = list(params)
        tensors, names = [], []
        for param in param_group["params"]:
            if isinstance(param, tuple):
                names.append(param[0])
                tensors.append(param[1])
            else:
                tensors.append(param)
        param_group["params"] = tensors
        if names:
            if len(names) != len(tensors):
                raise ValueError("all optimizer params should be with/without names. Some "
                                 "param names are missing")
            param_group["param_names"] = names
        for param in tensors:
            if not isinstance(param, Tensor):
                raise TypeError("optimizer can only optimize Tensors, but one of the params is "
                                + typename(param))
            if not self.defaults.get("differentiable", None) and not (
                    param.is_leaf or param.retains_grad):
                raise ValueError("can't optimize a non-leaf Tensor")
        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError("parameter group didn't specify a value of required "
                                 f"optimization parameter {name}")
            param_group.setdefault(name, default)
        if len(tensors) != len({id(p) for p in tensors}):
            import warnings

            warnings.warn("optimizer contains a parameter group with duplicate parameters; in "
                          "future, this will cause an error; see "
                          "github.com/pytorch/pytorch/issues/40967 for more information",
                          stacklevel=3)
        seen: set[int] = set()
        for group in self.param_groups:
            seen.update(id(p) for p in group["params"])
            if ("param_names" in param_group) != ("param_names" in group):
                which = "with names" if "param_names" in param_group else "without names"
                raise ValueError("all optimizer param groups should be with/without names. "
                                 f"cannot add param group {which} to the optimizer")
        if any(id(p) in seen for p in tensors):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)

    # ------------------------------------------------------------------ grads
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all optimized tensors: to None (default), or to zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    if set_to_none:
                        p.grad = None
                    else:
                        if p.grad.grad_fn is not None:
                            p.grad.detach_()
                        else:
                            p.grad.requires_grad_(False)
                        p.grad.zero_()

    def step(self, closure=None):
        raise NotImplementedError

    # ------------------------------------------------------------------ hooks
    def register_step_pre_hook(self, hook) -> RemovableHandle:
        """``hook(optimizer, args, kwargs)`` runs before each ``step``; it may return new
        ``(args, kwargs)``."""
        handle = RemovableHandle(self._optimizer_step_pre_hooks)
        self._optimizer_step_pre_hooks[handle.id] = hook
        return handle

    def register_step_post_hook(self, hook) -> RemovableHandle:
        """``hook(optimizer, args, kwargs)`` runs after each ``step``."""
        handle = RemovableHandle(self._optimizer_step_post_hooks)
        self._optimizer_step_post_hooks[handle.id] = hook
        return handle

    # ------------------------------------------------------------------ state dict
    def state_dict(self) -> dict[str, Any]:
        """``{"state": {index: {...}}, "param_groups": [{..., "params": [index, ...]}]}``:
        parameters are numbered across groups in order, as torch does."""
        mapping: dict[int, int] = {}
        start = 0

        def pack_group(group: dict[str, Any]) -> dict[str, Any]:
            nonlocal start
            packed = {k: v for k, v in group.items() if k != "params"}
            mapping.update({id(p): i for i, p in enumerate(group["params"], start)
                            if id(p) not in mapping})
            packed["params"] = [mapping[id(p)] for p in group["params"]]
            start += len(packed["params"])
            return packed

        param_groups = [pack_group(g) for g in self.param_groups]
        packed_state = {(mapping[id(k)] if isinstance(k, Tensor) else k): v
                        for k, v in self.state.items()}
        return {"state": packed_state, "param_groups": param_groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a ``state_dict()``: groups must match in number and sizes. State tensors are
        copied (and cast to their parameter's dtype, except the 'step' counters)."""
        state_dict = state_dict.copy()
        groups = self.param_groups
        saved_groups = deepcopy(state_dict["param_groups"])
        if len(groups) != len(saved_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        if any(len(g["params"]) != len(s["params"]) for g, s in zip(groups, saved_groups)):
            raise ValueError("loaded state dict contains a parameter group that doesn't match "
                             "the size of optimizer's group")
        id_map = dict(zip(chain.from_iterable(g["params"] for g in saved_groups),
                          chain.from_iterable(g["params"] for g in groups)))

        def cast(param: Tensor, value, key=None):
            # as torch: state follows its parameter's device and dtype; the 'step' counters
            # stay on the CPU
            if isinstance(value, Tensor):
                data = value._data
                if key != "step" and param.is_floating_point():
                    data = data.astype(param._data.dtype)
                data = _device.move(data, _device.CPU if key == "step" else param.device)
                return Tensor._wrap(data.copy())
            if isinstance(value, dict):
                return {k: cast(param, v, k) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return type(value)(cast(param, v) for v in value)
            return value

        state: defaultdict = defaultdict(dict)
        for k, v in state_dict["state"].items():
            if k in id_map:
                state[id_map[k]] = cast(id_map[k], v)
            else:
                state[k] = v

        def update_group(group: dict[str, Any], new_group: dict[str, Any]) -> dict[str, Any]:
            new_group["params"] = group["params"]
            if "param_names" in group and "param_names" not in new_group:
                new_group["param_names"] = group["param_names"]
            return new_group

        param_groups = [update_group(g, ng) for g, ng in zip(groups, saved_groups)]
        self.__setstate__({"state": state, "param_groups": param_groups})

    # ------------------------------------------------------------------ helpers for steps
    @staticmethod
    def _zeros_like(p: Tensor, fill: float = 0.0) -> Tensor:
        """A state buffer for `p`: its shape, dtype and device, filled with `fill`."""
        d = p._data
        return Tensor._wrap(backend(d).full(d.shape, fill, d.dtype))

    def _gather(self, group: dict, name: str, prepare) -> dict:
        """Check every parameter of `group` that has a gradient, and prepare its update,
        before any parameter changes: {backend: [(update, param, arrays, after)]}.
        ``prepare(update)`` makes the parameter's state on its first step and returns (the
        state arrays its kernel takes after the parameter and gradient, ``after``), where
        ``after()`` is called once every check has passed and returns the parameter's own
        kernel arguments (counting its step, say). If a check fails, the state made here is
        dropped and the error raised: no parameter of the group and no state has changed
        (groups before it have taken their step)."""
        todo: dict = {}
        made = []
        try:
            for p in group["params"]:
                if p.grad is None:
                    continue
                u = _Update(p, name)
                if not self.state.get(p):
                    made.append(p)
                arrays, after = prepare(u)
                todo.setdefault(u.backend, []).append((u, p, (u.param, u.grad) + arrays,
                                                       after))
        except Exception:
            for p in made:
                self.state.pop(p, None)
            raise
        return todo

    @staticmethod
    def _apply(kind: str, todo: dict, **hyper) -> None:
        """Hand each backend all its updates of one group at once (a GPU launches a few
        parameters' updates together), then mark the parameters and states changed."""
        for K, us in todo.items():
            K.optimizer_steps(kind, [(arrays, after()) for _, _, arrays, after in us],
                              **hyper)
            for u, _, _, _ in us:
                u.done()

    @staticmethod
    def _step_counter() -> Tensor:
        return Tensor._wrap(np.array(0.0, dtype=_get_scalar_dtype().np))

    @staticmethod
    def _count_step(step_t: Tensor) -> float:
        """step_t += 1 (in place); its new value as a Python float."""
        d = step_t._data
        if d.__class__ is not np.ndarray:  # a counter a user moved to the device
            d[...] = d.dtype.type(float(d.get()) + 1)
            _inplace.bump(step_t)
            return float(d.get())
        d[...] = d + 1
        _inplace.bump(step_t)
        return float(d)


_UNUSED: dict = {}  # (backend, dtype) -> the empty array that stands for an unused state


class _Update:
    """The flat, contiguous buffers one fused kernel works on, for one parameter: checked
    here in Python, because the kernel checks no bounds. A parameter whose storage is not
    contiguous is updated through a copy that is written back."""

    __slots__ = ("_copy", "_state", "backend", "grad", "p", "param")

    def __init__(self, p: Tensor, what: str):
        g = p.grad
        d = p._data
        if g._data.shape != d.shape:
            raise RuntimeError(f"{what}: the gradient of a parameter of shape {list(d.shape)} "
                               f"has shape {list(g._data.shape)}")
        if g._data.dtype != d.dtype:
            raise RuntimeError(f"{what}: the gradient of a parameter of dtype "
                               f"{p.dtype} has dtype {g.dtype}")
        if d.dtype.kind != "f":
            raise RuntimeError(f"{what} only updates floating-point parameters, got {p.dtype}")
        _inplace._writable(p)
        self.p = p
        if g._data.__class__ is not d.__class__:
            raise RuntimeError(f"{what}: the gradient of a parameter on {p.device} is on "
                               f"{g.device}")
        self._copy = None if d.flags.c_contiguous else d.copy()
        self.param = (d if self._copy is None else self._copy).reshape(-1)
        gd = g._data
        self.grad = (gd if gd.flags.c_contiguous else gd.copy()).reshape(-1)
        self.backend = backend(d)
        self._state: list[Tensor] = []

    def buf(self, state: dict, key: str) -> np.ndarray:
        """The state tensor state[key], flat, after checking it matches the parameter."""
        t = state[key]
        p = self.p._data
        if not isinstance(t, Tensor):
            raise RuntimeError(f"optimizer state '{key}' must be a Tensor, got "
                               f"{type(t).__name__}")
        d = t._data
        if d.__class__ is not p.__class__:
            raise RuntimeError(f"optimizer state '{key}' is on {t.device} but its parameter "
                               f"is on {self.p.device}")
        if d.shape != p.shape or d.dtype != p.dtype or not d.flags.c_contiguous \
                or not d.flags.writeable:
            raise RuntimeError(
                f"optimizer state '{key}' (shape {list(d.shape)}, {t.dtype}) does not match "
                f"its parameter (shape {list(p.shape)}, {self.p.dtype}); was the state dict "
                "loaded into the right optimizer?")
        self._state.append(t)
        return d.reshape(-1)

    def empty(self) -> np.ndarray:
        """A stand-in for a state buffer the update does not use: an empty array of its
        own, made once per backend and dtype (a slice of the parameter would share its
        address, and the vectorised loop's overlap check would then fall back to the scalar
        loop). Kernels never touch it."""
        key = (self.backend, self.param.dtype)
        e = _UNUSED.get(key)
        if e is None:
            e = _UNUSED[key] = self.backend.empty((0,), self.param.dtype)
        return e

    def done(self) -> None:
        if self._copy is not None:
            self.p._data[...] = self._copy
        _inplace.bump(self.p)
        for t in self._state:
            _inplace.bump(t)
