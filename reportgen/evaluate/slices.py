"""Accuracy by subgroup: metadata slices and a search for weak slices, with multiple-testing
control (numpy only; the evaluate layer).

A *slice* is a subset of the test images defined by a rule in words ("camera = phone",
"brightness < 0.21"). Each slice of at least :data:`MIN_SLICE` images is scored: its accuracy
with a 95 % Wilson interval, and a two-sided Fisher exact test of its accuracy against that of
the other test images (the 2 × 2 table slice/rest × correct/wrong). The p-values of every slice
scored are adjusted together by Benjamini–Hochberg; a slice is *flagged* when its adjusted
p-value is below :data:`ALPHA` and its accuracy is below the rest's.

Metadata slices come from the columns of ``data.metadata``: each value of a categorical column
is a slice, a numeric column with more than :data:`NUMERIC_LEVELS` distinct values is cut at
its quartiles. Weak slices are searched without metadata, on image properties
(:mod:`reportgen.data.properties`): each property's lower and upper tails and middle bins
(:func:`property_rules`) are candidates, and Benjamini–Hochberg runs over every candidate
tested, so searching many rules on clean data still raises a false alarm in at most about 5 %
of reports (the false discovery rate, which under no real effect bounds the chance of any flag).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from reportgen.evaluate import wilson_interval

#: False discovery rate of the slice tests (Benjamini–Hochberg).
ALPHA = 0.05
#: Slices with fewer test images are listed, not scored.
MIN_SLICE = 20
#: A numeric metadata column with more distinct values is cut at its quartiles; one with
#: fewer is categorical.
NUMERIC_LEVELS = 6
#: A categorical column with more distinct values is not sliced (an identifier, say).
MAX_CATEGORIES = 30
#: The value of an image without one in a metadata column.
EMPTY = "(empty)"
#: Quantiles of a property whose lower (``<``) and upper (``≥``) tails are candidate rules,
#: and the pairs of quantiles bounding the middle bins.
LOWER_TAILS, UPPER_TAILS = (0.1, 0.2, 0.3, 0.5), (0.5, 0.7, 0.8, 0.9)
MIDDLE_BINS = ((0.2, 0.4), (0.4, 0.6), (0.6, 0.8))
#: How the slices are tested, as the pages and metrics.json state it.
METHOD = (f"two-sided Fisher exact test of each slice's accuracy against the other test "
          f"images, Benjamini–Hochberg over every slice scored (false discovery rate "
          f"{ALPHA:g}); slices under {MIN_SLICE} images listed, not scored")


def fisher_exact(a: int, b: int, c: int, d: int) -> float:
    """Two-sided p-value of Fisher's exact test of the 2 × 2 table [[a, b], [c, d]]: the
    probability, under the hypergeometric law of ``a`` given the margins, of a table no more
    likely than the one observed (relative tolerance 1e-7, as scipy's ``fisher_exact``)."""
    n1, k, n = a + b, a + c, a + b + c + d
    if min(a, b, c, d) < 0:
        raise ValueError("counts must be non-negative")
    if n1 in (0, n) or k in (0, n):
        return 1.0
    logfact = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, n + 1)))])
    x = np.arange(max(0, n1 + k - n), min(n1, k) + 1)

    def logcomb(top, bottom):
        return logfact[top] - logfact[bottom] - logfact[top - bottom]

    logpmf = logcomb(k, x) + logcomb(n - k, n1 - x) - logcomb(n, n1)
    observed = logpmf[a - x[0]]
    return float(min(1.0, np.exp(logpmf[logpmf <= observed + 1e-7]).sum()))


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values of (M,) p-values: ``min over j >= i of M p_(j) / j``
    in the ascending order, capped at 1, returned in the input order."""
    p = np.asarray(p, np.float64)
    m = len(p)
    if not m:
        return p.copy()
    order = np.argsort(p, kind="stable")
    scaled = p[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(scaled[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    return out


@dataclass
class Slice:
    """A subset of the test images and its accuracy against the rest.

    Attributes:
        column: the metadata column or image property the rule reads.
        value: the column's value or bin ("phone", "[21, 34)"); for a weak slice, the rule.
        rule: the slice in words ("camera = phone", "brightness < 0.21").
        n, correct: images in the slice and how many were classified right.
        rest_n, rest_correct: the same for the other test images.
        p_value, p_adjusted: Fisher's two-sided p-value and its Benjamini–Hochberg adjustment;
            None when the slice is under the minimum size (listed, not scored).
        mask: (N,) bool, the test images in the slice.
        top_class: the slice's most common true class and its share of the slice (a slice
            that is mostly one class may be that class's recall in other words); None when
            not known.
    """

    column: str
    value: str
    rule: str
    n: int
    correct: int
    rest_n: int
    rest_correct: int
    p_value: float | None = None
    p_adjusted: float | None = None
    mask: np.ndarray | None = field(default=None, repr=False, compare=False)
    top_class: tuple[str, float] | None = None

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else float("nan")

    @property
    def rest_accuracy(self) -> float:
        return self.rest_correct / self.rest_n if self.rest_n else float("nan")

    @property
    def ci95(self) -> tuple[float, float]:
        """The 95 % Wilson interval of :attr:`accuracy`."""
        return wilson_interval(self.correct, self.n)

    @property
    def scored(self) -> bool:
        return self.p_value is not None

    def flagged(self, alpha: float = ALPHA) -> bool:
        """Significantly worse than the rest: adjusted p below ``alpha``, accuracy below."""
        return (self.p_adjusted is not None and self.p_adjusted < alpha
                and self.accuracy < self.rest_accuracy)

    def sentence(self) -> str:
        """"camera = phone: accuracy 71 % [64, 78] against 94 % (n = 120, adjusted p =
        0.002)"."""
        lo, hi = self.ci95
        p = "" if self.p_adjusted is None else f", adjusted p = {self.p_adjusted:.2g}"
        return (f"{self.rule}: accuracy {100 * self.accuracy:.0f} % [{100 * lo:.0f}, "
                f"{100 * hi:.0f}] against {100 * self.rest_accuracy:.0f} % "
                f"(n = {self.n}{p})")

    def as_dict(self, alpha: float = ALPHA) -> dict:
        """The slice as metrics.json lists it."""
        return {"column": self.column, "value": self.value, "rule": self.rule, "n": self.n,
                "accuracy": self.accuracy, "ci95": list(self.ci95),
                "rest_n": self.rest_n, "rest_accuracy": self.rest_accuracy,
                "p_value": self.p_value, "p_adjusted": self.p_adjusted,
                "flagged": self.flagged(alpha), "top_class": self.top_class_dict()}

    def top_class_dict(self) -> dict | None:
        """{"name", "share"} of :attr:`top_class`, or None."""
        return None if self.top_class is None else \
            {"name": self.top_class[0], "share": self.top_class[1]}


