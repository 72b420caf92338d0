"""explore.html of the smoke site in headless Chromium, from file:// and from a sub-path of a
local web server (as on GitHub Pages): no console error, no request outside the site's folder,
a filter changes the drawn points, a click and the keyboard open a point's detail."""

from __future__ import annotations

import functools
import http.server
import json
import threading

import pytest

from .chromium import axe_script, axe_violations, browser, require_browser

require_browser()


@pytest.fixture(scope="module")
def site(smoke_site):
    return smoke_site[0]


@pytest.fixture(scope="module")
def chromium():
    with browser() as b:
        yield b


def _open(chromium, url: str):
    """The explorer at ``url``: (page, console errors, every URL requested)."""
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    errors, requested = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requested.append(r.url))
    page.on("requestfailed", lambda r: errors.append(f"failed: {r.url}"))
    page.goto(url, wait_until="load")
    page.wait_for_function("document.getElementById('map').getAttribute('data-drawn') !== null")
    page.wait_for_function("window.REPORTGEN_EXPLORER && (() => { const i = new Image(); "
                           "i.src = window.REPORTGEN_EXPLORER.sprite.src; return i.complete; "
                           "})()")
    return page, errors, requested


def _drawn(page) -> int:
    page.wait_for_timeout(100)  # the redraw runs on the next animation frame
    return int(page.locator("#map").get_attribute("data-drawn"))


def _click_point(page, k: int) -> None:
    """Click point ``k`` where the page draws it (scrolled into view)."""
    sx, sy = page.evaluate("k => window.reportgenExplorer.pointAt(k)", k)
    page.locator("#map").click(position={"x": sx, "y": sy})


def test_explorer_from_file_filters_and_opens_a_point(site, chromium):
    folder = site.resolve().as_uri() + "/"
    page, errors, requested = _open(chromium, (site / "explore.html").resolve().as_uri())
    data = page.evaluate("() => window.REPORTGEN_EXPLORER")
    metrics = json.loads((site / "metrics.json").read_text())
    n = len(data["points"]["x"])
    assert n == metrics["explorer"]["points"] > 0 and _drawn(page) == n
    # A filter: only the wrong predictions (the smoke model gets some wrong, not all).
    wrong = sum(t != p for t, p in zip(data["points"]["t"], data["points"]["p"], strict=True))
    assert 0 < wrong < n
    page.select_option("#f-right", "wrong")
    assert _drawn(page) == wrong
    assert page.locator("#count").inner_text() == f"Showing {wrong} of {n} points."
    page.select_option("#f-right", "all")
    page.select_option("#colour", "conf")
    assert _drawn(page) == n and page.locator("#legend li").count() == 5
    # A click on a test point opens its detail: its file, image, GradCAM and class pages.
    _click_point(page, 0)
    dialog = page.locator("#detail")
    assert dialog.evaluate("d => d.open")
    assert dialog.locator("#detail-title").inner_text() == data["points"]["f"][0]
    assert dialog.locator("figure").count() >= 2  # the image and a GradCAM
    links = dialog.locator("#detail-links a")
    assert links.count() >= 1 and links.first.get_attribute("href").startswith("class-")
    page.keyboard.press("Escape")
    assert not dialog.evaluate("d => d.open")
    # The keyboard: the map takes focus, an arrow selects a point, Enter opens it.
    page.focus("#map")
    page.keyboard.press("ArrowRight")
    assert page.locator("#status").inner_text() != ""
    page.keyboard.press("Enter")
    assert dialog.evaluate("d => d.open")
    page.keyboard.press("Escape")
    assert errors == []
    assert [u for u in requested if not u.startswith(folder)] == []
    page.close()


@pytest.fixture(scope="module")
def served(site):
    """The site's parent folder served over HTTP: the site is at a sub-path."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(site.parent)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/{site.name}/"
    server.shutdown()


def test_explorer_on_a_sub_path(served, chromium):
    page, errors, requested = _open(chromium, served + "explore.html")
    assert _drawn(page) > 0
    _click_point(page, 0)
    assert page.locator("#detail").evaluate("d => d.open")
    images = page.evaluate("() => [...document.querySelectorAll('#detail img')]"
                           ".map(i => [i.complete, i.naturalWidth])")
    assert images and all(w > 0 for _, w in images)
    assert errors == [] and [u for u in requested if not u.startswith(served)] == []
    page.close()


def test_explorer_with_its_detail_open_has_no_axe_violation(site, chromium):
    script = axe_script()
    if script is None:
        pytest.skip("needs npm (axe-core is installed from the npm registry)")
    page, _, _ = _open(chromium, (site / "explore.html").resolve().as_uri())
    assert axe_violations(page, script) == []
    _click_point(page, 0)
    assert axe_violations(page, script) == []
    page.close()
