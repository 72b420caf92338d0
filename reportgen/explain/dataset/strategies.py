"""Strategies: the test images of one class clustered by where their GradCAM puts the evidence.

After SpRAy (Lapuschkin et al., "Unmasking Clever Hans predictors", 2019): every map of a
class is resampled to :data:`SIDE` x :data:`SIDE` cells (bilinear, half-pixel centres) and
scaled to sum to one (an energy distribution over the image); the maps are joined by a
:data:`NEIGHBOURS`-nearest-neighbour affinity (Gaussian of the Euclidean distance, each map's
scale the distance to its k-th neighbour, Zelnik-Manor & Perona), and clustered spectrally
(Ng, Jordan & Weiss: the first k eigenvectors of the normalised Laplacian, rows scaled to unit
length, k-means with a fixed seed). k is the eigengap: the k in 1..:data:`MAX_STRATEGIES`
with the largest gap between the k-th and (k+1)-th smallest eigenvalues.

A strategy is *flagged* when its evidence lies off the object: with object boxes, when more
than half of its map energy lies outside the boxes and the boxes get less than
:data:`BOX_RATIO` of the energy a uniform map would give them (their share of the image
area); without boxes, when at least :data:`BORDER_FLAG` of its energy lies in the border band
(the outer :data:`BORDER` of each side), which says where the evidence is, not whether it is
the object. With boxes a strategy is also flagged when its boxes hold under
:data:`WEAK_RATIO` times a uniform map's share and under :data:`RELATIVE` of the ratio of the
class's other strategies (:func:`flag_against_class`). numpy only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

#: Side of the grid every map is resampled to before clustering.
SIDE = 16
#: Neighbours of each map in the affinity (fewer when the class has fewer images).
NEIGHBOURS = 10
#: Classes with fewer test images are not clustered (a note says so).
MIN_IMAGES = 12
#: Images per class clustered at most (a seeded sample; the rest join the strategy with the
#: nearest mean map), which bounds the cost: the eigendecomposition is cubic in it.
MAX_CLUSTERED = 500
#: Most strategies per class the eigengap may choose.
MAX_STRATEGIES = 6
#: Width of the border band, as a fraction of the image side (each of the four sides).
BORDER = 0.125
#: Border share from which a strategy is flagged where there are no boxes (a uniform map puts
#: 0.44 of its energy in the band).
BORDER_FLAG = 0.6
#: With boxes: flagged when the in-box energy is below this fraction of the box's area share.
BOX_RATIO = 0.5
#: With boxes, also flagged when the box holds under this many times a uniform map's share ...
WEAK_RATIO = 1.5
#: ... and under this share of the ratio of the class's other strategies (see
#: :func:`flag_against_class`).
RELATIVE = 0.75
#: Exemplars shown per kind (right, wrong) and strategy.
EXEMPLARS = 4


@dataclass
class Strategy:
    """One cluster of a class's maps.

    Attributes:
        members: test indices, in test order.
        correct: how many members the model classified right.
        accuracy, ci: correct / size and its 95 % Wilson interval (None, None unlabeled).
        border_share: mean share of map energy in the border band, in [0, 1].
        box_outside_share: mean share of energy outside the object box over the members
            with a box (None without boxes); box_area: the boxes' mean share of the image.
        flagged: whether the evidence lies off the object (see the module docstring);
            where: the region of the mean map's centre of mass ("lower-right corner").
        mean_map: (SIDE, SIDE) float32 mean of the normalised maps, max 1.
        representative: the member whose map is nearest the mean.
        right, wrong: exemplar members classified right / wrong, nearest the mean first.
    """

    members: list[int]
    correct: int
    accuracy: float | None
    ci: tuple[float, float] | None
    border_share: float
    box_outside_share: float | None
    box_area: float | None
    flagged: bool
    where: str
    mean_map: np.ndarray
    representative: int
    right: list[int] = field(default_factory=list)
    wrong: list[int] = field(default_factory=list)


@dataclass
class ClassStrategies:
    """The strategies of one class: ``eigenvalues`` are the smallest of the normalised
    Laplacian (for the page), ``note`` why there are none (too few images)."""

    cls: int
    size: int
    strategies: list[Strategy] = field(default_factory=list)
    eigenvalues: list[float] = field(default_factory=list)
    note: str = ""


def resample(maps: np.ndarray, side: int = SIDE) -> np.ndarray:
    """(N, h, w) maps bilinearly resampled to (N, side, side) float64 (half-pixel centres,
    edges clamped)."""
    maps = np.asarray(maps, np.float64)
    n, h, w = maps.shape

    def axis(m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        c = np.clip((np.arange(side) + 0.5) * m / side - 0.5, 0, m - 1)
        lo = np.floor(c).astype(int)
        return lo, np.minimum(lo + 1, m - 1), c - lo

    y0, y1, fy = axis(h)
    x0, x1, fx = axis(w)
    rows = maps[:, y0] * (1 - fy)[None, :, None] + maps[:, y1] * fy[None, :, None]
    return rows[:, :, x0] * (1 - fx) + rows[:, :, x1] * fx


def normalised(maps: np.ndarray) -> np.ndarray:
    """(N, h, w) non-negative maps on the :data:`SIDE` grid, each summing to one (an all-zero
    map becomes uniform)."""
    r = np.clip(resample(maps), 0, None)
    total = r.sum(axis=(1, 2), keepdims=True)
    return np.where(total > 0, r / np.where(total > 0, total, 1), 1.0 / (SIDE * SIDE))


def knn_affinity(x: np.ndarray, k: int = NEIGHBOURS) -> np.ndarray:
    """(N, N) symmetric affinity of the rows of ``x`` (N, D): exp(-d_ij^2 / (s_i s_j)) where j
    is among the ``k`` nearest neighbours of i or i among j's, 0 elsewhere and on the
    diagonal; s_i the distance to i's k-th neighbour (a small floor for duplicates)."""
    sq = (x * x).sum(1)
    d = np.sqrt(np.clip(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0, None))
    np.fill_diagonal(d, np.inf)
    k = max(1, min(k, len(x) - 1))
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    scale = np.maximum(d[np.arange(len(x)), order[:, -1]], 1e-12)
    near = np.zeros(d.shape, bool)
    near[np.arange(len(x))[:, None], order] = True
    near |= near.T
    a = np.exp(-np.where(near, d, 0) ** 2 / (scale[:, None] * scale[None, :]))
    return np.where(near, a, 0.0)


