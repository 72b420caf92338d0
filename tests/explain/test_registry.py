"""The method registry: every spec is complete, its options are config keys, and every method
runs through an Explainer with the output its spec declares."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from reportgen import config
from reportgen.errors import ConfigError
from reportgen.explain.methods import (OUTPUT_KINDS, REGISTRY, Cost, Shape, as_map, configure,
                                       option_keys, selected)


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_spec_is_complete(name):
    spec = REGISTRY[name]
    assert spec.name == name and spec.output in OUTPUT_KINDS
    assert spec.label and len(spec.description) > 80 and spec.reference.startswith("https://")
    opts = spec.options()
    for f in dataclasses.fields(spec.options):
        assert f.metadata["doc"], f"{name}.{f.name} is undocumented"
    cost = spec.cost(opts, Shape(64, 64, 32))
    assert isinstance(cost, Cost) and cost.forward >= 1 and cost.forward_equivalents >= 1
    assert callable(spec.run)


def test_labels_are_unique_and_the_default_is_every_method():
    assert len({s.label for s in REGISTRY.values()}) == len(REGISTRY)
    assert selected(config.Config().explain.methods) == list(REGISTRY)
    assert {"occlusion", "rise"} <= set(REGISTRY)


def test_registry_imports_without_tensorflow():
    code = ("import sys, reportgen.explain.methods as m, reportgen.explain.results; "
            "print(len(m.REGISTRY), any(k.split('.')[0] in ('tensorflow', 'keras') "
            "for k in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == [str(len(REGISTRY)), "False"]


def load(tmp_path, text, overrides=()):
    path = tmp_path / "c.toml"
    path.write_text(text)
    return configure(config.load(path, list(overrides)))


def test_method_tables_are_checked_and_name_the_key(tmp_path):
    opts = load(tmp_path, "[explain.occlusion]\npatch_size = 4\n[explain.rise]\nmasks = 10\n")
    assert opts["occlusion"].patch_size == 4 and opts["occlusion"].stride == 0  # = the patch
    assert opts["rise"].masks == 10 and list(opts) == list(REGISTRY)
    with pytest.raises(ConfigError, match=r"explain\.occlusion\.patch_size.*below the minimum"):
        load(tmp_path, "[explain.occlusion]\npatch_size = -1\n")
    with pytest.raises(ConfigError, match=r"explain\.rise\.keep: expected number"):
        load(tmp_path, '[explain.rise]\nkeep = "half"\n')
    with pytest.raises(ConfigError, match=r"unknown key explain\.rise\.mask.*explain\.rise\.masks"):
        load(tmp_path, "[explain.rise]\nmask = 3\n")
    with pytest.raises(ConfigError, match=r"\[explain\.occlusoin\].*'occlusion'"):
        load(tmp_path, "[explain.occlusoin]\nstride = 3\n")
    with pytest.raises(ConfigError, match=r"explain\.methods: unknown method 'risee'.*'rise'"):
        load(tmp_path, '[explain]\nmethods = ["gradcam", "risee"]\n')


def test_overrides_reach_method_tables_and_old_keys_say_where_they_went(tmp_path):
    opts = load(tmp_path, "", ["explain.integrated_gradients.steps=3",
                               'explain.methods=["rise", "saliency"]'])
    assert list(opts) == ["rise", "saliency"]
    opts = load(tmp_path, "", ["explain.integrated_gradients.steps=3"])
    assert opts["integrated_gradients"].steps == 3
    for old, new in config.MOVED.items():
        with pytest.raises(ConfigError, match=rf"{old}: moved to {new}"):
            load(tmp_path, f"[explain]\n{old.split('.')[1]} = 4\n")


def test_keys_lists_every_method_option():
    from click.testing import CliRunner

    from reportgen.cli import main

    out = CliRunner().invoke(main, ["keys"]).output
    for key, default, _ in option_keys():
        assert f"{key} = {default!r}" in out
    assert "explain.occlusion.patch_size = 0" in out and "method_options" not in out


#: The Python API's function of each method with options, and its parameters named otherwise
#: than the option ({option: parameter}).
FUNCTIONS = {"scorecam": ("score_cam", {"channels": "max_channels"}),
             "smoothgrad": ("smooth_grad", {}),
             "integrated_gradients": ("integrated_gradients", {}),
             "occlusion": ("occlusion", {}), "rise": ("rise", {})}


@pytest.mark.parametrize("name", [n for n, s in REGISTRY.items() if dataclasses.fields(s.options)])
def test_the_python_api_defaults_are_the_builds(name):
    """One default per method option: the function a notebook calls takes it from the
    method's options, as the build, the config schema and `reportgen keys` do (SmoothGrad
    used 16 samples in the API against the build's 10, RISE 2,000 masks against 500)."""
    import inspect

    import reportgen.explain as api

    function, renamed = FUNCTIONS[name]
    params = inspect.signature(getattr(api, function)).parameters
    defaults = REGISTRY[name].options()
    for f in dataclasses.fields(defaults):
        assert params[renamed.get(f.name, f.name)].default == getattr(defaults, f.name), f.name


@pytest.fixture(scope="module")
def tiny(keras):
    inp = keras.Input((16, 16, 3))
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c1")(inp)
    h = keras.layers.Conv2D(6, 3, strides=2, padding="same", activation="relu", name="c2")(h)
    out = keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(h))
    return keras.Model(inp, out)


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_method_returns_its_declared_output(tiny, rng, name):
    from reportgen.explain import Explainer

    x = rng.uniform(0, 1, (3, 16, 16, 3)).astype(np.float32)
    before = x.copy()
    spec = REGISTRY[name]
    opts = spec.options()
    for field in ("masks", "samples", "steps", "channels"):  # keep the test fast
        if hasattr(opts, field):
            setattr(opts, field, 4)
    out = Explainer(tiny, batch_size=5).run(name, x, np.array([0, 1, 2]), opts)
    want = (3, 16, 16) if spec.output == "map" else (3, 16, 16, 3)
    assert out.shape == want and out.dtype == np.float32 and np.isfinite(out).all()
    m = as_map(name, out)
    assert m.shape == (3, 16, 16) and m.min() >= 0 and m.max() <= 1
    np.testing.assert_array_equal(x, before)


def test_options_as_run_resolve_automatic_sizes():
    """Occlusion's patch size 0 (an eighth of the side) is stated as the size it ran at."""
    from reportgen.explain.methods import options_dict

    occlusion = REGISTRY["occlusion"].options()
    assert options_dict(occlusion) == {"patch_size": 0, "stride": 0, "baseline": 0.0}
    assert options_dict(occlusion, (64, 64)) == {"patch_size": 8, "stride": 8, "baseline": 0.0}
    assert options_dict(occlusion, (224, 200))["patch_size"] == 25  # ceil(200 / 8)
    set_by_user = dataclasses.replace(occlusion, patch_size=5)
    assert options_dict(set_by_user, (64, 64)) == {"patch_size": 5, "stride": 5,
                                                   "baseline": 0.0}
    rise = REGISTRY["rise"].options()
    assert options_dict(rise, (64, 64)) == dataclasses.asdict(rise)
