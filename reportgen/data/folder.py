"""Folder scanning, seeded stratified splits and batched decoding into arrays.

Layouts, as keras' ``image_dataset_from_directory``:

* ``root/<class>/*``: split per class by the seeded fractions ``split``;
* ``root/{train,val,test}/<class>/*``: used as given (``val`` may be absent).

An optional annotations file in ``root`` (JSON, ``{"<path relative to root>": {"box":
[x0, y0, x1, y1]}}`` in the file's pixel coordinates) gives one object box per image.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reportgen.data.decode import GRAY_MODES, IMAGE_SUFFIXES, decode_or_reason, probe_image
from reportgen.data.store import Images, Store
from reportgen.errors import DataError
from reportgen.text import plural, quoted

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


@dataclass
class Split:
    """One split's images.

    Attributes:
        images: (N, H, W, C) uint8 in [0, 255]: a numpy array or an
            :class:`~reportgen.data.store.Images` view (indexed alike, read on demand).
        labels: (N,) int64 class indices.
        paths: N file paths relative to the data root (POSIX separators).
        boxes: (N, 4) float32 object boxes [x0, y0, x1, y1] in pixels of ``images`` (edges, so
            0..W), NaN where the image has none.
        labeled: False when the true classes are unknown (unlabeled photos): ``labels`` is then
            -1, or the predicted classes once the model has run (galleries by predicted class).
        sizes: (N, 2) int64 (width, height) of each file in pixels after EXIF rotation, before
            resizing; None when unknown.
    """

    images: np.ndarray | Images
    labels: np.ndarray
    paths: list[str]
    boxes: np.ndarray
    labeled: bool = True
    sizes: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class Dataset:
    """Class names, the three splits and every file that was skipped, with the reason."""

    root: Path
    class_names: list[str]
    splits: dict[str, Split]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    dropped_classes: list[str] = field(default_factory=list)
    layout: str = "split by fractions"
    #: Classes of ``class_names`` (a loaded model's outputs, ``data.classes``) with no image
    #: in the data: no folder, an empty one, or none readable. They can still be predicted.
    absent_classes: list[str] = field(default_factory=list)
    #: The files as stored (sizes, channels) before they were resized; None if unknown.
    sources: SourceInfo | None = None

    @property
    def present(self) -> list[int]:
        """Indices of the classes with images (every class but :attr:`absent_classes`)."""
        return [i for i, n in enumerate(self.class_names) if n not in self.absent_classes]

    @property
    def labeled(self) -> bool:
        """False for unlabeled photos (``data.source = "images"``): no accuracy is reported."""
        return self.splits["test"].labeled

    @property
    def has_boxes(self) -> bool:
        return bool(np.isfinite(self.splits["test"].boxes).all(axis=1).any())


@dataclass
class SourceInfo:
    """The image files as stored, before any resizing: their sizes and channels, from the
    headers of up to :data:`PROBED` files spread evenly over the data set.

    Attributes:
        files: image files in the data set; probed: how many headers were read.
        width, height: (smallest, largest) in pixels; side: the median shorter side.
        gray: probed files stored as grayscale (Pillow modes L, LA, 1, I, F); colour: the rest.
    """

    files: int
    probed: int
    width: tuple[int, int]
    height: tuple[int, int]
    side: int
    gray: int
    colour: int

    @property
    def all_gray(self) -> bool:
        return self.probed > 0 and self.colour == 0

    def describe(self) -> str:
        """"8×8 px, grayscale", "from 320×200 to 640×480 px, colour (RGB)", ..."""
        (w0, w1), (h0, h1) = self.width, self.height
        size = f"{w0}×{h0} px" if (w0, h0) == (w1, h1) else \
            f"from {w0}×{h0} to {w1}×{h1} px" if (w0 <= w1 and h0 <= h1) else \
            f"{w0}-{w1} px wide, {h0}-{h1} px high"
        kind = ("grayscale" if self.all_gray else "colour (RGB)" if not self.gray else
                f"{self.gray:,} grayscale and {self.colour:,} colour")
        sample = "" if self.probed == self.files else \
            f" (from {self.probed:,} of the {self.files:,} files)"
        return f"{size}, {kind}{sample}"

    def to_dict(self) -> dict:
        return {"files": self.files, "probed": self.probed, "width": list(self.width),
                "height": list(self.height), "median_side": self.side, "grayscale": self.gray,
                "colour": self.colour, "described": self.describe()}


#: Files whose headers :func:`source_info` reads at most.
PROBED = 1000


def source_info(files: list[Path], limit: int = PROBED) -> SourceInfo | None:
    """The :class:`SourceInfo` of ``files`` (headers of ``limit`` of them, evenly spread);
    None when none can be read."""
    picked = files if len(files) <= limit else \
        [files[int(i)] for i in np.linspace(0, len(files) - 1, limit)]
    probes = [p for p in map(probe_image, picked) if p is not None]
    if not probes:
        return None
    w = np.array([p[0] for p in probes])
    h = np.array([p[1] for p in probes])
    gray = sum(p[2] in GRAY_MODES for p in probes)
    return SourceInfo(len(files), len(probes), (int(w.min()), int(w.max())),
                      (int(h.min()), int(h.max())), int(np.median(np.minimum(w, h))),
                      gray, len(probes) - gray)


def listed_files(root: str | Path) -> list[Path]:
    """The image files of a class-folder data set at ``root`` (any layout), from its listing."""
    _, per_split, _, _ = scan(root)
    return [f for files in per_split.values() for fs in files.values() for f in fs]


def _is_hidden(p: Path) -> bool:
    return p.name.startswith(".")


#: Files skipped without being listed (none: every skipped file is listed in the report).
QUIET: frozenset[str] = frozenset()


def leaves(path: Path, real_root: Path) -> bool:
    """True if ``path`` (a link, or inside one) resolves outside ``real_root``."""
    try:
        real = path.resolve()
    except (OSError, RuntimeError):  # a loop of links
        return True
    return real != real_root and real_root not in real.parents


def image_files(folder: Path, root: Path, skipped: list[tuple[str, str]],
                quiet: frozenset[str] = QUIET) -> list[Path]:
    """The image files under ``folder`` (recursively, sorted by path); every other file is
    listed in ``skipped`` with why (paths relative to ``root``): hidden, not an image, or a
    link leading outside ``root`` (never read, so data.path cannot reach into other folders).
    Links to folders are not followed."""
    real_root = root.resolve()
    files = []
    for f in sorted(folder.rglob("*"), key=lambda p: p.relative_to(root).as_posix()):
        rel = f.relative_to(root).as_posix()
        if f.is_symlink() and leaves(f, real_root):
            skipped.append((rel, "link leading outside data.path (not read)"))
        elif f.is_dir():
            continue
        elif any(part.startswith(".") for part in f.relative_to(folder).parts):
            if f.name not in quiet:
                skipped.append((rel, "hidden file"))
        elif f.suffix.lower() not in IMAGE_SUFFIXES:
            if f.name not in quiet:
                skipped.append((rel, f"not an image file ({f.suffix or 'no extension'})"))
        else:
            files.append(f)
    return files


def _scan_class_dirs(root: Path, skipped: list[tuple[str, str]], rel_to: Path
                     ) -> dict[str, list[Path]]:
    """Return {class name: image files}; other entries are listed in ``skipped``: hidden
    class folders (their name starts with a dot) and links leading outside the data."""
    classes: dict[str, list[Path]] = {}
    real_root = rel_to.resolve()
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        rel = entry.relative_to(rel_to).as_posix()
        if entry.is_symlink() and leaves(entry, real_root):
            skipped.append((rel + "/" if entry.is_dir() else rel,
                            "link leading outside data.path (not read)"))
            continue
        if not entry.is_dir():
            continue
        if _is_hidden(entry):
            n = sum(1 for f in entry.rglob("*") if f.is_file())
            skipped.append((rel + "/", f"hidden folder, not a class (name starts with a dot; "
                                       f"{plural(n, 'file')} not read)"))
            continue
        classes[entry.name] = image_files(entry, rel_to, skipped)
    return classes


def split_counts(n: int, fractions: list[float]) -> tuple[int, int, int]:
    """Return (train, val, test) counts for ``n`` images: at least one test and one train image,
    one val image where its fraction is above 0 and there are 3 or more images."""
    f_train, f_val, f_test = fractions
    n_test = max(1, int(round(n * f_test)))
    n_val = int(round(n * f_val))
    if f_val > 0 and n >= 3:
        n_val = max(1, n_val)
    n_train = n - n_test - n_val
    return n_train, n_val, n_test


def load_annotations(root: Path, name: str) -> dict[str, list[float]]:
    """The object boxes of the annotations file ``root / name`` ({relative path: [x0, y0, x1,
    y1]}); {} when there is none. A malformed file or entry is a DataError naming it."""
    path = root / name
    if not name or not path.is_file():
        return {}
    expected = '{"relative/path.png": {"box": [x0, y0, x1, y1]}}'
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as e:
        raise DataError(f"{path}: not a valid annotations file ({e}); expected {expected}"
                        ) from None
    if not isinstance(raw, dict):
        raise DataError(f"{path}: expected an object {expected}, got a {type(raw).__name__}")
    boxes: dict[str, list[float]] = {}
    for rel, entry in raw.items():
        box = _box(entry)
        if box is None:
            raise DataError(f"{path}: entry {rel!r} has no valid box (four numbers x0 < x1, "
                            f"y0 < y1): {entry!r}"[:300])
        boxes[rel] = box
    return boxes


def _box(entry: object) -> list[float] | None:
    """The ``"box"`` of an annotations entry as four finite floats [x0, y0, x1, y1] with
    x0 < x1 and y0 < y1; None when the entry has no such box."""
    box = entry.get("box") if isinstance(entry, dict) else None
    if not (isinstance(box, list) and len(box) == 4
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box)):
        return None
    try:
        x0, y0, x1, y1 = (float(v) for v in box)
    except OverflowError:  # an integer beyond any float
        return None
    ok = all(np.isfinite([x0, y0, x1, y1])) and x1 > x0 and y1 > y0
    return [x0, y0, x1, y1] if ok else None


def scan(root: str | Path) -> tuple[list[str], dict[str, dict[str, list[Path]]],
                                   list[tuple[str, str]], str]:
    """Find the class folders and their image files.

    Returns:
        (class_names, {"all" or split: {class: files}}, skipped files with reasons, layout).

    Raises:
        DataError: missing folder, fewer than two classes, too few images for the fractions.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data.path: folder not found: {root}")
    skipped: list[tuple[str, str]] = []
    presplit = (root / "train").is_dir() and (root / "test").is_dir()
    per_split: dict[str, dict[str, list[Path]]] = {}
    if presplit:
        layout = "train/val/test folders"
        for s in SPLITS:
            per_split[s] = _scan_class_dirs(root / s, skipped, root) if (root / s).is_dir() else {}
        names = sorted(set(per_split["train"]) | set(per_split["test"]) | set(per_split["val"]))
    else:
        layout = "split by fractions"
        per_split["all"] = _scan_class_dirs(root, skipped, root)
        names = sorted(per_split["all"])
    if not names:
        raise DataError(f"data.path: no class folders in {root}; expected {root}/<class>/<image>")
    return names, per_split, skipped, layout


