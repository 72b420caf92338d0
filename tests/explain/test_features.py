"""Feature maps, learned filters, filter patterns, deep dream and ScoreCAM."""

from __future__ import annotations

import numpy as np
import pytest

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


def test_depthwise_and_separable_layers_show_their_depthwise_kernels(keras):
    from reportgen.explain.features import kernel_kind

    inp = keras.Input((16, 16, 3))
    x = keras.layers.SeparableConv2D(4, 3, depth_multiplier=2, name="sep")(inp)
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=3, name="dw")(x)
    x = keras.layers.Conv2D(24, 3, groups=6, name="grouped")(x)
    x = keras.layers.Conv2D(24, 3, groups=24, name="group_dw")(x)  # ConvNeXt's depthwise
    x = keras.layers.Conv2DTranspose(5, 3, name="up")(x)
    x = keras.layers.BatchNormalization(name="bn")(x)
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x)))
    sep, dw = model.get_layer("sep"), model.get_layer("dw")
    for name, depthwise, m, kind in (("sep", sep.depthwise_kernel, 2, "separable"),
                                     ("dw", dw.kernel, 3, "depthwise")):
        got = learned_filters(model, name)
        k = np.asarray(depthwise)
        assert got.shape == (3, 3, 1, k.shape[2] * m)
        assert kernel_kind(model.get_layer(name)) == kind
        for c in range(k.shape[2]):  # output channel c * m + j is input channel c's filter j
            for j in range(m):
                np.testing.assert_array_equal(got[:, :, 0, c * m + j], k[:, :, c, j])
    up = np.asarray(model.get_layer("up").kernel)  # (kh, kw, out 5, in 24)
    np.testing.assert_array_equal(learned_filters(model, "up"), up.transpose(0, 1, 3, 2))
    assert kernel_kind(model.get_layer("grouped")) == "conv"  # 2 input channels a group
    assert kernel_kind(model.get_layer("group_dw")) == "depthwise"  # one: filter f reads f
    np.testing.assert_array_equal(learned_filters(model, "group_dw"),
                                  np.asarray(model.get_layer("group_dw").kernel))
    assert kernel_kind(model.get_layer("bn")) is None
    with pytest.raises(ValueError, match="'bn' has no 2-D convolution kernel"):
        learned_filters(model, "bn")


def test_the_layers_views_of_a_separable_model_show_filters_and_never_raise(isolated):
    got = isolated("""
        from reportgen.config import Config
        from reportgen.data.folder import Split
        from reportgen.explain import suite
        L = keras.layers
        inp = keras.Input((32, 32, 3))
        x = L.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="stem")(inp)
        for k in range(3):  # Xception-like: SeparableConv2D -> BN -> ReLU
            x = L.SeparableConv2D(8, 3, padding="same", name=f"sep{k}")(x)
            x = L.ReLU(name=f"relu{k}")(L.BatchNormalization(name=f"bn{k}")(x))
        x = L.MaxPooling2D(name="pool")(x)
        model = keras.Model(inp, L.Dense(3)(L.GlobalAveragePooling2D()(x)))
        rng = np.random.default_rng(0)
        n = 6
        split = Split(images=rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
                      labels=np.arange(n) % 3, paths=[f"{i}.png" for i in range(n)],
                      boxes=np.full((n, 4), np.nan, np.float32))
        cfg = Config()
        e = cfg.explain
        e.pattern_filters, e.pattern_steps, e.dream_images, e.dream_octaves = 2, 3, 1, 1
        e.receptive_units = 2
        prep = lambda im: im.astype(np.float32) / 255.0
        ex = suite.explainer_for(model, cfg)
        result = suite.explain_test_set(ex, split, prep, np.full((n, 3), 1 / 3), 4)
        suite.explain_layers(ex, split, prep, cfg, result)
        v = result.layers
        print(json.dumps({"layer": result.layer, "kinds": v.filter_kinds,
                          "shapes": {p: list(k.shape) for p, k in v.filters.items()},
                          "patterns": sorted(v.patterns), "rf": v.rf.layer,
                          "dreams": list(v.dreams.images.shape)}))
    """)
    assert got["layer"] == "relu2"  # the last conv's output after BN and ReLU, not the pool
    assert got["kinds"] == {"stem": "conv", "sep1": "separable"}
    assert got["shapes"] == {"stem": [3, 3, 3, 8], "sep1": [3, 3, 1, 8]}
    assert got["patterns"] == ["sep1", "sep2", "stem"] and got["rf"]  # first, middle, last
    assert got["dreams"] == [1, 32, 32, 3]


def test_a_mixed_precision_model_gets_every_layers_view_in_float32(isolated):
    got = isolated("""
        from reportgen.explain import Explainer, features
        keras.mixed_precision.set_global_policy("mixed_float16")
        inp = keras.Input((16, 16, 3))
        x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c1")(inp)
        x = keras.layers.Conv2D(5, 3, padding="same", activation="relu", name="c2")(x)
        x = keras.layers.GlobalAveragePooling2D()(x)
        out = keras.layers.Dense(3, activation="softmax", dtype="float32")(x)
        model = keras.Model(inp, out)
        keras.mixed_precision.set_global_policy("float32")
        ex = Explainer(model)
        x = np.random.default_rng(0).uniform(0.2, 0.8, (2, 16, 16, 3)).astype(np.float32)
        fm = features.feature_maps_of(ex, x, ["c2"])["c2"]
        kw = {"value_range": (0.0, 1.0), "seed": 5}
        start = features.filter_patterns_of(ex, {"c2": range(4)}, steps=0, **kw)["c2"]
        pats = features.filter_patterns_of(ex, {"c2": range(4)}, steps=20, **kw)["c2"]
        mean = lambda v, f: float(features.feature_maps_of(ex, v, ["c2"])["c2"][..., f].mean())
        dream = features.deep_dream_of(ex, x, ["c2"], octaves=2, steps=5, value_range=(0, 1))
        energy = lambda v: float((features.feature_maps_of(ex, v, ["c2"])["c2"] ** 2).mean())
        cam = ex.run("gradcam", x)
        print(json.dumps({
            "activation_dtype": str(model.get_layer("c2").compute_dtype),
            "dtypes": [str(a.dtype) for a in (fm, pats, dream, cam)],
            "raised": [mean(pats[f:f + 1], f) - mean(start[f:f + 1], f) for f in range(4)],
            "dream": [energy(x), energy(dream)], "finite": bool(np.isfinite(cam).all())}))
    """)
    assert got["activation_dtype"] == "float16"  # the model really computes in half
    assert got["dtypes"] == ["float32"] * 4 and got["finite"]
    assert min(got["raised"]) >= -1e-3 and sum(r > 1e-3 for r in got["raised"]) >= 2
    assert got["dream"][1] > got["dream"][0]
