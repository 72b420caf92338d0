"""The Strategies page and the class pages' strategy sections: contexts as plain data (image
jobs queued on the assets), the flag sentences and the metrics.json entries."""

from __future__ import annotations

from typing import Callable

import numpy as np

from reportgen.explain.dataset import concepts as cn
from reportgen.explain.dataset import strategies as st
from reportgen.figures.overlay import to_rgb
from reportgen.report.assets import Assets
from reportgen.report.explorer import Colouring
from reportgen.report.gallery import THUMB, describe, gradcam_tiles, slug, test_tile
from reportgen.text import printable

#: How the strategies and concepts are computed, for the pages and metrics.json.
METHOD = {
    "map": "GradCAM of the true class (predicted for unlabeled photos) at the explained layer",
    "grid": st.SIDE, "normalised": "resampled bilinearly to the grid, scaled to sum to one",
    "neighbours": st.NEIGHBOURS, "min_images": st.MIN_IMAGES,
    "max_strategies": st.MAX_STRATEGIES, "border_band": st.BORDER,
    "border_flag": st.BORDER_FLAG, "box_ratio": st.BOX_RATIO, "weak_ratio": st.WEAK_RATIO,
    "relative": st.RELATIVE, "seed": 0,
    "concepts": cn.CONCEPTS, "concept_images": cn.IMAGES,
}


def flag_sentence(s: st.Strategy, name: str, size: int) -> str:
    """'17 of 60 "cat" images are decided by the lower-right corner: ...' for a flagged
    strategy ``s`` of class ``name`` with ``size`` clustered images."""
    head = (f"{len(s.members)} of {size} '{printable(name)}' images are decided by "
            f"{s.where}")
    if s.box_outside_share is not None and s.box_area is not None:
        return (f"{head}: {100 * s.box_outside_share:.0f} % of their GradCAM energy lies "
                f"outside the object box, which covers {100 * s.box_area:.0f} % of the image.")
    return (f"{head}: {100 * s.border_share:.0f} % of their GradCAM energy lies in the "
            f"border band (the outer {100 * st.BORDER:.1f} % of each side; a uniform map "
            f"puts {100 * st.border_mask().mean():.0f} % there). Without object boxes this "
            "says where the evidence is, not whether it is the object.")


def _strategy(assets: Assets, split, probs, names, cs: st.ClassStrategies, k: int) -> dict:
    """The page data of strategy ``k`` of ``cs``."""
    s = cs.strategies[k]
    thumb, full = gradcam_tiles(assets, split, s.representative, s.mean_map,
                                f"strategy/{cs.cls}-{k}")
    tiles = [{"src": test_tile(assets, split, i), "alt": describe(split, probs, names, i),
              "right": right} for right, group in ((True, s.right), (False, s.wrong))
             for i in group]
    return {"n": k + 1, "size": len(s.members), "accuracy": s.accuracy, "ci": s.ci,
            "border": s.border_share, "outside": s.box_outside_share, "box_area": s.box_area,
            "flagged": s.flagged, "where": s.where, "mean_src": thumb, "mean_full": full,
            "mean_alt": f"Mean normalised GradCAM of strategy {k + 1} over test image "
                        f"{printable(split.paths[s.representative])}",
            "exemplars": tiles,
            "sentence": flag_sentence(s, names[cs.cls], cs.size) if s.flagged else ""}


def _crop(split, i: int, box) -> Callable[[], np.ndarray]:
    """A job making the RGB crop ``box`` (y0, x0, y1, x1 inclusive) of test image ``i``."""
    y0, x0, y1, x1 = box
    return lambda: to_rgb(split.images[i:i + 1, y0:y1 + 1, x0:x1 + 1])[0]


