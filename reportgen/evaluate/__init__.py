"""Evaluate: classification metrics from predicted probabilities, numpy only.

Conventions: classes are indices 0..K-1; a metric with an empty denominator (precision of a class
never predicted, recall of a class with no sample) is 0, as scikit-learn's ``zero_division=0``;
the loss is the mean categorical cross-entropy with probabilities clipped to [1e-7, 1].
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

CLIP = 1e-7


def to_probabilities(outputs: np.ndarray, head: str | None = None) -> np.ndarray:
    """Return (N, K) probabilities from a classifier's outputs, by the kind of its output
    (``head``, see ``reportgen.explain.graph.HEAD_KINDS``): "binary" (one sigmoid unit p:
    [1 - p, p]), "binary_logit" (one logit z: [1 - sigmoid(z), sigmoid(z)]), "sigmoid"
    (independent sigmoids, as they are), "softmax" or "logits". Without ``head``: ``outputs``
    as they are when every row is non-negative and sums to 1, else their softmax."""
    out = np.asarray(outputs, dtype=np.float64)
    if out.ndim != 2:
        raise ValueError(f"expected (N, K) model outputs, got shape {out.shape}")
    if head in ("binary", "binary_logit"):
        p = out[:, :1] if head == "binary" else 1.0 / (1.0 + np.exp(-out[:, :1]))
        return np.concatenate([1.0 - p, p], axis=1)
    if head in ("sigmoid", "softmax", "probabilities"):
        return out
    if head is None and out.size and out.min() >= 0 and np.allclose(out.sum(axis=1), 1.0,
                                                                    atol=1e-3):
        return out
    z = out - out.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def predict_labels(probs: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """(N,) int64 predicted classes of (N, K) probabilities: the highest (ties: the first);
    with a ``threshold`` and two classes, class 1 where its probability is >= ``threshold``
    (``evaluate.threshold``; ignored for more classes)."""
    probs = np.asarray(probs)
    if not len(probs):
        return np.zeros(0, np.int64)
    if threshold is not None and probs.shape[1] == 2:
        return (probs[:, 1] >= threshold).astype(np.int64)
    return probs.argmax(axis=1).astype(np.int64)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Return (K, K) int64 counts; row = true class, column = predicted class."""
    cm = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(cm, (np.asarray(y_true, int), np.asarray(y_pred, int)), 1)
    return cm


def normalize_rows(cm: np.ndarray) -> np.ndarray:
    """Return each row divided by its sum (float64 in [0, 1]); an empty row stays zeros."""
    cm = np.asarray(cm, np.float64)
    sums = cm.sum(axis=1, keepdims=True)
    return np.divide(cm, sums, out=np.zeros_like(cm), where=sums > 0)


