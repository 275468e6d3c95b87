"""conv2d forward and forward+backward: jitgrad against PyTorch (when installed) and numpy by
hand, at the reference case (batch 32, 3 -> 16 channels, 32x32, 3x3 kernel, padding 1, float32;
input, weight and bias require grad, ``out.backward(g)``).

    python bench/conv.py [--repeat 50] [--batch 32] [--cin 3] [--cout 16] [--hw 32] [--k 3]
                         [--engines jitgrad,torch,numpy] [--cold]

Engines are interleaved (A B C A B C ...) so that machine drift lands on all of them alike;
medians are reported, with jitgrad's median over each other engine's. All engines run in one
process, so a thread pool that one of them leaves spinning (torch's OpenMP pool) can slow the
next one down: ``--engines jitgrad`` times jitgrad alone. The first jitgrad call (import, Numba
cache load or compilation) is timed apart; ``--cold`` also times it in a fresh process with an
empty Numba cache, which is the compile time a first-time user pays.
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
from numpy.lib.stride_tricks import sliding_window_view


def numpy_engine(x, w, b, g, pad):
    """The same convolution written with numpy calls: im2col by sliding windows and one GEMM
    forward; GEMMs and a col2im of k*k shifted adds backward."""
    n, cin, hw, _ = x.shape
    cout, _, k, _ = w.shape
    wm = w.reshape(cout, cin * k * k)

    def cols():
        xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        win = sliding_window_view(xp, (k, k), axis=(2, 3))  # (n, cin, oh, ow, k, k)
        oh = win.shape[2]
        return win.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * oh, cin * k * k), oh

    def fwd():
        c, oh = cols()
        return (c @ wm.T + b).reshape(n, oh, oh, cout).transpose(0, 3, 1, 2)

    def fwd_bwd():
        c, oh = cols()
        out = (c @ wm.T + b).reshape(n, oh, oh, cout).transpose(0, 3, 1, 2)
        g2 = g.transpose(0, 2, 3, 1).reshape(n * oh * oh, cout)
        gw = (g2.T @ c).reshape(w.shape)
        gb = g2.sum(axis=0)
        gcols = (g2 @ wm).reshape(n, oh, oh, cin, k, k)
        gxp = np.zeros((n, cin, hw + 2 * pad, hw + 2 * pad), dtype=x.dtype)
        for i in range(k):
            for j in range(k):
                gxp[:, :, i:i + oh, j:j + oh] += gcols[..., i, j].transpose(0, 3, 1, 2)
        return out, gxp[:, :, pad:pad + hw, pad:pad + hw], gw, gb

    return fwd, fwd_bwd


def torchlike_engine(lib, x, w, b, g, pad):
    """jitgrad and PyTorch run the same code."""
    F = lib.nn.functional
    tx, tw, tb = (lib.tensor(a, requires_grad=True) for a in (x, w, b))
    tg = lib.tensor(g)

    def fwd():
        with lib.no_grad():
            return F.conv2d(tx, tw, tb, padding=pad)

    def fwd_bwd():
        tx.grad = tw.grad = tb.grad = None
        out = F.conv2d(tx, tw, tb, padding=pad)
        out.backward(tg)
        return out, tx.grad, tw.grad, tb.grad

    return fwd, fwd_bwd


def _arrays(res):
    return [np.asarray(r.detach().numpy() if hasattr(r, "detach") else r, dtype=np.float64)
            for r in (res if isinstance(res, tuple) else (res,))]


def _cold_first_call(args) -> float:
    """Seconds for import + first forward+backward in a fresh process, empty Numba cache."""
    code = ("import time; t = time.perf_counter(); import numpy as np, jitgrad; "
            "F = jitgrad.nn.functional; "
            f"x = jitgrad.randn({args.batch}, {args.cin}, {args.hw}, {args.hw}, "
            "requires_grad=True); "
            f"w = jitgrad.randn({args.cout}, {args.cin}, {args.k}, {args.k}, "
            "requires_grad=True); "
            f"b = jitgrad.randn({args.cout}, requires_grad=True); "
            f"F.conv2d(x, w, b, padding={args.k // 2}).sum().backward(); "
            "print(time.perf_counter() - t)")
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                             capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--cin", type=int, default=3)
    ap.add_argument("--cout", type=int, default=16)
    ap.add_argument("--hw", type=int, default=32)
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--engines", default="jitgrad,torch,numpy",
                    help="comma-separated engines to time (jitgrad is always built)")
    ap.add_argument("--cold", action="store_true",
                    help="also time import + first call with an empty Numba cache")
    args = ap.parse_args()
    pad = args.k // 2

    rng = np.random.default_rng(0)
    f32 = np.float32
    x = rng.standard_normal((args.batch, args.cin, args.hw, args.hw), dtype=f32)
    w = (rng.standard_normal((args.cout, args.cin, args.k, args.k))
         / np.sqrt(args.cin * args.k * args.k)).astype(f32)
    b = rng.standard_normal(args.cout, dtype=f32)
    g = rng.standard_normal((args.batch, args.cout, args.hw, args.hw), dtype=f32)

    t0 = time.perf_counter()
    import jitgrad

    engines = {"jitgrad": torchlike_engine(jitgrad, x, w, b, g, pad)}
    engines["jitgrad"][1]()
    first = time.perf_counter() - t0
    wanted = args.engines.split(",")
    if "torch" in wanted:
        try:
            import torch
        except ImportError:
            torch = None
        if torch is not None:
            engines["torch"] = torchlike_engine(torch, x, w, b, g, pad)
    reference = numpy_engine(x, w, b, g, pad)
    if "numpy" in wanted:
        engines["numpy"] = reference

    # Every engine computes the same values (numpy is the reference).
    ref = _arrays(reference[1]())
    for name, (_, fwd_bwd) in engines.items():
        for k, (a, r) in enumerate(zip(_arrays(fwd_bwd()), ref)):
            err = np.abs(a - r).max() / max(np.abs(r).max(), 1.0)
            assert err < 1e-4, f"{name} output {k} differs from numpy by {err:.2e} (relative)"

    threads = os.environ.get("OMP_NUM_THREADS") or os.cpu_count()
    print(f"conv2d batch {args.batch}, {args.cin}->{args.cout} ch, {args.hw}x{args.hw}, "
          f"{args.k}x{args.k}, padding {pad}, float32; {threads} cores; medians of "
          f"{args.repeat} interleaved runs")
    print(f"  first jitgrad call (import + Numba cache load or compile + run): {first:.2f} s")
    if args.cold:
        print(f"  first call in a fresh process, empty Numba cache (compile):     "
              f"{_cold_first_call(args):.2f} s")
    for mode, col in (("forward", 0), ("forward+backward", 1)):
        fns = {name: fs[col] for name, fs in engines.items()}
        for f in fns.values():
            f()
        times: dict = {name: [] for name in fns}
        for _ in range(args.repeat):
            for name, f in fns.items():
                t = time.perf_counter()
                f()
                times[name].append(time.perf_counter() - t)
        med = {name: statistics.median(ts) for name, ts in times.items()}
        cells = "   ".join(f"{name} {m * 1e3:6.2f} ms (min {min(times[name]) * 1e3:5.2f})"
                           for name, m in med.items())
        ratios = "   ".join(f"jitgrad/{name} {med['jitgrad'] / m:.2f}"
                            for name, m in med.items() if name != "jitgrad")
        print(f"  {mode:17s} {cells}   {ratios}".rstrip())


if __name__ == "__main__":
    main()
