"""Compare models in one report: built sites in, a comparison site out.

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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reportgen import evaluate as ev
from reportgen.errors import ReportgenError
from reportgen.figures.overlay import resize_map
from reportgen.report.site import MARKER

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
