"""No explanation path computes a gradient eagerly (TensorFlow 2.21 with oneDNN crashes there).

TensorFlow 2.21 with oneDNN on (its default on CPUs) kills the process (segmentation fault or
abort) in ``Conv2DBackpropFilter`` of a 1x1, stride-2 convolution with few channels on a large
enough input, e.g. (4, 60, 60, 8) -> (1, 1, 8, 16): an *eager* tape computes that filter
gradient even when only the input gradient is asked for; a compiled function prunes it. A real
model with that shape is the ``fer`` package's mini-Xception. Every gradient method, the
functional API, the planner's probe, filter patterns and deep dream run here on such a model in
a subprocess with oneDNN on, TensorFlow and Keras imported before reportgen (so nothing
reportgen sets at import can switch oneDNN off), on the CPU.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

#: The model and every gradient path, as a user would run them.
SCRIPT = textwrap.dedent("""
    import dataclasses

    import numpy as np
    import tensorflow as tf  # the user's TensorFlow and Keras first: oneDNN is on from here
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((60, 60, 3))
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c1")(inp)
    h = keras.layers.Conv2D(16, 1, strides=2, name="down")(h)  # (N, 60, 60, 8) -> 1x1, stride 2
    h = keras.layers.ReLU(name="down_relu")(h)
    h = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="c2")(h)
    out = keras.layers.Dense(3, activation="softmax", name="head")(
        keras.layers.GlobalAveragePooling2D(name="gap")(h))
    model = keras.Model(inp, out)
    x = np.random.default_rng(0).uniform(0, 1, (4, 60, 60, 3)).astype(np.float32)

    import reportgen.explain as rx
    from reportgen.explain import plan
    from reportgen.explain.explainer import Explainer
    from reportgen.explain.methods import REGISTRY

    small = {"smoothgrad": {"samples": 2}, "integrated_gradients": {"steps": 2},
             "scorecam": {"channels": 2}, "rise": {"masks": 4}}
    # 'c1' below the 1x1 conv: the CAM methods' backward pass runs through it too.
    ex = Explainer(model, batch_size=4, layer="c1")
    for name, spec in REGISTRY.items():
        opts = dataclasses.replace(spec.options(), **small.get(name, {}))
        assert np.isfinite(ex.run(name, x, options=opts)).all(), name
        print("registry", name, flush=True)
    for fn in (rx.saliency, rx.guided_backprop, rx.deconvnet):
        fn(model, x)
    rx.smooth_grad(model, x, samples=2)
    rx.integrated_gradients(model, x, steps=2)
    for fn in (rx.grad_cam, rx.grad_cam_plus_plus, rx.layer_cam, rx.guided_grad_cam):
        fn(model, x, layer="c1")
    print("api", flush=True)
    plan.probe(Explainer(model, layer="c1"), x, batch=4, repeats=1, min_seconds=0.0)
    print("probe", flush=True)
    rx.filter_patterns(model, "c2", [0, 1, 2, 3], steps=2)
    rx.deep_dream(model, x, "c2", octaves=1, steps=2)
    print("features", flush=True)
""")


def run_with_onednn(code: str) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter on the CPU with oneDNN on (TensorFlow's default)."""
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    env.update(CUDA_VISIBLE_DEVICES="-1", TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=600, check=False)


@pytest.fixture(autouse=True)
def tier():
    """One run: the subprocess does not see the tiers of tests/explain/conftest.py."""


@pytest.mark.slow  # a subprocess of about 9 s (CI runs it)
def test_every_gradient_path_survives_a_1x1_stride_2_conv_with_onednn_on():
    proc = run_with_onednn(SCRIPT)
    assert proc.returncode == 0, (f"exit {proc.returncode} after: {proc.stdout.split()[-2:]}\n"
                                  f"{proc.stderr[-2000:]}")
    assert proc.stdout.split()[-1] == "features"
