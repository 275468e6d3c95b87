"""Kernel launches: ``launch(kernel, grid, block, *args)``, the one way every CUDA family
starts a kernel.

numba-cuda's ordinary launch (``kernel[grid, block](*args)``) types every argument, looks the
compiled overload up, converts each array to a memory view and marshals the lot on every
call: tens of microseconds, more than most of jitgrad's kernels run for. The direct path
does that work once per (kernel, argument kinds):

- The first launch of a kernel with a new argument signature goes through numba-cuda (which
  compiles it). Afterwards the overload numba-cuda picked is looked up, and an *entry* is
  built: the compiled kernel's driver handle, a ``struct`` layout with one 8-byte slot per
  kernel parameter, and an array of pointers to those slots.
- Before an entry is used, the arguments of that first launch are marshalled both ways:
  numba-cuda's own ``_prepare_args``, laid out by cuda.core exactly as its launch does, and
  the entry's packing. Every parameter must match byte for byte, or that signature stays on
  numba-cuda's path.
- Later launches with the same signature pack their values into the slots and call
  ``cuLaunchKernel`` on the legacy default stream (the stream numba-cuda launches on and
  jitgrad copies on), under a lock, since the slots are shared.
- The first time the direct path would be used, a probe kernel runs once through numba-cuda
  and once directly, with different values of every parameter kind jitgrad passes (arrays,
  int64, float32, float64, bool); the result is checked element by element. If anything
  differs or raises, the direct path is switched off for the process with a warning.

``JITGRAD_CUDA_LAUNCH=numba`` keeps every launch on numba-cuda's path. Under the simulator
(``NUMBA_ENABLE_CUDASIM=1``) launches always go through numba-cuda: there is no driver.
``stats`` counts launches by path.
"""

from __future__ import annotations

import ctypes
import os
import struct
import threading
import warnings

import numpy as np

from .runtime import SIM, cuda

stats = {"direct": 0, "numba": 0, "entries": 0, "refused": 0}
_state = {"direct": (not SIM and os.environ.get("JITGRAD_CUDA_LAUNCH", "direct") != "numba"),
          "probed": False,
          "why_off": ("the simulator has no driver" if SIM else
                      "JITGRAD_CUDA_LAUNCH=numba" if os.environ.get("JITGRAD_CUDA_LAUNCH")
                      == "numba" else None)}
_entries: dict = {}
refusals: list = []  # (kernel, why) for each signature kept on numba-cuda's path
_lock = threading.Lock()
_probe_lock = threading.Lock()
_MISS = object()

if not SIM:
    from .runtime import KArg
else:  # no KArg under the simulator: kernel arguments are numpy arrays
    class KArg:
        pass


def _tkey(t: tuple) -> tuple:
    return tuple([a.key if a.__class__ is KArg else
                  (a.__class__ if a.__class__ is not tuple else _tkey(a)) for a in t])


def launch(kernel, grid, block, *args) -> None:
    """Launch `kernel` on `grid` blocks of `block` threads (ints or tuples) with `args`:
    kernel views (``CudaArray.flat()`` and the like) and numbers."""
    if _state["direct"]:
        try:
            key = (kernel, *[a.key if a.__class__ is KArg else
                             (a.__class__ if a.__class__ is not tuple else _tkey(a))
                             for a in args])
            e = _entries.get(key, _MISS)
        except TypeError:  # an unhashable argument kind: numba-cuda's path
            e = None
        if e is not None and e is not _MISS:
            if e(grid, block, args):
                return
            _numba_launch(kernel, grid, block, args)  # raises numba-cuda's error, if any
            _entries[key] = None  # numba-cuda launched what the driver refused directly
            return
        else:
            _numba_launch(kernel, grid, block, args)
            if e is _MISS:
                _learn(key, kernel, args)
            return
    _numba_launch(kernel, grid, block, args)


def _numba_launch(kernel, grid, block, args) -> None:
    stats["numba"] += 1
    if not SIM:
        args = [_dev(a) for a in args]
    kernel[grid, block](*args)


