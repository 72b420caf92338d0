"""The build cache: files of earlier builds keyed by a hash of everything they depend on.

Three kinds of entry, each with a typed get and put:

* ``train-<key>/``: a trained model and its history (key: data, model and training settings);
* ``explain-<key>.pkl``: an :class:`ExplainBundle`, predictions and explanations (key: model
  weights, data, explain settings);
* ``report-<key>.pkl``: a :class:`ReportBundle`, everything a rebuild needs when only
  ``[report]``, ``[evaluate]`` or ``[card]`` settings changed; it loads without TensorFlow
  (key: the config without those tables, the data and, for a given model, the bytes of its
  file, whose input shape is remembered in ``model-<sha>.json`` so the images can be read
  before the model is loaded).

Entries are written to a temporary name and renamed, so a crash leaves none half written; an
entry of another format, or one that cannot be read, is a miss.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from reportgen import __version__, scratch
from reportgen import progress as prog
from reportgen.config import NOT_PATHS, Config
from reportgen.data.store import chunks
from reportgen.errors import ReportgenError
from reportgen.explain.penultimate import Features
from reportgen.explain.results import Explained
from reportgen.model.sources import source_for
from reportgen.report.inputs import ModelInfo

if TYPE_CHECKING:  # annotations only: no import at run time
    from reportgen.data.folder import Dataset

#: Per kind of entry, bumped whenever what it stores changes shape, so older entries are never
#: read (a trained model's files have not changed: its entries survive new result types).
FORMATS = {"train": 3, "explain": 15, "report": 15}


@dataclass
class ExplainBundle:
    """Predictions {split: (N, classes) probabilities}, the explanations of one model, and
    the penultimate-layer features of the same prediction pass (None: not collected)."""

    probs: dict[str, np.ndarray]
    explained: Explained
    features: Features | None = None


@dataclass
class ReportBundle:
    """Everything but the report settings: a rebuild from it needs no TensorFlow.
    ``model_file``: the cached trained model to copy into the site (None for a given model).
    """

    probs: dict[str, np.ndarray]
    explained: Explained
    info: ModelInfo
    history: dict[str, list[float]]
    notes: list[str]
    method_options: dict[str, dict]
    model_file: str | None
    #: The penultimate-layer features of the prediction pass (None: not collected).
    features: Features | None = None


def data_hash(ds: Dataset) -> str:
    """SHA-256 of everything read from the data: per split the decoded images, labels, file
    paths and object boxes (a new or changed annotations file changes it), and the class
    names, and whether the data is labeled."""
    h = hashlib.sha256()
    h.update(b"labeled\0" if ds.labeled else b"unlabeled\0")
    h.update("\0".join(ds.class_names).encode("utf-8", "surrogateescape"))
    for name in ("train", "val", "test"):
        s = ds.splits[name]
        h.update(name.encode())
        for chunk in chunks(s.images):  # a batch at a time: the images may be on disk
            h.update(np.ascontiguousarray(chunk).tobytes())
        h.update(s.labels.tobytes())
        h.update("\0".join(s.paths).encode("utf-8", "surrogateescape"))
        h.update(np.ascontiguousarray(s.boxes, np.float32).tobytes())
    return h.hexdigest()


@lru_cache(maxsize=1)
def _software() -> dict[str, str]:
    """Versions of the libraries that compute the results (read without importing them)."""
    from importlib import metadata

    out = {}
    for name in ("tensorflow", "keras", "numpy"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = ""
    return out


def _hash_files(h: hashlib._Hash, path: Path) -> None:
    """Add ``path`` (a file, or every file of a folder with its relative path) to hash ``h``."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    h.update(str(len(files)).encode())
    for file in files:
        h.update(os.fsencode(file.relative_to(path).as_posix()) if file != path else b"")
        with open(file, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)