def _assign(names: list[str], per_split: dict, split: list[float], seed: int, root: Path
            ) -> dict[str, list[tuple[Path, int]]]:
    out: dict[str, list[tuple[Path, int]]] = {s: [] for s in SPLITS}
    if "all" in per_split:
        by_name = sorted(names)  # the split of a class does not depend on the class order
        for idx, name in enumerate(names):
            files = per_split["all"].get(name, [])
            if not files:
                continue  # a class of the model's outputs without images (absent_ok)
            n_train, n_val, n_test = split_counts(len(files), split)
            if n_train < 1:
                raise DataError(f"{root / name}: {plural(len(files), 'image')} "
                                f"{'is' if len(files) == 1 else 'are'} too few for "
                                f"data.split = {split} (needs one train and one test image)")
            order = np.random.default_rng([seed, by_name.index(name)]).permutation(len(files))
            chosen = [files[i] for i in order]
            out["train"] += [(f, idx) for f in chosen[:n_train]]
            out["val"] += [(f, idx) for f in chosen[n_train:n_train + n_val]]
            out["test"] += [(f, idx) for f in chosen[n_train + n_val:]]
    else:
        for s in SPLITS:
            for idx, name in enumerate(names):
                out[s] += [(f, idx) for f in per_split[s].get(name, [])]
    return out


