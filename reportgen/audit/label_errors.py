"""Likely label errors by confident learning (Northcutt, Jiang and Chuang, "Confident
Learning: Estimating Uncertainty in Dataset Labels", JAIR 2021), from out-of-sample
probabilities: a model's predictions on val or test images it did not train on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def class_thresholds(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-class thresholds t_j: the mean predicted probability of class j over the images
    labelled j (NaN for a class with no labelled image: no image ever reaches it).

    Args:
        probs: (N, C) probabilities.
        labels: (N,) int class indices (negative: unlabeled, ignored).

    Returns:
        (C,) float64.
    """
    probs, labels = np.asarray(probs, np.float64), np.asarray(labels)
    out = np.full(probs.shape[1], np.nan)
    for j in range(probs.shape[1]):
        mine = labels == j
        if mine.any():
            out[j] = probs[mine, j].mean()
    return out


@dataclass
class LabelIssues:
    """The likely label errors of one split, most suspicious first.

    Attributes:
        index: (K,) int indices of the images.
        suggested: (K,) int the class the confident joint puts each image in.
        self_confidence: (K,) float the predicted probability of the given label (ascending).
        thresholds: (C,) the per-class thresholds used.
    """

    index: np.ndarray
    suggested: np.ndarray
    self_confidence: np.ndarray
    thresholds: np.ndarray


def label_issues(probs: np.ndarray, labels: np.ndarray) -> LabelIssues:
    """The off-diagonal of the confident joint, ranked by self-confidence.

    Image i with given label y counts towards class k of the confident joint when
    p_k >= t_k (:func:`class_thresholds`), k being the most probable such class; it is a
    likely label error when k exists and is not y (cleanlab's ``filter_by =
    "confident_learning"``). Ranked by the probability of y, lowest first; ties by index.

    Args:
        probs: (N, C) probabilities of images the model did not train on.
        labels: (N,) int given labels.
    """
    probs, labels = np.asarray(probs, np.float64), np.asarray(labels, np.int64)
    t = class_thresholds(probs, labels)
    above = probs >= np.where(np.isnan(t), np.inf, t)[None, :]
    masked = np.where(above, probs, -np.inf)
    joint = masked.argmax(axis=1)
    has = above.any(axis=1)
    valid = labels >= 0
    flagged = np.flatnonzero(has & valid & (joint != np.where(valid, labels, 0)))
    self_conf = probs[flagged, labels[flagged]]
    order = np.lexsort((flagged, self_conf))
    idx = flagged[order]
    return LabelIssues(idx, joint[idx], self_conf[order], t)
