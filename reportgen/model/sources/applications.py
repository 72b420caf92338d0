"""A keras.applications classifier as it is (``model.source = "applications"``): its ImageNet
head, its own input size (or ``model.input_size``) and its own preprocessing."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from reportgen.errors import ModelError
from reportgen.model.sources.base import Given, ModelSource, SourceInfo

if TYPE_CHECKING:  # annotations only: no import at run time
    from reportgen.config import Config


class ApplicationsSource(ModelSource):
    """The keras.applications classifier ``model.architecture`` with ``model.weights``; with
    random weights its BatchNorm statistics are set from the photos (:meth:`calibrates`)."""

    name = "applications"

    def key_parts(self) -> list | None:
        model = self.cfg.model
        return [model.architecture, model.weights, model.input_size]

    def obtain(self, early: tuple[int, int, int] | None) -> Given:
        from reportgen.model.summary import input_spec

        cfg = self.cfg
        model, mode = application_model(
            cfg.model.architecture, weights=cfg.weights(), input_size=cfg.model.input_size,
            n_classes=len(class_names(cfg)), seed=cfg.training.seed)
        h, w, channels = input_spec(model, "model.architecture")
        if h is None or w is None:  # keras.applications builds at a size; never seen otherwise
            raise ModelError(f"model.input_size: {model.name} was built for images of any "
                             "size; set model.input_size")
        weights = {"none": "random weights", "imagenet": "ImageNet weights"}.get(
            cfg.model.weights, f"weights from {cfg.model.weights}")
        note = (f"The model is keras.applications {model.name} with {weights}, used as it is "
                f"at {h}x{w} px, preprocessing {mode!r} (its preprocess_input).")
        return Given(model, (h, w, channels), mode, [note])

    def calibrates(self) -> bool:
        return self.cfg.model.weights == "none"

    def describe(self) -> SourceInfo:
        return SourceInfo(self.name, False, "keras.applications {model}")


def class_names(cfg: Config) -> list[str]:
    """The class names of unlabeled photos: ``data.classes``, else the 1,000 ImageNet classes
    (shipped with reportgen)."""
    from reportgen.data import imagenet_names

    return list(cfg.data.classes) or imagenet_names()


def application_constructors() -> dict[str, str]:
    """{config name: constructor name} of every keras.applications classifier
    (``"mobilenetv2": "MobileNetV2"``); config names are lower case without ``_`` or ``-``."""
    import keras

    return {n.lower(): n for n in dir(keras.applications)
            if n[:1].isupper() and callable(getattr(keras.applications, n))}


def preprocess_mode_of(ctor: Any) -> str:
    """The mode of :data:`PREPROCESS_MODES` that equals the ``preprocess_input`` of the
    keras.applications module of constructor ``ctor``, found by running both on a probe
    (ModelError when none matches)."""
    import keras

    from reportgen.model.preprocess import PREPROCESS_MODES, apply_preprocess

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
                      n_classes: int = 1000, seed: int = 0) -> tuple[Any, str]:
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
    import keras

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
