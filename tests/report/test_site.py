"""Writing the site safely: atomic replace, foreign folders refused, failures lose nothing."""

from __future__ import annotations

import pytest

from reportgen.errors import OutputError
from reportgen.report.site import MARKER, SiteWriter


def build(out, text="new"):
    with SiteWriter(out) as site:
        site.path("index.html").write_text(text)
        site.path("img/a.jpg").write_bytes(b"x")
        site.commit()


def snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_new_folder_written_with_marker(tmp_path):
    build(tmp_path / "site")
    assert (tmp_path / "site" / "index.html").read_text() == "new"
    assert (tmp_path / "site" / MARKER).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]


def test_rebuild_replaces_own_site(tmp_path):
    build(tmp_path / "site", "one")
    (tmp_path / "site" / "stale.html").write_text("old page")
    build(tmp_path / "site", "two")
    assert (tmp_path / "site" / "index.html").read_text() == "two"
    assert not (tmp_path / "site" / "stale.html").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]


def test_foreign_folder_refused_untouched(tmp_path):
    out = tmp_path / "thesis"
    out.mkdir()
    (out / "chapter1.tex").write_text("precious")
    before = snapshot(out)
    with pytest.raises(OutputError, match="not written by reportgen"):
        build(out)
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis"]


def test_empty_folder_accepted(tmp_path):
    (tmp_path / "site").mkdir()
    build(tmp_path / "site")
    assert (tmp_path / "site" / "index.html").exists()


@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyboardInterrupt()])
def test_failed_or_interrupted_build_keeps_previous_site(tmp_path, exc):
    build(tmp_path / "site", "previous")
    before = snapshot(tmp_path / "site")
    with pytest.raises(type(exc)):
        with SiteWriter(tmp_path / "site") as site:
            site.path("index.html").write_text("half")
            raise exc
    assert snapshot(tmp_path / "site") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]


def test_output_path_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match="not a folder"):
        SiteWriter(tmp_path / "f")


def test_paginate_keeps_order_and_limits_pages():
    from reportgen.report.gallery import paginate
    secs = [{"key": "a", "tiles": list(range(150))}, {"key": "b", "tiles": []},
            {"key": "c", "tiles": list(range(70))}]
    pages = paginate(secs, per_page=100)
    assert [sum(len(s["tiles"]) for s in p) for p in pages] == [100, 100, 20]
    flat = [(s["key"], t) for p in pages for s in p for t in s["tiles"]]
    assert flat == [("a", t) for t in range(150)] + [("c", t) for t in range(70)]
    assert pages[1][0]["key"] == "a" and pages[1][0]["continued"]
    assert all(s["total"] == {"a": 150, "b": 0, "c": 70}[s["key"]] for p in pages for s in p)
    assert [s["key"] for s in pages[1]] == ["a", "b", "c"]
