"""The CPU backend: the launchers the op layer calls for tensors whose storage is a numpy
array. A GPU backend exposes the same names for its own storage type."""

from __future__ import annotations

import numpy as np

from .elementwise import binary, fill, ternary, unary  # noqa: F401
from .index import gather_dim, scatter_add, scatter_dim  # noqa: F401
from .matmul import addmm, matmul  # noqa: F401
from .reduce import as_3d, extreme, sum_  # noqa: F401

storage = np.ndarray


def empty(shape, dtype) -> np.ndarray:
    return np.empty(shape, dtype=dtype)


def zeros(shape, dtype) -> np.ndarray:
    return np.zeros(shape, dtype=dtype)


def full(shape, value, dtype) -> np.ndarray:
    return np.full(shape, value, dtype=dtype)


def cast(a: np.ndarray, dtype) -> np.ndarray:
    """A copy of `a` converted to `dtype`."""
    return a.astype(dtype)


def copy(a: np.ndarray) -> np.ndarray:
    """A contiguous copy of `a`. One value broadcast over a large shape (every stride 0, as
    an expanded gradient becoming a leaf's .grad) is a fill."""
    if a.size >= 4096 and not any(a.strides):
        return fill(np.empty(a.shape, a.dtype), a[(0,) * a.ndim])
    return np.array(a, order="C", copy=True)

# ---- kernel families added after the core: one import line each ----
from .movement import (cat, diagonal, diagonal_backward, flip, gather, index_add,  # noqa: F401,E402
                       index_fill, index_range, index_select, one_hot, pad, put_add, repeat,
                       roll, scatter, stack, take, tri)
from .reduce import (amax, any_all, extreme_backward, from_3d, moments, prod,  # noqa: F401,E402
                     prod_backward, var_backward, vector_norm)
from .scan import cumprod, cumprod_backward, cumsum, linrec, shift  # noqa: F401,E402
from .sort import argsort  # noqa: F401,E402
from .softmax import logsumexp, logsumexp_backward, softmax, softmax_backward  # noqa: F401,E402
from .loss import *  # noqa: F401,F403,E402
from .norm import *  # noqa: F401,F403,E402
from .conv import *  # noqa: F401,F403,E402
from .pool import *  # noqa: F401,F403,E402
from .embedding import *  # noqa: F401,F403,E402
from .optim import (adagrad_step, adam_step, optimizer_steps, rmsprop_step,  # noqa: F401,E402
                    sgd_step)
from .pointwise import binary_p, ternary_p, unary_p  # noqa: F401,E402
