"""Op-table rows of the normalisation and loss family (jitgrad/nn/_loss.py, _norm.py).

``tests/test_ops.py`` runs each row: forward against the numpy references below (written
independently of the kernels, in float64), gradients against central differences (float64,
every reduction), double backward (the VJPs build differentiable graphs under
create_graph=True), and values, grad_fn names and gradients against torch.

Class-index targets, class weights and running statistics are constants of the row (torch
differentiates none of them); logits, probabilities, inputs, weights and biases of the norms
are drawn fresh.
"""

from __future__ import annotations

import numpy as np
from op_table import F32, F64, OpRow, Sampler

R = OpRow
PROBS = Sampler(0.05, 0.95)  # probabilities for binary_cross_entropy, away from 0 and 1
UNIT = Sampler(0.0, 1.0)  # targets of the binary losses

# Constant class-index targets, one per input shape (-100 is the default ignore_index).
TGT = {
    (4, 5): [3, -100, 0, 4],
    (3, 5, 4): [[0, 4, -100, 2], [1, 1, 3, 0], [4, 2, 2, -100]],
    (2, 5, 3, 2): [[[0, 4], [-100, 2], [1, 1]], [[3, 0], [4, 2], [2, 2]]],
    (2, 4, 2, 1, 3): [[[[0, 3, 1]], [[2, -100, 3]]], [[[1, 1, 0]], [[3, 2, 0]]]],
    (5,): 2,
}
# Targets without -100, for rows that ignore a class index instead.
TGT_IGNORE_0 = {(4, 5): [3, 0, 1, 4]}
TGT_IGNORE_4 = {(3, 5, 4): [[0, 4, 1, 2], [1, 1, 3, 0], [4, 2, 2, 4]]}
W5 = [0.5, 2.0, 1.0, 0.25, 1.5]
W4 = [1.0, 0.5, 2.0, 1.5]


def _f(m):
    return m.nn.functional


def _tgt(m, x, table=None):
    return m.tensor((table or TGT)[tuple(x.shape)], device=x.device)


def _c(m, x, v):
    """A constant float tensor in x's dtype."""
    return m.tensor(v, dtype=x.dtype, device=x.device)


# --------------------------------------------------------------------------- numpy references

def _lsm(x: np.ndarray, axis: int) -> np.ndarray:
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def _reduce(loss: np.ndarray, red: str, denom) -> np.ndarray:
    if red == "none":
        return loss
    return loss.sum() / denom if red == "mean" else loss.sum()


def ce_ref(x, t, w=None, ii=-100, eps=0.0, red="mean"):
    """torch's cross_entropy with class indices, written out in float64."""
    x, t = np.asarray(x, np.float64), np.asarray(t)
    one = x.ndim == 1
    if one:
        x, t = x[None], t.reshape(1)
    C = x.shape[1]
    w = np.ones(C) if w is None else np.asarray(w, np.float64)
    lp = np.moveaxis(_lsm(x, 1), 1, -1)  # (N, *, C)
    keep = t != ii
    ts = np.where(keep, t, 0)
    picked = np.take_along_axis(lp, ts[..., None], -1)[..., 0]
    nll = np.where(keep, -w[ts] * picked, 0.0)
    smooth = np.where(keep, -(lp * w).sum(-1), 0.0)
    loss = (1 - eps) * nll + eps / C * smooth
    loss = loss.reshape(()) if one else loss
    return _reduce(loss, red, np.where(keep, w[ts], 0.0).sum())


def ce_prob_ref(x, p, w=None, eps=0.0, red="mean"):
    C = x.shape[1] if x.ndim > 1 else x.shape[0]
    w = np.ones(C) if w is None else np.asarray(w, np.float64)
    ax = 1 if x.ndim > 1 else 0
    wb = w.reshape((C,) + (1,) * (x.ndim - ax - 1))
    q = p * (1 - eps) + eps / C
    loss = -(_lsm(x, ax) * q * wb).sum(ax)
    return _reduce(loss, red, x.size / C)


