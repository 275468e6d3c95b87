"""What the machine is, which library versions ran, and how many threads each really used."""

from __future__ import annotations

import ctypes
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

# Environment variables that fix thread counts; set in each worker's environment before
# anything loads a BLAS or an OpenMP runtime (their pools are sized once, at load time).
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
              "NUMBA_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
# Recorded because they change what BLAS runs (and so every matmul figure).
RECORDED_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "NUMBA_CACHE_DIR", "NUMBA_OPT",
                "MKL_DEBUG_CPU_TYPE", "KMP_AFFINITY", "OMP_PROC_BIND")


def thread_env(threads: int) -> dict[str, str]:
    return {k: str(threads) for k in THREAD_ENV}


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _mem_total() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _git(root: Path) -> dict[str, Any]:
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                              check=False,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, capture_output=True, text=True, check=False,
                               timeout=10).stdout.strip()
        return {"commit": head or None, "dirty": bool(dirty)}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def machine_info() -> dict[str, Any]:
    """The host, without importing any numeric library (cheap; runs in the main process)."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = None
    return {
        "cpu": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": affinity,
        "memory_bytes": _mem_total(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "hostname": platform.node(),
        "env": {k: os.environ[k] for k in RECORDED_ENV if k in os.environ},
        "git": _git(Path(__file__).resolve().parents[1]),
    }


def _openblas() -> dict[str, Any] | None:
    """numpy's OpenBLAS: its build string (core type it runs) and its thread count."""
    try:
        with open("/proc/self/maps") as f:
            paths = {ln.split()[-1] for ln in f if "openblas" in ln.lower() and "/" in ln}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in (("scipy_openblas_", "64_"), ("scipy_openblas_", ""),
                               ("openblas_", "64_"), ("openblas_", "")):
            get_config = getattr(lib, f"{prefix}get_config{suffix}", None)
            get_threads = getattr(lib, f"{prefix}get_num_threads{suffix}", None)
            if get_config is None or get_threads is None:
                continue
            get_config.restype = ctypes.c_char_p
            return {"library": os.path.basename(path),
                    "config": get_config().decode(errors="replace"),
                    "threads": int(get_threads())}
    return None


def versions_and_threads() -> dict[str, Any]:
    """Versions of everything loaded in this worker, and the thread counts in force."""
    import numpy

    out: dict[str, Any] = {"versions": {"python": platform.python_version(),
                                        "numpy": numpy.__version__}, "threads": {}}
    v, t = out["versions"], out["threads"]
    for mod in ("numba", "llvmlite", "torch", "jitgrad", "matplotlib"):
        m = sys.modules.get(mod)
        if m is None and mod in ("numba", "llvmlite", "jitgrad"):
            try:
                m = __import__(mod)
            except ImportError:
                m = None
        if m is not None:
            v[mod] = getattr(m, "__version__", "?")
    if "numba" in sys.modules:
        t["numba"] = sys.modules["numba"].get_num_threads()
        try:  # the layer in use, known once a parallel kernel has run
            t["numba_layer"] = sys.modules["numba"].threading_layer()
        except ValueError:
            t["numba_layer"] = None
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        t["torch"] = torch.get_num_threads()
        v["torch_blas"] = "mkl" if torch.backends.mkl.is_available() else "other"
        if torch.cuda.is_available():
            v["cuda_device"] = torch.cuda.get_device_name(0)
    blas = _openblas()
    if blas:
        t["openblas"] = blas["threads"]
        v["openblas"] = blas["config"]
    t["env"] = {k: os.environ.get(k) for k in THREAD_ENV}
    return out
