"""Jinja2 rendering of the site's pages and Markdown report (autoescape, StrictUndefined)."""

from __future__ import annotations

import html
import re
from pathlib import Path

import jinja2
from markupsafe import Markup

from reportgen.report.tables import fmt, md_escape, md_gallery
from reportgen.text import duration, plural, printable


def templates_dir() -> Path:
    """Return the templates folder: the source tree's ``templates/`` (editable installs, any
    working directory) or the installed package data ``reportgen/templates``."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here.parent / "templates", here / "templates"):
        if (candidate / "_layout.html").is_file():
            return candidate
    from importlib import resources
    return Path(str(resources.files("reportgen.templates")))


#: Files of the templates folder every site carries (its pages link to them).
STATIC = ("style.css", "favicon.svg", "site.js", "explore.js")


def environment(folder: Path | None = None) -> jinja2.Environment:
    """Return the Jinja2 environment: HTML autoescaped, Markdown not (it uses ``|md``)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder or templates_dir())),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",),
                                            default_for_string=True, default=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=_printable,
    )
    env.filters["md"] = md_escape
    env.filters["md_gallery"] = md_gallery
    env.filters["fmt"] = fmt
    env.filters["plural"] = plural
    env.filters["duration"] = duration
    env.filters["pct"] = lambda v, d=1: "–" if v is None or v != v else f"{100 * v:.{d}f} %"
    return env


def _printable(value):
    """Every string a page shows goes through :func:`reportgen.text.printable` (before
    autoescape); markup built by reportgen (tables) is left as it is."""
    return value if isinstance(value, Markup) or not isinstance(value, str) else printable(value)


def render(env: jinja2.Environment, template: str, context: dict) -> str:
    """Render ``template`` with ``context``; an HTML page gets heading permalinks and, with
    three sections or more, a table of contents (:func:`with_anchors`)."""
    out = env.get_template(template).render(**context)
    return with_anchors(out) if template.endswith(".html") else out


_HEADING = re.compile(r"<h([23])(?: id=\"([^\"]*)\")?>(.*?)</h\1>", re.S)
#: Sections (h2) a page needs for a table of contents.
TOC_SECTIONS = 3


def with_anchors(page: str) -> str:
    """Give every h2 and h3 of ``page`` an id (its own, or one made from its text, unique) and
    a permalink; insert a table of contents of the h2 sections after the h1 when there are
    :data:`TOC_SECTIONS` or more."""
    used: set[str] = set(re.findall(r'\bid="([^"]+)"', page))
    toc = []

    def anchor(m: re.Match) -> str:
        level, ident, inner = m.group(1), m.group(2), m.group(3)
        text = html.unescape(re.sub(r"<[^>]+>", "", inner)).strip()
        if not ident:
            base = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"
            ident, k = base, 2
            while ident in used:
                ident, k = f"{base}-{k}", k + 1
            used.add(ident)
        if level == "2":
            toc.append((ident, text))
        return (f'<h{level} id="{ident}">{inner} <a class="permalink" href="#{ident}" '
                f'aria-label="Link to this section: {html.escape(text)}">#</a></h{level}>')

    page = _HEADING.sub(anchor, page)
    if len(toc) >= TOC_SECTIONS and "</h1>" in page:
        items = "".join(f'<li><a href="#{i}">{html.escape(t)}</a></li>' for i, t in toc)
        nav = f'\n<nav class="toc" aria-label="On this page"><ul>{items}</ul></nav>'
        page = page.replace("</h1>", "</h1>" + nav, 1)
    return page
