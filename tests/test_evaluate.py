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
    assert m["top_2_accuracy_ci95"] == pytest.approx(_wilson_by_quadratic(6, 6))
    assert m["top_2_accuracy_ci95"][1] == 1.0 and m["top_2_accuracy_ci95"][0] < 0.7
    assert m["per_class"]["b"]["f1"] == pytest.approx(0.8)
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert not math.isnan(m["loss"])


def _wilson_by_quadratic(k: int, n: int, z: float = 1.959963984540054) -> list[float]:
    """The Wilson bounds as the roots p of (k/n - p)^2 = z^2 p (1 - p) / n."""
    ph = k / n
    # (1 + z^2/n) p^2 - (2 ph + z^2/n) p + ph^2 = 0
    roots = np.roots([1 + z * z / n, -(2 * ph + z * z / n), ph * ph])
    return sorted(float(np.real(r)) for r in roots)


@pytest.mark.parametrize("k,n", [(0, 27), (27, 27), (1, 27), (13, 27), (8, 10), (3, 200)])
def test_wilson_interval_equals_the_roots_of_its_quadratic(k, n):
    assert ev.wilson_interval(k, n) == pytest.approx(_wilson_by_quadratic(k, n), abs=1e-9)


def test_wilson_bounds_are_exact_at_0_and_n():
    for n in range(1, 200):  # the float sum missed 1 by 1e-16 at n = 10, 13, 25, 27, ...
        assert ev.wilson_interval(n, n)[1] == 1.0 and ev.wilson_interval(0, n)[0] == 0.0


def test_wilson_keeps_its_coverage_at_the_boundary():
    """Exact coverage (a sum over every outcome k of the binomial) near 0 and 1 and on average,
    where a percentile bootstrap ([k/n, k/n] at k = 0 or n) covers only when k is not 0 or n."""
    from math import comb

    def coverage(p, n=27):
        return sum(comb(n, k) * p ** k * (1 - p) ** (n - k) for k in range(n + 1)
                   if ev.wilson_interval(k, n)[0] <= p <= ev.wilson_interval(k, n)[1])
    assert coverage(0.01) > 0.95 and coverage(0.99) > 0.95
    assert coverage(0.03) > 0.9 and coverage(0.97) > 0.9
    grid = np.linspace(0.01, 0.99, 99)
    assert np.mean([coverage(p) for p in grid]) == pytest.approx(0.95, abs=0.01)


def test_per_class_precision_and_recall_intervals_are_wilson():
    m = ev.split_metrics(P, Y, ["a", "b", "c"])
    # class b: tp 2 of 3 predicted, 2 of 2 actual
    assert m["per_class"]["b"]["precision_ci95"] == pytest.approx(_wilson_by_quadratic(2, 3))
    assert m["per_class"]["b"]["recall_ci95"] == pytest.approx(_wilson_by_quadratic(2, 2))
    assert m["per_class"]["b"]["recall_ci95"][0] < 1
    for key in ("accuracy", "precision", "recall", "f1", "macro_f1"):
        assert m["interval_methods"][key]
    assert "Wilson" in m["interval_methods"]["recall"]
    assert "Bayesian" in m["interval_methods"]["f1"]


def test_a_perfect_class_of_27_gets_an_f1_interval_below_1():
    cm = np.array([[27, 0, 0], [0, 20, 5], [0, 3, 22]])
    f1, _ = ev.f1_posterior(cm)
    assert f1[0, 0] < 0.99 and f1[0, 1] <= 1.0  # not the bootstrap's [1, 1]
    assert ev.per_class(cm)["f1"][0] == 1.0
    m = ev.split_metrics(np.eye(3)[np.repeat([0, 1, 2], 27)], np.repeat([0, 1, 2], 27),
                         ["a", "b", "c"])
    assert m["per_class"]["a"]["f1"] == 1.0 and m["per_class"]["a"]["f1_ci95"][0] < 0.99
    assert m["macro_f1"] == 1.0 and m["macro_f1_ci95"][0] < 0.99
    assert m["accuracy_ci95"][0] < 0.99


