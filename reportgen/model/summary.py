"""What a model is: its layers, input, outputs, parameters and weights hash, and a copy
with layer names TensorFlow can run.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import keras
import numpy as np

from reportgen.errors import ModelError


#: Layer names TensorFlow accepts as name scopes (a model with others cannot run in a graph).
SCOPE_NAME = re.compile(r"^[A-Za-z0-9_.\\/>-]*$")


def _layers_of(model: keras.Model) -> list:
    out = []
    for layer in getattr(model, "layers", []):
        out.append(layer)
        if isinstance(layer, keras.Model):
            out += _layers_of(layer)
    return out


def with_runnable_names(model: keras.Model) -> tuple[keras.Model, dict[str, str]]:
    """``model``, or a copy (same weights) whose layers with names TensorFlow cannot use as
    name scopes (newlines, spaces, markup, ...) are renamed to letters, digits and ``_``;
    returns it with {old name: new name}. Keras saves such names, but a graph built from them
    fails. The given model is not changed."""
    layers_ = _layers_of(model)
    if all(SCOPE_NAME.match(layer.name) for layer in layers_):
        return model, {}
    taken = {layer.name for layer in layers_}
    renamed: dict[str, str] = {}

    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        if isinstance(layer, keras.Model):
            return keras.models.clone_model(layer, clone_function=clone)
        config = layer.get_config()
        if not SCOPE_NAME.match(layer.name):
            base = re.sub(r"[^A-Za-z0-9_.-]+", "_", layer.name).strip("_") or "layer"
            new, k = base, 2
            while new in taken:
                new, k = f"{base}_{k}", k + 1
            taken.add(new)
            renamed[layer.name] = config["name"] = new
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy, renamed


@dataclass
class LayerRow:
    """One row of the model summary."""

    name: str
    kind: str
    #: Per image, as height×width×channels (``any`` for a variable size).
    output_shape: str
    params: int


def _output_shape(layer: keras.layers.Layer) -> str:
    try:
        out = layer.output
    except (AttributeError, ValueError):
        return "?"
    shapes = [tuple(t.shape)[1:] for t in keras.tree.flatten(out)]  # per image: no batch
    return ", ".join("×".join("any" if d is None else str(d) for d in s) or "scalar"
                     for s in shapes)


def summary_rows(model: keras.Model, prefix: str = "") -> list[LayerRow]:
    """Return the layers of ``model`` (nested models expanded as ``outer/inner``)."""
    rows = []
    for layer in model.layers:
        name = f"{prefix}{layer.name}"
        rows.append(LayerRow(name, type(layer).__name__, _output_shape(layer),
                             int(layer.count_params()) if layer.built else 0))
        if isinstance(layer, keras.Model):
            rows.extend(summary_rows(layer, prefix=f"{name}/"))
    return rows


def input_spec(model: keras.Model, where: str = "model.path") -> tuple[int | None, int | None,
                                                                    int]:
    """Return (height, width, channels) of the model's image input; None where the size is
    variable.

    Raises:
        ModelError: naming ``where``, for what reportgen cannot explain: no defined input,
            several inputs, an input that is not an image batch, or a channels-first input.
    """
    name = getattr(model, "name", "the model")
    if not model.inputs:
        raise ModelError(f"{where}: model {name!r} has no defined input; build or call it once "
                         "before saving")
    if len(model.inputs) > 1:
        raise ModelError(f"{where}: model {name!r} has {len(model.inputs)} inputs; reportgen "
                         "explains models with one image input (batch, height, width, "
                         "channels)")
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 4:
        raise ModelError(f"{where}: model {name!r} takes input of shape {shape}; reportgen "
                         "needs an image input (batch, height, width, channels)")
    if shape[1] in (1, 3) and shape[3] not in (1, 3):
        raise ModelError(f"{where}: model {name!r} looks channels-first (input {shape}); "
                         "reportgen needs channels-last input (batch, height, width, "
                         "channels): rebuild it with data_format='channels_last'")
    return shape[1], shape[2], int(shape[3])


def check_classifier_output(model: keras.Model, output_index: int = 0,
                            where: str = "model.path") -> None:
    """Raise ModelError, naming the model, unless output ``output_index`` is a (batch,
    classes) classifier output."""
    outs = model.outputs
    if output_index < len(outs) and len(outs[output_index].shape) != 2:
        shape = tuple(outs[output_index].shape)
        raise ModelError(f"{where}: model {model.name!r} outputs shape {shape}, not (batch, "
                         "classes); reportgen explains image classifiers (a segmentation or "
                         "feature model needs a classification head)")


def output_count(model: keras.Model, output_index: int = 0) -> int:
    """Return the number of classes the model's output ``output_index`` predicts."""
    outs = model.outputs
    if output_index >= len(outs):
        raise ModelError(f"model.output_index: {output_index} is out of range; the model has "
                         f"{len(outs)} output{'' if len(outs) == 1 else 's'}")
    return int(outs[output_index].shape[-1])


def weights_hash(model: keras.Model) -> str:
    """Return a SHA-256 over the model's weight values (content hash for the report)."""
    h = hashlib.sha256()
    for w in model.get_weights():
        h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()


def count_params(model: keras.Model) -> tuple[int, int]:
    """Return (total, trainable) parameter counts."""
    trainable = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
    return int(model.count_params()), trainable
