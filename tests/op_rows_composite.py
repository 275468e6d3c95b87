"""Op-table rows of the composite functions (jitgrad/_composite.py): the floating-point tests
on inputs full of NaNs, infinities and near-equal values, and the shape helpers, whose
gradients come from the ops they are made of; and of sorting (jitgrad/_sorting.py): sort,
argsort, topk and msort, on distinct values (one right order) and, stably, on ties, NaNs and
infinities."""

from __future__ import annotations

import numpy as np
from op_table import (ALL, BOOL, DISTINCT, F32, F64, FLOATS, GRID, I64, NUMERIC, OpRow,
                      Sampler, _nograd, fixed, values_indices)

R = OpRow
PAIRS = [((2, 3), (2, 3)), ((2, 1, 3), (4, 1)), ((), (3,))]


def _specials(rng, shape, dt):
    """Floats drawn from NaN, both infinities, zeros and ordinary values; other dtypes from
    a small grid."""
    if dt.kind != "f":
        return GRID(rng, shape, dt)
    pool = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.5, -2.0], dtype=dt)
    return rng.choice(pool, shape)


def _nearby(rng, shape, dt):
    """Values equal, within isclose's default tolerances, just outside them, or special, so
    that random pairs reach every branch of isclose."""
    if dt.kind != "f":
        return np.asarray(rng.integers(-2, 3, shape), dtype=dt)
    pool = np.array([1.0, 1.0 + 5e-6, 1.0 + 5e-5, -1.0, 0.0, 1e-9, np.inf, np.nan], dtype=dt)
    return rng.choice(pool, shape)


ROWS: list[OpRow] = [
    R("isnan", lambda m, x: m.isnan(x), np.isnan, [((2, 3),), ((),)], _specials, dtypes=ALL,
      out_dtype=fixed(BOOL), **_nograd()),
    R("isinf", lambda m, x: x.isinf(), np.isinf, [((2, 3),), ((),)], _specials, dtypes=ALL,
      out_dtype=fixed(BOOL), **_nograd()),
    R("isfinite", lambda m, x: m.isfinite(x), np.isfinite, [((2, 3),), ((),)], _specials,
      dtypes=ALL, out_dtype=fixed(BOOL), **_nograd()),
    R("isclose", lambda m, x, y: m.isclose(x, y), np.isclose, PAIRS, _nearby,
      dtypes=(F64, I64, BOOL), out_dtype=fixed(BOOL), **_nograd()),
    R("isclose_f32_tolerances", lambda m, x, y: x.isclose(y, rtol=1e-4, atol=1e-6),
      lambda a, b: np.isclose(a, b, rtol=1e-4, atol=1e-6), PAIRS, _nearby, dtypes=(F32,),
      out_dtype=fixed(BOOL), **_nograd()),
    R("isclose_equal_nan", lambda m, x, y: m.isclose(x, y, equal_nan=True),
      lambda a, b: np.isclose(a, b, equal_nan=True), PAIRS, _nearby, dtypes=(F64,),
      out_dtype=fixed(BOOL), **_nograd()),
    R("broadcast_to", lambda m, x: m.broadcast_to(x, (4, 2, 3)),
      lambda x: np.broadcast_to(x, (4, 2, 3)), [((2, 3),), ((2, 1),), ((),)]),
    R("movedim", lambda m, x: m.movedim(x, 0, -1), lambda x: np.moveaxis(x, 0, -1),
      [((2, 3, 4),)], dtypes=ALL),
    R("movedim_many", lambda m, x: x.moveaxis((0, 1), (2, 0)),
      lambda x: np.moveaxis(x, (0, 1), (2, 0)), [((2, 3, 4),)]),
    R("swapdims", lambda m, x: x.swapdims(0, 2), lambda x: np.swapaxes(x, 0, 2),
      [((2, 3, 4),)]),
    R("outer", lambda m, x, y: m.outer(x, y), np.outer, [((3,), (4,)), ((1,), (2,))],
      dtypes=NUMERIC),
    R("addmm", lambda m, c, a, b: m.addmm(c, a, b), lambda c, a, b: c + a @ b,
      [((2, 4), (2, 3), (3, 4)), ((4,), (2, 3), (3, 4))]),
    R("addmm_scaled", lambda m, c, a, b: c.addmm(a, b, beta=0.5, alpha=-2.0),
      lambda c, a, b: 0.5 * c + -2.0 * (a @ b), [((2, 4), (2, 3), (3, 4))]),
    R("hstack", lambda m, x, y: m.hstack([x, y]), lambda x, y: np.hstack([x, y]),
      [((2, 3), (2, 1)), ((3,), (2,)), ((), ())], dtypes=ALL),
    R("vstack", lambda m, x, y: m.vstack([x, y]), lambda x, y: np.vstack([x, y]),
      [((2, 3), (1, 3)), ((3,), (3,)), ((3,), (2, 3))], dtypes=ALL),
    R("clamp_min_function", lambda m, x: m.clamp_min(x, -0.5), lambda x: np.maximum(x, -0.5),
      [((2, 3),)], Sampler(-2.0, 2.0, avoid=(-0.5,))),
    R("clamp_max_int", lambda m, x: m.clamp_max(x, 1), lambda x: np.minimum(x, 1),
      [((2, 3),)], dtypes=(I64,), **_nograd()),
]



