"""The data has its own seed: data.split_seed decides which images are tested, training.seed
does not (two seeds of one model share a test set and compare)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from reportgen import config
from reportgen.pipeline import stages


def folder(root, classes=3, per_class=20):
    rng = np.random.default_rng(0)
    for c in range(classes):
        (root / f"c{c}").mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(
                root / f"c{c}" / f"{i}.png")
    return root


def split_paths(root, *sets):
    cfg = config.load(None, ["data.source=folder", f"data.path={root}", *sets])
    run = stages.Run(cfg, {}, None, None, show=False)
    return stages.read_data(run, (8, 8, 1)).ds.splits["test"].paths


def test_training_seed_keeps_the_test_set_and_split_seed_moves_it(tmp_path):
    root = folder(tmp_path / "data")
    base = split_paths(root)
    assert len(base) == 9  # 15 % of 20 per class, 3 classes
    assert split_paths(root, "training.seed=7") == base
    assert split_paths(root, "data.split_seed=7") != base
