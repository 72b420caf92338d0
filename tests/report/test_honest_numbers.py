"""No more certainty than the data gives: per-class intervals that stay open at 0 and 1, a
"best" method only where a paired test separates it, a verdict on the sanity check, all named
on the page, in the Markdown report, in the LaTeX caption and in metrics.json."""

from __future__ import annotations

import json

import numpy as np
import pytest

from reportgen.evaluate import bootstrap_mean
from reportgen.explain.results import (
    SANITY_THRESHOLD,
    QualityRow,
    absolute_interval,
    rank_methods,
    sanity_verdict,
)
from reportgen.report import gather, write_site
from reportgen.report.figjobs import Figures
from reportgen.report.pages import quality_table
from reportgen.report.render import environment, render
from reportgen.report.site import SiteWriter

METHODS = ("gradcam", "gradcam++", "layercam", "rise")
LABELS = ("GradCAM", "GradCAM++", "LayerCAM", "RISE")


def _row(dele, change=None) -> QualityRow:
    """A quality row from per-image deletion AUCs and sanity correlations."""
    sanity = None if change is None else float(np.mean(change))
    ci = None if change is None else absolute_interval(bootstrap_mean(change))
    return QualityRow(deletion=float(dele.mean()), insertion=0.5, pointing=None, energy=None,
                      sanity=sanity, n=len(dele), n_boxes=0, deletion_ci95=bootstrap_mean(dele),
                      sanity_ci95=ci, sanity_verdict=sanity_verdict(ci),
                      n_sanity=0 if change is None else len(change))


def _quality(rng, shift: float, noise: float):
    """Deletion AUCs on 100 images: RISE about 0.16, the others ``shift`` above it, each with
    its own ``noise`` per image; sanity correlations near 0.97 for GradCAM++ and LayerCAM."""
    base = rng.uniform(0.0, 0.33, 100)
    dele = {m: base + (0 if m == "rise" else shift) + rng.normal(0, noise, 100)
            for m in METHODS}
    change = {"gradcam": rng.uniform(-0.2, 0.3, 16), "gradcam++": rng.uniform(0.95, 0.99, 16),
              "layercam": rng.uniform(0.95, 0.99, 16), "rise": rng.uniform(0.2, 0.9, 16)}
    quality = {m: _row(dele[m], change[m]) for m in METHODS}
    ranking = rank_methods({"deletion": dele, "sanity": change})
    return quality, ranking


def _bold_rows(table, column: int) -> list[str]:
    return sorted(table.rows[i][0] for i, j in table.marks if j == column)


def test_overlapping_methods_are_a_tied_group_not_a_best(rng):
    quality, ranking = _quality(rng, shift=0.01, noise=0.08)  # as RISE 0.162 vs 0.170-0.173
    assert not ranking["deletion"]["separated"]
    t = quality_table(quality, ranking)
    bold = _bold_rows(t, 1)
    assert len(bold) > 1 and "RISE" in bold  # the tied group, not RISE alone
    assert "no single best" in t.caption and "paired bootstrap" in t.caption
    best = ranking["deletion"]["best"]
    label = dict(zip(METHODS, LABELS, strict=True))[best]
    assert f"deletion AUC: no single best ({label} has the best" in t.caption
    tex = t.latex()
    assert tex.count("\\textbf{") == len(bold) + len(_bold_rows(t, 5))
    assert "paired bootstrap" in tex


def test_a_separated_best_is_the_only_bold_value(rng):
    quality, ranking = _quality(rng, shift=0.05, noise=0.002)
    r = ranking["deletion"]
    assert r["separated"] and r["best"] == "rise" and r["tied"] == ["rise"]
    t = quality_table(quality, ranking)
    assert _bold_rows(t, 1) == ["RISE"]
    assert "RISE is best, separated from every other method" in t.caption


def test_a_ranking_on_fewer_images_than_shown_says_where_and_what_it_compared():
    # Sanity correlations on 6 images; RISE's maps were constant on the first 3 (no score).
    # Shown: each method's own mean, GradCAM 0.300 (6 images) and RISE 0.400 (3 images); the
    # paired test compares the 3 images both have: RISE 0.400 against GradCAM 0.600, a
    # constant 0.2 apart, so RISE is best there, separated.
    change = {"gradcam": np.array([0, 0, 0, 0.6, 0.6, 0.6]),
              "rise": np.array([np.nan] * 3 + [0.4] * 3)}
    dele = {"gradcam": np.linspace(0.1, 0.3, 6), "rise": np.linspace(0.1, 0.3, 6) + 0.05}
    ranking = rank_methods({"deletion": dele, "sanity": change})
    r = ranking["sanity"]
    assert (r["n"], r["scored"], r["best"], r["tied"]) == (3, 6, "rise", ["rise"])
    assert r["means"] == pytest.approx({"gradcam": 0.6, "rise": 0.4})
    quality = {m: QualityRow(deletion=float(dele[m].mean()), insertion=0.5, pointing=None,
                             energy=None, sanity=float(np.nanmean(change[m])), n=6, n_boxes=0,
                             n_sanity=6) for m in change}
    t = quality_table(quality, ranking)
    assert [r[5] for r in t.rows] == ["0.300", "0.400"]  # the shown means, own images
    assert _bold_rows(t, 5) == ["RISE"]
    assert ("|rank corr.| after head randomization (compared on the 3 of 6 images where every "
            "method has a score; means there: GradCAM 0.600, RISE 0.400): RISE is best"
            ) in t.caption
    assert t.caption.count("compared on the") == 1  # deletion: every image has every score
    assert ranking["deletion"]["n"] == ranking["deletion"]["scored"] == 6


