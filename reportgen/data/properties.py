"""Per-image properties from the decoded arrays: brightness, contrast, sharpness, colourfulness,
the source size and aspect, and the object box's area.

numpy only. The weak-slice search (``reportgen.evaluate``) bins these to find images a model
does worse on, and the data audit flags images of unusual quality with them. Every pixel
property is computed on the decoded image (the size the model sees), in chunks, so a data set
on disk is read once and never held whole in memory.

Luminance is ITU-R BT.601 luma, ``Y = (0.299 R + 0.587 G + 0.114 B) / 255`` in [0, 1] (the
grayscale Pillow writes); a one-channel image is its own luminance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reportgen.data.store import chunks

#: The property names, in the order :meth:`ImageProperties.as_dict` lists them.
NAMES = ("brightness", "contrast", "sharpness", "colourfulness", "width", "height", "aspect",
         "box_area")

#: Largest variance of the 4-neighbour Laplacian of a luminance in [0, 1] (a checkerboard of 0
#: and 1: every interior Laplacian is +4 or -4); :func:`sharpness` divides by it.
LAPLACIAN_VAR_MAX = 16.0

#: The luma weights times 1000, and the luminance of white in those units.
_LUMA_1000 = np.array([299, 587, 114], np.int64)
LUMA_UNIT = 255_000.0


@dataclass(frozen=True)
class ImageProperties:
    """Per-image properties of N images; every attribute is an (N,) float64 array.

    Attributes:
        brightness: mean luminance, in [0, 1].
        contrast: RMS contrast, the standard deviation of the luminance, in [0, 0.5].
        sharpness: variance of the 4-neighbour Laplacian of the luminance over the interior
            pixels, divided by :data:`LAPLACIAN_VAR_MAX`, so in [0, 1]: 0 for a constant image
            or a linear ramp, 1 for a one-pixel checkerboard of black and white. It is measured
            at the decoded size, so it depends on ``data.image_size`` as well as on the file.
        colourfulness: Hasler and Süsstrunk's (2003) metric on 0..255 RGB, so their scale
            applies (0 gray, about 33 "moderately", 59 "quite", 82 "highly" colourful); 0 for
            a one-channel image.
        width, height: the file's size in pixels after EXIF rotation, before resizing; NaN
            where unknown.
        aspect: width / height; NaN where unknown.
        box_area: the object box's area as a fraction of the image, in [0, 1]; NaN where the
            image has no box.
    """

    brightness: np.ndarray
    contrast: np.ndarray
    sharpness: np.ndarray
    colourfulness: np.ndarray
    width: np.ndarray
    height: np.ndarray
    aspect: np.ndarray
    box_area: np.ndarray

    def __len__(self) -> int:
        return len(self.brightness)

    def as_dict(self) -> dict[str, np.ndarray]:
        """``{name: (N,) float64}`` in the order of :data:`NAMES`."""
        return {name: getattr(self, name) for name in NAMES}

    def known(self) -> dict[str, np.ndarray]:
        """:meth:`as_dict` without the properties that are NaN for every image."""
        return {k: v for k, v in self.as_dict().items() if np.isfinite(v).any()}


def luminance(images: np.ndarray) -> np.ndarray:
    """(N, H, W, C) uint8 (C = 1 or 3) to (N, H, W) float64 luminance in [0, 1]."""
    return _luma_units(images) / LUMA_UNIT


def _luma_units(images: np.ndarray) -> np.ndarray:
    """Luminance in integer units of 1 / :data:`LUMA_UNIT` (exact, as float64), so a constant
    image has exactly zero contrast and sharpness."""
    x = np.asarray(images, np.int64)
    if x.shape[-1] == 1:
        return (x[..., 0] * 1000).astype(np.float64)
    return (x @ _LUMA_1000).astype(np.float64)


def sharpness(lum: np.ndarray) -> np.ndarray:
    """(N, H, W) luminance in [0, 1] to (N,) normalised Laplacian variance in [0, 1] (see
    :class:`ImageProperties`); 0 for images smaller than 3 × 3. Scaling ``lum`` by ``a``
    scales the result by ``a²``."""
    if lum.shape[1] < 3 or lum.shape[2] < 3:
        return np.zeros(len(lum))
    lap = (lum[:, :-2, 1:-1] + lum[:, 2:, 1:-1] + lum[:, 1:-1, :-2] + lum[:, 1:-1, 2:]
           - 4.0 * lum[:, 1:-1, 1:-1])
    return lap.reshape(len(lum), -1).var(axis=1) / LAPLACIAN_VAR_MAX


def colourfulness(images: np.ndarray) -> np.ndarray:
    """(N, H, W, C) uint8 to (N,) Hasler–Süsstrunk colourfulness on 0..255 RGB:
    ``sqrt(var(rg) + var(yb)) + 0.3 sqrt(mean(rg)² + mean(yb)²)`` with ``rg = R - G`` and
    ``yb = (R + G) / 2 - B``; 0 for one-channel images."""
    n = len(images)
    if images.shape[-1] == 1:
        return np.zeros(n)
    x = np.asarray(images, np.float64).reshape(n, -1, images.shape[-1])
    rg = x[..., 0] - x[..., 1]
    yb = 0.5 * (x[..., 0] + x[..., 1]) - x[..., 2]
    spread = np.sqrt(rg.var(axis=1) + yb.var(axis=1))
    centre = np.sqrt(rg.mean(axis=1) ** 2 + yb.mean(axis=1) ** 2)
    return spread + 0.3 * centre


def pixel_properties(images: np.ndarray) -> dict[str, np.ndarray]:
    """Brightness, contrast, sharpness and colourfulness of a batch.

    Args:
        images: (N, H, W, C) uint8 in [0, 255], C = 1 or 3.

    Returns:
        ``{"brightness", "contrast", "sharpness", "colourfulness"}``: (N,) float64 each.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"expected (N, H, W, 1 or 3) images, got shape {images.shape}")
    units = _luma_units(images)
    flat = units.reshape(len(units), -1)
    return {"brightness": flat.mean(axis=1) / LUMA_UNIT,
            "contrast": flat.std(axis=1) / LUMA_UNIT,
            "sharpness": sharpness(units) / LUMA_UNIT ** 2,
            "colourfulness": colourfulness(images)}


