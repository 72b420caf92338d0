"""Figures: matplotlib plots (arrays in, Figure out) and numpy + Pillow image overlays.

Plots are built on ``matplotlib.figure.Figure`` directly (no pyplot, no global backend state);
each takes ``ax=None`` and returns the Figure. Never imports tensorflow or jinja2.
"""

from reportgen.figures.curves import pr_curves, roc_curves, threshold_curves
from reportgen.figures.overlay import (colormap_lut, heatmap_overlay, resize_map, save_image,
                                       tile_grid)
from reportgen.figures.plots import (class_distribution, confusion_matrix, grouped_distribution,
                                     reliability_diagram, save_figure, slice_forest,
                                     training_curves)

from reportgen.figures.plots import COLUMN, FULL, STYLE, VECTOR_TEXT

__all__ = ["COLUMN", "FULL", "STYLE", "VECTOR_TEXT", "class_distribution", "confusion_matrix",
           "grouped_distribution", "reliability_diagram", "slice_forest", "training_curves",
           "save_figure", "colormap_lut", "resize_map", "heatmap_overlay", "save_image",
           "tile_grid", "pr_curves", "roc_curves", "threshold_curves"]
