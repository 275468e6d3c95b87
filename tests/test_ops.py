"""Every row of the op table (tests/op_table.py), every shape case:

* forward against the numpy reference in each of the row's dtypes, result dtype included;
* backward against central differences (``check_vjp``, float64, fresh random inputs);
* double backward (``gradgradcheck``) for rows marked twice differentiable;
* against PyTorch when it is installed: forward values and dtype, ``grad_fn.name()``, and the
  gradients of ``(out * v).sum()`` for a random ``v``.

Inputs are drawn fresh on every run from the ``rng`` fixture, which prints its seed.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import jitgrad
from jitgrad.autograd import check_vjp, gradgradcheck

from conftest import CUDASIM
from on_device import torch_with_our_texts
from op_table import ROWS, OpRow

# Forward tolerances by result dtype; integer and bool results must match exactly.
FORWARD_TOL = {np.dtype(np.float32): dict(rtol=1e-5, atol=1e-5),
               np.dtype(np.float64): dict(rtol=1e-10, atol=1e-12)}
# jitgrad against torch: both compute in the same precision, from the same inputs.
TORCH_TOL = {np.dtype(np.float32): dict(rtol=1e-5, atol=1e-6),
             np.dtype(np.float64): dict(rtol=1e-10, atol=1e-12)}


def _params(select=lambda row: True):
    # Under the CUDA simulator each row keeps its first (smallest) shape case.
    return [pytest.param(row, case, id=f"{row.name}-{i}")
            for row in ROWS if select(row)
            for i, case in enumerate(row.cases[:1] if CUDASIM else row.cases)]


def _outputs(out) -> list:
    """An op's result as a list of tensors (ops such as max(dim) return a tuple)."""
    return list(out) if isinstance(out, tuple) else [out]


def _assert_close(actual: np.ndarray, expected, tol: dict | None, what: str) -> None:
    """Shapes equal, then values: within `tol` (assert_allclose keywords), or exactly when
    `tol` is None (integer and bool results)."""
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    if tol is None:
        assert_array_equal(actual, expected, err_msg=what)
    else:
        assert_allclose(actual.astype(np.float64), expected.astype(np.float64), err_msg=what,
                        **tol)


def _jg_inputs(arrays, device, requires_grad: bool) -> list:
    return [jitgrad.tensor(a, device=device, requires_grad=requires_grad and a.dtype.kind == "f")
            for a in arrays]


# --------------------------------------------------------------------------- forward

@pytest.mark.parametrize("row, case", _params())
def test_forward(row: OpRow, case: tuple, device, rng) -> None:
    for dts in row.dtype_specs(len(case)):
        arrays = row.draw(rng, case, dts)
        outs = _outputs(row.fn(jitgrad, *_jg_inputs(arrays, device, False)))
        refs = row.ref(*[a.astype(np.float64) if a.dtype.kind == "f" else a for a in arrays])
        refs = list(refs) if isinstance(refs, tuple) else [refs]
        expected = row.out_dtype(dts)
        expected = list(expected) if isinstance(expected, tuple) else [expected]
        assert len(outs) == len(refs) == len(expected)
        for k, (out, ref, dt) in enumerate(zip(outs, refs, expected)):
            what = f"{row.name} output {k}, inputs {[str(d) for d in dts]}"
            assert out.dtype.name == dt.name, f"{what}: dtype {out.dtype.name}, expected {dt}"
            _assert_close(out.cpu().numpy(), ref, FORWARD_TOL.get(dt), what)


# --------------------------------------------------------------------------- backward

def _f64_inputs(row: OpRow, case: tuple, rng, device) -> list:
    arrays = row.draw(rng, case, (np.dtype(np.float64),) * len(case))
    return _jg_inputs(arrays, device, True)


@pytest.mark.parametrize("row, case", _params(lambda r: r.grad and r.numeric))
def test_backward(row: OpRow, case: tuple, device, rng) -> None:
    check_vjp(lambda *xs: row.fn(jitgrad, *xs), _f64_inputs(row, case, rng, device), rng=rng,
              **row.vjp)


@pytest.mark.parametrize("row, case", _params(lambda r: r.grad and r.gradgrad))
def test_double_backward(row: OpRow, case: tuple, device, rng) -> None:
    gradgradcheck(lambda *xs: row.fn(jitgrad, *xs), _f64_inputs(row, case, rng, device),
                  **row.vjp)