def per_class(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Return precision, recall, f1 (float64 (K,)) and support (int64 (K,)) from counts."""
    cm = np.asarray(cm, np.float64)
    tp = np.diag(cm)
    predicted = cm.sum(axis=0)
    actual = cm.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return {"precision": precision, "recall": recall, "f1": f1,
            "support": actual.astype(np.int64)}


def top_k_accuracy(probs: np.ndarray, y_true: np.ndarray, k: int) -> float:
    """Return the fraction of samples whose true class is among the k highest scores (ties
    broken by class index, lowest first)."""
    if len(y_true) == 0:
        return float("nan")
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return float(np.mean(np.any(order == np.asarray(y_true)[:, None], axis=1)))


def cross_entropy(probs: np.ndarray, y_true: np.ndarray) -> float:
    """Return the mean of -log p[true class], p clipped to [1e-7, 1]."""
    if len(y_true) == 0:
        return float("nan")
    p = np.clip(probs[np.arange(len(y_true)), y_true], CLIP, 1.0)
    return float(-np.mean(np.log(p)))


def calibration(probs: np.ndarray, y_true: np.ndarray, bins: int = 10) -> dict:
    """Reliability of the top-1 confidence: equal-width bins over (0, 1].

    Returns:
        {"ece": expected calibration error (bin-weighted |accuracy - confidence|),
         "bins": [{"lower", "upper", "count", "confidence", "accuracy"}]}; an empty bin has
         confidence and accuracy None.
    """
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == y_true).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, bins - 1)
    out, ece = [], 0.0
    for b in range(bins):
        sel = idx == b
        n = int(sel.sum())
        c = float(conf[sel].mean()) if n else None
        a = float(correct[sel].mean()) if n else None
        if c is not None and a is not None:
            ece += n / len(conf) * abs(a - c)
        out.append({"lower": float(edges[b]), "upper": float(edges[b + 1]), "count": n,
                    "confidence": c, "accuracy": a})
    return {"ece": float(ece) if len(conf) else float("nan"), "bins": out}


def split_metrics(probs: np.ndarray, y_true: np.ndarray, class_names: list[str],
                  top_k: int = 3, present: list[int] | None = None,
                  threshold: float | None = None) -> dict:
    """Return every metric of one split as JSON-ready plain data.

    Args:
        probs: (N, K) probabilities over the K classes of ``class_names``.
        y_true: (N,) true class indices.
        present: the classes with images in the data set (None: all K). The per-class
            metrics and the macro F1 cover these only; the confusion matrix is
            (len(present), K): a row per present true class (``confusion_rows``), a column
            for every class the model can predict. Every class stays predictable, so an
            image predicted as a class without images counts as an error.
        threshold: a binary model's operating point (:func:`predict_labels`); None: the highest
            probability.
    """
    y_true = np.asarray(y_true, np.int64)
    k = len(class_names)
    rows = list(range(k)) if present is None else [int(c) for c in present]
    pred = predict_labels(probs, threshold)
    full = confusion_matrix(y_true, pred, k)
    pc = per_class(full)
    cm = full[rows]
    shown = {c: class_names[c] for c in rows}
    result = {
        "n": int(len(y_true)),
        "accuracy": float(np.mean(pred == y_true)) if len(y_true) else float("nan"),
        "accuracy_ci95": list(wilson_interval(int(np.sum(pred == y_true)), len(y_true))),
        "loss": cross_entropy(probs, y_true),
        "confusion_matrix": cm.tolist(),
        "confusion_matrix_normalized": normalize_rows(cm).round(6).tolist(),
        "per_class": {
            name: {"precision": float(pc["precision"][i]), "recall": float(pc["recall"][i]),
                   "f1": float(pc["f1"][i]), "support": int(pc["support"][i])}
            for i, name in shown.items()},
        "macro_f1": float(pc["f1"][rows].mean()) if rows else float("nan"),
    }
    if len(rows) < k:
        result["confusion_rows"] = list(shown.values())
        result["absent_classes"] = [n for i, n in enumerate(class_names) if i not in shown]
    f1_ci, macro_ci = f1_posterior(full, classes=rows)
    predicted, actual = full.sum(axis=0), full.sum(axis=1)
    for j, (i, name) in enumerate(shown.items()):
        row, tp = result["per_class"][name], int(full[i, i])
        row["precision_ci95"] = list(wilson_interval(tp, int(predicted[i])))
        row["recall_ci95"] = list(wilson_interval(tp, int(actual[i])))
        row["f1_ci95"] = f1_ci[j].tolist()
    result["macro_f1_ci95"] = macro_ci
    result["interval_methods"] = dict(INTERVAL_METHODS)
    if k > top_k:
        top = top_k_accuracy(probs, y_true, top_k)
        result[f"top_{top_k}_accuracy"] = top
        result[f"top_{top_k}_accuracy_ci95"] = list(
            wilson_interval(round(top * len(y_true)) if len(y_true) else 0, len(y_true)))
    if len(y_true):
        result["calibration"] = calibration(probs, y_true)
    return result


def prediction_summary(probs: np.ndarray, class_names: list[str], top_k: int = 5) -> dict:
    """What can be said of predictions without labels, as JSON-ready plain data.

    Returns:
        {"n", "labeled": False, "mean_confidence" (mean top-1 probability),
        "per_class": {class: {"predicted": images predicted as it, "mean_confidence"}} for the
        predicted classes only, most often predicted first (ties by class order),
        "top": [[class, probability] * top_k] per image, most probable first}.
    """
    probs = np.asarray(probs, np.float64)
    pred = probs.argmax(axis=1) if len(probs) else np.zeros(0, np.int64)
    conf = probs.max(axis=1) if len(probs) else np.zeros(0)
    counts = np.bincount(pred, minlength=len(class_names))
    order = [int(c) for c in np.argsort(-counts, kind="stable") if counts[c]]
    k = min(top_k, len(class_names))
    top = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return {
        "n": int(len(probs)), "labeled": False,
        "mean_confidence": float(conf.mean()) if len(conf) else float("nan"),
        "per_class": {class_names[c]: {"predicted": int(counts[c]),
                                       "mean_confidence": float(conf[pred == c].mean())}
                      for c in order},
        "top": [[[class_names[int(c)], float(p[c])] for c in row]
                for row, p in zip(top, probs, strict=True)],
    }


#: A model that predicts one class for at least this share of the labelled images ...
ONE_CLASS_SHARE = 0.9
#: ... when that is this much more than the labels give the class, is flagged
#: (:func:`model_warnings`): it does not tell the classes apart.
ONE_CLASS_EXCESS = 0.3
#: Inference-mode accuracy on the training images this much (or more) below the training
#: accuracy of the epoch kept is flagged.
TRAIN_GAP = 0.2
#: Fewer labelled images than this are never flagged (too few to say).
WARN_MIN_IMAGES = 10


def kept_epoch(history: dict[str, list[float]], min_epochs: int = 1) -> int:
    """The 0-based epoch whose weights ``reportgen.model.train`` kept: the first with the
    lowest validation loss (training loss without validation) from epoch ``min_epochs``
    (1-based) on; the last epoch of a run not longer than that."""
    losses = history.get("val_loss") or history.get("loss") or []
    start = max(min_epochs - 1, 0)
    if len(losses) <= start:
        return max(len(losses) - 1, 0)
    return start + int(np.argmin(losses[start:]))


def model_warnings(probs: dict[str, np.ndarray], labels: dict[str, np.ndarray],
                   class_names: list[str], history: dict[str, list[float]],
                   min_epochs: int = 1, threshold: float | None = None) -> list[str]:
    """Warnings that the model does not work, each saying what to try (empty when none).

    Flags a model that predicts one class for (nearly) every labelled image of all splits
    (:data:`ONE_CLASS_SHARE`, :data:`ONE_CLASS_EXCESS`), and a model trained here whose
    inference-mode accuracy on its training images is :data:`TRAIN_GAP` or more below the
    training accuracy of the epoch kept (:func:`kept_epoch`).

    Args:
        probs: {split: (N, K) float probabilities}.
        labels: {split: (N,) int labels; negative: no label}.
        history: the training history ({} for a model not trained here).
        threshold: a binary model's operating point (:func:`predict_labels`) for the
            one-class check; the training gap compares the highest probability, as Keras's
            training accuracy does.
    """
    out = []
    pred = np.concatenate([predict_labels(probs[s], threshold) for s in probs if len(probs[s])]
                          or [np.zeros(0, np.int64)])
    true = np.concatenate([np.asarray(labels[s]) for s in probs if len(probs[s])]
                          or [np.zeros(0, np.int64)])
    pred, true = pred[true >= 0], true[true >= 0]
    if len(true) >= WARN_MIN_IMAGES and len(class_names) > 1:
        top = int(np.bincount(pred, minlength=len(class_names)).argmax())
        share, given = float(np.mean(pred == top)), float(np.mean(true == top))
        if share >= ONE_CLASS_SHARE and share - given >= ONE_CLASS_EXCESS:
            tried = ("Try more epochs (training.epochs), a lower training.learning_rate or "
                     "more images per class, and check that each class folder holds its "
                     "class." if history else
                     "Check model.preprocess (the pixel scaling the model was trained with), "
                     "the image size and channels it expects, and data.classes (the order of "
                     "its outputs).")
            out.append(f"The model predicts {class_names[top]!r} for {_pct(share)} of the "
                       f"{len(true)} labelled images (the labels give it {_pct(given)}): it "
                       f"does not tell the classes apart, and its accuracy means little. "
                       + tried)
    train_true = np.asarray(labels.get("train", []))
    if history.get("accuracy") and (train_true >= 0).sum() >= WARN_MIN_IMAGES:
        epoch = kept_epoch(history, min_epochs)
        trained = history["accuracy"][epoch]
        ok = train_true >= 0
        inference = float(np.mean(np.asarray(probs["train"]).argmax(axis=1)[ok]
                                  == train_true[ok]))
        if trained - inference >= TRAIN_GAP:
            out.append(f"In inference mode the model is right on {_pct(inference)} of its "
                       f"training images, while training reached {_pct(trained)} in epoch "
                       f"{epoch + 1}, whose weights were kept: the network that predicts is "
                       "not the one that trained (BatchNorm statistics, dropout). Try a larger "
                       "training.batch_size, more training images or a lower "
                       "training.learning_rate.")
    return out


def _pct(share: float) -> str:
    """``share`` (0..1) as "97.6 %"."""
    return f"{100 * share:.1f} %"


def misclassified(labels: np.ndarray, probs: np.ndarray,
                  threshold: float | None = None) -> np.ndarray:
    """Indices of the images whose predicted class (:func:`predict_labels`) is not their label;
    images without a label (negative) are never misclassified."""
    labels = np.asarray(labels)
    if not len(labels):
        return np.zeros(0, np.int64)
    return np.flatnonzero((labels >= 0) & (predict_labels(probs, threshold) != labels))


def wilson_interval(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95 % for the default z); (nan, nan) when
    n = 0. Unlike the normal approximation it stays inside [0, 1] and is sensible at 0 % and
    100 %."""
    if n == 0:
        return float("nan"), float("nan")
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # At 0 and n successes a bound is exactly 0 or 1 (the float sum can miss it by 1e-16).
    lo = 0.0 if successes == 0 else max(0.0, centre - half)
    hi = 1.0 if successes == n else min(1.0, centre + half)
    return float(lo), float(hi)


#: Resamples of every bootstrap interval of a report (seed 0).
RESAMPLES = 1000


def _percentile_interval(values: np.ndarray, level: float = 0.95) -> list[float]:
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(values, [tail, 100 - tail], axis=0)
    return [lo, hi]


#: Monte Carlo draws of every Bayesian F1 interval of a report (seed 0).
F1_DRAWS = 4000
#: Prior pseudo-count of each class's true positives, false positives and false negatives
#: (Jeffreys) in :func:`f1_posterior`.
F1_PRIOR = 0.5
#: How every interval of ``split_metrics`` was made, as stated on the pages and in
#: metrics.json (``splits.<split>.interval_methods``).
INTERVAL_METHODS = {
    "accuracy": "Wilson score interval",
    "top_k_accuracy": "Wilson score interval",
    "precision": "Wilson score interval",
    "recall": "Wilson score interval",
    "f1": (f"Bayesian interval (Goutte & Gaussier 2005): posterior of the confusion counts "
           f"with a Jeffreys prior ({F1_PRIOR:g} pseudo-count of each class's true "
           f"positives, false positives and false negatives), central 95 % of "
           f"{F1_DRAWS} seeded Monte Carlo draws, widened where needed to hold the observed "
           f"F1 (0 for a class never right, 1 for a class without errors)"),
    "macro_f1": (f"Bayesian interval: the same posterior over the whole confusion matrix, "
                 f"central 95 % of {F1_DRAWS} seeded Monte Carlo draws of the macro F1, "
                 f"widened where needed to hold the observed macro F1"),
}


def f1_posterior(cm: np.ndarray, *, draws: int = F1_DRAWS, seed: int = 0,
                 level: float = 0.95, prior: float = F1_PRIOR,
                 classes: list[int] | None = None) -> tuple[np.ndarray, list[float]]:
    """Bayesian intervals of every class's F1 and of the macro F1 from a confusion matrix.

    The model (Goutte & Gaussier, ECIR 2005): the cells of the confusion matrix are
    multinomial with Dirichlet-distributed probabilities. The posterior is sampled as
    independent Gamma(shape, 1) variables, one per cell with a positive shape: each
    off-diagonal count ``c`` gets shape ``c``; each diagonal cell ``c + prior``; and each
    class two pseudo-cells of shape ``prior``, one false positive and one false negative that
    belong to no other class. Class k's true positives, false positives and false negatives
    are its diagonal cell, its column and its row (each with its pseudo-cell), so their
    posterior is Gamma(tp + prior), Gamma(fp + prior), Gamma(fn + prior) and F1 =
    2 TP / (2 TP + FP + FN) (a ratio, so the Dirichlet's normalization drops out). Unlike a
    bootstrap it does not collapse to a point when a class has no error: with 27 images all
    right and no false positive the interval of its F1 is about [0.93, 1], not [1, 1].

    Draws come from ``numpy.random.default_rng(seed)`` in blocks of 500: each block draws the
    off-diagonal cells (row-major order of the non-zero ones), then the diagonal, then the
    false-positive and false-negative pseudo-cells, each as ``rng.standard_gamma(shapes,
    size=(b, len(shapes)))``.

    Args:
        cm: (K, K) counts, row = true class.
        classes: the classes whose F1 is reported and averaged into the macro F1 (None: all
            K; a loaded model scored on the classes that have images).

    Returns:
        ((C, 2) float64 [low, high] per class of ``classes`` (C = K when None), [low, high]
        of the macro F1 over them): the central
        ``level`` interval of the draws (linear interpolation), widened where needed to hold
        the observed F1 (:func:`per_class`): a class never right gets 0 as its lower bound, a
        class without errors 1 as its upper (as the Jeffreys interval of a proportion does at
        0 and n, Brown, Cai & DasGupta 2001), and where few images leave the prior pulling
        the posterior away from the observed value the bound on its side moves to it.
        Widening only raises the coverage. NaN without images.
    """
    cm = np.asarray(cm, np.float64)
    k = len(cm)
    keep = list(range(k)) if classes is None else list(classes)
    if k == 0 or cm.sum() == 0 or not keep:
        return np.full((len(keep), 2), np.nan), [float("nan"), float("nan")]
    f1 = _f1_draws(cm, draws, seed, prior)[:, keep]  # (draws, C)
    obs = per_class(cm)["f1"][keep]
    lo, hi = _percentile_interval(f1, level)
    mlo, mhi = _percentile_interval(f1.mean(axis=1), level)
    per = np.stack([np.minimum(lo, obs), np.maximum(hi, obs)], axis=1)
    return per, [float(min(mlo, obs.mean())), float(max(mhi, obs.mean()))]


def _f1_draws(cm: np.ndarray, draws: int, seed: int, prior: float) -> np.ndarray:
    """(draws, K) float64 posterior draws of every class's F1 from the (K, K) float64 counts
    ``cm``, drawn as :func:`f1_posterior` documents."""
    k = len(cm)
    rng = np.random.default_rng(seed)
    rows, cols = np.nonzero(~np.eye(k, dtype=bool) & (cm > 0))
    shapes_off, shapes_diag = cm[rows, cols], np.diag(cm) + prior
    f1s = []
    for start in range(0, draws, 500):
        b = min(500, draws - start)
        g_off = rng.standard_gamma(shapes_off, size=(b, len(shapes_off)))
        tp = rng.standard_gamma(shapes_diag, size=(b, k))
        fp = rng.standard_gamma(np.full(k, prior), size=(b, k))
        fn = rng.standard_gamma(np.full(k, prior), size=(b, k))
        shift = (np.arange(b) * k)[:, None]
        fp += np.bincount((cols + shift).ravel(), g_off.ravel(), b * k).reshape(b, k)
        fn += np.bincount((rows + shift).ravel(), g_off.ravel(), b * k).reshape(b, k)
        f1s.append(2 * tp / (2 * tp + fp + fn))
    return np.concatenate(f1s)


def bootstrap_mean(values: np.ndarray, *, resamples: int = RESAMPLES, seed: int = 0,
                   level: float = 0.95) -> list[float]:
    """Percentile bootstrap interval of the mean of ``values`` (NaN left out first): resamples
    draw N indices with replacement, ``rng.integers(0, N, size=(b, N))`` with ``rng =
    numpy.random.default_rng(seed)``, in blocks of b = 100 resamples (the last block smaller).
    [nan, nan] without values."""
    v = np.asarray(values, np.float64).ravel()
    v = v[np.isfinite(v)]
    n = len(v)
    if n == 0:
        return [float("nan"), float("nan")]
    means = np.concatenate([v[idx].mean(1) for idx in _resampled(n, resamples, seed)])
    lo, hi = _percentile_interval(means, level)
    return [float(lo), float(hi)]


def _resampled(n: int, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """The image indices of the percentile bootstraps, as :func:`bootstrap_mean` states:
    blocks of (b, n) int64 indices in [0, n), b = 100 (the last block smaller)."""
    rng = np.random.default_rng(seed)
    for start in range(0, resamples, 100):
        yield rng.integers(0, n, size=(min(100, resamples - start), n))


def paired_best(values: dict[str, np.ndarray], lower_is_better: bool, *, absolute: bool = False,
                resamples: int = RESAMPLES, seed: int = 0, level: float = 0.95) -> dict | None:
    """Which methods are best on the same images, by a paired bootstrap of the differences.

    ``values`` holds each method's per-image scores over the same N images (NaN where a score
    is undefined; images without a finite score for every method are left out first). The
    statistic is the mean (``absolute``: the absolute value of the mean). The best method has
    the best statistic on all images; another method is *separated* from it when the
    ``level`` percentile interval of (its statistic minus the best's, worse-signed) over the
    resamples lies above 0. Resamples draw image indices as :func:`bootstrap_mean`, the same
    indices for every method (so the comparison is paired).

    Returns:
        None with fewer than two methods or no image; else {"best": the best method,
        "tied": the best and every method not separated from it, in ``values`` order,
        "separated": whether every other method is separated, "n": images compared,
        "scored": images where at least one method has a score (more than ``n`` when some
        method lacks a score where another has one: each method's own mean then covers
        other images than those compared), "means": {method: its statistic on the ``n``
        images compared}, "difference_ci95": {method: [low, high] of its worse-signed
        difference to the best}}.
    """
    names = list(values)
    if len(names) < 2:
        return None
    v = np.stack([np.asarray(values[m], np.float64).ravel() for m in names])  # (M, N)
    finite = np.isfinite(v)
    scored = int(finite.any(axis=0).sum())
    v = v[:, finite.all(axis=0)]
    n = v.shape[1]
    if n == 0:
        return None

    def stat(x):
        mean = x.mean(axis=-1)
        return np.abs(mean) if absolute else mean
    sign = 1.0 if lower_is_better else -1.0
    full = sign * stat(v)
    best = int(np.argmin(full))
    diffs = []
    for idx in _resampled(n, resamples, seed):
        s = sign * stat(v[:, idx])  # (M, b)
        diffs.append(s - s[best])
    d = np.concatenate(diffs, axis=1)
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(d, [tail, 100 - tail], axis=1)  # (M,) each
    tied = [m for k, m in enumerate(names) if k == best or not lo[k] > 0]
    return {"best": names[best], "tied": tied, "separated": len(tied) == 1, "n": int(n),
            "scored": scored,
            "means": {m: float(sign * full[k]) for k, m in enumerate(names)},
            "difference_ci95": {m: [float(lo[k]), float(hi[k])] for k, m in enumerate(names)
                                if k != best}}


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar test: the discordant pairs ``b`` (first model right, second
    wrong) and ``c`` (the reverse) under H0 are Binomial(b + c, 1/2); p = min(1, 2 P(X <=
    min(b, c))), computed with exact integers. 1.0 when there is no discordant pair."""
    from fractions import Fraction
    from math import comb

    n = b + c
    if n == 0:
        return 1.0
    tail = Fraction(sum(comb(n, i) for i in range(min(b, c) + 1)), 2 ** n)
    return float(min(Fraction(1), 2 * tail))


def paired_difference(correct_a: np.ndarray, correct_b: np.ndarray,
                      z: float = 1.959963984540054) -> tuple[float, float, float]:
    """The accuracy difference B - A on the same images with Newcombe's hybrid score interval
    for paired proportions (Newcombe 1998, method 10; recommended by Fagerland, Lydersen &
    Laake 2013). With n images, a both right, b only B right, c only A right, d both wrong,
    p_B = (a + b) / n and p_A = (a + c) / n with Wilson intervals (l_B, u_B), (l_A, u_A), and
    the correlation estimate phi = (ad - bc - n/2) / sqrt((a + b)(c + d)(a + c)(b + d)) when
    ad - bc > n/2, (ad - bc) / sqrt(...) when ad - bc < 0, else 0 (and 0 when the product
    is 0), as Fagerland, Lydersen & Laake give it:

        low  = D - sqrt((p_B - l_B)^2 - 2 phi (p_B - l_B)(u_A - p_A) + (u_A - p_A)^2)
        high = D + sqrt((u_B - p_B)^2 - 2 phi (u_B - p_B)(p_A - l_A) + (p_A - l_A)^2)

    with D = p_B - p_A. Built from Wilson intervals, it keeps its coverage where a bootstrap
    collapses: two models right on every image get about [-0.04, 0.04] at n = 100, not [0, 0].

    Args:
        correct_a, correct_b: (N,) bool, whether each model is right on each image.

    Returns:
        (difference, interval low, interval high), as fractions; NaN without images.
    """
    ra = np.asarray(correct_a, bool)
    rb = np.asarray(correct_b, bool)
    n = len(ra)
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    a, b = int(np.sum(ra & rb)), int(np.sum(rb & ~ra))
    c, d = int(np.sum(ra & ~rb)), int(np.sum(~ra & ~rb))
    pb, pa = (a + b) / n, (a + c) / n
    lb, ub = wilson_interval(a + b, n, z)
    la, ua = wilson_interval(a + c, n, z)
    prod = (a + b) * (c + d) * (a + c) * (b + d)
    cross = a * d - b * c
    # The correlation estimate with Newcombe's continuity correction: 0 for 0 <= cross <= n/2.
    phi = (0.0 if not prod else (cross - n / 2) / np.sqrt(prod) if cross > n / 2
           else min(cross, 0) / np.sqrt(prod))
    diff = pb - pa
    low = diff - np.sqrt(max(0.0, (pb - lb) ** 2 - 2 * phi * (pb - lb) * (ua - pa)
                             + (ua - pa) ** 2))
    high = diff + np.sqrt(max(0.0, (ub - pb) ** 2 - 2 * phi * (ub - pb) * (pa - la)
                              + (pa - la) ** 2))
    return float(diff), float(max(-1.0, low)), float(min(1.0, high))


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two arrays (average ranks for ties); NaN when either is
    constant."""
    ra, rb = _ranks(a), _ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def _ranks(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, np.float64).ravel()
    order = np.argsort(v, kind="stable")
    r = np.empty(len(v))
    r[order] = np.arange(len(v))
    _, inv, cnt = np.unique(v, return_inverse=True, return_counts=True)
    return (np.bincount(inv, weights=r) / cnt)[inv]  # average ranks of ties
