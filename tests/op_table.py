"""The op table: one row per primitive of jitgrad's core (and per public spelling of one).

A row is that op's whole test; ``tests/test_ops.py`` runs every row, every shape case:

* ``fn(m, *inputs)`` is the op written against a module ``m``: the same lambda runs with
  ``m = jitgrad`` and, as an optional oracle, with ``m = torch`` (tinygrad's helper_test_op
  idea). ``torch_fn`` overrides it on the rare row where the two spellings differ.
* ``ref(*arrays)`` computes the same on numpy arrays (float inputs arrive as float64). A row
  whose op returns several tensors (``max(dim)``) returns a tuple from both.
* ``cases`` lists the input shapes, one tuple of shapes per case: broadcastable ones and 0-d
  ones where the op allows them.
* ``sample`` draws one input for the op's domain (positive bases for log, sqrt and pow,
  inputs away from the kinks of abs, relu and clamp, distinct values for max and min,
  well-conditioned denominators); a tuple gives one sampler per input.
* ``dtypes`` are the dtypes the forward pass is checked in: a numpy dtype for all inputs, or
  a tuple of dtypes, one per input (mixed-dtype promotion). ``out_dtype(dtypes)`` states the
  result dtype torch gives for them (a tuple for several outputs).
* ``grad``: differentiable (float inputs require grad; gradients are checked against finite
  differences and against torch). ``numeric``: the op is smooth at the sampled points, so
  that ``check_vjp`` applies. ``gradgrad``: gradients of gradients (``create_graph=True``)
  are checked too. ``vjp`` holds ``check_vjp`` keywords for the rare row that needs them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

F32, F64, I64, BOOL = (np.dtype(t) for t in (np.float32, np.float64, np.int64, np.bool_))
FLOATS = (F32, F64)
NUMERIC = (F32, F64, I64)
ALL = (F32, F64, I64, BOOL)


# --------------------------------------------------------------------------- samplers

class Sampler:
    """Values for one input: floats uniform in [lo, hi], at least `away` from 0 and 0.1 from
    every point of `avoid`; integers the same, drawn from the integers of [lo, hi]; bools at
    random. ``distinct`` draws values at least 0.2 apart (no ties for max, min and sorts);
    ``grid`` draws small integers in every dtype, so that ties and equality do happen."""

    def __init__(self, lo: float = -2.0, hi: float = 2.0, *, away: float = 0.0,
                 avoid: Sequence[float] = (), distinct: bool = False, grid: bool = False):
        self.lo, self.hi, self.away, self.avoid = lo, hi, away, tuple(avoid)
        self.distinct, self.grid = distinct, grid

    def _bad(self, x: np.ndarray) -> np.ndarray:
        bad = np.abs(x) < self.away
        for p in self.avoid:
            bad |= np.abs(x - p) < 0.1
        return bad

    def __call__(self, rng: np.random.Generator, shape: tuple, dtype: np.dtype) -> np.ndarray:
        n = int(np.prod(shape, dtype=np.int64))
        if dtype == BOOL:
            return rng.random(shape) < 0.5
        if self.distinct:
            step = 1.0 if dtype.kind in "iu" else 0.2
            x = (rng.permutation(n) - n // 2) * step
            if dtype.kind == "f":
                x = x + rng.uniform(0.0, 0.05, n)
            return x.reshape(shape).astype(dtype)
        if self.grid or dtype.kind in "iu":
            vals = np.arange(int(np.ceil(self.lo)), int(np.floor(self.hi)) + 1)
            vals = vals[~self._bad(vals.astype(np.float64))]
            return rng.choice(vals, size=shape).astype(dtype)
        x = rng.uniform(self.lo, self.hi, shape)
        bad = self._bad(x)
        while bad.any():
            x[bad] = rng.uniform(self.lo, self.hi, int(bad.sum()))
            bad = self._bad(x)
        return np.asarray(x, dtype=dtype)


ANY = Sampler()
POSITIVE = Sampler(0.5, 2.0)
AWAY = Sampler(away=0.3)  # away from the kink at 0 (abs, sign, relu, masks built from x > 0)
DENOM = Sampler(away=0.5)  # well-conditioned denominators
CLAMPED = Sampler(-3.0, 3.0, avoid=(-1.0, 1.0))  # away from clamp's bounds -1 and 1
DISTINCT = Sampler(distinct=True)
GRID = Sampler(grid=True)


# --------------------------------------------------------------------------- result dtypes

def same(dts: tuple) -> np.dtype:
    """The inputs' common dtype (rows that mix dtypes state their result explicitly)."""
    assert len(set(dts)) == 1, f"a mixed-dtype row needs an explicit out_dtype, got {dts}"
    return dts[0]


