"""The Slices page, the overview's sentences and metrics.json, gathered from a made-up
:class:`~reportgen.evaluate.slices.SliceReport` (no TensorFlow)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from reportgen import figures as figs
from reportgen.report import gather, write_site
from reportgen.report.figjobs import Figures
from reportgen.report.render import environment, render
from reportgen.report.site import SiteWriter
from reportgen.evaluate.slices import slice_report


@pytest.fixture
def sliced(inputs):
    """400 test images: phones worse (70 % against 95 %), dark images worse."""
    rng = np.random.default_rng(0)
    camera = np.array(["phone"] * 150 + ["dslr"] * 240 + ["scanner"] * 10)
    brightness = rng.random(400)
    p_right = np.where(camera == "phone", 0.7, 0.95) * np.where(brightness < 0.2, 0.6, 1.0)
    correct = rng.random(400) < p_right
    inputs.slices = slice_report(correct, {"brightness": brightness,
                                           "contrast": rng.random(400)},
                                 {"camera": list(camera)}, source="meta.csv")
    return inputs


def _page(content, rel):
    page = next(p for p in content.pages if p.rel == rel)
    return render(environment(), page.template, page.context)


def test_the_slices_page_is_linked_and_states_the_flagged_slices(drawn, sliced):
    content = gather(sliced, drawn)
    index = next(p for p in content.pages if p.rel == "index.html").context
    assert {"href": "slices.html", "label": "Slices"} in index["nav"]
    flagged = index["slices"]["flagged"]
    assert flagged[0].startswith("camera = phone: accuracy ") and " against " in flagged[0]
    assert any(s.startswith("brightness < ") for s in flagged)
    html = _page(content, "index.html")
    assert 'href="slices.html"' in html and "camera = phone: accuracy" in html
    page = _page(content, "slices.html")
    assert "camera = scanner: 10 images (under 20 images)" in page  # listed, not scored
    assert "Benjamini–Hochberg over all" in page and "candidate rules" in page


def test_report_md_has_the_slices_section_and_its_tables(drawn, sliced, md_tables):
    content = gather(sliced, drawn)
    md = _page(content, "report.md")
    assert "### Slices" in md and "- camera = phone: accuracy" in md
    tables = {t[0][0]: t for t in md_tables(md)}
    meta = tables["column"]
    assert [r[1] for r in meta[1:]] == ["dslr", "phone"]  # the scanner is listed, not scored
    assert meta[0][6] == "flagged" and meta[2][6] == "worse" and meta[1][6] == ""
    assert tables["rule"][1][0].startswith("brightness < ")


def test_metrics_json_lists_every_slice_and_the_weak_ones(drawn, sliced, tmp_path):
    content = gather(sliced, drawn)
    with Figures(["png"], parallel=False) as figures, SiteWriter(tmp_path / "site") as site:
        write_site(site, content, figures, {}, show_progress=False)
        site.commit()
    metrics = json.loads((tmp_path / "site" / "metrics.json").read_text())
    by_value = {s["value"]: s for s in metrics["slices"]}
    assert set(by_value) == {"phone", "dslr", "scanner"}
    assert by_value["phone"]["flagged"] and not by_value["dslr"]["flagged"]
    assert by_value["scanner"]["p_adjusted"] is None and not by_value["scanner"]["flagged"]
    phone = sliced.slices.metadata.slices[1]
    assert by_value["phone"]["n"] == 150 and by_value["phone"]["ci95"] == list(phone.ci95)
    assert metrics["weak_slices"][0]["rule"].startswith("brightness < ")
    assert set(metrics["weak_slices"][0]) >= {"rule", "n", "accuracy", "ci95", "p_adjusted"}
    assert metrics["slice_search"]["min_size"] == 20
    assert (tmp_path / "site" / "slices.html").is_file()


def test_unlabeled_or_unsliced_reports_have_no_slices_page(drawn, inputs):
    content = gather(inputs, drawn)  # inputs.slices is None
    assert "slices.html" not in [p.rel for p in content.pages]
    assert content.metrics["slices"] == [] and content.metrics["slice_search"] is None


def test_the_forest_plot_draws_one_row_per_slice():
    rows = [{"label": "camera = phone", "accuracy": 0.7, "ci95": [0.62, 0.77], "n": 150,
             "flagged": True},
            {"label": "camera = dslr", "accuracy": 0.95, "ci95": [0.91, 0.97], "n": 240,
             "flagged": False}]
    fig = figs.slice_forest(rows, overall=0.86)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["camera = phone (n = 150)",
                                                            "camera = dslr (n = 240)"]
    assert ax.get_xlim() == (0, 100)
    lines = [ln for ln in ax.get_lines() if len(ln.get_xdata()) == 2 and
             ln.get_xdata()[0] != ln.get_xdata()[1]]
    assert [list(ln.get_xdata()) for ln in lines] == [[62.0, 77.0], [91.0, 97.0]]


def test_a_slice_of_every_image_is_listed_with_why(drawn, inputs):
    correct = np.random.default_rng(0).random(50) < 0.8
    inputs.slices = slice_report(correct, {}, {"site": ["a"] * 50}, source="meta.csv")
    page = _page(gather(inputs, drawn), "slices.html")
    assert "site = a: 50 images (every test image: no other images to compare)" in page


def test_the_curves_and_slices_parts_have_an_estimate_and_the_seconds_they_took(inputs):
    """Six test images, both classes present: the curves' bootstrap is 6 x (2 + 2) x 1000
    resamples = 24 000 (score, resample) pairs; the slices 6 images x (1 + 1 column)."""
    from reportgen.evaluate.curves import SECONDS_PER_PAIR
    from reportgen.evaluate.slices import SECONDS_PER_IMAGE
    from reportgen.report.build import evaluation_parts

    assert evaluation_parts(inputs) == {}  # neither ran
    inputs.timings = {"curves": 1.234, "slices": 0.015, "predict": 9.0}
    correct = np.ones(6, bool)
    inputs.slices = slice_report(correct, {}, {"site": list("aaabbb")}, source="meta.csv")
    parts = evaluation_parts(inputs)
    assert parts == {"curves": {"estimate_s": round(24_000 * SECONDS_PER_PAIR, 2),
                                "actual_s": 1.23},
                     "slices": {"estimate_s": round(12 * SECONDS_PER_IMAGE, 2),
                                "actual_s": 0.01}}
