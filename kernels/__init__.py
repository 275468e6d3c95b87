"""jitgrad's compute side: Numba kernels, one module per family.

``elementwise`` (scalar bodies in ``scalar``), ``reduce``, ``matmul`` and ``index`` hold the
CPU kernels and their launchers. Kernels compile lazily, on first use of a (body, dtype)
pair, and are cached on disk (``NUMBA_CACHE_DIR`` chooses where).
"""
