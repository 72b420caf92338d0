"""Curves, AP and ROC AUC against scikit-learn on the same scores (ties included), the
bootstrap's weighted resamples against the resampled lists, and the thresholds of a binary
model."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import (average_precision_score, f1_score, precision_score, recall_score,
                             roc_auc_score)

from reportgen.evaluate import _resampled
from reportgen.evaluate import curves as cv


def tied_scores(rng, n: int, k: int, levels: int = 5) -> np.ndarray:
    """(n, k) probabilities rounded to ``levels`` values, so many scores tie."""
    p = rng.dirichlet(np.ones(k), size=n)
    return np.round(p * levels) / levels


@pytest.mark.parametrize("seed", range(6))
def test_binary_ap_and_auc_equal_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    y = rng.random(40) < 0.3
    y[:2] = [True, False]
    s = np.round(rng.random(40) * 4) / 4  # 5 distinct values: heavy ties
    assert cv.average_precision(y, s) == pytest.approx(average_precision_score(y, s), abs=1e-12)
    assert cv.roc_auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_hand_computed_values():
    """Scores 0.9 (pos), 0.8 (neg), 0.7 (pos), 0.1 (neg): AP = 1/2 * 1 + 1/2 * 2/3 = 5/6;
    AUC: of the 4 (pos, neg) pairs, the pos is higher in 3 = 0.75."""
    y, s = np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.7, 0.1])
    assert cv.average_precision(y, s) == pytest.approx(5 / 6)
    assert cv.roc_auc(y, s) == pytest.approx(0.75)
    # A tie between a positive and a negative counts half: AUC = (1 + 0.5) / 2.
    assert cv.roc_auc([1, 0, 1, 0], [0.5, 0.5, 0.9, 0.1]) == pytest.approx(1.0 - 0.5 / 4)


@pytest.mark.parametrize("seed", range(4))
def test_curve_metrics_equal_sklearn_per_class_macro_micro(seed):
    rng = np.random.default_rng(seed)
    k, n = 4, 60
    probs = tied_scores(rng, n, k)
    y = rng.integers(0, k, n)
    names = [f"c{i}" for i in range(k)]
    out = cv.curve_metrics(probs, y, names, resamples=50)
    onehot = np.eye(k)[y]
    for c, name in enumerate(names):
        e = out["classes"][name]
        assert e["average_precision"] == pytest.approx(
            average_precision_score(onehot[:, c], probs[:, c]), abs=1e-12)
        assert e["roc_auc"] == pytest.approx(roc_auc_score(onehot[:, c], probs[:, c]), abs=1e-12)
        lo, hi = e["roc_auc_ci95"]
        assert 0 <= lo <= hi <= 1
    for avg in ("macro", "micro"):
        assert out[avg]["average_precision"] == pytest.approx(
            average_precision_score(onehot, probs, average=avg), abs=1e-12)
        assert out[avg]["roc_auc"] == pytest.approx(
            roc_auc_score(onehot, probs, average=avg), abs=1e-12)
    assert out["absent"] == [] and out["only_class"] == []


def test_absent_class_is_stated_not_nan():
    """A class without a test image has no entry (it is listed), the macro average covers the
    others (sklearn on their columns), the micro average every column; no NaN anywhere."""
    rng = np.random.default_rng(3)
    probs = tied_scores(rng, 30, 3)
    y = rng.integers(0, 2, 30)  # class 2 never appears
    out = cv.curve_metrics(probs, y, ["a", "b", "gone"], resamples=30)
    assert out["absent"] == ["gone"] and set(out["classes"]) == {"a", "b"}
    onehot = np.eye(3)[y]
    assert out["macro"]["roc_auc"] == pytest.approx(
        roc_auc_score(onehot[:, :2], probs[:, :2], average="macro"))
    assert out["micro"]["average_precision"] == pytest.approx(
        average_precision_score(onehot, probs, average="micro"))
    import json
    json.dumps(out, allow_nan=False)  # raises on NaN


def test_one_class_only_has_no_auc_but_no_crash():
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.7, 0.3]])
    out = cv.curve_metrics(probs, np.zeros(3, int), ["a", "b"], resamples=20)
    assert out["classes"]["a"]["roc_auc"] is None and out["classes"]["a"]["roc_auc_ci95"] is None
    assert out["classes"]["a"]["average_precision"] == pytest.approx(1.0)
    assert out["only_class"] == ["a"] and out["absent"] == ["b"]
    assert out["macro"]["roc_auc"] is None


def test_weighted_resample_equals_resampled_list():
    """The bootstrap scores a resample by draw counts; that equals sklearn on the list of the
    drawn images (duplicates and all)."""
    rng = np.random.default_rng(0)
    y = rng.random(25) < 0.4
    s = np.round(rng.random(25) * 6) / 6
    counts = cv.draw_counts(25, resamples=30, seed=1)
    boot = cv._bootstrap(y, s, counts)
    idx = np.concatenate(list(_resampled(25, 30, 1)))
    for r in range(30):
        yy, ss = y[idx[r]], s[idx[r]]
        if yy.all() or not yy.any():
            assert np.isnan(boot[r, 1])
            continue
        assert boot[r, 0] == pytest.approx(average_precision_score(yy, ss), abs=1e-12)
        assert boot[r, 1] == pytest.approx(roc_auc_score(yy, ss), abs=1e-12)


def test_intervals_are_seeded_and_cover_the_estimate():
    rng = np.random.default_rng(5)
    probs = tied_scores(rng, 80, 3, levels=20)
    y = np.where(rng.random(80) < 0.7, probs.argmax(1), rng.integers(0, 3, 80))
    a = cv.curve_metrics(probs, y, ["a", "b", "c"], resamples=200)
    b = cv.curve_metrics(probs, y, ["a", "b", "c"], resamples=200)
    assert a == b
    for e in [*a["classes"].values(), a["macro"], a["micro"]]:
        lo, hi = e["roc_auc_ci95"]
        assert lo < e["roc_auc"] < hi
        lo, hi = e["average_precision_ci95"]
        assert lo < e["average_precision"] < hi


def test_threshold_sweep_equals_sklearn_at_each_threshold():
    rng = np.random.default_rng(2)
    y = rng.random(50) < 0.4
    s = np.round(rng.random(50) * 10) / 10
    sw = cv.threshold_sweep(y, s)
    for i, t in enumerate(sw["thresholds"]):
        pred = s >= t
        assert sw["precision"][i] == pytest.approx(precision_score(y, pred, zero_division=0))
        assert sw["recall"][i] == pytest.approx(recall_score(y, pred))
        assert sw["f1"][i] == pytest.approx(f1_score(y, pred))
        assert sw["positive_rate"][i] == pytest.approx(pred.mean())
    t, f1 = cv.best_f1_threshold(y, s)
    grid = {float(v): f1_score(y, s >= v) for v in np.unique(s)}
    assert f1 == pytest.approx(max(grid.values()))
    assert t == max(v for v, f in grid.items() if f == pytest.approx(max(grid.values())))


def test_binary_thresholds_tunes_on_validation_only():
    """The best threshold comes from the validation split: a test split whose best threshold
    differs does not move it."""
    val_s = np.array([0.9, 0.8, 0.35, 0.3, 0.2, 0.1])
    val_y = np.array([1, 1, 1, 0, 0, 0])  # best F1 (1.0) at t = 0.35
    test_s = np.array([0.9, 0.6, 0.55, 0.4, 0.2])
    test_y = np.array([1, 1, 0, 0, 0])  # best on test would be 0.6
    probs = {"val": np.c_[1 - val_s, val_s], "test": np.c_[1 - test_s, test_s]}
    labels = {"val": val_y, "test": test_y}
    out = cv.binary_thresholds(probs, labels, ["neg", "pos"], None)
    assert out["validation_best"]["threshold"] == pytest.approx(0.35)
    assert out["validation_best"]["f1"] == pytest.approx(1.0)
    # On test at 0.35: predicted positive 0.9, 0.6, 0.55, 0.4 -> tp 2, fp 2.
    assert out["validation_best"]["test"]["precision"] == pytest.approx(0.5)
    assert out["source"] == "default" and out["operating_point"] == 0.5
    # The default predictions (higher probability): 0.9, 0.6, 0.55 positive -> P 2/3, R 1.
    assert out["test"]["precision"] == pytest.approx(2 / 3)
    given = cv.binary_thresholds(probs, labels, ["neg", "pos"], 0.58)
    assert given["source"] == "evaluate.threshold"
    assert given["test"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "positive_rate": 0.4}
    none = cv.binary_thresholds({"test": probs["test"]}, {"test": test_y}, ["n", "p"], None)
    assert none["validation_best"] is None and none["validation_note"] == "no validation split"


def test_the_curves_cost_model_counts_score_resample_pairs():
    """1000 images, 10 classes: 1000 x (10 + 10) x 1000 resamples = 20 M pairs (the
    bootstrap's budget exactly); 4000 images draw 20 M / 80 000 = 250 resamples, 8000 would
    draw 125 and get the floor of 200."""
    assert cv.resamples_for(1000, 10, 10) == 1000
    assert cv.curves_seconds(1000, 10, 10) == pytest.approx(20e6 * cv.SECONDS_PER_PAIR)
    assert cv.curves_seconds(4000, 10, 10) == pytest.approx(20e6 * cv.SECONDS_PER_PAIR)
    assert cv.curves_seconds(8000, 10, 10) == pytest.approx(8000 * 20 * 200
                                                             * cv.SECONDS_PER_PAIR)