def test_sanity_verdicts_follow_the_threshold():
    assert SANITY_THRESHOLD == 0.5
    assert sanity_verdict([0.95, 0.99]) == "fails" and sanity_verdict([0.5, 0.6]) == "fails"
    assert sanity_verdict([0.0, 0.3]) == "passes" and sanity_verdict([0.3, 0.6]) == "inconclusive"
    assert sanity_verdict(None) is None
    assert absolute_interval([-0.9, -0.6]) == [0.6, 0.9]
    assert absolute_interval([-0.2, 0.4]) == [0.0, 0.4]
    assert absolute_interval([0.1, 0.4]) == [0.1, 0.4]


def test_the_table_says_in_words_which_methods_fail_the_sanity_check(rng):
    quality, ranking = _quality(rng, shift=0.01, noise=0.08)
    assert quality["gradcam++"].sanity_verdict == "fails"
    assert quality["gradcam"].sanity_verdict == "passes"
    t = quality_table(quality, ranking)
    verdicts = {r[0]: r[6] for r in t.rows}
    assert verdicts["GradCAM++"] == verdicts["LayerCAM"] == "fails"
    assert "Fail: GradCAM++, LayerCAM." in t.caption and "below 0.5" in t.caption
    assert "Pass: GradCAM" in t.caption
    assert "below 0.5" in t.headers[6]
    quality["gradcam"].sanity, quality["gradcam"].sanity_verdict = None, "undefined"
    t = quality_table(quality, ranking)
    assert "No verdict: GradCAM (a map before or after randomization was constant" in t.caption


@pytest.fixture
def honest(inputs, rng):
    quality, ranking = _quality(rng, shift=0.01, noise=0.08)
    inputs.explained.quality = quality
    inputs.explained.quality_ranking = ranking
    return inputs


def test_pages_and_metrics_state_the_methods_and_verdicts(honest, drawn, tmp_path):
    content = gather(honest, drawn)
    pages = {p.rel: p for p in content.pages}
    env = environment()
    methods = render(env, "methods.html", pages["methods.html"].context)
    assert "Fail: GradCAM++, LayerCAM." in methods and "no single best" in methods
    assert "Goutte &amp; Gaussier" in methods
    report = render(env, "report.md", pages["report.md"].context)
    assert "Fail: GradCAM\\+\\+, LayerCAM." in report and "Bayesian" in report
    index = render(env, "index.html", pages["index.html"].context)
    caption = index.split('<p class="muted">Per-class metrics on the test split')[1]
    caption = caption.split("</p>")[0]  # visible under the table, not only in its aria-label
    assert "Wilson score for precision and recall; F1: Bayesian interval" in caption
    assert "Goutte &amp; Gaussier" in caption
    assert '<p class="muted">Accuracy and loss per split (95 % intervals: Wilson' in index
    assert "Wilson score for precision and recall; F1: Bayesian interval" in report
    cls = render(env, "class.html", pages["class-00-a.html"].context)
    assert "Bayesian, Goutte &amp; Gaussier" in cls and "Wilson" in cls
    with Figures(["png"], parallel=False) as figures, SiteWriter(tmp_path / "site") as site:
        write_site(site, content, figures, {}, show_progress=False)
        site.commit()
    metrics = json.loads((tmp_path / "site" / "metrics.json").read_text())
    q = metrics["explain"]["quality"]
    assert q["gradcam++"]["sanity_verdict"] == "fails" and q["gradcam++"]["sanity_threshold"] == 0.5
    assert metrics["explain"]["quality_ranking"]["deletion"]["separated"] is False
    test = metrics["splits"]["test"]
    assert "Bayesian" in test["interval_methods"]["f1"]
    assert "Wilson" in test["interval_methods"]["precision"]


def test_a_class_without_errors_gets_an_interval_below_1(inputs, drawn):
    """Test class b of the fixture: every image right except one predicted as a; class a then
    has recall 1. Its recall and F1 intervals must not collapse to [1, 1]."""
    content = gather(inputs, drawn)
    index = next(p for p in content.pages if p.rel == "index.html").context
    t = index["t_classes"]["html"]
    pc = inputs.metrics["test"]["per_class"]["a"]
    assert pc["recall"] == 1.0 and pc["recall_ci95"][0] < 0.9 and pc["f1_ci95"][0] < 0.9
    assert f"1.000 [{pc['recall_ci95'][0]:.3f}, 1.000]" in t
    caption = index["t_classes"]["caption"]
    assert "Wilson score for precision and recall" in caption and "Bayesian" in caption
