"""reportgen compare: the statistics against independent computations, and an end-to-end
comparison of two smoke sites built from different models on the same data."""

from __future__ import annotations

import csv
import hashlib
import json
import re
import shutil
from math import comb

import numpy as np
import pytest
from click.testing import CliRunner

from reportgen import evaluate as ev
from reportgen.cli import main
from reportgen.report import MARKER
from reportgen.report.compare import sentence



def binomial_two_sided(b, c):
    """Exact McNemar by hand: 2 x P(X <= min(b, c)), X ~ Binomial(b + c, 1/2), at most 1."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(comb(n, i) for i in range(min(b, c) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


@pytest.mark.parametrize("b,c,want", [(2, 8, 2 * 56 / 1024), (0, 0, 1.0), (5, 5, 1.0),
                                      (0, 6, 2 / 64), (30, 10, None), (400, 350, None)])
def test_mcnemar_exact(b, c, want):
    got = ev.mcnemar_exact(b, c)
    assert got == pytest.approx(want if want is not None else binomial_two_sided(b, c),
                                rel=1e-12)
    assert got == ev.mcnemar_exact(c, b)


def test_wilson_interval_known_values():
    lo, hi = ev.wilson_interval(8, 10)
    assert (round(lo, 4), round(hi, 4)) == (0.4902, 0.9433)
    assert ev.wilson_interval(0, 20)[0] == 0.0 and ev.wilson_interval(20, 20)[1] == 1.0


def test_paired_bootstrap_follows_its_definition_and_the_normal_approximation():
    rng = np.random.default_rng(5)
    a = rng.random(300) < 0.7
    b = np.where(rng.random(300) < 0.8, a, ~a) | (rng.random(300) < 0.1)
    diff, lo, hi = ev.paired_bootstrap(a, b, resamples=2000, seed=3)
    d = b.astype(float) - a.astype(float)
    draws = np.random.default_rng(3)
    means = [d[draws.integers(0, 300, size=300)].mean() for _ in range(2000)]
    assert diff == pytest.approx(d.mean())
    assert (lo, hi) == pytest.approx(tuple(np.percentile(means, [2.5, 97.5])))
    se = d.std(ddof=1) / np.sqrt(300)
    assert lo == pytest.approx(d.mean() - 1.96 * se, abs=0.015)
    assert hi == pytest.approx(d.mean() + 1.96 * se, abs=0.015)


def test_the_sentence_names_the_better_model_only_when_significant():
    assert sentence("A", "B", 0.068, (0.031, 0.104), 0.0004) == \
        "B is better than A by 6.8 points, 95 % CI 3.1 to 10.4, McNemar p = 4.0e\u221204."
    assert sentence("A", "B", -0.068, (-0.104, -0.031), 0.0004) == \
        "A is better than B by 6.8 points, 95 % CI 3.1 to 10.4, McNemar p = 4.0e\u221204."
    text = sentence("A", "B", -0.012, (-0.031, 0.008), 0.27)
    assert text.startswith("No significant difference between A and B: B minus A is "
                           "\u22121.2 points")


@pytest.fixture(scope="module")
def two_sites(tmp_path_factory, smoke_site, second_site):
    """A folder for this module's outputs, and the two shared sites (tests/conftest.py)."""
    return tmp_path_factory.mktemp("compare"), smoke_site[0], second_site


def read_predictions(site):
    with open(site / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return [r["file"] for r in rows], np.array([r["true"] == r["predicted"] for r in rows])


def test_compare_two_models_end_to_end(two_sites, md_tables):
    tmp, first, second = two_sites
    out = tmp / "cmp"
    result = CliRunner().invoke(main, ["compare", str(first), str(second), "--out", str(out)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    files, right_a = read_predictions(first)
    files_b, right_b = read_predictions(second)
    assert files == files_b
    b, c = int(np.sum(right_a & ~right_b)), int(np.sum(~right_a & right_b))
    pair = json.loads((out / "metrics.json").read_text())["pairs"][0]
    assert (pair["a_right_b_wrong"], pair["b_right_a_wrong"]) == (b, c)
    assert pair["mcnemar_statistic"] == min(b, c)
    assert pair["mcnemar_p"] == pytest.approx(binomial_two_sided(b, c), rel=1e-12)
    d = right_b.astype(float) - right_a.astype(float)
    draws = np.random.default_rng(0)
    means = [d[draws.integers(0, len(d), size=len(d))].mean() for _ in range(10000)]
    assert pair["accuracy_difference"] == pytest.approx(d.mean())
    assert pair["accuracy_difference_ci"] == pytest.approx(list(np.percentile(means,
                                                                              [2.5, 97.5])))
    # The disagreement gallery lists exactly the disagreeing images, each direction.
    html = (out / "index.html").read_text()
    a_only = html.split('id="pair-1-a_only"')[1].split('id="pair-1-b_only"')[0]
    b_only = html.split('id="pair-1-b_only"')[1].split("<h3")[0]  # to the next h3
    shown_a = re.findall(r'<div class="path">(.*?)</div>', a_only)
    shown_b = re.findall(r'<div class="path">(.*?)</div>', b_only)
    assert sorted(shown_a) == sorted(f for f, x, y in zip(files, right_a, right_b) if x and not y)
    assert sorted(shown_b) == sorted(f for f, x, y in zip(files, right_a, right_b) if y and not x)
    for rel in re.findall(r'src="([^"]+)"', html):
        assert (out / rel).is_file(), rel
    assert (out / "report.md").is_file() and (out / "tables" / "models.tex").is_file()
    tables = md_tables((out / "report.md").read_text(encoding="utf-8"))
    models = next(t for t in tables if t[0][0] == "model")
    assert len(models) == 1 + 2  # a row per model
    assert list((out / "fig").glob("*.pdf")) and list((out / "fig").glob("*.svg"))


def test_compare_refuses_different_test_sets_in_one_line(two_sites):
    tmp, first, _ = two_sites
    other = tmp / "other"  # the same site, as if built on test images with other contents
    if not other.exists():
        shutil.copytree(first, other)
        metrics = json.loads((other / "metrics.json").read_text())
        metrics["data"]["test_hash"] = hashlib.sha256(b"other test files").hexdigest()
        (other / "metrics.json").write_text(json.dumps(metrics))
        marker = json.loads((other / MARKER).read_text())
        marker["config"]["data"]["split_seed"] = 5  # smoke.toml's is 1
        (other / MARKER).write_text(json.dumps(marker))
    result = CliRunner().invoke(main, ["compare", str(first), str(other), "--out",
                                       str(tmp / "bad")])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "different test sets" in lines[0]
    # ... and says how to share one: the data setting that differs, and the rule.
    assert "they differ in data.split_seed 1 vs 5; build both with the same" in lines[0]
    assert "(training.seed does not move the split)" in lines[0]
    assert str(first) in lines[0] and str(other) in lines[0]
    assert not (tmp / "bad").exists()


def test_compare_refuses_a_folder_that_is_not_a_site(two_sites, tmp_path):
    _, first, _ = two_sites
    result = CliRunner().invoke(main, ["compare", str(first), str(tmp_path)])
    assert result.exit_code == 2 and "not a site built by reportgen build" in result.output
    assert "Traceback" not in result.output
