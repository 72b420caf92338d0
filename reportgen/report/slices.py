"""The Slices page, the overview's sentences on slices and their metrics.json entries, from
one :class:`~reportgen.evaluate.slices.SliceReport` (plain data out; nothing recomputed)."""

from __future__ import annotations

from typing import Callable

from reportgen import figures as figs
from reportgen.report.assets import Assets
from reportgen.report.figjobs import Figures
from reportgen.report.tables import Table, with_interval
from reportgen.evaluate.slices import METHOD, Slice, SliceReport
from reportgen.text import plural

#: Slices drawn in the forest plot at most (flagged first, then by adjusted p-value).
FOREST_ROWS = 40


def _drawn(report: SliceReport) -> list[Slice]:
    """The slices of the forest plot: every scored metadata slice and every weak slice found,
    cut to :data:`FOREST_ROWS` (flagged first, then the smallest adjusted p-values)."""
    meta = [s for s in (report.metadata.slices if report.metadata else []) if s.scored]
    rows = meta + report.weak.found(report.alpha)
    if len(rows) <= FOREST_ROWS:
        return rows
    keep = sorted(rows, key=lambda s: (not s.flagged(report.alpha), s.p_adjusted))
    chosen = {id(s) for s in keep[:FOREST_ROWS]}
    return [s for s in rows if id(s) in chosen]


def slices_figure(figures: Figures, report: SliceReport | None) -> dict | None:
    """Queue the forest plot of ``report`` on ``figures``; its page data, or None when no
    slice was scored."""
    rows = _drawn(report) if report is not None else []
    if report is None or not rows:
        return None
    data = [{"label": s.rule, "accuracy": s.accuracy, "ci95": list(s.ci95), "n": s.n,
             "flagged": s.flagged(report.alpha)} for s in rows]
    flagged = sum(s.flagged(report.alpha) for s in rows)
    total = len([s for s in (report.metadata.slices if report.metadata else []) if s.scored]) \
        + len(report.weak.found(report.alpha))
    cut = f" The {len(rows)} most significant of {total} are drawn." if total > len(rows) else ""
    return figures.add(
        "slices_forest", figs.slice_forest, data, overall=report.accuracy,
        alt=f"Forest plot of test accuracy in {plural(len(rows), 'slice')}, "
            f"{flagged} flagged as significantly worse",
        caption=f"Test accuracy per slice with its 95 % Wilson interval; dashed line: all "
                f"{report.n} test images ({100 * report.accuracy:.1f} %); red: significantly "
                f"worse than the other images ({METHOD}).{cut}")


def _p(value: float | None) -> str | None:
    return None if value is None else f"{value:.2g}"


def _top(s: Slice) -> str | None:
    """"blue (100 %)": the slice's most common true class and its share."""
    return None if s.top_class is None else f"{s.top_class[0]} ({100 * s.top_class[1]:.0f} %)"


def metadata_table(report: SliceReport) -> Table | None:
    """Every scored metadata slice: accuracy with its interval, the rest's, adjusted p."""
    scored = [s for s in (report.metadata.slices if report.metadata else []) if s.scored]
    if not scored:
        return None
    rows = [[s.column, s.value, s.n, with_interval(s.accuracy, s.ci95, 1, percent=True),
             f"{100 * s.rest_accuracy:.1f} %", _p(s.p_adjusted),
             "worse" if s.flagged(report.alpha) else "", _top(s)] for s in scored]
    marks = {(i, 6) for i, s in enumerate(scored) if s.flagged(report.alpha)}
    return Table("slices", ["column", "value", "images", "accuracy [95 % CI]",
                            "other images", "adjusted p", "flagged", "most common class"], rows,
                 f"Test accuracy per metadata slice ({report.source}; {METHOD}; flagged: "
                 f"adjusted p < {report.alpha:g} and below the other images)", marks=marks)


def weak_table(report: SliceReport) -> Table | None:
    """The weak slices found, one per property."""
    found = report.weak.found(report.alpha)
    if not found:
        return None
    return Table("weak_slices", ["rule", "images", "accuracy [95 % CI]", "other images",
                                 "adjusted p", "most common class"],
                 [[s.rule, s.n, with_interval(s.accuracy, s.ci95, 1, percent=True),
                   f"{100 * s.rest_accuracy:.1f} %", _p(s.p_adjusted), _top(s)]
                  for s in found],
                 f"Weak slices found from image properties (the most significant rule per "
                 f"property; {len(report.weak.tested)} candidate rules tested together; a "
                 f"slice that is mostly one class may be that class's recall in other words: "
                 f"compare the per-class table)")


def search_sentence(report: SliceReport) -> str:
    """How the weak slices were searched, and why clean data raises no false alarm."""
    w = report.weak
    if not w.tested:
        return ("No weak-slice search: no image property varies enough over the test images "
                f"to cut them into slices of {report.min_size} or more.")
    return (f"{plural(len(w.tested), 'candidate rule')} on {len(w.properties)} image "
            f"properties ({', '.join(w.properties)}: tails at the 10, 20, 30 and 50 % "
            f"quantiles from each end, and the middle quintile bins, those of "
            f"{report.min_size} images or more, each subset once) were tested, each slice "
            f"against the other test images, with Benjamini–Hochberg over all "
            f"{len(w.tested)} together (false discovery rate {report.alpha:g}): searching "
            f"many rules on data with no weak slice flags one in at most about "
            f"{100 * report.alpha:.0f} % of reports. {plural(w.flagged_count, 'rule')} "
            f"flagged; the most significant per property is listed.")


def summary(assets: Assets, report: SliceReport | None, table: Callable[[Assets, Table], dict]
            ) -> dict | None:
    """What the overview, the Slices page and report.md say about slices: the flagged ones in
    words, the tables (page data by ``table``, :func:`reportgen.report.build.table`), how the
    search ran; None without labels."""
    if report is None:
        return None
    meta, t_meta, t_weak = report.metadata, metadata_table(report), weak_table(report)
    listed = [s for s in (meta.slices if meta else []) if not s.scored]
    return {"flagged": [s.sentence() for s in report.flagged()], "n": report.n,
            "accuracy": report.accuracy, "source": report.source, "min_size": report.min_size,
            "method": METHOD, "columns": meta.columns if meta else {},
            "missing": meta.missing if meta else 0,
            "listed": [{"rule": s.rule, "n": s.n,
                        "why": (f"under {report.min_size} images" if s.n < report.min_size
                                else "every test image: no other images to compare")}
                       for s in listed],
            "t_meta": table(assets, t_meta) if t_meta else None,
            "t_weak": table(assets, t_weak) if t_weak else None,
            "search": search_sentence(report)}


def slices_json(report: SliceReport | None) -> dict:
    """``slices``, ``weak_slices`` and ``slice_search`` of metrics.json (empty lists and None
    for photos without labels)."""
    if report is None:
        return {"slices": [], "weak_slices": [], "slice_search": None}
    return report.to_json()
