"""Scratch folders that name their owner, and the sweep that removes those of dead builds.

Every temporary folder a build makes (the new site beside the output folder, the figure
scratch, cache entries being written) is named ``<prefix><pid>-<random>``. A build killed by
SIGKILL cannot clean up; the next build removes the folders whose owner process is gone
(:func:`sweep`), and never one of a build still running.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path


def mkdtemp(prefix: str, dir: str | Path | None = None) -> Path:
    """A new folder ``<dir>/<prefix><pid>-<random>`` with the mode a plain ``mkdir`` gives
    (0777 less the umask, not mkdtemp's 0700: a site swapped in stays readable by a web
    server)."""
    path = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=dir))
    os.chmod(path, 0o777 & ~_umask())
    return path


def _umask() -> int:
    """The process's umask, read without changing it where Linux says it (setting it, the
    only portable way to read it, races with other threads creating files)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def owner(name: str, prefix: str) -> int | None:
    """The process id in the scratch folder name ``name`` of ``prefix``, or None."""
    m = re.fullmatch(re.escape(prefix) + r"(\d+)-.+", name)
    return int(m.group(1)) if m else None


def alive(pid: int) -> bool:
    """True if process ``pid`` exists (a process of another user counts as alive)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale(folder: str | Path, prefix: str) -> list[Path]:
    """The scratch folders (and files) of ``prefix`` in ``folder`` whose owner process is
    gone."""
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return []
    out = []
    for p in entries:
        pid = owner(p.name, prefix)
        if pid is not None and not p.is_symlink() and not alive(pid):
            out.append(p)
    return sorted(out)


def sweep(folder: str | Path, prefix: str) -> list[Path]:
    """Remove the scratch folders of dead builds (:func:`stale`); return them."""
    gone = stale(folder, prefix)
    for p in gone:
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    return gone


def touch(path: str | Path) -> None:
    """Mark the cache entry ``path`` as just used (its modification time), so that
    ``reportgen cache --max-size`` prunes the least recently used first; never fails."""
    try:
        os.utime(path)
    except OSError:
        pass
