"""The build: config -> data -> model -> evaluate -> explain -> figures -> report -> site.

:func:`build` is a short list of named stages (:mod:`reportgen.pipeline.stages`); the cache
lives in :mod:`reportgen.pipeline.cache`. Everything is gathered first; the site is written
into a temporary folder and swapped in only when complete (see :mod:`reportgen.report.site`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from reportgen import progress as prog
from reportgen.config import Config
from reportgen.errors import ReportgenError
from reportgen.explain.results import Explained
from reportgen.pipeline import stages
from reportgen.pipeline.cache import BuildCache, ReportBundle


@dataclass
class BuildResult:
    """What a build produced: the site folder, its index page, per-stage wall times, the
    metrics, and the parts that failed and were left out (:class:`reportgen.guard.Failure`,
    each noted in the site and in its metrics.json)."""

    out: Path
    index: Path
    timings: dict[str, float] = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    failures: list = field(default_factory=list)


def build(cfg: Config, out: str | Path, *, show_progress: bool = True,
          strict: bool = False, merged=None) -> BuildResult:
    """Run the whole build for ``cfg`` and write the site into ``out``. A part that fails
    (a Layers view, a method, a figure) is left out and noted (``BuildResult.failures``);
    with ``strict`` it fails the build instead, leaving ``out`` as it was. ``merged``: the
    checked arrays of a shard set (:func:`merge`), used instead of predicting and of the test
    set's GradCAM pass.

    Raises:
        ReportgenError: a user mistake (config, data, model, output folder), with a one-line
            message naming the key or file.
        PartsFailed: ``strict`` and a part failed (the site was not written).
    """
    from reportgen.report import Figures
    from reportgen.report.site import check_output, check_writable, output_path

    out = output_path(out)
    check_output(out)  # refuse a foreign folder before hours of work
    check_writable(out)
    stages.check_paths(cfg, out)
    stages.check_data(cfg)  # the class folders, from their listing: refused in a second
    t_start = time.perf_counter()
    options = stages.check(cfg)
    trained = stages.train_input(cfg)  # from the files' headers, before TensorFlow
    cache = BuildCache(cfg, trained.shape)
    # A worker process draws the figures of the metrics while the explanations run; it starts
    # now, so that its matplotlib import overlaps TensorFlow's.
    with Figures(cfg.report.figure_formats, cache.root / "figures" if cache.enabled else None,
                 warm=True) as figures:
        run = stages.Run(cfg, options, cache, figures, show=show_progress,
                         train_shape=trained.shape, strict=strict, merged=merged)
        if trained.note:
            prog.say(f"Note: {trained.note}", show_progress)
            run.notes.append(trained.note)
        data, earlier = stages.cached_report(run) if merged is None else (None, None)
        if earlier is not None and data is not None:  # a bundle is found by its data's hash
            return _rebuild(run, out, data, earlier, t_start)
        return _full_build(run, out, t_start, data)


def merge(folders: Sequence[str | Path], out: str | Path, *, show_progress: bool = True,
          strict: bool = False) -> BuildResult:
    """Merge the shard folders of ``reportgen build --shard I/N`` into the site ``out``: the
    set is checked (every shard 1..N once, one model, one configuration, one data set, no
    image twice), then the report is built from the shards' predictions and GradCAM pass;
    the parts chosen over the whole data set (gallery maps, methods on the sample images,
    the class grid, the quality table, the Layers page) run here with the model.

    Raises:
        ShardError: the set is incomplete or mismatched (naming what), or the model file or
            the images changed since the shards were built.
    """
    from reportgen.pipeline.executors.shards import load_set

    merged = load_set([Path(f) for f in folders])
    return build(merged.config, out, show_progress=show_progress, strict=strict,
                 merged=merged)


def _full_build(run: stages.Run, out: Path, t_start: float, read: stages.Data | None
                ) -> BuildResult:
    """The whole build; ``read`` is the data the cache lookup read already, if any."""
    from reportgen.report import ReportInputs, metric_figures

    stages.start_tensorflow()
    from reportgen.pipeline.stages import explaining, fit

    given = fit.given_model(run)
    data = read if read is not None and read.shape == given.shape else \
        stages.read_data(run, given.shape)
    fitted = fit.fit_model(run, given, data)
    model_notes = list(run.notes)
    bundle = explaining.predict_and_explain(run, fitted, data)
    data = stages.grouped(data, bundle.probs)
    metrics = stages.evaluate(run, data, bundle.probs)
    sliced = stages.slices(run, data, bundle.probs)
    warnings = stages.warn(run, data, bundle.probs, fitted.history)
    drawn = metric_figures(run.figures, run.cfg, data.ds, metrics, fitted.history, sliced,
                           bundle.probs)
    info = fit.describe(fitted, data)
    issues, failed = stages.audit(run, data, bundle.probs, bundle.features,
                                  bundle.explained.seconds)
    inputs = ReportInputs(run.cfg, data.ds, bundle.probs, metrics, fitted.history,
                          bundle.explained, info, run.notes + bundle.explained.notes,
                          _options_data(run, bundle.explained, data.shape[:2]),
                          warnings=warnings, slices=sliced, source=run.source.describe(),
                          features=bundle.features, data_issues=issues, failures=failed,
                          timings=run.timer.times)
    index = stages.write(run, out, inputs, drawn, fit.model_file_job(run, fitted))
    run.cache.remember_shape(data.shape)
    cached_model = run.cache.model_file(fitted.train_key) if fitted.train_key else None
    if not bundle.explained.failures:  # a failed part is tried again by the next build
        run.cache.put_report(run.cache.report_key(data.hash), ReportBundle(
            bundle.probs, bundle.explained, info, fitted.history, model_notes,
            inputs.method_options, str(cached_model) if cached_model else None,
            bundle.features))
    return _result(run, out, index, metrics, t_start)


def _rebuild(run: stages.Run, out: Path, data: stages.Data, bundle: ReportBundle,
             t_start: float) -> BuildResult:
    """The report of an earlier build with new ``[report]`` settings, without TensorFlow."""
    import shutil

    from reportgen.report import ReportInputs, metric_figures

    data = stages.grouped(data, bundle.probs)
    metrics = stages.evaluate(run, data, bundle.probs)
    sliced = stages.slices(run, data, bundle.probs)
    warnings = stages.warn(run, data, bundle.probs, bundle.history)
    drawn = metric_figures(run.figures, run.cfg, data.ds, metrics, bundle.history, sliced,
                           bundle.probs)
    issues, failed = stages.audit(run, data, bundle.probs, bundle.features,
                                  bundle.explained.seconds)
    inputs = ReportInputs(run.cfg, data.ds, bundle.probs, metrics, bundle.history,
                          bundle.explained, bundle.info, run.notes, bundle.method_options,
                          warnings=warnings, slices=sliced, source=run.source.describe(),
                          features=bundle.features, data_issues=issues, failures=failed,
                          timings=run.timer.times)
    model_file = None
    if bundle.model_file is not None:
        model_file = lambda path, src=bundle.model_file: shutil.copyfile(src, path)  # noqa: E731
    index = stages.write(run, out, inputs, drawn, model_file)
    return _result(run, out, index, metrics, t_start)


def _options_data(run: stages.Run, explained: Explained, size: tuple[int, int]
                  ) -> dict[str, dict]:
    """{method: its options as run on images of ``size`` (H, W)} of the methods that ran: the
    plan's (the options the user asked for, reduced where the plan reduced them, automatic
    sizes resolved). Empty when none ran: no method's options are stated as run."""
    from reportgen.explain.methods import options_dict

    options = explained.plan.options if explained.plan is not None else run.options
    ran = set(explained.method_outputs) | set(explained.quality)
    return {name: options_dict(o, size) for name, o in options.items() if name in ran}


def _result(run: stages.Run, out: Path, index: Path, metrics: dict, t_start: float
            ) -> BuildResult:
    run.timer.times["total"] = time.perf_counter() - t_start
    return BuildResult(out=out, index=index, timings=dict(run.timer.times), metrics=metrics,
                       failures=list(run.failures))


__all__ = ["build", "merge", "BuildResult", "ReportgenError"]
