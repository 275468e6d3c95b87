"""Op-table rows of the shape and data-movement family (jitgrad/_shape_ops.py): joining and
splitting, rearranging copies and views, indexed reads and writes, padding and one_hot.

Index constants are shared by a row's lambda and its numpy reference; indices repeat where
the op allows it, so gradients that add up at one position are checked too.
"""

from __future__ import annotations

import numpy as np

from op_table import (ALL, CUBE, F32, F64, I64, NUMERIC, OpRow, Sampler, _nograd, fixed,
                      same)

R = OpRow

IDX = {
    "gather": [[0, 2, 2, 1], [1, 1, 0, 0]],  # dim 1 of a (2, 3) input, repeats, wider than it
    "gather0": [[2, 0], [2, 2]],  # dim 0 of a (3, 4) input: a smaller block of it
    "gather3": [[[1, 1, 0]], [[0, 1, 1]]],  # dim -1 of a (2, 3, 2) input
    "perm": [[3, 0, 2], [1, 2, 0]],  # distinct per row: scatter writes are deterministic
    "rep": [[3, 0, 3], [1, 1, 1]],  # repeats: scatter_add sums them
    "sel": [2, 0, 2],
    "add": [0, 2, 0, 1],
    "take": [[0, 5], [-1, 2], [0, -6]],
    "mask": [True, False, True],
}


def _t(m, x, v, dtype=None):
    """A constant tensor on x's device, in module m (jitgrad or torch)."""
    return m.tensor(v, device=x.device, dtype=dtype)


def _i(name):
    return np.array(IDX[name])


def _outs(dts, n):
    return (same(dts),) * n


def _scatter_ref(x, dim, idx, src, add):
    out = x.copy()
    idx = np.asarray(idx)
    pos = list(np.indices(idx.shape))
    pos[dim] = idx
    if add:
        np.add.at(out, tuple(pos), src[tuple(slice(0, n) for n in idx.shape)])
    else:
        out[tuple(pos)] = src[tuple(slice(0, n) for n in idx.shape)]
    return out


def _index_add_ref(x, dim, idx, src, alpha):
    out = x.copy()
    key = (slice(None),) * dim + (np.asarray(idx),)
    np.add.at(out, key, src * alpha if alpha != 1 else src)
    return out


def _put_ref(x, idx, src, accumulate, rows=False):
    """index_put along dim 0 (rows) or put on the flattened x, as numpy does it"""
    out = x.copy()
    view = out if rows else out.reshape(-1)
    if accumulate:
        np.add.at(view, np.asarray(idx), src)
    else:
        view[np.asarray(idx)] = src
    return out


def _index_fill_ref(x, dim, idx, value):
    out = x.copy()
    out[(slice(None),) * dim + (np.asarray(idx),)] = value
    return out


