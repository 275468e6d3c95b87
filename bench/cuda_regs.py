"""Registers, spills and occupancy of jitgrad's main CUDA kernels, without a GPU.

Each kernel is compiled by numba-cuda's real target to PTX for sm_90 and assembled by
``ptxas -v`` (from the ``nvidia-cuda-nvcc`` wheel, or a CUDA toolkit), which reports the
registers a thread uses, any spills to local memory and the shared memory a block takes.
From those and the block size follows how many blocks fit on one multiprocessor of an H100
or H200 (65,536 registers, 228 KiB of shared memory, 2,048 threads): a kernel that fits only
one block of 256 threads keeps 8 warps per multiprocessor, few for hiding latency.

    python -m bench.cuda_regs          # each kernel as jitgrad compiles it
    python -m bench.cuda_regs --caps   # each GEMM variant under register caps 168 ... 56

A GEMM variant that jitgrad compiles with a register cap (``matmul.CAPS``, passed to
numba-cuda as ``max_registers``) is assembled with that cap, and ptxas's own choice is shown
beside it. ``--caps`` is how the caps were chosen: for each cap, the registers used, blocks
per multiprocessor, bytes spilled and instructions per step of k.

Where ``nvdisasm`` is found ($NVDISASM, PATH, or the ``nvidia-cuda-nvdisasm`` wheel, which
the test extra installs), each kernel's machine code (SASS) is read too, and the loops that
hold its multiply-adds are reported: instructions per pass, how many are FMAs, and the
shared-memory loads by width. For the GEMM the innermost loop is the k steps' outer
products and the next one out the whole k step, staging included, so the report says how
much of the hot path is arithmetic. Each GEMM tile is listed four times: with its operands
staged an element at a time, 16 bytes at a time (``16B``, as aligned operands are), or one
operand each way (``A16B``, ``B16B``).

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


_VARIANTS = {(False, False): "", (True, True): " 16B", (True, False): " A16B",
             (False, True): " B16B"}


def _kernels():
    """(name, kernel, argument types, threads per block, register cap) of the kernels worth
    watching: each GEMM tile pick() can choose, in its four staging variants (operands
    staged an element at a time, or 16 bytes at a time: both, A only, B only)."""
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
            for (va, vb), suffix in _VARIANTS.items():
                k = MM._gemm(np.dtype(dt), shape, va, vb)
                # the cap the kernel object itself carries, as numba-cuda links it
                cap = k.targetoptions.get("max_registers")
                assert cap == MM.regcap(dt, shape, va, vb), (shape, va, vb, cap)
                out.append((f"gemm {T} {tile} {shape}{suffix}", k,
                            (A, I64, I64, I64, I64, A, I64, I64, I64, I64, A, A, I64, I64,
                             I64, I64, I64, I64, I64, I64, I64), shape[0] * shape[1], cap))
    F32 = types.Array(numba.float32, 1, "C")
    flat = E.kernels(1, "tanh", np.dtype(np.float32))[0]
    out.append(("unary tanh float32 flat", flat, (F32, F32), 256, None))
    flat = E.kernels(2, "mul", np.dtype(np.float32))[0]
    out.append(("binary mul float32 flat", flat, (F32, F32, F32, I64, I64), 256, None))
    out.append(("unary tanh float32 vec (16B)", E.vector_kernel(1, "tanh", np.float32),
                (F32, F32), 256, None))
    out.append(("binary mul float32 vec (16B)", E.vector_kernel(2, "mul", np.float32),
                (F32, F32, F32), 256, None))
    rows, cols = R._sum_kernels(numba.float64)
    out.append(("sum rows float32", rows, (F32, F32, I64, I64, I64, numba.float64), 256, None))
    out.append(("sum cols float32", cols, (F32, F32, I64, I64, I64, I64, numba.float64), 256,
                None))
    # a fold (max with its index, elements into partials) in both layouts, as fold() calls it
    rows, cols = R._fold_kernels(R.EXTREME, numba.float32, False, False)
    A64 = types.Array(I64, 1, "C")
    out.append(("fold max rows float32", rows,
                (F32, F32, F32, A64, F32, I64, I64, I64, I64, numba.float64), 256, None))
    out.append(("fold max cols float32", cols,
                (F32, F32, F32, A64, F32, I64, I64, I64, I64, I64, numba.float64), 256, None))
    return out


def _loads_together(sass: str) -> int:
    """The most global loads the code issues one after another with no branch between them
    (a fold's take branches: loads behind a branch wait for it)."""
    best = run = 0
    for line in sass.splitlines():
        if "LDG" in line:
            run += 1
            best = max(best, run)
        elif re.search(r"\bBRA\b|\bEXIT\b", line):
            run = 0
    return best


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


def _assemble(ptxas: str, ptx_path: str, cubin: str, cap) -> tuple:
    """ptxas -v on a PTX file: (registers, 'spill stores/loads' in bytes, shared bytes)."""
    cmd = [ptxas, "-arch=sm_90", "-v", ptx_path, "-o", cubin]
    if cap:
        cmd.append(f"-maxrregcount={cap}")
    rep = subprocess.run(cmd, capture_output=True, text=True).stderr
    regs = int(re.search(r"Used (\d+) registers", rep).group(1))
    st, ld = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", rep).groups()
    m = re.search(r"(\d+) bytes smem", rep)
    return regs, f"{st}/{ld}", int(m.group(1)) if m else 0


def _blocks(regs: int, smem: int, threads: int) -> int:
    """Blocks per multiprocessor (registers are allocated 8 per thread at a time)."""
    regs = -(-regs // 8) * 8
    return min(REGS_PER_SM // (regs * threads), THREADS_PER_SM // threads,
               SMEM_PER_SM // smem if smem else THREADS_PER_SM // threads)


def _per_step(name: str, loops: list) -> int | None:
    """Instructions one BK-deep step of k executes, estimated from the GEMM's loops."""
    _, _, rm, rn, bk = ast.literal_eval(name[name.index("("):name.index(")") + 1])
    if len(loops) < 2:
        return None
    (n0, f0, _), (n1, _, _) = loops[:2]
    return bk * rm * rn // f0 * n0 + n1 - n0


def _sass(nvdisasm: str, cubin: str) -> str:
    return subprocess.run([nvdisasm, "-c", cubin], capture_output=True, text=True).stdout


SWEEP = (None, 168, 160, 152, 144, 136, 128, 120, 112, 104, 96, 88, 80, 72, 64, 56)


def main(argv=None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--caps", action="store_true",
                    help="sweep register caps over each GEMM variant: registers, blocks per "
                         "multiprocessor, spilled bytes and instructions per step of k")
    args = ap.parse_args(argv)
    ptxas = shutil.which("ptxas")
    if ptxas is None:
        sys.exit("bench.cuda_regs needs ptxas (pip install nvidia-cuda-nvcc)")
    nvdisasm = _nvdisasm()
    if args.caps and nvdisasm is None:
        sys.exit("bench.cuda_regs --caps needs nvdisasm (pip install nvidia-cuda-nvdisasm)")
    _target()
    from numba import cuda

    ver = subprocess.run([ptxas, "--version"], capture_output=True, text=True).stdout
    m = re.search(r"release ([\d.]+), V([\d.]+)", ver)
    print(f"# ptxas {m.group(2) if m else '(version unknown)'} for sm_90; numba-cuda links "
          "with the GPU's own assembler (nvJitLink or the driver), whose choices can differ")
    if not args.caps:
        print(f"{'kernel':44s} {'regs':>5s} {'spill st/ld':>12s} {'smem':>6s} "
              f"{'threads':>7s} {'blocks/SM':>9s} {'cap':>4s} {'uncapped':>9s}")
    hot, wide, flight = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        src, cubin = f"{tmp}/k.ptx", f"{tmp}/k.cubin"
        for name, kernel, sig, threads, cap in _kernels():
            if args.caps and not name.startswith("gemm"):
                continue
            ptx, _ = cuda.compile_ptx(kernel.py_func, sig, cc=(9, 0))
            with open(src, "w") as f:
                f.write(ptx)
            if args.caps:
                cells = []
                for c in SWEEP:
                    regs, spill, smem = _assemble(ptxas, src, cubin, c)
                    step = _per_step(name, _loops(_sass(nvdisasm, cubin)))
                    cells.append(f"{c or '-'}:{regs}r {_blocks(regs, smem, threads)}b "
                                 f"{spill.split('/')[0]}B {step}")
                print(f"{name}{' (cap ' + str(cap) + ')' if cap else ''}\n  "
                      + " | ".join(cells), flush=True)
                continue
            free = ""
            if cap:  # what ptxas does left to itself, for comparison
                r0, _, s0 = _assemble(ptxas, src, cubin, None)
                free = f"{r0}r/{_blocks(r0, s0, threads)}b"
            regs, spill, smem = _assemble(ptxas, src, cubin, cap)
            print(f"{name:44s} {regs:5d} {spill:>12s} {smem:6d} {threads:7d} "
                  f"{_blocks(regs, smem, threads):9d} {cap or '-':>4} {free or '-':>9s}",
                  flush=True)
            if nvdisasm and name.startswith("gemm"):
                hot.append((name, _loops(_sass(nvdisasm, cubin))))
            elif nvdisasm and "(16B)" in name:
                sass = _sass(nvdisasm, cubin)
                wide.append(f"  {name}: {len(re.findall(r'LDG[.]E[.]128', sass))} LDG.E.128, "
                            f"{len(re.findall(r'STG[.]E[.]128', sass))} STG.E.128")
            elif nvdisasm and name.startswith("fold"):
                flight.append(f"  {name}: {_loads_together(_sass(nvdisasm, cubin))} loads")
    if wide:
        print("\nGlobal memory accesses of 16 bytes in the elementwise kernels' vector variants:")
        print("\n".join(wide))
    if flight:
        print("\nGlobal loads a fold issues with no branch between them (in flight at once):")
        print("\n".join(flight))
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
            per_step = _per_step(name, loops)
            if per_step:
                print(f"    one step of k: about {per_step} instructions for {bk * rm * rn} "
                      f"FMAs ({bk * rm * rn / per_step:.0%})")


if __name__ == "__main__":
    main()
