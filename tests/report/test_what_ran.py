"""Every page states the settings that ran: with every reduction the planner can make forced
(a slow probe, no budget), the HTML pages, report.md, the LaTeX tables and metrics.json state
each reduced value and none states the value asked for as the one run (the configuration
table shows it beside the value run, as asked). Made-up results on small arrays: no model."""

from __future__ import annotations

import dataclasses
import json
import re
from html.parser import HTMLParser

import numpy as np
import pytest

from reportgen.config import Config, from_dict
from reportgen.explain import plan as pl
from reportgen.explain.methods import REGISTRY, Shape, configure, options_dict
from reportgen.explain.results import QualityRow
from reportgen.report import gather, write_site
from reportgen.report.figjobs import Figures
from reportgen.report.site import SiteWriter

METHODS = ["gradcam", "scorecam", "smoothgrad", "integrated_gradients", "occlusion", "rise"]


def forced_plan(cfg: Config, budget: float = 0.0, given=frozenset()) -> pl.Plan:
    """The plan of a build of 500 test images on a slow probe within ``budget`` seconds."""
    options = configure(cfg)
    settings = {f.name: getattr(cfg.explain, f.name)
                for f in dataclasses.fields(cfg.explain) if f.name != "method_options"}
    work = pl.Work(500, 10, 5, 5, Shape(224, 224, 512), settings, options, tuple(options),
                   rf_search=True)
    slow = pl.Probe("CPU", forward_s=0.5, backward_s=1.0, activation_bytes=10**6, batch=8)
    return pl.make_plan(slow, work, budget, 2**30, set(given), cfg.explain.batch_size)


def asked_config() -> Config:
    # RISE asked for 2,000 masks (no cut declared: the plan leaves RISE out instead).
    return from_dict({"explain": {"methods": METHODS, "rise": {"masks": 2000}}})


def site_of(inputs, plan: pl.Plan, tmp_path, rng):
    """Write the site of ``inputs`` with made-up results of what ``plan`` ran; return
    (the site folder, metrics.json)."""
    ex = inputs.explained
    ex.plan = plan
    ran = list(plan.options)
    ex.method_outputs = {m: rng.uniform(0, 1, (2, 16, 16) if REGISTRY[m].output == "map"
                                        else (2, 16, 16, 3)).astype(np.float32) for m in ran}
    ex.quality = {m: QualityRow(0.2, 0.6, 1.0, 0.5, 0.1, n=6, n_boxes=0, seconds=0.3)
                  for m in plan.quality_methods}
    ex.seconds = {part: 1.0 for part in plan.estimate_s}
    inputs.method_options = {m: options_dict(o) for m, o in plan.options.items()}
    content = gather(inputs, {"dist": {"png": "fig/d.png", "alt": "d", "caption": "",
                                       "exports": [], "width": 1, "height": 1},
                              "curves": None, "cms": {}, "rel": None})
    with Figures(["png"], parallel=False) as figures, SiteWriter(tmp_path / "site") as site:
        write_site(site, content, figures, {}, show_progress=False)
        site.commit()
    out = tmp_path / "site"
    return out, json.loads((out / "metrics.json").read_text())


class Tables(HTMLParser):
    """The cells of every table of an HTML page: [[[cell text, ...], ...], ...]."""

    def __init__(self, text: str):
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None and self.tables:
            self.tables[-1][-1].append("".join(self.cell).strip())
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def config_rows(site) -> dict[str, list[str]]:
    """{key: [value run, source, asked]} of the Model page's configuration table, checked
    against its LaTeX export row by row."""
    tables = Tables((site / "model.html").read_text()).tables
    table = next(t for t in tables if t[0][:2] == ["key", "value run"])
    rows = {r[0]: r[1:] for r in table[1:]}
    tex = (site / "tables" / "config_used.tex").read_text()
    for line in tex.splitlines():
        cells = [c.strip().replace("\\_", "_") for c in line.rstrip("\\ ").split(" & ")]
        if len(cells) == 4 and cells[0] in rows:
            assert _plain(cells[1]) == _plain(rows[cells[0]][0]), cells[0]
    return rows


