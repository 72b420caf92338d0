"""The explainer of one model: its graph, its compiled functions and the settings every method
shares (which output holds the class scores, the batch size, the explained layer)."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from reportgen.explain.common import (as_batch, as_targets, logits_function,
                                      probability_function, run_batched)
from reportgen.explain.graph import ModelGraph


#: The explainer :meth:`Explainer.of` made last ("ex"; one, so at most one model is kept
#: alive) and its (output index, image shape) ("key").
_LAST: dict = {}


class Explainer:
    """Explanations of one Keras model (never modified).

    The explainer owns the model's :class:`~reportgen.explain.graph.ModelGraph` and, through it,
    every compiled function the methods build, so repeated calls on one explainer trace each
    function once. The module-level functions (``grad_cam(model, ...)``) are thin wrappers
    around :meth:`of`, which keeps the last explainer and uses it again for the same model.

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
        self.model = model
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
        """An explainer of ``model`` for ``images`` (N, H, W, C): their size fills in a
        variable model input. The module-level functions use it: the last one made is kept
        (with its model) and used again for the same model, output and image size, its twins'
        weights refreshed, so repeated calls trace each compiled function once (gradients are
        always compiled: see :class:`~reportgen.explain.graph.TieredFunction`)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        shape = np.shape(images)
        given = tuple(shape[-3:]) if len(shape) >= 3 else None
        last = _LAST.get("ex")
        if last is not None and last.model is model and _LAST["key"] == (output_index, given):
            last.graph.refresh_twins()
            last.batch_size = batch_size
            return last
        _LAST.clear()  # the previous model can go before the new graph is built
        ex = cls(model, output_index, batch_size, input_shape=given)
        _LAST.update(ex=ex, key=(output_index, given))
        return ex

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