def floating(dts: tuple) -> np.dtype:
    """Integer and bool inputs give the default float dtype (true division, exp, ...)."""
    d = same(dts)
    return d if d.kind == "f" else F32


def boolean(dts: tuple) -> np.dtype:
    return BOOL


def summed(dts: tuple) -> np.dtype:
    """sum() of integers and bools accumulates in int64."""
    d = same(dts)
    return d if d.kind == "f" else I64


def values_indices(dts: tuple) -> tuple:
    return (same(dts), I64)


def fixed(dt: np.dtype) -> Callable:
    return lambda dts: dt


# --------------------------------------------------------------------------- the row

@dataclass(frozen=True)
class OpRow:
    name: str
    fn: Callable
    ref: Callable
    cases: Sequence[tuple]
    sample: Sampler | tuple = ANY
    dtypes: Sequence = FLOATS
    out_dtype: Callable = same
    grad: bool = True
    numeric: bool = True
    gradgrad: bool = True
    torch_fn: Callable | None = None
    vjp: dict = field(default_factory=dict)

    def dtype_specs(self, n_inputs: int) -> list:
        """One tuple of input dtypes per forward check."""
        return [d if isinstance(d, tuple) else (d,) * n_inputs for d in self.dtypes]

    def draw(self, rng: np.random.Generator, shapes: tuple, dts: tuple) -> list:
        samplers = self.sample if isinstance(self.sample, tuple) else (self.sample,) * len(shapes)
        return [s(rng, shape, dt) for s, shape, dt in zip(samplers, shapes, dts)]

    def torch_op(self) -> Callable:
        return self.torch_fn if self.torch_fn is not None else self.fn


def _nograd(**kw) -> dict:
    return dict(grad=False, numeric=False, gradgrad=False, **kw)


# --------------------------------------------------------------------------- shape cases

UNARY = [((2, 3),), ((),)]
UNARY3 = [((2, 3),), ((),), ((2, 1, 4),)]
BINARY = [((2, 3), (2, 3)), ((2, 1, 3), (4, 1)), ((), (3,)), ((2, 3), ())]
MATMUL = [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)), ((2, 3), (3, 4)),
          ((2, 2, 3), (2, 3, 4)), ((2, 1, 3, 4), (3, 4, 5)), ((3,), (2, 3, 4)),
          ((2, 3, 4), (4,)), ((2, 3), (2, 3, 4)), ((2, 3, 4), (4, 5))]
CUBE = [((2, 3, 4),)]

_idx = {}  # index constants shared by a row's lambda and its numpy reference
_idx["mask1"] = [True, False, True]
_idx["mask2"] = [[True, False, True, False], [False, False, True, True], [True, True, True, False]]
_idx["rows"] = [[1, 1], [0, 2]]


def _t(m, x, v):
    """A constant index tensor on x's device, in module m (jitgrad or torch)."""
    return m.tensor(v, device=x.device)


# --------------------------------------------------------------------------- the table

