"""Compare models in one report: built sites in, a comparison site out.

The records and statistics of the compared sites come first (:func:`load_sites`,
:func:`pair_statistics`, :func:`map_agreement`, ...), then the comparison site made from them
(:func:`write_comparison`), written like a single report (atomic, with a marker, publishable).

Every site ``reportgen build`` writes carries what this needs: ``predictions.csv`` (per test
image the true and predicted class and every class probability), ``explanations.npz`` (GradCAM
of every test image at the explained layer's resolution) and, in ``metrics.json``, the content
hash of the test files. Sites are compared only when their test sets and classes are the same.

Statistics (``reportgen.evaluate``): accuracy with a Wilson 95 % interval; per pair of models
the exact McNemar test on the discordant images and Newcombe's hybrid score interval for
paired proportions of the accuracy difference (from Wilson intervals, so it does not collapse
when both models are right on every image); per image the Spearman rank correlation of the
two GradCAM maps, both resized bilinearly to the finer of the two resolutions, beside the same
statistic for mismatched images (A's map of one image against B's map of another, seeded) as
its baseline.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np

from reportgen import __version__
from reportgen import evaluate as ev
from reportgen import figures as figs
from reportgen.data.decode import decode_image
from reportgen.errors import ReportgenError
from reportgen.evaluate import wilson_interval
from reportgen.figures.overlay import heatmap_overlay, resize_map
from reportgen.report.assets import Assets
from reportgen.report.build import Page, SiteContent, json_safe, table
from reportgen.report.figjobs import Figures
from reportgen.report.render import STATIC, environment, render, templates_dir
from reportgen.report.site import MARKER, SiteWriter, check_output
from reportgen.report.tables import Table

#: Tiles per direction of a disagreement gallery (all are counted; the most confident shown).
GALLERY = 48
#: Images shown where the models agree on the label but their maps differ most.
LOOK_APART = 24


class CompareError(ReportgenError):
    """The sites cannot be compared; the message names them (exit code 2)."""

    exit_code = 2


@dataclass
class SiteRecord:
    """What one built site says about its model on the test set."""

    path: Path
    label: str
    metrics: dict
    files: list[str]
    true: np.ndarray
    probs: np.ndarray
    maps: np.ndarray | None
    #: The data folder on this machine (from the site's marker, never published); None when
    #: unknown.
    data_root: Path | None = None

    @property
    def pred(self) -> np.ndarray:
        return self.probs.argmax(axis=1)

    @property
    def correct(self) -> np.ndarray:
        return self.pred == self.true

    @property
    def classes(self) -> list[str]:
        return list(self.metrics["classes"])


def load_site(path: Path, label: str) -> SiteRecord:
    """Read the comparison record of the site at ``path``.

    Raises:
        CompareError: not a reportgen site, or one built before sites carried the record.
    """
    path = Path(path)
    if not (path / MARKER).is_file() or not (path / "metrics.json").is_file():
        raise CompareError(f"{path}: not a site built by reportgen build (no {MARKER})")
    metrics = json.loads((path / "metrics.json").read_text(encoding="utf-8"))
    if metrics.get("labeled") is False:
        raise CompareError(f"{path}: was built on photos without labels (data.source = "
                           '"images"); reportgen compare needs labeled test images')
    rec = metrics.get("compare")
    if not rec or not (path / rec["predictions"]).is_file():
        raise CompareError(f"{path}: has no predictions.csv; rebuild it with this reportgen")
    names = metrics["classes"]
    with open(path / rec["predictions"], newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if rows[0] != ["file", "true", "predicted", *names]:
        raise CompareError(f"{path / rec['predictions']}: unexpected columns {rows[0][:6]}")
    index = {n: i for i, n in enumerate(names)}
    true = np.array([index[r[1]] for r in rows[1:]], np.int64)
    probs = np.array([[float(v) for v in r[3:]] for r in rows[1:]], np.float64)
    maps = None
    if rec.get("maps") and (path / rec["maps"]).is_file():
        with np.load(path / rec["maps"]) as z:
            maps = z["gradcam"].astype(np.float32)
    return SiteRecord(path, label, metrics, [r[0] for r in rows[1:]], true,
                      probs.reshape(len(true), len(names)), maps, _data_root(path, metrics))


def _data_root(path: Path, metrics: dict) -> Path | None:
    """The site's data folder on this machine: from its marker (sites built before that:
    the absolute ``data.root`` of metrics.json); None when neither says."""
    try:
        root = json.loads((path / MARKER).read_text(encoding="utf-8")).get("data_root")
    except (OSError, ValueError, AttributeError):
        root = None
    root = root or (metrics.get("data") or {}).get("root")
    return Path(root) if isinstance(root, str) and Path(root).is_absolute() else None


def check_comparable(sites: list[SiteRecord]) -> None:
    """Raise :class:`CompareError`, naming both sites, unless every site has the first one's
    classes and test set (content hash of the test files)."""
    first = sites[0]
    for other in sites[1:]:
        if other.classes != first.classes:
            raise CompareError(f"{first.path} and {other.path} have different classes "
                               f"({', '.join(first.classes)} vs {', '.join(other.classes)})")
        h1, h2 = first.metrics["data"]["test_hash"], other.metrics["data"]["test_hash"]
        if h1 != h2 or other.files != first.files:
            raise CompareError(f"{first.path} and {other.path} were built on different test "
                               f"sets (test files hash {h1[:12]} vs {h2[:12]}); "
                               + _how_to_share(first.path, other.path))


#: The settings that decide a build's test set.
DATA_KEYS = ("source", "path", "split", "split_seed", "shapes_per_class", "classes")


def _how_to_share(a: Path, b: Path) -> str:
    """How to build sites ``a`` and ``b`` on one test set: the data settings (from each
    site's marker) that differ, and the rule."""
    def data(site: Path) -> dict:
        try:
            return json.loads((site / MARKER).read_text(encoding="utf-8"))["config"]["data"]
        except (OSError, ValueError, KeyError, TypeError):
            return {}

    da, db = data(a), data(b)
    differ = [f"data.{k} {json.dumps(da[k])} vs {json.dumps(db[k])}" for k in DATA_KEYS
              if k in da and k in db and da[k] != db[k]]
    return ((f"they differ in {', '.join(differ)}; " if differ else "")
            + "build both with the same data.path, data.split and data.split_seed "
            "(training.seed does not move the split)")


def pair_statistics(a: SiteRecord, b: SiteRecord) -> dict:
    """McNemar and Newcombe's paired interval for models ``a`` and ``b``, with the sentence a
    reader needs. ``mcnemar_statistic`` is the exact test's statistic, min(b, c) of the
    discordant counts b (a right, b wrong) and c (the reverse)."""
    b_count = int(np.sum(a.correct & ~b.correct))  # a right, b wrong
    c_count = int(np.sum(~a.correct & b.correct))  # a wrong, b right
    p = ev.mcnemar_exact(b_count, c_count)
    diff, lo, hi = ev.paired_difference(a.correct, b.correct)
    return {"a": a.label, "b": b.label, "a_right_b_wrong": b_count, "b_right_a_wrong": c_count,
            "mcnemar_statistic": min(b_count, c_count), "mcnemar_p": p,
            "accuracy_difference": diff, "accuracy_difference_ci": [lo, hi],
            "accuracy_difference_ci_method": "Newcombe hybrid score interval for paired "
                                             "proportions (Newcombe 1998, method 10)",
            "sentence": sentence(a.label, b.label, diff, (lo, hi), p)}


def sentence(a: str, b: str, diff: float, ci: tuple[float, float], p: float) -> str:
    """"B is better than A by 6.8 points, 95 % CI 3.1 to 10.4, McNemar p = 0.0004", or that
    the difference is not significant when the interval holds 0 or p >= 0.05."""
    if p < 0.05 and (ci[0] > 0 or ci[1] < 0):
        # State the difference as better minus worse, its interval with it.
        better, worse, lo, hi = (b, a, ci[0], ci[1]) if diff > 0 else (a, b, -ci[1], -ci[0])
        return (f"{better} is better than {worse} by {100 * abs(diff):.1f} points, 95 % CI "
                f"{_num(100 * lo)} to {_num(100 * hi)}, McNemar p = {_p(p)}.")
    return (f"No significant difference between {a} and {b}: {b} minus {a} is "
            f"{_num(100 * diff, sign=True)} points, 95 % CI {_num(100 * ci[0])} to "
            f"{_num(100 * ci[1])}, McNemar p = {_p(p)}.")


def _num(v: float, sign: bool = False) -> str:
    """One decimal, with a true minus sign (and a plus sign with ``sign``)."""
    text = f"{v:+.1f}" if sign else f"{v:.1f}"
    return text.replace("-", "\u2212")


def _p(p: float) -> str:
    return f"{p:.2g}" if p >= 0.001 else f"{p:.1e}".replace("-", "\u2212")


def map_agreement(a: SiteRecord, b: SiteRecord) -> np.ndarray:
    """(N,) Spearman rank correlation per test image of the two models' GradCAM maps at a
    common resolution (the finer one; bilinear); NaN without maps or for a constant map."""
    n = len(a.true)
    if a.maps is None or b.maps is None:
        return np.full(n, np.nan)
    size = (max(a.maps.shape[2], b.maps.shape[2]), max(a.maps.shape[1], b.maps.shape[1]))
    return np.array([ev.spearman(resize_map(a.maps[i], size), resize_map(b.maps[i], size))
                     for i in range(n)])


def map_agreement_baseline(a: SiteRecord, b: SiteRecord, seed: int = 0) -> np.ndarray:
    """(N,) the statistic of :func:`map_agreement` for mismatched images: per test image i,
    A's map of i against B's map of image j = (i + s) mod N, s drawn from 1..N-1 by
    ``numpy.random.default_rng(seed).integers(1, N, size=N)`` (so j != i). What two maps
    agree on without showing the same image (where objects usually lie, a centre bias) sets
    the level a matched agreement must clear; NaN without maps or with fewer than 2 images."""
    n = len(a.true)
    if a.maps is None or b.maps is None or n < 2:
        return np.full(n, np.nan)
    other = (np.arange(n) + np.random.default_rng(seed).integers(1, n, size=n)) % n
    size = (max(a.maps.shape[2], b.maps.shape[2]), max(a.maps.shape[1], b.maps.shape[1]))
    return np.array([ev.spearman(resize_map(a.maps[i], size), resize_map(b.maps[j], size))
                     for i, j in enumerate(other)])


def disagreements(a: SiteRecord, b: SiteRecord) -> dict[str, list[int]]:
    """Test indices where exactly one model is right: {"a_only": a right, b wrong;
    "b_only": the reverse}, each ordered by the wrong model's confidence, highest first."""
    out = {}
    for key, right, wrong in (("a_only", a, b), ("b_only", b, a)):
        idx = np.flatnonzero(right.correct & ~wrong.correct)
        conf = wrong.probs[idx].max(axis=1)
        out[key] = [int(i) for i in idx[np.argsort(-conf, kind="stable")]]
    return out


def load_sites(paths: list[Path]) -> list[SiteRecord]:
    """Load and check the sites; labels are the folder names (made unique)."""
    if len(paths) < 2:
        raise CompareError("compare needs at least two sites")
    labels: list[str] = []
    for p in paths:
        name = Path(p).absolute().name
        labels.append(name if name not in labels else f"{name} ({len(labels) + 1})")
    sites = [load_site(Path(p), label) for p, label in zip(paths, labels, strict=True)]
    check_comparable(sites)
    return sites

THUMB = 128
#: How the baseline of the map agreement is made, as metrics.json states it.
MISMATCHED = ("median Spearman rank correlation over mismatched images: model A's GradCAM of "
              "test image i against model B's of image j != i (j = (i + s) mod N, s seeded "
              "uniform in 1..N-1, seed 0), the agreement of maps that do not show the same image")


def _accuracy_ci(s: SiteRecord) -> str:
    lo, hi = wilson_interval(int(s.correct.sum()), len(s.true))
    return f"{100 * s.correct.mean():.1f} % ({100 * lo:.1f}–{100 * hi:.1f})"


def models_table(sites: list[SiteRecord]) -> Table:
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


def class_deltas(a: SiteRecord, b: SiteRecord, name: str) -> Table:
    """Per class, B's precision, recall and F1 minus A's."""
    pa, pb = a.metrics["splits"]["test"]["per_class"], b.metrics["splits"]["test"]["per_class"]
    rows = [[n, pb[n]["precision"] - pa[n]["precision"], pb[n]["recall"] - pa[n]["recall"],
             pb[n]["f1"] - pa[n]["f1"], pa[n]["support"]] for n in a.classes if n in pa]
    return Table(name, ["class", "Δ precision", "Δ recall", "Δ F1", "support"],
                 rows, f"Per-class change, {b.label} minus {a.label} (test)")


def _photo(assets: Assets, site: SiteRecord, i: int, size: tuple[int, int]) -> str:
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


def decode_or_grey(site: SiteRecord, i: int, size: tuple[int, int]) -> np.ndarray:
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
    stats = pair_statistics(a, b)
    gone = disagreements(a, b)
    rho = map_agreement(a, b)
    base = map_agreement_baseline(a, b)
    agree = np.flatnonzero(a.pred == b.pred)
    apart = agree[np.isfinite(rho[agree])]
    apart = apart[np.argsort(rho[apart], kind="stable")][:LOOK_APART]
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
                 "tiles": [tile(assets, sites, (ia, ib), i) for i in gone[key][:GALLERY]]}
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


def gather_comparison(sites: list[SiteRecord], title: str, figures: Figures
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
    out = Path(out).absolute()
    check_output(out)
    sites = load_sites(paths)
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
