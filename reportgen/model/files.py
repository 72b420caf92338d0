"""Model files: load a ``.keras``/``.h5`` file or a SavedModel folder, save a ``.keras``."""

from __future__ import annotations

from pathlib import Path

import keras

from reportgen.model.sources.keras_file import load_keras_file
from reportgen.model.sources.savedmodel import is_saved_model, load_saved_model


def load_model(path: str | Path, *, safe_mode: bool = True) -> keras.Model:
    """Load a ``.keras`` or ``.h5`` model, with Keras safe mode on by default, or a TensorFlow
    SavedModel folder (:func:`~reportgen.model.sources.savedmodel.load_saved_model`).

    Raises:
        ModelError: missing file, not a Keras file or SavedModel, refused under safe mode,
            unknown custom layer.
    """
    path = Path(path)
    if is_saved_model(path):
        return load_saved_model(path)
    return load_keras_file(path, safe_mode=safe_mode)


def save_model(model: keras.Model, path: str | Path) -> Path:
    """Save ``model`` as a ``.keras`` archive at ``path``; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return path


