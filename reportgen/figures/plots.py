"""Plots of data, training and evaluation; each returns a matplotlib Figure."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from reportgen.text import mathtext


def _figure(ax: Axes | None, figsize=(6.0, 4.0)) -> tuple[Figure, Axes]:
    if ax is None:
        fig = Figure(figsize=figsize, layout="tight")
        ax = fig.subplots()
    else:
        fig = ax.figure
    return fig, ax


def class_distribution(counts: dict[str, Sequence[int]], class_names: Sequence[str], *,
                       title: str = "Images per class and split", ax: Axes | None = None
                       ) -> Figure:
    """Grouped bar chart of images per class and split.

    Args:
        counts: {split name: (K,) image counts per class}.
        class_names: the K class names (x tick labels).
    """
    k = len(class_names)
    fig, ax = _figure(ax, (min(max(5.0, 0.9 * k + 2), MAX_WIDTH), 3.6 if k <= 20 else 4.4))
    names = list(counts)
    width = 0.8 / max(len(names), 1)
    x = np.arange(k)
    for i, split in enumerate(names):
        bars = ax.bar(x + (i - (len(names) - 1) / 2) * width, counts[split], width, label=split)
        if k * len(names) <= 40:  # numbers on the bars while they fit
            ax.bar_label(bars, fontsize=7, padding=1)
    ax.set_xticks(*_ticks(k, class_names), rotation=30 if k <= 20 else 90,
                  ha="right" if 6 < k <= 20 else "center", fontsize=_tick_size(k))
    if k <= 6:
        ax.tick_params(axis="x", rotation=0)
    ax.set_ylabel("images")
    ax.set_title(mathtext(title, 80))
    ax.legend(frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def training_curves(history: dict[str, Sequence[float]], *, axes: Sequence[Axes] | None = None
                    ) -> Figure:
    """Accuracy and loss per epoch, train and validation, side by side.

    Args:
        history: Keras-style {"accuracy": [...], "val_accuracy": [...], "loss": [...],
            "val_loss": [...]}; missing series are left out.
    """
    if axes is None:
        fig = Figure(figsize=(9.0, 3.4), layout="tight")
        axes = fig.subplots(1, 2)
    else:
        fig = axes[0].figure
    for ax, metric, title in ((axes[0], "accuracy", "Accuracy"), (axes[1], "loss", "Loss")):
        for prefix, label, style in (("", "train", "-"), ("val_", "validation", "--")):
            series = history.get(prefix + metric)
            if series:
                ax.plot(np.arange(1, len(series) + 1), series, style, marker="o", ms=3,
                        label=label)
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(frameon=False)
        ax.spines[["top", "right"]].set_visible(False)
    return fig


def confusion_matrix(cm: np.ndarray, class_names: Sequence[str], *, normalized: bool = False,
                     title: str | None = None, ax: Axes | None = None) -> Figure:
    """Confusion matrix heatmap, with a number in every cell up to :data:`CELL_TEXT` classes
    (larger matrices are drawn as a heatmap only, the figure size capped, so the cost and the
    legibility do not follow the square of the class count).

    Args:
        cm: (K, K) counts (row = true class), or row-normalized fractions with
            ``normalized=True`` (shown as percentages).
    """
    k = len(class_names)
    side = 0.6 * k + 2.0 if k <= CELL_TEXT else min(0.16 * k + 4.0, MAX_WIDTH)
    fig, ax = _figure(ax, (max(3.6, side), max(3.2, side - 0.4)))
    cm = np.asarray(cm, dtype=float)
    vmax = 1.0 if normalized else max(cm.max(), 1.0)
    im = ax.imshow(cm, cmap="Blues", vmin=0, vmax=vmax)
    if k <= CELL_TEXT:
        for i in range(k):
            for j in range(k):
                v = cm[i, j]
                text = f"{100 * v:.0f}%" if normalized else f"{int(v)}"
                ax.text(j, i, text, ha="center", va="center", fontsize=8,
                        color="white" if v > 0.6 * vmax else "black")
    ax.set_xticks(*_ticks(k, class_names), rotation=45 if k <= CELL_TEXT else 90,
                  ha="right" if k <= CELL_TEXT else "center", fontsize=_tick_size(k))
    ax.set_yticks(*_ticks(k, class_names), fontsize=_tick_size(k))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(mathtext(title, 80) if title else
                 ("Confusion matrix (row %)" if normalized else "Confusion matrix"))
    fig.colorbar(im, ax=ax, shrink=0.8)
    return fig


def reliability_diagram(bins: Sequence[dict], *, ece: float | None = None,
                        ax: Axes | None = None) -> Figure:
    """Accuracy against mean confidence per confidence bin, with the diagonal of perfect
    calibration.

    Args:
        bins: [{"lower", "upper", "count", "confidence", "accuracy"}] as
            :func:`reportgen.evaluate.calibration` returns.
    """
    fig, ax = _figure(ax, (4.0, 4.0))
    lows = np.array([b["lower"] for b in bins])
    widths = np.array([b["upper"] - b["lower"] for b in bins])
    acc = np.array([b["accuracy"] if b["accuracy"] is not None else 0.0 for b in bins])
    ax.bar(lows, acc, widths, align="edge", edgecolor="black", alpha=0.7, label="accuracy")
    ax.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title("Reliability" + (f" (ECE {ece:.3f})" if ece is not None else ""))
    ax.legend(frameon=False, loc="upper left")
    return fig


def grouped_distribution(values: dict[str, Sequence[float]], *, ylabel: str,
                         title: str | None = None, ax: Axes | None = None) -> Figure:
    """Box plot of one value per item, one box per group (NaN values left out), with each
    group's count under its label.

    Args:
        values: {group name: values}, in the order to draw.
    """
    names = list(values)
    fig, ax = _figure(ax, (max(4.0, 0.8 * len(names) + 2), 3.4))
    data = [np.asarray(v, float)[np.isfinite(np.asarray(v, float))] for v in values.values()]
    ax.boxplot([d if len(d) else [np.nan] for d in data], showfliers=True)
    ax.set_xticks(range(1, len(names) + 1),
                  [f"{mathtext(n)}\n(n = {len(d)})" for n, d in zip(names, data)],
                  rotation=30 if len(names) > 6 else 0)
    ax.set_ylabel(ylabel)
    ax.axhline(0, color="gray", lw=0.8, ls=":")
    if title:
        ax.set_title(mathtext(title, 80))
    ax.spines[["top", "right"]].set_visible(False)
    return fig


#: Classes up to which a confusion matrix has a number in every cell.
CELL_TEXT = 25
#: Widest figure in inches (a two-column page is about 7 in; wider figures are scaled down).
MAX_WIDTH = 16.0
#: Tick labels shown at most on an axis of classes (every n-th beyond).
MAX_TICKS = 100


def _ticks(k: int, names: Sequence[str]) -> tuple[list[int], list[str]]:
    """Tick positions and labels for ``k`` classes: all, or every n-th past MAX_TICKS."""
    step = max(1, int(np.ceil(k / MAX_TICKS)))
    pos = list(range(0, k, step))
    return pos, labels([names[i] for i in pos])


def _tick_size(k: int) -> float:
    return 9.0 if k <= 12 else max(4.0, 9.0 * 12 / k) if k > 40 else 7.0


def labels(names: Sequence[str]) -> list[str]:
    """Class names as tick labels: :func:`reportgen.text.mathtext` (never parsed as mathtext,
    control characters shown as spaces, cut to 40 characters)."""
    return [mathtext(n, 28) for n in names]


#: Vector files keep their text as text (selectable, editable, and set in the paper's fonts by
#: tools that substitute them): SVG <text> elements, TrueType (Type 42) fonts in PDF.
VECTOR_TEXT = {"svg.hashsalt": "reportgen", "svg.fonttype": "none", "pdf.fonttype": 42}


def save_figure(fig: Figure, stem: str | Path, formats: Sequence[str] = ("png", "svg"),
                dpi: int = 110) -> list[Path]:
    """Write ``fig`` as ``stem.<format>`` for each format; return the paths. The files depend
    only on the figure (no dates, fixed SVG ids), so rebuilding a report changes no bytes."""
    import matplotlib

    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    with matplotlib.rc_context(VECTOR_TEXT):
        for fmt in formats:
            path = stem.with_suffix(f".{fmt}")
            fig.savefig(path, dpi=dpi, metadata={"svg": {"Date": None},
                                                 "pdf": {"CreationDate": None}}.get(fmt))
            paths.append(path)
    return paths
