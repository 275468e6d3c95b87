"""Layers: one job per file (``module``, ``container``, ``linear``, ``activation``,
``flatten``, ``conv``, ``pooling``, ``dropout``, ``sparse``, ``normalization``, ``batchnorm``,
``loss``)."""

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
from .batchnorm import BatchNorm1d, BatchNorm2d
from .container import ModuleDict, ModuleList, Sequential
from .conv import Conv1d, Conv2d
from .dropout import Dropout
from .flatten import Flatten, Unflatten
from .linear import Identity, Linear
from .loss import (
                   BCELoss,
                   BCEWithLogitsLoss,
                   CrossEntropyLoss,
                   L1Loss,
                   MSELoss,
                   NLLLoss,
                   SmoothL1Loss,
)
from .module import Module
from .normalization import LayerNorm
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from .sparse import Embedding

__all__ = [
                         "ELU",
                         "GELU",
                         "AdaptiveAvgPool2d",
                         "AvgPool2d",
                         "BCELoss",
                         "BCEWithLogitsLoss",
                         "BatchNorm1d",
                         "BatchNorm2d",
                         "Conv1d",
                         "Conv2d",
                         "CrossEntropyLoss",
                         "Dropout",
                         "Embedding",
                         "Flatten",
                         "Identity",
                         "L1Loss",
                         "LayerNorm",
                         "LeakyReLU",
                         "Linear",
                         "LogSoftmax",
                         "MSELoss",
                         "MaxPool2d",
                         "Module",
                         "ModuleDict",
                         "ModuleList",
                         "NLLLoss",
                         "ReLU",
                         "Sequential",
                         "SiLU",
                         "Sigmoid",
                         "SmoothL1Loss",
                         "Softmax",
                         "Softplus",
                         "Tanh",
                         "Unflatten",
]
