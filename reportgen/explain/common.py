"""Shared helpers of the explanation methods: input checks, targets, batching, scaling."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import tensorflow as tf

from reportgen.explain.graph import ModelGraph, TieredFunction

#: Denominator below which a map counts as constant and is scaled to zeros (never NaN).
EPSILON = 1e-8


def one_blas_thread():
    """A context in which numpy's BLAS (OpenBLAS) runs on one thread. Explanations interleave
    small numpy products with TensorFlow calls; OpenBLAS's threads keep spinning after each
    product and take the cores from TensorFlow's next call: RISE on the demo's CNN ran at
    0.56 ms per masked image with them and 0.33 ms without (2 cores). Results are unchanged
    but for the summation order of float64 products."""
    from threadpoolctl import threadpool_limits  # installed with scikit-learn

    return threadpool_limits(1, user_api="blas")


def as_batch(images, graph: ModelGraph) -> np.ndarray:
    """Return ``images`` as a float32 (N, H, W, C) array matching the model input (never the
    caller's array modified; no copy when it already is float32)."""
    arr = np.asarray(images, dtype=np.float32)
    if arr.ndim == 3:
        arr = arr[None]
    expected = graph.input_shape
    if arr.ndim != 4 or tuple(arr.shape[1:]) != tuple(expected):
        raise ValueError(f"images have shape {arr.shape}; the model expects (N,) + {expected}")
    return arr


def as_targets(targets, n: int) -> np.ndarray:
    """Return targets as int32 (N,), with -1 meaning "the predicted class"."""
    if targets is None:
        return np.full(n, -1, np.int32)
    t = np.asarray(targets)
    if t.ndim == 0:
        t = np.full(n, int(t), np.int32)
    t = t.astype(np.int32)
    if t.shape != (n,):
        raise ValueError(f"targets have shape {t.shape}; expected ({n},) or a single class")
    return t


def pick_targets(logits: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
    """Replace -1 in ``targets`` by the argmax of ``logits``."""
    pred = tf.argmax(logits, axis=-1, output_type=tf.int32)
    return tf.where(targets < 0, pred, targets)


def class_score(logits: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
    """Return logits[i, targets[i]] as (N,)."""
    return tf.gather(logits, targets, axis=1, batch_dims=1)


def minmax(maps: tf.Tensor) -> tf.Tensor:
    """Scale each map (axis 0 is the batch) to [0, 1]: (m - min) / (max - min); a constant map
    (max - min <= EPSILON) becomes all zeros."""
    axes = list(range(1, len(maps.shape)))
    lo = tf.reduce_min(maps, axis=axes, keepdims=True)
    hi = tf.reduce_max(maps, axis=axes, keepdims=True)
    span = hi - lo
    safe = tf.where(span > EPSILON, span, tf.ones_like(span))
    return tf.where(span > EPSILON, (maps - lo) / safe, tf.zeros_like(maps))


def upsample(maps: tf.Tensor, size: tuple[int, int]) -> tf.Tensor:
    """Resize (N, h, w) maps to (N, H, W) with bilinear interpolation, half-pixel centres
    (``tf.image.resize``, no antialiasing): values stay within the input's range."""
    return tf.image.resize(maps[..., None], size, method="bilinear")[..., 0]


def probability_function(graph: ModelGraph):
    """Return the graph's ``x -> softmax(logits)`` (one per graph, see
    :class:`~reportgen.explain.graph.TieredFunction`)."""
    return graph.function(("probs",), lambda: lambda xb: graph.probabilities(graph.forward(xb)))


def logits_function(graph: ModelGraph):
    """Return the graph's ``x -> logits`` (a final softmax bypassed)."""
    return graph.function(("logits",), lambda: lambda xb: graph.forward(xb))


def run_batched(fn: Callable, arrays: Sequence[np.ndarray], batch_size: int):
    """Call ``fn`` on consecutive slices of ``arrays`` (as tensors) and concatenate the results
    along axis 0, as numpy (a tuple of arrays when ``fn`` returns several tensors)."""
    n = len(arrays[0])
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if isinstance(fn, TieredFunction):
        fn.expect(-(-n // batch_size), n)
    outs = []
    for start in range(0, n, batch_size):
        part = [tf.convert_to_tensor(a[start:start + batch_size]) for a in arrays]
        out = fn(*part)
        outs.append(tuple(o.numpy() for o in out) if isinstance(out, (tuple, list))
                    else out.numpy())
    if not outs:
        raise ValueError("no images given")
    if isinstance(outs[0], tuple):
        return tuple(np.concatenate(group, axis=0) for group in zip(*outs, strict=True))
    return np.concatenate(outs, axis=0)
