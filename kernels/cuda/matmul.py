"""Matrix products for CUDA: a tiled shared-memory GEMM with register blocking.

Each block of TY x TX threads computes a BM x BN tile of C (BM = TY * RM, BN = TX * RN): per
step of k it stages a BM x BK tile of A and a BK x BN tile of B in shared memory, and each
thread accumulates RM x RN outputs in registers. A thread's rows (and columns) come in runs
of V neighbours, so one 16-byte shared load fetches a run. The shared tiles are double
buffered: while the block multiplies one step's tiles, each thread has the next step's
elements in flight from global memory and then stores them to the other buffer, one barrier
a step. Operands are read through their strides, so a transposed weight (``x @ w.T``) or a
broadcast batch costs no copy; an operand the host finds aligned is read from global memory
16 bytes at a time (``_vector_ok``), any other an element at a time.

``python -m bench.cuda_regs`` reports the kernels' registers and, from their machine code,
how much of a step of k is FMAs; tests/test_bench.py holds the 16-byte loads in place.
"""

from __future__ import annotations

import numba
import numpy as np

from .array import CudaArray, empty
from .launch import launch
from . import vector
from .runtime import SIM, _device_props, address, cuda

# (TY, TX, RM, RN, BK): 16 x 16 threads with 8 x 8 outputs each (128 x 128 tiles) for
# products large enough to give every multiprocessor such tiles, 4 x 4 each (64 x 64 tiles)
# below that; the simulator runs one Python thread per CUDA thread, so it gets small tiles.
SHAPE = (2, 2, 2, 2, 4) if SIM else (16, 16, 4, 4, 16)
LARGE = (2, 2, 4, 4, 2) if SIM else (16, 16, 8, 8, 8)
_kernels: dict = {}
ALIGN = None if SIM else 16  # shared tiles on 16 bytes, for 16-byte loads (the simulator
# takes no alignment)
FORCE = None  # a tile shape every product uses (the benchmark compares the two)
REGS = None  # a register cap every kernel made from now on takes instead of CAPS' (0: none)
SPLIT = None  # how many k chunks every product splits into (tests of the split-K pass)

# Registers per thread the GEMM may use (numba-cuda's max_registers, ptxas's maxrregcount),
# by (dtype, tile, A staged 16 bytes at a time, B likewise). Left to itself ptxas gives these
# variants a few registers too many for one more block of 256 threads per multiprocessor
# (65,536 registers: 2 blocks need 128 or fewer, 3 need 80, 4 need 64); capped, the same
# instructions per step of k (within 3%) stay in registers, none spilled, and the
# multiprocessor holds twice the warps (128x128: 1 block -> 2; float64 1 -> 2; 64x64: 3 -> 4,
# mixed staging 1 -> 2). The caps are ptxas's own odd optimum, not round numbers (for the
# 128x128 tile 120 keeps everything in registers where 128 spills), so `python -m
# bench.cuda_regs --caps` sweeps them and tests/test_bench.py holds each to its promise.
CAPS = {} if SIM else {
    (np.dtype(np.float32), LARGE, True, True): 120,
    (np.dtype(np.float32), SHAPE, True, True): 64,
    (np.dtype(np.float32), SHAPE, False, True): 120,
    (np.dtype(np.float64), SHAPE, False, False): 128,
    (np.dtype(np.float64), SHAPE, False, True): 128,
    (np.dtype(np.float64), SHAPE, True, False): 128,
}


# Variants whose cap made this machine's assembler spill (see _check_cap): they go uncapped.
SPILLED: set = set()


def regcap(dtype, shape: tuple, va: bool, vb: bool) -> int | None:
    """The register cap a GEMM variant is compiled with (None: ptxas's own choice)."""
    if REGS is not None:
        return REGS or None
    key = (np.dtype(dtype), shape, va, vb)
    return None if key in SPILLED else CAPS.get(key)


def _check_cap(kern, key: tuple) -> bool:
    """After a capped kernel's first launch (numba-cuda compiles it then, with the GPU's
    own assembler, which need not choose as the ptxas that picked CAPS did): if the cap made
    it spill registers to local memory, the variant goes uncapped from the next product on
    (its plans are rebuilt). Returns whether it did."""
    try:
        local = kern.get_local_mem_per_thread()
    except Exception:  # no compiled overload to ask (a stand-in driver)
        return False
    sizes = local.values() if isinstance(local, dict) else (local,)
    if not any(v > 0 for v in sizes):
        return False
    SPILLED.add(key)
    _plans.clear()
    return True


