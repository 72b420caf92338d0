"""Penultimate-layer features collected in the prediction pass (reportgen.explain.penultimate):
each equals the output of a sub-model built by hand at the classifier layer's input."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from reportgen.explain.penultimate import Features, predict_with_features  # noqa: E402

L = keras.layers
SHAPE = (16, 16, 3)


def _images(n: int = 5, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, *SHAPE), dtype=np.uint8)


def _run(model, splits, **kw):
    return predict_with_features(model, splits, SHAPE, batch_size=2,
                                 preprocess=lambda b: b.astype(np.float32) / 255.0, **kw)


def _check(model, hand, layer: str):
    """Features of ``model`` equal ``hand`` (a sub-model to the classifier's input); outputs
    equal the model's own; the classifier layer is ``layer``."""
    x = _images()
    outs, feats = _run(model, {"test": x, "train": x[:3]})
    xf = x.astype(np.float32) / 255.0
    np.testing.assert_allclose(outs["test"], np.asarray(model(xf)), rtol=1e-5, atol=1e-6)
    want = np.asarray(hand(xf), np.float32)
    np.testing.assert_allclose(feats.arrays["test"], want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(feats.arrays["train"], want[:3], rtol=1e-5, atol=1e-6)
    assert feats.arrays["test"].dtype == np.float32 and feats.layer == layer
    assert not feats.missing and feats.dims == want.shape[1]
    return feats


def test_gap_dense_head_gives_the_pooled_vector():
    inp = keras.Input(SHAPE)
    x = L.Conv2D(6, 3, activation="relu", name="conv")(inp)
    gap = L.GlobalAveragePooling2D(name="gap")(x)
    out = L.Dense(3, activation="softmax", name="predictions")(L.Dropout(0.5)(gap))
    feats = _check(keras.Model(inp, out), keras.Model(inp, gap), "predictions")
    assert "6 values" in feats.description


def test_flatten_dense_then_softmax_layer_sequential():
    model = keras.Sequential([keras.Input(SHAPE), L.Conv2D(2, 3, strides=4, name="c"),
                              L.Flatten(name="flat"), L.Dense(4, name="dense"),
                              L.Softmax(name="soft")])
    hand = keras.Sequential([keras.Input(SHAPE), model.layers[0], model.layers[1]])
    _check(model, hand, "dense")


def test_nested_backbone_walks_into_it():
    b_in = keras.Input(SHAPE)
    base = keras.Model(b_in, L.Conv2D(5, 3, activation="relu", name="inner")(b_in), name="base")
    inp = keras.Input(SHAPE)
    gap = L.GlobalAveragePooling2D(name="gap")(base(inp))
    out = L.Dense(2, activation="softmax", name="head")(gap)
    _check(keras.Model(inp, out), keras.Model(inp, gap), "head")


def test_conv_classifier_on_a_map_is_averaged_over_positions():
    inp = keras.Input(SHAPE)
    fmap = L.Conv2D(4, 3, activation="relu", name="conv")(inp)
    logits = L.Conv2D(3, 1, name="classifier")(fmap)
    out = L.Softmax()(L.GlobalAveragePooling2D()(logits))
    sub = keras.Model(inp, fmap)

    def hand(x):
        return np.asarray(sub(x)).mean(axis=(1, 2))  # (N, h, w, 4) -> (N, 4) by hand

    feats = _check(keras.Model(inp, out), hand, "classifier")
    assert "averaged" in feats.description


def test_empty_split_has_zero_rows_of_the_right_widths():
    inp = keras.Input(SHAPE)
    gap = L.GlobalAveragePooling2D()(L.Conv2D(7, 3)(inp))
    model = keras.Model(inp, L.Dense(3, activation="softmax")(gap))
    outs, feats = _run(model, {"val": _images(0), "test": _images(2)})
    assert outs["val"].shape == (0, 3) and feats.arrays["val"].shape == (0, 7)


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.dense = L.Dense(2, activation="softmax")

    def call(self, x):
        return self.dense(keras.ops.mean(x, axis=(1, 2)))


def test_subclassed_model_has_no_features_and_says_why():
    model = Subclassed()
    x = _images(3)
    model(x.astype(np.float32))
    outs, feats = _run(model, {"test": x})
    np.testing.assert_allclose(outs["test"], np.asarray(model(x.astype(np.float32) / 255.0)),
                               rtol=1e-6)
    assert feats.missing and feats.of("test") is None and feats.arrays == {}
    assert "subclassed" in feats.missing


def test_features_pickle_without_tensorflow_types():
    import pickle

    f = Features({"test": np.ones((2, 3), np.float32)}, "head", "the input of head")
    back = pickle.loads(pickle.dumps(f))
    assert back.of("test").shape == (2, 3) and back.dims == 3


def test_a_savedmodel_opened_at_its_convolution_gives_the_pooled_map(tmp_path):
    from reportgen import model as mdl

    inp = keras.Input(SHAPE)
    h = L.Conv2D(5, 3, padding="same", activation="relu", name="c1")(inp)
    gap = L.GlobalAveragePooling2D()(h)
    keras.Model(inp, L.Dense(3, activation="softmax")(gap)).export(tmp_path / "cnn",
                                                                     verbose=False)
    saved = mdl.load_saved_model(tmp_path / "cnn")
    # The head part of the serving graph takes the ReLU's map: its spatial mean is what the
    # Dense layer saw.
    _check(saved, keras.Model(inp, gap), "saved_model/head")


def test_a_savedmodel_that_cannot_be_opened_has_no_features(tmp_path):
    from reportgen import model as mdl

    dense = keras.Sequential([keras.Input(SHAPE), L.Flatten(), L.Dense(3)])
    dense.export(tmp_path / "dense", verbose=False)
    saved = mdl.load_saved_model(tmp_path / "dense")
    x = _images(3)
    outs, feats = _run(saved, {"test": x})
    np.testing.assert_allclose(outs["test"], np.asarray(saved(x.astype(np.float32) / 255.0)),
                               rtol=1e-5, atol=1e-6)
    assert feats.missing and feats.of("test") is None
