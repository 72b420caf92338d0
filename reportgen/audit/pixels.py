"""Per-image pixel measures of the audit: a perceptual hash, a digest of the decoded pixels and
a few statistics (the image properties of :mod:`reportgen.data.properties` and an entropy),
computed a chunk at a time from uint8 images (numpy arrays or
:class:`~reportgen.data.store.Images` views)."""

from __future__ import annotations

import hashlib

import numpy as np

from reportgen.data.properties import LAPLACIAN_VAR_MAX, luminance, pixel_properties
from reportgen.data.store import chunks

#: The statistics of :func:`pixel_statistics`, in column order.
STATISTICS = ("brightness", "contrast", "log_sharpness", "colourfulness", "entropy")


def _bins(n: int, parts: int) -> np.ndarray:
    """The start of each of ``parts`` equal bins of ``n`` pixels (bins repeat pixels when
    ``n < parts``)."""
    if n >= parts:
        return np.round(np.linspace(0, n, parts + 1)[:-1]).astype(np.intp)
    return np.floor(np.arange(parts) * n / parts).astype(np.intp)


def block_mean(g: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """(N, H, W) float images averaged into (N, rows, cols) blocks of (nearly) equal size
    (area resampling; an image smaller than the grid repeats its pixels)."""
    h, w = g.shape[1:]
    if h < rows or w < cols:
        return g[:, _bins(h, rows)][:, :, _bins(w, cols)]
    r, c = _bins(h, rows), _bins(w, cols)
    sums = np.add.reduceat(np.add.reduceat(g, r, axis=1), c, axis=2)
    sizes = np.diff(np.append(r, h))[:, None] * np.diff(np.append(c, w))[None, :]
    return sums / sizes


#: Bit ``8 r + c`` of a dHash.
_WEIGHTS = (np.uint64(1) << np.arange(64, dtype=np.uint64)).reshape(8, 8)


def _dhash(lum: np.ndarray) -> np.ndarray:
    small = block_mean(lum, 8, 9)
    bits = (small[:, :, :-1] < small[:, :, 1:]).astype(np.uint64)
    return (bits * _WEIGHTS).sum(axis=(1, 2), dtype=np.uint64)


def dhash(images) -> np.ndarray:
    """The 64-bit difference hash (dHash, Krawetz 2013) of each image: its luminance
    averaged to 8×9 blocks, bit ``8 r + c`` set where block (r, c) is darker than block
    (r, c + 1). Brightness, contrast, re-encoding and resizing barely change it.

    Args:
        images: (N, H, W, C) uint8.

    Returns:
        (N,) uint64.
    """
    return measure(images)[1]


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bits that differ between uint64 hashes ``a`` and ``b`` (broadcast), as uint8."""
    return np.bitwise_count(np.bitwise_xor(a, b))


def _digests(x: np.ndarray) -> list[str]:
    return [hashlib.sha1(repr(img.shape).encode() + np.ascontiguousarray(img).tobytes())
            .hexdigest() for img in x]


def digests(images) -> list[str]:
    """SHA-1 of each image's decoded pixels (its uint8 array at the size read, with its
    shape), so two files with the same pixels match whatever their format."""
    return measure(images)[0]


def _entropy(g: np.ndarray) -> np.ndarray:
    """Shannon entropy in bits of each (H, W) image's 256-level gray histogram."""
    levels = np.clip(np.rint(g), 0, 255).astype(np.intp).reshape(len(g), -1)
    offsets = 256 * np.arange(len(g))[:, None]
    counts = np.bincount((levels + offsets).ravel(), minlength=256 * len(g))
    p = counts.reshape(len(g), 256) / levels.shape[1]
    logs = np.log2(np.where(p > 0, p, 1.0))
    return -(p * logs).sum(axis=1)


def _statistics(x: np.ndarray, lum: np.ndarray) -> np.ndarray:
    p = pixel_properties(x)
    lap = p["sharpness"] * LAPLACIAN_VAR_MAX * 255.0 ** 2
    return np.stack([p["brightness"], p["contrast"], np.log1p(lap), p["colourfulness"],
                     _entropy(255 * lum)], axis=1)


def pixel_statistics(images) -> np.ndarray:
    """:data:`STATISTICS` of each image: brightness and contrast (mean and standard deviation
    of the luminance, 0..1), log(1 + 255² × the Laplacian variance of the luminance), the
    colourfulness (0..255 scale; :mod:`reportgen.data.properties`) and the entropy of the
    256-level luminance histogram (bits, 0..8).

    Args:
        images: (N, H, W, C) uint8.

    Returns:
        (N, 5) float64.
    """
    return measure(images)[2]


def measure(images) -> tuple[list[str], np.ndarray, np.ndarray]:
    """:func:`digests`, :func:`dhash` and :func:`pixel_statistics` of the images, reading
    them once, a chunk at a time."""
    out: tuple[list, list, list] = ([], [np.zeros(0, np.uint64)],
                                    [np.zeros((0, len(STATISTICS)))])
    for x in chunks(images, 256):
        lum = luminance(x)
        out[0].extend(_digests(x))
        out[1].append(_dhash(lum))
        out[2].append(_statistics(x, lum))
    return out[0], np.concatenate(out[1]), np.concatenate(out[2])
