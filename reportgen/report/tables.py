"""Tables: one list of rows rendered as HTML, GitHub Markdown and LaTeX booktabs (tabulate)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from markupsafe import Markup
from tabulate import tabulate

from reportgen.text import printable

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|&~])")


def md_escape(text) -> str:
    """Escape ``text`` for GitHub-flavoured Markdown (inline text and table cells): Markdown and
    HTML special characters are backslash-escaped, so ``<script>`` shows as text."""
    return _MD_SPECIAL.sub(r"\\\1", printable(text))


_TEX_SPECIAL = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
                "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                "\\": r"\textbackslash{}", "<": r"\textless{}", ">": r"\textgreater{}"}


def tex_escape(text) -> str:
    """Escape ``text`` for LaTeX."""
    return "".join(_TEX_SPECIAL.get(ch, ch) for ch in printable(text))


def fmt(value, digits: int = 3) -> str:
    """Format a cell: floats to ``digits`` decimals, None as an en dash."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return "–" if value != value else f"{value:.{digits}f}"
    return printable(value)


@dataclass
class Table:
    """A table with a file-name ``name`` (for exports), column headers and formatted rows."""

    name: str
    headers: list[str]
    rows: list[list]
    caption: str = ""
    align: list[str] = field(default_factory=list)

    def _cells(self) -> list[list[str]]:
        return [[fmt(v) for v in row] for row in self.rows]

    def html(self) -> Markup:
        """The table as escaped HTML."""
        return Markup(tabulate(self._cells(), headers=self.headers, tablefmt="html",
                               disable_numparse=True))

    def markdown(self) -> str:
        """The table as a GitHub-flavoured Markdown pipe table, cells escaped."""
        cells = [[md_escape(c) for c in row] for row in self._cells()]
        return tabulate(cells, headers=[md_escape(h) for h in self.headers], tablefmt="github",
                        disable_numparse=True)

    def latex(self) -> str:
        """The table as a LaTeX booktabs tabular (needs ``\\usepackage{booktabs}``)."""
        body = tabulate(self._cells(), headers=self.headers, tablefmt="latex_booktabs",
                        disable_numparse=True)  # this format escapes LaTeX specials itself
        return f"% {tex_escape(self.caption)}\n{body}\n"

