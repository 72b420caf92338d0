"""The explorer (explore.html): the map's points, the sprite atlas, the page's data script and
the TensorBoard projector files, from made-up results (no TensorFlow)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from reportgen.explain.penultimate import Features
from reportgen.report import gather
from reportgen.report import explorer as xp
from reportgen.report.render import environment, render


def _features(inputs, rng, d: int = 8) -> Features:
    return Features({s: rng.normal(size=(len(v), d)).astype(np.float32)
                     for s, v in inputs.ds.splits.items()}, "dense", "the input of 'dense'")


def _file_text(content, rel: str, tmp_path) -> str:
    path = tmp_path / rel.replace("/", "_")
    content.assets.jobs[rel].write(path)
    return path.read_text(encoding="utf-8")


def _points_data(text: str) -> dict:
    prefix, suffix = "window.REPORTGEN_EXPLORER = ", ";\n"
    assert text.startswith(prefix) and text.endswith(suffix)
    return json.loads(text[len(prefix):-len(suffix)])


@pytest.fixture
def explored(inputs, rng, drawn, tmp_path):
    inputs.features = _features(inputs, rng)
    content = gather(inputs, drawn)
    data = _points_data(_file_text(content, xp.POINTS_JS, tmp_path))
    return inputs, content, data


def test_map_sizes_and_samples():
    assert xp.map_sizes(100, 1000) == {"test": 100, "train": 100}
    assert xp.map_sizes(4000, 9000) == {"test": 4000, "train": 1000}
    assert xp.map_sizes(7000, 10) == {"test": 5000, "train": 0}
    assert xp.map_sizes(10, 3) == {"test": 10, "train": 3}
    assert list(xp.chosen(5, 9, 0)) == [0, 1, 2, 3, 4]
    pick = xp.chosen(100, 10, 3)
    assert len(set(pick)) == 10 and list(pick) == sorted(pick) and list(pick) == list(
        xp.chosen(100, 10, 3))  # seeded


def test_sprite_atlas_geometry():
    # Five solid images, values 10, 20, ..., 50: a 3-column grid, image k at row k // 3,
    # column k % 3; the sixth cell black. Grayscale images become gray RGB.
    images = [np.full((7, 5, 1), 10 * (k + 1), np.uint8) for k in range(5)]
    atlas, cols = xp.sprite_atlas(iter(images), 5, 4)
    assert cols == 3 and atlas.shape == (2 * 4, 3 * 4, 3) and atlas.dtype == np.uint8
    for k in range(5):
        r, c = divmod(k, 3)
        assert (atlas[r * 4:(r + 1) * 4, c * 4:(c + 1) * 4] == 10 * (k + 1)).all()
    assert (atlas[4:, 8:] == 0).all()
    assert xp.sprite_side(5000) == 2048 // 71 and xp.sprite_side(4) == 64


def test_layout_places_clusters_apart_and_is_seeded():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 10, (3, 20))
    labels = np.repeat(np.arange(3), 20)
    x = centres[labels] + rng.normal(0, 0.5, (60, 20))
    xy, reduced, info = xp.layout_2d(x, seed=1)
    assert info["method"] == "t-SNE" and reduced.shape == (60, 20) and xy.shape == (60, 2)
    assert xy.min() >= 0 and xy.max() <= 1
    d = np.linalg.norm(xy[:, None] - xy[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    assert (labels[d.argmin(axis=1)] == labels).all()  # every nearest neighbour: same cluster
    again, _, _ = xp.layout_2d(x, seed=1)
    np.testing.assert_array_equal(xy, again)


def test_tiny_and_constant_features_are_placed_without_tsne():
    xy, _, info = xp.layout_2d(np.array([[0.0, 0.0], [2.0, 0.0], [1.0, 1.0]]), seed=0)
    assert info["method"] == "PCA" and xy.shape == (3, 2)
    # PCA keeps the distances: the first two points are the farthest apart.
    d = np.linalg.norm(xy[:, None] - xy[None], axis=-1)
    assert d[0, 1] == pytest.approx(d.max())
    xy, _, info = xp.layout_2d(np.ones((9, 4)), seed=0)
    assert (xy == 0.5).all() and "do not vary" in info["method"]


def test_points_script_holds_every_point_with_its_labels(explored):
    inputs, content, data = explored
    p = data["points"]
    n_test, n_train = len(inputs.ds.splits["test"]), len(inputs.ds.splits["train"])
    assert len(p["x"]) == n_test + n_train == 12  # 6 test, then as many training images
    assert p["s"] == [0] * 6 + [1] * 6 and p["i"] == list(range(6)) * 2
    for k, (s, i) in enumerate(zip(p["s"], p["i"], strict=True)):
        split = inputs.ds.splits[data["splits"][s]]
        probs = inputs.probs[data["splits"][s]]
        assert p["f"][k] == split.paths[i] and p["t"][k] == int(split.labels[i])
        assert p["p"][k] == int(probs[i].argmax())
        assert p["c"][k] == pytest.approx(probs[i].max(), abs=1e-4)
        assert 0 <= p["x"][k] <= 1 and 0 <= p["y"][k] <= 1
    # Test image 1 is on a gallery: its full image and both GradCAMs are the site's files.
    assert p["img"][1] == "img/test/full/1.jpg" and p["cam"][1] == "img/gradcam/full/1.jpg"
    assert all(p["img"][k] in content.assets.jobs for k in range(12) if p["img"][k])
    assert p["img"][6:] == [""] * 6 and p["cam"][6:] == [""] * 6  # training images: none
    assert data["classes"] == ["a", "b"] and data["pages"][0].startswith("class-00")
    assert data["maps"] is None and p["m"] == [-1] * 12  # no layer-resolution maps here


def test_layer_maps_are_packed_for_the_page(inputs, rng, drawn, tmp_path):
    import base64

    inputs.features = _features(inputs, rng)
    inputs.explained.test_maps = rng.uniform(0, 1, (6, 4, 4)).astype(np.float16)
    data = _points_data(_file_text(gather(inputs, drawn), xp.POINTS_JS, tmp_path))
    m = data["maps"]
    raw = np.frombuffer(base64.b64decode(m["data"]), np.uint8).reshape(6, m["h"], m["w"])
    want = np.round(inputs.explained.test_maps.astype(np.float32) * 255)
    np.testing.assert_array_equal(raw, want)
    assert data["points"]["m"] == list(range(6)) + [-1] * 6 and len(m["lut"]) == 256


def test_no_text_in_the_data_can_close_the_script_tag(inputs, rng, drawn, tmp_path):
    test = inputs.ds.splits["test"]
    inputs.ds.splits["test"] = dataclasses.replace(
        test, paths=["</script><b>x</b>.png"] + list(test.paths[1:]))
    inputs.features = _features(inputs, rng)
    text = _file_text(gather(inputs, drawn), xp.POINTS_JS, tmp_path)
    assert "</script" not in text
    assert _points_data(text)["points"]["f"][0] == "</script><b>x</b>.png"


def test_projector_files_agree(explored, tmp_path):
    inputs, content, data = explored
    cfg = _file_text(content, xp.PROJECTOR["config"], tmp_path)
    meta = _file_text(content, xp.PROJECTOR["metadata"], tmp_path).splitlines()
    tensors = np.array([[float(v) for v in row.split("\t")] for row in
                        _file_text(content, xp.PROJECTOR["tensors"], tmp_path).splitlines()])
    shape = [int(line.split(":")[1]) for line in cfg.splitlines() if "tensor_shape" in line]
    assert shape == list(tensors.shape) == [12, 8]  # 12 points, PCA of 8 features: 8
    assert meta[0].split("\t") == ["file", "split", "true", "predicted", "right", "confidence"]
    assert len(meta) == 13 and meta[2].split("\t")[:5] == ["x/1.png", "test", "b", "a", "no"]
    assert 'tensor_path: "tensors.tsv"' in cfg and 'image_path: "sprite.jpg"' in cfg
    side = data["sprite"]["side"]
    assert cfg.count(f"single_image_dim: {side}") == 2
    sprite = tmp_path / "sprite.jpg"
    content.assets.jobs[xp.SPRITE].write(sprite)
    from PIL import Image

    with Image.open(sprite) as im:  # 12 thumbnails: 4 columns, 3 rows
        assert im.size == (4 * side, 3 * side)


def test_metrics_page_and_navigation(explored):
    inputs, content, _ = explored
    ex = content.metrics["explorer"]
    assert ex["points"] == 12 and ex["features_layer"] == "dense"
    assert ex["layout"]["method"] == "t-SNE" and ex["layout"]["splits"]["train"] == {
        "shown": 6, "total": 6}
    page = next(p for p in content.pages if p.rel == "explore.html").context
    html = render(environment(), "explore.html", {**page, "failed_in": {"explorer": []}})
    assert 'src="explore/points.js"' in html and 'id="f-true"' in html
    assert "6 of the 6 test images, 6 of the 6 train images." in " ".join(html.split())
    for p in content.pages:
        if p.rel.endswith(".html"):
            assert {"href": "explore.html", "label": "Explorer"} in p.context["nav"], p.rel
    assert "explorer map" in inputs.explained.seconds


def test_extra_colourings_appear_only_when_given(inputs, rng):
    from reportgen.report.assets import Assets

    inputs.features = _features(inputs, rng)
    mp = xp.map_points(inputs.features, 0)
    common = {"classes": [{"index": 0, "href": "a.html"}]}
    plain, _ = xp.explorer_page(Assets(), inputs, common, mp)
    assert plain["extra"] == {}
    flag = xp.Colouring("data-issue flag", {"test": {1: "label error", 4: "duplicate"}})
    page, _ = xp.explorer_page(Assets(), inputs, common, mp, {"flag": flag})
    assert page["extra"] == {"flag": "data-issue flag"}
    assert page["extra_names"]["flag"] == ["none", "duplicate", "label error"]


def test_without_features_the_page_says_why(inputs, drawn):
    inputs.features = Features(description="No penultimate features: x.", missing="x")
    content = gather(inputs, drawn)
    page = next(p for p in content.pages if p.rel == "explore.html").context
    assert not page["available"] and page["why"] == "x"
    assert content.metrics["explorer"] == {"points": 0, "layout": None,
                                           "features_layer": None, "missing": "x"}
    assert xp.POINTS_JS not in content.assets.jobs


def _empty(s):
    return dataclasses.replace(s, images=s.images[:0], labels=s.labels[:0], paths=[],
                               boxes=s.boxes[:0], labeled=False)


def test_unlabeled_points_have_no_true_class(inputs, rng, drawn, tmp_path):
    ds = inputs.ds
    splits = {"train": _empty(ds.splits["train"]), "val": _empty(ds.splits["val"]),
              "test": dataclasses.replace(ds.splits["test"], labeled=False)}
    from reportgen.evaluate import prediction_summary

    inputs.ds = dataclasses.replace(ds, splits=splits)
    assert not inputs.ds.labeled
    inputs.probs = {**inputs.probs, "train": np.zeros((0, 2)), "val": np.zeros((0, 2))}
    inputs.metrics = {"test": prediction_summary(inputs.probs["test"], ds.class_names),
                      "train": {"n": 0, "labeled": False}, "val": {"n": 0, "labeled": False}}
    inputs.features = _features(inputs, rng)
    content = gather(inputs, drawn)
    data = _points_data(_file_text(content, xp.POINTS_JS, tmp_path))
    assert data["labeled"] is False and data["points"]["t"] == [-1] * 6
    page = next(p for p in content.pages if p.rel == "explore.html").context
    html = render(environment(), "explore.html", {**page, "failed_in": {"explorer": []}})
    assert 'id="f-true"' not in html and 'value="right"' not in html
    assert 'id="f-split"' not in html  # no training image on the map
