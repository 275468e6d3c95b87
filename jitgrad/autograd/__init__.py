"""Reverse-mode automatic differentiation: ``backward``, ``grad``, ``Function``, grad modes."""

from __future__ import annotations

import numpy as np

from . import graph
from .function import Function, FunctionCtx, once_differentiable
from .grad_mode import (enable_grad, inference_mode, is_grad_enabled,
                        is_inference_mode_enabled, no_grad, set_grad_enabled)
from .graph import Node

__all__ = ["backward", "grad", "gradcheck", "gradgradcheck", "check_vjp", "Function", "FunctionCtx", "once_differentiable", "no_grad",
           "enable_grad", "set_grad_enabled", "inference_mode", "is_grad_enabled",
           "is_inference_mode_enabled", "Node"]


def _as_tuple(x) -> tuple:
    if x is None:
        return ()
    if isinstance(x, graph.Tensor):
        return (x,)
    return tuple(x)


_CREATION = None


def _creation():
    """jitgrad._creation, imported on first use (it imports this package itself)."""
    global _CREATION
    if _CREATION is None:
        from .. import _creation as c

        _CREATION = c
    return _CREATION


def _seeds(outputs: tuple, grad_outputs: tuple, create_graph: bool) -> list:
    """The gradient each output starts with: given, or 1 for a scalar output."""
    Tensor = graph.Tensor

    if len(grad_outputs) != len(outputs):
        raise RuntimeError(f"grad requires one gradient per output: got {len(grad_outputs)} "
                           f"gradients for {len(outputs)} outputs")
    seeds = []
    for i, (out, g) in enumerate(zip(outputs, grad_outputs)):
        if g is None:
            if out._requires_grad and out._data.size != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            if out._requires_grad and out._data.dtype.kind != "f":
                raise RuntimeError("grad can be implicitly created only for real scalar outputs "
                                   f"but got {out.dtype}")
            d = out._data  # ones_like(out), without the factory's device bookkeeping
            g = Tensor._wrap(np.ones(d.shape, d.dtype) if d.__class__ is np.ndarray else
                             graph._ops.backend(d).full(d.shape, 1, d.dtype))
        elif not isinstance(g, Tensor):
            g = _creation().full_like(out, g)
        else:
            if g._data.shape != out._data.shape:
                from ..tensor import Size

                raise RuntimeError(
                    f"Mismatch in shape: grad_output[{i}] has a shape of "
                    f"{Size(g._data.shape)!r} and output[{i}] has a shape of "
                    f"{Size(out._data.shape)!r}.")
            if g._data.__class__ is not out._data.__class__:
                # torch moves a 0-d gradient to its output's device; a gradient of more
                # dimensions on another device is an error
                if g._data.ndim:
                    raise RuntimeError(f"invalid gradient at index {i} - expected device "
                                       f"{out.device} but got {g.device}")
                g = g.to(out.device)
            if g._data.dtype != out._data.dtype:
                g = g.to(out.dtype)
            if not create_graph:
                g = g.detach()
        seeds.append(g)
    return seeds


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph: bool = False,
             inputs=None) -> None:
    """Accumulate the gradients of `tensors` into the ``.grad`` of the graph's leaves."""
    tensors = _as_tuple(tensors)
    grads = _as_tuple(grad_tensors) if grad_tensors is not None else (None,) * len(tensors)
    if retain_graph is None:
        retain_graph = create_graph
    for i, t in enumerate(tensors):
        if not t._requires_grad:
            raise RuntimeError(
                f"element {i} of tensors does not require grad and does not have a grad_fn")
    inputs = _as_tuple(inputs) if inputs is not None else None
    if inputs is not None and len(inputs) == 0:
        raise RuntimeError("`inputs` argument to `backward()` cannot be empty.")
    graph.run_backward(tensors, _seeds(tensors, grads, create_graph), retain_graph=retain_graph,
                       create_graph=create_graph, inputs=inputs, accumulate=True)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph: bool = False,
         only_inputs: bool = True, allow_unused=None, is_grads_batched: bool = False,
         materialize_grads: bool = False):
    """The gradients of `outputs` with respect to `inputs`, returned, not accumulated."""
    outputs = _as_tuple(outputs)
    inputs_t = _as_tuple(inputs)
    if is_grads_batched:
        raise NotImplementedError("is_grads_batched=True is not supported")
    if allow_unused is None:
        allow_unused = materialize_grads
    if materialize_grads and allow_unused is False:
        raise ValueError("Expected allow_unused to be True or not passed when "
                         "materialize_grads=True, but got: allow_unused=False.")
    grads = (_as_tuple(grad_outputs) if grad_outputs is not None
             else (None,) * len(outputs))
    if retain_graph is None:
        retain_graph = create_graph
    for i, t in enumerate(outputs):
        if not t._requires_grad:
            raise RuntimeError(
                f"element {i} of tensors does not require grad and does not have a grad_fn")
    res = graph.run_backward(outputs, _seeds(outputs, grads, create_graph),
                             retain_graph=retain_graph, create_graph=create_graph,
                             inputs=inputs_t, accumulate=False, allow_unused=allow_unused)
    if materialize_grads:
        res = tuple(_creation().zeros_like(i) if r is None else r for r, i in zip(res, inputs_t))
    return res


from .gradcheck import check_vjp, gradcheck, gradgradcheck  # noqa: E402
