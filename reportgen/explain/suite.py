"""Run the configured explanations over a whole test split, streaming in chunks.

Only the maps of images shown in the report are kept; everything else is reduced to per-image
numbers (pointing game) as each chunk is computed, so memory does not grow with the test set.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Callable, NamedTuple

import numpy as np

from reportgen.config import Config, ExplainConfig
from reportgen.data.content import content_hashes
from reportgen.errors import ConfigError
from reportgen.evaluate import bootstrap_mean, misclassified, predict_labels, wilson_interval
from reportgen.explain import features, quality
from reportgen.explain.cam import cam_maps, cam_with_peaks
from reportgen.explain.explainer import Explainer
from reportgen.explain.methods import REGISTRY, as_map
from reportgen.explain.plan import OPAQUE_HEAD
from reportgen.explain.receptive import receptive_field, receptive_fields
from reportgen.explain.results import (RANKED, CamPass, SECTIONS, DreamView, Explained,
                                       FeatureMapView, LayerViews, Peaks, QualityRow,
                                       ReceptiveView, Unit, absolute_interval, gallery_counts,
                                       rank_methods, sanity_verdict, select_galleries)
from reportgen.guard import optional_part

__all__ = ["CHUNK", "SECTIONS", "Explained", "CamPass", "explainer_for", "select_galleries",
           "cam_pass", "explain_test_set", "explain_methods", "explain_layers", "stratified",
           "shown_classes"]

#: Images explained per chunk (each chunk is processed in batches of explain.batch_size).
CHUNK = 256


@contextmanager
def _clock(result: Explained, part: str):
    """Add the wall time spent in the block to ``result.seconds[part]``."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        result.seconds[part] = result.seconds.get(part, 0.0) + time.perf_counter() - t0


def explainer_for(model, cfg: Config, input_shape: tuple | None = None) -> Explainer:
    """The build's explainer of ``model``: ``model.output_index``, ``explain.batch_size`` and
    ``explain.layer`` (checked; an unknown layer is a ConfigError naming the key), for images
    of ``input_shape`` (H, W, C)."""
    try:
        return Explainer(model, cfg.model.output_index, cfg.explain.batch_size,
                         cfg.explain.layer or None, input_shape)
    except ValueError as e:
        raise ConfigError(f"explain.layer: {e}") from None


def cam_pass(ex: Explainer, split, prep: Callable[[np.ndarray], np.ndarray],
              targets: np.ndarray, progress: Callable[[int], None] | None = None) -> CamPass:
    """The GradCAM pass of :func:`explain_test_set` (predicted class; the true class from
    the same pass), in chunks, as plain arrays."""
    parts: list[tuple] = []
    for start in range(0, len(split), CHUNK):
        stop = min(start + CHUNK, len(split))
        cams, small, values, positions, true_small = cam_with_peaks(
            ex, prep(split.images[start:stop]), targets[start:stop],
            others=split.labels[start:stop])
        hits = quality.pointing_game(cams, split.boxes[start:stop])
        parts.append((small.astype(np.float16), hits, values, positions,
                      true_small.astype(np.float16)))
        if progress:
            progress(stop - start)
    return CamPass(*(np.concatenate([p[k] for p in parts]) for k in range(5)))


# long: the explain stage passes each by keyword; ``done`` is the merged shards' pass
def explain_test_set(ex: Explainer, split, prep: Callable[[np.ndarray], np.ndarray],
                     probs: np.ndarray, gallery_size: int,
                     progress: Callable[[int], None] | None = None,
                     threshold: float | None = None,
                     done: CamPass | None = None) -> Explained:
    """Compute GradCAM for every test image (predicted class), keep the gallery maps, score
    each map with the pointing game where the image has an object box, and keep the true
    class's map (at the layer's resolution) of every misclassified image, all in one pass.
    The predicted class is :func:`reportgen.evaluate.predict_labels`'s: a binary model's at
    ``threshold`` (``evaluate.threshold``; kept as ``result.threshold``), else the highest.
    ``done``: that pass as computed elsewhere (merged shards, in the split's order): then
    only the gallery maps are computed here."""
    n_classes = probs.shape[1]
    galleries = select_galleries(split.labels, probs, n_classes, gallery_size, threshold)
    result = Explained(layer="", galleries=galleries, threshold=threshold,
                       gallery_counts=gallery_counts(split.labels, probs, n_classes, threshold))
    try:
        layer = ex.layer
    except ValueError as e:
        result.notes.append(f"GradCAM was skipped: {e}.")
        if progress:
            progress(len(split))
        return result
    result.layer = layer
    with optional_part("GradCAM of the test set", layer):
        if done is None:
            _gradcam_pass(ex, split, prep, probs, result, progress)
        else:
            _from_pass(ex, split, prep, probs, result, done)
            if progress:
                progress(len(split))
    return result


