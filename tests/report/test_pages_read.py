"""Pages a reader can find their way in: permalinks and a table of contents on every HTML page,
galleries that stay a grid in Markdown on GitHub, and the configuration as it was used."""

from __future__ import annotations

from reportgen.report.render import with_anchors
from reportgen.report.tables import md_gallery


def test_headings_get_ids_permalinks_and_a_table_of_contents():
    page = ("<h1>T</h1><h2 id=\"data\">Data</h2><h2>Per <code>x</code> class</h2>"
            "<h3>Per <code>x</code> class</h3><h2>Errors &amp; more</h2>")
    out = with_anchors(page)
    assert '<h2 id="data">Data <a class="permalink" href="#data"' in out
    assert '<h2 id="per-x-class">Per <code>x</code> class <a' in out
    assert '<h3 id="per-x-class-2">' in out  # ids stay unique
    assert '<h2 id="errors-more">' in out
    toc = out[out.index('<nav class="toc"'):out.index("</nav>")]
    assert toc.count("<li>") == 3 and 'href="#per-x-class"' in toc and "Errors &amp; more" in toc
    assert "toc" not in with_anchors("<h1>T</h1><h2>A</h2><h2>B</h2>")  # two sections: no TOC


def _tile(i, correct):
    views = [{"label": "image", "src": f"i{i}.jpg", "full": f"I{i}.jpg", "alt": "image"},
             {"label": "map", "src": f"m{i}.jpg", "full": f"M{i}.jpg", "alt": "map | pred"}]
    return {"views": views, "true": "cat", "correct": correct,
            "caption": f"{'right' if correct else 'wrong'}: true cat, pred dog 90.0 %"}


def test_markdown_galleries_are_tables_with_a_caption_under_each_image():
    md = str(md_gallery([_tile(i, i % 2 == 0) for i in range(5)], cols=4))
    lines = md.splitlines()
    assert len(lines) == 3 and lines[1] == "|:-:|:-:|:-:|:-:|"  # header row, rule, one more
    assert [line.count(" | ") for line in (lines[0], lines[2])] == [3, 3]
    assert "[![map \\| pred](m0.jpg)](M0.jpg)<br>✓ right: true cat" in lines[0]
    assert "✗ wrong" in lines[0] and "i0.jpg" not in md  # the maps, not the plain image
    assert str(md_gallery([])) == ""
