"""The graph and the backward engine: what gets recorded, how gradients flow and accumulate,
hooks, freeing of saved values, grad modes and higher-order gradients.

Each behaviour is pinned to torch's documented result; where torch is installed, a few tests
also build the same computation with torch and compare the structure or the values.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import warnings
import weakref

import numpy as np
import pytest
from conftest import CUDASIM
from on_device import J

import jitgrad
from jitgrad import autograd

dev = J  # creation functions on the suite's device


FREED_TEXT = "Trying to backward through the graph a second time"
NON_LEAF_TEXT = (
    "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its .grad "
    "attribute won't be populated during autograd.backward(). If you indeed want the .grad "
    "field to be populated for a non-leaf Tensor, use .retain_grad() on the non-leaf Tensor.")


def leaf(values, dtype=None):
    return dev.tensor(values, dtype=dtype, requires_grad=True)


def structure(fn, depth: int = 6):
    """The graph below grad_fn `fn` as nested (name, output_nr, children) tuples."""
    if fn is None:
        return None
    name = fn.name().replace("torch::autograd::", "")  # torch's C++ nodes carry a namespace
    if depth == 0:
        return name
    return (name, tuple((structure(c, depth - 1), nr) for c, nr in fn.next_functions))


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


# --------------------------------------------------------------------------- recording

def test_forward_is_eager():
    x = leaf([1.0, 2.0, 3.0])
    y = x * 2 + 1
    assert y.detach().cpu().numpy().tolist() == [3.0, 5.0, 7.0]
    assert y.shape == (3,)


def test_requires_grad_propagation():
    a = dev.tensor([1.0, 2.0])
    b = leaf([3.0, 4.0])
    assert not a.requires_grad
    assert not (a * 2).requires_grad
    assert (a * 2).grad_fn is None
    assert (a + b).requires_grad
    assert (b * a).sum().requires_grad
    assert not (a * a).exp().requires_grad
    # comparisons produce no gradient
    assert not (b > 1).requires_grad
    # integer casts are not differentiable
    assert not b.long().requires_grad
    assert b.double().requires_grad


def test_is_leaf():
    a = dev.tensor([1.0, 2.0])
    b = leaf([3.0, 4.0])
    assert a.is_leaf and b.is_leaf
    assert (a * 2).is_leaf  # a result that needs no grad is a leaf, as in torch
    c = b * 2
    assert not c.is_leaf
    assert c.detach().is_leaf
    with jitgrad.no_grad():
        d = b * 2
    assert d.is_leaf and not d.requires_grad


def test_grad_fn_names_and_next_functions():
    x = leaf([1.0, 2.0])
    y = x * 2
    assert y.grad_fn.name() == "MulBackward0"
    (acc, nr0), (none, nr1) = y.grad_fn.next_functions
    assert acc.name() == "AccumulateGrad"
    assert acc.variable is x
    assert (nr0, none, nr1) == (0, None, 0)

    w = leaf([3.0, 4.0])
    z = (x + w).sum()
    assert z.grad_fn.name() == "SumBackward0"
    (add, nr), = z.grad_fn.next_functions
    assert add.name() == "AddBackward0" and nr == 0
    names = [c.name() for c, _ in add.next_functions]
    assert names == ["AccumulateGrad", "AccumulateGrad"]
    assert add.next_functions[0][0].variable is x
    assert add.next_functions[1][0].variable is w

    # one leaf's accumulator is one node, shared by all its uses
    u = x * x
    assert u.grad_fn.next_functions[0][0] is u.grad_fn.next_functions[1][0]
    assert u.grad_fn.next_functions[0][0] is y.grad_fn.next_functions[0][0]


@pytest.mark.parametrize("name", ["mul_const", "add_leaves", "chain", "matmul", "views",
                                  "unary", "sub_div", "pow", "index", "reductions"])
def test_graph_structure_matches_torch(torch, name):
    def build(T):
        x = T.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
        w = T.tensor([[0.5, -1.0], [2.0, 1.5]], requires_grad=True)
        c = T.tensor([[1.0, 1.0], [1.0, 1.0]])
        if name == "mul_const":
            return x * 2
        if name == "add_leaves":
            return x + w
        if name == "chain":
            return ((x * w).sum(1) + 1).mean()
        if name == "matmul":
            return (x @ w).tanh().sum()
        if name == "views":
            return (x.reshape(4).unsqueeze(0).transpose(0, 1).squeeze(1).expand(2, 4).t()
                    .permute(1, 0)[1:, ::2])
        if name == "unary":
            return x.exp().log().sigmoid().relu().sqrt().abs().neg()
        if name == "sub_div":
            return (x - w) / (c + x) - 1
        if name == "pow":
            return x ** 2 + 2 ** x + x ** w
        if name == "index":
            return x[0] + x[:, 1] + x[[1, 0]][0]
        if name == "reductions":
            return x.sum() + x.mean(0).sum() + x.max() + x.max(1).values.sum()
        raise AssertionError(name)

    mine = build(jitgrad)
    theirs = build(torch)
    assert structure(mine.grad_fn) == structure(theirs.grad_fn)


# --------------------------------------------------------------------------- backward()

def test_backward_scalar_implicit_seed():
    x = leaf([1.0, 2.0, 3.0])
    (x * x).sum().backward()
    assert x.grad.tolist() == [2.0, 4.0, 6.0]


def test_backward_one_element_non_scalar_implicit_seed():
    x = leaf([3.0])
    (x * 2).backward()  # numel 1: allowed, as in torch
    assert x.grad.tolist() == [2.0]


def test_backward_implicit_seed_only_for_scalars():
    x = leaf([1.0, 2.0])
    y = x * 2
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar "
                                           "outputs"):
        y.backward()
    assert x.grad is None


def test_backward_with_gradient():
    x = leaf([1.0, 2.0, 3.0])
    y = x * x
    y.backward(dev.tensor([1.0, 0.5, -1.0]))
    assert x.grad.tolist() == [2.0, 2.0, -6.0]


def test_backward_gradient_of_other_dtype_is_cast():
    x = leaf([1.0, 2.0])
    y = x * 3
    y.backward(dev.tensor([1.0, 2.0], dtype=jitgrad.float64))
    assert x.grad.dtype == jitgrad.float32
    assert x.grad.tolist() == [3.0, 6.0]


def test_autograd_backward_function_several_roots():
    x = leaf([1.0, 2.0])
    a = (x * 2).sum()
    b = (x * x).sum()
    autograd.backward([a, b])
    assert x.grad.tolist() == [4.0, 6.0]
    y = leaf([1.0, 2.0])
    autograd.backward([y * 1, y * 3], [dev.ones(2), dev.tensor([1.0, -1.0])])
    assert y.grad.tolist() == [4.0, -2.0]


def test_backward_on_leaf_itself():
    x = leaf([1.0, 2.0])
    x.backward(dev.tensor([3.0, 4.0]))
    assert x.grad.tolist() == [3.0, 4.0]


def test_fan_out_sums():
    x = leaf(2.0)
    y = x * 3 + x * x + x
    y.backward()
    assert x.grad.item() == 3 + 4 + 1


def test_repeated_backward_accumulates():
    x = leaf([1.0, 2.0])
    for _ in range(3):
        (x * 5).sum().backward()
    assert x.grad.tolist() == [15.0, 15.0]


def test_fresh_grad_does_not_alias_other_leaves_or_user_gradient():
    a = leaf([1.0, 2.0])
    b = leaf([3.0, 4.0])
    g = dev.tensor([1.0, 1.0])
    (a + b).backward(g)
    assert a.grad.tolist() == b.grad.tolist() == [1.0, 1.0]
    a.grad.add_(10)
    assert b.grad.tolist() == [1.0, 1.0]
    assert g.tolist() == [1.0, 1.0]
    b.grad.mul_(3)
    assert a.grad.tolist() == [11.0, 11.0]
    assert g.tolist() == [1.0, 1.0]


def test_fresh_grad_does_not_alias_user_gradient_on_leaf_root():
    a = leaf([1.0, 2.0])
    g = dev.tensor([1.0, 1.0])
    a.backward(g)
    a.grad.add_(5)
    assert g.tolist() == [1.0, 1.0]
    assert a.grad.tolist() == [6.0, 6.0]
    # accumulating a second time must not write into g either
    h = dev.tensor([2.0, 2.0])
    a.backward(h)
    assert h.tolist() == [2.0, 2.0]
    assert a.grad.tolist() == [8.0, 8.0]


def test_fresh_grad_does_not_alias_through_views_or_clone():
    a = leaf([1.0, 2.0])
    b = leaf([[3.0, 4.0]])
    g = dev.tensor([1.0, 1.0])
    (a + b.reshape(2)).backward(g)
    a.grad.add_(1)
    assert b.grad.tolist() == [[1.0, 1.0]]
    assert g.tolist() == [1.0, 1.0]


def test_second_accumulation_does_not_alias_grad_of_other_leaf():
    a = leaf([1.0, 2.0])
    b = leaf([3.0, 4.0])
    (a + b).sum().backward()
    (a + b).sum().backward()
    a.grad.add_(100)
    assert b.grad.tolist() == [2.0, 2.0]


def test_user_assigned_grad_is_accumulated_into():
    a = leaf([1.0, 2.0])
    a.grad = dev.tensor([10.0, 20.0])
    (a * 2).sum().backward()
    assert a.grad.tolist() == [12.0, 22.0]


def test_non_leaf_grad_is_none_with_warning():
    x = leaf([1.0, 2.0])
    y = x * 2
    y.sum().backward()
    with pytest.warns(UserWarning) as rec:
        g = y.grad
    assert g is None
    assert any(NON_LEAF_TEXT in str(w.message) for w in rec)
    # leaves and retained non-leaves do not warn
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert x.grad is not None


def test_retain_grad():
    x = leaf([1.0, 2.0])
    y = x * 3
    y.retain_grad()
    assert y.retains_grad
    z = (y * y).sum()
    z.backward()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert y.grad.tolist() == [6.0, 12.0]
    assert x.grad.tolist() == [18.0, 36.0]
    assert not x.retains_grad  # leaves report False
    x.retain_grad()  # no-op on a leaf


def test_retain_grad_accumulates():
    x = leaf([1.0, 2.0])
    y = x * 3
    y.retain_grad()
    y.sum().backward(retain_graph=True)
    y.sum().backward()
    assert y.grad.tolist() == [2.0, 2.0]


def test_retain_grad_requires_grad():
    with pytest.raises(RuntimeError, match="can't retain_grad on Tensor that has "
                                           "requires_grad=False"):
        dev.tensor([1.0]).retain_grad()


# --------------------------------------------------------------------------- hooks

def test_leaf_hook_sees_and_replaces_gradient():
    x = leaf([1.0, 2.0])
    seen = []

    def hook(g):
        seen.append(g.tolist())
        return g * 10

    x.register_hook(hook)
    (x * 2).sum().backward()
    assert seen == [[2.0, 2.0]]
    assert x.grad.tolist() == [20.0, 20.0]


def test_non_leaf_hook_replaces_gradient_downstream():
    x = leaf([1.0, 2.0])
    y = x * 3
    seen = []
    y.register_hook(lambda g: seen.append(g.tolist()))
    y.register_hook(lambda g: g * 2)
    (y * y).sum().backward()
    assert seen == [[6.0, 12.0]]
    assert x.grad.tolist() == [36.0, 72.0]


def test_hooks_chain_in_registration_order():
    x = leaf(1.0)
    y = x * 1
    y.register_hook(lambda g: g + 1)   # 1 -> 2
    y.register_hook(lambda g: g * 10)  # 2 -> 20
    y.backward()
    assert x.grad.item() == 20.0


def test_hook_handle_remove():
    x = leaf([1.0, 2.0])
    calls = []
    h = x.register_hook(lambda g: calls.append(1) or g * 0)
    h.remove()
    h.remove()  # twice is harmless
    (x * 2).sum().backward()
    assert calls == []
    assert x.grad.tolist() == [2.0, 2.0]

    y = x * 2
    h2 = y.register_hook(lambda g: g * 100)
    h2.remove()
    y.sum().backward()
    assert x.grad.tolist() == [4.0, 4.0]


def test_hook_changing_size_or_dtype_raises():
    a = leaf([1.0, 2.0])
    (a * 2).sum().backward()

    def grow(g):
        return dev.ones(3)

    def widen(g):
        return g.double()

    h = a.register_hook(grow)
    with pytest.raises(RuntimeError, match="^hook 'grow' has changed the size of value$"):
        (a * 2).sum().backward()
    h.remove()
    assert a.grad.tolist() == [2.0, 2.0]  # unchanged by the failed pass
    y = a * 2
    y.register_hook(widen)
    with pytest.raises(RuntimeError, match=r"^hook 'widen' has changed the type of value \(was "
                                           r"torch\.FloatTensor got torch\.DoubleTensor\)$"):
        y.sum().backward()
    assert a.grad.tolist() == [2.0, 2.0]
    z = a * 2
    z.register_hook(grow)
    with pytest.raises(RuntimeError, match="^hook 'grow' has changed the size of value$"):
        z.sum().backward()


def test_hook_on_tensor_not_requiring_grad_raises():
    with pytest.raises(RuntimeError, match="cannot register a hook on a tensor that doesn't "
                                           "require gradient"):
        dev.tensor([1.0]).register_hook(lambda g: g)


def _hook_order_scenarios(T):
    """Three graphs whose hooks record the order in which gradients become final."""
    results = []

    order = []
    a, b, c = (T.tensor(1.0, requires_grad=True) for _ in range(3))
    for n, t in zip("abc", (a, b, c)):
        t.register_hook(lambda g, n=n: order.append(n))
    y1, y2, y3 = a * 2, b * 2, c * 2
    for n, t in zip(("y1", "y2", "y3"), (y1, y2, y3)):
        t.register_hook(lambda g, n=n: order.append(n))
    m1 = y1 * y2
    m2 = m1 * y3
    m1.register_hook(lambda g: order.append("m1"))
    m2.register_hook(lambda g: order.append("m2"))
    m2.backward()
    results.append(order)

    order = []
    x = T.tensor(2.0, requires_grad=True)
    y = x * x
    z = y * 3
    q = y + z
    for n, t in (("x", x), ("y", y), ("z", z), ("q", q)):
        t.register_hook(lambda g, n=n: order.append((n, g.item())))
    q.backward()
    results.append(order)

    order = []
    x = T.tensor([1.0, 2.0], requires_grad=True)
    x.register_hook(lambda g: order.append("x"))
    u, v, w = x.exp(), x.tanh(), x * 3
    for n, t in (("u", u), ("v", v), ("w", w)):
        t.register_hook(lambda g, n=n: order.append(n))
    (u + v + w).sum().backward()
    results.append(order)
    return results


def test_hook_order_pinned():
    # Of the nodes ready at once, the one created last runs first; a leaf's hook runs as soon
    # as its gradient is complete.
    assert _hook_order_scenarios(jitgrad) == [
        ["m2", "m1", "y3", "c", "y2", "b", "y1", "a"],
        [("q", 1.0), ("z", 1.0), ("y", 4.0), ("x", 16.0)],
        ["w", "v", "u", "x"],
    ]


def test_hook_order_matches_torch(torch):
    assert _hook_order_scenarios(jitgrad) == _hook_order_scenarios(torch)


def test_post_accumulate_grad_hook():
    x = leaf([1.0, 2.0])
    seen = []
    x.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.tolist()))
    (x * 2).sum().backward()
    (x * 2).sum().backward()
    assert seen == [[2.0, 2.0], [4.0, 4.0]]


# --------------------------------------------------------------------------- saved values

def test_second_backward_raises_after_free():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match=FREED_TEXT):
        y.backward()
    assert x.grad.tolist() == [2.0, 4.0]


def test_second_backward_through_exp_raises():
    x = leaf([1.0, 2.0])
    y = x.exp().sum()  # exp saves its output
    y.backward()
    with pytest.raises(RuntimeError, match=FREED_TEXT):
        y.backward()


def test_ops_saving_nothing_can_backward_twice():
    x = leaf([1.0, 2.0])
    y = x + 1
    y.sum().backward()
    y.sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]
    v = x.reshape(2, 1).t().squeeze(0) - 3  # views and subtraction save no tensors either
    v.sum().backward()
    v.sum().backward()
    assert x.grad.tolist() == [4.0, 4.0]


def test_retain_graph_keeps_saved_values():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad.tolist() == [6.0, 12.0]
    with pytest.raises(RuntimeError, match=FREED_TEXT):
        y.backward()


def test_autograd_grad_frees_graph():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    (g,) = autograd.grad(y, x)
    assert g.tolist() == [2.0, 4.0]
    with pytest.raises(RuntimeError, match=FREED_TEXT):
        autograd.grad(y, x)
    z = (x * x).sum()
    autograd.grad(z, x, retain_graph=True)
    (g2,) = autograd.grad(z, x)
    assert g2.tolist() == [2.0, 4.0]
    assert x.grad is None  # autograd.grad never touches .grad


def test_partial_graph_second_backward():
    # Backward through a shared prefix a second time fails once freed, like torch
    x = leaf([1.0, 2.0])
    h = x * x
    a = h.sum()
    b = (h * 2).sum()
    a.backward()
    with pytest.raises(RuntimeError, match=FREED_TEXT):
        b.backward()


# --------------------------------------------------------------------------- autograd.grad

def test_grad_basic_and_grad_outputs():
    x = leaf([1.0, 2.0])
    w = leaf([3.0, 4.0])
    y = x * w
    gx, gw = autograd.grad(y, (x, w), grad_outputs=dev.tensor([1.0, 2.0]))
    assert gx.tolist() == [3.0, 8.0]
    assert gw.tolist() == [1.0, 4.0]
    assert x.grad is None and w.grad is None
    assert not gx.requires_grad


def test_grad_several_outputs():
    x = leaf([1.0, 2.0])
    a = x * 2
    b = x * x
    (g,) = autograd.grad([a.sum(), b.sum()], [x])
    assert g.tolist() == [4.0, 6.0]


def test_grad_with_respect_to_non_leaf():
    x = leaf([1.0, 2.0])
    h = x * 3
    y = (h * h).sum()
    (gh,) = autograd.grad(y, h)
    assert gh.tolist() == [6.0, 12.0]


def test_grad_allow_unused():
    x = leaf([1.0])
    u = leaf([2.0])
    y = (x * 2).sum()
    with pytest.raises(RuntimeError) as ei:
        autograd.grad(y, [x, u], retain_graph=True)
    assert str(ei.value) == ("The differentiated Tensor at index 1 appears to not have been "
                             "used in the graph. Set allow_unused=True if this is the desired "
                             "behavior.")
    gx, gu = autograd.grad(y, [x, u], allow_unused=True)
    assert gx.tolist() == [2.0]
    assert gu is None


def test_grad_materialize_grads():
    x = leaf([1.0])
    u = leaf([2.0, 3.0])
    gx, gu = autograd.grad((x * 2).sum(), [x, u], materialize_grads=True)
    assert gu.tolist() == [0.0, 0.0]


def test_grad_input_not_requiring_grad():
    x = leaf([1.0])
    c = dev.tensor([1.0])
    y = (x * c).sum()
    with pytest.raises(RuntimeError, match="One of the differentiated Tensors does not "
                                           "require grad"):
        autograd.grad(y, [x, c])


def test_grad_of_output_needing_no_grad():
    c = dev.tensor([1.0])
    x = leaf([1.0])
    with pytest.raises(RuntimeError, match="element 0 of tensors does not require grad and "
                                           "does not have a grad_fn"):
        autograd.grad(c.sum(), x)


def test_grad_does_not_accumulate_into_other_leaves():
    x = leaf([1.0])
    w = leaf([2.0])
    autograd.grad((x * w).sum(), x)
    assert w.grad is None and x.grad is None


# --------------------------------------------------------------------------- backward(inputs=)

def test_backward_inputs_accumulates_only_there():
    x = leaf([1.0, 2.0])
    w = leaf([3.0, 4.0])
    (x * w).sum().backward(inputs=[x])
    assert x.grad.tolist() == [3.0, 4.0]
    assert w.grad is None
    (x * w).sum().backward(inputs=w)
    assert w.grad.tolist() == [1.0, 2.0]
    assert x.grad.tolist() == [3.0, 4.0]


def test_backward_inputs_non_leaf():
    x = leaf([1.0, 2.0])
    h = x * 2
    (h * h).sum().backward(inputs=[h])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert h.grad.tolist() == [4.0, 8.0]
    assert x.grad is None


def test_backward_inputs_empty_raises():
    x = leaf([1.0])
    with pytest.raises(RuntimeError, match="cannot be empty"):
        (x * 2).sum().backward(inputs=[])


# --------------------------------------------------------------------------- grad modes

def test_no_grad_context():
    x = leaf([1.0])
    assert jitgrad.is_grad_enabled()
    with jitgrad.no_grad():
        assert not jitgrad.is_grad_enabled()
        y = x * 2
    assert jitgrad.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None


def test_grad_mode_decorators():
    x = leaf([1.0])

    @jitgrad.no_grad()
    def called():
        return x * 2, jitgrad.is_grad_enabled()

    @jitgrad.no_grad
    def bare():
        return x * 2

    @jitgrad.enable_grad()
    def enabled():
        return x * 2

    @jitgrad.enable_grad
    def enabled_bare():
        return x * 2

    @jitgrad.set_grad_enabled(False)
    def disabled():
        return x * 2

    assert called.__name__ == "called"
    y, mode = called()
    assert not y.requires_grad and mode is False
    assert not bare().requires_grad
    assert jitgrad.is_grad_enabled()  # decorating did not change the mode
    with jitgrad.no_grad():
        assert enabled().requires_grad
        assert enabled_bare().requires_grad
        assert not jitgrad.is_grad_enabled()
    assert not disabled().requires_grad
    assert jitgrad.is_grad_enabled()


def test_grad_mode_decorators_on_generators():
    x = leaf([1.0])

    @jitgrad.no_grad()
    def gen():
        for _ in range(2):
            sent = yield (x * 2).requires_grad, jitgrad.is_grad_enabled()
            assert sent in (None, "hello")
        return "done"

    @jitgrad.enable_grad
    def gen_enabled():
        yield jitgrad.is_grad_enabled()

    # each step runs inside the mode, while the caller's mode stays as it was
    assert list(gen()) == [(False, False), (False, False)]
    g = gen()
    assert next(g) == (False, False)
    assert jitgrad.is_grad_enabled()
    assert g.send("hello") == (False, False)
    with pytest.raises(StopIteration) as ei:
        next(g)
    assert ei.value.value == "done"
    with jitgrad.no_grad():
        it = gen_enabled()
    assert next(it) is True
    with jitgrad.no_grad():
        assert list(gen_enabled()) == [True]
        assert not jitgrad.is_grad_enabled()


def test_grad_mode_nesting():
    x = leaf([1.0])
    with jitgrad.no_grad():
        with jitgrad.enable_grad():
            assert (x * 2).requires_grad
            with jitgrad.set_grad_enabled(False):
                assert not (x * 2).requires_grad
            assert jitgrad.is_grad_enabled()
        assert not jitgrad.is_grad_enabled()
        with jitgrad.set_grad_enabled(True):
            assert (x * 2).requires_grad
        assert not jitgrad.is_grad_enabled()
    assert jitgrad.is_grad_enabled()


def test_grad_mode_restored_after_exception():
    with pytest.raises(ValueError):
        with jitgrad.no_grad():
            raise ValueError
    assert jitgrad.is_grad_enabled()


def test_set_grad_enabled_as_function():
    try:
        jitgrad.set_grad_enabled(False)
        assert not jitgrad.is_grad_enabled()
        assert not (leaf([1.0]) * 2).requires_grad
    finally:
        jitgrad.set_grad_enabled(True)
    assert jitgrad.is_grad_enabled()


def test_grad_mode_is_per_thread():
    x = leaf([1.0])
    inside = threading.Event()
    release = threading.Event()
    result = {}

    def worker():
        with jitgrad.no_grad():
            result["worker_mode"] = jitgrad.is_grad_enabled()
            inside.set()
            release.wait(10)
            result["worker_rg"] = (x * 2).requires_grad

    th = threading.Thread(target=worker)
    th.start()
    assert inside.wait(10)
    # the other thread is inside no_grad; this one is not affected
    assert jitgrad.is_grad_enabled()
    assert (x * 2).requires_grad
    release.set()
    th.join(10)
    assert result == {"worker_mode": False, "worker_rg": False}

    # and a thread starts with grad enabled even when its creator disabled it
    seen = {}
    with jitgrad.no_grad():
        t2 = threading.Thread(target=lambda: seen.setdefault("mode", jitgrad.is_grad_enabled()))
        t2.start()
        t2.join(10)
    assert seen["mode"] is True


def test_inference_mode():
    x = leaf([1.0])
    assert not autograd.is_inference_mode_enabled()
    with jitgrad.inference_mode():
        assert not jitgrad.is_grad_enabled()
        assert autograd.is_inference_mode_enabled()
        y = x * 2
    assert not y.requires_grad
    assert jitgrad.is_grad_enabled()
    assert not autograd.is_inference_mode_enabled()
    with jitgrad.inference_mode(False):
        assert (x * 2).requires_grad

    @jitgrad.inference_mode()
    def f():
        return x * 2

    @jitgrad.inference_mode
    def g():
        return x * 2

    assert not f().requires_grad
    assert not g().requires_grad


# --------------------------------------------------------------------------- detach & co.

def test_detach_shares_storage():
    x = leaf([1.0, 2.0])
    y = x * 2
    d = y.detach()
    assert d.is_leaf and not d.requires_grad and d.grad_fn is None
    d[0] = 100.0
    assert y.detach().tolist() == [100.0, 4.0]


def test_detach_in_place():
    x = leaf([1.0, 2.0])
    y = x * 2
    assert y.detach_() is y
    assert y.is_leaf and not y.requires_grad and y.grad_fn is None


def test_requires_grad_():
    x = dev.tensor([1.0, 2.0])
    assert x.requires_grad_() is x
    assert x.requires_grad
    x.requires_grad_(False)
    assert not x.requires_grad
    y = leaf([1.0]) * 2
    with pytest.raises(RuntimeError, match="you can only change requires_grad flags of leaf "
                                           "variables"):
        y.requires_grad_(False)


def test_data_shares_storage_and_is_outside_graph():
    x = leaf([1.0, 2.0])
    d = x.data
    assert not d.requires_grad and d.is_leaf
    d[0] = 7.0  # allowed: .data is not tracked
    assert x.detach().tolist() == [7.0, 2.0]
    x.data = dev.tensor([5.0, 6.0])
    assert x.requires_grad
    assert x.detach().tolist() == [5.0, 6.0]


def test_zero_():
    x = dev.tensor([1.0, 2.0])
    assert x.zero_() is x
    assert x.tolist() == [0.0, 0.0]
    w = leaf([1.0, 2.0])
    (w * 3).sum().backward()
    w.grad.zero_()
    assert w.grad.tolist() == [0.0, 0.0]
    (w * 3).sum().backward()
    assert w.grad.tolist() == [3.0, 3.0]
    with jitgrad.no_grad():
        w.zero_()
    assert w.detach().tolist() == [0.0, 0.0]


# --------------------------------------------------------------------------- create_graph

def test_third_derivative_of_cube():
    x = leaf(2.0)
    y = x ** 3
    (g1,) = autograd.grad(y, x, create_graph=True)
    assert g1.item() == 12.0 and g1.requires_grad
    (g2,) = autograd.grad(g1, x, create_graph=True)
    assert g2.item() == 12.0
    (g3,) = autograd.grad(g2, x)
    assert g3.item() == 6.0


def test_backward_create_graph_makes_grad_differentiable():
    x = leaf(3.0)
    y = x ** 3
    y.backward(create_graph=True)
    assert x.grad.requires_grad
    assert x.grad.item() == 27.0
    (gg,) = autograd.grad(x.grad, x)
    assert gg.item() == 18.0


def _second_derivatives(T, xv):
    """d/dx of sum(d f/dx) for several f, via create_graph."""
    out = {}
    fns = {
        "tanh": lambda x: x.tanh(),
        "sigmoid": lambda x: x.sigmoid(),
        "exp": lambda x: x.exp(),
        "mul": lambda x: x * x * x,
    }
    for name, f in fns.items():
        x = T.tensor(xv, dtype=T.float64, requires_grad=True)
        (g,) = T.autograd.grad(f(x).sum(), x, create_graph=True)
        (gg,) = T.autograd.grad(g.sum(), x)
        out[name] = (g.detach().cpu().numpy().copy(), gg.cpu().numpy().copy())
    return out


def test_gradient_of_gradient_pinned():
    xv = [-1.0, 0.25, 2.0]
    x = np.array(xv)
    res = _second_derivatives(jitgrad, xv)
    t = np.tanh(x)
    s = 1 / (1 + np.exp(-x))
    expected = {
        "tanh": (1 - t ** 2, -2 * t * (1 - t ** 2)),
        "sigmoid": (s * (1 - s), s * (1 - s) * (1 - 2 * s)),
        "exp": (np.exp(x), np.exp(x)),
        "mul": (3 * x ** 2, 6 * x),
    }
    for name, (g, gg) in expected.items():
        np.testing.assert_allclose(res[name][0], g, rtol=1e-12, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(res[name][1], gg, rtol=1e-12, atol=1e-12, err_msg=name)


def test_gradient_of_gradient_matches_torch(torch):
    xv = [-1.5, 0.3, 0.9, 2.5]
    mine = _second_derivatives(jitgrad, xv)
    theirs = _second_derivatives(torch, xv)
    for name in mine:
        np.testing.assert_allclose(mine[name][0], theirs[name][0], rtol=1e-12, err_msg=name)
        np.testing.assert_allclose(mine[name][1], theirs[name][1], rtol=1e-12, err_msg=name)


def test_gradient_of_gradient_matmul():
    # f(A) = sum((A @ B) ** 2); df/dA = 2 (A B) B^T; d/dB of sum(df/dA * V) ...
    rng = np.random.default_rng(0)
    av = rng.standard_normal((3, 4))
    bv = rng.standard_normal((4, 2))
    vv = rng.standard_normal((3, 4))
    A = dev.tensor(av, requires_grad=True)
    B = dev.tensor(bv, requires_grad=True)
    y = ((A @ B) * (A @ B)).sum()
    (gA,) = autograd.grad(y, A, create_graph=True)
    np.testing.assert_allclose(gA.detach().cpu().numpy(), 2 * av @ bv @ bv.T, rtol=1e-12)
    # h(A, B) = <gA, V> = 2 tr(V^T A B B^T)
    h = (gA * dev.tensor(vv)).sum()
    dA, dB = autograd.grad(h, [A, B])
    np.testing.assert_allclose(dA.cpu().numpy(), 2 * vv @ bv @ bv.T, rtol=1e-12)
    np.testing.assert_allclose(dB.cpu().numpy(), 2 * (av.T @ vv @ bv + vv.T @ av @ bv), rtol=1e-12)


def test_gradient_of_gradient_matmul_matches_torch(torch, rng):
    av, bv = rng.standard_normal((3, 4)), rng.standard_normal((4, 5))

    def run(T):
        A = T.tensor(av, requires_grad=True)
        B = T.tensor(bv, requires_grad=True)
        y = (A @ B).tanh().sum()
        (gA,) = T.autograd.grad(y, A, create_graph=True)
        dA, dB = T.autograd.grad((gA * gA).sum(), [A, B])
        return dA.cpu().numpy(), dB.cpu().numpy()

    for m, t in zip(run(jitgrad), run(torch)):
        np.testing.assert_allclose(m, t, rtol=1e-10, atol=1e-12)


def _layer_grads(x, w, b, act, create_graph):
    """Backward of sum(act(linear(x, w, b)) * weights), into the leaves' .grad."""
    F = jitgrad.nn.functional
    h = F.linear(x, w, b)
    y = {"relu": F.relu, "tanh": jitgrad.tanh, "sigmoid": jitgrad.sigmoid}[act](h)
    loss = (y * dev.arange(y.numel(), dtype=y.dtype).reshape(y.shape).cos()).sum()
    loss.backward(create_graph=create_graph)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_rows_of_a_layer_match_the_vjps(dtype, monkeypatch, rng):
    """addmm (a linear layer), its weight's transpose and relu/tanh/sigmoid have fused backward
    rows, used when the backward records no graph: the gradients equal those of the VJPs
    (create_graph=True takes them), for inputs that need a gradient or not, transposed
    inputs, a 3-D input, and biases of one row, of a row vector, of the whole output or
    none. The fused rows must be the ones taken, and the weight's gradient contiguous."""
    from jitgrad import derivatives as D

    taken = []
    real = D.ADDMM.fused
    monkeypatch.setattr(D.ADDMM, "fused", lambda *a: taken.append(1) or real(*a))
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == "float32" else {"rtol": 1e-12}
    cases = [(x_grad, x_t, bias, act, fold)
             for x_grad in (False, True) for x_t in (False, True)
             for bias in ((5,), (1, 5), (4, 5), None) for act in ("relu", "tanh", "sigmoid")
             for fold in (False,)] + [(True, False, (5,), "relu", True)]
    if CUDASIM:  # (kernels run as Python there: a few cases, which together cover each
        cases = cases[(dtype == "float64") * 7::14]  # branch in the two dtypes)
    for x_grad, x_t, bias, act, fold in cases:
        xv = rng.standard_normal((2, 2, 3) if fold else (3, 4) if x_t else (4, 3))
        wv = rng.standard_normal((5, 3))
        bv = None if bias is None else rng.standard_normal(bias)
        got = []
        for create_graph in (False, True):
            x = dev.tensor(xv, dtype=getattr(jitgrad, dtype), requires_grad=x_grad)
            xx = x.t() if x_t else x
            w = dev.tensor(wv, dtype=getattr(jitgrad, dtype), requires_grad=True)
            b = None if bv is None else dev.tensor(bv, dtype=getattr(jitgrad, dtype),
                                                    requires_grad=True)
            _layer_grads(xx, w, b, act, create_graph)
            got.append([None if t is None or t.grad is None else t.grad.detach().cpu().numpy()
                        for t in (x, w, b)])
            if not create_graph:
                assert w.grad._data.flags.c_contiguous
        case = f"x_grad={x_grad} x_t={x_t} bias={bias} {act} fold={fold}"
        for f, s in zip(*got):
            assert (f is None) == (s is None), case
            if f is not None:
                np.testing.assert_allclose(f, s, err_msg=case, **tol)
    assert len(taken) == sum(bias is not None for _, _, bias, _, _ in cases)  # (no bias: mm)


