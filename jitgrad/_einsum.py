"""einsum and tensordot, written with views, sums and batched matrix products, so their
gradients (and devices) are those ops'.

An equation is reduced one operand at a time: a letter repeated within an operand takes its
diagonal; a letter no one else needs is summed away; then operands are contracted pairwise,
left to right, each pair as one batched matrix product (batch letters, the left operand's
own letters, the right operand's own letters, the contracted letters between them). The
result is permuted to the output's order. ``...`` stands for the same broadcast dims in
every operand, as numpy's and torch's einsum read it.
"""

from __future__ import annotations

import string

from . import _ops as O
from . import _views as V
from .tensor import Tensor

_SPARE = [c for c in string.ascii_uppercase + string.ascii_lowercase]


def _parse(equation: str, operands: list) -> tuple:
    eq = equation.replace(" ", "")
    if "->" in eq:
        lhs, out = eq.split("->")
        explicit = True
    else:
        lhs, out, explicit = eq, "", False
    terms = lhs.split(",")
    if len(terms) != len(operands):
        raise RuntimeError("einsum(): "
                           + ("more" if len(operands) > len(terms) else "fewer")
                           + " operands were provided than specified in the equation")
    used = set(c for c in eq if c.isalpha())
    spare = [c for c in _SPARE if c not in used]
    ell_dims = 0
    for t, x in zip(terms, operands):
        if "..." in t:
            ell_dims = max(ell_dims, x.dim() - (len(t) - 3))
    ell = "".join(spare[:ell_dims])
    subs = []
    for t, x in zip(terms, operands):
        for c in t.replace("...", ""):
            if not c.isalpha():
                raise RuntimeError(f"einsum(): invalid subscript given at index "
                                   f"{equation.index(c)} in the equation string, subscripts "
                                   "must be in [a-zA-Z]")
        if "..." in t:
            n = x.dim() - (len(t) - 3)
            t = t.replace("...", ell[ell_dims - n:] if n else "")
        if len(t) != x.dim():
            raise RuntimeError(f"einsum(): the number of subscripts in the equation "
                               f"({len(t)}) does not match the number of dimensions "
                               f"({x.dim()}) for operand {len(subs)}"
                               + ("" if "..." in equation else " and no ellipsis was given"))
        subs.append(t)
    if explicit:
        out = out.replace("...", ell)
        for c in out:
            if not any(c in s for s in subs):
                raise RuntimeError(f"einsum(): output subscript {c} does not appear in the "
                                   "equation for any input operand")
            if out.count(c) > 1:
                raise RuntimeError(f"einsum(): output subscript {c} appears more than once "
                                   "in the output")
    else:
        counts: dict = {}
        for s in subs:
            for c in s:
                counts[c] = counts.get(c, 0) + 1
        out = ell + "".join(sorted(c for c, k in counts.items() if k == 1 and c not in ell))
    return subs, out


def _check_sizes(subs: list, xs: list) -> None:
    """Each letter's size agrees across operands (1 broadcasts), torch's errors otherwise."""
    seen: dict = {}
    for k, (s, x) in enumerate(zip(subs, xs)):
        mine: dict = {}
        for c, n in zip(s, x.shape):
            if c in mine and mine[c] != n:
                raise RuntimeError(f"einsum(): subscript {c} is repeated for operand {k} but "
                                   f"the sizes don't match, {n} != {mine[c]}")
            mine[c] = n
        for c, n in mine.items():
            if c in seen and n != 1 and seen[c] != 1 and seen[c] != n:
                raise RuntimeError(f"einsum(): subscript {c} has size {n} for operand {k} "
                                   "which does not broadcast with previously seen size "
                                   f"{seen[c]}")
            if c not in seen or seen[c] == 1:
                seen[c] = n


def _diagonals(x: Tensor, s: str) -> tuple:
    """x with each repeated letter of s reduced to its diagonal (moved to the end)."""
    from ._shape_ops import _diagonal

    while True:
        for i, c in enumerate(s):
            j = s.find(c, i + 1)
            if j >= 0:
                x = _diagonal(x, 0, i, j)
                s = s[:i] + s[i + 1:j] + s[j + 1:] + c
                break
        else:
            return x, s


def _sum_out(x: Tensor, s: str, keep: set) -> tuple:
    dims = [i for i, c in enumerate(s) if c not in keep]
    if dims:
        x = O.sum(x, dim=tuple(dims))
        s = "".join(c for c in s if c in keep)
    return x, s


