"""Contexts (and their image files) of the Methods and Layers pages."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from reportgen.figures.overlay import (colormap_lut, heatmap_overlay, magnitude_map, save_image,
                                       signed_to_rgb, tile_grid, to_rgb)
from reportgen.methods import METHODS
from reportgen.report.tables import Table

CELL = 96  # side of a method cell in pixels


def _save(site, rel: str, arr: np.ndarray, side: int | None = None, fmt: str = "JPEG") -> str:
    save_image(arr, site.path(rel), side=side, fmt=fmt, quality=85)
    return rel


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
    """RGB uint8 (N, H, W, 3) views of a method's output: CAM maps over the image, gradient
    magnitudes in the "inferno" colour map (scaled to the 99.5th percentile), signed
    attributions in colour (grey = 0)."""
    kind = METHODS[name][1]
    if kind == "cam":
        return heatmap_overlay(images, out)
    if kind == "grad":
        idx = np.round(magnitude_map(out, percentile=99.5) * 255).astype(np.uint8)
        return colormap_lut("inferno")[idx]
    return signed_to_rgb(out)


def methods_context(site, split, probs, names, explained, written_tile) -> dict:
    """Write the method cells and return the Methods page context."""
    methods = list(explained.method_outputs)
    rows = []
    if explained.samples:
        imgs = to_rgb(split.images[explained.samples])
        views = {m: display(m, imgs, explained.method_outputs[m]) for m in methods}
        for r, i in enumerate(explained.samples):
            true, pred = names[int(split.labels[i])], names[int(probs[i].argmax())]
            desc = f"true {true}, predicted {pred}, {probs[i].max():.2f}"
            cells = [{"src": written_tile(i), "alt": f"Test image, {desc}"}]
            for m in methods:
                rel = _save(site, f"img/methods/{m.replace('+', 'p')}/{i}.jpg", views[m][r],
                            CELL)
                cells.append({"src": rel, "alt": f"{METHODS[m][0]}, {desc}"})
            rows.append({"index": i, "true": true, "pred": pred,
                         "confidence": float(probs[i].max()), "cells": cells})
    grid = None
    if explained.class_grid is not None:
        idx = explained.grid_indices
        imgs = to_rgb(split.images[idx])
        cols = [{"true": names[int(split.labels[i])], "src": written_tile(i),
                 "alt": f"Test image of class {names[int(split.labels[i])]}"} for i in idx]
        grid_rows = []
        for c, cname in enumerate(names):
            over = heatmap_overlay(imgs, explained.class_grid[:, c])
            cells = []
            for k, i in enumerate(idx):
                rel = _save(site, f"img/classgrid/{i}_{c}.jpg", over[k], CELL)
                cells.append({"src": rel, "alt": f"GradCAM for class {cname} on a test image "
                              f"of class {names[int(split.labels[i])]}"})
            grid_rows.append({"explained": cname, "cells": cells})
        grid = {"columns": cols, "rows": grid_rows}
    q = explained.quality
    qtable = None
    if q:
        rows_q = []
        for m, v in q.items():
            secs = explained.method_seconds.get(m)
            rows_q.append([METHODS[m][0], v["deletion"], v["insertion"], v["pointing"],
                           v["energy"], v["sanity"],
                           None if secs is None else round(100 * secs / max(v["n"], 1), 2)])
        n = next(iter(q.values()))["n"]
        qtable = Table("explanation_quality",
                       ["method", "deletion AUC ↓", "insertion AUC ↑", "pointing game ↑",
                        "energy in box ↑", "rank corr. after head randomization ↓",
                        "s per 100 images"], rows_q,
                       f"Explanation quality on {n} test images (predicted class)")
    return {"methods": [METHODS[m][0] for m in methods], "rows": rows, "grid": grid,
            "quality_table": qtable, "quality": q}


def _grid_png(site, rel: str, stack: np.ndarray, side: int, cols: int) -> str:
    """Scale each item of ``stack`` (N, h, w[, C]) to uint8, make it RGB, enlarge it to at
    least ``side`` pixels, arrange the items ``cols`` to a row, and save the grid as PNG."""
    tiles = _normalize(stack)
    if tiles.ndim == 3:
        tiles = tiles[..., None]
    if tiles.shape[-1] == 1:
        tiles = np.repeat(tiles, 3, axis=-1)
    tiles = np.stack([_upscale(t, side) for t in tiles])
    return _save(site, rel, tile_grid(tiles, cols=min(cols, len(tiles))), fmt="PNG")


def _upscale(a: np.ndarray, side: int) -> np.ndarray:
    f = max(1, int(np.ceil(side / a.shape[0])))
    return np.repeat(np.repeat(a, f, axis=0), f, axis=1)


def layers_context(site, split, names, explained, written_tile) -> dict | None:
    """Write the Layers page images and return its context (None without conv layers)."""
    L = explained.layers
    if not L:
        return None
    lut = colormap_lut("viridis")
    fmaps = []
    for p, info in L["feature_maps"].items():
        maps = np.moveaxis(info["maps"], -1, 0)  # (C, h, w)
        tiles = np.stack([_upscale(t, 48) for t in lut[_normalize(maps)]])
        rel = _save(site, f"img/layers/fmap_{len(fmaps)}.png",
                    tile_grid(tiles, cols=min(8, len(tiles))), fmt="PNG")
        fmaps.append({"layer": p, "src": rel, "shown": len(info["channels"]),
                      "total": info["total"], "shape": f"{maps.shape[1]}×{maps.shape[2]}",
                      "alt": f"Feature maps of layer {p}: {len(info['channels'])} most active "
                             f"of {info['total']} channels"})
    filters = []
    for p, k in L["filters"].items():
        kk = np.moveaxis(k, -1, 0)  # (F, kh, kw, in)
        if kk.shape[-1] == 3:  # an RGB input layer: one colour tile per filter
            rel = _grid_png(site, f"img/layers/filters_{len(filters)}.png", kk, 48, 16)
            shown, how = len(kk), "as RGB tiles"
        else:  # deeper: rows = filters, columns = input channels, one grey tile each
            f, c = min(8, kk.shape[0]), min(16, kk.shape[-1])
            per_channel = np.moveaxis(kk[:f, ..., :c], -1, 1).reshape(f * c, *kk.shape[1:3])
            rel = _grid_png(site, f"img/layers/filters_{len(filters)}.png", per_channel, 36, c)
            shown, how = f, f"per input channel (rows: filters 0-{f - 1}, columns: input " \
                            f"channels 0-{c - 1})"
        filters.append({"layer": p, "src": rel, "count": shown, "total": len(kk),
                        "size": f"{k.shape[0]}×{k.shape[1]}", "how": how,
                        "alt": f"Learned {k.shape[0]}x{k.shape[1]} filters of layer {p} {how}"})
    patterns = []
    for p, pats in L["patterns"].items():
        rel = _grid_png(site, f"img/layers/patterns_{len(patterns)}.png", pats, 80, 8)
        patterns.append({"layer": p, "src": rel, "count": len(pats),
                         "alt": f"Filter patterns of layer {p}: inputs maximizing filters "
                                f"0 to {len(pats) - 1}"})
    rf = None
    if L["rf"]:
        units = []
        for u in L["rf"]["units"]:
            img = Image.fromarray(to_rgb(split.images[u["index"]:u["index"] + 1])[0])
            scale = max(1, int(np.ceil(128 / img.width)))
            img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
            y0, x0, y1, x1 = u["box"]
            draw = ImageDraw.Draw(img)
            for off, colour in ((1, (0, 0, 0)), (0, (255, 230, 0))):
                draw.rectangle([x0 * scale - off, y0 * scale - off,
                                (x1 + 1) * scale - 1 + off, (y1 + 1) * scale - 1 + off],
                               outline=colour, width=2)
            rel = f"img/layers/rf_{u['channel']}.jpg"
            img.save(site.path(rel), format="JPEG", quality=88)
            true = names[int(split.labels[u["index"]])]
            units.append({**u, "src": rel, "true": true,
                          "alt": f"Receptive field of channel {u['channel']} unit ({u['i']}, "
                                 f"{u['j']}) on the test image of class {true} that excites it "
                                 f"most"})
        rf = {**L["rf"], "units": units}
    dreams = None
    if L["dreams"]:
        d = L["dreams"]
        lo, hi = d["value_range"]
        pics = np.clip((d["images"] - lo) / (hi - lo) * 255, 0, 255).round().astype(np.uint8)
        pics = to_rgb(pics)
        items = []
        for k, i in enumerate(d["indices"]):
            rel = _save(site, f"img/dream/{i}.jpg", pics[k], 192)
            items.append({"original": written_tile(i), "src": rel,
                          "alt": f"Deep dream of a test image of class "
                                 f"{names[int(split.labels[i])]}"})
        dreams = {"layers": d["layers"], "pictures": items}
    return {"fmaps": fmaps, "filters": filters, "patterns": patterns, "rf": rf,
            "dreams": dreams, "image": L["image"]}
