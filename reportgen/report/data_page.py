"""The data page (``data.html``): the data audit's findings (:mod:`reportgen.audit`) as plain
data, with image tiles queued on the assets and every list also as a CSV file."""

from __future__ import annotations

import csv
import io

from reportgen.audit.issues import DataIssues
from reportgen.figures.overlay import to_rgb
from reportgen.guard import optional_part
from reportgen.report.assets import Assets
from reportgen.report.explorer import Colouring
from reportgen.report.gallery import THUMB, full_side, gradcam_tiles, predicted
from reportgen.report.inputs import ReportInputs
from reportgen.text import plural, printable

#: Tiles per list on the page; every record is in the list's CSV file.
SHOWN = 48

#: The columns of each list's CSV file (``data/<list>.csv``), as in metrics.json.
COLUMNS = {
    "label_errors": ["file", "split", "given", "suggested", "score"],
    "duplicates": ["a", "b", "split_a", "split_b", "kind", "distance", "hash_bits"],
    "outliers": ["file", "split", "score", "feature", "pixel"],
    "quality": ["file", "split", "flags"],
}

#: What each list's number means (metrics.json ``data_issues.scores``).
SCORES = {
    "label_errors": "score = 1 - the predicted probability of the given label (confident "
                    "learning's self-confidence); higher = more suspicious",
    "duplicates": "distance = cosine distance of the penultimate features (0 for exact copies); "
                  "lower = closer, so more suspicious; hash_bits = dHash bits that differ",
    "outliers": "score = the larger of two k-nearest-neighbour distance ratios to the training "
                "images (features, pixel statistics), each divided by its median over the "
                "calibration images (val); higher = more suspicious",
    "quality": "flags = the quality checks the image fails",
}


