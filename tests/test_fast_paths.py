"""The small-tensor fast paths give the same results as the general ones.

Arithmetic on small same-shape CPU operands calls its flat kernel directly, mul and add and
mean have fused backward rows (used when the backward pass records no graph), and the engine
hands a gradient straight to a node that has one consumer and sums leaf gradients in place.
Each test here drives a fast path with layouts and dtypes that could trip it (views with
strides, read-only operands, 0-d and n-D tensors, integer dtypes) and checks the values against
numpy, and the gradients against the same computation with ``create_graph=True``, which takes
the general VJPs, or against a closed form.
"""

from __future__ import annotations

import numpy as np
import pytest

import jitgrad

OPS = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "maximum": np.maximum,
       "minimum": np.minimum}


def _layouts(rng, dtype):
    """(name, a, b): numpy operand pairs of one shape in layouts the fast path must handle."""
    def draw(*shape):
        v = rng.standard_normal(shape) * 4
        return v.astype(dtype) if np.dtype(dtype).kind == "f" else np.rint(v).astype(dtype)

    base = draw(8, 6)
    ro = draw(5)
    ro.flags.writeable = False
    return [
        ("1-d", draw(5), draw(5)),
        ("0-d", draw(), draw()),
        ("2-d", draw(3, 4), draw(3, 4)),
        ("strided 1-d", base[::2, 0], base[1::2, 1]),
        ("transposed 2-d", base.T, draw(6, 8)),
        ("read-only", ro, draw(5)),
        ("stride-0", np.broadcast_to(draw(1), (5,)), draw(5)),
    ]


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "int32"])
@pytest.mark.parametrize("name", sorted(OPS))
def test_arithmetic_fast_path_values(name, dtype, rng):
    fn = getattr(jitgrad, name)
    for case, a, b in _layouts(rng, dtype):
        for _ in range(2):  # the first call may take the general path (it builds the kernel)
            got = fn(jitgrad.tensor(a), jitgrad.tensor(b))
            want = OPS[name](a, b)
            assert got.dtype == jitgrad.tensor(want).dtype, case
            np.testing.assert_array_equal(got.numpy(), want, err_msg=case)
        assert not np.shares_memory(got.numpy(), a), case


def _grads(f, *xs, create_graph):
    leaves = [jitgrad.tensor(x, requires_grad=True) for x in xs]
    out = f(*leaves)
    out.backward(jitgrad.ones_like(out), create_graph=create_graph)
    return [t.grad.detach().numpy().copy() for t in leaves]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_backward_rows_match_the_vjps(dtype, rng):
    """mul, add and mean's fused rows against their VJPs (create_graph=True skips the fused
    rows), on every layout of _layouts, through chains that reuse leaves."""
    for case, a, b in _layouts(rng, dtype):
        a, b = np.array(a), np.array(b)  # leaves own writable copies

        def chain(x, y):
            z = x
            for _ in range(5):
                z = z * y + x
            return z.mean() if z.ndim else z

        fast = _grads(chain, a, b, create_graph=False)
        slow = _grads(chain, a, b, create_graph=True)
        for f, s in zip(fast, slow):
            np.testing.assert_allclose(f, s, rtol=1e-6, err_msg=case)


def test_mul_fused_backward_for_one_input(rng):
    """Only the input that requires grad gets one; the other edge leads nowhere."""
    a = rng.standard_normal(6)
    b = rng.standard_normal(6)
    x = jitgrad.tensor(a, requires_grad=True)
    c = jitgrad.tensor(b)
    for _ in range(2):
        x.grad = None
        (x * c).backward(jitgrad.ones(6, dtype=jitgrad.float64))
        np.testing.assert_array_equal(x.grad.numpy(), b)
    y = jitgrad.tensor(b, requires_grad=True)
    (jitgrad.tensor(a) * y).backward(jitgrad.ones(6, dtype=jitgrad.float64))
    np.testing.assert_array_equal(y.grad.numpy(), a)


def test_leaf_accumulation_in_place_does_not_touch_shared_gradients(rng):
    """The engine sums a leaf's gradients in place only into buffers nothing else holds: the
    seed the caller passed, and a gradient a hook kept, stay as they were."""
    a = rng.standard_normal(4)
    x = jitgrad.tensor(a, requires_grad=True)
    seed = jitgrad.tensor(rng.standard_normal(4))
    seed_before = seed.numpy().copy()
    kept = []
    y = x + 0.0
    y.register_hook(lambda g: kept.append(g) or None)
    z = y + x + x  # x receives the seed itself three times
    z.backward(seed)
    np.testing.assert_allclose(x.grad.numpy(), 3 * seed_before)
    np.testing.assert_array_equal(seed.numpy(), seed_before)
    np.testing.assert_array_equal(kept[0].numpy(), seed_before)
    assert not np.shares_memory(x.grad.numpy(), seed.numpy())


