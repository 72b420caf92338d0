"""Per-image pixel measures of the audit: a perceptual hash, a digest of the decoded pixels and
a few statistics, computed a chunk at a time from uint8 images (numpy arrays or
:class:`~reportgen.data.store.Images` views)."""

from __future__ import annotations

import hashlib

import numpy as np

from reportgen.data.store import chunks

#: The statistics of :func:`pixel_statistics`, in column order.
STATISTICS = ("brightness", "contrast", "log_sharpness", "colourfulness", "entropy")


def gray(images: np.ndarray) -> np.ndarray:
    """(N, H, W, C) uint8 images as (N, H, W) float32 luma in [0, 255] (ITU-R 601 weights;
    one channel is its own gray)."""
    x = np.asarray(images, np.float32)
    if x.shape[-1] == 1:
        return x[..., 0]
    return x[..., 0] * 0.299 + x[..., 1] * 0.587 + x[..., 2] * 0.114


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


def dhash(images) -> np.ndarray:
    """The 64-bit difference hash (dHash, Krawetz 2013) of each image: its gray version
    averaged to 8×9 blocks, bit ``8 r + c`` set where block (r, c) is darker than block
    (r, c + 1). Brightness, contrast, re-encoding and resizing barely change it.

    Args:
        images: (N, H, W, C) uint8.

    Returns:
        (N,) uint64.
    """
    weights = (np.uint64(1) << np.arange(64, dtype=np.uint64)).reshape(8, 8)
    out = [np.zeros(0, np.uint64)]
    for x in chunks(images, 256):
        small = block_mean(gray(x), 8, 9)
        bits = (small[:, :, :-1] < small[:, :, 1:]).astype(np.uint64)
        out.append((bits * weights).sum(axis=(1, 2), dtype=np.uint64))
    return np.concatenate(out)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bits that differ between uint64 hashes ``a`` and ``b`` (broadcast), as uint8."""
    return np.bitwise_count(np.bitwise_xor(a, b))


def digests(images) -> list[str]:
    """SHA-1 of each image's decoded pixels (its uint8 array at the size read, with its
    shape), so two files with the same pixels match whatever their format."""
    out = []
    for x in chunks(images, 256):
        for img in x:
            img = np.ascontiguousarray(img)
            out.append(hashlib.sha1(repr(img.shape).encode() + img.tobytes()).hexdigest())
    return out


def _entropy(g: np.ndarray) -> np.ndarray:
    """Shannon entropy in bits of each (H, W) image's 256-level gray histogram."""
    levels = np.clip(np.rint(g), 0, 255).astype(np.intp).reshape(len(g), -1)
    offsets = 256 * np.arange(len(g))[:, None]
    counts = np.bincount((levels + offsets).ravel(), minlength=256 * len(g))
    p = counts.reshape(len(g), 256) / levels.shape[1]
    logs = np.log2(np.where(p > 0, p, 1.0))
    return -(p * logs).sum(axis=1)


def _colourfulness(x: np.ndarray) -> np.ndarray:
    """Hasler and Süsstrunk's (2003) colourfulness of (N, H, W, C) images (0 for gray)."""
    if x.shape[-1] < 3:
        return np.zeros(len(x))
    r, g, b = (x[..., i].reshape(len(x), -1) for i in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    return (np.hypot(rg.std(1), yb.std(1)) + 0.3 * np.hypot(rg.mean(1), yb.mean(1)))


def laplacian_variance(g: np.ndarray) -> np.ndarray:
    """Variance of the 4-neighbour Laplacian of each (H, W) gray image (inner pixels): the
    usual focus measure (Pech-Pacheco et al. 2000); 0 for an image under 3 px."""
    if g.shape[1] < 3 or g.shape[2] < 3:
        return np.zeros(len(g))
    lap = (g[:, :-2, 1:-1] + g[:, 2:, 1:-1] + g[:, 1:-1, :-2] + g[:, 1:-1, 2:]
           - 4 * g[:, 1:-1, 1:-1])
    return lap.reshape(len(g), -1).var(axis=1)


def pixel_statistics(images) -> np.ndarray:
    """:data:`STATISTICS` of each image: mean and standard deviation of its gray levels
    (0..1), log(1 + Laplacian variance) of its gray levels (0..255), colourfulness (0..255
    scale) and gray-histogram entropy (bits, 0..8).

    Args:
        images: (N, H, W, C) uint8.

    Returns:
        (N, 5) float64.
    """
    out = [np.zeros((0, len(STATISTICS)))]
    for x in chunks(images, 256):
        xf = np.asarray(x, np.float32)
        g = gray(xf)
        flat = g.reshape(len(g), -1)
        out.append(np.stack([flat.mean(1) / 255, flat.std(1) / 255,
                             np.log1p(laplacian_variance(g)), _colourfulness(xf),
                             _entropy(g)], axis=1).astype(np.float64))
    return np.concatenate(out)
