"""jitgrad._random reproduces PyTorch's CPU random streams bit for bit.

The first part runs without torch (values pinned from PyTorch 2.13 CPU, and internal
checks of the exact-FMA and shuffle helpers).  The second part uses torch, when it is
installed, as the oracle.
"""

from __future__ import annotations

import importlib.util
import math
import pathlib
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest

_PATH = pathlib.Path(__file__).resolve().parents[1] / "jitgrad" / "_random.py"


def _load():
    try:
        from jitgrad import _random
        return _random
    except Exception:  # the package __init__ may be mid-rewrite: load the file itself
        spec = importlib.util.spec_from_file_location("_jitgrad_random_standalone", _PATH)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod


jr = _load()
Generator = jr.Generator

F32, F64 = np.float32, np.float64


def same_bits(a, b) -> bool:
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    return (a.dtype == b.dtype and a.shape == b.shape
            and np.array_equal(a.view(np.uint8), b.view(np.uint8)))


def f32(*vals):
    return np.array(vals, dtype=np.float32)


# =========================================================================== pinned values

def test_pinned_manual_seed_0():
    g = Generator().manual_seed(0)
    assert same_bits(jr.normal((10, 2), F32, generator=g).reshape(-1)[:6],
                     f32(-1.1258398, -1.1523602, -0.25057858, -0.4338788, 0.59883946,
                         -1.5550951))
    g.manual_seed(0)
    assert same_bits(jr.normal((5,), F32, generator=g),
                     f32(1.5409961, -0.2934289, -2.1787894, 0.56843126, -1.0845224))
    g.manual_seed(0)
    assert same_bits(jr.uniform((4,), F32, generator=g),
                     f32(0.4962566, 0.7682218, 0.08847743, 0.13203049))
    g.manual_seed(0)
    assert jr.normal((3,), F64, generator=g).tolist() == [
        1.5409961082440433, -0.2934289057609464, -2.1787893820745574]
    g.manual_seed(0)
    assert jr.normal((16,), F64, generator=g)[:4].tolist() == [
        -2.310411800234176, -0.3732508612577643, -1.0608166785462863, 0.9995093547811761]
    g.manual_seed(0)
    assert jr.randint(-10, 10, (8,), np.int64, generator=g).tolist() == [
        -6, 9, 3, -10, -7, 9, -3, -7]
    g.manual_seed(0)
    assert jr.randperm(10, generator=g).tolist() == [4, 1, 7, 5, 3, 9, 0, 8, 6, 2]
    g.manual_seed(0)
    assert jr.bernoulli(np.full(8, 0.5, F32), generator=g).tolist() == [
        1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0]


def test_pinned_default_seed():
    """A fresh Generator starts from torch's default seed 67280421310721."""
    assert Generator().initial_seed() == 67280421310721 == jr.DEFAULT_SEED
    assert same_bits(jr.normal((4,), F32, generator=Generator()),
                     f32(0.97726315, 1.1568583, -0.38065365, 1.2525017))
    assert same_bits(jr.normal((20,), F32, generator=Generator())[:4],
                     f32(-0.17370243, -1.8224748, 0.7792122, -1.0139076))


def test_default_generator_in_a_fresh_process():
    """As in torch 2.13, the default generator is seeded from the OS at import: two fresh
    processes draw different numbers, and each reports the seed it used."""
    code = (f"import importlib.util, numpy as np\n"
            f"s = importlib.util.spec_from_file_location('r', {str(_PATH)!r})\n"
            f"m = importlib.util.module_from_spec(s); s.loader.exec_module(m)\n"
            f"print(m.initial_seed(), m.normal((4,), np.float32).tolist())\n")
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True).stdout.split(" ", 1) for _ in range(2)]
    assert runs[0][0] != runs[1][0] and runs[0][1] != runs[1][1]
    for seed, values in runs:
        replay = jr.normal((4,), F32, generator=Generator().manual_seed(int(seed)))
        assert same_bits(f32(*eval(values)), replay)


