"""einsum and tensordot: one table of equations (matrix products, batches, traces,
diagonals, outer products, ellipses with broadcasting, three operands, implicit outputs),
each checked against numpy's einsum, against float64 central differences, and against
torch's values and gradients where torch is installed; then torch's errors."""

from __future__ import annotations

import numpy as np
import pytest
from on_device import J, error_table_tests

from jitgrad.autograd.gradcheck import check_vjp

EQUATIONS = [
    ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("ij,jk", [(2, 3), (3, 4)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("bhqd,bhkd->bhqk", [(2, 3, 4, 5), (2, 3, 6, 5)]),
    ("ii", [(3, 3)]),
    ("ii->i", [(3, 3)]),
    ("iij->j", [(3, 3, 2)]),
    ("i,j->ij", [(3,), (4,)]),
    ("i,i->", [(4,), (4,)]),
    ("ij->ji", [(2, 3)]),
    ("ij->", [(2, 3)]),
    ("ij,ij->ij", [(2, 3), (2, 3)]),
    ("ijk,jil->kl", [(2, 3, 4), (3, 2, 5)]),
    ("...ij,...jk->...ik", [(2, 1, 3, 4), (5, 4, 2)]),
    ("i...->...", [(2, 3, 4)]),
    ("ab,bc,cd->ad", [(2, 3), (3, 4), (4, 5)]),
    ("a,b,c->abc", [(2,), (3,), (4,)]),
    ("bn,anm,bm->ba", [(2, 3), (4, 3, 5), (2, 5)]),
    ("ij,j->i", [(3, 1), (4,)]),  # a size-1 dim broadcasts against a contracted one
]


@pytest.mark.parametrize("eq, shapes", EQUATIONS, ids=[e for e, _ in EQUATIONS])
def test_einsum_matches_numpy_central_differences_and_torch(eq, shapes, rng) -> None:
    arrays = [rng.standard_normal(s) for s in shapes]
    xs = [J.tensor(a, requires_grad=True) for a in arrays]
    out = J.einsum(eq, *xs)
    np.testing.assert_allclose(out.detach().cpu().numpy(), np.einsum(eq, *arrays), rtol=1e-12,
                               atol=1e-12)
    check_vjp(lambda *t: J.einsum(eq, *t), [J.tensor(a, requires_grad=True) for a in arrays],
              rng=rng)
    torch = pytest.importorskip("torch")
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    tout = torch.einsum(eq, *ts)
    np.testing.assert_allclose(out.detach().cpu().numpy(), tout.detach().numpy(), rtol=1e-12,
                               atol=1e-12)
    v = rng.standard_normal(tout.shape)
    (tout * torch.tensor(v)).sum().backward()
    (out * J.tensor(v)).sum().backward()
    for x, t in zip(xs, ts):
        np.testing.assert_allclose(x.grad.cpu().numpy(), t.grad.numpy(), rtol=1e-12,
                                   atol=1e-12)


def test_einsum_float32_and_operand_list(rng) -> None:
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    out = J.einsum("ij,jk->ik", [J.tensor(a).float(), J.tensor(b).float()])
    assert out.dtype == J.float32
    np.testing.assert_allclose(out.cpu().numpy(), a @ b, rtol=1e-5, atol=1e-5)


def test_tensordot(rng) -> None:
    a, b = rng.standard_normal((3, 4, 5)), rng.standard_normal((4, 5, 6))
    for dims, axes in ((2, 2), (0, 0), (([1, 2], [0, 1]), ([1, 2], [0, 1])),
                       (([2, 1], [1, 0]), ([2, 1], [1, 0]))):
        np.testing.assert_allclose(J.tensordot(J.tensor(a), J.tensor(b), dims).cpu().numpy(),
                                   np.tensordot(a, b, axes), rtol=1e-12, atol=1e-12)
    check_vjp(lambda x, y: J.tensordot(x, y, 2),
              [J.tensor(a, requires_grad=True), J.tensor(b, requires_grad=True)], rng=rng)


ERRORS = [
    ("fewer", lambda m: m.einsum("ij,jk->ik", m.ones(2, 3)),
     "einsum(): fewer operands were provided than specified in the equation"),
    ("more", lambda m: m.einsum("i->i", m.ones(2), m.ones(2)),
     "einsum(): more operands were provided than specified in the equation"),
    ("output_unknown", lambda m: m.einsum("ij->ik", m.ones(2, 3)),
     "einsum(): output subscript k does not appear in the equation for any input operand"),
    ("output_twice", lambda m: m.einsum("ij->ii", m.ones(2, 3)),
     "einsum(): output subscript i appears more than once in the output"),
    ("ndim", lambda m: m.einsum("ijk->i", m.ones(2, 3)),
     "einsum(): the number of subscripts in the equation (3) does not match the number of "
     "dimensions (2) for operand 0 and no ellipsis was given"),
    ("repeated_sizes", lambda m: m.einsum("ii->i", m.ones(2, 3)),
     "einsum(): subscript i is repeated for operand 0 but the sizes don't match, 3 != 2"),
    ("broadcast", lambda m: m.einsum("ij,jk->ik", m.ones(2, 3), m.ones(4, 5)),
     "einsum(): subscript j has size 4 for operand 1 which does not broadcast with "
     "previously seen size 3"),
    ("subscript", lambda m: m.einsum("i1->i", m.ones(2, 2)),
     "einsum(): invalid subscript given at index 1 in the equation string, subscripts must "
     "be in [a-zA-Z]"),
]


test_errors, test_errors_as_torch = error_table_tests(
    [(name, fn, RuntimeError, text) for name, fn, text in ERRORS])


def test_zero_size_dims_and_tensordot_dims_checks() -> None:
    assert tuple(J.einsum("bij,bjk->bik", J.zeros(0, 2, 3), J.zeros(0, 3, 4)).shape) == (0, 2, 4)
    assert J.einsum("ij,jk->ik", J.zeros(2, 0), J.zeros(0, 3)).cpu().numpy().tolist() == \
        [[0.0] * 3] * 2
    assert tuple(J.tensordot(J.zeros(0, 3), J.zeros(3, 2), 1).shape) == (0, 2)
    assert tuple(J.tensordot(J.ones(2, 3), J.ones(3, 2), dims=J.tensor(1)).shape) == (2, 2)
    with pytest.raises(IndexError, match="Dimension out of range"):
        J.tensordot(J.ones(2, 3), J.ones(3), ([1], [1]))
    with pytest.raises(RuntimeError, match="dim 1 appears multiple times in the list of dims"):
        J.tensordot(J.ones(2, 3), J.ones(2, 3), ([1, 1], [1, 1]))
