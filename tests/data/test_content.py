"""Content hashes and per-image generators: keyed by the image's bytes, never its position."""

from __future__ import annotations

import hashlib

import numpy as np

from reportgen.data.content import content_hash, content_hashes, image_generators, shard_of


def test_content_hash_is_sha256_of_dtype_shape_and_bytes():
    x = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    want = hashlib.sha256(b"|u1(2, 2, 3)" + bytes(range(12))).hexdigest()
    assert content_hash(x) == want
    assert content_hash(x.astype(np.float32)) != want  # another dtype, another image
    assert content_hash(np.asfortranarray(x)) == want  # the layout in memory does not count


def test_generators_follow_the_images_not_their_positions(rng):
    x = rng.integers(0, 256, (5, 4, 4, 3), dtype=np.uint8)
    perm = np.array([3, 0, 4, 2, 1])
    draws = np.stack([g.random(6) for g in image_generators(x, seed=9)])
    permuted = np.stack([g.random(6) for g in image_generators(x[perm], seed=9)])
    np.testing.assert_array_equal(permuted, draws[perm])
    alone = image_generators(x[2:3], seed=9)[0].random(6)
    np.testing.assert_array_equal(alone, draws[2])
    other_seed = np.stack([g.random(6) for g in image_generators(x, seed=10)])
    assert not np.array_equal(other_seed, draws)
    assert len({tuple(d) for d in draws}) == 5  # distinct images, distinct streams


def test_hashes_of_a_split_and_the_shard_of_a_digest(rng):
    x = rng.integers(0, 256, (70, 3, 3, 3), dtype=np.uint8)  # more than one read chunk
    hashes = content_hashes(x)
    assert hashes == [content_hash(i) for i in x]
    assert [shard_of(h, 3) for h in hashes] == [int(h[:16], 16) % 3 for h in hashes]
    assert {shard_of(h, 3) for h in hashes} == {0, 1, 2}