def test_state_layout_pinned():
    st = Generator().manual_seed(0).get_state()
    assert st.dtype == np.uint8 and st.shape == (5056,)
    assert st[:32].tolist() == [0] * 8 + [1, 0, 0, 0] + [1, 0, 0, 0] + [0] * 16


# =========================================================================== generator API

def test_manual_seed_and_initial_seed():
    g = Generator()
    assert g.manual_seed(5) is g and g.initial_seed() == 5
    assert g.manual_seed(np.int64(7)).initial_seed() == 7
    assert g.manual_seed(-1).initial_seed() == 2**64 - 1
    assert g.manual_seed(-2**63).initial_seed() == 2**63
    assert g.manual_seed(2**64 - 1).initial_seed() == 2**64 - 1
    with pytest.raises(ValueError):
        g.manual_seed(2**64)
    with pytest.raises(ValueError):
        g.manual_seed(-2**63 - 1)
    with pytest.raises(TypeError):
        g.manual_seed(1.5)
    # only the low 32 bits feed the twister (but the seed is kept whole)
    a = jr.normal((20,), F32, generator=Generator().manual_seed(3))
    b = jr.normal((20,), F32, generator=Generator().manual_seed(3 + 2**32))
    assert same_bits(a, b)


def test_module_level_seed_functions():
    saved = jr.get_rng_state()
    try:
        assert jr.manual_seed(11) is jr.default_generator
        assert jr.initial_seed() == 11
        a = jr.uniform((5,), F32)
        jr.manual_seed(11)
        assert same_bits(a, jr.uniform((5,), F32))
        s = jr.seed()
        assert 0 <= s < 2**64 and jr.initial_seed() == s
        b = jr.normal((7,), F64)
        jr.manual_seed(s)
        assert same_bits(b, jr.normal((7,), F64))
        assert len({jr.seed() for _ in range(8)}) == 8
    finally:
        jr.set_rng_state(saved)


def test_generators_are_independent():
    g1, g2 = Generator().manual_seed(1), Generator().manual_seed(1)
    a = jr.normal((33,), F32, generator=g1)
    jr.uniform((1000,), F64, generator=Generator().manual_seed(1))   # a third one
    saved = jr.get_rng_state()
    jr.normal((50,), F32)                                             # the default one
    jr.set_rng_state(saved)
    assert same_bits(a, jr.normal((33,), F32, generator=g2))
    # each one advanced by exactly its own draws
    assert same_bits(jr.uniform((9,), F32, generator=g1), jr.uniform((9,), F32, generator=g2))
    jr.normal((3,), F32, generator=g1)
    h = Generator().manual_seed(1)
    jr.normal((33,), F32, generator=h)
    jr.uniform((9,), F32, generator=h)
    assert same_bits(jr.randint(0, 100, (6,), generator=h),
                     jr.randint(0, 100, (6,), generator=g2))
    assert not same_bits(g1.get_state(), g2.get_state())


def test_state_round_trip_including_cached_normal():
    g = Generator().manual_seed(123)
    jr.normal((3,), F64, generator=g)        # odd scalar-path count: a normal is cached
    st = g.get_state()
    assert st[5040] == 1                     # normal_is_valid
    a = [jr.normal((1,), F64, generator=g), jr.uniform((5,), F32, generator=g),
         jr.normal((40,), F32, generator=g), jr.randperm(20, generator=g)]
    h = Generator().set_state(st)
    assert h.initial_seed() == 123
    assert same_bits(h.get_state(), st)
    b = [jr.normal((1,), F64, generator=h), jr.uniform((5,), F32, generator=h),
         jr.normal((40,), F32, generator=h), jr.randperm(20, generator=h)]
    for x, y in zip(a, b, strict=True):
        assert same_bits(x, y)
    assert same_bits(g.get_state(), h.get_state())
    # bytes and the 5048-byte legacy layout are accepted too
    assert same_bits(Generator().set_state(st.tobytes()).get_state(), st)
    assert same_bits(Generator().set_state(st[:5048]).get_state(), st)
    # a state taken right after seeding reports next == 0, a drained block next == 624
    fresh = Generator().manual_seed(9)
    assert int.from_bytes(fresh.get_state()[16:24].tobytes(), "little") == 0
    jr.uniform((624,), F32, generator=fresh)
    assert int.from_bytes(fresh.get_state()[16:24].tobytes(), "little") == 624
    assert int.from_bytes(fresh.get_state()[8:12].tobytes(), "little") == 1


