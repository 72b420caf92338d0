"""Metrics against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reportgen import evaluate as ev

# 6 samples, 3 classes. true: 0 0 1 1 2 2; predicted: 0 1 1 1 0 2
Y = np.array([0, 0, 1, 1, 2, 2])
P = np.array([
    [0.7, 0.2, 0.1],
    [0.3, 0.6, 0.1],
    [0.1, 0.8, 0.1],
    [0.2, 0.5, 0.3],
    [0.5, 0.1, 0.4],
    [0.1, 0.2, 0.7],
])


def test_confusion_matrix_counts_and_rows():
    cm = ev.confusion_matrix(Y, P.argmax(1), 3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    norm = ev.normalize_rows(cm)
    np.testing.assert_allclose(norm, [[0.5, 0.5, 0], [0, 1, 0], [0.5, 0, 0.5]])
    # An empty row stays zeros instead of NaN.
    assert ev.normalize_rows(np.zeros((2, 2))).tolist() == [[0, 0], [0, 0]]


def test_per_class_by_hand():
    pc = ev.per_class(ev.confusion_matrix(Y, P.argmax(1), 3))
    # class 0: tp 1, predicted 2, actual 2 -> p 1/2, r 1/2, f1 1/2
    # class 1: tp 2, predicted 3, actual 2 -> p 2/3, r 1, f1 0.8
    # class 2: tp 1, predicted 1, actual 2 -> p 1, r 1/2, f1 2/3
    np.testing.assert_allclose(pc["precision"], [0.5, 2 / 3, 1.0])
    np.testing.assert_allclose(pc["recall"], [0.5, 1.0, 0.5])
    np.testing.assert_allclose(pc["f1"], [0.5, 0.8, 2 / 3])
    assert pc["support"].tolist() == [2, 2, 2]


def test_zero_division_is_zero():
    pc = ev.per_class(np.array([[2, 0], [2, 0]]))  # class 1 never predicted, never right
    assert pc["precision"][1] == 0 and pc["recall"][1] == 0 and pc["f1"][1] == 0


def test_top_k_and_loss():
    # top-2 sets: {0,1} {1,0} {1,0|2} {1,2} {0,2} {2,1}; true in set: y y y y y y
    assert ev.top_k_accuracy(P, Y, 1) == pytest.approx(4 / 6)
    assert ev.top_k_accuracy(P, Y, 2) == pytest.approx(1.0)
    want = -np.mean(np.log([0.7, 0.3, 0.8, 0.5, 0.4, 0.7]))
    assert ev.cross_entropy(P, Y) == pytest.approx(want)


def test_logits_become_probabilities():
    logits = np.array([[2.0, 0.0, -1.0]])
    p = ev.to_probabilities(logits)
    e = np.exp([2.0, 0.0, -1.0])
    np.testing.assert_allclose(p[0], e / e.sum())
    np.testing.assert_array_equal(ev.to_probabilities(P), P)


def test_calibration_by_hand():
    # confidences 0.7 0.6 0.8 0.5 0.5 0.7; correct 1 0 1 1 0 1
    cal = ev.calibration(P, Y, bins=2)  # bins (0, .5], (.5, 1]
    low, high = cal["bins"]
    assert low["count"] == 2 and high["count"] == 4
    assert low["accuracy"] == pytest.approx(0.5) and low["confidence"] == pytest.approx(0.5)
    assert high["accuracy"] == pytest.approx(0.75)
    assert high["confidence"] == pytest.approx((0.7 + 0.6 + 0.8 + 0.7) / 4)
    want = 2 / 6 * 0 + 4 / 6 * abs(0.75 - 0.7)
    assert cal["ece"] == pytest.approx(want)


def test_split_metrics_json_ready():
    m = ev.split_metrics(P, Y, ["a", "b", "c"], top_k=2)
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["top_2_accuracy"] == pytest.approx(1.0)
    assert m["per_class"]["b"]["f1"] == pytest.approx(0.8)
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert not math.isnan(m["loss"])


def _f1_loop(y, p, k, resamples, seed):
    """F1 per class and macro F1 of each resample, drawn as documented, by per_class()."""
    rng = np.random.default_rng(seed)
    out = []
    for start in range(0, resamples, 100):
        for idx in rng.integers(0, len(y), size=(min(100, resamples - start), len(y))):
            out.append(ev.per_class(ev.confusion_matrix(y[idx], p[idx], k))["f1"])
    return np.array(out)


def test_f1_bootstrap_equals_resampling_by_hand(rng):
    y = rng.integers(0, 3, 60)
    p = np.where(rng.uniform(size=60) < 0.7, y, rng.integers(0, 3, 60))
    per_class, macro = ev.f1_bootstrap(y, p, 3, resamples=250, seed=4)
    f1 = _f1_loop(y, p, 3, 250, 4)
    np.testing.assert_allclose(per_class, np.percentile(f1, [2.5, 97.5], axis=0).T)
    np.testing.assert_allclose(macro, np.percentile(f1.mean(1), [2.5, 97.5]))
    f1_all = ev.per_class(ev.confusion_matrix(y, p, 3))["f1"]
    assert ((per_class[:, 0] <= f1_all) & (f1_all <= per_class[:, 1])).all()
    perfect, macro = ev.f1_bootstrap(y, y, 3)
    assert (perfect == 1).all() and macro == [1.0, 1.0]


def test_bootstrap_mean_by_hand():
    v = np.array([0.0, 1.0, np.nan, 1.0, 1.0])
    rng = np.random.default_rng(0)
    clean = v[np.isfinite(v)]
    means = clean[rng.integers(0, 4, size=(100, 4))].mean(1)
    assert ev.bootstrap_mean(v, resamples=100) == pytest.approx(
        list(np.percentile(means, [2.5, 97.5])))
    assert ev.bootstrap_mean(np.full(5, 0.3)) == pytest.approx([0.3, 0.3])
    assert all(np.isnan(ev.bootstrap_mean([np.nan])))


def test_split_metrics_carry_f1_intervals(rng):
    probs = rng.dirichlet(np.ones(3), 40)
    y = rng.integers(0, 3, 40)
    m = ev.split_metrics(probs, y, ["a", "b", "c"])
    lo, hi = m["macro_f1_ci95"]
    assert lo <= m["macro_f1"] <= hi
    assert all(len(m["per_class"][c]["f1_ci95"]) == 2 for c in "abc")


def test_misclassified_skips_images_without_labels():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    assert ev.misclassified(np.array([0, 0, 1, -1]), probs).tolist() == [1, 2]
    assert ev.misclassified(np.zeros(0, int), np.zeros((0, 2))).tolist() == []
