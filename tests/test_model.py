"""Model building: a backbone that trains updates its BatchNorm statistics; a frozen one keeps
them; the caller's model is never changed by training."""

from __future__ import annotations

import numpy as np
import pytest

from reportgen.config import TrainingConfig
from reportgen.model import train, transfer_model


def bn_means(model):
    base = model.get_layer(next(lyr.name for lyr in model.layers if hasattr(lyr, "layers")))
    return [np.array(lyr.moving_mean) for lyr in base.layers
            if type(lyr).__name__ == "BatchNormalization"]


def trained_mobilenet(rng, *, freeze: bool, images: int, classes: int, epochs: int,
                      validate: bool):
    """A 32-px MobileNetV2 from random weights trained on random images: (given model, its
    BatchNorm means before, trained copy, history, x, y); validated on the training images
    when ``validate``."""
    model = transfer_model("mobilenetv2", (32, 32, 3), classes, weights="none",
                           freeze_base=freeze)
    before = bn_means(model)
    x = rng.uniform(0, 255, (images, 32, 32, 3)).astype(np.float32)
    y = rng.integers(0, classes, images)
    trained, history = train(model, (x, y), (x, y) if validate else None, TrainingConfig(
        epochs=epochs, batch_size=16 if validate else 8, learning_rate=1e-3, patience=epochs,
        seed=0))
    return model, before, trained, history, x, y


@pytest.fixture(scope="module")
def from_scratch(keras):
    """:func:`trained_mobilenet` with its base trained on 48 images of 4 classes for 4 epochs,
    trained once for the tests below (the train step of a MobileNetV2 takes half a minute to
    build)."""
    return trained_mobilenet(np.random.default_rng(1234), freeze=False, images=48, classes=4,
                             epochs=4, validate=True)


@pytest.mark.slow
def test_training_updates_batchnorm_when_the_backbone_trains(from_scratch):
    model, before, trained, _, _, _ = from_scratch
    changed = [not np.array_equal(a, b) for a, b in zip(before, bn_means(trained), strict=True)]
    # (the last one may see a zero batch mean on 1x1 features at this size)
    assert sum(changed) >= 0.9 * len(changed)
    # train() works on a copy: the given model keeps its statistics.
    assert all(np.array_equal(a, b) for a, b in zip(before, bn_means(model), strict=True))


@pytest.mark.slow
def test_a_frozen_backbone_keeps_its_batchnorm_statistics(keras, rng):
    model, before, trained, _, _, _ = trained_mobilenet(rng, freeze=True, images=16, classes=3,
                                                        epochs=1, validate=False)
    assert all(np.array_equal(a, b) for a, b in zip(before, bn_means(trained), strict=True))
    assert all(np.array_equal(a, b) for a, b in zip(before, bn_means(model), strict=True))


def test_calibrated_statistics_are_the_mean_and_variance_of_the_batchnorm_input(keras, rng):
    from reportgen.model import calibrate_batchnorm

    inp = keras.Input((8, 8, 3))
    conv = keras.layers.Conv2D(4, 3, padding="same", name="c")(inp)
    base = keras.Model(inp, keras.layers.BatchNormalization(momentum=0.999, name="bn")(conv))
    outer_in = keras.Input((8, 8, 3))
    model = keras.Model(outer_in, keras.layers.Dense(2)(
        keras.layers.GlobalAveragePooling2D()(base(outer_in))))
    x = rng.normal(size=(64, 8, 8, 3)).astype(np.float32)
    calibrate_batchnorm(model, x, batch_size=32)  # two equal batches: their running mean
    acts = np.asarray(keras.Model(inp, conv)(x))
    bn = base.get_layer("bn")
    np.testing.assert_allclose(np.asarray(bn.moving_mean), acts.mean(axis=(0, 1, 2)), atol=1e-4)
    within = np.mean([acts[:32].var(axis=(0, 1, 2)), acts[32:].var(axis=(0, 1, 2))], axis=0)
    np.testing.assert_allclose(np.asarray(bn.moving_variance), within, rtol=1e-3)
    assert bn.momentum == 0.999  # restored


@pytest.mark.slow
def test_a_backbone_trained_from_scratch_predicts_as_it_trained(from_scratch):
    """Without calibration its inference statistics stay near their initial values and it
    predicts about one class (validation at chance while training accuracy climbs)."""
    _, _, trained, history, x, y = from_scratch
    from reportgen.model import predict_outputs

    inference = float(np.mean(predict_outputs(trained, x).argmax(1) == y))
    assert history["accuracy"][-1] > 0.8 and inference > 0.8
    assert max(history["val_accuracy"]) > 0.8  # validation sees the calibrated model too


def test_a_short_training_run_is_eager_and_trains_as_compiled(keras, monkeypatch):
    """Up to EAGER_STEPS steps train eagerly (no train-step compile); the weights are those of
    the compiled run to float rounding."""
    from reportgen import model as mdl
    from reportgen.model import training

    rng = np.random.default_rng(5)
    x = rng.uniform(0, 1, (24, 16, 16, 3)).astype(np.float32)
    y = rng.integers(0, 3, 24)
    base = mdl.small_cnn((16, 16, 3), 3)

    def run():  # 24 images in batches of 8 for 2 epochs: 6 steps
        return train(base, (x, y), None, TrainingConfig(epochs=2, batch_size=8,
                                                        learning_rate=1e-3, patience=2,
                                                        seed=0))[0]
    eager = run()
    monkeypatch.setattr(training, "EAGER_STEPS", 5)  # the module train() reads it from
    compiled = run()
    assert eager.run_eagerly and not compiled.run_eagerly
    for a, b in zip(eager.get_weights(), compiled.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_one_forward_function_serves_several_arrays_with_one_trace():
    """The predict stage runs train, val and test through one compiled forward pass: the model
    is traced once, and the outputs are those of a forward pass made for each array."""
    import keras

    from reportgen.model import forward_function, predict_outputs, small_cnn

    keras.utils.set_random_seed(0)
    model = small_cnn((16, 16, 3), 3)
    rng = np.random.default_rng(0)
    arrays = [rng.uniform(0, 255, (n, 16, 16, 3)).astype(np.float32) for n in (5, 3, 7)]
    forward = forward_function(model, (16, 16, 3))
    shared = [predict_outputs(model, a, batch_size=4, forward=forward) for a in arrays]
    assert forward.experimental_get_tracing_count() == 1
    for a, got in zip(arrays, shared, strict=True):
        np.testing.assert_allclose(got, predict_outputs(model, a, batch_size=4), rtol=1e-6)
        np.testing.assert_allclose(got, np.asarray(model(a, training=False)), rtol=1e-4,
                                   atol=1e-6)
