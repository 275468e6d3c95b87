"""softmax and log_softmax over one dim (the last by default), forward and forward plus
backward: jitgrad against numpy written by hand and against PyTorch (when installed).

    python bench/softmax.py [--rows 4096] [--cols 1000] [--dim -1] [--repeat 30]
                            [--dtype float32] [--threads N] [--no-compile-time]

Engines are interleaved (A B C A B C ...) so that machine drift lands on all of them alike;
medians (and the fastest sample) are reported, with jitgrad's ratios of medians. The forward
plus backward programs run ``y = f(x, dim); y.backward(g)`` with a fixed upstream gradient g
(numpy: the same two formulas by hand). Compile time is reported apart: the first call in a
fresh process with an empty Numba cache (cold: compiling) and with the cache filled (warm:
loading), both including jitgrad's import.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

_FIRST_CALL = """
import sys, time
t0 = time.perf_counter()
import numpy as np
import jitgrad
x = jitgrad.from_numpy(np.random.default_rng(0).standard_normal(({rows}, {cols})).astype(
    '{dtype}')).requires_grad_()
for f in (jitgrad.softmax, jitgrad.log_softmax):
    x.grad = None
    f(x, {dim}).backward(jitgrad.ones_like(x))
print(time.perf_counter() - t0)
"""


def first_call_seconds(rows: int, cols: int, dtype: str, dim: int, cache_dir: str) -> float:
    """Import jitgrad and run both programs once in a fresh process using `cache_dir`."""
    code = _FIRST_CALL.format(rows=rows, cols=cols, dtype=dtype, dim=dim)
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                         capture_output=True, text=True).stdout
    return float(out.split()[-1])


def programs(x_np: np.ndarray, g_np: np.ndarray, dim: int) -> dict:
    """{engine: {mode: callable returning what it computed}}"""
    import jitgrad

    progs = {}

    def np_softmax():
        e = np.exp(x_np - x_np.max(dim, keepdims=True))
        return e / e.sum(dim, keepdims=True)

    def np_log_softmax():
        z = x_np - x_np.max(dim, keepdims=True)
        return z - np.log(np.exp(z).sum(dim, keepdims=True))

    def np_softmax_fb():
        y = np_softmax()
        return y, y * (g_np - (g_np * y).sum(dim, keepdims=True))

    def np_log_softmax_fb():
        y = np_log_softmax()
        return y, g_np - np.exp(y) * g_np.sum(dim, keepdims=True)

    progs["numpy"] = {"softmax fwd": np_softmax, "softmax fwd+bwd": np_softmax_fb,
                      "log_softmax fwd": np_log_softmax,
                      "log_softmax fwd+bwd": np_log_softmax_fb}

    def torchlike(m, x, g):
        def fwd(f):
            def run():
                with m.no_grad():
                    return f(x, dim)
            return run

        def fwd_bwd(f):
            def run():
                x.grad = None
                y = f(x, dim)
                y.backward(g)
                return y.detach(), x.grad
            return run

        return {"softmax fwd": fwd(m.softmax), "softmax fwd+bwd": fwd_bwd(m.softmax),
                "log_softmax fwd": fwd(m.log_softmax),
                "log_softmax fwd+bwd": fwd_bwd(m.log_softmax)}

    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        progs["torch"] = torchlike(torch, torch.tensor(x_np).requires_grad_(),
                                   torch.tensor(g_np))
    progs["jitgrad"] = torchlike(jitgrad, jitgrad.tensor(x_np).requires_grad_(),
                                 jitgrad.tensor(g_np))
    return progs


def _arrays(out) -> list:
    out = out if isinstance(out, tuple) else (out,)
    return [o.numpy() if hasattr(o, "numpy") else np.asarray(o) for o in out]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=4096)
    ap.add_argument("--cols", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--dim", type=int, default=-1, help="the softmax dim (0: lane blocks)")
    ap.add_argument("--threads", type=int, default=None,
                    help="threads for jitgrad's parallel kernels and for torch (default: all)")
    ap.add_argument("--no-compile-time", action="store_true",
                    help="skip the two fresh processes that time the first call")
    args = ap.parse_args()
    if args.threads is not None:
        import numba

        numba.set_num_threads(args.threads)
        try:
            import torch

            torch.set_num_threads(args.threads)
        except ImportError:
            pass

    rng = np.random.default_rng(0)
    x_np = (rng.standard_normal((args.rows, args.cols)) * 3).astype(args.dtype)
    g_np = rng.standard_normal((args.rows, args.cols)).astype(args.dtype)

    if not args.no_compile_time:
        with tempfile.TemporaryDirectory() as cache:
            cold = first_call_seconds(args.rows, args.cols, args.dtype, args.dim, cache)
            warm = first_call_seconds(args.rows, args.cols, args.dtype, args.dim, cache)

    progs = programs(x_np, g_np, args.dim)
    engines = list(progs)
    modes = list(progs["numpy"])
    # Every engine computes the same (and is warm) before timing; the reference is the numpy
    # program in float64, since float32 sums over thousands of terms differ in the last bits.
    exact = programs(x_np.astype(np.float64), g_np.astype(np.float64), args.dim)["numpy"]
    r = x_np.shape[args.dim]  # a float32 sum of r terms may be off by about r * eps
    tol = dict(rtol=1e-4, atol=1e-7 * r) if args.dtype == "float32" else \
        dict(rtol=1e-9, atol=1e-15 * r)
    for mode in modes:
        ref = _arrays(exact[mode]())
        for e in engines:
            for got, want in zip(_arrays(progs[e][mode]()), ref):
                np.testing.assert_allclose(got, want, err_msg=f"{e} {mode}", **tol)

    import numba

    threads = f"numba threads {numba.get_num_threads()}"
    if "torch" in progs:
        import torch

        threads += f", torch threads {torch.get_num_threads()}"
    print(f"softmax/log_softmax over dim {args.dim} of ({args.rows}, {args.cols}) {args.dtype}; "
          f"{threads}; medians of {args.repeat} interleaved runs (fastest in brackets)")
    if not args.no_compile_time:
        print(f"  first call incl. import: {cold:.2f} s with an empty Numba cache (compiling), "
              f"{warm:.2f} s with it filled")
    head = "".join(f"{e:>20s}" for e in engines)
    print(f"  {'':22s}{head}   jitgrad/numpy  jitgrad/torch")
    for mode in modes:
        times = {e: [] for e in engines}
        for _ in range(args.repeat):
            for e in engines:
                t = time.perf_counter()
                progs[e][mode]()
                times[e].append(time.perf_counter() - t)
        med = {e: statistics.median(ts) for e, ts in times.items()}
        cells = "".join(f"{med[e] * 1e3:9.2f} ms ({min(times[e]) * 1e3:6.2f})" for e in engines)
        ratios = f"{med['jitgrad'] / med['numpy']:14.2f}"
        if "torch" in med:
            ratios += f"{med['jitgrad'] / med['torch']:15.2f}"
        print(f"  {mode:22s}{cells}{ratios}")


if __name__ == "__main__":
    main()
