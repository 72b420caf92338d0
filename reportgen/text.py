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


def plural(n: int, one: str, many: str | None = None) -> str:
    """``n`` and the noun agreeing with it: ``plural(1, "photo")`` is "1 photo",
    ``plural(30, "photo")`` "30 photos", ``plural(2, "class", "classes")`` "2 classes";
    thousands separated by commas."""
    return f"{n:,} {one if n == 1 else many or one + 's'}"


def quoted(names, limit: int = 8) -> str:
    """``names`` (printable) as "'a'", "'a' and 'b'", "'a', 'b' and 'c'"; past ``limit``
    names, the first ``limit`` and "and N more"."""
    names = list(names)
    shown = [repr(printable(n)) for n in names[:limit]]
    if len(names) > limit:
        return f"{', '.join(shown)} and {len(names) - limit} more"
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}"


def duration(seconds: float) -> str:
    """A time for a reader: "0.42 s", "0.001 s", "12.3 s", "45 s", "3 min 19 s", "2 h 05 min"."""
    s = float(seconds)
    if s < 1:
        return f"{s:.2g} s"  # two significant digits: "0.42 s", "0.001 s"
    if s < 20:
        return f"{s:.1f} s"
    if round(s) < 60:
        return f"{round(s)} s"
    m = int(round(s)) // 60
    if m < 60:
        return f"{m} min {int(round(s)) % 60} s"
    return f"{m // 60} h {m % 60:02d} min"
