"""GradCAM family: known answers from independent formulas, nested and reloaded models."""

from __future__ import annotations

import numpy as np
import pytest

from reportgen.explain import Explainer, grad_cam, layer_cam


def gap_dense_model(keras, *, softmax=True, size=8, channels=4, classes=3, name="conv"):
    """Input -> Conv2D(channels) -> GAP -> Dense(classes): d logit_c / d A = W[:, c] / (h*w)."""
    inp = keras.Input((size, size, 3))
    a = keras.layers.Conv2D(channels, 3, padding="same", activation="relu", name=name)(inp)
    g = keras.layers.GlobalAveragePooling2D()(a)
    out = keras.layers.Dense(classes, activation="softmax" if softmax else None,
                             name="head")(g)
    return keras.Model(inp, out)


def expected_gradcam(acts: np.ndarray, w: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """GradCAM for GAP + Dense, by hand: alpha_k = W[k, c] / (h w); cam = relu(sum_k alpha_k A_k),
    min-max scaled per image (constant -> 0)."""
    n, h, wd, _ = acts.shape
    out = np.zeros((n, h, wd))
    for i in range(n):
        alpha = w[:, targets[i]] / (h * wd)
        cam = np.maximum((acts[i] * alpha).sum(-1), 0)
        span = cam.max() - cam.min()
        out[i] = (cam - cam.min()) / span if span > 1e-8 else 0.0
    return out


def bilinear_half_pixel(maps: np.ndarray, size: int) -> np.ndarray:
    """Independent bilinear resize with half-pixel centres (edge-clamped)."""
    n, h, w = maps.shape
    ys = np.clip((np.arange(size) + 0.5) * h / size - 0.5, 0, h - 1)
    xs = np.clip((np.arange(size) + 0.5) * w / size - 0.5, 0, w - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    out = np.zeros((n, size, size))
    for i in range(n):
        m = maps[i]
        top = m[y0][:, x0] * (1 - fx) + m[y0][:, x1] * fx
        bot = m[y1][:, x0] * (1 - fx) + m[y1][:, x1] * fx
        out[i] = top * (1 - fy) + bot * fy
    return out


def conv_acts(keras, model, layer_name, x):
    sub = keras.Model(model.inputs, model.get_layer(layer_name).output)
    return np.asarray(sub(x))


def test_gradcam_matches_hand_formula_per_image(keras, rng):
    model = gap_dense_model(keras)
    x = rng.uniform(0, 1, (5, 8, 8, 3)).astype(np.float32)
    targets = np.array([0, 1, 2, 1, 0])
    got = grad_cam(model, x, targets=targets, layer="conv", upsample=False, batch_size=2)
    want = expected_gradcam(conv_acts(keras, model, "conv", x),
                            model.get_layer("head").get_weights()[0], targets)
    assert got.shape == (5, 8, 8) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_gradcam_uses_logits_not_softmax(keras, rng):
    """A saturated softmax would flatten the gradients; the result must equal the logit model's."""
    with_softmax = gap_dense_model(keras, softmax=True)
    logits = gap_dense_model(keras, softmax=False)
    logits.set_weights(with_softmax.get_weights())
    # Scale the head so the softmax saturates.
    w, b = with_softmax.get_layer("head").get_weights()
    with_softmax.get_layer("head").set_weights([w * 200, b])
    logits.get_layer("head").set_weights([w * 200, b])
    x = rng.uniform(0, 1, (4, 8, 8, 3)).astype(np.float32)
    a = grad_cam(with_softmax, x, targets=[0, 1, 2, 0], upsample=False)
    b_ = grad_cam(logits, x, targets=[0, 1, 2, 0], upsample=False)
    np.testing.assert_allclose(a, b_, atol=1e-5)
    assert a.max() == pytest.approx(1.0)


def test_gradcam_upsampling_is_bilinear_half_pixel(keras, rng):
    model = gap_dense_model(keras, size=8)
    x = rng.uniform(0, 1, (3, 8, 8, 3)).astype(np.float32)
    # A stride-2 layer makes the maps smaller than the input.
    inp = keras.Input((8, 8, 3))
    a = keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu", name="conv")(inp)
    out = keras.layers.Dense(3, name="head")(keras.layers.GlobalAveragePooling2D()(a))
    model = keras.Model(inp, out)
    small = grad_cam(model, x, upsample=False)
    big = grad_cam(model, x, upsample=True)
    assert small.shape == (3, 4, 4) and big.shape == (3, 8, 8)
    np.testing.assert_allclose(big, bilinear_half_pixel(small, 8), atol=1e-5)
    assert big.min() >= 0 and big.max() <= 1


def test_predicted_class_is_default_target(keras, rng):
    model = gap_dense_model(keras)
    x = rng.uniform(0, 1, (4, 8, 8, 3)).astype(np.float32)
    pred = np.asarray(model(x)).argmax(1)
    np.testing.assert_allclose(grad_cam(model, x), grad_cam(model, x, targets=pred), atol=1e-6)


def test_layercam_matches_hand_formula(keras, rng):
    model = gap_dense_model(keras)
    x = rng.uniform(0, 1, (3, 8, 8, 3)).astype(np.float32)
    t = np.array([2, 0, 1])
    acts = conv_acts(keras, model, "conv", x)
    w = model.get_layer("head").get_weights()[0]
    got = layer_cam(model, x, targets=t, layer="conv", upsample=False)
    for i in range(3):
        g = np.maximum(w[:, t[i]] / 64.0, 0)  # relu(d logit / d A) is constant over space
        cam = np.maximum((acts[i] * g).sum(-1), 0)
        span = cam.max() - cam.min()
        want = (cam - cam.min()) / span if span > 1e-8 else np.zeros_like(cam)
        np.testing.assert_allclose(got[i], want, atol=1e-5)


def test_nested_model_layer_with_dots_in_name(keras, rng):
    """Transfer learning: the conv layer sits inside a nested model named with dots."""
    inner_in = keras.Input((8, 8, 3))
    conv = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inner_in)
    inner = keras.Model(inner_in, conv, name="base_1.00_8")
    inp = keras.Input((8, 8, 3))
    g = keras.layers.GlobalAveragePooling2D()(inner(inp))
    outer = keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="head")(g))
    x = rng.uniform(0, 1, (3, 8, 8, 3)).astype(np.float32)
    t = np.array([0, 2, 1])
    got = grad_cam(outer, x, targets=t, layer="base_1.00_8/conv", upsample=False)
    want = expected_gradcam(np.asarray(inner(x)), outer.get_layer("head").get_weights()[0], t)
    np.testing.assert_allclose(got, want, atol=1e-5)
    # With no layer given, the nested conv layer is found.
    assert Explainer(outer).layer == "base_1.00_8/conv"
    np.testing.assert_allclose(grad_cam(outer, x, targets=t, upsample=False), want, atol=1e-5)


