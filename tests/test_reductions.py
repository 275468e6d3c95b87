"""The reductions and softmax family beyond its op-table rows:

* hypothesis properties: random shapes (0-d to 4-d, size-0 and size-1 dims), random dim
  subsets spelled with negative dims and in any order, keepdim, for sum, mean, prod, amax,
  amin, argmax, logsumexp, var, any, all, cumsum and softmax, against numpy; empty reductions
  raise where torch raises;
* bad input raises torch's exception with torch's text and changes no tensor nor ``.grad``;
* torch's values at the edges: softmax of [1000, 0, -1000] and of rows of -inf, logsumexp of
  infinities, gradients of prod and cumprod at zeros (and their second derivatives), gradients
  of amax and of the inf-norm split among ties;
* every kernel layout (rows and lane blocks, serial and parallel) against numpy.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import DEVICE
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from jitgrad.kernels import reduce as rd
from jitgrad.kernels import scan as sc
from jitgrad.kernels import softmax as smk
from on_device import J

import jitgrad

ON_CPU_ONLY = pytest.mark.skipif(DEVICE != "cpu", reason="CPU kernel internals (numpy arrays)")


PROPERTY = settings(max_examples=40 if DEVICE == "cpu" else 6, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# --------------------------------------------------------------------------- strategies

@st.composite
def arrays(draw, dtypes=(np.float64,), max_dims: int = 4):
    """An array of 0 to `max_dims` dims of sizes 0 to 4 (mostly 1 to 3)."""
    shape = tuple(draw(st.lists(st.sampled_from([0, 1, 1, 2, 2, 3, 3, 4]), max_size=max_dims)))
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    if dtype == np.bool_:
        elements = st.booleans()
    elif dtype.kind in "iu":
        elements = st.integers(0 if dtype.kind == "u" else -3, 3)
    else:
        elements = st.floats(-5, 5, allow_nan=False, width=64)
    return draw(hnp.arrays(dtype, shape, elements=elements))


@st.composite
def dims_for(draw, ndim: int):
    """(dim argument, sorted non-negative dims, keepdim): None, an int, or a tuple or list of
    distinct dims in random order and random sign; () is every dim for most reductions."""
    n = max(ndim, 1)
    kind = draw(st.sampled_from(["none", "int", "seq"]))
    keepdim = draw(st.booleans())
    if kind == "none":
        return None, tuple(range(ndim)), keepdim
    if kind == "int":
        d = draw(st.integers(-n, n - 1))
        return d, ((d % n,) if ndim else ()), keepdim
    picked = draw(st.lists(st.integers(0, n - 1), unique=True, max_size=n))
    spelled = [d - n if draw(st.booleans()) else d for d in picked]
    seq = tuple(spelled) if draw(st.booleans()) else list(spelled)
    dims = tuple(sorted(picked)) if ndim else ()
    return seq, (dims if picked else tuple(range(ndim))), keepdim


@st.composite
def case(draw, dtypes=(np.float64,)):
    x = draw(arrays(dtypes))
    return (x, *draw(dims_for(x.ndim)))


def _np_axes(x: np.ndarray, dims: tuple):
    return dims if x.ndim else None


def _close(got, want, **kw) -> None:
    got = got.detach().cpu().numpy() if isinstance(got, jitgrad.Tensor) else got
    want = np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_allclose(got, want, equal_nan=True, **(kw or dict(rtol=1e-9, atol=1e-9)))


def _quiet(f, *args, **kw):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return f(*args, **kw)


# --------------------------------------------------------------------------- properties

@PROPERTY
@given(case(dtypes=(np.float64, np.int64, np.bool_)))
def test_sum_property(c):
    x, dim, dims, keepdim = c
    got = J.tensor(x).sum(dim, keepdim=keepdim)
    want = x.sum(axis=_np_axes(x, dims), keepdims=keepdim)
    assert got.dtype == (jitgrad.float64 if x.dtype.kind == "f" else jitgrad.int64)
    _close(got, want)


@PROPERTY
@given(case())
def test_mean_property(c):
    x, dim, dims, keepdim = c
    got = J.tensor(x).mean(dim, keepdim=keepdim)
    _close(got, _quiet(np.mean, x, axis=_np_axes(x, dims), keepdims=keepdim))


@PROPERTY
@given(arrays((np.float64, np.int64, np.bool_)), st.data())
def test_prod_property(x, data):
    t = J.tensor(x)
    if data.draw(st.booleans()):
        got, want = t.prod(), np.prod(x)
    else:
        dim = data.draw(st.integers(-max(x.ndim, 1), max(x.ndim, 1) - 1))
        keepdim = data.draw(st.booleans())
        got = t.prod(dim, keepdim=keepdim)
        want = np.prod(x, axis=dim, keepdims=keepdim) if x.ndim else x
    assert got.dtype == (jitgrad.float64 if x.dtype.kind == "f" else jitgrad.int64)
    _close(got, want)


def _empty_reduction(x: np.ndarray, dim, dims: tuple) -> bool:
    unspecified = dim is None or (not isinstance(dim, int) and len(dim) == 0)
    return (unspecified and x.size == 0) or any(x.shape[d] == 0 for d in dims)


@PROPERTY
@given(case(dtypes=(np.float64, np.int64, np.bool_)), st.booleans())
def test_amax_amin_property(c, want_max):
    x, dim, dims, keepdim = c
    f = jitgrad.amax if want_max else jitgrad.amin
    t = J.tensor(x)
    if _empty_reduction(x, dim, dims):
        with pytest.raises((RuntimeError, IndexError), match="Expected reduction dim"):
            f(t, () if dim is None else dim, keepdim)
        return
    got = f(t, () if dim is None else dim, keepdim)
    ref = np.max if want_max else np.min
    want = ref(x, axis=_np_axes(x, dims), keepdims=keepdim)
    assert got.dtype == t.dtype
    _close(got, want)


@PROPERTY
@given(arrays((np.float64, np.int64)), st.data())
def test_argmax_property(x, data):
    t = J.tensor(x)
    keepdim = data.draw(st.booleans())
    if data.draw(st.booleans()):
        dim = None
        empty = x.size == 0
    else:
        dim = data.draw(st.integers(-max(x.ndim, 1), max(x.ndim, 1) - 1))
        empty = x.ndim > 0 and x.shape[dim] == 0
    if empty:
        with pytest.raises(IndexError, match="argmax"):
            t.argmax(dim, keepdim)
        return
    got = t.argmax(dim, keepdim)
    if dim is None:
        want = np.array(np.argmax(x)).reshape((1,) * x.ndim if keepdim else ())
    else:
        want = np.argmax(x, axis=dim, keepdims=keepdim) if x.ndim else np.array(0)
    assert got.dtype == jitgrad.int64
    np.testing.assert_array_equal(got.cpu().numpy(), want)


def _np_logsumexp(x, axes, keepdims):
    m = np.max(x, axis=axes, keepdims=True, initial=-np.inf)
    m = np.where(np.isfinite(m), m, 0.0)
    r = _quiet(np.log, np.sum(np.exp(x - m), axis=axes, keepdims=True)) + m
    return r if keepdims else np.squeeze(r, axis=axes)


@PROPERTY
@given(case(dtypes=(np.float64, np.int64)))
def test_logsumexp_property(c):
    x, dim, dims, keepdim = c
    got = jitgrad.logsumexp(J.tensor(x), () if dim is None else dim, keepdim)
    assert got.dtype == (jitgrad.float64 if x.dtype.kind == "f" else jitgrad.float32)
    want = _np_logsumexp(x.astype(np.float64), _np_axes(x, dims), keepdim)
    _close(got, want, rtol=1e-6 if x.dtype.kind == "i" else 1e-9, atol=1e-6)


@PROPERTY
@given(case(), st.sampled_from([None, 0, 1, 2, 0.5]), st.booleans())
def test_var_std_property(c, correction, take_sqrt):
    x, dim, dims, keepdim = c
    f = jitgrad.std if take_sqrt else jitgrad.var
    g = np.std if take_sqrt else np.var
    got = _quiet(f, J.tensor(x), dim, keepdim=keepdim, correction=correction)
    ddof = 1 if correction is None else correction
    _close(got, _quiet(g, x, axis=_np_axes(x, dims), ddof=ddof, keepdims=keepdim))


@PROPERTY
@given(case(dtypes=(np.float64, np.int64, np.bool_, np.uint8)), st.booleans())
def test_any_all_property(c, want_all):
    x, dim, dims, keepdim = c
    t = J.tensor(x)
    got = t.all(dim, keepdim) if want_all else t.any(dim, keepdim)
    f = np.all if want_all else np.any
    if dim is not None and not isinstance(dim, int) and len(dim) == 0:
        want = x != 0  # torch: dim=() tests each element
    else:
        want = f(x, axis=_np_axes(x, dims), keepdims=keepdim)
    assert got.dtype == (jitgrad.uint8 if x.dtype == np.uint8 else jitgrad.bool)
    np.testing.assert_array_equal(got.cpu().numpy(), np.asarray(want).astype(got.cpu().numpy().dtype))


@PROPERTY
@given(arrays((np.float64, np.int64, np.bool_)), st.data(), st.booleans())
def test_cumsum_cumprod_property(x, data, products):
    dim = data.draw(st.integers(-max(x.ndim, 1), max(x.ndim, 1) - 1))
    t = J.tensor(x)
    got = t.cumprod(dim) if products else t.cumsum(dim)
    f = np.cumprod if products else np.cumsum
    want = f(x, axis=dim) if x.ndim else x.astype(got.cpu().numpy().dtype)
    assert got.dtype == (jitgrad.float64 if x.dtype.kind == "f" else jitgrad.int64)
    _close(got, want)


def _np_softmax(x, axis, log):
    if x.ndim == 0:
        return np.zeros_like(x) if log else np.ones_like(x)
    lse = _np_logsumexp(x, axis, True) if x.size else x
    return x - lse if log else np.exp(x - lse)


@PROPERTY
@given(arrays(), st.data(), st.booleans())
def test_softmax_property(x, data, log):
    dim = data.draw(st.integers(-max(x.ndim, 1), max(x.ndim, 1) - 1))
    t = J.tensor(x, requires_grad=True)
    y = t.log_softmax(dim) if log else t.softmax(dim)
    _close(y, _np_softmax(x, dim % max(x.ndim, 1), log))
    # the gradient of <y, v> against the closed forms
    v = np.linspace(-1, 1, x.size).reshape(x.shape)
    (y * J.tensor(v)).sum().backward()
    yd = y.detach().cpu().numpy()
    ax = dim if x.ndim else None
    want = (v - np.exp(yd) * v.sum(axis=ax, keepdims=True)) if log else \
        yd * (v - (v * yd).sum(axis=ax, keepdims=True))
    _close(t.grad, want)


# --------------------------------------------------------------------------- bad input

SINGLE_DIM_OPS = {
    "prod": lambda t, d: t.prod(d), "argmax": lambda t, d: t.argmax(d),
    "argmin": lambda t, d: t.argmin(d), "cumsum": lambda t, d: t.cumsum(d),
    "cumprod": lambda t, d: t.cumprod(d), "softmax": lambda t, d: t.softmax(d),
    "log_softmax": lambda t, d: t.log_softmax(d),
}
MULTI_DIM_OPS = {
    "sum": lambda t, d: t.sum(d), "mean": lambda t, d: t.mean(d),
    "amax": lambda t, d: t.amax(d), "amin": lambda t, d: t.amin(d),
    "logsumexp": lambda t, d: t.logsumexp(d), "var": lambda t, d: t.var(d),
    "std": lambda t, d: t.std(d, keepdim=True), "norm": lambda t, d: t.norm(dim=d),
    "any": lambda t, d: t.any(d), "all": lambda t, d: t.all(d),
}


@PROPERTY
@given(st.lists(st.integers(1, 3), max_size=4), st.data())
def test_bad_dims_property(shape, data):
    """Out-of-range dims (alone or in a list) raise IndexError and duplicated dims raise
    RuntimeError, with torch's texts, before anything changes."""
    x = J.tensor(np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape),
                       requires_grad=True)
    x.sum().backward()
    n = max(len(shape), 1)
    name = data.draw(st.sampled_from(sorted({**SINGLE_DIM_OPS, **MULTI_DIM_OPS})))
    op = {**SINGLE_DIM_OPS, **MULTI_DIM_OPS}[name]
    bad = data.draw(st.one_of(st.integers(n, n + 3), st.integers(-n - 3, -n - 1)))
    arg = bad if name in SINGLE_DIM_OPS or data.draw(st.booleans()) else (0, bad)
    with pytest.raises(IndexError) as ei:
        op(x, arg)
    assert str(ei.value) == (f"Dimension out of range (expected to be in range of "
                             f"[{-n}, {n - 1}], but got {bad})")
    if name in MULTI_DIM_OPS and len(shape) >= 1:
        d = data.draw(st.integers(0, len(shape) - 1))
        with pytest.raises(RuntimeError, match=f"^dim {d} appears multiple times in the list "
                                               "of dims$"):
            op(x, [d, d - len(shape)])
    np.testing.assert_array_equal(x.detach().cpu().numpy(), np.arange(x.numel()).reshape(shape))
    np.testing.assert_array_equal(x.grad.cpu().numpy(), 1.0)


