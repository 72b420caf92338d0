"""The shapes demo: deterministic, every box inside the image and around the drawn object."""

from __future__ import annotations

import json

import numpy as np
import pytest

from reportgen.data import load_dataset
from reportgen.data.shapes import CLASSES, generate, render


def test_at_least_five_classes():
    assert len(set(CLASSES)) >= 5


def test_deterministic_from_seed(tmp_path):
    a = generate(tmp_path / "a", per_class=3, size=32, seed=5)
    b = generate(tmp_path / "b", per_class=3, size=32, seed=5)
    c = generate(tmp_path / "c", per_class=3, size=32, seed=6)
    files = sorted(p.relative_to(a).as_posix() for p in a.rglob("*.png"))
    assert len(files) == 3 * len(CLASSES)
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes()
    assert any((a / rel).read_bytes() != (c / rel).read_bytes() for rel in files)
    assert json.loads((a / "annotations.json").read_text()) == \
        json.loads((b / "annotations.json").read_text())


@pytest.mark.parametrize("kind", CLASSES)
def test_box_inside_image_and_around_object(kind):
    size = 64
    for i in range(10):
        img, box, cover = render(kind, size, np.random.default_rng([99, i]), with_mask=True)
        x0, y0, x1, y1 = box
        assert 0 <= x0 < x1 <= size and 0 <= y0 < y1 <= size
        rows, cols = np.nonzero(cover > 0)
        # Every pixel the object touches lies inside the box (pixel edges) ...
        assert cols.min() >= np.floor(x0) and cols.max() + 1 <= np.ceil(x1)
        assert rows.min() >= np.floor(y0) and rows.max() + 1 <= np.ceil(y1)
        # ... and the box is tight: the object reaches each of its four edges within a pixel.
        assert cols.min() <= x0 + 1 and cols.max() + 1 >= x1 - 1
        assert rows.min() <= y0 + 1 and rows.max() + 1 >= y1 - 1
        # The object is drawn in one colour that stands out from the background.
        inside = img[cover > 0.99].astype(float).mean(0)
        outside = img[cover == 0].astype(float).mean(0)
        assert np.abs(inside - outside).sum() > 30


def test_loader_reads_boxes_scaled(tmp_path):
    root = generate(tmp_path, per_class=4, size=32, seed=1)
    ds = load_dataset(root, size=(64, 64), split=[0.5, 0.25, 0.25], seed=0)
    ann = json.loads((root / "annotations.json").read_text())
    test = ds.splits["test"]
    for i, rel in enumerate(test.paths):
        np.testing.assert_allclose(test.boxes[i], np.array(ann[rel]["box"]) * 2, rtol=1e-5)
    assert ds.has_boxes