# --------------------------------------------------------------------------- memory

def test_dropping_loss_frees_every_node():
    # run once first: a kernel's first compile may leave cycles of its own behind
    h = leaf([1.0, 2.0, 3.0]) * leaf([0.5, 0.5, 0.5])
    (h.exp().tanh() * h).sum()
    gc.collect()
    gc.disable()
    try:
        x = leaf([1.0, 2.0, 3.0])
        w = leaf([0.5, 0.5, 0.5])
        h = x * w
        e = h.exp()  # saves its output
        t = e.tanh()  # saves its output
        loss = (t * h).sum()
        refs = [weakref.ref(o) for o in (h, e, t, loss)]
        nodes = {}
        stack = [loss.grad_fn]
        while stack:
            n = stack.pop()
            if n is None or n.name() == "AccumulateGrad" or id(n) in nodes:
                continue
            nodes[id(n)] = weakref.ref(n)
            stack.extend(c for c, _ in n.next_functions)
        nodes = list(nodes.values())
        assert len(nodes) == 5  # Mul, Exp, Tanh, Mul, Sum
        del h, e, t, loss, n, stack
        assert all(r() is None for r in refs)
        assert all(r() is None for r in nodes)
    finally:
        gc.enable()


def test_backward_then_drop_frees_everything():
    y = leaf([1.0, 2.0]).sigmoid()  # compiles first (see above)
    (y * y).sum().backward()
    gc.collect()
    gc.disable()
    try:
        x = leaf([1.0, 2.0])
        y = x.sigmoid()
        z = (y * y).sum()
        z.backward(retain_graph=True)
        refs = [weakref.ref(z.grad_fn), weakref.ref(y.grad_fn), weakref.ref(y), weakref.ref(z)]
        acc = weakref.ref(y.grad_fn.next_functions[0][0])
        del y, z
        assert all(r() is None for r in refs)
        # the accumulator goes with the graph too; the leaf and its grad stay
        assert acc() is None
        assert x.grad is not None
    finally:
        gc.enable()


