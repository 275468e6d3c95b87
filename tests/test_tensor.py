"""Tensor creation, attributes, conversions, dtype promotion and the torch-style namespace."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import jitgrad

DTYPES = ["bool", "uint8", "int32", "int64", "float32", "float64"]
PY_SCALARS = [True, 3, 2.5]


def dt(name):
    return getattr(jitgrad, name)


# --------------------------------------------------------------------------- tensor()

@pytest.mark.parametrize("data,dtype", [
    ([1.0, 2.0], "float32"),
    ([1, 2], "int64"),
    ([True, False], "bool"),
    ([True, 1], "int64"),
    ([1, 2.5], "float32"),
    ([True, 2.5], "float32"),
    (3, "int64"),
    (3.0, "float32"),
    (False, "bool"),
    ([], "float32"),
    ([[1, 2], [3, 4]], "int64"),
    ((1, 2), "int64"),
    ([(1.0, 2.0), (3.0, 4.0)], "float32"),
])
def test_tensor_dtype_inference(data, dtype):
    t = jitgrad.tensor(data)
    assert t.dtype == dt(dtype)
    assert t.tolist() == np.array(data).tolist()


def test_tensor_default_dtype_applies_to_python_floats():
    try:
        jitgrad.set_default_dtype(jitgrad.float64)
        assert jitgrad.tensor([1.5]).dtype == jitgrad.float64
        assert jitgrad.tensor([1]).dtype == jitgrad.int64
        assert jitgrad.zeros(2).dtype == jitgrad.float64
    finally:
        jitgrad.set_default_dtype(jitgrad.float32)
    assert jitgrad.tensor([1.5]).dtype == jitgrad.float32
    with pytest.raises(TypeError):
        jitgrad.set_default_dtype(jitgrad.int64)


@pytest.mark.parametrize("np_dtype,name", [
    (np.float32, "float32"), (np.float64, "float64"), (np.int64, "int64"),
    (np.int32, "int32"), (np.int16, "int16"), (np.int8, "int8"), (np.uint8, "uint8"),
    (np.bool_, "bool"),
])
def test_tensor_from_numpy_keeps_dtype_and_copies(np_dtype, name):
    a = np.array([[1, 0], [1, 1]], dtype=np_dtype)
    t = jitgrad.tensor(a)
    assert t.dtype == dt(name)
    assert t.shape == (2, 2)
    a[0, 0] = 0
    assert t.tolist()[0][0] == 1  # tensor() copies


def test_tensor_from_numpy_scalars():
    assert jitgrad.tensor(np.float64(1.5)).dtype == jitgrad.float64
    assert jitgrad.tensor(np.int32(2)).dtype == jitgrad.int32
    assert jitgrad.tensor([np.float64(1.5), 2.0]).dtype == jitgrad.float64
    assert jitgrad.tensor([np.int32(1), np.int32(2)]).dtype == jitgrad.int32
    assert jitgrad.tensor([np.int32(1), 2]).dtype == jitgrad.int64
    a = jitgrad.tensor([np.array([1.0, 2.0]), [3.0, 4.0]])
    assert a.dtype == jitgrad.float64 and a.tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_tensor_explicit_dtype():
    assert jitgrad.tensor([1, 2], dtype=jitgrad.float32).tolist() == [1.0, 2.0]
    assert jitgrad.tensor([1.7, -2.7], dtype=jitgrad.int64).tolist() == [1, -2]
    assert jitgrad.tensor([0, 2], dtype=jitgrad.bool).tolist() == [False, True]
    assert jitgrad.tensor(np.array([1.5]), dtype=jitgrad.float32).dtype == jitgrad.float32
    assert jitgrad.tensor([1], dtype=np.float64).dtype == jitgrad.float64
    assert jitgrad.tensor([1], dtype=float).dtype == jitgrad.float32


def test_tensor_of_zero_dim_tensors():
    t = jitgrad.tensor([jitgrad.tensor(1.0), jitgrad.tensor(2.0)])
    assert t.dtype == jitgrad.float32 and t.tolist() == [1.0, 2.0]
    t = jitgrad.tensor([[jitgrad.tensor(1.0), 2.0], [3.0, jitgrad.tensor(4.0)]])
    assert t.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert jitgrad.tensor([jitgrad.tensor(1), jitgrad.tensor(2)]).dtype == jitgrad.int64
    # element dtypes promote as in torch
    i32 = jitgrad.tensor(1, dtype=jitgrad.int32)
    f64 = jitgrad.tensor(1.0, dtype=jitgrad.float64)
    assert jitgrad.tensor([i32, i32]).dtype == jitgrad.int32
    assert jitgrad.tensor([i32, 2]).dtype == jitgrad.int64
    assert jitgrad.tensor([i32, 2.5]).dtype == jitgrad.float32
    assert jitgrad.tensor([f64, 2.5]).dtype == jitgrad.float64
    u8 = jitgrad.tensor(1, dtype=jitgrad.uint8)
    i8 = jitgrad.tensor(1, dtype=jitgrad.int8)
    assert jitgrad.tensor([u8, i8]).dtype == jitgrad.int16


def test_tensor_copies_tensor_and_drops_graph():
    x = jitgrad.tensor([1.0, 2.0], requires_grad=True)
    y = jitgrad.tensor(x.detach())
    assert y.is_leaf and not y.requires_grad
    y[0] = 5.0
    assert x.detach().tolist() == [1.0, 2.0]


def test_tensor_requires_grad():
    t = jitgrad.tensor([1.0], requires_grad=True)
    assert t.requires_grad and t.is_leaf and t.grad is None and t.grad_fn is None


@pytest.mark.parametrize("data,exc,message", [
    ([[1, 2], [3]], ValueError, "expected sequence of length 2 at dim 1 (got 1)"),
    ([[[1], [2]], [[3], [4, 5]]], ValueError, "expected sequence of length 1 at dim 2 (got 2)"),
    ([[1, 2], 3], TypeError, "not a sequence"),
    ([1, [2, 3]], TypeError, "'list' object cannot be interpreted as an integer"),
    ([1.0, [2, 3]], TypeError, "must be real number, not list"),
    ([None], RuntimeError, "Could not infer dtype of NoneType"),
])
def test_tensor_ragged_and_bad_data(data, exc, message):
    with pytest.raises(exc) as ei:
        jitgrad.tensor(data)
    assert str(ei.value) == message


def test_tensor_errors_match_torch():
    torch = pytest.importorskip("torch")
    for data in ([[1, 2], [3]], [[1, 2], 3], [1, [2, 3]], [1.0, [2.0]], [[[1], [2]], [[3], [4, 5]]],
                 [None]):
        with pytest.raises(Exception) as theirs:
            torch.tensor(data)
        with pytest.raises(Exception) as mine:
            jitgrad.tensor(data)
        assert type(mine.value) is type(theirs.value)
        assert str(mine.value) == str(theirs.value)


def test_tensor_inference_matches_torch():
    torch = pytest.importorskip("torch")
    cases = [
        lambda T: [1, 2.5], lambda T: [True, 1], lambda T: [[True], [False]], lambda T: 7,
        lambda T: [np.float64(1.5)], lambda T: [np.int16(1), np.uint8(2)],
        lambda T: [T.tensor(1, dtype=T.int32), 2], lambda T: [T.tensor(1, dtype=T.uint8),
                                                             T.tensor(1, dtype=T.int8)],
        lambda T: [T.tensor(1.0, dtype=T.float64), T.tensor(1.0)],
        lambda T: [T.tensor(True), False], lambda T: [[T.tensor(1), 2.0], [3, 4]],
    ]
    for case in cases:
        a = jitgrad.tensor(case(jitgrad))
        b = torch.tensor(case(torch))
        assert a.dtype.name == str(b.dtype).split(".")[1]
        assert a.tolist() == b.tolist()


# --------------------------------------------------------------------------- factories

def test_zeros_ones_empty():
    for shape_args, shape in (((2, 3), (2, 3)), (((2, 3),), (2, 3)), (([2, 3],), (2, 3)),
                              ((jitgrad.Size([4]),), (4,)), (((),), ()), ((0,), (0,))):
        z = jitgrad.zeros(*shape_args)
        o = jitgrad.ones(*shape_args)
        e = jitgrad.empty(*shape_args)
        assert z.shape == o.shape == e.shape == shape
        assert z.dtype == o.dtype == e.dtype == jitgrad.float32
        assert np.all(z.cpu().numpy() == 0) and np.all(o.cpu().numpy() == 1)
    assert jitgrad.ones(2, dtype=jitgrad.int32).tolist() == [1, 1]
    assert jitgrad.zeros(2, dtype=jitgrad.bool).tolist() == [False, False]
    r = jitgrad.zeros(2, requires_grad=True)
    assert r.requires_grad and r.is_leaf
    with pytest.raises(RuntimeError, match="negative dimension"):
        jitgrad.empty(-1)


@pytest.mark.parametrize("fill,dtype", [(1, "int64"), (1.5, "float32"), (True, "bool"),
                                        (np.int64(2), "int64")])
def test_full_fill_dtype_inference(fill, dtype):
    t = jitgrad.full((2, 2), fill)
    assert t.dtype == dt(dtype)
    assert t.tolist() == [[fill, fill], [fill, fill]]


def test_full_variants():
    assert jitgrad.full([2], 3, dtype=jitgrad.float64).tolist() == [3.0, 3.0]
    assert jitgrad.full([2], 3, dtype=jitgrad.float64).dtype == jitgrad.float64
    assert jitgrad.full((), 2.0).shape == ()
    assert jitgrad.full((3,), jitgrad.tensor(4.0)).tolist() == [4.0, 4.0, 4.0]


@pytest.mark.parametrize("args,expected,dtype", [
    ((5,), [0, 1, 2, 3, 4], "int64"),
    ((1, 4), [1, 2, 3], "int64"),
    ((0, 10, 3), [0, 3, 6, 9], "int64"),
    ((5, 0, -1), [5, 4, 3, 2, 1], "int64"),
    ((0, -3, -1), [0, -1, -2], "int64"),
    ((0, 1, 0.25), [0.0, 0.25, 0.5, 0.75], "float32"),
    ((5.0, 0, -1.5), [5.0, 3.5, 2.0, 0.5], "float32"),
    ((1.0, 4), [1.0, 2.0, 3.0], "float32"),
    ((-1.0, 1.0, 0.5), [-1.0, -0.5, 0.0, 0.5], "float32"),
    ((3, 3), [], "int64"),
])
def test_arange(args, expected, dtype):
    t = jitgrad.arange(*args)
    assert t.dtype == dt(dtype)
    assert t.tolist() == expected


def test_arange_options_and_errors():
    assert jitgrad.arange(3, dtype=jitgrad.float32).tolist() == [0.0, 1.0, 2.0]
    assert jitgrad.arange(0, 1, 0.1).shape == (10,)
    assert jitgrad.arange(0.0, 1.0, 0.1, dtype=jitgrad.float64).shape == (10,)
    with pytest.raises(RuntimeError, match="^step must be nonzero$"):
        jitgrad.arange(0, 3, 0)
    with pytest.raises(RuntimeError, match="^upper bound and lower bound inconsistent with step "
                                           "sign$"):
        jitgrad.arange(0, 3, -1)


def test_arange_matches_torch():
    torch = pytest.importorskip("torch")
    for args in ((0.1, 0.4, 0.1), (0, 1, 0.1), (-2.5, 2.5, 0.7), (10, 0, -3), (1, 2, 0.3),
                 (0.0, 1.0, 1 / 3)):
        a = jitgrad.arange(*args)
        b = torch.arange(*args)
        assert a.dtype.name == str(b.dtype).split(".")[1]
        np.testing.assert_array_equal(a.cpu().numpy(), b.cpu().numpy())


def test_linspace():
    np.testing.assert_allclose(jitgrad.linspace(0, 1, 5).cpu().numpy(), [0, 0.25, 0.5, 0.75, 1])
    t = jitgrad.linspace(-1, 1, 4)
    assert t.dtype == jitgrad.float32
    np.testing.assert_allclose(t.cpu().numpy(), [-1, -1 / 3, 1 / 3, 1], rtol=1e-6)
    assert t.tolist()[0] == -1.0 and t.tolist()[-1] == 1.0
    assert jitgrad.linspace(0, 10, 1).tolist() == [0.0]
    assert jitgrad.linspace(0, 10, 0).shape == (0,)
    assert jitgrad.linspace(0, 10, 6, dtype=jitgrad.int64).tolist() == [0, 2, 4, 6, 8, 10]
    with pytest.raises(RuntimeError, match="number of steps must be non-negative"):
        jitgrad.linspace(0, 1, -1)


def test_linspace_matches_torch():
    torch = pytest.importorskip("torch")
    for args in ((0, 1, 7), (-3.3, 2.2, 10), (0, 1, 100), (5, -5, 11)):
        for d in ("float32", "float64"):
            a = jitgrad.linspace(*args, dtype=dt(d))
            b = torch.linspace(*args, dtype=getattr(torch, d))
            # torch's vectorised kernel may differ in the last bit of a few values
            rtol = 2.5e-7 if d == "float32" else 5e-16
            np.testing.assert_allclose(a.cpu().numpy(), b.cpu().numpy(), rtol=rtol, atol=0)
            assert a.tolist()[0] == b.tolist()[0] and a.tolist()[-1] == b.tolist()[-1]


def test_eye():
    assert jitgrad.eye(3).tolist() == [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    assert jitgrad.eye(2, 3).tolist() == [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    assert jitgrad.eye(3, dtype=jitgrad.int64).dtype == jitgrad.int64
    assert jitgrad.eye(0).shape == (0, 0)


def test_like_factories():
    base = jitgrad.tensor([[1, 2], [3, 4]], dtype=jitgrad.int32)
    for f, value in ((jitgrad.zeros_like, 0), (jitgrad.ones_like, 1)):
        t = f(base)
        assert t.shape == (2, 2) and t.dtype == jitgrad.int32
        assert np.all(t.cpu().numpy() == value)
    assert jitgrad.empty_like(base).shape == (2, 2)
    assert jitgrad.full_like(base, 7).tolist() == [[7, 7], [7, 7]]
    assert jitgrad.full_like(jitgrad.ones(2, dtype=jitgrad.int64), 7.9).tolist() == [7, 7]
    assert jitgrad.zeros_like(base, dtype=jitgrad.float64).dtype == jitgrad.float64
    g = jitgrad.ones_like(jitgrad.ones(2), requires_grad=True)
    assert g.requires_grad
    # the result is a fresh leaf even when the input is in a graph
    x = jitgrad.ones(2, requires_grad=True) * 2
    assert not jitgrad.zeros_like(x).requires_grad


def test_from_numpy_shares_memory():
    a = np.array([1.0, 2.0, 3.0])
    t = jitgrad.from_numpy(a)
    assert t.dtype == jitgrad.float64
    a[0] = 10.0
    assert t.tolist()[0] == 10.0
    t[1] = 20.0
    assert a[1] == 20.0
    assert jitgrad.from_numpy(np.zeros(2, dtype=np.int32)).dtype == jitgrad.int32
    with pytest.raises(TypeError):
        jitgrad.from_numpy([1, 2])
    with pytest.raises(TypeError):
        jitgrad.from_numpy(np.zeros(2, dtype=np.complex64))


def test_from_numpy_of_an_array_subclass_is_a_cpu_tensor_sharing_memory(tmp_path):
    # a memmap (a numpy subclass) once read as device storage: device cuda:0, no GPU
    m = np.lib.format.open_memmap(tmp_path / "m.npy", mode="w+", dtype=np.float32, shape=(3,))
    t = jitgrad.from_numpy(m)
    assert t.device.type == "cpu" and not t.is_cuda
    t[0] = 5.0
    assert m[0] == 5.0
    class Sub(np.ndarray):
        pass

    assert (jitgrad.as_tensor(np.eye(2).view(Sub)) * 2).tolist() == [[2, 0], [0, 2]]


def test_as_tensor():
    a = np.array([1.0, 2.0])
    t = jitgrad.as_tensor(a)
    a[0] = 5.0
    assert t.tolist()[0] == 5.0  # shares when no conversion is needed
    x = jitgrad.tensor([1.0])
    assert jitgrad.as_tensor(x) is x
    assert jitgrad.as_tensor([1, 2]).dtype == jitgrad.int64


# --------------------------------------------------------------------------- random

def test_rand_randn_randint_basics():
    jitgrad.manual_seed(1234)
    r = jitgrad.rand(1000)
    assert r.dtype == jitgrad.float32 and r.shape == (1000,)
    assert float(r.min()) >= 0.0 and float(r.max()) < 1.0
    assert 0.4 < float(r.mean()) < 0.6
    n = jitgrad.randn(4000, dtype=jitgrad.float64)
    assert n.dtype == jitgrad.float64
    assert abs(float(n.mean())) < 0.1 and 0.9 < float((n * n).mean()) ** 0.5 < 1.1
    i = jitgrad.randint(3, 7, (500,))
    assert i.dtype == jitgrad.int64
    assert set(i.tolist()) == {3, 4, 5, 6}
    assert jitgrad.randint(5, (3,)).shape == (3,)
    assert jitgrad.randint(0, 10, (3,), dtype=jitgrad.int32).dtype == jitgrad.int32
    assert jitgrad.rand(2, 3).shape == (2, 3)
    assert jitgrad.rand(()).shape == ()
    assert jitgrad.randn((2,)).shape == (2,)
    assert jitgrad.rand_like(jitgrad.ones(2, dtype=jitgrad.float64)).dtype == jitgrad.float64
    assert jitgrad.randn_like(jitgrad.ones(2, 3)).shape == (2, 3)
    ri = jitgrad.randint_like(jitgrad.ones(2, 3), 5)
    assert ri.shape == (2, 3) and ri.dtype == jitgrad.float32
    assert set(jitgrad.randint_like(jitgrad.ones(50), 3, 5).tolist()) <= {3.0, 4.0}
    assert sorted(jitgrad.randperm(6).tolist()) == list(range(6))
    with pytest.raises(RuntimeError, match="random_ expects 'from' to be less than 'to', but "
                                           "got from=5 >= to=5"):
        jitgrad.randint(5, 5, (3,))


def test_manual_seed_reproducible():
    jitgrad.manual_seed(7)
    a = (jitgrad.rand(5).tolist(), jitgrad.randn(3).tolist(),
         jitgrad.randint(0, 100, (4,)).tolist())
    jitgrad.manual_seed(7)
    b = (jitgrad.rand(5).tolist(), jitgrad.randn(3).tolist(),
         jitgrad.randint(0, 100, (4,)).tolist())
    assert a == b
    jitgrad.manual_seed(8)
    c = jitgrad.rand(5).tolist()
    assert c != a[0]
    jitgrad.manual_seed(7)
    assert jitgrad.rand(5).tolist() == a[0]
    assert jitgrad.initial_seed() == 7


def test_random_streams_match_torch():
    torch = pytest.importorskip("torch")
    for T in (torch, jitgrad):
        T.manual_seed(0)
    for make in (lambda T: T.rand(5), lambda T: T.randn(3), lambda T: T.randint(0, 10, (4,)),
                 lambda T: T.rand(3, dtype=T.float64)):
        assert make(jitgrad).tolist() == make(torch).tolist()


# --------------------------------------------------------------------------- promotion

PINNED_TENSOR_TENSOR = {
    ("bool", "bool"): "bool", ("bool", "uint8"): "uint8", ("bool", "int32"): "int32",
    ("uint8", "int32"): "int32", ("uint8", "int64"): "int64", ("int32", "int64"): "int64",
    ("int64", "float32"): "float32", ("uint8", "float32"): "float32",
    ("float32", "float64"): "float64", ("int32", "float64"): "float64",
    ("bool", "float32"): "float32", ("uint8", "int8"): "int16",
}

# (dimensioned tensor dtype, 0-d tensor dtype) -> result: a 0-d tensor only wins by category
PINNED_TENSOR_ZERO_DIM = {
    ("float32", "float64"): "float32", ("int32", "int64"): "int32", ("uint8", "int64"): "uint8",
    ("int64", "float64"): "float64", ("int32", "float32"): "float32", ("bool", "int32"): "int32",
    ("bool", "float64"): "float64", ("uint8", "bool"): "uint8", ("float64", "float32"): "float64",
}

PINNED_TENSOR_SCALAR = {
    ("bool", True): "bool", ("bool", 3): "int64", ("bool", 2.5): "float32",
    ("uint8", 3): "uint8", ("uint8", True): "uint8", ("int32", 3): "int32",
    ("int32", 2.5): "float32", ("int64", 2.5): "float32", ("float32", 3): "float32",
    ("float64", 2.5): "float64", ("float32", True): "float32",
}


def _t(name, zero_dim=False):
    return jitgrad.ones((), dtype=dt(name)) if zero_dim else jitgrad.ones(2, dtype=dt(name))


@pytest.mark.parametrize("pair,expected", PINNED_TENSOR_TENSOR.items())
def test_promotion_tensor_tensor_pinned(pair, expected):
    a, b = pair
    for x, y in ((a, b), (b, a)):
        assert jitgrad.result_type(_t(x), _t(y)) == dt(expected)
        assert jitgrad.promote_types(dt(x), dt(y)) == dt(expected)
        assert (_t(x) + _t(y)).dtype == dt(expected)
        assert (_t(x) * _t(y)).dtype == dt(expected)
        # two 0-d tensors promote like two dimensioned ones
        assert (_t(x, True) * _t(y, True)).dtype == dt(expected)


@pytest.mark.parametrize("pair,expected", PINNED_TENSOR_ZERO_DIM.items())
def test_promotion_tensor_zero_dim_pinned(pair, expected):
    a, b = pair
    assert jitgrad.result_type(_t(a), _t(b, True)) == dt(expected)
    assert (_t(a) + _t(b, True)).dtype == dt(expected)
    assert (_t(b, True) + _t(a)).dtype == dt(expected)


@pytest.mark.parametrize("pair,expected", PINNED_TENSOR_SCALAR.items())
def test_promotion_tensor_scalar_pinned(pair, expected):
    a, s = pair
    assert jitgrad.result_type(_t(a), s) == dt(expected)
    assert (_t(a) * s).dtype == dt(expected)
    assert (s * _t(a)).dtype == dt(expected)
    assert (_t(a, True) * s).dtype == dt(expected)


def test_promotion_special_cases():
    # true division of integers gives the default float
    assert (jitgrad.tensor([1, 2]) / 2).dtype == jitgrad.float32
    assert (jitgrad.tensor([1, 2]) / jitgrad.tensor([2, 2])).dtype == jitgrad.float32
    assert (jitgrad.tensor([3, 4]) / 2).tolist() == [1.5, 2.0]
    # comparisons give bool whatever the operands
    assert (jitgrad.tensor([1, 2]) < 1.5).dtype == jitgrad.bool
    # bool ** int is an integer
    assert (jitgrad.tensor([True, False]) ** 2).dtype == jitgrad.int64
    with pytest.raises(RuntimeError, match="Subtraction, the `-` operator, with a bool tensor "
                                           "is not supported"):
        jitgrad.tensor([1.0]) - True
    with pytest.raises(RuntimeError, match="Subtraction, the `-` operator, with two bool "
                                           "tensors is not supported"):
        jitgrad.tensor([True]) - True


def test_promotion_matches_torch_result_type():
    torch = pytest.importorskip("torch")

    def both(name, zero_dim):
        shape = () if zero_dim else (2,)
        return (jitgrad.ones(shape, dtype=dt(name)),
                torch.ones(shape, dtype=getattr(torch, name)))

    for a, b in itertools.product(DTYPES, DTYPES):
        for za, zb in itertools.product((False, True), repeat=2):
            ja, ta = both(a, za)
            jb, tb = both(b, zb)
            expected = str(torch.result_type(ta, tb)).split(".")[1]
            assert jitgrad.result_type(ja, jb).name == expected, (a, za, b, zb)
            assert (ja + jb).dtype.name == str((ta + tb).dtype).split(".")[1], (a, za, b, zb)
    for a, s in itertools.product(DTYPES, PY_SCALARS):
        for za in (False, True):
            ja, ta = both(a, za)
            expected = str(torch.result_type(ta, s)).split(".")[1]
            assert jitgrad.result_type(ja, s).name == expected, (a, za, s)
            for op in ("__add__", "__mul__", "__radd__", "__rmul__", "__truediv__",
                       "__rtruediv__", "__pow__", "__eq__"):
                got = getattr(ja, op)(s).dtype.name
                want = str(getattr(ta, op)(s).dtype).split(".")[1]
                assert got == want, (op, a, za, s)


# --------------------------------------------------------------------------- attributes

def test_shape_and_size():
    x = jitgrad.zeros(2, 3, 4)
    assert x.shape == (2, 3, 4)
    assert isinstance(x.shape, jitgrad.Size) and isinstance(x.shape, tuple)
    assert x.size() == jitgrad.Size([2, 3, 4])
    assert x.size(1) == 3 and x.size(-1) == 4
    assert x.ndim == 3 and x.dim() == 3
    assert x.numel() == 24 and jitgrad.numel(x) == 24 and x.shape.numel() == 24
    assert len(x) == 2
    assert repr(x.shape) == "jitgrad.Size([2, 3, 4])"
    s = jitgrad.tensor(5.0)
    assert s.shape == () and s.ndim == 0 and s.numel() == 1
    with pytest.raises(TypeError, match="len\\(\\) of a 0-d tensor"):
        len(s)


def test_dtype_and_device():
    x = jitgrad.tensor([1.0])
    assert x.dtype == jitgrad.float32 and x.dtype is jitgrad.float32
    assert x.dtype.is_floating_point and not jitgrad.int64.is_floating_point
    assert x.is_floating_point() and jitgrad.is_floating_point(x)
    assert not jitgrad.tensor([1]).is_floating_point()
    assert x.device == jitgrad.device("cpu") and x.device.type == "cpu"
    assert str(x.device) == "cpu"
    assert x.device == "cpu"
    assert not x.is_cuda
    assert jitgrad.float32.itemsize == 4 and x.element_size() == 4
    assert repr(jitgrad.float64) == "jitgrad.float64"


def test_item():
    assert jitgrad.tensor(2.5).item() == 2.5 and isinstance(jitgrad.tensor(2.5).item(), float)
    assert jitgrad.tensor([7]).item() == 7 and isinstance(jitgrad.tensor([7]).item(), int)
    b = jitgrad.tensor([[True]]).item()
    assert b is True
    x = jitgrad.tensor(3.0, requires_grad=True)
    assert x.item() == 3.0  # item() works on tensors requiring grad
    assert float(jitgrad.tensor(1.5)) == 1.5 and int(jitgrad.tensor(2.7)) == 2
    assert bool(jitgrad.tensor([0.0])) is False
    assert [10, 20, 30][jitgrad.tensor(1)] == 20  # __index__


def test_tolist():
    assert jitgrad.tensor([[1, 2], [3, 4]]).tolist() == [[1, 2], [3, 4]]
    assert jitgrad.tensor(1.5).tolist() == 1.5
    assert jitgrad.tensor([True]).tolist() == [True]
    assert jitgrad.zeros(2, 0).tolist() == [[], []]
    v = jitgrad.tensor([0.1], dtype=jitgrad.float32).tolist()[0]
    assert isinstance(v, float) and v == float(np.float32(0.1))


def test_numpy_shares_memory():
    x = jitgrad.tensor([1.0, 2.0])
    a = x.cpu().numpy()
    assert isinstance(a, np.ndarray) and a.dtype == np.float32
    a[0] = 9.0
    assert x.tolist() == [9.0, 2.0]
    y = jitgrad.tensor([1.0], requires_grad=True)
    d = y.detach().cpu().numpy()
    d[0] = 4.0
    assert y.detach().tolist() == [4.0]
    assert np.asarray(jitgrad.tensor([1, 2])).tolist() == [1, 2]


def test_data_attribute():
    x = jitgrad.tensor([1.0, 2.0], requires_grad=True)
    d = x.data
    assert not d.requires_grad and d.is_leaf
    d.mul_(2)  # allowed, and visible through x
    assert x.detach().tolist() == [2.0, 4.0]
    y = x * 3
    assert not y.data.requires_grad
    assert y.data.tolist() == [6.0, 12.0]


def test_T_transpose_property():
    x = jitgrad.tensor([[1, 2, 3], [4, 5, 6]])
    assert x.T.shape == (3, 2)
    assert x.T.tolist() == [[1, 4], [2, 5], [3, 6]]
    assert x.t().tolist() == x.T.tolist()
    v = jitgrad.tensor([1, 2])
    assert v.T.tolist() == [1, 2]
    z = jitgrad.zeros(2, 3, 4)
    assert z.T.shape == (4, 3, 2)
    assert z.mT.shape == (2, 4, 3)
    # a view: writes through it reach the base
    x.T[0, 1] = 40
    assert x.tolist()[1][0] == 40


def test_clone():
    x = jitgrad.tensor([1.0, 2.0], requires_grad=True)
    c = x.clone()
    assert c.grad_fn.name() == "CloneBackward0"
    assert c.detach().tolist() == [1.0, 2.0]
    with jitgrad.no_grad():
        c[0] = 5.0
    assert x.detach().tolist() == [1.0, 2.0]  # a copy
    (c * 3).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]
    n = jitgrad.tensor([[1, 2], [3, 4]]).t()
    assert n.clone().is_contiguous() and n.clone().tolist() == [[1, 3], [2, 4]]


def test_contiguous():
    x = jitgrad.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert x.is_contiguous() and x.contiguous() is x
    t = x.t()
    assert not t.is_contiguous()
    c = t.contiguous()
    assert c.is_contiguous() and c.tolist() == [[1.0, 3.0], [2.0, 4.0]]
    assert c.stride() == (2, 1) and t.stride() == (1, 2)


def test_float_double_casts():
    i = jitgrad.tensor([1, 2])
    f = i.float()
    assert f.dtype == jitgrad.float32 and f.tolist() == [1.0, 2.0]
    d = i.double()
    assert d.dtype == jitgrad.float64
    assert f.float() is f  # already float32: the same tensor, as in torch
    assert jitgrad.tensor([1.7]).long().tolist() == [1]
    assert jitgrad.tensor([1.7]).int().dtype == jitgrad.int32
    assert jitgrad.tensor([0.0, 2.0]).bool().tolist() == [False, True]
    assert i.to(jitgrad.float64).dtype == jitgrad.float64
    assert i.to(dtype=jitgrad.float32).dtype == jitgrad.float32
    assert i.type_as(d).dtype == jitgrad.float64
    x = jitgrad.tensor([1.0, 2.0], requires_grad=True)
    y = x.double()
    assert y.grad_fn.name() == "ToCopyBackward0"
    y.sum().backward()
    assert x.grad.dtype == jitgrad.float32
    assert not x.long().requires_grad


def test_repr_basics():
    assert repr(jitgrad.tensor([1.0, 2.0], requires_grad=True)) == \
        "tensor([1., 2.], requires_grad=True)"
    x = jitgrad.tensor([1.0, 2.0], requires_grad=True)
    assert repr(x * 2) == "tensor([2., 4.], grad_fn=<MulBackward0>)"
    assert repr((x * 2).sum()) == "tensor(6., grad_fn=<SumBackward0>)"
    assert repr(jitgrad.tensor([1, 2])) == "tensor([1, 2])"
    assert repr(jitgrad.tensor(3)) == "tensor(3)"
    assert repr(jitgrad.tensor([True, False])) == "tensor([ True, False])"
    assert repr(jitgrad.tensor([1, 2], dtype=jitgrad.int32)) == \
        "tensor([1, 2], dtype=jitgrad.int32)"
    assert str(x.detach()) == "tensor([1., 2.])"
    assert f"{jitgrad.tensor(2.5):.2f}" == "2.50"
    assert repr(x.grad_fn) == "None"
    assert repr((x * 2).grad_fn).startswith("<MulBackward0 object at 0x")


def test_legacy_tensor_constructor():
    t = jitgrad.Tensor([1, 2])
    assert t.dtype == jitgrad.float32 and t.tolist() == [1.0, 2.0]
    assert jitgrad.Tensor(2, 3).shape == (2, 3)
    assert isinstance(t, jitgrad.Tensor) and jitgrad.is_tensor(t)
    assert not jitgrad.is_tensor([1])


# --------------------------------------------------------------------------- namespace

def test_torch_style_names_exist():
    torch = jitgrad  # code written as `import jitgrad as torch`
    for name in ("float32", "float64", "int64", "int32", "int16", "int8", "uint8", "bool",
                 "float", "double", "long", "int", "short"):
        assert isinstance(getattr(torch, name), torch.dtype), name
    assert torch.float is torch.float32 and torch.double is torch.float64
    assert torch.long is torch.int64 and torch.int is torch.int32 and torch.short is torch.int16
    for name in ("tensor", "as_tensor", "from_numpy", "zeros", "ones", "full", "empty", "arange",
                 "linspace", "eye", "zeros_like", "ones_like", "full_like", "empty_like", "rand",
                 "randn", "randint", "randperm", "manual_seed", "no_grad", "enable_grad",
                 "set_grad_enabled", "inference_mode", "is_grad_enabled", "is_tensor", "Size",
                 "Tensor", "device", "matmul", "exp", "sum", "mean", "max", "where", "clamp",
                 "reshape", "transpose", "permute", "broadcast_shapes", "result_type",
                 "promote_types", "get_default_dtype", "set_default_dtype"):
        assert callable(getattr(torch, name)), name
    assert callable(torch.autograd.grad) and callable(torch.autograd.backward)
    assert issubclass(torch.autograd.Function, object)
    assert torch.autograd.function.once_differentiable is torch.autograd.once_differentiable
    assert torch.autograd.no_grad is torch.no_grad
    assert callable(torch.autograd.gradcheck)
    assert torch.broadcast_shapes((3, 1), (4,)) == torch.Size([3, 4])
    assert torch.get_default_dtype() is torch.float32


def test_names_match_torch():
    torch = pytest.importorskip("torch")
    for name in ("float32", "float64", "int64", "int32", "int16", "int8", "uint8", "bool",
                 "float", "double", "long", "int", "short"):
        assert getattr(jitgrad, name).name == str(getattr(torch, name)).split(".")[1]
    x = jitgrad.ones(2, 3)
    for method in ("sum", "mean", "max", "min", "exp", "log", "tanh", "sigmoid", "relu",
                   "reshape", "view", "transpose", "permute", "unsqueeze", "squeeze", "expand",
                   "t", "clone", "detach", "detach_", "requires_grad_", "backward",
                   "register_hook", "retain_grad", "numpy", "item", "tolist", "size", "dim",
                   "numel", "float", "double", "long", "to", "contiguous", "is_contiguous",
                   "zero_", "add_", "mul_", "matmul", "flatten"):
        assert hasattr(torch.Tensor, method), method
        assert callable(getattr(x, method)), method


def test_out_of_range_python_int_wraps_like_torch():
    t = jitgrad.tensor([1, 200], dtype=jitgrad.uint8)
    assert (t + (-1)).tolist() == [0, 199]
    assert (t * (-2)).tolist() == [254, 112]
    assert (t < -1).tolist() == [True, True]  # -1 becomes 255, as in torch
    assert (t + (-1)).dtype == jitgrad.uint8


def _deterministic_api(m, log):
    """Drive m's (jitgrad's or torch's) deterministic-mode switches; log what it reports."""
    log.append((m.are_deterministic_algorithms_enabled(), m.get_deterministic_debug_mode()))
    for bad in (1, "x", None):
        with pytest.raises(TypeError) as e:
            m.use_deterministic_algorithms(bad)
        log.append(str(e.value))
    with pytest.raises(TypeError) as e:
        m.use_deterministic_algorithms(True, warn_only=1)
    log.append(str(e.value))
    for mode in ("default", "warn", "error", 0, 1, 2, "bad", 3, 1.5):
        try:
            m.set_deterministic_debug_mode(mode)
            log.append((m.get_deterministic_debug_mode(), m.are_deterministic_algorithms_enabled(),
                        m.is_deterministic_algorithms_warn_only_enabled()))
        except (RuntimeError, TypeError) as e:
            log.append((type(e).__name__, str(e)))
    m.use_deterministic_algorithms(True)
    for dt in (m.float32, m.float64, m.int64, m.int32, m.uint8, m.bool):
        log.append(m.empty(3, dtype=dt).tolist())
    log.append(m.empty_like(m.ones(2)).tolist())
    log.append(m.ones(2).new_empty(3).tolist())
    m.use_deterministic_algorithms(False)
    log.append(m.are_deterministic_algorithms_enabled())


def test_deterministic_mode_switches_and_fill_like_torch():
    torch = pytest.importorskip("torch")
    import torch.utils.deterministic  # noqa: F401 - (torch loads it lazily)

    ours, theirs = [], []
    try:
        _deterministic_api(jitgrad, ours)
        _deterministic_api(torch, theirs)
    finally:
        jitgrad.use_deterministic_algorithms(False)
        torch.use_deterministic_algorithms(False)
    assert repr(ours) == repr(theirs)  # (repr: NaN fills compare as text)
    from jitgrad._creation import _uninitialized

    jitgrad.utils.deterministic.fill_uninitialized_memory = False
    try:  # switched off: nothing is filled in
        assert _uninitialized(np.float32) is None
    finally:
        jitgrad.utils.deterministic.fill_uninitialized_memory = True
    assert np.isnan(_uninitialized(np.float32))
    fills = ours[-9:-3]  # float32, float64, int64, int32, uint8, bool
    assert np.isnan(fills[0]).all() and fills[2] == [np.iinfo(np.int64).max] * 3
