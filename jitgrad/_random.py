"""Random number generation that reproduces PyTorch's CPU random streams bit for bit.

PyTorch's CPU generator is a 32-bit Mersenne Twister (MT19937) seeded with Knuth's
``init_genrand`` recurrence on the low 32 bits of the seed.  Every CPU sampler draws
from it one element at a time, in memory order, either one 32-bit word (``random()``)
or two words glued high-first into a 64-bit value (``random64()``).  This module keeps
the same state in a ``numpy.random.MT19937`` bit generator (whose ``random_raw``
yields the very same 32-bit words) and replays, with vectorised numpy code, what each
of torch's kernels does with those words:

``uniform`` (``torch.rand`` / ``uniform_``)
    float32: the low 24 bits of one word times 2**-24; float64: the low 53 bits of a
    64-bit draw times 2**-53; then ``fma(x, high - low, low)`` in the element type (the
    kernel is compiled with FMA contraction), and a value that rounds up to ``high``
    is replaced by ``low``.

``normal`` (``torch.randn`` / ``normal_``)
    Fewer than 16 elements: the scalar Box-Muller sampler in double precision, which
    draws two 53-bit uniforms per pair, returns ``r*cos`` and caches ``r*sin`` in the
    generator for the next scalar call (the cache survives across calls, is cleared by
    ``manual_seed`` and is part of ``get_state``).  16 elements or more: all uniforms
    are drawn first, then each block of 16 becomes 8 (cos, sin) pairs; if the size is
    not a multiple of 16, 16 more uniforms are drawn and the last 16 outputs are
    recomputed from them (float16, computed in float, draws 16 uniforms per block
    instead of all of them up front, so it draws 16 * ceil(n / 16) in all).  For
    float32 torch runs its AVX2 kernel (torch never dispatches the normal kernel to
    AVX-512), which uses the Cephes-style polynomial
    ``log``/``sincos`` approximations of ``avx_mathfun.h`` with fused multiply-adds;
    those polynomials are reproduced here operation by operation, with exact float32
    FMA emulation.  For float64 torch calls libm's ``log`` and ``sincos``; we call the
    same libm functions through numpy (verified at first use, with a ``math`` module
    fallback) and emulate the final ``fma(value, std, mean)`` exactly.

``randint`` (``torch.randint`` / ``random_(from, to)``)
    ``(word % range) + low`` with a 32-bit word, or a 64-bit draw when the range is at
    least 2**28 (any dtype).  For float dtypes the bounds are first pulled inwards
    where ``low + 1`` / ``high - 1`` are not representable, as torch does.

``randperm``
    torch's in-place shuffle ``swap(a[i], a[i + random() % (n - i)])`` for
    n < 214748364, and its "inside-out" shuffle with ``random64() % (i + 1)`` above.
    Both are inherently sequential; they are evaluated here without a per-element
    Python loop by grouping the swaps by target position and resolving the resulting
    chains with pointer jumping.

``bernoulli``
    A float ``p`` (``bernoulli_(p)``, dropout masks): ``uniform53 < p`` in double.  An
    array ``p`` (``torch.bernoulli(p)``): float64 ``p`` compares a 53-bit uniform,
    any other float ``p`` a 24-bit float32 uniform, in C order of the output.

What matches torch exactly (checked against PyTorch 2.13 CPU on x86-64 in
``tests/test_random.py``): all of the above, for float32 and float64 (``normal``,
``uniform`` and ``randint`` also for float16 through torch's float opmath), any
mean/std/low/high, for any seed (``manual_seed`` takes torch's [-2**63, 2**64) range
and keeps the whole value as ``initial_seed``), across sequences of calls, and the
``get_state`` bytes, which are the 5056-byte layout of ``torch.get_rng_state()`` and
can be exchanged with torch in both directions.

Seeding at start-up: every new ``Generator()`` starts from 67280421310721, torch's
``default_rng_seed_val``, as a fresh ``torch.Generator()`` does. The default generator,
like torch 2.13's, is seeded from OS entropy when the module is imported
(``initial_seed()`` differs from run to run); ``manual_seed`` makes a run reproducible,
and after the same ``manual_seed`` jitgrad and torch draw the same numbers.

Known limits:

* The float32 ``normal`` values for 16+ elements follow torch's x86-64 AVX2 kernel,
  which is what torch uses on every x86-64 CPU with AVX2 (its default).  A torch that
  runs its DEFAULT (no AVX2) kernels (``ATEN_CPU_CAPABILITY=default``, or an old x86
  CPU) or a non-x86 build (ARM/Apple, POWER) computes those values with scalar libm
  ``logf``/``cosf``/``sinf`` instead: the random stream and its consumption are the
  same, but the values differ in the last bits.  Those kernels are also compiled
  without FMA contraction, so ``uniform`` with ``(low, high) != (0, 1)`` and the
  scalar (< 16 elements) ``normal`` with ``(mean, std) != (0, 1)`` may differ there in
  the last bit; float64 ``normal`` for 16+ elements still matches (it uses an
  explicit ``std::fma``).
* float64 ``normal`` for 16+ elements is exact as long as numpy/``math`` reach the same
  libm (glibc) that torch's binary uses, which is the case on Linux.
* torch uses the scalar (cached) normal path also for non-contiguous tensors of 16+
  elements (``x[:, ::2].normal_()``); the producers here always fill a fresh
  contiguous array, i.e. they reproduce ``torch.randn``/``empty(...).normal_()``.
* Older torch releases built with MKL drew ``bernoulli_(p)`` (and so dropout masks)
  on Intel CPUs from an MKL stream; the PyTorch 2.13 build checked here has no such
  path, and neither does this module.
* ``randperm`` for n >= 214748364 matches torch (checked once at n = 214748364) but
  takes about 10x torch's time and ~8 GB at that size; it is not in the test suite.
"""