# --------------------------------------------------------------------------- against torch

def _name(t) -> str | None:
    return t.grad_fn.name() if t.grad_fn is not None else None


@pytest.mark.parametrize("row, case", _params())
def test_against_torch(row: OpRow, case: tuple, device, rng) -> None:
    torch = pytest.importorskip("torch")
    try:
        _against_torch(torch, row, case, device, rng)
    except (AssertionError, RuntimeError):
        # torch releases before the one jitgrad follows have bugs fixed since (trace's
        # gradient of a non-square matrix, isclose broadcasting, ...): skipped there
        torch_with_our_texts()
        raise


def _torch_float64_grads(torch, row: OpRow, arrays: list, vs: list) -> list:
    """torch's input gradients with every float input and cotangent in float64."""
    tx = [torch.tensor(a.astype(np.float64) if a.dtype.kind == "f" else a,
                       requires_grad=a.dtype.kind == "f") for a in arrays]
    outs = [o for o in _outputs(row.torch_op()(torch, *tx)) if o.requires_grad]
    loss = sum((o * torch.tensor(v.astype(np.float64))).sum() for o, v in zip(outs, vs))
    loss.backward()
    return [t.grad.numpy() if t.grad is not None else None for t in tx]


def _against_torch(torch, row: OpRow, case: tuple, device, rng) -> None:
    for dts in row.dtype_specs(len(case)):
        arrays = row.draw(rng, case, dts)
        jx = _jg_inputs(arrays, device, row.grad)
        tx = [torch.tensor(a, requires_grad=row.grad and a.dtype.kind == "f") for a in arrays]
        jouts = _outputs(row.fn(jitgrad, *jx))
        touts = _outputs(row.torch_op()(torch, *tx))
        assert len(jouts) == len(touts)
        jloss, tloss = None, None
        vs = []  # the random cotangent of each output that requires grad
        for k, (jo, to) in enumerate(zip(jouts, touts)):
            what = f"{row.name} output {k}, inputs {[str(d) for d in dts]}"
            tdt = np.dtype(str(to.dtype).removeprefix("torch."))
            assert jo.dtype.name == tdt.name, f"{what}: dtype {jo.dtype.name}, torch {tdt}"
            _assert_close(jo.detach().cpu().numpy(), to.detach().numpy(), TORCH_TOL.get(tdt),
                          what)
            assert _name(jo) == _name(to), f"{what}: grad_fn {_name(jo)}, torch {_name(to)}"
            assert jo.requires_grad == to.requires_grad, what
            if to.requires_grad:
                v = rng.standard_normal(to.shape).astype(tdt)
                vs.append(v)
                jl = (jo * jitgrad.tensor(v, device=device)).sum()
                tl = (to * torch.tensor(v)).sum()
                jloss = jl if jloss is None else jloss + jl
                tloss = tl if tloss is None else tloss + tl
        if tloss is None:
            continue
        jloss.backward()
        tloss.backward()
        # A gradient is as precise as the least precise float that it went through.
        f32 = np.dtype(np.float32)
        low = f32 if f32 in dts or any(o.dtype == torch.float32 for o in touts) else None
        for i, (a, b) in enumerate(zip(jx, tx)):
            what = f"{row.name}: gradient of input {i}, inputs {[str(d) for d in dts]}"
            if b.grad is None:
                assert a.grad is None, f"{what}: torch gives none"
                continue
            assert a.grad is not None, f"{what}: missing"
            assert a.grad.dtype.name == str(b.grad.dtype).removeprefix("torch."), what
            tol = TORCH_TOL[low or b.grad.numpy().dtype]
            try:
                _assert_close(a.grad.cpu().numpy(), b.grad.numpy(), tol, what)
            except AssertionError:
                if low is None:
                    raise
                # torch's float32 gradient may be the less precise of the two (a normalization's
                # cancellation, say): then jitgrad's must be as close to torch's float64 one
                exact = _torch_float64_grads(torch, row, arrays, vs)[i]
                _assert_close(a.grad.cpu().numpy(), exact, tol, what + " (torch in float64)")
