"""``jitgrad.cuda``: the GPU device, through numba-cuda.

Nothing here imports numba-cuda until it is needed: the first CUDA tensor, or a call such as
``is_available()``. Without numba-cuda, or without a GPU (and without the simulator that
``NUMBA_ENABLE_CUDASIM=1`` selects), asking for the device raises one RuntimeError that says
why.
"""

from __future__ import annotations

_state: dict = {}


def _backend():
    """The CUDA kernel namespace, imported and registered with the op layer on first use."""
    K = _state.get("backend")
    if K is not None:
        return K
    err = _state.get("error")
    if err is None:
        try:
            from ..kernels import cuda as K
        except ImportError as e:
            err = (f"jitgrad: device 'cuda' is not available: numba-cuda is not installed "
                   f"({e}); install jitgrad[cuda]")
        else:
            if not K.runtime.available():
                err = ("jitgrad: device 'cuda' is not available: no CUDA GPU or driver was "
                       "found (NUMBA_ENABLE_CUDASIM=1 runs the CUDA kernels in numba-cuda's "
                       "simulator)")
        if err is None:
            from .. import _ops

            _ops._BACKENDS[K.storage] = K
            _state["backend"] = K
            return K
        _state["error"] = err
    raise RuntimeError(err)


def is_available() -> bool:
    try:
        _backend()
    except RuntimeError:
        return False
    return True


def device_count() -> int:
    """1 with a GPU (jitgrad drives one, cuda:0, however many the machine has), else 0."""
    return min(1, _backend().runtime.device_count()) if is_available() else 0


def current_device() -> int:
    _backend()
    return 0


def get_device_name(device=None) -> str:
    return get_device_properties(device).name


def synchronize(device=None) -> None:
    """Wait until every kernel launched so far has finished."""
    _backend().runtime.synchronize()


def memory_allocated(device=None) -> int:
    """Bytes of device memory held by tensors (in allocator blocks)."""
    return _backend().runtime.ALLOCATOR.allocated if "backend" in _state else 0


def max_memory_allocated(device=None) -> int:
    return _backend().runtime.ALLOCATOR.peak if "backend" in _state else 0


def reset_peak_memory_stats(device=None) -> None:
    A = _backend().runtime.ALLOCATOR
    A.peak = A.allocated
    A.peak_reserved = A.reserved


def memory_reserved(device=None) -> int:
    """Bytes held from the driver: in use plus cached by the allocator."""
    return _backend().runtime.ALLOCATOR.reserved if "backend" in _state else 0


def max_memory_reserved(device=None) -> int:
    """The most bytes held from the driver at once since start (or the last
    ``reset_peak_memory_stats()``)."""
    return _backend().runtime.ALLOCATOR.peak_reserved if "backend" in _state else 0


def memory_stats(device=None) -> dict:
    """The allocator's counts under torch's keys: bytes in use and held from the driver,
    now and at their peak, and how many times the driver's allocator was called."""
    if "backend" not in _state:
        return {}
    A = _backend().runtime.ALLOCATOR
    return {"allocated_bytes.all.current": A.allocated, "allocated_bytes.all.peak": A.peak,
            "reserved_bytes.all.current": A.reserved,
            "reserved_bytes.all.peak": A.peak_reserved,
            "num_device_alloc": A.driver_allocs}


def empty_cache() -> None:
    """Hand the allocator's cached, unused blocks back to the driver."""
    if "backend" in _state:
        _state["backend"].runtime.ALLOCATOR.empty_cache()


def is_initialized() -> bool:
    """Whether the GPU has been set up for work: by ``init()``, or by the first device
    memory jitgrad took (``is_available()`` alone does not)."""
    return "backend" in _state and bool(
        _state.get("init") or _state["backend"].runtime.ALLOCATOR.driver_allocs)


def init() -> None:
    """Set the GPU up now (it sets itself up on first use); raises if there is none."""
    _backend()
    _state["init"] = True


def _index(device) -> int:
    """The GPU a `device` argument names (None: the current one), checked: jitgrad drives
    one GPU, cuda:0."""
    from .._device import device as _device, to_device

    if device is None:
        _backend()
        return 0
    if isinstance(device, int) and not isinstance(device, bool):
        _backend()  # (without a GPU: the one error that says why)
        if device >= device_count():
            raise AssertionError("Invalid device id")  # torch's words for an index
        device = _device("cuda", device)
    d = _device(device)
    if d.type != "cuda":
        raise ValueError(f"Expected a cuda device, but got: {d}")
    to_device(d)  # loads the backend; an index other than 0 raises
    return 0


def set_device(device) -> None:
    """Select the GPU (only cuda:0 exists for jitgrad: any other index raises; a negative
    one does nothing, as in torch)."""
    if isinstance(device, int) and not isinstance(device, bool):
        if device < 0:
            return
        device = f"cuda:{device}"  # (another index: the driver's "invalid device ordinal")
    _index(device)


class device:
    """``with jitgrad.cuda.device(0):``: selects the GPU for the block (only cuda:0)."""

    def __init__(self, device):
        self.idx = -1 if device is None or device == -1 else _index(device)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> bool:
        return False


class _CudaDeviceProperties:
    """What ``get_device_properties`` reports, under torch's attribute names."""

    def __init__(self, props: dict):
        self.__dict__.update(props)

    def __repr__(self) -> str:
        return (f"_CudaDeviceProperties(name='{self.name}', major={self.major}, "
                f"minor={self.minor}, total_memory={self.total_memory // 2 ** 20}MB, "
                f"multi_processor_count={self.multi_processor_count}, "
                f"L2_cache_size={self.L2_cache_size // 2 ** 20}MB)")


