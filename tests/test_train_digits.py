"""examples/train_digits.py end to end, with small settings: it trains both models, reports
their accuracy, writes the PNG and the timing line; asking for a missing GPU exits with 2."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "train_digits.py"

pytest.importorskip("sklearn")
pytest.importorskip("tqdm")
pytest.importorskip("matplotlib")


def _run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], check=False, capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("digits") / "curves" / "loss.png"
    return out, _run("--epochs", "2", "--out", str(out))


def test_trains_reports_accuracy_and_writes_the_curves(run):
    out, res = run
    assert res.returncode == 0, res.stderr
    acc = dict(re.findall(r"^(cnn|mlp): test accuracy (\d+\.\d)% \(\d+/360\)", res.stdout,
                          re.MULTILINE))
    assert set(acc) == {"cnn", "mlp"}, res.stdout
    # two epochs are enough for these; the default twelve bring the CNN to 99%
    assert float(acc["cnn"]) >= 90.0 and float(acc["mlp"]) >= 80.0, res.stdout
    assert f"loss curves: {out}" in res.stdout
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    timing = re.search(r"^wall time (\d+\.\d) s, of which about (\d+\.\d) s compilation and "
                       r"loading in the first batches \(cnn .* s against .* ms later, mlp .*"
                       r"; Numba cache (cold: \d+ kernels compiled|warm: every kernel loaded "
                       r"from the disk cache)\)$", res.stdout, re.MULTILINE)
    assert timing, res.stdout
    assert float(timing[2]) <= float(timing[1])
    assert "cnn training" in res.stderr  # the progress bar


def test_same_training_as_pytorch():
    """Same seed: the same initial weights, the same batches, so the same per-batch losses as
    the script's own --torch run (here in-process, one epoch)."""
    torch = pytest.importorskip("torch")
    import jitgrad

    spec = importlib.util.spec_from_file_location("train_digits", SCRIPT)
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    data = demo.load_data(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # two OpenMP pools in one process on two cores: keep it quick
    try:
        runs = [(demo.train(jitgrad, name, data, 1, "cpu", 0),
                 demo.train(torch, name, data, 1, "cpu", 0)) for name in demo.SETTINGS]
    finally:
        torch.set_num_threads(threads)
    for ours, theirs in runs:
        assert len(ours["losses"]) == len(theirs["losses"]) == 23
        np.testing.assert_allclose(ours["losses"], theirs["losses"], rtol=1e-3)
        assert abs(ours["accuracy"] - theirs["accuracy"]) * 360 <= 1


def test_missing_device_is_a_clear_error():
    import jitgrad

    if getattr(getattr(jitgrad, "cuda", None), "is_available", lambda: False)():
        pytest.skip("a CUDA device is available")
    res = _run("--device", "cuda", timeout=120)
    assert res.returncode == 2
    assert res.stderr.startswith("error: ") and "cuda" in res.stderr
    assert "Traceback" not in res.stderr and res.stdout == ""
