"""Registers, spills and occupancy of jitgrad's main CUDA kernels, without a GPU.

Each kernel is compiled by numba-cuda's real target to PTX for sm_90 and assembled by
``ptxas -v`` (from the ``nvidia-cuda-nvcc`` wheel, or a CUDA toolkit), which reports the
registers a thread uses, any spills to local memory and the shared memory a block takes.
From those and the block size follows how many blocks fit on one multiprocessor of an H100
or H200 (65,536 registers, 228 KiB of shared memory, 2,048 threads): a kernel that fits only
one block of 256 threads keeps 8 warps per multiprocessor, few for hiding latency.

    python -m bench.cuda_regs

Where ``nvdisasm`` is found ($NVDISASM, PATH, or the ``nvidia-cuda-nvdisasm`` wheel, which
the test extra installs), each kernel's machine code (SASS) is read too, and the loops that
hold its multiply-adds are reported: instructions per pass, how many are FMAs, and the
shared-memory loads by width. For the GEMM the innermost loop is the k steps' outer
products and the next one out the whole k step, staging included, so the report says how
much of the hot path is arithmetic. Each GEMM tile is listed twice: with its operands
staged an element at a time, and (``16B``) 16 bytes at a time, as aligned operands are.

Static figures: they say what the compiler made, not how fast it runs.
"""

from __future__ import annotations

import ast
import importlib
import os
import re
import shutil
import subprocess
import sys
import tempfile

REGS_PER_SM, SMEM_PER_SM, THREADS_PER_SM = 65536, 228 * 1024, 2048


def _target():
    """numba-cuda's real target, compiling for sm_90 with no device present."""
    import numba.cuda.dispatcher as disp

    class _Device:
        compute_capability = (9, 0)

    disp.get_current_device = lambda: _Device()
    from jitgrad.kernels.cuda import runtime

    runtime._props.update(block=256, max_blocks=132 * 32, warp=32, sms=132)


def _kernels():
    """(name, kernel, argument types, threads per block) of the kernels worth watching."""
    import numba
    import numpy as np
    from numba import types

    MM = importlib.import_module("jitgrad.kernels.cuda.matmul")
    E = importlib.import_module("jitgrad.kernels.cuda.elementwise")
    R = importlib.import_module("jitgrad.kernels.cuda.reduce")
    I64 = numba.int64
    out = []
    for dt in (np.float32, np.float64):
        T = numba.from_dtype(np.dtype(dt))
        A = types.Array(T, 1, "C")
        for tile in ("SHAPE", "LARGE"):
            shape = getattr(MM, tile)
            if shape not in (MM.SHAPE, MM.pick(1, 1 << 14, 1 << 14, dt)):
                continue  # a tile products never pick for this dtype
            for grouped in (False, True):  # operands staged 4 or 16 bytes at a time
                out.append((f"gemm {T} {tile} {shape}" + (" 16B" if grouped else ""),
                            MM._gemm(np.dtype(dt), shape, grouped, grouped),
                            (A, I64, I64, I64, I64, A, I64, I64, I64, I64, A, A, I64, I64,
                             I64, I64, I64, I64, I64, I64, I64), shape[0] * shape[1]))
    F32 = types.Array(numba.float32, 1, "C")
    flat = E.kernels(1, "tanh", np.dtype(np.float32))[0]
    out.append(("unary tanh float32 flat", flat, (F32, F32), 256))
    flat = E.kernels(2, "mul", np.dtype(np.float32))[0]
    out.append(("binary mul float32 flat", flat, (F32, F32, F32, I64, I64), 256))
    rows, cols = R._sum_kernels(numba.float64)
    out.append(("sum rows float32", rows, (F32, F32, I64, I64, I64, numba.float64), 256))
    out.append(("sum cols float32", cols, (F32, F32, I64, I64, I64, I64, numba.float64), 256))
    return out


