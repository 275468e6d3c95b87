"""``jitgrad.nn.functional``: torch.nn.functional's names over jitgrad's primitives."""

from __future__ import annotations

from .._ops import relu as _relu
from .._ops import sigmoid, tanh  # noqa: F401
from .._pointwise import elu, gelu, hardtanh, leaky_relu, mish, relu6, silu, softplus  # noqa: F401
from .._reductions import functional_log_softmax as log_softmax  # noqa: F401
from .._reductions import functional_softmax as softmax  # noqa: F401
from .._shape_ops import one_hot, pad  # noqa: F401
from ._conv import *  # noqa: F401,F403
from ._loss import *  # noqa: F401,F403
from ._norm import *  # noqa: F401,F403


def relu(input, inplace: bool = False):
    """max(0, x); with ``inplace``, written into `input` (as ``input.relu_()``)."""
    return input.relu_() if inplace else _relu(input)