# ------------------------------------------------------------------ sorting
def _stable_sort(x, axis=-1, descending=False):
    """numpy's stable sort along axis (descending keeps equal elements in order too); NaN
    last, or first when descending."""
    if x.ndim == 0:
        return x, np.zeros((), np.int64)
    if descending:
        idx = x.shape[axis] - 1 - np.flip(np.argsort(np.flip(x, axis), axis=axis,
                                                     kind="stable"), axis)
    else:
        idx = np.argsort(x, axis=axis, kind="stable")
    return np.take_along_axis(x, idx, axis), idx


def _topk(x, k, axis=-1, largest=True):
    v, i = _stable_sort(x, axis, largest)
    take = [slice(None)] * x.ndim
    take[axis] = slice(0, k)
    return v[tuple(take)], i[tuple(take)]


SORT_CASES = [((2, 5),), ((4,),), ((),)]

ROWS += [
    R("sort", lambda m, x: m.sort(x), _stable_sort, SORT_CASES, DISTINCT, dtypes=NUMERIC,
      out_dtype=values_indices),
    R("sort_descending_dim0", lambda m, x: x.sort(0, descending=True),
      lambda x: _stable_sort(x, 0, True), [((3, 4),), ((2, 3, 4),)], DISTINCT,
      out_dtype=values_indices),
    R("sort_stable_ties_and_specials", lambda m, x: m.sort(x, stable=True, descending=True),
      lambda x: _stable_sort(x, -1, True), [((3, 7),), ((9,),)], _specials, dtypes=ALL,
      out_dtype=values_indices, **_nograd()),
    R("sort_stable_ascending_ties", lambda m, x: x.sort(dim=0, stable=True),
      lambda x: _stable_sort(x, 0), [((7, 3),)], _specials, dtypes=ALL,
      out_dtype=values_indices, **_nograd()),
    R("argsort", lambda m, x: m.argsort(x, dim=1, descending=True),
      lambda x: _stable_sort(x, 1, True)[1], [((3, 5),), ((2, 4, 3),)], DISTINCT,
      out_dtype=fixed(I64), **_nograd()),
    R("topk", lambda m, x: m.topk(x, 2), lambda x: _topk(x, 2), [((3, 5),), ((5,),)],
      DISTINCT, dtypes=NUMERIC, out_dtype=values_indices),
    R("topk_smallest_dim0", lambda m, x: x.topk(3, dim=0, largest=False),
      lambda x: _topk(x, 3, 0, False), [((4, 2),), ((3, 2, 2),)], DISTINCT,
      out_dtype=values_indices),
    R("topk_all_and_none", lambda m, x: (m.topk(x, 4).values, m.topk(x, 0).values),
      lambda x: (_topk(x, 4)[0], _topk(x, 0)[0]), [((3, 4),)], DISTINCT,
      out_dtype=lambda dts: (dts[0], dts[0])),
    R("msort", lambda m, x: m.msort(x), lambda x: np.sort(x, 0), [((4, 3),)], DISTINCT),
]


# ------------------------------------------------------------------ selections and shapes
def _nan_to_num(x):
    info = np.finfo(x.dtype) if x.dtype.kind == "f" else None
    return np.nan_to_num(x, nan=0.0, posinf=info.max if info else None,
                         neginf=info.min if info else None)


