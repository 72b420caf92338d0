"""The PR, ROC and threshold plots, read from their artists (never pixels)."""

from __future__ import annotations

import numpy as np

from reportgen import figures as figs


def test_pr_curves_draw_steps_and_a_dashed_average():
    fig = figs.pr_curves({"a (AP 0.9)": ([0, 0.5, 1], [1, 1, 0.8]),
                          "$b$ (AP 0.5)": ([0, 1], [0.5, 0.5])},
                         average=("micro (AP 0.7)", [0, 1], [0.7, 0.7]))
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["a (AP 0.9)", r"\$b\$ (AP 0.5)", "micro (AP 0.7)"]  # $ never mathtext
    lines = ax.get_lines()
    assert [ln.get_drawstyle() for ln in lines] == ["steps-pre"] * 3
    assert lines[-1].get_linestyle() == "--"
    assert ax.get_xlabel() == "recall" and ax.get_ylabel() == "precision"
    fig.canvas.draw()  # renders: a hostile name does not break drawing


def test_many_classes_are_grey_and_unnamed():
    curves = {f"c{i}": ([0, 1], [0, 1]) for i in range(figs.curves.NAMED_CURVES + 1)}
    fig = figs.roc_curves(curves)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["chance"]
    assert len(ax.get_lines()) == len(curves) + 1


def test_threshold_curves_mark_the_operating_point_and_the_validation_choice():
    fig = figs.threshold_curves(np.array([0.9, 0.5, 0.2]), {"F1": [0.2, 0.6, 0.5]},
                                operating_point=0.5, operating_label="operating point 0.5",
                                best=0.3, best_label="best F1 on validation")
    ax = fig.axes[0]
    vertical = [ln for ln in ax.get_lines() if len(set(ln.get_xdata())) == 1]
    assert [ln.get_xdata()[0] for ln in vertical] == [0.5, 0.3]
    assert [ln.get_linestyle() for ln in vertical] == ["-", "--"]
    f1 = ax.get_lines()[0]
    assert list(f1.get_xdata()) == [0.2, 0.5, 0.9]  # ascending thresholds
    assert list(f1.get_ydata()) == [0.5, 0.6, 0.2]
