"""The stages of a build, each a function of typed inputs returning a dataclass.

``reportgen.pipeline.build`` runs them in order: check the settings, read the data, get the
model (load or train), predict, evaluate, explain, draw, write. TensorFlow is imported by the
model stages only, so a cached rebuild (:func:`cached_report`) runs without it.
"""

from __future__ import annotations

import dataclasses
import logging
import platform
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from reportgen import __version__
from reportgen import progress as prog
from reportgen.config import Config, ExplainConfig
from reportgen.errors import ConfigError, ModelError, PartsFailed
from reportgen.guard import collecting, optional_part
from reportgen.pipeline.cache import BuildCache, ExplainBundle, ReportBundle, data_hash, key
from reportgen.text import duration, plural, printable

if TYPE_CHECKING:  # annotations only: no import at run time
    from reportgen.data.folder import Dataset
    from reportgen.data.metadata import Metadata
    from reportgen.evaluate.slices import SliceReport
    from reportgen.report.figjobs import Figures


class Timer:
    """Wall seconds per named stage."""

    def __init__(self):
        self.times: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str):
        """Add the time spent inside the block to stage ``name``."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.times[name] = self.times.get(name, 0.0) + time.perf_counter() - t0


@dataclass
class Run:
    """What every stage of one build shares: its config, the checked method options
    ({method: options}), the cache, the figure queue, the timer, whether to show progress,
    and whether a failed part fails the build (``strict``)."""

    cfg: Config
    options: dict
    cache: BuildCache
    figures: Figures
    timer: Timer = field(default_factory=Timer)
    show: bool = True
    notes: list[str] = field(default_factory=list)
    #: The input (H, W, C) of a model trained here (:func:`train_input`).
    train_shape: tuple[int, int, int] | None = None
    #: ``--strict``: a failed part ends the build before the site is swapped in.
    strict: bool = False
    #: The parts that failed (:class:`reportgen.guard.Failure`), once the site is written.
    failures: list = field(default_factory=list)

    def reused(self, what: str, why: str, undo: str) -> None:
        """Say on stderr, and note in the report, that ``what`` came from the cache."""
        prog.say(f"Reusing {what} of an earlier build with the same {why} (cache; "
                 f"report.cache = false {undo})")
        self.notes.append(f"{what[0].upper()}{what[1:]} came from an earlier build with the same "
                          f"{why} (cache).")


@dataclass
class Data:
    """The data set read at ``shape`` (H, W, C), its content hash, and its per-image
    metadata (``data.metadata``; None without)."""

    ds: Dataset
    hash: str
    shape: tuple[int, int, int]
    metadata: Metadata | None = None


@dataclass
class Given:
    """A model given by the user or taken from keras.applications (None when reportgen trains
    one), the input shape it decides (H, W, C), and the preprocessing it needs (None: from
    ``model.preprocess``)."""

    model: object
    shape: tuple[int, int, int]
    preprocess: str | None = None


@dataclass
class Fitted:
    """The model explained: loaded or trained, its history ({} when loaded), the cache key of
    its training, its preprocessing, and the hash of its weights."""

    model: object
    history: dict
    train_key: str | None
    preprocess: str
    weights_hash: str
    #: What the output holds (a key of ``reportgen.explain.graph.HEAD_KINDS``).
    head: str = "softmax"

    def prep(self, images: np.ndarray) -> np.ndarray:
        """Raw uint8 images as the model's float32 input."""
        return preprocessed(images, self.preprocess)


def preprocessed(images: np.ndarray, mode: str) -> np.ndarray:
    """Raw uint8 images as float32 model input under preprocessing ``mode``."""
    from reportgen import model as mdl

    x = np.asarray(images).astype(np.float32)  # reads an Images view whole
    return np.asarray(mdl.apply_preprocess(x, mode), dtype=np.float32)


def check(cfg: Config) -> dict:
    """Check the explanation methods and their option tables before any work; return
    {method: options} (ConfigError naming the key otherwise)."""
    from reportgen.explain.methods import configure

    return configure(cfg)


def check_paths(cfg: Config, out: Path) -> None:
    """The output folder is never read as data: ``data.path`` may not be inside it, nor hold
    it (the next build would read the site's images); and the data is never the whole
    file system or a system folder."""
    if cfg.data.source == "shapes":
        return
    root = cfg.resolve(cfg.data.path).resolve()
    site = out.resolve()
    if root == Path(root.anchor) or any(root == Path(p) or Path(p) in root.parents
                                        for p in SYSTEM_FOLDERS):
        raise ConfigError(f"data.path: {root} is a system folder, not a folder of images")
    if root == site or site in root.parents or root in site.parents:
        raise ConfigError(f"data.path: {root} and the output folder --out {out} overlap; the "
                          "site is never read as data: put it outside the data folder")


