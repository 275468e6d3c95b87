"""``SGD``: stochastic gradient descent with momentum, dampening, Nesterov, weight decay."""

from __future__ import annotations

from .optimizer import Optimizer, _to_scalar

__all__ = ["SGD"]


class SGD(Optimizer):
    """torch.optim.SGD. Per parameter, with d = grad (+ weight_decay * p):
    buf = d on the first step, then momentum * buf + (1 - dampening) * d;
    d = d + momentum * buf (nesterov) or buf; p -= lr * d."""

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False,
                 foreach: bool | None = None, differentiable: bool = False,
                 fused: bool | None = None) -> None:
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if differentiable:
            raise NotImplementedError("jitgrad's optimizers are not differentiable")
        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening,
                    "weight_decay": weight_decay, "nesterov": nesterov, "maximize": maximize,
                    "foreach": foreach, "differentiable": differentiable, "fused": fused}
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, defaults)

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("nesterov", False)
            group.setdefault("maximize", False)
            group.setdefault("foreach", None)
            group.setdefault("differentiable", False)
            group.setdefault("fused", False)

    def step(self, closure=None):
        """One update of every parameter that has a gradient; returns closure()'s loss."""
        loss = None
        if closure is not None:
            from ..autograd import grad_mode

            with grad_mode.enable_grad():
                loss = closure()
        for group in self.param_groups:
            momentum = group["momentum"]

            def prepare(u, momentum=momentum):
                if momentum == 0:  # (without momentum SGD keeps no state, as torch)
                    return (u.empty(),), lambda: {"first": False}
                state = self.state[u.p]
                first = state.get("momentum_buffer") is None
                if first:
                    state["momentum_buffer"] = self._zeros_like(u.p)
                return (u.buf(state, "momentum_buffer"),), lambda: {"first": first}

            self._apply("sgd", self._gather(group, "SGD", prepare),
                        lr=_to_scalar(group["lr"]), weight_decay=group["weight_decay"],
                        momentum=momentum, dampening=group["dampening"],
                        nesterov=group["nesterov"], maximize=group["maximize"])
        return loss