def _operand(shape, dtype=jitgrad.float32):
    """A leaf with distinct values and, when floating, a .grad from an earlier backward."""
    n = int(np.prod(shape))
    t = J.tensor(np.arange(n, dtype=np.float64).reshape(shape) * 0.5 - 1, dtype=dtype)
    if dtype.is_floating_point:
        t.requires_grad_()
        (t * 3).sum().backward()
    return t


def _check(exc, message: str, fn, *tensors, torch_fn=None):
    """fn() raises exc with exactly `message`; `tensors` keep data and .grad. With torch
    installed, torch_fn() (the same call on torch) raises the same type and text."""
    before = [(t.detach().cpu().numpy().copy(), None if t.grad is None else t.grad.cpu().numpy().copy())
              for t in tensors]
    with pytest.raises(exc) as ei:
        fn()
    assert str(ei.value) == message
    for t, (d, g) in zip(tensors, before):
        np.testing.assert_array_equal(t.detach().cpu().numpy(), d)
        assert (t.grad is None) == (g is None)
        if g is not None:
            np.testing.assert_array_equal(t.grad.cpu().numpy(), g)
    if torch_fn is not None:
        try:
            import torch
        except ImportError:
            return
        with pytest.raises(exc) as theirs:
            torch_fn(torch)
        assert str(theirs.value).split("\n")[0] == message


