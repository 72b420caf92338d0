"""The CI gate (``reportgen gate``): bounds on a built site's metrics and a paired test against a
baseline site on the same test images, decided and summed up in Markdown.

Reads only ``metrics.json`` and ``predictions.csv`` (no TensorFlow, no matplotlib). A key is a
dotted path into metrics.json (``curves.macro.roc_auc``, ``explain.pointing_game.gradcam.score``)
or into its test split (``accuracy`` is ``splits.test.accuracy``, ``per_class.cat.f1``).

The paired test is McNemar's exact test (two-sided, binomial on the discordant images) of the
candidate's predicted labels (the ``predicted`` column) against the baseline's on the same test
files: the candidate is *significantly worse* when p < alpha and it is wrong on more of the
discordant images than the baseline.
"""

from __future__ import annotations

import csv
import difflib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reportgen import evaluate as ev
from reportgen.errors import ReportgenError

#: The paired test, as the summary states it.
PAIRED_TEST = "two-sided exact McNemar test on the images where exactly one model is right"
#: metrics.json's parts that hold no model metric (timings, versions, the plan, the history).
NOT_METRICS = ("history", "timings_s", "versions", "model", "data", "explain.plan",
               "explain.seconds", "explain.methods", "explain.relus", "explain.receptive_field",
               "explain.quality_ranking")


class GateError(ReportgenError):
    """A usage error of the gate (a bad bound, an unknown key, sites that cannot be compared):
    one line, exit code 2."""

    exit_code = 2


@dataclass(frozen=True)
class Bound:
    """``key`` must be >= ``value`` (``kind`` "min") or <= it ("max")."""

    key: str
    kind: str
    value: float

    @property
    def sign(self) -> str:
        return "≥" if self.kind == "min" else "≤"


def parse_bound(text: str, kind: str) -> Bound:
    """``KEY=VALUE`` of ``--min``/``--max`` as a :class:`Bound`."""
    key, sep, value = text.partition("=")
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not sep or not key.strip() or not math.isfinite(number):
        raise GateError(f"--{kind} {text!r}: expected KEY=NUMBER, e.g. --{kind} accuracy=0.9")
    return Bound(key.strip(), kind, number)


def numeric_leaves(data, prefix: str = "") -> dict[str, float | None]:
    """{dotted path: value} of every number (or null) in nested dicts ``data`` (lists, strings
    and booleans left out)."""
    out: dict[str, float | None] = {}
    if isinstance(data, dict):
        for k, v in data.items():
            out.update(numeric_leaves(v, f"{prefix}{k}."))
    elif data is None or (isinstance(data, (int, float)) and not isinstance(data, bool)):
        out[prefix[:-1]] = None if data is None else float(data)
    return out


def metric_keys(metrics: dict) -> dict[str, float | None]:
    """Every key the gate accepts with its value: metrics.json's numbers (but its
    :data:`NOT_METRICS`, and a whole top-level entry that is null) by their dotted path, and
    the test split's also without ``splits.test.`` (its ``curves`` are the top-level ones)."""
    keys = {k: v for k, v in numeric_leaves(metrics).items()
            if not any(k == p or k.startswith(p + ".") for p in NOT_METRICS)
            and (v is not None or "." in k)}
    split = dict((metrics.get("splits") or {}).get("test") or {})
    split.pop("curves", None)
    return {**numeric_leaves(split), **keys}


def _patterns(keys: list[str], names: dict[str, list[str]]) -> list[str]:
    """The keys with each name of ``names`` (classes, methods) as its ``<kind>``, and the
    keys that differ only in their last part joined as ``a.{b,c}``: a list short enough to
    print on one line."""
    generic: dict[str, None] = {}
    for k in keys:
        parts = k.split(".")
        for kind, values in names.items():
            parts = [f"<{kind}>" if p in values else p for p in parts]
        generic[".".join(parts)] = None
    groups: dict[str, list[str]] = {}
    for k in generic:
        head, _, last = k.rpartition(".")
        groups.setdefault(head, []).append(last)
    plain = sorted(groups.pop("", []))
    joined = [f"{h}.{{{','.join(sorted(v))}}}" if len(v) > 1 else f"{h}.{v[0]}"
              for h, v in groups.items()]
    return plain + sorted(joined, key=lambda k: (k.count("."), k))


