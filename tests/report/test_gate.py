"""reportgen gate on sites the tests write (a metrics.json and a predictions.csv with known
counts): bounds, the paired McNemar test against a baseline (p from scipy's binomial test),
exit codes 0/1/2 and the Markdown summary."""

from __future__ import annotations

import csv
import json

import pytest
from click.testing import CliRunner
from scipy.stats import binomtest

from reportgen.cli import main

N = 100
NAMES = ["cat", "dog"]


def write_site(path, right: list[bool], *, accuracy=None, test_hash="h1", files=None,
               auc=0.93):
    """A site whose test image i is labelled NAMES[i % 2] and predicted right where
    ``right[i]``; metrics.json holds the accuracy they give."""
    path.mkdir(parents=True)
    files = files or [f"test/{i}.png" for i in range(len(right))]
    rows = [["file", "true", "predicted", *NAMES]]
    for i, (f, ok) in enumerate(zip(files, right, strict=True)):
        true = NAMES[i % 2]
        pred = true if ok else NAMES[1 - i % 2]
        rows.append([f, true, pred, "0.3", "0.7"])
    with open(path / "predictions.csv", "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    acc = sum(right) / len(right) if accuracy is None else accuracy
    metrics = {"classes": NAMES, "labeled": True, "data": {"test_hash": test_hash},
               "compare": {"predictions": "predictions.csv"},
               "splits": {"test": {"n": len(right), "accuracy": acc, "loss": 0.4,
                                   "calibration": {"ece": 0.05},
                                   "per_class": {"cat": {"f1": 0.8}, "dog": {"f1": 0.7}}}},
               "curves": {"cat": {"roc_auc": auc, "average_precision": 0.9},
                          "dog": {"roc_auc": None, "average_precision": 0.8},
                          "macro": {"roc_auc": auc, "average_precision": 0.85}},
               "history": {"loss": [1.0, 0.5]}}
    (path / "metrics.json").write_text(json.dumps(metrics))
    return path


def gate(*args):
    return CliRunner().invoke(main, ["gate", *map(str, args)], catch_exceptions=False)


@pytest.fixture
def baseline(tmp_path):
    """Right on images 0..79, wrong on 80..99."""
    return write_site(tmp_path / "base", [i < 80 for i in range(N)])


def test_better_equal_and_worse_candidates(tmp_path, baseline):
    better = write_site(tmp_path / "better", [i < 90 for i in range(N)])  # +10 discordant
    equal = write_site(tmp_path / "equal", [i < 80 for i in range(N)])
    # Wrong on 15 images the baseline gets right (0..14), right on 2 it gets wrong (80, 81).
    worse = write_site(tmp_path / "worse", [15 <= i < 82 for i in range(N)])
    r = gate(better, "--baseline", baseline)
    assert r.exit_code == 0, r.output
    assert "right on 10 images the baseline gets wrong and wrong on 0" in r.output
    assert gate(equal, "--baseline", baseline).exit_code == 0
    r = gate(worse, "--baseline", baseline)
    assert r.exit_code == 1, r.output
    p = binomtest(2, 17, 0.5).pvalue  # two-sided exact: 2 wins of 17 discordant images
    assert p < 0.05 and f"p = {p:.3g}" in r.output and "**significantly worse**" in r.output
    assert "accuracy 0.800 → 0.670" in r.output


def test_worse_but_not_significantly_passes(tmp_path, baseline):
    """6 images lost, 1 won: p = 2 * (1 + 7) / 2**7 = 0.125, not below 0.05."""
    cand = write_site(tmp_path / "c", [6 <= i < 81 for i in range(N)])
    r = gate(cand, "--baseline", baseline)
    assert r.exit_code == 0, r.output
    assert "p = 0.125" in r.output and "not significantly worse" in r.output
    assert gate(cand, "--baseline", baseline, "--alpha", "0.2").exit_code == 1


def test_bounds_on_dotted_keys(baseline):
    assert gate(baseline, "--min", "accuracy=0.8", "--max", "loss=0.5").exit_code == 0
    r = gate(baseline, "--min", "accuracy=0.81", "--min", "curves.macro.roc_auc=0.9")
    assert r.exit_code == 1
    assert "| `accuracy` | 0.8 | ≥ 0.81 | **fail** |" in r.output
    assert "| `curves.macro.roc_auc` | 0.93 | ≥ 0.9 | pass |" in r.output
    assert gate(baseline, "--max", "calibration.ece=0.04").exit_code == 1
    assert gate(baseline, "--min", "splits.test.per_class.dog.f1=0.7").exit_code == 0
    # A value metrics.json leaves null (undefined) cannot pass its bound.
    r = gate(baseline, "--min", "curves.dog.roc_auc=0.5")
    assert r.exit_code == 1 and "not defined" in r.output


@pytest.mark.parametrize("args,says", [
    (["--min", "acuracy=0.9"], "unknown metric key 'acuracy'; did you mean 'accuracy'?"),
    (["--min", "accuracy"], "expected KEY=NUMBER"),
    (["--max", "loss=low"], "expected KEY=NUMBER"),
    (["--min", "history.loss=1"], "unknown metric key"),
])
def test_usage_errors_exit_2_in_one_line(baseline, args, says):
    r = CliRunner().invoke(main, ["gate", str(baseline), *args])
    assert r.exit_code == 2, r.output
    assert says in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1
    if "unknown" in says:
        assert "accuracy" in r.output.split("Valid keys:")[1]
        assert "curves.<class>.{average_precision,roc_auc}" in r.output


def test_different_test_sets_are_refused(tmp_path, baseline):
    other_files = write_site(tmp_path / "o", [True] * N,
                             files=[f"other/{i}.png" for i in range(N)])
    r = CliRunner().invoke(main, ["gate", str(other_files), "--baseline", str(baseline)])
    assert r.exit_code == 2 and "the test sets differ" in r.output
    other_hash = write_site(tmp_path / "h", [True] * N, test_hash="h2")
    r = CliRunner().invoke(main, ["gate", str(other_hash), "--baseline", str(baseline)])
    assert r.exit_code == 2 and "test hash" in r.output
    r = CliRunner().invoke(main, ["gate", str(tmp_path / "missing")])
    assert r.exit_code == 2 and "metrics.json: not found" in r.output


def test_summary_file_is_markdown_with_a_table(tmp_path, baseline, md_tables):
    out = tmp_path / "summary.md"
    out.write_text("earlier step\n")
    r = gate(baseline, "--min", "accuracy=0.5", "--baseline", baseline, "--summary", out)
    assert r.exit_code == 0
    text = out.read_text()
    assert text.startswith("earlier step\n## reportgen gate: passed")  # appended
    assert text.endswith(r.output)
    [table] = md_tables(text)
    assert table[0] == ["metric", "value", "bound", "result"]
    assert table[1] == ["accuracy", "0.8", "≥ 0.5", "pass"]


def test_help_names_the_exit_codes():
    r = gate("--help")
    assert r.exit_code == 0 and "exit 1 when a metric crosses its bound" in " ".join(
        r.output.split())
