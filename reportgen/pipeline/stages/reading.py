"""Reading the data, and the cached rebuild: an earlier build's report when only
``[report]`` settings changed (no TensorFlow)."""

from __future__ import annotations

import numpy as np

from reportgen import progress as prog
from reportgen.data import generate_shapes, load_dataset, load_images
from reportgen.data.folder import count_files, hazards
from reportgen.data.folder import Dataset
from reportgen.data.images import grouped_by_prediction
from reportgen.data.metadata import Metadata, read_metadata
from reportgen.data.shapes import CLASSES
from reportgen.errors import ConfigError
from reportgen.pipeline.cache import ReportBundle, data_hash
from reportgen.model.sources.applications import class_names as unlabeled_names
from reportgen.pipeline.stages.checks import absent_ok, explained_classes
from reportgen.pipeline.stages.run import Data, Run
from reportgen.text import plural, quoted


def read_data(run: Run, shape: tuple[int, int, int]) -> Data:
    """Read the data at ``shape`` (generating the shapes demo first where asked), saying which
    files were skipped."""
    cfg = run.cfg
    with run.timer.stage("load"):
        if cfg.data.source == "shapes":
            n = cfg.data.shapes_per_class * len(CLASSES)
            cache = cfg.resolve(cfg.data.cache_dir) if cfg.data.cache_dir else None
            with prog.bar("Generating shapes", n, run.show) as advance:
                root = generate_shapes(cache, per_class=cfg.data.shapes_per_class,
                                       size=cfg.data.image_size, seed=cfg.data.split_seed,
                                       progress=advance)
        else:
            root = cfg.resolve(cfg.data.path)
            if not root.is_dir():
                raise ConfigError(f"data.path: folder not found: {root}")
        with prog.bar("Reading images", count_files(root), run.show) as advance:
            if cfg.data.source == "images":
                ds = load_images(root, size=shape[:2], channels=shape[2],
                                 class_names=unlabeled_names(cfg),
                                 annotations=cfg.data.annotations, progress=advance)
            else:
                ds = load_dataset(root, size=shape[:2], channels=shape[2],
                                  split=list(cfg.data.split), seed=cfg.data.split_seed,
                                  annotations=cfg.data.annotations, progress=advance,
                                  classes=cfg.data.classes, absent_ok=absent_ok(cfg))
    if ds.skipped:
        prog.say(f"Warning: skipped {plural(len(ds.skipped), 'file')} (unreadable, not "
                 "images, hidden, or links leading outside data.path), listed in the report: "
                 + "; ".join(f"{p} ({r})" for p, r in ds.skipped[:5])
                 + (" ..." if len(ds.skipped) > 5 else ""))
    if ds.dropped_classes:
        prog.say("Warning: class folders with no readable image dropped: "
                 + ", ".join(ds.dropped_classes))
    if ds.absent_classes:
        note = absent_note(ds.absent_classes, len(ds.class_names))
        prog.say(f"Note: {note}")
        run.notes.append(note)
    explained_classes(cfg, ds.class_names)  # a typo in explain.classes ends the build now
    for hazard in hazards(ds):
        prog.say(f"Warning: {hazard}")
        run.notes.append(hazard)
    return Data(ds, data_hash(ds), shape, metadata(run, ds))


def metadata(run: Run, ds: Dataset) -> Metadata | None:
    """The per-image metadata of ``data.metadata`` checked against the images read (a
    one-line DataError naming the file when it is wrong); None when not set."""
    cfg = run.cfg
    if not cfg.data.metadata:
        return None
    known = [p for split in ds.splits.values() for p in split.paths]
    meta = read_metadata(cfg.resolve(cfg.data.metadata), cfg.public(cfg.data.metadata), known,
                         [p for p, _ in ds.skipped])
    if meta.skipped_rows:
        note = (f"data.metadata: {plural(meta.skipped_rows, 'row')} name files that were "
                "skipped as unreadable (listed on the overview) and are left out.")
        prog.say(f"Note: {note}", run.show)
        run.notes.append(note)
    return meta


def absent_note(absent: list[str], total: int) -> str:
    """The overview's sentence on the classes of the model that had no images."""
    n = len(absent)
    return (f"No images of {plural(n, 'class', 'classes')} of the model's {total}: "
            f"{quoted(absent)} (no folder, an empty one, or none readable). Accuracy and the "
            f"per-class metrics cover the {total - n} classes with images; the confusion matrix "
            "has a row for each of them and a column for every class the model can predict.")


def grouped(data: Data, probs: dict[str, np.ndarray]) -> Data:
    """Unlabeled photos with their test images grouped by predicted class (the galleries,
    samples and class pages follow it); labeled data as it is."""
    if data.ds.labeled:
        return data
    return Data(grouped_by_prediction(data.ds, probs["test"].argmax(axis=1)), data.hash,
                data.shape, data.metadata)


def cached_report(run: Run) -> tuple[Data | None, ReportBundle | None]:
    """The data and an earlier build's report bundle when only ``[report]`` settings changed
    (no TensorFlow). On a miss the bundle is None, and the data is what was read to look
    (None when the image size is not known without the model), for the full build to reuse."""
    shape = run.cache.known_shape()
    if shape is None:
        return None, None
    data = read_data(run, shape)
    bundle = run.cache.get_report(run.cache.report_key(data.hash))
    if bundle is None:
        return data, None
    run.notes = list(bundle.notes)
    run.reused("the predictions and explanations", "model, data and settings", "recomputes")
    run.notes += bundle.explained.notes
    return data, bundle
