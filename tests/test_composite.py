"""The composite functions, sorting and in-place random fills beyond their op-table rows: the
Tensor.new_* factories, equal and allclose (Python bools), torch's errors for bad input,
addmm with beta 0, sorting large blocks with ties and NaNs, top-k gradients, and uniform_ /
normal_ drawing torch's values under torch's in-place rules."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import DEVICE
from on_device import J, error_table_tests

import jitgrad


def _t(m, data, dtype):
    return m.tensor(data, dtype=getattr(m, dtype))


ERRORS = [
    ("isclose_dtypes", lambda m: m.isclose(_t(m, [1.0], "float32"), _t(m, [1], "int64")),
     RuntimeError, "Float did not match Long"),
    ("isclose_rtol", lambda m: m.isclose(m.ones(2), m.ones(2), rtol=-1), RuntimeError,
     "rtol must be greater than or equal to zero, but got -1"),
    ("isclose_atol", lambda m: m.isclose(m.ones(2), m.ones(2), atol=-0.5), RuntimeError,
     "atol must be greater than or equal to zero, but got -0.5"),
    ("isnan_number", lambda m: m.isnan(1.0), TypeError,
     "isnan(): argument 'input' (position 1) must be Tensor, not float"),
    ("outer_2d", lambda m: m.outer(m.ones(2, 2), m.ones(2)), RuntimeError,
     "outer: Expected 1-D argument self, but got 2-D"),
    ("addmm_vector", lambda m: m.addmm(m.ones(2), m.ones(2), m.ones(2, 2)), RuntimeError,
     "mat1 must be a matrix, got 1-D tensor"),
    ("movedim_counts", lambda m: m.movedim(m.ones(2, 3), (0, 1), (0,)), RuntimeError,
     "movedim: Invalid source or destination dims: source ([0, 1] dims) should contain the "
     "same number of dims as destination ([0] dims)"),
    ("movedim_repeat", lambda m: m.movedim(m.ones(2, 3), (0, 0), (0, 1)), RuntimeError,
     "movedim: repeated dim in `source` ([0, 0])"),
    ("movedim_range", lambda m: m.movedim(m.ones(2, 3), 2, 0), IndexError,
     "Dimension out of range (expected to be in range of [-2, 1], but got 2)"),
    ("topk_k", lambda m: m.topk(m.ones(2, 3), 4), RuntimeError, "selected index k out of range"),
    ("topk_negative_k", lambda m: m.ones(3).topk(-1), RuntimeError,
     "selected index k out of range"),
    ("sort_dim", lambda m: m.sort(m.ones(2, 3), 2), IndexError,
     "Dimension out of range (expected to be in range of [-2, 1], but got 2)"),
    ("diff_0d", lambda m: m.diff(m.tensor(1.0)), RuntimeError,
     "diff expects input to be at least one-dimensional"),
    ("diff_order", lambda m: m.diff(m.ones(3), n=-1), RuntimeError,
     "order must be non-negative but got -1"),
    ("trace_vector", lambda m: m.trace(m.ones(3)), RuntimeError,
     "trace: expected a matrix, but got tensor with dim 1"),
    ("fliplr_1d", lambda m: m.fliplr(m.ones(3)), RuntimeError, "Input must be >= 2-d."),
    ("flipud_0d", lambda m: m.flipud(m.tensor(1.0)), RuntimeError, "Input must be >= 1-d."),
    ("meshgrid_indexing", lambda m: m.meshgrid(m.ones(2), indexing="ab"), RuntimeError,
     "torch.meshgrid: indexing must be one of \"xy\" or \"ij\", but received: ab"),
    ("meshgrid_2d", lambda m: m.meshgrid(m.ones(2, 2), indexing="ij"), RuntimeError,
     "torch.meshgrid: Expected 0D or 1D tensor in the tensor list but got"),
    ("masked_select_mask", lambda m: m.masked_select(m.ones(2), m.ones(2)), RuntimeError,
     "masked_select: expected BoolTensor for mask"),
    ("diag_3d", lambda m: m.diag(m.ones(2, 2, 2)), RuntimeError,
     "diag(): Supports 1D or 2D tensors. Got 3D"),
    ("select_index", lambda m: m.ones(2, 3).select(1, 3), IndexError,
     "select(): index 3 out of range for tensor of size [2, 3] at dimension 1"),
    ("select_dim", lambda m: m.ones(2, 3).select(2, 0), IndexError,
     "Dimension out of range (expected to be in range of [-2, 1], but got 2)"),
]


test_errors, test_errors_as_torch = error_table_tests(ERRORS)


def test_new_factories_take_dtype_and_device_from_the_tensor(rng) -> None:
    x = J.tensor(rng.standard_normal(3), dtype=jitgrad.float64, requires_grad=True)
    for y, want in ((x.new_zeros(2, 3), np.zeros((2, 3))), (x.new_ones((2,)), np.ones(2)),
                    (x.new_full((2, 2), 7), np.full((2, 2), 7.0)),
                    (x.new_tensor([1, 2]), np.array([1.0, 2.0]))):
        assert y.dtype == jitgrad.float64 and y.device == x.device
        assert y.is_leaf and not y.requires_grad and y.grad_fn is None
        np.testing.assert_array_equal(y.cpu().numpy(), want)
    assert x.new_empty(4, 5).shape == (4, 5) and x.new_empty(0).dtype == jitgrad.float64
    y = x.new_zeros(2, dtype=jitgrad.int64, requires_grad=False)
    assert y.dtype == jitgrad.int64
    z = x.new_tensor(x, requires_grad=True)  # a copy, cut from x's graph
    assert z.is_leaf and z.requires_grad and z is not x
    np.testing.assert_array_equal(z.detach().cpu().numpy(), x.detach().cpu().numpy())
    w = x.new_ones(3, dtype=jitgrad.float32, device="cpu")
    assert w.device == jitgrad.device("cpu") and w.dtype == jitgrad.float32


def test_equal_and_allclose_are_python_bools(rng) -> None:
    a = rng.standard_normal((2, 3))
    x = J.tensor(a)
    assert J.equal(x, J.tensor(a.copy())) is True
    assert J.equal(x, J.tensor(a[:, :2])) is False  # shapes differ: not equal, no error
    b = a.copy()
    b[1, 2] += 1e-3
    assert J.equal(x, J.tensor(b)) is False
    assert J.allclose(x, J.tensor(b)) is False and J.allclose(x, J.tensor(b), atol=1e-2) is True
    assert x.allclose(J.tensor(a + 1e-9)) is True and x.equal(x) is True
    nan = J.tensor([1.0, float("nan")])
    assert J.allclose(nan, nan) is False and J.allclose(nan, nan, equal_nan=True) is True


def test_addmm_with_beta_zero_ignores_input_values_but_gives_it_a_zero_gradient(rng) -> None:
    c = J.tensor(np.full((2, 4), np.nan), requires_grad=True)
    a = J.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    b = J.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    y = J.addmm(c, a, b, beta=0, alpha=2.0)
    assert y.grad_fn.name() == "AddmmBackward0"
    np.testing.assert_allclose(y.detach().cpu().numpy(),
                               2.0 * a.detach().cpu().numpy() @ b.detach().cpu().numpy())
    y.sum().backward()
    np.testing.assert_array_equal(c.grad.cpu().numpy(), np.zeros((2, 4)))
    np.testing.assert_allclose(a.grad.cpu().numpy(),
                               2.0 * np.ones((2, 4)) @ b.detach().cpu().numpy().T)


def test_float_tests_never_record_a_graph() -> None:
    x = J.tensor([1.0, float("inf"), float("nan")], requires_grad=True)
    for y in (x.isnan(), x.isinf(), x.isfinite(), x.isclose(x)):
        assert y.dtype == jitgrad.bool and not y.requires_grad and y.grad_fn is None


def test_sort_of_large_blocks_matches_numpy_stable_order(rng) -> None:
    # (large enough for the CPU kernel's parallel form; ties in every row; the simulator
    # runs the CUDA kernel's C**2 steps per row in Python, so rows are short there)
    a = rng.integers(0, 50, (40, 2000 if DEVICE == "cpu" else 32)).astype(np.float32)
    a[3, ::7] = np.nan
    v, i = J.sort(J.tensor(a), dim=1, descending=True, stable=True)
    want = a.shape[1] - 1 - np.flip(np.argsort(np.flip(a, 1), axis=1, kind="stable"), 1)
    np.testing.assert_array_equal(i.cpu().numpy(), want)
    np.testing.assert_array_equal(v.cpu().numpy(), np.take_along_axis(a, want, 1))
    i0 = J.argsort(J.tensor(a), dim=0)
    np.testing.assert_array_equal(i0.cpu().numpy(), np.argsort(a, axis=0, kind="stable"))


def test_topk_gradient_reaches_only_the_picked_elements(rng) -> None:
    a = rng.permutation(12).astype(np.float64).reshape(3, 4)
    x = J.tensor(a, requires_grad=True)
    v, i = x.topk(2, dim=1)
    (v * J.tensor([[1.0, 10.0]])).sum().backward()
    want = np.zeros_like(a)
    np.put_along_axis(want, i.cpu().numpy(), np.array([[1.0, 10.0]]), 1)
    np.testing.assert_array_equal(x.grad.cpu().numpy(), want)


def test_uniform_and_normal_in_place_draw_torchs_values(rng) -> None:
    jitgrad.manual_seed(7)
    x = J.empty(5).uniform_(-1, 2)
    y = J.empty(2, 3, dtype=jitgrad.float64).normal_(1, 0.5)
    assert x.device == J.empty(1).device and x.dtype == jitgrad.float32
    xs, ys = x.cpu().numpy(), y.cpu().numpy()
    assert ((xs >= -1) & (xs < 2)).all() and ys.std() > 0
    torch = pytest.importorskip("torch")
    torch.manual_seed(7)
    np.testing.assert_array_equal(xs, torch.empty(5).uniform_(-1, 2).numpy())
    np.testing.assert_array_equal(ys, torch.empty(2, 3, dtype=torch.float64).normal_(1, 0.5)
                                  .numpy())


def test_uniform_and_normal_in_place_follow_torchs_rules() -> None:
    leaf = J.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
        leaf.uniform_()
    with jitgrad.no_grad():
        assert leaf.normal_() is leaf  # (initialisation code does this)
    h = leaf * 2
    assert h.uniform_().grad_fn.name() == "UniformBackward0"
    assert h.normal_().grad_fn.name() == "NormalBackward0"
    (h * 3).sum().backward()
    np.testing.assert_array_equal(leaf.grad.cpu().numpy(), np.zeros(3))  # overwritten: 0
    for fn, text in ((lambda: J.ones(2, dtype=jitgrad.int64).uniform_(),
                      "\"check_uniform_bounds\" not implemented for 'Long'"),
                     (lambda: J.ones(2, dtype=jitgrad.int64).normal_(),
                      "\"normal_kernel_cpu\" not implemented for 'Long'"),
                     (lambda: J.ones(2).uniform_(2, 1),
                      "uniform_ expects to return a [from, to) range, but found from=2 > to=1"),
                     (lambda: J.ones(2).normal_(0, -1),
                      "normal expects std >= 0.0, but found std -1")):
        with pytest.raises(RuntimeError) as info:
            fn()
        assert text in str(info.value)


def test_nonzero_of_0d_and_empty_inputs_has_torchs_shapes() -> None:
    assert tuple(J.nonzero(J.tensor(5)).shape) == (1, 0)
    assert tuple(J.nonzero(J.tensor(0)).shape) == (0, 0)
    (only,) = J.nonzero(J.tensor(5.0), as_tuple=True)
    assert only.cpu().numpy().tolist() == [0]
    assert tuple(J.nonzero(J.zeros(0, 3)).shape) == (0, 2)
    assert J.nonzero(J.ones(2)).dtype == jitgrad.int64


def test_size_attributes() -> None:
    x = J.ones(3, 4, dtype=jitgrad.float64)
    assert x.itemsize == 8 and x.nbytes == 96 and x[:, 1].nbytes == 24
    assert not x.is_complex() and J.ones(2, dtype=jitgrad.int32).itemsize == 4


def test_review_regressions_composite() -> None:
    x = J.ones(2)
    assert tuple(x.new_zeros(size=(2, 3)).shape) == (2, 3)  # size= was swallowed (0-d)
    assert tuple(x.new_empty(size=[4]).shape) == (4,) and tuple(x.new_ones(3, 2).shape) == (3, 2)
    m = J.tensor([1.0, -1.0, 2.0]) > 0
    w = J.where(m, 1, 0)  # two numbers: used to recurse forever
    assert w.dtype == jitgrad.int64 and w.cpu().numpy().tolist() == [1, 0, 1]
    assert J.where(m, 1.0, 0).dtype == jitgrad.float32
    y = J.tensor([0.3, -0.5])
    y.asin_()
    np.testing.assert_allclose(y.cpu().numpy(), np.arcsin([0.3, -0.5]), rtol=1e-6)
    z = J.tensor([float("nan"), float("inf"), 1.0])
    assert z.nan_to_num_() is z and z.cpu().numpy()[0] == 0
    assert tuple(J.swapdims(J.ones(2, 3), 0, 1).shape) == (3, 2)
    assert J.bitwise_xor(J.tensor([True, True]), J.tensor([True, False])).cpu().numpy().tolist() \
        == [False, True]
    with pytest.raises(TypeError, match="must be Tensor"):
        J.broadcast_tensors(J.ones(2), 2.0)
    with pytest.raises(RuntimeError, match="meshgrid expects all tensors to have the same dtype"):
        J.meshgrid(J.ones(2), J.ones(2, dtype=jitgrad.float64), indexing="ij")
