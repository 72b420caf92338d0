"""Every page of the smoke site, opened from file:// in headless Chromium, as a person would:
no console errors, no failed requests, no broken images, alt text everywhere, no horizontal
scrolling at phone width, and dark mode honoured."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from reportgen.cli import main
from .chromium import axe_script, axe_violations, browser, check_page, require_browser


require_browser()


@pytest.fixture(scope="module")
def site(smoke_site):
    """The shared smoke site (tests/conftest.py): read, never changed, by these tests."""
    return smoke_site[0]


@pytest.fixture(scope="module")
def chromium():
    with browser() as b:
        yield b


@pytest.mark.parametrize("width", [1280, 390])
def test_every_page_loads_clean(site, chromium, width):
    pages = sorted(site.glob("*.html"))
    assert len(pages) >= 9
    page = chromium.new_page(viewport={"width": width, "height": 800})
    for html in pages:
        r = check_page(page, html.resolve().as_uri())
        assert r["errors"] == [], f"{html.name}: console errors {r['errors']}"
        assert r["failed"] == [], f"{html.name}: failed requests {r['failed']}"
        assert r["broken"] == [], f"{html.name}: broken images {r['broken']}"
        assert r["noAlt"] == [], f"{html.name}: images without alt {r['noAlt']}"
        assert r["scrollWidth"] <= r["innerWidth"], \
            f"{html.name}: scrolls horizontally at {width} px ({r['scrollWidth']} px wide)"
    page.close()


def in_both_schemes(site, chromium, script: str) -> dict:
    """{"light", "dark"}: what ``script`` returns on the overview in each colour scheme."""
    out = {}
    for scheme in ("light", "dark"):
        page = chromium.new_page(color_scheme=scheme)
        page.goto((site / "index.html").resolve().as_uri())
        out[scheme] = page.evaluate(script)
        page.close()
    return out


def test_dark_mode_changes_colours(site, chromium):
    colours = in_both_schemes(site, chromium, "() => [getComputedStyle(document.body)"
                              ".backgroundColor, getComputedStyle(document.body).color]")
    assert colours["light"] != colours["dark"]
    assert colours["dark"][0] != "rgb(255, 255, 255)"


def test_gallery_links_open_full_images(site, chromium):
    page = chromium.new_page()
    page.goto(next(site.glob("class-00-*.html")).resolve().as_uri())
    hrefs = page.eval_on_selector_all(".tile a", "els => els.map(e => e.href)")
    assert hrefs
    sizes = page.evaluate("""async (urls) => Promise.all(urls.map(u => new Promise(done => {
        const img = new Image();
        img.onload = () => done([img.naturalWidth, img.naturalHeight]);
        img.onerror = () => done([0, 0]);
        img.src = u; })))""", hrefs[:12])
    assert all(w >= 128 and h >= 128 for w, h in sizes), sizes  # full-size maps, not thumbs
    page.close()


@pytest.mark.parametrize("width", [1280, 390])
def test_comparison_page_loads_clean(site, second_site, chromium, tmp_path, width):
    """A comparison of the smoke site with a second model on the same data, as a person would
    open it."""
    other = second_site
    out = tmp_path / "compare"
    result = CliRunner().invoke(main, ["compare", str(site), str(other), "--out", str(out)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    page = chromium.new_page(viewport={"width": width, "height": 800})
    r = check_page(page, (out / "index.html").resolve().as_uri())
    assert r["errors"] == [] and r["failed"] == [] and r["broken"] == []
    assert r["noAlt"] == [] and r["images"] > 4
    assert r["scrollWidth"] <= r["innerWidth"], f"scrolls horizontally at {width} px"
    page.close()


@pytest.mark.parametrize("width", [1280, 390])
def test_wide_tables_scroll_in_a_focusable_box(site, chromium, width):
    page = chromium.new_page(viewport={"width": width, "height": 800})
    wide = 0
    for html in sorted(site.glob("*.html")):
        page.goto(html.resolve().as_uri())
        found = page.evaluate("""() => [...document.querySelectorAll('table')].filter(t => {
            return t.scrollWidth > t.parentElement.clientWidth + 1;      // wider than its box
        }).map(t => {
            const box = t.parentElement, style = getComputedStyle(box);
            return {ok: box.classList.contains('table-wrap') && box.tabIndex === 0
                        && ['auto', 'scroll'].includes(style.overflowX)
                        && style.backgroundImage.includes('gradient'),  // the scroll shadow
                    table: t.outerHTML.slice(0, 80)};
        })""")
        wide += len(found)
        bad = [f["table"] for f in found if not f["ok"]]
        assert bad == [], f"{html.name}: tables wider than their column, not scrollable: {bad}"
    if width == 390:
        assert wide > 0  # at phone width some table is wider: the check above has run
    else:
        assert wide == 0  # a desktop window shows every table whole (issue 26)
    page.close()


def test_dark_mode_themes_the_figures(site, chromium):
    filters = in_both_schemes(site, chromium, "() => getComputedStyle("
                              "document.querySelector('img.figure')).filter")
    assert filters["light"] == "none" and "invert" in filters["dark"]


def test_gallery_headings_state_the_true_counts(site, chromium):
    import json
    import re

    metrics = json.loads((site / "metrics.json").read_text())
    cm = metrics["splits"]["test"]["confusion_matrix"]
    page = chromium.new_page()
    for c, name in enumerate(metrics["classes"]):
        page.goto(next(site.glob(f"class-{c:02d}-*.html")).resolve().as_uri())
        heads = dict(page.evaluate("() => [...document.querySelectorAll('h2')].map("
                                   "h => [h.id, h.textContent])"))
        want = {"misclassified": sum(cm[c]) - cm[c][c],
                "confident_wrong": sum(row[c] for row in cm) - cm[c][c], "correct": cm[c][c]}
        for key, n in want.items():
            got = re.search(r"\((\d+)", heads[key])
            assert got and int(got.group(1)) == n, (name, key, heads[key], n)
        assert list(heads)[:3] == ["misclassified", "confident_wrong", "correct"]
    page.close()


@pytest.fixture(scope="module")
def axe():
    script = axe_script()
    if script is None:
        if os.environ.get("CI"):
            raise RuntimeError("CI needs npm to install axe-core for the accessibility tests")
        pytest.skip("needs npm (axe-core is installed from the npm registry)")
    return script


@pytest.mark.parametrize("width,scheme", [(1280, "light"), (390, "light"), (1280, "dark")])
def test_axe_finds_no_violation_on_any_page(site, chromium, axe, width, scheme):
    page = chromium.new_page(viewport={"width": width, "height": 800}, color_scheme=scheme)
    found = {}
    for html in sorted(site.glob("*.html")):
        page.goto(html.resolve().as_uri(), wait_until="load")
        violations = axe_violations(page, axe)
        if violations:
            found[html.name] = violations
    page.close()
    assert found == {}, f"axe-core {width} px {scheme}: {found}"


def test_a_click_on_a_gallery_image_opens_it_larger_with_its_labels(site, chromium):
    page = chromium.new_page(viewport={"width": 1280, "height": 800})
    page.goto((site / "errors.html").resolve().as_uri(), wait_until="load")
    link = page.locator(".tile a[data-caption]").nth(2)  # the first tile's true-class map
    caption, href = link.get_attribute("data-caption"), link.get_attribute("href")
    assert "true" in caption and "pred" in caption
    link.click()
    dialog = page.locator("dialog.lightbox")
    assert dialog.evaluate("d => d.open")
    assert dialog.locator("p").inner_text() == caption
    assert dialog.locator("img").get_attribute("src") == href
    page.keyboard.press("Escape")
    assert not dialog.evaluate("d => d.open")
    page.close()
