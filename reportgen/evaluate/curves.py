"""PR and ROC curves, average precision and ROC AUC with bootstrap intervals, thresholds.

Numpy only. Definitions are scikit-learn's, so the numbers equal its functions on the same
probabilities:

- Each class is scored one-vs-rest: its label is 1 for the images of the class, 0 for the
  rest, its score the model's probability of the class. The curve's points are the distinct
  scores, highest first (an image is predicted positive at threshold t when its score >= t), so
  tied scores make one point (``sklearn.metrics.precision_recall_curve``, ``roc_curve``).
- Average precision is step-wise, without interpolation: AP = sum_n (R_n - R_(n-1)) P_n over
  those points (``average_precision_score``). ROC AUC is the trapezoid area under the ROC
  curve from (0, 0) (``roc_auc_score``), which gives a tie half a win.
- Macro: the mean over the classes with test images (a class without one has no curve).
  Micro: every (image, class) pair of the one-vs-rest indicator of all K classes pooled into
  one curve (``average="micro"`` on the binarized labels).
- Intervals: a percentile bootstrap over images (:func:`interval_method`): the resampled
  images are drawn as :func:`reportgen.evaluate.bootstrap_mean` draws them (seed 0), and a
  resample is scored as the weighted curve of the images with their draw counts as weights,
  which equals the curve of the resampled list (duplicates tie). A resample without a positive
  or without a negative image of a class has no AP or AUC for it and is left out of that
  interval. Many images times classes get fewer resamples (:func:`resamples_for`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from reportgen.evaluate import RESAMPLES, _percentile_interval, _resampled


@dataclass(frozen=True)
class Curve:
    """The points of one class's (or the micro-average's) curves, highest threshold first.

    Attributes:
        thresholds: (M,) float64, the distinct scores, descending.
        tps, fps: (M,) float64, the (weighted) true and false positives at scores >= each.
        positives, negatives: the totals (the last tps and fps).
    """

    thresholds: np.ndarray
    tps: np.ndarray
    fps: np.ndarray

    @property
    def positives(self) -> float:
        return float(self.tps[-1]) if len(self.tps) else 0.0

    @property
    def negatives(self) -> float:
        return float(self.fps[-1]) if len(self.fps) else 0.0

    def precision(self) -> np.ndarray:
        """(M,) precision at each threshold (0 where nothing is predicted positive)."""
        n = self.tps + self.fps
        return np.divide(self.tps, n, out=np.zeros_like(self.tps), where=n > 0)

    def recall(self) -> np.ndarray:
        """(M,) recall at each threshold (NaN without positives)."""
        return self.tps / self.positives if self.positives else np.full(len(self.tps), np.nan)

    def fpr(self) -> np.ndarray:
        """(M,) false-positive rate at each threshold (NaN without negatives)."""
        return self.fps / self.negatives if self.negatives else np.full(len(self.fps), np.nan)


def binary_curve(y: np.ndarray, scores: np.ndarray) -> Curve:
    """The one-vs-rest curve of ``scores`` (N,) float against ``y`` (N,) bool or 0/1."""
    y = np.asarray(y, bool).ravel()
    s = np.asarray(scores, np.float64).ravel()
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    ends = _group_ends(s)
    return Curve(s[ends], np.cumsum(y)[ends].astype(np.float64),
                 np.cumsum(~y)[ends].astype(np.float64))


def _group_ends(sorted_desc: np.ndarray) -> np.ndarray:
    """Indices of the last element of each run of equal values in a sorted array."""
    if not len(sorted_desc):
        return np.zeros(0, np.int64)
    return np.r_[np.flatnonzero(np.diff(sorted_desc)), len(sorted_desc) - 1]


def _ap(tps: np.ndarray, fps: np.ndarray) -> np.ndarray:
    """Average precision of (..., M) cumulative counts along the last axis; NaN without a
    positive."""
    pos = tps[..., -1:]
    called = tps + fps
    prec = np.divide(tps, called, out=np.zeros_like(tps), where=called > 0)
    rec = np.divide(tps, pos, out=np.zeros_like(tps), where=pos > 0)
    steps = np.diff(rec, axis=-1, prepend=0.0)
    ap = np.sum(steps * prec, axis=-1)
    return np.where(pos[..., 0] > 0, ap, np.nan)


def _auc(tps: np.ndarray, fps: np.ndarray) -> np.ndarray:
    """ROC AUC (trapezoid from (0, 0)) of (..., M) cumulative counts along the last axis; NaN
    without a positive or without a negative."""
    pos, neg = tps[..., -1:], fps[..., -1:]
    tpr = np.divide(tps, pos, out=np.zeros_like(tps), where=pos > 0)
    fpr = np.divide(fps, neg, out=np.zeros_like(fps), where=neg > 0)
    tpr = np.concatenate([np.zeros_like(tpr[..., :1]), tpr], axis=-1)
    fpr = np.concatenate([np.zeros_like(fpr[..., :1]), fpr], axis=-1)
    area = np.sum(np.diff(fpr, axis=-1) * (tpr[..., 1:] + tpr[..., :-1]) / 2, axis=-1)
    return np.where((pos[..., 0] > 0) & (neg[..., 0] > 0), area, np.nan)


def average_precision(y: np.ndarray, scores: np.ndarray) -> float:
    """Average precision of ``scores`` (N,) against ``y`` (N,) bool, as scikit-learn's
    ``average_precision_score``; NaN without a positive."""
    c = binary_curve(y, scores)
    return float(_ap(c.tps, c.fps)) if len(c.tps) else float("nan")


def roc_auc(y: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC of ``scores`` (N,) against ``y`` (N,) bool, as scikit-learn's
    ``roc_auc_score``; NaN without a positive or without a negative."""
    c = binary_curve(y, scores)
    return float(_auc(c.tps, c.fps)) if len(c.tps) else float("nan")


