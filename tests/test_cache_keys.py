"""The cache never serves a stale result: every input that can change the output is part of
its key. Each input is changed in turn: every config key outside [report], [evaluate] and [card]
(and every method option), the image files, their names, the annotations, the class order, the
model file and a weights file. The [report], [evaluate] and [card] keys are applied to a cached
build instead, without recomputing."""

from __future__ import annotations

import dataclasses
import json

import pytest
from test_bad_input import SIZE, make_folder

from reportgen import config
from reportgen.data import load_dataset
from reportgen.explain.methods import option_keys
from reportgen.pipeline.cache import BuildCache, data_hash

BASE = ["data.source=folder", "data.path=data", "data.split=[0.5, 0.25, 0.25]",
        "model.source=train"]


def changed(key: str, default):
    """A valid value of ``key`` other than ``default``."""
    section, name = key.split(".")[0], key.split(".")[-1]
    if key.count(".") == 2:  # a method option
        method = key.split(".")[1]
        from reportgen.explain.methods import REGISTRY
        cls = type(REGISTRY[method].options())
    else:
        cls = config.SECTIONS[section]
    f = {f.name: f for f in dataclasses.fields(cls)}[name]
    meta = f.metadata
    if isinstance(default, bool):
        return not default
    if meta.get("choices"):
        return next(c for c in meta["choices"] if c != default)
    if isinstance(default, int):
        hi = meta.get("maximum")
        return default - 1 if hi is not None and default + 1 > hi else default + 1
    if isinstance(default, float):
        return default / 2 if default else 0.5
    if isinstance(default, list):
        return {"data.split": [0.6, 0.2, 0.2], "data.classes": ["blue", "green", "red"],
                "explain.methods": ["gradcam"], "explain.classes": ["red"],
                "explain.pattern_layers": ["conv1"], "report.figure_formats": ["png", "pdf"],
                "card.authors": ["Ada"]}[key]
    return "other"


def toml(value) -> str:
    return json.dumps(value) if not isinstance(value, bool) else str(value).lower()


SOURCE_KEYS = {"data.source", "model.source"}  # they change what is read: tested below
#: Sections applied to the cached predictions of an earlier build (never keyed).
APPLIED = ("report.", "evaluate.", "card.")
#: ... but for these: the galleries and the maps of the predicted class were chosen with them.
KEYED = ("evaluate.threshold",)


def keys_outside_report():
    rows = [(k, d) for k, d, _ in config.all_keys() + option_keys()
            if (not k.startswith(APPLIED) or k in KEYED) and k not in SOURCE_KEYS]
    return rows


@pytest.fixture
def project(tmp_path, monkeypatch):
    make_folder(tmp_path / "data")
    make_folder(tmp_path / "other")  # the same images in another folder
    monkeypatch.chdir(tmp_path)
    return tmp_path


def report_key(overrides, root=None) -> str:
    cfg = config.load(None, BASE + list(overrides))
    ds = load_dataset(cfg.resolve(cfg.data.path), size=(SIZE, SIZE), split=cfg.data.split,
                      classes=cfg.data.classes)
    return BuildCache(cfg).report_key(data_hash(ds))


#: Keys valid only beside others: model.preprocess is for a loaded model.
CONTEXT = {"model.preprocess": ["model.source=load", "model.path=m.keras"]}


@pytest.mark.parametrize("key,default", keys_outside_report(), ids=lambda v: str(v)[:40])
def test_every_setting_outside_report_is_in_the_key(project, key, default):
    context = CONTEXT.get(key, [])
    base = report_key(context)
    value = changed(key, default)
    assert report_key([*context, f"{key}={toml(value)}"]) != base, (key, value)


@pytest.mark.parametrize("key,default", [(k, d) for k, d, _ in config.all_keys()
                                         if k.startswith(APPLIED) and k != "report.cache"
                                         and k not in KEYED])
def test_report_settings_are_applied_to_a_cached_build_not_keyed(project, key, default):
    value = changed(key, default)
    assert report_key([f"{key}={toml(value)}"]) == report_key([])


def test_the_images_their_names_boxes_and_class_order_are_in_the_key(project):
    data = project / "data"
    keys = [report_key([])]
    (data / "red" / "img_0.png").write_bytes((data / "blue" / "img_1.png").read_bytes())
    keys.append(report_key([]))  # one image's content
    (data / "red" / "img_0.png").rename(data / "red" / "img_9.png")
    keys.append(report_key([]))  # one file's name
    (data / "annotations.json").write_text(json.dumps({"red/img_9.png": {"box": [1, 1, 9, 9]}}))
    keys.append(report_key([]))  # a new annotations file
    (data / "annotations.json").write_text(json.dumps({"red/img_9.png": {"box": [1, 1, 8, 9]}}))
    keys.append(report_key([]))  # a changed box
    keys.append(report_key(["data.classes=['red', 'green', 'blue']"]))  # class order
    assert len(set(keys)) == len(keys)


def test_the_model_file_and_a_weights_file_are_in_the_key(project):
    model = project / "m.keras"
    weights = project / "w.h5"
    model.write_bytes(b"one")
    weights.write_bytes(b"one")
    load = ["model.source=load", f"model.path={model}"]
    a = report_key(load)
    model.write_bytes(b"two")
    b = report_key(load)
    w1 = report_key(["model.architecture=mobilenetv2", f"model.weights={weights}"])
    weights.write_bytes(b"two")
    w2 = report_key(["model.architecture=mobilenetv2", f"model.weights={weights}"])
    assert a != b and w1 != w2


def test_the_data_source_is_in_the_key(project):
    from reportgen.data import load_images

    folder = load_dataset(project / "data", size=(SIZE, SIZE), split=[0.5, 0.25, 0.25])
    photos = load_images(project / "data", size=(SIZE, SIZE), class_names=folder.class_names)
    assert data_hash(folder) != data_hash(photos)


def test_an_empty_weights_setting_names_no_file(project):
    """``model.weights = ""`` means no weights file: the working directory is not hashed."""
    cfg = config.load(None, BASE + ["model.weights=''"])
    assert BuildCache(cfg).files_key() is None