def _loops(sass: str) -> list:
    """The loops of a disassembled kernel that hold FMAs, innermost first, each as
    (instructions, FMAs, {shared load: count}) of one pass, found from the backward
    branches (static counts: a pass's untaken branches are counted too)."""
    at, ins = {}, []
    for line in sass.splitlines():
        m = re.match(r"^(\.L_x_\d+):", line)
        if m:
            at[m.group(1)] = len(ins)
            continue
        m = re.match(r"\s+/\*[0-9a-f]+\*/\s+(.*?)\s*;", line)
        if m:
            ins.append(m.group(1))
    out = []
    for end, text in enumerate(ins):
        m = re.search(r"BRA\s+`\((\.L_x_\d+)\)", text)
        start = at.get(m.group(1)) if m else None
        if start is None or start > end:
            continue
        ops = [re.sub(r"^@!?U?P\w+\s+", "", t).split()[0] for t in ins[start:end + 1]]
        fma = sum(o.split(".")[0] in ("FFMA", "DFMA") for o in ops)
        if fma:
            lds: dict = {}
            for o in ops:
                if o.startswith("LDS"):
                    lds[o] = lds.get(o, 0) + 1
            out.append((end - start + 1, fma, lds))
    return sorted(out)


def _nvdisasm() -> str | None:
    """The disassembler: $NVDISASM, on PATH, or from NVIDIA's pip wheel."""
    found = os.environ.get("NVDISASM") or shutil.which("nvdisasm")
    if found:
        return found
    import glob
    import importlib.util

    spec = importlib.util.find_spec("nvidia")
    for root in (spec.submodule_search_locations or []) if spec else []:
        for path in sorted(glob.glob(os.path.join(root, "cu*", "bin", "nvdisasm"))):
            if os.access(path, os.X_OK):
                return path
    return None


def main() -> None:
    ptxas = shutil.which("ptxas")
    if ptxas is None:
        sys.exit("bench.cuda_regs needs ptxas (pip install nvidia-cuda-nvcc)")
    nvdisasm = _nvdisasm()
    _target()
    from numba import cuda

    print(f"{'kernel':44s} {'regs':>5s} {'spill st/ld':>12s} {'smem':>6s} {'threads':>7s} "
          f"{'blocks/SM':>9s}")
    hot = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, kernel, sig, threads in _kernels():
            ptx, _ = cuda.compile_ptx(kernel.py_func, sig, cc=(9, 0))
            src = f"{tmp}/k.ptx"
            with open(src, "w") as f:
                f.write(ptx)
            rep = subprocess.run([ptxas, "-arch=sm_90", "-v", src, "-o", f"{tmp}/k.cubin"],
                                 capture_output=True, text=True).stderr
            regs = int(re.search(r"Used (\d+) registers", rep).group(1))
            st, ld = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads",
                               rep).groups()
            m = re.search(r"(\d+) bytes smem", rep)
            smem = int(m.group(1)) if m else 0
            fit = min(REGS_PER_SM // (regs * threads), THREADS_PER_SM // threads,
                      SMEM_PER_SM // smem if smem else THREADS_PER_SM // threads)
            print(f"{name:44s} {regs:5d} {st + '/' + ld:>12s} {smem:6d} {threads:7d} {fit:9d}")
            if nvdisasm and name.startswith("gemm"):
                sass = subprocess.run([nvdisasm, "-c", f"{tmp}/k.cubin"], capture_output=True,
                                      text=True).stdout
                hot.append((name, _loops(sass)))
    if hot:
        print("\nGEMM loops holding FMAs (static instructions per pass, innermost first), and "
              "an estimate of what one\nBK-deep step of k executes: the inner loop's passes "
              "plus the rest of the step's loop (its\nuntaken partial-step branch included, "
              "so the estimate is high):")
        for name, loops in hot:
            parts = [f"{n} instr, {f} FMA ({f / n:.0%}), shared loads "
                     + (", ".join(f"{c} {o}" for o, c in sorted(lds.items())) or "none")
                     for n, f, lds in loops]
            print(f"  {name}: " + " | ".join(parts))
            _, _, rm, rn, bk = ast.literal_eval(name[name.index("("):name.index(")") + 1])
            if len(loops) >= 2:
                (n0, f0, _), (n1, _, _) = loops[:2]
                per_step = bk * rm * rn // f0 * n0 + n1 - n0
                print(f"    one step of k: about {per_step} instructions for {bk * rm * rn} "
                      f"FMAs ({bk * rm * rn / per_step:.0%})")

if __name__ == "__main__":
    main()
