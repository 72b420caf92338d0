"""The test-set pass of the report: one GradCAM pass also gives the most active units."""

from __future__ import annotations

import numpy as np
import pytest

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


def test_the_kept_gallery_maps_hold_only_themselves(keras, random_split, monkeypatch):
    """The gallery maps kept from the test-set pass are their own arrays: a view of a chunk's
    maps would keep the whole chunk (CHUNK x H x W float32) alive, and memory would grow with
    the test set."""
    inp = keras.Input((12, 12, 3))
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inp)
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(h)))
    n = 12
    split = random_split(n, 12)
    probs = np.tile([0.7, 0.3], (n, 1))
    monkeypatch.setattr(suite, "CHUNK", 6)
    prep = lambda im: im.astype(np.float32) / 255.0  # noqa: E731
    ex = suite.explainer_for(model, Config())
    result = suite.explain_test_set(ex, split, prep, probs, 2)
    kept = result.maps["gradcam"]
    assert len(kept) >= 4
    assert all(m.base is None and m.nbytes == 12 * 12 * 4 for m in kept.values())


def _layers_model(keras):
    inp = keras.Input((16, 16, 3))
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c1")(inp)
    h = keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu", name="c2")(h)
    h = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="c3")(h)
    return keras.Model(inp, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(h)))


def _layers_run(keras, random_split):
    n = 4
    split = random_split(n, 16)
    cfg = Config()
    for k, v in {"pattern_filters": 2, "pattern_steps": 2, "receptive_units": 2,
                 "dream_images": 1, "dream_octaves": 1}.items():
        setattr(cfg.explain, k, v)
    prep = lambda im: im.astype(np.float32) / 255.0  # noqa: E731
    ex = suite.explainer_for(_layers_model(keras), cfg)
    result = suite.explain_test_set(ex, split, prep, np.full((n, 2), 0.5), 2)
    return ex, split, prep, cfg, result


def test_a_failing_layers_view_leaves_the_other_views_and_is_recorded(keras, random_split,
                                                                      monkeypatch):
    """Learned filters made to fail on purpose (as a SeparableConv2D's did): both its layers
    are recorded, and feature maps, patterns, receptive fields and dreams are all still
    computed."""
    from reportgen.explain import features
    from reportgen.guard import Failure, collecting

    def no_kernel(ex, layer):
        raise ValueError(f"layer {layer!r} has no 2-D convolution kernel")

    monkeypatch.setattr(features, "learned_filters", no_kernel)
    ex, split, prep, cfg, result = _layers_run(keras, random_split)
    with collecting() as failures:
        suite.explain_layers(ex, split, prep, cfg, result)
    assert failures == [Failure("learned filters", p,
                                f"ValueError: layer {p!r} has no 2-D convolution kernel")
                        for p in ("c1", "c2")]
    views = result.layers
    assert views.filters == {}
    assert list(views.feature_maps) == ["c1", "c2", "c3"]
    assert {p: len(v) for p, v in views.patterns.items()} == {"c1": 2, "c2": 2, "c3": 2}
    assert views.rf is not None and len(views.rf.units) == 2
    assert views.dreams is not None and views.dreams.images.shape == (1, 16, 16, 3)


def test_every_layers_view_fails_on_its_own(keras, random_split, monkeypatch):
    """Each view made to fail in turn: exactly that view is missing, under its own name (the
    names the Layers page sorts its notes by), with the layer it was computing; outside a
    build (no collection) the failure propagates. (The receptive-field search runs the
    feature maps of its layer, c2, which is not the explained one: it fails with them.)"""
    from reportgen.explain import features
    from reportgen.explain.results import LAYER_VIEWS
    from reportgen.guard import collecting

    ex, split, prep, cfg, result = _layers_run(keras, random_split)
    targets = {"feature maps": (features, "feature_maps_of"),
               "learned filters": (features, "learned_filters"),
               "filter patterns": (features, "filter_patterns_of"),
               "receptive fields": (suite, "receptive_field"),
               "deep dream": (features, "deep_dream_of")}
    assert tuple(targets) == LAYER_VIEWS
    layers_of = {"feature maps": ["c1", "c2", "c3"], "learned filters": ["c1", "c2"],
                 "filter patterns": ["c1, c2, c3"], "receptive fields": ["c2"],
                 "deep dream": ["c2, c3"]}

    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    for view, (module, name) in targets.items():
        with monkeypatch.context() as m:
            m.setattr(module, name, boom)
            with collecting() as failures:
                suite.explain_layers(ex, split, prep, cfg, result)
            also = [("receptive fields", "c2")] if view == "feature maps" else []
            assert [(f.part, f.layer, f.error) for f in failures] == \
                [(v, p, "RuntimeError: boom") for v, p in
                 [(view, p) for p in layers_of[view]] + also], view
            views = result.layers
            shown = {"feature maps": bool(views.feature_maps), "learned filters":
                     bool(views.filters), "filter patterns": bool(views.patterns),
                     "receptive fields": views.rf is not None,
                     "deep dream": views.dreams is not None}
            assert shown == {v: v != view and (v, "c2") not in also for v in LAYER_VIEWS}, view
            with pytest.raises(RuntimeError, match="boom"):
                suite.explain_layers(ex, split, prep, cfg, result)


