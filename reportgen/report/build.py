"""Turn the build's results into the site: gather every page context and file job first
(:func:`gather`, no file written), then write them (:func:`write_site`).

Page contexts are plain data (dicts, lists, strings, numbers), so tests inspect them directly;
rendering is Jinja2. Never imports tensorflow.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from reportgen import figures as figs
from reportgen import progress as prog
from reportgen.config import PATH_KEYS
from reportgen.evaluate import (F1_DRAWS, F1_PRIOR, misclassified, predict_labels,
                                 wilson_interval)
from reportgen.explain.results import LAYER_VIEWS
from reportgen.guard import Failure, collecting, optional_part
from reportgen.report.assets import Assets
from reportgen.report.card import card_context, card_page
from reportgen.report.curves import NONE as NO_CURVES
from reportgen.report.curves import curve_figures, curve_table, threshold_sentences
from reportgen.report.data_page import (data_context, issue_colouring, issues_json,
                                        summary_lines)
from reportgen.report.figjobs import Figures
from reportgen.report.gallery import (class_page_files, class_pages, colour_scale,
                                      errors_page, slug)
from reportgen.report.inputs import ReportInputs
from reportgen.report.onefile import write_single
from reportgen.report.pages import layers_context, methods_context
from reportgen.report.slices import slices_figure, slices_json, summary
from reportgen.report.render import STATIC, environment, render, templates_dir
from reportgen.report.strategies import METHOD as STRATEGY_METHOD
from reportgen.report.strategies import (
    strategies_context,
    strategies_metrics,
    strategy_colouring,
)
from reportgen.report.tables import Table, with_interval
from reportgen.text import duration, plural, printable


@dataclass
class Page:
    """One page of the site: file ``rel``, rendered from ``template`` with ``context``."""

    rel: str
    template: str
    context: dict


@dataclass
class SiteContent:
    """A whole site before writing: its pages, its other files as jobs, the data of
    metrics.json (without the stage timings, added when it is written), and the parts that
    failed (:class:`~reportgen.guard.Failure`: the explanations' first, then any page
    context, figure or image that fails while gathered or written)."""

    pages: list[Page] = field(default_factory=list)
    assets: Assets = field(default_factory=Assets)
    metrics: dict = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)


#: Where the pages note a failed part: {section: parts}, a part ending in a key's suffix
#: (" on the sample images") or starting with its prefix ("sanity check") included.
SECTIONS_OF_PARTS = {
    "test set": ("GradCAM of the test set",), "grid": ("GradCAM per class",),
    "samples": ("* on the sample images",), "plan": ("planning*",),
    "quality": ("* in the quality table", "sanity check*"), "audit": ("data audit",),
    "explorer": ("explorer map", "explorer page"),
    **{view: (view,) for view in LAYER_VIEWS},
    "strategies": ("strategies", "concepts*"),
}


def _matches(part: str, pattern: str) -> bool:
    if pattern.startswith("*"):
        return part.endswith(pattern[1:])
    if pattern.endswith("*"):
        return part.startswith(pattern[:-1])
    return part == pattern


def failures_by_section(failures: list[Failure]) -> dict[str, list[dict]]:
    """{section of a page: its failures as {part, layer, error, line}} (every section of
    :data:`SECTIONS_OF_PARTS` present, most of them empty)."""
    return {section: [{**f.as_dict(), "line": f.line()} for f in failures
                      if any(_matches(f.part, p) for p in patterns)]
            for section, patterns in SECTIONS_OF_PARTS.items()}


def table(assets: Assets, t: Table) -> dict:
    """A table's page data (HTML, Markdown, caption, whether it has many columns), its LaTeX
    export queued."""
    return {"html": t.html(), "md": t.markdown(),
            "tex": assets.text(f"tables/{t.name}.tex", t.latex()), "caption": t.caption,
            "many": len(t.headers) > MANY_COLUMNS}


#: Tables with more columns are set smaller, so they fit a 1280 px window whole.
MANY_COLUMNS = 6


def metric_figures(figures: Figures, cfg, ds, metrics: dict, history: dict,
                   sliced=None, probs: dict | None = None) -> dict:
    """Queue the figures that need only the data, the metrics, the training history, the
    slices and the test probabilities (class distribution, training curves, confusion
    matrices, reliability diagram, the slices' forest plot, PR/ROC and threshold curves) on
    ``figures``; return their page data: {"dist", "curves", "cms", "rel", "slices", "pr",
    "roc", "thr"}. ``sliced``: the :class:`~reportgen.evaluate.slices.SliceReport`, or None."""
    names = ds.class_names
    if not ds.labeled:
        return {"dist": _predicted_figure(figures, metrics["test"]), "curves": None, "cms": {},
                "rel": None, "slices": None, **NO_CURVES}
    fig_dist = figures.add(
        "class_distribution", figs.class_distribution, _counts(ds), names,
        alt="Bar chart of images per class in the train, val and test splits",
        caption="Images per class and split.")
    fig_curves = None
    if history:
        last = {k: v[-1] for k, v in history.items()}
        fig_curves = figures.add(
            "training_curves", figs.training_curves, history,
            alt=f"Training curves over {len(history['loss'])} epochs: final train accuracy "
                f"{last.get('accuracy', float('nan')):.3f}, validation accuracy "
                f"{last.get('val_accuracy', float('nan')):.3f}",
            caption="Accuracy and loss per epoch (validation dashed).")
    # Test first: the split the report is about; train and val follow, folded on the page.
    cms = {split: _confusion_figure(figures, split, metrics[split], names)
           for split in ("test", "val", "train") if metrics[split]["n"]}
    fig_rel = None
    if "calibration" in metrics["test"]:
        cal = metrics["test"]["calibration"]
        fig_rel = figures.add(
            "reliability", figs.reliability_diagram, cal["bins"], ece=cal["ece"],
            alt=f"Reliability diagram of the test split, expected calibration error "
                f"{cal['ece']:.3f}",
            caption="Test-set calibration: accuracy against confidence per bin, with its 95 % "
                    "Wilson interval; the number over each bin is its image count (a bin of "
                    "one image is a full or empty bar that says little).")
    roc = NO_CURVES if probs is None else curve_figures(
        figures, metrics["test"], probs["test"], ds.splits["test"].labels, names)
    return {"dist": fig_dist, "curves": fig_curves, "cms": cms, "rel": fig_rel,
            "slices": slices_figure(figures, sliced), **roc}


#: The F1 intervals' method in a caption.
F1_INTERVAL = (f"Bayesian interval of the confusion counts (Goutte & Gaussier 2005), Jeffreys "
               f"prior of {F1_PRIOR:g} per class's true positives, false positives and false "
               f"negatives, {F1_DRAWS} seeded Monte Carlo draws, widened where needed to "
               f"hold the observed F1")

#: Classes linked from the navigation bar at most (more: one link to the overview's list).
NAV_CLASSES = 12
#: Classes drawn in the predicted-class chart of unlabeled photos at most.
CHART_CLASSES = 20
#: Photos listed with their top 5 on the overview at most (all are in predictions.csv).
TOP_ROWS = 200


def _predicted_figure(figures: Figures, summary: dict) -> dict:
    """The bar chart of the most often predicted classes of unlabeled photos."""
    top = list(summary["per_class"].items())[:CHART_CLASSES]
    shown = f"the {len(top)} most often predicted" if len(summary["per_class"]) > len(top) \
        else "every predicted class"
    return figures.add(
        "predicted_classes", figs.class_distribution,
        {"photos": [v["predicted"] for _, v in top]}, [n for n, _ in top],
        title="Photos per predicted class",
        alt=f"Bar chart of photos per predicted class ({shown} of "
            f"{len(summary['per_class'])})",
        caption=f"Photos per predicted class ({shown}; no labels, so no accuracy).")


def _confusion_figure(figures: Figures, split: str, m: dict, names) -> dict:
    ci = _interval(m["accuracy_ci95"], 1, 100, " %")
    fig = figures.add(
        f"confusion_{split}", figs.confusion_matrix, m["confusion_matrix"], names,
        row_names=m.get("confusion_rows"), title=f"Confusion matrix, {split} (n = {m['n']})",
        alt=f"Confusion matrix of the {split} split: counts and row percentages, accuracy "
            f"{100 * m['accuracy']:.1f} %",
        caption=f"{split.capitalize()} split, n = {m['n']}, accuracy "
                f"{100 * m['accuracy']:.1f} % (95 % CI {ci}, Wilson): each cell holds the "
                f"image count and its share of the row (the true class), so the diagonal is "
                f"each class's recall." + (
                    f" Rows: the {len(m['confusion_rows'])} classes with images; columns: "
                    f"all {len(names)} classes the model can predict."
                    if "confusion_rows" in m else ""))
    fig["n"] = m["n"]
    return fig


def _unlabeled_tables(assets: Assets, inputs: ReportInputs) -> dict:
    """The predicted classes and each photo's top 5 (photos without labels)."""
    summary, paths = inputs.metrics["test"], inputs.ds.splits["test"].paths
    k = len(summary["top"][0]) if summary["top"] else 0
    return {
        "t_predicted": table(assets, Table(
            "predicted_classes", ["predicted class", "photos", "mean probability"],
            [[n, v["predicted"], f"{100 * v['mean_confidence']:.1f} %"]
             for n, v in summary["per_class"].items()],
            "Predicted classes, most often predicted first")),
        "t_top": table(assets, Table(
            "top_predictions", ["photo"] + [f"#{r + 1}" for r in range(k)],
            [[p] + [f"{n} ({100 * q:.1f} %)" for n, q in top]
             for p, top in zip(paths[:TOP_ROWS], summary["top"], strict=False)],
            f"Top-{k} classes per photo" + (
                f" (the first {TOP_ROWS} of {len(paths)}; every photo in predictions.csv)"
                if len(paths) > TOP_ROWS else ""))),
    }


def _split_tables(assets: Assets, inputs: ReportInputs) -> dict:
    """Accuracy/loss per split, per-class metrics and class counts (for photos without
    labels: :func:`_unlabeled_tables`)."""
    if not inputs.ds.labeled:
        return _unlabeled_tables(assets, inputs)
    metrics, names = inputs.metrics, inputs.ds.class_names
    k = inputs.cfg.report.top_k
    topk = f"top_{k}_accuracy" if f"top_{k}_accuracy" in metrics["test"] else None
    headers = ["split", "images", "accuracy [95 % CI]", "loss", "macro F1 [95 % CI]"] + (
        [f"top-{k} accuracy [95 % CI]"] if topk else [])
    rows = [[s, metrics[s]["n"],
             with_interval(metrics[s]["accuracy"], metrics[s]["accuracy_ci95"], 1, percent=True),
             metrics[s]["loss"], with_interval(metrics[s]["macro_f1"], metrics[s]["macro_f1_ci95"])]
            + ([with_interval(metrics[s].get(topk), metrics[s].get(f"{topk}_ci95"), 1,
                              percent=True)] if topk else [])
            for s in ("train", "val", "test")]
    pc = metrics["test"]["per_class"]
    counts = _counts(inputs.ds)
    t_curves = curve_table(metrics["test"])
    return {
        "t_curves": table(assets, t_curves) if t_curves else None,
        "thr_text": threshold_sentences(metrics["test"].get("thresholds")),
        "t_splits": table(assets, Table("accuracy_loss", headers, rows,
                                        "Accuracy and loss per split (95 % intervals: Wilson "
                                        f"score for accuracy{' and top-k accuracy' if topk else ''}"
                                        f"; macro F1: {F1_INTERVAL})")),
        "t_classes": table(assets, Table(
            "per_class_test", ["class", "precision [95 % CI]", "recall [95 % CI]",
                               "F1 [95 % CI]", "support"],
            [[n, with_interval(pc[n]["precision"], pc[n].get("precision_ci95")),
              with_interval(pc[n]["recall"], pc[n].get("recall_ci95")),
              with_interval(pc[n]["f1"], pc[n]["f1_ci95"]), pc[n]["support"]]
             for n in names if n in pc],
            f"Per-class metrics on the test split (n = {metrics['test']['n']}; 95 % intervals: "
            f"Wilson score for precision and recall; F1: {F1_INTERVAL})")),
        "t_counts": table(assets, Table(
            "class_counts", ["class"] + list(counts) + ["total"],
            [[n] + [counts[sp][i] for sp in counts] + [sum(counts[sp][i] for sp in counts)]
             for i, n in enumerate(names)], "Images per class and split")),
    }


def _interval(ci, digits: int = 3, scale: float = 1.0, unit: str = "") -> str:
    """``lo–hi`` of a confidence interval; an en dash alone when it is undefined (n = 0)."""
    lo, hi = ci
    if lo is None or hi is None or lo != lo or hi != hi:
        return "–"
    return f"{scale * lo:.{digits}f}–{scale * hi:.{digits}f}{unit}"


def _counts(ds) -> dict[str, list[int]]:
    """{split: images per class}."""
    return {name: np.bincount(split.labels, minlength=len(ds.class_names)).tolist()
            for name, split in ds.splits.items()}


def predictions_csv(split, probs: np.ndarray, names: list[str],
                    threshold: float | None = None) -> str:
    """The test predictions as CSV: ``file``, ``true`` (empty for unlabeled photos),
    ``predicted`` (a binary model's at its ``threshold``,
    :func:`reportgen.evaluate.predict_labels`),
    then one column per class, named by the class, holding its probability, written in full
    (the shortest text that reads back as the same float64: the curves' numbers, computed from
    these probabilities, equal any library's on the file's, ties and all)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["file", "true", "predicted", *map(printable, names)])
    pred = predict_labels(probs, threshold)
    for path, label, p, c in zip(split.paths, split.labels, probs, pred, strict=True):
        writer.writerow([printable(path), printable(names[int(label)]) if split.labeled else "",
                         printable(names[int(c)]), *(repr(float(v)) for v in p)])
    return out.getvalue()


def operating_threshold(metrics: dict) -> float | None:
    """The threshold a binary model's predictions were made at (``evaluate.threshold``, as
    the test metrics state it); None where the highest probability predicts."""
    t = metrics.get("test", {}).get("thresholds") or {}
    return t["operating_point"] if t.get("source") == "evaluate.threshold" else None


def _maps_file(explained):
    """Write ``explanations.npz``: the GradCAM of every test image at the layer's
    resolution (``gradcam``, (N, h, w) float16 in [0, 1]) and the layer's path (of a
    SavedModel, ``saved_model/<tensor of its serving graph>``)."""
    def write(path):
        with open(path, "wb") as f:
            np.savez_compressed(f, gradcam=explained.test_maps, layer=np.array(explained.layer))
    return write


def _pointing(explained) -> dict:
    """{method: {"score", "n"}} of the pointing game over the test images with a box."""
    out = {}
    for method, hits in explained.pointing.items():
        valid = hits[np.isfinite(hits)]
        if len(valid):
            out[method] = {"score": float(valid.mean()), "n": int(len(valid)),
                           "ci95": list(wilson_interval(int(valid.sum()), len(valid)))}
    return out


def _common(inputs: ReportInputs) -> dict:
    """What every page shares: title, navigation, classes (for photos without labels, the
    predicted ones), notes."""
    names, per_class = inputs.ds.class_names, inputs.metrics["test"]["per_class"]
    classes: list[dict[str, Any]] = [{"index": i, "name": n, "href": f"{slug(i, n)}.html"}
                                     for i, n in enumerate(names) if n in per_class]
    nav = [{"href": "index.html", "label": "Overview"}]
    if inputs.ds.labeled:
        wrong = misclassified(inputs.ds.splits["test"].labels, inputs.probs["test"],
                              operating_threshold(inputs.metrics))
        nav.append({"href": "errors.html", "label": f"Errors ({len(wrong)})"})
    if inputs.slices is not None:
        nav.append({"href": "slices.html", "label": "Slices"})
    nav += [{"href": "explore.html", "label": "Explorer"},
            {"href": "data.html", "label": "Data issues"},
            {"href": "methods.html", "label": "Methods"},
           {"href": "layers.html", "label": "Layers"}, {"href": "model.html", "label": "Model"}]
    if inputs.explained.strategies or inputs.explained.concepts:
        nav.insert(-1, {"href": "strategies.html", "label": "Strategies"})
    if len(classes) <= NAV_CLASSES:
        nav += [{"href": c["href"], "label": c["name"]} for c in classes]
    else:  # a bar of 100 class links is no navigation: one link to the list of classes
        nav.append({"href": "index.html#classes", "label": f"Classes ({len(classes)})"})
    return {"title": report_title(inputs), "version": inputs.info.version,
            "built": time.strftime("%Y-%m-%d %H:%M"), "nav": nav, "classes": classes,
            "notes": inputs.notes + _plan_notes(inputs.explained.plan),
            "warnings": inputs.warnings}


def report_title(inputs: ReportInputs) -> str:
    """``report.title``, or when it is empty a title made from the data and the model:
    "photos: small_cnn trained here", "holiday: keras.applications vgg19",
    "faces: emotions.keras"."""
    cfg = inputs.cfg
    if cfg.report.title.strip():
        return cfg.report.title
    data = "Shapes demo" if cfg.data.source == "shapes" else (
        Path(cfg.data.path).name or Path(str(inputs.ds.root)).name or "images")
    return f"{data}: {inputs.model_source().title_for(inputs.info.model_name)}"


def _plan_notes(plan) -> list[str]:
    """One note when the work was reduced to fit explain.budget (the Methods page says how)."""
    if plan is None or plan.fits_as_asked:
        return []
    reduced = plan.reduced
    return [f"The explanations were planned to explain.budget = {duration(plan.budget_s)} on "
            f"{plan.device}: {plural(len(reduced), 'setting')} reduced "
            f"({'; '.join(reduced[:3])}{'; …' if len(reduced) > 3 else ''}). "
            f"The Methods page lists the plan."]


def ran_settings(inputs: ReportInputs) -> dict:
    """The explain settings as run ({key: value}): the plan's, or (no test images, nothing
    planned) the config's."""
    plan = inputs.explained.plan
    return plan.settings if plan is not None else dataclasses.asdict(inputs.cfg.explain)


