"""Matmul throughput: jitgrad against numpy's BLAS, forward and forward plus backward.

    python bench/matmul_blas.py [--n 1024] [--repeat 30]

Engines are interleaved (A B A B ...) so machine drift cancels; medians are reported, with the
ratio of the medians. The first jitgrad call (kernel compilation, if any) is timed apart.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=30)
    args = ap.parse_args()
    n = args.n

    t0 = time.perf_counter()
    import jitgrad

    rng = np.random.default_rng(0)
    a_np = rng.standard_normal((n, n), dtype=np.float32)
    b_np = rng.standard_normal((n, n), dtype=np.float32)
    a = jitgrad.from_numpy(a_np.copy()).requires_grad_()
    b = jitgrad.from_numpy(b_np.copy()).requires_grad_()
    (a @ b).sum().backward()
    first = time.perf_counter() - t0
    assert np.allclose((a @ b).detach().numpy(), a_np @ b_np, rtol=1e-4, atol=1e-3)

    def numpy_fwd():
        return a_np @ b_np

    def jit_fwd():
        with jitgrad.no_grad():
            return a @ b

    g_np = np.ones((n, n), dtype=np.float32)

    def numpy_fwd_bwd():
        c = a_np @ b_np
        return c, g_np @ b_np.T, a_np.T @ g_np

    g = jitgrad.ones(n, n)

    def jit_fwd_bwd():
        a.grad = b.grad = None
        (a @ b).backward(g)

    flops = 2.0 * n ** 3
    print(f"matmul {n}x{n} float32 (first jitgrad call incl. import and compile: {first:.2f} s)")
    for label, pair, mult in (("forward", (numpy_fwd, jit_fwd), 1),
                              ("forward+backward", (numpy_fwd_bwd, jit_fwd_bwd), 3)):
        times = ([], [])
        for f in pair:
            f()
        for _ in range(args.repeat):
            for k, f in enumerate(pair):
                t = time.perf_counter()
                f()
                times[k].append(time.perf_counter() - t)
        med = [statistics.median(ts) for ts in times]
        gf = [mult * flops / m / 1e9 for m in med]
        print(f"  {label:17s} numpy {med[0] * 1e3:7.2f} ms ({gf[0]:6.1f} GFLOP/s)   "
              f"jitgrad {med[1] * 1e3:7.2f} ms ({gf[1]:6.1f} GFLOP/s)   "
              f"jitgrad/numpy throughput {gf[1] / gf[0]:.3f}")


if __name__ == "__main__":
    main()