def _plain(text: str) -> str:
    """Cell text without LaTeX escapes or quote styles, to compare a LaTeX and an HTML cell."""
    return re.sub(r"[\\{}`'\"]|textquotedbl|textasciitilde", "", text)


def final(plan: pl.Plan) -> dict[str, tuple]:
    """{key: (asked first, used last)} of every key the plan reduced."""
    out: dict[str, tuple] = {}
    for r in plan.reductions:
        out[r.key] = (out.get(r.key, (r.asked,))[0], r.used)
    return out


def test_every_reduction_is_forced_by_a_budget_of_nothing():
    plan = forced_plan(asked_config())
    assert set(final(plan)) == pl.REDUCIBLE | {"quality_methods"}
    assert not plan.options.keys() & {"occlusion", "rise"}  # left out, the last resort


def test_every_page_states_every_reduced_value_and_none_the_value_asked(inputs, tmp_path,
                                                                         rng):
    inputs.cfg = asked_config()
    plan = forced_plan(inputs.cfg)
    changed = final(plan)
    site, metrics = site_of(inputs, plan, tmp_path, rng)
    rows = config_rows(site)
    prose = {name: (site / name).read_text() for name in
             ("methods.html", "report.md", "tables/explanation_quality.tex")}
    settings = metrics["explain"]["plan"]["settings"]
    for key, (asked, used) in changed.items():
        parts = key.split(".")
        if key == "quality_methods":
            continue  # the quality table's rows are the methods scored (results)
        if key == "explain.methods":
            assert json.loads(rows[key][0]) == list(used) == settings["methods"]
            assert metrics["explain"]["methods"].keys() == set(used)
        elif len(parts) == 3 and parts[1] not in plan.options:  # its method was left out
            assert rows[key][0] == "(not run)"
        elif len(parts) == 3:
            method, option = parts[1:]
            assert metrics["explain"]["methods"][method][option] == used != asked
            about = f"Run with {option} = {used}"
            assert all(about in prose[p] for p in ("methods.html", "report.md"))
            assert not any(f"{option} = {asked}," in prose[p] or f"{option} = {asked}."
                           in prose[p] for p in prose)
        else:
            assert settings[parts[1]] == used != asked
        if key != "explain.methods":
            assert json.loads(rows[key][0].replace("(not run)", "null")) in (used, None)
        assert rows[key][2].startswith(json.dumps(list(asked) if isinstance(asked, tuple)
                                                  else asked)), key
        assert json.loads(rows[key][0].replace("(not run)", "null")) != asked
    # The deletion/insertion protocol as run, in every prose statement of it.
    steps, orders = plan.settings["quality_steps"], plan.settings["tie_orders"]
    assert (steps, orders) == (4, 1)
    for name, text in prose.items():
        assert f"{steps} steps" in text and "in 1 seeded random order" in text, name
        assert "8 steps" not in text and "over 3" not in text, name
    # The budget and memory planned to, resolved from their automatic 0.
    # explain.budget 0: 30 predict passes of the 500 images at 0.5 s, at most 900 s.
    assert settings["budget"] == plan.budget_s == pl.MAX_BUDGET == 900.0
    assert rows["explain.budget"][0] == "900.0"
    assert rows["explain.memory_gb"][0] == "1.0" and settings["memory_gb"] == 1.0
    # The batches that ran, not the 64 asked.
    assert rows["explain.batch_size"][0] == str(plan.batch_size) == str(settings["batch_size"])
    assert f"batches of {plan.batch_size} " in prose["methods.html"]
    # Every reduction is listed, in the Methods page and report.md alike.
    markdown = re.sub(r"\\(.)", r"\1", prose["report.md"])  # escapes (explain\_methods)
    # Each method that ran with options says them in its own item of report.md's list.
    runs = [line for line in markdown.splitlines() if "Run with" in line]
    assert len(runs) == sum(bool(dataclasses.fields(o)) for o in plan.options.values())
    assert all(line.startswith("- **") and line.count("Run with") == 1 for line in runs)
    for line in plan.reduced:
        assert line in prose["methods.html"] and line in markdown, line


