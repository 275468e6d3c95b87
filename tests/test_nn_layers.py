"""The layers of jitgrad.nn beyond Linear: Conv1d/Conv2d, pooling, Dropout, Embedding,
LayerNorm, BatchNorm1d/2d and the loss modules.

Against PyTorch where it is installed: initial parameters bit for bit after the same seed,
repr, constructor errors, forward values and gradients of input and parameters in train and
eval mode (running statistics included), several SGD and Adam steps. Without it: numpy and
closed-form references (the convolution and pooling references of ``op_rows_nn_conv``, which
are written independently of the kernels), central-difference gradients, train/eval
behaviour, state-dict round trips with BatchNorm's buffers, jitgrad.save/load, and a training
run that reaches a fixed loss on fixed data.
"""

from __future__ import annotations

import math

import numpy as np
import op_table  # noqa: F401 - loads the row files the references below live in
import pytest
from conftest import CUDASIM, DEVICE
from numpy.testing import assert_allclose, assert_array_equal
from on_device import J, torch_with_our_texts
from op_rows_nn_conv import avg_pool_ref, conv_ref, max_pool_ref, torch_mask

import jitgrad
from jitgrad import nn
from jitgrad.autograd import gradcheck

ON_CPU_ONLY = pytest.mark.skipif(DEVICE != "cpu", reason="CPU kernel internals (numpy arrays)")


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def _np(t) -> np.ndarray:
    return t.detach().cpu().numpy()


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _node(t) -> str | None:
    """The name of the node that made t (None for a leaf): torch's names are jitgrad's."""
    return None if t.grad_fn is None else t.grad_fn.name()