def test_reloaded_sequential_model(keras, rng, tmp_path):
    model = keras.Sequential([keras.Input((8, 8, 3)),
                              keras.layers.Conv2D(4, 3, padding="same", activation="relu",
                                                  name="conv"),
                              keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(3, activation="softmax", name="head")])
    x = rng.uniform(0, 1, (4, 8, 8, 3)).astype(np.float32)
    before = grad_cam(model, x, upsample=False)
    model.save(tmp_path / "seq.keras")
    loaded = keras.models.load_model(tmp_path / "seq.keras")
    after = grad_cam(loaded, x, upsample=False)
    np.testing.assert_allclose(after, before, atol=1e-5)
    t = np.asarray(loaded(x)).argmax(1)
    acts = np.asarray(keras.Sequential(loaded.layers[:1])(x))
    np.testing.assert_allclose(after, expected_gradcam(acts, loaded.layers[-1].get_weights()[0], t),
                               atol=1e-5)


def test_default_layer_skips_1x1_outputs(keras):
    """Like MobileNetV3's 1x1 logits conv: the automatic choice must not pick it."""
    inp = keras.Input((16, 16, 3))
    a = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="features")(inp)
    p = keras.layers.GlobalAveragePooling2D(keepdims=True, name="pool")(a)  # (1, 1, 4)
    c = keras.layers.Conv2D(3, 1, name="logits_conv")(p)
    out = keras.layers.Flatten()(c)
    model = keras.Model(inp, out)
    assert Explainer(model).layer == "features"


