"""The Strategies page, the class pages' sections, metrics.json and report.md, from made-up
maps with a planted corner (no TensorFlow)."""

from __future__ import annotations

import html
import json

import numpy as np
import pytest

from reportgen.evaluate import split_metrics
from reportgen.explain.dataset import concepts as cn
from reportgen.explain.dataset import strategies as st
from reportgen.report import SiteWriter, gather, write_site
from reportgen.report.figjobs import Figures
from reportgen.data.folder import Split

N = 40  # test images, 20 per class; class 0's first 8 decided by the lower-right corner


@pytest.fixture
def planted(inputs, rng):
    ds, ex = inputs.ds, inputs.explained
    labels = np.arange(N) % 2
    ds.splits["test"] = Split(images=rng.integers(0, 256, (N, 16, 16, 3), dtype=np.uint8),
                              labels=labels, paths=[f"x/{i}.png" for i in range(N)],
                              boxes=np.tile(np.float32([4, 4, 12, 12]), (N, 1)))
    probs = np.full((N, 2), 0.2)
    probs[np.arange(N), labels] = 0.8
    inputs.probs["test"] = probs
    inputs.metrics["test"] = split_metrics(probs, labels, ["a", "b"], 3)
    y, x = np.mgrid[0:4, 0:4] + 0.5
    maps = np.exp(-((y - 2) ** 2 + (x - 2) ** 2)) + 0.02 * rng.random((N, 4, 4))
    corner = [i for i in range(N) if labels[i] == 0][:8]
    maps[corner] = np.exp(-((y - 3.8) ** 2 + (x - 3.8) ** 2) / 0.3)
    ex.test_maps = maps.astype(np.float16)
    st.explain_strategies(ex, ds.splits["test"], probs)
    a = rng.random((4, 2, 2, 3))
    ex.concepts = [cn.class_concepts(0, np.arange(0, 8, 2), a, np.ones_like(a) / 4,
                                     np.full(4, 2.0), lambda r, c: (0, 0, 7, 7))]
    return inputs, corner


def test_the_planted_corner_is_flagged_everywhere(planted, drawn, tmp_path, md_tables):
    from markdown_it import MarkdownIt

    inputs, corner = planted
    content = gather(inputs, drawn)
    with Figures(["png"], parallel=False) as figures, SiteWriter(tmp_path / "site") as site:
        write_site(site, content, figures, {}, show_progress=False)
        site.commit()
    out = tmp_path / "site"
    metrics = json.loads((out / "metrics.json").read_text())
    flagged = [s for s in metrics["strategies"]["a"] if s["flagged"]]
    assert len(flagged) == 1 and flagged[0]["files"] == [f"x/{i}.png" for i in corner]
    assert flagged[0]["box_outside_share"] > 0.9 and flagged[0]["ci"][0] <= 1.0
    assert not any(s["flagged"] for s in metrics["strategies"]["b"])
    assert sum(s["size"] for s in metrics["strategies"]["b"]) == N // 2
    assert len(metrics["concepts"]["a"]) == 3 and "b" not in metrics["concepts"]
    sentence = "8 of 20 'a' images are decided by the lower-right corner"
    page = html.unescape((out / "strategies.html").read_text())
    assert sentence in page and 'href="strategies.html"' in page
    for rel, shown in (("index.html", True), ("class-00-a.html", True),
                       ("class-01-b.html", False)):
        assert (sentence in html.unescape((out / rel).read_text())) == shown, rel
    md = (out / "report.md").read_text()
    MarkdownIt("commonmark").enable("table").parse(md)
    rows = [r for t in md_tables(md) for r in t if r and r[0] in ("a", "b")]
    assert ["a", "yes"] in [[r[0], r[-1]] for r in rows]
    assert inputs.explained.strategy_ids[corner].tolist() == [
        inputs.explained.strategy_ids[corner[0]]] * 8


def test_the_explorer_colours_and_filters_by_strategy(planted, drawn, monkeypatch):
    """explore.html's data gives every clustered test image its strategy, numbered as on the
    Strategies page: the planted corner images share one flagged strategy, and no image of
    class a is in a strategy of class b."""
    from reportgen.report.strategies import strategy_colouring

    inputs, corner = planted
    colouring = strategy_colouring(inputs.explained, ["a", "b"])["strategy"]
    values = colouring.values["test"]
    assert sorted(values) == list(range(N))  # 20 per class: every image clustered
    assert {values[i] for i in corner} == {next(v for v in values.values() if "flagged" in v)}
    assert sum("flagged" in v for v in values.values()) == len(corner)
    labels = inputs.ds.splits["test"].labels
    assert all(v.startswith("a · ") == (labels[i] == 0) for i, v in values.items())
    from reportgen.report import explorer

    given = {}
    page = explorer.explorer_page
    monkeypatch.setattr(explorer, "explorer_page", lambda *a, **k: given.update(
        extra=a[4] if len(a) > 4 else k.get("extra")) or page(*a, **k))
    gather(inputs, drawn)  # the build hands the same colouring to the explorer's page
    assert given["extra"]["strategy"].values == colouring.values
    inputs.explained.strategies = []
    assert strategy_colouring(inputs.explained, ["a", "b"]) == {}
