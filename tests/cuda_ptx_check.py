"""Compile jitgrad's CUDA kernels to PTX for a real GPU (sm_90) without one.

The simulator runs kernels as Python, so it cannot tell whether a kernel compiles for the
device (a numpy ufunc in a body, a non-constant shared-array size, ...). NVVM can: this
script builds each kernel family's kernels with numba-cuda's real target and compiles them
with explicit argument types. It prints one line per failure and "compiled N kernels".

Run without NUMBA_ENABLE_CUDASIM; tests/test_cuda.py calls it in subprocesses, one per CPU
core (up to 4), each compiling its share: ``--shard=K/N`` compiles every N-th kernel from
the K-th (0-based) of a listing in a fixed order, prints the position and name of each
kernel it compiles and a digest of the whole listing, so the caller can check that the N
shards listed the same kernels and compiled each exactly once.
"""

from __future__ import annotations

import hashlib
import sys

import numba
import numba.cuda.dispatcher as _disp
from numba import types


class _Device:  # what the device-function compiler asks of the current device
    compute_capability = (9, 0)


_disp.get_current_device = lambda: _Device()

from jitgrad.kernels.cuda import runtime  # noqa: E402

runtime._props.update(block=256, max_blocks=132 * 32, warp=32, sms=132)

from numba import cuda  # noqa: E402

import importlib  # noqa: E402

from jitgrad.kernels import scalar  # noqa: E402


def family(name: str):
    """A module of kernels/cuda (the package's attribute of that name may be a launcher)."""
    return importlib.import_module(f"jitgrad.kernels.cuda.{name}")


E, MM, R = family("elementwise"), family("matmul"), family("reduce")

F32, F64, I64, B1 = numba.float32, numba.float64, numba.int64, numba.boolean


def arr(T):
    return types.Array(T, 1, "C")


def tup(n):
    return types.UniTuple(I64, n)


failures: list = []
count = 0  # kernels listed (all shards)
mine = 0  # kernels this shard compiles
SHARD, SHARDS, SHARDED = 0, 1, False
for _arg in sys.argv[1:]:
    if _arg.startswith("--shard="):
        SHARD, SHARDS = (int(v) for v in _arg.split("=", 1)[1].split("/"))
        SHARDED = True  # (then each kernel compiled is named, for the caller to check)
if not 0 <= SHARD < SHARDS:
    sys.exit(f"--shard=K/N needs 0 <= K < N, got {SHARD}/{SHARDS}")


listed: list = []  # every kernel's name, in the order listed (the same in every shard)


def check(what: str, kernel, argtys: tuple) -> None:
    global count, mine
    count += 1
    listed.append(what)
    if (count - 1) % SHARDS != SHARD:
        return
    mine += 1
    if SHARDED:
        print("KERNEL", count - 1, what)
    try:
        cuda.compile_ptx(kernel.py_func, argtys, cc=(9, 0))
    except Exception as e:  # noqa: BLE001 - report every failure, keep going
        failures.append(f"{what}: {type(e).__name__}: {str(e).splitlines()[0][:200]}")


_CMP = {"eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or"}

for name in scalar.UNARY:
    for T in (F32, F64):
        flat, strided = E.kernels(1, name, numba.np.numpy_support.as_dtype(T))
        out = B1 if name == "logical_not" else T
        check(f"unary {name} {T}", flat, (arr(T), arr(out)))
        check(f"unary {name} {T} strided", strided, (arr(T), I64, tup(2), tup(2), arr(out)))
        if out is T:  # operands of the output's dtype: the 16-byte variant
            check(f"unary {name} {T} vec",
                  E.vector_kernel(1, name, numba.np.numpy_support.as_dtype(T)),
                  (arr(T), arr(T)))