R = OpRow
ROWS: list[OpRow] = [
    # ------------------------------------------------------------------ arithmetic
    R("add", lambda m, x, y: x + y, np.add, BINARY, dtypes=ALL),
    R("add_fn_alpha", lambda m, x, y: m.add(x, y, alpha=2), lambda x, y: x + 2 * y, BINARY[:2],
      dtypes=NUMERIC),
    R("radd_scalar", lambda m, x: 1.5 + x, lambda x: 1.5 + x, UNARY, dtypes=NUMERIC,
      out_dtype=floating),
    R("sub", lambda m, x, y: x - y, np.subtract, BINARY, dtypes=NUMERIC),
    R("sub_alpha", lambda m, x, y: m.sub(x, y, alpha=2), lambda x, y: x - 2 * y, BINARY[:3],
      dtypes=NUMERIC),
    R("rsub_int", lambda m, x: 2 - x, lambda x: 2 - x, UNARY, dtypes=NUMERIC),
    R("rsub_float", lambda m, x: 2.5 - x, lambda x: 2.5 - x, UNARY, dtypes=NUMERIC,
      out_dtype=floating),
    R("mul", lambda m, x, y: x * y, np.multiply, BINARY, dtypes=ALL),
    R("mul_scalar", lambda m, x: x * 3, lambda x: x * 3, UNARY, dtypes=NUMERIC),
    R("rmul_float", lambda m, x: 0.5 * x, lambda x: 0.5 * x, UNARY, dtypes=NUMERIC,
      out_dtype=floating),
    R("div", lambda m, x, y: x / y, np.true_divide, BINARY, (ANY, DENOM), dtypes=NUMERIC,
      out_dtype=floating),
    R("div_fn_scalar", lambda m, x: m.div(x, 4), lambda x: x / 4, UNARY, dtypes=NUMERIC,
      out_dtype=floating),
    R("rdiv", lambda m, x: 2 / x, lambda x: 2 / x, UNARY, DENOM, dtypes=NUMERIC,
      out_dtype=floating),
    R("reciprocal", lambda m, x: m.reciprocal(x), lambda x: 1 / x, UNARY, DENOM, dtypes=NUMERIC,
      out_dtype=floating),
    R("neg", lambda m, x: -x, np.negative, UNARY, dtypes=NUMERIC),
    R("neg_fn", lambda m, x: m.neg(x), np.negative, UNARY[:1]),
    R("pow_scalar_int", lambda m, x: x ** 2, lambda x: x ** 2, UNARY3, dtypes=NUMERIC),
    R("pow_scalar_float", lambda m, x: x ** 0.5, np.sqrt, UNARY, POSITIVE, dtypes=NUMERIC,
      out_dtype=floating),
    R("pow_scalar_negative", lambda m, x: m.pow(x, -1.5), lambda x: x ** -1.5, UNARY, POSITIVE),
    R("pow_scalar_zero", lambda m, x: x ** 0, lambda x: x ** 0, UNARY, dtypes=NUMERIC),
    R("pow_tensor", lambda m, x, y: x ** y, np.power, BINARY, (POSITIVE, ANY)),
    R("rpow", lambda m, x: 2 ** x, lambda x: 2.0 ** x, UNARY3),
    R("rpow_float", lambda m, x: 1.5 ** x, lambda x: 1.5 ** x, UNARY, dtypes=NUMERIC,
      out_dtype=floating),
    R("rpow_int", lambda m, x: 2 ** x, lambda x: 2 ** x, UNARY, Sampler(0, 4), dtypes=(I64,),
      **_nograd()),
    R("maximum", lambda m, x, y: m.maximum(x, y), np.maximum, BINARY, dtypes=ALL),
    R("minimum", lambda m, x, y: m.minimum(x, y), np.minimum, BINARY, dtypes=ALL),
    R("maximum_ties", lambda m, x, y: m.maximum(x, y), np.maximum, BINARY[:2], GRID,
      numeric=False, gradgrad=False),  # the gradient is split between tied inputs
    R("minimum_ties", lambda m, x, y: m.minimum(x, y), np.minimum, BINARY[:2], GRID,
      numeric=False, gradgrad=False),

    # ------------------------------------------------------------------ promotion across dtypes
    R("mul_f32_f64", lambda m, x, y: x * y, np.multiply, BINARY[:2],
      dtypes=[(F32, F64), (F64, F32)], out_dtype=fixed(F64)),
    R("add_f32_0d_f64", lambda m, x, y: x + y, np.add, [((2, 3), ())],
      dtypes=[(F32, F64)], out_dtype=fixed(F32)),
    R("add_i64_0d_f64", lambda m, x, y: x + y, np.add, [((2, 3), ())],
      dtypes=[(I64, F64)], out_dtype=fixed(F64), **_nograd()),
    R("add_i64_f32", lambda m, x, y: x + y, np.add, BINARY[:2],
      dtypes=[(I64, F32), (F32, I64)], out_dtype=lambda dts: F32, **_nograd()),
    R("add_bool_int", lambda m, x: x + 1, lambda x: x + 1, UNARY, dtypes=(BOOL,),
      out_dtype=fixed(I64), **_nograd()),
    R("where_f32_f64", lambda m, x, y: m.where(x > 0, x, y), lambda x, y: np.where(x > 0, x, y),
      BINARY[:2], AWAY, dtypes=[(F32, F64)], out_dtype=fixed(F64)),

    # ------------------------------------------------------------------ unary math
    R("exp", lambda m, x: m.exp(x), np.exp, UNARY3, dtypes=NUMERIC, out_dtype=floating),
    R("log", lambda m, x: m.log(x), np.log, UNARY3, POSITIVE, dtypes=NUMERIC,
      out_dtype=floating),
    R("sqrt", lambda m, x: x.sqrt(), np.sqrt, UNARY3, POSITIVE, dtypes=NUMERIC,
      out_dtype=floating),
    R("tanh", lambda m, x: m.tanh(x), np.tanh, UNARY3, Sampler(-3, 3), dtypes=NUMERIC,
      out_dtype=floating),
    R("sigmoid", lambda m, x: x.sigmoid(), lambda x: 1 / (1 + np.exp(-x)), UNARY3,
      Sampler(-4, 4), dtypes=NUMERIC, out_dtype=floating),
    R("abs", lambda m, x: m.abs(x), np.abs, UNARY3, AWAY, dtypes=NUMERIC),
    R("sign", lambda m, x: x.sign(), np.sign, UNARY3, AWAY, dtypes=NUMERIC),
    R("relu", lambda m, x: m.relu(x), lambda x: np.maximum(x, 0), UNARY3, AWAY, dtypes=NUMERIC),
    R("clamp_min", lambda m, x: x.clamp(min=-1), lambda x: np.maximum(x, -1), UNARY3, CLAMPED,
      dtypes=NUMERIC),
    R("clamp_max", lambda m, x: x.clamp(max=1), lambda x: np.minimum(x, 1), UNARY3, CLAMPED,
      dtypes=NUMERIC),
    R("clamp", lambda m, x: m.clamp(x, -1, 1), lambda x: np.clip(x, -1, 1), UNARY3, CLAMPED,
      dtypes=NUMERIC),
    R("clamp_float_bound", lambda m, x: x.clamp(min=-0.5, max=1.5),
      lambda x: np.clip(x, -0.5, 1.5), UNARY, Sampler(-3, 3, avoid=(-0.5, 1.5)),
      dtypes=NUMERIC, out_dtype=floating),

    # ------------------------------------------------------------------ comparisons, logic
    *(R(name, fn, ref, BINARY, GRID, dtypes=ALL, out_dtype=boolean, **_nograd())
      for name, fn, ref in [
          ("eq", lambda m, x, y: x == y, np.equal),
          ("ne", lambda m, x, y: x != y, np.not_equal),
          ("lt", lambda m, x, y: x < y, np.less),
          ("le", lambda m, x, y: x <= y, np.less_equal),
          ("gt", lambda m, x, y: x > y, np.greater),
          ("ge", lambda m, x, y: x >= y, np.greater_equal),
          ("logical_and", lambda m, x, y: m.logical_and(x, y), np.logical_and),
          ("logical_or", lambda m, x, y: m.logical_or(x, y), np.logical_or)]),
    R("gt_scalar", lambda m, x: x > 0.5, lambda x: x > 0.5, UNARY, dtypes=ALL,
      out_dtype=boolean, **_nograd()),
    R("logical_not", lambda m, x: m.logical_not(x), np.logical_not, UNARY3, GRID, dtypes=ALL,
      out_dtype=boolean, **_nograd()),
    R("bool_operators", lambda m, x, y: (x & y) | ~x, lambda x, y: (x & y) | ~x, BINARY,
      dtypes=(BOOL,), out_dtype=boolean, **_nograd()),
    R("where", lambda m, x, y: m.where(x > 0, x, y), lambda x, y: np.where(x > 0, x, y),
      [((2, 3), (2, 3)), ((2, 1), (3,)), ((), (2, 3))], AWAY, dtypes=ALL),
    R("where_const_mask", lambda m, x, y: m.where(_t(m, x, _idx["mask1"]), x, y),
      lambda x, y: np.where(_idx["mask1"], x, y), [((2, 3), ()), ((1,), (2, 1))], dtypes=ALL),
    R("where_method_scalar", lambda m, x: x.where(x > 0, 0.0),
      lambda x: np.where(x > 0, x, 0.0), UNARY, AWAY, dtypes=NUMERIC, out_dtype=floating),

    # ------------------------------------------------------------------ reductions
    R("sum", lambda m, x: x.sum(), np.sum, UNARY3, dtypes=ALL, out_dtype=summed),
    R("sum_dim", lambda m, x: m.sum(x, 1), lambda x: np.sum(x, 1), CUBE + [((2, 3),)],
      dtypes=ALL, out_dtype=summed),
    R("sum_dims", lambda m, x: x.sum((0, 2)), lambda x: np.sum(x, (0, 2)), CUBE, dtypes=ALL,
      out_dtype=summed),
    R("sum_neg_dim", lambda m, x: x.sum(-1), lambda x: np.sum(x, -1), CUBE + [((3,),)],
      dtypes=NUMERIC, out_dtype=summed),
    R("sum_keepdim", lambda m, x: x.sum((-1, 0), keepdim=True),
      lambda x: np.sum(x, (-1, 0), keepdims=True), CUBE, dtypes=NUMERIC, out_dtype=summed),
    R("sum_0d_dim", lambda m, x: x.sum(0), lambda x: np.sum(x), [((),)], dtypes=NUMERIC,
      out_dtype=summed),
    R("mean", lambda m, x: x.mean(), np.mean, UNARY3),
    R("mean_dim", lambda m, x: m.mean(x, 1), lambda x: np.mean(x, 1), CUBE + [((2, 3),)]),
    R("mean_dims_neg", lambda m, x: x.mean((-1, 0)), lambda x: np.mean(x, (-1, 0)), CUBE),
    R("mean_keepdim", lambda m, x: x.mean(1, keepdim=True),
      lambda x: np.mean(x, 1, keepdims=True), CUBE),
    R("max_all", lambda m, x: x.max(), np.max, UNARY3, DISTINCT, dtypes=ALL),
    R("min_all", lambda m, x: m.min(x), np.min, UNARY3, DISTINCT, dtypes=ALL),
    R("max_all_ties", lambda m, x: x.max(), np.max, [((2, 3),)], GRID, numeric=False,
      gradgrad=False),  # the gradient is shared evenly between the tied maxima
    R("min_all_ties", lambda m, x: x.min(), np.min, [((2, 3),)], GRID, numeric=False,
      gradgrad=False),
    R("max_dim", lambda m, x: m.max(x, 1), lambda x: (np.max(x, 1), np.argmax(x, 1)),
      CUBE + [((3, 2),)], DISTINCT, dtypes=NUMERIC, out_dtype=values_indices),
    R("max_dim_keepdim", lambda m, x: x.max(dim=-1, keepdim=True),
      lambda x: (np.max(x, -1, keepdims=True), np.argmax(x, -1)[..., None]), CUBE, DISTINCT,
      dtypes=NUMERIC, out_dtype=values_indices),
    R("min_dim", lambda m, x: x.min(0), lambda x: (np.min(x, 0), np.argmin(x, 0)),
      CUBE + [((4,),)], DISTINCT, dtypes=NUMERIC, out_dtype=values_indices),
    R("min_dim_keepdim", lambda m, x: m.min(x, 1, keepdim=True),
      lambda x: (np.min(x, 1, keepdims=True), np.argmin(x, 1)[:, None]), CUBE, DISTINCT,
      dtypes=NUMERIC, out_dtype=values_indices),

    # ------------------------------------------------------------------ matrix products
    R("matmul", lambda m, x, y: m.matmul(x, y), np.matmul, MATMUL, dtypes=NUMERIC),
    R("matmul_operator", lambda m, x, y: x @ y, np.matmul, [MATMUL[3], MATMUL[5]]),
    R("mm", lambda m, x, y: m.mm(x, y), np.matmul, [((2, 3), (3, 4))], dtypes=NUMERIC),
    R("mm_method", lambda m, x, y: x.mm(y), np.matmul, [((1, 3), (3, 1))]),
    R("mv", lambda m, x, y: m.mv(x, y), np.matmul, [((2, 3), (3,))], dtypes=NUMERIC),
    R("dot", lambda m, x, y: m.dot(x, y), np.dot, [((3,), (3,))], dtypes=NUMERIC),
    R("bmm", lambda m, x, y: m.bmm(x, y), np.matmul, [((2, 2, 3), (2, 3, 4))], dtypes=NUMERIC),

    # ------------------------------------------------------------------ views
    R("transpose", lambda m, x: x.transpose(0, 2), lambda x: np.swapaxes(x, 0, 2), CUBE,
      dtypes=ALL),
    R("transpose_neg", lambda m, x: m.transpose(x, -1, 0), lambda x: np.swapaxes(x, -1, 0),
      [((2, 3),), ((3,),)]),
    R("t", lambda m, x: x.t(), lambda x: x.T, [((2, 3),), ((3,),), ((),)], dtypes=ALL),
    R("permute", lambda m, x: x.permute(2, 0, 1), lambda x: x.transpose(2, 0, 1), CUBE,
      dtypes=ALL),
    R("permute_tuple_neg", lambda m, x: m.permute(x, (-1, 0, 1)),
      lambda x: x.transpose(2, 0, 1), CUBE),
    R("T", lambda m, x: x.T, lambda x: x.T, [((2, 3),), ((1, 4),)], dtypes=ALL),
    R("mT", lambda m, x: x.mT, lambda x: np.swapaxes(x, -1, -2), [((2, 3, 4),), ((3, 4),)],
      dtypes=ALL),
    R("reshape", lambda m, x: x.reshape(3, 2), lambda x: x.reshape(3, 2), [((2, 3),), ((6,),)],
      dtypes=ALL),
    R("reshape_infer", lambda m, x: m.reshape(x, (-1, 2)), lambda x: x.reshape(-1, 2),
      [((2, 3),), ((2, 3, 2),)], dtypes=ALL),
    R("reshape_0d", lambda m, x: x.reshape(()), lambda x: x.reshape(()), [((1, 1),)]),
    R("reshape_copy", lambda m, x: x.t().reshape(-1), lambda x: x.T.reshape(-1),
      [((2, 3),)], dtypes=ALL),  # not viewable: reshape copies
    R("view", lambda m, x: x.view(-1), lambda x: x.reshape(-1), UNARY3, dtypes=ALL),
    R("view_shape", lambda m, x: x.view(3, 1, 2), lambda x: x.reshape(3, 1, 2), [((2, 3),)]),
    R("flatten", lambda m, x: x.flatten(), lambda x: x.reshape(-1), CUBE + [((),)], dtypes=ALL),
    R("flatten_range", lambda m, x: m.flatten(x, 1), lambda x: x.reshape(x.shape[0], -1),
      CUBE),
    R("flatten_mid", lambda m, x: x.flatten(0, 1), lambda x: x.reshape(-1, x.shape[2]), CUBE),
    R("unsqueeze", lambda m, x: x.unsqueeze(0), lambda x: x[None], UNARY3, dtypes=ALL),
    R("unsqueeze_neg", lambda m, x: m.unsqueeze(x, -1), lambda x: x[..., None], UNARY3),
    R("squeeze", lambda m, x: x.squeeze(), np.squeeze, [((2, 1, 3, 1),), ((1, 1),), ((),)],
      dtypes=ALL),
    R("squeeze_dim", lambda m, x: m.squeeze(x, 1), lambda x: np.squeeze(x, 1),
      [((2, 1, 3),)], dtypes=ALL),
    R("squeeze_dim_noop", lambda m, x: x.squeeze(0), lambda x: x, [((2, 1, 3),)]),
    R("squeeze_tuple", lambda m, x: x.squeeze((1, -1)), lambda x: np.squeeze(x, (1, 3)),
      [((2, 1, 3, 1),)], dtypes=ALL),
    R("expand", lambda m, x: x.expand(2, 3, 4), lambda x: np.broadcast_to(x, (2, 3, 4)),
      [((3, 1),), ((),), ((1, 4),)], dtypes=ALL),
    R("expand_keep", lambda m, x: x.expand((-1, 4)), lambda x: np.broadcast_to(x, (3, 4)),
      [((3, 1),)]),
    R("expand_as", lambda m, x, y: x.expand_as(y), lambda x, y: np.broadcast_to(x, y.shape),
      [((3, 1), (2, 3, 4))], dtypes=ALL),

    # ------------------------------------------------------------------ copies and casts
    R("float", lambda m, x: x.float(), lambda x: x.astype(np.float32), UNARY, dtypes=ALL,
      out_dtype=fixed(F32), vjp=dict(eps=1e-3, atol=1e-4, rtol=1e-3)),  # f32 rounding
    R("double", lambda m, x: x.double(), lambda x: x, UNARY, dtypes=ALL,
      out_dtype=fixed(F64)),
    R("to_dtype", lambda m, x: x.to(m.float32).to(dtype=m.float64),
      lambda x: x.astype(np.float32).astype(np.float64), UNARY,
      dtypes=ALL, out_dtype=fixed(F64), vjp=dict(eps=1e-3, atol=1e-4, rtol=1e-3)),
    R("clone", lambda m, x: x.clone(), lambda x: x, UNARY3, dtypes=ALL),
    R("clone_fn", lambda m, x: m.clone(x), lambda x: x, UNARY),
    R("contiguous", lambda m, x: x.mT.contiguous(), lambda x: np.swapaxes(x, -1, -2),
      [((2, 3),), ((2, 3, 4),)], dtypes=ALL),
    R("contiguous_noop", lambda m, x: x.contiguous(), lambda x: x, UNARY),

    # ------------------------------------------------------------------ strided operands
    R("mul_strided", lambda m, x, y: x.mT * y[:, ::2], lambda x, y: x.T * y[:, ::2],
      [((3, 2), (2, 6))], dtypes=NUMERIC),
    R("add_expanded", lambda m, x, y: x.expand(2, 3) + y.mT, lambda x, y: x + y.T,
      [((3,), (3, 2))]),
    R("exp_strided", lambda m, x: m.exp(x[::2].mT), lambda x: np.exp(x[::2].T), [((4, 3),)]),
    R("sum_strided", lambda m, x: x.mT.sum(0), lambda x: x.T.sum(0), [((3, 4),)],
      dtypes=NUMERIC, out_dtype=summed),
    R("max_dim_strided", lambda m, x: x[:, 1::2].max(0),
      lambda x: (x[:, 1::2].max(0), x[:, 1::2].argmax(0)), [((3, 6),)], DISTINCT,
      out_dtype=values_indices),
    R("matmul_strided", lambda m, x, y: x.mT @ y[::2], lambda x, y: x.T @ y[::2],
      [((3, 2), (6, 4))]),

    # ------------------------------------------------------------------ indexing
    R("index_int", lambda m, x: x[1], lambda x: x[1], [((3, 4),), ((3,),)], dtypes=ALL),
    R("index_neg_ints", lambda m, x: x[-1, -2], lambda x: x[-1, -2], [((3, 4),)], dtypes=ALL),
    R("index_slices", lambda m, x: x[::2, 1:3], lambda x: x[::2, 1:3], [((5, 4),)], dtypes=ALL),
    R("index_slice_neg", lambda m, x: x[-3:-1, 1::2], lambda x: x[-3:-1, 1::2], [((4, 5),)]),
    R("index_slice_step", lambda m, x: x[1:7:3], lambda x: x[1:7:3], [((8,),), ((8, 2),)]),
    R("index_none", lambda m, x: x[None, :, None], lambda x: x[None, :, None], [((3, 2),)],
      dtypes=ALL),
    R("index_ellipsis", lambda m, x: x[..., 1], lambda x: x[..., 1], CUBE, dtypes=ALL),
    R("index_ellipsis_all", lambda m, x: x[...], lambda x: x, UNARY),
    R("index_ellipsis_none_int", lambda m, x: x[None, ..., 0, None],
      lambda x: x[None, ..., 0, None], CUBE),
    R("index_mask", lambda m, x: x[x > 0], lambda x: x[x > 0], [((3, 4),), ((5,),)], AWAY,
      dtypes=NUMERIC),
    R("index_mask_const", lambda m, x: x[_t(m, x, _idx["mask1"])],
      lambda x: x[np.array(_idx["mask1"])], [((3, 4),)], dtypes=ALL),
    R("index_mask_2d", lambda m, x: x[_t(m, x, _idx["mask2"])],
      lambda x: x[np.array(_idx["mask2"])], [((3, 4),), ((3, 4, 2),)], dtypes=ALL),
    R("index_list_repeats", lambda m, x: x[[0, 2, 0, 0]], lambda x: x[[0, 2, 0, 0]],
      [((3,),), ((3, 2),)], dtypes=ALL),
    R("index_tensor_repeats", lambda m, x: x[_t(m, x, _idx["rows"])],
      lambda x: x[np.array(_idx["rows"])], [((3, 2),)], dtypes=ALL),
    R("index_two_lists", lambda m, x: x[[0, 1, 1], [2, -1, 2]],
      lambda x: x[[0, 1, 1], [2, -1, 2]], [((2, 3),), ((2, 3, 2),)], dtypes=ALL),
    R("index_slice_then_list", lambda m, x: x[1:, [0, 0, 2]], lambda x: x[1:, [0, 0, 2]],
      [((3, 4),)], dtypes=ALL),
    R("index_int_list_slice", lambda m, x: x[0, [1, 1], 1:], lambda x: x[0][[1, 1], 1:],
      CUBE, dtypes=ALL),
    R("index_separated_lists", lambda m, x: x[[0, 1], :, [1, 3]],
      lambda x: x[[0, 1], :, [1, 3]], CUBE, dtypes=ALL),
]


def _family_rows() -> list:
    """Rows of other primitive families live in tests/op_rows_<family>.py (a list ROWS each,
    built with this module's OpRow and samplers)."""
    import importlib
    import pathlib

    rows = []
    for path in sorted(pathlib.Path(__file__).parent.glob("op_rows_*.py")):
        rows += importlib.import_module(path.stem).ROWS
    return rows


ROWS += _family_rows()
assert len({r.name for r in ROWS}) == len(ROWS), "row names must be unique"
