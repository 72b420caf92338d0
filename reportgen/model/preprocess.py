"""Preprocessing as a layer: raw pixels (float in [0, 255], RGB) scaled the way a
backbone expects, so a saved model carries its own scaling.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import layers


@keras.saving.register_keras_serializable(package="reportgen")
class Preprocess(layers.Layer):
    """Scale raw pixels (float in [0, 255], RGB) the way a backbone expects.

    Modes, as ``keras.applications.imagenet_utils.preprocess_input``: ``"none"`` (identity),
    ``"scale01"`` (x / 255), ``"tf"`` (x / 127.5 - 1), ``"torch"`` (x / 255 then ImageNet mean and
    std per channel), ``"caffe"`` (RGB to BGR, minus the ImageNet BGR means).
    """

    def __init__(self, mode: str = "none", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if mode not in PREPROCESS_MODES:
            raise ValueError(f"unknown preprocessing mode {mode!r}")
        self.mode = mode

    def call(self, x: Any) -> Any:
        return apply_preprocess(x, self.mode)

    def get_config(self) -> dict:
        return {**super().get_config(), "mode": self.mode}


PREPROCESS_MODES = ("none", "scale01", "tf", "torch", "caffe")


def apply_preprocess(x: Any, mode: str) -> Any:
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
