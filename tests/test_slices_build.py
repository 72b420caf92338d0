"""data.metadata through the command line: a wrong file is one line naming it (exit 2, before
TensorFlow loads); a whole build slices its test images by the metadata (slow)."""

from __future__ import annotations

import csv
import io
import json
import re

import numpy as np
import pytest
from test_bad_input import assert_one_line_error, build, make_folder


@pytest.fixture
def folder(tmp_path):
    return make_folder(tmp_path / "data", n=40)


def _csv(tmp_path, text: str):
    path = tmp_path / "meta.csv"
    path.write_text(text, encoding="utf-8")
    return f"data.metadata={path}"


@pytest.mark.parametrize("text,needles", [
    ("name,camera\nred/img_0.png,phone\n", ["no 'file' column", "'name', 'camera'"]),
    ("file,camera\nred/img_0.png,phone\nred/img_0.png,dslr\n",
     ["'red/img_0.png' is listed twice", "lines 2 and 3"]),
    ("file,camera\nred/img_0.png,phone\npurple/img_0.png,x\nred/img_99.png,y\n",
     ["2 file(s) are not images of the data set", "'purple/img_0.png', 'red/img_99.png'",
      "such as 'blue/img_0.png'"]),
    ("file,camera\nred/img_0.png\n", ["line 2: 1 cells, the header has 2"]),
])
def test_bad_metadata_is_one_line_naming_the_file(tmp_path, folder, text, needles):
    result = build(tmp_path, _csv(tmp_path, text), data=folder)
    assert_one_line_error(result, 2, "data.metadata", "meta.csv", *needles)
    assert not (tmp_path / "site").exists()


def test_a_missing_metadata_file_is_named(tmp_path, folder):
    result = build(tmp_path, f"data.metadata={tmp_path / 'nope.csv'}", data=folder)
    assert_one_line_error(result, 2, "data.metadata: file not found", "nope.csv")


def _metadata(folder, rng) -> dict[str, dict[str, str]]:
    rows = {}
    for f in sorted(folder.rglob("*.png")):
        rel = f.relative_to(folder).as_posix()
        rows[rel] = {"camera": str(rng.choice(["phone", "dslr"])),
                     "age": f"{rng.uniform(20, 80):.1f}", "id": rel}
    return rows


@pytest.mark.slow
def test_a_build_slices_the_test_images_by_their_metadata(tmp_path, folder, md_tables):
    rng = np.random.default_rng(0)
    meta = _metadata(folder, rng)
    lines = ["file,camera,age,id"] + [f"{f},{m['camera']},{m['age']},{m['id']}"
                                      for f, m in meta.items()]
    result = build(tmp_path, _csv(tmp_path, "\n".join(lines) + "\n"),
                   "data.split=[0.4, 0.1, 0.5]", data=folder)
    assert result.exit_code == 0, result.output
    site = tmp_path / "site"
    metrics = json.loads((site / "metrics.json").read_text())
    preds = list(csv.DictReader(io.StringIO((site / "predictions.csv").read_text())))
    right = {r["file"]: r["true"] == r["predicted"] for r in preds}
    # Every slice's count and accuracy, recomputed from predictions.csv and the metadata.
    for s in (s for s in metrics["slices"] if s["column"] == "camera"):
        files = [f for f in right if meta[f]["camera"] == s["value"]]
        assert s["n"] == len(files)
        assert s["accuracy"] == pytest.approx(np.mean([right[f] for f in files]))
    ages = [s for s in metrics["slices"] if s["column"] == "age"]
    assert sum(s["n"] for s in ages) == len(preds) and len(ages) == 4  # quartile bins
    search = metrics["slice_search"]
    assert search["columns"]["id"].startswith("not sliced")
    assert search["columns"]["age"] == "quartile bins" and search["metadata"] == "meta.csv"
    assert isinstance(metrics["weak_slices"], list)
    page = (site / "slices.html").read_text()
    assert re.search(r"<td>camera\s*</td><td>phone\s*</td>", page)
    assert "<code>meta.csv</code>" in page
    assert 'src="fig/slices_forest.png"' in page
    assert 'href="slices.html"' in (site / "index.html").read_text()
    md = (site / "report.md").read_text()
    assert "### Slices" in md
    assert any(t[0][:2] == ["column", "value"] for t in md_tables(md))
    # A changed metadata file is read again by a build that reuses the predictions (cache).
    (tmp_path / "meta.csv").write_text("file,lens\n" + "".join(
        f"{f},{'wide' if i % 2 else 'tele'}\n" for i, f in enumerate(meta)), encoding="utf-8")
    again = build(tmp_path, f"data.metadata={tmp_path / 'meta.csv'}",
                  "data.split=[0.4, 0.1, 0.5]", data=folder)
    assert again.exit_code == 0, again.output
    assert "Reusing the predictions and explanations" in again.stderr
    metrics = json.loads((site / "metrics.json").read_text())
    assert {(s["column"], s["value"]) for s in metrics["slices"]} == {("lens", "wide"),
                                                                      ("lens", "tele")}
    assert sum(s["n"] for s in metrics["slices"]) == len(preds)
