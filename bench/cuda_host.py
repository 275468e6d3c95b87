"""Host time of jitgrad's GPU code path on a machine without a GPU.

The MLP training step on the GPU is bound by the host: Python and launches, not kernels (see
docs/cuda.md). This script runs that step through the real (non-simulator) CUDA code path
with the driver replaced by stubs, so the Python cost of a step can be measured and profiled
anywhere:

- device memory: the caching allocator hands out fake addresses (nothing is dereferenced);
- launches: every launch takes the direct path; the first launch of a signature builds an
  entry whose packing layout follows the argument values, later launches pack their
  arguments into it exactly as on a GPU, and the driver call itself is a no-op;
- transfers and synchronisation do nothing (downloads read zeros).

What it measures: jitgrad's Python per step (the op layer, autograd, the CUDA launchers, the
packing of launch arguments). What it leaves out: the driver's own time per launch (about
6-9 us on the H200 machines measured so far) and the kernels. Numbers are for comparing two
versions of jitgrad on the same machine, not for quoting as GPU step times.

    python -m bench.cuda_host            # median host time per step, launches and calls
    python -m bench.cuda_host --profile  # plus cProfile's top functions
    python -m bench.cuda_host --phases   # plus the host time of each phase of a step
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def _stub_driver():
    """Point jitgrad's CUDA runtime at stubs (before any CUDA tensor exists)."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        sys.exit("bench.cuda_host measures the GPU code path: unset NUMBA_ENABLE_CUDASIM")
    import numpy as np

    from jitgrad.kernels.cuda import array, launch, runtime

    runtime.available = lambda: True
    runtime._props.update(block=256, max_blocks=132 * 32, warp=32, sms=132)  # an H200
    runtime.synchronize = lambda: None
    nxt = [1 << 32]

    def raw(self, size):
        self.driver_allocs += 1
        p = nxt[0]
        nxt[0] += size
        return p, p

    runtime.CachingAllocator._raw = raw
    runtime.CachingAllocator._free_raw = lambda self, mem: None

    def download(src_view, dst):
        dst[...] = 0

    for mod in (runtime, array):
        mod.upload = lambda dst_view, src: None
        mod.download = download

    counts = {"launches": 0}

    def cu(*a):
        counts["launches"] += 1
        return (0,)

    def code(v):
        if v.__class__ is bool or isinstance(v, np.bool_):
            return "?"
        if isinstance(v, np.float32):
            return "f"
        if isinstance(v, (float, np.floating)):
            return "d"
        return "q"

    def learn(key, kernel, args):
        codes = [code(v) for v in launch._flatten(args, [])]
        try:
            e = launch._Entry(kernel, 0, codes, args)
        except TypeError:  # jitgrad before the generated packers (to compare versions)
            e = launch._Entry(kernel, 0, codes)
        e.fn = (cu,) + e.fn[1:]
        launch._entries[key] = e

    def first(kernel, grid, block, args):  # a new signature: counted as a launch
        counts["launches"] += 1

    launch._numba_launch = first
    launch._learn = learn
    launch._state.update(direct=True, probed=True, why_off=None)
    return counts


def mlp(jitgrad, batch=128, sizes=(784, 256, 256, 10), phases=None):
    """The step; with a dict `phases`, each phase's host time is added to it (seconds)."""
    import numpy as np

    jitgrad.manual_seed(0)
    i, h1, h2, o = sizes
    nn = jitgrad.nn
    net = nn.Sequential(nn.Linear(i, h1), nn.ReLU(), nn.Linear(h1, h2), nn.ReLU(),
                        nn.Linear(h2, o)).to("cuda")
    opt = jitgrad.optim.SGD(net.parameters(), lr=0.01)
    xb = jitgrad.tensor(np.random.rand(batch, i).astype(np.float32), device="cuda")
    yb = jitgrad.tensor(np.random.randint(0, o, batch), device="cuda")

    def step():
        opt.zero_grad()
        nn.functional.cross_entropy(net(xb), yb).backward()
        opt.step()

    if phases is None:
        return step
    clock = time.perf_counter

    def timed(name, fn, *args):
        t0 = clock()
        out = fn(*args)
        phases[name] = phases.get(name, 0.0) + clock() - t0
        return out

    def step_in_phases():
        timed("zero_grad", opt.zero_grad)
        h = xb
        for k, layer in enumerate(net):
            h = timed(f"{k}: {type(layer).__name__}", layer, h)
        loss = timed("cross_entropy", nn.functional.cross_entropy, h, yb)
        timed("backward", loss.backward)
        timed("optimizer step", opt.step)
    return step_in_phases


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--phases", action="store_true")
    args = ap.parse_args(argv)
    counts = _stub_driver()
    import jitgrad

    step = mlp(jitgrad)
    for _ in range(5):
        step()
    n0 = counts["launches"]
    step()
    per_step = counts["launches"] - n0
    times = []
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        for _ in range(args.reps):
            step()
        times.append((time.perf_counter() - t0) / args.reps)
    times.sort()
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    for _ in range(20):
        step()
    prof.disable()
    st = pstats.Stats(prof)
    print(f"MLP 784-256-256-10 SGD step, batch 128, GPU code path with the driver stubbed:\n"
          f"  host time per step: median {times[len(times) // 2] * 1e6:.0f} us "
          f"(min {times[0] * 1e6:.0f}, {args.rounds} rounds of {args.reps})\n"
          f"  launches per step: {per_step}\n"
          f"  Python calls per step: {st.total_calls / 20:.0f}")
    if args.phases:
        phases: dict = {}
        split = mlp(jitgrad, phases=phases)
        for _ in range(5):
            split()
        phases.clear()
        for _ in range(args.reps):
            split()
        print("  host time per phase (mean of "
              f"{args.reps} steps): " + ", ".join(f"{k} {v / args.reps * 1e6:.0f} us"
                                                  for k, v in phases.items()))
    if args.profile:
        st.sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
