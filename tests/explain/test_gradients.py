"""Input-gradient methods: known answers computed by hand in numpy."""

from __future__ import annotations

import numpy as np
import pytest

from reportgen.explain.gradients import (deconvnet, guided_backprop, guided_grad_cam,
                                         input_gradients, integrated_gradients, saliency,
                                         smooth_grad)


def test_saliency_of_linear_model_is_its_weights(keras, rng):
    inp = keras.Input((4, 4, 2))
    out = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(inp))
    model = keras.Model(inp, out)
    w = model.layers[-1].get_weights()[0]  # (32, 3)
    x = rng.normal(size=(5, 4, 4, 2)).astype(np.float32)
    t = np.array([0, 1, 2, 2, 1])
    got = saliency(model, x, targets=t, batch_size=2)
    assert got.shape == x.shape and got.dtype == np.float32
    for i in range(5):
        np.testing.assert_allclose(got[i], w[:, t[i]].reshape(4, 4, 2), atol=1e-6)


def relu_zoo(keras):
    """Conv2D(activation="relu") -> ReLU6 layer -> nested [Dense(relu) -> Activation("relu")]
    -> Dense: every kind of ReLU, one inside a nested model."""
    inp = keras.Input((3, 3, 1))
    z = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inp)  # (1, 1, 4)
    z = keras.layers.ReLU(max_value=6.0, name="relu6")(z)
    z = keras.layers.Flatten()(z)
    n_in = keras.Input((4,))
    h = keras.layers.Dense(5, activation="relu", name="dense_relu")(n_in)
    h = keras.layers.Activation("relu", name="act_relu")(h)
    nested = keras.Model(n_in, h, name="nested.block")
    out = keras.layers.Dense(3, activation="softmax", name="head")(nested(z))
    return keras.Model(inp, out)


def by_hand(model, x, c, mode):
    """Forward and modified backward in numpy."""
    k, b1 = model.get_layer("conv").get_weights()
    nested = model.get_layer("nested.block")
    w3, b3 = nested.get_layer("dense_relu").get_weights()
    w5, b5 = model.get_layer("head").get_weights()
    w1 = k.reshape(9, 4)
    z1 = x.reshape(9) @ w1 + b1
    a1 = np.maximum(z1, 0)
    a2 = np.clip(a1, 0, 6)
    z3 = a2 @ w3 + b3
    a3 = np.maximum(z3, 0)

    def gate(g, mask):
        g = g * (g > 0)
        return g * mask if mode == "guided" else g

    g = w5[:, c]
    g = gate(g, a3 > 0)              # Activation("relu") on a3 (its input is a3 >= 0)
    g = gate(g, z3 > 0)              # Dense(activation="relu")
    g = w3 @ g
    g = gate(g, (a1 > 0) & (a1 < 6))  # ReLU(max_value=6)
    g = gate(g, z1 > 0)              # Conv2D(activation="relu")
    return (w1 @ g).reshape(3, 3, 1)


@pytest.mark.parametrize("mode, fn", [("guided", guided_backprop), ("deconv", deconvnet)])
def test_modified_relu_gradients_by_hand(keras, rng, mode, fn):
    model = relu_zoo(keras)
    # Spread the weights so that every mask matters for some image.
    model.set_weights([w * 3 for w in model.get_weights()])
    x = rng.normal(size=(8, 3, 3, 1)).astype(np.float32)
    t = rng.integers(0, 3, size=8)
    got = fn(model, x, targets=t)
    for i in range(8):
        np.testing.assert_allclose(got[i], by_hand(model, x[i], t[i], mode), atol=1e-5)
    # The modification changes something: plain gradients differ for some image.
    plain = saliency(model, x, targets=t)
    assert not np.allclose(plain, got)


def test_guided_methods_do_not_mutate(keras, rng):
    model = relu_zoo(keras)
    before = [w.copy() for w in model.get_weights()]
    x = rng.normal(size=(2, 3, 3, 1)).astype(np.float32)
    x0 = x.copy()
    guided_backprop(model, x)
    deconvnet(model, x)
    np.testing.assert_array_equal(x, x0)
    for a, b in zip(model.get_weights(), before, strict=True):
        np.testing.assert_array_equal(a, b)
    assert model.get_layer("conv").activation.__name__ == "relu"
    assert model.get_layer("head").activation.__name__ == "softmax"
    # Plain gradients afterwards are unaffected by the guided runs.
    np.testing.assert_allclose(saliency(model, x, targets=[0, 1]),
                               saliency(relu_zoo_copy(keras, model), x, targets=[0, 1]),
                               atol=1e-6)


def relu_zoo_copy(keras, model):
    clone = relu_zoo(keras)
    clone.set_weights(model.get_weights())
    return clone


def small_cnn(keras):
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu")(inp)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="last")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, keras.layers.Dense(3, activation="softmax")(x))