def _concepts(assets: Assets, split, cc: cn.ClassConcepts) -> dict:
    """The page data of a class's concepts."""
    out = []
    for j, c in enumerate(cc.concepts):
        patches = [{"src": assets.image(f"img/concepts/{cc.cls}-{j}-{n}.jpg",
                                        _crop(split, i, b), 64),
                    "alt": f"Patch of {printable(split.paths[i])} (rows {b[0]}-{b[2]}, "
                           f"columns {b[1]}-{b[3]})"}
                   for n, (i, b, _) in enumerate(c.patches)]
        heat = None
        if c.heat is not None and c.patches:
            heat = gradcam_tiles(assets, split, c.patches[0][0], c.heat,
                                 f"concept/{cc.cls}-{j}")[0]
        out.append({"n": j + 1, "contribution": c.contribution, "share": c.share,
                    "patches": patches, "heat": heat, "images": len(c.files)})
    return {"concepts": out, "exact": cc.exact, "logit": cc.logit, "residual": cc.residual,
            "clipped": cc.clipped, "images": len(cc.images), "note": cc.note}


def strategies_context(assets: Assets, split, probs: np.ndarray, names: list[str],
                       explained) -> dict:
    """{classes: [per class: index, name, href, size, note, eigenvalues, strategies,
    concepts]}, by_class ({index: that entry}), flags (every flag sentence), method."""
    concepts = {cc.cls: cc for cc in explained.concepts}
    classes = []
    for cs in explained.strategies:
        classes.append({
            "index": cs.cls, "name": names[cs.cls], "href": f"{slug(cs.cls, names[cs.cls])}.html",
            "size": cs.size, "note": cs.note, "eigenvalues": cs.eigenvalues,
            "strategies": [_strategy(assets, split, probs, names, cs, k)
                           for k in range(len(cs.strategies))],
            "concepts": (_concepts(assets, split, concepts[cs.cls])
                         if cs.cls in concepts else None)})
    flags = [s["sentence"] for c in classes for s in c["strategies"] if s["flagged"]]
    return {"classes": classes, "by_class": {c["index"]: c for c in classes}, "flags": flags,
            "method": METHOD, "labeled": bool(split.labeled), "thumb": THUMB,
            "has_boxes": bool(np.isfinite(split.boxes).all(axis=1).any())}


def strategies_metrics(explained, split, names: list[str]) -> tuple[dict, dict]:
    """metrics.json's ``strategies`` ({class name: [{size, accuracy, ci, files, border_share,
    box_outside_share, flagged, where, exemplars}]}) and ``concepts`` ({class name:
    [{contribution, exact, files}]}); ``files`` as in predictions.csv."""
    def files(idx) -> list[str]:
        return [printable(split.paths[i]) for i in idx]

    strategies = {names[cs.cls]: [
        {"size": len(s.members), "accuracy": s.accuracy,
         "ci": list(s.ci) if s.ci is not None else None, "files": files(s.members),
         "border_share": s.border_share, "box_outside_share": s.box_outside_share,
         "box_area": s.box_area, "flagged": s.flagged, "where": s.where,
         "exemplars": {"right": files(s.right), "wrong": files(s.wrong)}}
        for s in cs.strategies] for cs in explained.strategies}
    concepts = {names[cc.cls]: [
        {"contribution": c.contribution, "exact": cc.exact, "files": files(c.files),
         "patches": files([p[0] for p in c.patches])}
        for c in cc.concepts] for cc in explained.concepts}
    return strategies, concepts


def strategy_colouring(explained, names: list[str]) -> dict[str, Colouring]:
    """The explorer's colouring and filter by strategy ({} without strategies): each clustered
    test image is "<class> · strategy k", numbered as on the Strategies page, flagged ones
    marked."""
    values: dict[str, dict[int, str]] = {}
    for cs in explained.strategies or []:
        for k, s in enumerate(cs.strategies):
            label = f"{names[cs.cls]} · strategy {k + 1}" + (" (flagged)" if s.flagged else "")
            values.setdefault("test", {}).update({int(i): label for i in s.members})
    return {"strategy": Colouring("strategy (strategies.html)", values)} if values else {}
