"""The report's matplotlib figures, drawn in a worker process while the main process computes.

Drawing a figure is pure CPU work in matplotlib (about a third of a second per file for a small
confusion matrix), independent of TensorFlow. The pipeline hands the figures that need only the
metrics to :class:`Figures` right after predicting; a worker process (started with ``spawn``, so
it never inherits TensorFlow's threads, and importing no TensorFlow) draws them while the
explanations run. Figures drawn before from the same inputs come from the figure cache instead.
Where no worker can be started, figures are drawn in the main process.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import tempfile
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Callable

import numpy as np

from reportgen import __version__, scratch
from reportgen import figures as figs
from reportgen.guard import optional_part

#: CSS pixels per inch of a figure on the pages (its width and height there follow from it).
DPI = 150
#: Pixels of the PNG files per CSS pixel: sharp on high-density screens, and at twice the
#: size when opened on their own.
DENSITY = 2
#: Widest PNG in pixels (a figure of many classes gets less than twice its page size).
MAX_PIXELS = 2400
#: Name prefix of the figure scratch folders in the system's temporary folder.
FIGURE_SCRATCH = "reportgen-figures-"


def _draw(make: Callable, args: tuple, kwargs: dict, stem: str, formats: tuple) -> list[int]:
    """Draw ``make(*args, **kwargs)`` into ``stem.<format>``; return [width, height] in px."""
    fig = make(*args, **kwargs)
    width = fig.get_size_inches()[0]
    figs.save_figure(fig, stem, formats, dpi=min(DPI * DENSITY, MAX_PIXELS / width))
    return [int(round(v * DPI)) for v in fig.get_size_inches()]


def _warm() -> None:
    """Import what drawing needs (the worker imports reportgen.figures to run this)."""
    import importlib
    for name in ("matplotlib.backends.backend_agg", "matplotlib.backends.backend_svg"):
        importlib.import_module(name)


def _init_worker(parent: int) -> None:
    # Ctrl-C reaches the whole process group; the main process stops the worker itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A build killed outright (SIGKILL) cannot stop its worker: the worker stops itself as
    # soon as its parent is gone, so no process outlives its build.
    import threading

    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()


def _exit_with(parent: int) -> None:
    import time

    while os.getppid() == parent:
        time.sleep(0.25)
    os._exit(0)


class Figures:
    """Figures of one build, keyed by their content.

    Args:
        formats: file formats, the first shown in the pages (``report.figure_formats``).
        cache_dir: the figure cache (None: no cache).
        parallel: draw in a worker process (False: in the calling process, as each is added).
        warm: start the worker now and have it import matplotlib, before the first figure.
    """

    def __init__(self, formats, cache_dir: Path | None = None, parallel: bool = True,
                 warm: bool = False):
        self.formats = tuple(formats)
        self.cache_dir = cache_dir
        self.parallel = parallel
        scratch.sweep(tempfile.gettempdir(), FIGURE_SCRATCH)  # left by killed builds
        self._tmp = scratch.mkdtemp(FIGURE_SCRATCH)
        self._pool: ProcessPoolExecutor | None = None
        self._jobs: list[tuple[str, Path, dict, Future | None, tuple]] = []
        pool = self._worker() if warm else None
        if pool is not None:
            try:
                pool.submit(_warm)
            except (BrokenProcessPool, RuntimeError):
                pass

    def __enter__(self) -> "Figures":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop the worker (pending figures are dropped) and remove the scratch files."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        shutil.rmtree(self._tmp, ignore_errors=True)

    def _worker(self) -> ProcessPoolExecutor | None:
        if self._pool is None and self.parallel:
            import multiprocessing
            try:
                self._pool = ProcessPoolExecutor(
                    max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                    initializer=_init_worker, initargs=(os.getpid(),))
            except (OSError, NotImplementedError, ValueError):
                self.parallel = False
        return self._pool

    def add(self, name: str, make: Callable, *args, alt: str, caption: str, **kwargs) -> dict:
        """Queue figure ``name`` (files ``fig/<name>.<format>``); return its page data. Width
        and height are filled in by :meth:`write_into`."""
        key = hashlib.sha256(json.dumps(
            [__version__, make.__name__, args, kwargs, self.formats, DPI, DENSITY,
             figs.VECTOR_TEXT, figs.STYLE],
            sort_keys=True, default=lambda o: np.asarray(o).tolist()).encode()).hexdigest()[:24]
        info = {"png": f"fig/{name}.png", "alt": alt, "caption": caption,
                "exports": [{"href": f"fig/{name}.{fmt}", "label": fmt.upper()}
                            for fmt in self.formats[1:]],
                "width": None, "height": None}
        cached = self.cache_dir / key if self.cache_dir else None
        if cached is not None and (cached / "size.json").is_file():
            scratch.touch(cached)  # used: the last to be pruned (reportgen cache --max-size)
            self._jobs.append((name, cached, info, None, ()))
            return info
        src = self._tmp / key
        src.mkdir(parents=True, exist_ok=True)
        job = (make, args, kwargs, str(src / "fig"), self.formats)
        pool = self._worker()
        future = None
        if pool is not None:
            try:
                future = pool.submit(_draw, *job)
            except (BrokenProcessPool, RuntimeError):
                future = None
        self._jobs.append((name, src, info, future, job))  # no worker: drawn when written
        return info

    def write_into(self, site) -> None:
        """Wait for every queued figure, copy its files into ``site`` (a SiteWriter) and into
        the figure cache, and fill in the sizes of the page data. A figure that fails to
        draw is left out (:func:`~reportgen.guard.optional_part`): its page data gets
        ``failed``, the one-line reason, and the page notes it in its place."""
        for name, src, info, future, job in self._jobs:
            with optional_part(f"figure {name}") as part:
                self._write_one(site, name, src, info, future, job)
            if part.failure is not None:
                info["failed"] = part.failure.error
        self._jobs = []

    def _write_one(self, site, name: str, src: Path, info: dict, future, job) -> None:
        if not (src / "size.json").is_file():
            try:
                size = future.result() if future is not None else _draw(*job)
            except BrokenProcessPool:  # the worker died: draw it here
                size = _draw(*job)
            (src / "size.json").write_text(json.dumps(size))
        for fmt in self.formats:
            shutil.copyfile(src / f"fig.{fmt}", site.path(f"fig/{name}.{fmt}"))
        info["width"], info["height"] = json.loads((src / "size.json").read_text())
        if self.cache_dir is not None and src.parent == self._tmp:
            self._store(src, self.cache_dir)

    def _store(self, src: Path, cache_dir: Path) -> None:
        dest = cache_dir / src.name
        tmp = dest.with_name(f"{dest.name}.{os.getpid()}.tmp")
        try:
            shutil.copytree(src, tmp, dirs_exist_ok=True)
            os.replace(tmp, dest)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
