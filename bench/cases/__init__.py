"""The benchmark cases. Each module registers its cases on import; the registry's order
(this import order) is the order of the tables.

A case is a ``bench.harness.Case``: sizes for full and quick runs, ``inputs`` made once in
numpy, ``numpy`` (hand-written forward and backward) and ``torchlike`` (one source for jitgrad
and PyTorch on every device), the modes it times and its targets.
"""

# Imported in table order, not alphabetically.
from . import overhead, pointwise, matmul, nn, digits, coldstart  # noqa: F401, I001
