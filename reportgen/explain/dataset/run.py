"""Concepts of a build's test set: the activations and gradients of the explained layer from
one more forward and backward pass over at most
:data:`~reportgen.explain.dataset.concepts.IMAGES` images per class (the strategies need no
TensorFlow: :func:`reportgen.explain.dataset.strategies.explain_strategies`)."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import tensorflow as tf

from reportgen.explain.common import as_targets, class_score, run_batched
from reportgen.explain.dataset import concepts as cn
from reportgen.explain.explainer import Explainer
from reportgen.explain.results import Explained
from reportgen.guard import optional_part


def _acts_grads_function(ex: Explainer, layer: str):
    """fn(x, targets) -> (activations, gradient of the target logit, target logits)."""
    graph = ex.graph

    def make():
        def fn(x, targets):
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                logits, captured = graph.forward_capture(x, [layer], tape=tape)
                score = class_score(logits, targets)
            acts = captured[layer]
            return acts, tape.gradient(score, acts), score
        return fn

    return graph.function(("concepts", layer), make, tf.TensorSpec([None], tf.int32),
                          tape=True)


def activations(ex: Explainer, x: np.ndarray, cls: int, layer: str | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Activations (n, h, w, C), gradients of class ``cls``'s logit with respect to them
    (n, h, w, C) and that logit (n,), all float32, for preprocessed images ``x``."""
    fn = _acts_grads_function(ex, ex.resolve(layer))
    t = as_targets(cls, len(x))
    a, g, s = run_batched(fn, [ex.batch(x), t], ex.batch_size)
    return a.astype(np.float32), g.astype(np.float32), s.astype(np.float32)


def explain_concepts(ex: Explainer, split, prep: Callable[[np.ndarray], np.ndarray],
                     probs: np.ndarray, result: Explained, seed: int = 0) -> None:
    """Fill ``result.concepts``: the concepts of every class over its first
    :data:`~reportgen.explain.dataset.concepts.IMAGES` test images (true class; predicted for
    unlabeled photos)."""
    layer = ex.layer_or_none()
    if layer is None or not len(split):
        return
    t0 = time.perf_counter()
    labels = split.labels if split.labeled else probs.argmax(1)
    hw = split.images.shape[1:3]
    box = _unit_box(ex, layer, hw)
    for c in range(probs.shape[1]):
        idx = np.flatnonzero(labels == c)[:cn.IMAGES]
        if not len(idx):
            continue
        with optional_part(f"concepts of class {c}", layer):
            a, g, s = activations(ex, prep(split.images[idx]), c, layer)
            result.concepts.append(cn.class_concepts(
                c, idx, a, g, s, box, seed))
    result.seconds["concepts"] = time.perf_counter() - t0


def _unit_box(ex: Explainer, layer: str, hw: tuple[int, int]) -> Callable:
    """box(row, col) -> (y0, x0, y1, x1): a unit's receptive field in the image (clipped);
    where the field cannot be traced, the image cell under the unit (the layer's grid laid
    over the image)."""
    from reportgen.explain.receptive import receptive_field

    try:
        field = receptive_field(ex, layer)
        return lambda r, c: field.box(r, c, hw)
    except ValueError:
        gh, gw = ex.graph.layer_shapes[layer][:2]
        h, w = hw
        return lambda r, c: (r * h // gh, c * w // gw, (r + 1) * h // gh - 1,
                             (c + 1) * w // gw - 1)
