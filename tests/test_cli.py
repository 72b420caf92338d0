"""The command line: instant help, one-line errors, and an end-to-end smoke build."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from click.testing import CliRunner

from reportgen.cli import main

SMOKE = Path(__file__).resolve().parent.parent / "configs" / "smoke.toml"
#: The settings of the shared smoke site (conftest.smoke_site) beyond configs/smoke.toml.
SMOKE_SETS = ["--set", "explain.gallery_size=60", "--set", "report.include_model=true"]


def test_importing_cli_does_not_import_tensorflow():
    code = "import sys, reportgen.cli; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


@pytest.mark.parametrize("args", [["--help"], ["build", "--help"], ["keys", "--help"]])
def test_every_help(args):
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0
    assert "Usage:" in result.output


def test_keys_lists_every_key():
    from reportgen.config import all_keys
    result = CliRunner().invoke(main, ["keys"], catch_exceptions=False)
    for key, _, doc in all_keys():
        assert key in result.output and doc in result.output


@pytest.mark.parametrize("args, needle", [
    (["--set", "data.image_sise=32"],
     "unknown key data.image_sise; did you mean 'data.image_size'"),
    (["--set", "training.epochs=-2"], "training.epochs: -2 is below the minimum 1"),
    (["--config", "missing.toml"], "config file not found: missing.toml"),
    (["--set", "explain.occlusion.patch_size=-1"],
     "explain.occlusion.patch_size: -1 is below the minimum 0"),
    (["--set", "explain.rise.maks=10"], "unknown key explain.rise.maks; did you mean "
                                        "'explain.rise.masks'"),
    (["--set", "explain.ig_steps=4"], "explain.ig_steps: moved to "
                                      "explain.integrated_gradients.steps"),
    (["--set", "model.preprocess=tf"], "model.preprocess: 'tf' is for a loaded model"),
])
def test_config_errors_are_one_line_exit_2(tmp_path, args, needle):
    result = CliRunner().invoke(main, ["build", "--out", str(tmp_path / "o")] + args)
    assert result.exit_code == 2
    assert result.output.strip() == f"Error: {needle}" or needle in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[str] = []
        self.imgs: list[dict] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("href", "src"):
            if a.get(key):
                self.links.append(a[key])
        if tag == "img":
            self.imgs.append(a)


def test_smoke_build_last_line_is_index(smoke_site):
    out, result = smoke_site
    assert result.stdout.strip().splitlines()[-1] == str(out / "index.html")


def test_smoke_every_link_and_image_exists(smoke_site):
    out, _ = smoke_site
    pages = sorted(out.glob("*.html"))
    names = {p.name for p in pages}
    assert {"index.html", "model.html"} <= names
    assert len([n for n in names if n.startswith("class-")]) == 5
    checked = 0
    for page in pages:
        parser = _Links()
        parser.feed(page.read_text(encoding="utf-8"))
        for link in parser.links:
            url = urlparse(link)
            if page.name == "report.html":  # the one file to attach: nothing outside it
                assert url.scheme == "data" or link.startswith("#"), f"report.html: {link}"
                continue
            assert not url.scheme and not url.netloc, f"{page.name}: non-relative link {link}"
            assert not link.startswith("/"), f"{page.name}: absolute path {link}"
            if url.path:
                assert (out / unquote(url.path)).is_file(), f"{page.name}: missing {link}"
                checked += 1
        for img in parser.imgs:
            assert img.get("alt"), f"{page.name}: image without alt text {img}"
    assert checked > 50
    # Markdown: every relative link and image target exists too.
    md = (out / "report.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)]+)\)", md)
    assert targets
    for t in targets:
        assert (out / t).is_file(), f"report.md: missing {t}"


def test_smoke_report_md_tables_render(smoke_site, md_tables):
    """Every table of the labelled report.md renders as a table (rows and columns as
    written): images per class, the splits, per class, quality, layers, errors, galleries."""
    out, _ = smoke_site
    md = (out / "report.md").read_text(encoding="utf-8")
    tables = md_tables(md)
    first = {t[0][0] for t in tables}
    assert {"class", "split", "method", "layer"} <= first
    m = json.loads((out / "metrics.json").read_text())
    counts = next(t for t in tables if t[0][0] == "class" and t[0][-1] == "total")
    assert [r[0] for r in counts[1:]] == m["classes"]
    splits = next(t for t in tables if t[0][0] == "split")
    assert [r[1] for r in splits[1:]] == [str(m["splits"][s]["n"]) for s in
                                          ("train", "val", "test")]
    assert re.search(r"The other splits: \[(val|train)\]\(fig/confusion_\1\.png\), "
                     r"\[(val|train)\]\(fig/confusion_\2\.png\)\.", md)


def test_smoke_metrics_and_exports(smoke_site):
    out, _ = smoke_site
    m = json.loads((out / "metrics.json").read_text())
    for split in ("train", "val", "test"):
        s = m["splits"][split]
        assert {"accuracy", "loss", "confusion_matrix", "per_class"} <= set(s)
        assert sum(map(sum, s["confusion_matrix"])) == s["n"]
    assert (out / "fig" / "confusion_test.svg").is_file()
    assert (out / "tables" / "per_class_test.tex").read_text().count("\\toprule") == 1
    quality = m["explain"]["quality"]
    for q in quality.values():  # each sanity score with its verdict beside it
        if not q["n_sanity"]:
            assert q["sanity_verdict"] is None
        elif q["sanity"] is None:  # every map constant: no correlation, no verdict
            assert q["sanity_verdict"] == "undefined"
        else:
            assert q["sanity_verdict"] == ("passes" if q["sanity_ci95"][1] < 0.5 else "fails"
                                           if q["sanity_ci95"][0] >= 0.5 else "inconclusive")
    ranked = m["explain"]["quality_ranking"]
    assert len(quality) < 2 or ranked["deletion"]["best"] in quality
    assert (out / ".nojekyll").exists()
    assert (out / "model.keras").is_file()
    assert not any(out.parent.glob(".site.reportgen-*")), "temporary folders left behind"


def test_build_from_saved_model(smoke_site, tmp_path):
    out, _ = smoke_site
    saved = tmp_path / "m.keras"
    saved.write_bytes((out / "model.keras").read_bytes())
    result = CliRunner().invoke(main, [
        "build", "--config", str(SMOKE), "--out", str(tmp_path / "loaded"), "--quiet",
        "--set", f"data.cache_dir={out.parent / 'cache'}", "--set", "model.source=load",
        "--set", f"model.path={saved}", *SMOKE_SETS], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    m = json.loads((tmp_path / "loaded" / "metrics.json").read_text())
    first = json.loads((out / "metrics.json").read_text())
    assert m["history"] == {}
    # The same weights on the same test images give the same accuracy.
    assert m["splits"]["test"]["accuracy"] == pytest.approx(first["splits"]["test"]["accuracy"])
    assert not (tmp_path / "loaded" / "model.keras").exists()


def test_cached_rebuild_never_loads_tensorflow(smoke_site, tmp_path):
    """In a fresh process: a rebuild with only [report] settings changed ends without
    TensorFlow or Keras in sys.modules (unpickling the cache loads real result types)."""
    out, _ = smoke_site
    code = (
        "import sys\n"
        "from reportgen.cli import main\n"
        f"args = ['build', '--config', {str(SMOKE)!r}, '--quiet', '--out', "
        f"{str(tmp_path / 'again')!r}, '--set', 'data.cache_dir={out.parent / 'cache'}', "
        "'--set', 'report.title=Third', '--set', 'explain.gallery_size=60']\n"
        "try:\n    main(args)\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'keras'}))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"
    assert "Third" in (tmp_path / "again" / "index.html").read_text()
    # Without report.include_model the site holds no weights, and the Model page says so.
    assert not (tmp_path / "again" / "model.keras").exists()
    assert (out / "model.keras").is_file()
    page = (tmp_path / "again" / "model.html").read_text()
    assert "is not included in this site" in page and 'href="model.keras"' not in page
    assert 'href="model.keras"' in (out / "model.html").read_text()


def test_second_build_reuses_cache_and_matches(smoke_site, tmp_path, monkeypatch):
    out, _ = smoke_site
    cache = out.parent / "cache"
    args = ["build", "--config", str(SMOKE), "--quiet", "--set", f"data.cache_dir={cache}",
            *SMOKE_SETS]

    def no_tensorflow():
        raise AssertionError("a rebuild with only report settings changed started TensorFlow")

    with monkeypatch.context() as m:
        m.setattr("reportgen.pipeline.stages.start_tensorflow", no_tensorflow)
        again = CliRunner().invoke(main, args + ["--out", str(tmp_path / "again"), "--set",
                                                 "report.title=Second", "--set",
                                                 "report.top_k=2"], catch_exceptions=False)
    assert again.exit_code == 0, again.output
    assert "Reusing the predictions and explanations of an earlier build" in again.stderr
    first = json.loads((out / "metrics.json").read_text())
    second = json.loads((tmp_path / "again" / "metrics.json").read_text())
    # The parts a cached rebuild runs again (numpy, no TensorFlow) took their own time.
    again_parts = ("data audit", "explorer map", "curves", "slices")
    for m in (first, second):
        for part in again_parts:
            m["explain"]["seconds"].pop(part, None)
            m["explain"]["plan"]["parts"].get(part, {}).pop("actual_s", None)
    assert second["explain"] == first["explain"] and second["model"] == first["model"]
    for split, m in first["splits"].items():  # top-k follows the new setting
        assert second["splits"][split]["accuracy"] == m["accuracy"]
        assert second["splits"][split]["top_2_accuracy"] >= m["accuracy"]
    assert "Second" in (tmp_path / "again" / "index.html").read_text()
    assert (tmp_path / "again" / "model.keras").read_bytes() == \
        (out / "model.keras").read_bytes()
    def main_part(path):  # the page body, without the footer's build time and the rows of
        # the plan's parts that every build runs again
        body = path.read_text().split("<main", 1)[1].split("</main>", 1)[0]
        return re.sub(r"<tr>(?:(?!</tr>).)*(?:data audit|explorer map).*?</tr>", "", body,
                      flags=re.S)

    for page in ("methods.html", "layers.html"):  # the same maps, tables and images
        assert main_part(out / page) == main_part(tmp_path / "again" / page), page
    # Different explain settings are a cache miss for the maps (the trained model is reused).
    other = CliRunner().invoke(main, args + ["--out", str(tmp_path / "other"), "--set",
                                             "explain.quality_images=5"],
                               catch_exceptions=False)
    assert other.exit_code == 0
    assert "Reusing the trained model" in other.stderr
    assert "Reusing the predictions" not in other.stderr
    # report.cache = false recomputes everything.
    off = CliRunner().invoke(main, args + ["--out", str(tmp_path / "off"), "--set",
                                           "report.cache=false"], catch_exceptions=False)
    assert off.exit_code == 0 and "Reusing" not in off.stderr


def test_a_build_slower_than_its_probe_re_plans_the_quality_table(smoke_site, monkeypatch):
    """A probe that measures the model a thousand times too fast plans the full report into
    1 s; the test set and the sample images then take far longer, and the quality table is
    re-planned at the measured speed (the methods' options stay as planned)."""
    import dataclasses

    from reportgen.explain import plan as pl

    real = pl.probe

    def optimistic(*args, **kwargs):
        p = real(*args, **kwargs)
        return dataclasses.replace(p, forward_s=p.forward_s / 1000, backward_s=p.backward_s
                                   / 1000, cam_s=p.cam_s and p.cam_s / 1000,
                                   trace_s=p.trace_s / 1000)

    monkeypatch.setattr(pl, "probe", optimistic)
    out, _ = smoke_site
    site = out.parent / "replan"
    result = CliRunner().invoke(main, ["build", "--config", str(SMOKE), "--out", str(site),
                                       "--set", f"data.cache_dir={out.parent / 'cache'}",
                                       "--set", "explain.budget=1", *SMOKE_SETS],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    metrics = json.loads((site / "metrics.json").read_text())["explain"]
    plan = metrics["plan"]
    first = [r for r in plan["reduced"] if "re-planned" not in r]
    late = [r for r in plan["reduced"] if "re-planned" in r]
    assert first == [] and late[0].startswith("explain.tie_orders 3 → 1 (re-planned: the "
                                              "work so far took ")
    assert plan["replan"]["ratio"] > 1 and plan["replan"]["left_s"] < 1
    assert "RISE left out of the quality table" in " ".join(late)
    assert "rise" not in metrics["quality"] and "rise" in metrics["methods"]
    assert all(q["tie_orders"] == 1 for q in metrics["quality"].values())
    assert plan["settings"]["tie_orders"] == 1
    assert "Plan: explain.tie_orders 3 → 1 (re-planned" in result.stderr
    methods = (site / "methods.html").read_text()
    assert "Re-planned once the test set, the sample images and the class grid were done" \
        in methods and "(re-planned: the work so far took" in methods
    assert "nothing more was reduced" not in methods and plan["replan"]["reduced"] == len(late)


def test_a_build_over_its_budget_reduces_the_extras_and_says_so(smoke_site):
    """The smoke config sets most explain keys (kept); what it leaves to the planner (the tie
    orders, the quality table's methods) is reduced, and every page says what was done."""
    out, _ = smoke_site
    site = out.parent / "budget"
    result = CliRunner().invoke(main, ["build", "--config", str(SMOKE), "--out", str(site),
                                       "--set", f"data.cache_dir={out.parent / 'cache'}",
                                       "--set", "explain.budget=0.001", "--quiet",
                                       *SMOKE_SETS],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    plan = json.loads((site / "metrics.json").read_text())["explain"]["plan"]
    assert plan["reduced"][0] == "explain.tie_orders 3 → 1"
    assert "RISE left out of the quality table (shown on the samples)" in plan["reduced"]
    # At 0.001 s even the sample images are over: RISE, then occlusion, are left out last.
    gone = [r for r in plan["reduced"] if "over the budget on the sample images alone" in r]
    assert [r.split()[0] for r in gone] == ["RISE", "Occlusion"]
    assert plan["reduced"][-2:] == gone
    assert "explain.quality_images" in plan["notes"][0]  # set in smoke.toml: kept, and said
    quality = json.loads((site / "metrics.json").read_text())["explain"]["quality"]
    assert "rise" not in quality and "gradcam" in quality
    assert all(q["tie_orders"] == 1 for q in quality.values())
    assert "planned to explain.budget = 0.001 s" in (site / "index.html").read_text()
    methods = (site / "methods.html").read_text()
    assert "Reduced to fit the budget" in methods and "RISE left out (over the budget" in methods
    assert "<th scope=\"row\">RISE</th>" not in methods and \
        "<th scope=\"row\">GradCAM</th>" in methods


@pytest.mark.slow
def test_a_failing_layers_view_never_loses_the_build_and_strict_keeps_the_old_site(
        tmp_path, monkeypatch):
    """Learned filters made to fail on purpose in a whole build: the site is written with
    the note on the Layers page, metrics.json lists the failure, the terminal ends with the
    warning, exit 0; the same build with --strict exits 1 and leaves that site byte for
    byte, nothing added, removed or rewritten."""
    import hashlib

    from reportgen.explain import features

    def no_kernel(ex, layer):
        raise ValueError(f"layer {layer!r} has no 2-D convolution kernel")

    monkeypatch.setattr(features, "learned_filters", no_kernel)
    out = tmp_path / "site"
    args = ["build", "--config", str(SMOKE), "--out", str(out), "--quiet",
            "--set", f"data.cache_dir={tmp_path / 'cache'}"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    failed = metrics["failures"]
    assert [(f["part"], f["error"]) for f in failed] == [
        ("learned filters", f"ValueError: layer {f['layer']!r} has no 2-D convolution kernel")
        for f in failed] and len(failed) == 2
    layers = (out / "layers.html").read_text()
    filters = layers[layers.index('id="filters"'):layers.index('id="patterns"')]
    assert f"Learned filters of layer <code>{failed[0]['layer']}</code> failed" in filters
    assert 'src="img/layers/fmap_0.png"' in layers  # the other views are there
    warnings = result.stderr.strip().splitlines()[-2:]
    assert [w.startswith(f"Warning: learned filters of layer {f['layer']!r} failed: "
                         "ValueError")
            for w, f in zip(warnings, failed, strict=True)] == [True, True]
    assert result.stdout.strip().splitlines()[-1] == str(out / "index.html")

    def snapshot():
        return {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                if p.is_file() else "dir" for p in sorted(out.rglob("*"))}

    before = snapshot()
    strict = CliRunner().invoke(main, args + ["--strict"], catch_exceptions=False)
    assert strict.exit_code == 1, strict.output
    assert "Warning: learned filters of layer" in strict.stderr
    assert strict.stderr.strip().splitlines()[-1].startswith(
        f"Error: 2 part(s) of the report failed and --strict is set: {out} was left as it was")
    assert snapshot() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "site"]


def test_an_interrupted_merge_says_so_in_one_line_and_keeps_the_site(tmp_path, monkeypatch):
    """Ctrl-C during ``merge`` is answered like one during ``build``: one line, exit 130."""
    import reportgen.pipeline as pipeline

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "merge", interrupted)
    shard = tmp_path / "shard-1"
    shard.mkdir()
    out = tmp_path / "site"
    result = CliRunner().invoke(main, ["merge", str(shard), "--out", str(out)])
    assert result.exit_code == 130, result.output
    assert f"Interrupted; {out} was left as it was." in result.output
    assert "Traceback" not in result.output
