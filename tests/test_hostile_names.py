"""Every user-controlled string is safe in every output: the same hostile set (HTML, Markdown,
LaTeX and mathtext specials, newlines, a right-to-left override, bytes that are not UTF-8,
blank, very long) through each escaping function, then through a whole build as class folder
names, file names and the report title."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_bad_input import build  # tests/ is on sys.path

from reportgen.report.render import environment
from reportgen.report.tables import Table, md_escape, tex_escape
from reportgen.text import BIDI, mathtext, printable

HOSTILE = [
    "<script>alert(1)</script>",
    "**bold** _it_ [x](javascript:alert(1)) | pipe `code` # h",
    "\\textbf{x} & 50% $5 #1 ~ ^ {y}",
    "$\\frac{1$",
    "line1\nline2\r\tend",
    "\u202egnp.exe",
    os.fsdecode(b"bad\xffbyte"),
    "   ",
    "x" * 300,
]
MD_SPECIALS = set("\\`*_{}[]<>()#+!|&~")
TEX_SPECIALS = set("&%$#_{}~^\\")


def clean(s: str) -> bool:
    """Displays as itself: valid UTF-8, no control or bidirectional characters."""
    s.encode("utf-8")
    return all(ch.isprintable() for ch in s) and not BIDI.intersection(s)


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_printable_shows_every_string_as_itself(text):
    out = printable(text)
    assert clean(out)
    if text.isprintable():
        assert out == text  # ordinary strings are left alone
    assert printable(out) == out


def test_printable_keeps_different_bytes_different():
    names = [os.fsdecode(b) for b in (b"a\xff", b"a\xfe", b"a\xc3")]
    assert len({printable(n) for n in names}) == 3
    assert printable(names[0]) == "a\\xff"
    assert printable("\u202ex") == "‹U+202E›x"


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_markdown_escapes_every_special(text):
    out = md_escape(text)
    assert clean(out) and "\n" not in out
    # Every Markdown/HTML special character is preceded by a backslash.
    for m in re.finditer(r"[\\`*_{}\[\]<>()#+!|&~]", out):
        j = m.start()
        backslashes = len(out[:j]) - len(out[:j].rstrip("\\"))
        if out[j] != "\\":
            assert backslashes % 2 == 1, (out, j)


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_latex_escapes_every_special(text):
    out = tex_escape(text)
    assert clean(out)
    stripped = re.sub(r"\\(textbackslash|textasciitilde|textasciicircum|textless|textgreater)"
                      r"\{\}", "", out)
    stripped = re.sub(r"\\[&%$#_{}]", "", stripped)
    assert not TEX_SPECIALS.intersection(stripped), stripped


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_html_pages_escape_and_clean_every_value(text):
    env = environment()
    out = env.from_string("<p title=\"{{ x }}\">{{ x }}</p>").render(x=text)
    assert "<script" not in out and clean(out.replace("\n", ""))
    assert out.count("<") == 2 and out.count(">") == 2  # only the template's own tags
    assert '"' not in out[len('<p title="'):out.index('">')]


def test_tables_carry_hostile_cells_into_every_format():
    t = Table("t", ["name", "n"], [[h, 1] for h in HOSTILE], "Hostile <caption> $x$")
    html, md, tex = str(t.html()), t.markdown(), t.latex()
    assert "<script" not in html and clean(html.replace("\n", ""))
    assert not re.search(r"(?<!\\)<", md) and len(md.splitlines()) == len(HOSTILE) + 2
    assert "$\\frac" not in tex and "\\$\\textbackslash{}frac" in tex
    for out in (html, md, tex):
        out.encode("utf-8")


def test_figures_draw_every_hostile_label():
    import matplotlib
    matplotlib.use("Agg")
    from reportgen import figures as figs

    names = HOSTILE
    fig = figs.class_distribution({"train": list(range(1, len(names) + 1))}, names,
                                  title="$\\frac{ <b> \u202e")
    fig.canvas.draw()  # mathtext errors surface here
    cm = figs.confusion_matrix(np.eye(len(names)), names, title="$$")
    cm.canvas.draw()
    assert all(mathtext(n).count("$") == mathtext(n).count("\\$") for n in names)


# -- through a whole build -------------------------------------------------------------------------

CLASS_DIRS = [b"<script>alert(1)<", b"a|b*c_[x](y)", b"50% $5 #1 ~ ^ {y}", b"$\\frac{1$",
              b"line1\nline2", "\u202egnp".encode(), b"bad\xffbyte", b"   ", b"x" * 200]
FILE_NAMES = [b"<img src=x onerror=alert(1)>.png", b"a\nb.png", b"\xfe.png"]


def hostile_folder(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for k, d in enumerate(CLASS_DIRS):
        folder = os.path.join(os.fsencode(root), d)
        os.makedirs(folder, exist_ok=True)
        colour = np.array([(k * 53) % 255, (k * 97) % 255, (k * 31) % 255])
        for name in FILE_NAMES:
            arr = np.clip(colour + rng.normal(0, 6, (32, 32, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(arr).save(os.fsdecode(os.path.join(folder, name)), format="PNG")
    return root


@pytest.mark.slow
def test_a_build_with_hostile_names_everywhere(tmp_path):
    data = hostile_folder(tmp_path / "data")
    out = tmp_path / "site"
    try:
        import yaml  # the model card's front matter is read back where PyYAML is installed
    except ImportError:
        yaml = None
    result = build(tmp_path, "report.figure_formats=['png', 'svg', 'pdf']",
                   "report.title='<script>x</script> $\\frac{ \u202e'",
                   "explain.methods=['gradcam', 'saliency']", data=data, out=out)
    assert result.exit_code == 0, result.output
    texts = {p: p.read_bytes() for p in out.rglob("*")
             if p.suffix in {".html", ".md", ".tex", ".csv", ".json", ".svg", ".js", ".tsv"}}
    for path, raw in texts.items():
        text = raw.decode("utf-8")  # every text file is valid UTF-8
        assert "\u202e" not in text, path
        if path.suffix == ".html":
            scripts = re.findall(r"<script[^>]*>", text)
            own = ['<script src="explore/points.js">', '<script src="explore.js" defer>'] \
                if path.name == "explore.html" else []
            if path.name != "report.html":
                own.append('<script src="site.js" defer>')
            assert scripts == own, path  # only the site's own (report.html: none)
            assert "<img src=x" not in text, path
        if path.name == "model_card.md":  # YAML front matter (data, not Markdown), then text
            front, text = text[4:].split("\n---\n", 1)
            title = yaml.safe_load(front)["model-index"][0]["name"] if yaml else None
            assert title in (None, printable("<script>x</script> $\\frac{ \u202e"))
        if path.suffix == ".md":  # GitHub renders \< as a plain <
            assert not re.search(r"(?<!\\)<(script|img src=x)", text), path
    metrics = json.loads((out / "metrics.json").read_text("utf-8"))
    want = sorted(printable(os.fsdecode(d)) for d in CLASS_DIRS)
    assert sorted(metrics["classes"]) == want
    assert len({p.name for p in out.glob("class-*.html")}) == len(CLASS_DIRS)
    md = (out / "report.md").read_text("utf-8")
    assert "\\<script\\>x\\</script\\>" in md and "bad\\\\xffbyte" in md
    assert all(clean(line) for line in md.splitlines())
    for f in (out / "fig").glob("*.png"):
        assert Image.open(f).size[0] > 100  # every figure was drawn


@pytest.mark.slow
def test_a_model_with_layer_names_tensorflow_cannot_run_is_explained(keras, tmp_path):
    import csv

    from test_bad_input import load_model_args, make_folder

    inp = keras.Input((16, 16, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inp)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu",
                            name="conv\n<script>$x$ \u202e")(x)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv script x")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="out")(x))
    model.save(tmp_path / "m.keras")
    data = make_folder(tmp_path / "data")
    result = build(tmp_path, *load_model_args(tmp_path / "m.keras"),
                   "explain.methods=['gradcam', 'guided_backprop']", data=data)
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "site" / "metrics.json").read_text())
    note = next(n for n in metrics["notes"] if "renamed" in n)
    assert "'conv_script_x'" in note and "'conv_script_x_2'" in note
    assert metrics["explain"]["layer"] == "conv_script_x_2"  # the last conv layer
    with open(tmp_path / "site" / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    images = np.stack([np.asarray(Image.open(data / r["file"]).convert("RGB")) for r in rows])
    want = np.asarray(model(images.astype(np.float32)))  # the renamed copy keeps the weights
    got = np.array([[float(r[c]) for c in ("blue", "green", "red")] for r in rows])
    np.testing.assert_allclose(got, want, atol=1e-5)
