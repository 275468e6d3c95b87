"""The shape and data-movement family beyond its op-table rows:

* hypothesis properties: random shapes, dims, index sets and keys, each op's forward compared
  with numpy and its gradient with the adjoint that numpy gives (every output element names
  the input element it came from, so the gradient of an input element is the sum of the
  output gradients that came from it: repeated indices add up);
* the multi-output node of split/chunk/unbind;
* the kernels' launch paths (parallel variants, strided and broadcast operands);
* bad input: torch's exception and text (checked against torch when it is installed), and
  every tensor and .grad left as it was.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jitgrad.kernels import movement
from numpy.testing import assert_array_equal
from on_device import OnDevice

import jitgrad
import jitgrad.nn.functional as F
from jitgrad.autograd import check_vjp, gradgradcheck

try:
    import torch
except ImportError:  # torch is an optional oracle
    torch = None

# (the `device` fixture is a constant string: sharing it across examples is safe)
PROPS = settings(max_examples=40, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow,
                                        HealthCheck.function_scoped_fixture])


# --------------------------------------------------------------------------- helpers

def shapes(min_dims=1, max_dims=3, min_side=0, max_side=4):
    return st.lists(st.integers(min_side, max_side), min_size=min_dims,
                    max_size=max_dims).map(tuple)


def _host(t) -> np.ndarray:
    """A tensor's values (or a backend array) as a numpy array, from any device."""
    if isinstance(t, jitgrad.Tensor):
        return t.detach().cpu().numpy()
    return t if isinstance(t, np.ndarray) else t.get()


def _rng(data) -> np.random.Generator:
    return np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))


