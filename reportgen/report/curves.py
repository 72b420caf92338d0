"""The evaluation's PR/ROC curves and a binary model's thresholds on the pages: figures queued,
the AP/AUC table (HTML, Markdown, LaTeX) and the sentences that state what ran.

The numbers come from the test metrics (:mod:`reportgen.evaluate.curves`, computed once in the
evaluate stage); only the curves' points are read from the probabilities here, to draw them.
"""

from __future__ import annotations

import numpy as np

from reportgen import figures as figs
from reportgen.evaluate import curves as cv
from reportgen.report.figjobs import Figures
from reportgen.report.tables import Table, with_interval
from reportgen.text import shorten

NONE: dict[str, dict | None] = {"pr": None, "roc": None, "thr": None}


def _label(name: str, value: float | None, what: str) -> str:
    """A legend entry: the class name (shortened) and its AP or AUC."""
    name = shorten(name, 30)
    return f"{name} ({what} {value:.3f})" if value is not None else f"{name} ({what} –)"


#: Points of one drawn curve at most: a longer one is thinned for the figure (evenly, its end
#: points kept), so SVG and PDF exports stay small; the numbers use every point.
MAX_POINTS = 2000


def _thin(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    n = len(arrays[0])
    if n <= MAX_POINTS:
        return arrays
    keep = np.unique(np.linspace(0, n - 1, MAX_POINTS).round().astype(np.int64))
    return tuple(a[keep] for a in arrays)


def _points(y: np.ndarray, scores: np.ndarray) -> tuple[tuple, tuple | None]:
    """((recall, precision), (fpr, tpr) or None without negatives) of one curve, from the
    origin of each plot, thinned to :data:`MAX_POINTS`."""
    c = cv.binary_curve(y, scores)
    prec = c.precision()
    pr = _thin(np.r_[0.0, c.recall()], np.r_[prec[:1], prec])
    roc = _thin(np.r_[0.0, c.fpr()], np.r_[0.0, c.recall()]) if c.negatives else None
    return pr, roc


def shown_classes(names: list[str], curves: dict) -> list[int]:
    """The classes drawn: a binary model's positive class (the second), else every class with
    test images."""
    if len(names) == 2:
        return [1] if names[1] in curves["classes"] else []
    return [i for i, n in enumerate(names) if n in curves["classes"]]


def curve_figures(figures: Figures, test: dict, probs: np.ndarray, labels: np.ndarray,
                  names: list[str]) -> dict:
    """Queue the PR and ROC figures of the test split (and a binary model's threshold
    figure); return their page data {"pr", "roc", "thr"} (None where not drawn).

    Args:
        test: the test split's metrics, with ``curves`` (and ``thresholds``).
        probs: (N, K) test probabilities; labels: (N,) int test labels.
    """
    c = test.get("curves")
    if not c or not len(labels):
        return dict(NONE)
    y, p = np.asarray(labels), np.asarray(probs, np.float64)
    pr, roc = {}, {}
    for i in shown_classes(names, c):
        e = c["classes"][names[i]]
        a, b = _points(y == i, p[:, i])
        pr[_label(names[i], e["average_precision"], "AP")] = a
        if b is not None:
            roc[_label(names[i], e["roc_auc"], "AUC")] = b
    avg = {}
    if len(names) > 2:
        onehot = (y[:, None] == np.arange(len(names))[None, :]).ravel()
        a, b = _points(onehot, p.ravel())
        avg = {"pr": (_label("micro", c["micro"]["average_precision"], "AP"), *a),
               "roc": (_label("micro", c["micro"]["roc_auc"], "AUC"), *b) if b else None}
    what = (f"the positive class, {names[1]}" if len(names) == 2 else
            "each class against the rest; dashed: the micro average")
    out = dict(NONE)
    if pr:
        out["pr"] = figures.add(
            "pr_curves", figs.pr_curves, pr, average=avg.get("pr"),
            alt=f"Precision-recall curves of the test split ({what}); macro average precision "
                f"{_fmt(c['macro']['average_precision'])}",
            caption=f"Precision against recall on the test split, {what}. {_ci_sentence(c)}")
    if roc:
        out["roc"] = figures.add(
            "roc_curves", figs.roc_curves, roc, average=avg.get("roc"),
            alt=f"ROC curves of the test split ({what}); macro ROC AUC "
                f"{_fmt(c['macro']['roc_auc'])}",
            caption=f"True-positive against false-positive rate on the test split, {what}; "
                    f"dotted: chance. {_ci_sentence(c)}")
    if test.get("thresholds"):
        out["thr"] = _threshold_figure(figures, test["thresholds"], y == 1, p[:, 1])
    return out


def _fmt(v: float | None) -> str:
    return "–" if v is None else f"{v:.3f}"


def _ci_sentence(c: dict) -> str:
    return ("The values, with their 95 % intervals and how they were made, are in the table "
            "above.")


def _threshold_figure(figures: Figures, t: dict, y: np.ndarray, scores: np.ndarray) -> dict:
    sweep = cv.threshold_sweep(y, scores)
    thresholds, *series = _thin(sweep["thresholds"], sweep["precision"], sweep["recall"],
                                sweep["f1"], sweep["positive_rate"])
    values = dict(zip(("precision", "recall", "F1", "predicted positive"), series,
                      strict=True))
    best = t["validation_best"]
    op = t["operating_point"]
    op_label = (f"operating point {op:g} (evaluate.threshold)" if t["source"] != "default"
                else "operating point 0.5 (higher probability)")
    return figures.add(
        "thresholds", figs.threshold_curves, thresholds, values, operating_point=op,
        operating_label=op_label, best=best["threshold"] if best else None,
        best_label=f"best F1 on validation ({best['threshold']:.3f})" if best else "",
        alt=f"Precision, recall, F1 and predicted-positive rate of {t['positive_class']} on "
            f"the test split against the threshold; operating point {op:g}",
        caption=f"Precision, recall, F1 and the share of test images predicted "
                f"{t['positive_class']}, against the threshold (positive when the probability "
                f">= it). Solid line: the operating point used; dashed: the threshold that "
                f"maximises F1 on the validation split (chosen there, never on test).")


def curve_table(test: dict) -> Table | None:
    """The AP/AUC table of the test split, with its intervals; None without curves."""
    c = test.get("curves")
    if not c:
        return None
    support = {n: v["support"] for n, v in test["per_class"].items()}
    rows = [[n, with_interval(e["average_precision"], e["average_precision_ci95"]),
             with_interval(e["roc_auc"], e["roc_auc_ci95"]), support.get(n)]
            for n, e in c["classes"].items()]
    rows += [[f"{avg} average", with_interval(c[avg]["average_precision"],
                                              c[avg]["average_precision_ci95"]),
              with_interval(c[avg]["roc_auc"], c[avg]["roc_auc_ci95"]), None]
             for avg in ("macro", "micro")]
    return Table("curves_test", ["class", "average precision [95 % CI]", "ROC AUC [95 % CI]",
                                 "test images"], rows, curve_caption(c, test["n"]))


def curve_caption(c: dict, n: int) -> str:
    """What the AP/AUC table holds and how its intervals were made, absent classes said."""
    text = (f"Average precision (step-wise, no interpolation, as scikit-learn's "
            f"average_precision_score) and ROC AUC (trapezoid, as roc_auc_score) on the test "
            f"split (n = {n}), each class against the rest; macro: the mean over the "
            f"{len(c['classes'])} classes with test images; micro: every (image, class) pair "
            f"pooled. 95 % intervals: {c['interval']}")
    if c["absent"]:
        text += f". No test image, so no curve: {', '.join(c['absent'])}"
    if c["only_class"]:
        text += (f". Every test image is of {', '.join(c['only_class'])}: no negative, so no "
                 f"ROC AUC")
    return text


def threshold_sentences(t: dict | None) -> list[str]:
    """A binary model's threshold summary in words (empty for other models)."""
    if not t:
        return []
    m = t["test"]
    how = ("set by evaluate.threshold" if t["source"] != "default" else
           "the higher probability; evaluate.threshold not given")
    out = [f"Operating point {t['operating_point']:g} for {t['positive_class']} ({how}): "
           f"on the test split precision {m['precision']:.3f}, recall {m['recall']:.3f}, "
           f"F1 {m['f1']:.3f}, {100 * m['positive_rate']:.1f} % predicted positive."]
    best = t["validation_best"]
    if best is None:
        out.append(f"No threshold was tuned: {t['validation_note']}.")
    else:
        bt = best["test"]
        out.append(f"The threshold that maximises F1 on the validation split is "
                   f"{best['threshold']:.3f} (validation F1 {best['f1']:.3f}); at it the test "
                   f"split has precision {bt['precision']:.3f}, recall {bt['recall']:.3f}, "
                   f"F1 {bt['f1']:.3f}. It is chosen on validation, never on test, and used "
                   f"only when given as evaluate.threshold.")
    return out
