"""Tables: one list of rows rendered as HTML, GitHub Markdown and LaTeX booktabs (tabulate)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from markupsafe import Markup, escape
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


def md_gallery(tiles: list[dict], cols: int = 4, every_view: bool = False) -> Markup:
    """Gallery tiles as a GitHub Markdown table, ``cols`` to a row: each cell the tile's map
    images (``every_view``: the plain image too) linked to their full size, and its caption
    (right or wrong, true and predicted class, confidence), so the rows stay a grid on
    github.com. Empty for no tiles."""
    if not tiles:
        return Markup("")
    cells = []
    for t in tiles:
        # the maps; the plain image where there is none
        views = t["views"] if every_view else (t["views"][1:] or t["views"])
        pics = " ".join(f"[![{md_escape(v['alt'])}]({v['src']})]({v['full']})" for v in views)
        mark = "" if t.get("true") is None else ("✓ " if t["correct"] else "✗ ")
        maps = ", ".join(md_escape(v["label"]) for v in views)
        cells.append(f"{pics}<br>{mark}{md_escape(t['caption'])}<br><sub>{maps}</sub>")
    cols = min(cols, len(cells))
    rows = [cells[k:k + cols] + [""] * (cols - len(cells[k:k + cols]))
            for k in range(0, len(cells), cols)]
    head = "| " + " | ".join(rows[0]) + " |\n|" + ":-:|" * cols
    # Markup: every cell is escaped already, and the line breaks must stay line breaks.
    return Markup("\n".join([head] + ["| " + " | ".join(r) + " |" for r in rows[1:]]))


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
    """A table with a file-name ``name`` (for exports), column headers and formatted rows.
    ``marks``: (row, column) of the cells set in bold in every format (the caption says why:
    no cell is bold by its value alone)."""

    name: str
    headers: list[str]
    rows: list[list]
    caption: str = ""
    marks: set[tuple[int, int]] = field(default_factory=set)

    def _cells(self) -> list[list[str]]:
        return [[fmt(v) for v in row] for row in self.rows]

    def numeric(self, cells: list[list[str]] | None = None) -> list[bool]:
        """Per column: whether every cell is a number (or missing) and one is not missing."""
        cells = self._cells() if cells is None else cells
        return [any(r[j] != "–" for r in cells) and
                all(r[j] == "–" or NUMBER.match(r[j]) for r in cells)
                for j in range(len(self.headers))]

    def html(self) -> Markup:
        """The table as escaped HTML, numeric columns right-aligned, marked cells in
        ``<strong>`` (a missing value, "–", never: as in Markdown and LaTeX)."""
        raw = self._cells()
        align = ["right" if n else "left" for n in self.numeric(raw)]
        cells = [[_strong(escape(c)) if (i, j) in self.marks and c != "–" else escape(c)
                  for j, c in enumerate(row)] for i, row in enumerate(raw)]
        return Markup(tabulate(cells, headers=[escape(h) for h in self.headers],
                               tablefmt="unsafehtml", disable_numparse=True,
                               colalign=align or None))

    def markdown(self) -> Markup:
        """The table as a GitHub-flavoured Markdown pipe table, cells escaped, marked cells
        in bold; Markup, so the page's ``finalize`` (:func:`reportgen.text.printable`) keeps
        its line breaks."""
        raw = self._cells()
        align = ["right" if n else "left" for n in self.numeric(raw)]
        cells = [[f"**{md_escape(c)}**" if (i, j) in self.marks and c != "–" else md_escape(c)
                  for j, c in enumerate(row)] for i, row in enumerate(raw)]
        return Markup(tabulate(cells, headers=[md_escape(h) for h in self.headers],
                               tablefmt="pipe", disable_numparse=True, colalign=align or None))

    def latex(self) -> str:
        """The table as a LaTeX float ready for ``\\input`` (needs ``\\usepackage{booktabs}``):
        caption and ``\\label{tab:<name>}``, numeric columns right-aligned with true minus
        signs, the marked cells in bold, and ``table*`` (both columns of a two-column paper)
        past six columns."""
        cells = self._cells()
        numeric = self.numeric(cells)

        def cell(i: int, j: int, v: str) -> str:
            if v == "–":
                return "--"
            text = tex_number(v) if numeric[j] else tex_escape(v)
            return f"\\textbf{{{text}}}" if (i, j) in self.marks else text

        head = " & ".join(tex_header(h) for h in self.headers) + r" \\"
        body = "\n".join(" & ".join(cell(i, j, v) for j, v in enumerate(row)) + r" \\"
                         for i, row in enumerate(cells))
        spec = "".join("r" if n else "l" for n in numeric)
        env = "table*" if len(self.headers) > 6 else "table"
        caption = tex_escape(self.caption)
        return (f"% {caption}\n\\begin{{{env}}}[t]\n\\centering\n\\caption{{{caption}}}\n"
                f"\\label{{tab:{self.name}}}\n\\begin{{tabular}}{{{spec}}}\n\\toprule\n{head}\n"
                f"\\midrule\n{body}\n\\bottomrule\n\\end{{tabular}}\n\\end{{{env}}}\n")


#: A formatted number cell: 12, -0.616, 99.5 %, or a number with its interval,
#: 0.246 [0.231, 0.262] (:func:`with_interval`).
NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?( %)?( \[[+-]?\d+(\.\d+)?, [+-]?\d+(\.\d+)?\])?$")


def with_interval(value, ci, digits: int = 3, percent: bool = False) -> str | None:
    """``0.246 [0.231, 0.262]``: a value and its interval in one cell (``percent``: both in
    percent, ``98.0 % [95.1, 99.2]``); the value alone when the interval is unknown; None when
    the value is."""
    if value is None or value != value:
        return None
    scale, unit = (100.0, " %") if percent else (1.0, "")
    text = f"{scale * value:.{digits}f}{unit}"
    if not ci or any(v is None or v != v for v in ci):
        return text
    return f"{text} [{scale * ci[0]:.{digits}f}, {scale * ci[1]:.{digits}f}]"


def _tex_plain_number(text: str) -> str:
    sign = "$-$" if text.startswith("-") else ""
    return sign + text.lstrip("+-").replace(" %", "\\,\\%")


def tex_number(text: str) -> str:
    """A number cell in LaTeX: true minus signs ($-$), a thin space before %, an interval
    set small after its value."""
    if " [" not in text:
        return _tex_plain_number(text)
    value, ci = text.split(" [", 1)
    lo, hi = ci.rstrip("]").split(", ")
    return (f"{_tex_plain_number(value)} {{\\scriptsize [{_tex_plain_number(lo)}, "
            f"{_tex_plain_number(hi)}]}}")


def tex_header(text: str) -> str:
    """A header in LaTeX, its ↓ and ↑ (lower or higher is better) as math arrows."""
    return tex_escape(text).replace("↓", r"$\downarrow$").replace("↑", r"$\uparrow$")


def _strong(text: Markup) -> Markup:
    return Markup("<strong>") + text + Markup("</strong>")
