"""Devices. A tensor knows its device; kernels are looked up by the device's type."""

from __future__ import annotations

import threading

import numpy as np


class device:
    """``jitgrad.device("cpu")``, ``device("cuda", 0)`` or ``device("cuda:0")``."""

    __slots__ = ("type", "index")

    def __init__(self, type: str | "device", index: int | None = None):
        if isinstance(type, device):
            type, index = type.type, type.index
        elif isinstance(type, str) and ":" in type:
            type, _, idx = type.partition(":")
            if not idx.isdigit():
                raise RuntimeError(f"Invalid device string: '{type}:{idx}'")
            index = int(idx)
        if type not in ("cpu", "cuda"):
            raise RuntimeError(
                f"Expected one of cpu, cuda device type at start of device string: {type}")
        self.type = type
        self.index = index

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            other = device(other)
        return isinstance(other, device) and (self.type, self.index or 0) == (
            other.type, other.index or 0)

    def __hash__(self) -> int:
        return hash((self.type, self.index or 0))

    def __repr__(self) -> str:
        idx = "" if self.index is None else f", index={self.index}"
        return f"device(type='{self.type}'{idx})"

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __enter__(self) -> "device":
        """``with jitgrad.device("cuda"):``: the default device of factory functions inside
        the block, in this thread (see set_default_device)."""
        new = to_device(self)  # (raises before anything changed for a missing device)
        _defaults.entered.append(_defaults.dev)
        _defaults.dev = new
        return self

    def __exit__(self, *exc) -> bool:
        _defaults.dev = _defaults.entered.pop()
        return False


CPU = device("cpu")
CUDA = device("cuda", 0)


class _Defaults(threading.local):
    """Per thread, as in torch: the device set_default_device chose (None: none chosen, so
    factories make CPU tensors and ``tensor(t)`` keeps t's device), and the defaults that
    ``with device(...)`` blocks replaced."""

    def __init__(self):
        self.dev = None
        self.entered = []


_defaults = _Defaults()


def set_default_device(d) -> None:
    """Make factory functions (zeros, ones, randn, tensor, as_tensor, arange, ..., and so the
    parameters of new modules) create tensors on device `d` when no device is named, in this
    thread; None goes back to no default (the CPU). Functions that follow an input
    (``zeros_like``, ``rand_like``, ``x.new_zeros``) keep following it, and ``from_numpy``
    shares the array's memory on the CPU, as in torch."""
    _defaults.dev = None if d is None else to_device(d)


def get_default_device() -> device:
    return _defaults.dev or CPU


def default_or(d) -> device:
    """The device a factory function's `device` argument names: the default one for None."""
    if d is None:
        return _defaults.dev or CPU
    return to_device(d)


def chosen_default():
    """The device set_default_device chose, or None when none was chosen."""
    return _defaults.dev


def to_device(d) -> device:
    """The device `d` names (None: the CPU). Naming CUDA loads the GPU backend, or raises the
    one error that says why it is not available."""
    if d is None:
        return CPU
    if d.__class__ is not device:
        d = device(d)
    if d.type == "cuda":
        from . import cuda

        cuda._backend()
        if d.index not in (None, 0):
            raise RuntimeError(f"CUDA error: invalid device ordinal (device {d.index}; jitgrad "
                               f"uses one GPU, cuda:0)")
        return CUDA
    return CPU


def of(data) -> device:
    """The device a storage array lives on."""
    return CPU if data.__class__ is np.ndarray else CUDA


def host(data) -> np.ndarray:
    """The values of a storage array on the host: the array itself when it is a numpy array,
    else a copy (which waits for the kernels before it). Index and target validation, and
    printing, read device data this way."""
    return data if data.__class__ is np.ndarray else data.get()


def move(data, dev: device):
    """`data` (a storage array) copied to device `dev`; itself when it is already there."""
    if of(data) == dev:
        return data
    if dev.type == "cuda":
        from . import cuda

        return cuda._backend().from_host(data)
    return data.get()