OUT_OF_RANGE = [
    ("x.sum(2)", "[-2, 1], but got 2"), ("x.prod(2)", "[-2, 1], but got 2"),
    ("x.var(-3)", "[-2, 1], but got -3"), ("x.std((0, 2))", "[-2, 1], but got 2"),
    ("x.norm(dim=5)", "[-2, 1], but got 5"), ("x.logsumexp(3)", "[-2, 1], but got 3"),
    ("x.amax(2)", "[-2, 1], but got 2"), ("x.amin((-3,))", "[-2, 1], but got -3"),
    ("x.argmax(2)", "[-2, 1], but got 2"), ("x.argmin(-3)", "[-2, 1], but got -3"),
    ("x.any(2)", "[-2, 1], but got 2"), ("x.all((1, 2))", "[-2, 1], but got 2"),
    ("x.cumsum(2)", "[-2, 1], but got 2"), ("x.cumprod(-3)", "[-2, 1], but got -3"),
    ("x.softmax(2)", "[-2, 1], but got 2"), ("x.log_softmax(-3)", "[-2, 1], but got -3"),
    ("x.mean((0, 5))", "[-2, 1], but got 5"),
]


def _run(call: str, x, m):
    """Evaluate `call` (spelled with `x`, and `m` for the module) on jitgrad or torch."""
    return eval(call, {"x": x, "m": m, "jitgrad": m, "float": float})


