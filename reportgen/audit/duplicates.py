"""Exact and near duplicates among images of every split, in one global index (the caller maps
it back to splits): exact ones share their decoded pixels; near ones need a perceptual hash
match *and* close features, since feature similarity alone pairs many distinct images that
look alike to the model (measured on 16-px textures: 8,107 false pairs at cosine >= 0.99)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reportgen.audit.pixels import hamming

#: A near duplicate's dHashes differ in at most this many of their 64 bits.
HASH_BITS = 6
#: ... and its features' cosine distance (1 - cosine similarity) is at most this.
FEATURE_DISTANCE = 0.05
#: Rows of a distance matrix computed at a time (:mod:`.outliers`).
ROWS = 256


@dataclass
class Pairs:
    """Pairs of images (global indices ``a`` < ``b``), closest first.

    Attributes:
        a, b: (P,) int.
        kind: P strings, "exact" or "near".
        distance: (P,) float: feature cosine distance (0 for exact copies).
        bits: (P,) int: dHash bits that differ.
    """

    a: np.ndarray
    b: np.ndarray
    kind: list[str]
    distance: np.ndarray
    bits: np.ndarray

    def __len__(self) -> int:
        return len(self.a)


def exact_pairs(digests: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) with a < b for every image whose digest an earlier image has, ``a`` that first
    image (a group of m copies is m - 1 pairs, not m (m - 1) / 2)."""
    first: dict[str, int] = {}
    a, b = [], []
    for i, d in enumerate(digests):
        if d in first:
            a.append(first[d])
            b.append(i)
        else:
            first[d] = i
    return np.asarray(a, np.int64), np.asarray(b, np.int64)


def unit_rows(features: np.ndarray) -> np.ndarray:
    """(N, D) features scaled to unit length as float32 (a zero row stays zero)."""
    f = np.asarray(features, np.float32)
    f = f.reshape(len(f), -1) if f.size else np.zeros((len(f), 1), np.float32)
    norm = np.linalg.norm(f, axis=1, keepdims=True)
    return f / np.where(norm > 0, norm, 1)


def hash_pairs(hashes: np.ndarray, max_bits: int = HASH_BITS) -> tuple[np.ndarray, np.ndarray]:
    """Every pair (a < b) of 64-bit hashes at most ``max_bits`` bits apart, without comparing
    all pairs: the bits are cut into ``max_bits + 1`` bands, and two hashes that differ in at
    most ``max_bits`` bits agree on at least one band (pigeonhole), so only hashes sharing a
    band's value are compared.

    Args:
        hashes: (N,) uint64.

    Returns:
        (a, b): (P,) int64 each, sorted by a, then b.
    """
    bands = max_bits + 1
    widths = np.full(bands, 64 // bands)
    widths[:64 % bands] += 1
    found = [(np.zeros(0, np.int64), np.zeros(0, np.int64))]
    shift = 0
    for w in widths:
        key = (hashes >> np.uint64(shift)) & np.uint64((1 << int(w)) - 1)
        shift += int(w)
        order = np.argsort(key, kind="stable")
        k = key[order]
        starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
        for s, e in zip(starts, np.r_[starts[1:], len(k)], strict=True):
            if e - s > 1:
                idx = np.sort(order[s:e])
                r, c = np.nonzero(np.triu(hamming(hashes[idx, None], hashes[None, idx])
                                          <= max_bits, 1))
                found.append((idx[r], idx[c]))
    a, b = (np.concatenate(v).astype(np.int64) for v in zip(*found, strict=True))
    pair = np.unique(a * max(1, len(hashes)) + b)
    return pair // max(1, len(hashes)), pair % max(1, len(hashes))


def near_pairs(hashes: np.ndarray, features: np.ndarray, max_bits: int = HASH_BITS,
               max_distance: float = FEATURE_DISTANCE) -> tuple[np.ndarray, ...]:
    """Every pair (a < b) whose hashes differ in at most ``max_bits`` bits
    (:func:`hash_pairs`) and whose features are within cosine distance ``max_distance``.

    Args:
        hashes: (N,) uint64 dHashes.
        features: (N, D) float features.

    Returns:
        (a, b, distance, bits) arrays of the pairs.
    """
    f = unit_rows(features)
    a, b = hash_pairs(hashes, max_bits)
    dist = np.zeros(len(a))
    for start in range(0, len(a), 65536):  # a few MB of feature rows at a time
        sl = slice(start, start + 65536)
        dist[sl] = 1.0 - np.einsum("ij,ij->i", f[a[sl]], f[b[sl]])
    close = dist <= max_distance
    a, b = a[close], b[close]
    return a, b, dist[close], hamming(hashes[a], hashes[b]).astype(np.int64)


def duplicate_pairs(digests: list[str], hashes: np.ndarray, features: np.ndarray | None
                    ) -> Pairs:
    """Exact copies (same decoded pixels), then near duplicates (:func:`near_pairs`; none
    without ``features``) that are not exact copies, each ranked by feature distance, then
    hash bits, then index."""
    ea, eb = exact_pairs(digests)
    empty: np.ndarray = np.zeros(0, np.int64)
    na, nb, nd, nbits = empty, empty, empty.astype(np.float64), empty
    if features is not None:
        na, nb, nd, nbits = near_pairs(hashes, features)
        # A copy is near everything its original is near: only the original's pairs count.
        same, copies = set(zip(ea.tolist(), eb.tolist(), strict=True)), set(eb.tolist())
        keep = np.asarray([(x, y) not in same and x not in copies and y not in copies
                           for x, y in zip(na.tolist(), nb.tolist(), strict=True)], bool)
        na, nb, nd, nbits = na[keep], nb[keep], nd[keep], nbits[keep]
    eo, no = np.lexsort((eb, ea)), np.lexsort((nb, na, nbits, nd))
    return Pairs(np.concatenate([ea[eo], na[no]]), np.concatenate([eb[eo], nb[no]]),
                 ["exact"] * len(ea) + ["near"] * len(na),
                 np.concatenate([np.zeros(len(ea)), nd[no]]),
                 np.concatenate([np.zeros(len(ea), np.int64), nbits[no].astype(np.int64)]))
