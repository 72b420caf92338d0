"""Folder scanning, splits and robust decoding."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from reportgen.data import load_dataset, split_counts
from reportgen.errors import DataError


def make(root, layout: dict[str, int], size=(10, 12), colour=None):
    for cls, n in layout.items():
        d = root / cls
        d.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            arr = np.full(size + (3,), colour if colour is not None else (i * 20) % 255,
                          np.uint8)
            Image.fromarray(arr).save(d / f"img_{i}.png")


def test_split_counts_by_hand():
    # 10 * 0.15 = 1.5 rounds half to even: 2 test, 2 val, the rest train.
    assert split_counts(10, [0.7, 0.15, 0.15]) == (6, 2, 2)
    assert split_counts(20, [0.7, 0.15, 0.15]) == (14, 3, 3)
    assert split_counts(3, [0.8, 0.1, 0.1]) == (1, 1, 1)
    assert split_counts(100, [0.6, 0.2, 0.2]) == (60, 20, 20)


def test_fraction_split_is_stratified_seeded_and_disjoint(tmp_path):
    make(tmp_path, {"cat": 20, "dog": 10})
    a = load_dataset(tmp_path, size=(8, 8), split=[0.6, 0.2, 0.2], seed=3)
    b = load_dataset(tmp_path, size=(8, 8), split=[0.6, 0.2, 0.2], seed=3)
    c = load_dataset(tmp_path, size=(8, 8), split=[0.6, 0.2, 0.2], seed=4)
    assert a.class_names == ["cat", "dog"]
    counts = {s: np.bincount(a.splits[s].labels, minlength=2).tolist() for s in a.splits}
    assert counts == {"train": [12, 6], "val": [4, 2], "test": [4, 2]}
    all_paths = [p for s in a.splits.values() for p in s.paths]
    assert len(all_paths) == len(set(all_paths)) == 30
    assert a.splits["test"].paths == b.splits["test"].paths
    assert a.splits["test"].paths != c.splits["test"].paths
    assert a.splits["train"].images.shape == (18, 8, 8, 3)
    assert a.splits["train"].images.dtype == np.uint8


def test_presplit_layout_used_as_given(tmp_path):
    make(tmp_path / "train", {"a": 3, "b": 2})
    make(tmp_path / "test", {"a": 1, "b": 1})
    ds = load_dataset(tmp_path, size=(8, 8), seed=0)
    assert ds.layout == "train/val/test folders"
    assert len(ds.splits["train"]) == 5 and len(ds.splits["test"]) == 2
    assert len(ds.splits["val"]) == 0
    assert all(p.startswith("train/") for p in ds.splits["train"].paths)


def test_bad_files_skipped_and_listed(tmp_path):
    make(tmp_path, {"a": 4, "b": 4})
    (tmp_path / "a" / "empty.png").write_bytes(b"")
    (tmp_path / "a" / "text.jpg").write_text("not an image")
    (tmp_path / "b" / "notes.txt").write_text("hello")
    (tmp_path / "b" / ".DS_Store").write_bytes(b"\0\0")
    ds = load_dataset(tmp_path, size=(8, 8), split=[0.5, 0.25, 0.25], seed=0)
    skipped = dict(ds.skipped)
    assert skipped["a/empty.png"] == "empty file (0 bytes)"
    assert "not a recognised image" in skipped["a/text.jpg"]
    assert "not an image file (.txt)" in skipped["b/notes.txt"]
    assert skipped["b/.DS_Store"] == "hidden file"
    assert sum(len(s) for s in ds.splits.values()) == 8


def test_missing_folder_and_single_class(tmp_path):
    with pytest.raises(DataError, match="folder not found"):
        load_dataset(tmp_path / "nope", size=(8, 8))
    make(tmp_path, {"only": 5})
    with pytest.raises(DataError, match="at least two classes"):
        load_dataset(tmp_path, size=(8, 8))


def test_too_few_images_for_fractions(tmp_path):
    make(tmp_path, {"a": 5, "b": 1})
    with pytest.raises(DataError, match=r"b: 1 image is too few"):
        load_dataset(tmp_path, size=(8, 8), split=[0.7, 0.15, 0.15])
