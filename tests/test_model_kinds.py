"""Kinds of model end to end through the CLI: a binary classifier with one sigmoid unit, and
independent sigmoids."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from test_bad_input import build, load_model_args, make_folder  # tests/ is on sys.path

TWO = {"cat": (200, 120, 60), "dog": (60, 90, 200)}


def sigmoid_model(keras, units=1, activation="sigmoid"):
    inp = keras.Input((16, 16, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inp)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(x)
    g = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, keras.layers.Dense(units, activation=activation, name="head")(g))


def read_site(out):
    with open(out / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return json.loads((out / "metrics.json").read_text()), rows


@pytest.mark.slow
def test_binary_sigmoid_model_end_to_end(keras, tmp_path):
    data = make_folder(tmp_path / "data", classes=TWO, n=12)
    model = sigmoid_model(keras)
    kernel = np.zeros((3, 3, 3, 4), np.float32)
    kernel[1, 1, 0, 0] = kernel[1, 1, 2, 1] = 1.0  # filter 0: red, filter 1: blue
    kernel[:, :, :, 2:] = np.random.default_rng(0).normal(0, 0.3, (3, 3, 3, 2))
    model.get_layer("conv").set_weights([kernel, np.zeros(4, np.float32)])
    head = model.get_layer("head")  # z = 4 (blue - red) + ...: dogs (blue) are class 1
    head.set_weights([np.array([[-4.0], [4.0], [0.5], [-0.5]], np.float32),
                      np.array([0.0], np.float32)])
    model.save(tmp_path / "binary.keras")
    result = build(tmp_path, *load_model_args(tmp_path / "binary.keras"), "explain.layer=conv",
                   data=data)
    assert result.exit_code == 0, result.output
    metrics, rows = read_site(tmp_path / "site")
    images = np.stack([np.asarray(Image.open(data / r["file"]).convert("RGB")) for r in rows])
    p = np.asarray(model(images.astype(np.float32)))[:, 0]
    got = np.array([[float(r["cat"]), float(r["dog"])] for r in rows])
    np.testing.assert_allclose(got, np.stack([1 - p, p], axis=1), atol=1e-5)
    true = np.array([["cat", "dog"].index(r["true"]) for r in rows])
    pred = (p > 0.5).astype(int)
    cm = np.zeros((2, 2), int)
    np.add.at(cm, (true, pred), 1)
    assert metrics["splits"]["test"]["confusion_matrix"] == cm.tolist()
    assert [r["predicted"] for r in rows] == [["cat", "dog"][k] for k in pred]
    assert any("one sigmoid output for two classes" in n for n in metrics["notes"])
    # Every test image's GradCAM is of its predicted class: -z explains "cat".
    acts = np.asarray(keras.Model(model.inputs, model.get_layer("conv").output)(
        images.astype(np.float32)))
    w = head.get_weights()[0][:, 0]
    with np.load(tmp_path / "site" / "explanations.npz") as z:
        maps = z["gradcam"].astype(np.float32)
    for i in range(len(rows)):
        cam = np.maximum((acts[i] * (w if pred[i] else -w)).sum(-1), 0)
        span = cam.max() - cam.min()
        want = (cam - cam.min()) / span if span > 1e-8 else np.zeros_like(cam)
        np.testing.assert_allclose(maps[i], want, atol=2e-3)
    assert pred.min() == 0 and pred.max() == 1, "the check needs both classes predicted"


def outputs_in_the_site(model, tmp_path, data):
    """Build a site of ``model`` (saved as a file) on ``data``: (metrics.json, the
    probabilities in predictions.csv in class order, the model's own outputs on those images,
    float64)."""
    model.save(tmp_path / "model.keras")
    result = build(tmp_path, *load_model_args(tmp_path / "model.keras"), data=data)
    assert result.exit_code == 0, result.output
    metrics, rows = read_site(tmp_path / "site")
    images = np.stack([np.asarray(Image.open(data / r["file"]).convert("RGB")) for r in rows])
    raw = np.asarray(model(images.astype(np.float32)), np.float64)
    got = np.array([[float(r[n]) for n in metrics["classes"]] for r in rows])
    return metrics, got, raw


@pytest.mark.slow
def test_independent_sigmoids_are_reported_as_such(keras, tmp_path):
    data = make_folder(tmp_path / "data", n=6)
    model = sigmoid_model(keras, units=3)
    metrics, got, raw = outputs_in_the_site(model, tmp_path, data)
    np.testing.assert_allclose(got, raw, atol=1e-5)  # the sigmoids, not their softmax
    assert not np.allclose(got.sum(axis=1), 1.0)
    assert any("independent sigmoids" in n for n in metrics["notes"])


@pytest.mark.slow
def test_a_logits_head_is_read_through_a_softmax_and_stated(keras, tmp_path):
    data = make_folder(tmp_path / "data", n=6)
    model = sigmoid_model(keras, units=3, activation=None)  # logits: no activation
    metrics, got, z = outputs_in_the_site(model, tmp_path, data)
    softmax = np.exp(z - z.max(axis=1, keepdims=True))
    softmax /= softmax.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(got, softmax, atol=1e-5)
    assert any("softmax of the logits" in n for n in metrics["notes"])


def colour_model(keras, order):
    """Output k is a sharp softmax over the mean of colour channel ``order[k]`` ("red" = R)."""
    inp = keras.Input((16, 16, 3))
    g = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255.0)(inp))
    dense = keras.layers.Dense(3, activation="softmax", name="head")
    model = keras.Model(inp, dense(g))
    w = np.zeros((3, 3), np.float32)
    for k, name in enumerate(order):
        w[{"red": 0, "green": 1, "blue": 2}[name], k] = 20.0
    dense.set_weights([w, np.zeros(3, np.float32)])
    return model


@pytest.mark.slow
def test_data_classes_give_the_order_of_the_outputs(keras, tmp_path):
    data = make_folder(tmp_path / "data", n=6)
    order = ["red", "green", "blue"]  # not the folders' sorted order (blue, green, red)
    colour_model(keras, order).save(tmp_path / "m.keras")
    args = load_model_args(tmp_path / "m.keras")
    result = build(tmp_path, *args, f"data.classes={order!r}".replace("'", '"'), data=data)
    assert result.exit_code == 0, result.output
    metrics, rows = read_site(tmp_path / "site")
    assert metrics["classes"] == order
    assert metrics["splits"]["test"]["accuracy"] == 1.0
    assert all(r["true"] == r["predicted"] for r in rows)
    # The same model read in sorted folder order is wrong on red and blue.
    sorted_run = build(tmp_path, *args, out=tmp_path / "sorted", data=data)
    assert sorted_run.exit_code == 0
    assert json.loads((tmp_path / "sorted" / "metrics.json").read_text())[
        "splits"]["test"]["accuracy"] < 0.5


@pytest.mark.parametrize("classes,needle", [
    ('["red", "green", "purple"]', "folder 'blue'"),  # purple alone would be accepted
    ('["red", "green"]', "folder 'blue'"),
    ('["red", "red", "blue"]', "expected distinct non-empty names"),
])
def test_data_classes_that_do_not_match_end_in_one_line(keras, tmp_path, classes, needle):
    from test_bad_input import assert_one_line_error

    data = make_folder(tmp_path / "data", n=4)
    colour_model(keras, ["red", "green", "blue"]).save(tmp_path / "m.keras")
    result = build(tmp_path, *load_model_args(tmp_path / "m.keras"), f"data.classes={classes}",
                   data=data)
    assert_one_line_error(result, 2, "data.classes", needle)


@pytest.mark.slow
def test_a_model_of_any_input_size_reads_images_at_data_image_size(keras, tmp_path):
    data = make_folder(tmp_path / "data", n=4)
    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(
        keras.layers.Rescaling(1 / 255.0)(inp))
    out = keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    keras.Model(inp, out).save(tmp_path / "fcn.keras")
    result = build(tmp_path, *load_model_args(tmp_path / "fcn.keras"), "data.image_size=24",
                   data=data)
    assert result.exit_code == 0, result.output
    metrics, _ = read_site(tmp_path / "site")
    assert metrics["data"]["image_size"] == [24, 24] and metrics["explain"]["layer"] == "conv"
    assert set(metrics["explain"]["quality"]) == set(metrics["explain"]["methods"])
    assert any("any size" in n for n in metrics["notes"])


def two_inputs(keras):
    a, b = keras.Input((16, 16, 3)), keras.Input((4,))
    g = keras.layers.GlobalAveragePooling2D()(a)
    return keras.Model([a, b], keras.layers.Dense(3)(keras.layers.Concatenate()([g, b])),
                       name="twin_input")


def segmentation(keras):
    inp = keras.Input((16, 16, 3))
    return keras.Model(inp, keras.layers.Conv2D(3, 1)(inp), name="segmenter")


def channels_first(keras):
    inp = keras.Input((3, 16, 16))
    return keras.Model(inp, keras.layers.Dense(3)(keras.layers.Flatten()(inp)), name="chw")


@pytest.mark.parametrize("make,needles", [
    (two_inputs, ("'twin_input'", "2 inputs", "one image input")),
    (segmentation, ("'segmenter'", "(None, 16, 16, 3)", "not (batch, classes)")),
    (channels_first, ("'chw'", "channels-first", "channels_last")),
])
def test_models_reportgen_cannot_explain_end_in_one_line(keras, tmp_path, make, needles):
    from test_bad_input import assert_one_line_error

    data = make_folder(tmp_path / "data", n=4)
    make(keras).save(tmp_path / "m.keras")
    result = build(tmp_path, *load_model_args(tmp_path / "m.keras"), data=data)
    assert_one_line_error(result, 2, "model.path", *needles)


@pytest.mark.slow
def test_a_savedmodel_folder_builds_with_every_method(keras, tmp_path):
    """Its serving graph is opened at the last convolution: the CAM family and the ReLU
    methods run too (their maps equal the Keras model's: tests/explain/test_savedmodel.py)."""
    from reportgen.explain.methods import REGISTRY

    data = make_folder(tmp_path / "data", n=6)
    inp = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(
        keras.layers.Rescaling(1 / 255.0)(inp))
    model = keras.Model(inp, keras.layers.Dense(3, activation="softmax")(
        keras.layers.GlobalAveragePooling2D()(x)))
    model.export(tmp_path / "exported", verbose=False)  # what TF Serving loads
    result = build(tmp_path, *load_model_args(tmp_path / "exported"), data=data)
    assert result.exit_code == 0, result.output
    metrics, rows = read_site(tmp_path / "site")
    images = np.stack([np.asarray(Image.open(data / r["file"]).convert("RGB")) for r in rows])
    want = np.asarray(model(images.astype(np.float32)))
    got = np.array([[float(r[n]) for n in metrics["classes"]] for r in rows])
    np.testing.assert_allclose(got, want, atol=1e-5)  # its probabilities, not re-softmaxed
    assert set(metrics["explain"]["quality"]) == set(REGISTRY)
    layer = metrics["explain"]["layer"]
    assert layer.startswith("saved_model/") and layer.endswith(".Relu")
    with np.load(tmp_path / "site" / "explanations.npz") as f:
        assert str(f["layer"]) == layer and f["gradcam"].shape == (len(rows), 16, 16)
    notes = " ".join(metrics["notes"])
    assert "need a conv layer" not in notes and "no ReLU of the model is visible" not in notes
    assert "use the class probabilities" not in notes  # the graph's softmax was cut off
    assert "Sanity check skipped" in notes and "The Layers page was not made" in notes
    # Planned as 0 images with the reason, so nothing states the check as run.
    plan = metrics["explain"]["plan"]
    assert plan["settings"]["sanity_images"] == 0
    assert plan["estimate_s"]["quality: sanity check"] == 0
    assert [(r["used"], "SavedModel" in r["why"]) for r in plan["reductions"]
            if r["key"] == "explain.sanity_images"] == [(0, True)]
    assert all(q["n_sanity"] == 0 for q in metrics["explain"]["quality"].values())
    assert "serving graph was opened at" in notes and "final softmax was cut off" in notes
