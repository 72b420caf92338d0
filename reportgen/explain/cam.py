"""Class activation maps: GradCAM, GradCAM++, LayerCAM and ScoreCAM.

All four return float32 (N, H, W) in [0, 1] (the input's height and width), or (N, h, w) at the
explained layer's resolution with ``upsample=False``. Scores are class **logits** (a final softmax
is bypassed, see :mod:`reportgen.explain.graph`); weights are computed **per image**; each map is
min-max scaled per image, a constant map giving zeros; upsampling is bilinear with half-pixel
centres (``tf.image.resize``), applied after scaling, so values stay in [0, 1].

Only the layer's activations are watched by the gradient tape, so the backward pass runs through
the head above the layer, not the whole network.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from reportgen.explain.common import (as_targets, class_score, minmax, pick_targets,
                                      probability_function, run_batched)
from reportgen.explain.common import upsample as resize_maps
from reportgen.explain.explainer import Explainer
from reportgen.explain.graph import ModelGraph
from reportgen.explain.methods.options import ScoreCamOptions


def _weights_gradcam(acts, grads):
    # alpha_c: mean over the spatial axes of d score / d A_c, one vector per image.
    alpha = tf.reduce_mean(grads, axis=(1, 2))
    return tf.einsum("nhwc,nc->nhw", acts, alpha)


def _weights_gradcam_pp(acts, grads):
    # Chattopadhyay et al. 2018, eq. 19 with score exp(S): higher-order derivatives become
    # powers of the first-order gradient.
    g2, g3 = tf.square(grads), tf.pow(grads, 3)
    sum_a = tf.reduce_sum(acts, axis=(1, 2), keepdims=True)
    denom = 2.0 * g2 + sum_a * g3
    denom = tf.where(tf.not_equal(denom, 0.0), denom, tf.ones_like(denom))
    aij = tf.where(tf.not_equal(grads, 0.0), g2 / denom, tf.zeros_like(grads))
    weights = tf.reduce_sum(aij * tf.nn.relu(grads), axis=(1, 2))
    return tf.einsum("nhwc,nc->nhw", acts, weights)


def _weights_layercam(acts, grads):
    # Jiang et al. 2021: positive gradients weight each activation element-wise.
    return tf.reduce_sum(tf.nn.relu(grads) * acts, axis=-1)


_COMBINE = {"gradcam": _weights_gradcam, "gradcam++": _weights_gradcam_pp,
            "layercam": _weights_layercam}


def _cam_function(graph: ModelGraph, method: str, layer_path: str, upsample_to,
                  peaks: bool = False, second: bool = False):
    """The CAM of ``targets``; with ``peaks``, also the maps at the layer's resolution and
    each channel's peak; with ``second``, also the layer-resolution map of a second target per
    image (``fn(x, targets, others)``) from the same forward pass."""
    combine = _COMBINE[method]

    def make():
        def fn(x, targets, others=None):
            with tf.GradientTape(watch_accessed_variables=False, persistent=second) as tape:
                logits, captured = graph.forward_capture(x, [layer_path], tape=tape)
                score = class_score(logits, pick_targets(logits, targets))
                if second:
                    other = class_score(logits, pick_targets(logits, others))
            acts = captured[layer_path]
            grads = tape.gradient(score, acts)
            small = minmax(tf.nn.relu(combine(acts, grads)))
            cam = small
            if upsample_to is not None:
                cam = tf.clip_by_value(resize_maps(small, upsample_to), 0.0, 1.0)
            if not peaks:
                return cam
            flat = tf.reshape(acts, [tf.shape(acts)[0], -1, tf.shape(acts)[-1]])
            out = (cam, small, tf.reduce_max(flat, axis=1),
                   tf.argmax(flat, axis=1, output_type=tf.int32))
            if second:  # the backward pass through the head only, once more
                out += (minmax(tf.nn.relu(combine(acts, tape.gradient(other, acts)))),)
            return out
        return fn

    specs = [tf.TensorSpec([None], tf.int32)] * (2 if second else 1)
    return graph.function(("cam", method, layer_path, upsample_to, peaks, second), make, *specs,
                          tape=True)


def cam_maps(ex: Explainer, method: str, images, targets=None, layer: str | None = None,
             upsample: bool = True) -> np.ndarray:
    """GradCAM, GradCAM++ or LayerCAM (``method``: "gradcam", "gradcam++", "layercam") of
    ``images`` at ``layer`` (None: the explainer's layer); see :func:`grad_cam`."""
    x = ex.batch(images)
    t = as_targets(targets, len(x))
    size = ex.input_shape[:2] if upsample else None
    fn = _cam_function(ex.graph, method, ex.resolve(layer), size)
    return run_batched(fn, [x, t], ex.batch_size).astype(np.float32)


def test_set_cam_function(ex: Explainer, layer: str | None = None):
    """The function :func:`cam_with_peaks` runs with ``others`` (the test set's pass; the
    planner's probe times it)."""
    return _cam_function(ex.graph, "gradcam", ex.resolve(layer), ex.input_shape[:2],
                         peaks=True, second=True)


def cam_with_peaks(ex: Explainer, images, targets=None, layer: str | None = None,
                   others=None) -> tuple[np.ndarray, ...]:
    """:func:`grad_cam_with_peaks` on an explainer, plus the same maps at the layer's
    resolution (N, h, w) float32 in [0, 1] as its second result. With ``others`` (a class per
    image, -1 for the predicted one), a fifth result: the GradCAM of those classes at the
    layer's resolution, from the same forward pass (the true class of each test image)."""
    x = ex.batch(images)
    t = as_targets(targets, len(x))
    if others is None:
        fn = _cam_function(ex.graph, "gradcam", ex.resolve(layer), ex.input_shape[:2],
                           peaks=True)
        maps, small, values, positions = run_batched(fn, [x, t], ex.batch_size)
        extra: tuple[np.ndarray, ...] = ()
    else:
        fn = test_set_cam_function(ex, layer)
        maps, small, values, positions, second = run_batched(
            fn, [x, t, as_targets(others, len(x))], ex.batch_size)
        extra = (second.astype(np.float32),)
    return (maps.astype(np.float32), small.astype(np.float32), values.astype(np.float32),
            positions.astype(np.int64)) + extra


def grad_cam(model, images, targets=None, layer=None, batch_size=64, upsample=True,
             output_index=0) -> np.ndarray:
    """GradCAM: ReLU(sum_c alpha_c A_c), alpha_c = spatial mean of d logit / d A_c.

    References:
        * Selvaraju et al., Grad-CAM: Visual Explanations from Deep Networks via Gradient-based
          Localization (https://arxiv.org/abs/1610.02391)

    Args:
        model: a Sequential or Functional Keras model (never modified).
        images: (N, H, W, C) float32, preprocessed as the model expects (not modified).
        targets: class per image (N,), a single class, or None for the predicted class.
        layer: path of the layer to explain (``outer/inner`` inside nested models); None picks
            the last convolution's output after its activation, never a pooling layer.
        batch_size: images per forward/backward pass.
        upsample: resize maps to (H, W) (bilinear); False keeps the layer's (h, w).
        output_index: which output of a multi-output model holds the class scores.

    Returns:
        (N, H, W) float32 in [0, 1] ((N, h, w) with ``upsample=False``).
    """
    ex = Explainer.of(model, images, output_index, batch_size)
    return cam_maps(ex, "gradcam", images, targets, layer, upsample)


def grad_cam_with_peaks(model, images, targets=None, layer=None, batch_size=64,
                        output_index=0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`grad_cam` (upsampled) plus, from the same forward pass, where each channel of the
    layer peaks in each image (for the receptive-field view of the most active units).

    Returns:
        (maps (N, H, W) float32 in [0, 1]; peak values (N, C) float32, each channel's largest
        activation in the image; peak positions (N, C) int64, its flat index i * w + j in the
        layer's (h, w) grid, the first in row-major order on ties).
    """
    ex = Explainer.of(model, images, output_index, batch_size)
    maps, _, values, positions = cam_with_peaks(ex, images, targets, layer)
    return maps, values, positions


def grad_cam_plus_plus(model, images, targets=None, layer=None, batch_size=64, upsample=True,
                       output_index=0) -> np.ndarray:
    """GradCAM++: channel weights from positive gradients with the closed-form alpha of the
    exponential score. Arguments and result as :func:`grad_cam`.

    References:
        * Chattopadhyay et al., Grad-CAM++: Improved Visual Explanations for Deep Convolutional
          Networks (https://arxiv.org/abs/1710.11063)
    """
    ex = Explainer.of(model, images, output_index, batch_size)
    return cam_maps(ex, "gradcam++", images, targets, layer, upsample)


def layer_cam(model, images, targets=None, layer=None, batch_size=64, upsample=True,
              output_index=0) -> np.ndarray:
    """LayerCAM: ReLU(sum_c ReLU(d logit / d A_c) * A_c), weighted element-wise. Arguments and
    result as :func:`grad_cam`.

    References:
        * Jiang et al., LayerCAM: Exploring Hierarchical Class Activation Maps for Localization
          (https://ieeexplore.ieee.org/document/9462463)
    """
    ex = Explainer.of(model, images, output_index, batch_size)
    return cam_maps(ex, "layercam", images, targets, layer, upsample)


# long: the public functional API (README); each keyword is a documented option
def score_cam(model, images, targets=None, layer=None, batch_size=64, upsample=True,
              output_index=0, max_channels: int = ScoreCamOptions.channels) -> np.ndarray:
    """ScoreCAM: channel maps used as input masks, weighted by the class probability of the
    masked input; ReLU(sum_k p_k A_k).

    Each of the ``max_channels`` channels with the highest mean activation (per image; all
    channels when fewer) is upsampled (bilinear, half-pixel centres), min-max scaled to [0, 1] and
    multiplied into the input; the masked inputs of all images and channels are run in batches of
    ``batch_size``. Arguments and result otherwise as :func:`grad_cam`.

    References:
        * Wang et al., Score-CAM: Score-Weighted Visual Explanations for Convolutional Neural
          Networks (https://arxiv.org/abs/1910.01279)
    """
    ex = Explainer.of(model, images, output_index, batch_size)
    return score_cam_maps(ex, images, targets, layer,
                          upsample, max_channels)


def score_cam_maps(ex: Explainer, images, targets=None, layer: str | None = None,
                   upsample: bool = True,
                   max_channels: int = ScoreCamOptions.channels) -> np.ndarray:
    """:func:`score_cam` on an explainer."""
    graph, batch_size = ex.graph, ex.batch_size
    x = ex.batch(images)
    t = as_targets(targets, len(x))
    path = ex.resolve(layer)
    h, w, c = graph.input_shape

    def make():
        def acts_and_logits(xb):
            logits, captured = graph.forward_capture(xb, [path])
            return captured[path], logits
        return acts_and_logits

    acts_and_logits = graph.function(("scorecam-acts", path), make)
    probs = probability_function(graph)
    acts_and_logits.expect(-(-len(x) // batch_size), len(x))
    n_masked = len(x) * min(max_channels, graph.layer_shapes[path][-1])
    probs.expect(-(-n_masked // batch_size), n_masked)

    out = []
    for start in range(0, len(x), batch_size):
        xb = tf.constant(x[start:start + batch_size])
        acts, logits = acts_and_logits(xb)
        tb = pick_targets(logits, tf.constant(t[start:start + batch_size]))
        n, ah, aw, ac = acts.shape
        k = min(max_channels, ac)
        # The k most active channels of each image.
        top = tf.math.top_k(tf.reduce_mean(acts, axis=(1, 2)), k=k).indices  # (n, k)
        sel = tf.gather(tf.transpose(acts, [0, 3, 1, 2]), top, batch_dims=1)  # (n, k, h, w)
        masks = minmax(tf.reshape(sel, [n * k, ah, aw]))
        masks = resize_maps(masks, (h, w))  # (n*k, H, W)
        masked = tf.repeat(xb, k, axis=0) * masks[..., None]
        scores = []
        for s in range(0, n * k, batch_size):
            scores.append(probs(masked[s:s + batch_size]))
        p = tf.concat(scores, axis=0)  # (n*k, classes)
        p = tf.gather(tf.reshape(p, [n, k, -1]), tb, axis=2, batch_dims=1)  # (n, k)
        cam = tf.nn.relu(tf.einsum("nkhw,nk->nhw", sel, p))
        cam = minmax(cam)
        if upsample:
            cam = tf.clip_by_value(resize_maps(cam, (h, w)), 0.0, 1.0)
        out.append(cam.numpy())
    return np.concatenate(out).astype(np.float32)
