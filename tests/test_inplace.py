"""In-place operations: results, gradients through rebased histories and views, version
counters, and torch's errors. Each scenario runs on jitgrad and, when installed, on torch."""

from __future__ import annotations

import numpy as np
import pytest

import jitgrad

try:
    import torch
except ImportError:  # the oracle is optional
    torch = None

MODULES = [jitgrad] + ([torch] if torch is not None else [])
MODIFIED = "modified by an inplace operation"


def _np(t):
    return t.detach().cpu().numpy()


@pytest.fixture(params=MODULES, ids=lambda m: m.__name__)
def m(request):
    return request.param


@pytest.fixture
def dev(m, device):
    """The device tensors are made on: the suite's device for jitgrad; torch (the oracle)
    runs on the CPU."""
    return device if m is jitgrad else "cpu"


def test_inplace_on_non_leaf_rebases_history(m, dev):
    x = m.tensor([1.0, 2.0, 3.0], requires_grad=True, device=dev)
    y = x * 2
    y.add_(1)
    assert y.grad_fn.name() == "AddBackward0" and y._version == 1
    (y * y).sum().backward()
    np.testing.assert_allclose(_np(x.grad), 4 * (2 * _np(x) + 1))


def test_inplace_using_itself_differentiates_the_old_value(m, dev):
    x = m.tensor([1.0, -2.0, 3.0], requires_grad=True, device=dev)
    y = x * 1
    y.mul_(y)  # y = x**2
    if m is not jitgrad:
        # torch saved y itself and refuses; jitgrad kept the old value and differentiates it
        with pytest.raises(RuntimeError, match=MODIFIED):
            y.sum().backward()
        return
    y.sum().backward()
    np.testing.assert_allclose(_np(x.grad), 2 * _np(x))


def test_saved_input_modified_raises(m, dev):
    x = m.tensor([1.0, 2.0], requires_grad=True, device=dev)
    y = x * 2
    z = y * y
    y.mul_(2)
    with pytest.raises(RuntimeError, match=MODIFIED):
        z.sum().backward()
    assert x.grad is None


def test_saved_output_modified_raises(m, dev):
    x = m.tensor([1.0, 2.0], requires_grad=True, device=dev)
    y = x.exp()
    y.add_(1)
    with pytest.raises(RuntimeError, match="is at version 1; expected version 0"):
        y.sum().backward()


def test_change_through_detach_is_seen(m, dev):
    x = m.tensor([1.0, 2.0], requires_grad=True, device=dev)
    y = x * 2
    z = y * y
    y.detach().add_(1)
    with pytest.raises(RuntimeError, match=MODIFIED):
        z.sum().backward()


def test_function_saved_tensor_modified_raises(m, dev):
    class Square(m.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return a * a

        @staticmethod
        def backward(ctx, g):
            (a,) = ctx.saved_tensors
            return 2 * a * g

    x = m.tensor([1.0, 2.0], requires_grad=True, device=dev)
    y = x * 1
    out = Square.apply(y)
    y.add_(1)
    with pytest.raises(RuntimeError, match=MODIFIED):
        out.sum().backward()


def test_inplace_on_a_view_reaches_the_base(m, dev):
    x = m.tensor([1.0, 2.0, 3.0], requires_grad=True, device=dev)
    y = x * 2
    v = y[1:]
    v.mul_(3)
    assert y.grad_fn.name().endswith("CopySlices")
    assert y._version == v._version == 1
    np.testing.assert_allclose(_np(y), [2.0, 12.0, 18.0])
    (y * m.tensor([1.0, 10.0, 100.0], device=dev)).sum().backward()
    np.testing.assert_allclose(_np(x.grad), [2.0, 60.0, 600.0])


def test_view_history_is_replayed_from_the_base(m, dev):
    x = m.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True, device=dev)
    y = x * 1
    col = y.t()[0]  # a view of a view: x[:, 0]
    col.add_(m.tensor([10.0, 20.0], device=dev))
    np.testing.assert_allclose(_np(y), [[11.0, 2.0], [23.0, 4.0]])
    (col * 2).sum().backward()
    np.testing.assert_allclose(_np(x.grad), [[2.0, 0.0], [2.0, 0.0]])


def test_setitem_in_graph(m, dev):
    x = m.tensor([1.0, 2.0, 3.0], requires_grad=True, device=dev)
    w = m.tensor(5.0, requires_grad=True, device=dev)
    y = x * 1
    y[0] = w * 2
    y[y > 2.5] = 0.0
    (y * m.tensor([1.0, 2.0, 3.0], device=dev)).sum().backward()
    np.testing.assert_allclose(_np(y), [0.0, 2.0, 0.0])
    np.testing.assert_allclose(_np(x.grad), [0.0, 2.0, 0.0])
    np.testing.assert_allclose(_np(w.grad), 0.0)


def test_setitem_with_a_tensor_value_sends_gradient_to_it(m, dev):
    x = m.zeros(2, 3, device=dev)
    w = m.tensor([1.0, 2.0, 3.0], requires_grad=True, device=dev)
    x[1] = w * w
    assert x.requires_grad and not x.is_leaf
    x.sum().backward()
    np.testing.assert_allclose(_np(w.grad), 2 * _np(w))