def test_long_chain_does_not_recurse():
    # far deeper than Python's recursion limit; the simulator runs each op as Python
    # threads, so there the chain is 5 times the limit (100 s for the full length)
    n = 100_000 if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1" else \
        5 * sys.getrecursionlimit()
    x = leaf(1.0)
    y = x
    for _ in range(n):
        y = y * 1.0
    y.backward()
    assert x.grad.item() == 1.0
    gc.collect()
    gc.disable()
    try:
        ref = weakref.ref(y.grad_fn)
        del y  # freeing a long chain must not hit the recursion limit either
        assert ref() is None
    finally:
        gc.enable()


# --------------------------------------------------------------------------- shapes & dtypes

def test_broadcast_gradients_are_reduced():
    a = dev.ones(3, 1, requires_grad=True)
    b = dev.ones(4, requires_grad=True)
    c = a + b
    assert c.shape == (3, 4)
    c.sum().backward()
    assert a.grad.shape == (3, 1) and b.grad.shape == (4,)
    assert a.grad.tolist() == [[4.0], [4.0], [4.0]]
    assert b.grad.tolist() == [3.0] * 4


def test_broadcast_gradients_mul_and_scalar_tensor():
    a = dev.tensor([[1.0], [2.0]], requires_grad=True)
    b = dev.tensor([[10.0, 20.0, 30.0]], requires_grad=True)
    s = dev.tensor(2.0, requires_grad=True)
    (a * b * s).sum().backward()
    assert a.grad.tolist() == [[120.0], [120.0]]
    assert b.grad.tolist() == [[6.0, 6.0, 6.0]]
    assert s.grad.shape == () and s.grad.item() == 180.0


