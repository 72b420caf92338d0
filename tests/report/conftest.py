"""Made-up results a report is built from (no TensorFlow, no model): the report's tests
inspect the contexts and pages gathered from them."""

from __future__ import annotations

import numpy as np
import pytest

from reportgen.config import Config
from reportgen.data.folder import Dataset, Split
from reportgen.evaluate import split_metrics
from reportgen.explain.results import Explained, QualityRow
from reportgen.report import ModelInfo, ReportInputs

NAMES = ["a", "b"]


def split(rng, n):
    return Split(images=rng.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8),
                 labels=np.arange(n) % 2, paths=[f"x/{i}.png" for i in range(n)],
                 boxes=np.full((n, 4), np.nan, np.float32))


@pytest.fixture
def inputs(rng, tmp_path):
    ds = Dataset(root=tmp_path, class_names=NAMES,
                 splits={"train": split(rng, 6), "val": split(rng, 4), "test": split(rng, 6)})
    probs = {}
    for name, s in ds.splits.items():
        p = np.full((len(s), 2), 0.2)
        p[np.arange(len(s)), s.labels] = 0.8
        probs[name] = p
    probs["test"][1] = [0.9, 0.1]  # test image 1 (class b) is misclassified as a
    metrics = {k: split_metrics(probs[k], s.labels, NAMES, 3) for k, s in ds.splits.items()}
    ex = Explained(layer="conv", galleries={0: {"correct": [0, 2], "misclassified": [],
                                                "confident_wrong": [1]},
                                            1: {"correct": [3], "misclassified": [1],
                                                "confident_wrong": []}})
    ex.maps["gradcam"] = {i: rng.uniform(0, 1, (16, 16)).astype(np.float32) for i in range(4)}
    ex.samples = [0, 1]
    ex.method_outputs = {"gradcam": rng.uniform(0, 1, (2, 16, 16)).astype(np.float32),
                         "occlusion": rng.normal(size=(2, 16, 16)).astype(np.float32),
                         "saliency": rng.normal(size=(2, 16, 16, 3)).astype(np.float32)}
    for m in ("gradcam", "occlusion", "rise"):
        ex.quality[m] = QualityRow(0.2, 0.6, 1.0, 0.5, 0.1, n=6, n_boxes=0, seconds=0.3)
    info = ModelInfo("0", "3.11", "tf", "k", "np", "m" * 8, "d" * 8, (10, 8),
                     [{"name": "conv", "kind": "Conv2D", "output_shape": "(None, 8, 8, 4)",
                       "params": 10}], [16, 16, 3], "tiny", "none")
    return ReportInputs(Config(), ds, probs, metrics, {}, ex, info, ["a note"],
                        {"occlusion": {"patch_size": 8}})


@pytest.fixture
def drawn():
    """The metric figures' page data, none drawn."""
    return {"dist": {"png": "fig/d.png", "alt": "d", "caption": "", "exports": [],
                     "width": 1, "height": 1}, "curves": None, "cms": {}, "rel": None}