for name in scalar.BINARY:
    for T in (F32, F64, I64) if name not in ("atan2", "logaddexp") else (F32, F64):
        if T is I64 and name.endswith("_backward"):
            continue
        dt = numba.np.numpy_support.as_dtype(T)
        flat, flat_as, flat_sa, strided = E.kernels(2, name, dt)
        out = B1 if name in _CMP else T
        check(f"binary {name} {T}", flat, (arr(T), arr(T), arr(out), I64, I64))
        check(f"binary {name} {T} scalar", flat_as, (arr(T), T, arr(out), I64))
        check(f"binary {name} {T} strided", strided,
              (arr(T), I64, tup(2), arr(T), I64, tup(2), tup(2), arr(out)))
        if out is T:
            check(f"binary {name} {T} vec", E.vector_kernel(2, name, dt),
                  (arr(T), arr(T), arr(T)))

for name in scalar.TERNARY:
    for T in (F32, F64):
        dt = numba.np.numpy_support.as_dtype(T)
        flat_ss, strided = E.kernels(3, name, dt)
        first = B1 if name == "where" else T
        check(f"ternary {name} {T}", flat_ss, (arr(first), T, T, arr(T), I64))
        check(f"ternary {name} {T} strided", strided,
              (arr(first), I64, tup(2), arr(T), I64, tup(2), arr(T), I64, tup(2), tup(2),
               arr(T)))

for S, D in ((F32, F64), (F64, F32), (F32, I64), (I64, F32), (F32, B1), (B1, F32)):
    ks = E._copiers(numba.np.numpy_support.as_dtype(S), numba.np.numpy_support.as_dtype(D))
    flat, strided, fill, gather, scatter = ks
    check(f"copy {S}->{D}", flat, (arr(S), arr(D)))
    check(f"copy {S}->{D} strided", strided, (arr(S), I64, tup(3), tup(3), arr(D), I64, tup(3),
                                              I64))
    check(f"fill {S}->{D}", fill, (arr(D), I64, tup(2), tup(2), S, I64))
    check(f"gather {S}->{D}", gather, (arr(S), I64, arr(I64), arr(D)))
    check(f"scatter {S}->{D}", scatter, (arr(D), I64, arr(I64), arr(S), I64))

for T in (F32, F64, I64, numba.int32):  # the types a 16-byte copy moves
    check(f"copy {T} vec", E._vector_copier(numba.np.numpy_support.as_dtype(T)),
          (arr(T), arr(T)))

for acc in (F64, I64):
    rows, cols = R._sum_kernels(acc)
    for T in (F32, F64) if acc is F64 else (I64,):
        # the result, float64 (int64) partials, or float64 losses summed into float32
        for O in sorted({T, acc} | ({F32} if acc is F64 else set()), key=str):
            check(f"sum rows {T}->{O}", rows, (arr(T), arr(O), I64, I64, I64, acc))
            check(f"sum cols {T}->{O}", cols, (arr(T), arr(O), I64, I64, I64, I64, acc))
for T in (F32, F64, I64):
    for shape in (MM.SHAPE, MM.LARGE) if T is F32 else (MM.SHAPE,):  # what pick() can use
        for va, vb in ((False, False), (True, False), (False, True), (True, True)):
            # each operand staged an element or 16 bytes at a time
            check(f"gemm {T} {shape} {va} {vb}",
                  MM._gemm(numba.np.numpy_support.as_dtype(T), shape, va, vb),
                  (arr(T), I64, I64, I64, I64, arr(T), I64, I64, I64, I64, arr(T), arr(T),
                   I64, I64, I64, I64, I64, I64, I64, I64, I64))

# Families that register extra checks: a module-level PTX_CHECKS list of
# (what, kernel, argument types) in kernels/cuda/<family>.py.
for name in ("scan", "softmax", "movement", "index", "ordered", "conv", "pool", "norm", "loss",
             "embedding", "pointwise", "optim", "reduce", "sort"):
    mod = family(name)
    for what, kernel, argtys in getattr(mod, "ptx_checks", lambda: [])():
        check(what, kernel, argtys)

for f in failures:
    print("FAIL", f)
digest = hashlib.sha1("\n".join(listed).encode()).hexdigest()
print(f"compiled {mine - len(failures)} of {mine} kernels" +
      (f" (shard {SHARD}/{SHARDS} of {count}, listing {digest})" if SHARDED else ""))
sys.exit(1 if failures else 0)
