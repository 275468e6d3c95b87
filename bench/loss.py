"""Fused losses and norms against PyTorch: ``python -m bench.loss [--threads N] [--cold]``.

Two cases, float32, forward plus backward:

* softmax + cross-entropy, logits (4096, 1000), class-index targets (target: <= 1x torch);
* layer_norm over the last dim of (4096, 1024) with weight and bias, upstream gradient given.

Each engine's first call is timed apart (it includes compilation, or loading the compiled
kernels from Numba's disk cache; ``--cold`` runs in a fresh process with an empty cache to show
the real compile time). Then samples are taken interleaved, jitgrad and torch alternating, and
the medians and the median of the paired ratios are printed. Both libraries get the same
thread count (``--threads``, default 1).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from .harness import interleave, pairwise_ratios, summarize


def _programs(lib, case: str, arrays: dict):
    F = lib.nn.functional
    if case == "cross_entropy":
        x = lib.tensor(arrays["x"], requires_grad=True)
        t = lib.tensor(arrays["t"])

        def run():
            x.grad = None
            loss = F.cross_entropy(x, t)
            loss.backward()
            return loss.item(), x.grad
    else:
        x = lib.tensor(arrays["x"], requires_grad=True)
        w = lib.tensor(arrays["w"], requires_grad=True)
        b = lib.tensor(arrays["b"], requires_grad=True)
        g = lib.tensor(arrays["g"])

        def run():
            x.grad = w.grad = b.grad = None
            y = F.layer_norm(x, (x.shape[-1],), w, b)
            y.backward(g)
            return x.grad, w.grad, b.grad
    return run


def _inputs(case: str, rng: np.random.Generator) -> dict:
    f32 = np.float32
    if case == "cross_entropy":
        return {"x": rng.standard_normal((4096, 1000), dtype=f32),
                "t": rng.integers(0, 1000, 4096)}
    return {"x": rng.standard_normal((4096, 1024), dtype=f32),
            "w": rng.standard_normal(1024, dtype=f32), "b": rng.standard_normal(1024, dtype=f32),
            "g": rng.standard_normal((4096, 1024), dtype=f32)}


def _numpy(v) -> list:
    vs = v if isinstance(v, tuple) else (v,)
    return [np.asarray(a.detach() if hasattr(a, "detach") else a) for a in vs]


def _sampler(fn, number: int):
    def sample() -> float:
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        return (time.perf_counter() - t0) / number
    return sample


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.loss", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--cold", action="store_true",
                    help="rerun in a fresh process with an empty Numba cache")
    args = ap.parse_args(argv)
    if args.cold and not os.environ.get("JITGRAD_BENCH_COLD"):
        with tempfile.TemporaryDirectory() as d:
            env = dict(os.environ, NUMBA_CACHE_DIR=d, JITGRAD_BENCH_COLD="1")
            cmd = [sys.executable, "-m", "bench.loss", "--threads", str(args.threads),
                   "--repeats", str(args.repeats)]
            return subprocess.call(cmd, env=env)

    import numba
    import torch

    t0 = time.perf_counter()
    import jitgrad
    import_s = time.perf_counter() - t0
    torch.set_num_threads(args.threads)
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    cache = "empty (cold)" if os.environ.get("JITGRAD_BENCH_COLD") else "as found"
    print(f"threads {args.threads}; torch {torch.__version__}, numba {numba.__version__}; "
          f"numba cache {cache}; import jitgrad {import_s * 1e3:.0f} ms")
    print(f"{'case':32s} {'first jitgrad':>14s} {'first torch':>12s} {'jitgrad':>10s} "
          f"{'torch':>10s} {'ratio':>14s}")
    rng = np.random.default_rng(0)
    for case, title in (("cross_entropy", "cross_entropy (4096, 1000) f+b"),
                        ("layer_norm", "layer_norm (4096, 1024) f+b")):
        arrays = _inputs(case, rng)
        runs, firsts, outs = [], [], []
        for lib in (jitgrad, torch):
            fn = _programs(lib, case, arrays)
            t1 = time.perf_counter()
            outs.append(_numpy(fn()))
            firsts.append(time.perf_counter() - t1)
            runs.append(fn)
        for a, b in zip(*outs):  # float32 sums over 4096 rows: error relative to the scale
            err = float(np.max(np.abs(a - b)))
            assert err <= 1e-4 * float(np.max(np.abs(b))) + 1e-6, f"{case}: off by {err}"
        for fn in runs:  # warm-up
            fn()
        jt, tt = interleave([_sampler(f, 5) for f in runs], args.repeats)
        js, ts, rs = summarize(jt), summarize(tt), pairwise_ratios(jt, tt)
        print(f"{title:32s} {firsts[0] * 1e3:11.1f} ms {firsts[1] * 1e3:9.1f} ms "
              f"{js['median'] * 1e3:7.2f} ms {ts['median'] * 1e3:7.2f} ms "
              f"{rs['median']:5.2f}x [{rs['q1']:.2f}-{rs['q3']:.2f}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
