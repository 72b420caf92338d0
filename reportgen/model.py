"""Model: build, train, load, save and describe Keras classifiers.

Models built here take raw pixels (float32 in [0, 255]) and carry their own preprocessing as a
layer, so training, evaluation and every explanation see identically scaled inputs. Nothing here
mutates a model it was given.
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import keras
import numpy as np
from keras import layers

from reportgen.errors import ModelError

#: keras.applications backbones: config name -> (constructor name, preprocessing mode).
BACKBONES: dict[str, tuple[str, str]] = {
    "mobilenetv2": ("MobileNetV2", "tf"),
    "mobilenet": ("MobileNet", "tf"),
    "mobilenetv3small": ("MobileNetV3Small", "none"),
    "mobilenetv3large": ("MobileNetV3Large", "none"),
    "vgg16": ("VGG16", "caffe"),
    "vgg19": ("VGG19", "caffe"),
    "resnet50": ("ResNet50", "caffe"),
    "resnet50v2": ("ResNet50V2", "tf"),
    "inceptionv3": ("InceptionV3", "tf"),
    "xception": ("Xception", "tf"),
    "densenet121": ("DenseNet121", "torch"),
    "efficientnetb0": ("EfficientNetB0", "none"),
    "convnexttiny": ("ConvNeXtTiny", "none"),
}


@keras.saving.register_keras_serializable(package="reportgen")
class Preprocess(layers.Layer):
    """Scale raw pixels (float in [0, 255], RGB) the way a backbone expects.

    Modes, as ``keras.applications.imagenet_utils.preprocess_input``: ``"none"`` (identity),
    ``"scale01"`` (x / 255), ``"tf"`` (x / 127.5 - 1), ``"torch"`` (x / 255 then ImageNet mean and
    std per channel), ``"caffe"`` (RGB to BGR, minus the ImageNet BGR means).
    """

    def __init__(self, mode: str = "none", **kwargs):
        super().__init__(**kwargs)
        if mode not in PREPROCESS_MODES:
            raise ValueError(f"unknown preprocessing mode {mode!r}")
        self.mode = mode

    def call(self, x):
        return apply_preprocess(x, self.mode)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


PREPROCESS_MODES = ("none", "scale01", "tf", "torch", "caffe")


def apply_preprocess(x, mode: str):
    """Apply preprocessing ``mode`` to raw pixels ``x`` (numpy or tensor, last axis channels)."""
    ops = keras.ops
    if mode == "none":
        return x
    if mode == "scale01":
        return x / 255.0
    if mode == "tf":
        return x / 127.5 - 1.0
    if mode == "torch":
        mean = np.array([0.485, 0.456, 0.406], np.float32)
        std = np.array([0.229, 0.224, 0.225], np.float32)
        return (x / 255.0 - mean) / std
    if mode == "caffe":
        mean = np.array([103.939, 116.779, 123.68], np.float32)
        return ops.flip(x, axis=-1) - mean
    raise ValueError(mode)


#: The small CNN's first conv layer has stride 2 for inputs of at least this side in pixels
#: (its last conv layer at 1/8 of the input, at least 4x4); smaller inputs keep stride 1 (a
#: 16-px image would be 2x2 at the last layer, too coarse to learn a texture from).
STRIDE_FROM = 32


def small_cnn(input_shape: tuple[int, int, int], n_classes: int) -> keras.Model:
    """Return the small CNN: six 3x3 conv layers (conv, batch norm, ReLU), the first with stride
    2 (stride 1 for inputs under :data:`STRIDE_FROM` px), max pooling after the 2nd and 4th
    (16-32-32-64-64-96 channels), global average pooling, dropout and a softmax head. About
    18 M multiply-adds per 64x64 image; the last conv layer is at 1/8 of the input resolution
    (1/4 under :data:`STRIDE_FROM` px).

    Input: raw pixels (H, W, C) float32 in [0, 255] (a Rescaling layer divides by 255).
    """
    inp = keras.Input(input_shape, name="image")
    x = layers.Rescaling(1 / 255.0, name="rescale")(inp)
    for n, width in enumerate((16, 32, 32, 64, 64, 96), start=1):
        stride = 2 if n == 1 and min(input_shape[:2]) >= STRIDE_FROM else 1
        x = layers.Conv2D(width, 3, strides=stride, padding="same", use_bias=False,
                          name=f"conv{n}")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"conv{n}_bn")(x)
        x = layers.ReLU(name=f"conv{n}_relu")(x)
        if n in (2, 4):
            x = layers.MaxPooling2D(2, name=f"pool{n // 2}")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(0.2, name="dropout")(x)
    out = layers.Dense(n_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inp, out, name="small_cnn")


def transfer_model(architecture: str, input_shape: tuple[int, int, int], n_classes: int, *,
                   weights: str = "none", freeze_base: bool = True) -> keras.Model:
    """Return a keras.applications backbone (nested, as layer ``base``) with a new head.

    Args:
        weights: "imagenet" (Keras downloads them), "none" (random init) or a weights file for the
            backbone.
    """
    key = architecture.lower().replace("_", "").replace("-", "")
    if key not in BACKBONES:
        raise ModelError(f"model.architecture: unknown {architecture!r}; valid: small_cnn, "
                         + ", ".join(BACKBONES))
    ctor_name, mode = BACKBONES[key]
    ctor = getattr(keras.applications, ctor_name)
    w = None if weights in ("none", "", None) else weights
    if w not in (None, "imagenet") and not Path(w).is_file():
        raise ModelError(f"model.weights: file not found: {w}")
    kwargs = {}
    if ctor_name.startswith(("EfficientNet", "ConvNeXt", "MobileNetV3")):
        kwargs["include_preprocessing"] = True
    try:
        base = ctor(include_top=False, weights=w, input_shape=input_shape, **kwargs)
    except ValueError as e:
        raise ModelError(f"model.architecture: {architecture} cannot be built for input "
                         f"{input_shape}: {str(e).splitlines()[0]}") from None
    base.trainable = not freeze_base
    inp = keras.Input(input_shape, name="image")
    x = Preprocess(mode, name="preprocess")(inp)
    # A frozen backbone keeps its BatchNorm in inference mode (its own statistics); one that
    # trains (random init, or fine-tuning) must update them, or validation sees the initial
    # statistics and predicts one class.
    x = base(x, training=False) if freeze_base else base(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(0.2, name="dropout")(x)
    out = layers.Dense(n_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inp, out, name=f"{key}_transfer")


def build_model(architecture: str, input_shape: tuple[int, int, int], n_classes: int, *,
                weights: str = "none", freeze_base: bool = True, seed: int = 0) -> keras.Model:
    """Build an untrained classifier (softmax output) for raw-pixel inputs."""
    keras.utils.set_random_seed(seed)
    if architecture == "small_cnn":
        return small_cnn(input_shape, n_classes)
    return transfer_model(architecture, input_shape, n_classes, weights=weights,
                          freeze_base=freeze_base)


def application_constructors() -> dict[str, str]:
    """{config name: constructor name} of every keras.applications classifier
    (``"mobilenetv2": "MobileNetV2"``); config names are lower case without ``_`` or ``-``."""
    return {n.lower(): n for n in dir(keras.applications)
            if n[:1].isupper() and callable(getattr(keras.applications, n))}


def preprocess_mode_of(ctor) -> str:
    """The mode of :data:`PREPROCESS_MODES` that equals the ``preprocess_input`` of the
    keras.applications module of constructor ``ctor``, found by running both on a probe
    (ModelError when none matches)."""
    module = getattr(keras.applications, ctor.__module__.rsplit(".", 1)[-1], None)
    fn = getattr(module, "preprocess_input", None)
    probe = np.random.default_rng(0).uniform(0, 255, (1, 3, 3, 3)).astype(np.float32)
    if fn is not None:
        want = np.asarray(fn(probe.copy()), np.float32)
        for mode in PREPROCESS_MODES:
            got = np.asarray(apply_preprocess(probe.copy(), mode), np.float32)
            if got.shape == want.shape and np.allclose(got, want, atol=1e-4):
                return mode
    raise ModelError(f"model.architecture: the preprocessing of {ctor.__name__} is none of "
                     f"{', '.join(PREPROCESS_MODES)}; load it as a .keras model with "
                     "model.preprocess instead")


def application_model(architecture: str, *, weights: str = "none", input_size: int = 0,
                      n_classes: int = 1000, seed: int = 0) -> tuple[keras.Model, str]:
    """A keras.applications classifier as it is, with its ImageNet head (softmax), and the
    preprocessing mode its ``preprocess_input`` applies to raw pixels (applied outside the
    model, as for a loaded one).

    Args:
        weights: "imagenet" (Keras downloads them), "none" (random init) or a weights file of
            the whole classifier.
        input_size: the input side in pixels; 0 for the architecture's default.
        n_classes: outputs of the head (1000 for ImageNet weights).
        seed: seeds the random initialization (weights "none").
    """
    ctors = application_constructors()
    name = architecture.lower().replace("_", "").replace("-", "")
    if name not in ctors:
        raise ModelError(f"model.architecture: {architecture!r} is not a keras.applications "
                         f"classifier{_suggest(name, list(ctors))}")
    ctor = getattr(keras.applications, ctors[name])
    w = None if weights in ("none", "", None) else weights
    if w not in (None, "imagenet") and not Path(w).is_file():
        raise ModelError(f"model.weights: file not found: {w}")
    if w == "imagenet" and n_classes != 1000:
        raise ModelError(f"data.classes: ImageNet weights have 1000 outputs, not {n_classes}")
    kwargs = {"input_shape": (input_size, input_size, 3)} if input_size else {}
    keras.utils.set_random_seed(seed)
    try:
        model = ctor(include_top=True, weights=w, classes=n_classes,
                     classifier_activation="softmax", **kwargs)
    except ValueError as e:
        key = "model.input_size" if input_size else "model.architecture"
        raise ModelError(f"{key}: {ctors[name]} cannot be built with weights={weights!r}"
                         + (f" at {input_size} px" if input_size else "")
                         + f": {str(e).splitlines()[0]}") from None
    return model, preprocess_mode_of(ctor)


def _suggest(name: str, valid: list[str]) -> str:
    from reportgen.config import did_you_mean

    match = did_you_mean(name, valid)
    return f"; did you mean {match!r}?" if match else "; valid: " + ", ".join(valid)


class _EpochCallback(keras.callbacks.Callback):
    def __init__(self, on_epoch: Callable[[int, dict], None]):
        super().__init__()
        self._on_epoch = on_epoch

    def on_epoch_end(self, epoch, logs=None):
        self._on_epoch(epoch, dict(logs or {}))


#: Training runs of at most this many steps (epochs x batches) run eagerly: compiling the train
#: step costs about 20 s on a MobileNetV2 at 32 px on 2 cores, more than 16 eager steps of it.
EAGER_STEPS = 16

#: Training images (a seeded random sample) the BatchNorm statistics are estimated from.
CALIBRATION_IMAGES = 256


def train(model: keras.Model, x_train: np.ndarray, y_train: np.ndarray,
          x_val: np.ndarray | None, y_val: np.ndarray | None, *, epochs: int, batch_size: int,
          learning_rate: float, patience: int, seed: int, min_epochs: int = 3,
          on_epoch: Callable[[int, dict], None] | None = None) -> tuple[keras.Model, dict]:
    """Train a copy of ``model`` with Adam and sparse cross-entropy; return (copy, history).

    Early stopping watches the validation loss (the training loss without a val split) and
    restores the best weights of epoch ``min_epochs`` (1-based) or later, never stopping
    before it (:func:`reportgen.evaluate.kept_epoch` says which): the first epochs, barely
    trained, are never the ones kept. A run of at most :data:`EAGER_STEPS` training steps runs
    eagerly (compiling the train step takes longer than such a run). When any BatchNorm layer trains
    (the small CNN's, a backbone's that is not frozen), its statistics are re-estimated on
    :data:`CALIBRATION_IMAGES` training images before each validation and at the end
    (:func:`calibrate_batchnorm`): with few steps an epoch, the moving averages are still near
    their initial values, and in inference the model would be a different network from the one
    trained (it predicts one class). ``history`` maps metric names ("loss", "accuracy",
    "val_loss", "val_accuracy") to per-epoch lists of floats.
    """
    keras.utils.set_random_seed(seed)
    trained = keras.models.clone_model(model)
    trained.set_weights(model.get_weights())
    steps = epochs * -(-len(x_train) // batch_size)
    trained.compile(optimizer=keras.optimizers.Adam(learning_rate),
                    loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                    run_eagerly=steps <= EAGER_STEPS)
    has_val = x_val is not None and len(x_val) > 0
    callbacks = [keras.callbacks.TerminateOnNaN(), keras.callbacks.EarlyStopping(
        monitor="val_loss" if has_val else "loss", patience=patience,
        restore_best_weights=True, start_from_epoch=min_epochs - 1)]
    if on_epoch:
        callbacks.append(_EpochCallback(on_epoch))
    sample = None
    if _trained_batchnorms(trained):
        pick = np.random.default_rng(seed).permutation(len(x_train))[:CALIBRATION_IMAGES]
        sample = np.asarray(x_train[np.sort(pick)], np.float32)
        callbacks.append(_CalibrateBeforeValidation(sample))
    hist = trained.fit(
        x_train.astype(np.float32), y_train, batch_size=batch_size, epochs=epochs,
        validation_data=(x_val.astype(np.float32), y_val) if has_val else None,
        shuffle=True, callbacks=callbacks, verbose=0)
    history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    bad = next((i for i, v in enumerate(history.get("loss", [])) if not np.isfinite(v)), None)
    if bad is not None or not history.get("loss"):
        raise ModelError(f"training.learning_rate: training diverged (loss "
                         f"{history.get('loss', ['nan'])[bad or 0]} in epoch {(bad or 0) + 1}); "
                         f"lower training.learning_rate (now {learning_rate:g})")
    if sample is not None:
        calibrate_batchnorm(trained, sample)
    return trained, history


class _CalibrateBeforeValidation(keras.callbacks.Callback):
    """Re-estimate BatchNorm statistics (:func:`calibrate_batchnorm`) on ``images`` before
    each validation, so validation metrics and early stopping see the model as it will
    predict (and the weights early stopping keeps carry those statistics)."""

    def __init__(self, images: np.ndarray):
        super().__init__()
        self._images = images

    def on_test_begin(self, logs=None):
        calibrate_batchnorm(self.model, self._images)


def _batchnorms(model) -> list:
    out = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            out += _batchnorms(layer)
        elif isinstance(layer, layers.BatchNormalization):
            out.append(layer)
    return out


def _trained_batchnorms(model) -> list:
    """The BatchNorm layers of ``model`` that run in training mode while it trains: trainable
    ones inside trainable (nested) models. A frozen layer or backbone keeps its statistics
    (Keras runs a non-trainable BatchNorm in inference mode)."""
    if not model.trainable:
        return []
    out = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            out += _trained_batchnorms(layer)
        elif isinstance(layer, layers.BatchNormalization) and layer.trainable:
            out.append(layer)
    return out


def calibrate_batchnorm(model: keras.Model, images: np.ndarray, batch_size: int = 32,
                        max_images: int = 256) -> int:
    """Set every BatchNorm's moving mean and variance of ``model`` to the average of its batch
    statistics over up to ``max_images`` of ``images`` (in batches, training-mode calls with no
    weight update); return how many BatchNorm layers there are.

    A backbone trained briefly from random weights keeps moving statistics near their initial
    values (MobileNetV2's BatchNorm momentum is 0.999: a few hundred steps move them a fifth of
    the way), so in inference it predicts one class. Training changes this model, the copy
    :func:`train` made, only.
    """
    bns = _batchnorms(model)
    saved = [bn.momentum for bn in bns]
    x = np.asarray(images[:max_images], np.float32)
    try:
        for k, start in enumerate(range(0, len(x), batch_size)):
            for bn in bns:  # moving = moving * k / (k + 1) + batch / (k + 1): a running mean
                bn.momentum = k / (k + 1)
            model(x[start:start + batch_size], training=True)
    finally:
        for bn, m in zip(bns, saved, strict=True):
            bn.momentum = m
    return len(bns)


def load_model(path: str | Path, *, safe_mode: bool = True) -> keras.Model:
    """Load a ``.keras`` or ``.h5`` model, with Keras safe mode on by default, or a TensorFlow
    SavedModel folder (:func:`load_saved_model`).

    Raises:
        ModelError: missing file, not a Keras file or SavedModel, refused under safe mode,
            unknown custom layer.
    """
    path = Path(path)
    if path.is_dir():
        if (path / "saved_model.pb").exists():
            return load_saved_model(path)
        raise ModelError(f"model.path: {path} is a folder; expected a .keras or .h5 file or "
                         "a SavedModel folder (with saved_model.pb)")
    if not path.exists():
        raise ModelError(f"model.path: file not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in (".keras", ".h5", ".hdf5"):
        raise ModelError(f"model.path: {path} is not a .keras or .h5 file")
    if suffix == ".keras" and not zipfile.is_zipfile(path):
        raise ModelError(f"model.path: {path} is not a Keras model file (not a .keras archive)")
    try:
        return keras.models.load_model(path, compile=False, safe_mode=safe_mode)
    except Exception as e:  # Keras raises many kinds; each is a user-facing problem here
        text = " ".join(str(e).split())
        if "safe_mode" in text or "Lambda" in text and "unsafe" in text.lower():
            raise ModelError(
                f"model.path: {path} contains a Lambda layer with Python code, refused under "
                "safe mode; set model.safe_mode = false (--set model.safe_mode=false) only if "
                "you trust this file") from None
        found = re.search(r"Could not locate (?:class|function) '([^']+)'", text) or \
            re.search(r"Unknown layer: '?([\w.]+)", text)
        if found:
            raise ModelError(
                f"model.path: {path} uses the custom layer '{found.group(1)}', which Keras does "
                "not know; decorate its class with @keras.saving.register_keras_serializable() "
                "in a module imported before loading, or save the model without it") from None
        if suffix == ".h5" and "signature" in text:
            raise ModelError(f"model.path: {path} is not a Keras model file (not HDF5)") from None
        raise ModelError(f"model.path: {path} could not be loaded as a Keras model: "
                         f"{text[:200]}") from None


#: Layer names TensorFlow accepts as name scopes (a model with others cannot run in a graph).
SCOPE_NAME = re.compile(r"^[A-Za-z0-9_.\\/>-]*$")


def _layers_of(model) -> list:
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

    def clone(layer):
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


def load_saved_model(path: Path) -> keras.Model:
    """A TensorFlow SavedModel folder (what ``model.export()`` and TF Serving use) as a Keras
    model for inference: its input, then ``keras.layers.TFSMLayer`` on the ``serve`` endpoint
    (``serving_default`` when there is none). Its layers stay inside the SavedModel; the
    explanations open its serving graph at the last convolution (see
    ``reportgen.explain.savedmodel``).

    Raises:
        ModelError: the SavedModel cannot be read, or does not take one image batch and
            return one (batch, classes) output.
    """
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


def save_model(model: keras.Model, path: str | Path) -> Path:
    """Save ``model`` as a ``.keras`` archive at ``path``; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return path


