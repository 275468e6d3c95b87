"""Functional nn primitives of one family, re-exported by `jitgrad.nn.functional`."""

from __future__ import annotations

__all__: list[str] = []
