"""The benchmark harness (``python -m bench``): its machinery on fake fast cases, and one
real quick run in a subprocess. Nothing here asserts on a timing."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import harness, report  # noqa: E402
from bench.harness import Case, Engine, Measured, Settings, Skip, Target  # noqa: E402

# --------------------------------------------------------------------------- fakes


class FakeEngine(Engine):
    """An engine with no library: the fake case gives it plain callables."""

    family = "fake"

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.lib = type("fake_lib", (), {"__name__": "fake_lib"})

    def load(self, threads: int) -> None:
        pass


class FakeCase(Case):
    """y = 2x, with a gradient; `wrong` engines compute 3x, `lacking` ones raise Skip."""

    name = "fake_case"
    title = "fake"
    full = {"n": 4}
    quick = {"n": 4}
    targets = (Target("fwd+bwd", 1.0),)

    def __init__(self, log: list[str], sleep: float = 0.0, wrong: tuple = (),
                 lacking: tuple = ()) -> None:
        self.log, self.sleep, self.wrong, self.lacking = log, sleep, wrong, lacking

    def inputs(self, rng, n):
        return {"x": rng.standard_normal(n).astype(np.float32)}

    def build(self, eng, ins, size):
        if eng.name in self.lacking:
            raise Skip("lacks the op")
        k = 3.0 if eng.name in self.wrong else 2.0
        x = ins["x"]

        def fwd():
            self.log.append(eng.name)
            time.sleep(self.sleep)
            return k * x

        def fwd_bwd():
            self.log.append(eng.name)
            time.sleep(self.sleep)
            return k * x, np.full_like(x, k)

        return {"fwd": fwd, "fwd+bwd": fwd_bwd}


def _engines(*names: str) -> list[Engine]:
    out: list[Engine] = []
    for n in names:
        if n == "numpy":
            e = harness.NumpyEngine()
            e.load(1)
        else:
            e = FakeEngine(n)
        out.append(e)
    return out


def _run(samples: dict[str, list[float]], case: str = "c", threads: int = 1,
         mode: str = "fwd+bwd", targets: list | None = None) -> dict:
    """A synthetic finished run, as a worker would report it."""
    engines = {}
    for name, s in samples.items():
        engines[name] = {"status": "ok", "first_call_s": {mode: 10 * s[0]},
                         "samples": {mode: s}, "timing": {mode: dict(harness.summarize(s),
                                                                     number=1)},
                         "error": {}, "peak_rss": 1 << 20, "peak_mode": mode}
    return {"case": case, "title": case, "modes": [mode], "primary": mode, "per": 1.0,
            "unit": "", "targets": targets or [], "threads": threads, "status": "ok",
            "engines": engines, "worker_maxrss": 100 << 20}


def _doc(runs: list[dict], reference: str = "torch-cpu") -> dict:
    runs = [harness.finish_run(r, reference) for r in runs]
    return {"schema": "jitgrad-bench/1", "created": "2026-01-01T00:00:00", "quick": False,
            "command": "python -m bench", "threads": sorted({r["threads"] for r in runs}),
            "reference": reference,
            "machine": {"cpu": "test cpu", "logical_cpus": 2, "usable_cpus": 2,
                        "memory_bytes": 1 << 30, "env": {}},
            "versions": {"python": "3", "numpy": np.__version__}, "thread_report": {},
            "unavailable": {"torch-cuda": "no GPU"}, "runs": runs, "ok": True}


# --------------------------------------------------------------------------- registry


def test_registry_has_the_issue_cases_and_selects_by_glob():
    cases = harness.load_cases()
    for name in ("per_op", "tanh_10m", "broadcast_mean", "matmul_1024", "matmul_2048",
                 "softmax_ce", "conv2d", "mlp_step", "cold_start"):
        assert name in cases
        case = cases[name]
        assert case.modes and case.full is not None and case.quick is not None
        assert case.primary in case.modes
    assert [c.name for c in harness.select_cases(["matmul_*"])] == ["matmul_1024",
                                                                     "matmul_2048"]
    assert [c.name for c in harness.select_cases(["per_op,cold_start"])] == ["per_op",
                                                                             "cold_start"]
    assert len(harness.select_cases(None)) == len(cases)
    with pytest.raises(KeyError):
        harness.select_cases(["no_such_case"])


def test_register_rejects_duplicates_and_unnamed_cases():
    reg: dict = {}
    old = harness.CASES
    harness.CASES = reg
    try:
        harness.register(FakeCase([]))
        with pytest.raises(ValueError):
            harness.register(FakeCase([]))
        with pytest.raises(ValueError):
            harness.register(Case())
    finally:
        harness.CASES = old
    assert list(reg) == ["fake_case"]


def test_engine_names_and_reference():
    assert harness.make_engine("torch-cuda").device == "cuda"
    assert harness.make_engine("numpy").family == "numpy"
    with pytest.raises(ValueError):
        harness.make_engine("tensorflow-cpu")
    assert harness.default_reference(["jitgrad-cpu", "numpy", "torch-cpu"]) == "torch-cpu"
    assert harness.default_reference(["jitgrad-cpu", "numpy"]) == "numpy"
    assert harness.candidate_engines(["numpy"]) == ["numpy"]
    assert all(n.startswith("jitgrad") for n in harness.candidate_engines(["jitgrad-*"]))


# --------------------------------------------------------------------------- timing, stats


def test_interleave_alternates_engines_and_stops_on_budget():
    order: list[str] = []

    def sampler(name):
        def f():
            order.append(name)
            return 1.0
        return f

    samples = harness.interleave([sampler("A"), sampler("B")], repeats=4)
    assert order == ["A", "B"] * 4
    assert [len(s) for s in samples] == [4, 4]

    ticks = iter(range(1000))
    order.clear()
    samples = harness.interleave([sampler("A"), sampler("B"), sampler("C")], repeats=50,
                                 min_repeats=3, budget=2.5, clock=lambda: next(ticks))
    assert order == ["A", "B", "C"] * 3  # budget passed after round 3 = min_repeats
    assert len({len(s) for s in samples}) == 1


def test_summarize_and_spread():
    s = harness.summarize([5, 1, 4, 2, 3])
    assert (s["median"], s["q1"], s["q3"], s["min"], s["max"], s["n"]) == (3, 2, 4, 1, 5, 5)
    assert harness.relative_spread(s) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        harness.summarize([])


def test_pairwise_ratios_cancel_drift():
    drift = [1.0, 1.5, 0.7, 2.0, 1.1]  # the machine slows and speeds up between rounds
    a = [2.0 * d for d in drift]
    b = list(drift)
    r = harness.pairwise_ratios(a, b)
    assert r["median"] == pytest.approx(2.0) and r["q3"] - r["q1"] == pytest.approx(0.0)
    run = _run({"jitgrad-cpu": a, "numpy": [0.5 * d for d in drift], "torch-cpu": b})
    ratios = harness.compute_ratios(run, "torch-cpu")
    assert set(ratios) == {"jitgrad-cpu", "numpy"}
    assert ratios["jitgrad-cpu"]["fwd+bwd"]["median"] == pytest.approx(2.0)
    assert ratios["numpy"]["fwd+bwd"]["median"] == pytest.approx(0.5)


def test_agreement_checks_values_shapes_and_missing_gradients():
    a = np.array([1.0, 2.0, 4.0])
    assert harness.max_error(a, a) == 0
    assert harness.max_error(a + 4e-3, a) == pytest.approx(1e-3)
    assert harness.max_error(a[:2], a) == np.inf
    assert harness.max_error(np.array([np.nan]), np.array([1.0])) == np.inf
    assert harness.agreement([a], [a], 1e-6) == (0.0, None)
    assert harness.agreement([a * 1.1], [a], 1e-3)[1].startswith("output 0")
    assert "missing" in harness.agreement([None], [a], 1e-3)[1]
    assert harness.agreement([a], [a, a], 1e-3)[1]


def test_targets_ratio_and_seconds():
    ratio_target = dict(vars(Target("fwd+bwd", 1.0)), text="")
    run = _run({"jitgrad-cpu": [2.0, 2.0, 2.0], "torch-cpu": [1.0, 1.0, 1.0]},
               targets=[ratio_target])
    [t] = harness.evaluate_targets(run)
    assert (t["value"], t["met"], t["versus"]) == (2.0, False, "torch-cpu")
    run = _run({"jitgrad-cpu": [0.5, 0.5, 0.5], "torch-cpu": [1.0, 1.0, 1.0]},
               targets=[ratio_target])
    assert harness.evaluate_targets(run)[0]["met"] is True
    run = _run({"jitgrad-cpu": [0.5, 0.5]}, targets=[ratio_target])
    assert harness.evaluate_targets(run)[0]["met"] is None  # no torch: not judged
    first = dict(vars(Target("fwd+bwd", 1.0, kind="seconds", stat="first")), text="")
    median = dict(vars(Target("fwd+bwd", 1.0, kind="seconds")), text="")
    run = _run({"jitgrad-cpu": [0.5, 0.5]}, targets=[first, median])  # first call 5 s
    assert [t["met"] for t in harness.evaluate_targets(run)] == [False, True]


# --------------------------------------------------------------------------- run_case


def test_run_case_checks_then_times_interleaved():
    log: list[str] = []
    case = FakeCase(log, sleep=0.002, wrong=("bad",), lacking=("lacking",))
    engines = _engines("numpy", "A", "bad", "lacking")
    res = harness.run_case(case, engines, Settings.for_quick(repeats=3))
    eng = res["engines"]
    assert res["status"] == "failed"  # "bad" disagrees with numpy
    assert eng["bad"]["status"] == "mismatch" and "disagrees with numpy" in eng["bad"]["reason"]
    assert not eng["bad"]["timing"]
    assert eng["lacking"]["status"] == "skipped" and "lacks the op" in eng["lacking"]["reason"]
    for name in ("numpy", "A"):
        assert eng[name]["status"] == "ok"
        assert set(eng[name]["first_call_s"]) == {"fwd", "fwd+bwd"}
        assert set(eng[name]["timing"]) == {"fwd", "fwd+bwd"}
        assert eng[name]["timing"]["fwd"]["number"] == 1  # 2 ms calls need no batching
    assert eng["A"]["error"]["fwd+bwd"] == 0.0
    n = len(eng["A"]["samples"]["fwd+bwd"])
    assert n == len(eng["numpy"]["samples"]["fwd+bwd"]) >= 2
    assert log[-2 * n:] == ["numpy", "A"] * n  # the last mode's rounds alternate
    json.dumps(res)  # JSON-able as it stands


def test_run_case_without_a_mismatch_is_ok_and_handles_measured_results():
    class SelfTimed(FakeCase):
        modes = ("warm",)
        targets = ()

        def build(self, eng, ins, size):
            return {"warm": lambda: Measured(0.25, ins["x"] * 2, peak_rss=123)}

    res = harness.run_case(SelfTimed([]), _engines("numpy", "A"), Settings.for_quick())
    assert res["status"] == "ok"
    a = res["engines"]["A"]
    assert a["first_call_s"]["warm"] == 0.25 and a["peak_rss"] == 123
    assert a["timing"]["warm"]["median"] == 0.25  # the result's own time, not the call's


def test_an_engine_that_breaks_after_its_first_call_is_an_error_not_a_crash():
    class Flaky(FakeCase):
        def build(self, eng, ins, size):
            prog = super().build(eng, ins, size)
            if eng.name != "flaky":
                return prog
            calls = []

            def fwd():
                calls.append(1)
                if len(calls) > 2:
                    raise RuntimeError("second call broke")
                return prog["fwd"]()
            return dict(prog, fwd=fwd)

    res = harness.run_case(Flaky([]), _engines("numpy", "A", "flaky"), Settings.for_quick())
    assert res["status"] == "failed"
    assert res["engines"]["flaky"]["status"] == "error"
    assert "second call broke" in res["engines"]["flaky"]["reason"]
    assert res["engines"]["A"]["timing"]["fwd+bwd"]["n"] >= 2


def test_missing_requirements_skip_the_engine():
    case = FakeCase([])
    case.requires = {"fake": ("nn.functional.no_such_op",)}
    res = harness.run_case(case, _engines("numpy", "A"), Settings.for_quick())
    assert res["engines"]["A"]["status"] == "skipped"
    assert "fake_lib.nn.functional.no_such_op" in res["engines"]["A"]["reason"]
    assert res["status"] == "ok"


# --------------------------------------------------------------------------- reports


def _sample_doc() -> dict:
    ratio_target = dict(vars(Target("fwd+bwd", 1.0)), text="")
    runs = [_run({"jitgrad-cpu": [2.0, 2.1, 1.9], "numpy": [1.0, 1.1, 0.9],
                  "torch-cpu": [1.0, 1.0, 1.0]}, case="slow", targets=[ratio_target]),
            _run({"jitgrad-cpu": [0.5, 0.5, 0.5], "torch-cpu": [1.0, 1.0, 1.0]},
                 case="fast", targets=[ratio_target])]
    runs[1]["engines"]["numpy"] = {"status": "skipped", "reason": "no numpy side",
                                   "first_call_s": {}, "timing": {}, "samples": {},
                                   "error": {}}
    return _doc(runs)


def test_json_and_markdown_and_text_reports(tmp_path):
    doc = _sample_doc()
    report.write_json(doc, tmp_path / "results.json")
    back = json.loads((tmp_path / "results.json").read_text())
    assert back["runs"][0]["ratios"]["jitgrad-cpu"]["fwd+bwd"]["median"] == pytest.approx(2.0)
    report.write_markdown(doc, tmp_path / "results.md")
    md = (tmp_path / "results.md").read_text()
    assert "| case | mode | jitgrad-cpu | numpy | torch-cpu | jitgrad-cpu / torch-cpu |" in md
    assert "≤1x: 2.00x MISSED" in md and "≤1x: 0.50x met" in md
    assert "numpy skipped: no numpy side" in md and "torch-cuda: not available" in md
    text = report.render_text(doc)
    assert "2.00x [" in text and "skip" in text
    why = report.write_chart(doc, tmp_path / "ratios.png")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert why and "matplotlib" in why
    else:
        assert why is None and (tmp_path / "ratios.png").stat().st_size > 0


def test_compare_flags_a_regression_beyond_the_noise():
    old = _doc([_run({"jitgrad-cpu": [1.0, 1.01, 0.99, 1.0], "torch-cpu": [1.0] * 4})])
    slower = _doc([_run({"jitgrad-cpu": [1.5, 1.52, 1.48, 1.5], "torch-cpu": [1.0] * 4})])
    noisy = _doc([_run({"jitgrad-cpu": [0.7, 1.6, 1.0, 1.3], "torch-cpu": [1.0] * 4})])
    same = _doc([_run({"jitgrad-cpu": [1.02, 1.0, 1.03, 1.01], "torch-cpu": [1.0] * 4})])
    cmp = report.compare(old, slower)
    flagged = {(r["metric"], r["engine"]) for r in cmp["regressions"]}
    assert flagged == {("time", "jitgrad-cpu"), ("ratio", "jitgrad-cpu")}
    assert cmp["regressions"][0]["change"] == pytest.approx(0.5)
    assert report.compare(old, same)["regressions"] == []
    assert report.compare(old, noisy)["regressions"] == []  # within the measured spread
    assert {(r["metric"], r["engine"]) for r in report.compare(slower, old)["improvements"]} \
        == {("time", "jitgrad-cpu"), ("ratio", "jitgrad-cpu")}
    lines = report.compare_lines(cmp)
    assert any(line.startswith("REGRESSION c fwd+bwd jitgrad-cpu (time") for line in lines)


def test_progress_bar_logs_lines_off_a_terminal():
    out = io.StringIO()
    bar = report.Progress(4, stream=out)
    bar.update(1.5, "case")
    bar.log("[2/4] done")
    bar.close()
    assert out.getvalue() == "[2/4] done\n"
    assert report.Progress(4, stream=io.StringIO(), tty=False).render().startswith("[....")
    bar = report.Progress(2, stream=io.StringIO(), width=10)
    bar.update(1, "half")
    assert bar.render().startswith("[#####.....]  50% 1/2 half")


# --------------------------------------------------------------------------- the command


def _bench(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", *args, "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, **env), check=False)


def test_quick_run_of_one_cheap_case(tmp_path):
    res = _bench(["--quick", "--case", "broadcast_mean", "--no-chart"], tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    doc = json.loads((tmp_path / "results.json").read_text())
    [run] = doc["runs"]
    assert run["case"] == "broadcast_mean" and run["status"] == "ok"
    assert run["engines"]["jitgrad-cpu"]["status"] == "ok"
    assert run["engines"]["numpy"]["timing"]["fwd+bwd"]["n"] >= 2
    assert doc["machine"]["logical_cpus"] and doc["versions"]["jitgrad"]
    assert doc["thread_report"]["1"]["numba"] == 1
    assert "broadcast_mean" in res.stdout and (tmp_path / "results.md").exists()


def test_quick_run_fails_on_numerical_disagreement(tmp_path):
    mod = tmp_path / "wrong_cases.py"
    mod.write_text(textwrap.dedent("""
        from bench.harness import Case, register

        @register
        class Wrong(Case):
            name = "wrong_on_purpose"
            modes = ("fwd",)

            def inputs(self, rng):
                return {"x": rng.standard_normal(3)}

            def numpy(self, ins):
                return {"fwd": lambda: ins["x"] * 2}

            def torchlike(self, eng, ins):
                return {"fwd": lambda: ins["x"] * 3}
    """))
    res = _bench(["--quick", "--case", "wrong_on_purpose", "--engines", "numpy,jitgrad-cpu",
                  "--no-chart"], tmp_path / "out", JITGRAD_BENCH_CASES="wrong_cases",
                 PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]))
    assert res.returncode == 1, res.stdout + res.stderr
    assert "MISMATCH" in res.stdout and "disagrees with numpy" in res.stdout


@pytest.mark.skipif(__import__("shutil").which("ptxas") is None, reason="needs ptxas")
def test_cuda_register_report_compiles_the_main_kernels_without_spills():
    # bench/cuda_regs.py: every kernel it lists assembles for sm_90, none spills to local
    # memory, and each fits at least one block per multiprocessor; where the disassembler
    # is installed, each GEMM's innermost loop reads shared memory 16 bytes at a time and
    # is mostly FMAs (the compiler vectorises those loads only when it can prove their
    # alignment, which a change of tile layout can silently lose)
    pytest.importorskip("numba_cuda")
    env = dict(os.environ)
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    r = subprocess.run([sys.executable, "-m", "bench.cuda_regs"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    table, _, rest = r.stdout.partition("\n\n")
    assert table.startswith("# ptxas "), r.stdout
    rows = [line.split() for line in table.splitlines()[2:] if line.strip()]
    # three tiles the products pick (float32 small and large, float64), each in four staging
    # variants (operands 4 (8) or 16 bytes at a time), and eight other kernels
    assert sum(row[0] == "gemm" for row in rows) == 12 and len(rows) == 20, r.stdout
    capped = 0
    for row in rows:
        assert row[-6] == "0/0" and int(row[-3]) >= 1, row
        if row[-2] != "-":  # a register cap: no spill, and more blocks per multiprocessor
            capped += 1     # than ptxas's own choice of registers gives
            assert int(row[-7]) <= int(row[-2]), row
            assert int(row[-3]) > int(row[-1].split("r/")[1].rstrip("b")), row
    assert capped >= 3, r.stdout  # (the 128x128 float32 tile, the 64x64 one, float64)
    from bench.cuda_regs import _nvdisasm

    if _nvdisasm() is None:
        return
    wide, _, rest = rest.partition("\n\n")
    flight, _, loops = rest.partition("\n\n")
    # a fold issues four loads before the branches of its step (four states in turn)
    folds = [line for line in flight.splitlines() if line.startswith("  fold")]
    assert len(folds) == 2, r.stdout
    for line in folds:
        assert int(re.search(r"(\d+) loads", line).group(1)) >= 4, line
    # the elementwise vector variants read and write global memory 16 bytes at a time
    vec = [line for line in wide.splitlines() if "(16B)" in line]
    assert len(vec) == 2, r.stdout
    for line in vec:
        loads, stores = (int(v) for v in re.findall(r"(\d+) (?:LDG|STG)[.]E[.]128", line))
        assert loads >= 4 and stores >= 2, line
    inner = [line.split(": ", 1)[1].split(" | ")[0] for line in loops.splitlines()
             if line.startswith("  gemm")]
    assert len(inner) == 12, r.stdout
    for text in inner:
        n, fma = (int(w) for w in re.match(r"(\d+) instr, (\d+) FMA", text).groups())
        assert fma / n >= 0.7 and "LDS.128" in text and "LDS " not in text + " ", text