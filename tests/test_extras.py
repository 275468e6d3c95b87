"""The functions of jitgrad/_extras.py (repeat_interleave, median, nansum, unique, splits,
kron, rot90, quantile, cdist, fmax, xlogy, copysign, baddbmm, block_diag, ...): values against
numpy, gradients against float64 central differences, values against torch where it is
installed, and torch's errors."""

from __future__ import annotations

import numpy as np
import pytest
from on_device import J, error_table_tests

from jitgrad.autograd.gradcheck import check_vjp


def _np(x):
    if isinstance(x, (tuple, list)):
        return [_np(v) for v in x]
    return x.detach().cpu().numpy()


def _median(a, axis, ignore_nan):
    """torch's lower median along axis (NaN wins unless ignored) and its index."""
    order = np.argsort(a, axis=axis, kind="stable")
    srt = np.take_along_axis(a, order, axis)
    n = a.shape[axis]
    nans = np.isnan(a).sum(axis=axis, keepdims=True)
    if ignore_nan:
        pos = np.maximum((n - nans - 1) // 2, 0)
    else:
        pos = np.where(nans > 0, n - nans, (n - 1) // 2)
    return (np.take_along_axis(srt, pos, axis).squeeze(axis),
            np.take_along_axis(order, pos, axis).squeeze(axis))


# (name, function of the module, inputs from rng, numpy reference, differentiable)
CASES = [
    ("repeat_interleave", lambda m, x: x.repeat_interleave(3, dim=1),
     lambda r: [r.standard_normal((2, 3))], lambda x: np.repeat(x, 3, axis=1), True),
    ("repeat_interleave_flat", lambda m, x: m.repeat_interleave(x, 2),
     lambda r: [r.standard_normal((2, 2))], lambda x: np.repeat(x.reshape(-1), 2), True),
    ("repeat_interleave_counts", lambda m, x: x.repeat_interleave(m.tensor([2, 0, 1]), dim=0),
     lambda r: [r.standard_normal((3, 2))], lambda x: np.repeat(x, [2, 0, 1], axis=0), True),
    ("median_all", lambda m, x: m.median(x), lambda r: [r.permutation(12).reshape(3, 4) * 1.5],
     lambda x: np.sort(x.reshape(-1))[5], True),
    ("median_dim", lambda m, x: tuple(x.median(1)), lambda r: [r.permutation(15).reshape(3, 5) * 0.5],
     lambda x: _median(x, 1, False), True),
    ("median_keepdim_ties_nan",
     lambda m, x: tuple(m.median(x, 0, keepdim=True)),
     lambda r: [np.array([[1.0, np.nan, 2.0], [3.0, 1.0, 2.0], [3.0, 4.0, np.nan],
                          [0.0, 4.0, 2.0]])],
     lambda x: tuple(v[None] for v in _median(x, 0, False)), False),
    ("nanmedian", lambda m, x: tuple(m.nanmedian(x, 1)),
     lambda r: [np.array([[1.0, np.nan, 5.0, 3.0], [np.nan, np.nan, 7.0, np.nan],
                          [2.0, 8.0, np.nan, 6.0]])],
     lambda x: _median(x, 1, True), False),
    ("nansum", lambda m, x: m.nansum(x, 1), lambda r: [r.standard_normal((3, 4))],
     lambda x: np.nansum(x, 1), True),
    ("nanmean", lambda m, x: x.nanmean(), lambda r: [r.standard_normal((3, 4))],
     lambda x: np.nanmean(x), True),
    ("tensor_split_sections", lambda m, x: m.tensor_split(x, 3, dim=1),
     lambda r: [r.standard_normal((2, 7))], lambda x: np.array_split(x, 3, axis=1), True),
    ("tensor_split_indices", lambda m, x: x.tensor_split([1, 5, 9]),
     lambda r: [r.standard_normal(7)], lambda x: np.split(x, [1, 5, 9]), True),
    ("hsplit_vsplit_dsplit", lambda m, x: (*m.hsplit(x, 2), *x.vsplit([1]), *m.dsplit(x, 2)),
     lambda r: [r.standard_normal((3, 4, 2))],
     lambda x: (*np.hsplit(x, 2), *np.vsplit(x, [1]), *np.dsplit(x, 2)), True),
    ("kron", lambda m, x, y: m.kron(x, y),
     lambda r: [r.standard_normal((2, 3)), r.standard_normal((3, 2, 2))], np.kron, True),
    ("rot90", lambda m, x: (m.rot90(x), x.rot90(2), m.rot90(x, -1, [1, 2])),
     lambda r: [r.standard_normal((2, 3, 4))],
     lambda x: (np.rot90(x), np.rot90(x, 2), np.rot90(x, -1, (1, 2))), True),
    ("std_mean_var_mean", lambda m, x: (*m.std_mean(x, 1), *m.var_mean(x)),
     lambda r: [r.standard_normal((3, 4))],
     lambda x: (x.std(1, ddof=1), x.mean(1), x.var(ddof=1), x.mean()), True),
    ("aminmax", lambda m, x: tuple(x.aminmax(dim=0)),
     lambda r: [r.permutation(12).reshape(3, 4) * 0.5], lambda x: (x.min(0), x.max(0)), True),
    ("deg2rad_rad2deg_frac", lambda m, x: (m.deg2rad(x), x.rad2deg(), m.frac(x)),
     lambda r: [r.uniform(0.1, 0.9, (2, 3)) * r.choice([-3, 3], (2, 3))],
     lambda x: (np.deg2rad(x), np.rad2deg(x), x - np.trunc(x)), True),
    ("fmax_fmin", lambda m, x, y: (m.fmax(x, y), x.fmin(y)),
     lambda r: [r.permutation(6).reshape(2, 3) * 1.0, r.permutation(6).reshape(2, 3) + 0.5],
     lambda x, y: (np.fmax(x, y), np.fmin(x, y)), True),
    ("fmax_nan", lambda m, x, y: m.fmax(x, y),
     lambda r: [np.array([np.nan, 1.0, np.nan, 2.0]), np.array([3.0, np.nan, np.nan, 1.0])],
     np.fmax, False),
    ("float_power", lambda m, x: m.float_power(x, 2.5), lambda r: [r.uniform(0.5, 2.0, 4)],
     lambda x: np.float_power(x, 2.5), True),
    ("hypot", lambda m, x, y: m.hypot(x, y),
     lambda r: [r.standard_normal(5), r.standard_normal(5)], np.hypot, True),
    ("xlogy", lambda m, x, y: m.xlogy(x, y),
     lambda r: [np.array([0.0, 1.5, -2.0, 0.0]), np.array([2.0, 0.5, 3.0, np.nan])],
     lambda x, y: np.where((x == 0) & ~np.isnan(y), 0.0, x * np.log(y)), False),
    ("xlogy_grad", lambda m, x, y: x.xlogy(y),
     lambda r: [r.standard_normal(4), r.uniform(0.5, 2.0, 4)], lambda x, y: x * np.log(y),
     True),
    ("copysign_zeros", lambda m, x, y: m.copysign(x, y),
     lambda r: [r.standard_normal(6), np.array([-0.0, 0.0, -1.5, 2.0, -3.0, 1.0])],
     np.copysign, False),
    ("copysign", lambda m, x, y: x.copysign(y),
     lambda r: [r.standard_normal(6), r.uniform(0.5, 2.0, 6) * r.choice([-1, 1], 6)],
     np.copysign, True),
    ("signbit_heaviside", lambda m, x: (m.signbit(x), m.heaviside(x, m.tensor([0.5],
                                                                              dtype=m.float64))),
     lambda r: [np.array([-0.0, 0.0, -1.5, 2.0])],
     lambda x: (np.signbit(x), np.heaviside(x, 0.5)), False),
    ("inner_vdot", lambda m, x, y: (m.inner(x, y), m.vdot(x[0], y[1])),
     lambda r: [r.standard_normal((2, 3)), r.standard_normal((4, 3))],
     lambda x, y: (np.inner(x, y), np.vdot(x[0], y[1])), True),
    ("cdist", lambda m, x, y: (m.cdist(x, y), m.cdist(x, y, p=1.0)),
     lambda r: [r.standard_normal((2, 3, 4)), r.standard_normal((2, 5, 4))],
     lambda x, y: (np.sqrt(((x[:, :, None] - y[:, None]) ** 2).sum(-1)),
                   np.abs(x[:, :, None] - y[:, None]).sum(-1)), True),
    ("dist", lambda m, x, y: m.dist(x, y, 3), lambda r: [r.standard_normal(5),
                                                          r.standard_normal(5)],
     lambda x, y: (np.abs(x - y) ** 3).sum() ** (1 / 3), True),
    ("baddbmm_addmv_addr", lambda m, c, a, b: (m.baddbmm(c, a, b, beta=0.5, alpha=2.0),
                                               m.addmv(c[0, :, 0], a[0], b[0, :, 1]),
                                               m.addr(c[0], a[0, :, 0], b[0, 0], alpha=-1.0)),
     lambda r: [r.standard_normal((2, 3, 5)), r.standard_normal((2, 3, 4)),
                r.standard_normal((2, 4, 5))],
     lambda c, a, b: (0.5 * c + 2.0 * a @ b, c[0, :, 0] + a[0] @ b[0, :, 1],
                      c[0] - np.outer(a[0, :, 0], b[0, 0])), True),
    ("stacks", lambda m, x, y: (m.column_stack([x[:, 0], y]), m.dstack([x, y])),
     lambda r: [r.standard_normal((3, 2)), r.standard_normal((3, 2))],
     lambda x, y: (np.column_stack([x[:, 0], y]), np.dstack([x, y])), True),
    ("cartesian_prod", lambda m, x, y: m.cartesian_prod(x, y),
     lambda r: [r.standard_normal(2), r.standard_normal(3)],
     lambda x, y: np.stack([g.reshape(-1) for g in np.meshgrid(x, y, indexing="ij")], 1), True),
    ("block_diag", lambda m, x, y, z: m.block_diag(x, y, z),
     lambda r: [r.standard_normal((2, 3)), r.standard_normal(2), r.standard_normal(())],
     lambda x, y, z: _block_diag(x, y.reshape(1, -1), z.reshape(1, 1)), True),
    ("quantile", lambda m, x: (m.quantile(x, 0.3, dim=1),
                               x.quantile(m.tensor([0.1, 0.5, 0.9], dtype=m.float64), dim=0,
                                          keepdim=True),
                               m.quantile(x, 0.75, interpolation="midpoint")),
     lambda r: [r.permutation(12).reshape(3, 4) * 0.5],
     lambda x: (np.quantile(x, 0.3, axis=1), np.quantile(x, [0.1, 0.5, 0.9], axis=0,
                                                         keepdims=True),
                np.quantile(x, 0.75, method="midpoint")), True),
    ("quantile_nan", lambda m, x: m.quantile(x, 0.5, dim=1),
     lambda r: [np.array([[1.0, np.nan, 3.0], [4.0, 5.0, 6.0]])],
     lambda x: np.array([np.nan, 5.0]), False),
]


def _block_diag(*ms):
    out = np.zeros((sum(m.shape[0] for m in ms), sum(m.shape[1] for m in ms)))
    r = c = 0
    for m in ms:
        out[r:r + m.shape[0], c:c + m.shape[1]] = m
        r, c = r + m.shape[0], c + m.shape[1]
    return out


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_against_numpy_central_differences_and_torch(case, rng) -> None:
    _, fn, draw, ref, grad = case
    arrays = draw(rng)
    xs = [J.tensor(a, requires_grad=grad) for a in arrays]
    got, want = _np(fn(J, *xs)), ref(*arrays)
    if not isinstance(want, (tuple, list)):
        got, want = [got], [want]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)
    if grad:
        check_vjp(lambda *t: _float_outputs(fn(J, *t)),
                  [J.tensor(a, requires_grad=True) for a in arrays], rng=rng)
    torch = pytest.importorskip("torch")
    ts = [torch.tensor(a, requires_grad=grad) for a in arrays]
    tout = fn(torch, *ts)
    tgot = _np(list(tout) if isinstance(tout, tuple) else [tout])
    for g, w in zip(got, tgot):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)


