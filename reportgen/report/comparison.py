"""The comparison site: contexts and file jobs gathered from :mod:`reportgen.report.compare`,
then written like a single report (atomic, with a marker, publishable)."""

from __future__ import annotations

import json
import time
from itertools import combinations
from pathlib import Path

import numpy as np

from reportgen import __version__
from reportgen import figures as figs
from reportgen.data.decode import decode_image
from reportgen.evaluate import wilson_interval
from reportgen.figures.overlay import heatmap_overlay
from reportgen.report import compare as cmp
from reportgen.report.assets import Assets
from reportgen.report.build import Page, SiteContent, json_safe, table
from reportgen.report.figjobs import Figures
from reportgen.report.render import STATIC, environment, render, templates_dir
from reportgen.report.tables import Table

THUMB = 128
#: How the baseline of the map agreement is made, as metrics.json states it.
MISMATCHED = ("median Spearman rank correlation over mismatched images: model A's GradCAM of "
              "test image i against model B's of image j != i (j = (i + s) mod N, s seeded "
              "uniform in 1..N-1, seed 0), the agreement of maps that do not show the same image")


def _accuracy_ci(s: cmp.SiteRecord) -> str:
    lo, hi = wilson_interval(int(s.correct.sum()), len(s.true))
    return f"{100 * s.correct.mean():.1f} % ({100 * lo:.1f}–{100 * hi:.1f})"


def models_table(sites: list[cmp.SiteRecord]) -> Table:
    """One row per model: accuracy with its Wilson 95 % interval and the other headline
    numbers of its site."""
    rows = []
    keys = sorted({k for s in sites for k in s.metrics["splits"]["test"]
                   if k.startswith("top_") and k.endswith("_accuracy")})
    topk_key = keys[0] if keys else None  # "top_3_accuracy"
    for s in sites:
        m, model, ex = s.metrics["splits"]["test"], s.metrics["model"], s.metrics["explain"]
        topk = m.get(topk_key) if topk_key else None
        point = (ex.get("pointing_game") or {}).get("gradcam")
        rows.append([s.label, _accuracy_ci(s), m["macro_f1"], m["loss"],
                     (m.get("calibration") or {}).get("ece"), topk, f"{model['params'][0]:,}",
                     "×".join(str(v) for v in model["input_shape"]), ex.get("layer") or "–",
                     None if point is None else point["score"]])
    topk_label = f"top-{topk_key.split('_')[1]} accuracy" if topk_key else "top-k accuracy"
    return Table("models", ["model", "test accuracy (95 % CI)", "macro F1", "loss", "ECE",
                            topk_label, "parameters", "input", "explained layer",
                            "pointing game"], rows,
                 f"Models on the same {len(sites[0].true)} test images (Wilson intervals)")


def class_deltas(a: cmp.SiteRecord, b: cmp.SiteRecord, name: str) -> Table:
    """Per class, B's precision, recall and F1 minus A's."""
    pa, pb = a.metrics["splits"]["test"]["per_class"], b.metrics["splits"]["test"]["per_class"]
    rows = [[n, pb[n]["precision"] - pa[n]["precision"], pb[n]["recall"] - pa[n]["recall"],
             pb[n]["f1"] - pa[n]["f1"], pa[n]["support"]] for n in a.classes if n in pa]
    return Table(name, ["class", "Δ precision", "Δ recall", "Δ F1", "support"],
                 rows, f"Per-class change, {b.label} minus {a.label} (test)")


def _photo(assets: Assets, site: cmp.SiteRecord, i: int, size: tuple[int, int]) -> str:
    return assets.image(f"img/photo/{i}.jpg", lambda: decode_or_grey(site, i, size), THUMB)


def _overlay(assets: Assets, sites, k: int, i: int, size: tuple[int, int]) -> str | None:
    s = sites[k]
    if s.maps is None:
        return None

    def make():
        photo = decode_or_grey(sites[0], i, size)
        m = figs.resize_map(s.maps[i], (size[1], size[0]))
        return heatmap_overlay(photo[None], np.clip(m, 0, 1)[None])[0]
    return assets.image(f"img/map{k}/{i}.jpg", make, THUMB)


def decode_or_grey(site: cmp.SiteRecord, i: int, size: tuple[int, int]) -> np.ndarray:
    """Test image ``i`` decoded from the site's data folder at ``size`` (height, width); a
    grey tile when the folder moved (the tile's labels still say what it shows)."""
    try:
        if site.data_root is None:
            raise FileNotFoundError("the site does not say where its data folder is")
        return decode_image(site.data_root / site.files[i], size, 3)[0]
    except Exception:  # any decoding failure of one thumbnail must not end the comparison
        return np.full(size + (3,), 128, np.uint8)


def tile(assets: Assets, sites, pair: tuple[int, int], i: int, extra: str = "") -> dict:
    """A tile of test image ``i``: the photo, and each model of ``pair`` with its prediction
    and GradCAM."""
    size = tuple(sites[0].metrics["data"]["image_size"])
    names = sites[0].classes
    models = []
    for k in pair:
        s = sites[k]
        p = int(s.pred[i])
        models.append({"label": s.label, "pred": names[p], "confidence": float(s.probs[i, p]),
                       "correct": bool(s.correct[i]),
                       "map": _overlay(assets, sites, k, i, size)})
    return {"index": i, "file": sites[0].files[i], "true": names[int(sites[0].true[i])],
            "photo": _photo(assets, sites[0], i, size), "models": models, "extra": extra}