def _close(got, want, rtol: float = 2e-5, atol: float = 2e-6) -> None:
    """float32 agreement, relative to the largest magnitude of `want`."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape
    scale = max(1.0, float(np.abs(want).max())) if want.size else 1.0
    assert_allclose(got, want, rtol=rtol, atol=atol * scale)


# =========================================================================== construction

# (class name, args, kwargs): every option that changes parameters, buffers or repr
CONFIGS = [
    ("Conv1d", (3, 6, 5), {}),
    ("Conv1d", (4, 6, 4), {"padding": "same", "dilation": 2, "bias": False}),
    ("Conv1d", (4, 8, 3), {"stride": 2, "padding": 1, "groups": 4}),
    ("Conv2d", (3, 8, 3), {"padding": 1}),
    ("Conv2d", (4, 8, (3, 2)), {"stride": (2, 1), "padding": (1, 0), "dilation": (2, 1),
                                "groups": 2, "bias": False}),
    ("Conv2d", (2, 4, 3), {"padding": "valid"}),
    ("Conv2d", (2, 4, (2, 4)), {"padding": "same"}),
    ("MaxPool2d", (2,), {}),
    ("MaxPool2d", ((3, 2),), {"stride": 1, "padding": 1, "dilation": 2, "ceil_mode": True,
                              "return_indices": True}),
    ("AvgPool2d", (2,), {}),
    ("AvgPool2d", ((3, 2), (2, 1)), {"padding": 1, "ceil_mode": True,
                                     "count_include_pad": False, "divisor_override": 5}),
    ("AdaptiveAvgPool2d", ((None, 3),), {}),
    ("AdaptiveAvgPool2d", (1,), {}),
    ("Dropout", (), {}),
    ("Dropout", (0.2,), {"inplace": True}),
    ("Embedding", (10, 4), {}),
    ("Embedding", (10, 4), {"padding_idx": -2, "norm_type": 1.0, "scale_grad_by_freq": True}),
    ("LayerNorm", (5,), {}),
    ("LayerNorm", ((3, 4),), {"eps": 1e-3, "elementwise_affine": False}),
    ("LayerNorm", ([6],), {"bias": False}),
    ("BatchNorm1d", (5,), {}),
    ("BatchNorm1d", (5,), {"momentum": None, "eps": 1e-3}),
    ("BatchNorm2d", (3,), {"affine": False, "track_running_stats": False}),
    ("BatchNorm2d", (3,), {"bias": False, "momentum": 0.3}),
    ("MSELoss", (), {}),
    ("L1Loss", (), {"reduction": "sum"}),
    ("SmoothL1Loss", (), {"beta": 0.5}),
    ("NLLLoss", (), {"ignore_index": 1}),
    ("CrossEntropyLoss", (), {"label_smoothing": 0.1, "reduction": "none"}),
    ("BCELoss", (), {}),
    ("BCEWithLogitsLoss", (), {}),
]
_IDS = [f"{n}-{i}" for i, (n, _, _) in enumerate(CONFIGS)]


@pytest.mark.parametrize(("name", "args", "kwargs"), CONFIGS, ids=_IDS)
@pytest.mark.parametrize("seed", [0, 12345])
def test_initial_state_and_repr_equal_torch(name, args, kwargs, seed):
    torch = torch_with_our_texts()
    jitgrad.manual_seed(seed)
    m = getattr(nn, name)(*args, **kwargs).to(DEVICE)
    torch.manual_seed(seed)
    tm = getattr(torch.nn, name)(*args, **kwargs)
    assert repr(m) == repr(tm)
    assert [n for n, _ in m.named_parameters()] == [n for n, _ in tm.named_parameters()]
    assert [n for n, _ in m.named_buffers()] == [n for n, _ in tm.named_buffers()]
    sd, tsd = m.state_dict(), tm.state_dict()
    assert list(sd) == list(tsd)
    for k in sd:
        assert _same_bits(sd[k].cpu().numpy(), tsd[k].cpu().numpy()), k
    # the generator is left where torch's is
    assert _same_bits(J.rand(4).cpu().numpy(), torch.rand(4).cpu().numpy())


@pytest.mark.parametrize(("name", "args", "kwargs"), [c for c in CONFIGS if "Conv" in c[0]],
                         ids=[i for i, c in zip(_IDS, CONFIGS) if "Conv" in c[0]])
def test_conv_attributes_equal_torch(torch, name, args, kwargs):
    m, tm = getattr(nn, name)(*args, **kwargs).to(DEVICE), getattr(torch.nn, name)(*args, **kwargs)
    for attr in ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation",
                 "transposed", "output_padding", "groups", "padding_mode",
                 "_reversed_padding_repeated_twice"):
        assert getattr(m, attr) == getattr(tm, attr), attr


def test_conv_initial_values_without_torch():
    jitgrad.manual_seed(3)
    m = nn.Conv2d(8, 64, (3, 2), groups=2)
    fan_in = 4 * 3 * 2
    w, b = _np(m.weight), _np(m.bias)
    assert w.shape == (64, 4, 3, 2) and w.dtype == np.float32 and b.shape == (64,)
    bound = 1 / math.sqrt(fan_in)  # kaiming_uniform_(a=sqrt(5)) is U(-1/sqrt(fan_in), ...)
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.1 * bound
    assert nn.Conv1d(2, 3, 4, bias=False).bias is None
    assert nn.Conv1d(2, 3, 4, dtype=jitgrad.float64).weight.dtype == jitgrad.float64


def test_norm_and_embedding_initial_values_without_torch():
    ln = nn.LayerNorm((2, 3))
    assert ln.weight.tolist() == [[1.0] * 3] * 2 and ln.bias.tolist() == [[0.0] * 3] * 2
    assert nn.LayerNorm(4, elementwise_affine=False).weight is None
    bn = nn.BatchNorm2d(3)
    assert bn.weight.tolist() == [1.0] * 3 and bn.bias.tolist() == [0.0] * 3
    assert bn.running_mean.tolist() == [0.0] * 3 and bn.running_var.tolist() == [1.0] * 3
    assert bn.num_batches_tracked.dtype == jitgrad.int64 and bn.num_batches_tracked.item() == 0
    assert list(bn.state_dict()) == ["weight", "bias", "running_mean", "running_var",
                                     "num_batches_tracked"]
    bare = nn.BatchNorm1d(3, affine=False, track_running_stats=False)
    assert list(bare.state_dict()) == [] and bare.running_mean is None
    jitgrad.manual_seed(0)
    emb = nn.Embedding(2000, 8, padding_idx=-1)
    w = _np(emb.weight)
    assert emb.padding_idx == 1999 and (w[1999] == 0).all()
    assert abs(w[:-1].mean()) < 0.02 and abs(w[:-1].std() - 1) < 0.02  # N(0, 1)


def test_reprs_without_torch():
    # the strings PyTorch 2.13 prints for these layers
    assert repr(nn.Conv2d(3, 8, 3, padding=1)) == \
        "Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))"
    assert repr(nn.Conv1d(3, 6, 5, padding="same", bias=False)) == \
        "Conv1d(3, 6, kernel_size=(5,), stride=(1,), padding=same, bias=False)"
    assert repr(nn.MaxPool2d(2)) == \
        "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)"
    assert repr(nn.AvgPool2d((3, 2), 1, 1)) == \
        "AvgPool2d(kernel_size=(3, 2), stride=1, padding=1)"
    assert repr(nn.AdaptiveAvgPool2d((None, 3))) == "AdaptiveAvgPool2d(output_size=(None, 3))"
    assert repr(nn.Dropout(0.2)) == "Dropout(p=0.2, inplace=False)"
    assert repr(nn.Embedding(10, 4, padding_idx=-2)) == "Embedding(10, 4, padding_idx=8)"
    assert repr(nn.LayerNorm((3, 4), elementwise_affine=False)) == \
        "LayerNorm((3, 4), eps=1e-05, elementwise_affine=False, bias=False)"
    assert repr(nn.BatchNorm1d(5, momentum=None)) == \
        ("BatchNorm1d(5, eps=1e-05, momentum=None, affine=True, bias=True, "
         "track_running_stats=True)")
    assert repr(nn.CrossEntropyLoss(label_smoothing=0.1)) == "CrossEntropyLoss()"


# =========================================================================== errors

CTOR_ERRORS = [  # (class name, args, kwargs, exception, message: torch's)
    ("Conv2d", (4, 6, 3), {"groups": 0}, ValueError, "groups must be a positive integer"),
    ("Conv2d", (4, 6, 3), {"groups": 3}, ValueError, "in_channels must be divisible by groups"),
    ("Conv2d", (4, 6, 3), {"groups": 4}, ValueError,
     "out_channels must be divisible by groups"),
    ("Conv2d", (4, 6, 3), {"padding": "full"}, ValueError,
     "Invalid padding string 'full', should be one of {"),
    ("Conv1d", (4, 6, 3), {"padding": "same", "stride": 2}, ValueError,
     "padding='same' is not supported for strided convolutions"),
    ("Conv2d", (4, 6, 3), {"padding_mode": "mirror"}, ValueError,
     "padding_mode must be one of {"),
    ("Dropout", (1.5,), {}, ValueError,
     "dropout probability has to be between 0 and 1, but got 1.5"),
    ("Dropout", (-0.1,), {}, ValueError,
     "dropout probability has to be between 0 and 1, but got -0.1"),
    ("Embedding", (5, 2), {"padding_idx": 5}, AssertionError,
     "Padding_idx must be within num_embeddings"),
    ("Embedding", (5, 2), {"padding_idx": -6}, AssertionError,
     "Padding_idx must be within num_embeddings"),
]


@pytest.mark.parametrize(("name", "args", "kwargs", "exc", "msg"), CTOR_ERRORS)
def test_constructor_errors(name, args, kwargs, exc, msg):
    with pytest.raises(exc) as info:
        getattr(nn, name)(*args, **kwargs)
    assert str(info.value).startswith(msg)


@pytest.mark.parametrize(("name", "args", "kwargs", "exc", "msg"), CTOR_ERRORS)
def test_constructor_errors_are_torchs(torch, name, args, kwargs, exc, msg):
    with pytest.raises(exc) as info:
        getattr(torch.nn, name)(*args, **kwargs)
    assert str(info.value).startswith(msg)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_conv_padding_modes_other_than_zeros_are_refused_clearly(mode):
    with pytest.raises(NotImplementedError, match=rf"Conv2d\(padding_mode='{mode}'\) is not "
                                                  r"available in jitgrad yet: only "
                                                  r"padding_mode='zeros' is"):
        nn.Conv2d(2, 3, 3, padding=1, padding_mode=mode)


def test_input_dimension_errors():
    with pytest.raises(ValueError, match=r"^expected 2D or 3D input \(got 4D input\)$"):
        nn.BatchNorm1d(3).to(DEVICE)(J.zeros(2, 3, 4, 5))
    with pytest.raises(ValueError, match=r"^expected 4D input \(got 3D input\)$"):
        nn.BatchNorm2d(3).to(DEVICE)(J.zeros(2, 3, 4))
    bn = nn.BatchNorm1d(3).to(DEVICE)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        bn(J.zeros(1, 3))
    # the failed call counted no batch and changed no statistic
    assert bn.num_batches_tracked.item() == 1 and bn.running_mean.tolist() == [0.0] * 3
    with pytest.raises(RuntimeError, match="Expected 3D"):
        nn.Conv2d(3, 4, 3).to(DEVICE)(J.zeros(3, 5))
    emb = nn.Embedding(4, 2, max_norm=1.0).to(DEVICE)
    with pytest.raises(NotImplementedError, match="max_norm"):
        emb(J.tensor([0, 1]))


def test_batchnorm_counts_a_batch_before_checking_it_like_torch(torch):
    # torch increments num_batches_tracked before F.batch_norm rejects the input
    tbn = torch.nn.BatchNorm1d(3)
    with pytest.raises(ValueError):
        tbn(torch.zeros(1, 3))
    assert tbn.num_batches_tracked.item() == 1


# =========================================================================== vs torch

# (id, class name, args, kwargs, input shape); integer inputs for Embedding
LAYERS = [
    ("conv1d", "Conv1d", (4, 6, 3), {}, (2, 4, 9)),
    ("conv1d_same_dilated", "Conv1d", (4, 6, 4), {"padding": "same", "dilation": 2,
                                                  "bias": False}, (2, 4, 11)),
    ("conv1d_unbatched_strided", "Conv1d", (3, 2, 2), {"stride": 2, "padding": 1}, (3, 7)),
    ("conv2d", "Conv2d", (3, 8, 3), {"padding": 1}, (2, 3, 7, 7)),
    ("conv2d_strided_groups", "Conv2d", (4, 6, (3, 2)), {"stride": (2, 1), "padding": (1, 0),
                                                         "dilation": (1, 2), "groups": 2},
     (2, 4, 9, 8)),
    ("conv2d_valid_unbatched", "Conv2d", (2, 3, 2), {"padding": "valid", "bias": False},
     (2, 5, 6)),
    ("conv2d_same_even", "Conv2d", (2, 4, (2, 4)), {"padding": "same"}, (2, 2, 6, 7)),
    ("maxpool", "MaxPool2d", (2,), {}, (2, 3, 6, 6)),
    ("maxpool_options", "MaxPool2d", (3,), {"stride": 2, "padding": 1, "ceil_mode": True},
     (2, 3, 7, 8)),
    ("maxpool_indices", "MaxPool2d", ((2, 3),), {"stride": 1, "dilation": (2, 1),
                                                 "return_indices": True}, (3, 6, 6)),
    ("avgpool", "AvgPool2d", (2,), {}, (2, 3, 6, 6)),
    ("avgpool_options", "AvgPool2d", ((3, 2), (2, 1)), {"padding": 1, "ceil_mode": True,
                                                        "count_include_pad": False},
     (2, 3, 7, 6)),
    ("avgpool_divisor", "AvgPool2d", (3,), {"stride": 2, "divisor_override": 4}, (1, 2, 7, 7)),
    ("adaptive", "AdaptiveAvgPool2d", ((3, 2),), {}, (2, 3, 7, 5)),
    ("adaptive_none", "AdaptiveAvgPool2d", ((None, 1),), {}, (3, 5, 4)),
    ("adaptive_global", "AdaptiveAvgPool2d", (1,), {}, (2, 3, 4, 4)),
    ("dropout", "Dropout", (0.3,), {}, (4, 50)),
    ("embedding", "Embedding", (10, 4), {"padding_idx": 2}, (3, 5)),
    ("embedding_freq", "Embedding", (6, 3), {"scale_grad_by_freq": True}, (4, 4)),
    ("layernorm", "LayerNorm", (5,), {}, (3, 4, 5)),
    ("layernorm_2d_plain", "LayerNorm", ((4, 5),), {"elementwise_affine": False}, (3, 4, 5)),
    ("layernorm_no_bias", "LayerNorm", (5,), {"bias": False, "eps": 1e-3}, (6, 5)),
    ("batchnorm1d", "BatchNorm1d", (4,), {}, (8, 4)),
    ("batchnorm1d_3d_cumulative", "BatchNorm1d", (4,), {"momentum": None}, (5, 4, 3)),
    ("batchnorm2d", "BatchNorm2d", (3,), {"momentum": 0.3}, (4, 3, 5, 5)),
    ("batchnorm2d_untracked", "BatchNorm2d", (3,), {"affine": False,
                                                   "track_running_stats": False},
     (4, 3, 3, 3)),
]


def _randomise(m, tm, rng) -> None:
    """The same random values in both modules' floating-point parameters (a copied state)."""
    with jitgrad.no_grad():
        for (name, p), (_, tp) in zip(m.named_parameters(), tm.named_parameters()):
            v = rng.standard_normal(tuple(p.shape)).astype(np.float32)
            if name == "weight" and isinstance(m, nn.Embedding) and m.padding_idx is not None:
                v[m.padding_idx] = 0
            p.copy_(J.tensor(v))
            tp.data.copy_(tp.new_tensor(v))


