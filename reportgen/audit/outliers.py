"""Outliers: images far from every reference (training) image, in feature space and in pixel
statistics. Penultimate features alone can miss pure-noise images (a network maps them near
some class), so two k-nearest-neighbour distances are combined: each is divided by the median
distance of calibration images (held-out images, else the reference's own) to the reference,
and an image's score is the larger ratio (2.0: twice as far from the reference as a typical
calibration image)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reportgen.audit.duplicates import ROWS, unit_rows

#: Neighbours averaged by the kNN distance.
K = 5
#: Reference images whose own (leave-one-out) distances set the scale without held-out
#: images, at most (seeded).
CALIBRATION = 2000


def knn_distance(queries: np.ndarray, reference: np.ndarray, k: int = K,
                 cosine: bool = True, skip_self: bool = False) -> np.ndarray:
    """Mean distance of each query to its ``k`` nearest reference rows.

    Args:
        queries: (N, D) float.
        reference: (M, D) float.
        k: neighbours (fewer when the reference is smaller).
        cosine: cosine distance (1 - similarity); else Euclidean.
        skip_self: the queries are reference rows: each query's nearest (itself) is left out.

    Returns:
        (N,) float64.
    """
    q, r = (unit_rows(queries), unit_rows(reference)) if cosine else \
        (np.asarray(queries, np.float32), np.asarray(reference, np.float32))
    k = max(1, min(k, len(r) - int(skip_self)))
    norms = None if cosine else (r ** 2).sum(1)[None, :]
    out = [np.zeros(0)]
    for start in range(0, len(q), ROWS):
        block = q[start:start + ROWS]
        d = block @ r.T  # made a distance in place, up to a per-row constant
        if norms is None:
            np.negative(d, out=d)  # 1 - similarity, less the 1
            near = 1.0 + smallest(d, k, skip_self)
        else:
            d *= -2.0
            d += norms  # the squared distance, less the row's own squared norm
            near = np.sqrt(np.maximum(smallest(d, k, skip_self)
                                      + (block ** 2).sum(1)[:, None], 0.0))
        out.append(np.maximum(near, 0.0).mean(axis=1))
    return np.concatenate(out).astype(np.float64)


def smallest(d: np.ndarray, k: int, skip_first: bool = False) -> np.ndarray:
    """The ``k`` smallest values of each row of ``d``, ascending (after the smallest, with
    ``skip_first``), as (rows, k); ``d`` is overwritten. k passes of argmin: for a small k
    many times faster than a partition of every row."""
    rows = np.arange(len(d))
    out = np.zeros((len(d), k), np.float64)
    for step in range(k + int(skip_first)):
        j = d.argmin(axis=1)
        if step >= int(skip_first):
            out[:, step - int(skip_first)] = d[rows, j]
        d[rows, j] = np.inf
    return out


def z_scored(features: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``features`` and ``reference`` (rows of features) centred on the reference's mean and
    divided by its standard deviation per dimension (1 for a constant dimension): penultimate
    features share a large common part (cosine distances between any two images of a small
    CNN measured about 1e-4), which centring removes."""
    ref = np.asarray(reference, np.float64)
    mean, sd = ref.mean(axis=0), ref.std(axis=0)
    sd = np.where(sd > 1e-6 * max(float(sd.max(initial=0.0)), 1e-12), sd, 1.0)
    return (np.asarray(features, np.float64) - mean) / sd, (ref - mean) / sd


def standardized(stats: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``stats`` and ``reference`` (rows of statistics) centred on the reference's median and
    scaled by its interquartile range (1 where that is 0), so every statistic counts alike."""
    med = np.median(reference, axis=0)
    iqr = np.subtract(*np.percentile(reference, [75, 25], axis=0))
    scale = np.where(iqr > 0, iqr, 1.0)
    return (stats - med) / scale, (reference - med) / scale


@dataclass
class Images:
    """One set of images in the two spaces: (N, S) pixel statistics
    (:func:`reportgen.audit.pixels.pixel_statistics`) and (N, D) features, or None."""

    stats: np.ndarray
    features: np.ndarray | None = None


@dataclass
class OutlierScores:
    """Scores of the query images, higher = farther from the reference.

    Attributes:
        score: (N,) the larger of the two ratios (the pixel one alone without features).
        feature: (N,) kNN Euclidean distance of the z-scored features (:func:`z_scored`) /
            the calibration images' median (NaN without features).
        pixel: (N,) kNN distance of the standardized pixel statistics / the calibration
            images' median.
        threshold: the calibration images' own 99th percentile of ``score``: an image above
            it is flagged (about 1 % of images like the calibration images are).
        calibration: "held out" (images the model did not train on, scored against the
            reference like the queries) or "reference" (reference images, each against the
            others).
    """

    score: np.ndarray
    feature: np.ndarray
    pixel: np.ndarray
    threshold: float
    calibration: str


def _ratios(query: np.ndarray, reference: np.ndarray, calib: np.ndarray | None, cosine: bool,
            same: bool) -> tuple[np.ndarray, np.ndarray]:
    """kNN distances of the queries and of the calibration rows (``calib``; None: up to
    :data:`CALIBRATION` reference rows, each leaving itself out), both divided by the
    calibration rows' median; ``same``: the queries are the reference."""
    if calib is None:
        rng = np.random.default_rng(0)
        rows = np.sort(rng.choice(len(reference), min(len(reference), CALIBRATION), False))
        own = knn_distance(reference[rows], reference, cosine=cosine, skip_self=True)
    else:
        own = knn_distance(calib, reference, cosine=cosine)
    scale = float(np.median(own)) or 1.0
    return knn_distance(query, reference, cosine=cosine, skip_self=same) / scale, own / scale


def outlier_scores(query: Images, reference: Images, held_out: Images | None = None,
                   same: bool = False) -> OutlierScores:
    """Score query images against reference images (see the module's docstring).

    The scale of each distance and the threshold come from ``held_out`` images when given
    (at least two: images like the queries, which the model did not train on either, so
    that the features of the training images, drawn together by training, do not make
    every unseen image look far), else from the reference images themselves.

    Args:
        query, reference: the images scored, and those they are compared with (at least
            two); features are used where both have them.
        held_out: calibration images (val), or None.
        same: the queries are the reference (no training images): each is scored against
            the others.
    """
    held = held_out if held_out is not None and len(held_out.stats) >= 2 else None
    q, r = standardized(query.stats, reference.stats)
    h = None if held is None else standardized(held.stats, reference.stats)[0]
    pixel, own = _ratios(q, r, h, False, same)
    how = "reference" if held is None else "held out"
    if query.features is None or reference.features is None or \
            (held is not None and held.features is None):
        return OutlierScores(pixel, np.full(len(pixel), np.nan), pixel,
                             float(np.percentile(own, 99)), how)
    fq, fr = z_scored(query.features, reference.features)
    fh = None if held is None or held.features is None else \
        z_scored(held.features, reference.features)[0]
    feature, own_f = _ratios(fq, fr, fh, False, same)
    return OutlierScores(np.maximum(feature, pixel), feature, pixel,
                         float(np.percentile(np.maximum(own, own_f), 99)), how)
