"""How good an explanation is: deletion/insertion AUC, pointing game, energy inside the box, and
the model-randomization sanity check."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from reportgen.data.content import image_generators
from reportgen.evaluate import spearman
from reportgen.explain.common import probability_function, run_batched
from reportgen.explain.explainer import Explainer


def _perturbed_probability_function(graph):
    """``(keep, put, ranks, counts, targets) -> (G, S)``: for each image g and step s, the
    target-class probability of the image whose pixels of rank < counts[s] come from ``put`` and
    the others from ``keep``. The G x S copies are built inside the function."""
    def make():
        def fn(keep, put, ranks, counts, targets):
            g = tf.shape(keep)[0]
            n_steps = tf.shape(counts)[0]
            top = ranks[:, None, :, :, None] < counts[None, :, None, None, None]
            copies = tf.where(top, put[:, None], keep[:, None])  # (G, S, H, W, C)
            copies = tf.reshape(copies, tf.concat([[g * n_steps], tf.shape(keep)[1:]], 0))
            p = tf.reshape(graph.probabilities(graph.forward(copies)), [g, n_steps, -1])
            return tf.gather(p, targets, axis=2, batch_dims=1)
        return fn

    h, w, c = graph.input_shape
    return graph.function(("perturbed-probs",), make, tf.TensorSpec([None, h, w, c], tf.float32),
                          tf.TensorSpec([None, h, w], tf.int32),
                          tf.TensorSpec([None], tf.int32), tf.TensorSpec([None], tf.int32))


def tied_fraction(maps: np.ndarray) -> np.ndarray:
    """Per map (N, H, W) the share of its pixels whose value another pixel of the same map
    has too (0 when every value is distinct), float64 in [0, 1]."""
    m = np.asarray(maps).reshape(len(maps), -1)
    out = np.zeros(len(m))
    for k, row in enumerate(m):
        _, counts = np.unique(row, return_counts=True)
        out[k] = counts[counts > 1].sum() / row.size
    return out


def pixel_ranks(maps: np.ndarray, rngs: list[np.random.Generator] | None = None
                ) -> np.ndarray:
    """Rank of every pixel of each map (N, H*W), 0 for the highest value. Ties in row-major
    order without ``rngs``; with ``rngs`` (one generator per map), in a random order (one
    ``rngs[i].random(H*W)`` draw per map, the smaller key first)."""
    n, hw = maps.shape
    if rngs is None:
        order = np.argsort(-maps, axis=1, kind="stable")
    else:
        keys = np.stack([r.random(hw) for r in rngs]) if n else np.zeros((0, hw))
        order = np.lexsort((keys, -maps), axis=-1)
    ranks = np.empty((n, hw), np.int32)
    np.put_along_axis(ranks, order, np.arange(hw, dtype=np.int32)[None, :].repeat(n, 0), axis=1)
    return ranks


# long: the public functional API; its keywords are the documented options of the measure
def deletion_insertion(model, images, maps, targets, *, steps=16, baseline=None,
                       batch_size=64, output_index=0, probs=None, ties="position",
                       orders=1, seed=0) -> tuple[np.ndarray, np.ndarray]:
    """Deletion and insertion AUC (Petsiuk et al., RISE) per image.

    Pixels are ranked by the map, highest first. For k = 0..steps, deletion replaces the top
    k/steps of the pixels by ``baseline`` (default: zeros) and insertion starts from the
    baseline and puts back the top k/steps of the pixels; each AUC is the trapezoidal area
    under the target-class probability over the fraction 0..1.

    Pixels of equal value (a CAM map is often flat over a fifth of the image or more) are
    ordered by position (``ties="position"``, row-major, as the peers do), or at random
    (``ties="random"``): then each AUC is the mean over ``orders`` random orders drawn by
    :func:`pixel_ranks` from one generator per image, seeded from ``seed`` and the image's
    content (:func:`reportgen.data.content.image_generators`, never its position), the first
    order for every image, each further one for the images with ties only (for the others
    every order is the same).

    The end points are the clean image (deletion at 0, insertion at 1) and the baseline (deletion
    at 1, insertion at 0); each is run once, not once per curve, and a baseline shared by all
    images once in all. The 2 (steps - 1) perturbed copies in between are built inside the
    compiled function and run about ``batch_size`` at a time.

    References:
        * Petsiuk et al., RISE: Randomized Input Sampling for Explanation of Black-box Models
          (https://arxiv.org/abs/1806.07421)

    Args:
        model: a Keras model, or an :class:`~reportgen.explain.explainer.Explainer` (whose
            batch size and output then apply).
        maps: (N, H, W) saliency (any scale; only the order counts).
        targets: (N,) classes whose probability is tracked.
        probs: (N, classes) probabilities of the unperturbed images where already known (the
            report passes them once for every method); None computes them.

    Returns:
        (deletion AUC, insertion AUC), each (N,) float64 in [0, 1]; a good map has a low
        deletion and a high insertion AUC.
    """
    ex = (model if isinstance(model, Explainer)
          else Explainer.of(model, images, output_index, batch_size))
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if ties not in ("position", "random"):
        raise ValueError(f"ties must be 'position' or 'random', got {ties!r}")
    curves = _setup(ex, ex.batch(images), targets, steps, baseline, probs)
    n, h, w, _ = curves.x.shape
    maps = np.asarray(maps, np.float64).reshape(n, h * w)
    rngs = image_generators(curves.x, seed) if ties == "random" else None
    return _mean_aucs(curves, maps, rngs, max(1, orders) if rngs is not None else 1)


@dataclass(frozen=True)
class _Curves:
    """What every deletion and insertion curve of one call shares.

    Attributes:
        graph, batch_size: the explainer's graph and batch size.
        x: (N, H, W, C) float32 images; ``base`` their baselines, the same shape (a broadcast
            view when one baseline serves all).
        t: (N,) int64 tracked classes.
        counts: (steps + 1,) int64 pixels taken from the other image at each step, 0 to H*W.
        clean, base_p: (N,) float64 target probabilities of the images and of their baselines
            (the curves' end points).
    """

    graph: Any
    batch_size: int
    x: np.ndarray
    base: np.ndarray
    t: np.ndarray
    counts: np.ndarray
    clean: np.ndarray
    base_p: np.ndarray


def _setup(ex: Explainer, x: np.ndarray, targets, steps: int, baseline, probs) -> _Curves:
    """The shared part of :func:`deletion_insertion`'s curves: the end points run once each
    (a baseline shared by all images once in all)."""
    n, h, w, _ = x.shape
    t = np.asarray(targets, np.int64)
    base_in = np.asarray(0.0 if baseline is None else baseline, np.float32)
    shared = base_in.ndim < 4 or base_in.shape[0] == 1  # one baseline image for all
    base = np.broadcast_to(base_in, x.shape)
    counts = np.round(np.linspace(0, h * w, steps + 1)).astype(np.int64)
    probs_fn = probability_function(ex.graph)
    rows = np.arange(n)
    clean = (np.asarray(probs, np.float64) if probs is not None
             else run_batched(probs_fn, [x], ex.batch_size))[rows, t]
    base_p = run_batched(probs_fn, [np.ascontiguousarray(base[:1] if shared else base)],
                         ex.batch_size)
    base_p = (base_p[np.zeros(n, int)] if shared else base_p)[rows, t]
    return _Curves(ex.graph, ex.batch_size, x, base, t, counts, clean, base_p)


def _mean_aucs(c: _Curves, maps: np.ndarray, rngs: list[np.random.Generator] | None,
               orders: int) -> tuple[np.ndarray, np.ndarray]:
    """(deletion AUC, insertion AUC), each (N,): the mean over ``orders`` pixel orders of the
    (N, H*W) ``maps``, the first for every image, the others for the images with ties."""
    n, h, w, _ = c.x.shape
    fractions = c.counts / (h * w)
    total = {"deletion": np.zeros(n), "insertion": np.zeros(n)}
    runs = np.zeros(n)
    idx = np.arange(n)
    for r in range(orders):
        if r == 1:
            idx = np.flatnonzero(tied_fraction(maps) > 0)
        if not len(idx):
            break
        picked = [rngs[i] for i in idx] if rngs is not None else None
        ranks = pixel_ranks(maps[idx], picked).reshape(len(idx), h, w)
        curves = _curves(c, idx, ranks)
        for mode in total:
            total[mode][idx] += np.trapezoid(curves[mode], fractions, axis=1)
        runs[idx] += 1
    return total["deletion"] / runs, total["insertion"] / runs


def _curves(c: _Curves, idx: np.ndarray, ranks: np.ndarray) -> dict[str, np.ndarray]:
    """{"deletion", "insertion"}: (n, steps + 1) target probabilities along each curve of the
    images ``idx`` ((n,) indices), their pixels taken in the order of ``ranks`` (n, H, W)."""
    x, base, t = c.x[idx], c.base[idx], c.t[idx]
    n, steps = len(x), len(c.counts) - 1
    inner = c.counts[1:-1].astype(np.int32)
    curves = {}
    for mode in ("deletion", "insertion"):
        cur = np.zeros((n, steps + 1))
        ends = (c.clean[idx], c.base_p[idx])
        cur[:, 0], cur[:, -1] = ends if mode == "deletion" else ends[::-1]
        curves[mode] = cur
    if len(inner):
        fn = _perturbed_probability_function(c.graph)
        group = max(1, c.batch_size // len(inner))  # images per call: about one batch of copies
        fn.expect(2 * -(-n // group), 2 * n * len(inner))  # both curves' copies
        ti = t.astype(np.int32)
        for g0 in range(0, n, group):
            sl = slice(g0, min(g0 + group, n))
            xs, bs = tf.constant(x[sl]), tf.constant(np.ascontiguousarray(base[sl]))
            args = (tf.constant(ranks[sl]), tf.constant(inner), tf.constant(ti[sl]))
            curves["deletion"][sl, 1:-1] = fn(xs, bs, *args).numpy()
            curves["insertion"][sl, 1:-1] = fn(bs, xs, *args).numpy()
    return curves


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
