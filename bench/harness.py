"""The benchmark machinery: cases, engines, interleaved timing, statistics, ratios, targets.

A *case* (``Case``) makes its inputs once, in numpy, and builds one *program* per engine: a
dict from mode name ("fwd", "fwd+bwd", "no_grad", "step", ...) to a callable that runs it
once and returns what it computed (forward values, gradients). Engines that speak torch's API
(jitgrad and PyTorch, on each device) share one implementation, ``Case.torchlike``: the same
source runs on both, as in MLX's comparative benchmarks. ``Case.numpy`` is the hand-written
forward and backward: the floor for an engine that calls numpy once per op.

``run_case`` then, for one case in one process:

1. builds each engine's program (an engine that lacks what the case needs is *skipped*);
2. times each mode's first call apart (compilation, caches) and keeps its outputs;
3. checks that every engine's outputs agree with the reference engine's (numpy when present):
   an engine that disagrees is marked ``mismatch`` and not timed;
4. measures the peak extra resident memory of one call of the heaviest mode per engine;
5. warms up, sizes ``number`` (calls per sample) so that a sample is long enough to time, and
   takes samples interleaved across engines (A B C A B C ...), so that machine drift lands on
   all engines alike and each sample of one engine has a partner sample of each other.

Ratios and targets are computed afterwards from the JSON-able result (``compute_ratios``,
``evaluate_targets``), pair by pair: ratio_i = t_engine[i] / t_reference[i].
"""

from __future__ import annotations

import fnmatch
import gc
import importlib
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# --------------------------------------------------------------------------- small types


class Skip(Exception):
    """Raised by a case when an engine lacks what it needs: the engine is skipped, not failed."""


class Unavailable(Exception):
    """Raised by ``Engine.load`` when the engine cannot run on this machine."""


@dataclass
class Measured:
    """A result that carries its own time (a case that runs a subprocess times it there)."""

    seconds: float
    value: Any = None
    peak_rss: int | None = None


@dataclass(frozen=True)
class Target:
    """A performance target printed beside the figures and marked met or missed.

    kind "ratio": jitgrad's time over PyTorch's on the same device, pair by pair in one run,
    at most ``limit``. kind "seconds": a jitgrad figure (``stat`` "median" or "first") at most
    ``limit`` seconds.
    """

    mode: str
    limit: float
    kind: str = "ratio"
    stat: str = "median"
    label: str = ""

    def describe(self) -> str:
        if self.label:
            return self.label
        if self.kind == "ratio":
            return f"<= {self.limit:g}x torch"
        return f"{self.stat} < {self.limit:g} s"


@dataclass(frozen=True)
class Settings:
    """How hard to measure: ``for_full()`` for a real run, ``for_quick()`` for CI."""

    quick: bool
    warmup: int
    repeats: int  # rounds per mode at most (one round = one sample of each engine)
    min_repeats: int
    budget: float  # seconds per mode after which sampling stops (once min_repeats is reached)
    min_sample: float  # seconds: `number` is chosen so one sample lasts at least this
    seed: int = 0

    @staticmethod
    def for_full(repeats: int | None = None, budget_scale: float = 1.0) -> Settings:
        return Settings(quick=False, warmup=2, repeats=repeats or 25, min_repeats=5,
                        budget=6.0 * budget_scale, min_sample=0.005)

    @staticmethod
    def for_quick(repeats: int | None = None) -> Settings:
        return Settings(quick=True, warmup=0, repeats=repeats or 3, min_repeats=2,
                        budget=0.5, min_sample=0.0005)


# --------------------------------------------------------------------------- statistics


def summarize(samples: Sequence[float]) -> dict[str, float]:
    """Median, quartiles (linear interpolation), min, max, mean and count."""
    a = np.asarray(samples, dtype=np.float64)
    if a.size == 0:
        raise ValueError("no samples")
    q1, med, q3 = np.percentile(a, [25, 50, 75])
    return {"median": float(med), "q1": float(q1), "q3": float(q3), "min": float(a.min()),
            "max": float(a.max()), "mean": float(a.mean()), "n": int(a.size)}


def relative_spread(s: dict[str, float]) -> float:
    """Interquartile range over the median: the noise figure used by --compare."""
    return (s["q3"] - s["q1"]) / s["median"] if s["median"] > 0 else math.inf


