"""PR, ROC and threshold plots; arrays in, a matplotlib Figure out (``ax=None`` draws a new
one)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from reportgen.figures.plots import COLUMN, _figure, styled
from reportgen.text import mathtext

#: Classes drawn each with its own colour and legend entry at most; more are drawn thin and
#: grey, unnamed, under the micro average.
NAMED_CURVES = 10


def _curves(ax: Axes, curves: dict[str, tuple[Sequence[float], Sequence[float]]],
            average: tuple[str, Sequence[float], Sequence[float]] | None, step: bool) -> None:
    """Draw each class's (x, y) curve and the average's, bold and dashed."""
    named = len(curves) <= NAMED_CURVES
    kw: dict[str, Any] = {"drawstyle": "steps-pre"} if step else {}
    for label, (x, y) in curves.items():
        if named:
            ax.plot(x, y, lw=1.2, label=mathtext(label, 60), **kw)
        else:
            ax.plot(x, y, lw=0.6, color="0.7", **kw)
    if average is not None:
        label, x, y = average
        ax.plot(x, y, lw=1.8, ls="--", color="black", label=mathtext(label, 60), **kw)


def _finish(ax: Axes, xlabel: str, ylabel: str, title: str) -> None:
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.set_aspect("equal")
    ax.spines[["top", "right"]].set_visible(False)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.02, 1.0))


@styled
def pr_curves(curves: dict[str, tuple[Sequence[float], Sequence[float]]], *,
              average: tuple[str, Sequence[float], Sequence[float]] | None = None,
              title: str = "Precision-recall", ax: Axes | None = None) -> Figure:
    """Precision against recall, one step curve per class (one-vs-rest).

    Args:
        curves: {legend label: (recall (M,), precision (M,))}, recall rising from 0; each
            precision holds until the next recall (step-wise, as average precision sums it).
        average: (label, recall, precision) of the micro average, drawn bold and dashed.
    """
    fig, ax = _figure(ax, (COLUMN * 1.6, COLUMN))
    _curves(ax, curves, average, step=True)
    _finish(ax, "recall", "precision", title)
    return fig


@styled
def roc_curves(curves: dict[str, tuple[Sequence[float], Sequence[float]]], *,
               average: tuple[str, Sequence[float], Sequence[float]] | None = None,
               title: str = "ROC", ax: Axes | None = None) -> Figure:
    """True-positive rate against false-positive rate, one curve per class (one-vs-rest), with
    the diagonal of a model that guesses.

    Args:
        curves: {legend label: (false-positive rate (M,), true-positive rate (M,))} from (0, 0).
        average: (label, fpr, tpr) of the micro average, drawn bold and dashed.
    """
    fig, ax = _figure(ax, (COLUMN * 1.6, COLUMN))
    ax.plot([0, 1], [0, 1], ls=":", color="gray", lw=0.8, label="chance")
    _curves(ax, curves, average, step=False)
    _finish(ax, "false-positive rate", "true-positive rate", title)
    return fig


@styled
def threshold_curves(thresholds: Sequence[float], values: dict[str, Sequence[float]], *,
                     operating_point: float, operating_label: str,
                     best: float | None = None, best_label: str = "",
                     ax: Axes | None = None) -> Figure:
    """Metrics of a binary model against its threshold, with the operating point used and
    the threshold chosen on the validation split marked as vertical lines.

    Args:
        thresholds: (M,) thresholds (an image is positive when its probability >= each); a
            value holds from the threshold below it up to its own (steps).
        values: {metric name: (M,) its value at each threshold} (precision, recall, F1,
            predicted-positive rate), each in [0, 1].
        operating_point: the threshold the predictions were made at.
        best: the validation split's best-F1 threshold, or None.
    """
    fig, ax = _figure(ax, (COLUMN * 1.9, COLUMN * 0.9))
    t = np.asarray(thresholds, np.float64)
    order = np.argsort(t, kind="stable")
    for name, v in values.items():
        ax.plot(t[order], np.asarray(v, np.float64)[order], lw=1.2, label=mathtext(name, 60),
                drawstyle="steps-pre")
    ax.axvline(operating_point, color="black", lw=1.0, label=mathtext(operating_label, 80))
    if best is not None:
        ax.axvline(best, color="black", lw=1.0, ls="--", label=mathtext(best_label, 80))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("threshold on the positive class's probability")
    ax.set_ylabel("value on the test split")
    ax.set_title("Metrics against the threshold")
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return fig
