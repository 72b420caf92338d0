"""A part that failed is noted where it would have been, listed on the overview, in report.md
and under ``failures`` in metrics.json, and the rest of the site is written; ``--strict``
leaves the previous site as it was. From made-up results (no TensorFlow, no model)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from reportgen.errors import PartsFailed
from reportgen.explain.results import FeatureMapView, LayerViews
from reportgen.guard import Failure
from reportgen.pipeline import stages
from reportgen.report import gather, pages, write_site
from reportgen.report.figjobs import Figures
from reportgen.report.site import SiteWriter

NO_KERNEL = Failure("learned filters", "conv",
                    "ValueError: layer 'conv' has no 2-D convolution kernel")
NO_SALIENCY = Failure("Saliency on the sample images", None, "RuntimeError: half tensor")


def with_layers(inputs, failures):
    fmap = np.arange(16 * 16 * 2, dtype=np.float32).reshape(16, 16, 2)
    inputs.explained.layers = LayerViews(image=0, feature_maps={
        "conv": FeatureMapView(fmap, [1, 0], 2)})
    inputs.explained.failures = list(failures)
    return inputs


def write(content, out, figures=None):
    with (figures or Figures(["png"], parallel=False)) as figs, SiteWriter(out) as site:
        write_site(site, content, figs, {}, show_progress=False)
        site.commit()
    return out


def section(page: str, start: str, end: str) -> str:
    """The text of ``page`` from the heading with id ``start`` to the one with id ``end``."""
    return page[page.index(f'id="{start}"'):page.index(f'id="{end}"')]


def test_a_failed_view_is_noted_in_its_section_and_listed_everywhere(drawn, inputs,
                                                                   tmp_path):
    content = gather(with_layers(inputs, [NO_KERNEL, NO_SALIENCY]), drawn)
    out = write(content, tmp_path / "site")
    layers = (out / "layers.html").read_text()
    filters = section(layers, "filters", "patterns")
    assert "Learned filters of layer <code>conv</code> failed</b> and is left out: ValueError: " \
           "layer &#39;conv&#39; has no 2-D convolution kernel" in filters
    assert "failed" not in section(layers, "feature-maps", "filters")  # its own section only
    assert 'src="img/layers/fmap_0.png"' in layers and (out / "img/layers/fmap_0.png").is_file()
    methods = (out / "methods.html").read_text()
    assert "Saliency on the sample images failed</b> and is left out: RuntimeError: half " \
           "tensor" in methods[:methods.index('id="quality"')]
    index = (out / "index.html").read_text()
    assert "2 parts of this report failed" in index
    assert "learned filters of layer &#39;conv&#39; failed: ValueError" in index
    assert "- learned filters of layer 'conv' failed: ValueError" in \
           (out / "report.md").read_text()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["failures"] == [
        {"part": "learned filters", "layer": "conv",
         "error": "ValueError: layer 'conv' has no 2-D convolution kernel"},
        {"part": "Saliency on the sample images", "layer": None,
         "error": "RuntimeError: half tensor"}]


def test_no_failure_no_note(drawn, inputs, tmp_path):
    out = write(gather(with_layers(inputs, []), drawn), tmp_path / "site")
    assert json.loads((out / "metrics.json").read_text())["failures"] == []
    for page in ("index.html", "layers.html", "methods.html", "report.md"):
        assert "failed" not in (out / page).read_text(), page


def test_a_view_whose_page_context_fails_is_left_out_alone(drawn, inputs, monkeypatch):
    def broken(assets, L, gray=False):
        raise IndexError("tuple index out of range")

    monkeypatch.setattr(pages, "_filters", broken)
    with_layers(inputs, []).explained.layers.filters["conv"] = np.zeros((3, 3, 3, 4))
    content = gather(inputs, drawn)
    L = next(p for p in content.pages if p.rel == "layers.html").context["L"]
    assert L["filters"] == [] and len(L["fmaps"]) == 1
    assert content.failures == [Failure("learned filters", None,
                                        "IndexError: tuple index out of range")]


def broken_figure(values):
    raise ValueError("x and y must have same first dimension")


def test_a_figure_that_fails_to_draw_is_noted_in_its_place(drawn, inputs, tmp_path):
    from reportgen import figures as figs

    figures = Figures(["png"], parallel=False)
    bad = figures.add("class_distribution", broken_figure, [1, 2], alt="a", caption="Per class.")
    good = figures.add("reliability", figs.reliability_diagram,
                       inputs.metrics["test"]["calibration"]["bins"], ece=0.1,
                       alt="r", caption="Calibration.")
    drawn = {**drawn, "dist": bad, "rel": good}
    out = write(gather(with_layers(inputs, []), drawn), tmp_path / "site", figures)
    assert bad["failed"] == "ValueError: x and y must have same first dimension"
    assert not (out / "fig/class_distribution.png").exists()
    assert (out / "fig/reliability.png").is_file() and good["width"]
    index = (out / "index.html").read_text()
    assert 'Figure "Per class." failed</b> and is left out: ValueError: x and y' in index
    assert json.loads((out / "metrics.json").read_text())["failures"] == [
        {"part": "figure class_distribution", "layer": None,
         "error": "ValueError: x and y must have same first dimension"}]


def test_a_confusion_matrix_that_fails_to_draw_is_noted_in_report_md(drawn, inputs, tmp_path):
    figures = Figures(["png"], parallel=False)
    bad = figures.add("confusion_test", broken_figure, [1, 2], alt="c",
                      caption="Confusion matrix (test).")
    drawn = {**drawn, "cms": {"test": bad}}
    out = write(gather(with_layers(inputs, []), drawn), tmp_path / "site", figures)
    md = (out / "report.md").read_text()
    section = md[md.index("### Confusion matrix"):md.index("## Explanations")]
    assert ("**The figure failed** and is left out: ValueError: x and y must have same first "
            "dimension") in section
    assert "Confusion matrix \\(test\\)." in section  # its caption, Markdown-escaped
    assert "confusion_test.png" not in md


def snapshot(folder) -> dict[str, str]:
    """{relative path: sha256} of every file and folder under ``folder``."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            if p.is_file() else "dir" for p in sorted(folder.rglob("*"))}


def test_strict_leaves_the_previous_site_byte_for_byte(drawn, inputs, tmp_path):
    out = tmp_path / "site"
    with Figures(["png"], parallel=False) as figures:
        run = stages.Run(inputs.cfg, {}, None, figures, show=False)
        stages.write(run, out, with_layers(inputs, [NO_KERNEL]), drawn, None)
    assert run.failures == [NO_KERNEL]  # written: a note, not an error
    before = snapshot(out)
    assert "layers.html" in before
    with Figures(["png"], parallel=False) as figures:
        strict = stages.Run(inputs.cfg, {}, None, figures, show=False, strict=True)
        with pytest.raises(PartsFailed, match="1 part"):
            stages.write(strict, out, with_layers(inputs, [NO_SALIENCY]), drawn,
                         None)
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]  # no scratch left beside
