"""The image files as stored (sizes, channels) are stated, and a model trained here reads them
near their own size, one channel when they are all grayscale (issue 26)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reportgen import config
from reportgen.data.folder import listed_files, source_info
from reportgen.pipeline.stages import train_input
from reportgen.report.pages import gray_of


def folder(root, sizes, mode="L", per_class=3):
    """Class folders a, b of PNGs of the given (width, height) sizes, in Pillow ``mode``."""
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (root / c).mkdir(parents=True, exist_ok=True)
        for k in range(per_class):
            w, h = sizes[k % len(sizes)]
            shape = (h, w) if mode == "L" else (h, w, 3)
            Image.fromarray(rng.integers(0, 255, shape, np.uint8), mode).save(
                root / c / f"{k}.png")
    return root


def test_source_info_of_small_gray_files(tmp_path):
    info = source_info(listed_files(folder(tmp_path, [(8, 8)])))
    assert (info.files, info.probed, info.gray, info.colour) == (6, 6, 6, 0)
    assert info.all_gray and info.side == 8
    assert info.describe() == "8×8 px, grayscale"


def test_source_info_of_mixed_files_and_a_sample(tmp_path):
    root = folder(tmp_path, [(40, 30), (64, 48), (50, 50)], mode="RGB")
    Image.fromarray(np.zeros((20, 20), np.uint8), "L").save(root / "a" / "gray.png")
    info = source_info(listed_files(root))
    assert info.width == (20, 64) and info.height == (20, 50)
    assert info.describe() == "from 20×20 to 64×50 px, 1 grayscale and 6 colour"
    # Shorter sides 30, 48, 50 (twice each) and 20: median 48.
    assert info.side == 48
    sampled = source_info(listed_files(root), limit=3)
    assert sampled.probed == 3 and "(from 3 of the 7 files)" in sampled.describe()


def cfg_for(root, *sets):
    return config.load(None, ["data.source=folder", f"data.path={root}", *sets])


def test_small_gray_images_are_read_at_the_small_cnns_least_size_on_one_channel(tmp_path):
    chosen = train_input(cfg_for(folder(tmp_path, [(8, 8)])))
    assert chosen.shape == (16, 16, 1)
    assert "were read at 16×16 px, the smallest input the model takes, rather than " \
           "upsampled to 64 px" in chosen.note
    assert "8×8 px, grayscale" in chosen.note and "one channel" in chosen.note


@pytest.mark.parametrize("side, want", [(28, 32), (32, 32), (48, 48), (100, 64), (640, 64)])
def test_colour_images_are_read_near_their_own_size_never_above_the_default(tmp_path, side,
                                                                              want):
    chosen = train_input(cfg_for(folder(tmp_path, [(side, side)], mode="RGB")))
    assert chosen.shape == (want, want, 3)
    assert (chosen.note is None) == (want == 64)


def test_a_size_the_user_set_is_kept_and_backbones_keep_three_channels(tmp_path):
    gray = folder(tmp_path, [(8, 8)])
    assert train_input(cfg_for(gray, "data.image_size=48")).shape == (48, 48, 1)
    backbone = train_input(cfg_for(gray, "model.architecture=mobilenetv2"))
    assert backbone.shape == (32, 32, 3)  # the backbone's least side, colour channels
    loaded = train_input(cfg_for(gray, "model.source=load", "model.path=m.keras"))
    assert loaded.shape == (64, 64, 3) and loaded.note is None  # the model decides


def test_gray_of_turns_equal_colour_channels_into_one():
    rgb = np.stack([np.full((2, 4, 4), v, np.float32) for v in (1.0, 2.0, 6.0)], axis=-1)
    assert gray_of(rgb, True).shape == (2, 4, 4, 1)
    assert np.all(gray_of(rgb, True) == 3.0)  # (1 + 2 + 6) / 3
    assert np.all(gray_of(rgb, True, total=True) == 9.0)
    assert gray_of(rgb, False) is rgb


@pytest.mark.slow
def test_a_build_on_small_gray_images_says_what_it_read_and_draws_gray_patterns(tmp_path):
    import json

    from click.testing import CliRunner

    from reportgen.cli import main

    root = folder(tmp_path / "digits", [(8, 8)], per_class=12)
    smoke = Path(__file__).resolve().parents[2] / "configs" / "smoke.toml"
    text = smoke.read_text().replace("image_size = 32\n", "")  # data.image_size not set
    (tmp_path / "c.toml").write_text(text)
    result = CliRunner().invoke(main, [
        "build", "--quiet", "--config", str(tmp_path / "c.toml"), "--out", str(tmp_path / "site"),
        "--set", "data.source=folder", "--set", f"data.path={root}", "--set",
        "data.split=[0.5, 0.25, 0.25]", "--set", "report.figure_formats=['png']"])
    assert result.exit_code == 0, result.output
    site = tmp_path / "site"
    metrics = json.loads((site / "metrics.json").read_text())
    assert metrics["data"]["source_images"]["described"] == "8×8 px, grayscale"
    assert metrics["data"]["image_size"] == [16, 16] and metrics["data"]["channels"] == 1
    assert metrics["model"]["input_shape"] == [16, 16, 1]
    assert any("were read at 16×16 px" in n for n in metrics["notes"])
    assert "the image files are 8×8 px, grayscale" in (site / "index.html").read_text()
    model_page = (site / "model.html").read_text()
    assert "8×8 px, grayscale" in model_page and "chosen from the data" in model_page
    patterns = sorted((site / "img" / "layers").glob("patterns_*.png"))
    assert patterns
    for p in patterns:
        rgb = np.asarray(Image.open(p).convert("RGB")).astype(int)
        assert np.abs(rgb[..., 0] - rgb[..., 1]).max() <= 1, p  # gray: no colour
        assert np.abs(rgb[..., 1] - rgb[..., 2]).max() <= 1, p
