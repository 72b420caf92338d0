"""The report is gathered as plain data first, then written: contexts inspected directly,
from made-up results (no TensorFlow, no model)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from reportgen.report import gather, write_site
from reportgen.report.figjobs import Figures
from reportgen.report.render import environment, render
from reportgen.report.site import SiteWriter


def test_gather_writes_nothing_and_holds_every_page(drawn, inputs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    content = gather(inputs, drawn)
    assert sorted(tmp_path.rglob("*")) == before  # no file written while gathering
    rels = [p.rel for p in content.pages]
    assert rels[0] == "index.html" and "methods.html" in rels and "report.md" in rels
    assert len([r for r in rels if r.startswith("class-")]) == 2
    jobs = content.assets.jobs
    assert "img/methods/occlusion/0.jpg" in jobs and "tables/explanation_quality.tex" in jobs
    assert "img/gradcam/full/3.jpg" in jobs and "img/gradcam/5.jpg" not in jobs


def test_methods_context_comes_from_the_registry(drawn, inputs):
    content = gather(inputs, drawn)
    m = next(p for p in content.pages if p.rel == "methods.html").context["m"]
    assert m["methods"] == ["GradCAM", "Occlusion", "Saliency"]
    assert [a["name"] for a in m["about"]] == ["gradcam", "saliency", "occlusion", "rise"]
    rows = m["quality_table"].rows
    assert [r[0] for r in rows] == ["GradCAM", "Occlusion", "RISE"]
    assert rows[1][-1] == pytest.approx(5.0)  # 0.3 s on 6 images: 5 s per 100
    assert "on n = 6 test images" in m["quality_table"].caption


def test_class_pages_list_their_galleries(drawn, inputs):
    content = gather(inputs, drawn)
    page = next(p for p in content.pages if p.rel.startswith("class-01")).context
    counts = {s["key"]: s["total"] for s in page["sections"]}
    assert counts == {"correct": 1, "misclassified": 1, "confident_wrong": 0}
    assert [s["key"] for s in page["sections"]] == ["misclassified", "confident_wrong",
                                                    "correct"]  # errors first
    wrong = page["sections"][0]["tiles"][0]
    assert wrong["index"] == 1 and wrong["true"] == "b" and wrong["pred"] == "a"
    assert not wrong["correct"] and wrong["thumb"] == "img/gradcam/1.jpg"


def test_written_site_has_every_gathered_file(drawn, inputs, tmp_path):
    content = gather(inputs, drawn)
    with Figures(["png"], parallel=False) as figures, SiteWriter(tmp_path / "site") as site:
        write_site(site, content, figures, {"explain": 1.0}, show_progress=False)
        site.commit()
    out = tmp_path / "site"
    for rel in list(content.assets.jobs) + [p.rel for p in content.pages]:
        assert (out / rel).is_file(), rel
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["explain"]["quality"]) == {"gradcam", "occlusion", "rise"}
    assert metrics["explain"]["methods"] == {"occlusion": {"patch_size": 8}}
    assert "explain" in metrics["timings_s"] and "render" in metrics["timings_s"]


def test_gallery_headings_state_the_true_counts(drawn, inputs):
    inputs.explained.gallery_counts = {0: {"misclassified": 0, "confident_wrong": 1,
                                           "correct": 88},
                                       1: {"misclassified": 1, "confident_wrong": 0,
                                           "correct": 1}}
    content = gather(inputs, drawn)
    page = next(p for p in content.pages if p.rel.startswith("class-00")).context
    heading = {s["key"]: s["heading"] for s in page["sections"]}
    assert heading == {"misclassified": "0", "confident_wrong": "1",
                       "correct": "88; the 2 least confident shown"}
    html = render(environment(), "class.html", page)
    assert "Correct (88; the 2 least confident shown)" in html


def test_the_model_page_lists_the_configuration_as_used(drawn, inputs):
    from reportgen.report.build import _config_table

    table = {r[0]: r[1:] for r in _config_table(inputs).rows}
    assert table["explain.layer"] == ["conv", 'default; given as ""', ""]  # resolved
    assert table["explain.methods"] == ['["occlusion"]', 'default; given as ["all"]', ""]
    assert table["explain.occlusion.patch_size"] == ["8", "method default", ""]
    assert table["training.seed"] == ["0", "default", ""]
    model = next(p for p in gather(inputs, drawn).pages if p.rel == "model.html")
    assert "explain.occlusion.patch_size" in model.context["t_config"]["html"]


def test_report_md_tables_render_and_name_the_other_splits(drawn, inputs, md_tables):
    """Every table of report.md is a table to a CommonMark/GFM parser (the page's finalize
    once joined their lines into one), and the confusion-matrix paragraph links the splits
    not shown."""
    inputs.warnings = ["The model predicts 'a' for 95.0 % of the 16 labelled images."]
    fig = {"png": "fig/cm_test.png", "alt": "cm", "caption": "Test split.", "width": 400,
           "height": 400}
    drawn = {**drawn, "cms": {"test": fig, "train": {**fig, "png": "fig/cm_tr.png"},
                              "val": {**fig, "png": "fig/cm_val.png"}}}
    content = gather(inputs, drawn)
    page = next(p for p in content.pages if p.rel == "report.md")
    md = render(environment(), page.template, page.context)
    tables = {t[0][0]: t for t in md_tables(md)}
    # counts, splits, per class, quality, layers; the errors and the gallery tables besides
    assert {"class", "split", "method", "layer"} <= set(tables)
    assert [r[0] for r in tables["split"][1:]] == ["train", "val", "test"]
    per_class = next(t for t in md_tables(md) if t[0][0] == "class" and t[0][-1] == "support")
    assert [r[0] for r in per_class[1:]] == ["a", "b"]  # the classes
    assert "The other splits: [train](fig/cm_tr.png), [val](fig/cm_val.png)." in md
    # The warning comes first, before the headline numbers.
    assert md.index("**Warning:** The model predicts") < md.index("- **test accuracy")


def test_a_users_report_is_titled_from_its_data_and_model_without_demo_keys(drawn,
                                                                           inputs):
    inputs.cfg.data.source, inputs.cfg.data.path = "folder", "/data/textures"
    content = gather(inputs, drawn)
    model = next(p for p in content.pages if p.rel == "model.html").context
    assert model["title"] == "textures: tiny trained here"  # model name "tiny", trained here
    table = next(p for p in content.pages if p.rel == "model.html").context["t_config"]
    rows = {r.split("|")[1].strip(): r.split("|")[2].strip()
            for r in str(table["md"]).split("\n")[2:]}
    assert rows["report.title"] == "textures: tiny trained here"
    assert "data.split\\_seed" in rows or "data.split_seed" in rows
    assert not any("shapes" in k for k in rows)  # the demo's key is not the user's
    inputs.cfg.report.title = "Mine"
    assert gather(inputs, drawn).metrics["title"] == "Mine"


def test_a_warning_comes_first_on_the_overview_and_in_metrics_notes(drawn, inputs):
    inputs.warnings = ["The model predicts 'a' for 95.0 % of the 16 labelled images."]
    content = gather(inputs, drawn)
    page = next(p for p in content.pages if p.rel == "index.html")
    html = render(environment(), page.template, page.context)
    warning = html.index('<p class="warning" role="alert"><b>Warning:</b> The model predicts')
    assert warning < html.index('class="headline"') < html.index("a note")
    assert content.metrics["notes"][:2] == [inputs.warnings[0], "a note"]


def test_a_few_hidden_images_are_shown_and_many_are_linked(drawn, inputs):
    # Class 0 has three correct test images (0, 2, 4, all at 0.8); the gallery kept two.
    inputs.explained.gallery_counts = {0: {"misclassified": 0, "confident_wrong": 1,
                                           "correct": 3},
                                       1: {"misclassified": 1, "confident_wrong": 0,
                                           "correct": 1}}
    page = next(p for p in gather(inputs, drawn).pages
                if p.rel.startswith("class-00")).context
    correct = next(s for s in page["sections"] if s["key"] == "correct")
    assert [t["index"] for t in correct["tiles"]] == [0, 2, 4]  # none hidden
    assert correct["heading"] == "3" and correct["rest"] == 0
    html = render(environment(), "class.html", page)
    assert "Correct (3)" in html and "predictions.csv" not in html
    # Many more than the gallery: the rest are named and linked.
    inputs.explained.gallery_counts[0]["correct"] = 88
    page = next(p for p in gather(inputs, drawn).pages
                if p.rel.startswith("class-00")).context
    html = render(environment(), "class.html", page)
    assert "The other 86 images of this section are listed" in html
    assert '<a href="predictions.csv">predictions.csv</a>' in html


def test_unlabeled_class_pages_speak_of_photos_and_predictions(drawn, inputs):
    from reportgen.evaluate import prediction_summary

    test = inputs.ds.splits["test"]
    test.labeled = False
    inputs.metrics["test"] = prediction_summary(inputs.probs["test"],
                                                inputs.ds.class_names)
    page = next(p for p in gather(inputs, drawn).pages
                if p.rel.startswith("class-00")).context
    html = " ".join(render(environment(), "class.html", page).split())
    assert "true class" not in html and "misclassified" not in html.lower()
    assert "Predicted for <b>4 photos</b> (no labels)" in html  # 0, 1, 2 and 4
    assert "%</b>. Each tile shows the photo" in html  # "99.7 %.Each" no more
    md = render(environment(), "report.md", {
        **next(p for p in gather(inputs, drawn).pages if p.rel == "report.md")
        .context})
    assert "photo(s)" not in md and "Predicted for 4 photos" in md


def test_the_plan_table_gives_readable_durations():
    from reportgen.report.pages import plan_table

    from types import SimpleNamespace

    plan = SimpleNamespace(estimate_full_s={"test set": 198.838, "quality": 12.34},
                           estimate_s={"test set": 198.838, "quality": 0.4}, budget_s=900.0)
    t = plan_table(plan, {"test set": 3725.2})
    assert t.rows[0][1:] == ["3 min 19 s", "3 min 19 s", "1 h 02 min"]
    assert t.rows[1][1:] == ["12.3 s", "0.4 s", None]
    assert t.caption == "The work planned to explain.budget = 15 min 0 s"


@pytest.mark.parametrize("relus", [False, True, None])
def test_the_methods_page_says_when_the_model_has_no_relu(drawn, inputs, relus):
    inputs.explained.relus = relus
    inputs.explained.method_outputs["guided_gradcam"] = np.zeros((2, 16, 16, 3), np.float32)
    content = gather(inputs, drawn)
    page = next(p for p in content.pages if p.rel == "methods.html")
    html = render(environment(), page.template, page.context)
    said = ("This model has no ReLU" in html
            and "Guided GradCAM equals saliency × GradCAM" in html)
    assert said == (relus is False)
    assert content.metrics["explain"]["relus"] is relus


def test_depthwise_kernels_are_shown_one_tile_each_and_named(drawn, inputs):
    from reportgen.explain.results import LayerViews

    views = LayerViews(image=0)
    views.filters = {"sep": np.arange(3 * 3 * 12, dtype=np.float32).reshape(3, 3, 1, 12),
                     "conv": np.ones((3, 3, 4, 5), np.float32)}
    views.filter_kinds = {"sep": "separable", "conv": "conv"}
    inputs.explained.layers = views
    content = gather(inputs, drawn)
    page = next(p for p in content.pages if p.rel == "layers.html")
    sep, conv = page.context["L"]["filters"]
    assert sep["count"] == 12 and sep["total"] == 12 and "depthwise kernels" in sep["how"]
    assert conv["count"] == 5 and conv["how"].startswith("per input channel")
    html = render(environment(), page.template, page.context)
    assert "12 of 12 filters of 3×3 as gray tiles: the depthwise kernels" in html
    assert "1x1 pointwise kernel, which mixes the channels, is not shown" in html


@pytest.mark.parametrize("uniform,said", [
    (True, "each unit sees 7×7 input pixels, units are 2 pixels apart ("),
    (False, "each unit sees at most 4×4 input pixels, units are 0.5 pixels apart on average")])
def test_the_receptive_field_after_upsampling_is_stated_as_such(drawn, inputs, uniform, said):
    from reportgen.explain.results import LayerViews, ReceptiveView, Unit

    size, stride = ((7.0, 7.0), (2.0, 2.0)) if uniform else ((4.0, 4.0), (0.5, 0.5))
    views = LayerViews(image=0)
    views.rf = ReceptiveView("b", size, stride, (1.0, 1.0),
                             [Unit(0, 1, 2, 3, 0.5, (0, 0, 3, 3))], 6, uniform=uniform)
    inputs.explained.layers = views
    pages = {p.rel: p for p in gather(inputs, drawn).pages}
    page = pages["layers.html"]
    assert said in render(environment(), page.template, page.context)
    md = render(environment(), pages["report.md"].template, pages["report.md"].context)
    assert ("at most 4×4 input pixels with a stride of 0.5 on average" in md) is not uniform
    assert ("sees 7×7 input pixels with a stride of 2." in md) is uniform


def test_a_model_without_readable_kernels_says_why_no_filters_are_shown(drawn, inputs):
    from reportgen.explain.results import LayerViews

    inputs.explained.layers = LayerViews(image=0, notes=["Receptive fields are not shown: x."])
    page = next(p for p in gather(inputs, drawn).pages if p.rel == "layers.html")
    html = render(environment(), page.template, page.context)
    assert "Not shown: no convolutional layer of this model holds a 2-D kernel" in html
    assert '<p class="note">Receptive fields are not shown: x.</p>' in html
