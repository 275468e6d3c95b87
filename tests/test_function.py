"""User-defined Functions: ``jitgrad.autograd.Function`` with torch's ctx API."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest
from on_device import J

import jitgrad
from jitgrad import autograd
from jitgrad.autograd import Function, once_differentiable
from jitgrad.autograd.gradcheck import check_vjp

dev = J  # creation functions on the suite's device


FREED_TEXT = "Trying to backward through the graph a second time"


def leaf(values, dtype=None):
    return dev.tensor(values, dtype=dtype, requires_grad=True)


class MyExp(Function):
    @staticmethod
    def forward(ctx, x):
        y = x.exp()
        ctx.save_for_backward(y)  # an output: must not make a cycle
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * y


class MulAdd(Function):
    """(x * y + z, x - y): three inputs, two outputs."""

    @staticmethod
    def forward(ctx, x, y, z):
        ctx.save_for_backward(x, y)
        return x * y + z, x - y

    @staticmethod
    def backward(ctx, ga, gb):
        x, y = ctx.saved_tensors
        return ga * y + gb, ga * x - gb, ga


class Scale(Function):
    """x * k for a Python number k (a non-tensor input)."""

    @staticmethod
    def forward(ctx, x, k):
        ctx.k = k  # arbitrary attributes live on ctx
        return x * k

    @staticmethod
    def backward(ctx, g):
        return g * ctx.k, None


# --------------------------------------------------------------------------- basics

def test_forward_runs_under_no_grad():
    seen = {}

    class Probe(Function):
        @staticmethod
        def forward(ctx, x):
            seen["enabled"] = jitgrad.is_grad_enabled()
            y = x * 2
            seen["inner_requires_grad"] = y.requires_grad
            return y

        @staticmethod
        def backward(ctx, g):
            seen["backward_enabled"] = jitgrad.is_grad_enabled()
            return g * 2

    x = leaf([1.0, 2.0])
    y = Probe.apply(x)
    assert seen == {"enabled": False, "inner_requires_grad": False}
    assert jitgrad.is_grad_enabled()
    assert y.requires_grad and not y.is_leaf
    y.sum().backward()
    assert seen["backward_enabled"] is False  # no create_graph
    assert x.grad.tolist() == [2.0, 2.0]


def test_apply_values_and_grad_fn_name():
    x = leaf([0.0, 1.0])
    y = MyExp.apply(x)
    np.testing.assert_allclose(y.detach().cpu().numpy(), np.exp([0.0, 1.0]), rtol=1e-6)
    assert y.grad_fn.name() == "MyExpBackward"
    assert type(y.grad_fn).__name__ == "MyExpBackward"
    assert y.grad_fn.next_functions[0][0].name() == "AccumulateGrad"
    assert y.grad_fn.next_functions[0][0].variable is x
    y.sum().backward()
    np.testing.assert_allclose(x.grad.cpu().numpy(), np.exp([0.0, 1.0]), rtol=1e-6)


def test_apply_without_grad_records_nothing():
    x = dev.tensor([1.0])
    y = MyExp.apply(x)
    assert not y.requires_grad and y.grad_fn is None
    with jitgrad.no_grad():
        z = MyExp.apply(leaf([1.0]))
    assert not z.requires_grad and z.grad_fn is None


def test_grad_fn_name_matches_torch():
    torch = pytest.importorskip("torch")

    class MyFn(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2

    class MyFn2(Function):
        forward = MyFn.forward
        backward = MyFn.backward

    ty = MyFn.apply(torch.ones(2, requires_grad=True))
    jy = MyFn2.apply(dev.ones(2, requires_grad=True))
    assert ty.grad_fn.name() == "MyFnBackward"
    assert jy.grad_fn.name() == "MyFn2Backward"


def test_several_inputs_and_outputs():
    x, y, z = leaf([1.0, 2.0]), leaf([3.0, 4.0]), leaf([5.0, 6.0])
    a, b = MulAdd.apply(x, y, z)
    assert a.detach().tolist() == [8.0, 14.0]
    assert b.detach().tolist() == [-2.0, -2.0]
    assert a.grad_fn is b.grad_fn
    assert (a.output_nr, b.output_nr) == (0, 1)
    (a.sum() + 10 * b.sum()).backward()
    assert x.grad.tolist() == [13.0, 14.0]
    assert y.grad.tolist() == [-9.0, -8.0]
    assert z.grad.tolist() == [1.0, 1.0]


def test_non_tensor_inputs_get_no_gradient():
    x = leaf([1.0, 2.0])
    y = Scale.apply(x, 3.0)
    assert len(y.grad_fn.next_functions) == 1  # the number is no edge
    y.sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]


def test_gradient_for_non_tensor_input_must_be_none():
    class Bad(Function):
        @staticmethod
        def forward(ctx, x, k):
            return x * k

        @staticmethod
        def backward(ctx, g):
            return g, g

    x = leaf([1.0])
    with pytest.raises(RuntimeError, match="function BadBackward returned a gradient different "
                                           "than None at position 2, but the corresponding "
                                           "forward input was not a Variable"):
        Bad.apply(x, 2.0).sum().backward()
    assert x.grad is None


def test_returning_none_gradients():
    class HalfUsed(Function):
        @staticmethod
        def forward(ctx, x, y):
            return x + y

        @staticmethod
        def backward(ctx, g):
            return g, None

    x, y = leaf([1.0]), leaf([2.0])
    HalfUsed.apply(x, y).sum().backward()
    assert x.grad.tolist() == [1.0]
    assert y.grad is None


def test_wrong_number_of_gradients():
    class MyFn(Function):
        @staticmethod
        def forward(ctx, x, y):
            return x * y

        @staticmethod
        def backward(ctx, g):
            return g

    x, y = leaf([1.0]), leaf([2.0])
    with pytest.raises(RuntimeError) as ei:
        MyFn.apply(x, y).sum().backward()
    assert str(ei.value) == ("function MyFnBackward returned an incorrect number of gradients "
                             "(expected 2, got 1)")
    assert x.grad is None and y.grad is None


def test_extra_none_gradients_are_allowed():
    class Extra(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2, None, None

    x = leaf([1.0])
    Extra.apply(x).sum().backward()
    assert x.grad.tolist() == [2.0]


def test_gradient_shape_is_checked():
    class WrongShape(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return dev.ones(3)

    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"Function WrongShapeBackward returned an invalid "
                                           r"gradient at index 0 - got \[3\] but expected shape "
                                           r"compatible with \[2\]"):
        WrongShape.apply(x).sum().backward()
    assert x.grad is None


def test_function_used_twice_in_one_graph():
    x = leaf([0.5, 1.0])
    y = MyExp.apply(MyExp.apply(x))  # exp(exp(x))
    z = MyExp.apply(x)
    assert y.grad_fn is not z.grad_fn
    (y + z).sum().backward()
    xv = np.array([0.5, 1.0])
    expected = np.exp(np.exp(xv)) * np.exp(xv) + np.exp(xv)
    np.testing.assert_allclose(x.grad.cpu().numpy(), expected, rtol=1e-5)


def test_function_mixed_with_builtin_ops():
    x = leaf([1.0, 2.0])
    y = Scale.apply(x * x, 2.0).sum()
    y.backward()
    assert x.grad.tolist() == [4.0, 8.0]


def test_setup_context_style():
    class Cube(Function):
        @staticmethod
        def forward(x):
            return x * x * x

        @staticmethod
        def setup_context(ctx, inputs, output):
            (x,) = inputs
            ctx.save_for_backward(x)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 3 * g * x * x

    x = leaf([2.0])
    Cube.apply(x).sum().backward()
    assert x.grad.tolist() == [12.0]


# --------------------------------------------------------------------------- ctx

def test_needs_input_grad():
    seen = []

    class Probe(Function):
        @staticmethod
        def forward(ctx, a, b, k):
            seen.append(ctx.needs_input_grad)
            return a * b * k

        @staticmethod
        def backward(ctx, g):
            seen.append(ctx.needs_input_grad)
            return g, g, None

    Probe.apply(leaf([1.0]), dev.tensor([2.0]), 3.0).sum().backward()
    assert seen == [(True, False, False), (True, False, False)]


def test_saved_tensors_freed_after_backward():
    x = leaf([1.0, 2.0])
    y = MyExp.apply(x)
    ctx = y.grad_fn
    (y2,) = ctx.saved_tensors
    assert y2.detach().tolist() == y.detach().tolist()
    y.sum().backward()
    with pytest.raises(RuntimeError, match=FREED_TEXT):
        ctx.saved_tensors
    with pytest.raises(RuntimeError, match=FREED_TEXT):
        y.sum().backward()


def test_saved_tensors_kept_with_retain_graph():
    x = leaf([1.0, 2.0])
    y = MyExp.apply(x)
    y.sum().backward(retain_graph=True)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.cpu().numpy(), 2 * np.exp([1.0, 2.0]), rtol=1e-6)


def test_saved_input_is_the_same_tensor():
    seen = []

    class Keep(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * 2

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            seen.append(x)
            return g * 2

    x = leaf([1.0])
    Keep.apply(x).sum().backward()
    assert seen[0] is x


def test_save_for_backward_rejects_non_tensors():
    class Bad(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x, 3)
            return x * 1

        @staticmethod
        def backward(ctx, g):
            return g

    with pytest.raises(TypeError, match="save_for_backward can only save variables"):
        Bad.apply(leaf([1.0]))


def test_saving_output_makes_no_cycle():
    # run once first: a kernel's first compile may leave cycles of its own behind
    MyExp.apply(MyExp.apply(leaf([1.0, 2.0])) * 2)
    gc.collect()
    gc.disable()
    try:
        x = leaf([1.0, 2.0])
        y = MyExp.apply(x)
        z = MyExp.apply(y * 2)
        refs = [weakref.ref(y), weakref.ref(y.grad_fn), weakref.ref(z), weakref.ref(z.grad_fn)]
        del y, z
        assert all(r() is None for r in refs)
    finally:
        gc.enable()


def test_saving_output_no_cycle_after_backward():
    MyExp.apply(leaf([1.0, 2.0])).sum().backward()  # compiles first (see above)
    gc.collect()
    gc.disable()
    try:
        x = leaf([1.0, 2.0])
        y = MyExp.apply(x)
        y.sum().backward(retain_graph=True)
        refs = [weakref.ref(y), weakref.ref(y.grad_fn)]
        del y
        assert all(r() is None for r in refs)
        assert x.grad is not None
    finally:
        gc.enable()


def test_mark_non_differentiable():
    class SortLike(Function):
        @staticmethod
        def forward(ctx, x):
            idx = dev.tensor([1.0, 0.0])  # a float output that must not be differentiated
            ctx.mark_non_differentiable(idx)
            return x * 2, idx

        @staticmethod
        def backward(ctx, g, g_idx):
            assert g_idx is None or float(g_idx.abs().sum()) == 0.0
            return g * 2

    x = leaf([1.0, 2.0])
    y, idx = SortLike.apply(x)
    assert y.requires_grad
    assert not idx.requires_grad and idx.grad_fn is None
    y.sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]


def test_integer_outputs_are_not_differentiable():
    class ArgAndVal(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1, dev.tensor([0, 1])

        @staticmethod
        def backward(ctx, g, gi):
            return g

    v, i = ArgAndVal.apply(leaf([1.0, 2.0]))
    assert v.requires_grad and not i.requires_grad


def _two_output_fn(materialize: bool, seen: list):
    class TwoOut(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.set_materialize_grads(materialize)
            return x * 2, x * 3

        @staticmethod
        def backward(ctx, ga, gb):
            seen.append((ga, gb))
            gx = None
            if ga is not None:
                gx = ga * 2
            if gb is not None:
                gx = gb * 3 if gx is None else gx + gb * 3
            return gx

    return TwoOut


def test_set_materialize_grads_false_gives_none():
    seen = []
    fn = _two_output_fn(False, seen)
    x = leaf([1.0, 2.0])
    a, b = fn.apply(x)
    a.sum().backward()
    ga, gb = seen[0]
    assert gb is None
    assert ga.tolist() == [1.0, 1.0]
    assert x.grad.tolist() == [2.0, 2.0]


def test_set_materialize_grads_true_gives_zeros():
    seen = []
    fn = _two_output_fn(True, seen)
    x = leaf([1.0, 2.0])
    a, b = fn.apply(x)
    b.sum().backward()
    ga, gb = seen[0]
    assert ga is not None
    assert ga.tolist() == [0.0, 0.0] and ga.shape == (2,) and ga.dtype == jitgrad.float32
    assert gb.tolist() == [1.0, 1.0]
    assert x.grad.tolist() == [3.0, 3.0]


def test_mark_dirty_in_place_forward():
    class AddOneInPlace(Function):
        @staticmethod
        def forward(ctx, x):
            x.add_(1)
            ctx.mark_dirty(x)
            return x

        @staticmethod
        def backward(ctx, g):
            return g * 1

    w = leaf([1.0, 2.0])
    h = w * 2
    out = AddOneInPlace.apply(h)
    assert out is h  # the dirty input itself is returned, now with the Function as grad_fn
    assert h.detach().tolist() == [3.0, 5.0]
    assert h.grad_fn.name() == "AddOneInPlaceBackward"
    (h * h).sum().backward()
    assert w.grad.tolist() == [12.0, 20.0]


def test_mark_dirty_on_leaf_requiring_grad_raises():
    class AddOneInPlace(Function):
        @staticmethod
        def forward(ctx, x):
            x.add_(1)
            ctx.mark_dirty(x)
            return x

        @staticmethod
        def backward(ctx, g):
            return g

    w = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
        AddOneInPlace.apply(w)


def test_input_returned_unchanged_is_a_new_tensor():
    class Identity(Function):
        @staticmethod
        def forward(ctx, x):
            return x

        @staticmethod
        def backward(ctx, g):
            return g * 5

    x = leaf([1.0, 2.0])
    y = Identity.apply(x)
    assert y is not x
    assert x.is_leaf and x.grad_fn is None
    assert y.grad_fn.name() == "IdentityBackward"
    y.sum().backward()
    assert x.grad.tolist() == [5.0, 5.0]


# --------------------------------------------------------------------------- higher order

class Square(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 2 * g * x  # written with jitgrad ops: itself differentiable


class SquareOnce(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 2 * g * x


def test_double_backward_through_function():
    x = leaf(3.0)
    (g,) = autograd.grad(Square.apply(x), x, create_graph=True)
    assert g.item() == 6.0 and g.requires_grad
    (gg,) = autograd.grad(g, x)
    assert gg.item() == 2.0


def test_once_differentiable_first_order_works():
    x = leaf([1.0, 3.0])
    SquareOnce.apply(x).sum().backward()
    assert x.grad.tolist() == [2.0, 6.0]
    y = leaf(2.0)
    (g,) = autograd.grad(SquareOnce.apply(y), y)
    assert g.item() == 4.0


def test_once_differentiable_second_order_raises():
    x = leaf(3.0)
    y = SquareOnce.apply(x)
    # y * y sends a gradient that itself requires grad into SquareOnce's backward
    (g,) = autograd.grad(y * y, x, create_graph=True)
    assert g.item() == 108.0
    assert g.requires_grad
    with pytest.raises(RuntimeError, match="trying to differentiate twice a function that was "
                                           "marked with @once_differentiable"):
        g.backward()
    assert x.grad is None
    (g,) = autograd.grad(SquareOnce.apply(x) ** 2, x, create_graph=True)
    with pytest.raises(RuntimeError):
        autograd.grad(g, x)


def test_once_differentiable_output_needs_grad_only_if_incoming_does():
    x = leaf(3.0)
    (g,) = autograd.grad(SquareOnce.apply(x), x, create_graph=True)  # seed needs no grad
    assert g.item() == 6.0
    assert not g.requires_grad  # as in torch


def test_once_differentiable_backward_runs_under_no_grad():
    seen = []

    class Probe(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        @once_differentiable
        def backward(ctx, g):
            seen.append(jitgrad.is_grad_enabled())
            return g * 2

    x = leaf(1.0)
    autograd.grad(Probe.apply(x), x, create_graph=True)
    assert seen == [False]


# --------------------------------------------------------------------------- check_vjp

def test_check_vjp_custom_exp(rng):
    x = dev.tensor(rng.standard_normal((3, 4)), dtype=jitgrad.float64, requires_grad=True)
    check_vjp(MyExp.apply, (x,), rng=rng)


def test_check_vjp_multi_output_function(rng):
    args = tuple(dev.tensor(rng.standard_normal(5), requires_grad=True) for _ in range(3))
    check_vjp(MulAdd.apply, args, rng=rng)


def test_check_vjp_detects_a_wrong_backward(rng):
    class WrongExp(Function):
        @staticmethod
        def forward(ctx, x):
            y = x.exp()
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, g):
            (y,) = ctx.saved_tensors
            return g * y * 1.1

    x = dev.tensor(rng.standard_normal(4), requires_grad=True)
    with pytest.raises(AssertionError, match="VJP mismatch"):
        check_vjp(WrongExp.apply, (x,), rng=rng)


def test_gradcheck_interface(rng):
    x = dev.tensor(rng.standard_normal(4), requires_grad=True)
    assert autograd.gradcheck(MyExp.apply, (x,))
    assert autograd.gradgradcheck(Square.apply, (x,))
