"""``reportgen cache``: size and entries of the build cache, --clear and --max-size pruning the
least recently used entries, and nothing outside reportgen's own entries touched."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from reportgen.cli import main
from reportgen.pipeline.cache import cache_entries, human_size, parse_size, prune


def fill(base, name, size, used):
    """A cache entry ``name`` (a folder when it has no suffix) of ``size`` bytes, last used
    at ``used`` (seconds since the epoch)."""
    path = base / name
    if path.suffix:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * size)
    else:
        path.mkdir(parents=True)
        (path / "model.keras").write_bytes(b"x" * size)
    os.utime(path, (used, used))
    return path


@pytest.fixture
def cache(tmp_path):
    base = tmp_path / "cache"
    fill(base, "shapes-v3-64px-600x4-seed0", 4000, 1000)
    fill(base, "builds/train-aaa", 3000, 4000)
    fill(base, "builds/explain-bbb.pkl", 2000, 2000)
    fill(base, "builds/report-ccc.pkl", 500, 5000)
    fill(base, "builds/figures/ddd", 100, 3000)
    (base / "mine.txt").write_text("a file of the user's")  # never counted nor removed
    return base


def test_entries_least_recently_used_first(cache):
    entries = cache_entries(cache)
    assert [e.path.name for e in entries] == [
        "shapes-v3-64px-600x4-seed0", "explain-bbb.pkl", "ddd", "train-aaa", "report-ccc.pkl"]
    assert [e.size for e in entries] == [4000, 2000, 100, 3000, 500]


def test_prune_removes_the_least_recently_used_until_it_fits(cache):
    # 9,600 bytes in all; at most 4,000: shapes (4000) and explain (2000) go -> 3,600 left.
    removed = prune(cache, 4000)
    assert [e.path.name for e in removed] == ["shapes-v3-64px-600x4-seed0", "explain-bbb.pkl"]
    assert sum(e.size for e in cache_entries(cache)) == 3600
    assert prune(cache, 4000) == []
    assert len(prune(cache, 0)) == 3 and cache_entries(cache) == []
    assert (cache / "mine.txt").is_file()


@pytest.mark.parametrize("text, want", [("0", 0), ("500", 500), ("500M", 500_000_000),
                                        ("2G", 2_000_000_000), ("1.5GB", 1_500_000_000),
                                        ("300MiB", 300 * 2**20), ("4 kB", 4000)])
def test_parse_size(text, want):
    assert parse_size(text) == want


@pytest.mark.parametrize("text", ["", "big", "-1M", "5 parsecs", "1e3"])
def test_parse_size_refuses(text):
    with pytest.raises(ValueError, match="is not a size"):
        parse_size(text)


def test_human_size():
    assert [human_size(n) for n in (0, 999, 3400, 201_300_000, 1_200_000_000)] == [
        "0 B", "999 B", "3.4 kB", "201.3 MB", "1.2 GB"]


def test_cli_prints_size_and_prunes(cache):
    shown = CliRunner().invoke(main, ["cache", "--dir", str(cache)])
    assert shown.exit_code == 0, shown.output
    assert f"Cache {cache}: 9.6 kB in 5 entries" in shown.output
    assert "  trained models: 1, 3.0 kB" in shown.output
    pruned = CliRunner().invoke(main, ["cache", "--dir", str(cache), "--max-size", "4k",
                                       "--list"])
    assert pruned.exit_code == 0, pruned.output
    assert "Removed 2 entries, 6.0 kB" in pruned.output
    assert "3.6 kB in 3 entries" in pruned.output and "builds/train-aaa" in pruned.output
    cleared = CliRunner().invoke(main, ["cache", "--dir", str(cache), "--clear"])
    assert "Removed 3 entries" in cleared.output and "0 B in 0 entries" in cleared.output
    assert (cache / "mine.txt").read_text() == "a file of the user's"


def test_cli_refuses_a_bad_size_in_one_line(cache):
    bad = CliRunner().invoke(main, ["cache", "--dir", str(cache), "--max-size", "lots"])
    assert bad.exit_code == 2 and "--max-size" in bad.output and "is not a size" in bad.output
    assert "Traceback" not in bad.output
    both = CliRunner().invoke(main, ["cache", "--dir", str(cache), "--clear", "--max-size", "1G"])
    assert both.exit_code == 2
    assert len(cache_entries(cache)) == 5


def test_a_reused_entry_is_touched(tmp_path):
    """A cache hit marks the entry as used, so pruning keeps what builds still reuse."""
    from reportgen import config
    from reportgen.pipeline.cache import BuildCache

    cfg = config.load(None, [f"data.cache_dir={tmp_path}"])
    store = BuildCache(cfg)
    store.put_explained("k", {"a": 1})  # any picklable value
    path = store.root / "explain-k.pkl"
    os.utime(path, (1000, 1000))
    store._load("explain", "k")
    assert path.stat().st_mtime > 1000
