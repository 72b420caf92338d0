"""The interface of a model source: where the model a build explains comes from.

A source is made from the build's config (:func:`reportgen.model.sources.source_for` picks it
by ``model.source``, and for ``"load"`` by what ``model.path`` is). The stages and the cache
ask it, in this order: what makes the cache key (:meth:`ModelSource.key_files`,
:meth:`ModelSource.key_parts`), the input before TensorFlow starts where it is known
(:meth:`ModelSource.early_input`), the model (:meth:`ModelSource.obtain`; a
:class:`TrainingSource` then builds and trains one), and the plain-data description the report
reads (:meth:`ModelSource.describe`). This module and every source module import no TensorFlow
at module level: the cached rebuild asks the source for its key without starting TensorFlow.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar

import numpy as np

from reportgen.errors import ModelError
from reportgen.text import printable

if TYPE_CHECKING:  # annotations only: no import at run time
    from reportgen.config import Config

#: The stand-in for the model's name in :attr:`SourceInfo.title`.
MODEL_NAME = "{model}"


@dataclass(frozen=True)
class SourceInfo:
    """What the report says about where the model came from (plain data, no TensorFlow).

    Attributes:
        kind: the source's name (``"train"``, ``"load"``, ``"savedmodel"``, ...).
        trained_here: True when this build trained the model (the site may then hold it as
            ``model.keras``, and the image size may have been chosen from the data).
        title: how the report's title names the model; :data:`MODEL_NAME` stands for the
            model's own name (``"{model} trained here"``, ``"faces.keras"``).
    """

    kind: str
    trained_here: bool
    title: str

    def title_for(self, model_name: str) -> str:
        """:attr:`title` with the model's name in place of :data:`MODEL_NAME`."""
        return self.title.replace(MODEL_NAME, model_name)


@dataclass
class EarlyInput:
    """The input (H, W, C) of the model, known before TensorFlow starts, and, when it was
    chosen from the data rather than set, the sentence that says so (None otherwise)."""

    shape: tuple[int, int, int]
    note: str | None = None


@dataclass
class Given:
    """The model a source gives (None for a :class:`TrainingSource`, which trains it later),
    the input shape it decides (H, W, C), the preprocessing it needs (None: from
    ``model.preprocess``), and what the report should say about it."""

    model: Any
    shape: tuple[int, int, int]
    preprocess: str | None = None
    notes: list[str] = field(default_factory=list)


class ModelSource(ABC):
    """Where the model comes from. Subclasses set :attr:`name` (the ``model.source`` value
    they serve) and implement :meth:`obtain` and :meth:`describe`."""

    #: The ``model.source`` value this source serves.
    name: ClassVar[str]
    #: True when a model is trained by the build (a :class:`TrainingSource`).
    trains: ClassVar[bool] = False
    #: True when a class of ``data.classes`` may have no images (the model is scored on the
    #: classes that have them); a model trained here needs every class.
    absent_classes_ok: ClassVar[bool] = False

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg

    @classmethod
    def accepts(cls, cfg: Config) -> bool:
        """True when this source serves ``cfg`` (by default: ``model.source`` is its name)."""
        return cfg.model.source == cls.name

    def key_files(self) -> list[Path]:
        """Files (or folders) whose bytes are part of the cache key, before a weights file."""
        return []

    def key_parts(self) -> list | None:
        """Plain data that is part of the cache key, after the files (None: nothing)."""
        return None

    def early_input(self) -> EarlyInput | None:
        """The input the model takes, decided before TensorFlow starts; None when only the
        model knows it (the cache then remembers it from an earlier build)."""
        return None

    @abstractmethod
    def obtain(self, early: tuple[int, int, int] | None) -> Given:
        """The model (imports TensorFlow), given the shape :meth:`early_input` decided.

        Raises:
            ReportgenError: naming the config key or file, for a model reportgen cannot use.
        """

    def calibrates(self) -> bool:
        """True when the model's BatchNorm statistics must be set from the data (random
        weights with initial statistics give near-constant outputs)."""
        return False

    @abstractmethod
    def describe(self) -> SourceInfo:
        """What the report says about this source (no TensorFlow)."""


class TrainingSource(ModelSource):
    """A source whose model the build trains: :meth:`build` makes it untrained at the input
    shape, :meth:`fit` trains a copy of it."""

    trains = True

    @abstractmethod
    def build(self, shape: tuple[int, int, int], n_classes: int) -> Any:
        """An untrained ``keras.Model`` taking raw pixels (H, W, C) float32 in [0, 255]."""

    @abstractmethod
    def fit(self, base: Any, train: tuple[np.ndarray, np.ndarray],
            val: tuple[np.ndarray, np.ndarray] | None,
            on_epoch: Callable[[int, dict], None]) -> tuple[Any, dict]:
        """Train a copy of ``base`` on preprocessed float32 (N, H, W, C) images and int labels
        (N,); return (the trained copy, {metric: per-epoch floats})."""


class LoadedSource(ModelSource):
    """A model the user gives at ``model.path``: subclasses :meth:`load` it; the checks that
    it is an image classifier reportgen can explain, and the notes, are shared."""

    name = "load"
    absent_classes_ok = True

    @property
    def path(self) -> Path:
        """``model.path``, resolved against the config file's folder."""
        return self.cfg.resolve(self.cfg.model.path)

    @abstractmethod
    def load(self) -> Any:
        """The ``keras.Model`` at :attr:`path` (ModelError naming ``model.path`` otherwise)."""

    def key_files(self) -> list[Path]:
        return [self.path] if self.path.exists() else []

    def obtain(self, early: tuple[int, int, int] | None) -> Given:
        from reportgen.model.summary import with_runnable_names

        loaded, renamed = with_runnable_names(self.load())
        notes = []
        if renamed:
            notes.append("Layers whose names TensorFlow cannot run were renamed: "
                         + ", ".join(f"{printable(a)!r} to {b!r}" for a, b in renamed.items())
                         + ".")
        return Given(loaded, self._checked_input(loaded, notes), notes=notes)

    def _checked_input(self, loaded: Any, notes: list[str]) -> tuple[int, int, int]:
        """The input (H, W, C) the images are read at, after checking the model's input and
        output; notes what differs from the config."""
        from reportgen.model.summary import check_classifier_output, input_spec, output_count

        cfg, size = self.cfg, self.cfg.data.image_size
        h, w, channels = input_spec(loaded)
        output_count(loaded, cfg.model.output_index)  # names model.output_index if out of range
        check_classifier_output(loaded, cfg.model.output_index)
        if h is None or w is None:
            notes.append(f"The model takes images of any size; they were read at "
                         f"data.image_size = {size} px.")
        h, w = (size, size) if h is None or w is None else (h, w)
        if len(loaded.outputs) > 1:
            notes.append(f"The model has {len(loaded.outputs)} outputs; output "
                         f"{cfg.model.output_index} (model.output_index) is explained.")
        if channels not in (1, 3):
            raise ModelError(f"model.path: the model expects {channels} input channels; "
                             "reportgen reads images as 1 (grayscale) or 3 (RGB) channels")
        if size != h:
            notes.append(f"Images were resized to the model's input, {h}x{w} px "
                         f"(data.image_size = {size} applies to training only).")
        return h, w, channels

    def describe(self) -> SourceInfo:
        return SourceInfo(self.name, False, Path(self.cfg.model.path).name or MODEL_NAME)