def _torch_version_of(call: str, shape: tuple, dtype: str = "float32"):
    def run(torch):
        x = torch.arange(int(np.prod(shape))).reshape(shape)
        x = x > 2 if dtype == "bool" else x.to(getattr(torch, dtype))
        return _run(call, x, torch)
    return run


@pytest.mark.parametrize("call,tail", OUT_OF_RANGE)
def test_dim_out_of_range(call, tail):
    x = _operand((2, 3))
    _check(IndexError, f"Dimension out of range (expected to be in range of {tail})",
           lambda: _run(call, x, jitgrad), x, torch_fn=_torch_version_of(call, (2, 3)))


@pytest.mark.parametrize("call,d", [("x.sum((0, -2))", 0), ("x.mean([1, 1])", 1),
                                    ("x.var((0, 0))", 0), ("x.std((1, -1))", 1),
                                    ("x.norm(2, (0, -2))", 0), ("x.logsumexp((0, -2))", 0),
                                    ("x.amax((0, -2))", 0), ("x.amin([1, -1])", 1),
                                    ("x.any((0, -2))", 0), ("x.all((1, 1))", 1)])
def test_duplicate_dims(call, d):
    x = _operand((2, 3))
    _check(RuntimeError, f"dim {d} appears multiple times in the list of dims",
           lambda: _run(call, x, jitgrad), x, torch_fn=_torch_version_of(call, (2, 3)))


