"""The plan's estimate of every explain part against the seconds it took, per build: writes
benchmarks/ESTIMATES.md (and ESTIMATES.json). The target (issue 25): every part of 2 s or
more within 1.5x of its estimate, on the machine that ran it.

    python benchmarks/estimates.py --zoo --since "2026-12-06 17:00"   # rows of ZOO.json
    python benchmarks/estimates.py --metrics demo=site/metrics.json --load "3.1 → 4.0"

A build's ``metrics.json`` keeps both per part (``explain.plan.parts``: ``estimate_s``,
``actual_s``); a zoo.py row keeps the plan's ``estimate_s`` and the measured
``explain_parts``. Rows are merged by build name, so builds can be added one at a time. No
timing is asserted anywhere: the ratios are written down with the machine's load average.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: Parts shorter than this (measured) are listed but not held to :data:`WITHIN`.
MIN_PART_S = 2.0
#: The largest ratio, either way, of a part's estimate to its measured seconds.
WITHIN = 1.5


def ratio(estimate: float, actual: float) -> float:
    """How far apart ``estimate`` and ``actual`` (seconds) are, either way: >= 1 (inf when
    one is 0 and the other not)."""
    if estimate <= 0 or actual <= 0:
        return 1.0 if estimate == actual else float("inf")
    return max(estimate / actual, actual / estimate)


def from_metrics(name: str, path: Path, load: str) -> dict:
    """The row of build ``name`` from its ``metrics.json``."""
    m = json.loads(path.read_text())
    plan = m["explain"]["plan"]
    parts = {k: [v["estimate_s"], v["actual_s"] or 0.0] for k, v in plan["parts"].items()}
    return {"build": name, "parts": parts, "load": load, "trace_s": plan.get("trace_s"),
            "trace_kinds_s": plan.get("trace_kinds_s", {}), "test_images":
            m["splits"]["test"]["n"], "date": time.strftime("%Y-%m-%d %H:%M",
                                                            time.gmtime(path.stat().st_mtime))}


def from_zoo(row: dict) -> dict:
    """The row of one zoo.py build (ZOO.json)."""
    est = row["plan"].get("estimate_s", {})
    return {"build": f"{row['family']} {row['size']} px", "load":
            f"{row['load_before']:.1f} → {row['load_after']:.1f}",
            "parts": {k: [est.get(k, 0.0), v] for k, v in row["explain_parts"].items()},
            "trace_s": row["plan"].get("trace_s"),
            "trace_kinds_s": row["plan"].get("trace_kinds_s", {}),
            "test_images": row["test_images"], "date": row["date"]}


def held(row: dict) -> bool:
    """Whether every part of :data:`MIN_PART_S` or more is within :data:`WITHIN`."""
    return all(ratio(e, a) <= WITHIN for e, a in row["parts"].values() if a >= MIN_PART_S)


def write(rows: list[dict]) -> None:
    (HERE / "ESTIMATES.json").write_text(json.dumps(rows, indent=1))
    lines = ["# The plan's estimates against the measured parts", "",
             f"Every explain part's estimate (`metrics.json` → `explain.plan.parts`) against "
             f"the seconds it took, on {platform.machine()}, {os.cpu_count()} cores, shared "
             f"with other jobs (load: the 1-minute load average before → after the build). "
             f"Target: every part of {MIN_PART_S:g} s or more within {WITHIN:g}x either way. "
             "The probe's trace seconds per kind of compiled function (forward, gradient to "
             "the input, GradCAM) are the ones the plan used. Reproduce: "
             "`python benchmarks/zoo.py --family ConvNeXtTiny,MobileNetV2 --images 6`, "
             "then `python benchmarks/estimates.py --zoo --since 'YYYY-MM-DD HH:MM'`; "
             "for a build of your own, "
             "`python benchmarks/estimates.py --metrics NAME=site/metrics.json`.", "",
             "| build | test images | load | traces s | worst ratio (parts ≥ 2 s) | held | run |",
             "|---|---:|---|---|---:|---|---|"]
    for r in rows:
        big = [ratio(e, a) for e, a in r["parts"].values() if a >= MIN_PART_S]
        kinds = ", ".join(f"{k} {v:.2f}" for k, v in r.get("trace_kinds_s", {}).items())
        lines.append(f"| {r['build']} | {r['test_images']} | {r['load']} | "
                     f"{kinds or r.get('trace_s')} | {max(big, default=1.0):.2f}x | "
                     f"{'yes' if held(r) else 'NO'} | {r['date']} |")
    lines += ["", "Parts per build: estimate / measured seconds (ratio):", ""]
    for r in rows:
        parts = "; ".join(f"{k} {e:.1f} / {a:.1f}" + (f" ({ratio(e, a):.2f}x)"
                                                       if a >= MIN_PART_S else "")
                          for k, (e, a) in r["parts"].items())
        lines.append(f"- {r['build']}: {parts}")
    notes = HERE / "ESTIMATES.notes.md"  # the analysis, kept by hand across reruns
    if notes.exists():
        lines += ["", notes.read_text().rstrip()]
    (HERE / "ESTIMATES.md").write_text("\n".join(lines) + "\n")


def merged(new: list[dict]) -> list[dict]:
    path = HERE / "ESTIMATES.json"
    rows = json.loads(path.read_text()) if path.exists() else []
    names = {r["build"] for r in new}
    return [r for r in rows if r["build"] not in names] + new


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--zoo", action="store_true", help="add the rows of ZOO.json")
    ap.add_argument("--since", default="", help="only ZOO.json rows run since (YYYY-MM-DD HH:MM)")
    ap.add_argument("--metrics", action="append", default=[], help="NAME=path/metrics.json")
    ap.add_argument("--load", default="", help="the load average of the --metrics builds")
    args = ap.parse_args()
    rows = [from_zoo(r) for r in json.loads((HERE / "ZOO.json").read_text())
            if r["date"] >= args.since] if args.zoo else []
    for item in args.metrics:
        name, _, path = item.partition("=")
        rows.append(from_metrics(name, Path(path), args.load))
    write(merged(rows))
    for r in rows:
        print(f"{r['build']}: {'held' if held(r) else 'NOT held'}")


if __name__ == "__main__":
    main()
