"""The classifiers reportgen trains: the small CNN and keras.applications backbones
with a new head, all taking raw pixels (float32 in [0, 255]).
"""

from __future__ import annotations

from pathlib import Path

import keras
from keras import layers

from reportgen.errors import ModelError
from reportgen.model.preprocess import Preprocess


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
