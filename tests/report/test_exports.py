"""Paper exports drop into a LaTeX paper unchanged: tables as floats with caption and label,
numeric columns right-aligned, true minus signs, marked cells bold; figures with their text as
text in SVG and PDF."""

from __future__ import annotations

import re

import numpy as np

from reportgen.report.tables import Table


def quality_table() -> Table:
    return Table("explanation_quality",
                 ["method", "deletion AUC ↓", "insertion AUC ↑", "|rank corr.| ↓", "n"],
                 [["GradCAM", 0.246, 0.529, 0.616, 100], ["RISE", 0.2, 0.6, None, 100],
                  ["Occ_lusion", 0.3, 0.6, 0.1, 100]], "Quality on 100 images")


def test_latex_tables_are_floats_with_right_aligned_numbers():
    tex = quality_table().latex()
    assert re.search(r"\\begin\{tabular\}\{lrrrr\}", tex)
    assert "\\caption{Quality on 100 images}" in tex and "\\label{tab:explanation_quality}" in tex
    assert tex.count("\\begin{table}[t]") == 1 and "\\end{table}" in tex
    assert "deletion AUC $\\downarrow$" in tex and "insertion AUC $\\uparrow$" in tex
    assert "Occ\\_lusion" in tex and "--" in tex  # escaped text; a missing value


def test_no_cell_is_bold_by_its_value_alone():
    t = quality_table()
    assert "textbf" not in t.latex() and "<strong>" not in t.html() and "**" not in t.markdown()


def test_marked_cells_are_bold_in_every_format():
    t = quality_table()
    t.marks = {(1, 1), (1, 2), (2, 2)}  # RISE's deletion; RISE and Occ_lusion tied on insertion
    rows = {line.split(" & ")[0]: line.split(" & ") for line in t.latex().splitlines()
            if " & " in line and not line.startswith("method")}
    assert rows["RISE"][1] == "\\textbf{0.200}" and rows["RISE"][2] == "\\textbf{0.600}"
    assert rows["Occ\\_lusion"][2] == "\\textbf{0.600}" and "textbf" not in rows["GradCAM"][1]
    html = t.html()
    assert html.count("<strong>") == 3 and "<strong>0.200</strong>" in html
    md = t.markdown()
    assert md.count("**0.600**") == 2 and "**0.200**" in md and "**0.246**" not in md
    escaped = Table("e", ["a"], [["<b>&"]], marks={(0, 0)})
    assert "<strong>&lt;b&gt;&amp;</strong>" in escaped.html()  # still escaped inside


def test_a_marked_missing_cell_is_plain_in_every_format():
    t = Table("m", ["method", "sanity"], [["GradCAM", None], ["RISE", 0.5]],
              marks={(0, 1), (1, 1)})
    html, md, tex = t.html(), t.markdown(), t.latex()
    assert html.count("<strong>") == 1 and "<strong>0.500</strong>" in html
    assert "<strong>–</strong>" not in html and "–" in html
    assert md.count("**") == 2 and "**0.500**" in md and "**–**" not in md
    assert tex.count("textbf") == 1 and "\\textbf{--}" not in tex


def test_latex_numbers_have_true_minus_signs_and_percent():
    tex = Table("t", ["a", "b"], [["x", -0.616], ["y", "12.5 %"]], "c").latex()
    assert "$-$0.616" in tex and "-0.616" not in tex.replace("$-$", "")
    assert "12.5\\,\\%" in tex


def test_wide_tables_span_both_columns():
    tex = Table("wide", list("abcdefg"), [[1] * 7], "seven columns").latex()
    assert "\\begin{table*}[t]" in tex and "\\end{table*}" in tex


def test_figures_keep_their_text_as_text(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    from reportgen import figures as figs

    fig = figs.confusion_matrix(np.array([[5, 1], [2, 7]]), ["cat", "dog"])
    svg, pdf = figs.save_figure(fig, tmp_path / "cm", ["svg", "pdf"])
    text = svg.read_text()
    assert text.count("<text") >= 6 and ">cat<" in text.replace("</", "<")
    assert b"/FontFile2" in pdf.read_bytes()  # TrueType (Type 42) fonts: text, not paths


def test_values_with_intervals_stay_numeric_cells():
    from reportgen.report.tables import with_interval

    t = Table("q", ["method", "deletion AUC ↓"],
              [["A", with_interval(0.25, [0.2, 0.3])], ["B", with_interval(-0.1, [-0.2, 0.05])],
               ["C", with_interval(None, [0.1, 0.2])]], "c")
    assert t.rows[0][1] == "0.250 [0.200, 0.300]" and t.rows[2][1] is None
    t.marks = {(1, 1)}
    tex = t.latex()
    assert "{lr}" in tex  # still a numeric column: right-aligned
    assert "\\textbf{$-$0.100 {\\scriptsize [$-$0.200, 0.050]}}" in tex  # marked, true minus
    assert "0.250 {\\scriptsize [0.200, 0.300]}" in tex


def test_figures_are_drawn_at_paper_sizes_with_paper_text():
    from reportgen import figures as figs

    small = figs.confusion_matrix(np.eye(3) * 5, ["a", "b", "c"])
    assert small.get_size_inches()[0] == figs.COLUMN == 3.3
    curves = figs.training_curves({"loss": [1.0, 0.5], "val_loss": [1.1, 0.6]})
    assert curves.get_size_inches()[0] == figs.FULL == 6.8
    sizes = {t.get_fontsize() for ax in small.axes for t in ax.get_xticklabels() + ax.texts}
    assert sizes and all(5 <= s <= 9 for s in sizes)
    title = small.axes[0].title.get_fontsize()
    assert 7 <= title <= 9


def test_each_confusion_cell_holds_its_count_and_row_share():
    from reportgen import figures as figs

    fig = figs.confusion_matrix(np.array([[3, 1], [0, 0]]), ["cat", "dog"])
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["3\n75 %", "1\n25 %", "0", "0"]  # an empty row has no share
    assert fig.axes[1].get_ylabel() == "row %"


def test_figure_pngs_are_twice_their_size_on_the_page(tmp_path):
    from PIL import Image

    from reportgen import figures as figs
    from reportgen.report.figjobs import DENSITY, Figures

    class Site:
        def path(self, rel):
            p = tmp_path / "site" / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            return p

    with Figures(["png"], parallel=False) as f:
        info = f.add("cm", figs.confusion_matrix, np.eye(2), ["a", "b"], alt="a", caption="c")
        f.write_into(Site())
    w, h = Image.open(tmp_path / "site" / "fig" / "cm.png").size
    assert DENSITY == 2 and abs(w - 2 * info["width"]) <= 2 and abs(h - 2 * info["height"]) <= 2