def _from_pass(ex: Explainer, split, prep, probs: np.ndarray, result: Explained,
               done: CamPass) -> None:
    """:func:`_gradcam_pass`'s results from a pass computed elsewhere (``done``): the maps,
    pointing game, peaks and true-class maps as given, the gallery maps computed here."""
    wanted = sorted({i for g in result.galleries.values() for lst in g.values() for i in lst})
    maps_kept: dict[int, np.ndarray] = {}
    for start in range(0, len(wanted), CHUNK):
        idx = wanted[start:start + CHUNK]
        targets = pass_targets(probs[idx], result.threshold)
        cams = cam_with_peaks(ex, prep(split.images[idx]), targets,
                              others=split.labels[idx])[0]
        maps_kept.update({i: cams[k].copy() for k, i in enumerate(idx)})
    peaks = Peaks(ex.graph.layer_shapes[result.layer][1])
    if len(split):
        peaks.add(0, done.values, done.positions)
    wrong = misclassified(split.labels, probs, result.threshold).tolist() if split.labeled else []
    result.test_maps = done.small if len(split) else None
    result.true_maps = {int(i): done.true_small[i] for i in wrong}
    result.peaks = peaks
    result.maps["gradcam"] = maps_kept
    result.pointing["gradcam"] = np.asarray(done.hits, np.float64)


def pass_targets(probs: np.ndarray, threshold: float | None) -> np.ndarray:
    """(n,) int32 classes the test pass explains: a binary model's class at ``threshold``;
    otherwise (None) -1, the model's own highest output."""
    return (predict_labels(probs, threshold).astype(np.int32)
            if threshold is not None else np.full(len(probs), -1, np.int32))


def _gradcam_pass(ex: Explainer, split, prep, probs: np.ndarray, result: Explained,
                  progress) -> None:
    """The test-set pass of :func:`explain_test_set`; ``result`` gets its maps, pointing game
    and peaks only once every chunk is done (a failure leaves none of them)."""
    layer, galleries = result.layer, result.galleries
    maps_kept: dict[int, np.ndarray] = {}
    true_maps: dict[int, np.ndarray] = {}
    test_maps: np.ndarray | None = None
    hits = np.full(len(split), np.nan)
    peaks = Peaks(ex.graph.layer_shapes[layer][1])
    wanted_set = {i for g in galleries.values() for lst in g.values() for i in lst}
    # What the model would have needed to see: the true class's map of every error, from the
    # same forward pass (the head's backward pass once more).
    wrong = (set(misclassified(split.labels, probs, result.threshold).tolist())
             if split.labeled else set())
    pred = pass_targets(probs, result.threshold)
    for start in range(0, len(split), CHUNK):
        stop = min(start + CHUNK, len(split))
        x = prep(split.images[start:stop])
        cams, small, values, positions, true_small = cam_with_peaks(
            ex, x, pred[start:stop], others=split.labels[start:stop])
        if test_maps is None:  # the first chunk gives the layer's resolution
            test_maps = np.zeros((len(split),) + small.shape[1:], np.float16)
        test_maps[start:stop] = small
        peaks.add(start, values, positions)
        hits[start:stop] = quality.pointing_game(cams, split.boxes[start:stop])
        for i in range(start, stop):
            if i in wanted_set:
                maps_kept[i] = cams[i - start].copy()  # not a view: it would keep the chunk
            if i in wrong:
                true_maps[i] = true_small[i - start].astype(np.float16)
        if progress:
            progress(stop - start)
    result.test_maps, result.true_maps, result.peaks = test_maps, true_maps, peaks
    result.maps["gradcam"] = maps_kept
    result.pointing["gradcam"] = hits


