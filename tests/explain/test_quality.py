"""Explanation quality metrics against hand computations."""

from __future__ import annotations

import numpy as np
import pytest

from reportgen.explain.quality import (deletion_insertion, energy_in_box, map_change,
                                       pointing_game, randomized_head_copy, spearman)


def linear_model(keras, w):
    """logit0 = w . x (flattened 2x2x1 image), logit1 = 0."""
    inp = keras.Input((2, 2, 1))
    dense = keras.layers.Dense(2, name="d")
    out = dense(keras.layers.Flatten()(inp))
    model = keras.Model(inp, out)
    dense.set_weights([np.stack([w, np.zeros(4)], axis=1).astype(np.float32),
                       np.zeros(2, np.float32)])
    return model


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def test_deletion_insertion_auc_by_hand(keras):
    w = np.array([3.0, 2.0, 1.0, 0.0])
    model = linear_model(keras, w)
    x = np.ones((1, 2, 2, 1), np.float32)
    good = w.reshape(1, 2, 2)          # ranks pixels by their true effect
    bad = -good
    frac = np.linspace(0, 1, 5)
    # deletion of the top k pixels (good order 3, 2, 1, 0): remaining logits 6, 3, 1, 0, 0
    del_good = np.trapezoid(sigmoid(np.array([6, 3, 1, 0, 0])), frac)
    ins_good = np.trapezoid(sigmoid(np.array([0, 3, 5, 6, 6])), frac)
    del_bad = np.trapezoid(sigmoid(np.array([6, 6, 5, 3, 0])), frac)
    ins_bad = np.trapezoid(sigmoid(np.array([0, 0, 1, 3, 6])), frac)
    d, i = deletion_insertion(model, x, good, [0], steps=4, batch_size=3)
    assert d[0] == pytest.approx(del_good, abs=1e-6) and i[0] == pytest.approx(ins_good, abs=1e-6)
    d, i = deletion_insertion(model, x, bad, [0], steps=4, batch_size=2)
    assert d[0] == pytest.approx(del_bad, abs=1e-6) and i[0] == pytest.approx(ins_bad, abs=1e-6)
    assert del_good < del_bad and ins_good > ins_bad


def test_energy_and_pointing_by_hand():
    maps = np.zeros((3, 4, 4))
    maps[0, 1, 1] = 3.0   # inside box [0, 0, 2, 2]
    maps[0, 3, 3] = 1.0   # outside
    maps[1, 3, 3] = 5.0
    boxes = np.array([[0, 0, 2, 2], [0, 0, 2, 2], [np.nan] * 4])
    np.testing.assert_allclose(energy_in_box(maps, boxes)[:2], [0.75, 0.0])
    assert np.isnan(energy_in_box(maps, boxes)[2])
    p = pointing_game(maps, boxes)
    assert p[0] == 1.0 and p[1] == 0.0 and np.isnan(p[2])


def test_spearman_by_hand():
    assert spearman([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 1, 2], [1, 2, 3]) == pytest.approx(np.sqrt(3) / 2)  # average ranks
    assert np.isnan(spearman([1, 1], [1, 2]))
    np.testing.assert_allclose(map_change(np.array([[1, 2, 3]]), np.array([[3, 2, 1]])), [-1.0])


def test_randomized_head_copy_leaves_model_alone(keras):
    inp = keras.Input((4, 4, 3))
    x = keras.layers.Conv2D(2, 3, name="c")(inp)
    out = keras.layers.Dense(3, name="head")(keras.layers.Flatten()(x))
    model = keras.Model(inp, out)
    before = [w.copy() for w in model.get_weights()]
    rnd = randomized_head_copy(model, seed=1)
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(rnd.get_layer("c").get_weights()[0],
                                  model.get_layer("c").get_weights()[0])
    assert not np.allclose(rnd.get_layer("head").get_weights()[0],
                           model.get_layer("head").get_weights()[0])
