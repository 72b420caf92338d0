"""Occlusion sensitivity (Zeiler and Fergus 2014): how much the class logit drops when a patch
of the image is covered."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reportgen.config import option
from reportgen.explain.methods.spec import Cost, MethodSpec, Reductions


@dataclass
class OcclusionOptions:
    patch_size: int = option(0, "Side in pixels of the square patch set to the baseline; 0: "
                             "an eighth of the image side, rounded up (8 px at 64 px, 28 px at "
                             "224 px), "
                             "so the cost is 64 patches at any resolution.", minimum=0)
    stride: int = option(0, "Pixels between neighbouring patch positions; 0: the patch size.",
                         minimum=0)

    def resolved(self, height: int, width: int) -> tuple[int, int]:
        """(patch size, stride) in pixels for an image of ``height`` x ``width``."""
        patch = self.patch_size or max(1, -(-min(height, width) // 8))  # ceil: 8 per side
        return patch, self.stride or patch

    def as_run(self, height: int, width: int) -> dict:
        """The options as run on an image of ``height`` x ``width``, sizes resolved."""
        patch, stride = self.resolved(height, width)
        return {"patch_size": patch, "stride": stride, "baseline": self.baseline}
    baseline: float = option(0.0, "Value the covered pixels are set to (in the model's input "
                             "scale).")


def anchors(size: int, patch: int, stride: int) -> list[int]:
    """Patch starts along an axis of ``size`` pixels: 0, stride, 2 stride, ... while the patch
    fits, plus ``size - patch`` when the last patch would leave the far edge uncovered."""
    patch = min(patch, size)
    starts = list(range(0, size - patch + 1, stride))
    if starts[-1] + patch < size and stride <= patch:
        starts.append(size - patch)
    return starts


def patch_masks(height: int, width: int, patch_size: int, stride: int) -> np.ndarray:
    """(P, H, W) float32, 1 inside patch p, row-major over the patch positions."""
    ys, xs = anchors(height, patch_size, stride), anchors(width, patch_size, stride)
    ph, pw = min(patch_size, height), min(patch_size, width)
    masks = np.zeros((len(ys) * len(xs), height, width), np.float32)
    for k, (y, x) in enumerate((y, x) for y in ys for x in xs):
        masks[k, y:y + ph, x:x + pw] = 1.0
    return masks


def occlusion_maps(ex, images, targets=None, patch_size: int = 8, stride: int = 8,
                   baseline=0.0) -> np.ndarray:
    """:func:`occlusion` on an :class:`~reportgen.explain.explainer.Explainer`."""
    import tensorflow as tf

    from reportgen.explain.common import class_score

    x = ex.batch(images)
    n, h, w, c = x.shape
    t = ex.targets(x, targets)
    clean = ex.logits(x)[np.arange(n), t]
    masks = patch_masks(h, w, patch_size, stride)
    p = len(masks)
    base = np.broadcast_to(np.asarray(baseline, np.float32), (h, w, c)).copy()

    def make():
        def fn(xb, mb, tb):
            # Every image of xb with every patch of mb covered: (g * q, H, W, C).
            m = mb[None, :, :, :, None]
            copies = xb[:, None] * (1.0 - m) + tf.constant(base) * m
            copies = tf.reshape(copies, [-1, h, w, c])
            q = tf.shape(mb)[0]
            logits = ex.graph.forward(copies)
            return tf.reshape(class_score(logits, tf.repeat(tb, q)), [-1, q])
        return fn

    fn = ex.graph.function(("occlusion", base.tobytes()), make,
                           tf.TensorSpec([None, h, w], tf.float32),
                           tf.TensorSpec([None], tf.int32))
    group = max(1, ex.batch_size // p)  # images per call: about one batch of copies
    step = min(p, ex.batch_size)  # patches per call
    fn.expect(-(-n // group) * -(-p // step), n * p)  # every image, every patch covered
    covered = np.zeros((n, p), np.float64)
    for g0 in range(0, n, group):
        sl = slice(g0, min(g0 + group, n))
        for p0 in range(0, p, step):
            covered[sl, p0:p0 + step] = fn(tf.constant(x[sl]), tf.constant(masks[p0:p0 + step]),
                                           tf.constant(t[sl])).numpy()
    drops = clean[:, None].astype(np.float64) - covered  # (N, P)
    flat = masks.reshape(p, h * w).astype(np.float64)
    count = flat.sum(axis=0)
    total = drops @ flat
    heat = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    return heat.reshape(n, h, w).astype(np.float32)


def occlusion(model, images, targets=None, patch_size: int = OcclusionOptions.patch_size,
              stride: int = OcclusionOptions.stride,
              baseline: float = OcclusionOptions.baseline, batch_size=64) -> np.ndarray:
    """Occlusion sensitivity: for each pixel, the mean over the patches covering it of the drop
    in the target's **logit** when the patch is set to ``baseline``.

    Patches are ``patch_size`` squares (0, the default as in the build: an eighth of the image
    side, rounded up) at every ``stride`` pixels (0: the patch size) while they fit, plus one
    flush with the far edge when the last would leave it uncovered (pixels no patch covers,
    possible with ``stride > patch_size``, get 0). Raw and unnormalized: positive where covering
    the pixel lowers the class logit. On a linear model with ``stride == patch_size`` each
    pixel's value is the sum of weight x (pixel - baseline) over its patch. xplique sums the
    drops of overlapping patches and uses a probability or logit as given; here they are
    averaged, on the logit (a final softmax is bypassed).

    References:
        * Zeiler and Fergus, Visualizing and Understanding Convolutional Networks
          (https://arxiv.org/abs/1311.2901)

    Args:
        model: a Sequential or Functional Keras model (never modified).
        images: (N, H, W, C) float32, preprocessed as the model expects (not modified).
        targets: class per image (N,), a single class, or None for the predicted class.
        baseline: a scalar or an (H, W, C) array in the model's input scale.
        batch_size: occluded copies per forward pass.

    Returns:
        (N, H, W) float32, signed logit drops.
    """
    from reportgen.explain.explainer import Explainer

    ex = Explainer.of(model, images, batch_size=batch_size)
    patch, step = OcclusionOptions(patch_size, stride).resolved(*ex.input_shape[:2])
    return occlusion_maps(ex, images, targets, patch, step, baseline)


def run(explainer, images, targets, options):
    patch, stride = options.resolved(*explainer.input_shape[:2])
    return occlusion_maps(explainer, images, targets, patch, stride, options.baseline)


def cost(options, shape):
    patch, stride = options.resolved(shape.height, shape.width)
    patches = len(anchors(shape.height, patch, stride)) * len(anchors(shape.width, patch, stride))
    return Cost(forward=2 + patches)


SPEC = MethodSpec(
    name="occlusion",
    label="Occlusion",
    description=(
        "Each square patch of [explain.occlusion] patch_size pixels (by default an eighth of "
        "the image side), every stride pixels, is "
        "set to the baseline (0 by default) and the drop of the class logit is recorded; a "
        "pixel's value is the mean drop over the patches that cover it (positive: covering "
        "it lowers the class score). Model-agnostic and exact, at one forward pass per patch. "
        "xplique sums the drops of overlapping patches instead of averaging them."),
    output="map",
    needs_conv=False,
    options=OcclusionOptions,
    cost=cost,
    run=run,
    reference="https://arxiv.org/abs/1311.2901",
    reductions=Reductions(optional=True),
    trace="forward",
)
