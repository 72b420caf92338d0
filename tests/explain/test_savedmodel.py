"""A SavedModel's serving graph opened at its last convolution: the CAM family, guided backprop,
deconvnet and Guided GradCAM give the maps of the Keras model it was exported from; where it
cannot be opened, the reason is said. Gradient paths run in a subprocess (oneDNN, see
test_onednn.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

#: Exports three tiny models and prints, as JSON, what the explanations of each give.
SCRIPT = textwrap.dedent("""
    import json, sys
    from pathlib import Path

    import numpy as np
    import keras

    import reportgen.explain as rx
    from reportgen.explain.explainer import Explainer
    from reportgen.model import load_saved_model

    keras.utils.set_random_seed(0)
    tmp = Path(sys.argv[1])
    L = keras.layers
    inp = keras.Input((16, 16, 3))
    h = L.Conv2D(4, 3, padding="same", activation="relu", name="c1")(L.Rescaling(1 / 255)(inp))
    h = L.Conv2D(6, 3, strides=2, padding="same", name="c2")(h)
    h = L.ReLU(name="r2")(L.BatchNormalization(name="bn")(h))
    h = L.Conv2D(5, 1, name="c3")(h)  # a 1x1 conv after ReLU6: the explained tensor
    h = L.ReLU(6.0, name="r3")(h)
    model = keras.Model(inp, L.Dense(3, activation="softmax")(L.GlobalAveragePooling2D()(h)))
    bn = model.get_layer("bn")  # BatchNorm statistics that are not the identity
    bn.moving_mean.assign(np.linspace(-0.2, 0.3, 6))
    bn.moving_variance.assign(np.linspace(0.5, 2.0, 6))
    model.export(tmp / "cnn", verbose=False)
    saved = load_saved_model(tmp / "cnn")
    x = np.random.default_rng(0).uniform(0, 255, (5, 16, 16, 3)).astype(np.float32)

    out = {"diff": {}, "size": {}}
    for name in ("grad_cam", "grad_cam_plus_plus", "layer_cam", "score_cam", "saliency",
                 "guided_backprop", "deconvnet", "guided_grad_cam"):
        want, got = getattr(rx, name)(model, x), getattr(rx, name)(saved, x)
        out["diff"][name] = float(np.abs(want - got).max())
        out["size"][name] = float(np.abs(want).max())
    out["guided_vs_plain"] = float(np.abs(rx.guided_backprop(saved, x)
                                          - rx.saliency(saved, x)).max())
    ex = Explainer(saved)
    out["layer"], out["head"] = ex.layer, ex.graph.head
    out["shape"] = list(ex.graph.layer_shapes[ex.layer])
    out["relus"] = ex.graph.has_relus()
    out["probs"] = float(np.abs(ex.probabilities(x) - np.asarray(model(x))).max())

    one = keras.Model(inp, L.Dense(1, activation="sigmoid")(L.GlobalAveragePooling2D()(h)))
    one.export(tmp / "binary", verbose=False)  # one sigmoid unit: class 0 explained by -z
    binary = load_saved_model(tmp / "binary")
    out["binary_head"] = Explainer(binary).graph.head
    out["binary_diff"] = max(float(np.abs(rx.grad_cam(one, x, targets=[c] * 5)
                                          - rx.grad_cam(binary, x, targets=[c] * 5)).max())
                             for c in (0, 1))
    out["binary_probs"] = float(np.abs(Explainer(binary).probabilities(x)[:, 1]
                                       - np.asarray(one(x))[:, 0]).max())

    keras.mixed_precision.set_global_policy("mixed_float16")  # a float16 serving graph
    mixed = keras.Model(inp, L.Activation("softmax", dtype="float32")(L.Dense(3)(
        L.GlobalAveragePooling2D()(L.Conv2D(4, 3, padding="same", activation="relu")(inp)))))
    keras.mixed_precision.set_global_policy("float32")
    mixed.export(tmp / "mixed", verbose=False)
    half = load_saved_model(tmp / "mixed")
    cam = rx.grad_cam(half, x)
    out["mixed"] = [str(cam.dtype), float(cam.max()), float(np.abs(
        Explainer(half).probabilities(x) - np.asarray(mixed(x))).max())]

    dense = keras.Sequential([keras.Input((16, 16, 3)), L.Flatten(), L.Dense(3)])
    dense.export(tmp / "dense", verbose=False)
    point = keras.Model(inp, L.Flatten()(L.Conv2D(3, 16, name="whole")(inp)))
    point.export(tmp / "point", verbose=False)
    out["closed"] = {}
    for name in ("dense", "point"):
        try:
            Explainer(load_saved_model(tmp / name)).layer
        except ValueError as e:
            out["closed"][name] = str(e)
    print(json.dumps(out))
