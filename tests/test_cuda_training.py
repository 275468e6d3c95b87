"""Training on CUDA against the same training on the CPU: a small MLP and a tiny conv net, the
same initial parameters (``manual_seed``), moved with ``Module.to("cuda")``, trained a few
steps with SGD (momentum, weight decay) and Adam; after every step the CUDA parameters equal
the CPU ones within float32 tolerance. Skipped without a CUDA device (or the simulator,
``NUMBA_ENABLE_CUDASIM=1``)."""

from __future__ import annotations

import numpy as np
import pytest

import jitgrad
import jitgrad.cuda
from jitgrad import nn, optim
from jitgrad.nn import functional as F

pytestmark = pytest.mark.skipif(not jitgrad.cuda.is_available(), reason="no CUDA device")

STEPS = 3
TOL = dict(rtol=2e-5, atol=2e-6)


def _mlp():
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 8), nn.Tanh(),
                         nn.Linear(8, 3))


def _convnet():
    return nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(2 * 2 * 2, 3))


OPTIMIZERS = {
    "sgd": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=1e-2),
    "adam": lambda ps: optim.Adam(ps, lr=0.01),
}


def _data(model: str, rng):
    shape = (5, 6) if model == "mlp" else (4, 1, 4, 4)
    x = rng.standard_normal(shape).astype(np.float32)
    y = rng.integers(0, 3, shape[0])
    return x, y


def _train(make, opt: str, x, y, device: str) -> list:
    """Parameters (on the host) after each step."""
    jitgrad.manual_seed(0)
    model = make()
    params = list(model.parameters())
    model.to(device)
    assert [id(p) for p in model.parameters()] == [id(p) for p in params]
    assert all(p.device.type == device for p in params)
    o = OPTIMIZERS[opt](model.parameters())
    xt, yt = jitgrad.tensor(x, device=device), jitgrad.tensor(y, device=device)
    history = []
    for _ in range(STEPS):
        o.zero_grad()
        loss = F.cross_entropy(model(xt), yt)
        loss.backward()
        assert all(p.grad.device.type == device for p in params)
        o.step()
        history.append([p.detach().cpu().numpy().copy() for p in params])
    for state in o.state.values():
        for k, v in state.items():
            if isinstance(v, jitgrad.Tensor) and k != "step":
                assert v.device.type == device
    return history


@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
@pytest.mark.parametrize("model", ["mlp", "conv"])
def test_training_matches_cpu(model: str, opt: str, rng) -> None:
    make = _mlp if model == "mlp" else _convnet
    x, y = _data(model, rng)
    cpu = _train(make, opt, x, y, "cpu")
    gpu = _train(make, opt, x, y, "cuda")
    for step, (pc, pg) in enumerate(zip(cpu, gpu)):
        for k, (a, b) in enumerate(zip(pc, pg)):
            np.testing.assert_allclose(b, a, err_msg=f"step {step}, parameter {k}", **TOL)
    assert not np.array_equal(cpu[0][0], cpu[-1][0])  # it trained


def test_module_to_moves_parameters_buffers_and_grads() -> None:
    m = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    m(jitgrad.randn(4, 3)).sum().backward()
    w = m[0].weight
    before = w.detach().numpy().copy()
    assert m.cuda() is m
    assert m[0].weight is w and isinstance(w, nn.Parameter) and w.requires_grad and w.is_leaf
    assert w.device.type == "cuda" and w.grad.device.type == "cuda"
    assert m[1].running_mean.device.type == "cuda"
    np.testing.assert_array_equal(w.detach().cpu().numpy(), before)
    m.cpu()
    assert w.device.type == "cpu" and w.grad.device.type == "cpu"
    assert m[1].running_var.device.type == "cpu"
    m.to("cuda")
    assert all(p.device.type == "cuda" for p in m.parameters())
    assert all(b.device.type == "cuda" for b in m.buffers())


def test_optimizer_state_dict_follows_parameter_device() -> None:
    jitgrad.manual_seed(0)
    m = nn.Linear(3, 2).cuda()
    o = optim.Adam(m.parameters(), lr=0.1)
    m(jitgrad.randn(4, 3, device="cuda")).sum().backward()
    o.step()
    sd = o.state_dict()
    assert sd["state"][0]["exp_avg"].device.type == "cuda"
    m.cpu()
    o2 = optim.Adam(m.parameters(), lr=0.1)
    o2.load_state_dict(sd)
    assert o2.state[m.weight]["exp_avg"].device.type == "cpu"
    assert o2.state[m.weight]["step"].device.type == "cpu"
    m.cuda()
    o3 = optim.Adam(m.parameters(), lr=0.1)
    o3.load_state_dict(o2.state_dict())
    assert o3.state[m.weight]["exp_avg_sq"].device.type == "cuda"
    m(jitgrad.randn(4, 3, device="cuda")).sum().backward()
    o3.step()
    assert float(o3.state[m.weight]["step"]) == 2.0