def _inputs(name: str, shape: tuple, lib, rng, m=None):
    if name.startswith("embedding"):
        n = m.num_embeddings
        idx = rng.integers(0, n, shape)
        idx.flat[:3] = [2 % n, 2 % n, 0]  # the padding row, and a repeated index
        return idx.astype(np.int64), lib.tensor(idx)
    x = rng.standard_normal(shape).astype(np.float32)
    if name.startswith("maxpool"):  # distinct values: the argmax has no ties
        x = (rng.permutation(x.size).reshape(shape) / x.size).astype(np.float32)
    return x, lib.tensor(x, requires_grad=True)


def _buffers_equal(m, tm) -> None:
    for (name, b), (_, tb) in zip(m.named_buffers(), tm.named_buffers()):
        assert (b.dtype == jitgrad.int64) == (tb.dtype == __import__("torch").int64), name
        if b.dtype == jitgrad.int64:
            assert b.tolist() == tb.tolist(), name
        else:
            _close(_np(b), tb.cpu().numpy())


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize(("id_", "name", "args", "kwargs", "shape"), LAYERS,
                         ids=[c[0] for c in LAYERS])
def test_layer_forward_backward_equal_torch(torch, rng, id_, name, args, kwargs, shape):
    m, tm = getattr(nn, name)(*args, **kwargs).to(DEVICE), getattr(torch.nn, name)(*args, **kwargs)
    _randomise(m, tm, rng)
    for mode in ("train", "train", "eval"):  # twice in train mode: running statistics move
        m.train(mode == "train")
        tm.train(mode == "train")
        xn, x = _inputs(id_, shape, J, rng, m)
        tx = torch.tensor(xn, requires_grad=x.requires_grad)
        jitgrad.manual_seed(5)
        torch.manual_seed(5)  # the same dropout mask
        out, tout = m(x), tm(tx)
        if isinstance(out, tuple):  # max pooling's indices
            assert_array_equal(out[1].cpu().numpy(), tout[1].cpu().numpy())
            out, tout = out[0], tout[0]
        assert _node(out) == _node(tout)
        _close(_np(out), tout.detach().cpu().numpy())
        g = rng.standard_normal(tuple(out.shape)).astype(np.float32)
        m.zero_grad()
        tm.zero_grad()
        out.backward(J.tensor(g))
        tout.backward(torch.tensor(g))
        if x.requires_grad:
            _close(_np(x.grad), tx.grad.cpu().numpy())
        for (pname, p), (_, tp) in zip(m.named_parameters(), tm.named_parameters()):
            assert (p.grad is None) == (tp.grad is None), pname
            if p.grad is not None:
                _close(_np(p.grad), tp.grad.cpu().numpy())
        _buffers_equal(m, tm)


