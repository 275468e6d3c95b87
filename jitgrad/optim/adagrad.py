"""``Adagrad``."""

from __future__ import annotations

from .optimizer import Optimizer, _to_scalar

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    """torch.optim.Adagrad. Per parameter, at step t: sum += g^2;
    p -= lr / (1 + (t - 1) * lr_decay) * g / (sqrt(sum) + eps). The state exists from the
    start (sum = initial_accumulator_value), as in torch."""

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0, weight_decay: float = 0,
                 initial_accumulator_value: float = 0, eps: float = 1e-10,
                 foreach: bool | None = None, *, maximize: bool = False,
                 differentiable: bool = False, fused: bool | None = None) -> None:
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= lr_decay:
            raise ValueError(f"Invalid lr_decay value: {lr_decay}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= initial_accumulator_value:
            raise ValueError("Invalid initial_accumulator_value value: "
                             f"{initial_accumulator_value}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if differentiable:
            raise NotImplementedError("jitgrad's optimizers are not differentiable")
        defaults = {"lr": lr, "lr_decay": lr_decay, "eps": eps, "weight_decay": weight_decay,
                    "initial_accumulator_value": initial_accumulator_value, "foreach": foreach,
                    "maximize": maximize, "differentiable": differentiable, "fused": fused}
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                state["step"] = self._step_counter()
                state["sum"] = self._zeros_like(p, initial_accumulator_value)

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("foreach", None)
            group.setdefault("maximize", False)
            group.setdefault("differentiable", False)
            group.setdefault("fused", None)

    def step(self, closure=None):
        """One update of every parameter that has a gradient; returns closure()'s loss."""
        loss = None
        if closure is not None:
            from ..autograd import grad_mode

            with grad_mode.enable_grad():
                loss = closure()
        for group in self.param_groups:

            def prepare(u, group=group):
                state = self.state[u.p]
                if len(state) == 0:  # a group added after construction
                    state["step"] = self._step_counter()
                    state["sum"] = self._zeros_like(u.p, group["initial_accumulator_value"])
                return ((u.buf(state, "sum"),),
                        lambda: {"step": self._count_step(state["step"])})

            self._apply("adagrad", self._gather(group, "Adagrad", prepare),
                        lr=_to_scalar(group["lr"]), lr_decay=group["lr_decay"],
                        weight_decay=group["weight_decay"], eps=group["eps"],
                        maximize=group["maximize"])
        return loss