def test_default_layer_is_the_last_conv_output_after_its_activation(keras):
    """VGG-like: the last conv (ReLU inside) before its pooling; conv -> BN -> ReLU -> pool:
    the ReLU; a residual Add and its ReLU count; a cell's stride-1 pooling branch is passed
    (never chosen); a grid change stops."""
    L = keras.layers

    def vgg(top):
        inp = keras.Input((32, 32, 3))
        x = L.Conv2D(4, 3, padding="same", activation="relu", name="block1_conv1")(inp)
        x = L.MaxPooling2D(name="block1_pool")(x)
        x = top(x)
        x = L.Dropout(0.5, name="drop")(x)  # after the pool, on its grid: still not chosen
        return keras.Model(inp, L.Dense(2)(L.Flatten()(x)))

    def conv_bn_relu_pool(x):
        x = L.Conv2D(4, 3, padding="same", name="conv")(x)
        x = L.BatchNormalization(name="bn")(x)
        x = L.ReLU(name="relu")(x)
        return L.AveragePooling2D(2, name="pool")(x)

    def residual(x):
        y = L.Conv2D(4, 3, padding="same", name="conv")(x)
        y = L.Activation("relu", name="act")(L.Add(name="add")([x, y]))
        return L.MaxPooling2D(name="pool")(y)

    def conv_pool(x):
        x = L.Conv2D(4, 3, padding="same", activation="relu", name="block2_conv1")(x)
        return L.MaxPooling2D(name="block2_pool")(x)

    def cell(x):  # NASNet-like: a stride-1 pooling branch on the grid, concatenated
        a = L.SeparableConv2D(4, 3, padding="same", name="sep")(x)
        b = L.AveragePooling2D(3, strides=1, padding="same", name="branch_pool")(a)
        y = L.Concatenate(name="cell_concat")([a, L.Add(name="branch_add")([b, x])])
        return L.MaxPooling2D(name="pool")(L.ReLU(name="cell_out")(y))

    assert Explainer(vgg(conv_pool)).layer == "block2_conv1"
    assert Explainer(vgg(cell)).layer == "cell_out"
    assert Explainer(vgg(conv_bn_relu_pool)).layer == "relu"
    assert Explainer(vgg(residual)).layer == "act"
    assert Explainer(vgg(conv_pool)).graph.layer_shapes["block2_conv1"][:2] == (16, 16)


def test_default_layer_in_a_nested_base_stops_at_its_pooling(keras):
    L = keras.layers
    inner_in = keras.Input((16, 16, 3))
    x = L.Conv2D(4, 3, padding="same", name="conv")(inner_in)
    x = L.BatchNormalization(name="bn")(x)
    x = L.Activation("relu", name="out_relu")(x)
    x = L.MaxPooling2D(name="pool")(x)
    base = keras.Model(inner_in, x, name="base.1")
    inp = keras.Input((16, 16, 3))
    out = L.Dense(2)(L.GlobalAveragePooling2D()(base(inp)))
    assert Explainer(keras.Model(inp, out)).layer == "base.1/out_relu"


def test_constant_map_gives_zeros_not_nan(keras, rng):
    model = gap_dense_model(keras)
    conv = model.get_layer("conv")
    k, b = conv.get_weights()
    conv.set_weights([np.zeros_like(k), np.ones_like(b)])  # constant activations
    x = rng.uniform(0, 1, (2, 8, 8, 3)).astype(np.float32)
    cam = grad_cam(model, x)
    assert np.isfinite(cam).all() and (cam == 0).all()


def test_inputs_and_model_not_mutated(keras, rng):
    model = gap_dense_model(keras)
    weights = [w.copy() for w in model.get_weights()]
    x = rng.uniform(0, 1, (3, 8, 8, 3)).astype(np.float32)
    x_copy = x.copy()
    grad_cam(model, x)
    layer_cam(model, x)
    np.testing.assert_array_equal(x, x_copy)
    for a, b in zip(model.get_weights(), weights, strict=True):
        np.testing.assert_array_equal(a, b)
    assert model.get_layer("head").activation.__name__ == "softmax"
    assert len(model.layers) == 4


def test_unknown_layer_lists_valid_ones(keras, rng):
    model = gap_dense_model(keras)
    with pytest.raises(ValueError, match="conv"):
        grad_cam(model, np.zeros((1, 8, 8, 3), np.float32), layer="nope")


