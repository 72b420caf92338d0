"""Slices: Fisher's exact test, Benjamini–Hochberg, metadata slicing and the weak-slice search,
on arrays (known answers by hand, scipy where installed, planted and clean data)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reportgen.data.properties import image_properties
from reportgen.evaluate import wilson_interval
from reportgen.evaluate.slices import (EMPTY, MIN_SLICE, benjamini_hochberg, column_groups,
                                       fisher_exact, make_slice, metadata_slices,
                                       property_rules, quartile_bins, slice_report, weak_slices)


def _hypergeometric_p(a, b, c, d):
    """Fisher's two-sided p by exact integer arithmetic (an independent formula)."""
    n1, k, n = a + b, a + c, a + b + c + d
    pmf = {x: math.comb(k, x) * math.comb(n - k, n1 - x) for x in range(0, min(n1, k) + 1)
           if n1 - x <= n - k}
    obs = pmf[a]
    return sum(v for v in pmf.values() if v <= obs) / math.comb(n, n1)


def test_fisher_by_hand():
    # [[3, 1], [1, 3]]: tables with a = 0..4 have weights 1, 16, 36, 16, 1 of 70; two-sided:
    # every table as unlikely as a = 3 (16) or less: 1 + 16 + 16 + 1 = 34 of 70.
    assert fisher_exact(3, 1, 1, 3) == pytest.approx(34 / 70)
    assert fisher_exact(4, 0, 0, 4) == pytest.approx(2 / 70)
    assert fisher_exact(0, 0, 3, 4) == 1.0  # an empty row: nothing to compare


@pytest.mark.parametrize("seed", range(5))
def test_fisher_equals_exact_integer_arithmetic(seed):
    rng = np.random.default_rng(seed)
    for a, b, c, d in rng.integers(0, 30, (20, 4)):
        assert fisher_exact(a, b, c, d) == pytest.approx(_hypergeometric_p(a, b, c, d),
                                                         rel=1e-9, abs=1e-300)


def test_fisher_equals_scipy_on_large_tables():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(3)
    for a, b, c, d in [(300, 200, 4000, 1000), (5, 95, 400, 500)] + \
            [tuple(r) for r in rng.integers(0, 400, (10, 4))]:
        assert fisher_exact(a, b, c, d) == pytest.approx(
            stats.fisher_exact([[a, b], [c, d]]).pvalue, rel=1e-6)


def test_benjamini_hochberg_by_hand():
    # Sorted 0.01, 0.03, 0.04, 0.20 times 4 / rank: 0.04, 0.06, 0.0533, 0.20; the running
    # minimum from the top: 0.04, 0.0533, 0.0533, 0.20, returned in the input order.
    q = benjamini_hochberg(np.array([0.01, 0.04, 0.03, 0.20]))
    np.testing.assert_allclose(q, [0.04, 0.16 / 3, 0.16 / 3, 0.20])
    assert benjamini_hochberg(np.array([0.9, 0.95])).tolist() == [0.95, 0.95]
    assert benjamini_hochberg(np.array([])).shape == (0,)


def test_benjamini_hochberg_equals_scipy():
    stats = pytest.importorskip("scipy.stats")
    p = np.random.default_rng(0).random(60) ** 3
    np.testing.assert_allclose(benjamini_hochberg(p), stats.false_discovery_control(p))


def test_a_slice_uses_the_wilson_interval_and_the_rest():
    correct = np.array([True] * 30 + [False] * 10 + [True] * 55 + [False] * 5)
    mask = np.arange(100) < 40
    s = make_slice(correct, mask, "camera", "phone", "camera = phone")
    assert (s.n, s.correct, s.rest_n, s.rest_correct) == (40, 30, 60, 55)
    assert s.ci95 == wilson_interval(30, 40)
    assert s.p_value == pytest.approx(fisher_exact(30, 10, 55, 5))
    small = make_slice(correct, np.arange(100) < MIN_SLICE - 1, "c", "v", "c = v")
    assert not small.scored and small.p_adjusted is None and not small.flagged()


def test_sentence_says_the_slice_its_interval_and_the_rest():
    s = make_slice(np.array([True] * 71 + [False] * 29 + [True] * 94 + [False] * 6),
                   np.arange(200) < 100, "camera", "phone", "camera = phone")
    s.p_adjusted = 0.001
    lo, hi = wilson_interval(71, 100)
    assert s.sentence() == (f"camera = phone: accuracy 71 % [{100 * lo:.0f}, {100 * hi:.0f}] "
                            "against 94 % (n = 100, adjusted p = 0.001)")
    assert s.flagged()


def test_columns_are_categories_bins_or_not_sliced():
    kind, groups = column_groups(["phone", "dslr", "", "phone"])
    assert kind == "categories"
    assert [(v, m.tolist()) for v, m in groups] == [
        ("dslr", [False, True, False, False]), ("phone", [True, False, False, True]),
        (EMPTY, [False, False, True, False])]
    kind, groups = column_groups([str(v) for v in range(1, 9)])  # 8 numbers: quartiles
    assert kind == "quartile bins"
    assert [v for v, _ in groups] == ["< 2.75", "[2.75, 4.5)", "[4.5, 6.25)", "≥ 6.25"]
    assert [int(m.sum()) for _, m in groups] == [2, 2, 2, 2]
    kind, groups = column_groups(["100", "50", "50", "200"])  # few levels: categories
    assert kind == "categories" and [v for v, _ in groups] == ["50", "100", "200"]
    kind, groups = column_groups([f"id{i}" for i in range(40)])
    assert kind.startswith("not sliced: 40 distinct values") and groups == []