def test_a_plan_that_reduced_nothing_states_the_values_asked(inputs, tmp_path, rng):
    inputs.cfg = asked_config()
    plan = forced_plan(inputs.cfg, budget=1e9)
    assert plan.fits_as_asked and plan.reductions == ()
    site, metrics = site_of(inputs, plan, tmp_path, rng)
    rows = config_rows(site)
    for name in ("methods.html", "report.md", "tables/explanation_quality.tex"):
        text = (site / name).read_text()
        assert "8 steps" in text and "averaged over 3 seeded random orders" in text, name
    assert rows["explain.rise.masks"] == ["2000", "set", ""]
    assert rows["explain.smoothgrad.samples"] == ["10", "method default", ""]
    assert metrics["explain"]["methods"]["rise"]["masks"] == 2000
    assert metrics["explain"]["plan"]["reductions"] == []


def test_keys_the_user_set_are_run_as_set_and_shown_so(inputs, tmp_path, rng):
    inputs.cfg = from_dict({"explain": {"methods": METHODS, "tie_orders": 3,
                                        "smoothgrad": {"samples": 12}}})
    given = {"explain.methods", "explain.tie_orders", "explain.smoothgrad.samples"}
    plan = forced_plan(inputs.cfg, given=given)
    site, metrics = site_of(inputs, plan, tmp_path, rng)
    rows = config_rows(site)
    assert rows["explain.tie_orders"] == ["3", "default", ""]
    assert rows["explain.smoothgrad.samples"] == ["12", "set", ""]
    assert metrics["explain"]["methods"]["smoothgrad"]["samples"] == 12
    assert "averaged over 3 seeded random orders" in (site / "methods.html").read_text()


@pytest.mark.parametrize("late", [False, True])
def test_the_re_plan_is_what_the_pages_state(inputs, tmp_path, rng, late):
    """A plan cut again once the early parts ran late: the pages state the re-planned
    values (the stage hands the report the re-planned plan, see test_plan)."""
    inputs.cfg = asked_config()
    plan = forced_plan(inputs.cfg, budget=8000.0)
    if late:
        early = {k: 3 * v for k, v in plan.estimate_s.items() if k in pl.EARLY_PARTS}
        plan = pl.replan(plan, early, set())
        assert any("re-planned" in line for line in plan.reduced)
    site, metrics = site_of(inputs, plan, tmp_path, rng)
    rows = config_rows(site)
    for key, (_, used) in final(plan).items():
        if key.count(".") == 1 and key != "explain.methods":
            assert metrics["explain"]["plan"]["settings"][key[8:]] == used
            assert rows[key][0] == json.dumps(used)


def test_only_the_options_of_methods_that_ran_are_recorded():
    from types import SimpleNamespace

    from reportgen.explain.methods.occlusion import OcclusionOptions
    from reportgen.explain.methods.rise import RiseOptions
    from reportgen.pipeline import _options_data

    run = SimpleNamespace(options={"occlusion": OcclusionOptions(), "rise": RiseOptions()})
    none_ran = SimpleNamespace(plan=None, method_outputs={}, quality={})
    assert _options_data(run, none_ran, (64, 64)) == {}
    rise_ran = SimpleNamespace(plan=None, method_outputs={}, quality={"rise": object()})
    data = _options_data(run, rise_ran, (64, 64))
    assert list(data) == ["rise"] and data["rise"]["masks"] == 500
