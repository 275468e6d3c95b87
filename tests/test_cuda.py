"""The CUDA device: the lazy entry, the one error when it is unavailable, the numba-cuda /
numpy 2.5 workaround, moving tensors and gradients between devices, same-device checks, the
caching allocator, op-by-op agreement of CPU and CUDA, and compilation of every CUDA kernel
for a real GPU.

Tests that need the device run when ``jitgrad.cuda.is_available()``: on a GPU, or in CI under
``NUMBA_ENABLE_CUDASIM=1`` (numba-cuda's simulator; tiny shapes only).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import jitgrad
from op_table import ROWS

HAS_NUMBA_CUDA = importlib.util.find_spec("numba_cuda") is not None
needs_cuda = pytest.mark.skipif(not jitgrad.cuda.is_available() if HAS_NUMBA_CUDA else True,
                                reason="no CUDA device (set NUMBA_ENABLE_CUDASIM=1 to simulate)")


def _run(code: str, sim: bool | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if sim is False:
        env.pop("NUMBA_ENABLE_CUDASIM", None)
    elif sim:
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=300)


# --------------------------------------------------------------------------- the lazy entry

def test_import_never_loads_the_gpu_stack():
    r = _run("""
        import sys
        import jitgrad
        x = jitgrad.randn(3, requires_grad=True)
        (x * x).sum().backward()
        jitgrad.backends.cudnn.benchmark = True  # torch's switches never load the GPU stack
        jitgrad.backends.cuda.is_built(), jitgrad.cuda.is_initialized(), x.is_pinned()
        jitgrad.set_float32_matmul_precision("high")
        print(sorted(m for m in sys.modules if m.startswith(("numba.cuda", "numba_cuda",
                                                             "jitgrad.kernels.cuda"))))
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_one_clear_error_without_numba_cuda():
    r = _run("""
        import sys
        sys.modules["numba.cuda"] = None  # as if numba-cuda were not installed
        import jitgrad
        assert jitgrad.cuda.is_available() is False
        for make in (lambda: jitgrad.zeros(2, device="cuda"),
                     lambda: jitgrad.ones(2).cuda(), lambda: jitgrad.ones(2).to("cuda:0")):
            try:
                make()
            except RuntimeError as e:
                print(e)
    """)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 3 and all("numba-cuda is not installed" in s for s in lines), lines


@pytest.mark.skipif(not HAS_NUMBA_CUDA, reason="numba-cuda not installed")
def test_one_clear_error_without_a_gpu():
    probe = _run("from numba import cuda; print(cuda.is_available())", sim=False)
    if probe.stdout.strip() == "True":
        pytest.skip("this machine has a GPU")
    r = _run("""
        import jitgrad
        for make in (lambda: jitgrad.randn(2, device="cuda"),
                     lambda: jitgrad.cuda.Event(enable_timing=True).record(),
                     lambda: jitgrad.cuda.Stream(), jitgrad.cuda.get_device_properties,
                     jitgrad.cuda.mem_get_info, lambda: jitgrad.ones(2).pin_memory(),
                     lambda: jitgrad.cuda.get_device_properties(0)):
            try:
                make()
            except RuntimeError as e:
                print(e)
        print(jitgrad.cuda.is_initialized(), jitgrad.ones(2).is_pinned())
    """, sim=False)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 8 and all("no CUDA GPU or driver was found" in s
                                   for s in lines[:7]), lines
    assert lines[7] == "False False"