def _index_context(inputs: ReportInputs, common: dict, tables: dict, drawn: dict,
                   pointing: dict, sliced: dict | None = None) -> dict:
    test_m, ds, cfg = inputs.metrics["test"], inputs.ds, inputs.cfg
    test = ds.splits["test"]
    headline = _headline(test_m, ds)
    if "gradcam" in pointing:
        g = pointing["gradcam"]
        headline.append({"label": f"GradCAM pointing game (95 % CI "
                                  f"{_interval(g['ci95'], 1, 100, ' %')}, Wilson, n = {g['n']})",
                         "value": f"{100 * g['score']:.1f} %"})
    data = {"source": cfg.data.source, "root": cfg.public(ds.root), "layout": ds.layout,
            "image_size": f"{test.images.shape[2]}x{test.images.shape[1]}",
            "skipped": ds.skipped, "dropped": ds.dropped_classes, "has_boxes": ds.has_boxes,
            "absent": ds.absent_classes,
            "sources": ds.sources.describe() if ds.sources else None,
            "labeled": ds.labeled}
    return {**common, **tables, "page_title": "Overview", "current": "index.html",
            "headline": headline, "data": data, "fig_dist": drawn["dist"],
            "fig_curves": drawn["curves"], "cms": drawn["cms"], "fig_rel": drawn["rel"],
            "fig_pr": drawn.get("pr"), "fig_roc": drawn.get("roc"),
            "fig_thr": drawn.get("thr"),
            "epochs": len(inputs.history.get("loss", [])), "trained": bool(inputs.history),
            "layer": inputs.explained.layer, "pointing": pointing,
            "model_file": model_file_included(inputs), "slices": sliced,
            "fig_slices": drawn.get("slices"), "info": dataclasses.asdict(inputs.info),
            "card": card_context(cfg, test_m, report_title(inputs), ds.root),
            "audit": (summary_lines(inputs.data_issues) if inputs.data_issues is not None
                      else None)}


