"""kernels/fastmath.py: the float32 transcendentals, measured in ulp against float64
references through the kernels that use them (``elementwise.unary``), on dense sweeps, random
bit patterns and special values; plus checks that a float32 tanh loop is vectorized and that
the kernels built on these functions are found in Numba's disk cache by a new process.

Timings (against numpy and the libm kernels) are in ``bench/fastmath.py``, not here."""

from __future__ import annotations

import math
import re

import numba
import numpy as np
import pytest
from numba import njit

from jitgrad.kernels import elementwise as ew
from jitgrad.kernels import scalar

F32 = np.float32
TINY = float(np.finfo(F32).smallest_subnormal)
FMIN = float(np.finfo(F32).tiny)
FMAX = float(np.finfo(F32).max)

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _sigmoid(x):
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


# name: (float64 reference, sweep range, max error in ulp asserted). The bounds are the
# maxima measured over 614M float32 inputs, rounded up (see the docstring of fastmath.py).
FUNCS = {
    "exp": (np.exp, (-105.0, 90.0), 1.0),
    "expm1": (np.expm1, (-20.0, 90.0), 1.5),
    "exp2": (np.exp2, (-152.0, 130.0), 1.5),
    "log": (np.log, (0.0, 4.0), 1.0),
    "log1p": (np.log1p, (-1.0, 4.0), 1.0),
    "log2": (np.log2, (0.0, 4.0), 1.0),
    "log10": (np.log10, (0.0, 4.0), 1.0),
    "tanh": (np.tanh, (-10.0, 10.0), 2.0),
    "sigmoid": (_sigmoid, (-110.0, 30.0), 2.5),
    "erf": (_erf, (-4.5, 4.5), 1.5),
}

SPECIALS = np.array(
    [0.0, -0.0, np.inf, -np.inf, np.nan, TINY, -TINY, FMIN, -FMIN, FMIN / 3, -FMIN / 3,
     FMAX, -FMAX, 1.0, -1.0, 0.5, -0.5, 2.0 ** -12, 2.0 ** -25, -(2.0 ** -25), 0.625, 9.0,
     88.72283, 88.72284, 89.0, -87.33654, -103.97, -104.0, -1e30, 1e30, 128.0, -126.0,
     -149.0, -150.0, 1.0 - 2.0 ** -24, 1.0 + 2.0 ** -23, 0.70710677, 1.4142135, 3.9225,
     4.0, 44.0, 17.0, -44.0, 20.0], dtype=F32)


def _ulp_error(got: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """|got - ref| in units of the float32 spacing at ref (2**-149 at least); 0 where got is
    ref rounded to float32, inf and nan included."""
    with np.errstate(over="ignore"):
        ref32 = ref.astype(F32)  # inf beyond float32's range
    _, e = np.frexp(np.abs(ref))
    spacing = np.ldexp(1.0, np.maximum(e - 24, -149))
    with np.errstate(invalid="ignore"):
        err = np.abs(got.astype(np.float64) - ref) / spacing
    exact = (got == ref32) | (np.isnan(got) & np.isnan(ref))
    return np.where(exact, 0.0, np.nan_to_num(err, nan=np.inf))


def _inputs(rng: np.random.Generator, lo: float, hi: float) -> np.ndarray:
    sweep = np.linspace(lo, hi, 400_001, dtype=np.float64).astype(F32)
    bits = rng.integers(0, 2 ** 32, 200_000, dtype=np.uint64).astype(np.uint32).view(F32)
    small = np.geomspace(TINY, 1.0, 20_001, dtype=np.float64).astype(F32)  # subnormals on up
    return np.concatenate([sweep, bits, small, -small, SPECIALS])


@pytest.mark.parametrize("name", list(FUNCS))
def test_float32_error_in_ulp(name: str, rng) -> None:
    ref_fn, (lo, hi), bound = FUNCS[name]
    x = _inputs(rng, lo, hi)
    got = ew.unary(name, x)
    assert got.dtype == F32
    with np.errstate(all="ignore"):
        ref = ref_fn(x.astype(np.float64))
    err = _ulp_error(got, ref)
    i = int(np.argmax(err))
    assert err[i] <= bound, f"{name}({x[i]!r}) = {got[i]!r}, float64 gives {ref[i]!r}: " \
                            f"{err[i]:.3f} ulp > {bound}"
    # signs of zeros, infinities and nans where the reference has them
    zero = ref == 0
    np.testing.assert_array_equal(np.signbit(got[zero]), np.signbit(ref[zero]),
                                  err_msg=f"{name}: sign of a zero result")
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref), err_msg=f"{name}: nan")
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(np.isposinf(got), np.isposinf(ref.astype(F32)),
                                      err_msg=f"{name}: +inf")