def test_a_failing_method_and_a_failing_sanity_check_leave_the_rest(keras, random_split,
                                                                    monkeypatch):
    """A method that raises is missing from the sample images and the quality table (one
    failure each) while the others run; a sanity check that raises leaves its row without
    a sanity value (n_sanity 0) and the other numbers of the row as they are."""
    from reportgen.explain import quality
    from reportgen.explain.explainer import Explainer
    from reportgen.explain.methods import configure
    from reportgen.guard import collecting

    ex, split, prep, cfg, result = _layers_run(keras, random_split)
    cfg.explain.quality_images, cfg.explain.quality_steps, cfg.explain.sanity_images = 4, 2, 2
    options = {m: o for m, o in configure(cfg).items() if m in ("gradcam", "saliency")}
    real = Explainer.run

    def run(self, method, *args, **kwargs):
        if method == "saliency":
            raise ValueError("no gradient")
        return real(self, method, *args, **kwargs)

    def no_change(*args, **kwargs):
        raise FloatingPointError("NaN in the randomized maps")

    monkeypatch.setattr(Explainer, "run", run)
    monkeypatch.setattr(quality, "map_change", no_change)
    probs = np.tile([0.6, 0.4], (len(split), 1))
    with collecting() as failures:
        suite.explain_methods(ex, split, prep, probs, cfg, options, result)
    assert [(f.part, f.layer, f.error) for f in failures] == [
        ("Saliency on the sample images", None, "ValueError: no gradient"),
        ("sanity check of GradCAM", "c3", "FloatingPointError: NaN in the randomized maps"),
        ("Saliency in the quality table", None, "ValueError: no gradient")]
    assert list(result.method_outputs) == ["gradcam"] and list(result.quality) == ["gradcam"]
    row = result.quality["gradcam"]
    assert row.sanity is None and row.n_sanity == 0 and row.n == 4
    assert 0 <= row.deletion <= 1 and 0 <= row.insertion <= 1
    assert result.class_grid is not None  # the class grid ran too


def test_a_failing_test_set_pass_leaves_no_half_maps(keras, random_split, monkeypatch):
    """GradCAM of the test set failing in its second chunk: recorded once, and the result
    holds no map, pointing game or peaks of the chunk that ran (the galleries show images
    without maps); the layer stays named."""
    from reportgen.guard import Failure, collecting

    calls = []
    real = suite.cam_with_peaks

    def second_chunk_fails(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise MemoryError("out of memory")
        return real(*args, **kwargs)

    monkeypatch.setattr(suite, "cam_with_peaks", second_chunk_fails)
    monkeypatch.setattr(suite, "CHUNK", 2)
    n = 4
    split = random_split(n, 16)
    ex = suite.explainer_for(_layers_model(keras), Config())
    prep = lambda im: im.astype(np.float32) / 255.0  # noqa: E731
    with collecting() as failures:
        result = suite.explain_test_set(ex, split, prep, np.full((n, 2), 0.5), 2)
    assert failures == [Failure("GradCAM of the test set", "c3", "MemoryError: out of memory")]
    assert result.layer == "c3" and len(calls) == 2
    assert result.test_maps is None and result.peaks is None and result.true_maps == {}
    assert result.maps == {} and result.pointing == {}


def test_a_binary_threshold_picks_the_class_explained_and_the_galleries(keras, random_split):
    """Probabilities (0.7, 0.3) everywhere: the highest is class 0, evaluate.threshold 0.25 makes
    every image class 1. The galleries, the maps kept (class 1's GradCAM, not class 0's) and the
    true-class maps (of the images labelled 0, now the errors) follow the threshold."""
    from reportgen.explain.cam import cam_maps

    inp = keras.Input((12, 12, 3))
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inp)
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(h)))
    n = 8
    split = random_split(n, 12)  # labels 0, 1, 0, 1, ...
    probs = np.tile([0.7, 0.3], (n, 1))
    prep = lambda im: im.astype(np.float32) / 255.0  # noqa: E731
    ex = suite.explainer_for(model, Config())
    result = suite.explain_test_set(ex, split, prep, probs, 8, threshold=0.25)
    assert result.threshold == 0.25
    assert result.galleries[1]["correct"] and not result.galleries[0]["correct"]
    assert result.galleries[0]["misclassified"] == result.galleries[1]["confident_wrong"]
    assert sorted(result.true_maps) == [0, 2, 4, 6]  # labelled 0, predicted 1
    kept = sorted(result.maps["gradcam"])
    x = prep(split.images[kept])
    ones = cam_maps(ex, "gradcam", x, np.ones(len(kept), np.int32))
    zeros = cam_maps(ex, "gradcam", x, np.zeros(len(kept), np.int32))
    got = np.stack([result.maps["gradcam"][i] for i in kept])
    np.testing.assert_allclose(got, ones, atol=1e-5)
    assert not np.allclose(got, zeros, atol=1e-3)
