"""The CUDA runtime under jitgrad's GPU backend: the numba-cuda import, launch configuration,
the caching allocator and host/device transfers.

This module is imported only when a CUDA tensor is first asked for (``jitgrad.cuda`` loads it
lazily), so ``import jitgrad`` never touches the GPU stack. With ``NUMBA_ENABLE_CUDASIM=1``
numba-cuda runs kernels in its CPU simulator: device memory is then host memory and every
kernel and the whole device plumbing run unchanged, slowly (tiny shapes only).
"""

from __future__ import annotations

import math
import operator
import os
import threading
import time
import warnings
import weakref

import numpy as np

if not hasattr(np, "row_stack"):
    # numba-cuda 0.30 registers an overload for np.row_stack when its CUDA target starts;
    # numpy 2.5 removed that alias of vstack, so the first kernel compile would fail with an
    # AttributeError. Restoring the alias (the same function) before numba-cuda loads fixes it.
    np.row_stack = np.vstack

from numba import config as _config  # noqa: E402
from numba import cuda  # noqa: E402

SIM: bool = bool(_config.ENABLE_CUDASIM)


def available() -> bool:
    """Whether a CUDA device (or the simulator) can run kernels."""
    try:
        return bool(cuda.is_available())
    except Exception:  # a broken driver install reads as "not available"
        return False


def device_count() -> int:
    return len(cuda.gpus) if available() else 0


def synchronize() -> None:
    if not SIM:
        cuda.synchronize()


# --------------------------------------------------------------------------- the device itself

def _host_memory() -> tuple:
    """(free, total) bytes of host memory: the simulator's device memory is the host's."""
    page = os.sysconf("SC_PAGE_SIZE")
    return os.sysconf("SC_AVPHYS_PAGES") * page, os.sysconf("SC_PHYS_PAGES") * page


def memory_info() -> tuple:
    """(free, total) bytes of device memory, as the driver counts them."""
    if SIM:
        return _host_memory()
    free, total = cuda.current_context().get_memory_info()
    return int(free), int(total)


# get_device_properties' fields read from the driver's device attributes (CU_DEVICE_ATTRIBUTE_*)
DEVICE_ATTRIBUTES = {"multi_processor_count": "MULTIPROCESSOR_COUNT",
                     "max_threads_per_multi_processor": "MAX_THREADS_PER_MULTIPROCESSOR",
                     "warp_size": "WARP_SIZE",
                     "regs_per_multiprocessor": "MAX_REGISTERS_PER_MULTIPROCESSOR",
                     "L2_cache_size": "L2_CACHE_SIZE"}


def properties() -> dict:
    """The device's name, compute capability and sizes (jitgrad.cuda.get_device_properties)."""
    if SIM:
        return dict(name="numba-cuda simulator", major=5, minor=2,
                    total_memory=_host_memory()[1], multi_processor_count=1,
                    max_threads_per_multi_processor=2048, warp_size=32,
                    regs_per_multiprocessor=65536, L2_cache_size=0)
    dev = cuda.get_current_device()
    name = dev.name
    major, minor = dev.compute_capability
    out = dict(name=name.decode() if isinstance(name, bytes) else str(name), major=major,
               minor=minor, total_memory=memory_info()[1])
    for field, attr in DEVICE_ATTRIBUTES.items():
        out[field] = int(getattr(dev, attr))
    return out


_PINNED: dict = {}  # id -> weak reference, of host arrays made in page-locked memory


