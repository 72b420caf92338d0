"""Command line: ``reportgen build``, ``merge``, ``keys``, ``compare``, ``gate``, ``publish``
and ``cache``.

Thin: each command reads its options, calls one library function, and turns a
:class:`~reportgen.errors.ReportgenError` into a one-line message and its exit code. Importing
this module does not import TensorFlow (``reportgen --help`` stays instant).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from reportgen import __version__
from reportgen.errors import PartsFailed, ReportgenError
from reportgen.text import duration


def _fail(err: ReportgenError, debug: bool) -> None:
    if debug:
        raise err
    click.echo(f"Error: {err}", err=True)
    sys.exit(err.exit_code)


def _os_failure(err: OSError, kept: Path | str, debug: bool) -> None:
    """A failure of the machine (full disk, read-only or vanished folder): one line naming the
    file, exit code 1; ``kept`` (the previous site, or the branch) is left as it was."""
    if debug:
        raise err
    where = err.filename or kept
    click.echo(f"Error: {where}: {err.strerror or err}; {kept} was left as it was", err=True)
    sys.exit(1)


@contextmanager
def _one_line_failures(out: Path | str, debug: bool) -> Iterator[None]:
    """What ``build`` and ``merge`` say when they fail: failed parts (strict), a user's
    mistake, the machine's error, or an interrupt, each in one line with ``out`` left as it
    was, and the exit code of its kind."""
    try:
        yield
    except PartsFailed as e:
        _warn_failed(e.failures)
        _fail(e, debug)
    except ReportgenError as e:
        _fail(e, debug)
    except OSError as e:
        _os_failure(e, out, debug)
    except KeyboardInterrupt as e:
        click.echo(f"{'Terminated' if isinstance(e, Terminated) else 'Interrupted'}; {out} was "
                   "left as it was.", err=True)
        sys.exit(143 if isinstance(e, Terminated) else 130)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that the build cleans up as for Ctrl-C."""


def _on_sigterm(signum, frame):
    raise Terminated()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reportgen")
def main() -> None:
    """Turn a Keras image classifier and a folder of images into a publishable report."""


# long: a Click command, one parameter per command-line option
@main.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="TOML config file (default: the built-in demo, configs/demo.toml, for the "
                   "demo data; the defaults for data.source = folder or images).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("site"), show_default=True,
              help="Output folder; replaced only if empty or written by reportgen.")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE",
              help="Override a config key; the value is read as TOML, else as a string. "
                   "Repeatable.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option("--strict", is_flag=True,
              help="Fail (exit 1, the previous site left as it was) when any part of the "
                   "report fails, instead of leaving it out with a note (for CI).")
@click.option("--shard", metavar="I/N",
              help="Do only the per-image work of the images whose content hash falls in "
                   "shard I of N (I in 1..N, 1-based) and write it to the shard folder --out; "
                   "join the N folders with `reportgen merge`. Needs model.source = \"load\".")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local",
              show_default=True,
              help="Where the per-image work runs: here, or as shards on Ray (pip install "
                   "'reportgen[ray]'), merged into the site --out.")
@click.option("--ray-address", metavar="ADDR",
              help="With --executor ray: the Ray cluster to use (default: a local Ray).")
@click.option("--debug", is_flag=True, help="Show the Python traceback of an error.")
def build(config_path: Path | None, out: Path, overrides: tuple[str, ...], quiet: bool,
          strict: bool, shard: str | None, executor: str, ray_address: str | None,
          debug: bool) -> None:
    """Train or load a model, evaluate and explain it, and write the report site.

    \b
    Examples:
      reportgen build                                  # the built-in shapes demo into site/
      reportgen build --config configs/smoke.toml --out /tmp/smoke
      reportgen build --set data.source=folder --set data.path=photos
      reportgen build --set model.source=load --set model.path=model.keras \\
                      --set data.source=folder --set data.path=photos

    A part that fails on the model (a Layers view, a method, a figure) is left out: the
    page notes it where it would have been, metrics.json lists it under "failures", a
    warning line says so at the end, and the exit status stays 0 (with --strict: 1).
    The last line printed is the path of the report's index.html.
    """
    import signal

    from reportgen import config as cfgmod

    signal.signal(signal.SIGTERM, _on_sigterm)
    where = _shard_option(shard, executor)
    with _one_line_failures(out, debug):
        if executor == "ray":
            from reportgen.pipeline.executors.ray import require_ray

            require_ray()
        cfg = cfgmod.load(config_path, overrides)
        if where is not None:
            _build_shard(cfg, out, where, quiet)
            return
        result = _run_build(cfg, out, quiet, strict, (executor, ray_address))
    click.echo(f"Built in {duration(result.timings.get('total', 0))}", err=True)
    _warn_failed(result.failures)
    click.echo(str(result.index))


