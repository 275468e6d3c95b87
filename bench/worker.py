"""One worker process: runs cases at one thread setting and reports in JSON lines.

    python -m bench.worker < spec.json

The parent starts it with the thread environment variables already set (BLAS and OpenMP
size their pools when they load, so this cannot be changed from inside), and the spec on
stdin: {"cases": [...], "engines": [...], "threads": N, "quick": bool, "repeats": N|null,
"budget_scale": x, "seed": N}. Events go to the original stdout, one JSON object a line:
"engines" (which loaded), "progress" (case, fraction, label), "result" (one case's run),
"info" (versions and thread counts). Anything else written to stdout while cases run
(library warnings, prints) is sent to stderr, so it cannot corrupt the stream.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from typing import Any, TextIO


def _emitter(stream: TextIO):
    def emit(event: str, **fields: Any) -> None:
        stream.write(json.dumps(dict(fields, event=event)) + "\n")
        stream.flush()
    return emit


def main() -> int:
    spec = json.load(sys.stdin)
    # Keep the real stdout for events; route fd 1 (prints, C libraries) to stderr.
    events = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    emit = _emitter(events)

    from . import harness
    from .machine import versions_and_threads

    threads = int(spec["threads"])
    engines, unavailable, broken = [], {}, {}
    for name in spec["engines"]:
        eng = harness.make_engine(name)
        try:
            eng.load(threads)
        except harness.Unavailable as e:
            unavailable[name] = str(e)
            continue
        except Exception as e:  # noqa: BLE001 - e.g. a half-edited jitgrad that fails to import
            broken[name] = f"cannot load: {type(e).__name__}: {e}"
            traceback.print_exc()
            continue
        engines.append(eng)
    emit("engines", loaded=[e.name for e in engines], unavailable=unavailable, broken=broken)

    if spec["quick"]:
        settings = harness.Settings.for_quick(spec.get("repeats"))
    else:
        settings = harness.Settings.for_full(spec.get("repeats"), spec.get("budget_scale", 1.0))
    if spec.get("seed") is not None:
        settings = harness.Settings(**dict(vars(settings), seed=int(spec["seed"])))

    cases = harness.load_cases()
    for name in spec["cases"]:
        case = cases[name]

        def progress(frac: float, label: str, name: str = name) -> None:
            emit("progress", case=name, frac=frac, label=label)

        try:
            run = harness.run_case(case, engines, settings, progress)
        except Exception as e:  # noqa: BLE001 - a broken case must not take the others down
            run = dict(case.describe(), status="failed", engines={},
                       reason=f"{type(e).__name__}: {e}", traceback=traceback.format_exc())
        for bad, why in broken.items():  # every case fails while an engine cannot load
            run["engines"][bad] = {"status": "error", "reason": why, "first_call_s": {},
                                   "timing": {}, "samples": {}, "error": {}}
            run["status"] = "failed"
        run["threads"] = threads
        run["worker_maxrss"] = harness.max_rss()
        emit("result", run=run)

    emit("info", **versions_and_threads())
    events.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
