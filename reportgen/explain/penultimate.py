"""The model's penultimate-layer features, collected in the prediction pass.

*Penultimate* means the input of the model's **classifier layer**: walking back from the
layer that produces the explained output (``model.output_index``), through layers without
weights that take one input (a ``Softmax`` or ``Activation``, ``Reshape``, ``Dropout``, a
pooling or ``Flatten`` layer), to the first layer with weights (the ``Dense`` of a
GAP -> Dense or Flatten -> Dense head, the 1x1 ``Conv2D`` of MobileNet's head). Nested models
(a keras.applications backbone under a new head) are walked into: their layers are seen one
by one. The feature of an image is that layer's input: a (d,) vector as it is; a spatial map
(h, w, C) is averaged over its h x w positions (C values: for a (1, 1, C) map the same as
flattening it); any other shape is flattened. A SavedModel opened at a convolution
(:mod:`reportgen.explain.savedmodel`) has its head part as the classifier layer: its feature
is the spatial mean of the convolution map it is given. Where the walk ends at the model's
input (a model whose classifier takes the image itself, a SavedModel that cannot be opened)
or the model cannot be walked (a subclassed model), there are no features and
:attr:`Features.missing` says why.

The arrays are plain numpy (the report and a cached rebuild read them without TensorFlow):
this module imports TensorFlow only inside the functions that run the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numpy as np

if TYPE_CHECKING:  # annotations only
    from reportgen.data.store import Images


@dataclass
class Features:
    """Penultimate-layer features of every split the prediction pass ran on.

    Attributes:
        arrays: {split: (n, d) float32}, row i the features of image i of that split (in
            the split's order, as ``probs``); empty when there are none.
        layer: the path of the classifier layer whose input they are (``outer/inner`` in
            nested models), "" when there are none.
        description: a sentence saying what the features are (for the pages), or why there
            are none.
        missing: why there are no features ("" when there are).
    """

    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    layer: str = ""
    description: str = ""
    missing: str = ""

    @property
    def dims(self) -> int:
        """d, the length of one image's feature vector (0 when there are none)."""
        return next((int(a.shape[1]) for a in self.arrays.values()), 0)

    def of(self, split: str) -> np.ndarray | None:
        """The (n, d) float32 features of ``split``, or None without features."""
        return self.arrays.get(split) if not self.missing else None


@dataclass
class FeatureForward:
    """A compiled forward pass returning (output ``output_index`` as the model computes it,
    float32 (N, K); the penultimate features, float32 (N, d)), one trace for any batch."""

    run: Callable
    layer: str
    description: str
    #: (K, d): output and feature widths.
    widths: tuple[int, int]


def pooled(t):
    """A (N, d) float32 feature tensor from a layer input ``t``: (N, d) as it is, (N, h, w, C)
    averaged over h and w, any other shape flattened."""
    import tensorflow as tf

    t = tf.cast(t, tf.float32)
    if len(t.shape) == 4:
        return tf.reduce_mean(t, axis=(1, 2))
    if len(t.shape) == 2:
        return t
    return tf.reshape(t, (tf.shape(t)[0], -1))


def _has_weights(layer) -> bool:
    return bool(getattr(layer, "weights", None)) or not hasattr(layer, "weights")


def _classifier(records: dict, final_layer, order: list):
    """The record (tensor, layer, path, inputs) of the classifier layer: from the record of
    ``final_layer`` (else the last layer called), back through weightless one-input layers."""
    rec = next((r for r in reversed(order) if r[1] is final_layer), order[-1])
    while not _has_weights(rec[1]) and len(rec[3]) == 1 and id(rec[3][0]) in records:
        rec = records[id(rec[3][0])]
    return rec


def feature_forward(model, shape: tuple[int, int, int], output_index: int = 0) -> FeatureForward:
    """The :class:`FeatureForward` of ``model`` on images of ``shape`` (H, W, C), by the
    layer-by-layer walk of :class:`~reportgen.explain.graph.ModelGraph` (training=False).

    Raises:
        TypeError: a subclassed model (no graph to walk).
        ValueError: no features: the classifier layer takes the model's input itself, or the
            input shape does not fit the model.
    """
    import keras
    import tensorflow as tf

    from reportgen.explain.graph import ModelGraph

    graph = ModelGraph(model, output_index, shape)
    final = graph.final_layers[-1] if graph.final_layers else None

    def walk(x):
        records: dict[int, tuple] = {}
        order: list[tuple] = []

        def visit(layer, path, call, inputs):
            out = call()
            rec = (out, layer, path, tuple(inputs))
            order.append(rec)
            for t in keras.tree.flatten(out):
                records[id(t)] = rec
            return out

        out = graph.forward(x, visit, logits=False)
        rec = _classifier(records, final, order)
        if rec[3][-1] is x:
            raise ValueError(f"the classifier layer {rec[2]!r} takes the model's input itself")
        return out, pooled(rec[3][-1]), rec

    out, probe, rec = walk(tf.zeros((1, *shape), tf.float32))  # eager: names the layer
    run = tf.function(lambda x: walk(x)[:2], autograph=False,
                      input_signature=[tf.TensorSpec([None, *shape], tf.float32)])
    kind = type(rec[1]).__name__
    how = "averaged over its spatial positions" if len(rec[3][-1].shape) == 4 else \
        "as it is" if len(rec[3][-1].shape) == 2 else "flattened"
    d = int(probe.shape[1])
    return FeatureForward(run, rec[2], f"the input of the classifier layer {rec[2]!r} "
                          f"({kind}), {d} values per image, {how}", (int(out.shape[-1]), d))


def predict_with_features(model, splits: dict[str, np.ndarray | Images],
                          shape: tuple[int, int, int], *,
                          output_index: int = 0, batch_size: int = 64, preprocess=None,
                          progress: Callable[[int], None] | None = None
                          ) -> tuple[dict[str, np.ndarray], Features]:
    """The model's output ``output_index`` and its penultimate features on every split, in
    one pass (batches of ``batch_size``, ``preprocess`` applied batch by batch).

    Args:
        splits: {split: (N, H, W, C) images}, raw as the split holds them.

    Returns:
        ({split: (N, K) float32 outputs}, :class:`Features` of those splits). A model
        without features (see the module) is run as it is
        (:func:`reportgen.model.forward_function`), and its :class:`Features` say why.
    """
    try:
        forward = feature_forward(model, shape, output_index)
    except (TypeError, ValueError) as e:
        from reportgen import model as mdl

        why = " ".join(str(e).split())[:200]
        run = mdl.forward_function(model, shape, output_index)
        outs = {name: _batches(run, images, batch_size, preprocess, progress,
                               (_width(model, output_index), 0))[0]
                for name, images in splits.items()}
        return outs, Features(description=f"No penultimate features: {why}.", missing=why)
    outs, arrays = {}, {}
    for name, images in splits.items():
        outs[name], arrays[name] = _batches(forward.run, images, batch_size, preprocess,
                                            progress, forward.widths)
    return outs, Features(arrays, forward.layer, forward.description)


def _width(model, output_index: int) -> int:
    """K, the width of output ``output_index`` (0 when the model does not say)."""
    import keras

    try:
        return int(keras.tree.flatten(model.outputs)[output_index].shape[-1])
    except (AttributeError, IndexError, TypeError):
        return 0


def _batches(run, images, batch_size: int, preprocess, progress, widths: tuple[int, int]):
    """``run`` over ``images`` in batches: (outputs (N, K), features (N, d)), float32;
    ``widths`` (K, d) shape the arrays of an empty split."""
    import tensorflow as tf

    outs, feats = [], []
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size]
        batch = preprocess(batch) if preprocess else np.asarray(batch, np.float32)
        got = run(tf.constant(batch))
        if isinstance(got, (tuple, list)):
            outs.append(got[0].numpy())
            feats.append(got[1].numpy())
        else:
            outs.append(got.numpy())
        if progress:
            progress(len(batch))
    if not outs:
        return np.zeros((0, widths[0]), np.float32), np.zeros((0, widths[1]), np.float32)
    return (np.concatenate(outs).astype(np.float32),
            np.concatenate(feats).astype(np.float32) if feats else None)