def lookup(metrics: dict, key: str) -> float | None:
    """The value of ``key`` (:func:`metric_keys`); None where metrics.json has null there.

    Raises:
        GateError: an unknown key, with the closest valid one and the valid keys in one line.
    """
    keys = metric_keys(metrics)
    if key in keys:
        return keys[key]
    close = difflib.get_close_matches(key, list(keys), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else "."
    methods = list(((metrics.get("explain") or {}).get("quality") or {})) + list(
        ((metrics.get("explain") or {}).get("pointing_game") or {}))
    names = {"class": list(metrics.get("classes") or []), "method": methods}
    valid = ", ".join(p for p in _patterns(list(keys), names) if not p.startswith("splits."))
    raise GateError(f"unknown metric key {key!r}{hint} Valid keys: {valid} (and each under "
                    f"splits.<split>.)")


@dataclass
class Site:
    """What the gate reads of one built site."""

    path: Path
    metrics: dict
    #: (file, true, predicted) per test image, from predictions.csv; None when not read.
    rows: list[tuple[str, str, str]] | None = None


def read_site(path: Path, predictions: bool) -> Site:
    """Read ``metrics.json`` (and, when ``predictions``, ``predictions.csv``) of the site at
    ``path``.

    Raises:
        GateError: a file missing or unreadable, named.
    """
    path = Path(path)
    metrics = _read_json(path / "metrics.json")
    if not predictions:
        return Site(path, metrics)
    rel = (metrics.get("compare") or {}).get("predictions", "predictions.csv")
    file = path / rel
    try:
        with open(file, newline="", encoding="utf-8") as f:
            table = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as e:
        raise GateError(f"{file}: cannot read: {getattr(e, 'strerror', None) or e}") from None
    if not table or table[0][:3] != ["file", "true", "predicted"]:
        raise GateError(f"{file}: expected the columns file, true, predicted first")
    rows = [(r[0], r[1], r[2]) for r in table[1:] if len(r) >= 3]
    if any(not true for _, true, _ in rows):
        raise GateError(f"{file}: has test images without a true class; the paired test "
                        "needs labelled test images")
    return Site(path, metrics, rows)


def _read_json(file: Path) -> dict:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GateError(f"{file}: not found (is {file.parent} a site reportgen build "
                        "wrote?)") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise GateError(f"{file}: cannot read: {e}") from None
    if not isinstance(data, dict):
        raise GateError(f"{file}: expected a JSON object")
    return data


@dataclass
class Paired:
    """The paired comparison of a candidate with its baseline on the same test images."""

    n: int
    baseline_accuracy: float
    candidate_accuracy: float
    #: Images only the baseline gets right, and only the candidate.
    baseline_only: int
    candidate_only: int
    p: float
    alpha: float
    difference_ci95: tuple[float, float]

    @property
    def worse(self) -> bool:
        return self.p < self.alpha and self.baseline_only > self.candidate_only


def paired(candidate: Site, baseline: Site, alpha: float) -> Paired:
    """McNemar's exact test of the two sites' predictions on the same test files.

    Raises:
        GateError: the test sets differ (other files, other true labels, another test hash).
    """
    a, b = baseline.rows or [], candidate.rows or []
    ha = (baseline.metrics.get("data") or {}).get("test_hash")
    hb = (candidate.metrics.get("data") or {}).get("test_hash")
    if ha and hb and ha != hb:
        raise GateError(f"{candidate.path} and {baseline.path}: the test sets differ (test "
                        "hash in metrics.json); the paired test needs the same test images")
    truth_a = {f: t for f, t, _ in a}
    truth_b = {f: t for f, t, _ in b}
    if truth_a != truth_b or len(truth_a) != len(a) or not a:
        what = ("other test files" if set(truth_a) != set(truth_b) else
                "other true classes" if truth_a != truth_b else "no test image or a file "
                "listed twice")
        raise GateError(f"{candidate.path} and {baseline.path}: the test sets differ "
                        f"(predictions.csv: {what}); the paired test needs the same test images")
    right_a = np.array([p == truth_a[f] for f, _, p in a])
    pred_b = {f: p for f, _, p in b}
    right_b = np.array([pred_b[f] == truth_a[f] for f, _, _ in a])
    only_a, only_b = int(np.sum(right_a & ~right_b)), int(np.sum(right_b & ~right_a))
    _, lo, hi = ev.paired_difference(right_a, right_b)
    return Paired(len(a), float(right_a.mean()), float(right_b.mean()), only_a, only_b,
                  ev.mcnemar_exact(only_a, only_b), alpha, (lo, hi))


@dataclass
class Decision:
    """What the gate decided: each bound checked, the paired comparison, the exit code."""

    site: Path
    checks: list[tuple[Bound, float | None, bool]] = field(default_factory=list)
    baseline: Path | None = None
    comparison: Paired | None = None

    @property
    def passed(self) -> bool:
        return all(ok for _, _, ok in self.checks) and not (
            self.comparison is not None and self.comparison.worse)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1


def decide(site: Path, bounds: list[Bound], baseline: Path | None = None,
           alpha: float = 0.05) -> Decision:
    """Check ``bounds`` on the site at ``site`` and, given a ``baseline`` site, whether it is
    significantly worse on the same test images. A bound on a value that is null in
    metrics.json (undefined, as the AUC of a class without negatives) fails.

    Raises:
        GateError: an unknown key, unreadable sites or different test sets.
    """
    cand = read_site(site, predictions=baseline is not None)
    decision = Decision(Path(site))
    for b in bounds:
        value = lookup(cand.metrics, b.key)
        ok = value is not None and (value >= b.value if b.kind == "min" else value <= b.value)
        decision.checks.append((b, value, ok))
    if baseline is not None:
        decision.baseline = Path(baseline)
        decision.comparison = paired(cand, read_site(baseline, predictions=True), alpha)
    return decision


def summary(d: Decision) -> str:
    """The decision as short Markdown (a pull-request comment, a CI job summary)."""
    lines = [f"## reportgen gate: {'passed' if d.passed else 'failed'}", "",
             f"Site `{d.site}`."]
    if d.checks:
        lines += ["", "| metric | value | bound | result |", "|---|---:|---|---|"]
        for b, v, ok in d.checks:
            shown = "not defined" if v is None else f"{v:.4g}"
            lines.append(f"| `{b.key}` | {shown} | {b.sign} {b.value:g} | "
                         f"{'pass' if ok else '**fail**'} |")
    c = d.comparison
    if c is not None:
        verdict = "**significantly worse**" if c.worse else "not significantly worse"
        lines += ["", f"Against the baseline `{d.baseline}` on the same {c.n} test images: "
                  f"accuracy {c.baseline_accuracy:.3f} → {c.candidate_accuracy:.3f} "
                  f"(difference {c.candidate_accuracy - c.baseline_accuracy:+.3f}, 95 % CI "
                  f"[{c.difference_ci95[0]:+.3f}, {c.difference_ci95[1]:+.3f}], Newcombe). "
                  f"The candidate is right on {c.candidate_only} images the baseline gets "
                  f"wrong and wrong on {c.baseline_only} it gets right; {PAIRED_TEST}: "
                  f"p = {c.p:.3g} (alpha {c.alpha:g}): {verdict}."]
    if not d.checks and c is None:
        lines += ["", "Nothing to check: give --min, --max or --baseline."]
    return "\n".join(lines) + "\n"
