"""The explorer: a 2-D map of the test set (and a sample of the training set) from the model's
penultimate-layer features, for ``explore.html``, and the same points as TensorBoard
projector files.

The map is PCA to :data:`PCA_COMPONENTS` components, then scikit-learn's Barnes-Hut t-SNE
(seeded, PCA initialisation, perplexity :data:`PERPLEXITY`, :data:`ITERATIONS` iterations).
At most :data:`MAX_POINTS` points are mapped: every test image up to that many (a seeded
random sample above it, stated), then training images, a seeded random sample of as many as
there are test points on the map, within the same total. Everything here is numpy,
scikit-learn and Pillow (no TensorFlow); file contents are made by jobs on
:class:`~reportgen.report.assets.Assets`, run when the site is written.
"""

from __future__ import annotations

import base64
import io
import json
import math
import time
from dataclasses import dataclass, field

import numpy as np

from reportgen.evaluate import predict_labels
from reportgen.figures.overlay import colormap_lut, resize_map, to_rgb
from reportgen.report.assets import Assets
from reportgen.text import printable

#: Most points on the map (test first, then training images); above it a stated sample.
MAX_POINTS = 5000
#: Components PCA keeps before t-SNE (fewer when there are fewer images or features).
PCA_COMPONENTS = 50
#: t-SNE perplexity (at most a third of the points less one, for tiny sets).
PERPLEXITY = 30.0
#: t-SNE iterations (scikit-learn's default is 1,000; 500 gave the same neighbourhoods,
#: trustworthiness 0.97 either way, in half the time on 5,000 clustered 96-d points).
ITERATIONS = 500
#: The sprite atlas aims at this side in pixels (thumbnails of 16 to 64 px).
SPRITE_TARGET = 2048
#: Map grids larger than this side are resized to it for the page's data.
MAP_SIDE = 16
#: Where the explorer's files go.
SPRITE = "projector/sprite.jpg"
POINTS_JS = "explore/points.js"

def map_sizes(n_test: int, n_train: int, limit: int = MAX_POINTS) -> dict[str, int]:
    """How many images of each split the map shows: every test image up to ``limit``, then
    as many training images as test points, within ``limit`` in all."""
    test = min(n_test, limit)
    return {"test": test, "train": min(n_train, test, limit - test)}


def chosen(n: int, k: int, seed: int) -> np.ndarray:
    """Indices of ``k`` of ``n`` images, ascending: all of them when ``k >= n``, else a
    seeded random sample."""
    if k >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, k, replace=False))


@dataclass
class Colouring:
    """An extra colouring and filter of the map (a data-issue flag, a strategy cluster):
    ``label`` as the page shows it, ``values`` {split: {image index: category name}};
    images without a value are "none"."""

    label: str
    values: dict[str, dict[int, str]] = field(default_factory=dict)


@dataclass
class MapPoints:
    """The points of the map: split and image index of each, in map order, and their 2-D
    positions (float32 (n, 2) in [0, 1], aspect kept), the PCA-reduced features (float32
    (n, k)), and how the layout was made (plain data for metrics.json)."""

    split: list[str]
    index: np.ndarray
    xy: np.ndarray
    reduced: np.ndarray
    layout: dict


def _fit_unit(xy: np.ndarray) -> np.ndarray:
    """``xy`` (n, 2) moved and scaled into [0.02, 0.98] on both axes, aspect kept."""
    xy = np.asarray(xy, np.float64)
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    span = float((hi - lo).max())
    if not np.isfinite(span) or span <= 0:
        return np.full(xy.shape, 0.5, np.float32)
    out = (xy - (lo + hi) / 2) / span * 0.96 + 0.5
    return out.astype(np.float32)


