"""Bad input raises torch's exception, with torch's text, and changes nothing.

Every case runs on operands that are leaves requiring grad (where their dtype allows) and
already holding a ``.grad`` from an earlier backward; after the exception, their data and
their ``.grad`` must be exactly what they were.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from on_device import J

import jitgrad

dev = J  # creation functions on the suite's device


F32, F64, I64 = jitgrad.float32, jitgrad.float64, jitgrad.int64
SIZE = r"(?:torch|jitgrad)\.Size"  # jitgrad's Size prints under its own name


def operand(shape, dtype=F32, requires_grad=True, seed=0):
    """A tensor of `shape` with distinct values and, if float and requiring grad, a .grad."""
    n = int(np.prod(shape))
    data = (np.arange(n, dtype=np.float64).reshape(shape) * 0.5 + seed)
    t = dev.tensor(data, dtype=dtype)
    if requires_grad and dtype.is_floating_point:
        t.requires_grad_()
        (t * 3).sum().backward()  # leaves a .grad of 3s
    return t


def snapshot(tensors):
    return [(t.detach().cpu().numpy().copy(),
             None if t.grad is None else t.grad.cpu().numpy().copy())
            for t in tensors]


def assert_unchanged(tensors, before):
    after = snapshot(tensors)
    for (d0, g0), (d1, g1), t in zip(before, after, tensors):
        np.testing.assert_array_equal(d0, d1)
        assert d0.dtype == d1.dtype and d0.shape == d1.shape
        assert (g0 is None) == (g1 is None)
        if g0 is not None:
            np.testing.assert_array_equal(g0, g1)


def check(exc, message, fn, *tensors, regex: bool = False):
    """fn() raises `exc` whose text is `message` (fully, or by regex search); `tensors` keep
    their data and .grad."""
    before = snapshot(tensors)
    with pytest.raises(exc) as ei:
        fn()
    text = str(ei.value)
    if regex:
        assert re.search(message, text), text
    else:
        assert text == message
    assert_unchanged(tensors, before)


# --------------------------------------------------------------------------- broadcasting

@pytest.mark.parametrize("sa,sb,a,b,dim", [
    ((2, 3), (4,), 3, 4, 1),
    ((2, 3), (3, 2), 3, 2, 1),  # the rightmost mismatch is named
    ((2, 3, 4), (5, 4), 3, 5, 1),
    ((3, 4), (2, 3, 5), 4, 5, 2),
    ((5, 1, 3), (2, 7, 3), 5, 2, 0),
])
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "pow", "maximum", "eq", "lt"])
def test_broadcast_mismatch(sa, sb, a, b, dim, op):
    x, y = operand(sa), operand(sb, seed=1)
    fn = {
        "add": lambda: x + y, "sub": lambda: x - y, "mul": lambda: x * y,
        "div": lambda: x / y, "pow": lambda: x ** y, "maximum": lambda: jitgrad.maximum(x, y),
        "eq": lambda: x == y, "lt": lambda: x < y,
    }[op]
    check(RuntimeError, f"The size of tensor a ({a}) must match the size of tensor b ({b}) at "
          f"non-singleton dimension {dim}", fn, x, y)


def test_broadcast_mismatch_in_place():
    x = operand((2, 3), requires_grad=False)
    y = operand((4,), seed=1)
    check(RuntimeError, "The size of tensor a (3) must match the size of tensor b (4) at "
          "non-singleton dimension 1", lambda: x.add_(y), x, y)


def test_where_broadcast_mismatch():
    c = dev.tensor([True, False, True])
    x, y = operand((3,)), operand((2, 2))
    check(RuntimeError, "The size of tensor a (3) must match the size of tensor b (2) at "
          "non-singleton dimension 1", lambda: jitgrad.where(c, x, y), x, y)


# --------------------------------------------------------------------------- matmul

@pytest.mark.parametrize("sa,sb,message", [
    ((2, 3), (4, 5), "mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)"),
    ((4,), (3, 2), "mat1 and mat2 shapes cannot be multiplied (1x4 and 3x2)"),
    ((2, 3), (4,), "size mismatch, got input (2), mat (2x3), vec (4)"),
    ((3,), (4,), "inconsistent tensor size, expected tensor [3] and src [4] to have the same "
                 "number of elements, but got 3 and 4 elements respectively"),
    ((2, 2, 3), (2, 4, 5), "Expected size for first two dimensions of batch2 tensor to be: "
                           "[2, 3] but got: [2, 4]."),
    ((3,), (2, 4, 5), "Expected size for first two dimensions of batch2 tensor to be: "
                      "[2, 3] but got: [2, 4]."),
    ((2, 1, 2, 3), (3, 4, 5), "Expected size for first two dimensions of batch2 tensor to be: "
                              "[6, 3] but got: [6, 4]."),
    ((2, 2, 3), (4, 5), "mat1 and mat2 shapes cannot be multiplied (4x3 and 4x5)"),
    ((2, 2, 3), (4,), "size mismatch, got input (4), mat (4x3), vec (4)"),
    ((2, 2, 3), (3, 3, 5), "The size of tensor a (2) must match the size of tensor b (3) at "
                           "non-singleton dimension 0"),
    ((5, 2, 2, 3), (5, 4, 3, 5), "The size of tensor a (2) must match the size of tensor b "
                                 "(4) at non-singleton dimension 1"),
    ((), (3,), "both arguments to matmul need to be at least 1D, but they are 0D and 1D"),
])
def test_matmul_shape_mismatch(sa, sb, message):
    a, b = operand(sa), operand(sb, seed=1)
    check(RuntimeError, message, lambda: a @ b, a, b)
    check(RuntimeError, message, lambda: jitgrad.matmul(a, b), a, b)


@pytest.mark.parametrize("da,db,names", [
    (F32, F64, "float != double"),
    (I64, F32, "long int != float"),
    (jitgrad.int32, jitgrad.uint8, "int != unsigned char"),
    (jitgrad.bool, jitgrad.int16, "bool != short int"),
])
def test_matmul_mixed_dtypes(da, db, names):
    a = operand((2, 3), da)
    b = operand((3, 2), db, seed=1)
    check(RuntimeError, f"expected m1 and m2 to have the same dtype, but got: {names}",
          lambda: a @ b, a, b)


def test_matmul_errors_match_torch():
    torch = pytest.importorskip("torch")
    shapes = [((2, 3), (4, 5)), ((2, 3), (4,)), ((4,), (3, 2)), ((3,), (4,)),
              ((2, 2, 3), (2, 4, 5)), ((2, 2, 3), (4, 5)), ((2, 2, 3), (4,)),
              ((4,), (2, 3, 2)), ((2, 3), (2, 4, 5)), ((5, 3), (2, 2, 4, 5)),
              ((5, 2, 2, 3), (3, 3, 5))]
    for sa, sb in shapes:
        with pytest.raises(RuntimeError) as theirs:
            torch.ones(sa) @ torch.ones(sb)
        with pytest.raises(RuntimeError) as mine:
            dev.ones(sa) @ dev.ones(sb)
        assert str(mine.value) == str(theirs.value).split("\n")[0], (sa, sb)


# --------------------------------------------------------------------------- indexing

@pytest.mark.parametrize("shape,key,message", [
    ((3,), 3, "index 3 is out of bounds for dimension 0 with size 3"),
    ((3,), -4, "index -4 is out of bounds for dimension 0 with size 3"),
    ((3,), [0, 5], "index 5 is out of bounds for dimension 0 with size 3"),
    ((3,), [0, -5], "index -5 is out of bounds for dimension 0 with size 3"),
    ((3,), "tensor13", "index 3 is out of bounds for dimension 0 with size 3"),
    ((2, 3), (slice(None), 3), "index 3 is out of bounds for dimension 1 with size 3"),
    ((2, 3), (1, -4), "index -4 is out of bounds for dimension 1 with size 3"),
    ((2, 3), (Ellipsis, 3), "index 3 is out of bounds for dimension 1 with size 3"),
    ((2, 3), (None, 2), "index 2 is out of bounds for dimension 0 with size 2"),
    ((2, 3, 4), (0, slice(None), 4), "index 4 is out of bounds for dimension 2 with size 4"),
])
def test_index_out_of_range(shape, key, message):
    x = operand(shape)
    if key == "tensor13":
        key = dev.tensor([1, 3])
    check(IndexError, message, lambda: x[key], x)
    with jitgrad.no_grad():
        check(IndexError, message, lambda: x.__setitem__(key, 0.0), x)


@pytest.mark.parametrize("key", [(slice(None), [1, 7]), (0, [1, 7]),
                                 (slice(None), "tensor4")])
def test_index_list_out_of_range_in_second_dim(key):
    x = operand((2, 3))
    if key[1] == "tensor4":
        key = (key[0], dev.tensor([4]))
    bad = 7 if isinstance(key[1], list) else 4
    # torch names dimension 0 here (a quirk of its advanced-indexing kernel); jitgrad names the
    # indexed dimension. Both name the index and the size.
    check(IndexError, rf"index {bad} is out of bounds for dimension [01] with size 3",
          lambda: x[key], x, regex=True)


def test_index_huge_values_never_crash():
    x = operand((3,))
    for bad in (2**40, -(2**40), 2**62):
        with pytest.raises(IndexError):
            x[bad]
        with pytest.raises(IndexError):
            x[[0, bad]]
        with pytest.raises(IndexError):
            x[dev.tensor([bad])]


def test_bool_mask_shape_mismatch():
    x = operand((2, 3))
    check(IndexError, "The shape of the mask [3] at index 0 does not match the shape of the "
          "indexed tensor [2, 3] at index 0", lambda: x[dev.tensor([True, False, True])], x)
    m = dev.ones(3, 2, dtype=jitgrad.bool)
    check(IndexError, "The shape of the mask [3, 2] at index 0 does not match the shape of the "
          "indexed tensor [2, 3] at index 0", lambda: x[m], x)
    check(IndexError, "The shape of the mask [2] at index 0 does not match the shape of the "
          "indexed tensor [2, 3] at index 1", lambda: x[:, dev.tensor([True, False])], x)


def test_too_many_indices():
    x = operand((2, 3))
    check(IndexError, "too many indices for tensor of dimension 2", lambda: x[0, 0, 0], x)
    check(IndexError, "too many indices for tensor of dimension 2", lambda: x[:, :, None, 0], x)
    s = operand(())
    check(IndexError, "invalid index of a 0-dim tensor. Use `tensor.item()` in Python or "
          "`tensor.item<T>()` in C++ to convert a 0-dim tensor to a number", lambda: s[0], s)
    check(IndexError, "slice() cannot be applied to a 0-dim tensor.", lambda: s[0:1], s)
    check(IndexError, "too many indices for tensor of dimension 0", lambda: s[None, 0], s)


def test_float_index():
    x = operand((3,))
    check(IndexError, "tensors used as indices must be long, int, byte or bool tensors",
          lambda: x[dev.tensor([1.0])], x)


def test_setitem_value_shape_mismatch():
    x = operand((2, 3), requires_grad=False)
    v = operand((2, 4), seed=1)
    check(RuntimeError, "The expanded size of the tensor (3) must match the existing size (4) "
          "at non-singleton dimension 1.  Target sizes: [2, 3].  Tensor sizes: [2, 4]",
          lambda: x.__setitem__(slice(None), v), x, v)
    w = operand((2, 3), seed=2)
    check(RuntimeError, "shape mismatch: value tensor of shape [2, 3] cannot be broadcast to "
          "indexing result of shape [1, 3]",
          lambda: x.__setitem__(dev.tensor([True, False]), w), x, w)


# --------------------------------------------------------------------------- requires_grad

def test_requires_grad_on_integer_tensor():
    with pytest.raises(RuntimeError) as ei:
        dev.tensor([1, 2], requires_grad=True)
    assert str(ei.value) == ("Only Tensors of floating point and complex dtype can require "
                             "gradients")
    for make in (lambda: dev.zeros(2, dtype=I64, requires_grad=True),
                 lambda: dev.ones(2, dtype=I64, requires_grad=True),
                 lambda: dev.full((2,), 1, requires_grad=True),
                 lambda: dev.arange(3, requires_grad=True)):
        with pytest.raises(RuntimeError, match="^Only Tensors of floating point and complex "
                                               "dtype can require gradients$"):
            make()
    t = dev.tensor([1, 2])
    check(RuntimeError, "only Tensors of floating point dtype can require gradients",
          lambda: t.requires_grad_(), t)
    assert not t.requires_grad
    check(RuntimeError, "only Tensors of floating point and complex dtype can require "
          "gradients", lambda: setattr(t, "requires_grad", True), t)
    assert not t.requires_grad
    b = dev.tensor([True])
    check(RuntimeError, "only Tensors of floating point dtype can require gradients",
          lambda: b.requires_grad_(), b)
    t.requires_grad_(False)  # switching it off is fine


def test_requires_grad_flag_of_non_leaf():
    x = operand((2,))
    y = x * 2
    check(RuntimeError, "you can only change requires_grad flags of leaf variables. If you want "
          "to use a computed variable in a subgraph that doesn't require differentiation use "
          "var_no_grad = var.detach().", lambda: y.requires_grad_(False), x)
    assert y.requires_grad
    assert y.requires_grad_(True) is y  # already requires grad: a no-op


# --------------------------------------------------------------------------- backward

def test_backward_of_tensor_without_grad():
    x = operand((2,))
    c = operand((2,), requires_grad=False)
    check(RuntimeError, "element 0 of tensors does not require grad and does not have a "
          "grad_fn", lambda: (c * 2).sum().backward(), x, c)
    check(RuntimeError, "element 1 of tensors does not require grad and does not have a "
          "grad_fn", lambda: jitgrad.autograd.backward([x.sum(), c.sum()]), x, c)
    with jitgrad.no_grad():
        y = (x * 2).sum()
    check(RuntimeError, "element 0 of tensors does not require grad and does not have a "
          "grad_fn", lambda: y.backward(), x)


def test_backward_non_scalar_without_gradient():
    x = operand((2, 2))
    y = x * 2
    check(RuntimeError, "grad can be implicitly created only for scalar outputs",
          lambda: y.backward(), x)
    check(RuntimeError, "grad can be implicitly created only for scalar outputs",
          lambda: jitgrad.autograd.grad(y, x), x)
    # the graph was not consumed by the failed call
    y.backward(dev.ones(2, 2))
    assert x.grad.tolist() == [[5.0, 5.0], [5.0, 5.0]]


def test_backward_gradient_shape_mismatch():
    x = operand((2,))
    y = x * 2
    g = dev.ones(3)
    check(RuntimeError, rf"^Mismatch in shape: grad_output\[0\] has a shape of {SIZE}\(\[3\]\) "
          rf"and output\[0\] has a shape of {SIZE}\(\[2\]\)\.$", lambda: y.backward(g), x, g,
          regex=True)
    s = y.sum()
    check(RuntimeError, rf"^Mismatch in shape: grad_output\[0\] has a shape of {SIZE}\(\[3\]\) "
          rf"and output\[0\] has a shape of {SIZE}\(\[\]\)\.$", lambda: s.backward(g), x, g,
          regex=True)


def test_second_backward_leaves_grads_unchanged():
    x = operand((2,))
    y = (x * x).sum()
    y.backward()
    check(RuntimeError, "Trying to backward through the graph a second time", lambda: y.backward(),
          x, regex=True)


def test_grad_assignment_checks():
    x = operand((2,))
    check(RuntimeError, "attempting to assign a gradient of size '[3]' to a tensor of size "
          "'[2]'. Please ensure that the gradient and the tensor are the same size",
          lambda: setattr(x, "grad", dev.ones(3)), x)
    with pytest.raises(TypeError):
        x.grad = [1.0, 2.0]
    assert x.grad.tolist() == [3.0, 3.0]


# --------------------------------------------------------------------------- dims & shapes

@pytest.mark.parametrize("call,message", [
    (lambda x: x.sum(2), "[-2, 1], but got 2)"),
    (lambda x: x.sum(-3), "[-2, 1], but got -3)"),
    (lambda x: x.sum((0, 5)), "[-2, 1], but got 5)"),
    (lambda x: x.mean(2), "[-2, 1], but got 2)"),
    (lambda x: x.max(2), "[-2, 1], but got 2)"),
    (lambda x: x.transpose(0, 2), "[-2, 1], but got 2)"),
    (lambda x: x.transpose(-3, 0), "[-2, 1], but got -3)"),
    (lambda x: x.squeeze(3), "[-2, 1], but got 3)"),
    (lambda x: x.unsqueeze(4), "[-3, 2], but got 4)"),
    (lambda x: x.unsqueeze(-4), "[-3, 2], but got -4)"),
    (lambda x: x.size(2), "[-2, 1], but got 2)"),
    (lambda x: x.flatten(0, 2), "[-2, 1], but got 2)"),
])
def test_dim_out_of_range(call, message):
    x = operand((2, 3))
    check(IndexError, "Dimension out of range (expected to be in range of " + message,
          lambda: call(x), x)


def test_duplicate_dims():
    x = operand((2, 3))
    check(RuntimeError, "permute(): duplicate dims are not allowed.", lambda: x.permute(0, 0), x)
    check(RuntimeError, "permute(): duplicate dims are not allowed.", lambda: x.permute(1, -1), x)
    check(RuntimeError, "permute(sparse_coo): number of dimensions in the tensor input does not "
          "match the length of the desired ordering of dimensions i.e. input.dim() = 2 is not "
          "equal to len(dims) = 1", lambda: x.permute(0), x)
    check(RuntimeError, "dim 0 appears multiple times in the list of dims",
          lambda: x.sum((0, -2)), x)


@pytest.mark.parametrize("method", ["view", "reshape"])
def test_view_reshape_invalid_shape(method):
    x = operand((2, 3))
    f = getattr(x, method)
    check(RuntimeError, "shape '[4]' is invalid for input of size 6", lambda: f(4), x)
    check(RuntimeError, "shape '[4, -1]' is invalid for input of size 6", lambda: f(4, -1), x)
    check(RuntimeError, "shape '[0, -1]' is invalid for input of size 6", lambda: f(0, -1), x)
    check(RuntimeError, "only one dimension can be inferred", lambda: f(-1, -1), x)
    check(RuntimeError, "invalid shape dimension -2 at index 0 of shape [-2, 3]",
          lambda: f(-2, 3), x)
    check(RuntimeError, "invalid shape dimension -3 at index 1 of shape [2, -3]",
          lambda: f((2, -3)), x)


def test_view_of_non_contiguous():
    x = operand((2, 3))
    check(RuntimeError, "view size is not compatible with input tensor's size and stride (at "
          "least one dimension spans across two contiguous subspaces). Use .reshape(...) "
          "instead.", lambda: x.t().view(6), x)
    assert x.t().reshape(6).detach().tolist() == [0.0, 1.5, 0.5, 2.0, 1.0, 2.5]


def test_expand_mismatch():
    x = operand((2, 3))
    check(RuntimeError, "The expanded size of the tensor (4) must match the existing size (3) "
          "at non-singleton dimension 1.  Target sizes: [2, 4].  Tensor sizes: [2, 3]",
          lambda: x.expand(2, 4), x)
    check(RuntimeError, "The expanded size of the tensor (5) must match the existing size (2) "
          "at non-singleton dimension 0.  Target sizes: [5, 3].  Tensor sizes: [2, 3]",
          lambda: x.expand(5, 3), x)
    check(RuntimeError, "The expanded size of the tensor (4) must match the existing size (3) "
          "at non-singleton dimension 1.  Target sizes: [5, 4].  Tensor sizes: [2, 3]",
          lambda: x.expand(5, 4), x)  # the rightmost mismatch is named
    check(RuntimeError, "expand(torch.FloatTensor{[2, 3]}, size=[3]): the number of sizes "
          "provided (1) must be greater or equal to the number of dimensions in the tensor (2)",
          lambda: x.expand(3), x)
    d = operand((2, 3), F64)
    check(RuntimeError, "expand(torch.DoubleTensor{[2, 3]}, size=[3]): the number of sizes "
          "provided (1) must be greater or equal to the number of dimensions in the tensor (2)",
          lambda: d.expand(3), d)
    check(RuntimeError, "The expanded size of the tensor (-1) isn't allowed in a leading, "
          "non-existing dimension 1", lambda: x.expand(4, -1, 2, 3), x)


# --------------------------------------------------------------------------- in-place

LEAF_INPLACE = "a leaf Variable that requires grad is being used in an in-place operation."


@pytest.mark.parametrize("op", [
    lambda x: x.add_(1), lambda x: x.sub_(1), lambda x: x.mul_(2), lambda x: x.div_(2),
    lambda x: x.pow_(2), lambda x: x.clamp_(0, 1), lambda x: x.zero_(), lambda x: x.fill_(7),
    lambda x: x.__iadd__(1), lambda x: x.__imul__(dev.ones(2, 3)),
])
def test_in_place_on_leaf_requiring_grad(op):
    x = operand((2, 3))
    check(RuntimeError, LEAF_INPLACE, lambda: op(x), x)
    with jitgrad.no_grad():
        op(x)  # allowed outside grad mode


def test_setitem_on_leaf_requiring_grad():
    x = operand((2, 3))
    v = operand((3,), seed=4)
    msg = "a view of a leaf Variable that requires grad is being used in an in-place operation."
    check(RuntimeError, msg, lambda: x.__setitem__(0, 5.0), x)
    check(RuntimeError, msg, lambda: x.__setitem__((slice(None), 1), 5.0), x)
    check(RuntimeError, msg, lambda: x.__setitem__(1, v), x, v)
    check(RuntimeError, msg, lambda: x.__setitem__(dev.tensor([True, False]), 0.0), x)


def test_in_place_dtype_error_changes_nothing():
    x = operand((3,), I64)
    check(RuntimeError, "result type Float can't be cast to the desired output type Long",
          lambda: x.add_(1.5), x)
    check(RuntimeError, "result type Float can't be cast to the desired output type Long",
          lambda: x.__imul__(dev.ones(3)), x)


# --------------------------------------------------------------------------- conversions

def test_numpy_of_tensor_requiring_grad():
    x = operand((2,))
    check(RuntimeError, "Can't call numpy() on Tensor that requires grad. Use "
          "tensor.detach().numpy() instead.", lambda: x.cpu().numpy(), x)
    y = x * 2
    check(RuntimeError, "Can't call numpy() on Tensor that requires grad. Use "
          "tensor.detach().numpy() instead.", lambda: y.cpu().numpy(), x)


def test_item_of_many_elements():
    x = operand((2, 3))
    check(RuntimeError, "a Tensor with 6 elements cannot be converted to Scalar",
          lambda: x.item(), x)
    e = operand((0,))
    check(RuntimeError, "a Tensor with 0 elements cannot be converted to Scalar",
          lambda: e.item(), e)
    check(RuntimeError, "a Tensor with 6 elements cannot be converted to Scalar",
          lambda: float(x), x)
    check(RuntimeError, "Boolean value of Tensor with more than one value is ambiguous",
          lambda: bool(x), x)


def test_max_min_of_empty_tensor():
    e = operand((0,))
    check(RuntimeError, "max(): Expected reduction dim to be specified for input.numel() == 0. "
          "Specify the reduction dim with the 'dim' argument.", lambda: e.max(), e)
    check(RuntimeError, "min(): Expected reduction dim to be specified for input.numel() == 0. "
          "Specify the reduction dim with the 'dim' argument.", lambda: jitgrad.min(e), e)
    e2 = operand((0, 3))
    check(IndexError, "max(): Expected reduction dim 0 to have non-zero size.",
          lambda: e2.max(0), e2)
    assert e2.max(1).values.shape == (0,)


def test_failed_op_inside_a_graph_leaves_it_usable():
    x = operand((2, 3))
    w = operand((3,), seed=1)
    h = x * w
    with pytest.raises(RuntimeError):
        h + dev.ones(4)
    with pytest.raises(RuntimeError):
        h @ dev.ones(4)
    h.sum().backward()
    np.testing.assert_array_equal(x.grad.cpu().numpy(),
                                  3 + np.broadcast_to(w.detach().cpu().numpy(), (2, 3)))


def test_errors_match_torch():
    """The same bad calls give the same exception type and first line in torch."""
    torch = pytest.importorskip("torch")
    calls = [
        lambda T: T.ones(2, 3) + T.ones(4),
        lambda T: T.ones(2, 3) * T.ones(3, 2),
        lambda T: T.ones(3)[3],
        lambda T: T.ones(3)[[0, -5]],
        lambda T: T.ones(2, 3)[:, 3],
        lambda T: T.ones(2, 3)[T.tensor([True, False, True])],
        lambda T: T.ones(2, 3)[0, 0, 0],
        lambda T: T.tensor(1.0)[0],
        lambda T: T.tensor([1, 2], requires_grad=True),
        lambda T: T.tensor([1, 2]).requires_grad_(),
        lambda T: T.ones(2).sum().backward(),
        lambda T: (T.ones(2, requires_grad=True) * 2).backward(),
        lambda T: T.ones(2, 3).sum(2),
        lambda T: T.ones(2, 3).transpose(0, 2),
        lambda T: T.ones(2, 3).squeeze(3),
        lambda T: T.ones(2, 3).unsqueeze(4),
        lambda T: T.ones(2, 3).permute(0, 0),
        lambda T: T.ones(2, 3).view(4),
        lambda T: T.ones(2, 3).reshape(-1, -1),
        lambda T: T.ones(2, 3).reshape(-2, 3),
        lambda T: T.ones(2, 3).t().view(6),
        lambda T: T.ones(2, 3).expand(2, 4),
        lambda T: T.ones(2, 3).expand(3),
        lambda T: T.ones(2, requires_grad=True).add_(1),
        lambda T: T.ones(2, requires_grad=True).__setitem__(0, 1.0),
        lambda T: T.ones(2, requires_grad=True).cpu().numpy(),
        lambda T: T.ones(2).item(),
        lambda T: T.ones(0).max(),
        lambda T: T.ones(2, 3).__setitem__(0, T.ones(2, 3)),
    ]
    for i, call in enumerate(calls):
        with pytest.raises(Exception) as theirs:
            call(torch)
        with pytest.raises(Exception) as mine:
            call(jitgrad)
        assert type(mine.value) is type(theirs.value), i
        assert str(mine.value) == str(theirs.value).split("\n")[0], i