#: Folders whose files are not data (data.path may not be, or be inside, one of them).
SYSTEM_FOLDERS = ("/proc", "/sys", "/dev", "/run", "/boot", "/etc")


def start_tensorflow() -> None:
    """Import TensorFlow without its start-up chatter on stderr (CUDA probing on CPU machines)."""
    import os
    import sys

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" not in sys.modules:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), 2)
                import tensorflow  # noqa: F401
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    import tensorflow as tf
    tf.get_logger().setLevel(logging.ERROR)


def read_data(run: Run, shape: tuple[int, int, int]) -> Data:
    """Read the data at ``shape`` (generating the shapes demo first where asked), saying which
    files were skipped."""
    from reportgen.data import generate_shapes, load_dataset, load_images
    from reportgen.data.folder import count_files, hazards
    from reportgen.data.shapes import CLASSES

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
    from reportgen.data.metadata import read_metadata

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


def absent_ok(cfg: Config) -> bool:
    """True when a class of ``data.classes`` may have no images: a loaded model is scored on
    the classes that have them (a model trained here needs every class)."""
    return cfg.model.source == "load"


def absent_note(absent: list[str], total: int) -> str:
    """The overview's sentence on the classes of the model that had no images."""
    from reportgen.text import quoted

    n = len(absent)
    return (f"No images of {plural(n, 'class', 'classes')} of the model's {total}: "
            f"{quoted(absent)} (no folder, an empty one, or none readable). Accuracy and the "
            f"per-class metrics cover the {total - n} classes with images; the confusion matrix "
            "has a row for each of them and a column for every class the model can predict.")


def check_data(cfg: Config) -> None:
    """Check the class folders against ``data.classes`` from the folder listing, and the form
    of the ``data.metadata`` file, before TensorFlow loads (DataError naming the key, folder
    or file)."""
    from reportgen.data.folder import check_listing

    if cfg.data.source == "folder":
        check_listing(cfg.resolve(cfg.data.path), cfg.data.classes, absent_ok=absent_ok(cfg))
    if cfg.data.metadata:
        check_metadata(cfg)


def check_metadata(cfg: Config) -> None:
    """Check the ``data.metadata`` file against the image files listed in ``data.path``
    (nothing decoded; the demo's images do not exist yet: its form alone), so a wrong file is
    refused before TensorFlow loads; :func:`metadata` matches it to the images read."""
    from reportgen.data.folder import image_files, listed_files
    from reportgen.data.metadata import read_metadata, read_table

    path = cfg.resolve(cfg.data.metadata)
    if cfg.data.source == "shapes":
        read_table(path)
        return
    root = cfg.resolve(cfg.data.path)
    if not root.is_dir():  # refused, naming data.path, when the data is read
        read_table(path)
        return
    files = listed_files(root) if cfg.data.source == "folder" else image_files(root, root, [])
    read_metadata(path, cfg.public(cfg.data.metadata),
                  [f.relative_to(root).as_posix() for f in files], [])


#: Smallest input side a trained architecture takes: the small CNN's last conv layer is at 1/8
#: of its input (16 px: 2x2); keras.applications backbones need 32 px, a few more.
MIN_SIDE = {"small_cnn": 16, "inceptionv3": 75, "inceptionresnetv2": 75, "xception": 71}
#: Backbones not listed in :data:`MIN_SIDE` take at least this side.
MIN_BACKBONE_SIDE = 32


@dataclass
class TrainInput:
    """The input of a model trained here: its shape (H, W, C) and, when chosen from the data
    rather than set, the sentence that says so (None otherwise)."""

    shape: tuple[int, int, int]
    note: str | None = None


