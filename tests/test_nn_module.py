"""jitgrad.nn: Parameter, Module (registration, traversal, state dicts, conversion, hooks,
repr), containers, the layers that exist now, nn.init and nn.utils; torch as the oracle where
it is installed."""

from __future__ import annotations

import copy
import math
import pickle
from collections import OrderedDict

import numpy as np
import pytest
from conftest import DEVICE
from on_device import J, torch_with_our_texts

import jitgrad
from jitgrad import nn
from jitgrad.nn import functional as F
from jitgrad.nn import init

ON_CPU_ONLY = pytest.mark.skipif(DEVICE != "cpu", reason="CPU kernel internals (numpy arrays)")


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def _np(t):
    return t.detach().cpu().numpy()


def _same_bits(a, b) -> bool:
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


class Block(nn.Module):
    """A module with a parameter, buffers (one non-persistent) and a child."""

    def __init__(self, lib=jitgrad):
        super().__init__()
        self.fc = lib.nn.Linear(3, 4)
        self.scale = lib.nn.Parameter(lib.ones(4))
        self.register_buffer("running", lib.zeros(4))
        self.register_buffer("scratch", lib.zeros(2), persistent=False)

    def forward(self, x):
        return self.fc(x) * self.scale


def _torch_block(torch):
    class TBlock(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(3, 4)
            self.scale = torch.nn.Parameter(torch.ones(4))
            self.register_buffer("running", torch.zeros(4))
            self.register_buffer("scratch", torch.zeros(2), persistent=False)

    return TBlock()


def _model(lib, block):
    return lib.nn.Sequential(OrderedDict(
        block=block, act=lib.nn.ReLU(),
        head=lib.nn.ModuleList([lib.nn.Linear(4, 4) for _ in range(3)] + [lib.nn.Tanh()]),
        out=lib.nn.Linear(4, 2)))


# =========================================================================== Parameter

def test_parameter_basics(torch):
    t = J.tensor([1.0, 2.0])
    p = nn.Parameter(t)
    assert isinstance(p, jitgrad.Tensor) and p.requires_grad and p.is_leaf
    on = "" if DEVICE == "cpu" else "device='cuda:0', "  # torch's repr of a CUDA tensor
    want = repr(torch.nn.Parameter(torch.tensor([1.0, 2.0])))
    assert repr(p) == want.replace("requires_grad=True", on + "requires_grad=True")
    assert repr(p).startswith("Parameter containing:\ntensor([1., 2.], " + on +
                              "requires_grad=True)")
    # shares storage and version counter with the tensor it was made from
    with jitgrad.no_grad():
        t.add_(1)
    assert p.tolist() == [2.0, 3.0] and p._version == t._version == 1
    assert not nn.Parameter(t, requires_grad=False).requires_grad
    assert nn.Parameter().shape == (0,)
    with pytest.raises(RuntimeError, match="floating point"):
        nn.Parameter(J.tensor([1, 2]))


def test_parameter_in_ops_and_copies():
    p = nn.Parameter(J.tensor([1.0, -2.0]))
    y = (p * p).sum()
    assert type(p * 2) is jitgrad.Tensor  # results are plain tensors, as in torch
    y.backward()
    assert p.grad.tolist() == [2.0, -4.0]
    q = copy.deepcopy(p)
    assert type(q) is nn.Parameter and q.requires_grad and q.grad is None
    assert q.tolist() == p.tolist() and q._data is not p._data
    r = pickle.loads(pickle.dumps(p))
    assert type(r) is nn.Parameter and r.requires_grad and r.tolist() == p.tolist()


# =========================================================================== registration

def test_registration_and_traversal_order_matches_torch(torch):
    jitgrad.manual_seed(0)
    m = _model(jitgrad, Block())
    tm = _model(torch, _torch_block(torch))
    assert [n for n, _ in m.named_parameters()] == [n for n, _ in tm.named_parameters()]
    assert [n for n, _ in m.named_buffers()] == [n for n, _ in tm.named_buffers()]
    assert [n for n, _ in m.named_modules()] == [n for n, _ in tm.named_modules()]
    assert [n for n, _ in m.named_children()] == [n for n, _ in tm.named_children()]
    assert list(m.state_dict()) == list(tm.state_dict())
    assert [n for n, _ in m.named_parameters(prefix="net", recurse=True)] == \
        [n for n, _ in tm.named_parameters(prefix="net", recurse=True)]
    assert [n for n, _ in m.block.named_parameters(recurse=False)] == ["scale"]


def test_registration_order_without_torch():
    m = _model(jitgrad, Block())
    assert [n for n, _ in m.named_parameters()][:4] == [
        "block.scale", "block.fc.weight", "block.fc.bias", "head.0.weight"]
    assert [n for n, _ in m.named_buffers()] == ["block.running", "block.scratch"]
    assert "block.scratch" not in m.state_dict()
    assert len(list(m.parameters())) == 2 + 1 + 6 + 2


def test_shared_modules_and_tied_weights_appear_once():
    shared = nn.Linear(2, 2)
    m = nn.Sequential(shared, nn.ReLU(), shared)
    assert len(list(m.parameters())) == 2
    assert len(list(m.named_parameters(remove_duplicate=False))) == 4
    assert [n for n, _ in m.named_modules()] == ["", "0", "1"]
    assert len(list(m.children())) == 2
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    b.weight = a.weight
    assert len(list(nn.Sequential(a, b).parameters())) == 3


def test_setattr_rules_and_errors():
    m = nn.Module()
    m.w = nn.Parameter(J.zeros(2))
    assert "w" in m._parameters
    with pytest.raises(TypeError, match=r"cannot assign 'jitgrad.FloatTensor' as parameter 'w' "
                                        r"\(torch.nn.Parameter or None expected\)"):
        m.w = J.zeros(2)
    m.w = None  # allowed: the name stays registered, with no value
    assert m.w is None and "w" in m._parameters and list(m.parameters()) == []
    m.register_buffer("b", J.zeros(1))
    m.b = J.ones(1)  # a tensor assigned to a buffer name replaces the buffer
    assert m._buffers["b"].tolist() == [1.0]
    with pytest.raises(TypeError, match="cannot assign 'int' as buffer 'b'"):
        m.b = 3
    m.c = nn.Buffer(J.ones(2), persistent=False)
    assert "c" in m._buffers and "c" not in m.state_dict()
    m.child = nn.Linear(1, 1)
    with pytest.raises(TypeError, match="as child module 'child'"):
        m.child = 3
    m.child = nn.ReLU()  # a module replaces a module
    m.plain = 3
    assert m.plain == 3 and "plain" in m.__dict__
    with pytest.raises(KeyError, match="attribute 'plain' already exists"):
        m.register_buffer("plain", None)
    with pytest.raises(KeyError, match=r'contain "\."'):
        m.register_parameter("a.b", None)
    with pytest.raises(KeyError, match="empty string"):
        m.add_module("", nn.ReLU())
    with pytest.raises(TypeError, match="is not a Module subclass"):
        m.add_module("x", 3)
    with pytest.raises(TypeError, match="cannot assign 'jitgrad.FloatTensor' object to "
                                        "parameter 'q'"):
        m.register_parameter("q", J.zeros(1))
    q = nn.Parameter(J.ones(1))
    q._grad_fn = (J.ones(1, requires_grad=True) * 2).grad_fn  # a non-leaf "parameter"
    with pytest.raises(ValueError, match="Cannot assign non-leaf Tensor to parameter 'r'"):
        m.register_parameter("r", q)
    with pytest.raises(AttributeError, match="'Module' object has no attribute 'nope'"):
        m.nope  # noqa: B018
    del m.child, m.c, m.w
    assert "child" not in m._modules and "c" not in m._buffers and "w" not in m._parameters


def test_assignment_before_init_is_an_error():
    class Early(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(J.zeros(1))
            super().__init__()

    with pytest.raises(AttributeError, match=r"cannot assign parameters before "
                                             r"Module.__init__\(\) call"):
        Early()


def test_forward_missing_and_init_arguments():
    with pytest.raises(NotImplementedError, match=r'Module \[Module\] is missing the required '
                                                  r'"forward" function'):
        nn.Module()(1)
    with pytest.raises(TypeError, match="takes 1 positional argument but 2 were given"):
        nn.Module(1)


def test_get_submodule_parameter_buffer():
    m = _model(jitgrad, Block())
    assert m.get_submodule("head.1") is m.head[1]
    assert m.get_parameter("block.fc.weight") is m.block.fc.weight
    assert m.get_buffer("block.running") is m.block.running
    with pytest.raises(AttributeError, match="has no attribute `nope`"):
        m.get_submodule("block.nope")


# =========================================================================== modes and grads

def test_train_eval_zero_grad_requires_grad():
    m = _model(jitgrad, Block())
    assert all(mod.training for mod in m.modules())
    assert m.eval() is m and not any(mod.training for mod in m.modules())
    m.train()
    assert all(mod.training for mod in m.modules())
    with pytest.raises(ValueError, match="training mode is expected to be boolean"):
        m.train("yes")
    m = nn.Sequential(Block(), nn.ReLU(), nn.Linear(4, 2)).to(DEVICE)
    m(J.ones(2, 3)).sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.cpu().numpy().any() for p in m.parameters())
    m.zero_grad()  # torch's default: set_to_none=True
    assert all(p.grad is None for p in m.parameters())
    m.requires_grad_(False)
    assert not any(p.requires_grad for p in m.parameters())


def test_apply_visits_children_first():
    m = nn.Sequential(nn.Linear(1, 1), nn.Sequential(nn.ReLU()))
    seen = []
    assert m.apply(lambda mod: seen.append(type(mod).__name__)) is m
    assert seen == ["Linear", "ReLU", "Sequential", "Sequential"]


# =========================================================================== conversion

def test_to_dtype_keeps_parameter_identity_and_converts_grads():
    m = Block().to(DEVICE)
    m.register_buffer("count", J.tensor([3]))
    w = m.fc.weight
    m(J.ones(2, 3)).sum().backward()
    assert m.double() is m
    assert m.fc.weight is w and w.dtype == jitgrad.float64 and w.grad.dtype == jitgrad.float64
    assert m.running.dtype == jitgrad.float64 and m.count.dtype == jitgrad.int64
    m.to(jitgrad.float32)
    assert w.dtype == jitgrad.float32 and m.running.dtype == jitgrad.float32
    m.to(DEVICE)
    m.to(device=DEVICE, dtype=jitgrad.float64)
    assert w.dtype == jitgrad.float64
    m.float().cpu().to(DEVICE)
    assert w.dtype == jitgrad.float32
    assert m(J.ones(2, 3)).dtype == jitgrad.float32
    with pytest.raises(TypeError, match="nn.Module.to only accepts floating point or complex "
                                        "dtypes, but got desired dtype=jitgrad.int64"):
        m.to(jitgrad.int64)


@pytest.mark.skipif(DEVICE != "cpu", reason="CUDA is available in this run")
def test_unavailable_device_raises_and_changes_nothing():
    m = Block()
    before = {k: v.cpu().numpy().copy() for k, v in m.state_dict().items()}
    for call in (lambda: m.cuda(), lambda: m.to("cuda"), lambda: m.to("cuda:0"),
                 lambda: nn.Sequential().cuda()):
        with pytest.raises(RuntimeError, match="device 'cuda' is not available"):
            call()
    assert all(np.array_equal(before[k], v.cpu().numpy()) for k, v in m.state_dict().items())
    assert m.fc.weight.dtype == jitgrad.float32


# =========================================================================== state dicts

def test_state_dict_is_detached_and_shares_storage():
    m = Block()
    sd = m.state_dict()
    assert type(sd) is OrderedDict and list(sd) == ["scale", "running", "fc.weight", "fc.bias"]
    assert not sd["scale"].requires_grad and type(sd["scale"]) is jitgrad.Tensor
    assert sd["fc.weight"]._data is m.fc.weight._data
    kept = m.state_dict(keep_vars=True)
    assert kept["scale"] is m.scale
    assert list(m.state_dict(prefix="x.")) == ["x.scale", "x.running", "x.fc.weight",
                                               "x.fc.bias"]


def _callable_model():
    return nn.Sequential(Block(), nn.ReLU(), nn.Sequential(nn.Linear(4, 4), nn.Tanh()),
                         nn.Linear(4, 2)).to(DEVICE)


def test_load_state_dict_round_trip_gives_identical_outputs():
    jitgrad.manual_seed(1)
    a = _callable_model()
    jitgrad.manual_seed(2)
    b = _callable_model()
    x = J.randn(5, 3)
    assert not np.array_equal(_np(a(x)), _np(b(x)))
    w = b[0].fc.weight
    res = b.load_state_dict(a.state_dict())
    assert repr(res) == "<All keys matched successfully>"
    assert res.missing_keys == [] and res.unexpected_keys == []
    assert b[0].fc.weight is w  # loaded in place
    assert np.array_equal(_np(a(x)), _np(b(x)))
    # the copy is independent of the source
    with jitgrad.no_grad():
        a[0].fc.weight.add_(1)
    assert not np.array_equal(_np(a(x)), _np(b(x)))


def test_load_state_dict_errors_match_torch(torch):
    m, tm = _model(jitgrad, Block()), _model(torch, _torch_block(torch))

    def message(model, lib, sd):
        with pytest.raises(RuntimeError) as info:
            model.load_state_dict(sd)
        return str(info.value).replace(lib.__name__ + ".Size", "Size")

    for edit in ("missing_unexpected", "shape"):
        sds = []
        for model, lib in ((m, jitgrad), (tm, torch)):
            sd = model.state_dict()
            if edit == "missing_unexpected":
                del sd["block.fc.bias"], sd["out.weight"]
                sd["block.extra"] = sd["block.scale"]
                sd["nothere.w"] = sd["block.scale"]
            else:
                sd["out.bias"] = sd["out.weight"]
            sds.append(message(model, lib, sd))
        assert sds[0] == sds[1]
        assert sds[0].startswith("Error(s) in loading state_dict for Sequential:\n\t")
    sd = m.state_dict()
    del sd["out.bias"]
    sd["zz"] = sd["out.weight"]
    res = m.load_state_dict(sd, strict=False)
    tsd = tm.state_dict()
    del tsd["out.bias"]
    tsd["zz"] = tsd["out.weight"]
    tres = tm.load_state_dict(tsd, strict=False)
    assert repr(res) == repr(tres)
    assert res.missing_keys == ["out.bias"] and res.unexpected_keys == ["zz"]


def test_load_state_dict_value_checks():
    m = Block()
    sd = m.state_dict()
    sd["scale"] = [1.0, 2.0, 3.0, 4.0]
    with pytest.raises(RuntimeError, match='While copying the parameter named "scale", expected '
                                           "torch.Tensor or Tensor-like object"):
        m.load_state_dict(sd)
    with pytest.raises(TypeError, match="Expected state_dict to be dict-like"):
        m.load_state_dict([("scale", J.ones(4))])
    # assign=True makes the loaded tensors the parameters
    sd = Block().state_dict()
    m.load_state_dict(sd, assign=True)
    assert m.scale._data is sd["scale"]._data and isinstance(m.scale, nn.Parameter)
    assert m.scale.requires_grad


def test_load_state_dict_0d_from_1_element():
    m = nn.Module()
    m.p = nn.Parameter(J.tensor(1.0))
    m.load_state_dict({"p": J.tensor([5.0])})
    assert m.p.item() == 5.0 and m.p.shape == ()


def test_extra_state_and_state_dict_hooks():
    class WithExtra(nn.Module):
        def __init__(self):
            super().__init__()
            self.tag = "a"

        def get_extra_state(self):
            return {"tag": self.tag}

        def set_extra_state(self, state):
            self.tag = state["tag"]

    m = nn.Sequential(WithExtra())
    sd = m.state_dict()
    assert sd["0._extra_state"] == {"tag": "a"}
    m2 = nn.Sequential(WithExtra())
    m2[0].tag = "b"
    m2.load_state_dict(sd)
    assert m2[0].tag == "a"
    calls = []
    m.register_state_dict_pre_hook(lambda mod, prefix, keep: calls.append(prefix))
    m.register_load_state_dict_post_hook(lambda mod, keys: calls.append(tuple(keys)))
    m.load_state_dict(m.state_dict())
    assert calls == ["", ([], [])]


# =========================================================================== hooks

def test_forward_hooks_run_in_order_and_can_replace_values():
    m = nn.Linear(2, 2).to(DEVICE)
    log = []
    h1 = m.register_forward_pre_hook(lambda mod, args: (args[0] * 0,))
    h2 = m.register_forward_hook(lambda mod, args, out: log.append("post") or out + 1)
    h3 = m.register_forward_hook(lambda mod, args, out: log.append("first"), prepend=True)
    out = m(J.ones(3, 2))
    assert log == ["first", "post"]
    assert np.allclose(_np(out), _np(m.bias) + 1)
    for h in (h1, h2, h3):
        h.remove()
    assert not m._forward_hooks and not m._forward_pre_hooks
    out = m(J.ones(3, 2))
    assert np.allclose(_np(out), _np(m.weight).sum(1) + _np(m.bias))


def test_forward_hooks_with_kwargs_and_always_call():
    class Scale(nn.Module):
        def forward(self, x, *, k=1.0):
            if k < 0:
                raise ValueError("negative")
            return x * k

    m = Scale()
    m.register_forward_pre_hook(lambda mod, args, kwargs: (args, {"k": 3.0}), with_kwargs=True)
    seen = []
    with m.register_forward_hook(lambda mod, args, kwargs, out: seen.append(kwargs["k"]),
                                 with_kwargs=True):
        assert m(J.ones(1), k=2.0).item() == 3.0
    assert seen == [3.0] and not m._forward_hooks_with_kwargs
    m._forward_pre_hooks.clear()
    called = []
    m.register_forward_hook(lambda mod, args, out: called.append(out), always_call=True)
    with pytest.raises(ValueError, match="negative"):
        m(J.ones(1), k=-1.0)
    assert called == [None]
    bad = Scale()
    bad.register_forward_pre_hook(lambda mod, args, kwargs: 5, with_kwargs=True)
    with pytest.raises(RuntimeError, match="forward pre-hook must return None or a tuple"):
        bad(J.ones(1))


# =========================================================================== repr

def _custom(lib):
    class Custom(lib.nn.Module):  # a multi-line extra_repr and a child
        def __init__(self):
            super().__init__()
            self.inner = lib.nn.Sequential(lib.nn.Linear(2, 3, bias=False), lib.nn.GELU())

        def extra_repr(self):
            return "first line\nsecond line"

    return Custom()


def _repr_model(lib):
    return lib.nn.Sequential(OrderedDict(
        block=lib.nn.Sequential(lib.nn.Linear(3, 4), lib.nn.ReLU(inplace=True)),
        custom=_custom(lib),
        layers=lib.nn.ModuleList([lib.nn.Linear(4, 4) for _ in range(3)] + [lib.nn.Tanh()]
                                 + [lib.nn.Linear(4, 4)]),
        heads=lib.nn.ModuleDict({"a": lib.nn.Flatten(), "b": lib.nn.Unflatten(1, (2, 2))}),
        empty=lib.nn.Sequential(), emptylist=lib.nn.ModuleList(),
        acts=lib.nn.Sequential(lib.nn.LeakyReLU(0.2, inplace=True), lib.nn.GELU("tanh"),
                               lib.nn.SiLU(), lib.nn.Sigmoid(), lib.nn.Softmax(dim=1),
                               lib.nn.LogSoftmax(dim=-1), lib.nn.ELU(alpha=0.5),
                               lib.nn.Softplus(beta=2, threshold=10), lib.nn.Identity())))


def test_repr_equals_torch(torch):
    assert repr(_repr_model(jitgrad)) == repr(_repr_model(torch))


def test_repr_without_torch():
    text = repr(nn.Sequential(nn.Linear(3, 4), nn.ModuleList([nn.ReLU(), nn.ReLU()])))
    assert text == ("Sequential(\n"
                    "  (0): Linear(in_features=3, out_features=4, bias=True)\n"
                    "  (1): ModuleList(\n"
                    "    (0-1): 2 x ReLU()\n"
                    "  )\n"
                    ")")


# =========================================================================== containers

def test_sequential_container():
    a, b, c = nn.Linear(2, 3).to(DEVICE), nn.ReLU(), nn.Linear(3, 1).to(DEVICE)
    s = nn.Sequential(a, b)
    s.append(c)
    assert len(s) == 3 and list(s) == [a, b, c] and s[-1] is c and s[0] is a
    sub = s[1:]
    assert type(sub) is nn.Sequential and list(sub) == [b, c]
    assert list(sub._modules) == ["1", "2"]  # slices keep the names, as in torch
    with pytest.raises(IndexError, match="index 3 is out of range"):
        s[3]
    x = J.ones(4, 2)
    assert np.allclose(_np(s(x)), _np(c(b(a(x)))))
    del s[1]
    assert list(s._modules) == ["0", "1"] and list(s) == [a, c]
    s.insert(1, b)
    assert list(s) == [a, b, c]
    s[1] = nn.Tanh()
    assert type(s[1]) is nn.Tanh
    assert len(s + nn.Sequential(nn.ReLU())) == 4 and len(nn.Sequential(b) * 3) == 3
    named = nn.Sequential(OrderedDict(first=a, second=b))
    assert named.first is a and list(named._modules) == ["first", "second"]
    assert s.pop(0) is a and len(s) == 2


def test_module_list_and_dict():
    layers = nn.ModuleList([nn.Linear(1, 1) for _ in range(3)])
    assert len(layers) == 3 and len(list(layers.parameters())) == 6
    layers.append(nn.ReLU())
    layers.extend([nn.Tanh()])
    assert isinstance(layers[-1], nn.Tanh) and isinstance(layers[1:3], nn.ModuleList)
    del layers[0]
    assert list(layers._modules) == ["0", "1", "2", "3"]
    layers.insert(0, nn.Identity())
    assert isinstance(layers[0], nn.Identity) and len(layers) == 5
    with pytest.raises(TypeError, match="ModuleList.extend should be called with an iterable"):
        layers.extend(3)
    d = nn.ModuleDict({"a": nn.ReLU(), "b": nn.Linear(2, 2)})
    d["c"] = nn.Tanh()
    assert list(d) == ["a", "b", "c"] and "b" in d and len(d) == 3
    assert list(d.keys()) == ["a", "b", "c"] and isinstance(d.pop("a"), nn.ReLU)
    d.update([("z", nn.Identity())])
    assert list(d.keys()) == ["b", "c", "z"]
    assert [n for n, _ in d.named_parameters()] == ["b.weight", "b.bias"]
    with pytest.raises(ValueError, match="has length 1; 2 is required"):
        d.update([("q",)])


# =========================================================================== layers

def test_linear_forward_backward(rng):
    lin = nn.Linear(5, 3).to(DEVICE)
    x = J.tensor(rng.standard_normal((4, 5)).astype(np.float32), requires_grad=True)
    y = lin(x)
    w, b = _np(lin.weight), _np(lin.bias)
    np.testing.assert_allclose(_np(y), _np(x) @ w.T + b, rtol=1e-5, atol=1e-6)
    g = rng.standard_normal((4, 3)).astype(np.float32)
    y.backward(J.tensor(g))
    np.testing.assert_allclose(_np(lin.weight.grad), g.T @ _np(x), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(_np(lin.bias.grad), g.sum(0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(_np(x.grad), g @ w, rtol=1e-5, atol=1e-5)
    assert lin(J.ones(5)).shape == (3,)
    assert lin(J.ones(2, 7, 5)).shape == (2, 7, 3)
    nb = nn.Linear(5, 3, bias=False, dtype=jitgrad.float64)
    assert nb.bias is None and nb.weight.dtype == jitgrad.float64
    assert repr(nb) == "Linear(in_features=5, out_features=3, bias=False)"
    assert [n for n, _ in nb.named_parameters()] == ["weight"] and "bias" in nb._parameters


def test_linear_initial_values_equal_torch_bit_for_bit(torch):
    for seed in (0, 1234567):
        jitgrad.manual_seed(seed)
        torch.manual_seed(seed)
        a, b = nn.Linear(784, 256), torch.nn.Linear(784, 256)
        assert _same_bits(_np(a.weight), b.weight.detach().cpu().numpy())
        assert _same_bits(_np(a.bias), b.bias.detach().cpu().numpy())
        # and the generator is left where torch's is
        assert _same_bits(J.rand(5).cpu().numpy(), torch.rand(5).cpu().numpy())


def test_linear_initial_value_distribution():
    jitgrad.manual_seed(3)
    lin = nn.Linear(400, 300)
    w, b = _np(lin.weight), _np(lin.bias)
    bound = 1 / math.sqrt(400)  # kaiming_uniform_(a=sqrt(5)) = U(-1/sqrt(fan_in), ...)
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert abs(w.mean()) < 1e-3 and abs(w.std() - bound / math.sqrt(3)) < 1e-3


def test_flatten_unflatten():
    x = J.arange(24.0).reshape(2, 3, 4)
    assert nn.Flatten()(x).shape == (2, 12)
    assert nn.Flatten(0, 1)(x).shape == (6, 4)
    assert nn.Unflatten(1, (3, 1))(x).shape == (2, 3, 1, 4)
    assert nn.Unflatten(-1, (2, -1))(x).shape == (2, 3, 2, 2)
    assert np.array_equal(_np(nn.Unflatten(1, (3, 4))(nn.Flatten()(x))), _np(x))
    with pytest.raises(RuntimeError, match="don't multiply up to the size of dim 1"):
        nn.Unflatten(1, (2, 2))(x)
    with pytest.raises(TypeError, match="unflattened_size must be tuple of ints"):
        nn.Unflatten(1, (2, 2.0))
    assert repr(nn.Unflatten(1, (2, 2))) == "Unflatten(dim=1, unflattened_size=(2, 2))"


_ACTIVATIONS = [
    ("ReLU", (), "relu"), ("LeakyReLU", (0.2,), "leaky_relu"), ("GELU", (), "gelu"),
    ("GELU", ("tanh",), "gelu"), ("SiLU", (), "silu"), ("Tanh", (), None),
    ("Sigmoid", (), None), ("Softmax", (1,), "softmax"), ("LogSoftmax", (1,), "log_softmax"),
    ("ELU", (0.7,), "elu"), ("Softplus", (2.0, 3.0), "softplus"),
]


@pytest.mark.parametrize("name,args,functional", _ACTIVATIONS,
                         ids=[f"{n}{a}" for n, a, _ in _ACTIVATIONS])
def test_activation_layers_match_torch(torch, name, args, functional):
    if functional is not None and not hasattr(F, functional):
        pytest.skip(f"jitgrad.nn.functional.{functional} does not exist yet (being written by "
                    "its family)")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 5)) * 3
    got = getattr(nn, name)(*args)(J.tensor(x))
    want = getattr(torch.nn, name)(*args)(torch.tensor(x))
    assert got.dtype == jitgrad.float64
    np.testing.assert_allclose(_np(got), want.cpu().numpy(), rtol=1e-10, atol=1e-12)


def test_inplace_relu_layer():
    x = J.tensor([-1.0, 2.0])
    assert nn.ReLU(inplace=True)(x) is x and x.tolist() == [0.0, 2.0]
    w = J.tensor([-1.0, 2.0, 3.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        F.relu(w, inplace=True)
    h = w * 2.0
    out = F.relu(h, inplace=True)
    assert out is h and h.grad_fn.name() == "ReluBackward0"
    out.sum().backward()
    assert w.grad.tolist() == [0.0, 2.0, 2.0]


# =========================================================================== init

def test_calculate_gain_and_fans(torch):
    for nl, param in [("linear", None), ("conv2d", None), ("sigmoid", None), ("tanh", None),
                      ("relu", None), ("leaky_relu", None), ("leaky_relu", 0.2),
                      ("leaky_relu", 3), ("selu", None)]:
        assert init.calculate_gain(nl, param) == torch.nn.init.calculate_gain(nl, param)
    with pytest.raises(ValueError, match="Unsupported nonlinearity foo"):
        init.calculate_gain("foo")
    with pytest.raises(ValueError, match="negative_slope True not a valid number"):
        init.calculate_gain("leaky_relu", True)
    for shape in [(5, 3), (8, 4, 3, 3), (2, 6, 5)]:
        assert init._calculate_fan_in_and_fan_out(J.empty(shape)) == \
            torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init._calculate_fan_in_and_fan_out(J.empty(3))


_INITS = [
    ("uniform_", {"a": -0.3, "b": 0.7}), ("normal_", {"mean": 0.5, "std": 2.0}),
    ("xavier_uniform_", {"gain": 1.5}), ("xavier_normal_", {}),
    ("kaiming_uniform_", {"a": 0.1, "mode": "fan_out", "nonlinearity": "relu"}),
    ("kaiming_normal_", {"mode": "fan_in", "nonlinearity": "leaky_relu"}),
    ("trunc_normal_", {"std": 0.5}),
    ("trunc_normal_", {"mean": 0.0, "std": 1.0, "a": 0.5, "b": 0.7}),
]


@pytest.mark.parametrize("name,kwargs", _INITS, ids=[f"{n}{k}" for n, k in _INITS])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_random_inits_equal_torch_bit_for_bit(torch, name, kwargs, dtype):
    if name == "trunc_normal_":
        torch_with_our_texts()  # earlier torch releases draw it by another method
    for shape, gen in [((30, 20), False), ((8, 3, 3, 2), True), ((3, 4), False)]:
        t = J.empty(shape, dtype=getattr(jitgrad, dtype))
        tt = torch.empty(shape, dtype=getattr(torch, dtype))
        if gen:
            g, tg = jitgrad.Generator().manual_seed(11), torch.Generator().manual_seed(11)
            getattr(init, name)(t, generator=g, **kwargs)
            getattr(torch.nn.init, name)(tt, generator=tg, **kwargs)
        else:
            jitgrad.manual_seed(7)
            torch.manual_seed(7)
            getattr(init, name)(t, **kwargs)
            getattr(torch.nn.init, name)(tt, **kwargs)
        if name == "trunc_normal_" and kwargs.get("a") == 0.5:
            # the narrow-window branch compares log(uniform) with float32/64 libm logs,
            # which may differ in the last bit from torch's vectorised log
            np.testing.assert_allclose(t.cpu().numpy(), tt.cpu().numpy(), rtol=1e-6)
        else:
            assert _same_bits(t.cpu().numpy(), tt.cpu().numpy()), (shape, gen)


def test_init_statistics_without_torch():
    jitgrad.manual_seed(0)
    w = J.empty(300, 200)
    init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
    assert abs(_np(w).std() - math.sqrt(2 / 300)) < 0.02 * math.sqrt(2 / 300)
    init.xavier_uniform_(w)
    bound = math.sqrt(6 / 500)
    assert np.abs(_np(w)).max() <= bound and abs(_np(w).std() - bound / math.sqrt(3)) < 1e-3
    init.trunc_normal_(w, mean=0.0, std=1.0, a=-0.5, b=1.0)
    assert _np(w).min() >= -0.5 and _np(w).max() <= 1.0
    init.trunc_normal_(w, std=0.02)
    assert np.abs(_np(w)).max() <= 2.0 and abs(_np(w).std() - 0.02) < 1e-3
    init.normal_(w, 3.0, 0.5)
    assert abs(_np(w).mean() - 3.0) < 0.01 and abs(_np(w).std() - 0.5) < 0.01


def test_deterministic_inits_and_inplace_semantics():
    p = nn.Parameter(J.empty(3, 4))
    v = p._version
    assert init.constant_(p, 0.25) is p and np.all(_np(p) == 0.25)
    assert p._version == v + 1 and p.grad_fn is None and p.requires_grad
    init.ones_(p)
    assert np.all(_np(p) == 1)
    init.zeros_(p)
    assert not _np(p).any()
    init.eye_(p)
    assert np.array_equal(_np(p), np.eye(3, 4, dtype=np.float32))
    with pytest.raises(ValueError, match="Only tensors with 2 dimensions are supported"):
        init.eye_(J.empty(2, 2, 2))
    w = J.empty(4, 2, 3, 3)
    init.dirac_(w, groups=2)
    assert _np(w).sum() == 4 and _np(w)[0, 0, 1, 1] == 1 and _np(w)[2, 0, 1, 1] == 1
    init.orthogonal_(w, gain=2.0)
    flat = _np(w).reshape(4, -1)
    np.testing.assert_allclose(flat @ flat.T, 4 * np.eye(4), atol=1e-5)
    with pytest.warns(UserWarning, match="Initializing zero-element tensors is a no-op"):
        init.kaiming_uniform_(J.empty(0, 3))
    with pytest.raises(ValueError, match="Mode fan_bad not supported"):
        init.kaiming_uniform_(J.empty(2, 3), mode="fan_bad")
    with pytest.raises(RuntimeError, match="\"check_uniform_bounds\" not implemented for "
                                           "'Long'"):
        init.uniform_(J.zeros(3, dtype=jitgrad.int64))


def test_orthogonal_matches_torch(torch):
    for shape in [(6, 4), (3, 8), (4, 2, 3)]:
        jitgrad.manual_seed(4)
        torch.manual_seed(4)
        a = init.orthogonal_(J.empty(shape), gain=1.3)
        b = torch.nn.init.orthogonal_(torch.empty(shape), gain=1.3)
        np.testing.assert_allclose(a.cpu().numpy(), b.cpu().numpy(), rtol=1e-4, atol=1e-5)


# =========================================================================== nn.utils

def test_clip_grad_norm_matches_torch(torch, rng):
    for norm_type in (2.0, 1.0, math.inf, 3.0):
        for max_norm in (0.5, 100.0):
            grads = [rng.standard_normal(s).astype(np.float32) for s in [(3, 4), (5,), (2, 2)]]
            ps = [nn.Parameter(J.zeros(g.shape)) for g in grads]
            tps = [torch.nn.Parameter(torch.zeros(g.shape)) for g in grads]
            for p, tp, g in zip(ps, tps, grads):
                p.grad, tp.grad = J.tensor(g), torch.tensor(g)
            total = nn.utils.clip_grad_norm_(ps, max_norm, norm_type)
            ttotal = torch.nn.utils.clip_grad_norm_(tps, max_norm, norm_type)
            assert total.dtype == jitgrad.float32 and total.shape == ()
            np.testing.assert_allclose(total.item(), ttotal.item(), rtol=1e-6)
            for p, tp in zip(ps, tps):
                np.testing.assert_allclose(p.grad.cpu().numpy(), tp.grad.cpu().numpy(), rtol=1e-6,
                                           atol=1e-7)


def test_clip_grad_without_torch():
    p = nn.Parameter(J.zeros(2))
    p.grad = J.tensor([3.0, 4.0])
    total = nn.utils.clip_grad_norm_(p, 1.0)
    assert total.item() == 5.0
    np.testing.assert_allclose(p.grad.cpu().numpy(), [0.6, 0.8], rtol=1e-5)
    p.grad = J.tensor([math.inf, 1.0])
    with pytest.raises(RuntimeError, match="The total norm of order 2.0 for gradients from "
                                           "`parameters` is non-finite"):
        nn.utils.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    assert p.grad.tolist() == [math.inf, 1.0]  # unchanged by the failed call
    p.grad = J.tensor([-3.0, 0.5])
    nn.utils.clip_grad_value_([p], 1.0)
    assert p.grad.tolist() == [-1.0, 0.5]
    assert nn.utils.clip_grad_norm_([nn.Parameter(J.zeros(1))], 1.0).item() == 0.0


def test_parameters_vector_round_trip():
    m = nn.Linear(3, 2)
    vec = nn.utils.parameters_to_vector(m.parameters())
    assert vec.shape == (8,)
    assert np.array_equal(_np(vec), np.concatenate([_np(m.weight).ravel(), _np(m.bias)]))
    nn.utils.vector_to_parameters(J.arange(8.0), m.parameters())
    assert _np(m.bias).tolist() == [6.0, 7.0] and _np(m.weight)[1].tolist() == [3.0, 4.0, 5.0]
    with pytest.raises(RuntimeError, match="expected a 1-D vector of 8 elements"):
        nn.utils.vector_to_parameters(J.zeros(7), m.parameters())