def _float_outputs(out):
    """The differentiable outputs (median's indices are not)."""
    if isinstance(out, tuple):
        floats = tuple(o for o in out if o.is_floating_point())
        return floats if len(floats) > 1 else floats[0]
    return out


def test_counts_alone_repeat_their_indices() -> None:
    assert J.repeat_interleave(J.tensor([2, 0, 1])).cpu().numpy().tolist() == [0, 0, 2]


def test_unique(rng) -> None:
    a = rng.integers(0, 5, (3, 4))
    vals, inv, counts = J.unique(J.tensor(a), return_inverse=True, return_counts=True)
    v, i, c = np.unique(a, return_inverse=True, return_counts=True)
    assert vals.cpu().numpy().tolist() == v.tolist()
    np.testing.assert_array_equal(inv.cpu().numpy(), i.reshape(a.shape))
    assert counts.cpu().numpy().tolist() == c.tolist() and inv.dtype == J.int64
    rows = J.unique(J.tensor(np.array([[1, 2], [0, 5], [1, 2]])), dim=0)
    assert rows.cpu().numpy().tolist() == [[0, 5], [1, 2]]
    assert J.tensor([3.0, 1.0, 3.0]).unique().cpu().numpy().tolist() == [1.0, 3.0]


def test_nan_aware_gradients_skip_the_nans() -> None:
    x = J.tensor([[1.0, float("nan"), 3.0], [float("nan"), 2.0, 4.0]], requires_grad=True)
    J.nansum(x).backward()
    np.testing.assert_array_equal(x.grad.cpu().numpy(), [[1, 0, 1], [0, 1, 1]])
    x.grad = None
    J.nanmean(x, dim=1).sum().backward()
    np.testing.assert_allclose(x.grad.cpu().numpy(), [[0.5, 0, 0.5], [0, 0.5, 0.5]])


