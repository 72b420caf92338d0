"""The functional API (``grad_cam(model, x)``) keeps one explainer per model, output and image
size while the model lives (``Explainer.of``): repeated calls reuse it, and its results are a
fresh explainer's. Gradient paths run in a subprocess (see the ``isolated`` fixture)."""

from __future__ import annotations

import textwrap

import numpy as np

#: Subprocess code: ``two_heads(seed, name)``, a conv layer "conv" (16x16x3 -> 4 channels,
#: ReLU) whose global average feeds two linear heads "h0", "h1" of 3 classes; ``by_hand(model,
#: x, t, head)``, its GradCAM at "conv" (layer resolution) by the closed form of GAP + Dense:
#: alpha_k = W[k, c] / (h w), cam = relu(sum_k alpha_k A_k), min-max scaled per image.
MODELS = """
    def two_heads(seed, name, size=16):
        keras.utils.set_random_seed(seed)
        inp = keras.Input((size, size, 3))
        a = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inp)
        g = keras.layers.GlobalAveragePooling2D()(a)
        return keras.Model(inp, [keras.layers.Dense(3, name="h0")(g),
                                 keras.layers.Dense(3, name="h1")(g)], name=name)

    def by_hand(model, x, t, head):
        acts = np.asarray(keras.Model(model.inputs, model.get_layer("conv").output)(x))
        w = model.get_layer(head).get_weights()[0]
        n, h, wd, _ = acts.shape
        out = np.zeros((n, h, wd))
        for i in range(n):
            cam = np.maximum((acts[i] * (w[:, t[i]] / (h * wd))).sum(-1), 0)
            span = cam.max() - cam.min()
            out[i] = (cam - cam.min()) / span if span > 1e-8 else 0.0
        return out

    from reportgen.explain import explainer as exm
    made = []
    _init = exm.Explainer.__init__

    def counting_init(self, model, *args, **kwargs):
        made.append(model.name)
        _init(self, model, *args, **kwargs)

    exm.Explainer.__init__ = counting_init
    x = np.random.default_rng(0).uniform(0, 1, (24, 16, 16, 3)).astype(np.float32)
    t = np.arange(24) % 3
"""


def script(code: str) -> str:
    """:data:`MODELS` followed by ``code`` (both dedented)."""
    return textwrap.dedent(MODELS) + textwrap.dedent(code)


def test_repeated_calls_reuse_one_explainer_per_model(isolated):
    """Two models alive at once, called in turn over three batches: one explainer each
    (constructions counted), one trace of the GradCAM function, the maps a fresh explainer's
    and the hand formula's."""
    got = isolated(script("""
        from reportgen.explain import grad_cam
        from reportgen.explain.cam import cam_maps
        a, b = two_heads(1, "a"), two_heads(2, "b")
        maps = {"a": [], "b": []}
        for s in range(0, 24, 8):
            for m in (a, b):
                maps[m.name].append(grad_cam(m, x[s:s + 8], t[s:s + 8], upsample=False))
        api = list(made)
        kept = {m.name: exm._CACHE[m] for m in (a, b)}
        ex = kept["a"][(0, (16, 16, 3))]
        cam = next(f for k, f in ex.graph.functions.items() if k[0] == "cam")
        out = {"made": api, "traces": cam.compiled.experimental_get_tracing_count(),
               "own": [kept[m.name][(0, (16, 16, 3))].model is m for m in (a, b)],
               "apart": float(np.abs(by_hand(a, x, t, "h0") - by_hand(b, x, t, "h0")).max())}
        for m in (a, b):
            mine = np.concatenate(maps[m.name])
            fresh = cam_maps(exm.Explainer(m), "gradcam", x, t, upsample=False)
            out[m.name] = [float(np.abs(mine - fresh).max()),
                           float(np.abs(mine - by_hand(m, x, t, "h0")).max())]
        print(json.dumps(out))
    """))
    assert got["made"] == ["a", "b"] and got["traces"] == 1 and got["own"] == [True, True]
    assert got["apart"] > 0.05  # the two models' maps differ: a mix-up would show
    for name in ("a", "b"):
        assert got[name][0] < 1e-6 and got[name][1] < 1e-5