@pytest.mark.parametrize(("shape", "bias"), [((5, 3), True), ((5, 3), False),
                                           ((2, 5, 3), True), ((3,), True)])
def test_linear_records_torchs_nodes(torch, rng, shape, bias):
    """nn.Linear goes through F.linear, as torch's does: addmm for a batch of vectors."""
    m, tm = nn.Linear(3, 4, bias=bias).to(DEVICE), torch.nn.Linear(3, 4, bias=bias)
    _randomise(m, tm, rng)
    x = rng.standard_normal(shape).astype(np.float32)
    out, tout = m(J.tensor(x)), tm(torch.tensor(x))
    assert _node(out) == _node(tout)
    _close(_np(out), tout.detach().cpu().numpy())


LOSSES = [  # (class name, kwargs, input kind)
    ("MSELoss", {}, "pair"),
    ("MSELoss", {"reduction": "sum"}, "pair"),
    ("L1Loss", {"reduction": "none"}, "pair"),
    ("SmoothL1Loss", {"beta": 0.5}, "pair"),
    ("SmoothL1Loss", {"beta": 0.0, "reduction": "sum"}, "pair"),
    ("CrossEntropyLoss", {}, "classes"),
    ("CrossEntropyLoss", {"weight": True, "ignore_index": 1, "label_smoothing": 0.2},
     "classes"),
    ("CrossEntropyLoss", {"reduction": "none", "label_smoothing": 0.1}, "classes2d"),
    ("CrossEntropyLoss", {"weight": True, "reduction": "sum"}, "probs"),
    ("NLLLoss", {}, "logprobs"),
    ("NLLLoss", {"weight": True, "ignore_index": 0, "reduction": "sum"}, "logprobs"),
    ("BCELoss", {}, "binary"),
    ("BCELoss", {"weight": True, "reduction": "none"}, "binary"),
    ("BCEWithLogitsLoss", {}, "logits"),
    ("BCEWithLogitsLoss", {"pos_weight": True, "weight": True}, "logits"),
]


def _loss_case(kind: str, rng):
    """(input, target, class count or feature count)."""
    f32 = np.float32
    if kind == "pair":
        return rng.standard_normal((4, 3)).astype(f32), rng.standard_normal((4, 3)).astype(f32), 3
    if kind in ("classes", "logprobs"):
        x = rng.standard_normal((6, 5)).astype(f32)
        if kind == "logprobs":
            x = x - np.log(np.exp(x).sum(1, keepdims=True))
        return x, rng.integers(0, 5, 6), 5
    if kind == "classes2d":
        return rng.standard_normal((2, 4, 3, 3)).astype(f32), rng.integers(0, 4, (2, 3, 3)), 4
    if kind == "probs":
        t = rng.random((6, 5)).astype(f32)
        return rng.standard_normal((6, 5)).astype(f32), t / t.sum(1, keepdims=True), 5
    if kind == "binary":
        x = rng.uniform(0.05, 0.95, (5, 3)).astype(f32)
        return x, rng.integers(0, 2, (5, 3)).astype(f32), 3
    return rng.standard_normal((5, 3)).astype(f32), rng.random((5, 3)).astype(f32), 3


@pytest.mark.parametrize(("name", "kwargs", "kind"), LOSSES,
                         ids=[f"{n}-{k}-{i}" for i, (n, _, k) in enumerate(LOSSES)])
