"""Losses and normalisation beyond the op table: torch's errors, option combinations against
torch, running statistics over several steps, eval mode, the parallel kernel paths, numerical
stability, and the fused backward against its differentiable (create_graph) twin."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import CUDASIM, DEVICE
from numpy.testing import assert_allclose
from on_device import J, torch_with_our_texts

import jitgrad
import jitgrad.nn.functional as F

ON_CPU_ONLY = pytest.mark.skipif(DEVICE != "cpu", reason="CPU kernel internals (numpy arrays)")


def _torch():
    return pytest.importorskip("torch")


def _pair(a: np.ndarray, requires_grad: bool = False):
    torch = _torch()
    rg = requires_grad and a.dtype.kind == "f"
    return J.tensor(a, requires_grad=rg), torch.tensor(a, requires_grad=rg)


def _close(j, t, rtol=1e-5, atol=1e-6, what=""):
    t = t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)
    j = j.detach().cpu().numpy() if hasattr(j, "detach") else np.asarray(j)
    assert j.shape == t.shape, what
    assert_allclose(j.astype(np.float64), t.astype(np.float64), rtol=rtol, atol=atol,
                    err_msg=what)


# --------------------------------------------------------------------------- errors

def _errors():
    """(id, builder): builder(m) calls m.nn.functional with bad arguments."""
    f = lambda m: m.nn.functional
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    p = np.random.default_rng(1).random((4, 5)).astype(np.float32)

    def T(m, v, **kw):
        return m.tensor(v, **kw)

    L = lambda m: T(m, [0, 1, 2, 3])
    return [
        ("ce_target_too_big", lambda m: f(m).cross_entropy(T(m, x), T(m, [0, 1, 5, 2]))),
        ("ce_target_negative", lambda m: f(m).cross_entropy(T(m, x), T(m, [0, -1, 1, 2]))),
        ("ce_ignore_other", lambda m: f(m).cross_entropy(T(m, x), T(m, [0, -100, 1, 2]),
                                                         ignore_index=3)),
        ("nll_target_too_big", lambda m: f(m).nll_loss(T(m, x), T(m, [0, 1, 5, 2]),
                                                       reduction="none")),
        ("ce_spatial_target_too_big", lambda m: f(m).cross_entropy(
            T(m, x.reshape(1, 5, 4)), T(m, [[0, 1, 2, 7]]))),
        ("ce_batch_mismatch", lambda m: f(m).cross_entropy(T(m, x), T(m, [0, 1, 2]))),
        ("ce_target_2d", lambda m: f(m).cross_entropy(T(m, x), T(m, [[0, 1]] * 4))),
        ("ce_target_0d", lambda m: f(m).cross_entropy(T(m, x), T(m, 1))),
        ("ce_1d_target_size", lambda m: f(m).cross_entropy(T(m, x[0]), T(m, [1, 2]))),
        ("ce_3d_target_shape", lambda m: f(m).cross_entropy(T(m, x.reshape(2, 5, 2)),
                                                            T(m, [[0, 1, 2], [0, 1, 2]]))),
        ("ce_4d_target_dims", lambda m: f(m).cross_entropy(T(m, x.reshape(1, 5, 2, 2)),
                                                           T(m, [[0, 1]]))),
        ("ce_4d_target_shape", lambda m: f(m).cross_entropy(T(m, x.reshape(1, 5, 2, 2)),
                                                            T(m, [[[0, 1, 1], [0, 1, 1]]]))),
        ("ce_float_target", lambda m: f(m).cross_entropy(T(m, x), T(m, [0.0, 1.0, 2.0, 3.0]))),
        ("ce_int32_target", lambda m: f(m).cross_entropy(T(m, x), T(m, [0, 1, 2, 3],
                                                                    dtype=m.int32))),
        ("ce_weight_size", lambda m: f(m).cross_entropy(T(m, x), L(m), weight=T(m, p[0, :4]))),
        ("ce_weight_dtype", lambda m: f(m).cross_entropy(T(m, x), L(m),
                                                         weight=T(m, p[0], dtype=m.float64))),
        ("ce_label_smoothing", lambda m: f(m).cross_entropy(T(m, x), L(m),
                                                            label_smoothing=1.5)),
        ("ce_reduction", lambda m: f(m).cross_entropy(T(m, x), L(m), reduction="avg")),
        ("ce_int_input", lambda m: f(m).cross_entropy(T(m, [[1, 2], [3, 4]]), T(m, [0, 1]))),
        ("ce_probs_int", lambda m: f(m).cross_entropy(T(m, x), T(m, (p > 0.5).astype(int)))),
        ("ce_probs_ignore", lambda m: f(m).cross_entropy(T(m, x), T(m, p), ignore_index=1)),
        ("ce_probs_weight", lambda m: f(m).cross_entropy(T(m, x), T(m, p),
                                                         weight=T(m, p[0, :3]))),
        ("ce_probs_smoothing", lambda m: f(m).cross_entropy(T(m, x), T(m, p),
                                                            label_smoothing=2.0)),
        ("nll_0d", lambda m: f(m).nll_loss(T(m, 1.0), T(m, 0))),
        ("nll_int32_target", lambda m: f(m).nll_loss(T(m, x), T(m, [0, 1, 2, 3],
                                                                dtype=m.int32))),
        ("mse_shapes", lambda m: f(m).mse_loss(T(m, x), T(m, p[:, :3]))),
        ("mse_int", lambda m: f(m).mse_loss(L(m), L(m))),
        ("mse_weight_shape", lambda m: f(m).mse_loss(T(m, x), T(m, p), weight=T(m, p[0]))),
        ("l1_int", lambda m: f(m).l1_loss(L(m), L(m))),
        ("smooth_l1_negative_beta", lambda m: f(m).smooth_l1_loss(T(m, x), T(m, p), beta=-1.0)),
        ("bce_input_range", lambda m: f(m).binary_cross_entropy(T(m, x), T(m, p))),
        ("bce_input_nan", lambda m: f(m).binary_cross_entropy(T(m, [float("nan")]), T(m, [0.5]))),
        ("bce_target_range", lambda m: f(m).binary_cross_entropy(T(m, p), T(m, x))),
        ("bce_shape", lambda m: f(m).binary_cross_entropy(T(m, p), T(m, p[0]))),
        ("bce_dtype", lambda m: f(m).binary_cross_entropy(T(m, p), T(m, p, dtype=m.float64))),
        ("bce_weight_shape", lambda m: f(m).binary_cross_entropy(T(m, p), T(m, p),
                                                                 weight=T(m, p[0, :3]))),
        ("bce_int", lambda m: f(m).binary_cross_entropy(T(m, [[1]]), T(m, [[1]]))),
        ("bcel_shape", lambda m: f(m).binary_cross_entropy_with_logits(T(m, x), T(m, p[0]))),
        ("bcel_pos_weight", lambda m: f(m).binary_cross_entropy_with_logits(
            T(m, x), T(m, p), pos_weight=T(m, p[0, :3]))),
        ("bcel_weight", lambda m: f(m).binary_cross_entropy_with_logits(
            T(m, x), T(m, p), weight=T(m, p[0, :3]))),
        ("ln_shape", lambda m: f(m).layer_norm(T(m, x), (4,))),
        ("ln_shape_long", lambda m: f(m).layer_norm(T(m, x), (4, 5, 1))),
        ("ln_int_shape", lambda m: f(m).layer_norm(T(m, x), 5)),
        ("ln_empty_shape", lambda m: f(m).layer_norm(T(m, x), ())),
        ("ln_weight_shape", lambda m: f(m).layer_norm(T(m, x), (5,), weight=T(m, p[0, :4]))),
        ("ln_bias_shape", lambda m: f(m).layer_norm(T(m, x), (5,), bias=T(m, p[0, :4]))),
        ("ln_weight_dtype", lambda m: f(m).layer_norm(T(m, x), (5,),
                                                      weight=T(m, p[0], dtype=m.float64))),
        ("ln_input_dtype", lambda m: f(m).layer_norm(T(m, x, dtype=m.float64), (5,),
                                                     weight=T(m, p[0]))),
        ("ln_int", lambda m: f(m).layer_norm(T(m, [[1, 2]]), (2,))),
        ("bn_one_value", lambda m: f(m).batch_norm(T(m, x[:1]), None, None, training=True)),
        ("bn_one_value_3d", lambda m: f(m).batch_norm(T(m, x[:1, :, None]), None, None,
                                                      training=True)),
        ("bn_running_mean_size", lambda m: f(m).batch_norm(T(m, x), T(m, p[0, :3]),
                                                           T(m, p[0]), training=True)),
        ("bn_running_var_size", lambda m: f(m).batch_norm(T(m, x), T(m, p[0]),
                                                          T(m, p[0, :3]), training=True)),
        ("bn_weight_size", lambda m: f(m).batch_norm(T(m, x), None, None,
                                                     weight=T(m, p[0, :2]), training=True)),
        ("bn_bias_size", lambda m: f(m).batch_norm(T(m, x), None, None, bias=T(m, p[0, :2]),
                                                   training=True)),
        ("bn_eval_no_stats", lambda m: f(m).batch_norm(T(m, x), None, None, training=False)),
        ("bn_momentum_none", lambda m: f(m).batch_norm(T(m, x), T(m, p[0]), T(m, p[1]),
                                                       training=True, momentum=None)),
        ("bn_stats_dtype", lambda m: f(m).batch_norm(T(m, x), T(m, p[0], dtype=m.float64),
                                                     T(m, p[1], dtype=m.float64),
                                                     training=True)),
        ("bn_input_dtype", lambda m: f(m).batch_norm(T(m, x, dtype=m.float64), T(m, p[0]),
                                                     T(m, p[1]), training=True)),
        ("bn_int", lambda m: f(m).batch_norm(T(m, [[1, 2], [3, 4]]), None, None,
                                             training=True)),
    ]


def _run(builder, m):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            builder(m)
        except Exception as e:  # noqa: BLE001 - compared with torch's by the caller
            return e
    return None


@pytest.mark.parametrize("builder", [pytest.param(b, id=i) for i, b in _errors()])
def test_errors_match_torch(builder) -> None:
    torch = torch_with_our_texts()
    te = _run(builder, torch)
    je = _run(builder, J)
    assert te is not None, "torch accepts this call: the case is wrong"
    assert je is not None, f"jitgrad accepts what torch refuses with {te!r}"
    assert type(je) is type(te), f"{type(je).__name__}: {je}; torch {type(te).__name__}: {te}"
    assert str(je).replace("jitgrad.", "torch.") == str(te)


def test_error_texts_without_torch() -> None:
    x = J.randn(4, 5)
    with pytest.raises(IndexError, match=r"^Target 7 is out of bounds\.$"):
        F.cross_entropy(x, J.tensor([0, 7, 1, 2]))
    with pytest.raises(ValueError, match=r"Expected input batch_size \(4\) to match target "
                                         r"batch_size \(3\)\."):
        F.nll_loss(x, J.tensor([0, 1, 2]))
    with pytest.raises(RuntimeError, match="running_mean must be defined in evaluation mode"):
        F.batch_norm(x, None, None)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when "
                                         r"training, got input size jitgrad.Size\(\[1, 5\]\)"):
        F.batch_norm(x[:1], None, None, training=True)


def test_failed_calls_change_nothing() -> None:
    rm, rv = J.zeros(5), J.ones(5)
    x = J.randn(4, 5, requires_grad=True)
    with pytest.raises(RuntimeError):
        F.batch_norm(x, rm, rv, weight=J.ones(3), training=True)
    assert rm.tolist() == [0.0] * 5 and rv.tolist() == [1.0] * 5
    with pytest.raises(IndexError):
        F.cross_entropy(x, J.tensor([0, 1, 2, 9]))
    assert x.grad is None


def test_undifferentiable_arguments() -> None:
    x = J.randn(4, 5, requires_grad=True)
    w = J.ones(5, requires_grad=True)
    t = J.tensor([0, 1, 2, 3])
    with pytest.raises(RuntimeError, match="'nll_loss_forward' is not differentiable with "
                                           "respect to argument 'weight'"):
        F.cross_entropy(x, t, weight=w)
    with pytest.raises(RuntimeError, match="'running_mean'"):
        F.batch_norm(x, J.zeros(5, requires_grad=True), J.ones(5), training=True)
    with pytest.raises(RuntimeError, match="'pos_weight'"):
        F.binary_cross_entropy_with_logits(x, x.detach().sigmoid(), pos_weight=w)
    with jitgrad.no_grad():  # torch checks only when a graph would be recorded
        F.cross_entropy(x, t, weight=w)


def test_warnings_and_legacy_arguments() -> None:
    x, y = J.randn(4, 5), J.randn(5)
    with pytest.warns(UserWarning, match="Using a target size"):
        r = F.mse_loss(x, y)
    assert_allclose(r.item(), ((x.cpu().numpy() - y.cpu().numpy()) ** 2).mean(), rtol=1e-6)
    with pytest.warns(UserWarning, match="reduction='sum' instead"):
        r = F.l1_loss(x, x * 2, size_average=False)
    assert_allclose(r.item(), np.abs(x.cpu().numpy()).sum(), rtol=1e-6)


# --------------------------------------------------------------------------- options vs torch

CE_SHAPES = [((6, 5), (6,)), ((2, 5, 3, 2), (2, 3, 2))]  # 1-D and 3-D inputs: op rows


@pytest.mark.parametrize("xs, ts", CE_SHAPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("ignore_index", [-100, 1])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.15])
def test_cross_entropy_options_vs_torch(xs, ts, reduction, ignore_index, weighted,
                                        label_smoothing, rng) -> None:
    torch = _torch()
    C = xs[1] if len(xs) > 1 else xs[0]
    x = rng.standard_normal(xs).astype(np.float32)
    t = rng.integers(0, C, ts)
    if t.ndim:
        t.reshape(-1)[::3] = ignore_index  # some targets ignored
    w = rng.random(C).astype(np.float32) + 0.5 if weighted else None
    kw = {"reduction": reduction, "ignore_index": ignore_index,
          "label_smoothing": label_smoothing}
    for fn in ("cross_entropy", "nll_loss"):
        if fn == "nll_loss" and label_smoothing:
            continue
        jx, tx = _pair(x, True)
        jw, tw = (_pair(w) if weighted else (None, None))
        kwn = {k: v for k, v in kw.items() if fn == "cross_entropy" or k != "label_smoothing"}
        jo = getattr(F, fn)(jx, J.tensor(t), weight=jw, **kwn)
        to = getattr(torch.nn.functional, fn)(tx, torch.tensor(t), weight=tw, **kwn)
        _close(jo, to, what=f"{fn} forward")
        assert jo.grad_fn.name() == to.grad_fn.name()
        v = rng.standard_normal(to.shape).astype(np.float32)
        (jo * J.tensor(v)).sum().backward()
        (to * torch.tensor(v)).sum().backward()
        _close(jx.grad, tx.grad, what=f"{fn} gradient")


def test_all_targets_ignored_vs_torch() -> None:
    torch = _torch()
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    t = np.full(3, -100)
    for red in ("mean", "sum", "none"):
        jx, tx = _pair(x, True)
        jo = F.cross_entropy(jx, J.tensor(t), reduction=red)
        to = torch.nn.functional.cross_entropy(tx, torch.tensor(t), reduction=red)
        _close(jo, to, what=red)  # mean: 0 / 0 = nan in both
        jo.sum().backward()
        to.sum().backward()
        _close(jx.grad, tx.grad, what=red)


@pytest.mark.parametrize("shape, C", [((0, 5), 5), ((0, 3, 2), 3)])
def test_empty_batch_vs_torch(shape, C) -> None:
    torch = _torch()
    x = np.zeros(shape, np.float32)
    t = np.zeros((0,) + shape[2:], np.int64)
    for red in ("mean", "sum", "none"):
        _close(F.cross_entropy(J.tensor(x), J.tensor(t), reduction=red),
               torch.nn.functional.cross_entropy(torch.tensor(x), torch.tensor(t),
                                                 reduction=red), what=red)


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_cross_entropy_probs_weight_gradient_vs_torch(reduction, rng) -> None:
    torch = _torch()
    x, p = rng.standard_normal((3, 4, 2)), rng.random((3, 4, 2))
    w = rng.random(4) + 0.5
    grads = []
    for m in (J, torch):
        a, b, c = (m.tensor(v, requires_grad=True) for v in (x, p, w))
        out = m.nn.functional.cross_entropy(a, b, weight=c, label_smoothing=0.2,
                                            reduction=reduction)
        (out * m.tensor(np.arange(out.numel()).reshape(tuple(out.shape)))).sum().backward()
        grads.append([t.grad.cpu().numpy() for t in (a, b, c)])
    for j, t in zip(*grads):
        assert_allclose(j, t, rtol=1e-10, atol=1e-12)


def test_cross_entropy_probs_mixed_dtypes_vs_torch(rng) -> None:
    torch = _torch()
    x = rng.standard_normal((4, 5)).astype(np.float32)
    p = rng.random((4, 5))
    jx, tx = _pair(x, True)
    jp, tp = _pair(p, True)
    jo = F.cross_entropy(jx, jp, label_smoothing=0.1)
    to = torch.nn.functional.cross_entropy(tx, tp, label_smoothing=0.1)
    assert jo.dtype == jitgrad.float64
    # torch takes log_softmax in float32 before promoting; jitgrad computes in float64
    _close(jo, to, rtol=1e-6)
    jo.backward()
    to.backward()
    _close(jx.grad, tx.grad, rtol=1e-5)
    _close(jp.grad, tp.grad, rtol=1e-6)


@pytest.mark.parametrize("scale", [1e4, 1e30])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_huge_logits_vs_torch(scale, dtype, rng) -> None:
    torch = _torch()
    x = (rng.standard_normal((8, 7)) * scale).astype(dtype)
    t = rng.integers(0, 7, 8)
    for ls in (0.0, 0.1):
        jx, tx = _pair(x, True)
        jo = F.cross_entropy(jx, J.tensor(t), label_smoothing=ls)
        to = torch.nn.functional.cross_entropy(tx, torch.tensor(t), label_smoothing=ls)
        assert np.isfinite(jo.item())
        _close(jo, to, rtol=1e-5)
        jo.backward()
        to.backward()
        _close(jx.grad, tx.grad, rtol=1e-5, atol=1e-6)
    y = (rng.random((8, 7)) > 0.5).astype(dtype)
    jx, tx = _pair(x, True)
    jo = F.binary_cross_entropy_with_logits(jx, J.tensor(y))
    to = torch.nn.functional.binary_cross_entropy_with_logits(tx, torch.tensor(y))
    _close(jo, to, rtol=1e-5)


def test_cross_entropy_gradient_keeps_its_digits_at_huge_close_logits() -> None:
    # Two logits 5.38 apart near 9430 (a draw that once failed the test above): rounding the
    # row's log-sum-exp to float32 (ulp 1e-3 there) moved softmax by 3e-4 relative.
    x = np.array([[-6384.6743, -3096.273, -3040.2463, -5614.723, 846.8824, 9425.438,
                   9430.818]], np.float32)
    d = np.float64(x[0, 6]) - np.float64(x[0, 5])
    p5 = 1.0 / (1.0 + np.exp(d))
    for target in (J.tensor([0]), J.tensor(np.full((1, 7), 1 / 7, np.float32))):
        for ls in (0.0, 0.1):
            jx = J.tensor(x, requires_grad=True)
            F.cross_entropy(jx, target, label_smoothing=ls).backward()
            g = jx.grad.cpu().numpy()[0]
            q = ls / 7 + (1 - ls) * (np.eye(7)[0] if target.dim() == 1 else 1 / 7)
            want = np.array([0, 0, 0, 0, 0, p5, 1 - p5]) - q
            np.testing.assert_allclose(g, want, rtol=2e-6, atol=1e-7)


def test_binary_cross_entropy_clamps_log_vs_torch() -> None:
    torch = _torch()
    x = np.array([0.0, 1.0, 0.5, 1e-30], np.float32)
    y = np.array([1.0, 0.0, 0.5, 1.0], np.float32)
    for red in ("none", "sum"):
        _close(F.binary_cross_entropy(J.tensor(x), J.tensor(y), reduction=red),
               torch.nn.functional.binary_cross_entropy(torch.tensor(x), torch.tensor(y),
                                                        reduction=red))


# --------------------------------------------------------------------------- parallel kernel paths

@pytest.mark.parametrize("case", ["ce", "ce_smooth_weight", "ce_probs", "ln", "bn", "bn_2d",
                                  "mse", "bcel"])
@pytest.mark.skipif(CUDASIM, reason="sizes for the CPU prange kernels: minutes on the CUDA "
                                   "simulator")
def test_large_inputs_vs_torch(case, rng) -> None:
    """Sizes above PARALLEL_MIN: the prange kernels, float32, against torch."""
    torch = _torch()
    C = 300
    x = rng.standard_normal((512, C)).astype(np.float32)
    t = rng.integers(0, C, 512)
    w = (rng.random(C) + 0.5).astype(np.float32)
    jx, tx = _pair(x, True)
    mods = {J: (jx, F), torch: (tx, torch.nn.functional)}
    outs = []
    for m, (xx, ff) in mods.items():
        T = m.tensor
        if case == "ce":
            o = ff.cross_entropy(xx, T(t))
        elif case == "ce_smooth_weight":
            o = ff.cross_entropy(xx, T(t), weight=T(w), label_smoothing=0.1, reduction="none")
        elif case == "ce_probs":
            o = ff.cross_entropy(xx, T(np.abs(x) / np.abs(x).sum(1, keepdims=True)))
        elif case == "ln":
            o = ff.layer_norm(xx, (C,), T(w), T(w - 1))
        elif case == "bn":
            o = ff.batch_norm(xx.reshape(64, 8, C), T(np.zeros(8, np.float32)),
                              T(np.ones(8, np.float32)), T(w[:8]), None, training=True)
        elif case == "bn_2d":
            o = ff.batch_norm(xx, None, None, T(w), T(w), training=True)
        elif case == "mse":
            o = ff.mse_loss(xx, T(x[::-1].copy()), reduction="sum")
        else:
            o = ff.binary_cross_entropy_with_logits(xx, T((x > 0).astype(np.float32)),
                                                    pos_weight=T(w))
        outs.append(o)
    jo, to = outs
    _close(jo, to, rtol=1e-4, atol=1e-5, what=f"{case} forward")
    v = rng.standard_normal(to.shape).astype(np.float32)
    (jo * J.tensor(v)).sum().backward()
    (to * torch.tensor(v)).sum().backward()
    _close(jx.grad, tx.grad, rtol=1e-4, atol=1e-6, what=f"{case} gradient")


# --------------------------------------------------------------------------- batch norm state

@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (2, 3, 2, 2)])
@pytest.mark.parametrize("momentum", [0.1, 0.7])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_running_statistics_vs_torch(shape, momentum, dtype, rng) -> None:
    torch = _torch()
    C = shape[1]
    jm, tm = _pair(np.zeros(C, dtype))
    jv, tv = _pair(np.ones(C, dtype))
    w = rng.random(C).astype(dtype) + 0.5
    b = rng.standard_normal(C).astype(dtype)
    for step in range(4):
        x = (rng.standard_normal(shape) * (step + 1) + step).astype(dtype)
        jx, tx = _pair(x, True)
        jw, tw = _pair(w, True)
        jb, tb = _pair(b, True)
        jo = F.batch_norm(jx, jm, jv, jw, jb, training=True, momentum=momentum)
        to = torch.nn.functional.batch_norm(tx, tm, tv, tw, tb, training=True,
                                            momentum=momentum)
        _close(jo, to, rtol=1e-5, atol=1e-5, what=f"step {step} output")
        _close(jm, tm, rtol=1e-6, atol=1e-6, what=f"step {step} running_mean")
        _close(jv, tv, rtol=1e-6, atol=1e-6, what=f"step {step} running_var")
        g = rng.standard_normal(shape).astype(dtype)
        jo.backward(J.tensor(g))
        to.backward(torch.tensor(g))
        for a, c, n in ((jx, tx, "input"), (jw, tw, "weight"), (jb, tb, "bias")):
            _close(a.grad, c.grad, rtol=1e-4, atol=1e-5, what=f"step {step} grad {n}")
    # eval mode then uses the running statistics and leaves them alone
    x = rng.standard_normal(shape).astype(dtype)
    jx, tx = _pair(x, True)
    before = jm.cpu().numpy().copy()
    jo = F.batch_norm(jx, jm, jv, J.tensor(w), None, training=False)
    to = torch.nn.functional.batch_norm(tx, tm, tv, torch.tensor(w), None, training=False)
    _close(jo, to, rtol=1e-5, atol=1e-5, what="eval output")
    assert_allclose(jm.cpu().numpy(), before)
    jo.sum().backward()
    to.sum().backward()
    _close(jx.grad, tx.grad, rtol=1e-5, atol=1e-6, what="eval gradient")


def test_empty_batch_leaves_running_statistics_vs_torch() -> None:
    torch = _torch()
    for shape in ((0, 3), (2, 3, 0)):
        stats = []
        for m in (J, torch):
            rm, rv = m.zeros(3), m.ones(3)
            y = m.nn.functional.batch_norm(m.zeros(*shape), rm, rv, training=True)
            assert tuple(y.shape) == shape
            stats.append((rm.tolist(), rv.tolist()))
        assert stats[0] == stats[1]


def test_running_statistics_without_torch(rng) -> None:
    x = rng.standard_normal((8, 3)) * 2 + 1
    rm, rv = J.zeros(3, dtype=jitgrad.float64), J.ones(3, dtype=jitgrad.float64)
    F.batch_norm(J.tensor(x), rm, rv, training=True, momentum=0.25)
    assert_allclose(rm.cpu().numpy(), 0.25 * x.mean(0), rtol=1e-12)
    assert_allclose(rv.cpu().numpy(), 0.75 + 0.25 * x.var(0, ddof=1), rtol=1e-12)


# --------------------------------------------------------------------------- fused vs graph

def _fused_cases():
    T = J.tensor
    t2 = T([1, -100, 3, 0])
    w5 = T([0.5, 2.0, 1.0, 0.25, 1.5], dtype=jitgrad.float64)
    p = np.random.default_rng(3).random((4, 5))
    return [
        ("ce", lambda x: F.cross_entropy(x, t2, weight=w5, label_smoothing=0.1)),
        ("ce_none_3d", lambda x: F.cross_entropy(x.reshape(2, 5, 2), T([[0, 1], [4, -100]]),
                                                 reduction="none")),
        ("ce_probs", lambda x: F.cross_entropy(x, T(p), weight=w5, label_smoothing=0.2)),
        ("nll", lambda x: F.nll_loss(x, t2, weight=w5, reduction="sum")),
        ("mse", lambda x: F.mse_loss(x, T(p), reduction="none")),
        ("smooth_l1", lambda x: F.smooth_l1_loss(x, T(p), beta=0.3)),
        ("bce", lambda x: F.binary_cross_entropy(x.sigmoid(), T(p), weight=T(p[0]))),
        ("bcel", lambda x: F.binary_cross_entropy_with_logits(x, T(p), pos_weight=w5)),
        ("ln", lambda x: F.layer_norm(x, (5,), w5, w5)),
        ("bn_train", lambda x: F.batch_norm(x, None, None, w5, w5, training=True)),
        ("bn_eval", lambda x: F.batch_norm(x, w5, w5 + 1, w5, None)),
    ]


@pytest.mark.parametrize("fn", [pytest.param(f, id=i) for i, f in _fused_cases()])
def test_fused_backward_equals_graph_backward(fn, rng) -> None:
    """The fused backward kernels and the differentiable formulas used under create_graph give
    the same gradients."""
    x = J.tensor(rng.standard_normal((4, 5)), requires_grad=True)
    out = fn(x)
    v = J.tensor(rng.standard_normal(out.shape))
    (fused,) = jitgrad.autograd.grad(out, x, v, retain_graph=True)
    (graph,) = jitgrad.autograd.grad(out, x, v, create_graph=True)
    assert_allclose(fused.cpu().numpy(), graph.detach().cpu().numpy(), rtol=1e-10, atol=1e-12)


def test_double_backward_vs_torch(rng) -> None:
    torch = _torch()
    x = rng.standard_normal((4, 5))
    t = np.array([1, -100, 3, 0])
    w = rng.random(5) + 0.5
    cases = [
        lambda m, a: m.nn.functional.cross_entropy(a, m.tensor(t), label_smoothing=0.1),
        lambda m, a: m.nn.functional.layer_norm(a, (5,), m.tensor(w), None),
        lambda m, a: m.nn.functional.batch_norm(a, None, None, m.tensor(w), training=True),
        lambda m, a: m.nn.functional.binary_cross_entropy_with_logits(
            a, m.tensor(np.abs(np.tanh(x))), pos_weight=m.tensor(w)),
    ]
    for i, case in enumerate(cases):
        res = []
        for m in (J, torch):
            a = m.tensor(x, requires_grad=True)
            out = case(m, a)
            (g,) = m.autograd.grad((out * m.tensor(np.ones(out.shape))).sum(), a,
                                   create_graph=True)
            (gg,) = m.autograd.grad((g * m.tensor(w)).sum(), a)
            res.append(gg)
        _close(res[0], res[1], rtol=1e-8, atol=1e-10, what=f"case {i}")