def nll_ref(x, t, w=None, ii=-100, red="mean"):
    x, t = np.asarray(x, np.float64), np.asarray(t)
    C = x.shape[1]
    w = np.ones(C) if w is None else np.asarray(w, np.float64)
    keep = t != ii
    ts = np.where(keep, t, 0)
    picked = np.take_along_axis(np.moveaxis(x, 1, -1), ts[..., None], -1)[..., 0]
    loss = np.where(keep, -w[ts] * picked, 0.0)
    return _reduce(loss, red, np.where(keep, w[ts], 0.0).sum())


def smooth_l1_ref(x, y, beta, red):
    d = np.abs(x - y)
    return _reduce(np.where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta), red, d.size)


def bce_ref(x, y, w, red):
    loss = -(y * np.maximum(np.log(x), -100) + (1 - y) * np.maximum(np.log1p(-x), -100))
    return _reduce(loss * w, red, loss.size)


def bce_logits_ref(x, y, w, pw, red):
    # log(sigmoid(x)) and log(1 - sigmoid(x)), straight from the definition
    s = 1 / (1 + np.exp(-x))
    loss = -(pw * y * np.log(s) + (1 - y) * np.log(1 - s))
    return _reduce(loss * w, red, loss.size)


def layer_norm_ref(x, ns, w=1.0, b=0.0, eps=1e-5):
    dims = tuple(range(x.ndim - len(ns), x.ndim))
    mu = x.mean(dims, keepdims=True)
    var = ((x - mu) ** 2).mean(dims, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def batch_norm_ref(x, w, b, mean=None, var=None, eps=1e-5):
    dims = (0,) + tuple(range(2, x.ndim))
    cs = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    if mean is None:
        mean, var = x.mean(dims), x.var(dims)
    mean, var = np.asarray(mean).reshape(cs), np.asarray(var).reshape(cs)
    return (x - mean) / np.sqrt(var + eps) * w.reshape(cs) + b.reshape(cs)


# --------------------------------------------------------------------------- rows

RM4, RV4 = [0.1, -0.2, 0.3, 0.0], [1.5, 0.5, 2.0, 1.0]  # eval-mode running statistics

ROWS: list[OpRow] = [
    # ------------------------------------------------------------------ cross-entropy
    R("cross_entropy", lambda m, x: _f(m).cross_entropy(x, _tgt(m, x)),
      lambda x: ce_ref(x, TGT[x.shape]), [((4, 5),), ((5,),)]),
    R("cross_entropy_sum", lambda m, x: _f(m).cross_entropy(x, _tgt(m, x), reduction="sum"),
      lambda x: ce_ref(x, TGT[x.shape], red="sum"), [((4, 5),)]),
    R("cross_entropy_none", lambda m, x: _f(m).cross_entropy(x, _tgt(m, x), reduction="none"),
      lambda x: ce_ref(x, TGT[x.shape], red="none"), [((4, 5),), ((3, 5, 4),), ((5,),)]),
    R("cross_entropy_spatial", lambda m, x: _f(m).cross_entropy(x, _tgt(m, x)),
      lambda x: ce_ref(x, TGT[x.shape]), [((2, 5, 3, 2),), ((2, 4, 2, 1, 3),)]),
    R("cross_entropy_weight_smoothing",
      lambda m, x: _f(m).cross_entropy(x, _tgt(m, x), weight=_c(m, x, W5),
                                       label_smoothing=0.2),
      lambda x: ce_ref(x, TGT[x.shape], W5, eps=0.2), [((4, 5),), ((3, 5, 4),)]),
    R("cross_entropy_weight_smoothing_none",
      lambda m, x: _f(m).cross_entropy(x, _tgt(m, x, TGT_IGNORE_0), weight=_c(m, x, W5),
                                       ignore_index=0, label_smoothing=0.1, reduction="none"),
      lambda x: ce_ref(x, TGT_IGNORE_0[x.shape], W5, ii=0, eps=0.1, red="none"), [((4, 5),)]),
    R("cross_entropy_probs",
      lambda m, x, p: _f(m).cross_entropy(x, p), lambda x, p: ce_prob_ref(x, p),
      [((4, 5), (4, 5)), ((3, 5, 4), (3, 5, 4)), ((5,), (5,))], (Sampler(), UNIT)),
    R("cross_entropy_probs_weight_smoothing",
      lambda m, x, p: _f(m).cross_entropy(x, p, weight=_c(m, x, W5), label_smoothing=0.3,
                                          reduction="none"),
      lambda x, p: ce_prob_ref(x, p, W5, 0.3, "none"), [((4, 5), (4, 5))], (Sampler(), UNIT)),
    R("cross_entropy_probs_weight_input",
      lambda m, x, p, w: _f(m).cross_entropy(x, p, weight=w, label_smoothing=0.1),
      lambda x, p, w: ce_prob_ref(x, p, w, 0.1), [((3, 4, 2), (3, 4, 2), (4,))],
      (Sampler(), UNIT, Sampler(0.5, 2.0))),
    R("cross_entropy_probs_sum",
      lambda m, x, p: _f(m).cross_entropy(x, p, reduction="sum"),
      lambda x, p: ce_prob_ref(x, p, red="sum"), [((4, 5), (4, 5))], (Sampler(), UNIT)),

    # ------------------------------------------------------------------ nll
    R("nll_loss", lambda m, x: _f(m).nll_loss(x, _tgt(m, x), weight=_c(m, x, W5)),
      lambda x: nll_ref(x, TGT[x.shape], W5), [((4, 5),), ((2, 5, 3, 2),)]),
    R("nll_loss_none", lambda m, x: _f(m).nll_loss(x, _tgt(m, x), reduction="none"),
      lambda x: nll_ref(x, TGT[x.shape], red="none"), [((4, 5),), ((3, 5, 4),)]),
    R("nll_loss_sum_ignore",
      lambda m, x: _f(m).nll_loss(x, _tgt(m, x, TGT_IGNORE_4), ignore_index=4, reduction="sum"),
      lambda x: nll_ref(x, TGT_IGNORE_4[x.shape], ii=4, red="sum"), [((3, 5, 4),)]),

    # ------------------------------------------------------------------ regression losses
    R("mse_loss", lambda m, x, y: _f(m).mse_loss(x, y),
      lambda x, y: ((x - y) ** 2).mean(), [((4, 5), (4, 5)), ((), ())]),
    R("mse_loss_none", lambda m, x, y: _f(m).mse_loss(x, y, reduction="none"),
      lambda x, y: (x - y) ** 2, [((2, 3, 4), (2, 3, 4))],
      dtypes=[(F32, F32), (F64, F64), (F32, F64)],
      out_dtype=lambda dts: F64 if F64 in dts else F32),
    R("mse_loss_sum", lambda m, x, y: _f(m).mse_loss(x, y, reduction="sum"),
      lambda x, y: ((x - y) ** 2).sum(), [((4, 5), (4, 5))]),
    R("mse_loss_weight", lambda m, x, y: _f(m).mse_loss(x, y, weight=_c(m, x, [W5] * 4)),
      lambda x, y: ((x - y) ** 2 * np.array(W5)).sum() / (4 * sum(W5)), [((4, 5), (4, 5))]),
    R("l1_loss", lambda m, x, y: _f(m).l1_loss(x, y), lambda x, y: np.abs(x - y).mean(),
      [((4, 5), (4, 5))], (Sampler(away=0.3), Sampler(-0.1, 0.1))),
    R("l1_loss_none", lambda m, x, y: _f(m).l1_loss(x, y, reduction="none"),
      lambda x, y: np.abs(x - y), [((4, 5), (4, 5))], (Sampler(away=0.3), Sampler(-0.1, 0.1))),
    R("smooth_l1_loss", lambda m, x, y: _f(m).smooth_l1_loss(x, y, beta=0.5),
      lambda x, y: smooth_l1_ref(x, y, 0.5, "mean"), [((4, 5), (4, 5)), ((3,), (3,))],
      (Sampler(-2, 2, avoid=(-0.5, 0.5)), Sampler(-0.02, 0.02))),
    R("smooth_l1_loss_none", lambda m, x, y: _f(m).smooth_l1_loss(x, y, reduction="none"),
      lambda x, y: smooth_l1_ref(x, y, 1.0, "none"), [((4, 5), (4, 5))],
      (Sampler(-3, 3, avoid=(-1.0, 1.0)), Sampler(-0.02, 0.02))),
    R("smooth_l1_loss_sum", lambda m, x, y: _f(m).smooth_l1_loss(x, y, reduction="sum"),
      lambda x, y: smooth_l1_ref(x, y, 1.0, "sum"), [((4, 5), (4, 5))],
      (Sampler(-3, 3, avoid=(-1.0, 1.0)), Sampler(-0.02, 0.02))),

    # ------------------------------------------------------------------ binary losses
    R("binary_cross_entropy",
      lambda m, x, y: _f(m).binary_cross_entropy(x, y, weight=_c(m, x, W5)),
      lambda x, y: bce_ref(x, y, np.array(W5), "mean"), [((4, 5), (4, 5))], (PROBS, UNIT)),
    R("binary_cross_entropy_none",
      lambda m, x, y: _f(m).binary_cross_entropy(x, y, reduction="none"),
      lambda x, y: bce_ref(x, y, 1.0, "none"), [((4, 5), (4, 5)), ((), ())], (PROBS, UNIT)),
    R("binary_cross_entropy_sum",
      lambda m, x, y: _f(m).binary_cross_entropy(x, y, reduction="sum"),
      lambda x, y: bce_ref(x, y, 1.0, "sum"), [((2, 3, 4), (2, 3, 4))], (PROBS, UNIT)),
    R("bce_with_logits",
      lambda m, x, y: _f(m).binary_cross_entropy_with_logits(
          x, y, weight=_c(m, x, W4), pos_weight=_c(m, x, [2.0, 0.5, 1.0, 3.0])),
      lambda x, y: bce_logits_ref(x, y, np.array(W4), np.array([2.0, 0.5, 1.0, 3.0]), "mean"),
      [((3, 4), (3, 4)), ((2, 3, 4), (2, 3, 4))], (Sampler(-4, 4), UNIT)),
    R("bce_with_logits_none",
      lambda m, x, y: _f(m).binary_cross_entropy_with_logits(x, y, reduction="none"),
      lambda x, y: bce_logits_ref(x, y, 1.0, 1.0, "none"), [((3, 4), (3, 4)), ((), ())],
      (Sampler(-4, 4), UNIT)),
    R("bce_with_logits_sum",
      lambda m, x, y: _f(m).binary_cross_entropy_with_logits(
          x, y, pos_weight=_c(m, x, [2.0, 0.5, 1.0, 3.0]), reduction="sum"),
      lambda x, y: bce_logits_ref(x, y, 1.0, np.array([2.0, 0.5, 1.0, 3.0]), "sum"),
      [((3, 4), (3, 4))], (Sampler(-4, 4), UNIT)),

    # ------------------------------------------------------------------ normalisation
    R("layer_norm", lambda m, x, w, b: _f(m).layer_norm(x, (5,), w, b),
      lambda x, w, b: layer_norm_ref(x, (5,), w, b),
      [((3, 4, 5), (5,), (5,)), ((5,), (5,), (5,))]),
    R("layer_norm_2d_shape", lambda m, x, w, b: _f(m).layer_norm(x, (4, 5), w, b, eps=1e-3),
      lambda x, w, b: layer_norm_ref(x, (4, 5), w, b, 1e-3), [((2, 4, 5), (4, 5), (4, 5))]),
    R("layer_norm_plain", lambda m, x: _f(m).layer_norm(x, x.shape[-1:]),
      lambda x: layer_norm_ref(x, x.shape[-1:]), [((4, 6),)]),
    R("batch_norm_train",
      lambda m, x, w, b: _f(m).batch_norm(x, m.zeros(4, dtype=x.dtype, device=x.device),
                                          m.ones(4, dtype=x.dtype, device=x.device), w, b,
                                          training=True),
      batch_norm_ref, [((5, 4), (4,), (4,)), ((3, 4, 6), (4,), (4,)),
                       ((2, 4, 3, 2), (4,), (4,))]),
    R("batch_norm_train_no_stats",
      lambda m, x: _f(m).batch_norm(x, None, None, training=True),
      lambda x: batch_norm_ref(x, np.ones(4), np.zeros(4)), [((3, 4, 2),)]),
    R("batch_norm_eval",
      lambda m, x, w, b: _f(m).batch_norm(x, _c(m, x, RM4), _c(m, x, RV4), w, b,
                                          training=False, eps=1e-3),
      lambda x, w, b: batch_norm_ref(x, w, b, RM4, RV4, 1e-3),
      [((5, 4), (4,), (4,)), ((3, 4, 6), (4,), (4,))]),
]
