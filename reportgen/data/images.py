"""Unlabeled photos (``data.source = "images"``) and the shipped ImageNet class names.

A folder of images with no class folders is read as a test split only, labels -1 (unknown):
the build explains what a pretrained classifier predicts on them and reports no accuracy.
"""

from __future__ import annotations

import dataclasses
import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from reportgen.data.folder import (QUIET, Dataset, Split, decode_files, image_files,
                                   load_annotations, source_info, split_of)
from reportgen.errors import DataError
from reportgen.text import plural

#: The label of an image whose class is not known.
UNLABELED = -1


@lru_cache(maxsize=1)
def imagenet_classes() -> tuple[tuple[str, str, str], ...]:
    """The 1,000 ImageNet-1k classes in the order of keras.applications outputs:
    (WordNet id, display name, synset words). Shipped with reportgen (imagenet-classes 0.2.1,
    MIT License), so no download is needed."""
    path = Path(__file__).with_name("imagenet_classes.json")
    return tuple(tuple(c) for c in json.loads(path.read_text("utf-8"))["classes"])


def imagenet_names() -> list[str]:
    """The 1,000 distinct ImageNet display names, in output order."""
    return [c[1] for c in imagenet_classes()]


def _scan_flat(root: Path) -> tuple[list[Path], list[tuple[str, str]]]:
    """Image files anywhere under ``root`` (sorted by path) and the files skipped, with why."""
    skipped: list[tuple[str, str]] = []
    files = image_files(root, root, skipped, QUIET | {"annotations.json"})
    return files, skipped


# long: the data.* settings of a config, keywords the build stages and the tests pass by name
def load_images(root: str | Path, *, size: tuple[int, int], class_names: list[str],
                channels: int = 3, annotations: str = "annotations.json", workers: int = 4,
                progress=None, in_memory: int | None = None) -> Dataset:
    """Read every image under ``root`` (subfolders included, no labels) into the test split.

    Returns a :class:`Dataset` with ``labeled`` False, ``class_names`` (the model's outputs),
    empty train and val splits, and test labels :data:`UNLABELED`. Unreadable files are
    skipped and listed; no readable image is an error naming ``data.path``. The images are
    decoded into a :class:`~reportgen.data.store.Store` (see ``in_memory`` there).
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data.path: folder not found: {root}")
    files, skipped = _scan_flat(root)
    boxes_by_path = load_annotations(root, annotations)

    store, decoded, unreadable = decode_files(files, root, (*size, channels), in_memory,
                                              workers, progress)
    skipped += unreadable
    if not decoded:
        raise DataError(f"data.path: no readable image in {root}"
                        + (f" ({plural(len(skipped), 'file')} skipped)" if skipped else ""))
    h, w = size
    test = split_of([(f, UNLABELED) for f in decoded], decoded, store, root, size,
                    boxes_by_path, labeled=False)
    empty = Split(np.zeros((0, h, w, channels), np.uint8), np.zeros(0, np.int64), [],
                  np.zeros((0, 4), np.float32), labeled=False, sizes=np.zeros((0, 2), np.int64))
    return Dataset(root=root, class_names=list(class_names),
                   splits={"train": empty, "val": empty, "test": test}, skipped=skipped,
                   layout="unlabeled images", sources=source_info(list(decoded)))


def grouped_by_prediction(ds: Dataset, predicted: np.ndarray) -> Dataset:
    """An unlabeled data set with its test images grouped by ``predicted`` class: the labels
    of the returned test split are the predicted classes (``labeled`` stays False, so the
    report shows no accuracy). A labeled data set is returned as it is."""
    if ds.labeled:
        return ds
    test = ds.splits["test"]
    grouped = Split(test.images, np.asarray(predicted, np.int64), test.paths, test.boxes,
                    labeled=False, sizes=test.sizes)
    return dataclasses.replace(ds, splits={**ds.splits, "test": grouped})
