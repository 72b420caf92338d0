"""What a build costs per extra test image, from the result rows of two backbone runs: shared
by backbones.py (BACKBONES.md) and run.py (the targets in RESULTS.md), which import it and not
each other's."""

from __future__ import annotations


def extras_s(row: dict) -> float:
    """Seconds of a build's planned extras: every explain part but the test set's GradCAM
    (the sample images, class grid, quality table, Layers page), which the default budget
    lets grow with the test set."""
    return sum(v for k, v in row["explain_parts"].items() if k != "test set")


def marginal_cost(a: dict, b: dict) -> dict:
    """What each extra test image of run ``b`` over run ``a`` costs: wall seconds in all, and
    without the planned extras (predicting, GradCAM, the pointing game, the galleries and
    errors page, reading and writing), each also in predict passes' worth of one image (the
    larger run's pass over its own test images)."""
    extra = b["test_images"] - a["test_images"]
    predict_one = b["predict_pass_s"] / b["test_images"]
    total = (b["wall_s"] - a["wall_s"]) / extra
    work = ((b["wall_s"] - extras_s(b)) - (a["wall_s"] - extras_s(a))) / extra
    return {"per_image_s": total, "passes": total / predict_one, "work_s": work,
            "work_passes": work / predict_one, "predict_one_s": predict_one,
            "memory_ratio": b["peak_rss_mb"] / a["peak_rss_mb"]}