def test_median_of_nothing_is_nan_and_logspace() -> None:
    assert np.isnan(J.median(J.ones(0)).item())
    assert np.isnan(J.nanmedian(J.tensor([float("nan")] * 3)).item())
    np.testing.assert_allclose(J.logspace(0, 2, 3).cpu().numpy(), [1, 10, 100], rtol=1e-6)
    np.testing.assert_allclose(J.logspace(-1, 3, 5, base=2, dtype=J.float64).cpu().numpy(),
                               np.logspace(-1, 3, 5, base=2))


ERRORS = [
    ("median_empty_dim", lambda m: m.median(m.ones(2, 0), dim=1), IndexError,
     "median(): Expected reduction dim 1 to have non-zero size."),
    ("repeats_size", lambda m: m.repeat_interleave(m.ones(3), m.tensor([1, 2])), RuntimeError,
     "repeats must have the same size as input along dim, but got repeats.size(0) = 2 and "
     "input.size(0) = 3"),
    ("repeats_negative", lambda m: m.repeat_interleave(m.ones(3), -1), RuntimeError,
     "Repeats must be non-negative"),
    ("sections", lambda m: m.tensor_split(m.ones(3), 0), RuntimeError,
     "number of sections must be larger than 0, got 0"),
    ("hsplit", lambda m: m.hsplit(m.ones(2, 4), 3), RuntimeError,
     "torch.hsplit attempted to split along dimension 1, but the size of the dimension 4 is "
     "not divisible by the split_size 3!"),
    ("vsplit", lambda m: m.vsplit(m.ones(4), 2), RuntimeError,
     "torch.vsplit requires a tensor with at least 2 dimension, but got a tensor with 1 "
     "dimensions!"),
    ("rot90_dims", lambda m: m.rot90(m.ones(3)), RuntimeError,
     "expected total dims >= 2, but got total dims = 1"),
    ("rot90_same", lambda m: m.rot90(m.ones(2, 2), 1, [0, 0]), RuntimeError,
     "expected rotation dims to be different, but got dim0 = 0 and dim1 = 0"),
    ("nanmean_long", lambda m: m.nanmean(m.ones(2, dtype=m.int64)), RuntimeError,
     "nanmean(): expected input to have floating point or complex dtype but got Long"),
    ("quantile_q", lambda m: m.quantile(m.ones(3), 1.5), RuntimeError,
     "quantile() q must be in the range [0, 1] but got 1.5"),
    ("quantile_empty", lambda m: m.quantile(m.ones(0), 0.5), RuntimeError,
     "quantile() input tensor must be non-empty"),
    ("quantile_interpolation", lambda m: m.quantile(m.ones(3), 0.5, interpolation="x"),
     RuntimeError, "quantile() interpolation must be one of linear, lower, higher, midpoint "
     "or nearest, but got x"),
    ("heaviside_dtypes", lambda m: m.heaviside(m.ones(2), m.ones(1, dtype=m.float64)),
     RuntimeError, "heaviside is not yet implemented for tensors with different dtypes."),
    ("frac_long", lambda m: m.frac(m.ones(2, dtype=m.int64)), NotImplementedError,
     "\"frac_cpu\" not implemented for 'Long'"),
    ("cdist_columns", lambda m: m.cdist(m.ones(2, 3), m.ones(2, 4)), RuntimeError,
     "X1 and X2 must have the same number of columns. X1: 3 X2: 4"),
]


