"""Receptive fields: a hand-built stack, checked by hand and by gradient support."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from reportgen.explain.receptive import receptive_field, receptive_fields


def stack(keras, pool):
    inp = keras.Input((32, 32, 1))
    x = keras.layers.Conv2D(1, 3, padding="valid", name="a", use_bias=False)(inp)
    x = keras.layers.Conv2D(1, 3, strides=2, padding="same", name="b", use_bias=False)(x)
    x = pool(2, name="c")(x)
    x = keras.layers.Conv2D(1, 3, dilation_rate=2, padding="valid", name="d", use_bias=False)(x)
    out = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inp, out)


def test_hand_computed_stack(keras):
    model = stack(keras, keras.layers.MaxPooling2D)
    # a: size 3, stride 1, offset 1. b (same, n=30, k=3, s=2: no padding before): size 5,
    # stride 2, offset 2. c (pool 2): size 7, stride 4, offset 3. d (k=3, d=2 -> 5): size 23,
    # stride 4, offset 11.
    want = {"a": (3, 1, 1), "b": (5, 2, 2), "c": (7, 4, 3), "d": (23, 4, 11)}
    for name, (size, stride, offset) in want.items():
        rf = receptive_field(model, name)
        assert rf.size == (size, size) and rf.stride == (stride, stride)
        assert rf.offset == (offset, offset), name
    rf = receptive_field(model, "d")
    assert rf.box(0, 0) == (0, 0, 22, 22)
    assert rf.box(1, 2) == (4, 8, 26, 30)
    assert rf.box(2, 2, (32, 32)) == (8, 8, 30, 30)  # d is 3x3 units


def test_box_equals_gradient_support(keras):
    model = stack(keras, keras.layers.AveragePooling2D)
    for layer in model.layers:
        if layer.name in "abd":
            layer.set_weights([np.ones_like(w) for w in layer.get_weights()])
    sub = keras.Model(model.inputs, model.get_layer("d").output)
    rf = receptive_field(model, "d")
    x = tf.constant(np.ones((1, 32, 32, 1), np.float32))
    for i, j in [(0, 0), (1, 2), (2, 2), (2, 0)]:
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = sub(x)[0, i, j, 0]
        g = tape.gradient(y, x).numpy()[0, :, :, 0]
        rows, cols = np.nonzero(g)
        assert (rows.min(), cols.min(), rows.max(), cols.max()) == rf.box(i, j, (32, 32))


def test_same_padding_with_odd_input_and_nested(keras):
    inner_in = keras.Input((9, 9, 1))
    y = keras.layers.ZeroPadding2D(((1, 0), (1, 0)), name="pad")(inner_in)  # 10x10
    y = keras.layers.Conv2D(1, 4, strides=3, padding="same", name="c")(y)
    inner = keras.Model(inner_in, y, name="base.v2")
    inp = keras.Input((9, 9, 1))
    out = keras.layers.Dense(1)(keras.layers.Flatten()(inner(inp)))
    model = keras.Model(inp, out)
    rf = receptive_field(model, "base.v2/c")
    # pad: offset -1. c: n=10, s=3 -> 4 outputs; total = 3*3 + 4 - 10 = 3 -> 1 before:
    # size 4, stride 3, offset -1 + (1.5 - 1) = -0.5.
    assert rf.size == (4, 4) and rf.stride == (3, 3) and rf.offset == (-0.5, -0.5)
    assert rf.box(0, 0) == (-2, -2, 1, 1)
    assert rf.box(0, 0, (9, 9)) == (0, 0, 1, 1)  # clipped to the image


def test_the_layers_page_shows_the_deepest_layer_seeing_at_most_half_the_image(keras):
    from reportgen.explain.explainer import Explainer
    from reportgen.explain.suite import receptive_layer

    ex = Explainer(stack(keras, keras.layers.MaxPooling2D))
    # Fields on the 32-px input: a 3, b 5, d 23 (see above): d sees more than half of it.
    assert receptive_layer(ex, ["a", "b", "d"]) == "b"
    assert receptive_layer(ex, ["d"]) == "d"  # none small enough: the first conv layer


def test_receptive_units_are_shown_on_different_images(keras):
    from reportgen.explain.explainer import Explainer
    from reportgen.explain.results import Peaks
    from reportgen.explain.suite import _top_units

    class Split:
        images = np.zeros((3, 32, 32, 1), np.uint8)

        def __len__(self):
            return 3

    ex = Explainer(stack(keras, keras.layers.MaxPooling2D))
    peaks = Peaks(14)
    # Four channels peaking with 9, 8, 7, 6 on images 0, 0, 1, 0 (set by hand: the boxes
    # only need layer a's geometry).
    peaks.values = np.array([9.0, 8.0, 7.0, 6.0])
    peaks.where = np.array([[0, 1, 1], [0, 2, 2], [1, 3, 3], [0, 4, 4]])
    view = _top_units(ex, Split(), lambda x: x, "a", 2, peaks)
    assert [(u.channel, u.index) for u in view.units] == [(0, 0), (2, 1)]  # 1 skipped: image 0
    view = _top_units(ex, Split(), lambda x: x, "a", 3, peaks)
    assert [u.channel for u in view.units] == [0, 2, 1]  # too few images: the next best


def test_one_walk_gives_every_layers_field_and_passes_over_what_it_cannot_trace(keras):

    model = stack(keras, keras.layers.MaxPooling2D)
    assert receptive_fields(model, ["a", "b", "c", "d"]) == {
        name: receptive_field(model, name) for name in "abcd"}
    inp = keras.Input((16, 16, 1))
    x = keras.layers.Conv2D(1, 3, name="a")(inp)
    x = keras.layers.Conv2DTranspose(1, 3, name="up")(x)
    x = keras.layers.Conv2D(1, 3, strides=2, name="b")(x)
    out = keras.layers.Dense(2)(keras.layers.Flatten()(x))
    model = keras.Model(inp, out)
    assert list(receptive_fields(model, ["a", "b"])) == ["a"]  # b is behind the transpose
    with pytest.raises(ValueError, match="'b'.*cannot be traced.*up: transposed"):
        receptive_field(model, "b")
    assert receptive_field(model, "a").size == (3, 3)  # what follows a does not matter


def support(model, layer, shape):
    """The input pixels each unit of ``layer`` depends on, found by changing one pixel at a
    time (forward passes only, independent of the analysis): {(i, j): (y0, x0, y1, x1)}."""
    import keras

    sub = keras.Model(model.input, model.get_layer(layer).output)
    h, w = shape
    base = np.ones((1, h, w, 1), np.float32)
    probes = np.repeat(base, h * w, axis=0)
    probes[np.arange(h * w), np.arange(h * w) // w, np.arange(h * w) % w, 0] = 2.0
    changed = np.abs(np.asarray(sub(probes)) - np.asarray(sub(base)))[..., 0] > 1e-6
    out = {}
    for i in range(changed.shape[1]):
        for j in range(changed.shape[2]):
            rows, cols = np.divmod(np.flatnonzero(changed[:, i, j]), w)
            out[(i, j)] = (rows.min(), cols.min(), rows.max(), cols.max())
    return out


def ones(model):
    for layer in model.layers:
        if layer.get_weights():
            layer.set_weights([np.ones_like(v) for v in layer.get_weights()])
    return model


def test_nearest_upsampling_by_hand(keras):
    inp = keras.Input((16, 16, 1))
    x = keras.layers.Conv2D(1, 3, name="a")(inp)  # 14x14, unit i sees pixels i..i+2
    x = keras.layers.UpSampling2D(2, name="up")(x)  # 28x28, unit i is a's unit i // 2
    x = keras.layers.Conv2D(1, 3, name="b")(x)  # 26x26, unit i reads up's units i..i+2
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.Flatten()(x)))
    up, b = receptive_field(model, "up"), receptive_field(model, "b")
    # up's unit 5 is a's unit 2: pixels 2..4. b's unit i: a's units i // 2 .. (i + 2) // 2,
    # so pixels i // 2 .. (i + 2) // 2 + 2: unit 3 sees 1..4, unit 4 sees 2..5.
    assert up.box(5, 0) == (2, 0, 4, 2) and up.stride == (0.5, 0.5)
    assert b.box(3, 4) == (1, 2, 4, 5) and b.box(0, 25) == (0, 12, 3, 15)
    assert b.size == (4.0, 4.0) and b.stride == (0.5, 0.5)
    got = support(ones(model), "b", (16, 16))
    assert all(b.box(i, j, (16, 16)) == box for (i, j), box in got.items())


@pytest.mark.parametrize("make,size", [
    (lambda keras: keras.layers.UpSampling2D(2, interpolation="bilinear", name="up"), 32),
    (lambda keras: keras.layers.UpSampling2D(3, interpolation="bilinear", name="up"), 48),
    (lambda keras: keras.layers.Resizing(24, 24, interpolation="bilinear", name="up"), 24),
    (lambda keras: keras.layers.Resizing(24, 24, interpolation="nearest", name="up"), 24),
    (lambda keras: keras.layers.Resizing(11, 11, interpolation="nearest", name="up"), 11),
])
def test_bilinear_and_resized_fields_equal_the_pixels_each_unit_depends_on(keras, make, size):
    inp = keras.Input((16, 16, 1))
    x = make(keras)(inp)
    x = keras.layers.Conv2D(1, 3, padding="same", name="b")(x)
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.Flatten()(x)))
    up, b = receptive_field(model, "up"), receptive_field(model, "b")
    assert up.stride == (16 / size, 16 / size)
    for layer, rf in (("up", up), ("b", b)):
        got = support(ones(model), layer, (16, 16))
        assert len(got) == size * size
        assert all(rf.box(i, j, (16, 16)) == box for (i, j), box in got.items()), layer


def test_bilinear_upsampling_by_hand(keras):
    inp = keras.Input((8, 8, 1))
    x = keras.layers.UpSampling2D(2, interpolation="bilinear", name="up")(inp)
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.Flatten()(x)))
    rf = receptive_field(model, "up")
    # unit i reads the input at i / 2 - 0.25: the floor and ceiling, clamped to 0..7.
    want = {0: (0, 0), 1: (0, 1), 2: (0, 1), 3: (1, 2), 4: (1, 2), 14: (6, 7), 15: (7, 7)}
    for i, (lo, hi) in want.items():
        assert rf.box(i, i) == (lo, lo, hi, hi)
    assert rf.size == (2.0, 2.0)


def test_caffe_preprocessing_and_channel_ops_keep_the_field(keras):
    from keras.applications import vgg16

    def model(pre):
        inp = keras.Input((16, 16, 3))
        x = keras.layers.Conv2D(4, 3, strides=2, padding="same", name="c")(pre(inp))
        x = keras.layers.Conv2D(4, 3, name="d")(x)
        return keras.Model(inp, keras.layers.Dense(2)(keras.layers.Flatten()(x)))

    def channel_ops(inp):  # every op here keeps the grid
        x = keras.layers.Rescaling(1 / 127.5, -1)(inp)
        x = keras.layers.Normalization(mean=[0.1, 0.2, 0.3], variance=[1.0, 2.0, 3.0])(x)
        x = keras.ops.cast(x, "float16")
        x = keras.ops.cast(x, "float32")
        x = keras.layers.Concatenate()([x[..., :1], x[..., 1:] * 2.0])
        x = keras.layers.Reshape((16, 16, 3, 1))(x)
        return keras.layers.Reshape((16, 16, 3))(x) + keras.ops.ones((1, 1, 3))

    # c (same, n=16, s=2: total 1 -> 0 before): size 3, stride 2, offset 1 (unit 0 sees
    # 0..2); d: size 3 + 2 * 2 = 7, stride 2, offset 1 + 2 = 3.
    for pre in (lambda t: t, vgg16.preprocess_input, channel_ops):
        m = model(pre)
        rf = receptive_field(m, "d")
        assert (rf.size, rf.stride, rf.offset) == ((7, 7), (2, 2), (3, 3))
        assert rf.box(1, 2) == (2, 4, 8, 10)


def test_an_op_that_moves_or_reshapes_the_grid_is_named(keras):
    inp = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="c")(inp)
    y = keras.layers.Permute((2, 1, 3), name="swap")(x)
    y = keras.layers.Conv2D(4, 3, name="d")(y)
    z = keras.layers.Reshape((8, 32, 4), name="fold")(x)
    z = keras.layers.Conv2D(4, 3, name="e")(z)
    out = keras.layers.Concatenate()([keras.layers.Flatten()(y), keras.layers.Flatten()(z)])
    model = keras.Model(inp, keras.layers.Dense(2)(out))
    with pytest.raises(ValueError, match="swap moves pixels"):
        receptive_field(model, "d")
    with pytest.raises(ValueError, match="fold changes the spatial grid from 16x16 to 8x32"):
        receptive_field(model, "e")
    assert set(receptive_fields(model, ["c", "d", "e"])) == {"c"}


def test_a_squeeze_excitation_branch_is_global_context(keras):
    inp = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="c")(inp)
    se = keras.layers.GlobalAveragePooling2D(keepdims=True)(x)
    se = keras.layers.Conv2D(4, 1, activation="sigmoid", name="se")(se)
    x = keras.layers.Multiply(name="scaled")([x, se])
    whole = keras.layers.Conv2D(4, 16, name="whole")(x)  # 1x1, traced: sees every pixel
    x = keras.layers.Conv2D(4, 3, name="d")(whole + x)  # broadcast: global context too
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.Flatten()(x)))
    assert receptive_field(model, "d").size == (5, 5)  # c's 3 + 2, as if without the branch


def test_a_field_that_cannot_be_followed_leaves_the_other_layer_views(keras, random_split):
    from reportgen.config import Config
    from reportgen.explain import suite
    from reportgen.explain.results import Explained

    inp = keras.Input((16, 16, 3))
    x = keras.layers.Conv2DTranspose(4, 3, name="decode")(inp)  # 18x18: not followed
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c1")(x)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c2")(x)
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x)))
    n = 3
    split = random_split(n, 16)
    cfg = Config()
    cfg.explain.pattern_filters = cfg.explain.dream_images = 0  # forward passes only
    cfg.explain.receptive_units = 2
    ex = suite.explainer_for(model, cfg)
    result = Explained(layer=ex.layer, galleries={}, samples=[0])
    suite.explain_layers(ex, split, lambda im: im.astype(np.float32) / 255, cfg, result)
    views = result.layers
    assert views.rf is None and set(views.feature_maps) == {"decode", "c1", "c2"}
    assert views.notes == ["Receptive fields are not shown: layer 'decode': its field cannot "
                           "be traced from the input (decode: transposed convolutions are not "
                           "supported)."]
    assert not suite.rf_search(ex, n, 2)