def test_set_state_rejects_garbage():
    g = Generator()
    with pytest.raises(ValueError):
        g.set_state(np.zeros(100, np.uint8))
    with pytest.raises(ValueError):
        g.set_state(np.zeros(5056, np.uint8))       # not seeded, left == 0
    with pytest.raises(TypeError):
        g.set_state(np.zeros(5056, np.int64))


def test_basic_properties():
    g = Generator().manual_seed(0)
    p = jr.randperm(1000, generator=g)
    assert sorted(p.tolist()) == list(range(1000)) and p.dtype == np.int64
    assert jr.randperm(0, generator=g).shape == (0,)
    assert jr.randperm(1, generator=g).tolist() == [0]
    assert jr.randperm(5, np.float32, generator=g).dtype == np.float32
    r = jr.randint(-3, 4, (10, 10), np.int32, generator=g)
    assert r.dtype == np.int32 and r.shape == (10, 10) and r.min() >= -3 and r.max() <= 3
    u = jr.uniform((1000,), F64, low=2.0, high=3.0, generator=g)
    assert u.min() >= 2.0 and u.max() < 3.0
    assert not jr.bernoulli(0.0, (100,), F32, generator=g).any()
    assert jr.bernoulli(1.0, (100,), np.bool_, generator=g).all()
    assert jr.normal((), F32, generator=g).shape == ()
    assert jr.normal((0, 3), F32, generator=g).shape == (0, 3)
    with pytest.raises(ValueError):
        jr.randint(5, 5, (3,), generator=g)
    with pytest.raises(TypeError):
        jr.normal((3,), np.int64, generator=g)
    with pytest.raises(ValueError):
        jr.normal((3,), F32, std=-1.0, generator=g)
    with pytest.raises(ValueError):
        jr.bernoulli(1.5, (3,), generator=g)


def test_large_normal_statistics():
    x = jr.normal((1 << 20,), F32, generator=Generator().manual_seed(0))
    assert abs(float(x.mean())) < 0.01 and abs(float(x.std()) - 1) < 0.01
    y = jr.normal((1 << 18,), F64, mean=3.0, std=0.5, generator=Generator().manual_seed(0))
    assert abs(float(y.mean()) - 3) < 0.01 and abs(float(y.std()) - 0.5) < 0.01


# =========================================================================== helpers

def _exact(a, b, c):
    return Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c))


def test_fma32_is_correctly_rounded():
    rng = np.random.default_rng(0)
    a = rng.standard_normal(20000).astype(F32)
    b = rng.standard_normal(20000).astype(F32)
    c = (rng.standard_normal(20000) * 1e-3).astype(F32)
    # hard cases: a*b + c exactly half-way between two floats, nudged by a tiny c
    a[:200] = F32(1) + F32(2.0 ** -12)
    b[:200] = F32(1) + F32(2.0 ** -12)          # a*b = 1 + 2^-11 + 2^-24 (a tie in f32)
    c[:100] = F32(2.0 ** -60)
    c[100:200] = -F32(2.0 ** -60)
    got = jr._fma32(a, b, c)
    want = np.array([float(_exact(x, y, z)) for x, y, z in zip(a, b, c, strict=True)]).astype(F32)
    # float(Fraction) rounds once to double; redo the ties exactly
    for i in range(200):
        e = _exact(a[i], b[i], c[i])
        lo = np.float32(float(e))
        cand = [np.nextafter(lo, F32(-np.inf)), lo, np.nextafter(lo, F32(np.inf))]
        want[i] = min(cand, key=lambda v: (abs(Fraction(float(v)) - e),
                                           int(np.array(v).view(np.uint32)) & 1))
    assert same_bits(got, want)
    assert got[0] != got[100]                    # the two nudges round differently