def layout_2d(features: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """The 2-D map of ``features`` (n, d): (positions float32 (n, 2) in [0, 1], the PCA
    reduction float32 (n, k), how it was made). Fewer than 5 points, or features without
    variance, are placed by PCA alone."""
    from sklearn.decomposition import PCA

    x = np.asarray(features, np.float64)
    n, d = x.shape
    k = min(PCA_COMPONENTS, n, d)
    info: dict = {"method": "PCA", "pca_components": k, "seed": seed, "points": n}
    if n == 0 or k == 0:
        return np.zeros((n, 2), np.float32), np.zeros((n, 0), np.float32), info
    if float(x.std(axis=0).max()) == 0.0:
        return np.full((n, 2), 0.5, np.float32), np.zeros((n, 1), np.float32), \
            {**info, "pca_components": 0, "method": "none (the features do not vary)"}
    reduced = PCA(k, random_state=seed).fit_transform(x)
    if n < 5:
        xy = np.pad(reduced[:, :2], ((0, 0), (0, max(0, 2 - k))))
        return _fit_unit(xy), reduced.astype(np.float32), info
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits  # installed with scikit-learn

    perplexity = min(PERPLEXITY, (n - 1) / 3)
    # One thread: scikit-learn's Barnes-Hut t-SNE on two OpenMP threads took 2x the CPU time
    # (27 s against 14 s for 5,000 points) and, on a busy 2-core machine, 10x the wall time
    # (threads spinning at each iteration's barrier), for the same map.
    with threadpool_limits(1):
        xy = TSNE(2, perplexity=perplexity, init="pca", learning_rate="auto",
                  max_iter=ITERATIONS, random_state=seed, n_jobs=1).fit_transform(reduced)
    info.update(method="t-SNE", perplexity=round(perplexity, 2), iterations=ITERATIONS)
    return _fit_unit(xy), reduced.astype(np.float32), info


def map_points(features, seed: int) -> MapPoints | None:
    """The map of the test split and a sample of the training split from ``features``
    (:class:`~reportgen.explain.penultimate.Features`; None without them)."""
    if features is None or features.missing or features.of("test") is None:
        return None
    counts = {s: len(features.arrays[s]) for s in ("test", "train") if s in features.arrays}
    want = map_sizes(counts.get("test", 0), counts.get("train", 0))
    split, index, rows = [], [], []
    for s, k in want.items():
        idx = chosen(counts.get(s, 0), k, seed)
        split += [s] * len(idx)
        index.append(idx)
        rows.append(features.arrays[s][idx] if len(idx) else np.zeros((0, features.dims)))
    t0 = time.perf_counter()
    xy, reduced, info = layout_2d(np.concatenate(rows), seed)
    info["seconds"] = round(time.perf_counter() - t0, 2)
    info["splits"] = {s: {"shown": k, "total": counts.get(s, 0)} for s, k in want.items()}
    return MapPoints(split, np.concatenate(index).astype(np.int64), xy, reduced, info)


def sprite_side(n: int) -> int:
    """Thumbnail side of the sprite of ``n`` images: :data:`SPRITE_TARGET` over the columns,
    within 16 to 64 px."""
    cols = max(1, math.ceil(math.sqrt(max(n, 1))))
    return int(min(64, max(16, SPRITE_TARGET // cols)))


def sprite_atlas(images, n: int, side: int) -> tuple[np.ndarray, int]:
    """One atlas of ``n`` thumbnails: the k-th of ``images`` (an iterable of uint8 (H, W, C),
    C 1 or 3) at row ``k // cols``, column ``k % cols`` of a grid of ``cols = ceil(sqrt(n))``
    columns, each resized to ``side`` x ``side`` px (bilinear; aspect not kept, as the
    projector expects). Returns (atlas uint8 (rows * side, cols * side, 3), cols); unused
    cells are black."""
    from PIL import Image

    cols = max(1, math.ceil(math.sqrt(max(n, 1))))
    rows = max(1, math.ceil(n / cols))
    atlas = np.zeros((rows * side, cols * side, 3), np.uint8)
    for k, img in enumerate(images):
        r, c = divmod(k, cols)
        small = Image.fromarray(to_rgb(np.asarray(img)[None])[0]).resize(
            (side, side), Image.Resampling.BILINEAR)
        atlas[r * side:(r + 1) * side, c * side:(c + 1) * side] = np.asarray(small)
    return atlas, cols


def _map_images(ds, mp: MapPoints):
    """The images of the map's points in map order, read 256 at a time."""
    for start in range(0, len(mp.index), 256):
        for s, i in zip(mp.split[start:start + 256], mp.index[start:start + 256], strict=True):
            yield ds.splits[s].images[int(i)]


def _sprite_job(ds, mp: MapPoints, side: int):
    """The job writing the sprite of the map's points."""
    def write(path):
        from PIL import Image

        atlas, _ = sprite_atlas(_map_images(ds, mp), len(mp.index), side)
        Image.fromarray(atlas).save(path, format="JPEG", quality=85)
    return write


def _maps_data(test_maps, rows: np.ndarray) -> dict | None:
    """The layer-resolution GradCAM maps of test images ``rows`` (map order) for the page:
    {"h", "w", "data": base64 of uint8 (k, h, w), 0-255 for 0-1, "lut": the jet colours
    (256 x 3) of the site's overlays}; grids over :data:`MAP_SIDE` are resized to it.
    None without maps or rows."""
    if test_maps is None or not len(rows):
        return None
    h, w = test_maps.shape[1:3]
    size = (min(w, MAP_SIDE), min(h, MAP_SIDE))
    small = np.stack([resize_map(np.asarray(test_maps[int(i)], np.float32), size)
                      for i in rows])
    q = np.clip(np.round(small * 255), 0, 255).astype(np.uint8)
    return {"h": int(size[1]), "w": int(size[0]),
            "data": base64.b64encode(q.tobytes()).decode("ascii"),
            "lut": colormap_lut("jet").tolist()}


def _site_file(assets: Assets, rel: str) -> str:
    """``rel`` when the site has that file (queued by a gallery), else ""."""
    return rel if rel in assets else ""


def _point_columns(assets: Assets, inputs, mp: MapPoints) -> dict:
    """Columns of the map's points: position, split, index, file, true and predicted class
    (-1: no label), confidence, and the site's files of the image (full size, GradCAM of the
    predicted and of the true class; "" where the site has none)."""
    ds = inputs.ds
    cols: dict[str, list] = {k: [] for k in ("x", "y", "s", "i", "f", "t", "p", "c", "img",
                                             "cam", "camt")}
    pred = {s: predict_labels(p, inputs.explained.threshold) for s, p in inputs.probs.items()}
    for (x, y), s, i in zip(mp.xy, mp.split, mp.index, strict=True):
        split, probs, i = ds.splits[s], inputs.probs[s], int(i)
        test = s == "test"
        cols["x"].append(round(float(x), 4))
        cols["y"].append(round(float(y), 4))
        cols["s"].append(SPLITS.index(s))
        cols["i"].append(i)
        cols["f"].append(printable(split.paths[i]))
        cols["t"].append(int(split.labels[i]) if split.labeled else -1)
        cols["p"].append(int(pred[s][i]))
        cols["c"].append(round(float(probs[i][pred[s][i]]), 4))
        cols["img"].append(_site_file(assets, f"img/test/full/{i}.jpg") if test else "")
        cols["cam"].append(_site_file(assets, f"img/gradcam/full/{i}.jpg") if test else "")
        cols["camt"].append(_site_file(assets, f"img/gradcam/true/full/{i}.jpg")
                            if test else "")
    return cols


#: The splits of the map, as the page's data numbers them.
SPLITS = ("test", "train")


def _colourings(mp: MapPoints, extra: dict[str, Colouring] | None) -> dict:
    """{key: {"label", "names", "codes"}} of the extra colourings ("none" first)."""
    out = {}
    for key, col in (extra or {}).items():
        values = [col.values.get(s, {}).get(int(i), "none") for s, i in
                  zip(mp.split, mp.index, strict=True)]
        names = ["none"] + sorted(set(values) - {"none"})
        out[key] = {"label": col.label, "names": names,
                    "codes": [names.index(v) for v in values]}
    return out


def page_data(assets: Assets, inputs, mp: MapPoints, sprite: tuple[int, int],
              classes: list[dict], extra: dict[str, Colouring] | None = None) -> dict:
    """Everything ``explore.html``'s script reads (plain data, written to
    :data:`POINTS_JS`). ``sprite``: (thumbnail side, columns) of the atlas; ``classes``: the
    classes with a page ({"index", "href"}, as the navigation lists them)."""
    names = inputs.ds.class_names
    pages = {c["index"]: c["href"] for c in classes}
    test_rows = mp.index[[k for k, s in enumerate(mp.split) if s == "test"]]
    points = _point_columns(assets, inputs, mp)
    maps = _maps_data(inputs.explained.test_maps, test_rows)
    row, m = 0, []
    for s in mp.split:  # each test point's row in the maps
        m.append(row if s == "test" and maps is not None else -1)
        row += s == "test"
    return {"classes": [printable(n) for n in names],
            "pages": [pages.get(c, "") for c in range(len(names))],
            "labeled": bool(inputs.ds.labeled), "splits": list(SPLITS),
            "sprite": {"src": SPRITE, "side": sprite[0], "cols": sprite[1]},
            "points": {**points, "m": m}, "maps": maps,
            "extra": _colourings(mp, extra)}


def points_js(data: dict) -> str:
    """``data`` as a script assigning ``window.REPORTGEN_EXPLORER`` (a ``fetch()`` of a local
    JSON file is blocked under file://); ``<`` is escaped so no text closes a script tag."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")
    return f"window.REPORTGEN_EXPLORER = {text};\n"


def _tsv_field(value) -> str:
    return " ".join(printable(str(value)).split("\t")).replace("\n", " ").replace("\r", " ")


def metadata_tsv(data: dict) -> str:
    """The projector's metadata: a header, then one row per point in map order: file,
    split, true class ("" unlabeled), predicted class, right ("yes"/"no"/""), confidence."""
    p, names = data["points"], data["classes"]
    lines = ["file\tsplit\ttrue\tpredicted\tright\tconfidence"]
    for k in range(len(p["x"])):
        t = p["t"][k]
        right = "" if t < 0 else ("yes" if t == p["p"][k] else "no")
        lines.append("\t".join(_tsv_field(v) for v in (
            p["f"][k], SPLITS[p["s"][k]], names[t] if t >= 0 else "", names[p["p"][k]],
            right, f"{p['c'][k]:.4f}")))
    return "\n".join(lines) + "\n"


def tensors_tsv(reduced: np.ndarray) -> str:
    """The projector's tensors: one row per point, its PCA components, tab-separated."""
    out = io.StringIO()
    np.savetxt(out, np.asarray(reduced, np.float32), fmt="%.6g", delimiter="\t")
    return out.getvalue()


def projector_config(n: int, dims: int, side: int, name: str) -> str:
    """``projector_config.pbtxt`` for TensorBoard's projector: the tensors, metadata and
    sprite beside it (relative paths)."""
    return (f'embeddings {{\n  tensor_name: "{name}"\n  tensor_path: "tensors.tsv"\n'
            f'  metadata_path: "metadata.tsv"\n  tensor_shape: {n}\n  tensor_shape: {dims}\n'
            f'  sprite {{\n    image_path: "sprite.jpg"\n    single_image_dim: {side}\n'
            f'    single_image_dim: {side}\n  }}\n}}\n')


def shown_sentence(splits: dict) -> str:
    """"It shows 10 of the 10 test images, 10 of the 40 train images (a seeded random
    sample)." from the layout's ``splits`` ({split: {"shown", "total"}})."""
    parts = [f"{c['shown']} of the {c['total']} {s} images"
             + (" (a seeded random sample)" if c["shown"] < c["total"] else "")
             for s, c in splits.items() if c["total"]]
    return f"It shows {', '.join(parts)}." if parts else ""


def thumb_size(n: int) -> int:
    """The thumbnails' first side on the map, in CSS pixels: about 600 / sqrt(n), even,
    within 8 to 40."""
    return int(max(8, min(40, 2 * round(300 / math.sqrt(max(n, 1))))))


def _present(data: dict) -> dict:
    """{"true", "pred"}: the classes among the points ({"index", "name"}), for the filters."""
    names = data["classes"]
    return {k: [{"index": c, "name": names[c]} for c in sorted(set(data["points"][col]))
                if c >= 0] for k, col in (("true", "t"), ("pred", "p"))}


#: The projector's files, in the site.
PROJECTOR = {"config": "projector/projector_config.pbtxt", "tensors": "projector/tensors.tsv",
             "metadata": "projector/metadata.tsv", "sprite": SPRITE}


def explorer_page(assets: Assets, inputs, common: dict, mp: MapPoints | None,
                  extra: dict[str, Colouring] | None = None, why: str | None = None
                  ) -> tuple[dict, dict]:
    """The context of ``explore.html`` (its data, sprite and projector files queued on
    ``assets``) and metrics.json's ``explorer``: {points, layout, features_layer, ...}.
    ``mp``: :func:`map_points` (None: no map, and the page says ``why``, by default why
    there are no features). ``extra``: colourings and filters besides the labels (a
    data-issue flag, a strategy cluster), present on the page only when given."""
    feats = inputs.features
    base = {**common, "page_title": "Explorer", "current": "explore.html"}
    if mp is None:
        why = why or (feats.missing if feats is not None and feats.missing else
               "the model's penultimate features were not collected" if feats is None else
               "there are no test images")
        return ({**base, "available": False, "why": why},
                {"points": 0, "layout": None, "features_layer": None, "missing": why})
    n = len(mp.index)
    side = sprite_side(n)
    data = page_data(assets, inputs, mp, (side, math.ceil(math.sqrt(max(n, 1)))),
                     common["classes"], extra)
    assets.text(POINTS_JS, points_js(data))
    assets.file(SPRITE, _sprite_job(inputs.ds, mp, side))
    assets.text(PROJECTOR["tensors"], tensors_tsv(mp.reduced))
    assets.text(PROJECTOR["metadata"], metadata_tsv(data))
    assets.text(PROJECTOR["config"], projector_config(
        n, mp.reduced.shape[1], side, f"penultimate features, PCA {mp.reduced.shape[1]}"))
    info = mp.layout
    return ({**base, "available": True, "points": n, "layout": info,
             "splits": info["splits"], "features": feats.description,
             "features_layer": feats.layer, "data_js": POINTS_JS, "projector": PROJECTOR,
             "max_points": MAX_POINTS, "labeled": bool(inputs.ds.labeled),
             "present": _present(data), "thumb": thumb_size(n),
             "shown": shown_sentence(info["splits"]),
             "extra": {k: c["label"] for k, c in data["extra"].items()},
             "extra_names": {k: c["names"] for k, c in data["extra"].items()}},
            {"points": n, "layout": info, "features_layer": feats.layer,
             "features": feats.description, "dims": feats.dims,
             "files": {"page": "explore.html", "data": POINTS_JS, **PROJECTOR}})
