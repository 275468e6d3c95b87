"""Everything a person reads: the progress bar, the terminal and markdown tables, the JSON
file, the ratio chart, and the comparison with an earlier run (``--compare``).

All of it works from the JSON-able results document alone, so an old ``results.json`` can be
rendered or compared without rerunning anything.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from .harness import ENGINE_NAMES, relative_spread

# --------------------------------------------------------------------------- progress bar


class Progress:
    """A one-line progress bar on a terminal; plain log lines anywhere else (CI logs)."""

    def __init__(self, total: int, stream: TextIO | None = None, tty: bool | None = None,
                 width: int = 24) -> None:
        self.total = max(1, total)
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.width = width
        self.done = 0.0
        self.label = ""

    def update(self, done: float, label: str = "") -> None:
        self.done, self.label = min(done, self.total), label
        if self.tty:
            self._draw()

    def log(self, line: str) -> None:
        if self.tty:
            self._clear()
        self.stream.write(line + "\n")
        if self.tty:
            self._draw()
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self._clear()
            self.stream.flush()

    def render(self) -> str:
        frac = self.done / self.total
        filled = round(frac * self.width)
        return (f"[{'#' * filled}{'.' * (self.width - filled)}] {100 * frac:3.0f}% "
                f"{int(self.done)}/{self.total} {self.label}")

    def _draw(self) -> None:
        cols = shutil.get_terminal_size((100, 20)).columns
        self.stream.write("\r" + self.render()[: cols - 1].ljust(cols - 1))
        self.stream.flush()

    def _clear(self) -> None:
        cols = shutil.get_terminal_size((100, 20)).columns
        self.stream.write("\r" + " " * (cols - 1) + "\r")


# --------------------------------------------------------------------------- formatting


def fmt_time(seconds: float | None, unit: str = "") -> str:
    if seconds is None or not math.isfinite(seconds):
        return "–"
    suffix = f"/{unit}" if unit else ""
    for scale, name in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {name}{suffix}"
    return f"{seconds * 1e9:.3g} ns{suffix}"


def fmt_bytes(n: int | None) -> str:
    if n is None:
        return "–"
    if n >= 1 << 30:
        return f"{n / (1 << 30):.2f} GiB"
    if n >= 1 << 20:
        return f"{n / (1 << 20):.1f} MiB"
    return f"{n / 1024:.0f} KiB"


def fmt_ratio(r: dict[str, float] | None, spread: bool = True) -> str:
    if not r:
        return "–"
    s = f"{r['median']:.2f}x"
    return s + f" [{r['q1']:.2f}–{r['q3']:.2f}]" if spread else s


def _engine_cell(er: dict[str, Any] | None, mode: str, unit: str) -> str:
    if er is None:
        return "–"
    if er["status"] in ("mismatch", "error"):
        return er["status"].upper()
    if er["status"] == "skipped":
        return "skip"
    t = er.get("timing", {}).get(mode)
    if not t:
        return "–"
    return f"{fmt_time(t['median'], unit)} ±{50 * relative_spread(t):.0f}%"


def _target_cell(items: list[dict[str, Any]], multi_device: bool) -> str:
    cells = []
    for t in items:
        head = f"{t['engine'].partition('-')[2]}: " if multi_device else ""
        if t["kind"] == "ratio":
            rule = f"≤{t['limit']:g}x"
            value = "–" if t["value"] is None else f"{t['value']:.2f}x"
        else:
            rule = f"{t['stat']} <{t['limit']:g} s"
            value = "–" if t["value"] is None else f"{t['value']:.2f} s"
        verdict = {True: "met", False: "MISSED", None: "n/a"}[t["met"]]
        cells.append(f"{head}{rule}: {value} {verdict}")
    return "; ".join(cells)


def engines_shown(doc: dict[str, Any]) -> list[str]:
    """Engines that ran somewhere in this document, in the canonical order."""
    seen = {n for run in doc["runs"] for n in run.get("engines", {})}
    return [n for n in ENGINE_NAMES if n in seen] + sorted(seen - set(ENGINE_NAMES))


def timing_rows(doc: dict[str, Any], threads: int) -> tuple[list[str], list[list[str]]]:
    ref = doc["reference"]
    engines = engines_shown(doc)
    others = [e for e in engines if e != ref]
    headers = ["case", "mode", *engines, *[f"{e} / {ref}" for e in others], "target"]
    multi = len({e for e in engines if e.startswith("jitgrad-")}) > 1
    rows = []
    for run in doc["runs"]:
        if run["threads"] != threads:
            continue
        unit = run.get("unit", "")
        for mode in run.get("modes", []):
            row = [run["case"], mode]
            row += [_engine_cell(run.get("engines", {}).get(e), mode, unit) for e in engines]
            row += [fmt_ratio(run.get("ratios", {}).get(e, {}).get(mode)) for e in others]
            targets = [t for t in run.get("target_results", []) if t["mode"] == mode]
            row.append(_target_cell(targets, multi))
            rows.append(row)
    return headers, rows


def first_call_rows(doc: dict[str, Any], threads: int) -> tuple[list[str], list[list[str]]]:
    engines = engines_shown(doc)
    headers = ["case", *[f"{e}: first call · peak extra RSS" for e in engines],
               "worker peak RSS"]
    rows = []
    for run in doc["runs"]:
        if run["threads"] != threads:
            continue
        row = [run["case"]]
        for e in engines:
            er = run.get("engines", {}).get(e)
            if not er or er["status"] != "ok" or not er.get("first_call_s"):
                row.append("–")
                continue
            mode = run.get("primary") or er.get("peak_mode") or list(er["first_call_s"])[-1]
            first = er["first_call_s"].get(mode)
            cell = f"{fmt_time(first)} ({mode}) · {fmt_bytes(er.get('peak_rss'))}"
            if er.get("device_peak") is not None:
                cell += f" · device {fmt_bytes(er['device_peak'])}"
            row.append(cell)
        row.append(fmt_bytes(run.get("worker_maxrss")))
        rows.append(row)
    return headers, rows


def notes(doc: dict[str, Any]) -> list[str]:
    out = []
    for name, why in doc.get("unavailable", {}).items():
        out.append(f"{name}: not available ({why})")
    seen = set()
    for run in doc["runs"]:
        if run.get("reason"):
            out.append(f"{run['case']} (threads {run['threads']}): {run['status']}: "
                       f"{run['reason']}")
        for name, er in run.get("engines", {}).items():
            if er["status"] != "ok":
                key = (run["case"], name, er.get("reason"))
                if key not in seen:
                    seen.add(key)
                    out.append(f"{run['case']}: {name} {er['status']}: {er.get('reason', '')}")
    return out


def text_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows)]
    def line(cells: Iterable[str]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()
    return "\n".join([line(headers), line("-" * w for w in widths), *map(line, rows)])


def markdown_table(headers: list[str], rows: list[list[str]], left: int = 1,
                   right_last: bool = False) -> str:
    """Columns after the first ``left`` are right-aligned figures, except the last one
    unless ``right_last``."""
    def line(cells: Iterable[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"
    align = ["---" if i < left else "---:" for i in range(len(headers))]
    if not right_last:
        align[-1] = "---"
    return "\n".join([line(headers), "|" + "|".join(align) + "|", *map(line, rows)])


def _header_lines(doc: dict[str, Any]) -> list[str]:
    m, v = doc["machine"], doc.get("versions", {})
    vers = ", ".join(f"{k} {v[k]}" for k in ("python", "numpy", "numba", "torch", "jitgrad")
                     if k in v)
    machine = (f"machine: {m['cpu']}, {m['logical_cpus']} logical CPUs "
               f"({m.get('usable_cpus')} usable), {fmt_bytes(m.get('memory_bytes'))}; "
               f"load average at start {doc.get('loadavg_start', '?')}")
    lines = [machine, f"versions: {vers}"]
    if v.get("openblas"):
        blas_env = {k: x for k, x in m.get("env", {}).items() if k.startswith("OPENBLAS")}
        lines.append(f"numpy's BLAS: {v['openblas'].strip()}"
                     + (f"; env {blas_env}" if blas_env else ""))
    lines.append(f"command: `{doc['command']}`")
    lines.append(f"each cell: median ±half the interquartile range; ratios: time over "
                 f"{doc['reference']}, median [IQR] of per-round ratios (engines interleaved)")
    if doc["quick"]:
        lines.append("QUICK RUN: tiny sizes, few repeats; the timings and targets mean nothing")
    return lines


def _threads_heading(doc: dict[str, Any], threads: int) -> str:
    rep = doc.get("thread_report", {}).get(str(threads), {})
    actual = ", ".join(f"{k} {v}" for k, v in rep.items() if k != "env" and v is not None)
    return f"{threads} thread{'s' if threads != 1 else ''}" + (f" ({actual})" if actual else "")


def render_text(doc: dict[str, Any]) -> str:
    parts = _header_lines(doc)
    for threads in doc["threads"]:
        parts += ["", "== " + _threads_heading(doc, threads), ""]
        parts.append(text_table(*timing_rows(doc, threads)))
        parts += ["", "first calls (compilation included) and memory:"]
        parts.append(text_table(*first_call_rows(doc, threads)))
    n = notes(doc)
    if n:
        parts += ["", "notes:", *[f"  - {x}" for x in n]]
    if doc.get("compare"):
        parts += ["", *compare_lines(doc["compare"])]
    return "\n".join(parts)


def render_markdown(doc: dict[str, Any]) -> str:
    parts = [f"# jitgrad benchmarks, {doc['created']}" + (" (quick)" if doc["quick"] else ""),
             "", *[f"- {x}" for x in _header_lines(doc)]]
    for threads in doc["threads"]:
        parts += ["", "## " + _threads_heading(doc, threads), ""]
        parts.append(markdown_table(*timing_rows(doc, threads), left=2))
        parts += ["", "First calls (compilation included) and memory:", ""]
        parts.append(markdown_table(*first_call_rows(doc, threads), right_last=True))
    parts += ["", "## Cases", ""]
    for run in doc["runs"]:
        if run["threads"] == doc["threads"][0]:
            size = ", ".join(f"{k}={v}" for k, v in run.get("size", {}).items())
            parts.append(f"- `{run['case']}`: {run.get('title', '')}"
                         + (f" (here: {size})" if size else ""))
    n = notes(doc)
    if n:
        parts += ["", "## Notes", "", *[f"- {x}" for x in n]]
    if doc.get("compare"):
        parts += ["", "## Compared with an earlier run", "",
                  *[f"- {x}" for x in compare_lines(doc["compare"])[1:]]]
    return "\n".join(parts) + "\n"


# --------------------------------------------------------------------------- files


def write_json(doc: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(doc, indent=1, sort_keys=False, default=str) + "\n")


def write_markdown(doc: dict[str, Any], path: Path) -> None:
    path.write_text(render_markdown(doc))


def write_chart(doc: dict[str, Any], path: Path) -> str | None:
    """A PNG of every ratio against the reference (log scale, targets marked). Returns why
    it was not written, or None."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no chart (pip install matplotlib for one)"
    ref = doc["reference"]
    panels = []
    for threads in doc["threads"]:
        bars = []
        for run in doc["runs"]:
            if run["threads"] != threads:
                continue
            for eng, modes in run.get("ratios", {}).items():
                for mode, r in modes.items():
                    limit = next((t["limit"] for t in run.get("target_results", [])
                                  if t["kind"] == "ratio" and t["mode"] == mode
                                  and t["engine"] == eng and t.get("versus") == ref), None)
                    bars.append((f"{run['case']} {mode} · {eng}", r, limit))
        if bars:
            panels.append((threads, bars))
    if not panels:
        return "no ratios to chart"
    height = max(3.0, 0.28 * max(len(b) for _, b in panels) + 1.2)
    fig, axes = plt.subplots(1, len(panels), figsize=(7.5 * len(panels), height), squeeze=False)
    for ax, (threads, bars) in zip(axes[0], panels):
        ys = list(range(len(bars)))[::-1]
        med = [b[1]["median"] for b in bars]
        err = [[b[1]["median"] - b[1]["q1"] for b in bars],
               [b[1]["q3"] - b[1]["median"] for b in bars]]
        colors = ["tab:blue" if "jitgrad" in b[0] else "tab:gray" for b in bars]
        ax.barh(ys, med, xerr=err, color=colors, alpha=0.85)
        for y, b in zip(ys, bars):
            if b[2] is not None:
                ax.plot([b[2]], [y], marker="|", color="tab:red", markersize=14, mew=2)
        ax.axvline(1.0, color="black", lw=0.8)
        ax.set_xscale("log")
        ax.set_yticks(ys)
        ax.set_yticklabels([b[0] for b in bars], fontsize=7)
        ax.set_xlabel(f"time / {ref} time (lower is faster; red: target)")
        ax.set_title(f"{threads} thread{'s' if threads != 1 else ''}")
    fig.suptitle("jitgrad benchmarks" + (" (quick: meaningless sizes)" if doc["quick"] else ""))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


