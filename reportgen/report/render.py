"""Jinja2 rendering of the site's pages and Markdown report (autoescape, StrictUndefined)."""

from __future__ import annotations

from pathlib import Path

import jinja2
from markupsafe import Markup

from reportgen.report.tables import fmt, md_escape
from reportgen.text import printable


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
STATIC = ("style.css", "favicon.svg")


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
    env.filters["fmt"] = fmt
    env.filters["pct"] = lambda v, d=1: "–" if v is None or v != v else f"{100 * v:.{d}f} %"
    return env


def _printable(value):
    """Every string a page shows goes through :func:`reportgen.text.printable` (before
    autoescape); markup built by reportgen (tables) is left as it is."""
    return value if isinstance(value, Markup) or not isinstance(value, str) else printable(value)


def render(env: jinja2.Environment, template: str, context: dict) -> str:
    """Render ``template`` with ``context``."""
    return env.get_template(template).render(**context)
