"""Every launch path of the CPU kernels (flat, scalar operand, broadcast; serial and
parallel) against numpy. The parallel threshold is lowered so small arrays take the parallel
variants too."""

from __future__ import annotations

import numpy as np
import pytest

from jitgrad.kernels import elementwise as ew
from jitgrad.kernels import index as ix
from jitgrad.kernels import reduce as rd

SHAPES = [  # (a, b): same shape, scalar operands, broadcasts that merge and that don't
    ((7, 5), (7, 5)),
    ((7, 5), ()),
    ((), (7, 5)),
    ((1,), (3, 4)),
    ((6, 1, 5), (1, 4, 5)),
    ((4, 1), (1, 6)),
    ((3, 1, 2, 1), (3, 5, 2, 4)),
    ((1, 1), (1, 1)),
]


@pytest.fixture(params=["serial", "parallel"])
def threshold(request, monkeypatch):
    if request.param == "parallel":
        monkeypatch.setattr(ew, "PARALLEL_MIN", 1)
        monkeypatch.setattr(rd, "PARALLEL_MIN", 1)
    return request.param


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("sa,sb", SHAPES)
def test_binary_layouts(threshold, rng, sa, sb, dtype):
    a = (rng.standard_normal(sa) * 10).astype(dtype)
    b = (rng.standard_normal(sb) * 10).astype(dtype)
    shape = np.broadcast_shapes(sa, sb)
    np.testing.assert_allclose(ew.binary("mul", a, b, shape), a * b, rtol=1e-6)
    np.testing.assert_array_equal(ew.binary("lt", a, b, shape, out_dtype=np.bool_), a < b)


@pytest.mark.parametrize("sa,sb", SHAPES)
def test_binary_on_broadcast_and_strided_views(threshold, rng, sa, sb):
    shape = np.broadcast_shapes(sa, sb)
    a = np.broadcast_to(rng.standard_normal(sa), shape)  # stride-0 view
    b = rng.standard_normal(shape[::-1]).T if len(shape) > 1 else rng.standard_normal(shape)
    np.testing.assert_allclose(ew.binary("sub", a, b, shape), a - b)


def test_binary_into_out(threshold, rng):
    a = rng.standard_normal((50, 3))
    b = rng.standard_normal(3)
    expect = a + b
    ew.binary("add", a, b, a.shape, out=a)
    np.testing.assert_allclose(a, expect)


@pytest.mark.parametrize("shape", [(), (1,), (9,), (4, 6), (2, 3, 5)])
def test_unary(threshold, rng, shape):
    a = rng.standard_normal(shape)
    np.testing.assert_allclose(ew.unary("tanh", a), np.tanh(a))
    np.testing.assert_allclose(ew.unary("exp", a.T), np.exp(a.T))


@pytest.mark.parametrize("sc,sa,sb", [((5, 4), (5, 4), (5, 4)), ((5, 1), (4,), ()),
                                      ((), (3, 2), (2,))])
def test_ternary_where(threshold, rng, sc, sa, sb):
    c = rng.standard_normal(sc) > 0
    a = rng.standard_normal(sa)
    b = rng.standard_normal(sb)
    shape = np.broadcast_shapes(sc, sa, sb)
    np.testing.assert_array_equal(ew.ternary("where", c, a, b, shape), np.where(c, a, b))


@pytest.mark.parametrize("shape,dims", [((1000,), (0,)), ((30, 40), (0,)), ((30, 40), (1,)),
                                        ((3, 4, 5), (0, 2)), ((3, 4, 5), (1,)),
                                        ((2, 3, 4, 5), (1, 2)), ((0, 3), (0,))])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.bool_])
def test_sum(threshold, rng, shape, dims, dtype):
    a = (rng.standard_normal(shape) * 5).astype(dtype)
    a3, kept = rd.as_3d(a, dims)
    out_dtype = a.dtype if a.dtype.kind == "f" else np.int64
    got = rd.sum_(a3, out_dtype).reshape(kept)
    # The reference sums in float64 too; a float32 result is one rounding away from it.
    ref = a.astype(np.float64).sum(axis=dims)
    tol = np.finfo(out_dtype).eps * np.abs(a).astype(np.float64).sum(axis=dims) \
        if a.dtype.kind == "f" else 0
    assert got.dtype == out_dtype
    np.testing.assert_allclose(got, ref, rtol=0, atol=np.max(tol, initial=0) + 1e-12)


def test_float32_sum_is_accurate(threshold):
    # A float32 accumulator would drift far from 1e7 here; the kernels accumulate in float64.
    a = np.full(10_000_000, 1.0, dtype=np.float32)
    assert rd.sum_(a.reshape(1, -1, 1), np.float32)[0, 0] == 1e7


@pytest.mark.parametrize("want_max", [True, False])
def test_extreme_first_index_and_nan(want_max):
    a = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, np.nan, 5.0, np.nan]])
    vals, idx = rd.extreme(a.reshape(2, 4, 1), want_max)
    if want_max:
        assert vals[0, 0] == 3.0 and idx[0, 0] == 1
    else:
        assert vals[0, 0] == 0.0 and idx[0, 0] == 3
    assert np.isnan(vals[1, 0]) and idx[1, 0] == 1


def test_scatter_add_accumulates_repeats():
    out = ix.scatter_add(4, np.array([0, 2, 2, 2]), np.array([1.0, 1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(out, [1.0, 0.0, 6.0, 0.0])


def test_gather_and_scatter_dim_are_inverse(rng):
    x = rng.standard_normal((3, 5, 2))
    idx = rng.integers(0, 5, size=(3, 2))
    g = ix.gather_dim(x, idx)
    np.testing.assert_array_equal(g, np.take_along_axis(x, idx[:, None, :], 1)[:, 0, :])
    s = ix.scatter_dim(g, idx, 5)
    np.testing.assert_array_equal(np.take_along_axis(s, idx[:, None, :], 1)[:, 0, :], g)


def test_compiled_kernels_are_found_in_the_disk_cache_by_a_new_process(tmp_path):
    import os
    import subprocess
    import sys

    code = (
        "import numpy as np\n"
        "from jitgrad.kernels import elementwise as ew\n"
        "a = np.ones(3, np.float32)\n"
        "ew.binary('mul', a, a, (3,))\n"
        "ew.binary('mul', a, a.reshape(3, 1), (3, 3))\n"
        "flat, _, bcast, _ = ew._loops(ew.scalar.BINARY, ew._binary_loops, 'mul', a.dtype)\n"
        "print(sum(flat.stats.cache_hits.values()), sum(flat.stats.cache_misses.values()),\n"
        "      sum(bcast.stats.cache_hits.values()), sum(bcast.stats.cache_misses.values()))\n"
    )
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    runs = [subprocess.run([sys.executable, "-c", code], env=env, check=True,
                           capture_output=True, text=True).stdout.split() for _ in range(2)]
    assert runs[0] == ["0", "1", "0", "1"]  # compiled and saved
    assert runs[1] == ["1", "0", "1", "0"]  # loaded, nothing recompiled