@pytest.mark.parametrize("name,args", [("copy_", "src"), ("fill_", 2.0), ("zero_", None)])
def test_overwrites_stop_the_gradient_of_the_old_value(m, dev, name, args):
    x = m.tensor([1.0, 2.0], requires_grad=True, device=dev)
    src = m.tensor([5.0, 6.0], requires_grad=True, device=dev)
    y = x * 3
    getattr(y, name)(*([] if args is None else [src if args == "src" else args]))
    (y * 2).sum().backward()
    np.testing.assert_allclose(_np(x.grad), [0.0, 0.0])
    if args == "src":
        np.testing.assert_allclose(_np(src.grad), [2.0, 2.0])
    expected = {"copy_": [5.0, 6.0], "fill_": [2.0, 2.0], "zero_": [0.0, 0.0]}[name]
    np.testing.assert_allclose(_np(y), expected)


def test_leaf_errors(m, dev):
    x = m.tensor([1.0, 2.0], requires_grad=True, device=dev)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used"):
        x.add_(1)
    with pytest.raises(RuntimeError, match="a view of a leaf Variable that requires grad"):
        x[0] = 1.0
    with pytest.raises(RuntimeError, match="a view of a leaf Variable that requires grad"):
        x[0:1].mul_(2)
    np.testing.assert_allclose(_np(x), [1.0, 2.0])
    with m.no_grad():
        x.mul_(2)
        x[0] = 7.0
    np.testing.assert_allclose(_np(x), [7.0, 4.0])
    assert x._version == 2


def test_views_share_storage_and_version(m, dev):
    a = m.zeros(2, 3, device=dev)
    b = a.view(6)
    b[4] = 9.0
    t = a.t()
    t[0, 1] = 5.0
    r = a.reshape(3, 2)
    r.add_(1)
    np.testing.assert_allclose(_np(a), [[1.0, 1.0, 1.0], [6.0, 10.0, 1.0]])
    assert a._version == b._version == t._version == r._version == 3


def test_failed_inplace_changes_nothing(m, dev):
    i = m.tensor([1, 2, 3], device=dev)
    with pytest.raises(RuntimeError, match="can't be cast to the desired output type Long"):
        i.add_(1.5)
    f = m.tensor([1.0, 2.0, 3.0], device=dev)
    with pytest.raises(RuntimeError):
        f.add_(m.ones(2, device=dev))
    with pytest.raises(RuntimeError):
        f[0:2] = m.ones(3, device=dev)
    assert i.tolist() == [1, 2, 3] and f.tolist() == [1.0, 2.0, 3.0]
    assert i._version == 0 and f._version == 0


def test_partly_overlapping_inplace_writes_raise_as_in_torch(m, dev):
    # the result would depend on the order elements are written in (the CPU's loop and the
    # GPU's threads once disagreed): refused, nothing changed
    x = m.arange(12.0, device=dev)
    w = m.arange(12.0, device=dev, requires_grad=True) * 1  # through the graph's path too
    A = m.ones(3, 3, device=dev)
    for op in (lambda: x[4:].add_(x[:-4]), lambda: x[:8].mul_(x[2:10]),
               lambda: x[4:].copy_(x[:-4]), lambda: x[2:].sub_(x[:-2], alpha=2),
               lambda: w[1:].mul_(w[:-1]), lambda: x[:2].lerp_(end=x[1:3], weight=0.5),
               lambda: A.add_(A.t()),  # the same bytes in another layout
               lambda: x.view(3, 4).add_(x.view(4, 3).t())):
        with pytest.raises(RuntimeError, match="refer to a single memory location"):
            op()
    assert x.tolist() == list(range(12)) and x._version == 0
    assert w.tolist() == list(range(12))
    assert A.tolist() == [[1.0] * 3] * 3
    x.add_(x)  # the same elements: fine
    x.view(3, 4).add_(x.view(3, 4))
    x[::2].add_(x[1::2])  # layouts torch does not check either (disjoint here)
    want = np.arange(12.0) * 4
    want[::2] += want[1::2]
    np.testing.assert_allclose(_np(x), want)
    # ops that write a region or read a value are not elementwise over their sources
    v = m.arange(4.0, device=dev, requires_grad=True) * 1
    v[0] = v[1]
    v[2:] = v[:2]
    v.fill_(v[3])
    v.masked_fill_(v > 0, v[0] * 0)
    assert v.tolist() == [0.0] * 4


def test_no_grad_fast_path_broadcasts_and_counts(m, dev):
    a = m.ones(3, 4, device=dev)
    b = m.arange(4.0, device=dev)
    a.add_(b).mul_(2).sub_(1).div_(2)
    np.testing.assert_allclose(_np(a), ((1 + np.arange(4.0)) * 2 - 1) / 2 * np.ones((3, 1)))
    assert a._version == 4


def test_inplace_activation_methods(m, dev):
    x = m.tensor([-1.0, 0.5, 2.0], requires_grad=True, device=dev)
    y = x * 1
    y.mul_(3).relu_()
    y.sum().backward()
    np.testing.assert_allclose(_np(x.grad), 3.0 * (_np(x) > 0))


def test_result_saved_by_an_inplace_op_is_checked_like_torch(m, dev):
    x = m.tensor([-1.0, 0.5, 2.0], requires_grad=True, device=dev)
    y = x * 1
    y.relu_().exp_()  # relu's saved result lives in y, which exp_ then changes
    with pytest.raises(RuntimeError, match="is at version 2; expected version 1"):
        y.sum().backward()
