"""Validate before working: every config value and input file is checked before the
expensive work, layer names as soon as the model exists, and a diverged training run ends with
a clear message. Several instances per rule."""

from __future__ import annotations

import json

import numpy as np
import pytest

from reportgen import config
from reportgen.config import TrainingConfig
from reportgen.errors import ConfigError, DataError, ModelError

from test_bad_input import (assert_one_line_error, build, folder, load_model_args,  # noqa: F401
                            saved, tiny_model)


def load(tmp_path, text, overrides=()):
    path = tmp_path / "c.toml"
    path.write_text(text)
    cfg = config.load(path, list(overrides))
    from reportgen.explain.methods import configure
    configure(cfg)
    return cfg


@pytest.mark.parametrize("override,needle", [
    ("training.seed=4294967296", "training.seed: 4294967296 is above the maximum"),
    ("training.seed=1099511627776", "training.seed"),
    ("training.learning_rate=nan", "training.learning_rate: nan is not a finite number"),
    ("training.learning_rate=inf", "training.learning_rate: inf is not a finite number"),
    ("training.learning_rate=-inf", "training.learning_rate"),
    ("explain.smoothgrad.noise=nan", "explain.smoothgrad.noise: nan is not a finite number"),
    ("explain.rise.keep=inf", "explain.rise.keep"),
    ("data.split=[0.5, nan, 0.5]", "data.split: expected finite numbers"),
    ("report.figure_formats=[{a = 1}]", "report.figure_formats"),
    ('report.figure_formats=["png", ["svg"]]', "report.figure_formats"),
    ("report.figure_formats=[1]", "report.figure_formats"),
    ("explain.pattern_layers=[3]", "explain.pattern_layers: expected layer names"),
    ('explain.pattern_layers=[""]', "explain.pattern_layers"),
])
def test_bad_values_are_refused_at_load(tmp_path, override, needle):
    with pytest.raises(ConfigError, match=needle.replace("[", r"\[").replace(".", r"\.")):
        load(tmp_path, "", [override])


def test_the_largest_seed_is_accepted(tmp_path):
    assert load(tmp_path, "", ["training.seed=4294967295"]).training.seed == 2**32 - 1


@pytest.mark.parametrize("layers", ['["nope"]', '["conv", "conv/x"]'])
def test_unknown_layers_end_the_build_before_predicting(keras, tmp_path, folder, saved, layers):
    m = saved(tiny_model(keras))
    result = build(tmp_path, *load_model_args(m), f"explain.pattern_layers={layers}",
                   data=folder)
    assert_one_line_error(result, 2, "explain.pattern_layers", "no layer", "conv")
    assert not (tmp_path / "site").exists()


@pytest.mark.parametrize("key,value", [("explain.layer", "conv99"),
                                       ("explain.pattern_layers", '["conv99"]')])
def test_unknown_layers_of_a_model_to_train_end_before_training(tmp_path, key, value):
    cache = tmp_path / "cache"
    result = build(tmp_path, f"{key}={value}", f"data.cache_dir={cache}")
    assert_one_line_error(result, 2, key, "conv99", "conv6")
    assert not list((cache / "builds").glob("train-*"))  # nothing was trained


def test_diverged_training_says_so(keras, rng):
    from reportgen.model import train

    inp = keras.Input((4,))
    model = keras.Model(inp, keras.layers.Dense(2, activation="softmax")(
        keras.layers.Dense(8, activation="relu")(inp)))
    x = rng.normal(size=(32, 4)).astype(np.float32) * 1e20
    with pytest.raises(ModelError, match="training.learning_rate: training diverged"):
        train(model, (x, rng.integers(0, 2, 32)), None, TrainingConfig(
            epochs=3, batch_size=8, learning_rate=1e10, patience=1, seed=0))


@pytest.mark.parametrize("content", [
    '[1, 2, 3]',
    '{"red/img_0.png": {"box": [1, 2, 3]}}',
    '{"red/img_0.png": {"box": ["a", 0, 4, 4]}}',
    '{"red/img_0.png": {"box": [5, 0, 2, 4]}}',
    '{"red/img_0.png": [0, 0, 4, 4]}',
    '{"red/img_0.png": {"box": [0, 0, 4, NaN]}}',
    '{"red/img_0.png": {"box": [0, 0, 4, true]}}',
])
def test_malformed_annotations_end_in_one_line_naming_the_file(tmp_path, folder, content):
    (folder / "annotations.json").write_text(content)
    result = build(tmp_path, data=folder)
    assert_one_line_error(result, 2, "annotations.json")


def test_a_valid_annotations_file_gives_boxes(tmp_path, folder):
    from reportgen.data import load_dataset

    (folder / "annotations.json").write_text(json.dumps(
        {f"red/img_{i}.png": {"box": [1, 2, 10, 12]} for i in range(6)}))
    ds = load_dataset(folder, size=(16, 16), split=[0.5, 0.25, 0.25])
    assert ds.has_boxes
    with pytest.raises(DataError):
        (folder / "annotations.json").write_text("{not json")
        load_dataset(folder, size=(16, 16), split=[0.5, 0.25, 0.25])


@pytest.mark.slow
def test_a_new_or_changed_annotations_file_is_never_served_from_the_cache(keras, tmp_path,
                                                                          folder, saved):
    """The cache stays on: the pointing game must follow the boxes."""
    m = saved(tiny_model(keras))
    args = (*load_model_args(m), f"data.cache_dir={tmp_path / 'cache'}")
    assert build(tmp_path, *args, data=folder).exit_code == 0

    def pointing():
        return json.loads((tmp_path / "site" / "metrics.json").read_text())["explain"][
            "pointing_game"]

    assert pointing() == {}
    boxes = {p.relative_to(folder).as_posix(): {"box": [0, 0, 16, 16]}
             for p in folder.rglob("*.png")}
    (folder / "annotations.json").write_text(json.dumps(boxes))
    again = build(tmp_path, *args, data=folder)
    assert again.exit_code == 0 and "Reusing the predictions" not in again.output
    assert pointing()["gradcam"]["score"] == 1.0  # every map peaks inside a full-image box
    for rel in boxes:
        boxes[rel]["box"] = [0, 0, 1, 1]  # a one-pixel box: the peaks are now mostly outside
    (folder / "annotations.json").write_text(json.dumps(boxes))
    third = build(tmp_path, *args, data=folder)
    assert third.exit_code == 0 and "Reusing the predictions" not in third.output
    assert pointing()["gradcam"]["score"] < 1.0