#: Classes shown with sample images on the Methods page (and in its class grid) at most.
SHOWN_CLASSES = 12


def stratified(labels: np.ndarray, per_class: int, n_classes: int,
               classes: list[int] | None = None, keys: list[str] | None = None) -> list[int]:
    """The first ``per_class`` test indices of every class (or of ``classes``), in class
    order; within a class in test order, or, given ``keys`` (one per image, e.g. content
    hashes), in the order of the keys (so the choice does not depend on positions)."""
    out = []
    for c in range(n_classes) if classes is None else sorted(classes):
        members = np.flatnonzero(labels == c)
        if keys is not None:
            members = np.array(sorted(members, key=lambda i: (keys[i], i)), dtype=np.int64)
        out += [int(i) for i in members[:per_class]]
    return out


def shown_classes(labels: np.ndarray, n_classes: int, limit: int = SHOWN_CLASSES) -> list[int]:
    """The classes shown with sample images: every class with a test image when there are at
    most ``limit``, else the ``limit`` with the most test images (for unlabeled photos, the
    most often predicted; ties by class order), in class order."""
    counts = np.bincount(labels[labels >= 0], minlength=n_classes)
    present = np.flatnonzero(counts)
    if len(present) > limit:
        present = np.sort(np.argsort(-counts, kind="stable")[:limit])
    return [int(c) for c in present]


def runnable(ex: Explainer, options: dict, result: Explained) -> dict:
    """The methods of ``options`` that can run on the model: those needing a conv layer only
    when there is one, those changing ReLU gradients only when the graph walk sees ReLUs (the
    others are noted in ``result``, and ``result.relus`` records whether it does)."""
    relus = result.relus = ex.graph.has_relus()
    keep = dict(options)
    conv_why = "they need a conv layer"
    if not result.layer and ex.graph.closed:  # a SavedModel: say why it was not opened
        conv_why += "; " + "; ".join(f"the SavedModel {p!r} cannot be opened at one: {why}"
                                     for p, why in ex.graph.closed.items())
    for need, ok, why in (("needs_conv", bool(result.layer), conv_why),
                          ("needs_relu", relus, "they change ReLU gradients and no ReLU of "
                                                "the model is visible")):
        skipped = [m for m in keep if getattr(REGISTRY[m], need) and not ok]
        if skipped:
            result.notes.append(f"Skipped ({why}): "
                                + ", ".join(REGISTRY[m].label for m in skipped) + ".")
        keep = {m: o for m, o in keep.items() if m not in skipped}
    return keep


class Chosen(NamedTuple):
    """The test images the methods run on, chosen from the labels and the images' content
    alone (never a prediction or a position in a shard), so every shard of a sharded build
    chooses the same: ``samples`` (the Methods page's sample images), ``grid`` (one image a
    shown class), ``quality`` (the quality table's, in its order), ``sanity`` (how many of
    the first quality images the sanity check takes), ``shown`` (the shown classes:
    :func:`shown_classes`)."""

    samples: list[int]
    grid: list[int]
    quality: list[int]
    sanity: int
    shown: list[int]


def chosen_images(split, n_classes: int, cfg: Config, hashes: list[str] | None = None
                  ) -> Chosen:
    """:class:`Chosen` of the test ``split`` under ``cfg``'s explain settings: the first
    ``samples_per_class`` of each shown class (test order), one of each for the grid, and
    ``ceil(quality_images / classes)`` of each class in the order of their content hashes
    (``hashes``, computed when not given; cut to ``quality_images``)."""
    e = cfg.explain
    shown = shown_classes(split.labels, n_classes)
    per_class = max(1, int(np.ceil(e.quality_images / n_classes)))
    keys = hashes if hashes is not None else content_hashes(split.images)
    quality_idx = stratified(split.labels, per_class, n_classes, keys=keys)[:e.quality_images]
    return Chosen(stratified(split.labels, e.samples_per_class, n_classes, shown),
                  stratified(split.labels, 1, n_classes, shown), quality_idx,
                  min(e.sanity_images, len(quality_idx)), shown)


