"""``jitgrad.utils``: ``data`` (datasets, samplers, DataLoader) and ``hooks``."""

from __future__ import annotations

from . import data, hooks  # noqa: F401