def test_loss_modules_equal_torch(torch, rng, name, kwargs, kind):
    x, t, c = _loss_case(kind, rng)
    kw, tkw = dict(kwargs), dict(kwargs)
    for key in ("weight", "pos_weight"):
        if kw.get(key):
            w = rng.uniform(0.5, 2.0, c).astype(np.float32)
            kw[key], tkw[key] = J.tensor(w), torch.tensor(w)
    m, tm = getattr(nn, name)(**kw).to(DEVICE), getattr(torch.nn, name)(**tkw)
    assert list(m.state_dict()) == list(tm.state_dict())
    xj, xt = J.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, tout = m(xj, J.tensor(t)), tm(xt, torch.tensor(t))
    assert tuple(out.shape) == tuple(tout.shape)
    _close(_np(out), tout.detach().cpu().numpy())
    g = rng.standard_normal(tuple(out.shape)).astype(np.float32)
    out.backward(J.tensor(g))
    tout.backward(torch.tensor(g))
    _close(_np(xj.grad), xt.grad.cpu().numpy())


def make_net(lib=jitgrad):
    """Every layer kind on one path, built from `lib` (jitgrad or torch)."""
    N = lib.nn

    class Net(N.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = N.Embedding(12, 3, padding_idx=0)
            self.seq = N.Conv1d(3, 4, 3, padding="same")
            self.features = N.Sequential(
                N.Conv2d(2, 6, 3, padding=1, bias=False), N.BatchNorm2d(6), N.ReLU(),
                N.MaxPool2d(2),
                N.Conv2d(6, 6, 3, padding="same", groups=3, bias=False), N.BatchNorm2d(6),
                N.ReLU(), N.AvgPool2d(2), N.AdaptiveAvgPool2d((1, 1)), N.Flatten())
            self.norm = N.LayerNorm(10)
            self.bn1 = N.BatchNorm1d(6, momentum=None)
            self.drop = N.Dropout(0.25)
            self.head = N.Linear(10, 4)

        def forward(self, images, tokens):
            s = self.seq(self.emb(tokens).transpose(1, 2)).mean(2)  # (N, 4)
            h = self.features(images)  # (N, 6)
            return self.head(self.drop(self.norm(lib.cat([self.bn1(h), s], 1))))

    return Net().to(DEVICE) if lib is jitgrad else Net()


def _data(rng, n: int = 8):
    images = rng.standard_normal((n, 2, 8, 8)).astype(np.float32)
    tokens = rng.integers(0, 12, (n, 7))
    tokens[:, -2:] = 0  # padding
    labels = rng.integers(0, 4, n)
    return images, tokens, labels


def _pair_of_nets(torch, seed: int = 0):
    jitgrad.manual_seed(seed)
    m = make_net(jitgrad)
    torch.manual_seed(seed)
    return m, make_net(torch)


@pytest.mark.parametrize(("opt", "kw"), [("SGD", {"lr": 0.05, "momentum": 0.9}),
                                         ("Adam", {"lr": 0.01})])
def test_training_steps_equal_torch(torch, rng, opt, kw):
    m, tm = _pair_of_nets(torch)
    sd, tsd = m.state_dict(), tm.state_dict()
    assert list(sd) == list(tsd)
    for k in sd:
        assert _same_bits(sd[k].cpu().numpy(), tsd[k].cpu().numpy()), k
    o, to = getattr(jitgrad.optim, opt)(m.parameters(), **kw), \
        getattr(torch.optim, opt)(tm.parameters(), **kw)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.05)
    tloss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.05)
    jitgrad.manual_seed(1)
    torch.manual_seed(1)  # the dropout masks of every step
    for _ in range(1 if CUDASIM else 4):  # the simulator: one Python thread per CUDA thread
        images, tokens, labels = _data(rng)
        o.zero_grad()
        to.zero_grad()
        loss = loss_fn(m(J.tensor(images), J.tensor(tokens)),
                       J.tensor(labels))
        tloss = tloss_fn(tm(torch.tensor(images), torch.tensor(tokens)), torch.tensor(labels))
        _close(loss.item(), tloss.item(), rtol=1e-4)
        loss.backward()
        tloss.backward()
        o.step()
        to.step()
    sd, tsd = m.state_dict(), tm.state_dict()
    for k in sd:
        if sd[k].dtype == jitgrad.int64:
            assert sd[k].tolist() == tsd[k].tolist(), k
        else:
            _close(sd[k].cpu().numpy(), tsd[k].cpu().numpy(), rtol=1e-4, atol=1e-5)
    m.eval()
    tm.eval()
    images, tokens, _ = _data(rng)
    _close(_np(m(J.tensor(images), J.tensor(tokens))),
           tm(torch.tensor(images), torch.tensor(tokens)).detach().cpu().numpy(), rtol=1e-4,
           atol=1e-5)


def test_state_dicts_cross_between_jitgrad_and_torch(torch, rng):
    m, tm = _pair_of_nets(torch, seed=0)
    _, other = _pair_of_nets(torch, seed=1)  # torch weights that differ from m's
    images, tokens, _ = _data(rng)
    other(torch.tensor(images), torch.tensor(tokens))  # running statistics that moved
    m.load_state_dict({k: J.tensor(v.cpu().numpy()) for k, v in other.state_dict().items()})
    m.eval()
    other.eval()
    _close(_np(m(J.tensor(images), J.tensor(tokens))),
           other(torch.tensor(images), torch.tensor(tokens)).detach().cpu().numpy())
    tm.load_state_dict({k: torch.tensor(v.cpu().numpy()) for k, v in m.state_dict().items()})
    assert tm.features[1].num_batches_tracked.item() == 1


# =========================================================================== references

def _t(a, requires_grad: bool = False):
    return J.tensor(np.asarray(a), requires_grad=requires_grad)


@pytest.mark.parametrize(("cls", "args", "kwargs", "shape"), [
    ("Conv1d", (4, 6, 3), {"stride": 2, "padding": 1, "groups": 2}, (2, 4, 9)),
    ("Conv1d", (3, 2, 4), {"padding": "same", "dilation": 2}, (3, 10)),
    ("Conv2d", (4, 6, (3, 2)), {"stride": (2, 1), "padding": (1, 0), "dilation": (1, 2),
                                "groups": 2}, (2, 4, 9, 8)),
    ("Conv2d", (2, 3, (2, 4)), {"padding": "same", "bias": False}, (2, 6, 7)),
    ("Conv2d", (2, 3, 3), {"padding": "valid"}, (1, 2, 5, 5)),
])
def test_conv_modules_vs_reference(rng, cls, args, kwargs, shape):
    m = getattr(nn, cls)(*args, **kwargs).double().to(DEVICE)
    x = rng.standard_normal(shape)
    want = conv_ref(x, _np(m.weight), None if m.bias is None else _np(m.bias), m.stride,
                    m.padding, m.dilation, m.groups)
    assert_allclose(_np(m(_t(x))), want, rtol=1e-10, atol=1e-12)
    # gradients of input, weight and bias by central differences
    inputs = [_t(x, True), _t(_np(m.weight), True)] + \
        ([] if m.bias is None else [_t(_np(m.bias), True)])
    assert gradcheck(lambda x, w, b=None: m._conv_forward(x, w, b), inputs)


