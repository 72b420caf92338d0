"""Per-image metadata (``data.metadata``): a CSV file with a ``file`` column and any others.

Comma-separated (a semicolon or a tab where the header has no comma). ``file`` names an
image as ``predictions.csv`` does: its path relative to the data folder
(``data.path``), POSIX separators; a leading ``./`` and Windows separators are accepted. Every
other column is an attribute of the image (camera, site, age, ...), read as text. A file that
is wrong is refused with one line naming it: no ``file`` column, a file listed twice, a file
that is not an image of the data set, a row whose cell count differs from the header's.
Rows of files that were skipped as unreadable are kept out and counted.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from reportgen.errors import DataError
from reportgen.text import printable

#: Files named in an error message at most.
NAMED = 3


@dataclass
class Metadata:
    """The metadata of a data set's images.

    Attributes:
        name: the file as the report shows it (no absolute local path).
        columns: the attribute columns, in the file's order (``file`` left out).
        rows: {image path relative to the data folder: its values, one per column}.
        skipped_rows: rows naming files that were skipped as unreadable.
    """

    name: str
    columns: list[str]
    rows: dict[str, list[str]] = field(default_factory=dict)
    skipped_rows: int = 0

    def values(self, paths: list[str]) -> tuple[dict[str, list[str]], int]:
        """({column: the value of each of ``paths``, "" where it has no row}, how many of
        ``paths`` have no row)."""
        empty = [""] * len(self.columns)
        cells = [self.rows.get(p, empty) for p in paths]
        missing = sum(p not in self.rows for p in paths)
        return {c: [row[i] for row in cells] for i, c in enumerate(self.columns)}, missing


def _normal(name: str) -> str:
    name = name.strip().replace("\\", "/")
    while name.startswith("./"):
        name = name[2:]
    return name


def _listed(names: list[str]) -> str:
    shown = ", ".join(repr(printable(n)) for n in names[:NAMED])
    return shown + (f" and {len(names) - NAMED} more" if len(names) > NAMED else "")


def _delimiter(text: str) -> str:
    """The header line's delimiter: a comma, else a semicolon or a tab when the header holds
    one (as spreadsheets in some locales write CSV) and no comma."""
    header = text.split("\n", 1)[0]
    if "," in header:
        return ","
    return next((d for d in (";", "\t") if d in header), ",")


def _read_rows(path: Path) -> list[tuple[int, list[str]]]:
    """(line number, cells) of every row with a non-blank cell."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"data.metadata: file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"data.metadata: cannot read {path}: {e}") from None
    reader = csv.reader(io.StringIO(text), delimiter=_delimiter(text))
    try:
        rows = [(reader.line_num, r) for r in reader if any(c.strip() for c in r)]
    except csv.Error as e:
        raise DataError(f"data.metadata: {path} is not a readable CSV file: {e}") from None
    if not rows:
        raise DataError(f"data.metadata: {path} is empty; expected a header with a 'file' "
                        "column")
    return rows


def _header(path: Path, header: list[str]) -> list[str]:
    header = [h.strip() for h in header]
    if "file" not in header:
        raise DataError(f"data.metadata: {path} has no 'file' column (columns: "
                        f"{_listed(header)}); the first row must name the columns, one of "
                        "them 'file'")
    twice = sorted({h for h in header if header.count(h) > 1 or not h})
    if twice:
        raise DataError(f"data.metadata: {path}: column names must be distinct and "
                        f"non-empty: {_listed(twice)}")
    return header


def read_table(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the (line, cells) rows of the metadata CSV ``path``, checked without the
    data set: readable, a ``file`` column, distinct column names, each row as long as the
    header, no file listed twice. Raises a one-line :class:`DataError` naming ``path``."""
    rows = _read_rows(path)
    header = _header(path, rows[0][1])
    at = header.index("file")
    seen: dict[str, int] = {}
    for line, row in rows[1:]:
        if len(row) != len(header):
            raise DataError(f"data.metadata: {path}, line {line}: {len(row)} cells, the "
                            f"header has {len(header)}")
        file = _normal(row[at])
        if file in seen:
            raise DataError(f"data.metadata: {path}: {printable(file)!r} is listed twice "
                            f"(lines {seen[file]} and {line})")
        seen[file] = line
    return header, rows[1:]


def read_metadata(path: Path, name: str, known: list[str], skipped: list[str]) -> Metadata:
    """Read the metadata CSV ``path`` (:func:`read_table`) and match its rows to the images.

    Args:
        path: the CSV file; name: how the report names it.
        known: paths (relative to the data folder) of every image read, all splits; a row
            may name one as written or as predictions.csv prints it.
        skipped: paths of the files skipped as unreadable (their rows are counted, not kept).

    Raises:
        DataError: exit code 2, one line naming ``path``: what :func:`read_table` refuses,
            or files that are not images of the data set (the first few named).
    """
    header, rows = read_table(path)
    names = {**{printable(p): p for p in known}, **{p: p for p in known}}
    left_out = {*skipped, *map(printable, skipped)}
    at = header.index("file")
    meta = Metadata(name, [h for h in header if h != "file"])
    unknown: list[str] = []
    for _, row in rows:
        file = row[at] if row[at] in names else _normal(row[at])
        if file in left_out:
            meta.skipped_rows += 1
        elif file not in names:
            unknown.append(file)
        else:
            meta.rows[names[file]] = [c.strip() for i, c in enumerate(row) if i != at]
    if unknown:
        example = printable(min(known, default=""))
        raise DataError(f"data.metadata: {path}: {len(unknown)} file(s) are not images of the "
                        f"data set: {_listed(unknown)} (expected paths relative to the data "
                        f"folder, as in predictions.csv, such as {example!r})")
    return meta
