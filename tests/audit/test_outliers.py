"""Outliers: kNN distances by hand, and planted noise images and feature outliers ranked
first."""

from __future__ import annotations

import numpy as np

from reportgen.audit import outliers as out
from reportgen.audit.pixels import STATISTICS, pixel_statistics


def test_knn_distance_by_hand():
    ref = np.array([[0.0], [1.0], [3.0], [7.0]])
    q = np.array([[2.0], [10.0]])
    # k = 2: |2-1|, |2-3| -> 1; |10-7|, |10-3| -> 5.
    np.testing.assert_allclose(out.knn_distance(q, ref, k=2, cosine=False), [1.0, 5.0])
    # Leave-one-out on the reference itself, k = 1: 1, 1, 2, 4.
    np.testing.assert_allclose(out.knn_distance(ref, ref, k=1, cosine=False, skip_self=True),
                               [1, 1, 2, 4])
    # Cosine: orthogonal is 1, the same direction 0 whatever the length.
    d = out.knn_distance(np.array([[1.0, 0], [0, 2]]), np.array([[3.0, 0]]), k=1)
    np.testing.assert_allclose(d, [0.0, 1.0], atol=1e-6)


def test_pixel_statistics_by_hand():
    img = np.zeros((1, 4, 4, 3), np.uint8)
    img[0, :, 2:] = 255  # half black, half white
    s = dict(zip(STATISTICS, pixel_statistics(img)[0], strict=True))
    assert s["brightness"] == 0.5 and s["contrast"] == 0.5 and s["colourfulness"] == 0
    assert abs(s["entropy"] - 1.0) < 1e-9  # two equally common levels: one bit
    # Inner Laplacian (rows 1-2, cols 1-2): -255 and +255, each twice: variance 255 ** 2.
    assert abs(s["log_sharpness"] - np.log1p(255.0 ** 2)) < 1e-4


def test_planted_noise_images_and_feature_outliers_rank_first(rng, textures):
    """Three pure-noise images the model maps into a class (features alone miss them) and two
    ordinary-looking images with features unlike any training image are the five highest
    scores and all flagged; of the 100 ordinary test images, like the training ones, about
    1 % are flagged by construction (the 99th percentile): at most 4 (P < 0.02)."""
    labels = rng.integers(0, 3, 400)
    centres = rng.normal(0, 1, (3, 16))
    feats = centres[labels] + 0.05 * rng.normal(0, 1, (400, 16))
    images = textures(rng, 400)
    images[300:303] = rng.integers(0, 256, (3, 32, 32, 3))  # noise, features of a class
    feats[303:305] = rng.normal(0, 1, (2, 16))               # features of no class
    train, test = slice(0, 295), slice(295, 400)
    stats = pixel_statistics(images)
    s = out.outlier_scores(out.Images(stats[test], feats[test]),
                           out.Images(stats[train], feats[train]))
    planted = {5, 6, 7, 8, 9}  # 300..304 in the test slice
    assert set(np.argsort(-s.score)[:5].tolist()) == planted
    assert (s.score[list(planted)] > s.threshold).all()
    assert (s.score > s.threshold).sum() - 5 <= 4
    # The noise images are caught by the pixel statistics, not by the features.
    assert (s.feature[[5, 6, 7]] < s.threshold).all() and (s.pixel[[5, 6, 7]] > 3).all()
    # Without features, the pixel statistics alone still rank the noise first.
    p = out.outlier_scores(out.Images(stats[test]), out.Images(stats[train]))
    assert set(np.argsort(-p.score)[:3].tolist()) == {5, 6, 7}


def test_held_out_images_calibrate_where_training_drew_its_own_features_together(rng):
    """A model's features of its own training images are tighter than those of images it
    never saw (noise 0.01 against 0.05 here). Calibrated on the training images themselves,
    most ordinary test images look far; calibrated on held-out (val) images, like the test
    images, about 1 % do: at most 4 of 100 (P < 0.02 for a binomial of 1 %)."""
    centres = rng.normal(0, 1, (3, 16))

    def images(n, noise):
        labels = rng.integers(0, 3, n)
        return out.Images(rng.normal(0, 1, (n, 5)),
                          centres[labels] + noise * rng.normal(0, 1, (n, 16)))

    train, val, test = images(300, 0.01), images(100, 0.05), images(100, 0.05)
    own = out.outlier_scores(test, train)
    held = out.outlier_scores(test, train, val)
    assert own.calibration == "reference" and held.calibration == "held out"
    assert (own.score > own.threshold).sum() > 50
    assert (held.score > held.threshold).sum() <= 4