def test_gradient_dtype_equals_input_dtype():
    a = dev.tensor([1.0, 2.0], requires_grad=True)
    s = dev.tensor(3.0, dtype=jitgrad.float64, requires_grad=True)
    out = a * s
    assert out.dtype == jitgrad.float32  # a 0-d tensor does not promote a dimensioned one
    out.sum().backward()
    assert a.grad.dtype == jitgrad.float32
    assert s.grad.dtype == jitgrad.float64
    assert a.grad.tolist() == [3.0, 3.0]
    assert s.grad.item() == 3.0


def test_gradient_dtype_through_cast():
    a = dev.tensor([1.0, 2.0], requires_grad=True)
    b = a.double() * 2
    assert b.dtype == jitgrad.float64
    b.sum().backward()
    assert a.grad.dtype == jitgrad.float32
    assert a.grad.tolist() == [2.0, 2.0]


def test_mixed_dtype_promotion_gradients():
    a = dev.tensor([1.0, 2.0], requires_grad=True)
    b = dev.tensor([3.0, 4.0], dtype=jitgrad.float64, requires_grad=True)
    c = a * b
    assert c.dtype == jitgrad.float64
    c.sum().backward()
    assert a.grad.dtype == jitgrad.float32 and b.grad.dtype == jitgrad.float64
    assert a.grad.tolist() == [3.0, 4.0] and b.grad.tolist() == [1.0, 2.0]


