"""``jitgrad.utils``: ``data`` (datasets, samplers, DataLoader), ``hooks`` and
``deterministic``."""

from __future__ import annotations

from . import data, deterministic, hooks  # noqa: F401
