"""What layers compute: feature maps, learned filters, filter patterns and deep dream."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from reportgen.explain.common import run_batched
from reportgen.explain.explainer import Explainer
from reportgen.explain.graph import ModelGraph


def _capture_function(graph: ModelGraph, paths: tuple[str, ...]):
    for p in paths:
        graph.layer(p)  # raises with the valid paths

    def make():
        def fn(x):
            _, captured = graph.forward_capture(x, paths, logits=False)
            return [captured[p] for p in paths]
        return fn

    return graph.function(("capture", paths), make)


def feature_maps(model, images, layers, batch_size=64, output_index=0) -> dict[str, np.ndarray]:
    """Activations of ``layers`` (paths, ``outer/inner`` inside nested models).

    Returns:
        {layer path: (N, h, w, C) float32}, the layer outputs as the model computes them
        (training=False).
    """
    return feature_maps_of(Explainer.of(model, images, output_index, batch_size), images, layers)


def feature_maps_of(ex: Explainer, images, layers) -> dict[str, np.ndarray]:
    """:func:`feature_maps` on an explainer."""
    x = ex.batch(images)
    paths = tuple([layers] if isinstance(layers, str) else layers)
    outs = run_batched(_capture_function(ex.graph, paths), [x], ex.batch_size)
    return {p: out.astype(np.float32) for p, out in zip(paths, outs, strict=True)}


def learned_filters(model, layer: str) -> np.ndarray:
    """The learned 2-D kernels of a conv layer as read from the layer, (kh, kw, in_channels,
    filters) float32 (first layers of RGB models show as colour tiles). A depthwise or
    separable convolution gives its depthwise kernels, one single-channel filter per input
    channel c and multiplier j, as (kh, kw, 1, C * m) with filter c * m + j (the order of the
    layer's outputs); a transposed convolution its kernel with the channel axes in this order.
    ``model`` may be an :class:`~reportgen.explain.explainer.Explainer`.

    Raises:
        ValueError: the layer has no 2-D convolution kernel.
    """
    lyr = (model.graph if isinstance(model, Explainer) else ModelGraph(model)).layer(layer)
    kind = kernel_kind(lyr)
    if kind is None:
        raise ValueError(f"layer {layer!r} has no 2-D convolution kernel")
    k = np.asarray(_kernel(lyr), dtype=np.float32)
    if kind in ("depthwise", "separable"):  # (kh, kw, C, m) -> (kh, kw, 1, C m), filter c m + j
        return k.reshape(k.shape[0], k.shape[1], 1, -1)
    return np.swapaxes(k, 2, 3) if kind == "transposed" else k  # transposed: (kh, kw, out, in)


def _kernel(layer):
    """The 2-D kernel variable of ``layer`` (the depthwise one of a separable convolution)."""
    kernel = getattr(layer, "depthwise_kernel", None)
    return kernel if kernel is not None else getattr(layer, "kernel", None)


def kernel_kind(layer) -> str | None:
    """What :func:`learned_filters` shows of ``layer``: "conv", "separable" (its depthwise
    kernels), "depthwise" (a depthwise convolution, or a grouped one with one input channel per
    group, as ConvNeXt's), "transposed", or None when it has no 2-D convolution kernel."""
    kernel = _kernel(layer)
    if kernel is None or len(kernel.shape) != 4:
        return None
    if hasattr(layer, "depthwise_kernel"):
        return "separable"
    if isinstance(layer, keras.layers.DepthwiseConv2D) or (
            getattr(layer, "groups", 1) > 1 and kernel.shape[2] == 1):
        return "depthwise"
    return "transposed" if isinstance(layer, keras.layers.Conv2DTranspose) else "conv"


# long: the public functional API (README); each keyword is a documented option
def filter_patterns(model, layer, filters, steps=60, step_size=None, value_range=(0.0, 255.0),
                    jitter=2, blur_every=8, seed=0, output_index=0) -> np.ndarray:
    """Input images that maximize the mean activation of each filter of ``layer``.

    Gradient ascent, batched over filters (one image per filter), from mid-grey plus small noise:
    each step rolls the images by a random jitter of up to ``jitter`` pixels, takes the gradient
    of each filter's mean activation, L2-normalizes it per image, steps by ``step_size`` (default
    1.5 % of the value range times sqrt(H W C)), rolls back and clips to ``value_range``; every
    ``blur_every`` steps a light 3x3 blur regularizes high frequencies.

    Returns:
        (F, H, W, C) float32 in ``value_range``.
    """
    return filter_patterns_of(Explainer(model, output_index), {layer: filters}, steps=steps,
                              step_size=step_size, value_range=value_range, jitter=jitter,
                              blur_every=blur_every, seed=seed)[layer]


# long: filter_patterns's options on an explainer (the Layers page passes them by name)
def filter_patterns_of(ex: Explainer, layer_filters: dict, steps=60, step_size=None,
                       value_range=(0.0, 255.0), jitter=2, blur_every=8, seed=0
                       ) -> dict[str, np.ndarray]:
    """:func:`filter_patterns` of several layers at once: {layer: filters} -> {layer: (F, H, W,
    C) float32}. All patterns share one compiled function, one pass per step in batches of
    the explainer's batch size; the images are independent, each driven by its own layer and
    filter only (the batching changes no value)."""
    graph = ex.graph
    layers = tuple(layer_filters)
    for p in layers:
        graph.layer(p)
    h, w, c = graph.input_shape
    pairs = [(k, f) for k, p in enumerate(layers) for f in layer_filters[p]]
    which = np.array([k for k, _ in pairs], np.int32)  # layer of each pattern image
    filt = np.array([f for _, f in pairs], np.int32)
    lo, hi = value_range
    span = hi - lo
    if step_size is None:
        step_size = 0.015 * span * np.sqrt(h * w * c)

    def make():
        def grad_fn(x, f, layer_of):
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(x)
                _, captured = graph.forward_capture(x, layers, logits=False)
                score = tf.zeros(tf.shape(x)[:1])
                for k, p in enumerate(layers):
                    a = captured[p]
                    a = tf.reshape(a, [tf.shape(a)[0], -1, tf.shape(a)[-1]])
                    own = tf.gather(tf.reduce_mean(a, axis=1),
                                    tf.where(layer_of == k, f, 0), axis=1, batch_dims=1)
                    score += tf.where(layer_of == k, own, tf.zeros_like(own))
            g = tape.gradient(score, x)
            norm = tf.sqrt(tf.reduce_sum(tf.square(g), axis=[1, 2, 3], keepdims=True)) + 1e-12
            return g / norm
        return grad_fn

    grad_fn = graph.function(("filter-pattern", layers), make, tf.TensorSpec([None], tf.int32),
                             tf.TensorSpec([None], tf.int32), tape=True)
    b = max(1, ex.batch_size)  # patterns in batches of the explainer's (memory) batch size
    grad_fn.expect(steps * -(-len(filt) // b))
    rng = np.random.default_rng(seed)
    x = (lo + span * (0.5 + 0.05 * rng.standard_normal((len(filt), h, w, c)))).astype(np.float32)
    kernel = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], np.float32) / 16.0
    for step in range(steps if len(filt) else 0):
        dy, dx = rng.integers(-jitter, jitter + 1, size=2) if jitter else (0, 0)
        shifted = np.roll(x, (dy, dx), axis=(1, 2))
        g = np.concatenate([grad_fn(tf.constant(shifted[s:s + b]), tf.constant(filt[s:s + b]),
                                    tf.constant(which[s:s + b])).numpy()
                            for s in range(0, len(filt), b)])
        x = np.clip(x + step_size * np.roll(g, (-dy, -dx), axis=(1, 2)), lo, hi).astype(np.float32)
        if blur_every and (step + 1) % blur_every == 0 and step + 1 < steps:
            x = _blur3(x, kernel).astype(np.float32)
    x = x.astype(np.float32)
    return {p: x[which == k] for k, p in enumerate(layers)}


def _blur3(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    pad = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    out = np.zeros_like(x)
    h, w = x.shape[1:3]
    for i in range(3):
        for j in range(3):
            out += kernel[i, j] * pad[:, i:i + h, j:j + w]
    return out


# long: the public functional API (README); each keyword is a documented option
def deep_dream(model, images, layers, octaves=3, octave_scale=1.4, steps=12, step_size=None,
               value_range=(0.0, 255.0), output_index=0) -> np.ndarray:
    """Deep dream: gradient ascent on each image to amplify the mean squared activation of
    ``layers``, coarse to fine over ``octaves``.

    The model always sees its own input size; an octave works on the image low-passed to
    1 / octave_scale^k of the size (bilinear down and up) and adds back the detail lost by the
    low-pass afterwards. Steps use the per-image L2-normalized gradient times ``step_size``
    (default 1 % of the value range times sqrt(H W C)). An artistic view, not an explanation.

    Returns:
        Dreamed images, same shape as ``images``, float32 in ``value_range``.
    """
    ex = Explainer.of(model, images, output_index)
    return deep_dream_of(ex, images, layers, octaves=octaves,
                         octave_scale=octave_scale, steps=steps, step_size=step_size,
                         value_range=value_range)


# long: deep_dream's options on an explainer (the Layers page passes them by name)
def deep_dream_of(ex: Explainer, images, layers, octaves=3, octave_scale=1.4, steps=12,
                  step_size=None, value_range=(0.0, 255.0)) -> np.ndarray:
    """:func:`deep_dream` on an explainer."""
    graph = ex.graph
    x = ex.batch(images).copy()
    paths = tuple([layers] if isinstance(layers, str) else layers)
    for p in paths:
        graph.layer(p)
    h, w, c = graph.input_shape
    lo, hi = value_range
    if step_size is None:
        step_size = 0.01 * (hi - lo) * np.sqrt(h * w * c)
    def make():
        def grad_fn(xb):
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(xb)
                _, captured = graph.forward_capture(xb, paths, logits=False)
                loss = tf.add_n([tf.reduce_mean(tf.square(a), axis=[1, 2, 3])
                                 for a in captured.values()])
            g = tape.gradient(loss, xb)
            return g / (tf.sqrt(tf.reduce_sum(tf.square(g), axis=[1, 2, 3], keepdims=True))
                        + 1e-12)
        return grad_fn

    grad_fn = graph.function(("dream", paths), make, tape=True)
    grad_fn.expect(octaves * steps)
    for k in reversed(range(octaves)):
        scale = octave_scale ** k
        size = (max(4, int(round(h / scale))), max(4, int(round(w / scale))))
        low = tf.image.resize(tf.image.resize(x, size, "bilinear"), (h, w), "bilinear"
                              ).numpy().astype(np.float32)
        detail = x - low
        img = low
        for _ in range(steps):
            img = np.clip(img + step_size * grad_fn(tf.constant(img)).numpy(), lo, hi
                          ).astype(np.float32)
        x = np.clip(img + detail, lo, hi).astype(np.float32)
    return x.astype(np.float32)
