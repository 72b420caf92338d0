"""Class pages: gallery sections of test images with their GradCAM tiles (contexts and image
jobs; nothing is written here)."""

from __future__ import annotations

import re

import numpy as np

from reportgen.evaluate import misclassified, predict_labels
from reportgen.explain.results import SECTIONS, select_galleries
from reportgen.figures.overlay import colormap_lut, heatmap_overlay, resize_map, to_rgb
from reportgen.report.assets import Assets

SECTION_TITLES = {
    "misclassified": ("Misclassified", "true {c}, predicted another class; most confident "
                      "wrong prediction first", "most confident"),
    "confident_wrong": ("Wrongly predicted as {c}", "predicted {c}, but the true class is "
                        "another; most confident first", "most confident"),
    "correct": ("Correct", "true {c}, predicted {c}; least confident first", "least confident"),
}
#: The one gallery section of unlabeled photos (their labels are the predicted classes).
UNLABELED_TITLE = ("Predicted", "the photos the model assigns to {c}; least confident first",
                   "least confident")
THUMB = 128  # gallery tile side in pixels (files are at most 256 px)
PAGE_TILES = 100  # gallery tiles per class page; more continue on the next page


def full_side(split) -> int:
    """Width of the full-size gallery files (what a click opens): the image's own, within
    256-512 px."""
    return min(max(256, split.images.shape[2]), 512)


def slug(index: int, name: str) -> str:
    """Return a file-safe, unique page name for class ``index`` called ``name``."""
    clean = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")[:40] or "class"
    return f"class-{index:02d}-{clean}"


def test_tile(assets: Assets, split, i: int) -> str:
    """Queue ``img/test/<i>.jpg``, the plain tile of test image ``i``; return its path."""
    return assets.image(f"img/test/{i}.jpg", lambda: to_rgb(split.images[i:i + 1])[0], THUMB)


def colour_scale(assets: Assets) -> dict:
    """Queue ``img/scale.png``, the colour scale of every map (jet, 0 to 1); return its page
    data."""
    def make():
        return np.repeat(colormap_lut("jet")[None, :, :], 12, axis=0)
    return {"src": assets.image("img/scale.png", make, fmt="PNG"),
            "alt": "Colour scale of the maps: dark blue is 0, red is 1"}


def gradcam_tiles(assets: Assets, split, i: int, cam: np.ndarray,
                  kind: str = "") -> tuple[str, str]:
    """Queue the GradCAM overlay ``cam`` (any resolution; resized to the image) of test image
    ``i`` as a thumbnail and a full-size file, with its object box drawn where it has one;
    return both paths. ``kind``: "" for the predicted class's map, "true" for the true
    class's."""
    def overlay():  # blended for each of the two files: cheap, and nothing kept in memory
        img = to_rgb(split.images[i:i + 1])
        m = resize_map(cam, (img.shape[2], img.shape[1]))
        return with_box(heatmap_overlay(img, np.clip(m, 0, 1)[None])[0], split.boxes[i])

    folder = f"img/gradcam/{kind}/" if kind else "img/gradcam/"
    return (assets.image(f"{folder}{i}.jpg", overlay, THUMB),
            assets.image(f"{folder}full/{i}.jpg", overlay, full_side(split), quality=90))


def true_name(split, names: list[str], i: int) -> str | None:
    """The true class name of test image ``i``; None for unlabeled photos."""
    return names[int(split.labels[i])] if split.labeled else None


def predicted(probs: np.ndarray, i: int, threshold: float | None = None) -> tuple[int, float]:
    """(class, probability) predicted for image ``i`` of ``probs`` ((N, K) float):
    :func:`reportgen.evaluate.predict_labels`'s class (a binary model's at ``threshold``)."""
    c = int(predict_labels(probs[i:i + 1], threshold)[0])
    return c, float(probs[i][c])