def run_samples(ex: Explainer, x: np.ndarray, targets: np.ndarray, options: dict,
                result: Explained) -> dict[str, np.ndarray]:
    """{method: raw output} of every method of ``options`` on the model inputs ``x`` (a
    method that fails is left out and noted by the guard)."""
    out = {}
    for m, opts in options.items():
        with optional_part(f"{REGISTRY[m].label} on the sample images", _layer_of(m, result)):
            out[m] = ex.run(m, x, targets, opts)
    return out


def grid_maps(ex: Explainer, x: np.ndarray, classes: list[int]) -> np.ndarray:
    """GradCAM of each image of ``x`` for each of ``classes``: (n, len(classes), H, W)."""
    return np.stack([cam_maps(ex, "gradcam", x, np.full(len(x), c)) for c in classes], axis=1)


# long: the build's methods stage passes each by keyword (pipeline/stages/explaining.py)
def explain_methods(ex: Explainer, split, prep, probs, cfg: Config, options: dict,
                    result: Explained, progress=None, explained: list[int] | None = None,
                    quality_methods: list[str] | None = None, replan=None) -> None:
    """Fill ``result`` with every method of ``options`` ({name: options}, from
    :func:`reportgen.explain.methods.configure`) on the sample images, the classes x images
    GradCAM grid (rows: class indices ``explained``, default the shown classes; columns: one
    image per shown class), and the quality table (of ``quality_methods``, default every
    method) over a stratified subset of the test set (:func:`chosen_images`). ``replan``,
    when given, is called between the two with ``result.seconds`` and returns the (config,
    quality methods) the quality table runs with."""
    n_classes = probs.shape[1]
    pred = predict_labels(probs, result.threshold).astype(np.int32)
    options = runnable(ex, options, result)
    hashes = content_hashes(split.images)
    chosen = chosen_images(split, n_classes, cfg, hashes)
    result.samples = chosen.samples
    if result.samples:
        with _clock(result, "methods on sample images"):
            result.method_outputs = run_samples(ex, prep(split.images[result.samples]),
                                                pred[result.samples], options, result)
    if result.layer:
        with _clock(result, "class grid"), optional_part("GradCAM per class", result.layer):
            classes = list(explained) if explained else chosen.shown
            result.class_grid = grid_maps(ex, prep(split.images[chosen.grid]), classes)
            result.grid_indices, result.grid_classes = chosen.grid, classes
    if progress:
        progress(1)
    if replan is not None:
        cfg, quality_methods = replan(dict(result.seconds))
    q_idx = chosen_images(split, n_classes, cfg, hashes).quality  # as re-planned
    if q_idx:
        scored = {m: o for m, o in options.items()
                  if quality_methods is None or m in quality_methods}
        images = QualityImages(prep(split.images[q_idx]), pred[q_idx], probs[q_idx],
                               split.boxes[q_idx])
        _quality_table(ex, images, cfg, scored, result, progress)


def _layer_of(method: str, result: Explained) -> str | None:
    """The layer a method explains at: the explained layer for the CAM family, else None."""
    return result.layer or None if REGISTRY[method].needs_conv else None


def _randomized(ex: Explainer, cfg: Config, result: Explained, s_n: int) -> Explainer | None:
    """The explainer of the model with its head randomized, for the sanity check of ``s_n``
    images (None without one, or when the copy failed: noted)."""
    if s_n and ex.graph.opaque:  # unplanned (the plan sets it to 0 and says why)
        result.notes.append(f"Sanity check skipped: {OPAQUE_HEAD}.")
        return None
    if not s_n:
        return None
    with _clock(result, "quality: sanity check"), \
            optional_part("sanity check (randomized head)", result.layer or None):
        randomized = Explainer(quality.randomized_head_copy(ex.model, seed=cfg.training.seed),
                               ex.output_index, ex.batch_size, result.layer or None,
                               ex.input_shape)
        randomized.batch_sizes = dict(ex.batch_sizes)
        return randomized
    return None


class QualityImages(NamedTuple):
    """The images of the quality table: ``x`` (n, H, W, C) float32 model inputs, ``targets``
    (n,) int32 classes explained (the predicted ones), ``probs`` (n, classes) their clean
    probabilities, ``boxes`` (n, 4) float32 object boxes (NaN where none)."""

    x: np.ndarray
    targets: np.ndarray
    probs: np.ndarray
    boxes: np.ndarray


