"""The PR/ROC curves, the AP/AUC table and a binary model's threshold on the overview and in
report.md, their figures (with SVG and PDF) and LaTeX export, and metrics.json's ``curves``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from reportgen.evaluate import curves as cv
from reportgen.report.build import curves_json, gather, metric_figures, operating_threshold
from reportgen.report.figjobs import Figures
from reportgen.report.render import environment, render


@pytest.fixture
def with_curves(inputs):
    """The conftest's binary inputs with the test curves and thresholds the evaluate stage
    adds."""
    ds, probs = inputs.ds, inputs.probs
    labels = {s: ds.splits[s].labels for s in ("test", "val")}
    test = inputs.metrics["test"]
    test["curves"] = cv.curve_metrics(probs["test"], labels["test"], ds.class_names,
                                      resamples=50)
    test["thresholds"] = cv.binary_thresholds(probs, labels, ds.class_names, None)
    return inputs


def test_figures_are_drawn_with_their_exports(with_curves, tmp_path):
    inputs = with_curves

    class Site:
        def path(self, rel):
            p = tmp_path / "site" / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            return p

    with Figures(["png", "svg", "pdf"], parallel=False) as f:
        drawn = metric_figures(f, inputs.cfg, inputs.ds, inputs.metrics, {},
                               probs=inputs.probs)
        f.write_into(Site())
    for key, name in (("pr", "pr_curves"), ("roc", "roc_curves"), ("thr", "thresholds")):
        assert drawn[key] is not None and "failed" not in drawn[key], key
        for fmt in ("png", "svg", "pdf"):
            assert (tmp_path / "site" / "fig" / f"{name}.{fmt}").stat().st_size > 0
    # A binary model: the positive class's curve only, named with its AP.
    assert "positive class, b" in drawn["pr"]["caption"]


def test_overview_and_report_md_show_the_table_and_threshold(with_curves, drawn, md_tables):
    inputs = with_curves
    fig = {"png": "fig/pr_curves.png", "alt": "pr", "caption": "PR.", "exports": [],
           "width": 400, "height": 300}
    content = gather(inputs, {**drawn, "pr": fig, "roc": {**fig, "png": "fig/roc.png"},
                              "thr": {**fig, "png": "fig/thr.png"}})
    assert "tables/curves_test.tex" in content.assets.jobs
    index = next(p for p in content.pages if p.rel == "index.html")
    html = render(environment(), index.template, index.context)
    assert 'id="curves"' in html and "fig/pr_curves.png" in html and "fig/thr.png" in html
    page = next(p for p in content.pages if p.rel == "report.md")
    md = render(environment(), page.template, page.context)
    table = next(t for t in md_tables(md) if t[0][:2] == ["class", "average precision [95 % CI]"])
    assert [r[0] for r in table[1:]] == ["a", "b", "macro average", "micro average"]
    auc_b = roc_auc_score(inputs.ds.splits["test"].labels == 1, inputs.probs["test"][:, 1])
    assert table[2][2].startswith(f"{auc_b:.3f}")
    assert "percentile bootstrap" in md and "maximises F1 on the validation split" in md
    assert "![pr](fig/pr_curves.png)" in md


def test_metrics_json_curves_are_plain_and_finite(with_curves):
    c = curves_json(with_curves.metrics)
    assert set(c) == {"a", "b", "macro", "micro"}
    assert set(c["a"]) == {"average_precision", "average_precision_ci95", "roc_auc",
                           "roc_auc_ci95"}
    json.dumps(c, allow_nan=False)
    assert operating_threshold(with_curves.metrics) is None
    assert curves_json({"test": {"n": 0}}) is None


def test_long_curves_are_thinned_for_the_figure_only():
    from reportgen.report import curves as rc

    rng = np.random.default_rng(0)
    y, s = rng.random(5000) < 0.3, rng.random(5000)
    (rec, prec), (fpr, tpr) = rc._points(y, s)
    assert len(rec) == len(prec) == rc.MAX_POINTS and len(fpr) == rc.MAX_POINTS
    assert rec[0] == 0 and rec[-1] == 1 and fpr[-1] == 1 and tpr[-1] == 1  # ends kept
