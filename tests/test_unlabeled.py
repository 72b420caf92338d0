"""Unlabeled photos (data.source = "images") explained by a keras.applications ImageNet
classifier or by a user's own model with class names: no accuracy anywhere, the top 5 per photo
with names, galleries by predicted class."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image
from test_bad_input import (  # tests/ is on sys.path
    assert_one_line_error,
    build,
    tiny_model,
)

from reportgen.data import imagenet_names, load_images
from reportgen.data.images import grouped_by_prediction, imagenet_classes
from reportgen.errors import DataError
from reportgen.evaluate import prediction_summary
from reportgen.explain.suite import select_galleries, shown_classes


def photos(root, n=6, size=(24, 20), colours=None, text=True):
    """``n`` random photos under ``root`` (one in a subfolder), plus a text file."""
    rng = np.random.default_rng(3)
    (root / "trip").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        colour = None if colours is None else colours[i % len(colours)]
        arr = (rng.integers(0, 255, (*size, 3)) if colour is None else
               np.clip(np.array(colour) + rng.normal(0, 8, (*size, 3)), 0, 255))
        where = root / "trip" if i == n - 1 else root
        Image.fromarray(arr.astype(np.uint8)).save(where / f"photo_{i}.png")
    if text:
        (root / "notes.txt").write_text("not a photo")
    return root


def read(out):
    with open(out / "predictions.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    return json.loads((out / "metrics.json").read_text()), rows


# -- the shipped ImageNet classes ----------------------------------------------------------------

def test_the_shipped_imagenet_classes_are_in_keras_output_order():
    classes = imagenet_classes()
    wnids = [c[0] for c in classes]
    # keras.applications outputs follow the WordNet ids of ILSVRC 2012 in ascending order.
    assert len(classes) == 1000 and wnids == sorted(wnids) and len(set(wnids)) == 1000
    names = imagenet_names()
    assert len(set(names)) == 1000
    assert (names[0], wnids[0]) == ("tench", "n01440764")
    assert (names[281], wnids[281]) == ("tabby", "n02123045")
    assert (names[386], wnids[386]) == ("African elephant", "n02504458")
    assert (names[999], wnids[999]) == ("toilet tissue", "n15075141")


# -- reading photos --------------------------------------------------------------------------------

def test_photos_are_read_recursively_into_an_unlabeled_test_split(tmp_path):
    root = photos(tmp_path / "p", n=5)
    (tmp_path / "p" / "broken.jpg").write_bytes(b"not a jpeg")
    ds = load_images(root, size=(16, 16), class_names=["a", "b"])
    test = ds.splits["test"]
    assert not ds.labeled and not test.labeled
    assert test.paths == [f"photo_{i}.png" for i in range(4)] + ["trip/photo_4.png"]
    assert test.images.shape == (5, 16, 16, 3) and (test.labels == -1).all()
    assert len(ds.splits["train"]) == len(ds.splits["val"]) == 0
    assert dict(ds.skipped).keys() == {"notes.txt", "broken.jpg"}
    grouped = grouped_by_prediction(ds, np.array([1, 0, 1, 1, 0]))
    assert grouped.splits["test"].labels.tolist() == [1, 0, 1, 1, 0]
    assert not grouped.labeled and grouped.splits["test"].paths == test.paths


def test_a_folder_without_a_readable_photo_is_an_error_naming_data_path(tmp_path):
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "a.txt").write_text("x")
    with pytest.raises(DataError, match="data.path: no readable image"):
        load_images(tmp_path / "p", size=(16, 16), class_names=["a", "b"])


# -- numbers without labels ------------------------------------------------------------------------

def test_prediction_summary_by_hand():
    names = ["cat", "dog", "fox"]
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3], [0.1, 0.1, 0.8]])
    s = prediction_summary(probs, names, top_k=2)
    assert s["n"] == 4 and s["labeled"] is False
    assert s["mean_confidence"] == pytest.approx((0.7 + 0.6 + 0.5 + 0.8) / 4)
    assert list(s["per_class"]) == ["fox", "cat", "dog"]  # 2, 1, 1 photos; ties by index
    assert s["per_class"]["fox"] == {"predicted": 2, "mean_confidence": pytest.approx(0.7)}
    assert s["top"][1] == [["fox", 0.6], ["dog", 0.3]]
    assert "accuracy" not in s


def test_galleries_match_their_definition_on_random_predictions():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, 300)
    probs = rng.dirichlet(np.ones(5), 300)
    got = select_galleries(labels, probs, 5, 7)
    pred, conf = probs.argmax(1), probs.max(1)
    order = sorted(range(300), key=lambda i: (-conf[i], i))  # most confident first
    doubtful = sorted(range(300), key=lambda i: (conf[i], i))  # least confident first
    for c in range(5):
        assert got[c]["correct"] == [i for i in doubtful if labels[i] == c == pred[i]][:7]
        assert got[c]["misclassified"] == [i for i in order
                                           if labels[i] == c != pred[i]][:7]
        assert got[c]["confident_wrong"] == [i for i in order
                                             if pred[i] == c != labels[i]][:7]


def test_shown_classes_are_the_most_frequent_when_there_are_many():
    labels = np.array([5] * 4 + [1] * 3 + [9] * 3 + [2] * 1 + [7] * 2)
    assert shown_classes(labels, 10) == [1, 2, 5, 7, 9]
    assert shown_classes(labels, 10, limit=3) == [1, 5, 9]  # 4, 3, 3 images; 7 has 2


# -- end to end through the CLI --------------------------------------------------------------------

APPLICATION = ["data.source=images", "model.source=applications",
               "model.architecture=mobilenetv2", "model.weights=none", "model.input_size=32",
               "explain.classes=['tabby', 'tiger_cat']",
               # a CAM, a gradient, a perturbation and a sampling method: every kind of path
               "explain.methods=['gradcam', 'integrated_gradients', 'occlusion', 'rise']",
               "explain.quality_images=4", "explain.sanity_images=2", "explain.pattern_filters=1",
               "explain.dream_images=0", "explain.rise.masks=100"]


@pytest.mark.slow
def test_photos_explained_by_a_keras_applications_classifier(tmp_path, md_tables):
    data = photos(tmp_path / "photos", n=6)
    result = build(tmp_path, *APPLICATION, f"data.path={data}")
    assert result.exit_code == 0, result.output
    out = tmp_path / "site"
    metrics, rows = read(out)
    names = imagenet_names()
    assert metrics["labeled"] is False and metrics["classes"] == names
    assert rows[0] == ["file", "true", "predicted", *names]
    assert [r[0] for r in rows[1:]] == [f"photo_{i}.png" for i in range(5)] + ["trip/photo_5.png"]
    probs = np.array([[float(v) for v in r[3:]] for r in rows[1:]])
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-4)
    assert all(r[1] == "" for r in rows[1:])
    summary = metrics["splits"]["test"]
    assert "accuracy" not in summary and metrics["splits"]["train"] == {"n": 0, "labeled": False}
    # the top 5 by name, from the shipped list
    for p, top in zip(probs, summary["top"], strict=True):
        assert [n for n, _ in top] == [names[k] for k in np.argsort(-p, kind="stable")[:5]]
        np.testing.assert_allclose([q for _, q in top], np.sort(p)[::-1][:5], atol=1e-5)
    predicted = {names[k] for k in probs.argmax(1)}
    assert set(summary["per_class"]) == predicted
    pages = {f.name for f in out.glob("class-*.html")}
    assert len(pages) == len(predicted)  # a page per predicted class, none for the others
    index = (out / "index.html").read_text()
    for absent in ("test accuracy", "Accuracy and loss", "Confusion", "precision", "F1"):
        assert absent not in index
    assert "Top classes per photo" in index and "notes.txt" in index
    assert any("random weights" in n for n in metrics["notes"])
    methods = (out / "methods.html").read_text()
    assert "<th>tabby</th>" in methods and "<th>tiger cat</th>" in methods
    with np.load(out / "explanations.npz") as z:
        assert z["gradcam"].shape[0] == 6
    md = (out / "report.md").read_text()
    assert "## Predictions" in md and "Evaluation" not in md
    tables = {t[0][0]: t for t in md_tables(md)}
    assert len(tables["photo"]) == 1 + 6 and len(tables["photo"][0]) == 1 + 5  # top 5
    assert sum(int(r[1]) for r in tables["predicted class"][1:]) == 6

    # A new report setting rebuilds from the cache, without TensorFlow's work.
    again = build(tmp_path, *APPLICATION, f"data.path={data}", "report.title='Trip'")
    assert again.exit_code == 0, again.output
    metrics2, rows2 = read(out)
    assert metrics2["title"] == "Trip" and rows2 == rows
    assert any("came from an earlier build" in n for n in metrics2["notes"])


@pytest.mark.slow
def test_photos_explained_by_your_own_model_and_class_names(keras, tmp_path, md_tables):
    colours = [(220, 30, 30), (30, 200, 40), (30, 40, 210)]
    data = photos(tmp_path / "photos", n=6, size=(16, 16), colours=colours)
    model = tiny_model(keras)
    model.save(tmp_path / "m.keras")
    names = ["rouge", "vert", "bleu"]
    result = build(tmp_path, "data.source=images", f"data.path={data}", "model.source=load",
                   f"model.path={tmp_path / 'm.keras'}", f"data.classes={names}")
    assert result.exit_code == 0, result.output
    metrics, rows = read(tmp_path / "site")
    images = np.stack([np.asarray(Image.open(data / r[0]).convert("RGB")) for r in rows[1:]])
    want = np.asarray(model(images.astype(np.float32)))
    got = np.array([[float(v) for v in r[3:]] for r in rows[1:]])
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert [r[2] for r in rows[1:]] == [names[k] for k in want.argmax(1)]
    assert metrics["classes"] == names and rows[0][3:] == names
    assert [len(t) for t in metrics["splits"]["test"]["top"]] == [3] * 6
    tables = {t[0][0]: t for t in md_tables((tmp_path / "site" / "report.md").read_text())}
    assert [r[0] for r in tables["photo"][1:]] == [r[0] for r in rows[1:]]  # every photo
    assert tables["photo"][0] == ["photo", "#1", "#2", "#3"]
    # The explorer maps the photos too: no true class, the predicted one as in the CSV.
    text = (tmp_path / "site" / "explore" / "points.js").read_text()
    points = json.loads(text[text.index("{"):text.rindex("}") + 1])["points"]
    assert metrics["explorer"]["points"] == 6 and points["t"] == [-1] * 6
    assert [names[p] for p in points["p"]] == [r[2] for r in rows[1:]]


@pytest.mark.parametrize("settings,needles", [
    (["model.source=train"], ["data.source", "no labels to train on"]),
    (["model.source=load", "model.path=m.keras", "data.classes=['a', 'b']"],
     ["data.classes", "predicts 3 classes but data.classes names 2"]),
    (["model.source=load", "model.path=m.keras"],
     ["data.classes", "predicts 3 classes; name them"]),
    (["model.source=applications", "model.architecture=mobilenetv2", "model.weights=none",
      "model.input_size=32", "explain.classes=['tabbby']"],
     ["explain.classes", "'tabbby'", "did you mean 'tabby'"]),
    (["model.source=applications", "model.architecture=mobilnetv2"],
     ["model.architecture", "did you mean 'mobilenetv2'"]),
    (["model.source=applications", "model.architecture=vgg19", "model.input_size=16"],
     ["model.input_size", "VGG19", "at least 32"]),
])
def test_mistakes_with_photos_end_in_one_line(keras, tmp_path, settings, needles):
    data = photos(tmp_path / "photos", n=3, text=False)
    tiny_model(keras).save(tmp_path / "m.keras")
    settings = [s.replace("m.keras", str(tmp_path / "m.keras")) for s in settings]
    result = build(tmp_path, "data.source=images", f"data.path={data}", *settings)
    assert_one_line_error(result, 2, *needles)


def test_applications_on_class_folders_is_refused_naming_model_source(tmp_path):
    result = build(tmp_path, "model.source=applications")
    assert_one_line_error(result, 2, "model.source", 'data.source = "images"')
