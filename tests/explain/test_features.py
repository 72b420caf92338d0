"""Feature maps, learned filters, filter patterns, deep dream and ScoreCAM."""

from __future__ import annotations

import numpy as np

from reportgen.explain import Explainer, score_cam
from reportgen.explain.features import (deep_dream, feature_maps, filter_patterns,
                                        filter_patterns_of,
                                        learned_filters)


def nested_model(keras):
    inner_in = keras.Input((8, 8, 3))
    a = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c1")(inner_in)
    b = keras.layers.Conv2D(5, 3, padding="same", activation="relu", name="c2")(a)
    inner = keras.Model(inner_in, b, name="base.1")
    inp = keras.Input((8, 8, 3))
    g = keras.layers.GlobalAveragePooling2D()(inner(inp))
    return keras.Model(inp, keras.layers.Dense(3, activation="softmax")(g)), inner


def test_feature_maps_match_submodels(keras, rng):
    model, inner = nested_model(keras)
    x = rng.uniform(0, 1, (5, 8, 8, 3)).astype(np.float32)
    got = feature_maps(model, x, ["base.1/c1", "base.1/c2"], batch_size=2)
    c1 = keras.Model(inner.inputs, inner.get_layer("c1").output)
    np.testing.assert_allclose(got["base.1/c1"], np.asarray(c1(x)), atol=1e-6)
    np.testing.assert_allclose(got["base.1/c2"], np.asarray(inner(x)), atol=1e-6)


def test_learned_filters_read_from_layer(keras):
    model, inner = nested_model(keras)
    np.testing.assert_array_equal(learned_filters(model, "base.1/c1"),
                                  inner.get_layer("c1").get_weights()[0])


def _mean_activation(keras, model, layer, x, f):
    return np.asarray(feature_maps(model, x, [layer])[layer])[..., f].mean(axis=(1, 2))


def test_filter_patterns_raise_their_filter(keras):
    keras.utils.set_random_seed(3)
    model, _ = nested_model(keras)
    kw = {"value_range": (0.0, 1.0), "seed": 5}
    start = filter_patterns(model, "base.1/c2", [0, 1, 2, 3], steps=0, **kw)
    pats = filter_patterns(model, "base.1/c2", [0, 1, 2, 3], steps=20, **kw)
    assert pats.shape == (4, 8, 8, 3) and pats.dtype == np.float32
    assert pats.min() >= 0 and pats.max() <= 1
    raised = 0
    for f in range(4):
        after = _mean_activation(keras, model, "base.1/c2", pats[f:f + 1], f)[0]
        before = _mean_activation(keras, model, "base.1/c2", start[f:f + 1], f)[0]
        assert after >= before - 1e-6
        raised += after > before + 1e-3
    assert raised >= 2  # live filters are driven up (a dead ReLU filter cannot be)


def test_deep_dream_amplifies_layer(keras, rng):
    model, _ = nested_model(keras)
    x = rng.uniform(0.2, 0.8, (2, 8, 8, 3)).astype(np.float32)
    x0 = x.copy()
    out = deep_dream(model, x, ["base.1/c2"], octaves=2, steps=5, value_range=(0.0, 1.0))
    np.testing.assert_array_equal(x, x0)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1

    def energy(v):
        return (np.asarray(feature_maps(model, v, ["base.1/c2"])["base.1/c2"]) ** 2).mean()

    assert energy(out) > energy(x)


def test_scorecam_by_hand(keras, rng):
    inp = keras.Input((6, 6, 3))
    a = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="conv")(inp)
    out = keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(a))
    model = keras.Model(inp, out)
    x = rng.uniform(0, 1, (2, 6, 6, 3)).astype(np.float32)
    t = np.array([0, 1])
    acts = np.asarray(keras.Model(inp, a)(x))
    want = []
    for i in range(2):
        cam = np.zeros((6, 6))
        for k in range(3):
            m = acts[i, ..., k]
            span = m.max() - m.min()
            mask = (m - m.min()) / span if span > 1e-8 else np.zeros_like(m)
            p = np.asarray(model(x[i:i + 1] * mask[None, :, :, None]))[0, t[i]]
            cam += p * m
        cam = np.maximum(cam, 0)
        span = cam.max() - cam.min()
        want.append((cam - cam.min()) / span if span > 1e-8 else np.zeros_like(cam))
    got = score_cam(model, x, targets=t, layer="conv", batch_size=4)
    np.testing.assert_allclose(got, np.array(want), atol=1e-5)
    # A channel cap keeps only the most active channels and stays finite.
    capped = score_cam(model, x, targets=t, layer="conv", max_channels=1)
    assert np.isfinite(capped).all() and capped.shape == (2, 6, 6)


def test_patterns_of_several_layers_are_independent_images(keras):
    """One batch for two layers gives each layer's images what a run of that layer alone gives
    (no jitter, so both runs start from the same noise and take the same steps)."""
    keras.utils.set_random_seed(3)
    model, _ = nested_model(keras)
    kw = {"value_range": (0.0, 1.0), "seed": 5, "jitter": 0, "steps": 12}
    both = filter_patterns_of(Explainer(model), {"base.1/c2": [0, 1], "base.1/c1": [3]}, **kw)
    alone = filter_patterns(model, "base.1/c2", [0, 1], **kw)
    assert both["base.1/c2"].shape == (2, 8, 8, 3) and both["base.1/c1"].shape == (1, 8, 8, 3)
    np.testing.assert_allclose(both["base.1/c2"], alone, atol=1e-4)
    before = _mean_activation(keras, model, "base.1/c1", np.full((1, 8, 8, 3), 0.5, np.float32),
                              3)[0]
    after = _mean_activation(keras, model, "base.1/c1", both["base.1/c1"], 3)[0]
    assert after > before


def test_filter_patterns_do_not_depend_on_the_batch_size(keras):
    from reportgen.explain.explainer import Explainer
    from reportgen.explain.features import filter_patterns_of

    inp = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c1")(inp)
    h = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="c2")(h)
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.Flatten()(h)))
    filters = {"c1": range(4), "c2": range(3)}
    whole = filter_patterns_of(Explainer(model, batch_size=64), filters, steps=5, seed=3)
    parts = filter_patterns_of(Explainer(model, batch_size=2), filters, steps=5, seed=3)
    for layer in filters:
        np.testing.assert_allclose(parts[layer], whole[layer], rtol=1e-5, atol=1e-4)
