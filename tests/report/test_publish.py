"""Publishing to gh-pages against local repositories: history kept, working tree untouched."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from reportgen.cli import main
from reportgen.report.publish import PublishError, PublishOptions, pages_url, publish


def git(cwd, *args) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_AUTHOR_NAME", "T")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "t@example.com")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "T")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "t@example.com")
    r = tmp_path / "proj"
    r.mkdir()
    git(r, "init", "-q", "-b", "main")
    (r / "code.py").write_text("print(1)\n")
    (r / ".gitignore").write_text("site/\n")
    git(r, "add", ".")
    git(r, "commit", "-q", "-m", "init")
    (r / "code.py").write_text("print(2)\n")  # an uncommitted change that must survive
    (r / "staged.txt").write_text("staged\n")
    git(r, "add", "staged.txt")
    site = r / "site"
    (site / "img").mkdir(parents=True)
    (site / "index.html").write_text("<h1>v1</h1>")
    (site / "img" / "a.jpg").write_bytes(b"\xff\xd8")
    (site / "_private.html").write_text("underscore")
    (site / ".reportgen-site").write_text(
        '{"files": ["index.html", "img/a.jpg", "_private.html"]}')
    return r


def state(r: Path):
    return (git(r, "status", "--porcelain"), git(r, "rev-parse", "HEAD"),
            git(r, "symbolic-ref", "HEAD"), (r / "code.py").read_text(),
            git(r, "diff", "--cached", "--name-only"))


def test_publish_commits_site_as_branch_without_touching_work(repo):
    before = state(repo)
    done = publish(repo / "site", repo=repo)
    assert state(repo) == before
    files = set(git(repo, "ls-tree", "-r", "--name-only", "gh-pages").splitlines())
    assert files == {"index.html", "img/a.jpg", "_private.html", ".nojekyll"}
    assert git(repo, "show", "gh-pages:index.html") == "<h1>v1</h1>"
    assert git(repo, "rev-parse", "gh-pages") == done.commit


def test_second_publish_keeps_history(repo):
    first = publish(repo / "site", repo=repo).commit
    (repo / "site" / "index.html").write_text("<h1>v2</h1>")
    (repo / "site" / "img" / "a.jpg").unlink()
    second = publish(repo / "site", repo=repo,
                     options=PublishOptions(message="v2", cname="docs.example.org")).commit
    assert git(repo, "rev-parse", f"{second}^") == first
    assert git(repo, "log", "-1", "--format=%s", "gh-pages") == "v2"
    files = set(git(repo, "ls-tree", "-r", "--name-only", "gh-pages").splitlines())
    assert files == {"index.html", "_private.html", ".nojekyll", "CNAME"}
    assert git(repo, "show", "gh-pages:CNAME") == "docs.example.org"


def add_written(site, *names):
    """Record files as written by reportgen in the site's marker."""
    import json

    marker = site / ".reportgen-site"
    data = json.loads(marker.read_text())
    data["files"] += list(names)
    marker.write_text(json.dumps(data))


def test_files_too_large_for_github_left_out(repo):
    (repo / "site" / "model.keras").write_bytes(b"x" * 2000)
    add_written(repo / "site", "model.keras")
    done = publish(repo / "site", repo=repo, options=PublishOptions(max_file_bytes=1000,
                                                                    include_model=True))
    assert done.left_out == ["model.keras"]
    files = set(git(repo, "ls-tree", "-r", "--name-only", "gh-pages").splitlines())
    assert "model.keras" not in files and "index.html" in files
    assert (repo / "site" / "model.keras").exists()


def test_push_to_bare_remote_and_rejection(repo, tmp_path):
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    git(repo, "remote", "add", "origin", str(bare))
    done = publish(repo / "site", repo=repo, options=PublishOptions(push=True))
    assert git(bare, "rev-parse", "gh-pages") == done.commit
    # Someone else publishes from another clone: our next push is not a fast-forward.
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(bare), str(other))
    git(other, "checkout", "-q", "gh-pages")
    (other / "x.html").write_text("theirs")
    git(other, "add", ".")
    git(other, "commit", "-q", "-m", "theirs")
    git(other, "push", "-q", "origin", "gh-pages")
    (repo / "site" / "index.html").write_text("<h1>v3</h1>")
    with pytest.raises(PublishError, match="rejected"):
        publish(repo / "site", repo=repo, options=PublishOptions(push=True))