def test_fma64_is_correctly_rounded():
    rng = np.random.default_rng(1)
    a = rng.standard_normal(5000)
    b = rng.standard_normal(5000)
    c = rng.standard_normal(5000) * 10.0 ** rng.integers(-20, 20, 5000)
    a[:50] = 1 + 2.0 ** -27
    b[:50] = 1 + 2.0 ** -27                      # a*b = 1 + 2^-26 + 2^-54: a tie
    c[:25] = 2.0 ** -120
    c[25:50] = -2.0 ** -120
    got = jr._fma64(a, b, c)
    want = np.array([float(_exact(x, y, z)) for x, y, z in zip(a, b, c, strict=True)])
    assert same_bits(got, want)


def _ref_swap(z):
    a = list(range(len(z) + 1))
    for i, zi in enumerate(z):
        a[i], a[i + zi] = a[i + zi], a[i]
    return a


def _ref_inside_out(z):
    a = [0] * len(z)
    for i, zi in enumerate(z):
        a[i] = a[zi]
        a[zi] = i
    return a


@pytest.mark.parametrize("n", [2, 3, 4, 5, 8, 17, 100, 1000, 5000])
def test_shuffle_helpers_match_sequential_loops(n):
    rng = np.random.default_rng(n)
    for _ in range(10):
        z = rng.integers(0, 2**32, n - 1).astype(np.uint64) % (
            np.uint64(n) - np.arange(n - 1, dtype=np.uint64))
        assert jr._perm_swap(z.astype(np.int32)).tolist() == _ref_swap(z.tolist())
        z = rng.integers(0, 2**63, n).astype(np.uint64) % (
            np.arange(n, dtype=np.uint64) + np.uint64(1))
        assert jr._perm_inside_out(z.astype(np.int32)).tolist() == _ref_inside_out(z.tolist())
    # degenerate offsets: all zero (identity) and all maximal
    assert jr._perm_swap(np.zeros(n - 1, np.int32)).tolist() == list(range(n))
    zmax = (n - 1 - np.arange(n - 1)).astype(np.int32)
    assert jr._perm_swap(zmax).tolist() == _ref_swap(zmax.tolist())
    assert jr._perm_inside_out(np.arange(n, dtype=np.int32)).tolist() == list(range(n))
    assert jr._perm_inside_out(np.zeros(n, np.int32)).tolist() == _ref_inside_out([0] * n)


def test_large_randperm_branch_runs_torchs_inside_out_shuffle(monkeypatch):
    """n >= 214748364 switches to torch's 64-bit inside-out shuffle; check that branch
    at a small size against the sequential loop over the same draws."""
    monkeypatch.setattr(jr, "_RANDPERM_SMALL", 10)
    g, h = Generator().manual_seed(4), Generator().manual_seed(4)
    perm = jr.randperm(50, generator=g)
    r = h._raw64(50)
    z = (r % (np.arange(50, dtype=np.uint64) + np.uint64(1))).tolist()
    assert perm.tolist() == _ref_inside_out(z)
    assert same_bits(g.get_state(), h.get_state())


def test_libm_wrappers_match_math_module():
    x = np.linspace(1e-9, 1.0, 3001)
    assert np.array_equal(jr._libm("log")(x), [math.log(v) for v in x])
    t = np.linspace(0.0, 2 * math.pi, 3001)
    assert np.array_equal(jr._libm("sin")(t), [math.sin(v) for v in t])
    assert np.array_equal(jr._libm("cos")(t), [math.cos(v) for v in t])


# =========================================================================== torch oracle

@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def _tdt(torch, dt):
    return {np.dtype(F32): torch.float32, np.dtype(F64): torch.float64,
            np.dtype(np.float16): torch.float16, np.dtype(np.int64): torch.int64,
            np.dtype(np.int32): torch.int32, np.dtype(np.int16): torch.int16,
            np.dtype(np.int8): torch.int8, np.dtype(np.uint8): torch.uint8,
            np.dtype(np.bool_): torch.bool}[np.dtype(dt)]


def _pair(torch, seed):
    tg = torch.Generator().manual_seed(seed)
    return tg, Generator().manual_seed(seed)