def order_classes(found: list[str], classes: list[str], root: Path, *,
                  absent_ok: bool = False) -> list[str]:
    """The class order: ``classes`` (``data.classes``, the order of the model's outputs) when
    given, each matched to a folder of the same name; else the folders sorted by name.

    Args:
        absent_ok: a name of ``classes`` may have no folder (a loaded model scored on the
            classes that have images).

    Raises:
        DataError: a name of ``classes`` with no folder (unless ``absent_ok``), or a folder not
            in ``classes``.
    """
    if not classes:
        return found
    missing = [c for c in classes if c not in found]
    if missing and not absent_ok:
        raise DataError(f"data.classes: {quoted(missing)} {'has' if len(missing) == 1 else 'have'}"
                        f" no folder in {root} (folders: {', '.join(found)}); a model trained "
                        "here needs images of every class")
    extra = [f for f in found if f not in classes]
    if extra:
        raise DataError(f"data.classes: folder {extra[0]!r} in {root} is not in data.classes; "
                        "list every class, in the order of the model's outputs")
    return list(classes)


def check_listing(root: str | Path, classes: list[str], *, absent_ok: bool) -> list[str]:
    """Check the class folders of ``root`` against ``classes`` from the folder listing alone
    (no image is decoded, so a build refuses in a second, before TensorFlow loads); return
    the names of ``classes`` that have no image file (no folder, or an empty one).

    Raises:
        DataError: as :func:`scan` and :func:`order_classes`, and fewer than two classes with
            image files (one, when ``absent_ok`` and ``classes`` are given).
    """
    root = Path(root)
    found, per_split, _, _ = scan(root)
    names = order_classes(found, list(classes), root, absent_ok=absent_ok)
    counts = {n: sum(len(files.get(n, [])) for files in per_split.values()) for n in names}
    empty = [n for n in names if not counts[n]]
    if len(names) - len(empty) < (1 if absent_ok and classes else 2):
        with_images = [n for n in names if counts[n]]
        raise DataError(f"data.path: {root} needs at least "
                        f"{'one class' if absent_ok and classes else 'two classes'} with "
                        f"image files (found: {', '.join(with_images) or 'none'})")
    return empty


