"""Run the configured explanations over a whole test split, streaming in chunks.

Only the maps of images shown in the report are kept; everything else is reduced to per-image
numbers (pointing game) as each chunk is computed, so memory does not grow with the test set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from reportgen.config import Config
from reportgen.explain.cam import grad_cam
from reportgen.explain.graph import graph_for

#: Images explained per chunk (each chunk is processed in batches of explain.batch_size).
CHUNK = 256

SECTIONS = ("correct", "misclassified", "confident_wrong")


@dataclass
class Explained:
    """Results of :func:`explain_test_set`.

    Attributes:
        layer: path of the explained conv layer ("" when the model has none).
        galleries: {class index: {section: [test indices]}} (sections in ``SECTIONS``).
        maps: {method: {test index: (H, W) float32 in [0, 1]}} for gallery images.
        pointing: {method: (N,) float64, 1 hit / 0 miss / NaN no box}.
        notes: remarks for the report (skipped methods and why).
    """

    layer: str
    galleries: dict[int, dict[str, list[int]]]
    maps: dict[str, dict[int, np.ndarray]] = field(default_factory=dict)
    pointing: dict[str, np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def select_galleries(labels: np.ndarray, probs: np.ndarray, n_classes: int, size: int
                     ) -> dict[int, dict[str, list[int]]]:
    """Pick the gallery images of every class from the test predictions.

    * correct: true c, predicted c; most confident first;
    * misclassified: true c, predicted another class; most confident (wrong) first;
    * confident_wrong: predicted c with the highest confidence while the true class is another.

    Ties keep test-set order. Each list holds at most ``size`` indices.
    """
    pred = probs.argmax(axis=1)
    conf = probs.max(axis=1)
    order = np.argsort(-conf, kind="stable")
    out = {}
    for c in range(n_classes):
        correct = [int(i) for i in order if labels[i] == c and pred[i] == c]
        missed = [int(i) for i in order if labels[i] == c and pred[i] != c]
        false_pos = [int(i) for i in order if pred[i] == c and labels[i] != c]
        out[c] = {"correct": correct[:size], "misclassified": missed[:size],
                  "confident_wrong": false_pos[:size]}
    return out


def pointing_game(maps: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Return 1.0 where the map's maximum lies inside the box, 0.0 where not, NaN where the box
    is missing.

    Args:
        maps: (N, H, W) saliency maps.
        boxes: (N, 4) [x0, y0, x1, y1] pixel-edge coordinates; the pixel (row r, column c)
            counts as inside when x0 <= c + 0.5 <= x1 and y0 <= r + 0.5 <= y1. Ties at the
            maximum count as a hit if any of them is inside.
    """
    n, h, w = maps.shape
    out = np.full(n, np.nan)
    cols = np.arange(w) + 0.5
    rows = np.arange(h) + 0.5
    for i in range(n):
        if not np.all(np.isfinite(boxes[i])):
            continue
        x0, y0, x1, y1 = boxes[i]
        m = maps[i]
        peak = m == m.max()
        inside = ((rows[:, None] >= y0) & (rows[:, None] <= y1)
                  & (cols[None, :] >= x0) & (cols[None, :] <= x1))
        out[i] = float(np.any(peak & inside))
    return out


def explain_test_set(model, split, prep: Callable[[np.ndarray], np.ndarray], probs: np.ndarray,
                     cfg: Config, progress: Callable[[int], None] | None = None) -> Explained:
    """Compute GradCAM for every test image (predicted class), keep the gallery maps, and score
    each map with the pointing game where the image has an object box."""
    n_classes = probs.shape[1]
    galleries = select_galleries(split.labels, probs, n_classes, cfg.explain.gallery_size)
    wanted = sorted({i for g in galleries.values() for lst in g.values() for i in lst})
    result = Explained(layer="", galleries=galleries)
    graph = graph_for(model, cfg.model.output_index)
    try:
        layer = cfg.explain.layer or graph.default_layer()
        if cfg.explain.layer:
            graph.layer(layer)
    except ValueError as e:
        if cfg.explain.layer:
            from reportgen.errors import ConfigError
            raise ConfigError(f"explain.layer: {e}") from None
        result.notes.append(f"GradCAM was skipped: {e}.")
        if progress:
            progress(len(split))
        return result
    result.layer = layer
    maps_kept: dict[int, np.ndarray] = {}
    hits = np.full(len(split), np.nan)
    wanted_set = set(wanted)
    for start in range(0, len(split), CHUNK):
        stop = min(start + CHUNK, len(split))
        x = prep(split.images[start:stop])
        cams = grad_cam(model, x, layer=layer, batch_size=cfg.explain.batch_size,
                        output_index=cfg.model.output_index)
        hits[start:stop] = pointing_game(cams, split.boxes[start:stop])
        for i in range(start, stop):
            if i in wanted_set:
                maps_kept[i] = cams[i - start]
        if progress:
            progress(stop - start)
    result.maps["gradcam"] = maps_kept
    result.pointing["gradcam"] = hits
    return result
