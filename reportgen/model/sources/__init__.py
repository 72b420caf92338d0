"""The model sources and their registry: ``model.source`` (and, for ``"load"``, whether
``model.path`` is a SavedModel folder or a file) picks the source object the stages and the
cache ask (:class:`~reportgen.model.sources.base.ModelSource`).

A new model source is one module with one :class:`ModelSource` subclass, and one line here
(or one :func:`register` call). Importing this package imports no TensorFlow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reportgen.errors import ConfigError
from reportgen.model.sources.applications import ApplicationsSource
from reportgen.model.sources.base import (
    EarlyInput,
    Given,
    LoadedSource,
    ModelSource,
    SourceInfo,
    TrainingSource,
)
from reportgen.model.sources.keras_file import KerasFileSource
from reportgen.model.sources.savedmodel import SavedModelSource
from reportgen.model.sources.train import TrainSource

if TYPE_CHECKING:  # annotations only: no import at run time
    from reportgen.config import Config

#: The sources, asked in order: the first that accepts the config serves it (a SavedModel
#: folder before the Keras file, which takes every other ``model.path``).
SOURCES: list[type[ModelSource]] = [
    TrainSource,
    SavedModelSource,
    KerasFileSource,
    ApplicationsSource,
]


def register(source: type[ModelSource]) -> type[ModelSource]:
    """Add ``source`` before the others (it is asked first); usable as a class decorator."""
    SOURCES.insert(0, source)
    return source


def source_for(cfg: Config) -> ModelSource:
    """The source that serves ``cfg`` (ConfigError naming ``model.source`` when none does)."""
    for source in SOURCES:
        if source.accepts(cfg):
            return source(cfg)
    raise ConfigError(f"model.source: no model source serves {cfg.model.source!r}")


__all__ = ["SOURCES", "ApplicationsSource", "EarlyInput", "Given", "KerasFileSource",
           "LoadedSource", "ModelSource", "SavedModelSource", "SourceInfo", "TrainSource",
           "TrainingSource", "register", "source_for"]
