"""Concepts: on a tiny GAP -> Dense model the contributions are exact; checked against the
class logit and the concept terms computed by hand from the model's weights."""

from __future__ import annotations


def test_contributions_of_a_gap_dense_head_add_up_to_the_logit(isolated):
    out = isolated("""
        from reportgen.explain.explainer import Explainer
        from reportgen.explain.dataset import run, concepts as cn
        inp = keras.Input((16, 16, 3))
        conv = keras.layers.Conv2D(6, 3, activation="relu", name="conv")(inp)
        gap = keras.layers.GlobalAveragePooling2D()(conv)
        model = keras.Model(inp, keras.layers.Dense(3, name="head")(gap))
        x = np.random.default_rng(0).random((10, 16, 16, 3)).astype("float32")
        ex = Explainer(model, batch_size=4, layer="conv")
        a, g, s = run.activations(ex, x, 1)
        # by hand: the conv output from a sub-model, the logit from the Dense weights
        acts = keras.Model(inp, conv)(x).numpy()
        w, b = model.get_layer("head").get_weights()
        logit = acts.mean((1, 2)) @ w[:, 1] + b[1]
        u, v, contrib, clipped = cn.factorise(a, g, s, k=3, seed=0)
        hand = u.mean((1, 2)) * (v @ w[:, 1])[None, :]
        resid = b[1] + (acts - np.einsum("nhwk,kc->nhwc", u, v)).mean((1, 2)) @ w[:, 1]
        cc = cn.class_concepts(1, np.arange(10), a, g, s, lambda r, c: (r, c, r + 2, c + 2))
        print(json.dumps({
            "acts": float(np.abs(a - acts).max()), "logit": float(np.abs(s - logit).max()),
            "contrib": float(np.abs(contrib - hand).max()),
            "sum": float(np.abs(contrib.sum(1) + resid - logit).max()),
            "exact": cn.linear_head(g), "clipped": clipped, "cc_exact": cc.exact,
            "cc_total": sum(c.contribution for c in cc.concepts) + cc.residual,
            "mean_logit": float(logit.mean()), "scale": float(np.abs(logit).max())}))
    """)
    tol = 1e-4 * max(1.0, out["scale"])
    assert out["acts"] < 1e-5 and out["logit"] < tol
    assert out["contrib"] < tol and out["sum"] < tol
    assert out["exact"] and out["cc_exact"] and out["clipped"] == 0.0
    assert abs(out["cc_total"] - out["mean_logit"]) < tol


def test_a_nonlinear_head_is_an_estimate(isolated):
    out = isolated("""
        from reportgen.explain.explainer import Explainer
        from reportgen.explain.dataset import run, concepts as cn
        inp = keras.Input((16, 16, 3))
        conv = keras.layers.Conv2D(6, 3, activation="relu", name="conv")(inp)
        h = keras.layers.Dense(8, activation="relu")(keras.layers.Flatten()(conv))
        model = keras.Model(inp, keras.layers.Dense(3)(h))
        x = np.random.default_rng(1).random((6, 16, 16, 3)).astype("float32")
        a, g, s = run.activations(Explainer(model, batch_size=4, layer="conv"), x, 0)
        print(json.dumps({"exact": cn.linear_head(g)}))
    """)
    assert out["exact"] is False
