"""Small synthetic images for the audit: smooth random textures (distinct images differ in
about half of their dHash bits) and their edited copies."""

from __future__ import annotations

import io

import numpy as np
import pytest


def make_textures(rng: np.random.Generator, n: int, side: int = 32) -> np.ndarray:
    """(n, side, side, 3) uint8: 8×8 random colour blocks, each side / 8 pixels wide."""
    blocks = rng.integers(0, 256, (n, 8, 8, 3)).astype(np.uint8)
    return np.repeat(np.repeat(blocks, side // 8, axis=1), side // 8, axis=2)


def reencoded(image: np.ndarray, brighter: int = 10, quality: int = 80) -> np.ndarray:
    """``image`` brightened by ``brighter`` gray levels and saved as a JPEG of ``quality``."""
    from PIL import Image

    buf = io.BytesIO()
    bright = np.clip(image.astype(int) + brighter, 0, 255).astype(np.uint8)
    Image.fromarray(bright).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


@pytest.fixture(scope="session")
def textures():
    return make_textures


@pytest.fixture(scope="session")
def reencode():
    return reencoded