def _headline(test_m: dict, ds) -> list[dict]:
    if not ds.labeled:
        return [{"label": "photos (no labels)", "value": str(test_m["n"])},
                {"label": "classes predicted",
                 "value": f"{len(test_m['per_class'])} of {len(ds.class_names)}"},
                {"label": "mean top-1 probability",
                 "value": f"{100 * test_m['mean_confidence']:.1f} %"}]
    ci = _interval(test_m["accuracy_ci95"], 1, 100, " %")
    return [{"label": f"test accuracy (95 % CI {ci}, Wilson, n = {test_m['n']})",
             "value": f"{100 * test_m['accuracy']:.1f} %"},
            {"label": f"test macro F1 (95 % CI {_interval(test_m['macro_f1_ci95'])}, "
                      f"Bayesian)", "value": f"{test_m['macro_f1']:.3f}"},
            {"label": "test images", "value": str(test_m["n"])},
            {"label": "classes", "value": str(len(ds.class_names))}]


def _model_context(assets: Assets, inputs: ReportInputs, common: dict) -> dict:
    info = inputs.info
    t_layers = Table("model_layers", ["layer", "type", "output per image", "parameters"],
                     [[r["name"], r["kind"], r["output_shape"], r["params"]]
                      for r in info.summary], "Layers of the model")
    config = inputs.cfg.to_dict()
    return {**common, "page_title": "Model", "current": "model.html",
            "info": dataclasses.asdict(info), "t_layers": table(assets, t_layers),
            "config": config, "t_config": table(assets, _config_table(inputs)),
            "sources": inputs.ds.sources.describe() if inputs.ds.sources else None,
            "trained": inputs.model_source().trained_here,
            "model_file": model_file_included(inputs)}


