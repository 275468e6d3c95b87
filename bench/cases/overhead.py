"""Per-op overhead: a 100-op chain on shape-(4,) tensors, where the graph layer is all the
cost. Reported in seconds per op."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..harness import Case, Engine, Program, Target, register


@register
class PerOp(Case):
    name = "per_op"
    title = "per-op overhead: 100-op chain, shape (4,)"
    modes = ("fwd", "fwd+bwd", "no_grad")
    full = {"ops": 100}
    quick = {"ops": 100}  # already tiny; quick runs take fewer samples
    per = 100.0  # = ops
    unit = "op"
    targets = (Target("fwd+bwd", 1.0),)

    def inputs(self, rng: np.random.Generator, ops: int) -> dict[str, np.ndarray]:
        f32 = np.float32
        return {"x": rng.standard_normal(4).astype(f32),
                "a": rng.uniform(0.9, 1.1, 4).astype(f32),  # keeps a^50 near 1
                "b": (0.1 * rng.standard_normal(4)).astype(f32),
                "g": np.ones(4, f32)}

    def numpy(self, ins: dict[str, np.ndarray], ops: int) -> Program:
        x, a, b, g0 = ins["x"], ins["a"], ins["b"], ins["g"]

        def fwd() -> np.ndarray:
            y = x
            for _ in range(ops // 2):
                y = y * a
                y = y + b
            return y

        def fwd_bwd() -> tuple:
            saved = []
            y = x
            for _ in range(ops // 2):
                saved.append(y)
                y = y * a
                y = y + b
            g, ga, gb = g0, np.zeros_like(a), np.zeros_like(b)
            for s in reversed(saved):
                gb = gb + g  # y + b
                ga = ga + g * s  # y * a
                g = g * a
            return y, g, ga, gb

        return {"fwd": fwd, "fwd+bwd": fwd_bwd, "no_grad": fwd}

    def torchlike(self, eng: Engine, ins: dict[str, np.ndarray], ops: int) -> Program:
        x, a, b = (eng.tensor(ins[k], requires_grad=True) for k in "xab")
        g = eng.tensor(ins["g"])
        lib = eng.lib

        def chain() -> Any:
            y = x
            for _ in range(ops // 2):
                y = y * a
                y = y + b
            return y

        def fwd_bwd() -> tuple:
            x.grad = a.grad = b.grad = None
            y = chain()
            y.backward(g)
            return y, x.grad, a.grad, b.grad

        def no_grad() -> Any:
            with lib.no_grad():
                return chain()

        return {"fwd": chain, "fwd+bwd": fwd_bwd, "no_grad": no_grad}