@pytest.mark.skipif(not HAS_NUMBA_CUDA, reason="numba-cuda not installed")
def test_works_with_numpy_without_row_stack():
    # numba-cuda 0.30 overloads np.row_stack when its CUDA target loads; numpy 2.5 removed it.
    r = _run("""
        import numpy as np
        if hasattr(np, "row_stack"):
            del np.row_stack
        import jitgrad.kernels.cuda.runtime
        import numba.cuda.np.arrayobj  # the module that needs it
        print("ok")
    """, sim=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"


def _nvvm_available() -> bool:
    try:
        from cuda.pathfinder import load_nvidia_dynamic_lib

        load_nvidia_dynamic_lib("nvvm")
        load_nvidia_dynamic_lib("nvrtc")
    except Exception:  # noqa: BLE001 - any failure means "not installed"
        return False
    return True


@pytest.mark.skipif(not HAS_NUMBA_CUDA or not _nvvm_available(),
                    reason="needs numba-cuda and NVVM (pip install nvidia-nvvm nvidia-cuda-nvrtc)")
@pytest.mark.skipif(os.environ.get("NUMBA_ENABLE_CUDASIM") == "1",
                    reason="compiles for a real GPU, without the simulator: the same check as "
                           "the suite's pass without it (2 minutes)")
def test_every_cuda_kernel_compiles_for_a_gpu():
    script = os.path.join(os.path.dirname(__file__), "cuda_ptx_check.py")
    env = dict(os.environ)
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    n = max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                   else os.cpu_count() or 1))
    procs = [subprocess.Popen([sys.executable, script, f"--shard={k}/{n}"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for k in range(n)]
    deadline = time.monotonic() + 1200
    outs = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
            outs.append((p.returncode, out, err))
    finally:
        for p in procs:  # (a shard that failed or ran out of time takes none along)
            if p.poll() is None:
                p.kill()
                p.wait()
    done, digests, totals = [], set(), set()  # (done: the positions compiled)
    for rc, out, err in outs:
        assert rc == 0, out[-4000:] + err[-4000:]
        m = re.search(r"compiled (\d+) of \1 kernels \(shard \d+/\d+ of (\d+), listing (\w+)\)",
                      out)
        assert m, out[-4000:]
        done += [int(i) for i in re.findall(r"^KERNEL (\d+) ", out, re.M)]
        totals.add(int(m.group(2)))
        digests.add(m.group(3))
    # the shards listed the same kernels in the same order, and compiled each exactly once
    assert len(digests) == 1 and len(totals) == 1
    assert sorted(done) == list(range(totals.pop()))


@needs_cuda
def test_the_docs_example_runs(capsys):
    import pathlib
    import re

    text = (pathlib.Path(__file__).parent.parent / "docs" / "cuda.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    exec(compile(code, "docs/cuda.md", "exec"), {})
    assert capsys.readouterr().out.strip() == "cuda:0"


# --------------------------------------------------------------------------- moving data

@needs_cuda
def test_to_and_back_keeps_values_dtype_and_shape(rng):
    for dt in (np.float32, np.float64, np.int64, np.int32, np.uint8, np.bool_):
        a = (rng.standard_normal((3, 4)) * 5).astype(dt)
        x = jitgrad.tensor(a)
        for y in (x.cuda(), x.to("cuda"), x.to(device="cuda:0"), jitgrad.tensor(a, device="cuda")):
            assert y.device == jitgrad.device("cuda", 0) and y.is_cuda and y.dtype == x.dtype
            back = y.cpu()
            assert back.device == jitgrad.device("cpu") and not back.is_cuda
            np.testing.assert_array_equal(back.numpy(), a)
    assert jitgrad.zeros(2, 3, device="cuda").cpu().numpy().tolist() == [[0, 0, 0], [0, 0, 0]]


@needs_cuda
def test_gradients_flow_back_across_devices(rng):
    a = rng.standard_normal((3, 4)).astype(np.float32)
    x = jitgrad.tensor(a, requires_grad=True)  # a CPU leaf
    y = x.cuda()
    assert y.grad_fn.name() == "ToCopyBackward0"
    (y.tanh() * 2).sum().backward()
    assert x.grad.device == jitgrad.device("cpu")
    assert_allclose(x.grad.numpy(), 2 * (1 - np.tanh(a) ** 2), rtol=1e-5, atol=1e-6)

    w = jitgrad.tensor(a, device="cuda", requires_grad=True)  # a CUDA leaf
    (w.cpu() * 3).sum().backward()
    assert w.grad.is_cuda
    assert_allclose(w.grad.cpu().numpy(), np.full_like(a, 3))


@needs_cuda
@pytest.mark.parametrize("loss", ["cross_entropy", "cross_entropy_sum", "cross_entropy_probs",
                                  "nll_loss", "mse_loss"])
def test_a_0d_cpu_gradient_for_a_cuda_loss_moves_to_the_device(loss, rng):
    # torch takes a 0-dim CPU grad_output for a CUDA output; the loss gradients' factors are
    # then made on the loss's device
    F = jitgrad.nn.functional
    xv = rng.standard_normal((3, 4))
    tv = rng.integers(0, 4, 3)
    make = {"cross_entropy": lambda x, d: F.cross_entropy(x, jitgrad.tensor(tv, device=d)),
            "cross_entropy_sum": lambda x, d: F.cross_entropy(
                x, jitgrad.tensor(tv, device=d), reduction="sum"),
            "cross_entropy_probs": lambda x, d: F.cross_entropy(
                x, jitgrad.tensor(np.full((3, 4), 0.25), device=d)),
            "nll_loss": lambda x, d: F.nll_loss(x, jitgrad.tensor(tv, device=d)),
            "mse_loss": lambda x, d: F.mse_loss(x, jitgrad.tensor(xv[::-1].copy(), device=d))}
    grads = []
    for d in ("cpu", "cuda"):
        x = jitgrad.tensor(xv, device=d, requires_grad=True)
        make[loss](x, d).backward(jitgrad.tensor(2.5, dtype=jitgrad.float64))  # (on the CPU)
        grads.append(x.grad.cpu().numpy())
    assert_allclose(grads[1], grads[0], rtol=1e-12, atol=1e-14)


@needs_cuda
@pytest.mark.parametrize("dev, gdev", [("cpu", "cuda"), ("cuda", "cpu")])
def test_a_seed_on_another_device_moves_when_0d_else_raises_torchs_error(dev, gdev):
    x = jitgrad.tensor([1.0, 2.0], device=dev, requires_grad=True)
    (x * 3).sum().backward(jitgrad.tensor(2.0, dtype=jitgrad.float64, device=gdev))
    assert x.grad.device == x.device and x.grad.tolist() == [6.0, 6.0]
    with pytest.raises(RuntimeError, match=f"invalid gradient at index 0 - expected device "
                                           f"{x.device} but got {jitgrad.device(gdev)}"):
        jitgrad.autograd.grad(x * 3, x, jitgrad.ones(2, dtype=jitgrad.float64, device=gdev))
    assert x.grad.tolist() == [6.0, 6.0]


@needs_cuda
def test_a_mean_over_a_subnormal_weight_sum_is_divided_not_scaled_by_its_inverse():
    # 1 / 1e-310 overflows: the device's mean then sums first and divides, as the CPU does
    xv = np.array([[0.1, 0.5, -0.3], [1.0, -1.0, 0.2]])
    got = [float(jitgrad.nn.functional.cross_entropy(
        jitgrad.tensor(xv, device=d), jitgrad.tensor([2, 0], device=d),
        weight=jitgrad.tensor(np.full(3, 1e-310), device=d)).cpu()) for d in ("cpu", "cuda")]
    assert np.isfinite(got[0]) and got[1] == got[0]


@needs_cuda
def test_mixed_devices_raise_torchs_error():
    x = jitgrad.ones(2, 3, device="cuda")
    y = jitgrad.ones(2, 3)
    msg = "Expected all tensors to be on the same device, but found at least two devices"
    for op in (lambda: x + y, lambda: y * x, lambda: x @ y.t(), lambda: jitgrad.where(
            y > 0, x, x), lambda: jitgrad.maximum(x, y)):
        with pytest.raises(RuntimeError, match=msg):
            op()
    # A 0-d CPU tensor takes part as a number, as in torch.
    s = jitgrad.tensor(2.0)
    assert (x * s).is_cuda and (x * s).cpu().numpy().tolist() == [[2, 2, 2], [2, 2, 2]]


@needs_cuda
def test_host_access_is_explicit():
    x = jitgrad.arange(4.0, device="cuda")
    with pytest.raises(TypeError, match="can't convert cuda:0 device type tensor to numpy"):
        x.numpy()
    with pytest.raises(TypeError, match="can't convert cuda:0 device type tensor to numpy"):
        np.asarray(x)
    assert x.sum().item() == 6.0 and x.tolist() == [0.0, 1.0, 2.0, 3.0]
    assert repr(x) == "tensor([0., 1., 2., 3.], device='cuda:0')"
    assert jitgrad.zeros_like(x).is_cuda and jitgrad.ones_like(x, device="cpu").device.type == "cpu"
    with pytest.raises(RuntimeError, match="invalid device ordinal"):
        jitgrad.zeros(2, device="cuda:1")


# --------------------------------------------------------------------------- torch.cuda's API

def test_backend_switches_read_and_set_as_in_torch(recwarn):
    B = jitgrad.backends
    before = jitgrad.get_float32_matmul_precision()
    try:
        assert (B.cudnn.enabled, B.cudnn.benchmark, B.cudnn.deterministic,
                B.cudnn.allow_tf32) == (True, False, False, True)
        assert B.cudnn.is_available() is False and B.cudnn.version() is None
        assert B.mps.is_available() is False and B.mps.is_built() is False
        assert B.cuda.is_built() == HAS_NUMBA_CUDA
        jitgrad.set_float32_matmul_precision("highest")
        assert B.cuda.matmul.allow_tf32 is False
        # one setting under two names, as in torch
        jitgrad.set_float32_matmul_precision("medium")
        assert B.cuda.matmul.allow_tf32 is True
        B.cuda.matmul.allow_tf32 = False
        assert jitgrad.get_float32_matmul_precision() == "highest"
        B.cuda.matmul.allow_tf32 = True
        assert jitgrad.get_float32_matmul_precision() == "high"
        with pytest.raises(AttributeError, match="Unknown attribute allow_tf23"):
            B.cuda.matmul.allow_tf23 = True  # a misspelt switch is refused, as in torch
        with pytest.warns(UserWarning, match="is not one of 'highest', 'high', or 'medium'"):
            jitgrad.set_float32_matmul_precision("fastest")
        assert jitgrad.get_float32_matmul_precision() == "high"  # unchanged
        # no switch changes what a float32 product computes
        a = jitgrad.tensor(np.full((2, 3), 1 + 2.0 ** -20, np.float32))
        assert (a @ a.t()).tolist()[0][0] == np.float32(3 * (1 + 2.0 ** -20) ** 2)
    finally:
        jitgrad.set_float32_matmul_precision(before)


def test_backend_switches_default_to_torchs():
    torch = pytest.importorskip("torch")
    for name in ("enabled", "benchmark", "deterministic", "allow_tf32"):
        assert getattr(jitgrad.backends.cudnn, name) == getattr(torch.backends.cudnn, name)
    assert jitgrad.get_float32_matmul_precision() == torch.get_float32_matmul_precision()
    assert (jitgrad.backends.cuda.matmul.allow_tf32 ==
            torch.backends.cuda.matmul.allow_tf32)


def test_cuda_seeding_seeds_what_cuda_tensors_draw():
    # random CUDA tensors come from jitgrad's one generator: seeding it through
    # jitgrad.cuda must make them repeat (it did nothing once)
    state = jitgrad.get_rng_state()
    try:
        jitgrad.cuda.manual_seed(5)
        assert jitgrad.cuda.initial_seed() == 5
        a = jitgrad.randn(6).tolist()
        jitgrad.cuda.manual_seed_all(5)
        assert jitgrad.randn(6).tolist() == a
        jitgrad.cuda.manual_seed(6)
        assert jitgrad.randn(6).tolist() != a
        st = jitgrad.cuda.get_rng_state()
        b = jitgrad.rand(4).tolist()
        jitgrad.cuda.set_rng_state(st)
        assert jitgrad.rand(4).tolist() == b
        jitgrad.cuda.seed()
        assert jitgrad.cuda.initial_seed() != 6
        if jitgrad.cuda.is_available():
            jitgrad.cuda.manual_seed(5)
            assert jitgrad.randn(6, device="cuda").tolist() == a
    finally:
        jitgrad.set_rng_state(state)


@pytest.mark.skipif(not HAS_NUMBA_CUDA, reason="numba-cuda not installed")
def test_the_driver_api_the_device_functions_use_exists():
    # get_device_properties, Event and pin_memory call numba-cuda's real driver API, which
    # only a GPU runs: check here that each name they use exists in the installed stack
    r = _run("""
        from numba import cuda
        from numba.cuda.cudadrv import driver
        from jitgrad.kernels.cuda import runtime
        names = ["CU_DEVICE_ATTRIBUTE_" + a for a in runtime.DEVICE_ATTRIBUTES.values()]
        missing = [n for n in names if not hasattr(driver.binding.CUdevice_attribute, n)]
        missing += [f for f in ("event", "event_elapsed_time", "pinned_array",
                                "current_context", "get_current_device")
                    if not hasattr(cuda, f)]
        missing += [m for m in ("record", "query", "synchronize")
                    if not hasattr(driver.Event, m)]
        missing += [m for m in ("get_memory_info", "create_event")
                    if not hasattr(driver.Context, m)]
        missing += [m for m in ("compute_capability", "name")
                    if not (hasattr(driver.Device, m) or m in driver.Device.__init__.__code__.co_names)]
        print(missing)
    """, sim=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]", r.stdout


@needs_cuda
def test_device_properties_capability_and_memory_info():
    C = jitgrad.cuda
    C.init()
    assert C.is_initialized()
    p = C.get_device_properties()
    assert p.name == C.get_device_name() and f"name='{p.name}'" in repr(p)
    assert (p.major, p.minor) == C.get_device_capability() == C.get_device_capability(0)
    assert p.multi_processor_count >= 1 and p.warp_size == 32 and p.total_memory > 0
    assert p.max_threads_per_multi_processor >= 1024
    free, total = C.mem_get_info()
    assert total == p.total_memory and 0 <= free <= total
    assert C.get_device_properties("cuda:0").name == p.name
    assert C.get_device_properties(jitgrad.device("cuda", 0)).major == p.major
    with pytest.raises(ValueError, match="Expected a cuda device, but got: cpu"):
        C.get_device_properties("cpu")
    with pytest.raises(AssertionError, match="Invalid device id"):  # torch's, for an index
        C.get_device_properties(1)
    with pytest.raises(RuntimeError, match="invalid device ordinal"):
        C.get_device_properties("cuda:1")
    with pytest.raises(RuntimeError, match="invalid device ordinal"):
        C.get_device_name("cuda:1")
    for bad in (1, "cuda:1"):
        with pytest.raises(RuntimeError, match="invalid device ordinal"):
            C.set_device(bad)
    C.set_device(0)
    C.set_device(-1)  # nothing, as in torch
    assert C.device_count() == 1  # one GPU is what jitgrad drives
    with C.device(0):
        assert jitgrad.ones(2, device="cuda").device == jitgrad.device("cuda:0")
    with C.device(None):  # torch's no-op form
        pass


@needs_cuda
def test_events_time_the_gpu_queue():
    C = jitgrad.cuda
    start, end = C.Event(enable_timing=True), C.Event(enable_timing=True)
    assert start.query() and "uninitialized" in repr(start)  # nothing recorded: done
    with pytest.raises(ValueError, match="must be recorded"):
        start.elapsed_time(end)
    x = jitgrad.randn(32, 32, device="cuda")
    start.record()
    y = (x @ x).tanh().sum()
    end.record()
    end.synchronize()
    assert end.query()
    ms = start.elapsed_time(end)
    assert np.isfinite(ms) and ms >= 0
    assert start.elapsed_time(end) == ms  # both events stay where they were recorded
    assert np.isfinite(y.item())
    plain = C.Event()
    plain.record()
    plain.synchronize()
    with pytest.raises(ValueError, match="enable_timing=True"):
        start.elapsed_time(plain)
    with pytest.raises(NotImplementedError, match="interprocess"):
        C.Event(interprocess=True)


@needs_cuda
def test_streams_stand_for_the_one_queue_jitgrad_runs(rng):
    C = jitgrad.cuda
    xs = rng.standard_normal((3, 4)).astype(np.float32)
    x = jitgrad.tensor(xs, device="cuda")
    s = C.Stream()
    assert s == C.current_stream() == C.default_stream() and "cuda:0" in repr(s)
    with C.stream(s) as got:  # (torch's context gives None)
        assert got is None
        y = x * 2
    y.record_stream(s)
    s.wait_stream(C.current_stream())
    C.current_stream().wait_event(s.record_event())
    s.synchronize()
    assert s.query()
    ev = C.Event()
    assert s.record_event(ev) is ev and ev.query()
    ev.wait(s)
    assert_allclose(y.cpu().numpy(), xs * 2)
    with C.stream(None):
        pass
    with pytest.raises(TypeError, match="Stream"):
        C.stream(0)


@needs_cuda
def test_pinned_memory_copies_and_flows_gradients(rng):
    xs = rng.standard_normal((3, 4))
    x = jitgrad.tensor(xs, requires_grad=True)
    p = x.pin_memory()
    assert p.is_pinned() and not x.is_pinned() and p.device.type == "cpu"
    assert p.pin_memory() is p and p[1:].is_pinned()  # a view of pinned memory is pinned
    assert jitgrad.zeros(0).pin_memory().is_pinned()  # nothing to lock, still "pinned"
    for made in (jitgrad.empty(3, pin_memory=True), jitgrad.ones(2, pin_memory=True),
                 jitgrad.randn(2, pin_memory=True), jitgrad.full((2,), 1.0, pin_memory=True),
                 jitgrad.tensor([1.0], pin_memory=True)):
        assert made.is_pinned() and made.device.type == "cpu"
    assert not jitgrad.zeros(2, pin_memory=False).is_pinned()
    leaf = jitgrad.zeros(2, requires_grad=True, pin_memory=True)  # still a leaf, as in torch
    assert leaf.is_pinned() and leaf.is_leaf and leaf.requires_grad
    assert_allclose(p.detach().numpy(), xs)
    g = p.cuda(non_blocking=True)
    assert g.is_cuda and g.cpu(memory_format=None).tolist() == xs.tolist()
    (p * 3).sum().backward()  # pin_memory passes the gradient through, like clone
    assert_allclose(x.grad.numpy(), np.full((3, 4), 3.0))
    with pytest.raises(RuntimeError, match="only dense CPU tensors can be pinned"):
        g.pin_memory()
    assert not g.is_pinned()


@needs_cuda
def test_memory_statistics():
    C = jitgrad.cuda
    C.reset_peak_memory_stats()
    assert C.max_memory_reserved() == C.memory_reserved()
    x = jitgrad.ones(1 << 14, device="cuda")
    st = C.memory_stats()
    assert st["allocated_bytes.all.current"] == C.memory_allocated() >= x.numel() * 4
    assert st["reserved_bytes.all.peak"] == C.max_memory_reserved() >= C.memory_reserved()
    assert st["allocated_bytes.all.peak"] == C.max_memory_allocated()
    assert st["num_device_alloc"] >= 1
    del x
    C.empty_cache()
    assert C.max_memory_reserved() >= C.memory_reserved()
    C.reset_peak_memory_stats()
    assert C.max_memory_reserved() == C.memory_reserved()


def test_default_device_without_a_gpu_raises_and_changes_nothing():
    if jitgrad.cuda.is_available():
        pytest.skip("a CUDA device (or the simulator) is there")
    with pytest.raises(RuntimeError, match="device 'cuda' is not available"):
        jitgrad.set_default_device("cuda")
    with pytest.raises(RuntimeError, match="device 'cuda' is not available"):
        with jitgrad.device("cuda"):
            pass
    assert jitgrad.get_default_device() == jitgrad.device("cpu")
    assert not jitgrad._device._defaults.entered  # the failed block left nothing behind
    assert jitgrad.zeros(2).device.type == "cpu"


@needs_cuda
def test_default_device_puts_factory_tensors_there(rng):
    cuda, cpu = jitgrad.device("cuda:0"), jitgrad.device("cpu")
    a = rng.standard_normal(3)
    try:
        jitgrad.set_default_device("cuda")
        assert jitgrad.get_default_device() == cuda
        made = [jitgrad.zeros(2), jitgrad.ones(2, 3), jitgrad.empty(2), jitgrad.full((2,), 3.0),
                jitgrad.tensor([1.0, 2.0]), jitgrad.as_tensor(a), jitgrad.arange(4),
                jitgrad.linspace(0, 1, 3), jitgrad.eye(2), jitgrad.randn(2),
                jitgrad.rand(2), jitgrad.randint(0, 5, (3,)), jitgrad.randperm(4),
                jitgrad.logspace(0, 2, 3), jitgrad.nn.Linear(3, 2).weight]
        assert all(t.device == cuda for t in made), [t.device for t in made]
        # named devices, inputs followed, numpy memory shared: as before
        c = jitgrad.zeros(2, device="cpu")
        assert c.device == cpu and jitgrad.zeros_like(c).device == cpu
        assert c.new_ones(3).device == cpu and jitgrad.from_numpy(a).device == cpu
        # numbers beside CPU tensors stay numbers (no tensor made on the default device)
        assert jitgrad.xlogy(2.0, jitgrad.tensor([1.0, 2.0], device="cpu")).device == cpu
        assert jitgrad.copysign(jitgrad.tensor([1.0], device="cpu"), -1.0).tolist() == [-1.0]
        # a training step of a model made under the default device
        net = jitgrad.nn.Linear(3, 2)
        x, y = jitgrad.randn(4, 3), jitgrad.randint(0, 2, (4,))
        jitgrad.nn.functional.cross_entropy(net(x), y).backward()
        assert net.weight.grad.device == cuda
        # random *_like functions follow their input too
        assert all(f(c).device == cpu for f in (jitgrad.rand_like, jitgrad.randn_like,
                                                lambda t: jitgrad.randint_like(t, 3)))
        # tensor() and as_tensor() of a tensor put it on the chosen default, as in torch;
        # the legacy constructor stays on the CPU
        assert jitgrad.tensor(c).device == cuda and jitgrad.as_tensor(c).device == cuda
        assert jitgrad.Tensor([1.0]).device == cpu and jitgrad.Tensor(2).device == cpu
        # the default is per thread, as in torch
        seen = []
        th = threading.Thread(target=lambda: seen.append(jitgrad.zeros(1).device))
        th.start()
        th.join()
        assert seen == [cpu]
        jitgrad.set_default_device(None)
        assert jitgrad.zeros(2).device == cpu
        g = jitgrad.ones(2, device="cuda")
        assert jitgrad.tensor(g).device == cuda  # no default chosen: the data's device
        assert jitgrad.as_tensor(g) is g and jitgrad.as_tensor(c, device="cuda").device == cuda
        assert jitgrad.rand_like(g).device == cuda and jitgrad.randn_like(g).device == cuda
        assert jitgrad.as_tensor(g, dtype=jitgrad.float64, device="cpu").dtype == jitgrad.float64
        # a GPU by its index, as in torch
        assert c.cuda(0).device == cuda and c.to(0).device == cuda
        assert c.to(device=0).device == cuda
        lin = jitgrad.nn.Linear(2, 2).cuda(0)
        assert lin.weight.device == cuda
        with jitgrad.device("cuda"):  # torch's context form
            assert jitgrad.zeros(2).device == cuda
            with jitgrad.device("cpu"):
                assert jitgrad.zeros(2).device == cpu
            assert jitgrad.ones(1).device == cuda
        assert jitgrad.zeros(2).device == cpu
        with pytest.raises(RuntimeError, match="invalid device ordinal"):
            jitgrad.set_default_device("cuda:1")
        assert jitgrad.get_default_device() == cpu
    finally:
        jitgrad.set_default_device(None)


@needs_cuda
def test_caching_allocator_reuses_blocks():
    from jitgrad.kernels.cuda.runtime import ALLOCATOR

    jitgrad.cuda.synchronize()
    before = jitgrad.cuda.memory_allocated()
    x = jitgrad.ones(64, 64, device="cuda")
    assert jitgrad.cuda.memory_allocated() >= before + 64 * 64 * 4
    del x
    assert jitgrad.cuda.memory_allocated() == before
    w = jitgrad.randn(16, 16, device="cuda", requires_grad=True)
    for _ in range(2):  # warm up: every size a step needs is now cached
        (w @ w).tanh().sum().backward()
    drivers = ALLOCATOR.driver_allocs
    for _ in range(3):
        (w @ w).tanh().sum().backward()
    assert ALLOCATOR.driver_allocs == drivers  # the steady state never calls the driver
    assert jitgrad.cuda.memory_reserved() >= jitgrad.cuda.memory_allocated()
    jitgrad.cuda.empty_cache()
    assert jitgrad.cuda.memory_reserved() == jitgrad.cuda.memory_allocated()


@needs_cuda
def test_memory_freed_inside_a_reference_cycle_comes_back_usable():
    # The collector frees a block inside a cycle; the cached memory must still be valid when
    # the next tensor of that size takes it (and live tensors must keep theirs).
    import gc

    keep = jitgrad.full((300,), 3.0, device="cuda")
    for i in range(4):
        t = jitgrad.full((300,), float(i), device="cuda")
        box = [t, keep.clone()]
        box.append(box)  # a cycle holding both tensors
        del t, box
        gc.collect()
        fresh = jitgrad.full((300,), 2.0, device="cuda")
        v = jitgrad.full((300,), 1.0, device="cuda") + fresh
        assert v.sum().item() == 900.0
        assert keep.sum().item() == 900.0
        assert (fresh.view(-1)[:3].cpu().numpy() == 2.0).all()


def _sum_shapes():
    from numba import config

    if config.ENABLE_CUDASIM:  # the simulator's thresholds: blocks of 4, 16 busy threads
        return [(1, 100, 1), (3, 40, 1), (9, 5, 1), (1, 9, 2), (1, 70, 2), (2, 7, 3), (5, 3, 4),
                (1, 1, 1)]
    return [(1, 3_000_000, 1), (3, 1_000_001, 1), (5000, 300, 1), (2, 100_000, 3),
            (64, 1000, 64), (1, 70, 100_000), (1, 1, 1)]


@needs_cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_sums_of_every_layout_match_numpy(dtype, rng):
    # rows or columns, one chunk per output or many (then a second pass over the partials)
    from jitgrad.kernels import cuda as K
    from jitgrad.kernels.cuda.array import from_host

    for shape in _sum_shapes():
        a = (rng.standard_normal(shape) * 3).astype(dtype)
        want = a.astype(np.float64 if dtype != np.int64 else np.int64).sum(1)
        got = K.sum_(from_host(a), np.dtype(dtype), 1.0).get()
        tol = dict(rtol=1e-6, atol=1e-6 * np.sqrt(shape[1])) if dtype != np.int64 else {}
        assert_allclose(got, want.astype(dtype), **tol, err_msg=str(shape))
        if dtype != np.int64:  # a mean's scale; accumulated and returned in float64
            half = K.sum_(from_host(a), np.dtype(np.float64), 0.5).get()
            assert_allclose(half, want * 0.5, rtol=1e-12, atol=1e-9, err_msg=str(shape))


@needs_cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_folds_of_every_layout_match_the_cpu(dtype, rng):
    # max/min with indices, amax, any/all, prod, every norm, var/std and the backward of an
    # extreme and of var, in the sums' layouts: rows or columns, one chunk per output or
    # many, then a second pass over the partials. The CPU's kernels are the reference;
    # ties (the first index wins, also across chunks), nan (wins) and infinities included.
    from jitgrad.kernels import cuda as K
    from jitgrad.kernels import reduce as C
    from jitgrad.kernels.cuda.array import from_host
    from jitgrad.kernels.cuda.reduce import chunks

    floating = dtype != np.int64
    # the shapes take both layouts, each with one pass and with two
    assert {(i == 1, chunks(*s)[0] > 1) for s in _sum_shapes() for i in [s[2]]} == {
        (True, True), (True, False), (False, True), (False, False)}
    for shape in _sum_shapes():
        o, r, i = shape
        a = (rng.standard_normal(shape) * 3).astype(dtype)
        if not floating:
            a %= 4  # many ties
        if r > 1:  # the lane's extreme again, later along the axis (perhaps another chunk)
            a[:, -1, :] = a.max(1)
            a[:, rng.integers(r), :] = a.min(1)
        if floating and r > 2:
            a[0, r // 2, 0] = -np.inf
            if o * i > 1:
                a[-1, r - 2, -1] = np.nan  # one lane with a nan, away from its first element
        dev = from_host(a)
        for want_max in (True, False):
            v, k = K.extreme(dev, want_max)
            cv, ck = C.extreme(a, want_max)
            assert_array_equal(v.get(), cv, err_msg=str(shape))
            assert_array_equal(k.get(), ck, err_msg=str(shape))
            assert_array_equal(K.amax(dev, want_max).get(), C.amax(a, want_max))
        nz = np.where(rng.random(shape) < 0.5, a, 0).astype(dtype) if r > 1 else a
        for want_all in (True, False):
            for src in (nz, nz != 0):
                got = K.any_all(from_host(src), want_all, np.bool_).get()
                assert_array_equal(got, C.any_all(src, want_all, np.bool_), err_msg=str(shape))
        p = (1 + 0.05 * a) if floating else a % 3
        p = np.nan_to_num(p.astype(dtype), posinf=2, neginf=-2)
        assert_allclose(K.prod(from_host(p), p.dtype).get(), C.prod(p, p.dtype), rtol=1e-5)
        if not floating:
            continue
        finite = np.nan_to_num(a, nan=1.5, posinf=4.0, neginf=-4.0)
        for q in (0.0, 1.0, 2.0, np.inf, -np.inf, 3.0, 0.5):
            assert_allclose(K.vector_norm(dev, q).get(), C.vector_norm(a, q), rtol=1e-5,
                            err_msg=f"{shape} p={q}")
        for corr, take_sqrt in ((1.0, False), (0.0, True)):
            got = K.moments(from_host(finite + 1e3), corr, take_sqrt).get()
            assert_allclose(got, C.moments(finite + 1e3, corr, take_sqrt), rtol=1e-4,
                            atol=1e-6, err_msg=str(shape))
        # a constant lane's variance is 0 exactly: its mean is the sum divided by r, as on
        # the CPU (times 1/r misses by a bit for r = 49, 75, 77, ...)
        const = np.full((o, 49, i), 0.1, dtype)
        assert (K.moments(from_host(const), 1.0, True).get() == 0).all()
        assert (K.var_backward(from_host(np.ones((o, i), dtype)), from_host(const), 1.0).get()
                == 0).all()
        g = rng.standard_normal((o, i)).astype(dtype)
        ext = C.amax(finite, True)
        assert_allclose(K.extreme_backward(from_host(g), from_host(finite), from_host(ext))
                        .get(), C.extreme_backward(g, finite, ext), rtol=1e-6)
        assert_allclose(K.var_backward(from_host(g), from_host(finite), 0.5).get(),
                        C.var_backward(g, finite, 0.5), rtol=1e-5, atol=1e-6)


@needs_cuda
@pytest.mark.parametrize("busy", [None, 1024])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_chunked_scans_match_the_cpu(dtype, busy, rng, monkeypatch):
    # cumsum, cumprod and the linear recurrence, forwards and reversed, along every axis of
    # shapes whose lanes run whole (one thread each) or in chunks: the chunks' totals are
    # scanned by the same function, recursively (busy=1024 makes the simulator's plan
    # recurse twice, as a long lane does on a GPU)
    from jitgrad.kernels import cuda as K
    from jitgrad.kernels import scan as C
    from jitgrad.kernels.cuda import scan as S
    from jitgrad.kernels.cuda.array import from_host
    from numba import config

    if busy is not None:
        if not config.ENABLE_CUDASIM:
            pytest.skip("the plan's thresholds are the simulator's")
        monkeypatch.setattr(S, "max_threads", lambda: busy)
    shapes = ([(2000,), (3, 150), (150, 2), (1, 1)] if config.ENABLE_CUDASIM else
              [(3_000_001,), (3, 100_000), (100_000, 5), (4096, 300), (1, 1)])
    depth = []
    run = S._run

    def counted(mode, a, b, out, outer, r, inner, reverse):
        depth.append(r)
        return run(mode, a, b, out, outer, r, inner, reverse)

    monkeypatch.setattr(S, "_run", counted)
    floating = dtype != np.int64
    for shape in shapes:
        a = (rng.standard_normal(shape) * (1 if floating else 3)).astype(dtype)
        m = (1 + 0.01 * rng.standard_normal(shape)).astype(dtype) if floating else (
            rng.integers(-3, 4, shape))
        for dim in range(len(shape)):
            for reverse in (False, True):
                depth.clear()
                got = K.cumsum(from_host(a), dim, a.dtype, reverse).get()
                assert_allclose(got, C.cumsum(a, dim, a.dtype, reverse), rtol=1e-5,
                                atol=1e-9 if floating else 0, err_msg=f"{shape} {dim}")
                levels = len(depth)
                got = K.cumprod(from_host(m), dim, m.dtype, reverse).get()
                assert_allclose(got, C.cumprod(m, dim, m.dtype, reverse), rtol=1e-5,
                                err_msg=f"{shape} {dim}")
                if floating:
                    got = K.linrec(from_host(m), from_host(a), dim, reverse).get()
                    assert_allclose(got, C.linrec(m, a, dim, reverse), rtol=1e-5, atol=1e-6,
                                    err_msg=f"{shape} {dim}")
                if shape[dim] == max(shape) and max(shape) > 1000:
                    assert levels == (3 if busy else 2), (shape, dim, depth)


@needs_cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.bool_])
def test_long_rows_sort_stably_through_the_bitonic_network(dtype, rng, monkeypatch):
    # rows at least BITONIC_MIN long (lowered under the simulator) are sorted by a bitonic
    # network over (value, position) pairs, padded to a power of two; the CPU's stable
    # insertion order is the reference: ties keep their order, NaN goes last (first when
    # descending), rows of every length around the powers of two
    from jitgrad.kernels import cuda as K
    from jitgrad.kernels import sort as C
    from jitgrad.kernels.cuda import sort as S
    from jitgrad.kernels.cuda.array import from_host
    from numba import config

    if config.ENABLE_CUDASIM:
        monkeypatch.setattr(S, "BITONIC_MIN", 2)
        shapes = [(1, 2), (2, 3), (1, 8), (3, 9), (1, 33)]
    else:
        shapes = [(1, S.BITONIC_MIN), (3, 1000), (1, 100_001), (2, 1 << 16)]
    launched = []
    monkeypatch.setattr(S, "_bitonic", lambda *a, f=S._bitonic: launched.append(1) or f(*a))
    for R, n in shapes:
        if dtype == np.bool_:
            x = rng.random((R, n)) < 0.5
        else:
            x = rng.integers(-3, 4, (R, n)).astype(dtype)  # many ties
            if dtype != np.int64:
                x[rng.random((R, n)) < 0.2] = np.nan
                x[:, -1] = -np.inf
        for descending in (False, True):
            got = K.argsort(from_host(x), descending).get()
            assert_array_equal(got, C.argsort(x, descending), err_msg=f"{(R, n)} {descending}")
    assert len(launched) == 2 * len(shapes)


@needs_cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_max_pool_backward_adds_colliding_gradients_in_the_cpus_order(dtype, rng):
    # overlapping windows send several gradients to one pixel: they must be added in the
    # outputs' order from zero, as the CPU does (bit for bit, in any thread order), and
    # positions outside the plane (an empty window's) ignored
    from jitgrad.kernels import cuda as K
    from jitgrad.kernels import pool as C
    from jitgrad.kernels.cuda.array import from_host

    for P, Kn, n in ((3, 40, 5), (2, 7, 50), (1, 1, 1), (4, 64, 64)):
        g = (rng.standard_normal((P, Kn)) * 1e3).astype(dtype)
        idx = rng.integers(-1, n + 1, (P, Kn))  # collisions, and -1 and n out of the plane
        got = K.scatter_planes(from_host(g), from_host(idx), n).get()
        assert_array_equal(got, C.scatter_planes(g, idx, n), err_msg=str((P, Kn, n)))
    # a real pooling: 3x3 windows, stride 1 (every pixel the maximum of up to 9 windows)
    x = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
    x[0, 0] = 1.0  # ties: the first in each window wins
    vals, idx = C.max_pool2d(x.reshape(6, 9, 9), (7, 7), (3, 3), (1, 1), (0, 0), (1, 1))
    g = rng.standard_normal(vals.shape).astype(np.float32)
    got = K.scatter_planes(from_host(g.reshape(6, -1)), from_host(idx.reshape(6, -1)), 81)
    assert_array_equal(got.get(), C.scatter_planes(g.reshape(6, -1), idx.reshape(6, -1), 81))


@needs_cuda
def test_deterministic_mode_accumulates_in_the_cpus_order(rng, monkeypatch):
    # use_deterministic_algorithms(True): the accumulating CUDA kernels (atomic adds
    # otherwise) add each destination's sources in their order, and scatter's later writes
    # win: the CPU's results bit for bit, for float32 values whose sums depend on the order
    import importlib

    from jitgrad.kernels import settings

    monkeypatch.setitem(settings, "deterministic", False)
    jitgrad.use_deterministic_algorithms(True)
    assert settings["deterministic"] and jitgrad.are_deterministic_algorithms_enabled()
    ordered = []  # the launchers' add_in_order calls: none may fall back to atomics
    for fam in ("movement", "index", "embedding"):
        mod = importlib.import_module(f"jitgrad.kernels.cuda.{fam}")
        monkeypatch.setattr(mod, "add_in_order",
                            lambda *a, f=mod.add_in_order, **k: ordered.append(1) or f(*a, **k))
    n, m = 6, 40  # 40 sources into 6 rows: every row collects several
    x = (rng.standard_normal((n, 3)) * 100).astype(np.float32)
    src = (rng.standard_normal((m, 3)) * 10.0 ** rng.integers(-3, 4, (m, 3))).astype(np.float32)
    idx = rng.integers(0, n, m)
    w = rng.standard_normal((m, 3)).astype(np.float32)

    def run(device):
        def t(a, grad=False):
            return jitgrad.tensor(a, device=device, requires_grad=grad)

        out = {}
        ix2 = t(np.repeat(idx[:, None], 3, 1))
        out["scatter_add"] = t(x).scatter_add(0, ix2, t(src))
        out["scatter"] = t(x).scatter(0, ix2, t(src))  # repeated indices: the last wins
        out["index_add"] = t(x).index_add(0, t(idx), t(src), alpha=0.5)
        out["index_put"] = t(x).index_put_((t(idx),), t(src), accumulate=True)
        y = t(x)
        y[t(idx)] = t(src)  # repeated rows: the last write wins
        out["setitem"] = y
        for name, fn in (("getitem", lambda a: a[t(idx)]),
                         ("take", lambda a: a.take(t(idx * 3 + 1))),
                         ("embedding", lambda a: jitgrad.nn.functional.embedding(t(idx), a))):
            a = t(x, grad=True)
            y = fn(a)
            (y * t(w[:, :y.shape[-1]] if y.ndim > 1 else w[:, 0])).sum().backward()
            out[name] = a.grad
        return {k: v.cpu().numpy() for k, v in out.items()}

    cpu, gpu = run("cpu"), run("cuda")
    for k in cpu:
        assert_array_equal(gpu[k], cpu[k], err_msg=k)
    assert len(ordered) == 7
    # new memory is filled, as in torch's deterministic mode
    assert np.isnan(jitgrad.empty(3, device="cuda").cpu().numpy()).all()
    assert (jitgrad.empty(2, dtype=jitgrad.int64).numpy() == np.iinfo(np.int64).max).all()
    jitgrad.use_deterministic_algorithms(False)


@needs_cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_long_lanes_of_prod_and_cumprod_backward_match_the_cpu(dtype, rng):
    # lanes long enough to be scanned in chunks: prod's backward from running products
    # before and after each element, cumprod's from the linear recurrence it is; zeros
    # included (no division); short lanes keep the one-thread-per-lane kernels
    from jitgrad.kernels import cuda as K
    from jitgrad.kernels import reduce as C
    from jitgrad.kernels import scan as CS
    from jitgrad.kernels.cuda import scan as S
    from jitgrad.kernels.cuda.array import from_host
    from numba import config

    shapes = ([(1, 300, 1), (1, 150, 2), (3, 5, 1)] if config.ENABLE_CUDASIM else
              [(1, 200_000, 1), (3, 70_000, 2), (4096, 30, 1)])
    chunked = 0
    for o, r, i in shapes:
        chunked += S._plan(o * i, r)[0] > 1
        x = (1 + 0.002 * rng.standard_normal((o, r, i))).astype(dtype)
        x[0, r // 3, 0] = 0  # a zero: its lane's other gradients vanish, its own does not
        g = rng.standard_normal((o, i)).astype(dtype)
        assert_allclose(K.prod_backward(from_host(g), from_host(x)).get(),
                        C.prod_backward(g, x), rtol=1e-4, atol=1e-6, err_msg=str((o, r, i)))
        gy = rng.standard_normal(x.shape).astype(dtype)
        for reverse in (False, True):
            yr = CS.cumprod(x, 1, x.dtype, reverse)
            got = K.cumprod_backward(from_host(gy), from_host(x), from_host(yr), 1, reverse)
            assert_allclose(got.get(), CS.cumprod_backward(gy, x, yr, 1, reverse), rtol=1e-4,
                            atol=1e-5, err_msg=f"{(o, r, i)} reverse={reverse}")
    assert chunked == 2


@needs_cuda
@pytest.mark.parametrize("split", [None, 3])
@pytest.mark.parametrize("tile", ["SHAPE", "LARGE", (3, 2, 2, 4, 3), (2, 3, 6, 4, 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_both_gemm_tiles_read_every_operand_layout(tile, dtype, split, rng, monkeypatch):
    # row-major and transposed operands (each loads along its contiguous dim), ragged edges
    # (rows past the edge are staged from the last row, and must not leak into the output),
    # and K split into chunks whose products a second pass adds (a ragged last chunk);
    # integers exactly. Besides the two tiles products pick, two uneven ones (TY, TX, RM,
    # RN, BK as tuples): a mix-up of rows and columns, of a thread's runs of neighbouring
    # outputs, or of an odd step of k shows only there.
    import importlib

    from numba import config

    MM = importlib.import_module("jitgrad.kernels.cuda.matmul")
    if isinstance(tile, tuple) and not config.ENABLE_CUDASIM:
        tile = tuple(8 * n if i < 2 else n for i, n in enumerate(tile))  # GPU-sized blocks
    monkeypatch.setattr(MM, "FORCE", getattr(MM, tile) if isinstance(tile, str) else tile)
    monkeypatch.setattr(MM, "SPLIT", split)
    monkeypatch.setattr(MM, "_plans", {})
    built = []  # the (A, B) staging of each kernel built: in groups of 16 bytes or not
    gemm = MM._gemm
    monkeypatch.setattr(MM, "_gemm", lambda *a: built.append(a[2:]) or gemm(*a))
    draw = ((lambda shape: rng.integers(-50, 50, shape)) if dtype == np.int64 else
            (lambda shape: rng.standard_normal(shape)))
    tol = {np.float32: dict(rtol=1e-4, atol=1e-4), np.float64: dict(rtol=1e-10, atol=1e-10),
           np.int64: dict(rtol=0, atol=0)}[dtype]
    # ragged sizes, then sizes whose operands (row-major or transposed) stage 16 bytes at a
    # time where the tile allows it, then those operands one element off a 16-byte boundary
    # (K not a multiple of the k step: a partial last step; M and N not multiples of the
    # tile: groups of rows past the edge, which read the last group instead)
    sizes = ([(5, 7, 9), (8, 10, 8), (6, 10, 6)] if config.ENABLE_CUDASIM else
             [(131, 77, 259), (132, 100, 260)])
    for m, k, n in sizes:
        a = draw((m, k)).astype(dtype)
        b = draw((k, n)).astype(dtype)
        ja = jitgrad.tensor(a, device="cuda")
        jb = jitgrad.tensor(b, device="cuda")
        jat = jitgrad.tensor(np.ascontiguousarray(a.T), device="cuda").t()
        jbt = jitgrad.tensor(np.ascontiguousarray(b.T), device="cuda").t()
        for x, y in ((ja, jb), (jat, jb), (ja, jbt), (jat, jbt)):
            assert_allclose((x @ y).cpu().numpy(), a @ b, **tol)
        batch = draw((3, m, k)).astype(dtype)
        assert_allclose((jitgrad.tensor(batch, device="cuda") @ jbt).cpu().numpy(),
                        batch @ b, **tol)
    shape = MM.FORCE
    grouped = MM._vector_fits(shape, MM.vector.width(np.dtype(dtype).itemsize))
    assert ((True, True) in built) == grouped, (shape, built)
    if not grouped:  # a tile that cannot stage in groups refuses to build such a kernel
        with pytest.raises(ValueError, match="cannot stage"):
            gemm(dtype, shape, True, False)
    pad = draw((m + 1, k + 1)).astype(dtype)  # a[1:, 1:]-style views: off the boundary
    ja_off = jitgrad.tensor(pad, device="cuda")[1:, 1:]
    jb_off = jitgrad.tensor(np.pad(b, ((1, 0), (1, 0))), device="cuda")[1:, 1:]
    built.clear()
    assert_allclose((ja_off @ jb_off).cpu().numpy(), pad[1:, 1:] @ b, **tol)
    assert all(v == (False, False) for v in built), built


@needs_cuda
def test_a_register_cap_that_spills_on_the_gpu_is_dropped(monkeypatch):
    # the caps were chosen with one ptxas; the GPU's assembler may spill under one, and then
    # the variant goes uncapped (numba-cuda reports local memory per thread after compiling)
    import importlib

    MM = importlib.import_module("jitgrad.kernels.cuda.matmul")
    key = (np.dtype(np.float32), MM.SHAPE, True, True)
    monkeypatch.setitem(MM.CAPS, key, 64)
    monkeypatch.setattr(MM, "SPILLED", set())

    class Compiled:
        def __init__(self, local):
            self.local = local

        def get_local_mem_per_thread(self):
            return {("sig",): self.local}

    assert MM.regcap(*key) == 64
    MM._plans["sentinel"] = None
    assert not MM._check_cap(Compiled(0), key) and MM.regcap(*key) == 64
    assert "sentinel" in MM._plans
    assert MM._check_cap(Compiled(24), key) and MM.regcap(*key) is None
    assert not MM._plans  # plans holding the capped kernel are rebuilt
    assert MM.regcap(np.float32, MM.SHAPE, False, False) == MM.CAPS.get(
        (np.dtype(np.float32), MM.SHAPE, False, False))


@needs_cuda
def test_matmul_batches_with_dims_of_one_element(rng):
    # a batch whose dims fold into one stride once its dims of one element are left out
    # (x[:, 0:1] keeps the stride of the dim it slices, which no element steps over)
    x = rng.standard_normal((3, 5, 4, 4)).astype(np.float32)
    b = rng.standard_normal((4, 4)).astype(np.float32)
    jx = jitgrad.tensor(x, device="cuda")
    jb = jitgrad.tensor(b, device="cuda")
    for view in ((slice(None), slice(0, 1)), (slice(0, 1),), (slice(None), slice(2, 3))):
        got = (jx[view] @ jb).cpu().numpy()
        assert_allclose(got, x[view] @ b, rtol=1e-5, atol=1e-5, err_msg=str(view))
    y = x[:, :, None]  # (3, 5, 1, 4, 4): a middle dim of one element
    got = (jitgrad.tensor(y, device="cuda") @ jb).cpu().numpy()
    assert_allclose(got, y @ b, rtol=1e-5, atol=1e-5)


@needs_cuda
@pytest.mark.parametrize("split", [None, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_addmm_adds_every_bias_layout_inside_the_gemm(dtype, split, rng, monkeypatch):
    # the bias is added as the product is written (in the first k chunk only, when the
    # product is split over k): every broadcast of it, a transposed operand, an empty K
    import importlib

    from numba import config

    MM = importlib.import_module("jitgrad.kernels.cuda.matmul")
    monkeypatch.setattr(MM, "SPLIT", split)
    m, k, n = (5, 7, 9) if config.ENABLE_CUDASIM else (131, 300, 67)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((n, k)).astype(dtype)  # used transposed, as nn.Linear does
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)
    ja = jitgrad.tensor(a, device="cuda")
    jbt = jitgrad.tensor(b, device="cuda").t()
    for shape in [(n,), (m, n), (1, n), (m, 1), ()]:
        bias = rng.standard_normal(shape).astype(dtype)
        got = jitgrad.addmm(jitgrad.tensor(bias, device="cuda"), ja, jbt).cpu().numpy()
        assert_allclose(got, bias + a @ b.T, **tol, err_msg=str(shape))
    bias = rng.standard_normal((n,)).astype(dtype)
    got = jitgrad.addmm(jitgrad.tensor(bias, device="cuda"),
                        jitgrad.zeros(m, 0, dtype=ja.dtype, device="cuda"),
                        jitgrad.zeros(0, n, dtype=ja.dtype, device="cuda")).cpu().numpy()
    assert_allclose(got, np.broadcast_to(bias, (m, n)))
    with pytest.raises(ValueError, match="do not multiply"):
        jitgrad.kernels.cuda.matmul(ja._data, ja._data)


@needs_cuda
def test_flat_kernels_cover_every_element_whatever_the_size(rng):
    # the flat kernels take several elements a grid apart per step, then a tail: sizes on
    # either side of those steps, in place too
    from jitgrad.kernels.cuda.runtime import config

    _, b = config(1)
    span = config(1 << 30)[0] * b  # threads in the largest grid
    for n in (1, 7, span - 1, span, span + 1, 2 * span + 3, 4 * span - 1, 4 * span + 5,
              9 * span + 2):
        a = rng.standard_normal(n).astype(np.float32)
        c = rng.standard_normal(n).astype(np.float32)
        x = jitgrad.tensor(a, device="cuda")
        y = jitgrad.tensor(c, device="cuda")
        assert_allclose((-x).cpu().numpy(), -a)
        assert_allclose((x * y).cpu().numpy(), a * c, rtol=1e-6)
        assert_allclose((x * 2.5).cpu().numpy(), a * np.float32(2.5), rtol=1e-6)
        assert_allclose(x.double().cpu().numpy(), a.astype(np.float64))
        x.mul_(y)
        assert_allclose(x.cpu().numpy(), a * c, rtol=1e-6)


@needs_cuda
def test_aligned_flat_operands_move_16_bytes_at_a_time(rng, monkeypatch):
    # operands of the output's size and dtype on 16-byte boundaries take the vector
    # variant (groups of 4 float32 or 2 8-byte elements, then a tail); others the flat one
    import importlib

    E = importlib.import_module("jitgrad.kernels.cuda.elementwise")
    used = []
    real = E.launch

    def spy(kernel, *args):
        used.append(kernel.py_func.__name__)
        return real(kernel, *args)

    monkeypatch.setattr(E, "launch", spy)
    monkeypatch.setattr(E, "VEC_MIN", 0)  # (a GPU takes it from 65536 elements on)
    for dt in (np.float32, np.float64, np.int64, np.int32):
        VL = 16 // np.dtype(dt).itemsize
        for n in (1, VL - 1, VL, VL + 1, 2 * VL + 1, 9 * VL + VL - 1, 37):
            a = (rng.standard_normal(n + 1) * 10).astype(dt)
            c = (rng.standard_normal(n + 1) * 10).astype(dt)
            xa, ya = jitgrad.tensor(a, device="cuda"), jitgrad.tensor(c, device="cuda")
            x, y = xa[:n], ya[:n]  # on the allocator's (aligned) block starts
            vec = n >= VL
            ops = [(lambda: x * y, a[:n] * c[:n], "vec2" if vec else "flat"),
                   (lambda: -x, -a[:n], "vec" if vec else "flat"),
                   (lambda: x.clone(), a[:n], "vec" if vec else "flat")]
            if n > 1:  # views one element off the boundary
                ops += [(lambda: x[1:] * y[1:], a[1:n] * c[1:n], "flat"),
                        (lambda: x[1:].clone(), a[1:n], "flat")]
            for op, want, kernel in ops:
                used.clear()
                got = op()
                assert used == [kernel], (dt, n, kernel, used)
                assert_allclose(got.cpu().numpy(), want, rtol=1e-6)
            if n >= 2 * VL:  # a view starting VL elements (16 bytes) in: still aligned
                used.clear()
                got = (x[VL:] * y[VL:]).cpu().numpy()
                assert_allclose(got, a[VL:n] * c[VL:n], rtol=1e-6)
                assert used == ["vec2"], used
            if dt != np.int64:
                assert_allclose(x.tanh().cpu().numpy(), np.tanh(a[:n]), rtol=1e-5, atol=1e-6)
            # in place (as gradient accumulation writes): each thread reads its groups
            # before it writes them, and nothing past the view is written
            used.clear()
            E.binary("mul", x._data, y._data, x._data.shape, out=x._data)
            assert used == ["vec2" if vec else "flat"], used
            assert_allclose(x.cpu().numpy(), a[:n] * c[:n], rtol=1e-6)
            assert_allclose(xa.cpu().numpy()[n:], a[n:])


@needs_cuda
def test_views_and_in_place_on_device(rng):
    a = rng.standard_normal((4, 5)).astype(np.float32)
    x = jitgrad.tensor(a, device="cuda")
    assert_allclose(x.t().contiguous().cpu().numpy(), a.T)
    assert_allclose(x[1:, ::2].cpu().numpy(), a[1:, ::2])
    assert_allclose(x[[0, 2]].cpu().numpy(), a[[0, 2]])
    x[1:3, 0] = 7.0
    a[1:3, 0] = 7.0
    x.mul_(2)
    assert_allclose(x.cpu().numpy(), a * 2)


@needs_cuda
def test_every_launcher_is_native_and_the_host_route_works(rng):
    """No CPU launcher goes through the host today; the route a new launcher would take until
    it has a CUDA kernel copies its operands over, copies back what the CPU kernel wrote into
    (and nothing else), and returns device arrays."""
    from jitgrad.kernels import cuda as K
    from jitgrad.kernels.cuda.array import CudaArray

    assert K.HOST_ROUTED == []
    filled = K.fill(K.empty((3, 5), np.float32), np.float32(2.5))  # cpu.fill's counterpart
    assert_allclose(filled.get(), np.full((3, 5), 2.5, np.float32))

    def cpu_launcher(a, out, pair, scale=1.0):
        out[...] = a * scale  # written in place, as CPU launchers with `out` do
        return a + pair[0], (a.sum(), [pair[1] * 2])

    routed = K._host_routed("scaled", cpu_launcher)
    a = rng.standard_normal((3, 4)).astype(np.float32)
    b = rng.standard_normal((3, 4)).astype(np.float32)
    c = rng.standard_normal(4).astype(np.float32)
    da, db, dc = K.from_host(a), K.from_host(b), K.from_host(c)
    out = K.from_host(np.zeros((3, 4), np.float32))
    first, (total, (twice,)) = routed(da, out, (db, dc), scale=3.0)
    assert isinstance(first, CudaArray) and isinstance(twice, CudaArray)
    assert_allclose(first.get(), a + b)
    assert_allclose(twice.get(), c * 2)
    assert_allclose(total, a.sum(), rtol=1e-6)
    assert_allclose(out.get(), a * 3.0)  # the in-place write reached the device
    assert_allclose(da.get(), a)  # operands the kernel only read are untouched
    assert routed.__name__ == "scaled"


# --------------------------------------------------------------------------- launches

def _real_gpu() -> bool:
    if not HAS_NUMBA_CUDA or not jitgrad.cuda.is_available():
        return False
    from numba import config

    return not config.ENABLE_CUDASIM


needs_gpu = pytest.mark.skipif(not _real_gpu(), reason="needs a real GPU (no driver launch "
                                                      "path under the simulator)")

_LAUNCH_SCRIPT = """
    import json
    import numpy as np
    import jitgrad
    from jitgrad.kernels.cuda import launch as L
    rng = np.random.default_rng(0)
    x = jitgrad.tensor(rng.standard_normal((33, 17)).astype(np.float32), device="cuda",
                       requires_grad=True)
    w = jitgrad.tensor(rng.standard_normal((17, 5)).astype(np.float32), device="cuda",
                       requires_grad=True)
    t = jitgrad.tensor(rng.integers(0, 5, 33), device="cuda")
    for _ in range(3):  # the first step learns each signature, later ones launch directly
        x.grad = w.grad = None
        y = ((x * 2 + 1).tanh() @ w).softmax(-1)
        loss = jitgrad.nn.functional.cross_entropy(x @ w, t)
        (y.sum(0).max() + loss + x.abs().cumsum(1).mean()).backward()
    np.save("OUT", np.concatenate([y.detach().cpu().numpy().ravel(),
                                   x.grad.cpu().numpy().ravel(), w.grad.cpu().numpy().ravel(),
                                   [loss.item()]]))
    print(json.dumps(dict(on=L.direct_enabled(), why=L._state["why_off"], stats=L.stats,
                          refusals=L.refusals)))
"""


@needs_gpu
def test_direct_launches_pass_the_probe_and_agree_bitwise_with_numba_cuda(tmp_path):
    outs = {}
    for mode in ("direct", "numba"):
        env = dict(os.environ, JITGRAD_CUDA_LAUNCH=mode)
        out = str(tmp_path / f"{mode}.npy")
        r = subprocess.run([sys.executable, "-c", textwrap.dedent(_LAUNCH_SCRIPT).replace(
            "OUT", out)], env=env, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-4000:]
        got = json.loads(r.stdout.strip().splitlines()[-1])
        if mode == "direct":  # every kernel of the step launches directly after its first call
            assert got["on"], got["why"]
            assert got["stats"]["direct"] > got["stats"]["numba"] > 0, got
            assert not got["refusals"], got
        else:
            assert not got["on"] and got["stats"]["direct"] == 0, got
        outs[mode] = np.load(out)
    np.testing.assert_array_equal(outs["direct"], outs["numba"])


# --------------------------------------------------------------------------- CPU == CUDA

def _first_cases():
    return [pytest.param(row, row.cases[0], id=row.name) for row in ROWS if row.cases]


@needs_cuda
@pytest.mark.parametrize("row, case", _first_cases())
def test_cpu_and_cuda_agree(row, case, rng):
    """Each op on both devices from the same float64 inputs: values and input gradients."""
    dts = (np.dtype(np.float64),) * len(case)
    arrays = row.draw(rng, case, dts) if row.numeric else row.draw(rng, case,
                                                                   row.dtype_specs(len(case))[0])
    results = {}
    for dev in ("cpu", "cuda"):
        xs = [jitgrad.tensor(a, device=dev, requires_grad=row.grad and a.dtype.kind == "f")
              for a in arrays]
        out = row.fn(jitgrad, *xs)
        outs = list(out) if isinstance(out, tuple) else [out]
        vals = [o.detach().cpu().numpy() for o in outs]
        grads = []
        used = [o for o in outs if o.requires_grad]
        if used:
            loss = sum(((o * jitgrad.tensor(np.linspace(-1, 1, o.numel()).reshape(o.shape),
                                            device=dev, dtype=o.dtype)).sum() for o in used),
                       start=jitgrad.zeros((), device=dev, dtype=used[0].dtype))
            loss.backward()
            grads = [None if x.grad is None else x.grad.cpu().numpy() for x in xs]
        results[dev] = (vals, grads)
    (cv, cg), (gv, gg) = results["cpu"], results["cuda"]

    def close(b, a):  # float32: another summation order, another libm (a few ulp)
        tol = dict(rtol=1e-9, atol=1e-11) if a.dtype != np.float32 else dict(rtol=2e-6,
                                                                                 atol=1e-6)
        assert_allclose(b.astype(np.float64), a.astype(np.float64), **tol)

    for a, b in zip(cv, gv):
        assert a.dtype == b.dtype and a.shape == b.shape
        close(b, a)
    for a, b in zip(cg, gg):
        assert (a is None) == (b is None)
        if a is not None:
            close(b, a)
