"""``jitgrad.cuda``: the GPU device, through numba-cuda.

Nothing here imports numba-cuda until it is needed: the first CUDA tensor, or a call such as
``is_available()``. Without numba-cuda, or without a GPU (and without the simulator that
``NUMBA_ENABLE_CUDASIM=1`` selects), asking for the device raises one RuntimeError that says
why.
"""

from __future__ import annotations

_state: dict = {}


def _backend():
    """The CUDA kernel namespace, imported and registered with the op layer on first use."""
    K = _state.get("backend")
    if K is not None:
        return K
    err = _state.get("error")
    if err is None:
        try:
            from ..kernels import cuda as K
        except ImportError as e:
            err = (f"jitgrad: device 'cuda' is not available: numba-cuda is not installed "
                   f"({e}); install jitgrad[cuda]")
        else:
            if not K.runtime.available():
                err = ("jitgrad: device 'cuda' is not available: no CUDA GPU or driver was "
                       "found (NUMBA_ENABLE_CUDASIM=1 runs the CUDA kernels in numba-cuda's "
                       "simulator)")
        if err is None:
            from .. import _ops

            _ops._BACKENDS[K.storage] = K
            _state["backend"] = K
            return K
        _state["error"] = err
    raise RuntimeError(err)


def is_available() -> bool:
    try:
        _backend()
    except RuntimeError:
        return False
    return True


def device_count() -> int:
    return _backend().runtime.device_count() if is_available() else 0


def current_device() -> int:
    _backend()
    return 0


def get_device_name(device=None) -> str:
    K = _backend()
    if K.runtime.SIM:
        return "numba-cuda simulator"
    name = K.runtime.cuda.get_current_device().name
    return name.decode() if isinstance(name, bytes) else str(name)


def synchronize(device=None) -> None:
    """Wait until every kernel launched so far has finished."""
    _backend().runtime.synchronize()


def memory_allocated(device=None) -> int:
    """Bytes of device memory held by tensors (in allocator blocks)."""
    return _backend().runtime.ALLOCATOR.allocated if "backend" in _state else 0


def max_memory_allocated(device=None) -> int:
    return _backend().runtime.ALLOCATOR.peak if "backend" in _state else 0


def reset_peak_memory_stats(device=None) -> None:
    A = _backend().runtime.ALLOCATOR
    A.peak = A.allocated


def memory_reserved(device=None) -> int:
    """Bytes held from the driver: in use plus cached by the allocator."""
    return _backend().runtime.ALLOCATOR.reserved if "backend" in _state else 0


def empty_cache() -> None:
    """Hand the allocator's cached, unused blocks back to the driver."""
    if "backend" in _state:
        _state["backend"].runtime.ALLOCATOR.empty_cache()


def manual_seed(seed: int) -> None:
    """CUDA tensors draw from the CPU generator (their numbers are then copied over)."""


def manual_seed_all(seed: int) -> None:
    """CUDA tensors draw from the CPU generator (their numbers are then copied over)."""
