"""Strategies: a planted shortcut forms its own flagged strategy, clean classes raise no flag,
the eigengap finds the number of blocks of an affinity (known answers, numpy only)."""

from __future__ import annotations

import numpy as np
import pytest

from reportgen.explain.dataset import strategies as st

HW = (32, 32)


def blob(cy: float, cx: float, sigma: float = 2.0, side: int = 8) -> np.ndarray:
    """An (side, side) Gaussian bump centred at (cy, cx) in cell units."""
    y, x = np.mgrid[0:side, 0:side] + 0.5
    return np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * sigma ** 2))


def clean_class(rng, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Maps on the object (a box around a jittered centre) and the boxes in 32 px pixels."""
    maps, boxes = [], []
    for _ in range(n):
        cy, cx = rng.uniform(3, 5, 2)
        maps.append(blob(cy, cx, 1.2) + 0.05 * rng.random((8, 8)))
        boxes.append([(cx - 2) * 4, (cy - 2) * 4, (cx + 2) * 4, (cy + 2) * 4])
    return np.array(maps), np.array(boxes, np.float32)


def planted(rng, n_clean: int, n_mark: int):
    """A class whose first ``n_mark`` images are decided by the lower-right corner."""
    maps, boxes = clean_class(rng, n_clean + n_mark)
    for i in range(n_mark):
        maps[i] = blob(7.4, 7.4, 0.8) + 0.05 * rng.random((8, 8))
    return maps, boxes


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_planted_corner_forms_its_own_flagged_strategy(seed):
    rng = np.random.default_rng(seed)
    maps, boxes = planted(rng, 40, 17)
    idx = np.arange(len(maps))
    right = rng.random(len(maps)) < 0.9
    cs = st.class_strategies(0, maps, idx, right, boxes, HW, seed)
    flagged = [s for s in cs.strategies if s.flagged]
    assert len(flagged) == 1
    assert set(flagged[0].members) == set(range(17))
    assert flagged[0].where == "the lower-right corner"
    assert flagged[0].box_outside_share > 0.8
    # accuracy and interval of the members, by hand
    ok = int(right[:17].sum())
    assert flagged[0].accuracy == pytest.approx(ok / 17)
    lo, hi = flagged[0].ci
    assert lo <= ok / 17 <= hi


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_clean_classes_raise_no_flag(seed):
    rng = np.random.default_rng(seed)
    maps, boxes = clean_class(rng, 50)
    cs = st.class_strategies(1, maps, np.arange(50), np.ones(50, bool), boxes, HW, seed)
    assert cs.strategies and not any(s.flagged for s in cs.strategies)
    assert sum(len(s.members) for s in cs.strategies) == 50
    # without boxes, centred evidence is not on the border either
    cs = st.class_strategies(1, maps, np.arange(50), np.ones(50, bool),
                             np.full((50, 4), np.nan), HW, seed)
    assert not any(s.flagged for s in cs.strategies)
    assert all(s.box_outside_share is None for s in cs.strategies)


def test_without_boxes_the_border_share_flags_a_corner():
    rng = np.random.default_rng(5)
    maps, _ = planted(rng, 30, 15)
    cs = st.class_strategies(0, maps, np.arange(45), np.ones(45, bool),
                             np.full((45, 4), np.nan), HW, 0)
    flagged = [s for s in cs.strategies if s.flagged]
    assert len(flagged) == 1 and set(flagged[0].members) == set(range(15))
    assert flagged[0].border_share >= st.BORDER_FLAG


def test_too_few_images_are_not_clustered():
    maps = np.random.default_rng(0).random((st.MIN_IMAGES - 1, 8, 8))
    cs = st.class_strategies(0, maps, np.arange(len(maps)), np.ones(len(maps), bool),
                             np.full((len(maps), 4), np.nan), HW)
    assert cs.strategies == [] and "too few" in cs.note


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_eigengap_finds_the_blocks_of_a_block_affinity(k):
    rng = np.random.default_rng(k)
    sizes = rng.integers(5, 12, k)
    labels = np.repeat(np.arange(k), sizes)
    same = labels[:, None] == labels[None, :]
    a = np.where(same, 0.8 + 0.2 * rng.random(same.shape), 0.02 * rng.random(same.shape))
    a = (a + a.T) / 2
    np.fill_diagonal(a, 0)
    vals, _ = st.laplacian_spectrum(a)
    assert st.eigengap(vals) == k


def test_border_share_and_box_shares_by_hand():
    m = np.zeros((1, st.SIDE, st.SIDE))
    m[0, 0, 0], m[0, 8, 8] = 0.25, 0.75
    assert m[0][st.border_mask()].sum() == pytest.approx(0.25)
    # box covering the right half of a 32x32 image: cells with centres x >= 16
    out, area = st.box_shares(m, np.array([[16.0, 0.0, 32.0, 32.0]]), HW)
    assert out[0] == pytest.approx(0.25) and area[0] == pytest.approx(0.5)


def test_strategy_ids_index_the_flat_list():
    a = st.ClassStrategies(0, 3, [st.Strategy([0, 2], 2, 1.0, (0.3, 1.0), 0.1, None, None,
                                              False, "the centre", np.zeros((2, 2)), 0)])
    b = st.ClassStrategies(1, 1, [st.Strategy([1], 1, 1.0, (0.1, 1.0), 0.1, None, None,
                                              False, "the centre", np.zeros((2, 2)), 1)])
    assert st.strategy_ids([a, b], 4).tolist() == [0, 1, 0, -1]


def test_nmf_recovers_a_planted_low_rank_matrix():
    from reportgen.explain.dataset import concepts as cn

    rng = np.random.default_rng(0)
    u, v = rng.random((200, 3)), rng.random((3, 12))
    x = u @ v
    fu, fv = cn.nmf(x, 3, seed=0, steps=2000)
    assert (fu >= 0).all() and (fv >= 0).all()
    assert np.linalg.norm(x - fu @ fv) / np.linalg.norm(x) < 0.02
    # the same seed gives the same factors
    gu, _ = cn.nmf(x, 3, seed=0, steps=50)
    hu, _ = cn.nmf(x, 3, seed=0, steps=50)
    assert np.array_equal(gu, hu)


def test_contributions_einsum_by_loops():
    from reportgen.explain.dataset import concepts as cn

    rng = np.random.default_rng(1)
    u, v, g = rng.random((2, 3, 3, 2)), rng.random((2, 4)), rng.normal(size=(2, 3, 3, 4))
    hand = np.zeros((2, 2))
    for n in range(2):
        for j in range(2):
            for y in range(3):
                for x in range(3):
                    hand[n, j] += u[n, y, x, j] * (v[j] @ g[n, y, x])
    assert np.allclose(cn.contributions(u, v, g), hand)


def test_a_large_class_is_clustered_on_a_sample_and_the_rest_assigned(monkeypatch):
    monkeypatch.setattr(st, "MAX_CLUSTERED", 30)
    rng = np.random.default_rng(3)
    maps, boxes = planted(rng, 60, 30)
    cs = st.class_strategies(0, maps, np.arange(90), np.ones(90, bool), boxes, HW, 0)
    flagged = [s for s in cs.strategies if s.flagged]
    assert len(flagged) == 1 and set(flagged[0].members) == set(range(30))
    assert sum(len(s.members) for s in cs.strategies) == 90
    assert "sample of 30 of its 90" in cs.note


def test_diffuse_maps_flag_the_strategy_well_below_the_rest_of_its_class():
    """Broad maps of a small model: clean images hold about twice the box's share, the marked
    ones 1.2 times (not under half of it, so only the class-relative rule sees them)."""
    def strategy(n, outside, area=0.2):
        return st.Strategy(list(range(n)), n, 1.0, (0.0, 1.0), 0.3, outside, area, False,
                           "the centre", np.zeros((2, 2)), 0)

    # box ratios by hand: (1 - 0.76) / 0.2 = 1.2 against (1 - 0.6) / 0.2 = 2.0
    marked, clean, clean2 = strategy(17, 0.76), strategy(19, 0.6), strategy(20, 0.6)
    st.flag_against_class([marked, clean, clean2])
    assert marked.flagged and not clean.flagged and not clean2.flagged
    # clean strategies that differ a little (1.8 against 2.0) stay unflagged
    a, b = strategy(10, 0.64), strategy(12, 0.6)
    st.flag_against_class([a, b])
    assert not a.flagged and not b.flagged
    # a single strategy has no rest of its class to be judged against
    lone = strategy(30, 0.76)
    st.flag_against_class([lone])
    assert not lone.flagged
