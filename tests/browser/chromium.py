"""Headless Chromium through Playwright, using the system browser (Debian package chromium)."""

from __future__ import annotations

import os
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str | None:
    """Path of a system Chromium, or None."""
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def require_browser() -> None:
    """Skip the calling test module without a system Chromium and the playwright package;
    on CI (``$CI`` set) their absence is an error, never a silent skip."""
    import importlib.util

    import pytest

    if chromium_path() is None or importlib.util.find_spec("playwright") is None:
        if os.environ.get("CI"):
            raise RuntimeError("CI needs chromium (apt-get install -y chromium) and playwright")
        pytest.skip("needs a system Chromium and the playwright package", allow_module_level=True)


@contextmanager
def browser():
    """Yield a Playwright Chromium browser (system executable, no download)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=FLAGS, headless=True)
        try:
            yield b
        finally:
            b.close()


#: axe-core from the npm registry, the accessibility engine the browser tests run in each page.
AXE_CORE = "4.14.1"


def axe_script() -> str | None:
    """The source of ``axe.min.js`` (axe-core :data:`AXE_CORE`), installed with npm into
    ``~/.cache/reportgen-tests`` the first time (or read from ``$AXE_CORE_DIR``); None when
    npm is missing."""
    folder = Path(os.environ.get("AXE_CORE_DIR") or
                  Path.home() / ".cache" / "reportgen-tests" / f"axe-core-{AXE_CORE}")
    js = folder / "node_modules" / "axe-core" / "axe.min.js"
    if not js.is_file():
        npm = shutil.which("npm")
        if npm is None:
            return None
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run([npm, "install", "--prefix", str(folder), "--no-audit", "--no-fund",
                        f"axe-core@{AXE_CORE}"], check=True, capture_output=True, timeout=600)
    return js.read_text(encoding="utf-8")


def axe_violations(page, script: str) -> list[dict]:
    """Run axe-core (every WCAG 2.x A/AA rule and best practice it has) on the loaded page;
    return its violations as {"id", "impact", "help", "nodes": [selector, ...]}."""
    page.add_script_tag(content=script)
    return page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ["violations"]});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 5).map(n => n.target.join(" "))})); }""")


def check_page(page, url: str) -> dict:
    """Load ``url`` and return what a person would notice: console errors, failed requests,
    broken images, images without alt text, horizontal overflow."""
    errors, failed = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("requestfailed", lambda r: failed.append(r.url))
    page.goto(url, wait_until="load")
    # Lazy images load once scrolled into view: scroll through the page.
    page.evaluate("""async () => {
        for (let y = 0; y < document.body.scrollHeight; y += 400) {
            window.scrollTo(0, y); await new Promise(r => setTimeout(r, 5)); }
        window.scrollTo(0, 0); }""")
    # Images still outside the viewport (inside horizontally scrolled tables) are loaded eagerly
    # now, so every image is checked.
    page.evaluate("() => document.querySelectorAll('img[loading=lazy]')"
                  ".forEach(i => { i.loading = 'eager'; })")
    page.wait_for_function("Array.from(document.images).every(i => i.complete)", timeout=30000)
    info = page.evaluate("""() => ({
        broken: Array.from(document.images).filter(i => i.naturalWidth === 0).map(i => i.src),
        noAlt: Array.from(document.images).filter(i => !(i.getAttribute('alt') || '').trim())
               .map(i => i.src),
        scrollWidth: document.documentElement.scrollWidth,
        innerWidth: window.innerWidth,
        images: document.images.length })""")
    return {"errors": errors, "failed": failed, **info}


def screenshots(site: Path, out: Path) -> list[Path]:
    """Screenshot every page of ``site`` at desktop (1280 px) and phone (390 px) width."""
    out.mkdir(parents=True, exist_ok=True)
    shots = []
    with browser() as b:
        for width, label in ((1280, "desktop"), (390, "phone")):
            page = b.new_page(viewport={"width": width, "height": 900})
            for html in sorted(site.glob("*.html")):
                page.goto(html.resolve().as_uri(), wait_until="load")
                page.evaluate("() => document.querySelectorAll('img[loading=lazy]')"
                              ".forEach(i => { i.loading = 'eager'; })")
                page.wait_for_function("Array.from(document.images).every(i => i.complete)")
                path = out / f"{html.stem}-{label}.png"
                page.screenshot(path=str(path), full_page=True)
                shots.append(path)
            page.close()
    return shots


if __name__ == "__main__":  # python tests/browser/chromium.py SITE OUTDIR
    import sys
    for p in screenshots(Path(sys.argv[1]), Path(sys.argv[2])):
        print(p)