#: Per decoded file: its row of the store and its original (width, height).
Decoded = dict[Path, tuple[int, tuple[int, int]]]


# long: the data.* settings of a config, keywords the build stages and the tests pass by name
def load_dataset(root: str | Path, *, size: tuple[int, int], channels: int = 3,
                 split: Sequence[float] = (0.7, 0.15, 0.15), seed: int = 0,
                 annotations: str = "annotations.json", workers: int = 4,
                 progress=None, classes: list[str] | None = None,
                 in_memory: int | None = None, absent_ok: bool = False) -> Dataset:
    """Scan ``root``, split it, and decode every image to ``size`` (height, width) into one
    :class:`~reportgen.data.store.Store` (in memory up to ``in_memory`` bytes, default
    :data:`~reportgen.data.store.IN_MEMORY_BYTES`, else a temporary file); each split's
    ``images`` is a view of it.

    Unreadable files are skipped with a warning and listed in ``Dataset.skipped``; a class left
    with no readable image is dropped (warning); fewer than two classes is an error.

    Args:
        progress: optional callable ``progress(n_done)`` advanced as files are decoded.
        classes: the class order (the model's outputs), matched to the folders by name; None
            or empty: the folders sorted by name.
        absent_ok: with ``classes``, a class may have no folder, an empty one or no readable
            image: it stays a class (the model can predict it) and is listed in
            ``Dataset.absent_classes``; at least one class needs images.
    """
    root = Path(root)
    names, per_split, skipped, layout = scan(root)
    absent_ok = bool(absent_ok and classes)
    names = order_classes(names, list(classes or []), root, absent_ok=absent_ok)
    boxes_by_path = load_annotations(root, annotations)

    # Decode everything once, so a class whose files are all unreadable is known before splitting.
    if "all" in per_split:
        all_files = [f for n in names for f in per_split["all"].get(n, [])]
    else:
        all_files = [f for s in SPLITS for n in names for f in per_split[s].get(n, [])]
    store, decoded, unreadable = decode_files(all_files, root, (*size, channels), in_memory,
                                              workers, progress)
    for rel, why in unreadable:
        log.warning("skipped %s: %s", rel, why)
    skipped += unreadable
    for s in per_split:  # drop the files that failed
        per_split[s] = {n: [f for f in fs if f in decoded] for n, fs in per_split[s].items()}
    names, dropped, absent = _classes_with_images(names, per_split, root, bool(classes),
                                                  absent_ok)
    assigned = _assign(names, per_split, list(split), seed, root)
    if not assigned["train"] or not assigned["test"]:
        raise DataError(f"data.path: {root} has no {'train' if not assigned['train'] else 'test'}"
                        " images")
    splits = {s: split_of(assigned[s], decoded, store, root, size, boxes_by_path)
              for s in SPLITS}
    return Dataset(root=root, class_names=names, splits=splits, skipped=skipped,
                   dropped_classes=dropped, layout=layout, absent_classes=absent,
                   sources=source_info(list(decoded)))