def test_pooling_modules_vs_reference(rng):
    x = rng.standard_normal((2, 3, 7, 8))
    out, idx = nn.MaxPool2d((3, 2), stride=2, padding=1, dilation=(1, 2), ceil_mode=True,
                            return_indices=True)(_t(x))
    want, want_idx = max_pool_ref(x, (3, 2), 2, 1, (1, 2), True)
    assert_array_equal(_np(out), want)
    assert_array_equal(idx.cpu().numpy(), want_idx)
    assert_array_equal(_np(nn.MaxPool2d(2)(_t(x))), max_pool_ref(x, 2)[0])
    for args, kwargs in (((2,), {}), (((3, 2), (2, 1)), {"padding": 1, "ceil_mode": True,
                                                          "count_include_pad": False}),
                         ((3,), {"stride": 2, "divisor_override": 4})):
        got = nn.AvgPool2d(*args, **kwargs)(_t(x))
        assert_allclose(_np(got), avg_pool_ref(x, *args, **kwargs), rtol=1e-12)
    # adaptive: windows [floor(i*n/k), ceil((i+1)*n/k))
    got = _np(nn.AdaptiveAvgPool2d((3, None))(_t(x)))
    rows = [(0, 3), (2, 5), (4, 7)]
    want = np.stack([x[..., a:b, :].mean(-2) for a, b in rows], -2)
    assert_allclose(got, want, rtol=1e-12)
    assert_allclose(_np(nn.AdaptiveAvgPool2d(1)(_t(x))), x.mean((-2, -1), keepdims=True),
                    rtol=1e-12)
    xg = _t(x[:1, :1, :5, :5], True)
    assert gradcheck(nn.AvgPool2d(2, 1, 1, count_include_pad=False), [xg])
    assert gradcheck(nn.AdaptiveAvgPool2d((2, 3)), [xg])


def test_dropout_module_train_and_eval():
    d = nn.Dropout(0.25)
    x = J.ones(40, 50, requires_grad=True)
    jitgrad.manual_seed(7)
    y = d(x)
    keep = torch_mask(7, (40, 50), 0.75)  # torch's mask for this seed, replayed in numpy
    assert_array_equal(_np(y), np.where(keep, np.float32(1 / 0.75), 0).astype(np.float32))
    y.sum().backward()
    assert_array_equal(_np(x.grad), _np(y))
    d.eval()
    assert d(x) is x  # the identity in eval mode
    assert nn.Dropout(0.0)(x) is x
    assert (_np(nn.Dropout(1.0)(x)) == 0).all()
    xi = J.ones(3, 4)
    out = nn.Dropout(0.5, inplace=True)(xi)
    assert out is xi and set(np.unique(xi.cpu().numpy())) <= {0.0, 2.0}


def test_embedding_module():
    jitgrad.manual_seed(0)
    emb = nn.Embedding(6, 3, padding_idx=1).to(DEVICE)
    idx = J.tensor([[1, 4, 4], [0, 5, 1]])
    out = emb(idx)
    assert_array_equal(_np(out), _np(emb.weight)[idx.cpu().numpy()])
    out.sum().backward()
    counts = np.bincount(idx.cpu().numpy().ravel(), minlength=6).astype(np.float32)
    counts[1] = 0  # the padding row gets no gradient
    assert_array_equal(_np(emb.weight.grad), np.repeat(counts[:, None], 3, 1))
    w = J.arange(12.0).reshape(4, 3)
    frozen = nn.Embedding.from_pretrained(w)
    assert not frozen.weight.requires_grad and frozen(J.tensor([2])).tolist() == [
        [6.0, 7.0, 8.0]]
    assert nn.Embedding.from_pretrained(w, freeze=False).weight.requires_grad
    with pytest.raises(AssertionError, match="Shape of weight does not match"):
        nn.Embedding(3, 3, _weight=w)


def test_layernorm_module_vs_numpy(rng):
    x = rng.standard_normal((3, 4, 5))
    m = nn.LayerNorm((4, 5), eps=1e-3).double().to(DEVICE)
    with jitgrad.no_grad():
        m.weight.copy_(_t(rng.standard_normal((4, 5))))
        m.bias.copy_(_t(rng.standard_normal((4, 5))))
    mu = x.mean((1, 2), keepdims=True)
    var = x.var((1, 2), keepdims=True)
    want = (x - mu) / np.sqrt(var + 1e-3) * _np(m.weight) + _np(m.bias)
    assert_allclose(_np(m(_t(x))), want, rtol=1e-10, atol=1e-12)
    plain = nn.LayerNorm(5, elementwise_affine=False).double().to(DEVICE)
    want = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
    assert_allclose(_np(plain(_t(x))), want, rtol=1e-10, atol=1e-12)
    assert gradcheck(lambda x, w, b: jitgrad.nn.functional.layer_norm(x, (4, 5), w, b, 1e-3),
                     [_t(x, True), _t(_np(m.weight), True), _t(_np(m.bias), True)])