def test_f1_intervals_hold_the_observed_value_and_reach_0_and_1():
    """A class never right has 0 as its lower bound, a class without errors 1 as its upper
    (else a true F1 of exactly 0 or 1 would never be covered); with 10 images over 5 classes
    the prior pulls the posterior's central 95 % of the macro F1 above the observed 0.067, and
    the interval is widened to hold it."""
    cm = np.array([[0, 0, 2, 0, 0], [0, 0, 2, 0, 0], [0, 0, 2, 0, 0], [0, 0, 2, 0, 0],
                   [0, 0, 2, 0, 0]])
    f1, macro = ev.f1_posterior(cm)
    obs = ev.per_class(cm)["f1"]
    assert obs.mean() == pytest.approx(1 / 15)
    assert (f1[[0, 1, 3, 4], 0] == 0).all() and (f1[:, 1] > 0.5).all()
    assert macro[0] == pytest.approx(1 / 15) and macro[1] > 0.2
    perfect, pm = ev.f1_posterior(np.diag([27, 30]))
    assert (perfect[:, 1] == 1).all() and pm[1] == 1 and (perfect[:, 0] < 0.99).all()


@pytest.mark.parametrize("cm", [[[27, 0], [0, 30]], [[10, 4], [2, 7]], [[0, 3], [0, 5]]])
def test_f1_posterior_matches_its_closed_form(cm):
    """For class k, F1 = 2U / (2U + S) with U ~ Gamma(tp + 1/2), S = FP + FN ~ Gamma(fp + fn
    + 1), so X = U / (U + S) ~ Beta(tp + 1/2, fp + fn + 1) and F1 = 2X / (1 + X), increasing
    in X: its quantiles are 2q / (1 + q) of the Beta quantiles q (scipy, independent)."""
    from scipy.stats import beta

    cm = np.array(cm)
    f1, _ = ev.f1_posterior(cm, draws=20000, seed=3)
    for k in range(2):
        tp, fp, fn = cm[k, k], cm[1 - k, k], cm[k, 1 - k]
        q = beta.ppf([0.025, 0.975], tp + 0.5, fp + fn + 1.0)
        np.testing.assert_allclose(f1[k], 2 * q / (1 + q), atol=0.01)


def test_f1_posterior_macro_is_the_mean_of_the_same_draws():
    """Three classes: the macro interval lies between the per-class ones' extremes and holds
    the observed macro F1; the same seed gives the same intervals."""
    cm = np.array([[8, 1, 1], [0, 9, 1], [2, 0, 8]])
    f1, macro = ev.f1_posterior(cm)
    obs = ev.per_class(cm)["f1"]
    assert ((f1[:, 0] <= obs) & (obs <= f1[:, 1])).all()
    assert f1[:, 0].min() < macro[0] < obs.mean() < macro[1] < f1[:, 1].max()
    again, macro2 = ev.f1_posterior(cm)
    np.testing.assert_array_equal(f1, again)
    assert macro == macro2
    nan, mnan = ev.f1_posterior(np.zeros((2, 2)))
    assert np.isnan(nan).all() and all(np.isnan(mnan))


@pytest.mark.parametrize("probs", [(0.45, 0.05, 0.05, 0.45), (0.49, 0.005, 0.005, 0.5),
                                   (0.2, 0.1, 0.1, 0.6)])
def test_f1_interval_covers_about_95_percent(probs):
    """Seeded simulation: 300 test sets of 27 images from known cell probabilities (tp, fp,
    fn, tn of class 0); the interval holds the true F1 in about 95 % of them, near 1 too."""
    p_tp, p_fp, p_fn, p_tn = probs
    true_f1 = 2 * p_tp / (2 * p_tp + p_fp + p_fn)
    rng = np.random.default_rng(7)
    hits = []
    for r, (tp, fn, fp, tn) in enumerate(rng.multinomial(27, [p_tp, p_fn, p_fp, p_tn], 300)):
        lo, hi = ev.f1_posterior(np.array([[tp, fn], [fp, tn]]), draws=1000, seed=r)[0][0]
        hits.append(lo <= true_f1 <= hi)
    assert 0.9 <= np.mean(hits) <= 0.995