def decode_files(files: list[Path], root: Path, shape: tuple[int, int, int],
                 in_memory: int | None, workers: int, progress
                 ) -> tuple[Store, Decoded, list[tuple[str, str]]]:
    """Decode ``files`` to ``shape`` (height, width, channels) in ``workers`` threads, each
    image written to a new store (see ``in_memory`` there) as it is decoded, never all of
    them in a list; ``progress(1)`` is called after each file when given.

    Returns:
        The store; per decoded file, in the order of ``files``, its store row and original
        (width, height); and the files that failed as (path relative to ``root``, reason).
    """
    def work(f: Path):
        return decode_or_reason(f, shape[:2], shape[2])

    store = Store(len(files), shape, in_memory)
    decoded: Decoded = {}
    failed: list[tuple[str, str]] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for f, res in zip(files, pool.map(work, files), strict=True):
            if isinstance(res, str):
                failed.append((f.relative_to(root).as_posix(), res))
            else:
                store.put(len(decoded), res[0])
                decoded[f] = (len(decoded), res[1])
            if progress:
                progress(1)
    return store, decoded, failed


def _classes_with_images(names: list[str], per_split: dict, root: Path, given: bool,
                         absent_ok: bool) -> tuple[list[str], list[str], list[str]]:
    """The classes left after unreadable files were dropped: (names, dropped, absent). A class
    without images is dropped with a warning, or kept as absent with ``absent_ok``.

    Raises:
        DataError: a dropped class when the classes were ``given`` (``data.classes``), or too
            few classes with images (two; one with ``absent_ok``).
    """
    empty = [n for n in names if not sum(len(per_split[s].get(n, [])) for s in per_split)]
    dropped, absent = ([], empty) if absent_ok else (empty, [])
    for n in dropped:
        log.warning("class folder %s has no readable image; class dropped", n)
    if dropped and given:
        raise DataError(f"data.classes: class folder {dropped[0]!r} in {root} has no readable "
                        "image; a model trained here needs images of every class of "
                        "data.classes")
    names = [n for n in names if n not in dropped]
    with_images = [n for n in names if n not in absent]
    if len(with_images) < (1 if absent_ok else 2):
        least = "one class" if absent_ok else "two classes"
        raise DataError(f"data.path: {root} needs at least {least} with readable images "
                        f"(found: {', '.join(with_images) or 'none'})")
    return names, dropped, absent