def _pad_ref(x, pad, value=0.0):
    """torch's constant pad: pairs from the last dim backwards, negative amounts crop."""
    pairs = [(0, 0)] * x.ndim
    for k in range(len(pad) // 2):
        pairs[x.ndim - 1 - k] = (pad[2 * k], pad[2 * k + 1])
    crop = tuple(slice(max(-lo, 0), x.shape[d] - max(-hi, 0))
                 for d, (lo, hi) in enumerate(pairs))
    return np.pad(x[crop], [(max(lo, 0), max(hi, 0)) for lo, hi in pairs],
                  constant_values=value)


def _one_hot_ref(x, n=None):
    n = int(x.max()) + 1 if n is None else n
    return (x[..., None] == np.arange(n)).astype(np.int64)


CLASSES = Sampler(0, 3)

ROWS = [
    # ------------------------------------------------------------------ cat, stack
    R("cat", lambda m, x, y: m.cat([x, y], 1), lambda x, y: np.concatenate([x, y], 1),
      [((2, 3), (2, 1)), ((2, 3, 4), (2, 2, 4))], dtypes=ALL),
    R("cat_three_neg_dim", lambda m, x, y: m.cat((x, y, x), dim=-1),
      lambda x, y: np.concatenate([x, y, x], -1), [((2, 3), (2, 2)), ((3,), (1,))]),
    R("cat_mixed_dtypes", lambda m, x, y: m.cat([x, y]), lambda x, y: np.concatenate([x, y]),
      [((2, 3), (1, 3))], dtypes=[(F32, F64), (F64, F32)], out_dtype=fixed(F64)),
    R("cat_int_float", lambda m, x, y: m.cat([x, y]), lambda x, y: np.concatenate([x, y]),
      [((2,), (3,))], dtypes=[(I64, F32)], out_dtype=fixed(F32), **_nograd()),
    R("cat_skips_1d_empty", lambda m, x, y: m.cat([x, y], 1), lambda x, y: x,
      [((2, 3), (0,))], dtypes=ALL),
    R("concat", lambda m, x, y: m.concat([x, y]), lambda x, y: np.concatenate([x, y]),
      [((2, 3), (1, 3))]),
    R("concatenate_axis", lambda m, x, y: m.concatenate([x, y], axis=1),
      lambda x, y: np.concatenate([x, y], 1), [((2, 3), (2, 1))]),
    R("stack", lambda m, x, y: m.stack([x, y], 1), lambda x, y: np.stack([x, y], 1),
      [((2, 3), (2, 3)), ((4,), (4,))], dtypes=ALL),
    R("stack_0d", lambda m, x, y: m.stack((x, y, x)), lambda x, y: np.stack([x, y, x]),
      [((), ())]),
    R("stack_neg_dim", lambda m, x, y: m.stack([x, y], -1), lambda x, y: np.stack([x, y], -1),
      [((2, 3), (2, 3))], dtypes=[(F32, F64)], out_dtype=fixed(F64)),

    # ------------------------------------------------------------------ split, chunk, unbind
    R("split", lambda m, x: x.split(2, 1),
      lambda x: (x[:, 0:2], x[:, 2:4], x[:, 4:5]), [((3, 5),)], dtypes=ALL,
      out_dtype=lambda dts: _outs(dts, 3)),
    R("split_sizes", lambda m, x: m.split(x, [1, 3], 2), lambda x: (x[..., :1], x[..., 1:]),
      CUBE, dtypes=ALL, out_dtype=lambda dts: _outs(dts, 2)),
    R("split_one_output_used", lambda m, x: x.split([1, 0, 2])[2] * 2,
      lambda x: x[1:] * 2, [((3, 2),)]),
    R("split_some_used", lambda m, x: (lambda p: p[0] + p[2])(m.split(x, 1, -1)),
      lambda x: x[:, 0] [:, None] + x[:, 2][:, None], [((2, 3),)]),
    R("chunk", lambda m, x: x.chunk(3, 1), lambda x: (x[:, :3], x[:, 3:6], x[:, 6:]),
      [((2, 7),)], dtypes=ALL, out_dtype=lambda dts: _outs(dts, 3)),
    R("chunk_fn_uneven", lambda m, x: m.chunk(x, 4), lambda x: (x[:1], x[1:2], x[2:]),
      [((3, 2),)], out_dtype=lambda dts: _outs(dts, 3)),
    R("unbind", lambda m, x: m.unbind(x, 1), lambda x: (x[:, 0], x[:, 1], x[:, 2]),
      [((2, 3),)], dtypes=ALL, out_dtype=lambda dts: _outs(dts, 3)),

    # ------------------------------------------------------------------ views
    R("unflatten", lambda m, x: x.unflatten(1, (2, -1)), lambda x: x.reshape(3, 2, 2),
      [((3, 4),)], dtypes=ALL),
    R("unflatten_fn_strided", lambda m, x: m.unflatten(x.mT, -1, [1, 2, 1]),
      lambda x: x.T.reshape(3, 1, 2, 1), [((2, 3),)]),
    R("flatten_same_dim", lambda m, x: x.flatten(1, 1), lambda x: x, CUBE),
    R("flatten_1d", lambda m, x: m.flatten(x), lambda x: x, [((4,),)]),
    R("narrow", lambda m, x: x.narrow(1, 1, 2), lambda x: x[:, 1:3], CUBE, dtypes=ALL),
    R("narrow_neg", lambda m, x: m.narrow(x, -1, -3, 2), lambda x: x[..., -3:-1], CUBE),
    R("diagonal", lambda m, x: x.diagonal(), lambda x: np.diagonal(x).copy(),
      [((3, 4),), ((4, 2),)], dtypes=ALL),
    R("diagonal_offset_dims", lambda m, x: m.diagonal(x, 1, 0, 2),
      lambda x: np.diagonal(x, 1, 0, 2).copy(), CUBE, dtypes=ALL),
    R("diagonal_neg_offset_kw", lambda m, x: m.diagonal(x, offset=-1, dim1=-1, dim2=0),
      lambda x: np.diagonal(x, -1, 2, 0).copy(), CUBE),

    # ------------------------------------------------------------------ copies
    R("repeat", lambda m, x: x.repeat(2, 1, 3), lambda x: np.tile(x, (2, 1, 3)),
      [((2, 3),), ((),), ((3,),)], dtypes=ALL),
    R("repeat_tuple_zero", lambda m, x: x.repeat((2, 0)), lambda x: np.tile(x, (2, 0)),
      [((2, 3),)]),
    R("tile", lambda m, x: m.tile(x, (2,)), lambda x: np.tile(x, 2), [((2, 3),), ((3,),)],
      dtypes=ALL),
    R("tile_method_more", lambda m, x: x.tile(2, 1, 2), lambda x: np.tile(x, (2, 1, 2)),
      [((2, 3),)]),
    R("flip", lambda m, x: x.flip(0, 2), lambda x: np.flip(x, (0, 2)), CUBE, dtypes=ALL),
    R("flip_fn", lambda m, x: m.flip(x, (-1,)), lambda x: np.flip(x, -1),
      [((2, 3),), ((4,),)], dtypes=ALL),
    R("roll", lambda m, x: m.roll(x, (1, -2), (0, 2)), lambda x: np.roll(x, (1, -2), (0, 2)),
      CUBE, dtypes=ALL),
    R("roll_flat", lambda m, x: x.roll(4), lambda x: np.roll(x, 4), [((2, 3),), ((),)],
      dtypes=ALL),
    R("roll_same_dim_twice", lambda m, x: x.roll((1, 3), (1, 1)),
      lambda x: np.roll(x, 4, 1), [((2, 3),)]),
    R("tril", lambda m, x: x.tril(), np.tril, [((3, 4),), ((2, 3, 4),)], dtypes=ALL),
    R("tril_k", lambda m, x: m.tril(x, -1), lambda x: np.tril(x, -1), [((4, 3),)]),
    R("triu", lambda m, x: m.triu(x), np.triu, [((3, 4),), ((2, 3, 4),)], dtypes=ALL),
    R("triu_k", lambda m, x: x.triu(diagonal=2), lambda x: np.triu(x, 2), [((3, 4),)]),
    R("pad", lambda m, x: m.nn.functional.pad(x, (1, 2)),
      lambda x: _pad_ref(x, (1, 2)), [((2, 3),), ((3,),)], dtypes=ALL),
    R("pad_value_crop", lambda m, x: m.nn.functional.pad(x, [-1, 2, 0, 1, 1, 0], value=1.5),
      lambda x: _pad_ref(x, (-1, 2, 0, 1, 1, 0), 1.5), CUBE),
    R("constant_pad_nd", lambda m, x: m.constant_pad_nd(x, (0, 1, 2, -1), 2),
      lambda x: _pad_ref(x, (0, 1, 2, -1), 2), [((2, 3),)], dtypes=NUMERIC),

    # ------------------------------------------------------------------ gather, scatter
    R("gather", lambda m, x: m.gather(x, 1, _t(m, x, IDX["gather"])),
      lambda x: np.take_along_axis(x, _i("gather"), 1), [((2, 3),)], dtypes=ALL),
    R("gather_smaller_index", lambda m, x: x.gather(0, _t(m, x, IDX["gather0"])),
      lambda x: np.take_along_axis(x[:, :2], _i("gather0"), 0), [((3, 4),)], dtypes=ALL),
    R("gather_last_dim", lambda m, x: x.gather(-1, _t(m, x, IDX["gather3"])),
      lambda x: np.take_along_axis(x[:, :1], _i("gather3"), -1), [((2, 3, 2),)]),
    R("scatter", lambda m, x, y: m.scatter(x, 1, _t(m, x, IDX["perm"]), y),
      lambda x, y: _scatter_ref(x, 1, IDX["perm"], y, False), [((2, 4), (2, 3))], dtypes=ALL),
    R("scatter_value", lambda m, x: x.scatter(1, _t(m, x, IDX["perm"]), 2),
      lambda x: _scatter_ref(x, 1, IDX["perm"], np.full((2, 3), 2, x.dtype), False),
      [((2, 4),)], dtypes=ALL),
    R("scatter_add", lambda m, x, y: m.scatter_add(x, 1, _t(m, x, IDX["rep"]), y),
      lambda x, y: _scatter_ref(x, 1, IDX["rep"], y, True), [((2, 4), (2, 3))], dtypes=ALL),
    R("scatter_add_method_dim0", lambda m, x, y: x.scatter_add(0, _t(m, x, IDX["gather0"]), y),
      lambda x, y: _scatter_ref(x, 0, IDX["gather0"], y, True), [((3, 4), (2, 2))]),

    # ------------------------------------------------------------------ index_select, index_add
    R("index_select", lambda m, x: x.index_select(0, _t(m, x, IDX["sel"])),
      lambda x: x[_i("sel")], [((3, 4),), ((3,),), ((3, 2, 2),)], dtypes=ALL),
    R("index_select_dim1_int32", lambda m, x: m.index_select(x, 1, _t(m, x, IDX["sel"],
                                                                      m.int32)),
      lambda x: x[:, _i("sel")], [((2, 3),)], dtypes=ALL),
    R("index_select_0d", lambda m, x: m.index_select(x, 0, _t(m, x, [0])), lambda x: x,
      [((),)]),
    R("index_add", lambda m, x, y: m.index_add(x, 0, _t(m, x, IDX["add"]), y, alpha=2),
      lambda x, y: _index_add_ref(x, 0, IDX["add"], y, 2), [((3, 2), (4, 2))],
      dtypes=NUMERIC),
    R("index_add_dim1", lambda m, x, y: x.index_add(1, _t(m, x, IDX["add"]), y),
      lambda x, y: _index_add_ref(x, 1, IDX["add"], y, 1), [((2, 3), (2, 4))], dtypes=ALL),

    R("index_fill", lambda m, x: x.index_fill(1, _t(m, x, [-1, 0, 2]), -2),
      lambda x: _index_fill_ref(x, 1, [2, 0], -2), [((2, 3),), ((2, 3, 2),)], dtypes=ALL),
    R("index_fill_tensor_value", lambda m, x, v: m.index_fill(x, 0, _t(m, x, [1, 1]), v),
      lambda x, v: _index_fill_ref(x, 0, [1], v), [((3, 2), ())]),

    # ------------------------------------------------------------------ index_put, put
    R("index_put_accumulate",
      lambda m, x, y: x.index_put((_t(m, x, IDX["add"]),), y, accumulate=True),
      lambda x, y: _index_add_ref(x, 0, IDX["add"], y, 1), [((3, 2), (4, 2))],
      dtypes=NUMERIC),
    R("index_put_accumulate_broadcast",
      lambda m, x, v: m.index_put(x, (_t(m, x, IDX["add"]),), v, True),
      lambda x, v: _index_add_ref(x, 0, IDX["add"], np.broadcast_to(v, (4, 2)), 1),
      [((3, 2), ())]),
    R("index_put", lambda m, x, y: x.index_put([_t(m, x, [2, 0])], y),
      lambda x, y: _put_ref(x, [2, 0], y, False, rows=True), [((3, 2), (2, 2))], dtypes=ALL),
    R("put_accumulate", lambda m, x, y: x.put(_t(m, x, [0, 5, 0, -1]), y, accumulate=True),
      lambda x, y: _put_ref(x, [0, 5, 0, -1], y, True), [((2, 3), (4,))], dtypes=NUMERIC),
    R("put", lambda m, x, y: x.put(_t(m, x, [0, 4, -3]), y),
      lambda x, y: _put_ref(x, [0, 4, -3], y, False), [((2, 3), (3,))], dtypes=ALL),

    # ------------------------------------------------------------------ take, masked_fill
    R("take", lambda m, x: m.take(x, _t(m, x, IDX["take"])),
      lambda x: x.reshape(-1)[_i("take")], [((2, 3),)], dtypes=ALL),
    R("take_method_0d", lambda m, x: x.take(_t(m, x, [0, 0])), lambda x: x.reshape(-1)[[0, 0]],
      [((),)]),
    R("masked_fill", lambda m, x: x.masked_fill(_t(m, x, IDX["mask"]), 2),
      lambda x: np.where(IDX["mask"], np.array(2).astype(x.dtype), x),
      [((2, 3),), ((3,),)], dtypes=ALL),
    R("masked_fill_broadcast_mask", lambda m, x: m.masked_fill(x, _t(m, x, [IDX["mask"]] * 2),
                                                               -1.5),
      lambda x: np.where([IDX["mask"]] * 2, -1.5, x), [((3,),), ((1, 3),)]),
    R("masked_fill_tensor_value", lambda m, x, v: x.masked_fill(x > 0, v),
      lambda x, v: np.where(x > 0, v, x), [((2, 3), ())], Sampler(away=0.3),
      dtypes=[(F32, F32), (F64, F64), (F32, F64)], out_dtype=lambda dts: dts[0]),

    # ------------------------------------------------------------------ one_hot
    R("one_hot", lambda m, x: m.nn.functional.one_hot(x), _one_hot_ref, [((2, 3),), ((4,),)],
      CLASSES, dtypes=(I64,), out_dtype=fixed(I64), **_nograd()),
    R("one_hot_classes", lambda m, x: m.nn.functional.one_hot(x, num_classes=5),
      lambda x: _one_hot_ref(x, 5), [((3,),), ((),)], CLASSES, dtypes=(I64,),
      out_dtype=fixed(I64), **_nograd()),
]