def pairwise_ratios(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
    """Statistics of a[i] / b[i]: samples taken in the same round are paired, so drift that
    slows both cancels out of each ratio."""
    n = min(len(a), len(b))
    if n == 0:
        raise ValueError("no paired samples")
    return summarize([a[i] / b[i] for i in range(n)])


def interleave(samplers: Sequence[Callable[[], float]], repeats: int, min_repeats: int = 1,
               budget: float = math.inf, clock: Callable[[], float] = time.perf_counter,
               on_round: Callable[[int], None] | None = None) -> list[list[float]]:
    """Run rounds A B C, A B C, ...; each sampler returns one sample. Stops after
    ``repeats`` rounds, or earlier once ``budget`` seconds have passed and ``min_repeats``
    rounds are done. Every engine gets the same number of samples."""
    samples: list[list[float]] = [[] for _ in samplers]
    start = clock()
    for r in range(repeats):
        for k, sample in enumerate(samplers):
            samples[k].append(sample())
        if on_round is not None:
            on_round(r + 1)
        elapsed = clock() - start
        if r + 1 >= min_repeats and elapsed > budget:
            break
    return samples


# --------------------------------------------------------------------------- memory


def _proc_status_kb(field_name: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


_peak_before_resets = 0  # VmHWM seen before the last reset, in KiB


def _reset_peak_rss() -> bool:
    """Reset the kernel's resident high-water mark (Linux >= 4.0: write 5 to clear_refs),
    remembering the old one for ``max_rss``."""
    global _peak_before_resets
    _peak_before_resets = max(_peak_before_resets, _proc_status_kb("VmHWM") or 0)
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


_libc: Any = None


def _malloc_trim() -> None:
    """Hand the C heap's free pages back to the kernel, so that memory freed earlier (by
    another engine, or by this one's previous call) is counted again when it is reused."""
    global _libc
    try:
        if _libc is None:
            import ctypes

            _libc = ctypes.CDLL("libc.so.6")
        _libc.malloc_trim(0)
    except (OSError, AttributeError):
        _libc = False


def peak_extra_rss(fn: Callable[[], Any]) -> tuple[int | None, Any]:
    """Bytes by which one call of ``fn`` raised the resident set above where it started
    (what stays resident between calls, such as inputs and gradients, is not counted).

    tracemalloc misses torch's buffers; the kernel's high-water mark sees every page.
    Returns (None, result) where the kernel cannot reset it."""
    gc.collect()
    _malloc_trim()
    if not _reset_peak_rss():
        return None, fn()
    base = _proc_status_kb("VmRSS")
    out = fn()
    peak = _proc_status_kb("VmHWM")
    if base is None or peak is None:
        return None, out
    return max(0, peak - base) * 1024, out


def max_rss() -> int:
    """This process's peak resident set since it started, in bytes.

    Linux's VmHWM where it exists: ``ru_maxrss`` survives ``exec`` and so can report the
    parent's peak (subprocess starts children with vfork)."""
    hwm = _proc_status_kb("VmHWM")
    if hwm is not None:
        return max(hwm, _peak_before_resets) * 1024
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r if sys.platform == "darwin" else r * 1024


# --------------------------------------------------------------------------- engines


class Engine:
    """One library on one device. ``load`` imports it and fixes its thread count."""

    name = ""
    family = ""  # "numpy", "jitgrad", "torch"
    device = "cpu"

    def __init__(self) -> None:
        self.lib: Any = None

    def load(self, threads: int) -> None:
        raise NotImplementedError

    def version(self) -> str:
        return str(getattr(self.lib, "__version__", "?"))

    def tensor(self, a: np.ndarray, requires_grad: bool = False) -> Any:
        return a.copy()

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.array(x, copy=True)

    def sync(self) -> None:
        pass

    def time(self, fn: Callable[[], Any], number: int = 1) -> float:
        """Seconds for ``number`` calls, or the sum of their own times if they report them.
        Each result is dropped inside the timed region: freeing it (and the graph it holds)
        is part of the work, and two graphs are never alive at once."""
        self.sync()
        measured = 0.0
        t = time.perf_counter()
        for _ in range(number):
            out = fn()
            if isinstance(out, Measured):
                measured += out.seconds
            del out
        self.sync()
        dt = time.perf_counter() - t
        return measured or dt

    def first_call(self, fn: Callable[[], Any]) -> tuple[float, Any]:
        self.sync()
        t = time.perf_counter()
        out = fn()
        self.sync()
        dt = time.perf_counter() - t
        return (out.seconds if isinstance(out, Measured) else dt), out

    def device_peak(self, fn: Callable[[], Any]) -> int | None:
        """Peak device memory of one call, where the engine can tell."""
        return None


class NumpyEngine(Engine):
    name = "numpy"
    family = "numpy"

    def load(self, threads: int) -> None:
        self.lib = np  # BLAS threads are fixed by the environment the worker started with


class TorchLikeEngine(Engine):
    """jitgrad or PyTorch on one device: both take the same source."""

    def __init__(self, family: str, device: str) -> None:
        super().__init__()
        self.family = family
        self.device = device
        self.name = f"{family}-{device}"
        self._events: Any = None

    def load(self, threads: int) -> None:
        try:
            self.lib = importlib.import_module(self.family)
        except ModuleNotFoundError as e:
            if e.name != self.family:
                raise  # installed but broken: an error, not a missing engine
            raise Unavailable(f"{self.family} is not installed") from None
        if self.family == "torch":
            self.lib.set_num_threads(threads)
        else:
            import numba

            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        if self.device == "cuda":
            cuda = getattr(self.lib, "cuda", None)
            if cuda is None or not hasattr(cuda, "is_available"):
                raise Unavailable(f"{self.family}.cuda does not exist yet")
            if not cuda.is_available():
                raise Unavailable(f"{self.family}.cuda.is_available() is False")
            self._events = self._make_events()

    def _make_events(self) -> Any:
        if self.family == "torch":
            torch = self.lib
            return lambda: (torch.cuda.Event(enable_timing=True),
                            torch.cuda.Event(enable_timing=True))
        try:
            from numba import cuda as ncuda
        except ImportError:
            return None
        return lambda: (ncuda.event(timing=True), ncuda.event(timing=True))

    def tensor(self, a: np.ndarray, requires_grad: bool = False) -> Any:
        return self.lib.tensor(a, requires_grad=requires_grad, device=self.device)

    def to_numpy(self, x: Any) -> np.ndarray:
        if hasattr(x, "detach"):
            x = x.detach()
            if self.device != "cpu":
                x = x.cpu()
            return np.array(x.numpy(), copy=True)
        return np.array(x, copy=True)

    def sync(self) -> None:
        if self.device == "cuda":
            self.lib.cuda.synchronize()

    def time(self, fn: Callable[[], Any], number: int = 1) -> float:
        if self.device != "cuda" or self._events is None:
            return super().time(fn, number)
        # CUDA: synchronise, then time with events on the stream the work is queued on.
        self.sync()
        start, end = self._events()
        start.record()
        for _ in range(number):
            fn()
        end.record()
        end.synchronize()
        if self.family == "torch":
            return start.elapsed_time(end) / 1e3
        from numba import cuda as ncuda

        return ncuda.event_elapsed_time(start, end) / 1e3

    def device_peak(self, fn: Callable[[], Any]) -> int | None:
        if self.device != "cuda" or self.family != "torch":
            return None
        cuda = self.lib.cuda
        cuda.synchronize()
        cuda.reset_peak_memory_stats()
        fn()
        cuda.synchronize()
        return int(cuda.max_memory_allocated())


ENGINE_NAMES = ("jitgrad-cpu", "jitgrad-cuda", "numpy", "torch-cpu", "torch-cuda")


def make_engine(name: str) -> Engine:
    if name == "numpy":
        return NumpyEngine()
    family, _, device = name.partition("-")
    if family not in ("jitgrad", "torch") or device not in ("cpu", "cuda"):
        raise ValueError(f"unknown engine {name!r}; known: {', '.join(ENGINE_NAMES)}")
    return TorchLikeEngine(family, device)


def candidate_engines(patterns: Iterable[str] | None = None) -> list[str]:
    """Engine names worth asking a worker about, without importing any of them: torch only
    when it is installed; CUDA engines are checked (and dropped) by the worker."""
    from importlib.util import find_spec

    names = [n for n in ENGINE_NAMES
             if not n.startswith("torch") or find_spec("torch") is not None]
    if patterns:
        pats = [p for spec in patterns for p in spec.split(",") if p]
        names = [n for n in names if any(fnmatch.fnmatch(n, p) for p in pats)]
    return names


def default_reference(engines: Sequence[str]) -> str:
    """torch on the CPU when it runs here, else numpy, else the first engine."""
    for name in ("torch-cpu", "numpy"):
        if name in engines:
            return name
    return engines[0]


# --------------------------------------------------------------------------- cases


def lookup(lib: Any, path: str) -> Any:
    """``lookup(torch, "nn.functional.conv2d")``; raises AttributeError naming the path."""
    obj = lib
    for part in path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AttributeError(f"{lib.__name__}.{path}") from None
    return obj


def missing(lib: Any, paths: Iterable[str]) -> list[str]:
    out = []
    for p in paths:
        try:
            lookup(lib, p)
        except AttributeError:
            out.append(f"{lib.__name__}.{p}")
    return out


Program = dict  # mode name -> callable of no arguments returning what it computed


class Case:
    """One benchmark. Subclasses set the class attributes and write ``inputs``, ``numpy`` and
    ``torchlike``; ``register`` adds an instance to the registry."""

    name = ""
    title = ""
    modes: tuple[str, ...] = ("fwd", "fwd+bwd")
    full: dict[str, Any] = {}
    quick: dict[str, Any] = {}
    per = 1.0  # samples are divided by this (e.g. 100 ops) ...
    unit = ""  # ... and shown as seconds per `unit`
    targets: tuple[Target, ...] = ()
    tol = 1e-4  # max |engine - reference| / max |reference|, per output array
    devices: tuple[str, ...] = ("cpu", "cuda")
    requires: dict[str, tuple[str, ...]] = {}  # family -> attribute paths on its module
    budget_scale = 1.0  # a slow case may take longer per mode in a full run
    repeats: int | None = None  # rounds per mode in a full run (default: Settings)
    quick_repeats: int | None = None  # rounds per mode in a quick run (default: Settings)

    @property
    def primary(self) -> str:
        """The mode that matters most: the first target's, else the last listed. Its first
        call and its memory are the ones reported."""
        return self.targets[0].mode if self.targets else self.modes[-1]

    def size(self, quick: bool) -> dict[str, Any]:
        return dict(self.quick if quick else self.full)

    def inputs(self, rng: np.random.Generator, **size: Any) -> dict[str, np.ndarray]:
        return {}

    def numpy(self, ins: dict[str, np.ndarray], **size: Any) -> Program:
        raise Skip("no numpy implementation")

    def torchlike(self, eng: Engine, ins: dict[str, np.ndarray], **size: Any) -> Program:
        raise Skip(f"no {eng.family} implementation")

    def build(self, eng: Engine, ins: dict[str, np.ndarray], size: dict[str, Any]) -> Program:
        if eng.family == "numpy":
            return self.numpy(ins, **size)
        return self.torchlike(eng, ins, **size)

    def describe(self) -> dict[str, Any]:
        return {"case": self.name, "title": self.title, "modes": list(self.modes),
                "primary": self.primary,
                "per": self.per, "unit": self.unit,
                "targets": [dict(vars(t), text=t.describe()) for t in self.targets]}


CASES: dict[str, Case] = {}


def register(case: Case | type) -> Any:
    """Add a case to the registry; usable as a class decorator or called on an instance."""
    inst = case() if isinstance(case, type) else case
    if not inst.name:
        raise ValueError("a case needs a name")
    if inst.name in CASES:
        raise ValueError(f"case {inst.name!r} registered twice")
    CASES[inst.name] = inst
    return case


def load_cases() -> dict[str, Case]:
    """The registry, filled by ``bench.cases`` and by the modules named (comma-separated) in
    the environment variable JITGRAD_BENCH_CASES: cases kept outside this folder."""
    importlib.import_module("bench.cases")
    for mod in os.environ.get("JITGRAD_BENCH_CASES", "").split(","):
        if mod.strip():
            importlib.import_module(mod.strip())
    return CASES


def select_cases(patterns: Iterable[str] | None, cases: dict[str, Case] | None = None
                 ) -> list[Case]:
    """Cases whose names match any pattern (globs, comma-separated allowed), in registry
    order; all of them when no pattern is given. An unmatched pattern is an error."""
    cases = load_cases() if cases is None else cases
    pats = [p for spec in (patterns or []) for p in spec.split(",") if p]
    if not pats:
        return list(cases.values())
    for p in pats:
        if not any(fnmatch.fnmatch(n, p) for n in cases):
            raise KeyError(f"no case matches {p!r}; cases: {', '.join(cases)}")
    return [c for n, c in cases.items() if any(fnmatch.fnmatch(n, p) for p in pats)]


# --------------------------------------------------------------------------- agreement


def flatten(out: Any, to_numpy: Callable[[Any], np.ndarray]) -> list[np.ndarray | None]:
    """Outputs as a flat list of arrays (None stays None: a gradient that was not made)."""
    if isinstance(out, Measured):
        out = out.value
    if out is None:
        return [None]
    if isinstance(out, dict):
        return [a for k in sorted(out) for a in flatten(out[k], to_numpy)]
    if isinstance(out, (tuple, list)):
        return [a for x in out for a in flatten(x, to_numpy)]
    return [to_numpy(out)]


def max_error(got: np.ndarray, ref: np.ndarray) -> float:
    """max |got - ref| / max |ref| (absolute when ref is all zeros); inf on a shape or NaN
    mismatch."""
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if got.shape != ref.shape:
        return math.inf
    nan_g, nan_r = np.isnan(got), np.isnan(ref)
    if not np.array_equal(nan_g, nan_r):
        return math.inf
    ok = ~nan_r
    if not ok.any():
        return 0.0
    diff = np.abs(got[ok] - ref[ok])
    if not np.all(np.isfinite(diff)):
        return 0.0 if np.array_equal(got[ok], ref[ok]) else math.inf
    scale = float(np.abs(ref[ok]).max())
    return float(diff.max() / scale) if scale > 0 else float(diff.max())


def agreement(got: list, ref: list, tol: float) -> tuple[float, str | None]:
    """(worst error, problem or None) for two flattened outputs."""
    if len(got) != len(ref):
        return math.inf, f"{len(got)} outputs, the reference has {len(ref)}"
    worst = 0.0
    for i, (g, r) in enumerate(zip(got, ref)):
        if (g is None) != (r is None):
            return math.inf, f"output {i} is {'missing' if g is None else 'unexpected'}"
        if g is None:
            continue
        err = max_error(g, r)
        worst = max(worst, err)
        if not err <= tol:
            shape = "" if np.shape(g) == np.shape(r) else \
                f" (shape {np.shape(g)} vs {np.shape(r)})"
            return worst, f"output {i}: error {err:.3g} > tolerance {tol:g}{shape}"
    return worst, None


# --------------------------------------------------------------------------- running a case


class _EngineFailed(Exception):
    def __init__(self, name: str, exc: BaseException) -> None:
        super().__init__(name)
        self.name, self.exc = name, exc


def _lacks(eng: Engine, exc: BaseException) -> bool:
    """An engine under construction lacking an op raises these; the case skips it."""
    return isinstance(exc, (Skip, NotImplementedError)) or (
        eng.family == "jitgrad" and isinstance(exc, AttributeError))


def _describe_exc(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip()


def run_case(case: Case, engines: Sequence[Engine], settings: Settings,
             emit: Callable[[float, str], None] = lambda frac, label: None) -> dict[str, Any]:
    """Run one case on the loaded engines; returns a JSON-able result (no ratios yet)."""
    t_start = time.perf_counter()
    size = case.size(settings.quick)
    res: dict[str, Any] = dict(case.describe(), size=size, status="ok", engines={})
    rng = np.random.default_rng(settings.seed)
    ins = case.inputs(rng, **size)

    progs: dict[str, Program] = {}
    outs: dict[str, dict[str, list]] = {}
    for eng in engines:
        er = res["engines"][eng.name] = {"status": "ok", "first_call_s": {}, "timing": {},
                                         "samples": {}, "error": {}}
        if eng.device not in case.devices:
            er.update(status="skipped", reason=f"the case runs on {', '.join(case.devices)}")
            continue
        lacking = missing(eng.lib, case.requires.get(eng.family, ()))
        if lacking:
            er.update(status="skipped", reason="needs " + ", ".join(lacking))
            continue
        try:
            progs[eng.name] = case.build(eng, ins, dict(size))
        except Exception as e:  # noqa: BLE001 - reported in the result
            er.update(status="skipped" if _lacks(eng, e) else "error", reason=_describe_exc(e))
    emit(0.05, "first calls")

    # First call of each mode, timed apart; its outputs are the ones checked.
    by_name = {e.name: e for e in engines}
    self_timed: set[tuple[str, str]] = set()
    for name, prog in list(progs.items()):
        eng, er = by_name[name], res["engines"][name]
        outs[name] = {}
        try:
            for mode in case.modes:
                if mode in prog:
                    t, out = eng.first_call(prog[mode])
                    er["first_call_s"][mode] = t
                    outs[name][mode] = flatten(out, eng.to_numpy)
                    if isinstance(out, Measured):  # a fresh process: it measured itself
                        self_timed.add((name, mode))
                        if out.peak_rss is not None:
                            er["peak_rss"], er["peak_mode"] = out.peak_rss, mode
        except Exception as e:  # noqa: BLE001
            er.update(status="skipped" if _lacks(eng, e) else "error", reason=_describe_exc(e))
            del progs[name], outs[name]
    emit(0.1, "checking agreement")

    # Agreement, mode by mode, with the reference: numpy when it ran that mode, else the
    # first engine that did.
    res["checked_against"] = {}
    for mode in case.modes:
        have = [n for n in outs if mode in outs[n]]
        if not have:
            continue
        ref = "numpy" if "numpy" in have else have[0]
        res["checked_against"][mode] = ref
        for name in have:
            er = res["engines"][name]
            if name == ref or er["status"] != "ok":
                continue
            err, problem = agreement(outs[name][mode], outs[ref][mode], case.tol)
            er["error"][mode] = err
            if problem:
                er.update(status="mismatch", reason=f"{mode} disagrees with {ref}: {problem}")
                del progs[name]
    outs.clear()

    def fail(name: str, exc: BaseException) -> None:
        res["engines"][name].update(status="error", reason=_describe_exc(exc))
        progs.pop(name, None)

    # Peak extra memory of one call of the primary mode.
    for name, prog in list(progs.items()):
        eng, er = by_name[name], res["engines"][name]
        mode = case.primary if case.primary in prog else [m for m in case.modes if m in prog][-1]
        if (name, mode) in self_timed:
            continue
        try:
            peak, _ = peak_extra_rss(prog[mode])
            er["device_peak"] = eng.device_peak(prog[mode])
        except Exception as e:  # noqa: BLE001
            fail(name, e)
            continue
        er["peak_rss"], er["peak_mode"] = peak, mode
    emit(0.15, "warming up")

    # Warm up, then size `number` so that one sample lasts at least min_sample.
    numbers: dict[tuple[str, str], int] = {}
    for name, prog in list(progs.items()):
        eng = by_name[name]
        try:
            for mode, fn in prog.items():
                if mode not in case.modes:
                    continue
                if (name, mode) in self_timed:
                    numbers[name, mode] = 1
                    continue
                for _ in range(settings.warmup):
                    fn()
                one = eng.time(fn, 1)
                numbers[name, mode] = max(1, min(10_000, math.ceil(settings.min_sample / one))
                                          ) if one > 0 else 1000
        except Exception as e:  # noqa: BLE001
            fail(name, e)
    # Interleaved sampling, one mode at a time.
    repeats, min_repeats = settings.repeats, settings.min_repeats
    if settings.quick and case.quick_repeats:
        repeats = min_repeats = case.quick_repeats
    elif not settings.quick and case.repeats:
        repeats = case.repeats
    budget = settings.budget * (1.0 if settings.quick else case.budget_scale)
    n_modes = len(case.modes)
    for mi, mode in enumerate(case.modes):

        def sampler(name: str, number: int) -> Callable[[], float]:
            eng, fn = by_name[name], progs[name][mode]

            def sample() -> float:
                gc.disable()
                try:
                    return eng.time(fn, number) / number / case.per
                except Exception as e:  # noqa: BLE001
                    raise _EngineFailed(name, e) from e
                finally:
                    gc.enable()
            return sample

        def on_round(r: int, mi: int = mi, mode: str = mode) -> None:
            gc.collect(1)
            emit(0.15 + 0.85 * (mi + min(1.0, r / repeats)) / n_modes, f"{mode} round {r}")

        while True:  # an engine that breaks mid-way is dropped and the mode sampled again
            names = [n for n, p in progs.items() if mode in p]
            samplers = [sampler(n, numbers[n, mode]) for n in names]
            try:
                samples = interleave(samplers, repeats, min_repeats, budget, on_round=on_round)
                break
            except _EngineFailed as f:
                fail(f.name, f.exc)
        for n, s in zip(names, samples):
            er = res["engines"][n]
            er["samples"][mode] = s
            er["timing"][mode] = dict(summarize(s), number=numbers[n, mode])
    del progs
    gc.collect()

    statuses = {e["status"] for e in res["engines"].values()}
    if statuses & {"mismatch", "error"}:
        res["status"] = "failed"
    elif not any(e["timing"] for e in res["engines"].values()):
        res["status"] = "skipped"
    res["elapsed_s"] = time.perf_counter() - t_start
    emit(1.0, "done")
    return res


# --------------------------------------------------------------------------- ratios, targets


def compute_ratios(run: dict[str, Any], reference: str) -> dict[str, dict[str, Any]]:
    """Each engine's time over the reference engine's, pair by pair (same round)."""
    ref = run["engines"].get(reference, {})
    out: dict[str, dict[str, Any]] = {}
    for name, er in run["engines"].items():
        if name == reference:
            continue
        for mode, s in er.get("samples", {}).items():
            r = ref.get("samples", {}).get(mode)
            if r:
                out.setdefault(name, {})[mode] = pairwise_ratios(s, r)
    return out


def evaluate_targets(run: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of the case, on each device where jitgrad ran: value and met/missed
    (met is None when the figure is missing, e.g. PyTorch is not installed)."""
    out = []
    engines = run["engines"]
    devices = sorted({n.partition("-")[2] for n in engines if n.startswith("jitgrad-")})
    for t in run.get("targets", []):
        for dev in devices:
            jit = engines.get(f"jitgrad-{dev}", {})
            item = dict(t, engine=f"jitgrad-{dev}", value=None, met=None)
            if t["kind"] == "ratio":
                torch = engines.get(f"torch-{dev}", {})
                a = jit.get("samples", {}).get(t["mode"])
                b = torch.get("samples", {}).get(t["mode"])
                item["versus"] = f"torch-{dev}"
                if a and b:
                    item["value"] = pairwise_ratios(a, b)["median"]
            elif t["stat"] == "first":
                first = jit.get("first_call_s", {}).get(t["mode"])
                if first is not None and jit.get("status") == "ok":
                    item["value"] = first
            else:
                timing = jit.get("timing", {}).get(t["mode"])
                if timing:
                    item["value"] = timing["median"] * run.get("per", 1.0)
            if item["value"] is not None:
                item["met"] = bool(item["value"] <= t["limit"])
            if jit.get("status") == "ok" or item["value"] is not None:
                out.append(item)
    return out


def finish_run(run: dict[str, Any], reference: str) -> dict[str, Any]:
    """Add ratios (against ``reference``) and target verdicts to a worker's result."""
    run["reference"] = reference
    run["ratios"] = compute_ratios(run, reference)
    run["target_results"] = evaluate_targets(run)
    return run


__all__ = [
    "CASES",
    "ENGINE_NAMES",
    "Case",
    "Engine",
    "Measured",
    "NumpyEngine",
    "Settings",
    "Skip",
    "Target",
    "TorchLikeEngine",
    "Unavailable",
    "agreement",
    "candidate_engines",
    "compute_ratios",
    "default_reference",
    "evaluate_targets",
    "finish_run",
    "flatten",
    "interleave",
    "load_cases",
    "lookup",
    "make_engine",
    "max_error",
    "max_rss",
    "missing",
    "pairwise_ratios",
    "peak_extra_rss",
    "register",
    "relative_spread",
    "run_case",
    "select_cases",
    "summarize",
]