def test_integrated_gradients_completeness(keras, rng):
    model = small_cnn(keras)
    x = rng.uniform(0, 1, (4, 8, 8, 3)).astype(np.float32)
    t = np.array([0, 1, 2, 0])
    attr = integrated_gradients(model, x, targets=t, steps=64)
    # Logits by an independent route: the same model without its softmax.
    inp = keras.Input((8, 8, 3))
    h = inp
    for layer in model.layers[1:-1]:
        h = layer(h)
    head = model.layers[-1]
    w, b = head.get_weights()
    feats = np.asarray(keras.Model(inp, h)(x))
    base = np.asarray(keras.Model(inp, h)(np.zeros_like(x)))
    for i in range(4):
        diff = (feats[i] @ w + b)[t[i]] - (base[i] @ w + b)[t[i]]
        assert abs(attr[i].sum() - diff) <= 0.05 * abs(diff) + 1e-4


def test_smooth_grad_is_deterministic_and_averages(keras, rng):
    model = small_cnn(keras)
    x = rng.uniform(0, 1, (2, 8, 8, 3)).astype(np.float32)
    a = smooth_grad(model, x, samples=4, seed=3)
    b = smooth_grad(model, x, samples=4, seed=3)
    np.testing.assert_array_equal(a, b)
    # With no noise, SmoothGrad is the plain gradient of the predicted class.
    np.testing.assert_allclose(smooth_grad(model, x, samples=2, noise=0.0), saliency(model, x),
                               atol=1e-6)


def test_guided_grad_cam_is_product(keras, rng):
    from reportgen.explain import grad_cam
    model = small_cnn(keras)
    x = rng.uniform(0, 1, (3, 8, 8, 3)).astype(np.float32)
    got = guided_grad_cam(model, x, targets=[0, 1, 2])
    want = guided_backprop(model, x, targets=[0, 1, 2]) * grad_cam(model, x, targets=[0, 1, 2])[
        ..., None]
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_the_functional_api_reuses_one_explainer_per_model(keras, rng):
    """Repeated calls on one model trace each compiled function once; weights changed in
    between are seen (deconvnet's linear twins too)."""
    from reportgen.explain.explainer import Explainer

    inp = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inp)
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(h)))
    x = rng.uniform(0, 1, (3, 8, 8, 3)).astype(np.float32)
    first = Explainer.of(model, x, batch_size=2)
    assert Explainer.of(model, x, batch_size=5) is first and first.batch_size == 5
    assert Explainer.of(model, x[:, :, :, :1].repeat(3, -1), output_index=0) is first
    before = deconvnet(model, x)
    fn = first.graph.functions[("input-grad", "deconv")]
    conv = model.get_layer("conv")
    conv.set_weights([w * -1.5 for w in conv.get_weights()])
    after = deconvnet(model, x)
    assert first.graph.functions[("input-grad", "deconv")] is fn
    np.testing.assert_allclose(after, input_gradients(Explainer(model), "deconv", x),
                               atol=1e-6)
    assert not np.allclose(after, before)
    other = keras.models.clone_model(model)
    assert Explainer.of(other, x) is not first  # another model: its own explainer
    assert Explainer.of(model, x) is first  # and the first model's is kept beside it


def swish_model(keras, act="swish"):
    inp = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation=act, name="c1")(inp)
    x = keras.layers.Conv2D(5, 3, padding="same", name="c2")(x)
    x = keras.layers.Activation("gelu" if act == "swish" else act, name="act")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, keras.layers.Dense(3, activation="softmax")(x))


def test_a_model_without_relu_is_told_apart(keras):
    from reportgen.config import Config
    from reportgen.explain import Explainer, has_relus
    from reportgen.explain.methods import configure
    from reportgen.explain.results import Explained
    from reportgen.explain.suite import runnable

    assert not has_relus(swish_model(keras))
    assert has_relus(swish_model(keras, "relu")) and has_relus(relu_zoo(keras))
    leaky = swish_model(keras, "leaky_relu")  # guided backprop gates plain ReLUs only
    assert not has_relus(leaky)
    for model, relus in ((swish_model(keras), False), (swish_model(keras, "relu"), True)):
        result = Explained(layer="act", galleries={})
        kept = runnable(Explainer(model), configure(Config()), result)
        assert result.relus is relus
        assert ("guided_backprop" in kept) is relus and "guided_gradcam" in kept


def test_without_relu_guided_backprop_is_the_gradient_and_guided_gradcam_saliency_x_gradcam(
        isolated):
    got = isolated("""
        from reportgen.explain import Explainer
        inp = keras.Input((16, 16, 3))
        x = keras.layers.Conv2D(4, 3, padding="same", activation="swish", name="c1")(inp)
        x = keras.layers.Conv2D(5, 3, padding="same", activation="gelu", name="c2")(x)
        x = keras.layers.GlobalAveragePooling2D()(x)
        model = keras.Model(inp, keras.layers.Dense(3, activation="softmax")(x))
        ex = Explainer(model)
        x = np.random.default_rng(0).uniform(0, 1, (3, 16, 16, 3)).astype(np.float32)
        t = np.array([0, 1, 2])
        sal = ex.run("saliency", x, t)
        gb = ex.run("guided_backprop", x, t)
        ggc = ex.run("guided_gradcam", x, t)
        cam = ex.run("gradcam", x, t)
        scale = float(np.abs(sal).max())
        print(json.dumps({"gb": float(np.abs(gb - sal).max()) / scale,
                          "ggc": float(np.abs(ggc - sal * cam[..., None]).max()) / scale}))
    """)
    assert got["gb"] < 1e-5 and got["ggc"] < 1e-5
