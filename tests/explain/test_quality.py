"""Explanation quality metrics against hand computations."""

from __future__ import annotations

import hashlib

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
    for a, b in zip(model.get_weights(), before, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(rnd.get_layer("c").get_weights()[0],
                                  model.get_layer("c").get_weights()[0])
    assert not np.allclose(rnd.get_layer("head").get_weights()[0],
                           model.get_layer("head").get_weights()[0])


def reference_curves(model, x, maps, targets, steps, baseline):
    """Deletion/insertion probabilities by the definition, one perturbed image at a time."""
    n, h, w, c = x.shape
    out = {"deletion": np.zeros((n, steps + 1)), "insertion": np.zeros((n, steps + 1))}
    for i in range(n):
        order = np.argsort(-maps[i].ravel(), kind="stable")
        for s in range(steps + 1):
            k = int(round(s * h * w / steps))
            top = np.zeros(h * w, bool)
            top[order[:k]] = True
            top = top.reshape(h, w, 1)
            for mode, (put, keep) in (("deletion", (baseline[i], x[i])),
                                      ("insertion", (x[i], baseline[i]))):
                img = np.where(top, put, keep)[None].astype(np.float32)
                logits = np.asarray(model(img), np.float64)[0]
                p = np.exp(logits - logits.max())
                out[mode][i, s] = p[targets[i]] / p.sum()
    frac = np.round(np.linspace(0, h * w, steps + 1)) / (h * w)
    return np.trapezoid(out["deletion"], frac, axis=1), np.trapezoid(out["insertion"], frac,
                                                                     axis=1)


@pytest.mark.parametrize("per_image_baseline", [False, True])
def test_deletion_insertion_matches_definition_on_many_images(keras, rng, per_image_baseline):
    """Several images, classes and groups, a map with ties, and both a shared and a per-image
    baseline: the batched, in-graph version equals the image-by-image definition."""
    inp = keras.Input((4, 5, 2))
    h = keras.layers.Conv2D(3, 3, padding="same", activation="tanh")(inp)
    out = keras.layers.Dense(3)(keras.layers.Flatten()(h))
    model = keras.Model(inp, out)
    x = rng.normal(size=(7, 4, 5, 2)).astype(np.float32)
    maps = rng.integers(0, 4, size=(7, 4, 5)).astype(np.float64)  # many ties
    targets = np.array([0, 1, 2, 0, 1, 2, 0])
    baseline = (rng.normal(size=(7, 4, 5, 2)).astype(np.float32) if per_image_baseline
                else np.full((7, 4, 5, 2), 0.5, np.float32))
    want_d, want_i = reference_curves(model, x, maps, targets, 5, baseline)
    got_d, got_i = deletion_insertion(model, x, maps, targets, steps=5, batch_size=9,
                                      baseline=baseline if per_image_baseline else 0.5)
    np.testing.assert_allclose(got_d, want_d, atol=1e-5)
    np.testing.assert_allclose(got_i, want_i, atol=1e-5)
    logits = np.asarray(model(x), np.float64)
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    again = deletion_insertion(model, x, maps, targets, steps=5, batch_size=9, probs=probs,
                               baseline=baseline if per_image_baseline else 0.5)
    np.testing.assert_allclose(again[0], want_d, atol=1e-5)


def test_tied_fraction_by_hand():
    from reportgen.explain.quality import tied_fraction

    maps = np.array([[[1, 1], [2, 3]], [[0, 0], [0, 0]], [[1, 2], [3, 4]]], np.float32)
    np.testing.assert_allclose(tied_fraction(maps), [0.5, 1.0, 0.0])


def _order_map(order: np.ndarray) -> np.ndarray:
    """A map without ties whose pixels rank in ``order`` (highest first)."""
    m = np.empty(len(order))
    m[order] = np.arange(len(order), 0, -1)
    return m


def test_random_ties_average_the_definition_over_the_seeded_orders(keras, rng):
    """Ties in a random order: each AUC is the mean of the definition's AUC over the orders
    drawn as documented (one key per pixel from the image's own generator, the first draw
    for every image, the further ones for the images with ties only); a map without ties
    keeps its one order."""
    inp = keras.Input((3, 4, 1))
    out = keras.layers.Dense(2)(keras.layers.Flatten()(inp))
    model = keras.Model(inp, out)
    x = rng.normal(size=(3, 3, 4, 1)).astype(np.float32)
    maps = np.stack([rng.integers(0, 3, (3, 4)), rng.integers(0, 2, (3, 4)),
                     rng.normal(size=(3, 4))]).astype(np.float64)  # images 0, 1 have ties
    targets = np.array([0, 1, 0])
    base = np.zeros_like(x)
    flat = maps.reshape(3, -1)
    # One generator per image, seeded from the seed and the SHA-256 of the image's dtype,
    # shape and bytes (its content, not its position).
    draws = [np.random.default_rng([5, int(hashlib.sha256(
        b"<f4(3, 4, 1)" + im.tobytes()).hexdigest()[:16], 16)]) for im in x]
    want_d, want_i = np.zeros(3), np.zeros(3)
    for r in range(4):
        idx = [0, 1, 2] if r == 0 else [0, 1]
        for i in idx:
            order = np.lexsort((draws[i].random(12), -flat[i]))
            d, ins = reference_curves(model, x[i:i + 1], _order_map(order).reshape(1, 3, 4),
                                      targets[i:i + 1], 4, base[i:i + 1])
            want_d[i] += d[0] / (4 if i < 2 else 1)
            want_i[i] += ins[0] / (4 if i < 2 else 1)
    got_d, got_i = deletion_insertion(model, x, maps, targets, steps=4, ties="random",
                                      orders=4, seed=5)
    np.testing.assert_allclose(got_d, want_d, atol=1e-5)
    np.testing.assert_allclose(got_i, want_i, atol=1e-5)
    # Without ties the order is the map's own, whatever the tie rule.
    pos = deletion_insertion(model, x[2:], maps[2:], targets[2:], steps=4)
    np.testing.assert_allclose(got_d[2], pos[0][0], atol=1e-6)
    # A flat map scanned by position is not a flat map scanned at random.
    flat_map = np.zeros((1, 3, 4))
    by_position = deletion_insertion(model, x[:1], flat_map, [0], steps=4)[0][0]
    at_random = deletion_insertion(model, x[:1], flat_map, [0], steps=4, ties="random",
                                   orders=4, seed=5)[0][0]
    assert by_position != pytest.approx(at_random, abs=1e-6)
