"""Config schema: defaults, overrides, and errors that name the key."""

from __future__ import annotations

import pytest

from reportgen import config
from reportgen.errors import ConfigError


def write(tmp_path, text):
    p = tmp_path / "c.toml"
    p.write_text(text)
    return p


def test_every_key_has_default_and_description():
    keys = config.all_keys()
    assert len(keys) >= 20
    for key, _default, doc in keys:
        assert doc and doc.strip() == doc, key
    names = {k for k, _, _ in keys}
    for fixed in ("data.source", "data.path", "data.image_size", "model.source", "model.path",
                  "model.architecture", "model.weights", "training.epochs", "training.seed"):
        assert fixed in names


def test_empty_file_is_the_defaults(tmp_path):
    cfg = config.load(write(tmp_path, ""))
    assert cfg.data.source == "shapes" and cfg.model.source == "train"


def test_shipped_configs_load():
    root = config.default_config_path().parent
    for name in ("demo.toml", "smoke.toml", "transfer.toml"):
        config.load(root / name)


def test_override_reads_toml_then_string(tmp_path):
    cfg = config.load(write(tmp_path, ""), ["training.epochs=3", "report.title=My run",
                                            "data.split=[0.5, 0.25, 0.25]"])
    assert cfg.training.epochs == 3
    assert cfg.report.title == "My run"
    assert cfg.data.split == [0.5, 0.25, 0.25]


def test_relative_paths_resolve_against_config_folder(tmp_path):
    cfg = config.load(write(tmp_path, '[data]\nsource = "folder"\npath = "imgs"\n'))
    assert cfg.resolve(cfg.data.path) == (tmp_path / "imgs").resolve()


@pytest.mark.parametrize("text, overrides, needle", [
    ("[data]\nimage_sise = 32\n", [], "data.image_sise; did you mean 'data.image_size'"),
    ("[trianing]\nepochs = 1\n", [], "unknown section [trianing]; did you mean 'training'"),
    ("[training]\nepochs = \"ten\"\n", [], "training.epochs: expected integer, got 'ten'"),
    ("[training]\nepochs = -1\n", [], "training.epochs: -1 is below the minimum 1"),
    ("", ["data.split=[0.5, 0.5, 0.5]"], "data.split: fractions must be >= 0 and sum to 1"),
    ("", ["data.source=folder"], "data.path: required"),
    ("", ["model.source=load"], "model.path: required"),
    ("", ["model.source=maybe"], "model.source: 'maybe' is not one of"),
    ("", ["training.epochs"], "expected section.key=value"),
    ("", ["model.safe_mode=yes"], "model.safe_mode: expected boolean, got 'yes'"),
    ("", ["model.preprocess=tf"], "model.preprocess: 'tf' is for a loaded model "
                                  '(model.source = "load"); with model.source = "train"'),
    ("[data]\nsplit = \"0.7\"\n", [], "data.split: expected list, got '0.7'"),
])
def test_errors_name_the_key(tmp_path, text, overrides, needle):
    with pytest.raises(ConfigError) as e:
        config.load(write(tmp_path, text), overrides)
    assert needle in str(e.value)
    assert e.value.exit_code == 2


def test_invalid_toml_gives_line_and_column(tmp_path):
    with pytest.raises(ConfigError, match=r"c\.toml: invalid TOML: .*line 2, column"):
        config.load(write(tmp_path, "[data]\nsource = \n"))


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        config.load(tmp_path / "nope.toml")


def test_a_bare_name_is_a_list_of_one(tmp_path):
    cfg = config.load(write(tmp_path, '[explain]\nmethods = "gradcam"\n'),
                      ["report.figure_formats=png", "explain.classes=circle"])
    assert cfg.explain.methods == ["gradcam"]
    assert cfg.report.figure_formats == ["png"] and cfg.explain.classes == ["circle"]


def test_preprocess_is_accepted_for_a_loaded_model(tmp_path):
    cfg = config.load(write(tmp_path, '[model]\nsource = "load"\npath = "m.keras"\n'
                                      'preprocess = "tf"\n'))
    assert cfg.model.preprocess == "tf"


def test_the_demo_settings_apply_to_the_demo_data_only(tmp_path):
    demo = config.load()  # no --config: the built-in demo
    assert demo.report.title.startswith("Shapes demo") and demo.data.source == "shapes"
    user = config.load(None, ["data.source=folder", f"data.path={tmp_path}"])
    fresh = config.Config()
    assert user.report.title == fresh.report.title == ""  # made from the data and the model
    assert user.to_dict() == {**fresh.to_dict(), "data": {**fresh.to_dict()["data"],
                                                          "source": "folder",
                                                          "path": str(tmp_path)}}
    assert user.given == {"data.source", "data.path"}
    # A config file is the user's: its settings apply whatever the data.
    own = config.load(write(tmp_path, '[report]\ntitle = "Mine"\n'), ["data.source=folder",
                                                                       "data.path=x"])
    assert own.report.title == "Mine"


def test_training_seed_and_split_seed_are_separate_keys(tmp_path):
    cfg = config.load(write(tmp_path, ""), ["training.seed=5"])
    assert (cfg.training.seed, cfg.data.split_seed) == (5, 0)


def test_plural_quoted_and_duration_read_as_english():
    from reportgen.text import duration, plural, quoted

    assert [plural(n, "photo") for n in (0, 1, 30, 1200)] == [
        "0 photos", "1 photo", "30 photos", "1,200 photos"]
    assert plural(1, "class", "classes") == "1 class" and plural(2, "class", "classes") \
        == "2 classes"
    assert quoted(["angry"]) == "'angry'"
    assert quoted(["angry", "disgust"]) == "'angry' and 'disgust'"
    assert quoted(["a", "b", "c"]) == "'a', 'b' and 'c'"
    assert quoted(list("abcdefghij"), limit=3) == "'a', 'b', 'c' and 7 more"
    assert [duration(s) for s in (0.001, 0.123, 12.34, 45.4, 198.838, 3725.2)] == [
        "0.001 s", "0.12 s", "12.3 s", "45 s", "3 min 19 s", "1 h 02 min"]
