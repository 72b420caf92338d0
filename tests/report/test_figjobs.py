"""Figures drawn by a worker process: same files and sizes as drawn inline, cached, cleaned up."""

from __future__ import annotations

import numpy as np

from reportgen import figures as figs
from reportgen.report.figjobs import Figures


class FakeSite:
    def __init__(self, root):
        self.root = root

    def path(self, rel):
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        return p


def draw(figures, tmp_path, name):
    cm = [[5, 1], [2, 7]]
    info = figures.add("cm", figs.confusion_matrix, cm, ["a", "b"], title="T", alt="alt text",
                       caption="cap")
    assert info["width"] is None  # known once written
    site = FakeSite(tmp_path / name)
    figures.write_into(site)
    return info, site.root


def test_worker_draws_the_same_figure_as_inline(tmp_path):
    with Figures(("png", "svg"), parallel=False) as inline:
        want, inline_root = draw(inline, tmp_path, "inline")
    with Figures(("png", "svg"), parallel=True, warm=True) as worker:
        got, worker_root = draw(worker, tmp_path, "worker")
        assert worker._pool is not None  # really ran in another process
        scratch = worker._tmp
    assert not scratch.exists()
    assert got == want and got["width"] > 0 and got["height"] > 0
    assert got["exports"] == [{"href": "fig/cm.svg", "label": "SVG"}]
    for fmt in ("png", "svg"):
        assert (worker_root / f"fig/cm.{fmt}").read_bytes() == \
            (inline_root / f"fig/cm.{fmt}").read_bytes()


def test_figure_cache_is_used_the_second_time(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    with Figures(("png",), cache, parallel=False) as first:
        want, _ = draw(first, tmp_path, "one")
    assert len(list(cache.iterdir())) == 1

    def fail(*a, **k):
        raise AssertionError("drawn again despite the cache")

    monkeypatch.setattr("reportgen.report.figjobs._draw", fail)
    with Figures(("png",), cache, parallel=True) as second:
        got, root = draw(second, tmp_path, "two")
        assert second._pool is None  # nothing to draw, no worker started
    assert got == want and (root / "fig/cm.png").stat().st_size > 0
    assert np.asarray(list(cache.iterdir())).size == 1
