"""Layers: one job per file (``module``, ``container``, ``linear``, ``activation``,
``flatten``)."""

from __future__ import annotations

from .activation import (
                         ELU,
                         GELU,
                         LeakyReLU,
                         LogSoftmax,
                         ReLU,
                         Sigmoid,
                         SiLU,
                         Softmax,
                         Softplus,
                         Tanh,
)
from .container import ModuleDict, ModuleList, Sequential
from .flatten import Flatten, Unflatten
from .linear import Identity, Linear
from .module import Module

__all__ = [
                         "ELU",
                         "GELU",
                         "Flatten",
                         "Identity",
                         "LeakyReLU",
                         "Linear",
                         "LogSoftmax",
                         "Module",
                         "ModuleDict",
                         "ModuleList",
                         "ReLU",
                         "Sequential",
                         "SiLU",
                         "Sigmoid",
                         "Softmax",
                         "Softplus",
                         "Tanh",
                         "Unflatten",
]
