"""Memory-bound pointwise work: a fused-able chain over 10M floats, and a broadcast add
followed by a mean (the gradient of the broadcast operand is a reduction)."""

from __future__ import annotations

import numpy as np

from ..harness import Case, Engine, Program, Target, register


@register
class TanhChain(Case):
    name = "tanh_10m"
    title = "(x*y + x).tanh().sum(), 10M float32"
    full = {"n": 10_000_000}
    quick = {"n": 10_000}
    targets = (Target("fwd+bwd", 0.5),)
    tol = 1e-4

    def inputs(self, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
        return {"x": rng.standard_normal(n, dtype=np.float32),
                "y": rng.standard_normal(n, dtype=np.float32)}

    def numpy(self, ins: dict[str, np.ndarray], n: int) -> Program:
        x, y = ins["x"], ins["y"]

        def fwd() -> np.ndarray:
            return np.tanh(x * y + x).sum()

        def fwd_bwd() -> tuple:
            t = np.tanh(x * y + x)
            s = t.sum()
            dv = 1 - t * t  # d tanh, times the sum's gradient of ones
            return s, dv * y + dv, dv * x

        return {"fwd": fwd, "fwd+bwd": fwd_bwd}

    def torchlike(self, eng: Engine, ins: dict[str, np.ndarray], n: int) -> Program:
        x, y = eng.tensor(ins["x"], True), eng.tensor(ins["y"], True)

        def fwd():
            return (x * y + x).tanh().sum()

        def fwd_bwd() -> tuple:
            x.grad = y.grad = None
            s = (x * y + x).tanh().sum()
            s.backward()
            return s, x.grad, y.grad

        return {"fwd": fwd, "fwd+bwd": fwd_bwd}


@register
class BroadcastMean(Case):
    name = "broadcast_mean"
    title = "(a + b).mean(), a (256,1024), b (1024,)"
    full = {"m": 256, "n": 1024}
    quick = {"m": 8, "n": 32}
    targets = (Target("fwd+bwd", 0.5),)

    def inputs(self, rng: np.random.Generator, m: int, n: int) -> dict[str, np.ndarray]:
        return {"a": rng.standard_normal((m, n), dtype=np.float32),
                "b": rng.standard_normal(n, dtype=np.float32)}

    def numpy(self, ins: dict[str, np.ndarray], m: int, n: int) -> Program:
        a, b = ins["a"], ins["b"]

        def fwd() -> np.ndarray:
            return (a + b).mean()

        def fwd_bwd() -> tuple:
            out = (a + b).mean()
            g = np.full(a.shape, 1.0 / a.size, dtype=a.dtype)  # mean's gradient, expanded
            return out, g, g.sum(axis=0)  # b's gradient is summed over the broadcast dim

        return {"fwd": fwd, "fwd+bwd": fwd_bwd}

    def torchlike(self, eng: Engine, ins: dict[str, np.ndarray], m: int, n: int) -> Program:
        a, b = eng.tensor(ins["a"], True), eng.tensor(ins["b"], True)

        def fwd():
            return (a + b).mean()

        def fwd_bwd() -> tuple:
            a.grad = b.grad = None
            out = (a + b).mean()
            out.backward()
            return out, a.grad, b.grad

        return {"fwd": fwd, "fwd+bwd": fwd_bwd}