def box_area(boxes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(N, 4) boxes [x0, y0, x1, y1] in pixels of images of ``size`` (height, width) to (N,)
    area fractions in [0, 1], clipped to the image; NaN where a box has a NaN."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    h, w = size
    x0, x1 = np.clip(boxes[:, 0], 0, w), np.clip(boxes[:, 2], 0, w)
    y0, y1 = np.clip(boxes[:, 1], 0, h), np.clip(boxes[:, 3], 0, h)
    area = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None) / float(h * w)
    return np.where(np.isfinite(boxes).all(axis=1), area, np.nan)


def image_properties(images, *, sizes: np.ndarray | None = None,
                     boxes: np.ndarray | None = None) -> ImageProperties:
    """The :class:`ImageProperties` of N images, read in chunks.

    Args:
        images: (N, H, W, C) uint8, a numpy array or a :class:`~reportgen.data.store.Images`
            view (read chunk by chunk).
        sizes: (N, 2) source (width, height) in pixels, before resizing; None or non-positive
            entries: unknown (NaN).
        boxes: (N, 4) object boxes in pixels of ``images`` (NaN rows: none); None: no boxes.
    """
    n = len(images)
    parts = [pixel_properties(c) for c in chunks(images)] if n else []
    pix = {k: np.concatenate([p[k] for p in parts]) if parts else np.zeros(0)
           for k in ("brightness", "contrast", "sharpness", "colourfulness")}
    wh = np.full((n, 2), np.nan)
    if sizes is not None:
        wh = np.asarray(sizes, np.float64).reshape(n, 2)
        wh = np.where(wh > 0, wh, np.nan)
    area = np.full(n, np.nan) if boxes is None or not n else \
        box_area(boxes, (images.shape[1], images.shape[2]))
    return ImageProperties(**pix, width=wh[:, 0], height=wh[:, 1], aspect=wh[:, 0] / wh[:, 1],
                           box_area=area)


def split_properties(split) -> ImageProperties:
    """The :class:`ImageProperties` of a :class:`~reportgen.data.folder.Split` (its images,
    source sizes and boxes)."""
    return image_properties(split.images, sizes=split.sizes, boxes=split.boxes)
