"""Op-table rows of the reductions and softmax family (jitgrad/_reductions.py), plus the
multi-dim sum and mean of the core. ``tests/test_ops.py`` runs each row: forward against
numpy, gradients against central differences and against torch, double backward."""

from __future__ import annotations

import numpy as np

from op_table import (ALL, BOOL, CUBE, DISTINCT, F32, F64, GRID, I64, NUMERIC, UNARY,
                      UNARY3, OpRow, Sampler, boolean, fixed, floating, summed, _nograd)

R = OpRow
INF = float("inf")

FACTORS = Sampler(-1.5, 1.5, away=0.4)  # products stay moderate, away from 0
WIDE = Sampler(-6.0, 6.0)  # softmax inputs spanning several orders of magnitude after exp
AWAY = Sampler(away=0.3)  # away from the kinks of |x| at 0


def _with_zeros(rng: np.random.Generator, shape: tuple, dtype: np.dtype) -> np.ndarray:
    """Small integers with zeros placed for sure: one zero in some rows of the last dim, two
    in others (products and running products have special gradients there)."""
    x = rng.choice(np.array([-2, -1, 1, 2]), size=shape).astype(dtype)
    if x.ndim and x.size:
        flat = x.reshape(-1, shape[-1])
        for i, row in enumerate(flat):
            picks = rng.permutation(row.size)[: 1 + i % 2]
            row[picks] = 0
    return x


def _var(x, axis=None, ddof=1, keepdims=False):
    return np.var(x, axis=axis, ddof=ddof, keepdims=keepdims)


def _std(x, axis=None, ddof=1, keepdims=False):
    return np.std(x, axis=axis, ddof=ddof, keepdims=keepdims)


def _pnorm(x, p, axis=None, keepdims=False):
    a = np.abs(x)
    if p == INF:
        return a.max(axis=axis, keepdims=keepdims)
    if p == -INF:
        return a.min(axis=axis, keepdims=keepdims)
    if p == 0:
        return (a != 0).sum(axis=axis, keepdims=keepdims).astype(x.dtype)
    return (a ** p).sum(axis=axis, keepdims=keepdims) ** (1 / p)


def _lse(x, axis, keepdims=False):
    m = x.max(axis=axis, keepdims=True)
    r = np.log(np.exp(x - m).sum(axis=axis, keepdims=True)) + m
    return r if keepdims else np.squeeze(r, axis=axis)


def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _log_softmax(x, axis):
    return x - _lse(x, axis, keepdims=True)


def _scan(f, x, axis):
    """numpy's cumsum/cumprod, keeping a 0-d input 0-d as torch does."""
    return f(x, axis) if x.ndim else f(x).reshape(())


FOUR = [((2, 3, 1, 4),)]
MATRIX_CUBE = [((3, 4),), ((2, 3, 4),)]

