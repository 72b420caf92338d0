"""The build: config -> data -> model -> evaluate -> explain -> figures -> report -> site.

:func:`build` is a short list of named stages (:mod:`reportgen.pipeline.stages`); the cache
lives in :mod:`reportgen.pipeline.cache`. Everything is gathered first; the site is written
into a temporary folder and swapped in only when complete (see :mod:`reportgen.report.site`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from reportgen.config import Config
from reportgen.errors import ReportgenError
from reportgen.pipeline import stages
from reportgen.pipeline.cache import BuildCache, ReportBundle


@dataclass
class BuildResult:
    """What a build produced: the site folder, its index page and per-stage wall times."""

    out: Path
    index: Path
    timings: dict[str, float] = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)


def build(cfg: Config, out: str | Path, *, show_progress: bool = True) -> BuildResult:
    """Run the whole build for ``cfg`` and write the site into ``out``.

    Raises:
        ReportgenError: a user mistake (config, data, model, output folder), with a one-line
            message naming the key or file.
    """
    from reportgen.report import Figures
    from reportgen.report.site import check_output, check_writable, output_path

    out = output_path(out)
    check_output(out)  # refuse a foreign folder before hours of work
    check_writable(out)
    stages.check_paths(cfg, out)
    t_start = time.perf_counter()
    options = stages.check(cfg)
    cache = BuildCache(cfg)
    # A worker process draws the figures of the metrics while the explanations run; it starts
    # now, so that its matplotlib import overlaps TensorFlow's.
    with Figures(cfg.report.figure_formats, cache.root / "figures" if cache.enabled else None,
                 warm=True) as figures:
        run = stages.Run(cfg, options, cache, figures, show=show_progress)
        data, earlier = stages.cached_report(run)
        if earlier is not None:
            return _rebuild(run, out, data, earlier, t_start)
        return _full_build(run, out, t_start, data)


def _full_build(run: stages.Run, out: Path, t_start: float, read: stages.Data | None
                ) -> BuildResult:
    """The whole build; ``read`` is the data the cache lookup read already, if any."""
    from reportgen.report import ReportInputs, metric_figures

    stages.start_tensorflow()
    given = stages.given_model(run)
    data = read if read is not None and read.shape == given.shape else \
        stages.read_data(run, given.shape)
    fitted = stages.fit_model(run, given, data)
    model_notes = list(run.notes)
    bundle = stages.predict_and_explain(run, fitted, data)
    data = stages.grouped(data, bundle.probs)
    metrics = stages.evaluate(run, data, bundle.probs)
    warnings = stages.warn(run, data, bundle.probs, fitted.history)
    drawn = metric_figures(run.figures, run.cfg, data.ds, metrics, fitted.history)
    info = stages.describe(fitted, data)
    inputs = ReportInputs(run.cfg, data.ds, bundle.probs, metrics, fitted.history,
                          bundle.explained, info, run.notes + bundle.explained.notes,
                          _options_data(run), warnings=warnings)
    index = stages.write(run, out, inputs, drawn, stages.model_file_job(run, fitted))
    run.cache.remember_shape(data.shape)
    cached_model = run.cache.model_file(fitted.train_key) if fitted.train_key else None
    run.cache.put_report(run.cache.report_key(data.hash), ReportBundle(
        bundle.probs, bundle.explained, info, fitted.history, model_notes, inputs.method_options,
        str(cached_model) if cached_model else None))
    return _result(run, out, index, metrics, t_start)


def _rebuild(run: stages.Run, out: Path, data: stages.Data, bundle: ReportBundle,
             t_start: float) -> BuildResult:
    """The report of an earlier build with new ``[report]`` settings, without TensorFlow."""
    import shutil

    from reportgen.report import ReportInputs, metric_figures

    data = stages.grouped(data, bundle.probs)
    metrics = stages.evaluate(run, data, bundle.probs)
    warnings = stages.warn(run, data, bundle.probs, bundle.history)
    drawn = metric_figures(run.figures, run.cfg, data.ds, metrics, bundle.history)
    inputs = ReportInputs(run.cfg, data.ds, bundle.probs, metrics, bundle.history,
                          bundle.explained, bundle.info, run.notes, bundle.method_options,
                          warnings=warnings)
    model_file = None
    if bundle.model_file is not None:
        model_file = lambda path, src=bundle.model_file: shutil.copyfile(src, path)  # noqa: E731
    index = stages.write(run, out, inputs, drawn, model_file)
    return _result(run, out, index, metrics, t_start)


def _options_data(run: stages.Run) -> dict[str, dict]:
    from reportgen.explain.methods import options_dict

    return {name: options_dict(o) for name, o in run.options.items()}


def _result(run: stages.Run, out: Path, index: Path, metrics: dict, t_start: float
            ) -> BuildResult:
    run.timer.times["total"] = time.perf_counter() - t_start
    return BuildResult(out=out, index=index, timings=dict(run.timer.times), metrics=metrics)


__all__ = ["build", "BuildResult", "ReportgenError"]
