"""Contexts of the Methods and Layers pages (their image files queued as jobs, never written
here)."""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
from PIL import Image

from reportgen.evaluate import F1_DRAWS, RESAMPLES
from reportgen.explain.methods import REGISTRY, as_map
from reportgen.explain.results import LAYER_VIEWS, RANKED, SANITY_THRESHOLD, LayerViews
from reportgen.figures.overlay import (
    LABEL_STRIP,
    colormap_lut,
    heatmap_overlay,
    labelled_grid,
    magnitude_map,
    signed_to_rgb,
    to_rgb,
)
from reportgen.guard import optional_part
from reportgen.report.assets import Assets
from reportgen.report.gallery import describe, predicted, test_tile, true_name, with_box
from reportgen.text import duration
from reportgen.report.tables import Table, with_interval

CELL = 96  # side of a method cell in pixels


def _normalize(a: np.ndarray) -> np.ndarray:
    """Min-max scale each item of a stack (axis 0) to uint8; constant items become 0."""
    a = np.asarray(a, np.float32)
    flat = a.reshape(len(a), -1)
    lo, hi = flat.min(1), flat.max(1)
    span = np.where(hi > lo, hi - lo, 1.0)
    out = (a - lo.reshape((-1,) + (1,) * (a.ndim - 1))) / span.reshape((-1,) + (1,) * (a.ndim - 1))
    out[hi <= lo] = 0
    return np.round(out * 255).astype(np.uint8)


def display(name: str, images: np.ndarray, out: np.ndarray) -> np.ndarray:
    """RGB uint8 (N, H, W, 3) views of a method's output, by its output kind: maps over the
    image (scaled per image to [0, 1]), attribution magnitudes in the "inferno" colour map
    (scaled to the 99.5th percentile), signed attributions in colour (grey = 0)."""
    kind = REGISTRY[name].output
    if kind == "map":
        return heatmap_overlay(images, as_map(name, out))
    if kind == "attribution":
        idx = np.round(magnitude_map(out, percentile=99.5) * 255).astype(np.uint8)
        return colormap_lut("inferno")[idx]
    return signed_to_rgb(out)


def _method_rows(assets: Assets, split, probs, names, explained) -> tuple[list[str], list[dict]]:
    """The methods shown and the rows of the methods table: each sample image and its cell
    per method (a method whose output cannot be drawn is left out, noted)."""
    if not explained.samples:
        return [], []
    imgs = to_rgb(split.images[explained.samples])
    views = {}
    for m, out in explained.method_outputs.items():
        with optional_part(f"{REGISTRY[m].label} on the sample images"):
            views[m] = display(m, imgs, out)
    methods = list(views)
    rows = []
    for r, i in enumerate(explained.samples):
        c, conf = predicted(probs, i, explained.threshold)
        true, pred = true_name(split, names, i), names[c]
        desc = describe(split, probs, names, i, explained.threshold)
        cells = [{"src": test_tile(assets, split, i), "alt": f"Test image, {desc}"}]
        for m in methods:
            rel = assets.image(f"img/methods/{m.replace('+', 'p')}/{i}.jpg",
                               partial(np.asarray, views[m][r]), CELL)
            cells.append({"src": rel, "alt": f"{REGISTRY[m].label}, {desc}"})
        rows.append({"index": i, "true": true, "pred": pred, "confidence": conf,
                     "cells": cells})
    return methods, rows