ROWS: list[OpRow] = [
    # ------------------------------------------------------------------ sum, mean: several dims
    R("sum_dims_4d", lambda m, x: x.sum((-1, 1)), lambda x: x.sum((-1, 1)), FOUR, dtypes=ALL,
      out_dtype=summed),
    R("sum_dims_list_keepdim", lambda m, x: m.sum(x, [0, 2, 3], keepdim=True),
      lambda x: x.sum((0, 2, 3), keepdims=True), FOUR, dtypes=NUMERIC, out_dtype=summed),
    R("mean_dims_4d", lambda m, x: x.mean((0, -2)), lambda x: x.mean((0, 2)), FOUR),
    R("mean_dims_keepdim", lambda m, x: m.mean(x, [3, 1], keepdim=True),
      lambda x: x.mean((1, 3), keepdims=True), FOUR),

    # ------------------------------------------------------------------ prod
    R("prod", lambda m, x: x.prod(), np.prod, UNARY3, FACTORS, dtypes=ALL, out_dtype=summed),
    R("prod_dim", lambda m, x: m.prod(x, 1), lambda x: np.prod(x, 1), CUBE + [((3, 1),)],
      FACTORS, dtypes=ALL, out_dtype=summed),
    R("prod_dim_keepdim", lambda m, x: x.prod(-1, keepdim=True),
      lambda x: np.prod(x, -1, keepdims=True), CUBE + [((),)], FACTORS, dtypes=NUMERIC,
      out_dtype=summed),
    R("prod_dtype", lambda m, x: x.prod(0, dtype=m.float64), lambda x: np.prod(x, 0),
      [((3, 2),)], FACTORS, dtypes=NUMERIC, out_dtype=fixed(F64),
      vjp=dict(eps=1e-3, atol=1e-4, rtol=1e-3)),
    R("prod_zeros", lambda m, x: x.prod(), np.prod, [((2, 3),)], _with_zeros),
    R("prod_dim_zeros", lambda m, x: x.prod(-1), lambda x: np.prod(x, -1), [((3, 4),)],
      _with_zeros),
    R("prod_dim_zeros_mid", lambda m, x: x.prod(1), lambda x: np.prod(x, 1),
      [((2, 3, 4),)], lambda rng, s, dt: np.swapaxes(_with_zeros(rng, (2, 4, 3), dt), 1, 2)),

    # ------------------------------------------------------------------ var, std
    R("var", lambda m, x: x.var(), lambda x: _var(x), [((2, 3),), ((5,),)]),
    R("var_dim", lambda m, x: m.var(x, 1), lambda x: _var(x, 1), MATRIX_CUBE),
    R("var_dims_keepdim", lambda m, x: x.var((0, 2), keepdim=True),
      lambda x: _var(x, (0, 2), keepdims=True), CUBE),
    R("var_correction", lambda m, x: x.var(-1, correction=0), lambda x: _var(x, -1, 0),
      MATRIX_CUBE),
    R("var_correction_2", lambda m, x: m.var(x, dim=[0, 1], correction=2),
      lambda x: _var(x, (0, 1), 2), CUBE),
    R("var_unbiased_false", lambda m, x: x.var(unbiased=False), lambda x: _var(x, ddof=0),
      [((2, 3),)]),
    R("var_legacy_positional", lambda m, x: m.var(x, 1, False, True),
      lambda x: _var(x, 1, 0, True), CUBE),
    R("std", lambda m, x: x.std(), lambda x: _std(x), [((2, 3),)]),
    R("std_dims", lambda m, x: m.std(x, (0, -1), keepdim=True),
      lambda x: _std(x, (0, 2), keepdims=True), CUBE),
    R("std_correction", lambda m, x: x.std(1, correction=0), lambda x: _std(x, 1, 0),
      MATRIX_CUBE),

    # ------------------------------------------------------------------ norm
    R("norm", lambda m, x: x.norm(), lambda x: np.sqrt((x * x).sum()), UNARY3 + CUBE),
    R("norm_dim", lambda m, x: m.norm(x, dim=1), lambda x: np.sqrt((x * x).sum(1)),
      MATRIX_CUBE),
    R("norm_fro_dims", lambda m, x: x.norm(p="fro", dim=(0, 2), keepdim=True),
      lambda x: np.sqrt((x * x).sum((0, 2), keepdims=True)), CUBE),
    R("norm_1", lambda m, x: x.norm(1, -1), lambda x: _pnorm(x, 1, -1), MATRIX_CUBE, AWAY),
    R("norm_3", lambda m, x: m.norm(x, 3, 1), lambda x: _pnorm(x, 3, 1), MATRIX_CUBE, AWAY),
    R("norm_1_5", lambda m, x: x.norm(1.5, (0, 2)), lambda x: _pnorm(x, 1.5, (0, 2)), CUBE,
      AWAY),
    R("norm_0_5", lambda m, x: x.norm(0.5, 1), lambda x: _pnorm(x, 0.5, 1), MATRIX_CUBE,
      AWAY),
    R("norm_neg_1", lambda m, x: x.norm(-1), lambda x: _pnorm(x, -1), [((2, 3),)], AWAY),
    R("norm_inf", lambda m, x: x.norm(INF, -1), lambda x: _pnorm(x, INF, -1), MATRIX_CUBE,
      DISTINCT),
    R("norm_neg_inf", lambda m, x: m.norm(x, -INF, (0, 1)), lambda x: _pnorm(x, -INF, (0, 1)),
      CUBE, DISTINCT),
    R("norm_inf_ties", lambda m, x: x.norm(INF, 1), lambda x: _pnorm(x, INF, 1), [((3, 4),)],
      GRID, numeric=False, gradgrad=False),  # the gradient is shared among tied maxima
    R("norm_0", lambda m, x: x.norm(0, 1), lambda x: _pnorm(x, 0, 1), [((3, 4),)], GRID,
      numeric=False, gradgrad=False),  # torch gives no gradient
    R("norm_dtype", lambda m, x: x.norm(2, 1, True, m.float64),
      lambda x: np.sqrt((x * x).sum(1, keepdims=True)), [((3, 4),)], dtypes=(F32,),
      out_dtype=fixed(F64), vjp=dict(eps=1e-3, atol=1e-4, rtol=1e-3)),
    R("norm_with_zero_rows", lambda m, x: x.norm(dim=1),
      lambda x: np.sqrt((x * x).sum(1)), [((3, 4),)],
      lambda rng, s, dt: (rng.uniform(-2, 2, s) * (np.arange(s[0]) > 0)[:, None]).astype(dt),
      numeric=False, gradgrad=False),  # torch's gradient at a zero norm is 0

    # ------------------------------------------------------------------ logsumexp
    R("logsumexp", lambda m, x: x.logsumexp(1), lambda x: _lse(x, 1), MATRIX_CUBE, WIDE,
      dtypes=NUMERIC, out_dtype=floating),
    R("logsumexp_dims", lambda m, x: m.logsumexp(x, (0, -1), keepdim=True),
      lambda x: _lse(x, (0, 2), keepdims=True), CUBE, WIDE),
    R("logsumexp_0d", lambda m, x: m.logsumexp(x, 0), lambda x: x, [((),)]),
    R("logsumexp_large", lambda m, x: x.logsumexp(-1), lambda x: _lse(x, -1), [((3, 4),)],
      Sampler(500.0, 600.0)),

    # ------------------------------------------------------------------ amax, amin
    R("amax", lambda m, x: x.amax(), np.max, UNARY3, DISTINCT, dtypes=ALL),
    R("amax_dim", lambda m, x: m.amax(x, 1), lambda x: x.max(1), MATRIX_CUBE, DISTINCT,
      dtypes=ALL),
    R("amin_dims_keepdim", lambda m, x: x.amin((0, 2), keepdim=True),
      lambda x: x.min((0, 2), keepdims=True), CUBE, DISTINCT, dtypes=ALL),
    R("amax_ties", lambda m, x: x.amax(-1), lambda x: x.max(-1), [((3, 4),)], GRID,
      numeric=False, gradgrad=False),  # the gradient is split evenly among tied maxima
    R("amin_ties_dims", lambda m, x: m.amin(x, (0, 1)), lambda x: x.min((0, 1)), [((3, 4),)],
      GRID, numeric=False, gradgrad=False),

    # ------------------------------------------------------------------ argmax, argmin
    R("argmax", lambda m, x: x.argmax(), np.argmax, UNARY3, DISTINCT, dtypes=NUMERIC,
      out_dtype=fixed(I64), **_nograd()),
    R("argmax_dim", lambda m, x: m.argmax(x, 1), lambda x: x.argmax(1), MATRIX_CUBE, GRID,
      dtypes=NUMERIC, out_dtype=fixed(I64), **_nograd()),  # ties: the first index
    R("argmin_keepdim", lambda m, x: x.argmin(-1, keepdim=True),
      lambda x: x.argmin(-1)[..., None], MATRIX_CUBE, GRID, dtypes=NUMERIC,
      out_dtype=fixed(I64), **_nograd()),
    R("argmax_flat_keepdim", lambda m, x: m.argmax(x, keepdim=True),
      lambda x: np.argmax(x).reshape((1,) * x.ndim), CUBE, DISTINCT, dtypes=NUMERIC,
      out_dtype=fixed(I64), **_nograd()),

    # ------------------------------------------------------------------ any, all
    R("any", lambda m, x: x.any(), np.any, UNARY3, GRID, dtypes=ALL, out_dtype=boolean,
      **_nograd()),
    R("all_dim", lambda m, x: m.all(x, 1), lambda x: np.all(x, 1), MATRIX_CUBE, GRID,
      dtypes=ALL, out_dtype=boolean, **_nograd()),
    R("any_dims_keepdim", lambda m, x: x.any((0, 2), keepdim=True),
      lambda x: np.any(x, (0, 2), keepdims=True), CUBE, Sampler(0, 1, grid=True), dtypes=ALL,
      out_dtype=boolean, **_nograd()),

    # ------------------------------------------------------------------ cumsum, cumprod
    R("cumsum", lambda m, x: x.cumsum(1), lambda x: np.cumsum(x, 1), MATRIX_CUBE, dtypes=ALL,
      out_dtype=summed),
    R("cumsum_neg_dim", lambda m, x: m.cumsum(x, -1), lambda x: _scan(np.cumsum, x, -1),
      CUBE + [((),)], dtypes=NUMERIC, out_dtype=summed),
    R("cumsum_dtype", lambda m, x: x.cumsum(0, dtype=m.float64), lambda x: np.cumsum(x, 0),
      [((3, 2),)], dtypes=NUMERIC, out_dtype=fixed(F64),
      vjp=dict(eps=1e-3, atol=1e-4, rtol=1e-3)),
    R("cumprod", lambda m, x: x.cumprod(1), lambda x: np.cumprod(x, 1), MATRIX_CUBE, FACTORS,
      dtypes=NUMERIC),
    R("cumprod_first_dim", lambda m, x: m.cumprod(x, 0), lambda x: _scan(np.cumprod, x, 0),
      [((4, 3),), ((),)], FACTORS, dtypes=(F32, F64, I64, BOOL), out_dtype=summed),
    R("cumprod_zeros", lambda m, x: x.cumprod(-1), lambda x: np.cumprod(x, -1),
      [((3, 5),)], _with_zeros),
    R("cumprod_zeros_mid", lambda m, x: x.cumprod(1), lambda x: np.cumprod(x, 1),
      [((2, 4, 3),)], lambda rng, s, dt: np.swapaxes(_with_zeros(rng, (2, 3, 4), dt), 1, 2)),
    R("cumsum_product", lambda m, x: m.cumsum(x, 0) * x.cumsum(0),
      lambda x: np.cumsum(x, 0) ** 2, [((4, 2),)]),

    # ------------------------------------------------------------------ softmax, log_softmax
    R("softmax", lambda m, x: x.softmax(-1), lambda x: _softmax(x, -1), MATRIX_CUBE, WIDE),
    R("softmax_dim0", lambda m, x: m.softmax(x, 0), lambda x: _softmax(x, 0), MATRIX_CUBE,
      WIDE),
    R("softmax_mid", lambda m, x: x.softmax(1), lambda x: _softmax(x, 1), CUBE, WIDE),
    R("softmax_0d", lambda m, x: m.softmax(x, 0), lambda x: np.ones_like(x), UNARY[1:]),
    R("softmax_functional", lambda m, x: m.nn.functional.softmax(x, dim=-2),
      lambda x: _softmax(x, -2), CUBE, WIDE),
    R("softmax_dtype", lambda m, x: x.softmax(1, dtype=m.float64), lambda x: _softmax(x, 1),
      [((3, 4),)], WIDE, dtypes=(F32, I64), out_dtype=fixed(F64),
      vjp=dict(eps=1e-3, atol=1e-4, rtol=1e-3)),
    R("log_softmax", lambda m, x: x.log_softmax(-1), lambda x: _log_softmax(x, -1),
      MATRIX_CUBE, WIDE),
    R("log_softmax_dim0", lambda m, x: m.log_softmax(x, 0), lambda x: _log_softmax(x, 0),
      MATRIX_CUBE, WIDE),
    R("log_softmax_functional", lambda m, x: m.nn.functional.log_softmax(x, 1),
      lambda x: _log_softmax(x, 1), CUBE, WIDE),
    R("log_softmax_0d", lambda m, x: x.log_softmax(-1), lambda x: np.zeros_like(x),
      UNARY[1:]),
    R("softmax_large", lambda m, x: x.softmax(-1), lambda x: _softmax(x, -1), [((3, 4),)],
      Sampler(-800.0, 800.0), numeric=False, gradgrad=False),  # saturated: no differences
    R("log_softmax_large", lambda m, x: m.log_softmax(x, 1), lambda x: _log_softmax(x, 1),
      [((3, 4),)], Sampler(-800.0, 800.0)),
    R("softmax_log_softmax_chain", lambda m, x: m.log_softmax(x.softmax(0), 1),
      lambda x: _log_softmax(_softmax(x, 0), 1), [((3, 4),)]),
]
