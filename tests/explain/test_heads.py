"""Output heads other than a softmax: one sigmoid unit for two classes (class 0 explained by the
negated logit), one logit unit, and independent sigmoids (never a silent softmax)."""

from __future__ import annotations

import numpy as np
import pytest

from reportgen.evaluate import to_probabilities
from reportgen.explain import Explainer, grad_cam, occlusion, saliency

from test_cam import expected_gradcam  # tests/explain is on sys.path (rootdir import mode)


def binary_model(keras, activation="sigmoid", units=1):
    inp = keras.Input((8, 8, 3))
    a = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inp)
    g = keras.layers.GlobalAveragePooling2D()(a)
    return keras.Model(inp, keras.layers.Dense(units, activation=activation, name="head")(g))


def conv_acts(keras, model, x):
    return np.asarray(keras.Model(model.inputs, model.get_layer("conv").output)(x))


@pytest.mark.parametrize("activation,head", [("sigmoid", "binary"), (None, "binary_logit")])
def test_one_unit_is_two_classes_with_the_negated_logit_for_class_0(keras, rng, activation,
                                                                     head):
    model = binary_model(keras, activation)
    ex = Explainer(model)
    assert ex.graph.head == head
    x = rng.uniform(0, 1, (6, 8, 8, 3)).astype(np.float32)
    w = model.get_layer("head").get_weights()[0]  # (4, 1)
    acts = conv_acts(keras, model, x)
    for cls, sign in ((1, 1.0), (0, -1.0)):
        got = grad_cam(model, x, targets=cls, upsample=False)
        want = expected_gradcam(acts, sign * w, np.zeros(6, int))
        np.testing.assert_allclose(got, want, atol=1e-5)
    # Saliency of class 0 is that of class 1 negated (the gradient of -z).
    np.testing.assert_allclose(saliency(model, x, targets=0), -saliency(model, x, targets=1),
                               atol=1e-6)
    # Probabilities [1 - p, p]; the predicted class is 1 exactly where p > 0.5.
    z = (acts.mean(axis=(1, 2)) @ w + model.get_layer("head").get_weights()[1])[:, 0]
    p = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(ex.probabilities(x), np.stack([1 - p, p], axis=1), atol=1e-5)
    default = grad_cam(model, x, upsample=False)
    pred = (p > 0.5).astype(int)
    for i in range(6):
        np.testing.assert_allclose(default[i], grad_cam(model, x[i:i + 1], targets=pred[i],
                                                        upsample=False)[0], atol=1e-6)


def test_occlusion_of_class_0_is_the_drop_of_the_negated_logit(keras, rng):
    model = binary_model(keras)
    x = rng.uniform(0, 1, (2, 8, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(occlusion(model, x, targets=0, patch_size=4, stride=4),
                               -occlusion(model, x, targets=1, patch_size=4, stride=4),
                               atol=1e-5)


def test_independent_sigmoids_are_never_softmaxed(keras, rng):
    model = binary_model(keras, "sigmoid", units=3)
    ex = Explainer(model)
    assert ex.graph.head == "sigmoid"
    x = rng.uniform(0, 1, (4, 8, 8, 3)).astype(np.float32)
    raw = np.asarray(model(x))
    np.testing.assert_allclose(ex.probabilities(x), raw, atol=1e-6)  # the sigmoids
    np.testing.assert_allclose(to_probabilities(raw, "sigmoid"), raw)
    # Explanations use each class's logit, before its sigmoid.
    w = model.get_layer("head").get_weights()[0]
    np.testing.assert_allclose(grad_cam(model, x, targets=2, upsample=False),
                               expected_gradcam(conv_acts(keras, model, x), w, np.full(4, 2)),
                               atol=1e-5)


def test_to_probabilities_by_head():
    np.testing.assert_allclose(to_probabilities(np.array([[0.8], [0.1]]), "binary"),
                               [[0.2, 0.8], [0.9, 0.1]])
    np.testing.assert_allclose(to_probabilities(np.array([[0.0], [np.log(3)]]), "binary_logit"),
                               [[0.5, 0.5], [0.25, 0.75]])
    np.testing.assert_allclose(to_probabilities(np.array([[1.0, 1.0]]), "logits"), [[0.5, 0.5]])
