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
    base = {"full": "f.jpg", "image": "i.jpg", "image_alt": "a", "thumb": "t.jpg", "alt": "b",
            "size": 128, "topk": [("cat", 0.9)], "path": "p.png", "confidence": 0.9}
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
