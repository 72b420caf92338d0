"""Every page fits a 1280 px window with nothing cut (no box scrolls sideways) and a 390 px
phone without the page scrolling sideways, on the sites that broke it (issue 26): 20 sample
images across the methods, 10 classes in the class grid, long class names and file paths, a
labelled and an unlabeled report. The sites are gathered from made-up results (no
TensorFlow), so this checks the templates and the stylesheet only."""

from __future__ import annotations

import numpy as np
import pytest

from reportgen.config import Config
from reportgen.data.folder import Dataset, Split
from reportgen.evaluate import prediction_summary, split_metrics
from reportgen.explain.methods import REGISTRY
from reportgen.explain.results import Explained, QualityRow, select_galleries
from reportgen.report import ModelInfo, ReportInputs, gather, write_site
from reportgen.report.figjobs import Figures
from reportgen.report.site import SiteWriter
from .chromium import browser, require_browser

pytestmark = pytest.mark.slow

require_browser()

NAMES = [f"{n} {k}" for k, n in enumerate(
    ["American Staffordshire terrier", "Greater Swiss Mountain dog", "black-and-tan coonhound",
     "soft-coated wheaten terrier", "German short-haired pointer", "Chesapeake Bay retriever",
     "Egyptian cat", "tiger cat", "Siamese cat", "Persian cat"])]
LONG = "a/rather/deep/folder/structure/with_a_long_name/holiday_photo_number"


def made_up_site(out, labeled: bool):
    """A site of 40 test images of 10 classes, 2 samples per class shown across the methods."""
    rng = np.random.default_rng(0)
    k, n = len(NAMES), 40
    labels = np.arange(n) % k

    def split(m):
        return Split(rng.integers(0, 256, (m, 24, 24, 3), dtype=np.uint8),
                     labels[:m].copy() if labeled else np.full(m, -1), [
                         f"{LONG}_{i:04d}_IMG.png" for i in range(m)],
                     np.full((m, 4), np.nan, np.float32), labeled=labeled)
    empty = 0 if not labeled else n
    ds = Dataset(root=out.parent, class_names=NAMES, splits={
        "train": split(empty), "val": split(empty), "test": split(n)})
    probs = {s: rng.dirichlet(np.ones(k) * 0.3, len(sp)) for s, sp in ds.splits.items()}
    if labeled:
        metrics = {s: split_metrics(probs[s], sp.labels, NAMES) for s, sp in ds.splits.items()}
    else:
        pred = probs["test"].argmax(1)
        ds.splits["test"].labels = pred  # grouped by prediction, as the build does
        metrics = {s: (prediction_summary(probs[s], NAMES) if len(sp) else
                       {"n": 0, "labeled": False}) for s, sp in ds.splits.items()}
    test = ds.splits["test"]
    ex = Explained(layer="conv", galleries=select_galleries(test.labels, probs["test"], k, 24))
    ex.test_maps = rng.uniform(0, 1, (n, 6, 6)).astype(np.float16)
    ex.samples = list(range(20))
    methods = list(REGISTRY)  # every method, as on a default build
    ex.method_outputs = {m: rng.uniform(-1, 1, (20, 24, 24) if REGISTRY[m].output == "map"
                                        else (20, 24, 24, 3)).astype(np.float32)
                         for m in methods}
    ex.grid_indices, ex.grid_classes = list(range(k)), list(range(k))
    ex.class_grid = rng.uniform(0, 1, (k, k, 24, 24)).astype(np.float32)
    ex.quality = {m: QualityRow(0.2, 0.6, 1.0, 0.5, 0.1, n=20, n_boxes=0, seconds=0.3)
                  for m in methods[:4]}
    info = ModelInfo("0", "3.11", "tf", "k", "np", "m" * 64, "d" * 64, (10, 8),
                     [{"name": "conv", "kind": "Conv2D", "output_shape": "(None, 24, 24, 4)",
                       "params": 10}], [24, 24, 3], "tiny", "none")
    inputs = ReportInputs(Config(), ds, probs, metrics, {}, ex, info, ["a note"], {})
    drawn = {"dist": {"png": "fig/d.png", "alt": "d", "caption": "", "exports": [],
                      "width": 1, "height": 1}, "curves": None, "cms": {}, "rel": None}
    content = gather(inputs, drawn)
    with Figures(["png"], parallel=False) as figures, SiteWriter(out) as site:
        write_site(site, content, figures, {}, show_progress=False)
        site.commit()
    return out


OVERFLOW = """() => ({
    page: document.documentElement.scrollWidth - window.innerWidth,
    cut: [...document.querySelectorAll('.table-wrap, .fig-scroll')]
        .filter(b => b.scrollWidth > b.clientWidth + 1)
        .map(b => (b.getAttribute('aria-label') || '').slice(0, 60))})"""


@pytest.mark.parametrize("labeled", [True, False], ids=["labelled", "unlabeled"])
def test_every_page_fits_at_1280_and_390_px(tmp_path, labeled):
    site = made_up_site(tmp_path / "site", labeled)
    methods = (site / "methods.html").read_text()
    assert methods.count('class="grid-img methods-grid"') == 3  # 20 images: 8 + 8 + 4
    with browser() as b:
        for width in (1280, 390):
            page = b.new_page(viewport={"width": width, "height": 900})
            for html in sorted(site.glob("*.html")):
                page.goto(html.resolve().as_uri())
                r = page.evaluate(OVERFLOW)
                assert r["page"] <= 0, f"{html.name} scrolls sideways at {width} px"
                if width == 1280:
                    assert r["cut"] == [], f"{html.name} at 1280 px: boxes cut {r['cut']}"
            page.close()
