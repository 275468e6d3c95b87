"""Shape and data-movement ops (gather, scatter_add, index_select, index_add, take, cat,
flip, roll, tril, repeat, pad), forward and forward plus backward: jitgrad against PyTorch.

    python bench/shape.py [--n 1000] [--repeat 30] [--threads 1]

Inputs are (n, n) float32 with random int64 indices. Engines are interleaved per sample, so
that machine drift lands on both alike; medians and the fastest sample are printed in ms,
with jitgrad's ratio of medians. The forward plus backward programs run
``y = f(x); y.backward(g)`` with a fixed upstream gradient g. Kernels load from Numba's disk
cache; one warm-up call per program is not timed.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def cases(n: int, rng: np.random.Generator) -> list:
    idx = rng.integers(0, n, (n, n))
    sel = rng.integers(0, n, n)
    return [
        ("gather dim 1", lambda m, x, t: m.gather(x, 1, t(idx))),
        ("scatter_add dim 1", lambda m, x, t: m.scatter_add(x, 1, t(idx), x)),
        ("index_select dim 0", lambda m, x, t: m.index_select(x, 0, t(sel))),
        ("index_select dim 1", lambda m, x, t: m.index_select(x, 1, t(sel))),
        ("index_add dim 0", lambda m, x, t: m.index_add(x, 0, t(sel), x)),
        ("take", lambda m, x, t: m.take(x, t(idx))),
        ("cat x2 dim 1", lambda m, x, t: m.cat([x, x], 1)),
        ("flip dim 1", lambda m, x, t: x.flip(1)),
        ("roll (3, 5)", lambda m, x, t: x.roll((3, 5), (0, 1))),
        ("tril", lambda m, x, t: x.tril()),
        ("repeat (2, 2)", lambda m, x, t: x.repeat(2, 2)),
        ("pad (1, 1, 1, 1)", lambda m, x, t: m.nn.functional.pad(x, (1, 1, 1, 1))),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()

    import torch

    import jitgrad

    torch.set_num_threads(a.threads)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((a.n, a.n)).astype(np.float32)
    engines = {"jitgrad": jitgrad, "torch": torch}
    print(f"(n, n) = ({a.n}, {a.n}) float32, torch threads {a.threads}; ms: median (fastest)")
    print(f"{'op':20s} {'mode':8s} {'jitgrad':>16s} {'torch':>16s} {'ratio':>6s}")
    for name, f in cases(a.n, rng):
        for mode in ("fwd", "fwd+bwd"):
            progs = {}
            for k, m in engines.items():
                xt = m.tensor(x, requires_grad=mode != "fwd")
                g = m.tensor(rng.standard_normal(f(m, xt.detach(), m.tensor).shape)
                             .astype(np.float32))

                def run(m=m, xt=xt, g=g):
                    y = f(m, xt, m.tensor)
                    if mode != "fwd":
                        xt.grad = None
                        y.backward(g)
                progs[k] = run
            times = {k: [] for k in progs}
            for p in progs.values():
                p()
            for _ in range(a.repeat):
                for k, p in progs.items():
                    t0 = time.perf_counter()
                    p()
                    times[k].append((time.perf_counter() - t0) * 1e3)
            med = {k: statistics.median(v) for k, v in times.items()}
            cols = [f"{med[k]:7.3f} ({min(times[k]):6.3f})" for k in progs]
            print(f"{name:20s} {mode:8s} {cols[0]:>16s} {cols[1]:>16s} "
                  f"{med['jitgrad'] / med['torch']:6.2f}")


if __name__ == "__main__":
    main()
