"""The explainer of one model: its graph, its compiled functions and the settings every method
shares (which output holds the class scores, the batch size, the explained layer)."""

from __future__ import annotations

import weakref
from contextlib import contextmanager

import numpy as np

from reportgen.explain.common import (as_batch, as_targets, logits_function,
                                      probability_function, run_batched)
from reportgen.explain.graph import ModelGraph


#: The explainers of :meth:`Explainer.of`: {model: {(output index, image shape): explainer}},
#: weak keys, and explainers that hold their model weakly, so an entry goes with its model.
_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

#: Explainers kept per model (one per output index and image size), the oldest dropped first.
PER_MODEL = 4


class Explainer:
    """Explanations of one Keras model (never modified).

    The explainer owns the model's :class:`~reportgen.explain.graph.ModelGraph` and, through it,
    every compiled function the methods build, so repeated calls on one explainer trace each
    function once. The module-level functions (``grad_cam(model, ...)``) are thin wrappers
    around :meth:`of`, which keeps one explainer per model while the model lives.

    Args:
        model: a Sequential or Functional Keras model, possibly with nested models.
        output_index: which model output holds the class scores (multi-output models).
        batch_size: images per forward/backward pass.
        layer: the conv layer the CAM methods explain (``outer/inner`` inside nested models);
            None picks the last convolution's output after its activation (see
            :meth:`~reportgen.explain.graph.ModelGraph.default_layer`).
        input_shape: (H, W, C) of the images, needed when the model's input size is
            variable.

    Example::

        ex = Explainer(model, batch_size=32)
        maps = ex.run("occlusion", images)          # (N, H, W) float32
    """

    def __init__(self, model, output_index: int = 0, batch_size: int = 64,
                 layer: str | None = None, input_shape: tuple | None = None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.output_index = output_index
        self.batch_size = batch_size
        #: Per-method batch sizes ({method or "curves": images}) that replace ``batch_size``
        #: while that method runs (the planner gives forward-only work larger batches).
        self.batch_sizes: dict[str, int] = {}
        self.graph = ModelGraph(model, output_index, input_shape)
        self._layer = layer or None
        if self._layer:
            self.graph.layer(self._layer)  # raises with the list of valid paths

    @classmethod
    def of(cls, model, images, output_index: int = 0, batch_size: int = 64) -> "Explainer":
        """The explainer the module-level functions (``grad_cam(model, ...)``) use: one per
        model, output and image size (``images`` (N, H, W, C): their size fills in a variable
        model input), made on the first call and kept while the model lives, so a loop over
        batches traces each compiled function once and its eager-or-compiled choice follows
        the work of all its calls (see :class:`~reportgen.explain.graph.TieredFunction`).
        Weights changed since the last call are seen (its twins are refreshed); ``batch_size``
        is the latest call's.

        The cache holds models weakly and its explainers hold theirs weakly too: keep a
        reference to ``model`` while you use the explainer returned.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        shape = np.shape(images)
        key = (output_index, tuple(shape[-3:]) if len(shape) >= 3 else None)
        try:
            kept = _CACHE.setdefault(model, {})
        except TypeError:  # not weakly referenceable: not a Keras model, ModelGraph says so
            return cls(model, output_index, batch_size, input_shape=key[1])
        ex = kept.pop(key, None)
        if ex is None:
            ex = cls(model, output_index, batch_size, input_shape=key[1])
            ex.graph.hold_weakly()
        else:
            ex.graph.refresh_twins()
            ex.batch_size = batch_size
        kept[key] = ex  # the latest used last
        while len(kept) > PER_MODEL:
            kept.pop(next(iter(kept)))
        return ex

    @property
    def model(self):
        """The explained Keras model (never modified)."""
        return self.graph.model

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of the model input."""
        return self.graph.input_shape

    @property
    def layer(self) -> str:
        """The explained conv layer: the one given, else the default one.

        Raises:
            ValueError: no layer was given and the model has no conv layer.
        """
        return self._layer or self.graph.default_layer()

    def layer_or_none(self) -> str | None:
        """:attr:`layer`, or None when the model has no conv layer."""
        try:
            return self.layer
        except ValueError:
            return None

    def resolve(self, layer: str | None) -> str:
        """``layer`` checked against the model, or :attr:`layer` when None or empty."""
        if not layer:
            return self.layer
        self.graph.layer(layer)
        return layer

    def batch(self, images) -> np.ndarray:
        """``images`` as float32 (N, H, W, C) matching the model input (never modified)."""
        return as_batch(images, self.graph)

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """Softmax of the class logits, (N, classes) float32."""
        return run_batched(probability_function(self.graph), [x], self.batch_size)

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Class logits (a final softmax bypassed), (N, classes) float32."""
        return run_batched(logits_function(self.graph), [x], self.batch_size)

    def targets(self, x: np.ndarray, targets) -> np.ndarray:
        """Targets as int32 (N,) with "predicted class" (None or -1) fixed on the clean images,
        so noisy, masked or interpolated copies explain the same class."""
        t = as_targets(targets, len(x))
        if (t >= 0).all():
            return t
        pred = self.logits(x).argmax(-1)
        return np.where(t < 0, pred, t).astype(np.int32)

    def run(self, method: str, images, targets=None, options=None) -> np.ndarray:
        """Run the registered method ``method`` (see :mod:`reportgen.explain.methods`) with
        ``options`` (its options dataclass; None for the defaults); return its raw output."""
        from reportgen.explain.methods import get

        spec = get(method)
        self.graph.refresh_twins()  # weights changed since the last call are seen
        with self.batched(self.batch_sizes.get(method)):
            return spec.run(self, self.batch(images), targets,
                            options if options is not None else spec.options())

    @contextmanager
    def batched(self, size: int | None):
        """Run the block with ``batch_size`` = ``size`` (None: as it is)."""
        saved = self.batch_size
        self.batch_size = size or saved
        try:
            yield self
        finally:
            self.batch_size = saved
