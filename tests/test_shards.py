"""Sharded builds: the shard/merge contract, its refusals, and the same report either way."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from reportgen.cli import main
from reportgen.errors import ShardError
from reportgen.pipeline.executors.shards import FORMAT, MANIFEST, check_set, parse_shard
from test_bad_input import assert_one_line_error, make_folder, tiny_model  # tests/ on sys.path

SMOKE = Path(__file__).parent.parent / "configs" / "smoke.toml"


def test_shard_numbers_are_one_based():
    assert parse_shard("1/3") == (1, 3) and parse_shard(" 3 / 3 ") == (3, 3)
    for bad in ("0/3", "4/3", "1", "a/b", "1/0"):
        with pytest.raises(ValueError, match="1-based"):
            parse_shard(bad)


def manifest(i, n, model="m1", config="c1", rows=None):
    rows = rows if rows is not None else [r for r in range(6) if r % n == i - 1]
    return {"shard": [i, n], "model_hash": model, "config_hash": config, "data_hash": "d",
            "splits": {"test": {"count": 6, "rows": rows, "paths": [f"{r}.png" for r in rows],
                                "hashes": [str(r) for r in rows]}}}


@pytest.mark.parametrize("shards, needle", [
    ([manifest(1, 3), manifest(3, 3)], "shard 2/3 missing"),
    ([manifest(1, 2), manifest(1, 2)], "shard 1/2 given twice"),
    ([manifest(1, 2), manifest(2, 2, model="m2")], "two models"),
    ([manifest(1, 2), manifest(2, 2, config="c2")], "two configurations"),
    ([manifest(1, 2), manifest(2, 3)], "two shard counts"),
    ([manifest(1, 2), manifest(2, 2, rows=[0, 1, 3, 5])], "test image 0.png is in two shards"),
    ([manifest(1, 2), manifest(2, 2, rows=[1])], "in no shard"),
])
def test_an_incomplete_or_mixed_set_is_refused_naming_what(shards, needle):
    with pytest.raises(ShardError, match=needle):
        check_set([(Path(f"s{k}"), m) for k, m in enumerate(shards)])
    check_set([(Path("a"), manifest(1, 2)), (Path("b"), manifest(2, 2))])  # a complete set


def test_merge_of_a_missing_shard_is_one_line(tmp_path):
    for i in (1, 3):
        (tmp_path / f"s{i}").mkdir()
        (tmp_path / f"s{i}" / MANIFEST).write_text(json.dumps({"format": FORMAT, **manifest(i, 3)}))
    result = CliRunner().invoke(main, ["merge", str(tmp_path / "s1"), str(tmp_path / "s3"),
                                       "--out", str(tmp_path / "site")])
    assert_one_line_error(result, 2, "shard 2/3 missing")
    assert not (tmp_path / "site").exists()
    result = CliRunner().invoke(main, ["merge", str(tmp_path), "--out", str(tmp_path / "x")])
    assert_one_line_error(result, 2, "not a shard folder")


def test_sharding_a_trained_build_says_to_train_first(tmp_path):
    result = CliRunner().invoke(main, ["build", "--config", str(SMOKE), "--shard", "1/2",
                                       "--out", str(tmp_path / "s")])
    assert_one_line_error(result, 2, 'model.source = "train"', "train first")
    result = CliRunner().invoke(main, ["build", "--config", str(SMOKE), "--shard", "0/2"])
    assert result.exit_code == 2 and "1-based" in result.output


def test_the_ray_executor_without_ray_names_the_extra(tmp_path, monkeypatch):
    for name in ("ray", "ray.data"):  # as if it were not installed (CI installs it)
        monkeypatch.setitem(sys.modules, name, None)
    result = CliRunner().invoke(main, ["build", "--config", str(SMOKE), "--executor", "ray",
                                       "--out", str(tmp_path / "site")])
    assert_one_line_error(result, 2, "reportgen[ray]")
    assert not (tmp_path / "site").exists()


#: Runs a build in a Python where importing Ray fails, as in the default install.
WITHOUT_RAY = """
import sys
class NoRay:
    def find_spec(self, name, path=None, target=None):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("Ray is not installed (blocked by the test)")