from __future__ import annotations

import math
import operator
import os
import threading

import numpy as np

__all__ = [
    "Generator", "default_generator", "manual_seed", "initial_seed", "seed",
    "get_rng_state", "set_rng_state",
    "uniform", "normal", "randint", "randperm", "bernoulli",
]

DEFAULT_SEED = 67280421310721  # torch's default_rng_seed_val

_N = 624                      # MT19937 state words
_STATE_NBYTES = 5056          # sizeof(CPUGeneratorImplState) in torch
_LEGACY_NBYTES = 5048         # sizeof(CPUGeneratorImplStateLegacy)
_RANDPERM_SMALL = 214748364   # torch: n < UINT32_MAX / 20 uses the 32-bit swap shuffle
_DRAW_CHUNK = 1 << 22

_U64 = np.uint64
_MASK24 = np.uint64(0xFFFFFF)
_MASK53 = np.uint64((1 << 53) - 1)


# --------------------------------------------------------------------------- engine

def _init_genrand(seed32: int) -> np.ndarray:
    """MT19937's ``init_genrand`` (what torch does with the low 32 bits of the seed)."""
    key = [0] * _N
    x = seed32 & 0xFFFFFFFF
    key[0] = x
    for j in range(1, _N):
        x = (1812433253 * (x ^ (x >> 30)) + j) & 0xFFFFFFFF
        key[j] = x
    return np.array(key, dtype=np.uint32)


def _as_seed(seed) -> int:
    try:
        s = operator.index(seed)
    except TypeError:
        raise TypeError(f"manual_seed expected an integer, but got {type(seed).__name__}") from None
    if not -(1 << 63) <= s < (1 << 64):
        raise ValueError("Overflow when unpacking long long: seed must be in [-2**63, 2**64)")
    return s & 0xFFFFFFFFFFFFFFFF


def _np_dtype(dtype) -> np.dtype:
    dt = getattr(dtype, "np", dtype)  # jitgrad.dtype carries its numpy dtype as .np
    return np.dtype(dt)


def _shape(shape) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    shape = tuple(operator.index(s) for s in shape)
    if any(s < 0 for s in shape):
        raise ValueError(f"negative dimension in shape {shape}")
    return shape