def _quality_table(ex: Explainer, images: QualityImages, cfg: Config, options: dict,
                   result: Explained, progress) -> None:
    """One :class:`QualityRow` per method on the quality ``images``; a method that fails has
    no row (noted)."""
    s_n = min(cfg.explain.sanity_images, len(images.x))
    randomized = _randomized(ex, cfg, result, s_n)
    values = {}
    for m, opts in options.items():
        with optional_part(f"{REGISTRY[m].label} in the quality table", _layer_of(m, result)):
            values[m] = quality_values(ex, images, m, opts, cfg, result,
                                       (randomized, np.arange(s_n)))
        if progress:
            progress(1)
    quality_rows(values, cfg, result)


def quality_rows(values: dict[str, dict[str, np.ndarray]], cfg: Config,
                 result: Explained) -> None:
    """``result.quality`` (a row a method) and ``result.quality_ranking`` from each method's
    per-image values ({method: :func:`quality_values`}), and the part "quality: maps"."""
    per_image: dict[str, dict[str, np.ndarray]] = {c: {} for c in RANKED}
    for m, v in values.items():
        result.quality[m] = quality_row(v, cfg.explain.tie_orders)
        for column in RANKED:
            if column in v and np.isfinite(v[column]).any():
                per_image[column][m] = v[column]
    result.seconds["quality: maps"] = sum(r.seconds or 0.0 for r in result.quality.values())
    result.quality_ranking = rank_methods(per_image)


def quality_values(ex: Explainer, data: QualityImages, m: str, opts, cfg: Config,
                   result: Explained, sanity_check: tuple) -> dict[str, np.ndarray]:
    """Method ``m`` on the quality images ``data``: its per-image values {"deletion",
    "insertion", "pointing", "energy", "tied": (n,) float64, "sanity": (s,) float64 of the
    images ``sanity_check[1]`` (positions in ``data``) when the randomized explainer
    ``sanity_check[0]`` is given and its check did not fail, "seconds": () the maps' wall
    seconds}. The sanity check runs on its own (a failure there leaves it out)."""
    xq, tq, pq, boxes = data
    randomized, rows = sanity_check
    t0 = time.perf_counter()
    maps = as_map(m, ex.run(m, xq, tq, opts))
    seconds = time.perf_counter() - t0
    with _clock(result, "quality: deletion/insertion"), \
            ex.batched(ex.batch_sizes.get("curves")):
        dele, ins = quality.deletion_insertion(
            ex, xq, maps, tq, steps=cfg.explain.quality_steps, probs=pq, ties="random",
            orders=cfg.explain.tie_orders, seed=cfg.training.seed)
    out = {"deletion": np.asarray(dele, np.float64), "insertion": np.asarray(ins, np.float64),
           "pointing": np.asarray(quality.pointing_game(maps, boxes), np.float64),
           "energy": np.asarray(quality.energy_in_box(maps, boxes), np.float64),
           "tied": np.asarray(quality.tied_fraction(maps), np.float64),
           "seconds": np.asarray(seconds, np.float64)}
    if randomized is not None and len(rows):
        with _clock(result, "quality: sanity check"), \
                optional_part(f"sanity check of {REGISTRY[m].label}", _layer_of(m, result)):
            rand_maps = as_map(m, randomized.run(m, xq[rows], tq[rows], opts))
            out["sanity"] = np.asarray(quality.map_change(maps[rows], rand_maps), np.float64)
    return out


def quality_row(v: dict[str, np.ndarray], tie_orders: int) -> QualityRow:
    """The :class:`QualityRow` of a method's per-image values (:func:`quality_values`)."""
    dele, ins, point, energy = v["deletion"], v["insertion"], v["pointing"], v["energy"]
    change = v.get("sanity")
    sanity = _nanmean(change) if change is not None else None
    sanity_ci = (absolute_interval(bootstrap_mean(change))
                 if change is not None and sanity is not None else None)
    hits = point[np.isfinite(point)]
    return QualityRow(
        deletion=float(dele.mean()), insertion=float(ins.mean()),
        pointing=_nanmean(point), energy=_nanmean(energy),
        sanity=sanity, n=len(dele), n_boxes=int(np.isfinite(point).sum()),
        seconds=float(v["seconds"]),
        deletion_ci95=bootstrap_mean(dele), insertion_ci95=bootstrap_mean(ins),
        pointing_ci95=list(wilson_interval(int(hits.sum()), len(hits))),
        energy_ci95=bootstrap_mean(energy), n_sanity=len(change) if change is not None else 0,
        tied=float(v["tied"].mean()), tie_orders=tie_orders, sanity_ci95=sanity_ci,
        sanity_verdict=sanity_verdict(sanity_ci) if sanity is not None else
        "undefined" if change is not None else None)


