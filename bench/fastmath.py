"""Float32 transcendentals at 10M elements: jitgrad (kernels/fastmath.py inside jitgrad's
elementwise kernels) against numpy and against the same kernel built over libm (what Numba's
``math.tanh`` gives), then ``(x*y + x).tanh().sum()`` forward plus backward against numpy by
hand and PyTorch.

    python bench/fastmath.py [--n 10000000] [--repeat 15] [--threads N]

Engines are interleaved (A B C A B C ...) so that machine drift lands on all of them alike;
medians are reported. First calls are timed apart, in fresh processes: with an empty Numba
cache (compilation) and with a warm one (loading the compiled kernel from disk).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np


def _interleaved(engines: dict, repeat: int) -> dict:
    """Median seconds per engine; each round runs every engine once, in rotating order."""
    for fn in engines.values():
        fn()  # warm-up
    times: dict = {name: [] for name in engines}
    names = list(engines)
    for r in range(repeat):
        for name in names[r % len(names):] + names[:r % len(names)]:
            t = time.perf_counter()
            engines[name]()
            times[name].append(time.perf_counter() - t)
    return {name: statistics.median(ts) for name, ts in times.items()}


def _first_calls(op: str) -> tuple:
    """Seconds of the first `jitgrad.<op>` on float32 in a fresh process: with an empty Numba
    cache, then again with the cache that run left. An addition runs first, so that Numba's
    own start-up (its first kernel of a process) is not counted."""
    code = (
        "import time, numpy as np, jitgrad\n"
        "x = jitgrad.tensor(np.ones(8, np.float32))\n"
        "x + x\n"
        f"t = time.perf_counter(); jitgrad.{op}(x); print(time.perf_counter() - t)\n"
    )
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        return tuple(float(subprocess.run([sys.executable, "-c", code], env=env, check=True,
                                          capture_output=True, text=True).stdout)
                     for _ in range(2))


def _libm_kernels():
    """jitgrad's unary float32 loops (serial and prange) over libm's scalar functions."""
    import numba
    from numba import njit

    from jitgrad.kernels import elementwise as ew

    libm = {
        "tanh": lambda x: math.tanh(x),
        "exp": lambda x: math.exp(x),
        "log": lambda x: math.log(x),
        "sigmoid": lambda x: numba.float32(1) / (numba.float32(1) + math.exp(-x)),
    }
    kernels = {}
    for name, fn in libm.items():
        flat, flat_par = ew._unary_loops(njit(inline="always")(fn), f"libm {name}", "")
        kernels[name] = flat_par if 10_000_000 >= ew.PARALLEL_MIN else flat
    return kernels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--threads", type=int, default=None,
                    help="threads for jitgrad's kernels and torch (default: all cores)")
    args = ap.parse_args()

    import numba

    import jitgrad

    if args.threads:
        numba.set_num_threads(args.threads)
    try:
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
    except ImportError:
        torch = None
    threads = numba.get_num_threads()
    print(f"n = {args.n:,} float32, {threads} thread(s) for jitgrad's kernels"
          + (f" and {torch.get_num_threads()} for torch" if torch else "")
          + "; numpy runs on one\n")

    rng = np.random.default_rng(0)
    x_np = rng.standard_normal(args.n, dtype=np.float32) * np.float32(3)
    pos_np = np.abs(x_np) + np.float32(1e-3)
    libm = _libm_kernels()
    out = np.empty_like(x_np)

    print("first call of jitgrad.<op>(float32), fresh process: empty Numba cache / warm cache")
    for op in ("tanh", "exp", "log", "sigmoid"):
        cold, warm = _first_calls(op)
        print(f"  {op:8s} {cold * 1e3:8.1f} ms / {warm * 1e3:6.1f} ms")

    print("\nmedian ms per call         jitgrad     numpy   libm kernel   libm / jitgrad")
    numpy_fns = {"tanh": np.tanh, "exp": np.exp, "log": np.log,
                 "sigmoid": lambda a: 1 / (1 + np.exp(-a))}
    with np.errstate(over="ignore"):
        for op in ("tanh", "exp", "log", "sigmoid"):
            a_np = pos_np if op == "log" else x_np
            a = jitgrad.tensor(a_np)
            jfn = getattr(jitgrad, op)
            med = _interleaved({
                "jitgrad": lambda: jfn(a),
                "numpy": lambda: numpy_fns[op](a_np),
                "libm": lambda: libm[op](a_np, out),
            }, args.repeat)
            print(f"  {op:22s} {med['jitgrad'] * 1e3:8.2f} {med['numpy'] * 1e3:9.2f} "
                  f"{med['libm'] * 1e3:11.2f} {med['libm'] / med['jitgrad']:13.1f}x")

    print("\n(x*y + x).tanh().sum(), forward + backward, median ms")
    y_np = rng.standard_normal(args.n, dtype=np.float32)
    xs_np = rng.standard_normal(args.n, dtype=np.float32)

    def numpy_by_hand():
        t = np.tanh(xs_np * y_np + xs_np)
        s = t.sum()
        dv = 1 - t * t
        return s, dv * y_np + dv, dv * xs_np

    def torchlike(m):
        x = m.tensor(xs_np, requires_grad=True)
        y = m.tensor(y_np, requires_grad=True)

        def run():
            x.grad = y.grad = None
            s = (x * y + x).tanh().sum()
            s.backward()
            return s, x.grad, y.grad
        return run

    engines = {"jitgrad": torchlike(jitgrad), "numpy by hand": numpy_by_hand}
    if torch is not None:
        engines["torch"] = torchlike(torch)
    t = time.perf_counter()
    engines["jitgrad"]()
    print(f"  jitgrad, first call in this process: {(time.perf_counter() - t) * 1e3:.1f} ms")
    ref = numpy_by_hand()
    for name, fn in engines.items():
        got = fn()
        for r, g in zip(ref, got):
            g = g.detach().numpy() if hasattr(g, "detach") else g
            np.testing.assert_allclose(g, r, rtol=1e-3, atol=1e-3, err_msg=name)
    med = _interleaved(engines, args.repeat)
    for name, t in med.items():
        print(f"  {name:14s} {t * 1e3:8.2f}")


if __name__ == "__main__":
    main()
