"""A TensorFlow SavedModel folder at ``model.path`` (``model.source = "load"``): what
``model.export()`` and TF Serving use. Its layers stay inside the SavedModel; opening its
serving graph for the explanations is ``reportgen.explain.savedmodel``'s work."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from reportgen.errors import ModelError
from reportgen.model.sources.base import LoadedSource

if TYPE_CHECKING:  # annotations only: no import at run time
    from reportgen.config import Config


def is_saved_model(path: Path) -> bool:
    """True when ``path`` is a SavedModel folder (it holds ``saved_model.pb``)."""
    return path.is_dir() and (path / "saved_model.pb").exists()


class SavedModelSource(LoadedSource):
    """A SavedModel folder, loaded for inference (:func:`load_saved_model`)."""

    @classmethod
    def accepts(cls, cfg: Config) -> bool:
        return cfg.model.source == cls.name and is_saved_model(cfg.resolve(cfg.model.path))

    def load(self) -> Any:
        return load_saved_model(self.path)


def load_saved_model(path: Path) -> Any:
    """A TensorFlow SavedModel folder (what ``model.export()`` and TF Serving use) as a Keras
    model for inference: its input, then ``keras.layers.TFSMLayer`` on the ``serve`` endpoint
    (``serving_default`` when there is none). Its layers stay inside the SavedModel; the
    explanations open its serving graph at the last convolution (see
    ``reportgen.explain.savedmodel``).

    Raises:
        ModelError: the SavedModel cannot be read, or does not take one image batch and
            return one (batch, classes) output.
    """
    import keras
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as e:  # a corrupt folder raises many kinds; each is the user's to fix
        raise ModelError(f"model.path: {path} could not be read as a SavedModel: "
                         f"{' '.join(str(e).split())[:160]}") from None
    endpoint = "serve" if "serve" in loaded.signatures else "serving_default"
    if endpoint not in loaded.signatures:
        raise ModelError(f"model.path: {path} has no serve or serving_default signature")
    specs = [t for t in tf.nest.flatten(loaded.signatures[endpoint].structured_input_signature)
             if isinstance(t, tf.TensorSpec)]
    if len(specs) != 1 or len(specs[0].shape) != 4:
        raise ModelError(f"model.path: SavedModel {path} takes {[tuple(t.shape) for t in specs]}"
                         "; reportgen needs one image input (batch, height, width, channels)")
    inp = keras.Input(tuple(specs[0].shape[1:]), name="image")
    out = keras.layers.TFSMLayer(str(path), call_endpoint=endpoint, name="saved_model")(inp)
    if isinstance(out, dict):
        if len(out) != 1:
            raise ModelError(f"model.path: SavedModel {path} has {len(out)} outputs "
                             f"({', '.join(out)}); reportgen needs one (batch, classes) output")
        out = next(iter(out.values()))
    return keras.Model(inp, out, name=path.name)
