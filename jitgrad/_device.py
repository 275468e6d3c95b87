"""Devices. A tensor knows its device; kernels are looked up by the device's type."""

from __future__ import annotations


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


CPU = device("cpu")


def to_device(d) -> device:
    if d is None:
        return CPU
    d = d if isinstance(d, device) else device(d)
    if d.type == "cuda":
        # The GPU side is a separate layer; until it is available, asking for it fails here,
        # before any tensor is made.
        raise RuntimeError(
            "jitgrad: device 'cuda' is not available (the CUDA backend needs numba-cuda and an "
            "NVIDIA GPU)")
    return CPU
