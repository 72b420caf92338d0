"""A Keras model file (``.keras`` or ``.h5``) at ``model.path`` (``model.source = "load"``)."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

from reportgen.errors import ModelError
from reportgen.model.sources.base import LoadedSource


class KerasFileSource(LoadedSource):
    """A ``.keras`` or ``.h5`` file, loaded with Keras safe mode as ``model.safe_mode`` says
    (every ``model.source = "load"`` path that is not a SavedModel folder: a folder without
    ``saved_model.pb`` is refused here, naming ``model.path``)."""

    def load(self) -> Any:
        return load_keras_file(self.path, safe_mode=self.cfg.model.safe_mode)


def load_keras_file(path: Path, *, safe_mode: bool = True) -> Any:
    """The ``keras.Model`` in a ``.keras`` or ``.h5`` file, with Keras safe mode on by default.

    Raises:
        ModelError: naming ``model.path``: a folder, a missing file, not a Keras file, refused
            under safe mode, an unknown custom layer.
    """
    if path.is_dir():
        raise ModelError(f"model.path: {path} is a folder; expected a .keras or .h5 file or "
                         "a SavedModel folder (with saved_model.pb)")
    if not path.exists():
        raise ModelError(f"model.path: file not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in (".keras", ".h5", ".hdf5"):
        raise ModelError(f"model.path: {path} is not a .keras or .h5 file")
    if suffix == ".keras" and not zipfile.is_zipfile(path):
        raise ModelError(f"model.path: {path} is not a Keras model file (not a .keras archive)")
    import keras

    import reportgen.model.preprocess  # noqa: F401  (registers the Preprocess layer)

    try:
        return keras.models.load_model(path, compile=False, safe_mode=safe_mode)
    except Exception as e:  # Keras raises many kinds; each is a user-facing problem here
        raise _load_error(path, " ".join(str(e).split())) from None


def _load_error(path: Path, text: str) -> ModelError:
    """The one-line error, naming ``model.path``, for Keras's error ``text`` loading ``path``."""
    if "safe_mode" in text or "Lambda" in text and "unsafe" in text.lower():
        return ModelError(
            f"model.path: {path} contains a Lambda layer with Python code, refused under "
            "safe mode; set model.safe_mode = false (--set model.safe_mode=false) only if "
            "you trust this file")
    found = re.search(r"Could not locate (?:class|function) '([^']+)'", text) or \
        re.search(r"Unknown layer: '?([\w.]+)", text)
    if found:
        return ModelError(
            f"model.path: {path} uses the custom layer '{found.group(1)}', which Keras does "
            "not know; decorate its class with @keras.saving.register_keras_serializable() "
            "in a module imported before loading, or save the model without it")
    if path.suffix.lower() == ".h5" and "signature" in text:
        return ModelError(f"model.path: {path} is not a Keras model file (not HDF5)")
    return ModelError(f"model.path: {path} could not be loaded as a Keras model: {text[:200]}")