# --------------------------------------------------------------------------- failing backward

def test_failing_hook_leaves_grads_unchanged():
    a = leaf([1.0, 2.0])
    b = leaf([3.0, 4.0])
    (a * b).sum().backward()
    before = (a.grad.tolist(), b.grad.tolist())

    c = (a * b)

    def boom(g):
        raise ValueError("hook failed")

    h = c.register_hook(boom)
    loss = (c * 2).sum()
    with pytest.raises(ValueError, match="hook failed"):
        loss.backward()
    assert (a.grad.tolist(), b.grad.tolist()) == before
    h.remove()


def test_failing_leaf_hook_leaves_other_grads_unchanged():
    a = leaf([1.0, 2.0])
    b = leaf([3.0, 4.0])
    calls = []
    b.register_hook(lambda g: calls.append(1))
    a.register_hook(lambda g: (_ for _ in ()).throw(ValueError("late failure")))
    with pytest.raises(ValueError, match="late failure"):
        (a * b).sum().backward()
    assert a.grad is None and b.grad is None


def test_backward_adopts_fresh_gradient_buffers_instead_of_copying(monkeypatch):
    """A gradient nobody else holds becomes .grad as is; a shared one is copied."""
    from jitgrad import _ops

    copies = []
    real_clone = _ops.clone
    monkeypatch.setattr(_ops, "clone", lambda x: copies.append(x) or real_clone(x))
    monkeypatch.setattr(jitgrad.Tensor, "clone", lambda x, memory_format=None: _ops.clone(x))
    a = jitgrad.ones(8, 8, requires_grad=True)
    b = jitgrad.ones(8, 8, requires_grad=True)
    (a @ b).backward(jitgrad.ones(8, 8))
    assert copies == []  # both matmul gradients adopted
    x = jitgrad.ones(8, requires_grad=True)
    (x * 2.0).sum().backward()  # a chain: each node hands its gradient to the next
    assert copies == []
    c = jitgrad.ones(3, requires_grad=True)
    d = jitgrad.ones(3, requires_grad=True)
    (c + d).backward(jitgrad.ones(3))  # one gradient object reaches both leaves
    assert len(copies) >= 1
    c.grad.add_(1)
    assert d.grad.tolist() == [1.0, 1.0, 1.0]