class Generator:
    """A CPU random generator with torch's state, seeding and draws.

    ``Generator()`` starts from torch's default seed 67280421310721, like
    ``torch.Generator()``.
    """

    def __init__(self, device="cpu"):
        dev = str(getattr(device, "type", device))
        if dev.split(":")[0] != "cpu":
            raise ValueError(f"only CPU generators are supported, got device {device!r}")
        self.device = "cpu"
        self._lock = threading.RLock()
        self._bg = np.random.MT19937(0)
        self.manual_seed(DEFAULT_SEED)

    # ---- seeding
    def manual_seed(self, seed) -> "Generator":
        s = _as_seed(seed)
        with self._lock:
            self._seed = s
            self._set_mt(_init_genrand(s), pos=_N, hint_next=0)
            self._next_double = None   # torch's next_double_normal_sample_
            self._next_float = None    # torch's next_float_normal_sample_
        return self

    def initial_seed(self) -> int:
        return self._seed

    def seed(self) -> int:
        """Seed from the OS's entropy source and return that seed (a 64-bit integer)."""
        s = int.from_bytes(os.urandom(8), "little")
        self.manual_seed(s)
        return s

    # ---- raw draws
    def _set_mt(self, key: np.ndarray, pos: int, hint_next: int | None) -> None:
        self._bg.state = {"bit_generator": "MT19937",
                          "state": {"key": np.asarray(key, dtype=np.uint32), "pos": int(pos)}}
        # torch tells "needs a twist" apart as next_ == 0 (fresh seed) or 624; numpy
        # keeps pos == 624 for both.  Remember which one to report until the next draw.
        self._hint_next = hint_next

    def _raw32(self, n: int) -> np.ndarray:
        """n words of ``random()``, as uint64 values below 2**32."""
        if n <= 0:
            return np.empty(0, dtype=np.uint64)
        self._hint_next = None
        return self._bg.random_raw(n)

    def _raw64(self, n: int) -> np.ndarray:
        """n values of ``random64()``: two words, the first one high."""
        r = self._raw32(2 * n)
        return (r[0::2] << _U64(32)) | r[1::2]

    # ---- state
    def get_state(self) -> np.ndarray:
        """The generator state as torch's 5056-byte ``CPUGeneratorImplState`` (uint8)."""
        with self._lock:
            st = self._bg.state["state"]
            key = np.asarray(st["key"], dtype=np.uint32)
            pos = int(st["pos"])
            if pos >= _N:
                left, nxt = 1, (self._hint_next if self._hint_next is not None else _N)
            else:
                left, nxt = _N + 1 - pos, pos
            buf = np.zeros(_STATE_NBYTES, dtype=np.uint8)
            buf[0:8] = np.frombuffer(np.uint64(self._seed).tobytes(), np.uint8)
            buf[8:12] = np.frombuffer(np.int32(left).tobytes(), np.uint8)
            buf[12:16] = np.frombuffer(np.int32(1).tobytes(), np.uint8)          # seeded
            buf[16:24] = np.frombuffer(np.uint64(nxt).tobytes(), np.uint8)
            buf[24:24 + 8 * _N] = key.astype("<u8").view(np.uint8)
            # normal_x (5016) and normal_rho (5032) are unused dummies; normal_y holds the
            # cached double sample and normal_is_valid (5040) says whether it is set.
            if self._next_double is not None:
                buf[5024:5032] = np.frombuffer(np.float64(self._next_double).tobytes(), np.uint8)
                buf[5040:5044] = np.frombuffer(np.int32(1).tobytes(), np.uint8)
            if self._next_float is not None:
                buf[5048:5052] = np.frombuffer(np.float32(self._next_float).tobytes(), np.uint8)
                buf[5052] = 1
            return buf

    def set_state(self, state) -> "Generator":
        """Restore a state from ``get_state`` (or from ``torch.get_rng_state()``)."""
        if isinstance(state, (bytes, bytearray, memoryview)):
            raw = np.frombuffer(bytes(state), dtype=np.uint8)
        else:
            raw = np.ascontiguousarray(np.asarray(state))
            if raw.dtype != np.uint8:
                raise TypeError(f"RNG state must be a uint8 array, got dtype {raw.dtype}")
            raw = raw.reshape(-1)
        if raw.size not in (_STATE_NBYTES, _LEGACY_NBYTES):
            raise ValueError(f"Expected an RNG state of {_LEGACY_NBYTES} or {_STATE_NBYTES} "
                             f"bytes but found {raw.size}")
        b = raw.tobytes()
        seed = int.from_bytes(b[0:8], "little")
        left = int.from_bytes(b[8:12], "little", signed=True)
        seeded = int.from_bytes(b[12:16], "little", signed=True)
        nxt = int.from_bytes(b[16:24], "little") & 0xFFFFFFFF
        words = np.frombuffer(b[24:24 + 8 * _N], dtype="<u8")
        if not seeded or not 1 <= left <= _N or nxt > _N:
            raise ValueError("Invalid mt19937 state")
        if left == 1:
            pos, hint = _N, nxt
        elif left + nxt == _N + 1:
            pos, hint = nxt, None
        else:
            raise ValueError(f"unsupported mt19937 state (left={left}, next={nxt}): torch "
                             "never produces it")
        key = (words & _U64(0xFFFFFFFF)).astype(np.uint32)
        valid_d = int.from_bytes(b[5040:5044], "little", signed=True) != 0
        normal_y = float(np.frombuffer(b[5024:5032], dtype="<f8")[0])
        nf = None
        if raw.size == _STATE_NBYTES and b[5052] != 0:
            nf = np.frombuffer(b[5048:5052], dtype="<f4")[0]
        with self._lock:
            self._seed = seed
            self._set_mt(key, pos, hint)
            self._next_double = normal_y if valid_d else None
            self._next_float = nf
        return self

    def __repr__(self) -> str:
        return f"<jitgrad Generator device=cpu initial_seed={self._seed}>"


default_generator = Generator()
# torch 2.13 seeds its default CPU generator from the OS at start-up (a new Generator starts
# at DEFAULT_SEED); so does jitgrad. Call manual_seed for reproducible runs.
default_generator.seed()


def _gen(generator) -> Generator:
    if generator is None:
        return default_generator
    if not isinstance(generator, Generator):
        raise TypeError(f"expected a jitgrad Generator, got {type(generator).__name__}")
    return generator


def manual_seed(seed) -> Generator:
    """Seed the default generator (like ``torch.manual_seed``) and return it."""
    return default_generator.manual_seed(seed)


def initial_seed() -> int:
    return default_generator.initial_seed()


def seed() -> int:
    return default_generator.seed()


def get_rng_state() -> np.ndarray:
    return default_generator.get_state()


def set_rng_state(state) -> None:
    default_generator.set_state(state)


# --------------------------------------------------------------------------- exact FMA

_F32_MID_MASK = np.int64((1 << 29) - 1)
_F32_MID = np.int64(1 << 28)


def _round_to_odd(s: np.ndarray, err: np.ndarray) -> None:
    """Turn s = RN(x), err = x - s (1-d float64 arrays) into the round-to-odd value of
    x, in place: an inexact s with an even last bit moves one ulp towards x."""
    idx = np.flatnonzero((err != 0) & ((s.view(np.int64) & 1) == 0))
    if idx.size:
        s[idx] = np.nextafter(s[idx], np.where(err[idx] > 0, np.inf, -np.inf))