def test_batchnorm_running_statistics_vs_numpy(rng):
    m = nn.BatchNorm2d(3, momentum=0.2).double().to(DEVICE)
    with jitgrad.no_grad():
        m.weight.copy_(_t([0.5, 1.0, 2.0]))
        m.bias.copy_(_t([0.0, -1.0, 1.0]))
    rm, rv = np.zeros(3), np.ones(3)
    for step in range(3):
        x = rng.standard_normal((4, 3, 2, 5)) * (step + 1) + step
        mean, var = x.mean((0, 2, 3)), x.var((0, 2, 3))
        want = (x - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5)
        want = want * _np(m.weight)[:, None, None] + _np(m.bias)[:, None, None]
        assert_allclose(_np(m(_t(x))), want, rtol=1e-10, atol=1e-12)
        n = x.size / 3
        rm = 0.8 * rm + 0.2 * mean
        rv = 0.8 * rv + 0.2 * var * n / (n - 1)  # unbiased variance in the running estimate
        assert_allclose(m.running_mean.cpu().numpy(), rm, rtol=1e-12)
        assert_allclose(m.running_var.cpu().numpy(), rv, rtol=1e-12)
        assert m.num_batches_tracked.item() == step + 1
    m.eval()  # eval mode: the running statistics normalise, and stay as they are
    x = rng.standard_normal((2, 3, 2, 2))
    want = (x - rm[:, None, None]) / np.sqrt(rv[:, None, None] + 1e-5)
    want = want * _np(m.weight)[:, None, None] + _np(m.bias)[:, None, None]
    assert_allclose(_np(m(_t(x))), want, rtol=1e-10, atol=1e-12)
    assert m.num_batches_tracked.item() == 3
    assert_allclose(m.running_mean.cpu().numpy(), rm, rtol=1e-12)


def test_batchnorm_cumulative_average_and_untracked(rng):
    m = nn.BatchNorm1d(2, momentum=None).double().to(DEVICE)
    xs = [rng.standard_normal((5, 2, 3)) + i for i in range(4)]
    for x in xs:
        m(_t(x))
    # momentum=None: the running mean is the plain average of the batch means
    assert_allclose(m.running_mean.cpu().numpy(), np.mean([x.mean((0, 2)) for x in xs], 0),
                    rtol=1e-12)
    assert_allclose(m.running_var.cpu().numpy(),
                    np.mean([x.var((0, 2), ddof=1) for x in xs], 0), rtol=1e-12)
    u = nn.BatchNorm1d(2, affine=False, track_running_stats=False).double().to(DEVICE).eval()
    x = rng.standard_normal((6, 2)) * 3 + 1
    # no running statistics: batch statistics even in eval mode
    assert_allclose(_np(u(_t(x))), (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5), rtol=1e-10)
    assert list(u.state_dict()) == [] and list(u.parameters()) == []


LOSS_REFS = [  # (module, numpy reference of (x, t) -> per-element or reduced loss, kind)
    (nn.MSELoss(), lambda x, t: ((x - t) ** 2).mean(), "pair"),
    (nn.L1Loss(reduction="sum"), lambda x, t: np.abs(x - t).sum(), "pair"),
    (nn.SmoothL1Loss(beta=0.5), lambda x, t: np.where(
        np.abs(x - t) < 0.5, 0.5 * (x - t) ** 2 / 0.5, np.abs(x - t) - 0.25).mean(), "pair"),
    (nn.CrossEntropyLoss(), lambda x, t: -_log_softmax(x)[np.arange(len(t)), t].mean(),
     "classes"),
    (nn.CrossEntropyLoss(label_smoothing=0.2, reduction="sum"), lambda x, t: -(
        0.8 * _log_softmax(x)[np.arange(len(t)), t] + 0.2 * _log_softmax(x).mean(1)).sum(),
     "classes"),
    (nn.CrossEntropyLoss(ignore_index=1), lambda x, t: -_log_softmax(x)[
        np.arange(len(t)), t][t != 1].mean(), "classes"),
    (nn.NLLLoss(weight=J.tensor([1.0, 2.0, 0.5, 1.0, 3.0], dtype=jitgrad.float64)),
     lambda x, t: -(np.array([1.0, 2.0, 0.5, 1.0, 3.0])[t] * x[np.arange(len(t)), t]).sum()
     / np.array([1.0, 2.0, 0.5, 1.0, 3.0])[t].sum(), "logprobs"),
    (nn.BCELoss(), lambda x, t: -(t * np.log(x) + (1 - t) * np.log(1 - x)).mean(), "binary"),
    (nn.BCEWithLogitsLoss(pos_weight=J.tensor([1.0, 2.0, 3.0], dtype=jitgrad.float64)),
     lambda x, t: -(np.array([1.0, 2.0, 3.0]) * t * np.log(_sigmoid(x))
                    + (1 - t) * np.log(1 - _sigmoid(x))).mean(), "logits"),
]


def _log_softmax(x):
    z = x - x.max(1, keepdims=True)
    return z - np.log(np.exp(z).sum(1, keepdims=True))


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


@pytest.mark.parametrize(("module", "ref", "kind"), LOSS_REFS,
                         ids=[f"{type(m).__name__}-{i}" for i, (m, _, _) in
                              enumerate(LOSS_REFS)])
def test_loss_modules_vs_numpy(rng, module, ref, kind):
    x, t, _ = _loss_case(kind, rng)
    x = x.astype(np.float64)
    t = t.astype(np.float64) if t.dtype.kind == "f" else t
    xj = _t(x, True)
    out = module(xj, _t(t))
    assert_allclose(out.item(), ref(x, t), rtol=1e-10)
    assert gradcheck(lambda x: module(x, _t(t)), [xj])


def test_loss_module_options():
    with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated, "
                                         "please use reduction='sum' instead."):
        m = nn.MSELoss(size_average=False)
    assert m.reduction == "sum"
    w = J.tensor([1.0, 2.0])
    ce = nn.CrossEntropyLoss(weight=w)
    assert list(ce.state_dict()) == ["weight"] and ce.weight is w
    assert ce.double().to(DEVICE).weight.dtype == jitgrad.float64  # a buffer: converted with the module
    assert list(nn.CrossEntropyLoss().state_dict()) == []
    pos = nn.BCEWithLogitsLoss(pos_weight=J.tensor([3.0]))
    assert list(pos.state_dict()) == ["pos_weight"]
    with pytest.raises(ValueError, match="mean_please is not a valid value for reduction"):
        nn.L1Loss(reduction="mean_please")(J.zeros(2), J.zeros(2))


# =========================================================================== modes and state