def describe(split, probs: np.ndarray, names: list[str], i: int,
             threshold: float | None = None) -> str:
    """``true A, predicted B, 0.93`` (``predicted B, 0.93`` for unlabeled photos); the
    predicted class as :func:`predicted` (at ``threshold``)."""
    true = true_name(split, names, i)
    c, p = predicted(probs, i, threshold)
    pred = f"predicted {names[c]}, {p:.2f}"
    return pred if true is None else f"true {true}, {pred}"


def with_box(image: np.ndarray, box, width: int = 1) -> np.ndarray:
    """``image`` (H, W, 3) uint8 with ``box`` [x0, y0, x1, y1] (pixel edges; NaN: none) drawn
    as a yellow rectangle ``width`` pixels wide on a dark outline, so it shows on any map."""
    if not np.isfinite(np.asarray(box, np.float64)).all():
        return image
    from PIL import Image, ImageDraw

    img = Image.fromarray(image)
    draw = ImageDraw.Draw(img)
    x0, y0, x1, y1 = (float(v) for v in box)
    for off, colour in ((1, (0, 0, 0)), (0, (255, 230, 0))):
        draw.rectangle([x0 - off, y0 - off, x1 - 1 + off, y1 - 1 + off], outline=colour,
                       width=width)
    return np.asarray(img)


def tile(assets: Assets, split, probs: np.ndarray, names: list[str], i: int, explained
         ) -> dict:
    """The context of one gallery tile (its image jobs queued on ``assets``): the image, its
    GradCAM for the predicted class (the gallery map of ``explained``, else its
    layer-resolution test map) and, for a misclassified image, for the true class; the top 3
    classes, or the top 5 for unlabeled photos."""
    maps, true_maps = explained.maps.get("gradcam", {}), explained.true_maps
    small_maps = explained.test_maps
    true, (pred, conf) = true_name(split, names, i), predicted(probs, i, explained.threshold)
    order = np.argsort(-probs[i], kind="stable")[:min(3 if split.labeled else 5, len(names))]
    desc = describe(split, probs, names, i, explained.threshold)
    image = test_tile(assets, split, i)
    image_full = assets.image(f"img/test/full/{i}.jpg", lambda: to_rgb(split.images[i:i + 1])[0],
                              full_side(split), quality=90)
    cam = maps.get(i)
    if cam is None and small_maps is not None:
        cam = small_maps[i]
    views = [{"label": "image", "src": image, "full": image_full,
              "alt": f"Test image {split.paths[i]}, {desc}"}]
    if cam is not None:
        thumb, full = gradcam_tiles(assets, split, i, cam)
        views.append({"label": f"map: {names[pred]}", "src": thumb, "full": full,
                      "alt": f"GradCAM for the predicted class {names[pred]}, {desc}"})
    if true_maps and i in true_maps and true is not None and true != names[pred]:
        thumb, full = gradcam_tiles(assets, split, i, true_maps[i], "true")
        views.append({"label": f"map: {true}", "src": thumb, "full": full,
                      "alt": f"GradCAM for the true class {true}, {desc}"})
    main = views[min(1, len(views) - 1)]  # the predicted class's map (the image without one)
    return {
        "index": i, "path": split.paths[i], "true": true, "pred": names[pred],
        "correct": true == names[pred], "confidence": conf,
        "topk": [(names[int(k)], float(probs[i][k])) for k in order],
        "views": views, "size": THUMB,
        "thumb": main["src"], "full": main["full"], "alt": main["alt"],
        "caption": (f"pred {names[pred]} {100 * conf:.1f} %" if true is None else
                    f"{'right' if true == names[pred] else 'wrong'}: true {true}, "
                    f"pred {names[pred]} {100 * conf:.1f} %"),
    }


