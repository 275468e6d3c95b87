"""jitgrad with its creation functions defaulting to a device (the suite's, by default), so a
test written once runs on every device."""

from __future__ import annotations

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
