"""Occlusion: known answers on a linear model, where the logit drop of a patch is the sum of
weight x (pixel - baseline) over it."""

from __future__ import annotations

import numpy as np
import pytest

from reportgen.explain import Explainer, occlusion
from reportgen.explain.methods import REGISTRY, Shape
from reportgen.explain.methods.occlusion import OcclusionOptions, anchors


def linear_model(keras, h=8, w=8, c=3, k=3, softmax=True, seed=0):
    """logits = W . flatten(x) + b (softmax on top: occlusion must use the logit)."""
    inp = keras.Input((h, w, c))
    dense = keras.layers.Dense(k, activation="softmax" if softmax else None, name="head")
    model = keras.Model(inp, dense(keras.layers.Flatten()(inp)))
    r = np.random.default_rng(seed)
    dense.set_weights([r.normal(size=(h * w * c, k)).astype(np.float32),
                       r.normal(size=k).astype(np.float32)])
    return model


def contribution(model, x, t, baseline):
    """(N, H, W): sum over channels of W[:, t] * (x - baseline), per pixel."""
    n, h, w, c = x.shape
    weights = model.get_layer("head").get_weights()[0]  # (H*W*C, K)
    per = weights[:, t].T.reshape(n, h, w, c)
    return (per * (x - baseline)).sum(axis=-1)


def by_hand(model, x, t, patch, stride, baseline=0.0):
    """The definition, patch by patch: the mean over covering patches of the patch's summed
    contribution (patches at every stride while they fit, plus one flush with the far edge)."""
    n, h, w, _ = x.shape
    contrib = contribution(model, x, t, baseline)

    def starts(size):
        s = list(range(0, size - patch + 1, stride))
        if s[-1] + patch < size and stride <= patch:
            s.append(size - patch)
        return s

    total = np.zeros((n, h, w))
    count = np.zeros((h, w))
    for y in starts(h):
        for q in starts(w):
            drop = contrib[:, y:y + patch, q:q + patch].sum(axis=(1, 2))
            total[:, y:y + patch, q:q + patch] += drop[:, None, None]
            count[y:y + patch, q:q + patch] += 1
    return total / np.where(count > 0, count, 1)


def test_stride_equal_to_patch_gives_the_patch_sum(keras, rng):
    model = linear_model(keras)
    x = rng.uniform(0, 1, (4, 8, 8, 3)).astype(np.float32)
    t = np.array([0, 1, 2, 1])
    got = occlusion(model, x, targets=t, patch_size=4, stride=4)
    assert got.shape == (4, 8, 8) and got.dtype == np.float32
    contrib = contribution(model, x, t, 0.0)
    for i in range(4):
        for y in (0, 4):
            for q in (0, 4):
                want = contrib[i, y:y + 4, q:q + 4].sum()
                np.testing.assert_allclose(got[i, y:y + 4, q:q + 4], want, rtol=1e-4,
                                           atol=1e-4)


@pytest.mark.parametrize("size,patch,stride", [(8, 4, 2), (10, 4, 3), (9, 3, 3), (7, 8, 8)])
def test_overlapping_and_uneven_patches_match_the_definition(keras, rng, size, patch, stride):
    model = linear_model(keras, size, size)
    x = rng.uniform(0, 1, (3, size, size, 3)).astype(np.float32)
    t = np.array([2, 0, 1])
    got = occlusion(model, x, targets=t, patch_size=patch, stride=stride, batch_size=5)
    np.testing.assert_allclose(got, by_hand(model, x, t, min(patch, size), stride), rtol=1e-4,
                               atol=1e-4)


def test_baseline_and_default_target(keras, rng):
    model = linear_model(keras, softmax=False)
    x = rng.uniform(0, 1, (3, 8, 8, 3)).astype(np.float32)
    pred = np.asarray(model(x)).argmax(axis=1)
    got = occlusion(model, x, patch_size=4, stride=4, baseline=0.5)
    np.testing.assert_allclose(got, by_hand(model, x, pred, 4, 4, 0.5), rtol=1e-4, atol=1e-4)


def test_batch_size_does_not_change_the_maps_and_inputs_stay(keras, rng):
    model = linear_model(keras)
    x = rng.uniform(0, 1, (5, 8, 8, 3)).astype(np.float32)
    before = x.copy()
    one = occlusion(model, x, patch_size=2, stride=2, batch_size=1)
    many = occlusion(model, x, patch_size=2, stride=2, batch_size=64)
    np.testing.assert_allclose(one, many, atol=1e-5)
    np.testing.assert_array_equal(x, before)
    assert model.get_layer("head").activation.__name__ == "softmax"


def test_cost_counts_one_forward_pass_per_patch():
    spec = REGISTRY["occlusion"]
    opts = OcclusionOptions(patch_size=8, stride=8)
    assert spec.cost(opts, Shape(64, 64)).forward == 2 + 64
    assert anchors(10, 4, 3) == [0, 3, 6]
    assert anchors(11, 4, 3) == [0, 3, 6, 7]  # the far edge stays covered
    assert anchors(11, 2, 3) == [0, 3, 6, 9]  # gaps when the stride exceeds the patch
    # The report's default: an eighth of the side, 64 patches at any resolution.
    for side in (64, 224, 299):
        assert spec.cost(OcclusionOptions(), Shape(side, side)).forward == 2 + 64
    assert OcclusionOptions().resolved(224, 224) == (28, 28)
    assert OcclusionOptions(patch_size=16).resolved(224, 224) == (16, 16)


def test_explainer_runs_it_through_the_registry(keras, rng):
    model = linear_model(keras)
    x = rng.uniform(0, 1, (2, 8, 8, 3)).astype(np.float32)
    via = Explainer(model, batch_size=7).run("occlusion", x, np.array([0, 1]),
                                             OcclusionOptions(patch_size=4, stride=4))
    np.testing.assert_allclose(via, occlusion(model, x, [0, 1], patch_size=4, stride=4),
                               atol=1e-5)