def _fma32(a, b, c) -> np.ndarray:
    """Correctly rounded float32 ``a*b + c`` (a, b, c float32 arrays or scalars).

    The product is exact in float64 and the sum rounds once; a float32 double-rounding
    error can only occur when that sum lands exactly on a float32 half-way point, and
    those few lanes are corrected from the exact error of the float64 sum.
    """
    p = np.multiply(a, b, dtype=np.float64)
    c64 = np.asarray(c, dtype=np.float64)
    s = p + c64
    mid = (s.view(np.int64) & _F32_MID_MASK) == _F32_MID
    if mid.any():
        p_b, c_b = np.broadcast_arrays(p, c64)
        idx = np.flatnonzero(mid)
        pi, ci, si = p_b.reshape(-1)[idx], c_b.reshape(-1)[idx], s.reshape(-1)[idx]
        _, err = _two_sum_err(pi, ci, si)
        _round_to_odd(si, err)        # odd in float64 rounds correctly to float32
        s.reshape(-1)[idx] = si
    return s.astype(np.float32)


_SPLITTER = 134217729.0  # 2**27 + 1


def _two_prod(a, b):
    p = a * b
    t = _SPLITTER * a
    ah = t - (t - a)
    al = a - ah
    t = _SPLITTER * b
    bh = t - (t - b)
    bl = b - bh
    e = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    return p, e


def _two_sum_err(a, b, s):
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _two_sum(a, b):
    """s = RN(a + b) and the exact error a + b - s."""
    return _two_sum_err(a, b, a + b)