@pytest.mark.parametrize("call,dtype,exc,message", [
    ("x.mean()", "int64", RuntimeError,
     "mean(): could not infer output dtype. Input dtype must be either a floating point or "
     "complex dtype. Got: Long"),
    ("x.var(1)", "int64", RuntimeError, "std and var only support floating point and complex "
                                        "dtypes"),
    ("x.std()", "bool", RuntimeError, "std and var only support floating point and complex "
                                      "dtypes"),
    ("x.norm()", "int64", RuntimeError, "linalg.vector_norm: Expected a floating point or "
                                        "complex tensor as input. Got Long"),
    ("x.softmax(1)", "int64", NotImplementedError,
     "\"softmax_lastdim_kernel_impl\" not implemented for 'Long'"),
    ("x.softmax(0)", "int32", NotImplementedError,
     "\"softmax_kernel_impl\" not implemented for 'Int'"),
    ("x.log_softmax(-1)", "bool", NotImplementedError,
     "\"log_softmax_lastdim_kernel_impl\" not implemented for 'Bool'"),
    ("x.log_softmax(0)", "int64", NotImplementedError,
     "\"log_softmax_kernel_impl\" not implemented for 'Long'"),
    ("x.softmax(1, dtype=m.int64)", "float32", NotImplementedError,
     "\"softmax_lastdim_kernel_impl\" not implemented for 'Long'"),
    ("x.argmax()", "bool", RuntimeError, "argmax(): does not support bool input"),
    ("x.argmin(0)", "bool", RuntimeError, "argmin(): does not support bool input"),
])
def test_wrong_dtype(call, dtype, exc, message):
    x = _operand((2, 3), getattr(jitgrad, dtype))
    _check(exc, message, lambda: _run(call, x, jitgrad), x,
           torch_fn=_torch_version_of(call, (2, 3), dtype))


@pytest.mark.parametrize("call,shape,exc,message", [
    ("x.argmax()", (0, 3), IndexError,
     "argmax(): Expected reduction dim to be specified for input.numel() == 0."),
    ("x.argmin(1)", (3, 0), IndexError, "argmin(): Expected reduction dim 1 to have non-zero "
                                        "size."),
    ("x.amax()", (0, 3), RuntimeError,
     "amax(): Expected reduction dim to be specified for input.numel() == 0. Specify the "
     "reduction dim with the 'dim' argument."),
    ("x.amin(())", (2, 0), RuntimeError,
     "amin(): Expected reduction dim to be specified for input.numel() == 0. Specify the "
     "reduction dim with the 'dim' argument."),
    ("x.amax(0)", (0, 3), IndexError, "amax(): Expected reduction dim 0 to have non-zero size."),
    ("x.amin((0, 1))", (2, 0), IndexError,
     "amin(): Expected reduction dim 1 to have non-zero size."),
    ("x.norm(float('inf'))", (0, 3), RuntimeError,
     "linalg.vector_norm cannot compute the inf norm on an empty tensor because the operation "
     "does not have an identity"),
    ("x.norm(-float('inf'), 0)", (0, 3), RuntimeError,
     "linalg.vector_norm cannot compute the -inf norm on the dimension 0because this dimension "
     "is empty and the operation does not have an identity"),
])
def test_empty_reductions(call, shape, exc, message):
    x = _operand(shape)
    _check(exc, message, lambda: _run(call, x, jitgrad), x,
           torch_fn=_torch_version_of(call, shape))


@pytest.mark.parametrize("call,message", [
    ("x.argmax((0, 1))", "argmax(): argument 'dim' must be int, not tuple"),
    ("x.prod((0, 1))", "prod(): argument 'dim' must be int, not tuple"),
    ("jitgrad.logsumexp(x, None)", "logsumexp(): argument 'dim' must be tuple of ints, not "
                                   "NoneType"),
    ("jitgrad.softmax(x, None)", "softmax(): argument 'dim' (position 2) must be int, not "
                                 "NoneType"),
    ("x.var(1, True, correction=0)", "var() received an invalid combination of arguments: "
                                     "'unbiased' and 'correction' cannot both be given"),
])
def test_bad_arguments(call, message):
    x = _operand((2, 3))
    _check(TypeError, message, lambda: _run(call, x, jitgrad), x)