def model_file_included(inputs: ReportInputs) -> bool:
    """True when the site holds ``model.keras``: a model trained here, with
    ``report.include_model`` (weights are shared only when asked)."""
    return inputs.model_source().trained_here and inputs.cfg.report.include_model


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


#: Keys that apply to the generated shapes demo only.
DEMO_KEYS = ("data.shapes_per_class",)


def _size_chosen(inputs: ReportInputs, size) -> bool:
    """True when a model trained here read the images at a size chosen from the data."""
    cfg = inputs.cfg
    return (inputs.model_source().trained_here and "data.image_size" not in cfg.given
            and tuple(size) != (cfg.data.image_size,) * 2)


def _config_table(inputs: ReportInputs) -> Table:
    """Every config key with the value the build ran: the plan's settings and method options,
    automatic choices (empty layer, "all" methods, "auto" preprocessing, 0 = the model's size,
    0 = the default budget) replaced by what they resolved to, whether the value was set (by
    the config file or a flag) or is the default, and, where the plan changed it, the value
    asked for and why."""
    from reportgen.config import Config

    cfg, plan = inputs.cfg, inputs.explained.plan
    size = inputs.ds.splits["test"].images.shape[1:3]
    given, default = _written(cfg), _written(Config())
    used = {**given, **_resolved(inputs)}
    if cfg.data.source != "shapes":
        for key in DEMO_KEYS:  # no setting of the demo data in a user's report
            used.pop(key, None)
    rows = []
    for key, value in used.items():
        state = ("set" if key in given and given[key] != default.get(key) else
                 "default" if key in given else "method default")
        change = plan_change(plan, key)
        if key == "data.image_size" and _size_chosen(inputs, size):
            state = "chosen from the data (the overview says why)"
        elif key in given and value != given[key] and change is None \
                and key not in PATH_KEYS:
            state += f"; given as {json.dumps(given[key])}"
        asked = "" if change is None else f"{_shown(change[0])} ({change[1]})"
        rows.append([key, _shown(value), state, asked])
    headers = ["key", "value run", "source", "asked for, where the plan changed it"]
    return Table("config_used", headers, rows,
                 "Configuration run: every key, automatic values resolved, values the plan "
                 "reduced beside the value asked for")


