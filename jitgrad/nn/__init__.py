"""Neural-network building blocks. ``jitgrad.nn.functional`` holds the functional ops."""

from . import functional  # noqa: F401