def test_quartile_bins_cover_every_value_once():
    x = np.random.default_rng(0).normal(size=97)
    bins = quartile_bins(x)
    assert np.sum([m for _, m in bins], axis=0).tolist() == [1] * 97


def test_metadata_slices_flag_the_worse_camera_only():
    rng = np.random.default_rng(0)
    camera = np.array(["phone"] * 150 + ["dslr"] * 250 + ["scanner"] * 10)
    correct = np.where(camera == "phone", rng.random(410) < 0.7, rng.random(410) < 0.95)
    result = metadata_slices({"camera": list(camera), "site": ["a", "b"] * 205},
                             correct)
    by_rule = {s.rule: s for s in result.slices}
    assert by_rule["camera = phone"].flagged()
    assert not by_rule["camera = dslr"].flagged()  # better, not worse
    assert not by_rule["camera = scanner"].scored  # 10 images: listed, not scored
    assert not by_rule["site = a"].flagged() and not by_rule["site = b"].flagged()
    # Benjamini–Hochberg over all 4 scored slices of both columns together.
    scored = [s for s in result.slices if s.scored]
    np.testing.assert_allclose([s.p_adjusted for s in scored],
                               benjamini_hochberg(np.array([s.p_value for s in scored])))


def test_property_rules_apply_their_thresholds_as_written():
    x = np.random.default_rng(0).random(200)
    rules = dict(property_rules("brightness", x))
    assert len(rules) == 11
    rule = next(r for r in rules if r.startswith("brightness < "))
    t = float(rule.split("< ")[1])
    assert rules[rule].tolist() == (x < t).tolist()
    assert property_rules("width", np.full(50, 64.0)) == []  # nothing varies


def _images_with_brightness(levels: np.ndarray, rng) -> np.ndarray:
    noise = rng.integers(-20, 21, (len(levels), 16, 16, 3))
    return np.clip(levels[:, None, None, None] + noise, 0, 255).astype(np.uint8)


def test_a_planted_weak_slice_of_dark_images_is_found():
    rng = np.random.default_rng(7)
    levels = rng.uniform(20, 235, 400)
    props = image_properties(_images_with_brightness(levels, rng)).known()
    dark = props["brightness"] < 0.3
    correct = np.where(dark, rng.random(400) < 0.5, rng.random(400) < 0.93)
    found = weak_slices(props, correct).found()
    assert found and found[0].column == "brightness"
    assert found[0].rule.startswith("brightness < ")
    assert 0.15 <= float(found[0].rule.split("< ")[1]) <= 0.45
    assert found[0].accuracy < 0.7 < found[0].rest_accuracy


@pytest.mark.parametrize("seed", range(5))
def test_clean_data_raises_no_false_alarm(seed):
    """Errors uniform over the images: no weak slice, whatever the property."""
    rng = np.random.default_rng(100 + seed)
    props = image_properties(_images_with_brightness(rng.uniform(20, 235, 300), rng)).known()
    props["width"] = rng.integers(100, 400, 300).astype(float)
    correct = rng.random(300) < 0.85
    search = weak_slices(props, correct)
    assert len(search.tested) > 30  # many rules tried ...
    assert search.found() == []  # ... and none flagged


def test_the_false_alarm_rate_over_many_clean_data_sets_is_within_the_rate():
    """Benjamini–Hochberg over every candidate keeps the chance of any flag on clean data at
    about 5 %: of 60 clean test sets at most 6 (10 %) may raise one."""
    alarms = 0
    for seed in range(60):
        rng = np.random.default_rng(seed)
        props = {k: rng.random(400) for k in ("brightness", "contrast", "sharpness")}
        alarms += bool(weak_slices(props, rng.random(400) < 0.8).found())
    assert alarms <= 6


def test_slice_report_json_has_the_issues_keys():
    rng = np.random.default_rng(0)
    correct = rng.random(120) < 0.9
    report = slice_report(correct, {"brightness": rng.random(120)},
                          {"camera": ["a", "b", "c"] * 40}, source="meta.csv")
    data = report.to_json()
    assert set(data["slices"][0]) >= {"column", "value", "n", "accuracy", "ci95",
                                      "p_adjusted", "flagged"}
    assert [s["value"] for s in data["slices"]] == ["a", "b", "c"]
    assert data["weak_slices"] == []
    search = data["slice_search"]
    assert search["metadata"] == "meta.csv" and search["weak_candidates_tested"] > 0
    assert report.accuracy == pytest.approx(correct.mean())


def test_each_slice_names_its_most_common_class():
    labels = np.array([0] * 30 + [1] * 10 + [1] * 60)
    camera = ["phone"] * 40 + ["dslr"] * 60
    report = slice_report(np.ones(100, bool), {}, {"camera": camera},
                          classes=(labels, ["cat", "dog"]))
    by_value = {s.value: s for s in report.metadata.slices}
    assert by_value["phone"].top_class == ("cat", 0.75)
    assert by_value["dslr"].as_dict()["top_class"] == {"name": "dog", "share": 1.0}
