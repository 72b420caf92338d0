"""Shared fixtures: tiny models built in code and small random images."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Builds in tests cache into a private folder, never the user's ~/.cache/reportgen.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="reportgen-test-cache-")

import numpy as np
import pytest


#: Fixtures that run a whole build: every test that uses one (directly or through another
#: fixture) is marked slow, as is every browser test, so plain ``pytest`` stays the fast layer.
WHOLE_BUILDS = {"smoke_site", "second_site"}
BROWSER = Path(__file__).resolve().parent / "browser"


@pytest.hookimpl(tryfirst=True)  # before ``-m`` selects by marker
def pytest_collection_modifyitems(config, items):
    for item in items:
        if WHOLE_BUILDS & set(getattr(item, "fixturenames", ())) or \
                BROWSER in Path(item.path).parents:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    """Every test starts with an empty cache of its own ($XDG_CACHE_HOME: the shapes data and
    the build cache), so no test reuses what another left and the results do not depend on the
    order the tests run in. The shared smoke builds name their own ``data.cache_dir``."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def keras():
    import keras

    keras.utils.set_random_seed(7)
    return keras


#: The smoke build every end-to-end check of one site shares (the CLI and browser tests):
#: configs/smoke.toml with a gallery large enough to hold every test image, and the trained
#: model in the site (report.include_model; the default leaves it out).
SMOKE = Path(__file__).resolve().parent.parent / "configs" / "smoke.toml"
SMOKE_SETS = ["--set", "explain.gallery_size=60", "--set", "report.include_model=true"]


@pytest.fixture(scope="session")
def smoke_site(tmp_path_factory):
    """(site folder, click result) of one smoke build; its cache is ``site/../cache``. Its
    decoded images are kept in a temporary file (the image store of a large data set), so
    every check of this site checks a build that reads its images from disk."""
    from click.testing import CliRunner

    from reportgen.cli import main
    from reportgen.data import store

    tmp = tmp_path_factory.mktemp("smoke")
    out = tmp / "site"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(store, "IN_MEMORY_BYTES", 0)
        result = CliRunner().invoke(main, ["build", "--config", str(SMOKE), "--out", str(out),
                                           "--set", f"data.cache_dir={tmp / 'cache'}",
                                           "--quiet", *SMOKE_SETS], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out, result


@pytest.fixture(scope="session")
def second_site(smoke_site):
    """A second model on the smoke site's data (one epoch, another learning rate), built with
    the same cache: the other side of every comparison."""
    from click.testing import CliRunner

    from reportgen.cli import main

    out = smoke_site[0].parent / "second"
    result = CliRunner().invoke(main, ["build", "--config", str(SMOKE), "--out", str(out),
                                       "--set", f"data.cache_dir={out.parent / 'cache'}",
                                       "--quiet", *SMOKE_SETS, "--set", "training.epochs=1",
                                       "--set", "training.learning_rate=0.01"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out


def _source_cells(line: str) -> int:
    """Cells of a pipe-table line of Markdown source: pipes not escaped by a backslash,
    less the leading and trailing one."""
    pipes, escaped = 0, False
    for ch in line.strip():
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "|":
            pipes += 1
    return pipes - 1


def markdown_tables(text: str) -> list[list[list[str]]]:
    """Every table of Markdown ``text`` as CommonMark with the GFM table rule (markdown-it-py)
    renders it: a list of rows of cell texts (as displayed: escapes undone, without images
    and markup), the header row first. Asserts that each block
    of consecutive source lines starting with ``|`` renders as exactly one table, with one row
    per line (less the delimiter row) and, in every line, as many cells as the header; and
    that no line of pipes renders as a paragraph."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    lines = text.split("\n")
    blocks, start = [], None
    for i, line in enumerate(lines + [""]):
        if line.lstrip().startswith("|") and start is None:
            start = i
        elif not line.lstrip().startswith("|") and start is not None:
            blocks.append((start, i))
            start = None
    tables, rendered = [], []
    for k, tok in enumerate(tokens):
        if tok.type == "table_open":
            rendered.append(tuple(tok.map))
            tables.append([])
        elif tok.type == "tr_open":
            tables[-1].append([])
        elif tok.type == "inline" and tokens[k - 1].type in ("th_open", "td_open"):
            tables[-1][-1].append("".join(c.content for c in tok.children or []
                                          if c.type in ("text", "code_inline")))
        elif tok.type == "inline" and tokens[k - 1].type == "paragraph_open":
            assert not tok.content.lstrip().startswith("|"), \
                f"a table rendered as a paragraph: {tok.content[:120]!r}"
    assert rendered == blocks, f"tables at source lines {rendered}, pipe blocks at {blocks}"
    for (a, b), rows in zip(blocks, tables, strict=True):
        width = len(rows[0])
        assert len(rows) == b - a - 1, f"lines {a}-{b}: {len(rows)} rows"
        assert all(len(r) == width for r in rows)
        for line in lines[a:b]:
            assert _source_cells(line) == width, f"line {line[:120]!r}: not {width} cells"
    return tables


@pytest.fixture(scope="session")
def md_tables():
    """:func:`markdown_tables`."""
    return markdown_tables
