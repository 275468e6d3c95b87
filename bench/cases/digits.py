"""The training step of examples/train_digits.py's CNN: batch 64 of 8x8 images, forward,
cross-entropy, backward, Adam step (the example's settings).

The model is the example's own ``build_cnn``, built on each engine right after
``manual_seed(0)``: jitgrad's initialisation draws what torch's does, so both start from the
same weights (a jitgrad whose initialisation drifted from torch's fails the agreement check).
There is no hand-written numpy side.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import numpy as np

from ..harness import Case, Engine, Program, Target, register

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "train_digits.py"
_example: ModuleType | None = None


def example() -> ModuleType:
    """examples/train_digits.py as a module (it runs nothing on import)."""
    global _example
    if _example is None:
        spec = importlib.util.spec_from_file_location("train_digits", EXAMPLE)
        _example = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(_example)
    return _example


@register
class DigitsCNN(Case):
    name = "digits_cnn"
    title = "digits CNN (examples/train_digits.py), batch 64 of 1x8x8: one Adam step"
    modes = ("step",)
    full: ClassVar[dict[str, Any]] = {"batch": 64}
    quick: ClassVar[dict[str, Any]] = {"batch": 8}
    targets = (Target("step", 1.0),)
    tol = 2e-4
    devices = ("cpu", "cuda")
    requires: ClassVar[dict[str, tuple[str, ...]]] = {
        "jitgrad": ("nn.Conv2d", "nn.BatchNorm2d", "nn.MaxPool2d", "nn.Flatten", "nn.Linear",
                    "nn.CrossEntropyLoss", "optim.Adam")}

    def inputs(self, rng: np.random.Generator, batch: int) -> dict[str, np.ndarray]:
        return {"x": rng.random((batch, 1, 8, 8), dtype=np.float32),
                "t": rng.integers(0, 10, batch, dtype=np.int64)}

    def torchlike(self, eng: Engine, ins: dict[str, np.ndarray], batch: int) -> Program:
        lib, demo = eng.lib, example()
        build, opt_name, lr = demo.SETTINGS["cnn"]
        lib.manual_seed(0)
        model = build(lib.nn)
        if eng.device != "cpu":
            model = model.to(eng.device)
        params = list(model.parameters())
        opt = getattr(lib.optim, opt_name)(params, lr=lr)
        loss_fn = lib.nn.CrossEntropyLoss()
        x, t = eng.tensor(ins["x"]), eng.tensor(ins["t"])

        def step() -> tuple:
            opt.zero_grad()
            loss = loss_fn(model(x), t)
            loss.backward()
            opt.step()
            return loss, [p.grad for p in params]

        return {"step": step}
