"""Run the configured explanations over a whole test split, streaming in chunks.

Only the maps of images shown in the report are kept; everything else is reduced to per-image
numbers (pointing game) as each chunk is computed, so memory does not grow with the test set.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from reportgen.config import Config
from reportgen.explain import features, gradients, quality
from reportgen.explain.cam import (grad_cam, grad_cam_plus_plus, grad_cam_with_peaks, layer_cam,
                                   score_cam)
from reportgen.explain.graph import graph_for
from reportgen.explain.receptive import receptive_field
from reportgen.methods import METHODS

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
    #: Test indices shown across every method, and each method's raw output for them.
    samples: list[int] = field(default_factory=list)
    method_outputs: dict[str, np.ndarray] = field(default_factory=dict)
    #: One test index per class, and GradCAM of every class for each: (n, K, H, W).
    grid_indices: list[int] = field(default_factory=list)
    class_grid: np.ndarray | None = None
    #: {method: {"deletion", "insertion", "pointing", "energy", "sanity", "n", "n_boxes"}}.
    quality: dict[str, dict] = field(default_factory=dict)
    #: Layers page data (plain arrays), see :func:`explain_layers`.
    layers: dict = field(default_factory=dict)
    #: Seconds spent per method on the quality subset.
    method_seconds: dict[str, float] = field(default_factory=dict)
    #: Where each channel of ``layer`` peaks over the test set (from the GradCAM pass).
    peaks: "Peaks | None" = None
    #: Wall seconds per part of the work (see :func:`_clock`), for metrics.json and benchmarks.
    seconds: dict[str, float] = field(default_factory=dict)


@contextmanager
def _clock(result: Explained, part: str):
    """Add the wall time spent in the block to ``result.seconds[part]``."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        result.seconds[part] = result.seconds.get(part, 0.0) + time.perf_counter() - t0


class Peaks:
    """The largest activation of every channel of a layer over a stream of image chunks, and
    where it is: ``values`` (C,), ``where`` (C, 3) [test index, row, column]. Ties keep the
    first image, then the first position in row-major order."""

    def __init__(self, width: int):
        self.width = width
        self.values: np.ndarray | None = None
        self.where: np.ndarray | None = None

    def add(self, start: int, values: np.ndarray, positions: np.ndarray) -> None:
        """Fold in a chunk of images starting at test index ``start``: per image and channel
        the peak ``values`` (n, C) and its flat position ``positions`` (n, C)."""
        ch = np.arange(values.shape[1])
        img = values.argmax(axis=0)
        val = values[img, ch]
        i, j = np.divmod(positions[img, ch], self.width)
        where = np.stack([img + start, i, j], axis=1).astype(np.int64)
        if self.values is None:
            self.values, self.where = val, where
            return
        better = val > self.values
        self.where[better] = where[better]
        self.values = np.where(better, val, self.values)


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
    peaks = Peaks(graph.layer_shapes[layer][1])
    wanted_set = set(wanted)
    for start in range(0, len(split), CHUNK):
        stop = min(start + CHUNK, len(split))
        x = prep(split.images[start:stop])
        cams, values, positions = grad_cam_with_peaks(
            model, x, layer=layer, batch_size=cfg.explain.batch_size,
            output_index=cfg.model.output_index)
        peaks.add(start, values, positions)
        hits[start:stop] = quality.pointing_game(cams, split.boxes[start:stop])
        for i in range(start, stop):
            if i in wanted_set:
                maps_kept[i] = cams[i - start]
        if progress:
            progress(stop - start)
    result.maps["gradcam"] = maps_kept
    result.pointing["gradcam"] = hits
    result.peaks = peaks
    return result


def run_method(name: str, model, x: np.ndarray, targets: np.ndarray, cfg: Config, layer: str
               ) -> np.ndarray:
    """Run explanation method ``name`` on ``x`` for ``targets``; return its raw output."""
    e = cfg.explain
    common = {"targets": targets, "batch_size": e.batch_size,
              "output_index": cfg.model.output_index}
    if name == "gradcam":
        return grad_cam(model, x, layer=layer, **common)
    if name == "gradcam++":
        return grad_cam_plus_plus(model, x, layer=layer, **common)
    if name == "layercam":
        return layer_cam(model, x, layer=layer, **common)
    if name == "scorecam":
        return score_cam(model, x, layer=layer, max_channels=e.scorecam_channels, **common)
    if name == "saliency":
        return gradients.saliency(model, x, **common)
    if name == "smoothgrad":
        return gradients.smooth_grad(model, x, samples=e.smoothgrad_samples,
                                     seed=cfg.training.seed, **common)
    if name == "integrated_gradients":
        return gradients.integrated_gradients(model, x, steps=e.ig_steps, **common)
    if name == "guided_backprop":
        return gradients.guided_backprop(model, x, **common)
    if name == "deconvnet":
        return gradients.deconvnet(model, x, **common)
    if name == "guided_gradcam":
        return gradients.guided_grad_cam(model, x, layer=layer, **common)
    raise ValueError(f"unknown method {name!r}")


