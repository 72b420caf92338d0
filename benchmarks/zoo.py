"""One whole default build per keras.applications family at a small input, against one predict
pass of the same test images measured in the same run. Writes benchmarks/ZOO.md (and ZOO.json).

    python benchmarks/zoo.py                                  # the families in FAMILIES
    python benchmarks/zoo.py --family ConvNeXtTiny,MobileNetV2 --images 6

Each family is built from keras.applications with weights=None, a 5-class head and its
smallest input (64 px, or the family's minimum), its BatchNorm statistics set from the data
(so maps are not degenerate), saved, and built with ``model.source = "load"`` in a fresh
process with the default settings (the planner's default budget). Per build: wall and CPU
seconds, the build process's peak memory (VmHWM), the plan's estimate against the measured
seconds of every explain part, and the wall time over one warm predict pass. No timing is
asserted anywhere; the figures are written down with the machine's load average, since the
machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from backbones import how_measured, predict_pass  # noqa: E402
from run import make_dataset, run_build  # noqa: E402

#: keras.applications constructor -> (smallest input side, model.preprocess of the build).
FAMILIES = {
    "ConvNeXtTiny": (64, "none"),
    "MobileNetV2": (64, "tf"),
    "ResNet50": (64, "caffe"),
    "EfficientNetB0": (64, "none"),
    "DenseNet121": (64, "torch"),
    "MobileNetV3Small": (64, "none"),
    "VGG16": (64, "caffe"),
    "ResNet50V2": (64, "tf"),
    "Xception": (71, "tf"),
    "InceptionV3": (75, "tf"),
    "NASNetMobile": (64, "tf"),
}


def saved_family(name: str, data: Path, work: Path) -> Path:
    """keras.applications ``name`` (weights None, 5 classes, its small input), BatchNorm
    calibrated on the training images and a few test images, saved as .keras."""
    import keras
    import numpy as np

    from reportgen.data import load_dataset
    from reportgen.model import calibrate_batchnorm
    from reportgen.pipeline.stages import preprocessed

    size, mode = FAMILIES[name]
    keras.utils.set_random_seed(0)
    model = getattr(keras.applications, name)(weights=None, input_shape=(size, size, 3),
                                              classes=5)
    ds = load_dataset(data, size=(size, size))
    x = np.concatenate([ds.splits["train"].images, ds.splits["test"].images[:14]])
    calibrate_batchnorm(model, preprocessed(x, mode), max_images=64)
    path = work / f"{name}.keras"
    model.save(path)
    return path


def measure(name: str, n_test: int, work: Path) -> dict:
    """One family's row: its build and its predict pass, in fresh state."""
    import backbones

    size, mode = FAMILIES[name]
    cache = work / f"cache-{size}"
    data = make_dataset(work / f"data-{size}-{n_test}", n_test, cache, size=size)
    model = saved_family(name, data, work)
    backbones.SIZE = size  # predict_pass reads the images at the benchmark's size
    predict_s = predict_pass(model, data, mode)
    shutil.rmtree(cache / "builds", ignore_errors=True)
    load = os.getloadavg()
    build = run_build(data, model, work / f"site-{name}", cache,
                      ["--set", f"model.preprocess={mode}"])
    shutil.rmtree(work / f"site-{name}", ignore_errors=True)
    return {"family": name, "size": size, "test_images": build["n_test"],
            "predict_pass_s": predict_s, **build, "ratio": build["wall_s"] / predict_s,
            "load_before": load[0], "load_after": os.getloadavg()[0],
            "date": time.strftime("%Y-%m-%d %H:%M")}


def merged(row: dict) -> list[dict]:
    """The rows of ZOO.json with ``row`` in place of an earlier one of the same family and
    test-set size (so families can be run one at a time)."""
    path = HERE / "ZOO.json"
    rows = json.loads(path.read_text()) if path.exists() else []
    rows = [r for r in rows if (r["family"], r["test_images"]) != (row["family"],
                                                                    row["test_images"])]
    order = list(FAMILIES)
    return sorted(rows + [row], key=lambda r: (order.index(r["family"]), r["test_images"]))


def write(results: list[dict]) -> None:
    (HERE / "ZOO.json").write_text(json.dumps(results, indent=1))
    lines = ["# The keras.applications zoo at small inputs", "",
             how_measured() + "Peak memory is the build process's own "
             "high-water mark (VmHWM). Load is the machine's 1-minute load average before and "
             "after the build: where it is above the core count the machine was shared and "
             "wall seconds are inflated; CPU seconds (user + system of the build process, its "
             "figure worker apart) are the steadier figure. Reproduce: "
             "`python benchmarks/zoo.py --family ConvNeXtTiny,MobileNetV2 --images 6`.", "",
             "| family | px | test images | wall s | CPU s | peak MB | predict pass s | "
             "wall / predict | budget s | planned s | explain s | trace s | load | run |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for r in results:
        plan = r["plan"]
        lines.append(f"| {r['family']} | {r['size']} | {r['test_images']} | {r['wall_s']:.0f} "
                     f"| {r['cpu_s']:.0f} | {r['peak_rss_mb']:.0f} | "
                     f"{r['predict_pass_s']:.2f} | {r['ratio']:.0f}x | "
                     f"{plan.get('budget_s', 0):.0f} | "
                     f"{sum(plan.get('estimate_s', {}).values()):.0f} | "
                     f"{r['stages'].get('explain', 0):.0f} | "
                     f"{plan.get('trace_s', 0):.1f} | "
                     f"{r['load_before']:.1f} → {r['load_after']:.1f} | {r['date']} |")
    lines += ["", "Stages (s) per build:", ""]
    for r in results:
        stages = ", ".join(f"{k} {v:.0f}" for k, v in r["stages"].items())
        lines.append(f"- {r['family']}: {stages}")
    lines += ["", "Explain parts (s) per build, measured (planned):", ""]
    for r in results:
        est = r["plan"].get("estimate_s", {})
        parts = ", ".join(f"{k} {v:.0f} ({est.get(k, 0):.0f})"
                          for k, v in r["explain_parts"].items())
        lines.append(f"- {r['family']}: {parts}")
    lines += ["", "Reduced by the plan:", ""]
    for r in results:
        lines.append(f"- {r['family']}: {'; '.join(r['plan'].get('reduced', [])) or 'nothing'}")
    notes = HERE / "ZOO.notes.md"  # the analysis, kept by hand across reruns
    if notes.exists():
        lines += ["", notes.read_text().rstrip()]
    (HERE / "ZOO.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--family", default="ConvNeXtTiny,MobileNetV2,ResNet50,EfficientNetB0,"
                                        "DenseNet121")
    ap.add_argument("--images", type=int, default=6)
    ap.add_argument("--work", default=None)
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="reportgen-zoo-"))
    for name in args.family.split(","):
        if name not in FAMILIES:
            sys.exit(f"--family: unknown {name!r}; known: {', '.join(FAMILIES)}")
        row = measure(name, args.images, work)
        print(f"{name}: {row['wall_s']:.0f} s wall, {row['cpu_s']:.0f} s CPU "
              f"({row['ratio']:.0f}x a predict pass of {row['predict_pass_s']:.2f} s), peak "
              f"{row['peak_rss_mb']:.0f} MB, load {row['load_before']:.1f}", flush=True)
        write(merged(row))


if __name__ == "__main__":
    main()