@pytest.mark.parametrize("opt", ["sgd", "adam", "adamw", "rmsprop", "adagrad"])
def test_fused_steps_match_cpu(opt: str, rng) -> None:
    """Every fused optimizer kernel, options on, on one parameter: CUDA equals CPU."""
    make = {
        "sgd": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1,
                                    maximize=True),
        "adam": lambda ps: optim.Adam(ps, lr=0.05, amsgrad=True, weight_decay=0.1),
        "adamw": lambda ps: optim.AdamW(ps, lr=0.05),
        "rmsprop": lambda ps: optim.RMSprop(ps, lr=0.01, momentum=0.5, centered=True,
                                            weight_decay=0.1),
        "adagrad": lambda ps: optim.Adagrad(ps, lr=0.1, lr_decay=0.01, weight_decay=0.1),
    }[opt]
    p0 = rng.standard_normal((3, 4)).astype(np.float32)
    grads = [rng.standard_normal((3, 4)).astype(np.float32) for _ in range(STEPS)]
    out = {}
    for dev in ("cpu", "cuda"):
        p = nn.Parameter(jitgrad.tensor(p0, device=dev))
        o = make([p])
        hist = []
        for g in grads:
            p.grad = jitgrad.tensor(g, device=dev)
            o.step()
            hist.append(p.detach().cpu().numpy().copy())
        out[dev] = hist
    for a, b in zip(out["cpu"], out["cuda"]):
        np.testing.assert_allclose(b, a, **TOL)


MANY = {
    "sgd": lambda ps: optim.SGD(ps, lr=0.1),
    "sgd momentum": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.1),
    "sgd nesterov": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.5, nesterov=True,
                                         maximize=True),
    "adam": lambda ps: optim.Adam(ps, lr=0.05, amsgrad=True, weight_decay=0.1),
    "adamw": lambda ps: optim.AdamW(ps, lr=0.05),
    "rmsprop": lambda ps: optim.RMSprop(ps, lr=0.01, momentum=0.5, centered=True),
    "adagrad": lambda ps: optim.Adagrad(ps, lr=0.1, lr_decay=0.01, weight_decay=0.1),
}


@pytest.mark.parametrize("opt", sorted(MANY))
def test_optimizers_update_many_parameters_together_as_the_cpu_does(opt, rng) -> None:
    """More parameters than one multi-tensor launch takes, of two dtypes and many sizes (one
    empty, one not contiguous, one gaining its gradient a step late, so its step count
    differs): CUDA equals CPU each step."""
    shapes = [(3, 4), (5,), (0,), (2, 3), (1,), (7,), (2, 2), (4, 3), (6,), (3,), (9,), (2,)]
    dts = [np.float64 if k % 4 == 1 else np.float32 for k in range(len(shapes))]
    p0 = [rng.standard_normal(s).astype(dt) for s, dt in zip(shapes, dts)]
    grads = [[rng.standard_normal(s).astype(dt) for s, dt in zip(shapes, dts)]
             for _ in range(STEPS)]
    out = {}
    for dev in ("cpu", "cuda"):
        ps = [nn.Parameter(jitgrad.tensor(a, device=dev)) for a in p0]
        ps[7] = nn.Parameter(jitgrad.tensor(p0[7].T.copy(), device=dev).t())  # strided
        assert not ps[7].is_contiguous()
        o = MANY[opt](ps)
        hist = []
        for step, gs in enumerate(grads):
            for k, (p, g) in enumerate(zip(ps, gs)):
                p.grad = None if (k == 10 and step == 0) else jitgrad.tensor(g, device=dev)
            o.step()
            hist.append([p.detach().cpu().numpy().copy() for p in ps])
        out[dev] = hist
    for a, b in zip(out["cpu"], out["cuda"]):
        for x, y in zip(a, b):
            np.testing.assert_allclose(y, x, **TOL)


@pytest.mark.parametrize("opt", sorted(MANY))
def test_a_failed_optimizer_check_updates_no_parameter(opt, rng) -> None:
    ps = [nn.Parameter(jitgrad.tensor(rng.standard_normal(3).astype(np.float32),
                                      device="cuda")) for _ in range(3)]
    before = [p.detach().cpu().numpy().copy() for p in ps]
    o = MANY[opt](ps)
    state_before = {id(p): sorted(st) for p, st in o.state.items()}
    for p in ps[:2]:
        p.grad = jitgrad.ones(3, device="cuda")
    ps[2].grad = jitgrad.ones(3, device="cpu")  # on the wrong device: the step fails
    with pytest.raises(RuntimeError, match="on cpu"):
        o.step()
    for p, b in zip(ps, before):
        np.testing.assert_array_equal(p.detach().cpu().numpy(), b)
    # no state was made or counted
    assert {id(p): sorted(st) for p, st in o.state.items()} == state_before
    for st in o.state.values():
        if "step" in st:
            assert float(st["step"]) == 0.0


def test_clip_grad_norm_on_cuda() -> None:
    jitgrad.manual_seed(0)
    m = nn.Linear(4, 3)
    m(jitgrad.randn(5, 4)).pow(2).sum().backward()
    ref = [p.grad.numpy().copy() for p in m.parameters()]
    total_cpu = nn.utils.clip_grad_norm_(m.parameters(), 0.5)
    clipped = [p.grad.numpy().copy() for p in m.parameters()]
    for p, g in zip(m.parameters(), ref):
        p.grad = jitgrad.tensor(g)
    m.cuda()
    total = nn.utils.clip_grad_norm_(m.parameters(), 0.5)
    assert total.device.type == "cuda"
    np.testing.assert_allclose(float(total), float(total_cpu), rtol=1e-6)
    for p, c in zip(m.parameters(), clipped):
        np.testing.assert_allclose(p.grad.cpu().numpy(), c, rtol=1e-6, atol=1e-7)
    nn.utils.clip_grad_value_(m.parameters(), 0.01)
    assert all(float(p.grad.abs().max()) <= 0.01 + 1e-9 for p in m.parameters())
