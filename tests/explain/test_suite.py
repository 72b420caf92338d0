"""The test-set pass of the report: one GradCAM pass also gives the most active units."""

from __future__ import annotations

import numpy as np

from reportgen.config import Config
from reportgen.data.folder import Split
from reportgen.explain import suite


def test_top_units_from_the_gradcam_pass_equal_a_separate_pass(keras, rng, monkeypatch):
    inp = keras.Input((16, 16, 3))
    h = keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu", name="c1")(inp)
    h = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="c2")(h)
    out = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(h))
    model = keras.Model(inp, out)
    n = 23
    split = Split(images=rng.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8),
                  labels=rng.integers(0, 3, n), paths=[f"{i}.png" for i in range(n)],
                  boxes=np.full((n, 4), np.nan, np.float32))
    monkeypatch.setattr(suite, "CHUNK", 5)  # several chunks
    cfg = Config()
    cfg.explain.receptive_units = 6
    prep = lambda im: im.astype(np.float32) / 255.0  # noqa: E731
    probs = np.full((n, 3), 1 / 3)
    ex = suite.explainer_for(model, cfg)
    result = suite.explain_test_set(ex, split, prep, probs, cfg.explain.gallery_size)
    assert result.layer == "c2" and result.peaks is not None
    fused = suite._top_units(ex, split, prep, "c2", 6, result.peaks)
    separate = suite._top_units(ex, split, prep, "c2", 6, None)
    assert fused == separate and len(fused.units) == 6
    acts = np.asarray(keras.Model(inp, model.get_layer("c2").output)(prep(split.images)))
    best = fused.units[0]
    assert best.activation == np.float32(acts.max())
    assert acts[best.index, best.i, best.j, best.channel] == np.float32(acts.max())