def _overlay_one(image: np.ndarray, cam: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8: ``cam`` ((H, W) float in [0, 1]) over ``image`` ((H, W, C) uint8)."""
    return heatmap_overlay(image[None], cam[None])[0]


def _class_grid(assets: Assets, split, names, explained) -> dict | None:
    """The classes x images GradCAM grid."""
    if explained.class_grid is None:
        return None
    idx = explained.grid_indices
    imgs = to_rgb(split.images[idx])
    kind = "class" if split.labeled else "predicted class"
    cols = [{"true": names[int(split.labels[i])], "src": test_tile(assets, split, i),
             "alt": f"Test image of {kind} {names[int(split.labels[i])]}"} for i in idx]
    rows = []
    for r, c in enumerate(explained.grid_classes):
        cname = names[c]
        cells = []
        for k, i in enumerate(idx):
            rel = assets.image(f"img/classgrid/{i}_{c}.jpg", partial(
                _overlay_one, imgs[k], explained.class_grid[k, r]), CELL)
            cells.append({"src": rel, "alt": f"GradCAM for class {cname} on a test image of "
                                             f"{kind} {names[int(split.labels[i])]}"})
        rows.append({"explained": cname, "cells": cells})
    shown = sorted({int(split.labels[i]) for i in idx})
    return {"columns": cols, "rows": rows, "labeled": split.labeled,
            "chosen": list(explained.grid_classes) != shown}


def quality_table(quality: dict, ranking: dict | None = None,
                  settings: dict | None = None) -> Table | None:
    """The explanation-quality table: one row per method, in registry order, each mean with
    its 95 % interval over the images, in bold the best method of each ranked column and
    every method a paired bootstrap does not separate from it (``ranking``: the build's
    ``quality_ranking``, :func:`reportgen.explain.results.rank_methods`); its caption states
    the deletion/insertion steps and tie orders as run (``settings``: the explain settings as
    run)."""
    if not quality:
        return None
    rows = [[REGISTRY[m].label, with_interval(q.deletion, q.deletion_ci95),
             with_interval(q.insertion, q.insertion_ci95),
             with_interval(q.pointing, q.pointing_ci95, 1, percent=True),
             with_interval(q.energy, q.energy_ci95),
             None if q.sanity is None else with_interval(abs(q.sanity), q.sanity_ci95),
             q.sanity_verdict,
             None if q.tied is None else f"{100 * q.tied:.1f} %",
             None if q.seconds is None else round(100 * q.seconds / max(q.n, 1), 2)]
            for m, q in quality.items()]
    columns = list(RANKED)  # table columns 1..5, in this order
    methods = list(quality)
    marks = {(methods.index(m), 1 + columns.index(c)) for c, r in (ranking or {}).items()
             for m in r["tied"] if m in quality}
    q = next(iter(quality.values()))
    curves = "" if settings is None else (
        f"; deletion/insertion in {settings['quality_steps']} steps, tied pixels "
        f"{_orders(settings['tie_orders'])}")
    return Table("explanation_quality",
                 ["method"] + [RANKED[c][0] for c in columns] + [
                     f"sanity verdict (passes below {SANITY_THRESHOLD:g})", "tied pixels",
                     "s / 100 images"], rows,
                 f"Explanation quality of the predicted class on n = {q.n} test images "
                 f"({q.n_boxes} with an object box, {q.n_sanity} in the sanity check{curves}); "
                 f"95 % intervals in brackets (percentile bootstrap over the images; Wilson "
                 f"for the pointing game). {ranking_sentence(ranking or {})} "
                 f"{sanity_sentence(quality)}", marks=marks)


def ranking_sentence(ranking: dict) -> str:
    """What the bold cells of the quality table mean, and per column whether the best
    method is separated from the others or tied with them."""
    if not ranking:
        return "No column ranks two or more methods, so none is marked."
    parts = []
    for column, r in ranking.items():
        label = RANKED[column][0].rstrip(" ↓↑") + _compared_on(r)
        if r["separated"]:
            parts.append(f"{label}: {REGISTRY[r['best']].label} is best, separated from "
                         f"every other method")
        else:
            others = [REGISTRY[m].label for m in r["tied"] if m != r["best"]]
            parts.append(f"{label}: no single best ({REGISTRY[r['best']].label} has the best "
                         f"value; {', '.join(others)} not separated from it)")
    return (f"Bold: in each column with an arrow (lower or higher is better) the best method "
            f"and every method not separated from it by a paired bootstrap over the same images "
            f"({RESAMPLES} resamples, seed 0; separated when the 95 % interval of the "
            f"difference excludes 0); a column with one bold value has a separated best. "
            + "; ".join(parts) + ".")


def _compared_on(r: dict) -> str:
    """Where a paired ranking ``r`` (:func:`~reportgen.evaluate.paired_best`) compared fewer
    images than the column's values cover (a method without a score where another has one),
    the images it compared and each method's mean on them; else nothing."""
    if r["n"] >= r.get("scored", r["n"]):
        return ""
    means = ", ".join(f"{REGISTRY[m].label} {v:.3f}" for m, v in r["means"].items())
    return (f" (compared on the {r['n']} of {r['scored']} images where every method has a "
            f"score; means there: {means})")


def sanity_sentence(quality: dict) -> str:
    """The sanity check's verdicts in words, with the threshold."""
    verdicts = {m: q.sanity_verdict for m, q in quality.items() if q.sanity_verdict}
    if not verdicts:
        return "No sanity check ran, so no method has a verdict."

    def named(v):
        return [REGISTRY[m].label for m, x in verdicts.items() if x == v]
    text = (f"Sanity check (Adebayo et al. 2018): a method passes when the 95 % interval of "
            f"its |rank correlation| after head randomization is below {SANITY_THRESHOLD:g}, "
            f"fails when it is at or above it, and is inconclusive when it straddles it.")
    for v, how in (("fails", "Fail"), ("inconclusive", "Inconclusive"),
                   ("passes", "Pass")):
        if named(v):
            text += f" {how}: {', '.join(named(v))}."
    if named("undefined"):
        text += (f" No verdict: {', '.join(named('undefined'))} (a map before or after "
                 f"randomization was constant on every sanity image, so no rank correlation "
                 f"exists).")
    return text


def _orders(n: int) -> str:
    """How the ties were ordered: ``in 1 seeded random order`` or ``averaged over 3 seeded
    random orders``."""
    return "in 1 seeded random order" if n == 1 else f"averaged over {n} seeded random orders"


def plan_table(plan, seconds: dict) -> Table | None:
    """The plan's parts: estimated seconds with the settings as asked and as planned, and the
    seconds each part took."""
    if plan is None:
        return None
    rows = []
    for part, full in plan.estimate_full_s.items():
        took = seconds.get(part)
        label = "test set (GradCAM of every image; never reduced)" if part == "test set" \
            else part
        rows.append([label, duration(full), duration(plan.estimate_s[part]),
                     None if took is None else duration(took)])
    return Table("plan", ["part", "estimated, as asked", "estimated, planned", "took"],
                 rows, f"The work planned to explain.budget = {duration(plan.budget_s)}")


def methods_context(assets: Assets, split, probs, names, explained, settings: dict,
                    method_options: dict) -> dict:
    """The Methods page context: the sample images across every method, the class grid, the
    quality table, each method's description from the registry with its options as run
    (``method_options``: {method: {key: value}}), and the explain ``settings`` as run."""
    about = [{"name": m, "label": s.label, "description": s.description,
              "reference": s.reference, "ran": m in explained.method_outputs
              or m in explained.quality,
              "options": ", ".join(f"{k} = {v}" for k, v in method_options.get(m, {}).items())}
             for m, s in REGISTRY.items()]
    methods, rows = _method_rows(assets, split, probs, names, explained)
    return {"methods": [REGISTRY[m].label for m in methods], "rows": rows,
            "grid": _class_grid(assets, split, names, explained),
            "quality_table": quality_table(explained.quality, explained.quality_ranking,
                                           settings),
            "quality": explained.quality,
            "sanity_text": sanity_sentence(explained.quality) if explained.quality else "",
            "ranking_text": ranking_sentence(explained.quality_ranking)
            if explained.quality else "", "sanity_threshold": SANITY_THRESHOLD,
            "labeled": split.labeled,
            "tie_orders": settings["tie_orders"], "orders": _orders(settings["tie_orders"]),
            "steps": settings["quality_steps"],
            "plan": explained.plan, "plan_table": plan_table(explained.plan, explained.seconds),
            "resamples": RESAMPLES, "f1_draws": F1_DRAWS, "per_table": GRID_COLUMNS,
            "relus": getattr(explained, "relus", None),
            "about": [a for a in about if a["ran"]]}


#: Image columns per table of the Methods page's grids: more images continue in another
#: table below, so a grid fits a 1280 px window without scrolling sideways.
GRID_COLUMNS = 8


PAD = 6  # gutter between the tiles of a mosaic, pixels


def _grid_png(assets: Assets, rel: str, stack: np.ndarray, side: int, cols: int,
              labels: list[str], lut: np.ndarray | None = None) -> dict:
    """Queue a PNG mosaic of the items of ``stack`` (N, h, w[, C]), each scaled to uint8
    (through the colour map ``lut`` if given), made RGB, enlarged to at least ``side`` pixels,
    ``cols`` to a row with gutters, each labelled; return {"src", "width", "height"}."""
    f = max(1, int(np.ceil(side / stack.shape[1])))
    cols = min(cols, len(stack))
    rows = int(np.ceil(len(stack) / cols))

    def make():
        tiles = _normalize(stack)
        if lut is not None:
            tiles = lut[tiles]
        if tiles.ndim == 3:
            tiles = tiles[..., None]
        if tiles.shape[-1] == 1:
            tiles = np.repeat(tiles, 3, axis=-1)
        tiles = np.stack([_upscale(t, side) for t in tiles])
        return labelled_grid(tiles, cols=cols, labels=labels, pad=PAD)
    return {"src": assets.image(rel, make, fmt="PNG"),
            "width": cols * (stack.shape[2] * f + PAD) - PAD,
            "height": rows * (stack.shape[1] * f + LABEL_STRIP + PAD) - PAD}


def _upscale(a: np.ndarray, side: int) -> np.ndarray:
    f = max(1, int(np.ceil(side / a.shape[0])))
    return np.repeat(np.repeat(a, f, axis=0), f, axis=1)


def _feature_maps(assets: Assets, L: LayerViews) -> list[dict]:
    out = []
    for k, (p, view) in enumerate(L.feature_maps.items()):
        maps = np.moveaxis(view.maps, -1, 0)  # (C, h, w)
        grid = _grid_png(assets, f"img/layers/fmap_{k}.png", maps, 48, 8,
                         [f"ch {c}" for c in view.channels], colormap_lut("viridis"))
        out.append({"layer": p, **grid, "shown": len(view.channels), "total": view.total,
                    "shape": f"{maps.shape[1]}×{maps.shape[2]}",
                    "alt": f"Feature maps of layer {p}: the {len(view.channels)} most active "
                           f"of {view.total} channels, each labelled with its channel number"})
    return out


def gray_of(stack: np.ndarray, gray: bool, *, total: bool = False) -> np.ndarray:
    """``stack`` (..., C) with its 3 colour channels made one gray channel when ``gray`` (a
    model that only ever saw grayscale images, as 3 equal channels): their mean, or with
    ``total`` their sum (a first-layer filter's effective weights on a gray input)."""
    if not gray or stack.shape[-1] != 3:
        return stack
    return stack.sum(-1, keepdims=True) if total else stack.mean(-1, keepdims=True)


def _filters(assets: Assets, L: LayerViews, gray: bool = False) -> list[dict]:
    out = []
    kinds = getattr(L, "filter_kinds", {})  # absent from a cache written before they were kept
    for n, (p, k) in enumerate(L.filters.items()):
        kk = np.moveaxis(k, -1, 0)  # (F, kh, kw, in)
        rel = f"img/layers/filters_{n}.png"
        if gray and kk.shape[-1] == 3:  # gray images as 3 equal channels: one gray tile
            grid = _grid_png(assets, rel, gray_of(kk, gray, total=True)[..., 0], 36, 16,
                             [f"f {i}" for i in range(len(kk))])
            shown, how = len(kk), "as gray tiles (the sum over the input's equal channels)"
        elif kk.shape[-1] == 3:  # an RGB input layer: one colour tile per filter
            grid = _grid_png(assets, rel, kk, 36, 16, [f"f {i}" for i in range(len(kk))])
            shown, how = len(kk), "as RGB tiles"
        elif kk.shape[-1] == 1:  # one input channel (depthwise, gray input): one tile each
            shown = min(32, len(kk))
            grid = _grid_png(assets, rel, kk[:shown, ..., 0], 36, 8,
                             [f"f {i}" for i in range(shown)])
            how = "as gray tiles"
            if kinds.get(p) in ("depthwise", "separable"):
                how += ": the depthwise kernels, one spatial filter per input channel"
            if kinds.get(p) == "separable":
                how += (" (the separable convolution's 1x1 pointwise kernel, which mixes the "
                        "channels, is not shown)")
        else:  # deeper: rows = filters, columns = input channels, one grey tile each
            f, c = min(8, kk.shape[0]), min(8, kk.shape[-1])
            per_channel = np.moveaxis(kk[:f, ..., :c], -1, 1).reshape(f * c, *kk.shape[1:3])
            grid = _grid_png(assets, rel, per_channel, 36, c,
                             [f"f{r} c{q}" for r in range(f) for q in range(c)])
            shown, how = f, (f"per input channel (rows: filters 0-{f - 1}, columns: input "
                             f"channels 0-{c - 1}; tile f3 c5 is filter 3's weights on input "
                             f"channel 5)")
        out.append({"layer": p, **grid, "count": shown, "total": len(kk),
                    "size": f"{k.shape[0]}×{k.shape[1]}", "how": how,
                    "alt": f"Learned {k.shape[0]}x{k.shape[1]} filters of layer {p} {how}"})
    return out


def _rf_scale(split) -> int:
    """The whole-number enlargement that makes a receptive-field tile at least 128 px wide."""
    return max(1, int(np.ceil(128 / split.images.shape[2])))


def _rf_tile(split, u) -> np.ndarray:
    """Test image ``u.index`` enlarged to at least 128 px with unit ``u``'s field boxed."""
    img = Image.fromarray(to_rgb(split.images[u.index:u.index + 1])[0])
    scale = _rf_scale(split)
    img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    y0, x0, y1, x1 = u.box  # inclusive unit rows and columns
    return with_box(np.asarray(img), [x0 * scale, y0 * scale, (x1 + 1) * scale,
                                      (y1 + 1) * scale], width=2)


def _receptive(assets: Assets, split, names, L: LayerViews) -> dict | None:
    if L.rf is None:
        return None
    units = []
    for u in L.rf.units:
        true = names[int(split.labels[u.index])]
        kind = "class" if split.labeled else "predicted class"
        rel = assets.image(f"img/layers/rf_{u.channel}.jpg", partial(_rf_tile, split, u),
                           quality=88)
        h, w = split.images.shape[1:3]
        scale = _rf_scale(split)
        units.append({**vars(u), "src": rel, "true": true, "kind": kind,
                      "width": w * scale, "height": h * scale,
                      "alt": f"Receptive field of channel {u.channel} unit ({u.i}, {u.j}) on "
                             f"the test image of {kind} {true} that excites it most"})
    return {**vars(L.rf), "units": units}


def _dreams(assets: Assets, split, names, L: LayerViews, gray: bool = False) -> dict | None:
    if L.dreams is None:
        return None
    d = L.dreams
    lo, hi = d.value_range
    pics = to_rgb(np.clip((gray_of(d.images, gray) - lo) / (hi - lo) * 255, 0, 255)
                  .round().astype(np.uint8))
    items = []
    for k, i in enumerate(d.indices):
        items.append({"original": test_tile(assets, split, i),
                      "src": assets.image(f"img/dream/{i}.jpg", partial(np.asarray, pics[k]),
                                          192, quality=85),
                      "label": describe_image(split, names, i),
                      "alt": f"Deep dream of a test image of "
                             f"{'class' if split.labeled else 'predicted class'} "
                             f"{names[int(split.labels[i])]}"})
    return {"layers": d.layers, "pictures": items}


def describe_image(split, names, i: int) -> str:
    """``test image 3 (true circle)``, or ``(predicted circle)`` for unlabeled photos."""
    kind = "true" if split.labeled else "predicted"
    return f"test image {split.paths[i]} ({kind} {names[int(split.labels[i])]})"


def _patterns(assets: Assets, L: LayerViews, gray: bool) -> list[dict]:
    return [{"layer": p, "count": len(pats),
             **_grid_png(assets, f"img/layers/patterns_{k}.png", gray_of(pats, gray), 80, 8,
                         [f"filter {i}" for i in range(len(pats))]),
             "alt": f"Filter patterns of layer {p}: inputs maximizing filters 0 "
                    f"to {len(pats) - 1}, each labelled"}
            for k, (p, pats) in enumerate(L.patterns.items())]


def layers_context(assets: Assets, split, names, explained, gray: bool = False
                   ) -> dict | None:
    """The Layers page context (None without conv layers). ``gray``: every image the model
    saw was grayscale, so colour in its filters, patterns and dreams means nothing: they are
    drawn gray (a model with one input channel draws them gray anyway). A view whose context
    fails is left out, recorded under its name in
    :data:`~reportgen.explain.results.LAYER_VIEWS`."""
    L = explained.layers
    if L is None:
        return None
    out: dict[str, Any] = {"fmaps": [], "filters": [], "patterns": [], "rf": None,
                           "dreams": None}
    makers = {"fmaps": lambda: _feature_maps(assets, L),
              "filters": lambda: _filters(assets, L, gray),
              "patterns": lambda: _patterns(assets, L, gray),
              "rf": lambda: _receptive(assets, split, names, L),
              "dreams": lambda: _dreams(assets, split, names, L, gray)}
    for (key, make), view in zip(makers.items(), LAYER_VIEWS, strict=True):
        with optional_part(view):
            out[key] = make()
    return {**out, "gray": gray or split.images.shape[-1] == 1,
            "notes": getattr(L, "notes", []),
            "image": L.image, "image_src": test_tile(assets, split, L.image),
            "image_desc": describe_image(split, names, L.image)}
