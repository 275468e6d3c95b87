"""Neural-network workloads: softmax plus cross-entropy, a convolution, an MLP training step
(``nn.Sequential`` of ``nn.Linear`` and ``nn.ReLU``, ``F.cross_entropy``, ``optim.SGD``).

An engine that lacks a name a case ``requires`` is skipped with the missing names, while the
others still run and agree.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from ..harness import Case, Engine, Program, Target, register

# --------------------------------------------------------------------------- softmax + CE


def _log_softmax_ce(x: np.ndarray, t: np.ndarray) -> tuple[np.float32, np.ndarray]:
    """Mean cross-entropy of logits x (N, C) against class indices t, and d loss / d x."""
    n = x.shape[0]
    z = x - x.max(axis=1, keepdims=True)
    e = np.exp(z)
    s = e.sum(axis=1, keepdims=True)
    rows = np.arange(n)
    loss = (np.log(s[:, 0]) - z[rows, t]).mean()
    p = e / s
    p[rows, t] -= 1
    p /= n
    return loss, p


@register
class SoftmaxCrossEntropy(Case):
    name = "softmax_ce"
    title = "cross_entropy(logits, target), (4096, 1000)"
    full = {"n": 4096, "c": 1000}
    quick = {"n": 64, "c": 10}
    targets = (Target("fwd+bwd", 1.0),)
    requires = {"jitgrad": ("nn.functional.cross_entropy",)}

    def inputs(self, rng: np.random.Generator, n: int, c: int) -> dict[str, np.ndarray]:
        return {"x": rng.standard_normal((n, c), dtype=np.float32),
                "t": rng.integers(0, c, n, dtype=np.int64)}

    def numpy(self, ins: dict[str, np.ndarray], n: int, c: int) -> Program:
        x, t = ins["x"], ins["t"]

        def fwd() -> Any:
            z = x - x.max(axis=1, keepdims=True)
            return (np.log(np.exp(z).sum(axis=1)) - z[np.arange(n), t]).mean()

        def fwd_bwd() -> tuple:
            return _log_softmax_ce(x, t)

        return {"fwd": fwd, "fwd+bwd": fwd_bwd}

    def torchlike(self, eng: Engine, ins: dict[str, np.ndarray], n: int, c: int) -> Program:
        F = eng.lib.nn.functional
        x, t = eng.tensor(ins["x"], True), eng.tensor(ins["t"])

        def fwd():
            return F.cross_entropy(x, t)

        def fwd_bwd() -> tuple:
            x.grad = None
            loss = F.cross_entropy(x, t)
            loss.backward()
            return loss, x.grad

        return {"fwd": fwd, "fwd+bwd": fwd_bwd}


# --------------------------------------------------------------------------- conv2d


@register
class Conv2d(Case):
    name = "conv2d"
    title = "conv2d 3->16 ch, 3x3, pad 1, batch 32, 32x32"
    full = {"n": 32, "cin": 3, "cout": 16, "hw": 32}
    quick = {"n": 2, "cin": 3, "cout": 4, "hw": 8}
    targets = (Target("fwd+bwd", 1.5),)
    requires = {"jitgrad": ("nn.functional.conv2d",)}

    def inputs(self, rng: np.random.Generator, n: int, cin: int, cout: int, hw: int
               ) -> dict[str, np.ndarray]:
        f32 = np.float32
        return {"x": rng.standard_normal((n, cin, hw, hw), dtype=f32),
                "w": (rng.standard_normal((cout, cin, 3, 3)) / np.sqrt(cin * 9)).astype(f32),
                "b": rng.standard_normal(cout, dtype=f32),
                "g": rng.standard_normal((n, cout, hw, hw), dtype=f32)}

    def numpy(self, ins: dict[str, np.ndarray], n: int, cin: int, cout: int, hw: int
              ) -> Program:
        """im2col plus one GEMM forward; GEMMs plus col2im (nine shifted adds) backward."""
        x, w, b, g = ins["x"], ins["w"], ins["b"], ins["g"]
        wm = w.reshape(cout, cin * 9)
        from numpy.lib.stride_tricks import sliding_window_view

        def im2col() -> np.ndarray:
            xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
            win = sliding_window_view(xp, (3, 3), axis=(2, 3))  # (n, cin, hw, hw, 3, 3)
            return win.transpose(0, 2, 3, 1, 4, 5).reshape(n * hw * hw, cin * 9)

        def fwd() -> np.ndarray:
            out = im2col() @ wm.T + b  # (n*hw*hw, cout)
            return out.reshape(n, hw, hw, cout).transpose(0, 3, 1, 2)

        def fwd_bwd() -> tuple:
            cols = im2col()
            out = (cols @ wm.T + b).reshape(n, hw, hw, cout).transpose(0, 3, 1, 2)
            g2 = g.transpose(0, 2, 3, 1).reshape(n * hw * hw, cout)
            gw = (g2.T @ cols).reshape(w.shape)
            gb = g2.sum(axis=0)
            gcols = (g2 @ wm).reshape(n, hw, hw, cin, 3, 3)
            gxp = np.zeros((n, cin, hw + 2, hw + 2), dtype=x.dtype)
            for i in range(3):
                for j in range(3):
                    gxp[:, :, i:i + hw, j:j + hw] += gcols[..., i, j].transpose(0, 3, 1, 2)
            return out, gxp[:, :, 1:-1, 1:-1], gw, gb

        return {"fwd": fwd, "fwd+bwd": fwd_bwd}

    def torchlike(self, eng: Engine, ins: dict[str, np.ndarray], n: int, cin: int, cout: int,
                  hw: int) -> Program:
        F = eng.lib.nn.functional
        x, w, b = (eng.tensor(ins[k], True) for k in "xwb")
        g = eng.tensor(ins["g"])

        def fwd():
            return F.conv2d(x, w, b, padding=1)

        def fwd_bwd() -> tuple:
            x.grad = w.grad = b.grad = None
            out = F.conv2d(x, w, b, padding=1)
            out.backward(g)
            return out, x.grad, w.grad, b.grad

        return {"fwd": fwd, "fwd+bwd": fwd_bwd}


# --------------------------------------------------------------------------- MLP step


@register
class MLPStep(Case):
    name = "mlp_step"
    title = "MLP 784-256-256-10, batch 128: one SGD step"
    modes = ("step",)
    full = {"batch": 128, "dims": (784, 256, 256, 10)}
    quick = {"batch": 8, "dims": (32, 16, 16, 10)}
    targets = (Target("step", 1.0),)
    tol = 2e-4
    lr = 0.01
    requires = {"jitgrad": ("nn.Sequential", "nn.Linear", "nn.ReLU", "optim.SGD",
                            "nn.functional.cross_entropy", "Tensor.copy_")}

    def inputs(self, rng: np.random.Generator, batch: int, dims: tuple
               ) -> dict[str, np.ndarray]:
        f32 = np.float32
        ins = {"x": rng.standard_normal((batch, dims[0]), dtype=f32),
               "t": rng.integers(0, dims[-1], batch, dtype=np.int64)}
        for i, (fan_in, fan_out) in enumerate(itertools.pairwise(dims)):
            bound = 1 / np.sqrt(fan_in)  # nn.Linear's default initialisation range
            ins[f"w{i}"] = rng.uniform(-bound, bound, (fan_out, fan_in)).astype(f32)
            ins[f"b{i}"] = rng.uniform(-bound, bound, fan_out).astype(f32)
        return ins

    def numpy(self, ins: dict[str, np.ndarray], batch: int, dims: tuple) -> Program:
        x, t = ins["x"], ins["t"]
        params = [ins[f"{k}{i}"].copy() for i in range(len(dims) - 1) for k in "wb"]
        lr = np.float32(self.lr)

        def step() -> tuple:
            ws, bs = params[0::2], params[1::2]
            acts, pre = [x], []
            for i, (w, b) in enumerate(zip(ws, bs)):
                z = acts[-1] @ w.T + b
                pre.append(z)
                acts.append(np.maximum(z, 0) if i < len(ws) - 1 else z)
            loss, dz = _log_softmax_ce(acts[-1], t)
            grads: list[np.ndarray] = []
            for i in reversed(range(len(ws))):
                if i < len(ws) - 1:
                    dz = dz * (pre[i] > 0)
                grads[:0] = [dz.T @ acts[i], dz.sum(axis=0)]
                if i > 0:
                    dz = dz @ ws[i]
            for p, gp in zip(params, grads):
                p -= lr * gp
            return loss, grads

        return {"step": step}

    def torchlike(self, eng: Engine, ins: dict[str, np.ndarray], batch: int, dims: tuple
                  ) -> Program:
        lib = eng.lib
        nn, F = lib.nn, lib.nn.functional
        layers: list[Any] = []
        for i, (fan_in, fan_out) in enumerate(itertools.pairwise(dims)):
            layers.append(nn.Linear(fan_in, fan_out))
            if i < len(dims) - 2:
                layers.append(nn.ReLU())
        model = nn.Sequential(*layers)
        if eng.device != "cpu":
            model = model.to(eng.device)
        linears = [m for m in layers if isinstance(m, nn.Linear)]
        with lib.no_grad():
            for i, lin in enumerate(linears):
                lin.weight.copy_(eng.tensor(ins[f"w{i}"]))
                lin.bias.copy_(eng.tensor(ins[f"b{i}"]))
        params = list(model.parameters())
        opt = lib.optim.SGD(params, lr=self.lr)
        x, t = eng.tensor(ins["x"]), eng.tensor(ins["t"])

        def step() -> tuple:
            opt.zero_grad()
            loss = F.cross_entropy(model(x), t)
            loss.backward()
            opt.step()
            return loss, [p.grad for p in params]

        return {"step": step}