def check_movement(jfn, npfn, shape, rng, positions=None, device="cpu"):
    """jfn(x) (jitgrad) against npfn(x) (numpy) for a data-movement op, forward and backward.

    npfn applied to the array of x's flat positions (or `positions` given that array) tells
    where each output element comes from (-1 where it is a constant, e.g. padding); the
    gradient of x is then the sum, per position, of the output gradients that came from it."""
    x = rng.standard_normal(shape)
    tx = jitgrad.tensor(x, requires_grad=True, device=device)
    outs = jfn(tx)
    outs = list(outs) if isinstance(outs, tuple) else [outs]
    refs = npfn(x)
    refs = list(refs) if isinstance(refs, tuple) else [refs]
    flat = np.arange(x.size).reshape(shape)
    pos_refs = npfn(flat) if positions is None else positions(flat)
    pos_refs = list(pos_refs) if isinstance(pos_refs, tuple) else [pos_refs]
    assert len(outs) == len(refs)
    expected = np.zeros(x.size)
    loss = None
    for o, r, p in zip(outs, refs, pos_refs):
        assert o.shape == np.shape(r), (o.shape, np.shape(r))
        assert_array_equal(_host(o), r)
        v = rng.standard_normal(o.shape)
        p = np.asarray(p).reshape(-1)
        ok = p >= 0
        expected += np.bincount(p[ok], weights=v.reshape(-1)[ok], minlength=x.size)
        term = (o * jitgrad.tensor(v, device=device)).sum()
        loss = term if loss is None else loss + term
    if loss is None or not loss.requires_grad:
        return
    loss.backward()
    np.testing.assert_allclose(_host(tx.grad).reshape(-1), expected, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- properties: joining

@PROPS
@given(st.data())
def test_cat_property(device, data):
    rng = _rng(data)
    base = data.draw(shapes(1, 3), label="base")
    dim = data.draw(st.integers(-len(base), len(base) - 1), label="dim")
    sizes = data.draw(st.lists(st.integers(0, 3), min_size=1, max_size=4), label="sizes")
    d = dim % len(base)
    arrays = [rng.standard_normal(base[:d] + (n,) + base[d + 1:]) for n in sizes]
    ts = [jitgrad.tensor(a, requires_grad=True, device=device) for a in arrays]
    out = jitgrad.cat(ts, dim)
    assert_array_equal(_host(out), np.concatenate(arrays, dim))
    v = rng.standard_normal(out.shape)
    (out * jitgrad.tensor(v, device=device)).sum().backward()
    start = 0
    for t, n in zip(ts, sizes):
        assert_array_equal(_host(t.grad), np.take(v, range(start, start + n), d))
        start += n


@PROPS
@given(st.data())
def test_stack_property(device, data):
    rng = _rng(data)
    shape = data.draw(shapes(0, 3), label="shape")
    n = data.draw(st.integers(1, 4), label="n")
    dim = data.draw(st.integers(-len(shape) - 1, len(shape)), label="dim")
    arrays = [rng.standard_normal(shape) for _ in range(n)]
    ts = [jitgrad.tensor(a, requires_grad=True, device=device) for a in arrays]
    out = jitgrad.stack(ts, dim)
    assert_array_equal(_host(out), np.stack(arrays, dim))
    v = rng.standard_normal(out.shape)
    (out * jitgrad.tensor(v, device=device)).sum().backward()
    for i, t in enumerate(ts):
        assert_array_equal(_host(t.grad), np.take(v, i, dim % (len(shape) + 1)))


@PROPS
@given(st.data())
def test_split_chunk_property(device, data):
    rng = _rng(data)
    shape = data.draw(shapes(1, 3, 1, 5), label="shape")
    dim = data.draw(st.integers(-len(shape), len(shape) - 1), label="dim")
    n = shape[dim]
    kind = data.draw(st.sampled_from(["size", "sections", "chunk"]), label="kind")
    if kind == "size":
        size = data.draw(st.integers(1, n + 1), label="size")
        bounds = list(range(0, n, size)) + [n]
        fn = (lambda x: x.split(size, dim))  # noqa: E731
    elif kind == "sections":
        cuts = sorted(data.draw(st.lists(st.integers(0, n), max_size=3), label="cuts"))
        bounds = [0] + cuts + [n]
        sections = [b - a for a, b in zip(bounds, bounds[1:])]
        fn = (lambda x: jitgrad.split(x, sections, dim))  # noqa: E731
    else:
        chunks = data.draw(st.integers(1, n + 2), label="chunks")
        size = -(-n // chunks)
        bounds = list(range(0, n, size)) + [n]
        fn = (lambda x: x.chunk(chunks, dim))  # noqa: E731
    used = data.draw(st.lists(st.booleans(), min_size=len(bounds) - 1,
                              max_size=len(bounds) - 1), label="used")

    def np_split(x):
        return tuple(np.take(x, range(a, b), dim % len(shape))
                     for (a, b), u in zip(zip(bounds, bounds[1:]), used) if u)

    def jg_split(x):
        outs = fn(x)
        assert len(outs) == len(bounds) - 1
        node = outs[0].grad_fn
        assert all(o.grad_fn is node and o.output_nr == i for i, o in enumerate(outs))
        return tuple(o for o, u in zip(outs, used) if u)

    check_movement(jg_split, np_split, shape, rng, device=device)


@PROPS
@given(st.data())
def test_unbind_property(device, data):
    rng = _rng(data)
    shape = data.draw(shapes(1, 3, 1, 4), label="shape")
    dim = data.draw(st.integers(-len(shape), len(shape) - 1), label="dim")
    keep = data.draw(st.integers(0, shape[dim] - 1), label="keep")
    check_movement(lambda x: jitgrad.unbind(x, dim)[keep] * 1.0,
                   lambda x: np.take(x, keep, dim), shape, rng, device=device)


# --------------------------------------------------------------------------- properties: copies

@PROPS
@given(st.data())
def test_flip_property(device, data):
    rng = _rng(data)
    shape = data.draw(shapes(0, 4), label="shape")
    dims = data.draw(st.lists(st.integers(0, max(len(shape) - 1, 0)), unique=True,
                              max_size=len(shape)), label="dims")
    neg = data.draw(st.booleans(), label="negative dims")
    jd = tuple(d - len(shape) if neg else d for d in dims)
    check_movement(lambda x: x.flip(jd), lambda x: np.flip(x, tuple(dims)), shape, rng,
                   device=device)


@PROPS
@given(st.data())
def test_roll_property(device, data):
    rng = _rng(data)
    shape = data.draw(shapes(1, 3), label="shape")
    k = data.draw(st.integers(1, 3), label="count")
    shifts = tuple(data.draw(st.lists(st.integers(-7, 7), min_size=k, max_size=k),
                             label="shifts"))
    if data.draw(st.booleans(), label="flat"):
        check_movement(lambda x: jitgrad.roll(x, shifts[0]), lambda x: np.roll(x, shifts[0]),
                       shape, rng, device=device)
        return
    dims = tuple(data.draw(st.lists(st.integers(-len(shape), len(shape) - 1), min_size=k,
                                    max_size=k), label="dims"))  # repeats allowed
    check_movement(lambda x: x.roll(shifts, dims), lambda x: np.roll(x, shifts, dims), shape,
                   rng, device=device)


@PROPS
@given(st.data())
def test_repeat_tile_property(device, data):
    rng = _rng(data)
    shape = data.draw(shapes(0, 3, 0, 3), label="shape")
    if data.draw(st.booleans(), label="tile"):
        reps = tuple(data.draw(st.lists(st.integers(0, 3), max_size=4), label="reps"))
        check_movement(lambda x: x.tile(reps), lambda x: np.tile(x, reps), shape, rng,
                       device=device)
    else:
        extra = data.draw(st.integers(0, 2), label="extra dims")
        reps = tuple(data.draw(st.lists(st.integers(0, 3), min_size=len(shape) + extra,
                                        max_size=len(shape) + extra), label="reps"))
        check_movement(lambda x: x.repeat(*reps) if reps else x.repeat(()),
                       lambda x: np.tile(x, reps), shape, rng, device=device)


@PROPS
@given(st.data())
def test_tril_triu_property(device, data):
    rng = _rng(data)
    shape = data.draw(shapes(2, 4, 0, 4), label="shape")
    k = data.draw(st.integers(-5, 5), label="diagonal")
    lower = data.draw(st.booleans(), label="lower")
    jfn = (lambda x: x.tril(k)) if lower else (lambda x: jitgrad.triu(x, k))
    npfn = np.tril if lower else np.triu
    m, n = shape[-2:]
    keep = npfn(np.ones((m, n), dtype=bool), k)
    check_movement(jfn, lambda x: npfn(x, k), shape, rng,
                   positions=lambda p: np.where(keep, p, -1), device=device)


@PROPS
@given(st.data())
def test_diagonal_property(device, data):
    rng = _rng(data)
    shape = data.draw(shapes(2, 4, 0, 4), label="shape")
    nd = len(shape)
    d1, d2 = data.draw(st.lists(st.integers(-nd, nd - 1), min_size=2, max_size=2).filter(
        lambda ds: ds[0] % nd != ds[1] % nd), label="dims")
    offset = data.draw(st.integers(-5, 5), label="offset")
    check_movement(lambda x: x.diagonal(offset, d1, d2),
                   lambda x: np.diagonal(x, offset, d1 % nd, d2 % nd), shape, rng,
                   device=device)


@PROPS
@given(st.data())
def test_pad_property(device, data):
    rng = _rng(data)
    shape = data.draw(shapes(1, 3, 0, 4), label="shape")
    k = data.draw(st.integers(0, len(shape)), label="padded dims")
    pad = []
    for i in range(k):
        n = shape[len(shape) - 1 - i]
        lo = data.draw(st.integers(-n, 3), label="before")
        hi = data.draw(st.integers(-(n + min(lo, 0)), 3), label="after")
        pad += [lo, hi]
    value = data.draw(st.sampled_from([0.0, -1.5]), label="value")

    def ref(x, fill):
        pairs = [(0, 0)] * len(shape)
        for i in range(k):
            pairs[len(shape) - 1 - i] = (pad[2 * i], pad[2 * i + 1])
        crop = tuple(slice(max(-lo, 0), x.shape[d] - max(-hi, 0))
                     for d, (lo, hi) in enumerate(pairs))
        return np.pad(x[crop], [(max(lo, 0), max(hi, 0)) for lo, hi in pairs],
                      constant_values=fill)

    x = rng.standard_normal(shape)
    assert_array_equal(_host(F.pad(jitgrad.tensor(x, device=device), pad, value=value)),
                       ref(x, value))
    check_movement(lambda t: F.pad(t, pad), lambda a: ref(a, 0 if a.dtype.kind == "f" else -1),
                   shape, rng, device=device)


# --------------------------------------------------------------------------- properties: indices

@st.composite
def gather_case(draw):
    shape = draw(shapes(1, 3, 1, 4), label="shape")
    dim = draw(st.integers(-len(shape), len(shape) - 1), label="dim")
    d = dim % len(shape)
    ishape = tuple(draw(st.integers(0, 5)) if i == d else draw(st.integers(0, n))
                   for i, n in enumerate(shape))
    n = int(np.prod(ishape))
    idx = np.array(draw(st.lists(st.integers(0, shape[d] - 1), min_size=n, max_size=n)),
                   dtype=np.int64).reshape(ishape)
    return shape, dim, idx


@PROPS
@given(gather_case(), st.data())
def test_gather_property(device, case, data):
    shape, dim, idx = case
    d = dim % len(shape)
    block = tuple(slice(0, k) if i != d else slice(None) for i, k in enumerate(idx.shape))
    check_movement(lambda x: x.gather(dim, jitgrad.tensor(idx, device=device)),
                   lambda x: np.take_along_axis(x[block], idx, d), shape, _rng(data),
                   device=device)


@PROPS
@given(gather_case(), st.data())
def test_scatter_add_property(device, case, data):
    shape, dim, idx = case
    rng = _rng(data)
    d = dim % len(shape)
    extra = data.draw(st.lists(st.integers(0, 2), min_size=len(shape), max_size=len(shape)),
                      label="src extra")
    sshape = tuple(n + e for n, e in zip(idx.shape, extra))  # src may be larger than index
    x, src = rng.standard_normal(shape), rng.standard_normal(sshape)
    tx = jitgrad.tensor(x, requires_grad=True, device=device)
    ts = jitgrad.tensor(src, requires_grad=True, device=device)
    out = jitgrad.scatter_add(tx, dim, jitgrad.tensor(idx, device=device), ts)
    pos = list(np.indices(idx.shape))
    pos[d] = idx
    expect = x.copy()
    np.add.at(expect, tuple(pos), src[tuple(slice(0, n) for n in idx.shape)])
    np.testing.assert_allclose(_host(out), expect, rtol=1e-12, atol=1e-12)
    v = rng.standard_normal(shape)
    (out * jitgrad.tensor(v, device=device)).sum().backward()
    assert_array_equal(_host(tx.grad), v)
    gsrc = np.zeros(sshape)
    gsrc[tuple(slice(0, n) for n in idx.shape)] = v[tuple(pos)]
    assert_array_equal(_host(ts.grad), gsrc)


@PROPS
@given(st.data())
def test_index_select_property(device, data):
    rng = _rng(data)
    shape = data.draw(shapes(1, 3, 1, 4), label="shape")
    dim = data.draw(st.integers(-len(shape), len(shape) - 1), label="dim")
    n = shape[dim]
    idx = np.array(data.draw(st.lists(st.integers(0, n - 1), max_size=6), label="index"),
                   dtype=data.draw(st.sampled_from([np.int64, np.int32]), label="dtype"))
    check_movement(lambda x: x.index_select(dim, jitgrad.tensor(idx, device=device)),
                   lambda x: np.take(x, idx.astype(np.int64), dim), shape, rng, device=device)


@PROPS
@given(st.data())
def test_take_property(device, data):
    rng = _rng(data)
    shape = data.draw(shapes(0, 3, 1, 4), label="shape")
    n = int(np.prod(shape))
    ishape = data.draw(shapes(0, 2, 0, 4), label="index shape")
    k = int(np.prod(ishape))
    idx = np.array(data.draw(st.lists(st.integers(-n, n - 1), min_size=k, max_size=k),
                             label="index"), dtype=np.int64).reshape(ishape)
    check_movement(lambda x: jitgrad.take(x, jitgrad.tensor(idx, device=device)),
                   lambda x: x.reshape(-1)[idx], shape, rng, device=device)


@PROPS
@given(st.data())
def test_index_add_property(device, data):
    rng = _rng(data)
    shape = data.draw(shapes(1, 3, 1, 4), label="shape")
    dim = data.draw(st.integers(-len(shape), len(shape) - 1), label="dim")
    d = dim % len(shape)
    idx = np.array(data.draw(st.lists(st.integers(0, shape[d] - 1), max_size=5),
                             label="index"), dtype=np.int64)
    alpha = data.draw(st.sampled_from([1, -2, 0.5]), label="alpha")
    sshape = shape[:d] + (idx.size,) + shape[d + 1:]
    x, src = rng.standard_normal(shape), rng.standard_normal(sshape)
    tx = jitgrad.tensor(x, requires_grad=True, device=device)
    ts = jitgrad.tensor(src, requires_grad=True, device=device)
    out = tx.index_add(dim, jitgrad.tensor(idx, device=device), ts, alpha=alpha)
    expect = x.copy()
    np.add.at(expect, (slice(None),) * d + (idx,), alpha * src)
    np.testing.assert_allclose(_host(out), expect, rtol=1e-12, atol=1e-12)
    v = rng.standard_normal(shape)
    (out * jitgrad.tensor(v, device=device)).sum().backward()
    assert_array_equal(_host(tx.grad), v)
    np.testing.assert_allclose(_host(ts.grad), alpha * np.take(v, idx, d), rtol=1e-12)


# --------------------------------------------------------------------------- properties: x[...]

def _key_part(draw, shape, dim, end, state):
    """One entry of an index for dim `dim` (a mask may take dims up to `end`): the entry and
    the number of dims it consumes."""
    n = shape[dim]
    kind = draw(st.sampled_from(["int", "slice", "full", "array", "mask"]), label="kind")
    if kind == "int":
        return draw(st.integers(-n, n - 1)), 1
    if kind == "slice":
        start = draw(st.none() | st.integers(-n - 1, n + 1))
        stop = draw(st.none() | st.integers(-n - 1, n + 1))
        step = draw(st.none() | st.integers(1, 3))
        return slice(start, stop, step), 1
    if kind == "array" and not state["masked"]:
        k = draw(st.sampled_from([1, state["length"]]))  # arrays broadcast together
        state["arrays"] += 1
        return np.array(draw(st.lists(st.integers(-n, n - 1), min_size=k, max_size=k)),
                        dtype=np.int64), 1
    if kind == "mask" and not state["arrays"] and not state["masked"]:
        state["masked"] = True  # one mask and no arrays: their broadcast is always valid
        mshape = (n, shape[dim + 1]) if dim + 1 < end and draw(st.booleans()) else (n,)
        k = int(np.prod(mshape))
        return np.array(draw(st.lists(st.booleans(), min_size=k, max_size=k))).reshape(
            mshape), len(mshape)
    return slice(None), 1


@st.composite
def index_key(draw):
    """A shape and a key for it mixing ints, stepped slices, None, Ellipsis, bool masks (1-d
    and 2-d) and int arrays with repeats; the arrays broadcast together."""
    shape = draw(shapes(1, 4, 1, 4), label="shape")
    nd = len(shape)
    if draw(st.booleans(), label="ellipsis"):
        a = draw(st.integers(0, nd), label="ellipsis at")
        e = draw(st.integers(0, nd - a), label="ellipsis dims")
        segments = [(0, a), (a + e, nd)]
    else:
        segments = [(0, draw(st.integers(0, nd), label="indexed dims"))]
    state = {"arrays": 0, "masked": False, "length": draw(st.integers(1, 3))}
    parts = []
    for k, (lo, hi) in enumerate(segments):
        if k == 1:
            parts.append(Ellipsis)
        dim = lo
        while dim < hi:
            part, used = _key_part(draw, shape, dim, hi, state)
            parts.append(part)
            dim += used
            if draw(st.integers(0, 3)) == 0:
                parts.append(None)
    if len(parts) == 1 and draw(st.booleans()):
        return shape, parts[0]
    return shape, tuple(parts)


def _np_getitem(x: np.ndarray, key):
    """x[key] with torch's rules where they differ from numpy's: an Ellipsis is expanded
    first (numpy lets even an empty one separate advanced indices), and integers select
    before the advanced index applies to what is left (numpy counts them among the advanced
    indices)."""
    parts = key if isinstance(key, tuple) else (key,)
    used = sum(p.ndim if isinstance(p, np.ndarray) and p.dtype == bool else 1
               for p in parts if p is not None and p is not Ellipsis)
    expanded = []
    for p in parts:
        expanded += [slice(None)] * (x.ndim - used) if p is Ellipsis else [p]
    if not any(isinstance(p, np.ndarray) for p in expanded) or \
            not any(isinstance(p, int) for p in expanded):
        return x[tuple(expanded)]
    basic, rest = [], []
    for p in expanded:
        if isinstance(p, np.ndarray):
            basic += [slice(None)] * (p.ndim if p.dtype == bool else 1)
            rest.append(p)
        elif isinstance(p, int):
            basic.append(p)
        else:
            basic.append(p)
            rest.append(slice(None))
    return x[tuple(basic)][tuple(rest)]


def _jg_key(key, device):
    """The same key with index arrays and masks as jitgrad tensors (ints stay ints)."""
    conv = (lambda p: jitgrad.tensor(p, device=device)  # noqa: E731
            if isinstance(p, np.ndarray) else p)
    return tuple(conv(p) for p in key) if isinstance(key, tuple) else conv(key)


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(index_key(), st.data())
def test_getitem_property(device, case, data):
    shape, key = case
    check_movement(lambda x: x[_jg_key(key, device)], lambda x: _np_getitem(x, key), shape,
                   _rng(data), device=device)
    if torch is not None:  # numpy's and torch's indexing rules agree on these keys
        conv = (lambda p: torch.tensor(p) if isinstance(p, np.ndarray) else p)  # noqa: E731
        tkey = tuple(conv(p) for p in key) if isinstance(key, tuple) else conv(key)
        x = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)
        assert_array_equal(_host(jitgrad.tensor(x, device=device)[_jg_key(key, device)]),
                           torch.tensor(x)[tkey])


def test_getitem_integers_select_before_advanced_indices(device):
    # numpy gives (2, 3) and (2, 1, 4): it counts the integers among the advanced indices
    x = jitgrad.arange(24.0, device=device).reshape(2, 3, 4)
    assert x[0, :, [1, 2]].shape == (3, 2)
    assert_array_equal(_host(x[0, :, [1, 2]]), [[1, 2], [5, 6], [9, 10]])
    assert x[0, None, [1, 2]].shape == (1, 2, 4)
    y = jitgrad.zeros(2, 3, 4, device=device)
    # the value has torch's (3, 2) shape
    y[0, :, [1, 2]] = jitgrad.arange(6.0, device=device).reshape(3, 2)
    assert_array_equal(_host(y[0]), [[0, 0, 1, 0], [0, 2, 3, 0], [0, 4, 5, 0]])


# --------------------------------------------------------------------------- repeated indices

def test_gradients_of_repeated_indices_add_up(device):
    x = jitgrad.arange(6.0, device=device).reshape(2, 3).requires_grad_()
    idx = jitgrad.tensor([[2, 2, 2, 0]], device=device)
    (x.gather(1, idx).sum() + x.index_select(1, jitgrad.tensor([1, 1], device=device)).sum()
     + jitgrad.take(x, jitgrad.tensor([5, -1, 0], device=device)).sum()
     + x[[0, 0, 1], [1, 1, 1]].sum()
     ).backward()
    assert_array_equal(_host(x.grad), [[2, 4, 3], [0, 3, 2]])


def test_double_backward_through_gather_and_scatter_add(device):
    rng = np.random.default_rng(0)
    idx = jitgrad.tensor([[0, 2, 2], [1, 1, 0]], device=device)
    x = jitgrad.tensor(rng.standard_normal((2, 3)), requires_grad=True, device=device)
    s = jitgrad.tensor(rng.standard_normal((2, 3)), requires_grad=True, device=device)
    f = (lambda x, s: jitgrad.scatter_add(x * x, 1, idx, s.gather(1, idx) ** 2))  # noqa: E731
    check_vjp(f, [x, s], rng=rng)
    gradgradcheck(f, [x, s])
    g = (lambda x: (x.index_select(0, jitgrad.tensor([1, 1, 0], device=device))  # noqa: E731
                    ** 3).take(jitgrad.tensor([0, 4, 4], device=device)))
    gradgradcheck(g, [x])


@pytest.mark.parametrize("op", [
    lambda x, i: x.gather(1, i), lambda x, i: x.index_select(1, i[0]),
    lambda x, i: x.take(i), lambda x, i: x.scatter(1, i, 0.0),
    lambda x, i: x.scatter_add(1, i, x), lambda x, i: x.index_add(1, i[0], x)])
def test_index_changed_in_place_before_backward_raises(op, device):
    x = jitgrad.ones(2, 3, requires_grad=True, device=device)
    i = jitgrad.tensor([[0, 2, 1]], device=device)
    y = op(x, i)
    i.add_(0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()
    assert x.grad is None


def test_scatter_src_larger_than_index_gets_zeros_beyond_it(device):
    # torch's rule returns an index-shaped gradient here and its engine rejects it
    src = jitgrad.ones(3, 4, dtype=jitgrad.float64, requires_grad=True, device=device)
    x = jitgrad.zeros(2, 3, dtype=jitgrad.float64, requires_grad=True, device=device)
    jitgrad.scatter(x, 1, jitgrad.tensor([[0, 1], [2, 1]], device=device), src).sum().backward()
    assert_array_equal(_host(src.grad), [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]])
    assert_array_equal(_host(x.grad), [[0, 0, 1], [1, 0, 0]])


# --------------------------------------------------------------------------- multi-output node

def test_split_is_one_node_with_several_outputs(device):
    x = jitgrad.arange(10.0, device=device).requires_grad_()
    a, b, c = x.split([2, 5, 3])
    assert a.grad_fn is b.grad_fn is c.grad_fn
    assert [t.output_nr for t in (a, b, c)] == [0, 1, 2]
    assert a.grad_fn.name() == "SplitWithSizesBackward0"
    assert a.grad_fn.next_functions[0][0].name() == "AccumulateGrad"
    b.retain_grad()
    seen = []
    c.register_hook(lambda g: seen.append(g.shape) or g * 10)
    (b.sum() * 2 + c.sum()).backward()
    assert_array_equal(_host(x.grad), [0, 0, 2, 2, 2, 2, 2, 10, 10, 10])
    assert_array_equal(_host(b.grad), [2.0] * 5)
    assert seen == [(3,)]


def test_split_outputs_are_views_sharing_storage_and_version(device):
    x = jitgrad.arange(6.0, device=device).reshape(2, 3)
    a, b = x.split([1, 1])
    d = x.diagonal()
    with jitgrad.no_grad():
        b.mul_(10)
    assert_array_equal(_host(x), [[0, 1, 2], [30, 40, 50]])
    assert_array_equal(_host(d), [0, 40])
    assert a._version == b._version == x._version == d._version == 1


def test_split_node_frees_and_refuses_a_second_backward(device):
    x = jitgrad.ones(4, requires_grad=True, device=device)
    a, b = x.chunk(2)
    loss = (a * b).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        loss.backward()


def test_ops_outside_grad_mode_record_nothing(device):
    x = jitgrad.ones(2, 3, requires_grad=True, device=device)
    with jitgrad.no_grad():
        outs = [*x.split(1), jitgrad.cat([x, x]),
                x.gather(1, jitgrad.tensor([[0], [1]], device=device)),
                x.flip(0), x.diagonal(), F.pad(x, (1, 1))]
    assert all(o.grad_fn is None and not o.requires_grad for o in outs)


def test_one_hot_and_pad_are_in_functional_not_top_level(device):
    assert F.one_hot(jitgrad.tensor([1, 0], device=device)).dtype == jitgrad.int64
    assert not hasattr(jitgrad, "one_hot") and not hasattr(jitgrad, "pad")


# --------------------------------------------------------------------------- kernels

def _backend(device):
    """The kernel namespace of `device` and a function moving a numpy array there."""
    from jitgrad import _ops

    K = _ops.backend(jitgrad.zeros(1, device=device)._data)
    if device == "cpu":
        return K, (lambda a: a)
    return K, (lambda a: jitgrad.tensor(np.ascontiguousarray(a), device=device)._data)


@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_gather_kernels_on_strided_and_broadcast_inputs(dtype, rng, device):
    K, dev = _backend(device)
    base = (rng.standard_normal((5, 6, 4)) * 10).astype(dtype)

    def views(b, broadcast_to):
        return [b, b.transpose(2, 0, 1), b[::2, 1:, ::3], broadcast_to(b[:1], (3, 6, 4))]

    hviews = views(base, np.broadcast_to)
    dviews = views(dev(base), np.broadcast_to)
    for x, xd in zip(hviews, dviews):
        for dim in range(3):
            ishape = tuple(max(n - 1, 1) if i != dim else 7 for i, n in enumerate(x.shape))
            idx = rng.integers(0, x.shape[dim], ishape)
            block = tuple(slice(0, k) if i != dim else slice(None) for i, k in enumerate(ishape))
            assert_array_equal(_host(K.gather(xd, dim, dev(idx))),
                               np.take_along_axis(x[block], idx, dim))
            src = (rng.standard_normal(ishape) * 10).astype(dtype)
            pos = list(np.indices(ishape))
            pos[dim] = idx
            expect = np.array(x)
            np.add.at(expect, tuple(pos), src)
            # (atomic adds on a GPU sum repeated positions in any order: float rounding of
            # terms up to ~30 in size, so an absolute tolerance where they nearly cancel)
            np.testing.assert_allclose(
                _host(K.scatter(xd, dim, dev(idx), dev(src.T).T, "add")), expect, rtol=1e-6,
                atol=2e-5 if dtype == np.float32 else 0)
            assert_array_equal(_host(xd), x)  # the input is left as it was
    sel = rng.integers(0, 5, 9)
    assert_array_equal(_host(K.index_select(dviews[2], 1, dev(sel))), np.take(hviews[2], sel, 1))
    flat = rng.integers(-60, 60, (4, 5))
    assert_array_equal(_host(K.take(dviews[1], dev(flat))), hviews[1].reshape(-1)[flat])


def test_cpu_backend_names_are_this_familys():
    # kernels/cpu.py gathers every family's launchers in one namespace: none may shadow these
    from jitgrad.kernels import cpu

    for name in ("cat", "stack", "flip", "roll", "repeat", "pad", "tri", "diagonal",
                 "diagonal_backward", "gather", "scatter", "index_select", "index_add",
                 "index_fill", "index_range", "take", "put_add", "one_hot"):
        assert getattr(cpu, name) is getattr(movement, name), name


def test_scatter_kernel_leaves_its_input_alone(rng, device):
    K, dev = _backend(device)
    before = rng.standard_normal((3, 4))
    x = dev(before)
    out = _host(K.scatter(x, 0, dev(np.array([[2, 0, 1, 1]])), 7.0, "set"))
    assert_array_equal(_host(x), before)
    assert_array_equal(out[[2, 0, 1, 1], range(4)], 7.0)


# --------------------------------------------------------------------------- bad input

def _operand(shape, dtype=jitgrad.float32, requires_grad=True, device="cpu"):
    """Distinct values; float operands require grad and already hold a .grad."""
    t = jitgrad.tensor(np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape) * 0.5,
                       dtype=dtype, device=device)
    if requires_grad and dtype.is_floating_point:
        t.requires_grad_()
        (t * 3).sum().backward()
    return t