SEEDS = [0, 1, 123456789, 2**40 + 17]
SIZES = [0, 1, 2, 7, 15, 16, 17, 31, 32, 33, 47, 48, 100, 1000, 4099]
MEAN_STD = [(0.0, 1.0), (0.5, 2.3), (-3.0, 0.25), (1.0, 0.0), (0.0, 3.7)]


@pytest.mark.parametrize("dt", [F32, F64, np.float16])
@pytest.mark.parametrize("seed", SEEDS)
def test_normal_matches_torch(torch, dt, seed):
    tg, g = _pair(torch, seed)
    for n in SIZES:
        for mean, std in MEAN_STD:
            want = torch.empty(n, dtype=_tdt(torch, dt)).normal_(mean, std, generator=tg)
            got = jr.normal((n,), dt, mean, std, generator=g)
            assert same_bits(got, want.numpy()), (n, mean, std)
    assert same_bits(g.get_state(), tg.get_state().numpy())


@pytest.mark.parametrize("shape", [(10, 2), (3, 5, 7), (4, 4), (2, 0, 3), (), (1,), (5, 3)])
def test_randn_shapes_match_torch(torch, shape):
    for dt in (F32, F64):
        tg, g = _pair(torch, 0)
        for _ in range(3):
            want = torch.randn(shape, dtype=_tdt(torch, dt), generator=tg).numpy()
            assert same_bits(jr.normal(shape, dt, generator=g), want)


@pytest.mark.parametrize("dt", [F32, F64])
@pytest.mark.parametrize("mean,std", [(0.0, 1.0), (0.1, 1.3)])
def test_large_normal_matches_torch(torch, dt, mean, std):
    tg, g = _pair(torch, 2024)
    n = (1 << 20) + 5
    want = torch.empty(n, dtype=_tdt(torch, dt)).normal_(mean, std, generator=tg).numpy()
    assert same_bits(jr.normal((n,), dt, mean, std, generator=g), want)


@pytest.mark.parametrize("dt", [F32, F64, np.float16])
@pytest.mark.parametrize("seed", SEEDS[:3])
def test_uniform_matches_torch(torch, dt, seed):
    tg, g = _pair(torch, seed)
    for n in [0, 1, 5, 16, 17, 1000, 20001]:
        for lo, hi in [(0.0, 1.0), (-1.0, 1.0), (-3.3, 7.1), (2.0, 2.0), (0.0, 1e-3),
                       (-1e6, 1e6), (0.25, 0.75), (-7.0, -5.5)]:
            if dt is np.float16 and hi > 65504:
                with pytest.raises(ValueError):
                    jr.uniform((n,), dt, lo, hi, generator=g)
                continue
            want = torch.empty(n, dtype=_tdt(torch, dt)).uniform_(lo, hi, generator=tg)
            got = jr.uniform((n,), dt, lo, hi, generator=g)
            assert same_bits(got, want.numpy()), (n, lo, hi)
    want = torch.rand(6, 7, dtype=_tdt(torch, dt), generator=tg).numpy()
    assert same_bits(jr.uniform((6, 7), dt, generator=g), want)


RANGES = [(0, 2), (0, 10), (-5, 17), (-100, -50), (0, 2**28 - 1), (0, 2**28), (0, 2**31),
          (0, 2**32 - 1), (0, 2**32), (-2**40, 2**41), (-2**62, 2**62), (-2**63, 2**63 - 1),
          (1000, 1001), (-2049, 2051), (-(2**53) - 3, 2**53 + 3)]


def _randint_cases(rng, k):
    cases = list(RANGES)
    for _ in range(k):
        lo = int(rng.integers(-2**62, 2**62)) >> int(rng.integers(0, 62))
        cases.append((lo, lo + (int(rng.integers(1, 2**62)) >> int(rng.integers(0, 62)))))
    return cases


@pytest.mark.filterwarnings("ignore:.*out of bounds.*:UserWarning")
@pytest.mark.parametrize("dt", [np.int64, np.int32, np.int16, np.int8, np.uint8, F32, F64,
                                np.float16])