def laplacian_spectrum(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (ascending) and eigenvectors of I - D^-1/2 A D^-1/2 for affinity ``a``."""
    deg = a.sum(1)
    inv = np.where(deg > 0, 1 / np.sqrt(np.where(deg > 0, deg, 1)), 0)
    lap = np.eye(len(a)) - inv[:, None] * a * inv[None, :]
    vals, vecs = np.linalg.eigh((lap + lap.T) / 2)
    return vals, vecs


def eigengap(vals: np.ndarray, cap: int = MAX_STRATEGIES) -> int:
    """The k in 1..cap (and below the number of eigenvalues) with the largest gap
    vals[k] - vals[k-1] (ascending eigenvalues, 0-based)."""
    top = min(cap, len(vals) - 1)
    if top < 1:
        return 1
    gaps = np.diff(vals[:top + 1])
    return int(np.argmax(gaps)) + 1


def kmeans(x: np.ndarray, k: int, seed: int, tries: int = 10, steps: int = 100) -> np.ndarray:
    """Labels (N,) of k-means on the rows of ``x`` (k-means++ starts, ``tries`` restarts, the
    lowest inertia kept), seeded."""
    rng = np.random.default_rng(seed)
    best, best_cost = np.zeros(len(x), int), np.inf
    for _ in range(tries):
        centres = [x[rng.integers(len(x))]]
        for _ in range(1, k):
            d = np.min([((x - c) ** 2).sum(1) for c in centres], axis=0)
            p = d / d.sum() if d.sum() > 0 else None
            centres.append(x[rng.choice(len(x), p=p)])
        c = np.array(centres)
        for _ in range(steps):
            labels = ((x[:, None] - c[None]) ** 2).sum(2).argmin(1)
            new = np.array([x[labels == j].mean(0) if (labels == j).any() else c[j]
                            for j in range(k)])
            if np.allclose(new, c):
                break
            c = new
        cost = ((x - c[labels]) ** 2).sum()
        if cost < best_cost:
            best, best_cost = labels, cost
    return best


def spectral_clusters(x: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Cluster the rows of ``x`` (N, D): labels (N,) int numbered by size (0 the largest),
    and the smallest Laplacian eigenvalues (up to MAX_STRATEGIES + 1)."""
    vals, vecs = laplacian_spectrum(knn_affinity(x))
    k = eigengap(vals)
    if k == 1:
        return np.zeros(len(x), int), vals[:MAX_STRATEGIES + 1]
    emb = vecs[:, :k]
    emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    labels = kmeans(emb, k, seed)
    order = np.argsort(-np.bincount(labels, minlength=k), kind="stable")
    return np.argsort(order)[labels], vals[:MAX_STRATEGIES + 1]


def sampled_clusters(x: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """:func:`spectral_clusters` of the rows of ``x`` (N, D), on a seeded sample of
    :data:`MAX_CLUSTERED` rows when there are more; every other row joins the cluster whose
    mean is nearest (Euclidean)."""
    if len(x) <= MAX_CLUSTERED:
        return spectral_clusters(x, seed)
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(len(x), MAX_CLUSTERED, replace=False))
    part, vals = spectral_clusters(x[sample], seed)
    means = np.array([x[sample][part == k].mean(0) for k in range(int(part.max()) + 1)])
    labels = ((x[:, None, :] - means[None]) ** 2).sum(2).argmin(1)
    labels[sample] = part
    return labels, vals


def border_mask(side: int = SIDE, width: float = BORDER) -> np.ndarray:
    """(side, side) bool: the cells within ``width`` * side of an edge."""
    b = max(1, int(round(width * side)))
    m = np.zeros((side, side), bool)
    m[:b], m[-b:], m[:, :b], m[:, -b:] = True, True, True, True
    return m


def box_shares(maps: np.ndarray, boxes: np.ndarray, image_hw: tuple[int, int]
               ) -> tuple[np.ndarray, np.ndarray]:
    """Per map (N, SIDE, SIDE, summing to one) with boxes (N, 4) [x0, y0, x1, y1] in pixels
    of images ``image_hw``: the share of energy outside the box and the box's share of the
    image area, each (N,) float64, NaN where the box is missing."""
    h, w = image_hw
    cells = (np.arange(SIDE) + 0.5) / SIDE
    out, area = np.full(len(maps), np.nan), np.full(len(maps), np.nan)
    for i, (x0, y0, x1, y1) in enumerate(np.asarray(boxes, np.float64)):
        if not np.isfinite([x0, y0, x1, y1]).all():
            continue
        inside = ((cells[:, None] * h >= y0) & (cells[:, None] * h <= y1)
                  & (cells[None, :] * w >= x0) & (cells[None, :] * w <= x1))
        out[i] = 1.0 - maps[i][inside].sum()
        area[i] = inside.mean()
    return out, area


_ROWS, _COLS = ("upper", "middle", "lower"), ("left", "centre", "right")


def region(mean_map: np.ndarray) -> str:
    """Where the centre of mass of ``mean_map`` (side, side) lies, in words: "the
    lower-right corner", "the top edge", "the centre", ... (thirds of each axis)."""
    m = np.clip(mean_map, 0, None)
    total = m.sum() or 1.0
    side = m.shape[0]
    cy = float((m.sum(1) * (np.arange(side) + 0.5)).sum() / total / side)
    cx = float((m.sum(0) * (np.arange(m.shape[1]) + 0.5)).sum() / total / m.shape[1])
    r, c = min(2, int(cy * 3)), min(2, int(cx * 3))
    if r == 1 and c == 1:
        return "the centre"
    if r != 1 and c != 1:
        return f"the {_ROWS[r]}-{_COLS[c]} corner"
    if r == 1:
        return f"the {_COLS[c]} edge"
    return "the top edge" if r == 0 else "the bottom edge"


def is_flagged(border_share: float, outside: float | None, box_area: float | None) -> bool:
    """The flag rule of the module docstring."""
    if outside is not None and box_area is not None:
        return outside > 0.5 and (1.0 - outside) < BOX_RATIO * box_area
    return border_share >= BORDER_FLAG


def _strategy(norm: np.ndarray, idx: np.ndarray, right: np.ndarray, boxes: np.ndarray,
              image_hw: tuple[int, int], labeled: bool) -> Strategy:
    """One strategy from its members' normalised maps ``norm`` (n, SIDE, SIDE), test indices
    ``idx``, correctness ``right`` (n,) bool and boxes (n, 4)."""
    from reportgen.evaluate import wilson_interval

    mean = norm.mean(0)
    order = np.argsort(((norm - mean) ** 2).sum((1, 2)), kind="stable")
    border = float(norm[:, border_mask()].sum(1).mean())
    outside, area = box_shares(norm, boxes, image_hw)
    has = np.isfinite(outside)
    out_share = float(outside[has].mean()) if has.any() else None
    box_area = float(area[has].mean()) if has.any() else None
    n, ok = len(idx), int(right.sum())
    return Strategy(
        members=sorted(int(i) for i in idx), correct=ok,
        accuracy=ok / n if labeled else None,
        ci=tuple(wilson_interval(ok, n)) if labeled else None,  # type: ignore[arg-type]
        border_share=border, box_outside_share=out_share, box_area=box_area,
        flagged=is_flagged(border, out_share, box_area), where=region(mean),
        mean_map=(mean / max(float(mean.max()), 1e-12)).astype(np.float32),
        representative=int(idx[order[0]]),
        right=[int(idx[j]) for j in order if right[j]][:EXEMPLARS],
        wrong=[int(idx[j]) for j in order if not right[j]][:EXEMPLARS])


def class_strategies(cls: int, maps: np.ndarray, idx: np.ndarray, right: np.ndarray,
                     boxes: np.ndarray, image_hw: tuple[int, int],
                     seed: int = 0) -> ClassStrategies:
    """The strategies of class ``cls`` from the maps (n, h, w) of its test images ``idx``
    (n,), whether each was classified right (n,) bool (all True for unlabeled photos grouped
    by prediction: then no accuracy), their boxes (n, 4) and the image size (H, W)."""
    out = ClassStrategies(cls, len(idx))
    if len(idx) < MIN_IMAGES:
        out.note = (f"{len(idx)} test images: too few to cluster (at least {MIN_IMAGES} "
                    "are needed).")
        return out
    norm = normalised(maps)
    labels, vals = sampled_clusters(norm.reshape(len(norm), -1), seed)
    out.eigenvalues = [float(v) for v in vals]
    if len(idx) > MAX_CLUSTERED:
        out.note = (f"Clustered on a seeded sample of {MAX_CLUSTERED} of its {len(idx)} test "
                    "images; the others joined the strategy with the nearest mean map.")
    for k in range(int(labels.max()) + 1):
        sel = labels == k
        out.strategies.append(_strategy(norm[sel], idx[sel], right[sel], boxes[sel], image_hw,
                                        True))
    flag_against_class(out.strategies)
    return out


def box_ratio(share_outside: float, area: float) -> float:
    """How many times its area's share of the energy the box holds (1: a uniform map)."""
    return (1.0 - share_outside) / max(area, 1e-12)


def flag_against_class(strategies: list[Strategy]) -> None:
    """Also flag a strategy whose box holds under :data:`WEAK_RATIO` times a uniform map's
    share and under :data:`RELATIVE` of the ratio of the class's other strategies pooled
    (with more than half its energy off the box): diffuse maps of a small model put a learned
    mark's images well below the object-focused rest, though not below :data:`BOX_RATIO`."""
    boxed = [(s, float(s.box_outside_share), float(s.box_area), len(s.members))
             for s in strategies if s.box_outside_share is not None and s.box_area]
    for s, out, area, _ in boxed:
        rest = [b for b in boxed if b[0] is not s]
        if not rest or s.flagged or out <= 0.5:
            continue
        n = sum(b[3] for b in rest)
        inside = sum(b[3] * (1.0 - b[1]) for b in rest) / n
        rest_area = sum(b[3] * b[2] for b in rest) / n
        mine = box_ratio(out, area)
        s.flagged = mine < WEAK_RATIO and mine < RELATIVE * box_ratio(1.0 - inside, rest_area)


def split_strategies(class_maps: dict[int, np.ndarray], labels: np.ndarray,
                     right: np.ndarray | None, boxes: np.ndarray, image_hw: tuple[int, int],
                     seed: int = 0) -> list[ClassStrategies]:
    """:func:`class_strategies` of every class in ``class_maps`` ({class: (N_c, h, w) maps of
    the test images whose (true, or for unlabeled photos predicted) class it is, in test
    order}); ``labels`` (N,) those classes, ``right`` (N,) bool or None when unlabeled."""
    out = []
    for c, maps in sorted(class_maps.items()):
        idx = np.flatnonzero(labels == c)
        ok = right[idx] if right is not None else np.ones(len(idx), bool)
        cs = class_strategies(c, maps, idx, ok, boxes[idx], image_hw, seed)
        if right is None:
            for s in cs.strategies:
                s.accuracy, s.ci = None, None
        out.append(cs)
    return out


def strategy_ids(result: list[ClassStrategies], n: int) -> np.ndarray:
    """(n,) int32: for each test image the index of its strategy in the flat list of every
    class's strategies (class order, then strategy order); -1 where not clustered. The
    explorer colours points by it."""
    ids = np.full(n, -1, np.int32)
    k = 0
    for cs in result:
        for s in cs.strategies:
            ids[s.members] = k
            k += 1
    return ids


def class_maps(result, labels: np.ndarray, n_classes: int) -> dict[int, np.ndarray]:
    """{class: (N_c, h, w) float32 GradCAM of that class} for the test images of each class:
    the predicted class's map where it is the class, the true class's map of the errors."""
    maps = np.asarray(result.test_maps, np.float32)
    for i, m in result.true_maps.items():
        maps[i] = m
    return {c: maps[labels == c] for c in range(n_classes) if (labels == c).any()}


def explain_strategies(result, split, probs: np.ndarray, seed: int = 0) -> None:
    """Fill ``result.strategies`` and ``result.strategy_ids`` from its test maps (the true
    class of labeled images, the predicted class of unlabeled photos); time it."""
    if result.test_maps is None or not len(split):
        return
    t0 = time.perf_counter()
    pred = probs.argmax(1)
    labels = split.labels if split.labeled else pred
    right = (pred == split.labels) if split.labeled else None
    maps = class_maps(result, labels, probs.shape[1])
    result.strategies = split_strategies(maps, labels, right, split.boxes,
                                         split.images.shape[1:3], seed)
    result.strategy_ids = strategy_ids(result.strategies, len(split))
    result.seconds["strategies"] = time.perf_counter() - t0
