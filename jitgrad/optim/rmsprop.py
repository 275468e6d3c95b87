"""``RMSprop``."""

from __future__ import annotations

from .optimizer import Optimizer, _to_scalar

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """torch.optim.RMSprop. Per parameter: sq = alpha * sq + (1 - alpha) * g^2;
    avg = sqrt(sq) + eps, or sqrt(sq - ga^2) + eps with ga = lerp(ga, g, 1 - alpha) when
    centered; p -= lr * g / avg, or through buf = momentum * buf + g / avg."""

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0, momentum: float = 0, centered: bool = False,
                 capturable: bool = False, foreach: bool | None = None, maximize: bool = False,
                 differentiable: bool = False) -> None:
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= momentum:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= alpha:
            raise ValueError(f"Invalid alpha value: {alpha}")
        if differentiable:
            raise NotImplementedError("jitgrad's optimizers are not differentiable")
        defaults = {"lr": lr, "momentum": momentum, "alpha": alpha, "eps": eps,
                    "centered": centered, "weight_decay": weight_decay, "capturable": capturable,
                    "foreach": foreach, "maximize": maximize, "differentiable": differentiable}
        super().__init__(params, defaults)

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("momentum", 0)
            group.setdefault("centered", False)
            group.setdefault("foreach", None)
            group.setdefault("maximize", False)
            group.setdefault("differentiable", False)
            group.setdefault("capturable", False)

    def step(self, closure=None):
        """One update of every parameter that has a gradient; returns closure()'s loss."""
        loss = None
        if closure is not None:
            from ..autograd import grad_mode

            with grad_mode.enable_grad():
                loss = closure()
        for group in self.param_groups:
            momentum, centered = group["momentum"], group["centered"]

            def prepare(u, momentum=momentum, centered=centered):
                state = self.state[u.p]
                if len(state) == 0:
                    state["step"] = self._step_counter()
                    state["square_avg"] = self._zeros_like(u.p)
                    if momentum > 0:
                        state["momentum_buffer"] = self._zeros_like(u.p)
                    if centered:
                        state["grad_avg"] = self._zeros_like(u.p)
                arrays = (u.buf(state, "square_avg"),
                          u.buf(state, "grad_avg") if centered else u.empty(),
                          u.buf(state, "momentum_buffer") if momentum > 0 else u.empty())

                def after():
                    self._count_step(state["step"])
                    return {}
                return arrays, after

            self._apply("rmsprop", self._gather(group, "RMSprop", prepare),
                        lr=_to_scalar(group["lr"]), alpha=group["alpha"], eps=group["eps"],
                        weight_decay=group["weight_decay"], momentum=momentum,
                        centered=centered, maximize=group["maximize"])
        return loss