def test_norm_orders_that_are_not_vector_norms():
    x = _operand((2, 3))
    _check(RuntimeError, "linalg.matrix_norm: Order abc not supported.",
           lambda: x.norm(p="abc"), x, torch_fn=_torch_version_of("x.norm(p='abc')", (2, 3)))
    _check(NotImplementedError, "norm(p='nuc') (the nuclear norm) is not available in jitgrad; "
           "use p=2 or 'fro'", lambda: x.norm(p="nuc"), x)
    y = _operand((2, 3, 4))
    _check(RuntimeError, "linalg.matrix_norm: dim must be a 2-tuple. Got 0 1 2",
           lambda: y.norm("fro", (0, 1, 2)), y,
           torch_fn=_torch_version_of("x.norm('fro', (0, 1, 2))", (2, 3, 4)))


def test_var_with_no_degrees_of_freedom_warns_and_gives_torchs_values():
    x = J.tensor([[1.0, 2.0], [3.0, 5.0]], requires_grad=True)
    with pytest.warns(UserWarning, match="degrees of freedom is <= 0"):
        v = x.var(1, correction=2)
    assert np.isinf(v.detach().cpu().numpy()).all()
    with pytest.warns(UserWarning, match="degrees of freedom is <= 0"):
        s = J.tensor([2.0]).std()
    assert np.isnan(s.item())


# --------------------------------------------------------------------------- edge values

