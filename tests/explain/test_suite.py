"""The test-set pass of the report: one GradCAM pass also gives the most active units."""

from __future__ import annotations

import numpy as np

from reportgen.config import Config
from reportgen.data.folder import Split
from reportgen.explain import suite


def test_top_units_from_the_gradcam_pass_equal_a_separate_pass(keras, rng, monkeypatch):
    inp = keras.Input((16, 16, 3))
    h = keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu", name="c1")(inp)
    h = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="c2")(h)
    out = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(h))
    model = keras.Model(inp, out)
    n = 23
    split = Split(images=rng.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8),
                  labels=rng.integers(0, 3, n), paths=[f"{i}.png" for i in range(n)],
                  boxes=np.full((n, 4), np.nan, np.float32))
    monkeypatch.setattr(suite, "CHUNK", 5)  # several chunks
    cfg = Config()
    cfg.explain.receptive_units = 6
    prep = lambda im: im.astype(np.float32) / 255.0  # noqa: E731
    probs = np.full((n, 3), 1 / 3)
    ex = suite.explainer_for(model, cfg)
    result = suite.explain_test_set(ex, split, prep, probs, cfg.explain.gallery_size)
    assert result.layer == "c2" and result.peaks is not None
    fused = suite._top_units(ex, split, prep, "c2", 6, result.peaks)
    separate = suite._top_units(ex, split, prep, "c2", 6, None)
    assert fused == separate and len(fused.units) == 6
    acts = np.asarray(keras.Model(inp, model.get_layer("c2").output)(prep(split.images)))
    best = fused.units[0]
    assert best.activation == np.float32(acts.max())
    assert acts[best.index, best.i, best.j, best.channel] == np.float32(acts.max())


def test_the_true_class_maps_of_the_errors_come_from_the_same_pass(keras, rng, monkeypatch):
    """The test-set pass gives, for every misclassified image, the GradCAM of its true class:
    equal to GradCAM by hand (a GradientTape on the layer's output, alpha the spatial mean of
    the gradient, ReLU, min-max per image), at the layer's resolution."""
    import tensorflow as tf

    inp = keras.Input((12, 12, 3))
    h = keras.layers.Conv2D(5, 3, padding="same", activation="relu", name="conv")(inp)
    out = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(h))
    model = keras.Model(inp, out)
    n = 11
    labels = np.arange(n) % 3
    split = Split(images=rng.integers(0, 256, (n, 12, 12, 3), dtype=np.uint8), labels=labels,
                  paths=[f"{i}.png" for i in range(n)], boxes=np.full((n, 4), np.nan, np.float32))
    probs = np.tile([0.6, 0.3, 0.1], (n, 1))  # every image predicted class 0
    monkeypatch.setattr(suite, "CHUNK", 4)
    prep = lambda im: im.astype(np.float32) / 255.0  # noqa: E731
    ex = suite.explainer_for(model, Config())
    result = suite.explain_test_set(ex, split, prep, probs, 4)
    assert sorted(result.true_maps) == [i for i in range(n) if labels[i] != 0]

    split_model = keras.Model(inp, [h, out])
    x = tf.constant(prep(split.images))

    def by_hand(classes):
        with tf.GradientTape() as tape:
            acts, logits = split_model(x)
            score = tf.gather(logits, classes, axis=1, batch_dims=1)
        grads = tape.gradient(score, acts).numpy()
        cam = np.maximum((acts.numpy() * grads.mean(axis=(1, 2))[:, None, None]).sum(-1), 0)
        lo = cam.min(axis=(1, 2), keepdims=True)
        span = cam.max(axis=(1, 2), keepdims=True) - lo
        return np.where(span > 1e-12, (cam - lo) / np.where(span > 0, span, 1), 0)

    true = by_hand(tf.constant(labels, tf.int32))
    for i, m in result.true_maps.items():
        np.testing.assert_allclose(m.astype(np.float32), true[i], atol=2e-3)
    predicted = np.asarray(model(x)).argmax(1).astype(np.int32)
    np.testing.assert_allclose(result.test_maps.astype(np.float32),
                               by_hand(tf.constant(predicted)), atol=2e-3)


def test_the_kept_gallery_maps_hold_only_themselves(keras, rng, monkeypatch):
    """The gallery maps kept from the test-set pass are their own arrays: a view of a chunk's
    maps would keep the whole chunk (CHUNK x H x W float32) alive, and memory would grow with
    the test set."""
    inp = keras.Input((12, 12, 3))
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inp)
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(h)))
    n = 12
    split = Split(images=rng.integers(0, 256, (n, 12, 12, 3), dtype=np.uint8),
                  labels=np.arange(n) % 2, paths=[f"{i}.png" for i in range(n)],
                  boxes=np.full((n, 4), np.nan, np.float32))
    probs = np.tile([0.7, 0.3], (n, 1))
    monkeypatch.setattr(suite, "CHUNK", 6)
    prep = lambda im: im.astype(np.float32) / 255.0  # noqa: E731
    ex = suite.explainer_for(model, Config())
    result = suite.explain_test_set(ex, split, prep, probs, 2)
    kept = result.maps["gradcam"]
    assert len(kept) >= 4
    assert all(m.base is None and m.nbytes == 12 * 12 * 4 for m in kept.values())
