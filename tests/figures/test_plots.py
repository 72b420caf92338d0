"""Plots inspected through their artists (never pixels)."""

from __future__ import annotations

import numpy as np
import pytest

from reportgen import evaluate as ev
from reportgen import figures as figs


def _bins():
    """Ten bins: one image (right) at 0.35, 40 images (30 right) at 0.85, the rest empty."""
    bins = [{"lower": k / 10, "upper": (k + 1) / 10, "count": 0, "confidence": None,
             "accuracy": None} for k in range(10)]
    bins[3].update(count=1, confidence=0.35, accuracy=1.0)
    bins[8].update(count=40, confidence=0.85, accuracy=0.75)
    return bins


def test_reliability_diagram_shows_each_bins_count_and_interval():
    fig = figs.reliability_diagram(_bins(), ece=0.2)
    ax = fig.axes[0]
    bars = ax.containers[0]
    assert [round(r.get_height(), 6) for r in bars] == [1.0, 0.75]  # empty bins: no bar
    counts = {t.get_text(): t.get_position()[0] for t in ax.texts}
    assert counts == {"1": pytest.approx(0.35), "40": pytest.approx(0.85)}
    # The error bars are the Wilson intervals of 1 of 1 and 30 of 40, by the closed formula.
    segments = ax.collections[0].get_segments()
    spans = sorted((float(s[:, 1].min()), float(s[:, 1].max())) for s in segments)
    z = 1.959963984540054

    def wilson(k, n):
        p = k / n
        c = (p + z * z / (2 * n)) / (1 + z * z / n)
        h = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return (c - h, min(1.0, c + h))
    assert pytest.approx(wilson(1, 1)) in spans and pytest.approx(wilson(30, 40)) in spans
    assert wilson(1, 1)[0] < 0.25  # one image right: its interval reaches down to ~0.21
    assert "n = 41" in ax.get_title()
    assert ev.wilson_interval(1, 1)[0] == pytest.approx(wilson(1, 1)[0])


def test_reliability_diagram_draws_a_perfect_bin_of_any_size():
    bins = _bins()
    bins[8].update(count=27, accuracy=1.0)  # 27 of 27 right: its interval ends at 1 exactly
    ax = figs.reliability_diagram(bins).axes[0]
    tops = sorted(float(s[:, 1].max()) for s in ax.collections[0].get_segments())
    assert tops == [1.0, 1.0]


def test_reliability_diagram_without_images_draws_no_bar():
    empty = [{"lower": k / 10, "upper": (k + 1) / 10, "count": 0, "confidence": None,
              "accuracy": None} for k in range(10)]
    ax = figs.reliability_diagram(empty).axes[0]
    assert len(ax.containers[0]) == 0 and not ax.texts


def test_grouped_distribution_draws_its_reference_line():
    values = {"a": [0.8, 0.9, 0.85], "b": [0.7, np.nan, 0.75]}
    ax = figs.grouped_distribution(values, ylabel="ρ", reference=0.33,
                                   reference_label="mismatched images, median 0.33").axes[0]
    dashed = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert len(dashed) == 1 and list(dashed[0].get_ydata()) == [0.33, 0.33]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "mismatched images, median 0.33"]
    plain = figs.grouped_distribution(values, ylabel="ρ").axes[0]
    assert plain.get_legend() is None
    assert not [ln for ln in plain.get_lines() if ln.get_linestyle() == "--"]