def _dev(a):
    """A launch argument as numba-cuda takes it (arrays inside tuples too)."""
    c = a.__class__
    if c is KArg:
        return a.dev()
    if c is tuple:
        return tuple([_dev(x) for x in a])
    return a


def _strided_inside(a) -> bool:
    """Whether argument `a` is, or holds, an array the direct path does not pack."""
    c = a.__class__
    if c is KArg:
        return a.key is None
    if c is tuple:
        return any(_strided_inside(x) for x in a)
    return False


def _flatten(args, out: list) -> list:
    for a in args:
        c = a.__class__
        if c is KArg:
            out.extend(a.vals)
        elif c is tuple:
            _flatten(a, out)
        else:
            out.append(a)
    return out


# ----------------------------------------------------------------------------- entries

def _param_codes(ty, out: list) -> None:
    """struct codes of the kernel parameters numba-cuda makes of one argument of numba type
    `ty` (raises NotImplementedError for a kind the direct path does not handle)."""
    from numba.core import types

    if isinstance(ty, types.Array):
        out.extend("q" * (5 + 2 * ty.ndim))  # meminfo, parent, nitems, itemsize, data,
        return                                # shape, strides
    if isinstance(ty, types.Boolean):
        out.append("?")
        return
    if isinstance(ty, types.Integer):
        out.append({(8, True): "b", (16, True): "h", (32, True): "i", (64, True): "q",
                    (8, False): "B", (16, False): "H", (32, False): "I",
                    (64, False): "Q"}[(ty.bitwidth, ty.signed)])
        return
    if ty == types.float64:
        out.append("d")
        return
    if ty == types.float32:
        out.append("f")
        return
    if ty == types.float16:
        out.append("e")
        return
    if isinstance(ty, types.BaseTuple):
        for t in ty:
            _param_codes(t, out)
        return
    raise NotImplementedError(f"kernel parameter of type {ty}")


class _Entry:
    """A compiled kernel launched straight through the driver, its parameters packed into
    slots made once."""

    __slots__ = ("pack", "buf", "params", "fn", "kernel", "fill_args")

    def __init__(self, kernel, handle: int, codes: list, args):
        self.kernel = kernel
        self.pack = struct.Struct("<" + "".join(
            c + "x" * (8 - struct.calcsize(c)) for c in codes)).pack_into
        n = len(codes)
        self.buf = ctypes.create_string_buffer(8 * n or 8)
        base = ctypes.addressof(self.buf)
        self.params = (ctypes.c_void_p * (n or 1))(*[base + 8 * i for i in range(n)])
        self.fill_args = _packer(args)
        from cuda.bindings import driver

        self.fn = (driver.cuLaunchKernel, driver.CUfunction(handle), driver.CUstream(0),
                   ctypes.addressof(self.params))

    def fill(self, args) -> None:
        self.fill_args(self.pack, self.buf, args)

    def __call__(self, grid, block, args) -> bool:
        """Launch; False when the direct launch could not be made (the caller then uses
        numba-cuda's path, which reports any error in its own words)."""
        cu, f, stream, params = self.fn
        try:
            g = (grid, 1, 1) if grid.__class__ is int else _dims(grid)
            b = (block, 1, 1) if block.__class__ is int else _dims(block)
        except (TypeError, ValueError):  # dims numba-cuda will judge in its own words
            _numba_launch(self.kernel, grid, block, args)
            return True
        with _lock:
            try:
                self.fill_args(self.pack, self.buf, args)
            except (struct.error, TypeError, OverflowError):  # a value outside its slot
                packed = False
            else:
                packed = True
                try:
                    err = cu(f, g[0], g[1], g[2], b[0], b[1], b[2], 0, stream, params, 0)[0]
                except Exception:  # noqa: BLE001 - the bindings refused the call: no launch
                    return False
        if not packed:
            _numba_launch(self.kernel, grid, block, args)
            return True
        if err:
            return False
        stats["direct"] += 1
        return True