def _nanmean(v: np.ndarray) -> float | None:
    v = np.asarray(v, np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if len(v) else None


def _value_range(prep) -> tuple[float, float]:
    lo = np.asarray(prep(np.zeros((1, 1, 1, 3), np.uint8)), np.float32)
    hi = np.asarray(prep(np.full((1, 1, 1, 3), 255, np.uint8)), np.float32)
    return float(min(lo.min(), hi.min())), float(max(lo.max(), hi.max()))


def explain_layers(ex: Explainer, split, prep, cfg: Config, result: Explained,
                   progress=None) -> None:
    """Fill ``result.layers``: feature maps of the first, a middle and the last conv layer for
    one test image; learned filters of the first and a middle conv layer with a 2-D kernel
    (depthwise kernels for separable convolutions); filter patterns; the most active units of
    the explained layer with their receptive fields; deep dream. Each view of each layer
    runs on its own (:func:`~reportgen.guard.optional_part`): one that fails is left out,
    the others are shown."""
    convs = ex.graph.conv_layers()
    if not convs and ex.graph.opaque:
        result.notes.append("The Layers page was not made: the model's layers are inside a "
                            "SavedModel, whose feature maps, filters and receptive fields "
                            "need its Keras layers.")
    if not convs or not len(split):
        return
    e = cfg.explain
    chosen = list(dict.fromkeys([convs[0], convs[len(convs) // 2], convs[-1]]))
    img_idx = result.samples[0] if result.samples else 0
    views = LayerViews(image=img_idx)
    result.layers = views
    x = prep(split.images[img_idx:img_idx + 1])
    _maps_and_filters(ex, x, chosen, convs, views, e.feature_map_channels)
    if progress:
        progress(1)
    vr = _value_range(prep)
    if e.pattern_filters:
        wanted = e.pattern_layers or chosen
        with optional_part("filter patterns", ", ".join(wanted)):
            views.patterns = features.filter_patterns_of(
                ex, {p: range(min(e.pattern_filters, int(ex.graph.layer_shapes[p][-1])))
                     for p in wanted},
                steps=e.pattern_steps, value_range=vr, seed=cfg.training.seed)
    if progress:
        progress(1)
    if e.receptive_units:
        _receptive_units(ex, split, prep, convs, e, result, views)
    if progress:
        progress(1)
    if e.dream_images:
        d_idx = result.samples[:e.dream_images] or list(range(min(e.dream_images, len(split))))
        d_layers = list(dict.fromkeys([convs[len(convs) // 2], convs[-1]]))
        with optional_part("deep dream", ", ".join(d_layers)):
            dreams = features.deep_dream_of(ex, prep(split.images[d_idx]), d_layers,
                                            octaves=e.dream_octaves, value_range=vr)
            views.dreams = DreamView(d_idx, d_layers, dreams, vr)
    if progress:
        progress(1)


def _maps_and_filters(ex: Explainer, x: np.ndarray, chosen: list[str], convs: list[str],
                      views: LayerViews, channels: int) -> None:
    """Into ``views``: the ``channels`` most active feature maps of each ``chosen`` layer on
    the image ``x`` ((1, H, W, C) model input), and the learned filters of the first and a
    middle conv layer with a 2-D kernel (a custom conv layer without one is passed over)."""
    for p in chosen:
        with optional_part("feature maps", p):
            a = features.feature_maps_of(ex, x, [p])[p][0]
            top = np.argsort(-a.reshape(-1, a.shape[-1]).mean(0), kind="stable")[:channels]
            views.feature_maps[p] = FeatureMapView(a[..., top], top.tolist(), int(a.shape[-1]))
    kinds = {p: k for p in convs if (k := features.kernel_kind(ex.graph.layer(p)))}
    shown = list(kinds)
    for p in dict.fromkeys([shown[0], shown[len(shown) // 2]] if shown else []):
        with optional_part("learned filters", p):
            views.filters[p], views.filter_kinds[p] = features.learned_filters(ex, p), kinds[p]


def _receptive_units(ex: Explainer, split, prep, convs: list[str], e: ExplainConfig,
                     result: Explained, views: LayerViews) -> None:
    """Into ``views``: the receptive fields of the most active units of the layer
    :func:`receptive_layer` picks (from the GradCAM pass's peaks in ``result`` when it is
    the explained layer), or a note saying why there are none."""
    with optional_part("receptive fields") as part:
        try:
            part.layer = rf_layer = receptive_layer(ex, convs)
        except ValueError as err:  # a limitation stated, not a failure
            views.notes.append(f"Receptive fields are not shown: {err}.")
        else:
            views.rf = _top_units(ex, split, prep, rf_layer, e.receptive_units,
                                  result.peaks if rf_layer == result.layer else None,
                                  e.receptive_images)


def receptive_layer(ex: Explainer, convs: list[str]) -> str:
    """The layer whose receptive fields the Layers page shows: the deepest conv layer whose
    units see at most half the input's side (a box that covers the whole image shows
    nothing), else the first conv layer whose field is known. A layer the analysis cannot
    follow is passed over.

    Raises:
        ValueError: no conv layer's field can be followed (the message says why).
    """
    side = min(ex.input_shape[:2])
    fields = receptive_fields(ex, convs)
    traced = [p for p in convs if p in fields]
    if not traced:
        receptive_field(ex, convs[0])  # raises, naming the operation on the way
    small = [p for p in traced if max(fields[p].size) <= side / 2]
    return small[-1] if small else traced[0]


def rf_search(ex: Explainer, n_test: int, units: int) -> bool:
    """Whether the Layers page runs test images again to find ``units`` receptive-field
    units: not when the layer shown is the explained one (the GradCAM pass found its peaks),
    nor without units, conv layers, test images or a conv layer whose field is known."""
    convs = ex.graph.conv_layers()
    if not units or not convs or not n_test:
        return False
    try:
        return receptive_layer(ex, convs) != ex.layer_or_none()
    except ValueError:  # no field to show: nothing to search
        return False


def _top_units(ex: Explainer, split, prep, layer: str, count: int, peaks: Peaks | None,
               images: int = 512) -> ReceptiveView:
    """Up to ``count`` channels of ``layer`` with the highest single activation over the test
    set, each on a different image where there are enough (a channel peaking on an image
    already shown is passed over), with the image and unit position where it peaks and that
    unit's receptive-field box. ``peaks`` from the GradCAM pass is used when given; otherwise
    the first ``images`` test images (``explain.receptive_images``) are run again."""
    rf = receptive_field(ex, layer)
    searched = len(split)
    if peaks is None:
        peaks = Peaks(ex.graph.layer_shapes[layer][1])
        searched = min(len(split), images)
        for start in range(0, searched, CHUNK):
            a = features.feature_maps_of(ex, prep(split.images[start:min(start + CHUNK,
                                                                            searched)]),
                                         [layer])[layer]
            flat = a.reshape(len(a), -1, a.shape[-1])
            peaks.add(start, flat.max(axis=1), flat.argmax(axis=1))
    values, where = peaks.values, peaks.where
    if values is None or where is None:
        raise ValueError(f"no test image reached layer {layer!r}")
    ranked = np.argsort(-values, kind="stable")
    seen: set[int] = set()
    order = []
    for ch in ranked:  # one channel per image while there are images enough
        if int(where[ch][0]) not in seen:
            order.append(ch)
            seen.add(int(where[ch][0]))
        if len(order) == count:
            break
    order += [ch for ch in ranked if ch not in order][:count - len(order)]
    size = split.images.shape[1:3]
    units = []
    for ch in order:
        idx, i, j = (int(v) for v in where[ch])
        units.append(Unit(index=idx, channel=int(ch), i=i, j=j,
                          activation=float(values[ch]), box=rf.box(i, j, size)))
    return ReceptiveView(layer=layer, size=rf.size, stride=rf.stride, offset=rf.offset,
                         units=units, searched=searched, uniform=rf.spans is None)
