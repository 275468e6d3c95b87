"""Numerical gradient checks: a VJP against float64 central differences.

``check_vjp`` draws a random direction ``u`` in input space and a random cotangent ``v`` in
output space and compares two numbers that must agree:

* ``<v, J u>`` by central differences, ``(<v, f(x + eps u)> - <v, f(x - eps u)>) / (2 eps)``;
* ``<J^T v, u>`` from jitgrad's backward.

One random direction tests every entry of the Jacobian at once with one pair of function
evaluations; repeating it a few times makes a false pass vanishingly unlikely.
"""

from __future__ import annotations

import numpy as np


def _flat_outputs(out) -> list:
    from ..tensor import Tensor

    if isinstance(out, Tensor):
        return [out]
    return [o for o in out if isinstance(o, Tensor)]


def check_vjp(fn, inputs, *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-4,
              trials: int = 2, rng: np.random.Generator | None = None) -> None:
    """Assert that jitgrad's gradient of `fn` at `inputs` (float64 tensors, those with
    requires_grad are differentiated) matches central differences. Raises AssertionError
    with both numbers on a mismatch."""
    from .. import _creation
    from . import grad as autograd_grad

    rng = rng if rng is not None else np.random.default_rng()
    diff = [i for i, x in enumerate(inputs) if getattr(x, "requires_grad", False)]
    for x in (inputs[i] for i in diff):
        if x.dtype.name != "float64":
            raise ValueError("check_vjp needs float64 inputs for its differences to mean "
                             f"something, got {x.dtype}")
    for _ in range(trials):
        outs = _flat_outputs(fn(*inputs))
        vs = [_creation.tensor(rng.standard_normal(o.shape), device=o.device) for o in outs]
        used = [(o, v) for o, v in zip(outs, vs) if o.requires_grad]
        if used:
            grads = autograd_grad([o for o, _ in used], [inputs[i] for i in diff],
                                  grad_outputs=[v for _, v in used], allow_unused=True)
        else:
            grads = [None] * len(diff)
        us = [rng.standard_normal(inputs[i].shape) for i in diff]
        analytic = sum(float(np.sum(g.detach().cpu().numpy() * u))
                       for g, u in zip(grads, us) if g is not None)

        def shifted(sign: float) -> float:
            args = list(inputs)
            for i, u in zip(diff, us):
                # The shifted inputs require grad too: `fn` may differentiate inside.
                x = inputs[i]
                args[i] = _creation.tensor(  # asarray: 0-d arithmetic gives a scalar
                    np.asarray(x.detach().cpu().numpy() + sign * eps * u),
                    device=x.device).requires_grad_()
            res = _flat_outputs(fn(*args))
            return sum(float(np.sum(r.detach().cpu().numpy() * v.cpu().numpy()))
                       for r, v in zip(res, vs))

        numeric = (shifted(1.0) - shifted(-1.0)) / (2 * eps)
        if not abs(analytic - numeric) <= atol + rtol * abs(numeric):
            raise AssertionError(
                f"VJP mismatch: backward gives <J^T v, u> = {analytic!r}, central differences "
                f"give <v, J u> = {numeric!r} (eps={eps})")


def gradcheck(fn, inputs, *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True, **_) -> bool:
    """torch.autograd.gradcheck's interface over ``check_vjp``."""
    if not isinstance(inputs, (tuple, list)):
        inputs = (inputs,)
    try:
        check_vjp(fn, tuple(inputs), eps=eps, atol=atol, rtol=rtol, trials=3)
    except AssertionError:
        if raise_exception:
            raise
        return False
    return True


def gradgradcheck(fn, inputs, *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
                  **_) -> bool:
    """Check second derivatives: the VJP of ``x -> grad(fn(x), x, v)`` by differences."""
    from .. import _creation
    from . import grad as autograd_grad

    if not isinstance(inputs, (tuple, list)):
        inputs = (inputs,)
    rng = np.random.default_rng()
    outs = _flat_outputs(fn(*inputs))
    vs = [_creation.tensor(rng.standard_normal(o.shape), device=o.device) for o in outs]
    diff = [i for i, x in enumerate(inputs) if x.requires_grad]

    def first(*args):
        # Only outputs that require grad are differentiated (not max(dim)'s indices).
        used = [(o, v) for o, v in zip(_flat_outputs(fn(*args)), vs) if o.requires_grad]
        return autograd_grad([o for o, _ in used], [args[i] for i in diff],
                             grad_outputs=[v for _, v in used], create_graph=True,
                             allow_unused=True)

    check_vjp(lambda *a: tuple(g for g in first(*a) if g is not None), tuple(inputs),
              eps=eps, atol=atol, rtol=rtol, trials=2, rng=rng)
    return True
