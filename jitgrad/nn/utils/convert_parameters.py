"""``parameters_to_vector`` and ``vector_to_parameters``."""

from __future__ import annotations

from ...tensor import Tensor

__all__ = ["parameters_to_vector", "vector_to_parameters"]


def parameters_to_vector(parameters) -> Tensor:
    """All parameters flattened and concatenated into one vector (differentiable)."""
    import jitgrad

    return jitgrad.cat([p.reshape(-1) for p in parameters])


def vector_to_parameters(vec: Tensor, parameters) -> None:
    """Make slices of `vec` (views, as in torch) the parameters' data."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected torch.Tensor, but got: {type(vec).__name__}")
    parameters = list(parameters)
    total = sum(p.numel() for p in parameters)
    if vec.ndim != 1 or vec.numel() != total:
        raise RuntimeError(f"vector_to_parameters: expected a 1-D vector of {total} elements, "
                           f"got shape {list(vec.shape)}")
    pointer = 0
    for param in parameters:
        n = param.numel()
        param.data = Tensor._wrap(
            vec._data[pointer:pointer + n].reshape(param._data.shape).astype(
                param._data.dtype, copy=False))
        pointer += n
