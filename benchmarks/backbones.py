"""Whole default builds on real backbones at 224 px, against one predict pass of the same test
images measured in the same run. Writes benchmarks/BACKBONES.md (and BACKBONES.json).

    python benchmarks/backbones.py                           # MobileNetV2, ResNet50, VGG19
    python benchmarks/backbones.py --arch mobilenetv2 --images 250,500

Each backbone is built from keras.applications with weights=None and a 5-class head, its
BatchNorm statistics set from a batch of the data (so maps are not degenerate), saved, and
built with ``model.source = "load"`` in a fresh process with the default settings (the
planner's default budget). No timing is asserted anywhere; the figures are written down.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from costs import extras_s, marginal_cost  # noqa: E402
from run import make_dataset, run_build  # noqa: E402

SIZE = 224
ARCHS = {"mobilenetv2": "MobileNetV2", "resnet50": "ResNet50", "vgg19": "VGG19"}
#: Each backbone's own keras.applications preprocessing (model.preprocess of the build).
PREPROCESS = {"mobilenetv2": "tf", "resnet50": "caffe", "vgg19": "caffe"}


def saved_backbone(arch: str, data: Path, work: Path) -> Path:
    """keras.applications ``arch`` (weights None, 5 classes, 224 px), BatchNorm calibrated on
    up to 64 training and test images, saved as .keras."""
    import keras

    from reportgen.data import load_dataset
    from reportgen.model import calibrate_batchnorm
    from reportgen.pipeline.stages import preprocessed

    keras.utils.set_random_seed(0)
    model = getattr(keras.applications, ARCHS[arch])(weights=None, input_shape=(SIZE, SIZE, 3),
                                                     classes=5)
    ds = load_dataset(data, size=(SIZE, SIZE))
    x = np.concatenate([ds.splits["train"].images, ds.splits["test"].images[:14]])
    calibrate_batchnorm(model, preprocessed(x, PREPROCESS[arch]), max_images=64)
    path = work / f"{arch}.keras"
    model.save(path)
    return path


def predict_pass(model_path: Path, data: Path, mode: str) -> float:
    """Seconds of one warm predict pass over the test images (reportgen's compiled forward,
    preprocessing included)."""
    from reportgen.data import load_dataset
    from reportgen.model import load_model, predict_outputs
    from reportgen.pipeline.stages import preprocessed

    x = load_dataset(data, size=(SIZE, SIZE)).splits["test"].images
    m = load_model(model_path)

    def prep(images):
        return preprocessed(images, mode)
    predict_outputs(m, x[:32], preprocess=prep)
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        predict_outputs(m, x, preprocess=prep)
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default=",".join(ARCHS))
    ap.add_argument("--images", default="500")
    ap.add_argument("--work", default=None)
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="reportgen-backbones-"))
    cache = work / "cache"
    for arch in args.arch.split(","):
        for n in (int(v) for v in args.images.split(",")):
            data = make_dataset(work / f"data-{n}", n, cache, size=SIZE)
            model = saved_backbone(arch, data, work)
            predict_s = predict_pass(model, data, PREPROCESS[arch])
            shutil.rmtree(cache / "builds", ignore_errors=True)
            build = run_build(data, model, work / f"site-{arch}-{n}", cache,
                              ["--set", f"model.preprocess={PREPROCESS[arch]}"])
            shutil.rmtree(work / f"site-{arch}-{n}", ignore_errors=True)
            row = {"arch": arch, "test_images": build["n_test"], "predict_pass_s": predict_s,
                   **build, "ratio": build["wall_s"] / predict_s,
                   "date": time.strftime("%Y-%m-%d %H:%M")}
            print(f"{arch} {n}: {build['wall_s']:.0f} s wall ({row['ratio']:.0f}x a predict "
                  f"pass of {predict_s:.1f} s), peak {build['peak_rss_mb']:.0f} MB, reduced: "
                  f"{build['plan'].get('reduced')}", flush=True)
            write(merged(row))


def merged(row: dict) -> list[dict]:
    """The rows of BACKBONES.json with ``row`` in place of an earlier one of the same backbone
    and test-set size (so backbones can be run one at a time)."""
    path = HERE / "BACKBONES.json"
    rows = json.loads(path.read_text()) if path.exists() else []
    rows = [r for r in rows if (r["arch"], r["test_images"]) != (row["arch"],
                                                                  row["test_images"])]
    return sorted(rows + [row], key=lambda r: (list(ARCHS).index(r["arch"]), r["test_images"]))


def marginal(rows: list[dict]) -> list[str]:
    """Per backbone run at two test-set sizes: the cost of each extra test image and the
    peak memory of the larger run against the smaller."""
    out = []
    for arch in ARCHS:
        runs = sorted((r for r in rows if r["arch"] == arch), key=lambda r: r["test_images"])
        if len(runs) < 2:
            continue
        a, b = runs[0], runs[-1]
        m = marginal_cost(a, b)
        out.append(f"- {arch}, {a['test_images']} → {b['test_images']} test images: each extra "
                   f"test image costs {m['work_s'] * 1000:.0f} ms = {m['work_passes']:.1f} "
                   f"predict passes' worth of one image ({m['predict_one_s'] * 1000:.1f} ms) in "
                   f"predicting, GradCAM, the galleries and the pages; "
                   f"{m['per_image_s'] * 1000:.0f} ms ({m['passes']:.1f}) with the extras, "
                   f"which the default budget lets grow "
                   f"with the test set ({a['plan'].get('budget_s', 0):.0f} s → "
                   f"{b['plan'].get('budget_s', 0):.0f} s: {extras_s(a):.0f} s → "
                   f"{extras_s(b):.0f} s of extras). Peak memory {b['peak_rss_mb']:.0f} MB "
                   f"against {a['peak_rss_mb']:.0f} MB ({m['memory_ratio']:.2f}x).")
    return out


def how_measured() -> str:
    """The machine, the library versions and the build settings of a benchmark of whole
    default builds of a loaded model (BACKBONES.md, ZOO.md), as sentences."""
    import keras
    import tensorflow as tf

    return (f"Run on {platform.machine()}, {os.cpu_count()} cores, Python "
            f"{platform.python_version()}, TensorFlow {tf.__version__}, Keras "
            f"{keras.__version__}. Default settings (the planner's budget), "
            "`model.source = \"load\"`, weights None with BatchNorm calibrated on the data; "
            "the predict pass is reportgen's compiled forward over the same test images, "
            "warm, in the same run (the best of two). ")


def write(results: list[dict]) -> None:
    (HERE / "BACKBONES.json").write_text(json.dumps(results, indent=1))
    lines = ["# Real backbones at 224 px", "",
             how_measured() + "Peak memory is the build process's own "
             "high-water mark (VmHWM; its figure worker process apart). Reproduce: "
             "`python benchmarks/backbones.py "
             "--arch mobilenetv2,resnet50,vgg19 --images 500` (and `--arch mobilenetv2 "
             "--images 5000` for the marginal cost).", "",
             "| backbone | test images | wall s | CPU s | peak MB | predict pass s | "
             "wall / predict | budget s | planned s | explain s | batch | run |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in results:
        plan = r["plan"]
        lines.append(f"| {r['arch']} | {r['test_images']} | {r['wall_s']:.0f} | "
                     f"{r['cpu_s']:.0f} | {r['peak_rss_mb']:.0f} | {r['predict_pass_s']:.1f} | "
                     f"{r['ratio']:.0f}x | {plan.get('budget_s', 0):.0f} | "
                     f"{sum(plan.get('estimate_s', {}).values()):.0f} | "
                     f"{r['stages'].get('explain', 0):.0f} | {plan.get('batch_size')} | "
                     f"{r.get('date', '')} |")
    lines += ["", "Marginal cost and memory against the test-set size:", ""]
    lines += marginal(results) or ["- (run one backbone at two sizes)"]
    lines += ["", "Reduced by the plan:", ""]
    for r in results:
        lines.append(f"- {r['arch']}, {r['test_images']} images: "
                     f"{'; '.join(r['plan'].get('reduced', [])) or 'nothing'}")
    lines += ["", "Explain parts (s) per build, measured (planned):", ""]
    for r in results:
        est = r["plan"].get("estimate_s", {})
        parts = ", ".join(f"{k} {v:.0f} ({est.get(k, 0):.0f})"
                          for k, v in r["explain_parts"].items())
        lines.append(f"- {r['arch']}, {r['test_images']} images: {parts}")
    (HERE / "BACKBONES.md").write_text("\n".join(lines) + "\n")
    if (HERE / "RESULTS.json").exists():  # RESULTS.md sums the targets up
        from run import write_results
        write_results(json.loads((HERE / "RESULTS.json").read_text()), HERE / "RESULTS.md")


if __name__ == "__main__":
    main()
