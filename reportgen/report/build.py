"""Turn the build's results into the site: figures, tiles, tables, page contexts, pages.

Page contexts are plain data (dicts, lists, strings, numbers) so they can be inspected in tests;
rendering is Jinja2. Never imports tensorflow.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import numpy as np

from reportgen import figures as figs
from reportgen import progress as prog
from reportgen.figures.overlay import heatmap_overlay, save_image, to_rgb
from reportgen.report.figjobs import Figures
from reportgen.report.pages import layers_context, methods_context
from reportgen.report.render import environment, render, templates_dir
from reportgen.report.tables import Table

SECTION_TITLES = {
    "correct": ("Correct", "true {c}, predicted {c}; most confident first"),
    "misclassified": ("Misclassified", "true {c}, predicted another class; most confident "
                      "wrong prediction first"),
    "confident_wrong": ("Most confident wrong", "predicted {c} with the highest confidence, "
                        "but the true class is another"),
}
THUMB = 128  # gallery tile side in pixels (files are at most 256 px)
PAGE_TILES = 100  # gallery tiles per class page; more continue on the next page


def paginate(sections: list[dict], per_page: int = PAGE_TILES) -> list[list[dict]]:
    """Split gallery sections into pages of at most ``per_page`` tiles; a section cut by a page
    break continues on the next page (``continued`` True there). Every page lists each of its
    sections with ``total`` = the section's full size."""
    pages: list[list[dict]] = [[]]
    count = 0
    for sec in sections:
        tiles = sec["tiles"]
        start = 0
        while True:
            if count >= per_page:
                pages.append([])
                count = 0
            part = tiles[start:start + per_page - count]
            pages[-1].append({**sec, "tiles": part, "continued": start > 0,
                              "total": len(tiles)})
            count += len(part)
            start += len(part)
            if start >= len(tiles):
                break
    return pages


def slug(index: int, name: str) -> str:
    """Return a file-safe, unique page name for class ``index`` called ``name``."""
    clean = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")[:40] or "class"
    return f"class-{index:02d}-{clean}"


class _Site:
    """Writes tables into the site folder and records their links."""

    def __init__(self, site):
        self.site = site

    def table(self, table: Table) -> dict:
        self.site.path(f"tables/{table.name}.tex").write_text(table.latex(), encoding="utf-8")
        return {"html": table.html(), "md": table.markdown(), "tex": f"tables/{table.name}.tex",
                "caption": table.caption}


def _gallery_items(site, split, probs, class_names, indices, maps, written, written_tile,
                   timer, top_k: int) -> list[dict]:
    """Write tiles (image, GradCAM overlay; thumbnail and full size) once per test image."""
    items = []
    for i in indices:
        true, pred = int(split.labels[i]), int(probs[i].argmax())
        conf = float(probs[i].max())
        if i not in written:
            with timer.stage("figures"):
                written_tile(i)
                if i in maps:
                    img = to_rgb(split.images[i:i + 1])[0]
                    over = heatmap_overlay(img[None], maps[i][None])[0]
                    save_image(over, site.path(f"img/gradcam/{i}.jpg"), side=THUMB)
                    save_image(over, site.path(f"img/gradcam/full/{i}.jpg"),
                               side=min(max(256, over.shape[1]), 512), quality=90)
            written.add(i)
        order = np.argsort(-probs[i], kind="stable")[:top_k]
        desc = (f"true {class_names[true]}, predicted {class_names[pred]}, {conf:.2f}")
        has_map = i in maps
        items.append({
            "index": i,
            "path": split.paths[i],
            "true": class_names[true],
            "pred": class_names[pred],
            "correct": true == pred,
            "confidence": conf,
            "topk": [(class_names[int(k)], float(probs[i][k])) for k in order],
            "image": f"img/test/{i}.jpg",
            "image_alt": f"Test image {split.paths[i]}, {desc}",
            "thumb": f"img/gradcam/{i}.jpg" if has_map else f"img/test/{i}.jpg",
            "full": f"img/gradcam/full/{i}.jpg" if has_map else f"img/test/{i}.jpg",
            "alt": f"GradCAM, {desc}" if has_map else f"Test image, {desc}",
            "size": THUMB,
        })
    return items


