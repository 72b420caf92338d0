"""The methods' work in a sharded build: each shard runs them on its own images among those
chosen for the report (:func:`~reportgen.explain.suite.chosen_images`: the sample images, the
class grid's, the quality table's), and the merge makes the report's results from the merged
per-image arrays, without running a method again.

A shard's arrays (:func:`shard_methods`) are grouped; each group has an ``<group>.index``
array, the positions of the shard's images in the group's list (the chosen images in their
order), and per-image arrays in the same order:

- ``samples.<method>``: the method's raw output on the sample images;
- ``grid.maps``: (n, classes, H, W) GradCAM of the grid images for each explained class;
- ``quality.<method>.<value>``: the quality table's per-image values
  (:func:`~reportgen.explain.suite.quality_values`: deletion, insertion, pointing, energy,
  tied) and ``quality.<method>.seconds`` (a scalar: the maps' seconds on the shard);
- ``sanity.<method>``: the sanity check's per-image rank correlation of the first
  ``Chosen.sanity`` quality images.

:func:`merge_groups` puts the shards' groups back in order (numpy only); a method missing from
a shard that had images of its group (it failed there) is left out of the merge.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from reportgen.config import Config
from reportgen.evaluate import predict_labels
from reportgen.explain.results import Explained
from reportgen.guard import optional_part

if TYPE_CHECKING:
    from reportgen.explain.explainer import Explainer

#: The groups of a shard's method arrays, each with its ``<group>.index``.
GROUPS = ("samples", "grid", "quality", "sanity")
#: The per-image values of a quality-table row, as :func:`quality_values` returns them.
QUALITY_VALUES = ("deletion", "insertion", "pointing", "energy", "tied")


def _own(chosen: list[int], mine: np.ndarray) -> list[int]:
    """Positions in ``chosen`` (test indices) of the images that are the shard's."""
    return [k for k, i in enumerate(chosen) if mine[i]]


# long: the shard stage passes each by keyword (pipeline/executors/local.py)
def shard_methods(ex: Explainer, split, prep, probs: np.ndarray, cfg: Config, options: dict,
                  mine: np.ndarray, *, classes: list[int] | None = None,
                  threshold: float | None = None, hashes: list[str] | None = None
                  ) -> tuple[dict[str, np.ndarray], dict[str, float], list[str]]:
    """The methods' per-image work of a shard on the whole test ``split`` (every shard reads
    it, to choose the same images): only the images ``mine`` ((N,) bool) are run.

    Args:
        probs: (N, classes) probabilities; only the rows of ``mine`` are read.
        options: {method: options} as configured (a sharded build has no time plan).
        classes: the class grid's classes (``explain.classes``; default the shown ones).
        threshold: the binary operating point (``evaluate.threshold``), or None.
        hashes: the test images' content hashes (computed when not given).

    Returns:
        (arrays as described in the module, {part: seconds}, notes). A method that fails
        is left out, its failure recorded by the guard (:func:`reportgen.guard.collecting`).
    """
    from reportgen.explain.suite import chosen_images, grid_maps, run_samples, runnable

    n_classes = probs.shape[1]
    result = Explained(layer=ex.layer_or_none() or "", galleries={}, threshold=threshold)
    pred = predict_labels(probs, threshold).astype(np.int32)
    options = runnable(ex, options, result)
    chosen = chosen_images(split, n_classes, cfg, hashes)
    arrays: dict[str, np.ndarray] = {}
    own = _own(chosen.samples, mine)
    arrays["samples.index"] = np.asarray(own, np.int64)
    if own:
        idx = [chosen.samples[k] for k in own]
        t0 = time.perf_counter()
        outputs = run_samples(ex, prep(split.images[idx]), pred[idx], options, result)
        result.seconds["methods on sample images"] = time.perf_counter() - t0
        arrays.update({f"samples.{m}": out for m, out in outputs.items()})
    own = _own(chosen.grid, mine) if result.layer else []
    arrays["grid.index"] = np.asarray(own, np.int64)
    if own:
        with optional_part("GradCAM per class", result.layer):
            idx = [chosen.grid[k] for k in own]
            arrays["grid.maps"] = grid_maps(ex, prep(split.images[idx]),
                                            classes or chosen.shown)
    own = _own(chosen.quality, mine)
    arrays.update(_shard_quality(ex, split, prep, (probs, pred), cfg, options, result,
                                 [chosen.quality[k] for k in own], own, chosen.sanity))
    return arrays, dict(result.seconds), list(result.notes)


