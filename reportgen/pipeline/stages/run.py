"""What every stage of a build shares: the run, its timer, the data read, and starting
TensorFlow quietly (no TensorFlow at import)."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from reportgen import progress as prog
from reportgen.config import Config
from reportgen.model.sources import ModelSource, source_for
from reportgen.pipeline.cache import BuildCache

if TYPE_CHECKING:  # annotations only: no import at run time
    from reportgen.data.folder import Dataset
    from reportgen.data.metadata import Metadata
    from reportgen.report.figjobs import Figures


class Timer:
    """Wall seconds per named stage."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Add the time spent inside the block to stage ``name``."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.times[name] = self.times.get(name, 0.0) + time.perf_counter() - t0


@dataclass
class Run:
    """What every stage of one build shares: its config, the checked method options
    ({method: options}), the cache, the figure queue, the timer, whether to show progress,
    whether a failed part fails the build (``strict``), and the model's source."""

    cfg: Config
    options: dict
    cache: BuildCache
    figures: Figures
    timer: Timer = field(default_factory=Timer)
    show: bool = True
    notes: list[str] = field(default_factory=list)
    #: The input (H, W, C) decided before TensorFlow starts (:func:`.checks.train_input`).
    train_shape: tuple[int, int, int] | None = None
    #: ``--strict``: a failed part ends the build before the site is swapped in.
    strict: bool = False
    #: The parts that failed (:class:`reportgen.guard.Failure`), once the site is written.
    failures: list = field(default_factory=list)
    #: Merging shards: their checked arrays (:class:`~reportgen.pipeline.executors.shards.
    #: Merged`), which replace the predictions and the test set's GradCAM pass.
    merged: Any = None
    #: Where the model comes from (``model.source``), as the stages and the cache ask it.
    source: ModelSource = field(init=False)

    def __post_init__(self) -> None:
        self.source = source_for(self.cfg)

    def reused(self, what: str, why: str, undo: str) -> None:
        """Say on stderr, and note in the report, that ``what`` came from the cache."""
        prog.say(f"Reusing {what} of an earlier build with the same {why} (cache; "
                 f"report.cache = false {undo})")
        self.notes.append(f"{what[0].upper()}{what[1:]} came from an earlier build with the same "
                          f"{why} (cache).")


@dataclass
class Data:
    """The data set read at ``shape`` (H, W, C), its content hash, and its per-image
    metadata (``data.metadata``; None without)."""

    ds: Dataset
    hash: str
    shape: tuple[int, int, int]
    metadata: Metadata | None = None


def start_tensorflow() -> None:
    """Import TensorFlow without its start-up chatter on stderr (CUDA probing on CPU machines)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" not in sys.modules:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), 2)
                import tensorflow  # noqa: F401
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    import tensorflow as tf
    tf.get_logger().setLevel(logging.ERROR)
