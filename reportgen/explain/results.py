"""What the explanation stages of a build produce, as plain typed data.

Only numpy, the standard library and :mod:`reportgen.evaluate` (numpy only): the report
reads these types, and the cached rebuild unpickles them, without importing TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from reportgen.evaluate import paired_best, predict_labels

if TYPE_CHECKING:
    from reportgen.explain.plan import Plan

#: Gallery sections of a class page, in page order.
SECTIONS = ("misclassified", "confident_wrong", "correct")

#: The views of the Layers page, in page order: the names a failure of one is recorded under
#: (:func:`reportgen.guard.optional_part`), each noted in its own section of the page.
LAYER_VIEWS = ("feature maps", "learned filters", "filter patterns", "receptive fields",
               "deep dream")


class CamPass(NamedTuple):
    """The per-image results of the GradCAM pass over test images, in the split's order (what
    a shard computes for its images): ``small`` (n, h, w) float16 maps at the layer's
    resolution in [0, 1], ``hits`` (n,) float64 pointing game (NaN without a box),
    ``values`` (n, C) float32 and ``positions`` (n, C) int64 per channel peaks (flat index at
    the layer's resolution), ``true_small`` (n, h, w) float16 the true class's maps."""

    small: np.ndarray
    hits: np.ndarray
    values: np.ndarray
    positions: np.ndarray
    true_small: np.ndarray


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
        if self.values is None or self.where is None:
            self.values, self.where = val, where
            return
        better = val > self.values
        self.where[better] = where[better]
        self.values = np.where(better, val, self.values)


#: The sanity check's verdict threshold: a method passes when the absolute mean Spearman rank
#: correlation between its maps before and after the head is randomized is below it. At 0.5
#: the two maps share at most a quarter of their rank variance (rho^2 = 0.25): a map above it
#: keeps most of its order of importance without what the head learned, so it shows the input
#: and the untouched layers more than the model's decision (Adebayo et al. 2018 give no
#: number; methods that pass their test fall near 0, Guided Backprop stays near 1).
SANITY_THRESHOLD = 0.5


def sanity_verdict(abs_ci95: list | None) -> str | None:
    """"passes" when the whole 95 % interval of the absolute mean rank correlation
    ([low, high] in [0, 1]) is below :data:`SANITY_THRESHOLD`, "fails" when it is all at or
    above it, "inconclusive" when it straddles it; None without an interval."""
    if not abs_ci95 or any(v is None or v != v for v in abs_ci95):
        return None
    if abs_ci95[1] < SANITY_THRESHOLD:
        return "passes"
    return "fails" if abs_ci95[0] >= SANITY_THRESHOLD else "inconclusive"


def absolute_interval(ci95: list | None) -> list | None:
    """The interval of |x| from an interval [low, high] of x: [low, high] when x > 0 on it,
    [-high, -low] when x < 0, [0, max(-low, high)] when it holds 0."""
    if not ci95 or any(v is None or v != v for v in ci95):
        return None
    lo, hi = ci95
    if lo >= 0:
        return [lo, hi]
    if hi <= 0:
        return [-hi, -lo]
    return [0.0, max(-lo, hi)]


#: The quality table's ranked columns: {QualityRow field: (header, lower is better,
#: ranked on the absolute value)}.
RANKED = {"deletion": ("deletion AUC ↓", True, False),
          "insertion": ("insertion AUC ↑", False, False),
          "pointing": ("pointing game ↑", False, False),
          "energy": ("energy in box ↑", False, False),
          "sanity": ("|rank corr.| after head randomization ↓", True, True)}


def rank_methods(per_image: dict[str, dict[str, np.ndarray]]) -> dict:
    """{column: :func:`~reportgen.evaluate.paired_best` of its methods} for each column of
    :data:`RANKED` with at least two methods, from ``per_image`` ({column: {method: (n,)
    float per-image scores}}); the sanity column is ranked on the absolute mean
    correlation."""
    out = {}
    for column, (_, lower, absolute) in RANKED.items():
        ranked = paired_best(per_image.get(column, {}), lower, absolute=absolute)
        if ranked is not None:
            out[column] = ranked
    return out


@dataclass
class QualityRow:
    """One method's row of the quality table, over ``n`` test images (``n_boxes`` with an
    object box, ``n_sanity`` in the sanity check). AUCs in [0, 1]; pointing and energy in
    [0, 1] or None without boxes; sanity: mean rank correlation of the maps before and after
    randomizing the head, in [-1, 1]. ``*_ci95``: 95 % intervals [low, high] over the images
    (percentile bootstrap of the mean; Wilson for the pointing game's hit rate);
    ``sanity_ci95`` is the interval of the absolute value (:func:`absolute_interval`) and
    ``sanity_verdict`` its verdict (:func:`sanity_verdict`, threshold ``sanity_threshold``;
    "undefined" when the check ran but a map was constant on every image, so no rank
    correlation exists; None when it did not run). ``tied``: the mean share of tied pixels
    of the maps (:func:`~reportgen.explain.quality.tied_fraction`), their order in
    deletion/insertion drawn at random ``tie_orders`` times."""

    deletion: float
    insertion: float
    pointing: float | None
    energy: float | None
    sanity: float | None
    n: int
    n_boxes: int
    #: Wall seconds the method took on the ``n`` images.
    seconds: float | None = None
    deletion_ci95: list | None = None
    insertion_ci95: list | None = None
    pointing_ci95: list | None = None
    energy_ci95: list | None = None
    n_sanity: int = 0
    tied: float | None = None
    tie_orders: int = 1
    sanity_ci95: list | None = None
    sanity_verdict: str | None = None
    sanity_threshold: float = SANITY_THRESHOLD


@dataclass
class FeatureMapView:
    """The most active channels of one layer for one image: ``maps`` (h, w, k) float32, their
    channel numbers, and the layer's channel count."""

    maps: np.ndarray
    channels: list[int]
    total: int


@dataclass
class Unit:
    """A unit of the receptive-field view: the test image, channel and position (i, j) where a
    channel peaks, its activation, and its receptive field (y0, x0, y1, x1) inclusive."""

    index: int
    channel: int
    i: int
    j: int
    activation: float
    box: tuple[int, int, int, int]


@dataclass
class ReceptiveView:
    """The most active units of ``layer`` with the analytic receptive field of its units
    (see :class:`~reportgen.explain.receptive.ReceptiveField`: after upsampling or resizing,
    ``size`` is the largest field and ``stride`` may be a fraction of a pixel)."""

    layer: str
    size: tuple[float, float]
    stride: tuple[float, float]
    offset: tuple[float, float]
    units: list[Unit]
    #: Test images searched for the peaks (the first ones).
    searched: int = 0
    #: Whether every unit's field has the same size (False after upsampling or resizing).
    uniform: bool = True


@dataclass
class DreamView:
    """Deep-dream images (N, H, W, C) float32 in ``value_range`` of test ``indices``."""

    indices: list[int]
    layers: list[str]
    images: np.ndarray
    value_range: tuple[float, float]


@dataclass
class LayerViews:
    """The Layers page: feature maps of test image ``image`` per layer; learned filters
    {layer: (kh, kw, in, F)} and their kind {layer: "conv", "separable", "depthwise" or
    "transposed"} (see
    :func:`~reportgen.explain.features.learned_filters`); filter patterns {layer: (F, H, W,
    C)}; receptive fields; dreams."""

    image: int
    feature_maps: dict[str, FeatureMapView] = field(default_factory=dict)
    filters: dict[str, np.ndarray] = field(default_factory=dict)
    filter_kinds: dict[str, str] = field(default_factory=dict)
    patterns: dict[str, np.ndarray] = field(default_factory=dict)
    rf: ReceptiveView | None = None
    dreams: DreamView | None = None
    #: Why a view is not shown (a receptive field that cannot be followed), for the page.
    notes: list[str] = field(default_factory=list)


@dataclass
class Explained:
    """Everything the explanation stages computed for the report.

    Attributes:
        layer: path of the explained conv layer ("" when the model has none).
        galleries: {class index: {section: [test indices]}} (sections in ``SECTIONS``).
        gallery_counts: {class index: {section: images in it}}, the true sizes of the
            galleries before they were cut to ``explain.gallery_size``.
        maps: {method: {test index: (H, W) float32 in [0, 1]}} for gallery images.
        pointing: {method: (N,) float64, 1 hit / 0 miss / NaN no box}.
        notes: remarks for the report (skipped methods and why).
        samples: test indices shown across every method.
        method_outputs: {method: its raw output for ``samples``} (shape per the method's spec).
        grid_indices: one test index per shown class (at most 12); grid_classes: the class
            indices explained for each (``explain.classes``, or the shown classes);
            class_grid: their GradCAMs, (n, len(grid_classes), H, W) float32 in [0, 1].
        quality: {method: its quality-table row}.
        layers: the Layers page data, None without conv layers.
        peaks: where each channel of ``layer`` peaks over the test set (from the GradCAM pass).
        test_maps: GradCAM of the predicted class of every test image at the layer's
            resolution, (N, h, w) float16 in [0, 1] (``reportgen compare`` reads them).
        true_maps: {test index: GradCAM of the true class at the layer's resolution, (h, w)
            float16 in [0, 1]} for every misclassified test image (labeled splits only).
        seconds: wall seconds per part of the work, for metrics.json and the benchmarks.
        plan: the plan the work ran to (:class:`reportgen.explain.plan.Plan`: every setting
            and method option as run, and what was reduced); None without test images.
        quality_ranking: {QualityRow field of :data:`RANKED`: the paired comparison of the
            methods on it (:func:`reportgen.evaluate.paired_best`)}; a column with fewer
            than two scored methods is absent.
        relus: whether the model applies a ReLU the graph walk sees (None: not checked);
            without one, guided backprop would be the plain gradient (it is skipped) and
            Guided GradCAM is saliency x GradCAM.
        failures: the parts that failed and were left out
            (:class:`reportgen.guard.Failure`), in the order they ran.
        strategies: per class, its test images clustered by their GradCAM maps
            (:class:`reportgen.explain.dataset.strategies.ClassStrategies`), class order.
        strategy_ids: (N,) int32, each test image's index in the flat list of every class's
            strategies (-1: not clustered); the explorer colours points by it. None: not run.
        concepts: per class, NMF concepts of the explained layer
            (:class:`reportgen.explain.dataset.concepts.ClassConcepts`).
    """

    layer: str
    galleries: dict[int, dict[str, list[int]]]
    gallery_counts: dict[int, dict[str, int]] = field(default_factory=dict)
    maps: dict[str, dict[int, np.ndarray]] = field(default_factory=dict)
    pointing: dict[str, np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    samples: list[int] = field(default_factory=list)
    method_outputs: dict[str, np.ndarray] = field(default_factory=dict)
    grid_indices: list[int] = field(default_factory=list)
    grid_classes: list[int] = field(default_factory=list)
    class_grid: np.ndarray | None = None
    quality: dict[str, QualityRow] = field(default_factory=dict)
    layers: LayerViews | None = None
    peaks: Peaks | None = None
    test_maps: np.ndarray | None = None
    true_maps: dict[int, np.ndarray] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    plan: Plan | None = None
    quality_ranking: dict = field(default_factory=dict)
    relus: bool | None = None
    failures: list = field(default_factory=list)
    strategies: list = field(default_factory=list)
    strategy_ids: np.ndarray | None = None
    concepts: list = field(default_factory=list)
    #: The binary operating point the predicted classes were taken at (``evaluate.threshold``,
    #: :func:`reportgen.evaluate.predict_labels`); None: the highest probability.
    threshold: float | None = None


def select_galleries(labels: np.ndarray, probs: np.ndarray, n_classes: int, size: int,
                     threshold: float | None = None) -> dict[int, dict[str, list[int]]]:
    """Pick the gallery images of every class from the test predictions.

    * misclassified: true c, predicted another class; most confident (wrong) first;
    * confident_wrong: predicted c with the highest confidence while the true class is another;
    * correct: true c, predicted c; least confident first (the doubtful ones teach more than
      a row of 100 % tiles).

    Ties keep test-set order. Each list holds at most ``size`` indices
    (:func:`gallery_counts` gives the full sizes). The predicted class is
    :func:`reportgen.evaluate.predict_labels`'s (a binary model's at ``threshold``).
    """
    pred = predict_labels(probs, threshold)
    conf = probs[np.arange(len(probs)), pred] if len(probs) else np.zeros(0)
    out: dict[int, dict[str, list[int]]] = {c: {key: [] for key in SECTIONS}
                                            for c in range(n_classes)}
    for i in np.argsort(-conf, kind="stable"):  # one pass: linear in images and classes
        t, p = int(labels[i]), int(pred[i])
        if t != p:
            for c, key in ((t, "misclassified"), (p, "confident_wrong")):
                if 0 <= c < n_classes and len(out[c][key]) < size:
                    out[c][key].append(int(i))
    for i in np.argsort(conf, kind="stable"):
        c = int(labels[i])
        if c == int(pred[i]) and 0 <= c < n_classes and len(out[c]["correct"]) < size:
            out[c]["correct"].append(int(i))
    return out


def gallery_counts(labels: np.ndarray, probs: np.ndarray, n_classes: int,
                   threshold: float | None = None) -> dict[int, dict[str, int]]:
    """The full size of every gallery section of :func:`select_galleries`, per class."""
    pred = predict_labels(probs, threshold)
    labels = np.asarray(labels)
    right = labels == pred
    known = (labels >= 0) & (labels < n_classes)
    correct = np.bincount(labels[right & known], minlength=n_classes)
    missed = np.bincount(labels[~right & known], minlength=n_classes)
    false_pos = np.bincount(pred[~right & known], minlength=n_classes)
    return {c: {"misclassified": int(missed[c]), "confident_wrong": int(false_pos[c]),
                "correct": int(correct[c])} for c in range(n_classes)}