def _shard_option(shard: str | None, executor: str) -> tuple[int, int] | None:
    """``--shard I/N`` read (a usage error, exit 2, when malformed or with Ray)."""
    if shard is None:
        return None
    from reportgen.pipeline.executors.shards import parse_shard

    if executor != "local":
        raise click.UsageError("--shard and --executor ray: Ray runs every shard itself")
    try:
        return parse_shard(shard)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--shard") from None


def _build_shard(cfg, out: Path, shard: tuple[int, int], quiet: bool) -> None:
    """``build --shard``: one shard folder; its path is the last line printed."""
    from reportgen.pipeline.executors.local import build_shard

    click.echo(str(build_shard(cfg, out, shard, show_progress=not quiet)))


def _run_build(cfg, out: Path, quiet: bool, strict: bool, executor: tuple[str, str | None]):
    """The build, here (``executor`` = ("local", None)) or as shards on Ray (with its
    address), merged."""
    if executor[0] == "ray":
        from reportgen.pipeline.executors.ray import build_on_ray

        return build_on_ray(cfg, out, executor[1], show_progress=not quiet, strict=strict)
    from reportgen.pipeline import build as run_build

    return run_build(cfg, out, show_progress=not quiet, strict=strict)


@main.command()
@click.argument("shards", nargs=-1, required=True,
                type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=Path("site"), show_default=True,
              help="Output folder; replaced only if empty or written by reportgen.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option("--strict", is_flag=True, help="Fail (exit 1) when any part of the report fails.")
@click.option("--debug", is_flag=True, help="Show the Python traceback of an error.")
def merge(shards: tuple[Path, ...], out: Path, quiet: bool, strict: bool, debug: bool) -> None:
    """Merge the shard folders of `reportgen build --shard I/N` into one report site.

    The set is refused (exit 2, one line) unless it holds every shard 1..N once, of one
    model, one configuration and one data set. The report is the one an unsharded build
    makes: its numbers are computed from the merged arrays; the gallery maps, the methods
    on the sample images, the class grid, the quality table and the Layers page run here.

    \b
    Example:
      for i in 1 2 3; do reportgen build --config c.toml --shard $i/3 --out shard-$i; done
      reportgen merge shard-1 shard-2 shard-3 --out site
    """
    from reportgen.pipeline import merge as run_merge

    with _one_line_failures(out, debug):
        result = run_merge(list(shards), out, show_progress=not quiet, strict=strict)
    click.echo(f"Built in {duration(result.timings.get('total', 0))}", err=True)
    _warn_failed(result.failures)
    click.echo(str(result.index))


def _warn_failed(failures: list) -> None:
    """One warning line per part that failed (``reportgen.guard.Failure``), on stderr."""
    for f in failures:
        click.echo(f"Warning: {f.line()}; left out of the report, noted where it would have "
                   "been and in metrics.json", err=True)


@main.command()
def keys() -> None:
    """List every config key with its default and meaning, then each explanation method's
    options (the table [explain.<method>] of a config file, or --set explain.<method>.KEY=V)."""
    from reportgen.config import all_keys
    from reportgen.explain.methods import option_keys

    for key, default, doc in all_keys() + option_keys():
        click.echo(f"{key} = {default!r}\n    {doc}")


@main.command()
@click.argument("sites", nargs=-1, required=True,
                type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=Path("compare"),
              show_default=True, help="Output folder; replaced only if empty or written by "
                                      "reportgen.")
@click.option("--title", help="Title of the comparison (default: the site names).")
@click.option("--debug", is_flag=True, help="Show the Python traceback of an error.")
def compare(sites: tuple[Path, ...], out: Path, title: str | None, debug: bool) -> None:
    """Compare models built by `reportgen build` on the same test set: accuracy with 95 %
    intervals, McNemar's exact test and Newcombe's paired interval per pair, per-class
    deltas, the images where one model is right and the other wrong, and whether their GradCAM
    maps agree.

    \b
    Example:
      reportgen build --set data.shapes_per_class=200 --out small
      reportgen build --config configs/transfer.toml --out mobilenet
      reportgen compare small mobilenet --out compare
    """
    from reportgen.report.comparison import write_comparison

    try:
        index = write_comparison(list(sites), out, title)
    except ReportgenError as e:
        _fail(e, debug)
    except OSError as e:
        _os_failure(e, out, debug)
    click.echo(str(index))


@main.command()
@click.argument("site", type=click.Path(file_okay=False, path_type=Path))
@click.option("--baseline", type=click.Path(file_okay=False, path_type=Path),
              help="A site of the baseline model on the same test images: fail when SITE is "
                   "significantly worse (exact McNemar test).")
@click.option("--min", "minimums", multiple=True, metavar="KEY=VALUE",
              help="Fail when metric KEY is below VALUE (KEY: a dotted path into "
                   "metrics.json or its test split, e.g. accuracy, curves.macro.roc_auc). "
                   "Repeatable.")
@click.option("--max", "maximums", multiple=True, metavar="KEY=VALUE",
              help="Fail when metric KEY is above VALUE (e.g. loss, calibration.ece). "
                   "Repeatable.")
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=0.05, show_default=True, help="Significance level of the paired test.")
@click.option("--summary", "summary_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also append the Markdown summary to this file (e.g. "
                   "$GITHUB_STEP_SUMMARY).")
