"""The code shown in README.md and docs/ runs, and does what the text says."""

from __future__ import annotations

import contextlib
import io
import pathlib
import re

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _python_blocks(path: pathlib.Path, after: str | None = None) -> list[str]:
    text = path.read_text()
    if after is not None:
        text = text[text.index(after):]
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    return [re.sub(r"^ {3}", "", b, flags=re.M) for b in blocks]  # blocks inside list items


def test_readme_example_prints_what_its_comment_says():
    (code,) = _python_blocks(ROOT / "README.md")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(code, {})
    expected = re.findall(r"# (tensor\(.*\))$", code, flags=re.M)
    assert buf.getvalue().split("\n")[:-1] == expected


def test_adding_a_primitive_as_documented():
    """Run the three snippets of docs/architecture.md's "Adding a primitive" in the modules
    they belong to, then check the new op like any table row."""
    import jitgrad
    from jitgrad import _ops, derivatives
    from jitgrad.autograd import check_vjp, gradgradcheck
    from jitgrad.kernels import scalar

    kernel, forward, rule = _python_blocks(ROOT / "docs" / "architecture.md",
                                           after="## Adding a primitive")
    try:
        exec(kernel, vars(scalar))
        exec(rule, vars(derivatives))
        exec(forward, vars(_ops))
        softsign = _ops.softsign
        x = jitgrad.tensor(np.random.default_rng().standard_normal(7), requires_grad=True)
        y = softsign(x)
        assert y.grad_fn.name() == "SoftsignBackward0"
        xd = x.detach().numpy()
        np.testing.assert_allclose(y.detach().numpy(), xd / (1 + np.abs(xd)), rtol=1e-6)
        check_vjp(softsign, (x.double().detach().requires_grad_(),))
        gradgradcheck(softsign, (x.double().detach().requires_grad_(),))
    finally:
        scalar.UNARY.pop("softsign", None)
        for mod, name in ((scalar, "_softsign"), (_ops, "softsign"),
                          (derivatives, "SOFTSIGN")):
            vars(mod).pop(name, None)
