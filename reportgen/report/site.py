"""Write a site atomically: into a temporary sibling folder, swapped in only when complete.

A failed or interrupted build (an exception, Ctrl-C) leaves the previous site exactly as it was.
An existing output folder is replaced only if it is empty or carries reportgen's marker file; a
non-empty folder reportgen did not write is refused and left untouched. Nothing outside the output
folder and the temporary siblings this module creates is ever deleted.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from reportgen import scratch
from reportgen.errors import OutputError

#: Marker file written at the root of every site reportgen builds.
MARKER = ".reportgen-site"


def site_files(path: Path) -> list[str] | None:
    """The files reportgen wrote into the site at ``path`` (from its marker), or None when
    ``path`` is not a site reportgen built."""
    try:
        files = json.loads((path / MARKER).read_text(encoding="utf-8")).get("files")
    except (OSError, ValueError, AttributeError):
        return None
    return [f for f in files if isinstance(f, str)] if isinstance(files, list) else None


def is_reportgen_site(path: Path) -> bool:
    """True if ``path`` is a folder holding reportgen's marker file."""
    return (path / MARKER).is_file()


def check_output(out: Path) -> None:
    """Raise OutputError unless ``out`` may be replaced: missing, empty, or a reportgen site,
    and not a mount point (a site is swapped in by renaming the folder)."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out}: exists and is not a folder; choose another path")
    if out.is_dir() and os.path.ismount(out):
        raise OutputError(f"--out {out}: is a mount point, which reportgen cannot replace as a "
                          "whole; choose a folder inside it")
    if out.is_dir() and any(out.iterdir()) and not is_reportgen_site(out):
        raise OutputError(f"--out {out}: folder is not empty and was not written by reportgen "
                          f"(no {MARKER}); choose an empty or new folder, its files are left as "
                          "they are")


class SiteWriter:
    """Context manager that collects a site in a temporary folder and swaps it in on commit.

    Usage::

        with SiteWriter(out) as site:
            site.path("index.html").write_text(...)
            site.commit()
    """

    def __init__(self, out: str | Path):
        self.out = output_path(out)
        check_output(self.out)
        self.tmp: Path | None = None
        self.committed = False
        self._new = f".{self.out.name}.reportgen-tmp-"
        self._old = f".{self.out.name}.reportgen-old-"

    def __enter__(self) -> "SiteWriter":
        parent = self.out.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            recover(self.out)
            self.tmp = scratch.mkdtemp(self._new, parent)
        except OSError as e:
            raise OutputError(f"--out {self.out}: cannot write to {parent}: {e.strerror}") from None
        return self

    @property
    def folder(self) -> Path:
        """The temporary folder the site is collected in (only inside ``with``)."""
        if self.tmp is None:
            raise RuntimeError("SiteWriter is used outside its with block")
        return self.tmp

    def path(self, rel: str) -> Path:
        """Return the temporary location of site file ``rel`` (parents created)."""
        p = self.folder / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def commit(self, info: dict | None = None) -> Path:
        """Write the marker (with ``info`` and the list of every file written, which
        ``reportgen publish`` publishes and nothing else) and atomically replace the output
        folder with the new site."""
        tmp = self.folder
        files = sorted(p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.is_file())
        (tmp / MARKER).write_text(json.dumps(
            {"generator": "reportgen", "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
             **(info or {}), "files": files}, indent=1))
        check_output(self.out)  # it may have changed while we built
        old = None
        if self.out.exists():
            old = scratch.mkdtemp(self._old, self.out.parent)
            os.rmdir(old)
            os.replace(self.out, old)
        try:
            os.replace(tmp, self.out)
        except BaseException:
            if old is not None:
                os.replace(old, self.out)
            raise
        self.committed = True
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.out

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self.committed and self.tmp is not None and self.tmp.exists():
            shutil.rmtree(self.tmp, ignore_errors=True)


def output_path(out: str | Path) -> Path:
    """``out`` made absolute with ``..`` and ``.`` folded (``--out x/..`` is the folder
    itself, never a sibling named ``..``)."""
    return Path(os.path.abspath(os.fspath(out)))


def recover(out: Path) -> list[Path]:
    """Clean up after builds into ``out`` that were killed (SIGKILL, power loss): a previous
    site moved aside but never replaced goes back to ``out`` when ``out`` is missing; the other
    scratch folders of dead builds beside ``out`` are removed. Returns what was removed."""
    parent = out.parent
    old = sorted(scratch.stale(parent, f".{out.name}.reportgen-old-"),
                 key=lambda p: p.stat().st_mtime)
    if old and not out.exists() and is_reportgen_site(old[-1]):
        os.replace(old.pop(), out)  # the newest previous site
    for p in old:
        shutil.rmtree(p, ignore_errors=True)
    return old + scratch.sweep(parent, f".{out.name}.reportgen-tmp-")


def check_writable(out: Path) -> None:
    """Raise OutputError now, before any work, when the site could not be written beside
    ``out`` (a read-only or immutable parent, a full disk): a scratch folder is made and
    removed in the nearest existing folder above it."""
    parent = out.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    try:
        probe = scratch.mkdtemp(f".{out.name}.reportgen-tmp-", parent)
        (probe / "probe").write_bytes(b"\0" * 4096)
        shutil.rmtree(probe)
    except OSError as e:
        raise OutputError(f"--out {out}: cannot write to {parent}: {e.strerror or e}") from None
