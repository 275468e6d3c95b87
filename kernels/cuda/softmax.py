"""CUDA kernels of the softmax family (same launcher names and signatures as ``kernels/softmax.py``).
Launchers listed in ``__all__`` replace the host-routed CPU kernel of the same name."""

from __future__ import annotations

__all__: list = []