def test_chain_gradients_against_a_closed_form(rng):
    """The benchmark's per-op chain, y = (y * a + b) 50 times: d/dx = prod(a) elementwise and
    the gradients of a and b summed over 50 uses each, against numpy."""
    x0 = rng.standard_normal(4)
    a0 = rng.uniform(0.9, 1.1, 4)
    b0 = 0.1 * rng.standard_normal(4)
    x, a, b = (jitgrad.tensor(v, requires_grad=True) for v in (x0, a0, b0))
    for _ in range(2):  # twice: the second pass starts from existing .grad
        y = x
        for _ in range(50):
            y = y * a + b
        y.backward(jitgrad.ones(4, dtype=jitgrad.float64))
    ys = [x0]
    for _ in range(50):
        ys.append(ys[-1] * a0 + b0)
    ga = sum(ys[i] * a0 ** (49 - i) for i in range(50))
    gb = sum(a0 ** (49 - i) for i in range(50))
    np.testing.assert_allclose(x.grad.numpy(), 2 * a0 ** 50, rtol=1e-12)
    np.testing.assert_allclose(a.grad.numpy(), 2 * ga, rtol=1e-12)
    np.testing.assert_allclose(b.grad.numpy(), 2 * gb, rtol=1e-12)


def test_direct_handoff_keeps_the_order_of_a_branching_graph():
    """Nodes run in decreasing sequence order even when one of them got its gradient handed
    over directly: a tensor hook on each branch sees the branches in torch's order."""
    x = jitgrad.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    p = x * 2.0
    q = x * 3.0
    p.register_hook(lambda g: seen.append("p"))
    q.register_hook(lambda g: seen.append("q"))
    (p * q).sum().backward()
    assert seen == ["q", "p"]  # q was recorded last, so it runs first
    np.testing.assert_allclose(x.grad.numpy(), 12 * np.array([1.0, 2.0]))


def test_sum_to_of_a_broadcast_gradient(rng):
    """The stride-0 shortcut of sum_to (an expanded gradient summed over its broadcast dims)
    against numpy, and against the general reduction that create_graph=True takes."""
    a0 = rng.standard_normal((7, 5))
    b0 = rng.standard_normal(5)
    c0 = rng.standard_normal((7, 1))
    fast = _grads(lambda a, b, c: (a + b + c).mean(), a0, b0, c0, create_graph=False)
    slow = _grads(lambda a, b, c: (a + b + c).mean(), a0, b0, c0, create_graph=True)
    np.testing.assert_allclose(fast[0], np.full((7, 5), 1 / 35))
    np.testing.assert_allclose(fast[1], np.full(5, 7 / 35))
    np.testing.assert_allclose(fast[2], np.full((7, 1), 5 / 35))
    for f, s in zip(fast, slow):
        np.testing.assert_allclose(f, s, rtol=1e-12)


def test_bool_operands():
    """bool + bool and bool * bool stay bool (logical or / and) on both paths; a bool
    subtraction raises torch's error every time, fast path or not."""
    a = np.array([True, False, True, False])
    b = np.array([True, True, False, False])
    for _ in range(2):
        np.testing.assert_array_equal((jitgrad.tensor(a) + jitgrad.tensor(b)).numpy(), a | b)
        np.testing.assert_array_equal((jitgrad.tensor(a) * jitgrad.tensor(b)).numpy(), a & b)
        with pytest.raises(RuntimeError, match="Subtraction, the `-` operator, with two bool"):
            jitgrad.tensor(a) - jitgrad.tensor(b)
        with pytest.raises(RuntimeError, match="Subtraction, the `-` operator, with two bool"):
            jitgrad.tensor(a).sub_(jitgrad.tensor(b))  # (it must not build a bool kernel)
        with pytest.raises(RuntimeError, match="Subtraction, the `-` operator, with two bool"):
            jitgrad.tensor(a).sub(jitgrad.tensor(b), alpha=2)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "uint8", "bool"])
def test_copy_of_one_broadcast_value_is_a_fill(dtype, rng):
    """cpu.copy of a single value broadcast over a large shape (the path of an expanded
    gradient becoming .grad) fills a fresh contiguous array with exactly that value."""
    from jitgrad.kernels import cpu

    v = np.array(rng.integers(0, 2) if dtype == "bool" else rng.integers(1, 200)).astype(dtype)
    for shape in [(64, 80), (5000,), (2, 3, 1000)]:
        src = np.broadcast_to(v, shape)
        got = cpu.copy(src)
        assert got.dtype == src.dtype and got.shape == shape and got.flags.c_contiguous
        assert got.flags.writeable and not np.shares_memory(got, v)
        np.testing.assert_array_equal(got, src)
    x = jitgrad.tensor(rng.standard_normal((64, 80)), requires_grad=True)
    x.mean().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full((64, 80), 1 / 5120))