def _pair_context(assets: Assets, figures: Figures, sites, ia: int, ib: int) -> dict:
    a, b = sites[ia], sites[ib]
    stats = cmp.pair_statistics(a, b)
    gone = cmp.disagreements(a, b)
    rho = cmp.map_agreement(a, b)
    base = cmp.map_agreement_baseline(a, b)
    agree = np.flatnonzero(a.pred == b.pred)
    apart = agree[np.isfinite(rho[agree])]
    apart = apart[np.argsort(rho[apart], kind="stable")][:cmp.LOOK_APART]
    by_class = {n: rho[a.true == c] for c, n in enumerate(a.classes)}
    baseline = _nanmedian(base)
    fig = None if np.isnan(rho).all() else figures.add(
        f"map_agreement_{ia}_{ib}", figs.grouped_distribution, by_class,
        ylabel="Spearman ρ of the GradCAM maps", title=f"{a.label} vs {b.label}",
        reference=baseline,
        reference_label="" if baseline is None else
        f"mismatched images (baseline), median {baseline:.2f}",
        alt=f"Box plot per class of the rank correlation between the GradCAM maps of "
            f"{a.label} and {b.label}; median {np.nanmedian(rho):.2f}"
            + ("" if baseline is None else f", against {baseline:.2f} for mismatched images"),
        caption="Per test image, rank correlation of the two models' GradCAM maps (1: the "
                "same order of importance), by true class; the dashed line is the median for "
                "mismatched images, the baseline.")
    sections = [{"key": key, "title": title, "total": len(gone[key]),
                 "tiles": [tile(assets, sites, (ia, ib), i) for i in gone[key][:cmp.GALLERY]]}
                for key, title in (("a_only", f"{a.label} right, {b.label} wrong"),
                                   ("b_only", f"{b.label} right, {a.label} wrong"))]
    return {"a": a.label, "b": b.label, "stats": stats,
            "t_deltas": table(assets, class_deltas(a, b, f"class_deltas_{ia}_{ib}")),
            "sections": sections, "fig_agreement": fig,
        "rho_median": _nanmedian(rho), "rho_baseline_median": baseline,
        "apart": [tile(assets, sites, (ia, ib), int(i), f"ρ = {rho[i]:.2f}") for i in apart],
        "n_agree": len(agree)}


def _nanmedian(v: np.ndarray) -> float | None:
    return None if np.isnan(v).all() else float(np.nanmedian(v))


def gather_comparison(sites: list[cmp.SiteRecord], title: str, figures: Figures
                      ) -> SiteContent:
    """Every page and file of the comparison site (nothing written)."""
    content = SiteContent()
    assets = content.assets
    pair_ctx = [_pair_context(assets, figures, sites, ia, ib)
                for ia, ib in combinations(range(len(sites)), 2)]
    cms = [figures.add(f"confusion_{k}", figs.confusion_matrix,
                       s.metrics["splits"]["test"]["confusion_matrix"], s.classes,
                       row_names=s.metrics["splits"]["test"].get("confusion_rows"),
                       title=s.label, alt=f"Test confusion matrix of {s.label}",
                       caption=f"{s.label}: test counts (row = true class).")
           for k, s in enumerate(sites)]
    common = {"title": title, "version": __version__, "built": time.strftime("%Y-%m-%d %H:%M"),
              "nav": [{"href": "index.html", "label": "Comparison"}], "notes": [],
              "page_title": "Comparison", "current": "index.html"}
    ctx = {**common, "t_models": table(assets, models_table(sites)), "pairs": pair_ctx,
           "cms": cms, "n": len(sites[0].true), "sites": [s.label for s in sites]}
    content.pages = [Page("index.html", "compare.html", ctx), Page("report.md", "compare.md", ctx)]
    for name in STATIC:
        assets.copy(name, templates_dir() / name)
    assets.text(".nojekyll", "")
    content.metrics = {"title": title, "models": [
        {"label": s.label, "site": str(s.path), "accuracy": s.metrics["splits"]["test"]["accuracy"],
         "accuracy_ci": list(wilson_interval(int(s.correct.sum()), len(s.true)))}
        for s in sites],
        "pairs": [{**p["stats"], "map_rank_correlation_median": p["rho_median"],
                   "map_rank_correlation_mismatched_median": p["rho_baseline_median"],
                   "map_rank_correlation_mismatched": MISMATCHED} for p in pair_ctx],
        "test_hash": sites[0].metrics["data"]["test_hash"]}
    return content


def write_comparison(paths: list[Path], out: Path, title: str | None = None,
                     formats=("png", "svg", "pdf")) -> Path:
    """Compare the sites at ``paths`` into the site folder ``out``; return its index.html.

    Raises:
        CompareError: fewer than two sites, a folder that is not a site, or sites with
            different classes or test sets (the message names both).
    """
    from reportgen.report.site import SiteWriter, check_output

    out = Path(out).absolute()
    check_output(out)
    sites = cmp.load_sites(paths)
    title = title or "Comparison: " + " vs ".join(s.label for s in sites)
    with Figures(list(formats), parallel=False) as figures, SiteWriter(out) as site:
        content = gather_comparison(sites, title, figures)
        figures.write_into(site)
        content.assets.write(site)
        env = environment()
        for page in content.pages:
            site.path(page.rel).write_text(render(env, page.template, page.context), "utf-8")
        site.path("metrics.json").write_text(
            json.dumps(json_safe(content.metrics), indent=1, allow_nan=False), "utf-8")
        site.commit({"compared": [str(p) for p in paths]})
    return out / "index.html"