def test_paired_best_separates_a_constant_shift_and_ties_noise(rng):
    base = rng.uniform(0.0, 1.0, 50)
    # B is A + 0.1 on every image: the paired difference is 0.1 in every resample.
    r = ev.paired_best({"a": base, "b": base + 0.1}, lower_is_better=True)
    assert r["best"] == "a" and r["separated"] and r["tied"] == ["a"] and r["n"] == 50
    assert r["difference_ci95"]["b"] == pytest.approx([0.1, 0.1])
    # Higher is better: the same data makes b the separated best.
    r = ev.paired_best({"a": base, "b": base + 0.1}, lower_is_better=False)
    assert r["best"] == "b" and r["tied"] == ["b"]
    # Two independent draws of one distribution: not separated, both in the tied group.
    r = ev.paired_best({"a": rng.uniform(size=30), "b": rng.uniform(size=30)}, True)
    assert not r["separated"] and set(r["tied"]) == {"a", "b"}
    assert ev.paired_best({"a": base}, True) is None
    assert ev.paired_best({"a": [np.nan], "b": [1.0]}, True) is None


def test_paired_best_sees_what_overlapping_intervals_hide(rng):
    """Images differ far more than methods do: the methods' own intervals overlap, yet B is
    worse than A on every image by 0.01 to 0.03, and the paired test says so."""
    a = rng.uniform(0.0, 1.0, 60)
    b = a + rng.uniform(0.01, 0.03, 60)
    ia, ib = ev.bootstrap_mean(a), ev.bootstrap_mean(b)
    assert ib[0] < ia[1]  # the intervals overlap
    r = ev.paired_best({"a": a, "b": b}, lower_is_better=True)
    assert r["separated"] and r["best"] == "a"


def test_paired_best_resamples_as_documented():
    v = {"x": np.array([0.1, 0.5, 0.2, 0.9]), "y": np.array([0.3, 0.4, 0.6, 0.8]),
         "z": np.array([0.9, 0.9, 0.8, 0.7])}
    r = ev.paired_best(v, lower_is_better=False, absolute=True, resamples=150, seed=2)
    # By hand: |mean| per resample, worse-signed difference to the best (z) for x and y.
    rng = np.random.default_rng(2)
    idx = np.concatenate([rng.integers(0, 4, size=(min(100, 150 - s), 4))
                          for s in range(0, 150, 100)])
    best = np.abs(v["z"][idx].mean(1))
    for m in ("x", "y"):
        d = best - np.abs(v[m][idx].mean(1))
        assert r["difference_ci95"][m] == pytest.approx(list(np.percentile(d, [2.5, 97.5])))
    assert r["best"] == "z"


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


def test_the_one_class_warning_follows_a_binary_threshold():
    """Twenty images, half of each class, all at (0.6, 0.4): the highest probability predicts
    class a for every one (a warning); at evaluate.threshold 0.5 class a is still predicted
    (0.4 < 0.5), at 0.3 every image is class b: still one class, now b."""
    from reportgen.evaluate import model_warnings

    probs = {"test": np.tile([0.6, 0.4], (20, 1))}
    labels = {"test": np.arange(20) % 2}
    assert "'a'" in model_warnings(probs, labels, ["a", "b"], {})[0]
    assert "'b'" in model_warnings(probs, labels, ["a", "b"], {}, threshold=0.3)[0]
    probs = {"test": np.tile([0.6, 0.4], (20, 1))}
    probs["test"][::2] = [0.9, 0.1]  # class a images: 0.1 for b; class b images: 0.4
    assert model_warnings(probs, labels, ["a", "b"], {}, threshold=0.3) == []  # all right
