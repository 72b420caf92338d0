"""Depthwise grouped convolutions (ConvNeXt's ``Conv2D(C, k, groups=C)``) run in the graph walk
as ``tf.nn.depthwise_conv2d``, not through Keras' XLA-compiled grouped convolution (recompiled on
every eager call; about 5x slower compiled on a CPU). The values must be the layer's own."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from reportgen.explain.graph import ModelGraph, depthwise_call, is_depthwise_grouped

#: A small ConvNeXt-like model: depthwise groups with multiplier 1 and 2, strided, biased.
MODEL = textwrap.dedent("""
    import keras
    import numpy as np

    keras.utils.set_random_seed(0)
    inp = keras.Input((16, 16, 3))
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="stem")(inp)
    h = keras.layers.Conv2D(8, 5, padding="same", groups=8, name="dw")(h)
    h = keras.layers.Conv2D(16, 3, strides=2, groups=8, activation="gelu", name="dw2")(h)
    h = keras.layers.Conv2D(16, 1, activation="relu", name="pw")(h)
    out = keras.layers.Dense(3, name="head")(  # logits: saliency's gradient is of these
        keras.layers.GlobalAveragePooling2D()(h))
    model = keras.Model(inp, out)
    # Weights of ordinary size, so a wrong channel order cannot hide in small values.
    for w in model.weights:
        w.assign(np.random.default_rng(len(w.name)).normal(0, 0.5, w.shape).astype("float32"))
    x = np.random.default_rng(1).uniform(0, 1, (4, 16, 16, 3)).astype(np.float32)
""")


def _model():
    env: dict = {}
    exec(MODEL, env)  # noqa: S102 - the test's own model source, shared with the subprocess
    return env["model"], env["x"]


def test_only_one_group_per_input_channel_is_taken_over():
    x = keras.ops.zeros((1, 8, 8, 8))
    assert is_depthwise_grouped(keras.layers.Conv2D(8, 3, groups=8), (x,))
    assert is_depthwise_grouped(keras.layers.Conv2D(16, 3, groups=8, strides=2), (x,))
    assert not is_depthwise_grouped(keras.layers.Conv2D(8, 3, groups=4), (x,))  # 2 per group
    assert not is_depthwise_grouped(keras.layers.Conv2D(8, 3), (x,))
    assert not is_depthwise_grouped(keras.layers.DepthwiseConv2D(3), (x,))
    assert not is_depthwise_grouped(keras.layers.Conv2D(8, 3, groups=8, strides=(1, 2)), (x,))


def test_depthwise_call_equals_the_layer():
    model, x = _model()
    h = model.get_layer("stem")(x)
    for name in ("dw", "dw2"):
        layer = model.get_layer(name)
        want = np.asarray(layer(h))
        got = np.asarray(depthwise_call(layer, h))
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
        h = layer(h)


def test_graph_walk_forward_equals_the_model():
    model, x = _model()
    got = np.asarray(ModelGraph(model).forward(x, logits=False))
    np.testing.assert_allclose(got, np.asarray(model(x)), rtol=1e-5, atol=1e-6)


#: Input gradients of the graph walk (saliency) against TensorFlow's own of the model.
GRADIENT = MODEL + textwrap.dedent("""
    import tensorflow as tf
    from reportgen.explain.explainer import Explainer

    ex = Explainer(model, batch_size=4)
    t = np.array([0, 1, 2, 0])

    @tf.function
    def ref(xb):
        with tf.GradientTape() as tape:
            tape.watch(xb)
            s = tf.reduce_sum(tf.gather(model(xb), t, axis=1, batch_dims=1))
        return tape.gradient(s, xb)

    got = np.asarray(ex.run("saliency", x, targets=t))
    want = ref(tf.constant(x)).numpy()
    assert got.shape == want.shape and np.abs(want).max() > 0
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * np.abs(want).max())
    print("ok")
""")


@pytest.fixture
def tier():
    """One run: the subprocess does not see the tiers of tests/explain/conftest.py."""


@pytest.mark.slow  # a subprocess of about 8 s (CI runs it)
def test_input_gradients_through_depthwise_groups_are_the_models():
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "-1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, "-c", GRADIENT], capture_output=True, text=True,
                          env=env, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[-1] == "ok"


def test_the_graph_walk_runs_both_depthwise_layers_without_keras_grouped_conv(monkeypatch):
    from reportgen.explain import graph

    model, x = _model()
    seen = []

    def spy(layer, h):
        seen.append(layer.name)
        return depthwise_call(layer, h)

    monkeypatch.setattr(graph, "depthwise_call", spy)
    ModelGraph(model).forward(x)
    assert seen[-2:] == ["dw", "dw2"]