def make_slice(correct: np.ndarray, mask: np.ndarray, column: str, value: str, rule: str,
               min_size: int = MIN_SLICE) -> Slice:
    """The :class:`Slice` of the images ``mask`` selects, given (N,) bool ``correct``; scored
    (Fisher p-value, not yet adjusted) when it holds ``min_size`` images and others remain."""
    correct, mask = np.asarray(correct, bool), np.asarray(mask, bool)
    n, k = int(mask.sum()), int(correct[mask].sum())
    rest_n, rest_k = int((~mask).sum()), int(correct[~mask].sum())
    s = Slice(column, value, rule, n, k, rest_n, rest_k, mask=mask)
    if n >= min_size and rest_n > 0:
        s.p_value = fisher_exact(k, n - k, rest_k, rest_n - rest_k)
    return s


def adjust(slices: list[Slice]) -> None:
    """Set ``p_adjusted`` of every scored slice: Benjamini–Hochberg over all of them."""
    scored = [s for s in slices if s.scored]
    adjusted = benjamini_hochberg(np.array([s.p_value for s in scored]))
    for s, q in zip(scored, adjusted, strict=True):
        s.p_adjusted = float(q)


def number(x: float) -> str:
    """A bin edge in words: three significant digits (the rule is applied with it as written)."""
    return f"{float(f'{x:.3g}'):g}"


def _numeric(values: list[str]) -> np.ndarray | None:
    """The non-empty values as floats (NaN for empty) when every one is a finite number."""
    out = np.full(len(values), np.nan)
    for i, v in enumerate(values):
        if v.strip():
            try:
                out[i] = float(v)
            except ValueError:
                return None
            if not math.isfinite(out[i]):
                return None
    return out


