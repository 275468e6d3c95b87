"""The kernels/ folder ships as the subpackage jitgrad.kernels, in a wheel and in place."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_kernels_import_as_subpackage():
    import jitgrad.kernels
    from jitgrad.kernels import elementwise

    assert jitgrad.kernels.__name__ == "jitgrad.kernels"
    assert pathlib.Path(elementwise.__file__).name == "elementwise.py"


def test_no_top_level_kernels_package_is_installed_by_us():
    # A top-level `kernels` import would collide with an unrelated PyPI package.
    import jitgrad.kernels

    assert "kernels" not in sys.modules or sys.modules["kernels"] is not jitgrad.kernels


@pytest.mark.skipif(os.environ.get("JITGRAD_SKIP_WHEEL") == "1", reason="wheel build disabled")
def test_built_wheel_contains_and_imports_kernels(tmp_path):
    out = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(out), str(ROOT)], check=True)
    wheel = next(out.glob("jitgrad-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for mod in ("elementwise", "reduce", "matmul", "index", "scalar", "cpu", "__init__"):
        assert f"jitgrad/kernels/{mod}.py" in names, names
    assert not any(n.startswith("kernels/") for n in names)
    # every package of the source tree is in the wheel (the package list is written out)
    for init in sorted(ROOT.glob("jitgrad/**/__init__.py")):
        assert init.relative_to(ROOT).as_posix() in names, init
    for init in sorted(ROOT.glob("kernels/**/__init__.py")):
        assert "jitgrad/" + init.relative_to(ROOT).as_posix() in names, init
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(target), str(wheel)], check=True)
    code = ("import jitgrad, jitgrad.kernels.elementwise as e; "
            "x = jitgrad.ones(3, requires_grad=True); (x * x).sum().backward(); "
            "print(e.__file__, x.grad.tolist())")
    env = dict(os.environ, PYTHONPATH=str(target))
    res = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, env=env, cwd=tmp_path)
    path, grads = res.stdout.rsplit(" ", 3)[0], res.stdout.split(" ", 1)[1]
    assert path.startswith(str(target)), res.stdout
    assert grads.strip() == "[2.0, 2.0, 2.0]"
