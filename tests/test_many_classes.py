"""Scale in classes: nothing grows with the square of the class count without a plan. A
100-class data set builds; its confusion matrices are heatmaps without per-cell text, its
figures keep a bounded size, its navigation one link to the list of classes."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PIL import Image
from reportgen.report.figjobs import MAX_PIXELS
from test_bad_input import build, make_folder  # tests/ is on sys.path


def test_large_confusion_matrices_have_no_per_cell_text_and_bounded_size():
    import matplotlib
    matplotlib.use("Agg")
    from reportgen import figures as figs

    small = figs.confusion_matrix(np.eye(10), [f"c{i}" for i in range(10)])
    assert len(small.axes[0].texts) == 100  # a number in every cell
    big = figs.confusion_matrix(np.eye(300), [f"class {i}" for i in range(300)])
    ax = big.axes[0]
    assert len(ax.texts) == 0
    assert max(big.get_size_inches()) <= figs.plots.MAX_WIDTH
    assert len(ax.get_xticks()) <= figs.plots.MAX_TICKS  # every 3rd class labelled
    bars = figs.class_distribution({"train": list(range(300))}, [f"c{i}" for i in range(300)])
    assert bars.get_size_inches()[0] <= figs.plots.MAX_WIDTH and not bars.axes[0].texts


@pytest.mark.slow
def test_a_hundred_classes_build(tmp_path):
    rng = np.random.default_rng(0)
    colours = {f"class {k:03d}": tuple(int(v) for v in rng.integers(0, 255, 3))
               for k in range(100)}
    data = make_folder(tmp_path / "data", classes=colours, n=2)  # one train, one test image
    out = tmp_path / "site"
    result = build(tmp_path, "explain.methods=['gradcam', 'saliency']", "explain.dream_images=0",
                   "explain.pattern_filters=0", "explain.quality_images=0", data=data, out=out)
    assert result.exit_code == 0, result.output
    assert len(list(out.glob("class-*.html"))) == 100
    index = (out / "index.html").read_text()
    nav = re.search(r'<nav aria-label="Pages">(.*?)</nav>', index, re.S).group(1)
    assert nav.count("<li>") == 10 and "Classes (100)" in nav and "Errors (" in nav
    assert "explore.html" in nav and "data.html" in nav and "strategies.html" in nav
    assert '<a href="slices.html">Slices</a>' in nav
    assert index.count('<li><a href="class-') == 100  # the full list, on the overview
    for name in ("confusion_test", "class_distribution"):
        width, height = Image.open(out / "fig" / f"{name}.png").size
        assert width <= MAX_PIXELS and height <= MAX_PIXELS
    methods = (out / "methods.html").read_text()
    grid = methods.split('<h2 id="classes">', 1)[1].split("<h2", 1)[0]
    headers = re.findall(r"<thead>(.*?)</thead>", grid, re.S)
    # The class grid shows 12 classes, not 100, 8 to a table (so it fits a 1280 px window).
    assert [h.count("<img") for h in headers] == [8, 4]
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["splits"]["test"]["per_class"]) == 100
