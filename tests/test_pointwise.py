"""The pointwise family beyond its op-table rows: torch's errors for bad input (which change
nothing), the parameterised launchers of kernels/pointwise.py on every layout, and behaviour
the rows cannot express (in-place activations, non-contiguous inputs, remainder's missing
derivative)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import DEVICE
from jitgrad.kernels import elementwise as ew
from jitgrad.kernels import pointwise as pw
from on_device import J, error_table_tests

import jitgrad
import jitgrad.nn.functional as F

ON_CPU_ONLY = pytest.mark.skipif(DEVICE != "cpu", reason="CPU kernel internals (numpy arrays)")


F32, F64, I32, I64, BOOL = (jitgrad.float32, jitgrad.float64, jitgrad.int32, jitgrad.int64,
                            jitgrad.bool)


def _t(m, values, dtype_name: str, requires_grad: bool = False):
    return m.tensor(values, dtype=getattr(m, dtype_name), requires_grad=requires_grad)


# Each case: fn(m) builds its operands with module m (jitgrad or torch) and calls the op.
ERRORS = [
    ("softplus_long", lambda m: m.nn.functional.softplus(_t(m, [1, 2], "int64")),
     NotImplementedError, "\"softplus_cpu\" not implemented for 'Long'"),
    ("elu_int", lambda m: m.nn.functional.elu(_t(m, [1, 2], "int32")),
     NotImplementedError, "\"elu_cpu\" not implemented for 'Int'"),
    ("leaky_relu_bool", lambda m: m.nn.functional.leaky_relu(_t(m, [True], "bool")),
     NotImplementedError, "\"leaky_relu_cpu\" not implemented for 'Bool'"),
    ("gelu_long", lambda m: m.nn.functional.gelu(_t(m, [1], "int64")),
     NotImplementedError, "\"GeluKernelImpl\" not implemented for 'Long'"),
    ("gelu_approximate", lambda m: m.nn.functional.gelu(_t(m, [1.0], "float32"), approximate="x"),
     RuntimeError, "approximate argument must be either none or tanh."),
    ("silu_long", lambda m: m.nn.functional.silu(_t(m, [1], "int64")),
     NotImplementedError, "\"silu_cpu\" not implemented for 'Long'"),
    ("mish_long", lambda m: m.nn.functional.mish(_t(m, [1], "int64")),
     NotImplementedError, "\"mish_cpu\" not implemented for 'Long'"),
    ("hardtanh_bool", lambda m: m.nn.functional.hardtanh(_t(m, [True], "bool")),
     RuntimeError, "Bool inputs not supported for hardtanh"),
    ("hardtanh_bounds", lambda m: m.nn.functional.hardtanh(_t(m, [1.0], "float32"), 1.0, -1.0),
     ValueError, "min_val cannot be greater than max_val"),
    ("fmod_by_zero", lambda m: _t(m, [3, 4], "int64").fmod(0), RuntimeError, "ZeroDivisionError"),
    ("remainder_by_zero", lambda m: _t(m, [3, 4], "int32").remainder(_t(m, [1, 0], "int32")),
     RuntimeError, "ZeroDivisionError"),
    ("remainder_scalar_by_zero", lambda m: m.remainder(2, _t(m, [0, 1], "int64")),
     RuntimeError, "ZeroDivisionError"),
    ("fmod_bool", lambda m: _t(m, [True], "bool").fmod(_t(m, [True], "bool")),
     NotImplementedError, "\"fmod_cpu\" not implemented for 'Bool'"),
    ("remainder_bool", lambda m: _t(m, [True], "bool").remainder(_t(m, [True], "bool")),
     NotImplementedError, "\"remainder_cpu\" not implemented for 'Bool'"),
    ("floor_bool", lambda m: m.floor(_t(m, [True], "bool")),
     NotImplementedError, "\"floor_vml_cpu\" not implemented for 'Bool'"),
    ("round_decimals_long", lambda m: _t(m, [1], "int64").round(decimals=1),
     NotImplementedError, "\"round_cpu\" not implemented for 'Long'"),
    ("round_decimals_zero_long", lambda m: m.round(_t(m, [1], "int64"), decimals=0),
     NotImplementedError, "\"round_vml_cpu\" not implemented for 'Long'"),
    ("lerp_end_dtype", lambda m: _t(m, [1.0], "float32").lerp(_t(m, [1.0], "float64"), 0.5),
     RuntimeError, "expected dtype float for `end` but got dtype double"),
    ("lerp_weight_dtype", lambda m: m.lerp(_t(m, [1.0], "float32"), _t(m, [1.0], "float32"),
                                           _t(m, [1], "int64")),
     RuntimeError, "expected dtype float for `weight` but got dtype long int"),
    ("lerp_long", lambda m: _t(m, [1], "int64").lerp(_t(m, [2], "int64"), 0.5),
     NotImplementedError, "\"lerp_kernel_scalar\" not implemented for 'Long'"),
    ("lerp_long_tensor", lambda m: _t(m, [1], "int64").lerp(_t(m, [2], "int64"),
                                                            _t(m, [1], "int64")),
     NotImplementedError, "\"lerp_kernel_tensor\" not implemented for 'Long'"),
    ("lerp_shapes", lambda m: m.lerp(m.ones(2, 3), m.ones(4), 0.5), RuntimeError,
     "The size of tensor a (3) must match the size of tensor b (4) at non-singleton "
     "dimension 1"),
    ("addcdiv_integers", lambda m: _t(m, [1.0], "float32").addcdiv(_t(m, [1], "int64"),
                                                                   _t(m, [2], "int64")),
     RuntimeError, "Integer division with addcdiv is no longer supported"),
    ("addcmul_bool", lambda m: m.addcmul(*(_t(m, [True], "bool") for _ in range(3))),
     NotImplementedError, "\"addcmul_cpu_out\" not implemented for 'Bool'"),
    ("addcmul_shapes", lambda m: m.ones(3).addcmul(m.ones(2), m.ones(3)), RuntimeError,
     "The size of tensor a (3) must match the size of tensor b (2) at non-singleton "
     "dimension 0"),
    ("logaddexp_long", lambda m: _t(m, [1], "int64").logaddexp(_t(m, [1], "int64")),
     NotImplementedError, "\"logaddexp_cpu\" not implemented for 'Long'"),
    ("atan2_number", lambda m: m.atan2(_t(m, [1.0], "float32"), 2.0), TypeError,
     "atan2(): argument 'other' (position 2) must be Tensor, not float"),
    ("atan2_shapes", lambda m: m.ones(3).atan2(m.ones(2)), RuntimeError,
     "The size of tensor a (3) must match the size of tensor b (2) at non-singleton "
     "dimension 0"),
    ("sin_number", lambda m: m.sin(2.0), TypeError,
     "sin(): argument 'input' (position 1) must be Tensor, not float"),
    ("pow_bool", lambda m: _t(m, [True], "bool") ** _t(m, [True], "bool"),
     NotImplementedError, "\"pow\" not implemented for 'Bool'"),
    ("pow_bool_scalar_base", lambda m: True ** _t(m, [True], "bool"),
     NotImplementedError, "\"pow\" not implemented for 'Bool'"),
    ("pow_int_negative", lambda m: _t(m, [2], "int64") ** -1, RuntimeError,
     "Integers to negative integer powers are not allowed."),
    ("div_floor_by_zero", lambda m: m.div(_t(m, [3, 4], "int64"), _t(m, [1, 0], "int64"),
                                          rounding_mode="floor"),
     RuntimeError, "ZeroDivisionError"),
    ("floordiv_by_zero", lambda m: _t(m, [3, 4], "int32") // 0, RuntimeError,
     "ZeroDivisionError"),
    ("div_trunc_bool", lambda m: m.div(_t(m, [True], "bool"), _t(m, [True], "bool"),
                                       rounding_mode="trunc"),
     NotImplementedError, "\"div_trunc_cpu\" not implemented for 'Bool'"),
    ("floordiv_bool", lambda m: _t(m, [True], "bool") // _t(m, [True], "bool"),
     NotImplementedError, "\"div_floor_cpu\" not implemented for 'Bool'"),
    ("mod_bool", lambda m: _t(m, [True], "bool") % _t(m, [True], "bool"),
     NotImplementedError, "\"remainder_cpu\" not implemented for 'Bool'"),
    ("div_rounding_mode", lambda m: _t(m, [1.0], "float32").div(2, rounding_mode="round"),
     RuntimeError, "div expected rounding_mode to be one of None, 'trunc', or 'floor' but "
     "found 'round'"),
    ("positive_bool", lambda m: +_t(m, [True], "bool"), RuntimeError,
     "The `+` operator, on a bool tensor is not supported."),
]


test_errors, test_errors_as_torch = error_table_tests(ERRORS)


def test_a_failed_op_changes_nothing() -> None:
    x = J.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x * 3).sum().backward()
    end = J.tensor([1.0, 2.0], requires_grad=True)
    before = x.detach().cpu().numpy().copy(), x.grad.cpu().numpy().copy()
    with pytest.raises(RuntimeError):
        x.lerp(end, 0.5)
    with pytest.raises(RuntimeError):
        x.atan2(end)
    assert end.grad is None
    np.testing.assert_array_equal(x.detach().cpu().numpy(), before[0])
    np.testing.assert_array_equal(x.grad.cpu().numpy(), before[1])


def test_remainder_of_a_number_has_torch_missing_derivative() -> None:
    x = J.tensor([1.5, 2.5], requires_grad=True)
    y = J.remainder(2.0, x)
    assert y.grad_fn.name() == "torch::autograd::NotImplemented"
    with pytest.raises(RuntimeError, match="derivative for aten::remainder is not implemented"):
        y.sum().backward()


def test_floor_division_has_torch_missing_derivative_and_rounded_div_a_zero_one() -> None:
    x = J.tensor([1.5, -2.5], requires_grad=True)
    for y in (x // 0.7, 3 // x, J.floor_divide(x, J.tensor([2.0, 2.0]))):
        assert y.grad_fn.name() == "torch::autograd::NotImplemented"
        assert "grad_fn=<NotImplemented>" in repr(y)
        with pytest.raises(RuntimeError,
                           match="derivative for aten::floor_divide is not implemented"):
            y.sum().backward()
    assert x.grad is None
    for mode in ("floor", "trunc"):
        y = x.div(J.tensor([0.7, 0.7], requires_grad=True), rounding_mode=mode)
        assert y.grad_fn.name() == "DivBackward2"
        y.sum().backward()
        np.testing.assert_array_equal(x.grad.cpu().numpy(), [0.0, 0.0])


def test_python_operators_and_their_in_place_forms(rng) -> None:
    a = rng.uniform(-9, 9, 6).round(1)
    b = rng.choice([-2.5, -1.5, 1.5, 2.5], 6)
    x = J.tensor(a)
    np.testing.assert_array_equal((x // J.tensor(b)).cpu().numpy(), a // b)
    np.testing.assert_array_equal((x % J.tensor(b)).cpu().numpy(), np.mod(a, b))
    np.testing.assert_array_equal((7.0 % x).cpu().numpy(), np.mod(7.0, a))
    assert (+x) is x
    for op, ref in (("__ifloordiv__", np.floor_divide), ("__imod__", np.mod),
                    ("__ipow__", np.power)):
        y = J.tensor(np.abs(a))
        same = y
        y = getattr(y, op)(J.tensor(np.abs(b)))  # what y //= ..., y %= ..., y **= ... run
        assert y is same
        np.testing.assert_allclose(y.cpu().numpy(), ref(np.abs(a), np.abs(b)), rtol=1e-12)
    m, n = rng.random(6) < 0.5, rng.random(6) < 0.5
    assert ((J.tensor(m) ^ J.tensor(n)).cpu().numpy() == (m ^ n)).all()
    assert (J.logical_xor(J.tensor(m.astype(np.int64)), J.tensor(n.astype(np.float64)))
            .cpu().numpy() == (m ^ n)).all()
    for op, ref in (("__iand__", np.logical_and), ("__ior__", np.logical_or),
                    ("__ixor__", np.logical_xor)):
        t = J.tensor(m)
        assert getattr(t, op)(J.tensor(n)) is t
        assert (t.cpu().numpy() == ref(m, n)).all()
    with pytest.raises(TypeError, match=r"\^ is supported on bool tensors only"):
        J.tensor([1, 2]) ^ J.tensor([3, 4])


@pytest.mark.parametrize("name, args", [("elu", (0.5,)), ("leaky_relu", (0.1,)),
                                         ("hardtanh", (-0.5, 0.5)), ("silu", ()), ("mish", ())])
def test_inplace_activations(name: str, args: tuple, rng) -> None:
    x_np = rng.standard_normal(5)
    fn = getattr(F, name)
    expect = fn(J.tensor(x_np), *args).cpu().numpy()
    x = J.tensor(x_np)
    assert fn(x, *args, inplace=True) is x
    np.testing.assert_array_equal(x.cpu().numpy(), expect)
    leaf = J.tensor(x_np, requires_grad=True)
    fn(leaf * 1.0, *args, inplace=True).sum().backward()  # in place on a non-leaf
    z = J.tensor(x_np, requires_grad=True)
    fn(z, *args).sum().backward()
    np.testing.assert_allclose(leaf.grad.cpu().numpy(), z.grad.cpu().numpy())


def test_non_contiguous_and_broadcast_operands(rng) -> None:
    a = rng.standard_normal((4, 6))
    x = J.tensor(a, requires_grad=True)
    y = F.gelu(x.mT[:, ::2])
    ref = a.T[:, ::2]
    np.testing.assert_allclose(y.detach().cpu().numpy(),
                               0.5 * ref * (1 + np.vectorize(math.erf)(ref / math.sqrt(2))))
    y.mean(0).sum().backward()  # the gradient reaches the backward kernel broadcast
    assert x.grad.shape == (4, 6)
    assert np.all(x.grad.cpu().numpy()[1::2] == 0)
    w = J.tensor(rng.uniform(0, 1, (3, 1)), dtype=jitgrad.float32)
    out = J.lerp(J.zeros(3, 4), J.ones(4), w)
    np.testing.assert_allclose(out.cpu().numpy(), np.broadcast_to(w.cpu().numpy(), (3, 4)))


# --------------------------------------------------------------------------- launchers

@pytest.fixture(params=["serial", "parallel"])
def threshold(request, monkeypatch):
    if request.param == "parallel":
        monkeypatch.setattr(ew, "PARALLEL_MIN", 1)
    return request.param


LAYOUTS = [((7, 5), (7, 5)), ((7, 5), ()), ((), (7, 5)), ((), ()), ((1,), (3, 4)),
           ((6, 1, 5), (1, 4, 5)), ((4, 1), (1, 6))]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sa, sb", LAYOUTS)
@ON_CPU_ONLY
def test_binary_p_layouts(threshold, rng, sa, sb, dtype) -> None:
    g = rng.standard_normal(sa).astype(dtype)
    x = rng.standard_normal(sb).astype(dtype)
    shape = np.broadcast_shapes(sa, sb)
    got = pw.binary_p("hardtanh_backward", g, x, shape, -0.5, 0.5)
    np.testing.assert_array_equal(got, np.where((x > -0.5) & (x < 0.5), g, 0) + np.zeros(shape))
    # strided and broadcast (stride-0) views
    gv = np.broadcast_to(g, shape)
    xv = np.asfortranarray(np.broadcast_to(x, shape))
    np.testing.assert_array_equal(pw.binary_p("leaky_relu_backward", gv, xv, shape, 0.25),
                                  np.where(xv > 0, gv, 0.25 * gv))


@pytest.mark.parametrize("shapes", [((5, 4), (5, 4), (5, 4)), ((5, 1), (4,), ()),
                                    ((), (3, 2), (2,)), ((), (), ())])
@ON_CPU_ONLY
def test_ternary_p_layouts(threshold, rng, shapes) -> None:
    x, t1, t2 = (rng.standard_normal(s) for s in shapes)
    shape = np.broadcast_shapes(*shapes)
    np.testing.assert_allclose(pw.ternary_p("addcmul", x, t1, t2, shape, 0.5),
                               x + 0.5 * t1 * t2, rtol=1e-15)
    assert pw.ternary_p("addcmul", x, t1, t2, shape, 0.5).shape == shape


@pytest.mark.parametrize("shape", [(), (1,), (9,), (4, 6)])
@ON_CPU_ONLY
def test_unary_p(threshold, rng, shape) -> None:
    x = rng.standard_normal(shape)
    np.testing.assert_array_equal(pw.unary_p("hardtanh", x.T, -0.5, 0.25), np.clip(x.T, -0.5,
                                                                                     0.25))
    assert pw.unary_p("leaky_relu", np.zeros((0, 3)), 0.1).shape == (0, 3)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name, kwargs", [
    ("softplus", {}), ("softplus", dict(beta=2.0, threshold=5.0)), ("elu", {}),
    ("leaky_relu", {}), ("gelu", {}), ("gelu", dict(approximate="tanh")), ("silu", {}),
    ("mish", {}), ("hardtanh", {})])
def test_activations_far_out_as_torch(name: str, kwargs: dict, dtype: str) -> None:
    """Values and gradients in the tails (where formulas overflow or cancel) match torch's;
    where torch's formula cancels to 0 (gelu's left tail), jitgrad may be closer to the truth,
    hence the absolute tolerance."""
    torch = pytest.importorskip("torch")
    x = np.array([-1e30, -1e4, -100.0, -30.0, -9.0, 9.0, 30.0, 100.0, 1e4, 1e30], dtype=dtype)
    a = J.tensor(x, requires_grad=True)
    b = torch.tensor(x, requires_grad=True)
    ya = getattr(F, name)(a, **kwargs)
    yb = getattr(torch.nn.functional, name)(b, **kwargs)
    ya.sum().backward()
    yb.sum().backward()
    np.testing.assert_allclose(ya.detach().cpu().numpy(), yb.detach().cpu().numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(a.grad.cpu().numpy(), b.grad.cpu().numpy(), rtol=1e-6, atol=1e-7)
