"""Sharded builds against the unsharded build on the same images, on this machine.

Writes benchmarks/SHARDS.md: the wall time of the unsharded build, of each shard (run one
after the other here), of the merge, and the projection of the time for 10^4 to 10^6 test
images on K workers from the measured per-image cost of a shard (a projection, not a
measurement: it assumes the per-image cost stays linear and the merge's cost stays fixed).

    python benchmarks/shards.py [--images-per-class 40] [--shards 2]

With Ray installed (the ``ray`` extra) it also times ``--executor ray`` on a local Ray.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
COLOURS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (50, 60, 220)}


def make_data(root: Path, per_class: int) -> Path:
    """Noisy solid-colour 32 px PNGs, ``per_class`` a class."""
    rng = np.random.default_rng(0)
    for name, colour in COLOURS.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            arr = np.clip(np.array(colour) + rng.normal(0, 25, (32, 32, 3)), 0, 255)
            Image.fromarray(arr.astype(np.uint8)).save(root / name / f"{i}.png")
    return root


def make_model(path: Path) -> Path:
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inp)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    keras.Model(inp, keras.layers.Dense(3, activation="softmax")(x)).save(path)
    return path


def timed(args: list[str]) -> float:
    """Wall seconds of ``reportgen <args>`` in this process (exit 0 required)."""
    from click.testing import CliRunner

    from reportgen.cli import main

    t0 = time.perf_counter()
    result = CliRunner().invoke(main, args)
    if result.exit_code != 0:
        raise SystemExit(result.output)
    return time.perf_counter() - t0


def _ray(common: list[str], out: Path, workers: int) -> float | None:
    """Wall seconds of the build on a local Ray with ``workers`` workers; None without Ray."""
    try:
        import ray.data  # noqa: F401
    except ImportError:
        return None
    return timed(["build", *common, "--executor", "ray", "--out", str(out)])


def projection(per_image: float, merge_s: float, images: int, workers: int) -> float:
    """Projected wall seconds: the shards in parallel, then the merge."""
    return per_image * images / workers + merge_s


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images-per-class", type=int, default=40)
    ap.add_argument("--shards", type=int, default=2)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    data = make_data(tmp / "data", a.images_per_class)
    model = make_model(tmp / "m.keras")
    common = ["--quiet", "--set", "report.figure_formats=['png']", "--set", "report.cache=false",
              "--set", "model.source=load", "--set", f"model.path={model}",
              "--set", "data.source=folder", "--set", f"data.path={data}",
              # the same work either way: a sharded build has no time plan
              "--set", "explain.budget=100000"]
    n = a.images_per_class * len(COLOURS)
    whole = timed(["build", *common, "--out", str(tmp / "whole")])
    shard_s = [timed(["build", *common, "--shard", f"{i}/{a.shards}", "--out",
                      str(tmp / f"s{i}")]) for i in range(1, a.shards + 1)]
    merge_s = timed(["merge", "--quiet", *[str(tmp / f"s{i}") for i in range(1, a.shards + 1)],
                     "--out", str(tmp / "merged")])
    ray_s = _ray(common, tmp / "ray", a.shards)
    per_image = sum(shard_s) / n  # every split's images are predicted; the test's explained
    lines = [
        "# Sharded builds on this machine", "",
        f"{n} images (3 classes, 32 px), a loaded 1-conv CNN, {a.shards} shards run one after "
        f"the other, all in one process (TensorFlow started by the unsharded build, which "
        f"runs first: the shards and the merge do not pay its start-up); {os.cpu_count()} CPUs "
        f"shared, load average {os.getloadavg()[0]:.1f}.", "",
        "| run | wall s |", "|---|---:|", f"| unsharded build | {whole:.1f} |",
        *[f"| shard {i + 1}/{a.shards} | {s:.1f} |" for i, s in enumerate(shard_s)],
        f"| merge | {merge_s:.1f} |",
        f"| shards + merge, one after the other | {sum(shard_s) + merge_s:.1f} |",
        f"| overhead over unsharded | {sum(shard_s) + merge_s - whole:+.1f} |",
        *([f"| `--executor ray`, local Ray, {a.shards} workers (start, shards, merge, "
           f"shutdown) | {ray_s:.1f} |",
           f"| its overhead over unsharded | {ray_s - whole:+.1f} |"] if ray_s else
          ["| `--executor ray` | not run: Ray is not installed |"]), "",
        "## Projection (not measured)", "",
        f"Per image of a shard: {per_image * 1000:.1f} ms (shard wall time / images, reading "
        "and hashing every image of the data set included); the merge counted as fixed "
        f"({merge_s:.1f} s), although it reads and hashes every image too, so the table "
        "under-counts it at scale. Wall seconds = per image x images / K + merge.", "",
        "| images | K=1 | K=8 | K=64 |", "|---:|---:|---:|---:|",
        *[f"| {m:,} | " + " | ".join(f"{projection(per_image, merge_s, m, k):,.0f}"
                                      for k in (1, 8, 64)) + " |"
          for m in (10**4, 10**5, 10**6)]]
    (ROOT / "benchmarks" / "SHARDS.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
