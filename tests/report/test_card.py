"""The model card: the [card] section, checked and shown on the overview, in report.md and as
model_card.md, a Hugging Face model card whose YAML front matter holds the test metrics
(gathered from made-up results, no TensorFlow)."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from reportgen.cli import main
from reportgen.config import from_dict
from reportgen.errors import ConfigError
from reportgen.report import gather
from reportgen.report.card import licence, yaml_str
from reportgen.report.render import environment, render

HOSTILE = {
    "intended_use": "Sorting: \"cats\" # not dogs\n\nSecond paragraph: key: value\n---\n- a",
    "out_of_scope_use": "<script>alert(1)</script> & 'quotes' `code` *bold* [x](http://e)",
    "limitations": "line one\nline two\twith a tab\u2028and a separator",
    "ethical_considerations": "",
    "authors": ["Ada: Lovelace", "O'Brien \"#1\""],
    "license": "My-Licence-1.0+",
    "citation": "@misc{x,\n  title = {A: \"b\" # c},\n  note = {```}\n}",
}
TITLE = 'Run: "7" # of 8\n--- yes'


def _page(content, rel):
    page = next(p for p in content.pages if p.rel == rel)
    return render(environment(), page.template, page.context)


def _front(text: str) -> dict:
    yaml = pytest.importorskip("yaml")
    m = re.match(r"---\n(.*?)\n---\n", text, re.S)
    assert m, text[:200]
    return yaml.safe_load(m.group(1))


def _with_card(inputs, card: dict, title: str = ""):
    inputs.cfg = from_dict({"card": card, "report": {"title": title}})
    return inputs


def test_an_empty_card_says_not_stated_and_reports_the_measured_metrics(drawn, inputs):
    text = _page(gather(inputs, drawn), "model_card.md")
    front = _front(text)
    test = inputs.metrics["test"]
    assert front["license"] == "unknown" and "license_name" not in front
    assert front["tags"] == ["image-classification", "keras", "reportgen"]
    result = front["model-index"][0]["results"][0]
    assert result["task"]["type"] == "image-classification"
    assert result["dataset"] == {"name": "reportgen shapes demo",
                                 "type": "reportgen-shapes-demo", "split": "test"}
    values = {m["name"]: m["value"] for m in result["metrics"]}
    assert values["Test accuracy"] == test["accuracy"]  # the value computed, not rounded
    assert values["Test macro F1"] == test["macro_f1"]
    for heading in ("Intended use", "Out-of-scope use", "Limitations",
                    "Ethical considerations", "Citation"):
        body = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
        assert body.strip() == "Not stated.", heading
    assert "**Authors**: not stated" in text
    html = _page(gather(inputs, drawn), "index.html")
    assert 'id="model-card"' in html and html.count("not stated") >= 7


def test_hostile_fields_stay_text_and_the_yaml_reads_back(drawn, inputs):
    _with_card(inputs, HOSTILE, TITLE)
    content = gather(inputs, drawn)
    text = _page(content, "model_card.md")
    front = _front(text)
    assert front["license"] == "other" and front["license_name"] == "My-Licence-1.0+"
    assert front["model-index"][0]["name"] == 'Run: "7" # of 8 --- yes'  # printable: a space
    assert text.count("\n---\n") == 1  # the front matter's end only: no field ends it
    assert 'Sorting: "cats" \\# not dogs\n\nSecond paragraph: key: value --- - a\n' in text
    assert "\\<script\\>" in text and "<script>" not in text
    assert "````\n@misc{x," in text  # a fence longer than the citation's ```
    html = _page(content, "index.html")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html
    assert "My-Licence-1.0+ is not a licence identifier" in html
    assert "Ada: Lovelace" in html and "O&#39;Brien &#34;#1&#34;" in html
    md = _page(content, "report.md")
    assert "## Model card" in md and "\\<script\\>" in md


def test_the_hugging_face_model_card_loads(drawn, inputs):
    hub = pytest.importorskip("huggingface_hub")
    for card, title in (({}, ""), (HOSTILE, TITLE), ({"license": "Apache-2.0"}, "x")):
        text = _page(gather(_with_card(inputs, card, title), drawn), "model_card.md")
        loaded = hub.ModelCard(text)  # raises on invalid metadata or model-index
        assert loaded.data.license == licence(card.get("license", ""))["id"]
        results = {r.metric_name: r.metric_value for r in loaded.data.eval_results}
        assert results["Test accuracy"] == inputs.metrics["test"]["accuracy"]
        assert "image-classification" in loaded.data.tags
    assert licence("Apache-2.0")["id"] == "apache-2.0"


@pytest.mark.parametrize("text", [
    "", "plain", "a: b", "# comment", "- item", "'single'", '"double"', "back\\slash",
    "new\nline", "tab\there", "\x00\x07\x1b\x7f\x85\x9f", "\u2028\u2029\ufeff", "é 東京 😀",
    "---", "...", "{a: [b]}", "&anchor *alias !tag %directive @at `tick`", "yes", "null", "1e3"])
def test_yaml_strings_read_back_as_themselves(text):
    yaml = pytest.importorskip("yaml")
    assert yaml.safe_load(f"k: {yaml_str(text)}\n") == {"k": text}


def test_photos_without_labels_get_no_model_index(drawn, inputs):
    inputs.metrics["test"] = {"n": 6, "labeled": False, "per_class": {}, "top": []}
    from reportgen.report.card import card_context, front_matter
    card = card_context(inputs.cfg, inputs.metrics["test"], "t", inputs.ds.root)
    assert card["results"] == [] and "model-index" not in _front(front_matter(card))


@pytest.mark.parametrize("card,message", [
    ({"license": "MIT License"}, "card.license: expected a licence identifier"),
    ({"license": 3}, "card.license: expected string"),
    ({"authors": ["Ada", ""]}, "card.authors: expected a list of names"),
    ({"licence": "mit"}, "unknown key card.licence; did you mean 'card.license'?"),
])
def test_bad_card_keys_are_named(card, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        from_dict({"card": card})


def test_keys_lists_the_card_section():
    out = CliRunner().invoke(main, ["keys"]).output
    for key in ("card.intended_use", "card.out_of_scope_use", "card.limitations",
                "card.ethical_considerations", "card.authors", "card.license",
                "card.citation"):
        assert key in out


def test_the_card_reports_the_curves_macro_averages_where_computed(drawn, inputs):
    from reportgen.evaluate.curves import curve_metrics

    test = inputs.metrics["test"]
    labels = inputs.ds.splits["test"].labels
    test["curves"] = curve_metrics(inputs.probs["test"], labels, inputs.ds.class_names,
                                   resamples=50)
    front = _front(_page(gather(inputs, drawn), "model_card.md"))
    metrics = {m["name"]: m for m in front["model-index"][0]["results"][0]["metrics"]}
    macro = test["curves"]["macro"]
    ap = metrics["Test macro average precision (one-vs-rest)"]
    auc = metrics["Test macro ROC AUC (one-vs-rest)"]
    assert (ap["type"], ap["value"]) == ("average_precision", macro["average_precision"])
    assert (auc["type"], auc["value"]) == ("roc_auc", macro["roc_auc"])
    assert auc["args"] == {"average": "macro"}