def few_hidden(shown: int) -> int:
    """How many images past a full gallery of ``shown`` are shown too rather than hidden
    (a quarter of the gallery, at least 4): "26; the 24 least confident shown" hides none."""
    return max(4, shown // 4)


def class_pages(assets: Assets, split, probs: np.ndarray, names: list[str], explained,
                per_class: dict) -> list[dict]:
    """One context per class of ``per_class`` (every class; for unlabeled photos, every
    predicted class): its metrics (``per_class[name]``) and its gallery sections (for
    unlabeled photos, one: the images predicted as the class)."""
    pages = []
    everyone: list = []  # every image of every section, in gallery order (when needed)
    for c, name in enumerate(names):
        if name not in per_class:
            continue
        sections = []
        for key in SECTIONS if split.labeled else ("correct",):
            title, desc, which = SECTION_TITLES[key] if split.labeled else UNLABELED_TITLE
            shown = explained.galleries[c][key]
            count = explained.gallery_counts.get(c, {}).get(key, len(shown))
            if len(shown) < count <= len(shown) + few_hidden(len(shown)):
                if not everyone:
                    everyone.append(select_galleries(split.labels, probs, len(names),
                                                     len(split), explained.threshold))
                shown = everyone[0][c][key]  # a few more: all of them, never hidden
            sections.append({"key": key, "title": title.format(c=name),
                             "description": desc.format(c=name), "count": count,
                             "heading": (f"{count}" if count <= len(shown) else
                                         f"{count}; the {len(shown)} {which} shown"),
                             "rest": max(0, count - len(shown)),
                             "tiles": [tile(assets, split, probs, names, i, explained)
                                       for i in shown]})
            sections[-1]["wide"] = any(len(t["views"]) > 2 for t in sections[-1]["tiles"])
        pages.append({"index": c, "name": name, "href": f"{slug(c, name)}.html",
                      "metrics": per_class[name], "sections": sections})
    return pages


def errors_page(assets: Assets, split, probs: np.ndarray, names: list[str], explained
                ) -> dict | None:
    """The site-wide errors page: every misclassified test image, most confident first, with
    its maps for the predicted and the true class, and the most frequent (true, predicted)
    pairs. None for unlabeled photos."""
    if not split.labeled:
        return None
    pred = predict_labels(probs, explained.threshold)
    wrong = misclassified(split.labels, probs, explained.threshold)
    wrong = wrong[np.argsort(-probs[wrong, pred[wrong]], kind="stable")]
    tiles = [tile(assets, split, probs, names, int(i), explained) for i in wrong]
    pairs: dict[tuple[int, int], int] = {}
    for i in wrong:
        key = (int(split.labels[i]), int(pred[i]))
        pairs[key] = pairs.get(key, 0) + 1
    top = sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
    n = int((split.labels >= 0).sum())
    section = {"key": "errors", "title": "Misclassified test images",
               "description": "every misclassified test image, most confident wrong "
                              "prediction first", "count": len(wrong),
               "heading": f"{len(wrong)} of {n}", "tiles": tiles,
               "wide": any(len(t["views"]) > 2 for t in tiles)}
    return {"index": -1, "name": "Errors", "href": "errors.html", "n": n,
            "errors": len(wrong), "sections": [section],
            "pairs": [{"true": names[t], "pred": names[q], "count": c,
                       "true_href": f"{slug(t, names[t])}.html"} for (t, q), c in top]}


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


def class_page_files(page: dict, common: dict, layer: str, scale: dict | None = None,
                     has_boxes: bool = False) -> list[tuple[str, dict]]:
    """The files of one class page, split into gallery pages: [(file name, context)]."""
    parts = paginate(page["sections"])
    hrefs = [page["href"]] + [page["href"].replace(".html", f"-p{k}.html")
                              for k in range(2, len(parts) + 1)]
    out = []
    for k, part in enumerate(parts):
        pager = ([{"n": n + 1, "href": h, "current": n == k} for n, h in enumerate(hrefs)]
                 if len(parts) > 1 else [])
        out.append((hrefs[k], {**common, "page_title": page["name"] + (f" ({k + 1})" if k else ""),
                               "current": page["href"], "page": page, "sections": part,
                               "pager": pager, "layer": layer, "scale": scale,
                               "has_boxes": has_boxes}))
    return out