def train_input(cfg: Config) -> TrainInput:
    """The input a model trained here takes, decided from the image files' headers before
    TensorFlow loads: ``data.image_size`` when the user set it; not set, the data's own median
    shorter side rounded up to a multiple of 8, within the architecture's smallest input and
    ``data.image_size`` (64: never upsampled far beyond the data). One channel for the small
    CNN when every file is stored as grayscale (its filters and patterns are then gray too)."""
    from reportgen.data.folder import listed_files, source_info

    size = cfg.data.image_size
    if cfg.model.source != "train" or cfg.data.source != "folder":
        return TrainInput((size, size, 3))
    info = source_info(listed_files(cfg.resolve(cfg.data.path)))
    if info is None:
        return TrainInput((size, size, 3))
    arch = cfg.model.architecture.lower().replace("_", "").replace("-", "")
    arch = "small_cnn" if arch == "smallcnn" else arch
    gray = info.all_gray and arch == "small_cnn"
    channels = 1 if gray else 3
    notes = []
    if "data.image_size" not in cfg.given:
        least = MIN_SIDE.get(arch, MIN_BACKBONE_SIDE)
        own = -(-info.side // 8) * 8
        chosen = max(least, min(size, own))
        if chosen != size:
            why = ("the smallest input the model takes" if chosen == least and own < least
                   else "their own size rounded up to a multiple of 8" if own != info.side
                   else "their own size")
            notes.append(f"data.image_size was not set: the images ({info.describe()}) were "
                         f"read at {chosen}×{chosen} px, {why}, rather than upsampled to "
                         f"{size} px; set data.image_size to choose another size.")
            size = chosen
    if gray:
        notes.append("Every image file is grayscale, so the small CNN was trained on one "
                     "channel (its filters, filter patterns and deep dreams are gray).")
    return TrainInput((size, size, channels), " ".join(notes) or None)


def unlabeled_names(cfg: Config) -> list[str]:
    """The class names of unlabeled photos: ``data.classes``, else the 1,000 ImageNet classes
    (shipped with reportgen)."""
    from reportgen.data import imagenet_names

    return list(cfg.data.classes) or imagenet_names()


def explained_classes(cfg: Config, names: list[str]) -> list[int]:
    """The class indices of ``explain.classes`` (ConfigError naming an unknown one); a name
    with underscores for spaces, as keras ``decode_predictions`` writes them, is found too."""
    from reportgen.config import did_you_mean

    out = []
    for name in cfg.explain.classes:
        if name not in names and name.replace("_", " ") in names:
            name = name.replace("_", " ")  # keras decode_predictions spells "tiger_cat"
        if name not in names:
            close = did_you_mean(name, names)
            raise ConfigError(f"explain.classes: {name!r} is not a class of the model"
                              + (f"; did you mean {close!r}?" if close else
                                 f" ({len(names)} classes: {', '.join(names[:8])}"
                                 + (", ..." if len(names) > 8 else "") + ")"))
        out.append(names.index(name))
    return out


def grouped(data: Data, probs: dict[str, np.ndarray]) -> Data:
    """Unlabeled photos with their test images grouped by predicted class (the galleries,
    samples and class pages follow it); labeled data as it is."""
    from reportgen.data.images import grouped_by_prediction

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


def given_model(run: Run) -> Given:
    """Load the user's model (``model.source = "load"``), whose input decides the image size;
    for a model trained here, the size is ``data.image_size``."""
    from reportgen import model as mdl

    cfg = run.cfg
    size = cfg.data.image_size
    if cfg.model.source == "applications":
        return application(run)
    if cfg.model.source != "load":
        return Given(None, run.train_shape or (size, size, 3))
    with run.timer.stage("load"):
        loaded = mdl.load_model(cfg.resolve(cfg.model.path), safe_mode=cfg.model.safe_mode)
        loaded, renamed = mdl.with_runnable_names(loaded)
    if renamed:
        run.notes.append("Layers whose names TensorFlow cannot run were renamed: "
                         + ", ".join(f"{printable(a)!r} to {b!r}" for a, b in renamed.items())
                         + ".")
    h, w, channels = mdl.input_spec(loaded)
    mdl.output_count(loaded, cfg.model.output_index)  # names model.output_index if out of range
    mdl.check_classifier_output(loaded, cfg.model.output_index)
    if h is None or w is None:
        run.notes.append(f"The model takes images of any size; they were read at "
                         f"data.image_size = {size} px.")
    h, w = (size, size) if h is None or w is None else (h, w)
    if len(loaded.outputs) > 1:
        run.notes.append(f"The model has {len(loaded.outputs)} outputs; output "
                         f"{cfg.model.output_index} (model.output_index) is explained.")
    if channels not in (1, 3):
        raise ModelError(f"model.path: the model expects {channels} input channels; "
                         "reportgen reads images as 1 (grayscale) or 3 (RGB) channels")
    if size != h:
        run.notes.append(f"Images were resized to the model's input, {h}x{w} px "
                         f"(data.image_size = {size} applies to training only).")
    check_layer_keys(cfg, loaded, (h, w, channels))
    return Given(loaded, (h, w, channels))


def application(run: Run) -> Given:
    """The keras.applications classifier ``model.architecture`` as it is, at its own input
    size (or ``model.input_size``), with its own preprocessing."""
    from reportgen import model as mdl

    cfg = run.cfg
    with run.timer.stage("load"):
        model, mode = mdl.application_model(
            cfg.model.architecture, weights=cfg.weights(), input_size=cfg.model.input_size,
            n_classes=len(unlabeled_names(cfg)), seed=cfg.training.seed)
    h, w, channels = mdl.input_spec(model, "model.architecture")
    weights = {"none": "random weights", "imagenet": "ImageNet weights"}.get(
        cfg.model.weights, f"weights from {cfg.model.weights}")
    run.notes.append(f"The model is keras.applications {model.name} with {weights}, used as "
                     f"it is at {h}x{w} px, preprocessing {mode!r} (its preprocess_input).")
    check_layer_keys(cfg, model, (h, w, channels))
    return Given(model, (h, w, channels), mode)


def check_layer_keys(cfg: Config, model, shape: tuple) -> None:
    """``explain.layer`` and every ``explain.pattern_layers`` entry checked against the model
    as soon as it exists (loaded, or built before training), so a typo ends the build at once
    with the valid names."""
    from reportgen.explain.graph import ModelGraph

    wanted = [("explain.layer", cfg.explain.layer)] if cfg.explain.layer else []
    wanted += [("explain.pattern_layers", p) for p in cfg.explain.pattern_layers]
    if not wanted:
        return
    try:
        graph = ModelGraph(model, cfg.model.output_index, shape)
    except (TypeError, ValueError):
        return  # not walkable: the explain stage says so
    for name, path in wanted:
        try:
            graph.layer(path)
        except ValueError as e:
            raise ConfigError(f"{name}: {e}") from None


def fit_model(run: Run, given: Given, data: Data) -> Fitted:
    """The model to explain: the given one, a model trained by an earlier build with the same
    data and settings (cache), or one trained now."""
    from reportgen import model as mdl

    cfg, ds = run.cfg, data.ds
    preprocess = given.preprocess or ("none" if cfg.model.preprocess == "auto"
                                      else cfg.model.preprocess)
    n_classes = len(ds.class_names)
    train_key = None
    with run.timer.stage("train"):
        model, history = given.model, {}
        if model is None:
            settings = cfg.to_dict()
            train_key = key("train", data=data.hash, model=settings["model"],
                            training=settings["training"], shape=list(data.shape),
                            classes=ds.class_names, preprocess=preprocess,
                            weights_file=run.cache.files_key())
            model, history = _train_or_reuse(run, data, train_key, preprocess)
        if history:
            run.notes += _early_stopping_notes(history, cfg)
        head = _head(run, model, ds.class_names, data.shape)
        got = 2 if head.startswith("binary") else mdl.output_count(model, cfg.model.output_index)
        if got != n_classes and not ds.labeled:
            raise ConfigError(f"data.classes: the model predicts {got} classes but data.classes "
                              f"names {n_classes}" if cfg.data.classes else
                              f"data.classes: the model predicts {got} classes; name them in "
                              "data.classes, in the order of its outputs (without it, the "
                              "1,000 ImageNet classes are assumed)")
        if got != n_classes:
            raise ModelError(f"model.path: the model predicts {got} classes but the data has "
                             f"{n_classes} ({', '.join(ds.class_names)})")
        if cfg.model.source == "applications" and cfg.model.weights == "none":
            calibrate(run, model, data, preprocess)
    return Fitted(model, history, train_key, preprocess, mdl.weights_hash(model), head)


def _early_stopping_notes(history: dict, cfg: Config) -> list[str]:
    """What early stopping did: the epochs run, and the epoch whose weights were kept."""
    from reportgen.evaluate import kept_epoch

    ran, kept = len(history.get("loss", [])), kept_epoch(history, cfg.training.min_epochs) + 1
    if ran == kept == cfg.training.epochs:
        return []
    monitor = "validation" if history.get("val_loss") else "training"
    stopped = " (early stopping)" if ran < cfg.training.epochs else ""
    return [f"Training ran {ran} of {cfg.training.epochs} epochs{stopped}; the weights of epoch "
            f"{kept}, the lowest {monitor} loss from epoch {cfg.training.min_epochs} "
            "(training.min_epochs) on, were kept."]


def warn(run: Run, data: Data, probs: dict[str, np.ndarray], history: dict) -> list[str]:
    """Warnings that the model does not work (:func:`reportgen.evaluate.model_warnings`),
    said on stderr; the report shows them first."""
    from reportgen.evaluate import model_warnings

    ds = data.ds
    if not ds.labeled:
        return []
    found = model_warnings(probs, {name: split.labels for name, split in ds.splits.items()},
                           ds.class_names, history, run.cfg.training.min_epochs,
                           operating_threshold(run.cfg, ds))
    for line in found:
        prog.say(f"Warning: {line}")
    return found


def calibrate(run: Run, model, data: Data, preprocess: str) -> None:
    """Set the BatchNorm statistics of a randomly initialized keras.applications model (built
    here) to those of the photos, so its outputs and maps are not degenerate (a network with
    random weights and initial statistics gives near-constant outputs and empty maps)."""
    from reportgen import model as mdl

    test = data.ds.splits["test"]
    n = min(len(test), 64)
    if mdl.calibrate_batchnorm(model, preprocessed(test.images[:n], preprocess)):
        run.notes.append(f"With random weights (model.weights = \"none\"), the BatchNorm "
                         f"statistics were set from {n} of the photos; the predictions mean "
                         "nothing, the report shows the method, not the model.")


def _head(run: Run, model, names: list[str], shape: tuple) -> str:
    """The kind of the model's output, noted in the report where it is not a softmax."""
    from reportgen.explain.graph import ModelGraph

    try:
        graph = ModelGraph(model, run.cfg.model.output_index, shape)
    except (TypeError, ValueError):  # not walkable: read its outputs as probabilities/logits
        return "softmax"
    head, cut = graph.head, graph.opening()
    if cut is not None:
        run.notes.append(f"The SavedModel's serving graph was opened at {cut.tensor!r}, its "
                         "last convolution-like tensor, which the CAM methods explain"
                         + (f"; its final {cut.activation} was cut off, so explanations use "
                            "the logits." if cut.activation else "."))
    if head.startswith("binary") and len(names) == 2:
        run.notes.append(f"The model has one {'sigmoid' if head == 'binary' else 'logit'} "
                         f"output for two classes: p is the probability of class 1, "
                         f"{names[1]!r}, and 1 - p that of class 0, {names[0]!r}; class 0 is "
                         "explained by the negated logit.")
    elif head == "logits":
        run.notes.append("The model's last layer has no activation (logits): reportgen "
                         "computed the class probabilities as the softmax of the logits, "
                         "and explanations use the logits.")
    elif head == "probabilities":
        run.notes.append("The model's outputs are probabilities from a final layer reportgen "
                         "cannot see into (a SavedModel): explanations use the class "
                         "probabilities, not the logits.")
    elif head == "sigmoid":
        run.notes.append("The model's outputs are independent sigmoids: each class's "
                         "probability is its own sigmoid (they need not sum to 1), the "
                         "predicted class is the highest, and the loss is -log p(true class).")
    return head


def _train_or_reuse(run: Run, data: Data, train_key: str, preprocess: str):
    from reportgen import model as mdl

    cfg, ds = run.cfg, data.ds
    hit = run.cache.get_trained(train_key, mdl.load_model)
    if hit is not None:
        run.reused("the trained model", "data and settings", "retrains")
        return hit
    base = mdl.build_model(cfg.model.architecture, data.shape, len(ds.class_names),
                           weights=cfg.weights(), freeze_base=cfg.model.freeze_base,
                           seed=cfg.training.seed)
    check_layer_keys(cfg, base, data.shape)
    def prep(images):
        return preprocessed(images, preprocess)

    tr, va = ds.splits["train"], ds.splits["val"]
    with prog.bar("Training (epochs)", cfg.training.epochs, run.show) as advance:
        model, history = mdl.train(
            base, prep(tr.images), tr.labels, prep(va.images) if len(va) else None,
            va.labels if len(va) else None, epochs=cfg.training.epochs,
            batch_size=cfg.training.batch_size, learning_rate=cfg.training.learning_rate,
            patience=cfg.training.patience, seed=cfg.training.seed,
            min_epochs=cfg.training.min_epochs,
            on_epoch=lambda e, logs: advance(1))
    run.cache.put_trained(train_key, lambda path: mdl.save_model(model, path), history)
    return model, history


def explain_key(run: Run, fitted: Fitted, data: Data) -> str:
    """The cache key of the predictions and explanations of ``fitted`` on ``data``."""
    cfg = run.cfg
    return key("explain", model=fitted.weights_hash, data=data.hash,
               explain=cfg.to_dict()["explain"], output_index=cfg.model.output_index,
               preprocess=fitted.preprocess, seed=cfg.training.seed,
               threshold=operating_threshold(run.cfg, data.ds))


def predict(run: Run, fitted: Fitted, data: Data) -> dict[str, np.ndarray]:
    """Class probabilities {split: (N, classes)} of every split, in batches."""
    from reportgen import evaluate as ev
    from reportgen import model as mdl

    cfg, splits = run.cfg, data.ds.splits
    probs = {}
    with run.timer.stage("predict"), \
            prog.bar("Predicting", sum(len(s) for s in splits.values()), run.show) as advance:
        batch = predict_batch(cfg, fitted.model, data.shape)
        forward = mdl.forward_function(fitted.model, data.shape, cfg.model.output_index)
        for name, split in splits.items():  # one trace for every split
            raw = mdl.predict_outputs(fitted.model, split.images, preprocess=fitted.prep,
                                      batch_size=batch, forward=forward,
                                      output_index=cfg.model.output_index, progress=advance)
            probs[name] = ev.to_probabilities(raw, fitted.head)
    return probs


def predict_batch(cfg: Config, model, shape: tuple[int, int, int]) -> int:
    """The batch of the predictions: ``explain.batch_size`` when set, else what the memory
    budget holds for a forward pass (:func:`reportgen.explain.plan.memory_batch`)."""
    from reportgen.explain import plan as pl
    from reportgen.explain.graph import ModelGraph

    if "explain.batch_size" in cfg.given:
        return cfg.explain.batch_size
    try:
        act = pl.activation_bytes(ModelGraph(model, cfg.model.output_index, shape))
    except (TypeError, ValueError):  # a model the graph walk cannot follow
        return cfg.explain.batch_size
    return pl.memory_batch(act, pl.memory_budget(cfg.explain.memory_gb), pl.FORWARD_FACTOR)


def evaluate(run: Run, data: Data, probs: dict[str, np.ndarray]) -> dict[str, dict]:
    """Metrics {split: ...} of the probabilities against the labels (numpy only); the test
    split's also carry its PR/ROC summary (``curves``) and, for a binary model, its threshold
    summary (``thresholds``)."""
    from reportgen import evaluate as ev

    ds = data.ds
    if not ds.labeled:
        return {name: (ev.prediction_summary(probs[name], ds.class_names)
                       if len(ds.splits[name]) else {"n": 0, "labeled": False})
                for name in ds.splits}
    present = ds.present if ds.absent_classes else None
    threshold = binary_threshold(run, ds)
    metrics = {name: ev.split_metrics(probs[name], ds.splits[name].labels, ds.class_names,
                                      run.cfg.report.top_k, present, threshold)
               for name in ds.splits}
    if metrics["test"]["n"]:
        with run.timer.stage("curves"):
            add_test_curves(metrics["test"], probs, data, threshold)
    return metrics


def add_test_curves(test: dict, probs: dict[str, np.ndarray], data: Data,
                    threshold: float | None) -> None:
    """Add the test split's ``curves`` (and a binary model's ``thresholds``) to ``test``."""
    from reportgen.evaluate import curves as cv

    ds = data.ds
    labels = {s: ds.splits[s].labels for s in ("test", "val")}
    test["curves"] = cv.curve_metrics(probs["test"], labels["test"], ds.class_names)
    if len(ds.class_names) == 2:
        test["thresholds"] = cv.binary_thresholds(
            {s: probs[s] for s in labels}, labels, ds.class_names, threshold)


def operating_threshold(cfg: Config, ds: Dataset) -> float | None:
    """``evaluate.threshold`` when given and the model is binary (two classes) on labelled
    data; None otherwise: the highest probability predicts
    (:func:`reportgen.evaluate.predict_labels`)."""
    if "evaluate.threshold" not in cfg.given or len(ds.class_names) != 2 or not ds.labeled:
        return None
    return float(cfg.evaluate.threshold)


def binary_threshold(run: Run, ds: Dataset) -> float | None:
    """:func:`operating_threshold`, noted: given for more classes, it is noted as not used."""
    t, n_classes = operating_threshold(run.cfg, ds), len(ds.class_names)
    if t is None:
        if "evaluate.threshold" in run.cfg.given:
            run.notes.append(f"evaluate.threshold = {run.cfg.evaluate.threshold:g} is not "
                             f"used: it applies to binary models, and this one has "
                             f"{n_classes} classes.")
        return None
    run.notes.append(f"evaluate.threshold = {t:g}: every prediction (the metrics, the "
                     f"confusion matrices, predictions.csv, the galleries, the errors page, "
                     f"the slices and the explanations of the predicted class) is the second "
                     f"class where its probability is >= {t:g}.")
    return t


def slices(run: Run, data: Data, probs: dict[str, np.ndarray]) -> SliceReport | None:
    """Accuracy by metadata slice and the weak-slice search on the test images' properties
    (:mod:`reportgen.evaluate.slices`); None for photos without labels (no accuracy to slice)."""
    from reportgen import evaluate as ev
    from reportgen.data.properties import split_properties
    from reportgen.evaluate.slices import slice_report

    test = data.ds.splits["test"]
    if not data.ds.labeled or not len(test):
        if data.metadata is not None:
            run.notes.append(f"data.metadata ({data.metadata.name}) was read, but the test "
                             "images have no labels: no accuracy per slice.")
        return None
    with run.timer.stage("slices"):
        threshold = operating_threshold(run.cfg, data.ds)
        correct = ev.predict_labels(probs["test"], threshold) == test.labels
        columns, missing = (data.metadata.values(test.paths) if data.metadata is not None
                            else (None, 0))
        return slice_report(correct, split_properties(test).known(), columns, missing=missing,
                            source=data.metadata.name if data.metadata is not None else None,
                            classes=(test.labels, data.ds.class_names))


def explain(run: Run, fitted: Fitted, data: Data, probs: dict[str, np.ndarray]):
    """GradCAM over the whole test set, every method with the quality table, the Layers page;
    the results carry the plan they ran to (as re-planned)."""
    from reportgen.explain import suite
    from reportgen.explain.plan import OPAQUE_HEAD, progress_steps

    test = data.ds.splits["test"]
    ex = suite.explainer_for(fitted.model, run.cfg, data.shape)
    with run.timer.stage("explain"), collecting() as failures:
        cfg, options, plan, late = guarded_plan(run, ex, data, fitted.prep)
        t0 = time.perf_counter()
        with prog.bar("Explaining (GradCAM)", len(test), run.show) as advance:
            explained = suite.explain_test_set(
                ex, test, fitted.prep, probs["test"], cfg.explain.gallery_size, progress=advance,
                threshold=operating_threshold(run.cfg, data.ds))
        explained.seconds["test set"] = time.perf_counter() - t0
        explained.notes += [f"Sanity check skipped: {r.why}." for r in
                            (plan.reductions if plan else ()) if r.why == OPAQUE_HEAD]
        scored = plan.quality_methods if plan else list(options)
        weights = progress_steps(plan, scored)
        with prog.bar("Methods and quality", prog.steps(weights), run.show) as advance:
            suite.explain_methods(ex, test, fitted.prep, probs["test"], cfg, options,
                                  explained, progress=prog.weighted(advance, weights),
                                  explained=explained_classes(cfg, data.ds.class_names),
                                  quality_methods=plan.quality_methods if plan else None,
                                  replan=late)
        cfg = late.cfg
        t0 = time.perf_counter()
        with prog.bar("Layers", 4, run.show) as advance:
            suite.explain_layers(ex, test, fitted.prep, cfg, explained, progress=advance)
        explained.seconds["layers"] = time.perf_counter() - t0
    explained.plan = late.plan
    explained.failures = failures
    return explained


def guarded_plan(run: Run, ex, data: Data, prep) -> tuple:
    """:func:`planned`, or, where probing the model fails (a failure noted like any other
    part's), the settings as configured with no plan."""
    with optional_part("planning (timing the model)", ex.layer_or_none()):
        return planned(run, ex, data, prep)
    return run.cfg, run.options, None, LatePlan(run, run.cfg)


class LatePlan:
    """The re-plan of the quality table and the Layers page once the early parts ran
    (:func:`reportgen.explain.plan.replan`): called with the measured seconds of the parts,
    it says any new reduction and returns (the config, the quality table's methods);
    :attr:`cfg` is then the config the rest of the build runs with, :attr:`plan` the plan
    (None without test images)."""

    def __init__(self, run: Run, cfg: Config, plan=None):
        self.run, self.cfg, self.plan = run, cfg, plan

    def __call__(self, seconds: dict[str, float]) -> tuple[Config, list[str] | None]:
        from reportgen.explain import plan as pl

        if self.plan is None:
            return self.cfg, None
        before = len(self.plan.reductions)
        self.plan = pl.replan(self.plan, seconds, set(self.cfg.given))
        for line in self.plan.reduced[before:]:
            prog.say(f"Plan: {line}", self.run.show)
        self.cfg = with_settings(self.cfg, self.plan.settings)
        return self.cfg, self.plan.quality_methods


def with_settings(cfg: Config, settings: dict) -> Config:
    """``cfg`` with the explain ``settings`` (a plan's, as run)."""
    return dataclasses.replace(cfg, explain=dataclasses.replace(cfg.explain, **settings))


#: The keys of [explain] the plan carries (the method tables are its options).
PLANNED_KEYS = tuple(f.name for f in dataclasses.fields(ExplainConfig)
                     if f.name != "method_options")


def planned(run: Run, ex, data: Data, prep) -> tuple:
    """Probe the model, plan the work to explain.budget and the memory budget, and say what
    was reduced; return (the config with the planned explain settings, the planned method
    options, the :class:`~reportgen.explain.plan.Plan` (None without test images), the
    :class:`LatePlan` that re-plans the rest once the early parts ran). The explainer's
    batch sizes become the planned ones."""
    from reportgen.explain import plan as pl
    from reportgen.explain import suite
    from reportgen.explain.methods import Shape

    cfg, test, names = run.cfg, data.ds.splits["test"], data.ds.class_names
    e = cfg.explain
    if not len(test):
        return cfg, run.options, None, LatePlan(run, cfg)
    shown = suite.shown_classes(test.labels, len(names))
    try:
        channels = int(ex.graph.layer_shapes[ex.layer][-1])
    except ValueError:
        channels = None
    rf = suite.rf_search(ex, len(test), e.receptive_units)
    w = pl.Work(len(test), len(suite.stratified(test.labels, e.samples_per_class, len(names),
                                                shown)),
                len(shown), len(explained_classes(cfg, names) or shown),
                Shape(*data.shape[:2], channels), {k: getattr(e, k) for k in PLANNED_KEYS},
                run.options, tuple(run.options), rf)
    memory = pl.memory_budget(e.memory_gb)
    # Timed compiled, at the batch the work runs at: an eager timing (an upper bound) made
    # estimates several times too high, a batch of 32 those of work in batches of 128 too.
    batch = e.batch_size if "explain.batch_size" in cfg.given else \
        pl.memory_batch(pl.activation_bytes(ex.graph), memory)
    probe = pl.probe(ex, prep(test.images[:4]), min(batch, pl.MAX_BATCH), compiled=True)
    plan = pl.make_plan(probe, w, pl.time_budget(e.budget, probe, len(test)), memory,
                        set(cfg.given), e.batch_size, budget_default=not e.budget,
                        no_sanity=pl.OPAQUE_HEAD if ex.graph.opaque else None)
    ex.batch_size = plan.batch_size
    ex.batch_sizes = {**plan.batch_sizes, "curves": plan.forward_batch_size}
    for line in plan.reduced + list(plan.notes):
        prog.say(f"Plan: {line}", run.show)
    prog.say(f"Plan: explaining takes about {duration(sum(plan.estimate_s.values()))} "
             f"(explain.budget {duration(plan.budget_s)}"
             f"{', the default' if not e.budget else ''})", run.show)
    cfg = with_settings(cfg, plan.settings)
    return cfg, plan.options, plan, LatePlan(run, cfg, plan)


def predict_and_explain(run: Run, fitted: Fitted, data: Data) -> ExplainBundle:
    """:func:`predict` and :func:`explain`, or both from the cache when an earlier build had
    the same model, data and explain settings."""
    entry = explain_key(run, fitted, data)
    hit = run.cache.get_explained(entry)
    if hit is not None:
        run.reused("the predictions and explanations", "model, data and explain settings",
                   "recomputes")
        return hit
    probs = predict(run, fitted, data)
    bundle = ExplainBundle(probs, explain(run, fitted, grouped(data, probs), probs))
    if not bundle.explained.failures:  # a failed part is tried again by the next build
        run.cache.put_explained(entry, bundle)
    return bundle


def describe(fitted: Fitted, data: Data):
    """The Model page's :class:`~reportgen.report.inputs.ModelInfo`."""
    import keras
    import tensorflow as tf

    from reportgen import model as mdl
    from reportgen.data.folder import files_hash
    from reportgen.report.inputs import ModelInfo

    model, ds = fitted.model, data.ds
    return ModelInfo(
        version=__version__, python=platform.python_version(), tensorflow=tf.__version__,
        keras=keras.__version__, numpy=np.__version__, model_hash=fitted.weights_hash,
        data_hash=data.hash, params=mdl.count_params(model),
        summary=[vars(r) for r in mdl.summary_rows(model)], input_shape=list(data.shape),
        model_name=model.name, preprocess=fitted.preprocess,
        test_hash=files_hash(ds.root, ds.splits["test"], ds.class_names))


def model_file_job(run: Run, fitted: Fitted) -> Callable[[Path], object] | None:
    """How the site gets ``model.keras`` for a model trained here: a copy of the cached one,
    or saved anew without a cache; None for a given model."""
    from reportgen import model as mdl

    if fitted.train_key is None:
        return None
    cached = run.cache.model_file(fitted.train_key)
    if cached is not None:
        import shutil
        return lambda path: shutil.copyfile(cached, path)
    return lambda path: mdl.save_model(fitted.model, path)


def write(run: Run, out: Path, inputs, drawn: dict, model_file: Callable | None) -> Path:
    """Gather the report, then write it into ``out`` atomically; return the index path.
    ``run.failures`` becomes the parts that failed; with ``run.strict``, any ends the build
    (:class:`~reportgen.errors.PartsFailed`) before the site replaces ``out``."""
    from reportgen import report
    from reportgen.report.site import SiteWriter

    content = report.gather(inputs, drawn)
    if model_file is not None and run.cfg.report.include_model:
        content.assets.file("model.keras", model_file)
    with run.timer.stage("write"), SiteWriter(out) as site:
        index = report.write_site(site, content, run.figures, run.timer.times, run.show)
        run.failures = list(content.failures)
        if run.strict and run.failures:
            raise PartsFailed(run.failures, out)
        # The marker stays on this machine (never published): compare reads the images here.
        site.commit({"config": run.cfg.to_dict(), "data_root": str(inputs.ds.root)})
    return site.out / index.name