_packers: dict = {}


def _packer(args):
    """``fill(pack, buf, args)``: packs launch arguments laid out like `args` (the same
    kinds in the same places: the launch key guarantees it) into buf in one call. The
    function is generated once per layout, so a launch spends no time walking its
    arguments: each array contributes its precomputed ``vals``, each number itself."""
    src = ", ".join(_pack_parts(args, "a"))
    f = _packers.get(src)
    if f is None:
        ns: dict = {}
        exec(f"def fill(pack, buf, a):\n    pack(buf, 0, {src})\n", ns)  # noqa: S102
        f = _packers[src] = ns["fill"]
    return f


def _pack_parts(args, name: str) -> list:
    """The expressions that spell out the packed values of `args` (named `name`)."""
    parts = []
    for i, a in enumerate(args):
        if a.__class__ is KArg:
            parts.append(f"*{name}[{i}].vals")
        elif a.__class__ is tuple:
            if any(x.__class__ is KArg or x.__class__ is tuple for x in a):
                parts.extend(_pack_parts(a, f"{name}[{i}]"))
            else:
                parts.append(f"*{name}[{i}]")
        else:
            parts.append(f"{name}[{i}]")
    return parts


def _dims(d) -> tuple:
    """A launch dimension (an integer or a tuple of up to three) as three Python ints."""
    if d.__class__ is tuple and len(d) == 2 and d[0].__class__ is int and d[1].__class__ is int:
        return (d[0], d[1], 1)
    t = tuple(int(x) for x in d) if isinstance(d, tuple) else (int(d),)
    if not 1 <= len(t) <= 3:
        raise TypeError(f"a launch dimension has 1 to 3 entries, not {d!r}")
    return t + (1,) * (3 - len(t))


def _slot_bytes(codes: list) -> list:
    return [struct.calcsize(c) for c in codes]


def marshal_check(kern, dev_args: list, entry: _Entry, codes: list, args) -> str | None:
    """None when numba-cuda's marshalling of `dev_args` for compiled overload `kern` (laid
    out as cuda.core lays out launch arguments) equals the entry's packing of `args` byte
    for byte; otherwise what differs."""
    try:
        from cuda.core._kernel_arg_handler import ParamHolder
    except ImportError:  # cuda.core before 0.4 kept it under experimental
        from cuda.core.experimental._kernel_arg_handler import ParamHolder

    ref: list = []
    for t, v in zip(kern.argument_types, dev_args):
        kern._prepare_args(t, v, 0, [], ref)
    if len(ref) != len(codes):
        return f"{len(ref)} parameters from numba-cuda, {len(codes)} packed"
    entry.fill(args)
    holder = ParamHolder(ref)
    ptrs = (ctypes.c_void_p * len(ref)).from_address(holder.ptr)
    ours = entry.buf.raw
    for i, size in enumerate(_slot_bytes(codes)):
        theirs = ctypes.string_at(ptrs[i], size)
        if theirs != ours[8 * i: 8 * i + size]:
            return (f"parameter {i} ({codes[i]}): numba-cuda {theirs.hex()}, packed "
                    f"{ours[8 * i: 8 * i + size].hex()}")
    return None


def _learn(key, kernel, args) -> None:
    """After numba-cuda's launch of `kernel` with `args`, build the direct entry for this
    signature (or record that it has none)."""
    for a in args:
        if a.__class__ is int and not -(1 << 63) <= a < (1 << 63):
            return  # typed uint64 (or refused) by numba-cuda, unlike the key's other ints
        if _strided_inside(a):  # not 1-D contiguous: numba-cuda's path
            _entries[key] = None
            stats["refused"] += 1
            refusals.append((getattr(kernel, "__name__", repr(kernel)),
                             f"a {len(a.shape)}-D or strided array argument"))
            return
    if not _state["probed"]:
        _probe()
        if not _state["direct"]:
            return
    try:
        entry, why = build(kernel, args)
    except Exception as e:  # noqa: BLE001 - an API this numba-cuda / cuda.core lacks
        entry, why = None, f"{type(e).__name__}: {e}"
    _entries[key] = entry
    stats["entries" if entry is not None else "refused"] += 1
    if entry is None:
        refusals.append((getattr(kernel, "__name__", repr(kernel)), why))


