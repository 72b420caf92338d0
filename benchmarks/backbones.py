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
    results = []
    for arch in args.arch.split(","):
        for n in (int(v) for v in args.images.split(",")):
            data = make_dataset(work / f"data-{n}", n, cache, size=SIZE)
            model = saved_backbone(arch, data, work)
            predict_s = predict_pass(model, data, PREPROCESS[arch])
            shutil.rmtree(cache / "builds", ignore_errors=True)
            build = run_build(data, model, work / f"site-{arch}-{n}", cache,
                              ["--set", f"model.preprocess={PREPROCESS[arch]}"])
            row = {"arch": arch, "test_images": build["n_test"], "predict_pass_s": predict_s,
                   **build, "ratio": build["wall_s"] / predict_s}
            results.append(row)
            print(f"{arch} {n}: {build['wall_s']:.0f} s wall ({row['ratio']:.0f}x a predict "
                  f"pass of {predict_s:.1f} s), peak {build['peak_rss_mb']:.0f} MB, reduced: "
                  f"{build['plan'].get('reduced')}", flush=True)
    write(results)


def write(results: list[dict]) -> None:
    import keras
    import tensorflow as tf

    (HERE / "BACKBONES.json").write_text(json.dumps(results, indent=1))
    lines = ["# Real backbones at 224 px", "",
             f"Run on {platform.machine()}, {os.cpu_count()} cores, Python "
             f"{platform.python_version()}, TensorFlow {tf.__version__}, Keras "
             f"{keras.__version__}, {time.strftime('%Y-%m-%d')}. Default settings (the "
             f"planner's budget), `model.source = \"load\"`, weights None with BatchNorm "
             f"calibrated on the data. Reproduce: `python benchmarks/backbones.py`.", "",
             "| backbone | test images | wall s | CPU s | peak MB | predict pass s | wall / "
             "predict | batch | reduced by the plan |", "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in results:
        plan = r["plan"]
        lines.append(f"| {r['arch']} | {r['test_images']} | {r['wall_s']:.0f} | "
                     f"{r['cpu_s']:.0f} | {r['peak_rss_mb']:.0f} | {r['predict_pass_s']:.1f} | "
                     f"{r['ratio']:.0f}x | {plan.get('batch_size')} | "
                     f"{'; '.join(plan.get('reduced', [])) or 'nothing'} |")
    lines += ["", "Explain parts (s) per build:", ""]
    for r in results:
        parts = ", ".join(f"{k} {v:.0f}" for k, v in r["explain_parts"].items())
        lines.append(f"- {r['arch']}, {r['test_images']} images: {parts}")
    (HERE / "BACKBONES.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
