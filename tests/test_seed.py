"""The seed tutorial's examples run unchanged and print what PyTorch prints."""

from __future__ import annotations

import contextlib
import io
import pathlib
import runpy
import sys
import warnings

import pytest

SEED = pathlib.Path(__file__).resolve().parents[1] / "examples" / "seed"

FREED = ("RuntimeError: Trying to backward through the graph a second time (or directly access "
         "saved tensors after they have already been freed). Saved intermediate values of the "
         "graph are freed when you call .backward() or autograd.grad(). Specify "
         "retain_graph=True if you need to backward through the graph a second time or if you "
         "need to access saved tensors after calling backward.\n")

# What PyTorch 2.13 prints for each file; the random draws follow manual_seed(SEED).
SEED_VALUE = 67280421310721
EXPECTED = {
    "ex1_eager_forward.py": ("tensor(22.6263)\ntensor([[0.6564],\n        [4.3237],\n"
                             "        [5.9946],\n        [3.5167],\n        [7.8717],\n"
                             "        [5.2751],\n        [1.2042],\n        [3.9403],\n"
                             "        [0.0428],\n        [5.1233]])\n"),
    "ex2_graph_freed.py": FREED,
    "ex3_function.py": "tensor([[4.5000, 4.5000]])\ntensor([[4.5000]])\n",
    "ex4_leaves.py": "loss.grad: None\ny1.grad: None\ny2.grad: None\ntensor(4.)\n",
    "ex5_hooks.py": ("y2 grad:  tensor(4.)\ny1 grad:  tensor(-4.)\nloss.grad: tensor(1.)\n"
                     "x.grad: tensor(4.)\n"),
}


def _run(path: pathlib.Path, module) -> str:
    saved = sys.modules.get("jitgrad")
    sys.modules["jitgrad"] = module
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            runpy.run_path(str(path), run_name="__main__")
    finally:
        sys.modules["jitgrad"] = saved
    return buf.getvalue()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_seed_prints_pinned_values(name):
    import jitgrad

    jitgrad.manual_seed(SEED_VALUE)
    assert _run(SEED / name, jitgrad) == EXPECTED[name]


def test_non_leaf_grad_warns_like_torch():
    import jitgrad

    with pytest.warns(UserWarning, match="is not a leaf Tensor is being accessed"):
        _run_warn(SEED / "ex4_leaves.py", jitgrad)


def _run_warn(path, module):
    saved = sys.modules.get("jitgrad")
    sys.modules["jitgrad"] = module
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            runpy.run_path(str(path), run_name="__main__")
    finally:
        sys.modules["jitgrad"] = saved


@pytest.mark.parametrize("name", sorted(p.name for p in SEED.glob("ex*.py")))
def test_seed_matches_torch_exactly(name):
    torch = pytest.importorskip("torch")
    import jitgrad

    jitgrad.manual_seed(SEED_VALUE)
    torch.manual_seed(SEED_VALUE)
    assert _run(SEED / name, jitgrad) == _run(SEED / name, torch)