def test_randint_matches_torch(torch, dt):
    """Includes the 64-bit draws from a range of 2**28 on and the float dtypes' bounds
    that torch pulls inwards when low + 1 / high - 1 are not representable."""
    tg, g = _pair(torch, 77)
    for lo, hi in _randint_cases(np.random.default_rng(3), 30):
        for n in [1, 7, 100]:
            try:
                want = torch.randint(lo, hi, (n,), dtype=_tdt(torch, dt), generator=tg)
            except RuntimeError:             # out of bounds for the dtype
                with pytest.raises(ValueError):
                    jr.randint(lo, hi, (n,), dt, generator=g)
                break
            got = jr.randint(lo, hi, (n,), dt, generator=g)
            assert same_bits(got, want.numpy()), (lo, hi, n)
    want = torch.randint(0, 2, (9,), dtype=torch.bool, generator=tg).numpy()
    assert same_bits(jr.randint(0, 2, (9,), np.bool_, generator=g), want)
    assert same_bits(g.get_state(), tg.get_state().numpy())


@pytest.mark.parametrize("n", [0, 1, 2, 3, 10, 100, 1000, 12345, 300000])
def test_randperm_matches_torch(torch, n):
    tg, g = _pair(torch, n)
    for dt in (np.int64, np.int32, F32, F64):
        want = torch.randperm(n, dtype=_tdt(torch, dt), generator=tg).numpy()
        assert same_bits(jr.randperm(n, dt, generator=g), want)
    assert same_bits(g.get_state(), tg.get_state().numpy())


def test_bernoulli_matches_torch(torch):
    tg, g = _pair(torch, 5)
    rng = np.random.default_rng(0)
    for n in [1, 16, 17, 1000]:
        for p in (0.0, 0.1, 0.5, 0.999, 1.0):
            want = torch.empty(n).bernoulli_(p, generator=tg).numpy()
            assert same_bits(jr.bernoulli(p, (n,), F32, generator=g), want)
        for pdt in (F32, F64):
            pa = rng.random(n).astype(pdt)
            want = torch.bernoulli(torch.from_numpy(pa), generator=tg).numpy()
            assert same_bits(jr.bernoulli(pa, dtype=pdt, generator=g), want)
    # p broadcast against the output shape, integer / bool outputs
    pa = rng.random((3, 1)).astype(F32)
    want = torch.empty(3, 4, dtype=torch.int64).bernoulli_(torch.from_numpy(pa), generator=tg)
    assert same_bits(jr.bernoulli(pa, (3, 4), np.int64, generator=g), want.numpy())
    want = torch.empty(5, 2, dtype=torch.bool).bernoulli_(0.3, generator=tg)
    assert same_bits(jr.bernoulli(0.3, (5, 2), np.bool_, generator=g), want.numpy())
    assert same_bits(g.get_state(), tg.get_state().numpy())


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dropout_masks_match_torch(torch, p):
    x = torch.ones(37, 11)
    torch.manual_seed(31)
    y = torch.nn.functional.dropout(x, p, training=True).numpy()
    mask = jr.bernoulli(1 - p, (37, 11), F32, generator=Generator().manual_seed(31))
    assert np.array_equal(y != 0, mask != 0)
    assert same_bits(y, (mask * np.float32(1 / (1 - p))).astype(F32))


def _program(rng, length):
    ops = []
    for _ in range(length):
        k = int(rng.integers(7))
        n = int(rng.choice([1, 2, 3, 5, 15, 16, 17, 40, 257]))
        dt = [F32, F64][int(rng.integers(2))]
        ops.append((k, n, dt))
    return ops


