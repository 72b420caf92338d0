"""How good an explanation is: deletion/insertion AUC, pointing game, energy inside the box, and
the model-randomization sanity check."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from reportgen.explain.common import as_batch, probability_function
from reportgen.explain.graph import graph_for


def deletion_insertion(model, images, maps, targets, *, steps=16, baseline=None,
                       batch_size=64, output_index=0) -> tuple[np.ndarray, np.ndarray]:
    """Deletion and insertion AUC (Petsiuk et al., RISE) per image.

    Pixels are ranked by the map, highest first (ties by position). For k = 0..steps, deletion
    replaces the top k/steps of the pixels by ``baseline`` (default: zeros) and insertion starts
    from the baseline and puts back the top k/steps of the pixels; each AUC is the trapezoidal
    area under the target-class probability over the fraction 0..1. All (steps + 1) perturbed
    copies of all images run in batches of ``batch_size``.

    References:
        * Petsiuk et al., RISE: Randomized Input Sampling for Explanation of Black-box Models
          (https://arxiv.org/abs/1806.07421)

    Args:
        maps: (N, H, W) saliency (any scale; only the order counts).
        targets: (N,) classes whose probability is tracked.

    Returns:
        (deletion AUC, insertion AUC), each (N,) float64 in [0, 1]; a good map has a low
        deletion and a high insertion AUC.
    """
    graph = graph_for(model, output_index)
    x = as_batch(images, graph)
    n, h, w, c = x.shape
    maps = np.asarray(maps, np.float64).reshape(n, h * w)
    t = np.asarray(targets, np.int64)
    base = np.broadcast_to(np.asarray(0.0 if baseline is None else baseline, np.float32),
                           x.shape).reshape(n, h * w, c)
    order = np.argsort(-maps, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(h * w)[None, :].repeat(n, 0), axis=1)
    counts = np.round(np.linspace(0, h * w, steps + 1)).astype(np.int64)
    probs_fn = probability_function(graph)
    flat = x.reshape(n, h * w, c)
    fractions = counts / (h * w)
    out = {}
    per_image = steps + 1
    # Images per group so that one group's perturbed copies fill about one batch.
    group = max(1, batch_size // per_image)
    for mode in ("deletion", "insertion"):
        curves = np.zeros((n, per_image))
        for g0 in range(0, n, group):
            idx = np.arange(g0, min(g0 + group, n))
            # (images, steps + 1, pixels): is the pixel among the top k of its map?
            top = ranks[idx][:, None, :] < counts[None, :, None]
            first, second = (base[idx], flat[idx]) if mode == "deletion" else (flat[idx],
                                                                               base[idx])
            copies = np.where(top[..., None], first[:, None], second[:, None])
            copies = copies.reshape(-1, h, w, c).astype(np.float32, copy=False)
            p = np.concatenate([probs_fn(tf.constant(copies[s:s + batch_size])).numpy()
                                for s in range(0, len(copies), batch_size)])
            p = p.reshape(len(idx), per_image, -1)
            curves[idx] = p[np.arange(len(idx)), :, t[idx]]
        out[mode] = np.trapezoid(curves, fractions, axis=1)
    return out["deletion"], out["insertion"]


def box_mask(box, height: int, width: int) -> np.ndarray | None:
    """Return the (height, width) bool mask of the pixels whose centre (c + 0.5, r + 0.5) lies in
    ``box`` = [x0, y0, x1, y1] (pixel-edge coordinates), or None when the box has a NaN."""
    if not np.all(np.isfinite(box)):
        return None
    x0, y0, x1, y1 = box
    rows = np.arange(height)[:, None] + 0.5
    cols = np.arange(width)[None, :] + 0.5
    return (rows >= y0) & (rows <= y1) & (cols >= x0) & (cols <= x1)


def pointing_game(maps: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Return 1.0 where the map's maximum lies inside the box, 0.0 where not, NaN where the box
    is missing. Ties at the maximum count as a hit if any of them is inside.

    Args:
        maps: (N, H, W) saliency maps.
        boxes: (N, 4) [x0, y0, x1, y1], pixels as in :func:`box_mask`.
    """
    n, h, w = maps.shape
    out = np.full(n, np.nan)
    for i in range(n):
        inside = box_mask(boxes[i], h, w)
        if inside is not None:
            out[i] = float(np.any((maps[i] == maps[i].max()) & inside))
    return out


def energy_in_box(maps: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Fraction of each map's total (non-negative) mass inside the object box.

    Args:
        maps: (N, H, W) non-negative maps.
        boxes: (N, 4) [x0, y0, x1, y1], pixels as in :func:`box_mask`.

    Returns:
        (N,) float64 in [0, 1]; NaN where the box is missing or the map is all zero.
    """
    maps = np.clip(np.asarray(maps, np.float64), 0, None)
    n, h, w = maps.shape
    out = np.full(n, np.nan)
    for i in range(n):
        inside = box_mask(boxes[i], h, w)
        total = maps[i].sum()
        if inside is not None and total > 0:
            out[i] = maps[i][inside].sum() / total
    return out


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two arrays (average ranks for ties); NaN when either is
    constant."""
    def rank(v):
        v = np.asarray(v, np.float64).ravel()
        order = np.argsort(v, kind="stable")
        r = np.empty(len(v))
        r[order] = np.arange(len(v))
        # average ranks of ties
        uniq, inv, cnt = np.unique(v, return_inverse=True, return_counts=True)
        sums = np.bincount(inv, weights=r)
        return (sums / cnt)[inv]
    ra, rb = rank(a), rank(b)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def randomized_head_copy(model, seed: int = 0, layers: int = 1) -> keras.Model:
    """Return a copy of ``model`` whose last ``layers`` weighted layers are re-initialized with
    random normal weights (std = the original kernel's std); ``model`` is not changed.

    The sanity check of Adebayo et al.: maps that do not change when the head is randomized do
    not explain the model.
    """
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    weighted = [lyr for lyr in _all_layers(clone) if lyr.get_weights()
                and not isinstance(lyr, keras.Model)]
    rng = np.random.default_rng(seed)
    for lyr in weighted[-layers:]:
        new = []
        for w in lyr.get_weights():
            std = float(w.std()) or 0.05
            new.append(rng.normal(0.0, std, size=w.shape).astype(w.dtype))
        lyr.set_weights(new)
    return clone


def _all_layers(model):
    for lyr in model.layers:
        if isinstance(lyr, keras.Model):
            yield from _all_layers(lyr)
        else:
            yield lyr


def map_change(original: np.ndarray, randomized: np.ndarray) -> np.ndarray:
    """Per image, the Spearman rank correlation between two maps (1 = unchanged order)."""
    a = np.asarray(original).reshape(len(original), -1)
    b = np.asarray(randomized).reshape(len(randomized), -1)
    return np.array([spearman(a[i], b[i]) for i in range(len(a))])
