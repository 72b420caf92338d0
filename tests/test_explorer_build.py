"""The explorer in a whole build (the shared smoke site): the features of the prediction pass,
the map, the page's data, the projector files and the plan's part, as metrics.json states."""

from __future__ import annotations

import json

import numpy as np


def _points(site) -> dict:
    text = (site / "explore" / "points.js").read_text(encoding="utf-8")
    return json.loads(text[text.index("{"):text.rindex("}") + 1])


def test_the_smoke_site_maps_its_test_set_and_a_training_sample(smoke_site):
    site = smoke_site[0]
    metrics = json.loads((site / "metrics.json").read_text())
    ex = metrics["explorer"]
    n_test = metrics["splits"]["test"]["n"]
    n_train = metrics["splits"]["train"]["n"]
    shown = min(n_train, n_test)
    assert ex["points"] == n_test + shown
    assert ex["layout"]["splits"] == {"test": {"shown": n_test, "total": n_test},
                                      "train": {"shown": shown, "total": n_train}}
    # The small CNN's classifier is its Dense "predictions" after pooling 96 channels.
    assert ex["features_layer"] == "predictions" and ex["dims"] == 96
    assert ex["layout"]["method"] == "t-SNE"
    data = _points(site)
    with open(site / "predictions.csv", encoding="utf-8") as f:
        rows = [line.rstrip("\n").split(",") for line in f][1:]
    assert data["points"]["f"][:n_test] == [r[0] for r in rows]  # test images in CSV order
    assert [data["classes"][p] for p in data["points"]["p"][:n_test]] == [r[2] for r in rows]
    # The projector's tensors and metadata have a row per point; the config names them.
    tensors = np.loadtxt(site / "projector" / "tensors.tsv", delimiter="\t", ndmin=2)
    meta = (site / "projector" / "metadata.tsv").read_text().splitlines()
    assert tensors.shape[0] == len(meta) - 1 == ex["points"]
    config = (site / "projector" / "projector_config.pbtxt").read_text()
    assert f"tensor_shape: {ex['points']}" in config and f"tensor_shape: {tensors.shape[1]}" \
        in config
    # The map is a part of the plan, with its estimate and the seconds it took.
    part = metrics["explain"]["plan"]["parts"]["explorer map"]
    assert part["estimate_s"] > 0 and part["actual_s"] is not None
    index = (site / "index.html").read_text()
    assert 'href="explore.html"' in index