def as_map(name: str, out: np.ndarray) -> np.ndarray:
    """Return (N, H, W) float32 in [0, 1]: CAM maps as they are; input attributions as their
    largest absolute value over channels, divided by the per-image maximum (0 stays 0)."""
    if METHODS[name][1] == "cam":
        return out.astype(np.float32)
    m = np.abs(out).max(axis=-1)
    top = m.reshape(len(m), -1).max(axis=1)[:, None, None]
    return np.divide(m, top, out=np.zeros_like(m), where=top > 0).astype(np.float32)


def stratified(labels: np.ndarray, per_class: int, n_classes: int) -> list[int]:
    """The first ``per_class`` test indices of every class, in class order."""
    out = []
    for c in range(n_classes):
        out += [int(i) for i in np.flatnonzero(labels == c)[:per_class]]
    return out


def explain_methods(model, split, prep, probs, cfg: Config, result: Explained,
                    progress=None) -> None:
    """Fill ``result`` with every configured method on the sample images, the classes x images
    GradCAM grid, and the quality table over a stratified subset of the test set."""
    layer = result.layer
    n_classes = probs.shape[1]
    pred = probs.argmax(axis=1).astype(np.int32)
    methods = [m for m in cfg.explain.methods if layer or METHODS[m][1] in ("grad", "signed")
               and m != "guided_gradcam"]
    skipped = [m for m in cfg.explain.methods if m not in methods]
    if skipped:
        result.notes.append("Skipped (they need a conv layer): " + ", ".join(
            METHODS[m][0] for m in skipped) + ".")
    result.samples = stratified(split.labels, cfg.explain.samples_per_class, n_classes)
    if result.samples:
        xs = prep(split.images[result.samples])
        for m in methods:
            with _clock(result, "methods on sample images"):
                result.method_outputs[m] = run_method(m, model, xs, pred[result.samples], cfg,
                                                      layer)
    if layer:
        with _clock(result, "class grid"):
            result.grid_indices = stratified(split.labels, 1, n_classes)
            xg = prep(split.images[result.grid_indices])
            result.class_grid = np.stack([
                grad_cam(model, xg, targets=np.full(len(xg), c), layer=layer,
                         batch_size=cfg.explain.batch_size, output_index=cfg.model.output_index)
                for c in range(n_classes)], axis=1)
    if progress:
        progress(1)

    per_class = max(1, int(np.ceil(cfg.explain.quality_images / n_classes)))
    q_idx = stratified(split.labels, per_class, n_classes)[:cfg.explain.quality_images]
    if not q_idx:
        return
    xq = prep(split.images[q_idx])
    tq = pred[q_idx]
    boxes = split.boxes[q_idx]
    s_n = min(cfg.explain.sanity_images, len(q_idx))
    with _clock(result, "quality: sanity check"):
        randomized = (quality.randomized_head_copy(model, seed=cfg.training.seed) if s_n
                      else None)
    for m in methods:
        t0 = time.perf_counter()
        maps = as_map(m, run_method(m, model, xq, tq, cfg, layer))
        result.method_seconds[m] = time.perf_counter() - t0
        with _clock(result, "quality: deletion/insertion"):
            dele, ins = quality.deletion_insertion(
                model, xq, maps, tq, steps=cfg.explain.quality_steps, probs=probs[q_idx],
                batch_size=cfg.explain.batch_size, output_index=cfg.model.output_index)
        point = quality.pointing_game(maps, boxes)
        energy = quality.energy_in_box(maps, boxes)
        row = {"deletion": float(dele.mean()), "insertion": float(ins.mean()),
               "n": len(q_idx), "n_boxes": int(np.isfinite(point).sum()),
               "pointing": _nanmean(point), "energy": _nanmean(energy), "sanity": None}
        if randomized is not None:
            with _clock(result, "quality: sanity check"):
                rand_maps = as_map(m, run_method(m, randomized, xq[:s_n], tq[:s_n], cfg, layer))
                row["sanity"] = _nanmean(quality.map_change(maps[:s_n], rand_maps))
        result.quality[m] = row
        if progress:
            progress(1)
    result.seconds["quality: maps"] = sum(result.method_seconds.values())


