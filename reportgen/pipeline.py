"""The build: config -> data -> model -> evaluate -> explain -> figures -> report -> site.

Everything is gathered first; the site is written into a temporary folder and swapped in only
when complete (see :mod:`reportgen.report.site`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import platform
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reportgen import __version__
from reportgen import progress as prog
from reportgen.config import Config
from reportgen.errors import ConfigError, ModelError, ReportgenError

log = logging.getLogger(__name__)


@dataclass
class BuildResult:
    """What a build produced: the site folder, its index page and per-stage wall times."""

    out: Path
    index: Path
    timings: dict[str, float] = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)


class _Timer:
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


def _quiet_tensorflow() -> None:
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


def _data_hash(ds) -> str:
    h = hashlib.sha256()
    for name in ("train", "val", "test"):
        s = ds.splits[name]
        h.update(name.encode())
        h.update(np.ascontiguousarray(s.images).tobytes())
        h.update(s.labels.tobytes())
    return h.hexdigest()


class _Cache:
    """Files of earlier builds keyed by a hash of everything they depend on.

    ``train-<key>/``: the trained model and its history (key: data, model and training settings);
    ``explain-<key>.pkl``: predictions and explanations (key: model weights, data, explain
    settings). Entries are written to a temporary name and renamed, so a crash leaves none half
    written.
    """

    def __init__(self, cfg: Config):
        from reportgen.data.shapes import default_cache_dir

        base = cfg.resolve(cfg.data.cache_dir) if cfg.data.cache_dir else default_cache_dir()
        self.root = base / "builds"
        self.enabled = cfg.report.cache

    #: Bumped whenever what is pickled changes shape, so older entries are never read.
    FORMAT = 3

    @staticmethod
    def key(**parts) -> str:
        text = json.dumps({"version": __version__, "format": _Cache.FORMAT, **parts},
                          sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    def load_training(self, key: str, mdl):
        d = self.root / f"train-{key}"
        if not self.enabled or not (d / "history.json").is_file():
            return None
        try:
            return (mdl.load_model(d / "model.keras"),
                    json.loads((d / "history.json").read_text()))
        except (ReportgenError, OSError, ValueError):
            return None

    def save_training(self, key: str, model, history: dict, mdl) -> None:
        if not self.enabled:
            return
        import shutil
        import tempfile
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".train-", dir=self.root))
        try:
            mdl.save_model(model, tmp / "model.keras")
            (tmp / "history.json").write_text(json.dumps(history))
            os.replace(tmp, self.root / f"train-{key}")
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)

    # -- whole reports: a rebuild with nothing changed but the report settings needs no
    # TensorFlow. Keyed by the config without its [report] table, the data and, for a given
    # model, the bytes of its file (whose input shape is remembered, so the images can be read
    # before the model is loaded).

    def _model_file_hash(self, cfg: Config) -> str | None:
        if cfg.model.source != "load":
            return None
        if not hasattr(self, "_file_hash"):
            path = cfg.resolve(cfg.model.path)
            self._file_hash = None
            if path.is_file():
                h = hashlib.sha256()
                with open(path, "rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        h.update(block)
                self._file_hash = h.hexdigest()
        return self._file_hash

    def known_shape(self, cfg: Config) -> tuple[int, int, int] | None:
        """The (H, W, C) the images are read at, when known without loading the model."""
        if not self.enabled:
            return None
        if cfg.model.source != "load":
            return (cfg.data.image_size, cfg.data.image_size, 3)
        digest = self._model_file_hash(cfg)
        path = self.root / f"model-{digest}.json"
        try:
            return tuple(json.loads(path.read_text())["shape"]) if digest else None
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def remember_shape(self, cfg: Config, shape: tuple[int, int, int]) -> None:
        digest = self._model_file_hash(cfg)
        if self.enabled and digest:
            self._write_atomic(f"model-{digest}.json",
                               json.dumps({"shape": list(shape)}).encode())

    def report_key(self, cfg: Config, data_hash: str) -> str:
        settings = {k: v for k, v in cfg.to_dict().items() if k != "report"}
        return self.key(kind="report", settings=settings, data=data_hash,
                        model_file=self._model_file_hash(cfg))

    def model_file(self, train_key: str) -> Path | None:
        """The cached trained model of ``train_key``, if there is one."""
        path = self.root / f"train-{train_key}" / "model.keras"
        return path if self.enabled and path.is_file() else None

    def load_report(self, key: str):
        hit = self.load_pickle("report", key)
        if not isinstance(hit, dict) or not isinstance(hit.get("explained"), dict):
            return None
        if hit["model_file"] is not None and not Path(hit["model_file"]).is_file():
            return None  # the trained model it points to was removed from the cache
        return hit

    def save_report(self, key: str, value) -> None:
        self.save_pickle("report", key, value)

    def _write_atomic(self, name: str, data: bytes) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{name}.{os.getpid()}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, self.root / name)

    def load_pickle(self, prefix: str, key: str):
        """Entry ``<prefix>-<key>.pkl`` (``explain``: predictions and explanations; ``report``:
        everything a TensorFlow-free rebuild needs), or None."""
        path = self.root / f"{prefix}-{key}.pkl"
        if not self.enabled or not path.is_file():
            return None
        try:
            with open(path, "rb") as f:
                return pickle.load(f)
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError,
                KeyError, TypeError):
            return None

    def save_pickle(self, prefix: str, key: str, value) -> None:
        if self.enabled:
            self._write_atomic(f"{prefix}-{key}.pkl",
                               pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))


def _read_data(cfg: Config, shape: tuple[int, int, int], show: bool):
    """Read the data at ``shape`` (H, W, C), saying which files were skipped."""
    ds = load_data(cfg, shape[:2], shape[2], show)
    if ds.skipped:
        prog.say(f"Warning: skipped {len(ds.skipped)} unreadable or non-image file(s), "
                 "listed in the report: " + "; ".join(f"{p} ({r})" for p, r in ds.skipped[:5])
                 + (" ..." if len(ds.skipped) > 5 else ""))
    if ds.dropped_classes:
        prog.say("Warning: class folder(s) with no readable image dropped: "
                 + ", ".join(ds.dropped_classes))
    return ds


def load_data(cfg: Config, size: tuple[int, int], channels: int, show: bool):
    """Return the Dataset for ``cfg`` (generating the shapes demo first where asked)."""
    from reportgen.data import generate_shapes, load_dataset
    from reportgen.data.folder import count_files
    from reportgen.data.shapes import CLASSES

    if cfg.data.source == "shapes":
        n = cfg.data.shapes_per_class * len(CLASSES)
        cache = cfg.resolve(cfg.data.cache_dir) if cfg.data.cache_dir else None
        with prog.bar("Generating shapes", n, show) as advance:
            root = generate_shapes(cache, per_class=cfg.data.shapes_per_class,
                                   size=cfg.data.image_size, seed=cfg.training.seed,
                                   progress=advance)
    else:
        root = cfg.resolve(cfg.data.path)
        if not root.is_dir():
            raise ConfigError(f"data.path: folder not found: {root}")
    with prog.bar("Reading images", count_files(root), show) as advance:
        return load_dataset(root, size=size, channels=channels, split=list(cfg.data.split),
                            seed=cfg.training.seed, annotations=cfg.data.annotations,
                            progress=advance)


def build(cfg: Config, out: str | Path, *, show_progress: bool = True) -> BuildResult:
    """Run the whole build for ``cfg`` and write the site into ``out``.

    Raises:
        ReportgenError: a user mistake (config, data, model, output folder), with a one-line
            message naming the key or file.
    """
    from reportgen.report import Figures
    from reportgen.report.site import check_output

    out = Path(out)
    check_output(out.absolute())  # refuse a foreign folder before hours of work
    t_start = time.perf_counter()
    cache = _Cache(cfg)
    # A worker process draws the figures of the metrics while the explanations run; it starts
    # now, so that its matplotlib import overlaps TensorFlow's.
    with Figures(cfg.report.figure_formats, cache.root / "figures" if cache.enabled else None,
                 warm=True) as figures:
        return _build(cfg, out, show_progress, t_start, cache, figures)


def _build(cfg: Config, out: Path, show_progress: bool, t_start: float, cache: "_Cache",
           figures) -> BuildResult:
    from reportgen import evaluate as ev
    from reportgen.report import metric_figures

    timer = _Timer()
    show = show_progress
    notes: list[str] = []

    # -- everything from an earlier build: no TensorFlow at all --------------------------------
    ds = None
    shape = cache.known_shape(cfg)
    if shape is not None:
        with timer.stage("load"):
            ds = _read_data(cfg, shape, show)
        data_hash = _data_hash(ds)
        earlier = cache.load_report(cache.report_key(cfg, data_hash))
        if earlier is not None:
            from types import SimpleNamespace

            earlier["explained"] = SimpleNamespace(**earlier["explained"])
            prog.say("Reusing the predictions and explanations of an earlier build with the "
                     "same model, data and settings (cache; report.cache = false recomputes)")
            metrics = {name: ev.split_metrics(earlier["probs"][name], ds.splits[name].labels,
                                              ds.class_names, cfg.report.top_k)
                       for name in ds.splits}
            drawn = metric_figures(figures, cfg, ds, metrics, earlier["history"])
            notes = earlier["notes"] + [
                "Predictions and explanations were reused from an earlier build with the same "
                "model, data and settings (cache)."] + earlier["explained"].notes
            return _write(cfg, out, ds, earlier["probs"], metrics, earlier["history"],
                          earlier["explained"], earlier["info"], notes, timer, figures, drawn,
                          t_start, show, earlier["model_file"])

    _quiet_tensorflow()
    import keras

    from reportgen import model as mdl

    # -- model first when loading: its input decides the image size -----------------------------
    with timer.stage("load"):
        loaded = None
        if cfg.model.source == "load":
            loaded = mdl.load_model(cfg.resolve(cfg.model.path), safe_mode=cfg.model.safe_mode)
            h, w, channels = mdl.input_spec(loaded)
            if h is None or w is None:
                h = w = cfg.data.image_size
            if len(loaded.outputs) > 1:
                notes.append(f"The model has {len(loaded.outputs)} outputs; output "
                             f"{cfg.model.output_index} (model.output_index) is explained.")
            if channels not in (1, 3):
                raise ModelError(f"model.path: the model expects {channels} input channels; "
                                 "reportgen reads images as 1 (grayscale) or 3 (RGB) channels")
        else:
            h = w = cfg.data.image_size
            channels = 3
        if ds is None or ds.splits["test"].images.shape[1:] != (h, w, channels):
            ds = _read_data(cfg, (h, w, channels), show)
            data_hash = _data_hash(ds)
        if cfg.model.source == "load" and cfg.data.image_size != h:
            notes.append(f"Images were resized to the model's input, {h}x{w} px "
                         f"(data.image_size = {cfg.data.image_size} applies to training only).")

    n_classes = len(ds.class_names)
    preprocess = "none" if cfg.model.preprocess == "auto" else cfg.model.preprocess

    def prep(images: np.ndarray) -> np.ndarray:
        x = images.astype(np.float32)
        return np.asarray(mdl.apply_preprocess(x, preprocess), dtype=np.float32)

    # -- model --------------------------------------------------------------------------------------
    history: dict = {}
    with timer.stage("train"):
        train_key = cache.key(data=data_hash, model=cfg.to_dict()["model"],
                              training=cfg.to_dict()["training"], shape=[h, w, channels],
                              classes=ds.class_names, preprocess=preprocess)
        hit = cache.load_training(train_key, mdl) if loaded is None else None
        if hit is not None:
            model, history = hit
            prog.say("Reusing the model trained by an earlier build with the same data and "
                     "settings (cache; report.cache = false retrains)")
            notes.append("The model was trained by an earlier build with the same data and "
                         "settings and reused from the cache.")
        elif loaded is None:
            base = mdl.build_model(cfg.model.architecture, (h, w, channels), n_classes,
                                   weights=cfg.model.weights, freeze_base=cfg.model.freeze_base,
                                   seed=cfg.training.seed)
            tr, va = ds.splits["train"], ds.splits["val"]
            with prog.bar("Training (epochs)", cfg.training.epochs, show) as advance:
                model, history = mdl.train(
                    base, prep(tr.images), tr.labels, prep(va.images) if len(va) else None,
                    va.labels if len(va) else None, epochs=cfg.training.epochs,
                    batch_size=cfg.training.batch_size, learning_rate=cfg.training.learning_rate,
                    patience=cfg.training.patience, seed=cfg.training.seed,
                    on_epoch=lambda e, logs: advance(1))
            cache.save_training(train_key, model, history, mdl)
        else:
            model = loaded
        if history and len(history.get("loss", [])) < cfg.training.epochs:
            notes.append(f"Early stopping ended training after {len(history['loss'])} of "
                         f"{cfg.training.epochs} epochs (best validation loss restored).")
        got = mdl.output_count(model, cfg.model.output_index)
        if got != n_classes:
            raise ModelError(f"model.path: the model predicts {got} classes but the data has "
                             f"{n_classes} ({', '.join(ds.class_names)})")

    model_notes = list(notes)
    model_hash = mdl.weights_hash(model)
    explain_key = cache.key(model=model_hash, data=data_hash, explain=cfg.to_dict()["explain"],
                            output_index=cfg.model.output_index, preprocess=preprocess,
                            seed=cfg.training.seed)
    cached = cache.load_pickle("explain", explain_key)
    if cached is not None:
        prog.say("Reusing predictions and explanations of an earlier build with the same "
                 "model, data and explain settings (cache)")

    # -- predictions and metrics ----------------------------------------------------------------
    with timer.stage("predict"):
        probs = {} if cached is None else cached["probs"]
        total = sum(len(s) for s in ds.splits.values())
        with prog.bar("Predicting", total if cached is None else 0, show) as advance:
            for name, split in ds.splits.items() if cached is None else ():
                raw = mdl.predict_outputs(model, split.images, preprocess=prep,
                                          batch_size=cfg.explain.batch_size,
                                          output_index=cfg.model.output_index, progress=advance)
                probs[name] = ev.to_probabilities(raw)
        metrics = {name: ev.split_metrics(probs[name], ds.splits[name].labels, ds.class_names,
                                          cfg.report.top_k)
                   for name in ds.splits}
    drawn = metric_figures(figures, cfg, ds, metrics, history)

    # -- explanations over the test set -------------------------------------------------------
    from reportgen.explain.suite import explain_layers, explain_methods, explain_test_set

    test = ds.splits["test"]
    if cached is not None:
        explained = cached["explained"]
        notes.append("Predictions and explanations were reused from an earlier build with the "
                     "same model, data and explain settings (cache).")
    else:
        with timer.stage("explain"):
            t0 = time.perf_counter()
            with prog.bar("Explaining (GradCAM)", len(test), show) as advance:
                explained = explain_test_set(model, test, prep, probs["test"], cfg,
                                             progress=advance)
            explained.seconds["test set"] = time.perf_counter() - t0
            with prog.bar("Methods and quality", len(cfg.explain.methods) + 1, show) as adv:
                explain_methods(model, test, prep, probs["test"], cfg, explained, progress=adv)
            t0 = time.perf_counter()
            with prog.bar("Layers", 4, show) as advance:
                explain_layers(model, test, prep, cfg, explained, progress=advance)
            explained.seconds["layers"] = time.perf_counter() - t0
        cache.save_pickle("explain", explain_key, {"probs": probs, "explained": explained})
    notes.extend(explained.notes)

    # -- figures, pages, site --------------------------------------------------------------------
    info = {
        "version": __version__,
        "python": platform.python_version(),
        "tensorflow": __import__("tensorflow").__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "model_hash": model_hash,
        "data_hash": data_hash,
        "params": mdl.count_params(model),
        "summary": [vars(r) for r in mdl.summary_rows(model)],
        "input_shape": [h, w, channels],
        "model_name": model.name,
        "preprocess": preprocess,
    }
    model_file = None
    if loaded is None:
        model_file = cache.model_file(train_key)
        if model_file is None:  # no cache: save the trained model into the site
            model_file = lambda path: mdl.save_model(model, path)  # noqa: E731
    result = _write(cfg, out, ds, probs, metrics, history, explained, info, notes, timer,
                    figures, drawn, t_start, show, model_file)
    cache.remember_shape(cfg, (h, w, channels))
    # Stored as plain data: unpickling the Explained dataclass would import the explain layer,
    # and with it TensorFlow, which the cached path exists to avoid.
    cache.save_report(cache.report_key(cfg, data_hash), {
        "probs": probs, "explained": {**vars(explained), "peaks": None}, "info": info,
        "history": history,
        "notes": model_notes, "model_file": cache.model_file(train_key) if loaded is None
        else None})
    return result


def _write(cfg, out, ds, probs, metrics, history, explained, info, notes, timer, figures,
           drawn, t_start, show, model_file) -> BuildResult:
    """Write the site; ``model_file``: the trained model to include (a path to copy, or a
    function that saves it to the path it is given), None for a model the user gave."""
    import shutil

    from reportgen.report import write_site
    from reportgen.report.site import SiteWriter

    with SiteWriter(out) as site:
        if model_file is not None:
            with timer.stage("write"):
                dest = site.path("model.keras")
                if callable(model_file):
                    model_file(dest)
                else:
                    shutil.copyfile(model_file, dest)
        index = write_site(site, cfg=cfg, ds=ds, probs=probs, metrics=metrics, history=history,
                           explained=explained, info=info, notes=notes, timer=timer,
                           show_progress=show, figures=figures, drawn=drawn)
        timer.times["total"] = time.perf_counter() - t_start
        site.commit({"config": cfg.to_dict()})
    return BuildResult(out=site.out, index=site.out / index.name, timings=dict(timer.times),
                       metrics=metrics)


__all__ = ["build", "BuildResult", "ReportgenError"]
