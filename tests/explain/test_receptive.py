"""Receptive fields: a hand-built stack, checked by hand and by gradient support."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from reportgen.explain.receptive import receptive_field


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
    from reportgen.explain.receptive import receptive_fields

    model = stack(keras, keras.layers.MaxPooling2D)
    assert receptive_fields(model, ["a", "b", "c", "d"]) == {
        name: receptive_field(model, name) for name in "abcd"}
    inp = keras.Input((16, 16, 1))
    x = keras.layers.Conv2D(1, 3, name="a")(inp)
    x = keras.layers.UpSampling2D(name="up")(x)
    x = keras.layers.Conv2D(1, 3, name="b")(x)
    out = keras.layers.Dense(2)(keras.layers.Flatten()(x))
    model = keras.Model(inp, out)
    assert list(receptive_fields(model, ["a", "b"])) == ["a"]  # b is behind the upsampling
    with pytest.raises(ValueError, match="upsampling"):
        receptive_field(model, "b")
