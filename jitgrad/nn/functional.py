"""``jitgrad.nn.functional``: torch.nn.functional's names over jitgrad's primitives."""

from __future__ import annotations

from .._ops import relu, sigmoid, tanh  # noqa: F401
from ._conv import *  # noqa: F401,F403
from ._loss import *  # noqa: F401,F403