@pytest.mark.parametrize("seed", range(8))
def test_call_sequences_match_torch(torch, seed):
    rng = np.random.default_rng(seed)
    tg, g = _pair(torch, seed * 1000 + 1)
    for k, n, dt in _program(rng, 40):
        t = _tdt(torch, dt)
        if k == 0:
            a, b = torch.randn(n, dtype=t, generator=tg), jr.normal((n,), dt, generator=g)
        elif k == 1:
            a = torch.empty(n, dtype=t).normal_(-1.5, 0.7, generator=tg)
            b = jr.normal((n,), dt, -1.5, 0.7, generator=g)
        elif k == 2:
            a, b = torch.rand(n, dtype=t, generator=tg), jr.uniform((n,), dt, generator=g)
        elif k == 3:
            a = torch.randint(-7, 2**33, (n,), generator=tg)
            b = jr.randint(-7, 2**33, (n,), np.int64, generator=g)
        elif k == 4:
            a, b = torch.randperm(n, generator=tg), jr.randperm(n, generator=g)
        elif k == 5:
            a = torch.empty(n).bernoulli_(0.3, generator=tg)
            b = jr.bernoulli(0.3, (n,), F32, generator=g)
        else:
            a = torch.randint(0, 5, (n,), dtype=torch.int32, generator=tg)
            b = jr.randint(0, 5, (n,), np.int32, generator=g)
        assert same_bits(b, a.numpy()), (k, n, dt)
        assert same_bits(g.get_state(), tg.get_state().numpy()), (k, n, dt)


def test_cached_normal_survives_between_calls(torch):
    tg, g = _pair(torch, 99)
    for n, dt in [(1, F32), (1, F64), (3, F32), (20, F32), (1, F64), (5, F64), (16, F64),
                  (1, F32), (7, F32)]:
        a = torch.randn(n, dtype=_tdt(torch, dt), generator=tg).numpy()
        assert same_bits(jr.normal((n,), dt, generator=g), a)
        assert same_bits(g.get_state(), tg.get_state().numpy())
    g.manual_seed(99)
    tg.manual_seed(99)           # seeding drops the cached sample in both
    assert same_bits(jr.normal((1,), F64, generator=g),
                     torch.randn(1, dtype=torch.float64, generator=tg).numpy())


def test_default_generator_matches_torch_manual_seed(torch):
    saved_t, saved_j = torch.get_rng_state(), jr.get_rng_state()
    try:
        for s in (0, 42, -5, 2**63 + 11, 67280421310721):
            torch.manual_seed(s)
            jr.manual_seed(s)
            assert jr.initial_seed() == torch.initial_seed()
            assert same_bits(jr.get_rng_state(), torch.get_rng_state().numpy())
            assert same_bits(jr.normal((10, 2), F32), torch.randn(10, 2).numpy())
            assert same_bits(jr.uniform((3,), F32), torch.rand(3).numpy())
            assert same_bits(jr.randint(0, 10, (4,)), torch.randint(0, 10, (4,)).numpy())
            assert same_bits(jr.randperm(9), torch.randperm(9).numpy())
            assert same_bits(jr.get_rng_state(), torch.get_rng_state().numpy())
    finally:
        torch.set_rng_state(saved_t)
        jr.set_rng_state(saved_j)


def test_fresh_generator_matches_torch_generator(torch):
    tg, g = torch.Generator(), Generator()
    assert tg.initial_seed() == g.initial_seed()
    assert same_bits(g.get_state(), tg.get_state().numpy())
    assert same_bits(jr.normal((10, 2), F32, generator=g),
                     torch.randn(10, 2, generator=tg).numpy())


def test_state_exchanges_with_torch(torch):
    tg, g = _pair(torch, 8)
    torch.randn(3, generator=tg)              # leaves a cached double normal
    torch.rand(101, generator=tg)
    g.set_state(tg.get_state().numpy())       # torch -> jitgrad, mid-block, with cache
    assert same_bits(jr.normal((5,), F64, generator=g),
                     torch.randn(5, dtype=torch.float64, generator=tg).numpy())
    jr.uniform((700,), F32, generator=g)      # crosses a twist
    tg.set_state(torch.from_numpy(g.get_state()))   # jitgrad -> torch
    assert same_bits(jr.normal((33,), F32, generator=g),
                     torch.randn(33, generator=tg).numpy())
    assert same_bits(jr.randperm(50, generator=g), torch.randperm(50, generator=tg).numpy())
    assert same_bits(g.get_state(), tg.get_state().numpy())
