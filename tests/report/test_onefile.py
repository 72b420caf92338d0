"""report.html: the whole report in one self-contained file, written beside the site's pages
from the same contexts (made-up results, no TensorFlow; at the end, the smoke build's, which is
slow; in a browser: tests/browser/test_onefile_browser.py)."""

from __future__ import annotations

import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from reportgen.config import from_dict
from reportgen.report import gather, write_site
from reportgen.report.figjobs import Figures
from reportgen.report.onefile import (ALL_TILES, CLASS_TILES, FIGURE_SIDE, encode, megabytes,
                                      thin_classes)
from reportgen.report.site import SiteWriter

#: Attributes that make a browser fetch or open something.
URL_ATTRS = {"src", "href", "srcset", "poster", "action", "data", "formaction", "background"}


class Refs(HTMLParser):
    """Every URL attribute, element id and tag of a page."""

    def __init__(self):
        super().__init__()
        self.urls: list[tuple[str, str, str]] = []
        self.ids: set[str] = set()
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name in URL_ATTRS:
                self.urls.append((tag, name, value or ""))
            if name == "id":
                self.ids.add(value or "")


def refs(text: str) -> Refs:
    parser = Refs()
    parser.feed(text)
    return parser


def outside_refs(text: str) -> list[str]:
    """Every reference of ``text`` to anything but itself: URL attributes that are neither a
    ``data:`` URI nor an anchor of the page, and CSS ``url(...)`` and ``@import`` that are not
    ``data:``."""
    r = refs(text)
    bad = [f"{tag} {name}={value[:60]}" for tag, name, value in r.urls
           if not value.startswith("data:") and not (value.startswith("#") and
                                                     value[1:] in r.ids)]
    bad += [m for m in re.findall(r"url\(\s*['\"]?([^'\")]*)", text) if not m.startswith("data:")]
    bad += re.findall(r"@import[^;]*;", text)
    return bad


def written(inputs, drawn, out: Path) -> Path:
    content = gather(inputs, drawn)
    with Figures(["png"], parallel=False) as figures, SiteWriter(out) as site:
        write_site(site, content, figures, {}, show_progress=False)
        site.commit()
    return out


def test_report_html_refers_to_nothing_outside_itself(drawn, inputs, tmp_path):
    site = written(inputs, drawn, tmp_path / "site")
    text = (site / "report.html").read_text()
    assert outside_refs(text) == []
    r = refs(text)
    assert "script" not in r.tags and "link" not in r.tags or all(
        v.startswith("data:") for t, n, v in r.urls if t == "link")
    images = [v for t, n, v in r.urls if t == "img"]
    assert len(images) >= 8 and all(v.startswith("data:image/") for v in images)
    # the sections, each class by name, and the card
    for ident in ("data", "evaluation", "classes", "methods", "model-card", "errors"):
        assert f'id="{ident}"' in text, ident
    assert '<h3 id="class-1">a ' in text and '<h3 id="class-2">b ' in text
    assert "Not stated" in text or "not stated" in text
    # what the site holds and the file does not, and its size, are stated
    size = (site / "report.html").stat().st_size
    stated = re.search(r"The whole report in one file \(([\d.]+ [kM]B);", text)
    assert stated and stated.group(1) == megabytes(size)
    assert "gallery tiles: 5 of the 5 on the class pages (4 per class at most, 120 in all)" in text
    assert "1 image that was not written" in text  # drawn's made-up figure has no file
    assert 'Figure "d"</b> is left out: its image was not written' in text
    assert size < 150_000  # two classes of 16 px images


def test_hostile_card_and_names_are_escaped(drawn, inputs, tmp_path):
    inputs.cfg = from_dict({"card": {"limitations": "<img src=x onerror=alert(1)>"},
                            "report": {"title": "<b>t</b>"}})
    text = (written(inputs, drawn, tmp_path / "site") / "report.html").read_text()
    assert "&lt;img src=x onerror=alert(1)&gt;" in text and "<img src=x" not in text
    assert "<h1>&lt;b&gt;t&lt;/b&gt;</h1>" in text
    assert outside_refs(text) == []


def test_the_print_stylesheet_hides_the_navigation_and_keeps_parts_whole(drawn, inputs,
                                                                         tmp_path):
    text = (written(inputs, drawn, tmp_path / "site") / "report.html").read_text()
    css = text.split("<style>", 1)[1].split("</style>", 1)[0]
    printed = css[css.rindex("@media print"):]
    assert re.search(r"nav, \.toc, [^{]*\{ display: none", printed)
    assert "section.part { break-before: page; }" in printed
    assert re.search(r"figure, \.tile, tr[^{]*\{ break-inside: avoid", printed)
    assert text.count('<section class="part') == 5


def _page(k: int, sizes: dict[str, int]) -> dict:
    return {"name": f"c{k}", "metrics": {}, "sections": [
        {"title": key, "count": n, "tiles": [{"id": f"{key}{i}", "views": [1, 2]}
                                             for i in range(n)]}
        for key, n in sizes.items()]}


