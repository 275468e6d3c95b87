"""Primitives of one family (see docs/architecture.md). `__all__` lists the names exported at
jitgrad's top level; `METHODS` maps Tensor method names to functions."""

from __future__ import annotations

__all__: list[str] = []
METHODS: dict = {}
