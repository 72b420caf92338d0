"""The merge of the shards' method arrays (numpy, no model): each group's rows go back to
their positions, a method that failed on a shard is left out, seconds add up; and the
quality row made from merged values equals the one made from the whole set's."""

from __future__ import annotations

import numpy as np
import pytest

from reportgen.explain.sharded import merge_groups


def shard(samples, quality, sanity, **extra):
    """A shard's arrays: every value is its row's position x 10 (+ 1 for the second
    method), so the merged order can be read off."""
    out = {"samples.index": np.array(samples, np.int64), "grid.index": np.zeros(0, np.int64),
           "quality.index": np.array(quality, np.int64),
           "sanity.index": np.array(sanity, np.int64)}
    if samples:
        out["samples.a"] = np.array(samples, np.float32)[:, None] * 10
    if quality:
        out["quality.a.deletion"] = np.array(quality, np.float64) * 10
        out["quality.b.deletion"] = np.array(quality, np.float64) * 10 + 1
        out["quality.a.seconds"] = np.float64(len(quality))
    if sanity:
        out["sanity.a"] = np.array(sanity, np.float64) * 10
    out.update(extra)
    return out


def test_groups_go_back_to_their_positions_and_seconds_add_up():
    parts = [shard([2, 0], [3, 1], [1]), shard([1], [0, 2, 4], [0, 2]), shard([], [], [])]
    got = merge_groups(parts)
    np.testing.assert_array_equal(got["samples.index"], [0, 1, 2])
    np.testing.assert_array_equal(got["samples.a"][:, 0], [0, 10, 20])
    np.testing.assert_array_equal(got["quality.a.deletion"], [0, 10, 20, 30, 40])
    np.testing.assert_array_equal(got["quality.b.deletion"], [1, 11, 21, 31, 41])
    np.testing.assert_array_equal(got["sanity.a"], [0, 10, 20])
    assert float(got["quality.a.seconds"]) == 5.0  # 2 + 3 images' worth
    assert len(got["grid.index"]) == 0 and "grid.maps" not in got


def test_a_method_missing_from_a_shard_with_images_is_left_out():
    first = shard([0], [0, 1], [0])
    second = shard([1], [2], [1])
    del second["quality.b.deletion"]  # b failed on the second shard
    got = merge_groups([first, second])
    assert "quality.b.deletion" not in got
    np.testing.assert_array_equal(got["quality.a.deletion"], [0, 10, 20])
    # A shard without images of a group needs none of its arrays.
    got = merge_groups([shard([0, 1], [0], []), shard([], [1], [])])
    np.testing.assert_array_equal(got["samples.a"][:, 0], [0, 10])


@pytest.mark.parametrize("split_at", [1, 3, 6])
def test_a_quality_row_from_merged_values_equals_the_whole_sets(split_at):
    from reportgen.explain.suite import quality_row  # imports TensorFlow

    rng = np.random.default_rng(4)
    n = 7
    whole = {"deletion": rng.random(n), "insertion": rng.random(n),
             "pointing": np.where(rng.random(n) < 0.3, np.nan, rng.integers(0, 2, n)),
             "energy": rng.random(n), "tied": rng.random(n), "seconds": np.float64(n),
             "sanity": rng.uniform(-1, 1, 4)}
    order = rng.permutation(n)
    parts = []
    for rows in (order[:split_at], order[split_at:]):
        p = {"quality.index": rows, "sanity.index": rows[rows < 4],
             "quality.m.seconds": np.float64(len(rows)),
             "sanity.m": whole["sanity"][rows[rows < 4]]}
        p.update({f"quality.m.{k}": whole[k][rows]
                  for k in ("deletion", "insertion", "pointing", "energy", "tied")})
        parts.append(p)
    got = merge_groups(parts)
    values = {k: got[f"quality.m.{k}"] for k in ("deletion", "insertion", "pointing",
                                                 "energy", "tied", "seconds")}
    values["sanity"] = got["sanity.m"]
    assert quality_row(values, 2) == quality_row(whole, 2)