def quartile_bins(x: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """[(bin, mask)] of the finite values of ``x`` cut at their quartiles, edges rounded as
    :func:`number` writes them and applied as written: "< 21", "[21, 34)", ..., "≥ 52";
    empty bins left out."""
    finite = x[np.isfinite(x)]
    edges = sorted({float(number(q)) for q in np.quantile(finite, [0.25, 0.5, 0.75])})
    edges = [e for e in edges if finite.min() < e <= finite.max()]
    if not edges:
        return []
    bins = [(f"< {number(edges[0])}", x < edges[0])]
    bins += [(f"[{number(lo)}, {number(hi)})", (x >= lo) & (x < hi))
             for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    bins.append((f"≥ {number(edges[-1])}", x >= edges[-1]))
    return [(v, m) for v, m in bins if m.any()]


def rule_of(column: str, value: str) -> str:
    """"camera = phone", "age < 21", "age in [21, 34)"."""
    if value.startswith(("<", "≥")):
        return f"{column} {value}"
    return f"{column} in {value}" if value.startswith("[") else f"{column} = {value}"


def column_groups(values: list[str]) -> tuple[str, list[tuple[str, np.ndarray]]]:
    """How one metadata column is sliced: ("categories" | "quartile bins" | "not sliced: <why>",
    [(value, mask)]). Empty cells are the value :data:`EMPTY`, never dropped."""
    raw = np.array([v.strip() for v in values], dtype=object)
    empty = raw == ""
    x = _numeric(list(raw))
    groups: list[tuple[str, np.ndarray]] = []
    if x is not None and len(set(x[np.isfinite(x)])) > NUMERIC_LEVELS:
        kind, groups = "quartile bins", quartile_bins(x)
    else:
        levels = sorted(set(raw[~empty]), key=float if x is not None else str)
        if len(levels) > MAX_CATEGORIES:
            return (f"not sliced: {len(levels)} distinct values, more than "
                    f"{MAX_CATEGORIES}"), []
        kind, groups = "categories", [(v, raw == v) for v in levels]
    if empty.any():
        groups.append((EMPTY, empty))
    return kind, groups


@dataclass
class MetadataSlices:
    """The slices of every metadata column: ``slices`` (scored and listed), ``columns``
    ({column: how it was sliced}), ``missing`` (test images with no row in the file)."""

    slices: list[Slice]
    columns: dict[str, str]
    missing: int = 0


def metadata_slices(columns: dict[str, list[str]], correct: np.ndarray, *,
                    min_size: int = MIN_SLICE, missing: int = 0) -> MetadataSlices:
    """Slice the test images by every metadata column and score each slice; the p-values are
    adjusted by Benjamini–Hochberg over the slices of all columns together.

    Args:
        columns: {column: N values, as strings ("" where empty)} of the N test images.
        correct: (N,) bool, the image was classified right.
        missing: test images with no row in the metadata file (their cells are empty).
    """
    slices, kinds = [], {}
    for column, values in columns.items():
        kinds[column], groups = column_groups(values)
        slices += [make_slice(correct, mask, column, value, rule_of(column, value), min_size)
                   for value, mask in groups]
    adjust(slices)
    return MetadataSlices(slices, kinds, missing)


def property_rules(name: str, x: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """Candidate rules on one property: [(rule in words, mask)] of its lower tails
    (:data:`LOWER_TAILS`), upper tails (:data:`UPPER_TAILS`) and middle bins
    (:data:`MIDDLE_BINS`), thresholds at the quantiles of its finite values rounded as
    :func:`number` writes them and applied as written. NaN values (no box) fall in none."""
    finite = x[np.isfinite(x)]
    if len(np.unique(finite)) < 2:
        return []
    qs = sorted({*LOWER_TAILS, *UPPER_TAILS, *(q for pair in MIDDLE_BINS for q in pair)})
    t = {q: float(number(v)) for q, v in zip(qs, np.quantile(finite, qs), strict=True)}
    with np.errstate(invalid="ignore"):
        rules = [(f"{name} < {number(t[q])}", x < t[q]) for q in LOWER_TAILS]
        rules += [(f"{name} ≥ {number(t[q])}", x >= t[q]) for q in UPPER_TAILS]
        rules += [(f"{number(t[a])} ≤ {name} < {number(t[b])}", (x >= t[a]) & (x < t[b]))
                  for a, b in MIDDLE_BINS]
    return rules


@dataclass
class WeakSearch:
    """The weak-slice search: every candidate tested (``tested``, scored and adjusted), the
    properties searched, and :meth:`found`."""

    tested: list[Slice]
    properties: list[str]
    flagged_count: int = field(default=0)

    def found(self, alpha: float = ALPHA) -> list[Slice]:
        """The flagged candidates, one per property (its smallest adjusted p-value, then the
        larger slice), most significant first."""
        best: dict[str, Slice] = {}
        for s in self.tested:
            if s.flagged(alpha):
                b = best.get(s.column)
                if b is None or (s.p_adjusted, -s.n) < (b.p_adjusted, -b.n):
                    best[s.column] = s
        return sorted(best.values(), key=lambda s: (s.p_adjusted, -s.n))


def weak_slices(properties: dict[str, np.ndarray], correct: np.ndarray, *,
                min_size: int = MIN_SLICE, alpha: float = ALPHA) -> WeakSearch:
    """Search the rules of :func:`property_rules` on every property for slices of low
    accuracy.

    Args:
        properties: {name: (N,) float64} per test image (NaN: unknown).
        correct: (N,) bool, the image was classified right.

    Returns:
        The :class:`WeakSearch`: candidates of ``min_size`` images or more, each distinct
        subset once, all adjusted together by Benjamini–Hochberg.
    """
    seen: set[bytes] = set()
    tested, searched = [], []
    for name, x in properties.items():
        rules = property_rules(name, np.asarray(x, np.float64))
        if rules:
            searched.append(name)
        for rule, mask in rules:
            key = np.packbits(mask).tobytes()
            if key in seen or mask.sum() < min_size or mask.all():
                continue
            seen.add(key)
            tested.append(make_slice(correct, mask, name, rule, rule, min_size))
    adjust(tested)
    return WeakSearch(tested, searched, sum(s.flagged(alpha) for s in tested))


@dataclass
class SliceReport:
    """Everything the Slices page, the overview and metrics.json say about slices.

    Attributes:
        n, accuracy: test images and their accuracy.
        metadata: the metadata slices (None without ``data.metadata``); source: its file.
        weak: the weak-slice search on the image properties.
        min_size, alpha: the smallest slice scored and the false discovery rate.
    """

    n: int
    accuracy: float
    metadata: MetadataSlices | None
    weak: WeakSearch
    source: str | None = None
    min_size: int = MIN_SLICE
    alpha: float = ALPHA

    def flagged(self) -> list[Slice]:
        """The metadata slices flagged, then the weak slices found, most significant first."""
        meta = [s for s in (self.metadata.slices if self.metadata else []) if
                s.flagged(self.alpha)]
        return sorted(meta, key=lambda s: s.p_adjusted or 0.0) + self.weak.found(self.alpha)

    def method(self) -> dict:
        """How the slices were made and tested, for metrics.json."""
        return {"test": METHOD, "alpha": self.alpha, "min_size": self.min_size,
                "metadata": self.source,
                "columns": self.metadata.columns if self.metadata else {},
                "images_without_metadata": self.metadata.missing if self.metadata else None,
                "weak_candidates_tested": len(self.weak.tested),
                "weak_candidates_flagged": self.weak.flagged_count,
                "properties": self.weak.properties}

    def to_json(self) -> dict:
        """``slices``, ``weak_slices`` and ``slice_search`` of metrics.json."""
        weak = [{"rule": s.rule, "property": s.column, "n": s.n, "accuracy": s.accuracy,
                 "ci95": list(s.ci95), "rest_accuracy": s.rest_accuracy,
                 "p_adjusted": s.p_adjusted, "top_class": s.top_class_dict()}
                for s in self.weak.found(self.alpha)]
        return {"slices": [s.as_dict(self.alpha) for s in
                           (self.metadata.slices if self.metadata else [])],
                "weak_slices": weak, "slice_search": self.method()}


#: Seconds per test image of :func:`slice_report` (six properties, no metadata), measured on
#: the shared 2-core machine: 1000 images took 0.03 s.
SECONDS_PER_IMAGE = 3e-5


def slices_seconds(n: int, columns: int = 0) -> float:
    """Estimated seconds of :func:`slice_report` for ``n`` test images and ``columns``
    metadata columns (each costs about as much as the property search): the build plan's
    ``slices`` part."""
    return n * (1 + columns) * SECONDS_PER_IMAGE


def slice_report(correct: np.ndarray, properties: dict[str, np.ndarray],
                 columns: dict[str, list[str]] | None = None, *, missing: int = 0,
                 source: str | None = None, classes: tuple[np.ndarray, list[str]] | None = None
                 ) -> SliceReport:
    """Score the metadata slices (when ``columns`` are given) and search the weak slices.

    Args:
        correct: (N,) bool, each test image classified right.
        properties: {name: (N,) float64} image properties (NaN: unknown).
        columns: {metadata column: N values as strings} of the test images, or None.
        missing: test images with no metadata row; source: the metadata file's name.
        classes: ((N,) int true classes, class names), to name each slice's most common
            class; None: not named.
    """
    correct = np.asarray(correct, bool)
    meta = None if columns is None else metadata_slices(columns, correct, missing=missing)
    report = SliceReport(len(correct), float(correct.mean()) if len(correct) else float("nan"),
                         meta, weak_slices(properties, correct), source)
    if classes is not None:
        for s in (meta.slices if meta else []) + report.weak.tested:
            s.top_class = top_class(s.mask, *classes)
    return report


def top_class(mask: np.ndarray | None, labels: np.ndarray, names: list[str]
              ) -> tuple[str, float] | None:
    """The most common of ``labels`` ((N,) int) among ``mask`` and its share; None for an
    empty or unknown mask."""
    if mask is None or not mask.any():
        return None
    counts = np.bincount(np.asarray(labels)[mask], minlength=len(names))
    k = int(counts.argmax())
    return names[k], float(counts[k] / counts.sum())
