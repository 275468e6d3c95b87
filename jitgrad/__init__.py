"""jitgrad: define-by-run automatic differentiation with PyTorch's semantics and
Numba-compiled kernels. ``import jitgrad as torch`` runs PyTorch-style code."""

from __future__ import annotations

from . import _methods
from ._creation import (Generator, arange, as_tensor, empty, empty_like, eye, from_numpy,
                        full, full_like, get_rng_state, initial_seed, linspace, manual_seed,
                        ones, ones_like, rand, rand_like, randint, randint_like, randn,
                        randn_like, randperm, seed, set_rng_state, tensor, zeros, zeros_like)
from ._device import device, get_default_device, set_default_device
from ._dtype import (bool_ as bool, dtype, float32, float64, get_default_dtype, int8, int16,
                     int32, int64, promote_types, set_default_dtype, uint8)
from ._format import set_printoptions
from ._methods import bmm, dot, mm, mv
from ._ops import (abs, add, bitwise_xor, clamp, div, eq, exp, ge, gt, le, log, logical_and,
                   logical_not, logical_or, logical_xor, lt, matmul, max, maximum, mean, min,
                   minimum, mul, ne, neg, positive, pow, reciprocal, relu, sigmoid, sign, sqrt,
                   sub, sum, tanh, where)
from ._ops import broadcast_shapes as _broadcast2
from ._ops import clone
from ._views import (expand, flatten, permute, reshape, squeeze, t, transpose, unsqueeze)
from ._views import transpose as swapdims
from . import autograd
from ._pointwise import *  # noqa: F401,F403
from ._composite import *  # noqa: F401,F403
from ._sorting import *  # noqa: F401,F403
from ._einsum import *  # noqa: F401,F403
from ._extras import *  # noqa: F401,F403
from ._reductions import *  # noqa: F401,F403
from ._shape_ops import *  # noqa: F401,F403
from . import nn  # noqa: E402
from . import backends, cuda, optim, utils  # noqa: E402  (cuda: lazy, loads numba-cuda on
# first use; backends never loads it)
from .backends import get_float32_matmul_precision, set_float32_matmul_precision  # noqa: E402,F401
from ._determinism import *  # noqa: F401,F403,E402
from .serialization import load, save  # noqa: E402
from .autograd import (enable_grad, inference_mode, is_grad_enabled, no_grad,
                       set_grad_enabled)
from .tensor import Size, Tensor

_methods.install()

__version__ = "0.1.0"

float = float32  # noqa: A001 - torch's aliases
double = float64
long = int64
int = int32  # noqa: A001
short = int16
clip = clamp
negative = neg
subtract = sub
multiply = mul
divide = div
true_divide = div
swapaxes = transpose


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


def numel(t: Tensor) -> int:
    return t.numel()


def is_floating_point(t: Tensor) -> bool:
    return t.is_floating_point()


def result_type(a, b) -> dtype:
    from ._dtype import result_type as _rt

    return _rt(a, b)


def broadcast_shapes(*shapes) -> Size:
    out: tuple = ()
    for s in shapes:
        out = _broadcast2(out, tuple(s) if not isinstance(s, (builtins_int,)) else (s,))
    return Size(out)


def detach(t: Tensor) -> Tensor:
    return t.detach()


import builtins as _builtins  # noqa: E402

builtins_int = _builtins.int

from . import _ops as _ops_module  # noqa: E402
from .autograd import graph as _graph  # noqa: E402

_graph.Tensor = Tensor
_graph._ops = _ops_module
_graph._FLAT_ADD = _ops_module._FLAT_ADD
_graph._SMALL = _ops_module._SMALL
