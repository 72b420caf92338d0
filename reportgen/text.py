"""User-controlled strings (file, folder, class, layer names, config strings) made safe for
display: one function per output, used everywhere.

* :func:`printable`: the base of all of them; bytes that are not UTF-8 (file names decoded with
  ``surrogateescape``) shown as ``\\xff``, control characters (newlines, tabs, NUL) as spaces,
  bidirectional controls (the right-to-left override of "gpj.exe" tricks) as ``‹U+202E›``.
* HTML: Jinja2 autoescape, every value passed through :func:`printable` first (the
  environment's ``finalize``).
* Markdown: :func:`reportgen.report.tables.md_escape`; LaTeX:
  :func:`reportgen.report.tables.tex_escape` (both on :func:`printable`).
* matplotlib text: :func:`mathtext` (``$`` would start mathtext, whose syntax errors end a
  figure), shortened to a label's length.
* JSON and CSV: :func:`printable` keeps every character that can be written, so two different
  file names stay different.
"""

from __future__ import annotations

import unicodedata

#: Unicode bidirectional formatting characters (embeddings, overrides, isolates, marks).
BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")


def printable(text) -> str:
    """``text`` as a string that displays as itself: undecodable bytes as ``\\xNN``, control
    characters as spaces, bidirectional controls as ``‹U+XXXX›``."""
    s = str(text)
    if any("\udc80" <= ch <= "\udcff" for ch in s):
        s = s.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    if s.isprintable() and not BIDI.intersection(s):
        return s
    out = []
    for ch in s:
        if ch in BIDI:
            out.append(f"‹U+{ord(ch):04X}›")
        elif unicodedata.category(ch) in ("Cc", "Zl", "Zp") or "\ud800" <= ch <= "\udfff":
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


def shorten(text, limit: int = 40) -> str:
    """:func:`printable` ``text``, cut to ``limit`` characters with an ellipsis."""
    s = printable(text)
    return s if len(s) <= limit else s[:limit - 1] + "…"


def mathtext(text, limit: int = 40) -> str:
    """``text`` for a matplotlib label: shortened, blank shown as ``(blank)``, and ``$``
    escaped so it is never parsed as mathtext."""
    s = shorten(text, limit)
    return (s if s.strip() else "(blank)").replace("$", r"\$")
