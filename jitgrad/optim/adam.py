"""``Adam`` and ``AdamW``."""

from __future__ import annotations

from .optimizer import Optimizer, _to_scalar

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    """torch.optim.Adam. Per parameter, at step t: m = lerp(m, g, 1 - beta1);
    v = beta2 * v + (1 - beta2) * g^2 (v_max = max(v_max, v) with amsgrad);
    p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps).
    weight_decay adds wd * p to g, or with ``decoupled_weight_decay`` (AdamW) multiplies p
    by 1 - lr * wd first."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, amsgrad: bool = False, *,
                 foreach: bool | None = None, maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False, fused: bool | None = None,
                 decoupled_weight_decay: bool = False) -> None:
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if differentiable:
            raise NotImplementedError("jitgrad's optimizers are not differentiable")
        betas = (_to_scalar(betas[0]), _to_scalar(betas[1]))
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                    "amsgrad": amsgrad, "maximize": maximize, "foreach": foreach,
                    "capturable": capturable, "differentiable": differentiable, "fused": fused,
                    "decoupled_weight_decay": decoupled_weight_decay}
        super().__init__(params, defaults)

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("amsgrad", False)
            group.setdefault("maximize", False)
            group.setdefault("foreach", None)
            group.setdefault("capturable", False)
            group.setdefault("differentiable", False)
            group.setdefault("decoupled_weight_decay", False)
            group.setdefault("fused", None)

    def step(self, closure=None):
        """One update of every parameter that has a gradient; returns closure()'s loss."""
        loss = None
        if closure is not None:
            from ..autograd import grad_mode

            with grad_mode.enable_grad():
                loss = closure()
        name = type(self).__name__
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            amsgrad = group["amsgrad"]

            def prepare(u, amsgrad=amsgrad):
                state = self.state[u.p]
                if len(state) == 0:
                    state["step"] = self._step_counter()
                    state["exp_avg"] = self._zeros_like(u.p)
                    state["exp_avg_sq"] = self._zeros_like(u.p)
                    if amsgrad:
                        state["max_exp_avg_sq"] = self._zeros_like(u.p)
                arrays = (u.buf(state, "exp_avg"), u.buf(state, "exp_avg_sq"),
                          u.buf(state, "max_exp_avg_sq") if amsgrad else u.empty())
                return arrays, lambda: {"step": self._count_step(state["step"])}

            self._apply("adam", self._gather(group, name, prepare),
                        lr=_to_scalar(group["lr"]), beta1=_to_scalar(beta1),
                        beta2=_to_scalar(beta2), eps=group["eps"],
                        weight_decay=group["weight_decay"], maximize=group["maximize"],
                        decoupled=group["decoupled_weight_decay"], amsgrad=amsgrad)
        return loss


class AdamW(Adam):
    """torch.optim.AdamW: Adam with decoupled weight decay (p *= 1 - lr * weight_decay
    before the Adam step), weight_decay 1e-2 by default."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False, foreach: bool | None = None, capturable: bool = False,
                 differentiable: bool = False, fused: bool | None = None) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach,
                         maximize=maximize, capturable=capturable,
                         differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True
