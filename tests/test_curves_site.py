"""Whole builds: the curves in metrics.json equal scikit-learn's on the probabilities read back
from predictions.csv, the page, report.md and the exports show them, the gate reads the real
metrics.json; a binary sigmoid model's threshold changes its predicted labels."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.metrics import average_precision_score, roc_auc_score

from reportgen.cli import main
from test_bad_input import build, load_model_args, make_folder  # tests/ is on sys.path
from test_model_kinds import TWO, sigmoid_model


def read_back(site):
    metrics = json.loads((site / "metrics.json").read_text(encoding="utf-8"))
    with open(site / "predictions.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    names = metrics["classes"]
    probs = np.array([[float(r[n]) for n in names] for r in rows])
    true = np.array([names.index(r["true"]) for r in rows])
    return metrics, rows, probs, true


@pytest.mark.slow
def test_curves_equal_sklearn_on_predictions_csv(smoke_site, md_tables):
    site, _ = smoke_site
    metrics, _, probs, true = read_back(site)
    names, curves = metrics["classes"], metrics["curves"]
    onehot = np.eye(len(names))[true]
    present = [c for c in range(len(names)) if onehot[:, c].any()]
    assert set(curves) == {names[c] for c in present} | {"macro", "micro"}
    for c in present:
        e = curves[names[c]]
        assert e["average_precision"] == pytest.approx(
            average_precision_score(onehot[:, c], probs[:, c]), abs=1e-12)
        assert e["roc_auc"] == pytest.approx(roc_auc_score(onehot[:, c], probs[:, c]),
                                             abs=1e-12)
        assert len(e["roc_auc_ci95"]) == 2
    for avg in ("macro", "micro"):
        cols = present if avg == "macro" else list(range(len(names)))
        assert curves[avg]["average_precision"] == pytest.approx(
            average_precision_score(onehot[:, cols], probs[:, cols], average=avg), abs=1e-12)
        assert curves[avg]["roc_auc"] == pytest.approx(
            roc_auc_score(onehot[:, cols], probs[:, cols], average=avg), abs=1e-12)
    assert "percentile bootstrap" in metrics["splits"]["test"]["curves"]["interval"]
    assert "curves" in metrics["timings_s"]
    for rel in ("fig/pr_curves.svg", "fig/roc_curves.pdf", "tables/curves_test.tex"):
        assert (site / rel).stat().st_size > 0, rel
    assert 'id="curves"' in (site / "index.html").read_text(encoding="utf-8")
    md = (site / "report.md").read_text(encoding="utf-8")
    table = next(t for t in md_tables(md) if t[0][:2] == ["class", "average precision [95 % CI]"])
    assert [r[0] for r in table[1:]][-2:] == ["macro average", "micro average"]


@pytest.mark.slow
def test_the_gate_reads_a_built_site(smoke_site):
    site, _ = smoke_site
    metrics = json.loads((site / "metrics.json").read_text(encoding="utf-8"))
    acc = metrics["splits"]["test"]["accuracy"]
    ok = CliRunner().invoke(main, ["gate", str(site), "--baseline", str(site), "--min",
                                   f"accuracy={acc}", "--min", "curves.macro.roc_auc=0"])
    assert ok.exit_code == 0, ok.output
    assert "right on 0 images the baseline gets wrong and wrong on 0" in ok.output
    bad = CliRunner().invoke(main, ["gate", str(site), "--min", f"accuracy={acc + 0.01}"])
    assert bad.exit_code == 1, bad.output


@pytest.mark.slow
def test_a_sigmoid_models_threshold_changes_its_predictions(keras, tmp_path):
    """One sigmoid unit: the positive class's curve equals sklearn's; evaluate.threshold moves
    the predicted labels (predictions.csv, confusion matrix) and is stated; the best-F1
    threshold comes from the validation split."""
    data = make_folder(tmp_path / "data", classes=TWO, n=12)
    model = sigmoid_model(keras)
    model.save(tmp_path / "binary.keras")
    args = [*load_model_args(tmp_path / "binary.keras"), "explain.layer=conv"]
    assert build(tmp_path, *args, data=data).exit_code == 0
    metrics, rows, probs, true = read_back(tmp_path / "site")
    p = probs[:, 1]
    assert metrics["curves"]["dog"]["roc_auc"] == pytest.approx(roc_auc_score(true, p))
    t = metrics["thresholds"]
    assert t["source"] == "default" and t["positive_class"] == "dog"
    cut = float(np.median(p))  # a threshold that splits the test images in two
    result = build(tmp_path, *args, f"evaluate.threshold={cut!r}", data=data,
                   out=tmp_path / "cut")
    assert result.exit_code == 0, result.output
    metrics, rows, probs2, _ = read_back(tmp_path / "cut")
    np.testing.assert_array_equal(probs2, probs)
    pred = (p >= cut).astype(int)
    assert [r["predicted"] for r in rows] == [["cat", "dog"][k] for k in pred]
    cm = np.zeros((2, 2), int)
    np.add.at(cm, (true, pred), 1)
    assert metrics["splits"]["test"]["confusion_matrix"] == cm.tolist()
    t = metrics["thresholds"]
    assert t["source"] == "evaluate.threshold" and t["operating_point"] == cut
    assert any("evaluate.threshold" in n for n in metrics["notes"])
    assert (tmp_path / "cut" / "fig" / "thresholds.png").is_file()


@pytest.mark.slow
def test_a_two_class_threshold_decides_every_page(keras, tmp_path):
    """A two-class softmax at an evaluate.threshold that flips some of the highest-probability
    predictions: the nav's "Errors (n)" equals the confusion matrix's off-diagonal sum, and
    every tile on every page (galleries, errors page) names the predicted class that
    predictions.csv and the confusion matrix use."""
    import html
    import re

    data = make_folder(tmp_path / "data", classes=TWO, n=12)
    sigmoid_model(keras, units=2, activation="softmax").save(tmp_path / "two.keras")
    args = [*load_model_args(tmp_path / "two.keras"), "explain.layer=conv"]
    assert build(tmp_path, *args, data=data).exit_code == 0
    _, _, probs, _ = read_back(tmp_path / "site")
    cut = float(np.median(probs[:, 1]))  # half the test images on each side
    assert 0 < ((probs[:, 1] >= cut) != (probs[:, 1] > probs[:, 0])).sum()  # some flip
    site = tmp_path / "cut"
    result = build(tmp_path, *args, f"evaluate.threshold={cut!r}", data=data, out=site)
    assert result.exit_code == 0, result.output
    metrics, rows, _, true = read_back(site)
    pred = (probs[:, 1] >= cut).astype(int)
    assert [r["predicted"] for r in rows] == [["cat", "dog"][k] for k in pred]
    cm = np.array(metrics["splits"]["test"]["confusion_matrix"])
    errors = int(cm.sum() - np.trace(cm))
    assert errors == int((pred != true).sum()) > 0
    index = (site / "index.html").read_text(encoding="utf-8")
    assert f"Errors ({errors})" in index
    predicted = {r["file"]: r["predicted"] for r in rows}
    tiles = re.compile(r"Test image ([^,\"]+), true (\w+), predicted (\w+), ")
    seen: dict[str, set[str]] = {}
    for page in site.glob("*.html"):
        for file, _, said in tiles.findall(html.unescape(page.read_text(encoding="utf-8"))):
            assert said == predicted[file], (page.name, file)
            seen.setdefault(page.name, set()).add(file)
    wrong = {r["file"] for r in rows if r["predicted"] != r["true"]}
    assert seen["errors.html"] == wrong
    assert any("galleries" in n for n in metrics["notes"])
    parts = metrics["explain"]["plan"]["parts"]  # the evaluation's parts beside explain's
    for part in ("curves", "slices"):
        assert parts[part]["estimate_s"] >= 0
        assert parts[part]["actual_s"] == pytest.approx(metrics["timings_s"][part], abs=0.01)