def test_train_eval_switches_every_layer(rng):
    m = make_net()
    images, tokens, _ = _data(rng)
    a, b = m(_t(images), _t(tokens)), m(_t(images), _t(tokens))
    assert not np.array_equal(_np(a), _np(b))  # dropout and moving statistics
    m.eval()
    assert all(not mod.training for mod in m.modules())
    before = {k: v.cpu().numpy().copy() for k, v in m.state_dict().items()}
    with jitgrad.no_grad():
        a, b = m(_t(images), _t(tokens)), m(_t(images), _t(tokens))
    assert_array_equal(_np(a), _np(b))
    for k, v in m.state_dict().items():  # eval mode leaves the running statistics alone
        assert_array_equal(v.cpu().numpy(), before[k])


def test_state_dict_round_trip_with_batchnorm_buffers(rng):
    jitgrad.manual_seed(0)
    m = make_net()
    images, tokens, _ = _data(rng)
    for _ in range(3):
        m(_t(images), _t(tokens))
    sd = m.state_dict()
    bn_keys = [k for k in sd if k.startswith(("features.1.", "features.5.", "bn1."))]
    assert [k.rsplit(".", 1)[1] for k in bn_keys[:5]] == [
        "weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    assert sd["features.1.num_batches_tracked"].item() == 3
    assert sd["features.1.num_batches_tracked"].dtype == jitgrad.int64
    jitgrad.manual_seed(1)
    fresh = make_net()
    assert not np.array_equal(fresh.state_dict()["head.weight"].cpu().numpy(),
                              sd["head.weight"].cpu().numpy())
    result = fresh.load_state_dict(sd)
    assert result.missing_keys == [] and result.unexpected_keys == []
    for k, v in fresh.state_dict().items():
        assert _same_bits(v.cpu().numpy(), sd[k].cpu().numpy()), k
    m.eval()
    fresh.eval()
    assert _same_bits(_np(m(_t(images), _t(tokens))), _np(fresh(_t(images), _t(tokens))))


def test_batchnorm_loads_a_state_dict_from_before_num_batches_tracked():
    old = nn.BatchNorm1d(2).to(DEVICE)
    sd = old.state_dict()
    del sd["num_batches_tracked"]
    sd._metadata[""]["version"] = 1  # written by a BatchNorm older than the counter
    new = nn.BatchNorm1d(2).to(DEVICE)
    new.num_batches_tracked.fill_(4)
    new.load_state_dict(sd)
    assert new.num_batches_tracked.item() == 4
    sd._metadata[""]["version"] = 2  # a current state dict must have it
    with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: '
                                           '"num_batches_tracked"'):
        new.load_state_dict(sd)


def test_conversions_keep_the_step_counter_integer():
    m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)).double().to(DEVICE)
    assert m[0].weight.dtype == jitgrad.float64 and m[1].running_var.dtype == jitgrad.float64
    assert m[1].num_batches_tracked.dtype == jitgrad.int64
    m.float()
    assert m[1].running_mean.dtype == jitgrad.float32


def test_saved_and_loaded_model_gives_identical_outputs(tmp_path, rng):
    jitgrad.manual_seed(0)
    m = make_net()
    images, tokens, labels = _data(rng)
    opt = jitgrad.optim.Adam(m.parameters(), lr=0.01)
    for _ in range(2):
        opt.zero_grad()
        nn.CrossEntropyLoss()(m(_t(images), _t(tokens)), _t(labels)).backward()
        opt.step()
    path = tmp_path / "net.pt"
    jitgrad.save(m.state_dict(), path)
    jitgrad.manual_seed(1)
    loaded = make_net()
    loaded.load_state_dict(jitgrad.load(path))
    m.eval()
    loaded.eval()
    assert _same_bits(_np(m(_t(images), _t(tokens))), _np(loaded(_t(images), _t(tokens))))
    assert loaded.bn1.num_batches_tracked.item() == 2
    m.train()
    loaded.train()
    jitgrad.manual_seed(3)
    a = m(_t(images), _t(tokens))
    jitgrad.manual_seed(3)
    assert _same_bits(_np(a), _np(loaded(_t(images), _t(tokens))))


@pytest.mark.skipif(CUDASIM, reason="40 training steps: too slow on the CUDA simulator")
def test_small_cnn_reaches_a_fixed_loss():
    """Horizontal against vertical bars in noise: a small CNN separates them."""
    data = np.random.default_rng(0)
    n = 64
    x = data.normal(0, 0.3, (n, 1, 6, 6)).astype(np.float32)
    y = np.arange(n) % 2
    for i in range(n):
        k = data.integers(0, 6)
        if y[i]:
            x[i, 0, :, k] += 1.0
        else:
            x[i, 0, k, :] += 1.0
    jitgrad.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.1), nn.Linear(36, 2)).to(DEVICE)
    opt = jitgrad.optim.Adam(model.parameters(), lr=0.03)
    loss_fn = nn.CrossEntropyLoss()
    xt, yt = J.tensor(x), J.tensor(y)
    for _ in range(40):
        opt.zero_grad()
        loss = loss_fn(model(xt), yt)
        loss.backward()
        opt.step()
    model.eval()
    with jitgrad.no_grad():
        final = loss_fn(model(xt), yt).item()
        acc = (model(xt).argmax(1).cpu().numpy() == y).mean()
    assert final < 0.05 and acc == 1.0


def test_modules_are_exported_where_torch_has_them(torch):
    names = ["Conv1d", "Conv2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "Dropout",
             "Embedding", "LayerNorm", "BatchNorm1d", "BatchNorm2d", "MSELoss", "L1Loss",
             "CrossEntropyLoss", "NLLLoss", "BCELoss", "BCEWithLogitsLoss", "SmoothL1Loss"]
    for name in names:
        assert getattr(nn, name) is getattr(nn.modules, name)
        assert name in nn.modules.__all__
        # the same module paths as torch's (torch.nn.modules.conv.Conv2d, ...)
        assert getattr(nn, name).__module__.rsplit(".", 1)[1] == \
            getattr(torch.nn, name).__module__.rsplit(".", 1)[1]
