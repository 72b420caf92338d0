"""Metrics, warnings and writing the site (numpy and the report layer; no TensorFlow)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from reportgen import evaluate as ev
from reportgen import progress as prog
from reportgen import report
from reportgen.data.properties import split_properties
from reportgen.errors import PartsFailed
from reportgen.evaluate import curves as cv
from reportgen.report.inputs import ReportInputs
from reportgen.report.site import SiteWriter
from reportgen.evaluate.slices import SliceReport, slice_report
from reportgen.pipeline.stages.checks import operating_threshold
from reportgen.pipeline.stages.run import Data, Run
from reportgen.guard import collecting, optional_part
from reportgen.text import duration

if TYPE_CHECKING:  # annotations only
    from reportgen.audit.issues import DataIssues
    from reportgen.explain.penultimate import Features


def audit(run: Run, data: Data, probs: dict[str, np.ndarray], features: Features | None,
          seconds: dict[str, float]) -> tuple[DataIssues | None, list]:
    """The data audit (:mod:`reportgen.audit`, numpy only: a cached rebuild runs it too) of
    every split, with the penultimate features where the prediction pass collected them;
    returns (its result, None when ``report.data_audit`` is off or it failed; the failure as
    a list). Its wall time goes into ``seconds`` (the explanations' parts: the plan's part
    "data audit")."""
    from reportgen.audit.issues import audit_data, estimate_seconds

    failures: list = []
    if not run.cfg.report.data_audit:
        return None, failures
    arrays = features.arrays if features is not None and not features.missing else None
    with run.timer.stage("audit"), collecting(failures), optional_part("data audit"):
        prog.say("Auditing the data (label errors, duplicates, outliers, quality; about "
                 f"{duration(estimate_seconds(data.ds.splits))})", run.show)
        issues = audit_data(data.ds.splits, probs, data.ds.class_names, arrays or None)
        seconds["data audit"] = issues.seconds
        return issues, failures
    return None, failures


def evaluate(run: Run, data: Data, probs: dict[str, np.ndarray]) -> dict[str, dict]:
    """Metrics {split: ...} of the probabilities against the labels (numpy only); the test
    split's also carry its PR/ROC summary (``curves``) and, for a binary model, its threshold
    summary (``thresholds``)."""
    ds = data.ds
    if not ds.labeled:
        return {name: (ev.prediction_summary(probs[name], ds.class_names)
                       if len(ds.splits[name]) else {"n": 0, "labeled": False})
                for name in ds.splits}
    present = ds.present if ds.absent_classes else None
    threshold = binary_threshold(run, ds)
    metrics = {name: ev.split_metrics(probs[name], ds.splits[name].labels, ds.class_names,
                                      run.cfg.report.top_k, present, threshold)
               for name in ds.splits}
    if metrics["test"]["n"]:
        with run.timer.stage("curves"):
            add_test_curves(metrics["test"], probs, data, threshold)
    return metrics


def add_test_curves(test: dict, probs: dict[str, np.ndarray], data: Data,
                    threshold: float | None) -> None:
    """Add the test split's ``curves`` (and a binary model's ``thresholds``) to ``test``."""
    ds = data.ds
    labels = {s: ds.splits[s].labels for s in ("test", "val")}
    test["curves"] = cv.curve_metrics(probs["test"], labels["test"], ds.class_names)
    if len(ds.class_names) == 2:
        test["thresholds"] = cv.binary_thresholds(
            {s: probs[s] for s in labels}, labels, ds.class_names, threshold)


def binary_threshold(run: Run, ds) -> float | None:
    """:func:`operating_threshold` of ``ds`` (``reportgen.data.folder.Dataset``), noted;
    given for more classes, it is noted as not used."""
    t, n_classes = operating_threshold(run.cfg, ds), len(ds.class_names)
    if t is None:
        if "evaluate.threshold" in run.cfg.given:
            run.notes.append(f"evaluate.threshold = {run.cfg.evaluate.threshold:g} is not "
                             f"used: it applies to binary models, and this one has "
                             f"{n_classes} classes.")
        return None
    run.notes.append(f"evaluate.threshold = {t:g}: every prediction (the metrics, the "
                     f"confusion matrices, predictions.csv, the galleries, the errors page, "
                     f"the slices and the explanations of the predicted class) is the second "
                     f"class where its probability is >= {t:g}.")
    return t


def slices(run: Run, data: Data, probs: dict[str, np.ndarray]) -> SliceReport | None:
    """Accuracy by metadata slice and the weak-slice search on the test images' properties
    (:mod:`reportgen.evaluate.slices`); None for photos without labels (no accuracy to slice)."""
    test = data.ds.splits["test"]
    if not data.ds.labeled or not len(test):
        if data.metadata is not None:
            run.notes.append(f"data.metadata ({data.metadata.name}) was read, but the test "
                             "images have no labels: no accuracy per slice.")
        return None
    with run.timer.stage("slices"):
        threshold = operating_threshold(run.cfg, data.ds)
        correct = ev.predict_labels(probs["test"], threshold) == test.labels
        columns, missing = (data.metadata.values(test.paths) if data.metadata is not None
                            else (None, 0))
        return slice_report(correct, split_properties(test).known(), columns, missing=missing,
                            source=data.metadata.name if data.metadata is not None else None,
                            classes=(test.labels, data.ds.class_names))


def warn(run: Run, data: Data, probs: dict[str, np.ndarray], history: dict) -> list[str]:
    """Warnings that the model does not work (:func:`reportgen.evaluate.model_warnings`),
    said on stderr; the report shows them first."""
    ds = data.ds
    if not ds.labeled:
        return []
    found = ev.model_warnings(probs, {name: split.labels for name, split in ds.splits.items()},
                              ds.class_names, history, run.cfg.training.min_epochs,
                              operating_threshold(run.cfg, ds))
    for line in found:
        prog.say(f"Warning: {line}")
    return found


def write(run: Run, out: Path, inputs: ReportInputs, drawn: dict, model_file: Callable | None
          ) -> Path:
    """Gather the report, then write it into ``out`` atomically; return the index path.
    ``run.failures`` becomes the parts that failed; with ``run.strict``, any ends the build
    (:class:`~reportgen.errors.PartsFailed`) before the site replaces ``out``."""
    content = report.gather(inputs, drawn)
    if model_file is not None and run.cfg.report.include_model:
        content.assets.file("model.keras", model_file)
    with run.timer.stage("write"), SiteWriter(out) as site:
        index = report.write_site(site, content, run.figures, run.timer.times, run.show)
        run.failures = list(content.failures)
        if run.strict and run.failures:
            raise PartsFailed(run.failures, out)
        # The marker stays on this machine (never published): compare reads the images here.
        site.commit({"config": run.cfg.to_dict(), "data_root": str(inputs.ds.root)})
    return site.out / index.name