def records_csv(records: list[dict], columns: list[str]) -> str:
    """``records`` as CSV with ``columns`` (lists joined by "; ", floats to 6 digits)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for r in records:
        writer.writerow([printable("; ".join(v) if isinstance(v, list) else
                                   f"{v:.6g}" if isinstance(v, float) else str(v))
                         for v in (r[c] for c in columns)])
    return out.getvalue()


def issues_json(issues: DataIssues | None) -> dict | None:
    """metrics.json ``data_issues``: the four ranked lists with the columns of
    :data:`COLUMNS`, what each score means, the counts with intervals, the thresholds (None
    when the audit did not run, or this failed: a failure of part "data audit")."""
    if issues is None:
        return None
    with optional_part("data audit"):
        lists = {name: [{c: r[c] for c in cols} for r in getattr(issues, name)]
                 for name, cols in COLUMNS.items()}
        return {**lists, "scores": SCORES, "summary": issues.summary,
                "settings": issues.settings, "notes": issues.notes,
                "seconds": round(issues.seconds, 3), "estimate_s": round(issues.estimate_s, 3)}
    return None


def image_views(assets: Assets, split_name: str, split, i: int, label: str) -> dict:
    """The page data of image ``i`` of a split (``img/<split>/<i>.jpg`` and a full-size
    file, as the galleries name test images)."""
    def make():
        return to_rgb(split.images[i:i + 1])[0]
    return {"label": label, "src": assets.image(f"img/{split_name}/{i}.jpg", make, THUMB),
            "full": assets.image(f"img/{split_name}/full/{i}.jpg", make, full_side(split),
                                 quality=90),
            "alt": f"{split_name} image {split.paths[i]}"}


def _label_error_views(assets: Assets, inputs: ReportInputs, r: dict) -> list[dict]:
    """The image and, for a test image, its GradCAMs: of the predicted class (every test
    image has it) and of the given label (kept for misclassified test images)."""
    split, i, ex = inputs.ds.splits[r["split"]], r["index"], inputs.explained
    views = [image_views(assets, r["split"], split, i, "image")]
    if r["split"] != "test" or ex.test_maps is None:
        return views
    pred = inputs.ds.class_names[predicted(inputs.probs["test"], i, ex.threshold)[0]]
    thumb, full = gradcam_tiles(assets, split, i, ex.test_maps[i])
    views.append({"label": f"map: {pred} (predicted)", "src": thumb, "full": full,
                  "alt": f"GradCAM for the predicted class {pred}, {split.paths[i]}"})
    if i in ex.true_maps and pred != r["given"]:
        thumb, full = gradcam_tiles(assets, split, i, ex.true_maps[i], "true")
        views.append({"label": f"map: {r['given']} (given)", "src": thumb, "full": full,
                      "alt": f"GradCAM for the given label {r['given']}, {split.paths[i]}"})
    return views


#: The explorer's "data issue" colouring: each image's first issue in this order.
ISSUE_ORDER = (("label_errors", "likely label error"), ("duplicates", "duplicate"),
               ("outliers", "outlier"), ("quality", "quality flag"))


def issue_colouring(issues: DataIssues | None) -> dict[str, Colouring]:
    """The explorer's extra colouring and filter by data issue ({} without an audit): each
    image of a list gets its first issue in :data:`ISSUE_ORDER` (a duplicate: both images of
    the pair)."""
    if issues is None:
        return {}
    values: dict[str, dict[int, str]] = {}
    for name, label in reversed(ISSUE_ORDER):  # the first in the order is written last
        for r in getattr(issues, name):
            ends = [("split_a", "index_a"), ("split_b", "index_b")] if name == "duplicates" \
                else [("split", "index")]
            for split, index in ends:
                values.setdefault(r[split], {})[int(r[index])] = label
    return {"issue": Colouring("data issue (data.html)", values)}


def _tile(views: list[dict], caption: str, paths: list[str]) -> dict:
    return {"views": views, "caption": caption, "paths": paths, "size": THUMB}


def _tiles(assets: Assets, inputs: ReportInputs, name: str) -> list[dict]:
    """The page tiles of the first :data:`SHOWN` records of list ``name``."""
    splits, out = inputs.ds.splits, []
    for r in getattr(inputs.data_issues, name)[:SHOWN]:
        if name == "duplicates":
            views = [image_views(assets, r[f"split_{k}"], splits[r[f"split_{k}"]],
                                 r[f"index_{k}"], f"{r[f'split_{k}']}") for k in "ab"]
            how = "exact copy (same pixels)" if r["kind"] == "exact" else \
                f"near: feature distance {r['distance']:.3f}, {r['hash_bits']} dHash bits apart"
            out.append(_tile(views, how, [r["a"], r["b"]]))
            continue
        if name == "label_errors":
            views = _label_error_views(assets, inputs, r)
            p = inputs.probs[r["split"]][r["index"]]
            suggested = float(p[inputs.ds.class_names.index(r["suggested"])])
            caption = (f"{r['split']}: given {r['given']} (p {1 - r['score']:.2f}), "
                       f"suggested {r['suggested']} (p {suggested:.2f})")
        elif name == "outliers":
            views = [image_views(assets, r["split"], splits[r["split"]], r["index"], "image")]
            caption = (f"score {r['score']:.2f} (features {r['feature']:.2f}, "
                       f"pixels {r['pixel']:.2f})" if r["feature"] == r["feature"] else
                       f"score {r['score']:.2f} (pixels)")
        else:
            views = [image_views(assets, r["split"], splits[r["split"]], r["index"], "image")]
            caption = f"{r['split']}: {', '.join(r['flags'])}"
        out.append(_tile(views, caption, [r["file"]]))
    return out


#: Below this test accuracy the label-error list is said to be mostly the model's mistakes:
#: confident learning trusts the model's probabilities, which a weak model does not earn.
WEAK_MODEL = 0.8


def rate_text(r: dict, what: str) -> str:
    """"3 of 150 <what> (2.0 %, 95 % CI 0.7–5.7 %, Wilson)"."""
    lo, hi = r["ci95"]
    if not r["n"]:
        return f"0 of 0 {what}"
    return (f"{r['count']:,} of {r['n']:,} {what} ({100 * r['rate']:.1f} %, 95 % CI "
            f"{100 * lo:.1f}–{100 * hi:.1f} %, Wilson)")


def summary_lines(issues: DataIssues) -> dict[str, str]:
    """One sentence per finding ({list: sentence}; "accuracy" too where labelled), for the
    data page, the overview and report.md."""
    s = issues.summary
    out = {}
    if "label_errors" in s:
        out["label_errors"] = "Likely label errors: " + "; ".join(
            rate_text(r, f"{split} images") for split, r in s["label_errors"].items()) + "."
        right = s.get("accuracy", {}).get("all", {})
        if right.get("n") and right["rate"] < WEAK_MODEL:
            out["label_errors"] += (f" The model is right on only {100 * right['rate']:.0f} % "
                                    "of the test images: most of these are likely its own "
                                    "mistakes, not wrong labels.")
    d = s.get("duplicates", {"exact": 0, "near": 0})
    leak = s["test_in_train"]
    pairs = (f"{plural(d['exact'], 'exact duplicate pair')} and "
             f"{plural(d['near'], 'near duplicate pair')} within and across splits.")
    out["duplicates"] = (f"Test images with an exact or near copy in train: "
                         f"{rate_text(leak, 'test images')}; {pairs}"
                         if leak.get("train_images") else
                         f"No training images, so no leakage into the test set; {pairs}")
    if "accuracy" in s:
        a, b = s["accuracy"]["all"], s["accuracy"]["without_copies"]
        out["accuracy"] = (f"Test accuracy: {rate_text(a, 'right')}; without the test images "
                           f"that have a copy in train: {rate_text(b, 'right')}.")
    if "outliers" in s:
        o = s["outliers"]
        out["outliers"] = (f"Outliers: {rate_text(o, 'test images')} score above "
                           f"{o['threshold']:.2f}, the 99th percentile of the "
                           f"{o['calibration']} images' scores.")
    if "quality" in s:
        q = s["quality"]
        flags = ", ".join(f"{k} {v}" for k, v in q["flags"].items() if v) or "none"
        out["quality"] = f"Quality flags: {rate_text(q, 'images')} ({flags})."
    return out


def _about(inputs: ReportInputs) -> dict[str, str]:
    """How each list was made, as run (thresholds from the audit's settings)."""
    st, f = inputs.data_issues.settings if inputs.data_issues else {}, inputs.features
    shape = inputs.ds.splits["test"].images.shape
    feats = (f"the penultimate features (the input of layer {f.layer}, {f.dims} values)"
             if f is not None and not f.missing else None)
    near = (f"a 64-bit dHash of the luminance at most {st.get('near_hash_bits')} bits apart "
            f"and {feats} within cosine distance {st.get('near_feature_distance')}; both "
            "are needed, since feature similarity alone pairs many distinct images"
            if feats else "not looked for: the prediction pass collected no features"
            + (f" ({f.missing})" if f is not None and f.missing else ""))
    return {
        "label_errors": (
            "Confident learning (Northcutt, Jiang and Chuang 2021) on the model's predictions "
            "for val and test images, which it did not train on. Per class j, the threshold "
            "t_j is the mean predicted probability of j over the images of the split labelled "
            "j; an image is listed when the most probable class k with p_k ≥ t_k is not its "
            "label (the off-diagonal of the confident joint), and k is the suggested label. "
            "Ranked by the probability of the given label, lowest first. A confident mistake "
            "of the model looks the same: look at each image. Test images show the GradCAM "
            "of the predicted class and, where the prediction is not the given label, of the "
            "given label; val images show the image only (GradCAM ran on the test set)."),
        "duplicates": (
            "Exact copies: the same decoded pixels (SHA-1 of the image as the model reads "
            f"it, {shape[2]}×{shape[1]} px); each copy is paired with the first image of its "
            f"group (train, then val, then test). Near copies: {near}."),
        "outliers": (
            (f"Each test image's mean distance to its {st.get('outlier_k')} nearest training "
             "images in two spaces: " if inputs.data_issues is None or
             inputs.data_issues.summary.get("outliers", {}).get("reference") != "test" else
             "There are no training images, so the test images are compared with each "
             "other (read 'training images' as 'the other test images' below). Each test "
             f"image's mean distance to its {st.get('outlier_k')} nearest training images in "
             "two spaces: ")
            + (f"{feats} (Euclidean, each value centred on the training images' mean and "
               "divided by their standard deviation) and " if feats else "")
            + "five pixel statistics (brightness, contrast, log Laplacian variance, "
            "colourfulness, luminance entropy; centred on the training images' median and "
            "divided by their interquartile range; Euclidean). Each distance is divided by "
            "its median over calibration images: the val images (which the model did not "
            "train on either, unlike the training images, whose features training draws "
            "together), or without two val images up to "
            f"{st.get('outlier_calibration'):,} training images, each against the others. "
            "The score is the larger ratio, so a pure-noise image whose features look "
            "ordinary is caught by its pixels. Listed: scores above the calibration images' "
            "own 99th percentile (about 1 % of images like them are listed by chance)."),
        "quality": "Flags: " + "; ".join(f"{k}: {v}" for k, v in
                                         st.get("quality", {}).items()) + ".",
    }


#: The page's sections: (list, heading).
SECTIONS = (("label_errors", "Likely label errors"), ("duplicates", "Duplicates and leakage"),
            ("outliers", "Outliers"), ("quality", "Image quality"))


def data_context(assets: Assets, inputs: ReportInputs, common: dict) -> dict:
    """The context of data.html (and of report.md's data-issue section); where making it
    fails, the page notes the failure (part "data audit") instead of its findings."""
    issues = inputs.data_issues
    base = {**common, "page_title": "Data issues", "current": "data.html",
            "audit_on": inputs.cfg.report.data_audit, "issues": None}
    if issues is None:
        return base
    with optional_part("data audit"):
        return {**base, "issues": _findings(assets, inputs, issues)}
    return base


def _findings(assets: Assets, inputs: ReportInputs, issues: DataIssues) -> dict:
    about, lines = _about(inputs), summary_lines(issues)
    sections = []
    for name, heading in SECTIONS:
        records = getattr(issues, name)
        sections.append({
            "key": name, "heading": heading, "about": about[name], "count": len(records),
            "line": lines.get(name, ""), "score": SCORES[name],
            "csv": assets.text(f"data/{name}.csv", records_csv(records, COLUMNS[name])),
            "tiles": _tiles(assets, inputs, name), "shown": min(SHOWN, len(records)),
            "skipped": name == "label_errors" and not inputs.ds.labeled})
    return {"lines": lines, "sections": sections, "notes": issues.notes,
            "seconds": issues.seconds, "estimate_s": issues.estimate_s}
