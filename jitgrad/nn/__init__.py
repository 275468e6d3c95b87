"""Neural-network building blocks. ``jitgrad.nn.functional`` holds the functional ops."""

from . import functional  # noqa: F401
from . import init, utils  # noqa: F401
from .modules import *
from .parameter import Buffer, Parameter  # noqa: F401