def _contract(a: Tensor, sa: str, b: Tensor, sb: str, keep: set) -> tuple:
    """a (letters sa) times b (letters sb), summing the shared letters not in keep."""
    batch = [c for c in sa if c in sb and c in keep]
    summed = [c for c in sa if c in sb and c not in keep]
    only_a = [c for c in sa if c not in sb]
    only_b = [c for c in sb if c not in sa]
    size = {}
    for s, x in ((sa, a), (sb, b)):
        for c, n in zip(s, x.shape):
            if size.get(c, 1) == 1:  # (sizes were checked by _check_sizes: 1 broadcasts,
                size[c] = n          # and a zero-size dim stays zero)

    def arrange(x, s, order):
        x = V.permute(x, *[s.index(c) for c in order]) if list(s) != order else x
        want = [size[c] for c in order]
        return V.expand(x, *want) if list(x.shape) != want else x

    a = arrange(a, sa, batch + only_a + summed)
    b = arrange(b, sb, batch + summed + only_b)
    nb = [size[c] for c in batch]
    m = 1
    for c in only_a:
        m *= size[c]
    k = 1
    for c in summed:
        k *= size[c]
    n = 1
    for c in only_b:
        n *= size[c]
    prod = O.matmul(V.reshape(a, *nb, m, k), V.reshape(b, *nb, k, n))
    out = V.reshape(prod, *nb, *[size[c] for c in only_a], *[size[c] for c in only_b])
    return out, "".join(batch + only_a + only_b)


def einsum(equation: str, *operands) -> Tensor:
    """Sums of products of the operands' elements, as the equation's subscripts say (torch's
    and numpy's einsum): "ij,jk->ik" is a matrix product, "bij->bji" a transpose, "ii" a
    trace, "i,j->ij" an outer product."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not operands:
        raise RuntimeError("einsum(): must provide at least one operand")
    for i, x in enumerate(operands):
        if not isinstance(x, Tensor):
            raise TypeError(f"einsum(): argument 'operands' must be tuple of Tensors, but found "
                            f"element of type {type(x).__name__} at pos {i}")
    subs, out = _parse(equation, list(operands))
    xs = list(operands)
    _check_sizes(subs, xs)
    for i in range(len(xs)):
        xs[i], subs[i] = _diagonals(xs[i], subs[i])
    # letters still needed after operand i: the output's and those of later operands
    acc, sa = None, ""
    for i, (x, s) in enumerate(zip(xs, subs)):
        later = set(out).union(*[set(t) for t in subs[i + 1:]])
        x, s = _sum_out(x, s, later | set(sa))
        if acc is None:
            acc, sa = x, s
        else:
            acc, sa = _contract(acc, sa, x, s, later)
        acc, sa = _sum_out(acc, sa, later)
    if sa != out:
        acc = V.permute(acc, *[sa.index(c) for c in out]) if sa else acc
    return acc


def tensordot(a: Tensor, b: Tensor, dims=2) -> Tensor:
    """Sum the products of a's last `dims` dims with b's first (or the listed dims pairs)."""
    from .tensor import _wrap_dim

    if isinstance(dims, Tensor):
        dims = dims.tolist()
    if isinstance(dims, int):
        if dims < 0:
            raise RuntimeError(f"tensordot expects dims >= 0, but got dims={dims}")
        if dims > min(a.dim(), b.dim()):
            raise RuntimeError(f"tensordot expects dims < ndim_a or ndim_b, but got dims={dims}")
        da = list(range(a.dim() - dims, a.dim()))
        db = list(range(dims))
    else:
        da, db = dims
        da = [da] if isinstance(da, int) else list(da)
        db = [db] if isinstance(db, int) else list(db)
    if len(da) != len(db):
        raise RuntimeError("both dimension lists should have same length")
    da = [_wrap_dim(int(i), a.dim()) for i in da]
    db = [_wrap_dim(int(j), b.dim()) for j in db]
    for ds in (da, db):
        for d in ds:
            if ds.count(d) > 1:
                raise RuntimeError(f"dim {d} appears multiple times in the list of dims")
    for i, j in zip(da, db):
        if a.shape[i] != b.shape[j]:
            raise RuntimeError(f"contracted dimensions need to match, but first has size "
                               f"{a.shape[i]} in dim {i} and second has size {b.shape[j]} in "
                               f"dim {j}")
    letters = iter(string.ascii_letters)
    sa = [next(letters) for _ in range(a.dim())]
    sb = [next(letters) for _ in range(b.dim())]
    for i, j in zip(da, db):
        sb[j] = sa[i]
    out = [c for c in sa if c not in sb] + [c for c in sb if c not in sa]
    return einsum("".join(sa) + "," + "".join(sb) + "->" + "".join(out), a, b)


__all__ = ["einsum", "tensordot"]
