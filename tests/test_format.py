"""Tests for jitgrad._format: pinned strings (no torch needed) and a torch oracle.

The oracle tests draw fresh random tensors on every run; a failure message names the seed.
Rerun a failure with JITGRAD_FORMAT_SEED=<seed> python -m pytest tests/test_format.py
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

try:
    from jitgrad._format import format_tensor, set_printoptions
except Exception:  # the package's __init__ may be unfinished: load the module by its path
    _spec = importlib.util.spec_from_file_location(
        "_jitgrad_format_standalone", Path(__file__).resolve().parents[1] / "jitgrad" / "_format.py")
    _mod = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_mod)
    format_tensor, set_printoptions = _mod.format_tensor, _mod.set_printoptions

f32, f64 = np.float32, np.float64


@pytest.fixture(autouse=True)
def _default_printoptions():
    set_printoptions(profile="default")
    yield
    set_printoptions(profile="default")


# --------------------------------------------------------------------------- pinned strings

PINNED = [
    # seeds
    (np.array(4.0, f32), {}, "tensor(4.)"),
    (np.array(-4.0, f32), {}, "tensor(-4.)"),
    (np.array(1.0, f32), {}, "tensor(1.)"),
    (np.array(4.5, f32), {}, "tensor(4.5000)"),
    (np.array([[4.5, 4.5]], f32), {}, "tensor([[4.5000, 4.5000]])"),
    (np.array([[4.5]], f32), {}, "tensor([[4.5000]])"),
    (np.array(3.0, f32), {"requires_grad": True}, "tensor(3., requires_grad=True)"),
    (np.array([2.0, 4.0], f32), {"requires_grad": True, "grad_fn_name": "MulBackward0"},
     "tensor([2., 4.], grad_fn=<MulBackward0>)"),
    # dtypes
    (np.array([1.5, 2.0], f64), {}, "tensor([1.5000, 2.0000], dtype=jitgrad.float64)"),
    (np.array([1.5, 2.0], f64), {"default_float": np.float64}, "tensor([1.5000, 2.0000])"),
    (np.array([1.5], f32), {"default_float": np.float64}, "tensor([1.5000], dtype=jitgrad.float32)"),
    (np.array([1, -20, 300], np.int32), {}, "tensor([  1, -20, 300], dtype=jitgrad.int32)"),
    (np.array([1, 2], np.int64), {}, "tensor([1, 2])"),
    (np.array([7, 255], np.uint8), {}, "tensor([  7, 255], dtype=jitgrad.uint8)"),
    (np.array([True, False]), {}, "tensor([ True, False])"),
    (np.array(True), {}, "tensor(True)"),
    # empty tensors
    (np.zeros(0, f32), {}, "tensor([])"),
    (np.zeros((0, 3), f32), {}, "tensor([], size=(0, 3))"),
    (np.zeros(0, np.int64), {}, "tensor([], dtype=jitgrad.int64)"),
    (np.zeros(0, np.int32), {}, "tensor([], dtype=jitgrad.int32)"),
    (np.zeros((2, 0), bool), {}, "tensor([], size=(2, 0), dtype=jitgrad.bool)"),
    (np.zeros(0, f32), {"requires_grad": True}, "tensor([], requires_grad=True)"),
    # scientific notation, special values, float32 rounding
    (np.array([1e-5, 1.0, 123456.0], f32), {}, "tensor([1.0000e-05, 1.0000e+00, 1.2346e+05])"),
    (np.array([1e10, -2.5], f32), {}, "tensor([ 1.0000e+10, -2.5000e+00])"),
    (np.array([1e-300, 1.0]), {}, "tensor([1.0000e-300,  1.0000e+00], dtype=jitgrad.float64)"),
    (np.array([np.nan, np.inf, -np.inf, -0.0, 1.0], f32), {}, "tensor([nan, inf, -inf, -0., 1.])"),
    (np.array([np.nan, -0.0, 2.5], f32), {}, "tensor([   nan, -0.0000, 2.5000])"),
    (np.array([0.1], f32), {}, "tensor([0.1000])"),
    (np.array([0.0, 0.0], f32), {}, "tensor([0., 0.])"),
    (np.array([-0.0], f32), {}, "tensor([-0.])"),
    # devices
    (np.array([1.0, 2.0], f32), {"device": "cuda:0"}, "tensor([1., 2.], device='cuda:0')"),
    (np.array([1.0, 2.0], f32), {"device": "cpu"}, "tensor([1., 2.])"),
    (np.array([1, 2], np.int32), {"device": "cuda:0", "grad_fn_name": "AddBackward0"},
     "tensor([1, 2], device='cuda:0', dtype=jitgrad.int32, grad_fn=<AddBackward0>)"),
    (np.zeros((0, 3), f64), {"device": "cuda:0", "requires_grad": True},
     "tensor([], device='cuda:0', size=(0, 3), dtype=jitgrad.float64,\n"
     "       requires_grad=True)"),
    # summarization, wrapping, nesting
    (np.arange(2000, dtype=f32), {},
     "tensor([0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 1.9970e+03, 1.9980e+03,\n"
     "        1.9990e+03])"),
    (np.arange(2000, dtype=np.int64), {}, "tensor([   0,    1,    2,  ..., 1997, 1998, 1999])"),
    (np.arange(2000, dtype=f32).reshape(40, 50), {},
     "tensor([[0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 4.7000e+01, 4.8000e+01,\n"
     "         4.9000e+01],\n"
     "        [5.0000e+01, 5.1000e+01, 5.2000e+01,  ..., 9.7000e+01, 9.8000e+01,\n"
     "         9.9000e+01],\n"
     "        [1.0000e+02, 1.0100e+02, 1.0200e+02,  ..., 1.4700e+02, 1.4800e+02,\n"
     "         1.4900e+02],\n"
     "        ...,\n"
     "        [1.8500e+03, 1.8510e+03, 1.8520e+03,  ..., 1.8970e+03, 1.8980e+03,\n"
     "         1.8990e+03],\n"
     "        [1.9000e+03, 1.9010e+03, 1.9020e+03,  ..., 1.9470e+03, 1.9480e+03,\n"
     "         1.9490e+03],\n"
     "        [1.9500e+03, 1.9510e+03, 1.9520e+03,  ..., 1.9970e+03, 1.9980e+03,\n"
     "         1.9990e+03]])"),
    (np.arange(30, dtype=f32) / f32(7), {},
     "tensor([0.0000, 0.1429, 0.2857, 0.4286, 0.5714, 0.7143, 0.8571, 1.0000, 1.1429,\n"
     "        1.2857, 1.4286, 1.5714, 1.7143, 1.8571, 2.0000, 2.1429, 2.2857, 2.4286,\n"
     "        2.5714, 2.7143, 2.8571, 3.0000, 3.1429, 3.2857, 3.4286, 3.5714, 3.7143,\n"
     "        3.8571, 4.0000, 4.1429])"),
    # a full last line pushes the dtype suffix onto its own line
    (np.arange(18, dtype=f64) / 3, {},
     "tensor([0.0000, 0.3333, 0.6667, 1.0000, 1.3333, 1.6667, 2.0000, 2.3333, 2.6667,\n"
     "        3.0000, 3.3333, 3.6667, 4.0000, 4.3333, 4.6667, 5.0000, 5.3333, 5.6667],\n"
     "       dtype=jitgrad.float64)"),
    (np.arange(24, dtype=np.int64).reshape(2, 3, 4), {},
     "tensor([[[ 0,  1,  2,  3],\n"
     "         [ 4,  5,  6,  7],\n"
     "         [ 8,  9, 10, 11]],\n"
     "\n"
     "        [[12, 13, 14, 15],\n"
     "         [16, 17, 18, 19],\n"
     "         [20, 21, 22, 23]]])"),
]


@pytest.mark.parametrize("data, kwargs, expected", PINNED, ids=[p[2][:40] for p in PINNED])
def test_pinned(data, kwargs, expected):
    assert format_tensor(data, **kwargs) == expected


def test_pinned_printoptions():
    x = np.array([1.123456, 2.0, 30.5], f32)
    set_printoptions(precision=2)
    assert format_tensor(x) == "tensor([ 1.12,  2.00, 30.50])"
    set_printoptions(sci_mode=True)  # precision is kept; sci_mode is set
    assert format_tensor(x) == "tensor([1.12e+00, 2.00e+00, 3.05e+01])"
    set_printoptions(linewidth=80)  # any call without sci_mode resets it to automatic
    assert format_tensor(x) == "tensor([ 1.12,  2.00, 30.50])"
    set_printoptions(profile="default", threshold=5)
    assert format_tensor(np.arange(10)) == "tensor([0, 1, 2,  ..., 7, 8, 9])"
    set_printoptions(edgeitems=0)
    assert format_tensor(np.arange(10)) == "tensor([...], size=(10,))"
    set_printoptions(profile="short", threshold=5)
    assert format_tensor(np.arange(10)) == "tensor([0, 1,  ..., 8, 9])"
    set_printoptions(profile="full")
    assert format_tensor(np.arange(2000)).count("...") == 0


def test_unsupported_dtype():
    with pytest.raises(TypeError):
        format_tensor(np.zeros(2, np.float16))


# --------------------------------------------------------------------------- torch oracle

DTYPES = [np.bool_, np.uint8, np.int8, np.int16, np.int32, np.int64, np.float32, np.float64]

# Values near the edges of torch's rules: sci-mode thresholds, rounding that adds a digit.
EDGE_VALUES = [1e-4, 9.9999e-5, 1.00001e-4, 1e8, 1.0000001e8, 99999999.0, 1000.0, 1000.0001,
               999.99995, 9.99996, 99.99996, 0.99995, 0.00005, 0.5, 1.0, 2.0, 1e-3, 3.0e7]


def _seed() -> int:
    env = os.environ.get("JITGRAD_FORMAT_SEED")
    return int(env) if env else int(np.random.SeedSequence().entropy)


def _random_shape(rng: np.random.Generator) -> tuple[int, ...]:
    ndim = int(rng.integers(0, 5))
    if ndim == 0:
        return ()
    r = rng.random()
    if r < 0.1:  # empty
        shape = rng.integers(0, 4, ndim)
        shape[rng.integers(ndim)] = 0
    elif r < 0.3:  # around the summarization threshold and well past it
        side = int(rng.integers(800, 6000)) ** (1 / ndim)
        shape = [max(1, int(side * rng.uniform(0.5, 1.5))) for _ in range(ndim)]
    else:
        shape = rng.integers(1, {1: 40, 2: 12, 3: 6, 4: 4}[ndim] + 1, ndim)
    return tuple(int(s) for s in shape)


def _random_floats(rng: np.random.Generator, shape, dtype) -> np.ndarray:
    top = 38 if dtype == np.float32 else 300
    normal = rng.standard_normal(shape)
    style = rng.choice(["normal", "tiny", "huge", "mixed", "integers", "rounded", "edges",
                        "constant"])
    if style == "normal":
        x = normal * 10.0 ** rng.integers(-3, 5)
    elif style == "tiny":
        x = normal * 10.0 ** rng.uniform(-top - 5, -4)
    elif style == "huge":
        x = normal * 10.0 ** rng.uniform(7, top)
    elif style == "mixed":
        x = normal * 10.0 ** rng.uniform(-10, 10, shape)
    elif style == "integers":
        x = rng.integers(-1000, 1000, shape) * 10.0 ** rng.integers(0, 12)
    elif style == "rounded":
        x = np.round(normal * 100, int(rng.integers(0, 3)))
    elif style == "edges":
        x = rng.choice(EDGE_VALUES, shape) * rng.choice([-1.0, 1.0], shape)
    else:
        x = np.full(shape, rng.choice([0.0, -0.0, 1.0, -2.5, np.nan, np.inf]))
    if x.size and rng.random() < 0.4:  # sprinkle special values
        specials = rng.choice([np.nan, np.inf, -np.inf, 0.0, -0.0], x.size)
        x = np.where(rng.random(shape) < 0.2, specials.reshape(shape), x)
    with np.errstate(over="ignore", under="ignore"):
        return np.asarray(x).astype(dtype)


def _random_tensor(rng: np.random.Generator) -> np.ndarray:
    dtype = np.dtype(DTYPES[rng.integers(len(DTYPES))])
    shape = _random_shape(rng)
    if dtype == np.bool_:
        return np.asarray(rng.random(shape) < rng.random())
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        bound = int(rng.choice([9, 1000, info.max]))
        return np.asarray(rng.integers(max(info.min, -bound), min(info.max, bound),
                                       size=shape, endpoint=True, dtype=dtype))
    return _random_floats(rng, shape, dtype)


def _torch_repr(t) -> str:
    return repr(t).replace("torch.", "jitgrad.")


def _check(torch, a: np.ndarray, seed: int, where: str, **kwargs) -> None:
    """Compare with torch for `a` as a plain tensor and, for floats, with autograd suffixes."""
    t = torch.from_numpy(a.copy())
    variants = [(t, {})]
    if a.dtype.kind == "f":
        leaf = t.clone().requires_grad_()
        out = leaf.clone()  # same values, has a grad_fn
        variants += [(leaf, {"requires_grad": True}),
                     (out, {"requires_grad": True, "grad_fn_name": type(out.grad_fn).__name__})]
    for tensor, extra in variants:
        expected = _torch_repr(tensor)
        got = format_tensor(a, **kwargs, **extra)
        assert got == expected, (
            f"seed={seed} ({where}) shape={a.shape} dtype={a.dtype} {extra}\n"
            f"data={a.tolist() if a.size <= 50 else '...'}\n"
            f"jitgrad:\n{got}\ntorch:\n{expected}")


def test_random_tensors_match_torch():
    torch = pytest.importorskip("torch")
    seed = _seed()
    rng = np.random.default_rng(seed)
    for i in range(400):
        _check(torch, _random_tensor(rng), seed, f"case {i}")


def test_default_float64_matches_torch():
    torch = pytest.importorskip("torch")
    seed = _seed()
    rng = np.random.default_rng(seed)
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        for i in range(100):
            a = _random_tensor(rng)
            _check(torch, a, seed, f"default float64, case {i}", default_float=np.float64)
    finally:
        torch.set_default_dtype(old)


def test_device_suffix_matches_torch(monkeypatch):
    """torch only has CPU here; pretending the default device is elsewhere makes it print
    device='cpu'. Our stand-in device name 'xpu' has the same length, so wrapping matches."""
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch._C, "_get_default_device", lambda: "meta")
    seed = _seed()
    rng = np.random.default_rng(seed)
    for i in range(100):
        a = _random_tensor(rng)
        t = torch.from_numpy(a.copy())
        variants = [(t, {})]
        if a.dtype.kind == "f":
            variants.append((t.clone().requires_grad_(), {"requires_grad": True}))
        for tensor, extra in variants:
            expected = _torch_repr(tensor).replace("device='cpu'", "device='xpu'")
            got = format_tensor(a, device="xpu", **extra)
            assert got == expected, f"seed={seed} case {i} {extra}\n{got}\n{expected}"


PRINTOPTIONS = [
    dict(precision=0), dict(precision=2), dict(precision=8),
    dict(threshold=0), dict(threshold=5), dict(threshold=50, edgeitems=1),
    dict(threshold=20, edgeitems=0), dict(threshold=30, edgeitems=5),
    dict(linewidth=5), dict(linewidth=30), dict(linewidth=200),
    dict(profile="short"), dict(profile="full"),
    dict(sci_mode=True), dict(sci_mode=False),
    dict(profile="short", precision=6, sci_mode=True, linewidth=50),
]


@pytest.mark.parametrize("options", PRINTOPTIONS, ids=str)
def test_printoptions_match_torch(options):
    torch = pytest.importorskip("torch")
    seed = _seed()
    rng = np.random.default_rng(seed)
    try:
        torch.set_printoptions(**options)
        set_printoptions(**options)
        for i in range(60):
            _check(torch, _random_tensor(rng), seed, f"options {options}, case {i}")
    finally:
        torch.set_printoptions(profile="default")
        set_printoptions(profile="default")


def test_printoptions_are_sticky_like_torch():
    torch = pytest.importorskip("torch")
    seed = _seed()
    rng = np.random.default_rng(seed)
    calls = [dict(precision=2, sci_mode=True), dict(linewidth=40), dict(edgeitems=1),
             dict(threshold=10), dict(profile="short"), dict(profile="default", precision=6)]
    try:
        for options in calls:
            torch.set_printoptions(**options)
            set_printoptions(**options)
            for i in range(20):
                _check(torch, _random_tensor(rng), seed, f"after {options}, case {i}")
    finally:
        torch.set_printoptions(profile="default")
        set_printoptions(profile="default")
    assert format_tensor(np.array([1.123456, 2.0], f32)) == "tensor([1.1235, 2.0000])"
