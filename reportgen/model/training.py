"""Training: a copy of a model trained with Adam and early stopping, its BatchNorm
statistics re-estimated where they trained.
"""

from __future__ import annotations

from typing import Callable

import keras
import numpy as np
from keras import layers

from reportgen.config import TrainingConfig
from reportgen.errors import ModelError


class _EpochCallback(keras.callbacks.Callback):
    def __init__(self, on_epoch: Callable[[int, dict], None]) -> None:
        super().__init__()
        self._on_epoch = on_epoch

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._on_epoch(epoch, dict(logs or {}))


#: Training runs of at most this many steps (epochs x batches) run eagerly: compiling the train
#: step costs about 20 s on a MobileNetV2 at 32 px on 2 cores, more than 16 eager steps of it.
EAGER_STEPS = 16

#: Training images (a seeded random sample) the BatchNorm statistics are estimated from.
CALIBRATION_IMAGES = 256


def train(model: keras.Model, data: tuple[np.ndarray, np.ndarray],
          val: tuple[np.ndarray, np.ndarray] | None, settings: TrainingConfig,
          on_epoch: Callable[[int, dict], None] | None = None) -> tuple[keras.Model, dict]:
    """Train a copy of ``model`` with Adam and sparse cross-entropy on ``data`` (images
    (N, H, W, C) as the model takes them, int labels (N,)), validated on ``val`` (None or
    empty: none), with ``settings`` (epochs, batch size, learning rate, patience, seed,
    min_epochs); ``on_epoch(epoch, logs)`` after each epoch. Return (copy, history).

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
    x_train, y_train = data
    epochs, batch_size, seed = settings.epochs, settings.batch_size, settings.seed
    keras.utils.set_random_seed(seed)
    trained = keras.models.clone_model(model)
    trained.set_weights(model.get_weights())
    steps = epochs * -(-len(x_train) // batch_size)
    trained.compile(optimizer=keras.optimizers.Adam(settings.learning_rate),
                    loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                    run_eagerly=steps <= EAGER_STEPS)
    validation = None if val is None or not len(val[0]) else \
        (val[0].astype(np.float32), val[1])
    has_val = validation is not None
    callbacks = [keras.callbacks.TerminateOnNaN(), keras.callbacks.EarlyStopping(
        monitor="val_loss" if has_val else "loss", patience=settings.patience,
        restore_best_weights=True, start_from_epoch=settings.min_epochs - 1)]
    if on_epoch:
        callbacks.append(_EpochCallback(on_epoch))
    sample = None
    if _trained_batchnorms(trained):
        pick = np.random.default_rng(seed).permutation(len(x_train))[:CALIBRATION_IMAGES]
        sample = np.asarray(x_train[np.sort(pick)], np.float32)
        callbacks.append(_CalibrateBeforeValidation(sample))
    hist = trained.fit(
        x_train.astype(np.float32), y_train, batch_size=batch_size, epochs=epochs,
        validation_data=validation,
        shuffle=True, callbacks=callbacks, verbose=0)
    history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    _check_converged(history, settings.learning_rate)
    if sample is not None:
        calibrate_batchnorm(trained, sample)
    return trained, history


def _check_converged(history: dict[str, list[float]], learning_rate: float) -> None:
    """ModelError naming ``training.learning_rate`` when a training loss is not finite (or
    no epoch ran)."""
    bad = next((i for i, v in enumerate(history.get("loss", [])) if not np.isfinite(v)), None)
    if bad is not None or not history.get("loss"):
        raise ModelError(f"training.learning_rate: training diverged (loss "
                         f"{history.get('loss', ['nan'])[bad or 0]} in epoch {(bad or 0) + 1}); "
                         f"lower training.learning_rate (now {learning_rate:g})")


class _CalibrateBeforeValidation(keras.callbacks.Callback):
    """Re-estimate BatchNorm statistics (:func:`calibrate_batchnorm`) on ``images`` before
    each validation, so validation metrics and early stopping see the model as it will
    predict (and the weights early stopping keeps carry those statistics)."""

    def __init__(self, images: np.ndarray) -> None:
        super().__init__()
        self._images = images

    def on_test_begin(self, logs: dict | None = None) -> None:
        calibrate_batchnorm(self.model, self._images)


def _batchnorms(model: keras.Model) -> list:
    out = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            out += _batchnorms(layer)
        elif isinstance(layer, layers.BatchNormalization):
            out.append(layer)
    return out


def _trained_batchnorms(model: keras.Model) -> list:
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
