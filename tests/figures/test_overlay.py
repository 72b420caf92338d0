"""Overlays and thumbnails: values by hand, shapes, no matplotlib figure per image."""

from __future__ import annotations

import numpy as np

from reportgen.figures.overlay import colormap_lut, heatmap_overlay, tile_grid, to_rgb


def test_lut_is_matplotlib_colormap():
    from matplotlib import colormaps
    lut = colormap_lut("viridis")
    assert lut.shape == (256, 3) and lut.dtype == np.uint8
    np.testing.assert_array_equal(lut[0], np.round(np.array(colormaps["viridis"](0.0)[:3]) * 255))
    np.testing.assert_array_equal(lut[255], np.round(np.array(colormaps["viridis"](1.0)[:3]) * 255))


def test_overlay_blend_by_hand():
    img = np.full((1, 2, 2, 3), 100, np.uint8)
    maps = np.array([[[0.0, 1.0], [0.5, 2.0]]], np.float32)  # 2.0 is clipped to 1
    lut = colormap_lut("jet")
    out = heatmap_overlay(img, maps, alpha=0.5)
    for (r, c), level in {(0, 0): 0, (0, 1): 255, (1, 0): 128, (1, 1): 255}.items():
        want = np.floor((100 * 128 + lut[level].astype(int) * 128 + 128) / 256)
        np.testing.assert_array_equal(out[0, r, c], want)
    # alpha 0 leaves the image, alpha 1 gives the colour map.
    np.testing.assert_array_equal(heatmap_overlay(img, maps, alpha=0.0), img)
    np.testing.assert_array_equal(heatmap_overlay(img, maps, alpha=1.0)[0, 0, 1], lut[255])


def test_overlay_of_many_images_equals_the_formula_per_image():
    """Past the internal chunking (70 images, grayscale too), every pixel follows the formula."""
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (70, 5, 4, 1), dtype=np.uint8)
    maps = rng.uniform(-0.2, 1.2, (70, 5, 4)).astype(np.float32)
    lut = colormap_lut("jet").astype(int)
    a = round(0.45 * 256)
    idx = np.clip(np.floor(maps.astype(np.float64) * 255 + 0.5), 0, 255).astype(int)
    want = (np.repeat(img, 3, -1).astype(int) * (256 - a) + lut[idx] * a + 128) // 256
    np.testing.assert_array_equal(heatmap_overlay(img, maps), want)


def test_grayscale_becomes_rgb_and_grid_layout():
    g = np.arange(4, dtype=np.uint8).reshape(1, 2, 2, 1)
    assert to_rgb(g).shape == (1, 2, 2, 3)
    tiles = np.stack([np.full((2, 2, 3), v, np.uint8) for v in (10, 20, 30)])
    grid = tile_grid(tiles, cols=2, pad=1, fill=0)
    assert grid.shape == (5, 5, 3)
    assert grid[0, 0, 0] == 10 and grid[0, 3, 0] == 20 and grid[3, 0, 0] == 30
    assert grid[2, 2, 0] == 0 and grid[4, 4, 0] == 0