# --------------------------------------------------------------------------- compare


def _series(doc: dict[str, Any]) -> dict[tuple, dict[str, float]]:
    """(metric, threads, case, engine, mode) -> statistics, for time and ratio figures."""
    out = {}
    for run in doc.get("runs", []):
        for eng, er in run.get("engines", {}).items():
            for mode, t in er.get("timing", {}).items():
                out["time", run["threads"], run["case"], eng, mode] = t
        for eng, modes in run.get("ratios", {}).items():
            for mode, r in modes.items():
                out["ratio", run["threads"], run["case"], eng, mode] = r
    return out


def compare(old: dict[str, Any], new: dict[str, Any], min_change: float = 0.05
            ) -> dict[str, Any]:
    """Figures that moved beyond their noise. A change counts when it exceeds the sum of the
    two runs' relative interquartile ranges (and at least ``min_change``): a slower time, or
    a worse ratio against the reference, is a regression; the reverse an improvement."""
    a, b = _series(old), _series(new)
    result: dict[str, Any] = {"regressions": [], "improvements": [], "notes": [],
                              "old_created": old.get("created"), "compared": 0}
    if old.get("quick") != new.get("quick"):
        result["notes"].append("one run is --quick and the other is not: sizes differ")
    same_ref = old.get("reference") == new.get("reference")
    if not same_ref:
        result["notes"].append(f"references differ ({old.get('reference')} then "
                               f"{new.get('reference')}): ratios not compared")
    for key in sorted(set(a) & set(b), key=str):
        if key[0] == "ratio" and not same_ref:
            continue
        o, n = a[key], b[key]
        if o["median"] <= 0 or n["median"] <= 0:
            continue
        result["compared"] += 1
        threshold = max(min_change, relative_spread(o) + relative_spread(n))
        change = n["median"] / o["median"] - 1
        item = {"metric": key[0], "threads": key[1], "case": key[2], "engine": key[3],
                "mode": key[4], "old": o["median"], "new": n["median"],
                "change": change, "threshold": threshold}
        if change > threshold:
            result["regressions"].append(item)
        elif o["median"] / n["median"] - 1 > threshold:
            result["improvements"].append(item)
    return result


def compare_lines(cmp: dict[str, Any]) -> list[str]:
    head = (f"compared with the run of {cmp.get('old_created')} ({cmp['compared']} figures; "
            f"noise threshold: the two runs' relative IQRs added, at least 5%):")
    lines = [head]
    lines += [f"note: {n}" for n in cmp["notes"]]

    def fmt(i: dict[str, Any]) -> str:
        f = fmt_time if i["metric"] == "time" else (lambda v: f"{v:.2f}x")
        return (f"{i['case']} {i['mode']} {i['engine']} ({i['metric']}, {i['threads']} thr): "
                f"{f(i['old'])} -> {f(i['new'])} ({100 * i['change']:+.0f}%, "
                f"noise {100 * i['threshold']:.0f}%)")
    if cmp["regressions"]:
        lines += [f"REGRESSION {fmt(i)}" for i in cmp["regressions"]]
    else:
        lines.append("no regressions beyond the noise")
    lines += [f"faster: {fmt(i)}" for i in cmp["improvements"]]
    return lines
