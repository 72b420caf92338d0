"""The data audit of a build: every split's likely label errors, duplicates, outliers and
quality flags as ranked records (``file`` as in predictions.csv: the path relative to the
data root), with counts and Wilson intervals. Numpy only: it reads the decoded images, the
probabilities and (where the prediction pass collected them) the penultimate features."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from reportgen.audit import duplicates as dup
from reportgen.audit import outliers as out
from reportgen.audit import quality as qa
from reportgen.audit.label_errors import label_issues
from reportgen.audit.pixels import measure
from reportgen.evaluate import wilson_interval

#: The splits whose predictions are out of sample (label errors are looked for there).
HELD_OUT = ("val", "test")


@dataclass
class DataIssues:
    """What the audit found, plain data (metrics.json ``data_issues`` holds the four lists).

    Attributes:
        label_errors: [{file, split, index, given, suggested, score}], score = 1 - the
            probability of the given label (higher = more suspicious), highest first.
        duplicates: [{a, b, split_a, split_b, index_a, index_b, kind, distance, hash_bits}],
            distance = feature cosine distance (lower = closer; 0 for exact copies), exact
            copies first, then near ones closest first.
        outliers: [{file, split, index, score, feature, pixel}] of the flagged test images,
            score = the outlier ratio (higher = more suspicious), highest first.
        quality: [{file, split, index, flags}], most flags first.
        summary: counts, rates and 95 % Wilson intervals (see :func:`audit_data`).
        settings: every threshold used.
        notes: what did not run, and why.
        seconds: wall time of the audit.
        estimate_s: its estimate before it ran (:func:`estimate_seconds`).
    """

    label_errors: list[dict] = field(default_factory=list)
    duplicates: list[dict] = field(default_factory=list)
    outliers: list[dict] = field(default_factory=list)
    quality: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    estimate_s: float = 0.0


def rate(count: int, n: int) -> dict:
    """{count, n, rate, ci95}: a count out of ``n`` with its 95 % Wilson interval."""
    return {"count": int(count), "n": int(n), "rate": count / n if n else float("nan"),
            "ci95": list(wilson_interval(int(count), int(n)))}


def _records(split: str, paths: list[str], index: np.ndarray) -> list[dict]:
    return [{"file": paths[int(i)], "split": split, "index": int(i)} for i in index]


def find_label_errors(splits: dict, probs: dict, names: list[str], result: DataIssues) -> None:
    """Confident learning on the held-out splits (:func:`label_issues`)."""
    for name in HELD_OUT:
        split = splits.get(name)
        if split is None or not len(split):
            continue
        found = label_issues(probs[name], split.labels)
        for rec, s, c in zip(_records(name, split.paths, found.index), found.suggested,
                             found.self_confidence, strict=True):
            rec.update(given=names[int(split.labels[rec["index"]])], suggested=names[int(s)],
                       score=1.0 - float(c))
            result.label_errors.append(rec)
        result.summary.setdefault("label_errors", {})[name] = rate(len(found.index),
                                                                   len(split))
    result.label_errors.sort(key=lambda r: -r["score"])


@dataclass
class Measures:
    """Per-split pixel measures: digests, dHashes, statistics (:mod:`.pixels`)."""

    digests: dict[str, list[str]]
    hashes: dict[str, np.ndarray]
    stats: dict[str, np.ndarray]

    @classmethod
    def of(cls, splits: dict) -> Measures:
        """The measures of every split, each read once (:func:`measure`)."""
        done = {n: measure(s.images) for n, s in splits.items()}
        return cls({n: m[0] for n, m in done.items()}, {n: m[1] for n, m in done.items()},
                   {n: m[2] for n, m in done.items()})


def find_duplicates(splits: dict, m: Measures, features: dict | None,
                    result: DataIssues) -> dict[str, set[int]]:
    """Exact and near duplicates within and across splits; return {split: indices of its
    images with a copy in train} (train's own: none)."""
    names = list(splits)
    owner = np.concatenate([np.full(len(splits[n]), k) for k, n in enumerate(names)] +
                           [np.zeros(0, np.int64)]).astype(np.int64)
    local = np.concatenate([np.arange(len(splits[n])) for n in names] + [np.zeros(0, np.int64)])
    feats = None if features is None else np.concatenate([features[n] for n in names])
    pairs = dup.duplicate_pairs([d for n in names for d in m.digests[n]],
                                np.concatenate([m.hashes[n] for n in names]), feats)
    leaked: dict[str, set[int]] = {n: set() for n in names}
    for a, b, kind, d, bits in zip(pairs.a, pairs.b, pairs.kind, pairs.distance, pairs.bits,
                                   strict=True):
        sa, sb, ia, ib = names[owner[a]], names[owner[b]], int(local[a]), int(local[b])
        result.duplicates.append({"a": splits[sa].paths[ia], "b": splits[sb].paths[ib],
                                  "split_a": sa, "split_b": sb, "index_a": ia, "index_b": ib,
                                  "kind": kind, "distance": float(d), "hash_bits": int(bits)})
        for s, i, other in ((sa, ia, sb), (sb, ib, sa)):
            if other == "train" and s != "train":
                leaked[s].add(i)
    kinds = [r["kind"] for r in result.duplicates]
    result.summary["duplicates"] = {"exact": kinds.count("exact"), "near": kinds.count("near")}
    return leaked


def leakage_summary(splits: dict, probs: dict, leaked: set[int], result: DataIssues) -> None:
    """The headline: test images with a copy in train, and test accuracy with and without
    them (labelled data only)."""
    test = splits["test"]
    result.summary["test_in_train"] = {**rate(len(leaked), len(test)),
                                       "train_images": len(splits.get("train", ()))}
    if not test.labeled or not len(test):
        return
    right = probs["test"].argmax(axis=1) == test.labels
    keep = np.ones(len(test), bool)
    keep[list(leaked)] = False
    result.summary["accuracy"] = {"all": rate(int(right.sum()), len(test)),
                                  "without_copies": rate(int(right[keep].sum()),
                                                         int(keep.sum()))}


def find_outliers(splits: dict, m: Measures, features: dict | None,
                  result: DataIssues) -> None:
    """Test images far from the training images (from each other when there are fewer than
    two training images), flagged above the 99th percentile of the val images' scores (of
    the training images' own, each against the others, without two val images)."""
    test, train = splits["test"], splits.get("train")
    same = train is None or len(train) < 2
    ref = "test" if same else "train"
    if len(test) < 2 or len(splits[ref]) < 2:
        result.notes.append("Outliers: fewer than two images to compare with; not looked for.")
        return
    if same:
        result.notes.append("Outliers: there are no training images; each test image is "
                            "compared with the other test images instead.")
    f = features if features is not None else {}
    val = splits.get("val")
    held = None if same or val is None or len(val) < 2 else \
        out.Images(m.stats["val"], f.get("val"))
    s = out.outlier_scores(out.Images(m.stats["test"], f.get("test")),
                           out.Images(m.stats[ref], f.get(ref)), held, same)
    flagged = np.flatnonzero(s.score > s.threshold)
    flagged = flagged[np.lexsort((flagged, -s.score[flagged]))]
    for rec in _records("test", test.paths, flagged):
        i = rec["index"]
        rec.update(score=float(s.score[i]), feature=float(s.feature[i]),
                   pixel=float(s.pixel[i]))
        result.outliers.append(rec)
    result.summary["outliers"] = {**rate(len(flagged), len(test)), "reference": ref,
                                  "calibration": "val" if held is not None else ref,
                                  "threshold": s.threshold, "features": features is not None}


def find_quality(splits: dict, m: Measures, result: DataIssues) -> None:
    """:func:`reportgen.audit.quality.quality_flags` over every split (medians of them all;
    size flags where the splits know their files' sizes, ``Split.sizes``)."""
    names = [n for n in splits if len(splits[n])]
    if not names:
        return
    st = np.concatenate([m.stats[n] for n in names])
    known = all(getattr(splits[n], "sizes", None) is not None for n in names)
    size = np.concatenate([splits[n].sizes for n in names]) if known else None
    flags = qa.quality_flags(st[:, 0], st[:, 4], qa.relative_sharpness(st), size)
    k = 0
    for n in names:
        for i, path in enumerate(splits[n].paths):
            if flags[k + i]:
                result.quality.append({"file": path, "split": n, "index": i,
                                       "flags": flags[k + i]})
        k += len(splits[n])
    result.quality.sort(key=lambda r: -len(r["flags"]))  # stable: split, then index order
    counts = {flag: sum(flag in r["flags"] for r in result.quality) for flag in qa.FLAGS}
    result.summary["quality"] = {**rate(len(result.quality), len(st)), "flags": counts}


#: Seconds per decoded pixel value read and measured, and per image pair whose kNN distance
#: is computed (two spaces), fitted on an idle 2-core machine to data sets of distinct images
#: (benchmarks/ESTIMATES.md): 3,000 images at 64 px 0.7 s, 28,000 at 32 px (5,000 test)
#: 1.7 s, 5,500 at 128 px 5.4 s, 1,500 at 224 px 6.2 s. Not counted: near-duplicate
#: candidates, which grow with the pairs of images whose hashes agree (a set of near-identical
#: images costs more).
SECONDS_PER_VALUE, SECONDS_PER_PAIR = 2.2e-8, 2e-9


def estimate_seconds(splits: dict) -> float:
    """The audit's cost before it runs: reading and measuring every pixel, then the outlier
    kNN of the test images (and of up to :data:`~reportgen.audit.outliers.CALIBRATION`
    reference images) against the reference; the duplicate search is near linear."""
    values = sum(len(s) * int(np.prod(s.images.shape[1:])) for s in splits.values())
    test, train = len(splits["test"]), len(splits.get("train", ()))
    ref = train if train >= 2 else test
    return SECONDS_PER_VALUE * values + SECONDS_PER_PAIR * 2 * (test + min(
        ref, out.CALIBRATION)) * ref


def settings() -> dict:
    """Every threshold of the audit, for the page and metrics.json."""
    return {"near_hash_bits": dup.HASH_BITS, "near_feature_distance": dup.FEATURE_DISTANCE,
            "outlier_k": out.K, "outlier_calibration": out.CALIBRATION,
            "quality": dict(qa.FLAGS)}


def audit_data(splits: dict, probs: dict, names: list[str], features: dict | None = None
               ) -> DataIssues:
    """Audit a data set.

    Args:
        splits: {split: :class:`~reportgen.data.folder.Split`} ("train", "val", "test"); its
            ``sizes`` (the files' sizes as stored), where known, give the size flags.
        probs: {split: (N, C) probabilities}.
        names: the class names.
        features: {split: (N, D) penultimate features}, or None (no near duplicates; outliers
            from pixel statistics alone).
    """
    t0 = time.perf_counter()
    result = DataIssues(settings=settings(), estimate_s=estimate_seconds(splits))
    m = Measures.of(splits)
    if splits["test"].labeled:
        find_label_errors(splits, probs, names, result)
    else:
        result.notes.append("Label errors: the images have no labels; not looked for.")
    if features is None:
        result.notes.append("Near duplicates: no features of the model were collected; only "
                            "exact copies were looked for, and outliers from pixel statistics.")
    leaked = find_duplicates(splits, m, features, result)
    leakage_summary(splits, probs, leaked.get("test", set()), result)
    find_outliers(splits, m, features, result)
    find_quality(splits, m, result)
    result.seconds = time.perf_counter() - t0
    return result
