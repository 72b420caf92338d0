"""Exact and near duplicates: planted cross-split copies are found, distinct images are not
paired even where their features alone would pair them."""

from __future__ import annotations

import numpy as np

from reportgen.audit import duplicates as dup
from reportgen.audit.pixels import block_mean, dhash, digests, hamming


def test_dhash_bits_by_hand():
    # A 9-pixel-wide gray ramp: each block brighter than its left neighbour, every bit set;
    # mirrored, none; a flat image, none (equal blocks are not darker).
    ramp = np.tile(np.arange(9, dtype=np.uint8) * 20, (8, 1))[None, :, :, None]
    assert int(dhash(ramp)[0]) == 2 ** 64 - 1
    assert int(dhash(ramp[:, :, ::-1])[0]) == 0
    assert int(dhash(np.full((1, 8, 9, 1), 7, np.uint8))[0]) == 0
    # One row darker-to-brighter only in its first pair: bit 8 r + 0 of row r = 3.
    img = np.zeros((1, 8, 9, 1), np.uint8)
    img[0, 3, 1:] = 50
    assert int(dhash(img)[0]) == 1 << 24
    assert hamming(np.uint64(0b1011), np.uint64(0b0110)) == 3


def test_block_mean_is_area_averaging():
    g = np.arange(16, dtype=np.float64).reshape(1, 4, 4)
    np.testing.assert_allclose(block_mean(g, 2, 2)[0], [[2.5, 4.5], [10.5, 12.5]])
    assert block_mean(g, 8, 9).shape == (1, 8, 9)  # smaller than the grid: pixels repeat


def test_exact_pairs_pair_each_copy_with_the_first():
    a, b = dup.exact_pairs(["x", "y", "x", "z", "x", "y"])
    assert list(zip(a.tolist(), b.tolist(), strict=True)) == [(0, 2), (0, 4), (1, 5)]
    assert digests(np.zeros((2, 4, 4, 1), np.uint8))[0] != \
        digests(np.zeros((2, 2, 8, 1), np.uint8))[0]  # same bytes, another shape


def class_features(rng, labels, noise=0.02, dims=16):
    """Features of a model that maps every image of a class to about the same point: pairs of
    one class are within cosine distance ~0.01, so features alone pair all of them."""
    centres = rng.normal(0, 1, (labels.max() + 1, dims))
    return centres[labels] + noise * rng.normal(0, 1, (len(labels), dims))


def test_clean_data_gives_no_near_duplicates(rng, textures):
    images = textures(rng, 300)
    labels = rng.integers(0, 3, 300)
    f = class_features(rng, labels)
    a, b, d, bits = dup.near_pairs(dhash(images), f)
    assert len(a) == 0
    # ... though the features alone put thousands of pairs under the distance threshold.
    u = dup.unit_rows(f)
    close = (1 - u @ u.T <= dup.FEATURE_DISTANCE).sum() - len(f)
    assert close // 2 > 10_000


def test_planted_exact_and_near_copies_are_found(rng, textures, reencode):
    train = textures(rng, 200)
    test = textures(rng, 50)
    test[7] = train[3]                      # an exact copy
    test[20] = reencode(train[11])          # brightened by 10 and saved as a JPEG
    test[33] = reencode(train[150], 25, 60)
    images = np.concatenate([train, test])
    labels = rng.integers(0, 3, 250)
    f = class_features(rng, labels)
    for i, j in ((207, 3), (220, 11), (233, 150)):
        labels[i] = labels[j]
        f[i] = f[j] + 0.02 * rng.normal(0, 1, f.shape[1])  # the model sees the same image
    pairs = dup.duplicate_pairs(digests(images), dhash(images), f)
    found = list(zip(pairs.a.tolist(), pairs.b.tolist(), pairs.kind, strict=True))
    assert found[0] == (3, 207, "exact") and pairs.distance[0] == 0
    assert sorted(found[1:]) == [(11, 220, "near"), (150, 233, "near")]
    assert (pairs.bits[1:] <= dup.HASH_BITS).all()
    assert (pairs.distance[1:] <= dup.FEATURE_DISTANCE).all()
    # Without features, exact copies only.
    assert dup.duplicate_pairs(digests(images), dhash(images), None).kind == ["exact"]


def test_hash_pairs_find_exactly_the_pairs_within_the_bits(rng):
    """The banded search finds what comparing every pair finds, on hashes built to be near
    one another (a few random bits flipped) and on unrelated ones."""
    base = rng.integers(0, 2 ** 63, 300, dtype=np.uint64)
    flips = rng.integers(0, 64, (300, 8))
    near = base.copy()
    for i in range(300):
        for bit in flips[i, : i % 9]:  # 0 to 8 bits flipped (fewer where one repeats)
            near[i] ^= np.uint64(1) << np.uint64(bit)
    hashes = np.concatenate([base, near])
    bits = hamming(hashes[:, None], hashes[None, :])
    want = sorted(zip(*np.nonzero(np.triu(bits <= dup.HASH_BITS, 1)), strict=True))
    a, b = dup.hash_pairs(hashes)
    assert sorted(zip(a.tolist(), b.tolist(), strict=True)) == \
        [(int(i), int(j)) for i, j in want]
    assert len(want) > 200  # most of the 300 planted pairs (0 to 6 bits) are in it
