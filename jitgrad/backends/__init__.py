"""``jitgrad.backends``: torch's backend switches, for scripts that set them.

jitgrad has no cuDNN and no MPS backend, and computes float32 products in float32 whatever
precision it is allowed to use: the switches here read and set as in torch, and none of them
changes what jitgrad computes (each either allows a shortcut jitgrad does not take or tunes a
library it does not use). ``set_float32_matmul_precision`` and
``backends.cuda.matmul.allow_tf32`` are one setting, as in torch.
"""

from __future__ import annotations

import warnings

_PRECISIONS = ("highest", "high", "medium")
_state = {"precision": "highest"}


def set_float32_matmul_precision(precision: str) -> None:
    """Allow float32 products at lower internal precision ('high', 'medium') or not
    ('highest', the default). jitgrad always uses full float32, which every setting allows."""
    if precision not in _PRECISIONS:
        warnings.warn(f"{precision} is not one of 'highest', 'high', or 'medium'; the current "
                      "set_float32_matmul_precision call has no effect.", stacklevel=2)
        return
    _state["precision"] = precision


def get_float32_matmul_precision() -> str:
    return _state["precision"]


from . import cuda, cudnn, mps  # noqa: E402

__all__ = ["cuda", "cudnn", "mps", "set_float32_matmul_precision",
           "get_float32_matmul_precision"]
