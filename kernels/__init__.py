"""jitgrad's compute side: Numba kernels, one module per family.

Elementwise bodies live in ``scalar`` (with vectorizable float32 transcendentals in
``fastmath``) and run through the loop factories of ``elementwise`` and ``pointwise``; the
other families are ``reduce``, ``scan``, ``softmax``, ``matmul``, ``index``, ``movement``,
``conv``, ``pool``, ``embedding``, ``norm``, ``loss`` and ``optim``. ``cpu`` gathers the
launchers the op layer calls for numpy storage; the ``cuda`` subpackage holds the same
launchers for CUDA storage (imported only when a CUDA tensor is first made). Kernels compile lazily, on first use of a
(body, dtype, variant), and are cached on disk (``NUMBA_CACHE_DIR`` chooses where).
"""

# Process-wide switches the kernels read (set through jitgrad's public API, never here):
# "deterministic": accumulating CUDA kernels add in the sources' order instead of with
# atomics (``jitgrad.use_deterministic_algorithms``).
settings: dict = {"deterministic": False, "warn_only": False}
