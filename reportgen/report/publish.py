"""Publish a site folder to a branch (gh-pages) the way ghp-import does it.

The folder becomes the whole content of the branch in a new commit whose parent is the branch's
previous tip (history kept), built with git plumbing and a temporary index: the user's working
tree, index, current branch and ignore rules are never touched. ``.nojekyll`` is always added (so
GitHub Pages serves ``_``-prefixed paths) and ``CNAME`` when a domain is given.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from reportgen.errors import ReportgenError
from reportgen.report.site import MARKER, site_files

#: Commit-message trailer that marks a branch tip written by reportgen publish.
TRAILER = "Published-by: reportgen"
_DOMAIN = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+"
                     r"[a-z][a-z0-9-]{0,61}[a-z0-9]$", re.IGNORECASE)


class PublishError(ReportgenError):
    """Publishing failed; the message says why (exit code 1; 2 for usage mistakes)."""


@dataclass
class Published:
    """The commit made, the branch, whether it was pushed, the expected Pages URL, the files
    left out for their size, the files of the folder reportgen did not write (never
    published), and the files of the previous tip the new one no longer has."""

    commit: str
    branch: str
    pushed: bool
    url: str | None
    left_out: list[str]
    foreign: list[str]
    dropped: list[str]
    #: Trained weights in the site left out because ``--include-model`` was not given.
    withheld: list[str] = field(default_factory=list)
    #: True when the site equals the branch's tip: no commit was made (``commit`` is the tip).
    unchanged: bool = False


def _git(args: list[str], cwd: Path, env: dict | None = None, check: bool = True,
         input_: str | None = None) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, env=env, input=input_, text=True,
                              capture_output=True)
    except FileNotFoundError:
        raise PublishError("git is not installed or not on PATH", exit_code=2) from None
    if check and proc.returncode != 0:
        msg = (proc.stderr or proc.stdout).strip().splitlines()
        raise PublishError(f"git {args[0]} failed: {msg[-1] if msg else proc.returncode}")
    return proc


def pages_url(remote_url: str | None, cname: str | None) -> str | None:
    """Return where GitHub Pages will serve the branch, from the remote URL or the domain."""
    if cname:
        return f"https://{cname}/"
    if not remote_url:
        return None
    m = re.search(r"github\.com[:/]+([^/]+)/([^/]+?)(?:\.git)?/?$", remote_url)
    if not m:
        return None
    user, repo = m.group(1), m.group(2)
    if repo.lower() == f"{user.lower()}.github.io":
        return f"https://{user.lower()}.github.io/"
    return f"https://{user.lower()}.github.io/{repo}/"


@dataclass
class PublishOptions:
    """Where and how to publish: the branch (gh-pages), the remote pushed to with ``push``,
    the commit message (None: a default naming the site folder), a custom domain for
    ``CNAME``, and the size over which a file is left out (GitHub refuses files over 100 MB,
    such as a large ``model.keras``)."""

    branch: str = "gh-pages"
    remote: str = "origin"
    push: bool = False
    message: str | None = None
    cname: str | None = None
    max_file_bytes: int = 100_000_000
    #: The branch whose tip may be replaced although reportgen did not publish it (must
    #: equal ``branch``: the user names it to confirm).
    overwrite: str | None = None
    #: Publish the trained weights (``model.keras``) when the site holds them.
    include_model: bool = False

    def check(self) -> None:
        """Raise PublishError (exit 2) naming the option for any value publish cannot use."""
        if self.cname is not None and not _DOMAIN.match(self.cname):
            raise PublishError(f"--cname {self.cname!r}: expected a domain name such as "
                               "docs.example.org (no scheme, path, space or newline)",
                               exit_code=2)
        if not re.fullmatch(r"[A-Za-z0-9._/-]+", self.remote):
            raise PublishError(f"--remote {self.remote!r}: not a remote name", exit_code=2)
        if self.message is not None and (not self.message.strip() or "\0" in self.message):
            raise PublishError("--message: expected a non-empty commit message", exit_code=2)
        if self.overwrite is not None and self.overwrite != self.branch:
            raise PublishError(f"--overwrite-branch {self.overwrite!r}: names the branch to "
                               f"replace and must be the --branch ({self.branch!r})",
                               exit_code=2)


def publish(site: str | Path, *, repo: str | Path = ".",
            options: PublishOptions | None = None) -> Published:
    """Commit ``site`` as the whole content of a branch in the git repository at ``repo``;
    files over ``options.max_file_bytes`` are left out and listed in ``Published.left_out``,
    ``model.keras`` unless ``options.include_model`` (``Published.withheld``). A site whose
    files equal the branch's tip makes no commit (``Published.unchanged``).

    Raises:
        PublishError: not in a git repository, the site folder is missing or has no
            index.html, the branch name is invalid, or the push was rejected.
    """
    opts = options or PublishOptions()
    opts.check()
    site = Path(site).absolute()
    root = _repository(site, Path(repo).absolute(), opts.branch)
    ref = f"refs/heads/{opts.branch}"
    parent = _git(["rev-parse", "--verify", "--quiet", ref], root, check=False).stdout.strip()
    _check_branch(root, opts, parent)
    tree, left_out, foreign, withheld = _site_tree(site, root, opts)
    dropped = _dropped(root, parent, tree)
    unchanged = bool(parent) and _tree_of(root, parent) == tree
    if unchanged:  # the same files as the tip: a new commit would change nothing
        commit = parent
    else:
        msg = (opts.message or f"Publish report from {site.name} with reportgen").strip()
        args = ["commit-tree", tree, "-m", msg, "-m", TRAILER] + (
            ["-p", parent] if parent else [])
        commit = _git(args, root).stdout.strip()
        _git(["update-ref", "-m", "reportgen publish", ref, commit]
             + ([parent] if parent else []), root)
    remote_url = _git(["remote", "get-url", opts.remote], root, check=False)
    url = pages_url(remote_url.stdout.strip() if remote_url.returncode == 0 else None,
                    opts.cname)
    if opts.push:
        if remote_url.returncode != 0:
            raise PublishError(f"--remote {opts.remote}: no such remote; the commit is on "
                               f"branch {opts.branch}, push it yourself or add the remote",
                               exit_code=2)
        _push(root, opts, ref, commit)
    return Published(commit=commit, branch=opts.branch, pushed=opts.push, url=url,
                     left_out=left_out, foreign=foreign, dropped=dropped, withheld=withheld,
                     unchanged=unchanged)


def _tree_of(root: Path, commit: str) -> str:
    """The tree id of ``commit``."""
    return _git(["rev-parse", f"{commit}^{{tree}}"], root).stdout.strip()


def _check_branch(root: Path, opts: PublishOptions, tip: str) -> None:
    """Refuse a branch checked out in any worktree (its files would be replaced by the site),
    and one whose tip reportgen did not publish unless ``--overwrite-branch`` names it."""
    worktrees = _git(["worktree", "list", "--porcelain"], root).stdout.splitlines()
    if f"branch refs/heads/{opts.branch}" in worktrees:
        raise PublishError(f"--branch {opts.branch}: is checked out; publish makes the site the "
                           "whole content of the branch, which would delete your files at its "
                           "tip; publish to another branch (gh-pages)", exit_code=2)
    if tip and opts.overwrite != opts.branch:
        message = _git(["log", "-1", "--format=%B", tip], root).stdout
        if TRAILER not in message.splitlines():
            raise PublishError(f"--branch {opts.branch}: its tip {tip[:10]} was not published by "
                               "reportgen; replacing its files needs --overwrite-branch "
                               f"{opts.branch}", exit_code=2)


def _dropped(root: Path, tip: str, tree: str) -> list[str]:
    """Files of the previous tip that the new tree no longer has."""
    if not tip:
        return []
    def names(treeish):
        return set(_git(["ls-tree", "-r", "--name-only", treeish], root).stdout.splitlines())
    return sorted(names(tip) - names(tree))


def _repository(site: Path, cwd: Path, branch: str) -> Path:
    """The top folder of the git repository at ``cwd``, after checking the site and branch."""
    if not site.is_dir():
        raise PublishError(f"--site {site}: folder not found; run `reportgen build` first",
                           exit_code=2)
    if site_files(site) is None:
        raise PublishError(f"--site {site}: not a site built by reportgen (no {MARKER} listing "
                           "its files); publish only publishes what reportgen build or compare "
                           "wrote", exit_code=2)
    if not (site / "index.html").is_file():
        raise PublishError(f"--site {site}: has no index.html; is it a reportgen site?",
                           exit_code=2)
    top = _git(["rev-parse", "--show-toplevel"], cwd, check=False)
    if top.returncode != 0:
        raise PublishError(f"{cwd} is not inside a git repository; run publish from your "
                           "project's repository (git init first)", exit_code=2)
    root = Path(top.stdout.strip())
    if _git(["check-ref-format", "--branch", branch], root, check=False).returncode != 0:
        raise PublishError(f"--branch {branch!r} is not a valid branch name", exit_code=2)
    return root


#: Site files holding trained weights: published only with ``--include-model``.
MODEL_FILES = frozenset({"model.keras"})


def _site_tree(site: Path, root: Path, opts: PublishOptions
               ) -> tuple[str, list[str], list[str], list[str]]:
    """Write the git tree of the files reportgen wrote into the site (plus .nojekyll and
    CNAME) through a temporary index; return (tree id, files left out for their size, files
    in the folder reportgen did not write, trained weights withheld)."""
    written = [f for f in site_files(site) or [] if (site / f).is_file()]  # checked a site
    present = sorted(f.relative_to(site).as_posix() for f in site.rglob("*") if f.is_file())
    foreign = sorted(set(present) - set(written) - {MARKER})
    withheld = [] if opts.include_model else [f for f in written if f in MODEL_FILES]
    left_out = sorted(f for f in written if f not in withheld
                      and (site / f).stat().st_size > opts.max_file_bytes)
    staged = [f for f in written if f not in left_out and f not in withheld and f != MARKER]
    with tempfile.TemporaryDirectory(prefix="reportgen-publish-") as tmp:
        env = {**os.environ, "GIT_INDEX_FILE": str(Path(tmp) / "index"),
               "GIT_LITERAL_PATHSPECS": "1"}
        # Stage exactly those files (forced past ignore rules) into the temporary index.
        _git(["--work-tree", str(site), "add", "--force", "--pathspec-from-file=-",
              "--pathspec-file-nul"], root, env, input_="\0".join(staged))
        extras = {".nojekyll": ""}
        if opts.cname:
            extras["CNAME"] = opts.cname.strip() + "\n"
        for name, content in extras.items():
            if name == ".nojekyll" and (site / name).is_file():
                continue
            blob = _git(["hash-object", "-w", "--stdin"], root, env, input_=content).stdout
            _git(["update-index", "--add", "--cacheinfo", f"100644,{blob.strip()},{name}"],
                 root, env)
        return _git(["write-tree"], root, env).stdout.strip(), left_out, foreign, withheld


def _push(root: Path, opts: PublishOptions, ref: str, commit: str) -> None:
    pushed = _git(["push", opts.remote, f"{ref}:{ref}"], root, check=False)
    if pushed.returncode != 0:
        lines = (pushed.stderr or pushed.stdout).strip().splitlines()
        reason = next((ln.strip() for ln in lines if "rejected" in ln), lines[-1] if lines
                      else "unknown error")
        raise PublishError(f"push of {opts.branch} to {opts.remote} was rejected ({reason}); "
                           f"the local branch {opts.branch} has the new commit {commit[:10]}; "
                           f"fetch {opts.remote}/{opts.branch} and publish again")
