"""Behaviours found by differential testing against torch: each test pins one case where
jitgrad once differed from torch (a value, a gradient, an error), checked against the closed
form and against torch where it is installed."""

from __future__ import annotations

import numpy as np
import pytest
from on_device import J

import jitgrad

NAN = float("nan")


def test_relu_keeps_nan_and_passes_its_gradient() -> None:
    x = J.tensor([NAN, 1.0, -1.0, 0.0], requires_grad=True)
    y = J.relu(x)
    out = y.detach().cpu().numpy()
    assert np.isnan(out[0]) and out[1:].tolist() == [1.0, 0.0, 0.0]
    y.sum().backward()
    assert x.grad.cpu().numpy().tolist() == [1.0, 1.0, 0.0, 0.0]
    assert np.isnan(jitgrad.nn.functional.relu(J.tensor([NAN])).item())


def test_clamp_with_min_above_max_gives_max() -> None:
    assert J.tensor([1.0, 5.0, -2.0]).clamp(3, 1).cpu().numpy().tolist() == [1.0, 1.0, 1.0]
    assert J.tensor([1, 5]).clamp(3, 1).cpu().numpy().tolist() == [1, 1]


def test_clamp_with_tensor_bounds_has_torchs_gradient() -> None:
    x = J.tensor([0.0, 0.5, 1.0, -1.0, 2.0], requires_grad=True)
    lo = J.zeros(5, requires_grad=True)
    hi = J.ones(5, requires_grad=True)
    y = x.clamp(lo, hi)
    assert y.grad_fn.name() == "ClampBackward0"
    y.sum().backward()  # a tie with a bound keeps x's gradient whole
    assert x.grad.cpu().numpy().tolist() == [1, 1, 1, 0, 0]
    assert lo.grad.cpu().numpy().tolist() == [0, 0, 0, 1, 0]
    assert hi.grad.cpu().numpy().tolist() == [0, 0, 0, 0, 1]
    x.grad = None
    z = J.clamp_min(x, J.zeros(5))
    assert z.grad_fn.name() == "ClampMinBackward1"
    z.sum().backward()
    assert x.grad.cpu().numpy().tolist() == [1, 1, 1, 0, 1]
    assert x.clamp(max=J.ones(5)).grad_fn.name() == "ClampMaxBackward1"


def test_factories_take_size_and_refuse_unknown_keywords() -> None:
    assert tuple(J.zeros(size=(2, 3)).shape) == (2, 3)
    assert tuple(J.ones(size=[4]).shape) == (4,) and tuple(J.empty(size=2).shape) == (2,)
    assert tuple(J.randn(size=(3,)).shape) == (3,) and tuple(J.rand(2, 2).shape) == (2, 2)
    assert tuple(J.ones(2, layout=None, pin_memory=False).shape) == (2,)
    with pytest.raises(TypeError, match="ones\\(\\) got an unexpected keyword argument 'dtpye'"):
        J.ones(2, 3, dtpye=jitgrad.int64)


def test_integer_masked_fill_refuses_values_it_cannot_hold() -> None:
    m = J.tensor([True, False])
    with pytest.raises(RuntimeError, match="value cannot be converted to type int64_t without "
                                           "overflow"):
        J.tensor([1, 2]).masked_fill(m, -float("inf"))
    with pytest.raises(RuntimeError, match="uint8_t without overflow"):
        J.tensor([1, 2], dtype=jitgrad.uint8).masked_fill(m, 300)
    assert J.tensor([1, 2]).masked_fill(m, 2.7).cpu().numpy().tolist() == [2, 2]


def test_max_over_the_dim_of_a_0d_tensor_differentiates() -> None:
    x = J.tensor(2.0, requires_grad=True)
    v, i = x.max(0)
    v.backward()
    assert x.grad.item() == 1.0 and i.item() == 0
    y = J.tensor(3.0, requires_grad=True)
    y.min(0, keepdim=True).values.backward()
    assert y.grad.item() == 1.0


@pytest.mark.parametrize("change", ["mul_", "relu_", "exp_", "setitem", "iadd", "sibling",
                                    "copy_", "zero_", "masked_fill_"])
def test_views_see_later_in_place_changes_of_their_base(change) -> None:
    # A view taken before its base changes in place: backward through the view goes through
    # the change (the view's history is replayed from the base, as torch regenerates it).
    def run(m):
        a = m.tensor([1.0, -2.0, 3.0], requires_grad=True)
        b = a * 1
        c = b[1:]
        if change == "mul_":
            b.mul_(2)
        elif change == "relu_":
            b.relu_()
        elif change == "exp_":
            b.exp_()
        elif change == "setitem":
            b[0:2] = 5.0
        elif change == "iadd":
            b += a * 2
        elif change == "sibling":
            b[:2].mul_(3)
        elif change == "copy_":
            b.copy_(a * a)
        elif change == "zero_":
            b.zero_()
        else:
            b.masked_fill_(b > 0, 0.5)
        assert c.grad_fn is not None and c.requires_grad
        (c * m.tensor([1.0, 10.0])).sum().backward()
        return a.grad.cpu().numpy() if hasattr(a.grad, "cpu") else a.grad.numpy()

    got = run(J)
    want = {"mul_": [0, 2, 20], "relu_": [0, 0, 10], "exp_": [0, np.exp(-2), 10 * np.exp(3)],
            "setitem": [0, 0, 10], "iadd": [0, 3, 30], "sibling": [0, 3, 10],
            "copy_": [0, -4, 60], "zero_": [0, 0, 0], "masked_fill_": [0, 1, 0]}[change]
    np.testing.assert_allclose(got, want, rtol=1e-6)
    torch = pytest.importorskip("torch")
    np.testing.assert_allclose(got, run(torch), rtol=1e-6)


def test_a_view_made_before_its_base_needed_grad_follows_it() -> None:
    w = J.tensor([2.0, 3.0], requires_grad=True)
    b = J.zeros(2)
    v = b[1:]
    assert not v.requires_grad
    b.add_(w)  # b now depends on w, and so does the view
    assert v.requires_grad and v.grad_fn is not None
    (v * 5).sum().backward()
    assert w.grad.cpu().numpy().tolist() == [0.0, 5.0]


def test_small_parity_cases() -> None:
    x = J.ones(2)
    assert (x == None) is False and (x != None) is True  # noqa: E711 (torch's answer)
    assert J.tensor(range(3)).cpu().numpy().tolist() == [0, 1, 2]
    assert J.tensor(range(3)).dtype == jitgrad.int64
    assert J.ones(3, dtype=jitgrad.int64).sum(dtype=jitgrad.int32).dtype == jitgrad.int32
    assert J.ones(3, dtype=jitgrad.int32).sum().dtype == jitgrad.int64
    y = J.arange(6.0, requires_grad=True)
    z = y.view(2, 3)[[]]
    assert tuple(z.shape) == (0, 3)
    z.sum().backward()
    assert y.grad.cpu().numpy().tolist() == [0.0] * 6
