"""The direct CUDA launch path (``kernels/cuda/launch.py``), checked without a GPU.

Two things are checked against numba-cuda itself, which needs no driver for them:

- the packing: for a table of argument lists (arrays of several dtypes, sizes and
  addresses, every scalar kind jitgrad passes, tuples), numba-cuda's own marshalling
  (``_Kernel._prepare_args``, laid out by cuda.core's ``ParamHolder`` as its launch does) and
  the direct path's slots agree byte for byte; a wrong layout is caught;
- the launch logic, with a stand-in for the compiled kernel and for ``cuLaunchKernel``: the
  first launch of a signature goes through numba-cuda and builds the entry, later ones pack
  the new values into the parameter slots and pass the grid and block through; a driver
  error, a value outside its slot's type or a non-contiguous array falls back to
  numba-cuda's path.

The probe and real launches run on a GPU (``tests/test_cuda.py``). Under the simulator there
is no driver path, so this file is skipped there.
"""

from __future__ import annotations

import ctypes
import struct

import numpy as np
import pytest

pytest.importorskip("numba_cuda")
pytest.importorskip("cuda.core._kernel_arg_handler")

from numba import config as _numba_config

pytestmark = pytest.mark.skipif(bool(_numba_config.ENABLE_CUDASIM),
                                reason="the simulator has no driver launch path")

if not _numba_config.ENABLE_CUDASIM:
    from cuda.bindings import driver as _driver
    from jitgrad.kernels.cuda import launch as L
    from jitgrad.kernels.cuda import runtime as R
    from numba.cuda.dispatcher import _Kernel
    from numba.cuda.typing.typeof import Purpose, typeof

    class _FakeBlock(R.Block):
        """A block at a made-up device address that never returns to the allocator."""

        __slots__ = ()

        def __del__(self):
            pass


def karg(dtype, n: int, ptr: int = 0x7F00_0010_0000, off: int = 0, step: int = 1):
    dt = np.dtype(dtype)
    blk = _FakeBlock(ptr, off + max(n, 1) * dt.itemsize * step, ptr)
    return R.view(blk, off, (n,), (dt.itemsize * step,), dt)


def argtype(a):
    return typeof(L._dev(a), Purpose.argument)


class FakeKernel:
    """What the direct path reads of a compiled overload; marshals as numba-cuda does."""

    debug = cooperative = False
    if not _numba_config.ENABLE_CUDASIM:
        _prepare_args = _Kernel._prepare_args

    def __init__(self, argument_types, handle: int = 0xBEEF):
        self.argument_types = argument_types
        self.extensions = []
        cufunc = type("F", (), {"handle": handle})()
        self._codelibrary = type("L", (), {"get_cufunc": lambda s: cufunc})()