@click.option("--debug", is_flag=True, help="Show the Python traceback of an error.")
def gate(site: Path, baseline: Path | None, minimums: tuple[str, ...],
         maximums: tuple[str, ...], alpha: float, summary_file: Path | None,
         debug: bool) -> None:
    """Pass or fail a built site for CI: exit 1 when a metric crosses its bound or the model
    is significantly worse than the baseline on the same test images, 0 otherwise, 2 on a
    usage error. Prints a Markdown summary for a pull-request comment or a job summary.

    \b
    Examples:
      reportgen gate site --min accuracy=0.9 --min curves.macro.roc_auc=0.95
      reportgen gate site --baseline main-site --max calibration.ece=0.1 \\
                     --summary "$GITHUB_STEP_SUMMARY"
    """
    from reportgen.report import gate as gt

    try:
        bounds = ([gt.parse_bound(t, "min") for t in minimums]
                  + [gt.parse_bound(t, "max") for t in maximums])
        decision = gt.decide(site, bounds, baseline, alpha)
        text = gt.summary(decision)
        if summary_file is not None:
            with open(summary_file, "a", encoding="utf-8") as f:
                f.write(text)
    except ReportgenError as e:
        _fail(e, debug)
    except OSError as e:
        _fail(ReportgenError(f"{e.filename or summary_file}: {e.strerror or e}",
                             exit_code=2), debug)
    click.echo(text, nl=False)
    sys.exit(decision.exit_code)


# long: a Click command, one parameter per command-line option
@main.command()
@click.option("--site", type=click.Path(file_okay=False, path_type=Path), default=Path("site"),
              show_default=True, help="The built site folder.")
@click.option("--branch", default="gh-pages", show_default=True, help="Branch to publish to.")
@click.option("--remote", default="origin", show_default=True, help="Remote to push to.")
@click.option("--push", is_flag=True, help="Push the branch after committing.")
@click.option("--message", help="Commit message.")
@click.option("--cname", metavar="DOMAIN", help="Custom domain (writes CNAME).")
@click.option("--overwrite-branch", metavar="BRANCH",
              help="Replace the files of BRANCH (the --branch) although its tip was not "
                   "published by reportgen.")
@click.option("--include-model", is_flag=True,
              help="Publish the trained weights (model.keras) too, when the site holds them "
                   "(report.include_model = true); left out otherwise.")
