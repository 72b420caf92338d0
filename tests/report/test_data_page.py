"""The data page, its CSV files and metrics.json ``data_issues``, gathered from made-up
results (the audit itself is tested in tests/audit)."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from reportgen.audit.issues import audit_data
from reportgen.report import gather
from reportgen.report.data_page import COLUMNS


@pytest.fixture
def audited(inputs, rng):
    """``inputs`` with GradCAMs of the test set and the audit of its data: test image 1
    (labelled b, p(a) = 0.9 >= t_a = 0.8) is the one likely label error."""
    ex = inputs.explained
    ex.test_maps = rng.uniform(0, 1, (6, 4, 4)).astype(np.float16)
    ex.true_maps = {1: rng.uniform(0, 1, (4, 4)).astype(np.float16)}
    inputs.data_issues = audit_data(inputs.ds.splits, inputs.probs, inputs.ds.class_names)
    return inputs


def page(content, rel):
    return next(p for p in content.pages if p.rel == rel)


def csv_rows(content, rel, folder):
    """The rows of the CSV file ``rel`` of the gathered site, written into ``folder``."""
    path = folder / "file.csv"
    content.assets.jobs[rel].write(path)
    return list(csv.DictReader(io.StringIO(path.read_text("utf-8"))))


def test_label_errors_on_the_page_in_csv_and_in_metrics(audited, drawn, tmp_path):
    content = gather(audited, drawn)
    ctx = page(content, "data.html").context
    sec = {s["key"]: s for s in ctx["issues"]["sections"]}
    (tile,) = sec["label_errors"]["tiles"]
    assert tile["paths"] == ["x/1.png"]
    # The image, the predicted class's GradCAM and the given label's, each named for its class.
    assert [v["label"] for v in tile["views"]] == ["image", "map: a (predicted)",
                                                   "map: b (given)"]
    assert tile["views"][1]["src"] == "img/gradcam/1.jpg"
    assert tile["views"][2]["src"] == "img/gradcam/true/1.jpg"
    rows = csv_rows(content, "data/label_errors.csv", tmp_path)
    assert rows == [{"file": "x/1.png", "split": "test", "given": "b", "suggested": "a",
                     "score": "0.9"}]
    issues = content.metrics["data_issues"]
    assert issues["label_errors"] == [{"file": "x/1.png", "split": "test", "given": "b",
                                       "suggested": "a", "score": pytest.approx(0.9)}]
    assert set(issues) >= {"label_errors", "duplicates", "outliers", "quality", "scores",
                           "summary"}
    for name, cols in COLUMNS.items():
        assert all(list(r) == cols for r in issues[name])
        assert "higher = more suspicious" in issues["scores"][name] or name != "label_errors"
    nav = [n["href"] for n in ctx["nav"]]
    assert "data.html" in nav and "data.html" in [n["href"] for n in
                                                  page(content, "index.html").context["nav"]]
    assert page(content, "index.html").context["audit"]["label_errors"].startswith(
        "Likely label errors: 0 of 4 val images")


def test_a_val_image_is_shown_without_gradcam(audited, drawn):
    audited.probs["val"][2] = [0.1, 0.9]  # val image 2 (labelled a) predicted b
    audited.data_issues = audit_data(audited.ds.splits, audited.probs, ["a", "b"])
    sec = {s["key"]: s for s in
           page(gather(audited, drawn), "data.html").context["issues"]["sections"]}
    tiles = {t["paths"][0] + t["caption"][:4]: t for t in sec["label_errors"]["tiles"]}
    val = tiles["x/2.pngval:"]
    assert [v["label"] for v in val["views"]] == ["image"]
    assert val["views"][0]["src"] == "img/val/2.jpg"


def test_the_page_says_when_the_audit_is_off_or_failed(inputs, drawn):
    import dataclasses

    inputs.cfg = dataclasses.replace(inputs.cfg, report=dataclasses.replace(
        inputs.cfg.report, data_audit=False))
    content = gather(inputs, drawn)
    ctx = page(content, "data.html").context
    assert ctx["issues"] is None and ctx["audit_on"] is False
    assert content.metrics["data_issues"] is None
    # A page that fails to be made is a note on it, never a lost build.
    inputs.data_issues = audit_data(inputs.ds.splits, inputs.probs, ["a", "b"])
    inputs.data_issues.label_errors = [{"file": "x/9.png", "split": "test", "given": "a",
                                        "suggested": "b", "score": 0.5}]  # no index
    content = gather(inputs, drawn)
    assert {f.part for f in content.failures} == {"data audit"}  # the explorer's map stays
    assert page(content, "data.html").context["failed_in"]["audit"]


def test_the_explorer_colours_each_image_by_its_first_data_issue():
    from reportgen.audit.issues import DataIssues
    from reportgen.report.data_page import issue_colouring

    issues = DataIssues(
        label_errors=[{"split": "val", "index": 2}],
        duplicates=[{"split_a": "train", "index_a": 5, "split_b": "test", "index_b": 0},
                    {"split_a": "val", "index_a": 2, "split_b": "test", "index_b": 7}],
        outliers=[{"split": "test", "index": 0}, {"split": "test", "index": 3}],
        quality=[{"split": "test", "index": 3}, {"split": "train", "index": 1}])
    col = issue_colouring(issues)["issue"]
    assert col.values == {"val": {2: "likely label error"},
                          "train": {5: "duplicate", 1: "quality flag"},
                          "test": {0: "duplicate", 7: "duplicate", 3: "outlier"}}
    assert issue_colouring(None) == {}


def test_report_md_has_the_data_issues_with_its_galleries_as_whole_tables(audited, drawn,
                                                                          md_tables):
    from reportgen.report.build import failure_context
    from reportgen.report.render import environment, render

    audited.probs["val"][2] = [0.1, 0.9]  # a second label error, on val
    audited.data_issues = audit_data(audited.ds.splits, audited.probs, ["a", "b"])
    content = gather(audited, drawn)
    report = page(content, "report.md")
    md = render(environment(), "report.md", {**report.context,
                                             **failure_context(content.failures)})
    section = md[md.index("### Data issues"):md.index("## Training")]
    assert "Likely label errors: 1 of 4 val images" in section
    assert "[data/label_errors.csv](data/label_errors.csv)" in section
    md_tables(md)  # every gallery is one table, followed by a blank line
    assert "img/gradcam/true/1.jpg" in section and "img/val/2.jpg" in section


def test_a_weak_models_label_error_list_is_said_to_be_mostly_its_own_mistakes():
    """Confident learning trusts the probabilities: at 60 % test accuracy the sentence says
    the list is mostly the model's mistakes; at 90 %, or without labels' accuracy, it does not."""
    import types

    from reportgen.report.data_page import WEAK_MODEL, summary_lines

    def sentence(right: int, n: int = 10) -> str:
        rate = {"count": right, "n": n, "rate": right / n, "ci95": (0.0, 1.0)}
        s = {"label_errors": {"test": {"count": 4, "n": n, "rate": 0.4, "ci95": (0.1, 0.7)}},
             "test_in_train": {"count": 0, "n": n, "rate": 0.0, "ci95": (0.0, 0.3)},
             "accuracy": {"all": rate, "without_copies": rate}}
        return summary_lines(types.SimpleNamespace(summary=s))["label_errors"]

    assert "right on only 60 %" in sentence(6) and "its own mistakes" in sentence(6)
    assert "mistakes" not in sentence(9) and 0.6 < WEAK_MODEL <= 0.9
