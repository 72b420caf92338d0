"""Paths, data hazards and failures of the machine: command-line paths resolve against the
working directory, the output folder is never read as data, links never lead out of the data,
the hazards a reviewer must see are stated, and a build that fails or is killed leaves the
previous site intact and its leftovers are cleaned by the next one."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from test_bad_input import SIZE, assert_one_line_error, build, make_folder

from reportgen import config, scratch
from reportgen.data import load_dataset
from reportgen.data.folder import hazards
from reportgen.report.site import MARKER, output_path, recover

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "configs" / "smoke.toml"
#: These builds test the build's machinery, not the explanations: only GradCAM, no extras.
LIGHT = ["explain.methods=['gradcam']", "explain.quality_images=0", "explain.sanity_images=0",
         "explain.dream_images=0", "explain.pattern_filters=0", "explain.receptive_units=0"]


def dead_pid() -> int:
    """The id of a process that has ended."""
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


# -- paths from the command line and from a config file ------------------------------------------

@pytest.mark.parametrize("key", ["data.path", "model.path", "data.cache_dir", "model.weights"])
def test_relative_paths_on_the_command_line_resolve_against_the_working_directory(
        tmp_path, monkeypatch, key):
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    extra = ["data.source=folder"] + (["data.path=x"] if key != "data.path" else [])
    cfg = config.load(SMOKE, [f"{key}=photos/a b"] + extra)
    section, name = key.split(".")
    value = getattr(getattr(cfg, section), name)
    assert cfg.resolve(value) == tmp_path / "work" / "photos" / "a b"


def test_paths_in_a_config_file_stay_relative_to_the_file(tmp_path, monkeypatch):
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "c.toml").write_text(
        '[data]\nsource = "folder"\npath = "photos"\n[model]\nweights = "w.h5"\n')
    monkeypatch.chdir(tmp_path)
    cfg = config.load(tmp_path / "proj" / "c.toml")
    assert cfg.resolve(cfg.data.path) == tmp_path / "proj" / "photos"
    assert cfg.weights() == str(tmp_path / "proj" / "w.h5")
    for special in ("none", "imagenet"):  # names, not paths
        assert config.load(SMOKE, [f"model.weights={special}"]).weights() == special
    absolute = str(tmp_path / "elsewhere")
    assert config.load(SMOKE, ["data.source=folder", f"data.path={absolute}"]).data.path \
        == absolute
    cfg = config.load(tmp_path / "proj" / "c.toml", [f"data.path={absolute}"])
    assert cfg.public(cfg.resolve("photos")) == "photos"  # inside the config's folder
    assert cfg.public("sub/photos") == "sub/photos"
    assert cfg.public(absolute) == "elsewhere"  # outside it: the name alone
    assert cfg.public("imagenet") == "imagenet" and cfg.public("") == ""


@pytest.mark.slow
def test_the_readme_example_builds_from_a_folder_in_the_working_directory(tmp_path,
                                                                          monkeypatch):
    """... replacing a previous site, which keeps normal permissions (not mkdtemp's 0700)."""
    make_folder(tmp_path / "photos")
    previous_site(tmp_path)
    monkeypatch.chdir(tmp_path)
    result = build(tmp_path, "data.source=folder", "data.path=photos",
                   "data.split=[0.5, 0.25, 0.25]", *LIGHT)
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "site" / "metrics.json").read_text())
    # Published files name the data folder, never its absolute local path (issue 26); the
    # marker, which stays on this machine, keeps it for reportgen compare.
    assert metrics["data"]["root"] == "photos"
    site = tmp_path / "site"
    for f in site.rglob("*"):
        if f.suffix in (".html", ".md", ".json", ".tex", ".csv", ".js"):
            assert str(tmp_path) not in f.read_text(encoding="utf-8"), f
    assert "data.path & photos" in (site / "tables" / "config_used.tex").read_text()
    assert json.loads((site / ".reportgen-site").read_text())["data_root"] \
        == str(tmp_path / "photos")
    mask = os.umask(0o022)
    os.umask(mask)
    for folder in (tmp_path / "site", tmp_path / "site" / "fig"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o777 & ~mask, oct(folder.stat().st_mode)


def test_out_with_dot_dot_is_the_folder_it_names(tmp_path):
    assert output_path(tmp_path / "a" / "b" / "..") == tmp_path / "a"
    assert output_path(tmp_path / "a" / ".") == tmp_path / "a"
    (tmp_path / "keep.txt").write_text("mine")
    result = build(tmp_path, out=tmp_path / "x" / "..")  # tmp_path itself: not a site
    assert_one_line_error(result, 2, "--out", "not empty")
    assert (tmp_path / "keep.txt").read_text() == "mine" and not (tmp_path / "x").exists()


# -- the output folder is never read as data; no data outside data.path --------------------------

@pytest.mark.parametrize("where", ["inside", "holds", "same"])
def test_the_output_folder_and_the_data_never_overlap(tmp_path, where):
    old_site = tmp_path / "old-site"  # a site of an earlier build, holding images
    make_folder(old_site / "img")
    (old_site / MARKER).write_text("{}")
    data, out = {"inside": (make_folder(tmp_path / "data"), tmp_path / "data" / "site"),
                 "holds": (old_site / "img", old_site),
                 "same": (old_site, old_site)}[where]
    before = sorted(p.as_posix() for p in tmp_path.rglob("*"))
    result = build(tmp_path, data=data, out=out)
    assert_one_line_error(result, 2, "data.path", "overlap")
    assert sorted(p.as_posix() for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize("path", ["/", "/proc", "/proc/self", "/sys", "/etc"])
def test_system_folders_are_not_data(tmp_path, path):
    result = build(tmp_path, "data.source=folder", f"data.path={path}")
    assert_one_line_error(result, 2, "data.path", "system folder")


def test_links_leading_out_of_the_data_are_listed_and_never_read(tmp_path):
    data = make_folder(tmp_path / "data")
    outside = make_folder(tmp_path / "outside", classes={"mauve": (200, 100, 200)})
    (data / "red" / "escape.png").symlink_to(outside / "mauve" / "img_0.png")
    (data / "green" / "folder").symlink_to(outside / "mauve")
    (data / "proc").symlink_to("/proc")
    (data / "blue" / "inside.png").symlink_to(data / "blue" / "img_0.png")
    (data / ".thumbnails").mkdir()
    (data / ".thumbnails" / "t.png").write_bytes((data / "red" / "img_0.png").read_bytes())
    ds = load_dataset(data, size=(SIZE, SIZE), split=[0.5, 0.25, 0.25])
    skipped = dict(ds.skipped)
    for rel in ("red/escape.png", "green/folder", "proc/"):
        assert "outside data.path" in skipped[rel], skipped
    hidden = skipped[".thumbnails/"]
    assert "hidden folder" in hidden and "1 file not read" in hidden
    assert ds.class_names == ["blue", "green", "red"]  # no class "proc", no ".thumbnails"
    paths = [p for s in ds.splits.values() for p in s.paths]
    assert "blue/inside.png" in paths  # a link inside the data is read
    assert not any("escape" in p or "folder/" in p for p in paths)


# -- hazards a reviewer must see -------------------------------------------------------------------

def test_duplicates_across_splits_empty_classes_and_imbalance_are_stated(tmp_path):
    root = tmp_path / "data"
    make_folder(root / "train", classes={"a": (200, 0, 0), "b": (0, 200, 0)}, n=20)
    make_folder(root / "test", classes={"a": (200, 0, 0), "b": (0, 200, 0),
                                        "c": (0, 0, 200)}, n=2)
    for k in range(2, 20):  # class b: 2 training images against a's 20
        (root / "train" / "b" / f"img_{k}.png").unlink()
    # make_folder draws the same noise in the same order: test a/img_0 = train a/img_0.
    ds = load_dataset(root, size=(SIZE, SIZE))
    text = " ".join(hazards(ds))
    assert "exact copies of train images" in text and "test/a/img_0.png" in text
    assert "No training images for class c" in text
    assert "imbalance" in text and "a has 20 images, b 2 (10x)" in text


def test_a_clean_data_set_has_no_hazards(tmp_path):
    ds = load_dataset(make_folder(tmp_path / "data", n=8), size=(SIZE, SIZE),
                      split=[0.5, 0.25, 0.25])
    assert hazards(ds) == []


@pytest.mark.slow
def test_hazards_are_in_the_report_and_a_cache_that_cannot_be_written_is_a_warning(tmp_path):
    root = tmp_path / "data"
    make_folder(root / "train", n=6)
    make_folder(root / "test", n=2)
    (root / "test" / "red" / "copy.png").write_bytes(
        (root / "train" / "red" / "img_3.png").read_bytes())
    # ... with a cache that cannot be written (a file where its folder should be): a warning.
    (tmp_path / "cache").write_text("not a folder")
    result = build(tmp_path, *LIGHT, "data.source=folder", f"data.path={root}",
                   f"data.cache_dir={tmp_path / 'cache'}")
    assert result.exit_code == 0, result.output
    assert result.output.count("Warning: cannot write the cache") == 1, result.output
    assert "Warning: 3 test images are exact copies of train images" in result.output
    metrics = json.loads((tmp_path / "site" / "metrics.json").read_text())
    assert any("exact copies" in n and "train/red/img_3.png = test/red/copy.png" in n
               for n in metrics["notes"]), metrics["notes"]
    assert "exact copies of train images" in (tmp_path / "site" / "index.html").read_text()


# -- the machine fails, or the build is killed ---------------------------------------------------

def test_scratch_of_dead_builds_is_removed_and_live_ones_are_kept(tmp_path):
    dead = dead_pid()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        names = [f".site.reportgen-tmp-{dead}-abc", f".site.reportgen-old-{dead}-abc",
                 f".site.reportgen-tmp-{live.pid}-abc", "unrelated-123-x"]
        for n in names:
            (tmp_path / n).mkdir()
            (tmp_path / n / "f").write_text("x")
        (tmp_path / "site").mkdir()
        (tmp_path / "site" / MARKER).write_text("{}")
        removed = recover(tmp_path / "site")
        assert sorted(p.name for p in removed) == sorted(names[:2])
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[2:] + ["site"])
    finally:
        live.kill()


def test_a_previous_site_moved_aside_by_a_killed_build_is_put_back(tmp_path):
    old = tmp_path / f".site.reportgen-old-{dead_pid()}-abc"
    old.mkdir()
    (old / MARKER).write_text("{}")
    (old / "index.html").write_text("previous")
    recover(tmp_path / "site")
    assert (tmp_path / "site" / "index.html").read_text() == "previous" and not old.exists()


def test_scratch_names_carry_the_owner_and_normal_modes(tmp_path):
    p = scratch.mkdtemp(".x-", tmp_path)
    assert scratch.owner(p.name, ".x-") == os.getpid() and scratch.alive(os.getpid())
    assert not scratch.alive(dead_pid())
    assert scratch.stale(tmp_path, ".x-") == []  # its owner, this process, is alive


def processes_tagged(tag: str) -> list[int]:
    """Processes whose environment holds ``REPORTGEN_TEST_TAG=tag``."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if f"REPORTGEN_TEST_TAG={tag}".encode() in (d / "environ").read_bytes():
                    out.append(int(d.name))
            except OSError:
                pass
    return out


def start_build(tmp_path, tag, *extra, limit=None):
    env = {**os.environ, "REPORTGEN_TEST_TAG": tag, "TMPDIR": str(tmp_path / "tmp")}
    (tmp_path / "tmp").mkdir(exist_ok=True)

    def limits():
        if limit:
            import resource
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past it fail with EFBIG
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    args = [sys.executable, "-m", "reportgen", "build", "--quiet", "--config", str(SMOKE),
            "--out", str(tmp_path / "site"), "--set", "report.figure_formats=['png']",
            "--set", f"data.cache_dir={tmp_path / 'cache'}", "--set", "training.epochs=1"]
    for e in extra:
        args += ["--set", e]
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=limits)


def wait_for(predicate, timeout=120.0):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def previous_site(tmp_path) -> str:
    """A site of an earlier build (its marker, pages and a figure); return its index page."""
    site = tmp_path / "site"
    (site / "fig").mkdir(parents=True)
    (site / MARKER).write_text(json.dumps({"generator": "reportgen", "files": []}))
    (site / "index.html").write_text("<h1>the previous report</h1>")
    (site / "fig" / "a.png").write_bytes(b"\x89PNG previous")
    return (site / "index.html").read_text()


def kill_while_writing(tmp_path, tag, sig, title):
    """Start a build and kill it with ``sig`` once it writes the new site beside the old one
    (the riskiest moment); return its exit code."""
    build = start_build(tmp_path, tag, f"report.title='{title}'", "report.cache=false",
                        *LIGHT)
    assert wait_for(lambda: any(p.name.startswith(".site.reportgen-tmp-")
                                and any(p.iterdir()) for p in tmp_path.iterdir())), \
        build.stderr.read() if build.poll() is not None else "never started writing"
    os.kill(build.pid, sig)
    return build.wait(60)


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")
@pytest.mark.slow
def test_a_killed_build_leaves_the_site_and_the_next_cleans_up(tmp_path):
    tag = uuid.uuid4().hex
    index = previous_site(tmp_path)

    assert kill_while_writing(tmp_path, tag, signal.SIGTERM, "Second") == 143
    assert (tmp_path / "site" / "index.html").read_text() == index
    assert wait_for(lambda: not processes_tagged(tag), 30), processes_tagged(tag)
    leftovers = [p.name for p in tmp_path.iterdir() if ".reportgen-" in p.name]
    assert leftovers + [p.name for p in (tmp_path / "tmp").iterdir()] == []  # cleaned up

    assert kill_while_writing(tmp_path, tag, signal.SIGKILL, "Third") == -signal.SIGKILL
    assert (tmp_path / "site" / "index.html").read_text() == index
    # No worker outlives its build, even one killed outright.
    assert wait_for(lambda: not processes_tagged(tag), 30), processes_tagged(tag)
    assert [p.name for p in tmp_path.iterdir() if ".reportgen-tmp-" in p.name]  # left behind

    last = start_build(tmp_path, tag, *LIGHT)
    assert last.wait(300) == 0, last.stderr.read()
    assert [p.name for p in tmp_path.iterdir() if ".reportgen-" in p.name] == []
    assert [p.name for p in (tmp_path / "tmp").iterdir()] == []


@pytest.mark.slow
def test_a_full_disk_ends_in_one_line_and_keeps_the_previous_site(tmp_path):
    tag = uuid.uuid4().hex
    previous_site(tmp_path)
    before = {p.relative_to(tmp_path / "site").as_posix(): p.read_bytes()
              for p in (tmp_path / "site").rglob("*") if p.is_file()}
    # Files may not grow past 64 KiB: the cache and the site's larger files cannot be written.
    second = start_build(tmp_path, tag, *LIGHT, "report.title='New'",
                         "training.seed=5", limit=64 * 1024)
    err = second.communicate(timeout=300)[1]
    assert second.returncode == 1, err
    lines = [line for line in err.strip().splitlines() if line.startswith("Error")]
    assert len(lines) == 1 and "File too large" in lines[0] and "Traceback" not in err, err
    after = {p.relative_to(tmp_path / "site").as_posix(): p.read_bytes()
             for p in (tmp_path / "site").rglob("*") if p.is_file()}
    assert after == before
    assert [p.name for p in tmp_path.iterdir() if ".reportgen-" in p.name] == []


@pytest.mark.parametrize("out", ["/proc/reportgen-site", "/sys/reportgen-site/x",
                                 "/proc/self/reportgen"])
def test_an_unwritable_parent_is_refused_before_any_work(tmp_path, out):
    t0 = time.perf_counter()
    result = build(tmp_path, out=Path(out))
    assert_one_line_error(result, 2, f"--out {out}", "cannot write")
    assert time.perf_counter() - t0 < 30  # refused before training (not a timing claim: a
    # build of smoke.toml takes longer than this on any machine)


def test_a_mount_point_is_refused(tmp_path, monkeypatch):
    (tmp_path / "mnt").mkdir()
    real = os.path.ismount
    monkeypatch.setattr(os.path, "ismount", lambda p: Path(p) == tmp_path / "mnt" or real(p))
    result = build(tmp_path, out=tmp_path / "mnt")
    assert_one_line_error(result, 2, "mount point")
