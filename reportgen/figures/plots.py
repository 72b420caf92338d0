"""Plots of data, training and evaluation; each returns a matplotlib Figure."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from reportgen.text import mathtext

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType


#: Paper sizes: a single column and a full two-column width, in inches.
COLUMN, FULL = 3.3, 6.8
#: Text sizes of every figure (points), as a paper's figures have them: 7-9 pt at the sizes
#: above, so a figure drops into a column unscaled.
STYLE: dict[RcKeyType, Any] = {
    "font.size": 8, "axes.titlesize": 9, "axes.labelsize": 8, "xtick.labelsize": 7,
    "ytick.labelsize": 7, "legend.fontsize": 7, "figure.titlesize": 9}


def styled(plot: Callable[..., Figure]) -> Callable[..., Figure]:
    """Draw ``plot`` with :data:`STYLE` (matplotlib reads it as each artist is made)."""
    @functools.wraps(plot)
    def draw(*args, **kwargs) -> Figure:
        import matplotlib
        with matplotlib.rc_context(STYLE):
            return plot(*args, **kwargs)
    return draw


def _figure(ax: Axes | None, figsize=(FULL, 3.0)) -> tuple[Figure, Axes]:
    if ax is None:
        fig = Figure(figsize=figsize, layout="tight")
        ax = fig.subplots()
    else:
        fig = _figure_of(ax)
    return fig, ax


def _figure_of(ax: Axes) -> Figure:
    """The figure that holds ``ax`` (the outermost one, when ``ax`` is in a subfigure)."""
    fig = ax.get_figure(root=True)
    if fig is None:
        raise ValueError("the axes belong to no figure")
    return fig


@styled
def class_distribution(counts: dict[str, Sequence[int]], class_names: Sequence[str], *,
                       title: str = "Images per class and split", ax: Axes | None = None
                       ) -> Figure:
    """Grouped bar chart of images per class and split.

    Args:
        counts: {split name: (K,) image counts per class}.
        class_names: the K class names (x tick labels).
    """
    k = len(class_names)
    bars_drawn = k * max(len(counts), 1)
    fig_w = COLUMN if bars_drawn <= 12 else FULL if k <= 30 else min(0.12 * k + 3, MAX_WIDTH)
    fig, ax = _figure(ax, (fig_w, 2.6 if k <= 20 else 3.6))
    names = list(counts)
    width = 0.8 / max(len(names), 1)
    x = np.arange(k)
    for i, split in enumerate(names):
        bars = ax.bar(x + (i - (len(names) - 1) / 2) * width, counts[split], width, label=split)
        if k * len(names) <= 40:  # numbers on the bars while they fit
            ax.bar_label(bars, fontsize=6, padding=1)
    ax.set_xticks(*_ticks(k, class_names), rotation=30 if k <= 20 else 90,
                  ha="right" if 6 < k <= 20 else "center", fontsize=_tick_size(k))
    if k <= 6:
        ax.tick_params(axis="x", rotation=0)
    ax.set_ylabel("images")
    ax.set_title(mathtext(title, 80))
    if len(names) > 1:  # beside the axes, where it covers no bar
        ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.spines[["top", "right"]].set_visible(False)
    return fig


@styled
def training_curves(history: dict[str, Sequence[float]], *, axes: Sequence[Axes] | None = None
                    ) -> Figure:
    """Accuracy and loss per epoch, train and validation, side by side.

    Args:
        history: Keras-style {"accuracy": [...], "val_accuracy": [...], "loss": [...],
            "val_loss": [...]}; missing series are left out.
    """
    if axes is None:
        fig = Figure(figsize=(FULL, 2.6), layout="tight")
        axes = fig.subplots(1, 2)
    else:
        fig = _figure_of(axes[0])
    for ax, metric, title in ((axes[0], "accuracy", "Accuracy"), (axes[1], "loss", "Loss")):
        for prefix, label, style in (("", "train", "-"), ("val_", "validation", "--")):
            series = history.get(prefix + metric)
            if series:
                ax.plot(np.arange(1, len(series) + 1), series, style, marker="o", ms=3,
                        label=label)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(title)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(frameon=False)
        ax.spines[["top", "right"]].set_visible(False)
    return fig


@styled
def confusion_matrix(cm: np.ndarray, class_names: Sequence[str], *, title: str | None = None,
                     ax: Axes | None = None, row_names: Sequence[str] | None = None) -> Figure:
    """Confusion matrix of counts (row = true class), coloured by row share (recall on the
    diagonal), each cell holding its count and its row percentage, up to :data:`CELL_TEXT`
    classes (larger matrices are drawn as a heatmap only, the figure size capped, so the cost
    and the legibility do not follow the square of the class count).

    Args:
        cm: (R, K) counts: rows the true classes ``row_names`` (None: R = K, the
            ``class_names``), columns the K predicted classes; rows without images are drawn
            empty.
    """
    k = len(class_names)
    rows_names = list(class_names) if row_names is None else list(row_names)
    r = len(rows_names)
    if k <= 6:
        side = COLUMN
    elif k <= CELL_TEXT:
        side = FULL
    else:
        side = min(0.1 * k + 3.0, MAX_WIDTH)
    height = side * 0.9 if k > 6 else side * 0.92
    fig, ax = _figure(ax, (side, height if r == k else max(0.35 * height,
                                                           height * (r + 1.5) / (k + 1.5))))
    cm = np.asarray(cm, dtype=float)
    rows = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    im = ax.imshow(100 * share, cmap="Blues", vmin=0, vmax=100)
    if k <= CELL_TEXT:
        size = 8 if k <= 4 else 7 if k <= 12 else 5.5
        for i in range(r):
            for j in range(k):
                text = f"{int(cm[i, j])}" + (f"\n{100 * share[i, j]:.0f} %" if rows[i, 0] else "")
                ax.text(j, i, text, ha="center", va="center", fontsize=size, linespacing=1.1,
                        color="white" if share[i, j] > 0.6 else "black")
    ax.set_xticks(*_ticks(k, class_names), rotation=45 if k <= CELL_TEXT else 90,
                  ha="right" if k <= CELL_TEXT else "center", fontsize=_tick_size(k))
    if k <= 4:
        ax.tick_params(axis="x", rotation=0)
        for t in ax.get_xticklabels():
            t.set_horizontalalignment("center")
    ax.set_yticks(*_ticks(r, rows_names), fontsize=_tick_size(max(r, k)))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(mathtext(title, 80) if title else "Confusion matrix")
    bar = fig.colorbar(im, ax=ax, shrink=0.7)
    bar.set_label("row %")
    return fig


@styled
def reliability_diagram(bins: Sequence[dict], *, ece: float | None = None,
                        ax: Axes | None = None) -> Figure:
    """Accuracy against mean confidence per confidence bin, with the diagonal of perfect
    calibration. Each non-empty bin is a bar of its accuracy with the 95 % Wilson interval of
    that accuracy as an error bar (so a bin of one image shows how little it says), and its
    image count written above the plot area over the bin; empty bins are drawn as none.

    Args:
        bins: [{"lower", "upper", "count", "confidence", "accuracy"}] as
            :func:`reportgen.evaluate.calibration` returns.
    """
    from reportgen.evaluate import wilson_interval

    fig, ax = _figure(ax, (COLUMN, COLUMN))
    full = [b for b in bins if b["count"]]
    lows = np.array([b["lower"] for b in full])
    widths = np.array([b["upper"] - b["lower"] for b in full])
    acc = np.array([b["accuracy"] for b in full], dtype=float)
    ax.bar(lows, acc, widths, align="edge", edgecolor="black", alpha=0.7,
           label="accuracy per bin")
    if full:
        ci = np.array([wilson_interval(round(b["accuracy"] * b["count"]), b["count"])
                       for b in full])
        yerr = np.clip([acc - ci[:, 0], ci[:, 1] - acc], 0.0, None)
        ax.errorbar(lows + widths / 2, acc, yerr=yerr, fmt="none",
                    ecolor="black", elinewidth=0.8, capsize=2, label="95 % interval (Wilson)")
    for lo, w, b in zip(lows, widths, full, strict=True):
        ax.text(lo + w / 2, 1.03, f"{b['count']}", ha="center", va="bottom", fontsize=6)
    ax.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.12)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    n = sum(b["count"] for b in bins)
    ax.set_title("Reliability" + (f" (ECE {ece:.3f}, n = {n})" if ece is not None else
                                  f" (n = {n})") + "\nimages per bin above the bars",
                 fontsize=8)
    # Outside the axes: a legend inside would cover a bar wherever it goes.
    ax.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


@styled
def grouped_distribution(values: dict[str, Sequence[float]], *, ylabel: str,
                         title: str | None = None, ax: Axes | None = None,
                         reference: float | None = None, reference_label: str = ""
                         ) -> Figure:
    """Box plot of one value per item, one box per group (NaN values left out), with each
    group's count under its label.

    Args:
        values: {group name: values}, in the order to draw.
        reference: a level to read the boxes against (say, a baseline), drawn as a dashed
            line across the plot and named ``reference_label`` in a legend; None for none.
    """
    names = list(values)
    fig, ax = _figure(ax, (COLUMN if len(names) <= 3 else FULL, 2.6))
    data = [np.asarray(v, float)[np.isfinite(np.asarray(v, float))] for v in values.values()]
    ax.boxplot([d if len(d) else [np.nan] for d in data], showfliers=True)
    ax.set_xticks(range(1, len(names) + 1),
                  [f"{mathtext(n)}\n(n = {len(d)})" for n, d in zip(names, data, strict=True)],
                  rotation=30 if len(names) > 6 else 0)
    ax.set_ylabel(ylabel)
    ax.axhline(0, color="gray", lw=0.8, ls=":")
    if reference is not None and np.isfinite(reference):
        ax.axhline(reference, color="tab:red", lw=1.0, ls="--",
                   label=mathtext(reference_label or f"reference {reference:.2f}", 80))
        ax.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.25))
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
    return 7.0 if k <= 40 else max(4.0, 7.0 * 40 / k)


def labels(names: Sequence[str]) -> list[str]:
    """Class names as tick labels: :func:`reportgen.text.mathtext` (never parsed as mathtext,
    control characters shown as spaces, cut to 40 characters)."""
    return [mathtext(n, 28) for n in names]


#: Vector files keep their text as text (selectable, editable, and set in the paper's fonts by
#: tools that substitute them): SVG <text> elements, TrueType (Type 42) fonts in PDF.
VECTOR_TEXT: dict[RcKeyType, Any] = {"svg.hashsalt": "reportgen", "svg.fonttype": "none",
                                     "pdf.fonttype": 42}


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


@styled
def slice_forest(rows: Sequence[dict], *, overall: float, title: str | None = None,
                 ax: Axes | None = None) -> Figure:
    """Forest plot: each slice's accuracy with its 95 % interval, one row each, against the
    accuracy on all test images (a dashed line; the caption says so). Flagged slices are red.

    Args:
        rows: {"label", "accuracy", "ci95": [lo, hi], "n", "flagged"} per slice, top first;
            accuracies in [0, 1].
        overall: the accuracy on all test images, in [0, 1].
    """
    k = len(rows)
    fig, ax = _figure(ax, (FULL, 0.8 + 0.22 * max(k, 1)))
    y = np.arange(k)[::-1]
    for yi, r in zip(y, rows, strict=True):
        colour = "tab:red" if r["flagged"] else "black"
        lo, hi = r["ci95"]
        ax.plot([100 * lo, 100 * hi], [yi, yi], color=colour, lw=1.2)
        ax.plot(100 * r["accuracy"], yi, "o", color=colour, ms=4)
    ax.axvline(100 * overall, color="gray", ls="--", lw=0.9)
    ax.set_yticks(y, [mathtext(f"{r['label']} (n = {r['n']})", 60) for r in rows])
    ax.set_ylim(-0.7, k - 0.3)
    ax.set_xlim(0, 100)
    ax.set_xlabel("accuracy (%), 95 % Wilson interval")
    if title:
        ax.set_title(mathtext(title, 80))
    ax.spines[["top", "right"]].set_visible(False)
    return fig
