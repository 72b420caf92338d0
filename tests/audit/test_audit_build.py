"""A whole build on a data set with planted issues: data.html, the CSV files and metrics.json
``data_issues`` find them."""

from __future__ import annotations

import csv
import io
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from reportgen.report.data_page import COLUMNS

pytestmark = pytest.mark.slow

COLOURS = {"red": (200, 40, 40), "green": (40, 200, 40), "blue": (40, 40, 200)}
COUNTS = {"train": 20, "val": 6, "test": 8}


def textured(rng, colour, side=32):
    """A class colour under a random 8x8 block texture (+-40): the texture drives the
    perceptual hash, the colour the class."""
    blocks = rng.integers(-40, 41, (8, 8, 1))
    tex = np.repeat(np.repeat(blocks, side // 8, 0), side // 8, 1)
    return np.clip(np.array(colour) + tex + rng.normal(0, 3, (side, side, 3)), 0, 255
                   ).astype(np.uint8)


@pytest.fixture(scope="module")
def planted_site(tmp_path_factory, reencode):
    from click.testing import CliRunner

    from reportgen.cli import main

    rng = np.random.default_rng(5)
    root = tmp_path_factory.mktemp("planted") / "photos"
    for split, n in COUNTS.items():
        for name, colour in COLOURS.items():
            (root / split / name).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(textured(rng, colour)).save(root / split / name / f"{i}.png")
    shutil.copyfile(root / "train/red/3.png", root / "test/red/leak_exact.png")
    near = reencode(np.asarray(Image.open(root / "train/green/5.png")))
    Image.fromarray(near).save(root / "test/green/leak_near.png")
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
        root / "test/blue/noise.png")
    Image.fromarray(textured(rng, COLOURS["red"])).save(root / "test/blue/flip.png")
    out = root.parent / "site"
    result = CliRunner().invoke(main, [
        "build", "--config", "configs/smoke.toml", "--out", str(out), "--quiet",
        "--set", "data.source=folder", "--set", f"data.path={root}",
        "--set", f"data.cache_dir={root.parent / 'cache'}", "--set", "training.epochs=6",
        "--set", "report.title=Planted"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out


def read_csv(path):
    return list(csv.DictReader(io.StringIO(path.read_text("utf-8"))))


def test_the_planted_issues_are_on_the_data_page_in_csv_and_metrics(planted_site):
    site = planted_site
    metrics = json.loads((site / "metrics.json").read_text("utf-8"))
    issues = metrics["data_issues"]
    test_files = [r["file"] for r in read_csv(site / "predictions.csv")]
    leak_exact, leak_near, noise, flip = (
        next(f for f in test_files if f.endswith(end)) for end in
        ("red/leak_exact.png", "green/leak_near.png", "blue/noise.png", "blue/flip.png"))
    # The two planted copies, and no other pair: distinct images are never near duplicates.
    pairs = [(d["split_a"], d["split_b"], d["b"], d["kind"]) for d in issues["duplicates"]]
    assert pairs == [("train", "test", leak_exact, "exact"), ("train", "test", leak_near, "near")]
    assert issues["duplicates"][0]["a"].endswith("train/red/3.png")
    assert issues["duplicates"][1]["a"].endswith("train/green/5.png")
    summary = issues["summary"]
    n = len(test_files)
    assert summary["test_in_train"]["count"] == 2 and summary["test_in_train"]["n"] == n
    assert summary["accuracy"]["without_copies"]["n"] == n - 2
    assert summary["accuracy"]["all"]["count"] == round(
        metrics["splits"]["test"]["accuracy"] * n)
    # The noise image is the most outlying test image.
    assert issues["outliers"][0]["file"] == noise
    # The red image filed as blue is a likely label error, red suggested.
    flips = [d for d in issues["label_errors"] if d["file"] == flip]
    assert flips and flips[0]["given"] == "blue" and flips[0]["suggested"] == "red"
    for name, cols in COLUMNS.items():
        rows = read_csv(site / "data" / f"{name}.csv")
        assert [list(r) for r in rows[:1]] in ([cols], [])
        assert [r["file" if "file" in cols else "b"] for r in rows] == \
            [d["file" if "file" in cols else "b"] for d in issues[name]]
    page = (site / "data.html").read_text("utf-8")
    assert "Likely label errors" in page and "data/duplicates.csv" in page
    assert 'href="data.html"' in (site / "index.html").read_text("utf-8")
    assert "### Data issues" in (site / "report.md").read_text("utf-8")
    assert metrics["timings_s"]["audit"] < 30