def test_softmax_is_stable_at_the_edges():
    x = J.tensor([[1000.0, 0.0, -1000.0], [-np.inf, -np.inf, -np.inf],
                        [np.inf, 0.0, 1.0], [np.nan, 0.0, 1.0]])
    np.testing.assert_array_equal(x.softmax(1).cpu().numpy()[0], [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(x.log_softmax(1).cpu().numpy()[0], [0.0, -1000.0, -2000.0])
    for f in (jitgrad.softmax, jitgrad.log_softmax):
        assert np.isnan(f(x, 1).cpu().numpy()[1:]).all()  # as torch: rows of -inf, inf, nan
    xt = x.t().contiguous()  # the same along dim 0 (the lane-block layout)
    np.testing.assert_array_equal(xt.softmax(0).cpu().numpy()[:, 0], [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(xt.log_softmax(0).cpu().numpy()[:, 0], [0.0, -1000.0, -2000.0])
    assert np.isnan(xt.softmax(0).cpu().numpy()[:, 1:]).all()


def test_edge_values_match_torch():
    torch = pytest.importorskip("torch")
    rows = [[1000.0, 0.0, -1000.0], [-np.inf, -np.inf, -np.inf], [np.inf, 1.0, 0.0],
            [np.inf, -np.inf, 0.0], [-np.inf, 0.0, 1.0], [88.0, 89.0, 90.0]]
    for dt in ("float32", "float64"):
        a = np.array(rows, dtype=dt)
        for name in ("softmax", "log_softmax"):
            for dim in (0, 1):
                got = getattr(J.tensor(a), name)(dim).cpu().numpy()
                want = getattr(torch.tensor(a), name)(dim).cpu().numpy()
                np.testing.assert_allclose(got, want, rtol=1e-6, equal_nan=True)
        got = J.tensor(a).logsumexp(1).cpu().numpy()
        np.testing.assert_allclose(got, torch.tensor(a).logsumexp(1).cpu().numpy(), rtol=1e-6)


def _zeros_cases():
    return [np.array([2.0, 0.0, 3.0, -1.5]), np.array([0.0, 2.0, 0.0, 3.0]),
            np.array([[1.5, 0.0, 2.0], [0.0, 0.0, 0.0], [2.0, -1.0, 3.0]])]


@pytest.mark.parametrize("k", range(3))
@pytest.mark.parametrize("op", ["prod_all", "prod_dim", "cumprod"])
def test_products_at_zeros_match_torch_to_second_order(op, k):
    torch = pytest.importorskip("torch")
    a = _zeros_cases()[k]
    f = {"prod_all": lambda m, x: m.prod(x), "prod_dim": lambda m, x: x.prod(-1),
         "cumprod": lambda m, x: m.cumprod(x, -1)}[op]
    rng = np.random.default_rng(k)
    results = []
    for m in (jitgrad, torch):
        x = m.tensor(a, requires_grad=True)
        y = f(m, x)
        v = m.tensor(rng.standard_normal(y.shape))
        (g,) = m.autograd.grad((y * v).sum(), x, create_graph=True)
        u = m.tensor(np.linspace(-1, 2, a.size).reshape(a.shape))
        (h,) = m.autograd.grad((g * u).sum(), x)
        results.append((y.detach().cpu().numpy(), g.detach().cpu().numpy(), h.detach().cpu().numpy()))
        rng = np.random.default_rng(k)
    for got, want in zip(*results):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_amax_and_inf_norm_share_the_gradient_among_ties():
    x = J.tensor([[1.0, 3.0, 3.0, -3.0], [2.0, 2.0, 2.0, 0.0]], requires_grad=True)
    x.amax(1).sum().backward()
    np.testing.assert_allclose(x.grad.cpu().numpy(), [[0, 0.5, 0.5, 0], [1 / 3, 1 / 3, 1 / 3, 0]])
    x.grad = None
    x.norm(float("inf"), 1).sum().backward()  # |x| ties: the sign comes back
    np.testing.assert_allclose(x.grad.cpu().numpy(), [[0, 1 / 3, 1 / 3, -1 / 3],
                                                [1 / 3, 1 / 3, 1 / 3, 0]])
    x.grad = None
    x.amin().backward()
    np.testing.assert_allclose(x.grad.cpu().numpy(), [[0, 0, 0, 1], [0, 0, 0, 0]])


def test_norm_gradient_at_zero_is_zero():
    x = J.zeros(2, 3, requires_grad=True)
    for p in (2, 3, 1.5):
        x.grad = None
        x.norm(p, 1).sum().backward()
        np.testing.assert_array_equal(x.grad.cpu().numpy(), 0.0)
    x.grad = None
    x.norm(0).backward()
    assert x.grad is None  # as torch: the 0-"norm" has no gradient


def test_functional_softmax_implicit_dim_warns_and_picks_torchs_dim():
    x = J.randn(2, 3, 4)
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmax"):
        y = jitgrad.nn.functional.softmax(x)
    np.testing.assert_allclose(y.cpu().numpy(), x.softmax(0).cpu().numpy())
    with pytest.warns(UserWarning, match="Implicit dimension choice for log_softmax"):
        y = jitgrad.nn.functional.log_softmax(x[0])
    np.testing.assert_allclose(y.cpu().numpy(), x[0].log_softmax(1).cpu().numpy())


def test_softmax_dtype_argument_keeps_the_input_dtype_for_the_gradient():
    x = J.randn(3, 4, requires_grad=True)
    y = jitgrad.softmax(x, 1, dtype=jitgrad.float64)
    assert y.dtype == jitgrad.float64 and y.grad_fn.name() == "SoftmaxBackward0"
    (y[:, 0]).sum().backward()
    assert x.grad.dtype == jitgrad.float32


def test_graph_of_second_order_softmax_uses_torchs_names():
    x = J.randn(3, 4, requires_grad=True)
    for f, name in ((jitgrad.softmax, "SoftmaxBackwardDataBackward0"),
                    (jitgrad.log_softmax, "LogSoftmaxBackwardDataBackward0")):
        y = f(x, 1)
        (g,) = jitgrad.autograd.grad(y.sum(), x, create_graph=True)
        assert g.grad_fn.name() == name


# --------------------------------------------------------------------------- kernel layouts

@pytest.fixture(params=["serial", "parallel"])
def threshold(request, monkeypatch):
    if request.param == "parallel":
        monkeypatch.setattr(smk, "PARALLEL_MIN", 1)
    return request.param


@pytest.mark.parametrize("shape,dim", [((5, 37), 1), ((37, 5), 0), ((2, 3, 300), 1),
                                       ((2, 300, 3), 1), ((1, 16), 1), ((7,), 0)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@ON_CPU_ONLY
def test_softmax_kernel_layouts(threshold, rng, shape, dim, dtype):
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    tol = dict(rtol=2e-6, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
    xd = x.astype(np.float64)
    for log in (False, True):
        y = smk.softmax(x, dim, log)
        want = _np_softmax(xd, dim, log)
        np.testing.assert_allclose(y, want, **tol)
        gd = g.astype(np.float64)
        yd = y.astype(np.float64)
        want_b = (gd - np.exp(yd) * gd.sum(dim, keepdims=True)) if log else \
            yd * (gd - (gd * yd).sum(dim, keepdims=True))
        np.testing.assert_allclose(smk.softmax_backward(g, y, dim, log), want_b,
                                   **(tol if dtype == np.float64 else dict(rtol=1e-5,
                                                                           atol=1e-5)))


@pytest.mark.parametrize("shape,dims", [((4, 5), (1,)), ((4, 5), (0,)), ((2, 3, 4), (0, 2)),
                                        ((3, 0, 2), (1,))])
@ON_CPU_ONLY
def test_reduce_and_scan_kernels(rng, shape, dims):
    x = rng.standard_normal(shape)
    x3, kept = rd.as_3d(x, dims)
    ax = tuple(dims)
    np.testing.assert_allclose(rd.prod(x3, x.dtype).reshape(kept), x.prod(ax))
    np.testing.assert_allclose(rd.vector_norm(x3, 3.0).reshape(kept),
                               (np.abs(x) ** 3).sum(ax) ** (1 / 3))
    np.testing.assert_array_equal(rd.any_all(x3 > 0, False, np.bool_).reshape(kept),
                                  (x > 0).any(ax))
    np.testing.assert_allclose(rd.from_3d(x3, x.shape, dims), x)
    d = dims[0]
    np.testing.assert_allclose(sc.cumsum(x, d, x.dtype, reverse=True),
                               np.flip(np.cumsum(np.flip(x, d), d), d))
    np.testing.assert_allclose(sc.cumprod(x, d, x.dtype, reverse=True),
                               np.flip(np.cumprod(np.flip(x, d), d), d))
    a, b = rng.standard_normal(shape), rng.standard_normal(shape)
    want = np.zeros(shape)
    prev = np.zeros(shape[:d] + shape[d + 1:])
    for k in range(shape[d]):
        prev = np.take(a, k, d) * prev + np.take(b, k, d)
        idx = (slice(None),) * d + (k,)
        want[idx] = prev
    np.testing.assert_allclose(sc.linrec(a, b, d), want)


def test_amax_and_inf_norm_propagate_nan_in_both_layouts():
    torch = pytest.importorskip("torch")
    a = np.array([[1.0, np.nan, 3.0] + [0.5] * 20, [2.0] * 23, [np.nan] * 23])
    for arr in (a, np.ascontiguousarray(a.T)):
        dim = 1 if arr is a else 0
        for name in ("amax", "amin"):
            got = getattr(J.tensor(arr), name)(dim).cpu().numpy()
            want = getattr(torch.tensor(arr), name)(dim).cpu().numpy()
            np.testing.assert_array_equal(got, want)
        for p in (float("inf"), -float("inf")):
            got = J.tensor(arr).norm(p, dim).cpu().numpy()
            np.testing.assert_array_equal(got, torch.tensor(arr).norm(p, dim).cpu().numpy())


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("dim", [0, 1])
def test_linear_recurrence_is_differentiable_twice(rng, dim, reverse):
    # The closed set that the second derivatives of prod and cumprod bottom out in.
    from jitgrad import _reductions as R
    from jitgrad.autograd import check_vjp, gradgradcheck

    a = J.tensor(rng.uniform(-1.5, 1.5, (3, 4)), requires_grad=True)
    b = J.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    f = lambda a, b: R.linrec(R.shift(a, dim, 1, 0.5), b, dim, reverse)  # noqa: E731
    check_vjp(f, [a, b], rng=rng)
    gradgradcheck(f, [a, b])


@ON_CPU_ONLY
def test_softmax_kernels_are_found_in_the_disk_cache_by_a_new_process(tmp_path):
    import os
    import subprocess
    import sys

    code = (
        "import numpy as np\n"
        "from jitgrad.kernels import softmax as sm\n"
        "x = np.ones((3, 4), np.float32)\n"
        "sm.softmax(x, 1, True)\n"
        "k = sm._k(x.dtype)['rows']\n"
        "print(sum(k.stats.cache_hits.values()), sum(k.stats.cache_misses.values()))\n"
    )
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    runs = [subprocess.run([sys.executable, "-c", code], env=env, check=True,
                           capture_output=True, text=True).stdout.split() for _ in range(2)]
    assert runs == [["0", "1"], ["1", "0"]]  # compiled and saved, then loaded