def split_of(items: list[tuple[Path, int]], decoded: Decoded, store: Store, root: Path,
             size: tuple[int, int], boxes_by_path: dict[str, list[float]],
             labeled: bool = True) -> Split:
    """One split of (file, label) ``items``: a view of their rows of ``store`` (decoded by
    :func:`decode_files`), and their annotated boxes scaled from the original image size to
    ``size`` (height, width; NaN without a box), and the files' own sizes (``Split.sizes``)."""
    h, w = size
    rows = np.zeros(len(items), np.int64)
    labels = np.zeros(len(items), np.int64)
    boxes = np.full((len(items), 4), np.nan, np.float32)
    sizes = np.zeros((len(items), 2), np.int64)
    paths = []
    for i, (f, idx) in enumerate(items):
        rows[i], (ow, oh) = decoded[f]
        sizes[i] = ow, oh
        labels[i] = idx
        rel = f.relative_to(root).as_posix()
        paths.append(rel)
        if rel in boxes_by_path:
            x0, y0, x1, y1 = boxes_by_path[rel]
            boxes[i] = [x0 * w / ow, y0 * h / oh, x1 * w / ow, y1 * h / oh]
    return Split(Images(store, rows), labels, paths, boxes, labeled, sizes)


def count_files(root: str | Path) -> int:
    """Return how many files under ``root`` look like images (for a progress bar's length)."""
    return sum(1 for f in Path(root).rglob("*")
               if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES and not _is_hidden(f))


def files_hash(root: str | Path, split: Split, class_names: list[str]) -> str:
    """SHA-256 of a split as files: each image's path relative to ``root``, its class name and
    the SHA-256 of its bytes, in split order (no class for unlabeled photos). Independent of
    the size images are decoded at, so two models that read the same files at different input
    sizes share it."""
    root = Path(root)
    h = hashlib.sha256()
    for rel, label in zip(split.paths, split.labels, strict=True):
        digest = hashlib.sha256((root / rel).read_bytes()).hexdigest()
        name = class_names[int(label)] if split.labeled else ""
        h.update(f"{rel}\0{name}\0{digest}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


#: A class this many times larger than the smallest (training images) is heavy imbalance.
IMBALANCE = 10


def hazards(ds: Dataset) -> list[str]:
    """What a reviewer must know about the data set, as sentences: exact duplicate images
    across splits (leakage), classes without training images, heavy class imbalance."""
    out = []
    seen: dict[str, tuple[str, str]] = {}
    copies: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for name in ("train", "val", "test"):
        split = ds.splits[name]
        # an Images view reads in chunks
        for img, path in zip(split.images, split.paths, strict=True):
            digest = hashlib.sha1(np.ascontiguousarray(img).tobytes()).hexdigest()
            if digest in seen and seen[digest][0] != name:
                copies.setdefault((seen[digest][0], name), []).append((seen[digest][1], path))
            seen.setdefault(digest, (name, path))
    for (a, b), pairs in copies.items():
        shown = "; ".join(f"{p} = {q}" for p, q in pairs[:3]) + (" ..." if len(pairs) > 3 else "")
        copy = (f"image is an exact copy of a {a} image" if len(pairs) == 1 else
                f"images are exact copies of {a} images")
        out.append(f"{len(pairs)} {b} {copy} (leakage: "
                   f"{b} results overstate the model): {shown}.")
    if not ds.labeled:
        return out
    train = np.bincount(ds.splits["train"].labels, minlength=len(ds.class_names))
    empty = [n for n, c in zip(ds.class_names, train, strict=True)
             if c == 0 and n not in ds.absent_classes]
    if empty:
        out.append(f"No training images for {'class' if len(empty) == 1 else 'classes'} "
                   f"{', '.join(empty)}: the model cannot "
                   "learn them.")
    present = np.where(train > 0, train, np.iinfo(np.int64).max)
    if len(train) and train.max() >= IMBALANCE * present.min():
        big, small = int(train.argmax()), int(present.argmin())
        out.append(f"Heavy class imbalance in training: {ds.class_names[big]} has "
                   f"{train[big]} images, {ds.class_names[small]} {train[small]} "
                   f"({train[big] / train[small]:.0f}x); accuracy favours the large classes, "
                   "read the per-class recall.")
    return out