def _snapshot(ts):
    return [(_host(t).copy(), None if t.grad is None else _host(t.grad).copy(),
             t._version) for t in ts]


L = "long"
# (name, fn(m, x, y) with x of shape (2, 3), y of shape (2, 4), exception, torch's text)
ERRORS = [
    ("cat_sizes", lambda m, x, y: m.cat([x, y]), RuntimeError,
     "Sizes of tensors must match except in dimension 0. Expected size 3 but got size 4 for "
     "tensor number 1 in the list."),
    ("cat_ndim", lambda m, x, y: m.cat([x, y[0]], 1), RuntimeError,
     "Tensors must have same number of dimensions: got 2 and 1"),
    ("cat_0d", lambda m, x, y: m.cat([x, x.sum()]), RuntimeError,
     "zero-dimensional tensor (at position 1) cannot be concatenated"),
    ("cat_empty", lambda m, x, y: m.cat([]), ValueError,
     "torch.cat(): expected a non-empty list of Tensors"),
    ("cat_dim", lambda m, x, y: m.cat([x, x], 2), IndexError,
     "Dimension out of range (expected to be in range of [-2, 1], but got 2)"),
    ("cat_tensor", lambda m, x, y: m.cat(x), TypeError,
     "cat(): argument 'tensors' (position 1) must be tuple of Tensors, not Tensor"),
    ("stack_sizes", lambda m, x, y: m.stack([x, y]), RuntimeError,
     "stack expects each tensor to be equal size, but got [2, 3] at entry 0 and [2, 4] at "
     "entry 1"),
    ("stack_empty", lambda m, x, y: m.stack([]), RuntimeError,
     "stack expects a non-empty TensorList"),
    ("split_sizes_sum", lambda m, x, y: x.split([1, 1], 1), RuntimeError,
     "split_with_sizes expects split_sizes to sum exactly to 3 (input tensor's size at "
     "dimension 1), but got split_sizes=[1, 1]"),
    ("split_negative", lambda m, x, y: m.split(x, -1), RuntimeError,
     "split expects split_size be non-negative, but got split_size=-1"),
    ("split_zero", lambda m, x, y: x.split(0), RuntimeError,
     "split_size can only be 0 if dimension size is 0, but got dimension size of 2"),
    ("split_0d", lambda m, x, y: x.sum().split(1), RuntimeError,
     "split expects at least a 1-dimensional tensor"),
    ("chunk_zero", lambda m, x, y: x.chunk(0), RuntimeError,
     "chunk expects `chunks` to be greater than 0, got: 0"),
    ("unflatten_product", lambda m, x, y: y.unflatten(1, (3, 2)), RuntimeError,
     "unflatten: Provided sizes [3, 2] don't multiply up to the size of dim 1 (4) in the "
     "input tensor"),
    ("unflatten_empty", lambda m, x, y: y.unflatten(1, ()), RuntimeError,
     "unflatten: sizes must be non-empty"),
    ("narrow_length", lambda m, x, y: y.narrow(1, 3, 2), RuntimeError,
     "start (3) + length (2) exceeds dimension size (4)."),
    ("narrow_start", lambda m, x, y: m.narrow(y, 1, -5, 1), IndexError,
     "start out of range (expected to be in range of [-4, 4], but got -5)"),
    ("repeat_fewer", lambda m, x, y: x.repeat(2), RuntimeError,
     "Number of dimensions of repeat dims can not be smaller than number of dimensions of "
     "tensor"),
    ("repeat_negative", lambda m, x, y: x.repeat(-1, 2), RuntimeError,
     "Trying to create tensor with negative dimension -2: [-2, 6]"),
    ("flip_duplicate", lambda m, x, y: x.flip(0, -2), RuntimeError,
     "dim 0 appears multiple times in the list of dims"),
    ("roll_align", lambda m, x, y: m.roll(x, (1, 2), (0,)), RuntimeError,
     "shifts and dimensions must align. shifts: 2, dims:1"),
    ("tril_1d", lambda m, x, y: m.tril(x[0]), RuntimeError,
     "tril: input tensor must have at least 2 dimensions"),
    ("diagonal_same", lambda m, x, y: x.diagonal(0, 1, -1), RuntimeError,
     "diagonal dimensions cannot be identical 1, -1"),
    ("gather_oob", lambda m, x, y: x.gather(1, m.tensor([[0, 3]])), RuntimeError,
     "index 3 is out of bounds for dimension 1 with size 3"),
    ("gather_negative", lambda m, x, y: m.gather(x, 0, m.tensor([[-1, 0]])), RuntimeError,
     "index -1 is out of bounds for dimension 0 with size 2"),
    ("gather_float_index", lambda m, x, y: x.gather(1, m.tensor([[0.0]])), RuntimeError,
     "gather(): Expected dtype int32/int64 for index"),
    ("gather_ndim", lambda m, x, y: x.gather(1, m.tensor([0])), RuntimeError,
     "Index tensor must have the same number of dimensions as input tensor"),
    ("gather_size", lambda m, x, y: x.gather(1, m.zeros(3, 1, dtype=m.long)), RuntimeError,
     "Size does not match at dimension 0 expected index [3, 1] to be no larger than self "
     "[2, 3] apart from dimension 1"),
    ("gather_dim", lambda m, x, y: x.gather(2, m.tensor([[0]])), IndexError,
     "Dimension out of range (expected to be in range of [-2, 1], but got 2)"),
    ("scatter_oob", lambda m, x, y: x.scatter(1, m.tensor([[5]]), y), RuntimeError,
     "index 5 is out of bounds for dimension 1 with size 3"),
    ("scatter_dtype", lambda m, x, y: x.scatter(1, m.tensor([[0]]), y.double()), RuntimeError,
     "scatter(): Expected self.dtype to be equal to src.dtype"),
    ("scatter_src_small", lambda m, x, y: m.scatter(x, 1, m.tensor([[0, 1, 2, 0, 1]]), y),
     RuntimeError, "Expected index [1, 5] to be no larger than self [2, 3] apart from "
     "dimension 1 and to be no larger size than src [2, 4]"),
    ("scatter_value_oob", lambda m, x, y: x.scatter(0, m.tensor([[2]]), 1.0), RuntimeError,
     "index 2 is out of bounds for dimension 0 with size 2"),
    ("scatter_add_float_index", lambda m, x, y: m.scatter_add(x, 1, m.tensor([[0.0]]), y),
     RuntimeError, "scatter(): Expected dtype int32/int64 for index"),
    ("scatter_add_negative", lambda m, x, y: x.scatter_add(1, m.tensor([[-1]]), y),
     RuntimeError, "index -1 is out of bounds for dimension 1 with size 3"),
    ("index_select_oob", lambda m, x, y: x.index_select(0, m.tensor([2])), IndexError,
     "index out of range in self"),
    ("index_select_oob_dim1", lambda m, x, y: x.index_select(1, m.tensor([0, 3])),
     RuntimeError, "INDICES element is out of DATA bounds, id=3 axis_dim=3"),
    ("index_select_matrix", lambda m, x, y: m.index_select(x, 0, m.tensor([[0]])), IndexError,
     "index_select(): Index is supposed to be a vector"),
    ("index_select_float", lambda m, x, y: x.index_select(0, m.tensor([0.0])), RuntimeError,
     "index_select(): Expected dtype int32 or int64 for index"),
    ("index_add_oob", lambda m, x, y: x.index_add(1, m.tensor([0, 1, 3, 0]), y), RuntimeError,
     "index 3 is out of bounds for dimension 1 with size 3"),
    ("index_add_count", lambda m, x, y: x.index_add(1, m.tensor([0, 1]), y), RuntimeError,
     "index_add_(): Number of indices (2) should be equal to source.size(dim): (4), for "
     "dim: 1"),
    ("index_add_shape", lambda m, x, y: m.index_add(x, 0, m.tensor([0, 1]), y), RuntimeError,
     "source tensor shape must match self tensor shape, excluding the specified dimension. "
     "Got self.shape = [2, 3] source.shape = [2, 4]"),
    ("index_add_dtype", lambda m, x, y: x.index_add(1, m.tensor([0, 1, 2, 0]), y.double()),
     RuntimeError, "index_add_(): self (Float) and source (Double) must have the same scalar "
     "type"),
    ("scatter_inplace_oob", lambda m, x, y: x.detach().scatter_(1, m.tensor([[0, 3]]), 1.0),
     RuntimeError, "index 3 is out of bounds for dimension 1 with size 3"),
    ("index_add_inplace_oob", lambda m, x, y: x.detach().index_add_(0, m.tensor([2]), m.ones(1, 3)),
     RuntimeError, "index 2 is out of bounds for dimension 0 with size 2"),
    ("masked_fill_inplace_mask", lambda m, x, y: x.detach().masked_fill_(x.detach(), 0.0),
     RuntimeError, "masked_fill_ only supports boolean masks, but got mask with dtype float"),
    ("index_fill_oob", lambda m, x, y: x.index_fill(1, m.tensor([-4]), 0.0), IndexError,
     "index -4 is out of bounds for dimension 1 with size 3"),
    ("index_fill_int32", lambda m, x, y: m.index_fill(x, 1, m.tensor([0], dtype=m.int32), 1),
     IndexError, "index_fill_(): Expected dtype int64 for index."),
    ("index_fill_value_1d", lambda m, x, y: x.index_fill(1, m.tensor([0]), y[0, :1]),
     RuntimeError, "index_fill_ only supports a 0-dimensional value tensor, but got tensor "
     "with 1 dimension(s)."),
    ("take_oob", lambda m, x, y: m.take(x, m.tensor([6])), IndexError,
     "out of range: tried to access index 6 on a tensor of 6 elements."),
    ("take_negative", lambda m, x, y: x.take(m.tensor([[0, -7]])), IndexError,
     "out of range: tried to access index -7 on a tensor of 6 elements."),
    ("take_int32", lambda m, x, y: x.take(m.tensor([0], dtype=m.int32)), RuntimeError,
     "take(): Expected a long tensor for index, but got Int"),
    ("masked_fill_float_mask", lambda m, x, y: x.masked_fill(x, 1.0), RuntimeError,
     "masked_fill_ only supports boolean masks, but got mask with dtype float"),
    ("masked_fill_value_1d", lambda m, x, y: x.masked_fill(x > 1, y[0, :1]), RuntimeError,
     "masked_fill_ only supports a 0-dimensional value tensor, but got tensor with 1 "
     "dimension(s)."),
    ("masked_fill_broadcast", lambda m, x, y: m.masked_fill(x, y > 1, 0.0), RuntimeError,
     "The size of tensor a (4) must match the size of tensor b (3) at non-singleton "
     "dimension 1"),
    ("pad_odd", lambda m, x, y: m.nn.functional.pad(x, (1,)), RuntimeError,
     "Padding length must be divisible by 2"),
    ("pad_long", lambda m, x, y: m.nn.functional.pad(x, (1,) * 6), RuntimeError,
     "Padding length should be less than or equal to two times the input dimension but got "
     "padding length 6 and input of dimension 2"),
    ("pad_crop_too_much", lambda m, x, y: m.nn.functional.pad(x, (-2, -2)), RuntimeError,
     "narrow(): length must be non-negative."),
    ("one_hot_int32", lambda m, x, y: m.nn.functional.one_hot(m.tensor([1], dtype=m.int32)),
     RuntimeError, "one_hot is only applicable to index tensor of type LongTensor."),
    ("one_hot_negative", lambda m, x, y: m.nn.functional.one_hot(m.tensor([1, -1])),
     RuntimeError, "Class values must be non-negative."),
    ("one_hot_small", lambda m, x, y: m.nn.functional.one_hot(m.tensor([3]), 3),
     RuntimeError, "Class values must be smaller than num_classes."),
    ("getitem_oob", lambda m, x, y: x[m.tensor([0, 2])], IndexError,
     "index 2 is out of bounds for dimension 0 with size 2"),
    ("getitem_float_index", lambda m, x, y: x[m.tensor([0.0])], IndexError,
     "tensors used as indices must be long, int, byte or bool tensors"),
    ("getitem_mask_shape", lambda m, x, y: x[m.tensor([True, False, True])], IndexError,
     "The shape of the mask [3] at index 0 does not match the shape of the indexed tensor "
     "[2, 3] at index 0"),
    ("getitem_too_many", lambda m, x, y: x[0, 1, 0], IndexError,
     "too many indices for tensor of dimension 2"),
]