# long: shard_methods's state, passed on by position
def _shard_quality(ex: Explainer, split, prep, scores: tuple, cfg: Config, options: dict,
                   result: Explained, idx: list[int], own: list[int], sanity: int
                   ) -> dict[str, np.ndarray]:
    """The quality group of a shard: its images ``idx`` (test indices), at positions ``own``
    of the quality images, the first ``sanity`` of which the sanity check takes; ``scores``
    = (probabilities, predicted classes) of the test split."""
    from reportgen.explain.methods import REGISTRY
    from reportgen.explain.suite import QualityImages, _layer_of, _randomized, quality_values

    probs, pred = scores
    rows = np.asarray([j for j, k in enumerate(own) if k < sanity], np.int64)
    arrays = {"quality.index": np.asarray(own, np.int64),
              "sanity.index": np.asarray([own[j] for j in rows], np.int64)}
    if not own:
        return arrays
    images = QualityImages(prep(split.images[idx]), pred[idx], probs[idx], split.boxes[idx])
    randomized = _randomized(ex, cfg, result, len(rows))
    for m, opts in options.items():
        with optional_part(f"{REGISTRY[m].label} in the quality table", _layer_of(m, result)):
            values = quality_values(ex, images, m, opts, cfg, result, (randomized, rows))
            if "sanity" in values:
                arrays[f"sanity.{m}"] = values.pop("sanity")
            arrays.update({f"quality.{m}.{v}": a for v, a in values.items()})
    return arrays


def merge_groups(parts: list) -> dict[str, np.ndarray]:
    """The shards' method arrays (``parts``: one mapping a shard, in any order) merged: each
    group's arrays concatenated and put in the group's order, ``<group>.index`` then the
    positions 0..n-1; a ``.seconds`` scalar summed. An array missing from a shard that had
    images of its group (the method failed there) is left out."""
    out: dict[str, np.ndarray] = {}
    for group in GROUPS:
        index = [np.asarray(p.get(f"{group}.index", ()), np.int64) for p in parts]
        order = np.argsort(np.concatenate(index), kind="stable")
        out[f"{group}.index"] = np.concatenate(index)[order]
        keys = {k for p in parts for k in p if k.startswith(group + ".")
                and k != f"{group}.index"}
        for k in sorted(keys):
            having = [p for p, ix in zip(parts, index, strict=True) if len(ix)]
            if any(k not in p for p in having):
                continue
            if k.endswith(".seconds"):
                out[k] = np.asarray(sum(float(p[k]) for p in having), np.float64)
                continue
            out[k] = np.concatenate([np.asarray(p[k]) for p in having])[order]
    return out


# long: the merge's explain stage passes each by keyword (pipeline/stages/explaining.py)
def methods_from_arrays(ex: Explainer, split, probs: np.ndarray, cfg: Config, options: dict,
                        result: Explained, merged: dict[str, np.ndarray], *,
                        classes: list[int] | None = None,
                        hashes: list[str] | None = None) -> None:
    """Fill ``result`` as :func:`~reportgen.explain.suite.explain_methods` does, from the
    shards' merged arrays (:func:`merge_groups`) instead of running the methods: the sample
    images' outputs, the class grid, and the quality table's rows and ranking, whose means
    and intervals are computed here over every quality image. A method whose arrays are
    incomplete (it failed on a shard: that failure is noted) has no output or row."""
    from reportgen.explain.suite import chosen_images, quality_rows, runnable

    n_classes = probs.shape[1]
    options = runnable(ex, options, result)
    chosen = chosen_images(split, n_classes, cfg, hashes)
    result.samples = chosen.samples
    full = {g: len(merged[f"{g}.index"]) for g in GROUPS}
    if full["samples"] == len(chosen.samples) and chosen.samples:
        result.method_outputs = {m: merged[f"samples.{m}"] for m in options
                                 if f"samples.{m}" in merged}
    if result.layer and "grid.maps" in merged and full["grid"] == len(chosen.grid):
        result.class_grid = merged["grid.maps"]
        result.grid_indices = chosen.grid
        result.grid_classes = classes or chosen.shown
    if full["quality"] != len(chosen.quality):
        return
    values = {}
    for m in options:
        keys = [f"quality.{m}.{v}" for v in (*QUALITY_VALUES, "seconds")]
        if not all(k in merged for k in keys):
            continue
        values[m] = {k.rsplit(".", 1)[1]: merged[k] for k in keys}
        if f"sanity.{m}" in merged and len(merged[f"sanity.{m}"]) == chosen.sanity:
            values[m]["sanity"] = merged[f"sanity.{m}"]
    quality_rows(values, cfg, result)
