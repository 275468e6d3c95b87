"""Deterministic mode: ``use_deterministic_algorithms`` and its debug-mode twin.

jitgrad's CPU kernels, and its CUDA kernels other than the accumulating ones, give the same
bits on every run. The CUDA kernels that accumulate into places several sources may share
(``scatter_add_``, ``index_add_``, ``index_put_`` with ``accumulate=True``, the backward of
indexing, ``take`` and ``embedding``) add with atomics, in whatever order threads arrive;
``scatter_`` with repeated indices keeps whichever write lands last. In deterministic mode
they sort the sources by destination (stably) instead, and each destination takes its
sources in their order: the CPU's results, bit for bit. Every operation has such a path, so
none raises and ``warn_only`` changes nothing. In that mode new uninitialised memory
(``empty`` and its relatives) is filled with NaN (the dtype's largest value for integers,
True for bool), as torch does, unless
``jitgrad.utils.deterministic.fill_uninitialized_memory`` is False.
"""

from __future__ import annotations

from .kernels import settings

__all__ = ["are_deterministic_algorithms_enabled", "get_deterministic_debug_mode",
           "is_deterministic_algorithms_warn_only_enabled", "set_deterministic_debug_mode",
           "use_deterministic_algorithms"]


def use_deterministic_algorithms(mode: bool, *, warn_only: bool = False) -> None:
    """Whether operations must give the same result on every run (see the module)."""
    if not isinstance(mode, bool):
        raise TypeError("_set_deterministic_algorithms(): argument 'mode' (position 1) must "
                        f"be bool, not {type(mode).__name__}")
    if not isinstance(warn_only, bool):
        raise TypeError("_set_deterministic_algorithms(): argument 'warn_only' must be bool, "
                        f"not {type(warn_only).__name__}")
    settings["deterministic"] = mode
    settings["warn_only"] = warn_only


def are_deterministic_algorithms_enabled() -> bool:
    return settings["deterministic"]


def is_deterministic_algorithms_warn_only_enabled() -> bool:
    return settings["warn_only"]


_MODES = ("default", "warn", "error")


def set_deterministic_debug_mode(debug_mode) -> None:
    """0 / "default": off; 1 / "warn": on, warn only; 2 / "error": on."""
    if isinstance(debug_mode, str):
        if debug_mode not in _MODES:
            raise RuntimeError("invalid value of debug_mode, expected one of `default`, "
                               f"`warn`, `error`, but got {debug_mode}")
        debug_mode = _MODES.index(debug_mode)
    elif isinstance(debug_mode, int):
        if debug_mode not in (0, 1, 2):
            raise RuntimeError(
                f"invalid value of debug_mode, expected 0, 1, or 2, but got {debug_mode}")
    else:
        raise TypeError(f"debug_mode must be str or int, but got {type(debug_mode)}")
    use_deterministic_algorithms(debug_mode != 0, warn_only=debug_mode == 1)


def get_deterministic_debug_mode() -> int:
    if not settings["deterministic"]:
        return 0
    return 1 if settings["warn_only"] else 2