def key(kind: str, **parts) -> str:
    """A short hash of an entry of ``kind`` ("train", "explain", "report"): its ``parts``
    (plain data), reportgen's version and the kind's format."""
    text = json.dumps({"version": __version__, "kind": kind, "format": FORMATS[kind],
                       "software": _software(), **parts}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class BuildCache:
    """The cache of one build's config (``report.cache``, under ``data.cache_dir``)."""

    def __init__(self, cfg: Config, train_shape: tuple[int, int, int] | None = None):
        from reportgen.data.shapes import default_cache_dir

        base = cfg.resolve(cfg.data.cache_dir) if cfg.data.cache_dir else default_cache_dir()
        self.root = base / "builds"
        self.enabled = cfg.report.cache
        self.cfg = cfg
        #: The input shape of a model trained here (chosen from the data before the build).
        self.train_shape: tuple[int, int, int] = \
            train_shape or (cfg.data.image_size, cfg.data.image_size, 3)
        self._file_hash: tuple[str | None] | None = None  # (files_key(),) once computed
        #: Where the model comes from: it says what of the model is part of the keys.
        self.source = source_for(cfg)
        self.write_failed = False

    # -- trained models -------------------------------------------------------------------------

    def get_trained(self, train_key: str, load_model: Callable[[Path], Any]
                    ) -> tuple[Any, dict] | None:
        """(model, history) trained under ``train_key``, loaded by ``load_model(path)``."""
        d = self.root / f"train-{train_key}"
        if not self.enabled or not (d / "history.json").is_file():
            return None
        try:
            hit = load_model(d / "model.keras"), json.loads((d / "history.json").read_text())
        except (ReportgenError, OSError, ValueError):
            return None
        scratch.touch(d)
        return hit

    def put_trained(self, train_key: str, save_model: Callable[[Path], object], history: dict
                    ) -> None:
        """Store a trained model (written by ``save_model(path)``) and its history."""
        if not self.enabled:
            return
        tmp = None
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            scratch.sweep(self.root, ".train-")  # left by killed builds
            tmp = scratch.mkdtemp(".train-", self.root)
            save_model(tmp / "model.keras")
            (tmp / "history.json").write_text(json.dumps(history))
            os.replace(tmp, self.root / f"train-{train_key}")
        except OSError as e:
            self._failed(e)
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)

    def _failed(self, e: OSError) -> None:
        """A cache write failed (full disk, read-only folder): say so once and go on; the
        cache only saves time."""
        if not self.write_failed:
            prog.say(f"Warning: cannot write the cache {self.root}: {e.strerror or e}; "
                     "building without storing results (report.cache = false silences this)")
        self.write_failed = True

    def model_file(self, train_key: str) -> Path | None:
        """The cached trained model of ``train_key``, if there is one."""
        path = self.root / f"train-{train_key}" / "model.keras"
        if not (self.enabled and path.is_file()):
            return None
        scratch.touch(path.parent)
        return path

    # -- predictions and explanations -----------------------------------------------------------

    def get_explained(self, explain_key: str) -> ExplainBundle | None:
        hit = self._load("explain", explain_key)
        return hit if isinstance(hit, ExplainBundle) else None

    def put_explained(self, explain_key: str, bundle: ExplainBundle) -> None:
        self._save("explain", explain_key, bundle)

    # -- whole reports ----------------------------------------------------------------------------

    def report_key(self, data_hash_: str) -> str:
        # [report], [evaluate] and [card] are applied to the cached predictions, never keyed,
        # but for evaluate.threshold: the galleries and maps of the predicted class were chosen
        # at it.
        settings = {k: v for k, v in self.cfg.to_dict().items()
                    if k not in ("report", "evaluate", "card")}
        if "evaluate.threshold" in self.cfg.given:
            settings["threshold"] = self.cfg.evaluate.threshold
        # A report depends on the trained model and the explanations too: a change of their
        # formats (a model built differently for the same settings) is a miss here as well.
        return key("report", settings=settings, data=data_hash_,
                   model_file=self.files_key(), formats=FORMATS)

    def get_report(self, report_key: str) -> ReportBundle | None:
        hit = self._load("report", report_key)
        if not isinstance(hit, ReportBundle):
            return None
        if hit.model_file is not None and not Path(hit.model_file).is_file():
            return None  # the trained model it points to was removed from the cache
        return hit

    def put_report(self, report_key: str, bundle: ReportBundle) -> None:
        self._save("report", report_key, bundle)

    def known_shape(self) -> tuple[int, int, int] | None:
        """The (H, W, C) the images are read at, when known without loading the model."""
        if not self.enabled:
            return None
        if self.source.trains:
            return self.train_shape
        digest = self.files_key()
        if digest is None:
            return None
        try:
            return tuple(json.loads((self.root / f"model-{digest}.json").read_text())["shape"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def remember_shape(self, shape: tuple[int, int, int]) -> None:
        digest = self.files_key()
        if self.enabled and digest:
            self._write_atomic(f"model-{digest}.json",
                               json.dumps({"shape": list(shape)}).encode())

    def files_key(self) -> str | None:
        """SHA-256 of every model file the config names: ``model.path`` (a file, or every file
        of a SavedModel folder) when loading, and a ``model.weights`` file; for a
        keras.applications model, also its name and input size (which decide its shape).
        None when there is none (a model trained here from random or ImageNet weights)."""
        if self._file_hash is None:
            self._file_hash = (self._hash_model_files(),)
        return self._file_hash[0]

    def _hash_model_files(self) -> str | None:
        """:meth:`files_key`, computed: the source's files, a weights file, then the source's
        plain-data parts (:meth:`~reportgen.model.sources.base.ModelSource.key_files`,
        :meth:`~reportgen.model.sources.base.ModelSource.key_parts`)."""
        weights = self.cfg.weights()
        h = hashlib.sha256()
        named = False
        for path in self.source.key_files():
            _hash_files(h, path)
            named = True
        if weights not in NOT_PATHS and Path(weights).exists():
            _hash_files(h, Path(weights))
            named = True
        parts = self.source.key_parts()
        if parts is not None:
            h.update(json.dumps(parts).encode())
            named = True
        return h.hexdigest() if named else None

    # -- files -------------------------------------------------------------------------------------

    def _write_atomic(self, name: str, data: bytes) -> None:
        tmp = self.root / f".tmp-{os.getpid()}-{name}"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            scratch.sweep(self.root, ".tmp-")  # left by killed builds
            tmp.write_bytes(data)
            os.replace(tmp, self.root / name)
        except OSError as e:
            self._failed(e)
        finally:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass

    def _load(self, prefix: str, entry_key: str) -> object:
        path = self.root / f"{prefix}-{entry_key}.pkl"
        if not self.enabled or not path.is_file():
            return None
        try:
            with open(path, "rb") as f:
                hit = pickle.load(f)
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError,
                KeyError, TypeError):
            return None
        scratch.touch(path)
        return hit

    def _save(self, prefix: str, entry_key: str, value: object) -> None:
        if self.enabled:
            self._write_atomic(f"{prefix}-{entry_key}.pkl",
                               pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))


