"""``jitgrad.backends.cuda``: whether the GPU backend is installed, and the float32 product
switches (jitgrad computes float32 products in float32 whatever they allow)."""

from __future__ import annotations

import importlib.util

from . import _state


def is_built() -> bool:
    """Whether jitgrad's GPU backend (numba-cuda) is installed; it is not imported here."""
    try:
        return importlib.util.find_spec("numba_cuda") is not None
    except (ImportError, ValueError):
        return False


class _Matmul:
    """``matmul.allow_tf32`` is ``set_float32_matmul_precision`` by another name: True is
    'high', False 'highest'."""

    allow_fp16_reduced_precision_reduction = True
    allow_bf16_reduced_precision_reduction = True

    def __setattr__(self, name: str, value) -> None:
        if not hasattr(type(self), name):  # a misspelt switch would otherwise do nothing
            raise AttributeError(f"Unknown attribute {name}")
        object.__setattr__(self, name, value)

    def __getattr__(self, name: str):
        raise AttributeError(f"Unknown attribute {name}")

    @property
    def allow_tf32(self) -> bool:
        return _state["precision"] != "highest"

    @allow_tf32.setter
    def allow_tf32(self, value: bool) -> None:
        _state["precision"] = "high" if value else "highest"


matmul = _Matmul()