CASES = {
    "arrays of three dtypes, ints": lambda: (karg(np.float64, 5), karg(np.float32, 7, off=64),
                                             karg(np.int64, 1), 5, -3),
    "float scalars": lambda: (karg(np.float32, 3), np.float32(2.5), 1.25, np.float64(-0.5),
                              -1e300),
    "bools": lambda: (karg(np.bool_, 4), True, np.bool_(False), False),
    "narrow and unsigned ints": lambda: (np.int32(-9), np.int8(3), np.uint8(250), np.int16(-2),
                                         np.uint16(65535), np.uint32(7),
                                         np.uint64(2**63 + 5), np.int64(-(2**62))),
    "tuples": lambda: (karg(np.int64, 9), (1, 2, 3), (np.int64(4), -5), ()),
    "arrays in a tuple (multi-tensor launches)": lambda: (
        (karg(np.float32, 3), karg(np.float32, 1, ptr=0x10), karg(np.float32, 70, off=16)),
        (3, 3, 73), np.float32(0.5), ((karg(np.int64, 2), 4), True)),
    "a tuple of mixed scalars (optimizer hyperparameters)": lambda: (
        karg(np.float64, 4), (np.float64(-0.1), np.float64(0.0), 0.9, True, False, np.bool_(1)),
        (np.float32(0.5), np.float32(-1.0), False)),
    "half precision": lambda: (np.float16(1.5), karg(np.float16, 2)),
    "a high address, a large array": lambda: (karg(np.float64, 3 << 28, ptr=0x7FFF_F000_0000),
                                              karg(np.uint8, 1, ptr=0x10, off=3)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_packing_matches_numba_cuda_byte_for_byte(case):
    args = CASES[case]()
    types = tuple(argtype(a) for a in args)
    codes: list = []
    for t in types:
        L._param_codes(t, codes)
    entry = L._Entry(None, 0xBEEF, codes, args)
    dev = [L._dev(a) for a in args]
    assert L.marshal_check(FakeKernel(types), dev, entry, codes, args) is None


def test_marshal_check_catches_a_wrong_layout():
    args = (karg(np.float64, 5), 7, np.float32(0.5))
    types = tuple(argtype(a) for a in args)
    codes: list = []
    for t in types:
        L._param_codes(t, codes)
    dev = [a.dev() for a in args[:1]] + list(args[1:])
    kern = FakeKernel(types)
    # the same layout, other values: the data address differs
    entry = L._Entry(None, 0, codes, args)
    other = (karg(np.float64, 5, ptr=0x7F00_0020_0000),) + args[1:]
    why = L.marshal_check(kern, dev, entry, codes, other)
    assert why is not None and why.startswith("parameter 4 (q)")
    # a float32 packed as a float64
    bad = codes[:-1] + ["d"]
    why = L.marshal_check(kern, dev, L._Entry(None, 0, bad, args), bad, args)
    assert why is not None and "parameter 8" in why
    # a parameter missing
    why = L.marshal_check(kern, dev, L._Entry(None, 0, codes[:-1], args), codes[:-1], args)
    assert why == "9 parameters from numba-cuda, 8 packed"


def test_kernel_parameter_kinds_outside_the_direct_path_are_refused():
    from numba.core import types

    for t in (types.complex128, types.CPointer(types.float64), types.NPDatetime("s")):
        with pytest.raises(NotImplementedError):
            L._param_codes(t, [])


# ----------------------------------------------------------------------------- launch logic

class FakeDispatcher:
    """Stands in for a numba-cuda kernel: its launch records the call and "compiles" an
    overload for the argument types, as numba-cuda's would."""

    def __init__(self):
        self.calls: list = []
        self.overloads: dict = {}

    def typeof_pyval(self, a):
        return typeof(a, Purpose.argument)

    def __getitem__(self, cfg):
        def run(*args):
            types = tuple(self.typeof_pyval(a) for a in args)
            self.overloads.setdefault(types, FakeKernel(types))
            self.calls.append((cfg, args))
        return run


class FakeDriver:
    """cuLaunchKernel's stand-in: decodes the parameter slots as the device would."""

    def __init__(self):
        self.launches: list = []
        self.result = 0
        self.codes: list = []

    def __call__(self, f, gx, gy, gz, bx, by, bz, shmem, stream, params, extra):
        ptrs = (ctypes.c_void_p * len(self.codes)).from_address(params)
        vals = [struct.unpack("<" + c, ctypes.string_at(p, struct.calcsize(c)))[0]
                for c, p in zip(self.codes, ptrs)]
        self.launches.append(dict(f=int(f), grid=(gx, gy, gz), block=(bx, by, bz),
                                  shmem=shmem, stream=int(stream), extra=extra, vals=vals))
        return (self.result,)


@pytest.fixture
def direct(monkeypatch):
    fake = FakeDriver()
    monkeypatch.setattr(_driver, "cuLaunchKernel", fake)
    monkeypatch.setattr(L, "_entries", {})
    monkeypatch.setattr(L, "_state", {"direct": True, "probed": True, "why_off": None})
    monkeypatch.setattr(L, "stats", {"direct": 0, "numba": 0, "entries": 0, "refused": 0})
    return fake


def test_first_launch_learns_then_later_launches_go_direct(direct):
    k = FakeDispatcher()
    a, b = karg(np.float64, 5), karg(np.float64, 5, ptr=0x7F00_0030_0000)
    L.launch(k, 4, 32, a, b, 7, np.float32(0.5), (2, 3))
    assert len(k.calls) == 1 and L.stats == {"direct": 0, "numba": 1, "entries": 1,
                                             "refused": 0}
    assert k.calls[0][0] == (4, 32) and k.calls[0][1][0] is a.dev()  # numba-cuda's arrays
    assert len(L._entries) == 1 and None not in L._entries.values()
    direct.codes = ["q"] * 14 + ["q", "f", "q", "q"]
    a2, b2 = karg(np.float64, 9, ptr=0x7F00_0040_0000), karg(np.float64, 9, off=16)
    L.launch(k, (2, 3), (16, 2), a2, b2, 9, np.float32(1.5), (-4, 5))
    assert len(k.calls) == 1 and L.stats["direct"] == 1
    (got,) = direct.launches
    assert got["f"] == 0xBEEF and got["grid"] == (2, 3, 1) and got["block"] == (16, 2, 1)
    assert got["shmem"] == 0 and got["stream"] == 0 and got["extra"] == 0
    assert got["vals"] == [0, 0, 9, 8, 0x7F00_0040_0000, 9, 8,
                           0, 0, 9, 8, 0x7F00_0010_0000 + 16, 9, 8, 9, 1.5, -4, 5]
    # another argument kind (an int32 where an int64 was) is another signature
    L.launch(k, 1, 1, a2, b2, np.int32(9), np.float32(1.5), (-4, 5))
    assert len(k.calls) == 2 and len(L._entries) == 2


def test_driver_error_falls_back_to_numba_cuda_for_that_signature(direct):
    k = FakeDispatcher()
    a = karg(np.float32, 3)
    L.launch(k, 1, 32, a, 1.0)
    direct.codes = ["q"] * 7 + ["d"]
    direct.result = 1  # CUDA_ERROR_INVALID_VALUE
    L.launch(k, 1, 32, a, 2.0)
    assert len(direct.launches) == 1 and len(k.calls) == 2 and L.stats["direct"] == 0
    assert list(L._entries.values()) == [None]
    L.launch(k, 1, 32, a, 3.0)
    assert len(direct.launches) == 1 and len(k.calls) == 3


def test_value_outside_its_slot_goes_through_numba_cuda(direct):
    k = FakeDispatcher()
    a = karg(np.int64, 3)
    L.launch(k, 1, 32, a, 5)  # int64 overload
    L.launch(k, 1, 32, a, 2**63 + 1)  # numba-cuda would type this one uint64
    assert not direct.launches and len(k.calls) == 2 and L.stats["numba"] == 2
    assert k.calls[1][1][1] == 2**63 + 1


def test_strided_arrays_take_numba_cudas_path(direct):
    k = FakeDispatcher()
    s = karg(np.float64, 4, step=2)  # every other element: no direct key
    assert s.key is None
    L.launch(k, 1, 32, s)
    L.launch(k, 1, 32, s)
    assert not direct.launches and len(k.calls) == 2 and list(L._entries.values()) == [None]
    assert L.refusals[-1][1] == "a 1-D or strided array argument"


def test_empty_arrays_pass_address_0_and_launch_directly(direct, monkeypatch):
    # numba-cuda gives an empty array a null pointer of its own (made in the current
    # context: none here), so the entry packs 0 for one too; an optimizer's absent state
    # buffers are such arrays, every step
    from numba.cuda.cudadrv import devices

    monkeypatch.setattr(devices, "get_context", lambda *a: None)
    k = FakeDispatcher()
    e = karg(np.float64, 0)
    assert e.vals[4] == 0 and e.ptr != 0
    L.launch(k, 1, 32, e, 1)  # numba-cuda's launch, then the entry (the bytes agree)
    assert L.stats["entries"] == 1 and len(k.calls) == 1
    direct.codes = ["q"] * 7 + ["q"]  # how the stand-in driver reads the slots back
    L.launch(k, 1, 32, e, 2)
    L.launch(k, 1, 32, karg(np.float64, 2), 3)  # the same entry serves a non-empty array
    assert len(k.calls) == 1 and len(direct.launches) == 2
    assert direct.launches[0]["vals"][4] == 0 and direct.launches[1]["vals"][4] != 0


def test_numba_setting_keeps_every_launch_on_numba_cuda(direct, monkeypatch):
    monkeypatch.setattr(L, "_state", {"direct": False, "probed": False, "why_off": None})
    k = FakeDispatcher()
    for _ in range(3):
        L.launch(k, 1, 32, karg(np.float64, 2), 1)
    assert len(k.calls) == 3 and not L._entries and not direct.launches


def test_numpy_integer_dims_launch_directly_and_bad_dims_go_to_numba_cuda(direct):
    k = FakeDispatcher()
    a = karg(np.float64, 3)
    L.launch(k, 1, 32, a, 1)
    direct.codes = ["q"] * 7 + ["q"]
    L.launch(k, np.int64(5), (np.int32(8), 4), a, 2)
    assert direct.launches[-1]["grid"] == (5, 1, 1)
    assert direct.launches[-1]["block"] == (8, 4, 1)
    assert direct.launches[-1]["vals"][-1] == 2
    L.launch(k, (1, 1, 1, 1), 32, a, 3)  # numba-cuda raises its own error for this one
    assert len(direct.launches) == 1 and k.calls[-1][0] == ((1, 1, 1, 1), 32)


def test_bindings_refusing_the_call_falls_back_and_is_not_counted(direct, monkeypatch):
    k = FakeDispatcher()
    a = karg(np.float64, 3)
    L.launch(k, 1, 32, a, 1)

    def refuse(*args):
        raise TypeError("Argument 'extra' is not instance of type (expected int)")

    monkeypatch.setattr(next(iter(L._entries.values())), "fn",
                        (refuse,) + next(iter(L._entries.values())).fn[1:])
    L.launch(k, 1, 32, a, 2)
    assert len(k.calls) == 2 and L.stats["direct"] == 0
    assert list(L._entries.values()) == [None]


def test_an_integer_beyond_int64_first_does_not_fix_the_signature(direct):
    k = FakeDispatcher()
    a = karg(np.int64, 3)
    L.launch(k, 1, 32, a, 2**63 + 1)  # numba-cuda types it uint64: no entry for `int`
    assert not L._entries
    L.launch(k, 1, 32, a, 5)  # an int64 one: learned now
    direct.codes = ["q"] * 8
    L.launch(k, 1, 32, a, 6)
    assert len(direct.launches) == 1 and direct.launches[0]["vals"][-1] == 6


def test_an_mlp_step_on_the_gpu_code_path_launches_few_kernels():
    # bench/cuda_host.py runs a 784-256-256-10 SGD step through the GPU code path with the
    # driver stubbed. At these sizes a step is bound by the host, each launch costing driver
    # time: the bias is added inside the GEMM, short products are not split over k, a bias
    # gradient is one sum, cross-entropy's backward works its scale out in its own kernel,
    # and SGD updates several parameters per launch.
    import os
    import pathlib
    import re
    import subprocess
    import sys

    env = dict(os.environ)
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    r = subprocess.run([sys.executable, "-m", "bench.cuda_host", "--reps", "3", "--rounds",
                        "1", "--phases"], cwd=pathlib.Path(__file__).resolve().parents[1],
                       env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    phases = re.search(r"host time per phase .*?: (.*)", r.stdout).group(1).split(", ")
    assert [p.rsplit(" ", 2)[0] for p in phases] == [
        "zero_grad", "0: Linear", "1: ReLU", "2: Linear", "3: ReLU", "4: Linear",
        "cross_entropy", "backward", "optimizer step"], r.stdout
    launches = int(re.search(r"launches per step: (\d+)", r.stdout).group(1))
    # 8 GEMMs, 1 split-K sum, 2 ReLUs, 2 ReLU gradients, 3 bias gradients, cross-entropy's
    # forward, its sum, the seed and its backward, and one SGD launch for all six
    # parameters: 21 (40 before)
    assert launches <= 21, r.stdout


# --------------------------------------------------------------------------- direct copies

class _FakeCopies:
    """Device memory that is really host memory: `cuMemcpyHtoD`/`cuMemcpyDtoH` move bytes
    between addresses, as the driver would; `corrupt` flips what DtoH delivers, `fail`
    makes every call raise as a driver error would."""

    def __init__(self, corrupt: bool = False, fail: bool = False):
        self.calls = []
        self.corrupt = corrupt
        self.fail = fail

    def _copy(self, name, dst, src, n):
        if self.fail:
            raise RuntimeError("CUDA_ERROR_INVALID_CONTEXT")
        self.calls.append(name)
        ctypes.memmove(dst, src, n)
        if self.corrupt and name == "cuMemcpyDtoH":
            ctypes.memset(dst, 0x3F, 1)

    def cuMemcpyHtoD(self, dst, src, n):
        self._copy("cuMemcpyHtoD", dst, src, n)

    def cuMemcpyDtoH(self, dst, src, n):
        self._copy("cuMemcpyDtoH", dst, src, n)


@pytest.fixture
def copies(monkeypatch):
    """Direct copies against _FakeCopies (installed as `copies.driver`), numba-cuda's copies
    replaced by byte moves that are counted in `copies.numba`."""
    memory = []  # host buffers that stand for device blocks (kept alive)

    def raw(self, size):
        buf = np.zeros(size, np.uint8)
        memory.append(buf)
        return buf.ctypes.data, buf.ctypes.data

    class State:
        numba = []
        driver = _FakeCopies()

    def numba_up(v, a):
        State.numba.append("up")
        ctypes.memmove(v.ptr, np.ascontiguousarray(a).ctypes.data, a.nbytes)

    def numba_down(v, a):
        State.numba.append("down")
        ctypes.memmove(a.ctypes.data, v.ptr, a.nbytes)

    monkeypatch.setattr(R.CachingAllocator, "_raw", raw)
    monkeypatch.setattr(R.CachingAllocator, "_free_raw", lambda self, mem: None)
    monkeypatch.setattr(R.cuda, "current_context", lambda: None)
    monkeypatch.setattr(R, "_numba_upload", numba_up)
    monkeypatch.setattr(R, "_numba_download", numba_down)
    monkeypatch.setattr(R, "_driver", lambda: State.driver)
    monkeypatch.setattr(R, "copies", {"direct": True, "checked": False, "why_off": None,
                                      "count": 0})
    return State


def _device(dtype, n):
    dt = np.dtype(dtype)
    blk = R.ALLOCATOR.allocate(max(n, 1) * dt.itemsize)
    return blk, R.view(blk, 0, (n,), (dt.itemsize,), dt)


def _there_and_back(v, a) -> None:
    """Upload `a` into view `v`, download it again, and require the same values."""
    R.upload(v, a)
    got = np.empty_like(a)
    R.download(v, got)
    np.testing.assert_array_equal(got, a)


def test_copies_go_direct_after_the_round_trip_check(copies, rng):
    blk, v = _device(np.float32, 37)
    _there_and_back(v, rng.standard_normal(37).astype(np.float32))
    assert R.copies["checked"] and R.copies["direct"] and R.copies["count"] == 2
    # the check itself ran one copy each way through numba-cuda and through the driver,
    # then the two copies above went straight to the driver
    assert copies.numba == ["up", "down"]
    assert copies.driver.calls == ["cuMemcpyDtoH", "cuMemcpyHtoD", "cuMemcpyHtoD",
                                   "cuMemcpyDtoH"]


def test_a_check_that_reads_wrong_bytes_turns_direct_copies_off(copies, rng):
    copies.driver = _FakeCopies(corrupt=True)
    blk, v = _device(np.float64, 5)
    a = rng.standard_normal(5)
    with pytest.warns(RuntimeWarning, match="direct host/device copies failed"):
        R.upload(v, a)
    assert not R.copies["direct"] and "expected" in R.copies["why_off"]
    got = np.empty(5)
    R.download(v, got)
    np.testing.assert_array_equal(got, a)
    assert copies.numba[-2:] == ["up", "down"] and R.copies["count"] == 0


def test_a_refused_copy_is_made_again_through_numba_cuda(copies, rng):
    blk, v = _device(np.int64, 9)
    R.upload(v, np.arange(9))  # passes the check and copies directly
    copies.driver.fail = True
    a = rng.integers(-50, 50, 9)
    R.upload(v, a)
    got = np.empty(9, np.int64)
    R.download(v, got)
    np.testing.assert_array_equal(got, a)
    assert copies.numba[-2:] == ["up", "down"] and R.copies["direct"]


def test_copies_the_driver_cannot_make_in_one_call_take_numba_cudas_path(copies):
    blk, v = _device(np.float64, 6)
    R.upload(v, np.zeros(6))  # (the check, then one direct copy)
    n0, d0 = len(copies.numba), len(copies.driver.calls)
    R.upload(v, np.arange(12.0)[::2])  # not contiguous
    R.upload(v, np.arange(6, dtype=np.float32))  # another dtype
    ro = np.empty(6)
    ro.flags.writeable = False
    R.download(v, ro)  # a read-only destination
    assert copies.numba[n0:] == ["up", "up", "down"]
    _, e = _device(np.float64, 0)
    R.upload(e, np.empty(0))  # nothing to move: no call at all
    R.download(e, np.empty(0))
    assert copies.numba[n0:] == ["up", "up", "down"]
    assert len(copies.driver.calls) == d0 and R.copies["count"] == 1


def test_a_copy_during_the_check_waits_for_its_verdict(copies, monkeypatch):
    import threading
    import time

    copies.driver = _FakeCopies(corrupt=True)
    in_check = threading.Event()
    real_up = R._numba_upload

    def slow_up(v, a):  # the check's first copy, slow enough for another thread to arrive
        in_check.set()
        time.sleep(0.3)
        real_up(v, a)

    monkeypatch.setattr(R, "_numba_upload", slow_up)
    blk, v = _device(np.float64, 8)
    ctypes.memmove(v.ptr, np.arange(8.0).ctypes.data, 64)
    other, w = _device(np.float64, 8)
    with pytest.warns(RuntimeWarning):
        t = threading.Thread(target=lambda: R.upload(w, np.ones(8)))
        t.start()
        in_check.wait()
        got = np.empty(8)
        R.download(v, got)  # must not copy directly before the check has failed
        t.join()
    np.testing.assert_array_equal(got, np.arange(8.0))
    assert not R.copies["direct"] and R.copies["count"] == 0


def test_numba_setting_keeps_every_copy_on_numba_cuda(copies, rng):
    R.copies["direct"] = False  # (what JITGRAD_CUDA_COPY=numba sets at import)
    blk, v = _device(np.float32, 4)
    _there_and_back(v, rng.standard_normal(4).astype(np.float32))
    assert copies.numba == ["up", "down"] and copies.driver.calls == []