def pinned_copy(a: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of host array `a` in page-locked memory (the driver copies it to
    and from the device without staging it); the memory is unlocked when the copy dies."""
    # (an empty array locks no memory: the driver refuses a request for 0 bytes)
    out = cuda.pinned_array(a.shape, a.dtype) if a.size else np.empty(a.shape, a.dtype)
    out[...] = a
    key = id(out)
    _PINNED[key] = weakref.ref(out, lambda _, key=key: _PINNED.pop(key, None))
    return out


def is_pinned(a: np.ndarray) -> bool:
    """Whether host array `a` (or an array it views) lives in page-locked memory."""
    while isinstance(a, np.ndarray):
        ref = _PINNED.get(id(a))
        if ref is not None and ref() is a:
            return True
        a = a.base
    return False


class Event:
    """A point in the stream of queued work (the default stream, which every jitgrad kernel
    and copy takes). The simulator runs each kernel to its end when it is launched, so there
    an event's time is the host's clock when it is recorded."""

    def __init__(self, timing: bool):
        self._ev = None if SIM else cuda.event(timing=timing)
        self._t = None

    def record(self) -> None:
        if SIM:
            self._t = time.perf_counter()
        else:
            self._ev.record(0)

    def query(self) -> bool:
        return True if SIM else bool(self._ev.query())

    def synchronize(self) -> None:
        if not SIM:
            self._ev.synchronize()

    def elapsed_ms(self, end: "Event") -> float:
        if SIM:
            return (end._t - self._t) * 1e3
        return float(cuda.event_elapsed_time(self._ev, end._ev))


# --------------------------------------------------------------------------- launch sizes

_props: dict = {}


def _device_props() -> dict:
    """Block size and the most blocks worth launching, from the device's properties. The
    simulator runs one Python thread per CUDA thread, so it gets small blocks and grids
    (kernels use grid-stride loops and stay correct for any size)."""
    if not _props:
        if SIM:
            _props.update(block=4, max_blocks=1, warp=32, sms=1)
        else:
            dev = cuda.get_current_device()
            sms = dev.MULTIPROCESSOR_COUNT
            _props.update(block=256, max_blocks=sms * 32, warp=dev.WARP_SIZE, sms=sms)
    return _props


def config(n: int, block: int | None = None) -> tuple:
    """(grid, block) for a grid-stride kernel over n items."""
    p = _device_props()
    b = block or p["block"]
    g = (n + b - 1) // b
    mb = p["max_blocks"]
    return (g if g < mb else mb) or 1, b


def block_size() -> int:
    return _device_props()["block"]


def max_threads() -> int:
    """Threads resident on the whole device at once (the simulator: a handful)."""
    p = _device_props()
    return p["sms"] * 2048 if not SIM else 16


def blocks(n: int) -> int:
    """Grid size for a kernel that gives each of n items (rows, outputs) a block of its own,
    looping over items beyond the grid."""
    return config(n * block_size())[0]


# --------------------------------------------------------------------------- memory

def _round(nbytes: int) -> int:
    """Size class of an allocation: 512-byte steps up to 1 MiB, then 1 MiB steps (a training
    loop asks for the same sizes every step, so exact classes are reused)."""
    if nbytes <= 0:
        return 512
    if nbytes < (1 << 20):
        return (nbytes + 511) & ~511
    return (nbytes + (1 << 20) - 1) & ~((1 << 20) - 1)


class Block:
    """One device allocation of `size` bytes at device address `ptr`. When the last array
    using it goes away it returns to the allocator's free list instead of to the driver.

    On a GPU the memory comes straight from the driver and a block holds plain integers, so
    returning it is safe even when the garbage collector frees a block inside a reference
    cycle. (numba-cuda's own allocations free their memory from a weakref callback, which the
    collector runs before a ``__del__``: a block holding one could hand freed memory back to
    the free list.) Under the simulator `mem` is the host array that stands in for it."""

    __slots__ = ("mem", "size", "ptr", "__weakref__")

    def __init__(self, mem, size: int, ptr: int):
        self.mem = mem
        self.size = size
        self.ptr = ptr

    def __del__(self):
        try:
            ALLOCATOR.release(self)
        except Exception:  # interpreter shutdown: the allocator may already be gone
            pass


_CTX: list = []  # the CUDA context jitgrad's memory lives in, once the first block is made


class CachingAllocator:
    """Free lists of device blocks by size class. Steady-state training reuses blocks and
    never calls the driver; ``empty_cache()`` hands the cached blocks back."""

    def __init__(self):
        self._free: dict[int, list] = {}
        self.allocated = 0  # bytes in blocks that arrays use
        self.reserved = 0  # bytes held from the driver (used + cached)
        self.peak = 0
        self.peak_reserved = 0
        self.driver_allocs = 0

    def _raw(self, size: int) -> tuple:
        """(memory, its address) fresh from the driver. On a GPU the memory is the device
        address itself: jitgrad, not numba-cuda's memory manager, owns it."""
        if SIM:
            mem = np.empty(size, dtype=np.uint8)
            self.driver_allocs += 1
            return mem, mem.ctypes.data
        from numba.cuda.cudadrv.driver import CudaAPIError, binding, driver

        ctx = cuda.current_context()  # also makes the context current in this thread
        if not _CTX:
            _CTX.append(ctx)
        try:
            ptr = driver.cuMemAlloc(size)
        except CudaAPIError as e:
            if e.code != binding.CUresult.CUDA_ERROR_OUT_OF_MEMORY:
                raise
            ctx.deallocations.clear()  # numba-cuda's own deferred frees, then once more
            ptr = driver.cuMemAlloc(size)
        p = int(ptr)
        self.driver_allocs += 1  # (successful calls only)
        return p, p

    def _free_raw(self, mem) -> None:
        if not SIM:
            from numba.cuda.cudadrv.driver import binding, driver

            driver.cuMemFree(binding.CUdeviceptr(mem))

    def allocate(self, nbytes: int) -> Block:
        size = _round(nbytes)
        lst = self._free.get(size)
        if lst:
            mem, ptr = lst.pop()
        else:
            try:
                mem, ptr = self._raw(size)
            except Exception as e:  # out of memory: give the cache back and try once more
                if not self._free:
                    raise
                self.empty_cache()
                try:
                    mem, ptr = self._raw(size)
                except Exception:
                    raise RuntimeError(
                        f"CUDA out of memory: tried to allocate {size} bytes with "
                        f"{self.allocated} bytes in use") from e
            self.reserved += size
            if self.reserved > self.peak_reserved:
                self.peak_reserved = self.reserved
        self.allocated += size
        if self.allocated > self.peak:
            self.peak = self.allocated
        return Block(mem, size, ptr)

    def release(self, block: Block) -> None:
        mem = block.mem
        if mem is None:
            return
        block.mem = None
        self.allocated -= block.size
        self._free.setdefault(block.size, []).append((mem, block.ptr))

    def empty_cache(self) -> None:
        if not self._free:
            return
        synchronize()  # kernels still queued may use a block that is already free
        for size, lst in self._free.items():
            self.reserved -= size * len(lst)
            for mem, _ in lst:
                self._free_raw(mem)
        self._free.clear()


ALLOCATOR = CachingAllocator()


# --------------------------------------------------------------------------- kernel views

if SIM:
    def view(block: Block, offset: int, shape: tuple, strides: tuple, dtype):
        """The array a kernel receives for the elements at `offset` (bytes) of `block` laid
        out by `shape` and `strides` (bytes, possibly 0 or negative)."""
        return np.ndarray(shape, dtype=dtype, buffer=block.mem, offset=offset, strides=strides)

    def flat_view(block: Block, offset: int, n: int, dtype: np.dtype):
        """view() of n contiguous elements (dtype: a numpy dtype)."""
        return np.ndarray((n,), dtype=dtype, buffer=block.mem, offset=offset)

    def address(v) -> int:
        """The address of a kernel view's first element (its alignment picks kernels)."""
        return v.ctypes.data
else:
    from numba.cuda.cudadrv.devicearray import DeviceNDArray
    from numba.cuda.cudadrv.driver import MemoryPointer
    from numba.cuda.cudadrv.driver import binding as _binding

    CUdeviceptr = _binding.CUdeviceptr

    class KArg:
        """A kernel argument on the GPU: the elements at device address `ptr` laid out by
        `shape` and byte `strides`, with what a launch marshals (``vals``: numba-cuda's
        flattened array parameters) worked out once. numba-cuda's own array object costs
        microseconds to build, so it is made only when a launch or copy goes through
        numba-cuda (``dev()``). The block stays alive as long as the argument does."""

        __slots__ = ("block", "ptr", "shape", "strides", "dtype", "key", "vals", "_dev")

        def __init__(self, block: Block, offset: int, shape: tuple, strides: tuple, dtype):
            dtype = np.dtype(dtype)
            self.block = block
            self.ptr = ptr = block.ptr + offset
            self.shape = shape
            self.strides = strides
            self.dtype = dtype
            n = 1
            for d in shape:
                n *= d
            isz = dtype.itemsize
            # the direct launch path handles 1-D contiguous arguments (every family's
            # kernels take those); anything else has no key and goes through numba-cuda
            self.key = (dtype, 1) if len(shape) == 1 and strides[0] == isz else None
            # an empty array's data address is 0, as numba-cuda passes it
            self.vals = (0, 0, n, isz, ptr if n else 0, *shape, *strides)
            self._dev = None

        def dev(self):
            """numba-cuda's device array for this argument (made once). Its memory pointer
            names the block as its owner, so numba-cuda never frees it and the block lives
            as long as the array does."""
            d = self._dev
            if d is None:
                b = self.block
                mp = MemoryPointer(_CTX[0] if _CTX else None, CUdeviceptr(self.ptr),
                                   b.size - (self.ptr - b.ptr), owner=b)
                d = self._dev = DeviceNDArray(self.shape, self.strides, self.dtype,
                                              gpu_data=mp)
            return d

    def view(block: Block, offset: int, shape: tuple, strides: tuple, dtype):
        """The array a kernel receives for the elements at `offset` (bytes) of `block` laid
        out by `shape` and `strides` (bytes, possibly 0 or negative)."""
        return KArg(block, offset, tuple(shape), tuple(strides), dtype)

    _new = object.__new__
    _FLAT_KEYS: dict = {}

    # address(v): the device address of a kernel view's first element (its alignment picks
    # kernels), read without a Python call
    address = operator.attrgetter("ptr")

    def flat_view(block: Block, offset: int, n: int, dtype: np.dtype):
        """view() of n contiguous elements (dtype: a numpy dtype): the kernel argument
        almost every launch passes, built without KArg's general path."""
        k = _new(KArg)
        k.block = block
        k.ptr = ptr = block.ptr + offset
        k.shape = (n,)
        k.strides = (isz,) = (dtype.itemsize,)
        k.dtype = dtype
        key = _FLAT_KEYS.get(dtype)
        if key is None:
            key = _FLAT_KEYS[dtype] = (dtype, 1)
        k.key = key
        k.vals = (0, 0, n, isz, ptr if n else 0, n, isz)
        k._dev = None
        return k


# --------------------------------------------------------------------------- transfers
# numba-cuda copies through a device-array object (``dev()``, tens of microseconds to build
# and check); a kernel view already knows its device address, so a copy can be the single
# driver call that numba-cuda ends in: cuMemcpyHtoD / cuMemcpyDtoH with integer addresses,
# through numba-cuda's own error-checked driver object. Before the first such copy, a check
# round-trips data both ways between the two paths; if anything differs or raises, direct
# copies are off for the process (with a warning) and every copy goes through numba-cuda.
# A direct copy the driver refuses (a thread without a current context, say) is made again
# through numba-cuda, which reports any real error in its own words.
# JITGRAD_CUDA_COPY=numba keeps every copy on numba-cuda's path.

_NUMBA_COPIES = os.environ.get("JITGRAD_CUDA_COPY", "direct") == "numba"
copies = {"direct": not SIM and not _NUMBA_COPIES, "checked": False, "count": 0,
          "why_off": ("the simulator has no driver" if SIM else
                      "JITGRAD_CUDA_COPY=numba" if _NUMBA_COPIES else None)}
_copy_lock = threading.Lock()


def _numba_upload(dst_view, src: np.ndarray) -> None:
    dst_view.dev().copy_to_device(src.reshape(dst_view.shape))


def _numba_download(src_view, dst: np.ndarray) -> None:
    src_view.dev().copy_to_host(dst.reshape(src_view.shape))


def _driver():
    from numba.cuda.cudadrv.driver import driver

    return driver


def _direct(fn: str, dst: int, src: int, nbytes: int) -> bool:
    """One direct copy of `nbytes` (True), or False when it is off or the driver refused."""
    if not copies["checked"]:
        _check_copies()
    if not copies["direct"]:
        return False
    try:
        getattr(_driver(), fn)(dst, src, nbytes)
    except Exception:  # noqa: BLE001 - numba-cuda's path repeats the copy
        return False
    copies["count"] += 1
    return True


def _check_copies() -> None:
    """Round-trip known bytes through the direct copies and numba-cuda's (once). A thread
    that copies meanwhile waits here for the verdict: "checked" is set only after it."""
    with _copy_lock:
        if copies["checked"]:
            return
        try:
            _round_trip()
        finally:
            copies["checked"] = True


def _round_trip() -> None:
    if copies["direct"]:
        try:
            cuda.current_context()  # (the driver calls need one current in this thread)
            blk = ALLOCATOR.allocate(64)
            v = view(blk, 0, (8,), (8,), np.dtype(np.float64))
            a = np.arange(1.0, 9.0) * 1.25
            b = -np.arange(8.0) - 0.5
            got = np.zeros(8)
            _numba_upload(v, a)
            drv = _driver()
            drv.cuMemcpyDtoH(got.ctypes.data, v.ptr, 64)
            back = np.zeros(8)
            drv.cuMemcpyHtoD(v.ptr, b.ctypes.data, 64)
            _numba_download(v, back)
            if not (np.array_equal(got, a) and np.array_equal(back, b)):
                raise RuntimeError(f"read {got.tolist()} and {back.tolist()}, expected "
                                   f"{a.tolist()} and {b.tolist()}")
        except Exception as e:  # noqa: BLE001 - any failure turns direct copies off
            copies["direct"] = False
            copies["why_off"] = f"{type(e).__name__}: {e}"
            warnings.warn("jitgrad: direct host/device copies failed their self-check "
                          f"({copies['why_off']}); every copy goes through numba-cuda",
                          RuntimeWarning, stacklevel=5)


def _flat_bytes(v, a: np.ndarray) -> int:
    """The bytes a direct copy between kernel view `v` and host array `a` moves, or -1 when
    it cannot make it: `v` must be 1-D contiguous and `a` C-contiguous, of v's dtype and
    size."""
    if v.key is None or a.dtype != v.dtype or not a.flags.c_contiguous or a.size != v.shape[0]:
        return -1
    return a.nbytes


def upload(dst_view, src: np.ndarray) -> None:
    """Copy a contiguous host array into a contiguous kernel view of the same size."""
    if SIM:
        dst_view[...] = src.reshape(dst_view.shape)
        return
    n = _flat_bytes(dst_view, src)
    if n == 0 or n > 0 and _direct("cuMemcpyHtoD", dst_view.ptr, src.ctypes.data, n):
        return
    _numba_upload(dst_view, src)


def download(src_view, dst: np.ndarray) -> None:
    """Copy a contiguous kernel view into a contiguous host array of the same size (the
    copy waits for the kernels queued before it)."""
    if SIM:
        dst[...] = src_view.reshape(dst.shape)
        return
    n = _flat_bytes(src_view, dst) if dst.flags.writeable else -1
    if n == 0 or n > 0 and _direct("cuMemcpyDtoH", dst.ctypes.data, src_view.ptr, n):
        return
    _numba_download(src_view, dst)


def vec(T):
    """Numba's type of a contiguous 1-D array of scalar type T: how every kernel receives its
    array operands (the families' ptx_checks describe their kernels with it)."""
    from numba import types

    return types.Array(T, 1, "C")


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


__all__ = ["SIM", "ALLOCATOR", "available", "device_count", "synchronize", "config",
           "block_size", "view", "flat_view", "upload", "download", "cuda", "math", "ceil_div"]