def get_device_properties(device=None) -> _CudaDeviceProperties:
    """The GPU's name, compute capability (major, minor), total_memory (bytes),
    multi_processor_count, max_threads_per_multi_processor, warp_size,
    regs_per_multiprocessor and L2_cache_size (bytes)."""
    _index(device)
    return _CudaDeviceProperties(_backend().runtime.properties())


def get_device_capability(device=None) -> tuple:
    """The GPU's compute capability as (major, minor)."""
    p = get_device_properties(device)
    return p.major, p.minor


def mem_get_info(device=None) -> tuple:
    """(free, total) bytes of device memory as the driver counts them (the allocator's
    cached blocks count as used: ``empty_cache()`` hands them back)."""
    _index(device)
    return _backend().runtime.memory_info()


def _rng():
    from .. import _random

    return _random.default_generator


def manual_seed(seed: int) -> None:
    """Seed the generator CUDA tensors draw from. Random CUDA tensors are drawn on the host
    and copied over, from jitgrad's one generator, so this seeds that generator (as
    ``jitgrad.manual_seed`` does): a CUDA tensor then gets the numbers a CPU tensor would."""
    _rng().manual_seed(seed)


manual_seed_all = manual_seed  # (one generator serves every device)


def seed() -> None:
    """Seed the generator CUDA tensors draw from with a random number (see manual_seed)."""
    _rng().seed()


seed_all = seed


def initial_seed() -> int:
    """The seed of the generator CUDA tensors draw from (see manual_seed)."""
    return _rng().initial_seed()


def get_rng_state(device="cuda"):
    """The state of the generator CUDA tensors draw from (see manual_seed), as a uint8
    tensor on the CPU."""
    from .. import get_rng_state

    return get_rng_state()


def set_rng_state(new_state, device="cuda") -> None:
    from .. import set_rng_state

    set_rng_state(new_state)


def get_rng_state_all() -> list:
    return [get_rng_state()]


def set_rng_state_all(new_states) -> None:
    for st in new_states:
        set_rng_state(st)


# --------------------------------------------------------------------------- events, streams

class Event:
    """A marker in the GPU's queue of work: ``record()`` queues it, ``query()`` says whether
    the work before it has finished, ``synchronize()`` waits for that, and
    ``start.elapsed_time(end)`` gives the milliseconds between two recorded timing events
    (``enable_timing=True``), as the GPU measured them."""

    def __init__(self, enable_timing: bool = False, blocking: bool = False,
                 interprocess: bool = False):
        if interprocess:
            raise NotImplementedError("jitgrad.cuda.Event: interprocess events are not "
                                      "supported")
        self.enable_timing = bool(enable_timing)
        self._ev = None  # made on first record (which loads the GPU backend)

    def record(self, stream=None) -> None:
        if self._ev is None:
            self._ev = _backend().runtime.Event(self.enable_timing)
        self._ev.record()

    def query(self) -> bool:
        return True if self._ev is None else self._ev.query()

    def synchronize(self) -> None:
        if self._ev is not None:
            self._ev.synchronize()

    def wait(self, stream=None) -> None:
        """Make `stream` wait for this event: jitgrad queues all work on one stream, in
        order, so nothing is needed."""

    def elapsed_time(self, end_event: "Event") -> float:
        if not (self.enable_timing and end_event.enable_timing):
            raise ValueError("Both events must be created with argument "
                             "'enable_timing=True'.")
        if self._ev is None or end_event._ev is None:
            raise ValueError("Both events must be recorded before calculating elapsed time.")
        if not (self.query() and end_event.query()):
            raise RuntimeError("Both events must be completed before calculating elapsed "
                               "time.")
        return self._ev.elapsed_ms(end_event._ev)

    def __repr__(self) -> str:
        return f"<jitgrad.cuda.Event {'recorded' if self._ev is not None else 'uninitialized'}>"


class Stream:
    """A queue of GPU work. jitgrad queues every kernel and copy on one stream (the
    device's default stream), in program order; a Stream stands for that queue, so work
    inside ``with jitgrad.cuda.stream(s):`` runs there too. Results are those of any
    order torch's streams allow; what is lost is overlap between streams."""

    def __init__(self, device=None, priority: int = 0):
        self.device = f"cuda:{_index(device)}"
        self.priority = priority

    def synchronize(self) -> None:
        synchronize()

    def query(self) -> bool:
        ev = Event()
        ev.record()
        return ev.query()

    def record_event(self, event: Event | None = None) -> Event:
        event = event if event is not None else Event()
        event.record(self)
        return event

    def wait_event(self, event: Event) -> None:
        """Nothing to do: the one stream already runs the event's work first."""

    def wait_stream(self, stream: "Stream") -> None:
        """Nothing to do: the one stream already runs the other's work first."""

    def __eq__(self, other) -> bool:
        return isinstance(other, Stream)

    def __hash__(self) -> int:
        return hash(Stream)

    def __repr__(self) -> str:
        return f"<jitgrad.cuda.Stream device={self.device} (the default stream)>"


def current_stream(device=None) -> Stream:
    return Stream(device)


def default_stream(device=None) -> Stream:
    return Stream(device)


class stream:
    """``with jitgrad.cuda.stream(s):`` (see Stream: the work still joins the one queue)."""

    def __init__(self, stream: Stream | None):
        if stream is not None and not isinstance(stream, Stream):
            raise TypeError(f"expected a jitgrad.cuda.Stream, got {type(stream).__name__}")
        self.stream = stream

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc) -> bool:
        return False