@pytest.mark.parametrize("name, fn, exc, text", ERRORS, ids=[e[0] for e in ERRORS])
def test_bad_input_raises_and_changes_nothing(name, fn, exc, text, device):
    x, y = _operand((2, 3), device=device), _operand((2, 4), device=device)
    before = _snapshot([x, y])
    with pytest.raises(exc) as ei:
        fn(OnDevice(device), x, y)
    assert str(ei.value) == text
    for (d0, g0, v0), (d1, g1, v1) in zip(before, _snapshot([x, y])):
        assert_array_equal(d0, d1)
        assert_array_equal(g0, g1)
        assert v0 == v1


@pytest.mark.parametrize("name, fn, exc, text", ERRORS, ids=[e[0] for e in ERRORS])
def test_bad_input_texts_are_torchs(name, fn, exc, text):
    torch = pytest.importorskip("torch")
    x = torch.arange(6.0).reshape(2, 3).requires_grad_()
    y = torch.arange(8.0).reshape(2, 4).requires_grad_()
    with pytest.raises(exc) as ei:
        fn(torch, x, y)
    assert str(ei.value).splitlines()[0] == text.splitlines()[0]


def _put_calls(m):
    x = m.zeros(3, 2)
    i = m.tensor([1])
    return {
        "none": lambda: x.index_put((None, i), m.ones(1)),
        "int": lambda: x.index_put((1,), m.ones(2)),
        "list": lambda: x.index_put(([1],), m.ones(2)),
        "not a tuple": lambda: x.index_put(i, m.ones(2)),
        "accumulate 1": lambda: x.index_put((i,), m.ones(2), accumulate=1),
        "leading dims": lambda: x.index_put((i,), m.ones(1, 1, 2)),
        "leading dims, accumulate": lambda: x.index_put((i,), m.ones(1, 1, 2), accumulate=True),
        "too many": lambda: x.index_put((i, i, i), m.ones(1)),
        "dtypes": lambda: x.index_put((i,), m.ones(2, dtype=m.float64)),
        "value not a tensor": lambda: x.index_put((i,), 1.0),
        "bool index": lambda: x.index_put((m.tensor([True, False, True]),), m.ones(2)),
        "broadcast, repeats": lambda: x.index_put((m.tensor([2, 0, 2]),), m.tensor(2.0), True),
        "put into empty": lambda: m.zeros(0).put(m.tensor([0]), m.ones(1)),
        "put float index": lambda: x.put(m.tensor([0.5]), m.ones(1)),
        "put function": lambda: m.put(x, m.tensor([0, -1]), m.ones(2)),
        "put accumulate 1": lambda: x.put(m.tensor([0]), m.ones(1), accumulate=1),
        "put out of range": lambda: x.put(m.tensor([6]), m.ones(1)),
        "put sizes": lambda: x.put(m.tensor([1, 2]), m.ones(1)),
        "put dtypes": lambda: x.put(m.tensor([1]), m.ones(1, dtype=m.float64)),
        "put repeats": lambda: x.put(m.tensor([0, 5, 0]), m.tensor([1., 2., 3.]), True),
    }


def test_index_put_and_put_results_and_errors_match_torch():
    torch = pytest.importorskip("torch")

    def outcome(fn):
        try:
            return ("ok", fn().tolist())
        except Exception as e:  # noqa: BLE001 - the type and words are what is compared
            return (type(e).__name__, str(e))

    ours = {k: outcome(f) for k, f in _put_calls(jitgrad).items()}
    theirs = {k: outcome(f) for k, f in _put_calls(torch).items()}
    assert ours == theirs
