"""``python -m bench``: run the benchmark cases on every engine and report.

    python -m bench                       # every case, 1 thread
    python -m bench --threads 1,2         # one worker process per thread setting (and case)
    python -m bench --quick               # tiny sizes, few repeats: the CI smoke run
    python -m bench --case 'matmul_*' --engines jitgrad-cpu,torch-cpu
    python -m bench --compare bench/results/OLD/results.json
    python -m bench --list

Each (thread setting, case) runs in a fresh worker (``bench/worker.py``) started with the
thread environment variables set, since BLAS and OpenMP size their thread pools once, when
they load; a fresh process also gives each case its own peak memory. ``--quick`` runs all
cases of a thread setting in one worker to save the start-up time. Results go to
``bench/results/<timestamp>/`` (results.json, results.md, ratios.png). The exit status is 1
when an engine disagrees with the others or a case fails, never because of a timing.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import harness, report
from .machine import RECORDED_ENV, machine_info, thread_env

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
# Set on some machines to keep older OpenBLAS builds off kernels that misbehave there; they
# also slow a current numpy's OpenBLAS down (Haswell kernels on an AVX-512 CPU).
NATIVE_BLAS_UNSET = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def _ints(values: list[str]) -> list[int]:
    out: list[int] = []
    for v in values:
        for part in v.split(","):
            if part.strip():
                n = int(part)
                if n < 1:
                    raise argparse.ArgumentTypeError("thread counts must be >= 1")
                if n not in out:
                    out.append(n)
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="tiny sizes and few repeats (CI): checks agreement, times nothing real")
    ap.add_argument("--case", action="append", metavar="NAME",
                    help="cases to run: names or globs, repeatable or comma-separated")
    ap.add_argument("--engines", action="append", metavar="LIST",
                    help="engines to run: names or globs, e.g. 'jitgrad-*,torch-cpu'")
    ap.add_argument("--threads", action="append", metavar="N[,N...]",
                    help="thread settings, each in its own worker processes (default: 1)")
    ap.add_argument("--reference", help="engine the ratios are taken against "
                    "(default: torch-cpu when torch is installed, else numpy)")
    ap.add_argument("--compare", metavar="OLD.json", type=Path,
                    help="flag figures that moved beyond the noise since that run")
    ap.add_argument("--out", type=Path, help="output folder (default bench/results/<timestamp>)")
    ap.add_argument("--repeats", type=int, help="rounds per mode at most (default 25; quick 3)")
    ap.add_argument("--budget-scale", type=float, default=1.0,
                    help="scale each mode's sampling time budget (default 1.0: about 6 s)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the inputs")
    ap.add_argument("--worker-per", choices=("case", "threads"),
                    help="one worker per (thread setting, case) [default], or per thread "
                         "setting [default with --quick]")
    ap.add_argument("--timeout", type=float, help="seconds one worker may take "
                    "(default 1800; quick 300)")
    ap.add_argument("--native-blas", action="store_true",
                    help="start workers without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, so numpy's "
                         "OpenBLAS picks its kernels for this CPU (the BLAS line of the report "
                         "says which ran)")
    ap.add_argument("--no-chart", action="store_true", help="skip the PNG chart")
    ap.add_argument("--list", action="store_true", help="list cases and engines, then exit")
    args = ap.parse_args(argv)
    try:
        args.threads = _ints(args.threads or ["1"])
    except (ValueError, argparse.ArgumentTypeError) as e:
        ap.error(f"--threads: {e}")
    try:
        args.cases = harness.select_cases(args.case)
    except KeyError as e:
        ap.error(str(e.args[0]))
    args.engine_names = harness.candidate_engines(args.engines)
    if not args.engine_names:
        ap.error(f"no engine matches {args.engines}; known: {', '.join(harness.ENGINE_NAMES)}")
    if args.reference and args.reference not in args.engine_names:
        ap.error(f"--reference {args.reference} is not among the engines "
                 f"{', '.join(args.engine_names)}")
    args.reference = args.reference or harness.default_reference(args.engine_names)
    args.worker_per = args.worker_per or ("threads" if args.quick else "case")
    args.timeout = args.timeout or (300.0 if args.quick else 1800.0)
    return args


def list_cases(args: argparse.Namespace) -> None:
    for case in harness.load_cases().values():
        targets = "; ".join(f"{t.mode} {t.describe()}" for t in case.targets) or "-"
        print(f"{case.name:16s} {case.title}\n{'':16s} modes {', '.join(case.modes)}; "
              f"full {case.full or '-'}; quick {case.quick or '-'}; targets: {targets}")
    print(f"\nengines to try: {', '.join(args.engine_names)} (CUDA ones are dropped by the "
          f"worker when there is no GPU); reference: {args.reference}")


def run_worker(spec: dict[str, Any], env: dict[str, str], timeout: float,
               progress: report.Progress, base: int, total_cases: int,
               reference: str) -> tuple[list[dict], dict[str, Any], dict[str, str]]:
    """Start one worker, follow its events; returns (finished runs, info, unavailable)."""
    runs: list[dict] = []
    info: dict[str, Any] = {}
    unavailable: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([sys.executable, "-m", "bench.worker"], cwd=ROOT, env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                                text=True, bufsize=1)
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps(spec))
        proc.stdin.close()
        started = time.monotonic()
        try:
            for line in proc.stdout:
                if time.monotonic() > deadline:
                    proc.kill()
                    break
                try:
                    ev = json.loads(line)
                except json.JSONDecodeError:
                    continue
                kind = ev.get("event")
                if kind == "engines":
                    unavailable.update(ev["unavailable"])
                elif kind == "progress":
                    progress.update(base + len(runs) + ev["frac"],
                                    f"{spec['threads']} thr · {ev['case']} · {ev['label']}")
                elif kind == "result":
                    run = harness.finish_run(ev["run"], reference)
                    runs.append(run)
                    took = run.get("elapsed_s", time.monotonic() - started)
                    progress.update(base + len(runs), "")
                    progress.log(f"[{base + len(runs)}/{total_cases}] {spec['threads']} thr "
                                 f"{run['case']}: {run['status']} ({took:.1f} s)")
                elif kind == "info":
                    info = ev
        finally:
            try:
                proc.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        err.seek(0)
        stderr = err.read()
    done = {r["case"] for r in runs}
    for name in spec["cases"]:
        if name not in done:  # the worker died or timed out before finishing this case
            case = harness.CASES[name]
            why = (f"worker exited with status {proc.returncode} before finishing"
                   if proc.returncode else "worker timed out")
            runs.append(dict(case.describe(), threads=spec["threads"], status="failed",
                             engines={}, reason=why, stderr=stderr[-4000:],
                             reference=reference, ratios={}, target_results=[]))
            progress.log(f"{name}: {why}\n{stderr[-2000:]}")
    return runs, info, unavailable


def worker_env(threads: int, native_blas: bool) -> dict[str, str]:
    env = dict(os.environ, **thread_env(threads))
    if native_blas:
        for k in NATIVE_BLAS_UNSET:
            env.pop(k, None)
    return env


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        list_cases(args)
        return 0
    machine = machine_info()
    # What the workers saw, not this process: --native-blas drops the core-type override.
    machine["env"] = {k: v for k, v in worker_env(1, args.native_blas).items()
                      if k in RECORDED_ENV}
    cores = machine["usable_cpus"] or machine["logical_cpus"] or 1
    if max(args.threads) > cores:
        print(f"warning: {max(args.threads)} threads on {cores} usable CPUs", file=sys.stderr)

    names = [c.name for c in args.cases]
    jobs = [(t, [n]) for t in args.threads for n in names] if args.worker_per == "case" \
        else [(t, names) for t in args.threads]
    total = len(args.threads) * len(names)
    progress = report.Progress(total)
    created = _dt.datetime.now()
    loadavg = os.getloadavg() if hasattr(os, "getloadavg") else None
    runs: list[dict] = []
    infos: dict[str, Any] = {}
    unavailable: dict[str, str] = {}
    t0 = time.monotonic()
    try:
        for threads, cases in jobs:
            spec = {"cases": cases, "engines": args.engine_names, "threads": threads,
                    "quick": args.quick, "repeats": args.repeats,
                    "budget_scale": args.budget_scale, "seed": args.seed}
            env = worker_env(threads, args.native_blas)
            got, info, unav = run_worker(spec, env, args.timeout, progress, len(runs), total,
                                         args.reference)
            runs += got
            unavailable.update(unav)
            if info:
                infos[str(threads)] = info
    finally:
        progress.close()

    first_info = next(iter(infos.values()), {})
    doc: dict[str, Any] = {
        "schema": "jitgrad-bench/1",
        "created": created.isoformat(timespec="seconds"),
        "command": shlex.join(["python", "-m", "bench", *(sys.argv[1:] if argv is None
                                                          else argv)]),
        "quick": args.quick,
        "native_blas": args.native_blas,
        "threads": args.threads,
        "reference": args.reference,
        "machine": machine,
        "versions": first_info.get("versions", {}),
        "thread_report": {k: v.get("threads", {}) for k, v in infos.items()},
        "unavailable": unavailable,
        "loadavg_start": [round(x, 2) for x in loadavg] if loadavg else None,
        "loadavg_end": ([round(x, 2) for x in os.getloadavg()]
                        if hasattr(os, "getloadavg") else None),
        "elapsed_s": time.monotonic() - t0,
        "runs": runs,
    }
    doc["ok"] = all(r["status"] != "failed" for r in runs)
    if args.compare:
        try:
            old = json.loads(args.compare.read_text())
        except (OSError, json.JSONDecodeError) as e:
            print(f"--compare: cannot read {args.compare}: {e}", file=sys.stderr)
        else:
            doc["compare"] = dict(report.compare(old, doc), against=str(args.compare))

    out = args.out or RESULTS / created.strftime("%Y%m%d-%H%M%S")
    if args.out is None and out.exists():
        out = out.with_name(out.name + f"-{os.getpid()}")
    out.mkdir(parents=True, exist_ok=True)
    report.write_json(doc, out / "results.json")
    report.write_markdown(doc, out / "results.md")
    chart = None if args.no_chart else report.write_chart(doc, out / "ratios.png")

    print(report.render_text(doc))
    print()
    if chart:
        print(chart)
    written = ["results.json", "results.md"] + ([] if chart or args.no_chart else ["ratios.png"])
    print(f"wrote {', '.join(written)} to {_rel(out)} in {doc['elapsed_s']:.0f} s")
    if not doc["ok"]:
        bad = [f"{r['case']} ({r['threads']} thr)" for r in runs if r["status"] == "failed"]
        print(f"FAILED: {', '.join(bad)}: engines disagree or a case broke (see notes)",
              file=sys.stderr)
        return 1
    return 0


def _rel(p: Path) -> str:
    try:
        return str(p.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(p)


if __name__ == "__main__":
    sys.exit(main())