# -- reportgen cache: what is stored, and pruning it ----------------------------------------------

#: What ``reportgen cache`` counts and removes: (glob under the cache folder, kind). Nothing
#: else in the folder is ever touched (``data.cache_dir`` may be a folder of the user's).
ENTRY_KINDS = (
    ("shapes-v*", "shapes demo data"),
    ("builds/train-*", "trained models"),
    ("builds/explain-*.pkl", "predictions and explanations"),
    ("builds/report-*.pkl", "reports"),
    ("builds/model-*.json", "model input sizes"),
    ("builds/figures/*", "figures"),
)


@dataclass
class Entry:
    """One cache entry: its path, kind, size in bytes and when it was last used (a build
    that reuses an entry touches it; seconds since the epoch)."""

    path: Path
    kind: str
    size: int
    used: float


def _size(path: Path) -> int:
    """Bytes of a file, or of every file under a folder (links not followed)."""
    if path.is_symlink() or path.is_file():
        return path.lstat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_symlink() or p.is_file())


def cache_entries(base: Path) -> list[Entry]:
    """Every entry of the cache folder ``base`` (``data.cache_dir``, by default
    ``~/.cache/reportgen``), least recently used first."""
    out = []
    for pattern, kind in ENTRY_KINDS:
        for path in Path(base).glob(pattern):
            try:
                out.append(Entry(path, kind, _size(path), path.lstat().st_mtime))
            except OSError:  # removed meanwhile (a build pruning or replacing it)
                continue
    return sorted(out, key=lambda e: (e.used, str(e.path)))


def remove_entry(entry: Entry) -> None:
    """Delete one cache entry (a file or a folder)."""
    if entry.path.is_dir() and not entry.path.is_symlink():
        shutil.rmtree(entry.path, ignore_errors=True)
    else:
        entry.path.unlink(missing_ok=True)


def prune(base: Path, max_bytes: int) -> list[Entry]:
    """Remove the least recently used entries of the cache ``base`` until the rest hold at
    most ``max_bytes``; return the removed entries (0 clears the cache)."""
    entries = cache_entries(base)
    total = sum(e.size for e in entries)
    removed = []
    for entry in entries:
        if total <= max_bytes:
            break
        remove_entry(entry)
        total -= entry.size
        removed.append(entry)
    return removed


_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9,
          "gb": 10**9, "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30,
          "tib": 2**40}


def parse_size(text: str) -> int:
    """Bytes of a size written as ``500M``, ``2GB``, ``1.5G``, ``300MiB`` or ``0`` (K, M, G,
    T are powers of 1000; KiB, MiB, GiB, TiB of 1024).

    Raises:
        ValueError: not such a size (the message says what is expected).
    """
    import re

    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]*)\s*", text or "")
    unit = m.group(2).lower() if m else None
    if m is None or unit not in _UNITS:
        raise ValueError(f"{text!r} is not a size; expected a number with an optional unit, "
                         "such as 500M, 2G, 1.5GB or 300MiB")
    return int(float(m.group(1)) * _UNITS[unit])


def human_size(n: int) -> str:
    """``n`` bytes as "0 B", "512 B", "3.4 kB", "201.3 MB", "1.2 GB" (powers of 1000)."""
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"
