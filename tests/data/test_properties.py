"""Per-image properties: known answers computed by hand or by an independent formula."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from reportgen.data import load_dataset, load_images
from reportgen.data.properties import (NAMES, box_area, image_properties, pixel_properties,
                                       split_properties)
from reportgen.data.store import Images


def _one(img: np.ndarray) -> dict[str, float]:
    return {k: float(v[0]) for k, v in pixel_properties(img[None]).items()}


def test_constant_gray_image_has_no_contrast_sharpness_or_colour():
    p = _one(np.full((16, 16, 3), 51, np.uint8))
    assert p["brightness"] == pytest.approx(0.2)
    assert p["contrast"] == 0.0 and p["sharpness"] == 0.0 and p["colourfulness"] == 0.0


def test_half_black_half_white_has_rms_contrast_one_half():
    img = np.zeros((8, 8, 1), np.uint8)
    img[:, 4:] = 255
    p = _one(img)
    assert p["brightness"] == pytest.approx(0.5)
    assert p["contrast"] == pytest.approx(0.5)
    assert p["colourfulness"] == 0.0  # one channel


def test_checkerboard_is_the_sharpest_image_and_a_ramp_has_none():
    checker = ((np.indices((12, 12)).sum(axis=0) % 2) * 255).astype(np.uint8)[..., None]
    assert _one(checker)["sharpness"] == pytest.approx(1.0)
    ramp = np.tile(np.arange(0, 240, 20, dtype=np.uint8), (12, 1))[..., None]
    assert _one(ramp)["sharpness"] == pytest.approx(0.0, abs=1e-12)


def test_sharpness_matches_a_loop_laplacian(rng):
    img = rng.integers(0, 256, (7, 9, 3), dtype=np.uint8)
    y = (0.299 * img[..., 0] + 0.587 * img[..., 1] + 0.114 * img[..., 2]) / 255.0
    lap = [y[i - 1, j] + y[i + 1, j] + y[i, j - 1] + y[i, j + 1] - 4 * y[i, j]
           for i in range(1, 6) for j in range(1, 8)]
    assert _one(img)["sharpness"] == pytest.approx(np.var(lap) / 16.0)


def test_brightness_agrees_with_pillow_grayscale(rng):
    img = rng.integers(0, 256, (10, 10, 3), dtype=np.uint8)
    pillow = np.asarray(Image.fromarray(img).convert("L"), np.float64).mean() / 255.0
    assert _one(img)["brightness"] == pytest.approx(pillow, abs=1 / 255)


def test_colourfulness_by_hand():
    red = np.zeros((4, 4, 3), np.uint8)
    red[..., 0] = 255
    # rg = 255 and yb = 127.5 everywhere: no spread, 0.3 of the mean's length.
    assert _one(red)["colourfulness"] == pytest.approx(0.3 * math.hypot(255, 127.5))
    half = red.copy()
    half[:, 2:] = (0, 255, 0)
    # rg = ±255 (variance 255²), yb = 127.5 everywhere: 255 + 0.3 * 127.5.
    assert _one(half)["colourfulness"] == pytest.approx(255 + 0.3 * 127.5)


def test_box_area_fraction_clipped_and_nan_without_box():
    boxes = np.array([[0, 0, 8, 8], [4, 4, 40, 40], [np.nan] * 4, [5, 5, 5, 9]], np.float32)
    area = box_area(boxes, (16, 16))
    np.testing.assert_allclose(area[[0, 1, 3]], [0.25, 0.5625, 0.0])
    assert np.isnan(area[2])


def test_chunked_store_equals_one_batch(rng):
    arr = rng.integers(0, 256, (150, 8, 8, 3), dtype=np.uint8)  # over two chunks of 64
    from_store = image_properties(Images.of(arr))
    whole = pixel_properties(arr)
    for k, v in whole.items():
        np.testing.assert_allclose(getattr(from_store, k), v)
    assert len(from_store) == 150
    assert np.isnan(from_store.width).all() and np.isnan(from_store.box_area).all()
    assert list(from_store.known()) == ["brightness", "contrast", "sharpness", "colourfulness"]
    assert list(from_store.as_dict()) == list(NAMES)


def test_empty_and_wrong_shapes():
    p = image_properties(np.zeros((0, 8, 8, 3), np.uint8))
    assert len(p) == 0 and p.aspect.shape == (0,)
    with pytest.raises(ValueError, match="shape"):
        pixel_properties(np.zeros((2, 8, 8, 4), np.uint8))


def _save(path, w, h, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), value, np.uint8)).save(path)


def test_source_sizes_come_from_the_files(tmp_path):
    for i in range(4):
        _save(tmp_path / "a" / f"{i}.png", 40, 20, 10)
        _save(tmp_path / "b" / f"{i}.png", 30, 60, 200)
    ds = load_dataset(tmp_path, size=(16, 16), split=[0.5, 0.25, 0.25], seed=0)
    for split in ds.splits.values():
        props = split_properties(split)
        wide = split.labels == 0
        np.testing.assert_array_equal(props.width, np.where(wide, 40, 30))
        np.testing.assert_array_equal(props.height, np.where(wide, 20, 60))
        np.testing.assert_allclose(props.aspect, np.where(wide, 2.0, 0.5))
        np.testing.assert_allclose(props.brightness, np.where(wide, 10, 200) / 255)


def test_unlabeled_images_know_their_sizes(tmp_path):
    _save(tmp_path / "x.png", 50, 25, 0)
    ds = load_images(tmp_path, size=(8, 8), class_names=["a", "b"])
    props = split_properties(ds.splits["test"])
    assert props.width.tolist() == [50.0] and props.aspect.tolist() == [2.0]


def test_the_shapes_demo_has_a_box_area_per_image(tmp_path):
    from reportgen.data import generate_shapes

    root = generate_shapes(tmp_path, per_class=4, size=32, seed=0)
    ds = load_dataset(root, size=(32, 32), split=[0.5, 0.25, 0.25], seed=0)
    props = split_properties(ds.splits["test"])
    b = ds.splits["test"].boxes
    expected = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) / (32 * 32)
    np.testing.assert_allclose(props.box_area, expected, rtol=1e-5)
    assert np.all((props.box_area > 0) & (props.box_area < 1))
    assert props.width.tolist() == [32.0] * len(props)