def _stager(T, L: int, total: int, NT: int, BK: int, R: int):
    """Device functions that stage one operand's tile (`total` elements, L per thread of
    NT; R rows by BK k, laid out k-major in shared memory: sh[k * R + row]).

    `setup`, once per output tile, works out each of a thread's elements' shared position
    and global offset at the first k (neighbouring threads on neighbouring addresses: along
    k when that is the operand's contiguous dim, else along its rows). A row past the
    matrix's edge reads its last row instead: it feeds only outputs that are never
    written, and no check is left in the loads. `fetch` reads one k step of the tile into
    registers and moves the offsets on by one step; only the last, partial step checks k
    (0 past its end). `stash` writes the registers to the shared tile. Offsets and
    positions are unsigned when used, so no negative-index code is made."""
    EVEN = total % NT == 0  # every thread stages L elements (no tail to skip)
    U = numba.uint64

    @cuda.jit(device=True)
    def setup(base, s_r, s_k, r0, k0, rmax, k_fast, tid, off, sh):
        for l in range(L):
            e = tid + l * NT
            if k_fast:
                r = e // BK
                kk = e % BK
            else:
                kk = e // R
                r = e % R
            sh[l] = kk * R + r
            off[l] = base + min(r0 + r, rmax - 1) * s_r + (k0 + kk) * s_k

    @cuda.jit(device=True)
    def fetch(X, off, sh, krem, step, regs, tid, k_fast):  # (k_fast: as _vector_stager's)
        if krem >= BK:
            for l in range(L):
                if EVEN or tid + l * NT < total:
                    regs[l] = X[U(off[l])]
                    off[l] += step
        else:
            for l in range(L):
                if EVEN or tid + l * NT < total:
                    regs[l] = X[U(off[l])] if U(sh[l]) // U(R) < U(krem) else T(0)

    @cuda.jit(device=True)
    def stash(tile, at, sh, regs, tid, k_fast):
        for l in range(L):
            if EVEN or tid + l * NT < total:
                tile[at + U(sh[l])] = regs[l]

    return setup, fetch, stash


def _vector_fits(shape: tuple, VL: int) -> bool:
    """Whether a tile can stage in groups of VL neighbours: every thread the same number of
    whole groups, none across a k step or a row block."""
    TY, TX, RM, RN, BK = shape
    NT = TY * TX
    return all(n % VL == 0 and (n * BK) % (NT * VL) == 0 for n in (TY * RM, TX * RN)) and \
        BK % VL == 0


def _vector_stager(T, L: int, NT: int, BK: int, R: int, VL: int):
    """`_stager` for an operand the host has found aligned: each thread stages groups of VL
    neighbours along the operand's contiguous dim (k when k_fast, else its rows), one
    16-byte load per group. The group's first element is on a 16-byte boundary: the host
    checked the base address and the other strides, and k steps and row blocks start on
    multiples of VL. Groups never straddle an edge: along rows the row count is a multiple
    of VL, and along k so is K. A group past the matrix's last row reads the last group; in
    the last, partial step of k a group past K is 0."""
    G = L // VL  # groups per thread
    U = numba.uint64
    load = vector.loader(VL)
    store = vector.storer(VL)

    @cuda.jit(device=True)
    def setup(base, s_r, s_k, r0, k0, rmax, k_fast, tid, off, sh):
        for g in range(G):
            e = (tid + g * NT) * VL
            if k_fast:
                r = e // BK
                kk = e % BK
                rr = min(r0 + r, rmax - 1)
            else:
                kk = e // R
                r = e % R
                rr = min(r0 + r, rmax - VL)
            sh[g] = kk * R + r
            off[g] = base + rr * s_r + (k0 + kk) * s_k

    @cuda.jit(device=True)
    def fetch(X, off, sh, krem, step, regs, tid, k_fast):
        if krem >= BK:
            for g in range(G):
                v = load(X, U(off[g]))
                for c in range(VL):
                    regs[g * VL + c] = v[c]
                off[g] += step
        else:  # a group lies wholly inside k or wholly past it (K is a multiple of VL)
            for g in range(G):
                if U(sh[g]) // U(R) < U(krem):
                    v = load(X, U(off[g]))
                    for c in range(VL):
                        regs[g * VL + c] = v[c]
                else:
                    for c in range(VL):
                        regs[g * VL + c] = T(0)

    @cuda.jit(device=True)
    def stash(tile, at, sh, regs, tid, k_fast):
        for g in range(G):
            p = at + U(sh[g])
            if k_fast:  # a group spans VL k: VL rows of the k-major tile
                for c in range(VL):
                    tile[p + U(c * R)] = regs[g * VL + c]
            else:  # VL neighbouring rows at one k: one 16-byte store
                store(tile, p, regs, g * VL)

    return setup, fetch, stash


