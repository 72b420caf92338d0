"""Robust image decoding with Pillow: any common mode in, (H, W, C) uint8 out."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

#: File endings read as images (compared lower-case).
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})

#: Largest image accepted, in pixels; larger files are refused before they are decoded
#: (Pillow's decompression-bomb guard, made strict).
MAX_PIXELS = 64_000_000

#: Background that transparent pixels are composited on (white, as browsers show them).
BACKGROUND = (255, 255, 255)


class ImageDecodeError(Exception):
    """The file is not a readable image; the message says why."""


def _to_8bit_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB, compositing transparency on ``BACKGROUND``."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if arr.max() > 255 else 255.0
        arr = np.clip(np.round(arr / top * 255.0), 0, 255).astype(np.uint8)
        return Image.fromarray(arr, mode="L").convert("RGB")
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        return Image.fromarray(arr.astype(np.uint8), mode="L").convert("RGB")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        img = img.convert("RGBA")
        bg = Image.new("RGBA", img.size, BACKGROUND + (255,))
        return Image.alpha_composite(bg, img).convert("RGB")
    return img.convert("RGB")


def decode_image(path: str | Path, size: tuple[int, int], channels: int = 3
                 ) -> tuple[np.ndarray, tuple[int, int]]:
    """Read an image file, apply its EXIF orientation, convert and resize it.

    Args:
        path: the image file.
        size: (height, width) of the result; resized with bilinear filtering (Pillow, with
            antialiasing when shrinking).
        channels: 3 (RGB) or 1 (grayscale, ITU-R 601-2 luma).

    Returns:
        ``(array, (orig_width, orig_height))``: array of shape (height, width, channels), uint8
        in [0, 255], and the size of the file's image after EXIF rotation (to scale boxes).

    Raises:
        ImageDecodeError: not an image, truncated, corrupt, empty, or over ``MAX_PIXELS``.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise ImageDecodeError("empty file (0 bytes)")
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as opened:
                w, h = opened.size
                if w * h > MAX_PIXELS:
                    raise ImageDecodeError(f"{w}x{h} pixels is over the limit of {MAX_PIXELS:,} "
                                           "(possible decompression bomb)")
                opened.load()
                img = ImageOps.exif_transpose(opened)
                orig = img.size
                img = _to_8bit_rgb(img)
                if channels == 1:
                    img = img.convert("L")
                elif channels != 3:
                    raise ImageDecodeError(f"unsupported channel count {channels}")
                if img.size != (size[1], size[0]):
                    img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)
                arr = np.asarray(img, dtype=np.uint8)
    except ImageDecodeError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageDecodeError(f"decompression bomb refused: {e}") from None
    except (OSError, ValueError, SyntaxError, Image.UnidentifiedImageError) as e:
        msg = str(e).split("\n")[0] or type(e).__name__
        if isinstance(e, Image.UnidentifiedImageError):
            msg = "not a recognised image format"
        raise ImageDecodeError(msg) from None
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return arr, orig


def decode_or_reason(path: str | Path, size: tuple[int, int], channels: int = 3
                     ) -> tuple[np.ndarray, tuple[int, int]] | str:
    """:func:`decode_image`, or the reason the file is skipped as a string (a decoder bug
    included: one bad file never ends a build)."""
    try:
        return decode_image(path, size, channels)
    except ImageDecodeError as e:
        return str(e)
    except Exception as e:
        return f"unreadable ({type(e).__name__}: {e})"


#: Pillow modes of images stored as grayscale (one channel, with or without alpha).
GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "F"})


def probe_image(path: str | Path) -> tuple[int, int, str] | None:
    """(width, height, Pillow mode) of an image file from its header alone (nothing is
    decoded; EXIF rotation not applied); None when it cannot be read."""
    try:
        with Image.open(path) as img:
            return img.size[0], img.size[1], img.mode
    except Exception:  # any unreadable file is only left out of the summary
        return None