def metric_figures(figures: Figures, cfg, ds, metrics: dict, history: dict) -> dict:
    """Queue the figures that need only the data, the metrics and the training history (class
    distribution, training curves, confusion matrices, reliability diagram) on ``figures``;
    return their page data: {"dist", "curves", "cms", "rel"}."""
    names = ds.class_names
    counts = {name: np.bincount(split.labels, minlength=len(names)).tolist()
              for name, split in ds.splits.items()}
    fig_dist = figures.add(
        "class_distribution", figs.class_distribution, counts, names,
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
    cms = {}
    for split in ("train", "val", "test"):
        m = metrics[split]
        if not m["n"]:
            continue
        cms[split] = [
            figures.add(f"confusion_{split}", figs.confusion_matrix, m["confusion_matrix"],
                        names, title=f"Confusion matrix, {split}",
                        alt=f"Confusion matrix of the {split} split in counts, accuracy "
                            f"{m['accuracy']:.3f}",
                        caption=f"{split}: counts (row = true class)."),
            figures.add(f"confusion_{split}_normalized", figs.confusion_matrix,
                        m["confusion_matrix_normalized"], names, normalized=True,
                        title=f"Confusion matrix, {split}",
                        alt=f"Row-normalized confusion matrix of the {split} split",
                        caption=f"{split}: row-normalized (recall on the diagonal)."),
        ]
    fig_rel = None
    if "calibration" in metrics["test"]:
        cal = metrics["test"]["calibration"]
        fig_rel = figures.add(
            "reliability", figs.reliability_diagram, cal["bins"], ece=cal["ece"],
            alt=f"Reliability diagram of the test split, expected calibration error "
                f"{cal['ece']:.3f}",
            caption="Test-set calibration: accuracy against confidence per bin.")
    return {"dist": fig_dist, "curves": fig_curves, "cms": cms, "rel": fig_rel}


def write_site(site, *, cfg, ds, probs, metrics, history, explained, info, notes, timer,
               show_progress: bool = True, figure_cache: Path | None = None,
               figures: Figures | None = None, drawn: dict | None = None) -> Path:
    """Write every page, figure, table and export of the report into ``site``; return the path
    of index.html inside it.

    ``figures`` with ``drawn``: the metric figures already queued by :func:`metric_figures`
    (the pipeline starts them before the explanations); without them they are drawn here.
    """
    names = ds.class_names
    s = _Site(site)
    built = time.strftime("%Y-%m-%d %H:%M")
    classes = [{"index": i, "name": n, "href": f"{slug(i, n)}.html"} for i, n in enumerate(names)]
    nav = [{"href": "index.html", "label": "Overview"}, {"href": "methods.html",
                                                          "label": "Methods"},
           {"href": "layers.html", "label": "Layers"}, {"href": "model.html", "label": "Model"}]
    nav += [{"href": c["href"], "label": c["name"]} for c in classes]
    base = {"title": cfg.report.title, "version": info["version"], "built": built, "nav": nav}

    if figures is None:
        with Figures(cfg.report.figure_formats, figure_cache, parallel=False) as own:
            return write_site(site, cfg=cfg, ds=ds, probs=probs, metrics=metrics,
                              history=history, explained=explained, info=info, notes=notes,
                              timer=timer, show_progress=show_progress, figures=own,
                              drawn=metric_figures(own, cfg, ds, metrics, history))
    fig_dist, fig_curves, cms, fig_rel = (drawn[k] for k in ("dist", "curves", "cms", "rel"))
    counts = {name: np.bincount(split.labels, minlength=len(names)).tolist()
              for name, split in ds.splits.items()}

    # -- tables -------------------------------------------------------------------------------
    k = cfg.report.top_k
    topk_key = f"top_{k}_accuracy"
    split_rows = []
    for split in ("train", "val", "test"):
        m = metrics[split]
        row = [split, m["n"], m["accuracy"], m["loss"], m["macro_f1"]]
        if topk_key in metrics["test"]:
            row.append(m.get(topk_key))
        split_rows.append(row)
    headers = ["split", "images", "accuracy", "loss", "macro F1"]
    if topk_key in metrics["test"]:
        headers.append(f"top-{k} accuracy")
    t_splits = s.table(Table("accuracy_loss", headers, split_rows,
                             "Accuracy and loss per split"))
    pc = metrics["test"]["per_class"]
    t_classes = s.table(Table(
        "per_class_test", ["class", "precision", "recall", "F1", "support"],
        [[n, pc[n]["precision"], pc[n]["recall"], pc[n]["f1"], pc[n]["support"]]
         for n in names], "Per-class metrics on the test split"))
    t_counts = s.table(Table(
        "class_counts", ["class"] + list(counts) + ["total"],
        [[n] + [counts[sp][i] for sp in counts] + [sum(counts[sp][i] for sp in counts)]
         for i, n in enumerate(names)], "Images per class and split"))
    pointing = {}
    for method, hits in explained.pointing.items():
        valid = hits[np.isfinite(hits)]
        if len(valid):
            pointing[method] = {"score": float(valid.mean()), "n": int(len(valid))}

    # -- gallery pages ------------------------------------------------------------------------
    test = ds.splits["test"]
    maps = explained.maps.get("gradcam", {})
    written: set[int] = set()  # test images whose GradCAM tiles exist
    tiles_written: set[int] = set()  # test images whose plain tile exists

    def written_tile(i: int) -> str:
        """Write img/test/<i>.jpg once; return its path in the site."""
        rel = f"img/test/{i}.jpg"
        if i not in tiles_written:
            save_image(to_rgb(test.images[i:i + 1])[0], site.path(rel), side=THUMB)
            tiles_written.add(i)
        return rel

    class_pages = []
    total = sum(len(v) for g in explained.galleries.values() for v in g.values())
    with prog.bar("Rendering galleries", total, show_progress) as advance:
        for c in classes:
            sections = []
            for key in ("correct", "misclassified", "confident_wrong"):
                idx = explained.galleries[c["index"]][key]
                title, desc = SECTION_TITLES[key]
                sections.append({
                    "key": key, "title": title, "description": desc.format(c=c["name"]),
                    "tiles": _gallery_items(site, test, probs["test"], names, idx, maps,
                                            written, written_tile, timer, min(3, len(names))),
                })
                advance(len(idx))
            class_pages.append({**c, "metrics": pc[c["name"]], "sections": sections})

    with timer.stage("figures"):
        methods_ctx = methods_context(site, test, probs["test"], names, explained, written_tile)
        layers_ctx = layers_context(site, test, names, explained, written_tile)
        figures.write_into(site)
    t_quality = s.table(methods_ctx["quality_table"]) if methods_ctx["quality_table"] else None

    # -- contexts and pages ---------------------------------------------------------------------
    env = environment()
    test_m = metrics["test"]
    headline = [
        {"label": "test accuracy", "value": f"{100 * test_m['accuracy']:.1f} %"},
        {"label": "test macro F1", "value": f"{test_m['macro_f1']:.3f}"},
        {"label": "test images", "value": str(test_m["n"])},
        {"label": "classes", "value": str(len(names))},
    ]
    if "gradcam" in pointing:
        headline.append({"label": "GradCAM pointing game",
                         "value": f"{100 * pointing['gradcam']['score']:.1f} %"})
    data_ctx = {
        "source": cfg.data.source, "root": str(ds.root), "layout": ds.layout,
        "image_size": f"{test.images.shape[2]}x{test.images.shape[1]}",
        "skipped": ds.skipped, "dropped": ds.dropped_classes, "has_boxes": ds.has_boxes,
    }
    common = {**base, "classes": classes, "notes": notes}
    index_ctx = {
        **common, "page_title": "Overview", "current": "index.html", "headline": headline,
        "data": data_ctx, "fig_dist": fig_dist, "fig_curves": fig_curves, "cms": cms,
        "fig_rel": fig_rel, "t_splits": t_splits, "t_classes": t_classes, "t_counts": t_counts,
        "epochs": len(history.get("loss", [])), "trained": bool(history),
        "layer": explained.layer, "pointing": pointing, "info": info,
    }
    with timer.stage("render"):
        site.path("index.html").write_text(render(env, "index.html", index_ctx), "utf-8")
        for page in class_pages:
            parts = paginate(page["sections"])
            hrefs = [page["href"]] + [page["href"].replace(".html", f"-p{k}.html")
                                      for k in range(2, len(parts) + 1)]
            for k, part in enumerate(parts):
                pager = [{"n": n + 1, "href": h, "current": n == k}
                         for n, h in enumerate(hrefs)] if len(parts) > 1 else []
                ctx = {**common, "page_title": page["name"] + (f" ({k + 1})" if k else ""),
                       "current": page["href"], "page": page, "sections": part,
                       "pager": pager, "layer": explained.layer}
                site.path(hrefs[k]).write_text(render(env, "class.html", ctx), "utf-8")
        t_layers = Table("model_layers", ["layer", "type", "output shape", "parameters"],
                         [[r["name"], r["kind"], r["output_shape"], r["params"]]
                          for r in info["summary"]], "Layers of the model")
        model_ctx = {**common, "page_title": "Model", "current": "model.html", "info": info,
                     "t_layers": s.table(t_layers), "config": cfg.to_dict(),
                     "config_json": json.dumps(cfg.to_dict(), indent=2),
                     "saved_model": cfg.model.source == "train"}
        site.path("model.html").write_text(render(env, "model.html", model_ctx), "utf-8")
        site.path("methods.html").write_text(render(env, "methods.html", {
            **common, "page_title": "Methods", "current": "methods.html", "m": methods_ctx,
            "t_quality": t_quality, "layer": explained.layer}), "utf-8")
        site.path("layers.html").write_text(render(env, "layers.html", {
            **common, "page_title": "Layers", "current": "layers.html", "L": layers_ctx}),
            "utf-8")
        md_ctx = {**index_ctx, "class_pages": class_pages, "t_layers": model_ctx["t_layers"],
                  "m": methods_ctx, "t_quality": t_quality, "L": layers_ctx}
        site.path("report.md").write_text(render(env, "report.md", md_ctx), "utf-8")
        shutil.copyfile(templates_dir() / "style.css", site.path("style.css"))
        site.path(".nojekyll").write_text("")
    site.path("metrics.json").write_text(json.dumps(_clean({
        "title": cfg.report.title, "classes": names, "splits": metrics, "history": history,
        "explain": {"layer": explained.layer, "pointing_game": pointing,
                    "quality": explained.quality,
                    "seconds": {k: round(v, 3) for k, v in explained.seconds.items()},
                    "receptive_field": (explained.layers or {}).get("rf")},
        "skipped": [{"path": p, "reason": r} for p, r in ds.skipped],
        "dropped_classes": ds.dropped_classes, "notes": notes,
        "model": {k: info[k] for k in ("model_name", "model_hash", "data_hash", "params",
                                       "input_shape", "preprocess")},
        "versions": {k: info[k] for k in ("version", "python", "tensorflow", "keras",
                                          "numpy")},
        "timings_s": {k: round(v, 3) for k, v in timer.times.items()},
    }), indent=1, allow_nan=False), "utf-8")
    return site.path("index.html")


def _clean(o):
    """Return ``o`` as strict JSON data: NaN becomes None, numpy scalars Python numbers."""
    if isinstance(o, dict):
        return {str(k): _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, (float, np.floating)):
        return None if o != o else float(o)
    return o