def test_tiered_function_compiles_after_its_eager_allowance(keras, rng, monkeypatch):
    """Eager while the work run eagerly over all calls (images, plus CALL_IMAGES a call) stays
    within COMPILE_AFTER, then one tf.function; both give the same outputs; expect() compiles
    up front when a long run is announced. A function that takes gradients is compiled from
    its first call (oneDNN crashes on some eager conv gradients)."""
    import tensorflow as tf

    from reportgen.explain import graph as graph_mod
    from reportgen.explain.features import feature_maps_of

    # Room for exactly two eager calls of one image each.
    monkeypatch.setattr(graph_mod, "COMPILE_AFTER", 2 * (graph_mod.CALL_IMAGES + 1))
    model = gap_dense_model(keras)
    x = rng.uniform(0, 1, (4, 8, 8, 3)).astype(np.float32)
    from reportgen.explain.cam import cam_maps

    ex = Explainer(model)
    got = [feature_maps_of(ex, x[i:i + 1], "conv")["conv"] for i in range(4)]
    fn = next(f for k, f in ex.graph.functions.items() if k[0] == "capture")
    assert (fn.eager_calls, fn.eager_images) == (2, 2) and fn.compiled is not None
    np.testing.assert_allclose(np.concatenate(got), conv_acts(keras, model, "conv", x),
                               atol=1e-6)
    cams = [cam_maps(ex, "gradcam", x[i:i + 1], layer="conv") for i in range(2)]
    cam = next(f for k, f in ex.graph.functions.items() if k[0] == "cam")
    assert cam.tape and cam.eager_calls == 0 and cam.compiled is not None
    np.testing.assert_allclose(np.concatenate(cams), grad_cam(model, x[:2], layer="conv"),
                               atol=1e-6)
    fresh = graph_mod.TieredFunction(lambda v: v * 2.0, fn.signature[:1])
    fresh.expect(2, 2)  # two calls of one image fit
    assert fresh.compiled is None
    fresh(tf.constant(x[:2]))  # one call of two images: its images count, not only the call
    assert (fresh.eager_calls, fresh.eager_images) == (1, 2)
    fresh(tf.constant(x[:1]))  # 2 * CALL_IMAGES + 3 images: past the allowance
    assert fresh.eager_calls == 1 and fresh.compiled is not None
    big = graph_mod.TieredFunction(lambda v: v * 2.0, fn.signature[:1])
    big.expect(1, 2 * graph_mod.CALL_IMAGES + 3)  # one call, many images: compiled up front
    assert big.compiled is not None and big.eager_calls == 0


def test_gradcam_with_peaks_matches_separate_passes(keras, rng):
    """Same maps as grad_cam; peaks are each channel's max and first argmax of the layer."""
    from reportgen.explain.cam import grad_cam_with_peaks

    model = gap_dense_model(keras, size=6, channels=5)
    x = rng.uniform(0, 1, (7, 6, 6, 3)).astype(np.float32)
    x[3] = 0.0  # constant image: ReLU activations tie everywhere, the first position wins
    maps, values, positions = grad_cam_with_peaks(model, x, layer="conv", batch_size=3)
    np.testing.assert_allclose(maps, grad_cam(model, x, layer="conv"), atol=1e-6)
    acts = conv_acts(keras, model, "conv", x).reshape(7, 36, 5)
    np.testing.assert_allclose(values, acts.max(axis=1), atol=1e-6)
    np.testing.assert_array_equal(positions, acts.argmax(axis=1))
    assert positions.dtype == np.int64 and values.dtype == np.float32


def test_peaks_over_chunks_equal_one_global_argmax(rng):
    """Folding chunks gives the unit of the global (image, row, column) argmax per channel,
    the first one on ties."""
    from reportgen.explain.results import Peaks

    acts = rng.integers(0, 5, size=(10, 3, 4, 6)).astype(np.float32)  # many ties
    peaks = Peaks(width=4)
    for start in (0, 4, 7):
        chunk = acts[start:{0: 4, 4: 7, 7: 10}[start]].reshape(-1, 12, 6)
        peaks.add(start, chunk.max(axis=1), chunk.argmax(axis=1))
    flat = acts.reshape(-1, 6)
    arg = flat.argmax(axis=0)
    img, rem = np.divmod(arg, 12)
    np.testing.assert_array_equal(peaks.values, flat.max(axis=0))
    np.testing.assert_array_equal(peaks.where, np.stack([img, rem // 4, rem % 4], axis=1))