ROWS += [
    R("nonzero", lambda m, x: m.nonzero(x), lambda x: np.argwhere(x), [((3, 4),), ((5,),)],
      GRID, dtypes=ALL, out_dtype=fixed(I64), **_nograd()),
    R("nonzero_as_tuple", lambda m, x: x.nonzero(as_tuple=True), lambda x: np.nonzero(x),
      [((3, 4),)], GRID, dtypes=(F64, BOOL), out_dtype=lambda dts: (I64, I64), **_nograd()),
    R("where_condition_only", lambda m, x: m.where(x > 0), lambda x: np.nonzero(x > 0),
      [((3, 4),)], GRID, dtypes=(F64, I64), out_dtype=lambda dts: (I64, I64), **_nograd()),
    R("count_nonzero", lambda m, x: m.count_nonzero(x, dim=0),
      lambda x: np.count_nonzero(x, axis=0), [((3, 4),), ((4,),)], GRID, dtypes=ALL,
      out_dtype=fixed(I64), **_nograd()),
    R("masked_select", lambda m, x: m.masked_select(x, x > 0.25),
      lambda x: x[np.broadcast_to(x > 0.25, x.shape)], [((3, 4),), ((5,),)],
      Sampler(-1.0, 1.0, avoid=(0.25,))),
    R("masked_select_broadcast", lambda m, x, y: m.masked_select(x, y > 0),
      lambda x, y: np.broadcast_to(x, np.broadcast_shapes(x.shape, y.shape))[
          np.broadcast_to(y > 0, np.broadcast_shapes(x.shape, y.shape))],
      [((3, 1), (4,)), ((4,), (2, 4))], (Sampler(), Sampler(-1.0, 1.0, away=0.1))),
    R("nan_to_num", lambda m, x: m.nan_to_num(x), _nan_to_num, [((2, 3),), ((),)]),
    R("nan_to_num_specials", lambda m, x: x.nan_to_num(nan=1.5, posinf=7.0, neginf=-8.0),
      lambda x: np.nan_to_num(x, nan=1.5, posinf=7.0, neginf=-8.0),
      [((3, 5),)], _specials, dtypes=ALL, **_nograd()),
    R("diff", lambda m, x: m.diff(x), lambda x: np.diff(x), [((3, 5),), ((4,),)],
      dtypes=NUMERIC),
    R("diff_order_dim_ends", lambda m, x, p, a: x.diff(n=2, dim=0, prepend=p, append=a),
      lambda x, p, a: np.diff(x, n=2, axis=0, prepend=p, append=a),
      [((3, 4), (1, 4), (2, 4))]),
    R("diff_bool", lambda m, x: m.diff(x), lambda x: np.diff(x), [((6,),)], dtypes=(BOOL,),
      **_nograd()),
    R("fliplr_flipud", lambda m, x: (m.fliplr(x), x.flipud()),
      lambda x: (np.fliplr(x), np.flipud(x)), [((3, 4),), ((2, 3, 2),)],
      out_dtype=lambda dts: (dts[0], dts[0])),
    R("trace", lambda m, x: m.trace(x), np.trace, [((3, 3),), ((2, 4),), ((4, 2),)],
      dtypes=FLOATS),
    R("diag_of_matrix", lambda m, x: m.diag(x, 1), lambda x: np.diag(x, 1), [((3, 4),)]),
    R("diag_of_vector", lambda m, x: (m.diag(x), x.diag(-2), m.diag(x, 1)),
      lambda x: (np.diag(x), np.diag(x, -2), np.diag(x, 1)), [((3,),)],
      out_dtype=lambda dts: (dts[0],) * 3),
    R("meshgrid_ij", lambda m, x, y: m.meshgrid(x, y, indexing="ij"),
      lambda x, y: tuple(np.meshgrid(x, y, indexing="ij")), [((3,), (4,))],
      out_dtype=lambda dts: (dts[0], dts[0])),
    R("meshgrid_xy", lambda m, x, y, z: m.meshgrid([x, y, z], indexing="xy"),
      lambda x, y, z: tuple(np.meshgrid(x, y, z, indexing="xy")), [((3,), (2,), (4,))],
      out_dtype=lambda dts: (dts[0],) * 3),
    R("broadcast_tensors", lambda m, x, y: m.broadcast_tensors(x, y),
      lambda x, y: tuple(np.broadcast_arrays(x, y)), [((3, 1), (4,)), ((), (2, 3))],
      out_dtype=lambda dts: (dts[0], dts[1])),
]
ROWS += [
    R("select", lambda m, x: (x.select(1, -1), m.select(x, 0, 1)),
      lambda x: (x[:, -1], x[1]), [((3, 4),), ((2, 3, 2),)],
      out_dtype=lambda dts: (dts[0], dts[0])),
]