def test_errors_outside_git_and_missing_site(tmp_path, repo):
    site = repo / "site"
    outside = tmp_path / "plain"
    outside.mkdir()
    with pytest.raises(PublishError, match="not inside a git repository"):
        publish(site, repo=outside)
    with pytest.raises(PublishError, match="folder not found"):
        publish(repo / "nope", repo=repo)


def test_cli_publish_prints_commit_and_url(repo, monkeypatch):
    git(repo, "remote", "add", "origin", "git@github.com:Ada/shapes-report.git")
    monkeypatch.chdir(repo)
    result = CliRunner().invoke(main, ["publish", "--site", "site"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == git(repo, "rev-parse", "gh-pages")
    assert "https://ada.github.io/shapes-report/" in result.stderr
    monkeypatch.chdir(repo.parent)
    bad = CliRunner().invoke(main, ["publish", "--site", "proj/site"])
    assert bad.exit_code == 2 and "not inside a git repository" in bad.output
    assert "Traceback" not in bad.output


@pytest.mark.parametrize("url, want", [
    ("https://github.com/Ada/repo.git", "https://ada.github.io/repo/"),
    ("git@github.com:Ada/repo", "https://ada.github.io/repo/"),
    ("https://github.com/ada/ada.github.io", "https://ada.github.io/"),
    ("https://gitlab.com/ada/repo", None),
])
def test_pages_url(url, want):
    assert pages_url(url, None) == want
    assert pages_url(url, "x.org") == "https://x.org/"


# -- what publish never does -------------------------------------------------------------------

def tree(repo, branch):
    return set(git(repo, "ls-tree", "-r", "--name-only", branch).splitlines())


@pytest.mark.parametrize("branch", ["main", "other-worktree"])
def test_a_checked_out_branch_is_never_written(repo, tmp_path, branch):
    if branch == "other-worktree":
        git(repo, "worktree", "add", "-q", "-b", branch, str(tmp_path / "wt"))
    before = git(repo, "rev-parse", branch), state(repo)
    with pytest.raises(PublishError, match="is checked out") as err:
        publish(repo / "site", repo=repo, options=PublishOptions(branch=branch))
    assert err.value.exit_code == 2
    assert (git(repo, "rev-parse", branch), state(repo)) == before
    assert tree(repo, "main") == {"code.py", ".gitignore"}


def test_a_branch_reportgen_did_not_publish_needs_its_name(repo):
    git(repo, "branch", "docs")  # a branch of the project's own files
    with pytest.raises(PublishError, match="not published by reportgen.*--overwrite-branch docs"):
        publish(repo / "site", repo=repo, options=PublishOptions(branch="docs"))
    assert tree(repo, "docs") == {"code.py", ".gitignore"}
    with pytest.raises(PublishError, match="must be the --branch"):
        publish(repo / "site", repo=repo, options=PublishOptions(branch="docs",
                                                                 overwrite="gh-pages"))
    done = publish(repo / "site", repo=repo, options=PublishOptions(branch="docs",
                                                                    overwrite="docs"))
    assert done.dropped == [".gitignore", "code.py"]  # said, not silent
    assert tree(repo, "docs") == {"index.html", "img/a.jpg", "_private.html", ".nojekyll"}
    # Its tip is now reportgen's: the next publish needs no flag.
    publish(repo / "site", repo=repo, options=PublishOptions(branch="docs"))


@pytest.mark.parametrize("extra", [".env", "notes/secret.txt", "index.html.orig"])
def test_only_files_reportgen_wrote_are_published(repo, extra):
    path = repo / "site" / extra
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("API_KEY=hunter2")
    done = publish(repo / "site", repo=repo)
    assert extra not in tree(repo, "gh-pages") and done.foreign == [extra]


@pytest.mark.parametrize("folder", [".", "site-without-marker"])
def test_a_folder_reportgen_did_not_build_is_refused(repo, folder):
    target = repo / folder
    target.mkdir(exist_ok=True)
    (target / "index.html").write_text("<h1>my own page</h1>")
    with pytest.raises(PublishError, match="not a site built by reportgen") as err:
        publish(target, repo=repo)
    assert err.value.exit_code == 2
    assert git(repo, "branch", "--list", "gh-pages") == ""


def test_a_site_written_by_sitewriter_lists_exactly_its_files(repo, tmp_path):
    from reportgen.report.site import SiteWriter, site_files

    with SiteWriter(tmp_path / "built") as site:
        site.path("index.html").write_text("x")
        site.path("img/b.png").write_bytes(b"png")
        site.commit()
    assert site_files(tmp_path / "built") == ["img/b.png", "index.html"]
    publish(tmp_path / "built", repo=repo)
    assert tree(repo, "gh-pages") == {"index.html", "img/b.png", ".nojekyll"}


@pytest.mark.parametrize("cname", ["https://docs.example.org", "docs example.org",
                                   "docs.example.org\nevil", "", "docs.example.org/path",
                                   "-bad.example.org", "localhost"])
def test_bad_cname_is_refused_before_anything_is_written(repo, cname):
    with pytest.raises(PublishError, match="--cname") as err:
        publish(repo / "site", repo=repo, options=PublishOptions(cname=cname))
    assert err.value.exit_code == 2
    assert git(repo, "branch", "--list", "gh-pages") == ""


@pytest.mark.parametrize("opts,needle", [
    (PublishOptions(remote="origin; rm -rf /"), "--remote"),
    (PublishOptions(message="  "), "--message"),
])
def test_other_bad_options_are_refused(repo, opts, needle):
    with pytest.raises(PublishError, match=needle):
        publish(repo / "site", repo=repo, options=opts)


def test_cli_publish_refuses_the_checked_out_branch_in_one_line(repo, monkeypatch):
    monkeypatch.chdir(repo)
    result = CliRunner().invoke(main, ["publish", "--site", "site", "--branch", "main"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1 and "is checked out" in result.output


def test_trained_weights_are_published_only_when_asked(repo):
    (repo / "site" / "model.keras").write_bytes(b"weights")
    add_written(repo / "site", "model.keras")
    done = publish(repo / "site", repo=repo)
    assert done.withheld == ["model.keras"] and done.left_out == []
    files = set(git(repo, "ls-tree", "-r", "--name-only", "gh-pages").splitlines())
    assert "model.keras" not in files and "index.html" in files
    asked = publish(repo / "site", repo=repo, options=PublishOptions(include_model=True))
    assert asked.withheld == [] and not asked.unchanged
    assert git(repo, "show", "gh-pages:model.keras") == "weights"


def test_an_unchanged_site_makes_no_commit(repo, monkeypatch):
    first = publish(repo / "site", repo=repo)
    again = publish(repo / "site", repo=repo)
    assert again.unchanged and again.commit == first.commit
    assert git(repo, "rev-parse", "gh-pages") == first.commit
    assert git(repo, "rev-list", "--count", "gh-pages") == "1"
    monkeypatch.chdir(repo)
    result = CliRunner().invoke(main, ["publish", "--site", "site"])
    assert result.exit_code == 0, result.output
    assert "Nothing changed: gh-pages already holds this site" in result.stderr
    assert result.stdout.strip() == first.commit
    (repo / "site" / "index.html").write_text("<h1>v2</h1>")  # a change: a new commit
    changed = publish(repo / "site", repo=repo)
    assert not changed.unchanged and git(repo, "rev-parse", f"{changed.commit}^") == first.commit


def test_cli_says_the_weights_were_left_out(repo, monkeypatch):
    (repo / "site" / "model.keras").write_bytes(b"weights")
    add_written(repo / "site", "model.keras")
    monkeypatch.chdir(repo)
    result = CliRunner().invoke(main, ["publish", "--site", "site"])
    assert result.exit_code == 0, result.output
    assert "Left out model.keras (the trained weights; add --include-model" in result.stderr
    again = CliRunner().invoke(main, ["publish", "--site", "site", "--include-model"])
    assert again.exit_code == 0 and "Committed site to gh-pages" in again.stderr
    assert git(repo, "show", "gh-pages:model.keras") == "weights"
