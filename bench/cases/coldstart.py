"""Cold start: a fresh process imports the library, builds a small MLP-like graph (matmul,
bias add, tanh, sum) and runs its backward.

jitgrad's first call runs with an empty ``NUMBA_CACHE_DIR``, so it compiles every kernel the
graph needs (its "first call" figure); the timed samples then reuse that cache (a warm
start). Each process times itself from before its import to after the backward, and reports
its loss and gradients, which are checked like any other case's outputs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from ..harness import Case, Engine, Measured, Program, Target, register

_TORCHLIKE = r"""
import time
t0 = time.perf_counter()
import {module} as torch
import numpy as np
rng = np.random.default_rng(0)
f32 = np.float32
x = torch.tensor(rng.standard_normal((32, 64), dtype=f32))
w1 = torch.tensor(0.1 * rng.standard_normal((64, 64), dtype=f32), requires_grad=True)
b1 = torch.tensor(rng.standard_normal(64, dtype=f32), requires_grad=True)
w2 = torch.tensor(0.1 * rng.standard_normal((64, 10), dtype=f32), requires_grad=True)
loss = ((x @ w1 + b1).tanh() @ w2).tanh().sum()
loss.backward()
seconds = time.perf_counter() - t0
outs = [loss.item(), w1.grad.numpy().tolist(), b1.grad.numpy().tolist(),
        w2.grad.numpy().tolist()]
"""

_NUMPY = r"""
import time
t0 = time.perf_counter()
import numpy as np
rng = np.random.default_rng(0)
f32 = np.float32
x = rng.standard_normal((32, 64), dtype=f32)
w1 = 0.1 * rng.standard_normal((64, 64), dtype=f32)
b1 = rng.standard_normal(64, dtype=f32)
w2 = 0.1 * rng.standard_normal((64, 10), dtype=f32)
h = np.tanh(x @ w1 + b1)
y = np.tanh(h @ w2)
loss = y.sum()
dz2 = 1 - y * y
dh = (dz2 @ w2.T) * (1 - h * h)
seconds = time.perf_counter() - t0
outs = [float(loss), (x.T @ dh).tolist(), dh.sum(axis=0).tolist(), (h.T @ dz2).tolist()]
"""

# VmHWM, not ru_maxrss: the latter survives exec and would report the parent's peak.
_REPORT = r"""
import json
hwm = None
try:
    hwm = 1024 * int(next(ln for ln in open("/proc/self/status")
                          if ln.startswith("VmHWM:")).split()[1])
except (OSError, StopIteration):
    pass
print("@@RESULT@@" + json.dumps({"seconds": seconds, "outs": outs, "maxrss": hwm}))
"""


def run_fresh(source: str, env: dict[str, str]) -> Measured:
    """Run ``source`` in a fresh interpreter; its own time, outputs and peak memory."""
    proc = subprocess.run([sys.executable, "-c", source + _REPORT], env=env, text=True,
                          capture_output=True, timeout=600, check=False)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("@@RESULT@@")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"cold-start process failed ({proc.returncode}): "
                           f"{proc.stderr.strip()[-2000:]}")
    r = json.loads(line[len("@@RESULT@@"):])
    outs = [np.asarray(o, dtype=np.float32) for o in r["outs"]]
    return Measured(r["seconds"], outs, r["maxrss"])


@register
class ColdStart(Case):
    name = "cold_start"
    title = "fresh process: import + small MLP graph + backward"
    modes = ("warm",)
    full = {}
    quick = {}
    devices = ("cpu",)
    repeats = 7
    quick_repeats = 1  # each round starts three interpreters: keep CI's smoke run short
    tol = 1e-4
    targets = (Target("warm", 30.0, kind="seconds", stat="first",
                      label="empty cache < 30 s"),
               Target("warm", 1.5, kind="seconds", stat="median",
                      label="warm cache < 1.5 s"))

    def numpy(self, ins: dict[str, np.ndarray]) -> Program:
        env = dict(os.environ)
        return {"warm": lambda: run_fresh(_NUMPY, env)}

    def torchlike(self, eng: Engine, ins: dict[str, np.ndarray]) -> Program:
        source = _TORCHLIKE.format(module=eng.family)
        env = dict(os.environ)
        if eng.family == "jitgrad":
            # Emptied now: the first call compiles into it, later calls load from it. The
            # directory is removed when the program is garbage-collected or at exit.
            cache = tempfile.TemporaryDirectory(prefix="jitgrad-bench-numba-")
            env["NUMBA_CACHE_DIR"] = cache.name

            def warm() -> Measured:
                cache  # noqa: B018 - keeps the directory alive as long as the program
                return run_fresh(source, env)
            return {"warm": warm}
        return {"warm": lambda: run_fresh(source, env)}
