"""report.html of the smoke build in headless Chromium: it opens from file:// with JavaScript
off, asks for nothing beside itself, shows every image, and prints (print media) to a PDF of a
page per part without the navigation."""

from __future__ import annotations

import re


from .chromium import browser, require_browser

require_browser()

#: Parts of report.html, each starting a printed page (data, evaluation, classes, methods,
#: model card).
PARTS = 5


def pdf_pages(pdf: bytes) -> int:
    """Pages of a PDF (its page objects; Chromium writes them uncompressed)."""
    return len(re.findall(rb"/Type\s*/Page(?!s)", pdf))


def test_report_html_alone_without_scripts_and_printed(smoke_site, tmp_path):
    url = (smoke_site[0] / "report.html").resolve().as_uri()
    with browser() as b:
        context = b.new_context(java_script_enabled=False, viewport={"width": 1280,
                                                                     "height": 900})
        page = context.new_page()
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(url, wait_until="load")
        assert [u for u in requests if u != url and not u.startswith("data:")] == []
        images = page.locator("img")
        assert images.count() > 20
        broken = [k for k in range(images.count())
                  if images.nth(k).evaluate("i => !i.complete || i.naturalWidth === 0")]
        assert broken == []
        assert page.locator("nav.toc").is_visible()  # on screen: the parts' contents
        page.emulate_media(media="print")
        assert not page.locator("nav.toc").is_visible()
        assert not page.locator("a.permalink").first.is_visible()
        assert page.locator("section.part").nth(1).evaluate(
            "s => getComputedStyle(s).breakBefore") == "page"
        pdf = page.pdf(format="A4", print_background=True)
        context.close()
    (tmp_path / "report.pdf").write_bytes(pdf)
    assert pdf.startswith(b"%PDF") and pdf_pages(pdf) >= PARTS