@dataclass
class LayerRow:
    """One row of the model summary."""

    name: str
    kind: str
    #: Per image, as height×width×channels (``any`` for a variable size).
    output_shape: str
    params: int


def _output_shape(layer) -> str:
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


def forward_function(model: keras.Model, shape: tuple[int, int, int], output_index: int = 0):
    """The compiled forward pass of ``model`` (training=False) on float32 batches of images of
    ``shape`` (H, W, C), returning output ``output_index``: one trace, however many batches
    and arrays it is called on (a ``tf.function`` made per call would trace the model again)."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, *shape], tf.float32)], autograph=False)
    def run(x):
        out = keras.tree.flatten(model(x, training=False))
        return out[output_index]

    return run


def predict_outputs(model: keras.Model, images: np.ndarray, *, batch_size: int = 64,
                    output_index: int = 0, progress: Callable[[int], None] | None = None,
                    preprocess: Callable[[np.ndarray], np.ndarray] | None = None,
                    forward=None) -> np.ndarray:
    """Return the model's output ``output_index`` on ``images`` (float32 (N, K)), in batches
    under one compiled function (training=False). ``preprocess`` is applied batch by batch, so
    only one batch is ever held as float32. ``forward``: the :func:`forward_function` of this
    model, shape and output to reuse (several arrays, one trace); None makes one."""
    import tensorflow as tf

    run = forward or forward_function(model, tuple(images.shape[1:]), output_index)
    outs = []
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size]
        batch = preprocess(batch) if preprocess else batch.astype(np.float32)
        outs.append(run(tf.constant(batch)).numpy())
        if progress:
            progress(len(batch))
    if not outs:
        return np.zeros((0, output_count(model, output_index)), np.float32)
    return np.concatenate(outs).astype(np.float32)
