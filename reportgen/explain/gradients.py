"""Input-gradient attributions: saliency, SmoothGrad, Integrated Gradients, guided backprop,
deconvnet and Guided GradCAM.

All return raw attributions (N, H, W, C) float32 with respect to the (preprocessed) input,
unnormalized and signed, for the class logit (a final softmax is bypassed). Guided backprop and
deconvnet change the ReLU gradients through a private visitor of the model graph (every ReLU:
``ReLU`` layers, ``Activation("relu")``, layers with ``activation="relu"``, ReLU6, inside nested
models too); the caller's model is never changed.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from reportgen.data.content import image_generators
from reportgen.explain.cam import cam_maps
from reportgen.explain.common import as_targets, class_score, pick_targets, run_batched
from reportgen.explain.explainer import Explainer
from reportgen.explain.graph import ModelGraph, relu_kind
from reportgen.explain.methods.options import IntegratedGradientsOptions as IGOptions
from reportgen.explain.methods.options import SmoothGradOptions
from reportgen.explain.savedmodel import Part


def has_relus(model) -> bool:
    """Whether ``model`` (or an :class:`~reportgen.explain.explainer.Explainer`) applies any
    ReLU or ReLU6 the graph walk sees: the activations guided backprop and deconvnet change.
    Without one (EfficientNet and ConvNeXt use swish and GELU), guided backprop is the plain
    gradient and Guided GradCAM is saliency x GradCAM."""
    graph = model.graph if isinstance(model, Explainer) else ModelGraph(model)
    return graph.has_relus()


@tf.custom_gradient
def _guided_gate(y):
    """Identity whose gradient passes only positive incoming gradients (guided backprop)."""
    def grad(dy):
        return dy * tf.cast(dy > 0, dy.dtype)
    return tf.identity(y), grad


def _deconv_relu(cap: float):
    @tf.custom_gradient
    def f(z):
        y = tf.nn.relu(z) if np.isinf(cap) else tf.clip_by_value(z, 0.0, cap)

        def grad(dy):
            return dy * tf.cast(dy > 0, dy.dtype)
        return y, grad
    return f


def modified_relu_visitor(graph: ModelGraph, mode: str):
    """Return a visitor for ``graph.forward`` that changes ReLU gradients.

    ``mode="guided"``: gradient ``dy * (dy > 0) * (x > 0)`` (the layer's own ReLU keeps the
    ``x > 0`` factor, a gate after it adds ``dy > 0``). ``mode="deconv"``: gradient
    ``dy * (dy > 0)``: the ReLU is computed without its own gradient (a linear twin of the layer
    followed by a ReLU whose gradient ignores the input's sign). Inside a SavedModel opened at a
    convolution (:mod:`reportgen.explain.savedmodel`), its ``Relu``/``Relu6`` ops take the same
    gradients.
    """
    if mode not in ("guided", "deconv"):
        raise ValueError(mode)

    def visit(layer, path, call, inputs):
        if isinstance(layer, Part):  # inside a SavedModel: its ReLU ops' gradients changed
            return layer(*inputs, mode=mode)
        cap = relu_kind(layer)
        if cap is None:
            return call()
        if mode == "guided":
            return _guided_gate(call())
        if isinstance(layer, (keras.layers.ReLU, keras.layers.Activation)):
            return _deconv_relu(cap)(inputs[0])
        return _deconv_relu(cap)(graph.call_twin(layer, inputs, activation="linear"))

    return visit


def gradient_function(graph: ModelGraph, mode: str = "plain"):
    """The graph's ``(x, targets) -> input gradient of the target logits`` (``mode`` as in
    :func:`gradients`), one per graph and mode."""
    return _grad_function(graph, mode)


def _grad_function(graph: ModelGraph, mode: str):
    def make():
        visitor = None if mode == "plain" else modified_relu_visitor(graph, mode)
        if visitor is not None:
            graph.warm(visitor)  # builds the linear twins eagerly

        def fn(x, targets):
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(x)
                logits = graph.forward(x, visitor)
                score = class_score(logits, pick_targets(logits, targets))
            return tape.gradient(score, x)
        return fn

    return graph.function(("input-grad", mode), make, tf.TensorSpec([None], tf.int32),
                          tape=True)


def gradients(ex: Explainer, mode: str, x: np.ndarray, t: np.ndarray, repeats: int = 1
              ) -> np.ndarray:
    """Input gradients of the target logits in batches: ``mode`` "plain" (saliency), "guided"
    or "deconv"; ``repeats``: how many such calls the caller is about to make (so a long run
    compiles from its first call)."""
    fn = _grad_function(ex.graph, mode)
    fn.expect(repeats * -(-len(x) // ex.batch_size))
    return run_batched(fn, [x, t], ex.batch_size)


def input_gradients(ex: Explainer, mode: str, images, targets=None) -> np.ndarray:
    """:func:`saliency` (``mode="plain"``), :func:`guided_backprop` ("guided") or
    :func:`deconvnet` ("deconv") on an explainer."""
    x = ex.batch(images)
    return gradients(ex, mode, x, as_targets(targets, len(x)))


def saliency(model, images, targets=None, batch_size=64, output_index=0) -> np.ndarray:
    """Vanilla gradient of the class logit with respect to the input.

    References:
        * Simonyan et al., Deep Inside Convolutional Networks
          (https://arxiv.org/abs/1312.6034)

    Returns:
        (N, H, W, C) float32, signed and unnormalized.
    """
    ex = Explainer.of(model, images, output_index, batch_size)
    return input_gradients(ex, "plain", images, targets)


# long: the public functional API (README); each keyword is a documented option
def smooth_grad(model, images, targets=None, batch_size=64,
                samples: int = SmoothGradOptions.samples, noise: float = SmoothGradOptions.noise,
                seed: int = SmoothGradOptions.seed, output_index=0) -> np.ndarray:
    """SmoothGrad: the mean gradient over ``samples`` noisy copies of each image; the Gaussian
    noise has standard deviation ``noise`` times the image's value range (max - min), drawn per
    image from ``seed`` and the image's content (:func:`reportgen.data.content.image_generators`),
    so an image's map does not depend on the other images of the batch. The target
    of a noisy copy is the clean image's. The defaults are the build's
    (:class:`~reportgen.explain.methods.options.SmoothGradOptions`).

    References:
        * Smilkov et al., SmoothGrad: removing noise by adding noise
          (https://arxiv.org/abs/1706.03825)

    Returns:
        (N, H, W, C) float32.
    """
    ex = Explainer.of(model, images, output_index, batch_size)
    return smooth_grad_maps(ex, images, targets, samples, noise, seed)


def smooth_grad_maps(ex: Explainer, images, targets=None,
                     samples: int = SmoothGradOptions.samples,
                     noise: float = SmoothGradOptions.noise,
                     seed: int = SmoothGradOptions.seed) -> np.ndarray:
    """:func:`smooth_grad` on an explainer."""
    x = ex.batch(images)
    t = ex.targets(x, targets)
    rngs = image_generators(x, seed)  # per image, from its content: never its position
    span = (x.reshape(len(x), -1).max(1) - x.reshape(len(x), -1).min(1))
    sigma = (noise * np.where(span > 0, span, 1.0)).astype(np.float32)[:, None, None, None]
    total = np.zeros_like(x)
    for _ in range(samples):
        draws = np.stack([r.standard_normal(x.shape[1:]) for r in rngs]) if len(x) else 0.0
        noisy = x + np.asarray(draws, np.float32) * sigma
        total += gradients(ex, "plain", noisy, t, repeats=samples)
    return (total / samples).astype(np.float32)


def integrated_gradients(model, images, targets=None, batch_size=64,
                         steps: int = IGOptions.steps, baseline=None,
                         output_index=0) -> np.ndarray:
    """Integrated Gradients along the straight path from ``baseline`` to each image.

    The path integral is the trapezoidal rule over ``steps`` equal intervals (``steps + 1``
    gradient evaluations); attributions = (x - baseline) * mean gradient, so their sum over
    pixels approximates score(x) - score(baseline) (completeness).

    Args:
        baseline: None for zeros (black, for models that take raw pixels), a scalar, or an array
            broadcastable to the images.

    References:
        * Sundararajan et al., Axiomatic Attribution for Deep Networks
          (https://arxiv.org/abs/1703.01365)

    Returns:
        (N, H, W, C) float32.
    """
    ex = Explainer.of(model, images, output_index, batch_size)
    return integrated_gradient_maps(ex, images, targets, steps, baseline)


def integrated_gradient_maps(ex: Explainer, images, targets=None,
                             steps: int = IGOptions.steps, baseline=None) -> np.ndarray:
    """:func:`integrated_gradients` on an explainer."""
    x = ex.batch(images)
    t = ex.targets(x, targets)
    base = np.broadcast_to(np.asarray(0.0 if baseline is None else baseline, np.float32),
                           x.shape)
    alphas = np.linspace(0.0, 1.0, steps + 1, dtype=np.float32)
    weights = np.full(steps + 1, 1.0 / steps, np.float32)
    weights[[0, -1]] *= 0.5
    total = np.zeros_like(x)
    for a, wgt in zip(alphas, weights, strict=True):
        total += wgt * gradients(ex, "plain", base + a * (x - base), t, repeats=steps + 1)
    return ((x - base) * total).astype(np.float32)


def guided_backprop(model, images, targets=None, batch_size=64, output_index=0) -> np.ndarray:
    """Guided backpropagation: ReLU gradients become ``dy * (dy > 0) * (x > 0)``.

    References:
        * Springenberg et al., Striving for Simplicity: The All Convolutional Net
          (https://arxiv.org/abs/1412.6806)

    Returns:
        (N, H, W, C) float32.
    """
    ex = Explainer.of(model, images, output_index, batch_size)
    return input_gradients(ex, "guided", images, targets)


def deconvnet(model, images, targets=None, batch_size=64, output_index=0) -> np.ndarray:
    """Deconvnet: ReLU gradients become ``dy * (dy > 0)``, ignoring the forward sign.

    References:
        * Zeiler and Fergus, Visualizing and Understanding Convolutional Networks
          (https://arxiv.org/abs/1311.2901)

    Returns:
        (N, H, W, C) float32.
    """
    ex = Explainer.of(model, images, output_index, batch_size)
    return input_gradients(ex, "deconv", images, targets)


def guided_grad_cam(model, images, targets=None, layer=None, batch_size=64,
                    output_index=0) -> np.ndarray:
    """Guided GradCAM: guided backprop times the GradCAM map (upsampled bilinearly to the
    input size), for the same target class.

    Returns:
        (N, H, W, C) float32.
    """
    ex = Explainer.of(model, images, output_index, batch_size)
    return guided_grad_cam_maps(ex, images, targets, layer)


def guided_grad_cam_maps(ex: Explainer, images, targets=None, layer: str | None = None
                         ) -> np.ndarray:
    """:func:`guided_grad_cam` on an explainer."""
    x = ex.batch(images)
    t = ex.targets(x, targets)
    gb = gradients(ex, "guided", x, t)
    cam = cam_maps(ex, "gradcam", x, t, layer)
    return (gb * cam[..., None]).astype(np.float32)
