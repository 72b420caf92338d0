"""Decoded images kept out of the process's memory: a store written once while decoding, read
back a batch at a time.

A data set of 5,000 images at 224 px is 750 MB of uint8 pixels (3 GB as float32); reading,
predicting and GradCAM only ever need one batch of it. :class:`Store` holds every decoded image
of a build: in memory when all of them fit in :data:`IN_MEMORY_BYTES`, else in a temporary file
(removed when the store is garbage collected or the process exits, and by the next build
after a build that was killed), read with ``os.preadv``,
so the pages stay in the operating system's file cache instead of the process.
:class:`Images` is one split's view of it: rows of the store, indexed like a numpy array.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from collections.abc import Iterator

import numpy as np

from reportgen import scratch

#: A build's decoded images stay in memory up to this many bytes (64 MiB: 5,400 images at
#: 64 px, 445 at 224 px), else go to a temporary file.
IN_MEMORY_BYTES = 64 * 2 ** 20

#: Prefix of the store's temporary folder (``<prefix><pid>-<random>`` in the system's
#: temporary folder; the next build removes those of builds that were killed).
SCRATCH = "reportgen-images-"

#: Images per read when a view is iterated or copied whole.
CHUNK = 64


class Store:
    """``count`` images of ``shape`` (H, W, C) uint8, written once by :meth:`put`.

    Args:
        in_memory: the most bytes kept in memory (default :data:`IN_MEMORY_BYTES`); a larger
            store is a temporary file (in memory after all where the file cannot be made).
    """

    def __init__(self, count: int, shape: tuple[int, int, int], in_memory: int | None = None):
        self.count, self.shape = int(count), tuple(int(v) for v in shape)
        self.item = int(np.prod(self.shape))
        limit = IN_MEMORY_BYTES if in_memory is None else in_memory
        self.array: np.ndarray | None = None
        self.path: str | None = None
        self._fd = -1
        if self.count * self.item > limit:
            try:
                scratch.sweep(tempfile.gettempdir(), SCRATCH)  # left by killed builds
                folder = str(scratch.mkdtemp(SCRATCH))
                self.path = os.path.join(folder, "images.u8")
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
                os.ftruncate(self._fd, self.count * self.item)
            except OSError:
                self.path = None
            else:
                self._closer = weakref.finalize(self, _remove, self._fd, folder)
        if self.path is None:
            self.array = np.zeros((self.count,) + self.shape, np.uint8)

    @property
    def on_disk(self) -> bool:
        return self.path is not None

    def put(self, row: int, image: np.ndarray) -> None:
        """Write ``image`` ((H, W, C) uint8) at ``row``."""
        image = np.ascontiguousarray(image, np.uint8).reshape(self.shape)
        if self.array is not None:
            self.array[row] = image
            return
        view = image.data.cast("B")
        done = 0
        while done < self.item:
            done += os.pwrite(self._fd, view[done:], row * self.item + done)

    def read(self, rows: np.ndarray) -> np.ndarray:
        """The images at ``rows`` ((n,) ints), as a new (n, H, W, C) uint8 array."""
        rows = np.asarray(rows, np.int64).reshape(-1)
        if self.array is not None:
            return self.array[rows]
        out = np.empty((len(rows),) + self.shape, np.uint8)
        flat = out.reshape(-1).data.cast("B")
        k = 0
        while k < len(rows):  # one read per run of consecutive rows
            j = k + 1
            while j < len(rows) and rows[j] == rows[j - 1] + 1:
                j += 1
            want, got = (j - k) * self.item, 0
            while got < want:
                data = os.preadv(self._fd, [flat[k * self.item + got:j * self.item]],
                                 int(rows[k]) * self.item + got)
                if data <= 0:
                    raise OSError(f"{self.path}: short read")
                got += data
            k = j
        return out


def _remove(fd: int, folder: str) -> None:
    try:
        os.close(fd)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class Images:
    """(N, H, W, C) uint8 images: rows ``rows`` of a :class:`Store`, indexed as a numpy array
    (an int, a slice, an array of ints or a boolean mask) and always returning a new array, so
    only what is asked for is ever in memory. ``np.asarray(images)`` reads them all."""

    def __init__(self, store: Store, rows: np.ndarray):
        self.store = store
        self.rows = np.asarray(rows, np.int64).reshape(-1)

    @classmethod
    def of(cls, array: np.ndarray, in_memory: int | None = None) -> Images:
        """``array`` ((N, H, W, C) uint8) in a store of its own."""
        array = np.asarray(array, np.uint8)
        store = Store(len(array), array.shape[1:], in_memory)
        for i, img in enumerate(array):
            store.put(i, img)
        return cls(store, np.arange(len(array)))

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.rows),) + self.store.shape

    dtype = np.dtype(np.uint8)
    ndim = 4

    @property
    def nbytes(self) -> int:
        return len(self.rows) * self.store.item

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key):
        rest = ()
        if isinstance(key, tuple):
            key, rest = key[0], key[1:]
        if isinstance(key, (int, np.integer)):
            out = self.store.read(self.rows[[int(key)]])[0]
            return out[rest] if rest else out
        out = self.store.read(self.rows[key])
        return out[(slice(None),) + rest] if rest else out

    def view(self, key) -> Images:
        """The images ``key`` selects, as a view of the same store (nothing is read)."""
        return Images(self.store, self.rows[key])

    def chunks(self, size: int = CHUNK) -> Iterator[np.ndarray]:
        """The images in order, ``size`` at a time."""
        for start in range(0, len(self.rows), size):
            yield self[start:start + size]

    def __iter__(self) -> Iterator[np.ndarray]:
        for chunk in self.chunks():
            yield from chunk

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self[:]
        return out if dtype is None else out.astype(dtype)


def chunks(images, size: int = CHUNK) -> Iterator[np.ndarray]:
    """A numpy array or :class:`Images` in order, ``size`` images at a time."""
    if isinstance(images, Images):
        yield from images.chunks(size)
    else:
        for start in range(0, len(images), size):
            yield images[start:start + size]
