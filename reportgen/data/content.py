"""Content hashes of decoded images: what keys per-image work (seeds, shards), never position.

An image's key is the SHA-256 of its decoded array (dtype, shape and bytes), so the same
picture gives the same key wherever it sits in a split, a batch, a shard or a subset.
"""

from __future__ import annotations

import hashlib

import numpy as np


def content_hash(image: np.ndarray) -> str:
    """SHA-256 (64 hex digits) of one decoded image: its dtype, its shape and its bytes.

    Args:
        image: (H, W, C) array of any dtype (uint8 as read, or float32 as fed to the model).

    Returns:
        The hex digest; equal arrays (same dtype and shape) give equal digests.
    """
    a = np.ascontiguousarray(image)
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())
    return h.hexdigest()


def image_generators(images: np.ndarray, seed: int) -> list[np.random.Generator]:
    """One random generator per image, seeded from ``seed`` and the image's
    :func:`content_hash` (never its position): the draws made for an image are the same
    whether it is explained alone, first or last in a batch, or in another subset.

    Args:
        images: (N, H, W, C) array.
        seed: the configured seed (a non-negative int).

    Returns:
        N independent ``numpy.random.Generator``; two equal images get equal streams.
    """
    return [np.random.default_rng([int(seed), int(content_hash(x)[:16], 16)])
            for x in np.asarray(images)]


def shard_of(digest: str, count: int) -> int:
    """The shard (0-based, in 0..count-1) an image of :func:`content_hash` ``digest`` falls in:
    its first 64 bits modulo ``count``."""
    return int(digest[:16], 16) % count


def content_hashes(images) -> list[str]:
    """:func:`content_hash` of every image of a split, in order, read a batch at a time.

    Args:
        images: (N, H, W, C) numpy array or :class:`reportgen.data.store.Images`.
    """
    from reportgen.data.store import chunks

    return [content_hash(x) for chunk in chunks(images) for x in chunk]