def build(kernel, args) -> tuple:
    """(entry, None) for launching `kernel` directly with arguments like `args` (already
    compiled for them), or (None, why not)."""
    for a in _flatten(args, []):
        if isinstance(a, (complex, np.complexfloating, np.ndarray)) or not isinstance(
                a, (int, float, bool, np.number, np.bool_)):
            return None, f"argument {a!r} of a kind the direct path does not pack"
    dev_args = [_dev(a) for a in args]
    argtypes = tuple(kernel.typeof_pyval(a) for a in dev_args)
    kern = kernel.overloads.get(argtypes)
    if kern is None:
        return None, f"no compiled overload for {argtypes}"
    if kern.debug or kern.cooperative or kern.extensions:
        return None, "a debug, cooperative or extended kernel"
    codes: list = []
    for t in kern.argument_types:
        _param_codes(t, codes)
    handle = int(kern._codelibrary.get_cufunc().handle)
    entry = _Entry(kernel, handle, codes, args)
    why = marshal_check(kern, dev_args, entry, codes, args)
    return (entry, None) if why is None else (None, why)


# ----------------------------------------------------------------------------- the probe

def _probe_kernel():
    @cuda.jit
    def probe(x, out, n, s, t, flag):
        i = cuda.grid(1)
        if i < n:
            out[i] = x[i] * s + t + (1.0 if flag else 0.0)

    return probe


def _probe() -> None:
    """Check the direct path once on this device (see the module's docstring); switch it
    off with a warning if it fails."""
    with _probe_lock:
        if not _state["probed"]:
            _run_probe()
            _state["probed"] = True


def _run_probe() -> None:
    from .runtime import ALLOCATOR, download, upload, view

    try:
        k = _probe_kernel()
        f8 = np.dtype(np.float64)
        xb, ob = ALLOCATOR.allocate(5 * 8), ALLOCATOR.allocate(6 * 8)
        x, out = view(xb, 0, (5,), (8,), f8), view(ob, 0, (6,), (8,), f8)
        xs = np.array([1.0, -2.0, 3.5, 0.25, 8.0])
        upload(x, xs)
        upload(out, np.full(6, 7.0))
        _numba_launch(k, 1, 32, (x, out, 5, np.float32(2.5), -1.0, True))
        entry, why = build(k, (x, out, 5, np.float32(2.5), -1.0, True))
        if entry is None:
            raise RuntimeError(why)
        before = stats["direct"]
        if not entry(1, 32, (x, out, 4, np.float32(0.5), 3.0, False)):
            raise RuntimeError("cuLaunchKernel refused the launch")
        if stats["direct"] != before + 1:
            raise RuntimeError("the probe's arguments did not pack")
        got = np.empty(6)
        download(out, got)
        want = np.concatenate([xs[:4] * 0.5 + 3.0, xs[4:] * 2.5 - 1.0 + 1.0, [7.0]])
        if not np.array_equal(got, want):
            raise RuntimeError(f"probe kernel wrote {got.tolist()}, expected {want.tolist()}")
    except Exception as e:  # noqa: BLE001 - any failure turns the direct path off
        _state["direct"] = False
        _state["why_off"] = f"{type(e).__name__}: {e}"
        warnings.warn("jitgrad: the direct CUDA launch path failed its self-check "
                      f"({_state['why_off']}); every kernel launches through numba-cuda",
                      RuntimeWarning, stacklevel=4)


def direct_enabled() -> bool:
    """Whether launches may take the direct path (probing it first if it has not run)."""
    if _state["direct"] and not _state["probed"]:
        _probe()
    return bool(_state["direct"])


__all__ = ["launch"]
