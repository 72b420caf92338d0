"""Confident learning against thresholds worked out by hand, and on planted label flips."""

from __future__ import annotations

import numpy as np
import pytest

from reportgen.audit.label_errors import class_thresholds, label_issues

# 5 images, 2 classes; labels 0 0 0 1 1.
P = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.3, 0.7], [0.2, 0.8]])
Y = np.array([0, 0, 0, 1, 1])


def test_thresholds_are_the_mean_probability_of_each_class_over_its_labelled_images():
    # t_0 = (0.9 + 0.8 + 0.1) / 3 = 0.6; t_1 = (0.7 + 0.8) / 2 = 0.75.
    np.testing.assert_allclose(class_thresholds(P, Y), [0.6, 0.75])
    # A class without labelled images has no threshold (NaN), and is never reached.
    t = class_thresholds(P, np.array([0, 0, 0, 0, 0]))
    assert np.isnan(t[1])
    assert label_issues(P, np.zeros(5, int)).index.tolist() == []


def test_off_diagonal_of_the_confident_joint_ranked_by_self_confidence():
    # Image 2 (labelled 0): p_1 = 0.9 >= 0.75 -> class 1, an issue (self-confidence 0.1).
    # Image 3 (labelled 1): p_0 = 0.3 < 0.6, p_1 = 0.7 < 0.75: in no class, not an issue.
    # Image 0, 1: their own class only. Image 4: p_1 = 0.8 >= 0.75, its own.
    found = label_issues(P, Y)
    assert found.index.tolist() == [2]
    assert found.suggested.tolist() == [1]
    np.testing.assert_allclose(found.self_confidence, [0.1])
    # Ranking: lowest self-confidence first, ties by index; image 3 (labelled 0, p_0 = 0.9 >=
    # 0.55, p_1 = 0.1 < 0.5) and image 4 (p_1 = 0.9) stay in their own class.
    p = np.array([[0.7, 0.3], [0.7, 0.3], [0.2, 0.8], [0.9, 0.1], [0.1, 0.9]])
    y = np.array([1, 1, 0, 0, 1])
    # t_0 = (0.2 + 0.9) / 2 = 0.55, t_1 = (0.3 + 0.3 + 0.9) / 3 = 0.5.
    found = label_issues(p, y)
    assert found.index.tolist() == [2, 0, 1]  # self-confidence 0.2, then 0.3, 0.3
    assert found.suggested.tolist() == [1, 0, 0]


def planted(seed: int, n: int = 1000, classes: int = 5, flips: int = 50):
    """Probabilities of a model right about every image: p of the true class uniform in
    [0.7, 1], the rest shared evenly (each at most 0.3 / 4 = 0.075); ``flips`` labels moved to
    another class."""
    rng = np.random.default_rng(seed)
    true = rng.integers(0, classes, n)
    top = rng.uniform(0.7, 1.0, n)
    p = np.repeat(((1 - top) / (classes - 1))[:, None], classes, axis=1)
    p[np.arange(n), true] = top
    given = true.copy()
    flipped = rng.choice(n, flips, replace=False)
    given[flipped] = (true[flipped] + rng.integers(1, classes, flips)) % classes
    return p, given, flipped


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_planted_label_flips_are_found_without_false_alarms(seed):
    """Precision is 1 by construction: a correctly labelled image gives every other class at
    most 0.075, and every threshold is at least 0.95 x 0.7 (95 % of a class's labels are
    right, with p >= 0.7) > 0.075. A flip is found when p of its true class reaches that
    class's threshold, about 0.95 x 0.85 + 0.05 x 0.04 = 0.81; p is uniform on [0.7, 1], so
    the chance is about (1 - 0.81) / 0.3 = 0.63; over 50 flips (binomial sd 0.07) recall is
    between 0.45 and 0.81 (2.5 sd), and not 1, which a threshold at the lowest p (0.7) gives."""
    p, given, flipped = planted(seed)
    found = set(label_issues(p, given).index.tolist())
    hits = len(found & set(flipped.tolist()))
    assert found and hits / len(found) == 1.0
    assert 0.45 <= hits / len(flipped) <= 0.81


def test_agrees_with_cleanlab_where_installed():
    """cleanlab (AGPL, never a dependency) as an oracle: its confident-learning filter flags
    the same images."""
    filt = pytest.importorskip("cleanlab.filter")
    p, given, _ = planted(0)
    theirs = filt.find_label_issues(given, p, filter_by="confident_learning",
                                    return_indices_ranked_by="self_confidence")
    ours = label_issues(p, given).index
    assert set(ours.tolist()) == set(np.asarray(theirs).tolist())