def test_the_cache_never_keeps_a_model_alive(isolated):
    """After GradCAM, guided backprop (linear twins) and feature maps, deleting the model
    frees it and its cache entry; an explainer made directly keeps its own model."""
    got = isolated(script("""
        import gc
        import weakref
        import reportgen.explain as rx
        model = two_heads(1, "gone")
        rx.grad_cam(model, x)
        rx.guided_backprop(model, x)
        rx.feature_maps(model, x, ["conv"])
        ex = exm.Explainer.of(model, x)
        ref, entries = weakref.ref(model), len(exm._CACHE)
        del model
        gc.collect()
        try:
            ex.model
            told = False
        except ReferenceError:
            told = True
        mine = exm.Explainer(two_heads(2, "kept"))  # no other reference to this model
        gc.collect()
        print(json.dumps({"entries": entries, "alive": ref() is not None, "told": told,
                          "left": len(exm._CACHE), "kept": mine.model.name}))
    """))
    assert got == {"entries": 1, "alive": False, "told": True, "left": 0, "kept": "kept"}


def test_switching_output_or_image_size_never_returns_stale_maps(isolated):
    """Output 0, 1, then 0 again: each the hand formula of its own head; a variable-size
    model at 16 then 12 then 16 px: maps of each size, each a fresh explainer's."""
    got = isolated(script("""
        from reportgen.explain import grad_cam
        from reportgen.explain.cam import cam_maps
        model = two_heads(3, "heads")
        seq = [grad_cam(model, x, t, upsample=False, output_index=k) for k in (0, 1, 0)]
        errs = [float(np.abs(m - by_hand(model, x, t, h)).max())
                for m, h in zip(seq, ("h0", "h1", "h0"))]
        apart = float(np.abs(seq[0] - seq[1]).max())
        var = two_heads(4, "var", size=None)
        sizes, fresh = [], []
        for side in (16, 12, 16):
            xs = x[:5, :side, :side]
            m = grad_cam(var, xs, t[:5])
            sizes.append(list(m.shape))
            ref = cam_maps(exm.Explainer(var, input_shape=(side, side, 3)), "gradcam", xs,
                           t[:5])
            fresh.append(float(np.abs(m - ref).max()))
        print(json.dumps({"errs": errs, "apart": apart, "sizes": sizes, "fresh": fresh,
                          "keys": sorted(str(k) for k in exm._CACHE[var])}))
    """))
    assert max(got["errs"]) < 1e-5 and got["apart"] > 0.05
    assert got["sizes"] == [[5, 16, 16], [5, 12, 12], [5, 16, 16]] and max(got["fresh"]) < 1e-6
    assert got["keys"] == ["(0, (12, 12, 3))", "(0, (16, 16, 3))"]


def test_the_eager_or_compiled_choice_follows_the_work_of_all_calls(keras, rng, monkeypatch):
    """Feature maps (forward only, so in this process) in calls of 8 images through the
    functional API: one function, eager while its eager work over all calls (8 images plus
    CALL_IMAGES a call) fits COMPILE_AFTER, compiled from then on, the maps unchanged."""
    from reportgen.explain import feature_maps
    from reportgen.explain import graph as graph_mod
    from reportgen.explain.explainer import Explainer

    monkeypatch.setattr(graph_mod, "COMPILE_AFTER", 2 * (graph_mod.CALL_IMAGES + 8))
    inp = keras.Input((16, 16, 3))
    model = keras.Model(inp, keras.layers.Conv2D(4, 3, name="conv")(inp))
    x = rng.uniform(0, 1, (40, 16, 16, 3)).astype(np.float32)
    got = np.concatenate([feature_maps(model, x[s:s + 8], ["conv"])["conv"]
                          for s in range(0, 40, 8)])
    ex = Explainer.of(model, x)
    (fn,) = ex.graph.functions.values()
    assert (fn.eager_calls, fn.eager_images) == (2, 16) and fn.compiled is not None
    np.testing.assert_allclose(got, np.asarray(model(x)), atol=1e-5)
