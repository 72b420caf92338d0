"""A whole build of the shapes demo (small): the Strategies page, the class pages' sections,
metrics.json's strategies and concepts, the Markdown section."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

SMOKE = Path(__file__).resolve().parents[2] / "configs" / "smoke.toml"


@pytest.mark.slow
def test_a_shapes_build_has_strategies_and_concepts(tmp_path):
    from click.testing import CliRunner
    from markdown_it import MarkdownIt

    from reportgen.cli import main

    out = tmp_path / "site"
    result = CliRunner().invoke(main, [
        "build", "--config", str(SMOKE), "--out", str(out), "--quiet",
        "--set", f"data.cache_dir={tmp_path / 'cache'}", "--set", "data.shapes_per_class=40",
        "--set", "data.split=[0.5,0.1,0.4]"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    with open(out / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert metrics["failures"] == []
    assert set(metrics["strategies"]) == set(metrics["classes"])
    for name, strategies in metrics["strategies"].items():
        members = sorted(f for s in strategies for f in s["files"])
        assert members == sorted(r["file"] for r in rows if r["true"] == name)
        for s in strategies:
            right = sum(r["predicted"] == name for r in rows if r["file"] in s["files"])
            assert s["accuracy"] == pytest.approx(right / s["size"])
            assert 0 <= s["border_share"] <= 1 and s["box_outside_share"] is not None
    for concepts in metrics["concepts"].values():
        assert len(concepts) == 4 and all(c["exact"] for c in concepts)  # small_cnn: GAP
    assert metrics["strategies_method"]["neighbours"] == 10
    assert {"strategies", "concepts"} <= set(metrics["explain"]["seconds"])
    page = (out / "strategies.html").read_text()
    shown = page.count('<div class="strategy')
    assert shown == sum(len(v) for v in metrics["strategies"].values())
    assert 'href="strategies.html"' in (out / "index.html").read_text()
    assert 'id="strategies"' in (out / "class-00-circle.html").read_text()
    md = (out / "report.md").read_text()
    tokens = MarkdownIt("commonmark").enable("table").parse(md)
    headings = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]
    assert "Strategies" in headings
    assert any(t.type == "table_open" for t in tokens)