@click.option("--debug", is_flag=True, help="Show the Python traceback of an error.")
def publish(site: Path, branch: str, remote: str, push: bool, message: str | None,
            cname: str | None, overwrite_branch: str | None, include_model: bool,
            debug: bool) -> None:
    """Commit the site as the whole content of a branch (gh-pages), keeping its history.

    Run it inside your git repository. Your working tree, index and current branch are not
    touched, and only the files reportgen wrote into the site are published. A branch that is
    checked out is refused, and so is one whose tip reportgen did not publish unless
    --overwrite-branch names it. GitHub Pages then serves the branch.

    \b
    Example:
      reportgen build && reportgen publish --push
    """
    from reportgen.report.publish import PublishOptions
    from reportgen.report.publish import publish as run_publish

    try:
        done = run_publish(site, options=PublishOptions(
            branch=branch, remote=remote, push=push, message=message, cname=cname,
            overwrite=overwrite_branch, include_model=include_model))
    except ReportgenError as e:
        _fail(e, debug)
    except OSError as e:
        _os_failure(e, f"branch {branch}", debug)
    for rel in done.left_out:
        click.echo(f"Warning: left out {rel} (over 100 MB, which GitHub refuses)", err=True)
    for rel in done.foreign:
        click.echo(f"Warning: left out {rel} (reportgen did not write it)", err=True)
    if done.dropped:
        click.echo(f"Warning: the new {done.branch} tip no longer has {len(done.dropped)} "
                   f"file{'' if len(done.dropped) == 1 else 's'} of the previous one: "
                   f"{', '.join(done.dropped[:5])}"
                   + (" ..." if len(done.dropped) > 5 else ""), err=True)
    for rel in done.withheld:
        click.echo(f"Left out {rel} (the trained weights; add --include-model to publish "
                   "them)", err=True)
    pushed = f" and pushed to {remote}" if done.pushed else " (not pushed; add --push)"
    if done.unchanged:
        click.echo(f"Nothing changed: {done.branch} already holds this site at "
                   f"{done.commit[:10]}; no commit made" + pushed, err=True)
    else:
        click.echo(f"Committed {site} to {done.branch} as {done.commit[:10]}" + pushed,
                   err=True)
    if done.url:
        click.echo(f"GitHub Pages will serve it at {done.url} (set Pages to deploy from the "
                   f"{done.branch} branch)", err=True)
    click.echo(done.commit)


@main.command()
@click.option("--dir", "cache_dir", type=click.Path(file_okay=False, path_type=Path),
              help="The cache folder (data.cache_dir; default: $XDG_CACHE_HOME/reportgen or "
                   "~/.cache/reportgen).")
@click.option("--clear", is_flag=True, help="Remove every entry.")
@click.option("--max-size", metavar="SIZE",
              help="Remove the least recently used entries until the cache holds at most SIZE "
                   "(500M, 2G, 300MiB).")
@click.option("--list", "listing", is_flag=True, help="List every entry, least recently used "
                                                      "first.")
def cache(cache_dir: Path | None, clear: bool, max_size: str | None, listing: bool) -> None:
    """Show how large the build cache is and what it holds; prune or clear it.

    \b
    Examples:
      reportgen cache                    # size and entries per kind
      reportgen cache --max-size 500M    # keep the most recently used 500 MB
      reportgen cache --clear

    Only reportgen's own entries are counted and removed: shapes demo data, trained models,
    predictions and explanations, reports, figures. A build that needs a removed entry
    recomputes it.
    """
    import time

    from reportgen.data.shapes import default_cache_dir
    from reportgen.pipeline import cache as store

    if clear and max_size is not None:
        raise click.UsageError("--clear and --max-size: give one of them")
    limit = 0 if clear else None
    if max_size is not None:
        try:
            limit = store.parse_size(max_size)
        except ValueError as err:
            raise click.BadParameter(str(err), param_hint="--max-size") from None
    base = cache_dir or default_cache_dir()
    if limit is not None:
        removed = store.prune(base, limit)
        click.echo(f"Removed {len(removed)} entr{'y' if len(removed) == 1 else 'ies'}, "
                   f"{store.human_size(sum(r.size for r in removed))}")
    entries = store.cache_entries(base)
    click.echo(f"Cache {base}: {store.human_size(sum(x.size for x in entries))} in "
               f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}")
    kinds: dict[str, list] = {}
    for entry in entries:
        kinds.setdefault(entry.kind, []).append(entry)
    for kind, group in kinds.items():
        click.echo(f"  {kind}: {len(group)}, {store.human_size(sum(x.size for x in group))}")
    if listing:
        for entry in entries:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.used))
            click.echo(f"{when}  {store.human_size(entry.size):>9}  "
                       f"{entry.path.relative_to(base)}")


if __name__ == "__main__":  # pragma: no cover
    main()
