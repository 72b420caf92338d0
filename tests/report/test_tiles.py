"""Gallery tiles say what they show: right or wrong in words (not only colour), the object box
drawn on the map, one colour scale for every map."""

from __future__ import annotations

import numpy as np

from reportgen.report.assets import Assets
from reportgen.report.gallery import colour_scale, with_box
from reportgen.report.render import environment


def test_the_object_box_is_drawn_on_its_edges():
    img = np.zeros((10, 12, 3), np.uint8)
    out = with_box(img, np.array([2, 3, 8, 7], np.float32))  # x0, y0, x1, y1 (edges)
    yellow = np.all(out == [255, 230, 0], axis=-1)
    rows, cols = np.nonzero(yellow)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (3, 6, 2, 7)
    assert not yellow[4:6, 3:7].any()  # the inside is left as it was
    assert with_box(img, np.full(4, np.nan, np.float32)) is img  # no box: unchanged


def test_tiles_say_right_or_wrong_in_words():
    env = environment()
    macro = env.get_template("_macros.html").module.tile
    base = {"views": [{"label": "image", "src": "i.jpg", "full": "f.jpg", "alt": "a"}],
            "caption": "c", "size": 128, "topk": [("cat", 0.9)], "path": "p.png",
            "confidence": 0.9}
    right = str(macro({**base, "true": "cat", "pred": "cat", "correct": True}))
    wrong = str(macro({**base, "true": "dog", "pred": "cat", "correct": False}))
    assert "✓ right" in right and "✗ wrong" not in right
    assert "✗ wrong" in wrong and "✓ right" not in wrong
    unlabeled = str(macro({**base, "true": None, "pred": "cat", "correct": False}))
    assert "wrong" not in unlabeled and "right" not in unlabeled  # no labels, no verdict


def test_one_colour_scale_from_zero_to_one():
    assets = Assets()
    scale = colour_scale(assets)
    strip = assets.jobs[scale["src"]].make()
    assert strip.shape == (12, 256, 3)
    assert (strip[:, 0] == strip[0, 0]).all() and strip[0, 0, 2] > strip[0, 0, 0]  # blue at 0
    assert strip[0, -1, 0] > strip[0, -1, 2]  # red at 1


class Split:
    """A labeled test split of four 8x8 images: true classes 0, 1, 1, 0."""

    def __init__(self):
        self.images = np.zeros((4, 8, 8, 3), np.uint8)
        self.labels = np.array([0, 1, 1, 0])
        self.paths = [f"img_{i}.png" for i in range(4)]
        self.boxes = np.full((4, 4), np.nan, np.float32)
        self.labeled = True


def _explained():
    from reportgen.explain.results import Explained

    ex = Explained(layer="conv", galleries={})
    ex.test_maps = np.random.default_rng(0).uniform(0, 1, (4, 2, 2)).astype(np.float16)
    ex.true_maps = {1: np.ones((2, 2), np.float16), 3: np.zeros((2, 2), np.float16)}
    return ex


# Image 1 (true b) is predicted a at 0.9, image 3 (true a) predicted b at 0.6: two errors.
PROBS = np.array([[0.8, 0.2], [0.9, 0.1], [0.3, 0.7], [0.4, 0.6]])


def test_a_misclassified_tile_shows_the_maps_of_the_predicted_and_the_true_class():
    from reportgen.report.gallery import tile

    assets, split, ex = Assets(), Split(), _explained()
    wrong = tile(assets, split, PROBS, ["a", "b"], 1, ex)
    assert [v["label"] for v in wrong["views"]] == ["image", "map: a", "map: b"]
    assert wrong["views"][2]["full"] == "img/gradcam/true/full/1.jpg"
    assert "true class b" in wrong["views"][2]["alt"]
    right = tile(assets, split, PROBS, ["a", "b"], 0, ex)
    assert [v["label"] for v in right["views"]] == ["image", "map: a"]
    # The true-class map file is the map of class b over the image: all ones = red everywhere.
    pixels = assets.jobs["img/gradcam/true/1.jpg"].make()
    assert pixels.shape == (8, 8, 3) and (pixels[..., 0] > pixels[..., 2]).all()


def test_the_errors_page_lists_every_error_most_confident_first():
    from reportgen.report.gallery import errors_page

    page = errors_page(Assets(), Split(), PROBS, ["a", "b"], _explained())
    tiles = page["sections"][0]["tiles"]
    assert [t["index"] for t in tiles] == [1, 3]  # 0.9 before 0.6
    assert page["errors"] == 2 and page["n"] == 4
    assert page["sections"][0]["heading"] == "2 of 4"
    assert [(p["true"], p["pred"], p["count"]) for p in page["pairs"]] == [("a", "b", 1),
                                                                          ("b", "a", 1)]
    unlabeled = Split()
    unlabeled.labeled = False
    assert errors_page(Assets(), unlabeled, PROBS, ["a", "b"], _explained()) is None


def test_a_binary_threshold_decides_every_gallery_and_the_errors_page():
    """At evaluate.threshold 0.15, class b is predicted where its probability is >= 0.15:
    images 0 (0.2), 2 and 3 are b, image 1 (0.1) is a. Against labels a, b, b, a that makes
    three errors (0: a as b, 1: b as a, 3: a as b) where the highest probability makes two."""
    from reportgen.evaluate import confusion_matrix, predict_labels
    from reportgen.explain.results import gallery_counts, select_galleries
    from reportgen.report.gallery import errors_page, tile

    split, ex = Split(), _explained()
    ex.threshold = 0.15
    cm = confusion_matrix(split.labels, predict_labels(PROBS, 0.15), 2)
    assert cm.tolist() == [[0, 2], [1, 1]]
    page = errors_page(Assets(), split, PROBS, ["a", "b"], ex)
    assert page["errors"] == cm.sum() - np.trace(cm) == 3
    # Most confident wrong first, by the probability of the class predicted: 0.9, 0.6, 0.2.
    assert [t["index"] for t in page["sections"][0]["tiles"]] == [1, 3, 0]
    assert [(p["true"], p["pred"], p["count"]) for p in page["pairs"]] == [("a", "b", 2),
                                                                          ("b", "a", 1)]
    flipped = tile(Assets(), split, PROBS, ["a", "b"], 0, ex)
    assert (flipped["pred"], flipped["correct"], flipped["confidence"]) == ("b", False, 0.2)
    assert "predicted b, 0.20" in flipped["alt"]
    galleries = select_galleries(split.labels, PROBS, 2, 10, 0.15)
    assert galleries[0] == {"misclassified": [3, 0], "confident_wrong": [1], "correct": []}
    assert galleries[1] == {"misclassified": [1], "confident_wrong": [3, 0], "correct": [2]}
    assert gallery_counts(split.labels, PROBS, 2, 0.15) == {
        0: {"misclassified": 2, "confident_wrong": 1, "correct": 0},
        1: {"misclassified": 1, "confident_wrong": 2, "correct": 1}}
    # Without a threshold the highest probability decides: images 1 and 3 are the errors.
    assert select_galleries(split.labels, PROBS, 2, 10)[0]["misclassified"] == [3]