def _twice(steps, da: int, db: int):
    """A device function doing `steps` twice, the second time da and db further on in the
    shared tiles."""
    U = numba.uint64

    @cuda.jit(device=True)
    def twice(sA, sB, pa, pb, av, bv, acc):
        steps(sA, sB, pa, pb, av, bv, acc)
        steps(sA, sB, pa + U(da), pb + U(db), av, bv, acc)

    return twice


def _gemm(dtype, shape: tuple = SHAPE, va: bool = False, vb: bool = False):
    """The GEMM kernel for a dtype and tile; va (vb): A's (B's) tile is staged 16 bytes at a
    time (the host has checked the operand's alignment, see `_vector_ok`)."""
    dt = np.dtype(dtype)
    cap = regcap(dt, shape, va, vb)
    key = (dt, shape, va, vb, cap)
    k = _kernels.get(key)
    if k is not None:
        return k
    TY, TX, RM, RN, BK = shape
    BM, BN = TY * RM, TX * RN
    NT = TY * TX
    T = numba.from_dtype(dt)
    ACC = T if dt.kind == "f" else numba.int64

    LA = (BM * BK + NT - 1) // NT  # elements of the A tile each thread stages, B's below
    LB = (BK * BN + NT - 1) // NT
    I64 = numba.int64
    U = numba.uint64
    SA, SB = BK * BM, BK * BN  # shared tile sizes
    SA2, SB2 = 2 * SA, 2 * SB  # (constants, as shared arrays need)
    VL = vector.width(dt.itemsize)
    if (va or vb) and not _vector_fits(shape, VL):
        raise ValueError(f"GEMM tile {shape} cannot stage {dt} in groups of {VL}")
    setup_a, fetch_a, stash_a = (_vector_stager(T, LA, NT, BK, BM, VL) if va else
                                 _stager(T, LA, SA, NT, BK, BM))
    setup_b, fetch_b, stash_b = (_vector_stager(T, LB, NT, BK, BN, VL) if vb else
                                 _stager(T, LB, SB, NT, BK, BN))
    I32 = numba.int32
    # each thread's rows (and columns) come in runs of V neighbours, V * TY apart, so one
    # 16-byte shared load can fetch a run: V is the widest power of two up to 16 bytes that
    # divides both RM and RN (the mapping of outputs to threads relies on that)
    V = 1
    while 2 * V * dt.itemsize <= 16 and RM % (2 * V) == 0 and RN % (2 * V) == 0:
        V *= 2

    @cuda.jit(device=True)
    def outer(sA, sB, pa, pb, av, bv, acc):
        """acc += the outer product of A's column and B's row of one k (at shared positions
        pa and pb, unsigned: no negative-index code on each load)"""
        for p in range(RM):
            av[p] = sA[pa + U((p // V) * (TY * V) + p % V)]
        for q in range(RN):
            bv[q] = sB[pb + U((q // V) * (TX * V) + q % V)]
        for p in range(RM):
            for q in range(RN):
                acc[p, q] += av[p] * bv[q]

    # k steps per pass of the innermost loop (written out, as the compiler does not unroll
    # it): about 128 FMAs a pass, so that the loop's own instructions are few beside them
    steps, UN = outer, 1
    while UN < BK and BK % (2 * UN) == 0 and UN * RM * RN < 128:
        steps = _twice(steps, UN * BM, UN * BN)
        UN *= 2

    @cuda.jit(**({} if cap is None or SIM else {"max_registers": cap}))
    def gemm(A, a0, sab, sam, sak, B, b0, sbb, sbk, sbn, C, D, d0, sdm, sdn, bias, M, N, K,
             nbatch, kc):
        """C[s, z, i, j] = sum over k in the s-th chunk of kc of A[z, i, k] * B[z, k, j]
        (strided A and B; one chunk, s = 0, when kc >= K), plus D[i, j] (strided, for
        addmm's bias) in chunk 0 when `bias` is set"""
        # two buffers per operand: sA[h * SA + kk * BM + i] = A[i0 + i, k0 + kk], B's alike
        sA = cuda.shared.array(SA2, T, alignment=ALIGN)
        sB = cuda.shared.array(SB2, T, alignment=ALIGN)
        acc = cuda.local.array((RM, RN), ACC)
        av = cuda.local.array(RM, T)
        bv = cuda.local.array(RN, T)
        oa = cuda.local.array(LA, I64)  # this thread's elements (or groups) of A's tile:
        pa_ = cuda.local.array(LA, I32)  # global offset, shared position; values fetched a
        # step ahead
        ra = cuda.local.array(LA, T)
        ob = cuda.local.array(LB, I64)  # B's likewise (its rows are C's columns)
        pb_ = cuda.local.array(LB, I32)
        rb = cuda.local.array(LB, T)
        ty = cuda.threadIdx.y
        tx = cuda.threadIdx.x
        tid = ty * TX + tx
        a_kfast = sak == 1 or sam != 1
        b_kfast = not (sbn == 1 or sbk != 1)
        tm = (M + BM - 1) // BM
        tn = (N + BN - 1) // BN
        ns = (K + kc - 1) // kc
        for tile in range(cuda.blockIdx.x, nbatch * ns * tm * tn, cuda.gridDim.x):
            z = tile // (ns * tm * tn)
            rest = tile % (ns * tm * tn)
            sk = rest // (tm * tn)
            rest = rest % (tm * tn)
            klo = sk * kc
            khi = min(K, klo + kc)
            i0 = (rest // tn) * BM
            j0 = (rest % tn) * BN
            for p in range(RM):
                for q in range(RN):
                    acc[p, q] = 0
            setup_a(a0 + z * sab, sam, sak, i0, klo, M, a_kfast, tid, oa, pa_)
            setup_b(b0 + z * sbb, sbn, sbk, j0, klo, N, b_kfast, tid, ob, pb_)
            fetch_a(A, oa, pa_, khi - klo, BK * sak, ra, tid, a_kfast)
            fetch_b(B, ob, pb_, khi - klo, BK * sbk, rb, tid, b_kfast)
            stash_a(sA, U(0), pa_, ra, tid, a_kfast)
            stash_b(sB, U(0), pb_, rb, tid, b_kfast)
            cuda.syncthreads()
            h = U(0)  # the buffer holding this step's tiles; the next step's go to the other
            for k0 in range(klo, khi, BK):
                more = k0 + BK < khi
                if more:  # the next step's loads are in flight during the products
                    fetch_a(A, oa, pa_, khi - k0 - BK, BK * sak, ra, tid, a_kfast)
                    fetch_b(B, ob, pb_, khi - k0 - BK, BK * sbk, rb, tid, b_kfast)
                pa = h * U(SA) + U(ty * V)
                pb = h * U(SB) + U(tx * V)
                for _ in range(BK // UN):
                    steps(sA, sB, pa, pb, av, bv, acc)
                    pa += U(UN * BM)
                    pb += U(UN * BN)
                h = U(1) - h
                if more:
                    stash_a(sA, h * U(SA), pa_, ra, tid, a_kfast)
                    stash_b(sB, h * U(SB), pb_, rb, tid, b_kfast)
                # one barrier a step: the stores above are seen by the next products, and
                # this step's products are done before the buffer they read is refilled
                cuda.syncthreads()
            addb = bias and sk == 0
            crow = (sk * nbatch + z) * M
            gj0 = j0 + tx * V
            for p in range(RM):
                gi = i0 + ty * V + (p // V) * (TY * V) + p % V
                if gi < M:
                    cb = (crow + gi) * N + gj0
                    db = d0 + gi * sdm + gj0 * sdn
                    for q in range(RN):
                        dq = (q // V) * (TX * V) + q % V
                        if gj0 + dq < N:
                            v = T(acc[p, q])
                            if addb:
                                v += D[U(db + dq * sdn)]
                            C[U(cb + dq)] = v

    _kernels[key] = gemm
    return gemm


def tiles(shape: tuple, nb: int, M: int, N: int) -> int:
    TY, TX, RM, RN, _ = shape
    return nb * -(-M // (TY * RM)) * -(-N // (TX * RN))


def _chunk(shape: tuple, t: int, K: int, dtype) -> int:
    """The k range each block sums: all of K, or (a float product with fewer tiles than the
    card has multiprocessors and a long K) a chunk of it, so that more blocks share the work;
    a second pass adds the chunks' products (split-K). Chunks are at least 256 long: a
    shorter one saves less time than the second launch costs."""
    BK = shape[4]
    sms = _device_props()["sms"]
    n = SPLIT or (1 if t >= sms or np.dtype(dtype).kind != "f" else
                  min(-(-sms // t), K // 256, 16))
    if n <= 1:
        return K
    kc = -(-K // n)
    return -(-kc // BK) * BK


def pick(nb: int, M: int, N: int, dtype=np.float32) -> tuple:
    """The tile shape for a product: the large one when it still gives every multiprocessor
    a tile (its 64 accumulators per thread pay off only with the card full), for 4-byte
    types (with 8-byte ones it would spill registers)."""
    if np.dtype(dtype).itemsize > 4:
        return SHAPE
    return LARGE if tiles(LARGE, nb, M, N) >= _device_props()["sms"] else SHAPE


def _batch_stride(x: CudaArray, batch: tuple) -> tuple:
    """x (broadcast to `batch` + its last two dims) as (array, one batch stride in
    elements): 0 when x has no batch of its own, else its batch dims must fold into one."""
    nb = x.ndim - 2
    own = x.shape[:nb]
    isz = x.itemsize
    if all(n == 1 for n in own):
        return x, 0
    if own == batch:  # the batch dims of more than one element must fold into one
        dims = [(n, s) for n, s in zip(own, x.strides[:nb]) if n != 1]
        if all(s0 == s1 * n1 for (_, s0), (n1, s1) in zip(dims, dims[1:])):
            return x, dims[-1][1] // isz
    full = x.broadcast_to(batch + x.shape[-2:]).copy()
    return full, (full.strides[len(batch) - 1] // isz) if batch else 0


_plans: dict = {}


def _plan(nb: int, M: int, N: int, K: int, dtype) -> list:
    """[tile, group width (0: the tile cannot stage in groups), grid, block, k chunk, chunk
    count, its kernels by vector flags] for a product, worked out once per problem size (a
    training loop repeats a few)."""
    key = (nb, M, N, K, dtype, FORCE, SPLIT, REGS)
    p = _plans.get(key)
    if p is None:
        shape = FORCE or pick(nb, M, N, dtype)
        t = tiles(shape, nb, M, N)
        kc = _chunk(shape, t, K, dtype)
        ns = -(-K // kc)
        grid = min(t * ns, _device_props()["max_blocks"] * 4 if not SIM else 2)
        VL = vector.width(np.dtype(dtype).itemsize)
        if len(_plans) >= 1024:
            _plans.clear()
        p = _plans[key] = [shape, VL if _vector_fits(shape, VL) else 0, grid,
                           (shape[1], shape[0]), kc, ns, [None] * 4]
    return p


def _vector_ok(view, start: int, s_r: int, s_k: int, s_batch: int, rows: int, K: int,
               k_fast: bool, VL: int) -> bool:
    """Whether an operand can be staged VL elements (16 bytes) at a time: contiguous along
    the dim the kernel stages it along (k when k_fast, else its rows), that dim's length a
    multiple of VL, its other stride and batch stride multiples of VL, and its first element
    on a 16-byte boundary."""
    if k_fast:
        if s_k != 1 or s_r % VL or K % VL:
            return False
    elif s_r != 1 or s_k % VL or rows % VL:
        return False
    return s_batch % VL == 0 and (address(view) + start * view.dtype.itemsize) % 16 == 0


def _product(a: CudaArray, sab: int, b: CudaArray, sbb: int, out: CudaArray, nb: int,
             M: int, N: int, K: int, bias: CudaArray | None = None) -> CudaArray:
    """out (nb, M, N) = a @ b (+ bias, an (M, N) view, for nb == 1), the operands' batches
    `sab` and `sbb` elements apart (0: no batch of its own); returns out, or a fresh array
    of its shape after split-K."""
    if out.size == 0:
        return out
    if K == 0:
        if bias is None:
            out.fill(0)
        else:
            from .elementwise import assign

            assign(out, bias)
        return out
    shape, VL, grid, block, kc, ns, kerns = _plan(nb, M, N, K, a.dtype)
    A, a0, sa = a.strided()
    B, b0, sb = b.strided()
    sam, sak = sa[-2], sa[-1]
    sbk, sbn = sb[-2], sb[-1]
    va = vb = False
    if VL:  # each operand staged along the dim the kernel picks (its k_fast below)
        va = _vector_ok(A, a0, sam, sak, sab, M, K, sak == 1 or sam != 1, VL)
        vb = _vector_ok(B, b0, sbn, sbk, sbb, N, K, sbk == 1 and sbn != 1, VL)
    i = 2 * va + vb
    kern = kerns[i]
    fresh = kern is None
    if fresh:
        kern = kerns[i] = _gemm(a.dtype, shape, va, vb)
    dst = out if ns == 1 else empty((ns * out.size,), a.dtype)
    o = dst.flat()
    if bias is None:  # D unread: any array of the type other than the output (the
        D, d0, sd, hb = A, 0, (0, 0), 0  # simulator copies each argument back)
    else:
        D, d0, sd = bias.strided()
        hb = 1
    launch(kern, grid, block, A, a0, sab, sam, sak, B, b0, sbb, sbk, sbn,
           o, D, d0, sd[0], sd[1], hb, M, N, K, nb, kc)
    if fresh and not SIM and REGS is None and kern.targetoptions.get("max_registers"):
        _check_cap(kern, (np.dtype(a.dtype), shape, va, vb))  # (a cap of CAPS, not forced)
    if ns > 1:  # the chunks' partial products, summed in float64
        from .reduce import sum_

        out = sum_(dst.reshape(1, ns, out.size), a.dtype).reshape(out.shape)
    return out


def _shapes_error(a: CudaArray, b: CudaArray) -> ValueError:
    return ValueError(f"matmul: shapes {a.shape} and {b.shape} do not multiply (inner "
                      "dimensions differ)")


def addmm(bias: CudaArray, a: CudaArray, b: CudaArray) -> CudaArray:
    """bias + a @ b for matrices a (M, K) and b (K, N), bias broadcastable to (M, N) and of
    their dtype: the bias is added as the product is written, in one launch."""
    M, K = a.shape
    N = b.shape[1]
    if b.shape[0] != K or a.dtype != b.dtype or bias.dtype != a.dtype:
        raise ValueError(f"addmm: bias {bias.shape} {bias.dtype}, mat1 {a.shape} {a.dtype}, "
                         f"mat2 {b.shape} {b.dtype} do not fit")
    return _product(a, 0, b, 0, empty((M, N), a.dtype), 1, M, N, K,
                    bias.broadcast_to((M, N)))


def matmul(a: CudaArray, b: CudaArray) -> CudaArray:
    """(..., n, k) @ (..., k, m) -> (..., n, m), batch dimensions broadcast; 1-D operands
    as in numpy."""
    if a.ndim == 2 and b.ndim == 2:  # the common case, without batch bookkeeping
        M, K = a.shape
        N = b.shape[1]
        if b.shape[0] != K:
            raise _shapes_error(a, b)
        return _product(a, 0, b, 0, empty((M, N), a.dtype), 1, M, N, K)
    va, vb = a.ndim == 1, b.ndim == 1
    if va:
        a = a.reshape(1, a.shape[0])
    if vb:
        b = b.reshape(b.shape[0], 1)
    if b.shape[-2] != a.shape[-1]:
        raise _shapes_error(a, b)
    batch = tuple(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]))
    M, K = a.shape[-2:]
    N = b.shape[-1]
    out = empty(batch + (M, N), a.dtype)
    nb = 1
    for n in batch:
        nb *= n
    if out.size and K:
        a, sab = _batch_stride(a, batch)
        b, sbb = _batch_stride(b, batch)
    else:
        sab = sbb = 0
    out = _product(a, sab, b, sbb, out, nb, M, N, K)
    if va and vb:
        return out.reshape(batch)
    if va:
        return out.reshape(batch + (N,))
    if vb:
        return out.reshape(batch + (M,))
    return out
