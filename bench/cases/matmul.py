"""Matrix products at BLAS sizes: jitgrad must reach the BLAS it calls."""

from __future__ import annotations

import numpy as np

from ..harness import Case, Engine, Program, Target, register


class Matmul(Case):
    modes = ("fwd", "fwd+bwd")
    targets = (Target("fwd+bwd", 1.05),)

    def __init__(self, n: int, quick_n: int, budget_scale: float = 1.0) -> None:
        self.name = f"matmul_{n}"
        self.title = f"a @ b, {n}x{n} float32"
        self.full = {"n": n}
        self.quick = {"n": quick_n}
        self.budget_scale = budget_scale

    def inputs(self, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
        return {k: rng.standard_normal((n, n), dtype=np.float32) for k in ("a", "b", "g")}

    def numpy(self, ins: dict[str, np.ndarray], n: int) -> Program:
        a, b, g = ins["a"], ins["b"], ins["g"]

        def fwd() -> np.ndarray:
            return a @ b

        def fwd_bwd() -> tuple:
            return a @ b, g @ b.T, a.T @ g

        return {"fwd": fwd, "fwd+bwd": fwd_bwd}

    def torchlike(self, eng: Engine, ins: dict[str, np.ndarray], n: int) -> Program:
        a, b = eng.tensor(ins["a"], True), eng.tensor(ins["b"], True)
        g = eng.tensor(ins["g"])

        def fwd():
            return a @ b

        def fwd_bwd() -> tuple:
            a.grad = b.grad = None
            c = a @ b
            c.backward(g)
            return c, a.grad, b.grad

        return {"fwd": fwd, "fwd+bwd": fwd_bwd}


register(Matmul(1024, quick_n=32))
register(Matmul(2048, quick_n=64, budget_scale=2.0))
