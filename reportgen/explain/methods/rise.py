"""RISE (Petsiuk et al. 2018): the class probability under random masks, averaged per pixel."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from reportgen.config import option
from reportgen.explain.methods.spec import Cost, MethodSpec, Reductions


@dataclass
class RiseOptions:
    masks: int = option(500, "Random masks per image (more masks, less noise).", minimum=1)
    cell_size: int = option(8, "Side in pixels of a cell of the low-resolution mask grid.",
                            minimum=1)
    keep: float = option(0.5, "Probability that a grid cell is kept (not masked).",
                         minimum=0.01, maximum=1.0)
    seed: int = option(0, "Seed of the masks.", minimum=0)


class MaskSampler:
    """The RISE masks of one run, made ``chunk`` at a time from draws fixed up front (so the
    masks do not depend on the batch size).

    A mask is a (gh, gw) grid of cells kept with probability ``keep`` (gh = ceil(H / cell)),
    resized bilinearly (half-pixel centres) to ((gh + 1) cell, (gw + 1) cell) and cropped to
    (H, W) at a random shift of 0 to cell - 1 pixels per axis: soft, shifted masks in [0, 1].
    """

    def __init__(self, count: int, height: int, width: int, cell_size: int, keep: float,
                 seed: int):
        rng = np.random.default_rng(seed)
        self.height, self.width, self.cell = height, width, cell_size
        self.grid = (math.ceil(height / cell_size), math.ceil(width / cell_size))
        self.cells = (rng.random((count,) + self.grid) < keep).astype(np.float32)
        self.shifts = rng.integers(0, cell_size, size=(count, 2))

    def __len__(self) -> int:
        return len(self.cells)

    def masks(self, start: int, stop: int) -> np.ndarray:
        """Masks ``start`` to ``stop`` - 1: (stop - start, H, W) float32 in [0, 1]."""
        import tensorflow as tf

        up = ((self.grid[0] + 1) * self.cell, (self.grid[1] + 1) * self.cell)
        big = tf.image.resize(self.cells[start:stop, :, :, None], up, method="bilinear"
                              ).numpy()[..., 0]
        out = np.empty((stop - start, self.height, self.width), np.float32)
        for k, (dy, dx) in enumerate(self.shifts[start:stop]):
            out[k] = big[k, dy:dy + self.height, dx:dx + self.width]
        return out


def rise_maps(ex, images, targets=None, masks: int = RiseOptions.masks,
              cell_size: int = RiseOptions.cell_size, keep: float = RiseOptions.keep,
              seed: int = RiseOptions.seed) -> np.ndarray:
    """:func:`rise` on an :class:`~reportgen.explain.explainer.Explainer`."""
    import tensorflow as tf

    from reportgen.explain.common import one_blas_thread

    x = ex.batch(images)
    n, h, w, c = x.shape
    t = ex.targets(x, targets)
    sampler = MaskSampler(masks, h, w, cell_size, keep, seed)

    def make():
        def fn(xb, mb, tb):
            # One image under every mask of mb: the target's softmax probability, (m,).
            p = ex.graph.probabilities(ex.graph.forward(xb * mb[..., None]))
            return p[:, tb[0]]
        return fn

    fn = ex.graph.function(("rise",), make, tf.TensorSpec([None, h, w], tf.float32),
                           tf.TensorSpec([1], tf.int32))
    step = ex.batch_size
    fn.expect(n * -(-masks // step), n * masks)  # every image under every mask
    total = np.zeros((n, h * w), np.float64)
    with one_blas_thread():  # the products below would otherwise slow the model's calls
        for m0 in range(0, masks, step):
            mb = sampler.masks(m0, min(m0 + step, masks))
            flat = mb.reshape(len(mb), h * w).astype(np.float64)
            mt = tf.constant(mb)
            for i in range(n):
                p = fn(tf.constant(x[i:i + 1]), mt, tf.constant(t[i:i + 1])).numpy()
                total[i] += p.astype(np.float64) @ flat
    return (total / (masks * keep)).reshape(n, h, w).astype(np.float32)


# long: the public functional API (README); each keyword is a documented option
def rise(model, images, targets=None, masks: int = RiseOptions.masks,
         cell_size: int = RiseOptions.cell_size, keep: float = RiseOptions.keep,
         seed: int = RiseOptions.seed, batch_size=64) -> np.ndarray:
    """RISE: the saliency of a pixel is the target's softmax probability on randomly masked
    copies of the image, averaged over the masks weighted by the mask's value at the pixel,
    and divided by the expected mask value ``keep``: sum_i p(x * M_i) M_i / (masks * keep).

    Masks are low-resolution binary grids of ``cell_size``-pixel cells, each kept with
    probability ``keep``, bilinearly upsampled and randomly shifted (see
    :class:`MaskSampler`); the same seeded masks serve every image and run ``batch_size`` at a
    time. Multiplying by a mask sets covered pixels to 0 in the model's input scale. xplique
    divides by the per-pixel sum of the masks instead of masks x keep, and shifts all masks of
    a batch together.

    References:
        * Petsiuk et al., RISE: Randomized Input Sampling for Explanation of Black-box Models
          (https://arxiv.org/abs/1806.07421)

    Args:
        model: a Sequential or Functional Keras model (never modified).
        images: (N, H, W, C) float32, preprocessed as the model expects (not modified).
        targets: class per image (N,), a single class, or None for the predicted class.

    Returns:
        (N, H, W) float32, non-negative; about the class probability where the pixel does
        not matter, higher where keeping it raises the probability.
    """
    from reportgen.explain.explainer import Explainer

    return rise_maps(Explainer.of(model, images, batch_size=batch_size), images, targets, masks,
                     cell_size, keep, seed)


def run(explainer, images, targets, options):
    return rise_maps(explainer, images, targets, options.masks, options.cell_size,
                     options.keep, options.seed)


SPEC = MethodSpec(
    name="rise",
    label="RISE",
    description=(
        "The class probability on randomly masked copies of the image ([explain.rise] masks "
        "masks: grids of cell_size-pixel cells kept with probability keep, bilinearly "
        "upsampled and randomly shifted), averaged per pixel weighted by the mask and divided "
        "by the expected mask value (the paper's normalization; xplique divides by the "
        "per-pixel mask sum). Model-agnostic, one forward pass per mask; fewer masks give "
        "noisier maps."),
    output="map",
    needs_conv=False,
    options=RiseOptions,
    cost=lambda options, shape: Cost(forward=1 + options.masks),
    run=run,
    reference="https://arxiv.org/abs/1806.07421",
    # No option cut: one with a floor at the default (500 masks) never fires, as the planner
    # never cuts a value the user set; under the budget the plan leaves RISE out instead.
    reductions=Reductions(optional=True),
    trace="forward",
)
