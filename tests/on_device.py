"""jitgrad with its creation functions defaulting to a device (the suite's, by default), so a
test written once runs on every device."""

from __future__ import annotations

import pytest

import jitgrad
from conftest import DEVICE

CREATE = ("tensor", "zeros", "ones", "full", "empty", "arange", "randn", "rand", "eye",
          "linspace", "randint", "as_tensor")


class OnDevice:
    """``J.tensor(...)`` is ``jitgrad.tensor(..., device=...)``; any other name is jitgrad's."""

    def __init__(self, device: str = DEVICE):
        self._device = device

    def __getattr__(self, name):
        fn = getattr(jitgrad, name)
        if name in CREATE:
            return lambda *a, **k: fn(*a, **{"device": self._device, **k})
        return fn


J = OnDevice()

# The torch release whose texts (reprs, error messages) jitgrad follows word for word.
TORCH_TEXTS = (2, 13)


def torch_with_our_texts():
    """torch, for a test that compares its exact words, random streams or fixed bugs; skips
    the test where torch is missing or older than the release jitgrad follows (earlier
    releases word some things otherwise, draw some initialisations otherwise, and have bugs
    fixed since)."""
    torch = pytest.importorskip("torch")
    if tuple(int(p) for p in torch.__version__.split("+")[0].split(".")[:2]) < TORCH_TEXTS:
        pytest.skip(f"torch {torch.__version__} words this differently from the "
                    f"{'.'.join(map(str, TORCH_TEXTS))} release jitgrad follows")
    return torch


def error_table_tests(cases: list) -> tuple:
    """The two tests of a table of bad calls, (name, fn(module), exception, text) each: the
    call raises `exception` with `text` in its message on jitgrad (on the suite's device) and,
    where torch is installed, on torch too. A test module binds them to its own names."""
    ids = [c[0] for c in cases]

    def check(module, case) -> None:
        _, fn, exc, text = case
        with pytest.raises(exc) as info:
            fn(module)
        assert text in str(info.value)

    @pytest.mark.parametrize("case", cases, ids=ids)
    def test_errors(case) -> None:
        check(J, case)

    @pytest.mark.parametrize("case", cases, ids=ids)
    def test_errors_as_torch(case) -> None:
        check(pytest.importorskip("torch"), case)

    return test_errors, test_errors_as_torch