""")


@pytest.fixture(autouse=True)
def tier():
    """One run: the subprocess does not see the tiers of tests/explain/conftest.py."""


@pytest.fixture(scope="module")
def found(tmp_path_factory):
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path_factory.mktemp("sm"))],
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_cam_family_on_a_savedmodel_equals_the_keras_model_it_was_exported_from(found):
    # The last convolution-like tensor: the 1x1 conv's ReLU6 at half the input's side.
    assert found["layer"] == "saved_model/functional_1.r3_1.Relu6"
    assert found["shape"] == [8, 8, 5]
    assert found["head"] == "softmax"  # the graph's final Softmax is cut off: logits explained
    assert found["probs"] < 1e-6  # and put back for the probabilities
    for name in ("grad_cam", "grad_cam_plus_plus", "layer_cam", "score_cam"):
        assert found["size"][name] > 0.5, name  # maps in [0, 1], not all zero
        assert found["diff"][name] < 1e-5, name


def test_a_savedmodel_with_one_sigmoid_unit_is_explained_by_its_logit(found):
    assert found["binary_head"] == "binary"  # its final Sigmoid op cut off
    assert found["binary_diff"] < 1e-5 and found["binary_probs"] < 1e-6


def test_a_mixed_precision_savedmodel_is_explained_in_float32(found):
    dtype, top, probs = found["mixed"]
    assert dtype == "float32" and top == pytest.approx(1.0) and probs < 1e-3


def test_guided_backprop_and_deconvnet_change_the_relus_inside_a_savedmodel(found):
    assert found["relus"]
    for name in ("saliency", "guided_backprop", "deconvnet", "guided_grad_cam"):
        assert found["size"][name] > 0, name
        assert found["diff"][name] <= 1e-5 * found["size"][name], name
    # The ReLU gradients were changed: guided backprop is not the plain gradient.
    assert found["guided_vs_plain"] > 0.01 * found["size"]["saliency"]


def test_a_savedmodel_that_cannot_be_opened_says_why(found):
    closed = found["closed"]
    assert set(closed) == {"dense", "point"}
    for why in closed.values():
        assert "cannot be opened at a convolution" in why and "no conv layer" not in why
    assert "has no convolution (no Conv2D or DepthwiseConv2dNative op)" in closed["dense"]
    assert "its convolutions (1) all give outputs of 1x1 pixel" in closed["point"]


class _Layer:
    """Stands for a loaded SavedModel layer (``split`` keys its cache on it)."""


@pytest.mark.parametrize("error", [ValueError("GraphDef cannot be larger than 2GB."),
                                   RuntimeError("import failed")])
def test_any_failure_to_open_a_savedmodel_is_a_reason_not_a_crash(monkeypatch, error):
    # Without this, a ValueError reached Explainer() and became "explain.layer: ..." (exit 2),
    # any other kind a traceback: a SavedModel the graph walk could run closed lost its build.
    from reportgen.explain import savedmodel

    def fails(layer):
        raise error

    monkeypatch.setattr(savedmodel, "_frozen_graph", fails)
    layer = _Layer()
    for _ in range(2):  # the reason is kept: asked again, the same answer
        with pytest.raises(savedmodel.SavedModelError) as info:
            savedmodel.split(layer)
        assert str(info.value) == (f"its serving graph could not be opened "
                                   f"({type(error).__name__}: {error})")