def _fma64(a, b, c) -> np.ndarray:
    """Correctly rounded float64 ``a*b + c`` (Boldo & Melquiond's emulation with an
    error-free product, an error-free sum and one addition rounded to odd)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    c = np.asarray(c, dtype=np.float64)
    a, b, c = np.broadcast_arrays(a, b, c)
    uh, ul = _two_prod(a, b)
    th, tl = _two_sum(c, uh)
    v, ve = _two_sum(tl, ul)
    v = np.array(v, dtype=np.float64, copy=True)
    _round_to_odd(v.reshape(-1), np.ascontiguousarray(ve).reshape(-1))
    return th + v


def _is_pow2(x: float) -> bool:
    m, _ = math.frexp(x)
    return x > 0 and m == 0.5


def _scale_shift64(v: np.ndarray, std: float, mean: float) -> np.ndarray:
    """Exact ``fma(v, std, mean)`` in float64, with cheap paths when it needs no FMA."""
    if mean == 0.0 or _is_pow2(abs(std)) or std == 0.0:
        return v * std + mean          # the product is exact or nothing is added
    return _fma64(v, std, mean)


def _scale_shift32(v: np.ndarray, std: np.float32, mean: np.float32) -> np.ndarray:
    if mean == 0 or std == 0 or _is_pow2(abs(float(std))):
        return v * std + mean
    return _fma32(v, std, mean)


# --------------------------------------------------------------------------- libm

_LIBM: dict[str, object] = {}


def _libm_check(name: str, fast, ref) -> bool:
    rng = np.random.default_rng(12345)
    if name == "log":
        x = 1.0 - rng.integers(0, 1 << 53, 4096) * 2.0 ** -53
    else:
        x = rng.integers(0, 1 << 53, 4096) * 2.0 ** -53 * (2 * math.pi)
    want = np.array([ref(v) for v in x.tolist()])
    try:
        got = fast(x)
    except Exception:  # pragma: no cover - a numpy without negative strides, say
        return False
    return bool(np.array_equal(got, want))


def _libm(name: str):
    """A vectorised libm function (the one torch's compiled kernel calls).

    numpy's own SIMD ``log`` is not bit-identical to libm's, but numpy falls back to
    the C library for negatively strided input; ``sin``/``cos`` call libm directly.
    Each choice is verified once against the ``math`` module (which is libm), and the
    (slower) ``math`` module is used if the check fails.
    """
    f = _LIBM.get(name)
    if f is None:
        ref = getattr(math, name)
        npf = getattr(np, name)
        if name == "log":
            def fast(x):
                flat = np.ascontiguousarray(x).reshape(-1)
                return npf(flat[::-1])[::-1].reshape(np.shape(x))
        else:
            def fast(x):
                return npf(x)
        if _libm_check(name, fast, ref):
            f = fast
        else:  # pragma: no cover - depends on the numpy build
            uf = np.frompyfunc(ref, 1, 1)

            def f(x):
                return uf(x).astype(np.float64)
        _LIBM[name] = f
    return f


# ------------------------------------------------------------------- float32 AVX2 Box-Muller

def _f32(x) -> np.float32:
    return np.float32(x)


_ONE = _f32(1.0)
_HALF = _f32(0.5)
_TWO_PI_F = _f32(2.0 * math.pi)
_MIN_NORM = np.uint32(0x00800000).view(np.float32)
_SQRTHF = _f32(0.707106781186547524)
_LOG_P = [_f32(v) for v in (7.0376836292E-2, -1.1514610310E-1, 1.1676998740E-1,
                            -1.2420140846E-1, 1.4249322787E-1, -1.6668057665E-1,
                            2.0000714765E-1, -2.4999993993E-1, 3.3333331174E-1)]
_LOG_Q1 = _f32(-2.12194440e-4)
_LOG_Q2 = _f32(0.693359375)
_FOPI = _f32(1.27323954473516)
_DP1 = _f32(-0.78515625)
_DP2 = _f32(-2.4187564849853515625e-4)
_DP3 = _f32(-3.77489497744594108e-8)
_SIN_P = [_f32(v) for v in (-1.9515295891E-4, 8.3321608736E-3, -1.6666654611E-1)]
_COS_P = [_f32(v) for v in (2.443315711809948E-005, -1.388731625493765E-003,
                            4.166664568298827E-002)]
_SIGN = np.uint32(0x80000000)


def _log_avx2(x: np.ndarray) -> np.ndarray:
    """torch's AVX2 ``log256_ps`` (Cephes logf), float32, as compiled (with FMAs)."""
    invalid = x <= 0
    x = np.maximum(x, _MIN_NORM)
    bits = x.view(np.uint32)
    e = ((bits >> np.uint32(23)).astype(np.int32) - np.int32(127)).astype(np.float32) + _ONE
    x = ((bits & np.uint32(0x807FFFFF)) | np.uint32(0x3F000000)).view(np.float32)
    mask = x < _SQRTHF
    tmp = np.where(mask, x, np.float32(0.0))
    x = x - _ONE
    e = e - np.where(mask, _ONE, np.float32(0.0))
    x = x + tmp
    z = x * x
    x64 = x.astype(np.float64)
    y = _fma32(_LOG_P[0], x64, _LOG_P[1])
    for p in _LOG_P[2:]:
        y = _fma32(y, x64, p)
    y = y * x
    y = _fma32(y, z, e * _LOG_Q1)
    y = y - z * _HALF                  # fnmadd with an exact product
    x = x + y
    x = x + e * _LOG_Q2                # fma with an exact product (e is a small integer)
    if invalid.any():
        x = np.where(invalid, np.float32(np.nan), x)
    return x


def _sincos_avx2(x: np.ndarray):
    """torch's AVX2 ``sincos256_ps`` (Cephes sinf/cosf), float32, as compiled."""
    sign_sin = x.view(np.uint32) & _SIGN
    x = np.abs(x)
    j = np.trunc(x * _FOPI).astype(np.int32)
    j = (j + np.int32(1)) & np.int32(~1)
    y = j.astype(np.float32)
    ju = j.view(np.uint32)
    sign_sin = sign_sin ^ ((ju & np.uint32(4)) << np.uint32(29))
    poly = (ju & np.uint32(2)) == 0
    sign_cos = (~(ju - np.uint32(2)) & np.uint32(4)) << np.uint32(29)
    x = x + y * _DP1                   # exact products: y is a small even integer
    x = x + y * _DP2
    x = _fma32(y, _DP3, x)
    z = x * x
    z64 = z.astype(np.float64)
    tmp = z * _HALF
    c = _fma32(_COS_P[0], z64, _COS_P[1])
    c = _fma32(c, z64, _COS_P[2])
    c = z * c
    c = _fma32(z, c, -tmp)
    c = c + _ONE
    s = _fma32(_SIN_P[0], z64, _SIN_P[1])
    s = _fma32(s, z64, _SIN_P[2])
    s = z * s
    s = _fma32(x, s, x)
    zero = np.float32(0.0)
    ysin2 = np.where(poly, s, zero)
    ysin1 = np.where(poly, zero, c)
    s2 = s - ysin2
    c2 = c - ysin1
    sin = ((ysin1 + ysin2).view(np.uint32) ^ sign_sin).view(np.float32)
    cos = ((c2 + s2).view(np.uint32) ^ sign_cos).view(np.float32)
    return sin, cos


_CHUNK_ROWS = 1 << 11


def _box_muller16_f32(u: np.ndarray, mean: np.float32, std: np.float32) -> np.ndarray:
    """torch's ``NormalFill16<float>`` (AVX2) over consecutive blocks of 16 uniforms."""
    blocks = u.reshape(-1, 16)
    out = np.empty_like(blocks)
    for r0 in range(0, blocks.shape[0], _CHUNK_ROWS):
        blk = blocks[r0:r0 + _CHUNK_ROWS]
        u1 = _ONE - blk[:, :8]
        theta = _TWO_PI_F * blk[:, 8:]
        radius = np.sqrt(np.float32(-2.0) * _log_avx2(u1))
        sin, cos = _sincos_avx2(theta)
        o = out[r0:r0 + _CHUNK_ROWS]
        o[:, :8] = _scale_shift32(radius * cos, std, mean)
        o[:, 8:] = _scale_shift32(radius * sin, std, mean)
    return out.reshape(-1)


def _box_muller16_f64(u: np.ndarray, mean: float, std: float) -> np.ndarray:
    """torch's scalar ``NormalFill16<double>`` (libm log and sincos, then an fma)."""
    blocks = u.reshape(-1, 16)
    u1 = 1.0 - blocks[:, :8]
    theta = (2.0 * math.pi) * blocks[:, 8:]
    radius = np.sqrt(-2.0 * _libm("log")(u1))
    out = np.empty_like(blocks)
    out[:, :8] = _scale_shift64(radius * _libm("cos")(theta), std, mean)
    out[:, 8:] = _scale_shift64(radius * _libm("sin")(theta), std, mean)
    return out.reshape(-1)


# --------------------------------------------------------------------------- samplers

def _float_kind(dt: np.dtype, what: str) -> np.dtype:
    if dt.kind != "f" or dt.itemsize not in (2, 4, 8):
        raise TypeError(f"{what} expects a floating point dtype (float16/32/64), got {dt}")
    return dt


def _uniform24(g: Generator, n: int) -> np.ndarray:
    return (g._raw32(n) & _MASK24).astype(np.float32) * np.float32(2.0 ** -24)


def _uniform53(g: Generator, n: int) -> np.ndarray:
    return (g._raw64(n) & _MASK53).astype(np.float64) * 2.0 ** -53


def uniform(shape, dtype=np.float32, low=0.0, high=1.0, generator=None) -> np.ndarray:
    """Like ``torch.empty(shape, dtype=dtype).uniform_(low, high)`` (``torch.rand``)."""
    shape = _shape(shape)
    dt = _float_kind(_np_dtype(dtype), "uniform")
    g = _gen(generator)
    n = math.prod(shape)
    low, high = float(low), float(high)
    if not low <= high:
        raise ValueError(f"uniform_ expects to return a [from, to) range, but found "
                         f"from={low} > to={high}")
    fmax = float(np.finfo(dt).max)
    for name, v in (("from", low), ("to", high)):
        if not -fmax <= v <= fmax:
            raise ValueError(f"{name} is out of bounds for {dt}")
    if high - low > fmax:
        raise ValueError(f"uniform_ expects to-from <= {fmax}, but got to-from={high - low}")
    with g._lock:
        if dt.itemsize == 8:
            x = _uniform53(g, n)
            d = high - low
            if d == 1.0 and low == 0.0:
                v = x
            elif low == 0.0 or _is_pow2(d):
                v = x * d + low
            else:
                v = _fma64(x, d, low)
            return np.where(v == high, low, v).reshape(shape)
        lo32, hi32 = np.float32(low), np.float32(high)
        x = _uniform24(g, n)
        d = hi32 - lo32
        if lo32 == 0 or _is_pow2(float(d)):
            v = x * d + lo32
        else:
            v = _fma32(x, d, lo32)
        v = v.astype(dt)       # float16 is computed in float, like torch's opmath
        to_s, from_s = hi32.astype(dt), lo32.astype(dt)
        return np.where(v == to_s, from_s, v).astype(dt, copy=False).reshape(shape)


def _scalar_normals(g: Generator, n: int) -> np.ndarray:
    """n draws of torch's scalar ``normal_distribution<double>`` at mean 0, std 1."""
    out = []
    for _ in range(n):
        if g._next_double is not None:
            out.append(g._next_double)
            g._next_double = None
            continue
        u1, u2 = _uniform53(g, 2).tolist()
        r = math.sqrt(-2.0 * math.log1p(-u2))
        theta = (2.0 * math.pi) * u1
        g._next_double = r * math.sin(theta)
        out.append(r * math.cos(theta))
    return np.array(out, dtype=np.float64)


def normal(shape, dtype=np.float32, mean=0.0, std=1.0, generator=None) -> np.ndarray:
    """Like ``torch.empty(shape, dtype=dtype).normal_(mean, std)`` (``torch.randn``)."""
    shape = _shape(shape)
    dt = _float_kind(_np_dtype(dtype), "normal")
    g = _gen(generator)
    mean, std = float(mean), float(std)
    if not std >= 0.0:
        raise ValueError(f"normal expects std >= 0.0, but found std {std}")
    n = math.prod(shape)
    with g._lock:
        if n < 16:
            v = _scale_shift64(_scalar_normals(g, n), std, mean)
            if dt.itemsize == 2:
                v = v.astype(np.float32)
            return v.astype(dt).reshape(shape)
        tail = 16 if n % 16 else 0
        full = n - n % 16
        if dt.itemsize == 8:
            u = _uniform53(g, n + tail)
            out = np.empty(n, dtype=np.float64)
            out[:full] = _box_muller16_f64(u[:full], mean, std)
            if tail:
                out[n - 16:] = _box_muller16_f64(u[n:], mean, std)
            return out.reshape(shape)
        m32, s32 = np.float32(mean), np.float32(std)
        # float32 draws all n uniforms into the output first; float16 (computed in
        # float) draws 16 per block into a buffer, so its tail block follows the
        # last full block directly.
        extra = n if dt.itemsize == 4 else full
        u = _uniform24(g, extra + tail)
        out = np.empty(n, dtype=np.float32)
        out[:full] = _box_muller16_f32(u[:full], m32, s32)
        if tail:
            out[n - 16:] = _box_muller16_f32(u[extra:], m32, s32)
        return out.astype(dt, copy=False).reshape(shape)


def _float_bound(v: int, dt: np.dtype, step: int) -> int:
    """torch's ``update_from`` (step=+1) / ``update_to`` (step=-1) for float dtypes: pull
    an integer bound inwards when ``v + step`` does not survive a cast to ``dt``."""
    digits = np.finfo(dt).nmant + 1
    nb = v + step
    as_f = np.array(nb, dtype=np.int64).astype(np.float32 if dt.itemsize == 2 else dt)
    back = int(as_f.astype(dt).astype(np.float64)) if abs(nb) < 2**63 else nb
    if step > 0 and back < v:
        return back + (1 << (abs(nb).bit_length() - 1 - digits + 1))
    if step < 0 and back >= v:
        return back - (1 << (abs(nb).bit_length() - 1 - digits + 1))
    return v


def randint(low, high, shape, dtype=np.int64, generator=None) -> np.ndarray:
    """Like ``torch.randint(low, high, shape, dtype=dtype)``: uniform on [low, high)."""
    shape = _shape(shape)
    dt = _np_dtype(dtype)
    g = _gen(generator)
    low, high = operator.index(low), operator.index(high)
    if not low < high:
        raise ValueError(f"random_ expects 'from' to be less than 'to', but got "
                         f"from={low} >= to={high}")
    if not (-(1 << 63) <= low and high <= (1 << 63)):
        raise ValueError(f"randint bounds {low}, {high} do not fit in int64")
    if dt.kind == "f":
        fmax = int(np.finfo(dt).max)
        if low < -fmax:
            raise ValueError(f"from is out of bounds for {dt}")
        if high - 1 > fmax:
            raise ValueError(f"to - 1 is out of bounds for {dt}")
        low, high = _float_bound(low, dt, +1), _float_bound(high, dt, -1)
        if not low < high:
            raise ValueError(f"random_ expects 'from' casted to dtype to be less than 'to' "
                             f"casted to dtype, but got from={low} >= to={high}")
    elif dt.kind in "iub":
        lo_ok, hi_ok = (0, 1) if dt.kind == "b" else (np.iinfo(dt).min, np.iinfo(dt).max)
        if low < lo_ok:
            raise ValueError(f"from is out of bounds for {dt}")
        if high - 1 > hi_ok:
            raise ValueError(f"to - 1 is out of bounds for {dt}")
    else:
        raise TypeError(f"randint does not support dtype {dt}")
    rng = high - low
    n = math.prod(shape)
    with g._lock:
        # torch draws 64 bits once the range reaches 2**28 (to limit the modulo skew)
        r = g._raw64(n) if rng >= (1 << 28) else g._raw32(n)
    v = r % _U64(rng) if rng < (1 << 64) else r
    v = (v + _U64(low & 0xFFFFFFFFFFFFFFFF)).view(np.int64)   # wraps like uint64 in C++
    if dt.kind == "f" and dt.itemsize == 2:
        v = v.astype(np.float32)
    return v.astype(dt).reshape(shape)


def _group_order(key: np.ndarray, n: int) -> np.ndarray:
    """Indices that sort ``key`` (values in [0, n)) with ties kept in index order."""
    if n < (1 << 31):
        # unique composite keys let numpy use its (much faster) unstable sort
        comp = key.astype(np.int64) * n + np.arange(key.size, dtype=np.int64)
        return np.argsort(comp).astype(key.dtype, copy=False)
    return np.argsort(key, kind="stable")


def _find_roots(ptr: np.ndarray) -> np.ndarray:
    """Follow ``ptr`` (a forest whose roots point at themselves) to the roots, in place,
    by pointer jumping restricted to the nodes that are not yet done."""
    act = np.flatnonzero(ptr[ptr] != ptr)
    while act.size:
        ptr[act] = ptr[ptr[act]]
        act = act[ptr[ptr[act]] != ptr[act]]
    return ptr


def _group_links(key: np.ndarray, n: int):
    """For each index i: the previous index j < i with key[j] == key[i] (or -1); for
    each value v in [0, n): the last index i with key[i] == v (or -1)."""
    it = key.dtype
    order = _group_order(key, n)
    ks = key[order]
    same = ks[1:] == ks[:-1]
    prev = np.full(key.size, -1, dtype=it)
    prev[order[1:][same]] = order[:-1][same]
    end = np.ones(key.size, dtype=bool)
    end[:-1] = ~same
    last = np.full(n, -1, dtype=it)
    last[ks[end]] = order[end]
    return prev, last


def _perm_swap(z: np.ndarray) -> np.ndarray:
    """Result of ``for i < n-1: swap(a[i], a[i + z[i]])`` on ``a = arange(n)``, n = len(z)+1.

    After step i, a[i] is final.  The value at a position p >= k before step k is p
    itself unless some earlier step targeted p, in which case it is the value the last
    such step s moved there, i.e. the value at s before step s.  That defines a forest
    (each step points at the last earlier step with the same target), resolved with
    pointer jumping instead of a sequential loop.
    """
    m = z.size
    n = m + 1
    it = np.int32 if n < (1 << 31) else np.int64
    steps = np.arange(m, dtype=it)
    t = steps + z.astype(it)                       # the position step i swaps with
    prev, last = _group_links(t, n)                # prev: last earlier step, same target
    parent = last                                  # last step that targeted each position
    own = np.flatnonzero(parent[:m] == steps)      # ... unless it is the step itself
    parent[own] = prev[own]
    roots = parent < 0
    parent[roots] = np.flatnonzero(roots).astype(it)
    vals = _find_roots(parent)                     # value at position s before step s
    out = np.empty(n, dtype=it)
    has = prev >= 0
    out[:m] = t
    out[:m][has] = vals[prev[has]]
    out[m] = vals[m]
    return out


def _perm_inside_out(z: np.ndarray) -> np.ndarray:
    """Result of ``for i < n: a[i] = a[z[i]]; a[z[i]] = i`` (z[i] <= i), n = len(z)."""
    n = z.size
    it = np.int32 if n < (1 << 31) else np.int64
    steps = np.arange(n, dtype=it)
    z = z.astype(it)
    prev, last = _group_links(z, n)    # prev: last earlier step writing slot z[i]
    # w[i], the value step i stores in a[i]: i when z[i] == i; the previous writer of
    # slot z[i] when that came after step z[i]; otherwise whatever step z[i] stored.
    selfw = z == steps
    resolved = selfw | ((prev >= 0) & (prev != z))
    val = np.where(selfw, steps, prev)
    ptr = np.where(resolved, steps, z)
    w = val[_find_roots(ptr)]
    return np.where(last > steps, last, w)


def randperm(n, dtype=np.int64, generator=None) -> np.ndarray:
    """Like ``torch.randperm(n, dtype=dtype)``."""
    n = operator.index(n)
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    dt = _np_dtype(dtype)
    if dt.kind in "iu" and n > 0 and n - 1 > np.iinfo(dt).max:
        raise ValueError(f"n is too large for result tensor type: '{dt}'")
    if dt.kind == "f" and n > 0 and n - 1 > 2 ** (np.finfo(dt).nmant + 1):
        raise ValueError(f"n cannot be greater than 2^{np.finfo(dt).nmant + 1}+1 for "
                         f"'{dt}'")
    g = _gen(generator)
    if n <= 1:
        return np.arange(n).astype(dt)
    it = np.int32 if n < (1 << 31) else np.int64
    with g._lock:
        # z[i]: the random offset of step i, drawn in chunks to bound the temporaries
        small = n < _RANDPERM_SMALL
        m = n - 1 if small else n
        z = np.empty(m, dtype=it)
        for s in range(0, m, _DRAW_CHUNK):
            k = min(_DRAW_CHUNK, m - s)
            i = np.arange(s, s + k, dtype=np.uint64)
            if small:   # swap(a[i], a[i + random() % (n - i)])
                z[s:s + k] = g._raw32(k) % (np.uint64(n) - i)
            else:       # inside-out: a[i] = a[z]; a[z] = i with z = random64() % (i + 1)
                z[s:s + k] = g._raw64(k) % (i + np.uint64(1))
    perm = _perm_swap(z) if small else _perm_inside_out(z)
    return perm.astype(dt, copy=False)


def bernoulli(p, shape=None, dtype=np.float32, generator=None) -> np.ndarray:
    """0/1 draws with probability p.

    A Python/numpy scalar ``p`` behaves like ``torch.empty(shape).bernoulli_(p)`` (and
    the masks of ``torch.nn.functional.dropout``, which draws ``bernoulli_(1 - p)``).
    An array ``p`` behaves like ``torch.bernoulli(p)`` / ``out.bernoulli_(p)``: it is
    broadcast to ``shape`` (default ``p.shape``) and compared, in memory order, with a
    53-bit uniform when ``p`` is float64 and a 24-bit float32 uniform otherwise.
    """
    g = _gen(generator)
    dt = _np_dtype(dtype)
    if isinstance(p, (np.ndarray, list, tuple)) or hasattr(p, "__array__") and not isinstance(
            p, np.generic):
        pa = np.asarray(p)
        if pa.dtype.kind != "f":
            pa = pa.astype(np.float32)
        shape = pa.shape if shape is None else _shape(shape)
        pa = np.broadcast_to(pa, shape)
        if np.any((pa < 0) | (pa > 1)) or np.isnan(pa).any():
            raise ValueError("bernoulli expects all elements of p to be in [0, 1]")
        n = math.prod(shape)
        with g._lock:
            if pa.dtype == np.float64:
                hit = _uniform53(g, n).reshape(shape) < pa
            else:
                hit = _uniform24(g, n).reshape(shape) < pa.astype(np.float32)
        return hit.astype(dt)
    pv = float(p)
    if not 0.0 <= pv <= 1.0:
        raise ValueError(f"bernoulli_ expects p to be in [0, 1], but got p={pv}")
    if shape is None:
        raise TypeError("bernoulli with a scalar p needs a shape")
    shape = _shape(shape)
    n = math.prod(shape)
    with g._lock:
        hit = _uniform53(g, n) < pv
    return hit.reshape(shape).astype(dt)