@pytest.mark.parametrize("name", list(FUNCS))
def test_float32_kernels_match_float64_ones_on_the_op_table_scale(name: str, rng) -> None:
    """The float32 body and the float64 (libm) body agree to float32 precision."""
    lo, hi = FUNCS[name][1]
    x = rng.uniform(max(lo, -30.0), min(hi, 30.0), 10_000).astype(F32)
    with np.errstate(all="ignore"):
        np.testing.assert_allclose(ew.unary(name, x), ew.unary(name, x.astype(np.float64)),
                                   rtol=3e-7, atol=1e-37)


def _loop(body):
    @njit(error_model="numpy")
    def loop(a, out):
        for i in range(a.size):
            out[i] = body(a[i])
    a = np.linspace(-3, 3, 64, dtype=F32)
    loop(a, np.empty_like(a))
    return loop.inspect_llvm(loop.signatures[0])


_VECTOR_MATH = re.compile(r"= f(mul|add|sub|div)[a-z ]* <(4|8|16|32) x float>")
_LIBM_CALL = re.compile(r"call [^\n]*@(tanhf|expf|expm1f|logf|log1pf)\b")


def test_float32_tanh_loop_is_vectorized() -> None:
    # A fresh, uncached compilation of the kernel's loop over jitgrad's float32 tanh body
    # (Numba cannot show the code of a kernel loaded from its cache).
    ir = _loop(njit(inline="always")(scalar.UNARY["tanh"][0](numba.float32)))
    assert _VECTOR_MATH.search(ir), "the float32 tanh loop does no arithmetic on vectors"
    assert not _LIBM_CALL.search(ir), "the float32 tanh loop calls libm"
    # the same check flags a loop over libm's tanh
    assert _LIBM_CALL.search(_loop(njit(inline="always")(lambda x: math.tanh(x))))


def test_fastmath_kernels_are_found_in_the_disk_cache_by_a_new_process(tmp_path) -> None:
    import os
    import subprocess
    import sys

    code = (
        "import numpy as np\n"
        "from jitgrad.kernels import elementwise as ew, pointwise as pw, scalar\n"
        "a = np.ones(3, np.float32)\n"
        "ew.unary('tanh', a)\n"
        "pw.unary_p('softplus', a, 1.0, 20.0)\n"
        "u, _ = ew._loops(scalar.UNARY, ew._unary_loops, 'tanh', a.dtype)\n"
        "p, _ = pw._loops(scalar.UNARY_P, pw._unary_p_loops, 'softplus', a.dtype)\n"
        "print(*(sum(k.stats.cache_hits.values()) for k in (u, p)),\n"
        "      *(sum(k.stats.cache_misses.values()) for k in (u, p)))\n"
    )
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    runs = [subprocess.run([sys.executable, "-c", code], env=env, check=True,
                           capture_output=True, text=True).stdout.split() for _ in range(2)]
    assert runs[0] == ["0", "0", "1", "1"]  # compiled and saved
    assert runs[1] == ["1", "1", "0", "0"]  # loaded, nothing recompiled