sys.meta_path.insert(0, NoRay())
from reportgen.cli import main
main(sys.argv[1:])
"""


@pytest.mark.slow
def test_the_default_install_builds_and_shards_without_ray(keras, tmp_path):
    common = sharded_setup(keras, tmp_path)
    for extra in ([], ["--shard", "1/2"]):
        done = subprocess.run([sys.executable, "-c", WITHOUT_RAY, "build", *common, *extra,
                               "--out", str(tmp_path / f"out{len(extra)}")],
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "out0" / "index.html").is_file()
    assert (tmp_path / "out2" / MANIFEST).is_file()


# -- the same report, sharded or not ---------------------------------------------------------

COLOURS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (50, 60, 220)}


def sharded_setup(keras, tmp_path: Path) -> list[str]:
    data = make_folder(tmp_path / "data", classes=COLOURS, n=8)
    keras.utils.set_random_seed(3)
    tiny_model(keras).save(tmp_path / "m.keras")
    return ["--config", str(SMOKE), "--quiet", "--set", "report.figure_formats=['png']",
            "--set", "model.source=load", "--set", f"model.path={tmp_path / 'm.keras'}",
            "--set", "data.source=folder", "--set", f"data.path={data}",
            "--set", "data.split=[0.5, 0.25, 0.25]", "--set", "report.cache=false",
            "--set", "explain.layer=conv", "--set", "explain.budget=100000"]


def sharded_only(metrics: dict) -> dict:
    """``metrics`` without what a sharded build states differently by design: it has no time
    plan (``explain.plan``), and a note says it was sharded."""
    out = json.loads(json.dumps(metrics))
    out["explain"].pop("plan", None)
    out["notes"] = [n for n in out["notes"] if not n.startswith("Sharded build")]
    return out


def site_numbers(site: Path) -> tuple[list, dict, np.lib.npyio.NpzFile]:
    with open(site / "predictions.csv", newline="") as f:
        rows = list(csv.reader(f))
    return rows, json.loads((site / "metrics.json").read_text()), np.load(
        site / "explanations.npz")


def without_times(value):
    """``value`` (metrics.json) without wall times and the speeds measured by the planner,
    which differ from run to run."""
    if isinstance(value, dict):
        return {k: without_times(v) for k, v in value.items()
                if not (k.endswith("_s") or k in ("seconds", "parts", "replan", "ratio",
                                                  "trace_warm"))}
    if isinstance(value, list):
        return [without_times(v) for v in value]
    return value


def refuse(*args, **kwargs):
    raise AssertionError("a merge ran a method")


@pytest.mark.slow
def test_two_and_three_shards_merged_equal_the_unsharded_build(keras, tmp_path, monkeypatch):
    from reportgen.explain import suite

    common = sharded_setup(keras, tmp_path)
    run = CliRunner().invoke
    whole = run(main, ["build", *common, "--out", str(tmp_path / "whole")])
    assert whole.exit_code == 0, whole.output
    rows, metrics, maps = site_numbers(tmp_path / "whole")
    for n in (2, 3):
        folders = []
        for i in range(1, n + 1):
            folder = tmp_path / f"shard-{n}-{i}"
            done = run(main, ["build", *common, "--shard", f"{i}/{n}", "--out", str(folder)])
            assert done.exit_code == 0, done.output
            folders.append(str(folder))
        with monkeypatch.context() as patch:  # the merge runs no method: it reads the shards'
            for name in ("run_samples", "grid_maps", "quality_values"):
                patch.setattr(suite, name, refuse)
            merged = run(main, ["merge", "--quiet", *folders[::-1], "--out",
                                str(tmp_path / f"m{n}")])
        assert merged.exit_code == 0, merged.output
        got_rows, got_metrics, got_maps = site_numbers(tmp_path / f"m{n}")
        assert got_rows == rows
        assert any(n.startswith("Sharded build") for n in got_metrics["notes"])
        assert without_times(sharded_only(got_metrics)) == without_times(sharded_only(metrics))
        assert got_metrics["explain"]["quality"]  # the quality table, from the shards' values
        assert sorted(got_maps.files) == sorted(maps.files)
        for k in maps.files:
            if maps[k].dtype.kind not in "fc":  # names, indices: exactly equal
                np.testing.assert_array_equal(got_maps[k], maps[k])
                continue
            a, b = maps[k].astype(np.float32), got_maps[k].astype(np.float32)
            step = np.spacing(np.maximum(abs(a), abs(b)).astype(np.float16)).astype(np.float32)
            assert np.all(abs(a - b) <= step + 1e-6), k


@pytest.mark.slow
def test_a_ray_build_with_two_workers_equals_the_unsharded_build(keras, tmp_path):
    pytest.importorskip("ray.data")
    common = built_whole(keras, tmp_path)
    before = ray_processes()
    loud = [a for a in common if a != "--quiet"]  # its own progress lines, and Ray's if any
    on_ray = subprocess.run([sys.executable, "-m", "reportgen", "build", *loud, "--executor",
                             "ray", "--out", str(tmp_path / "ray")],
                            capture_output=True, text=True, timeout=900)
    assert on_ray.returncode == 0, on_ray.stderr[-3000:]
    rows, metrics, _ = site_numbers(tmp_path / "whole")
    got_rows, got_metrics, _ = site_numbers(tmp_path / "ray")
    assert got_rows == rows
    assert without_times(sharded_only(got_metrics)) == without_times(sharded_only(metrics))
    said = on_ray.stdout + on_ray.stderr
    assert "Ray: shard 1/2 done" in said and "Ray: shard 2/2 done" in said  # progress
    noise = re.compile(r"\bINFO\b|\(raylet\)|core_worker|DeprecationWarning")
    assert not [line for line in said.splitlines() if noise.search(line)]  # Ray is quiet
    assert ray_processes() <= before  # Ray shut down with the build: no raylet or GCS left


def processes(*names: bytes) -> set[int]:
    """Processes whose command line (Ray's workers: their title) holds one of ``names``, but
    this test process's own children running pytest."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if any(n in title for n in names) and b"pytest" not in title:
                found.add(int(entry.name))
    return found


def ray_processes() -> set[int]:
    """Ray's own daemons now running (raylet, GCS server)."""
    return processes(b"raylet", b"gcs_server")


def built_whole(keras, tmp_path: Path) -> list[str]:
    """The arguments of the sharded tests' build (:func:`sharded_setup`), once built unsharded
    into ``tmp_path / "whole"``."""
    common = sharded_setup(keras, tmp_path)
    whole = CliRunner().invoke(main, ["build", *common, "--out", str(tmp_path / "whole")])
    assert whole.exit_code == 0, whole.output
    return common


@pytest.mark.slow
def test_a_killed_ray_worker_is_retried_and_the_report_is_the_same(keras, tmp_path):
    pytest.importorskip("ray.data")
    import signal
    import threading
    import time

    common = built_whole(keras, tmp_path)
    run = CliRunner().invoke
    killed: list[int] = []
    stop = threading.Event()

    def kill_one():  # the first shard worker seen for 4 s (at its shard) is killed: SIGKILL
        seen: dict[int, float] = {}
        while not stop.is_set() and not killed:
            for pid in processes(b"ShardWorker"):
                if time.monotonic() - seen.setdefault(pid, time.monotonic()) > 4:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    break
            time.sleep(0.1)

    killer = threading.Thread(target=kill_one)
    killer.start()
    loud = [a for a in common if a != "--quiet"]
    try:
        on_ray = run(main, ["build", *loud, "--executor", "ray", "--out", str(tmp_path / "ray")])
    finally:
        stop.set()
        killer.join()
    assert killed, "no shard worker was seen to kill"
    assert on_ray.exit_code == 0, on_ray.output
    assert "Ray: 1 worker died and was restarted" in on_ray.output, on_ray.output
    rows, metrics, _ = site_numbers(tmp_path / "whole")
    got_rows, got_metrics, _ = site_numbers(tmp_path / "ray")
    assert got_rows == rows
    assert without_times(sharded_only(got_metrics)) == without_times(sharded_only(metrics))


@pytest.mark.slow
def test_a_ray_shard_that_fails_for_good_writes_nothing_and_names_it(keras, tmp_path):
    pytest.importorskip("ray.data")
    common = sharded_setup(keras, tmp_path)
    (tmp_path / "m.keras").write_bytes(b"not a model")  # every worker fails to load it
    before = ray_processes()
    result = subprocess.run([sys.executable, "-m", "reportgen", "build", *common, "--executor",
                             "ray", "--out", str(tmp_path / "site")],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 2, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "shard" in errors[0] and "model.path" in errors[0], errors
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "site").exists()
    assert ray_processes() <= before


@pytest.mark.slow
def test_unlabeled_photos_sharded_give_the_unsharded_report(keras, tmp_path):
    """Photos without labels: their sample and quality images are chosen by every image's
    predicted class, so the merge runs the methods; the report is still the unsharded one."""
    common = sharded_setup(keras, tmp_path)
    for key, value in (("data.source", "images"), ("data.split", None)):
        k = next(k for k, a in enumerate(common) if a.startswith(key + "="))
        common[k - 1:k + 1] = ["--set", f"{key}={value}"] if value else []
    common += ["--set", "data.classes=['red', 'green', 'blue']"]
    run = CliRunner().invoke
    whole = run(main, ["build", *common, "--out", str(tmp_path / "whole")])
    assert whole.exit_code == 0, whole.output
    folders = []
    for i in (1, 2):
        done = run(main, ["build", *common, "--shard", f"{i}/2", "--out", str(tmp_path / f"s{i}")])
        assert done.exit_code == 0, done.output
        folders.append(str(tmp_path / f"s{i}"))
    merged = run(main, ["merge", "--quiet", *folders, "--out", str(tmp_path / "merged")])
    assert merged.exit_code == 0, merged.output
    rows, metrics, _ = site_numbers(tmp_path / "whole")
    got_rows, got_metrics, _ = site_numbers(tmp_path / "merged")
    assert got_rows == rows
    assert without_times(sharded_only(got_metrics)) == without_times(sharded_only(metrics))
    assert any("the methods ran in the merge" in n for n in got_metrics["notes"])