def test_galleries_are_thinned_in_turn_from_each_section():
    pages = [_page(0, {"misclassified": 1, "confident_wrong": 0, "correct": 9}),
             _page(1, {"misclassified": 5, "confident_wrong": 5, "correct": 5})]
    classes, total = thin_classes(pages)
    assert total == 25
    assert [t["id"] for t in classes[0]["tiles"]] == ["misclassified0", "correct0",
                                                      "correct1", "correct2"]
    # taken in turn (misclassified, wrongly predicted, correct, misclassified), shown by section
    assert [t["id"] for t in classes[1]["tiles"]] == [
        "misclassified0", "misclassified1", "confident_wrong0", "correct0"]
    assert CLASS_TILES == 4
    many, _ = thin_classes([_page(k, {"correct": 9}) for k in range(ALL_TILES // 2)])
    assert all(len(c["tiles"]) == 2 for c in many)  # the budget shared
    many, _ = thin_classes([_page(k, {"correct": 9}) for k in range(ALL_TILES * 2)])
    assert [len(c["tiles"]) for c in many] == [1] * ALL_TILES + [0] * ALL_TILES


def test_large_figures_become_webp_within_the_side_jpegs_stay(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    big = tmp_path / "big.png"
    Image.fromarray(rng.integers(0, 256, (1500, 2400, 3), dtype=np.uint8)).save(big)
    data, mime = encode(big, FIGURE_SIDE)
    with Image.open(io.BytesIO(data)) as img:
        assert mime == "image/webp" and img.format == "WEBP"
        assert max(img.size) == FIGURE_SIDE and img.size[0] / img.size[1] == pytest.approx(1.6,
                                                                                          0.01)
    jpg = tmp_path / "t.jpg"
    Image.fromarray(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)).save(jpg)
    assert encode(jpg, FIGURE_SIDE) == (jpg.read_bytes(), "image/jpeg")

#: report.html of the smoke build (4 classes of 32 px images) stays below this size.
SMOKE_BOUND = 1_500_000


def test_report_html_stands_alone_and_is_small(smoke_site):
    site = smoke_site[0]
    text = (site / "report.html").read_text()
    assert outside_refs(text) == []
    assert (site / "report.html").stat().st_size < SMOKE_BOUND
    metrics = json.loads((site / "metrics.json").read_text())
    assert metrics["failures"] == []
    for name in metrics["classes"]:
        assert re.search(rf'<h3 id="class-\d+">{re.escape(name)} ', text), name
    assert "data:image/webp;base64," in text  # figures re-encoded
    assert "data:image/jpeg;base64," in text  # gallery thumbnails as they are
    assert "image that was not written" not in text
    # the evaluation's PR and ROC curves, their table and figures, as on the overview
    assert '<h3 id="curves">' in text and "average precision [95 % CI]" in text
    assert len(re.findall(r'<img class="figure" src="data:image/', text)) >= 6
    marker = json.loads((site / ".reportgen-site").read_text())
    assert {"report.html", "model_card.md"} <= set(marker["files"])  # published with the site


def test_model_card_holds_the_computed_metrics(smoke_site):
    hub = pytest.importorskip("huggingface_hub")
    site = smoke_site[0]
    card = hub.ModelCard((site / "model_card.md").read_text())
    metrics = json.loads((site / "metrics.json").read_text())["splits"]["test"]
    got = {r.metric_name: r.metric_value for r in card.data.eval_results}
    assert got["Test accuracy"] == metrics["accuracy"]
    assert got["Test macro F1"] == metrics["macro_f1"]
    assert got["Test macro ROC AUC (one-vs-rest)"] == metrics["curves"]["macro"]["roc_auc"]
    assert card.data.license == "unknown"
    assert all(r.dataset_name == "reportgen shapes demo" for r in card.data.eval_results)


def test_photos_without_labels_get_the_predictions_and_no_model_index(inputs, drawn, tmp_path):
    from reportgen.data.folder import Dataset, Split
    from reportgen.evaluate import prediction_summary

    rng = np.random.default_rng(0)
    names = inputs.ds.class_names
    probs = rng.dirichlet(np.ones(len(names)), 6)

    def split(n):
        return Split(rng.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8),
                     probs.argmax(1)[:n].copy(), [f"p/{i}.jpg" for i in range(n)],
                     np.full((n, 4), np.nan, np.float32), labeled=False)
    inputs.ds = Dataset(root=tmp_path, class_names=names,
                        splits={"train": split(0), "val": split(0), "test": split(6)})
    inputs.probs = {"train": probs[:0], "val": probs[:0], "test": probs}
    inputs.metrics = {"train": {"n": 0, "labeled": False}, "val": {"n": 0, "labeled": False},
                      "test": prediction_summary(probs, names)}
    inputs.explained.galleries = {c: {"correct": [i for i in range(6) if probs[i].argmax() == c],
                                      "misclassified": [], "confident_wrong": []}
                                  for c in range(len(names))}
    site = written(inputs, drawn, tmp_path / "site")
    text = (site / "report.html").read_text()
    assert 'id="predictions"' in text and 'id="evaluation"' not in text
    assert outside_refs(text) == []
    assert "model-index" not in (site / "model_card.md").read_text()
    assert "No test metrics: the photos have no labels" in (site / "model_card.md").read_text()
    assert json.loads((site / "metrics.json").read_text())["failures"] == []
