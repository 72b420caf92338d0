"""Files of the site as jobs: gathered while the page contexts are built, written afterwards.

Building a context never writes a file; it asks :class:`Assets` for a path, and the job that
makes the file's bytes runs in :meth:`Assets.write`. An image job keeps only a recipe (a
function returning its pixels), so a gallery of thousands of tiles does not hold its pixels in
memory before writing.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from reportgen.figures.overlay import save_image
from reportgen.guard import optional_part


@dataclass(frozen=True)
class ImageJob:
    """Save ``make()`` (uint8 (H, W, 3)) as ``rel``: longest side ``side`` (None: as is),
    format ``fmt`` ("JPEG" or "PNG"), JPEG ``quality``."""

    rel: str
    make: Callable[[], np.ndarray]
    side: int | None = None
    fmt: str = "JPEG"
    quality: int = 85


@dataclass(frozen=True)
class FileJob:
    """Write ``rel`` by ``write(path)`` (text, a copy, a saved model)."""

    rel: str
    write: Callable[[Path], object]


class Assets:
    """The files a site needs besides its pages, in the order they were asked for; asking for
    the same path twice keeps the first job."""

    def __init__(self):
        self.jobs: dict[str, ImageJob | FileJob] = {}

    def image(self, rel: str, make: Callable[[], np.ndarray], side: int | None = None,
              fmt: str = "JPEG", quality: int = 85) -> str:
        """Queue an image file; return ``rel``."""
        self.jobs.setdefault(rel, ImageJob(rel, make, side, fmt, quality))
        return rel

    def text(self, rel: str, text: str) -> str:
        """Queue a UTF-8 text file; return ``rel``."""
        self.jobs.setdefault(rel, FileJob(rel, lambda p: p.write_text(text, encoding="utf-8")))
        return rel

    def copy(self, rel: str, src: Path) -> str:
        """Queue a copy of file ``src``; return ``rel``."""
        self.jobs.setdefault(rel, FileJob(rel, lambda p: shutil.copyfile(src, p)))
        return rel

    def file(self, rel: str, write: Callable[[Path], object]) -> str:
        """Queue a file written by ``write(path)``; return ``rel``."""
        self.jobs.setdefault(rel, FileJob(rel, write))
        return rel

    def __contains__(self, rel: str) -> bool:
        return rel in self.jobs

    def write(self, site, progress: Callable[[int], None] | None = None) -> None:
        """Run every job into ``site`` (a :class:`~reportgen.report.site.SiteWriter`); an
        image that cannot be made is left out (:func:`~reportgen.guard.optional_part`)."""
        for job in self.jobs.values():
            path = site.path(job.rel)
            if isinstance(job, ImageJob):
                with optional_part(f"image {job.rel}"):
                    save_image(job.make(), path, side=job.side, fmt=job.fmt,
                               quality=job.quality)
            else:
                job.write(path)
            if progress:
                progress(1)
