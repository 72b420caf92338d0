"""The image store: a split read back from a temporary file equals the same split in memory,
indexed every way the build indexes it, and the file goes when the store does."""

from __future__ import annotations

import gc
import os

import numpy as np
import pytest

from reportgen.data import store as st
from reportgen.data.decode import decode_or_reason
from reportgen.data.folder import load_dataset
from reportgen.data.shapes import generate
from reportgen.pipeline.cache import data_hash


@pytest.fixture
def array(rng):
    return rng.integers(0, 256, size=(23, 5, 4, 3), dtype=np.uint8)


@pytest.mark.parametrize("in_memory", [0, None])
def test_every_index_reads_what_numpy_reads(array, in_memory):
    images = st.Images.of(array, in_memory=in_memory)
    assert images.store.on_disk is (in_memory == 0)
    assert images.shape == array.shape and len(images) == 23 and images.nbytes == array.nbytes
    mask = np.arange(23) % 3 == 0
    for key in (0, 22, -1, slice(None), slice(3, 9), slice(20, 40), slice(5, 5), [4, 2, 2, 17],
                np.array([7, 8, 9, 1]), mask, (slice(2, 6), ..., 0), (3, 1)):
        got = images[key]
        np.testing.assert_array_equal(got, array[key])
        assert got.dtype == np.uint8
    with pytest.raises(IndexError):
        images[23]
    np.testing.assert_array_equal(np.asarray(images), array)
    np.testing.assert_array_equal(np.stack(list(images)), array)
    np.testing.assert_array_equal(np.concatenate(list(images.chunks(5))), array)
    assert [len(c) for c in images.chunks(10)] == [10, 10, 3]


def test_a_view_reads_its_rows_and_a_read_is_a_copy(array):
    images = st.Images.of(array, in_memory=0)
    view = images.view(np.array([5, 1, 2, 3, 20]))  # runs of rows: 5 | 1 2 3 | 20
    np.testing.assert_array_equal(view[:], array[[5, 1, 2, 3, 20]])
    np.testing.assert_array_equal(view[1:4], array[1:4])
    got = view[0]
    got[:] = 0
    np.testing.assert_array_equal(view[0], array[5])  # the store is not changed


def test_the_file_is_removed_with_the_store(array):
    images = st.Images.of(array, in_memory=0)
    path = images.store.path
    folder = os.path.dirname(path)
    assert os.path.getsize(path) == array.nbytes
    del images
    gc.collect()
    assert not os.path.exists(folder)


def test_the_folder_of_a_killed_build_is_removed_by_the_next(array, tmp_path, monkeypatch):
    import subprocess
    import sys

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(st.tempfile, "tempdir", None)  # read TMPDIR again
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"{st.SCRATCH}{dead.pid}-x"
    stale.mkdir()
    (stale / "images.u8").write_bytes(b"left by a killed build")
    images = st.Images.of(array, in_memory=0)
    assert not stale.exists()
    assert os.path.dirname(images.store.path).startswith(str(tmp_path / st.SCRATCH))


def test_a_data_set_on_disk_equals_it_in_memory(tmp_path):
    root = generate(tmp_path / "shapes", per_class=6, size=24, seed=3)
    mem = load_dataset(root, size=(24, 24), seed=1)
    disk = load_dataset(root, size=(24, 24), seed=1, in_memory=0)
    assert not mem.splits["test"].images.store.on_disk
    assert disk.splits["test"].images.store.on_disk
    for name in ("train", "val", "test"):
        a, b = mem.splits[name], disk.splits[name]
        assert a.paths == b.paths
        np.testing.assert_array_equal(np.asarray(a.images), np.asarray(b.images))
        for i, rel in enumerate(b.paths):  # each row is its own file, decoded on its own
            np.testing.assert_array_equal(b.images[i], decode_or_reason(root / rel, (24, 24),
                                                                        3)[0])
    # The cache key of the data does not depend on where the images are kept.
    assert data_hash(mem) == data_hash(disk)