def _nanmean(v: np.ndarray) -> float | None:
    v = np.asarray(v, np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if len(v) else None


def _value_range(prep) -> tuple[float, float]:
    lo = np.asarray(prep(np.zeros((1, 1, 1, 3), np.uint8)), np.float32)
    hi = np.asarray(prep(np.full((1, 1, 1, 3), 255, np.uint8)), np.float32)
    return float(min(lo.min(), hi.min())), float(max(lo.max(), hi.max()))


def explain_layers(model, split, prep, cfg: Config, result: Explained, progress=None) -> None:
    """Fill ``result.layers``: feature maps of the first, a middle and the last conv layer for
    one test image; learned filters of the first conv layer; filter patterns; the most active
    units of the explained layer with their receptive fields; deep dream."""
    graph = graph_for(model, cfg.model.output_index)
    convs = graph.conv_layers()
    if not convs or not len(split):
        return
    e = cfg.explain
    chosen = list(dict.fromkeys([convs[0], convs[len(convs) // 2], convs[-1]]))
    img_idx = result.samples[0] if result.samples else 0
    x1 = prep(split.images[img_idx:img_idx + 1])
    fmaps = features.feature_maps(model, x1, chosen, output_index=cfg.model.output_index)
    out: dict = {"image": img_idx, "feature_maps": {}, "filters": {}, "patterns": {},
                 "rf": None, "dreams": None}
    for p in chosen:
        a = fmaps[p][0]
        top = np.argsort(-a.reshape(-1, a.shape[-1]).mean(0), kind="stable")
        out["feature_maps"][p] = {"maps": a[..., top[:e.feature_map_channels]],
                                  "channels": top[:e.feature_map_channels].tolist(),
                                  "total": int(a.shape[-1])}
    for p in dict.fromkeys([convs[0], convs[len(convs) // 2]]):
        out["filters"][p] = features.learned_filters(model, p)
    if progress:
        progress(1)
    vr = _value_range(prep)
    pattern_layers = e.pattern_layers or chosen
    if e.pattern_filters:
        out["patterns"] = features.filter_patterns_of(
            model, {p: range(min(e.pattern_filters, int(graph.layer_shapes[p][-1])))
                    for p in pattern_layers},
            steps=e.pattern_steps, value_range=vr, seed=cfg.training.seed,
            output_index=cfg.model.output_index)
    if progress:
        progress(1)
    rf_layer = result.layer or convs[-1]
    if e.receptive_units:
        out["rf"] = _top_units(model, split, prep, cfg, rf_layer,
                               result.peaks if rf_layer == result.layer else None)
    if progress:
        progress(1)
    if e.dream_images:
        d_idx = result.samples[:e.dream_images] or list(range(min(e.dream_images, len(split))))
        d_layers = list(dict.fromkeys([convs[len(convs) // 2], convs[-1]]))
        dreams = features.deep_dream(model, prep(split.images[d_idx]), d_layers,
                                     octaves=e.dream_octaves, value_range=vr,
                                     output_index=cfg.model.output_index)
        out["dreams"] = {"indices": d_idx, "layers": d_layers, "images": dreams,
                         "value_range": vr}
    if progress:
        progress(1)
    result.layers = out


def _top_units(model, split, prep, cfg: Config, layer: str, peaks: Peaks | None) -> dict:
    """The channels of ``layer`` with the highest single activation over the test set, each
    with the image and unit position where it peaks and that unit's receptive-field box.
    ``peaks`` from the GradCAM pass is used when given; otherwise the test set is run again."""
    rf = receptive_field(model, layer)
    if peaks is None:
        graph = graph_for(model, cfg.model.output_index)
        peaks = Peaks(graph.layer_shapes[layer][1])
        for start in range(0, len(split), CHUNK):
            a = features.feature_maps(model, prep(split.images[start:start + CHUNK]), [layer],
                                      batch_size=cfg.explain.batch_size,
                                      output_index=cfg.model.output_index)[layer]
            flat = a.reshape(len(a), -1, a.shape[-1])
            peaks.add(start, flat.max(axis=1), flat.argmax(axis=1))
    order = np.argsort(-peaks.values, kind="stable")[:cfg.explain.receptive_units]
    size = split.images.shape[1:3]
    units = []
    for ch in order:
        idx, i, j = (int(v) for v in peaks.where[ch])
        units.append({"index": idx, "channel": int(ch), "i": i, "j": j,
                      "activation": float(peaks.values[ch]), "box": rf.box(i, j, size)})
    return {"layer": layer, "size": rf.size, "stride": rf.stride, "offset": rf.offset,
            "units": units}
