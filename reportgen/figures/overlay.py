"""Heatmap overlays and thumbnails with numpy and Pillow (no matplotlib figure per image)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image


@lru_cache(maxsize=8)
def colormap_lut(name: str = "jet") -> np.ndarray:
    """Return the matplotlib colormap ``name`` as a (256, 3) uint8 lookup table."""
    from matplotlib import colormaps

    rgba = colormaps[name](np.linspace(0.0, 1.0, 256))
    return np.round(rgba[:, :3] * 255).astype(np.uint8)


def to_rgb(images: np.ndarray) -> np.ndarray:
    """Return (N, H, W, 3) uint8: grayscale images repeated, colour images as they are."""
    images = np.asarray(images)
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    return images.astype(np.uint8, copy=False)


def heatmap_overlay(images: np.ndarray, maps: np.ndarray, *, alpha: float = 0.45,
                    cmap: str = "jet") -> np.ndarray:
    """Blend colour-mapped heatmaps over images.

    Args:
        images: (N, H, W, C) uint8, C = 1 or 3.
        maps: (N, H, W) float in [0, 1] (values outside are clipped).
        alpha: heatmap weight.

    Returns:
        (N, H, W, 3) uint8: (1 - alpha) * image + alpha * lut[map], in integer arithmetic with
        alpha rounded to a multiple of 1/256 and the result rounded to nearest.
    """
    a = int(round(alpha * 256))
    lut_a = colormap_lut(cmap).astype(np.uint16) * a + 128  # heatmap term and rounding, once
    images = np.asarray(images)
    maps = np.asarray(maps, np.float32)
    out = np.empty(images.shape[:3] + (3,), np.uint8)
    for s in range(0, len(images), 32):  # chunks that stay in cache
        idx = np.clip(maps[s:s + 32] * 255.0 + 0.5, 0, 255).astype(np.uint8)
        o = to_rgb(images[s:s + 32]).astype(np.uint16)
        o *= 256 - a
        o += lut_a[idx]
        o >>= 8
        out[s:s + 32] = o
    return out


def resize_map(m: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A float map (h, w) resized to ``size`` (width, height), bilinear, float32."""
    m = np.asarray(m, np.float32)
    width, height = (int(v) for v in size)
    if (m.shape[1], m.shape[0]) == (width, height):
        return m
    return np.asarray(Image.fromarray(m, mode="F").resize((width, height),
                                                         Image.Resampling.BILINEAR))


def signed_to_rgb(attributions: np.ndarray, *, percentile: float = 99.0) -> np.ndarray:
    """Map raw input attributions (N, H, W, C) to viewable (N, H, W, 3) uint8: per image, divide
    by the ``percentile`` of |a|, then 0 -> grey 128, +1 -> 255, -1 -> 0 (clipped)."""
    a = np.asarray(attributions, np.float32)
    scale = np.percentile(np.abs(a).reshape(len(a), -1), percentile, axis=1)
    scale = np.where(scale > 0, scale, 1.0)[:, None, None, None]
    out = np.clip(a / scale, -1, 1) * 127.5 + 127.5
    return to_rgb(np.round(out).astype(np.uint8))


def magnitude_map(attributions: np.ndarray, *, percentile: float = 99.0) -> np.ndarray:
    """Return (N, H, W) float32 in [0, 1]: max |a| over channels, divided by its per-image
    ``percentile`` and clipped (0 where the attribution is all zero)."""
    m = np.abs(np.asarray(attributions, np.float32)).max(axis=-1)
    scale = np.percentile(m.reshape(len(m), -1), percentile, axis=1)
    scale = np.where(scale > 0, scale, 1.0)[:, None, None]
    return np.clip(m / scale, 0.0, 1.0)


def save_image(image: np.ndarray, path: str | Path, *, side: int | None = None,
               fmt: str = "JPEG", quality: int = 82) -> Path:
    """Save an (H, W, 3) uint8 image, resized to ``side`` pixels wide (aspect kept; nearest
    neighbour when enlarging, so small inputs stay crisp, bilinear when shrinking)."""
    img = Image.fromarray(to_rgb(image[None])[0])
    if side and img.width != side:
        method = Image.Resampling.NEAREST if img.width < side else Image.Resampling.BILINEAR
        img = img.resize((side, int(round(side * img.height / img.width))), method)
    path = Path(path)
    img.save(path, format=fmt, **({"quality": quality} if fmt == "JPEG" else {"optimize": True}))
    return path


def tile_grid(images: np.ndarray, *, cols: int, pad: int = 2, fill: int = 255) -> np.ndarray:
    """Arrange (N, H, W, 3) uint8 images row-major into one (rows*(H+pad)-pad, ...) image."""
    n, h, w, c = images.shape
    rows = int(np.ceil(n / cols))
    out = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad, c), fill, np.uint8)
    for i in range(n):
        r, q = divmod(i, cols)
        out[r * (h + pad):r * (h + pad) + h, q * (w + pad):q * (w + pad) + w] = images[i]
    return out


#: Height in pixels of the label strip under each tile of :func:`labelled_grid`.
LABEL_STRIP = 13


def labelled_grid(images: np.ndarray, *, cols: int, labels: list[str], pad: int = 6,
                  fill: int = 255) -> np.ndarray:
    """:func:`tile_grid` with gutters of ``pad`` pixels and each tile's label (Pillow's
    built-in font, dark grey) in a strip of :data:`LABEL_STRIP` pixels under it."""
    from PIL import ImageDraw, ImageFont

    n, h, w, c = images.shape
    rows = int(np.ceil(n / cols))
    cell_h = h + LABEL_STRIP
    out = Image.new("RGB", (cols * (w + pad) - pad, rows * (cell_h + pad) - pad),
                    (fill, fill, fill))
    draw = ImageDraw.Draw(out)
    font = ImageFont.load_default()
    for i in range(n):
        r, q = divmod(i, cols)
        x, y = q * (w + pad), r * (cell_h + pad)
        out.paste(Image.fromarray(to_rgb(images[i:i + 1])[0]), (x, y))
        draw.text((x + 1, y + h + 1), labels[i], fill=(60, 60, 60), font=font)
    return np.asarray(out)