def _written(cfg) -> dict:
    """{key: value} of every key of ``cfg`` as written, method options as
    ``explain.<method>.<key>``."""
    flat = _flat(cfg.to_dict())
    return {k.replace("explain.method_options.", "explain."): v for k, v in flat.items()
            if k != "explain.method_options"}


def _shown(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def plan_change(plan, key: str) -> tuple[object, str] | None:
    """(the value asked for, why it changed) of ``key`` where ``plan`` changed it, else None."""
    found = [r for r in (plan.reductions if plan is not None else ()) if r.key == key]
    if not found:
        return None
    asked = found[0].asked
    return (list(asked) if isinstance(asked, tuple) else asked,
            "; ".join(dict.fromkeys(r.why for r in found)))


def _resolved(inputs: ReportInputs) -> dict:
    """{key: the value run} of the keys whose value run is not the one written: the plan's
    settings and options, and automatic choices resolved."""
    ex, ds, info = inputs.explained, inputs.ds, inputs.info
    size = ds.splits["test"].images.shape[1:3]
    used = {f"explain.{k}": v for k, v in ran_settings(inputs).items()
            if k != "method_options"}
    used.update({"explain.layer": ex.layer or "(no conv layer)",
                 "explain.methods": list(inputs.method_options),
                 "model.preprocess": info.preprocess,
                 "data.image_size": f"{size[1]}x{size[0]}",
                 "report.title": report_title(inputs)})
    written = _written(inputs.cfg)
    for key in PATH_KEYS:  # published: never an absolute local path
        if written.get(key):
            used[key] = inputs.cfg.public(written[key])
    if ex.layers is not None:
        used["explain.pattern_layers"] = list(ex.layers.patterns)
    if ex.grid_classes:
        used["explain.classes"] = [ds.class_names[c] for c in ex.grid_classes]
    for key in _written(inputs.cfg):  # the options of a method that did not run
        if key.count(".") == 2 and key.split(".")[1] not in inputs.method_options:
            used[key] = "(not run)"
    for m, opts in inputs.method_options.items():
        for k, v in opts.items():
            used[f"explain.{m}.{k}"] = v
    return used


def _metrics_json(inputs: ReportInputs, pointing: dict) -> dict:
    ex, ds, info = inputs.explained, inputs.ds, inputs.info
    return {
        "title": report_title(inputs), "classes": ds.class_names, "labeled": ds.labeled,
        "splits": inputs.metrics,
        "curves": curves_json(inputs.metrics), "thresholds": inputs.metrics.get(
            "test", {}).get("thresholds"),
        "history": inputs.history,
        "explain": {"layer": ex.layer, "pointing_game": pointing,
                    "quality": {m: dataclasses.asdict(q) for m, q in ex.quality.items()},
                    "quality_ranking": ex.quality_ranking,
                    "methods": inputs.method_options,
                    "seconds": {k: round(v, 3) for k, v in ex.seconds.items()},
                    "plan": _plan_data(inputs), "relus": getattr(ex, "relus", None),
                    "receptive_field": (dataclasses.asdict(ex.layers.rf)
                                        if ex.layers and ex.layers.rf else None)},
        "data_issues": issues_json(inputs.data_issues),
        **_dataset_wide(ex, ds.splits["test"], ds.class_names),
        **slices_json(inputs.slices),
        "skipped": [{"path": p, "reason": r} for p, r in ds.skipped],
        "dropped_classes": ds.dropped_classes, "absent_classes": ds.absent_classes,
        "notes": inputs.warnings + inputs.notes,
        "data": {"root": inputs.cfg.public(ds.root), "test_hash": info.test_hash,
                 "test_images": len(ds.splits["test"]),
                 "image_size": list(ds.splits["test"].images.shape[1:3]),
                 "channels": int(ds.splits["test"].images.shape[3]),
                 "source_images": ds.sources.to_dict() if ds.sources else None},
        "compare": {"predictions": "predictions.csv",
                    "maps": "explanations.npz" if ex.test_maps is not None else None},
        "model": {k: getattr(info, k) for k in ("model_name", "model_hash", "data_hash",
                                                "params", "input_shape", "preprocess")},
        "versions": {k: getattr(info, k) for k in ("version", "python", "tensorflow", "keras",
                                                   "numpy")},
    }


def _dataset_wide(ex, split, names: list[str]) -> dict:
    """metrics.json's ``strategies``, ``concepts`` and ``strategies_method`` (how both were
    computed; None when neither ran)."""
    strategies, concepts = strategies_metrics(ex, split, names)
    ran = bool(ex.strategies or ex.concepts)
    return {"strategies": strategies, "concepts": concepts,
            "strategies_method": STRATEGY_METHOD if ran else None}


def curves_json(metrics: dict) -> dict | None:
    """metrics.json's ``curves``: {class: {average_precision, average_precision_ci95, roc_auc,
    roc_auc_ci95}} of the test split's classes with images, then ``macro`` and ``micro`` (the
    averages win over a class of that name, which stays in ``splits.test.curves.classes``);
    None without labelled test images."""
    c = metrics.get("test", {}).get("curves")
    if not c:
        return None
    return {**c["classes"], "macro": c["macro"], "micro": c["micro"]}


def _plan_data(inputs: ReportInputs) -> dict | None:
    """The plan for metrics.json, with each part's estimate beside the seconds it took
    (``parts``: {part: {"estimate_s", "actual_s"}}): the explanations' parts, then the
    evaluation's that ran (:func:`evaluation_parts`; never cut by explain.budget)."""
    ex = inputs.explained
    if ex.plan is None:
        return None
    data = ex.plan.as_dict()
    data["parts"] = {part: {"estimate_s": est, "actual_s": (round(ex.seconds[part], 2)
                                                          if part in ex.seconds else None)}
                     for part, est in ex.plan.estimate_s.items()}
    data["parts"].update(evaluation_parts(inputs))
    return data


def evaluation_parts(inputs: ReportInputs) -> dict[str, dict]:
    """{"curves", "slices": {"estimate_s", "actual_s"}} of the parts that ran this build (as
    ``inputs.timings`` has them): the estimates by the cost models of
    :func:`reportgen.evaluate.curves.curves_seconds` (test images x classes x resamples) and
    :func:`reportgen.evaluate.slices.slices_seconds` (test images x metadata columns)."""
    from reportgen.evaluate.curves import curves_seconds
    from reportgen.evaluate.slices import slices_seconds

    labels = np.asarray(inputs.ds.splits["test"].labels)
    n, k = len(labels), len(inputs.ds.class_names)
    meta = inputs.slices.metadata if inputs.slices is not None else None
    est = {"curves": curves_seconds(n, len(np.unique(labels[labels >= 0])), k),
           "slices": slices_seconds(n, len(meta.columns) if meta is not None else 0)}
    return {part: {"estimate_s": round(est[part], 2), "actual_s": round(inputs.timings[part], 2)}
            for part in est if part in inputs.timings}


def gather(inputs: ReportInputs, drawn: dict) -> SiteContent:
    """Every page context and file job of the report (nothing is written); a view whose
    context fails is left out and recorded in ``failures`` after the explanations' own.

    ``drawn``: the metric figures' page data from :func:`metric_figures`."""
    content = SiteContent(failures=list(inputs.explained.failures) + list(inputs.failures))
    with collecting(content.failures):
        _gather(inputs, drawn, content)
    for page in content.pages:  # as known now; write_site adds the figures' and images'
        page.context.update(failure_context(content.failures))
    return content


def failure_context(failures: list[Failure]) -> dict:
    """What the pages read of the failed parts: ``failures`` (each {part, layer, error,
    line}) and ``failed_in`` (:func:`failures_by_section`)."""
    return {"failures": [{**f.as_dict(), "line": f.line()} for f in failures],
            "failed_in": failures_by_section(failures)}


def _gather(inputs: ReportInputs, drawn: dict, content: SiteContent) -> None:
    """Fill ``content`` with the pages, file jobs and metrics of :func:`gather`."""
    assets, ds, ex = content.assets, inputs.ds, inputs.explained
    test, probs, names = ds.splits["test"], inputs.probs["test"], ds.class_names
    common = _common(inputs)
    pointing = _pointing(ex)
    tables = _split_tables(assets, inputs)
    points = _explorer_map(inputs)  # before the Methods page: the plan table shows its time
    pages = class_pages(assets, test, probs, names, ex, inputs.metrics["test"]["per_class"])
    strategies, strategies_page = _strategies(assets, inputs, pages, common)
    m = methods_context(assets, test, probs, names, ex, ran_settings(inputs),
                        inputs.method_options)
    t_quality = table(assets, m["quality_table"]) if m["quality_table"] else None
    t_plan = table(assets, m["plan_table"]) if m["plan_table"] else None
    L = layers_context(assets, test, names, ex, gray=bool(ds.sources and ds.sources.all_gray))
    sliced = summary(assets, inputs.slices, table)
    index = _index_context(inputs, common, tables, drawn, pointing, sliced)
    index["strategies"] = strategies
    model = _model_context(assets, inputs, common)
    content.pages = [Page("index.html", "index.html", index)]
    if sliced is not None:
        content.pages.append(Page("slices.html", "slices.html", {
            **common, "page_title": "Slices", "current": "slices.html", "slices": sliced,
            "fig_slices": drawn.get("slices")}))
    scale = colour_scale(assets)
    content.pages += [Page(rel, "class.html", ctx) for page in pages
                      for rel, ctx in class_page_files(page, common, ex.layer, scale,
                                                       ds.has_boxes)]
    errors = errors_page(assets, test, probs, names, ex)  # before report.md, which shows it
    data = data_context(assets, inputs, common)
    if errors is not None:
        content.pages += [Page(rel, "errors.html", ctx) for rel, ctx in
                          class_page_files(errors, common, ex.layer, scale, ds.has_boxes)]
    explore, explorer_metrics = _explorer(assets, inputs, common, points)
    index["explorer"] = explorer_metrics  # the overview and report.md link it
    content.pages += [
        Page("explore.html", "explore.html", explore),
        Page("model.html", "model.html", model),
        Page("methods.html", "methods.html", {**common, "page_title": "Methods",
                                              "current": "methods.html", "m": m,
                                              "t_quality": t_quality, "t_plan": t_plan,
                                              "layer": ex.layer}),
        Page("layers.html", "layers.html", {**common, "page_title": "Layers",
                                            "current": "layers.html", "L": L}),
        Page("data.html", "data.html", data),
        strategies_page,
        Page("report.md", "report.md", {**index, "class_pages": pages, "m": m,
                                        "errors": errors, "data_page": data,
                                        "t_layers": model["t_layers"], "t_quality": t_quality,
                                        "L": L}),
        Page("model_card.md", "model_card.md", card_page(index)),
    ]
    assets.text("predictions.csv", predictions_csv(test, probs, names,
                                                   operating_threshold(inputs.metrics)))
    if ex.test_maps is not None:
        assets.file("explanations.npz", _maps_file(ex))
    for name in STATIC:
        assets.copy(name, templates_dir() / name)
    assets.text(".nojekyll", "")
    content.metrics = {**_metrics_json(inputs, pointing), "explorer": explorer_metrics}


def _explorer_map(inputs: ReportInputs):
    """The explorer's map (:func:`~reportgen.report.explorer.map_points`), its seconds
    recorded as the plan's part "explorer map" (a rebuild from the cache keeps those of the
    build that made the plan, as every other part's; the page states its own); None without
    features or where it failed (a failure noted on the page)."""
    from reportgen.report.explorer import map_points

    with optional_part("explorer map") as part:
        t0 = time.perf_counter()
        points = map_points(inputs.features, inputs.cfg.training.seed)
        if points is not None:
            inputs.explained.seconds.setdefault("explorer map", time.perf_counter() - t0)
    return None if part.failure else points


def _explorer(assets: Assets, inputs: ReportInputs, common: dict, points) -> tuple[dict, dict]:
    """``explore.html``'s context and metrics.json's ``explorer``; a page that fails is the
    page without its map, the failure noted on it. Besides the labels, the map colours by
    strategy and by data issue where they exist."""
    from reportgen.report.explorer import explorer_page

    extra = strategy_colouring(inputs.explained, inputs.ds.class_names)
    with optional_part("data audit"):  # a broken audit is the audit's failure, not the map's
        extra.update(issue_colouring(inputs.data_issues) or {})
    with optional_part("explorer page"):
        return explorer_page(assets, inputs, common, points, extra or None)
    return explorer_page(assets, inputs, common, None, why="the map could not be made")


def _strategies(assets: Assets, inputs: ReportInputs, pages: list[dict], common: dict
                ) -> tuple[dict, Page]:
    """The Strategies page's context and page; each class page gets its class's entry
    (``strategies``, None where there is none)."""
    test, ex = inputs.ds.splits["test"], inputs.explained
    ctx = strategies_context(assets, test, inputs.probs["test"], inputs.ds.class_names, ex)
    for page in pages:
        page["strategies"] = ctx["by_class"].get(page["index"])
    return ctx, Page("strategies.html", "strategies.html", {
        **common, "page_title": "Strategies", "current": "strategies.html", "S": ctx,
        "layer": ex.layer})


def write_site(site, content: SiteContent, figures: Figures, timings: dict,
               show_progress: bool = True) -> Path:
    """Write ``content`` into ``site`` (a SiteWriter): the figures of ``figures``, every file
    job, every page, and metrics.json with ``timings`` (wall seconds per stage, completed with
    this stage's own as it goes) and ``failures`` (a figure or image that fails to be made is
    left out and added to ``content.failures``). Return the path of index.html inside the
    site."""
    t0 = time.perf_counter()
    with prog.bar("Writing images", len(content.assets.jobs), show_progress) as advance, \
            collecting(content.failures):
        figures.write_into(site)
        content.assets.write(site, advance)
    timings["figures"] = timings.get("figures", 0.0) + time.perf_counter() - t0
    t0 = time.perf_counter()
    env = environment()
    failed = failure_context(content.failures)
    for page in content.pages:
        site.path(page.rel).write_text(render(env, page.template, {**page.context, **failed}),
                                       "utf-8")
    with collecting(content.failures), optional_part("report.html"):
        write_single(site.folder, content.pages, failed)
    timings["render"] = timings.get("render", 0.0) + time.perf_counter() - t0
    data = {**content.metrics, "failures": [f.as_dict() for f in content.failures],
            "timings_s": {k: round(v, 3) for k, v in timings.items()}}
    site.path("metrics.json").write_text(json.dumps(json_safe(data), indent=1, allow_nan=False),
                                         "utf-8")
    return site.path("index.html")


def json_safe(o):
    """Return ``o`` as strict JSON data: NaN becomes None, numpy scalars Python numbers,
    strings :func:`~reportgen.text.printable` (as in predictions.csv)."""
    if isinstance(o, str):
        return printable(o)
    if isinstance(o, dict):
        return {printable(k): json_safe(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [json_safe(v) for v in o]
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, (float, np.floating)):
        return None if o != o else float(o)
    return o
