"""Model sources are objects (issue 31): the stages, the cache and the report ask the source
that ``model.source`` (and, for "load", the path) picks, and a new source is one class in one
file plus one registry line. The throwaway source below is that file: it serves a model kind
reportgen does not know, and the model stage, the cache key and the report's description take
it with no other change."""

from __future__ import annotations

import hashlib
import json

import pytest

from reportgen import config
from reportgen.model import sources
from reportgen.model.sources import (
    ApplicationsSource,
    KerasFileSource,
    LoadedSource,
    SavedModelSource,
    TrainSource,
    source_for,
)


class TinyNetSource(LoadedSource):
    """A ``.tinynet`` file: JSON ``{"side": int, "classes": int}``, the one-channel small CNN
    of that input side and classes built from it. The shared checks of a loaded model (input,
    classifier output, notes) and the cache key of ``model.path`` come from LoadedSource."""

    @classmethod
    def accepts(cls, cfg) -> bool:
        return super().accepts(cfg) and cfg.model.path.endswith(".tinynet")

    def load(self):
        from reportgen.model import small_cnn

        spec = json.loads(self.path.read_text())
        return small_cnn((spec["side"], spec["side"], 1), spec["classes"])


@pytest.fixture
def registry(monkeypatch):
    """The registry, restored after the test."""
    monkeypatch.setattr(sources, "SOURCES", list(sources.SOURCES))
    return sources


def tinynet_config(tmp_path, side=16, classes=3):
    path = tmp_path / "net.tinynet"
    path.write_text(json.dumps({"side": side, "classes": classes}))
    return config.load(None, ["model.source=load", f"model.path={path}",
                              "data.image_size=32"]), path


def test_a_new_source_is_one_class_and_one_registry_line(tmp_path, registry, keras):
    from reportgen.pipeline.cache import BuildCache
    from reportgen.pipeline.stages import Run, fit

    cfg, path = tinynet_config(tmp_path)
    assert type(source_for(cfg)) is KerasFileSource  # unknown before its registry line
    registry.register(TinyNetSource)
    assert type(source_for(cfg)) is TinyNetSource
    run = Run(cfg, {}, BuildCache(cfg), figures=None, show=False)
    given = fit.given_model(run)  # the model stage, as a build runs it
    assert given.shape == (16, 16, 1) and given.preprocess is None
    assert tuple(given.model.outputs[0].shape) == (None, 3)
    assert run.notes == ["Images were resized to the model's input, 16x16 px "
                         "(data.image_size = 32 applies to training only)."]
    # The cache key holds the file's bytes: one file, so the count "1", then its bytes.
    want = hashlib.sha256(b"1" + path.read_bytes()).hexdigest()
    assert BuildCache(cfg).files_key() == want
    info = run.source.describe()
    assert (info.kind, info.trained_here, info.title_for("small_cnn")) == \
        ("load", False, "net.tinynet")


def test_the_source_checks_apply_to_a_new_source(tmp_path, registry, keras):
    """A model of two channels is refused by the checks LoadedSource shares, naming the key."""
    from reportgen.errors import ModelError

    registry.register(TinyNetSource)
    cfg, path = tinynet_config(tmp_path)
    source = source_for(cfg)
    source.load = lambda: keras.Sequential([keras.Input((8, 8, 2)), keras.layers.Flatten(),
                                            keras.layers.Dense(2, activation="softmax")])
    with pytest.raises(ModelError, match=r"^model\.path: the model expects 2 input channels"):
        source.obtain(None)


def test_the_registry_picks_each_source_by_config_and_path(tmp_path):
    saved = tmp_path / "exported"
    saved.mkdir()
    (saved / "saved_model.pb").write_bytes(b"")
    rows = [(["model.source=train"], TrainSource),
            (["model.source=load", "model.path=m.keras"], KerasFileSource),
            (["model.source=load", f"model.path={tmp_path}"], KerasFileSource),  # refuses it
            (["model.source=load", f"model.path={saved}"], SavedModelSource),
            (["model.source=applications", "data.source=images", "data.path=photos",
              "model.architecture=mobilenetv2"], ApplicationsSource)]
    for sets, want in rows:
        assert type(source_for(config.load(None, sets))) is want, sets


def test_what_each_source_tells_the_cache_and_the_report(tmp_path):
    apps = source_for(config.load(None, [
        "model.source=applications", "data.source=images", "data.path=photos",
        "model.architecture=vgg16", "model.input_size=48"]))
    assert apps.key_parts() == ["vgg16", "none", 48] and apps.key_files() == []
    assert apps.calibrates() and not apps.trains
    assert apps.describe().title_for("vgg16") == "keras.applications vgg16"
    train = source_for(config.load(None, []))
    assert train.trains and train.key_parts() is None and not train.absent_classes_ok
    assert train.describe().title_for("small_cnn") == "small_cnn trained here"
    loaded = source_for(config.load(None, ["model.source=load",
                                           f"model.path={tmp_path / 'gone.keras'}"]))
    assert loaded.key_files() == [] and loaded.absent_classes_ok  # no file: nothing to hash


def test_every_name_of_the_model_package_imports():
    """``from reportgen.model import X`` works for every public name (loaded on first use)."""
    import reportgen.model as mdl

    assert sorted(mdl.__all__) == sorted(mdl._HOME_OF)
    for name in mdl.__all__:
        assert getattr(mdl, name) is not None, name
    with pytest.raises(AttributeError):
        mdl.no_such_name  # noqa: B018
