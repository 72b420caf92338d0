"""RISE: its masks, and its saliency against the formula sum_i p(x * M_i) M_i / (N keep) with
the probabilities computed independently by calling the model."""

from __future__ import annotations

import numpy as np
import pytest

from reportgen.explain import rise
from reportgen.explain.methods import REGISTRY, Shape
from reportgen.explain.methods.rise import MaskSampler, RiseOptions


def test_masks_are_soft_shifted_and_keep_the_expected_share():
    sampler = MaskSampler(3000, 16, 16, cell_size=4, keep=0.3, seed=2)
    masks = sampler.masks(0, len(sampler))
    assert masks.shape == (3000, 16, 16) and masks.dtype == np.float32
    assert masks.min() >= 0.0 and masks.max() <= 1.0
    assert len(np.unique(masks)) > 2  # bilinear upsampling: soft edges
    assert masks.mean() == pytest.approx(0.3, abs=0.02)
    # Chunks are the same masks as one call, and a seed fixes them.
    again = MaskSampler(3000, 16, 16, cell_size=4, keep=0.3, seed=2)
    np.testing.assert_array_equal(np.concatenate([again.masks(0, 100), again.masks(100, 3000)]),
                                  masks)
    assert not np.array_equal(MaskSampler(30, 16, 16, 4, 0.3, seed=3).masks(0, 30),
                              masks[:30])


def small_cnn(keras, size=12):
    inp = keras.Input((size, size, 3))
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    h = keras.layers.GlobalAveragePooling2D()(h)
    return keras.Model(inp, keras.layers.Dense(3, activation="softmax")(h))


def test_saliency_is_the_mask_weighted_mean_probability(keras, rng):
    model = small_cnn(keras)
    x = rng.uniform(0, 1, (2, 12, 12, 3)).astype(np.float32)
    t = np.array([1, 2])
    got = rise(model, x, targets=t, masks=150, cell_size=4, keep=0.5, seed=4, batch_size=32)
    assert got.shape == (2, 12, 12) and got.dtype == np.float32
    masks = MaskSampler(150, 12, 12, 4, 0.5, 4).masks(0, 150)
    for i in range(2):
        p = np.asarray(model(x[i] * masks[..., None]))[:, t[i]]  # the softmax probability
        want = np.tensordot(p, masks, axes=1) / (150 * 0.5)
        np.testing.assert_allclose(got[i], want, rtol=1e-4, atol=1e-6)
    # The batch size only changes how masks are grouped.
    np.testing.assert_allclose(rise(model, x, targets=t, masks=150, cell_size=4, seed=4,
                                    batch_size=7), got, atol=1e-6)


def test_a_constant_model_gives_its_probability_times_the_mask_coverage(keras, rng):
    inp = keras.Input((8, 8, 3))
    dense = keras.layers.Dense(4)
    model = keras.Model(inp, dense(keras.layers.Flatten()(inp)))
    dense.set_weights([np.zeros((192, 4), np.float32), np.zeros(4, np.float32)])  # p = 1/4
    got = rise(model, rng.uniform(0, 1, (1, 8, 8, 3)).astype(np.float32), masks=400,
               cell_size=2, keep=0.25, seed=0)
    coverage = MaskSampler(400, 8, 8, 2, 0.25, 0).masks(0, 400).sum(axis=0) / (400 * 0.25)
    np.testing.assert_allclose(got[0], 0.25 * coverage, rtol=1e-5)
    assert got.mean() == pytest.approx(0.25, rel=0.1)


def test_evidence_on_the_left_lights_up_the_left(keras, rng):
    """logit1 - logit0 = 30 x (the mean of the left half) - 15: keeping left pixels raises
    p(1), right pixels do not change it, so the map is higher on the left than on the right
    (away from the middle, where upsampled cells straddle both halves)."""
    inp = keras.Input((16, 16, 1))
    dense = keras.layers.Dense(2)
    model = keras.Model(inp, dense(keras.layers.Flatten()(inp)))
    w = np.zeros((16, 16, 2), np.float32)
    w[:, :8, 1] = 30.0 / 128
    dense.set_weights([w.reshape(256, 2), np.array([15.0, 0.0], np.float32)])
    x = np.ones((1, 16, 16, 1), np.float32)
    got = rise(model, x, targets=1, masks=1000, cell_size=4, seed=1)[0]
    left, right = got[:, :6], got[:, 10:]
    assert left.mean() > right.mean() + 0.1 and left.min() > right.max()


def test_cost_is_one_pass_per_mask():
    assert REGISTRY["rise"].cost(RiseOptions(masks=500), Shape(64, 64)).forward == 501


def test_rise_runs_numpy_blas_on_one_thread(keras, monkeypatch):
    """RISE's numpy products run with OpenBLAS on one thread (its spinning threads slowed the
    model calls between them 1.65x): the limit holds inside, is lifted after, and RISE
    enters it."""
    from threadpoolctl import threadpool_info

    from reportgen.explain import common

    def blas_threads():
        return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}

    before = blas_threads()
    with common.one_blas_thread():
        assert blas_threads() <= {1}
    assert blas_threads() == before
    entered = []
    original = common.one_blas_thread

    def watched():
        entered.append(True)
        return original()

    monkeypatch.setattr(common, "one_blas_thread", watched)
    x = np.random.default_rng(0).random((2, 12, 12, 3)).astype(np.float32)
    rise(small_cnn(keras), x, masks=8, cell_size=4)
    assert entered == [True]