test_errors, test_errors_as_torch = error_table_tests(ERRORS)


def test_review_regressions_extras() -> None:
    m = J.ones(2, 3)
    assert tuple(J.std_mean(m, keepdim=True)[1].shape) == (1, 1)
    assert tuple(J.var_mean(m, keepdim=True)[0].shape) == (1, 1)
    assert tuple(J.quantile(m, 0.5, keepdim=True).shape) == (1, 1)
    assert J.nanmean(J.ones(3), dtype=J.float64).dtype == J.float64
    assert type(J.nanmedian(J.ones(2, 2), 1)).__name__ == "nanmedian"
    assert tuple(J.block_diag().shape) == (1, 0)
    # median's gradient is shared by the elements equal to it
    x = J.tensor([1.0, 2.0, 2.0, 2.0, 5.0], requires_grad=True)
    J.median(x).backward()
    np.testing.assert_allclose(x.grad.cpu().numpy(), [0, 1 / 3, 1 / 3, 1 / 3, 0])
    # fmax/fmin: a tie's gradient goes to input, a NaN's to the other operand
    a = J.tensor([1.0, 2.0, float("nan")], requires_grad=True)
    b = J.tensor([1.0, float("nan"), 3.0], requires_grad=True)
    J.fmax(a, b).sum().backward()
    assert a.grad.cpu().numpy().tolist() == [1, 1, 0] and b.grad.cpu().numpy().tolist() == [0, 0, 1]
    # xlogy: NaN from a number `other`; no NaN gradient where input is 0
    assert np.isnan(J.xlogy(J.tensor([0.0]), float("nan")).item())
    u = J.tensor([0.0, 2.0], requires_grad=True)
    J.xlogy(u, J.tensor([0.0, 3.0])).sum().backward()
    np.testing.assert_allclose(u.grad.cpu().numpy(), [0.0, np.log(3.0)], rtol=1e-6)
    for fn, text in ((lambda: J.addmv(J.ones(3), J.ones(3, 4), J.ones(4, 1)),
                      "vector + matrix @ vector expected, got 1, 2, 2"),
                     (lambda: J.cdist(J.ones(2, 3), J.ones(2, 3), p=-1),
                      "cdist only supports non-negative p values"),
                     (lambda: J.cartesian_prod(J.ones(2, 2), J.ones(2)),
                      "Expect a 1D vector, but got shape [2, 2]"),
                     (lambda: J.inner(J.ones(2, 3), J.ones(1)),
                      "inner() the last dimension must match on both input tensors but got "
                      "shapes [2, 3] and [1]"),
                     (lambda: J.tensor_split(J.ones(3), J.tensor([[1]])),
                      "tensor_split expected tensor_indices_or_sections to be a "
                      "zero-dimensional or one-dimensional tensor")):
        with pytest.raises(RuntimeError) as info:
            fn()
        assert text in str(info.value)
    with pytest.raises(TypeError, match="heaviside\\(\\): argument 'values'"):
        J.heaviside(J.ones(2), 0.5)