def _bootstrap(y: np.ndarray, scores: np.ndarray, counts: list[np.ndarray],
               image: np.ndarray | None = None) -> np.ndarray:
    """(R, 2) AP and AUC of each resample given as (b, N) draw counts per image (blocks);
    ``image``: (len(y),) the image of each score (None: score i is image i's; the micro
    average has K scores per image)."""
    y = np.asarray(y, bool).ravel()
    s = np.asarray(scores, np.float64).ravel()
    order = np.argsort(-s, kind="stable")
    ends = _group_ends(s[order])
    yo = y[order]
    of = order if image is None else image[order]
    out = []
    rows = max(1, 1_000_000 // max(len(y), 1))  # ~8 MB per array: stays in cache
    for block in counts:
        for r in range(0, len(block), rows):
            wo = block[r:r + rows, of]
            out.append(_weighted_ap_auc(np.cumsum(wo * yo, axis=1)[:, ends],
                                        np.cumsum(wo, axis=1)[:, ends]))
    return np.concatenate(out) if out else np.zeros((0, 2))


def _weighted_ap_auc(tps: np.ndarray, called: np.ndarray) -> np.ndarray:
    """(b, 2) AP and AUC of (b, G) cumulative weights of the positives and of all images at
    each group end: AP = sum_g dTP_g prec_g / P, AUC = sum_g dFP_g (TP_g - dTP_g / 2) / (P N),
    as :func:`_ap` and :func:`_auc` compute them; NaN where undefined."""
    pos = tps[:, -1]
    neg = called[:, -1] - pos
    dtp = np.diff(tps, axis=1, prepend=0.0)
    dfp = np.diff(called, axis=1, prepend=0.0) - dtp
    with np.errstate(invalid="ignore", divide="ignore"):
        prec = np.where(called > 0, tps / called, 0.0)
        ap = (dtp * prec).sum(axis=1) / pos
        auc = (dfp * (tps - dtp / 2)).sum(axis=1) / (pos * neg)
    return np.stack([np.where(pos > 0, ap, np.nan),
                     np.where((pos > 0) & (neg > 0), auc, np.nan)], axis=1)


#: The bootstrap's work is capped at this many (score, resample) pairs: with more images and
#: classes it draws fewer resamples (never under :data:`MIN_RESAMPLES`), stated in its
#: interval's description. About a second on one core.
BOOTSTRAP_BUDGET = 20_000_000
MIN_RESAMPLES = 200


def resamples_for(n: int, present: int, k: int, asked: int = RESAMPLES) -> int:
    """Resamples of the curves' bootstrap for ``n`` images, ``present`` classes with images
    and ``k`` classes: ``asked``, fewer where :data:`BOOTSTRAP_BUDGET` says."""
    work = max(n * (present + k), 1)
    return int(min(asked, max(MIN_RESAMPLES, BOOTSTRAP_BUDGET // work)))


#: Seconds per (score, resample) pair of the bootstrap (:func:`resamples_for`), measured on
#: an idle 2-core machine: 1000 images x 10 classes (20 M pairs) took 1.2 s, 450 x 3 (2.7 M)
#: 0.16 s, 10,000 x 100 at 200 resamples (400 M) 14.7 s.
SECONDS_PER_PAIR = 5e-8


def curves_seconds(n: int, present: int, k: int) -> float:
    """Estimated seconds of :func:`curve_metrics` for ``n`` test images, ``present`` classes
    with images and ``k`` classes: its bootstrap's (score, resample) pairs at
    :data:`SECONDS_PER_PAIR` (the build plan's ``curves`` part)."""
    return n * (present + k) * resamples_for(n, present, k) * SECONDS_PER_PAIR


def interval_method(resamples: int) -> str:
    """How the intervals of the curves are made, as stated on the pages and in metrics.json."""
    return (f"percentile bootstrap over the test images ({resamples} seeded resamples, "
            f"seed 0; a resample without a positive or a negative image of a class is left "
            f"out of that class's interval)")


def draw_counts(n: int, resamples: int = RESAMPLES, seed: int = 0) -> list[np.ndarray]:
    """The bootstrap resamples of ``n`` images as blocks of (b, n) float64 draw counts (how
    often each image is drawn), from the indices :func:`reportgen.evaluate.bootstrap_mean`
    draws."""
    blocks = []
    for idx in _resampled(n, resamples, seed):
        b = len(idx)
        flat = (idx + (np.arange(b) * n)[:, None]).ravel()
        blocks.append(np.bincount(flat, minlength=b * n).reshape(b, n).astype(np.float64))
    return blocks


def _interval(values: np.ndarray) -> list[float] | None:
    """The 95 % percentile interval of the finite ``values``; None when there are none."""
    v = values[np.isfinite(values)]
    if not len(v):
        return None
    lo, hi = _percentile_interval(v)
    return [float(lo), float(hi)]


def _entry(ap: float, auc: float, boot: np.ndarray) -> dict:
    """One class's (or an average's) JSON-ready entry; None where undefined."""
    return {"average_precision": _num(ap), "average_precision_ci95": _interval(boot[:, 0]),
            "roc_auc": _num(auc), "roc_auc_ci95": _interval(boot[:, 1])}


def _num(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


def curve_metrics(probs: np.ndarray, y_true: np.ndarray, class_names: list[str], *,
                  resamples: int = RESAMPLES, seed: int = 0) -> dict:
    """AP and ROC AUC per class (one-vs-rest), macro and micro, each with its 95 % interval.

    Args:
        probs: (N, K) float scores (probabilities) of the K classes of ``class_names``.
        y_true: (N,) int class indices in [0, K).

    Returns:
        {"classes": {name: {"average_precision", "average_precision_ci95", "roc_auc",
        "roc_auc_ci95"}} for the classes with test images, "macro" and "micro" alike,
        "absent": [the classes without a test image: no curve], "only_class": [classes whose
        AUC is undefined because every test image is theirs], "resamples" (fewer than asked
        for many images and classes: :func:`resamples_for`), "interval": how the intervals
        were made}. A value that cannot be computed is None, never NaN.
    """
    probs = np.asarray(probs, np.float64)
    y_true = np.asarray(y_true, np.int64)
    n, k = probs.shape[0], len(class_names)
    onehot = y_true[:, None] == np.arange(k)[None, :]
    present = [c for c in range(k) if onehot[:, c].any()]
    resamples = resamples_for(n, len(present), k, resamples)
    counts = draw_counts(n, resamples, seed) if n else []
    classes, boots = {}, []
    for c in present:
        boot = _bootstrap(onehot[:, c], probs[:, c], counts)
        boots.append(boot)
        classes[class_names[c]] = _entry(average_precision(onehot[:, c], probs[:, c]),
                                         roc_auc(onehot[:, c], probs[:, c]), boot)
    macro = _macro(classes, boots)
    micro = _entry(average_precision(onehot.ravel(), probs.ravel()),
                   roc_auc(onehot.ravel(), probs.ravel()),
                   _bootstrap(onehot.ravel(), probs.ravel(), counts, np.arange(n * k) // k))
    return {"classes": classes, "macro": macro, "micro": micro,
            "absent": [class_names[c] for c in range(k) if c not in present],
            "only_class": [name for name, e in classes.items() if e["roc_auc"] is None],
            "resamples": resamples, "interval": interval_method(resamples)}


def _macro(classes: dict[str, dict], boots: list[np.ndarray]) -> dict:
    """The macro average of the classes' entries; its interval from the mean over the classes
    of each resample (the classes defined in that resample)."""
    if not classes:
        return _entry(float("nan"), float("nan"), np.zeros((0, 2)))
    vals = np.array([[_nan(e["average_precision"]), _nan(e["roc_auc"])]
                     for e in classes.values()])
    stacked = np.stack(boots)  # (C, R, 2)
    with warnings.catch_warnings():  # a resample where no class is defined: NaN, left out
        warnings.simplefilter("ignore", RuntimeWarning)
        # A class undefined on all images (its AUC, all images its own) stays out of both.
        use = np.isfinite(vals)[:, None, :]
        means = np.nanmean(np.where(use, stacked, np.nan), axis=0)
    ap = float(np.nanmean(vals[:, 0])) if np.isfinite(vals[:, 0]).any() else float("nan")
    auc = float(np.nanmean(vals[:, 1])) if np.isfinite(vals[:, 1]).any() else float("nan")
    return _entry(ap, auc, means)


def _nan(v: float | None) -> float:
    return float("nan") if v is None else v


#: The rule of a binary model's predictions at a threshold, as the pages state it.
THRESHOLD_RULE = "an image is predicted positive when its positive-class probability >= t"


def threshold_sweep(y: np.ndarray, scores: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and predicted-positive rate at every distinct score as threshold.

    Args:
        y: (N,) bool, the positive images.
        scores: (N,) float, the positive class's probability.

    Returns:
        {"thresholds", "precision", "recall", "f1", "positive_rate"}: (M,) float64 each,
        thresholds descending (positive when score >= t); precision 0 where nothing is
        predicted positive, recall and F1 0 without positives.
    """
    c = binary_curve(y, scores)
    pos, n = c.positives, len(np.asarray(y).ravel())
    called = c.tps + c.fps
    f1_den = 2 * c.tps + c.fps + (pos - c.tps)
    return {"thresholds": c.thresholds, "precision": c.precision(),
            "recall": c.tps / pos if pos else np.zeros_like(c.tps),
            "f1": np.divide(2 * c.tps, f1_den, out=np.zeros_like(c.tps), where=f1_den > 0),
            "positive_rate": called / n if n else called}


def at_threshold(y: np.ndarray, scores: np.ndarray, t: float) -> dict[str, float]:
    """{"precision", "recall", "f1", "positive_rate"} of the rule score >= ``t`` (0 where a
    denominator is empty)."""
    y = np.asarray(y, bool).ravel()
    called = np.asarray(scores, np.float64).ravel() >= t
    tp, fp, fn = int(np.sum(called & y)), int(np.sum(called & ~y)), int(np.sum(~called & y))
    return {"precision": tp / (tp + fp) if tp + fp else 0.0,
            "recall": tp / (tp + fn) if tp + fn else 0.0,
            "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
            "positive_rate": float(called.mean()) if len(y) else 0.0}


def best_f1_threshold(y: np.ndarray, scores: np.ndarray) -> tuple[float, float] | None:
    """(threshold, F1) of the distinct score that maximises F1 (the highest such threshold
    on a tie); None without a positive image."""
    if not np.asarray(y, bool).any():
        return None
    sweep = threshold_sweep(y, scores)
    i = int(np.argmax(sweep["f1"]))
    return float(sweep["thresholds"][i]), float(sweep["f1"][i])


def binary_thresholds(probs: dict[str, np.ndarray], labels: dict[str, np.ndarray],
                      class_names: list[str], threshold: float | None) -> dict:
    """The threshold summary of a binary model (two classes, the second positive).

    Args:
        probs: {split: (N, 2) probabilities}; the "test" and "val" splits are read.
        labels: {split: (N,) int labels in {0, 1}}.
        threshold: ``evaluate.threshold`` when given, else None (the model's predictions are
            then the higher probability, positive when p > 0.5).

    Returns:
        JSON-ready {"positive_class", "operating_point", "source", "rule", "test": the test
        split's precision, recall, F1 and predicted-positive rate at the operating point,
        "validation_best": {"threshold", "f1", "test"} (the threshold maximising F1 on the
        validation split, and the test split's numbers at it) or None, "validation_note"}.
    """
    t = 0.5 if threshold is None else float(threshold)
    ty, ts = np.asarray(labels["test"]) == 1, np.asarray(probs["test"])[:, 1]
    rule = THRESHOLD_RULE if threshold is not None else (
        "the higher of the two probabilities (positive when the positive-class probability "
        "is above the other's, > 0.5 for probabilities that sum to 1)")
    test = (at_threshold(ty, ts, t) if threshold is not None else
            at_threshold(ty, np.asarray(probs["test"]).argmax(axis=1), 1))
    out = {"positive_class": class_names[1], "operating_point": t,
           "source": "evaluate.threshold" if threshold is not None else "default",
           "rule": rule, "test": test, "validation_best": None, "validation_note": None}
    vy = np.asarray(labels.get("val", np.zeros(0)))
    vs = np.asarray(probs.get("val", np.zeros((0, 2))))
    best = best_f1_threshold(vy == 1, vs[:, 1]) if len(vy) else None
    if best is None:
        out["validation_note"] = ("no validation split" if not len(vy) else
                                  "no positive image in the validation split")
    else:
        out["validation_best"] = {"threshold": best[0], "f1": best[1],
                                  "test": at_threshold(ty, ts, best[0])}
    return out

