"""GPU figures for jitgrad beside PyTorch CUDA, in one run on one card.

    python bench/gpu.py            # on a machine with an NVIDIA GPU (torch CUDA optional)
    python bench/gpu.py --quick    # tiny sizes and a tiny MLP: checks the script itself
                                   # (also under NUMBA_ENABLE_CUDASIM=1: times mean nothing)

Prints: copy bandwidth (the card's reference), elementwise and reduction bandwidth (sum,
max, argmax, std, a column max, cumsum) in GB/s and as a share of copy bandwidth, a sort of
1M elements, per-launch overhead (a raw kernel launch, and a whole tiny op through the
Python path), float32 GEMM TFLOP/s at 4096 (PyTorch with TF32 off), the 10M-element
``(x*y + x).tanh().sum()`` forward plus backward, and the MLP 784-256-256-10 SGD step at batch
128. Every figure is a median over rounds, timed with CUDA events after synchronising; the
first call (compile) is reported apart. Results also go to bench/results/gpu-<time>.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import time
import traceback

import numpy as np
from numba import cuda  # a GPU script: the CUDA stack is what it measures

import jitgrad


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None


class Timer:
    """Median seconds per call of fn over `rounds` rounds of `reps` calls, CUDA events."""

    def __init__(self, lib):
        self.lib = lib

    def _events(self):
        if self.lib == "torch":
            import torch

            return (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True),
                    lambda s, e: s.elapsed_time(e) / 1e3)
        return (cuda.event(timing=True), cuda.event(timing=True),
                lambda s, e: cuda.event_elapsed_time(s, e) / 1e3)

    def sync(self):
        if self.lib == "torch":
            import torch

            torch.cuda.synchronize()
        else:
            jitgrad.cuda.synchronize()

    def __call__(self, fn, reps: int, rounds: int) -> tuple:
        self.sync()
        t0 = time.perf_counter()
        fn()
        self.sync()
        first = time.perf_counter() - t0
        times = []
        sim = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
        for _ in range(rounds):
            self.sync()
            if sim:  # the simulator has no events
                t0 = time.perf_counter()
                for _ in range(reps):
                    fn()
                times.append((time.perf_counter() - t0) / reps)
                continue
            start, end, elapsed = self._events()
            start.record()
            for _ in range(reps):
                fn()
            end.record()
            end.synchronize()
            times.append(elapsed(start, end) / reps)
        return statistics.median(times), first


def _kernel_times(step, steps: int = 20) -> str:
    """Each kernel's share of a step: every launch followed by a synchronise, so a launch's
    time is its kernel's plus the launch cost (a breakdown, not the step's speed)."""
    import collections

    from jitgrad.kernels.cuda import launch as L

    spent: dict = collections.defaultdict(float)
    count: dict = collections.Counter()
    orig = L.launch

    def timed(kernel, grid, block, *a):
        t0 = time.perf_counter()
        orig(kernel, grid, block, *a)
        cuda.synchronize()
        name = getattr(getattr(kernel, "py_func", kernel), "__qualname__", repr(kernel))
        spent[name] += time.perf_counter() - t0
        count[name] += 1

    mods = [m for n, m in sys.modules.items()
            if n.startswith("jitgrad.kernels.cuda") and getattr(m, "launch", None) is orig]
    for m in mods:
        m.launch = timed
    try:
        step()
        spent.clear()
        count.clear()
        cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        cuda.synchronize()
        total = (time.perf_counter() - t0) / steps
    finally:
        for m in mods:
            m.launch = orig
    lines = [f"kernel times per step, each launch synchronised (step {total * 1e6:.0f} us):"]
    for name, t in sorted(spent.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {t / steps * 1e6:9.1f} us  {count[name] / steps:4.1f} launches  {name}")
    lines.append(f"  {(total - sum(spent.values()) / steps) * 1e6:9.1f} us  outside launches")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes (checks the script)")
    ap.add_argument("--profile", metavar="FILE", help="write a cProfile of 20 MLP steps here")
    ap.add_argument("--gemm-tiles", default="", metavar="TILES",
                    help="more GEMM tiles to time, as 'TY,TX,RM,RN,BK[,REGS];...' (threads "
                         "per block in y and x, outputs per thread in y and x, k step; "
                         "optionally a register cap per thread, 0 for none)")
    args = ap.parse_args()
    try:
        extra_tiles = [tuple(int(v) for v in t.split(","))
                       for t in args.gemm_tiles.split(";") if t.strip()]
    except ValueError:
        extra_tiles = [()]
    if any(len(t) not in (5, 6) or min(t[:5]) < 1 or min(t) < 0 for t in extra_tiles):
        ap.error(f"--gemm-tiles: each tile is five positive integers and an optional "
                 f"register cap, got {args.gemm_tiles!r}")
    extra_tiles = [(t[:5], t[5] if len(t) == 6 else None) for t in extra_tiles]
    q = args.quick
    torch = _torch()
    J, T = Timer("jitgrad"), Timer("torch")
    reps, rounds = (1, 1) if q else (20, 7)
    rows: list = []

    def row(name, jit, ref, unit, note=""):
        rows.append(dict(case=name, jitgrad=jit, torch=ref, unit=unit, note=note))
        t = f"{ref:10.2f}" if ref is not None else f"{'-':>10}"
        print(f"{name:34} {jit:10.2f} {t}  {note}", flush=True)

    failed: list = []

    @contextlib.contextmanager
    def section(name):
        """One figure's code: a failure is printed and recorded, and the next figure runs."""
        try:
            yield
        except Exception:  # noqa: BLE001  (a bench run reports every figure it can)
            failed.append(name)
            print(f"-- {name} failed:", flush=True)
            traceback.print_exc(file=sys.stdout)

    print(f"{'case':34} {'jitgrad':>10} {'torch':>10}  note", flush=True)

    # ---- copy and elementwise bandwidth
    n = 256 if q else 1 << 26  # 256 MiB per float32 array
    copy_bw = None
    tx = ty = None
    with section("bandwidth"):
        x = jitgrad.randn(n, device="cuda")
        y = jitgrad.randn(n, device="cuda")
        tc = None
        if torch is not None:
            tx, ty = torch.randn(n, device="cuda"), torch.randn(n, device="cuda")
            tout = torch.empty_like(tx)
            tc, _ = T(lambda: tout.copy_(tx), reps, rounds)
        jc, jcf = J(lambda: x.clone(), reps, rounds)
        copy_bw = 2 * 4 * n / (tc if tc else jc) / 1e9
        row("copy bandwidth (GB/s)", 2 * 4 * n / jc / 1e9, copy_bw if tc else None, "GB/s",
            f"the card's reference: torch copy_; jitgrad clone first call {jcf * 1e3:.0f} ms")
        jm, jfirst = J(lambda: x * y, reps, rounds)
        tm = T(lambda: tx * ty, reps, rounds)[0] if torch else None
        row("x * y bandwidth (GB/s)", 3 * 4 * n / jm / 1e9, 3 * 4 * n / tm / 1e9 if tm else None,
            "GB/s", f"jitgrad at {3 * 4 * n / jm / 1e9 / copy_bw:.0%} of copy; first call "
                    f"{jfirst * 1e3:.0f} ms")
        jt, jtf = J(lambda: x.tanh(), reps, rounds)
        tt = T(lambda: tx.tanh(), reps, rounds)[0] if torch else None
        row("tanh bandwidth (GB/s)", 2 * 4 * n / jt / 1e9, 2 * 4 * n / tt / 1e9 if tt else None,
            "GB/s", f"jitgrad at {2 * 4 * n / jt / 1e9 / copy_bw:.0%} of copy; first call "
                    f"{jtf * 1e3:.0f} ms")
        js, _ = J(lambda: x.sum(), reps, rounds)
        ts_ = T(lambda: tx.sum(), reps, rounds)[0] if torch else None
        row("sum bandwidth (GB/s)", 4 * n / js / 1e9, 4 * n / ts_ / 1e9 if ts_ else None,
            "GB/s", f"jitgrad at {4 * n / js / 1e9 / copy_bw:.0%} of copy")
    x = y = tx = ty = tout = None  # free the large arrays

    # ---- launch overhead
    with section("launch"):
        from jitgrad.kernels import cuda as K
        from jitgrad.kernels.cuda import launch as L

        s = jitgrad.ones(1, device="cuda")
        d = s._data
        jl, _ = J(lambda: K.unary("neg", d), 200 if not q else 1, rounds)
        jo, _ = J(lambda: s + 1, 200 if not q else 1, rounds)
        to_ = None
        if torch is not None:
            ts = torch.ones(1, device="cuda")
            to_, _ = T(lambda: ts + 1, 200, rounds)
        row("one kernel op (us, GPU time)", jl * 1e6, None, "us",
            "K.unary on a 1-element array, events")

        # the same one-thread kernel launched through numba-cuda's dispatch and through
        # jitgrad's direct path: host wall time per launch (launches queued, one synchronise)
        @cuda.jit
        def bump(v, k):
            i = cuda.grid(1)
            if i < k:
                v[i] += 1.0

        kt = jitgrad.zeros(1, device="cuda")
        ka = kt._data.flat()
        dev_arg = ka.dev() if hasattr(ka, "dev") else ka
        t0 = time.perf_counter()
        direct_on = L.direct_enabled()  # runs the self-check probe on first use
        probe_s = time.perf_counter() - t0

        def per_launch(fn, calls):
            fn()
            jitgrad.cuda.synchronize()
            ts = []
            for _ in range(rounds):
                t0 = time.perf_counter()
                for _ in range(calls):
                    fn()
                jitgrad.cuda.synchronize()
                ts.append((time.perf_counter() - t0) / calls)
            return statistics.median(ts)

        calls = 2 if q else 2000
        ln = per_launch(lambda: bump[1, 32](dev_arg, 1), calls)
        ld = per_launch(lambda: L.launch(bump, 1, 32, ka, 1), calls)
        got = kt.item()
        row("launch via numba-cuda (us)", ln * 1e6, None, "us", "bump[1, 32](array, 1), host time")
        row("launch via jitgrad direct (us)", ld * 1e6, None, "us",
            (f"direct path on, {ln / ld:.1f}x fewer us; probe {probe_s * 1e3:.0f} ms once; "
             f"bumps counted {got:.0f} of {2 * (rounds * calls + 1)}"
             if direct_on else f"direct path off: {L._state['why_off']}"))
        host = per_launch(lambda: s + 1, 200 if not q else 1)
        row("tiny op s + 1 (us, host)", host * 1e6, None, "us", "whole Python path, host time")
        if torch is not None:
            th = per_launch(lambda: ts + 1, 200)
            rows[-1]["torch"] = th * 1e6
            print(f"{'':34} {'':10} {th * 1e6:10.2f}  (torch, host time)", flush=True)
        row("tiny op s + 1 (us, GPU time)", jo * 1e6, to_ * 1e6 if to_ else None, "us",
            "whole Python path, events")
        # reading one value back (a training loop's loss.item()): a synchronising download
        from jitgrad.kernels.cuda import runtime as RT

        one = jitgrad.ones((), device="cuda")
        it = per_launch(lambda: one.item(), 200 if not q else 1)
        row("x.item() of one element (us, host)", it * 1e6, None, "us",
            f"direct copies {'on' if RT.copies['direct'] else 'off: ' + str(RT.copies['why_off'])}"
            f", {RT.copies['count']} made")
        if torch is not None:
            tone = torch.ones((), device="cuda")
            rows[-1]["torch"] = per_launch(lambda: tone.item(), 200) * 1e6
            print(f"{'':34} {'':10} {rows[-1]['torch']:10.2f}  (torch, host time)", flush=True)

    # ---- GEMM
    with section("gemm"):
        m = 16 if q else 4096
        a = jitgrad.randn(m, m, device="cuda")
        b = jitgrad.randn(m, m, device="cuda")
        jg, jgf = J(lambda: a @ b, 1 if q else 5, rounds)
        tg = None
        if torch is not None:
            torch.backends.cuda.matmul.allow_tf32 = False
            ta, tb = torch.randn(m, m, device="cuda"), torch.randn(m, m, device="cuda")
            tg, _ = T(lambda: ta @ tb, 5, rounds)
        fl = 2 * m ** 3
        import importlib

        MM = importlib.import_module("jitgrad.kernels.cuda.matmul")
        picked = MM.pick(1, m, m)

        def regs(shape, cap=None):  # the register cap of the variant aligned operands take
            key = (np.dtype(np.float32), shape, True, True)
            if cap is None and key in MM.SPILLED:
                return ", registers uncapped (its cap spilled with this GPU's assembler)"
            cap = MM.regcap(np.float32, shape, True, True) if cap is None else cap
            return f", registers capped at {cap}" if cap else ", registers uncapped"
        row(f"GEMM {m} float32 (TFLOP/s)", fl / jg / 1e12, fl / tg / 1e12 if tg else None,
            "TFLOP/s", (f"jitgrad at {tg / jg:.0%} of torch; " if tg else "")
            + f"tile {picked}{regs(picked)}; first call {jgf:.2f} s")
        ha, hb = a.cpu().numpy()[:64].astype(np.float64), b.cpu().numpy().astype(np.float64)
        want = ha @ hb

        def error():
            err = float(np.max(np.abs((a @ b).cpu().numpy()[:64] - want)))
            rows[-1]["note"] += f"; max |error| in 64 rows {err:.1e}"
            print(f"{'':34} max |error| of 64 rows against float64: {err:.1e}", flush=True)
        error()
        # other tiles, for comparison: each tile with its register cap and, where it has
        # one, without (what the cap gains), then those asked for
        others = [(t, c) for t in (MM.SHAPE, MM.LARGE)
                  for c in ((None, 0) if MM.regcap(np.float32, t, True, True) else (None,))]
        for other, cap in others + extra_tiles:
            if (other, cap) == (picked, None):
                continue
            MM.FORCE, MM.REGS = other, cap
            try:
                jo_, jof = J(lambda: a @ b, 1 if q else 5, rounds)
                row(f"GEMM {m} float32, other tile", fl / jo_ / 1e12, None, "TFLOP/s",
                    f"tile {other}{regs(other, cap)}; first call {jof:.2f} s")
                error()
            finally:
                MM.FORCE = MM.REGS = None
        a = b = ta = tb = None

    # ---- (x*y + x).tanh().sum() forward + backward
    with section("tanh case"):
        n = 256 if q else 10_000_000
        xa, ya = np.random.randn(n).astype(np.float32), np.random.randn(n).astype(np.float32)

        def fb(lib, dev_x, dev_y):
            def step():
                dev_x.grad = None
                dev_y.grad = None
                (dev_x * dev_y + dev_x).tanh().sum().backward()
            return step

        jx = jitgrad.tensor(xa, device="cuda", requires_grad=True)
        jy = jitgrad.tensor(ya, device="cuda", requires_grad=True)
        je, jef = J(fb(jitgrad, jx, jy), reps, rounds)
        te = None
        if torch is not None:
            tx = torch.tensor(xa, device="cuda", requires_grad=True)
            ty = torch.tensor(ya, device="cuda", requires_grad=True)
            te, _ = T(fb(torch, tx, ty), reps, rounds)
            gj = jx.grad.cpu().numpy()
            gt = tx.grad.cpu().numpy()
            err = float(np.max(np.abs(gj - gt)))
        row(f"(x*y + x).tanh().sum() n={n:.0e} (ms)", je * 1e3, te * 1e3 if te else None, "ms",
            (f"ratio {je / te:.2f}x; max |grad - torch's| {err:.1e}; " if te else "")
            + f"first call {jef:.2f} s")

    # ---- MLP step
    def mlp_step(lib, batch=128, sizes=(784, 256, 256, 10)):
        lib.manual_seed(0)
        i, h1, h2, o = sizes
        net = lib.nn.Sequential(lib.nn.Linear(i, h1), lib.nn.ReLU(), lib.nn.Linear(h1, h2),
                                lib.nn.ReLU(), lib.nn.Linear(h2, o)).to("cuda")
        opt = lib.optim.SGD(net.parameters(), lr=0.01)
        xb = lib.tensor(np.random.rand(batch, i).astype(np.float32), device="cuda")
        yb = lib.tensor(np.random.randint(0, o, batch), device="cuda")

        def step():
            opt.zero_grad()
            loss = lib.nn.functional.cross_entropy(net(xb), yb)
            loss.backward()
            opt.step()
            return loss
        return step

    with section("mlp"):
        sizes = (16, 8, 8, 4) if q else (784, 256, 256, 10)
        jstep = mlp_step(jitgrad, 4 if q else 128, sizes)
        jmlp, jmf = J(jstep, reps, rounds)
        tmlp = T(mlp_step(torch, 4 if q else 128, sizes), reps, rounds)[0] if torch else None
        row("MLP " + "-".join(map(str, sizes)) + " step (ms)", jmlp * 1e3,
            tmlp * 1e3 if tmlp else None, "ms",
            (f"ratio {jmlp / tmlp:.2f}x; " if tmlp else "") + f"first call {jmf:.1f} s")
        # host time of one step, launches queued (is the step bound by Python or the GPU?)
        jitgrad.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(reps):
            jstep()
        host = (time.perf_counter() - t0) / reps
        jitgrad.cuda.synchronize()
        row("MLP step host time (ms)", host * 1e3, None, "ms", "Python and launches, no sync")
        # a training loop that reads its loss every step (loss.item(): a synchronising copy)
        jit_item, _ = J(lambda: jstep().item(), reps, rounds)
        tstep = mlp_step(torch, 4 if q else 128, sizes) if torch else None
        t_item = T(lambda: tstep().item(), reps, rounds)[0] if torch else None
        row("MLP step + loss.item() (ms)", jit_item * 1e3, t_item * 1e3 if t_item else None,
            "ms", f"ratio {jit_item / t_item:.2f}x" if t_item else "")
        if args.profile:  # where the host time of a step goes, for the next session
            import cProfile
            import io
            import pstats

            prof = cProfile.Profile()
            prof.enable()
            for _ in range(20):
                jstep()
            jitgrad.cuda.synchronize()
            prof.disable()
            buf = io.StringIO()
            st = pstats.Stats(prof, stream=buf)
            buf.write(f"{st.total_calls / 20:.0f} Python calls per step\n")
            st.sort_stats("tottime").print_stats(30)
            st.sort_stats("cumulative").print_stats(40)
            buf.write("\n" + _kernel_times(jstep))
            with open(args.profile, "w") as f:
                f.write(buf.getvalue())

    # ---- the other reductions (folds), a scan and a sort, after the figures
    with section("reductions"):
        x = jitgrad.randn(n, device="cuda")
        tx = torch.randn(n, device="cuda") if torch is not None else None
        # one long axis, then 4096 columns (x as rows of 4096)
        m = 1 if q else 4096
        for name, fn, reads in (
                ("max", lambda t: t.max(), 1), ("argmax", lambda t: t.argmax(), 1),
                ("std", lambda t: t.std(), 2),  # the mean, then the deviations: two reads
                ("column amax", lambda t: t.view(-1, m).amax(0), 1),
                ("cumsum", lambda t: t.cumsum(0), 2)):  # reads x, writes the sums
            jr, _ = J(lambda: fn(x), reps, rounds)
            tr = T(lambda: fn(tx), reps, rounds)[0] if torch else None
            row(f"{name} bandwidth (GB/s)", reads * 4 * n / jr / 1e9,
                reads * 4 * n / tr / 1e9 if tr else None, "GB/s",
                f"jitgrad at {reads * 4 * n / jr / 1e9 / copy_bw:.0%} of copy")
        ns = 256 if q else 1 << 20  # one long row: the bitonic network
        jso, jsof = J(lambda: x[:ns].sort(), reps, rounds)
        tso = T(lambda: tx[:ns].sort(), reps, rounds)[0] if torch else None
        row(f"sort n={ns:.0e} (ms)", jso * 1e3, tso * 1e3 if tso else None, "ms",
            f"first call {jsof * 1e3:.0f} ms")
        x = tx = None

    try:
        from jitgrad.kernels.cuda import launch as L

        print(f"\nlaunches by path: {L.stats}; direct path why off: {L._state['why_off']}; "
              f"signatures refused: {L.refusals[:8]}", flush=True)
    except Exception as e:  # noqa: BLE001
        print("launch stats unavailable:", e)

    dev = jitgrad.cuda.get_device_name()
    print(f"\n{dev}, jitgrad {jitgrad.__version__ if hasattr(jitgrad, '__version__') else ''}, "
          f"torch {torch.__version__ if torch else 'absent'}\n")
    print(f"{'case':34} {'jitgrad':>10} {'torch':>10}  note")
    for r in rows:
        t = f"{r['torch']:10.2f}" if r["torch"] is not None else f"{'-':>10}"
        print(f"{r['case']:34} {r['jitgrad']:10.2f} {t}  {r['note']}")
    if failed:
        print(f"\nfailed figures: {', '.join(failed)}")
    out = os.environ.get("OUT") or os.path.join(os.path.dirname(__file__), "results")
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, f"gpu-{time.strftime('%Y%m%d-%H%M%S')}.json")
    with open(path, "w") as f:
        json.dump(dict(device=dev, python=platform.python_version(), quick=q, rows=rows,
                       failed=failed), f, indent=1)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
